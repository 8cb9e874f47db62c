package sqlite

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"hookd"
	"hookd/internal/store"
)

// held opens a store whose indexer waits an hour for a batch: what is
// logged stays in the log until a read (or Close) asks for it.
func held(t *testing.T, dir string) *Store {
	t.Helper()
	st, err := Open(t.Context(), dir, testLogger(t), Options{IndexLinger: time.Hour, IndexBatch: 1 << 20})
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	return st
}

func logEvent(source, ext string, body string) *hookd.Event {
	now := time.Now()
	rid := hookd.RequestIDPrefix + hookd.NewULID(now)
	return &hookd.Event{ID: hookd.EventIDForRequest(rid), RequestID: rid, Source: source, ExternalID: ext,
		Type: "t", ReceivedAt: now, ContentType: "application/json",
		Headers: map[string][]string{"X-N": {ext}}, Body: []byte(body)}
}

func logInsert(t *testing.T, st *Store, es ...*hookd.Event) []store.EventInsertResult {
	t.Helper()
	ins := make([]*store.EventInsert, len(es))
	for i, e := range es {
		ins[i] = &store.EventInsert{Event: e, DedupeWindow: time.Hour}
	}
	res, err := st.EventInsertMany(t.Context(), ins)
	if err != nil {
		t.Fatalf("EventInsertMany: %v", err)
	}
	return res
}

// crashCopy copies the data directory as a crash would leave it: the
// files as they are, the process gone without a Close.
func crashCopy(t *testing.T, from string) string {
	t.Helper()
	to := t.TempDir()
	err := filepath.WalkDir(from, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(from, p)
		if d.IsDir() {
			return os.MkdirAll(filepath.Join(to, rel), 0o700)
		}
		src, err := os.Open(p)
		if err != nil {
			return err
		}
		defer src.Close()
		dst, err := os.Create(filepath.Join(to, rel))
		if err != nil {
			return err
		}
		defer dst.Close()
		_, err = io.Copy(dst, src)
		return err
	})
	if err != nil {
		t.Fatalf("copy %s: %v", from, err)
	}
	return to
}

// Events acknowledged (logged and synced) but not yet indexed when the
// process dies are indexed at the next start: readable with their bodies
// and headers, still deduplicated, their duplicates' request ids
// resolving, and seqs going on after them.
func TestLoggedEventsSurviveACrashBeforeIndexing(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	st := held(t, dir)
	defer st.Close()
	a, b := logEvent("s", "ext-a", `{"a":1}`), logEvent("s", "ext-b", `{"b":2}`)
	res := logInsert(t, st, a, b)
	dupOfA := logEvent("s", "ext-a", `{"a":"again"}`)
	dres := logInsert(t, st, dupOfA)
	if !dres[0].Duplicate || dres[0].ID != a.ID {
		t.Fatalf("duplicate before indexing: got %+v, want a duplicate of %s", dres[0], a.ID)
	}
	if err := st.Sync(); err != nil {
		t.Fatal(err)
	}
	if n := st.indexed.Load(); n != 0 {
		t.Fatalf("indexed through LSN %d before the copy, want 0 (the indexer held back)", n)
	}
	copied := crashCopy(t, dir)

	st2 := openTest(t, copied, testLogger(t))
	for i, e := range []*hookd.Event{a, b} {
		got, err := st2.EventGet(t.Context(), e.ID)
		if err != nil {
			t.Fatalf("EventGet(%s) after the crash: %v", e.ID, err)
		}
		if got.Seq != res[i].Seq || !bytes.Equal(got.Body, e.Body) || got.Headers["X-N"][0] != e.ExternalID {
			t.Errorf("event %s after the crash: got seq %d body %q headers %v, want seq %d body %q", e.ID, got.Seq, got.Body, got.Headers, res[i].Seq, e.Body)
		}
	}
	if r, err := st2.RequestGet(t.Context(), dupOfA.RequestID); err != nil || !r.Duplicate || r.EventID != a.ID {
		t.Errorf("RequestGet(duplicate) after the crash: got %+v, %v; want a duplicate of %s", r, err, a.ID)
	}
	again := logInsert(t, st2, logEvent("s", "ext-b", `{}`), logEvent("s", "ext-c", `{}`))
	if !again[0].Duplicate || again[0].ID != b.ID {
		t.Errorf("ext-b after the crash: got %+v, want a duplicate of %s", again[0], b.ID)
	}
	if again[1].Seq <= res[1].Seq {
		t.Errorf("a new event after the crash: got seq %d, want > %d", again[1].Seq, res[1].Seq)
	}
}

// A crash in the middle of a log write leaves a torn record: the events
// before it are indexed at the next start, the torn one (never
// acknowledged) is not, and its LSN and seq are used again.
func TestTornLogTailIsDropped(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	st := held(t, dir)
	defer st.Close()
	first := logEvent("s", "one", `{"n":1}`)
	logInsert(t, st, first)
	torn := logEvent("s", "two", `{"n":2,"pad":"`+strings.Repeat("x", 500)+`"}`)
	logInsert(t, st, torn)
	if err := st.Sync(); err != nil {
		t.Fatal(err)
	}
	copied := crashCopy(t, dir)
	// Cut the last record in half.
	segs, _ := filepath.Glob(filepath.Join(copied, LogDir, "*.wal"))
	if len(segs) != 1 {
		t.Fatalf("got segments %v, want one", segs)
	}
	fi, _ := os.Stat(segs[0])
	if err := os.Truncate(segs[0], fi.Size()-300); err != nil {
		t.Fatal(err)
	}
	st2 := openTest(t, copied, testLogger(t))
	if _, err := st2.EventGet(t.Context(), first.ID); err != nil {
		t.Errorf("the whole record before the torn one: %v", err)
	}
	if _, err := st2.EventGet(t.Context(), torn.ID); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("the torn record: got %v, want ErrNotFound", err)
	}
	// Its provider id is free again.
	if r := logInsert(t, st2, logEvent("s", "two", `{}`)); r[0].Duplicate {
		t.Errorf("the torn event's provider id: got a duplicate of %s, want a new event", r[0].ID)
	}
}

// When the indexer cannot write (here a trigger refuses every insert, as
// a full disk would), new events are refused with EUnavailable instead of
// piling up in the log, reads fail at once with the cause rather than
// answer without the events they cannot see, and once it can write again
// everything acknowledged is indexed and events are accepted.
func TestIndexerFailureRefusesEventsUntilItRecovers(t *testing.T) {
	t.Parallel()
	st := openTest(t, t.TempDir(), testLogger(t))
	ctx := t.Context()
	before := logEvent("s", "before", `{}`)
	logInsert(t, st, before)
	if _, err := st.EventGet(ctx, before.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := st.w.ExecContext(ctx, `CREATE TRIGGER refuse BEFORE INSERT ON events BEGIN SELECT RAISE(FAIL, 'no room'); END`); err != nil {
		t.Fatal(err)
	}
	pending := logEvent("s", "pending", `{}`)
	logInsert(t, st, pending) // logged: the failure shows when it is indexed
	st.Sync()
	st.wakeIndexer(true)
	deadline := time.Now().Add(10 * time.Second)
	var err error
	for time.Now().Before(deadline) {
		_, err = st.EventInsertMany(ctx, []*store.EventInsert{{Event: logEvent("s", "refused", `{}`)}})
		if err != nil {
			break
		}
		time.Sleep(10 * time.Millisecond) // polling for the indexer's failure
	}
	if hookd.ErrorCode(err) != hookd.EUnavailable || !strings.Contains(err.Error(), "no room") {
		t.Fatalf("insert while the indexer fails: got %v, want EUnavailable naming the cause", err)
	}
	// Reads do not wait for a failing indexer, nor answer without what
	// it has not indexed.
	readCtx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	start := time.Now()
	_, err = st.EventGet(readCtx, before.ID)
	if hookd.ErrorCode(err) != hookd.EUnavailable || !strings.Contains(err.Error(), "no room") || time.Since(start) > time.Second {
		t.Errorf("read while the indexer fails: got %v after %v, want EUnavailable naming the cause at once", err, time.Since(start))
	}
	if _, err := st.w.ExecContext(ctx, `DROP TRIGGER refuse`); err != nil {
		t.Fatal(err)
	}
	for time.Now().Before(deadline) {
		if _, err = st.EventInsertMany(ctx, []*store.EventInsert{{Event: logEvent("s", "after", `{}`)}}); err == nil {
			break
		}
		time.Sleep(10 * time.Millisecond) // polling for the indexer's recovery
	}
	if err != nil {
		t.Fatalf("insert after the indexer recovered: %v", err)
	}
	if _, err := st.EventGet(ctx, pending.ID); err != nil {
		t.Errorf("the event logged while the indexer failed: %v", err)
	}
}

// Retention releases the log segments whose events are all deleted; the
// events left keep their bodies.
func TestPruneReleasesLogSegments(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	st, err := Open(t.Context(), dir, testLogger(t), Options{SegmentSize: 4096})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	ctx := t.Context()
	old := time.Now().Add(-48 * time.Hour)
	var olds []*hookd.Event
	for i := range 40 {
		e := logEvent("s", fmt.Sprintf("old-%d", i), `{"pad":"`+strings.Repeat("o", 400)+`"}`)
		e.ReceivedAt = old
		olds = append(olds, e)
		logInsert(t, st, e)
	}
	young := logEvent("s", "young", `{"kept":true}`)
	logInsert(t, st, young)
	st.Sync()
	files := func() int {
		n, _ := filepath.Glob(filepath.Join(dir, LogDir, "*.wal"))
		return len(n)
	}
	before := files()
	if before < 5 {
		t.Fatalf("got %d segments, want several (4 KiB each)", before)
	}
	maxSeq, err := st.EventMaxSeq(ctx)
	if err != nil {
		t.Fatal(err)
	}
	p := store.PruneParams{Before: time.Now().Add(-time.Hour), MaxSeq: maxSeq, Limit: 100}
	r, err := st.Prune(ctx, p)
	if err != nil {
		t.Fatalf("Prune: %v", err)
	}
	if r.Events != 40 {
		t.Fatalf("Prune: deleted %d events, want 40", r.Events)
	}
	after := files()
	var live int
	if err := st.r.QueryRowContext(ctx, `SELECT count(*) FROM log_segments`).Scan(&live); err != nil {
		t.Fatal(err)
	}
	t.Logf("segment files: %d before the prune, %d after; segments holding events: %d", before, after, live)
	if live > 2 { // the one the young event is in, and maybe the active one
		t.Errorf("segments holding events after the prune: %d, want at most 2", live)
	}
	if after > live+2 { // up to two released ones kept as spares
		t.Errorf("segment files: %d before the prune, %d after, want the old ones released (at most 2 kept as spares)", before, after)
	}
	got, err := st.EventGet(ctx, young.ID)
	if err != nil || string(got.Body) != `{"kept":true}` {
		t.Errorf("the young event after the prune: got %v, %v", got, err)
	}
	if _, err := st.EventGet(ctx, olds[0].ID); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("a pruned event: got %v, want ErrNotFound", err)
	}
	// New events still go in, reusing what was released.
	for i := range 40 {
		logInsert(t, st, logEvent("s", fmt.Sprintf("new-%d", i), `{"pad":"`+strings.Repeat("n", 400)+`"}`))
	}
	st.Close()
	st2 := openTest(t, dir, testLogger(t))
	if got, err := st2.EventGet(ctx, young.ID); err != nil || string(got.Body) != `{"kept":true}` {
		t.Errorf("the young event after a restart: got %v, %v", got, err)
	}
}

// A database written before the log existed keeps its events readable:
// their bodies and headers are in their rows.
func TestRowsFromBeforeTheLogKeepTheirBodies(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	ctx := t.Context()
	st, err := Open(ctx, dir, testLogger(t), Options{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := st.w.ExecContext(ctx, `INSERT INTO events (seq, id, source, received_at, headers, body) VALUES
		(1000, 'evt_01J00000000000000000000000', 's', 1, '{"X-Old":["yes"]}', x'7b7d')`); err != nil {
		t.Fatal(err)
	}
	st.Close()
	st = openTest(t, dir, testLogger(t))
	got, err := st.EventGet(ctx, "evt_01J00000000000000000000000")
	if err != nil {
		t.Fatal(err)
	}
	if string(got.Body) != "{}" || got.Headers["X-Old"][0] != "yes" {
		t.Errorf("an event stored in its row: got body %q headers %v", got.Body, got.Headers)
	}
	// New events come after it.
	if r := logInsert(t, st, logEvent("s", "new", `{}`)); r[0].Seq <= 1000 {
		t.Errorf("a new event: got seq %d, want > 1000", r[0].Seq)
	}
}
