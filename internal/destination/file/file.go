// Package file is the file destination: it appends one record per
// delivery to a local file and fsyncs it before the delivery counts as
// done.
//
// Options: path, the absolute path of the file (its directory must exist;
// the file is created with mode 0600 and always opened for appending), and
// format, jsonl (default) or raw.
//
// # Formats
//
// jsonl writes one JSON object per delivery, on a line of its own:
//
//	{"id":"evt_…","source":"…","type":"…","key":"…","occurred_at":"…",
//	 "received_at":"…","delivery_id":"dlv_…","attempt":1,
//	 "content_type":"…","body":"…","body_base64":"…"}
//
// key is omitted when empty and occurred_at when unknown; both times are
// RFC 3339 with nanoseconds, in UTC. body is the body as a JSON string,
// present only when the body is valid UTF-8 (a JSON decoder cannot give
// back other bytes exactly); body_base64, always present, is the body's
// exact bytes in standard base64 and is the one to use when the bytes
// matter.
//
// raw writes the body's bytes as they are, followed by "\n". Nothing is
// escaped or framed, so it is only for line-oriented payloads (a JSON
// document on one line, say): a consumer must cope with bodies that
// contain newlines themselves, and no event id is recorded.
//
// # Durability and duplicates
//
// Each record is written with a single write call, never interleaved with
// another, and Deliver returns nil only after the file has been fsynced:
// a delivery reported done is on disk. Concurrent deliveries are grouped:
// records that arrive while an fsync is in progress are written together
// by the next write and share the next fsync.
//
// Delivery is at least once. A record may appear twice: when hookd dies
// between the fsync and recording the outcome, or when an attempt whose
// write reached the file failed at its fsync and is retried. Consumers
// deduplicate by id (jsonl); attempt and delivery_id tell the copies apart. A write that fails
// part way (a full disk) is cut back off the file when possible, so that
// the next record starts on a line of its own.
//
// # Rotation
//
// To rotate, rename the file (or delete it). At most once a second, before
// writing, the destination checks whether path still names the file it has
// open; if not, it opens (creating it if needed) the file now at path and
// writes there. So after a rename, records may still go to the renamed
// file for up to a second: a rotation tool should wait a little before
// compressing or shipping it. Copy-and-truncate rotation also works, as the
// file is always written at its end, but may lose records written between
// the copy and the truncation.
package file

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"time"
	"unicode/utf8"

	"hookd/internal/destination"
)

// Type is the destination type key.
const Type = "file"

func init() {
	destination.Register(Type, destination.Decoded(New))
}

// fileMode is the mode a missing file is created with.
const fileMode = 0o600

// reopenInterval is how often, at most, the destination checks that path
// still names the open file.
const reopenInterval = time.Second

// Destination appends records to one file. It is safe for concurrent use.
type Destination struct {
	s   *settings
	now func() time.Time

	mu   sync.Mutex
	cond *sync.Cond // on mu: signalled when a flush ends
	// pending collects the records of deliveries waiting for the flush in
	// progress; the delivery that created it flushes it.
	pending *batch
	// flushing is true while a flush is in progress; the flusher owns f,
	// lastCheck and the reopen outside mu.
	flushing bool
	closed   bool

	f         *os.File
	lastCheck time.Time
}

// batch is records written by one write call and made durable by one fsync.
type batch struct {
	buf  []byte
	done chan struct{} // closed once err is set
	err  error
}

var _ destination.Destination = (*Destination)(nil)

// New validates o, opens the file and returns a destination. Errors name
// the option at fault. env may be nil (the real clock is used).
func New(env *destination.Env, o Options) (*Destination, error) {
	s, err := o.validate()
	if err != nil {
		return nil, err
	}
	now := time.Now
	if env != nil && env.Now != nil {
		now = env.Now
	}
	f, err := openFile(s.path)
	if err != nil {
		return nil, fmt.Errorf("path: %w", err)
	}
	d := &Destination{s: s, now: now, f: f, lastCheck: now()}
	d.cond = sync.NewCond(&d.mu)
	return d, nil
}

// openFile opens path for appending, creating it if missing, and makes
// its directory entry durable.
func openFile(path string) (*os.File, error) {
	f, err := os.OpenFile(path, os.O_APPEND|os.O_WRONLY|os.O_CREATE, fileMode)
	if err != nil {
		return nil, err
	}
	if fi, err := f.Stat(); err != nil {
		f.Close()
		return nil, err
	} else if !fi.Mode().IsRegular() {
		f.Close()
		return nil, fmt.Errorf("%s is not a regular file", path)
	}
	if err := syncDir(filepath.Dir(path)); err != nil {
		f.Close()
		return nil, err
	}
	return f, nil
}

// syncDir fsyncs dir, so that a file just created in it survives a crash.
func syncDir(dir string) error {
	if runtime.GOOS == "windows" {
		return nil // directories cannot be opened for syncing there
	}
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("sync directory %s: %w", dir, err)
	}
	return nil
}

// errClosed is returned by Deliver after Close.
var errClosed = errors.New("file: destination closed")

// Deliver appends one record and fsyncs the file. A nil error means the
// record is on disk. A failed write or fsync is a plain (retriable) error;
// a ctx already done gives an error wrapping ctx's error and writes
// nothing.
func (d *Destination) Deliver(ctx context.Context, m *destination.Message) (destination.Result, error) {
	if m == nil || m.Event == nil {
		return destination.Result{}, destination.Permanent(errors.New("file: no event to deliver"))
	}
	if err := ctx.Err(); err != nil {
		return destination.Result{}, fmt.Errorf("file: not written: %w", err)
	}
	rec, err := d.record(m)
	if err != nil {
		return destination.Result{}, err
	}

	d.mu.Lock()
	if d.closed {
		d.mu.Unlock()
		return destination.Result{}, errClosed
	}
	if err := ctx.Err(); err != nil {
		d.mu.Unlock()
		return destination.Result{}, fmt.Errorf("file: not written: %w", err)
	}
	b, leader := d.pending, false
	if b == nil {
		b, leader = &batch{done: make(chan struct{})}, true
		d.pending = b
	}
	b.buf = append(b.buf, rec...)
	if !leader {
		// b's leader writes it; the record can no longer be withdrawn, so
		// wait for the outcome whatever ctx does (an fsync is bounded).
		d.mu.Unlock()
		<-b.done
		return destination.Result{}, b.err
	}
	for d.flushing {
		d.cond.Wait()
	}
	// Only b's leader takes b, so d.pending is still b.
	d.pending = nil
	d.flushing = true
	d.mu.Unlock()

	b.err = d.flush(b.buf)

	d.mu.Lock()
	d.flushing = false
	d.cond.Broadcast()
	d.mu.Unlock()
	close(b.done)
	return destination.Result{}, b.err
}

// record encodes m in the destination's format, newline included.
func (d *Destination) record(m *destination.Message) ([]byte, error) {
	e := m.Event
	if d.s.format == FormatRaw {
		rec := make([]byte, 0, len(e.Body)+1)
		return append(append(rec, e.Body...), '\n'), nil
	}
	r := jsonRecord{
		ID:          e.ID,
		Source:      e.Source,
		Type:        e.Type,
		Key:         e.Key,
		ReceivedAt:  e.ReceivedAt.UTC().Format(time.RFC3339Nano),
		DeliveryID:  m.DeliveryID,
		Attempt:     m.Attempt,
		ContentType: e.ContentType,
		BodyBase64:  base64.StdEncoding.EncodeToString(e.Body),
	}
	if !e.OccurredAt.IsZero() {
		r.OccurredAt = e.OccurredAt.UTC().Format(time.RFC3339Nano)
	}
	if utf8.Valid(e.Body) {
		body := string(e.Body)
		r.Body = &body
	}
	var buf bytes.Buffer
	buf.Grow(256 + len(e.Body)*3)
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(&r); err != nil { // Encode ends the line with "\n"
		return nil, destination.Permanent(fmt.Errorf("file: encode record: %w", err))
	}
	return buf.Bytes(), nil
}

// jsonRecord is one line of the jsonl format.
type jsonRecord struct {
	ID          string  `json:"id"`
	Source      string  `json:"source"`
	Type        string  `json:"type"`
	Key         string  `json:"key,omitempty"`
	OccurredAt  string  `json:"occurred_at,omitempty"`
	ReceivedAt  string  `json:"received_at"`
	DeliveryID  string  `json:"delivery_id"`
	Attempt     int     `json:"attempt"`
	ContentType string  `json:"content_type"`
	Body        *string `json:"body,omitempty"`
	BodyBase64  string  `json:"body_base64"`
}

// flush writes buf with one write call and fsyncs the file. Only the
// flusher calls it.
func (d *Destination) flush(buf []byte) error {
	if err := d.maybeReopen(); err != nil {
		return err
	}
	n, err := d.f.Write(buf)
	if err != nil {
		if n > 0 {
			d.cutTorn(n)
		}
		return fmt.Errorf("file: write %s: %w", d.s.path, err)
	}
	if err := d.f.Sync(); err != nil {
		return fmt.Errorf("file: sync %s: %w", d.s.path, err)
	}
	return nil
}

// cutTorn removes the n bytes a failed write left at the end of the file,
// so that the next record starts on a line of its own. When it cannot, it
// ends the torn line instead.
func (d *Destination) cutTorn(n int) {
	if fi, err := d.f.Stat(); err == nil && fi.Size() >= int64(n) {
		if d.f.Truncate(fi.Size()-int64(n)) == nil {
			return
		}
	}
	_, _ = d.f.Write([]byte{'\n'})
}

// maybeReopen, at most once per reopenInterval, checks that the path still
// names the open file, and opens the file at path when it does not (after a
// rename or a removal). On failure it returns an error without writing, and
// checks again on the next delivery: the open file may no longer be
// reachable by anyone.
func (d *Destination) maybeReopen() error {
	now := d.now()
	if now.Sub(d.lastCheck) < reopenInterval && now.Sub(d.lastCheck) >= 0 {
		return nil
	}
	atPath, err := os.Stat(d.s.path)
	if err == nil {
		open, err := d.f.Stat()
		if err != nil {
			return fmt.Errorf("file: stat open file: %w", err)
		}
		if os.SameFile(atPath, open) {
			d.lastCheck = now
			return nil
		}
	} else if !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("file: stat %s: %w", d.s.path, err)
	}
	f, err := openFile(d.s.path)
	if err != nil {
		return fmt.Errorf("file: reopen %s: %w", d.s.path, err)
	}
	old := d.f
	d.f = f
	d.lastCheck = now
	// Everything written to old was fsynced already.
	_ = old.Close()
	return nil
}

// Close waits for the deliveries in progress, then closes the file. Later
// Delivers fail; a second Close returns nil.
func (d *Destination) Close() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closed {
		return nil
	}
	d.closed = true
	for d.flushing || d.pending != nil {
		d.cond.Wait()
	}
	if err := d.f.Close(); err != nil && !errors.Is(err, os.ErrClosed) {
		return fmt.Errorf("file: close %s: %w", d.s.path, err)
	}
	return nil
}
