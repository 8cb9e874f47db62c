package storetest

import (
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"hookd"
	"hookd/internal/store"
)

// SearchBenchBody is the body of event i of the search benchmark: about
// 600 bytes of JSON from a small vocabulary; every tenth holds "needle",
// only event n/2 holds "zebraquux".
func SearchBenchBody(i, n int) []byte {
	words := []string{"order", "invoice", "customer", "payment", "refund", "shipping", "address", "street", "city", "amount",
		"currency", "status", "created", "updated", "pending", "paid", "card", "visa", "line", "item", "quantity", "price"}
	r := rand.New(rand.NewPCG(uint64(i), 7))
	var b strings.Builder
	fmt.Fprintf(&b, `{"id":"ev_%08d","type":"order.created","data":{"note":"`, i)
	for range 75 {
		b.WriteString(words[r.IntN(len(words))])
		b.WriteByte(' ')
	}
	if i%10 == 0 {
		b.WriteString("needle ")
	}
	if i == n/2 {
		b.WriteString("zebraquux ")
	}
	b.WriteString(`"}}`)
	return []byte(b.String())
}

// SearchBench stores n events and logs how long the bounded scan takes to
// find a rare and a common word, and a type pattern's listing: the figures
// of docs/BENCHMARKS.md. It is run by hand (see each driver's
// TestSearchBench).
func SearchBench(t *testing.T, st store.Store, n int) {
	start := time.Now()
	for i := 0; i < n; i += 1000 {
		es := make([]*hookd.Event, 0, 1000)
		for j := i; j < min(i+1000, n); j++ {
			e := newEvent("bench", "", base.Add(time.Duration(j)*time.Millisecond))
			e.Body = SearchBenchBody(j, n)
			if j%3 == 0 {
				e.Type = "invoice.paid"
			}
			es = append(es, e)
		}
		insert(t, st, 0, es...)
	}
	t.Logf("stored %d events in %v", n, time.Since(start).Round(time.Millisecond))
	ctx := ctxFor(t)
	for _, word := range []string{"zebraquux", "needle"} {
		p := &store.EventListParams{Order: store.OrderDesc, Limit: 50}
		var calls, found int
		var first, slowest time.Duration
		all := time.Now()
		for {
			s := time.Now()
			page, next, err := store.EventSearch(ctx, st, p, word)
			if err != nil {
				t.Fatal(err)
			}
			d := time.Since(s)
			calls++
			found += len(page)
			slowest = max(slowest, d)
			if found > 0 && first == 0 {
				first = time.Since(all)
			}
			if next == "" || (word == "needle" && calls == 1) {
				break
			}
			p.After = next
		}
		t.Logf("search %q: %d calls, %d found, first match after %v, slowest call %v, all %v",
			word, calls, found, first.Round(time.Millisecond), slowest.Round(time.Millisecond), time.Since(all).Round(time.Millisecond))
	}
	s := time.Now()
	page, _, err := st.EventList(ctx, &store.EventListParams{Type: "invoice.*", Order: store.OrderDesc, Limit: 50})
	if err != nil || len(page) != 50 {
		t.Fatalf("type pattern: %d, %v", len(page), err)
	}
	t.Logf("type invoice.*: first page of 50 in %v", time.Since(s).Round(time.Microsecond))
	s = time.Now()
	c, err := st.EventCount(ctx, &store.EventListParams{Type: "invoice.*"})
	t.Logf("type invoice.*: count %d in %v (%v)", c, time.Since(s).Round(time.Millisecond), err)
}
