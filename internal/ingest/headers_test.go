package ingest

import (
	"net/http"
	"testing"

	"hookd/internal/store"
)

// encodeHeaders writes what store.EncodeHeaders writes of the redacted
// headers, byte for byte, whatever the names and values hold.
func FuzzEncodeHeaders(f *testing.F) {
	f.Add("Content-Type", "application/json", "X-Signature", "sha256=abc", "Authorization", "Bearer x")
	f.Add("X-A", "<&>\"\\", "X-B", "\x00\x1f\x7f", "X-C", "héllo \xff")
	f.Add("", "", "X-Dup", "", "X-Dup", "two")
	s := &source{redact: map[string]bool{"Authorization": true, "X-Api-Key": true}}
	f.Fuzz(func(t *testing.T, k1, v1, k2, v2, k3, v3 string) {
		h := http.Header{}
		for _, kv := range [][2]string{{k1, v1}, {k2, v2}, {k3, v3}} {
			h[kv[0]] = append(h[kv[0]], kv[1])
		}
		h["X-Nil"] = nil
		copied := make(map[string][]string, len(h))
		for k, v := range h {
			if s.redact[k] {
				v = []string{"[redacted]"}
			}
			copied[k] = v
		}
		want, err := store.EncodeHeaders(copied)
		if err != nil {
			t.Fatal(err)
		}
		if got := s.encodeHeaders(h); got != want {
			t.Fatalf("encodeHeaders:\n got %s\nwant %s", got, want)
		}
	})
}
