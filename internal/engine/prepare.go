package engine

import (
	"context"
	"errors"
	"fmt"
	"runtime/debug"
	"strings"
	"sync"
	"time"

	"hookd"
	"hookd/internal/config"
	"hookd/internal/destination"
	"hookd/internal/store"
	"hookd/internal/transform"
)

// ReasonTransformSkipped: a transformation returned null for the
// delivery; it is cancelled without being sent.
const ReasonTransformSkipped = "transform returned null (skipped)"

// A transformation that throws, times out or returns something that
// cannot be sent fails its delivery at once (not retried: the same code
// would fail the same way); the reason is the error itself,
// "transform: TypeError: … at line 3:7". A replay after the code is fixed
// runs the new code.

// prepared is what one attempt sends, or why it sends nothing.
type prepared struct {
	// msg is the message to deliver (nil when skip or err).
	msg *destination.Message
	// skip is the reason a delivery is cancelled without an attempt.
	skip string
	// err is why nothing is sent: a *transform.Error fails the delivery
	// at once; any other error is the attempt's, classified like a
	// destination's (retriable unless destination.Permanent).
	err error
}

// prepare turns an event and the delivery (its subscription and
// destination) into what is sent, at attempt time, so that a replay runs
// the definitions of that moment. Its steps, in order:
//  1. the enrichment of the delivery's subscription (enrich.go): an
//     error there is the attempt's, classified as any (a failed fetch is
//     retried), not a *transform.Error;
//  2. the source's transform;
//  3. the subscription's transform.
//
// Routing (which subscriptions match) used the original event; the stored
// event never changes. ctx is the attempt's.
func (e *Engine) prepare(ctx context.Context, ev *hookd.Event, d *store.Delivery, attempt int) (p prepared) {
	defer func() {
		if r := recover(); r != nil {
			e.log.Error("preparing a delivery panicked; the delivery fails", "delivery", d.ID, "panic", fmt.Sprint(r), "stack", string(debug.Stack()))
			p = prepared{err: &panicError{v: r}}
		}
	}()
	// Enrichment first, so the transforms see the fetched entity; its
	// error is the attempt's (a failed fetch is retried).
	ev, err := e.enrichEvent(ctx, d.SubscriptionID, d.Destination, ev)
	if err != nil {
		return prepared{err: err}
	}
	msg := &destination.Message{Event: ev, DeliveryID: d.ID, Attempt: attempt}
	if e.srcTransforms.Load() == 0 && e.subTransforms.Load() == 0 {
		return prepared{msg: msg}
	}
	srcJS, subJS := e.transformsOf(ev.Source, d.SubscriptionID)
	if srcJS == "" && subJS == "" {
		return prepared{msg: msg}
	}
	cur := transformInput(ev)
	set := map[string]string{}
	for _, src := range []string{srcJS, subJS} {
		if src == "" {
			continue
		}
		res, err := e.runTransform(src, cur)
		if err != nil {
			return prepared{err: err}
		}
		if res.Skip {
			return prepared{skip: ReasonTransformSkipped}
		}
		cur = res.Event
		for k, v := range res.Set {
			set[k] = v
		}
	}
	out := *ev
	out.Type, out.Body, out.ContentType = cur.Type, cur.Body, cur.ContentType
	msg.Event = &out
	if len(set) > 0 {
		msg.Headers = set
	}
	msg.Path, msg.Query = cur.Path, cur.Query
	return prepared{msg: msg}
}

// transformsOf returns the transform sources of an event's source and of
// a delivery's subscription ("" for none).
func (e *Engine) transformsOf(source, subID string) (srcJS, subJS string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if s := e.srcs[source]; s != nil {
		srcJS = s.def.Transform
	}
	if s := e.subs[subID]; s != nil {
		subJS = s.def.Transform
	}
	return srcJS, subJS
}

// transformInput is the event as a transformation sees it: headers by
// lower-case name, several values joined with ", ".
func transformInput(ev *hookd.Event) transform.JSEvent {
	h := make(map[string]string, len(ev.Headers))
	for k, vs := range ev.Headers {
		h[strings.ToLower(k)] = strings.Join(vs, ", ")
	}
	return transform.JSEvent{ID: ev.ID, Source: ev.Source, Type: ev.Type, Key: ev.Key, Headers: h, Body: ev.Body, ContentType: ev.ContentType}
}

// runTransform runs one transformation (compiled once per source text and
// time limit, then cached).
func (e *Engine) runTransform(src string, ev transform.JSEvent) (transform.Result, error) {
	p, err := e.programs.get(src, e.transformTimeout)
	if err != nil {
		return transform.Result{}, err
	}
	res, err := p.Run(ev)
	if err != nil {
		var te *transform.Error
		if !errors.As(err, &te) {
			err = &transform.Error{Msg: err.Error()}
		}
		return transform.Result{}, err
	}
	return res, nil
}

// programCache holds the compiled transformations by source text. It is
// emptied when it grows past maxPrograms (definitions replaced many
// times): the next attempts compile again.
type programCache struct {
	mu sync.Mutex
	m  map[string]*transform.Program
}

const maxPrograms = 1000

func (c *programCache) get(src string, timeout time.Duration) (*transform.Program, error) {
	c.mu.Lock()
	p := c.m[src]
	c.mu.Unlock()
	if p != nil {
		return p, nil
	}
	p, err := transform.Compile(src, timeout)
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	if c.m == nil || len(c.m) >= maxPrograms {
		c.m = map[string]*transform.Program{}
	}
	c.m[src] = p
	c.mu.Unlock()
	return p, nil
}

// countTransforms refreshes the counts of subscriptions and sources with a
// transform (the attempt path skips everything above when both are 0);
// e.mu is held or the engine is not started.
func (e *Engine) countTransforms() {
	n := 0
	for _, s := range e.subs {
		if s.def.Transform != "" {
			n++
		}
	}
	e.subTransforms.Store(int64(n))
	n = 0
	for _, s := range e.srcs {
		if s.def.Transform != "" {
			n++
		}
	}
	e.srcTransforms.Store(int64(n))
}

// TransformTestParams is what TransformTest runs.
type TransformTestParams struct {
	// Event is the stored event or sample to run on.
	Event *hookd.Event
	// Transform is JavaScript to run instead of the transforms of
	// Subscription and of the event's source.
	Transform string
	// FilterExpr is a CEL filter to check instead of Subscription's.
	FilterExpr string
	// Enrich is an enrichment to run instead of Subscription's.
	Enrich *config.Enrich
	// Subscription supplies every step not given above.
	Subscription string
}

// TransformTest is the outcome of TransformTest.
type TransformTest struct {
	// Matched is false when the filter expression did not match (nothing
	// else ran then); true when it matched or there is none. FilterErr is
	// why it did not match when its evaluation failed (a missing key, a
	// type mismatch): routing treats that as no match.
	Matched   bool
	FilterErr error
	// Skipped is true when a step returned null.
	Skipped bool
	// Event is the event as the last step returned it; Set the headers
	// the steps set (what an http destination would send besides its
	// own).
	Event transform.JSEvent
	Set   map[string]string
	// Logs are the console.log lines of every step, in order.
	Logs []string
	// Steps are the steps that ran, in order, with the time each took.
	Steps []TestStep
	// Duration is the time the steps took.
	Duration time.Duration
	// Err is a step's failure (a syntax error, a failed fetch), as a
	// delivery would record it; Retriable says whether a delivery would
	// retry it (a failed fetch of the enrichment) or fail at once.
	Err       error
	Retriable bool
}

// TestStep is one step of a TransformTest with the time it took.
type TestStep struct {
	// Name is filter_expr, enrich, transform (the request's),
	// source.transform or subscription.transform.
	Name     string
	Duration time.Duration
}

// TransformTest runs on p.Event what a delivery would (POST
// /api/v1/transformations/test), in its order: the filter expression
// (stopping there when it does not match), the enrichment (fetching the
// entity through the egress guard), then the transforms (p.Transform,
// else those of the event's source and of p.Subscription). Each step not
// given in p is p.Subscription's. Nothing is sent or stored; the
// subscription's enrichment reads and fills the cache deliveries share,
// one given in p a cache of its own. An unknown subscription is
// ENotFound; no step at all, an invalid filter expression or an enrich
// refused (by its checks, by the egress guard, for its auth) are
// EInvalid.
func (e *Engine) TransformTest(ctx context.Context, p TransformTestParams) (TransformTest, error) {
	var (
		filterExpr = p.FilterExpr
		enrichID   string
		enrich     = p.Enrich
		names      []string
		scripts    []string
	)
	if p.Transform != "" {
		names, scripts = []string{"transform"}, []string{p.Transform}
	}
	if p.Subscription != "" {
		e.mu.Lock()
		s := e.subs[p.Subscription]
		e.mu.Unlock()
		if s == nil {
			return TransformTest{}, hookd.Errorf(hookd.ENotFound, "no subscription %q", p.Subscription)
		}
		if filterExpr == "" {
			filterExpr = s.def.FilterExpr
		}
		if enrich == nil && s.def.Enrich != nil {
			enrichID, enrich = p.Subscription, s.def.Enrich
		}
		if p.Transform == "" {
			srcJS, subJS := e.transformsOf(p.Event.Source, p.Subscription)
			names, scripts = []string{"source.transform", "subscription.transform"}, []string{srcJS, subJS}
		}
	} else if p.Transform == "" && p.FilterExpr == "" && p.Enrich == nil {
		return TransformTest{}, hookd.Errorf(hookd.EInvalid, "give a transform, filter_expr or enrich, or a subscription whose steps to run")
	}
	var filter *transform.Filter
	if filterExpr != "" {
		f, err := transform.CachedFilter(filterExpr)
		if err != nil {
			return TransformTest{}, hookd.Errorf(hookd.EInvalid, "filter_expr: %v", err)
		}
		filter = f
	}
	var en *transform.Enricher
	if enrich != nil {
		var err error
		if enrichID != "" {
			// The subscription's: the enricher and cache deliveries use.
			en, err = e.enricher(enrichID, enrich)
		} else {
			err = enrich.Spec().Check()
			if err == nil {
				en, err = transform.NewEnricher(enrich.Spec(), transform.EnrichOptions{Guard: e.egress, NewAuth: e.enrichAuth, Now: e.clock.Now})
			}
		}
		if err != nil {
			return TransformTest{}, hookd.Errorf(hookd.EInvalid, "enrich: %v", err)
		}
	}

	out := TransformTest{Matched: true, Set: map[string]string{}}
	ev := p.Event
	start := time.Now()
	step := func(name string, t0 time.Time) {
		out.Steps = append(out.Steps, TestStep{Name: name, Duration: time.Since(t0)})
	}
	if filter != nil {
		t0 := time.Now()
		ok, err := filter.Match(transform.EventOf(ev))
		step("filter_expr", t0)
		if !ok {
			out.Matched, out.FilterErr = false, err
			out.Duration = time.Since(start)
			return out, nil
		}
	}
	if en != nil {
		t0 := time.Now()
		body, err := en.Enrich(ctx, transform.EventOf(ev))
		step("enrich", t0)
		if err != nil {
			out.Err, out.Retriable = err, !destination.IsPermanent(err)
			out.Duration = time.Since(start)
			return out, nil
		}
		cp := *ev
		cp.Body, cp.ContentType = body, "application/json"
		ev = &cp
	}
	out.Event = transformInput(ev)
	for i, js := range scripts {
		if js == "" {
			continue
		}
		t0 := time.Now()
		p, err := transform.Compile(js, e.transformTimeout)
		if err != nil {
			step(names[i], t0)
			out.Err = err
			break
		}
		res, err := p.Run(out.Event)
		step(names[i], t0)
		out.Logs = append(out.Logs, res.Logs...)
		if err != nil {
			out.Err = err
			break
		}
		if res.Skip {
			out.Skipped = true
			break
		}
		out.Event = res.Event
		for k, v := range res.Set {
			out.Set[k] = v
		}
	}
	out.Duration = time.Since(start)
	return out, nil
}
