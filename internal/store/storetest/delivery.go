package storetest

import (
	"bytes"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"testing"
	"time"

	"hookd"
	"hookd/internal/store"
)

// deliveryCases are the conformance cases of store.DeliveryStore.
var deliveryCases = []struct {
	name string
	fn   func(t *testing.T, st store.Store)
}{
	{"DeliveryWriteRoundTrip", testDeliveryWriteRoundTrip},
	{"DeliveryWriteFence", testDeliveryWriteFence},
	{"DeliveryWriteInsertOnly", testDeliveryWriteInsertOnly},
	{"DeliveryAttemptLog", testDeliveryAttemptLog},
	{"DeliveryListByEvent", testDeliveryListByEvent},
	{"DeliveryGetNotFound", testDeliveryGetNotFound},
	{"Watermark", testWatermark},
	{"DeliveryClaimDue", testDeliveryClaimDue},
	{"DeliveryClaimDueExpiredLease", testDeliveryClaimDueExpiredLease},
	{"DeliveryLoadOrdered", testDeliveryLoadOrdered},
	{"DeliveryNextDue", testDeliveryNextDue},
	{"DeliveryReleaseAll", testDeliveryReleaseAll},
	{"DeliveryReplayMany", testDeliveryReplayMany},
	{"DeliveryListOrderAndPagination", testDeliveryListPagination},
	{"DeliveryListFilters", testDeliveryListFilters},
	{"DeliveryListInvalidCursor", testDeliveryListInvalidCursor},
	{"DeliveryCountByStatus", testDeliveryCountByStatus},
	{"DeliveryExisting", testDeliveryExisting},
	{"EventMaxSeqAndCount", testEventMaxSeqAndCount},
	{"EventListByDeliveryStatus", testEventListByDeliveryStatus},
	{"Destinations", testDestinations},
	{"DestinationDisabledState", testDestinationDisabledState},
	{"Subscriptions", testSubscriptions},
	{"Prune", testPrune},
	{"Sources", testSources},
	{"DestinationFailingSince", testDestinationFailingSince},
	{"DestinationSwitch", testDestinationSwitch},
	{"DeliveryCountByDestination", testDeliveryCountByDestination},
}

// seededEvent is a stored event and its seq.
type seededEvent struct {
	*hookd.Event
	Seq int64
}

// seedEvents stores n events of source src, one second apart from start.
func seedEvents(t *testing.T, st store.Store, src string, start time.Time, n int) []seededEvent {
	t.Helper()
	es := make([]*hookd.Event, n)
	for i := range es {
		es[i] = newEvent(src, "", start.Add(time.Duration(i)*time.Second))
	}
	res := insert(t, st, 0, es...)
	out := make([]seededEvent, n)
	for i, r := range res {
		out[i] = seededEvent{es[i], r.Seq}
	}
	return out
}

// newDelivery is the delivery of e to dest, in status, due at next.
func newDelivery(e seededEvent, dest, status string, next time.Time) *store.Delivery {
	return &store.Delivery{
		ID:             store.DeliveryID(e.ID, dest),
		EventID:        e.ID,
		EventSeq:       e.Seq,
		EventKey:       e.Key,
		Destination:    dest,
		SubscriptionID: "sub_" + dest,
		Status:         status,
		NextAttemptAt:  next,
		CreatedAt:      base,
		UpdatedAt:      base,
	}
}

// writeAll stores ds unconditionally in one DeliveryWriteMany call.
func writeAll(t *testing.T, st store.Store, ds ...*store.Delivery) {
	t.Helper()
	ws := make([]*store.DeliveryWrite, len(ds))
	for i, d := range ds {
		ws[i] = &store.DeliveryWrite{Delivery: d, Fence: -1}
	}
	if skipped, err := st.DeliveryWriteMany(ctxFor(t), ws, 0); err != nil || len(skipped) != 0 {
		t.Fatalf("DeliveryWriteMany: got skipped %v, error %v, want none, nil", skipped, err)
	}
}

func getDelivery(t *testing.T, st store.Store, id string) *store.Delivery {
	t.Helper()
	d, err := st.DeliveryGet(ctxFor(t), id)
	if err != nil {
		t.Fatalf("DeliveryGet(%s): %v", id, err)
	}
	return d
}

func us(t time.Time) time.Time { return t.Truncate(time.Microsecond) }

func sameTime(got, want time.Time) bool {
	w := us(want)
	return got.IsZero() == w.IsZero() && got.Equal(w)
}

// checkDelivery compares every stored field (times at microsecond
// precision) but the attempt log.
func checkDelivery(t *testing.T, got, want *store.Delivery) {
	t.Helper()
	id := want.ID
	type field struct {
		name      string
		got, want any
	}
	for _, f := range []field{
		{"ID", got.ID, want.ID},
		{"EventID", got.EventID, want.EventID},
		{"EventSeq", got.EventSeq, want.EventSeq},
		{"EventKey", got.EventKey, want.EventKey},
		{"Destination", got.Destination, want.Destination},
		{"SubscriptionID", got.SubscriptionID, want.SubscriptionID},
		{"Status", got.Status, want.Status},
		{"Attempts", got.Attempts, want.Attempts},
		{"RoundAttempts", got.RoundAttempts, want.RoundAttempts},
		{"LastStatusCode", got.LastStatusCode, want.LastStatusCode},
		{"LastError", got.LastError, want.LastError},
		{"LastDuration", got.LastDuration, want.LastDuration.Truncate(time.Microsecond)},
		{"Reason", got.Reason, want.Reason},
	} {
		if f.got != f.want {
			t.Errorf("%s: got %s %v, want %v", id, f.name, f.got, f.want)
		}
	}
	for _, f := range []struct {
		name      string
		got, want time.Time
	}{
		{"FirstAttemptAt", got.FirstAttemptAt, want.FirstAttemptAt},
		{"NextAttemptAt", got.NextAttemptAt, want.NextAttemptAt},
		{"LeaseUntil", got.LeaseUntil, want.LeaseUntil},
		{"LastAttemptAt", got.LastAttemptAt, want.LastAttemptAt},
		{"CreatedAt", got.CreatedAt, want.CreatedAt},
		{"UpdatedAt", got.UpdatedAt, want.UpdatedAt},
	} {
		if !sameTime(f.got, f.want) {
			t.Errorf("%s: got %s %v, want %v", id, f.name, f.got, us(f.want))
		}
	}
	if !bytes.Equal(got.LastExcerpt, want.LastExcerpt) {
		t.Errorf("%s: got LastExcerpt %q, want %q", id, got.LastExcerpt, want.LastExcerpt)
	}
}

func checkLog(t *testing.T, id string, got, want []*store.Attempt) {
	t.Helper()
	if len(got) != len(want) {
		t.Errorf("%s: got %d attempts in the log, want %d", id, len(got), len(want))
		return
	}
	for i, w := range want {
		g := got[i]
		if g.Number != w.Number || g.StatusCode != w.StatusCode || g.Error != w.Error ||
			g.Duration != w.Duration.Truncate(time.Microsecond) || !sameTime(g.StartedAt, w.StartedAt) ||
			!bytes.Equal(g.ResponseExcerpt, w.ResponseExcerpt) {
			t.Errorf("%s: attempt %d: got %+v, want %+v", id, i, *g, *w)
		}
	}
}

func deliveryIDs(ds []*store.Delivery) []string {
	out := make([]string, len(ds))
	for i, d := range ds {
		out[i] = d.ID
	}
	return out
}

func testDeliveryWriteRoundTrip(t *testing.T, st store.Store) {
	e := seedEvents(t, st, "src", base, 1)[0]
	e.Key = "k-1"
	full := newDelivery(e, "full", store.StatusRetrying, base.Add(time.Minute))
	full.Attempts, full.RoundAttempts = 3, 2
	full.FirstAttemptAt = base.Add(-time.Minute)
	full.LeaseUntil = base.Add(30 * time.Second)
	full.LastAttemptAt = base.Add(-time.Second)
	full.LastStatusCode = 503
	full.LastError = "upstream said no ✗"
	full.LastDuration = 1234567 * time.Nanosecond
	full.LastExcerpt = []byte{0x00, 0xff, 'o', 'k'}
	full.Reason = "why not"
	full.CreatedAt = base.Add(-time.Hour)
	full.UpdatedAt = base.Add(-time.Second)
	// The fewest fields a row can have; its times are the write's.
	bare := &store.Delivery{EventID: e.ID, EventSeq: e.Seq, Destination: "bare", Status: store.StatusSucceeded}
	before := time.Now().Add(-time.Second)
	writeAll(t, st, full, bare)
	after := time.Now().Add(time.Second)
	checkDelivery(t, getDelivery(t, st, full.ID), full)

	got := getDelivery(t, st, store.DeliveryID(e.ID, "bare"))
	want := *bare
	want.ID = store.DeliveryID(e.ID, "bare")
	want.CreatedAt, want.UpdatedAt = got.CreatedAt, got.UpdatedAt
	checkDelivery(t, got, &want)
	for name, at := range map[string]time.Time{"CreatedAt": got.CreatedAt, "UpdatedAt": got.UpdatedAt} {
		if at.Before(before) || at.After(after) {
			t.Errorf("row written with a zero %s: got %v, want the time of the write (%v..%v)", name, at, before, after)
		}
	}
	if len(got.AttemptLog) != 0 {
		t.Errorf("row never attempted: got %d attempts, want none", len(got.AttemptLog))
	}

	// A pending row without a due time is due at once.
	pending := &store.Delivery{EventID: e.ID, EventSeq: e.Seq, Destination: "due", Status: store.StatusPending}
	writeAll(t, st, pending)
	if next := getDelivery(t, st, store.DeliveryID(e.ID, "due")).NextAttemptAt; next.IsZero() || next.After(time.Now()) {
		t.Errorf("pending row written without NextAttemptAt: got NextAttemptAt %v, want the time of the write", next)
	}

	// An update keeps CreatedAt and clears what the write leaves empty.
	upd := newDelivery(e, "full", store.StatusSucceeded, time.Time{})
	upd.Attempts, upd.RoundAttempts = 4, 3
	upd.LastAttemptAt, upd.LastStatusCode = base, 200
	upd.CreatedAt = base.Add(time.Hour)
	upd.UpdatedAt = base.Add(time.Minute)
	writeAll(t, st, upd)
	want = *upd
	want.CreatedAt = full.CreatedAt
	checkDelivery(t, getDelivery(t, st, full.ID), &want)
}

func testDeliveryWriteFence(t *testing.T, st store.Store) {
	es := seedEvents(t, st, "src", base, 3)
	a := newDelivery(es[0], "d", store.StatusRetrying, base)
	a.Attempts = 2
	b := newDelivery(es[1], "d", store.StatusRetrying, base)
	b.Attempts = 5
	ctx := ctxFor(t)
	// A fresh row is inserted whatever its fence.
	skipped, err := st.DeliveryWriteMany(ctx, []*store.DeliveryWrite{{Delivery: a, Fence: 7}, {Delivery: b, Fence: 0}}, 0)
	if err != nil || len(skipped) != 0 {
		t.Fatalf("fresh rows: got skipped %v, error %v, want none, nil", skipped, err)
	}
	checkDelivery(t, getDelivery(t, st, a.ID), a)
	checkDelivery(t, getDelivery(t, st, b.ID), b)

	// a's result carries the right fence (2); b's is stale (4, not 5); c
	// is fresh.
	a2 := *a
	a2.Status, a2.Attempts, a2.LastStatusCode = store.StatusSucceeded, 3, 200
	b2 := *b
	b2.Status, b2.Attempts, b2.LastStatusCode = store.StatusFailed, 5, 410
	c := newDelivery(es[2], "d", store.StatusSucceeded, time.Time{})
	c.Attempts = 1
	skipped, err = st.DeliveryWriteMany(ctx, []*store.DeliveryWrite{
		{Delivery: &a2, Fence: 2, Attempt: &store.Attempt{Number: 3, StartedAt: base, StatusCode: 200}},
		{Delivery: &b2, Fence: 4, Attempt: &store.Attempt{Number: 5, StartedAt: base, StatusCode: 410}},
		{Delivery: c, Fence: 0},
	}, 0)
	if err != nil {
		t.Fatalf("DeliveryWriteMany: %v", err)
	}
	if !reflect.DeepEqual(skipped, []string{b.ID}) {
		t.Errorf("stale fence: got skipped %v, want [%s]", skipped, b.ID)
	}
	checkDelivery(t, getDelivery(t, st, a.ID), &a2)
	gotB := getDelivery(t, st, b.ID)
	checkDelivery(t, gotB, b)
	if len(gotB.AttemptLog) != 0 {
		t.Errorf("skipped write: got %d attempts logged, want none (its attempt is skipped too)", len(gotB.AttemptLog))
	}
	checkDelivery(t, getDelivery(t, st, c.ID), c)

	// Fence -1 applies whatever is stored.
	b3 := *b
	b3.Status, b3.Attempts = store.StatusPending, 9
	skipped, err = st.DeliveryWriteMany(ctx, []*store.DeliveryWrite{{Delivery: &b3, Fence: -1}}, 0)
	if err != nil || len(skipped) != 0 {
		t.Fatalf("Fence -1: got skipped %v, error %v, want none, nil", skipped, err)
	}
	checkDelivery(t, getDelivery(t, st, b.ID), &b3)

	// Two writes to one row in one batch: the second is fenced by the first.
	b4, b5 := b3, b3
	b4.Attempts, b5.Attempts = 10, 11
	skipped, err = st.DeliveryWriteMany(ctx, []*store.DeliveryWrite{{Delivery: &b4, Fence: 9}, {Delivery: &b5, Fence: 9}}, 0)
	if err != nil || !reflect.DeepEqual(skipped, []string{b.ID}) {
		t.Fatalf("two writes with fence 9: got skipped %v, error %v, want [%s], nil", skipped, err, b.ID)
	}
	if got := getDelivery(t, st, b.ID).Attempts; got != 10 {
		t.Errorf("two writes with fence 9: got Attempts %d, want 10 (the first)", got)
	}
}

func testDeliveryAttemptLog(t *testing.T, st store.Store) {
	e := seedEvents(t, st, "src", base, 1)[0]
	ctx := ctxFor(t)
	// Two failed attempts, each logged, then a success on the row only.
	d := newDelivery(e, "d", store.StatusRetrying, base.Add(time.Second))
	fail1 := &store.Attempt{Number: 1, StartedAt: base, Duration: 1500 * time.Microsecond, StatusCode: 500, Error: "boom", ResponseExcerpt: []byte("oops")}
	fail2 := &store.Attempt{StartedAt: base.Add(time.Second), Duration: time.Second, Error: "connection refused"} // Number 0: Attempts
	d.Attempts, d.RoundAttempts, d.LastAttemptAt, d.LastStatusCode, d.LastError = 1, 1, fail1.StartedAt, 500, "boom"
	if _, err := st.DeliveryWriteMany(ctx, []*store.DeliveryWrite{{Delivery: d, Fence: -1, Attempt: fail1}}, 0); err != nil {
		t.Fatalf("DeliveryWriteMany: %v", err)
	}
	d2 := *d
	d2.Attempts, d2.RoundAttempts, d2.LastAttemptAt, d2.LastStatusCode, d2.LastError = 2, 2, fail2.StartedAt, 0, fail2.Error
	d2.LastDuration = fail2.Duration
	if _, err := st.DeliveryWriteMany(ctx, []*store.DeliveryWrite{{Delivery: &d2, Fence: 1, Attempt: fail2}}, 0); err != nil {
		t.Fatalf("DeliveryWriteMany: %v", err)
	}
	// The row's last attempt is the logged one: shown once.
	wantFail2 := *fail2
	wantFail2.Number = 2
	checkLog(t, d.ID, getDelivery(t, st, d.ID).AttemptLog, []*store.Attempt{fail1, &wantFail2})

	d3 := d2
	d3.Status, d3.Attempts, d3.RoundAttempts = store.StatusSucceeded, 3, 3
	d3.LastAttemptAt, d3.LastStatusCode, d3.LastError = base.Add(2*time.Second), 204, ""
	d3.LastDuration, d3.LastExcerpt = 250*time.Millisecond, []byte("thanks")
	if _, err := st.DeliveryWriteMany(ctx, []*store.DeliveryWrite{{Delivery: &d3, Fence: 2}}, 0); err != nil {
		t.Fatalf("DeliveryWriteMany: %v", err)
	}
	success := &store.Attempt{Number: 3, StartedAt: d3.LastAttemptAt, Duration: d3.LastDuration, StatusCode: 204, ResponseExcerpt: []byte("thanks")}
	got := getDelivery(t, st, d.ID)
	checkDelivery(t, got, &d3)
	checkLog(t, d.ID, got.AttemptLog, []*store.Attempt{fail1, &wantFail2, success})

	// A first-time success costs no log row, and still shows one attempt.
	ok := newDelivery(e, "ok", store.StatusSucceeded, time.Time{})
	ok.Attempts, ok.RoundAttempts, ok.FirstAttemptAt, ok.LastAttemptAt, ok.LastStatusCode = 1, 1, base, base, 200
	ok.LastDuration = 3 * time.Millisecond
	writeAll(t, st, ok)
	checkLog(t, ok.ID, getDelivery(t, st, ok.ID).AttemptLog,
		[]*store.Attempt{{Number: 1, StartedAt: base, Duration: 3 * time.Millisecond, StatusCode: 200}})

	// Rewriting a logged attempt replaces its entry.
	fix := *fail1
	fix.Error = "boom, again"
	if _, err := st.DeliveryWriteMany(ctx, []*store.DeliveryWrite{{Delivery: &d3, Fence: 3, Attempt: &fix}}, 0); err != nil {
		t.Fatalf("DeliveryWriteMany: %v", err)
	}
	checkLog(t, d.ID, getDelivery(t, st, d.ID).AttemptLog, []*store.Attempt{&fix, &wantFail2, success})
}

func testDeliveryListByEvent(t *testing.T, st store.Store) {
	es := seedEvents(t, st, "src", base, 2)
	var want []*store.Delivery
	for _, dest := range []string{"zeta", "alpha", "mid"} {
		d := newDelivery(es[0], dest, store.StatusSucceeded, time.Time{})
		d.Attempts, d.RoundAttempts, d.LastAttemptAt, d.LastStatusCode = 1, 1, base, 200
		want = append(want, d)
	}
	failed := want[2]
	failed.Status, failed.Attempts, failed.LastStatusCode, failed.LastError = store.StatusFailed, 2, 400, "bad request"
	failed.Reason = "final 4xx"
	ws := []*store.DeliveryWrite{
		{Delivery: want[0], Fence: -1},
		{Delivery: want[1], Fence: -1},
		{Delivery: failed, Fence: -1, Attempt: &store.Attempt{Number: 1, StartedAt: base.Add(-time.Minute), StatusCode: 500}},
		// Another event's delivery, to a destination of the same names.
		{Delivery: newDelivery(es[1], "alpha", store.StatusPending, base), Fence: -1},
	}
	if _, err := st.DeliveryWriteMany(ctxFor(t), ws, 0); err != nil {
		t.Fatalf("DeliveryWriteMany: %v", err)
	}
	got, err := st.DeliveryListByEvent(ctxFor(t), es[0].ID)
	if err != nil {
		t.Fatalf("DeliveryListByEvent: %v", err)
	}
	slices.SortFunc(want, func(a, b *store.Delivery) int { return cmpString(a.Destination, b.Destination) })
	if g, w := deliveryIDs(got), deliveryIDs(want); !reflect.DeepEqual(g, w) {
		t.Fatalf("DeliveryListByEvent: got %v, want by destination %v", g, w)
	}
	for i, d := range got {
		checkDelivery(t, d, want[i])
	}
	checkLog(t, failed.ID, got[1].AttemptLog, []*store.Attempt{
		{Number: 1, StartedAt: base.Add(-time.Minute), StatusCode: 500},
		{Number: 2, StartedAt: base, StatusCode: 400, Error: "bad request"},
	})
	checkLog(t, got[0].ID, got[0].AttemptLog, []*store.Attempt{{Number: 1, StartedAt: base, StatusCode: 200}})

	none, err := st.DeliveryListByEvent(ctxFor(t), hookd.EventIDPrefix+hookd.NewULID(base))
	if err != nil || len(none) != 0 {
		t.Errorf("DeliveryListByEvent(an event without deliveries): got %v, %v, want none, nil", deliveryIDs(none), err)
	}
}

func cmpString(a, b string) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

func testDeliveryGetNotFound(t *testing.T, st store.Store) {
	e := seedEvents(t, st, "src", base, 1)[0]
	writeAll(t, st, newDelivery(e, "d", store.StatusPending, base))
	for _, id := range []string{store.DeliveryID(e.ID, "other"), store.DeliveryID(e.ID, "d") + "x", "dlv_nope", ""} {
		if _, err := st.DeliveryGet(ctxFor(t), id); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("DeliveryGet(%q): got error %v, want ErrNotFound", id, err)
		}
	}
}

func watermark(t *testing.T, st store.Store) int64 {
	t.Helper()
	w, err := st.WatermarkGet(ctxFor(t))
	if err != nil {
		t.Fatalf("WatermarkGet: %v", err)
	}
	return w
}

func testWatermark(t *testing.T, st store.Store) {
	if w := watermark(t, st); w != 0 {
		t.Fatalf("WatermarkGet of a new store: got %d, want 0", w)
	}
	e := seedEvents(t, st, "src", base, 1)[0]
	d := newDelivery(e, "d", store.StatusPending, base)
	steps := []struct {
		set, want int64
		writes    bool
	}{
		{5, 5, true},
		{3, 5, false}, // never moves back
		{0, 5, true},  // 0 leaves it alone
		{12, 12, false},
		{12, 12, true},
		{100, 100, true},
		{99, 100, true},
	}
	for _, s := range steps {
		var ws []*store.DeliveryWrite
		if s.writes {
			ws = []*store.DeliveryWrite{{Delivery: d, Fence: -1}}
		}
		if _, err := st.DeliveryWriteMany(ctxFor(t), ws, s.set); err != nil {
			t.Fatalf("DeliveryWriteMany(watermark %d): %v", s.set, err)
		}
		if w := watermark(t, st); w != s.want {
			t.Errorf("after setting the watermark to %d: got %d, want %d", s.set, w, s.want)
		}
	}
	// Another setting does not disturb it.
	if _, err := st.SettingGetOrCreate(ctxFor(t), "admin_token", "x"); err != nil {
		t.Fatalf("SettingGetOrCreate: %v", err)
	}
	if w := watermark(t, st); w != 100 {
		t.Errorf("after another setting: got watermark %d, want 100", w)
	}
}

func claim(t *testing.T, st store.Store, dest string, now time.Time, lease time.Duration, limit int) []*store.Delivery {
	t.Helper()
	ds, err := st.DeliveryClaimDue(ctxFor(t), dest, now, lease, limit)
	if err != nil {
		t.Fatalf("DeliveryClaimDue(%s, %v, limit %d): %v", dest, now, limit, err)
	}
	return ds
}

func testDeliveryClaimDue(t *testing.T, st store.Store) {
	es := seedEvents(t, st, "src", base, 9)
	now := base.Add(time.Hour)
	const lease = time.Minute
	// Inserted out of due order, so that the order of claims shows.
	dueLate := newDelivery(es[0], "a", store.StatusPending, now) // due exactly now
	dueFirst := newDelivery(es[1], "a", store.StatusRetrying, now.Add(-3*time.Second))
	dueSecond := newDelivery(es[2], "a", store.StatusPending, now.Add(-2*time.Second))
	dueSecond.Attempts = 4
	notDue := newDelivery(es[3], "a", store.StatusRetrying, now.Add(time.Microsecond))
	failed := newDelivery(es[4], "a", store.StatusFailed, now.Add(-time.Hour))
	succeeded := newDelivery(es[5], "a", store.StatusSucceeded, now.Add(-time.Hour))
	cancelled := newDelivery(es[6], "a", store.StatusCancelled, now.Add(-time.Hour))
	leased := newDelivery(es[7], "a", store.StatusDelivering, now.Add(-time.Hour))
	leased.LeaseUntil = now.Add(2 * lease)
	otherDest := newDelivery(es[8], "b", store.StatusPending, now.Add(-time.Hour))
	writeAll(t, st, dueLate, dueFirst, dueSecond, notDue, failed, succeeded, cancelled, leased, otherDest)

	if got := claim(t, st, "a", now, lease, 0); len(got) != 0 {
		t.Errorf("limit 0: got %v, want none", deliveryIDs(got))
	}
	got := claim(t, st, "a", now, lease, 2)
	if g, w := deliveryIDs(got), []string{dueFirst.ID, dueSecond.ID}; !reflect.DeepEqual(g, w) {
		t.Fatalf("claim 2: got %v, want the two oldest due %v", g, w)
	}
	for i, want := range []*store.Delivery{dueFirst, dueSecond} {
		w := *want
		w.Status, w.LeaseUntil, w.UpdatedAt = store.StatusDelivering, now.Add(lease), now
		checkDelivery(t, got[i], &w)
		checkDelivery(t, getDelivery(t, st, w.ID), &w)
	}
	if got[1].Attempts != 4 {
		t.Errorf("claimed delivery: got Attempts %d, want the stored 4 (the fence)", got[1].Attempts)
	}
	// The rest of what is due; the claimed ones are leased.
	got = claim(t, st, "a", now, lease, 10)
	if g, w := deliveryIDs(got), []string{dueLate.ID}; !reflect.DeepEqual(g, w) {
		t.Fatalf("second claim: got %v, want %v", g, w)
	}
	if got := claim(t, st, "a", now.Add(lease-time.Microsecond), lease, 10); len(got) != 1 || got[0].ID != notDue.ID {
		t.Errorf("claim while the leases hold: got %v, want only the newly due [%s]", deliveryIDs(got), notDue.ID)
	}
	// Nothing else, ever, for failed, succeeded or cancelled rows, or
	// another destination's.
	for _, d := range []*store.Delivery{failed, succeeded, cancelled, otherDest} {
		if got := getDelivery(t, st, d.ID); got.Status != d.Status {
			t.Errorf("%s: got Status %s after claims of a, want %s", d.ID, got.Status, d.Status)
		}
	}
	b := claim(t, st, "b", now, lease, 10)
	if g, w := deliveryIDs(b), []string{otherDest.ID}; !reflect.DeepEqual(g, w) {
		t.Errorf("claim of b: got %v, want %v", g, w)
	}
}

func testDeliveryClaimDueExpiredLease(t *testing.T, st store.Store) {
	es := seedEvents(t, st, "src", base, 3)
	now := base.Add(time.Hour)
	const lease = 30 * time.Second
	for i, e := range es {
		writeAll(t, st, newDelivery(e, "a", store.StatusPending, now.Add(time.Duration(i-10)*time.Second)))
	}
	first := claim(t, st, "a", now, lease, 10)
	if len(first) != 3 {
		t.Fatalf("claim: got %d, want 3", len(first))
	}
	if got := claim(t, st, "a", now.Add(lease), lease, 10); len(got) != 0 {
		t.Errorf("claim at the lease's end: got %v, want none (a lease ends strictly before now)", deliveryIDs(got))
	}
	// One finishes; the worker of the others dies. Once their leases have
	// ended they are claimed again, oldest due first.
	done := *first[1]
	done.Status, done.Attempts, done.LeaseUntil = store.StatusSucceeded, 1, time.Time{}
	if skipped, err := st.DeliveryWriteMany(ctxFor(t), []*store.DeliveryWrite{{Delivery: &done, Fence: 0}}, 0); err != nil || len(skipped) != 0 {
		t.Fatalf("DeliveryWriteMany: got skipped %v, error %v", skipped, err)
	}
	later := now.Add(lease + time.Microsecond)
	again := claim(t, st, "a", later, lease, 10)
	if g, w := deliveryIDs(again), []string{first[0].ID, first[2].ID}; !reflect.DeepEqual(g, w) {
		t.Fatalf("claim after the leases ended: got %v, want %v", g, w)
	}
	for _, d := range again {
		if d.Status != store.StatusDelivering || !sameTime(d.LeaseUntil, later.Add(lease)) {
			t.Errorf("%s reclaimed: got Status %s LeaseUntil %v, want delivering until %v", d.ID, d.Status, d.LeaseUntil, us(later.Add(lease)))
		}
	}
	// The first worker's late result is fenced off once the new one's
	// landed (both carry fence 0; the new worker's attempt made it 1).
	res := *again[0]
	res.Status, res.Attempts = store.StatusSucceeded, 1
	stale := res
	stale.Status = store.StatusFailed
	skipped, err := st.DeliveryWriteMany(ctxFor(t), []*store.DeliveryWrite{{Delivery: &res, Fence: 0}, {Delivery: &stale, Fence: 0}}, 0)
	if err != nil || !reflect.DeepEqual(skipped, []string{res.ID}) {
		t.Errorf("late result of a stale worker: got skipped %v, error %v, want [%s], nil", skipped, err, res.ID)
	}
}

func testDeliveryLoadOrdered(t *testing.T, st store.Store) {
	es := seedEvents(t, st, "src", base, 7)
	now := base.Add(time.Hour)
	statuses := []string{store.StatusRetrying, store.StatusSucceeded, store.StatusPending, store.StatusDelivering,
		store.StatusFailed, store.StatusPending, store.StatusCancelled}
	// Written newest first, due times against seq order: neither matters.
	for i := len(es) - 1; i >= 0; i-- {
		d := newDelivery(es[i], "o", statuses[i], now.Add(time.Duration(10-i)*time.Hour))
		writeAll(t, st, d, newDelivery(es[i], "other", store.StatusPending, now))
	}
	id := func(i int) string { return store.DeliveryID(es[i].ID, "o") }
	load := func(after int64, limit int) []string {
		t.Helper()
		ds, err := st.DeliveryLoadOrdered(ctxFor(t), "o", after, limit)
		if err != nil {
			t.Fatalf("DeliveryLoadOrdered(after %d, limit %d): %v", after, limit, err)
		}
		for i := 1; i < len(ds); i++ {
			if ds[i].EventSeq <= ds[i-1].EventSeq {
				t.Errorf("DeliveryLoadOrdered: seq %d after %d, want increasing", ds[i].EventSeq, ds[i-1].EventSeq)
			}
		}
		return deliveryIDs(ds)
	}
	if got, want := load(0, 100), []string{id(0), id(2), id(3), id(5)}; !reflect.DeepEqual(got, want) {
		t.Errorf("load everything: got %v, want the unfinished ones in seq order %v", got, want)
	}
	if got, want := load(es[2].Seq, 100), []string{id(3), id(5)}; !reflect.DeepEqual(got, want) {
		t.Errorf("load after seq %d: got %v, want %v", es[2].Seq, got, want)
	}
	if got, want := load(0, 2), []string{id(0), id(2)}; !reflect.DeepEqual(got, want) {
		t.Errorf("load 2: got %v, want %v", got, want)
	}
	if got := load(es[6].Seq, 100); len(got) != 0 {
		t.Errorf("load after the last seq: got %v, want none", got)
	}
}

func testDeliveryNextDue(t *testing.T, st store.Store) {
	es := seedEvents(t, st, "src", base, 5)
	ctx := ctxFor(t)
	if _, ok, err := st.DeliveryNextDue(ctx, "a"); err != nil || ok {
		t.Fatalf("DeliveryNextDue of nothing: got ok %v, error %v, want false, nil", ok, err)
	}
	now := base.Add(time.Hour)
	writeAll(t, st,
		newDelivery(es[0], "a", store.StatusFailed, now.Add(-time.Hour)),
		newDelivery(es[1], "a", store.StatusDelivering, now.Add(-time.Hour)),
		newDelivery(es[2], "b", store.StatusPending, now.Add(-time.Hour)))
	if _, ok, err := st.DeliveryNextDue(ctx, "a"); err != nil || ok {
		t.Fatalf("DeliveryNextDue without pending or retrying work: got ok %v, error %v, want false, nil", ok, err)
	}
	writeAll(t, st, newDelivery(es[3], "a", store.StatusPending, now.Add(time.Minute)))
	if at, ok, err := st.DeliveryNextDue(ctx, "a"); err != nil || !ok || !sameTime(at, now.Add(time.Minute)) {
		t.Errorf("DeliveryNextDue with one pending: got %v, %v, %v, want %v, true, nil", at, ok, err, us(now.Add(time.Minute)))
	}
	writeAll(t, st, newDelivery(es[4], "a", store.StatusRetrying, now.Add(-time.Second)))
	if at, ok, err := st.DeliveryNextDue(ctx, "a"); err != nil || !ok || !sameTime(at, now.Add(-time.Second)) {
		t.Errorf("DeliveryNextDue with an earlier retrying one: got %v, %v, %v, want %v, true, nil", at, ok, err, us(now.Add(-time.Second)))
	}
}

func testDeliveryReleaseAll(t *testing.T, st store.Store) {
	es := seedEvents(t, st, "src", base, 4)
	now := base.Add(time.Hour)
	var leased []*store.Delivery
	for i, dest := range []string{"a", "b"} {
		d := newDelivery(es[i], dest, store.StatusDelivering, now.Add(-time.Hour))
		d.LeaseUntil, d.Attempts = now.Add(time.Hour), 3
		leased = append(leased, d)
	}
	pending := newDelivery(es[2], "a", store.StatusPending, now.Add(time.Hour))
	failed := newDelivery(es[3], "a", store.StatusFailed, now.Add(-time.Hour))
	writeAll(t, st, leased[0], leased[1], pending, failed)
	n, err := st.DeliveryReleaseAll(ctxFor(t), now)
	if err != nil || n != 2 {
		t.Fatalf("DeliveryReleaseAll: got %d, %v, want 2, nil", n, err)
	}
	for _, d := range leased {
		got := getDelivery(t, st, d.ID)
		if got.Status != store.StatusRetrying || !sameTime(got.NextAttemptAt, now) || !got.LeaseUntil.IsZero() || got.Attempts != 3 {
			t.Errorf("%s released: got {Status:%s NextAttemptAt:%v LeaseUntil:%v Attempts:%d}, want {retrying %v zero 3}",
				d.ID, got.Status, got.NextAttemptAt, got.LeaseUntil, got.Attempts, us(now))
		}
	}
	checkDelivery(t, getDelivery(t, st, pending.ID), pending)
	checkDelivery(t, getDelivery(t, st, failed.ID), failed)
	if got := claim(t, st, "a", now, time.Minute, 10); len(got) != 1 || got[0].ID != leased[0].ID {
		t.Errorf("claim after the release: got %v, want [%s]", deliveryIDs(got), leased[0].ID)
	}
	if n, err := st.DeliveryReleaseAll(ctxFor(t), now); err != nil || n != 1 {
		t.Errorf("DeliveryReleaseAll again: got %d, %v, want 1 (the new claim), nil", n, err)
	}
}

func testDeliveryReplayMany(t *testing.T, st store.Store) {
	es := seedEvents(t, st, "src", base, 5)
	now := base.Add(time.Hour)
	ctx := ctxFor(t)
	failed := newDelivery(es[0], "a", store.StatusFailed, time.Time{})
	failed.Attempts, failed.RoundAttempts, failed.FirstAttemptAt = 3, 3, base
	failed.LastAttemptAt, failed.LastStatusCode, failed.LastError, failed.Reason = base.Add(time.Minute), 500, "boom", "attempts exhausted"
	logged := &store.Attempt{Number: 2, StartedAt: base.Add(time.Second), StatusCode: 502}
	succeeded := newDelivery(es[1], "a", store.StatusSucceeded, time.Time{})
	succeeded.Attempts, succeeded.RoundAttempts, succeeded.FirstAttemptAt, succeeded.LastAttemptAt, succeeded.LastStatusCode = 1, 1, base, base, 200
	delivering := newDelivery(es[2], "a", store.StatusDelivering, base)
	delivering.Attempts, delivering.LeaseUntil = 1, now.Add(time.Minute)
	if _, err := st.DeliveryWriteMany(ctx, []*store.DeliveryWrite{
		{Delivery: failed, Fence: -1, Attempt: logged},
		{Delivery: succeeded, Fence: -1},
		{Delivery: delivering, Fence: -1},
	}, 0); err != nil {
		t.Fatalf("DeliveryWriteMany: %v", err)
	}
	absent := newDelivery(es[3], "b", "", time.Time{})
	absent.EventKey = "k"
	// Only identity fields are read: the rest is ignored.
	noise := func(d *store.Delivery) *store.Delivery {
		c := *d
		c.Status, c.Attempts, c.Reason, c.NextAttemptAt = store.StatusSucceeded, 42, "ignored", now.Add(time.Hour)
		return &c
	}
	n, err := st.DeliveryReplayMany(ctx, []*store.Delivery{noise(failed), noise(succeeded), noise(delivering), noise(absent)}, now)
	if err != nil || n != 3 {
		t.Fatalf("DeliveryReplayMany: got %d, %v, want 3 (all but the delivering one), nil", n, err)
	}

	for _, d := range []*store.Delivery{failed, succeeded} {
		want := *d
		want.Status, want.RoundAttempts, want.FirstAttemptAt, want.Reason = store.StatusPending, 0, time.Time{}, ""
		want.NextAttemptAt, want.UpdatedAt = now, now
		checkDelivery(t, getDelivery(t, st, d.ID), &want)
	}
	checkLog(t, failed.ID, getDelivery(t, st, failed.ID).AttemptLog, []*store.Attempt{
		logged, {Number: 3, StartedAt: failed.LastAttemptAt, StatusCode: 500, Error: "boom"},
	})
	checkDelivery(t, getDelivery(t, st, delivering.ID), delivering)
	want := *absent
	want.Status, want.NextAttemptAt, want.CreatedAt, want.UpdatedAt = store.StatusPending, now, now, now
	checkDelivery(t, getDelivery(t, st, absent.ID), &want)

	// Queued work is claimable at once.
	if got := claim(t, st, "a", now, time.Minute, 10); len(got) != 2 {
		t.Errorf("claim after the replay: got %v, want the 2 replayed", deliveryIDs(got))
	}
	// The outcome of an attempt begun before the replay (the old
	// generation) does not undo it.
	stale := *failed
	stale.Status, stale.Attempts = store.StatusSucceeded, 4
	skipped, err := st.DeliveryWriteMany(ctx, []*store.DeliveryWrite{{Delivery: &stale, Fence: 3}}, 0)
	if err != nil || len(skipped) != 1 {
		t.Errorf("result of an attempt begun before the replay: got skipped %v, error %v, want it skipped", skipped, err)
	}
	// A replayed delivery's next result is fenced by the kept count and
	// the new generation.
	replayed := getDelivery(t, st, failed.ID)
	if replayed.Generation != failed.Generation+1 {
		t.Errorf("generation after a replay: %d, want %d", replayed.Generation, failed.Generation+1)
	}
	next := *replayed
	next.AttemptLog = nil
	next.Status, next.Attempts = store.StatusSucceeded, 4
	skipped, err = st.DeliveryWriteMany(ctx, []*store.DeliveryWrite{{Delivery: &next, Fence: 3}}, 0)
	if err != nil || len(skipped) != 0 {
		t.Errorf("result after the replay with fence 3: got skipped %v, error %v, want none, nil", skipped, err)
	}
	if n, err := st.DeliveryReplayMany(ctx, nil, now); err != nil || n != 0 {
		t.Errorf("DeliveryReplayMany(nil): got %d, %v, want 0, nil", n, err)
	}
}

// seedDeliveries stores 7 events (seedList's: sources a and b, types
// t.one and t.two, one second apart) and a delivery of each to x and y,
// with statuses by position. It returns the events and every delivery,
// newest event first, then by destination: the listing's order.
func seedDeliveries(t *testing.T, st store.Store) ([]*hookd.Event, []*store.Delivery) {
	es := seedList(t, st)
	statuses := []string{store.StatusSucceeded, store.StatusFailed, store.StatusRetrying}
	var all []*store.Delivery
	for i, e := range es {
		stored := get(t, st, e.ID)
		for j, dest := range []string{"x", "y"} {
			d := newDelivery(seededEvent{e, stored.Seq}, dest, statuses[(i+j)%len(statuses)], base)
			all = append(all, d)
		}
	}
	// Written in an order of their own.
	writeAll(t, st, all[5:]...)
	writeAll(t, st, all[:5]...)
	slices.SortFunc(all, func(a, b *store.Delivery) int {
		if a.EventSeq != b.EventSeq {
			return int(b.EventSeq - a.EventSeq)
		}
		return cmpString(a.Destination, b.Destination)
	})
	return es, all
}

// listDeliveries pages through every delivery matching p (its After and
// Limit are overwritten).
func listDeliveries(t *testing.T, st store.Store, p store.DeliveryListParams, limit int) []*store.Delivery {
	t.Helper()
	var out []*store.Delivery
	p.After, p.Limit = "", limit
	seen := map[string]bool{}
	for range 10000 {
		page, next, err := st.DeliveryList(ctxFor(t), &p)
		if err != nil {
			t.Fatalf("DeliveryList(%+v): %v", p, err)
		}
		if limit > 0 && len(page) > limit {
			t.Fatalf("DeliveryList(limit %d): got a page of %d", limit, len(page))
		}
		out = append(out, page...)
		if next == "" {
			return out
		}
		if len(page) == 0 {
			t.Fatalf("DeliveryList: got an empty page with next cursor %q", next)
		}
		if seen[next] {
			t.Fatalf("DeliveryList: cursor %q returned twice", next)
		}
		seen[next] = true
		p.After = next
	}
	t.Fatal("DeliveryList: pagination did not end")
	return nil
}

func testDeliveryListPagination(t *testing.T, st store.Store) {
	_, all := seedDeliveries(t, st)
	want := deliveryIDs(all)
	got, next, err := st.DeliveryList(ctxFor(t), &store.DeliveryListParams{})
	if err != nil {
		t.Fatalf("DeliveryList: %v", err)
	}
	if !reflect.DeepEqual(deliveryIDs(got), want) || next != "" {
		t.Errorf("DeliveryList: got %v and cursor %q, want newest event first, then destination: %v and \"\"", deliveryIDs(got), next, want)
	}
	for i, d := range got {
		checkDelivery(t, d, all[i])
		if len(d.AttemptLog) != 0 {
			t.Errorf("%s listed: got %d attempts, want none loaded", d.ID, len(d.AttemptLog))
		}
	}
	// 14 deliveries: limits that split an event's pair, divide it, and
	// exceed it.
	for _, limit := range []int{1, 2, 3, 5, 13, 14, 15} {
		if got := listDeliveries(t, st, store.DeliveryListParams{}, limit); !reflect.DeepEqual(deliveryIDs(got), want) {
			t.Errorf("paging by %d: got %v, want every delivery once: %v", limit, deliveryIDs(got), want)
		}
	}
	// A filtered listing's cursor continues it.
	var failed []string
	for _, d := range all {
		if d.Status == store.StatusFailed {
			failed = append(failed, d.ID)
		}
	}
	if got := listDeliveries(t, st, store.DeliveryListParams{Status: store.StatusFailed}, 1); !reflect.DeepEqual(deliveryIDs(got), failed) {
		t.Errorf("paging failed by 1: got %v, want %v", deliveryIDs(got), failed)
	}
	// Deliveries of newer events do not show up in a listing already under
	// way (it runs newest first).
	page, next, err := st.DeliveryList(ctxFor(t), &store.DeliveryListParams{Limit: 4})
	if err != nil || next == "" {
		t.Fatalf("DeliveryList(limit 4): got cursor %q, error %v", next, err)
	}
	late := seedEvents(t, st, "a", base.Add(time.Hour), 1)[0]
	writeAll(t, st, newDelivery(late, "x", store.StatusPending, base))
	rest := listDeliveries(t, st, store.DeliveryListParams{}, 0)
	if rest[0].EventID != late.ID {
		t.Fatalf("DeliveryList: got %s first, want the newest event's delivery", rest[0].ID)
	}
	cont, _, err := st.DeliveryList(ctxFor(t), &store.DeliveryListParams{After: next, Limit: 100})
	if err != nil {
		t.Fatalf("DeliveryList(after): %v", err)
	}
	if got := append(deliveryIDs(page), deliveryIDs(cont)...); !reflect.DeepEqual(got, want) {
		t.Errorf("listing continued after a newer delivery: got %v, want %v", got, want)
	}
}

func testDeliveryListFilters(t *testing.T, st store.Store) {
	es, all := seedDeliveries(t, st)
	byID := map[string]*hookd.Event{}
	for _, e := range es {
		byID[e.ID] = e
	}
	pick := func(keep func(d *store.Delivery, e *hookd.Event) bool) []string {
		out := []string{}
		for _, d := range all {
			if keep(d, byID[d.EventID]) {
				out = append(out, d.ID)
			}
		}
		return out
	}
	cases := []struct {
		name string
		p    store.DeliveryListParams
		want []string
	}{
		{"Status", store.DeliveryListParams{Status: store.StatusRetrying},
			pick(func(d *store.Delivery, _ *hookd.Event) bool { return d.Status == store.StatusRetrying })},
		{"Destination", store.DeliveryListParams{Destination: "y"},
			pick(func(d *store.Delivery, _ *hookd.Event) bool { return d.Destination == "y" })},
		{"StatusAndDestination", store.DeliveryListParams{Status: store.StatusFailed, Destination: "x"},
			pick(func(d *store.Delivery, _ *hookd.Event) bool {
				return d.Status == store.StatusFailed && d.Destination == "x"
			})},
		{"Source", store.DeliveryListParams{Source: "b"},
			pick(func(_ *store.Delivery, e *hookd.Event) bool { return e.Source == "b" })},
		{"EventType", store.DeliveryListParams{EventType: "t.two"},
			pick(func(_ *store.Delivery, e *hookd.Event) bool { return e.Type == "t.two" })},
		{"EventID", store.DeliveryListParams{EventID: es[3].ID},
			pick(func(_ *store.Delivery, e *hookd.Event) bool { return e.ID == es[3].ID })},
		// Since is inclusive, Until exclusive, both on the event's
		// ReceivedAt.
		{"Since", store.DeliveryListParams{Since: es[4].ReceivedAt},
			pick(func(_ *store.Delivery, e *hookd.Event) bool { return !e.ReceivedAt.Before(es[4].ReceivedAt) })},
		{"Until", store.DeliveryListParams{Until: es[2].ReceivedAt},
			pick(func(_ *store.Delivery, e *hookd.Event) bool { return e.ReceivedAt.Before(es[2].ReceivedAt) })},
		{"SinceUntilSourceStatus", store.DeliveryListParams{Since: es[1].ReceivedAt, Until: es[6].ReceivedAt, Source: "a", Status: store.StatusSucceeded},
			pick(func(d *store.Delivery, e *hookd.Event) bool {
				return e.Source == "a" && d.Status == store.StatusSucceeded &&
					!e.ReceivedAt.Before(es[1].ReceivedAt) && e.ReceivedAt.Before(es[6].ReceivedAt)
			})},
		{"UnknownEvent", store.DeliveryListParams{EventID: hookd.EventIDPrefix + hookd.NewULID(base)}, []string{}},
		{"UnknownSource", store.DeliveryListParams{Source: "nope"}, []string{}},
	}
	for _, c := range cases {
		if len(c.want) == 0 && c.name != "UnknownEvent" && c.name != "UnknownSource" {
			t.Fatalf("%s: the seed matches nothing; the case proves little", c.name)
		}
		for _, limit := range []int{2, 0} {
			got := listDeliveries(t, st, c.p, limit)
			if g := deliveryIDs(got); !reflect.DeepEqual(g, c.want) && !(len(g) == 0 && len(c.want) == 0) {
				t.Errorf("%s (limit %d): got %v, want %v", c.name, limit, g, c.want)
			}
		}
	}
}

func testDeliveryListInvalidCursor(t *testing.T, st store.Store) {
	seedDeliveries(t, st)
	for _, c := range []string{"abc", "-1", "1.5", "9999999999999999999999", "!!", "MTI"} {
		_, _, err := st.DeliveryList(ctxFor(t), &store.DeliveryListParams{After: c})
		if code := hookd.ErrorCode(err); code != hookd.EInvalid {
			t.Errorf("DeliveryList(cursor %q): got error %v (code %q), want code %q", c, err, code, hookd.EInvalid)
		}
	}
}

func testDeliveryCountByStatus(t *testing.T, st store.Store) {
	ctx := ctxFor(t)
	got, err := st.DeliveryCountByStatus(ctx, "")
	if err != nil || len(got) != 0 {
		t.Fatalf("DeliveryCountByStatus of nothing: got %v, %v, want empty, nil", got, err)
	}
	_, all := seedDeliveries(t, st)
	want := map[string]int64{}
	wantY := map[string]int64{}
	for _, d := range all {
		want[d.Status]++
		if d.Destination == "y" {
			wantY[d.Status]++
		}
	}
	got, err = st.DeliveryCountByStatus(ctx, "")
	if err != nil || !reflect.DeepEqual(got, want) {
		t.Errorf("DeliveryCountByStatus(all): got %v, %v, want %v, nil", got, err, want)
	}
	got, err = st.DeliveryCountByStatus(ctx, "y")
	if err != nil || !reflect.DeepEqual(got, wantY) {
		t.Errorf("DeliveryCountByStatus(y): got %v, %v, want %v, nil", got, err, wantY)
	}
	got, err = st.DeliveryCountByStatus(ctx, "nope")
	if err != nil || len(got) != 0 {
		t.Errorf("DeliveryCountByStatus(nope): got %v, %v, want empty, nil", got, err)
	}
}

func testDeliveryExisting(t *testing.T, st store.Store) {
	es := seedEvents(t, st, "src", base, 3)
	var asked []string
	want := map[string]bool{}
	for i, e := range es {
		d := newDelivery(e, "x", store.StatusSucceeded, time.Time{})
		writeAll(t, st, d)
		if i != 1 {
			asked = append(asked, d.ID)
			want[d.ID] = true
		}
		asked = append(asked, store.DeliveryID(e.ID, "y"))
	}
	// Many ids at once, beyond any one statement's parameters.
	for i := range 1500 {
		asked = append(asked, fmt.Sprintf("dlv_missing_%d", i))
	}
	got, err := st.DeliveryExisting(ctxFor(t), asked)
	if err != nil {
		t.Fatalf("DeliveryExisting: %v", err)
	}
	if len(got) != len(want) {
		t.Errorf("DeliveryExisting: got %v, want %v", got, want)
	}
	for id := range want {
		if !got[id] {
			t.Errorf("DeliveryExisting: got %v, want %s in it", got, id)
		}
	}
	if got, err := st.DeliveryExisting(ctxFor(t), nil); err != nil || len(got) != 0 {
		t.Errorf("DeliveryExisting(nil): got %v, %v, want empty, nil", got, err)
	}
}

func testEventMaxSeqAndCount(t *testing.T, st store.Store) {
	ctx := ctxFor(t)
	if n, err := st.EventMaxSeq(ctx); err != nil || n != 0 {
		t.Fatalf("EventMaxSeq of nothing: got %d, %v, want 0, nil", n, err)
	}
	if n, err := st.EventCount(ctx, &store.EventListParams{}); err != nil || n != 0 {
		t.Fatalf("EventCount of nothing: got %d, %v, want 0, nil", n, err)
	}
	es := seedList(t, st)
	var maxSeq int64
	for _, e := range es {
		maxSeq = max(maxSeq, get(t, st, e.ID).Seq)
	}
	if n, err := st.EventMaxSeq(ctx); err != nil || n != maxSeq {
		t.Errorf("EventMaxSeq: got %d, %v, want %d, nil", n, err, maxSeq)
	}
	count := func(keep func(i int, e *hookd.Event) bool) int64 {
		var n int64
		for i, e := range es {
			if keep(i, e) {
				n++
			}
		}
		return n
	}
	cases := []struct {
		name string
		p    store.EventListParams
		want int64
	}{
		{"All", store.EventListParams{}, int64(len(es))},
		{"Source", store.EventListParams{Source: "b"}, count(func(_ int, e *hookd.Event) bool { return e.Source == "b" })},
		{"Type", store.EventListParams{Type: "t.two"}, count(func(_ int, e *hookd.Event) bool { return e.Type == "t.two" })},
		{"SinceUntil", store.EventListParams{Since: es[1].ReceivedAt, Until: es[5].ReceivedAt}, 4},
		{"SourceSince", store.EventListParams{Source: "a", Since: es[2].ReceivedAt},
			count(func(i int, e *hookd.Event) bool { return e.Source == "a" && i >= 2 })},
		// After, Limit and Order are ignored.
		{"IgnoresPaging", store.EventListParams{After: "3", Limit: 1, Order: store.OrderDesc}, int64(len(es))},
		{"UnknownSource", store.EventListParams{Source: "nope"}, 0},
	}
	for _, c := range cases {
		if n, err := st.EventCount(ctx, &c.p); err != nil || n != c.want {
			t.Errorf("EventCount(%s): got %d, %v, want %d, nil", c.name, n, err, c.want)
		}
	}
}

func destinations(t *testing.T, st store.Store) []*store.DestinationRecord {
	t.Helper()
	ds, err := st.DestinationList(ctxFor(t))
	if err != nil {
		t.Fatalf("DestinationList: %v", err)
	}
	return ds
}

func destinationByName(t *testing.T, st store.Store, name string) *store.DestinationRecord {
	t.Helper()
	for _, d := range destinations(t, st) {
		if d.Name == name {
			return d
		}
	}
	return nil
}

func testDestinations(t *testing.T, st store.Store) {
	ctx := ctxFor(t)
	if ds := destinations(t, st); len(ds) != 0 {
		t.Fatalf("DestinationList of a new store: got %d, want none", len(ds))
	}
	specs := map[string]string{"zulu": `{"url":"https://z.example"}`, "alpha": `{"url":"https://a.example"}`, "mike": `{"url":"https://m.example"}`}
	for _, name := range []string{"zulu", "alpha", "mike"} {
		if err := st.DestinationPut(ctx, &store.DestinationRecord{Name: name, Spec: []byte(specs[name]), CreatedAt: base, UpdatedAt: base}); err != nil {
			t.Fatalf("DestinationPut(%s): %v", name, err)
		}
	}
	ds := destinations(t, st)
	var names []string
	for _, d := range ds {
		names = append(names, d.Name)
		if string(d.Spec) != specs[d.Name] || !d.DisabledAt.IsZero() || d.DisabledReason != "" ||
			!sameTime(d.CreatedAt, base) || !sameTime(d.UpdatedAt, base) {
			t.Errorf("%s: got %+v, want spec %s, enabled, created and updated at %v", d.Name, *d, specs[d.Name], us(base))
		}
	}
	if want := []string{"alpha", "mike", "zulu"}; !reflect.DeepEqual(names, want) {
		t.Errorf("DestinationList: got %v, want by name %v", names, want)
	}
	// Replace: new spec, CreatedAt kept.
	later := base.Add(time.Hour)
	if err := st.DestinationPut(ctx, &store.DestinationRecord{Name: "mike", Spec: []byte(`{"url":"https://m2.example"}`), CreatedAt: later, UpdatedAt: later}); err != nil {
		t.Fatalf("DestinationPut(replace): %v", err)
	}
	if d := destinationByName(t, st, "mike"); d == nil || string(d.Spec) != `{"url":"https://m2.example"}` ||
		!sameTime(d.CreatedAt, base) || !sameTime(d.UpdatedAt, later) {
		t.Errorf("replaced mike: got %+v, want the new spec, CreatedAt %v, UpdatedAt %v", d, us(base), us(later))
	}
	// Delete.
	if err := st.DestinationDelete(ctx, "alpha"); err != nil {
		t.Fatalf("DestinationDelete(alpha): %v", err)
	}
	if d := destinationByName(t, st, "alpha"); d != nil {
		t.Errorf("after DestinationDelete(alpha): still listed")
	}
	for _, name := range []string{"alpha", "nope"} {
		if err := st.DestinationDelete(ctx, name); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("DestinationDelete(%s) of none: got %v, want ErrNotFound", name, err)
		}
	}
	if n := len(destinations(t, st)); n != 2 {
		t.Errorf("after deletes: got %d destinations, want 2", n)
	}
}

func testDestinationDisabledState(t *testing.T, st store.Store) {
	ctx := ctxFor(t)
	at := base.Add(time.Minute)
	// A configured destination (no row) is disabled: a state-only row.
	if err := st.DestinationSetDisabled(ctx, "configured", at, "too many failures"); err != nil {
		t.Fatalf("DestinationSetDisabled: %v", err)
	}
	d := destinationByName(t, st, "configured")
	if d == nil || len(d.Spec) != 0 || !sameTime(d.DisabledAt, at) || d.DisabledReason != "too many failures" {
		t.Fatalf("state-only row: got %+v, want Spec empty, disabled at %v for \"too many failures\"", d, us(at))
	}
	// Cleared: the state-only row has nothing left to say.
	if err := st.DestinationSetDisabled(ctx, "configured", time.Time{}, ""); err != nil {
		t.Fatalf("DestinationSetDisabled(zero): %v", err)
	}
	if d := destinationByName(t, st, "configured"); d != nil {
		t.Errorf("state-only row once enabled: got %+v, want no row", d)
	}
	if err := st.DestinationSetDisabled(ctx, "never-seen", time.Time{}, ""); err != nil {
		t.Errorf("DestinationSetDisabled(zero) of a name without a row: got %v, want nil", err)
	}
	if n := len(destinations(t, st)); n != 0 {
		t.Errorf("after enabling names without rows: got %d rows, want none", n)
	}

	// DestinationPut onto a state-only row keeps the disabled state.
	if err := st.DestinationSetDisabled(ctx, "api", at, "operator"); err != nil {
		t.Fatalf("DestinationSetDisabled: %v", err)
	}
	spec := []byte(`{"url":"https://api.example"}`)
	if err := st.DestinationPut(ctx, &store.DestinationRecord{Name: "api", Spec: spec}); err != nil {
		t.Fatalf("DestinationPut: %v", err)
	}
	d = destinationByName(t, st, "api")
	if d == nil || !bytes.Equal(d.Spec, spec) || !sameTime(d.DisabledAt, at) || d.DisabledReason != "operator" {
		t.Fatalf("put onto a disabled state-only row: got %+v, want the spec, still disabled at %v by \"operator\"", d, us(at))
	}
	// A record that carries a disabled state sets it.
	at2 := at.Add(time.Hour)
	if err := st.DestinationPut(ctx, &store.DestinationRecord{Name: "api", Spec: spec, DisabledAt: at2, DisabledReason: "paused"}); err != nil {
		t.Fatalf("DestinationPut: %v", err)
	}
	if d := destinationByName(t, st, "api"); d == nil || !sameTime(d.DisabledAt, at2) || d.DisabledReason != "paused" {
		t.Errorf("put with a disabled state: got %+v, want disabled at %v by \"paused\"", d, us(at2))
	}
	// Clearing it on an API-managed destination keeps the destination.
	if err := st.DestinationSetDisabled(ctx, "api", time.Time{}, ""); err != nil {
		t.Fatalf("DestinationSetDisabled(zero): %v", err)
	}
	if d := destinationByName(t, st, "api"); d == nil || !bytes.Equal(d.Spec, spec) || !d.DisabledAt.IsZero() || d.DisabledReason != "" {
		t.Errorf("enabled API-managed destination: got %+v, want its spec, enabled", d)
	}
	// And disabling it keeps its spec.
	if err := st.DestinationSetDisabled(ctx, "api", at, "again"); err != nil {
		t.Fatalf("DestinationSetDisabled: %v", err)
	}
	if d := destinationByName(t, st, "api"); d == nil || !bytes.Equal(d.Spec, spec) || !sameTime(d.DisabledAt, at) || d.DisabledReason != "again" {
		t.Errorf("disabled API-managed destination: got %+v, want its spec, disabled at %v by \"again\"", d, us(at))
	}
	// A state-only row can be deleted like any other.
	if err := st.DestinationSetDisabled(ctx, "configured", at, "x"); err != nil {
		t.Fatalf("DestinationSetDisabled: %v", err)
	}
	if err := st.DestinationDelete(ctx, "configured"); err != nil {
		t.Errorf("DestinationDelete(state-only row): %v", err)
	}
	if d := destinationByName(t, st, "configured"); d != nil {
		t.Errorf("deleted state-only row: still listed: %+v", d)
	}
}

func testSubscriptions(t *testing.T, st store.Store) {
	ctx := ctxFor(t)
	list := func() []*store.SubscriptionRecord {
		t.Helper()
		subs, err := st.SubscriptionList(ctx)
		if err != nil {
			t.Fatalf("SubscriptionList: %v", err)
		}
		return subs
	}
	if subs := list(); len(subs) != 0 {
		t.Fatalf("SubscriptionList of a new store: got %d, want none", len(subs))
	}
	// Created out of id order: the listing is oldest first.
	created := []struct {
		id string
		at time.Time
	}{{"sub_c", base}, {"sub_a", base.Add(time.Second)}, {"sub_b", base.Add(2 * time.Second)}}
	for _, c := range created {
		if err := st.SubscriptionPut(ctx, &store.SubscriptionRecord{ID: c.id, Spec: []byte(`{"destination":"` + c.id + `"}`), CreatedAt: c.at, UpdatedAt: c.at}); err != nil {
			t.Fatalf("SubscriptionPut(%s): %v", c.id, err)
		}
	}
	subs := list()
	var got []string
	for _, s := range subs {
		got = append(got, s.ID)
		if string(s.Spec) != `{"destination":"`+s.ID+`"}` {
			t.Errorf("%s: got Spec %s", s.ID, s.Spec)
		}
	}
	if want := []string{"sub_c", "sub_a", "sub_b"}; !reflect.DeepEqual(got, want) {
		t.Errorf("SubscriptionList: got %v, want oldest first %v", got, want)
	}
	// Replace: new spec, CreatedAt kept, order unchanged.
	later := base.Add(time.Hour)
	if err := st.SubscriptionPut(ctx, &store.SubscriptionRecord{ID: "sub_c", Spec: []byte(`{"active":false}`), CreatedAt: later, UpdatedAt: later}); err != nil {
		t.Fatalf("SubscriptionPut(replace): %v", err)
	}
	subs = list()
	if len(subs) != 3 || subs[0].ID != "sub_c" || string(subs[0].Spec) != `{"active":false}` ||
		!sameTime(subs[0].CreatedAt, base) || !sameTime(subs[0].UpdatedAt, later) {
		t.Errorf("replaced sub_c: got %+v first, want the new spec, CreatedAt %v, UpdatedAt %v", subs[0], us(base), us(later))
	}
	if err := st.SubscriptionDelete(ctx, "sub_a"); err != nil {
		t.Fatalf("SubscriptionDelete: %v", err)
	}
	for _, id := range []string{"sub_a", "sub_nope"} {
		if err := st.SubscriptionDelete(ctx, id); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("SubscriptionDelete(%s) of none: got %v, want ErrNotFound", id, err)
		}
	}
	got = nil
	for _, s := range list() {
		got = append(got, s.ID)
	}
	if want := []string{"sub_c", "sub_b"}; !reflect.DeepEqual(got, want) {
		t.Errorf("after the delete: got %v, want %v", got, want)
	}
}

// Events filter by the status of their deliveries: an event is listed
// when at least one of its deliveries has that status.
func testEventListByDeliveryStatus(t *testing.T, st store.Store) {
	es := seedEvents(t, st, "src", base, 4)
	writeAll(t, st,
		newDelivery(es[0], "a", store.StatusFailed, time.Time{}),
		newDelivery(es[0], "b", store.StatusSucceeded, time.Time{}),
		newDelivery(es[1], "a", store.StatusSucceeded, time.Time{}),
		newDelivery(es[2], "a", store.StatusFailed, time.Time{}),
		newDelivery(es[2], "b", store.StatusFailed, time.Time{}),
	)
	got, _, err := st.EventList(ctxFor(t), &store.EventListParams{DeliveryStatus: store.StatusFailed, Order: store.OrderAsc})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || got[0].ID != es[0].ID || got[1].ID != es[2].ID {
		t.Fatalf("events with a failed delivery: got %d, want events 0 and 2 once each", len(got))
	}
	n, err := st.EventCount(ctxFor(t), &store.EventListParams{DeliveryStatus: store.StatusSucceeded})
	if err != nil || n != 2 {
		t.Fatalf("EventCount(succeeded) = %d, %v; want 2", n, err)
	}
}

// FenceInsertOnly inserts a row that does not exist and never touches one
// that does (a replay that queued it meanwhile wins).
func testDeliveryWriteInsertOnly(t *testing.T, st store.Store) {
	es := seedEvents(t, st, "src", base, 2)
	// No row: inserted.
	d := newDelivery(es[0], "a", store.StatusSucceeded, time.Time{})
	d.Attempts = 1
	skipped, err := st.DeliveryWriteMany(ctxFor(t), []*store.DeliveryWrite{{Delivery: d, Fence: store.FenceInsertOnly}}, 0)
	if err != nil || len(skipped) != 0 {
		t.Fatalf("insert-only of a new row: skipped %v, %v", skipped, err)
	}
	if got := getDelivery(t, st, d.ID); got.Status != store.StatusSucceeded {
		t.Fatalf("status %s", got.Status)
	}
	// A row exists (a replay queued it): skipped, the row unchanged.
	if _, err := st.DeliveryReplayMany(ctxFor(t), []*store.Delivery{newDelivery(es[1], "a", "", time.Time{})}, base); err != nil {
		t.Fatal(err)
	}
	late := newDelivery(es[1], "a", store.StatusSucceeded, time.Time{})
	late.Attempts = 1
	skipped, err = st.DeliveryWriteMany(ctxFor(t), []*store.DeliveryWrite{{Delivery: late, Fence: store.FenceInsertOnly,
		Attempt: &store.Attempt{Number: 1, StartedAt: base, Error: "x"}}}, 0)
	if err != nil || len(skipped) != 1 {
		t.Fatalf("insert-only over a stored row: skipped %v, %v; want it skipped", skipped, err)
	}
	got := getDelivery(t, st, late.ID)
	if got.Status != store.StatusPending || got.Attempts != 0 || len(got.AttemptLog) != 0 {
		t.Fatalf("stored row changed: %s, %d attempts, %d log entries", got.Status, got.Attempts, len(got.AttemptLog))
	}
}

// Prune deletes old events whose deliveries are all finished, with their
// deliveries, attempt logs and duplicate requests; it keeps old events
// with unfinished deliveries, young events, and events past MaxSeq.
func testPrune(t *testing.T, st store.Store) {
	ctx := ctxFor(t)
	old := seedEvents(t, st, "src", base, 3) // succeeded (with an attempt log), retrying, failed
	dupOf := newEvent("src", "x", base.Add(3*time.Second))
	dup := newEvent("src", "x", base.Add(4*time.Second))
	insert(t, st, time.Hour, dupOf)
	if r := insert(t, st, time.Hour, dup); !r[0].Duplicate {
		t.Fatalf("setup: second event with id x is not a duplicate")
	}
	young := seedEvents(t, st, "src", base.Add(48*time.Hour), 1)[0]

	d0 := newDelivery(old[0], "d", store.StatusSucceeded, time.Time{})
	d0.Attempts = 2
	if _, err := st.DeliveryWriteMany(ctx, []*store.DeliveryWrite{{Delivery: d0, Fence: -1,
		Attempt: &store.Attempt{Number: 1, StartedAt: base, Duration: time.Millisecond, StatusCode: 503}}}, 0); err != nil {
		t.Fatalf("DeliveryWriteMany: %v", err)
	}
	d1 := newDelivery(old[1], "d", store.StatusRetrying, base.Add(time.Hour))
	d2 := newDelivery(old[2], "d", store.StatusFailed, time.Time{})
	d2b := newDelivery(old[2], "e", store.StatusCancelled, time.Time{})
	dy := newDelivery(young, "d", store.StatusSucceeded, time.Time{})
	writeAll(t, st, d1, d2, d2b, dy)

	// No event at or below MaxSeq: no event goes (old duplicate requests
	// do: they are a log of requests, not events).
	r, err := st.Prune(ctx, store.PruneParams{Before: base.Add(24 * time.Hour), MaxSeq: old[0].Seq - 1})
	if err != nil || r.Events != 0 || r.Deliveries != 0 {
		t.Fatalf("Prune below the first seq: %+v, %v; want no event deleted", r, err)
	}
	total := store.PruneResult{Duplicates: r.Duplicates}
	p := store.PruneParams{Before: base.Add(24 * time.Hour), MaxSeq: young.Seq, Limit: 2}
	for range 10 {
		r, err := st.Prune(ctx, p)
		if err != nil {
			t.Fatalf("Prune: %v", err)
		}
		total.Events += r.Events
		total.Deliveries += r.Deliveries
		total.Attempts += r.Attempts
		total.Duplicates += r.Duplicates
		total.Kept += r.Kept
		if r.Done {
			break
		}
		p.After = r.Next
	}
	want := store.PruneResult{Events: 3, Deliveries: 3, Attempts: 1, Duplicates: 1, Kept: 1}
	if total.Events != want.Events || total.Deliveries != want.Deliveries || total.Attempts != want.Attempts ||
		total.Duplicates != want.Duplicates || total.Kept != want.Kept {
		t.Fatalf("Prune: got %+v, want events 3, deliveries 3, attempts 1, duplicates 1, kept 1", total)
	}
	for _, c := range []struct {
		id   string
		kept bool
	}{{old[0].ID, false}, {old[1].ID, true}, {old[2].ID, false}, {dupOf.ID, false}, {young.ID, true}} {
		_, err := st.EventGet(ctx, c.id)
		if gone := errors.Is(err, store.ErrNotFound); gone == c.kept {
			t.Errorf("event %s: EventGet error %v, want kept=%v", c.id, err, c.kept)
		}
	}
	for _, c := range []struct {
		id   string
		kept bool
	}{{d0.ID, false}, {d1.ID, true}, {d2.ID, false}, {d2b.ID, false}, {dy.ID, true}} {
		_, err := st.DeliveryGet(ctx, c.id)
		if gone := errors.Is(err, store.ErrNotFound); gone == c.kept {
			t.Errorf("delivery %s: DeliveryGet error %v, want kept=%v", c.id, err, c.kept)
		}
	}
	if _, err := st.RequestGet(ctx, dup.RequestID); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("duplicate request %s: %v, want ErrNotFound", dup.RequestID, err)
	}
	if _, err := st.RequestGet(ctx, young.RequestID); err != nil {
		t.Errorf("young request %s: %v", young.RequestID, err)
	}
	// The stream goes on from where it was.
	if r := insert(t, st, 0, newEvent("src", "", base.Add(49*time.Hour))); r[0].Seq <= young.Seq {
		t.Errorf("seq after prune: %d, want above %d", r[0].Seq, young.Seq)
	}
}

// Sources created through the API are stored, replaced in place (keeping
// their creation time), listed by name and deleted.
func testSources(t *testing.T, st store.Store) {
	ctx := ctxFor(t)
	if err := st.SourcePut(ctx, &store.SourceRecord{Name: "b", Spec: []byte("sealed-b"), CreatedAt: base, UpdatedAt: base}); err != nil {
		t.Fatalf("SourcePut: %v", err)
	}
	if err := st.SourcePut(ctx, &store.SourceRecord{Name: "a", Spec: []byte("sealed-a"), CreatedAt: base, UpdatedAt: base}); err != nil {
		t.Fatalf("SourcePut: %v", err)
	}
	later := base.Add(time.Hour)
	if err := st.SourcePut(ctx, &store.SourceRecord{Name: "b", Spec: []byte("sealed-b2"), CreatedAt: later, UpdatedAt: later}); err != nil {
		t.Fatalf("SourcePut (replace): %v", err)
	}
	list, err := st.SourceList(ctx)
	if err != nil {
		t.Fatalf("SourceList: %v", err)
	}
	if len(list) != 2 || list[0].Name != "a" || list[1].Name != "b" || string(list[1].Spec) != "sealed-b2" ||
		!sameTime(list[1].CreatedAt, base) || !sameTime(list[1].UpdatedAt, later) {
		t.Fatalf("SourceList: got %+v %+v, want a, then b replaced with its creation time kept", list[0], list[len(list)-1])
	}
	if err := st.SourceDelete(ctx, "a"); err != nil {
		t.Fatalf("SourceDelete: %v", err)
	}
	if err := st.SourceDelete(ctx, "a"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("SourceDelete of a deleted source: %v, want ErrNotFound", err)
	}
	if list, _ := st.SourceList(ctx); len(list) != 1 || list[0].Name != "b" {
		t.Fatalf("SourceList after delete: %d sources", len(list))
	}
	if err := st.SourcePut(ctx, &store.SourceRecord{Name: "c"}); err == nil {
		t.Fatalf("SourcePut without a spec: got nil, want an error")
	}
}

// A destination's run of failures is kept, for configured destinations
// (a state-only row) and stored ones alike, across a replace of the spec,
// and cleared without leaving an empty state row behind.
func testDestinationFailingSince(t *testing.T, st store.Store) {
	ctx := ctxFor(t)
	since := base.Add(-time.Hour)
	// A configured destination: no row until it fails for long.
	if err := st.DestinationSetFailingSince(ctx, "cfg", since); err != nil {
		t.Fatalf("DestinationSetFailingSince: %v", err)
	}
	r := destinationByName(t, st, "cfg")
	if r == nil || len(r.Spec) != 0 || !sameTime(r.FailingSince, since) || !r.DisabledAt.IsZero() {
		t.Fatalf("state row: %+v, want failing since %s", r, since)
	}
	// Disabled, then the failing clock cleared: the row stays (disabled).
	if err := st.DestinationSetDisabled(ctx, "cfg", base, "down"); err != nil {
		t.Fatal(err)
	}
	if err := st.DestinationSetFailingSince(ctx, "cfg", time.Time{}); err != nil {
		t.Fatal(err)
	}
	if r := destinationByName(t, st, "cfg"); r == nil || !r.FailingSince.IsZero() || r.DisabledAt.IsZero() {
		t.Fatalf("after clearing the clock of a disabled one: %+v", r)
	}
	if err := st.DestinationSetDisabled(ctx, "cfg", time.Time{}, ""); err != nil {
		t.Fatal(err)
	}
	if r := destinationByName(t, st, "cfg"); r != nil {
		t.Fatalf("enabled and not failing: a state row is left: %+v", r)
	}
	// Failing and then cleared, never disabled: no row is left either.
	if err := st.DestinationSetFailingSince(ctx, "cfg", since); err != nil {
		t.Fatal(err)
	}
	if err := st.DestinationSetFailingSince(ctx, "cfg", time.Time{}); err != nil {
		t.Fatal(err)
	}
	if r := destinationByName(t, st, "cfg"); r != nil {
		t.Fatalf("cleared: a state row is left: %+v", r)
	}
	// A stored destination keeps it across a replace of its spec.
	if err := st.DestinationPut(ctx, &store.DestinationRecord{Name: "api", Spec: []byte("v1"), CreatedAt: base, UpdatedAt: base}); err != nil {
		t.Fatal(err)
	}
	if err := st.DestinationSetFailingSince(ctx, "api", since); err != nil {
		t.Fatal(err)
	}
	if err := st.DestinationPut(ctx, &store.DestinationRecord{Name: "api", Spec: []byte("v2"), CreatedAt: base, UpdatedAt: base}); err != nil {
		t.Fatal(err)
	}
	if r := destinationByName(t, st, "api"); r == nil || string(r.Spec) != "v2" || !sameTime(r.FailingSince, since) {
		t.Fatalf("after a replace: %+v", r)
	}
	if err := st.DestinationSetFailingSince(ctx, "api", time.Time{}); err != nil {
		t.Fatal(err)
	}
	if r := destinationByName(t, st, "api"); r == nil || string(r.Spec) != "v2" || !r.FailingSince.IsZero() {
		t.Fatalf("after clearing: %+v", r)
	}
}
