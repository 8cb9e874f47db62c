package engine

import (
	"encoding/json"
	"fmt"
	"net/url"
	"sort"
	"strconv"
	"strings"

	"hookd/internal/config"
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

// restoreRedactedAt is restoreRedacted for a section of a definition,
// naming keys under at ("enrich.auth.value").
func restoreRedactedAt(at string, next, old map[string]any) error {
	var o any
	if old != nil {
		o = old
	}
	return restoreIn(next, o, at)
}

// keepEnrichSecrets lets a subscription (next, its JSON object) be sent
// back as the API showed it: its enrich section's secrets sent as
// "[redacted]" keep those of the stored enrich section (prev; nil for a
// new subscription or one without enrichment), with the rules of a
// destination's (keptCredentialsStay, restoreRedacted): kept only while
// enrich.url and enrich.auth.token_url keep their scheme and host.
func keepEnrichSecrets(next map[string]any, prev *config.Enrich) error {
	en, ok := next["enrich"].(map[string]any)
	if !ok {
		return nil // none, or not an object: the parse names it
	}
	var old map[string]any
	if prev != nil {
		// A copy by JSON: what is restored must not share maps with
		// the running definition.
		b, err := json.Marshal(map[string]any{"url": prev.URL, "auth": prev.Auth})
		if err != nil || json.Unmarshal(b, &old) != nil {
			return fmt.Errorf("enrich: the stored section cannot be read back: give its secrets again")
		}
	}
	if err := keptCredentialsStayAt("enrich", en, old); err != nil {
		return err
	}
	return restoreRedactedAt("enrich", en, old)
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

// redactedURL is a URL as redactSpec shows it: its password and the
// values of query parameters named like credentials (token, key, sig, …)
// replaced by xxxxx; s itself when it has none.
func redactedURL(s string) string {
	u, err := url.Parse(s)
	if err != nil {
		return s
	}
	changed := false
	if u.User != nil {
		if _, has := u.User.Password(); has {
			u.User = url.UserPassword(u.User.Username(), "xxxxx")
			changed = true
		}
	}
	query := false
	if u.RawQuery != "" {
		parts := strings.Split(u.RawQuery, "&")
		for i, p := range parts {
			name, _, hasValue := strings.Cut(p, "=")
			if !hasValue {
				continue
			}
			if n, err := url.QueryUnescape(name); err == nil && sensitiveParam(n) {
				parts[i] = name + "=xxxxx"
				query = true
			}
		}
		u.RawQuery = strings.Join(parts, "&")
	}
	switch {
	case changed:
		return u.String()
	case query:
		// Only the query changes: the rest is kept as written, so a
		// template's {{placeholders}} in the path stay readable.
		prefix, rest, _ := strings.Cut(s, "?")
		_, frag, hasFrag := strings.Cut(rest, "#")
		out := prefix + "?" + u.RawQuery
		if hasFrag {
			out += "#" + frag
		}
		return out
	}
	return s
}

// sensitiveParam reports whether a URL query parameter's value is likely
// a credential: its name is one a static header's would be redacted for,
// or sig or code (shared access signatures, function keys).
func sensitiveParam(name string) bool {
	n := strings.ToLower(name)
	return sensitiveHeader(n) || n == "sig" || n == "code"
}

// keptCredentialsStay refuses a replacing destination definition (next)
// that keeps a stored credential sent to the destination ("[redacted]"
// anywhere but under sign: auth, headers, a broker's password or token)
// while it changes where requests go: the url's or auth.token_url's
// scheme and host, or the brokers. Kept, the credential
// would go to a place its owner never gave it for, and anyone who may
// edit destinations could read it there although the API never shows it.
// The error names the kept key, so the secret is given again. old nil (a
// new destination) has nothing to keep.
func keptCredentialsStay(next, old map[string]any) error {
	return keptCredentialsStayAt("", next, old)
}

// keptCredentialsStayAt is keptCredentialsStay for a section of a
// definition (a subscription's enrich: its url and auth.token_url),
// naming keys under at ("enrich.auth.value"); at "" is the whole
// definition.
func keptCredentialsStayAt(at string, next, old map[string]any) error {
	if old == nil {
		return nil
	}
	pre := ""
	if at != "" {
		pre = at + "."
	}
	var kept []string
	for k, v := range next {
		if k != "sign" { // signing secrets never leave hookd
			kept = append(kept, redactedPaths(v, pre+k)...)
		}
	}
	if len(kept) == 0 {
		return nil
	}
	sort.Strings(kept)
	nextAuth, _ := next["auth"].(map[string]any)
	oldAuth, _ := old["auth"].(map[string]any)
	for _, c := range []struct {
		key      string
		was, now any
	}{
		{"url", old["url"], next["url"]},
		{"brokers", old["brokers"], next["brokers"]},
		{"auth.token_url", oldAuth["token_url"], nextAuth["token_url"]},
	} {
		if w, n := target(c.was), target(c.now); w != n {
			return fmt.Errorf("%s: %s keeps the stored credential only while requests go where they went, and %s changed from %s to %s: give the value again",
				kept[0], secret.Redacted, pre+c.key, orNone(w), orNone(n))
		}
	}
	return nil
}

// redactedPaths lists the key paths under v that hold "[redacted]".
func redactedPaths(v any, path string) []string {
	var out []string
	switch t := v.(type) {
	case string:
		if t == secret.Redacted {
			out = append(out, path)
		}
	case map[string]any:
		for k, x := range t {
			out = append(out, redactedPaths(x, path+"."+k)...)
		}
	case []any:
		for i, x := range t {
			out = append(out, redactedPaths(x, path+"["+strconv.Itoa(i)+"]")...)
		}
	}
	return out
}

// target is where a url, or a list of broker addresses, sends to: a URL's
// scheme and host (lower case), anything else as given.
func target(v any) string {
	switch t := v.(type) {
	case nil:
		return ""
	case string:
		if u, err := url.Parse(t); err == nil && u.Host != "" {
			return strings.ToLower(u.Scheme) + "://" + strings.ToLower(u.Host)
		}
		return t
	case []any:
		parts := make([]string, len(t))
		for i, x := range t {
			parts[i] = target(x)
		}
		return strings.Join(parts, ",")
	default:
		return fmt.Sprint(t)
	}
}

func orNone(s string) string {
	if s == "" {
		return "none"
	}
	return strconv.Quote(s)
}
