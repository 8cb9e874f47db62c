// Package route decides which subscriptions get an event: event-type
// patterns ("*", "event.claim.*", exact names), payload filters over the
// raw JSON body, source lists and skip_stale, gathered in a Table that
// many goroutines read while the subscription set is replaced atomically.
//
// The package is pure: no I/O, no clock. docs/routing.md describes the
// rules for users.
package route

import (
	"errors"
	"fmt"
	"math"
	"slices"
	"sort"
	"strings"
	"sync/atomic"

	"github.com/tidwall/gjson"

	"hookd"
	"hookd/internal/jsonlimit"
)

// AnySource in Rule.Sources matches every source.
const AnySource = "*"

// Rule is what one subscription asks of an event.
type Rule struct {
	// Sources are the source names the subscription covers; empty, or a
	// list holding "*", covers every source.
	Sources []string
	// Events are the event-type patterns; an event matches when its type
	// matches any of them. Empty means every type, like ["*"].
	Events Patterns
	// Filter is an optional payload filter; nil matches every body.
	Filter *Filter
	// Expr is an optional expression filter (filter_expr); nil matches
	// every event. When both Filter and Expr are set, both must match.
	Expr Matcher
	// SkipStale skips events marked stale (an older event for a key that
	// already received a newer one).
	SkipStale bool
	// Active is false for a paused subscription, which matches nothing.
	Active bool
}

// Matcher is an expression filter, compiled elsewhere (package
// transform): Match reports whether the event passes it. It must be safe
// for concurrent use, bounded in time, and never panic.
type Matcher interface {
	Match(e *hookd.Event) bool
}

// Compile validates r and compiles its filter in place. Match works
// without it, but evaluates an uncompiled filter slowly.
func (r *Rule) Compile() error {
	for _, s := range r.Sources {
		if s == "" {
			return errors.New("sources: empty source name")
		}
	}
	for i, p := range r.Events {
		if p.IsZero() {
			return fmt.Errorf("events[%d]: empty pattern", i)
		}
	}
	if r.Filter != nil {
		if err := r.Filter.Compile(); err != nil {
			return err
		}
	}
	return nil
}

// Match reports whether the subscription gets the event: it is active,
// the event is not stale when SkipStale is set, and the source, the type
// and the body all match.
func (r Rule) Match(e *hookd.Event) bool {
	if e == nil || !r.Active || (r.SkipStale && e.Stale) {
		return false
	}
	if !r.anySource() && !slices.Contains(r.Sources, e.Source) {
		return false
	}
	if len(r.Events) > 0 && !r.Events.Match(e.Type) {
		return false
	}
	if !r.Filter.Match(e.Body) {
		return false
	}
	return r.Expr == nil || r.Expr.Match(e)
}

func (r *Rule) anySource() bool {
	return len(r.Sources) == 0 || slices.Contains(r.Sources, AnySource)
}

// Table is the set of subscription rules, keyed by subscription id. Match
// is safe for any number of concurrent callers, also while Swap replaces
// the set (copy-on-write: a Match sees the old set or the new one, never a
// mix). The zero Table is empty and ready to use.
//
// Exact event types and source names are indexed, so the cost of Match
// grows with the number of subscriptions that could match the event, not
// with the size of the table; wildcard patterns are indexed by their first
// segment when it is literal.
type Table struct {
	// MaxJSONDepth bounds the nesting of a body that filters read: a
	// deeper body matches no rule with a filter (rules without one still
	// match it). 0 means jsonlimit.DefaultDepth. Set it before the first
	// Match.
	MaxJSONDepth int

	cur atomic.Pointer[table]
}

// NewTable returns a Table holding rules (see Swap).
func NewTable(rules map[string]Rule) (*Table, error) {
	t := &Table{}
	if err := t.Swap(rules); err != nil {
		return nil, err
	}
	return t, nil
}

// Swap validates and compiles rules, then replaces the table's set with
// them in one atomic step. On an error (every invalid rule is reported,
// by subscription id) the table keeps its current set. Swap does not
// modify rules, and the caller may reuse the map afterwards. Concurrent
// Swaps are safe; the last one stored wins.
func (t *Table) Swap(rules map[string]Rule) error {
	next, err := build(rules)
	if err != nil {
		return err
	}
	t.cur.Store(next)
	return nil
}

// Len returns the number of rules in the table, inactive ones included.
func (t *Table) Len() int {
	if cur := t.cur.Load(); cur != nil {
		return len(cur.ids)
	}
	return 0
}

// Match returns the ids of the subscriptions that get e, in ascending
// order; nil when none does.
func (t *Table) Match(e *hookd.Event) []string {
	cur := t.cur.Load()
	if cur == nil || e == nil {
		return nil
	}
	var buf [64]int32
	cand := cur.any.collect(buf[:0], e.Type)
	if ix := cur.bySource[e.Source]; ix != nil {
		cand = ix.collect(cand, e.Type)
	}
	if len(cand) == 0 {
		return nil
	}
	slices.Sort(cand)
	cand = slices.Compact(cand)
	var out []string
	valid := 0 // 0 unknown, 1 JSON, -1 not JSON, -2 nested too deep
	for _, i := range cand {
		r := &cur.rules[i]
		if r.SkipStale && e.Stale {
			continue
		}
		if r.Filter != nil {
			if valid == 0 {
				// The depth is checked first: gjson's validator recurses
				// once per level of nesting.
				switch {
				case jsonlimit.Check(e.Body, t.MaxJSONDepth) != nil:
					valid = -2
				case gjson.ValidBytes(e.Body):
					valid = 1
				default:
					valid = -1
				}
			}
			if valid == -2 || !r.Filter.match(e.Body, valid == 1) {
				continue
			}
		}
		if r.Expr != nil && !r.Expr.Match(e) {
			continue
		}
		if out == nil {
			out = make([]string, 0, len(cand))
		}
		out = append(out, cur.ids[i])
	}
	return out
}

// table is one immutable generation of a Table.
type table struct {
	ids      []string // sorted
	rules    []Rule   // compiled; rules[i] belongs to ids[i]
	any      typeIndex
	bySource map[string]*typeIndex
}

// typeIndex finds the active rules whose patterns may match a type.
type typeIndex struct {
	all     []int32            // "*" or no patterns
	exact   map[string][]int32 // exact types
	byFirst map[string][]wild  // wildcard patterns by literal first segment
	wild    []wild             // wildcard patterns starting with "*"
}

type wild struct {
	rule int32
	pat  Pattern
}

func (ix *typeIndex) collect(dst []int32, typ string) []int32 {
	dst = append(dst, ix.all...)
	if len(ix.exact) > 0 {
		dst = append(dst, ix.exact[typ]...)
	}
	if len(ix.byFirst) > 0 {
		first, _, _ := strings.Cut(typ, ".")
		for _, w := range ix.byFirst[first] {
			if w.pat.Match(typ) {
				dst = append(dst, w.rule)
			}
		}
	}
	for _, w := range ix.wild {
		if w.pat.Match(typ) {
			dst = append(dst, w.rule)
		}
	}
	return dst
}

func (ix *typeIndex) add(i int32, r *Rule) {
	if len(r.Events) == 0 {
		ix.all = append(ix.all, i)
		return
	}
	for _, p := range r.Events {
		switch p.kind {
		case kindAll:
			ix.all = append(ix.all, i)
		case kindExact:
			if ix.exact == nil {
				ix.exact = map[string][]int32{}
			}
			ix.exact[p.raw] = append(ix.exact[p.raw], i)
		case kindWild:
			if first, ok := p.literalPrefix(); ok {
				if ix.byFirst == nil {
					ix.byFirst = map[string][]wild{}
				}
				ix.byFirst[first] = append(ix.byFirst[first], wild{i, p})
			} else {
				ix.wild = append(ix.wild, wild{i, p})
			}
		}
	}
}

func build(rules map[string]Rule) (*table, error) {
	ids := make([]string, 0, len(rules))
	for id := range rules {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	if len(ids) > math.MaxInt32 {
		return nil, fmt.Errorf("%d subscriptions: more than a table holds", len(ids))
	}
	t := &table{ids: ids, rules: make([]Rule, len(ids)), bySource: map[string]*typeIndex{}}
	var errs []error
	for i, id := range ids {
		r := rules[id]
		if id == "" {
			errs = append(errs, errors.New("subscription with an empty id"))
			continue
		}
		if r.Filter != nil {
			f := *r.Filter // compile a copy: Swap leaves the caller's rules alone
			r.Filter = &f
		}
		if err := r.Compile(); err != nil {
			errs = append(errs, fmt.Errorf("subscription %s: %w", id, err))
			continue
		}
		t.rules[i] = r
		if !r.Active {
			continue
		}
		if r.anySource() {
			t.any.add(int32(i), &r)
			continue
		}
		seen := map[string]bool{}
		for _, s := range r.Sources {
			if seen[s] {
				continue
			}
			seen[s] = true
			ix := t.bySource[s]
			if ix == nil {
				ix = &typeIndex{}
				t.bySource[s] = ix
			}
			ix.add(int32(i), &r)
		}
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return t, nil
}
