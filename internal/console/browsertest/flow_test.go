//go:build linux

package browsertest

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// An operator's whole flow through the console (hookd issue 15): a new
// destination and subscription made with the forms, the stats moving by
// what was sent, the events found by type and one replayed by hand; then
// a bulk replay and a test event; and deletes that ask first.

// received is one request a recorder got.
type received struct {
	ID     string // webhook-id: the event's id
	Type   string // Hookd-Event-Type
	Source string // Hookd-Source
	Body   string
}

// recorder is an http destination's receiver on 127.0.0.1 that keeps
// every request it gets (at most 1 MiB of each body) and answers 200.
type recorder struct {
	srv *httptest.Server

	mu   sync.Mutex
	reqs []received
}

func newRecorder(t *testing.T) *recorder {
	r := &recorder{}
	r.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		b, _ := io.ReadAll(io.LimitReader(req.Body, 1<<20))
		r.mu.Lock()
		r.reqs = append(r.reqs, received{ID: req.Header.Get("webhook-id"), Type: req.Header.Get("Hookd-Event-Type"),
			Source: req.Header.Get("Hookd-Source"), Body: string(b)})
		r.mu.Unlock()
		w.WriteHeader(http.StatusOK)
	}))
	t.Cleanup(r.srv.Close)
	return r
}

// all is a copy of the requests received so far, in order.
func (r *recorder) all() []received {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.reqs)
}

// count is how many requests carried the event id.
func (r *recorder) count(id string) int {
	n := 0
	for _, q := range r.all() {
		if q.ID == id {
			n++
		}
	}
	return n
}

// waitCounts waits until the recorder got each id exactly want times.
func (r *recorder) waitCounts(t *testing.T, ids []string, want int) {
	t.Helper()
	deadline := time.Now().Add(stepTimeout)
	for {
		var off []string
		for _, id := range ids {
			if n := r.count(id); n != want {
				off = append(off, fmt.Sprintf("%s ×%d", id, n))
			}
		}
		if len(off) == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("after %v the sink did not get each event %d times: %v", stepTimeout, want, off)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// waitLen waits until the recorder got at least n requests.
func (r *recorder) waitLen(t *testing.T, n int) []received {
	t.Helper()
	deadline := time.Now().Add(stepTimeout)
	for {
		if all := r.all(); len(all) >= n {
			return all
		}
		if time.Now().After(deadline) {
			t.Fatalf("after %v the sink got %d requests, want %d", stepTimeout, len(r.all()), n)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// call sends an admin API request with the admin token and returns the
// status and (at most 4 MiB of) the body.
func (s *server) call(t *testing.T, method, path, body string) (int, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, s.Base+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+adminToken)
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := s.client.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 4<<20))
	return resp.StatusCode, b
}

// waitAttempts waits until the event's delivery to destination has
// succeeded after attempts attempts in all.
func (s *server) waitAttempts(t *testing.T, eventID, destination string, attempts int) {
	t.Helper()
	deadline := time.Now().Add(stepTimeout)
	for {
		var ev struct {
			Deliveries []struct {
				Destination  string `json:"destination"`
				Status       string `json:"status"`
				AttemptCount int    `json:"attempt_count"`
			} `json:"deliveries"`
		}
		s.get(t, "/api/v1/events/"+eventID, &ev)
		for _, d := range ev.Deliveries {
			if d.Destination == destination && d.Status == "succeeded" && d.AttemptCount == attempts {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("the delivery of %s to %s did not succeed after %d attempts within %v: %+v", eventID, destination, attempts, stepTimeout, ev.Deliveries)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// subscriptionAPI is a subscription as the API shows it.
type subscriptionAPI struct {
	ID          string   `json:"id"`
	Source      string   `json:"source"`
	Destination string   `json:"destination"`
	Events      []string `json:"events"`
	Active      bool     `json:"active"`
	Origin      string   `json:"origin"`
}

// subscriptionsTo lists the subscriptions to destination.
func (s *server) subscriptionsTo(t *testing.T, destination string) []subscriptionAPI {
	t.Helper()
	var res struct {
		Data []subscriptionAPI `json:"data"`
	}
	s.get(t, "/api/v1/subscriptions?limit=100", &res)
	var out []subscriptionAPI
	for _, sub := range res.Data {
		if sub.Destination == destination {
			out = append(out, sub)
		}
	}
	return out
}

// fill replaces the value of the input or textarea by typing text into
// it, as a user does after selecting what was there.
func (tb *tab) fill(sel, text string) {
	tb.t.Helper()
	tb.do("fill "+sel,
		chromedp.WaitVisible(chromedp.CSS(sel)),
		chromedp.Evaluate[chromedp.Void](`(() => { const e = document.querySelector(`+jsString(sel)+`); e.focus(); e.select(); return null; })()`),
		chromedp.SendKeys(chromedp.CSS(sel), text))
}

// pick chooses the option value of a select, firing the change event a
// user's pick fires.
func (tb *tab) pick(sel, value string) {
	tb.t.Helper()
	tb.waitJS("the option "+value+" of "+sel, `(() => { const e = document.querySelector(`+jsString(sel)+`);
		return !!e && [...e.options].some((o) => o.value === `+jsString(value)+`); })()`)
	eval[chromedp.Void](tb, "pick "+value+" in "+sel, `(() => { const e = document.querySelector(`+jsString(sel)+`);
		e.value = `+jsString(value)+`; e.dispatchEvent(new Event('change', {bubbles: true})); return null; })()`)
}

// goHash sets the location's hash, as following a link of the console does.
func (tb *tab) goHash(hash string) {
	tb.t.Helper()
	eval[chromedp.Void](tb, "go to "+hash, `(() => { location.hash = `+jsString(hash)+`; return null; })()`)
}

// waitHash waits until the location's hash is want.
func (tb *tab) waitHash(want string) {
	tb.t.Helper()
	tb.waitJS("the hash "+want, `location.hash === `+jsString(want))
}

// statsRead is what the stats view shows: each chart's data-total, the
// succeeded and failed attempts of one destination's bar, and the window
// drawn.
type statsRead struct {
	Window     string `json:"window"`
	Events     int    `json:"events"`
	Deliveries int    `json:"deliveries"`
	Outcomes   int    `json:"outcomes"`
	Succeeded  int    `json:"succeeded"`
	Failed     int    `json:"failed"`
	Retried    int    `json:"retried"`
}

// readStats reads the stats view; destination's bar gives Succeeded,
// Retried and Failed.
func readStats(tb *tab, destination string) statsRead {
	tb.t.Helper()
	return eval[statsRead](tb, "read the stats charts", `(() => {
		const total = (id) => Number(document.getElementById(id).getAttribute('data-total'));
		const bar = (outcome) => {
			const r = [...document.querySelectorAll('#chart-deliveries rect[data-outcome]')].find((r) =>
				r.getAttribute('data-destination') === `+jsString(destination)+` && r.getAttribute('data-outcome') === outcome);
			return r ? Number(r.getAttribute('data-value')) : 0;
		};
		return {window: document.getElementById('stats-charts').getAttribute('data-window'),
			events: total('chart-events'), deliveries: total('chart-deliveries'), outcomes: total('chart-outcomes'),
			succeeded: bar('succeeded'), failed: bar('failed'), retried: bar('retried')};
	})()`)
}

// chartsDrawn is a JavaScript condition: the stats view shows the window's
// charts.
func chartsDrawn(window string) string {
	return `!!document.querySelector('#stats-charts[data-window="` + window + `"] #chart-events') &&
		!!document.querySelector('#stats-charts[data-window="` + window + `"] #chart-deliveries')`
}

// listedEvents is a JavaScript expression: the ids of the events table's
// rows, in order.
const listedEvents = `[...document.querySelectorAll('#events-table tr[data-event-id]')].map((r) => r.getAttribute('data-event-id'))`

// markEventsTable marks the events table shown now, so that a wait can
// tell the table of the next route from it.
func markEventsTable(tb *tab) {
	tb.t.Helper()
	tb.waitVisible("#events-table")
	eval[chromedp.Void](tb, "mark the events table", `(() => { document.getElementById('events-table').setAttribute('data-old', ''); return null; })()`)
}

// waitEventsListed waits until a new events table (not one marked by
// markEventsTable) has loaded its first page, and returns its ids.
func waitEventsListed(tb *tab) []string {
	tb.t.Helper()
	tb.waitJS("the events listed", `(() => { const t = document.querySelector('#events-table:not([data-old])');
		return !!t && t.tBodies[0].rows.length > 0; })()`)
	return eval[[]string](tb, "read the events listed", listedEvents)
}

func sameSet(a, b []string) bool {
	x, y := slices.Clone(a), slices.Clone(b)
	slices.Sort(x)
	slices.Sort(y)
	return slices.Equal(x, y)
}

// The operator's flow of the issue: sign in; create a destination with the
// form (a bad URL first, refused at the URL field), then a subscription
// of order.* to it; see the stats move by exactly what was ingested and
// delivered; find the order.* events; replay one to the new destination.
func TestOperatorFlow(t *testing.T) {
	b := newBrowser(t)
	s := startHookd(t)
	orders := newRecorder(t)

	// Some traffic before the new destination exists: the stats start
	// from it, and none of it reaches the new sink.
	early := []string{
		s.ingest(t, `{"id":"ord-9001","type":"order.created","total":10}`),
		s.ingest(t, `{"id":"usr-9001","type":"user.created"}`),
	}
	for _, id := range early {
		s.waitDelivery(t, id, "warehouse", "succeeded")
		s.waitDelivery(t, id, "ledger", "succeeded")
	}

	tb := b.newTab("operator")
	tb.open(s.Base, "#/destinations/new")
	tb.signIn(adminToken)

	// 1. A destination through the form; its URL first with a typo.
	tb.waitVisible("#destination-form")
	tb.fill(`#destination-form input[name="name"]`, "orders")
	if typ := run(tb, "read the type", chromedp.Value(chromedp.CSS(`#destination-form select[name="type"]`))); typ != "http" {
		t.Errorf("the new destination form's type is %q, want http preselected", typ)
	}
	badURL := strings.Replace(orders.srv.URL, "http://", "http//", 1) + "/orders"
	tb.fill(`#destination-form input[name="url"]`, badURL)
	tb.expect("a destination with a bad URL: POST /api/v1/destinations answers 400", func(p problem) bool {
		return p.source == "network" && strings.HasSuffix(p.url, "/api/v1/destinations") && strings.Contains(p.text, "status of 400")
	})
	tb.click(`#destination-form button[type="submit"]`)
	tb.waitVisible(`#destination-form [data-error-for="url"]`)
	urlErr := tb.text(`#destination-form [data-error-for="url"]`)
	if !strings.Contains(urlErr, "http://") || !strings.Contains(urlErr, "absolute") {
		t.Errorf("the URL's error says %q, want it to ask for an absolute http:// or https:// URL", urlErr)
	}
	if other := eval[[]string](tb, "read the other errors", `[...document.querySelectorAll('#destination-form [data-error-for]')]
		.filter((e) => !e.hidden && e.getAttribute('data-error-for') !== 'url').map((e) => e.getAttribute('data-error-for') + ': ' + e.textContent)`); len(other) > 0 {
		t.Errorf("errors shown beside the URL's: %q", other)
	}
	if inv := eval[string](tb, "read aria-invalid", `document.querySelector('#destination-form input[name="url"]').getAttribute('aria-invalid') || ''`); inv != "true" {
		t.Errorf("the URL input's aria-invalid is %q, want true", inv)
	}
	if code, _ := s.call(t, http.MethodGet, "/api/v1/destinations/orders", ""); code != http.StatusNotFound {
		t.Fatalf("after the refused form, GET /api/v1/destinations/orders: %d, want 404", code)
	}
	t.Logf("bad URL %q refused at the URL field: %q", badURL, urlErr)
	tb.screenshot("flow-destination-error.png")
	tb.checkConsole()

	goodURL := orders.srv.URL + "/orders"
	tb.fill(`#destination-form input[name="url"]`, goodURL)
	tb.click(`#destination-form button[type="submit"]`)
	tb.waitHash("#/destinations/orders")
	tb.waitText("#destination-url", goodURL)
	tb.waitText("#flash", "Destination orders created.")
	var dest struct {
		Name       string         `json:"name"`
		Type       string         `json:"type"`
		Origin     string         `json:"origin"`
		Definition map[string]any `json:"definition"`
	}
	s.get(t, "/api/v1/destinations/orders", &dest)
	if dest.Type != "http" || dest.Origin != "api" || dest.Definition["url"] != goodURL {
		t.Fatalf("the destination created: type %q origin %q url %v, want http, api, %s", dest.Type, dest.Origin, dest.Definition["url"], goodURL)
	}
	tb.screenshot("flow-destination-created.png")

	// 2. A subscription of shop's order.* events to it.
	tb.goHash("#/destinations")
	tb.click("#new-subscription")
	tb.waitHash("#/subscriptions/new")
	tb.waitVisible("#subscription-form")
	tb.pick(`#subscription-form select[name="source"]`, "shop")
	tb.pick(`#subscription-form select[name="destination"]`, "orders")
	tb.fill(`#subscription-form input[name="events"]`, "order.*")
	tb.click(`#subscription-form button[type="submit"]`)
	tb.waitHash("#/destinations")
	tb.waitText("#flash", "Subscription ")
	subs := s.subscriptionsTo(t, "orders")
	if len(subs) != 1 || subs[0].Source != "shop" || !slices.Equal(subs[0].Events, []string{"order.*"}) || !subs[0].Active || subs[0].Origin != "api" {
		t.Fatalf("subscriptions to orders after the form: %+v, want one active API subscription of shop's order.*", subs)
	}
	if msg := tb.text("#flash"); msg != "Subscription "+subs[0].ID+" created." {
		t.Errorf("the flash says %q, want %q", msg, "Subscription "+subs[0].ID+" created.")
	}
	subRow := `#subscriptions tr[data-subscription="` + subs[0].ID + `"]`
	tb.waitVisible(subRow)
	if row := tb.text(subRow); !strings.Contains(row, "shop") || !strings.Contains(row, "orders") || !strings.Contains(row, "order.*") {
		t.Errorf("the subscription's row says %q, want shop, orders and order.*", row)
	}
	tb.screenshot("flow-subscription-created.png")
	tb.checkConsole()

	// 3. The stats before.
	tb.goHash("#/stats")
	tb.waitJS("the stats charts", chartsDrawn("1h"))
	before := readStats(tb, "orders")
	t.Logf("stats before (1h): %+v", before)
	if before.Events != len(early) || before.Deliveries != 2*len(early) || before.Succeeded != 0 {
		t.Errorf("stats before: %d events, %d attempts, %d to orders; want %d, %d, 0", before.Events, before.Deliveries, before.Succeeded, len(early), 2*len(early))
	}
	tb.screenshot("flow-stats-before.png")

	// 4. Traffic: order.* goes to orders too, user.created does not.
	bodies := []string{
		`{"id":"ord-1","type":"order.created","total":101}`,
		`{"id":"usr-1","type":"user.created"}`,
		`{"id":"ord-2","type":"order.paid","total":102}`,
		`{"id":"ord-3","type":"order.created","total":103}`,
		`{"id":"usr-2","type":"user.created"}`,
		`{"id":"ord-4","type":"order.paid","total":104}`,
	}
	var orderIDs, userIDs []string
	for _, body := range bodies {
		id := s.ingest(t, body)
		if strings.Contains(body, `"order.`) {
			orderIDs = append(orderIDs, id)
		} else {
			userIDs = append(userIDs, id)
		}
	}
	orders.waitCounts(t, orderIDs, 1)
	for _, id := range append(slices.Clone(orderIDs), userIDs...) {
		s.waitDelivery(t, id, "warehouse", "succeeded")
		s.waitDelivery(t, id, "ledger", "succeeded")
	}
	for _, id := range orderIDs {
		s.waitDelivery(t, id, "orders", "succeeded")
	}
	for _, id := range userIDs {
		if st := s.deliveryStatus(t, id, "orders"); st != "" {
			t.Errorf("user event %s has a delivery to orders (%s), want none", id, st)
		}
	}
	var got []string
	for _, q := range orders.all() {
		got = append(got, q.ID)
		if !strings.HasPrefix(q.Type, "order.") || q.Source != "shop" {
			t.Errorf("the sink got an event of type %q from %q, want order.* from shop", q.Type, q.Source)
		}
	}
	if !sameSet(got, orderIDs) {
		t.Errorf("the sink got %v, want exactly the order.* events %v", got, orderIDs)
	}

	// 5. The stats after: refreshed, then on the day's range.
	n, delivered := len(bodies), len(orderIDs)
	want := statsRead{Window: "1h", Events: before.Events + n, Deliveries: before.Deliveries + 2*n + delivered,
		Outcomes: before.Outcomes + 2*n + delivered, Succeeded: before.Succeeded + delivered}
	tb.click("#stats-refresh")
	tb.waitJS("the events chart to count the new events", fmt.Sprintf(`Number(document.getElementById('chart-events').getAttribute('data-total')) === %d`, want.Events))
	after := readStats(tb, "orders")
	t.Logf("stats after %d events (%d to orders), 1h: %+v", n, delivered, after)
	if after != want {
		t.Errorf("stats after (1h, refreshed): %+v, want %+v", after, want)
	}
	tb.click(`#stats-range button[data-window="1d"]`)
	tb.waitHash("#/stats?window=1d")
	tb.waitJS("the day's charts", chartsDrawn("1d"))
	day := readStats(tb, "orders")
	want.Window = "1d"
	t.Logf("stats after, 1d: %+v", day)
	if day != want {
		t.Errorf("stats after (1d): %+v, want %+v (all of it happened within the hour)", day, want)
	}
	if pressed := eval[string](tb, "read the range switch", `document.querySelector('#stats-range button[aria-pressed="true"]').getAttribute('data-window')`); pressed != "1d" {
		t.Errorf("the range switch shows %q pressed, want 1d", pressed)
	}
	tb.screenshot("flow-stats-after.png")
	tb.checkConsole()

	// 6. Find the order.* events with the filter bar.
	tb.goHash("#/events")
	markEventsTable(tb)
	tb.fill(`#filter-form input[name="type"]`, "order.*")
	tb.click("#filter-apply")
	tb.waitHash("#/events?type=order.*")
	listed := waitEventsListed(tb)
	wantListed := append([]string{early[0]}, orderIDs...)
	if !sameSet(listed, wantListed) {
		t.Errorf("filtered by type order.*, the events listed are %v, want exactly %v", listed, wantListed)
	}
	types := eval[[]string](tb, "read the listed types", `[...document.querySelectorAll('#events-table tr[data-event-id]')].map((r) => r.cells[2].textContent)`)
	for _, typ := range types {
		if !strings.HasPrefix(typ, "order.") {
			t.Errorf("a row of type %q is listed under the filter order.*", typ)
		}
	}
	if v := run(tb, "read the type filter", chromedp.Value(chromedp.CSS(`#filter-form input[name="type"]`))); v != "order.*" {
		t.Errorf("the type filter shows %q after applying, want order.*", v)
	}
	t.Logf("filtered by order.*: hash %q, %d rows: %v", eval[string](tb, "read the hash", `location.hash`), len(listed), types)
	tb.screenshot("flow-filtered.png")

	// 7. One event, replayed to orders only with the picker.
	id := orderIDs[0]
	tb.click(`#events-table tr[data-event-id="` + id + `"] a`)
	tb.waitHash("#/events/" + id)
	tb.waitJS("the event loaded", `!!document.querySelector('#replay-event') && !document.querySelector('#replay-event').disabled`)
	tb.click("#replay-event")
	tb.waitVisible(`input[name="replay-destination"][value="orders"]`)
	ticked := eval[[]string](tb, "read the ticked destinations", `[...document.querySelectorAll('input[name="replay-destination"]:checked')].map((c) => c.value)`)
	if !sameSet(ticked, []string{"ledger", "orders", "warehouse"}) {
		t.Errorf("the picker ticks %v, want the destinations the event went to: ledger, orders, warehouse", ticked)
	}
	for _, other := range ticked {
		if other != "orders" {
			tb.click(`input[name="replay-destination"][value="` + other + `"]`)
		}
	}
	if now := eval[[]string](tb, "read the ticked destinations", `[...document.querySelectorAll('input[name="replay-destination"]:checked')].map((c) => c.value)`); !slices.Equal(now, []string{"orders"}) {
		t.Fatalf("after unticking, the picker ticks %v, want [orders]", now)
	}
	tb.click("#replay-confirm")
	tb.waitVisible(`#replay-result li[data-destination="orders"]`)
	result := eval[[]string](tb, "read the replay result", `[...document.querySelectorAll('#replay-result li[data-destination]')].map((li) => li.getAttribute('data-destination'))`)
	if !slices.Equal(result, []string{"orders"}) {
		t.Errorf("#replay-result lists deliveries to %v, want [orders]", result)
	}
	orders.waitCounts(t, []string{id}, 2)
	// The page reloads the timeline a second after the replay; on a slow
	// machine the attempt may end after that, so the operator refreshes
	// once the API has it.
	s.waitAttempts(t, id, "orders", 2)
	tb.click(`#view .toolbar button:not(#replay-event)`) // Refresh
	tb.waitJS("the orders card to show the second attempt", `[...document.querySelectorAll('.delivery')].some((c) =>
		c.querySelector('h3').textContent === 'orders' && c.textContent.includes('Attempt 2') && c.querySelector('.badge').textContent === 'succeeded')`)
	// The first, successful attempt is only in the count (the log keeps
	// failed attempts and the last one): the card says so.
	tb.waitJS("the orders card to say an earlier attempt is not shown", `[...document.querySelectorAll('.delivery')].some((c) =>
		c.querySelector('h3').textContent === 'orders' && c.textContent.includes('1 earlier attempt not shown'))`)
	if got := tb.text("#replay-result"); !strings.Contains(got, "queued") {
		t.Errorf("#replay-result reads %q, want the replayed delivery shown as queued", got)
	}
	t.Logf("replayed %s to orders: the sink got it twice; #replay-result: %q", id, tb.text("#replay-result"))
	tb.screenshot("flow-replayed.png")
	for _, other := range []string{"warehouse", "ledger"} {
		var ev struct {
			Deliveries []struct {
				Destination  string `json:"destination"`
				AttemptCount int    `json:"attempt_count"`
			} `json:"deliveries"`
		}
		s.get(t, "/api/v1/events/"+id, &ev)
		for _, d := range ev.Deliveries {
			if d.Destination == other && d.AttemptCount != 1 {
				t.Errorf("the replay to orders only made %d attempts to %s, want 1", d.AttemptCount, other)
			}
		}
	}
	tb.checkConsole()
}

// addOrdersDestination creates, through the API, destination orders to
// the recorder and a subscription of shop's order.* events to it; it
// returns the subscription's id.
func addOrdersDestination(t *testing.T, s *server, r *recorder) string {
	t.Helper()
	spec, _ := json.Marshal(map[string]any{"name": "orders", "type": "http", "url": r.srv.URL + "/orders"})
	if code, b := s.call(t, http.MethodPost, "/api/v1/destinations", string(spec)); code != http.StatusCreated && code != http.StatusOK {
		t.Fatalf("POST /api/v1/destinations: %d %s", code, b)
	}
	code, b := s.call(t, http.MethodPost, "/api/v1/subscriptions", `{"source":"shop","destination":"orders","events":["order.*"]}`)
	var sub subscriptionAPI
	if (code != http.StatusCreated && code != http.StatusOK) || json.Unmarshal(b, &sub) != nil || sub.ID == "" {
		t.Fatalf("POST /api/v1/subscriptions: %d %s", code, b)
	}
	return sub.ID
}

// A bulk replay of the filtered events view sends the matching events to
// the sink again, with its progress counting them; a test event with a
// payload edited in the page reaches the sink byte for byte, and one with
// invalid JSON is stopped in the page.
func TestBulkReplayAndTestEvent(t *testing.T) {
	b := newBrowser(t)
	s := startHookd(t)
	orders := newRecorder(t)
	addOrdersDestination(t, s, orders)
	var orderIDs []string
	for i, typ := range []string{"order.created", "user.created", "order.paid", "order.created", "user.created"} {
		id := s.ingest(t, fmt.Sprintf(`{"id":"bulk-%d","type":%q}`, i, typ))
		if strings.HasPrefix(typ, "order.") {
			orderIDs = append(orderIDs, id)
		}
	}
	orders.waitCounts(t, orderIDs, 1)
	for _, id := range orderIDs {
		s.waitDelivery(t, id, "orders", "succeeded")
	}

	tb := b.newTab("operator")
	tb.open(s.Base, "#/events?type=order.*&destination=orders")
	tb.signIn(adminToken)
	listed := waitEventsListed(tb)
	if !sameSet(listed, orderIDs) {
		t.Fatalf("#/events?type=order.*&destination=orders lists %v, want exactly %v", listed, orderIDs)
	}
	tb.click("#bulk-replay")
	tb.waitVisible("#bulk-replay-confirm")
	ask := tb.text(".replay-confirm")
	if !strings.Contains(ask, "order.*") || !strings.Contains(ask, "destination orders only") {
		t.Errorf("the bulk replay asks %q, want it to name the type order.* and destination orders only", ask)
	}
	tb.click("#bulk-replay-confirm")
	tb.waitJS("the replay to end", `(() => { const p = document.getElementById('replay-progress');
		return !!p && p.getAttribute('data-state') !== 'running'; })()`)
	prog := eval[map[string]string](tb, "read the progress", `(() => { const p = document.getElementById('replay-progress');
		return {state: p.getAttribute('data-state'), done: p.getAttribute('data-done'), total: p.getAttribute('data-total'), text: p.textContent}; })()`)
	t.Logf("bulk replay progress: %v", prog)
	if want := fmt.Sprint(len(orderIDs)); prog["state"] != "done" || prog["done"] != want || prog["total"] != want {
		t.Errorf("#replay-progress: state %q, done %q, total %q; want done, %s, %s", prog["state"], prog["done"], prog["total"], want, want)
	}
	orders.waitCounts(t, orderIDs, 2)
	if n := len(orders.all()); n != 2*len(orderIDs) {
		t.Errorf("the sink got %d requests, want %d (the order.* events twice)", n, 2*len(orderIDs))
	}
	tb.waitText("#flash", "Replay ")
	tb.screenshot("bulk-replay.png")
	tb.checkConsole()

	// A test event: first with invalid JSON (stopped in the page), then
	// with an edited payload (sent as typed).
	tb.goHash("#/test-event?destination=orders")
	tb.waitVisible("#test-event-form")
	tb.waitJS("orders picked", `document.querySelector('#test-event-form select[name="destination"]').value === 'orders'`)
	sent := len(orders.all())
	tb.fill(`#test-event-form textarea[name="payload"]`, `{"id": "t-1", "note": `)
	tb.click("#test-event-send")
	tb.waitVisible("#payload-error")
	if msg := tb.text("#payload-error"); !strings.Contains(msg, "Not valid JSON") {
		t.Errorf("#payload-error says %q, want it to say the JSON is not valid", msg)
	}
	if n := eval[int](tb, "count results", `document.querySelectorAll('#test-event-result').length`); n != 0 {
		t.Errorf("invalid JSON: %d results shown, want none", n)
	}
	if sending := eval[bool](tb, "read the send button", `document.getElementById('test-event-send').disabled`); sending {
		t.Error("invalid JSON: the send button is disabled as if a request were under way")
	}
	if n := len(orders.all()); n != sent {
		t.Errorf("invalid JSON: the sink got %d requests more, want none", n-sent)
	}
	tb.screenshot("test-event-invalid.png")
	payload := `{"id": "t-2", "note": "edited in the console", "amount": 12345678901234567890, "items": [{"sku": "A-1", "qty": 2}]}`
	tb.fill(`#test-event-form textarea[name="payload"]`, payload)
	tb.waitJS("the payload error to clear", `document.getElementById('payload-error').hidden`)
	tb.click("#test-event-send")
	tb.waitVisible("#test-event-result")
	if outcome := eval[string](tb, "read the outcome", `document.getElementById('test-event-result').getAttribute('data-outcome')`); outcome != "succeeded" {
		t.Errorf("#test-event-result data-outcome = %q, want succeeded", outcome)
	}
	all := orders.waitLen(t, sent+1)
	if len(all) != sent+1 {
		t.Fatalf("the sink got %d requests for one valid test event (and one invalid), want 1", len(all)-sent)
	}
	got := all[sent]
	if got.Body != payload {
		t.Errorf("the test event's body at the sink:\n%s\nwant exactly the payload typed:\n%s", got.Body, payload)
	}
	if got.Source != "hookd-test" || got.Type != "hookd.test" {
		t.Errorf("the test event came with source %q and type %q, want hookd-test and hookd.test", got.Source, got.Type)
	}
	t.Logf("test event: %s; the sink got %q (type %s, source %s)", tb.text("#test-event-result"), got.Body, got.Type, got.Source)
	tb.screenshot("test-event.png")
	tb.checkConsole()
}

// Deleting a subscription, then its destination, asks in the page first:
// Cancel keeps it, the confirm button deletes it.
func TestDeleteNeedsConfirmation(t *testing.T) {
	b := newBrowser(t)
	s := startHookd(t)
	orders := newRecorder(t)
	subID := addOrdersDestination(t, s, orders)
	subPath := "/api/v1/subscriptions/" + subID
	destPath := "/api/v1/destinations/orders"
	status := func(path string) int {
		code, _ := s.call(t, http.MethodGet, path, "")
		return code
	}

	tb := b.newTab("operator")
	tb.open(s.Base, "#/destinations")
	tb.signIn(adminToken)

	// The subscription, from its row's edit link.
	tb.click(`#subscriptions tr[data-subscription="` + subID + `"] a`)
	tb.waitHash("#/subscriptions/" + subID + "/edit")
	tb.click("#delete-subscription")
	tb.waitVisible("#confirm-delete")
	if ask := tb.text("[role=alertdialog]"); !strings.Contains(ask, "Delete subscription "+subID) {
		t.Errorf("the confirmation says %q, want it to name subscription %s", ask, subID)
	}
	tb.click("#cancel-delete")
	tb.waitJS("the confirmation gone", `!document.getElementById('confirm-delete')`)
	if code := status(subPath); code != http.StatusOK {
		t.Fatalf("after Cancel, GET %s: %d, want 200", subPath, code)
	}
	tb.click("#delete-subscription")
	tb.click("#confirm-delete")
	tb.waitHash("#/destinations")
	tb.waitText("#flash", "Subscription "+subID+" deleted.")
	if code := status(subPath); code != http.StatusNotFound {
		t.Fatalf("after confirming, GET %s: %d, want 404", subPath, code)
	}
	tb.waitVisible(`tr[data-destination="orders"]`)
	if n := eval[int](tb, "count the subscription's rows", `document.querySelectorAll('#subscriptions tr[data-subscription="`+subID+`"]').length`); n != 0 {
		t.Errorf("the deleted subscription is still listed (%d rows)", n)
	}

	// The destination, from its page.
	tb.click(`tr[data-destination="orders"] a[href="#/destinations/orders"]`)
	tb.waitHash("#/destinations/orders")
	tb.click("#delete-destination")
	tb.waitVisible("#confirm-delete")
	if ask := tb.text("[role=alertdialog]"); !strings.Contains(ask, "Delete destination orders") {
		t.Errorf("the confirmation says %q, want it to name destination orders", ask)
	}
	tb.click("#cancel-delete")
	tb.waitJS("the confirmation gone", `!document.getElementById('confirm-delete')`)
	if code := status(destPath); code != http.StatusOK {
		t.Fatalf("after Cancel, GET %s: %d, want 200", destPath, code)
	}
	tb.click("#delete-destination")
	tb.click("#confirm-delete")
	tb.waitHash("#/destinations")
	tb.waitText("#flash", "Destination orders deleted.")
	if code := status(destPath); code != http.StatusNotFound {
		t.Fatalf("after confirming, GET %s: %d, want 404", destPath, code)
	}
	tb.waitVisible(`tr[data-destination="warehouse"]`)
	if n := eval[int](tb, "count the destination's rows", `document.querySelectorAll('tr[data-destination="orders"]').length`); n != 0 {
		t.Errorf("the deleted destination is still listed (%d rows)", n)
	}
	tb.checkConsole()
}
