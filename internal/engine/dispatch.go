package engine

import (
	"container/heap"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"runtime/debug"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/otel/trace"
	"golang.org/x/time/rate"

	"hookd"
	"hookd/internal/destination"
	"hookd/internal/store"
	"hookd/internal/tracing"
	"hookd/internal/transform"
)

// Orderings of a destination.
const (
	OrderingNone = "none"
	OrderingFIFO = "fifo"
	OrderingKey  = "key"
)

// item is one delivery the engine holds in memory.
type item struct {
	// d is the delivery as it is (or will be) stored: identity, counters,
	// last outcome. A fresh item's row does not exist yet.
	d *store.Delivery
	// ev is the event, with its body; nil for an item loaded from the
	// store until its attempt loads it.
	ev *hookd.Event
	// fresh is true until the item has a row: its event's seq holds the
	// watermark back.
	fresh bool
	// lane is the ordering lane (ordered destinations).
	lane *lane
	// size is the body's size counted against the memory bound while the
	// item is held with its event.
	size int
}

// lane is a FIFO of items of which only the head may be in flight: the
// whole destination (fifo) or one event key (key).
type lane struct {
	key   string
	q     []*item
	busy  bool
	inRun bool // queued in runq or waiting
}

// dispatcher works the deliveries of one destination: it holds fresh work
// in memory, claims due work from the store, runs attempts with bounded
// concurrency, a rate limit and the destination's ordering, and hands
// outcomes to the writer.
//
// Its loop runs only while there is something to do: poke starts it when
// work arrives, and it exits after idleAfter with nothing in flight,
// nothing runnable and nothing due soon, leaving the time of its next due
// work (a retry) with the engine's one scheduler, which pokes it then. An
// idle destination costs no goroutine. All its state lives in the struct,
// so a loop that starts again picks up where the last one stopped.
type dispatcher struct {
	e           *Engine
	name        string
	dest        destination.Destination
	policy      Policy
	ordering    string
	headTimeout time.Duration // see limitHead; 0: none (and always with ordering none)
	concurrency int
	limiter     *rate.Limiter
	// baseLimit and baseBurst are the destination's rate; in a cluster,
	// the limiter runs at this replica's share of it (applyShare).
	baseLimit   rate.Limit
	baseBurst   int
	memCap      int
	memBytesCap int
	log         *slog.Logger

	ctx    context.Context // cancelled to cut attempts short
	cancel context.CancelFunc
	wake   chan struct{}  // pokes of the running loop
	stop   chan struct{}  // closed by shutdown
	wg     sync.WaitGroup // attempts in flight

	// schedAt and schedIdx are the dispatcher's entry in the engine's
	// scheduler (schedIdx -1: none); the scheduler's mutex guards them.
	schedAt  time.Time
	schedIdx int

	mu sync.Mutex
	// live: the engine started the dispatcher (pokes may start its loop);
	// running: its loop runs, and done is closed when that loop returns.
	live, running bool
	done          chan struct{}
	// none: ready is the FIFO of items to attempt.
	ready []*item
	// ordered: lanes by key, runq the lanes whose head can go, waiting the
	// lanes whose head is due later.
	lanes   map[string]*lane
	runq    []*lane
	waiting laneHeap
	held    map[string]bool // delivery ids in memory or in flight
	// settling are ordered deliveries that left memory with an outcome
	// the writer has not committed yet: a load skips their rows.
	settling map[string]bool
	// stale are held deliveries whose write the store skipped (a replay
	// made or reset their row meanwhile); deferred are stored rows of held
	// deliveries, taken in when the held one leaves.
	stale    map[string]bool
	deferred map[string]*store.Delivery
	// inMemBytes is the size of the bodies held (fresh work only: work
	// loaded from the store reads its body when it is attempted).
	inMemBytes int
	flying     int
	// shareConc is how many attempts this replica may have in flight: the
	// destination's concurrency, or in a cluster this replica's share of
	// it (applyShare; 0: none here, the other replicas deliver).
	shareConc int
	// backlog: the store may hold work of this destination that is not in
	// memory (spilled, replayed, recovered, retrying).
	backlog   bool
	storeDue  time.Time // none: when the store has work due, zero unknown/now
	loadedSeq int64     // ordered: highest event seq taken into memory
	spilling  int       // spill writes not committed yet
	// storeGen counts the changes of the store that may have added work
	// (spills committed, replays, retries written, an enable): a refill
	// that saw the store before one of them must not trust what it saw.
	storeGen int64
	// rescan: a replay queued rows older than what was loaded; an ordered
	// refill looks from the start again.
	rescan         bool
	disabled       bool
	disabledAt     time.Time
	disabledReason string
	failingSince   time.Time
	// failingKept is true while failingSince is (or is being) recorded in
	// the store; keepMu orders those writes.
	failingKept bool
	keepMu      sync.Mutex
	stopping    bool
	// cut are fresh items whose attempt shutdown cut short: spilled with
	// the rest when the destination is replaced or removed.
	cut []*item
}

const (
	defaultMemCap   = 10000
	defaultMemBytes = 64 << 20
	defaultLease    = 5 * time.Minute
	claimBatchSize  = 256
	eventIDLanePref = "\x00evt:"
	// defaultIdleAfter is how long a dispatcher's loop waits with nothing
	// to do before it exits.
	defaultIdleAfter = 5 * time.Second
)

func newDispatcher(e *Engine, name string, dest destination.Destination, policy Policy, ordering string, headTimeout time.Duration, concurrency int, lim *rate.Limiter) *dispatcher {
	if ordering == "" {
		ordering = OrderingNone
	}
	if ordering == OrderingNone || headTimeout < 0 {
		headTimeout = 0
	}
	if concurrency <= 0 {
		concurrency = 16
		if ordering == OrderingFIFO {
			concurrency = 1
		}
	}
	if ordering == OrderingFIFO {
		concurrency = 1
	}
	ctx, cancel := context.WithCancel(context.Background())
	var baseLimit rate.Limit
	baseBurst := 0
	if lim != nil {
		baseLimit, baseBurst = lim.Limit(), lim.Burst()
	}
	return &dispatcher{
		e: e, name: name, dest: dest, policy: policy, ordering: ordering, headTimeout: headTimeout, concurrency: concurrency,
		shareConc: concurrency, baseLimit: baseLimit, baseBurst: baseBurst,
		limiter: lim, memCap: e.memCap, memBytesCap: e.memBytes, log: e.log.With("destination", name),
		ctx: ctx, cancel: cancel,
		wake: make(chan struct{}, 1), stop: make(chan struct{}), schedIdx: -1,
		lanes: map[string]*lane{}, held: map[string]bool{}, settling: map[string]bool{}, stale: map[string]bool{}, deferred: map[string]*store.Delivery{},
		backlog: true,
	}
}

func (d *dispatcher) ordered() bool { return d.ordering != OrderingNone }

// poke tells the dispatcher that it may have something to do: the running
// loop looks again, or a loop starts. d.mu must not be held.
func (d *dispatcher) poke() {
	d.mu.Lock()
	d.pokeLocked()
	d.mu.Unlock()
}

// pokeLocked is poke with d.mu held. The loop decides to exit under d.mu
// after checking that no poke is pending, so a poke is never lost: it
// lands either before that check (the loop stays) or after the loop has
// given up running (a new loop starts).
func (d *dispatcher) pokeLocked() {
	switch {
	case d.running:
		select {
		case d.wake <- struct{}{}:
		default:
		}
	case d.live && !d.stopping:
		d.running = true
		d.done = make(chan struct{})
		go d.run(d.done)
	}
}

// start lets pokes start the loop, and starts it once: work a previous
// process left in the store is looked for.
func (d *dispatcher) start() {
	d.applyShare()
	d.mu.Lock()
	d.live = true
	d.pokeLocked()
	d.mu.Unlock()
}

// add takes a fresh delivery: into memory when there is room and nothing
// older waits in the store (for ordered destinations), else into the store
// as pending (spilled), so that memory stays bounded and nothing is lost.
func (d *dispatcher) add(it *item) {
	d.mu.Lock()
	size := 0
	if it.ev != nil {
		size = len(it.ev.Body)
	}
	spill := d.stopping || d.disabled || len(d.held) >= d.memCap || (d.inMemBytes > 0 && d.inMemBytes+size > d.memBytesCap) ||
		(d.ordered() && d.backlog)
	if !spill {
		it.size = size
		d.hold(it)
		d.pokeLocked()
		d.mu.Unlock()
		return
	}
	d.spilling++
	d.backlog = true
	d.mu.Unlock()
	row := *it.d
	row.Status = store.StatusPending
	row.NextAttemptAt = d.e.clock.Now()
	row.CreatedAt, row.UpdatedAt = row.NextAttemptAt, row.NextAttemptAt
	d.e.w.submit(writeReq{w: &store.DeliveryWrite{Delivery: &row, Fence: store.FenceInsertOnly}, seq: it.d.EventSeq, after: func() {
		d.mu.Lock()
		d.spilling--
		d.storeGen++
		d.storeDue = time.Time{}
		d.pokeLocked()
		d.mu.Unlock()
	}})
}

// hold puts it in memory; d.mu is held.
func (d *dispatcher) hold(it *item) {
	d.inMemBytes += it.size
	d.held[it.d.ID] = true
	if !d.ordered() {
		d.ready = append(d.ready, it)
		return
	}
	if it.d.EventSeq > d.loadedSeq {
		d.loadedSeq = it.d.EventSeq
	}
	if r := it.d; d.headTimeout > 0 && r.Status == store.StatusRetrying && !r.FirstAttemptAt.IsZero() {
		// A retry stored before head_timeout was set (a restart, a
		// replaced destination) may be due later than it allows: the
		// last attempt comes at the deadline (limitHead).
		if dl := r.FirstAttemptAt.Add(d.headTimeout); r.NextAttemptAt.After(dl) {
			r.NextAttemptAt = dl
		}
	}
	key := ""
	if d.ordering == OrderingKey {
		key = it.d.EventKey
		if key == "" {
			// No key: nothing to keep in order with.
			key = eventIDLanePref + it.d.ID
		}
	}
	l := d.lanes[key]
	if l == nil {
		l = &lane{key: key}
		d.lanes[key] = l
	}
	it.lane = l
	l.q = append(l.q, it)
	if len(l.q) == 1 && !l.busy {
		d.schedule(l)
	} else if l.q[0].d.Status == store.StatusRetrying || d.disabled {
		// It waits behind a retrying head (or for an enable): give it a
		// row now (see persistFresh).
		d.persistFresh([]*item{it})
	}
}

// schedule puts a lane whose head is idle into runq or waiting; d.mu is
// held.
func (d *dispatcher) schedule(l *lane) {
	if l.busy || len(l.q) == 0 || l.inRun {
		return
	}
	l.inRun = true
	due := l.q[0].d.NextAttemptAt
	if due.IsZero() || !due.After(d.e.clock.Now()) {
		d.runq = append(d.runq, l)
		return
	}
	heap.Push(&d.waiting, l)
}

// run is the dispatcher's loop; it returns when the dispatcher stops or
// has been idle for idleAfter (see park), and closes done then.
func (d *dispatcher) run(done chan struct{}) {
	defer close(done)
	// Idleness is measured on the wall clock: it is about goroutines, not
	// about when deliveries are due.
	idle := time.NewTimer(d.e.idleAfter)
	defer idle.Stop()
	for {
		d.refill()
		next := d.startRunnable()
		var timer Timer
		var tc <-chan time.Time
		if !next.IsZero() {
			timer = d.e.clock.NewTimer(next.Sub(d.e.clock.Now()))
			tc = timer.C()
		}
		idle.Reset(d.e.idleAfter)
		exit := false
		select {
		case <-d.stop:
			d.mu.Lock()
			d.running = false
			d.mu.Unlock()
			exit = true
		case <-d.wake:
		case <-tc:
		case <-idle.C:
			exit = d.park()
		}
		if timer != nil {
			timer.Stop()
		}
		if exit {
			return
		}
	}
}

// park ends the loop when there is nothing to do: no poke pending, no
// attempt in flight, no spill being written, nothing runnable, and the
// store's state known. The time of the next due work, if any, is left
// with the scheduler. It reports whether the loop must exit.
func (d *dispatcher) park() bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	if len(d.wake) > 0 || d.flying > 0 || d.spilling > 0 {
		return false
	}
	var next time.Time
	if !d.disabled && !d.stopping {
		if d.ordered() {
			owned := true
			if cl := d.e.cl; cl != nil {
				// Another replica runs it: nothing to load here until
				// this one owns it (the heartbeat nudges it then).
				_, owned = cl.ownedEpoch(d.name)
			}
			if owned && (len(d.runq) > 0 || (d.backlog && d.memCap-len(d.held) >= d.memCap/2)) {
				return false
			}
			if d.waiting.Len() > 0 {
				next = d.waiting[0].q[0].d.NextAttemptAt
			}
		} else {
			if len(d.ready) > 0 || d.storeDue.IsZero() {
				return false
			}
			if d.storeDue != farFuture {
				next = d.storeDue
			}
		}
		if !next.IsZero() && !next.After(d.e.clock.Now()) {
			return false // due already: the loop looks again
		}
	}
	d.running = false
	if !next.IsZero() {
		d.e.sched.at(d, next)
	}
	return true
}

// refill takes work from the store when memory has room for it.
func (d *dispatcher) refill() {
	d.mu.Lock()
	if d.disabled || d.stopping {
		d.mu.Unlock()
		return
	}
	now := d.e.clock.Now()
	if d.ordered() {
		room := d.memCap - len(d.held)
		if !d.backlog || room < d.memCap/2 {
			d.mu.Unlock()
			return
		}
		after, gen := d.loadedSeq, d.storeGen
		d.rescan = false
		d.mu.Unlock()
		var (
			rows []*store.Delivery
			err  error
		)
		if cl := d.e.cl; cl != nil {
			// In a cluster, only the replica that holds the destination's
			// lease runs it; what it loads is stamped with the lease's
			// epoch, which fences a former owner's late outcomes.
			epoch, owned := cl.ownedEpoch(d.name)
			if !owned {
				return
			}
			rows, err = cl.st.DeliveryLoadOwned(d.ctx, cl.id, epoch, d.name, after, room)
		} else {
			rows, err = d.e.st.DeliveryLoadOrdered(d.ctx, d.name, after, room)
		}
		if err != nil {
			d.storeError("load ordered deliveries", err)
			return
		}
		d.mu.Lock()
		for _, r := range rows {
			if d.settling[r.ID] {
				// Its outcome is being written: done here.
				continue
			}
			if d.held[r.ID] {
				if d.stale[r.ID] {
					d.deferred[r.ID] = r
				}
				if r.EventSeq > d.loadedSeq {
					d.loadedSeq = r.EventSeq
				}
				continue
			}
			d.hold(&item{d: r})
		}
		if len(rows) > 0 && rows[len(rows)-1].EventSeq > d.loadedSeq {
			d.loadedSeq = rows[len(rows)-1].EventSeq
		}
		switch {
		case d.storeGen != gen:
			// The store changed meanwhile: look again.
			if d.rescan {
				d.loadedSeq = 0
			}
		case len(rows) < room && d.spilling == 0:
			d.backlog = false
		}
		d.mu.Unlock()
		return
	}
	want := min(claimBatchSize, 4*d.shareConc) - len(d.ready) - d.flying
	if want <= 0 || (!d.storeDue.IsZero() && d.storeDue.After(now)) {
		d.mu.Unlock()
		return
	}
	gen := d.storeGen
	d.mu.Unlock()
	var (
		rows []*store.Delivery
		err  error
	)
	if cl := d.e.cl; cl != nil {
		if !cl.alive() {
			return // claims would outlive this replica's heartbeat
		}
		rows, err = cl.st.DeliveryClaim(d.ctx, cl.id, d.name, now, d.e.lease, want)
	} else {
		rows, err = d.e.st.DeliveryClaimDue(d.ctx, d.name, now, d.e.lease, want)
	}
	if err != nil {
		d.storeError("claim due deliveries", err)
		return
	}
	var due time.Time
	if len(rows) < want {
		at, ok, err := d.e.st.DeliveryNextDue(d.ctx, d.name)
		if err != nil {
			d.storeError("read next due delivery", err)
			return
		}
		due = at
		if !ok {
			due = farFuture
		}
	}
	d.mu.Lock()
	for _, r := range rows {
		if d.held[r.ID] {
			// Claimed while its fresh work is in flight: a replay made the
			// row. It is attempted once the held one leaves.
			d.deferred[r.ID] = r
			continue
		}
		d.hold(&item{d: r})
	}
	switch {
	case len(rows) == want:
		d.storeDue = time.Time{} // more may be due now
	case d.storeGen != gen || d.spilling > 0:
		d.storeDue = time.Time{}
	default:
		d.storeDue = due
	}
	d.mu.Unlock()
}

var farFuture = time.Date(9999, 1, 1, 0, 0, 0, 0, time.UTC)

func (d *dispatcher) storeError(what string, err error) {
	if errors.Is(err, context.Canceled) {
		return
	}
	d.log.Error(what, "err", err)
	d.mu.Lock()
	d.storeDue = d.e.clock.Now().Add(time.Second)
	d.mu.Unlock()
	d.e.sched.at(d, d.e.clock.Now().Add(time.Second))
}

// startRunnable starts attempts while slots are free and returns when the
// loop must look again (zero: only when woken).
func (d *dispatcher) startRunnable() time.Time {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.disabled || d.stopping {
		return time.Time{}
	}
	now := d.e.clock.Now()
	if cl := d.e.cl; cl != nil && !cl.alive() {
		// This replica's heartbeat is not in force: an attempt begun now
		// could overlap one of a replica that took the claim over. Look
		// again shortly; the heartbeat loop nudges every dispatcher once
		// it beats again.
		return now.Add(time.Second)
	}
	var next time.Time
	if d.ordered() {
		for d.waiting.Len() > 0 && !d.waiting[0].q[0].d.NextAttemptAt.After(now) {
			d.runq = append(d.runq, heap.Pop(&d.waiting).(*lane))
		}
		for d.flying < d.concurrency && len(d.runq) > 0 {
			if cl := d.e.cl; cl != nil {
				if _, owned := cl.ownedEpoch(d.name); !owned {
					break
				}
			}
			l := d.runq[0]
			d.runq[0] = nil
			d.runq = d.runq[1:]
			l.inRun = false
			if l.busy || len(l.q) == 0 {
				continue
			}
			l.busy = true
			d.launch(l.q[0])
		}
		if d.waiting.Len() > 0 {
			next = d.waiting[0].q[0].d.NextAttemptAt
		}
		return next
	}
	for d.flying < d.shareConc && len(d.ready) > 0 {
		it := d.ready[0]
		d.ready[0] = nil
		d.ready = d.ready[1:]
		d.launch(it)
	}
	if !d.storeDue.IsZero() && d.storeDue != farFuture && d.storeDue.After(now) {
		next = d.storeDue
	}
	return next
}

// launch starts one attempt; d.mu is held.
func (d *dispatcher) launch(it *item) {
	d.flying++
	d.wg.Add(1)
	var wait time.Duration
	if d.limiter != nil {
		now := d.e.clock.Now()
		wait = d.limiter.ReserveN(now, 1).DelayFrom(now)
	}
	go d.attempt(it, wait)
}

// attempt runs one attempt of it and hands its outcome over.
func (d *dispatcher) attempt(it *item, wait time.Duration) {
	defer d.wg.Done()
	if wait > 0 {
		t := d.e.clock.NewTimer(wait)
		select {
		case <-t.C():
		case <-d.ctx.Done():
			t.Stop()
			d.requeue(it)
			return
		}
	}
	if cl := d.e.cl; cl != nil && !cl.alive() {
		// The heartbeat lapsed while this attempt waited (rate limit):
		// the claim may be another replica's by now.
		d.drop(it)
		return
	}
	if !d.e.subscribed(d.name) {
		// Every subscription to this destination was deleted: what was
		// routed to it before is cancelled rather than sent.
		d.cancelItem(it, ReasonUnsubscribed)
		return
	}
	ev := it.ev
	if ev == nil {
		var err error
		ev, err = d.e.st.EventGet(d.ctx, it.d.EventID)
		switch {
		case d.ctx.Err() != nil:
			d.requeue(it)
			return
		case errors.Is(err, store.ErrNotFound):
			d.finish(it, Decision{Outcome: OutcomeFailed, Reason: ReasonEventGone, Err: errors.New("event no longer stored")}, d.e.clock.Now(), 0, destination.Result{}, nil)
			return
		case err != nil:
			d.finish(it, Decision{Outcome: OutcomeRetry, At: d.e.clock.Now().Add(5 * time.Second), Err: err}, d.e.clock.Now(), 0, destination.Result{}, err)
			return
		}
		it.ev = ev
	}
	ctx, span := d.ctx, trace.Span(nil)
	if t := d.e.tracer; t != nil {
		// The attempt's span is the child of the event's ingest span;
		// an http destination sends its traceparent on.
		ctx, span = t.StartFrom(d.ctx, ev.TraceParent, tracing.SpanAttempt, trace.SpanKindClient)
		if span.IsRecording() {
			span.SetAttributes(tracing.AttrDestination.String(d.name), tracing.AttrDeliveryID.String(it.d.ID),
				tracing.AttrEventID.String(ev.ID), tracing.AttrAttempt.Int(it.d.Attempts+1))
		}
	}
	start := d.e.clock.Now()
	prep := d.e.prepare(ctx, ev, it.d, it.d.Attempts+1)
	if prep.skip != "" {
		if span != nil {
			tracing.End(span, nil)
		}
		d.cancelItem(it, prep.skip)
		return
	}
	if te := (*transform.Error)(nil); errors.As(prep.err, &te) {
		// The transformation's fault: failed at once, not retried; a
		// replay after the code is fixed runs the new code.
		end := d.e.clock.Now()
		if span != nil {
			tracing.End(span, prep.err)
		}
		reason := truncate(prep.err.Error(), 1024)
		d.finish(it, Decision{Outcome: OutcomeFailed, Reason: reason, Err: prep.err}, start, end.Sub(start), destination.Result{}, prep.err)
		return
	}
	var res destination.Result
	var err error
	if prep.err != nil {
		// Another step's error (a panic, an enrichment's answer) is the
		// attempt's, classified as any.
		err = prep.err
	} else {
		res, err = d.deliver(ctx, prep.msg)
	}
	end := d.e.clock.Now()
	if d.ctx.Err() != nil && err != nil {
		// Cut by shutdown: no retry is spent, and the delivery is
		// attempted again after the restart.
		if span != nil {
			tracing.End(span, tracing.ErrCut)
		}
		d.requeue(it)
		return
	}
	first := it.d.FirstAttemptAt
	if first.IsZero() {
		first = start
	}
	dec := d.limitHead(Decide(d.policy, it.d.RoundAttempts+1, first, end, err), first, end, err)
	if _, panicked := err.(*panicError); panicked {
		dec = Decision{Outcome: OutcomeFailed, Reason: ReasonInternalError, Err: err}
	}
	if span != nil {
		if span.IsRecording() {
			span.SetAttributes(tracing.AttrOutcome.String(dec.Outcome.String()))
			if res.StatusCode != 0 {
				span.SetAttributes(tracing.AttrStatusCode.Int(res.StatusCode))
			}
		}
		tracing.End(span, err)
	}
	d.finish(it, dec, start, end.Sub(start), res, err)
}

// limitHead applies head_timeout to the decision after a failed attempt
// of the head of an ordered lane: a head that has failed since first for
// head_timeout or longer goes to failed, so that its lane moves on; a
// retry that would come later than first+head_timeout is pulled back to
// that instant, for one last attempt; a Retry-After asking for later than
// that fails the head now (as retry.max_age does), since waiting for it
// would hold the lane past head_timeout. Only retries change:
// a success or a final failure stays what it is.
func (d *dispatcher) limitHead(dec Decision, first, now time.Time, err error) Decision {
	if d.headTimeout <= 0 || dec.Outcome != OutcomeRetry {
		return dec
	}
	deadline := first.Add(d.headTimeout)
	timeout := Decision{Outcome: OutcomeFailed, Reason: ReasonHeadTimeout, Err: dec.Err}
	if !now.Before(deadline) {
		return timeout
	}
	if dec.At.After(deadline) {
		if ra, ok := destination.RetryAfterOf(err); ok {
			if c := d.policy.cap; c > 0 {
				ra = min(ra, c) // as Decide bounds it
			}
			if now.Add(ra).After(deadline) {
				return timeout
			}
		}
		dec.At = deadline
	}
	return dec
}

// panicError is the error of an attempt that panicked.
type panicError struct{ v any }

func (e *panicError) Error() string { return fmt.Sprintf("internal error: panic: %v", e.v) }

// deliver is the destination's Deliver, with a panic turned into the
// attempt's error, a *panicError ("internal error: panic: …"), and logged
// with its stack: one event never takes the process down.
func (d *dispatcher) deliver(ctx context.Context, m *destination.Message) (res destination.Result, err error) {
	defer func() {
		if r := recover(); r != nil {
			d.e.log.Error("delivery attempt panicked; the delivery fails", "destination", d.name, "delivery", m.DeliveryID, "panic", fmt.Sprint(r), "stack", string(debug.Stack()))
			res, err = destination.Result{}, &panicError{v: r}
		}
	}()
	return d.dest.Deliver(ctx, m)
}

// dequeue forgets an item whose delivery is settled (it has its row):
// its lane moves on; d.mu is held.
func (d *dispatcher) dequeue(it *item) {
	d.inMemBytes -= it.size
	delete(d.held, it.d.ID)
	delete(d.stale, it.d.ID)
	if l := it.lane; l != nil {
		l.q[0] = nil
		l.q = l.q[1:]
		l.busy = false
		if len(l.q) == 0 {
			delete(d.lanes, l.key)
		} else {
			d.schedule(l)
		}
	}
	if r := d.deferred[it.d.ID]; r != nil {
		delete(d.deferred, it.d.ID)
		d.hold(&item{d: r})
	}
}

// cancelItem settles it as cancelled without an attempt.
func (d *dispatcher) cancelItem(it *item, reason string) {
	now := d.e.clock.Now()
	row := *it.d
	row.AttemptLog = nil
	row.Status = store.StatusCancelled
	row.Reason = reason
	row.NextAttemptAt, row.LeaseUntil = time.Time{}, time.Time{}
	row.UpdatedAt = now
	if row.CreatedAt.IsZero() {
		row.CreatedAt = now
	}
	var seq int64
	fence := it.d.Attempts
	if it.fresh {
		seq, fence = row.EventSeq, store.FenceInsertOnly
		it.fresh = false
	}
	d.e.w.submit(writeReq{w: &store.DeliveryWrite{Delivery: &row, Fence: fence}, seq: seq, skipped: func() { d.onSkipped(row.ID) }})
	d.mu.Lock()
	d.flying--
	d.dequeue(it)
	d.pokeLocked()
	d.mu.Unlock()
}

// onSkipped is told that the store skipped a write of a held delivery:
// its stored row moved on (a replay). The row is looked for again and
// taken in once the held delivery leaves.
func (d *dispatcher) onSkipped(id string) {
	d.mu.Lock()
	if d.held[id] {
		d.stale[id] = true
	}
	d.backlog = true
	d.storeGen++
	d.storeDue = time.Time{}
	if d.ordered() {
		d.loadedSeq = 0
		d.rescan = true
	}
	d.pokeLocked()
	d.mu.Unlock()
}

// drop forgets an item whose attempt did not start because this
// replica's claim on it may have lapsed: the store has it, and whoever
// holds the claim attempts it.
func (d *dispatcher) drop(it *item) {
	if l := it.lane; l != nil {
		// An ordered head stays at the head of its lane (its row is not
		// claimed: the destination's lease is): it is attempted once this
		// replica's heartbeat is in force again, or dropped with the lane
		// if another replica owns the destination by then.
		d.mu.Lock()
		defer d.mu.Unlock()
		d.flying--
		l.busy = false
		d.schedule(l)
		return
	}
	if it.d.LeaseEpoch > 0 && it.d.Status == store.StatusDelivering {
		d.e.release(map[string]int64{it.d.ID: it.d.LeaseEpoch})
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	d.flying--
	d.inMemBytes -= it.size
	delete(d.held, it.d.ID)
	d.backlog = true
	d.storeDue = time.Time{}
}

// requeue gives an attempt that did not happen back (shutdown).
func (d *dispatcher) requeue(it *item) {
	d.mu.Lock()
	d.flying--
	if it.lane != nil {
		it.lane.busy = false
	} else if it.fresh {
		d.cut = append(d.cut, it)
	}
	d.mu.Unlock()
}

// persistFresh gives the fresh items among its a row (pending, due now),
// so that work that may wait long in memory (behind a retrying head, in a
// disabled destination) does not hold the fan-out watermark back: a
// restart then need not route every later event again. The items stay
// in memory; d.mu is held.
func (d *dispatcher) persistFresh(items []*item) {
	now := d.e.clock.Now()
	for _, it := range items {
		if !it.fresh {
			continue
		}
		it.fresh = false
		row := *it.d
		row.Status = store.StatusPending
		row.NextAttemptAt = now
		row.CreatedAt, row.UpdatedAt = now, now
		id := row.ID
		d.e.w.submitAsync(writeReq{w: &store.DeliveryWrite{Delivery: &row, Fence: store.FenceInsertOnly}, seq: row.EventSeq,
			skipped: func() { d.onSkipped(id) }})
	}
}

// finish records the outcome of an attempt and moves the queue on.
func (d *dispatcher) finish(it *item, dec Decision, start time.Time, dur time.Duration, res destination.Result, err error) {
	now := d.e.clock.Now()
	prev := it.d
	row := *prev
	row.AttemptLog = nil
	row.Attempts = prev.Attempts + 1
	row.RoundAttempts = prev.RoundAttempts + 1
	if row.FirstAttemptAt.IsZero() {
		row.FirstAttemptAt = start
	}
	row.LastAttemptAt = start
	row.LastDuration = dur
	row.LastStatusCode = res.StatusCode
	row.LastExcerpt = res.ResponseExcerpt
	row.LastError = ""
	if err != nil {
		row.LastError = truncate(err.Error(), 1024)
	}
	row.LeaseUntil = time.Time{}
	row.NextAttemptAt = time.Time{}
	row.Reason = ""
	if row.CreatedAt.IsZero() {
		row.CreatedAt = start
	}
	row.UpdatedAt = now
	switch dec.Outcome {
	case OutcomeSucceeded:
		row.Status = store.StatusSucceeded
	case OutcomeRetry:
		row.Status = store.StatusRetrying
		row.NextAttemptAt = dec.At
	default:
		row.Status = store.StatusFailed
		row.Reason = dec.Reason
	}
	w := &store.DeliveryWrite{Delivery: &row, Fence: prev.Attempts, Outcome: true}
	if err != nil {
		w.Attempt = &store.Attempt{Number: row.Attempts, StartedAt: start, Duration: dur, StatusCode: res.StatusCode, Error: row.LastError, ResponseExcerpt: res.ResponseExcerpt}
	}
	var seq int64
	if it.fresh {
		// It had no row: if a replay made one meanwhile, the replay wins
		// (the event is sent again) rather than this outcome.
		seq, w.Fence = row.EventSeq, store.FenceInsertOnly
		it.fresh = false
	}
	var after func()
	if !d.ordered() && dec.Outcome == OutcomeRetry {
		// none: the retry waits in the store, not in memory; once its row
		// is there, the next claim must not sleep past it.
		at := dec.At
		after = func() {
			d.mu.Lock()
			d.storeGen++
			if !d.storeDue.IsZero() && at.Before(d.storeDue) {
				d.storeDue = at
			}
			d.pokeLocked()
			d.mu.Unlock()
		}
	}
	if d.e.onAttempt != nil {
		d.e.onAttempt(d.name, string(row.Status), dur)
	}
	id := row.ID
	epoch := row.LeaseEpoch
	// An ordered item leaves memory now (unless it is a head kept for its
	// retry) while its row changes only when the writer commits: until
	// then a load must not take the row in again (it would be sent twice,
	// and after what follows it).
	settle := d.ordered() && dec.Outcome != OutcomeRetry
	if settle {
		d.mu.Lock()
		d.settling[id] = true
		d.mu.Unlock()
		then := after
		after = func() {
			d.mu.Lock()
			delete(d.settling, id)
			d.mu.Unlock()
			if then != nil {
				then()
			}
		}
	}
	var failedSkipped bool // the writer runs skipped before after, on one goroutine
	if row.Status == store.StatusFailed && d.e.onAlert != nil && (it.ev == nil || it.ev.Source != hookd.AlertSource) {
		// A delivery of hookd's own events raises no delivery.failed:
		// an alert about an alert could go on forever (docs/ALERTS.md).
		a := hookd.Alert{Type: hookd.AlertDeliveryFailed, Key: hookd.AlertDeliveryFailed + ":" + row.ID + ":" + strconv.Itoa(row.Attempts), Time: now,
			Destination: d.name, DeliveryID: row.ID, EventID: row.EventID, Reason: row.Reason, Attempts: row.Attempts,
			StatusCode: row.LastStatusCode, Error: row.LastError}
		if it.ev != nil {
			a.EventSource, a.EventType = it.ev.Source, it.ev.Type
		}
		then := after
		after = func() {
			if !failedSkipped {
				d.e.alert(a) // once the store has the failed delivery
			}
			if then != nil {
				then()
			}
		}
	}
	d.e.w.submit(writeReq{w: w, seq: seq, after: after, skipped: func() {
		failedSkipped = true
		if settle {
			d.mu.Lock()
			delete(d.settling, id) // before the rescan onSkipped asks for
			d.mu.Unlock()
		}
		if d.e.cl != nil && epoch > 0 {
			d.e.fenced.Add(1)
			d.log.Warn("late outcome refused (fenced): the delivery moved on meanwhile (another replica took it over after this replica's claim lapsed, or an operator retried or replayed it)",
				"delivery", id, "status", string(row.Status), "lease_epoch", epoch)
		}
		d.onSkipped(id)
	}})

	d.mu.Lock()
	d.flying--
	keep := false
	switch dec.Outcome {
	case OutcomeSucceeded:
		d.failingSince = time.Time{}
	case OutcomeRetry:
		keep = d.ordered() // the head keeps its lane until it is done
	}
	if dec.Outcome != OutcomeSucceeded && err != nil && d.failingSince.IsZero() {
		d.failingSince = start
	}
	record := d.keepFailing(now)
	disable := ""
	switch {
	case dec.Outcome == OutcomeDisable:
		disable = "destination gone: " + dec.Err.Error()
	case dec.Outcome != OutcomeSucceeded && d.e.disableAfter > 0 && !d.failingSince.IsZero() && now.Sub(d.failingSince) >= d.e.disableAfter:
		disable = fmt.Sprintf("failing continuously since %s", d.failingSince.UTC().Format(time.RFC3339))
	}
	if keep {
		it.d = &row
		// A head waiting to be retried need not keep its body: the next
		// attempt reads it again.
		it.ev = nil
		d.inMemBytes -= it.size
		it.size = 0
		it.lane.busy = false
		// The lane waits for its head: what waits behind it gets rows.
		d.persistFresh(it.lane.q[1:])
		d.schedule(it.lane)
	} else {
		d.dequeue(it)
	}
	d.mu.Unlock()
	if record {
		go d.syncFailing()
	}
	if disable != "" {
		cause := hookd.Alert{DeliveryID: row.ID, EventID: row.EventID, StatusCode: row.LastStatusCode, Error: row.LastError}
		if it.ev != nil {
			cause.EventSource, cause.EventType = it.ev.Source, it.ev.Type
		}
		d.e.disable(d, disable, cause)
	}
	d.poke()
}

// failingKeepAfter is how long a run of failures lasts before it is
// recorded in the store: a destination that fails now and then costs no
// write, one that is down keeps its delivery.disable_after clock across a
// restart.
const failingKeepAfter = time.Minute

// keepFailing reports whether the record of failingSince must change: a
// run of failures has lasted failingKeepAfter, or a recorded one ended.
// d.mu is held.
func (d *dispatcher) keepFailing(now time.Time) bool {
	switch {
	case !d.failingSince.IsZero() && !d.failingKept && now.Sub(d.failingSince) >= failingKeepAfter:
		d.failingKept = true
		return true
	case d.failingSince.IsZero() && d.failingKept:
		d.failingKept = false
		return true
	}
	return false
}

// restoreFailing takes the run of failures a previous process recorded
// (before the dispatcher runs).
func (d *dispatcher) restoreFailing(r *store.DestinationRecord) {
	if !r.FailingSince.IsZero() {
		d.failingSince, d.failingKept = r.FailingSince, true
	}
}

// syncFailing writes the current record of failingSince: the latest state
// wins, whatever the order the goroutines ran in.
func (d *dispatcher) syncFailing() {
	d.keepMu.Lock()
	defer d.keepMu.Unlock()
	d.mu.Lock()
	var since time.Time
	if d.failingKept {
		since = d.failingSince
	}
	d.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := d.e.st.DestinationSetFailingSince(ctx, d.name, since); err != nil {
		d.e.log.Warn("record when the destination began failing", "destination", d.name, "err", err)
	}
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n]
}

// setDisabled stops or resumes attempts; disabled, fresh work is spilled
// to the store and waits there.
func (d *dispatcher) setDisabled(disabled bool, reason string) {
	d.mu.Lock()
	d.disabled = disabled
	d.disabledReason = reason
	d.disabledAt = time.Time{}
	if disabled {
		d.disabledAt = d.e.clock.Now()
		d.persistFresh(d.ready)
		for _, l := range d.lanes {
			d.persistFresh(l.q)
		}
	}
	if !disabled {
		d.backlog = true
		d.storeGen++
		d.storeDue = time.Time{}
		d.failingSince = time.Time{}
	}
	keep := d.keepFailing(d.e.clock.Now())
	d.mu.Unlock()
	if keep {
		go d.syncFailing()
	}
	d.poke()
}

// replayed tells the dispatcher that rows were queued in the store.
func (d *dispatcher) replayed() {
	d.mu.Lock()
	d.backlog = true
	d.storeGen++
	d.storeDue = time.Time{}
	if d.ordered() {
		d.loadedSeq = 0 // replayed rows may be older than what was loaded
		d.rescan = true
	}
	d.pokeLocked()
	d.mu.Unlock()
}

// shutdown stops the dispatcher: no new attempts; attempts in flight get
// until ctx ends, then are cut (and not counted). Fresh work still in
// memory is spilled to the store when spill is set (a destination being
// replaced or removed); on process shutdown it is re-derived after the
// restart instead.
func (d *dispatcher) shutdown(ctx context.Context, spill bool) {
	d.mu.Lock()
	d.stopping = true
	running, done := d.running, d.done
	d.mu.Unlock()
	close(d.stop)
	if running {
		<-done
	}
	d.e.sched.remove(d)
	waited := make(chan struct{})
	go func() { d.wg.Wait(); close(waited) }()
	select {
	case <-waited:
	case <-ctx.Done():
		d.cancel()
		<-waited
	}
	d.cancel()
	if d.e.cl != nil && spill {
		// The claims it holds and will not attempt go back at once (the
		// destination is replaced or removed; a process that stops hands
		// back all of its claims as it leaves the cluster).
		d.mu.Lock()
		released := map[string]int64{}
		for _, it := range d.ready {
			if it.d.LeaseEpoch > 0 && it.d.Status == store.StatusDelivering {
				released[it.d.ID] = it.d.LeaseEpoch
			}
		}
		d.mu.Unlock()
		d.e.release(released)
	}
	if spill {
		d.mu.Lock()
		var fresh []*item
		for _, it := range d.ready {
			if it.fresh {
				fresh = append(fresh, it)
			}
		}
		for _, l := range d.lanes {
			for _, it := range l.q {
				if it.fresh {
					fresh = append(fresh, it)
				}
			}
		}
		fresh = append(fresh, d.cut...)
		d.mu.Unlock()
		now := d.e.clock.Now()
		// The dispatcher that replaces this one may have read the store
		// before these rows land: once the last is written, it looks again
		// (from the start: they may come before what it loaded).
		var left atomic.Int64
		left.Store(int64(len(fresh)))
		written := func() {
			if left.Add(-1) == 0 {
				d.e.WakeReplayed(d.name)
			}
		}
		for _, it := range fresh {
			row := *it.d
			row.Status = store.StatusPending
			row.NextAttemptAt = now
			row.CreatedAt, row.UpdatedAt = now, now
			d.e.w.submit(writeReq{w: &store.DeliveryWrite{Delivery: &row, Fence: store.FenceInsertOnly}, seq: row.EventSeq, after: written})
		}
	}
	if err := d.dest.Close(); err != nil {
		d.log.Warn("close destination", "err", err)
	}
}

// laneHeap orders waiting lanes by their head's due time.
type laneHeap []*lane

func (h laneHeap) Len() int { return len(h) }
func (h laneHeap) Less(i, j int) bool {
	return h[i].q[0].d.NextAttemptAt.Before(h[j].q[0].d.NextAttemptAt)
}
func (h laneHeap) Swap(i, j int) { h[i], h[j] = h[j], h[i] }
func (h *laneHeap) Push(x any) {
	*h = append(*h, x.(*lane))
}
func (h *laneHeap) Pop() any {
	old := *h
	l := old[len(old)-1]
	old[len(old)-1] = nil
	*h = old[:len(old)-1]
	return l
}
