package sqlite

import (
	"testing"
	"time"

	"hookd"
	"hookd/internal/store"
	"hookd/internal/store/wal"
)

// A recovery that drops an event gives its entity key back to the event
// before it; when that one is already indexed, SQLite holds its key, and
// no pending entry is left behind for it (one would outlive the row, and
// decide staleness after the row is gone).
func TestRecoveryLeavesNoPendingEntryForIndexedEvents(t *testing.T) {
	fs := &failingFS{FS: wal.OS(nil, nil)}
	st, err := Open(t.Context(), t.TempDir(), testLogger(t), Options{logFS: fs})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	at := time.Now()
	ins := func(id string, occurred time.Time) {
		t.Helper()
		if _, err := st.EventInsertMany(t.Context(), []*store.EventInsert{{DedupeWindow: time.Hour, Event: &hookd.Event{
			ID: hookd.EventIDPrefix + hookd.NewULID(time.Now()), Source: "s", ExternalID: id, Key: "order-1",
			OccurredAt: occurred, ReceivedAt: time.Now(), Body: []byte(`{}`),
		}}}); err != nil {
			t.Fatal(err)
		}
	}
	pending := func() int {
		st.pendMu.Lock()
		defer st.pendMu.Unlock()
		return len(st.pendKeys) + len(st.pendDedupe)
	}
	waitFor := func(what string, cond func() bool) {
		t.Helper()
		for deadline := time.Now().Add(30 * time.Second); !cond(); time.Sleep(time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatalf("timed out waiting for %s", what)
			}
		}
	}
	ins("a", at)
	if err := st.Sync(); err != nil {
		t.Fatal(err)
	}
	lsnA := st.logged.Load()
	fs.syncFail.Store(true)
	ins("b", at.Add(time.Second)) // takes the key over from a
	waitFor("a indexed", func() bool { return st.indexed.Load() >= lsnA })
	if st.Sync() == nil {
		t.Fatal("sync passed on a failing disk")
	}
	fs.syncFail.Store(false)
	waitFor("the recovery", func() bool { return st.Ready(t.Context()) == nil })
	if n := pending(); n != 0 {
		t.Errorf("after the recovery, with every kept event indexed: %d pending map entries, want 0", n)
	}
}
