package verify

import (
	"bytes"
	"encoding/json"
	"slices"
	"strings"
	"testing"

	"hookd/internal/config"
)

// buildOne builds a chain of one method from options as written in YAML.
func buildOne(t *testing.T, typ string, opts map[string]any) error {
	t.Helper()
	m, err := config.NewVerify(typ, opts)
	if err != nil {
		t.Fatal(err)
	}
	_, err = Build(&Env{}, []config.Verify{m})
	return err
}

// TestHandshakeProviderOptions: the options of dropbox, okta and msgraph
// are checked when the source is built.
func TestHandshakeProviderOptions(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		name, typ string
		opts      map[string]any
		want      string
	}{
		{"DropboxNoSecret", "dropbox", map[string]any{}, "secrets: at least one secret is required"},
		{"DropboxOK", "dropbox", map[string]any{"secrets": []any{"app-secret"}}, ""},
		{"DropboxUnknown", "dropbox", map[string]any{"secrets": []any{"s"}, "header": "X"}, "header"},
		{"OktaNoSecret", "okta", map[string]any{}, "secrets: required"},
		{"OktaShort", "okta", map[string]any{"secrets": "short"}, "shorter than 16 characters"},
		{"OktaBadHeader", "okta", map[string]any{"header": "X Auth", "secrets": "okta-secret-0123456789"}, "not a valid header name"},
		{"OktaControl", "okta", map[string]any{"secrets": "okta-secret-0123456789\n"}, "whitespace"},
		{"OktaOK", "okta", map[string]any{"header": "X-Okta-Auth", "secrets": []any{"okta-secret-0123456789", "okta-secret-9876543210"}}, ""},
		{"GraphNoState", "msgraph", map[string]any{}, "client_states: required"},
		{"GraphShort", "msgraph", map[string]any{"client_states": "short"}, "shorter than 16 characters"},
		{"GraphLong", "msgraph", map[string]any{"client_states": strings.Repeat("s", 256)}, "longer than the 255 characters"},
		{"GraphOK", "msgraph", map[string]any{"client_states": []any{"secretClientValue", strings.Repeat("s", 255)}}, ""},
	} {
		err := buildOne(t, c.typ, c.opts)
		switch {
		case c.want == "" && err != nil:
			t.Errorf("%s: got %v, want accepted", c.name, err)
		case c.want != "" && (err == nil || !strings.Contains(err.Error(), c.want)):
			t.Errorf("%s: got %v, want an error containing %q", c.name, err, c.want)
		}
	}
}

func TestJSONTopFields(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		body string
		want string // the fields found, sorted and joined; or "error"
	}{
		{`{"a": 1, "b": {"a": 1, "a": 2}}`, "a b"}, // only the top level is checked
		{`{}`, ""},
		{` {"a":"x"} `, "a"},
		{`{"a": 1, "a": 2}`, "error"},
		{`{"a": 1, "\u0061": 2}`, "error"}, // the same name, escaped
		{`{"a": 1} {"b": 2}`, "error"},
		{`{"a": 1}x`, "error"},
		{`[1]`, "error"},
		{`"a"`, "error"},
		{`{"a": }`, "error"},
		{`{"a": 1`, "error"},
		{``, "error"},
		{`{"a": ` + strings.Repeat("[", 200) + strings.Repeat("]", 200) + `}`, "error"}, // deeper than the limit
	} {
		fields, err := jsonTopFields([]byte(c.body), 0)
		got := "error"
		if err == nil {
			var names []string
			for k := range fields {
				names = append(names, k)
			}
			slices.Sort(names)
			got = strings.Join(names, " ")
		}
		if got != c.want {
			t.Errorf("jsonTopFields(%.40q): got %q (%v), want %q", c.body, got, err, c.want)
		}
	}
}

// FuzzJSONTopFields: no body makes it panic, and what it accepts is one
// valid JSON object.
func FuzzJSONTopFields(f *testing.F) {
	for _, s := range []string{`{"value":[{"clientState":"x"}]}`, `{"a":1,"a":2}`, `{}`, `[]`, `{"a":1}{}`, `{"a":"\ud800"}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		if _, err := jsonTopFields(body, 0); err == nil && (!json.Valid(body) || bytes.TrimSpace(body)[0] != '{') {
			t.Fatalf("accepted %q", body)
		}
	})
}
