package store

import (
	"context"
	"errors"
	"log/slog"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"hookd"
)

// Batcher is the group-commit front of a Store: one writer goroutine takes
// every insert queued, stores them with one EventInsertMany (one transaction,
// one durable commit), then releases each waiting caller. A caller waits
// for its insert to enter a batch at most until its context is done (or
// its deadline); an insert whose caller gave up before the batch started
// is skipped. Once in a batch, the caller waits for the batch's outcome:
// a failure answered means the event was not stored (except across a
// crash, which may keep what was being written).
type Batcher struct {
	st       Store
	log      *slog.Logger
	queue    chan *pendingInsert
	maxBatch int
	maxBytes int
	// OnCommit, when set before Start, is called by the writer after every
	// successful commit with the inserts and their results. It must not block.
	OnCommit func(ins []*EventInsert, res []EventInsertResult)
	// Prepare, when set before Start, is called with every insert in its
	// caller's goroutine before it is queued (the engine routes it there
	// when deliveries are stored with their event). It must not block.
	Prepare func(in *EventInsert)
	// Observer, when set before Start, receives the writer's measurements
	// (hookd's metrics).
	Observer BatchObserver

	// syncer is st when its commits need a Sync to be durable; the
	// batches it committed wait in synced for the syncer goroutine.
	syncer Syncer
	synced chan committed

	stop    chan struct{}
	done    chan struct{}
	stopped sync.Once
	// timeouts bounds the waits of InsertBy without a timer per call.
	timeouts deadlines

	mu      sync.Mutex
	lastErr error
}

// committed is a batch the store has committed but not yet made durable.
type committed struct {
	live []*pendingInsert
	ins  []*EventInsert
	res  []EventInsertResult
	mark SyncMark
}

// The states of a pendingInsert: queued until the writer takes it into a
// batch, or its caller gives up waiting.
const (
	queued int32 = iota
	taken
	abandoned
)

type pendingInsert struct {
	// state moves once, from queued to taken (by the writer) or to
	// abandoned (by the caller, or the writer finding it gone).
	state atomic.Int32
	ctx   context.Context
	// deadline, when set, is when the caller stops waiting.
	deadline time.Time
	in       *EventInsert
	done     chan struct{}
	res      EventInsertResult
	err      error
}

// gone reports whether the caller has stopped waiting at now.
func (p *pendingInsert) gone(now time.Time) error {
	if err := p.ctx.Err(); err != nil {
		return err
	}
	if !p.deadline.IsZero() && !now.Before(p.deadline) {
		return context.DeadlineExceeded
	}
	return nil
}

// BatcherOptions tunes a Batcher; zero values take the defaults.
type BatcherOptions struct {
	// QueueSize bounds how many inserts may wait for the writer; beyond it
	// Insert fails at once with EUnavailable. Default 16384.
	QueueSize int
	// MaxBatch bounds the inserts of one transaction. Default 2048.
	MaxBatch int
	// MaxBytes bounds the bodies and headers of one transaction (an insert
	// larger than that goes alone). Default 32 MiB.
	MaxBytes int
}

// NewBatcher returns a Batcher writing to st. Call Start before Insert.
func NewBatcher(st Store, log *slog.Logger, opt BatcherOptions) *Batcher {
	if opt.QueueSize <= 0 {
		opt.QueueSize = 16384
	}
	if opt.MaxBatch <= 0 {
		opt.MaxBatch = 2048
	}
	if opt.MaxBytes <= 0 {
		opt.MaxBytes = 32 << 20
	}
	b := &Batcher{
		st:       st,
		log:      log,
		queue:    make(chan *pendingInsert, opt.QueueSize),
		maxBatch: opt.MaxBatch,
		maxBytes: opt.MaxBytes,
		stop:     make(chan struct{}),
		done:     make(chan struct{}),
	}
	if sy, ok := st.(Syncer); ok {
		b.syncer = sy
		b.synced = make(chan committed, 64)
	}
	return b
}

// BatchObserver receives a Batcher's measurements. Its methods are called
// from the writer and syncer goroutines and must not block.
type BatchObserver interface {
	// Committed reports one transaction: the events it stored (or failed
	// to store) and how long it took.
	Committed(events int, d time.Duration, err error)
	// Synced reports one sync, which made the events of one or more
	// committed transactions durable.
	Synced(d time.Duration, err error)
}

// QueueLen is the number of inserts waiting for the writer.
func (b *Batcher) QueueLen() int { return len(b.queue) }

// Syncer is implemented by a Store whose EventInsertMany returns once the
// batch is committed but before it is durable. Sync makes every commit
// returned so far durable. The Batcher then pipelines: while one batch is
// being synced, the next one is committed, and callers are answered only
// after the sync.
//
// After a failed sync the store may drop the commits that no sync
// covered, and recover: Mark, taken right after a commit, and Durable,
// asked after a Sync, tell whether that commit is durable (answer 200) or
// was left out (answer 503: it is not stored, and will not be).
type Syncer interface {
	Sync() error
	// Mark is the position of the last commit returned.
	Mark() SyncMark
	// Durable reports whether the commits up to m are durable.
	Durable(m SyncMark) bool
}

// Readier is implemented by a Store that knows whether it can commit now
// (Ping says only that it answers). Ready returns nil, or why not; it
// changes back by itself once the cause is gone.
type Readier interface {
	Ready(ctx context.Context) error
}

// SyncMark is a position in a Syncer's commits: the recovery generation
// and the log sequence number of the last record.
type SyncMark struct{ Gen, LSN uint64 }

// ErrQueueFull is returned (wrapped in a *hookd.Error) when the write queue
// is full.
var ErrQueueFull = errors.New("write queue full")

// Start starts the writer goroutine (and the syncer goroutine, when the
// store needs one).
func (b *Batcher) Start(ctx context.Context) error {
	if b.syncer != nil {
		writerDone := make(chan struct{})
		go func() {
			defer close(writerDone)
			b.run()
		}()
		go func() {
			defer close(b.done)
			b.syncLoop(writerDone)
		}()
		return nil
	}
	go func() {
		defer close(b.done)
		b.run()
	}()
	return nil
}

// Stop lets the writer commit everything already queued, then stops it. It
// is idempotent and waits until the writer is gone or ctx is done.
func (b *Batcher) Stop(ctx context.Context) error {
	b.stopped.Do(func() {
		close(b.stop)
		b.timeouts.stop()
	})
	select {
	case <-b.done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Healthy reports the error of the last commit, nil when it succeeded.
func (b *Batcher) Healthy() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.lastErr
}

// Insert queues in and waits until it is durably stored, rejected, or ctx is
// done. Every failure is a *hookd.Error with code EUnavailable: the caller
// cannot know whether the event was stored, and should ask the sender to
// retry.
func (b *Batcher) Insert(ctx context.Context, in *EventInsert) (EventInsertResult, error) {
	return b.insert(&pendingInsert{ctx: ctx, in: in, done: make(chan struct{})}, ctx.Done(), nil)
}

// InsertBy is Insert bounded by deadline instead of ctx: it waits until
// the event is stored or refused, or deadline has passed (then the error
// wraps context.DeadlineExceeded); ctx only decides whether an insert the
// writer has not taken yet is still wanted. It costs no timer of its own:
// the batcher's shared clock ticks every few milliseconds, and the wait
// ends within one tick after the deadline. Ingest waits this way on every
// request.
func (b *Batcher) InsertBy(ctx context.Context, deadline time.Time, in *EventInsert) (EventInsertResult, error) {
	return b.insert(&pendingInsert{ctx: ctx, deadline: deadline, in: in, done: make(chan struct{})}, nil, b.timeouts.at(deadline))
}

// insert queues p and waits for it, for ctxDone or for timeout (either
// may be nil: never).
func (b *Batcher) insert(p *pendingInsert, ctxDone <-chan struct{}, timeout <-chan struct{}) (EventInsertResult, error) {
	ctx := p.ctx
	if b.Prepare != nil {
		b.Prepare(p.in)
	}
	select {
	case <-b.stop:
		return EventInsertResult{}, &hookd.Error{Code: hookd.EUnavailable, Message: "shutting down"}
	default:
	}
	select {
	case b.queue <- p:
	default:
		return EventInsertResult{}, &hookd.Error{Code: hookd.EUnavailable, Message: "storage busy", Err: ErrQueueFull}
	}
	select {
	case <-p.done:
		return p.res, p.err
	case <-ctxDone:
		return b.giveUp(p, ctx.Err())
	case <-timeout:
		return b.giveUp(p, context.DeadlineExceeded)
	case <-b.done:
		// The writer has left. It released everything it took before it
		// did, so p is either done or was enqueued too late to be seen.
		select {
		case <-p.done:
			return p.res, p.err
		default:
			return EventInsertResult{}, &hookd.Error{Code: hookd.EUnavailable, Message: "shutting down"}
		}
	}
}

// giveUp ends the wait of a caller whose context or deadline has come:
// with 503 when its insert has not entered a batch (it never will), else
// with the batch's outcome, however long the batch takes: an answer of
// 503 must mean that the event was not stored.
func (b *Batcher) giveUp(p *pendingInsert, cause error) (EventInsertResult, error) {
	if p.state.CompareAndSwap(queued, abandoned) {
		return EventInsertResult{}, &hookd.Error{Code: hookd.EUnavailable, Message: "storage too slow to commit", Err: cause}
	}
	select {
	case <-p.done:
		return p.res, p.err
	case <-b.done:
		// The writer and the syncer answer every insert they took before
		// they leave.
		select {
		case <-p.done:
			return p.res, p.err
		default:
			return EventInsertResult{}, &hookd.Error{Code: hookd.EUnavailable, Message: "shutting down"}
		}
	}
}

func (b *Batcher) run() {
	batch := make([]*pendingInsert, 0, b.maxBatch)
	for {
		var first *pendingInsert
		select {
		case first = <-b.queue:
		case <-b.stop:
			// Commit whatever is still queued, then leave.
			select {
			case first = <-b.queue:
			default:
				return
			}
		}
		batch = append(batch[:0], first)
		var next *pendingInsert
		batch, next = b.collect(batch)
		b.commit(batch)
		clear(batch)
		for next != nil {
			// The insert that did not fit starts the next batch.
			batch, next = b.collect(append(batch[:0], next))
			b.commit(batch)
			clear(batch)
		}
	}
}

// size is what an insert adds to a batch.
func (p *pendingInsert) size() int {
	return len(p.in.Event.Body) + len(p.in.HeadersJSON)
}

// collect takes what is queued, up to MaxBatch inserts and MaxBytes of
// bodies; an insert that would go past MaxBytes is returned as next.
// Before giving up on more, it yields so that handlers that are runnable
// but not yet scheduled (with few cores, the writer would otherwise see
// one insert per commit) can enqueue theirs.
func (b *Batcher) collect(batch []*pendingInsert) (_ []*pendingInsert, next *pendingInsert) {
	bytes := 0
	for _, p := range batch {
		bytes += p.size()
	}
	for yields := 0; len(batch) < b.maxBatch; {
		select {
		case p := <-b.queue:
			if bytes+p.size() > b.maxBytes {
				return batch, p
			}
			bytes += p.size()
			batch = append(batch, p)
			continue
		default:
		}
		if yields == 2 {
			return batch, nil
		}
		yields++
		runtime.Gosched()
	}
	return batch, nil
}

func (b *Batcher) commit(batch []*pendingInsert) {
	live := batch[:0:0]
	ins := make([]*EventInsert, 0, len(batch))
	now := time.Now()
	for _, p := range batch {
		if err := p.gone(now); err != nil && p.state.CompareAndSwap(queued, abandoned) {
			// The caller is giving up: don't store an event nobody is
			// told about.
			p.err = &hookd.Error{Code: hookd.EUnavailable, Message: "storage too slow to commit", Err: err}
			close(p.done)
			continue
		}
		if !p.state.CompareAndSwap(queued, taken) {
			continue // its caller gave up and was answered 503
		}
		live = append(live, p)
		ins = append(ins, p.in)
	}
	if len(live) == 0 {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	start := time.Now()
	res, err := b.st.EventInsertMany(ctx, ins)
	cancel()
	if b.Observer != nil {
		b.Observer.Committed(len(live), time.Since(start), err)
	}
	b.mu.Lock()
	b.lastErr = err
	b.mu.Unlock()
	if err != nil {
		b.log.Error("commit events", "count", len(live), "err", err)
		herr := &hookd.Error{Code: hookd.EUnavailable, Message: "storage unavailable", Err: err}
		for _, p := range live {
			p.err = herr
			close(p.done)
		}
		return
	}
	if b.syncer != nil {
		b.synced <- committed{live: live, ins: ins, res: res, mark: b.syncer.Mark()}
		return
	}
	b.release(committed{live: live, ins: ins, res: res})
}

// release answers the callers of a durable batch.
func (b *Batcher) release(c committed) {
	if b.OnCommit != nil {
		b.OnCommit(c.ins, c.res)
	}
	for i, p := range c.live {
		p.res = c.res[i]
		close(p.done)
	}
}

// errDroppedByRecovery answers a batch that a recovery took out of the log
// although the sync that followed it passed.
var errDroppedByRecovery = errors.New("a failed sync left the batch out of the log")

// syncLoop makes committed batches durable: it takes every batch committed
// so far, syncs once, and answers all of their callers; meanwhile the
// writer commits the next batch. It leaves once the writer has left and
// everything it committed is answered.
func (b *Batcher) syncLoop(writerDone <-chan struct{}) {
	var pending []committed
	for {
		select {
		case c := <-b.synced:
			pending = append(pending[:0], c)
		case <-writerDone:
			select {
			case c := <-b.synced:
				pending = append(pending[:0], c)
			default:
				return
			}
		}
	drain:
		for {
			select {
			case c := <-b.synced:
				pending = append(pending, c)
			default:
				break drain
			}
		}
		start := time.Now()
		err := b.syncer.Sync()
		if b.Observer != nil {
			b.Observer.Synced(time.Since(start), err)
		}
		if err != nil {
			b.mu.Lock()
			b.lastErr = err
			b.mu.Unlock()
			n := 0
			for _, c := range pending {
				n += len(c.live)
			}
			b.log.Error("sync events", "count", n, "err", err)
		} else {
			err = errDroppedByRecovery
		}
		// Each batch is durable or is not stored: a batch an earlier sync
		// covered is answered 200 even when this one failed, and one that
		// a recovery dropped is answered 503 even when this one passed.
		var herr error
		for _, c := range pending {
			if b.syncer.Durable(c.mark) {
				b.release(c)
				continue
			}
			if herr == nil {
				herr = &hookd.Error{Code: hookd.EUnavailable, Message: "storage unavailable", Err: err}
			}
			for _, p := range c.live {
				p.err = herr
				close(p.done)
			}
		}
		clear(pending)
	}
}

// deadlines hands out channels that close at a deadline, rounded up to the
// next tick: every waiter whose deadline falls in the same tick shares one
// channel, and one ticker closes them. A wait then costs a map lookup
// instead of a timer of its own (a timer, its context and their
// bookkeeping were a tenth of ingest's own work per request). The ticker
// runs only while some channel is open: an idle hookd does not tick.
type deadlines struct {
	mu      sync.Mutex
	chans   map[int64]chan struct{}
	running bool
	stopped bool
}

// deadlineTick is the resolution of InsertBy's deadline.
const deadlineTick = 5 * time.Millisecond

// at returns a channel closed once t has passed (at most a tick later).
func (d *deadlines) at(t time.Time) <-chan struct{} {
	k := (t.UnixNano() + int64(deadlineTick) - 1) / int64(deadlineTick)
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.chans == nil {
		d.chans = map[int64]chan struct{}{}
	}
	ch := d.chans[k]
	if ch == nil {
		ch = make(chan struct{})
		if k*int64(deadlineTick) <= time.Now().UnixNano() {
			close(ch) // already past: no tick will come for it
			return ch
		}
		d.chans[k] = ch
	}
	if !d.running && !d.stopped {
		d.running = true
		go d.run()
	}
	return ch
}

// run closes the channels whose tick has come, until none is left (or
// stop).
func (d *deadlines) run() {
	t := time.NewTicker(deadlineTick)
	defer t.Stop()
	for range t.C {
		now := time.Now().UnixNano() / int64(deadlineTick)
		d.mu.Lock()
		for k, ch := range d.chans {
			if k <= now {
				close(ch)
				delete(d.chans, k)
			}
		}
		if len(d.chans) == 0 || d.stopped {
			d.running = false
			d.mu.Unlock()
			return
		}
		d.mu.Unlock()
	}
}

// stop ends the ticking; channels still open are never closed (their
// waiters leave with the batcher).
func (d *deadlines) stop() {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.stopped = true
}
