package admin

import (
	"bytes"
	"encoding/json"
	"net/http/httptest"
	"strings"
	"testing"

	"hookd"
	"hookd/internal/jsonlimit"
	"hookd/internal/jsonlimit/jsonlimittest"
)

// FuzzReadDefinition feeds admin API bodies to the one reader every
// definition and replay filter goes through: it answers the body only
// when it is valid JSON within the size and depth limits, and otherwise
// a 400 or 413, never a panic; an accepted body decodes as a replay
// filter would without panicking.
func FuzzReadDefinition(f *testing.F) {
	for _, s := range []string{
		`{"name":"orders","type":"http","url":"https://hooks.example/h"}`,
		`{"destination":"d","filter":{"and":[{"path":"a","op":"eq","value":1}]}}`,
		`{"source":"app","since":"2024-01-01T00:00:00Z"}`,
		``, `null`, `[]`, `{"a":1}{"b":2}`, `{"a":"\ud800"}`,
	} {
		f.Add([]byte(s))
	}
	for _, s := range jsonlimittest.DeepSeeds() {
		f.Add([]byte(s))
		f.Add([]byte(`{"name":"d","x":` + s + `}`))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		r := httptest.NewRequest("POST", "/api/v1/replays", bytes.NewReader(body))
		w := httptest.NewRecorder()
		b, err := readDefinition(w, r)
		switch {
		case len(body) > maxDefinition:
			if hookd.ErrorCode(err) != hookd.ETooLarge {
				t.Fatalf("body of %d bytes: got %v, want too large", len(body), err)
			}
		case jsonlimit.Depth(body) > jsonlimit.DefaultDepth:
			if hookd.ErrorCode(err) != hookd.EInvalid || !strings.Contains(err.Error(), "nested deeper than") {
				t.Fatalf("body nested %d deep: got %v, want 400 naming the limit", jsonlimit.Depth(body), err)
			}
		case !json.Valid(body):
			if hookd.ErrorCode(err) != hookd.EInvalid {
				t.Fatalf("invalid JSON: got %v, want 400", err)
			}
		default:
			if err != nil || !bytes.Equal(b, body) {
				t.Fatalf("valid body: got %q, %v; want it back", b, err)
			}
			var req replayRequest
			dec := json.NewDecoder(bytes.NewReader(b))
			dec.DisallowUnknownFields()
			_ = dec.Decode(&req)
		}
	})
}
