package postgres

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"hookd"
	"hookd/internal/store"
)

// insertEventsSQL is the bulk insert of new events. Their seqs are taken
// from the sequence at once and given out in input order (the k-th
// smallest to the k-th row), so that seq follows the order of the batch
// whatever order nextval runs in. A row whose dedupe key another
// transaction took meanwhile is not inserted (and not returned).
func insertEventsSQL(seqName string) string {
	return `WITH s AS (SELECT nextval('` + strings.ReplaceAll(seqName, `'`, `''`) + `') AS seq FROM generate_series(1, $1::int)),
		r AS (SELECT seq, row_number() OVER (ORDER BY seq) AS n FROM s)
		INSERT INTO events (seq, id, source, external_id, dedupe_key, type, key, occurred_at, received_at,
			stale, content_type, headers, body)
		OVERRIDING SYSTEM VALUE
		SELECT r.seq, u.id, u.source, u.external_id, u.dedupe_key, u.type, u.key, u.occurred_at, u.received_at,
			u.stale, u.content_type, u.headers, u.body
		FROM unnest($2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[], $8::bigint[],
			$9::bigint[], $10::boolean[], $11::text[], $12::text[], $13::bytea[])
			WITH ORDINALITY AS u(id, source, external_id, dedupe_key, type, key, occurred_at, received_at,
				stale, content_type, headers, body, n)
		JOIN r ON r.n = u.n
		ON CONFLICT (source, dedupe_key) WHERE dedupe_key IS NOT NULL DO NOTHING
		RETURNING id, seq`
}

// eventRow is one insert, encoded for the database.
type eventRow struct {
	e        *hookd.Event
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

// maxInsertTries bounds the retries of a batch whose dedupe keys other
// processes took while it was being resolved.
const maxInsertTries = 5

// EventInsertMany stores ins in one transaction. See the package
// documentation.
func (s *Store) EventInsertMany(ctx context.Context, ins []*store.EventInsert) ([]store.EventInsertResult, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if len(ins) == 0 {
		return []store.EventInsertResult{}, nil
	}
	rows := make([]eventRow, len(ins))
	for i, in := range ins {
		e := in.Event
		r := eventRow{e: e, received: e.ReceivedAt.UnixMicro(), headers: in.HeadersJSON, body: e.Body,
			extID: textPtr(e.ExternalID), typ: textPtr(e.Type), key: textPtr(e.Key), ctype: textPtr(e.ContentType)}
		if !e.OccurredAt.IsZero() {
			o := e.OccurredAt.UnixMicro()
			r.occurred = &o
		}
		if r.headers == "" {
			var err error
			if r.headers, err = store.EncodeHeaders(e.Headers); err != nil {
				return nil, fmt.Errorf("insert event: %w", err)
			}
		}
		if r.body == nil {
			r.body = []byte{} // NULL would break the batch: the column is NOT NULL
		}
		if e.ExternalID != "" && in.DedupeWindow > 0 {
			r.dkey = dedupeKey(e.ExternalID)
			r.window = in.DedupeWindow.Microseconds()
		}
		rows[i] = r
	}
	for try := 1; ; try++ {
		res, conflict, err := s.insertOnce(ctx, rows)
		if err != nil {
			return nil, fmt.Errorf("insert events: %w", mapErr(err))
		}
		if !conflict {
			return res, nil
		}
		if try == maxInsertTries {
			return nil, &hookd.Error{Code: hookd.EUnavailable, Message: "storage busy",
				Err: fmt.Errorf("insert events: dedupe keys taken by concurrent inserts %d times in a row", try)}
		}
	}
}

// insertOnce runs one transaction of EventInsertMany: conflict is true
// (and nothing is stored) when another transaction took a dedupe key the
// batch meant to take.
func (s *Store) insertOnce(ctx context.Context, rows []eventRow) (res []store.EventInsertResult, conflict bool, err error) {
	err = s.with(ctx, func(c *pgx.Conn) error {
		// Round trip 1: begin, lock, and read the stored state the batch
		// depends on: the holders of its dedupe keys and the newest
		// timestamp of its entity keys.
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
		b.Queue(`SELECT pg_advisory_xact_lock($1, $2)`, lockEvents, s.lockKey)
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
		var (
			newIdx []int
			clear  []int64
		)
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
		// insert the new events, record the duplicates.
		b = &pgx.Batch{}
		if len(clear) > 0 {
			b.Queue(`UPDATE events SET dedupe_key = NULL WHERE seq = ANY($1::bigint[])`, clear)
		}
		seqOf := make(map[string]int64, len(newIdx))
		if n := len(newIdx); n > 0 {
			var (
				ids, srcs           = make([]string, n), make([]string, n)
				extIDs, dkeys       = make([]*string, n), make([]*string, n)
				types, keys, ctypes = make([]*string, n), make([]*string, n), make([]*string, n)
				occurred, received  = make([]*int64, n), make([]int64, n)
				stale               = make([]bool, n)
				headers, bodies     = make([]string, n), make([][]byte, n)
			)
			for j, i := range newIdx {
				r := &rows[i]
				ids[j], srcs[j], extIDs[j], dkeys[j] = r.e.ID, r.e.Source, r.extID, storedKey[i]
				types[j], keys[j], ctypes[j] = r.typ, r.key, r.ctype
				occurred[j], received[j], stale[j] = r.occurred, r.received, res[i].Stale
				headers[j], bodies[j] = r.headers, r.body
			}
			b.Queue(s.insertEvents, n, ids, srcs, extIDs, dkeys, types, keys, occurred, received, stale,
				ctypes, headers, bodies).Query(func(rs pgx.Rows) error {
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
	return res, false, nil
}

const eventCols = `seq, id, source, external_id, type, key, occurred_at, received_at, stale, content_type`

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

// EventList lists events in log order (or its reverse).
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
	where = eventFilters(p, where, &a)
	cols := eventCols
	if p.WithBody {
		cols += ", headers, body"
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
	var (
		out  []*hookd.Event
		more bool
	)
	err = s.with(ctx, func(c *pgx.Conn) error {
		out, more = nil, false
		rows, err := c.Query(ctx, q, a...)
		if err != nil {
			return err
		}
		defer rows.Close()
		var bodyBytes int64
		for rows.Next() {
			if len(out) == limit {
				// A row beyond the page: there is more, and it is not read.
				more = true
				break
			}
			e, err := scanEvent(rows.Scan, p.WithBody)
			if err != nil {
				return err
			}
			if p.MaxBodyBytes > 0 && len(out) > 0 && bodyBytes+int64(len(e.Body)) > p.MaxBodyBytes {
				// Its body would take the page past the budget: it begins the next.
				more = true
				break
			}
			out = append(out, e)
			bodyBytes += int64(len(e.Body))
		}
		return rows.Err()
	})
	if err != nil {
		return nil, "", fmt.Errorf("list events: %w", mapErr(err))
	}
	next := ""
	if more {
		next = store.EncodeCursor(out[len(out)-1].Seq)
	}
	return out, next, nil
}

// eventFilters appends the conditions of p's filters (source, type,
// received time, delivery status) to where and their arguments to a.
func eventFilters(p *store.EventListParams, where []string, a *args) []string {
	if p.Source != "" {
		where = append(where, "source = "+a.add(text(p.Source)))
	}
	if p.Type != "" {
		where = append(where, "type = "+a.add(text(p.Type)))
	}
	if !p.Since.IsZero() {
		where = append(where, "received_at >= "+a.add(p.Since.UnixMicro()))
	}
	if !p.Until.IsZero() {
		where = append(where, "received_at < "+a.add(p.Until.UnixMicro()))
	}
	if p.DeliveryStatus != "" {
		where = append(where, "seq IN (SELECT event_seq FROM deliveries WHERE status = "+a.add(text(p.DeliveryStatus))+")")
	}
	return where
}

func scanEvent(scan func(...any) error, withBody bool) (*hookd.Event, error) {
	var (
		e                               hookd.Event
		extID, typ, key, ctype, headers *string
		occurred                        *int64
		received                        int64
	)
	dst := []any{&e.Seq, &e.ID, &e.Source, &extID, &typ, &key, &occurred, &received, &e.Stale, &ctype}
	if withBody {
		dst = append(dst, &headers, &e.Body)
	}
	if err := scan(dst...); err != nil {
		return nil, err
	}
	e.ExternalID, e.Type, e.Key, e.ContentType = str(extID), str(typ), str(key), str(ctype)
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
	where := eventFilters(p, nil, &a)
	q := "SELECT count(*) FROM events"
	if len(where) > 0 {
		q += " WHERE " + strings.Join(where, " AND ")
	}
	var n int64
	err := s.with(ctx, func(c *pgx.Conn) error {
		return c.QueryRow(ctx, q, a...).Scan(&n)
	})
	if err != nil {
		return 0, fmt.Errorf("count events: %w", mapErr(err))
	}
	return n, nil
}
