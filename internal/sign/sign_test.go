package sign_test

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"hookd"
	"hookd/internal/config"
	"hookd/internal/sign"
	"hookd/internal/verify"
)

// The Standard Webhooks specification's test vector ("Verifying webhook
// signatures"), also used by internal/verify's TestPublishedVectors.
const (
	specSecret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
	specID     = "msg_p5jXN8AQM9LWM0D4loKWxJek"
	specTS     = 1614265330
	specBody   = `{"test": 2432232314}`
	specSig    = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
)

// Fixed test secrets: whsec_ secrets of 32 bytes, and ed25519 keys from
// fixed seeds (ed25519 signatures are deterministic).
var (
	secretOld   = whsec(bytes.Repeat([]byte{0x11}, 32))
	secretNew   = whsec(bytes.Repeat([]byte{0x22}, 32))
	secretOther = whsec(bytes.Repeat([]byte{0x33}, 32))
	keyOld      = whskSeed(bytes.Repeat([]byte{0x44}, 32))
	keyNew      = whskSeed(bytes.Repeat([]byte{0x55}, 32))
	keyOther    = whskSeed(bytes.Repeat([]byte{0x66}, 32))
)

var t0 = time.Unix(1_700_000_000, 0)

func whsec(b []byte) string { return "whsec_" + base64.StdEncoding.EncodeToString(b) }

// whskSeed writes the 64-byte private key of seed as a whsk_ secret.
func whskSeed(seed []byte) string {
	return "whsk_" + base64.StdEncoding.EncodeToString(ed25519.NewKeyFromSeed(seed))
}

// whpk returns the whpk_ public key of a whsk_ secret, derived here
// independently of package sign.
func whpk(t testing.TB, whsk string) string {
	t.Helper()
	b, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(whsk, "whsk_"))
	if err != nil {
		t.Fatal(err)
	}
	priv := ed25519.NewKeyFromSeed(b[:ed25519.SeedSize])
	return "whpk_" + base64.StdEncoding.EncodeToString(priv.Public().(ed25519.PublicKey))
}

func mustSigner(t testing.TB, c sign.Config) *sign.Signer {
	t.Helper()
	s, err := sign.New(c)
	if err != nil {
		t.Fatalf("sign.New: %v", err)
	}
	return s
}

func mustSign(t testing.TB, s *sign.Signer, id string, ts time.Time, body []byte) sign.Headers {
	t.Helper()
	h, err := s.Sign(id, ts, body)
	if err != nil {
		t.Fatalf("Sign: %v", err)
	}
	return h
}

// receiver builds hookd's own standard_webhooks verifier from options
// written as in YAML, with the clock at now.
func receiver(t testing.TB, opts map[string]any, now time.Time) verify.Chain {
	t.Helper()
	m, err := config.NewVerify("standard_webhooks", opts)
	if err != nil {
		t.Fatal(err)
	}
	c, err := verify.Build(&verify.Env{
		Source: "test",
		Now:    func() time.Time { return now },
		Log:    slog.New(slog.NewTextHandler(io.Discard, nil)),
	}, []config.Verify{m})
	if err != nil {
		t.Fatalf("verify.Build %v: %v", opts, err)
	}
	return c
}

// request is what a receiver sees of hs: the header names canonicalised,
// as net/http does on the server side.
func request(hs sign.Headers, body []byte) *verify.Request {
	h := http.Header{}
	for k, v := range hs {
		h.Set(k, v)
	}
	return &verify.Request{Method: http.MethodPost, Header: h, Body: body}
}

func TestSpecVector(t *testing.T) {
	t.Parallel()
	s := mustSigner(t, sign.Config{Type: "standard_webhooks", Secrets: []string{specSecret}})
	got := mustSign(t, s, specID, time.Unix(specTS, 0), []byte(specBody))
	want := sign.Headers{
		"webhook-id":        specID,
		"webhook-timestamp": "1614265330",
		"webhook-signature": specSig,
	}
	if fmt.Sprint(map[string]string(got)) != fmt.Sprint(map[string]string(want)) {
		t.Fatalf("got %v, want %v", got, want)
	}
	// The type defaults to standard_webhooks; unpadded base64 decodes too.
	s = mustSigner(t, sign.Config{Secrets: []string{strings.TrimRight(specSecret, "=")}})
	if got := mustSign(t, s, specID, time.Unix(specTS, 0), []byte(specBody))["webhook-signature"]; got != specSig {
		t.Fatalf("default type: got %s, want %s", got, specSig)
	}
	// A sub-second part of the time is dropped, not rounded.
	if got := mustSign(t, s, specID, time.Unix(specTS, 999_999_999), []byte(specBody))["webhook-timestamp"]; got != "1614265330" {
		t.Fatalf("timestamp: got %s, want 1614265330", got)
	}
}

// TestIndependentCheck recomputes v1 and v1a with the standard library
// alone, from the content the specification defines.
func TestIndependentCheck(t *testing.T) {
	t.Parallel()
	s := mustSigner(t, sign.Config{Secrets: []string{secretOld, keyOld}})
	body := []byte(`{"type":"invoice.paid","id":"in_1"}`)
	h := mustSign(t, s, "evt_01", t0, body)
	content := []byte("evt_01.1700000000." + string(body))

	mac := hmac.New(sha256.New, bytes.Repeat([]byte{0x11}, 32))
	mac.Write(content)
	ed := ed25519.Sign(ed25519.NewKeyFromSeed(bytes.Repeat([]byte{0x44}, 32)), content)
	want := "v1," + base64.StdEncoding.EncodeToString(mac.Sum(nil)) + " v1a," + base64.StdEncoding.EncodeToString(ed)
	if got := h["webhook-signature"]; got != want {
		t.Fatalf("got %s, want %s", got, want)
	}
}

func TestVerifierRoundTrip(t *testing.T) {
	t.Parallel()
	body := []byte(`{"type":"booking.created","id":"bk_1","amount":501}`)
	for _, c := range []struct {
		name    string
		secrets []string
		// accept and refuse are verifier options that must accept, or
		// refuse, what the signer sent.
		accept []map[string]any
		refuse []map[string]any
	}{
		{
			name:    "HMAC",
			secrets: []string{secretOld},
			accept:  []map[string]any{{"secrets": []any{secretOld}}},
			refuse:  []map[string]any{{"secrets": []any{secretOther}}, {"public_keys": []any{whpk(t, keyOld)}}},
		},
		{
			name:    "HMACRotation",
			secrets: []string{secretOld, secretNew},
			accept: []map[string]any{
				{"secrets": []any{secretOld}},
				{"secrets": []any{secretNew}},
				{"secrets": []any{secretOther, secretNew}},
			},
			refuse: []map[string]any{{"secrets": []any{secretOther}}},
		},
		{
			name:    "Ed25519PublicKeyOnly",
			secrets: []string{keyOld},
			accept:  []map[string]any{{"public_keys": []any{whpk(t, keyOld)}}},
			refuse:  []map[string]any{{"public_keys": []any{whpk(t, keyOther)}}, {"secrets": []any{secretOld}}},
		},
		{
			name:    "Ed25519Rotation",
			secrets: []string{keyOld, keyNew},
			accept: []map[string]any{
				{"public_keys": []any{whpk(t, keyOld)}},
				{"public_keys": []any{whpk(t, keyNew)}},
			},
			refuse: []map[string]any{{"public_keys": []any{whpk(t, keyOther)}}},
		},
		{
			name:    "Mixed",
			secrets: []string{secretOld, keyNew},
			accept: []map[string]any{
				{"secrets": []any{secretOld}},
				{"public_keys": []any{whpk(t, keyNew)}},
				{"secrets": []any{secretOther}, "public_keys": []any{whpk(t, keyNew)}},
			},
			refuse: []map[string]any{{"secrets": []any{secretOther}, "public_keys": []any{whpk(t, keyOther)}}},
		},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			s := mustSigner(t, sign.Config{Type: "standard_webhooks", Secrets: c.secrets})
			h := mustSign(t, s, "evt_01HZX", t0, body)
			if n := len(strings.Fields(h["webhook-signature"])); n != len(c.secrets) {
				t.Fatalf("got %d signatures, want one per secret (%d)", n, len(c.secrets))
			}
			ctx := context.Background()
			for _, opts := range c.accept {
				if err := receiver(t, opts, t0).Verify(ctx, request(h, body)); err != nil {
					t.Errorf("verifier %v: got %v, want accepted", opts, err)
				}
				// The same signature is refused on a changed body, and
				// outside the receiver's tolerance.
				if err := receiver(t, opts, t0).Verify(ctx, request(h, append(bytes.Clone(body), ' '))); err == nil {
					t.Errorf("verifier %v: tampered body accepted", opts)
				}
				err := receiver(t, opts, t0.Add(6*time.Minute)).Verify(ctx, request(h, body))
				if hookd.ErrorMessage(err) != "timestamp outside tolerance" {
					t.Errorf("verifier %v six minutes later: got %v, want timestamp outside tolerance", opts, err)
				}
			}
			for _, opts := range c.refuse {
				err := receiver(t, opts, t0).Verify(ctx, request(h, body))
				if err == nil || hookd.ErrorCode(err) != hookd.EUnauthorized {
					t.Errorf("verifier %v: got %v, want 401", opts, err)
				}
			}
		})
	}
}

// TestHeaderOverrides: a receiver migrating from Svix expects svix-*
// headers; hookd's verifier reads them with header_prefix.
func TestHeaderOverrides(t *testing.T) {
	t.Parallel()
	body := []byte(`{"a":1}`)
	s := mustSigner(t, sign.Config{
		Secrets:  []string{secretOld, keyOld},
		IDHeader: "svix-id", TimestampHeader: "svix-timestamp", SignatureHeader: "svix-signature",
	})
	id, ts, sig := s.HeaderNames()
	if id != "svix-id" || ts != "svix-timestamp" || sig != "svix-signature" {
		t.Fatalf("HeaderNames: got %s %s %s, want svix-id svix-timestamp svix-signature", id, ts, sig)
	}
	h := mustSign(t, s, "evt_1", t0, body)
	if len(h) != 3 || h["svix-id"] != "evt_1" || h["svix-timestamp"] != "1700000000" || h["svix-signature"] == "" {
		t.Fatalf("got %v, want exactly svix-id, svix-timestamp and svix-signature", h)
	}
	ctx := context.Background()
	for _, opts := range []map[string]any{
		{"secrets": []any{secretOld}, "header_prefix": "svix-"},
		{"public_keys": []any{whpk(t, keyOld)}, "header_prefix": "svix-"},
	} {
		if err := receiver(t, opts, t0).Verify(ctx, request(h, body)); err != nil {
			t.Errorf("verifier %v: got %v, want accepted", opts, err)
		}
	}
	err := receiver(t, map[string]any{"secrets": []any{secretOld}}, t0).Verify(ctx, request(h, body))
	if hookd.ErrorMessage(err) != "signature missing" {
		t.Fatalf("default verifier on svix-* headers: got %v, want signature missing", err)
	}
}

// TestWire sends a signed request over HTTP with Headers.Apply and
// verifies it on the server side, as a receiver would.
func TestWire(t *testing.T) {
	t.Parallel()
	s := mustSigner(t, sign.Config{Secrets: []string{secretOld, secretNew, keyNew}})
	chain := receiver(t, map[string]any{"public_keys": []any{whpk(t, keyNew)}}, t0)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, err := io.ReadAll(r.Body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		for _, name := range []string{"Webhook-Id", "Webhook-Timestamp", "Webhook-Signature"} {
			if n := len(r.Header.Values(name)); n != 1 {
				http.Error(w, fmt.Sprintf("%s sent %d times", name, n), http.StatusBadRequest)
				return
			}
		}
		if err := chain.Verify(r.Context(), &verify.Request{Method: r.Method, URL: r.URL, Header: r.Header, Body: b}); err != nil {
			http.Error(w, err.Error(), http.StatusUnauthorized)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	}))
	defer srv.Close()

	body := []byte(`{"hello":"world"}`)
	req, err := http.NewRequest(http.MethodPost, srv.URL, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	// A stale value under the canonical name is replaced, not sent twice.
	req.Header.Set("Webhook-Signature", "v1,stale")
	mustSign(t, s, "evt_wire", t0, body).Apply(req.Header)
	if _, ok := req.Header["Webhook-Signature"]; ok {
		t.Fatalf("Apply left the canonical Webhook-Signature in place")
	}
	if _, ok := req.Header["webhook-signature"]; !ok {
		t.Fatalf("Apply: got %v, want webhook-signature as written", req.Header)
	}
	resp, err := srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	msg, _ := io.ReadAll(resp.Body)
	_ = resp.Body.Close()
	if resp.StatusCode != http.StatusNoContent {
		t.Fatalf("got %d %s, want 204", resp.StatusCode, msg)
	}
}

func TestSignRefuses(t *testing.T) {
	t.Parallel()
	s := mustSigner(t, sign.Config{Secrets: []string{secretOld}})
	for _, c := range []struct {
		name string
		id   string
		ts   time.Time
		want string
	}{
		{"EmptyID", "", t0, "empty message id"},
		{"NewlineInID", "evt_1\r\nX-Injected: 1", t0, "printable ASCII"},
		{"NULInID", "evt\x00", t0, "printable ASCII"},
		{"NonASCIIID", "évt_1", t0, "printable ASCII"},
		{"LeadingSpace", " evt_1", t0, "starts or ends with a space"},
		{"TrailingSpace", "evt_1 ", t0, "starts or ends with a space"},
		{"Before1970", "evt_1", time.Unix(-1, 0), "timestamp out of range"},
		{"Year5001", "evt_1", time.Date(5001, 1, 1, 0, 0, 0, 0, time.UTC), "timestamp out of range"},
		{"ReadAsMilliseconds", "evt_1", time.Unix(100_000_000_000, 0), "timestamp out of range"},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			h, err := s.Sign(c.id, c.ts, []byte("{}"))
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("got %v, %v, want an error containing %q", h, err, c.want)
			}
		})
	}
	// Inner spaces, dots and the empty body are fine.
	for _, ts := range []time.Time{time.Unix(0, 0), time.Date(5000, 12, 31, 23, 59, 59, 0, time.UTC)} {
		if _, err := s.Sign("msg with.dots", ts, nil); err != nil {
			t.Fatalf("at %v: got %v, want signed", ts, err)
		}
	}
}

func TestConfigValidate(t *testing.T) {
	t.Parallel()
	short := whsec(bytes.Repeat([]byte{1}, 23))
	long := whsec(bytes.Repeat([]byte{1}, 65))
	seed := bytes.Repeat([]byte{0x44}, 32)
	badPriv := ed25519.NewKeyFromSeed(seed)
	badPriv[40] ^= 1
	for _, c := range []struct {
		name string
		cfg  sign.Config
		want string // "" for valid
	}{
		{"Valid", sign.Config{Type: "standard_webhooks", Secrets: []string{secretOld}}, ""},
		{"ValidMixed", sign.Config{Secrets: []string{secretOld, keyOld, secretNew, keyNew}}, ""},
		{"ValidSeed", sign.Config{Secrets: []string{"whsk_" + base64.StdEncoding.EncodeToString(seed)}}, ""},
		{"ValidSurroundingNewline", sign.Config{Secrets: []string{secretOld + "\n"}}, ""},
		{"ValidMinMax", sign.Config{Secrets: []string{whsec(bytes.Repeat([]byte{1}, 24)), whsec(bytes.Repeat([]byte{2}, 64))}}, ""},
		{"ValidOverrides", sign.Config{Secrets: []string{secretOld}, IDHeader: "X-Msg-Id", TimestampHeader: "X-Msg-Ts", SignatureHeader: "X-Msg-Sig"}, ""},
		{"UnknownType", sign.Config{Type: "hmac", Secrets: []string{secretOld}}, "type: unknown (want standard_webhooks)"},
		{"NoSecrets", sign.Config{}, "secrets: at least one secret is required"},
		{"TooMany", sign.Config{Secrets: manySecrets(17)}, "secrets: 17 secrets, at most 16"},
		{"Empty", sign.Config{Secrets: []string{secretOld, ""}}, "secrets[1]: empty (is its environment variable set?)"},
		{"NoPrefix", sign.Config{Secrets: []string{"MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"}}, "secrets[0]: want whsec_<base64> (HMAC-SHA256) or whsk_<base64>"},
		{"NotBase64", sign.Config{Secrets: []string{"whsec_not base64!!"}}, "secrets[0]: a whsec_ secret is whsec_ followed by base64"},
		{"EmptyWhsec", sign.Config{Secrets: []string{"whsec_"}}, "secrets[0]: a whsec_ secret is whsec_ followed by base64"},
		{"TooShort", sign.Config{Secrets: []string{short}}, "secrets[0]: a whsec_ secret must decode to 24 to 64 bytes, not 23"},
		{"TooLong", sign.Config{Secrets: []string{long}}, "secrets[0]: a whsec_ secret must decode to 24 to 64 bytes, not 65"},
		{"KeyNotBase64", sign.Config{Secrets: []string{"whsk_%%%"}}, "secrets[0]: a whsk_ key is whsk_ followed by base64"},
		{"KeyWrongSize", sign.Config{Secrets: []string{"whsk_" + base64.StdEncoding.EncodeToString(make([]byte, 48))}}, "secrets[0]: a whsk_ key must decode to an ed25519 private key (64 bytes) or seed (32 bytes), not 48 bytes"},
		{"KeyHalvesDisagree", sign.Config{Secrets: []string{"whsk_" + base64.StdEncoding.EncodeToString(badPriv)}}, "secrets[0]: not an ed25519 private key: its public half does not match its seed"},
		{"PublicKey", sign.Config{Secrets: []string{whpk(t, keyOld)}}, "secrets[0]: a whpk_ public key cannot sign"},
		{"Duplicate", sign.Config{Secrets: []string{secretOld, secretNew, secretOld}}, "secrets[2]: the same secret as secrets[0]"},
		{"DuplicateKeySeedAndFull", sign.Config{Secrets: []string{keyOld, "whsk_" + base64.StdEncoding.EncodeToString(seed)}}, "secrets[1]: the same secret as secrets[0]"},
		{"BadIDHeader", sign.Config{Secrets: []string{secretOld}, IDHeader: "x id"}, "id_header: not a valid header name"},
		{"BadTimestampHeader", sign.Config{Secrets: []string{secretOld}, TimestampHeader: "x:ts"}, "timestamp_header: not a valid header name"},
		{"ReservedSignatureHeader", sign.Config{Secrets: []string{secretOld}, SignatureHeader: "Content-Type"}, "signature_header: a header hookd or HTTP sets itself"},
		{"HookdHeader", sign.Config{Secrets: []string{secretOld}, SignatureHeader: "Hookd-Signature"}, "signature_header: a Hookd-* header is hookd's own"},
		{"SameHeaders", sign.Config{Secrets: []string{secretOld}, TimestampHeader: "X-A", SignatureHeader: "x-a"}, "signature_header: the same header as timestamp_header"},
		{"OverrideCollidesWithDefault", sign.Config{Secrets: []string{secretOld}, SignatureHeader: "Webhook-Id"}, "signature_header: the same header as id_header"},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			err := c.cfg.Validate()
			if c.want == "" {
				if err != nil {
					t.Fatalf("got %v, want valid", err)
				}
				return
			}
			if err == nil || !strings.HasPrefix(err.Error(), c.want) {
				t.Fatalf("got %v, want %q", err, c.want)
			}
			assertNoSecret(t, err.Error(), c.cfg.Secrets)
		})
	}
}

func manySecrets(n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = whsec(bytes.Repeat([]byte{byte(i + 1)}, 32))
	}
	return out
}

// assertNoSecret fails when s shows any secret of list, or its encoded
// part alone.
func assertNoSecret(t *testing.T, s string, list []string) {
	t.Helper()
	for _, sec := range list {
		sec = strings.TrimSpace(sec)
		_, enc, _ := strings.Cut(sec, "_")
		for _, v := range []string{sec, enc} {
			if len(v) >= 8 && strings.Contains(s, v) {
				t.Fatalf("%q shows a secret", s)
			}
		}
	}
}

func TestPublicKeys(t *testing.T) {
	t.Parallel()
	seed := bytes.Repeat([]byte{0x44}, 32)
	seedForm := "whsk_" + base64.StdEncoding.EncodeToString(seed)
	s := mustSigner(t, sign.Config{Secrets: []string{secretOld, keyOld, secretNew, keyNew}})
	got := s.PublicKeys()
	want := []string{whpk(t, keyOld), whpk(t, keyNew)}
	if strings.Join(got, " ") != strings.Join(want, " ") {
		t.Fatalf("got %v, want %v", got, want)
	}
	if got := mustSigner(t, sign.Config{Secrets: []string{secretOld}}).PublicKeys(); len(got) != 0 {
		t.Fatalf("HMAC only: got %v, want none", got)
	}
	// The 32-byte seed and the 64-byte key are the same key.
	a := mustSign(t, mustSigner(t, sign.Config{Secrets: []string{keyOld}}), "evt_1", t0, []byte("x"))
	b := mustSign(t, mustSigner(t, sign.Config{Secrets: []string{seedForm}}), "evt_1", t0, []byte("x"))
	if a["webhook-signature"] != b["webhook-signature"] {
		t.Fatalf("seed and full key sign differently: %s, %s", a["webhook-signature"], b["webhook-signature"])
	}
}

func TestGenerate(t *testing.T) {
	t.Parallel()
	sec, err := sign.GenerateSecret()
	if err != nil {
		t.Fatal(err)
	}
	raw, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(sec, "whsec_"))
	if !strings.HasPrefix(sec, "whsec_") || err != nil || len(raw) != sign.GeneratedSecretLen {
		t.Fatalf("GenerateSecret: got a %d-byte %.6s… secret (%v), want whsec_ and %d bytes", len(raw), sec, err, sign.GeneratedSecretLen)
	}
	sec2, _ := sign.GenerateSecret()
	if sec == sec2 {
		t.Fatalf("GenerateSecret returned the same secret twice")
	}
	priv, pub, err := sign.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(priv, "whsk_") || !strings.HasPrefix(pub, "whpk_") {
		t.Fatalf("GenerateKey: got prefixes %.5s %.5s, want whsk_ whpk_", priv, pub)
	}
	s := mustSigner(t, sign.Config{Secrets: []string{sec, priv}})
	if got := s.PublicKeys(); len(got) != 1 || got[0] != pub {
		t.Fatalf("PublicKeys: got %v, want [%s]", got, pub)
	}
	body := []byte(`{}`)
	h := mustSign(t, s, "evt_gen", t0, body)
	for _, opts := range []map[string]any{{"secrets": []any{sec}}, {"public_keys": []any{pub}}} {
		if err := receiver(t, opts, t0).Verify(context.Background(), request(h, body)); err != nil {
			t.Fatalf("generated secrets: got %v, want accepted", err)
		}
	}
}

// TestRedaction: printing or logging a Config or a Signer by mistake
// shows no secret.
func TestRedaction(t *testing.T) {
	t.Parallel()
	cfg := sign.Config{Type: "standard_webhooks", Secrets: []string{secretOld, keyOld, "garbage-secret-value"}}
	s := mustSigner(t, sign.Config{Secrets: cfg.Secrets[:2]})

	var logged bytes.Buffer
	log := slog.New(slog.NewJSONHandler(&logged, nil))
	log.Info("config", "sign", cfg, "signer", s)
	red, err := json.Marshal(cfg.Redacted())
	if err != nil {
		t.Fatal(err)
	}
	for name, out := range map[string]string{
		"v": fmt.Sprintf("%v", cfg), "+v": fmt.Sprintf("%+v", cfg), "#v": fmt.Sprintf("%#v", cfg),
		"s": fmt.Sprint(&cfg), "signer v": fmt.Sprintf("%v", s), "signer +v": fmt.Sprintf("%+v", s),
		"signer #v": fmt.Sprintf("%#v", s), "slog": logged.String(), "Redacted": string(red),
	} {
		assertNoSecret(t, out, cfg.Secrets)
		if name == "Redacted" && !strings.Contains(out, `"whsec_[redacted]","whsk_[redacted]","[redacted]"`) {
			t.Fatalf("Redacted: got %s, want each secret's kind and [redacted]", out)
		}
	}
	if got := cfg.Secrets[0]; got != secretOld {
		t.Fatalf("Redacted changed the original: got %s", got)
	}
}
