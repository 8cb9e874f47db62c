package verify

import (
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/hmac"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"

	"hookd"
	"hookd/internal/config"
)

// oauthTestClock is an injected clock.
type oauthTestClock struct {
	mu sync.Mutex
	t  time.Time
}

func newOAuthTestClock() *oauthTestClock {
	return &oauthTestClock{t: time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)}
}

func (c *oauthTestClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *oauthTestClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// oauthTestKeySet holds the keys the tests sign with, generated once.
type oauthTestKeySet struct {
	rsa, rsaOther *rsa.PrivateKey
	ec            *ecdsa.PrivateKey
	ed            ed25519.PrivateKey
	secret        []byte
}

var oauthTestKeys = sync.OnceValue(func() *oauthTestKeySet {
	k := &oauthTestKeySet{secret: []byte("0123456789abcdef0123456789abcdef-hs256")}
	var err error
	if k.rsa, err = rsa.GenerateKey(rand.Reader, 2048); err != nil {
		panic(err)
	}
	if k.rsaOther, err = rsa.GenerateKey(rand.Reader, 2048); err != nil {
		panic(err)
	}
	if k.ec, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader); err != nil {
		panic(err)
	}
	if _, k.ed, err = ed25519.GenerateKey(rand.Reader); err != nil {
		panic(err)
	}
	return k
})

func oauthPEM(t testing.TB, pub any) string {
	t.Helper()
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}))
}

func oauthJWK(t testing.TB, pub any, kid, alg string) map[string]any {
	t.Helper()
	b, err := json.Marshal(jose.JSONWebKey{Key: pub, KeyID: kid, Algorithm: alg, Use: "sig"})
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	return m
}

// oauthSign makes a compact JWS with go-jose.
func oauthSign(t testing.TB, alg jose.SignatureAlgorithm, key any, kid string, claims map[string]any) string {
	t.Helper()
	sk := jose.SigningKey{Algorithm: alg, Key: key}
	if kid != "" {
		sk.Key = jose.JSONWebKey{Key: key, KeyID: kid}
	}
	sig, err := jose.NewSigner(sk, (&jose.SignerOptions{}).WithType("JWT"))
	if err != nil {
		t.Fatal(err)
	}
	tok, err := jwt.Signed(sig).Claims(claims).Serialize()
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// oauthRawToken assembles a token from a header and claims by hand, with
// an HMAC-SHA256 signature under macKey (or the given raw signature).
func oauthRawToken(t testing.TB, header, claims map[string]any, macKey []byte, sig string) string {
	t.Helper()
	h, _ := json.Marshal(header)
	c, _ := json.Marshal(claims)
	in := base64.RawURLEncoding.EncodeToString(h) + "." + base64.RawURLEncoding.EncodeToString(c)
	if macKey != nil {
		m := hmac.New(sha256.New, macKey)
		m.Write([]byte(in))
		sig = base64.RawURLEncoding.EncodeToString(m.Sum(nil))
	}
	return in + "." + sig
}

func oauthRequest(tok string) *Request {
	h := http.Header{}
	if tok != "" {
		h.Set("Authorization", "Bearer "+tok)
	}
	return &Request{Method: http.MethodPost, Header: h}
}

func newOAuthJWTForTest(t testing.TB, env *Env, opts map[string]any) *oauthJWTVerifier {
	t.Helper()
	if env.Egress == nil {
		env.Egress = oauthTestEgress(t) // the test servers are on 127.0.0.1
	}
	m, err := config.NewVerify("oauth_jwt", opts)
	if err != nil {
		t.Fatal(err)
	}
	v, err := newOAuthJWT(env, m)
	if err != nil {
		t.Fatalf("newOAuthJWT: %v", err)
	}
	return v.(*oauthJWTVerifier)
}

// oauthWantRefused asserts a 401 with the given challenge, and that
// nothing secret-looking leaks into the error (message or logged cause).
func oauthWantRefused(t testing.TB, err error, challenge string, leaks ...string) {
	t.Helper()
	if err == nil {
		t.Fatal("got nil, want a 401")
	}
	if code := hookd.ErrorCode(err); code != hookd.EUnauthorized {
		t.Fatalf("got code %s (%v), want %s", code, err, hookd.EUnauthorized)
	}
	if got := Challenge(err); got != challenge {
		t.Fatalf("got challenge %q, want %q", got, challenge)
	}
	msg := hookd.ErrorMessage(err)
	switch msg {
	case "invalid token", "token expired", "a bearer token is required":
	default:
		t.Fatalf("got message %q, want a generic one", msg)
	}
	for _, l := range leaks {
		if l != "" && strings.Contains(err.Error(), l) {
			t.Fatalf("error %q reveals %q", err, l)
		}
	}
}

func TestOAuthJWTValid(t *testing.T) {
	t.Parallel()
	k := oauthTestKeys()
	clock := newOAuthTestClock()
	now := clock.Now()
	claims := map[string]any{"iss": "https://issuer.example", "aud": "hookd", "sub": "provider-a", "exp": now.Add(time.Hour).Unix(), "iat": now.Unix()}
	base := map[string]any{"issuer": "https://issuer.example", "audience": "hookd"}
	with := func(extra map[string]any) map[string]any {
		out := map[string]any{}
		for k, v := range base {
			out[k] = v
		}
		for k, v := range extra {
			out[k] = v
		}
		return out
	}
	tests := []struct {
		name string
		opts map[string]any
		tok  string
	}{
		{"RS256PEM", with(map[string]any{"algorithms": []string{"RS256"}, "keys": []any{oauthPEM(t, &k.rsa.PublicKey)}}),
			oauthSign(t, jose.RS256, k.rsa, "", claims)},
		{"PS256PEM", with(map[string]any{"algorithms": []string{"PS256"}, "keys": []any{oauthPEM(t, &k.rsa.PublicKey)}}),
			oauthSign(t, jose.PS256, k.rsa, "", claims)},
		{"ES256JWKMapping", with(map[string]any{"algorithms": "ES256", "keys": []any{oauthJWK(t, &k.ec.PublicKey, "ec1", "ES256")}}),
			oauthSign(t, jose.ES256, k.ec, "ec1", claims)},
		{"EdDSAPEM", with(map[string]any{"algorithms": []string{"EdDSA"}, "keys": []any{oauthPEM(t, k.ed.Public())}}),
			oauthSign(t, jose.EdDSA, k.ed, "", claims)},
		{"HS256Secret", with(map[string]any{"algorithms": []string{"HS256"}, "secrets": []string{"another-secret-of-at-least-32-bytes!!", string(k.secret)}}),
			oauthSign(t, jose.HS256, k.secret, "", claims)},
		{"MixedTypedKeysRS256", with(map[string]any{"algorithms": []string{"RS256", "HS256"}, "keys": []any{oauthPEM(t, &k.rsa.PublicKey)}, "secrets": []string{string(k.secret)}}),
			oauthSign(t, jose.RS256, k.rsa, "", claims)},
		{"MixedTypedKeysHS256", with(map[string]any{"algorithms": []string{"RS256", "HS256"}, "keys": []any{oauthPEM(t, &k.rsa.PublicKey)}, "secrets": []string{string(k.secret)}}),
			oauthSign(t, jose.HS256, k.secret, "", claims)},
		{"KidMatchesAmongSeveral", with(map[string]any{"algorithms": []string{"RS256"}, "keys": []any{oauthJWK(t, &k.rsaOther.PublicKey, "old", ""), oauthJWK(t, &k.rsa.PublicKey, "new", "")}}),
			oauthSign(t, jose.RS256, k.rsa, "new", claims)},
		{"RequiredClaimPresent", with(map[string]any{"algorithms": []string{"HS256"}, "secrets": string(k.secret), "required_claims": []string{"sub"}}),
			oauthSign(t, jose.HS256, k.secret, "", claims)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			v := newOAuthJWTForTest(t, &Env{Now: clock.Now}, tt.opts)
			if err := v.Verify(context.Background(), oauthRequest(tt.tok)); err != nil {
				t.Fatalf("got %v, want nil", err)
			}
		})
	}
}

func TestOAuthJWTAttacks(t *testing.T) {
	t.Parallel()
	k := oauthTestKeys()
	clock := newOAuthTestClock()
	now := clock.Now()
	good := func() map[string]any {
		return map[string]any{"iss": "https://issuer.example", "aud": "hookd", "sub": "provider-a", "exp": now.Add(time.Hour).Unix()}
	}
	mod := func(f func(m map[string]any)) map[string]any { m := good(); f(m); return m }
	rsaPEM := oauthPEM(t, &k.rsa.PublicKey)
	rsaOnly := map[string]any{"algorithms": []string{"RS256"}, "keys": []any{rsaPEM}, "issuer": "https://issuer.example", "audience": "hookd"}
	rsaAndHS := map[string]any{"algorithms": []string{"RS256", "HS256"}, "keys": []any{rsaPEM}, "secrets": []string{string(k.secret)}, "issuer": "https://issuer.example", "audience": "hookd"}
	withKid := map[string]any{"algorithms": []string{"RS256"}, "keys": []any{oauthJWK(t, &k.rsa.PublicKey, "k1", "RS256")}, "audience": "hookd"}
	ecOnlyButRS := map[string]any{"algorithms": []string{"RS256", "ES256"}, "keys": []any{oauthPEM(t, &k.ec.PublicKey)}, "audience": "hookd"}
	required := map[string]any{"algorithms": []string{"RS256"}, "keys": []any{rsaPEM}, "audience": "hookd", "required_claims": []string{"tenant"}}

	// Key confusion: HS256 with the RSA public key's bytes as the secret.
	derPub, _ := x509.MarshalPKIXPublicKey(&k.rsa.PublicKey)
	confusedPEM := oauthRawToken(t, map[string]any{"alg": "HS256", "typ": "JWT"}, good(), []byte(rsaPEM), "")
	confusedDER := oauthRawToken(t, map[string]any{"alg": "HS256", "typ": "JWT"}, good(), derPub, "")
	goodRS := oauthSign(t, jose.RS256, k.rsa, "", good())
	parts := strings.Split(goodRS, ".")
	tampered := parts[0] + "." + base64.RawURLEncoding.EncodeToString([]byte(`{"iss":"https://issuer.example","aud":"hookd","sub":"admin","exp":4102444800}`)) + "." + parts[2]

	tests := []struct {
		name string
		opts map[string]any
		tok  string
		msg  string // "" means "invalid token"
		// cause, when set, is the internal reason the test means to hit.
		cause error
	}{
		{"AlgNoneEmptySignature", rsaOnly, oauthRawToken(t, map[string]any{"alg": "none", "typ": "JWT"}, good(), nil, ""), "", errOAuthBadForm},
		{"AlgNoneWithSignature", rsaOnly, oauthRawToken(t, map[string]any{"alg": "none"}, good(), nil, "c2ln"), "", errJWTAlg},
		{"AlgNoneUpperCase", rsaAndHS, oauthRawToken(t, map[string]any{"alg": "NONE"}, good(), nil, "c2ln"), "", errJWTAlg},
		{"AlgMissing", rsaOnly, oauthRawToken(t, map[string]any{"typ": "JWT"}, good(), nil, "c2ln"), "", errJWTAlg},
		{"KeyConfusionPEMNotAllowed", rsaOnly, confusedPEM, "", errJWTAlg},
		{"KeyConfusionPEMTypedKeys", rsaAndHS, confusedPEM, "", errJWTSignature},
		{"KeyConfusionDERTypedKeys", rsaAndHS, confusedDER, "", errJWTSignature},
		{"OtherRSAKey", rsaOnly, oauthSign(t, jose.RS256, k.rsaOther, "", good()), "", errJWTSignature},
		{"TamperedPayload", rsaOnly, tampered, "", errJWTSignature},
		{"UnknownStaticKid", withKid, oauthSign(t, jose.RS256, k.rsa, "nope-kid-123", good()), "", errJWTNoKey},
		{"AlgNotAllowed", rsaOnly, oauthSign(t, jose.ES256, k.ec, "", good()), "", errJWTAlg},
		{"AlgAllowedWrongKeyType", ecOnlyButRS, oauthSign(t, jose.RS256, k.rsa, "", good()), "", errJWTNoKey},
		{"ExpiredBeyondLeeway", rsaOnly, oauthSign(t, jose.RS256, k.rsa, "", mod(func(m map[string]any) { m["exp"] = now.Add(-31 * time.Second).Unix() })), "token expired", jwt.ErrExpired},
		{"NotBeforeInFuture", rsaOnly, oauthSign(t, jose.RS256, k.rsa, "", mod(func(m map[string]any) { m["nbf"] = now.Add(2 * time.Minute).Unix() })), "", jwt.ErrNotValidYet},
		{"IssuedInFuture", rsaOnly, oauthSign(t, jose.RS256, k.rsa, "", mod(func(m map[string]any) { m["iat"] = now.Add(2 * time.Minute).Unix() })), "", jwt.ErrIssuedInTheFuture},
		{"WrongAudience", rsaOnly, oauthSign(t, jose.RS256, k.rsa, "", mod(func(m map[string]any) { m["aud"] = "someone-else" })), "", jwt.ErrInvalidAudience},
		{"NoAudience", rsaOnly, oauthSign(t, jose.RS256, k.rsa, "", mod(func(m map[string]any) { delete(m, "aud") })), "", jwt.ErrInvalidAudience},
		{"WrongIssuer", rsaOnly, oauthSign(t, jose.RS256, k.rsa, "", mod(func(m map[string]any) { m["iss"] = "https://evil.example" })), "", jwt.ErrInvalidIssuer},
		{"MissingExp", rsaOnly, oauthSign(t, jose.RS256, k.rsa, "", mod(func(m map[string]any) { delete(m, "exp") })), "", errJWTNoExp},
		{"ExpAsString", rsaOnly, oauthSign(t, jose.RS256, k.rsa, "", mod(func(m map[string]any) { m["exp"] = "4102444800" })), "", nil},
		{"RequiredClaimMissing", required, oauthSign(t, jose.RS256, k.rsa, "", good()), "", errJWTClaim},
		{"FourSegments", rsaOnly, goodRS + ".x", "", nil},
		{"JWEFiveSegments", rsaOnly, "eyJhbGciOiJSU0EtT0FFUCJ9.a.b.c.d", "", nil},
		{"EmptySignature", rsaOnly, parts[0] + "." + parts[1] + ".", "", nil},
		{"PaddedSegment", rsaOnly, parts[0] + "=." + parts[1] + "." + parts[2], "", nil},
		{"JSONSerialization", rsaOnly, `{"payload":"x","signatures":[]}`, "", nil},
		{"HeaderNotJSON", rsaOnly, base64.RawURLEncoding.EncodeToString([]byte("RS256")) + "." + parts[1] + "." + parts[2], "", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			v := newOAuthJWTForTest(t, &Env{Now: clock.Now}, tt.opts)
			err := v.Verify(context.Background(), oauthRequest(tt.tok))
			oauthWantRefused(t, err, ChallengeInvalidBearer, "nope-kid-123", "evil.example", "someone-else", "admin", "provider-a")
			want := tt.msg
			if want == "" {
				want = "invalid token"
			}
			if got := hookd.ErrorMessage(err); got != want {
				t.Fatalf("got message %q, want %q", got, want)
			}
			if tt.cause != nil && !errors.Is(err, tt.cause) {
				t.Fatalf("got cause %v, want %v", errors.Unwrap(errors.Unwrap(err)), tt.cause)
			}
		})
	}
}

func TestOAuthJWTLeeway(t *testing.T) {
	t.Parallel()
	k := oauthTestKeys()
	clock := newOAuthTestClock()
	now := clock.Now()
	tests := []struct {
		name   string
		leeway string // "" = default (30s)
		claims map[string]any
		ok     bool
	}{
		{"ExpiredWithinDefaultLeeway", "", map[string]any{"exp": now.Add(-29 * time.Second).Unix()}, true},
		{"ExpiredAtDefaultLeeway", "", map[string]any{"exp": now.Add(-30 * time.Second).Unix()}, true},
		{"ExpiredBeyondDefaultLeeway", "", map[string]any{"exp": now.Add(-31 * time.Second).Unix()}, false},
		{"ExpiredWithinLeeway60s", "60s", map[string]any{"exp": now.Add(-59 * time.Second).Unix()}, true},
		{"ExpiredNoLeeway", "0s", map[string]any{"exp": now.Add(-1 * time.Second).Unix()}, false},
		{"NotBeforeWithinLeeway", "", map[string]any{"exp": now.Add(time.Hour).Unix(), "nbf": now.Add(29 * time.Second).Unix()}, true},
		{"NotBeforeBeyondLeeway", "", map[string]any{"exp": now.Add(time.Hour).Unix(), "nbf": now.Add(31 * time.Second).Unix()}, false},
		{"IssuedAtWithinLeeway", "", map[string]any{"exp": now.Add(time.Hour).Unix(), "iat": now.Add(29 * time.Second).Unix()}, true},
		{"IssuedAtBeyondLeeway", "", map[string]any{"exp": now.Add(time.Hour).Unix(), "iat": now.Add(31 * time.Second).Unix()}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			opts := map[string]any{"algorithms": []string{"HS256"}, "secrets": []string{string(k.secret)}}
			if tt.leeway != "" {
				opts["leeway"] = tt.leeway
			}
			v := newOAuthJWTForTest(t, &Env{Now: clock.Now}, opts)
			err := v.Verify(context.Background(), oauthRequest(oauthSign(t, jose.HS256, k.secret, "", tt.claims)))
			if tt.ok && err != nil {
				t.Fatalf("got %v, want nil", err)
			}
			if !tt.ok {
				oauthWantRefused(t, err, ChallengeInvalidBearer)
			}
		})
	}
}

func TestOAuthJWTAudienceList(t *testing.T) {
	t.Parallel()
	k := oauthTestKeys()
	clock := newOAuthTestClock()
	exp := clock.Now().Add(time.Hour).Unix()
	v := newOAuthJWTForTest(t, &Env{Now: clock.Now}, map[string]any{"algorithms": []string{"HS256"}, "secrets": []string{string(k.secret)}, "audience": []string{"a", "hookd"}})
	tests := []struct {
		name string
		aud  any
		ok   bool
	}{
		{"StringMatches", "hookd", true},
		{"ListIntersects", []string{"x", "hookd"}, true},
		{"ListDisjoint", []string{"x", "y"}, false},
		{"Absent", nil, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			claims := map[string]any{"exp": exp}
			if tt.aud != nil {
				claims["aud"] = tt.aud
			}
			err := v.Verify(context.Background(), oauthRequest(oauthSign(t, jose.HS256, k.secret, "", claims)))
			if tt.ok != (err == nil) {
				t.Fatalf("got %v, want ok=%v", err, tt.ok)
			}
		})
	}
}

func TestOAuthJWTNoToken(t *testing.T) {
	t.Parallel()
	k := oauthTestKeys()
	v := newOAuthJWTForTest(t, &Env{}, map[string]any{"algorithms": []string{"HS256"}, "secrets": []string{string(k.secret)}})
	tests := []struct {
		name      string
		values    []string
		challenge string
	}{
		{"NoHeader", nil, ChallengeBearer},
		{"BasicScheme", []string{"Basic dXNlcjpwYXNz"}, ChallengeBearer},
		{"BearerAlone", []string{"Bearer"}, ChallengeBearer},
		{"BearerSpaces", []string{"Bearer    "}, ChallengeBearer},
		{"TwoHeaders", []string{"Bearer a.b.c", "Bearer d.e.f"}, ChallengeInvalidBearer},
		{"SpaceInToken", []string{"Bearer a.b c"}, ChallengeInvalidBearer},
		{"Garbage", []string{"Bearer ###"}, ChallengeInvalidBearer},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := http.Header{}
			for _, val := range tt.values {
				h.Add("Authorization", val)
			}
			err := v.Verify(context.Background(), &Request{Header: h})
			oauthWantRefused(t, err, tt.challenge)
		})
	}
	if n := v.parses.Load(); n != 0 {
		t.Fatalf("got %d parses, want 0", n)
	}
}

// TestOAuthJWTOversized checks that huge tokens are refused before any
// parsing: the parse counter stays at zero, and the refusal is fast.
func TestOAuthJWTOversized(t *testing.T) {
	t.Parallel()
	k := oauthTestKeys()
	v := newOAuthJWTForTest(t, &Env{}, map[string]any{"algorithms": []string{"RS256"}, "keys": []any{oauthPEM(t, &k.rsa.PublicKey)}})
	seg := strings.Repeat("A", 1<<20)
	tests := []struct {
		name string
		tok  string
	}{
		{"OneMiBToken", seg[:len(seg)/2] + "." + seg[:len(seg)/2-100] + ".sig"},
		{"HundredThousandDots", strings.Repeat(".", 100_000)},
		{"ManyDotsWithinLimit", strings.Repeat("a.", 4000)},
		{"HeaderOverLimit", strings.Repeat("e", oauthJWTMaxHeader+1) + ".e.e"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := oauthRequest(tt.tok)
			fastest := time.Duration(1 << 62)
			for range 50 {
				start := time.Now()
				err := v.Verify(context.Background(), r)
				fastest = min(fastest, time.Since(start))
				oauthWantRefused(t, err, ChallengeInvalidBearer)
			}
			t.Logf("%s (%d bytes): refused in %s (fastest of 50)", tt.name, len(tt.tok), fastest)
			// The fastest of 50 runs is immune to a stray GC pause or
			// a slow machine; the parse counter is the exact check.
			if fastest > 5*time.Millisecond {
				t.Errorf("got %s, want under 5ms", fastest)
			}
		})
	}
	if n := v.parses.Load(); n != 0 {
		t.Fatalf("got %d parses, want 0", n)
	}
}

func TestOAuthJWTConfig(t *testing.T) {
	t.Parallel()
	k := oauthTestKeys()
	rsaPEM := oauthPEM(t, &k.rsa.PublicKey)
	privDER, _ := x509.MarshalPKCS8PrivateKey(k.rsa)
	privPEM := string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: privDER}))
	small, _ := rsa.GenerateKey(rand.Reader, 1024)
	secret := string(k.secret)
	tests := []struct {
		name string
		opts map[string]any
		want string // substring of the error
	}{
		{"NoAlgorithms", map[string]any{"keys": []any{rsaPEM}}, "algorithms: required"},
		{"AlgNone", map[string]any{"algorithms": []string{"none"}, "keys": []any{rsaPEM}}, `"none" is never accepted`},
		{"UnknownAlg", map[string]any{"algorithms": []string{"rs256"}, "keys": []any{rsaPEM}}, "unknown algorithm"},
		{"HSWithoutSecrets", map[string]any{"algorithms": []string{"HS256"}}, "secrets: required"},
		{"SecretsWithoutHS", map[string]any{"algorithms": []string{"RS256"}, "keys": []any{rsaPEM}, "secrets": []string{secret}}, "only HS256/384/512 use secrets"},
		{"ShortSecret", map[string]any{"algorithms": []string{"HS256"}, "secrets": []string{"short"}}, "secrets[0]: shorter than 32 bytes"},
		{"SecretTooShortForHS512", map[string]any{"algorithms": []string{"HS512"}, "secrets": []string{secret}}, "minimum for HS512"},
		{"PublicAlgWithoutKeys", map[string]any{"algorithms": []string{"RS256"}}, "jwks_url or keys: required"},
		{"KeysWithoutPublicAlg", map[string]any{"algorithms": []string{"HS256"}, "secrets": []string{secret}, "keys": []any{rsaPEM}}, "no public-key algorithm"},
		{"BothSources", map[string]any{"algorithms": []string{"RS256"}, "keys": []any{rsaPEM}, "jwks_url": "https://issuer.example/jwks"}, "give one or the other"},
		{"KeyUnusable", map[string]any{"algorithms": []string{"ES256"}, "keys": []any{rsaPEM}}, "no allowed algorithm can use this key"},
		{"PrivateKey", map[string]any{"algorithms": []string{"RS256"}, "keys": []any{privPEM}}, "a private key"},
		{"WeakRSA", map[string]any{"algorithms": []string{"RS256"}, "keys": []any{oauthPEM(t, &small.PublicKey)}}, "at least 2048"},
		{"SymmetricJWK", map[string]any{"algorithms": []string{"RS256"}, "keys": []any{map[string]any{"kty": "oct", "k": "c2VjcmV0"}}}, "HMAC keys go in secrets"},
		{"NotAKey", map[string]any{"algorithms": []string{"RS256"}, "keys": []any{"hello"}}, "want a PEM public key"},
		{"LeewayTooLarge", map[string]any{"algorithms": []string{"HS256"}, "secrets": []string{secret}, "leeway": "61s"}, "leeway: must be between 0s and 60s"},
		{"LeewayNegative", map[string]any{"algorithms": []string{"HS256"}, "secrets": []string{secret}, "leeway": "-1s"}, "leeway"},
		{"LeewayBareNumber", map[string]any{"algorithms": []string{"HS256"}, "secrets": []string{secret}, "leeway": 30}, "invalid duration"},
		{"PlainHTTPJWKS", map[string]any{"algorithms": []string{"RS256"}, "jwks_url": "http://issuer.example/jwks"}, "plain http"},
		{"BadJWKSURL", map[string]any{"algorithms": []string{"RS256"}, "jwks_url": "issuer.example/jwks"}, "invalid URL"},
		{"JWKSTTLTooShort", map[string]any{"algorithms": []string{"RS256"}, "jwks_url": "https://issuer.example/jwks", "jwks_ttl": "10s"}, "jwks_ttl"},
		{"JWKSTTLWithoutURL", map[string]any{"algorithms": []string{"RS256"}, "keys": []any{rsaPEM}, "jwks_ttl": "1h"}, "only apply with jwks_url"},
		{"UnknownOption", map[string]any{"algorithms": []string{"RS256"}, "keys": []any{rsaPEM}, "isuer": "x"}, "unknown key \"isuer\""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			m, err := config.NewVerify("oauth_jwt", tt.opts)
			if err != nil {
				t.Fatal(err)
			}
			_, err = newOAuthJWT(&Env{}, m)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("got %v, want an error containing %q", err, tt.want)
			}
			if strings.Contains(err.Error(), secret) {
				t.Fatalf("error %q reveals the secret", err)
			}
		})
	}
}

// TestOAuthJWTRegistered checks the method builds through the registry.
func TestOAuthJWTRegistered(t *testing.T) {
	t.Parallel()
	k := oauthTestKeys()
	m, err := config.NewVerify("oauth_jwt", map[string]any{"algorithms": []string{"HS256"}, "secrets": []string{string(k.secret)}})
	if err != nil {
		t.Fatal(err)
	}
	c, err := Build(&Env{Source: "s"}, []config.Verify{m})
	if err != nil {
		t.Fatal(err)
	}
	if got := c.CredentialHeaders(); len(got) != 1 || got[0] != "Authorization" {
		t.Fatalf("got %v, want [Authorization]", got)
	}
}

func FuzzBearerToken(f *testing.F) {
	for _, s := range []string{
		"Bearer abc", "bearer a.b.c", "BEARER  x ", "Bearer", "Bearer ", "Basic dXNlcjpw",
		"Bearer a b", "Bearer ab==", "Bearer =ab", "Bearer a~+/.-_=", "Bearer\tabc", " Bearer abc",
		"Bearer " + strings.Repeat("a", oauthMaxToken+1), "", "Bearer é",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, v string) {
		h := http.Header{}
		h.Set("Authorization", v)
		tok, err := oauthBearerToken(h)
		if err != nil {
			if !errors.Is(err, errOAuthNoToken) && !errors.Is(err, errOAuthBadForm) {
				t.Fatalf("unexpected error %v", err)
			}
			if tok != "" {
				t.Fatalf("got token %q with error", tok)
			}
			return
		}
		if tok == "" || len(tok) > oauthMaxToken {
			t.Fatalf("got token of %d bytes", len(tok))
		}
		if !strings.Contains(v, tok) {
			t.Fatalf("token %q is not part of %q", tok, v)
		}
		if strings.ContainsAny(tok, " \t,\"") {
			t.Fatalf("token %q has a separator", tok)
		}
	})
}

// FuzzJWTWrapper drives the pre-parse and the whole verifier with
// arbitrary tokens: nothing panics, the pre-parse only lets through three
// base64url segments with an allowed alg, and no token that is not
// signed with the configured secret is ever accepted.
func FuzzJWTWrapper(f *testing.F) {
	k := oauthTestKeys()
	clock := newOAuthTestClock()
	exp := clock.Now().Add(time.Hour).Unix()
	good := oauthSign(f, jose.HS256, k.secret, "", map[string]any{"exp": exp})
	for _, s := range []string{
		good,
		oauthSign(f, jose.HS256, []byte(strings.Repeat("x", 32)), "kid1", map[string]any{"exp": exp}),
		oauthRawToken(f, map[string]any{"alg": "none"}, map[string]any{"exp": exp}, nil, ""),
		oauthRawToken(f, map[string]any{"alg": "HS256", "alg ": "none"}, map[string]any{"exp": exp}, nil, "eA"),
		oauthRawToken(f, map[string]any{"alg": "RS256", "kid": "x"}, map[string]any{"exp": exp}, nil, "eA"),
		"a.b.c", "..", "a..c", ".b.c", "a.b.", "e30.e30.e30", "eyJhbGciOiJIUzI1NiJ9.e30.AAAA",
		`eyJhbGciOiJIUzI1NiIsImFsZyI6Im5vbmUifQ.e30.AAAA`, strings.Repeat(".", 100),
		base64.RawURLEncoding.EncodeToString([]byte(`{"alg":"HS256","x":`+strings.Repeat("[", 200)+strings.Repeat("]", 200)+`}`)) + ".e30.AAAA",
		base64.RawURLEncoding.EncodeToString([]byte(`{"alg":"HS256","x":"`+strings.Repeat("[", 200)+`"}`)) + ".e30.AAAA",
	} {
		f.Add(s)
	}
	m, err := config.NewVerify("oauth_jwt", map[string]any{"algorithms": []string{"HS256", "RS256"}, "secrets": []string{string(k.secret)}, "keys": []any{oauthPEM(f, &k.rsa.PublicKey)}})
	if err != nil {
		f.Fatal(err)
	}
	vv, err := newOAuthJWT(&Env{Now: clock.Now}, m)
	if err != nil {
		f.Fatal(err)
	}
	v := vv.(*oauthJWTVerifier)
	f.Fuzz(func(t *testing.T, tok string) {
		hdr, err := oauthJWTPreParse(tok, v.allowed)
		if err == nil {
			if strings.Count(tok, ".") != 2 || len(tok) > oauthMaxToken {
				t.Fatalf("pre-parse let %q through", tok)
			}
			if !v.allowed[hdr.Alg] {
				t.Fatalf("pre-parse let alg %q through", hdr.Alg)
			}
			for _, seg := range strings.Split(tok, ".") {
				if seg == "" {
					t.Fatalf("pre-parse let an empty segment through: %q", tok)
				}
			}
		}
		err = v.Verify(context.Background(), oauthRequest(tok))
		if err == nil {
			// Only a token signed with the secret can pass; the fuzzer
			// keeps the seed's signature only if it keeps the token.
			if strings.Trim(tok, " \t") != good {
				t.Fatalf("accepted %q", tok)
			}
			return
		}
		if code := hookd.ErrorCode(err); code != hookd.EUnauthorized {
			t.Fatalf("got code %s, want %s", code, hookd.EUnauthorized)
		}
		if c := Challenge(err); c != ChallengeInvalidBearer && c != ChallengeBearer {
			t.Fatalf("got challenge %q", c)
		}
	})
}

// A JWT whose header nests beyond 128 levels is refused as malformed
// before its header is decoded; brackets inside a string do not count.
func TestOAuthJWTHeaderTooDeep(t *testing.T) {
	t.Parallel()
	allowed := map[string]bool{"HS256": true}
	enc := func(h string) string { return base64.RawURLEncoding.EncodeToString([]byte(h)) + ".e30.AAAA" }
	deep := strings.Repeat("[", 129) + strings.Repeat("]", 129)
	if _, err := oauthJWTPreParse(enc(`{"alg":"HS256","x":`+deep+`}`), allowed); !errors.Is(err, errOAuthBadForm) {
		t.Errorf("deep header: got %v, want %v", err, errOAuthBadForm)
	}
	if h, err := oauthJWTPreParse(enc(`{"alg":"HS256","x":"`+deep+`"}`), allowed); err != nil || h.Alg != "HS256" {
		t.Errorf("brackets in a string: got %+v, %v, want alg HS256", h, err)
	}
}
