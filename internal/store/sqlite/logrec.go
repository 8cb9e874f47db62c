package sqlite

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// Kinds of log record.
const (
	// recEvent is a new event, with everything its row holds.
	recEvent byte = 1
	// recDuplicate is a request that duplicated a stored event.
	recDuplicate byte = 2
)

// logRecord is one record of the write-ahead log: an event to store, or a
// duplicate request to remember. The decisions (seq, dedupe, stale) were
// made when it was appended; indexing it into SQLite only carries them out.
type logRecord struct {
	lsn  uint64
	kind byte
	// Where the record is in the log: the segment (its first LSN) and
	// the byte offset. Not part of the payload.
	segment uint64
	offset  int64

	// recEvent
	seq         int64
	stale       bool
	hasOccurred bool
	occurred    int64 // unix microseconds
	received    int64 // unix microseconds (recDuplicate too)
	id          string
	source      string
	externalID  string
	// dedupeKey is what the row's dedupe_key holds: "" (NULL) when the
	// event is not deduplicated.
	dedupeKey   string
	typ         string
	key         string
	contentType string
	headers     string
	// traceParent is the event's hookd.Event.TraceParent; a record has
	// it (flagTrace) only when it is not empty, so that records written
	// with tracing off, and before it existed, are the same bytes.
	traceParent string
	body        []byte

	// recDuplicate
	requestID string
	eventID   string
}

const flagStale, flagOccurred, flagTrace = 1, 2, 4

// appendTo appends r's encoding (its payload in the log) to b.
func (r *logRecord) appendTo(b []byte) []byte {
	b = append(b, r.kind)
	switch r.kind {
	case recEvent:
		var flags byte
		if r.stale {
			flags |= flagStale
		}
		if r.hasOccurred {
			flags |= flagOccurred
		}
		if r.traceParent != "" {
			flags |= flagTrace
		}
		b = append(b, flags)
		b = binary.AppendUvarint(b, uint64(r.seq))
		b = binary.AppendVarint(b, r.received)
		if r.hasOccurred {
			b = binary.AppendVarint(b, r.occurred)
		}
		for _, s := range [...]string{r.id, r.source, r.externalID, r.dedupeKey, r.typ, r.key, r.contentType, r.headers} {
			b = appendString(b, s)
		}
		if r.traceParent != "" {
			b = appendString(b, r.traceParent)
		}
		b = binary.AppendUvarint(b, uint64(len(r.body)))
		b = append(b, r.body...)
	case recDuplicate:
		b = binary.AppendVarint(b, r.received)
		b = appendString(b, r.requestID)
		b = appendString(b, r.eventID)
	}
	return b
}

func appendString(b []byte, s string) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

var errShortRecord = errors.New("log record: truncated")

// decodeLogRecord decodes a payload appendTo wrote. It copies what it
// keeps: p may be reused after it returns.
func decodeLogRecord(lsn uint64, p []byte) (*logRecord, error) {
	d := decoder{b: p}
	r := &logRecord{lsn: lsn, kind: d.byte()}
	switch r.kind {
	case recEvent:
		flags := d.byte()
		if flags&^(flagStale|flagOccurred|flagTrace) != 0 {
			return nil, fmt.Errorf("log record %d: unknown flags %#x", lsn, flags)
		}
		r.stale, r.hasOccurred = flags&flagStale != 0, flags&flagOccurred != 0
		seq := d.uvarint()
		if seq > 1<<62 {
			return nil, fmt.Errorf("log record %d: seq out of range", lsn)
		}
		r.seq = int64(seq)
		r.received = d.varint()
		if r.hasOccurred {
			r.occurred = d.varint()
		}
		for _, s := range [...]*string{&r.id, &r.source, &r.externalID, &r.dedupeKey, &r.typ, &r.key, &r.contentType, &r.headers} {
			*s = d.string()
		}
		if flags&flagTrace != 0 {
			r.traceParent = d.string()
		}
		r.body = d.bytes()
	case recDuplicate:
		r.received = d.varint()
		r.requestID = d.string()
		r.eventID = d.string()
	default:
		if d.err == nil {
			return nil, fmt.Errorf("log record %d: unknown kind %d", lsn, r.kind)
		}
	}
	if d.err != nil {
		return nil, fmt.Errorf("log record %d: %w", lsn, d.err)
	}
	if len(d.b) != 0 {
		return nil, fmt.Errorf("log record %d: %d bytes after the end", lsn, len(d.b))
	}
	return r, nil
}

// decoder reads a payload; the first error sticks and every later read
// returns zero values.
type decoder struct {
	b   []byte
	err error
}

func (d *decoder) byte() byte {
	if d.err != nil || len(d.b) == 0 {
		d.err = errShortRecord
		return 0
	}
	c := d.b[0]
	d.b = d.b[1:]
	return c
}

func (d *decoder) uvarint() uint64 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Uvarint(d.b)
	if n <= 0 {
		d.err = errShortRecord
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *decoder) varint() int64 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Varint(d.b)
	if n <= 0 {
		d.err = errShortRecord
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *decoder) bytes() []byte {
	n := d.uvarint()
	if d.err != nil {
		return nil
	}
	if n > uint64(len(d.b)) {
		d.err = errShortRecord
		return nil
	}
	out := make([]byte, n)
	copy(out, d.b)
	d.b = d.b[n:]
	return out
}

func (d *decoder) string() string {
	n := d.uvarint()
	if d.err != nil {
		return ""
	}
	if n > uint64(len(d.b)) {
		d.err = errShortRecord
		return ""
	}
	s := string(d.b[:n])
	d.b = d.b[n:]
	return s
}
