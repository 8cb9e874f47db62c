//go:build linux

package browsertest

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"
)

// eventLink selects the link to an event's detail.
func eventLink(id string) string { return `#view a[href="#/events/` + id + `"]` }

// The harness is not blind: an error on the console, an uncaught
// exception and a Content Security Policy violation are all reported
// (and would fail a test that did not expect them).
func TestHarnessSeesPageErrors(t *testing.T) {
	b := newBrowser(t)
	s := startHookd(t)
	tb := b.newTab("tab1")
	tb.open(s.Base, "#/events")
	tb.waitVisible("#token-input")
	eval[chromedp.Void](tb, "cause page errors", `(() => {
		console.error('probe: console.error');
		setTimeout(() => { throw new Error('probe: uncaught'); }, 0);
		const s = document.createElement('script');
		s.textContent = 'window.probeInline = 1';
		document.head.append(s);
		return null;
	})()`)
	want := map[string]func(problem) bool{
		"console.error": func(p problem) bool {
			return p.kind == "console.error" && strings.Contains(p.text, "probe: console.error")
		},
		"exception": func(p problem) bool { return p.kind == "exception" && strings.Contains(p.text, "probe: uncaught") },
		"CSP violation": func(p problem) bool {
			return strings.Contains(p.text, "Content Security Policy") && strings.Contains(p.text, "script")
		},
	}
	var got []problem
	deadline := time.Now().Add(stepTimeout)
	for {
		got = append(got, tb.takeProblems()...)
		missing := []string{}
		for name, match := range want {
			found := false
			for _, p := range got {
				found = found || match(p)
			}
			if !found {
				missing = append(missing, name)
			}
		}
		if len(missing) == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the harness did not see %v; it saw %v", missing, got)
		}
		time.Sleep(20 * time.Millisecond)
	}
	for _, p := range got {
		t.Logf("seen: %v", p)
	}
	if inline := eval[bool](tb, "read probeInline", `window.probeInline === 1`); inline {
		t.Error("the inline script ran: the console's CSP did not apply")
	}
}

// Sign-in through the token form shows the events view with an event
// ingested through the real HTTP API, and its detail: the body as pretty
// JSON, digits kept, and the attempts of both deliveries.
func TestSignInEventsAndDetail(t *testing.T) {
	b := newBrowser(t)
	s := startHookd(t)
	body := `{"id":"ord-1001","type":"order.created","total":12345678901234567890,"items":[{"sku":"A-1","qty":2}]}`
	id := s.ingest(t, body)
	s.waitDelivery(t, id, "warehouse", "succeeded")
	s.waitDelivery(t, id, "ledger", "succeeded")

	tb := b.newTab("tab1")
	tb.open(s.Base, "#/events")
	tb.signIn(adminToken)
	tb.waitVisible(eventLink(id))
	row := eval[string](tb, "read the event's row", `document.querySelector(`+jsString(eventLink(id))+`).closest('tr').textContent`)
	for _, want := range []string{"shop", "order.created", "ord-1001", id} {
		if !strings.Contains(row, want) {
			t.Errorf("the event's row %q does not show %q", row, want)
		}
	}
	tb.screenshot("events.png")

	tb.click(eventLink(id))
	tb.waitVisible("pre.body")
	tb.waitJS("both delivery cards", `document.querySelectorAll('.delivery').length === 2`)
	pretty := eval[string](tb, "read the body", `document.querySelector('pre.body').textContent`)
	for _, want := range []string{"{\n  \"id\": \"ord-1001\",", "\"total\": 12345678901234567890,", "\"items\": [\n    {\n      \"sku\": \"A-1\","} {
		if !strings.Contains(pretty, want) {
			t.Errorf("the body shown is not pretty JSON with %q:\n%s", want, pretty)
		}
	}
	cards := eval[[]string](tb, "read the delivery cards", `[...document.querySelectorAll('.delivery')].map((c) =>
		c.querySelector('h3').textContent + ' ' + c.querySelector('.badge').textContent + ' | ' +
		[...c.querySelectorAll('ol.timeline li')].map((li) => li.className + ': ' + li.textContent).join(' | '))`)
	for _, dest := range []string{"warehouse", "ledger"} {
		found := false
		for _, c := range cards {
			if strings.HasPrefix(c, dest+" succeeded | ok: Attempt 1") && strings.Contains(c, "200") {
				found = true
			}
		}
		if !found {
			t.Errorf("no card shows the delivery to %s succeeded on attempt 1 with 200; cards: %q", dest, cards)
		}
	}
	tb.screenshot("event.png")
	tb.checkConsole()
}

// cookie reads the browser's cookie name for url through the DevTools
// protocol (the console's cookie is HttpOnly: no script reads it).
func cookie(tb *tab, url, name string) *network.Cookie {
	tb.t.Helper()
	cookies := run(tb, "read the cookies", func(ctx context.Context, t *chromedp.Target) ([]*network.Cookie, error) {
		res, err := cdp.Call(ctx, t, network.GetCookies, network.GetCookiesParams{URLs: []string{url}})
		if err != nil {
			return nil, err
		}
		return res.Cookies, nil
	})
	for _, c := range cookies {
		if c.Name == name {
			return c
		}
	}
	return nil
}

// The session is the browser's, not the tab's: a second tab is signed in
// without the token, and signing out there ends the session for the first
// tab and on the server (the old cookie, replayed, gets 401).
func TestSessionAcrossTabs(t *testing.T) {
	b := newBrowser(t)
	s := startHookd(t)
	id := s.ingest(t, `{"id":"ord-2001","type":"order.created"}`)

	one := b.newTab("tab1")
	one.open(s.Base, "#/events")
	one.signIn(adminToken)
	one.waitVisible(eventLink(id))
	c := cookie(one, s.Base, "hookd_session")
	if c == nil {
		t.Fatal("after sign-in the browser holds no hookd_session cookie")
	}
	if !c.HTTPOnly || c.SameSite != network.CookieSameSiteStrict {
		t.Errorf("the session cookie is HttpOnly=%v SameSite=%q, want HttpOnly and Strict", c.HTTPOnly, c.SameSite)
	}
	if code := s.sessionStatus(t, c.Name, c.Value); code != http.StatusOK {
		t.Fatalf("the session cookie replayed by a Go client before sign-out: %d, want 200", code)
	}
	t.Logf("tab 1 signed in with the token form; cookie %s (HttpOnly=%v, SameSite=%s) replayed by a Go client: 200", c.Name, c.HTTPOnly, c.SameSite)

	two := b.newTab("tab2")
	two.open(s.Base, "#/events")
	two.waitText("#auth-label", "Signed in")
	two.waitVisible(eventLink(id))
	if hidden := eval[bool](two, "is the token form hidden", `document.getElementById('auth').hidden`); !hidden {
		t.Error("tab 2 shows the token form although the browser has a session")
	}
	t.Logf("tab 2 opened signed in, without the token: label %q, event %s listed", two.text("#auth-label"), id)

	two.click("#auth-forget")
	two.waitText("#auth-label", "Signed out")
	two.waitVisible("#token-input")
	t.Logf("tab 2 signed out: label %q, message %q", two.text("#auth-label"), two.text("#auth-message"))

	// Tab 1 still believes it is signed in until its next action.
	one.expect("tab 2 signed out: tab 1's next API call answers 401", func(p problem) bool {
		return p.source == "network" && strings.Contains(p.url, "/api/v1/") && strings.Contains(p.text, "status of 401")
	})
	one.click(`#nav a[data-view="failed"]`)
	one.waitVisible("#token-input")
	one.waitText("#auth-label", "Signed out")
	msg := one.text("#auth-message")
	if !strings.Contains(msg, "401") {
		t.Errorf("tab 1's sign-in panel says %q, want it to say the API answered 401", msg)
	}
	t.Logf("tab 1's next action (Failed queue): label %q, panel %q", one.text("#auth-label"), msg)

	inBrowser := eval[int](one, "GET /api/v1/session from tab 1", `fetch('/api/v1/session', {credentials: 'same-origin', cache: 'no-store'}).then((r) => r.status)`)
	if inBrowser != http.StatusUnauthorized {
		t.Errorf("GET /api/v1/session from tab 1 after the sign-out: %d, want 401", inBrowser)
	}
	replayed := s.sessionStatus(t, c.Name, c.Value)
	if replayed != http.StatusUnauthorized {
		t.Errorf("the old session cookie replayed by a Go client after the sign-out: %d, want 401", replayed)
	}
	left := cookie(one, s.Base, "hookd_session")
	t.Logf("after the sign-out: GET /api/v1/session from tab 1 = %d; old cookie replayed by a Go client = %d; browser still holds a hookd_session cookie: %v",
		inBrowser, replayed, left != nil)
	one.checkConsole()
	two.checkConsole()
}

// A destination answering 500 puts the delivery in the failed queue once
// its small retry policy is spent; once the destination answers again,
// Retry in the failed queue delivers it.
func TestFailedQueueRetry(t *testing.T) {
	b := newBrowser(t)
	s := startHookd(t)
	s.Ledger.setStatus(http.StatusInternalServerError)
	id := s.ingest(t, `{"id":"ord-3001","type":"order.created"}`)
	s.waitDelivery(t, id, "ledger", "failed")

	tb := b.newTab("tab1")
	tb.open(s.Base, "#/failed")
	tb.signIn(adminToken)
	tb.waitVisible(eventLink(id))
	row := eval[string](tb, "read the failed row", `document.querySelector(`+jsString(eventLink(id))+`).closest('tr').textContent`)
	for _, want := range []string{"ledger", "500", "Retry", "Cancel"} {
		if !strings.Contains(row, want) {
			t.Errorf("the failed queue's row %q does not show %q", row, want)
		}
	}
	tb.screenshot("failed.png")

	s.Ledger.setStatus(http.StatusOK)
	retry := fmt.Sprintf(`//tr[.//a[@href="#/events/%s"]]//button[normalize-space()="Retry"]`, id)
	tb.do("click Retry", chromedp.WaitVisible(chromedp.Search(retry)), chromedp.Click(chromedp.Search(retry)))
	tb.waitText("#flash", "Retry queued")
	s.waitDelivery(t, id, "ledger", "succeeded")

	tb.click(`#view .toolbar button:not(.danger)`) // Refresh
	tb.waitText("#view tbody", "The failed queue is empty.")
	tb.open(s.Base, "#/events/"+id)
	tb.waitJS("the ledger card", `[...document.querySelectorAll('.delivery h3')].some((h) => h.textContent === 'ledger')`)
	card := eval[string](tb, "read the ledger card", `[...document.querySelectorAll('.delivery')].find((c) => c.querySelector('h3').textContent === 'ledger').textContent`)
	for _, want := range []string{"succeeded", "Attempt 1", "Attempt 2", "Attempt 3", "500", "200"} {
		if !strings.Contains(card, want) {
			t.Errorf("the ledger delivery card %q does not show %q", card, want)
		}
	}
	t.Logf("after Retry: %s", card)
	tb.screenshot("retried.png")
	tb.checkConsole()
}

// chart is what a stats chart shows: the sum over its bars of each
// series (read from the bars' tooltips, the only place the chart gives
// its numbers) and how many bars it draws.
type chart struct {
	Sums map[string]int `json:"sums"`
	Bars int            `json:"bars"`
}

// readCharts reads every chart of the view, by caption.
const readCharts = `(() => {
	const out = {};
	for (const f of document.querySelectorAll('figure.chart-box')) {
		const caption = f.querySelector('figcaption').firstChild.textContent;
		const bars = f.querySelectorAll('svg rect:not(.chart-bg)');
		const tips = {};
		for (const r of bars) {
			const t = r.querySelector('title');
			if (t) tips[r.getAttribute('x')] = t.textContent;
		}
		const sums = {};
		for (const tip of Object.values(tips)) {
			for (const m of tip.matchAll(/(succeeded|retried|failed|events) (\d+)/g)) sums[m[1]] = (sums[m[1]] || 0) + Number(m[2]);
		}
		out[caption] = {sums, bars: bars.length};
	}
	return out;
})()`

func chartNamed(charts map[string]chart, prefix string) (chart, bool) {
	for caption, c := range charts {
		if strings.HasPrefix(caption, prefix) {
			return c, true
		}
	}
	return chart{}, false
}

// The destinations view's charts count what happened: after N more
// events, the source's chart shows N more events and the destination's
// N more successful attempts.
func TestStatsChartMoves(t *testing.T) {
	const n = 5
	b := newBrowser(t)
	s := startHookd(t)
	first := s.ingest(t, `{"id":"ord-4000","type":"order.created"}`)
	s.waitDelivery(t, first, "warehouse", "succeeded")

	tb := b.newTab("tab1")
	tb.open(s.Base, "#/destinations")
	tb.signIn(adminToken)
	tb.waitJS("the charts", `document.querySelectorAll('figure.chart-box svg').length >= 2`)
	before := eval[map[string]chart](tb, "read the charts", readCharts)
	src, ok1 := chartNamed(before, "Source shop")
	dst, ok2 := chartNamed(before, "Destination warehouse")
	if !ok1 || !ok2 {
		t.Fatalf("no chart for source shop or destination warehouse: %v", before)
	}
	if src.Sums["events"] != 1 || dst.Sums["succeeded"] != 1 {
		t.Errorf("before: the charts show %d events and %d successful attempts, want 1 and 1", src.Sums["events"], dst.Sums["succeeded"])
	}

	for i := 1; i <= n; i++ {
		id := s.ingest(t, fmt.Sprintf(`{"id":"ord-400%d","type":"order.created"}`, i))
		s.waitDelivery(t, id, "warehouse", "succeeded")
	}
	tb.click(`#view .toolbar button`) // Refresh
	tb.waitJS("the charts to count the new events", fmt.Sprintf(`(() => {
		const c = %s;
		const k = Object.keys(c).find((k) => k.startsWith('Source shop'));
		return k && c[k].sums.events === %d;
	})()`, readCharts, 1+n))
	after := eval[map[string]chart](tb, "read the charts", readCharts)
	src2, _ := chartNamed(after, "Source shop")
	dst2, _ := chartNamed(after, "Destination warehouse")
	if src2.Sums["events"] != 1+n || dst2.Sums["succeeded"] != 1+n || src2.Bars < 1 || dst2.Bars < 1 {
		t.Errorf("after %d more events: the charts show %d events and %d successful attempts in %d and %d bars, want %d and %d",
			n, src2.Sums["events"], dst2.Sums["succeeded"], src2.Bars, dst2.Bars, 1+n, 1+n)
	}
	t.Logf("stats charts: source shop events %d → %d (%d → %d bars); destination warehouse succeeded %d → %d",
		src.Sums["events"], src2.Sums["events"], src.Bars, src2.Bars, dst.Sums["succeeded"], dst2.Sums["succeeded"])
	tb.screenshot("stats.png")
	tb.checkConsole()
}

// A phone-sized viewport (390 px): no view is wider than the screen. Dark
// mode follows the system: with prefers-color-scheme: dark the page's
// background is dark.
func TestMobileAndDark(t *testing.T) {
	b := newBrowser(t)
	s := startHookd(t)
	id := s.ingest(t, `{"id":"ord-5001","type":"order.created"}`)
	s.waitDelivery(t, id, "warehouse", "succeeded")

	tb := b.newTab("tab1")
	tb.do("emulate a 390 px phone", chromedp.EmulateViewport(390, 844))
	tb.open(s.Base, "#/events")
	tb.signIn(adminToken)
	tb.waitVisible(eventLink(id))
	width := eval[int](tb, "read the viewport width", `window.innerWidth`)
	if width != 390 {
		t.Fatalf("window.innerWidth is %d, want the emulated 390", width)
	}
	for _, view := range []string{"#/events", "#/events/" + id, "#/failed", "#/destinations", "#/sources"} {
		tb.do("open "+view, chromedp.Evaluate[chromedp.Void](`location.hash = `+jsString(view)))
		tb.waitJS("the view "+view, `!document.querySelector('#view').textContent.includes('Loading…') && document.querySelector('#view table, #view .panel') !== null`)
		sw := eval[int](tb, "read the page width", `document.documentElement.scrollWidth`)
		if sw > 390 {
			t.Errorf("390 px, %s: the page is %d px wide, wider than the viewport", view, sw)
		} else {
			t.Logf("390 px, %s: no horizontal overflow (scrollWidth %d)", view, sw)
		}
		if view == "#/events" {
			tb.screenshot("mobile.png")
		}
	}

	tb.do("back to a desktop viewport, in dark mode",
		chromedp.EmulateViewport(1280, 900),
		chromedp.Func(func(ctx context.Context, t *chromedp.Target) error {
			_, err := cdp.Call(ctx, t, emulation.SetEmulatedMedia, emulation.SetEmulatedMediaParams{
				Features: []*emulation.MediaFeature{{Name: "prefers-color-scheme", Value: "dark"}},
			})
			return err
		}))
	tb.do("open the events", chromedp.Evaluate[chromedp.Void](`location.hash = '#/events'`))
	tb.waitVisible(eventLink(id))
	if dark := eval[bool](tb, "read the color scheme", `matchMedia('(prefers-color-scheme: dark)').matches`); !dark {
		t.Fatal("the page does not see prefers-color-scheme: dark")
	}
	bg := eval[string](tb, "read the background", `getComputedStyle(document.body).backgroundColor`)
	t.Logf("dark mode: body background %s", bg)
	if l := luminance(bg); l < 0 || l > 0.3 {
		t.Errorf("dark mode: the body's background is %s, want a dark colour", bg)
	}
	tb.screenshot("dark.png")
	tb.checkConsole()
}

// luminance is the relative brightness, 0 (black) to 1 (white), of a CSS
// rgb()/rgba() colour as getComputedStyle gives it; -1 when it is not one.
func luminance(css string) float64 {
	var r, g, b float64
	if _, err := fmt.Sscanf(strings.Replace(css, "rgba", "rgb", 1), "rgb(%g, %g, %g", &r, &g, &b); err != nil {
		return -1
	}
	return (0.2126*r + 0.7152*g + 0.0722*b) / 255
}
