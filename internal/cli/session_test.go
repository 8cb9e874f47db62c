package cli

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"hookd/internal/admin"
	"hookd/internal/config"
)

const sessionToken = "session-test-admin-token"

// browser is a browser's cookie store; each client made from it is a tab.
type browser struct{ jar http.CookieJar }

func newBrowser(t *testing.T) *browser {
	t.Helper()
	jar, err := cookiejar.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	return &browser{jar: jar}
}

func (b *browser) tab() *http.Client { return &http.Client{Jar: b.jar, Timeout: 10 * time.Second} }

type sessionAnswer struct {
	status int
	header http.Header
	body   string
}

// sessionDo sends one request; headers are name, value pairs.
func sessionDo(t *testing.T, c *http.Client, method, url, body string, headers ...string) sessionAnswer {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, url, rd)
	if err != nil {
		t.Fatal(err)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return sessionAnswer{resp.StatusCode, resp.Header, string(b)}
}

// signIn exchanges token for a session in c's jar and returns the answer
// and the session's CSRF token.
func signIn(t *testing.T, c *http.Client, base, token string) (sessionAnswer, string) {
	t.Helper()
	a := sessionDo(t, c, "POST", base+"/api/v1/session", fmt.Sprintf(`{"token": %q}`, token))
	if a.status != http.StatusCreated {
		t.Fatalf("POST /api/v1/session: %d %s, want 201", a.status, a.body)
	}
	var s admin.SessionJSON
	if err := json.Unmarshal([]byte(a.body), &s); err != nil || s.CSRFToken == "" {
		t.Fatalf("POST /api/v1/session answered %s, want a csrf_token", a.body)
	}
	return a, s.CSRFToken
}

func sessionConfig(t *testing.T, yaml string) *config.Config {
	t.Helper()
	cfg, err := config.Parse([]byte(yaml))
	if err != nil {
		t.Fatal(err)
	}
	cfg.Storage.Path = t.TempDir()
	return cfg
}

// setCookie returns the session cookie's Set-Cookie header.
func setCookie(t *testing.T, h http.Header) string {
	t.Helper()
	for _, v := range h.Values("Set-Cookie") {
		if strings.HasPrefix(v, admin.SessionCookie+"=") {
			return v
		}
	}
	t.Fatalf("no %s cookie set; Set-Cookie: %q", admin.SessionCookie, h.Values("Set-Cookie"))
	return ""
}

// An admin token is exchanged for a session cookie that every tab of the
// browser shares; a state-changing request by cookie needs the CSRF token,
// a bearer request does not; signing out ends the session for every tab
// and for a copy of the cookie.
func TestSessionSignInTabsCSRFAndSignOut(t *testing.T) {
	t.Parallel()
	_, base := startApp(t, sessionConfig(t, "admin: {tokens: ["+sessionToken+"]}\nsources: [{name: s}]\n"), nil)
	b := newBrowser(t)
	tab1, tab2 := b.tab(), b.tab()

	if a := sessionDo(t, tab1, "POST", base+"/api/v1/session", `{"token": "not-the-admin-token-at-all"}`); a.status != http.StatusUnauthorized || len(a.header.Values("Set-Cookie")) != 0 {
		t.Fatalf("sign-in with a wrong token: %d, Set-Cookie %q; want 401 and no cookie", a.status, a.header.Values("Set-Cookie"))
	}
	if a := sessionDo(t, tab1, "GET", base+"/api/v1/events", ""); a.status != http.StatusUnauthorized {
		t.Fatalf("GET /api/v1/events before sign-in: %d, want 401", a.status)
	}

	start := time.Now()
	a, csrf := signIn(t, tab1, base, sessionToken)
	sc := setCookie(t, a.header)
	for _, want := range []string{"HttpOnly", "SameSite=Strict", "Path=/", "Max-Age=43200"} {
		if !strings.Contains(sc, want) {
			t.Errorf("Set-Cookie %q lacks %s", sc, want)
		}
	}
	if strings.Contains(sc, "Secure") {
		t.Errorf("Set-Cookie %q over plain HTTP is Secure; the browser would not send it back", sc)
	}
	if strings.Contains(a.body, sessionToken) || strings.Contains(sc, sessionToken) {
		t.Errorf("the sign-in answer holds the admin token")
	}
	var s admin.SessionJSON
	json.Unmarshal([]byte(a.body), &s)
	if exp := start.Add(12 * time.Hour); s.ExpiresAt.Before(exp.Add(-time.Minute)) || s.ExpiresAt.After(exp.Add(time.Minute)) {
		t.Errorf("expires_at %s, want about %s (12h default)", s.ExpiresAt, exp)
	}

	for i, tab := range []*http.Client{tab1, tab2} {
		if a := sessionDo(t, tab, "GET", base+"/api/v1/events", ""); a.status != http.StatusOK {
			t.Fatalf("tab %d: GET /api/v1/events by cookie: %d %s, want 200", i+1, a.status, a.body)
		}
	}
	// The second tab learns the CSRF token from its session.
	g := sessionDo(t, tab2, "GET", base+"/api/v1/session", "")
	var s2 admin.SessionJSON
	if json.Unmarshal([]byte(g.body), &s2); g.status != http.StatusOK || s2.CSRFToken != csrf {
		t.Fatalf("tab 2: GET /api/v1/session: %d %s, want 200 with the session's csrf_token", g.status, g.body)
	}

	// State changes by cookie need the CSRF token and a same-origin request.
	if a := sessionDo(t, tab2, "POST", base+"/api/v1/sources", `{"name": "nocsrf"}`); a.status != http.StatusForbidden {
		t.Fatalf("POST /api/v1/sources by cookie without %s: %d %s, want 403", admin.CSRFHeader, a.status, a.body)
	}
	if a := sessionDo(t, tab2, "POST", base+"/api/v1/sources", `{"name": "badcsrf"}`, admin.CSRFHeader, csrf+"x"); a.status != http.StatusForbidden {
		t.Fatalf("POST /api/v1/sources by cookie with a wrong %s: %d, want 403", admin.CSRFHeader, a.status)
	}
	if a := sessionDo(t, tab2, "POST", base+"/api/v1/sources", `{"name": "crosssite"}`, admin.CSRFHeader, csrf, "Sec-Fetch-Site", "cross-site"); a.status != http.StatusForbidden {
		t.Fatalf("POST by cookie with Sec-Fetch-Site: cross-site: %d, want 403", a.status)
	}
	if a := sessionDo(t, tab2, "POST", base+"/api/v1/sources", `{"name": "otherorigin"}`, admin.CSRFHeader, csrf, "Origin", "https://evil.example"); a.status != http.StatusForbidden {
		t.Fatalf("POST by cookie with a foreign Origin: %d, want 403", a.status)
	}
	if a := sessionDo(t, tab2, "DELETE", base+"/api/v1/session", ""); a.status != http.StatusForbidden {
		t.Fatalf("sign-out by cookie without %s: %d, want 403", admin.CSRFHeader, a.status)
	}
	if a := sessionDo(t, tab1, "GET", base+"/api/v1/events", ""); a.status != http.StatusOK {
		t.Fatalf("after a refused sign-out: GET by cookie %d, want 200 (still signed in)", a.status)
	}
	if a := sessionDo(t, tab2, "POST", base+"/api/v1/sources", `{"name": "withcsrf"}`, admin.CSRFHeader, csrf, "Origin", base, "Sec-Fetch-Site", "same-origin"); a.status != http.StatusCreated {
		t.Fatalf("POST /api/v1/sources by cookie with the CSRF token: %d %s, want 201", a.status, a.body)
	}
	// A bearer request is unchanged: no cookie, no CSRF token.
	if a := sessionDo(t, http.DefaultClient, "POST", base+"/api/v1/sources", `{"name": "bearer"}`, "Authorization", "Bearer "+sessionToken); a.status != http.StatusCreated {
		t.Fatalf("POST /api/v1/sources by bearer token: %d %s, want 201", a.status, a.body)
	}

	copied := regexp.MustCompile(`^` + admin.SessionCookie + `=[^;]+`).FindString(sc)
	if a := sessionDo(t, http.DefaultClient, "GET", base+"/api/v1/events", "", "Cookie", copied); a.status != http.StatusOK {
		t.Fatalf("a copy of the cookie before sign-out: %d, want 200", a.status)
	}
	out := sessionDo(t, tab1, "DELETE", base+"/api/v1/session", "", admin.CSRFHeader, csrf)
	if out.status != http.StatusNoContent || !strings.Contains(setCookie(t, out.header), "Max-Age=0") {
		t.Fatalf("sign-out: %d, Set-Cookie %q; want 204 clearing the cookie", out.status, out.header.Values("Set-Cookie"))
	}
	for i, tab := range []*http.Client{tab1, tab2} {
		if a := sessionDo(t, tab, "GET", base+"/api/v1/events", ""); a.status != http.StatusUnauthorized {
			t.Fatalf("tab %d after sign-out: %d, want 401", i+1, a.status)
		}
	}
	if a := sessionDo(t, http.DefaultClient, "GET", base+"/api/v1/events", "", "Cookie", copied); a.status != http.StatusUnauthorized {
		t.Fatalf("a copy of the cookie after sign-out: %d, want 401 (revoked on the server)", a.status)
	}
	if a := sessionDo(t, http.DefaultClient, "GET", base+"/api/v1/events", "", "Authorization", "Bearer "+sessionToken); a.status != http.StatusOK {
		t.Fatalf("bearer after sign-out: %d, want 200", a.status)
	}
}

// A session lasts admin.session_ttl from the sign-in, however much it is
// used.
func TestSessionExpires(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex
	now := time.Now()
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	advance := func(d time.Duration) { mu.Lock(); now = now.Add(d); mu.Unlock() }
	_, base := startApp(t, sessionConfig(t, "admin: {tokens: ["+sessionToken+"], session_ttl: 1h}\n"), clock)
	tab := newBrowser(t).tab()
	a, _ := signIn(t, tab, base, sessionToken)
	if sc := setCookie(t, a.header); !strings.Contains(sc, "Max-Age=3600") {
		t.Fatalf("Set-Cookie %q, want Max-Age=3600 (session_ttl 1h)", sc)
	}
	advance(59 * time.Minute)
	if a := sessionDo(t, tab, "GET", base+"/api/v1/events", ""); a.status != http.StatusOK {
		t.Fatalf("59m after sign-in: %d, want 200", a.status)
	}
	advance(time.Minute)
	if a := sessionDo(t, tab, "GET", base+"/api/v1/events", ""); a.status != http.StatusUnauthorized {
		t.Fatalf("1h after sign-in (session_ttl 1h): %d, want 401", a.status)
	}
}

// Failed sign-ins are limited per address: beyond the burst the exchange
// answers 429 with Retry-After without checking the token.
func TestSessionFailedSignInsAreLimited(t *testing.T) {
	t.Parallel()
	_, base := startApp(t, sessionConfig(t, "admin: {tokens: ["+sessionToken+"]}\n"), nil)
	c := newBrowser(t).tab()
	for i := range config.DefaultIssuerFailureBurst {
		if a := sessionDo(t, c, "POST", base+"/api/v1/session", `{"token": "wrong-admin-token-guess"}`); a.status != http.StatusUnauthorized {
			t.Fatalf("failed sign-in %d: %d, want 401", i+1, a.status)
		}
	}
	a := sessionDo(t, c, "POST", base+"/api/v1/session", `{"token": "`+sessionToken+`"}`)
	if a.status != http.StatusTooManyRequests || a.header.Get("Retry-After") == "" {
		t.Fatalf("sign-in after %d failures: %d, Retry-After %q; want 429 with Retry-After", config.DefaultIssuerFailureBurst, a.status, a.header.Get("Retry-After"))
	}
	if a := sessionDo(t, c, "GET", base+"/api/v1/events", "", "Authorization", "Bearer "+sessionToken); a.status != http.StatusOK {
		t.Fatalf("bearer request while sign-ins are limited: %d, want 200", a.status)
	}
}

// Over TLS the session cookie is Secure; the exchange takes the token in
// Authorization: Bearer as well.
func TestSessionCookieSecureOverTLS(t *testing.T) {
	t.Parallel()
	ca := newTestCA(t, "session-ca")
	app, _ := startTLSApp(t, tlsFiles(t, ca, t.TempDir(), "127.0.0.1"))
	c := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: ca.pool()}}}
	a := sessionDo(t, c, "POST", "https://"+app.Addr()+"/api/v1/session", "", "Authorization", "Bearer tok")
	if a.status != http.StatusCreated {
		t.Fatalf("POST /api/v1/session over TLS: %d %s, want 201", a.status, a.body)
	}
	if sc := setCookie(t, a.header); !strings.Contains(sc, "Secure") || !strings.Contains(sc, "HttpOnly") {
		t.Fatalf("Set-Cookie over TLS %q, want Secure and HttpOnly", sc)
	}
}

// A session ends with its admin token: the generated one reset by hookd
// admin-token reset (the server running), or a configured one removed from
// the configuration. A session of a token still in force outlives a
// restart.
func TestSessionEndsWithItsAdminToken(t *testing.T) {
	t.Parallel()
	t.Run("Reset", func(t *testing.T) {
		t.Parallel()
		dir := t.TempDir()
		_, base, banner, _ := secretsRun(t, secretsConfig(t, dir), &secretsTestLog{})
		m := secretsTokenRE.FindStringSubmatch(banner)
		if m == nil {
			t.Fatalf("no generated admin token in the banner:\n%s", banner)
		}
		tab := newBrowser(t).tab()
		signIn(t, tab, base, m[1])
		if a := sessionDo(t, tab, "GET", base+"/api/v1/events", ""); a.status != http.StatusOK {
			t.Fatalf("signed in with the generated token: %d, want 200", a.status)
		}
		var out, errOut bytes.Buffer
		if code := Main([]string{"admin-token", "reset", "--data", dir}, &out, &errOut); code != 0 {
			t.Fatalf("hookd admin-token reset: exit %d, %s", code, errOut.String())
		}
		waitFor(t, 10*time.Second, "the session of the reset token to end", func() bool {
			return sessionDo(t, tab, "GET", base+"/api/v1/events", "").status == http.StatusUnauthorized
		})
		fresh := secretsTokenRE.FindStringSubmatch(out.String())
		if fresh == nil {
			t.Fatalf("hookd admin-token reset printed %q", out.String())
		}
		signIn(t, tab, base, fresh[1])
		if a := sessionDo(t, tab, "GET", base+"/api/v1/events", ""); a.status != http.StatusOK {
			t.Fatalf("signed in again with the new token: %d, want 200", a.status)
		}
	})
	t.Run("RemovedFromConfig", func(t *testing.T) {
		t.Parallel()
		dir := t.TempDir()
		const kept, removed = "kept-admin-token-0123", "removed-admin-token-0123"
		cfg := sessionConfig(t, "admin: {tokens: ["+kept+", "+removed+"]}\n")
		cfg.Storage.Path = dir
		app, base := startApp(t, cfg, nil)
		keptTab, removedTab := newBrowser(t).tab(), newBrowser(t).tab()
		signIn(t, keptTab, base, kept)
		signIn(t, removedTab, base, removed)
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := app.Shutdown(ctx); err != nil {
			t.Fatal(err)
		}
		cfg2 := sessionConfig(t, "admin: {tokens: ["+kept+"]}\n")
		cfg2.Storage.Path = dir
		_, base2 := startApp(t, cfg2, nil)
		if a := sessionDo(t, keptTab, "GET", base2+"/api/v1/events", ""); a.status != http.StatusOK {
			t.Fatalf("after a restart, the session of a token kept: %d, want 200", a.status)
		}
		if a := sessionDo(t, removedTab, "GET", base2+"/api/v1/events", ""); a.status != http.StatusUnauthorized {
			t.Fatalf("after a restart, the session of a token removed from admin.tokens: %d, want 401", a.status)
		}
	})
}

// On PostgreSQL a session made on one replica works on another, and a
// sign-out on either ends it on both.
func TestSessionAcrossReplicas(t *testing.T) {
	dsn := testPostgresDSN(t)
	cfgs := make([]*config.Config, 2)
	for i := range cfgs {
		cfgs[i] = sessionConfig(t, fmt.Sprintf("admin: {tokens: [%s]}\nstorage: {driver: postgres, dsn: %q}\n", sessionToken, dsn))
	}
	bases := startReplicas(t, cfgs...)
	// Cookies are not per port: one browser talks to both replicas.
	tab := newBrowser(t).tab()
	a, csrf := signIn(t, tab, bases[0], sessionToken)
	copied := regexp.MustCompile(`^` + admin.SessionCookie + `=[^;]+`).FindString(setCookie(t, a.header))
	for i, base := range bases {
		if a := sessionDo(t, tab, "GET", base+"/api/v1/events", ""); a.status != http.StatusOK {
			t.Fatalf("replica %d: GET by the cookie made on replica 0: %d %s, want 200", i, a.status, a.body)
		}
	}
	if a := sessionDo(t, tab, "DELETE", bases[1]+"/api/v1/session", "", admin.CSRFHeader, csrf); a.status != http.StatusNoContent {
		t.Fatalf("sign-out on replica 1: %d %s, want 204", a.status, a.body)
	}
	for i, base := range bases {
		if a := sessionDo(t, http.DefaultClient, "GET", base+"/api/v1/events", "", "Cookie", copied); a.status != http.StatusUnauthorized {
			t.Fatalf("replica %d: the cookie after sign-out on replica 1: %d, want 401", i, a.status)
		}
	}
}
