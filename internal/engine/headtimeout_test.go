package engine_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"hookd"
	"hookd/internal/engine"
	"hookd/internal/store"
)

// headSink answers 500 to every request whose body is poison until
// healed is set, and 200 to the rest.
func headSink(t *testing.T, poison string, healed *atomic.Bool) *sink {
	var s *sink
	s = newSink(t, func(n int, _ *http.Request) (int, http.Header) {
		if s.hits()[n].body == poison && !healed.Load() {
			return 500, nil
		}
		return 200, nil
	})
	return s
}

// stepHead moves the fake clock to the next attempt of a retrying
// delivery, waits until that attempt is recorded and returns the
// delivery's status then. While it is retrying, its lane cannot move
// before the clock does.
func stepHead(t *testing.T, clk *engine.FakeClock, r *rig, ev *hookd.Event, dest string) string {
	t.Helper()
	r.eng.Flush(context.Background())
	d := deliveryOf(t, r, ev, dest)
	if d == nil || d.Status != store.StatusRetrying {
		t.Fatalf("the head is not retrying: %+v", d)
	}
	// The store keeps microseconds: the due time in memory may be up to
	// a microsecond later than the row says.
	if wait := d.NextAttemptAt.Add(time.Microsecond).Sub(clk.Now()); wait > 0 {
		clk.Advance(wait)
	}
	var status string
	eventually(t, 10*time.Second, "the head's next attempt", func() bool {
		r.eng.Flush(context.Background())
		got := deliveryOf(t, r, ev, dest)
		status = got.Status
		return got.Attempts > d.Attempts && got.Status != store.StatusDelivering
	})
	return status
}

// bodyN reads {"key":…,"n":…} of a hit.
func bodyN(t *testing.T, h hit) (string, int) {
	t.Helper()
	var b struct {
		Key string `json:"key"`
		N   int    `json:"n"`
	}
	if err := json.Unmarshal([]byte(h.body), &b); err != nil {
		t.Fatal(err)
	}
	return b.Key, b.N
}

// A fifo (or key) destination whose head fails retriably for longer than
// head_timeout moves that head to the failed queue, and the rest flows in
// order. The head can be retried like any failed delivery.
func TestFailingHeadMovesAfterHeadTimeout(t *testing.T) {
	for _, ordering := range []string{"fifo", "key"} {
		t.Run(ordering, func(t *testing.T) {
			clk := engine.NewFakeClock(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
			var healed atomic.Bool
			evs := keyed([]string{"k1", "k2"}, 4) // k1 n0, k2 n0, k1 n1, k2 n1, …
			s := headSink(t, string(evs[0].Body), &healed)
			extra := fmt.Sprintf("    ordering: %s\n    head_timeout: 10m", ordering)
			r := newRig(t, t.TempDir(), clk, destYAML("ord", s.srv.URL, extra), engine.Options{})
			head := r.publish(evs[0])[0]
			eventually(t, 10*time.Second, "the head failing", func() bool {
				r.eng.Flush(context.Background())
				return statusOf(t, r, head, "ord") == store.StatusRetrying
			})
			r.publish(evs[1:]...)
			if ordering == "key" {
				// Another key is not held by k1's head.
				eventually(t, 10*time.Second, "k2 delivered while k1's head fails", func() bool {
					for _, ev := range evs[1:] {
						if ev.Key == "k2" && statusOf(t, r, ev, "ord") != store.StatusSucceeded {
							return false
						}
					}
					return true
				})
			}

			steps := 0
			for stepHead(t, clk, r, head, "ord") == store.StatusRetrying {
				if steps++; steps > 100 {
					t.Fatalf("the head is still retrying after %d attempts", steps)
				}
				// While it is retrying, nothing of its lane behind it
				// was sent.
				for _, h := range s.hits() {
					if k, n := bodyN(t, h); k == "k1" && n > 0 {
						t.Fatalf("k1 n=%d sent while the head of its lane was retrying", n)
					}
					if ordering == "fifo" && h.id != head.ID {
						t.Fatalf("fifo: %s sent while the head was retrying", h.id)
					}
				}
			}
			d := deliveryOf(t, r, head, "ord")
			if d.Status != store.StatusFailed || d.Reason != engine.ReasonHeadTimeout {
				t.Fatalf("head: status %q reason %q, want failed with %q", d.Status, d.Reason, engine.ReasonHeadTimeout)
			}
			// The default policy would wait until 10m35s for the next
			// attempt: the last one is pulled back to head_timeout.
			if held := d.LastAttemptAt.Sub(d.FirstAttemptAt); held < 10*time.Minute || held > 10*time.Minute+time.Millisecond {
				t.Errorf("the head's last attempt came %s after its first, want 10m (head_timeout)", held)
			}
			if !strings.Contains(d.LastError, "500") {
				t.Errorf("last_error %q does not carry the receiver's answer", d.LastError)
			}
			t.Logf("head: %d attempts over %s, then failed with %q", d.Attempts, d.LastAttemptAt.Sub(d.FirstAttemptAt), d.Reason)

			eventually(t, 10*time.Second, "the rest delivered", func() bool {
				for _, ev := range evs[1:] {
					if statusOf(t, r, ev, "ord") != store.StatusSucceeded {
						return false
					}
				}
				return true
			})
			// The rest arrived once each, in event order (fifo) or in
			// order per key, k1 starting at n=1.
			var got []*hookd.Event
			idx := map[string]int{}
			for i, ev := range evs {
				idx[ev.ID] = i
			}
			next := map[string]int{"k1": 1}
			last := -1
			for _, h := range s.hits() {
				if h.id == head.ID {
					continue
				}
				k, n := bodyN(t, h)
				if n != next[k] {
					t.Fatalf("key %s: got n=%d, want n=%d", k, n, next[k])
				}
				next[k]++
				if ordering == "fifo" {
					if idx[h.id] < last {
						t.Fatalf("fifo: event %d sent after event %d", idx[h.id], last)
					}
					last = idx[h.id]
				}
				got = append(got, evs[idx[h.id]])
			}
			if len(got) != len(evs)-1 {
				t.Fatalf("the rest: %d requests, want %d", len(got), len(evs)-1)
			}

			// The head is in the failed queue like any other: once the
			// receiver is fixed, a retry delivers it.
			healed.Store(true)
			if _, err := r.eng.Retry(context.Background(), d.ID); err != nil {
				t.Fatal(err)
			}
			eventually(t, 10*time.Second, "the retried head delivered", func() bool {
				return statusOf(t, r, head, "ord") == store.StatusSucceeded
			})
		})
	}
}

// Without head_timeout, strict order holds: a fifo head that keeps
// failing blocks the events behind it for as long as its retry policy
// lasts.
func TestFailingHeadBlocksByDefault(t *testing.T) {
	clk := engine.NewFakeClock(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	var healed atomic.Bool
	s := headSink(t, `{"head":true}`, &healed)
	r := newRig(t, t.TempDir(), clk, destYAML("strict", s.srv.URL, "    ordering: fifo"), engine.Options{})
	head := &hookd.Event{Type: "a", Body: []byte(`{"head":true}`)}
	evs := append([]*hookd.Event{head}, events(5, "a")...)
	r.publish(head)
	eventually(t, 10*time.Second, "the head failing", func() bool {
		r.eng.Flush(context.Background())
		return statusOf(t, r, head, "strict") == store.StatusRetrying
	})
	r.publish(evs[1:]...)
	start := clk.Now()
	for clk.Now().Sub(start) < 2*time.Hour {
		if st := stepHead(t, clk, r, head, "strict"); st != store.StatusRetrying {
			t.Fatalf("the head left retrying: %+v", deliveryOf(t, r, head, "strict"))
		}
	}
	r.eng.Flush(context.Background())
	for _, h := range s.hits() {
		if h.id != head.ID {
			t.Fatalf("an event behind the failing head was sent after %s", clk.Now().Sub(start))
		}
	}
	for _, ev := range evs[1:] {
		if st := statusOf(t, r, ev, "strict"); st != store.StatusPending {
			t.Fatalf("an event behind the head: %q, want pending", st)
		}
	}
	t.Logf("after %s and %d attempts of the head, nothing behind it was sent", clk.Now().Sub(start), len(s.hits()))
	// Once the receiver takes the head, the rest follows in order.
	healed.Store(true)
	stepHead(t, clk, r, head, "strict")
	eventually(t, 10*time.Second, "every event delivered", func() bool {
		for _, ev := range evs {
			if statusOf(t, r, ev, "strict") != store.StatusSucceeded {
				return false
			}
		}
		return true
	})
}

// A head told to come back (Retry-After) later than head_timeout allows
// goes to failed at once rather than holding its lane until then.
func TestHeadTimeoutAndRetryAfter(t *testing.T) {
	clk := engine.NewFakeClock(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	var s *sink
	s = newSink(t, func(n int, _ *http.Request) (int, http.Header) {
		if s.hits()[n].body == `{"head":true}` {
			return 503, http.Header{"Retry-After": {"3600"}}
		}
		return 200, nil
	})
	r := newRig(t, t.TempDir(), clk, destYAML("busy", s.srv.URL, "    ordering: fifo\n    head_timeout: 10m"), engine.Options{})
	head := r.publish(&hookd.Event{Type: "a", Body: []byte(`{"head":true}`)})[0]
	rest := r.publish(events(3, "a")...)
	eventually(t, 10*time.Second, "the rest delivered", func() bool {
		for _, ev := range rest {
			if statusOf(t, r, ev, "busy") != store.StatusSucceeded {
				return false
			}
		}
		return true
	})
	d := deliveryOf(t, r, head, "busy")
	if d.Status != store.StatusFailed || d.Reason != engine.ReasonHeadTimeout || d.Attempts != 1 {
		t.Fatalf("head: status %q reason %q after %d attempts; want failed, %q, 1", d.Status, d.Reason, d.Attempts, engine.ReasonHeadTimeout)
	}
}

// head_timeout is checked when a destination is created through the API,
// and shown with it.
func TestHeadTimeoutThroughTheAPI(t *testing.T) {
	s := newSink(t, nil)
	r := newRig(t, t.TempDir(), engine.RealClock{}, destYAML("cfg", s.srv.URL, ""), engine.Options{})
	for _, tt := range []struct{ name, spec, want string }{
		{"Negative", `{"ordering": "fifo", "head_timeout": "-5m"}`, "head_timeout: must be positive"},
		{"OrderingNone", `{"head_timeout": "5m"}`, "head_timeout: only with ordering fifo or key"},
		{"NotADuration", `{"ordering": "key", "head_timeout": "soon"}`, "invalid duration"},
		{"Number", `{"ordering": "key", "head_timeout": 300}`, "invalid duration"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			spec := fmt.Sprintf(`{"name": "x", "type": "http", "url": %q, %s`, s.srv.URL, tt.spec[1:])
			_, err := r.eng.DestinationPut(context.Background(), "", []byte(spec), true)
			if hookd.ErrorCode(err) != hookd.EInvalid || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("got %v, want an invalid-input error containing %q", err, tt.want)
			}
		})
	}
	spec := fmt.Sprintf(`{"name": "ok", "type": "http", "url": %q, "ordering": "fifo", "head_timeout": "10m"}`, s.srv.URL)
	v, err := r.eng.DestinationPut(context.Background(), "", []byte(spec), true)
	if err != nil {
		t.Fatal(err)
	}
	if v.HeadTimeout != "10m0s" {
		t.Fatalf("head_timeout shown as %q, want 10m0s", v.HeadTimeout)
	}
}

// head_timeout set on a lane that is already blocked (here: at a restart,
// with the head's next retry stored six hours ahead) takes effect at
// first attempt + head_timeout, not at the stored retry.
func TestHeadTimeoutSetOnABlockedLane(t *testing.T) {
	clk := engine.NewFakeClock(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	var healed atomic.Bool
	s := headSink(t, `{"head":true}`, &healed)
	dir := t.TempDir()
	y := destYAML("ledger", s.srv.URL, "    ordering: fifo\n    retry: {policy: schedule, schedule: [\"6h\", \"6h\"]}")
	r := newRig(t, dir, clk, y, engine.Options{})
	head := r.publish(&hookd.Event{Type: "a", Body: []byte(`{"head":true}`)})[0]
	eventually(t, 10*time.Second, "the head failing", func() bool {
		r.eng.Flush(context.Background())
		return statusOf(t, r, head, "ledger") == store.StatusRetrying
	})
	rest := r.publish(events(3, "a")...)
	r.close()

	r2 := newRig(t, dir, clk, strings.Replace(y, "    ordering: fifo\n", "    ordering: fifo\n    head_timeout: 10m\n", 1), engine.Options{})
	clk.Advance(10*time.Minute + time.Microsecond)
	eventually(t, 10*time.Second, "the rest delivered", func() bool {
		for _, ev := range rest {
			if statusOf(t, r2, ev, "ledger") != store.StatusSucceeded {
				return false
			}
		}
		return true
	})
	d := deliveryOf(t, r2, head, "ledger")
	if d.Status != store.StatusFailed || d.Reason != engine.ReasonHeadTimeout || d.Attempts != 2 {
		t.Fatalf("head: status %q reason %q after %d attempts; want failed, %q, 2", d.Status, d.Reason, d.Attempts, engine.ReasonHeadTimeout)
	}
}
