package engine

import (
	"fmt"
	"net/url"
	"sort"
	"strconv"

	"hookd/internal/secret"
)

// restoreRedacted lets a client send back a definition as the API showed
// it: a replacing definition (next) that holds "[redacted]" where the API
// redacted a secret keeps the stored definition's (old) value there, and a
// URL sent back as the API showed it (its password replaced, url.Redacted)
// keeps the stored URL. So an editor changes what it means to change and
// leaves the secrets it never saw as they are. Places are matched by key
// and list index.
//
// "[redacted]" where nothing is stored (a new definition, or a key the
// stored one lacks) is an error naming the key: it would otherwise become
// the secret itself.
func restoreRedacted(next map[string]any, old map[string]any) error {
	var o any
	if old != nil {
		o = old
	}
	return restoreIn(next, o, "")
}

func restoreIn(next, old any, path string) error {
	switch n := next.(type) {
	case map[string]any:
		o, _ := old.(map[string]any)
		keys := make([]string, 0, len(n))
		for k := range n {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			p := k
			if path != "" {
				p = path + "." + k
			}
			ov, has := o[k]
			v, err := restoreValue(n[k], ov, has, k == "url", p)
			if err != nil {
				return err
			}
			n[k] = v
		}
	case []any:
		o, _ := old.([]any)
		for i := range n {
			var ov any
			has := i < len(o)
			if has {
				ov = o[i]
			}
			v, err := restoreValue(n[i], ov, has, false, path+"["+strconv.Itoa(i)+"]")
			if err != nil {
				return err
			}
			n[i] = v
		}
	}
	return nil
}

func restoreValue(v, old any, has, isURL bool, path string) (any, error) {
	s, ok := v.(string)
	if !ok {
		return v, restoreIn(v, old, path)
	}
	if s == secret.Redacted {
		if !has || old == secret.Redacted {
			return nil, fmt.Errorf("%s: %s stands for a stored secret and none is stored here: give the value", path, secret.Redacted)
		}
		return old, nil
	}
	if isURL && has {
		if os, ok := old.(string); ok && os != s && redactedURL(os) == s {
			return os, nil
		}
	}
	return v, nil
}

// redactedURL is a URL as redactSpec shows it: its password replaced.
func redactedURL(s string) string {
	u, err := url.Parse(s)
	if err != nil || u.User == nil {
		return s
	}
	if _, has := u.User.Password(); !has {
		return s
	}
	return u.Redacted()
}
