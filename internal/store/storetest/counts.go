package storetest

import (
	"testing"
	"time"

	"hookd/internal/store"
)

var countCases = []struct {
	name string
	fn   func(t *testing.T, st store.Store)
}{
	{"AttemptCounts", testAttemptCounts},
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
