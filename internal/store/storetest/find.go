package storetest

import (
	"errors"
	"fmt"
	"reflect"
	"testing"
	"time"

	"hookd"
	"hookd/internal/route"
	"hookd/internal/store"
)

// findCases are the listing filters of the console's and the API's search:
// type patterns, deliveries' status and destination, a search in bodies.
var findCases = []struct {
	name string
	fn   func(t *testing.T, st store.Store)
}{
	{"EventListTypePattern", testEventListTypePattern},
	{"EventListDeliveryDestination", testEventListDeliveryDestination},
	{"DeliveryListTypePattern", testDeliveryListTypePattern},
	{"EventSearch", testEventSearch},
	{"EventSearchBounded", testEventSearchBounded},
}

// patternTypes are types that tell the pattern semantics apart.
var patternTypes = []string{
	"order.created", "order.paid.v2", "order", "order.", "order..x", "orders.created",
	"invoice.created", "a.b.c", "a.x.c", "a.b.c.d", "", "ORDER.created", "or%er.x", "or_er.x", "o?d[e]r.x", "x.y.created",
}

func testEventListTypePattern(t *testing.T, st store.Store) {
	var es []*hookd.Event
	for i, typ := range patternTypes {
		e := newEvent("src", "", base.Add(time.Duration(i)*time.Second))
		e.Type = typ
		es = append(es, e)
	}
	insert(t, st, window, es...)
	byType := func(types ...string) []string {
		out := []string{}
		for _, e := range es {
			for _, typ := range types {
				if e.Type == typ {
					out = append(out, e.ID)
				}
			}
		}
		return out
	}
	// The same semantics as routing's: the expectation is route's Match.
	patterns := []string{"order.*", "*.created", "a.*.c", "a.*.*", "*.*", "*", "ORDER.*", "or%er.*", "or_er.*", "o?d[e]r.*", "order", "*.b.*"}
	for _, pat := range patterns {
		rp := route.MustCompilePattern(pat)
		want := []string{}
		for _, e := range es {
			if rp.Match(e.Type) {
				want = append(want, e.ID)
			}
		}
		got := ids(listAll(t, st, store.EventListParams{Type: pat}, 3))
		if len(got) == 0 {
			got = []string{}
		}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("type %q: got %d events %v, want %d %v", pat, len(got), got, len(want), want)
		}
		n, err := st.EventCount(ctxFor(t), &store.EventListParams{Type: pat})
		if err != nil || n != int64(len(want)) {
			t.Errorf("EventCount(type %q) = %d, %v; want %d", pat, n, err, len(want))
		}
	}
	// Spot checks of what the patterns mean.
	for _, c := range []struct {
		pattern string
		want    []string
	}{
		{"order.*", byType("order.created", "order.paid.v2")},
		{"*.created", byType("order.created", "orders.created", "invoice.created", "ORDER.created")},
		{"*", byType(patternTypes...)},
		{"or_er.*", byType("or_er.x")},
	} {
		if got := ids(listAll(t, st, store.EventListParams{Type: c.pattern}, 100)); !reflect.DeepEqual(got, c.want) {
			t.Errorf("type %q: got %v, want %v", c.pattern, got, c.want)
		}
	}
	for _, bad := range []string{"order.**", "ord*", "order..*", ".*"} {
		_, _, err := st.EventList(ctxFor(t), &store.EventListParams{Type: bad})
		var he *hookd.Error
		if !errors.As(err, &he) || he.Code != hookd.EInvalid {
			t.Errorf("EventList(type %q): got %v, want an invalid-argument error", bad, err)
		}
	}
}

func testEventListDeliveryDestination(t *testing.T, st store.Store) {
	es := seedEvents(t, st, "src", base, 4)
	writeAll(t, st,
		newDelivery(es[0], "alpha", store.StatusFailed, base),
		newDelivery(es[0], "beta", store.StatusSucceeded, base),
		newDelivery(es[1], "beta", store.StatusFailed, base),
		newDelivery(es[2], "alpha", store.StatusSucceeded, base),
	)
	cases := []struct {
		name string
		p    store.EventListParams
		want []string
	}{
		{"Destination", store.EventListParams{DeliveryDestination: "alpha"}, []string{es[0].ID, es[2].ID}},
		{"Status", store.EventListParams{DeliveryStatus: store.StatusFailed}, []string{es[0].ID, es[1].ID}},
		// Both: one delivery in that status to that destination.
		{"Both", store.EventListParams{DeliveryDestination: "beta", DeliveryStatus: store.StatusFailed}, []string{es[1].ID}},
		{"BothNone", store.EventListParams{DeliveryDestination: "alpha", DeliveryStatus: store.StatusPending}, []string{}},
		{"Unknown", store.EventListParams{DeliveryDestination: "nope"}, []string{}},
	}
	for _, c := range cases {
		got := ids(listAll(t, st, c.p, 1))
		if len(got) == 0 {
			got = []string{}
		}
		if !reflect.DeepEqual(got, c.want) {
			t.Errorf("%s: got %v, want %v", c.name, got, c.want)
		}
		n, err := st.EventCount(ctxFor(t), &c.p)
		if err != nil || n != int64(len(c.want)) {
			t.Errorf("%s: EventCount = %d, %v; want %d", c.name, n, err, len(c.want))
		}
	}
}

func testDeliveryListTypePattern(t *testing.T, st store.Store) {
	var evs []*hookd.Event
	for i, typ := range []string{"order.created", "order", "invoice.paid"} {
		e := newEvent("src", "", base.Add(time.Duration(i)*time.Second))
		e.Type = typ
		evs = append(evs, e)
	}
	res := insert(t, st, window, evs...)
	for i, e := range evs {
		writeAll(t, st, newDelivery(seededEvent{e, res[i].Seq}, "d", store.StatusFailed, base))
	}
	got := listDeliveries(t, st, store.DeliveryListParams{EventType: "order.*"}, 10)
	if len(got) != 1 || got[0].EventID != evs[0].ID {
		t.Errorf("DeliveryList(EventType order.*): got %v, want the delivery of %s", deliveryIDs(got), evs[0].ID)
	}
}

// searchSeed stores n events whose bodies are "body i", every third one
// with "Needle" in it, and one binary body holding the needle's bytes.
func searchSeed(t *testing.T, st store.Store, n int) (matches []string) {
	var es []*hookd.Event
	for i := range n {
		e := newEvent("src", "", base.Add(time.Duration(i)*time.Millisecond))
		e.Body = []byte(fmt.Sprintf(`{"n":%d}`, i))
		if i%3 == 0 {
			e.Body = []byte(fmt.Sprintf(`{"n":%d,"note":"a NeEdLe here"}`, i))
			matches = append(matches, e.ID)
		}
		es = append(es, e)
	}
	bin := newEvent("src", "", base.Add(time.Duration(n)*time.Millisecond))
	bin.Body = append([]byte{0xff, 0xfe}, "needle"...)
	es = append(es, bin)
	insert(t, st, window, es...)
	return matches
}

func testEventSearch(t *testing.T, st store.Store) {
	want := searchSeed(t, st, 10)
	// Pages of two, followed by their cursors to the end.
	var got []string
	p := &store.EventListParams{Order: store.OrderAsc, Limit: 2}
	for range 20 {
		page, next, err := store.EventSearch(ctxFor(t), st, p, "needle")
		if err != nil {
			t.Fatalf("EventSearch: %v", err)
		}
		if len(page) > p.Limit {
			t.Errorf("a page of %d events, want at most %d", len(page), p.Limit)
		}
		for _, e := range page {
			got = append(got, e.ID)
			if e.Body == nil {
				t.Errorf("event %s came without its body", e.ID)
			}
		}
		if next == "" {
			break
		}
		p.After = next
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("search needle: got %v, want %v (valid UTF-8 bodies only, any case)", got, want)
	}
	// With the other filters.
	page, _, err := store.EventSearch(ctxFor(t), st, &store.EventListParams{Source: "other"}, "needle")
	if err != nil || len(page) != 0 {
		t.Errorf("search in another source: got %d events, %v; want none", len(page), err)
	}
	for _, bad := range []string{"", string(make([]byte, store.MaxSearchLen+1)), "\xff"} {
		if _, _, err := store.EventSearch(ctxFor(t), st, &store.EventListParams{}, bad); err == nil {
			t.Errorf("search %q: got no error", bad)
		}
	}
}

func testEventSearchBounded(t *testing.T, st store.Store) {
	// More non-matching events than one call scans, then a match: the
	// first call ends empty with a cursor, the next finds it.
	n := store.SearchScanEvents + 5
	es := make([]*hookd.Event, 0, n+1)
	for i := range n {
		e := newEvent("src", "", base.Add(time.Duration(i)*time.Microsecond))
		e.Body = []byte("x")
		es = append(es, e)
	}
	hit := newEvent("src", "", base.Add(time.Duration(n)*time.Microsecond))
	hit.Body = []byte("the needle")
	es = append(es, hit)
	for i := 0; i < len(es); i += 1000 {
		insert(t, st, 0, es[i:min(i+1000, len(es))]...)
	}
	p := &store.EventListParams{Order: store.OrderAsc, Limit: 10}
	page, next, err := store.EventSearch(ctxFor(t), st, p, "needle")
	if err != nil || len(page) != 0 || next == "" {
		t.Fatalf("first call: got %d events, cursor %q, %v; want none and a cursor (the scan's bound)", len(page), next, err)
	}
	p.After = next
	page, next, err = store.EventSearch(ctxFor(t), st, p, "needle")
	if err != nil || len(page) != 1 || page[0].ID != hit.ID || next != "" {
		t.Fatalf("second call: got %v, cursor %q, %v; want [%s] and no cursor", ids(page), next, err, hit.ID)
	}
}
