package store_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"hookd"
	"hookd/internal/store"
	"hookd/internal/store/sqlite"
)

func testLogger(t *testing.T) *slog.Logger {
	return slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelWarn}))
}

func openSQLite(t *testing.T) *sqlite.Store {
	t.Helper()
	st, err := sqlite.Open(t.Context(), t.TempDir(), testLogger(t), sqlite.Options{})
	if err != nil {
		t.Fatalf("open sqlite: %v", err)
	}
	t.Cleanup(func() {
		if err := st.Close(); err != nil {
			t.Errorf("close sqlite: %v", err)
		}
	})
	return st
}

// wrapStore counts EventInsertMany calls, can fail them, and can hold the
// first one until released. Everything else goes to the real store.
type wrapStore struct {
	store.Store
	calls    atomic.Int64
	fail     atomic.Pointer[error]
	maxBytes atomic.Int64 // the most body bytes one call carried

	holdFirst chan struct{} // when set, the first call waits for it to close
	entered   chan struct{} // closed when the first call has begun
	once      sync.Once
}

func (w *wrapStore) EventInsertMany(ctx context.Context, ins []*store.EventInsert) ([]store.EventInsertResult, error) {
	if w.calls.Add(1) == 1 && w.holdFirst != nil {
		w.once.Do(func() { close(w.entered) })
		<-w.holdFirst
	}
	if err := w.fail.Load(); err != nil {
		return nil, *err
	}
	n := 0
	for _, in := range ins {
		n += len(in.Event.Body)
	}
	for {
		m := w.maxBytes.Load()
		if int64(n) <= m || w.maxBytes.CompareAndSwap(m, int64(n)) {
			break
		}
	}
	return w.Store.EventInsertMany(ctx, ins)
}

func startBatcher(t *testing.T, st store.Store, opt store.BatcherOptions) *store.Batcher {
	t.Helper()
	b := store.NewBatcher(st, testLogger(t), opt)
	if err := b.Start(t.Context()); err != nil {
		t.Fatalf("Start: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := b.Stop(ctx); err != nil {
			t.Errorf("Stop: %v", err)
		}
	})
	return b
}

func newInsert(n int) *store.EventInsert {
	now := time.Now()
	rid := hookd.RequestIDPrefix + hookd.NewULID(now)
	return &store.EventInsert{
		Event: &hookd.Event{
			ID: hookd.EventIDForRequest(rid), Source: "src", ExternalID: fmt.Sprintf("ext-%d", n),
			ReceivedAt: now, RequestID: rid, Body: []byte(`{}`),
		},
		DedupeWindow: time.Hour,
	}
}

func timeout(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func wantStored(t *testing.T, st store.Store, id string, want bool) {
	t.Helper()
	_, err := st.EventGet(timeout(t), id)
	switch {
	case want && err != nil:
		t.Errorf("EventGet(%s): got %v, want the event stored", id, err)
	case !want && !errors.Is(err, store.ErrNotFound):
		t.Errorf("EventGet(%s): got error %v, want ErrNotFound (not stored)", id, err)
	}
}

func TestBatcherCancelledCallerNotStored(t *testing.T) {
	t.Parallel()
	st := openSQLite(t)
	b := startBatcher(t, st, store.BatcherOptions{})
	cancelled, cancel := context.WithCancel(context.Background())
	cancel()

	// Cancelled callers race with live ones so that they land in the same
	// batches as events that are committed.
	const n = 200
	type outcome struct {
		id   string
		live bool
		err  error
	}
	out := make(chan outcome, 2*n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			in := newInsert(2 * i)
			_, err := b.Insert(cancelled, in)
			out <- outcome{in.Event.ID, false, err}
		})
		wg.Go(func() {
			in := newInsert(2*i + 1)
			_, err := b.Insert(timeout(t), in)
			out <- outcome{in.Event.ID, true, err}
		})
	}
	wg.Wait()
	close(out)
	wrongCode := 0
	for o := range out {
		if o.live {
			if o.err != nil {
				t.Errorf("live caller: Insert: %v", o.err)
			}
			wantStored(t, st, o.id, true)
			continue
		}
		if code := hookd.ErrorCode(o.err); code != hookd.EUnavailable {
			if wrongCode++; wrongCode <= 3 {
				t.Errorf("cancelled caller: got error %v (code %q), want code %q", o.err, code, hookd.EUnavailable)
			}
		}
		wantStored(t, st, o.id, false)
	}
	if wrongCode > 0 {
		t.Errorf("%d of %d cancelled callers got a code other than %q", wrongCode, n, hookd.EUnavailable)
	}
}

// TestBatcherCancelledCallerCodeUnderLoad sends many already-cancelled
// inserts while the writer is busy with live ones. A cancelled caller whose
// insert the writer skips before the caller reaches its wait must still get
// EUnavailable (a 503), not the bare context error (a 500).
func TestBatcherCancelledCallerCodeUnderLoad(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("stress test")
	}
	const (
		workers   = 16
		perWorker = 15000
		live      = 200
	)
	st := openSQLite(t)
	// Room for every insert: cancelled ones pile up faster than the writer
	// skips them, and a full queue is not what this test is about.
	b := startBatcher(t, st, store.BatcherOptions{QueueSize: workers*perWorker + live})
	cancelled, cancel := context.WithCancel(context.Background())
	cancel()
	var (
		wrong atomic.Int64
		first atomic.Pointer[error]
		wg    sync.WaitGroup
	)
	for w := range workers {
		wg.Go(func() {
			for i := range perWorker {
				_, err := b.Insert(cancelled, newInsert(1_000_000+w*perWorker+i))
				if hookd.ErrorCode(err) != hookd.EUnavailable {
					wrong.Add(1)
					first.CompareAndSwap(nil, &err)
				}
			}
		})
	}
	for i := range live {
		wg.Go(func() {
			if _, err := b.Insert(timeout(t), newInsert(i)); err != nil {
				t.Errorf("live caller: Insert: %v", err)
			}
		})
	}
	wg.Wait()
	if n := wrong.Load(); n > 0 {
		err := *first.Load()
		t.Errorf("%d of %d cancelled callers got a code other than %q; first: %v (%T, code %q)",
			n, workers*perWorker, hookd.EUnavailable, err, err, hookd.ErrorCode(err))
	}
	var stored int
	p := &store.EventListParams{Limit: store.MaxListLimit}
	for {
		page, next, err := st.EventList(timeout(t), p)
		if err != nil {
			t.Fatalf("EventList: %v", err)
		}
		stored += len(page)
		if next == "" {
			break
		}
		p.After = next
	}
	if stored != live {
		t.Errorf("got %d stored events, want %d (the live callers' only)", stored, live)
	}
}

func TestBatcherStopCommitsQueued(t *testing.T) {
	t.Parallel()
	st := openSQLite(t)
	const queued = 50
	w := &wrapStore{Store: st, holdFirst: make(chan struct{}), entered: make(chan struct{})}
	b := store.NewBatcher(w, testLogger(t), store.BatcherOptions{QueueSize: queued})
	if err := b.Start(t.Context()); err != nil {
		t.Fatalf("Start: %v", err)
	}

	type outcome struct {
		id  string
		err error
	}
	out := make(chan outcome, queued+2)
	insert := func(n int) {
		in := newInsert(n)
		_, err := b.Insert(context.Background(), in)
		out <- outcome{in.Event.ID, err}
	}
	// The first insert holds the writer inside its commit.
	go insert(0)
	select {
	case <-w.entered:
	case <-time.After(10 * time.Second):
		t.Fatal("the first commit did not begin")
	}
	// Fill the queue: queued+1 callers for queued slots, so exactly one is
	// turned away at once, and when it is, every slot holds a caller.
	for i := range queued + 1 {
		go insert(i + 1)
	}
	var results []outcome
	deadline := time.After(10 * time.Second)
	for full := false; !full; {
		select {
		case o := <-out:
			if !errors.Is(o.err, store.ErrQueueFull) {
				t.Fatalf("while the writer is held: got an Insert answer %v, want only ErrQueueFull", o.err)
			}
			full = true
		case <-deadline:
			t.Fatal("the queue did not fill")
		}
	}

	stopped := make(chan error, 1)
	go func() { stopped <- b.Stop(context.Background()) }()
	// Insert after Stop has begun is refused at once. Wait until Stop has
	// closed the door: a probe is refused with "shutting down" rather
	// than "queue full".
	for {
		_, err := b.Insert(context.Background(), newInsert(-1))
		if hookd.ErrorCode(err) != hookd.EUnavailable {
			t.Fatalf("Insert while stopping: got %v, want code %q", err, hookd.EUnavailable)
		}
		if !errors.Is(err, store.ErrQueueFull) {
			break
		}
		select {
		case <-deadline:
			t.Fatal("Stop did not take effect")
		default:
		}
	}
	close(w.holdFirst)
	select {
	case err := <-stopped:
		if err != nil {
			t.Fatalf("Stop: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Stop did not return")
	}
	for len(results) < queued+1 {
		select {
		case o := <-out:
			results = append(results, o)
		case <-time.After(10 * time.Second):
			t.Fatalf("got %d Insert answers after Stop, want %d", len(results), queued+1)
		}
	}
	for _, o := range results {
		if o.err != nil {
			t.Errorf("queued before Stop: Insert: got %v, want nil (committed)", o.err)
		}
		wantStored(t, st, o.id, true)
	}

	// Insert after Stop has returned fails with EUnavailable, stores nothing.
	in := newInsert(1000)
	_, err := b.Insert(timeout(t), in)
	if code := hookd.ErrorCode(err); code != hookd.EUnavailable {
		t.Errorf("Insert after Stop: got %v (code %q), want code %q", err, code, hookd.EUnavailable)
	}
	wantStored(t, st, in.Event.ID, false)
	if err := b.Stop(timeout(t)); err != nil {
		t.Errorf("second Stop: got %v, want nil", err)
	}
}

func TestBatcherStoreErrorFailsEveryWaiter(t *testing.T) {
	t.Parallel()
	st := openSQLite(t)
	w := &wrapStore{Store: st}
	errDisk := errors.New("disk on fire")
	w.fail.Store(&errDisk)
	b := startBatcher(t, w, store.BatcherOptions{})

	const n = 20
	ids := make([]string, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			in := newInsert(i)
			ids[i] = in.Event.ID
			_, errs[i] = b.Insert(timeout(t), in)
		})
	}
	wg.Wait()
	for i, err := range errs {
		if code := hookd.ErrorCode(err); code != hookd.EUnavailable {
			t.Errorf("waiter %d: got %v (code %q), want code %q", i, err, code, hookd.EUnavailable)
		}
		if hookd.ErrorMessage(err) == errDisk.Error() {
			t.Errorf("waiter %d: the client-safe message is the storage error %q", i, errDisk)
		}
		wantStored(t, st, ids[i], false)
	}
	if err := b.Healthy(); !errors.Is(err, errDisk) {
		t.Errorf("Healthy after a failed commit: got %v, want %v", err, errDisk)
	}

	w.fail.Store(nil)
	in := newInsert(n)
	if _, err := b.Insert(timeout(t), in); err != nil {
		t.Fatalf("Insert once storage is back: %v", err)
	}
	wantStored(t, st, in.Event.ID, true)
	if err := b.Healthy(); err != nil {
		t.Errorf("Healthy after a successful commit: got %v, want nil", err)
	}
}

func TestBatcherGroupCommit(t *testing.T) {
	t.Parallel()
	st := openSQLite(t)
	w := &wrapStore{Store: st}
	b := startBatcher(t, w, store.BatcherOptions{})

	const n = 200
	start := make(chan struct{})
	errs := make(chan error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			<-start
			_, err := b.Insert(timeout(t), newInsert(i))
			errs <- err
		})
	}
	close(start)
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Errorf("Insert: %v", err)
		}
	}
	calls := w.calls.Load()
	t.Logf("%d concurrent inserts took %d EventInsertMany calls", n, calls)
	if calls >= n {
		t.Errorf("got %d EventInsertMany calls for %d concurrent inserts, want fewer (group commit)", calls, n)
	}
	page, _, err := st.EventList(timeout(t), &store.EventListParams{Limit: store.MaxListLimit})
	if err != nil {
		t.Fatalf("EventList: %v", err)
	}
	if len(page) != n {
		t.Errorf("got %d stored events, want %d", len(page), n)
	}
}

// InsertBy stops waiting at its deadline (within a tick), with an
// EUnavailable error that wraps context.DeadlineExceeded, and an insert
// whose deadline has passed before the writer takes it is not stored.
func TestBatcherInsertByDeadline(t *testing.T) {
	t.Parallel()
	st := &wrapStore{Store: openSQLite(t), holdFirst: make(chan struct{}), entered: make(chan struct{})}
	b := startBatcher(t, st, store.BatcherOptions{})
	// The first commit hangs: everything behind it waits.
	go b.Insert(timeout(t), newInsert(0))
	<-st.entered
	const wait = 60 * time.Millisecond
	late := newInsert(1)
	start := time.Now()
	_, err := b.InsertBy(context.Background(), start.Add(wait), late)
	took := time.Since(start)
	if hookd.ErrorCode(err) != hookd.EUnavailable || !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("InsertBy past its deadline: got %v, want EUnavailable wrapping DeadlineExceeded", err)
	}
	if took < wait || took > wait+time.Second {
		t.Errorf("InsertBy returned after %v, want just after %v", took, wait)
	}
	close(st.holdFirst)
	// A deadline in the past fails at once.
	if _, err := b.InsertBy(context.Background(), time.Now().Add(-time.Second), newInsert(2)); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("InsertBy with a past deadline: got %v, want DeadlineExceeded", err)
	}
	// One in time is stored; the late one never is.
	ok := newInsert(3)
	if _, err := b.InsertBy(context.Background(), time.Now().Add(10*time.Second), ok); err != nil {
		t.Fatalf("InsertBy in time: %v", err)
	}
	wantStored(t, st, ok.Event.ID, true)
	wantStored(t, st, late.Event.ID, false)
}

// A group commit carries at most MaxBytes of bodies; an insert larger than
// that goes alone; every insert is stored.
func TestBatcherBoundsBatchBytes(t *testing.T) {
	t.Parallel()
	st := openSQLite(t)
	w := &wrapStore{Store: st}
	b := startBatcher(t, w, store.BatcherOptions{MaxBytes: 10 << 10})
	const n = 100
	var wg sync.WaitGroup
	ids := make([]string, n)
	for i := range n {
		in := newInsert(i)
		size := 1 << 10
		if i == 50 {
			size = 20 << 10 // larger than a whole batch
		}
		in.Event.Body = bytes.Repeat([]byte("x"), size)
		ids[i] = in.Event.ID
		wg.Go(func() {
			if _, err := b.Insert(timeout(t), in); err != nil {
				t.Errorf("Insert: %v", err)
			}
		})
	}
	wg.Wait()
	if got := w.maxBytes.Load(); got > 20<<10 {
		t.Errorf("a commit carried %d bytes of bodies, want at most the one large insert's %d", got, 20<<10)
	}
	for _, id := range ids {
		wantStored(t, st, id, true)
	}
	t.Logf("%d inserts of 1 KiB (one of 20 KiB) in %d commits of at most %d bytes", n, w.calls.Load(), w.maxBytes.Load())
}
