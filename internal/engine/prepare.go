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
//  1. the subscription's enrichment (enrich.go): an error there is the
//     attempt's, classified as any (a failed fetch is retried), not a
//     *transform.Error;
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
	ev, err := e.enrichEvent(ctx, d.Destination, ev)
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

// TransformTest is the outcome of TransformTest.
type TransformTest struct {
	// Skipped is true when a step returned null.
	Skipped bool
	// Event is the event as the last step returned it; Set the headers
	// the steps set (what an http destination would send besides its
	// own).
	Event transform.JSEvent
	Set   map[string]string
	// Logs are the console.log lines of every step, in order.
	Logs []string
	// Duration is the time the steps took.
	Duration time.Duration
	// Err is a step's failure (a syntax error included), as a delivery
	// would record it.
	Err error
}

// TransformTest runs on ev what an attempt would (POST
// /api/v1/transformations/test): the code src when given, else the
// transforms of ev's source and of subscription subID, in prepare's
// order. Nothing is sent or stored. An unknown subscription is
// ENotFound; neither src nor subID is EInvalid.
func (e *Engine) TransformTest(ev *hookd.Event, src, subID string) (TransformTest, error) {
	var steps []string
	switch {
	case src != "":
		steps = []string{src}
	case subID != "":
		e.mu.Lock()
		s := e.subs[subID]
		e.mu.Unlock()
		if s == nil {
			return TransformTest{}, hookd.Errorf(hookd.ENotFound, "no subscription %q", subID)
		}
		srcJS, subJS := e.transformsOf(ev.Source, subID)
		steps = []string{srcJS, subJS}
	default:
		return TransformTest{}, hookd.Errorf(hookd.EInvalid, "give a transform, or a subscription whose transforms to run")
	}
	out := TransformTest{Event: transformInput(ev), Set: map[string]string{}}
	start := time.Now()
	// Unlike prepare, no enrichment runs here (it would fetch from the
	// entity's server): the steps see the event without the entity.
	for _, js := range steps {
		if js == "" {
			continue
		}
		p, err := transform.Compile(js, e.transformTimeout)
		if err != nil {
			out.Err = err
			break
		}
		res, err := p.Run(out.Event)
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
