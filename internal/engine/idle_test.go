package engine_test

import (
	"fmt"
	"math/rand/v2"
	"net/http"
	"sync/atomic"
	"testing"
	"time"

	"hookd"
	"hookd/internal/engine"
	"hookd/internal/store"
)

// A destination whose goroutine exited while its delivery waits for a
// retry is woken by the scheduler when the retry is due, for each
// ordering (none: the retry waits in the store; fifo and key: in the
// lane, in memory).
func TestIdleDispatcherWakesForItsRetry(t *testing.T) {
	for _, ordering := range []string{"none", "fifo", "key"} {
		t.Run(ordering, func(t *testing.T) {
			var n atomic.Int64
			s := newSink(t, func(int, *http.Request) (int, http.Header) {
				if n.Add(1) == 1 {
					return 503, nil
				}
				return 200, nil
			})
			clk := engine.NewFakeClock(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
			extra := fmt.Sprintf("    ordering: %s\n    retry: {policy: schedule, schedule: [\"10m\"]}", ordering)
			r := newRig(t, t.TempDir(), clk, destYAML("later", s.srv.URL, extra), engine.Options{IdleAfter: 10 * time.Millisecond})
			ev := r.publish(&hookd.Event{Type: "a", Key: "k"})[0]
			eventually(t, 10*time.Second, "the first attempt", func() bool { return statusOf(t, r, ev, "later") == store.StatusRetrying })
			eventually(t, 10*time.Second, "the idle dispatcher to exit", func() bool { return !engine.DispatcherRunning(r.eng, "later") })
			clk.Advance(10 * time.Minute)
			eventually(t, 10*time.Second, "the retry", func() bool { return statusOf(t, r, ev, "later") == store.StatusSucceeded })
			if got := n.Load(); got != 2 {
				t.Fatalf("requests: got %d, want 2", got)
			}
		})
	}
}

// Work that arrives while a dispatcher decides to exit is not lost: with
// a dispatcher that exits after a millisecond idle, events published at
// random moments are all delivered, in order per key.
func TestIdleDispatcherLosesNoWakeUp(t *testing.T) {
	for _, ordering := range []string{"none", "key"} {
		t.Run(ordering, func(t *testing.T) {
			s := newSink(t, nil)
			r := newRig(t, t.TempDir(), engine.RealClock{}, destYAML("edge", s.srv.URL, "    ordering: "+ordering), engine.Options{IdleAfter: time.Millisecond})
			evs := keyed([]string{"k1", "k2"}, 60)
			for i := range evs {
				r.publish(evs[i])
				if d := rand.IntN(3); d > 0 {
					time.Sleep(time.Duration(d) * time.Millisecond)
				}
			}
			eventually(t, 30*time.Second, "every event delivered", func() bool {
				for _, ev := range evs {
					if statusOf(t, r, ev, "edge") != store.StatusSucceeded {
						return false
					}
				}
				return true
			})
			if ordering == "key" {
				checkOrdered(t, s.hits(), func(int) bool { return true })
			}
			if got := len(s.hits()); got != len(evs) {
				t.Fatalf("requests: got %d, want %d", got, len(evs))
			}
		})
	}
}
