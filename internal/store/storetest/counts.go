package storetest

import (
	"testing"
	"time"

	"hookd"
	"hookd/internal/store"
)

var countCases = []struct {
	name string
	fn   func(t *testing.T, st store.Store)
}{
	{"AttemptCounts", testAttemptCounts},
	{"AttemptLatency", testAttemptLatency},
	{"EventCounts", testEventCounts},
}

// outcome is the write of the outcome of an attempt of d: status, one
// attempt more, updated at at, fenced on fence.
func outcome(d *store.Delivery, status string, fence int, at time.Time) *store.DeliveryWrite {
	row := *d
	row.AttemptLog = nil
	row.Status, row.Attempts, row.RoundAttempts, row.UpdatedAt = status, d.Attempts+1, d.RoundAttempts+1, at
	if status == store.StatusRetrying {
		row.NextAttemptAt = at.Add(time.Minute)
	}
	return &store.DeliveryWrite{Delivery: &row, Fence: fence, Outcome: true}
}

// testAttemptCounts: the outcomes written with DeliveryWrite.Outcome are
// counted per destination, in all and per minute, once each, only when
// they apply; other writes are not; pruning minutes keeps the totals.
func testAttemptCounts(t *testing.T, st store.Store) {
	ctx := ctxFor(t)
	es := seedEvents(t, st, "src", base, 4)
	m0 := base.Truncate(time.Minute)
	m1 := m0.Add(time.Minute)
	a0 := newDelivery(es[0], "alpha", store.StatusPending, time.Time{})
	a1 := newDelivery(es[1], "alpha", store.StatusPending, time.Time{})
	a2 := newDelivery(es[2], "alpha", store.StatusPending, time.Time{})
	b0 := newDelivery(es[0], "beta", store.StatusPending, time.Time{})
	write := func(ws ...*store.DeliveryWrite) []string {
		t.Helper()
		skipped, err := st.DeliveryWriteMany(ctx, ws, 0)
		if err != nil {
			t.Fatalf("DeliveryWriteMany: %v", err)
		}
		return skipped
	}
	// A spill (pending, no attempt) is not an outcome.
	write(&store.DeliveryWrite{Delivery: a2, Fence: store.FenceInsertOnly})
	fresh := store.FenceInsertOnly
	write(outcome(a0, store.StatusSucceeded, fresh, m0.Add(10*time.Second)),
		outcome(a1, store.StatusRetrying, fresh, m0.Add(20*time.Second)),
		outcome(b0, store.StatusFailed, fresh, m0.Add(30*time.Second)))
	a1r := getDelivery(t, st, a1.ID)
	write(outcome(a1r, store.StatusFailed, 1, m1.Add(5*time.Second)))
	// A late outcome fenced on a stale attempt count is skipped: not
	// counted.
	if skipped := write(outcome(a1r, store.StatusSucceeded, 1, m1.Add(6*time.Second))); len(skipped) != 1 {
		t.Fatalf("stale outcome: skipped %v, want [%s]", skipped, a1.ID)
	}
	// An outcome in a batch with other writes counts too (not they).
	a2r := getDelivery(t, st, a2.ID)
	write(&store.DeliveryWrite{Delivery: newDelivery(es[3], "alpha", store.StatusPending, time.Time{}), Fence: store.FenceNone},
		outcome(a2r, store.StatusSucceeded, 0, m1.Add(7*time.Second)))

	got, err := st.AttemptCountTotals(ctx)
	if err != nil {
		t.Fatalf("AttemptCountTotals: %v", err)
	}
	want := map[string]store.AttemptCounts{
		"alpha": {Attempts: 4, Succeeded: 2, Retried: 1, Failed: 1},
		"beta":  {Attempts: 1, Failed: 1},
	}
	if len(got) != len(want) || got["alpha"] != want["alpha"] || got["beta"] != want["beta"] {
		t.Fatalf("AttemptCountTotals: got %+v, want %+v", got, want)
	}

	list := func(p store.AttemptCountListParams) []store.AttemptMinute {
		t.Helper()
		ms, err := st.AttemptCountList(ctx, &p)
		if err != nil {
			t.Fatalf("AttemptCountList(%+v): %v", p, err)
		}
		out := make([]store.AttemptMinute, len(ms))
		for i, m := range ms {
			out[i] = *m
		}
		return out
	}
	same := func(what string, got, want []store.AttemptMinute) {
		t.Helper()
		ok := len(got) == len(want)
		for i := 0; ok && i < len(got); i++ {
			ok = got[i].Destination == want[i].Destination && got[i].Minute.Equal(want[i].Minute) && got[i].AttemptCounts == want[i].AttemptCounts
		}
		if !ok {
			t.Fatalf("%s: got %+v, want %+v", what, got, want)
		}
	}
	all := []store.AttemptMinute{
		{Destination: "alpha", Minute: m0, AttemptCounts: store.AttemptCounts{Attempts: 2, Succeeded: 1, Retried: 1}},
		{Destination: "beta", Minute: m0, AttemptCounts: store.AttemptCounts{Attempts: 1, Failed: 1}},
		{Destination: "alpha", Minute: m1, AttemptCounts: store.AttemptCounts{Attempts: 2, Succeeded: 1, Failed: 1}},
	}
	same("every minute", list(store.AttemptCountListParams{}), all)
	same("alpha", list(store.AttemptCountListParams{Destination: "alpha"}), []store.AttemptMinute{all[0], all[2]})
	same("since m1", list(store.AttemptCountListParams{Since: m1}), all[2:])
	same("until m1", list(store.AttemptCountListParams{Until: m1}), all[:2])
	same("limit 1", list(store.AttemptCountListParams{Limit: 1}), all[:1])

	n, err := st.AttemptCountPrune(ctx, m1)
	if err != nil || n != 2 {
		t.Fatalf("AttemptCountPrune: got %d, %v; want 2 rows, nil", n, err)
	}
	same("after the prune", list(store.AttemptCountListParams{}), all[2:])
	if got, err := st.AttemptCountTotals(ctx); err != nil || got["alpha"] != want["alpha"] || got["beta"] != want["beta"] {
		t.Fatalf("AttemptCountTotals after the prune: got %+v, %v; want %+v", got, err, want)
	}
}

// testAttemptLatency: each outcome's duration (its Attempt's, else the
// delivery's LastDuration) is counted in its minute's latency histogram,
// and a listing with a step sums the minutes of each step.
func testAttemptLatency(t *testing.T, st store.Store) {
	ctx := ctxFor(t)
	es := seedEvents(t, st, "src", base, 3)
	m0 := base.Truncate(time.Hour)
	var ws []*store.DeliveryWrite
	durs := []time.Duration{3 * time.Millisecond, 40 * time.Millisecond, 20 * time.Second}
	for i, e := range es {
		w := outcome(newDelivery(e, "alpha", store.StatusPending, time.Time{}), store.StatusSucceeded, store.FenceInsertOnly,
			m0.Add(time.Duration(i)*10*time.Minute))
		if i == 2 {
			w.Delivery.LastDuration = durs[i]
		} else {
			w.Attempt = &store.Attempt{Number: 1, StartedAt: w.Delivery.UpdatedAt, Duration: durs[i], StatusCode: 200}
		}
		ws = append(ws, w)
	}
	if _, err := st.DeliveryWriteMany(ctx, ws, 0); err != nil {
		t.Fatalf("DeliveryWriteMany: %v", err)
	}
	ms, err := st.AttemptCountList(ctx, &store.AttemptCountListParams{})
	if err != nil || len(ms) != 3 {
		t.Fatalf("AttemptCountList: got %d rows, %v; want 3", len(ms), err)
	}
	for i, m := range ms {
		var want store.LatencyHistogram
		want[store.LatencyBucket(durs[i])] = 1
		if m.Latency != want {
			t.Errorf("minute %d latency: got %v, want %v", i, m.Latency, want)
		}
	}
	ms, err = st.AttemptCountList(ctx, &store.AttemptCountListParams{Step: 15 * time.Minute})
	if err != nil || len(ms) != 2 {
		t.Fatalf("AttemptCountList by 15m: got %d rows, %v; want 2", len(ms), err)
	}
	var want0 store.LatencyHistogram
	want0[store.LatencyBucket(durs[0])], want0[store.LatencyBucket(durs[1])] = 1, 1
	if !ms[0].Minute.Equal(m0) || ms[0].Attempts != 2 || ms[0].Latency != want0 || !ms[1].Minute.Equal(m0.Add(15*time.Minute)) || ms[1].Attempts != 1 {
		t.Fatalf("AttemptCountList by 15m: got %+v, %+v; want 2 attempts at %v (latency %v), 1 at +15m", *ms[0], *ms[1], m0, want0)
	}
}

// testEventCounts: every event stored is counted once in its source's
// minute of ReceivedAt, a duplicate is not; a step sums minutes; pruning
// drops old minutes.
func testEventCounts(t *testing.T, st store.Store) {
	ctx := ctxFor(t)
	m0 := base.Truncate(time.Hour)
	a := []*hookd.Event{newEvent("a", "x1", m0.Add(time.Second)), newEvent("a", "x2", m0.Add(2*time.Second)),
		newEvent("b", "", m0.Add(30*time.Second)), newEvent("a", "x3", m0.Add(20*time.Minute))}
	insert(t, st, window, a...)
	// x1 again: a duplicate, not counted.
	insert(t, st, window, newEvent("a", "x1", m0.Add(21*time.Minute)))
	list := func(p store.EventCountListParams) []store.EventMinute {
		t.Helper()
		ms, err := st.EventCountList(ctx, &p)
		if err != nil {
			t.Fatalf("EventCountList(%+v): %v", p, err)
		}
		out := make([]store.EventMinute, len(ms))
		for i, m := range ms {
			out[i] = *m
		}
		return out
	}
	same := func(what string, got, want []store.EventMinute) {
		t.Helper()
		ok := len(got) == len(want)
		for i := 0; ok && i < len(got); i++ {
			ok = got[i].Source == want[i].Source && got[i].Minute.Equal(want[i].Minute) && got[i].Events == want[i].Events
		}
		if !ok {
			t.Fatalf("%s: got %+v, want %+v", what, got, want)
		}
	}
	all := []store.EventMinute{{Source: "a", Minute: m0, Events: 2}, {Source: "b", Minute: m0, Events: 1},
		{Source: "a", Minute: m0.Add(20 * time.Minute), Events: 1}}
	same("every minute", list(store.EventCountListParams{}), all)
	same("source a", list(store.EventCountListParams{Source: "a"}), []store.EventMinute{all[0], all[2]})
	same("since +1m", list(store.EventCountListParams{Since: m0.Add(time.Minute)}), all[2:])
	same("hourly", list(store.EventCountListParams{Step: time.Hour}),
		[]store.EventMinute{{Source: "a", Minute: m0, Events: 3}, {Source: "b", Minute: m0, Events: 1}})
	n, err := st.EventCountPrune(ctx, m0.Add(time.Minute))
	if err != nil || n != 2 {
		t.Fatalf("EventCountPrune: got %d, %v; want 2 rows, nil", n, err)
	}
	same("after the prune", list(store.EventCountListParams{}), all[2:])
}
