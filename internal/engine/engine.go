package engine

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"runtime/debug"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/otel/trace"
	"golang.org/x/time/rate"

	"hookd"
	"hookd/internal/config"
	"hookd/internal/destination"
	"hookd/internal/egress"
	"hookd/internal/route"
	"hookd/internal/secret"
	"hookd/internal/store"
	"hookd/internal/tracing"
	"hookd/internal/transform"
)

// ReasonEventGone: the event of a delivery was deleted (retention) before
// it could be delivered.
const ReasonEventGone = "event no longer stored"

// ReasonInternalError: an attempt panicked (a bug in hookd or in a
// destination's code). The delivery fails at once rather than being
// retried: the same event would most likely panic again, and a failed
// delivery is visible and can be retried by hand once the cause is fixed.
const ReasonInternalError = "internal error"

// ReasonUnsubscribed: every subscription to the destination was deleted
// before the delivery was attempted; it is cancelled.
const ReasonUnsubscribed = "no subscription to the destination any more"

// Store is what the engine needs from the storage seam.
type Store interface {
	store.DeliveryStore
	EventGet(ctx context.Context, id string) (*hookd.Event, error)
	EventList(ctx context.Context, p *store.EventListParams) ([]*hookd.Event, string, error)
}

// Options configure an Engine.
type Options struct {
	Store Store
	Log   *slog.Logger
	// Clock is the engine's time; nil is the wall clock.
	Clock Clock
	// Egress is the SSRF guard destinations dial through.
	Egress *egress.Guard
	// DisableAfter disables a destination whose attempts have all failed
	// for this long; 0 never does.
	DisableAfter time.Duration
	// MemCap bounds the deliveries each destination holds in memory;
	// beyond it fresh work waits in the store. Default 10000.
	MemCap int
	// MemBytes bounds the bodies each destination holds in memory; beyond
	// it fresh work waits in the store. Default 64 MiB.
	MemBytes int
	// Lease is how long a claimed delivery stays with its claimer.
	// Default 5m.
	Lease time.Duration
	// MaxJSONDepth bounds the nesting of a body that payload filters
	// read; a deeper body matches no filter (server.max_json_depth).
	// Default jsonlimit.DefaultDepth.
	MaxJSONDepth int

	// wrapMatch, set by tests only, wraps the routing table's Match.
	wrapMatch func(func(*hookd.Event) []string) func(*hookd.Event) []string
	// Sources are the configured source names; a subscription created
	// through the API must name one of them (or "*"). Nil accepts any.
	Sources []string
	// NewKeyring, when Keyring is nil, makes one the first time a
	// definition must be sealed (hookd generates its key file then, not
	// before it has a secret to keep).
	NewKeyring func() (*secret.Keyring, error)
	// Keyring encrypts the definitions of destinations created through
	// the API (their signing secrets and credentials) before they are
	// stored. Nil stores them as they are (tests only).
	Keyring *secret.Keyring
	// InboxBytes bounds the event bodies waiting between the ingest
	// commit and routing (when delivery falls behind); beyond it, events
	// wait without their body, which is read back from the store when it
	// is needed. Default 64 MiB.
	InboxBytes int
	// OnAttempt, when set, is called after every attempt with its
	// destination, its outcome (the delivery's status after it:
	// succeeded, retrying or failed) and how long it took (hookd's
	// metrics). It must not block.
	OnAttempt func(destination, outcome string, d time.Duration)
	// Retention deletes events received longer ago than this once their
	// deliveries are finished (see Prune); 0 keeps every event.
	Retention time.Duration
	// RetentionInterval is the time between two retention passes.
	// Default 1h.
	RetentionInterval time.Duration
	// MaxSources, MaxDestinations and MaxSubscriptions cap the
	// definitions (configured and API-created together): a create through
	// the API beyond one answers a conflict naming the limit. 0 is no cap.
	MaxSources, MaxDestinations, MaxSubscriptions int
	// IdleAfter is how long a destination's dispatcher waits with
	// nothing to do before its goroutine exits (it starts again when
	// work arrives). Default 5s.
	IdleAfter time.Duration
	// Cluster, when set, makes this engine one replica of several on a
	// shared store (PostgreSQL): deliveries are routed into the store with
	// their event (Route), claimed under leases of Lease that a heartbeat
	// renews and that fence late outcomes, ordered destinations run on
	// the replica holding their lease, concurrency and rate are shared
	// among the live replicas, and maintenance runs on the elected leader
	// (docs/DEPLOYMENT.md).
	Cluster store.Cluster
	// Announce, in a cluster, tells the other replicas about work stored
	// for a destination: kind AnnounceWork, new work for one this replica
	// does not run (an ordered one another replica owns, or one whose
	// concurrency share here is 0), reaches their Wake; kind
	// AnnounceReplayed, rows queued that may come before what an ordered
	// destination's owner loaded (a retry, a replay), reaches their
	// WakeReplayed. It must not block.
	Announce func(kind, destination string)
	// Alert, when set, receives the operational events this engine
	// raises (docs/ALERTS.md): a destination disabled or enabled, a
	// delivery failed. It must not block.
	Alert func(hookd.Alert)
	// EnrichAuth builds the auth of subscriptions' enrich sections (the
	// http destination's auth code, wired by the caller). Nil: an enrich
	// section with auth is refused.
	EnrichAuth transform.AuthFunc
	// OnChange, when set, is called after every definition this engine
	// wrote to the store (a destination, subscription or source put or
	// deleted, a destination enabled or disabled): other processes on the
	// same store reload then (see Reload).
	OnChange func()
	// Tracer makes a span of each event's routing and of each delivery
	// attempt, children of the event's stored ingest span. Nil: tracing
	// off.
	Tracer *tracing.Tracer
	// TransformTimeout is the time limit of one call of a JavaScript
	// transformation; 0 is transform.DefaultTimeout.
	TransformTimeout time.Duration
}

// Engine is the delivery engine: it routes each committed event to the
// destinations of the subscriptions it matches and works the deliveries
// (docs/DELIVERY.md).
type Engine struct {
	st           Store
	log          *slog.Logger
	clock        Clock
	egress       *egress.Guard
	disableAfter time.Duration
	onAttempt    func(destination, outcome string, d time.Duration)
	tracer       *tracing.Tracer

	// srcs are the sources (configured and API-created) once SetSources
	// has run; srcReg serves them and parseSource reads a definition.
	srcs        map[string]*sourceEntry
	srcOpMu     sync.Mutex // serializes SourcePut, SourceDelete and SubscriptionPut
	srcReg      SourceRegistry
	parseSource func([]byte) (config.Source, error)

	retention      time.Duration
	retentionEvery time.Duration
	pruneStop      chan struct{}
	pruneDone      chan struct{}
	memCap         int
	memBytes       int
	onAlert        func(hookd.Alert)
	lease          time.Duration
	keys           *secret.Keyring
	newKeys        func() (*secret.Keyring, error)
	keysMu         sync.Mutex
	sources        map[string]bool
	maxSources     int
	maxDests       int
	maxSubs        int
	// destsReserved counts destinations being created (checked against
	// maxDests with dests; e.mu guards it).
	destsReserved int
	idleAfter     time.Duration
	defs          defSync // serializes definition writes and Reload (reload.go)

	// cl is this replica's part in a cluster; nil with a single process.
	cl       *cluster
	announce func(kind, destination string)
	// replayCtx ends when the engine stops: bulk replays stop with it;
	// replays counts those running.
	replayCtx    context.Context
	replayCancel context.CancelFunc
	replays      sync.WaitGroup
	// fenced counts the late outcomes the store refused because another
	// replica had taken their delivery over.
	fenced atomic.Int64
	// skipStale counts the subscriptions with skip_stale (rebuilt with
	// the routing table): Route routes twice only when there are some.
	skipStale atomic.Int64
	// enrichCount counts the subscriptions with enrich (rebuilt with the
	// table): while it is 0, attempts skip looking for an enricher.
	enrichCount atomic.Int64
	// exprCount counts the subscriptions with filter_expr: while it is 0,
	// events wait for routing without their headers.
	exprCount  atomic.Int64
	enrichAuth transform.AuthFunc
	enr        enrichState
	// subTransforms and srcTransforms count the subscriptions and sources
	// with a transform (prepare.go); programs caches their compiled code.
	subTransforms, srcTransforms atomic.Int64
	programs                     programCache
	transformTimeout             time.Duration

	marks *marks
	// unrec holds the deliveries routed here that have no row yet (a
	// single process; see unrecorded.go).
	unrec *unrecorded
	sched *scheduler
	w     *writer
	wstop chan struct{}
	table *route.Table
	// match is table.Match; tests replace it.
	match func(*hookd.Event) []string
	// subscribedTo counts the subscriptions of each destination (rebuilt
	// with the routing table), read on every attempt.
	subscribedTo atomic.Pointer[map[string]int]

	mu    sync.Mutex // guards dests, subs, replays
	dests map[string]*destEntry
	subs  map[string]*subEntry
	jobs  map[string]*ReplayJob

	inMu  sync.Mutex
	inbox []inboxEvent
	// inBytes is the bodies the inbox holds; beyond inCap, events wait
	// there without their body (it is read back from the store).
	inBytes, inCap int
	inWake         chan struct{}
	inStop         chan struct{}
	inDone         chan struct{}
	started        bool
	stopped        bool
}

// New returns an engine; Open starts it.
func New(o Options) *Engine {
	e := &Engine{
		st: o.Store, log: o.Log, clock: o.Clock, egress: o.Egress, disableAfter: o.DisableAfter,
		onAttempt: o.OnAttempt, retention: o.Retention, retentionEvery: o.RetentionInterval, inCap: o.InboxBytes,
		memCap: o.MemCap, memBytes: o.MemBytes, maxSources: o.MaxSources, maxDests: o.MaxDestinations, maxSubs: o.MaxSubscriptions, idleAfter: o.IdleAfter, lease: o.Lease, keys: o.Keyring, newKeys: o.NewKeyring,
		dests: map[string]*destEntry{}, subs: map[string]*subEntry{}, jobs: map[string]*ReplayJob{},
		inWake: make(chan struct{}, 1), inStop: make(chan struct{}), inDone: make(chan struct{}),
		wstop: make(chan struct{}), unrec: newUnrecorded(),
		tracer: o.Tracer, transformTimeout: o.TransformTimeout,
	}
	e.defs.onChange = o.OnChange
	e.onAlert = o.Alert
	e.enrichAuth = o.EnrichAuth
	if e.log == nil {
		e.log = slog.New(slog.DiscardHandler)
	}
	if o.Sources != nil {
		e.sources = map[string]bool{}
		for _, s := range o.Sources {
			e.sources[s] = true
		}
		e.sources[hookd.AlertSource] = true
	}
	if e.clock == nil {
		e.clock = RealClock{}
	}
	if e.memCap <= 0 {
		e.memCap = defaultMemCap
	}
	if e.retentionEvery <= 0 {
		e.retentionEvery = time.Hour
	}
	if e.inCap <= 0 {
		e.inCap = defaultInboxBytes
	}
	if e.memBytes <= 0 {
		e.memBytes = defaultMemBytes
	}
	if e.lease <= 0 {
		e.lease = defaultLease
	}
	if e.idleAfter <= 0 {
		e.idleAfter = defaultIdleAfter
	}
	e.announce = o.Announce
	e.replayCtx, e.replayCancel = context.WithCancel(context.Background())
	if o.Cluster != nil {
		e.cl = &cluster{st: o.Cluster, id: newReplicaID(), ttl: e.lease, owned: map[string]ownedLease{},
			stop: make(chan struct{}), done: make(chan struct{})}
	}
	e.table, _ = route.NewTable(nil)
	e.sched = newScheduler(e.clock)
	e.table.MaxJSONDepth = o.MaxJSONDepth
	e.match = e.table.Match
	if o.wrapMatch != nil {
		e.match = o.wrapMatch(e.match)
	}
	return e
}

// Open loads the destinations and subscriptions (the configured ones and
// those stored through the API), recovers the work a previous process left
// unfinished, and starts delivering. Call it before any event is committed.
func (e *Engine) Open(ctx context.Context, dests []config.Destination, subs []config.Subscription) error {
	if err := e.load(ctx, dests, subs); err != nil {
		e.closeDests()
		return err
	}
	var wm int64
	if e.cl != nil {
		// A replica recovers nothing of its own: deliveries are stored
		// with their events, and the claims of a replica that died are
		// taken over when their lease ends.
		if err := e.startCluster(ctx); err != nil {
			e.closeDests()
			return fmt.Errorf("join the cluster: %w", err)
		}
	} else {
		var err error
		if wm, err = e.recover(ctx); err != nil {
			e.closeDests()
			return fmt.Errorf("recover deliveries: %w", err)
		}
	}
	e.marks = newMarks(wm)
	e.w = newWriter(e.st, e.log, e.marks, wm)
	e.w.recorded = e.unrec.recorded
	go e.w.run(e.wstop)
	e.sched.start()
	e.mu.Lock()
	for _, de := range e.dests {
		de.d.start()
	}
	e.started = true
	e.mu.Unlock()
	go e.route()
	if e.cl != nil {
		go e.clusterLoop()
	}
	if e.retention > 0 {
		e.pruneStop, e.pruneDone = make(chan struct{}), make(chan struct{})
		go e.pruneLoop(e.pruneStop, e.pruneDone)
	}
	return nil
}

// recover makes every delivery the last process left unfinished visible
// in the store: leases it held are released, and events after the fan-out
// watermark are routed again, their deliveries that have no row inserted
// as pending. It returns the new watermark.
func (e *Engine) recover(ctx context.Context) (int64, error) {
	now := e.clock.Now()
	if n, err := e.st.DeliveryReleaseAll(ctx, now); err != nil {
		return 0, err
	} else if n > 0 {
		e.log.Info("deliveries in flight at the last stop are due again", "count", n)
	}
	return e.recoverRouting(ctx, math.MaxInt64)
}

// recoverRouting routes again the events after the fan-out watermark,
// inserting the deliveries that have no row as pending, and moves the
// watermark past them, up to the event upTo. In a cluster the leader runs
// it up to the last event stored by a version without replica support:
// only those can lack their rows (later ones were routed when they were
// stored, to the subscriptions of that time).
func (e *Engine) recoverRouting(ctx context.Context, upTo int64) (int64, error) {
	now := e.clock.Now()
	wm, err := e.st.WatermarkGet(ctx)
	if err != nil {
		return 0, err
	}
	start := wm
	queued := 0
	cursor := ""
	if wm > 0 {
		cursor = store.EncodeCursor(wm)
	}
	for {
		withBody, limit := e.routingPage()
		evs, next, err := e.st.EventList(ctx, &store.EventListParams{After: cursor, Order: store.OrderAsc, Limit: limit, WithBody: withBody})
		if err != nil {
			return 0, err
		}
		var ds []*store.Delivery
		done := false
		for _, ev := range evs {
			if ev.Seq > upTo {
				done = true
				break
			}
			ds = append(ds, e.fanOutTraced(ev)...)
			wm = ev.Seq
		}
		if len(ds) > 0 {
			ids := make([]string, len(ds))
			for i, d := range ds {
				ids[i] = d.ID
			}
			have, err := e.st.DeliveryExisting(ctx, ids)
			if err != nil {
				return 0, err
			}
			missing := ds[:0]
			for _, d := range ds {
				if !have[d.ID] {
					missing = append(missing, d)
				}
			}
			if len(missing) > 0 {
				// Inserted only where no row is stored: a row another
				// process made meanwhile (a replica's leader before this
				// one, a retry) is not reset.
				ws := make([]*store.DeliveryWrite, len(missing))
				for i, d := range missing {
					d.NextAttemptAt, d.CreatedAt, d.UpdatedAt = now, now, now
					ws[i] = &store.DeliveryWrite{Delivery: d, Fence: store.FenceInsertOnly}
				}
				skipped, err := e.st.DeliveryWriteMany(ctx, ws, 0)
				if err != nil {
					return 0, err
				}
				queued += len(missing) - len(skipped)
			}
		}
		if next == "" || done {
			break
		}
		cursor = next
	}
	if wm > start {
		if _, err := e.st.DeliveryWriteMany(ctx, nil, wm); err != nil {
			return 0, err
		}
	}
	if queued > 0 {
		e.log.Info("deliveries recovered from events received before the last stop", "count", queued, "events_after", start)
	}
	return wm, nil
}

// fanOut returns the deliveries ev gets: one per destination of the
// subscriptions it matches (a destination matched twice gets it once).
// Every routing (on commit, at start, in a replay) goes through it: a
// panic while routing one event is logged with its stack and that event
// gets no delivery, so no event, even a stored one routed again at start,
// can take the process down.
func (e *Engine) fanOut(ev *hookd.Event) (out []*store.Delivery) {
	defer func() {
		if r := recover(); r != nil {
			e.log.Error("routing an event panicked; it gets no delivery", "event", ev.ID, "panic", fmt.Sprint(r), "stack", string(debug.Stack()))
			out = nil
		}
	}()
	ids := e.match(ev)
	if len(ids) == 0 {
		return nil
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	out = make([]*store.Delivery, 0, len(ids))
	for _, id := range ids {
		s := e.subs[id]
		if s == nil || e.dests[s.def.Destination] == nil {
			continue
		}
		if ev.Source == hookd.AlertSource && s.def.Source != hookd.AlertSource {
			// hookd's own events go only where a subscription names
			// their source: "*" means every source of the user's.
			continue
		}
		dup := false
		for _, d := range out {
			if d.Destination == s.def.Destination {
				dup = true
				break
			}
		}
		if dup {
			continue
		}
		out = append(out, &store.Delivery{
			ID: store.DeliveryID(ev.ID, s.def.Destination), EventID: ev.ID, EventSeq: ev.Seq, EventKey: ev.Key,
			Destination: s.def.Destination, SubscriptionID: id, Status: store.StatusPending,
		})
	}
	return out
}

// fanOutTraced is fanOut in a route span, the child of the event's
// ingest span, when tracing is on.
func (e *Engine) fanOutTraced(ev *hookd.Event) []*store.Delivery {
	if e.tracer == nil {
		return e.fanOut(ev)
	}
	_, span := e.tracer.StartFrom(context.Background(), ev.TraceParent, tracing.SpanRoute, trace.SpanKindInternal)
	ds := e.fanOut(ev)
	if span.IsRecording() {
		span.SetAttributes(tracing.AttrEventID.String(ev.ID), tracing.AttrSource.String(ev.Source), tracing.AttrDeliveries.Int(len(ds)))
	}
	span.End()
	return ds
}

// defaultInboxBytes bounds the bodies waiting for routing.
const defaultInboxBytes = 64 << 20

// inboxEvent is a committed event waiting for routing; bodyless when its
// body was left out to bound memory.
type inboxEvent struct {
	ev       *hookd.Event
	bodyless bool
}

// OnCommit is the ingest batcher's hook: it takes the events of a durable
// batch (duplicates are skipped) for routing. It never blocks, and it
// holds at most InboxBytes of bodies: beyond, an event waits without its
// body, which the store still has.
func (e *Engine) OnCommit(ins []*store.EventInsert, res []store.EventInsertResult) {
	if e.cl != nil {
		e.onClusterCommit(ins, res)
		return
	}
	e.inMu.Lock()
	for i, in := range ins {
		if res[i].Duplicate {
			continue
		}
		e.unrec.handedOver(1)
		ev := *in.Event
		ev.Seq, ev.Stale = res[i].Seq, res[i].Stale
		ev.Headers = e.routingHeaders(in) // filter_expr and transforms read them
		ie := inboxEvent{ev: &ev}
		if e.inBytes+len(ev.Body) > e.inCap && len(ev.Body) > 0 {
			ev.Body, ie.bodyless = nil, true
		}
		e.inBytes += len(ev.Body)
		e.inbox = append(e.inbox, ie)
	}
	e.inMu.Unlock()
	select {
	case e.inWake <- struct{}{}:
	default:
	}
}

// Route is the ingest batcher's Prepare hook in a cluster: it routes the
// event before it is stored, so that its deliveries are stored in the
// same transaction (a replica that dies after the commit leaves them to
// the others). With a single process it does nothing: deliveries are
// derived after the commit, and again after a crash.
func (e *Engine) Route(in *store.EventInsert) {
	if e.cl == nil {
		return
	}
	ev := *in.Event
	ev.Stale = false
	ev.Headers = e.routingHeaders(in)
	in.Deliveries = e.fanOutTraced(&ev)
	if e.skipStale.Load() > 0 {
		ev.Stale = true
		in.StaleDeliveries = e.fanOut(&ev)
	}
}

// onClusterCommit wakes the dispatchers of the destinations a committed
// batch stored deliveries for: they claim them from the store.
func (e *Engine) onClusterCommit(ins []*store.EventInsert, res []store.EventInsertResult) {
	names := map[string]bool{}
	for i, in := range ins {
		if res[i].Duplicate {
			continue
		}
		ds := in.Deliveries
		if res[i].Stale && in.StaleDeliveries != nil {
			ds = in.StaleDeliveries
		}
		for _, d := range ds {
			names[d.Destination] = true
		}
	}
	if len(names) == 0 {
		return
	}
	e.mu.Lock()
	var wake []*dispatcher
	for n := range names {
		if de := e.dests[n]; de != nil {
			wake = append(wake, de.d)
		}
	}
	e.mu.Unlock()
	for _, d := range wake {
		if !d.runsHere() && e.announce != nil {
			e.announce(AnnounceWork, d.name)
		}
		d.nudge()
	}
}

// Kinds of Options.Announce.
const (
	AnnounceWork     = "work"
	AnnounceReplayed = "replayed"
)

// WakeReplayed is told by another replica that rows were queued for the
// named destination that may come before what its dispatcher loaded: it
// looks at the store from the start.
func (e *Engine) WakeReplayed(destination string) {
	if d := e.dispatcher(destination); d != nil {
		d.replayed()
	}
}

// Wake is told by another replica that work was stored for the named
// destination: its dispatcher looks at the store.
func (e *Engine) Wake(destination string) {
	if d := e.dispatcher(destination); d != nil {
		d.nudge()
	}
}

// dispatcher returns the named destination's dispatcher, nil when there
// is none.
func (e *Engine) dispatcher(name string) *dispatcher {
	e.mu.Lock()
	defer e.mu.Unlock()
	if de := e.dests[name]; de != nil {
		return de.d
	}
	return nil
}

// route hands committed events to their destinations' dispatchers.
func (e *Engine) route() {
	defer close(e.inDone)
	defer e.unrec.stop()
	var batch []inboxEvent
	for {
		select {
		case <-e.inWake:
		case <-e.inStop:
			return
		}
		e.inMu.Lock()
		batch, e.inbox = e.inbox, batch[:0]
		for _, ie := range batch {
			e.inBytes -= len(ie.ev.Body)
		}
		e.inMu.Unlock()
		for i, ie := range batch {
			ev := ie.ev
			if ie.bodyless {
				if withBody, _ := e.routingPage(); withBody {
					// A filter may look at the body: route the stored event.
					if full, err := e.st.EventGet(context.Background(), ev.ID); err == nil {
						full.Stale = ev.Stale
						if e.exprCount.Load() == 0 {
							full.Headers = nil // only filter_expr reads them
						}
						ev = full
					} else {
						e.log.Error("read an event back for routing; it is routed without its body", "event", ev.ID, "err", err)
					}
				}
			}
			ds := e.fanOutTraced(ev)
			e.marks.add(ev.Seq, len(ds))
			var held *hookd.Event // what the dispatchers keep: nil, read at the attempt
			if !ie.bodyless {
				held = ev
			}
			des := make([]*destEntry, len(ds))
			kept := ds[:0:0]
			for j, d := range ds {
				e.mu.Lock()
				des[j] = e.dests[d.Destination]
				e.mu.Unlock()
				if des[j] == nil {
					// Removed meanwhile: nothing will hold the mark.
					e.marks.done(ev.Seq)
					continue
				}
				kept = append(kept, d)
			}
			// Listed pending until their row is written.
			e.unrec.add(ev, kept, e.clock.Now())
			for j, d := range ds {
				if des[j] != nil {
					des[j].d.add(&item{d: d, ev: held, fresh: true})
				}
			}
			batch[i] = inboxEvent{}
			e.unrec.routedOne()
		}
	}
}

// Stop stops delivering: no new attempts; attempts in flight finish until
// ctx ends and are then cut (a cut attempt is made again after the
// restart, without counting); outcomes are written. Events committed but
// not delivered are picked up again by the next Open.
//
// Stop returns at most stopWriteGrace+stopGiveUpWait after ctx ends, even
// when the store fails: the outcomes it could not write are then left out,
// and it returns an error that counts them. Nothing is lost by that: their
// delivery rows and the fan-out watermark stay as they were, so the next
// Open makes those deliveries again (at least once, same webhook-id).
func (e *Engine) Stop(ctx context.Context) error {
	e.mu.Lock()
	if e.stopped || !e.started {
		e.stopped = true
		e.mu.Unlock()
		e.closeDests()
		return nil
	}
	e.stopped = true
	dests := make([]*destEntry, 0, len(e.dests))
	for _, de := range e.dests {
		dests = append(dests, de)
	}
	e.mu.Unlock()
	finished := make(chan struct{})
	go func() {
		defer close(finished)
		e.stop(ctx, dests)
	}()
	select {
	case <-finished:
		return e.w.lostError()
	case <-ctx.Done():
	}
	// Attempts in flight are being cut; the outcomes already known get a
	// moment more to be written. A store that does not take them by then
	// (failing, unreachable, too slow) is given up on: the stop must end.
	t := time.NewTimer(stopWriteGrace)
	defer t.Stop()
	select {
	case <-finished:
		return e.w.lostError()
	case <-t.C:
	}
	e.w.giveUp()
	for _, de := range dests {
		de.d.cancel()
	}
	t.Reset(stopGiveUpWait)
	select {
	case <-finished:
		return e.w.lostError()
	case <-t.C:
	}
	if err := e.w.lostError(); err != nil {
		return err
	}
	return errors.New("delivery outcomes may not be recorded: gave up waiting for the store; their deliveries are made again after the restart")
}

const (
	// stopWriteGrace is how long a stop whose context has ended still
	// lets outcomes be written, and stopGiveUpWait how long it then waits
	// for its parts to notice that it gave up.
	stopWriteGrace = time.Second
	stopGiveUpWait = time.Second
)

// stop stops the parts of a started engine in order: retention, routing,
// dispatchers (their attempts cut when ctx ends), the scheduler, and last
// the writer, once it wrote what it holds.
func (e *Engine) stop(ctx context.Context, dests []*destEntry) {
	// Replays first: in a cluster the leader resumes them (their record
	// says where they got), so they must not run on past this replica's
	// leave.
	e.replayCancel()
	e.replays.Wait()
	if e.pruneStop != nil {
		close(e.pruneStop)
		<-e.pruneDone
	}
	close(e.inStop)
	<-e.inDone
	var wg sync.WaitGroup
	for _, de := range dests {
		wg.Add(1)
		go func() {
			defer wg.Done()
			de.d.shutdown(ctx, false)
		}()
	}
	wg.Wait()
	e.sched.stop()
	close(e.wstop)
	<-e.w.done
	if e.cl != nil {
		e.stopCluster()
	}
}

// closeDests closes the destinations opened by an Open that failed (a
// started engine closes them in Stop, through its dispatchers).
func (e *Engine) closeDests() {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.started {
		return
	}
	for _, de := range e.dests {
		de.d.dest.Close()
	}
}

// disable disables a destination (HTTP 410, or failing for too long):
// attempts stop, work waits in the store until it is enabled again. cause
// names the delivery whose outcome disabled it; the destination.disabled
// alert is raised when the store records the change (in a cluster, on the
// one replica whose disable was first).
func (e *Engine) disable(d *dispatcher, reason string, cause hookd.Alert) {
	d.mu.Lock()
	already := d.disabled
	d.mu.Unlock()
	if already {
		return
	}
	defer e.localDisable()() // no Reload meanwhile undoes it; OnChange once it is stored
	d.setDisabled(true, reason)
	e.log.Warn("destination disabled", "destination", d.name, "reason", reason)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	at := e.clock.Now()
	changed, err := e.st.DestinationSwitch(ctx, d.name, at, reason)
	if err != nil {
		e.log.Error("record disabled destination", "destination", d.name, "err", err)
		return
	}
	if changed {
		cause.Type, cause.Key, cause.Time = hookd.AlertDestinationDisabled, switchKey(hookd.AlertDestinationDisabled, d.name, at), at
		cause.Destination, cause.By, cause.Reason = d.name, hookd.ByHookd, reason
		e.alert(cause)
	}
}

// Flush waits until every outcome reported so far is written.
func (e *Engine) Flush(ctx context.Context) { e.w.sync(ctx) }

// Stats are counters of the engine since it started.
type Stats struct {
	// Rows is the delivery rows written; AttemptRows the attempt-log rows.
	Rows, AttemptRows, Batches int64
	// Watermark is the fan-out watermark last written.
	Watermark int64
	// Fenced counts late outcomes refused because another replica had
	// taken their delivery over.
	Fenced int64
}

// Stats returns the engine's counters.
func (e *Engine) Stats() Stats {
	r, a, b, wm := e.w.counts()
	return Stats{Rows: r, AttemptRows: a, Batches: b, Watermark: wm, Fenced: e.fenced.Load()}
}

// limitErr is the answer to a create beyond a cap.
func limitErr(what, key string, n int) error {
	return hookd.Errorf(hookd.EConflict, "limit reached: hookd holds %d %s, the most %s allows; delete one or raise the limit", n, what, key)
}

// destEntry is one destination as the engine runs it.
type destEntry struct {
	def              config.Destination
	origin           string // "config" or "api"
	spec             []byte // the API definition (origin api)
	d                *dispatcher
	typ              string
	created, updated time.Time
}

// subEntry is one subscription.
type subEntry struct {
	id      string
	def     config.Subscription
	origin  string
	created time.Time
	updated time.Time
}

// Origins of a destination or subscription.
const (
	OriginConfig = "config"
	OriginAPI    = "api"
)

// openDestination builds the dispatcher of def (not started).
func (e *Engine) openDestination(ctx context.Context, def config.Destination) (_ *dispatcher, err error) {
	defer func() { err = def.Explain(err) }() // name an unset ${VAR} behind the error
	var rc RetryConfig
	if err := def.DecodeRetry(&rc); err != nil {
		return nil, fmt.Errorf("retry: %w", err)
	}
	pol, err := ParsePolicy(rc)
	if err != nil {
		return nil, err
	}
	dest, err := destination.Open(ctx, def.Type, &destination.Env{Name: def.Name, Now: e.clock.Now, Egress: e.egress, Log: e.log.With("destination", def.Name)}, destOptions{def})
	if err != nil {
		return nil, err
	}
	var lim *rate.Limiter
	if def.Rate != nil && def.Rate.N > 0 {
		lim = rate.NewLimiter(rate.Every(def.Rate.Per/time.Duration(def.Rate.N)), max(1, def.Rate.N/10))
	}
	return newDispatcher(e, def.Name, dest, pol, def.Ordering, def.HeadTimeout.D(), def.Concurrency, lim), nil
}

type destOptions struct{ d config.Destination }

func (o destOptions) Decode(dst any) error { return o.d.DecodeOptions(dst) }

// load opens the configured and stored destinations and subscriptions.
func (e *Engine) load(ctx context.Context, dests []config.Destination, subs []config.Subscription) error {
	stored, err := e.st.DestinationList(ctx)
	if err != nil {
		return err
	}
	state := map[string]*store.DestinationRecord{}
	for _, r := range stored {
		state[r.Name] = r
	}
	now := e.clock.Now()
	for _, def := range dests {
		d, err := e.openDestination(ctx, def)
		if err != nil {
			return fmt.Errorf("destination %s (line %d): %w", def.Name, def.Line, err)
		}
		de := &destEntry{def: def, origin: OriginConfig, d: d, typ: def.Type, created: now, updated: now}
		if r := state[def.Name]; r != nil {
			if len(r.Spec) > 0 {
				e.log.Warn("a destination created through the API has the name of a configured one; the configured one is used", "destination", def.Name)
			}
			if !r.DisabledAt.IsZero() {
				d.disabled, d.disabledReason, d.disabledAt = true, r.DisabledReason, r.DisabledAt
			}
			d.restoreFailing(r)
		}
		e.dests[def.Name] = de
	}
	for _, r := range stored {
		if len(r.Spec) == 0 || e.dests[r.Name] != nil {
			continue
		}
		spec, err := e.openSpec(kindDestination, r.Name, r.Spec, func(b []byte) error {
			cp := *r
			cp.Spec = b
			return e.st.DestinationPut(ctx, &cp)
		})
		if err != nil {
			e.log.Error("stored destination cannot be decrypted; its deliveries wait", "destination", r.Name, "err", err)
			continue
		}
		r.Spec = spec
		def, err := parseDestinationSpec(r.Spec)
		if err == nil {
			var d *dispatcher
			if d, err = e.openDestination(ctx, def); err == nil {
				if !r.DisabledAt.IsZero() {
					d.disabled, d.disabledReason, d.disabledAt = true, r.DisabledReason, r.DisabledAt
				}
				d.restoreFailing(r)
				e.dests[r.Name] = &destEntry{def: def, origin: OriginAPI, spec: r.Spec, d: d, typ: def.Type, created: r.CreatedAt, updated: r.UpdatedAt}
				continue
			}
		}
		// A stored destination that no longer opens (its kind removed, an
		// egress rule tightened) must not keep hookd from starting: its
		// work waits in the store.
		e.log.Error("stored destination cannot be opened; its deliveries wait", "destination", r.Name, "err", err)
	}
	for i, s := range subs {
		if s.Destination == "" {
			continue
		}
		if err := e.checkEnrich(s); err != nil {
			return fmt.Errorf("subscriptions[%d].%w", i, err)
		}
		id := fmt.Sprintf("sub_config_%d", i+1)
		e.subs[id] = &subEntry{id: id, def: s, origin: OriginConfig, created: now, updated: now}
	}
	recs, err := e.st.SubscriptionList(ctx)
	if err != nil {
		return err
	}
	for _, r := range recs {
		def, err := e.parseStoredSubscription(r)
		if err != nil {
			e.log.Error("stored subscription cannot be read", "subscription", r.ID, "err", err)
			continue
		}
		e.subs[r.ID] = &subEntry{id: r.ID, def: def, origin: OriginAPI, created: r.CreatedAt, updated: r.UpdatedAt}
	}
	return e.rebuildTable()
}

// rebuildTable swaps the routing table for the current subscriptions;
// e.mu is held or the engine is not started.
func (e *Engine) rebuildTable() error {
	rules := make(map[string]route.Rule, len(e.subs))
	counts := map[string]int{}
	stale, enrich, expr := 0, 0, 0
	for id, s := range e.subs {
		rules[id] = e.rule(id, s.def)
		counts[s.def.Destination]++
		if s.def.SkipStale {
			stale++
		}
		if s.def.Enrich != nil {
			enrich++
		}
		if s.def.FilterExpr != "" {
			expr++
		}
	}
	e.skipStale.Store(int64(stale))
	e.enrichCount.Store(int64(enrich))
	e.exprCount.Store(int64(expr))
	e.countTransforms()
	if err := e.table.Swap(rules); err != nil {
		return err
	}
	e.subscribedTo.Store(&counts)
	return nil
}

func ruleOf(s config.Subscription) route.Rule {
	r := route.Rule{SkipStale: s.SkipStale, Active: s.Active == nil || *s.Active, Filter: s.Filter}
	if s.Source != "" && s.Source != route.AnySource {
		r.Sources = []string{s.Source}
	}
	for _, p := range s.Events {
		if cp, err := route.CompilePattern(p); err == nil {
			r.Events = append(r.Events, cp)
		}
	}
	return r
}

// routingPage tells how to read events in bulk for routing (recovery,
// replay): bodies only when some subscription filters on them, and then
// in smaller pages, since bodies may be large.
func (e *Engine) routingPage() (withBody bool, limit int) {
	e.mu.Lock()
	defer e.mu.Unlock()
	for _, s := range e.subs {
		if s.def.Filter != nil || s.def.FilterExpr != "" {
			return true, 50
		}
	}
	return false, 500
}

// subscribed reports whether any subscription names the destination.
func (e *Engine) subscribed(dest string) bool {
	m := e.subscribedTo.Load()
	return m != nil && (*m)[dest] > 0
}

// sortedDests returns the destinations by name; e.mu is held.
func (e *Engine) sortedDests() []*destEntry {
	out := make([]*destEntry, 0, len(e.dests))
	for _, de := range e.dests {
		out = append(out, de)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].def.Name < out[j].def.Name })
	return out
}

// sealedPrefix starts every encrypted definition (secret's token format).
const sealedPrefix = "hk1."

// Kinds of sealed definitions: the kind and the name are bound to the
// ciphertext, so that a sealed definition copied to another row does not
// open.
const (
	kindDestination = "destination"
	kindSource      = "source"
)

func specAD(kind, name string) []byte { return []byte(kind + ":" + name + ":spec") }

// keyring returns the master keys, making them on first use; nil when
// there are none (tests only).
func (e *Engine) keyring() (*secret.Keyring, error) {
	e.keysMu.Lock()
	defer e.keysMu.Unlock()
	if e.keys == nil && e.newKeys != nil {
		kr, err := e.newKeys()
		if err != nil {
			return nil, fmt.Errorf("master key: %w", err)
		}
		e.keys, e.newKeys = kr, nil
	}
	return e.keys, nil
}

// Keyring returns the master keys that seal secrets in the store, making
// them on first use (with SQLite and none configured, a key file in the
// data directory); it fails when none can be had (PostgreSQL without
// HOOKD_MASTER_KEY). Hookd's token issuer seals its signing key with it.
func (e *Engine) Keyring() (*secret.Keyring, error) { return e.keyring() }

// sealSpec encrypts a definition for the store.
func (e *Engine) sealSpec(kind, name string, spec []byte) ([]byte, error) {
	keys, err := e.keyring()
	if err != nil || keys == nil {
		return spec, err
	}
	tok, err := keys.Seal(spec, specAD(kind, name))
	if err != nil {
		return nil, err
	}
	return []byte(tok), nil
}

// openSpec decrypts a stored definition. One stored in plain text (before
// a master key was configured) is encrypted in place, and one sealed under
// an old master key is rewrapped under the active one; rewrite stores the
// new form.
func (e *Engine) openSpec(kind, name string, stored []byte, rewrite func([]byte) error) ([]byte, error) {
	sealed := strings.HasPrefix(string(stored), sealedPrefix)
	keys, err := e.keyring()
	if err != nil {
		return nil, err
	}
	if !sealed {
		if keys != nil {
			if tok, err := e.sealSpec(kind, name, stored); err == nil {
				if err := rewrite(tok); err != nil {
					e.log.Warn("encrypt a stored definition", kind, name, "err", err)
				}
			}
		}
		return stored, nil
	}
	if keys == nil {
		return nil, errors.New("the definition is encrypted and no master key is configured")
	}
	spec, err := keys.Open(string(stored), specAD(kind, name))
	if err != nil {
		return nil, err
	}
	if keys.NeedsRewrap(string(stored)) {
		if tok, err := keys.Rewrap(string(stored)); err == nil {
			if err := rewrite([]byte(tok)); err != nil {
				e.log.Warn("rewrap a stored definition under the active master key", kind, name, "err", err)
			}
		}
	}
	return spec, nil
}
