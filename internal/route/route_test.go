package route

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"hookd"
)

func pats(t testing.TB, ss ...string) Patterns {
	t.Helper()
	ps, err := CompilePatterns(ss...)
	if err != nil {
		t.Fatalf("CompilePatterns(%q): %v", ss, err)
	}
	return ps
}

func fp(x Filter) *Filter { return &x }

func TestRuleMatch(t *testing.T) {
	t.Parallel()
	claim := &hookd.Event{Source: "claims", Type: "event.claim.created.v1", Body: []byte(claimBody)}
	staleClaim := &hookd.Event{Source: "claims", Type: "event.claim.created.v1", Body: []byte(claimBody), Stale: true}
	invoice := &hookd.Event{Source: "billing", Type: "event.invoice.paid", Body: []byte(`{"amount":10}`)}
	untyped := &hookd.Event{Source: "app", Body: []byte(`not json`)}
	tests := []struct {
		name string
		rule Rule
		ev   *hookd.Event
		want bool
	}{
		{"Acceptance", Rule{Events: pats(t, "event.claim.*"), Active: true}, claim, true},
		{"AcceptanceNot", Rule{Events: pats(t, "event.claim.*"), Active: true}, invoice, false},
		{"Inactive", Rule{Events: pats(t, "*"), Active: false}, claim, false},
		{"InactiveZero", Rule{}, claim, false},
		{"NoEventsIsEveryType", Rule{Active: true}, untyped, true},
		{"StarMatchesEmptyType", Rule{Events: pats(t, "*"), Active: true}, untyped, true},
		{"ExactMissesEmptyType", Rule{Events: pats(t, "x"), Active: true}, untyped, false},
		{"SourceListed", Rule{Sources: []string{"billing", "claims"}, Active: true}, claim, true},
		{"SourceNotListed", Rule{Sources: []string{"billing"}, Active: true}, claim, false},
		{"SourceStar", Rule{Sources: []string{"billing", "*"}, Active: true}, claim, true},
		{"SourceCaseSensitive", Rule{Sources: []string{"Claims"}, Active: true}, claim, false},
		{"SkipStaleFresh", Rule{SkipStale: true, Active: true}, claim, true},
		{"SkipStaleStale", Rule{SkipStale: true, Active: true}, staleClaim, false},
		{"StaleWithoutSkip", Rule{Active: true}, staleClaim, true},
		{"FilterMatch", Rule{Filter: fp(f("payload.details.amount", "gt", 500)), Active: true}, claim, true},
		{"FilterNoMatch", Rule{Filter: fp(f("payload.details.amount", "gt", 5000)), Active: true}, claim, false},
		{"FilterNonJSON", Rule{Filter: fp(f("a", "exists", true)), Active: true}, untyped, false},
		{"FilterNotNonJSON", Rule{Filter: fp(not(f("a", "exists", true))), Active: true}, untyped, true},
		{"All", Rule{
			Sources: []string{"claims"}, Events: pats(t, "event.invoice.*", "event.*.created.*"),
			Filter: fp(f("payload.details.messageType", "eq", "CLAIM_CREATED")), SkipStale: true, Active: true,
		}, claim, true},
		{"NilEvent", Rule{Active: true}, nil, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			r := tt.rule
			if got := r.Match(tt.ev); got != tt.want {
				t.Errorf("Match (uncompiled): got %v, want %v", got, tt.want)
			}
			if r.Filter != nil {
				cp := *r.Filter
				r.Filter = &cp
			}
			if err := r.Compile(); err != nil {
				t.Fatalf("Compile: got error %v, want nil", err)
			}
			if got := r.Match(tt.ev); got != tt.want {
				t.Errorf("Match: got %v, want %v", got, tt.want)
			}
			// A table of this one rule agrees.
			tab, err := NewTable(map[string]Rule{"sub": tt.rule})
			if err != nil {
				t.Fatalf("NewTable: got error %v, want nil", err)
			}
			if got := len(tab.Match(tt.ev)) == 1; got != tt.want {
				t.Errorf("Table.Match: got %v, want %v", tab.Match(tt.ev), tt.want)
			}
		})
	}
}

func TestRuleCompileErrors(t *testing.T) {
	t.Parallel()
	for name, r := range map[string]Rule{
		"EmptySource": {Sources: []string{""}},
		"ZeroPattern": {Events: Patterns{{}}},
		"BadFilter":   {Filter: &Filter{Path: "a", Op: "between", Value: 1}},
	} {
		if err := r.Compile(); err == nil {
			t.Errorf("%s: Compile: got nil error, want one", name)
		}
	}
}

func TestTableMatch(t *testing.T) {
	t.Parallel()
	rules := map[string]Rule{
		"sub_all":      {Events: pats(t, "*"), Active: true},
		"sub_claims":   {Sources: []string{"claims"}, Events: pats(t, "event.claim.*"), SkipStale: true, Active: true},
		"sub_created":  {Events: pats(t, "event.*.created"), Active: true},
		"sub_exact":    {Sources: []string{"claims", "billing"}, Events: pats(t, "event.invoice.paid", "event.claim.created.v1"), Active: true},
		"sub_paused":   {Events: pats(t, "*"), Active: false},
		"sub_big":      {Events: pats(t, "event.claim.*"), Filter: fp(f("payload.details.amount", "gt", 500)), Active: true},
		"sub_small":    {Events: pats(t, "event.claim.*"), Filter: fp(f("payload.details.amount", "lte", 500)), Active: true},
		"sub_any_star": {Sources: []string{"*"}, Events: pats(t, "*.*.paid"), Active: true},
		"sub_dup":      {Events: pats(t, "event.claim.created.v1", "event.claim.*", "*.claim.created.*", "*"), Active: true},
		"sub_other":    {Sources: []string{"other"}, Events: pats(t, "*"), Active: true},
		"sub_noevents": {Sources: []string{"billing"}, Active: true},
	}
	tab, err := NewTable(rules)
	if err != nil {
		t.Fatalf("NewTable: got error %v, want nil", err)
	}
	if tab.Len() != len(rules) {
		t.Errorf("Len: got %d, want %d", tab.Len(), len(rules))
	}
	tests := []struct {
		name string
		ev   hookd.Event
		want []string
	}{
		{"ClaimCreatedV1", hookd.Event{Source: "claims", Type: "event.claim.created.v1", Body: []byte(claimBody)},
			[]string{"sub_all", "sub_big", "sub_claims", "sub_dup", "sub_exact"}},
		{"ClaimCreatedV1Stale", hookd.Event{Source: "claims", Type: "event.claim.created.v1", Body: []byte(claimBody), Stale: true},
			[]string{"sub_all", "sub_big", "sub_dup", "sub_exact"}},
		{"ClaimCreatedOtherSource", hookd.Event{Source: "web", Type: "event.claim.created", Body: []byte(`{"payload":{"details":{"amount":100}}}`)},
			[]string{"sub_all", "sub_created", "sub_dup", "sub_small"}},
		{"InvoicePaid", hookd.Event{Source: "billing", Type: "event.invoice.paid", Body: []byte(`{}`)},
			[]string{"sub_all", "sub_any_star", "sub_dup", "sub_exact", "sub_noevents"}},
		{"NonJSONClaim", hookd.Event{Source: "claims", Type: "event.claim.x", Body: []byte(`<xml/>`)},
			[]string{"sub_all", "sub_claims", "sub_dup"}},
		{"EmptyType", hookd.Event{Source: "other"},
			[]string{"sub_all", "sub_dup", "sub_other"}},
	}
	for _, tt := range tests {
		got := tab.Match(&tt.ev)
		if !slices.Equal(got, tt.want) {
			t.Errorf("%s: Match: got %v, want %v", tt.name, got, tt.want)
		}
		// The index agrees with the plain rules.
		var ref []string
		for id, r := range rules {
			if r.Match(&tt.ev) {
				ref = append(ref, id)
			}
		}
		slices.Sort(ref)
		if !slices.Equal(got, ref) {
			t.Errorf("%s: Match: got %v, Rule.Match says %v", tt.name, got, ref)
		}
	}
	if got := tab.Match(nil); got != nil {
		t.Errorf("Match(nil): got %v, want nil", got)
	}
}

func TestTableZero(t *testing.T) {
	t.Parallel()
	var tab Table
	if got := tab.Match(&hookd.Event{Type: "x"}); got != nil {
		t.Errorf("zero Table.Match: got %v, want nil", got)
	}
	if tab.Len() != 0 {
		t.Errorf("zero Table.Len: got %d, want 0", tab.Len())
	}
}

func TestTableSwapErrors(t *testing.T) {
	t.Parallel()
	good := map[string]Rule{"a": {Active: true}}
	tab, err := NewTable(good)
	if err != nil {
		t.Fatal(err)
	}
	err = tab.Swap(map[string]Rule{
		"ok":   {Active: true},
		"bad":  {Active: true, Filter: &Filter{Path: "x", Op: "gt", Value: "1"}},
		"":     {Active: true},
		"bad2": {Active: true, Sources: []string{""}},
	})
	if err == nil {
		t.Fatalf("Swap with invalid rules: got nil error, want one")
	}
	for _, want := range []string{"subscription bad: filter.value: op gt needs a number", "subscription bad2: sources", "empty id"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("Swap error: got %q, want it to contain %q", err, want)
		}
	}
	// The old set stays.
	if got := tab.Match(&hookd.Event{Type: "x"}); !slices.Equal(got, []string{"a"}) {
		t.Errorf("after a failed Swap: got %v, want [a]", got)
	}
	if _, err := NewTable(map[string]Rule{"bad": {Events: Patterns{{}}}}); err == nil {
		t.Errorf("NewTable with a zero pattern: got nil error, want one")
	}
}

// TestTableSwapLeavesRulesAlone checks that Swap compiles copies: the
// caller's filters stay uncompiled and may be edited afterwards.
func TestTableSwapLeavesRulesAlone(t *testing.T) {
	t.Parallel()
	fl := f("a", "eq", 1)
	rules := map[string]Rule{"s": {Active: true, Filter: &fl}}
	tab, err := NewTable(rules)
	if err != nil {
		t.Fatal(err)
	}
	if fl.Compiled() {
		t.Errorf("Swap compiled the caller's filter in place")
	}
	fl.Value = 2
	if got := tab.Match(&hookd.Event{Body: []byte(`{"a":1}`)}); !slices.Equal(got, []string{"s"}) {
		t.Errorf("after editing the caller's filter: got %v, want [s]", got)
	}
}

// TestTableConcurrentSwap runs Match from several goroutines while Swap
// replaces the set; run it with -race. Every Match must see one whole
// generation: the ids it returns all carry the same generation number.
func TestTableConcurrentSwap(t *testing.T) {
	t.Parallel()
	gen := func(g int) map[string]Rule {
		rules := map[string]Rule{}
		for i := range 20 {
			rules[fmt.Sprintf("g%03d_%02d", g, i)] = Rule{
				Sources: []string{"claims"},
				Events:  pats(t, "event.claim.*"),
				Filter:  fp(f("n", "gte", i%3)),
				Active:  true,
			}
		}
		return rules
	}
	tab, err := NewTable(gen(0))
	if err != nil {
		t.Fatal(err)
	}
	ev := &hookd.Event{Source: "claims", Type: "event.claim.created", Body: []byte(`{"n":5}`)}
	var stop atomic.Bool
	var wg sync.WaitGroup
	errs := make(chan string, 8)
	var matches atomic.Int64
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for !stop.Load() {
				got := tab.Match(ev)
				matches.Add(1)
				if len(got) != 20 {
					errs <- fmt.Sprintf("Match: got %d ids, want 20", len(got))
					return
				}
				prefix := got[0][:4]
				for _, id := range got {
					if !strings.HasPrefix(id, prefix) {
						errs <- fmt.Sprintf("Match mixed generations: %v", got)
						return
					}
				}
				if !slices.IsSorted(got) {
					errs <- fmt.Sprintf("Match: got unsorted %v", got)
					return
				}
			}
		}()
	}
	for g := 1; g <= 200; g++ {
		if err := tab.Swap(gen(g)); err != nil {
			t.Fatal(err)
		}
	}
	// Let the readers see the last generation at least once.
	for deadline := matches.Load() + 100; matches.Load() < deadline; {
		select {
		case e := <-errs:
			t.Fatal(e)
		default:
		}
	}
	stop.Store(true)
	wg.Wait()
	close(errs)
	for e := range errs {
		t.Error(e)
	}
	if got := tab.Match(ev); len(got) != 20 || !strings.HasPrefix(got[0], "g200") {
		t.Errorf("after the last Swap: got %v, want the g200 set", got)
	}
}

// benchRules builds n subscriptions shaped like a real deployment: most
// name exact types of one source, some use wildcards, a few cover every
// source, a third carry a payload filter.
func benchRules(b testing.TB, n int) map[string]Rule {
	rules := make(map[string]Rule, n)
	for i := range n {
		src := fmt.Sprintf("source%02d", i%37)
		r := Rule{Sources: []string{src}, Active: i%20 != 0, SkipStale: i%7 == 0}
		switch i % 10 {
		case 0, 1, 2, 3, 4:
			r.Events = pats(b, fmt.Sprintf("event.entity%d.created", i%11), fmt.Sprintf("event.entity%d.updated", i%11))
		case 5, 6:
			r.Events = pats(b, fmt.Sprintf("event.entity%d.*", i%11))
		case 7:
			r.Events = pats(b, "*.*.deleted")
		case 8:
			r.Events = pats(b, "*")
		case 9:
			r.Sources = nil
			r.Events = pats(b, fmt.Sprintf("event.entity%d.created", i%11))
		}
		if i%3 == 0 {
			r.Filter = fp(and(
				f("payload.details.amount", "gt", i%1000),
				f("payload.details.messageType", "in", []any{"CLAIM_CREATED", "CLAIM_UPDATED"}),
			))
		}
		rules[fmt.Sprintf("sub_%04d", i)] = r
	}
	return rules
}

func BenchmarkTableMatch(b *testing.B) {
	tab, err := NewTable(benchRules(b, 1000))
	if err != nil {
		b.Fatal(err)
	}
	ev := &hookd.Event{Source: "source07", Type: "event.entity7.created", Body: []byte(claimBody)}
	want := 0
	for _, r := range benchRules(b, 1000) {
		if r.Match(ev) {
			want++
		}
	}
	if got := len(tab.Match(ev)); got != want || got == 0 {
		b.Fatalf("Match: got %d ids, want %d (> 0)", got, want)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		tab.Match(ev)
	}
	b.ReportMetric(float64(want), "matches/op")
}

// BenchmarkTableMatchNone is the event no subscription wants: the cost of
// a miss with 1,000 rules.
func BenchmarkTableMatchNone(b *testing.B) {
	rules := benchRules(b, 1000)
	for id, r := range rules {
		if len(r.Events) == 1 && r.Events[0].String() == "*" {
			delete(rules, id)
		}
	}
	tab, err := NewTable(rules)
	if err != nil {
		b.Fatal(err)
	}
	ev := &hookd.Event{Source: "source07", Type: "event.unknown.thing", Body: []byte(claimBody)}
	if got := tab.Match(ev); len(got) != 0 {
		b.Fatalf("Match: got %v, want none", got)
	}
	b.ReportAllocs()
	for b.Loop() {
		tab.Match(ev)
	}
}

// BenchmarkLinearMatch is the baseline the index beats: Rule.Match over
// every rule.
func BenchmarkLinearMatch(b *testing.B) {
	rules := benchRules(b, 1000)
	ids := make([]string, 0, len(rules))
	list := make([]Rule, 0, len(rules))
	for id, r := range rules {
		if err := r.Compile(); err != nil {
			b.Fatal(err)
		}
		ids = append(ids, id)
		list = append(list, r)
	}
	ev := &hookd.Event{Source: "source07", Type: "event.entity7.created", Body: []byte(claimBody)}
	b.ReportAllocs()
	for b.Loop() {
		var out []string
		for i := range list {
			if list[i].Match(ev) {
				out = append(out, ids[i])
			}
		}
		_ = out
	}
}

func BenchmarkFilterMatch(b *testing.B) {
	fl := and(
		f("payload.details.amount", "gt", 500),
		f("payload.details.messageType", "in", []any{"CLAIM_CREATED", "CLAIM_UPDATED"}),
		not(f("payload.details.test", "eq", true)),
	)
	if err := fl.Compile(); err != nil {
		b.Fatal(err)
	}
	body := []byte(claimBody)
	b.ReportAllocs()
	for b.Loop() {
		if !fl.match(body, true) {
			b.Fatal("no match")
		}
	}
}

// seed004Body is the example webhook of seed 004.
const seed004Body = `{
"payload": {
"details": {
"messageType": "event.claim.created.v1",
"accountReference": "PDN-922-Oct14-0001",
"claimRef": "PDN-922-claim-Oct14-00010",
"amount": 501,
"currency": "EUR",
"dueDate": "2021-10-07"
},
"messageId": "09feeb6f-350a-430a-a040-cd1c558cbc91",
"timestamp": "2021-10-14T15:33:16.848Z"
},
"signature": "SIGNATURE",
"payloadAsString": "PAYLOAD_AS_STRING"
}`

// TestTableAcceptance is issue 4's acceptance case 4 at the routing
// level: seed 001's subscription gets every event, "event.claim.*" gets
// event.claim.created.v1 and not event.invoice.paid.
func TestTableAcceptance(t *testing.T) {
	t.Parallel()
	var large Filter
	if err := json.Unmarshal([]byte(`{"and":[{"path":"payload.details.amount","op":"gt","value":500},{"path":"payload.details.currency","op":"in","value":["EUR","USD"]}]}`), &large); err != nil {
		t.Fatal(err)
	}
	tab, err := NewTable(map[string]Rule{
		"seed001":      {Events: pats(t, "*"), Active: true},
		"claims":       {Sources: []string{"collections"}, Events: pats(t, "event.claim.*"), SkipStale: true, Active: true},
		"large_claims": {Events: pats(t, "event.claim.*"), Filter: &large, Active: true},
	})
	if err != nil {
		t.Fatal(err)
	}
	created := &hookd.Event{Source: "collections", Type: "event.claim.created.v1", Body: []byte(seed004Body)}
	paid := &hookd.Event{Source: "collections", Type: "event.invoice.paid", Body: []byte(strings.Replace(seed004Body, "event.claim.created.v1", "event.invoice.paid", 1))}
	if got, want := tab.Match(created), []string{"claims", "large_claims", "seed001"}; !slices.Equal(got, want) {
		t.Errorf("event.claim.created.v1: got %v, want %v", got, want)
	}
	if got, want := tab.Match(paid), []string{"seed001"}; !slices.Equal(got, want) {
		t.Errorf("event.invoice.paid: got %v, want %v", got, want)
	}
}

// A body nested beyond the table's depth matches no rule with a filter,
// even one a body that is not JSON would match; rules without a filter
// still match it.
func TestTableMatchDeepBody(t *testing.T) {
	t.Parallel()
	absent := not(f("a", "exists", true))
	tab, err := NewTable(map[string]Rule{
		"sub_all":    {Active: true},
		"sub_absent": {Filter: &absent, Active: true},
	})
	if err != nil {
		t.Fatal(err)
	}
	tab.MaxJSONDepth = 3
	tests := []struct {
		name string
		body string
		want []string
	}{
		{"AtTheLimit", `[[[1]]]`, []string{"sub_absent", "sub_all"}},
		{"NotJSON", `not json`, []string{"sub_absent", "sub_all"}},
		{"BeyondTheLimit", `[[[[1]]]]`, []string{"sub_all"}},
		{"Huge", strings.Repeat("[", 6<<20), []string{"sub_all"}},
		{"DeepInsideAString", `{"b":"[[[[[[[["}`, []string{"sub_absent", "sub_all"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := tab.Match(&hookd.Event{Type: "x", Body: []byte(tt.body)})
			if !slices.Equal(got, tt.want) {
				t.Errorf("Match: got %v, want %v", got, tt.want)
			}
		})
	}
}
