package verify

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"hookd/internal/config"
	"hookd/internal/secret"
	"hookd/internal/store/sqlite"
)

// issuerTestKeyring is the master key of the issuer tests.
var issuerTestKeyring = func() *secret.Keyring {
	kr, err := secret.ParseKeyring([]string{"ktest:" + base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{7}, 32))})
	if err != nil {
		panic(err)
	}
	return kr
}()

func issuerTestKeys() (*secret.Keyring, error) { return issuerTestKeyring, nil }

// issuerForge makes a token for claims, signed with key, as someone who
// holds a key would.
func issuerForge(t *testing.T, key []byte, c issuerClaims) string {
	t.Helper()
	payload, err := json.Marshal(c)
	if err != nil {
		t.Fatal(err)
	}
	body := issuerTokenPrefix + issuerB64.EncodeToString(payload)
	m := hmac.New(sha256.New, key)
	m.Write([]byte(body))
	return body + "." + issuerB64.EncodeToString(m.Sum(nil))
}

// issuerDBBytes is the content of the SQLite database files in dir.
func issuerDBBytes(t *testing.T, dir string) []byte {
	t.Helper()
	var all []byte
	for _, name := range []string{sqlite.FileName, sqlite.FileName + "-wal"} {
		b, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil && !os.IsNotExist(err) {
			t.Fatal(err)
		}
		all = append(all, b...)
	}
	return all
}

// The signing key is sealed under the master key: neither the database
// nor its WAL holds it, and a token forged from what they hold is refused.
func TestIssuerKeyIsSealedAtRest(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	clock := &issuerTestClock{t: issuerT0}
	e := issuerTestOpen(t, dir, clock, issuerTestSources(t), nil)
	stored, err := e.st.SettingGet(context.Background(), IssuerKeySetting)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(stored, secret.Version+".") {
		t.Errorf("setting %s: got a value that is not sealed (%d bytes), want an %s token", IssuerKeySetting, len(stored), secret.Version)
	}
	key := e.iss.key
	enc := issuerB64.EncodeToString(key)
	db := issuerDBBytes(t, dir)
	if bytes.Contains(db, []byte(enc)) || bytes.Contains(db, key) {
		t.Errorf("the database files hold the issuer's signing key in plain text")
	}

	// Whoever copies the database tries its bytes as the key. The claims
	// carry a real secret fingerprint (any issued token shows one), so
	// that the key alone decides: signed with the real key, the same
	// claims are accepted.
	claims := issuerClaims{V: issuerTokenVersion, Client: "provider-a", Source: "claims", IssuedAt: issuerT0.UnixMilli(), Expiry: issuerT0.Add(time.Hour).UnixMilli(), ID: "forged",
		SecretFP: issuerB64.EncodeToString(e.iss.clients["provider-a"].fingerprints[0])}
	credCheck(t, issuerTestVerify(e, "claims", "Authorization", "Bearer "+issuerForge(t, key, claims)), 200, "")
	candidates := [][]byte{[]byte(stored)}
	if k, err := issuerB64.DecodeString(stored); err == nil {
		candidates = append(candidates, k)
	}
	for _, k := range candidates {
		forged := issuerForge(t, k, claims)
		credCheck(t, issuerTestVerify(e, "claims", "Authorization", "Bearer "+forged), 401, ChallengeInvalidBearer)
	}
}

// A key an earlier version stored in plain text is sealed in place at the
// next start; the tokens it signed stay valid.
func TestIssuerSealsAPlainKeyInPlace(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	ctx := context.Background()
	st, err := sqlite.Open(ctx, dir, credDiscardLog(), sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	key := bytes.Repeat([]byte{42}, issuerKeyBytes)
	if _, err := st.SettingGetOrCreate(ctx, IssuerKeySetting, issuerB64.EncodeToString(key)); err != nil {
		t.Fatal(err)
	}
	st.Close()
	clock := &issuerTestClock{t: issuerT0}
	e := issuerTestOpen(t, dir, clock, issuerTestSources(t), nil)
	if !bytes.Equal(e.iss.key, key) {
		t.Fatalf("the plain key was not kept as the signing key")
	}
	stored, err := e.st.SettingGet(ctx, IssuerKeySetting)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(stored, secret.Version+".") {
		t.Errorf("setting %s after start: not sealed", IssuerKeySetting)
	}
	if plain, err := issuerTestKeyring.Open(stored, []byte(IssuerKeyAD)); err != nil || string(plain) != issuerB64.EncodeToString(key) {
		t.Errorf("sealed value: opens to the key: %v", err)
	}
	tok := issuerTestGet(t, e.iss, "provider-a", "secret-a-new-0123456789")
	if err := issuerTestVerify(e, "claims", "Authorization", "Bearer "+tok); err != nil {
		t.Errorf("token: %v", err)
	}
}

// A token is valid only while its client still has the secret that got it:
// rotating a secret out revokes the tokens issued against it.
func TestIssuerRotatedSecretRevokesItsTokens(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	clock := &issuerTestClock{t: issuerT0}
	const secretA, secretB = "rotation-secret-aaaaaaaa", "rotation-secret-bbbbbbbb"
	sources := func(secrets ...string) []config.Source {
		m, err := config.NewVerify("oauth_issuer", map[string]any{
			"clients": []any{map[string]any{"id": "provider-a", "secret": secrets}}, "validity": "8760h",
		})
		if err != nil {
			t.Fatal(err)
		}
		return []config.Source{{Name: "claims", Verify: []config.Verify{m}}}
	}
	open := func(secrets ...string) *issuerTestEnv {
		e := issuerTestOpen(t, dir, clock, sources(secrets...), nil)
		return e
	}
	bearer := func(tok string) []string { return []string{"Authorization", "Bearer " + tok} }

	e := open(secretA)
	tokA := issuerTestGet(t, e.iss, "provider-a", secretA)
	if err := issuerTestVerify(e, "claims", bearer(tokA)...); err != nil {
		t.Fatalf("token of A with [A]: %v", err)
	}
	e.st.Close()

	e = open(secretB)
	credCheck(t, issuerTestVerify(e, "claims", bearer(tokA)...), 401, ChallengeInvalidBearer)
	tokB := issuerTestGet(t, e.iss, "provider-a", secretB)
	if err := issuerTestVerify(e, "claims", bearer(tokB)...); err != nil {
		t.Errorf("token of B with [B]: %v", err)
	}
	e.st.Close()

	e = open(secretA, secretB)
	for name, tok := range map[string]string{"A": tokA, "B": tokB} {
		if err := issuerTestVerify(e, "claims", bearer(tok)...); err != nil {
			t.Errorf("token of %s with [A, B]: %v", name, err)
		}
	}
	// The token says which secret got it only as a keyed hash.
	for _, tok := range []string{tokA, tokB} {
		body, _, _ := strings.Cut(strings.TrimPrefix(tok, issuerTokenPrefix), ".")
		payload, _ := issuerB64.DecodeString(body)
		for _, s := range []string{secretA, secretB} {
			if bytes.Contains(payload, []byte(s)) || strings.Contains(tok, s) {
				t.Errorf("a token shows its client's secret")
			}
		}
	}
}

// issuerTestFrom is a token request from a remote address.
func issuerTestFrom(remote, id, secret string) *http.Request {
	r := issuerTestRequest(url.Values{"grant_type": {"client_credentials"}}, id, secret)
	r.RemoteAddr = remote
	return r
}

// Failed client authentications are limited per client id and per remote
// address: guessing gets 429 with Retry-After, while the real client, at
// the address it used before, keeps getting tokens.
func TestIssuerLimitsFailedAuthentications(t *testing.T) {
	t.Parallel()
	clock := &issuerTestClock{t: issuerT0}
	e := issuerTestOpen(t, t.TempDir(), clock, issuerTestSources(t), nil)
	const real, attacker = "192.0.2.10:40000", "198.51.100.66:50000"
	if a := issuerTestDo(t, e.iss, issuerTestFrom(real, "provider-a", "secret-a-new-0123456789")); a.status != http.StatusOK {
		t.Fatalf("the real client's first token: got %d, want 200", a.status)
	}

	counts := map[int]int{}
	for n := range 500 {
		w := httptest.NewRecorder()
		e.iss.ServeHTTP(w, issuerTestFrom(attacker, "provider-a", fmt.Sprintf("guess-%04d", n)))
		counts[w.Code]++
		if w.Code == http.StatusTooManyRequests {
			ra, err := strconv.Atoi(w.Header().Get("Retry-After"))
			if err != nil || ra < 1 {
				t.Fatalf("429 with Retry-After %q, want a number of seconds ≥ 1", w.Header().Get("Retry-After"))
			}
		}
	}
	if counts[http.StatusTooManyRequests] == 0 || counts[http.StatusUnauthorized] > 10 || counts[http.StatusOK] > 0 {
		t.Fatalf("500 wrong secrets: got %v, want at most 10 answered 401 and the rest 429", counts)
	}
	t.Logf("500 wrong secrets from one address: %v", counts)

	// The real client, from its address, still gets tokens.
	if a := issuerTestDo(t, e.iss, issuerTestFrom(real, "provider-a", "secret-a-new-0123456789")); a.status != http.StatusOK {
		t.Errorf("the real client during the attack: got %d, want 200", a.status)
	}
	// Another client is not affected by an attack on provider-a.
	if a := issuerTestDo(t, e.iss, issuerTestFrom("203.0.113.5:1234", "provider-b", "secret-b-0123456789")); a.status != http.StatusOK {
		t.Errorf("another client during the attack: got %d, want 200", a.status)
	}
	// The right secret does not get through the limit from the attacker's
	// address.
	if a := issuerTestDo(t, e.iss, issuerTestFrom(attacker, "provider-a", "secret-a-new-0123456789")); a.status != http.StatusTooManyRequests {
		t.Errorf("the right secret from the limited address: got %d, want 429", a.status)
	}

	// Many addresses against one id: the id's limit holds.
	counts = map[int]int{}
	for n := range 200 {
		w := httptest.NewRecorder()
		e.iss.ServeHTTP(w, issuerTestFrom(fmt.Sprintf("10.%d.%d.1:9", n/256, n%256), "provider-b", "wrong-secret"))
		counts[w.Code]++
	}
	if counts[http.StatusUnauthorized] > 10 || counts[http.StatusTooManyRequests] == 0 {
		t.Errorf("200 wrong secrets from 200 addresses: got %v, want at most 10 answered 401", counts)
	}

	// The limits refill with time.
	clock.Set(issuerT0.Add(10 * time.Minute))
	if a := issuerTestDo(t, e.iss, issuerTestFrom(attacker, "provider-a", "guess-again")); a.status != http.StatusUnauthorized {
		t.Errorf("a wrong secret 10 minutes later: got %d, want 401", a.status)
	}
}
