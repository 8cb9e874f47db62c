package webhook

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"hookd/internal/destination"
	"hookd/internal/destination/destinationtest"
	"hookd/internal/destination/oauth"
)

const (
	authClientID = "hookd-client"
	authSecret   = "cs_s3cr3t_client"
)

// tokenEndpoint is a token server on 127.0.0.1 that counts requests and
// issues tok-1, tok-2, … valid expiresIn seconds (absent when 0).
type tokenEndpoint struct {
	*httptest.Server
	requests  atomic.Int64
	expiresIn int
}

func newTokenEndpoint(t *testing.T, expiresIn int) *tokenEndpoint {
	t.Helper()
	te := &tokenEndpoint{expiresIn: expiresIn}
	te.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n := te.requests.Add(1)
		if id, secret, ok := r.BasicAuth(); !ok || id != authClientID || secret != authSecret {
			http.Error(w, `{"error":"invalid_client"}`, http.StatusUnauthorized)
			return
		}
		ans := map[string]any{"access_token": "tok-" + strconv.FormatInt(n, 10), "token_type": "Bearer"}
		if te.expiresIn > 0 {
			ans["expires_in"] = te.expiresIn
		}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(ans)
	}))
	t.Cleanup(te.Close)
	return te
}

func oauthOpts(sinkURL, tokenURL string) map[string]any {
	return map[string]any{"url": sinkURL, "auth": map[string]any{
		"type": "oauth2", "token_url": tokenURL, "client_id": authClientID, "client_secret": authSecret,
	}}
}

// bearerSink answers 204 to a request bearing a token in valid (all tokens
// when valid is nil), else 401.
func bearerSink(t *testing.T, valid func(token string) bool) *testSink {
	return newSink(t, func(w http.ResponseWriter, r *http.Request) {
		tok, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		if !ok || (valid != nil && !valid(tok)) {
			w.WriteHeader(http.StatusUnauthorized)
			_, _ = w.Write([]byte(`{"error":"invalid_token"}`))
			return
		}
		w.WriteHeader(http.StatusNoContent)
	})
}

func TestOAuth2ManyDeliveriesOneToken(t *testing.T) {
	t.Parallel()
	te := newTokenEndpoint(t, 3600)
	sink := bearerSink(t, func(tok string) bool { return tok == "tok-1" })
	d := openOpts(t, nil, oauthOpts(sink.URL, te.URL))
	ctx := deliverCtx(t)
	const workers, each = 50, 10
	var wg sync.WaitGroup
	var failed atomic.Int64
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range each {
				if _, err := d.Deliver(ctx, message(i+1)); err != nil {
					failed.Add(1)
					t.Errorf("Deliver: %v", err)
				}
			}
		}()
	}
	wg.Wait()
	if got := len(sink.requests()); got != workers*each {
		t.Errorf("sink requests: got %d, want %d", got, workers*each)
	}
	if got := te.requests.Load(); got != 1 {
		t.Errorf("token requests for %d deliveries: got %d, want 1", workers*each, got)
	}
	t.Logf("%d deliveries (%d failed), %d token request(s)", workers*each, failed.Load(), te.requests.Load())
}

func TestOAuth2RefreshAheadOfExpiry(t *testing.T) {
	t.Parallel()
	te := newTokenEndpoint(t, 3600)
	sink := bearerSink(t, nil)
	c := newClock(t0)
	d := openOpts(t, c.env(), oauthOpts(sink.URL, te.URL))
	ctx := deliverCtx(t)
	deliver := func(at time.Duration, wantToken string, wantRequests int64) {
		t.Helper()
		c.set(t0.Add(at))
		if _, err := d.Deliver(ctx, message(1)); err != nil {
			t.Fatalf("Deliver at +%s: %v", at, err)
		}
		reqs := sink.requests()
		if got := reqs[len(reqs)-1].Header.Get("Authorization"); got != "Bearer "+wantToken {
			t.Errorf("at +%s: got %q, want Bearer %s", at, got, wantToken)
		}
		if got := te.requests.Load(); got != wantRequests {
			t.Errorf("at +%s: got %d token requests, want %d", at, got, wantRequests)
		}
	}
	deliver(0, "tok-1", 1)
	deliver(29*time.Minute+59*time.Second, "tok-1", 1)
	deliver(30*time.Minute, "tok-2", 2) // 30 min before tok-1's expiry
	deliver(59*time.Minute, "tok-2", 2)
}

func TestOAuth2ValidityWhenNoExpiresIn(t *testing.T) {
	t.Parallel()
	te := newTokenEndpoint(t, 0)
	sink := bearerSink(t, nil)
	c := newClock(t0)
	opts := oauthOpts(sink.URL, te.URL)
	opts["auth"].(map[string]any)["validity"] = 1 // hours (seed 000)
	d := openOpts(t, c.env(), opts)
	ctx := deliverCtx(t)
	for _, at := range []time.Duration{0, 29 * time.Minute, 30 * time.Minute} {
		c.set(t0.Add(at))
		if _, err := d.Deliver(ctx, message(1)); err != nil {
			t.Fatalf("Deliver at +%s: %v", at, err)
		}
	}
	if got := te.requests.Load(); got != 2 {
		t.Errorf("token requests: got %d, want 2 (one at start, one at +30m with validity 1h)", got)
	}
}

func TestOAuth2UnauthorizedOnce(t *testing.T) {
	t.Parallel()
	te := newTokenEndpoint(t, 3600)
	sink := bearerSink(t, func(tok string) bool { return tok != "tok-1" }) // tok-1 was revoked
	d := openOpts(t, nil, oauthOpts(sink.URL, te.URL))
	res, err := d.Deliver(deliverCtx(t), message(1))
	if err != nil {
		t.Fatalf("Deliver: got %v, want success", err)
	}
	if res.StatusCode != http.StatusNoContent {
		t.Errorf("Result.StatusCode: got %d, want 204 (the final answer)", res.StatusCode)
	}
	reqs := sink.requests()
	if len(reqs) != 2 || te.requests.Load() != 2 {
		t.Fatalf("got %d sends and %d token requests, want 2 and 2", len(reqs), te.requests.Load())
	}
	if a, b := reqs[0].Header.Get("Authorization"), reqs[1].Header.Get("Authorization"); a != "Bearer tok-1" || b != "Bearer tok-2" {
		t.Errorf("Authorization: got %q then %q, want tok-1 then tok-2", a, b)
	}
	if a, b := reqs[0].Header.Get(HeaderAttempt), reqs[1].Header.Get(HeaderAttempt); a != "1" || b != "1" {
		t.Errorf("re-send is within the same attempt: got Hookd-Attempt %q then %q, want 1 and 1", a, b)
	}
}

func TestOAuth2UnauthorizedAlways(t *testing.T) {
	t.Parallel()
	te := newTokenEndpoint(t, 3600)
	sink := bearerSink(t, func(string) bool { return false })
	d := openOpts(t, nil, oauthOpts(sink.URL, te.URL))
	res, err := d.Deliver(deliverCtx(t), message(1))
	if !destination.IsPermanent(err) || !strings.Contains(err.Error(), "401") {
		t.Fatalf("Deliver: got %v, want a permanent error about 401", err)
	}
	if res.StatusCode != http.StatusUnauthorized || !strings.Contains(string(res.ResponseExcerpt), "invalid_token") {
		t.Errorf("Result: got %d %q, want the final 401 answer", res.StatusCode, res.ResponseExcerpt)
	}
	if got, tok := len(sink.requests()), te.requests.Load(); got != 2 || tok != 2 {
		t.Fatalf("got %d sends and %d token requests, want 2 and 2", got, tok)
	}
	t.Logf("401 always: %d sends, %d token requests, error %q", len(sink.requests()), te.requests.Load(), err)
}

func TestOAuth2NoFreshTokenAfter401(t *testing.T) {
	t.Parallel()
	te := newTokenEndpoint(t, 3600)
	sink := bearerSink(t, func(string) bool { return false })
	d := openOpts(t, nil, oauthOpts(sink.URL, te.URL))
	if _, err := d.tokens.Token(deliverCtx(t)); err != nil {
		t.Fatal(err)
	}
	te.Close() // the token endpoint goes down after issuing tok-1
	_, err := d.Deliver(deliverCtx(t), message(1))
	if !destination.IsPermanent(err) || !errors.Is(err, oauth.ErrTokenUnavailable) || !strings.Contains(err.Error(), "token_unavailable") {
		t.Fatalf("Deliver: got %v, want a permanent token_unavailable error", err)
	}
	if got := len(sink.requests()); got != 1 {
		t.Errorf("sends: got %d, want 1", got)
	}
}

func TestOAuth2DeadTokenServer(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	tokenURL := "http://" + ln.Addr().String() + "/oauth/token"
	_ = ln.Close()
	sink := bearerSink(t, nil)
	d := openOpts(t, nil, oauthOpts(sink.URL, tokenURL))
	_, err = d.Deliver(deliverCtx(t), message(1))
	switch {
	case err == nil:
		t.Fatal("Deliver: got success, want token_unavailable")
	case destination.IsPermanent(err) || destination.IsGone(err):
		t.Fatalf("Deliver: got final %v, want retriable", err)
	case !errors.Is(err, oauth.ErrTokenUnavailable) || !strings.Contains(err.Error(), "token_unavailable"):
		t.Fatalf("Deliver: got %v, want token_unavailable", err)
	}
	if got := len(sink.requests()); got != 0 {
		t.Errorf("sends: got %d, want 0", got)
	}
	if strings.Contains(err.Error(), authSecret) {
		t.Errorf("error %q reveals the client secret", err)
	}
	t.Logf("dead token server: %v", err)
}

// TestOAuth2TokenRefused: a token endpoint that refuses the client fails
// the attempt as retriable (like any token_unavailable before the first
// send), its reason naming the OAuth error code, and the refusal is
// logged on the destination's logger.
func TestOAuth2TokenRefused(t *testing.T) {
	t.Parallel()
	te := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusUnauthorized)
		_, _ = w.Write([]byte(`{"error":"invalid_client","error_description":"unknown client"}`))
	}))
	t.Cleanup(te.Close)
	sink := bearerSink(t, nil)
	var logs safeBuffer
	env := newClock(t0).env()
	env.Log = slog.New(slog.NewJSONHandler(&logs, nil)).With("destination", env.Name)
	d := openOpts(t, env, oauthOpts(sink.URL, te.URL))
	_, err := d.Deliver(deliverCtx(t), message(1))
	switch {
	case err == nil:
		t.Fatal("Deliver: got success, want token_unavailable")
	case destination.IsPermanent(err) || destination.IsGone(err):
		t.Fatalf("Deliver: got final %v, want retriable", err)
	case err.Error() != "not sent: token_unavailable: token endpoint refused: invalid_client (answered 401)":
		t.Fatalf("Deliver: got %q, want not sent: token_unavailable: token endpoint refused: invalid_client (answered 401)", err)
	}
	if got := len(sink.requests()); got != 0 {
		t.Errorf("sends: got %d, want 0", got)
	}
	var rec map[string]any
	if err := json.Unmarshal([]byte(logs.String()), &rec); err != nil {
		t.Fatalf("log %q: %v", logs.String(), err)
	}
	if rec["destination"] != "test" || rec["error"] != "invalid_client" || rec["error_description"] != "unknown client" {
		t.Errorf("log record: got %v, want destination test, error invalid_client, error_description unknown client", rec)
	}
}

// safeBuffer is a bytes.Buffer safe for concurrent use.
type safeBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *safeBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *safeBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func TestHeaderAndBasicAuth(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name       string
		auth       map[string]any
		header     string
		wantHeader string
	}{
		{"Header", map[string]any{"type": "header", "header": "x-api-key", "value": "k_s3cr3t"}, "X-Api-Key", "k_s3cr3t"},
		{"Basic", map[string]any{"type": "basic", "username": "hookd", "password": "p_s3cr3t"}, "Authorization",
			"Basic " + base64.StdEncoding.EncodeToString([]byte("hookd:p_s3cr3t"))},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			sink := newSink(t, nil)
			d := openOpts(t, nil, map[string]any{"url": sink.URL, "auth": tt.auth})
			for i := 1; i <= 2; i++ {
				if _, err := d.Deliver(deliverCtx(t), message(i)); err != nil {
					t.Fatalf("Deliver: %v", err)
				}
			}
			for _, r := range sink.requests() {
				if got := r.Header.Get(tt.header); got != tt.wantHeader {
					t.Errorf("%s: got %q, want %q", tt.header, got, tt.wantHeader)
				}
			}
		})
	}
}

func TestAuthOptions(t *testing.T) {
	t.Parallel()
	const u = "https://hooks.example.com/in"
	oa := func(extra map[string]any) map[string]any {
		m := map[string]any{"type": "oauth2", "token_url": "https://id.example.com/token", "client_id": "c", "client_secret": "s3cr3t"}
		for k, v := range extra {
			m[k] = v
		}
		return m
	}
	tests := []struct {
		name    string
		opts    map[string]any
		wantErr string
	}{
		{"Header", map[string]any{"url": u, "auth": map[string]any{"type": "header", "header": "X-Api-Key", "value": "s3cr3t"}}, ""},
		{"Basic", map[string]any{"url": u, "auth": map[string]any{"type": "basic", "username": "u", "password": "s3cr3t"}}, ""},
		{"OAuth2", map[string]any{"url": u, "auth": oa(map[string]any{"scope": "a b", "refresh_before": "10m", "validity": 2})}, ""},
		{"NoType", map[string]any{"url": u, "auth": map[string]any{"header": "X-Api-Key", "value": "s3cr3t"}}, "auth.type: required"},
		{"BadType", map[string]any{"url": u, "auth": map[string]any{"type": "digest"}}, `auth.type: "digest" is not supported`},
		{"UnknownKey", map[string]any{"url": u, "auth": map[string]any{"type": "basic", "username": "u", "token": "s3cr3t"}}, "field token not found"},
		{"HeaderMissing", map[string]any{"url": u, "auth": map[string]any{"type": "header", "value": "s3cr3t"}}, "auth.header: required"},
		{"HeaderNoValue", map[string]any{"url": u, "auth": map[string]any{"type": "header", "header": "X-Api-Key"}}, "auth.value: required"},
		{"HeaderReserved", map[string]any{"url": u, "auth": map[string]any{"type": "header", "header": "Webhook-Signature", "value": "s3cr3t"}}, "auth.header: Webhook-Signature cannot be set"},
		{"HeaderHookd", map[string]any{"url": u, "auth": map[string]any{"type": "header", "header": "Hookd-Source", "value": "s3cr3t"}}, "auth.header: Hookd-Source cannot be set"},
		{"HeaderHost", map[string]any{"url": u, "auth": map[string]any{"type": "header", "header": "Host", "value": "s3cr3t"}}, "auth.header: Host cannot be set"},
		{"HeaderValueControl", map[string]any{"url": u, "auth": map[string]any{"type": "header", "header": "X-Api-Key", "value": "s3cr3t\r\nX: 1"}}, "auth.value: contains a control character"},
		{"HeaderCollidesStatic", map[string]any{"url": u, "headers": map[string]string{"x-api-key": "a"}, "auth": map[string]any{"type": "header", "header": "X-Api-Key", "value": "s3cr3t"}}, "headers: X-Api-Key is set by auth"},
		{"BasicCollidesStatic", map[string]any{"url": u, "headers": map[string]string{"Authorization": "a"}, "auth": map[string]any{"type": "basic", "username": "u", "password": "s3cr3t"}}, "headers: Authorization is set by auth"},
		{"BasicNoUser", map[string]any{"url": u, "auth": map[string]any{"type": "basic", "password": "s3cr3t"}}, "auth.username: required"},
		{"BasicColon", map[string]any{"url": u, "auth": map[string]any{"type": "basic", "username": "a:b", "password": "s3cr3t"}}, "auth.username: must not contain ':'"},
		{"BasicWithHeader", map[string]any{"url": u, "auth": map[string]any{"type": "basic", "username": "u", "password": "s3cr3t", "header": "X"}}, "auth.header: not an option of type basic"},
		{"HeaderWithSecret", map[string]any{"url": u, "auth": map[string]any{"type": "header", "header": "X-K", "value": "v", "client_secret": "s3cr3t"}}, "auth.client_secret: not an option of type header"},
		{"OAuth2NoURL", map[string]any{"url": u, "auth": map[string]any{"type": "oauth2", "client_id": "c", "client_secret": "s3cr3t"}}, "auth.token_url: required"},
		{"OAuth2NoSecret", map[string]any{"url": u, "auth": map[string]any{"type": "oauth2", "token_url": "https://id.example.com/t", "client_id": "c"}}, "auth.client_secret: required"},
		{"OAuth2BadValidity", map[string]any{"url": u, "auth": oa(map[string]any{"validity": "soon"})}, "validity: invalid value"},
		{"OAuth2WithPassword", map[string]any{"url": u, "auth": oa(map[string]any{"password": "s3cr3t"})}, "auth.password: not an option of type oauth2"},
		{"OAuth2AllOptions", map[string]any{"url": u, "auth": oa(map[string]any{"auth_style": "post", "scope": []string{"a", "b"}, "audience": "https://api.example.com/", "params": map[string]any{"resource": "r"}})}, ""},
		{"OAuth2BadAuthStyle", map[string]any{"url": u, "auth": oa(map[string]any{"auth_style": "jwt"})}, `auth.auth_style: "jwt" is not supported (want basic or post)`},
		{"OAuth2ParamsOverride", map[string]any{"url": u, "auth": oa(map[string]any{"params": map[string]any{"grant_type": "password"}})}, "auth.params.grant_type: cannot be set in params"},
		{"OAuth2BadScope", map[string]any{"url": u, "auth": oa(map[string]any{"scope": []string{"a b"}})}, `auth.scope: "a b" is not a scope`},
		{"BasicWithAuthStyle", map[string]any{"url": u, "auth": map[string]any{"type": "basic", "username": "u", "password": "s3cr3t", "auth_style": "post"}}, "auth.auth_style: not an option of type basic"},
		{"HeaderWithAudience", map[string]any{"url": u, "auth": map[string]any{"type": "header", "header": "X-K", "value": "v", "audience": "a"}}, "auth.audience: not an option of type header"},
		{"HeaderWithParams", map[string]any{"url": u, "auth": map[string]any{"type": "header", "header": "X-K", "value": "v", "params": map[string]any{"a": "b"}}}, "auth.params: not an option of type header"},
		{"OAuth2CollidesStatic", map[string]any{"url": u, "headers": map[string]string{"authorization": "x"}, "auth": oa(nil)}, "headers: Authorization is set by auth"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			d, err := destination.Open(context.Background(), Type, nil, destinationtest.Options(tt.opts))
			if err == nil {
				defer d.Close()
			}
			switch {
			case tt.wantErr == "" && err != nil:
				t.Fatalf("New: got %v, want no error", err)
			case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
				t.Fatalf("New: got %v, want an error containing %q", err, tt.wantErr)
			}
			if err != nil && strings.Contains(err.Error(), "s3cr3t") {
				t.Errorf("error %q reveals a secret", err)
			}
		})
	}
}

func TestOAuth2TokenURLCheckedByGuard(t *testing.T) {
	t.Parallel()
	env, _ := guardEnv(t, nil, nil, nil)
	opts := oauthOpts("https://hooks.example.com/in", "https://169.254.169.254/token")
	_, err := destination.Open(context.Background(), Type, env, destinationtest.Options(opts))
	if err == nil || !strings.Contains(err.Error(), "auth.token_url:") {
		t.Fatalf("Open: got %v, want a refusal of auth.token_url", err)
	}
	if strings.Contains(err.Error(), authSecret) {
		t.Errorf("error %q reveals the client secret", err)
	}
}
