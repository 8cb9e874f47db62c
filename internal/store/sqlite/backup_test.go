package sqlite

import (
	"bytes"
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

// writeBackupFiles is a Backup's fn that lays the files out in dir.
func writeBackupFiles(dir string) func(BackupFile) error {
	return func(f BackupFile) error {
		path := filepath.Join(dir, filepath.FromSlash(f.Name))
		if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
			return err
		}
		var buf bytes.Buffer
		if err := f.Copy(&buf); err != nil {
			return err
		}
		if int64(buf.Len()) != f.Size {
			return fmt.Errorf("%s: copied %d bytes, announced %d", f.Name, buf.Len(), f.Size)
		}
		return os.WriteFile(path, buf.Bytes(), 0o600)
	}
}

// A backup spans many log segments while retention deletes the old
// events and would give their segments up: the copy holds the database
// as it was when the backup began, and every segment its rows point
// into, so that a store opened on the copy reads every event's body.
// Retention releases the segments once the backup is done.
func TestBackupKeepsSegmentsFromRetention(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	st, err := Open(t.Context(), dir, testLogger(t), Options{SegmentSize: 4096})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	ctx := t.Context()
	old := time.Now().Add(-48 * time.Hour)
	var events []*hookd.Event
	for i := range 60 {
		e := logEvent("s", fmt.Sprintf("e-%d", i), fmt.Sprintf(`{"n":%d,"pad":%q}`, i, strings.Repeat("p", 300)))
		if i < 50 {
			e.ReceivedAt = old
		}
		events = append(events, e)
		logInsert(t, st, e)
	}
	segs := func(d string) int {
		n, _ := filepath.Glob(filepath.Join(d, LogDir, "*.wal"))
		return len(n)
	}
	if n := segs(dir); n < 5 {
		t.Fatalf("got %d segments, want several (4 KiB each)", n)
	}
	maxSeq, err := st.EventMaxSeq(ctx)
	if err != nil {
		t.Fatal(err)
	}

	copyDir := t.TempDir()
	write := writeBackupFiles(copyDir)
	pruned := make(chan error, 1)
	started := false
	lsn, err := st.Backup(ctx, func(f BackupFile) error {
		if !started {
			// The database is copied: retention deletes the old
			// events now, and must not release their segments while
			// the backup copies them.
			started = true
			go func() {
				_, err := st.Prune(ctx, store.PruneParams{Before: time.Now().Add(-time.Hour), MaxSeq: maxSeq, Limit: 100})
				pruned <- err
			}()
			deadline := time.Now().Add(10 * time.Second)
			for {
				var n int
				if err := st.r.QueryRowContext(ctx, `SELECT count(*) FROM events`).Scan(&n); err != nil {
					return err
				}
				if n == 10 {
					break
				}
				if time.Now().After(deadline) {
					return fmt.Errorf("retention did not delete the old events within 10s (%d rows)", n)
				}
				time.Sleep(time.Millisecond)
			}
		}
		return write(f)
	})
	if err != nil {
		t.Fatalf("Backup: %v", err)
	}
	if err := <-pruned; err != nil {
		t.Fatalf("Prune: %v", err)
	}
	if n := segs(dir); n > 4 {
		t.Errorf("after the backup, retention left %d segments, want the old ones released", n)
	}
	if lsn < uint64(len(events)) {
		t.Errorf("Backup: copied up to record %d, want at least %d", lsn, len(events))
	}

	cp, err := Open(ctx, copyDir, testLogger(t), Options{SegmentSize: 4096})
	if err != nil {
		t.Fatalf("open the copy: %v", err)
	}
	defer cp.Close()
	for _, e := range events {
		got, err := cp.EventGet(ctx, e.ID)
		if err != nil {
			t.Errorf("the copy: event %s: %v", e.ExternalID, err)
			continue
		}
		if !bytes.Equal(got.Body, e.Body) || fmt.Sprint(got.Headers["X-N"]) != fmt.Sprint([]string{e.ExternalID}) {
			t.Errorf("the copy: event %s: body %.40q, header %q; want the original", e.ExternalID, got.Body, got.Headers["X-N"])
		}
	}
}

// An event logged but not yet indexed when a backup begins is in the
// backup (Backup waits for the indexer), and one logged after the backup
// is not.
func TestBackupWaitsForTheIndexer(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	st, err := Open(t.Context(), dir, testLogger(t), Options{IndexLinger: time.Hour, IndexBatch: 1 << 20})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	a := logEvent("s", "a", `{"a":1}`)
	logInsert(t, st, a)
	copyDir := t.TempDir()
	// The event logged but held out of SQLite (the indexer lingers an
	// hour) is in the backup: Backup waits for the indexer.
	lsn, err := st.Backup(t.Context(), writeBackupFiles(copyDir))
	if err != nil {
		t.Fatal(err)
	}
	b := logEvent("s", "b", `{"b":1}`)
	logInsert(t, st, b)
	if _, err := st.EventGet(t.Context(), b.ID); err != nil {
		t.Fatal(err)
	}
	cp, err := Open(t.Context(), copyDir, testLogger(t), Options{})
	if err != nil {
		t.Fatalf("open the copy: %v", err)
	}
	defer cp.Close()
	if got, err := cp.EventGet(t.Context(), a.ID); err != nil || string(got.Body) != `{"a":1}` {
		t.Errorf("the copy: event a: %v %v, want it with its body", got, err)
	}
	if _, err := cp.EventGet(t.Context(), b.ID); err == nil {
		t.Errorf("the copy holds event b, logged after the backup")
	}
	seg, err := os.ReadFile(filepath.Join(copyDir, LogDir, fmt.Sprintf("%020d.wal", 1)))
	if err != nil {
		t.Fatal(err)
	}
	if lsn != 1 || bytes.Contains(seg, []byte(`{"b":1}`)) {
		t.Errorf("the copy's log: up to record %d, holds b %v; want 1 and not", lsn, bytes.Contains(seg, []byte(`{"b":1}`)))
	}
}

// A second backup while one runs is refused at once (409), not queued
// behind a first whose client may be slow; it runs once the first ends.
func TestBackupOneAtATime(t *testing.T) {
	t.Parallel()
	st, err := Open(t.Context(), t.TempDir(), testLogger(t), Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	logInsert(t, st, logEvent("s", "a", `{"a":1}`))
	inFirst, release := make(chan struct{}), make(chan struct{})
	done := make(chan error, 1)
	go func() {
		_, err := st.Backup(t.Context(), func(f BackupFile) error {
			select {
			case <-inFirst:
			default:
				close(inFirst)
				<-release // a client that does not read
			}
			return f.Copy(io.Discard)
		})
		done <- err
	}()
	<-inFirst
	_, err = st.Backup(t.Context(), func(BackupFile) error { return nil })
	if hookd.ErrorCode(err) != hookd.EConflict {
		t.Fatalf("a second backup while one runs: got %v, want a conflict", err)
	}
	close(release)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if _, err := st.Backup(t.Context(), func(f BackupFile) error { return f.Copy(io.Discard) }); err != nil {
		t.Fatalf("a backup after the first ended: %v", err)
	}
}
