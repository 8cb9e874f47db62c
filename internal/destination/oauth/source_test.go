package oauth

import (
	"context"
	"encoding/json"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"gopkg.in/yaml.v3"

	"hookd/internal/config"
	"hookd/internal/jsonlimit"
	"hookd/internal/jsonlimit/jsonlimittest"
)

const (
	testClientID = "hookd-client"
	testSecret   = "cs_s3cr3t_value"
)

var t0 = time.Date(2026, 11, 22, 6, 30, 0, 0, time.UTC)

// clock is an injectable clock tests move by hand.
type clock struct{ unix atomic.Int64 }

func newClock(t time.Time) *clock    { c := &clock{}; c.set(t); return c }
func (c *clock) set(t time.Time)     { c.unix.Store(t.UnixNano()) }
func (c *clock) add(d time.Duration) { c.unix.Add(int64(d)) }
func (c *clock) now() time.Time      { return time.Unix(0, c.unix.Load()).UTC() }

// tokenServer is a token endpoint on 127.0.0.1 that counts requests and
// issues tok-1, tok-2, … with expiresIn (absent when 0).
type tokenServer struct {
	*httptest.Server
	requests  atomic.Int64
	expiresIn int
	fail      atomic.Bool // answer 503
	gate      chan struct{}
	mu        sync.Mutex
	bad       []string // what went wrong with a request
}

func newTokenServer(t *testing.T, expiresIn int) *tokenServer {
	t.Helper()
	ts := &tokenServer{expiresIn: expiresIn}
	ts.Server = httptest.NewServer(http.HandlerFunc(ts.serve))
	t.Cleanup(ts.Close)
	return ts
}

func (ts *tokenServer) serve(w http.ResponseWriter, r *http.Request) {
	n := ts.requests.Add(1)
	if ts.gate != nil {
		<-ts.gate
	}
	id, secret, ok := basicCredentials(r)
	switch {
	case r.Method != http.MethodPost:
		ts.complain("method " + r.Method)
	case !ok || id != testClientID || secret != testSecret:
		ts.complain("client authentication")
	case r.ParseForm() != nil || r.PostForm.Get("grant_type") != "client_credentials":
		ts.complain("grant_type")
	}
	if ts.fail.Load() {
		http.Error(w, `{"error":"temporarily_unavailable"}`, http.StatusServiceUnavailable)
		return
	}
	ans := map[string]any{"access_token": "tok-" + strconv.FormatInt(n, 10), "token_type": "Bearer"}
	if ts.expiresIn > 0 {
		ans["expires_in"] = ts.expiresIn
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(ans)
}

// basicCredentials reads HTTP Basic client credentials as RFC 6749
// §2.3.1 defines them: each form-encoded.
func basicCredentials(r *http.Request) (id, secret string, ok bool) {
	u, p, ok := r.BasicAuth()
	if !ok {
		return "", "", false
	}
	id, err1 := url.QueryUnescape(u)
	secret, err2 := url.QueryUnescape(p)
	return id, secret, err1 == nil && err2 == nil
}

func (ts *tokenServer) complain(s string) {
	ts.mu.Lock()
	ts.bad = append(ts.bad, s)
	ts.mu.Unlock()
}

func (ts *tokenServer) check(t *testing.T) {
	t.Helper()
	ts.mu.Lock()
	defer ts.mu.Unlock()
	if len(ts.bad) > 0 {
		t.Errorf("token server saw bad requests: %v", ts.bad)
	}
}

func newSource(t *testing.T, url string, c *clock, mod func(*Config)) *Source {
	t.Helper()
	cfg := Config{TokenURL: url, ClientID: testClientID, ClientSecret: testSecret}
	if mod != nil {
		mod(&cfg)
	}
	src, err := New(cfg, Options{Now: c.now})
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return src
}

func ctx(t *testing.T) context.Context {
	t.Helper()
	c, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	return c
}

func mustToken(t *testing.T, src *Source) string {
	t.Helper()
	tok, err := src.Token(ctx(t))
	if err != nil {
		t.Fatalf("Token: %v", err)
	}
	return tok
}

func TestTokenCachedAndSingleFlight(t *testing.T) {
	t.Parallel()
	ts := newTokenServer(t, 3600)
	ts.gate = make(chan struct{})
	src := newSource(t, ts.URL, newClock(t0), nil)
	const callers = 100
	var wg sync.WaitGroup
	toks := make([]string, callers)
	errs := make([]error, callers)
	for i := range callers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			toks[i], errs[i] = src.Token(ctx(t))
		}()
	}
	// Hold the one request until it has arrived, so that every caller
	// piles up behind it.
	deadline := time.Now().Add(10 * time.Second)
	for ts.requests.Load() == 0 && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	close(ts.gate)
	wg.Wait()
	for i := range callers {
		if errs[i] != nil || toks[i] != "tok-1" {
			t.Fatalf("caller %d: got %q, %v; want tok-1", i, toks[i], errs[i])
		}
	}
	if got := mustToken(t, src); got != "tok-1" {
		t.Errorf("Token: got %q, want the cached tok-1", got)
	}
	if got := ts.requests.Load(); got != 1 {
		t.Errorf("token requests: got %d, want 1", got)
	}
	ts.check(t)
}

func TestTokenRefreshBeforeExpiry(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name      string
		expiresIn int
		mod       func(*Config)
		refreshAt time.Duration // from t0
	}{
		{"ExpiresInDefault30m", 3600, nil, 30 * time.Minute},
		{"ExpiresInRefreshBefore10m", 3600, func(c *Config) { d := config.Duration(10 * time.Minute); c.RefreshBefore = &d }, 50 * time.Minute},
		{"ValidityHours", 0, func(c *Config) { c.Validity = Hours(1) }, 30 * time.Minute},
		{"ValidityTwoHours", 0, func(c *Config) { c.Validity = Hours(2) }, 90 * time.Minute},
		{"ExpiresInWinsOverValidity", 7200, func(c *Config) { c.Validity = Hours(1) }, 90 * time.Minute},
		{"ShortTokenHalfway", 600, nil, 5 * time.Minute},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			ts := newTokenServer(t, tt.expiresIn)
			c := newClock(t0)
			src := newSource(t, ts.URL, c, tt.mod)
			if got := mustToken(t, src); got != "tok-1" {
				t.Fatalf("Token: got %q, want tok-1", got)
			}
			c.set(t0.Add(tt.refreshAt - time.Second))
			if got := mustToken(t, src); got != "tok-1" || ts.requests.Load() != 1 {
				t.Fatalf("1s before refresh: got %q after %d requests, want tok-1 after 1", got, ts.requests.Load())
			}
			c.set(t0.Add(tt.refreshAt))
			if got := mustToken(t, src); got != "tok-2" || ts.requests.Load() != 2 {
				t.Fatalf("at refresh: got %q after %d requests, want tok-2 after 2", got, ts.requests.Load())
			}
			if got := mustToken(t, src); got != "tok-2" || ts.requests.Load() != 2 {
				t.Fatalf("after refresh: got %q after %d requests, want tok-2 after 2", got, ts.requests.Load())
			}
		})
	}
}

func TestTokenRefreshFailureKeepsValidTokenAndBacksOff(t *testing.T) {
	t.Parallel()
	ts := newTokenServer(t, 3600)
	c := newClock(t0)
	src := newSource(t, ts.URL, c, nil)
	mustToken(t, src)
	ts.fail.Store(true)
	c.set(t0.Add(31 * time.Minute))
	if got := mustToken(t, src); got != "tok-1" {
		t.Fatalf("refresh failed: got %q, want the still valid tok-1", got)
	}
	if got := ts.requests.Load(); got != 2 {
		t.Fatalf("token requests: got %d, want 2", got)
	}
	// Within the backoff (1s, then 2s, 4s…) no new request.
	for i := 0; i < 5; i++ {
		mustToken(t, src)
	}
	if got := ts.requests.Load(); got != 2 {
		t.Fatalf("within backoff: got %d token requests, want 2", got)
	}
	c.add(time.Second)
	mustToken(t, src) // fails again: backoff now 2s
	c.add(time.Second)
	mustToken(t, src)
	if got := ts.requests.Load(); got != 3 {
		t.Fatalf("backoff doubling: got %d token requests, want 3", got)
	}
	// The token expires while the endpoint is down: the failure shows.
	c.set(t0.Add(time.Hour))
	_, err := src.Token(ctx(t))
	if !errors.Is(err, ErrTokenUnavailable) || !strings.Contains(err.Error(), "503") {
		t.Fatalf("expired and endpoint down: got %v, want token_unavailable with 503", err)
	}
	ts.fail.Store(false)
	c.add(MaxBackoff)
	if got := mustToken(t, src); !strings.HasPrefix(got, "tok-") || got == "tok-1" {
		t.Fatalf("endpoint back: got %q, want a new token", got)
	}
}

func TestInvalidate(t *testing.T) {
	t.Parallel()
	ts := newTokenServer(t, 3600)
	src := newSource(t, ts.URL, newClock(t0), nil)
	tok1 := mustToken(t, src)
	src.Invalidate(tok1)
	tok2 := mustToken(t, src)
	if tok2 != "tok-2" {
		t.Fatalf("after Invalidate: got %q, want tok-2", tok2)
	}
	// A late Invalidate of the replaced token changes nothing.
	src.Invalidate(tok1)
	if got := mustToken(t, src); got != "tok-2" || ts.requests.Load() != 2 {
		t.Fatalf("stale Invalidate: got %q after %d requests, want tok-2 after 2", got, ts.requests.Load())
	}
}

func TestDeadTokenServer(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	url := "http://" + ln.Addr().String() + "/oauth/token"
	_ = ln.Close()
	src := newSource(t, url, newClock(t0), nil)
	_, err = src.Token(ctx(t))
	if !errors.Is(err, ErrTokenUnavailable) {
		t.Fatalf("Token: got %v, want ErrTokenUnavailable", err)
	}
	if !strings.HasPrefix(err.Error(), "token_unavailable: ") || strings.Contains(err.Error(), testSecret) {
		t.Fatalf("Token: got %q", err)
	}
	t.Logf("dead token server: %v", err)
}

func TestTokenEndpointAnswers(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		status  int
		body    string
		wantErr string
	}{
		{"Unauthorized", 401, `{"error":"invalid_client","error_description":"secret cs_s3cr3t_value is wrong"}`, "token endpoint refused: invalid_client (answered 401)"},
		{"BadRequest", 400, `{"error":"invalid_scope"}`, "token endpoint refused: invalid_scope (answered 400)"},
		{"Unavailable", 503, `{"error":"temporarily_unavailable"}`, "token endpoint answered 503 (error: temporarily_unavailable)"},
		{"RefusedNoCode", 401, `{"error":"bad code!"}`, "token endpoint answered 401"},
		{"Redirect", 302, ``, "answered 302"},
		{"NotJSON", 200, `<html>`, "not a JSON token response"},
		{"NoToken", 200, `{"token_type":"bearer"}`, "no access_token"},
		{"MacToken", 200, `{"access_token":"abc","token_type":"mac"}`, "token_type is not bearer"},
		{"TooLarge", 200, `{"access_token":"abc","pad":"` + strings.Repeat("x", MaxResponse) + `"}`, "larger than 65536 bytes"},
		{"TooDeep", 200, `{"access_token":"abc","x":` + strings.Repeat("[", 200) + strings.Repeat("]", 200) + `}`, "answer: JSON nested deeper than 128 levels"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if tt.status == 302 {
					w.Header().Set("Location", "http://127.0.0.1:1/elsewhere")
				}
				w.WriteHeader(tt.status)
				_, _ = w.Write([]byte(tt.body))
			}))
			t.Cleanup(srv.Close)
			src := newSource(t, srv.URL, newClock(t0), nil)
			_, err := src.Token(ctx(t))
			if err == nil || !errors.Is(err, ErrTokenUnavailable) || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("Token: got %v, want token_unavailable containing %q", err, tt.wantErr)
			}
			if strings.Contains(err.Error(), testSecret) {
				t.Errorf("error %q reveals the secret", err)
			}
		})
	}
}

func TestConfigValidate(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		yaml    string
		wantErr string
	}{
		{"Minimal", "token_url: https://id.example/token\nclient_id: c\nclient_secret: cs_s3cr3t_value", ""},
		{"Full", "token_url: https://id.example/token\nclient_id: c\nclient_secret: x\nscope: events.write\nrefresh_before: 10m\nvalidity: 2", ""},
		{"ValidityDuration", "token_url: https://id.example/token\nclient_id: c\nclient_secret: x\nvalidity: 90m", ""},
		{"ValidityFraction", "token_url: https://id.example/token\nclient_id: c\nclient_secret: x\nvalidity: 1.5", ""},
		{"NoTokenURL", "client_id: c\nclient_secret: cs_s3cr3t_value", "token_url: required"},
		{"FTP", "token_url: ftp://id.example/\nclient_id: c\nclient_secret: x", `token_url: scheme "ftp"`},
		{"Credentials", "token_url: https://u:cs_s3cr3t_value@id.example/\nclient_id: c\nclient_secret: x", "token_url: credentials"},
		{"NoClientID", "token_url: https://id.example/token\nclient_secret: cs_s3cr3t_value", "client_id: required"},
		{"ColonClientID", "token_url: https://id.example/token\nclient_id: a:b\nclient_secret: cs_s3cr3t_value", ""},
		{"AuthStyleBasic", "token_url: https://id.example/token\nclient_id: c\nclient_secret: x\nauth_style: basic", ""},
		{"AuthStylePost", "token_url: https://id.example/token\nclient_id: c\nclient_secret: x\nauth_style: post", ""},
		{"AuthStyleUnknown", "token_url: https://id.example/token\nclient_id: c\nclient_secret: x\nauth_style: jwt", `auth_style: "jwt" is not supported (want basic or post)`},
		{"AuthStyleCase", "token_url: https://id.example/token\nclient_id: c\nclient_secret: x\nauth_style: Basic", `auth_style: "Basic" is not supported`},
		{"ScopeList", "token_url: https://id.example/token\nclient_id: c\nclient_secret: x\nscope: [a, b]", ""},
		{"ScopeListSpace", "token_url: https://id.example/token\nclient_id: c\nclient_secret: x\nscope: [a b]", `scope: "a b" is not a scope`},
		{"ScopeQuote", "token_url: https://id.example/token\nclient_id: c\nclient_secret: x\nscope: 'a\"b'", `scope: "a\"b" is not a scope`},
		{"ScopeEmptyItem", "token_url: https://id.example/token\nclient_id: c\nclient_secret: x\nscope: [a, '']", "scope: an empty scope"},
		{"ScopeMap", "token_url: https://id.example/token\nclient_id: c\nclient_secret: x\nscope: {a: b}", "scope: want a string or a list"},
		{"ScopeTooLong", "token_url: https://id.example/token\nclient_id: c\nclient_secret: x\nscope: " + strings.Repeat("s ", MaxScope), "scope: longer than 4096 bytes"},
		{"Audience", "token_url: https://id.example/token\nclient_id: c\nclient_secret: x\naudience: https://api.example/", ""},
		{"AudienceControl", "token_url: https://id.example/token\nclient_id: c\nclient_secret: x\naudience: \"a\\tb\"", "audience: contains a control character"},
		{"Params", "token_url: https://id.example/token\nclient_id: c\nclient_secret: x\nparams: {resource: 'https://api.example/', n: 5}", ""},
		{"ParamsGrantType", "token_url: https://id.example/token\nclient_id: c\nclient_secret: x\nparams: {grant_type: password}", "params.grant_type: cannot be set in params"},
		{"ParamsClientSecret", "token_url: https://id.example/token\nclient_id: c\nclient_secret: x\nparams: {client_secret: cs_s3cr3t_value}", "params.client_secret: cannot be set in params"},
		{"ParamsClientID", "token_url: https://id.example/token\nclient_id: c\nclient_secret: x\nparams: {Client_ID: d}", "params.Client_ID: cannot be set in params"},
		{"ParamsScope", "token_url: https://id.example/token\nclient_id: c\nclient_secret: x\nparams: {scope: a}", "params.scope: cannot be set in params (use scope)"},
		{"ParamsAudience", "token_url: https://id.example/token\nclient_id: c\nclient_secret: x\nparams: {audience: a}", "params.audience: cannot be set in params (use audience)"},
		{"ParamsEmptyName", "token_url: https://id.example/token\nclient_id: c\nclient_secret: x\nparams: {'': a}", "params: a parameter has no name"},
		{"ParamsSpaceName", "token_url: https://id.example/token\nclient_id: c\nclient_secret: x\nparams: {'a b': a}", `params: "a b" is not a parameter name`},
		{"ParamsControlValue", "token_url: https://id.example/token\nclient_id: c\nclient_secret: x\nparams: {resource: \"a\\nb\"}", "params.resource: contains a control character"},
		{"ParamsList", "token_url: https://id.example/token\nclient_id: c\nclient_secret: x\nparams: [a]", "cannot unmarshal"},
		{"NoSecret", "token_url: https://id.example/token\nclient_id: c", "client_secret: required"},
		{"SecretControl", "token_url: https://id.example/token\nclient_id: c\nclient_secret: \"cs_s3cr3t_value\\n\"", "client_secret: contains a control character"},
		{"NegativeRefresh", "token_url: https://id.example/token\nclient_id: c\nclient_secret: x\nrefresh_before: -1m", "refresh_before: must not be negative"},
		{"ValidityZero", "token_url: https://id.example/token\nclient_id: c\nclient_secret: x\nvalidity: 0", "validity: 0 hours is out of range"},
		{"ValidityWord", "token_url: https://id.example/token\nclient_id: c\nclient_secret: x\nvalidity: forever", "validity: invalid value"},
		{"ValidityTiny", "token_url: https://id.example/token\nclient_id: c\nclient_secret: x\nvalidity: 10ms", "validity: must be between 1s"},
		{"Unknown", "token_url: https://id.example/token\nclient_id: c\nclient_secret: x\nresource: y", "field resource not found"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var c Config
			dec := yaml.NewDecoder(strings.NewReader(tt.yaml))
			dec.KnownFields(true)
			err := dec.Decode(&c)
			if err == nil {
				err = c.Validate()
			}
			switch {
			case tt.wantErr == "" && err != nil:
				t.Fatalf("got %v, want no error", err)
			case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
				t.Fatalf("got %v, want an error containing %q", err, tt.wantErr)
			}
			if err != nil && strings.Contains(err.Error(), testSecret) {
				t.Errorf("error %q reveals the secret", err)
			}
		})
	}
}

func TestParseTokenResponse(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		body    string
		want    tokenResponse
		wantErr string
	}{
		{"Full", `{"access_token":"abc.def-ghi","token_type":"Bearer","expires_in":3600}`, tokenResponse{"abc.def-ghi", "Bearer", time.Hour}, ""},
		{"NoExpiry", `{"access_token":"abc","token_type":"bearer"}`, tokenResponse{"abc", "bearer", 0}, ""},
		{"NoType", `{"access_token":"abc","expires_in":60}`, tokenResponse{"abc", "", time.Minute}, ""},
		{"StringExpiry", `{"access_token":"abc","expires_in":"3600"}`, tokenResponse{"abc", "", time.Hour}, ""},
		{"ZeroExpiry", `{"access_token":"abc","expires_in":0}`, tokenResponse{"abc", "", 0}, ""},
		{"NullExpiry", `{"access_token":"abc","expires_in":null}`, tokenResponse{"abc", "", 0}, ""},
		{"HugeExpiry", `{"access_token":"abc","expires_in":1e300}`, tokenResponse{"abc", "", MaxValidity}, ""},
		{"BadExpiry", `{"access_token":"abc","expires_in":"soon"}`, tokenResponse{}, "expires_in is not a number"},
		{"EmptyToken", `{"access_token":""}`, tokenResponse{}, "no access_token"},
		{"SpaceInToken", `{"access_token":"a b"}`, tokenResponse{}, "characters not allowed"},
		{"NewlineInToken", `{"access_token":"a\r\nX-Evil: 1"}`, tokenResponse{}, "characters not allowed"},
		{"NotObject", `[]`, tokenResponse{}, "not a JSON token response"},
		{"NumberToken", `{"access_token":5}`, tokenResponse{}, "not a JSON token response"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := parseTokenResponse([]byte(tt.body))
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("got %+v, %v; want an error containing %q", got, err, tt.wantErr)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("got %+v, %v; want %+v", got, err, tt.want)
			}
		})
	}
}

// FuzzTokenResponse checks that the parser never panics, that a token it
// accepts is usable in a header, and that an error never echoes the token.
func FuzzTokenResponse(f *testing.F) {
	for _, s := range []string{
		`{"access_token":"abc","token_type":"Bearer","expires_in":3600}`,
		`{"access_token":"abc","expires_in":"60"}`,
		`{"access_token":"abc","token_type":"mac"}`,
		`{"access_token":"a b"}`,
		`{"error":"invalid_client"}`,
		`{"error":"invalid_client","error_description":"bad secret cs_s3cr3t_value\u0000\u00e9"}`,
		`{"access_token":"abc","expires_in":-1e309}`,
		``,
	} {
		f.Add([]byte(s))
	}
	for _, s := range jsonlimittest.DeepSeeds() {
		f.Add([]byte(s))
		f.Add([]byte(`{"access_token":"abc","x":` + s + `}`))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		tr, err := parseTokenResponse(body)
		if e, ok := parseOAuthError(body); ok {
			if jsonlimit.Check(body, 0) != nil {
				t.Fatalf("read an error code from an answer nested beyond the limit")
			}
			src := &Source{s: &settings{clientSecret: testSecret}}
			d := src.description(e.Description)
			if len(d) > MaxDescription || !printable(d) || strings.Contains(d, testSecret) {
				t.Fatalf("description %q: longer than %d bytes, not printable, or showing the secret", d, MaxDescription)
			}
		}
		if err != nil {
			var raw struct {
				AccessToken string `json:"access_token"`
			}
			if json.Unmarshal(body, &raw) == nil && len(raw.AccessToken) >= 4 && strings.Contains(err.Error(), raw.AccessToken) {
				t.Fatalf("error %q echoes the token", err)
			}
			return
		}
		if !visibleASCII(tr.AccessToken) || len(tr.AccessToken) > maxToken {
			t.Fatalf("accepted token %q is not usable in a header", tr.AccessToken)
		}
		if tr.ExpiresIn < 0 || tr.ExpiresIn > MaxValidity {
			t.Fatalf("expires_in %s out of range", tr.ExpiresIn)
		}
	})
}
