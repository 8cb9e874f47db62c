package ingest_test

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"strings"
	"sync"
	"testing"

	"hookd"
	"hookd/internal/config"
	"hookd/internal/ingest"
	"hookd/internal/verify"
)

// handshakes records what ingest reports of handshakes.
type handshakes struct {
	mu   sync.Mutex
	recs []ingest.HandshakeRecord
}

func (h *handshakes) add(r ingest.HandshakeRecord) {
	h.mu.Lock()
	h.recs = append(h.recs, r)
	h.mu.Unlock()
}

func (h *handshakes) all() []ingest.HandshakeRecord {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]ingest.HandshakeRecord(nil), h.recs...)
}

// handshakeHarness is a harness whose handshakes are recorded.
func handshakeHarness(t *testing.T, sourcesYAML string) (*harness, *handshakes) {
	t.Helper()
	return handshakeHarnessConfig(t, parseSources(t, sourcesYAML))
}

func handshakeHarnessConfig(t *testing.T, cfg *config.Config) (*harness, *handshakes) {
	t.Helper()
	rec := &handshakes{}
	h := newHarnessWith(t, cfg, func(o *ingest.Options) { o.OnHandshake = rec.add })
	return h, rec
}

// want checks the handshakes reported: their kind and status.
func (h *handshakes) want(t *testing.T, source string, statuses ...int) {
	t.Helper()
	recs := h.all()
	if len(recs) != len(statuses) {
		t.Fatalf("handshakes reported: got %d (%+v), want %d", len(recs), recs, len(statuses))
	}
	for i, r := range recs {
		if r.Source != source || r.Kind != verify.GenericHandshakeKind || r.Status != statuses[i] || (r.Err == nil) != (statuses[i] < 300) || r.At.IsZero() {
			t.Errorf("handshake %d: got %+v, want source %s, kind %s, status %d", i, r, source, verify.GenericHandshakeKind, statuses[i])
		}
	}
}

const metaLikeSource = `  - name: hub
    handshake:
      method: GET
      when: "query:hub.mode=subscribe"
      challenge: query:hub.challenge
      token: {from: query:hub.verify_token, values: ["a-verify-token-of-ours", "the-previous-verify-token"]}
`

// A GET handshake with a verify token: the right token echoes the
// challenge as text/plain, a wrong or absent one is refused with 403, and
// neither is stored; then an event is.
func TestGenericHandshakeGETWithToken(t *testing.T) {
	t.Parallel()
	h, rec := handshakeHarness(t, metaLikeSource)

	for _, tok := range []string{"a-verify-token-of-ours", "the-previous-verify-token"} {
		a := send(t, h.srv, http.MethodGet, "/in/hub?hub.mode=subscribe&hub.challenge=1158201444&hub.verify_token="+tok, nil, nil)
		if a.status != http.StatusOK || string(a.body) != "1158201444" {
			t.Fatalf("token %s: got %d %q, want 200 with the challenge", tok, a.status, a.body)
		}
		if ct := a.header.Get("Content-Type"); ct != "text/plain; charset=utf-8" {
			t.Errorf("Content-Type: got %q, want text/plain; charset=utf-8", ct)
		}
		if got := a.header.Get("X-Content-Type-Options"); got != "nosniff" {
			t.Errorf("X-Content-Type-Options: got %q, want nosniff", got)
		}
	}
	for _, q := range []string{
		"hub.mode=subscribe&hub.challenge=1158201444&hub.verify_token=wrong",
		"hub.mode=subscribe&hub.challenge=1158201444&hub.verify_token=a-verify-token-of-ourS",
		"hub.mode=subscribe&hub.challenge=1158201444",
	} {
		a := send(t, h.srv, http.MethodGet, "/in/hub?"+q, nil, nil)
		wantError(t, a, http.StatusForbidden, hookd.EForbidden)
		if strings.Contains(string(a.body), "1158201444") {
			t.Errorf("%s: the refusal echoes the challenge: %s", q, a.body)
		}
	}
	h.wantCount(t, 0)
	rec.want(t, "hub", 200, 200, 403, 403, 403)

	// The right token with a challenge over 1 KiB: 400.
	a := send(t, h.srv, http.MethodGet, "/in/hub?hub.mode=subscribe&hub.verify_token=a-verify-token-of-ours&hub.challenge="+strings.Repeat("x", verify.MaxChallenge+1), nil, nil)
	wantError(t, a, http.StatusBadRequest, hookd.EInvalid)
	// A GET that is not the handshake (no hub.mode): 405, naming GET.
	a = send(t, h.srv, http.MethodGet, "/in/hub?hub.challenge=1", nil, nil)
	wantError(t, a, http.StatusMethodNotAllowed, hookd.EMethod)
	if got := a.header.Get("Allow"); got != "POST, GET" {
		t.Errorf("Allow: got %q, want POST, GET", got)
	}

	ok := wantOK(t, post(t, h.srv, "/in/hub", `{"entry":[1]}`, nil), http.StatusOK)
	h.wantCount(t, 1)
	if e := h.event(t, ok.ID); string(e.Body) != `{"entry":[1]}` {
		t.Errorf("stored body: got %s", e.Body)
	}
}

// A signed POST handshake answers only once the source's whole chain
// passed: a wrong signature is refused, nothing is stored.
func TestGenericHandshakeSignedPOST(t *testing.T) {
	t.Parallel()
	const secret = "0123456789abcdef0123456789abcdef"
	h, rec := handshakeHarness(t, `  - name: sig
    verify: [{type: hmac, algorithm: sha256, signature: header:X-Signature, signed: "{body}", encoding: hex, secrets: ["`+secret+`"]}]
    handshake:
      when: "json:type=url_verification"
      challenge: json:challenge
      signed: true
      answer: json:challenge
`)
	sign := func(body string) http.Header {
		m := hmac.New(sha256.New, []byte(secret))
		m.Write([]byte(body))
		return http.Header{"X-Signature": {hex.EncodeToString(m.Sum(nil))}}
	}
	const hs = `{"type":"url_verification","challenge":"3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P"}`

	a := post(t, h.srv, "/in/sig", hs, http.Header{"X-Signature": {strings.Repeat("0", 64)}})
	wantError(t, a, http.StatusUnauthorized, hookd.EUnauthorized)
	a = post(t, h.srv, "/in/sig", hs, nil)
	wantError(t, a, http.StatusUnauthorized, hookd.EUnauthorized)
	h.wantCount(t, 0)

	a = post(t, h.srv, "/in/sig", hs, sign(hs))
	if a.status != http.StatusOK || string(a.body) != `{"challenge":"3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P"}` {
		t.Fatalf("signed handshake: got %d %s, want 200 with the challenge in JSON", a.status, a.body)
	}
	if ct := a.header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("Content-Type: got %q, want application/json", ct)
	}
	h.wantCount(t, 0)
	rec.want(t, "sig", 401, 401, 200)

	// Any other POST is an event, signed like one.
	const ev = `{"type":"event_callback","event":{"id":1}}`
	wantError(t, post(t, h.srv, "/in/sig", ev, nil), http.StatusUnauthorized, hookd.EUnauthorized)
	wantOK(t, post(t, h.srv, "/in/sig", ev, sign(ev)), http.StatusOK)
	h.wantCount(t, 1)
	if got := len(rec.all()); got != 3 {
		t.Errorf("handshakes reported after the events: got %d, want 3", got)
	}
}

// A source without a GET handshake answers a GET with 405 and Allow: POST.
func TestGenericHandshakePOSTOnlyRefusesGET(t *testing.T) {
	t.Parallel()
	h, rec := handshakeHarness(t, `  - name: p
    handshake: {method: POST, challenge: query:validationToken}
`)
	a := send(t, h.srv, http.MethodGet, "/in/p?validationToken=abc", nil, nil)
	wantError(t, a, http.StatusMethodNotAllowed, hookd.EMethod)
	if got := a.header.Get("Allow"); got != http.MethodPost {
		t.Errorf("Allow: got %q, want POST", got)
	}
	a = post(t, h.srv, "/in/p?validationToken=abc", "", http.Header{"Content-Type": {"text/plain"}})
	if a.status != http.StatusOK || string(a.body) != "abc" {
		t.Fatalf("POST handshake: got %d %q, want 200 abc", a.status, a.body)
	}
	h.wantCount(t, 0)
	rec.want(t, "p", 200)
}

// An unsigned GET handshake still passes the source's ip_allow: from an
// address outside it, it is refused with 403 and the challenge is not
// echoed.
func TestGenericHandshakeIPAllow(t *testing.T) {
	t.Parallel()
	deny, drec := handshakeHarness(t, `  - name: deny
    verify: [{type: ip_allow, cidrs: ["192.0.2.0/24"]}]
    handshake: {challenge: query:challenge}
`)
	a := send(t, deny.srv, http.MethodGet, "/in/deny?challenge=xyz", nil, nil)
	wantError(t, a, http.StatusForbidden, hookd.EForbidden)
	drec.want(t, "deny", 403)

	// The same source allowing loopback answers: the refusal above is
	// ip_allow's.
	allow, arec := handshakeHarness(t, `  - name: allow
    verify: [{type: ip_allow, cidrs: ["127.0.0.0/8", "::1"]}]
    handshake: {challenge: query:challenge}
`)
	a = send(t, allow.srv, http.MethodGet, "/in/allow?challenge=xyz", nil, nil)
	if a.status != http.StatusOK || string(a.body) != "xyz" {
		t.Fatalf("allowed address: got %d %q, want 200 xyz", a.status, a.body)
	}
	arec.want(t, "allow", 200)
}
