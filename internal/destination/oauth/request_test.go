package oauth

import (
	"bytes"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"

	"gopkg.in/yaml.v3"
)

// logBuffer collects a logger's JSON records.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func newLogBuffer() *logBuffer { return &logBuffer{} }

func (b *logBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *logBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func (b *logBuffer) logger() *slog.Logger { return slog.New(slog.NewJSONHandler(b, nil)) }

// only returns the one record logged.
func (b *logBuffer) only(t *testing.T) map[string]any {
	t.Helper()
	lines := strings.Split(strings.TrimSpace(b.String()), "\n")
	if len(lines) != 1 || lines[0] == "" {
		t.Fatalf("log: got %d records, want 1:\n%s", len(lines), b)
	}
	var rec map[string]any
	if err := json.Unmarshal([]byte(lines[0]), &rec); err != nil {
		t.Fatalf("log record %q: %v", lines[0], err)
	}
	return rec
}

// formEndpoint is a token endpoint that reads client credentials only
// from the form (client_secret_post): it refuses a request that carries
// an Authorization header or lacks client_id or client_secret in its
// body. It records the last form it accepted.
type formEndpoint struct {
	*httptest.Server
	mu   sync.Mutex
	form url.Values
}

func newFormEndpoint(t *testing.T, id, secret string) *formEndpoint {
	t.Helper()
	fe := &formEndpoint{}
	fe.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		if r.Header.Get("Authorization") != "" {
			w.WriteHeader(http.StatusBadRequest)
			_, _ = w.Write([]byte(`{"error":"invalid_request","error_description":"credentials in the Authorization header are not accepted"}`))
			return
		}
		if r.Method != http.MethodPost || r.Header.Get("Content-Type") != "application/x-www-form-urlencoded" || r.ParseForm() != nil {
			w.WriteHeader(http.StatusBadRequest)
			_, _ = w.Write([]byte(`{"error":"invalid_request"}`))
			return
		}
		f := r.PostForm
		if len(r.URL.RawQuery) > 0 || f.Get("grant_type") != "client_credentials" {
			w.WriteHeader(http.StatusBadRequest)
			_, _ = w.Write([]byte(`{"error":"unsupported_grant_type"}`))
			return
		}
		if f.Get("client_id") != id || f.Get("client_secret") != secret || len(f["client_id"]) != 1 || len(f["client_secret"]) != 1 {
			w.WriteHeader(http.StatusUnauthorized)
			_, _ = w.Write([]byte(`{"error":"invalid_client"}`))
			return
		}
		fe.mu.Lock()
		fe.form = f
		fe.mu.Unlock()
		_, _ = w.Write([]byte(`{"access_token":"form-token","token_type":"bearer","expires_in":3600}`))
	}))
	t.Cleanup(fe.Close)
	return fe
}

func (fe *formEndpoint) lastForm() url.Values {
	fe.mu.Lock()
	defer fe.mu.Unlock()
	return fe.form
}

// TestAuthStylePost: with auth_style post the credentials travel in the
// form only; with the default style the same endpoint refuses them.
func TestAuthStylePost(t *testing.T) {
	t.Parallel()
	const secret = "p+s/t=%41&x y"
	fe := newFormEndpoint(t, testClientID, secret)
	post, err := New(Config{TokenURL: fe.URL, ClientID: testClientID, ClientSecret: secret, AuthStyle: AuthStylePost},
		Options{Egress: loopbackGuard(t)})
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	if tok, err := post.Token(ctx(t)); err != nil || tok != "form-token" {
		t.Fatalf("auth_style post: got %q, %v; want form-token", tok, err)
	}
	basic, err := New(Config{TokenURL: fe.URL, ClientID: testClientID, ClientSecret: secret}, Options{Egress: loopbackGuard(t)})
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	_, err = basic.Token(ctx(t))
	if !errors.Is(err, ErrTokenUnavailable) || !strings.Contains(err.Error(), "refused: invalid_request") {
		t.Fatalf("default auth_style against a form-only endpoint: got %v, want refused: invalid_request", err)
	}
}

// TestBasicCredentialsFormEncoded checks the Authorization header itself:
// base64 of the form-encoded id, ':', the form-encoded secret.
func TestBasicCredentialsFormEncoded(t *testing.T) {
	t.Parallel()
	seen := make(chan string, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		u, p, _ := r.BasicAuth()
		got := u + ":" + p
		_ = r.ParseForm()
		if _, ok := r.PostForm["client_secret"]; ok {
			got += " and client_secret in the form"
		}
		seen <- got
		_, _ = w.Write([]byte(`{"access_token":"t"}`))
	}))
	t.Cleanup(srv.Close)
	src, err := New(Config{TokenURL: srv.URL, ClientID: "id:with space", ClientSecret: "a+b/c=d%e&f g"}, Options{})
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	mustToken(t, src)
	if got, want := <-seen, "id%3Awith+space:a%2Bb%2Fc%3Dd%25e%26f+g"; got != want {
		t.Fatalf("HTTP Basic credentials: got %q, want %q", got, want)
	}
}

// TestScopeAudienceParams: scope (a string or a list), audience and params
// reach the token endpoint as form parameters, next to grant_type.
func TestScopeAudienceParams(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		yaml string
		want url.Values
	}{
		{"ScopeString", "scope: '  events.write   events.read '", url.Values{"scope": {"events.write events.read"}}},
		{"ScopeList", "scope: [events.write, events.read]", url.Values{"scope": {"events.write events.read"}}},
		{"Audience", "audience: https://claims.example/api", url.Values{"audience": {"https://claims.example/api"}}},
		{"Params", "params: {resource: 'https://claims.example/', tenant: a&b=c}", url.Values{"resource": {"https://claims.example/"}, "tenant": {"a&b=c"}}},
		{"All", "scope: [a]\naudience: aud\nparams: {organization: org_1}", url.Values{"scope": {"a"}, "audience": {"aud"}, "organization": {"org_1"}}},
		{"None", "", url.Values{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			fe := newFormEndpoint(t, testClientID, testSecret)
			var c Config
			dec := yaml.NewDecoder(strings.NewReader("token_url: " + fe.URL + "\nclient_id: " + testClientID + "\nclient_secret: " + testSecret + "\nauth_style: post\n" + tt.yaml))
			dec.KnownFields(true)
			if err := dec.Decode(&c); err != nil {
				t.Fatalf("decode: %v", err)
			}
			src, err := New(c, Options{Egress: loopbackGuard(t)})
			if err != nil {
				t.Fatalf("New: %v", err)
			}
			mustToken(t, src)
			want := url.Values{"grant_type": {"client_credentials"}, "client_id": {testClientID}, "client_secret": {testSecret}}
			for k, v := range tt.want {
				want[k] = v
			}
			if got := fe.lastForm(); got.Encode() != want.Encode() {
				t.Fatalf("form: got %s, want %s", got.Encode(), want.Encode())
			}
		})
	}
}

// TestRefusalLogged: a §5.2 refusal is logged once per token request with
// its code and a description bounded, on one line, without the secret;
// the error names the code and not the description.
func TestRefusalLogged(t *testing.T) {
	t.Parallel()
	desc := "Client authentication failed: secret '" + testSecret + "' (" + url.QueryEscape("+"+testSecret) + ")\r\nX-Injected: 1 " + strings.Repeat("é", 400)
	body, _ := json.Marshal(map[string]string{"error": "invalid_client", "error_description": desc})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusUnauthorized)
		_, _ = w.Write(body)
	}))
	t.Cleanup(srv.Close)
	log := newLogBuffer()
	src, err := New(Config{TokenURL: srv.URL + "/token?tenant=t1", ClientID: testClientID, ClientSecret: testSecret}, Options{Now: newClock(t0).now, Log: log.logger()})
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	_, err = src.Token(ctx(t))
	if !errors.Is(err, ErrTokenUnavailable) || err.Error() != "token_unavailable: token endpoint refused: invalid_client (answered 401)" {
		t.Fatalf("Token: got %v, want token_unavailable: token endpoint refused: invalid_client (answered 401)", err)
	}
	rec := log.only(t)
	d, _ := rec["error_description"].(string)
	switch {
	case rec["level"] != "WARN" || rec["error"] != "invalid_client" || rec["status"] != float64(401):
		t.Errorf("log record: got %v, want a warning with error invalid_client, status 401", rec)
	case rec["token_url"] != srv.URL+"/token":
		t.Errorf("token_url: got %v, want %s (no query)", rec["token_url"], srv.URL+"/token")
	case !strings.HasPrefix(d, "Client authentication failed: secret '[redacted]' (%2B[redacted])??X-Injected: 1 ??"):
		t.Errorf("error_description: got %q, want the secret redacted and control characters replaced", d)
	case len(d) != MaxDescription:
		t.Errorf("error_description: got %d bytes, want it cut at %d", len(d), MaxDescription)
	case strings.Contains(log.String(), testSecret) || strings.Contains(err.Error(), "authentication failed"):
		t.Errorf("the secret is logged or the description is in the error:\n%s\n%v", log, err)
	}
	// Within the backoff no request is made and nothing more is logged.
	if _, err := src.Token(ctx(t)); err == nil {
		t.Fatal("Token within the backoff: got a token")
	}
	log.only(t)
}

// TestServerFailureNotLoggedAsRefusal: a 5xx answer, even with an OAuth
// error code, is the server's failure: named in the error, not logged as
// a refusal.
func TestServerFailureNotLoggedAsRefusal(t *testing.T) {
	t.Parallel()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusServiceUnavailable)
		_, _ = w.Write([]byte(`{"error":"temporarily_unavailable"}`))
	}))
	t.Cleanup(srv.Close)
	log := newLogBuffer()
	src, err := New(Config{TokenURL: srv.URL, ClientID: testClientID, ClientSecret: testSecret}, Options{Log: log.logger()})
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	_, err = src.Token(ctx(t))
	if err == nil || !strings.Contains(err.Error(), "answered 503 (error: temporarily_unavailable)") {
		t.Fatalf("Token: got %v, want answered 503 (error: temporarily_unavailable)", err)
	}
	if s := log.String(); s != "" {
		t.Errorf("log: got %s, want nothing", s)
	}
}
