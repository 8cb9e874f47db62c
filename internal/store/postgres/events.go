package postgres

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"hookd"
	"hookd/internal/store"
)

// Event order with several writers.
//
// seq is the position of an event in the log and the cursor of the FIFO
// stream (EventList ascending, After the last seq read). Several processes
// insert at once and wait for none of the others, so seqs cannot be
// handed out in commit order; instead, a stream reader never reads past a
// seq that a transaction still running could take:
//
//   - An event's seq is its transaction's id (pg_current_xact_id, an xid8:
//     64 bits that only grow, never reused, and not wrapped) shifted left
//     by seqShift bits, plus its 1-based position n in the batch's insert,
//     plus the schema's seq base (below, 0 but after a restore into
//     another cluster). Every event of a transaction gets its seqs from the
//     same id; a batch holds fewer than 2^seqShift events.
//   - Every transaction of EventInsertMany takes, as its first statement
//     and so before it has an id, the insert lock: a shared advisory lock
//     of this schema's events table (insertLockSQL), held until it ends.
//     Inserts never wait for one another: none takes it exclusive.
//   - A statement that reads the stream computes the horizon in its own
//     snapshot (horizonSQL): the lowest id, among the transactions the
//     snapshot sees running (pg_snapshot_xip), that may be an insert into
//     this schema, or else the snapshot's xmax; shifted and based as the
//     seqs are. No event can ever commit later with a seq below it, so
//     ascending listings return only events below it, and a cursor never
//     passes over an event that commits late.
//
// Why no event commits later below the horizon. Let T store an event with
// a seq below the horizon: T's id t is below it too, so below the
// snapshot's xmax, and
//
//   - t is not in xip: T had ended when the snapshot was taken; its events
//     are in the snapshot, or it rolled back;
//   - t is in xip: T had its id, so held the insert lock, before the
//     snapshot was taken. The statement reads pg_locks after that, once
//     (a materialized CTE), and pg_locks reads the lock table in one
//     consistent cut. A transaction with an id holds an ExclusiveLock of
//     type transactionid on it, in its virtualtransaction. An id of xip is
//     passed over only when the cut shows its lock held by a
//     virtualtransaction that does not hold the insert lock, and an insert
//     never shows that: it takes the insert lock before it has an id, and
//     when it ends it releases its id's lock (a standard lock) before its
//     advisory locks. An id whose lock is not in the cut (T ended after
//     the snapshot, or T's id is published and not yet locked) is not
//     passed over: it bounds the horizon of this statement;
//   - a transaction that gets its id after the snapshot gets one at or
//     above xmax, and so may one running at the snapshot: such ids are
//     not in xip, and xmax bounds them.
//
// pg_locks gives ids in 32 bits (xid): an id of xip is matched on its low
// 32 bits (xid8 cast to xid). That is exact whatever the epoch: the
// transactions running at once span fewer than 2^31 ids (wraparound
// protection), so no two share their low bits. pg_locks is readable by
// every role; were it to hide other sessions' locks from one, every id of
// xip would bound the horizon: the server-wide horizon (the snapshot's
// xmin), never a wrong one.
//
// So only hookd's own inserts into this schema hold its stream back (not
// other listings, not inserts), while they run: a transaction of another
// application, schema or database on the server does not, nor does a row
// inserted into events by anything but EventInsertMany (which the stream
// may then pass over, if it commits late). A replica frozen in the middle
// of an insert (SIGSTOP, a paused VM) holds it back for as long as it is
// frozen. EventList waits a moment for such inserts (heldBackWait) when
// they hold back events already committed, so that an event is listed as
// soon as the insert that stored it has returned, in the usual case.
//
// Before this numbering, seq was an identity counting events, and every
// batch of inserts consumed a transaction id of its own: the stored seqs
// are below (first xid << seqShift) unless more than 2^20 events were
// stored per transaction id, on average, which no hookd did. The column
// keeps its identity (inserts give their seq with OVERRIDING SYSTEM VALUE).
// A log restored into another cluster (pg_dump and restore, logical
// replication) meets transaction ids lower than those its seqs were
// numbered from: checkEventSeqs, at Open, then raises the base so that new
// seqs follow the stored ones (and stream cursors stay valid).
//
// The shift leaves 43 bits to transaction ids: 8.8e12 of them, 28 years
// of 10,000 transactions a second on the server (ids are counted for all
// its databases); checkEventSeqs refuses a cluster near the end. The SQL
// below writes the shift as the literal 20.
const seqShift = 20

// maxBatchEvents is the most events EventInsertMany takes at once: the
// positions n of a batch stay below 2^seqShift.
const maxBatchEvents = 1<<seqShift - 1

// seqBaseSetting is the settings row of the seq base (none: 0).
const seqBaseSetting = "event_seq_base"

// seqBaseSQL is the schema's seq base, an SQL expression.
const seqBaseSQL = `coalesce((SELECT value::bigint FROM settings WHERE name = '` + seqBaseSetting + `'), 0)`

// insertLockKeySQL is the first key of the insert lock, 0x686b6878
// ("hkhx"); the second is the events table's OID (as int4), unique in the
// database, so that no other schema's inserts share it. Not the schema key
// of the driver's other locks: horizonSQL, a constant, finds the OID in
// SQL ('events'::regclass, resolved by the search_path as the inserts'
// table is).
const insertLockKeySQL = `1751869560`

// insertLockSQL takes the insert lock (see Event order): the first
// statement of every transaction of EventInsertMany, before it writes.
const insertLockSQL = `SELECT pg_advisory_xact_lock_shared(` + insertLockKeySQL + `, 'events'::regclass::oid::int4)`

// horizonXidSQL is the transaction id of the horizon (see Event order), an
// xid8 subquery read in the statement's snapshot: the lowest id of xip but
// those of transactions that, in one read of pg_locks (l, materialized:
// read once), hold their id's lock and not the insert lock; else xmax.
const horizonXidSQL = `(WITH l AS MATERIALIZED (
		SELECT locktype, virtualtransaction, transactionid FROM pg_locks
		WHERE granted AND (locktype = 'transactionid' AND mode = 'ExclusiveLock'
			OR locktype = 'advisory' AND database = (SELECT oid FROM pg_database WHERE datname = current_database())
				AND classid = ` + insertLockKeySQL + ` AND objid = 'events'::regclass AND objsubid = 2))
	SELECT least(pg_snapshot_xmax(pg_current_snapshot()), (SELECT min(x) FROM pg_snapshot_xip(pg_current_snapshot()) AS x
		WHERE NOT EXISTS (SELECT FROM l AS o WHERE o.locktype = 'transactionid' AND o.transactionid = x::xid
			AND NOT EXISTS (SELECT FROM l AS a WHERE a.locktype = 'advisory' AND a.virtualtransaction = o.virtualtransaction)))))`

// horizonSQL is the stream's horizon, an SQL expression: no event commits
// later with a seq below it. A statement that compares event seqs with it
// reads, in its own snapshot, only events whose place in the log is final
// (ordered destinations loading their queue in event order: compare
// deliveries.event_seq). It reads pg_locks: use it once per statement.
const horizonSQL = `((` + horizonXidSQL + `::text::bigint << 20) + ` + seqBaseSQL + `)`

// insertEventsQuery is the bulk insert of new events ($1…$13 and $34, n their
// positions, 1-based) and, in the same statement, of their deliveries
// ($14…$33, joined to the inserted events by event id): a row whose dedupe
// key another transaction took meanwhile is not inserted (and not
// returned), nor are its deliveries. It returns the id and seq of each
// inserted event. The deliveries' columns are listed: the others take
// their defaults.
const insertEventsQuery = `WITH ins AS (
		INSERT INTO events (seq, id, source, external_id, dedupe_key, type, key, occurred_at, received_at,
			stale, content_type, headers, body, trace_parent)
		OVERRIDING SYSTEM VALUE
		SELECT (pg_current_xact_id()::text::bigint << 20) + ` + seqBaseSQL + ` + u.n,
			u.id, u.source, u.external_id, u.dedupe_key, u.type, u.key, u.occurred_at, u.received_at,
			u.stale, u.content_type, u.headers, u.body, u.trace_parent
		FROM unnest($1::bigint[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[],
			$8::bigint[], $9::bigint[], $10::boolean[], $11::text[], $12::text[], $13::bytea[], $34::text[])
			AS u(n, id, source, external_id, dedupe_key, type, key, occurred_at, received_at,
				stale, content_type, headers, body, trace_parent)
		ON CONFLICT (source, dedupe_key) WHERE dedupe_key IS NOT NULL DO NOTHING
		RETURNING id, seq),
	dl AS (
		INSERT INTO deliveries (id, event_id, event_seq, event_key, destination, subscription_id, status,
			attempts, round_attempts, first_attempt_at, next_attempt_at, lease_until,
			last_attempt_at, last_status_code, last_error, last_duration_us, last_excerpt,
			reason, generation, created_at, updated_at)
		SELECT d.id, ins.id, ins.seq, d.event_key, d.destination, d.subscription_id, d.status,
			d.attempts, d.round_attempts, d.first_attempt_at, d.next_attempt_at, d.lease_until,
			d.last_attempt_at, d.last_status_code, d.last_error, d.last_duration_us, d.last_excerpt,
			d.reason, d.generation, d.created_at, d.updated_at
		FROM unnest($14::text[], $15::text[], $16::text[], $17::text[], $18::text[], $19::text[],
			$20::int[], $21::int[], $22::bigint[], $23::bigint[], $24::bigint[],
			$25::bigint[], $26::int[], $27::text[], $28::bigint[], $29::bytea[],
			$30::text[], $31::int[], $32::bigint[], $33::bigint[])
			AS d(id, event_id, event_key, destination, subscription_id, status,
				attempts, round_attempts, first_attempt_at, next_attempt_at, lease_until,
				last_attempt_at, last_status_code, last_error, last_duration_us, last_excerpt,
				reason, generation, created_at, updated_at)
		JOIN ins ON ins.id = d.event_id
		-- A new event has no deliveries yet: a conflict is not expected,
		-- and the row stored is kept.
		ON CONFLICT (id) DO NOTHING)
	SELECT id, seq FROM ins`

// eventRow is one insert, encoded for the database.
type eventRow struct {
	e        *hookd.Event
	in       *store.EventInsert
	window   int64 // dedupe window in microseconds; 0: no dedupe
	dkey     string
	extID    *string
	typ      *string
	key      *string
	ctype    *string
	occurred *int64
	received int64
	headers  string
	body     []byte
}

// deliveries are the deliveries stored with the event when it is new.
func (r *eventRow) deliveries(stale bool) []*store.Delivery {
	if stale && r.in.StaleDeliveries != nil {
		return r.in.StaleDeliveries
	}
	return r.in.Deliveries
}

func textPtr(s string) *string {
	if s == "" {
		return nil
	}
	t := text(s)
	return &t
}

// dedupeKey is store.DedupeKey, or the digest of the id when the key would
// not be valid text: dedupe stays exact on the id as received.
func dedupeKey(externalID string) string {
	k := store.DedupeKey(externalID)
	if text(k) != k {
		sum := sha256.Sum256([]byte(externalID))
		k = "sha256:" + hex.EncodeToString(sum[:])
	}
	return k
}

// holder is the event that holds a dedupe key: a stored one, or one of the
// batch (stored false, idx its position).
type holder struct {
	stored   bool
	idx      int
	seq      int64
	id       string
	received int64
}

// maxInsertTries bounds the tries of a batch that meets concurrent
// inserts: dedupe keys other processes took while it was being resolved,
// or a deadlock with one of them. Each try sees what the ones before it
// lost to, committed, so that two tries settle any one key.
const maxInsertTries = 5

// encodeRows encodes ins for the database.
func encodeRows(ins []*store.EventInsert) ([]eventRow, error) {
	rows := make([]eventRow, len(ins))
	for i, in := range ins {
		e := in.Event
		r := eventRow{e: e, in: in, received: e.ReceivedAt.UnixMicro(), headers: in.HeadersJSON, body: e.Body,
			extID: textPtr(e.ExternalID), typ: textPtr(e.Type), key: textPtr(e.Key), ctype: textPtr(e.ContentType)}
		if !e.OccurredAt.IsZero() {
			o := e.OccurredAt.UnixMicro()
			r.occurred = &o
		}
		if r.headers == "" {
			var err error
			if r.headers, err = store.EncodeHeaders(e.Headers); err != nil {
				return nil, err
			}
		}
		if r.body == nil {
			r.body = []byte{} // NULL would break the batch: the column is NOT NULL
		}
		if e.ExternalID != "" && in.DedupeWindow > 0 {
			r.dkey = dedupeKey(e.ExternalID)
			r.window = in.DedupeWindow.Microseconds()
		}
		for _, ds := range [][]*store.Delivery{in.Deliveries, in.StaleDeliveries} {
			for _, d := range ds {
				if d == nil {
					return nil, fmt.Errorf("event %s: a nil delivery", e.ID)
				}
				if d.EventID != "" && d.EventID != e.ID {
					return nil, fmt.Errorf("event %s: delivery %s names event %s; leave EventID empty or give the event's", e.ID, d.ID, d.EventID)
				}
			}
		}
		rows[i] = r
	}
	return rows, nil
}

// EventInsertMany stores ins in one transaction, with the deliveries of
// the new events. See the package documentation and Event order above.
//
// Processes insert concurrently and take no lock from one another. The
// database decides dedupe: the new events go in with INSERT … ON CONFLICT
// DO NOTHING on the dedupe index, which waits for a transaction inserting
// the same key to end; a batch that lost a key to another is rolled back
// and tried again against what the other stored. Stale marking, read from
// the stored events before the insert, is best effort across concurrent
// transactions: two events of one entity key committing at once do not see
// each other, and neither may be marked stale.
func (s *Store) EventInsertMany(ctx context.Context, ins []*store.EventInsert) ([]store.EventInsertResult, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if len(ins) == 0 {
		return []store.EventInsertResult{}, nil
	}
	if len(ins) > maxBatchEvents {
		return nil, fmt.Errorf("insert events: a batch holds at most %d events, got %d: split it", maxBatchEvents, len(ins))
	}
	rows, err := encodeRows(ins)
	if err != nil {
		return nil, fmt.Errorf("insert events: %w", err)
	}
	var lost error
	for try := 1; ; try++ {
		res, conflict, err := s.insertOnce(ctx, rows)
		if err != nil {
			if !isInsertConflict(err) {
				return nil, fmt.Errorf("insert events: %w", mapErr(err))
			}
			conflict, lost = true, err
		}
		if !conflict {
			return res, nil
		}
		if try == maxInsertTries {
			if lost == nil {
				lost = errors.New("dedupe keys taken by concurrent inserts")
			}
			return nil, &hookd.Error{Code: hookd.EUnavailable, Message: "storage busy",
				Err: fmt.Errorf("insert events: %d tries in a row met concurrent inserts: %w", try, lost)}
		}
	}
}

// isInsertConflict tells whether err ended a transaction of
// EventInsertMany because of a concurrent one (a deadlock: two batches
// taking the same dedupe keys in different orders): tried again, it sees
// what the other stored.
func isInsertConflict(err error) bool {
	var pe *pgconn.PgError
	return errors.As(err, &pe) && (pe.Code == "40P01" || pe.Code == "40001") // deadlock_detected, serialization_failure
}

// insertOnce runs one transaction of EventInsertMany: conflict is true
// (and nothing is stored) when another transaction took a dedupe key the
// batch meant to take.
func (s *Store) insertOnce(ctx context.Context, rows []eventRow) (res []store.EventInsertResult, conflict bool, err error) {
	var newIdx []int
	err = s.with(ctx, func(c *pgx.Conn) error {
		// Round trip 1: begin, take the insert lock (see Event order) and
		// read the stored state the batch depends on: the holders of its
		// dedupe keys and the newest timestamp of its entity keys. Reads
		// only: the transaction has no id yet.
		type pair struct{ a, b string }
		var dPairs, kPairs []pair
		seenD, seenK := map[pair]bool{}, map[pair]bool{}
		for _, r := range rows {
			if r.dkey != "" {
				if p := (pair{r.e.Source, r.dkey}); !seenD[p] {
					seenD[p] = true
					dPairs = append(dPairs, p)
				}
			}
			if r.key != nil && r.occurred != nil {
				if p := (pair{r.e.Source, *r.key}); !seenK[p] {
					seenK[p] = true
					kPairs = append(kPairs, p)
				}
			}
		}
		split := func(ps []pair) (as, bs []string) {
			as, bs = make([]string, len(ps)), make([]string, len(ps))
			for i, p := range ps {
				as[i], bs[i] = p.a, p.b
			}
			return as, bs
		}
		holders := make(map[pair]holder, len(dPairs))
		newest := make(map[pair]int64, len(kPairs))
		b := &pgx.Batch{}
		b.BeginTx(pgx.TxOptions{})
		// The insert lock first, before the transaction has an id.
		b.Queue(insertLockSQL)
		if len(dPairs) > 0 {
			srcs, keys := split(dPairs)
			// One index lookup per key (LATERAL … LIMIT 1): a plain join
			// lets the planner, which cannot see how few keys the arrays
			// hold, scan the whole table.
			b.Queue(`SELECT k.source, k.dkey, e.seq, e.id, e.received_at
				FROM unnest($1::text[], $2::text[]) AS k(source, dkey)
				CROSS JOIN LATERAL (SELECT seq, id, received_at FROM events
					WHERE source = k.source AND dedupe_key = k.dkey AND dedupe_key IS NOT NULL
					LIMIT 1) e`, srcs, keys).Query(func(rs pgx.Rows) error {
				var (
					p pair
					h = holder{stored: true}
				)
				_, err := pgx.ForEachRow(rs, []any{&p.a, &p.b, &h.seq, &h.id, &h.received}, func() error {
					holders[p] = h
					return nil
				})
				return err
			})
		}
		if len(kPairs) > 0 {
			srcs, keys := split(kPairs)
			b.Queue(`SELECT k.source, k.key, e.newest
				FROM unnest($1::text[], $2::text[]) AS k(source, key)
				CROSS JOIN LATERAL (SELECT max(occurred_at) AS newest FROM events
					WHERE source = k.source AND key = k.key AND key IS NOT NULL AND occurred_at IS NOT NULL) e
				WHERE e.newest IS NOT NULL`, srcs, keys).Query(func(rs pgx.Rows) error {
				var (
					p pair
					n int64
				)
				_, err := pgx.ForEachRow(rs, []any{&p.a, &p.b, &n}, func() error {
					newest[p] = n
					return nil
				})
				return err
			})
		}
		br := c.SendBatch(ctx, b)
		tx := br.Tx()
		defer tx.Rollback(ctx)
		if err := br.Close(); err != nil {
			return err
		}
		if s.resolved != nil {
			s.resolved()
		}

		// Resolve the batch in order, as if each event were inserted alone.
		res = make([]store.EventInsertResult, len(rows))
		dupOf := make([]*holder, len(rows))
		storedKey := make([]*string, len(rows)) // the dedupe key each new row keeps
		var clear []int64
		newIdx = newIdx[:0]
		for i := range rows {
			r := &rows[i]
			stale := false
			if r.key != nil && r.occurred != nil {
				n, ok := newest[pair{r.e.Source, *r.key}]
				stale = ok && n > *r.occurred
			}
			if r.dkey != "" {
				p := pair{r.e.Source, r.dkey}
				if h, ok := holders[p]; ok {
					if r.received-h.received < r.window {
						dupOf[i] = &h
						continue
					}
					// The window counted from the first occurrence has
					// closed: this is a new event, and the old one keeps
					// its external id but no longer its dedupe key.
					if h.stored {
						clear = append(clear, h.seq)
					} else {
						storedKey[h.idx] = nil
					}
				}
				holders[p] = holder{idx: i, id: r.e.ID, received: r.received}
				storedKey[i] = &r.dkey
			}
			if r.key != nil && r.occurred != nil {
				p := pair{r.e.Source, *r.key}
				if n, ok := newest[p]; !ok || *r.occurred > n {
					newest[p] = *r.occurred
				}
			}
			res[i] = store.EventInsertResult{ID: r.e.ID, Stale: stale}
			newIdx = append(newIdx, i)
		}

		// Round trip 2: clear the keys of events whose window closed,
		// insert the new events with their deliveries, record the
		// duplicates. The first write gives the transaction its id, the
		// seqs of its events.
		b = &pgx.Batch{}
		if len(clear) > 0 {
			sort.Slice(clear, func(i, j int) bool { return clear[i] < clear[j] })
			b.Queue(`UPDATE events SET dedupe_key = NULL WHERE seq = ANY($1::bigint[])`, clear)
		}
		seqOf := make(map[string]int64, len(newIdx))
		if len(newIdx) > 0 {
			stale := make([]bool, len(rows))
			for _, i := range newIdx {
				stale[i] = res[i].Stale
			}
			b.Queue(insertEventsQuery, insertArgs(rows, newIdx, stale, storedKey, time.Now())...).Query(func(rs pgx.Rows) error {
				var (
					id  string
					seq int64
				)
				_, err := pgx.ForEachRow(rs, []any{&id, &seq}, func() error {
					seqOf[id] = seq
					return nil
				})
				return err
			})
		}
		var dupReq, dupEvent []string
		var dupAt []int64
		for i, h := range dupOf {
			if h != nil {
				dupReq = append(dupReq, rows[i].e.RequestID)
				dupEvent = append(dupEvent, h.id)
				dupAt = append(dupAt, rows[i].received)
			}
		}
		if len(dupReq) > 0 {
			b.Queue(`INSERT INTO duplicate_requests (request_id, event_id, received_at)
				SELECT * FROM unnest($1::text[], $2::text[], $3::bigint[])`, dupReq, dupEvent, dupAt)
		}
		// The new events' per-minute counts, last (the rows they lock are
		// held only until the commit), on a slot drawn per transaction:
		// concurrent batches, of this process or another, seldom meet on
		// one row. A batch rolled back for a conflict takes its counts
		// with it.
		if len(newIdx) > 0 {
			n := map[string]map[int64]int64{}
			for _, i := range newIdx {
				e := rows[i].e
				if n[e.Source] == nil {
					n[e.Source] = map[int64]int64{}
				}
				n[e.Source][e.ReceivedAt.Truncate(time.Minute).Unix()]++
			}
			queueEventCounts(b, int16(rand.IntN(countSlots)), n)
		}
		if err := tx.SendBatch(ctx, b).Close(); err != nil {
			return err
		}
		if len(seqOf) != len(newIdx) {
			// Another process stored one of these dedupe keys meanwhile:
			// try again against what it stored.
			conflict = true
			return tx.Rollback(ctx)
		}
		for _, i := range newIdx {
			res[i].Seq = seqOf[rows[i].e.ID]
		}
		for i, h := range dupOf {
			if h == nil {
				continue
			}
			seq := h.seq
			if !h.stored {
				seq = seqOf[h.id]
			}
			res[i] = store.EventInsertResult{ID: h.id, Seq: seq, Duplicate: true}
		}
		return tx.Commit(ctx)
	})
	if err != nil || conflict {
		return nil, conflict, err
	}
	// Committed: the deliveries stored are the caller's.
	for _, i := range newIdx {
		for _, d := range rows[i].deliveries(res[i].Stale) {
			d.EventSeq = res[i].Seq
			if d.EventID == "" {
				d.EventID = rows[i].e.ID
			}
		}
	}
	return res, false, nil
}

// insertArgs are the arguments of insertEventsQuery for the new rows
// (rows[i] for i in newIdx, in the order of the batch), stale[i] telling
// whether rows[i] is stale and keys[i] the dedupe key it keeps. now is the
// time of the insert, that of the deliveries' zero times.
//
// The rows go in ordered by dedupe key (their positions n keep the order
// of the batch): two batches taking some of the same keys take them in the
// same order, the first one's transaction holding the second at the first
// key they share, rather than each holding one the other waits for.
func insertArgs(rows []eventRow, newIdx []int, stale []bool, keys []*string, now time.Time) []any {
	n := len(newIdx)
	order := make([]int, n) // order[k]: the position in newIdx of the k-th row inserted
	for j := range order {
		order[j] = j
	}
	sort.SliceStable(order, func(a, b int) bool {
		ra, rb := newIdx[order[a]], newIdx[order[b]]
		ka, kb := keys[ra], keys[rb]
		if ka == nil || kb == nil {
			return ka == nil && kb != nil
		}
		if sa, sb := rows[ra].e.Source, rows[rb].e.Source; sa != sb {
			return sa < sb
		}
		return *ka < *kb
	})
	var (
		ns                 = make([]int64, n)
		ids, srcs          = make([]string, n), make([]string, n)
		extIDs, dkeys      = make([]*string, n), make([]*string, n)
		types, ekeys       = make([]*string, n), make([]*string, n)
		ctypes             = make([]*string, n)
		occurred, received = make([]*int64, n), make([]int64, n)
		stales             = make([]bool, n)
		headers, bodies    = make([]string, n), make([][]byte, n)
		traces             = make([]*string, n)
		d                  newDeliveries
	)
	for k, j := range order {
		i := newIdx[j]
		r := &rows[i]
		ns[k] = int64(j + 1)
		ids[k], srcs[k], extIDs[k], dkeys[k] = r.e.ID, r.e.Source, r.extID, keys[i]
		types[k], ekeys[k], ctypes[k] = r.typ, r.key, r.ctype
		occurred[k], received[k], stales[k] = r.occurred, r.received, stale[i]
		headers[k], bodies[k] = r.headers, r.body
		traces[k] = textPtr(r.e.TraceParent)
		for _, dl := range r.deliveries(stale[i]) {
			d.add(r.e.ID, dl, now)
		}
	}
	return append([]any{ns, ids, srcs, extIDs, dkeys, types, ekeys, occurred, received, stales, ctypes, headers, bodies},
		d.ids, d.eventIDs, d.eventKeys, d.destinations, d.subs, d.statuses,
		d.attempts, d.roundAttempts, d.first, d.next, d.lease,
		d.lastAt, d.lastCodes, d.lastErrs, d.lastDurs, d.excerpts,
		d.reasons, d.generations, d.created, d.updated, traces)
}

// newDeliveries are the delivery columns of insertEventsQuery, one entry
// per delivery.
type newDeliveries struct {
	ids, eventIDs, destinations, statuses []string
	eventKeys, subs, lastErrs, reasons    []*string
	attempts, roundAttempts, generations  []int32
	lastCodes                             []*int32
	first, next, lease, lastAt, lastDurs  []*int64
	created, updated                      []int64
	excerpts                              [][]byte
}

// add appends d, a delivery of event eventID, stored as given but for its
// identity and zero times (as DeliveryWriteMany stores a new row).
func (n *newDeliveries) add(eventID string, d *store.Delivery, now time.Time) {
	id := d.ID
	if id == "" {
		id = store.DeliveryID(eventID, d.Destination)
	}
	next := microPtr(d.NextAttemptAt)
	if next == nil && (d.Status == store.StatusPending || d.Status == store.StatusRetrying) {
		next = microPtr(now)
	}
	var code *int32
	if d.LastStatusCode != 0 {
		c := int32(d.LastStatusCode)
		code = &c
	}
	var dur *int64
	if d.LastDuration != 0 {
		us := d.LastDuration.Microseconds()
		dur = &us
	}
	var excerpt []byte
	if len(d.LastExcerpt) > 0 {
		excerpt = d.LastExcerpt
	}
	var sub *string
	if d.SubscriptionID != "" {
		sub = &d.SubscriptionID
	}
	n.ids = append(n.ids, id)
	n.eventIDs = append(n.eventIDs, eventID)
	n.eventKeys = append(n.eventKeys, textPtr(d.EventKey))
	n.destinations = append(n.destinations, d.Destination)
	n.subs = append(n.subs, sub)
	n.statuses = append(n.statuses, d.Status)
	n.attempts = append(n.attempts, int32(d.Attempts))
	n.roundAttempts = append(n.roundAttempts, int32(d.RoundAttempts))
	n.first = append(n.first, microPtr(d.FirstAttemptAt))
	n.next = append(n.next, next)
	n.lease = append(n.lease, microPtr(d.LeaseUntil))
	n.lastAt = append(n.lastAt, microPtr(d.LastAttemptAt))
	n.lastCodes = append(n.lastCodes, code)
	n.lastErrs = append(n.lastErrs, textPtr(d.LastError))
	n.lastDurs = append(n.lastDurs, dur)
	n.excerpts = append(n.excerpts, excerpt)
	n.reasons = append(n.reasons, textPtr(d.Reason))
	n.generations = append(n.generations, int32(d.Generation))
	n.created = append(n.created, orNow(d.CreatedAt, now))
	n.updated = append(n.updated, orNow(d.UpdatedAt, now))
}

// microPtr is t as stored, nil for the zero time.
func microPtr(t time.Time) *int64 {
	if t.IsZero() {
		return nil
	}
	us := t.UnixMicro()
	return &us
}

const eventCols = `seq, id, source, external_id, type, key, occurred_at, received_at, stale, content_type, trace_parent`

// EventGet returns one event with its body and headers.
func (s *Store) EventGet(ctx context.Context, id string) (*hookd.Event, error) {
	var e *hookd.Event
	err := s.with(ctx, func(c *pgx.Conn) error {
		var err error
		e, err = scanEvent(c.QueryRow(ctx, `SELECT `+eventCols+`, headers, body FROM events WHERE id = $1`, text(id)).Scan, true)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("get event: %w", mapErr(err))
	}
	return e, nil
}

// heldBackWait bounds how long an ascending listing waits for the inserts
// that hold back events already committed (see Event order).
// Tests lower it; nothing else changes it.
var heldBackWait = 5 * time.Second

// listHeldBack, when set (tests only), runs when an ascending listing is
// held back, before it waits.
var listHeldBack func()

// EventList lists events in log order (or its reverse). An ascending
// listing (the FIFO stream, replays, recovery) ends at the horizon: it
// holds only events whose place in the log is final (see Event order).
// When the horizon holds back events already committed, it waits for the
// inserts that hold them back, up to heldBackWait, and then answers
// with the events below the horizon of its last read.
func (s *Store) EventList(ctx context.Context, p *store.EventListParams) ([]*hookd.Event, string, error) {
	after, err := store.DecodeCursor(p.After)
	if err != nil {
		return nil, "", err
	}
	limit := p.Limit
	if limit <= 0 {
		limit = 50
	}
	limit = min(limit, store.MaxListLimit)
	var (
		where []string
		a     args
	)
	desc := p.Order == store.OrderDesc
	if p.After != "" {
		if desc {
			where = append(where, "seq < "+a.add(after))
		} else {
			where = append(where, "seq > "+a.add(after))
		}
	}
	if where, err = eventFilters(p, where, &a); err != nil {
		return nil, "", err
	}
	cols := eventCols
	if p.WithBody {
		cols += ", headers, body"
	}
	if !desc {
		// Once per statement, in its snapshot.
		cols += ", (SELECT " + horizonSQL + ")"
	}
	q := "SELECT " + cols + " FROM events"
	if len(where) > 0 {
		q += " WHERE " + strings.Join(where, " AND ")
	}
	if desc {
		q += " ORDER BY seq DESC"
	} else {
		q += " ORDER BY seq ASC"
	}
	q += " LIMIT " + a.add(limit+1)
	pg, err := s.listPage(ctx, q, a, p, limit, !desc)
	if err != nil {
		return nil, "", fmt.Errorf("list events: %w", mapErr(err))
	}
	if pg.heldBack != 0 {
		// Every event this read saw is committed: the inserts that hold
		// them back (ids below theirs, running) only end, and none can
		// join them (a new one gets a higher id). Read again until the
		// horizon passes them.
		if listHeldBack != nil {
			listHeldBack()
		}
		target := pg.heldBack
		deadline := time.Now().Add(heldBackWait)
		for wait := time.Millisecond; pg.heldBack != 0 && pg.horizon <= target; wait = min(2*wait, 50*time.Millisecond) {
			left := time.Until(deadline)
			if left <= 0 {
				break
			}
			t := time.NewTimer(min(wait, left))
			select {
			case <-ctx.Done():
				t.Stop()
				return nil, "", fmt.Errorf("list events: %w", ctx.Err())
			case <-t.C:
			}
			if pg, err = s.listPage(ctx, q, a, p, limit, true); err != nil {
				return nil, "", fmt.Errorf("list events: %w", mapErr(err))
			}
		}
	}
	next := ""
	if pg.more {
		next = store.EncodeCursor(pg.out[len(pg.out)-1].Seq)
	}
	return pg.out, next, nil
}

// eventPage is one read of EventList.
type eventPage struct {
	out  []*hookd.Event
	more bool // a row beyond the page is below the horizon
	// horizon is the horizon of an ascending read; heldBack the highest
	// seq it read at or above it (0: none), when it was read before the
	// page ended.
	horizon, heldBack int64
}

// listPage runs q, EventList's query (with the horizon as its last column
// when asc), and builds the page.
func (s *Store) listPage(ctx context.Context, q string, a args, p *store.EventListParams, limit int, asc bool) (eventPage, error) {
	var pg eventPage
	err := s.with(ctx, func(c *pgx.Conn) error {
		pg = eventPage{}
		rows, err := c.Query(ctx, q, a...)
		if err != nil {
			return err
		}
		defer rows.Close()
		scan := rows.Scan
		if asc {
			scan = func(dst ...any) error { return rows.Scan(append(dst, &pg.horizon)...) }
		}
		var bodyBytes int64
		for rows.Next() {
			if len(pg.out) == limit && !asc {
				// A row beyond the page: there is more, and it is not read.
				pg.more = true
				break
			}
			e, err := scanEvent(scan, p.WithBody)
			if err != nil {
				return err
			}
			if asc && e.Seq >= pg.horizon {
				// Not final: held back, and so is every row after it.
				pg.heldBack = e.Seq
				continue
			}
			if len(pg.out) == limit {
				// Below the horizon and beyond the page.
				pg.more = true
				break
			}
			if p.MaxBodyBytes > 0 && len(pg.out) > 0 && bodyBytes+int64(len(e.Body)) > p.MaxBodyBytes {
				// Its body would take the page past the budget: it begins the next.
				pg.more = true
				break
			}
			pg.out = append(pg.out, e)
			bodyBytes += int64(len(e.Body))
		}
		return rows.Err()
	})
	return pg, err
}

// eventFilters appends the conditions of p's filters (source, type or
// type pattern, received time, deliveries) to where and their arguments to
// a.
func eventFilters(p *store.EventListParams, where []string, a *args) ([]string, error) {
	if p.Source != "" {
		where = append(where, "source = "+a.add(text(p.Source)))
	}
	if p.Type != "" {
		var err error
		if where, err = typeConds("type", p.Type, where, a); err != nil {
			return nil, err
		}
	}
	if !p.Since.IsZero() {
		where = append(where, "received_at >= "+a.add(p.Since.UnixMicro()))
	}
	if !p.Until.IsZero() {
		where = append(where, "received_at < "+a.add(p.Until.UnixMicro()))
	}
	var dw []string
	if p.DeliveryStatus != "" {
		dw = append(dw, "status = "+a.add(text(p.DeliveryStatus)))
	}
	if p.DeliveryDestination != "" {
		dw = append(dw, "destination = "+a.add(text(p.DeliveryDestination)))
	}
	if len(dw) > 0 {
		where = append(where, "seq IN (SELECT event_seq FROM deliveries WHERE "+strings.Join(dw, " AND ")+")")
	}
	return where, nil
}

// typeConds appends the conditions on column col of the event-type filter
// typ (an exact type or a pattern).
func typeConds(col, typ string, where []string, a *args) ([]string, error) {
	m, err := store.ParseTypeMatch(typ, store.DialectLike)
	if err != nil {
		return nil, err
	}
	switch {
	case m.All:
	case m.Like == "":
		where = append(where, col+" = "+a.add(text(m.Exact)))
	default:
		op := " = "
		if m.MoreDots {
			op = " >= "
		}
		where = append(where, col+" LIKE "+a.add(text(m.Like)),
			"length("+col+") - length(replace("+col+", '.', ''))"+op+a.add(m.Dots),
			col+" NOT LIKE '%..%' AND "+col+" NOT LIKE '.%' AND "+col+" NOT LIKE '%.'")
	}
	return where, nil
}

func scanEvent(scan func(...any) error, withBody bool) (*hookd.Event, error) {
	var (
		e                               hookd.Event
		extID, typ, key, ctype, headers *string
		traceParent                     *string
		occurred                        *int64
		received                        int64
	)
	dst := []any{&e.Seq, &e.ID, &e.Source, &extID, &typ, &key, &occurred, &received, &e.Stale, &ctype, &traceParent}
	if withBody {
		dst = append(dst, &headers, &e.Body)
	}
	if err := scan(dst...); err != nil {
		return nil, err
	}
	e.ExternalID, e.Type, e.Key, e.ContentType = str(extID), str(typ), str(key), str(ctype)
	e.TraceParent = str(traceParent)
	e.OccurredAt = fromMicro(occurred)
	e.ReceivedAt = time.UnixMicro(received).UTC()
	e.RequestID = hookd.RequestIDForEvent(e.ID)
	if headers != nil && *headers != "" {
		if err := json.Unmarshal([]byte(*headers), &e.Headers); err != nil {
			return nil, fmt.Errorf("decode headers of %s: %w", e.ID, err)
		}
	}
	if withBody && e.Body == nil {
		e.Body = []byte{}
	}
	return &e, nil
}

// RequestGet resolves a request id.
func (s *Store) RequestGet(ctx context.Context, requestID string) (*hookd.Request, error) {
	var req *hookd.Request
	err := s.with(ctx, func(c *pgx.Conn) error {
		var (
			eventID  string
			received int64
		)
		err := c.QueryRow(ctx, `SELECT event_id, received_at FROM duplicate_requests WHERE request_id = $1`, text(requestID)).Scan(&eventID, &received)
		if err == nil {
			req = &hookd.Request{ID: requestID, EventID: eventID, Duplicate: true, ReceivedAt: time.UnixMicro(received).UTC()}
			return nil
		}
		if !errors.Is(err, pgx.ErrNoRows) {
			return err
		}
		eventID = hookd.EventIDForRequest(requestID)
		if err := c.QueryRow(ctx, `SELECT received_at FROM events WHERE id = $1`, text(eventID)).Scan(&received); err != nil {
			return err
		}
		req = &hookd.Request{ID: requestID, EventID: eventID, ReceivedAt: time.UnixMicro(received).UTC()}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("get request: %w", mapErr(err))
	}
	return req, nil
}

// SettingGetOrCreate returns the value stored under name, storing value
// first when there is none.
func (s *Store) SettingGetOrCreate(ctx context.Context, name, value string) (string, error) {
	var v string
	b := &pgx.Batch{}
	b.Queue(`INSERT INTO settings (name, value) VALUES ($1, $2) ON CONFLICT (name) DO NOTHING`, name, value)
	// A statement of its own: it sees a row another transaction committed
	// while the insert waited for it.
	b.Queue(`SELECT value FROM settings WHERE name = $1`, name).QueryRow(func(row pgx.Row) error {
		return row.Scan(&v)
	})
	if err := s.sendBatch(ctx, b); err != nil {
		return "", fmt.Errorf("setting %s: %w", name, mapErr(err))
	}
	return v, nil
}

// SettingGet returns the value stored under name, or store.ErrNotFound.
func (s *Store) SettingGet(ctx context.Context, name string) (string, error) {
	var v string
	err := s.with(ctx, func(c *pgx.Conn) error {
		return c.QueryRow(ctx, `SELECT value FROM settings WHERE name = $1`, name).Scan(&v)
	})
	if err != nil {
		return "", fmt.Errorf("read setting %s: %w", name, mapErr(err))
	}
	return v, nil
}

// SettingPut stores value under name, replacing any value.
func (s *Store) SettingPut(ctx context.Context, name, value string) error {
	err := s.with(ctx, func(c *pgx.Conn) error {
		_, err := c.Exec(ctx, `INSERT INTO settings (name, value) VALUES ($1, $2) ON CONFLICT (name) DO UPDATE SET value = excluded.value`, name, value)
		return err
	})
	if err != nil {
		return fmt.Errorf("store setting %s: %w", name, mapErr(err))
	}
	return nil
}

// EventMaxSeq returns the highest stored event seq, 0 when none.
func (s *Store) EventMaxSeq(ctx context.Context) (int64, error) {
	var seq int64
	err := s.with(ctx, func(c *pgx.Conn) error {
		return c.QueryRow(ctx, `SELECT coalesce(max(seq), 0) FROM events`).Scan(&seq)
	})
	if err != nil {
		return 0, fmt.Errorf("max event seq: %w", mapErr(err))
	}
	return seq, nil
}

// EventCount counts the events matching p's filters.
func (s *Store) EventCount(ctx context.Context, p *store.EventListParams) (int64, error) {
	var a args
	where, err := eventFilters(p, nil, &a)
	if err != nil {
		return 0, err
	}
	q := "SELECT count(*) FROM events"
	if len(where) > 0 {
		q += " WHERE " + strings.Join(where, " AND ")
	}
	var n int64
	err = s.with(ctx, func(c *pgx.Conn) error {
		return c.QueryRow(ctx, q, a...).Scan(&n)
	})
	if err != nil {
		return 0, fmt.Errorf("count events: %w", mapErr(err))
	}
	return n, nil
}

// checkEventSeqs makes sure that the events inserted from now on number
// after every stored one; it belongs at Open, after the migrations. It
// finds nothing to do unless the log was restored into another cluster,
// whose transaction ids are below those its seqs were numbered from: then
// it raises the seq base (the settings row seqBaseSetting) so that the
// seqs of the next transaction are above the highest stored, and stream
// cursors handed out before stay valid. For that it takes the events table
// in SHARE mode, which waits for the inserts under way and holds new ones
// back until it commits: every insert that commits later numbers with the
// new base (an insert reads the base in its statement, after taking its
// lock on the table). It also refuses a cluster whose transaction ids
// come close to the end of the seqs' room.
func (s *Store) checkEventSeqs(ctx context.Context) error {
	var maxSeq, xid, base int64
	// xmax: the id the next transaction gets, at least.
	err := s.with(ctx, func(c *pgx.Conn) error {
		return c.QueryRow(ctx, `SELECT coalesce(max(seq), 0), pg_snapshot_xmax(pg_current_snapshot())::text::bigint, `+
			seqBaseSQL+` FROM events`).Scan(&maxSeq, &xid, &base)
	})
	if err != nil {
		return fmt.Errorf("check event seqs: %w", mapErr(err))
	}
	if err := seqRoom(xid, base); err != nil {
		return err
	}
	if maxSeq < xid<<seqShift+base {
		return nil
	}
	raised := int64(0)
	err = s.inTx(ctx, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `LOCK TABLE events IN SHARE MODE`); err != nil {
			return err
		}
		// This transaction's id: every later one is above it.
		if err := tx.QueryRow(ctx, `SELECT coalesce(max(seq), 0), pg_current_xact_id()::text::bigint, `+
			seqBaseSQL+` FROM events`).Scan(&maxSeq, &xid, &base); err != nil {
			return err
		}
		if maxSeq < xid<<seqShift+base {
			return nil // another process raised it meanwhile
		}
		raised = ((maxSeq >> seqShift) + 1 - xid) << seqShift
		_, err := tx.Exec(ctx, `INSERT INTO settings (name, value) VALUES ($1, $2)
			ON CONFLICT (name) DO UPDATE SET value = excluded.value`, seqBaseSetting, strconv.FormatInt(raised, 10))
		return err
	})
	if err != nil {
		return fmt.Errorf("check event seqs: %w", mapErr(err))
	}
	if raised == 0 {
		return nil
	}
	s.log.Warn("stored event seqs are above what this cluster's transaction ids give (a log restored from another cluster?): new events number after them",
		"highest_stored_seq", maxSeq, "transaction_id", xid, "seq_base", raised)
	return seqRoom(xid, raised)
}

// seqRoom refuses transaction ids that come within 2^32 (one wraparound
// epoch of PostgreSQL) of numbering seqs past 2^63.
func seqRoom(xid, base int64) error {
	if limit := (math.MaxInt64-base-1<<seqShift)>>seqShift - 1<<32; xid > limit {
		return fmt.Errorf("postgres: this cluster's transaction ids (%d) are within 2^32 of %d, beyond which event seqs would overflow: hookd refuses to store events on this cluster", xid, limit+1<<32)
	}
	return nil
}
