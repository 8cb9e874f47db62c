package wal

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// A segment whose header is none a crash can leave (garbage, another
// program's file) is damage: Open refuses it, naming the file, instead of
// taking it for a spare and losing the records the store refers to. What
// a crash leaves (nothing, zeros, a half-written or stale hookd header)
// is still taken for a spare.
func TestOpenRefusesAForeignSegment(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		name   string
		header []byte
		refuse bool
	}{
		{"Garbage", []byte("this is not a hookd log segment at all\n"), true},
		{"ShortGarbage", []byte("garbage\n"), true},
		{"Empty", nil, false},
		{"Zeros", make([]byte, 64), false},
		{"HalfWrittenMagic", append([]byte(magic[:4]), make([]byte, 60)...), false},
		{"StaleHeader", segmentHeader(7, 99), false},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			l := openLog(t, dir, Options{NoPrealloc: true})
			l.Replay(0, noReplay)
			appendN(t, l, 1, 11, 5)
			l.Close()
			path := filepath.Join(dir, fmt.Sprintf("%020d%s", 11, suffix))
			if err := os.WriteFile(path, c.header, 0o600); err != nil {
				t.Fatal(err)
			}
			l2, err := Open(dir, Options{NoPrealloc: true})
			if c.refuse {
				if err == nil {
					l2.Close()
					t.Fatalf("Open with %q in %s: got nil, want an error naming it", c.header, path)
				}
				if !strings.Contains(err.Error(), path) {
					t.Errorf("Open: got %q, want it to name %s", err, path)
				}
				return
			}
			if err != nil {
				t.Fatalf("Open with what a crash leaves (%q) in %s: %v", c.header, path, err)
			}
			l2.Close()
			reopenHas(t, dir, Options{NoPrealloc: true}, 0, 1, 11).Close()
		})
	}
}
