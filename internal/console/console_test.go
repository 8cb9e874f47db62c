package console

import (
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"
)

const wantCSP = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; " +
	"connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"

type answer struct {
	status int
	header http.Header
	body   string
}

// do sends a request through a mux wired the way the server wires the
// console.
func do(t *testing.T, method, target string, hdr map[string]string) answer {
	t.Helper()
	mux := http.NewServeMux()
	mux.Handle("/console/", Handler())
	req := httptest.NewRequest(method, target, nil)
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	rec := httptest.NewRecorder()
	mux.ServeHTTP(rec, req)
	res := rec.Result()
	b, _ := io.ReadAll(res.Body)
	return answer{status: res.StatusCode, header: res.Header, body: string(b)}
}

// direct calls the handler without a mux (it must hold up on its own).
func direct(t *testing.T, method, target string) answer {
	t.Helper()
	rec := httptest.NewRecorder()
	Handler().ServeHTTP(rec, httptest.NewRequest(method, target, nil))
	res := rec.Result()
	b, _ := io.ReadAll(res.Body)
	return answer{status: res.StatusCode, header: res.Header, body: string(b)}
}

func checkSecurityHeaders(t *testing.T, what string, a answer) {
	t.Helper()
	if got := a.header.Get("Content-Security-Policy"); got != wantCSP {
		t.Errorf("%s: Content-Security-Policy = %q, want %q", what, got, wantCSP)
	}
	if got := a.header.Get("X-Content-Type-Options"); got != "nosniff" {
		t.Errorf("%s: X-Content-Type-Options = %q", what, got)
	}
	if got := a.header.Get("Referrer-Policy"); got != "no-referrer" {
		t.Errorf("%s: Referrer-Policy = %q", what, got)
	}
	if got := a.header.Get("Cache-Control"); got != "no-cache" {
		t.Errorf("%s: Cache-Control = %q", what, got)
	}
}

func TestIndex(t *testing.T) {
	for _, target := range []string{"/console/", "/console/index.html"} {
		a := do(t, http.MethodGet, target, nil)
		if a.status != http.StatusOK {
			t.Fatalf("GET %s: status %d", target, a.status)
		}
		if ct := a.header.Get("Content-Type"); ct != "text/html; charset=utf-8" {
			t.Errorf("GET %s: Content-Type = %q", target, ct)
		}
		for _, want := range []string{`id="app"`, `id="view"`, `<script type="module" src="app.js"></script>`,
			`<link rel="stylesheet" href="console.css">`, `<link rel="stylesheet" href="find.css">`, `href="#/stats"`,
			`id="token-input"`, `id="error-bar"`} {
			if !strings.Contains(a.body, want) {
				t.Errorf("GET %s: body lacks %q", target, want)
			}
		}
		checkSecurityHeaders(t, "GET "+target, a)
	}
}

func TestAssetsContentTypes(t *testing.T) {
	for target, want := range map[string]string{
		"/console/app.js":      "text/javascript; charset=utf-8",
		"/console/console.css": "text/css; charset=utf-8",
		"/console/find.css":    "text/css; charset=utf-8",
		"/console/index.html":  "text/html; charset=utf-8",
	} {
		a := do(t, http.MethodGet, target, nil)
		if a.status != http.StatusOK {
			t.Errorf("GET %s: status %d", target, a.status)
			continue
		}
		if got := a.header.Get("Content-Type"); got != want {
			t.Errorf("GET %s: Content-Type = %q, want %q", target, got, want)
		}
		if a.body == "" {
			t.Errorf("GET %s: empty body", target)
		}
		if a.header.Get("ETag") == "" {
			t.Errorf("GET %s: no ETag", target)
		}
		checkSecurityHeaders(t, "GET "+target, a)
	}
}

func TestHead(t *testing.T) {
	a := do(t, http.MethodHead, "/console/app.js", nil)
	if a.status != http.StatusOK || a.body != "" {
		t.Errorf("HEAD: status %d, body %d bytes", a.status, len(a.body))
	}
	if got := a.header.Get("Content-Type"); got != "text/javascript; charset=utf-8" {
		t.Errorf("HEAD: Content-Type = %q", got)
	}
	checkSecurityHeaders(t, "HEAD", a)
}

func TestConditional(t *testing.T) {
	a := do(t, http.MethodGet, "/console/console.css", nil)
	etag := a.header.Get("ETag")
	b := do(t, http.MethodGet, "/console/console.css", map[string]string{"If-None-Match": etag})
	if b.status != http.StatusNotModified {
		t.Errorf("If-None-Match %s: status %d, want 304", etag, b.status)
	}
	checkSecurityHeaders(t, "304", b)
}

func TestRedirect(t *testing.T) {
	// Mounted at "/console/", the ServeMux itself redirects "/console"
	// (with its own status code); the handler does the same when it is
	// reached directly (or mounted at "/console" too), with its headers.
	a := do(t, http.MethodGet, "/console", nil)
	if a.status < 300 || a.status > 308 {
		t.Errorf("GET /console via mux: status %d, want a redirect", a.status)
	}
	if loc := a.header.Get("Location"); loc != "/console/" {
		t.Errorf("GET /console via mux: Location = %q, want /console/", loc)
	}
	a = direct(t, http.MethodGet, "/console")
	if a.status != http.StatusMovedPermanently {
		t.Errorf("GET /console: status %d, want 301", a.status)
	}
	if loc := a.header.Get("Location"); loc != "/console/" {
		t.Errorf("GET /console: Location = %q, want /console/", loc)
	}
	checkSecurityHeaders(t, "redirect", a)
	if loc := direct(t, http.MethodGet, "/console?x=1").header.Get("Location"); loc != "/console/?x=1" {
		t.Errorf("GET /console?x=1: Location = %q, want /console/?x=1", loc)
	}
	if a := direct(t, http.MethodPost, "/console"); a.status != http.StatusMethodNotAllowed {
		t.Errorf("POST /console: status %d, want 405", a.status)
	}
}

func TestMethodNotAllowed(t *testing.T) {
	for _, m := range []string{http.MethodPost, http.MethodPut, http.MethodDelete, http.MethodPatch} {
		for _, target := range []string{"/console/", "/console/app.js"} {
			a := do(t, m, target, nil)
			if a.status != http.StatusMethodNotAllowed {
				t.Errorf("%s %s: status %d, want 405", m, target, a.status)
			}
			if allow := a.header.Get("Allow"); allow != "GET, HEAD" {
				t.Errorf("%s %s: Allow = %q", m, target, allow)
			}
			checkSecurityHeaders(t, m+" "+target, a)
		}
	}
}

func TestNotFound(t *testing.T) {
	targets := []string{"/console/nope.js", "/console/static/app.js", "/console/events", "/console/console.js",
		"/console/console.go", "/console/app.js/", "/console/static/", "/console/index.html/x"}
	for _, target := range targets {
		a := do(t, http.MethodGet, target, nil)
		if a.status != http.StatusNotFound {
			t.Errorf("GET %s: status %d, want 404", target, a.status)
		}
		checkSecurityHeaders(t, "GET "+target, a)
		if ct := a.header.Get("Content-Type"); ct != "text/plain; charset=utf-8" {
			t.Errorf("GET %s: Content-Type = %q", target, ct)
		}
	}
	// Unclean paths: the mux redirects them; the handler alone refuses them.
	for _, target := range append(targets, "/console/../console.go", "/console/./app.js", "/console//app.js") {
		a := direct(t, http.MethodGet, target)
		if a.status != http.StatusNotFound {
			t.Errorf("direct GET %s: status %d, want 404", target, a.status)
		}
		checkSecurityHeaders(t, "direct GET "+target, a)
	}
	if a := direct(t, http.MethodGet, "/other"); a.status != http.StatusNotFound {
		t.Errorf("GET /other: status %d, want 404", a.status)
	}
}

func embedded(t *testing.T, name string) string {
	t.Helper()
	b, err := staticFS.ReadFile("static/" + name)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// The CSP forbids inline code; the page must not depend on any.
func TestIndexHasNoInlineCode(t *testing.T) {
	html := embedded(t, "index.html")
	lower := strings.ToLower(html)
	scripts := regexp.MustCompile(`(?is)<script\b([^>]*)>(.*?)</script>`).FindAllStringSubmatch(lower, -1)
	if len(scripts) == 0 {
		t.Fatal("index.html loads no script")
	}
	for _, m := range scripts {
		if !strings.Contains(m[1], "src=") {
			t.Errorf("index.html: <script%s> without src", m[1])
		}
		if strings.TrimSpace(m[2]) != "" {
			t.Errorf("index.html: inline script body %q", m[2])
		}
	}
	if strings.Count(lower, "<script") != len(scripts) {
		t.Error("index.html: unbalanced <script> tags")
	}
	for _, bad := range []string{"style=", "<style", "javascript:", "onclick=", "onload=", "onerror=", "onsubmit=", "http://", "https://"} {
		if strings.Contains(lower, bad) {
			t.Errorf("index.html contains %q", bad)
		}
	}
}

// scripts lists the embedded JavaScript files (the ES modules of the
// console).
func scripts(t *testing.T) []string {
	t.Helper()
	entries, err := staticFS.ReadDir("static")
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		if strings.HasSuffix(e.Name(), ".js") {
			names = append(names, e.Name())
		}
	}
	if len(names) == 0 {
		t.Fatal("no .js files embedded")
	}
	return names
}

// Every script is served, as JavaScript with the console's headers; the
// modules import each other by relative flat names only (only top-level
// files are served), and every imported module exists.
func TestEveryScriptServed(t *testing.T) {
	importRe := regexp.MustCompile(`(?m)^\s*import\b[^;]*?\bfrom\s+'([^']*)'|^\s*import\s+'([^']*)'|\bimport\(`)
	for _, name := range scripts(t) {
		a := do(t, http.MethodGet, "/console/"+name, nil)
		if a.status != http.StatusOK {
			t.Errorf("GET %s: status %d", name, a.status)
			continue
		}
		if got := a.header.Get("Content-Type"); got != "text/javascript; charset=utf-8" {
			t.Errorf("GET %s: Content-Type = %q", name, got)
		}
		checkSecurityHeaders(t, "GET "+name, a)
		for _, m := range importRe.FindAllStringSubmatch(a.body, -1) {
			spec := m[1] + m[2]
			if spec == "" {
				t.Errorf("%s: dynamic import(): modules are imported statically", name)
				continue
			}
			target, ok := strings.CutPrefix(spec, "./")
			if !ok || strings.Contains(target, "/") || !strings.HasSuffix(target, ".js") {
				t.Errorf("%s imports %q: want a flat relative name like ./ui.js", name, spec)
				continue
			}
			if _, ok := assets[target]; !ok {
				t.Errorf("%s imports %q, which is not embedded", name, spec)
			}
		}
	}
	html := embedded(t, "index.html")
	if !strings.Contains(html, `<script type="module" src="app.js"></script>`) {
		t.Error("index.html does not load app.js as a module")
	}
}

// Data from the API (event bodies, headers) is attacker-controlled: the
// script builds the DOM with textContent only.
func TestScriptAvoidsHTMLSinks(t *testing.T) {
	var all strings.Builder
	for _, name := range scripts(t) {
		js := embedded(t, name)
		all.WriteString(js)
		for _, bad := range []string{"innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval(",
			"new Function", "http://", "https://", "localStorage", "sessionStorage.setItem", "Authorization",
			"setTimeout('", "setTimeout(\"", "setInterval(", ".setHTML", "createContextualFragment",
			"DOMParser", "srcdoc", "javascript:", "alert(", "prompt("} {
			if strings.Contains(js, bad) {
				t.Errorf("%s contains %q", name, bad)
			}
		}
		// Inline styles are refused by the CSP: no style attribute, no
		// element.style.
		for _, bad := range []string{"'style'", ".style.", "style:"} {
			if strings.Contains(js, bad) {
				t.Errorf("%s contains %q (inline style)", name, bad)
			}
		}
	}
	js := all.String()
	for _, want := range []string{"textContent", "'/api/v1/session'", "'X-CSRF-Token'", "credentials: 'same-origin'", "/api/v1/events", "/api/v1/deliveries",
		"/api/v1/replays", "/api/v1/destinations", "/api/v1/subscriptions", "/api/v1/sources",
		// The configuration forms' hooks for browser tests (ids, error slots).
		"'source-form'", "'destination-form'", "'subscription-form'", "'new-source'", "'new-destination'",
		"'new-subscription'", "'data-error-for'", "'confirm-delete'", "'[redacted]'"} {
		if !strings.Contains(js, want) {
			t.Errorf("the scripts lack %q", want)
		}
	}
	for _, name := range []string{"console.css", "find.css"} {
		css := embedded(t, name)
		for _, bad := range []string{"@import", "url(http", "url(//", "url(data", "expression("} {
			if strings.Contains(css, bad) {
				t.Errorf("%s contains %q", name, bad)
			}
		}
	}
}

// The find, act and stats views give their controls stable ids and
// names (a browser suite drives them) and call the API they rely on.
func TestScriptHooks(t *testing.T) {
	var all strings.Builder
	for _, name := range scripts(t) {
		all.WriteString(embedded(t, name))
	}
	js := all.String()
	for _, id := range []string{"filter-form", "filter-apply", "filter-error", "events-table", "live-tail",
		"replay-event", "replay-confirm", "replay-result", "bulk-replay", "bulk-replay-confirm", "replay-progress",
		"test-event-form", "test-event-send", "test-event-result", "payload-error",
		"stats-range", "chart-events", "chart-deliveries", "chart-latency"} {
		if !strings.Contains(js, "'"+id+"'") {
			t.Errorf("no element gets id %q", id)
		}
	}
	for _, name := range []string{"since", "until", "type", "status", "source", "destination", "q", "replay-destination", "payload"} {
		if !strings.Contains(js, "name: '"+name+"'") {
			t.Errorf("no control is named %q", name)
		}
	}
	for _, want := range []string{"'data-event-id'", "'data-done'", "'data-total'", "'data-window'", "'data-outcome'",
		"case 'stats'", "case 'test-event'", "'/api/v1/stats'", "'/api/v1/replays'", "'/replay'", "'/test'",
		"history.replaceState", "location.hash = hash"} {
		if !strings.Contains(js, want) {
			t.Errorf("the scripts lack %q", want)
		}
	}
}

// Every link the scripts build is a hash route of the console: names,
// ids and hash parameters only ever go into a "#/…" string (encoded), so
// no API value or hash parameter can become a javascript: or data: URL
// or lead off the origin. A new way of building an href must be added
// here after checking that it yields "#/…".
func TestScriptLinksAreHashRoutes(t *testing.T) {
	hrefAttr := regexp.MustCompile(`href:\s*([^\n]*)`)
	hashStart := regexp.MustCompile(`^(?:'#|(?:[a-z] \? )?(?:destHash|srcHash|link)\(|editing \? itemHash : listHash\b|lastEventsHash\b)`)
	for _, name := range scripts(t) {
		js := embedded(t, name)
		for _, m := range hrefAttr.FindAllStringSubmatch(js, -1) {
			if !hashStart.MatchString(m[1]) {
				t.Errorf("%s builds a link from %q: not a known hash route", name, m[1])
			}
		}
		// The one shorthand { href } takes a variable set from a '#/' literal.
		if strings.Contains(js, "{ href }") && !strings.Contains(js, "const href = '#/") {
			t.Errorf("%s passes { href } without setting it from a '#/…' literal", name)
		}
		for _, bad := range []string{".href =", "'href'", "location.href", "location.assign", "window.open", "'src'", "src:"} {
			if strings.Contains(js, bad) {
				t.Errorf("%s contains %q: links and sources are built with href: '#/…' only", name, bad)
			}
		}
	}
	for _, h := range []string{"destHash", "srcHash"} {
		if !strings.Contains(embedded(t, "view-destinations.js")+embedded(t, "view-sources.js"), "const "+h+" = (name) => '#/") {
			t.Errorf("%s is not a '#/…' route", h)
		}
	}
	if !strings.Contains(embedded(t, "stats.js"), "const link = (g) => '#/stats'") {
		t.Error("stats.js's link is not a '#/stats' route")
	}
}
