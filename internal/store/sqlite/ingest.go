package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"hookd"
	"hookd/internal/store"
)

// How events reach the database. EventInsertMany decides everything about
// a batch (seq, duplicate or not, stale or not), appends it to the
// write-ahead log in one write, and returns; Sync makes the log durable,
// and only then does the batcher answer. The indexer copies the log into
// SQLite afterwards, in large transactions, off the acknowledgement path
// (see indexer.go).
//
// Until the indexer has them, the events of the log are not in SQLite:
// the decisions that depend on earlier events consult the pending maps
// (what the log holds beyond the index) first and SQLite second, and
// every read of events first waits until the index has caught up with
// what was appended when the read began (caughtUp).

// dedupeRef names a provider id within a source.
type dedupeRef struct{ source, key string }

// pendingEvent is the holder of a dedupe key that is in the log but not
// yet in SQLite.
type pendingEvent struct {
	id       string
	seq      int64
	received int64
	lsn      uint64
}

// pendingKey is the newest timestamp of an entity key among the events
// appended so far, while some are not yet in SQLite.
type pendingKey struct {
	newest int64
	lsn    uint64
}

// pendUndo restores one pending map entry when a batch fails to append,
// or when a recovery drops its record (lsn) from the log.
type pendUndo struct {
	lsn    uint64
	dedupe bool
	ref    dedupeRef
	had    bool
	ev     pendingEvent
	key    pendingKey
}

// EventInsertMany decides and logs ins. The batch is in the log (not yet
// durable: see Sync) when it returns, and readers of this store see it
// (they sync the log first if need be); when it returns an error, nothing
// of the batch was logged.
func (s *Store) EventInsertMany(ctx context.Context, ins []*store.EventInsert) ([]store.EventInsertResult, error) {
	if len(ins) == 0 {
		return nil, nil
	}
	s.appendMu.Lock()
	defer s.appendMu.Unlock()
	if s.closed {
		return nil, &hookd.Error{Code: hookd.EUnavailable, Message: "shutting down"}
	}
	if err := s.ingestable(); err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if err := s.waitBacklog(ctx); err != nil {
		return nil, err
	}
	lsn := s.wal.NextLSN()
	s.batch.Reset()
	recs := make([]*logRecord, 0, len(ins))
	res := make([]store.EventInsertResult, len(ins))
	seq := s.nextSeq
	var undo []pendUndo
	for i, in := range ins {
		r, out, err := s.decide(in, lsn+uint64(i), &seq, &undo)
		if err != nil {
			s.undoPending(undo)
			return nil, fmt.Errorf("insert event: %w", mapErr(err))
		}
		res[i] = out
		recs = append(recs, r)
		s.batch.Done(r.appendTo(s.batch.Next()))
	}
	first, seg, off, err := s.wal.Append(&s.batch)
	if err != nil {
		s.undoPending(undo)
		if s.wal.Err() == nil {
			// A full disk, most often: not ready until a probe can write.
			s.setFault(&s.writeErr, err)
		} else {
			// The sync of a full segment, before the next one, failed.
			s.wakeRecovery()
		}
		return nil, &hookd.Error{Code: hookd.EUnavailable, Message: "storage unavailable", Err: err}
	}
	if s.writeErr.Load() != nil {
		s.clearFault(&s.writeErr)
	}
	if first != lsn {
		// Only this method appends, under appendMu: the LSNs it chose
		// are the ones the log gave. Were they not, the records carry
		// other LSNs than the decisions: refuse the batch (it is in the
		// log, and a restart indexes it as it is there).
		s.undoPending(undo)
		err := fmt.Errorf("log appended at LSN %d, want %d", first, lsn)
		s.log.Error("write-ahead log out of step", "err", err)
		return nil, &hookd.Error{Code: hookd.EInternal, Message: "internal error", Err: err}
	}
	for i, r := range recs {
		r.segment, r.offset = seg, off+s.batch.Offset(i)
		// The row will point at the record: the indexer needs neither
		// the body nor the headers, and its queue holds no memory of
		// theirs.
		r.body, r.headers = nil, ""
	}
	s.nextSeq = seq
	// The indexer takes them once they are durable (Sync): a row must
	// never point at a record a crash could take back. Until then, a
	// failed sync may drop them (recoverLog), and their entries in the
	// pending maps with them.
	s.unsyncedMu.Lock()
	s.unsynced = append(s.unsynced, recs...)
	s.unsyncedUndo = append(s.unsyncedUndo, undo...)
	s.unsyncedMu.Unlock()
	s.logged.Store(recs[len(recs)-1].lsn)
	s.mark.Store(&store.SyncMark{Gen: s.gen.Load(), LSN: recs[len(recs)-1].lsn})
	return res, nil
}

// decide makes the record of one insert: a duplicate request, or a new
// event with the next seq. It updates the pending maps (so that later
// inserts of the same batch see it) and notes how to undo that.
func (s *Store) decide(in *store.EventInsert, lsn uint64, seq *int64, undo *[]pendUndo) (*logRecord, store.EventInsertResult, error) {
	e := in.Event
	received := e.ReceivedAt.UnixMicro()
	var (
		ref        dedupeRef
		refHash    uint64
		keyRefHash uint64
	)
	if e.ExternalID != "" && in.DedupeWindow > 0 {
		ref = dedupeRef{e.Source, store.DedupeKey(e.ExternalID)}
		refHash = keyHash(ref.source, ref.key)
		h, found, err := s.dedupeHolder(ref, refHash)
		if err != nil {
			return nil, store.EventInsertResult{}, err
		}
		// The window counts from the first occurrence; once it has
		// closed, the id names a new event (the old row keeps its
		// external_id and gives up its dedupe_key when this one is
		// indexed).
		if found && received-h.received < in.DedupeWindow.Microseconds() {
			r := &logRecord{lsn: lsn, kind: recDuplicate, received: received, requestID: e.RequestID, eventID: h.id}
			return r, store.EventInsertResult{ID: h.id, Seq: h.seq, Duplicate: true}, nil
		}
	}
	r := &logRecord{
		lsn: lsn, kind: recEvent, received: received,
		id: e.ID, source: e.Source, externalID: e.ExternalID, dedupeKey: ref.key,
		typ: e.Type, key: e.Key, contentType: e.ContentType, headers: in.HeadersJSON, body: e.Body,
		traceParent: e.TraceParent,
	}
	if r.headers == "" {
		var err error
		if r.headers, err = store.EncodeHeaders(e.Headers); err != nil {
			return nil, store.EventInsertResult{}, err
		}
	}
	keyRef := dedupeRef{e.Source, e.Key}
	var newest int64
	if !e.OccurredAt.IsZero() {
		// Stored whatever the key: the event's time is shown.
		r.hasOccurred, r.occurred = true, e.OccurredAt.UnixMicro()
	}
	// An event with a key and a time takes part in out-of-order checks.
	keyed := e.Key != "" && r.hasOccurred
	if keyed {
		keyRefHash = keyHash(keyRef.source, keyRef.key)
		n, found, err := s.newestForKey(keyRef, keyRefHash)
		if err != nil {
			return nil, store.EventInsertResult{}, err
		}
		// Stale: strictly older than the newest already received.
		r.stale = found && n > r.occurred
		newest = r.occurred
		if found {
			newest = max(n, r.occurred)
		}
	}
	*seq++
	r.seq = *seq
	s.filterAdd(refHash, keyRefHash, r.dedupeKey != "", keyed)
	s.pendMu.Lock()
	if r.dedupeKey != "" {
		old, had := s.pendDedupe[ref]
		*undo = append(*undo, pendUndo{lsn: lsn, dedupe: true, ref: ref, had: had, ev: old})
		s.pendDedupe[ref] = pendingEvent{id: r.id, seq: r.seq, received: received, lsn: lsn}
	}
	if keyed {
		old, had := s.pendKeys[keyRef]
		*undo = append(*undo, pendUndo{lsn: lsn, ref: keyRef, had: had, key: old})
		s.pendKeys[keyRef] = pendingKey{newest: newest, lsn: lsn}
	}
	s.pendMu.Unlock()
	return r, store.EventInsertResult{ID: e.ID, Seq: r.seq, Stale: r.stale}, nil
}

// dedupeHolder finds the event holding a dedupe key: in the log beyond
// the index first, then in SQLite. In that order, an event the indexer
// moves from one to the other in between is seen in one of them: it
// leaves the pending map only after its row is committed. SQLite is asked
// only when the filter does not rule the key out (see filter.go).
func (s *Store) dedupeHolder(ref dedupeRef, hash uint64) (pendingEvent, bool, error) {
	s.pendMu.Lock()
	h, ok := s.pendDedupe[ref]
	s.pendMu.Unlock()
	if ok {
		return h, true, nil
	}
	if fs := s.filt.Load(); fs != nil && !fs.dedupe.mayContain(hash) {
		return h, false, nil
	}
	// A context that can end would cost a goroutine per statement in the
	// driver; this query ends by itself.
	err := s.findDup.QueryRowContext(context.Background(), ref.source, ref.key).Scan(&h.seq, &h.id, &h.received)
	if errors.Is(err, sql.ErrNoRows) {
		return h, false, nil
	}
	return h, err == nil, err
}

// newestForKey is the newest timestamp of the events with an entity key,
// from the pending map or else SQLite (a pending entry already counts what
// SQLite held when it was made).
func (s *Store) newestForKey(ref dedupeRef, hash uint64) (int64, bool, error) {
	s.pendMu.Lock()
	p, ok := s.pendKeys[ref]
	s.pendMu.Unlock()
	if ok {
		return p.newest, true, nil
	}
	if fs := s.filt.Load(); fs != nil && !fs.keys.mayContain(hash) {
		return 0, false, nil
	}
	var newest sql.NullInt64
	if err := s.newestKey.QueryRowContext(context.Background(), ref.source, ref.key).Scan(&newest); err != nil {
		return 0, false, err
	}
	return newest.Int64, newest.Valid, nil
}

// undoPending restores the pending entries that undo's records replaced.
// An entry whose own record the indexer has committed meanwhile is not
// restored but dropped: SQLite holds it, and unpend, which has passed that
// record, would never drop it (it had been taken over then).
func (s *Store) undoPending(undo []pendUndo) {
	s.pendMu.Lock()
	defer s.pendMu.Unlock()
	for i := len(undo) - 1; i >= 0; i-- {
		u := undo[i]
		switch {
		case u.dedupe && u.had && u.ev.lsn > s.pendUnpended:
			s.pendDedupe[u.ref] = u.ev
		case u.dedupe:
			delete(s.pendDedupe, u.ref)
		case u.had && u.key.lsn > s.pendUnpended:
			s.pendKeys[u.ref] = u.key
		default:
			delete(s.pendKeys, u.ref)
		}
	}
}

// unpend drops the pending entries that recs, now committed to SQLite,
// made, unless a later record has taken them over.
func (s *Store) unpend(recs []*logRecord) {
	s.pendMu.Lock()
	defer s.pendMu.Unlock()
	for i, r := range recs {
		if i%256 == 255 {
			// Let the log writer in: it looks up these maps per event.
			s.pendMu.Unlock()
			s.pendMu.Lock()
		}
		s.pendUnpended = max(s.pendUnpended, r.lsn)
		if r.kind != recEvent {
			continue
		}
		if r.dedupeKey != "" {
			ref := dedupeRef{r.source, r.dedupeKey}
			if p, ok := s.pendDedupe[ref]; ok && p.lsn == r.lsn {
				delete(s.pendDedupe, ref)
			}
		}
		if r.hasOccurred && r.key != "" {
			ref := dedupeRef{r.source, r.key}
			if p, ok := s.pendKeys[ref]; ok && p.lsn == r.lsn {
				delete(s.pendKeys, ref)
			}
		}
	}
}

// ingestable fails when events must not be accepted: a sync has failed
// and the log is not yet recovered, or the indexer cannot write (a full
// disk, most often): what the log accepted would then only pile up.
func (s *Store) ingestable() error {
	if err := s.writable(); err != nil {
		return err
	}
	if err := s.wal.Err(); err != nil {
		return &hookd.Error{Code: hookd.EUnavailable, Message: "storage unavailable: recovering from a failed sync", Err: err}
	}
	s.idxMu.Lock()
	ierr := s.idxErr
	s.idxMu.Unlock()
	if ierr != nil {
		return &hookd.Error{Code: hookd.EUnavailable, Message: "storage unavailable", Err: ierr}
	}
	return nil
}

// waitBacklog waits while the log holds more than the backlog bound of
// events not yet indexed, up to a second (or ctx): the queue of the
// indexer lives in memory.
func (s *Store) waitBacklog(ctx context.Context) error {
	var timer *time.Timer
	for {
		s.idxMu.Lock()
		over := s.idxBytes > s.opt.Backlog
		done := s.idxDone
		s.idxMu.Unlock()
		if !over {
			return nil
		}
		if timer == nil {
			timer = time.NewTimer(time.Second)
			defer timer.Stop()
			s.wakeIndexer(true)
		}
		select {
		case <-done:
		case <-timer.C:
			return &hookd.Error{Code: hookd.EUnavailable, Message: "storage busy: indexing is behind"}
		case <-ctx.Done():
			return ctx.Err()
		}
		if err := s.ingestable(); err != nil {
			return err
		}
	}
}
