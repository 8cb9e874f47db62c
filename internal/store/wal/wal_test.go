package wal

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// payload is the body of record n in these tests.
func payload(n int) []byte {
	return bytes.Repeat([]byte{byte(n)}, 100+n%50)
}

func noReplay(lsn, seg uint64, off int64, p []byte) error { return nil }

func openLog(t *testing.T, dir string, opt Options) *Log {
	t.Helper()
	l, err := Open(dir, opt)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { l.Close() })
	return l
}

// replayAll replays everything after after and returns the LSNs and
// payloads read.
func replayAll(t *testing.T, l *Log, after uint64) (lsns []uint64, payloads [][]byte) {
	t.Helper()
	if _, err := l.Replay(after, func(lsn, seg uint64, off int64, p []byte) error {
		lsns = append(lsns, lsn)
		payloads = append(payloads, bytes.Clone(p))
		return nil
	}); err != nil {
		t.Fatalf("Replay(%d): %v", after, err)
	}
	return lsns, payloads
}

// appendN appends records from..to-1 (payload(n) each) in batches of per.
func appendN(t *testing.T, l *Log, from, to, per int) {
	t.Helper()
	var b Batch
	for n := from; n < to; {
		b.Reset()
		for i := 0; i < per && n < to; i, n = i+1, n+1 {
			b.Done(append(b.Next(), payload(n)...))
		}
		if _, _, _, err := l.Append(&b); err != nil {
			t.Fatalf("Append: %v", err)
		}
	}
	if err := l.Sync(); err != nil {
		t.Fatalf("Sync: %v", err)
	}
}

// written makes a log in dir holding records 1..to-1, appended per at a
// time, synced, and closes it. It returns the path of the last segment.
func written(t *testing.T, dir string, opt Options, to, per int) string {
	t.Helper()
	l := openLog(t, dir, opt)
	l.Replay(0, noReplay)
	appendN(t, l, 1, to, per)
	path := l.segs[len(l.segs)-1].path
	l.Close()
	return path
}

// reopenHas opens the log in dir again (as after a restart) and checks
// that it replays, after LSN after, exactly the records from..to-1.
func reopenHas(t *testing.T, dir string, opt Options, after uint64, from, to int) *Log {
	t.Helper()
	l := openLog(t, dir, opt)
	lsns, ps := replayAll(t, l, after)
	checkRecords(t, lsns, ps, from, to)
	return l
}

func checkRecords(t *testing.T, lsns []uint64, payloads [][]byte, from, to int) {
	t.Helper()
	if len(lsns) != to-from {
		t.Fatalf("got %d records, want %d (LSNs %d to %d)", len(lsns), to-from, from, to-1)
	}
	for i, lsn := range lsns {
		n := from + i
		if lsn != uint64(n) {
			t.Fatalf("record %d: got LSN %d, want %d", i, lsn, n)
		}
		if !bytes.Equal(payloads[i], payload(n)) {
			t.Fatalf("record %d: payload differs", n)
		}
	}
}

func TestAppendReplayAcrossSegments(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	l := openLog(t, dir, Options{SegmentSize: 4096})
	if last, err := l.Replay(0, noReplay); err != nil || last != 0 {
		t.Fatalf("Replay of an empty log: got %d, %v; want 0, nil", last, err)
	}
	if got := l.NextLSN(); got != 1 {
		t.Fatalf("NextLSN of an empty log: got %d, want 1", got)
	}
	appendN(t, l, 1, 301, 7)
	if n := l.Files(); n < 5 {
		t.Fatalf("got %d segments for ~45 KiB at 4 KiB each, want several", n)
	}
	l.Close()

	l2 := reopenHas(t, dir, Options{SegmentSize: 4096}, 0, 1, 301)
	if got := l2.NextLSN(); got != 301 {
		t.Fatalf("NextLSN after reopening: got %d, want 301", got)
	}
	// Appends go on from there, and a replay after a point reads only
	// what follows it.
	appendN(t, l2, 301, 320, 5)
	l2.Close()
	reopenHas(t, dir, Options{SegmentSize: 4096}, 250, 251, 320)
}

func TestReplayStopsAtATornTail(t *testing.T) {
	t.Parallel()
	for _, cut := range []int{1, RecordHeaderSize - 1, RecordHeaderSize, RecordHeaderSize + 10} {
		t.Run(fmt.Sprintf("Cut%d", cut), func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			path := written(t, dir, Options{}, 11, 10)
			// The last record is cut short: a write a crash interrupted.
			st, _ := os.Stat(path)
			last := int64(RecordHeaderSize + len(payload(10)))
			if err := os.Truncate(path, st.Size()-last+int64(cut)); err != nil {
				t.Fatal(err)
			}
			l2 := reopenHas(t, dir, Options{}, 0, 1, 10)
			if got := l2.NextLSN(); got != 10 {
				t.Errorf("NextLSN: got %d, want 10 (the torn record's LSN is reused)", got)
			}
			// New records never continue the torn segment.
			appendN(t, l2, 10, 13, 3)
			l2.Close()
			reopenHas(t, dir, Options{}, 0, 1, 13)
		})
	}
}

func TestReplayStopsAtACorruptRecord(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	path := written(t, dir, Options{}, 21, 20)
	// Flip one bit in the payload of record 8.
	off := int64(segmentHeaderSize)
	for n := 1; n < 8; n++ {
		off += RecordHeaderSize + int64(len(payload(n)))
	}
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	var b [1]byte
	f.ReadAt(b[:], off+RecordHeaderSize+3)
	b[0] ^= 0x10
	f.WriteAt(b[:], off+RecordHeaderSize+3)
	f.Close()
	reopenHas(t, dir, Options{}, 0, 1, 8)
}

// Released segments are reused: renamed, with a new epoch, so that their
// old records do not read as new ones, even when a crash comes right
// after the rename.
func TestSparesAreReused(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	l := openLog(t, dir, Options{SegmentSize: 2048, Spares: 2, NoPrealloc: true})
	l.Replay(0, noReplay)
	appendN(t, l, 1, 61, 4)
	before := l.Files()
	release := func(upTo uint64) {
		for _, s := range l.Sealed() {
			if s.Last <= upTo {
				if err := l.Release(s.First); err != nil {
					t.Fatalf("Release(%d): %v", s.First, err)
				}
			}
		}
	}
	release(40)
	appendN(t, l, 61, 121, 4)
	release(100)
	names, _ := os.ReadDir(dir)
	if len(names) > before+2 {
		t.Errorf("got %d segment files after releasing and appending as much again, want at most %d (spares reused)", len(names), before+2)
	}
	l.Close()
	l2 := reopenHas(t, dir, Options{SegmentSize: 2048, Spares: 2, NoPrealloc: true}, 100, 101, 121)
	l2.Close()

	// A spare renamed for LSN 121, whose header was not rewritten before
	// a crash: it holds no records, and replay still ends at 120.
	// A released segment is kept under a spare's name, with its old
	// records.
	var spare string
	for _, n := range mustReadDir(t, dir) {
		if strings.HasSuffix(n, prepSuffix) {
			spare = filepath.Join(dir, n)
		}
	}
	if spare == "" {
		t.Fatal("no segment with only old records left to play the spare")
	}
	if err := os.Rename(spare, filepath.Join(dir, fmt.Sprintf("%020d%s", 121, suffix))); err != nil {
		t.Fatal(err)
	}
	l3 := reopenHas(t, dir, Options{SegmentSize: 2048, Spares: 2, NoPrealloc: true}, 100, 101, 121)
	if got := l3.NextLSN(); got != 121 {
		t.Errorf("NextLSN: got %d, want 121", got)
	}
	appendN(t, l3, 121, 130, 3)
	l3.Close()
	reopenHas(t, dir, Options{SegmentSize: 2048, Spares: 2, NoPrealloc: true}, 100, 101, 130)
}

// ReadRecord finds a record where Append or Replay said it is, across
// more segments than stay open, and refuses one that is gone.
func TestReadRecord(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	l := openLog(t, dir, Options{SegmentSize: 1024, Spares: 1})
	l.Replay(0, noReplay)
	type loc struct {
		seg uint64
		off int64
	}
	at := map[uint64]loc{}
	var b Batch
	for n := 1; n < 400; {
		b.Reset()
		for i := 0; i < 3 && n < 400; i, n = i+1, n+1 {
			b.Done(append(b.Next(), payload(n)...))
		}
		first, seg, off, err := l.Append(&b)
		if err != nil {
			t.Fatal(err)
		}
		for i := range b.Len() {
			at[first+uint64(i)] = loc{seg, off + b.Offset(i)}
		}
	}
	l.Sync()
	if l.Files() <= openReaders {
		t.Fatalf("got %d segments, want more than the %d kept open", l.Files(), openReaders)
	}
	for round := range 2 {
		for lsn := uint64(1); lsn < 400; lsn++ {
			got, p, err := l.ReadRecord(at[lsn].seg, at[lsn].off)
			if err != nil {
				t.Fatalf("round %d: ReadRecord(%d): %v", round, lsn, err)
			}
			if got != lsn || !bytes.Equal(p, payload(int(lsn))) {
				t.Fatalf("ReadRecord(%d): payload differs", lsn)
			}
		}
	}
	// A place where no record starts, and a released segment, are gone.
	if _, _, err := l.ReadRecord(at[5].seg, at[5].off+3); !errors.Is(err, ErrGone) {
		t.Errorf("ReadRecord off a record's start: got %v, want ErrGone", err)
	}
	first := l.Sealed()[0]
	if err := l.Release(first.First); err != nil {
		t.Fatal(err)
	}
	if _, _, err := l.ReadRecord(at[1].seg, at[1].off); !errors.Is(err, ErrGone) {
		t.Errorf("ReadRecord in a released segment: got %v, want ErrGone", err)
	}
	// The same locations after a restart, as Replay reports them.
	l.Close()
	l2 := openLog(t, dir, Options{SegmentSize: 1024})
	n := 0
	if _, err := l2.Replay(200, func(lsn, seg uint64, off int64, p []byte) error {
		if (loc{seg, off}) != at[lsn] {
			t.Errorf("Replay: record %d at %d/%d, Append said %d/%d", lsn, seg, off, at[lsn].seg, at[lsn].off)
		}
		n++
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if n != 199 {
		t.Errorf("Replay after 200: got %d records, want 199", n)
	}
	for lsn := uint64(101); lsn < 400; lsn += 37 {
		if _, _, err := l2.ReadRecord(at[lsn].seg, at[lsn].off); err != nil {
			t.Errorf("after reopening: ReadRecord(%d): %v", lsn, err)
		}
	}
}

// With no spare left, the next segment is prepared in the background once
// the active one is half full: zeros up to the segment size, so that
// appends overwrite allocated blocks; a restart adopts a prepared file as
// a spare.
func TestNextSegmentIsPrepared(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	const size = 64 << 10
	l := openLog(t, dir, Options{SegmentSize: size})
	l.Replay(0, noReplay)
	appendN(t, l, 1, 3, 2)
	if l.Files() != 1 {
		t.Fatalf("got %d files after a small append, want 1 (no spare before half a segment)", l.Files())
	}
	appendN(t, l, 3, 300, 10) // ~37 KiB: past half
	waitSpare := func(l *Log) *segment {
		t.Helper()
		for range 500 {
			l.mu.Lock()
			var s *segment
			if len(l.spares) > 0 {
				s = l.spares[0]
			}
			l.mu.Unlock()
			if s != nil {
				return s
			}
			time.Sleep(2 * time.Millisecond) // polling the background preparation
		}
		t.Fatal("no spare prepared within a second")
		return nil
	}
	sp := waitSpare(l)
	if fi, err := os.Stat(sp.path); err != nil || fi.Size() != size {
		t.Fatalf("prepared spare %s: got %v, %v; want %d bytes", sp.path, fi, err, size)
	}
	appendN(t, l, 300, 600, 10) // past the end of the first segment
	l.mu.Lock()
	act := l.active
	l.mu.Unlock()
	if act.path == l.segs[0].path || act.grown != size {
		t.Errorf("the second segment: got %d bytes allocated, want %d (the prepared spare)", act.grown, size)
	}
	l.Close()
	reopenHas(t, dir, Options{SegmentSize: size}, 0, 1, 600)
}

func mustReadDir(t *testing.T, dir string) []string {
	t.Helper()
	es, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range es {
		out = append(out, e.Name())
	}
	slices.Sort(out)
	return out
}

func firstOf(t *testing.T, name string) uint64 {
	t.Helper()
	var n uint64
	if _, err := fmt.Sscanf(name, "%020d.wal", &n); err != nil {
		t.Fatalf("segment name %s: %v", name, err)
	}
	return n
}

// A segment that disappeared from the middle of the log is an error, not
// a silent loss of acknowledged records.
func TestReplayReportsAGap(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	written(t, dir, Options{SegmentSize: 1024, NoPrealloc: true}, 60, 3)
	names := mustReadDir(t, dir)
	if len(names) < 4 {
		t.Fatalf("got %d segments, want at least 4", len(names))
	}
	os.Remove(filepath.Join(dir, names[2]))
	l2 := openLog(t, dir, Options{SegmentSize: 1024, NoPrealloc: true})
	_, err := l2.Replay(0, noReplay)
	if err == nil {
		t.Fatal("Replay over a missing segment: got nil, want an error naming the missing records")
	}
	t.Logf("as expected: %v", err)
	// Past the gap (records indexed already), the log opens.
	l3 := openLog(t, dir, Options{SegmentSize: 1024, NoPrealloc: true})
	if _, err := l3.Replay(firstOf(t, names[3])-1, noReplay); err != nil {
		t.Fatalf("Replay after the gap: %v", err)
	}
}

func TestSyncFailureIsSticky(t *testing.T) {
	t.Parallel()
	fail := false
	l := openLog(t, t.TempDir(), Options{SyncFile: func(f *os.File) error {
		if fail {
			return syscall.EIO
		}
		return f.Sync()
	}})
	l.Replay(0, noReplay)
	appendN(t, l, 1, 5, 2)
	fail = true
	var b Batch
	b.Done(append(b.Next(), "x"...))
	if _, _, _, err := l.Append(&b); err != nil {
		t.Fatalf("Append before the failing sync: %v", err)
	}
	if err := l.Sync(); !errors.Is(err, syscall.EIO) {
		t.Fatalf("Sync: got %v, want EIO", err)
	}
	fail = false
	if err := l.Sync(); err == nil {
		t.Error("Sync after a failed sync: got nil, want the same error")
	}
	if _, _, _, err := l.Append(&b); err == nil {
		t.Error("Append after a failed sync: got nil, want an error")
	}
}

// FuzzSegment reads arbitrary bytes as a segment: it never panics, and
// whatever it accepts is a run of consecutive, checksummed records.
func FuzzSegment(f *testing.F) {
	dir := f.TempDir()
	l, err := Open(dir, Options{})
	if err != nil {
		f.Fatal(err)
	}
	l.Replay(0, noReplay)
	var b Batch
	for n := range 5 {
		b.Done(append(b.Next(), payload(n)...))
	}
	l.Append(&b)
	l.Sync()
	path := l.segs[len(l.segs)-1].path
	l.Close()
	good, err := os.ReadFile(path)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(good)
	f.Add(good[:len(good)-7])
	f.Add(good[:segmentHeaderSize])
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, data []byte) {
		v, err := scanSegment(bytes.NewReader(data), int64(len(data)), 1)
		if err != nil {
			t.Fatalf("scanSegment: %v", err)
		}
		if !v.ok {
			if v.last != 0 {
				t.Fatalf("no valid header, but last = %d", v.last)
			}
			return
		}
		// Every record up to v.end is whole and checksummed, with LSNs
		// 1, 2, …: reading them again one by one agrees.
		sc := &scanner{r: bytes.NewReader(data[:v.end]), off: segmentHeaderSize, epoch: v.epoch, next: 1}
		for {
			if _, _, ok := sc.next1(); !ok {
				break
			}
		}
		if sc.off != v.end || sc.next-1 != v.last {
			t.Fatalf("rescan of the valid part: got end %d last %d, want %d %d", sc.off, sc.next-1, v.end, v.last)
		}
	})
}

// Records a crash left written but not synced are made durable before
// Replay hands them on: something may soon depend on them (a duplicate of
// one is answered 200).
func TestReplaySyncsWhatItReplays(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	l := openLog(t, dir, Options{NoPrealloc: true})
	l.Replay(0, noReplay)
	var b Batch
	b.Done(append(b.Next(), payload(1)...))
	if _, _, _, err := l.Append(&b); err != nil {
		t.Fatal(err)
	}
	l.Close() // no Sync: the record is in the page cache only
	var synced []string
	l2 := openLog(t, dir, Options{NoPrealloc: true, SyncFile: func(f *os.File) error {
		synced = append(synced, filepath.Base(f.Name()))
		return f.Sync()
	}})
	n := 0
	if _, err := l2.Replay(0, func(lsn, seg uint64, off int64, p []byte) error {
		n++
		if len(synced) == 0 {
			t.Errorf("record %d handed on before its segment was synced", lsn)
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if n != 1 {
		t.Fatalf("replayed %d records, want 1", n)
	}
}

// A crash can leave an empty segment named for the next LSN (created, its
// first write lost). Released as record-free, it must not stay a spare
// under that name: the next segment takes the name, and reusing the spare
// later would overwrite acknowledged records.
func TestReleasedEmptySegmentAtTheNextLSN(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	opt := Options{SegmentSize: 2048, Spares: 2, NoPrealloc: true}
	written(t, dir, opt, 61, 4)
	if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("%020d%s", 61, suffix)), segmentHeader(12345, 61), 0o600); err != nil {
		t.Fatal(err)
	}
	l2 := openLog(t, dir, opt)
	if _, err := l2.Replay(60, noReplay); err != nil {
		t.Fatal(err)
	}
	// What the store does at start: release what holds no live events.
	for _, s := range l2.Sealed() {
		if s.First == 1 || s.First == 61 {
			if err := l2.Release(s.First); err != nil {
				t.Fatal(err)
			}
		}
	}
	appendN(t, l2, 61, 200, 4) // acknowledged: synced
	l2.Close()
	reopenHas(t, dir, opt, 60, 61, 200)
}

// A segment opened for reads only (after a restart), released and reused
// as a spare, takes new records: the spare is reopened for writing.
func TestReadSegmentReusedAsSpare(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	opt := Options{SegmentSize: 2048, Spares: 2, NoPrealloc: true}
	written(t, dir, opt, 61, 4)
	l2 := openLog(t, dir, opt)
	l2.Replay(60, noReplay)
	if _, _, err := l2.ReadRecord(1, segmentHeaderSize); err != nil {
		t.Fatal(err)
	}
	if err := l2.Release(1); err != nil {
		t.Fatal(err)
	}
	appendN(t, l2, 61, 200, 1)
	l2.Close()
	reopenHas(t, dir, opt, 60, 61, 200)
}

// After a failed sync, Recover drops every record that no sync covered,
// from the disk too (their bytes are in the file and would read back at
// a restart), keeps every synced one, and appends go on: a restart then
// reads the synced records and those appended since, nothing else.
func TestRecoverDropsWhatNoSyncCovered(t *testing.T) {
	t.Parallel()
	var fail atomic.Bool
	dir := t.TempDir()
	opt := Options{SegmentSize: 4096, NoPrealloc: true, SyncFile: func(f *os.File) error {
		if fail.Load() {
			return syscall.EIO
		}
		return f.Sync()
	}}
	l := openLog(t, dir, opt)
	l.Replay(0, noReplay)
	appendN(t, l, 1, 40, 3) // over two segments, synced
	fail.Store(true)
	var b Batch
	for n := 40; n < 45; n++ {
		b.Done(append(b.Next(), payload(n+7)...)) // not what a restart may read at 40..44
	}
	if _, _, _, err := l.Append(&b); err != nil {
		t.Fatalf("Append before the failing sync: %v", err)
	}
	if err := l.Sync(); !errors.Is(err, syscall.EIO) {
		t.Fatalf("Sync: got %v, want EIO", err)
	}
	if _, err := l.Recover(); err == nil {
		t.Fatal("Recover while syncs still fail: got nil, want an error")
	}
	if l.Err() == nil {
		t.Fatal("Err after a failed Recover: got nil, want the log still failed")
	}
	fail.Store(false)
	kept, err := l.Recover()
	if err != nil {
		t.Fatalf("Recover: %v", err)
	}
	if kept != 39 || l.Synced() != 39 || l.NextLSN() != 40 || l.Err() != nil {
		t.Fatalf("after Recover: kept %d, synced %d, next %d, err %v; want 39, 39, 40, nil", kept, l.Synced(), l.NextLSN(), l.Err())
	}
	appendN(t, l, 40, 60, 2)
	l.Close()
	reopenHas(t, dir, opt, 0, 1, 60)
}
