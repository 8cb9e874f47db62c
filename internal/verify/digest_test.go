package verify

import (
	"bytes"
	"crypto/md5"
	"crypto/sha1"
	"log/slog"
	"strings"
	"testing"
	"time"

	"hookd/internal/config"
)

func TestDigestMatrix(t *testing.T) {
	t.Parallel()
	fixtures := []sigFixture{
		// Seed 003: an md5 sum of the body keyed by the security key.
		sigMACFixture("Seed003MD5BodySecret", "digest",
			map[string]any{"algorithm": "md5", "signature": "header:X-Signature", "signed": "{body}{secret}", "encoding": "hex"},
			func(secret, signed []byte, _ time.Time) []byte {
				s := md5.Sum(append(append([]byte(nil), signed...), secret...))
				return s[:]
			},
			sigHex,
			func(signed []byte, toks []string, _ time.Time) *Request {
				return sigHeaderRequest(signed, map[string]string{"X-Signature": strings.Join(toks, ",")})
			}, true, false),
		sigMACFixture("SHA1TimestampedBase64", "digest",
			map[string]any{
				"algorithm": "sha1", "signature": "header:X-Signature", "timestamp": "header:X-Timestamp",
				"signed": "{secret}:{timestamp}:{body}:{secret}", "encoding": "base64",
			},
			func(secret, signed []byte, ts time.Time) []byte {
				s := sha1.Sum([]byte(string(secret) + ":" + sigTS(ts) + ":" + string(signed) + ":" + string(secret)))
				return s[:]
			},
			sigB64,
			func(signed []byte, toks []string, ts time.Time) *Request {
				return sigHeaderRequest(signed, map[string]string{"X-Signature": strings.Join(toks, " "), "X-Timestamp": sigTS(ts)})
			}, false, true),
	}
	for _, fx := range fixtures {
		t.Run(fx.name, func(t *testing.T) {
			t.Parallel()
			sigRunMatrix(t, fx)
		})
	}
}

// TestDigestLengthExtensionWarning checks that a digest with the secret
// only in front of the body is built, with a warning.
func TestDigestLengthExtensionWarning(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		signed string
		warn   bool
	}{{"{secret}{body}", true}, {"{body}{secret}", false}, {"{secret}{body}{secret}", false}} {
		var buf bytes.Buffer
		m, err := config.NewVerify("digest", map[string]any{
			"algorithm": "md5", "secrets": []any{"k"}, "signature": "header:X-Sig", "signed": c.signed,
		})
		if err != nil {
			t.Fatal(err)
		}
		env := &Env{Source: "s", Now: sigClock(sigT0), Log: slog.New(slog.NewTextHandler(&buf, nil))}
		if _, err := newDigest(env, m); err != nil {
			t.Fatalf("%s: %v", c.signed, err)
		}
		if got := strings.Contains(buf.String(), "length extension"); got != c.warn {
			t.Errorf("%s: warned %v, want %v (log %q)", c.signed, got, c.warn, buf.String())
		}
		if strings.Contains(buf.String(), "k\"") {
			t.Errorf("the warning logs the secret: %q", buf.String())
		}
	}
}
