package cli

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"hookd/internal/config"
	"hookd/internal/secret"
	"hookd/internal/store/sqlite"
	"hookd/internal/verify"
)

// secretsTestLog is a log the test reads: every line hookd logs, as JSON.
type secretsTestLog struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *secretsTestLog) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

func (l *secretsTestLog) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

// secretsRun runs cfg in-process on 127.0.0.1:0 with a JSON log and
// returns the app, its base URL, its banner and a function that stops it.
func secretsRun(t *testing.T, cfg *config.Config, log *secretsTestLog) (*App, string, string, func()) {
	t.Helper()
	cfg.Listen = "127.0.0.1:0"
	cfg.Log.Format = "json"
	app := NewApp(cfg, newLogger(cfg.Log, log))
	if err := app.Open(context.Background()); err != nil {
		t.Fatalf("open: %v", err)
	}
	app.Warnings()
	var banner bytes.Buffer
	app.PrintBanner(&banner)
	served := make(chan error, 1)
	go func() { served <- app.Serve() }()
	var once sync.Once
	stop := func() {
		once.Do(func() {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			if err := app.Shutdown(ctx); err != nil {
				t.Errorf("shutdown: %v", err)
			}
			if err := <-served; err != nil {
				t.Errorf("serve: %v", err)
			}
		})
	}
	t.Cleanup(stop)
	return app, "http://" + app.Addr(), banner.String(), stop
}

// secretsDBBytes is the content of the SQLite database and its WAL in dir.
func secretsDBBytes(t *testing.T, dir string) []byte {
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

func secretsGet(t *testing.T, url, token string) int {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, url, nil)
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

const secretsClientSecret = "secrets-test-client-secret-0123"

func secretsConfig(t *testing.T, dir string) *config.Config {
	t.Helper()
	cfg, err := config.Parse([]byte(`
sources:
  - name: claims
    verify:
      - type: oauth_issuer
        clients: [{id: provider-a, secret: "` + secretsClientSecret + `"}]
`))
	if err != nil {
		t.Fatal(err)
	}
	cfg.Storage.Path = dir
	return cfg
}

// The oauth_issuer signing key is sealed under the master key: the
// database holds it in no readable form, and a token signed with what the
// database holds is refused.
func TestIssuerKeyIsNotInTheDatabase(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	app, base, _, stop := secretsRun(t, secretsConfig(t, dir), &secretsTestLog{})

	a, tok, _ := s000Token(t, base, "provider-a", secretsClientSecret)
	if a.status != http.StatusOK {
		t.Fatalf("token: got %d %s, want 200", a.status, a.body)
	}
	if a := s000Send(t, base, tok, s000Claim("m-1")); a.status != http.StatusOK {
		t.Fatalf("send with the token: got %d %s, want 200", a.status, a.body)
	}

	stored, err := app.st.SettingGet(context.Background(), verify.IssuerKeySetting)
	if err != nil {
		t.Fatal(err)
	}
	// A forger takes a real token and signs it again, with a new id, with
	// what the database holds.
	body, _, _ := strings.Cut(tok, ".")
	payload, err := base64.RawURLEncoding.DecodeString(strings.TrimPrefix(body, "hk_at_"))
	if err != nil {
		t.Fatal(err)
	}
	var claims map[string]any
	if err := json.Unmarshal(payload, &claims); err != nil {
		t.Fatal(err)
	}
	claims["jti"] = "forged"
	payload, _ = json.Marshal(claims)
	body = "hk_at_" + base64.RawURLEncoding.EncodeToString(payload)
	candidates := [][]byte{[]byte(stored)}
	if k, err := base64.RawURLEncoding.DecodeString(stored); err == nil {
		candidates = append(candidates, k)
	}
	for _, k := range candidates {
		m := hmac.New(sha256.New, k)
		m.Write([]byte(body))
		forged := body + "." + base64.RawURLEncoding.EncodeToString(m.Sum(nil))
		if a := s000Send(t, base, forged, s000Claim("m-forged")); a.status != http.StatusUnauthorized {
			t.Errorf("a token signed with the stored setting %s: got %d, want 401", verify.IssuerKeySetting, a.status)
		}
	}

	// The key itself, in the form the issuer uses it.
	keyB64 := stored
	if strings.HasPrefix(stored, secret.Version+".") {
		spec, err := os.ReadFile(filepath.Join(dir, MasterKeyFile))
		if err != nil {
			t.Fatal(err)
		}
		kr, err := secret.ParseKeyring([]string{strings.TrimSpace(string(spec))})
		if err != nil {
			t.Fatal(err)
		}
		plain, err := kr.Open(stored, []byte(verify.IssuerKeyAD))
		if err != nil {
			t.Fatalf("open the sealed key: %v", err)
		}
		keyB64 = string(plain)
	}
	key, _ := base64.RawURLEncoding.DecodeString(keyB64)
	check := func(when string) {
		db := secretsDBBytes(t, dir)
		if bytes.Contains(db, []byte(keyB64)) || (len(key) > 0 && bytes.Contains(db, key)) {
			t.Errorf("%s: hookd.db or its WAL holds the issuer's signing key in plain text", when)
		}
	}
	check("running")
	stop()
	check("stopped")
}

var secretsTokenRE = regexp.MustCompile(`admin token: (hk_admin_\S+)`)

// The generated admin token is shown once, when it is made, and stored as
// a hash; hookd admin-token reset makes a new one and the old one gets 401,
// also from the server that is running.
func TestAdminTokenShownOnceAndStoredAsAHash(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	log := &secretsTestLog{}
	_, base, banner, stop := secretsRun(t, secretsConfig(t, dir), log)
	m := secretsTokenRE.FindStringSubmatch(banner)
	if m == nil {
		t.Fatalf("first start: no generated admin token in the banner:\n%s", banner)
	}
	token := m[1]
	if c := secretsGet(t, base+"/api/v1/events", token); c != http.StatusOK {
		t.Fatalf("GET /api/v1/events with the generated token: %d, want 200", c)
	}
	if db := secretsDBBytes(t, dir); bytes.Contains(db, []byte(token)) {
		t.Errorf("running: hookd.db or its WAL holds the admin token in plain text")
	}
	stop()
	if db := secretsDBBytes(t, dir); bytes.Contains(db, []byte(token)) {
		t.Errorf("stopped: hookd.db or its WAL holds the admin token in plain text")
	}

	_, base, banner2, _ := secretsRun(t, secretsConfig(t, dir), log)
	if strings.Contains(banner2, token) {
		t.Errorf("second start: the banner shows the admin token again:\n%s", banner2)
	}
	if !strings.Contains(banner2, "hookd admin-token reset") {
		t.Errorf("second start: the banner does not say how to make a new token:\n%s", banner2)
	}
	if c := secretsGet(t, base+"/api/v1/events", token); c != http.StatusOK {
		t.Fatalf("second start: GET /api/v1/events with the token: %d, want 200", c)
	}
	if l := log.String(); strings.Contains(l, token) {
		t.Errorf("the log shows the admin token")
	}

	// Reset while the server runs.
	var out, errOut bytes.Buffer
	if code := Main([]string{"admin-token", "reset", "--data", dir}, &out, &errOut); code != 0 {
		t.Fatalf("hookd admin-token reset: exit %d, %s", code, errOut.String())
	}
	m = regexp.MustCompile(`admin token: (hk_admin_\S+)`).FindStringSubmatch(out.String())
	if m == nil || m[1] == token {
		t.Fatalf("hookd admin-token reset printed %q, want a new token", out.String())
	}
	fresh := m[1]
	if db := secretsDBBytes(t, dir); bytes.Contains(db, []byte(fresh)) {
		t.Errorf("after reset: hookd.db or its WAL holds the new admin token in plain text")
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		oldCode, newCode := secretsGet(t, base+"/api/v1/events", token), secretsGet(t, base+"/api/v1/events", fresh)
		if oldCode == http.StatusUnauthorized && newCode == http.StatusOK {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after reset, the running server: old token %d (want 401), new token %d (want 200)", oldCode, newCode)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// A token an earlier version stored in plain text keeps working and is
// replaced by its hash.
func TestAdminTokenStoredInPlainTextIsHashed(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	st, err := sqlite.Open(context.Background(), dir, slog.New(slog.DiscardHandler), sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	const legacy = "hk_admin_legacy-token-stored-in-plain-text"
	if _, err := st.SettingGetOrCreate(context.Background(), "admin_token", legacy); err != nil {
		t.Fatal(err)
	}
	st.Close()
	app, base, banner, _ := secretsRun(t, secretsConfig(t, dir), &secretsTestLog{})
	if strings.Contains(banner, legacy) {
		t.Errorf("the banner shows the stored token:\n%s", banner)
	}
	if v, err := app.st.SettingGet(context.Background(), "admin_token"); err != nil || strings.Contains(v, legacy) {
		t.Errorf("setting admin_token after start: %v, want the token's hash only", err)
	}
	if c := secretsGet(t, base+"/api/v1/events", legacy); c != http.StatusOK {
		t.Errorf("GET /api/v1/events with the earlier token: %d, want 200", c)
	}
}

// With PostgreSQL, the issuer's signing key needs a master key: without
// one hookd refuses to start, naming HOOKD_MASTER_KEY; with one the key is
// sealed, and admin-token reset writes to PostgreSQL too.
func TestIssuerKeyOnPostgres(t *testing.T) {
	t.Parallel()
	dsn := testPostgresDSN(t)
	cfg := secretsConfig(t, t.TempDir())
	cfg.Storage.Driver, cfg.Storage.DSN = "postgres", dsn
	cfg.Listen = "127.0.0.1:0"
	app := NewApp(cfg, slog.New(slog.DiscardHandler))
	err := app.Open(context.Background())
	if err == nil {
		app.Shutdown(context.Background())
		t.Fatal("Open with oauth_issuer on postgres and no master key: got nil, want an error")
	}
	if !strings.Contains(err.Error(), "HOOKD_MASTER_KEY") {
		t.Errorf("Open: got %v, want it to name HOOKD_MASTER_KEY", err)
	}

	cfg = secretsConfig(t, t.TempDir())
	cfg.Storage.Driver, cfg.Storage.DSN = "postgres", dsn
	cfg.Secrets.MasterKeys = []string{secret.GenerateMasterKey("kpg")}
	app, base, banner, stop := secretsRun(t, cfg, &secretsTestLog{})
	stored, err := app.st.SettingGet(context.Background(), verify.IssuerKeySetting)
	if err != nil || !strings.HasPrefix(stored, secret.Version+".") {
		t.Errorf("setting %s on postgres: %v, want a sealed value", verify.IssuerKeySetting, err)
	}
	if a, _, _ := s000Token(t, base, "provider-a", secretsClientSecret); a.status != http.StatusOK {
		t.Errorf("token: got %d, want 200", a.status)
	}
	m := secretsTokenRE.FindStringSubmatch(banner)
	if m == nil {
		t.Fatalf("no generated admin token in the banner:\n%s", banner)
	}
	stop()
	if err := putSetting(context.Background(), cfg, "admin_token", "sha256:00"); err != nil {
		t.Fatalf("putSetting on postgres: %v", err)
	}
}

// Secrets an operator chooses (API keys, header secrets, client secrets)
// shorter than 16 characters are refused, from the file and from the admin
// API, with a message naming the field.
func TestShortSecretsAreRefused(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct{ verify, field string }{
		{`{type: api_key, keys: ["1234"]}`, "verify[0] (api_key): keys: shorter than 16 characters"},
		{`{type: header, header: X-Token, secrets: ["long-enough-secret-0123", "short"]}`, "verify[0] (header): secrets[1]: shorter than 16 characters"},
		{`{type: oauth_issuer, clients: [{id: c, secret: "4321"}]}`, "clients[0].secret: shorter than 16 characters"},
	} {
		cfg, err := config.Parse([]byte("admin: {tokens: [secrets-test-admin-token]}\nsources: [{name: s, verify: [" + tt.verify + "]}]\n"))
		if err != nil {
			t.Fatal(err)
		}
		cfg.Storage.Path = t.TempDir()
		cfg.Listen = "127.0.0.1:0"
		app := NewApp(cfg, slog.New(slog.DiscardHandler))
		err = app.Open(context.Background())
		if err == nil {
			app.Shutdown(context.Background())
			t.Errorf("%s in the file: started, want refused", tt.verify)
			continue
		}
		if !strings.Contains(err.Error(), tt.field) || strings.Contains(err.Error(), "1234") {
			t.Errorf("%s in the file: got %q, want it to name %q (and not the value)", tt.verify, err, tt.field)
		}
	}

	cfg, err := config.Parse([]byte("admin: {tokens: [secrets-test-admin-token]}\n"))
	if err != nil {
		t.Fatal(err)
	}
	cfg.Storage.Path = t.TempDir()
	_, base := startApp(t, cfg, nil)
	for _, tt := range []struct{ verify, field string }{
		{`{"type": "api_key", "keys": ["1234"]}`, "keys: shorter than 16 characters"},
		{`{"type": "header", "header": "X-Token", "secrets": "short"}`, "secrets: shorter than 16 characters"},
	} {
		req, _ := http.NewRequest(http.MethodPost, base+"/api/v1/sources", strings.NewReader(`{"name": "short", "verify": [`+tt.verify+`]}`))
		req.Header.Set("Authorization", "Bearer secrets-test-admin-token")
		req.Header.Set("Content-Type", "application/json")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		var body bytes.Buffer
		body.ReadFrom(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusBadRequest || !strings.Contains(body.String(), tt.field) {
			t.Errorf("POST /api/v1/sources with %s: got %d %s, want 400 naming %q", tt.verify, resp.StatusCode, body.String(), tt.field)
		}
	}
}
