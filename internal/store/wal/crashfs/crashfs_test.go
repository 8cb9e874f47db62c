package crashfs

import (
	"bytes"
	"errors"
	"os"
	"testing"
)

func mustWrite(t *testing.T, f interface {
	WriteAt([]byte, int64) (int, error)
}, b []byte, off int64) {
	t.Helper()
	if _, err := f.WriteAt(b, off); err != nil {
		t.Fatalf("WriteAt: %v", err)
	}
}

// TestWhatSurvives checks the model on its own: synced data and synced
// names survive, the rest does not, and the last write is at most a
// prefix of itself.
func TestWhatSurvives(t *testing.T) {
	for seed := range uint64(50) {
		fsys := New(Image{"/d": {"old": []byte("old data")}}, seed)
		synced, err := fsys.OpenFile("/d/synced", os.O_RDWR|os.O_CREATE, 0o600)
		if err != nil {
			t.Fatal(err)
		}
		mustWrite(t, synced, []byte("durable"), 0)
		if err := fsys.SyncFile(synced); err != nil {
			t.Fatal(err)
		}
		if err := fsys.SyncDir("/d"); err != nil {
			t.Fatal(err)
		}
		last := bytes.Repeat([]byte("x"), 3*PageSize)
		mustWrite(t, synced, last, 7)
		// A file whose data is synced but whose name is not.
		unnamed, err := fsys.OpenFile("/d/unnamed", os.O_RDWR|os.O_CREATE, 0o600)
		if err != nil {
			t.Fatal(err)
		}
		mustWrite(t, unnamed, []byte("lost"), 0)
		if err := fsys.SyncFile(unnamed); err != nil {
			t.Fatal(err)
		}
		// A rename and a removal never synced.
		if err := fsys.Rename("/d/synced", "/d/renamed"); err != nil {
			t.Fatal(err)
		}
		if err := fsys.Remove("/d/old"); err != nil {
			t.Fatal(err)
		}
		fsys.Crash()
		if _, err := fsys.OpenFile("/d/old", os.O_RDONLY, 0); !errors.Is(err, ErrCrashed) {
			t.Fatalf("open after the crash: got %v, want ErrCrashed", err)
		}
		img := fsys.Image()["/d"]
		if _, ok := img["unnamed"]; ok {
			t.Errorf("seed %d: a file whose name was never synced survived", seed)
		}
		if _, ok := img["renamed"]; ok {
			t.Errorf("seed %d: a rename never synced survived", seed)
		}
		if got := string(img["old"]); got != "old data" {
			t.Errorf("seed %d: removed file: got %q, want it back", seed, got)
		}
		got := img["synced"]
		if !bytes.HasPrefix(got, []byte("durable")) {
			t.Fatalf("seed %d: synced data: got %q, want it whole", seed, got[:min(len(got), 20)])
		}
		// Beyond the synced bytes: the last write's bytes (a prefix,
		// or whole pages), zeros (the size reached the disk), and
		// garbage in one page at most (the torn one).
		if len(got) > 7+len(last) {
			t.Errorf("seed %d: %d bytes, want at most %d", seed, len(got), 7+len(last))
		}
		torn := 0
		for p := 0; p*PageSize < len(got); p++ {
			for _, c := range got[max(7, p*PageSize):min(len(got), (p+1)*PageSize)] {
				if c != 'x' && c != 0 {
					torn++
					break
				}
			}
		}
		if torn > 1 {
			t.Errorf("seed %d: garbage in %d pages, want 1 at most", seed, torn)
		}
	}
}
