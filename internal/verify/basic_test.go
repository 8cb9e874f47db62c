package verify

import (
	"context"
	"encoding/base64"
	"log/slog"
	"net/http"
	"strings"
	"testing"

	"hookd"
	"hookd/internal/config"
	"hookd/internal/httpserver"
)

// Helpers shared by the tests of basic, header, api_key, ip_allow and
// oauth_issuer; prefixed cred so they do not collide with the other
// methods' tests in this package.

func credDiscardLog() *slog.Logger { return slog.New(slog.DiscardHandler) }

// credBuild builds one method from options written as in YAML.
func credBuild(t *testing.T, env *Env, typ string, opts map[string]any) (Verifier, error) {
	t.Helper()
	m, err := config.NewVerify(typ, opts)
	if err != nil {
		t.Fatalf("NewVerify: %v", err)
	}
	if env == nil {
		env = &Env{Source: "test", Log: credDiscardLog()}
	}
	return Build(env, []config.Verify{m})
}

// credMustBuild is credBuild that fails the test on an error.
func credMustBuild(t *testing.T, env *Env, typ string, opts map[string]any) Verifier {
	t.Helper()
	v, err := credBuild(t, env, typ, opts)
	if err != nil {
		t.Fatalf("build %s: %v", typ, err)
	}
	return v
}

// credRequest is a request from remote with headers given as name, value
// pairs (a name may repeat).
func credRequest(remote string, kv ...string) *Request {
	h := http.Header{}
	for i := 0; i+1 < len(kv); i += 2 {
		h.Add(kv[i], kv[i+1])
	}
	return &Request{Method: http.MethodPost, Header: h, RemoteAddr: remote, Body: []byte(`{}`)}
}

// credStatus is the HTTP status the server answers for a verification
// result.
func credStatus(err error) int {
	if err == nil {
		return http.StatusOK
	}
	return httpserver.Status(hookd.ErrorCode(err))
}

// credCheck compares a verification result with the wanted status and
// WWW-Authenticate challenge, and checks that the client-visible message
// reveals none of the secrets.
func credCheck(t *testing.T, err error, wantStatus int, wantChallenge string, secrets ...string) {
	t.Helper()
	if got := credStatus(err); got != wantStatus {
		t.Errorf("status: got %d, want %d (err %v)", got, wantStatus, err)
	}
	if got := Challenge(err); got != wantChallenge {
		t.Errorf("WWW-Authenticate: got %q, want %q", got, wantChallenge)
	}
	if err != nil {
		msg := hookd.ErrorMessage(err)
		for _, s := range secrets {
			if strings.Contains(msg, s) || strings.Contains(err.Error(), s) {
				t.Errorf("error %q reveals a secret", err)
			}
		}
	}
}

func basicHeader(user, pass string) string {
	return "Basic " + base64.StdEncoding.EncodeToString([]byte(user+":"+pass))
}

func TestBasic(t *testing.T) {
	t.Parallel()
	v := credMustBuild(t, nil, "basic", map[string]any{"users": []any{
		map[string]any{"username": "acme", "password": []string{"new-pass-1", "old-pass-0"}},
		map[string]any{"username": "globex", "password": "globex-pass"},
	}})
	secrets := []string{"new-pass-1", "old-pass-0", "globex-pass"}
	tests := []struct {
		name          string
		headers       []string
		wantStatus    int
		wantChallenge string
	}{
		{"Valid", []string{"Authorization", basicHeader("acme", "new-pass-1")}, 200, ""},
		{"RotatedPassword", []string{"Authorization", basicHeader("acme", "old-pass-0")}, 200, ""},
		{"SinglePasswordUser", []string{"Authorization", basicHeader("globex", "globex-pass")}, 200, ""},
		{"LowerCaseScheme", []string{"Authorization", "basic " + base64.StdEncoding.EncodeToString([]byte("acme:new-pass-1"))}, 200, ""},
		{"WrongPassword", []string{"Authorization", basicHeader("acme", "new-pass-2")}, 401, ChallengeBasic},
		{"OtherUsersPassword", []string{"Authorization", basicHeader("acme", "globex-pass")}, 401, ChallengeBasic},
		{"UnknownUser", []string{"Authorization", basicHeader("initech", "new-pass-1")}, 401, ChallengeBasic},
		{"EmptyPassword", []string{"Authorization", basicHeader("acme", "")}, 401, ChallengeBasic},
		{"Missing", nil, 401, ChallengeBasic},
		{"BearerScheme", []string{"Authorization", "Bearer new-pass-1"}, 401, ChallengeBasic},
		{"NotBase64", []string{"Authorization", "Basic !!!"}, 401, ChallengeBasic},
		{"NoColon", []string{"Authorization", "Basic " + base64.StdEncoding.EncodeToString([]byte("acme"))}, 401, ChallengeBasic},
		{"TwoHeaders", []string{"Authorization", basicHeader("acme", "new-pass-1"), "Authorization", basicHeader("acme", "new-pass-1")}, 401, ChallengeBasic},
		{"Oversized", []string{"Authorization", basicHeader("acme", strings.Repeat("x", 8<<10))}, 401, ChallengeBasic},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			err := v.Verify(context.Background(), credRequest("192.0.2.1:1234", tt.headers...))
			credCheck(t, err, tt.wantStatus, tt.wantChallenge, secrets...)
		})
	}
	if got := v.(Chain).CredentialHeaders(); len(got) != 1 || got[0] != "Authorization" {
		t.Errorf("CredentialHeaders: got %v, want [Authorization]", got)
	}
}

func TestBasicOptions(t *testing.T) {
	t.Parallel()
	user := func(name string, pw any) map[string]any { return map[string]any{"username": name, "password": pw} }
	tests := []struct {
		name    string
		opts    map[string]any
		wantErr string // substring; "" means valid
	}{
		{"Valid", map[string]any{"users": []any{user("a", "p")}}, ""},
		{"PasswordList", map[string]any{"users": []any{user("a", []string{"p1", "p2"})}}, ""},
		{"NoUsers", map[string]any{}, "users: required"},
		{"EmptyUsername", map[string]any{"users": []any{user("", "p")}}, "users[0].username: required"},
		{"ColonInUsername", map[string]any{"users": []any{user("a:b", "p")}}, "users[0].username: must not contain ':'"},
		{"DuplicateUser", map[string]any{"users": []any{user("a", "p"), user("a", "q")}}, "users[1].username"},
		{"EmptyPassword", map[string]any{"users": []any{user("a", "")}}, "users[0].password: empty"},
		{"NoPassword", map[string]any{"users": []any{map[string]any{"username": "a"}}}, "users[0].password: required"},
		{"EmptyRotatedPassword", map[string]any{"users": []any{user("a", []string{"p", ""})}}, "users[0].password[1]: empty"},
		{"UnknownOption", map[string]any{"users": []any{user("a", "p")}, "realm": "x"}, "realm"},
		{"UnknownUserOption", map[string]any{"users": []any{map[string]any{"username": "a", "password": "p", "pass": "p"}}}, "pass"},
		{"PasswordMap", map[string]any{"users": []any{user("a", map[string]any{"x": 1})}}, "want a string or a list"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := credBuild(t, nil, "basic", tt.opts)
			credWantErr(t, err, tt.wantErr)
		})
	}
}

// credWantErr checks a factory error against a wanted substring ("" for
// no error).
func credWantErr(t *testing.T, err error, want string) {
	t.Helper()
	switch {
	case want == "" && err != nil:
		t.Errorf("got error %v, want none", err)
	case want != "" && err == nil:
		t.Errorf("got no error, want one containing %q", want)
	case want != "" && !strings.Contains(err.Error(), want):
		t.Errorf("got error %q, want one containing %q", err, want)
	}
}

func TestParseBasic(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in         string
		user, pass string
		ok         bool
	}{
		{basicHeader("u", "p"), "u", "p", true},
		{basicHeader("u", "p:with:colons"), "u", "p:with:colons", true},
		{basicHeader("", ""), "", "", true},
		{"BASIC " + base64.StdEncoding.EncodeToString([]byte("u:p")), "u", "p", true},
		{"Basic  " + base64.StdEncoding.EncodeToString([]byte("u:p")) + " ", "u", "p", true},
		{"Basic", "", "", false},
		{"Basic ", "", "", false},
		{"Basic dTpw=", "", "", false},
		{"Basicx dTpw", "", "", false},
		{"Bearer dTpw", "", "", false},
		{"", "", "", false},
	}
	for _, tt := range tests {
		u, p, ok := credParseBasic(tt.in)
		if u != tt.user || p != tt.pass || ok != tt.ok {
			t.Errorf("credParseBasic(%q): got (%q, %q, %v), want (%q, %q, %v)", tt.in, u, p, ok, tt.user, tt.pass, tt.ok)
		}
	}
}

func TestParseBearer(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in       string
		tok      string
		isBearer bool
	}{
		{"Bearer abc", "abc", true},
		{"bearer abc", "abc", true},
		{"Bearer   abc  ", "abc", true},
		{"Bearer", "", true},
		{"Bearer ", "", true},
		{"Bearer a b", "", true},
		{"Basic abc", "", false},
		{"Bearerabc", "", false},
		{"", "", false},
	}
	for _, tt := range tests {
		tok, isBearer := credParseBearer(tt.in)
		if tok != tt.tok || isBearer != tt.isBearer {
			t.Errorf("credParseBearer(%q): got (%q, %v), want (%q, %v)", tt.in, tok, isBearer, tt.tok, tt.isBearer)
		}
	}
}

func FuzzBasicAuth(f *testing.F) {
	for _, s := range []string{
		basicHeader("acme", "pass"), "Basic", "Basic ", "basic Og==", "Basic dTpw=", "Bearer x",
		"Basic " + strings.Repeat("A", 100), "Basic \x00\xff", basicHeader("ü", "p\x00"),
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		user, pass, ok := credParseBasic(s)
		if !ok {
			if user != "" || pass != "" {
				t.Fatalf("credParseBasic(%q) failed but returned (%q, %q)", s, user, pass)
			}
			return
		}
		if len(s) > credMaxAuthorization {
			t.Fatalf("credParseBasic accepted %d bytes, over the bound", len(s))
		}
		if strings.Contains(user, ":") {
			t.Fatalf("credParseBasic(%q): user %q contains ':'", s, user)
		}
		u2, p2, ok2 := credParseBasic(basicHeader(user, pass))
		if !ok2 || u2 != user || p2 != pass {
			t.Fatalf("round trip of (%q, %q): got (%q, %q, %v)", user, pass, u2, p2, ok2)
		}
	})
}

func FuzzBearerAuth(f *testing.F) {
	for _, s := range []string{"Bearer abc", "bearer  abc ", "Bearer", "Bearer a b", "Basic x", "", "Bearer \t", "BEARER hk_at_x.y"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		tok, isBearer := credParseBearer(s)
		if !isBearer && tok != "" {
			t.Fatalf("credParseBearer(%q): token %q without the Bearer scheme", s, tok)
		}
		if tok != "" {
			if strings.ContainsAny(tok, " \t") {
				t.Fatalf("credParseBearer(%q): token %q contains whitespace", s, tok)
			}
			if !strings.Contains(s, tok) || len(s) < len("Bearer ")+len(tok) {
				t.Fatalf("credParseBearer(%q): token %q is not part of the value", s, tok)
			}
		}
	})
}
