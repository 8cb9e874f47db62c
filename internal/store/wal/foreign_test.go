package wal

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// A segment whose header is none a crash can leave (garbage, another
// program's file) is damage when the caller has indexed records from it, or
// when a valid segment follows it: Replay refuses it, naming the file,
// instead of taking it for a spare and losing the records the store refers
// to. What a crash leaves (nothing, zeros, a half-written or stale hookd
// header) is still taken for a spare, and so is garbage in the newest
// segment past what was indexed: a power loss can tear a header before any
// sync covered it.
func TestReplayRefusesADamagedSegment(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		name    string
		header  []byte
		seg     int    // the segment overwritten: 1 holds records 1..10, 11 is new
		indexed uint64 // what the caller has indexed
		refuse  bool
	}{
		{"GarbageIndexed", []byte("this is not a hookd log segment at all\n"), 1, 10, true},
		{"ShortGarbageIndexed", []byte("garbage\n"), 1, 3, true},
		{"GarbageFollowedByAValidSegment", []byte("garbage\n"), 1, 0, true},
		{"GarbageNewestNotIndexed", []byte("garbage\n"), 11, 10, false},
		{"Empty", nil, 11, 10, false},
		{"Zeros", make([]byte, 64), 11, 10, false},
		{"HalfWrittenMagic", append([]byte(magic[:4]), make([]byte, 60)...), 11, 10, false},
		{"StaleHeader", segmentHeader(7, 99), 11, 10, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			l := openLog(t, dir, Options{NoPrealloc: true})
			l.Replay(0, noReplay)
			appendN(t, l, 1, 11, 5)
			l.Close()
			if c.name == "GarbageFollowedByAValidSegment" {
				// A restart appends to a new segment: 11..15 in segment 11.
				l := openLog(t, dir, Options{NoPrealloc: true})
				replayAll(t, l, 0)
				appendN(t, l, 11, 16, 5)
				l.Close()
			}
			path := filepath.Join(dir, fmt.Sprintf("%020d%s", c.seg, suffix))
			if err := os.WriteFile(path, c.header, 0o600); err != nil {
				t.Fatal(err)
			}
			l2 := openLog(t, dir, Options{NoPrealloc: true})
			_, err := l2.Replay(c.indexed, noReplay)
			l2.Close()
			if c.refuse {
				if err == nil {
					t.Fatalf("Replay(%d) with %q in %s: got nil, want an error naming it", c.indexed, c.header, path)
				}
				if !strings.Contains(err.Error(), path) {
					t.Errorf("Replay: got %q, want it to name %s", err, path)
				}
				return
			}
			if err != nil {
				t.Fatalf("Replay(%d) with what a crash leaves (%q) in %s: %v", c.indexed, c.header, path, err)
			}
			reopenHas(t, dir, Options{NoPrealloc: true}, 0, 1, 11).Close()
		})
	}
}

// Garbage over the header of the newest segment whose records were synced
// but not yet indexed is media damage, not a torn header (a synced header
// cannot be torn by a crash, and a torn one was its segment's last write):
// Replay refuses it, naming the file, and leaves the file where it is.
func TestReplayRefusesGarbageOverSyncedRecords(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	l := openLog(t, dir, Options{NoPrealloc: true})
	l.Replay(0, noReplay)
	appendN(t, l, 1, 11, 5)
	l.Close()
	l = openLog(t, dir, Options{NoPrealloc: true})
	replayAll(t, l, 0)
	appendN(t, l, 11, 16, 5) // synced: a store answers 200 for these
	l.Close()
	path := filepath.Join(dir, fmt.Sprintf("%020d%s", 11, suffix))
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteAt([]byte("garbage\n"), 0); err != nil { // the magic only
		t.Fatal(err)
	}
	f.Close()
	l2 := openLog(t, dir, Options{NoPrealloc: true})
	defer l2.Close()
	_, err = l2.Replay(10, noReplay) // the store had indexed through 10
	if err == nil || !strings.Contains(err.Error(), path) {
		t.Fatalf("Replay(10): got %v, want an error naming %s", err, path)
	}
	if _, err := os.Stat(path); err != nil {
		t.Fatalf("the damaged segment is gone: %v", err)
	}
}
