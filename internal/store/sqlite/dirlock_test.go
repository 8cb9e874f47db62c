//go:build unix

package sqlite

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// A data directory is one process's: a second Open while the first store
// is open is refused at once, naming the holder, and leaves the first
// store working; once the first closes, the directory opens again.
func TestSecondOpenOfADataDirectoryIsRefused(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	st, err := Open(t.Context(), dir, testLogger(t), Options{})
	if err != nil {
		t.Fatal(err)
	}
	closed := false
	defer func() {
		if !closed {
			st.Close()
		}
	}()
	insertExternal(t, st, "before")
	if err := st.Sync(); err != nil {
		t.Fatal(err)
	}

	start := time.Now()
	second, err := Open(t.Context(), dir, testLogger(t), Options{})
	took := time.Since(start)
	if err == nil {
		second.Close()
		t.Fatal("a second Open of the data directory succeeded while the first store is open, want it refused")
	}
	t.Logf("refused after %v: %v", took.Round(time.Millisecond), err)
	var inUse *inUseError
	if !errors.As(err, &inUse) {
		t.Errorf("second Open: got %v, want the directory-in-use error", err)
	}
	for _, want := range []string{
		fmt.Sprintf("another hookd serve (pid %d) is using the data directory %s", os.Getpid(), dir),
		"one process per SQLite data directory",
		"PostgreSQL",
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("second Open: %q does not say %q", err, want)
		}
	}
	if took > 5*time.Second {
		t.Errorf("second Open took %v to be refused, want about %v", took, lockWait)
	}

	// The refused Open touched nothing of the first store's.
	insertExternal(t, st, "after")
	if err := st.Sync(); err != nil {
		t.Fatalf("the first store after the refused Open: %v", err)
	}
	closed = true
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
	got := storedExternal(t, dir) // opens the directory again
	slices.Sort(got)
	if !slices.Equal(got, []string{"after", "before"}) {
		t.Errorf("stored after the first store closed: %q, want [after before]", got)
	}
}

// An Open that fails after it took the data directory gives it up: the
// next Open is not refused as if a process still held it.
func TestFailedOpenReleasesTheDataDirectory(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	db := filepath.Join(dir, FileName)
	if err := os.Mkdir(db, 0o700); err != nil {
		t.Fatal(err)
	}
	st, err := Open(t.Context(), dir, testLogger(t), Options{})
	if err == nil {
		st.Close()
		t.Fatal("Open succeeded with hookd.db a directory")
	}
	if err := os.Remove(db); err != nil {
		t.Fatal(err)
	}
	st, err = Open(t.Context(), dir, testLogger(t), Options{})
	if err != nil {
		t.Fatalf("Open after a failed Open: %v", err)
	}
	st.Close()
}
