package verify

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"hookd"
	"hookd/internal/config"
	"hookd/internal/egress"
	"hookd/internal/jsonlimit/jsonlimittest"
)

const (
	oauthIntroClientID     = "hookd-client"
	oauthIntroClientSecret = "s3cret:with/odd chars"
)

// oauthIntroServer is an RFC 7662 endpoint on 127.0.0.1. answer decides
// what a token gets; hits counts calls per token.
type oauthIntroServer struct {
	*httptest.Server
	mu     sync.Mutex
	answer func(w http.ResponseWriter, r *http.Request, token string)
	hits   map[string]int
	total  atomic.Int64
}

func newOAuthIntroServer(t testing.TB, answer func(w http.ResponseWriter, r *http.Request, token string)) *oauthIntroServer {
	t.Helper()
	s := &oauthIntroServer{answer: answer, hits: map[string]int{}}
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.total.Add(1)
		id, secret, ok := r.BasicAuth()
		if r.Method != http.MethodPost || !ok {
			http.Error(w, "bad request", http.StatusBadRequest)
			return
		}
		// RFC 6749 §2.3.1: both are form-encoded before Basic.
		if id != oauthIntroClientID || secret != strings.NewReplacer(":", "%3A", "/", "%2F", " ", "+").Replace(oauthIntroClientSecret) {
			http.Error(w, `{"error":"invalid_client"}`, http.StatusUnauthorized)
			return
		}
		if ct := r.Header.Get("Content-Type"); ct != "application/x-www-form-urlencoded" {
			http.Error(w, "bad content type", http.StatusBadRequest)
			return
		}
		tok := r.PostFormValue("token")
		if r.PostFormValue("token_type_hint") != "access_token" {
			http.Error(w, "bad hint", http.StatusBadRequest)
			return
		}
		s.mu.Lock()
		s.hits[tok]++
		answer := s.answer
		s.mu.Unlock()
		answer(w, r, tok)
	}))
	t.Cleanup(s.Close)
	return s
}

func (s *oauthIntroServer) count(tok string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.hits[tok]
}

func (s *oauthIntroServer) setAnswer(f func(w http.ResponseWriter, r *http.Request, token string)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.answer = f
}

// oauthIntroJSON answers a fixed JSON document.
func oauthIntroJSON(doc map[string]any) func(http.ResponseWriter, *http.Request, string) {
	return func(w http.ResponseWriter, _ *http.Request, _ string) {
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(doc)
	}
}

func newOAuthIntrospectorForTest(t testing.TB, env *Env, srv *oauthIntroServer, extra map[string]any) *oauthIntrospector {
	t.Helper()
	if env.Egress == nil {
		env.Egress = oauthTestEgress(t) // the test server is on 127.0.0.1
	}
	opts := map[string]any{"url": srv.URL + "/introspect", "client_id": oauthIntroClientID, "client_secret": oauthIntroClientSecret}
	for k, v := range extra {
		opts[k] = v
	}
	m, err := config.NewVerify("oauth_introspection", opts)
	if err != nil {
		t.Fatal(err)
	}
	v, err := newOAuthIntrospection(env, m)
	if err != nil {
		t.Fatalf("newOAuthIntrospection: %v", err)
	}
	return v.(*oauthIntrospector)
}

func oauthWantUnavailable(t testing.TB, err error) {
	t.Helper()
	if code := hookd.ErrorCode(err); code != hookd.EUnavailable {
		t.Fatalf("got %v (code %s), want %s", err, code, hookd.EUnavailable)
	}
	if c := Challenge(err); c != "" {
		t.Fatalf("got challenge %q on a 503", c)
	}
}

func TestOAuthIntrospectionAnswers(t *testing.T) {
	t.Parallel()
	clock := newOAuthTestClock()
	now := clock.Now()
	slowRelease := make(chan struct{})
	t.Cleanup(func() { close(slowRelease) })
	tests := []struct {
		name   string
		answer func(http.ResponseWriter, *http.Request, string)
		extra  map[string]any
		want   string // "ok", "401", "401expired", "503"
	}{
		{"Active", oauthIntroJSON(map[string]any{"active": true, "exp": now.Add(time.Hour).Unix(), "client_id": "provider-a"}), nil, "ok"},
		{"ActiveNoExp", oauthIntroJSON(map[string]any{"active": true}), nil, "ok"},
		{"Inactive", oauthIntroJSON(map[string]any{"active": false}), nil, "401"},
		{"ActiveButExpired", oauthIntroJSON(map[string]any{"active": true, "exp": now.Add(-time.Second).Unix()}), nil, "401expired"},
		{"ActiveNotYetValid", oauthIntroJSON(map[string]any{"active": true, "nbf": now.Add(time.Minute).Unix()}), nil, "401"},
		{"AudienceMatches", oauthIntroJSON(map[string]any{"active": true, "aud": []string{"x", "hookd"}}), map[string]any{"audience": "hookd"}, "ok"},
		{"AudienceString", oauthIntroJSON(map[string]any{"active": true, "aud": "hookd"}), map[string]any{"audience": []string{"hookd"}}, "ok"},
		{"AudienceWrong", oauthIntroJSON(map[string]any{"active": true, "aud": "other"}), map[string]any{"audience": "hookd"}, "401"},
		{"AudienceMissing", oauthIntroJSON(map[string]any{"active": true}), map[string]any{"audience": "hookd"}, "401"},
		{"ScopesPresent", oauthIntroJSON(map[string]any{"active": true, "scope": "read webhooks:write"}), map[string]any{"scope": "webhooks:write"}, "ok"},
		{"ScopeMissing", oauthIntroJSON(map[string]any{"active": true, "scope": "read"}), map[string]any{"scope": []string{"read", "webhooks:write"}}, "401"},
		{"Status500", func(w http.ResponseWriter, _ *http.Request, _ string) { http.Error(w, "boom", 500) }, nil, "503"},
		{"Status401FromServer", func(w http.ResponseWriter, _ *http.Request, _ string) { http.Error(w, "no", 401) }, nil, "503"},
		{"Redirect", func(w http.ResponseWriter, r *http.Request, _ string) {
			http.Redirect(w, r, "/elsewhere", http.StatusTemporaryRedirect)
		}, nil, "503"},
		{"BadJSON", func(w http.ResponseWriter, _ *http.Request, _ string) { w.Write([]byte(`{"active":tru`)) }, nil, "503"},
		{"ActiveAsString", oauthIntroJSON(map[string]any{"active": "true"}), nil, "503"},
		{"ActiveMissing", oauthIntroJSON(map[string]any{"exp": now.Add(time.Hour).Unix()}), nil, "503"},
		{"TooDeep", func(w http.ResponseWriter, _ *http.Request, _ string) {
			fmt.Fprintf(w, `{"active":true,"ext":%s%s}`, strings.Repeat("[", 200), strings.Repeat("]", 200))
		}, nil, "503"},
		{"TooLarge", func(w http.ResponseWriter, _ *http.Request, _ string) {
			fmt.Fprintf(w, `{"active":true,"pad":"%s"}`, strings.Repeat("x", oauthIntroMaxBytes))
		}, nil, "503"},
		{"SlowBeyondTimeout", func(w http.ResponseWriter, r *http.Request, _ string) {
			select {
			case <-r.Context().Done():
			case <-slowRelease:
			}
		}, map[string]any{"timeout": "100ms"}, "503"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			srv := newOAuthIntroServer(t, tt.answer)
			var logs oauthSyncBuffer
			env := &Env{Now: clock.Now, Source: "test", Log: slog.New(slog.NewTextHandler(&logs, nil))}
			v := newOAuthIntrospectorForTest(t, env, srv, tt.extra)
			tok := "opaque-" + tt.name + "-token"
			start := time.Now()
			err := v.Verify(context.Background(), oauthRequest(tok))
			elapsed := time.Since(start)
			switch tt.want {
			case "ok":
				if err != nil {
					t.Fatalf("got %v, want nil", err)
				}
			case "401":
				oauthWantRefused(t, err, ChallengeInvalidBearer, tok)
			case "401expired":
				oauthWantRefused(t, err, ChallengeInvalidBearer, tok)
				if got := hookd.ErrorMessage(err); got != "token expired" {
					t.Fatalf("got message %q, want %q", got, "token expired")
				}
			case "503":
				oauthWantUnavailable(t, err)
				if strings.Contains(err.Error(), tok) {
					t.Fatalf("error %q reveals the token", err)
				}
			}
			if tt.name == "SlowBeyondTimeout" {
				t.Logf("slow server: answered 503 after %s", elapsed)
				if elapsed > 3*time.Second {
					t.Fatalf("got %s, want about the 100ms timeout", elapsed)
				}
			}
			if strings.Contains(logs.String(), tok) {
				t.Fatalf("the logs hold the token: %s", logs.String())
			}
			if got := srv.count(tok); got != 1 {
				t.Fatalf("got %d calls, want 1", got)
			}
		})
	}
}

// TestOAuthIntrospectionFailuresNotCached: a 503 is not remembered; the
// next request asks again and gets the server's real answer.
func TestOAuthIntrospectionFailuresNotCached(t *testing.T) {
	t.Parallel()
	clock := newOAuthTestClock()
	srv := newOAuthIntroServer(t, func(w http.ResponseWriter, _ *http.Request, _ string) { http.Error(w, "down", 503) })
	v := newOAuthIntrospectorForTest(t, &Env{Now: clock.Now}, srv, nil)
	oauthWantUnavailable(t, v.Verify(context.Background(), oauthRequest("tok-a")))
	srv.setAnswer(oauthIntroJSON(map[string]any{"active": true}))
	if err := v.Verify(context.Background(), oauthRequest("tok-a")); err != nil {
		t.Fatalf("got %v, want nil", err)
	}
	if got := srv.count("tok-a"); got != 2 {
		t.Fatalf("got %d calls, want 2", got)
	}
}

func TestOAuthIntrospectionCache(t *testing.T) {
	t.Parallel()
	clock := newOAuthTestClock()
	now := clock.Now()
	var active atomic.Bool
	active.Store(true)
	srv := newOAuthIntroServer(t, func(w http.ResponseWriter, r *http.Request, tok string) {
		switch tok {
		case "short-lived":
			oauthIntroJSON(map[string]any{"active": active.Load(), "exp": now.Add(time.Minute).Unix()})(w, r, tok)
		case "long-lived":
			oauthIntroJSON(map[string]any{"active": true, "exp": now.Add(24 * time.Hour).Unix()})(w, r, tok)
		default:
			oauthIntroJSON(map[string]any{"active": false})(w, r, tok)
		}
	})
	v := newOAuthIntrospectorForTest(t, &Env{Now: clock.Now}, srv, map[string]any{"cache_ttl": "5m"})
	verify := func(tok string) error { return v.Verify(context.Background(), oauthRequest(tok)) }

	// Positive answers are reused.
	for range 3 {
		if err := verify("short-lived"); err != nil {
			t.Fatal(err)
		}
		if err := verify("long-lived"); err != nil {
			t.Fatal(err)
		}
	}
	if got := srv.count("short-lived") + srv.count("long-lived"); got != 2 {
		t.Fatalf("got %d calls, want 2 (cache hits)", got)
	}
	// Negative answers are reused, for 30s.
	for range 3 {
		oauthWantRefused(t, verify("revoked"), ChallengeInvalidBearer)
	}
	if got := srv.count("revoked"); got != 1 {
		t.Fatalf("got %d calls for an inactive token, want 1", got)
	}

	// Past the token's exp (1 min) but within cache_ttl: the entry is gone,
	// the server is asked again, and its answer rules.
	active.Store(false)
	clock.Advance(61 * time.Second)
	oauthWantRefused(t, verify("short-lived"), ChallengeInvalidBearer)
	if got := srv.count("short-lived"); got != 2 {
		t.Fatalf("got %d calls after exp, want 2", got)
	}
	if got := srv.count("revoked"); got != 1 {
		t.Fatalf("revoked: got %d calls, want 1 still", got)
	}
	oauthWantRefused(t, verify("revoked"), ChallengeInvalidBearer)
	if got := srv.count("revoked"); got != 2 {
		t.Fatalf("got %d calls after the negative TTL, want 2", got)
	}

	// The long-lived token is cached for cache_ttl, not until its exp.
	if err := verify("long-lived"); err != nil {
		t.Fatal(err)
	}
	if got := srv.count("long-lived"); got != 1 {
		t.Fatalf("got %d calls within cache_ttl, want 1", got)
	}
	clock.Advance(4 * time.Minute)
	if err := verify("long-lived"); err != nil {
		t.Fatal(err)
	}
	if got := srv.count("long-lived"); got != 2 {
		t.Fatalf("got %d calls past cache_ttl, want 2", got)
	}

	// The cache never holds a token, only salted hashes of it.
	v.mu.Lock()
	for k := range v.cache {
		if strings.Contains(string(k[:]), "lived") {
			t.Error("a cache key holds the token")
		}
	}
	v.mu.Unlock()
}

func TestOAuthIntrospectionNoCache(t *testing.T) {
	t.Parallel()
	srv := newOAuthIntroServer(t, oauthIntroJSON(map[string]any{"active": true}))
	v := newOAuthIntrospectorForTest(t, &Env{}, srv, map[string]any{"cache_ttl": "0s"})
	for range 3 {
		if err := v.Verify(context.Background(), oauthRequest("t")); err != nil {
			t.Fatal(err)
		}
	}
	if got := srv.count("t"); got != 3 {
		t.Fatalf("got %d calls, want 3 (cache disabled)", got)
	}
}

// TestOAuthIntrospectionSingleFlight: concurrent requests with the same
// token share one call.
func TestOAuthIntrospectionSingleFlight(t *testing.T) {
	t.Parallel()
	release := make(chan struct{})
	srv := newOAuthIntroServer(t, func(w http.ResponseWriter, r *http.Request, tok string) {
		<-release
		oauthIntroJSON(map[string]any{"active": true})(w, r, tok)
	})
	v := newOAuthIntrospectorForTest(t, &Env{}, srv, nil)
	const n = 50
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = v.Verify(context.Background(), oauthRequest("shared"))
		}()
	}
	oauthPoll(t, "every request to join the call", func() bool { return v.joined.Load() == n-1 })
	close(release)
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			t.Fatalf("got %v, want nil", err)
		}
	}
	if got := srv.count("shared"); got != 1 {
		t.Fatalf("got %d calls, want 1", got)
	}
}

// TestOAuthIntrospectionClientGone: a waiting request whose client hung
// up gets 503 at once, and the call still completes for the others.
func TestOAuthIntrospectionClientGone(t *testing.T) {
	t.Parallel()
	release := make(chan struct{})
	srv := newOAuthIntroServer(t, func(w http.ResponseWriter, r *http.Request, tok string) {
		<-release
		oauthIntroJSON(map[string]any{"active": true})(w, r, tok)
	})
	v := newOAuthIntrospectorForTest(t, &Env{}, srv, nil)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- v.Verify(ctx, oauthRequest("tok")) }()
	oauthPoll(t, "the call to start", func() bool { return srv.count("tok") == 1 })
	cancel()
	oauthWantUnavailable(t, <-done)
	close(release)
	if err := v.Verify(context.Background(), oauthRequest("tok")); err != nil {
		t.Fatalf("got %v, want nil", err)
	}
	if got := srv.count("tok"); got != 1 {
		t.Fatalf("got %d calls, want 1", got)
	}
}

func TestOAuthIntrospectionNoToken(t *testing.T) {
	t.Parallel()
	srv := newOAuthIntroServer(t, oauthIntroJSON(map[string]any{"active": true}))
	v := newOAuthIntrospectorForTest(t, &Env{}, srv, nil)
	oauthWantRefused(t, v.Verify(context.Background(), oauthRequest("")), ChallengeBearer)
	oauthWantRefused(t, v.Verify(context.Background(), oauthRequest(strings.Repeat("a", oauthMaxToken+1))), ChallengeInvalidBearer)
	oauthWantRefused(t, v.Verify(context.Background(), oauthRequest("a b")), ChallengeInvalidBearer)
	if got := srv.total.Load(); got != 0 {
		t.Fatalf("got %d calls, want 0", got)
	}
}

func TestOAuthIntrospectionConfig(t *testing.T) {
	t.Parallel()
	base := func(extra map[string]any) map[string]any {
		m := map[string]any{"url": "https://as.example/introspect", "client_id": "id", "client_secret": "secret-value"}
		for k, v := range extra {
			m[k] = v
		}
		return m
	}
	tests := []struct {
		name string
		opts map[string]any
		want string
	}{
		{"NoURL", base(map[string]any{"url": ""}), "url: required"},
		{"PlainHTTP", base(map[string]any{"url": "http://as.example/introspect"}), "plain http"},
		{"NoSecret", base(map[string]any{"client_secret": ""}), "client_id and client_secret: required"},
		{"NegativeTTL", base(map[string]any{"cache_ttl": "-1s"}), "cache_ttl"},
		{"ZeroTimeout", base(map[string]any{"timeout": "0s"}), "timeout"},
		{"BlankScope", base(map[string]any{"scope": " "}), "scope: empty"},
		{"UnknownOption", base(map[string]any{"client_secrets": "x"}), "unknown key \"client_secrets\""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			m, err := config.NewVerify("oauth_introspection", tt.opts)
			if err != nil {
				t.Fatal(err)
			}
			_, err = newOAuthIntrospection(&Env{}, m)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("got %v, want an error containing %q", err, tt.want)
			}
			if strings.Contains(err.Error(), "secret-value") {
				t.Fatalf("error %q reveals the secret", err)
			}
		})
	}
	// allow_http lets the source use plain http beyond loopback; the
	// egress guard must allow that host too.
	m, _ := config.NewVerify("oauth_introspection", base(map[string]any{"url": "http://as.internal/introspect", "allow_http": true}))
	if _, err := newOAuthIntrospection(&Env{}, m); err == nil || !strings.Contains(err.Error(), "egress.allow_http_hosts") {
		t.Fatalf("allow_http without egress.allow_http_hosts: got %v, want the guard's refusal", err)
	}
	g, err := egress.NewGuard(nil, []string{"as.internal"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := newOAuthIntrospection(&Env{Egress: g}, m); err != nil {
		t.Fatalf("allow_http: got %v, want nil", err)
	}
}

func TestOAuthParseIntrospection(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		doc     string
		want    oauthIntroResult
		wantErr bool
	}{
		{"Inactive", `{"active":false}`, oauthIntroResult{}, false},
		{"Full", `{"active":true,"exp":1700000000,"nbf":1600000000.5,"aud":["a","b"],"scope":"x  y"}`,
			oauthIntroResult{active: true, exp: time.Unix(1700000000, 0), nbf: time.Unix(1600000000, 5e8), aud: []string{"a", "b"}, scope: []string{"x", "y"}}, false},
		{"AudString", `{"active":true,"aud":"a"}`, oauthIntroResult{active: true, aud: []string{"a"}}, false},
		{"NullFields", `{"active":true,"exp":null,"aud":null}`, oauthIntroResult{active: true}, false},
		{"HugeExpClamped", `{"active":true,"exp":1e300}`, oauthIntroResult{active: true, exp: time.Unix(oauthMaxUnix, 0)}, false},
		{"ActiveMissing", `{}`, oauthIntroResult{}, true},
		{"ActiveString", `{"active":"true"}`, oauthIntroResult{}, true},
		{"ExpString", `{"active":true,"exp":"soon"}`, oauthIntroResult{}, true},
		{"AudNumber", `{"active":true,"aud":5}`, oauthIntroResult{}, true},
		{"NotObject", `[true]`, oauthIntroResult{}, true},
		{"Trailing", `{"active":true} x`, oauthIntroResult{}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := oauthParseIntrospection([]byte(tt.doc))
			if tt.wantErr {
				if err == nil {
					t.Fatalf("got %+v, want an error", got)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got.active != tt.want.active || !got.exp.Equal(tt.want.exp) || !got.nbf.Equal(tt.want.nbf) ||
				strings.Join(got.aud, ",") != strings.Join(tt.want.aud, ",") || strings.Join(got.scope, ",") != strings.Join(tt.want.scope, ",") {
				t.Fatalf("got %+v, want %+v", got, tt.want)
			}
		})
	}
}

func FuzzIntrospectionResponse(f *testing.F) {
	for _, s := range []string{
		`{"active":true}`, `{"active":false}`, `{"active":true,"exp":1700000000,"aud":"a","scope":"a b"}`,
		`{"active":true,"aud":["a",1]}`, `{"active":true,"exp":-1e309}`, `{"active":true,"nbf":"1"}`, `null`, `{"active":null}`,
	} {
		f.Add([]byte(s))
	}
	for _, s := range jsonlimittest.DeepSeeds() {
		f.Add([]byte(s))
		f.Add([]byte(`{"active":true,"ext":` + s + `}`))
	}
	f.Fuzz(func(t *testing.T, doc []byte) {
		res, err := oauthParseIntrospection(doc)
		if err != nil {
			return
		}
		var probe struct {
			Active bool `json:"active"`
		}
		if json.Unmarshal(doc, &probe) != nil || probe.Active != res.active {
			t.Fatalf("parsed active=%v from %q", res.active, doc)
		}
		if res.exp.Unix() > oauthMaxUnix || res.exp.Unix() < -oauthMaxUnix {
			t.Fatalf("exp out of range: %v", res.exp)
		}
	})
}

// The answers of JWKS and introspection endpoints nested beyond
// jsonlimit.DefaultDepth are refused with a clear error before decoding.
func TestOAuthAnswersTooDeep(t *testing.T) {
	t.Parallel()
	deep := strings.Repeat("[", 129) + strings.Repeat("]", 129)
	if _, err := oauthParseIntrospection([]byte(`{"active":true,"x":` + deep + `}`)); err == nil || err.Error() != "introspection: JSON nested deeper than 128 levels" {
		t.Errorf("introspection: got %v, want introspection: JSON nested deeper than 128 levels", err)
	}
	if _, _, err := oauthParseJWKS([]byte(`{"keys":[],"x":` + deep + `}`)); err == nil || err.Error() != "jwks: JSON nested deeper than 128 levels" {
		t.Errorf("jwks: got %v, want jwks: JSON nested deeper than 128 levels", err)
	}
	atLimit := strings.Repeat("[", 127) + strings.Repeat("]", 127)
	if res, err := oauthParseIntrospection([]byte(`{"active":true,"x":` + atLimit + `}`)); err != nil || !res.active {
		t.Errorf("introspection at the limit: got %+v, %v, want active", res, err)
	}
}
