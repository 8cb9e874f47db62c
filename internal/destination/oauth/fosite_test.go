package oauth

import (
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ory/fosite"
	"github.com/ory/fosite/compose"
	"github.com/ory/fosite/storage"
	"golang.org/x/crypto/bcrypt"

	"hookd/internal/egress"
)

// A client id and secret that HTTP Basic carries wrongly unless each is
// form-encoded first (RFC 6749 §2.3.1): a server decoding them reads '+'
// as a space and "%41" as "A", and refuses a lone '%'.
const (
	fositeClientID = "hookd:claims client"
	fositeSecret   = "s3cr+t/wi=th%41&more%"
	fositeAudience = "https://api.claims.example"
)

// fositeServer is an OAuth 2.0 authorization server built from ory/fosite
// (the core of Ory Hydra): the client credentials grant and token
// introspection over an in-memory store holding one client, whose secret
// is stored bcrypt-hashed and which authenticates by method (the
// client's token_endpoint_auth_method: client_secret_basic or
// client_secret_post). Its token endpoint is served on 127.0.0.1.
type fositeServer struct {
	*httptest.Server
	provider fosite.OAuth2Provider

	mu      sync.Mutex
	refused []string   // fosite's error codes, one per refused request
	forms   url.Values // the form of the last token granted
}

func newFositeServer(t *testing.T, method string) *fositeServer {
	t.Helper()
	hash, err := bcrypt.GenerateFromPassword([]byte(fositeSecret), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	store := storage.NewMemoryStore()
	store.Clients[fositeClientID] = &fosite.DefaultOpenIDConnectClient{
		DefaultClient: &fosite.DefaultClient{
			ID:         fositeClientID,
			Secret:     hash,
			GrantTypes: []string{"client_credentials"},
			Scopes:     []string{"events.write", "events.read"},
			Audience:   []string{fositeAudience},
		},
		TokenEndpointAuthMethod: method,
	}
	cfg := &fosite.Config{
		AccessTokenLifespan: time.Hour,
		GlobalSecret:        []byte("a global secret of 32 bytes, ok!"),
	}
	fs := &fositeServer{provider: compose.Compose(cfg, store, compose.NewOAuth2HMACStrategy(cfg),
		compose.OAuth2ClientCredentialsGrantFactory,
		compose.OAuth2TokenIntrospectionFactory,
	)}
	fs.Server = httptest.NewServer(http.HandlerFunc(fs.token))
	t.Cleanup(fs.Close)
	return fs
}

// token is the token endpoint: every requested scope and audience the
// client may have is granted.
func (fs *fositeServer) token(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	ar, err := fs.provider.NewAccessRequest(ctx, r, &fosite.DefaultSession{})
	if err != nil {
		fs.mu.Lock()
		fs.refused = append(fs.refused, fosite.ErrorToRFC6749Error(err).ErrorField)
		fs.mu.Unlock()
		fs.provider.WriteAccessError(ctx, w, ar, err)
		return
	}
	for _, s := range ar.GetRequestedScopes() {
		ar.GrantScope(s)
	}
	for _, a := range ar.GetRequestedAudience() {
		ar.GrantAudience(a)
	}
	resp, err := fs.provider.NewAccessResponse(ctx, ar)
	if err != nil {
		fs.provider.WriteAccessError(ctx, w, ar, err)
		return
	}
	fs.mu.Lock()
	fs.forms = ar.GetRequestForm()
	fs.mu.Unlock()
	fs.provider.WriteAccessResponse(ctx, w, ar, resp)
}

func (fs *fositeServer) refusals() []string {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	return slices.Clone(fs.refused)
}

// loopbackGuard is an SSRF guard that lets connections reach 127.0.0.0/8,
// as egress.allow_private would.
func loopbackGuard(t *testing.T) *egress.Guard {
	t.Helper()
	g, err := egress.NewGuard([]string{"127.0.0.0/8"}, nil)
	if err != nil {
		t.Fatalf("NewGuard: %v", err)
	}
	return g
}

// TestFositeClientCredentials gets a token from ory/fosite for a client
// whose id holds ':' and ' ' and whose secret holds '+ / = % &', with each
// client authentication style, through the SSRF guard; fosite then
// confirms by introspection that the token is active and was issued to
// that client with the scopes and audience configured.
func TestFositeClientCredentials(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name      string
		authStyle string
		method    string // the client's token_endpoint_auth_method
	}{
		{"DefaultIsBasic", "", "client_secret_basic"},
		{"Basic", AuthStyleBasic, "client_secret_basic"},
		{"Post", AuthStylePost, "client_secret_post"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			fs := newFositeServer(t, tt.method)
			src, err := New(Config{
				TokenURL:     fs.URL + "/oauth2/token",
				ClientID:     fositeClientID,
				ClientSecret: fositeSecret,
				AuthStyle:    tt.authStyle,
				Scope:        Scope{"events.write", "events.read"},
				Audience:     fositeAudience,
			}, Options{Egress: loopbackGuard(t)})
			if err != nil {
				t.Fatalf("New: %v", err)
			}
			tok, err := src.Token(ctx(t))
			if err != nil {
				t.Fatalf("Token: %v (fosite refused: %v)", err, fs.refusals())
			}
			use, ar, err := fs.provider.IntrospectToken(ctx(t), tok, fosite.AccessToken, &fosite.DefaultSession{})
			if err != nil || use != fosite.AccessToken {
				t.Fatalf("fosite introspection: got %v, %v; want an active access token", use, err)
			}
			if got := ar.GetClient().GetID(); got != fositeClientID {
				t.Errorf("token's client: got %q, want %q", got, fositeClientID)
			}
			if got, want := []string(ar.GetGrantedScopes()), []string{"events.write", "events.read"}; !slices.Equal(got, want) {
				t.Errorf("granted scopes: got %q, want %q", got, want)
			}
			if got, want := []string(ar.GetGrantedAudience()), []string{fositeAudience}; !slices.Equal(got, want) {
				t.Errorf("granted audience: got %q, want %q", got, want)
			}
			if r := fs.refusals(); len(r) != 0 {
				t.Errorf("fosite refused requests: %v", r)
			}
		})
	}
}

// TestFositeRefusesRawBasicCredentials shows that the client above tells
// a compliant client from one that puts the raw id and secret in HTTP
// Basic (what hookd did before): fosite refuses the latter.
func TestFositeRefusesRawBasicCredentials(t *testing.T) {
	t.Parallel()
	fs := newFositeServer(t, "client_secret_basic")
	req, err := http.NewRequestWithContext(ctx(t), http.MethodPost, fs.URL, strings.NewReader("grant_type=client_credentials"))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(fositeClientID, fositeSecret)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	_ = resp.Body.Close()
	if resp.StatusCode == http.StatusOK || len(fs.refusals()) != 1 {
		t.Fatalf("raw credentials in HTTP Basic: got %d, refusals %v; want a refusal", resp.StatusCode, fs.refusals())
	}
	t.Logf("raw credentials: %d %v", resp.StatusCode, fs.refusals())
}

// TestFositeRefusalNamesTheCode: a wrong secret is refused by fosite with
// invalid_client, which the error names and the log shows.
func TestFositeRefusalNamesTheCode(t *testing.T) {
	t.Parallel()
	fs := newFositeServer(t, "client_secret_basic")
	const wrong = "s3cr+t/wi=th%41&more%-wrong"
	log := newLogBuffer()
	src, err := New(Config{TokenURL: fs.URL, ClientID: fositeClientID, ClientSecret: wrong},
		Options{Egress: loopbackGuard(t), Log: log.logger()})
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	_, err = src.Token(ctx(t))
	if err == nil || !strings.Contains(err.Error(), "token_unavailable: token endpoint refused: invalid_client (answered 401)") {
		t.Fatalf("Token: got %v, want token endpoint refused: invalid_client", err)
	}
	rec := log.only(t)
	if rec["error"] != "invalid_client" || rec["status"] != float64(401) {
		t.Errorf("log record: got %v, want error invalid_client and status 401", rec)
	}
	if strings.Contains(log.String(), wrong) || strings.Contains(log.String(), url.QueryEscape(wrong)) {
		t.Errorf("log reveals the secret: %s", log)
	}
	t.Logf("log: %s", strings.TrimSpace(log.String()))
}
