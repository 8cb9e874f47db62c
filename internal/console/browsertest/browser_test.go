//go:build linux

package browsertest

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/log"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"
)

// chromiumPath finds the browser: HOOKD_TEST_CHROMIUM, else chromium or
// chromium-browser on PATH. Without one the test skips, or fails under
// HOOKD_TEST_REQUIRE_SERVICES=1 (CI).
func chromiumPath(t *testing.T) string {
	t.Helper()
	if p := os.Getenv("HOOKD_TEST_CHROMIUM"); p != "" {
		if _, err := os.Stat(p); err != nil {
			t.Fatalf("HOOKD_TEST_CHROMIUM=%s: %v", p, err)
		}
		return p
	}
	for _, name := range []string{"chromium", "chromium-browser"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	msg := "no chromium on PATH (and HOOKD_TEST_CHROMIUM unset): the console's browser tests need it (apt-get install chromium)"
	if os.Getenv("HOOKD_TEST_REQUIRE_SERVICES") == "1" {
		t.Fatalf("%s; HOOKD_TEST_REQUIRE_SERVICES=1 makes this a failure", msg)
	}
	t.Skip(msg + "; set HOOKD_TEST_REQUIRE_SERVICES=1 to fail instead of skipping")
	return ""
}

// screenshotDir is where screenshots go: $HOOKD_SCREENSHOTS, else a
// temporary directory of the test.
func screenshotDir(t *testing.T) string {
	t.Helper()
	if d := os.Getenv("HOOKD_SCREENSHOTS"); d != "" {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatalf("HOOKD_SCREENSHOTS: %v", err)
		}
		return d
	}
	return t.TempDir()
}

// browser is one headless chromium with its own profile directory. Its
// tabs share that profile, so they share cookies as a user's tabs do.
type browser struct {
	t        *testing.T
	alloc    context.Context
	shots    string
	first    *tab
	timeouts time.Duration
}

// newBrowser makes a browser for t; it starts with its first tab and is
// stopped at cleanup.
func newBrowser(t *testing.T) *browser {
	t.Helper()
	path := chromiumPath(t)
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(path),
		chromedp.Headless,
		chromedp.NoSandbox, // tests run as root here
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.UserDataDir(t.TempDir()),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-quic", true),
		// hookd is on 127.0.0.1: never through a proxy the environment names.
		chromedp.Flag("no-proxy-server", true),
		chromedp.WindowSize(1280, 900),
	)
	alloc, cancel := chromedp.NewExecAllocator(context.Background(), opts...)
	t.Cleanup(cancel)
	return &browser{t: t, alloc: alloc, shots: screenshotDir(t), timeouts: stepTimeout}
}

// problem is something the page reported that fails a test unless it is
// expected: an error on the console, an uncaught exception, a browser log
// entry of level error (a failed request, a CSP violation).
type problem struct {
	kind   string // "console.error", "exception" or "log:<source>"
	text   string
	url    string
	tab    string
	source string
}

func (p problem) String() string {
	s := fmt.Sprintf("[%s] %s: %s", p.tab, p.kind, p.text)
	if p.url != "" {
		s += " (" + p.url + ")"
	}
	return s
}

// expectation marks problems a test causes on purpose.
type expectation struct {
	why   string
	match func(problem) bool
}

// tab is one browser tab (a page target) and what its page reported.
type tab struct {
	t    *testing.T
	b    *browser
	name string
	ctx  context.Context

	mu       sync.Mutex
	problems []problem
	expected []expectation
	checked  int // problems before this index were checked already
}

// newTab opens a tab in the browser (the first one starts the browser).
// Every tab expects the console's session probe to be refused while it
// is signed out: GET /api/v1/session answers 401, which the browser logs.
// At cleanup, any other problem the page reported fails the test.
func (b *browser) newTab(name string) *tab {
	t := b.t
	t.Helper()
	tb := &tab{t: t, b: b, name: name}
	parent := b.alloc
	if b.first != nil {
		parent = b.first.ctx
	}
	ctx, cancel := chromedp.NewContext(parent, chromedp.WithListener(tb.listen))
	tb.ctx = ctx
	t.Cleanup(cancel)
	// The first action starts the browser (or opens the tab): it gets no
	// timeout of its own, since the browser lives as long as the context
	// of its first action; a watchdog bounds it instead.
	started := make(chan error, 1)
	go func() { started <- chromedp.Do(ctx) }()
	select {
	case err := <-started:
		if err != nil {
			t.Fatalf("open tab %s: %v", name, err)
		}
	case <-time.After(2 * b.timeouts):
		cancel()
		t.Fatalf("open tab %s: no answer from the browser within %v", name, 2*b.timeouts)
	}
	if b.first == nil {
		b.first = tb
	}
	tb.expect("the console probes its session; signed out, GET /api/v1/session answers 401", func(p problem) bool {
		return p.source == "network" && strings.HasSuffix(p.url, "/api/v1/session") && strings.Contains(p.text, "status of 401")
	})
	t.Cleanup(tb.checkConsole)
	return tb
}

// listen records problems. It runs on the goroutine that reads the tab's
// messages, so it only appends under the lock.
func (tb *tab) listen(ev any) {
	var p problem
	switch e := ev.(type) {
	case *runtime.EventExceptionThrown:
		d := e.ExceptionDetails
		p = problem{kind: "exception", text: d.Text, url: d.URL}
		if d.Exception != nil && d.Exception.Description != "" {
			p.text += " " + d.Exception.Description
		}
	case *runtime.EventConsoleAPICalled:
		if e.Type != runtime.ConsoleAPICalledTypeError && e.Type != runtime.ConsoleAPICalledTypeAssert {
			return
		}
		var parts []string
		for _, a := range e.Args {
			switch {
			case a.Description != "":
				parts = append(parts, a.Description)
			case len(a.Value) > 0:
				parts = append(parts, string(a.Value))
			}
		}
		p = problem{kind: "console." + string(e.Type), text: strings.Join(parts, " ")}
	case *log.EventEntryAdded:
		if e.Entry == nil || e.Entry.Level != log.EntryLevelError {
			return
		}
		p = problem{kind: "log:" + string(e.Entry.Source), text: e.Entry.Text, url: e.Entry.URL, source: string(e.Entry.Source)}
	default:
		return
	}
	p.tab = tb.name
	tb.mu.Lock()
	tb.problems = append(tb.problems, p)
	tb.mu.Unlock()
}

// expect marks problems that match as caused on purpose; they are logged,
// not failed.
func (tb *tab) expect(why string, match func(problem) bool) {
	tb.mu.Lock()
	defer tb.mu.Unlock()
	tb.expected = append(tb.expected, expectation{why, match})
}

// takeProblems returns the problems reported since the last call.
func (tb *tab) takeProblems() []problem {
	tb.mu.Lock()
	defer tb.mu.Unlock()
	ps := append([]problem(nil), tb.problems[tb.checked:]...)
	tb.checked = len(tb.problems)
	return ps
}

// checkConsole fails the test on every problem reported since the last
// check that no expectation matches. Tests call it at their checkpoints;
// it runs again at cleanup.
func (tb *tab) checkConsole() {
	tb.t.Helper()
	for _, p := range tb.takeProblems() {
		if why := tb.expectedWhy(p); why != "" {
			tb.t.Logf("expected browser report: %v (%s)", p, why)
			continue
		}
		tb.t.Errorf("the page reported: %v", p)
	}
}

func (tb *tab) expectedWhy(p problem) string {
	tb.mu.Lock()
	defer tb.mu.Unlock()
	for _, e := range tb.expected {
		if e.match(p) {
			return e.why
		}
	}
	return ""
}

// do runs actions with the step timeout; on an error it saves a
// screenshot of the tab (fail-<tab>.png) and fails the test.
func (tb *tab) do(what string, actions ...chromedp.Action[chromedp.Void]) {
	tb.t.Helper()
	ctx, cancel := context.WithTimeout(tb.ctx, tb.b.timeouts)
	defer cancel()
	if err := chromedp.Do(ctx, actions...); err != nil {
		tb.fail(what, err)
	}
}

// run is do for one action that returns a value.
func run[T any](tb *tab, what string, action chromedp.Action[T]) T {
	tb.t.Helper()
	ctx, cancel := context.WithTimeout(tb.ctx, tb.b.timeouts)
	defer cancel()
	v, err := chromedp.Run(ctx, action)
	if err != nil {
		tb.fail(what, err)
	}
	return v
}

func (tb *tab) fail(what string, err error) {
	tb.t.Helper()
	if errors.Is(err, context.DeadlineExceeded) {
		err = fmt.Errorf("not done within %v: %w", tb.b.timeouts, err)
	}
	ctx, cancel := context.WithTimeout(tb.ctx, 5*time.Second)
	defer cancel()
	if png, serr := chromedp.Run(ctx, chromedp.FullScreenshot(100)); serr == nil {
		name := filepath.Join(tb.b.shots, strings.ReplaceAll("fail-"+tb.t.Name()+"-"+tb.name+".png", "/", "_"))
		if os.WriteFile(name, png, 0o644) == nil {
			tb.t.Logf("screenshot of the failure: %s", name)
		}
	}
	tb.t.Fatalf("[%s] %s: %v", tb.name, what, err)
}

// open loads the console at base with the route hash ("#/events").
func (tb *tab) open(base, hash string) {
	tb.t.Helper()
	tb.do("open the console", chromedp.Navigate(base+"/console/"+hash))
}

// signIn signs in through the token form and waits until the form is
// gone and the header says so.
func (tb *tab) signIn(token string) {
	tb.t.Helper()
	tb.do("sign in with the token form",
		chromedp.WaitVisible(chromedp.CSS("#token-input")),
		chromedp.SendKeys(chromedp.CSS("#token-input"), token),
		chromedp.Click(chromedp.CSS(`#token-form button[type="submit"]`)),
		chromedp.WaitNotVisible(chromedp.CSS("#auth")),
	)
	tb.waitText("#auth-label", "Signed in")
}

// waitVisible waits until an element matching the CSS selector is visible.
func (tb *tab) waitVisible(sel string) {
	tb.t.Helper()
	tb.do("wait for "+sel, chromedp.WaitVisible(chromedp.CSS(sel)))
}

// click clicks the first element matching the CSS selector, once visible.
func (tb *tab) click(sel string) {
	tb.t.Helper()
	tb.do("click "+sel, chromedp.WaitVisible(chromedp.CSS(sel)), chromedp.Click(chromedp.CSS(sel)))
}

// text is the visible text of the first element matching the selector.
func (tb *tab) text(sel string) string {
	tb.t.Helper()
	return run(tb, "read "+sel, chromedp.Text(chromedp.CSS(sel)))
}

// eval evaluates a JavaScript expression in the page (a promise is
// awaited) and decodes its value.
func eval[T any](tb *tab, what, expr string) T {
	tb.t.Helper()
	return run(tb, what, chromedp.Evaluate[T](expr, chromedp.EvalAwaitPromise))
}

// waitJS waits until the JavaScript expression is truthy, checking every
// 50 ms (not on animation frames, which a background tab may not get).
func (tb *tab) waitJS(what, expr string) {
	tb.t.Helper()
	tb.do(what, chromedp.Func(func(ctx context.Context, t *chromedp.Target) error {
		_, err := chromedp.Poll[chromedp.Void](expr, chromedp.WithPollingInterval(50*time.Millisecond),
			chromedp.WithPollingTimeout(0))(ctx, t)
		return err
	}))
}

// waitText waits until the element's text contains want.
func (tb *tab) waitText(sel, want string) {
	tb.t.Helper()
	tb.waitJS(fmt.Sprintf("wait for %q in %s", want, sel), fmt.Sprintf(
		`(() => { const e = document.querySelector(%s); return !!e && e.textContent.includes(%s); })()`, jsString(sel), jsString(want)))
}

// screenshot saves a full-page PNG as name in the screenshot directory.
func (tb *tab) screenshot(name string) string {
	tb.t.Helper()
	png := run(tb, "screenshot "+name, chromedp.FullScreenshot(100))
	p := filepath.Join(tb.b.shots, name)
	if err := os.WriteFile(p, png, 0o644); err != nil {
		tb.t.Fatalf("save %s: %v", p, err)
	}
	tb.t.Logf("screenshot %s (%d bytes)", p, len(png))
	return p
}

// jsString quotes s as a JavaScript string literal.
func jsString(s string) string {
	var b strings.Builder
	b.WriteByte('"')
	for _, r := range s {
		switch {
		case r == '"' || r == '\\':
			b.WriteByte('\\')
			b.WriteRune(r)
		case r < 0x20 || r == 0x2028 || r == 0x2029:
			fmt.Fprintf(&b, `\u%04x`, r)
		default:
			b.WriteRune(r)
		}
	}
	b.WriteByte('"')
	return b.String()
}
