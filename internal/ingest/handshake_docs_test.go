package ingest_test

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"os"
	"regexp"
	"strings"
	"testing"
)

// The handshake: examples of docs/PROVIDERS.md load, build and
// answer their handshake.
func TestHandshakeDocExamples(t *testing.T) {
	doc, err := os.ReadFile("../../docs/PROVIDERS.md")
	if err != nil {
		t.Fatal(err)
	}
	blocks := regexp.MustCompile("(?s)```yaml\n(.*?)```").FindAllStringSubmatch(string(doc), -1)
	if len(blocks) < 2 {
		t.Fatalf("YAML examples: got %d, want at least 2", len(blocks))
	}
	t.Setenv("CRM_APP_SECRET", "an-app-secret-of-32-bytes-length")
	t.Setenv("CRM_VERIFY_TOKEN", "a-verify-token-of-ours")
	t.Setenv("BILLING_SECRET", "a-billing-secret-of-some-length")
	n := 0
	for _, b := range blocks {
		if !strings.Contains(b[1], "    handshake:") {
			continue // a preset's snippet: TestProvidersDoc
		}
		n++
		h, rec := handshakeHarnessConfig(t, parseConfig(t, b[1]))
		switch {
		case strings.Contains(b[1], "name: crm"):
			a := send(t, h.srv, http.MethodGet, "/in/crm?hub.mode=subscribe&hub.verify_token=a-verify-token-of-ours&hub.challenge=1158201444", nil, nil)
			if a.status != 200 || string(a.body) != "1158201444" {
				t.Errorf("crm: got %d %q, want 200 1158201444", a.status, a.body)
			}
			rec.want(t, "crm", 200)
			const ev = `{"entry":[{"id":"1"}]}`
			wantOK(t, post(t, h.srv, "/in/crm", ev, http.Header{"X-Hub-Signature-256": {"sha256=" + hmacHex("an-app-secret-of-32-bytes-length", ev)}}), 200)
			h.wantCount(t, 1)
		case strings.Contains(b[1], "name: billing"):
			a := post(t, h.srv, "/in/billing", `{"type":"url_verification","challenge":"3eZbrw1a"}`, nil)
			if a.status != 401 {
				t.Errorf("billing without a signature: got %d, want 401", a.status)
			}
			const hs = `{"type":"url_verification","challenge":"3eZbrw1a"}`
			a = post(t, h.srv, "/in/billing", hs, http.Header{"X-Billing-Signature": {hmacHex("a-billing-secret-of-some-length", hs)}})
			if a.status != 200 || string(a.body) != `{"challenge":"3eZbrw1a"}` {
				t.Errorf("billing signed: got %d %s, want 200 {\"challenge\":\"3eZbrw1a\"}", a.status, a.body)
			}
			rec.want(t, "billing", 401, 200)
			h.wantCount(t, 0)
		default:
			t.Errorf("an example this test does not know:\n%s", b[1])
		}
	}
	if n < 2 {
		t.Errorf("handshake: examples: got %d, want at least 2", n)
	}
}

func hmacHex(secret, body string) string {
	m := hmac.New(sha256.New, []byte(secret))
	m.Write([]byte(body))
	return hex.EncodeToString(m.Sum(nil))
}
