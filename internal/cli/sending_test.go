package cli

import (
	"bytes"
	"crypto/ed25519"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"hookd/internal/config"
	"hookd/internal/secret"
	"hookd/internal/sign"
)

// swVerify verifies a Standard Webhooks request the way the specification
// describes it, independently of package sign: the signed content is
// "<webhook-id>.<webhook-timestamp>.<body>"; v1 is base64 HMAC-SHA256
// keyed by the base64-decoded whsec_ secret; v1a is a base64 ed25519
// signature checked with the public key only; the timestamp must be
// within 5 minutes of now. It returns which of the given keys verified.
func swVerify(h http.Header, body []byte, hmacSecret string, pub ed25519.PublicKey, now time.Time) (v1, v1a bool) {
	id, ts := h.Get("webhook-id"), h.Get("webhook-timestamp")
	if id == "" || ts == "" {
		return false, false
	}
	if sec, err := strconv.ParseInt(ts, 10, 64); err != nil || now.Sub(time.Unix(sec, 0)).Abs() > 5*time.Minute {
		return false, false
	}
	content := []byte(id + "." + ts + "." + string(body))
	for _, sig := range strings.Fields(h.Get("webhook-signature")) {
		ver, val, _ := strings.Cut(sig, ",")
		raw, err := base64.StdEncoding.DecodeString(val)
		if err != nil {
			continue
		}
		switch ver {
		case "v1":
			if hmacSecret == "" {
				continue
			}
			key, _ := base64.StdEncoding.DecodeString(strings.TrimPrefix(hmacSecret, "whsec_"))
			m := hmac.New(sha256.New, key)
			m.Write(content)
			if hmac.Equal(m.Sum(nil), raw) {
				v1 = true
			}
		case "v1a":
			if pub != nil && ed25519.Verify(pub, content, raw) {
				v1a = true
			}
		}
	}
	return v1, v1a
}

// The test vector of the Standard Webhooks specification, checked with
// swVerify, so that the verifier the other tests rely on is itself right:
// it accepts the vector, and refuses it with a flipped body, another
// secret, or a timestamp outside the tolerance.
func TestSWVerifyMatchesTheSpecVector(t *testing.T) {
	h := http.Header{}
	h.Set("webhook-id", "msg_p5jXN8AQM9LWM0D4loKWxJek")
	h.Set("webhook-timestamp", "1614265330")
	h.Set("webhook-signature", "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=")
	body := []byte(`{"test": 2432232314}`)
	const secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
	at := time.Unix(1614265330, 0)
	if v1, _ := swVerify(h, body, secret, nil, at); !v1 {
		t.Fatal("the specification's vector does not verify")
	}
	if v1, _ := swVerify(h, []byte(`{"test": 2432232315}`), secret, nil, at); v1 {
		t.Fatal("a changed body verifies")
	}
	if v1, _ := swVerify(h, body, "whsec_"+base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{1}, 24)), nil, at); v1 {
		t.Fatal("another secret verifies")
	}
	if v1, _ := swVerify(h, body, secret, nil, at.Add(6*time.Minute)); v1 {
		t.Fatal("a stale timestamp verifies")
	}
}

type signedSink struct {
	srv        *httptest.Server
	mu         sync.Mutex
	ids        []string
	bad        int
	v1, v1a    int
	hmacSecret string
	oldSecret  string
	pub        ed25519.PublicKey
	fail       atomic.Int64 // answer 503 to this many requests first
	both       int          // requests where both the old and new HMAC verified
}

func newSignedSink(t *testing.T, hmacSecret, oldSecret string, pub ed25519.PublicKey) *signedSink {
	s := &signedSink{hmacSecret: hmacSecret, oldSecret: oldSecret, pub: pub}
	s.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		v1, v1a := swVerify(r.Header, body, s.hmacSecret, s.pub, time.Now())
		old, _ := swVerify(r.Header, body, s.oldSecret, nil, time.Now())
		s.mu.Lock()
		s.ids = append(s.ids, r.Header.Get("webhook-id"))
		if !v1 || (s.pub != nil && !v1a) {
			s.bad++
		}
		if v1 && old {
			s.both++
		}
		s.mu.Unlock()
		if s.fail.Add(-1) >= 0 {
			w.WriteHeader(503)
		}
	}))
	t.Cleanup(s.srv.Close)
	return s
}

// Every delivery verifies with the specification's algorithm; webhook-id
// is the event id on the first attempt, on the retry and on a replay;
// ed25519 verifies with the public key alone; during a rotation the old
// and the new secret both verify.
func TestSignedDeliveriesVerify(t *testing.T) {
	newSecret := "whsec_" + base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{7}, 32))
	oldSecret := "whsec_" + base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{9}, 32))
	skey, pkey, err := sign.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	pubRaw, _ := base64.StdEncoding.DecodeString(strings.TrimPrefix(pkey, "whpk_"))
	sink := newSignedSink(t, newSecret, oldSecret, ed25519.PublicKey(pubRaw))
	sink.fail.Store(1) // the first request fails: the event is retried
	cfg, _ := config.Parse([]byte(subscriptionConfig))
	cfg.Storage.Path = t.TempDir()
	_, base := startApp(t, cfg, nil)
	dest := fmt.Sprintf(`{"name":"signed","type":"http","url":%q,"retry":{"policy":"schedule","schedule":["10ms"]},
		"sign":{"secrets":[%q,%q,%q]}}`, sink.srv.URL, newSecret, oldSecret, skey)
	if code, m := apiDo(t, "POST", base+"/api/v1/destinations", "tok", dest); code != 201 {
		t.Fatalf("create destination: %d %v", code, m)
	}
	if code, m := apiDo(t, "POST", base+"/api/v1/subscriptions", "tok", `{"destination":"signed"}`); code != 201 {
		t.Fatalf("create subscription: %d %v", code, m)
	}
	id := postEvent(t, base, "claims", `{"id":"s-1","type":"event.claim.created.v1"}`)
	dlv := "dlv_" + strings.TrimPrefix(id, "evt_") + "_signed"
	waitFor(t, 10*time.Second, "delivered after a retry", func() bool {
		_, d := apiDo(t, "GET", base+"/api/v1/deliveries/"+dlv, "tok", "")
		return d["status"] == "succeeded"
	})
	// Replay it.
	if code, m := apiDo(t, "POST", base+"/api/v1/deliveries/"+dlv+"/retry", "tok", ""); code != 202 {
		t.Fatalf("retry: %d %v", code, m)
	}
	waitFor(t, 10*time.Second, "replayed", func() bool {
		sink.mu.Lock()
		defer sink.mu.Unlock()
		return len(sink.ids) == 3
	})
	sink.mu.Lock()
	defer sink.mu.Unlock()
	for i, got := range sink.ids {
		if got != id {
			t.Fatalf("request %d: webhook-id %q, want the event id %q", i+1, got, id)
		}
	}
	if sink.bad != 0 || sink.both != 3 {
		t.Fatalf("%d of 3 requests failed verification; %d verified with both rotation secrets", sink.bad, sink.both)
	}
	t.Logf("3 requests (first attempt 503, retry, replay): webhook-id %s on each; v1 verified with the new and the old secret, v1a with the public key only", id)
}

// Signing secrets and credentials of destinations created through the API
// are encrypted in the database: neither the file nor its WAL holds them,
// and they still work after a restart.
func TestSecretsAtRestAreEncrypted(t *testing.T) {
	signing := "whsec_" + base64.StdEncoding.EncodeToString([]byte("at-rest-signing-key-0123456789ab"))
	clientSecret := "oauth-client-secret-PLAINTEXT-4711"
	password := "basic-password-PLAINTEXT-0815"
	var tokens atomic.Int64
	tokenSrv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		r.ParseForm()
		_, sec, _ := r.BasicAuth()
		if sec == "" {
			sec = r.PostForm.Get("client_secret")
		}
		if sec != clientSecret {
			w.WriteHeader(401)
			return
		}
		tokens.Add(1)
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(map[string]any{"access_token": "tok-" + strconv.FormatInt(tokens.Load(), 10), "token_type": "Bearer", "expires_in": 3600})
	}))
	defer tokenSrv.Close()
	sink := newSignedSink(t, signing, "", nil)
	dir := t.TempDir()
	var app *App
	start := func() string {
		cfg, _ := config.Parse([]byte(subscriptionConfig))
		cfg.Storage.Path = dir
		var base string
		app, base = startApp(t, cfg, nil)
		return base
	}
	base := start()
	dests := []string{
		fmt.Sprintf(`{"name":"oauth","type":"http","url":%q,"sign":{"secrets":[%q]},"auth":{"type":"oauth2","token_url":%q,"client_id":"hookd","client_secret":%q}}`,
			sink.srv.URL, signing, tokenSrv.URL, clientSecret),
		fmt.Sprintf(`{"name":"basic","type":"http","url":%q,"sign":{"secrets":[%q]},"auth":{"type":"basic","username":"u","password":%q}}`,
			sink.srv.URL, signing, password),
	}
	for _, d := range dests {
		if code, m := apiDo(t, "POST", base+"/api/v1/destinations", "tok", d); code != 201 {
			t.Fatalf("create: %d %v", code, m)
		}
	}
	for _, d := range []string{"oauth", "basic"} {
		if code, m := apiDo(t, "POST", base+"/api/v1/subscriptions", "tok", fmt.Sprintf(`{"destination":%q}`, d)); code != 201 {
			t.Fatalf("subscribe: %d %v", code, m)
		}
	}
	for i := range 5 {
		postEvent(t, base, "claims", fmt.Sprintf(`{"id":"r-%d","type":"x"}`, i))
	}
	received := func() int { sink.mu.Lock(); defer sink.mu.Unlock(); return len(sink.ids) }
	waitFor(t, 10*time.Second, "10 deliveries", func() bool { return received() == 10 })
	grep := func(when string) {
		t.Helper()
		for _, f := range []string{"hookd.db", "hookd.db-wal"} {
			b, err := os.ReadFile(filepath.Join(dir, f))
			if err != nil {
				continue // no WAL once closed
			}
			for _, s := range []string{signing, strings.TrimPrefix(signing, "whsec_"), clientSecret, password} {
				if bytes.Contains(b, []byte(s)) {
					t.Fatalf("%s: %s holds a secret in plain text", when, f)
				}
			}
			t.Logf("%s: %s (%d bytes) holds none of the secrets", when, f, len(b))
		}
	}
	grep("running")
	// Restart: the stored destinations are decrypted and deliver again.
	if err := app.Shutdown(t.Context()); err != nil {
		t.Fatal(err)
	}
	grep("stopped")
	base = start()
	postEvent(t, base, "claims", `{"id":"after","type":"x"}`)
	waitFor(t, 10*time.Second, "deliveries after the restart", func() bool { return received() == 12 })
	sink.mu.Lock()
	bad := sink.bad
	sink.mu.Unlock()
	if bad != 0 {
		t.Fatalf("%d deliveries failed verification", bad)
	}
	if st, err := os.Stat(filepath.Join(dir, MasterKeyFile)); err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("master key file: %v %v", st, err)
	}
	t.Logf("token requests: %d (one per destination process lifetime)", tokens.Load())
}

// Destination URLs that reach private, loopback, link-local, CGNAT or
// metadata addresses, or use another scheme, are refused when the
// destination is created (400 with the reason). The same addresses are
// refused at dial time, after DNS resolution, by the egress guard
// (internal/egress: TestDialRefused, TestDNSRebinding,
// TestRedirectNotFollowed).
func TestSSRFURLsRefusedAtCreation(t *testing.T) {
	cfg, _ := config.Parse([]byte("admin: {tokens: [tok]}\nsources: [{name: claims}]\n"))
	cfg.Storage.Path = t.TempDir()
	_, base := startApp(t, cfg, nil)
	for _, u := range []string{
		"https://127.0.0.1/", "https://localhost/", "https://[::1]/", "https://0.0.0.0/",
		"https://169.254.169.254/latest/meta-data", "https://[::ffff:169.254.169.254]/", "https://10.0.0.5/",
		"https://172.16.0.1/", "https://192.168.1.1/", "https://100.64.0.1/", "https://[fd00::5]/",
		"https://2130706433/", "https://0x7f000001/", "https://127.1/", "file:///etc/passwd", "gopher://127.0.0.1:25/_HELO",
		"http://hooks.example.com/", // plain http to a host not allow-listed
	} {
		code, m := apiDo(t, "POST", base+"/api/v1/destinations", "tok", fmt.Sprintf(`{"name":"d","type":"http","url":%q}`, u))
		msg := fmt.Sprint(m["error"])
		if code != 400 {
			t.Errorf("%s: %d %s, want 400", u, code, msg)
			continue
		}
		t.Logf("%-45s 400 %s", u, msg)
	}
	if code, m := apiDo(t, "GET", base+"/api/v1/destinations", "tok", ""); code != 200 || len(m["data"].([]any)) != 0 {
		t.Fatalf("a refused destination was stored: %v", m)
	}
}

// Rotating the master key: with the new key first and the old one after
// it, stored definitions open and are rewrapped under the new key; then
// the old key can be removed.
func TestMasterKeyRotation(t *testing.T) {
	sink := newSignedSink(t, "whsec_"+base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{3}, 32)), "", nil)
	dir := t.TempDir()
	oldKey, newKey := secretKey(t, "k2026a"), secretKey(t, "k2027a")
	run := func(keys ...string) (*App, string) {
		cfg, _ := config.Parse([]byte(subscriptionConfig))
		cfg.Storage.Path = dir
		cfg.Secrets.MasterKeys = keys
		return startApp(t, cfg, nil)
	}
	app, base := run(oldKey)
	dest := fmt.Sprintf(`{"name":"rot","type":"http","url":%q,"sign":{"secrets":[%q]}}`, sink.srv.URL, sink.hmacSecret)
	if code, m := apiDo(t, "POST", base+"/api/v1/destinations", "tok", dest); code != 201 {
		t.Fatalf("create: %d %v", code, m)
	}
	apiDo(t, "POST", base+"/api/v1/subscriptions", "tok", `{"destination":"rot"}`)
	app.Shutdown(t.Context())
	app, base = run(newKey, oldKey) // rewraps on start
	received := func() int { sink.mu.Lock(); defer sink.mu.Unlock(); return len(sink.ids) }
	postEvent(t, base, "claims", `{"id":"a","type":"x"}`)
	waitFor(t, 10*time.Second, "delivery with both keys", func() bool { return received() == 1 })
	app.Shutdown(t.Context())
	_, base = run(newKey) // the old key is gone
	postEvent(t, base, "claims", `{"id":"b","type":"x"}`)
	waitFor(t, 10*time.Second, "delivery with the new key only", func() bool { return received() == 2 })
	if sink.bad != 0 {
		t.Fatalf("%d deliveries failed verification", sink.bad)
	}
}

func secretKey(t *testing.T, id string) string {
	t.Helper()
	return secret.GenerateMasterKey(id)
}

// No key file is made until there is a secret to keep.
func TestMasterKeyMadeOnFirstUse(t *testing.T) {
	dir := t.TempDir()
	cfg, _ := config.Parse([]byte(subscriptionConfig))
	cfg.Storage.Path = dir
	_, base := startApp(t, cfg, nil)
	postEvent(t, base, "claims", `{"id":"x","type":"y"}`)
	if _, err := os.Stat(filepath.Join(dir, MasterKeyFile)); !os.IsNotExist(err) {
		t.Fatalf("master key file before any stored secret: %v", err)
	}
	if code, m := apiDo(t, "POST", base+"/api/v1/destinations", "tok", `{"name":"d","type":"http","url":"https://hooks.example.com/"}`); code != 201 {
		t.Fatalf("create: %d %v", code, m)
	}
	if _, err := os.Stat(filepath.Join(dir, MasterKeyFile)); err != nil {
		t.Fatalf("master key file after the first stored destination: %v", err)
	}
}
