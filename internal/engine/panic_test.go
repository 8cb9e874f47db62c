package engine_test

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"hookd"
	"hookd/internal/destination"
	"hookd/internal/engine"
	"hookd/internal/store"
)

// panicky is a destination whose Deliver panics on a body containing
// "boom" and delivers anything else.
type panicky struct{}

func (panicky) Deliver(_ context.Context, m *destination.Message) (destination.Result, error) {
	if bytes.Contains(m.Event.Body, []byte("boom")) {
		panic("boom in " + m.DeliveryID)
	}
	return destination.Result{}, nil
}

func (panicky) Close() error { return nil }

func init() {
	destination.Register("test-panicky", func(context.Context, *destination.Env, destination.Options) (destination.Destination, error) {
		return panicky{}, nil
	})
}

// stored inserts events as ingest would, without handing them to the
// engine: as if the process had died between the commit and routing.
func stored(t *testing.T, r *rig, typ string, bodies ...string) []*hookd.Event {
	t.Helper()
	evs := make([]*hookd.Event, len(bodies))
	ins := make([]*store.EventInsert, len(bodies))
	for i, b := range bodies {
		u := hookd.NewULID(time.Now())
		evs[i] = &hookd.Event{ID: hookd.EventIDPrefix + u, RequestID: hookd.RequestIDPrefix + u, Source: "app", Type: typ, ReceivedAt: time.Now(), ContentType: "application/json", Body: []byte(b)}
		ins[i] = &store.EventInsert{Event: evs[i]}
	}
	if _, err := r.st.EventInsertMany(context.Background(), ins); err != nil {
		t.Fatal(err)
	}
	return evs
}

// A destination that panics fails only the delivery it panicked on, with
// the reason; its other deliveries and the other destinations go on.
func TestPanickingDestinationFailsOnlyThatDelivery(t *testing.T) {
	s := newSink(t, func(int, *http.Request) (int, http.Header) { return 200, nil })
	r := newRig(t, t.TempDir(), engine.RealClock{}, fmt.Sprintf(`
destinations:
  - {name: fragile, type: test-panicky}
  - {name: steady, type: http, url: %s}
subscriptions:
  - {destination: fragile}
  - {destination: steady}
`, s.srv.URL), engine.Options{})
	evs := r.publish(
		&hookd.Event{Body: []byte(`{"n":1}`)},
		&hookd.Event{Body: []byte(`{"n":"boom"}`)},
		&hookd.Event{Body: []byte(`{"n":3}`)},
	)
	settled := func() bool {
		for _, ev := range evs {
			for _, d := range []string{"fragile", "steady"} {
				if st := statusOf(t, r, ev, d); st != store.StatusSucceeded && st != store.StatusFailed {
					return false
				}
			}
		}
		return true
	}
	eventually(t, 10*time.Second, "every delivery settled", settled)
	for i, ev := range evs {
		for _, dest := range []string{"fragile", "steady"} {
			d := deliveryOf(t, r, ev, dest)
			if i == 1 && dest == "fragile" {
				if d.Status != store.StatusFailed || d.Reason != engine.ReasonInternalError || !strings.Contains(d.LastError, "internal error: panic: boom") {
					t.Errorf("panicked delivery: got %s (%s) %q, want failed (%s) with the panic", d.Status, d.Reason, d.LastError, engine.ReasonInternalError)
				}
				continue
			}
			if d.Status != store.StatusSucceeded {
				t.Errorf("event %d to %s: got %s %q, want succeeded", i, dest, d.Status, d.LastError)
			}
		}
	}
	if got := s.ids(); len(got) != 3 {
		t.Errorf("steady got %d events, want 3", len(got))
	}
}

// A panic while routing one event gives that event no delivery; the
// events around it are routed, at start (events stored but not routed by
// the last process) as while running.
func TestPanicWhileRoutingSkipsOnlyThatEvent(t *testing.T) {
	s := newSink(t, func(int, *http.Request) (int, http.Header) { return 200, nil })
	dir := t.TempDir()
	y := destYAML("sink", s.srv.URL, "")
	r := newRig(t, dir, engine.RealClock{}, y, engine.Options{})
	lost := append(stored(t, r, "a", `{"n":1}`), stored(t, r, "boom", `{"n":2}`)...)
	lost = append(lost, stored(t, r, "a", `{"n":3}`)...)
	r.close()

	var o engine.Options
	engine.WrapMatch(&o, func(match func(*hookd.Event) []string) func(*hookd.Event) []string {
		return func(ev *hookd.Event) []string {
			if ev.Type == "boom" {
				panic("routing boom")
			}
			return match(ev)
		}
	})
	r2 := newRig(t, dir, engine.RealClock{}, y, o)
	live := r2.publish(
		&hookd.Event{Type: "a"},
		&hookd.Event{Type: "boom"},
		&hookd.Event{Type: "a"},
	)
	want := []*hookd.Event{lost[0], lost[2], live[0], live[2]}
	eventually(t, 10*time.Second, "the other events delivered", func() bool {
		for _, ev := range want {
			if statusOf(t, r2, ev, "sink") != store.StatusSucceeded {
				return false
			}
		}
		return true
	})
	for _, ev := range []*hookd.Event{lost[1], live[1]} {
		if d := deliveryOf(t, r2, ev, "sink"); d != nil {
			t.Errorf("event %s that panicked routing: got a delivery %s, want none", ev.ID, d.Status)
		}
	}
}

// A stored event nested far too deep for a filter to read does not crash
// the start that routes it again: it matches no filter, and subscriptions
// without one still get it.
func TestStoredDeepEventIsRoutedAtStart(t *testing.T) {
	s := newSink(t, func(int, *http.Request) (int, http.Header) { return 200, nil })
	dir := t.TempDir()
	y := fmt.Sprintf(`
destinations:
  - {name: all, type: http, url: %s}
  - {name: filtered, type: http, url: %s}
subscriptions:
  - {destination: all}
  - {destination: filtered, filter: {not: {path: a, op: exists, value: true}}}
`, s.srv.URL, s.srv.URL)
	r := newRig(t, dir, engine.RealClock{}, y, engine.Options{})
	evs := stored(t, r, "a", strings.Repeat("[", 6<<20), `{"b":1}`)
	r.close()
	r2 := newRig(t, dir, engine.RealClock{}, y, engine.Options{MaxJSONDepth: 64})
	eventually(t, 10*time.Second, "deliveries", func() bool {
		return statusOf(t, r2, evs[0], "all") == store.StatusSucceeded && statusOf(t, r2, evs[1], "filtered") == store.StatusSucceeded
	})
	if d := deliveryOf(t, r2, evs[0], "filtered"); d != nil {
		t.Errorf("deep event to the filtered subscription: got a delivery %s, want none", d.Status)
	}
}
