package sqlite

import (
	"context"
	"os"
	"runtime"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"hookd/internal/fsutil"
)

// waitGoroutine waits until a goroutine's stack holds every one of fns.
func waitGoroutine(t *testing.T, fns ...string) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	buf := make([]byte, 1<<20)
	for {
		n := runtime.Stack(buf, true)
		for _, g := range strings.Split(string(buf[:n]), "\n\n") {
			all := true
			for _, fn := range fns {
				all = all && strings.Contains(g, fn)
			}
			if all {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("no goroutine in %v", fns)
		}
		time.Sleep(time.Millisecond)
	}
}

// A read that began while a batch was logged but not synced, and whose
// sync comes after a recovery dropped that batch, answers at once: it
// does not wait for a record that no longer exists.
func TestReadOverlappingRecoveryDoesNotWaitForDroppedRecords(t *testing.T) {
	var fail atomic.Bool
	st, err := Open(t.Context(), t.TempDir(), testLogger(t), Options{SyncFile: func(f *os.File) error {
		if fail.Load() {
			return syscall.EIO
		}
		return fsutil.Fdatasync(f)
	}})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	insertExternal(t, st, "a")
	if err := st.Sync(); err != nil {
		t.Fatal(err)
	}
	insertExternal(t, st, "b")
	// The batcher's sync of b, slow, then failing; the recovery it wakes
	// waits for it.
	st.syncOrder.Lock()
	fail.Store(true)
	st.wal.Sync()
	fail.Store(false)
	st.wakeRecovery()
	waitGoroutine(t, "(*Store).recoverLog(", "sync.(*Mutex).Lock")
	// A read arrives: it takes b's LSN as its target and waits to sync.
	done := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		defer cancel()
		done <- st.caughtUp(ctx)
	}()
	waitGoroutine(t, "(*Store).caughtUp(", "(*Store).Sync(")
	// The recovery goes first (it queued first), and drops b.
	st.syncOrder.Unlock()
	if err := <-done; err != nil {
		t.Errorf("read overlapping a recovery: %v, want nil (everything kept is indexed)", err)
	}
}
