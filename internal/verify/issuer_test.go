package verify

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"hookd/internal/config"
	"hookd/internal/store/sqlite"
)

// issuerTestClock is a clock tests move by hand.
type issuerTestClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *issuerTestClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *issuerTestClock) Set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = t
}

// issuerTestSources are two oauth_issuer sources and one other.
func issuerTestSources(t *testing.T) []config.Source {
	t.Helper()
	mk := func(typ string, opts map[string]any) config.Verify {
		m, err := config.NewVerify(typ, opts)
		if err != nil {
			t.Fatal(err)
		}
		return m
	}
	return []config.Source{
		{Name: "claims", Verify: []config.Verify{mk("oauth_issuer", map[string]any{
			"clients":  []any{map[string]any{"id": "provider-a", "secret": []string{"secret-a-new-0123456789", "secret-a-old-0123456789"}}},
			"validity": "1h",
		})}},
		{Name: "loyalty", Verify: []config.Verify{mk("oauth_issuer", map[string]any{
			"clients":  []any{map[string]any{"id": "provider-b", "secret": "secret-b-0123456789"}, map[string]any{"id": "weird id+%", "secret": "p&ss=w+rd%-0123456789"}},
			"validity": 2, // a bare number: hours (seed 000)
		})}},
		{Name: "open", Verify: []config.Verify{mk("api_key", map[string]any{"keys": []string{"k-0123456789abcdef"}})}},
	}
}

// issuerTestEnv is an issuer over a real SQLite store in dir, and the
// chains of its sources, on one injected clock.
type issuerTestEnv struct {
	iss    *Issuer
	chains map[string]Chain
	clock  *issuerTestClock
	st     *sqlite.Store
}

func issuerTestOpen(t *testing.T, dir string, clock *issuerTestClock, sources []config.Source, log *slog.Logger) *issuerTestEnv {
	t.Helper()
	if log == nil {
		log = credDiscardLog()
	}
	ctx := context.Background()
	st, err := sqlite.Open(ctx, dir, log, sqlite.Options{})
	if err != nil {
		t.Fatalf("open store: %v", err)
	}
	t.Cleanup(func() { st.Close() })
	iss, err := NewIssuer(ctx, IssuerOptions{Store: st, Keys: issuerTestKeys, Sources: sources, Now: clock.Now, Log: log})
	if err != nil {
		t.Fatalf("NewIssuer: %v", err)
	}
	e := &issuerTestEnv{iss: iss, chains: map[string]Chain{}, clock: clock, st: st}
	for _, s := range sources {
		c, err := Build(&Env{Source: s.Name, Now: clock.Now, Issuer: iss, Log: log}, s.Verify)
		if err != nil {
			t.Fatalf("build %s: %v", s.Name, err)
		}
		e.chains[s.Name] = c
	}
	return e
}

var issuerT0 = time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)

// issuerTestRequest is a token request with form fields and optional
// HTTP Basic credentials.
func issuerTestRequest(form url.Values, basicUser, basicPass string) *http.Request {
	r := httptest.NewRequest(http.MethodPost, IssuerTokenPath, strings.NewReader(form.Encode()))
	r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if basicUser != "" || basicPass != "" {
		r.SetBasicAuth(basicUser, basicPass)
	}
	return r
}

type issuerTestAnswer struct {
	status    int
	header    http.Header
	token     IssuedToken
	errorCode string
}

func issuerTestDo(t *testing.T, iss *Issuer, r *http.Request) issuerTestAnswer {
	t.Helper()
	w := httptest.NewRecorder()
	iss.ServeHTTP(w, r)
	a := issuerTestAnswer{status: w.Code, header: w.Header()}
	if ct := w.Header().Get("Content-Type"); ct != "application/json" {
		t.Errorf("Content-Type: got %q, want application/json", ct)
	}
	if cc := w.Header().Get("Cache-Control"); cc != "no-store" {
		t.Errorf("Cache-Control: got %q, want no-store", cc)
	}
	body := w.Body.Bytes()
	if w.Code == http.StatusOK {
		dec := json.NewDecoder(bytes.NewReader(body))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&a.token); err != nil {
			t.Fatalf("token answer %q: %v", body, err)
		}
		return a
	}
	var e struct {
		Error       string `json:"error"`
		Description string `json:"error_description"`
	}
	if err := json.Unmarshal(body, &e); err != nil {
		t.Fatalf("error answer %q: %v", body, err)
	}
	a.errorCode = e.Error
	return a
}

// issuerTestGet asks for a token with HTTP Basic and fails the test
// without one.
func issuerTestGet(t *testing.T, iss *Issuer, id, secret string) string {
	t.Helper()
	a := issuerTestDo(t, iss, issuerTestRequest(url.Values{"grant_type": {"client_credentials"}}, id, secret))
	if a.status != http.StatusOK {
		t.Fatalf("token for %s: got %d %s, want 200", id, a.status, a.errorCode)
	}
	return a.token.AccessToken
}

func issuerTestVerify(e *issuerTestEnv, source string, kv ...string) error {
	return e.chains[source].Verify(context.Background(), credRequest("192.0.2.1:1234", kv...))
}

func TestIssuerTokenEndpoint(t *testing.T) {
	t.Parallel()
	clock := &issuerTestClock{t: issuerT0}
	e := issuerTestOpen(t, t.TempDir(), clock, issuerTestSources(t), nil)
	grant := url.Values{"grant_type": {"client_credentials"}}
	with := func(kv ...string) url.Values {
		v := url.Values{}
		for i := 0; i+1 < len(kv); i += 2 {
			v.Add(kv[i], kv[i+1])
		}
		return v
	}
	form := func(v url.Values) *http.Request { return issuerTestRequest(v, "", "") }
	tests := []struct {
		name          string
		req           *http.Request
		wantStatus    int
		wantError     string
		wantChallenge string
		wantExpiresIn int64
	}{
		{"Basic", issuerTestRequest(grant, "provider-a", "secret-a-new-0123456789"), 200, "", "", 3600},
		{"BasicRotatedSecret", issuerTestRequest(grant, "provider-a", "secret-a-old-0123456789"), 200, "", "", 3600},
		{"BasicWithClientIDField", issuerTestRequest(with("grant_type", "client_credentials", "client_id", "provider-a"), "provider-a", "secret-a-new-0123456789"), 200, "", "", 3600},
		{"Form", form(with("grant_type", "client_credentials", "client_id", "provider-b", "client_secret", "secret-b-0123456789")), 200, "", "", 7200},
		{"FormWithScope", form(with("grant_type", "client_credentials", "client_id", "provider-b", "client_secret", "secret-b-0123456789", "scope", "events")), 200, "", "", 7200},
		{"FormSpecialCharacters", form(with("grant_type", "client_credentials", "client_id", "weird id+%", "client_secret", "p&ss=w+rd%-0123456789")), 200, "", "", 7200},
		{"BasicFormEncoded", issuerTestRequest(grant, url.QueryEscape("weird id+%"), url.QueryEscape("p&ss=w+rd%-0123456789")), 200, "", "", 7200},
		{"BasicRaw", issuerTestRequest(grant, "weird id+%", "p&ss=w+rd%-0123456789"), 200, "", "", 7200},
		{"BasicBadSecret", issuerTestRequest(grant, "provider-a", "secret-a-wrong"), 401, "invalid_client", ChallengeBasic, 0},
		{"BasicOtherClientsSecret", issuerTestRequest(grant, "provider-a", "secret-b-0123456789"), 401, "invalid_client", ChallengeBasic, 0},
		{"BasicUnknownClient", issuerTestRequest(grant, "nobody", "secret-a-new-0123456789"), 401, "invalid_client", ChallengeBasic, 0},
		{"BasicMalformed", func() *http.Request {
			r := issuerTestRequest(grant, "", "")
			r.Header.Set("Authorization", "Basic !!")
			return r
		}(), 401, "invalid_client", ChallengeBasic, 0},
		{"FormBadSecret", form(with("grant_type", "client_credentials", "client_id", "provider-b", "client_secret", "nope")), 401, "invalid_client", "", 0},
		{"FormNoSecret", form(with("grant_type", "client_credentials", "client_id", "provider-b")), 401, "invalid_client", "", 0},
		{"NoClient", form(grant), 401, "invalid_client", "", 0},
		{"SecretInQueryIgnored", func() *http.Request {
			r := issuerTestRequest(grant, "", "")
			r.URL.RawQuery = "client_id=provider-b&client_secret=secret-b"
			return r
		}(), 401, "invalid_client", "", 0},
		{"BothMethods", issuerTestRequest(with("grant_type", "client_credentials", "client_secret", "secret-a-new-0123456789"), "provider-a", "secret-a-new-0123456789"), 400, "invalid_request", "", 0},
		{"ClientIDMismatch", issuerTestRequest(with("grant_type", "client_credentials", "client_id", "provider-b"), "provider-a", "secret-a-new-0123456789"), 400, "invalid_request", "", 0},
		{"WrongGrant", issuerTestRequest(with("grant_type", "password", "username", "u", "password", "p"), "provider-a", "secret-a-new-0123456789"), 400, "unsupported_grant_type", "", 0},
		{"WrongGrantBadClient", form(with("grant_type", "authorization_code", "client_id", "x", "client_secret", "y")), 400, "unsupported_grant_type", "", 0},
		{"MissingGrant", issuerTestRequest(url.Values{}, "provider-a", "secret-a-new-0123456789"), 400, "invalid_request", "", 0},
		{"RepeatedGrant", issuerTestRequest(with("grant_type", "client_credentials", "grant_type", "client_credentials"), "provider-a", "secret-a-new-0123456789"), 400, "invalid_request", "", 0},
		{"JSONBody", func() *http.Request {
			r := httptest.NewRequest(http.MethodPost, IssuerTokenPath, strings.NewReader(`{"grant_type":"client_credentials"}`))
			r.Header.Set("Content-Type", "application/json")
			r.SetBasicAuth("provider-a", "secret-a-new-0123456789")
			return r
		}(), 400, "invalid_request", "", 0},
		{"HugeForm", form(with("grant_type", "client_credentials", "client_id", "provider-b", "client_secret", "secret-b-0123456789", "pad", strings.Repeat("x", 64<<10))), 400, "invalid_request", "", 0},
		{"Get", httptest.NewRequest(http.MethodGet, IssuerTokenPath+"?grant_type=client_credentials", nil), 405, "invalid_request", "", 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := issuerTestDo(t, e.iss, tt.req)
			if a.status != tt.wantStatus || a.errorCode != tt.wantError {
				t.Fatalf("got %d %q, want %d %q", a.status, a.errorCode, tt.wantStatus, tt.wantError)
			}
			if got := a.header.Get("WWW-Authenticate"); got != tt.wantChallenge {
				t.Errorf("WWW-Authenticate: got %q, want %q", got, tt.wantChallenge)
			}
			if tt.wantStatus != 200 {
				return
			}
			if a.token.TokenType != "Bearer" || a.token.ExpiresIn != tt.wantExpiresIn || !strings.HasPrefix(a.token.AccessToken, "hk_at_") {
				t.Errorf("got %+v, want a Bearer hk_at_ token with expires_in %d", a.token, tt.wantExpiresIn)
			}
		})
	}
}

func TestIssuerTokenOnSources(t *testing.T) {
	t.Parallel()
	clock := &issuerTestClock{t: issuerT0}
	e := issuerTestOpen(t, t.TempDir(), clock, issuerTestSources(t), nil)
	tokA := issuerTestGet(t, e.iss, "provider-a", "secret-a-new-0123456789")
	tokB := issuerTestGet(t, e.iss, "provider-b", "secret-b-0123456789")
	if tokA == issuerTestGet(t, e.iss, "provider-a", "secret-a-new-0123456789") {
		t.Errorf("two tokens issued at the same instant are equal; want a random token id in each")
	}
	// A token signed with another key: another issuer over another store.
	foreign := issuerTestOpen(t, t.TempDir(), clock, issuerTestSources(t), nil)
	tokForeign := issuerTestGet(t, foreign.iss, "provider-a", "secret-a-new-0123456789")

	body, sig, _ := strings.Cut(tokA, ".")
	payload, _ := base64.RawURLEncoding.DecodeString(strings.TrimPrefix(body, "hk_at_"))
	forged := "hk_at_" + base64.RawURLEncoding.EncodeToString(bytes.Replace(payload, []byte(`"src":"claims"`), []byte(`"src":"loyalty"`), 1)) + "." + sig
	flip := []byte(tokA)
	flip[10] ^= 1

	tests := []struct {
		name          string
		source        string
		headers       []string
		wantStatus    int
		wantChallenge string
	}{
		{"Valid", "claims", []string{"Authorization", "Bearer " + tokA}, 200, ""},
		{"ValidOtherSource", "loyalty", []string{"Authorization", "Bearer " + tokB}, 200, ""},
		{"LowerCaseScheme", "claims", []string{"Authorization", "bearer " + tokA}, 200, ""},
		{"TokenOfAnotherSource", "loyalty", []string{"Authorization", "Bearer " + tokA}, 401, ChallengeInvalidBearer},
		{"TokenOfAnotherSourceReverse", "claims", []string{"Authorization", "Bearer " + tokB}, 401, ChallengeInvalidBearer},
		{"Missing", "claims", nil, 401, ChallengeBearer},
		{"BasicInstead", "claims", []string{"Authorization", basicHeader("provider-a", "secret-a-new-0123456789")}, 401, ChallengeBearer},
		{"EmptyBearer", "claims", []string{"Authorization", "Bearer"}, 401, ChallengeInvalidBearer},
		{"Garbage", "claims", []string{"Authorization", "Bearer abc.def"}, 401, ChallengeInvalidBearer},
		{"FlippedBit", "claims", []string{"Authorization", "Bearer " + string(flip)}, 401, ChallengeInvalidBearer},
		{"ForgedSource", "loyalty", []string{"Authorization", "Bearer " + forged}, 401, ChallengeInvalidBearer},
		{"Truncated", "claims", []string{"Authorization", "Bearer " + tokA[:len(tokA)-2]}, 401, ChallengeInvalidBearer},
		{"NoSignature", "claims", []string{"Authorization", "Bearer " + body}, 401, ChallengeInvalidBearer},
		{"OtherKey", "claims", []string{"Authorization", "Bearer " + tokForeign}, 401, ChallengeInvalidBearer},
		{"ClientSecretAsToken", "claims", []string{"Authorization", "Bearer secret-a-new"}, 401, ChallengeInvalidBearer},
		{"TwoHeaders", "claims", []string{"Authorization", "Bearer " + tokA, "Authorization", "Bearer " + tokA}, 401, ChallengeInvalidBearer},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := issuerTestVerify(e, tt.source, tt.headers...)
			credCheck(t, err, tt.wantStatus, tt.wantChallenge, "secret-a-new-0123456789", "secret-a-old-0123456789", "secret-b-0123456789", sig)
		})
	}
}

func TestIssuerExpiryNoLeeway(t *testing.T) {
	t.Parallel()
	clock := &issuerTestClock{t: issuerT0.Add(123 * time.Millisecond)}
	e := issuerTestOpen(t, t.TempDir(), clock, issuerTestSources(t), nil)
	tok := issuerTestGet(t, e.iss, "provider-a", "secret-a-new-0123456789")
	issued := clock.Now()
	for _, tt := range []struct {
		name          string
		at            time.Duration
		wantStatus    int
		wantChallenge string
	}{
		{"AtIssue", 0, 200, ""},
		{"JustBeforeExpiry", time.Hour - time.Millisecond, 200, ""},
		{"AtExpiry", time.Hour, 401, ChallengeInvalidBearer},
		{"AfterExpiry", time.Hour + time.Second, 401, ChallengeInvalidBearer},
	} {
		t.Run(tt.name, func(t *testing.T) {
			clock.Set(issued.Add(tt.at))
			err := issuerTestVerify(e, "claims", "Authorization", "Bearer "+tok)
			credCheck(t, err, tt.wantStatus, tt.wantChallenge)
		})
	}
	// The sender's answer to the 401: a new token, which works (seed 000).
	tok2 := issuerTestGet(t, e.iss, "provider-a", "secret-a-new-0123456789")
	if err := issuerTestVerify(e, "claims", "Authorization", "Bearer "+tok2); err != nil {
		t.Errorf("new token after expiry: got %v, want accepted", err)
	}
}

func TestIssuerSurvivesRestart(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	clock := &issuerTestClock{t: issuerT0}
	first := issuerTestOpen(t, dir, clock, issuerTestSources(t), nil)
	tok := issuerTestGet(t, first.iss, "provider-a", "secret-a-new-0123456789")
	if err := first.st.Close(); err != nil {
		t.Fatal(err)
	}
	clock.Set(issuerT0.Add(30 * time.Minute))
	second := issuerTestOpen(t, dir, clock, issuerTestSources(t), nil)
	if err := issuerTestVerify(second, "claims", "Authorization", "Bearer "+tok); err != nil {
		t.Errorf("token after restart: got %v, want accepted", err)
	}
	if !bytes.Equal(first.iss.key, second.iss.key) {
		t.Errorf("the signing key changed across a restart")
	}

	// A client removed from the configuration loses its tokens.
	sources := issuerTestSources(t)
	sources[0].Verify[0], _ = config.NewVerify("oauth_issuer", map[string]any{"clients": []any{map[string]any{"id": "provider-c", "secret": "s-0123456789abcdef"}}})
	third := issuerTestOpen(t, t.TempDir(), clock, sources, nil)
	third.iss.key = first.iss.key
	credCheck(t, issuerTestVerify(third, "claims", "Authorization", "Bearer "+tok), 401, ChallengeInvalidBearer)
}

func TestIssuerHugeTokenRejectedFast(t *testing.T) {
	t.Parallel()
	clock := &issuerTestClock{t: issuerT0}
	e := issuerTestOpen(t, t.TempDir(), clock, issuerTestSources(t), nil)
	tok := issuerTestGet(t, e.iss, "provider-a", "secret-a-new-0123456789")
	for _, tt := range []struct {
		name string
		tok  string
	}{
		{"100KB", "hk_at_" + strings.Repeat("A", 100<<10) + "." + strings.Repeat("B", 43)},
		{"100KDots", strings.Repeat(".", 100_000)},
		{"ValidPadded", tok + strings.Repeat("A", 100<<10)},
	} {
		t.Run(tt.name, func(t *testing.T) {
			best := time.Hour
			for range 5 {
				start := time.Now()
				err := issuerTestVerify(e, "claims", "Authorization", "Bearer "+tt.tok)
				best = min(best, time.Since(start))
				credCheck(t, err, 401, ChallengeInvalidBearer)
			}
			if best > 5*time.Millisecond {
				t.Errorf("rejecting took %v, want under 5ms", best)
			}
		})
	}
}

func TestIssuerValidity(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		value   any // nil: not set
		want    time.Duration
		wantErr string
	}{
		{"Default", nil, time.Hour, ""},
		{"Duration", "1h", time.Hour, ""},
		{"Minutes", "90m", 90 * time.Minute, ""},
		{"Seconds", "3s", 3 * time.Second, ""},
		{"BareHours", 1, time.Hour, ""},
		{"BareHoursString", "2", 2 * time.Hour, ""},
		{"FractionalHours", 1.5, 90 * time.Minute, ""},
		{"RoundedDownToSeconds", "1500ms", time.Second, ""},
		{"Zero", 0, 0, "out of range"},
		{"Negative", "-1h", 0, "validity: must be between 1s"},
		{"SubSecond", "500ms", 0, "validity: must be between 1s"},
		{"TooLong", "8761h", 0, "validity: must be between 1s"},
		{"TooManyHours", 1e9, 0, "out of range"},
		{"Garbage", "an hour", 0, "validity: invalid value"},
		{"List", []string{"1h"}, 0, "validity: want a duration"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			opts := map[string]any{"clients": []any{map[string]any{"id": "c", "secret": "s-0123456789abcdef"}}}
			if tt.value != nil {
				opts["validity"] = tt.value
			}
			m, err := config.NewVerify("oauth_issuer", opts)
			if err != nil {
				t.Fatal(err)
			}
			_, got, err := issuerDecode(m)
			credWantErr(t, err, tt.wantErr)
			if err == nil && got != tt.want {
				t.Errorf("validity: got %v, want %v", got, tt.want)
			}
		})
	}
}

func TestIssuerValidityFromYAML(t *testing.T) {
	t.Parallel()
	cfg, err := config.Parse([]byte(`
sources:
  - name: a
    verify:
      - type: oauth_issuer
        clients: [{id: c1, secret: s-0123456789abcdef}]
        validity: 1
  - name: b
    verify:
      - {type: oauth_issuer, clients: [{id: c2, secret: [s1-0123456789abcdef, s2-0123456789abcdef]}], validity: 90m}
`))
	if err != nil {
		t.Fatal(err)
	}
	for i, want := range []time.Duration{time.Hour, 90 * time.Minute} {
		_, got, err := issuerDecode(cfg.Sources[i].Verify[0])
		if err != nil || got != want {
			t.Errorf("source %d: got %v, %v; want %v", i, got, err, want)
		}
	}
}

func TestIssuerConfig(t *testing.T) {
	t.Parallel()
	client := func(id string, secret any) map[string]any { return map[string]any{"id": id, "secret": secret} }
	src := func(name string, opts map[string]any) config.Source {
		m, err := config.NewVerify("oauth_issuer", opts)
		if err != nil {
			t.Fatal(err)
		}
		return config.Source{Name: name, Verify: []config.Verify{m}}
	}
	tests := []struct {
		name    string
		sources []config.Source
		wantErr string
	}{
		{"Valid", []config.Source{src("a", map[string]any{"clients": []any{client("c", "s-0123456789abcdef")}})}, ""},
		{"NoClients", []config.Source{src("a", map[string]any{})}, "source a: verify[0] (oauth_issuer): clients: required"},
		{"EmptyID", []config.Source{src("a", map[string]any{"clients": []any{client("", "s-0123456789abcdef")}})}, "clients[0].id: required"},
		{"ColonInID", []config.Source{src("a", map[string]any{"clients": []any{client("a:b", "s-0123456789abcdef")}})}, "clients[0].id: must not contain ':'"},
		{"EmptySecret", []config.Source{src("a", map[string]any{"clients": []any{client("c", "")}})}, "clients[0].secret: empty"},
		{"ShortSecret", []config.Source{src("a", map[string]any{"clients": []any{client("c", "1234")}})}, "clients[0].secret: shorter than 16 characters"},
		{"ShortRotatedSecret", []config.Source{src("a", map[string]any{"clients": []any{client("c", []string{"s-0123456789abcdef", "fifteen-chars!!"})}})}, "clients[0].secret[1]: shorter than 16 characters"},
		{"NoSecret", []config.Source{src("a", map[string]any{"clients": []any{map[string]any{"id": "c"}}})}, "clients[0].secret: required"},
		{"DuplicateInSource", []config.Source{src("a", map[string]any{"clients": []any{client("c", "s-0123456789abcdef"), client("c", "t-0123456789abcdef")}})}, "clients[1].id: client \"c\" is listed twice"},
		{"DuplicateAcrossSources", []config.Source{
			src("a", map[string]any{"clients": []any{client("c", "s-0123456789abcdef")}}),
			src("b", map[string]any{"clients": []any{client("d", "s-0123456789abcdef"), client("c", "s-0123456789abcdef")}}),
		}, "source b: verify[0] (oauth_issuer): clients[1].id: client \"c\" is already listed by source a"},
		{"UnknownOption", []config.Source{src("a", map[string]any{"clients": []any{client("c", "s-0123456789abcdef")}, "audience": "x"})}, "unknown key \"audience\""},
		{"UnknownClientOption", []config.Source{src("a", map[string]any{"clients": []any{map[string]any{"id": "c", "secret": "s-0123456789abcdef", "scope": "x"}}})}, "unknown key \"scope\""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			st, err := sqlite.Open(context.Background(), t.TempDir(), credDiscardLog(), sqlite.Options{})
			if err != nil {
				t.Fatal(err)
			}
			defer st.Close()
			_, err = NewIssuer(context.Background(), IssuerOptions{Store: st, Keys: issuerTestKeys, Sources: tt.sources})
			credWantErr(t, err, tt.wantErr)
			if err != nil && (strings.Contains(err.Error(), `"s"`) || strings.Contains(err.Error(), `"t"`)) {
				t.Errorf("error %q shows a secret", err)
			}
		})
	}
}

func TestIssuerNoneConfigured(t *testing.T) {
	t.Parallel()
	iss, err := NewIssuer(context.Background(), IssuerOptions{Sources: []config.Source{{Name: "a"}}})
	if iss != nil || err != nil {
		t.Errorf("got (%v, %v), want (nil, nil) when no source uses oauth_issuer", iss, err)
	}
	// A source listing oauth_issuer without the issuer is a start-up error.
	_, err = credBuild(t, &Env{Source: "a"}, "oauth_issuer", map[string]any{"clients": []any{map[string]any{"id": "c", "secret": "s-0123456789abcdef"}}})
	credWantErr(t, err, "token issuer was not set up")
}

func TestIssuerWarnsBelowAnHour(t *testing.T) {
	t.Parallel()
	var buf bytes.Buffer
	var mu sync.Mutex
	log := slog.New(slog.NewTextHandler(&credLockedWriter{mu: &mu, w: &buf}, nil))
	sources := []config.Source{{Name: "fast"}}
	sources[0].Verify = make([]config.Verify, 1)
	sources[0].Verify[0], _ = config.NewVerify("oauth_issuer", map[string]any{"clients": []any{map[string]any{"id": "c", "secret": "s-0123456789abcdef"}}, "validity": "3s"})
	issuerTestOpen(t, t.TempDir(), &issuerTestClock{t: issuerT0}, sources, log)
	mu.Lock()
	out := buf.String()
	mu.Unlock()
	if !strings.Contains(out, "level=WARN") || !strings.Contains(out, "source=fast") || !strings.Contains(out, "validity=3s") {
		t.Errorf("log %q: want a warning naming the source and the validity", out)
	}
	if strings.Contains(out, "secret=") || strings.Contains(out, `"s"`) {
		t.Errorf("log %q mentions a secret", out)
	}
}

// credLockedWriter serialises writes to w.
type credLockedWriter struct {
	mu *sync.Mutex
	w  *bytes.Buffer
}

func (l *credLockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

func FuzzIssuerToken(f *testing.F) {
	clock := &issuerTestClock{t: issuerT0}
	st, err := sqlite.Open(context.Background(), f.TempDir(), credDiscardLog(), sqlite.Options{})
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { st.Close() })
	m, _ := config.NewVerify("oauth_issuer", map[string]any{"clients": []any{map[string]any{"id": "c", "secret": "s-0123456789abcdef"}}})
	m2, _ := config.NewVerify("oauth_issuer", map[string]any{"clients": []any{map[string]any{"id": "d", "secret": "s-0123456789abcdef"}}})
	iss, err := NewIssuer(context.Background(), IssuerOptions{Store: st, Keys: issuerTestKeys, Now: clock.Now, Sources: []config.Source{
		{Name: "claims", Verify: []config.Verify{m}}, {Name: "other", Verify: []config.Verify{m2}},
	}})
	if err != nil {
		f.Fatal(err)
	}
	valid, err := iss.issue(iss.clients["c"], 0)
	if err != nil {
		f.Fatal(err)
	}
	other, _ := iss.issue(iss.clients["d"], 0)
	for _, s := range []string{
		valid.AccessToken, other.AccessToken, "", "hk_at_", "hk_at_.", "hk_at_e30.", "hk_at_e30.AAAA",
		valid.AccessToken + "A", strings.ToUpper(valid.AccessToken), strings.Repeat(".", 100),
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, tok string) {
		err := iss.check(tok, "claims", clock.Now())
		if err == nil && tok != valid.AccessToken {
			t.Fatalf("accepted %q, which hookd did not issue for this source", tok)
		}
		if err != nil && tok == valid.AccessToken {
			t.Fatalf("refused the valid token: %v", err)
		}
	})
}

func FuzzTokenRequest(f *testing.F) {
	clock := &issuerTestClock{t: issuerT0}
	st, err := sqlite.Open(context.Background(), f.TempDir(), credDiscardLog(), sqlite.Options{})
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { st.Close() })
	m, _ := config.NewVerify("oauth_issuer", map[string]any{"clients": []any{map[string]any{"id": "client", "secret": "the-secret-0123456789"}}})
	iss, err := NewIssuer(context.Background(), IssuerOptions{Store: st, Keys: issuerTestKeys, Now: clock.Now, Sources: []config.Source{{Name: "claims", Verify: []config.Verify{m}}}})
	if err != nil {
		f.Fatal(err)
	}
	f.Add("grant_type=client_credentials", basicHeader("client", "the-secret-0123456789"), "application/x-www-form-urlencoded")
	f.Add("grant_type=client_credentials&client_id=client&client_secret=the-secret", "", "application/x-www-form-urlencoded")
	f.Add("grant_type=client_credentials&client_id=client&client_secret=the-%73ecret", "", "application/x-www-form-urlencoded; charset=utf-8")
	f.Add("grant_type=password", basicHeader("client", "the-secret-0123456789"), "application/x-www-form-urlencoded")
	f.Add("grant_type=client_credentials&client_secret=x", basicHeader("client", "the-secret-0123456789"), "application/x-www-form-urlencoded")
	f.Add("%zz", "", "application/x-www-form-urlencoded")
	f.Add(`{"grant_type":"client_credentials"}`, "", "application/json")
	f.Fuzz(func(t *testing.T, body, auth, contentType string) {
		r := httptest.NewRequest(http.MethodPost, IssuerTokenPath, strings.NewReader(body))
		r.Header.Set("Content-Type", contentType)
		if auth != "" {
			r.Header.Set("Authorization", auth)
		}
		w := httptest.NewRecorder()
		iss.ServeHTTP(w, r)
		switch w.Code {
		case http.StatusOK:
			var tok IssuedToken
			if err := json.Unmarshal(w.Body.Bytes(), &tok); err != nil {
				t.Fatalf("200 with %q: %v", w.Body.Bytes(), err)
			}
			if err := iss.check(tok.AccessToken, "claims", clock.Now()); err != nil {
				t.Fatalf("issued token refused: %v", err)
			}
		case http.StatusBadRequest, http.StatusUnauthorized:
		default:
			t.Fatalf("status %d for body %q auth %q", w.Code, body, auth)
		}
		if w.Header().Get("Cache-Control") != "no-store" {
			t.Fatalf("no Cache-Control: no-store")
		}
	})
}
