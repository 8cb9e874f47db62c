package engine

import (
	"context"
	"errors"
	"fmt"
	"runtime/debug"
	"time"

	"hookd"
	"hookd/internal/destination"
	"hookd/internal/store"
)

// MaxReplayDestinations bounds the destinations of one event's replay.
const MaxReplayDestinations = 100

// ReplayEvent sends one stored event again to each of dests, chosen by an
// operator: to a destination it went to before (its delivery is queued
// again, attempts reset, as a retry does) or one it never went to (a new
// delivery). The event need not match a subscription of the destination
// now; the destination must exist and have at least one subscription,
// since a destination without any cancels what is queued to it. A delivery
// being attempted right now is left alone (its status shows it). It
// returns the deliveries as they are once queued, in dests' order.
func (e *Engine) ReplayEvent(ctx context.Context, eventID string, dests []string) ([]*store.Delivery, error) {
	if len(dests) == 0 {
		return nil, hookd.Errorf(hookd.EInvalid, "destinations: name at least one destination")
	}
	if len(dests) > MaxReplayDestinations {
		return nil, hookd.Errorf(hookd.EInvalid, "destinations: at most %d", MaxReplayDestinations)
	}
	seen := map[string]bool{}
	for _, name := range dests {
		if seen[name] {
			return nil, hookd.Errorf(hookd.EInvalid, "destinations: %q named twice", name)
		}
		seen[name] = true
		if _, err := e.Destination(name); err != nil {
			return nil, err
		}
		if !e.subscribed(name) {
			return nil, hookd.Errorf(hookd.EConflict, "destination %q has no subscription: what is queued to it would be cancelled (create a subscription first)", name)
		}
	}
	ev, err := e.st.EventGet(ctx, eventID)
	if errors.Is(err, store.ErrNotFound) {
		return nil, hookd.Errorf(hookd.ENotFound, "no event %q", eventID)
	}
	if err != nil {
		return nil, err
	}
	ds := make([]*store.Delivery, len(dests))
	for i, name := range dests {
		ds[i] = &store.Delivery{ID: store.DeliveryID(ev.ID, name), EventID: ev.ID, EventSeq: ev.Seq, EventKey: ev.Key, Destination: name}
	}
	if _, err := e.st.DeliveryReplayMany(ctx, ds, e.clock.Now()); err != nil {
		return nil, err
	}
	e.wakeReplayed(seen)
	out := make([]*store.Delivery, len(ds))
	for i, d := range ds {
		if out[i], err = e.st.DeliveryGet(ctx, d.ID); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// TestTimeout bounds a test attempt, whatever the destination's own
// timeouts.
const TestTimeout = 30 * time.Second

// TestResult is the outcome of a test attempt.
type TestResult struct {
	// Outcome is what the attempt would have made of a delivery:
	// succeeded, retry, failed (no retry could change it) or disable (the
	// destination answered 410 Gone; a test disables nothing).
	Outcome string `json:"outcome"`
	// StatusCode is the answer's status for HTTP-like destinations.
	StatusCode int `json:"status_code,omitempty"`
	// Response is at most destination.MaxExcerpt bytes of the answer.
	Response string `json:"response,omitempty"`
	// Error is the attempt's error, when it did not succeed.
	Error      string  `json:"error,omitempty"`
	DurationMS float64 `json:"duration_ms"`
	// EventID is the test event's id (it is sent, not stored).
	EventID string `json:"event_id"`
}

// DestinationTest sends ev to the destination name once and returns what
// came of it: one attempt, made now from this process, whether the
// destination is enabled or not, outside its queue, rate limit and retry
// policy. Nothing is stored: the event, the attempt and its outcome are
// only in the answer. The attempt goes through the destination as a
// delivery would (its signing, headers and egress guard). ev gets a fresh
// id and request id, received now.
func (e *Engine) DestinationTest(ctx context.Context, name string, ev *hookd.Event) (TestResult, error) {
	now := e.clock.Now()
	ev.RequestID = hookd.RequestIDPrefix + hookd.NewULID(now)
	ev.ID, ev.ReceivedAt = hookd.EventIDForRequest(ev.RequestID), now
	e.mu.Lock()
	de := e.dests[name]
	var d *dispatcher
	if de != nil {
		d = de.d
	}
	e.mu.Unlock()
	if d == nil {
		return TestResult{}, hookd.Errorf(hookd.ENotFound, "no destination named %q", name)
	}
	ctx, cancel := context.WithTimeout(ctx, TestTimeout)
	defer cancel()
	start := e.clock.Now()
	res, err := e.testDeliver(ctx, name, d.dest, &destination.Message{Event: ev, DeliveryID: store.DeliveryID(ev.ID, name), Attempt: 1})
	end := e.clock.Now()
	// Attempt 1 of a policy that never retries would say failed; the
	// destination's own policy says whether a delivery would be retried.
	dec := Decide(d.policy, 1, start, end, err)
	r := TestResult{Outcome: dec.Outcome.String(), StatusCode: res.StatusCode, Response: string(res.ResponseExcerpt),
		DurationMS: float64(end.Sub(start).Microseconds()) / 1000, EventID: ev.ID}
	if err != nil {
		r.Error = err.Error()
	}
	return r, nil
}

// testDeliver is Deliver with a panic turned into the attempt's error, and
// logged with its stack.
func (e *Engine) testDeliver(ctx context.Context, name string, d destination.Destination, m *destination.Message) (res destination.Result, err error) {
	defer func() {
		if r := recover(); r != nil {
			e.log.Error("test attempt panicked", "destination", name, "panic", fmt.Sprint(r), "stack", string(debug.Stack()))
			res, err = destination.Result{}, fmt.Errorf("internal error: panic: %v", r)
		}
	}()
	return d.Deliver(ctx, m)
}
