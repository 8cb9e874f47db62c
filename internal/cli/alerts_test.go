package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"hookd"
	"hookd/internal/config"
)

const alertToken = "alerts-admin-token-0123"

// alertEvent is one request an alert sink received: hookd's headers and
// the body of a hookd event.
type alertEvent struct {
	WebhookID string
	Source    string
	ID        string          `json:"id"`
	Type      string          `json:"type"`
	Time      time.Time       `json:"time"`
	Text      string          `json:"text"`
	Data      json.RawMessage `json:"data"`
	data      map[string]any
}

// alertSink is an http destination's receiver: it records every request
// and answers status (200 when 0).
type alertSink struct {
	srv    *httptest.Server
	status atomic.Int64
	mu     sync.Mutex
	got    []alertEvent
}

func newAlertSink(t *testing.T, status int) *alertSink {
	s := &alertSink{}
	s.status.Store(int64(status))
	s.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		ev := alertEvent{WebhookID: r.Header.Get("webhook-id"), Source: r.Header.Get("Hookd-Source")}
		if ev.Source == hookd.AlertSource {
			if err := json.Unmarshal(b, &ev); err != nil {
				t.Errorf("a hookd event's body is not JSON: %v: %s", err, b)
			}
			json.Unmarshal(ev.Data, &ev.data)
		}
		s.mu.Lock()
		s.got = append(s.got, ev)
		s.mu.Unlock()
		if st := s.status.Load(); st != 0 {
			w.WriteHeader(int(st))
		}
	}))
	t.Cleanup(s.srv.Close)
	return s
}

// ofType returns the distinct hookd events of type typ received so far
// (a retry of one counts once).
func (s *alertSink) ofType(typ string) []alertEvent {
	s.mu.Lock()
	defer s.mu.Unlock()
	seen := map[string]bool{}
	var out []alertEvent
	for _, e := range s.got {
		if e.Source == hookd.AlertSource && e.Type == typ && !seen[e.WebhookID] {
			seen[e.WebhookID] = true
			out = append(out, e)
		}
	}
	return out
}

// fromSource counts the requests of events of source src.
func (s *alertSink) fromSource(src string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, e := range s.got {
		if e.Source == src {
			n++
		}
	}
	return n
}

// alertApp runs hookd with source shop, destination orders (at
// ordersURL), destination ops (at opsURL) and the extra YAML
// given (subscriptions, alerts); it returns the app and its base URL.
func alertApp(t *testing.T, ordersURL, opsURL, extra string) (*App, string) {
	t.Helper()
	cfg, err := config.Parse([]byte(fmt.Sprintf(`admin: {tokens: [%s]}
egress: {allow_private: ["127.0.0.0/8"]}
sources: [{name: shop, event: {id: "json:id", type: "json:type"}}]
destinations:
  - {name: orders, type: http, url: %q}
  - {name: ops, type: http, url: %q}
%s
`, alertToken, ordersURL, opsURL, extra)))
	if err != nil {
		t.Fatalf("config: %v", err)
	}
	cfg.Storage.Path = t.TempDir()
	return startApp(t, cfg, nil)
}

// hookdEvents lists the stored events of the hookd source of type typ
// ("" every type).
func hookdEvents(t *testing.T, base, typ string) []map[string]any {
	t.Helper()
	url := base + "/api/v1/events?source=hookd&limit=1000"
	if typ != "" {
		url += "&type=" + typ
	}
	st, m := apiDo(t, "GET", url, alertToken, "")
	if st != http.StatusOK {
		t.Fatalf("list hookd events: %d %v", st, m)
	}
	var out []map[string]any
	for _, e := range m["data"].([]any) {
		out = append(out, e.(map[string]any))
	}
	return out
}

// Acceptance: an http destination answering 410 is disabled, and a sink
// subscribed to hookd's destination.* receives a destination.disabled
// event naming it, with the delivery that disabled it; a subscription to
// every source ("*") gets none of hookd's events.
func TestAlertDestinationDisabledReachesSubscribedSink(t *testing.T) {
	t.Parallel()
	orders := newAlertSink(t, http.StatusGone)
	ops := newAlertSink(t, 0)
	all := newAlertSink(t, 0)
	_, base := alertApp(t, orders.srv.URL, ops.srv.URL, fmt.Sprintf(`  - {name: all, type: http, url: %q}
subscriptions:
  - {source: shop, destination: orders}
  - {source: hookd, destination: ops, events: ["destination.*"]}
  - {source: "*", destination: all}
`, all.srv.URL))
	id := postEvent(t, base, "shop", `{"id":"o-1","type":"order.created"}`)
	waitFor(t, 15*time.Second, "destination.disabled at the ops sink", func() bool { return len(ops.ofType(hookd.AlertDestinationDisabled)) > 0 })
	got := ops.ofType(hookd.AlertDestinationDisabled)[0]
	if got.ID != got.WebhookID || !hookd.ValidID(got.ID, hookd.EventIDPrefix) {
		t.Errorf("body id %q, webhook-id %q: want the same event id", got.ID, got.WebhookID)
	}
	if time.Since(got.Time) > time.Minute || got.Time.After(time.Now()) {
		t.Errorf("time: got %v, want about now", got.Time)
	}
	want := map[string]any{"destination": "orders", "by": "hookd", "event_id": id, "event_source": "shop",
		"event_type": "order.created", "status_code": float64(410), "delivery_id": "dlv_" + strings.TrimPrefix(id, "evt_") + "_orders"}
	for k, v := range want {
		if got.data[k] != v {
			t.Errorf("data.%s: got %v, want %v (body data %s)", k, got.data[k], v, got.Data)
		}
	}
	if !strings.Contains(got.Text, "destination orders disabled") || !strings.Contains(got.Text, "410") {
		t.Errorf("text: got %q, want a line naming orders and the 410 (what a Slack incoming webhook shows)", got.Text)
	}
	if r, _ := got.data["reason"].(string); !strings.Contains(r, "410") {
		t.Errorf("data.reason: got %q, want it to name the 410", r)
	}
	_, d := apiDo(t, "GET", base+"/api/v1/destinations/orders", alertToken, "")
	if d["disabled"] == nil || d["disabled"] == false {
		t.Errorf("destination orders: got %v, want disabled", d)
	}
	// Enabled again by an operator: destination.enabled.
	if st, m := apiDo(t, "POST", base+"/api/v1/destinations/orders/enable", alertToken, ""); st != http.StatusOK {
		t.Fatalf("enable: %d %v", st, m)
	}
	waitFor(t, 15*time.Second, "destination.enabled at the ops sink", func() bool { return len(ops.ofType(hookd.AlertDestinationEnabled)) > 0 })
	if e := ops.ofType(hookd.AlertDestinationEnabled)[0]; e.data["destination"] != "orders" || e.data["by"] != "operator" {
		t.Errorf("destination.enabled data: got %s, want orders by operator", e.Data)
	}
	// Enabling an enabled destination raises nothing; an operator's
	// disable does, with the reason given.
	apiDo(t, "POST", base+"/api/v1/destinations/orders/enable", alertToken, "")
	if st, m := apiDo(t, "POST", base+"/api/v1/destinations/orders/disable", alertToken, `{"reason":"maintenance"}`); st != http.StatusOK {
		t.Fatalf("disable: %d %v", st, m)
	}
	waitFor(t, 15*time.Second, "an operator's destination.disabled", func() bool { return len(ops.ofType(hookd.AlertDestinationDisabled)) == 2 })
	if e := ops.ofType(hookd.AlertDestinationDisabled)[1]; e.data["by"] != "operator" || e.data["reason"] != "maintenance" {
		t.Errorf("operator's destination.disabled data: got %s", e.Data)
	}
	if n := len(hookdEvents(t, base, hookd.AlertDestinationEnabled)); n != 1 {
		t.Errorf("destination.enabled events stored: got %d, want 1 (enabling an enabled destination raises none)", n)
	}
	if n := all.fromSource(hookd.AlertSource); n != 0 {
		t.Errorf("a subscription to every source (\"*\") got %d hookd events, want 0", n)
	}
	if all.fromSource("shop") == 0 {
		t.Error("the subscription to every source got no shop event")
	}
}

// A delivery that fails for good raises delivery.failed with the
// delivery, its event, the reason and the last answer.
func TestAlertDeliveryFailed(t *testing.T) {
	t.Parallel()
	orders := newAlertSink(t, http.StatusBadRequest)
	ops := newAlertSink(t, 0)
	_, base := alertApp(t, orders.srv.URL, ops.srv.URL, `subscriptions:
  - {source: shop, destination: orders}
  - {source: hookd, destination: ops, events: [delivery.failed]}
`)
	id := postEvent(t, base, "shop", `{"id":"o-2","type":"order.paid"}`)
	waitFor(t, 15*time.Second, "delivery.failed at the ops sink", func() bool { return len(ops.ofType(hookd.AlertDeliveryFailed)) > 0 })
	got := ops.ofType(hookd.AlertDeliveryFailed)[0]
	want := map[string]any{"destination": "orders", "event_id": id, "event_source": "shop", "event_type": "order.paid",
		"status_code": float64(400), "attempts": float64(1), "delivery_id": "dlv_" + strings.TrimPrefix(id, "evt_") + "_orders"}
	for k, v := range want {
		if got.data[k] != v {
			t.Errorf("data.%s: got %v, want %v (body data %s)", k, got.data[k], v, got.Data)
		}
	}
	if got.data["reason"] == nil || got.data["reason"] == "" {
		t.Errorf("data.reason: empty in %s", got.Data)
	}
}

// failedQueue returns the ids of the failed deliveries of dest.
func failedQueue(t *testing.T, base, dest string) []string {
	t.Helper()
	st, m := apiDo(t, "GET", base+"/api/v1/deliveries?status=failed&limit=1000&destination="+dest, alertToken, "")
	if st != http.StatusOK {
		t.Fatalf("list failed deliveries: %d %v", st, m)
	}
	var ids []string
	for _, d := range m["data"].([]any) {
		ids = append(ids, d.(map[string]any)["id"].(string))
	}
	return ids
}

// failed_queue.threshold is raised once when a destination's failed
// queue reaches the threshold, not again while it stays there (however
// many checks run), and again only after it fell below and reached it
// once more.
func TestAlertFailedQueueThresholdOnce(t *testing.T) {
	t.Parallel()
	orders := newAlertSink(t, http.StatusBadRequest)
	ops := newAlertSink(t, 0)
	app, base := alertApp(t, orders.srv.URL, ops.srv.URL, `subscriptions:
  - {source: shop, destination: orders}
  - {source: hookd, destination: ops, events: ["failed_queue.*"]}
alerts: {failed_queue_threshold: 2, check_interval: 20ms}
`)
	// checksAfter waits until the check has run n more times from now.
	checksAfter := func(n int64) {
		t.Helper()
		from := app.alerts.Checks()
		waitFor(t, 15*time.Second, "failed-queue checks", func() bool { return app.alerts.Checks() >= from+n })
	}
	postEvent(t, base, "shop", `{"id":"t-1","type":"x"}`)
	waitFor(t, 15*time.Second, "one failed delivery", func() bool { return len(failedQueue(t, base, "orders")) == 1 })
	checksAfter(3)
	if n := len(ops.ofType(hookd.AlertFailedQueueThreshold)); n != 0 {
		t.Fatalf("below the threshold: got %d alerts, want 0", n)
	}
	for i := 2; i <= 4; i++ {
		postEvent(t, base, "shop", fmt.Sprintf(`{"id":"t-%d","type":"x"}`, i))
	}
	waitFor(t, 15*time.Second, "failed_queue.threshold at the ops sink", func() bool { return len(ops.ofType(hookd.AlertFailedQueueThreshold)) > 0 })
	waitFor(t, 15*time.Second, "four failed deliveries", func() bool { return len(failedQueue(t, base, "orders")) == 4 })
	checksAfter(5)
	got := ops.ofType(hookd.AlertFailedQueueThreshold)
	if len(got) != 1 {
		t.Fatalf("above the threshold for 5 checks: got %d alerts, want 1", len(got))
	}
	if got[0].data["destination"] != "orders" || got[0].data["threshold"] != float64(2) {
		t.Errorf("data: got %s, want destination orders, threshold 2", got[0].Data)
	}
	if f, _ := got[0].data["failed"].(float64); f < 2 {
		t.Errorf("data.failed: got %v, want at least 2", got[0].data["failed"])
	}
	// Retried into success, the queue empties: below again.
	orders.status.Store(0)
	for _, id := range failedQueue(t, base, "orders") {
		if st, m := apiDo(t, "POST", base+"/api/v1/deliveries/"+id+"/retry", alertToken, ""); st != http.StatusOK && st != http.StatusAccepted {
			t.Fatalf("retry %s: %d %v", id, st, m)
		}
	}
	waitFor(t, 15*time.Second, "the failed queue empty", func() bool { return len(failedQueue(t, base, "orders")) == 0 })
	checksAfter(3)
	if n := len(ops.ofType(hookd.AlertFailedQueueThreshold)); n != 1 {
		t.Fatalf("after the queue emptied: got %d alerts, want still 1", n)
	}
	// Failing again up to the threshold: a second alert.
	orders.status.Store(http.StatusBadRequest)
	postEvent(t, base, "shop", `{"id":"t-5","type":"x"}`)
	postEvent(t, base, "shop", `{"id":"t-6","type":"x"}`)
	waitFor(t, 15*time.Second, "a second failed_queue.threshold", func() bool { return len(ops.ofType(hookd.AlertFailedQueueThreshold)) == 2 })
	checksAfter(3)
	if n := len(hookdEvents(t, base, hookd.AlertFailedQueueThreshold)); n != 2 {
		t.Errorf("failed_queue.threshold events stored: got %d, want 2", n)
	}
}

// The name hookd is reserved: a configured source named so is refused
// with a clear error, and so is one created through the API; nothing is
// accepted at POST /in/hookd.
func TestAlertSourceNameIsReserved(t *testing.T) {
	t.Parallel()
	cfg, err := config.Parse([]byte("sources: [{name: hookd}]\n"))
	if err == nil {
		err = cfg.Validate()
	}
	if err == nil || !strings.Contains(err.Error(), `"hookd" is reserved`) || !strings.Contains(err.Error(), "sources[0]") {
		t.Errorf("a configured source named hookd: got %v, want it refused as reserved", err)
	}
	ops := newAlertSink(t, 0)
	_, base := alertApp(t, ops.srv.URL, ops.srv.URL, "subscriptions: [{source: hookd, destination: ops}]\n")
	st, m := apiDo(t, "POST", base+"/api/v1/sources", alertToken, `{"name":"hookd"}`)
	if msg := fmt.Sprint(m["error"]); st != http.StatusBadRequest || !strings.Contains(msg, `"hookd" is reserved`) {
		t.Errorf("POST /api/v1/sources named hookd: got %d %v, want 400 naming the reserved name", st, m)
	}
	st, m = apiDo(t, "PUT", base+"/api/v1/sources/hookd", alertToken, `{}`)
	if st != http.StatusBadRequest {
		t.Errorf("PUT /api/v1/sources/hookd: got %d %v, want 400", st, m)
	}
	resp, err := http.Post(base+"/in/hookd", "application/json", strings.NewReader(`{"type":"destination.disabled"}`))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNotFound {
		t.Errorf("POST /in/hookd: got %d, want 404", resp.StatusCode)
	}
	if n := len(hookdEvents(t, base, "")); n != 0 {
		t.Errorf("hookd events after POST /in/hookd: got %d, want 0", n)
	}
	// A subscription to it through the API is accepted.
	if st, m := apiDo(t, "POST", base+"/api/v1/subscriptions", alertToken, `{"source":"hookd","destination":"orders","events":["delivery.failed"]}`); st != http.StatusCreated {
		t.Errorf("subscribe to hookd through the API: got %d %v, want 201", st, m)
	}
}

// A delivery of a hookd event that fails raises no delivery.failed: an
// ops destination that refuses everything gets the one alert about the
// user's delivery, fails it, and that is the end of it.
func TestAlertNoLoop(t *testing.T) {
	t.Parallel()
	orders := newAlertSink(t, http.StatusBadRequest)
	ops := newAlertSink(t, http.StatusBadRequest)
	app, base := alertApp(t, orders.srv.URL, ops.srv.URL, `subscriptions:
  - {source: shop, destination: orders}
  - {source: hookd, destination: ops}
`)
	postEvent(t, base, "shop", `{"id":"l-1","type":"x"}`)
	waitFor(t, 15*time.Second, "ops' delivery of the alert failed", func() bool { return len(failedQueue(t, base, "ops")) == 1 })
	// Every outcome written so far has raised what it raises; a marker
	// alert queued now is stored after any of them.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	app.engine.Flush(ctx)
	app.alerts.Emit(hookd.Alert{Type: "test.marker", Key: "marker"})
	waitFor(t, 15*time.Second, "the marker stored", func() bool { return len(hookdEvents(t, base, "test.marker")) == 1 })
	evs := hookdEvents(t, base, hookd.AlertDeliveryFailed)
	if len(evs) != 1 {
		t.Fatalf("delivery.failed events: got %d, want 1 (about the user's delivery only)", len(evs))
	}
	var body struct {
		Data map[string]any `json:"data"`
	}
	json.Unmarshal([]byte(evs[0]["body"].(string)), &body)
	if body.Data["destination"] != "orders" {
		t.Errorf("the delivery.failed event is about %v, want orders", body.Data["destination"])
	}
}

// With no subscription to the hookd source an alert costs its event row
// and nothing more: no delivery.
func TestAlertWithoutSubscriptionCostsOneEvent(t *testing.T) {
	t.Parallel()
	orders := newAlertSink(t, http.StatusGone)
	_, base := alertApp(t, orders.srv.URL, orders.srv.URL, "subscriptions: [{source: shop, destination: orders}]\n")
	postEvent(t, base, "shop", `{"id":"c-1","type":"x"}`)
	waitFor(t, 15*time.Second, "the alerts stored", func() bool {
		return len(hookdEvents(t, base, hookd.AlertDestinationDisabled)) == 1 && len(hookdEvents(t, base, hookd.AlertDeliveryFailed)) == 1
	})
	for _, ev := range hookdEvents(t, base, "") {
		_, full := apiDo(t, "GET", base+"/api/v1/events/"+ev["id"].(string), alertToken, "")
		if ds, _ := full["deliveries"].([]any); len(ds) != 0 {
			t.Errorf("alert %v has deliveries %v, want none", ev["type"], ds)
		}
	}
	_, m := apiDo(t, "GET", base+"/api/v1/deliveries?limit=1000", alertToken, "")
	if ds, _ := m["data"].([]any); len(ds) != 1 {
		t.Errorf("deliveries stored: got %d, want 1 (the shop event's)", len(ds))
	}
}

// While the store refuses writes (fdatasync fails), the refusal is kept
// in memory; once it takes writes again, storage.refusing is stored and
// delivered, with when it began and ended and how many commits it
// refused.
func TestAlertStorageRefusing(t *testing.T) {
	t.Parallel()
	fs := &faultySync{}
	ops := newAlertSink(t, 0)
	cfg, err := config.Parse([]byte(fmt.Sprintf(`admin: {tokens: [%s]}
egress: {allow_private: ["127.0.0.0/8"]}
server: {ack_deadline: 2s, retry_after: 1s}
sources: [{name: f, event: {id: "json:id"}}]
destinations: [{name: ops, type: http, url: %q}]
subscriptions: [{source: hookd, destination: ops, events: ["storage.*"]}]
`, alertToken, ops.srv.URL)))
	if err != nil {
		t.Fatal(err)
	}
	cfg.Storage.Path = t.TempDir()
	_, base := startAppWith(t, cfg, func(a *App) { a.syncFile = fs.sync })
	c := &http.Client{Timeout: 30 * time.Second}
	before := time.Now()
	fs.fail.Store(true)
	for i := range 3 {
		if st := faultPost(t, c, base, fmt.Sprintf("refused-%d", i)); st != http.StatusServiceUnavailable {
			t.Errorf("POST while fdatasync fails: got %d, want 503", st)
		}
	}
	if n := len(ops.ofType(hookd.AlertStorageRefusing)); n != 0 {
		t.Fatalf("storage.refusing delivered while the store refuses: %d", n)
	}
	fs.fail.Store(false)
	waitFor(t, 15*time.Second, "storage.refusing at the ops sink", func() bool { return len(ops.ofType(hookd.AlertStorageRefusing)) > 0 })
	got := ops.ofType(hookd.AlertStorageRefusing)[0]
	since, err1 := time.Parse(time.RFC3339Nano, fmt.Sprint(got.data["since"]))
	until, err2 := time.Parse(time.RFC3339Nano, fmt.Sprint(got.data["until"]))
	if err1 != nil || err2 != nil || since.Before(before.Add(-time.Second)) || until.Before(since) || got.Time.Before(until) {
		t.Errorf("since %v, until %v, time %v: want before ≤ since ≤ until ≤ time (data %s)", got.data["since"], got.data["until"], got.Time, got.Data)
	}
	if r, _ := got.data["refused"].(float64); r < 1 {
		t.Errorf("data.refused: got %v, want at least 1", got.data["refused"])
	}
	if e, _ := got.data["error"].(string); e == "" {
		t.Errorf("data.error: empty in %s", got.Data)
	}
	if n := len(hookdEvents(t, base, hookd.AlertStorageRefusing)); n != 1 {
		t.Errorf("storage.refusing events stored: got %d, want 1", n)
	}
}
