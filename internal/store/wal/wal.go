// Package wal is the write-ahead log in front of the embedded store: an
// append-only sequence of checksummed records in segment files, made
// durable by one fdatasync per group of appends. A record is acknowledged
// once it is in the log; the store indexes it afterwards, and the log only
// has to keep it until the store's copy is durable.
//
// A segment file is a 32-byte header (magic, format version, a random epoch,
// the log sequence number of its first record) followed by records, each
// a 20-byte header (CRC-32C, payload length, LSN, the segment's epoch) and
// its payload. The CRC covers everything after itself. Records carry
// consecutive LSNs. Reading stops at the first record that is short, fails
// its checksum, has another epoch or breaks the sequence: that is where
// the last write before a crash ended, and nothing after it was ever
// acknowledged.
//
// Segments whose records the store no longer needs are kept as spares and
// reused: a spare is renamed and gets a new header (a new epoch, so that
// its old records no longer read as valid), and appends then overwrite
// blocks the file system has already allocated, which makes each
// fdatasync cheaper than one that must also grow the file.
package wal

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"

	"hookd/internal/fsutil"
)

const (
	segmentHeaderSize = 32
	recordHeaderSize  = 20
	magic             = "HOOKDWAL"
	version           = 1
	suffix            = ".wal"
	// MaxRecord bounds one record's payload.
	MaxRecord = 256 << 20
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// Options tunes a Log; zero values take the defaults.
type Options struct {
	// SegmentSize is the size beyond which appends go to a new segment.
	// Default 16 MiB.
	SegmentSize int64
	// Spares is how many retired segments are kept for reuse. Default 2.
	Spares int
	// SyncFile makes a file's data durable (fdatasync); tests inject
	// failures.
	SyncFile func(*os.File) error
	// SyncDir makes a directory's entries durable.
	SyncDir func(dir string) error
}

// Log is an open write-ahead log. Append and Sync may run concurrently
// with each other (one appender, one syncer); Retire may run from a third
// goroutine.
type Log struct {
	dir string
	opt Options

	mu       sync.Mutex
	segs     []*segment // live segments, oldest first; the last is active
	spares   []*segment
	next     uint64 // the LSN of the next record appended
	dirty    []*segment
	appended uint64 // the last LSN appended

	// syncMu is held across every fdatasync and every file close, so that
	// a file is never closed under a sync.
	syncMu  sync.Mutex
	syncErr error // sticky: once a sync has failed, nothing is durable
	closed  bool

	// replay is what Open read, for Replay; nil afterwards.
	replay []*segment
}

type segment struct {
	path  string
	f     *os.File
	first uint64 // LSN of the first record (from the header)
	last  uint64 // LSN of the last valid record; first-1 when empty
	epoch uint32
	size  int64 // end of the valid records: where the next append goes
	// grown is the file's size on disk beyond size (old records of a
	// spare): appends below it overwrite allocated blocks.
	grown int64
	// sealed segments were read at Open: appends never continue them.
	sealed bool
}

// Open opens (creating if needed) the log in dir and reads what it holds.
// Call Replay once, then Start, before the first Append.
func Open(dir string, opt Options) (*Log, error) {
	if opt.SegmentSize <= 0 {
		opt.SegmentSize = 16 << 20
	}
	if opt.Spares <= 0 {
		opt.Spares = 2
	}
	if opt.SyncFile == nil {
		opt.SyncFile = fsutil.Fdatasync
	}
	if opt.SyncDir == nil {
		opt.SyncDir = fsutil.SyncDir
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("create log directory: %w", err)
	}
	l := &Log{dir: dir, opt: opt}
	names, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("read log directory: %w", err)
	}
	type named struct {
		path  string
		first uint64
	}
	var files []named
	for _, e := range names {
		n := e.Name()
		if !strings.HasSuffix(n, suffix) || e.IsDir() {
			continue
		}
		first, err := strconv.ParseUint(strings.TrimSuffix(n, suffix), 10, 64)
		if err != nil {
			continue // not a segment of ours
		}
		files = append(files, named{filepath.Join(dir, n), first})
	}
	slices.SortFunc(files, func(a, b named) int {
		switch {
		case a.first < b.first:
			return -1
		case a.first > b.first:
			return 1
		}
		return 0
	})
	for _, fn := range files {
		s, err := openSegment(fn.path, fn.first)
		if err != nil {
			l.closeFiles(l.replay)
			return nil, err
		}
		l.replay = append(l.replay, s)
	}
	return l, nil
}

// openSegment opens a segment file and finds the end of its valid
// records. A file whose header is unreadable or names another first LSN
// (a spare renamed just before a crash) holds no records.
func openSegment(path string, first uint64) (*segment, error) {
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		return nil, fmt.Errorf("open log segment: %w", err)
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("open log segment: %w", err)
	}
	s := &segment{path: path, f: f, first: first, last: first - 1, grown: st.Size(), sealed: true}
	v, err := scanSegment(f, st.Size(), first)
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("read log segment %s: %w", filepath.Base(path), err)
	}
	if v.ok {
		s.epoch, s.size, s.last = v.epoch, v.end, v.last
	}
	return s, nil
}

// scanned is what scanSegment found in a segment.
type scanned struct {
	ok    bool // the header is valid and names first
	epoch uint32
	end   int64  // the end of the valid records
	last  uint64 // the last valid record's LSN (first-1 when none)
}

// scanSegment reads a segment's header and finds the end of its valid
// records. Only a read error other than the end of the data is an error.
func scanSegment(r io.ReaderAt, size int64, first uint64) (scanned, error) {
	v := scanned{last: first - 1}
	var hdr [segmentHeaderSize]byte
	if _, err := r.ReadAt(hdr[:], 0); err != nil {
		if errors.Is(err, io.EOF) {
			return v, nil // too short for a header: empty
		}
		return v, err
	}
	epoch, hfirst, ok := parseSegmentHeader(hdr[:])
	if !ok || hfirst != first {
		return v, nil
	}
	v.ok, v.epoch, v.end = true, epoch, segmentHeaderSize
	sc := &scanner{r: io.NewSectionReader(r, 0, size), off: segmentHeaderSize, epoch: epoch, next: first}
	for {
		if _, _, ok := sc.next1(); !ok {
			break
		}
		v.end, v.last = sc.off, sc.next-1
	}
	return v, sc.err
}

func parseSegmentHeader(b []byte) (epoch uint32, first uint64, ok bool) {
	if len(b) < segmentHeaderSize || string(b[:8]) != magic {
		return 0, 0, false
	}
	if binary.LittleEndian.Uint32(b[8:12]) != version {
		return 0, 0, false
	}
	if crc32.Checksum(b[:24], castagnoli) != binary.LittleEndian.Uint32(b[24:28]) {
		return 0, 0, false
	}
	return binary.LittleEndian.Uint32(b[12:16]), binary.LittleEndian.Uint64(b[16:24]), true
}

func segmentHeader(epoch uint32, first uint64) []byte {
	b := make([]byte, segmentHeaderSize)
	copy(b, magic)
	binary.LittleEndian.PutUint32(b[8:12], version)
	binary.LittleEndian.PutUint32(b[12:16], epoch)
	binary.LittleEndian.PutUint64(b[16:24], first)
	binary.LittleEndian.PutUint32(b[24:28], crc32.Checksum(b[:24], castagnoli))
	return b
}

// scanner reads consecutive valid records.
type scanner struct {
	r     io.ReaderAt
	off   int64
	epoch uint32
	next  uint64 // the LSN the next record must carry
	buf   []byte
	err   error // a read error other than the end of the file
}

// next1 returns the next valid record's LSN and payload (valid until the
// next call), or ok false at the end of the valid records.
func (s *scanner) next1() (lsn uint64, payload []byte, ok bool) {
	var h [recordHeaderSize]byte
	if _, err := s.r.ReadAt(h[:], s.off); err != nil {
		if !errors.Is(err, io.EOF) {
			s.err = err
		}
		return 0, nil, false
	}
	n := binary.LittleEndian.Uint32(h[4:8])
	lsn = binary.LittleEndian.Uint64(h[8:16])
	if n > MaxRecord || lsn != s.next || binary.LittleEndian.Uint32(h[16:20]) != s.epoch {
		return 0, nil, false
	}
	if cap(s.buf) < int(n) {
		s.buf = make([]byte, n)
	}
	payload = s.buf[:n]
	if _, err := s.r.ReadAt(payload, s.off+recordHeaderSize); err != nil {
		if !errors.Is(err, io.EOF) {
			s.err = err
		}
		return 0, nil, false
	}
	crc := crc32.Update(crc32.Checksum(h[4:], castagnoli), castagnoli, payload)
	if crc != binary.LittleEndian.Uint32(h[0:4]) {
		return 0, nil, false
	}
	s.off += recordHeaderSize + int64(n)
	s.next++
	return lsn, payload, true
}

// Replay calls fn, in LSN order, with every record after LSN after that
// the log holds (the payload is valid only during the call), and then
// prepares the log for appends: they go to a new segment, starting at the
// LSN after both after and the last record read. It returns that last
// LSN (after, when the log holds nothing newer). A gap in the sequence
// after after is an error: the log has lost records it had acknowledged.
func (l *Log) Replay(after uint64, fn func(lsn uint64, payload []byte) error) (uint64, error) {
	last := after
	var prev *segment
	for _, s := range l.replay {
		if s.last < s.first || s.last <= after {
			continue // empty, or every record already indexed
		}
		start := max(s.first, after+1)
		if prev != nil && s.first != prev.last+1 {
			return 0, fmt.Errorf("log: records %d to %d are missing (between %s and %s)", prev.last+1, s.first-1, filepath.Base(prev.path), filepath.Base(s.path))
		}
		if prev == nil && s.first > after+1 {
			return 0, fmt.Errorf("log: records %d to %d are missing (before %s)", after+1, s.first-1, filepath.Base(s.path))
		}
		r := &scanner{r: s.f, off: segmentHeaderSize, epoch: s.epoch, next: s.first}
		for {
			lsn, payload, ok := r.next1()
			if !ok {
				break
			}
			if lsn < start {
				continue
			}
			if err := fn(lsn, payload); err != nil {
				return 0, err
			}
			last = lsn
		}
		if r.err != nil {
			return 0, fmt.Errorf("read log segment %s: %w", filepath.Base(s.path), r.err)
		}
		prev = s
	}
	for _, s := range l.replay {
		if s.last > last {
			last = s.last
		}
	}
	// Every segment read is now history: the caller indexes what was
	// replayed before the first append, and Retire recycles them once
	// that is durable. Appends begin in a fresh segment, so that the tail
	// a crash left behind is never continued.
	l.mu.Lock()
	defer l.mu.Unlock()
	l.segs = l.replay
	l.replay = nil
	l.next = last + 1
	l.appended = last
	return last, nil
}

// Append writes the records of b, with consecutive LSNs from NextLSN, in
// one write. They are durable once a later Sync returns. On error nothing
// of b counts as written and the LSNs are not used.
func (l *Log) Append(b *Batch) (first uint64, err error) {
	if len(b.starts) == 0 {
		return 0, errors.New("log: empty batch")
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if err := l.failed(); err != nil {
		return 0, err
	}
	act := l.active()
	if act == nil || (act.size > segmentHeaderSize && act.size+int64(len(b.buf)) > l.opt.SegmentSize) {
		if act, err = l.roll(); err != nil {
			return 0, err
		}
	}
	first = l.next
	for i, st := range b.starts {
		h := b.buf[st : st+recordHeaderSize]
		end := len(b.buf)
		if i+1 < len(b.starts) {
			end = b.starts[i+1]
		}
		n := end - st - recordHeaderSize
		if n > MaxRecord {
			return 0, fmt.Errorf("log: record of %d bytes exceeds the limit of %d", n, MaxRecord)
		}
		binary.LittleEndian.PutUint32(h[4:8], uint32(n))
		binary.LittleEndian.PutUint64(h[8:16], first+uint64(i))
		binary.LittleEndian.PutUint32(h[16:20], act.epoch)
		binary.LittleEndian.PutUint32(h[0:4], crc32.Update(crc32.Checksum(h[4:], castagnoli), castagnoli, b.buf[st+recordHeaderSize:end]))
	}
	if _, err := act.f.WriteAt(b.buf, act.size); err != nil {
		if act.size >= act.grown {
			// Give back what a short write added (a full disk): the
			// next append starts at the same place.
			act.f.Truncate(act.size)
		}
		return 0, fmt.Errorf("log: write: %w", err)
	}
	act.size += int64(len(b.buf))
	act.grown = max(act.grown, act.size)
	n := uint64(len(b.starts))
	act.last = first + n - 1
	l.next += n
	l.appended = act.last
	if len(l.dirty) == 0 || l.dirty[len(l.dirty)-1] != act {
		l.dirty = append(l.dirty, act)
	}
	return first, nil
}

// NextLSN is the LSN the next appended record gets.
func (l *Log) NextLSN() uint64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.next
}

func (l *Log) active() *segment {
	if len(l.segs) == 0 {
		return nil
	}
	s := l.segs[len(l.segs)-1]
	if s.sealed || s.last+1 != l.next {
		return nil
	}
	return s
}

func (l *Log) failed() error {
	if l.closed {
		return errors.New("log: closed")
	}
	l.syncMu.Lock()
	defer l.syncMu.Unlock()
	return l.syncErr
}

// roll starts the next segment: the active one is made durable first (a
// Sync only covers the files written since the previous one), then a
// spare is renamed and gets a new header, or a new file is made.
func (l *Log) roll() (*segment, error) {
	if act := l.active(); act != nil {
		if err := l.syncFiles([]*segment{act}); err != nil {
			return nil, err
		}
		l.dirty = slices.DeleteFunc(l.dirty, func(s *segment) bool { return s == act })
	}
	path := filepath.Join(l.dir, fmt.Sprintf("%020d%s", l.next, suffix))
	var s *segment
	if len(l.spares) > 0 {
		s = l.spares[0]
		if err := os.Rename(s.path, path); err != nil {
			return nil, fmt.Errorf("log: reuse segment: %w", err)
		}
		l.spares = l.spares[1:]
		s.path = path
	} else {
		f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o600)
		if err != nil {
			return nil, fmt.Errorf("log: create segment: %w", err)
		}
		s = &segment{path: path, f: f}
	}
	epoch := rand.Uint32()
	for epoch == 0 || epoch == s.epoch {
		epoch = rand.Uint32()
	}
	s.epoch, s.first, s.last, s.size, s.sealed = epoch, l.next, l.next-1, segmentHeaderSize, false
	if _, err := s.f.WriteAt(segmentHeader(epoch, l.next), 0); err != nil {
		l.abandon(s)
		return nil, fmt.Errorf("log: write segment header: %w", err)
	}
	s.grown = max(s.grown, segmentHeaderSize)
	// The new name must survive a crash before anything in the file is
	// acknowledged; the header itself is synced with the first records.
	if err := l.opt.SyncDir(l.dir); err != nil {
		l.abandon(s)
		return nil, fmt.Errorf("log: sync directory: %w", err)
	}
	l.segs = append(l.segs, s)
	return s, nil
}

// abandon drops a segment that could not be started.
func (l *Log) abandon(s *segment) {
	l.syncMu.Lock()
	s.f.Close()
	l.syncMu.Unlock()
	os.Remove(s.path)
}

// Sync makes every record appended so far durable. Once a sync has
// failed, every later Sync and Append fails: the kernel may have dropped
// the pages it could not write.
func (l *Log) Sync() error {
	l.mu.Lock()
	dirty := l.dirty
	l.dirty = nil
	l.mu.Unlock()
	err := l.syncFiles(dirty)
	if err != nil {
		// Keep them dirty: a later Sync must not report success.
		l.mu.Lock()
		l.dirty = append(dirty, l.dirty...)
		l.mu.Unlock()
	}
	return err
}

func (l *Log) syncFiles(ss []*segment) error {
	l.syncMu.Lock()
	defer l.syncMu.Unlock()
	if l.syncErr != nil {
		return l.syncErr
	}
	for _, s := range ss {
		if err := l.opt.SyncFile(s.f); err != nil {
			l.syncErr = fmt.Errorf("log: sync %s: %w", filepath.Base(s.path), err)
			return l.syncErr
		}
	}
	return nil
}

// Err returns the sticky sync error, nil while the log is healthy.
func (l *Log) Err() error {
	l.syncMu.Lock()
	defer l.syncMu.Unlock()
	return l.syncErr
}

// Appended is the LSN of the last record appended (durable or not).
func (l *Log) Appended() uint64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.appended
}

// Retire gives up every segment (but the active one) whose records all
// have LSNs up to durable: the store holds them durably. Up to
// Options.Spares of them are kept for reuse; the rest are deleted.
func (l *Log) Retire(durable uint64) {
	l.mu.Lock()
	var drop []*segment
	keep := l.segs[:0]
	act := l.active()
	for _, s := range l.segs {
		if s != act && s.last <= durable && !slices.Contains(l.dirty, s) {
			if len(l.spares) < l.opt.Spares {
				l.spares = append(l.spares, s)
			} else {
				drop = append(drop, s)
			}
			continue
		}
		keep = append(keep, s)
	}
	clear(l.segs[len(keep):])
	l.segs = keep
	l.mu.Unlock()
	if len(drop) == 0 {
		return
	}
	l.syncMu.Lock()
	for _, s := range drop {
		s.f.Close()
		os.Remove(s.path)
	}
	l.syncMu.Unlock()
}

// Segments returns how many segment files the log holds, spares included.
func (l *Log) Segments() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.segs) + len(l.spares) + len(l.replay)
}

// Close closes every file. It does not sync: call Sync first.
func (l *Log) Close() error {
	l.mu.Lock()
	all := append(append(append([]*segment(nil), l.segs...), l.spares...), l.replay...)
	l.segs, l.spares, l.replay, l.closed = nil, nil, nil, true
	l.mu.Unlock()
	l.closeFiles(all)
	return nil
}

func (l *Log) closeFiles(ss []*segment) {
	l.syncMu.Lock()
	defer l.syncMu.Unlock()
	for _, s := range ss {
		s.f.Close()
	}
}

// Batch collects the records of one Append: each is a header the log
// fills in, followed by its payload.
type Batch struct {
	buf    []byte
	starts []int
}

// Reset empties b, keeping its memory.
func (b *Batch) Reset() {
	b.buf = b.buf[:0]
	b.starts = b.starts[:0]
}

// Next starts a record: append its payload to the returned slice and
// hand the result to Done.
func (b *Batch) Next() []byte {
	b.starts = append(b.starts, len(b.buf))
	return append(b.buf, make([]byte, recordHeaderSize)...)
}

// Done ends the record that Next started.
func (b *Batch) Done(buf []byte) { b.buf = buf }

// Len is the number of records in b.
func (b *Batch) Len() int { return len(b.starts) }

// Size is the number of bytes b will write.
func (b *Batch) Size() int { return len(b.buf) }

// Truncate keeps the first n records of b.
func (b *Batch) Truncate(n int) {
	if n >= len(b.starts) {
		return
	}
	b.buf = b.buf[:b.starts[n]]
	b.starts = b.starts[:n]
}
