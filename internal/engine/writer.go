package engine

import (
	"container/heap"
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"hookd/internal/store"
)

// writeReq is one delivery row change for the writer, and what to do once
// it is committed.
type writeReq struct {
	w *store.DeliveryWrite
	// seq, when > 0, is the event seq of a fresh delivery (one that had no
	// row): once committed it no longer holds the watermark back.
	seq int64
	// after runs once the write is committed (or skipped by its fence).
	after func()
	// skipped, when set, runs (before after) if the store skipped the
	// write because of its fence: the stored row moved on without it.
	skipped func()
}

// writer applies delivery outcomes in batches on the store's single
// writer: one transaction for every outcome waiting, with the fan-out
// watermark written in the same transaction.
type writer struct {
	st    store.DeliveryStore
	log   *slog.Logger
	marks *marks
	in    chan writeReq
	flush chan chan struct{}
	done  chan struct{}
	// ctx ends when the stop gives up on the store (giveUp): the writer
	// stops retrying, and what it has not written is lost to this process
	// only (the next start derives it again).
	ctx    context.Context
	giveUp context.CancelFunc
	// recorded, when set, is told the id of each fresh delivery whose row
	// is committed (or was already stored).
	recorded func(id string)

	mu        sync.Mutex
	lost      int   // outcomes given up at the stop
	lostErr   error // the store's last error then
	persisted int64 // the watermark last written
	rows      int64 // delivery rows written (the row-write budget)
	attempts  int64 // attempt-log rows written
	batches   int64
}

const (
	maxWriteBatch = 1024
	// writeLinger is how long the writer waits for more outcomes before it
	// commits a small batch, and lingerEnough the batch size that commits
	// without waiting.
	writeLinger  = 10 * time.Millisecond
	lingerEnough = 1024
)

func newWriter(st store.DeliveryStore, log *slog.Logger, m *marks, persisted int64) *writer {
	ctx, giveUp := context.WithCancel(context.Background())
	return &writer{st: st, log: log, marks: m, in: make(chan writeReq, 8192), flush: make(chan chan struct{}), done: make(chan struct{}), persisted: persisted,
		ctx: ctx, giveUp: giveUp}
}

// submit queues a write; it blocks when the writer is far behind, which
// slows the attempts down to what the store can record. Once the writer
// has given up or exited, the write is dropped (and counted as lost).
func (w *writer) submit(r writeReq) {
	select {
	case w.in <- r:
	case <-w.ctx.Done():
		w.lose(1, nil)
	case <-w.done:
		w.lose(1, nil)
	}
}

// submitAsync queues a write without blocking the caller (who may hold a
// dispatcher's lock): when the queue is full, a goroutine waits for room.
func (w *writer) submitAsync(r writeReq) {
	select {
	case w.in <- r:
	default:
		go w.submit(r)
	}
}

// sync waits until every write submitted before it is committed and the
// watermark they allow is written.
func (w *writer) sync(ctx context.Context) {
	ch := make(chan struct{})
	select {
	case w.flush <- ch:
	case <-ctx.Done():
		return
	case <-w.done:
		return
	}
	select {
	case <-ch:
	case <-ctx.Done():
	case <-w.done:
	}
}

// lose counts n outcomes that will not be written, and the store's error.
func (w *writer) lose(n int, err error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.lost += n
	if err != nil {
		w.lostErr = err
	}
}

// lostError is nil when every outcome was written, else an error that
// says how many were not and why.
func (w *writer) lostError() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.lost == 0 {
		return nil
	}
	if w.lostErr == nil {
		return fmt.Errorf("%d delivery outcomes not recorded; their deliveries are made again after the restart", w.lost)
	}
	return fmt.Errorf("%d delivery outcomes not recorded (%w); their deliveries are made again after the restart", w.lost, w.lostErr)
}

// run writes until stop is closed and everything submitted is written, or
// until the writer gives up.
func (w *writer) run(stop <-chan struct{}) {
	defer close(w.done)
	defer func() {
		w.mu.Lock()
		lost, err := w.lost, w.lostErr
		w.mu.Unlock()
		if lost > 0 {
			w.log.Error("delivery outcomes not recorded at the stop: the store did not take them in time; their deliveries are made again after the restart (at least once)", "count", lost, "err", err)
		}
	}()
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	batch := make([]writeReq, 0, maxWriteBatch)
	for {
		var flushed chan struct{}
		select {
		case r := <-w.in:
			batch = append(batch, r)
		case flushed = <-w.flush:
		case <-tick.C:
		case <-stop:
		drain:
			for {
				select {
				case r := <-w.in:
					batch = append(batch, r)
					if len(batch) == maxWriteBatch {
						w.write(batch)
						batch = batch[:0]
					}
				default:
					break drain
				}
			}
			w.write(batch)
			w.write(nil) // the last watermark
			return
		}
		// Linger a moment for more: a commit costs about as much for one
		// row as for a hundred, and outcomes arrive one by one.
		var (
			linger <-chan time.Time
			timer  *time.Timer
		)
		if len(batch) > 0 && flushed == nil {
			timer = time.NewTimer(writeLinger)
			linger = timer.C
		}
	collect:
		for len(batch) < maxWriteBatch {
			select {
			case r := <-w.in:
				batch = append(batch, r)
				continue
			default:
			}
			if linger == nil || len(batch) >= lingerEnough {
				break
			}
			select {
			case r := <-w.in:
				batch = append(batch, r)
			case <-linger:
				break collect
			}
		}
		if timer != nil {
			timer.Stop()
		}
		w.write(batch)
		clear(batch)
		batch = batch[:0]
		if flushed != nil {
			w.write(nil)
			close(flushed)
		}
	}
}

// write commits batch (which may be empty: then only a watermark that
// moved is written), retrying until the store takes it or the writer gives
// up (a stop that cannot wait longer). An outcome given up is not lost for
// good: its delivery row and the watermark stay as they were, so the next
// start releases the lease, or routes the event again, and the delivery is
// made again.
func (w *writer) write(batch []writeReq) {
	wm := w.marks.watermark()
	w.mu.Lock()
	if wm <= w.persisted {
		wm = 0
	}
	w.mu.Unlock()
	if len(batch) == 0 && wm == 0 {
		return
	}
	writes := make([]*store.DeliveryWrite, len(batch))
	natt := 0
	for i, r := range batch {
		writes[i] = r.w
		if r.w.Attempt != nil {
			natt++
		}
	}
	var (
		skipped []string
		lastErr error
	)
	for delay := 100 * time.Millisecond; ; delay = min(2*delay, 5*time.Second) {
		if w.ctx.Err() != nil {
			w.lose(len(batch), lastErr)
			return
		}
		ctx, cancel := context.WithTimeout(w.ctx, 30*time.Second)
		var err error
		skipped, err = w.st.DeliveryWriteMany(ctx, writes, wm)
		cancel()
		if err == nil {
			if len(skipped) > 0 {
				w.log.Info("outcomes of superseded attempts not recorded", "count", len(skipped))
			}
			break
		}
		lastErr = err
		if w.ctx.Err() != nil {
			w.lose(len(batch), err)
			return
		}
		w.log.Error("record delivery outcomes; retrying", "count", len(writes), "err", err, "retry_in", delay)
		t := time.NewTimer(delay)
		select {
		case <-t.C:
		case <-w.ctx.Done():
			t.Stop()
		}
	}
	w.mu.Lock()
	if wm > w.persisted {
		w.persisted = wm
	}
	w.rows += int64(len(batch))
	w.attempts += int64(natt)
	w.batches++
	w.mu.Unlock()
	var skip map[string]bool
	if len(skipped) > 0 {
		skip = make(map[string]bool, len(skipped))
		for _, id := range skipped {
			skip[id] = true
		}
	}
	for _, r := range batch {
		if r.seq > 0 {
			w.marks.done(r.seq)
			if w.recorded != nil {
				w.recorded(r.w.Delivery.ID)
			}
		}
		if r.skipped != nil && skip[r.w.Delivery.ID] {
			r.skipped()
		}
		if r.after != nil {
			r.after()
		}
	}
}

// Counts returns the rows written so far.
func (w *writer) counts() (rows, attempts, batches, watermark int64) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.rows, w.attempts, w.batches, w.persisted
}

// marks tracks which routed events still have deliveries without a row:
// the watermark is the highest seq below which none has.
type marks struct {
	mu      sync.Mutex
	last    int64         // highest seq routed
	pending map[int64]int // seq → deliveries without a row
	h       seqHeap       // seqs of pending (lazily cleaned)
}

func newMarks(start int64) *marks { return &marks{last: start, pending: map[int64]int{}} }

// add records that the event at seq was routed to n deliveries without
// rows. Events are added in seq order.
func (m *marks) add(seq int64, n int) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if seq > m.last {
		m.last = seq
	}
	if n > 0 {
		m.pending[seq] += n
		heap.Push(&m.h, seq)
	}
}

// done records that one delivery of the event at seq has its row.
func (m *marks) done(seq int64) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if n := m.pending[seq]; n > 1 {
		m.pending[seq] = n - 1
	} else {
		delete(m.pending, seq)
	}
}

func (m *marks) watermark() int64 {
	m.mu.Lock()
	defer m.mu.Unlock()
	for m.h.Len() > 0 {
		s := m.h[0]
		if _, ok := m.pending[s]; ok {
			return s - 1
		}
		heap.Pop(&m.h)
	}
	return m.last
}

type seqHeap []int64

func (h seqHeap) Len() int           { return len(h) }
func (h seqHeap) Less(i, j int) bool { return h[i] < h[j] }
func (h seqHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *seqHeap) Push(x any)        { *h = append(*h, x.(int64)) }
func (h *seqHeap) Pop() any {
	old := *h
	x := old[len(old)-1]
	*h = old[:len(old)-1]
	return x
}
