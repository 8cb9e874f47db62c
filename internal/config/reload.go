package config

import (
	"bytes"
	"encoding/json"
	"reflect"
	"strings"

	"gopkg.in/yaml.v3"
)

// InPlace are the top-level keys whose change a running hookd applies when
// it reads its file again (hookd reload, SIGHUP); every other key takes
// effect at the next start.
var InPlace = map[string]bool{"sources": true, "destinations": true, "subscriptions": true, "limits": true}

// RestartKeys names the keys whose values differ between old and next and
// that a running hookd cannot change in place: "listen", "storage.path",
// "server.max_in_flight"… (a section's key, or the section when it is not
// a mapping of plain keys). Values are never named: some are secrets.
func RestartKeys(old, next *Config) []string {
	var out []string
	ov, nv := reflect.ValueOf(old).Elem(), reflect.ValueOf(next).Elem()
	t := ov.Type()
	for i := range t.NumField() {
		f := t.Field(i)
		key := yamlKey(f)
		if key == "" || InPlace[key] {
			continue
		}
		a, b := ov.Field(i), nv.Field(i)
		if reflect.DeepEqual(a.Interface(), b.Interface()) {
			continue
		}
		if f.Type.Kind() != reflect.Struct {
			out = append(out, key)
			continue
		}
		for j := range f.Type.NumField() {
			sub := yamlKey(f.Type.Field(j))
			if sub == "" {
				continue
			}
			if !reflect.DeepEqual(a.Field(j).Interface(), b.Field(j).Interface()) {
				out = append(out, key+"."+sub)
			}
		}
	}
	return out
}

// yamlKey is the YAML key of a struct field, "" when it has none.
func yamlKey(f reflect.StructField) string {
	if !f.IsExported() {
		return ""
	}
	name, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
	if name == "-" || name == "" {
		return ""
	}
	return name
}

// SameSource reports whether two sources are defined alike, wherever
// they stand in their files.
func SameSource(a, b Source) bool {
	ja, err1 := canonicalSource(a)
	jb, err2 := canonicalSource(b)
	return err1 == nil && err2 == nil && bytes.Equal(ja, jb)
}

func canonicalSource(s Source) ([]byte, error) {
	s.Verify = append([]Verify(nil), s.Verify...)
	for i := range s.Verify {
		s.Verify[i].Line = 0
	}
	return json.Marshal(s)
}

// SameDestination reports whether two destinations are defined alike (their
// kind's keys and retry policy included), wherever they stand in their
// files.
func SameDestination(a, b Destination) bool {
	ja, err1 := canonicalDestination(a)
	jb, err2 := canonicalDestination(b)
	return err1 == nil && err2 == nil && bytes.Equal(ja, jb)
}

func canonicalDestination(d Destination) ([]byte, error) {
	var retry, opts any
	if d.retry != nil {
		if err := d.retry.Decode(&retry); err != nil {
			return nil, err
		}
	}
	if d.options != nil {
		if err := d.options.Decode(&opts); err != nil {
			return nil, err
		}
	}
	return json.Marshal(map[string]any{
		"name": d.Name, "type": d.Type, "ordering": d.Ordering, "head_timeout": d.HeadTimeout,
		"concurrency": d.Concurrency, "rate": d.Rate, "retry": jsonable(retry), "options": jsonable(opts),
	})
}

// jsonable turns what YAML decoded into values encoding/json takes (maps
// keyed by strings).
func jsonable(v any) any {
	switch t := v.(type) {
	case map[string]any:
		for k, x := range t {
			t[k] = jsonable(x)
		}
	case map[any]any:
		m := make(map[string]any, len(t))
		for k, x := range t {
			b, _ := yaml.Marshal(k)
			m[strings.TrimSpace(string(b))] = jsonable(x)
		}
		return m
	case []any:
		for i, x := range t {
			t[i] = jsonable(x)
		}
	}
	return v
}

// UsesIssuer reports whether the source verifies with hookd's own token
// issuer (oauth_issuer), which is built from the sources at start.
func (s Source) UsesIssuer() bool {
	for _, v := range s.Verify {
		if v.Type == "oauth_issuer" {
			return true
		}
	}
	return false
}
