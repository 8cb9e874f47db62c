package wal

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
)

// Part is the beginning of one segment file, up to the end of a record:
// what a backup copies of it.
type Part struct {
	// Name is the segment file's name in the log directory.
	Name string
	// First and Last are the LSNs of the first and the last record the
	// part holds.
	First, Last uint64
	// Size is the part's length in bytes: the segment's header and its
	// records up to Last.
	Size int64

	path string
}

// Parts lists what a copy of the log up to LSN upTo consists of: the
// beginning of every segment that holds records up to it, each cut after
// its last record up to upTo. Every record up to upTo must have been
// synced, and the caller keeps the segments from being released (Release)
// until it has read the parts (ReadPart). A log made of these parts
// replays (Replay) exactly the records up to upTo.
func (l *Log) Parts(upTo uint64) ([]Part, error) {
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return nil, fmt.Errorf("log: closed")
	}
	if upTo > l.synced {
		l.mu.Unlock()
		return nil, fmt.Errorf("log: copy up to record %d: only %d are synced", upTo, l.synced)
	}
	type seg struct {
		path  string
		first uint64
		last  uint64 // the LSN the part must reach
		epoch uint32
	}
	var segs []seg
	for i, s := range l.segs {
		if s.first > upTo {
			break
		}
		last := upTo
		if i+1 < len(l.segs) {
			last = min(upTo, l.segs[i+1].first-1)
		}
		if last < s.first {
			continue // holds no record (a segment a crash left empty)
		}
		segs = append(segs, seg{path: s.path, first: s.first, last: last, epoch: s.epoch})
	}
	l.mu.Unlock()
	parts := make([]Part, 0, len(segs))
	for _, s := range segs {
		f, err := l.opt.FS.OpenFile(s.path, os.O_RDONLY, 0)
		if err != nil {
			return nil, fmt.Errorf("log: open segment %s: %w", filepath.Base(s.path), err)
		}
		sc := &scanner{r: f, off: segmentHeaderSize, epoch: s.epoch, next: s.first}
		for sc.next <= s.last {
			if _, _, ok := sc.next1(); !ok {
				break
			}
		}
		f.Close()
		if sc.err != nil {
			return nil, fmt.Errorf("log: read segment %s: %w", filepath.Base(s.path), sc.err)
		}
		if sc.next <= s.last {
			return nil, fmt.Errorf("log: segment %s: record %d does not read back", filepath.Base(s.path), sc.next)
		}
		parts = append(parts, Part{Name: filepath.Base(s.path), First: s.first, Last: s.last, Size: sc.off, path: s.path})
	}
	return parts, nil
}

// ReadPart writes part p (from Parts) to w.
func (l *Log) ReadPart(p Part, w io.Writer) error {
	f, err := l.opt.FS.OpenFile(p.path, os.O_RDONLY, 0)
	if err != nil {
		return fmt.Errorf("log: open segment %s: %w", p.Name, err)
	}
	defer f.Close()
	n, err := io.Copy(w, io.NewSectionReader(f, 0, p.Size))
	if err != nil {
		return fmt.Errorf("log: copy segment %s: %w", p.Name, err)
	}
	if n != p.Size {
		return fmt.Errorf("log: copy segment %s: %d bytes of %d", p.Name, n, p.Size)
	}
	return nil
}
