package sign_test

import (
	"bytes"
	"context"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"hookd/internal/sign"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata")

// TestGolden pins the exact headers sent for a fixed id, timestamp, body
// and set of secrets (STYLE rule 18). The file lists the headers in the
// order id, timestamp, signature, then the public keys an operator hands
// to receivers. Run go test -update to rewrite it after a deliberate
// change.
func TestGolden(t *testing.T) {
	t.Parallel()
	body := []byte(`{"type":"invoice.paid","data":{"id":"in_1","amount":4200}}`)
	ts := time.Unix(1_700_000_000, 0)
	for _, c := range []struct {
		name string
		cfg  sign.Config
	}{
		{"SpecVector", sign.Config{Type: "standard_webhooks", Secrets: []string{specSecret}}},
		{"Rotation", sign.Config{Type: "standard_webhooks", Secrets: []string{secretNew, secretOld}}},
		{"Ed25519", sign.Config{Type: "standard_webhooks", Secrets: []string{keyNew}}},
		{"Mixed", sign.Config{Type: "standard_webhooks", Secrets: []string{secretNew, keyNew, secretOld, keyOld}}},
		{"SvixHeaders", sign.Config{
			Type: "standard_webhooks", Secrets: []string{secretNew, keyNew},
			IDHeader: "svix-id", TimestampHeader: "svix-timestamp", SignatureHeader: "svix-signature",
		}},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			s := mustSigner(t, c.cfg)
			id, at, b := "evt_01HZX3K7Q8M2V4T6N9P0R5S1W3", ts, body
			if c.name == "SpecVector" {
				id, at, b = specID, time.Unix(specTS, 0), []byte(specBody)
			}
			h := mustSign(t, s, id, at, b)
			var out strings.Builder
			idName, tsName, sigName := s.HeaderNames()
			if len(h) != 3 {
				t.Fatalf("got %d headers %v, want 3", len(h), h)
			}
			for _, name := range []string{idName, tsName, sigName} {
				v, ok := h[name]
				if !ok {
					t.Fatalf("header %s missing from %v", name, h)
				}
				out.WriteString(name + ": " + v + "\n")
			}
			for _, k := range s.PublicKeys() {
				out.WriteString("# public key: " + k + "\n")
			}
			// Every signature in the file verifies on its own with hookd's
			// verifier, so the golden file holds no wrong value.
			prefix := strings.TrimSuffix(idName, "id")
			for _, sec := range c.cfg.Secrets {
				opts := map[string]any{"header_prefix": prefix, "secrets": []any{sec}}
				if strings.HasPrefix(sec, "whsk_") {
					opts = map[string]any{"header_prefix": prefix, "public_keys": []any{whpk(t, sec)}}
				}
				if err := receiver(t, opts, at).Verify(context.Background(), request(h, b)); err != nil {
					t.Fatalf("verifier with one secret of the set: got %v, want accepted", err)
				}
			}
			got := []byte(out.String())
			path := filepath.Join("testdata", "headers-"+c.name+".golden")
			if *update {
				if err := os.WriteFile(path, got, 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatalf("%v (run go test -update to create it)", err)
			}
			if !bytes.Equal(got, want) {
				t.Fatalf("headers differ from %s:\ngot:\n%s\nwant:\n%s", path, got, want)
			}
		})
	}
}
