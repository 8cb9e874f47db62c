package cli

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"hookd/internal/config"
)

// retention.events deletes old events whose deliveries are finished
// (succeeded or failed), and keeps old events still being retried and
// young ones.
func TestRetentionDeletesOldFinishedEvents(t *testing.T) {
	sink := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		switch typ := r.Header.Get("Hookd-Event-Type"); {
		case strings.HasSuffix(typ, "bad"):
			w.WriteHeader(http.StatusBadRequest)
		case strings.HasSuffix(typ, "retry"):
			w.WriteHeader(http.StatusServiceUnavailable)
		}
	}))
	defer sink.Close()
	cfg, err := config.Parse([]byte(fmt.Sprintf(`
admin: {tokens: [tok]}
egress: {allow_private: ["127.0.0.0/8"]}
retention: {events: 240h}
sources:
  - {name: claims, event: {id: "json:id", type: "json:type"}}
destinations:
  - {name: sink, type: http, url: %q, retry: {policy: schedule, schedule: ["1h"]}}
subscriptions:
  - {source: claims, destination: sink}
`, sink.URL)))
	if err != nil {
		t.Fatal(err)
	}
	cfg.Storage.Path = t.TempDir()
	// Ingest's clock: the first events were received 30 days ago.
	var ago atomic.Int64
	ago.Store(int64(30 * 24 * time.Hour))
	app, base := startApp(t, cfg, func() time.Time { return time.Now().Add(-time.Duration(ago.Load())) })

	oldOK := postEvent(t, base, "claims", `{"id":"1","type":"ok"}`)
	oldBad := postEvent(t, base, "claims", `{"id":"2","type":"bad"}`)
	oldRetry := postEvent(t, base, "claims", `{"id":"3","type":"retry"}`)
	ago.Store(0)
	young := postEvent(t, base, "claims", `{"id":"4","type":"ok"}`)

	status := func(id string) string {
		code, m := apiDo(t, "GET", base+"/api/v1/events/"+id, "tok", "")
		if code == 404 {
			return "gone"
		}
		ds, _ := m["deliveries"].([]any)
		if len(ds) != 1 {
			return "undelivered"
		}
		return ds[0].(map[string]any)["status"].(string)
	}
	waitFor(t, 10*time.Second, "every delivery's outcome", func() bool {
		return status(oldOK) == "succeeded" && status(oldBad) == "failed" && status(oldRetry) == "retrying" && status(young) == "succeeded"
	})
	app.engine.Flush(context.Background())

	r, err := app.engine.Prune(context.Background())
	if err != nil {
		t.Fatalf("Prune: %v", err)
	}
	t.Logf("retention pass: %+v", r)
	for id, want := range map[string]string{oldOK: "gone", oldBad: "gone", oldRetry: "retrying", young: "succeeded"} {
		if got := status(id); got != want {
			t.Errorf("event %s after the retention pass: %s, want %s", id, got, want)
		}
	}
	if r.Events != 2 || r.Deliveries != 2 || r.Kept != 1 {
		t.Errorf("retention pass: %+v, want 2 events and 2 deliveries deleted, 1 kept", r)
	}
	// New events still arrive and are delivered.
	next := postEvent(t, base, "claims", `{"id":"5","type":"ok"}`)
	waitFor(t, 10*time.Second, "a delivery after the pass", func() bool { return status(next) == "succeeded" })
}

// A dedupe window longer than the retention is refused: duplicates would
// be stored again once their first event is gone.
func TestRetentionShorterThanDedupeWindowIsRefused(t *testing.T) {
	cfg, err := config.Parse([]byte("retention: {events: 24h}\nsources: [{name: a, event: {id: json:id}}]\n"))
	if err == nil {
		err = cfg.Validate()
	}
	if err == nil || !strings.Contains(err.Error(), "sources[0] (a).dedupe_window") || !strings.Contains(err.Error(), "retention.events") {
		t.Fatalf("got %v, want an error naming sources[0] (a).dedupe_window and retention.events", err)
	}
}

// A hookd that only receives (no subscriptions) prunes too: its events
// have no deliveries, and the fan-out watermark still passes them.
func TestRetentionWithoutSubscriptions(t *testing.T) {
	cfg, err := config.Parse([]byte("admin: {tokens: [tok]}\nretention: {events: 240h}\nsources: [{name: in, event: {id: \"json:id\"}}]\n"))
	if err != nil {
		t.Fatal(err)
	}
	cfg.Storage.Path = t.TempDir()
	var ago atomic.Int64
	ago.Store(int64(30 * 24 * time.Hour))
	app, base := startApp(t, cfg, func() time.Time { return time.Now().Add(-time.Duration(ago.Load())) })
	old := postEvent(t, base, "in", `{"id":"a"}`)
	ago.Store(0)
	young := postEvent(t, base, "in", `{"id":"b"}`)
	var r struct{ Events int64 }
	waitFor(t, 5*time.Second, "the old event pruned", func() bool {
		app.engine.Flush(context.Background())
		res, err := app.engine.Prune(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		r.Events += res.Events
		return r.Events == 1
	})
	if code, _ := apiDo(t, "GET", base+"/api/v1/events/"+old, "tok", ""); code != 404 {
		t.Errorf("old event: %d, want 404", code)
	}
	if code, _ := apiDo(t, "GET", base+"/api/v1/events/"+young, "tok", ""); code != 200 {
		t.Errorf("young event: %d, want 200", code)
	}
}
