// Package wal is the write-ahead log of the embedded store: an append-only
// sequence of checksummed records in segment files, made durable by one
// fdatasync per group of appends. A record is acknowledged once it is in
// the log; the store indexes it afterwards and reads its bulk (an event's
// body and headers) back from the log, so a segment lives until the store
// releases it, when the events it holds are deleted.
//
// A segment file is a 32-byte header (magic, format version, a random
// epoch, the log sequence number of its first record) followed by
// records, each a 20-byte header (CRC-32C, payload length, LSN, the
// segment's epoch) and its payload. The CRC covers everything after
// itself. Records carry consecutive LSNs, and a segment's name is the LSN
// of its first record. Reading stops at the first record that is short,
// fails its checksum, has another epoch or breaks the sequence: that is
// where the last write before a crash ended, and nothing after it was
// ever acknowledged. Appends after a restart go to a new segment: the tail
// a crash left behind is never continued.
//
// Released segments are kept as spares, up to Options.Spares, and reused:
// a spare is renamed and gets a new header (a new epoch, so that its old
// records no longer read as valid), and appends then overwrite blocks the
// file system has already allocated, which makes each fdatasync cheaper
// than one that must also grow the file.
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
	// RecordHeaderSize is the bytes a record takes besides its payload.
	RecordHeaderSize = 20
	magic            = "HOOKDWAL"
	version          = 1
	suffix           = ".wal"
	prepSuffix       = ".prep"
	// MaxRecord bounds one record's payload.
	MaxRecord = 256 << 20
	// openReaders bounds the sealed segments kept open for reads.
	openReaders = 32
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// Options tunes a Log; zero values take the defaults.
type Options struct {
	// SegmentSize is the size beyond which appends go to a new segment.
	// Default 64 MiB.
	SegmentSize int64
	// Spares is how many released segments are kept for reuse. Default 2.
	Spares int
	// SyncFile makes a file's data durable (fdatasync); tests inject
	// failures. Only used when FS is nil.
	SyncFile func(*os.File) error
	// SyncDir makes a directory's entries durable. Only used when FS is
	// nil.
	SyncDir func(dir string) error
	// FS is the file system the log is on; nil means the operating
	// system's, with SyncFile and SyncDir.
	FS FS
	// NoPrealloc turns off the preparation of the next segment: by
	// default, once the active segment is half full and no spare is left,
	// one is made in the background by writing zeros up to SegmentSize
	// and syncing them, so that appends to it overwrite allocated blocks
	// too (an fdatasync that need not grow the file costs about half the
	// time and CPU).
	NoPrealloc bool
}

// Log is an open write-ahead log. One goroutine appends; Sync, ReadRecord,
// Release and the accessors may run from others.
type Log struct {
	dir string
	opt Options

	mu     sync.Mutex
	segs   []*segment // segments that may hold records, by first LSN
	active *segment   // where appends go; nil until the first append
	spares []*segment
	// damaged are segments whose header is garbage, until Replay
	// decides about them (damagedErr).
	damaged  []*segment
	next     uint64 // the LSN of the next record appended
	synced   uint64 // the LSN of the last record a successful sync covered
	dirty    []*segment
	readers  []*segment // sealed segments open for reads, least recent first
	replayed bool
	closed   bool
	// preparing is set while a goroutine zero-fills a spare.
	preparing bool
	prepWG    sync.WaitGroup

	// syncCall serializes Sync calls: one returns only once every file
	// dirty when it began is synced, even if another call took them.
	syncCall sync.Mutex
	// syncMu is held across every fdatasync, so that the sticky error is
	// set before another sync or an append looks at it.
	syncMu  sync.Mutex
	errMu   sync.Mutex
	syncErr error // sticky until Recover: once a sync has failed, nothing more is durable
}

type segment struct {
	path  string
	f     File   // nil when closed
	first uint64 // LSN of the first record (the name)
	// last is the LSN of the last record: known once scanned or written;
	// for an older segment, the next segment's first LSN minus one.
	last    uint64
	scanned bool
	valid   bool // the header is valid and names first
	// damaged is set when the header is garbage (see damagedErr).
	damaged bool
	epoch   uint32
	size    int64 // end of the valid records: where the next append goes
	// grown is the file's size: appends below it overwrite allocated
	// blocks.
	grown int64
	// syncedEnd is the end of the records a successful sync covered (or
	// Replay found), in the active segment: see breakUnsynced.
	syncedEnd int64
}

// Open opens (creating if needed) the log in dir and reads the headers of
// its segments. Call Replay once before the first Append.
func Open(dir string, opt Options) (*Log, error) {
	if opt.SegmentSize <= 0 {
		opt.SegmentSize = 64 << 20
	}
	if opt.Spares <= 0 {
		opt.Spares = 2
	}
	if opt.FS == nil {
		opt.FS = OS(opt.SyncFile, opt.SyncDir)
	}
	if err := opt.FS.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("create log directory: %w", err)
	}
	l := &Log{dir: dir, opt: opt}
	names, err := opt.FS.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("read log directory: %w", err)
	}
	for _, e := range names {
		n := e.Name()
		if strings.HasSuffix(n, prepSuffix) && !e.IsDir() {
			// A spare being prepared, or prepared, before the restart.
			s := &segment{path: filepath.Join(dir, n)}
			if fi, err := e.Info(); err == nil {
				s.grown = fi.Size()
			}
			l.spares = append(l.spares, s)
			continue
		}
		if !strings.HasSuffix(n, suffix) || e.IsDir() {
			continue
		}
		first, err := strconv.ParseUint(strings.TrimSuffix(n, suffix), 10, 64)
		if err != nil || first == 0 {
			continue // not a segment of ours
		}
		s := &segment{path: filepath.Join(dir, n), first: first, last: first - 1}
		if err := s.readHeader(opt.FS); err != nil {
			return nil, err
		}
		if s.damaged {
			// Garbage where a header should be: Replay decides, once it
			// knows what the caller has indexed (damagedErr).
			l.damaged = append(l.damaged, s)
			continue
		}
		if !s.valid {
			// Made just before a crash, or a spare renamed just before
			// one: it holds nothing anybody was told about.
			l.spares = append(l.spares, s)
			continue
		}
		l.segs = append(l.segs, s)
	}
	slices.SortFunc(l.segs, func(a, b *segment) int {
		switch {
		case a.first < b.first:
			return -1
		case a.first > b.first:
			return 1
		}
		return 0
	})
	for i, s := range l.segs[:max(0, len(l.segs)-1)] {
		s.last = l.segs[i+1].first - 1
	}
	return l, nil
}

// readHeader reads the segment's header and size.
func (s *segment) readHeader(fsys FS) error {
	f, err := fsys.OpenFile(s.path, os.O_RDONLY, 0)
	if err != nil {
		return fmt.Errorf("open log segment: %w", err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return fmt.Errorf("open log segment: %w", err)
	}
	s.grown = st.Size()
	var hdr [segmentHeaderSize]byte
	n, err := f.ReadAt(hdr[:], 0)
	if foreignHeader(hdr[:min(n, len(magic))]) {
		s.damaged = true
		return nil
	}
	if err != nil {
		if errors.Is(err, io.EOF) {
			return nil // too short for a header
		}
		return fmt.Errorf("read log segment %s: %w", filepath.Base(s.path), err)
	}
	epoch, first, ok := parseSegmentHeader(hdr[:])
	if ok && first == s.first {
		s.valid, s.epoch = true, epoch
	}
	return nil
}

// damagedErr decides about the segments whose header is garbage (neither
// hookd's, nor what a crash leaves of one), once the caller says up to
// which record it has indexed. Such a segment is damage, refused with the
// file's name, when the caller refers to its records (it begins at or
// before after) or a valid segment follows it (the log syncs a segment
// whole before it begins the next). Otherwise it is the newest segment,
// and none of its records was ever read back: a power loss tore its header
// before any sync covered it, so it held nothing anybody was told about,
// and it is removed. Call with mu held.
func (l *Log) damagedErr(after uint64) error {
	for _, d := range l.damaged {
		later := false
		for _, s := range l.segs {
			if s.first > d.first {
				later = true
				break
			}
		}
		if d.first <= after || later {
			return errDamaged(d.path, "its header is not a log segment's")
		}
	}
	// A record that reads back whole after the garbage means the header
	// had been written before it, and synced with it or not: that is
	// damage to a segment that may hold acknowledged records, never what
	// a crash leaves (a torn header was the last write to its segment).
	for _, d := range l.damaged {
		if l.firstRecordReadsBack(d) {
			return errDamaged(d.path, "its header is not a log segment's, but its records read back")
		}
	}
	// Removed rather than kept as a spare, so that no later start finds
	// it before a segment that follows it.
	for _, d := range l.damaged {
		if err := l.opt.FS.Remove(d.path); err != nil && !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("log: remove the torn segment %s: %w", filepath.Base(d.path), err)
		}
	}
	if len(l.damaged) > 0 {
		if err := l.opt.FS.SyncDir(l.dir); err != nil {
			return fmt.Errorf("log: sync directory: %w", err)
		}
	}
	l.damaged = nil
	return nil
}

// errDamaged says which segment is damaged, why, and what to do.
func errDamaged(path, why string) error {
	return fmt.Errorf("log segment %s is damaged or not hookd's (%s): restore it from a backup, or move it out of the log directory to start without the events it held", path, why)
}

// firstRecordReadsBack reports whether segment d holds, right after its
// header, a whole record with its first LSN: the record's checksum covers
// its length, LSN and epoch, so it is checked without the header.
func (l *Log) firstRecordReadsBack(d *segment) bool {
	f, err := l.opt.FS.OpenFile(d.path, os.O_RDONLY, 0)
	if err != nil {
		return false
	}
	defer f.Close()
	var h [RecordHeaderSize]byte
	if _, err := f.ReadAt(h[:], segmentHeaderSize); err != nil {
		return false
	}
	n := binary.LittleEndian.Uint32(h[4:8])
	if binary.LittleEndian.Uint64(h[8:16]) != d.first || n > MaxRecord || int64(n) > d.grown {
		return false
	}
	payload := make([]byte, n)
	if _, err := f.ReadAt(payload, segmentHeaderSize+RecordHeaderSize); err != nil {
		return false
	}
	return binary.LittleEndian.Uint32(h[0:4]) == recordCRC(h[:], payload)
}

// foreignHeader reports whether b, the start of a segment file, is none
// that hookd leaves behind. A crash can leave a segment's header unwritten
// (zeros, or a short file), half written, or the old header of a spare
// renamed for reuse: each byte of the magic is then the magic's or zero.
// Anything else (garbage, another program's file) is damage, and taking
// the file for a spare would lose the records the database refers to.
func foreignHeader(b []byte) bool {
	for i, c := range b {
		if c != 0 && c != magic[i] {
			return true
		}
	}
	return false
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
	var h [RecordHeaderSize]byte
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
	if _, err := s.r.ReadAt(payload, s.off+RecordHeaderSize); err != nil {
		if !errors.Is(err, io.EOF) {
			s.err = err
		}
		return 0, nil, false
	}
	if recordCRC(h[:], payload) != binary.LittleEndian.Uint32(h[0:4]) {
		return 0, nil, false
	}
	s.off += RecordHeaderSize + int64(n)
	s.next++
	return lsn, payload, true
}

func recordCRC(h, payload []byte) uint32 {
	return crc32.Update(crc32.Checksum(h[4:RecordHeaderSize], castagnoli), castagnoli, payload)
}

// Replay calls fn, in LSN order, with every record after LSN after that
// the log holds, with the segment and offset it is at (the payload is
// valid only during the call). It reads only the segments that can hold
// such records. It returns the last LSN the log holds (after, when it
// holds nothing newer); appends then go on from the LSN after it, in a new
// segment. A gap in the sequence after after is an error: the log has lost
// records it had acknowledged.
func (l *Log) Replay(after uint64, fn func(lsn, segment uint64, off int64, payload []byte) error) (uint64, error) {
	l.mu.Lock()
	if err := l.damagedErr(after); err != nil {
		l.mu.Unlock()
		return 0, err
	}
	segs := slices.Clone(l.segs)
	l.mu.Unlock()
	last := after
	var prev *segment
	for i, s := range segs {
		if i+1 < len(segs) && s.last <= after {
			continue // every record of it is older
		}
		f, err := l.opt.FS.OpenFile(s.path, os.O_RDWR, 0)
		if err != nil {
			return 0, fmt.Errorf("open log segment: %w", err)
		}
		v, err := scanSegment(f, s.grown, s.first)
		if err != nil {
			f.Close()
			return 0, fmt.Errorf("read log segment %s: %w", filepath.Base(s.path), err)
		}
		s.scanned, s.size, s.last, s.syncedEnd = true, v.end, v.last, v.end
		if s.last <= after {
			f.Close()
			continue
		}
		if prev != nil && s.first != prev.last+1 {
			f.Close()
			return 0, fmt.Errorf("log: records %d to %d are missing (between %s and %s)", prev.last+1, s.first-1, filepath.Base(prev.path), filepath.Base(s.path))
		}
		if prev == nil && s.first > after+1 {
			f.Close()
			return 0, fmt.Errorf("log: records %d to %d are missing (before %s)", after+1, s.first-1, filepath.Base(s.path))
		}
		// What a crash left may be in the page cache only (written, never
		// synced, never acknowledged): it is made durable before anybody
		// relies on it, as a duplicate of it would.
		if err := l.opt.FS.SyncFile(f); err != nil {
			f.Close()
			return 0, fmt.Errorf("sync log segment %s: %w", filepath.Base(s.path), err)
		}
		sc := &scanner{r: f, off: segmentHeaderSize, epoch: s.epoch, next: s.first}
		for {
			off := sc.off
			lsn, payload, ok := sc.next1()
			if !ok {
				break
			}
			if lsn <= after {
				continue
			}
			if err := fn(lsn, s.first, off, payload); err != nil {
				f.Close()
				return 0, err
			}
		}
		f.Close()
		if sc.err != nil {
			return 0, fmt.Errorf("read log segment %s: %w", filepath.Base(s.path), sc.err)
		}
		last = max(last, s.last)
		prev = s
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	l.next = last + 1
	l.synced = last
	l.replayed = true
	return last, nil
}

// maybePrepare starts preparing a spare when none is left. Call with mu
// held. Append calls it once the active segment is half full: a log that
// never fills a segment never writes a spare.
func (l *Log) maybePrepare() {
	if l.preparing || l.closed || len(l.spares) > 0 || l.opt.NoPrealloc {
		return
	}
	l.preparing = true
	l.prepWG.Add(1)
	go l.prepare()
}

// prepare makes a spare: a file of SegmentSize zeros, written through the
// page cache (so that appends find their pages there) and synced, at the
// lowest CPU priority. On any failure (a full disk) it gives up: the next
// segment then grows as it is written.
func (l *Log) prepare() {
	defer l.prepWG.Done()
	background()
	var s *segment
	defer func() {
		l.mu.Lock()
		defer l.mu.Unlock()
		l.preparing = false
		if s != nil && !l.closed {
			l.spares = append(l.spares, s)
			return
		}
		if s != nil {
			s.f.Close()
		}
	}()
	path := filepath.Join(l.dir, fmt.Sprintf("%d%s", rand.Uint64(), prepSuffix))
	f, err := l.opt.FS.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return
	}
	fail := func() {
		f.Close()
		l.opt.FS.Remove(path)
	}
	zero := make([]byte, 256<<10)
	for off := int64(0); off < l.opt.SegmentSize; off += int64(len(zero)) {
		l.mu.Lock()
		closed := l.closed
		l.mu.Unlock()
		n := min(int64(len(zero)), l.opt.SegmentSize-off)
		if _, err := f.WriteAt(zero[:n], off); err != nil || closed {
			fail()
			return
		}
	}
	if err := l.opt.FS.SyncFile(f); err != nil {
		fail()
		return
	}
	s = &segment{path: path, f: f, grown: l.opt.SegmentSize}
}

// Append writes the records of b, with consecutive LSNs from NextLSN, in
// one write, and returns the first LSN, the segment they went to and the
// offset of the first record in it (Batch.Offset gives the others). They
// are durable once a later Sync returns. On error nothing of b counts as
// written and the LSNs are not used.
func (l *Log) Append(b *Batch) (first, segment uint64, off int64, err error) {
	if len(b.starts) == 0 {
		return 0, 0, 0, errors.New("log: empty batch")
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if err := l.failed(); err != nil {
		return 0, 0, 0, err
	}
	if !l.replayed {
		return 0, 0, 0, errors.New("log: append before replay")
	}
	act := l.active
	if act == nil || (act.size > segmentHeaderSize && act.size+int64(len(b.buf)) > l.opt.SegmentSize) {
		if act, err = l.roll(); err != nil {
			return 0, 0, 0, err
		}
	}
	first = l.next
	for i, st := range b.starts {
		h := b.buf[st : st+RecordHeaderSize]
		end := len(b.buf)
		if i+1 < len(b.starts) {
			end = b.starts[i+1]
		}
		n := end - st - RecordHeaderSize
		if n > MaxRecord {
			return 0, 0, 0, fmt.Errorf("log: record of %d bytes exceeds the limit of %d", n, MaxRecord)
		}
		binary.LittleEndian.PutUint32(h[4:8], uint32(n))
		binary.LittleEndian.PutUint64(h[8:16], first+uint64(i))
		binary.LittleEndian.PutUint32(h[16:20], act.epoch)
		binary.LittleEndian.PutUint32(h[0:4], recordCRC(h, b.buf[st+RecordHeaderSize:end]))
	}
	off = act.size
	if _, err := act.f.WriteAt(b.buf, off); err != nil {
		// Part of the batch may be in the file: undo it, so that a
		// restart before the next append does not read records that
		// were answered 503. Growing, give the bytes back (a full disk);
		// overwriting, break the first record's header.
		if off >= act.grown {
			act.f.Truncate(off)
		} else {
			act.f.WriteAt(make([]byte, RecordHeaderSize), off)
		}
		return 0, 0, 0, fmt.Errorf("log: write: %w", err)
	}
	act.size += int64(len(b.buf))
	act.grown = max(act.grown, act.size)
	n := uint64(len(b.starts))
	act.last = first + n - 1
	l.next += n
	if len(l.dirty) == 0 || l.dirty[len(l.dirty)-1] != act {
		l.dirty = append(l.dirty, act)
	}
	if act.size > l.opt.SegmentSize/2 {
		l.maybePrepare()
	}
	return first, act.first, off, nil
}

// NextLSN is the LSN the next appended record gets.
func (l *Log) NextLSN() uint64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.next
}

func (l *Log) failed() error {
	if l.closed {
		return errors.New("log: closed")
	}
	return l.Err()
}

// roll starts the next segment: the active one is made durable first (a
// Sync only covers the files written since the previous one), then a
// spare is renamed and gets a new header, or a new file is made.
func (l *Log) roll() (*segment, error) {
	if act := l.active; act != nil {
		if err := l.syncFiles([]File{act.f}); err != nil {
			l.breakUnsynced()
			return nil, err
		}
		// Only the active segment takes appends: every record is synced.
		l.synced = l.next - 1
		act.syncedEnd = act.size
		l.dirty = slices.DeleteFunc(l.dirty, func(s *segment) bool { return s == act })
		l.active = nil
		l.openForReads(act)
	}
	path := filepath.Join(l.dir, fmt.Sprintf("%020d%s", l.next, suffix))
	// A segment of that name can only be an empty one a crash left: the
	// new one replaces it.
	l.segs = slices.DeleteFunc(l.segs, func(s *segment) bool {
		if s.path != path {
			return false
		}
		l.closeFile(s)
		return true
	})
	var s *segment
	if len(l.spares) > 0 {
		s = l.spares[0]
		l.spares = l.spares[1:]
		if err := l.opt.FS.Rename(s.path, path); err != nil {
			l.closeFile(s)
			return nil, fmt.Errorf("log: reuse segment: %w", err)
		}
		s.path = path
		if s.f == nil {
			f, err := l.opt.FS.OpenFile(path, os.O_RDWR, 0)
			if err != nil {
				return nil, fmt.Errorf("log: reuse segment: %w", err)
			}
			s.f = f
		}
	} else {
		f, err := l.opt.FS.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o600)
		if err != nil {
			return nil, fmt.Errorf("log: create segment: %w", err)
		}
		s = &segment{path: path, f: f}
	}
	epoch := rand.Uint32()
	for epoch == 0 || epoch == s.epoch {
		epoch = rand.Uint32()
	}
	s.epoch, s.first, s.last, s.size, s.valid, s.scanned = epoch, l.next, l.next-1, segmentHeaderSize, true, true
	s.syncedEnd = segmentHeaderSize
	if _, err := s.f.WriteAt(segmentHeader(epoch, l.next), 0); err != nil {
		l.closeFile(s)
		l.opt.FS.Remove(path)
		return nil, fmt.Errorf("log: write segment header: %w", err)
	}
	s.grown = max(s.grown, segmentHeaderSize)
	// The new name must survive a crash before anything in the file is
	// acknowledged; the header itself is synced with the first records.
	if err := l.opt.FS.SyncDir(l.dir); err != nil {
		l.closeFile(s)
		l.opt.FS.Remove(path)
		return nil, fmt.Errorf("log: sync directory: %w", err)
	}
	l.segs = append(l.segs, s)
	l.active = s
	return s, nil
}

// closeFile closes s's file, if open. Call with mu held.
func (l *Log) closeFile(s *segment) {
	if s.f != nil {
		// A sync that holds it finishes first (fsutil.Fdatasync).
		s.f.Close()
		s.f = nil
	}
	l.readers = slices.DeleteFunc(l.readers, func(r *segment) bool { return r == s })
}

// openForReads keeps a sealed segment's file among the open readers,
// closing the least recently used beyond openReaders. Call with mu held.
func (l *Log) openForReads(s *segment) {
	if i := slices.Index(l.readers, s); i >= 0 {
		l.readers = append(slices.Delete(l.readers, i, i+1), s)
		return
	}
	l.readers = append(l.readers, s)
	for len(l.readers) > openReaders {
		old := l.readers[0]
		l.readers = l.readers[1:]
		if old != l.active && !slices.Contains(l.dirty, old) && old.f != nil {
			old.f.Close()
			old.f = nil
		}
	}
}

// Sync makes every record appended so far durable. Once a sync has
// failed, every later Sync and Append fails until Recover: the kernel may
// have dropped the pages it could not write, and a later fdatasync that
// succeeds says nothing about them.
func (l *Log) Sync() error {
	if ackBeforeSync.Load() {
		return nil // a test's negative control (testhook.go)
	}
	l.syncCall.Lock()
	defer l.syncCall.Unlock()
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return errors.New("log: closed")
	}
	dirty := l.dirty
	l.dirty = nil
	upTo := l.next - 1
	files := make([]File, len(dirty))
	ends := make([]int64, len(dirty))
	for i, s := range dirty {
		files[i], ends[i] = s.f, s.size
	}
	l.mu.Unlock()
	err := l.syncFiles(files)
	l.mu.Lock()
	defer l.mu.Unlock()
	if err != nil {
		// Keep them dirty: a later Sync must not report success.
		l.dirty = append(dirty, l.dirty...)
		l.breakUnsynced()
		return err
	}
	l.synced = max(l.synced, upTo)
	for i, s := range dirty {
		s.syncedEnd = max(s.syncedEnd, ends[i])
	}
	return nil
}

// breakUnsynced makes the records no sync covered unreadable, before the
// caller answers their batches 503: it overwrites the header of the first
// of them with zeros, through the descriptor already open (the failing
// disk may refuse to open a file), so that reading stops there. Recover
// cuts them off the disk; until it has, a stop and a start (the recovery
// may never have run, or the disk failed it) must not replay them. The
// zeros reach the page cache, which outlives the process but not a power
// loss. Only the active segment holds records no sync covered (roll syncs
// a segment before it begins the next). Call with mu held.
func (l *Log) breakUnsynced() {
	for _, s := range l.dirty {
		if s.f != nil && s.size > s.syncedEnd {
			s.f.WriteAt(make([]byte, RecordHeaderSize), s.syncedEnd)
		}
	}
}

// Synced is the LSN of the last record a successful sync covered (or
// Replay found): every record up to it is durable.
func (l *Log) Synced() uint64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.synced
}

// syncFiles fdatasyncs files, setting the sticky error on a failure.
func (l *Log) syncFiles(files []File) error {
	l.syncMu.Lock()
	defer l.syncMu.Unlock()
	if err := l.Err(); err != nil {
		return err
	}
	for _, f := range files {
		if err := l.opt.FS.SyncFile(f); err != nil {
			l.errMu.Lock()
			l.syncErr = fmt.Errorf("log: sync %s: %w", filepath.Base(f.Name()), err)
			l.errMu.Unlock()
			return l.Err()
		}
	}
	return nil
}

// Recover brings the log back after a failed sync, as a restart would,
// and returns the LSN of the last record it kept. Every record after the
// last successful sync is dropped, from the disk too: none of them was
// acknowledged, and one that reached the disk anyway must not come back
// at the next start. What the kept part holds is read back from the disk,
// through new descriptors and with the kernel's cached pages dropped (the
// pages a failed fdatasync could not write may still be in the cache,
// marked clean), and the log is cut at the first record that does not
// read back whole. The cut is synced: while the disk still fails, Recover
// fails and the log stays failed. Appends then go on in a new segment.
// It does nothing and returns Synced when no sync has failed.
func (l *Log) Recover() (uint64, error) {
	l.syncCall.Lock()
	defer l.syncCall.Unlock()
	l.syncMu.Lock()
	defer l.syncMu.Unlock()
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return 0, errors.New("log: closed")
	}
	if l.Err() == nil {
		return l.synced, nil
	}
	keep := l.synced
	l.breakUnsynced()
	for _, s := range l.segs {
		l.closeFile(s)
	}
	l.active, l.dirty = nil, nil
	// A segment that begins after the last synced record holds nothing
	// anybody was told about.
	var removed bool
	segs := l.segs[:0:0]
	for _, s := range l.segs {
		if s.first <= keep {
			segs = append(segs, s)
			continue
		}
		if err := l.opt.FS.Remove(s.path); err != nil && !errors.Is(err, os.ErrNotExist) {
			return 0, fmt.Errorf("log: recover: remove segment: %w", err)
		}
		removed = true
	}
	l.segs = segs
	if removed {
		if err := l.opt.FS.SyncDir(l.dir); err != nil {
			return 0, fmt.Errorf("log: recover: sync directory: %w", err)
		}
	}
	last := keep
	if n := len(l.segs); n > 0 {
		var err error
		if last, err = l.cut(l.segs[n-1], keep); err != nil {
			return 0, err
		}
	}
	l.next, l.synced = last+1, last
	l.errMu.Lock()
	l.syncErr = nil
	l.errMu.Unlock()
	return last, nil
}

// cut reads segment s back from the disk up to record keep and truncates
// it after that record (or before the first one that does not read back
// whole), then syncs it. It returns the LSN of the last record left. Call
// with mu held.
func (l *Log) cut(s *segment, keep uint64) (uint64, error) {
	f, err := l.opt.FS.OpenFile(s.path, os.O_RDWR, 0)
	if err != nil {
		return 0, fmt.Errorf("log: recover: open segment: %w", err)
	}
	defer f.Close()
	// Pages still dirty are not dropped: those hold records after keep
	// only (everything up to keep was synced), and are cut below. A file
	// system other than the operating system's keeps no page cache.
	if osf, ok := f.(*os.File); ok {
		if err := fsutil.DropCache(osf); err != nil {
			return 0, fmt.Errorf("log: recover: %w", err)
		}
	}
	end, last := int64(0), s.first-1
	var hdr [segmentHeaderSize]byte
	if _, err := f.ReadAt(hdr[:], 0); err == nil {
		if epoch, first, ok := parseSegmentHeader(hdr[:]); ok && first == s.first {
			s.valid, s.epoch, end = true, epoch, segmentHeaderSize
			sc := &scanner{r: f, off: segmentHeaderSize, epoch: epoch, next: s.first}
			for last < keep {
				if _, _, ok := sc.next1(); !ok {
					break
				}
				end, last = sc.off, sc.next-1
			}
			if sc.err != nil {
				return 0, fmt.Errorf("log: recover: read segment %s: %w", filepath.Base(s.path), sc.err)
			}
		}
	} else if !errors.Is(err, io.EOF) {
		return 0, fmt.Errorf("log: recover: read segment %s: %w", filepath.Base(s.path), err)
	}
	if last < keep {
		// Synced records did not read back: the disk lost them.
		return 0, fmt.Errorf("log: recover: records %d to %d were synced but do not read back from %s", last+1, keep, filepath.Base(s.path))
	}
	if err := f.Truncate(end); err != nil {
		return 0, fmt.Errorf("log: recover: truncate segment %s: %w", filepath.Base(s.path), err)
	}
	if err := l.opt.FS.SyncFile(f); err != nil {
		return 0, fmt.Errorf("log: recover: sync segment %s: %w", filepath.Base(s.path), err)
	}
	s.size, s.grown, s.last, s.scanned = end, end, last, true
	return last, nil
}

// probeFile is the file Probe writes in the log's directory.
const probeFile = ".probe"

// Probe checks that the log's file system takes writes: it writes size
// bytes to a file of its own and removes it. The log's segments are not
// touched.
func (l *Log) Probe(size int) error {
	path := filepath.Join(l.dir, probeFile)
	f, err := l.opt.FS.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return fmt.Errorf("log: probe: %w", err)
	}
	_, werr := f.WriteAt(make([]byte, size), 0)
	cerr := f.Close()
	l.opt.FS.Remove(path)
	if err := errors.Join(werr, cerr); err != nil {
		return fmt.Errorf("log: probe: %w", err)
	}
	return nil
}

// Err returns the sticky sync error, nil while the log is healthy.
func (l *Log) Err() error {
	l.errMu.Lock()
	defer l.errMu.Unlock()
	return l.syncErr
}

// ErrGone is returned by ReadRecord when the record is no longer in the
// log: its segment was released, or the record there is not the one named.
var ErrGone = errors.New("log: record no longer in the log")

// ReadRecord returns the LSN and payload of the record at offset off of
// segment (where Append or Replay said it went), after checking that it
// is whole and was written in that segment's current life. The caller
// checks that it is the record it wants.
func (l *Log) ReadRecord(seg uint64, off int64) (uint64, []byte, error) {
	for attempt := 0; ; attempt++ {
		f, epoch, err := l.reader(seg)
		if err != nil {
			return 0, nil, err
		}
		var (
			h       [RecordHeaderSize]byte
			payload []byte
		)
		_, err = f.ReadAt(h[:], off)
		if err == nil {
			n := binary.LittleEndian.Uint32(h[4:8])
			if n > MaxRecord || binary.LittleEndian.Uint32(h[16:20]) != epoch {
				return 0, nil, ErrGone
			}
			payload = make([]byte, n)
			_, err = f.ReadAt(payload, off+RecordHeaderSize)
		}
		if errors.Is(err, os.ErrClosed) && attempt == 0 {
			continue // closed under us by the reader cache: open it again
		}
		if errors.Is(err, io.EOF) {
			return 0, nil, ErrGone
		}
		if err != nil {
			return 0, nil, fmt.Errorf("log: read segment %d at %d: %w", seg, off, err)
		}
		if recordCRC(h[:], payload) != binary.LittleEndian.Uint32(h[0:4]) {
			return 0, nil, ErrGone
		}
		return binary.LittleEndian.Uint64(h[8:16]), payload, nil
	}
}

// reader returns an open file of the segment named segment, and its epoch.
func (l *Log) reader(first uint64) (File, uint32, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return nil, 0, errors.New("log: closed")
	}
	i, ok := slices.BinarySearchFunc(l.segs, first, func(s *segment, first uint64) int {
		switch {
		case s.first < first:
			return -1
		case s.first > first:
			return 1
		}
		return 0
	})
	if !ok {
		return nil, 0, ErrGone
	}
	s := l.segs[i]
	if s.f == nil {
		f, err := l.opt.FS.OpenFile(s.path, os.O_RDONLY, 0)
		if err != nil {
			return nil, 0, fmt.Errorf("log: open segment: %w", err)
		}
		s.f = f
	}
	if s != l.active {
		l.openForReads(s)
	}
	return s.f, s.epoch, nil
}

// SegmentInfo describes a segment that appends no longer go to.
type SegmentInfo struct {
	// First and Last are the LSNs of its first and last records.
	First, Last uint64
}

// Sealed lists the segments appends no longer go to, oldest first: the
// ones a store may release.
func (l *Log) Sealed() []SegmentInfo {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []SegmentInfo
	for _, s := range l.segs {
		if s == l.active || slices.Contains(l.dirty, s) {
			continue
		}
		out = append(out, SegmentInfo{First: s.first, Last: s.last})
	}
	return out
}

// Release gives up a sealed segment: none of its records will be read
// again. It is kept as a spare for reuse, up to Options.Spares, or
// deleted.
func (l *Log) Release(first uint64) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	i := slices.IndexFunc(l.segs, func(s *segment) bool { return s.first == first })
	if i < 0 {
		return nil
	}
	s := l.segs[i]
	if s == l.active || slices.Contains(l.dirty, s) {
		return fmt.Errorf("log: segment %d is still being written", first)
	}
	l.segs = slices.Delete(l.segs, i, i+1)
	l.closeFile(s)
	if len(l.spares) < l.opt.Spares {
		// A spare never keeps a segment's name: the next segment may
		// need that very name (an empty one a crash left at the next
		// LSN). It is reopened for writing when it is reused.
		path := filepath.Join(l.dir, fmt.Sprintf("%d%s", rand.Uint64(), prepSuffix))
		if err := l.opt.FS.Rename(s.path, path); err == nil {
			s.path, s.valid = path, false
			l.spares = append(l.spares, s)
			// Synced, so that a crash cannot bring the segment back
			// under its old name once it is reused, its header half
			// rewritten: that would read as a damaged segment.
			return l.syncDirReleased()
		}
	}
	if err := l.opt.FS.Remove(s.path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("log: delete segment: %w", err)
	}
	return l.syncDirReleased()
}

// syncDirReleased makes a released segment's rename or removal durable.
func (l *Log) syncDirReleased() error {
	if err := l.opt.FS.SyncDir(l.dir); err != nil {
		return fmt.Errorf("log: release: sync directory: %w", err)
	}
	return nil
}

// Files returns how many segment files the log holds, spares included.
func (l *Log) Files() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.segs) + len(l.spares)
}

// Close closes every file. It does not sync: call Sync first.
func (l *Log) Close() error {
	l.mu.Lock()
	l.closed = true
	l.mu.Unlock()
	l.prepWG.Wait()
	// A sync under way finishes first; later ones find the log closed.
	l.syncCall.Lock()
	defer l.syncCall.Unlock()
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, s := range append(slices.Clone(l.segs), l.spares...) {
		l.closeFile(s)
	}
	l.segs, l.spares, l.active, l.readers = nil, nil, nil, nil
	return nil
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
	return append(b.buf, make([]byte, RecordHeaderSize)...)
}

// Done ends the record that Next started.
func (b *Batch) Done(buf []byte) { b.buf = buf }

// Len is the number of records in b.
func (b *Batch) Len() int { return len(b.starts) }

// Size is the number of bytes b will write.
func (b *Batch) Size() int { return len(b.buf) }

// Offset is where record i of b starts, relative to the first.
func (b *Batch) Offset(i int) int64 { return int64(b.starts[i]) }
