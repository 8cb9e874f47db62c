package sqlite

import (
	"bytes"
	"context"
	"database/sql"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"hookd"
	"hookd/internal/store"
	"hookd/internal/store/storetest"
)

func testLogger(t testing.TB) *slog.Logger {
	return slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelWarn}))
}

func openTest(t testing.TB, dir string, log *slog.Logger) *Store {
	t.Helper()
	st, err := Open(t.Context(), dir, log, Options{})
	if err != nil {
		t.Fatalf("Open(%s): %v", dir, err)
	}
	t.Cleanup(func() {
		if err := st.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return st
}

func TestConformance(t *testing.T) {
	t.Parallel()
	storetest.Run(t, func(t *testing.T) store.Store {
		return openTest(t, t.TempDir(), testLogger(t))
	})
}

func TestPragmas(t *testing.T) {
	t.Parallel()
	st := openTest(t, t.TempDir(), testLogger(t))
	ctx := t.Context()
	// Every pool the store uses: the writer commits, but the checkpointer
	// writes the database file and readers open their own connections.
	// The writer runs NORMAL because Sync (an fdatasync of the WAL before
	// any caller is answered) makes its commits durable; the others FULL.
	for _, db := range []struct {
		name     string
		db       *sql.DB
		wantSync int
	}{{"writer", st.w, 1}, {"readers", st.r, 2}, {"checkpointer", st.ckpt, 2}} {
		var mode string
		if err := db.db.QueryRowContext(ctx, "PRAGMA journal_mode").Scan(&mode); err != nil {
			t.Fatalf("%s: read journal_mode: %v", db.name, err)
		}
		if mode != "wal" {
			t.Errorf("%s: got journal_mode %q, want %q", db.name, mode, "wal")
		}
		var syncMode int
		if err := db.db.QueryRowContext(ctx, "PRAGMA synchronous").Scan(&syncMode); err != nil {
			t.Fatalf("%s: read synchronous: %v", db.name, err)
		}
		if syncMode != db.wantSync {
			t.Errorf("%s: got synchronous %d, want %d", db.name, syncMode, db.wantSync)
		}
	}
	var autoCkpt int
	if err := st.w.QueryRowContext(ctx, "PRAGMA wal_autocheckpoint").Scan(&autoCkpt); err != nil {
		t.Fatalf("read wal_autocheckpoint: %v", err)
	}
	if autoCkpt != 0 {
		t.Errorf("writer: got wal_autocheckpoint %d, want 0 (checkpoints stay out of commits)", autoCkpt)
	}

	// journal_mode is a property of the file: a connection of another
	// program sees it too.
	other, err := OpenFile(st.Path(), "")
	if err != nil {
		t.Fatalf("open second connection: %v", err)
	}
	defer other.Close()
	var mode string
	if err := other.QueryRowContext(ctx, "PRAGMA journal_mode").Scan(&mode); err != nil {
		t.Fatalf("second connection: read journal_mode: %v", err)
	}
	if mode != "wal" {
		t.Errorf("second connection: got journal_mode %q, want %q", mode, "wal")
	}
}

// lockedBuffer collects log output written from several goroutines.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func TestReopenKeepsEventsAndSkipsMigrations(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	ctx := t.Context()
	var log1 lockedBuffer
	st, err := Open(ctx, dir, slog.New(slog.NewTextHandler(io.MultiWriter(&log1, t.Output()), nil)), Options{})
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	if n := strings.Count(log1.String(), "applied migration"); n == 0 {
		t.Fatalf("first Open: got no \"applied migration\" log, want one per migration; log:\n%s", log1.String())
	}
	e := &hookd.Event{ID: hookd.EventIDPrefix + hookd.NewULID(time.Now()), Source: "src", ExternalID: "ext-1",
		ReceivedAt: time.Now(), Body: []byte("kept")}
	e.RequestID = hookd.RequestIDForEvent(e.ID)
	res, err := st.EventInsertMany(ctx, []*store.EventInsert{{Event: e, DedupeWindow: time.Hour}})
	if err != nil {
		t.Fatalf("EventInsertMany: %v", err)
	}
	if _, err := st.SettingGetOrCreate(ctx, "token", "first"); err != nil {
		t.Fatalf("SettingGetOrCreate: %v", err)
	}
	var applied1 []string
	rows, err := st.r.QueryContext(ctx, "SELECT version || ':' || applied_at FROM schema_migrations ORDER BY version")
	if err != nil {
		t.Fatalf("read schema_migrations: %v", err)
	}
	for rows.Next() {
		var s string
		if err := rows.Scan(&s); err != nil {
			t.Fatal(err)
		}
		applied1 = append(applied1, s)
	}
	rows.Close()
	if err := st.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}

	var log2 lockedBuffer
	st2 := openTest(t, dir, slog.New(slog.NewTextHandler(io.MultiWriter(&log2, t.Output()), nil)))
	if strings.Contains(log2.String(), "applied migration") {
		t.Errorf("second Open: got migrations applied again, want none; log:\n%s", log2.String())
	}
	var applied2 []string
	rows, err = st2.r.QueryContext(ctx, "SELECT version || ':' || applied_at FROM schema_migrations ORDER BY version")
	if err != nil {
		t.Fatalf("read schema_migrations: %v", err)
	}
	for rows.Next() {
		var s string
		if err := rows.Scan(&s); err != nil {
			t.Fatal(err)
		}
		applied2 = append(applied2, s)
	}
	rows.Close()
	if fmt.Sprint(applied2) != fmt.Sprint(applied1) {
		t.Errorf("schema_migrations after reopening: got %v, want unchanged %v", applied2, applied1)
	}

	got, err := st2.EventGet(ctx, e.ID)
	if err != nil {
		t.Fatalf("EventGet after reopening: %v", err)
	}
	if string(got.Body) != "kept" || got.Seq != res[0].Seq {
		t.Errorf("after reopening: got {Body:%q Seq:%d}, want {Body:%q Seq:%d}", got.Body, got.Seq, "kept", res[0].Seq)
	}
	if v, err := st2.SettingGetOrCreate(ctx, "token", "second"); err != nil || v != "first" {
		t.Errorf("setting after reopening: got %q, %v, want %q, nil", v, err, "first")
	}
	// Dedupe state survives too, and the log goes on after the old events.
	dup := &hookd.Event{ID: hookd.EventIDPrefix + hookd.NewULID(time.Now()), Source: "src", ExternalID: "ext-1",
		ReceivedAt: time.Now(), Body: []byte("again")}
	dup.RequestID = hookd.RequestIDForEvent(dup.ID)
	next := &hookd.Event{ID: hookd.EventIDPrefix + hookd.NewULID(time.Now()), Source: "src", ExternalID: "ext-2",
		ReceivedAt: time.Now(), Body: []byte("new")}
	next.RequestID = hookd.RequestIDForEvent(next.ID)
	res2, err := st2.EventInsertMany(ctx, []*store.EventInsert{{Event: dup, DedupeWindow: time.Hour}, {Event: next, DedupeWindow: time.Hour}})
	if err != nil {
		t.Fatalf("EventInsertMany after reopening: %v", err)
	}
	if !res2[0].Duplicate || res2[0].ID != e.ID {
		t.Errorf("same external id after reopening: got {ID:%s Duplicate:%v}, want {ID:%s Duplicate:true}", res2[0].ID, res2[0].Duplicate, e.ID)
	}
	if res2[1].Seq <= res[0].Seq {
		t.Errorf("new event after reopening: got Seq %d, want > %d", res2[1].Seq, res[0].Seq)
	}
}

// BenchmarkSQLiteInsert measures durable ingest through the group-commit
// batcher: 64 concurrent callers, 1 KiB bodies, unique external ids with the
// default dedupe window.
func BenchmarkSQLiteInsert(b *testing.B) {
	const callers = 64
	st, err := Open(b.Context(), b.TempDir(), testLogger(b), Options{})
	if err != nil {
		b.Fatalf("Open: %v", err)
	}
	defer st.Close()
	bt := store.NewBatcher(st, testLogger(b), store.BatcherOptions{})
	if err := bt.Start(b.Context()); err != nil {
		b.Fatalf("Start: %v", err)
	}
	defer bt.Stop(context.Background())
	body := bytes.Repeat([]byte("x"), 1024)
	headers := map[string][]string{"Content-Type": {"application/json"}, "User-Agent": {"bench/1"}}
	var (
		next   atomic.Int64
		failed atomic.Int64
		wg     sync.WaitGroup
	)
	b.ReportAllocs()
	b.ResetTimer()
	for range callers {
		wg.Go(func() {
			for {
				n := next.Add(1)
				if n > int64(b.N) {
					return
				}
				now := time.Now()
				e := &hookd.Event{ID: hookd.EventIDPrefix + hookd.NewULID(now), Source: "bench",
					ExternalID: fmt.Sprintf("bench-%d", n), Type: "bench.event", ReceivedAt: now,
					ContentType: "application/json", Headers: headers, Body: body}
				e.RequestID = hookd.RequestIDForEvent(e.ID)
				ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
				if _, err := bt.Insert(ctx, &store.EventInsert{Event: e, DedupeWindow: 168 * time.Hour}); err != nil {
					failed.Add(1)
				}
				cancel()
			}
		})
	}
	wg.Wait()
	b.StopTimer()
	if n := failed.Load(); n > 0 {
		b.Fatalf("%d of %d inserts failed", n, b.N)
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
}

// Sync makes inserts durable with an fdatasync of the write-ahead log;
// after a sync has failed, the store refuses further writes instead of
// acknowledging events whose pages the kernel may have dropped.
func TestSyncFailureIsSticky(t *testing.T) {
	t.Parallel()
	st := openTest(t, t.TempDir(), testLogger(t))
	ctx := t.Context()
	ins := func(id string) error {
		_, err := st.EventInsertMany(ctx, []*store.EventInsert{{Event: &hookd.Event{
			ID: hookd.EventIDPrefix + hookd.NewULID(time.Now()), Source: "s", ExternalID: id,
			ReceivedAt: time.Now(), Body: []byte("{}"),
		}}})
		return err
	}
	if err := ins("a"); err != nil {
		t.Fatalf("insert: %v", err)
	}
	if err := st.Sync(); err != nil {
		t.Fatalf("sync: %v", err)
	}
	// A failing disk: fdatasync answers EIO.
	eio := func(*os.File) error { return syscall.EIO }
	st.syncFile.Store(&eio)
	if err := ins("a2"); err != nil {
		t.Fatalf("insert before the failing sync: %v", err)
	}
	if err := st.Sync(); err == nil {
		t.Fatalf("sync on a broken descriptor: got nil, want an error")
	}
	if err := st.Sync(); err == nil {
		t.Errorf("second sync after a failure: got nil, want the same error (sticky)")
	}
	if err := ins("b"); hookd.ErrorCode(err) != hookd.EUnavailable {
		t.Errorf("insert after a failed sync: got %v, want an EUnavailable error", err)
	}
}

// TestSearchBench measures the bounded search on HOOKD_SEARCH_BENCH events
// (docs/BENCHMARKS.md); skipped unless it is set.
func TestSearchBench(t *testing.T) {
	n, _ := strconv.Atoi(os.Getenv("HOOKD_SEARCH_BENCH"))
	if n <= 0 {
		t.Skip("set HOOKD_SEARCH_BENCH=100000 to run")
	}
	storetest.SearchBench(t, openTest(t, t.TempDir(), testLogger(t)), n)
}
