package sqlite

import (
	"context"
	"database/sql/driver"
	"fmt"
	"sort"
	"strconv"
	"time"

	"hookd"
)

// The indexer copies the write-ahead log into SQLite. It waits briefly for
// a batch to gather (Options.IndexLinger) unless a reader is waiting, and
// writes up to Options.IndexBatch records per transaction: one SQLite
// commit then costs little per event, where a commit per acknowledged
// group, on the acknowledgement path, cost more than the rest of ingest
// together. Its commits are not synced one by one (the log holds the
// records); it syncs the SQLite WAL every Options.IndexSync, and the log
// gives up the segments that sync made redundant.

// IndexBacklog is the number of logged records the indexer has not yet
// written to SQLite (synced or not).
func (s *Store) IndexBacklog() int {
	logged, indexed := s.logged.Load(), s.indexed.Load()
	if indexed >= logged {
		return 0
	}
	return int(logged - indexed)
}

// enqueue hands appended records to the indexer.
func (s *Store) enqueue(recs []*logRecord) {
	if len(recs) == 0 {
		return
	}
	size := 0
	for _, r := range recs {
		size += recordSize(r)
	}
	s.idxMu.Lock()
	s.idxQueue = append(s.idxQueue, recs...)
	s.idxBytes += size
	s.idxMu.Unlock()
	s.appended.Store(recs[len(recs)-1].lsn)
	s.wakeIndexer(false)
}

// wakeIndexer signals the indexer; urgent skips its wait for a larger
// batch (a reader is waiting).
func (s *Store) wakeIndexer(urgent bool) {
	if urgent {
		s.idxUrgent.Store(true)
	}
	select {
	case s.idxWake <- struct{}{}:
	default:
	}
}

// caughtUp waits until everything logged when it was called is in
// SQLite, so that a read sees every event acknowledged before it began
// (and every one its caller inserted: it syncs the log first when that is
// what holds them back). While the indexer fails (a full disk) with such
// events still out of SQLite, it fails at once, naming the cause, rather
// than answer without them.
//
// A recovery of the log may drop records after target was taken (a sync
// had failed): the target is then capped at the last record that recovery
// kept, so that the read does not wait for records that no longer exist.
func (s *Store) caughtUp(ctx context.Context) error {
	s.genMu.Lock()
	gen, target := s.gen.Load(), s.logged.Load()
	s.genMu.Unlock()
	if s.appended.Load() < target {
		if err := s.Sync(); err != nil {
			return &hookd.Error{Code: hookd.EUnavailable, Message: "storage unavailable", Err: err}
		}
	}
	for {
		target = s.keptOf(gen, target)
		if s.indexed.Load() >= target {
			break
		}
		s.idxMu.Lock()
		done, failing := s.idxDone, s.idxErr
		s.idxMu.Unlock()
		if s.indexed.Load() >= target {
			return nil
		}
		if failing != nil {
			return &hookd.Error{Code: hookd.EUnavailable, Message: "storage unavailable: accepted events are not yet indexed", Err: failing}
		}
		s.wakeIndexer(true)
		select {
		case <-done:
		case <-ctx.Done():
			return &hookd.Error{Code: hookd.EUnavailable, Message: "storage busy: indexing is behind", Err: ctx.Err()}
		}
	}
	return nil
}

// keptOf caps target, an LSN logged in generation gen of the log, at the
// last record the recovery that ended gen kept (none when gen is still
// the current one).
func (s *Store) keptOf(gen, target uint64) uint64 {
	s.genMu.Lock()
	defer s.genMu.Unlock()
	if gen != s.gen.Load() && gen < uint64(len(s.cuts)) {
		return min(target, s.cuts[gen])
	}
	return target
}

func (s *Store) indexLoop() {
	defer close(s.idxExited)
	var (
		lastSync time.Time
		stopping bool
		failures int
	)
	for {
		if !stopping {
			select {
			case <-s.idxStop:
				stopping = true
			default:
			}
		}
		s.idxMu.Lock()
		n := len(s.idxQueue)
		s.idxMu.Unlock()
		if n == 0 {
			if stopping {
				return
			}
			if s.durable < s.indexed.Load() {
				s.syncIndex()
				lastSync = time.Now()
			}
			select {
			case <-s.idxWake:
			case <-s.idxStop:
				stopping = true
			}
			continue
		}
		if !stopping && n < s.opt.IndexBatch && !s.idxUrgent.Load() {
			s.linger(n)
		}
		s.idxUrgent.Store(false)
		s.idxMu.Lock()
		take := min(len(s.idxQueue), s.opt.IndexBatch)
		batch := s.idxQueue[:take:take]
		s.idxMu.Unlock()

		if err := s.indexBatch(batch); err != nil {
			failures++
			s.idxMu.Lock()
			first := s.idxErr == nil
			s.idxErr = fmt.Errorf("index events: %w", err)
			done := s.idxDone
			s.idxDone = make(chan struct{})
			s.idxMu.Unlock()
			close(done) // waiters re-check: they no longer wait for a failing indexer
			if first {
				s.log.Error("cannot index logged events into the database; refusing new events until it can", "events", len(batch), "err", err)
			}
			if stopping && failures >= 3 {
				s.log.Warn("stopping with events not yet indexed: they stay in the log and are indexed at the next start", "events", n)
				return
			}
			select {
			case <-time.After(min(time.Duration(failures)*50*time.Millisecond, time.Second)):
			case <-s.idxStop:
				stopping = true
			}
			continue
		}
		if failures > 0 {
			s.log.Info("indexing logged events again", "after_failures", failures)
			failures = 0
		}
		size := 0
		for _, r := range batch {
			size += recordSize(r)
		}
		last := batch[len(batch)-1].lsn
		s.unpend(batch)
		s.idxMu.Lock()
		clear(s.idxQueue[:take])
		s.idxQueue = s.idxQueue[take:]
		s.idxBytes -= size
		s.idxErr = nil
		s.indexed.Store(last)
		done := s.idxDone
		s.idxDone = make(chan struct{})
		s.idxMu.Unlock()
		close(done)
		if time.Since(lastSync) >= s.opt.IndexSync {
			s.syncIndex()
			lastSync = time.Now()
		}
	}
}

// linger waits up to Options.IndexLinger for the queue to reach a full
// batch, a reader to wait, or a stop.
func (s *Store) linger(n int) {
	t := time.NewTimer(s.opt.IndexLinger)
	defer t.Stop()
	for n < s.opt.IndexBatch && !s.idxUrgent.Load() {
		select {
		case <-s.idxWake:
		case <-t.C:
			return
		case <-s.idxStop:
			return
		}
		s.idxMu.Lock()
		n = len(s.idxQueue)
		s.idxMu.Unlock()
	}
}

// syncIndex makes the index durable up to what is committed.
func (s *Store) syncIndex() {
	at := s.indexed.Load()
	if err := s.syncDB(); err != nil {
		return // sticky: writes stop, and the log keeps everything
	}
	s.durable = at
}

// recordSize is, roughly, what one record takes in the indexer's queue
// (its body and headers are not there: they stay in the log).
func recordSize(r *logRecord) int {
	return 200 + len(r.id) + len(r.source) + len(r.externalID) + len(r.dedupeKey) + len(r.typ) +
		len(r.key) + len(r.contentType) + len(r.headers) + len(r.traceParent) + len(r.body) + len(r.requestID) + len(r.eventID)
}

// indexBatch writes recs into SQLite in one transaction, with the LSN of
// the last one: a crash loses all of it or none, and the next start
// replays the log from where the index ends. It drives the driver's
// connection directly, without database/sql's conversions and
// bookkeeping around every statement.
func (s *Store) indexBatch(recs []*logRecord) error {
	if err := s.writable(); err != nil {
		return err
	}
	// As for every statement of the writer: a context that can end costs
	// a goroutine switch per statement in the driver.
	ctx := context.Background()
	s.catchUpWAL(ctx)
	conn, err := s.w.Conn(ctx)
	if err != nil {
		return fmt.Errorf("begin: %w", mapErr(err))
	}
	defer conn.Close()
	return conn.Raw(func(dc any) error {
		c, ok := dc.(rawConn)
		if !ok {
			return fmt.Errorf("index: unexpected driver connection %T", dc)
		}
		x := &rawTx{c: c, ctx: ctx}
		defer x.close()
		if err := x.index(recs); err != nil {
			if x.tx != nil {
				x.tx.Rollback()
			}
			return err
		}
		return nil
	})
}

// rawTx is one indexer transaction on the driver's connection, with the
// statements it prepared.
type rawTx struct {
	c     rawConn
	ctx   context.Context
	tx    driver.Tx
	stmts [stCount]driver.Stmt
	args  []driver.NamedValue
}

func (x *rawTx) close() {
	for _, st := range x.stmts {
		if st != nil {
			st.Close()
		}
	}
}

func (x *rawTx) stmt(i int) (driver.Stmt, error) {
	if x.stmts[i] == nil {
		st, err := x.c.PrepareContext(x.ctx, indexSQL[i])
		if err != nil {
			return nil, err
		}
		x.stmts[i] = st
	}
	return x.stmts[i], nil
}

func (x *rawTx) bind(vals []any) []driver.NamedValue {
	x.args = x.args[:0]
	for i, v := range vals {
		x.args = append(x.args, driver.NamedValue{Ordinal: i + 1, Value: v})
	}
	return x.args
}

// exec runs statement i and reports how many rows it changed.
func (x *rawTx) exec(i int, vals ...any) (int64, error) {
	st, err := x.stmt(i)
	if err != nil {
		return 0, err
	}
	res, err := st.(driver.StmtExecContext).ExecContext(x.ctx, x.bind(vals))
	if err != nil {
		return 0, err
	}
	return res.RowsAffected()
}

func (x *rawTx) index(recs []*logRecord) error {
	tx, err := x.c.BeginTx(x.ctx, driver.TxOptions{})
	if err != nil {
		return fmt.Errorf("begin: %w", mapErr(err))
	}
	x.tx = tx
	// The seq range of each segment's events, for its release.
	type span struct {
		seg      uint64
		min, max int64
	}
	var spans []span
	// The events indexed per source and minute (event_minutes): counted
	// in this transaction, they are counted once, replay or not.
	type srcMinute struct {
		source string
		minute int64
	}
	counts := map[srcMinute]int64{}
	for _, r := range recs {
		if err := x.record(r); err != nil {
			return fmt.Errorf("event %d: %w", r.lsn, mapErr(err))
		}
		if r.kind == recEvent {
			counts[srcMinute{r.source, time.UnixMicro(r.received).Truncate(time.Minute).Unix()}]++
		}
		if len(spans) == 0 || spans[len(spans)-1].seg != r.segment {
			spans = append(spans, span{seg: r.segment})
		}
		if sp := &spans[len(spans)-1]; r.kind == recEvent {
			if sp.min == 0 {
				sp.min = r.seq
			}
			sp.max = r.seq
		}
	}
	keys := make([]srcMinute, 0, len(counts))
	for k := range counts {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool {
		if keys[i].source != keys[j].source {
			return keys[i].source < keys[j].source
		}
		return keys[i].minute < keys[j].minute
	})
	for _, k := range keys {
		if _, err := x.exec(stCountEvents, k.source, k.minute, counts[k]); err != nil {
			return fmt.Errorf("count events of %s: %w", k.source, mapErr(err))
		}
	}
	for _, sp := range spans {
		if _, err := x.exec(stSegment, int64(sp.seg), nullInt(sp.min), nullInt(sp.max)); err != nil {
			return fmt.Errorf("record log segment %d: %w", sp.seg, mapErr(err))
		}
	}
	if _, err := x.exec(stSetIndexed, strconv.FormatUint(recs[len(recs)-1].lsn, 10)); err != nil {
		return fmt.Errorf("record the index position: %w", mapErr(err))
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("commit: %w", mapErr(err))
	}
	x.tx = nil
	return nil
}

// record carries out one record's decisions.
func (x *rawTx) record(r *logRecord) error {
	if r.kind == recDuplicate {
		_, err := x.exec(stInsertReq, r.requestID, r.eventID, r.received)
		return err
	}
	var occurred any
	if r.hasOccurred {
		occurred = r.occurred
	}
	vals := []any{r.seq, r.id, r.source, nullStr(r.externalID), nullStr(r.dedupeKey), nullStr(r.typ), nullStr(r.key),
		occurred, r.received, r.stale, nullStr(r.contentType), int64(r.segment), r.offset, nullStr(r.traceParent)}
	if r.dedupeKey == "" {
		_, err := x.exec(stInsert, vals...)
		return err
	}
	n, err := x.exec(stInsertDup, vals...)
	if err != nil || n == 1 {
		return err
	}
	// An older event holds the key: its window had closed when this one
	// was logged. It keeps its external_id and gives up the key.
	if _, err := x.exec(stClearDup, r.source, r.dedupeKey); err != nil {
		return err
	}
	_, err = x.exec(stInsert, vals...)
	return err
}

const (
	stInsert = iota
	stInsertDup
	stClearDup
	stInsertReq
	stSegment
	stSetIndexed
	stCountEvents
	stCount
)

const indexedSetting = "log_indexed_lsn"

// An event's row holds an empty body and no headers: both stay in its
// log record, which log_segment and log_offset locate.
const insertEvent = `INSERT INTO events (seq, id, source, external_id, dedupe_key, type, key, occurred_at, received_at, stale, content_type, body, log_segment, log_offset, trace_parent)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, x'', ?, ?, ?)`

var indexSQL = [stCount]string{
	stInsert:    insertEvent,
	stInsertDup: insertEvent + ` ON CONFLICT (source, dedupe_key) WHERE dedupe_key IS NOT NULL DO NOTHING`,
	stClearDup:  `UPDATE events SET dedupe_key = NULL WHERE source = ? AND dedupe_key = ?`,
	stInsertReq: `INSERT INTO duplicate_requests (request_id, event_id, received_at) VALUES (?, ?, ?) ON CONFLICT (request_id) DO NOTHING`,
	stSegment: `INSERT INTO log_segments (segment, min_seq, max_seq) VALUES (?, ?, ?)
		ON CONFLICT (segment) DO UPDATE SET min_seq = coalesce(min(min_seq, excluded.min_seq), min_seq, excluded.min_seq),
			max_seq = coalesce(max(max_seq, excluded.max_seq), max_seq, excluded.max_seq)`,
	stSetIndexed: `UPDATE settings SET value = ? WHERE name = '` + indexedSetting + `'`,
	stCountEvents: `INSERT INTO event_minutes (source, minute, events) VALUES (?, ?, ?)
		ON CONFLICT (source, minute) DO UPDATE SET events = events + excluded.events`,
}

// replayLog indexes what the log holds beyond the index, before anything
// else runs, and returns the highest event seq it saw.
func (s *Store) replayLog(ctx context.Context) (maxSeq int64, err error) {
	var v string
	if err := s.w.QueryRowContext(ctx, `SELECT value FROM settings WHERE name = ?`, indexedSetting).Scan(&v); err != nil {
		return 0, fmt.Errorf("read the index position: %w", mapErr(err))
	}
	after, err := strconv.ParseUint(v, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("read the index position: stored value %q: %w", v, err)
	}
	var (
		batch []*logRecord
		n     int
	)
	flush := func() error {
		if len(batch) == 0 {
			return nil
		}
		if err := s.indexBatch(batch); err != nil {
			return err
		}
		n += len(batch)
		batch = batch[:0]
		return nil
	}
	last, err := s.wal.Replay(after, func(lsn, seg uint64, off int64, p []byte) error {
		r, err := decodeLogRecord(lsn, p)
		if err != nil {
			return err
		}
		r.segment, r.offset = seg, off
		r.body, r.headers = nil, "" // they stay in the log
		if r.kind == recEvent {
			maxSeq = max(maxSeq, r.seq)
		}
		batch = append(batch, r)
		if len(batch) >= s.opt.IndexBatch {
			return flush()
		}
		return nil
	})
	if err == nil {
		err = flush()
	}
	if err != nil {
		return 0, fmt.Errorf("index the write-ahead log: %w", err)
	}
	if n > 0 {
		s.log.Info("indexed events from the write-ahead log", "records", n, "through", last)
	}
	s.indexed.Store(last)
	s.appended.Store(last)
	s.logged.Store(last)
	if err := s.syncDB(); err != nil {
		return 0, err
	}
	s.durable = last
	return maxSeq, nil
}
