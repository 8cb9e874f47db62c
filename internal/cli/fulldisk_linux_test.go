//go:build linux

package cli

import (
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"hookd/internal/store/sqlite"
)

// mountSmallTmpfs mounts a tmpfs of size at a new directory and unmounts
// it at cleanup. Without the privilege to mount it skips, unless
// HOOKD_TEST_REQUIRE_SERVICES=1 makes that a failure.
func mountSmallTmpfs(t *testing.T, size string) string {
	t.Helper()
	dir := t.TempDir()
	if err := syscall.Mount("tmpfs", dir, "tmpfs", 0, "size="+size); err != nil {
		msg := fmt.Sprintf("cannot mount a tmpfs at %s (needs root or CAP_SYS_ADMIN): %v", dir, err)
		if os.Getenv("HOOKD_TEST_REQUIRE_SERVICES") == "1" {
			t.Fatal(msg)
		}
		t.Skip(msg + "; set HOOKD_TEST_REQUIRE_SERVICES=1 to fail instead")
	}
	t.Cleanup(func() {
		if err := syscall.Unmount(dir, 0); err != nil {
			t.Errorf("unmount %s: %v", dir, err)
			syscall.Unmount(dir, syscall.MNT_DETACH)
		}
	})
	return dir
}

// fillUp writes zeros to path until the file system is full.
func fillUp(t *testing.T, path string) {
	t.Helper()
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	chunk := make([]byte, 64<<10)
	for len(chunk) > 0 {
		_, err := f.Write(chunk)
		if errors.Is(err, syscall.ENOSPC) {
			chunk = chunk[:len(chunk)/2] // fill the last pages too
			continue
		}
		if err != nil {
			t.Fatalf("write ballast: %v", err)
		}
	}
}

// holdDatabase keeps the database in dir open, with room taken in its
// WAL, until cleanup: as a crashed hookd leaves it.
func holdDatabase(t *testing.T, dir string) {
	t.Helper()
	db, err := sqlite.OpenFile(filepath.Join(dir, sqlite.FileName), "_journal_mode=WAL")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	db.SetMaxOpenConns(1)
	for _, q := range []string{
		"PRAGMA wal_autocheckpoint=0",
		"CREATE TABLE room (b BLOB)",
		"INSERT INTO room VALUES (randomblob(1048576))",
		"DROP TABLE room",
	} {
		if _, err := db.Exec(q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
}

// hookd started on a full disk opens (what it stored reads back) but is
// not ready and answers 503; once there is space again it becomes ready
// and answers 200, without a restart.
func TestFullDiskAtStartIsNotReadyUntilSpace(t *testing.T) {
	mnt := mountSmallTmpfs(t, "8m")
	data := filepath.Join(mnt, "data")
	c := &http.Client{Timeout: 30 * time.Second}

	base, stop := runApp(t, faultConfig(t, data, "2s"))
	if st := faultPost(t, c, base, "stored-before"); st != http.StatusOK {
		t.Fatalf("before the disk is full: got %d, want 200", st)
	}
	stop()

	// SQLite's own files already take their room, as after a crash: the
	// log is what finds the disk full.
	holdDatabase(t, data)
	ballast := filepath.Join(mnt, "ballast")
	fillUp(t, ballast)
	base, _ = runApp(t, faultConfig(t, data, "2s"))
	if st := faultReady(t, c, base); st != http.StatusServiceUnavailable {
		t.Errorf("GET /readyz on a full disk: got %d, want 503", st)
	}
	if st := faultPost(t, c, base, "while-full"); st != http.StatusServiceUnavailable {
		t.Errorf("POST on a full disk: got %d, want 503", st)
	}

	if err := os.Remove(ballast); err != nil {
		t.Fatal(err)
	}
	freed := time.Now()
	for faultReady(t, c, base) != http.StatusOK {
		if time.Since(freed) > 30*time.Second {
			t.Fatalf("GET /readyz: still not ready %v after space came back", time.Since(freed))
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Logf("ready %v after space came back, without a restart", time.Since(freed).Round(time.Millisecond))
	if st := faultPost(t, c, base, "after"); st != http.StatusOK {
		t.Errorf("POST once there is space: got %d, want 200", st)
	}
	stored := faultStored(t, c, base)
	for id, want := range map[string]bool{"stored-before": true, "while-full": false, "after": true} {
		if stored[id] != want {
			t.Errorf("event %s stored: got %v, want %v", id, stored[id], want)
		}
	}
}
