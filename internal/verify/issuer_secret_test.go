package verify

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"os"
	"path/filepath"
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

	// Whoever copies the database tries its bytes as the key.
	claims := issuerClaims{V: issuerTokenVersion, Client: "provider-a", Source: "claims", IssuedAt: issuerT0.UnixMilli(), Expiry: issuerT0.Add(time.Hour).UnixMilli(), ID: "forged"}
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
	tok := issuerTestGet(t, e.iss, "provider-a", "secret-a-new")
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
