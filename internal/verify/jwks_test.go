package verify

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/rsa"
	"encoding/hex"
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

	jose "github.com/go-jose/go-jose/v4"

	"hookd"
	"hookd/internal/jsonlimit/jsonlimittest"
)

// oauthJWKSServer serves a JWK Set on 127.0.0.1 and counts its hits.
type oauthJWKSServer struct {
	*httptest.Server
	hits   atomic.Int64
	status atomic.Int64
	body   atomic.Pointer[[]byte]
}

func newOAuthJWKSServer(t testing.TB, keys ...jose.JSONWebKey) *oauthJWKSServer {
	t.Helper()
	s := &oauthJWKSServer{}
	s.status.Store(http.StatusOK)
	s.setKeys(t, keys...)
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.hits.Add(1)
		w.Header().Set("Content-Type", "application/jwk-set+json")
		w.WriteHeader(int(s.status.Load()))
		w.Write(*s.body.Load())
	}))
	t.Cleanup(s.Close)
	return s
}

func (s *oauthJWKSServer) setKeys(t testing.TB, keys ...jose.JSONWebKey) {
	t.Helper()
	b, err := json.Marshal(jose.JSONWebKeySet{Keys: keys})
	if err != nil {
		t.Fatal(err)
	}
	s.setBody(b)
}

func (s *oauthJWKSServer) setBody(b []byte) { s.body.Store(&b) }

func oauthPublicJWK(k *rsa.PrivateKey, kid string) jose.JSONWebKey {
	return jose.JSONWebKey{Key: &k.PublicKey, KeyID: kid, Algorithm: "RS256", Use: "sig"}
}

func newOAuthJWKSVerifier(t testing.TB, srv *oauthJWKSServer, clock *oauthTestClock, extra map[string]any) *oauthJWTVerifier {
	t.Helper()
	opts := map[string]any{"algorithms": []string{"RS256", "ES256", "EdDSA"}, "jwks_url": srv.URL, "audience": "hookd"}
	for k, v := range extra {
		opts[k] = v
	}
	return newOAuthJWTForTest(t, &Env{Now: clock.Now, Source: "test"}, opts)
}

// oauthPoll waits for cond, failing after a deadline.
func oauthPoll(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

func TestOAuthJWKSValid(t *testing.T) {
	t.Parallel()
	k := oauthTestKeys()
	srv := newOAuthJWKSServer(t,
		oauthPublicJWK(k.rsa, "rsa1"),
		jose.JSONWebKey{Key: &k.ec.PublicKey, KeyID: "ec1", Use: "sig"},
		jose.JSONWebKey{Key: k.ed.Public(), KeyID: "ed1"},
	)
	clock := newOAuthTestClock()
	v := newOAuthJWKSVerifier(t, srv, clock, nil)
	claims := map[string]any{"aud": "hookd", "exp": clock.Now().Add(time.Hour).Unix()}
	for _, tok := range []string{
		oauthSign(t, jose.RS256, k.rsa, "rsa1", claims),
		oauthSign(t, jose.ES256, k.ec, "ec1", claims),
		oauthSign(t, jose.EdDSA, k.ed, "ed1", claims),
		oauthSign(t, jose.EdDSA, k.ed, "", claims), // no kid: every key of the type is tried
	} {
		if err := v.Verify(context.Background(), oauthRequest(tok)); err != nil {
			t.Fatalf("got %v, want nil", err)
		}
	}
	if got := srv.hits.Load(); got != 1 {
		t.Fatalf("got %d JWKS fetches, want 1 (cached)", got)
	}
}

// TestOAuthJWKSUnknownKidNoStorm sends bursts of tokens with random
// unknown kids: the JWKS server is hit at most once per minute.
func TestOAuthJWKSUnknownKidNoStorm(t *testing.T) {
	t.Parallel()
	k := oauthTestKeys()
	srv := newOAuthJWKSServer(t, oauthPublicJWK(k.rsa, "rsa1"))
	clock := newOAuthTestClock()
	v := newOAuthJWKSVerifier(t, srv, clock, nil)
	claims := map[string]any{"aud": "hookd", "exp": clock.Now().Add(time.Hour).Unix()}

	// Warm the cache.
	if err := v.Verify(context.Background(), oauthRequest(oauthSign(t, jose.RS256, k.rsa, "rsa1", claims))); err != nil {
		t.Fatalf("warm-up: got %v, want nil", err)
	}
	if got := srv.hits.Load(); got != 1 {
		t.Fatalf("warm-up: got %d fetches, want 1", got)
	}

	tokens := make([]string, 50)
	for i := range tokens {
		var b [8]byte
		rand.Read(b[:])
		tokens[i] = oauthSign(t, jose.RS256, k.rsaOther, hex.EncodeToString(b[:]), claims)
	}
	burst := func() {
		t.Helper()
		var wg sync.WaitGroup
		errs := make([]error, len(tokens))
		for i, tok := range tokens {
			wg.Add(1)
			go func() {
				defer wg.Done()
				errs[i] = v.Verify(context.Background(), oauthRequest(tok))
			}()
		}
		wg.Wait()
		for _, err := range errs {
			oauthWantRefused(t, err, ChallengeInvalidBearer)
		}
	}

	// Within a minute of the first fetch: no refetch at all.
	clock.Advance(30 * time.Second)
	burst()
	if got := srv.hits.Load(); got != 1 {
		t.Fatalf("burst within a minute of the last fetch: got %d fetches, want 1", got)
	}

	// Past the minute: one refetch for the whole burst.
	clock.Advance(31 * time.Second)
	burst()
	if got := srv.hits.Load(); got != 2 {
		t.Fatalf("burst past a minute: got %d fetches, want 2", got)
	}
	clock.Advance(59 * time.Second)
	burst()
	if got := srv.hits.Load(); got != 2 {
		t.Fatalf("second burst within a minute: got %d fetches, want 2", got)
	}
	clock.Advance(2 * time.Second)
	burst()
	if got := srv.hits.Load(); got != 3 {
		t.Fatalf("burst past the next minute: got %d fetches, want 3", got)
	}
}

// TestOAuthJWKSRotation: a token signed with a key the issuer just added
// is accepted after the (rate-limited) refetch its unknown kid triggers.
func TestOAuthJWKSRotation(t *testing.T) {
	t.Parallel()
	k := oauthTestKeys()
	srv := newOAuthJWKSServer(t, oauthPublicJWK(k.rsa, "old"))
	clock := newOAuthTestClock()
	v := newOAuthJWKSVerifier(t, srv, clock, nil)
	claims := map[string]any{"aud": "hookd", "exp": clock.Now().Add(time.Hour).Unix()}
	if err := v.Verify(context.Background(), oauthRequest(oauthSign(t, jose.RS256, k.rsa, "old", claims))); err != nil {
		t.Fatal(err)
	}
	srv.setKeys(t, oauthPublicJWK(k.rsa, "old"), oauthPublicJWK(k.rsaOther, "new"))
	rotated := oauthRequest(oauthSign(t, jose.RS256, k.rsaOther, "new", claims))

	// Too soon after the first fetch: the new kid stays unknown.
	clock.Advance(10 * time.Second)
	oauthWantRefused(t, v.Verify(context.Background(), rotated), ChallengeInvalidBearer)
	clock.Advance(time.Minute)
	if err := v.Verify(context.Background(), rotated); err != nil {
		t.Fatalf("after refetch: got %v, want nil", err)
	}
	if got := srv.hits.Load(); got != 2 {
		t.Fatalf("got %d fetches, want 2", got)
	}
}

// TestOAuthJWKSKeepsLastGoodSet: a refresh that fails leaves the last
// good set serving, and is retried at most once a minute.
func TestOAuthJWKSKeepsLastGoodSet(t *testing.T) {
	t.Parallel()
	k := oauthTestKeys()
	srv := newOAuthJWKSServer(t, oauthPublicJWK(k.rsa, "rsa1"))
	clock := newOAuthTestClock()
	var logs oauthSyncBuffer
	v := newOAuthJWTForTest(t, &Env{Now: clock.Now, Log: slog.New(slog.NewTextHandler(&logs, nil))},
		map[string]any{"algorithms": []string{"RS256"}, "jwks_url": srv.URL, "jwks_ttl": "10m"})
	claims := map[string]any{"exp": clock.Now().Add(24 * time.Hour).Unix()}
	tok := oauthSign(t, jose.RS256, k.rsa, "rsa1", claims)
	if err := v.Verify(context.Background(), oauthRequest(tok)); err != nil {
		t.Fatal(err)
	}

	for _, tt := range []struct {
		name  string
		spoil func()
	}{
		{"ServerError", func() { srv.status.Store(http.StatusInternalServerError) }},
		{"NotJSON", func() { srv.status.Store(http.StatusOK); srv.setBody([]byte("<html>")) }},
		{"NoUsableKey", func() { srv.setBody([]byte(`{"keys":[{"kty":"oct","k":"c2VjcmV0"}]}`)) }},
		{"TooLarge", func() { srv.setBody(bytes.Repeat([]byte(" "), oauthJWKSMaxBytes+1)) }},
	} {
		tt.spoil()
		before := srv.hits.Load()
		clock.Advance(11 * time.Minute) // past the TTL and the retry interval
		if err := v.Verify(context.Background(), oauthRequest(tok)); err != nil {
			t.Fatalf("%s: got %v, want nil (last good set)", tt.name, err)
		}
		oauthPoll(t, "the background refresh", func() bool {
			v.jwks.mu.Lock()
			defer v.jwks.mu.Unlock()
			return srv.hits.Load() == before+1 && v.jwks.call == nil
		})
		// The failed refresh is not retried within the minute.
		for range 5 {
			if err := v.Verify(context.Background(), oauthRequest(tok)); err != nil {
				t.Fatalf("%s: got %v, want nil (last good set)", tt.name, err)
			}
		}
		if got := srv.hits.Load(); got != before+1 {
			t.Fatalf("%s: got %d fetches, want %d", tt.name, got, before+1)
		}
	}
	if !strings.Contains(logs.String(), "jwks fetch failed") {
		t.Fatalf("got logs %q, want a jwks fetch failure", logs.String())
	}
	if strings.Contains(logs.String(), tok) {
		t.Fatal("the logs hold a token")
	}
}

// TestOAuthJWKSUnavailable: with no key set ever fetched, hookd cannot
// decide and answers 503 — never 200 — and retries at most every 10s.
func TestOAuthJWKSUnavailable(t *testing.T) {
	t.Parallel()
	k := oauthTestKeys()
	tests := []struct {
		name  string
		setup func(s *oauthJWKSServer)
	}{
		{"Status500", func(s *oauthJWKSServer) { s.status.Store(http.StatusInternalServerError) }},
		{"Status404", func(s *oauthJWKSServer) { s.status.Store(http.StatusNotFound) }},
		{"Redirect", func(s *oauthJWKSServer) { s.status.Store(http.StatusFound) }},
		{"BadJSON", func(s *oauthJWKSServer) { s.setBody([]byte(`{"keys":`)) }},
		{"TooDeep", func(s *oauthJWKSServer) {
			key, err := json.Marshal(oauthPublicJWK(k.rsa, "rsa1"))
			if err != nil {
				t.Fatal(err)
			}
			s.setBody([]byte(`{"keys":[` + string(key) + `],"x":` + strings.Repeat("[", 200) + strings.Repeat("]", 200) + `}`))
		}},
		{"TooLarge", func(s *oauthJWKSServer) {
			s.setBody([]byte(`{"keys":[],"pad":"` + strings.Repeat("x", oauthJWKSMaxBytes) + `"}`))
		}},
		{"TooManyKeys", func(s *oauthJWKSServer) {
			keys := make([]jose.JSONWebKey, oauthJWKSMaxKeys+1)
			for i := range keys {
				keys[i] = oauthPublicJWK(k.rsa, fmt.Sprint(i))
			}
			s.setKeys(t, keys...)
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			srv := newOAuthJWKSServer(t, oauthPublicJWK(k.rsa, "rsa1"))
			tt.setup(srv)
			clock := newOAuthTestClock()
			v := newOAuthJWKSVerifier(t, srv, clock, nil)
			tok := oauthSign(t, jose.RS256, k.rsa, "rsa1", map[string]any{"aud": "hookd", "exp": clock.Now().Add(time.Hour).Unix()})
			for range 3 {
				err := v.Verify(context.Background(), oauthRequest(tok))
				if code := hookd.ErrorCode(err); code != hookd.EUnavailable {
					t.Fatalf("got %v (code %s), want %s", err, code, hookd.EUnavailable)
				}
			}
			if got := srv.hits.Load(); got != 1 {
				t.Fatalf("got %d fetches, want 1", got)
			}
			clock.Advance(oauthJWKSRetryEmpty)
			srv.status.Store(http.StatusOK)
			srv.setKeys(t, oauthPublicJWK(k.rsa, "rsa1"))
			if err := v.Verify(context.Background(), oauthRequest(tok)); err != nil {
				t.Fatalf("after recovery: got %v, want nil", err)
			}
		})
	}
}

// TestOAuthJWKSSymmetricKeyNeverHMAC: an "oct" key in a JWK Set is never
// used, so a token MACed with it fails even with HS256 allowed.
func TestOAuthJWKSSymmetricKeyNeverHMAC(t *testing.T) {
	t.Parallel()
	k := oauthTestKeys()
	oct := []byte("an-hmac-key-published-in-a-jwks!!")
	srv := newOAuthJWKSServer(t, oauthPublicJWK(k.rsa, "rsa1"), jose.JSONWebKey{Key: oct, KeyID: "oct1"})
	clock := newOAuthTestClock()
	v := newOAuthJWKSVerifier(t, srv, clock, map[string]any{"algorithms": []string{"RS256", "HS256"}, "secrets": []string{string(k.secret)}})
	tok := oauthSign(t, jose.HS256, oct, "oct1", map[string]any{"aud": "hookd", "exp": clock.Now().Add(time.Hour).Unix()})
	oauthWantRefused(t, v.Verify(context.Background(), oauthRequest(tok)), ChallengeInvalidBearer)
}

func TestOAuthParseJWKS(t *testing.T) {
	t.Parallel()
	k := oauthTestKeys()
	small, _ := rsa.GenerateKey(rand.Reader, 1024)
	jwk := func(key jose.JSONWebKey) string {
		b, err := json.Marshal(key)
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	good := jwk(oauthPublicJWK(k.rsa, "good"))
	tests := []struct {
		name    string
		doc     string
		kept    int
		skipped int
		wantErr bool
	}{
		{"OneKey", `{"keys":[` + good + `]}`, 1, 0, false},
		{"SkipsSymmetric", `{"keys":[` + good + `,{"kty":"oct","k":"c2VjcmV0c2VjcmV0"}]}`, 1, 1, false},
		{"SkipsPrivate", `{"keys":[` + good + `,` + jwk(jose.JSONWebKey{Key: k.ec, KeyID: "priv"}) + `]}`, 1, 1, false},
		{"SkipsEncryptionKey", `{"keys":[` + good + `,` + jwk(jose.JSONWebKey{Key: &k.ec.PublicKey, Use: "enc"}) + `]}`, 1, 1, false},
		{"SkipsWeakRSA", `{"keys":[` + good + `,` + jwk(jose.JSONWebKey{Key: &small.PublicKey}) + `]}`, 1, 1, false},
		{"SkipsUnknownType", `{"keys":[` + good + `,{"kty":"XYZ"}]}`, 1, 1, false},
		{"SkipsHMACAlg", `{"keys":[` + good + `,` + strings.Replace(jwk(oauthPublicJWK(k.rsaOther, "h")), `"RS256"`, `"HS256"`, 1) + `]}`, 1, 1, false},
		{"NoUsableKey", `{"keys":[{"kty":"oct","k":"c2VjcmV0"}]}`, 0, 0, true},
		{"Empty", `{"keys":[]}`, 0, 0, true},
		{"NotJSON", `keys`, 0, 0, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			keys, skipped, err := oauthParseJWKS([]byte(tt.doc))
			if tt.wantErr {
				if err == nil {
					t.Fatal("got nil, want an error")
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if len(keys) != tt.kept || skipped != tt.skipped {
				t.Fatalf("got %d kept, %d skipped, want %d, %d", len(keys), skipped, tt.kept, tt.skipped)
			}
		})
	}
}

func FuzzParseJWKS(f *testing.F) {
	k := oauthTestKeys()
	for _, key := range []jose.JSONWebKey{
		oauthPublicJWK(k.rsa, "r"),
		{Key: &k.ec.PublicKey, KeyID: "e"},
		{Key: k.ed.Public(), KeyID: "d"},
	} {
		b, _ := json.Marshal(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{key}})
		f.Add(b)
	}
	for _, s := range []string{`{"keys":[{"kty":"oct","k":"AA"}]}`, `{"keys":null}`, `{"keys":[{}]}`, `[]`, `{"keys":[{"kty":"EC","crv":"P-256","x":"","y":""}]}`} {
		f.Add([]byte(s))
	}
	for _, s := range jsonlimittest.DeepSeeds() {
		f.Add([]byte(s))
		f.Add([]byte(`{"keys":[` + s + `]}`))
	}
	f.Fuzz(func(t *testing.T, doc []byte) {
		keys, _, err := oauthParseJWKS(doc)
		if err != nil {
			return
		}
		if len(keys) == 0 || len(keys) > oauthJWKSMaxKeys {
			t.Fatalf("got %d keys", len(keys))
		}
		for _, key := range keys {
			switch key.key.(type) {
			case *rsa.PublicKey:
			default:
				if !key.fits("ES256") && !key.fits("ES384") && !key.fits("ES512") && !key.fits("EdDSA") {
					t.Fatalf("kept a key no algorithm can use: %T", key.key)
				}
			}
			if oauthJWTIsHMAC(key.alg) {
				t.Fatalf("kept a key for %s", key.alg)
			}
		}
	})
}

// oauthSyncBuffer is a bytes.Buffer safe for concurrent writers.
type oauthSyncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *oauthSyncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *oauthSyncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}
