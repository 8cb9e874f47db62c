package engine

import (
	"testing"

	"hookd/internal/jsonlimit/jsonlimittest"
)

// FuzzSpecs feeds arbitrary bytes to the parsers of API-supplied
// definitions: they must answer an error or a valid definition, never
// panic.
func FuzzSpecs(f *testing.F) {
	for _, s := range []string{
		`{"name":"orders","type":"http","url":"https://a.example/h","retry":{"policy":"schedule","schedule":["2s","4s"]}}`,
		`{"name":"o","type":"http","url":"https://a.example","ordering":"key","concurrency":4,"rate":"10/s"}`,
		`{"source":"app","destination":"orders","events":["order.*"],"filter":{"path":"a.b","op":"gt","value":3}}`,
		`{"destination":"d","events":["*"],"skip_stale":true,"active":false}`,
		`{"filter":{"and":[{"path":"x","op":"exists","value":true},{"not":{"path":"y","op":"eq","value":"z"}}]}}`,
		`{"events":["a.**"]}`, `{"name":""}`, `[]`, `"x"`, `{"rate":"0/s"}`, `{"concurrency":-1}`, `&a *a`,
	} {
		f.Add([]byte(s))
	}
	for _, s := range jsonlimittest.DeepSeeds() {
		f.Add([]byte(s))
		f.Add([]byte(`{"destination":"d","filter":` + s + `}`))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		if d, err := parseDestinationSpec(b); err == nil {
			if err := d.Validate(); err != nil {
				t.Fatalf("parsed destination does not validate: %v", err)
			}
		}
		if s, err := parseSubscriptionSpec(b); err == nil {
			if err := s.Validate(); err != nil {
				t.Fatalf("parsed subscription does not validate: %v", err)
			}
			r := ruleOf(s)
			_ = r.Compile()
		}
	})
}
