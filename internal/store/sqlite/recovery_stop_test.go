package sqlite

import (
	"os"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"hookd"
	"hookd/internal/store"
	"hookd/internal/store/wal"
)

// failingFS is the log's file system with a disk that fails on demand:
// fdatasync, and opening a file (so that a recovery cannot cut the log).
type failingFS struct {
	wal.FS
	syncFail, openFail atomic.Bool
}

func (f *failingFS) SyncFile(x wal.File) error {
	if f.syncFail.Load() {
		return syscall.EIO
	}
	return f.FS.SyncFile(x)
}

func (f *failingFS) OpenFile(name string, flag int, perm os.FileMode) (wal.File, error) {
	if f.openFail.Load() {
		return nil, &os.PathError{Op: "open", Path: name, Err: syscall.EIO}
	}
	return f.FS.OpenFile(name, flag, perm)
}

func insertExternal(t *testing.T, st *Store, id string) {
	t.Helper()
	if _, err := st.EventInsertMany(t.Context(), []*store.EventInsert{{DedupeWindow: time.Hour, Event: &hookd.Event{
		ID: hookd.EventIDPrefix + hookd.NewULID(time.Now()), Source: "s", ExternalID: id,
		ReceivedAt: time.Now(), Body: []byte(`{}`),
	}}}); err != nil {
		t.Fatal(err)
	}
}

// storedExternal lists the provider ids stored in dir, opened again on a
// healthy disk.
func storedExternal(t *testing.T, dir string) []string {
	t.Helper()
	st, err := Open(t.Context(), dir, testLogger(t), Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	evs, _, err := st.EventList(t.Context(), &store.EventListParams{Source: "s", Limit: 100})
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range evs {
		out = append(out, e.ExternalID)
	}
	return out
}

// An event whose sync failed (answered 503) is not stored after a stop
// while the disk still fails, so that the recovery never cut the log, and
// a start on a healthy disk.
func TestStopDuringRecoveryStoresNo503Event(t *testing.T) {
	dir := t.TempDir()
	fs := &failingFS{FS: wal.OS(nil, nil)}
	st, err := Open(t.Context(), dir, testLogger(t), Options{logFS: fs})
	if err != nil {
		t.Fatal(err)
	}
	insertExternal(t, st, "kept")
	if err := st.Sync(); err != nil {
		t.Fatal(err)
	}
	fs.syncFail.Store(true)
	fs.openFail.Store(true)
	insertExternal(t, st, "lost")
	m := st.Mark()
	if err := st.Sync(); err == nil {
		t.Fatal("sync passed on a failing disk")
	}
	if st.Durable(m) {
		t.Fatal("the batch of the failed sync is durable, want 503")
	}
	st.Close()
	fs.syncFail.Store(false)
	fs.openFail.Store(false)
	got := storedExternal(t, dir)
	if len(got) != 1 || got[0] != "kept" {
		t.Errorf("stored after the restart: %q, want only [kept] (lost was answered 503)", got)
	}
}

// The same with a stop right after the failed sync, whatever the
// recovery did meanwhile.
func TestStopRightAfterFailedSyncStoresNo503Event(t *testing.T) {
	for i := range 5 {
		dir := t.TempDir()
		fs := &failingFS{FS: wal.OS(nil, nil)}
		st, err := Open(t.Context(), dir, testLogger(t), Options{logFS: fs})
		if err != nil {
			t.Fatal(err)
		}
		insertExternal(t, st, "kept")
		if err := st.Sync(); err != nil {
			t.Fatal(err)
		}
		fs.syncFail.Store(true)
		insertExternal(t, st, "lost")
		if st.Sync() == nil {
			t.Fatal("sync passed on a failing disk")
		}
		st.Close()
		fs.syncFail.Store(false)
		if got := storedExternal(t, dir); len(got) != 1 || got[0] != "kept" {
			t.Errorf("run %d: stored after the restart: %q, want only [kept] (lost was answered 503)", i, got)
		}
	}
}
