package verify

import (
	"bytes"
	"log/slog"
	"strings"
	"sync"
	"testing"
)

// A signing secret is often the provider's to choose: a short one is
// accepted with a warning that names the field, never the value.
func TestShortSigningSecretsAreWarnedAbout(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		typ  string
		opts map[string]any
	}{
		{"hmac", map[string]any{"signature": "header:X-Sig", "encoding": "hex", "secrets": []string{"long-enough-secret-0123", "tiny-secret"}}},
		{"github", map[string]any{"secrets": []string{"tiny-secret"}, "legacy_sha1": true}},
		{"digest", map[string]any{"algorithm": "md5", "signature": "header:X-Sig", "signed": "{body}{secret}", "encoding": "hex", "secrets": []string{"tiny-secret"}}},
	} {
		t.Run(tt.typ, func(t *testing.T) {
			var mu sync.Mutex
			var buf bytes.Buffer
			log := slog.New(slog.NewTextHandler(&credLockedWriter{mu: &mu, w: &buf}, nil))
			if _, err := credBuild(t, &Env{Source: "s", Log: log}, tt.typ, tt.opts); err != nil {
				t.Fatalf("build: %v, want a short signing secret accepted", err)
			}
			mu.Lock()
			out := buf.String()
			mu.Unlock()
			if n := strings.Count(out, "shorter than 16 bytes"); n != 1 || !strings.Contains(out, "level=WARN") || !strings.Contains(out, "source=s") {
				t.Errorf("log %q: want one warning naming the source", out)
			}
			if strings.Contains(out, "tiny-secret") {
				t.Errorf("log %q shows the secret", out)
			}
		})
	}
}
