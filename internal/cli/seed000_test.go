package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"hookd/internal/config"
)

// Seed 000 plays the OAuth sender against examples/seed-000-oauth.yaml:
// get a token from hookd, send with it, let it expire, get 401 with
// error="invalid_token", get a new one, send again.

const (
	s000AdminToken   = "seed000-admin-token-0123456789"
	s000ClientSecret = "seed000-client-secret-abcdef"
)

// s000Clock is a clock the test moves by hand.
type s000Clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *s000Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *s000Clock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// s000Config loads the example with its environment set.
func s000Config(t *testing.T) *config.Config {
	t.Helper()
	t.Setenv("HOOKD_ADMIN_TOKEN", s000AdminToken)
	t.Setenv("CLAIMS_CLIENT_SECRET", s000ClientSecret)
	cfg, err := config.Load("../../examples/seed-000-oauth.yaml")
	if err != nil {
		t.Fatalf("load example: %v", err)
	}
	cfg.Storage.Path = t.TempDir()
	return cfg
}

type s000Answer struct {
	status int
	header http.Header
	body   []byte
}

func s000Do(t *testing.T, req *http.Request) s000Answer {
	t.Helper()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", req.Method, req.URL, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("read answer: %v", err)
	}
	return s000Answer{status: resp.StatusCode, header: resp.Header, body: body}
}

// s000Token asks for a token with HTTP Basic client authentication.
func s000Token(t *testing.T, base, id, secret string) (s000Answer, string, int64) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, base+"/oauth/token", strings.NewReader(url.Values{"grant_type": {"client_credentials"}}.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(id, secret)
	a := s000Do(t, req)
	var tok struct {
		AccessToken string `json:"access_token"`
		TokenType   string `json:"token_type"`
		ExpiresIn   int64  `json:"expires_in"`
	}
	if a.status == http.StatusOK {
		if err := json.Unmarshal(a.body, &tok); err != nil {
			t.Fatalf("token answer %s: %v", a.body, err)
		}
		if tok.TokenType != "Bearer" || tok.AccessToken == "" {
			t.Fatalf("token answer %s: want a Bearer token", a.body)
		}
	}
	return a, tok.AccessToken, tok.ExpiresIn
}

// s000Claim is a seed-004-like claims webhook body.
func s000Claim(messageID string) []byte {
	return []byte(`{"payload":{"details":{"messageType":"event.claim.created.v1","accountReference":"PDN-922-Oct14-0001",` +
		`"claimRef":"PDN-922-claim-Oct14-00010","amount":501,"currency":"EUR","dueDate":"2021-10-07"},` +
		`"messageId":"` + messageID + `","timestamp":"2021-10-14T15:33:16.848Z","user":{"id":"USER_ID","originator":"ClientAPI"}},` +
		`"signature":"SIGNATURE","payloadAsString":"PAYLOAD_AS_STRING"}`)
}

// s000Send posts a claim with the token ("" sends no Authorization).
func s000Send(t *testing.T, base, token string, body []byte) s000Answer {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, base+"/in/claims", bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	return s000Do(t, req)
}

// s000Stored checks that the answer is a stored event and returns the
// event as the admin API shows it.
func s000Stored(t *testing.T, base string, a s000Answer) map[string]any {
	t.Helper()
	if a.status != http.StatusOK {
		t.Fatalf("send: got %d %s, want 200", a.status, a.body)
	}
	var ack struct {
		ID        string `json:"id"`
		RequestID string `json:"request_id"`
	}
	if err := json.Unmarshal(a.body, &ack); err != nil || ack.ID == "" {
		t.Fatalf("answer %s: want {id, request_id}", a.body)
	}
	req, _ := http.NewRequest(http.MethodGet, base+"/api/v1/events/"+ack.ID, nil)
	req.Header.Set("Authorization", "Bearer "+s000AdminToken)
	got := s000Do(t, req)
	if got.status != http.StatusOK {
		t.Fatalf("GET /api/v1/events/%s: got %d %s, want 200", ack.ID, got.status, got.body)
	}
	var ev map[string]any
	if err := json.Unmarshal(got.body, &ev); err != nil {
		t.Fatalf("event %s: %v", got.body, err)
	}
	return ev
}

func s000WantInvalidToken(t *testing.T, a s000Answer) {
	t.Helper()
	if a.status != http.StatusUnauthorized {
		t.Fatalf("got %d %s, want 401", a.status, a.body)
	}
	if got, want := a.header.Get("WWW-Authenticate"), `Bearer realm="hookd", error="invalid_token"`; got != want {
		t.Errorf("WWW-Authenticate: got %q, want %q", got, want)
	}
}

func TestSeed000TokenRoundTrip(t *testing.T) {
	clock := &s000Clock{t: time.Now()}
	cfg := s000Config(t)
	_, base := startApp(t, cfg, clock.Now)

	// Get a token: validity 1 (hours) in the example is expires_in 3600.
	a, tok, expiresIn := s000Token(t, base, "provider-a", s000ClientSecret)
	if a.status != http.StatusOK || expiresIn != 3600 {
		t.Fatalf("token: got %d %s, want 200 with expires_in 3600", a.status, a.body)
	}
	if cc := a.header.Get("Cache-Control"); cc != "no-store" {
		t.Errorf("token Cache-Control: got %q, want no-store", cc)
	}

	// Use it: stored, with the selected metadata, the token redacted.
	ev := s000Stored(t, base, s000Send(t, base, tok, s000Claim("09feeb6f-350a-430a-a040-cd1c558cbc91")))
	if ev["source"] != "claims" || ev["external_id"] != "09feeb6f-350a-430a-a040-cd1c558cbc91" || ev["type"] != "event.claim.created.v1" || ev["key"] != "PDN-922-claim-Oct14-00010" {
		t.Errorf("stored event: got %v, want the claim's metadata", ev)
	}
	hdrs, _ := ev["headers"].(map[string]any)
	if auth, _ := hdrs["Authorization"].([]any); len(auth) != 1 || auth[0] != "[redacted]" {
		t.Errorf("stored Authorization header: got %v, want [redacted]", hdrs["Authorization"])
	}

	// No token: the plain challenge.
	a = s000Send(t, base, "", s000Claim("no-token"))
	if a.status != http.StatusUnauthorized || a.header.Get("WWW-Authenticate") != `Bearer realm="hookd"` {
		t.Errorf("no token: got %d %q, want 401 Bearer realm=\"hookd\"", a.status, a.header.Get("WWW-Authenticate"))
	}

	// Just before expiry the token still works; at expiry it does not.
	clock.Add(time.Hour - time.Second)
	s000Stored(t, base, s000Send(t, base, tok, s000Claim("before-expiry")))
	clock.Add(time.Second)
	s000WantInvalidToken(t, s000Send(t, base, tok, s000Claim("at-expiry")))

	// The sender's answer to the 401: a new token, and the re-send is stored.
	_, tok2, _ := s000Token(t, base, "provider-a", s000ClientSecret)
	s000Stored(t, base, s000Send(t, base, tok2, s000Claim("at-expiry")))

	// A bad client secret gets no token.
	a, _, _ = s000Token(t, base, "provider-a", "wrong-secret")
	if a.status != http.StatusUnauthorized || !strings.Contains(string(a.body), `"invalid_client"`) || a.header.Get("WWW-Authenticate") != `Basic realm="hookd"` {
		t.Errorf("bad secret: got %d %s (WWW-Authenticate %q), want 401 invalid_client with a Basic challenge", a.status, a.body, a.header.Get("WWW-Authenticate"))
	}
}

// TestSeed000RealClock runs the round trip on the real clock with a
// validity of one second, so that the clock wiring itself is tested.
func TestSeed000RealClock(t *testing.T) {
	cfg := s000Config(t)
	v, err := config.NewVerify("oauth_issuer", map[string]any{
		"clients":  []any{map[string]any{"id": "provider-a", "secret": s000ClientSecret}},
		"validity": "1s",
	})
	if err != nil {
		t.Fatal(err)
	}
	cfg.Sources[0].Verify = []config.Verify{v}
	_, base := startApp(t, cfg, nil)

	_, tok, expiresIn := s000Token(t, base, "provider-a", s000ClientSecret)
	if expiresIn != 1 {
		t.Errorf("expires_in: got %d, want 1", expiresIn)
	}
	s000Stored(t, base, s000Send(t, base, tok, s000Claim("real-clock-1")))
	deadline := time.Now().Add(5 * time.Second)
	for {
		a := s000Send(t, base, tok, s000Claim("real-clock-2"))
		if a.status == http.StatusUnauthorized {
			s000WantInvalidToken(t, a)
			break
		}
		if a.status != http.StatusOK || time.Now().After(deadline) {
			t.Fatalf("waiting for the token to expire: got %d %s", a.status, a.body)
		}
		time.Sleep(100 * time.Millisecond)
	}
	_, tok2, _ := s000Token(t, base, "provider-a", s000ClientSecret)
	s000Stored(t, base, s000Send(t, base, tok2, s000Claim("real-clock-2")))
}

// TestSeed000TokenSurvivesRestart: a token issued before a restart is
// still valid after it (the signing key is in the data directory).
func TestSeed000TokenSurvivesRestart(t *testing.T) {
	cfg := s000Config(t)
	first, base := startApp(t, cfg, nil)
	_, tok, _ := s000Token(t, base, "provider-a", s000ClientSecret)
	if err := first.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	cfg2 := s000Config(t)
	cfg2.Storage.Path = cfg.Storage.Path
	_, base2 := startApp(t, cfg2, nil)
	s000Stored(t, base2, s000Send(t, base2, tok, s000Claim("after-restart")))
}

// TestSeed000TokenEndpointOnlyWithIssuer: without an oauth_issuer source,
// POST /oauth/token is not a route.
func TestSeed000TokenEndpointOnlyWithIssuer(t *testing.T) {
	cfg := s000Config(t)
	cfg.Sources[0].Verify = nil
	_, base := startApp(t, cfg, nil)
	a, _, _ := s000Token(t, base, "provider-a", s000ClientSecret)
	if a.status != http.StatusNotFound {
		t.Errorf("POST /oauth/token without an oauth_issuer source: got %d %s, want 404", a.status, a.body)
	}
}
