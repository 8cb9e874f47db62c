// Package storetest is the conformance suite of the storage seam: every
// driver of store.Store runs Run from its own tests, against a real database
// isolated per subtest, and a new behaviour of the seam gets its case here
// rather than in one driver's tests.
package storetest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"reflect"
	"sync"
	"testing"
	"time"

	"hookd"
	"hookd/internal/store"
)

// Run runs the conformance suite. open returns a fresh, empty store for one
// subtest and arranges for it to be closed when that subtest ends.
func Run(t *testing.T, open func(t *testing.T) store.Store) {
	cases := []struct {
		name string
		fn   func(t *testing.T, st store.Store)
	}{
		{"EventInsertManyRoundTrip", testRoundTrip},
		{"EventInsertManyNilBodyStoredAsEmpty", testNilBody},
		{"EventInsertManyPreencodedHeaders", testPreencodedHeaders},
		{"EventInsertManySeqIncreasesAcrossBatches", testSeqOrder},
		{"DedupeWithinWindow", testDedupeWithinWindow},
		{"DedupeOtherSourceIsNotDuplicate", testDedupeOtherSource},
		{"DedupeWithinOneBatch", testDedupeWithinOneBatch},
		{"DedupeAfterWindowIsNewEvent", testDedupeAfterWindow},
		{"DedupeWindowZeroDisables", testDedupeWindowZero},
		{"DedupeEmptyExternalIDNeverDedupes", testDedupeEmptyExternalID},
		{"StaleOlderThanNewest", testStale},
		{"StaleWithinOneBatch", testStaleWithinOneBatch},
		{"EventTraceParentStored", testTraceParent},
		{"EventGetNotFound", testEventGetNotFound},
		{"RequestGetNotFound", testRequestGetNotFound},
		{"EventListOrder", testEventListOrder},
		{"EventListPagination", testEventListPagination},
		{"EventListMaxBodyBytes", testEventListMaxBodyBytes},
		{"EventListFilters", testEventListFilters},
		{"EventListWithoutBody", testEventListWithoutBody},
		{"EventListInvalidCursor", testEventListInvalidCursor},
		{"EventListLimitCapped", testEventListLimitCapped},
		{"SettingGetOrCreate", testSettingGetOrCreate},
		{"SettingPut", testSettingPut},
		{"AdminSessionLifecycle", testAdminSession},
		{"BatcherConcurrentInserts", testBatcherConcurrent},
		{"CloseIdempotent", testCloseIdempotent},
	}
	cases = append(cases, deliveryCases...)
	cases = append(cases, countCases...)
	cases = append(cases, findCases...)
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			c.fn(t, open(t))
		})
	}
}

// base is an arbitrary instant with nanoseconds, so that a driver that keeps
// more or less than microseconds shows.
var base = time.Date(2025, 3, 14, 15, 9, 26, 535897932, time.UTC)

const window = time.Hour

// newEvent returns an event as ingest builds it: the request id and the
// event id share one ULID.
func newEvent(source, externalID string, received time.Time) *hookd.Event {
	rid := hookd.RequestIDPrefix + hookd.NewULID(received)
	return &hookd.Event{
		ID:          hookd.EventIDForRequest(rid),
		Source:      source,
		ExternalID:  externalID,
		Type:        "thing.created",
		ReceivedAt:  received,
		RequestID:   rid,
		ContentType: "application/json",
		Headers:     map[string][]string{"Content-Type": {"application/json"}},
		Body:        []byte(`{"id":"` + externalID + `"}`),
	}
}

func ctxFor(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// insert stores es in one EventInsertMany call with dedupe window w.
func insert(t *testing.T, st store.Store, w time.Duration, es ...*hookd.Event) []store.EventInsertResult {
	t.Helper()
	ins := make([]*store.EventInsert, len(es))
	for i, e := range es {
		ins[i] = &store.EventInsert{Event: e, DedupeWindow: w}
	}
	res, err := st.EventInsertMany(ctxFor(t), ins)
	if err != nil {
		t.Fatalf("EventInsertMany: %v", err)
	}
	if len(res) != len(es) {
		t.Fatalf("EventInsertMany: got %d results, want %d", len(res), len(es))
	}
	return res
}

func get(t *testing.T, st store.Store, id string) *hookd.Event {
	t.Helper()
	e, err := st.EventGet(ctxFor(t), id)
	if err != nil {
		t.Fatalf("EventGet(%s): %v", id, err)
	}
	return e
}

// listAll pages through every event matching p (its After and Limit are
// overwritten) and fails on a page that repeats a cursor.
func listAll(t *testing.T, st store.Store, p store.EventListParams, limit int) []*hookd.Event {
	t.Helper()
	var out []*hookd.Event
	p.After, p.Limit = "", limit
	seen := map[string]bool{}
	for range 10000 {
		page, next, err := st.EventList(ctxFor(t), &p)
		if err != nil {
			t.Fatalf("EventList(%+v): %v", p, err)
		}
		if limit > 0 && len(page) > limit {
			t.Fatalf("EventList(limit %d): got a page of %d events", limit, len(page))
		}
		out = append(out, page...)
		if next == "" {
			return out
		}
		if len(page) == 0 {
			t.Fatalf("EventList: got an empty page with next cursor %q, want cursor \"\"", next)
		}
		if seen[next] {
			t.Fatalf("EventList: cursor %q returned twice", next)
		}
		seen[next] = true
		p.After = next
	}
	t.Fatal("EventList: pagination did not end")
	return nil
}

func ids(es []*hookd.Event) []string {
	out := make([]string, len(es))
	for i, e := range es {
		out[i] = e.ID
	}
	return out
}

func countBySource(t *testing.T, st store.Store, source string) int {
	t.Helper()
	return len(listAll(t, st, store.EventListParams{Source: source}, store.MaxListLimit))
}

func testRoundTrip(t *testing.T, st store.Store) {
	loc := time.FixedZone("UTC+5:30", 5*3600+1800)
	full := newEvent("src", "ext-full", base)
	full.Type = "event.claim.created.v1"
	full.Key = "claim-42"
	full.OccurredAt = base.Add(-time.Minute).In(loc) // nanoseconds, another zone
	full.ContentType = "application/octet-stream"
	full.Headers = map[string][]string{
		"Content-Type": {"application/octet-stream"},
		"X-Multi":      {"a", "b", ""},
		"X-Unicode":    {"ünïcødé ✓"},
	}
	full.Body = []byte{0x00, 0xff, 0xfe, 'a', 0x80, 0xc3, 0x28, '\n', 0x00}

	empty := newEvent("src", "", base.Add(time.Second))
	empty.Type, empty.ContentType, empty.Headers = "", "", nil
	empty.Body = []byte{}

	utf8 := newEvent("other", "ext-utf8", base.Add(2*time.Second))
	utf8.Body = []byte(`{"name":"Zoë","emoji":"🚀"}`)
	// A provider's time without a key is kept too (it is shown).
	utf8.OccurredAt = base.Add(-time.Hour)

	in := []*hookd.Event{full, empty, utf8}
	// Keep copies: a driver may write Seq and Stale into the events it is
	// given, and the comparison must be against what the caller sent.
	want := make([]hookd.Event, len(in))
	for i, e := range in {
		want[i] = *e
		want[i].Body = bytes.Clone(e.Body)
	}
	res := insert(t, st, window, in...)
	for i, r := range res {
		w := want[i]
		if r.ID != w.ID {
			t.Errorf("result %d: got ID %q, want %q", i, r.ID, w.ID)
		}
		if r.Duplicate || r.Stale {
			t.Errorf("result %d: got Duplicate=%v Stale=%v, want false, false", i, r.Duplicate, r.Stale)
		}
		if r.Seq <= 0 {
			t.Errorf("result %d: got Seq %d, want > 0", i, r.Seq)
		}
		got := get(t, st, w.ID)
		if got.Seq != r.Seq {
			t.Errorf("%s: got Seq %d, want %d (the insert result's)", w.ID, got.Seq, r.Seq)
		}
		checkEvent(t, got, &w)
	}
}

// checkEvent compares every field a user sees, with times at microsecond
// precision.
func checkEvent(t *testing.T, got, want *hookd.Event) {
	t.Helper()
	id := want.ID
	if got.ID != want.ID {
		t.Errorf("got ID %q, want %q", got.ID, want.ID)
	}
	for _, f := range []struct{ name, got, want string }{
		{"Source", got.Source, want.Source},
		{"ExternalID", got.ExternalID, want.ExternalID},
		{"Type", got.Type, want.Type},
		{"Key", got.Key, want.Key},
		{"ContentType", got.ContentType, want.ContentType},
		{"RequestID", got.RequestID, hookd.RequestIDForEvent(want.ID)},
		{"TraceParent", got.TraceParent, want.TraceParent},
	} {
		if f.got != f.want {
			t.Errorf("%s: got %s %q, want %q", id, f.name, f.got, f.want)
		}
	}
	if w := want.OccurredAt.Truncate(time.Microsecond); !got.OccurredAt.Equal(w) || got.OccurredAt.IsZero() != w.IsZero() {
		t.Errorf("%s: got OccurredAt %v, want %v", id, got.OccurredAt, w)
	}
	if w := want.ReceivedAt.Truncate(time.Microsecond); !got.ReceivedAt.Equal(w) {
		t.Errorf("%s: got ReceivedAt %v, want %v", id, got.ReceivedAt, w)
	}
	if len(got.Headers) != 0 || len(want.Headers) != 0 {
		if !reflect.DeepEqual(got.Headers, want.Headers) {
			t.Errorf("%s: got Headers %q, want %q", id, got.Headers, want.Headers)
		}
	}
	if !bytes.Equal(got.Body, want.Body) {
		t.Errorf("%s: got Body %q, want %q", id, got.Body, want.Body)
	}
	if got.Body == nil {
		t.Errorf("%s: got Body nil, want a non-nil (possibly empty) slice from EventGet", id)
	}
}

func testNilBody(t *testing.T, st store.Store) {
	// A nil body is an empty body (the zero value of a hookd.Event). A
	// driver that rejects it fails the whole batch, and every other event
	// committed with it gets a 503.
	e := newEvent("src", "ext-nil", base)
	e.Body = nil
	other := newEvent("src", "ext-other", base)
	ins := []*store.EventInsert{{Event: e, DedupeWindow: window}, {Event: other, DedupeWindow: window}}
	if _, err := st.EventInsertMany(ctxFor(t), ins); err != nil {
		t.Fatalf("EventInsertMany with a nil Body: got error %v, want nil", err)
	}
	got := get(t, st, e.ID)
	if got.Body == nil || len(got.Body) != 0 {
		t.Errorf("got Body %#v, want []byte{}", got.Body)
	}
}

func testPreencodedHeaders(t *testing.T, st store.Store) {
	// Ingest encodes headers in the handler's goroutine (HeadersJSON); the
	// stored headers are the same either way.
	e := newEvent("src", "ext-1", base)
	e.Headers = map[string][]string{"X-A": {"1", "2"}, "Content-Type": {"text/plain"}}
	hj, err := store.EncodeHeaders(e.Headers)
	if err != nil {
		t.Fatalf("EncodeHeaders: %v", err)
	}
	if _, err := st.EventInsertMany(ctxFor(t), []*store.EventInsert{{Event: e, DedupeWindow: window, HeadersJSON: hj}}); err != nil {
		t.Fatalf("EventInsertMany: %v", err)
	}
	if got := get(t, st, e.ID); !reflect.DeepEqual(got.Headers, e.Headers) {
		t.Errorf("got Headers %q, want %q", got.Headers, e.Headers)
	}
}

func testSeqOrder(t *testing.T, st store.Store) {
	var all []*hookd.Event
	var seqs []int64
	for batch := range 3 {
		var es []*hookd.Event
		for i := range 4 {
			// ReceivedAt deliberately not in insert order: Seq is commit order.
			es = append(es, newEvent("src", fmt.Sprintf("b%d-%d", batch, i), base.Add(time.Duration(10-i-batch)*time.Second)))
		}
		for _, r := range insert(t, st, window, es...) {
			seqs = append(seqs, r.Seq)
		}
		all = append(all, es...)
	}
	for i := 1; i < len(seqs); i++ {
		if seqs[i] <= seqs[i-1] {
			t.Errorf("insert %d: got Seq %d after %d, want increasing in insert order", i, seqs[i], seqs[i-1])
		}
	}
	listed := listAll(t, st, store.EventListParams{Order: store.OrderAsc}, 0)
	if got, want := ids(listed), ids(all); !reflect.DeepEqual(got, want) {
		t.Errorf("EventList asc: got %v, want insert order %v", got, want)
	}
}

func testDedupeWithinWindow(t *testing.T, st store.Store) {
	first := newEvent("src", "ext-1", base)
	r1 := insert(t, st, window, first)[0]
	dup := newEvent("src", "ext-1", base.Add(window-time.Microsecond))
	dup.Body = []byte(`{"different":"body"}`)
	r2 := insert(t, st, window, dup)[0]
	if !r2.Duplicate {
		t.Fatalf("same (source, external_id) within the window: got Duplicate false, want true")
	}
	if r2.ID != first.ID {
		t.Errorf("duplicate: got ID %q, want the original's %q", r2.ID, first.ID)
	}
	if r2.Seq != r1.Seq {
		t.Errorf("duplicate: got Seq %d, want the original's %d", r2.Seq, r1.Seq)
	}
	if n := countBySource(t, st, "src"); n != 1 {
		t.Errorf("after a duplicate: got %d stored events, want 1", n)
	}
	if _, err := st.EventGet(ctxFor(t), dup.ID); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("EventGet(duplicate's own id): got error %v, want ErrNotFound", err)
	}
	if got := get(t, st, first.ID); !bytes.Equal(got.Body, first.Body) {
		t.Errorf("original after a duplicate: got Body %q, want %q", got.Body, first.Body)
	}

	req, err := st.RequestGet(ctxFor(t), dup.RequestID)
	if err != nil {
		t.Fatalf("RequestGet(duplicate's request id): %v", err)
	}
	if req.ID != dup.RequestID || req.EventID != first.ID || !req.Duplicate {
		t.Errorf("RequestGet(duplicate): got {ID:%s EventID:%s Duplicate:%v}, want {ID:%s EventID:%s Duplicate:true}",
			req.ID, req.EventID, req.Duplicate, dup.RequestID, first.ID)
	}
	if w := dup.ReceivedAt.Truncate(time.Microsecond); !req.ReceivedAt.Equal(w) {
		t.Errorf("RequestGet(duplicate): got ReceivedAt %v, want %v", req.ReceivedAt, w)
	}
	orig, err := st.RequestGet(ctxFor(t), first.RequestID)
	if err != nil {
		t.Fatalf("RequestGet(original's request id): %v", err)
	}
	if orig.EventID != first.ID || orig.Duplicate {
		t.Errorf("RequestGet(original): got {EventID:%s Duplicate:%v}, want {EventID:%s Duplicate:false}", orig.EventID, orig.Duplicate, first.ID)
	}
	if w := first.ReceivedAt.Truncate(time.Microsecond); !orig.ReceivedAt.Equal(w) {
		t.Errorf("RequestGet(original): got ReceivedAt %v, want %v", orig.ReceivedAt, w)
	}
}

func testDedupeOtherSource(t *testing.T, st store.Store) {
	a := newEvent("a", "ext-1", base)
	b := newEvent("b", "ext-1", base.Add(time.Second))
	res := insert(t, st, window, a, b)
	res = append(res, insert(t, st, window, newEvent("c", "ext-1", base.Add(2*time.Second)))...)
	for i, r := range res {
		if r.Duplicate {
			t.Errorf("event %d: same external id on another source: got Duplicate true, want false", i)
		}
	}
	for _, src := range []string{"a", "b", "c"} {
		if n := countBySource(t, st, src); n != 1 {
			t.Errorf("source %s: got %d events, want 1", src, n)
		}
	}
}

func testDedupeWithinOneBatch(t *testing.T, st store.Store) {
	first := newEvent("src", "ext-1", base)
	second := newEvent("src", "ext-1", base.Add(time.Millisecond))
	other := newEvent("src", "ext-2", base.Add(2*time.Millisecond))
	third := newEvent("src", "ext-1", base.Add(3*time.Millisecond))
	res := insert(t, st, window, first, second, other, third)
	if res[0].Duplicate || res[2].Duplicate {
		t.Errorf("first occurrences: got Duplicate %v, %v, want false, false", res[0].Duplicate, res[2].Duplicate)
	}
	for _, i := range []int{1, 3} {
		if !res[i].Duplicate || res[i].ID != first.ID {
			t.Errorf("insert %d, same id in the same batch: got {ID:%s Duplicate:%v}, want {ID:%s Duplicate:true}",
				i, res[i].ID, res[i].Duplicate, first.ID)
		}
	}
	if n := countBySource(t, st, "src"); n != 2 {
		t.Errorf("got %d stored events, want 2", n)
	}
	for _, e := range []*hookd.Event{second, third} {
		req, err := st.RequestGet(ctxFor(t), e.RequestID)
		if err != nil {
			t.Fatalf("RequestGet(%s): %v", e.RequestID, err)
		}
		if !req.Duplicate || req.EventID != first.ID {
			t.Errorf("RequestGet(%s): got {EventID:%s Duplicate:%v}, want {EventID:%s Duplicate:true}", e.RequestID, req.EventID, req.Duplicate, first.ID)
		}
	}
}

func testDedupeAfterWindow(t *testing.T, st store.Store) {
	first := newEvent("src", "ext-1", base)
	insert(t, st, window, first)
	// Exactly one window after the first occurrence: the window is closed.
	second := newEvent("src", "ext-1", base.Add(window))
	r2 := insert(t, st, window, second)[0]
	if r2.Duplicate || r2.ID != second.ID {
		t.Fatalf("same id once the window has passed: got {ID:%s Duplicate:%v}, want {ID:%s Duplicate:false}", r2.ID, r2.Duplicate, second.ID)
	}
	// Within the second's window but past the first's: a duplicate of the
	// second, the window counting from the new event's first occurrence.
	third := newEvent("src", "ext-1", base.Add(2*window-time.Microsecond))
	r3 := insert(t, st, window, third)[0]
	if !r3.Duplicate || r3.ID != second.ID {
		t.Errorf("same id within the new event's window: got {ID:%s Duplicate:%v}, want {ID:%s Duplicate:true}", r3.ID, r3.Duplicate, second.ID)
	}
	// And a fourth, past the second's window, is new again.
	fourth := newEvent("src", "ext-1", base.Add(2*window))
	r4 := insert(t, st, window, fourth)[0]
	if r4.Duplicate || r4.ID != fourth.ID {
		t.Errorf("same id past the new event's window: got {ID:%s Duplicate:%v}, want {ID:%s Duplicate:false}", r4.ID, r4.Duplicate, fourth.ID)
	}
	stored := listAll(t, st, store.EventListParams{Source: "src"}, 0)
	if got, want := ids(stored), []string{first.ID, second.ID, fourth.ID}; !reflect.DeepEqual(got, want) {
		t.Errorf("stored events: got %v, want %v", got, want)
	}
	for _, e := range stored {
		if e.ExternalID != "ext-1" {
			t.Errorf("%s: got ExternalID %q, want %q (an old event keeps its external id)", e.ID, e.ExternalID, "ext-1")
		}
	}
}

func testDedupeWindowZero(t *testing.T, st store.Store) {
	a := newEvent("src", "ext-1", base)
	b := newEvent("src", "ext-1", base.Add(time.Second))
	c := newEvent("src", "ext-1", base.Add(2*time.Second))
	res := insert(t, st, 0, a, b)
	res = append(res, insert(t, st, 0, c)...)
	for i, r := range res {
		if r.Duplicate {
			t.Errorf("insert %d with DedupeWindow 0: got Duplicate true, want false", i)
		}
	}
	if n := countBySource(t, st, "src"); n != 3 {
		t.Errorf("DedupeWindow 0: got %d stored events, want 3", n)
	}
}

func testDedupeEmptyExternalID(t *testing.T, st store.Store) {
	a := newEvent("src", "", base)
	b := newEvent("src", "", base.Add(time.Second))
	c := newEvent("src", "", base.Add(2*time.Second))
	res := insert(t, st, window, a, b)
	res = append(res, insert(t, st, window, c)...)
	for i, r := range res {
		if r.Duplicate {
			t.Errorf("insert %d without external id: got Duplicate true, want false", i)
		}
	}
	if n := countBySource(t, st, "src"); n != 3 {
		t.Errorf("without external ids: got %d stored events, want 3", n)
	}
}

func keyed(source, key string, occurred time.Time, received time.Time) *hookd.Event {
	e := newEvent(source, "", received)
	e.Key, e.OccurredAt = key, occurred
	return e
}

func testStale(t *testing.T, st store.Store) {
	t0 := base.Add(-time.Hour)
	recv := base
	next := func() time.Time { recv = recv.Add(time.Second); return recv }
	steps := []struct {
		name  string
		e     *hookd.Event
		stale bool
	}{
		{"First", keyed("src", "k", t0.Add(10*time.Second), next()), false},
		{"Older", keyed("src", "k", t0.Add(5*time.Second), next()), true},
		{"OlderByOneMicrosecond", keyed("src", "k", t0.Add(10*time.Second-time.Microsecond), next()), true},
		{"Equal", keyed("src", "k", t0.Add(10*time.Second), next()), false},
		{"Newer", keyed("src", "k", t0.Add(11*time.Second), next()), false},
		{"OlderThanTheNewNewest", keyed("src", "k", t0.Add(10*time.Second), next()), true},
		{"OtherKey", keyed("src", "k2", t0, next()), false},
		{"OtherSource", keyed("other", "k", t0, next()), false},
		{"NoTimestamp", keyed("src", "k", time.Time{}, next()), false},
		{"NoKey", keyed("src", "", t0, next()), false},
	}
	for _, s := range steps {
		r := insert(t, st, window, s.e)[0]
		if r.Stale != s.stale {
			t.Errorf("%s: got result Stale %v, want %v", s.name, r.Stale, s.stale)
		}
		if got := get(t, st, s.e.ID); got.Stale != s.stale {
			t.Errorf("%s: got stored Stale %v, want %v", s.name, got.Stale, s.stale)
		}
	}
	if n, want := countBySource(t, st, "src"), len(steps)-1; n != want {
		t.Errorf("got %d stored events in src, want %d (stale events are stored too)", n, want)
	}
}

func testStaleWithinOneBatch(t *testing.T, st store.Store) {
	newer := keyed("src", "k", base.Add(time.Minute), base)
	older := keyed("src", "k", base, base.Add(time.Second))
	res := insert(t, st, window, newer, older)
	if res[0].Stale || !res[1].Stale {
		t.Errorf("newer then older in one batch: got Stale %v, %v, want false, true", res[0].Stale, res[1].Stale)
	}
}

func testEventGetNotFound(t *testing.T, st store.Store) {
	insert(t, st, window, newEvent("src", "ext-1", base))
	for _, id := range []string{hookd.EventIDPrefix + hookd.NewULID(base), "evt_nope", ""} {
		_, err := st.EventGet(ctxFor(t), id)
		if !errors.Is(err, store.ErrNotFound) {
			t.Errorf("EventGet(%q): got error %v, want ErrNotFound", id, err)
		}
	}
}

func testRequestGetNotFound(t *testing.T, st store.Store) {
	insert(t, st, window, newEvent("src", "ext-1", base))
	for _, id := range []string{hookd.RequestIDPrefix + hookd.NewULID(base), "req_nope", ""} {
		_, err := st.RequestGet(ctxFor(t), id)
		if !errors.Is(err, store.ErrNotFound) {
			t.Errorf("RequestGet(%q): got error %v, want ErrNotFound", id, err)
		}
	}
}

// seedList stores 7 events over two sources and two types, one second
// apart, in two batches, and returns them in insert order.
func seedList(t *testing.T, st store.Store) []*hookd.Event {
	var es []*hookd.Event
	for i := range 7 {
		src, typ := "a", "t.one"
		if i%2 == 1 {
			src = "b"
		}
		if i%3 == 2 {
			typ = "t.two"
		}
		e := newEvent(src, fmt.Sprintf("ext-%d", i), base.Add(time.Duration(i)*time.Second))
		e.Type = typ
		e.Body = []byte(fmt.Sprintf("body %d", i))
		es = append(es, e)
	}
	insert(t, st, window, es[:3]...)
	insert(t, st, window, es[3:]...)
	return es
}

func reversed(s []string) []string {
	out := make([]string, len(s))
	for i, v := range s {
		out[len(s)-1-i] = v
	}
	return out
}

func testEventListOrder(t *testing.T, st store.Store) {
	es := seedList(t, st)
	want := ids(es)
	for _, order := range []string{"", store.OrderAsc} {
		got, next, err := st.EventList(ctxFor(t), &store.EventListParams{Order: order})
		if err != nil {
			t.Fatalf("EventList(order %q): %v", order, err)
		}
		if !reflect.DeepEqual(ids(got), want) {
			t.Errorf("EventList(order %q): got %v, want %v", order, ids(got), want)
		}
		if next != "" {
			t.Errorf("EventList(order %q) of everything: got next cursor %q, want \"\"", order, next)
		}
	}
	got, _, err := st.EventList(ctxFor(t), &store.EventListParams{Order: store.OrderDesc})
	if err != nil {
		t.Fatalf("EventList(desc): %v", err)
	}
	if !reflect.DeepEqual(ids(got), reversed(want)) {
		t.Errorf("EventList(desc): got %v, want %v", ids(got), reversed(want))
	}
}

func testEventListPagination(t *testing.T, st store.Store) {
	es := seedList(t, st)
	want := ids(es)
	for _, order := range []string{store.OrderAsc, store.OrderDesc} {
		w := want
		if order == store.OrderDesc {
			w = reversed(want)
		}
		// 7 events: limits that divide it, don't, and exceed it.
		for _, limit := range []int{1, 2, 3, 6, 7, 8} {
			got := listAll(t, st, store.EventListParams{Order: order}, limit)
			if !reflect.DeepEqual(ids(got), w) {
				t.Errorf("paging %s by %d: got %v, want every event once: %v", order, limit, ids(got), w)
			}
		}
	}
	// The per-source stream: a cursor from a filtered listing continues it.
	var wantA []string
	for _, e := range es {
		if e.Source == "a" {
			wantA = append(wantA, e.ID)
		}
	}
	got := listAll(t, st, store.EventListParams{Source: "a", Order: store.OrderAsc}, 1)
	if !reflect.DeepEqual(ids(got), wantA) {
		t.Errorf("paging source a by 1: got %v, want %v", ids(got), wantA)
	}
	// A cursor taken before more events arrive continues with them.
	page, next, err := st.EventList(ctxFor(t), &store.EventListParams{Order: store.OrderAsc, Limit: len(es)})
	if err != nil {
		t.Fatalf("EventList: %v", err)
	}
	if next != "" || len(page) != len(es) {
		t.Fatalf("EventList(limit %d): got %d events and cursor %q, want %d and \"\"", len(es), len(page), next, len(es))
	}
	late := newEvent("a", "ext-late", base.Add(time.Hour))
	insert(t, st, window, late)
	last := page[len(page)-1]
	rest, _, err := st.EventList(ctxFor(t), &store.EventListParams{Order: store.OrderAsc, After: store.EncodeCursor(last.Seq)})
	if err != nil {
		t.Fatalf("EventList(after the last seq): %v", err)
	}
	if got, want := ids(rest), []string{late.ID}; !reflect.DeepEqual(got, want) {
		t.Errorf("EventList(after the last seq): got %v, want %v", got, want)
	}
}

// A page ends before the event whose body would take it past MaxBodyBytes,
// holds at least one event, and following its cursors lists every event once.
func testEventListMaxBodyBytes(t *testing.T, st store.Store) {
	var es []*hookd.Event
	for i := range 7 {
		e := newEvent("big", fmt.Sprintf("ext-%d", i), base.Add(time.Duration(i)*time.Second))
		e.Body = bytes.Repeat([]byte{byte('a' + i)}, 100)
		es = append(es, e)
	}
	insert(t, st, window, es...)
	for _, tc := range []struct {
		max      int64
		wantPage int
	}{{250, 2}, {299, 2}, {300, 3}, {301, 3}, {1, 1}, {10000, 7}} {
		for _, order := range []string{store.OrderAsc, store.OrderDesc} {
			p := store.EventListParams{Order: order, Limit: 100, WithBody: true, MaxBodyBytes: tc.max}
			page, next, err := st.EventList(ctxFor(t), &p)
			if err != nil {
				t.Fatalf("EventList: %v", err)
			}
			if len(page) != tc.wantPage || (next == "") != (tc.wantPage == len(es)) {
				t.Errorf("EventList(%s, MaxBodyBytes %d): got %d events and cursor %q, want %d events and a cursor unless that is all", order, tc.max, len(page), next, tc.wantPage)
			}
			want := ids(es)
			if order == store.OrderDesc {
				want = reversed(want)
			}
			if got := ids(listAll(t, st, p, 100)); !reflect.DeepEqual(got, want) {
				t.Errorf("paging %s with MaxBodyBytes %d: got %v, want every event once: %v", order, tc.max, got, want)
			}
		}
	}
}

func testEventListFilters(t *testing.T, st store.Store) {
	es := seedList(t, st)
	pick := func(keep func(i int, e *hookd.Event) bool) []string {
		out := []string{}
		for i, e := range es {
			if keep(i, e) {
				out = append(out, e.ID)
			}
		}
		return out
	}
	cases := []struct {
		name string
		p    store.EventListParams
		want []string
	}{
		{"Source", store.EventListParams{Source: "b"}, pick(func(_ int, e *hookd.Event) bool { return e.Source == "b" })},
		{"Type", store.EventListParams{Type: "t.two"}, pick(func(_ int, e *hookd.Event) bool { return e.Type == "t.two" })},
		{"SourceAndType", store.EventListParams{Source: "a", Type: "t.one"},
			pick(func(_ int, e *hookd.Event) bool { return e.Source == "a" && e.Type == "t.one" })},
		{"UnknownSource", store.EventListParams{Source: "nope"}, []string{}},
		// Since is inclusive, Until exclusive, both on ReceivedAt.
		{"Since", store.EventListParams{Since: es[2].ReceivedAt}, pick(func(i int, _ *hookd.Event) bool { return i >= 2 })},
		{"Until", store.EventListParams{Until: es[4].ReceivedAt}, pick(func(i int, _ *hookd.Event) bool { return i < 4 })},
		{"SinceUntil", store.EventListParams{Since: es[1].ReceivedAt, Until: es[5].ReceivedAt},
			pick(func(i int, _ *hookd.Event) bool { return i >= 1 && i < 5 })},
		{"SinceBetweenEvents", store.EventListParams{Since: es[2].ReceivedAt.Add(time.Millisecond)},
			pick(func(i int, _ *hookd.Event) bool { return i >= 3 })},
		{"SourceSinceDesc", store.EventListParams{Source: "a", Since: es[2].ReceivedAt, Order: store.OrderDesc},
			reversed(pick(func(i int, e *hookd.Event) bool { return e.Source == "a" && i >= 2 }))},
	}
	for _, c := range cases {
		got := listAll(t, st, c.p, 2)
		if g := ids(got); !reflect.DeepEqual(g, c.want) {
			t.Errorf("%s: got %v, want %v", c.name, g, c.want)
		}
	}
}

func testEventListWithoutBody(t *testing.T, st store.Store) {
	es := seedList(t, st)
	without, _, err := st.EventList(ctxFor(t), &store.EventListParams{})
	if err != nil {
		t.Fatalf("EventList: %v", err)
	}
	with, _, err := st.EventList(ctxFor(t), &store.EventListParams{WithBody: true})
	if err != nil {
		t.Fatalf("EventList(WithBody): %v", err)
	}
	if len(without) != len(es) || len(with) != len(es) {
		t.Fatalf("got %d and %d events, want %d", len(without), len(with), len(es))
	}
	for i, e := range es {
		if without[i].Body != nil {
			t.Errorf("%s without body: got Body %q, want nil", e.ID, without[i].Body)
		}
		if without[i].Source != e.Source || without[i].Type != e.Type || without[i].RequestID != e.RequestID {
			t.Errorf("%s without body: got {Source:%s Type:%s RequestID:%s}, want {Source:%s Type:%s RequestID:%s}",
				e.ID, without[i].Source, without[i].Type, without[i].RequestID, e.Source, e.Type, e.RequestID)
		}
		checkEvent(t, with[i], e)
	}
}

func testEventListInvalidCursor(t *testing.T, st store.Store) {
	seedList(t, st)
	for _, c := range []string{"abc", "-1", "1.5", "9999999999999999999999"} {
		for _, order := range []string{store.OrderAsc, store.OrderDesc} {
			_, _, err := st.EventList(ctxFor(t), &store.EventListParams{After: c, Order: order})
			if code := hookd.ErrorCode(err); code != hookd.EInvalid {
				t.Errorf("EventList(cursor %q, %s): got error %v (code %q), want code %q", c, order, err, code, hookd.EInvalid)
			}
		}
	}
}

func testEventListLimitCapped(t *testing.T, st store.Store) {
	es := make([]*hookd.Event, store.MaxListLimit+1)
	for i := range es {
		es[i] = newEvent("src", "", base.Add(time.Duration(i)*time.Millisecond))
	}
	insert(t, st, 0, es...)
	page, next, err := st.EventList(ctxFor(t), &store.EventListParams{Limit: store.MaxListLimit + 500})
	if err != nil {
		t.Fatalf("EventList: %v", err)
	}
	if len(page) != store.MaxListLimit || next == "" {
		t.Fatalf("EventList(limit %d) of %d events: got %d events and cursor %q, want %d and a cursor",
			store.MaxListLimit+500, len(es), len(page), next, store.MaxListLimit)
	}
	rest, next, err := st.EventList(ctxFor(t), &store.EventListParams{Limit: store.MaxListLimit + 500, After: next})
	if err != nil {
		t.Fatalf("EventList(next page): %v", err)
	}
	if len(rest) != 1 || rest[0].ID != es[len(es)-1].ID || next != "" {
		t.Errorf("second page: got %v and cursor %q, want [%s] and \"\"", ids(rest), next, es[len(es)-1].ID)
	}
}

func testSettingPut(t *testing.T, st store.Store) {
	ctx := ctxFor(t)
	if _, err := st.SettingGet(ctx, "put_test"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("SettingGet of an unset name: got %v, want ErrNotFound", err)
	}
	for _, want := range []string{"one", "two"} {
		if err := st.SettingPut(ctx, "put_test", want); err != nil {
			t.Fatalf("SettingPut: %v", err)
		}
		if v, err := st.SettingGet(ctx, "put_test"); err != nil || v != want {
			t.Errorf("SettingGet after SettingPut(%q): got %q, %v, want %q", want, v, err, want)
		}
	}
	if v, err := st.SettingGetOrCreate(ctx, "put_test", "three"); err != nil || v != "two" {
		t.Errorf("SettingGetOrCreate after SettingPut: got %q, %v, want %q", v, err, "two")
	}
}

func testSettingGetOrCreate(t *testing.T, st store.Store) {
	ctx := ctxFor(t)
	v, err := st.SettingGetOrCreate(ctx, "admin_token", "first")
	if err != nil {
		t.Fatalf("SettingGetOrCreate: %v", err)
	}
	if v != "first" {
		t.Errorf("first call: got %q, want %q", v, "first")
	}
	v, err = st.SettingGetOrCreate(ctx, "admin_token", "second")
	if err != nil {
		t.Fatalf("SettingGetOrCreate: %v", err)
	}
	if v != "first" {
		t.Errorf("second call: got %q, want the first value %q", v, "first")
	}
	v, err = st.SettingGetOrCreate(ctx, "other", "x")
	if err != nil {
		t.Fatalf("SettingGetOrCreate: %v", err)
	}
	if v != "x" {
		t.Errorf("another name: got %q, want %q", v, "x")
	}
}

func testBatcherConcurrent(t *testing.T, st store.Store) {
	const (
		workers   = 32
		perWorker = 25
		distinct  = 100 // external ids, each sent several times
	)
	b := store.NewBatcher(st, slog.New(slog.NewTextHandler(t.Output(), nil)), store.BatcherOptions{MaxBatch: 64})
	if err := b.Start(t.Context()); err != nil {
		t.Fatalf("Start: %v", err)
	}
	t.Cleanup(func() {
		if err := b.Stop(context.Background()); err != nil {
			t.Errorf("Stop: %v", err)
		}
	})
	type outcome struct {
		extID string
		res   store.EventInsertResult
		err   error
		id    string
	}
	out := make(chan outcome, workers*perWorker)
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for i := range perWorker {
				n := w*perWorker + i
				ext := fmt.Sprintf("ext-%d", n%distinct)
				e := newEvent("src", ext, base.Add(time.Duration(n)*time.Millisecond))
				ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
				res, err := b.Insert(ctx, &store.EventInsert{Event: e, DedupeWindow: window})
				cancel()
				out <- outcome{ext, res, err, e.ID}
			}
		})
	}
	wg.Wait()
	close(out)
	byExt := map[string]string{} // external id → the stored event's id
	dups, news := 0, 0
	for o := range out {
		if o.err != nil {
			t.Errorf("Insert(%s): %v", o.extID, o.err)
			continue
		}
		if id, ok := byExt[o.extID]; ok && id != o.res.ID {
			t.Errorf("external id %s: got event ids %s and %s, want one", o.extID, id, o.res.ID)
		}
		byExt[o.extID] = o.res.ID
		if o.res.Duplicate {
			dups++
		} else {
			news++
			if o.res.ID != o.id {
				t.Errorf("new event: got ID %s, want its own %s", o.res.ID, o.id)
			}
		}
	}
	if news != distinct || dups != workers*perWorker-distinct {
		t.Errorf("got %d new and %d duplicates, want %d and %d", news, dups, distinct, workers*perWorker-distinct)
	}
	stored := listAll(t, st, store.EventListParams{Source: "src"}, store.MaxListLimit)
	if len(stored) != distinct {
		t.Errorf("got %d stored events, want %d (one per external id)", len(stored), distinct)
	}
	for _, e := range stored {
		if byExt[e.ExternalID] != e.ID {
			t.Errorf("stored %s for %s: want the id Insert returned, %s", e.ID, e.ExternalID, byExt[e.ExternalID])
		}
	}
}

// Close may be called more than once, and a closed store answers with
// errors, not panics.
func testCloseIdempotent(t *testing.T, st store.Store) {
	for i := range 3 {
		if err := st.Close(); err != nil {
			t.Errorf("Close #%d: got %v, want nil", i+1, err)
		}
	}
	if _, err := st.EventGet(ctxFor(t), "evt_x"); err == nil {
		t.Errorf("EventGet after Close: got nil error, want one")
	}
	if err := st.Ping(ctxFor(t)); err == nil {
		t.Errorf("Ping after Close: got nil error, want one")
	}
}

// testTraceParent: the trace context ingest stores with an event (tracing
// on) comes back from EventGet and EventList, with or without bodies, and
// an event stored without one (tracing off) has none.
func testTraceParent(t *testing.T, st store.Store) {
	const tp = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
	traced := newEvent("src", "traced", base)
	traced.TraceParent = tp
	plain := newEvent("src", "plain", base.Add(time.Second))
	insert(t, st, window, traced, plain)
	for _, c := range []struct {
		id, want string
	}{{traced.ID, tp}, {plain.ID, ""}} {
		if got := get(t, st, c.id).TraceParent; got != c.want {
			t.Errorf("EventGet(%s): got TraceParent %q, want %q", c.id, got, c.want)
		}
	}
	for _, withBody := range []bool{false, true} {
		evs := listAll(t, st, store.EventListParams{Order: store.OrderAsc, WithBody: withBody}, 10)
		if len(evs) != 2 {
			t.Fatalf("EventList(WithBody=%v): got %d events, want 2", withBody, len(evs))
		}
		if evs[0].TraceParent != tp || evs[1].TraceParent != "" {
			t.Errorf("EventList(WithBody=%v): got TraceParents %q, %q; want %q, \"\"", withBody, evs[0].TraceParent, evs[1].TraceParent, tp)
		}
	}
}
