package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"

	"hookd"
	"hookd/internal/store"
)

// watermarkSetting is the settings row that holds the fan-out watermark.
const watermarkSetting = "fanout_watermark"

// deliveryCols are the columns of a delivery row, in scanDelivery's order.
const deliveryCols = `id, event_id, event_seq, event_key, destination, subscription_id, status,
	attempts, round_attempts, first_attempt_at, next_attempt_at, lease_until,
	last_attempt_at, last_status_code, last_error, last_duration_us, last_excerpt,
	reason, created_at, updated_at, generation`

// deliveryStmts are the writer's prepared statements of the delivery
// engine's hot paths.
type deliveryStmts struct {
	upsert    *sql.Stmt
	attempt   *sql.Stmt
	watermark *sql.Stmt
	claim     *sql.Stmt
}

func (s *Store) prepareDelivery(ctx context.Context) error {
	for _, p := range []struct {
		dst **sql.Stmt
		q   string
	}{
		// The identity (event_id, event_seq, destination: fixed by the id)
		// and created_at are left alone on update: they never change, and
		// SQLite then leaves the indexes on them alone too, and so is the
		// generation (only a replay moves it). ?22 is the fence: -1
		// (store.FenceNone) updates unconditionally, -2
		// (store.FenceInsertOnly) never updates, an attempt count updates
		// a row with that count and the write's generation (?21).
		{&s.dlv.upsert, `INSERT INTO deliveries (` + deliveryCols + `)
			VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18, ?19, ?20, ?21)
			ON CONFLICT (id) DO UPDATE SET
				event_key = excluded.event_key,
				subscription_id = excluded.subscription_id,
				status = excluded.status,
				attempts = excluded.attempts,
				round_attempts = excluded.round_attempts,
				first_attempt_at = excluded.first_attempt_at,
				next_attempt_at = excluded.next_attempt_at,
				lease_until = excluded.lease_until,
				last_attempt_at = excluded.last_attempt_at,
				last_status_code = excluded.last_status_code,
				last_error = excluded.last_error,
				last_duration_us = excluded.last_duration_us,
				last_excerpt = excluded.last_excerpt,
				reason = excluded.reason,
				updated_at = excluded.updated_at
			WHERE ?22 = -1 OR (deliveries.attempts = ?22 AND deliveries.generation = ?21)`},
		{&s.dlv.attempt, `INSERT INTO delivery_attempts
			(delivery_id, number, started_at, duration_us, status_code, error, response_excerpt)
			VALUES (?, ?, ?, ?, ?, ?, ?)
			ON CONFLICT (delivery_id, number) DO UPDATE SET
				started_at = excluded.started_at,
				duration_us = excluded.duration_us,
				status_code = excluded.status_code,
				error = excluded.error,
				response_excerpt = excluded.response_excerpt`},
		{&s.dlv.watermark, `INSERT INTO settings (name, value) VALUES ('` + watermarkSetting + `', ?1)
			ON CONFLICT (name) DO UPDATE SET value = excluded.value
			WHERE CAST(settings.value AS INTEGER) < CAST(excluded.value AS INTEGER)`},
		// Due work, and delivering rows whose lease ended before now. One
		// range of a per-status partial index (deliveries_pending, _retrying,
		// _delivering), each already in due order and
		// cut at the limit, so that a claim reads at most 3×limit index
		// entries however large the backlog (an OR of the statuses makes
		// SQLite scan the destination's every row).
		{&s.dlv.claim, `UPDATE deliveries SET status = 'delivering', lease_until = ?1, updated_at = ?2
			WHERE id IN (
				SELECT id FROM (
					SELECT * FROM (SELECT id, next_attempt_at AS due FROM deliveries
						WHERE destination = ?3 AND status = 'pending' AND next_attempt_at <= ?4
						ORDER BY next_attempt_at LIMIT ?5)
					UNION ALL
					SELECT * FROM (SELECT id, next_attempt_at AS due FROM deliveries
						WHERE destination = ?3 AND status = 'retrying' AND next_attempt_at <= ?4
						ORDER BY next_attempt_at LIMIT ?5)
					UNION ALL
					SELECT * FROM (SELECT id, next_attempt_at AS due FROM deliveries
						WHERE destination = ?3 AND status = 'delivering' AND lease_until < ?4
						ORDER BY next_attempt_at LIMIT ?5))
				ORDER BY due LIMIT ?5)
			RETURNING ` + deliveryCols},
	} {
		st, err := s.w.PrepareContext(ctx, p.q)
		if err != nil {
			return fmt.Errorf("prepare %q: %w", p.q, err)
		}
		*p.dst = st
	}
	return nil
}

// writable fails once a sync has failed: nothing may be committed after
// it (see Sync).
func (s *Store) writable() error {
	if broken := s.syncErr.Load(); broken != nil {
		return &hookd.Error{Code: hookd.EUnavailable, Message: "storage unavailable", Err: *broken}
	}
	return nil
}

// micro is t as stored: unix microseconds, NULL for the zero time.
func micro(t time.Time) any {
	if t.IsZero() {
		return nil
	}
	return t.UnixMicro()
}

func fromMicro(v sql.NullInt64) time.Time {
	if !v.Valid {
		return time.Time{}
	}
	return time.UnixMicro(v.Int64).UTC()
}

func nullInt(n int64) any {
	if n == 0 {
		return nil
	}
	return n
}

func nullBytes(b []byte) any {
	if len(b) == 0 {
		return nil
	}
	return b
}

// DeliveryWriteMany applies writes and advances the watermark in one
// transaction on the writer. Like EventInsertMany, its commit is made
// durable by the next Sync (or checkpoint): a crash can lose the last
// outcomes, never reorder them, and at-least-once delivery covers the loss.
func (s *Store) DeliveryWriteMany(ctx context.Context, writes []*store.DeliveryWrite, watermark int64) ([]string, error) {
	if err := s.writable(); err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	// As in EventInsertMany: a context that can end costs a goroutine
	// switch per statement, and this is the completer's batch on the one
	// writer. The statements end by themselves.
	ctx = context.Background()
	s.catchUpWAL(ctx)
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return nil, fmt.Errorf("begin: %w", mapErr(err))
	}
	defer tx.Rollback()
	var upsert, attempt *sql.Stmt
	now := time.Now()
	var skipped []string
	applied := make([]bool, len(writes))
	for i, w := range writes {
		d := w.Delivery
		id := d.ID
		if id == "" {
			id = store.DeliveryID(d.EventID, d.Destination)
		}
		created, updated, next := d.CreatedAt, d.UpdatedAt, d.NextAttemptAt
		if created.IsZero() {
			created = now
		}
		if updated.IsZero() {
			updated = now
		}
		if next.IsZero() && (d.Status == store.StatusPending || d.Status == store.StatusRetrying) {
			next = now
		}
		if upsert == nil {
			upsert = tx.StmtContext(ctx, s.dlv.upsert)
		}
		r, err := upsert.ExecContext(ctx, id, d.EventID, d.EventSeq, nullStr(d.EventKey), d.Destination,
			nullStr(d.SubscriptionID), d.Status, d.Attempts, d.RoundAttempts,
			micro(d.FirstAttemptAt), micro(next), micro(d.LeaseUntil), micro(d.LastAttemptAt),
			nullInt(int64(d.LastStatusCode)), nullStr(d.LastError), nullInt(d.LastDuration.Microseconds()),
			nullBytes(d.LastExcerpt), nullStr(d.Reason), created.UnixMicro(), updated.UnixMicro(), d.Generation, w.Fence)
		if err != nil {
			return nil, fmt.Errorf("write delivery %s: %w", id, mapErr(err))
		}
		if n, err := r.RowsAffected(); err != nil {
			return nil, fmt.Errorf("write delivery %s: %w", id, mapErr(err))
		} else if n == 0 {
			skipped = append(skipped, id)
			continue
		}
		applied[i] = true
		if a := w.Attempt; a != nil {
			num := a.Number
			if num == 0 {
				num = d.Attempts
			}
			if attempt == nil {
				attempt = tx.StmtContext(ctx, s.dlv.attempt)
			}
			if _, err := attempt.ExecContext(ctx, id, num, a.StartedAt.UnixMicro(), a.Duration.Microseconds(),
				nullInt(int64(a.StatusCode)), nullStr(a.Error), nullBytes(a.ResponseExcerpt)); err != nil {
				return nil, fmt.Errorf("write attempt %d of %s: %w", num, id, mapErr(err))
			}
		}
	}
	totals, minutes := store.CountOutcomes(writes, func(i int) bool { return applied[i] }, now)
	if err := addCounts(ctx, tx, totals, minutes); err != nil {
		return nil, err
	}
	if watermark > 0 {
		if _, err := tx.StmtContext(ctx, s.dlv.watermark).ExecContext(ctx, strconv.FormatInt(watermark, 10)); err != nil {
			return nil, fmt.Errorf("set watermark: %w", mapErr(err))
		}
	}
	if err := tx.Commit(); err != nil {
		return nil, fmt.Errorf("commit: %w", mapErr(err))
	}
	return skipped, nil
}

func scanDelivery(scan func(...any) error) (*store.Delivery, error) {
	var (
		d                                     store.Delivery
		key, sub, lastErr, reason             sql.NullString
		first, next, lease, lastAt, code, dur sql.NullInt64
		created, updated                      int64
	)
	if err := scan(&d.ID, &d.EventID, &d.EventSeq, &key, &d.Destination, &sub, &d.Status,
		&d.Attempts, &d.RoundAttempts, &first, &next, &lease,
		&lastAt, &code, &lastErr, &dur, &d.LastExcerpt,
		&reason, &created, &updated, &d.Generation); err != nil {
		return nil, err
	}
	d.EventKey, d.SubscriptionID, d.LastError, d.Reason = key.String, sub.String, lastErr.String, reason.String
	d.FirstAttemptAt, d.NextAttemptAt, d.LeaseUntil, d.LastAttemptAt = fromMicro(first), fromMicro(next), fromMicro(lease), fromMicro(lastAt)
	d.LastStatusCode = int(code.Int64)
	d.LastDuration = time.Duration(dur.Int64) * time.Microsecond
	d.CreatedAt, d.UpdatedAt = time.UnixMicro(created).UTC(), time.UnixMicro(updated).UTC()
	return &d, nil
}

// queryer is a *sql.DB or a *sql.Tx.
type queryer interface {
	QueryContext(ctx context.Context, q string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, q string, args ...any) *sql.Row
}

func queryDeliveries(ctx context.Context, db queryer, q string, args ...any) ([]*store.Delivery, error) {
	rows, err := db.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, mapErr(err)
	}
	defer rows.Close()
	var out []*store.Delivery
	for rows.Next() {
		d, err := scanDelivery(rows.Scan)
		if err != nil {
			return nil, mapErr(err)
		}
		out = append(out, d)
	}
	if err := rows.Err(); err != nil {
		return nil, mapErr(err)
	}
	return out, nil
}

// idRange is the range of the primary key that holds every delivery id
// of event eventID (they all begin with DeliveryID(eventID, "")).
func idRange(eventID string) (lo, hi string) {
	lo = store.DeliveryID(eventID, "")
	b := []byte(lo)
	b[len(b)-1]++ // lo ends with "_", never 0xff
	return lo, string(b)
}

// loadAttempts fills the attempt logs of ds, which are deliveries of the
// event whose ids lie in [lo, hi).
func loadAttempts(ctx context.Context, db queryer, ds []*store.Delivery, lo, hi string) error {
	byID := make(map[string]*store.Delivery, len(ds))
	for _, d := range ds {
		byID[d.ID] = d
	}
	rows, err := db.QueryContext(ctx, `SELECT delivery_id, number, started_at, duration_us, status_code, error, response_excerpt
		FROM delivery_attempts WHERE delivery_id >= ? AND delivery_id < ? ORDER BY delivery_id, number`, lo, hi)
	if err != nil {
		return mapErr(err)
	}
	defer rows.Close()
	for rows.Next() {
		var (
			id           string
			a            store.Attempt
			started, dur int64
			code         sql.NullInt64
			errText      sql.NullString
		)
		if err := rows.Scan(&id, &a.Number, &started, &dur, &code, &errText, &a.ResponseExcerpt); err != nil {
			return mapErr(err)
		}
		d := byID[id]
		if d == nil {
			continue
		}
		a.StartedAt = time.UnixMicro(started).UTC()
		a.Duration = time.Duration(dur) * time.Microsecond
		a.StatusCode, a.Error = int(code.Int64), errText.String
		d.AttemptLog = append(d.AttemptLog, &a)
	}
	if err := rows.Err(); err != nil {
		return mapErr(err)
	}
	for _, d := range ds {
		completeLog(d)
	}
	return nil
}

// completeLog adds the row's last attempt to d's log when it has no entry
// of its own (a success, or any last attempt the writer kept on the row
// only), and puts the log in order.
func completeLog(d *store.Delivery) {
	if d.Attempts > 0 && !d.LastAttemptAt.IsZero() {
		found := false
		for _, a := range d.AttemptLog {
			if a.Number == d.Attempts {
				found = true
				break
			}
		}
		if !found {
			d.AttemptLog = append(d.AttemptLog, &store.Attempt{
				Number:          d.Attempts,
				StartedAt:       d.LastAttemptAt,
				Duration:        d.LastDuration,
				StatusCode:      d.LastStatusCode,
				Error:           d.LastError,
				ResponseExcerpt: d.LastExcerpt,
			})
		}
	}
	sort.SliceStable(d.AttemptLog, func(i, j int) bool { return d.AttemptLog[i].Number < d.AttemptLog[j].Number })
}

// readTx begins a read transaction: the row and its attempt log come from
// one snapshot.
func (s *Store) readTx(ctx context.Context) (*sql.Tx, error) {
	tx, err := s.r.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return nil, mapErr(err)
	}
	return tx, nil
}

// DeliveryGet returns one delivery with its attempt log.
func (s *Store) DeliveryGet(ctx context.Context, id string) (*store.Delivery, error) {
	tx, err := s.readTx(ctx)
	if err != nil {
		return nil, fmt.Errorf("get delivery: %w", err)
	}
	defer tx.Rollback()
	d, err := scanDelivery(tx.QueryRowContext(ctx, `SELECT `+deliveryCols+` FROM deliveries WHERE id = ?`, id).Scan)
	if err != nil {
		return nil, fmt.Errorf("get delivery: %w", mapErr(err))
	}
	// The delivery's own id bounds its log: [id, id+"\x00") is just id.
	if err := loadAttempts(ctx, tx, []*store.Delivery{d}, id, id+"\x00"); err != nil {
		return nil, fmt.Errorf("get delivery attempts: %w", err)
	}
	return d, nil
}

// DeliveryListByEvent returns an event's deliveries by destination name,
// with their attempt logs.
func (s *Store) DeliveryListByEvent(ctx context.Context, eventID string) ([]*store.Delivery, error) {
	tx, err := s.readTx(ctx)
	if err != nil {
		return nil, fmt.Errorf("list deliveries of %s: %w", eventID, err)
	}
	defer tx.Rollback()
	lo, hi := idRange(eventID)
	ds, err := queryDeliveries(ctx, tx, `SELECT `+deliveryCols+` FROM deliveries
		WHERE id >= ? AND id < ? AND event_id = ? ORDER BY destination`, lo, hi, eventID)
	if err != nil {
		return nil, fmt.Errorf("list deliveries of %s: %w", eventID, err)
	}
	if len(ds) == 0 {
		return ds, nil
	}
	if err := loadAttempts(ctx, tx, ds, lo, hi); err != nil {
		return nil, fmt.Errorf("list attempts of %s: %w", eventID, err)
	}
	return ds, nil
}

// DeliveryList lists deliveries newest event first.
func (s *Store) DeliveryList(ctx context.Context, p *store.DeliveryListParams) ([]*store.Delivery, string, error) {
	// Filters by source, type or time read the events table.
	if err := s.caughtUp(ctx); err != nil {
		return nil, "", err
	}
	limit := p.Limit
	if limit <= 0 {
		limit = 50
	}
	limit = min(limit, store.MaxListLimit)
	var (
		where []string
		args  []any
	)
	if p.After != "" {
		seq, dest, err := store.DecodeDeliveryCursor(p.After)
		if err != nil {
			return nil, "", err
		}
		where = append(where, "(d.event_seq < ? OR (d.event_seq = ? AND d.destination > ?))")
		args = append(args, seq, seq, dest)
	}
	if p.Status != "" {
		where = append(where, "d.status = ?")
		args = append(args, p.Status)
	}
	if p.Destination != "" {
		where = append(where, "d.destination = ?")
		args = append(args, p.Destination)
	}
	if p.EventID != "" {
		lo, hi := idRange(p.EventID)
		where = append(where, "d.id >= ? AND d.id < ? AND d.event_id = ?")
		args = append(args, lo, hi, p.EventID)
	}
	join := false
	if p.Source != "" {
		join = true
		where = append(where, "e.source = ?")
		args = append(args, p.Source)
	}
	if p.EventType != "" {
		join = true
		var err error
		if where, args, err = typeConds("e.type", p.EventType, where, args); err != nil {
			return nil, "", err
		}
	}
	if !p.Since.IsZero() {
		join = true
		where = append(where, "e.received_at >= ?")
		args = append(args, p.Since.UnixMicro())
	}
	if !p.Until.IsZero() {
		join = true
		where = append(where, "e.received_at < ?")
		args = append(args, p.Until.UnixMicro())
	}
	q := "SELECT " + prefixCols("d.", deliveryCols) + " FROM deliveries d"
	if join {
		// By seq (events' rowid) too: the planner may then start from
		// events_source and find each event's deliveries in deliveries_seq.
		q += " JOIN events e ON e.seq = d.event_seq AND e.id = d.event_id"
	}
	if len(where) > 0 {
		q += " WHERE " + strings.Join(where, " AND ")
	}
	q += " ORDER BY d.event_seq DESC, d.destination ASC LIMIT ?"
	args = append(args, limit+1)
	out, err := queryDeliveries(ctx, s.r, q, args...)
	if err != nil {
		return nil, "", fmt.Errorf("list deliveries: %w", err)
	}
	next := ""
	if len(out) > limit {
		out = out[:limit]
		last := out[limit-1]
		next = store.EncodeDeliveryCursor(last.EventSeq, last.Destination)
	}
	return out, next, nil
}

// prefixCols qualifies every column of a list with a table alias.
func prefixCols(prefix, cols string) string {
	fields := strings.Split(cols, ",")
	for i, f := range fields {
		fields[i] = prefix + strings.TrimSpace(f)
	}
	return strings.Join(fields, ", ")
}

// DeliveryExisting returns which of ids have a delivery row.
func (s *Store) DeliveryExisting(ctx context.Context, ids []string) (map[string]bool, error) {
	const chunk = 500
	out := make(map[string]bool)
	for len(ids) > 0 {
		n := min(len(ids), chunk)
		args := make([]any, n)
		for i, id := range ids[:n] {
			args[i] = id
		}
		ids = ids[n:]
		rows, err := s.r.QueryContext(ctx, `SELECT id FROM deliveries WHERE id IN (?`+strings.Repeat(", ?", n-1)+`)`, args...)
		if err != nil {
			return nil, fmt.Errorf("existing deliveries: %w", mapErr(err))
		}
		for rows.Next() {
			var id string
			if err := rows.Scan(&id); err != nil {
				rows.Close()
				return nil, fmt.Errorf("existing deliveries: %w", mapErr(err))
			}
			out[id] = true
		}
		err = rows.Err()
		rows.Close()
		if err != nil {
			return nil, fmt.Errorf("existing deliveries: %w", mapErr(err))
		}
	}
	return out, nil
}

// DeliveryClaimDue claims due deliveries of destination on the writer.
func (s *Store) DeliveryClaimDue(ctx context.Context, destination string, now time.Time, lease time.Duration, limit int) ([]*store.Delivery, error) {
	if limit <= 0 {
		return nil, nil
	}
	if err := s.writable(); err != nil {
		return nil, err
	}
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return nil, fmt.Errorf("claim deliveries: %w", mapErr(err))
	}
	defer tx.Rollback()
	ds, err := queryDeliveries(ctx, stmtQueryer{tx.StmtContext(ctx, s.dlv.claim)}, "",
		now.Add(lease).UnixMicro(), now.UnixMicro(), destination, now.UnixMicro(), limit)
	if err != nil {
		return nil, fmt.Errorf("claim deliveries: %w", err)
	}
	if err := tx.Commit(); err != nil {
		return nil, fmt.Errorf("claim deliveries: %w", mapErr(err))
	}
	// RETURNING comes in no particular order.
	sort.SliceStable(ds, func(i, j int) bool {
		a, b := ds[i], ds[j]
		if !a.NextAttemptAt.Equal(b.NextAttemptAt) {
			return a.NextAttemptAt.Before(b.NextAttemptAt)
		}
		return a.EventSeq < b.EventSeq
	})
	return ds, nil
}

// stmtQueryer adapts a prepared statement to queryer (the query text is
// the statement's own).
type stmtQueryer struct{ st *sql.Stmt }

func (q stmtQueryer) QueryContext(ctx context.Context, _ string, args ...any) (*sql.Rows, error) {
	return q.st.QueryContext(ctx, args...)
}

func (q stmtQueryer) QueryRowContext(ctx context.Context, _ string, args ...any) *sql.Row {
	return q.st.QueryRowContext(ctx, args...)
}

// DeliveryLoadOrdered loads an ordered destination's unfinished work in
// event order.
func (s *Store) DeliveryLoadOrdered(ctx context.Context, destination string, afterSeq int64, limit int) ([]*store.Delivery, error) {
	if limit <= 0 {
		return nil, nil
	}
	ds, err := queryDeliveries(ctx, s.r, `SELECT `+deliveryCols+` FROM deliveries
		WHERE destination = ? AND event_seq > ? AND status IN ('pending', 'retrying', 'delivering')
		ORDER BY event_seq LIMIT ?`, destination, afterSeq, limit)
	if err != nil {
		return nil, fmt.Errorf("load ordered deliveries of %s: %w", destination, err)
	}
	return ds, nil
}

// DeliveryNextDue returns the earliest due time of destination's waiting
// deliveries.
func (s *Store) DeliveryNextDue(ctx context.Context, destination string) (time.Time, bool, error) {
	// One min() per status: each is one seek in a partial index.
	var at sql.NullInt64
	err := s.r.QueryRowContext(ctx, `SELECT min(m) FROM (
		SELECT min(next_attempt_at) AS m FROM deliveries WHERE destination = ?1 AND status = 'pending'
		UNION ALL
		SELECT min(next_attempt_at) FROM deliveries WHERE destination = ?1 AND status = 'retrying')`, destination).Scan(&at)
	if err != nil {
		return time.Time{}, false, fmt.Errorf("next due delivery of %s: %w", destination, mapErr(err))
	}
	if !at.Valid {
		return time.Time{}, false, nil
	}
	return fromMicro(at), true, nil
}

// DeliveryReplayMany queues ds again.
func (s *Store) DeliveryReplayMany(ctx context.Context, ds []*store.Delivery, now time.Time) (int, error) {
	if err := s.writable(); err != nil {
		return 0, err
	}
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return 0, fmt.Errorf("replay deliveries: %w", mapErr(err))
	}
	defer tx.Rollback()
	st, err := tx.PrepareContext(ctx, `INSERT INTO deliveries
		(id, event_id, event_seq, event_key, destination, subscription_id, status, attempts, round_attempts,
		 next_attempt_at, created_at, updated_at)
		VALUES (?1, ?2, ?3, ?4, ?5, ?6, 'pending', 0, 0, ?7, ?7, ?7)
		ON CONFLICT (id) DO UPDATE SET
			status = 'pending',
			round_attempts = 0,
			first_attempt_at = NULL,
			next_attempt_at = excluded.next_attempt_at,
			lease_until = NULL,
			reason = NULL,
			updated_at = excluded.updated_at,
			generation = deliveries.generation + 1
		WHERE deliveries.status <> 'delivering'`)
	if err != nil {
		return 0, fmt.Errorf("replay deliveries: %w", mapErr(err))
	}
	defer st.Close()
	at := now.UnixMicro()
	queued := 0
	for _, d := range ds {
		id := d.ID
		if id == "" {
			id = store.DeliveryID(d.EventID, d.Destination)
		}
		r, err := st.ExecContext(ctx, id, d.EventID, d.EventSeq, nullStr(d.EventKey), d.Destination, nullStr(d.SubscriptionID), at)
		if err != nil {
			return 0, fmt.Errorf("replay delivery %s: %w", id, mapErr(err))
		}
		n, err := r.RowsAffected()
		if err != nil {
			return 0, fmt.Errorf("replay delivery %s: %w", id, mapErr(err))
		}
		queued += int(n)
	}
	if err := s.commitDurable(tx); err != nil {
		return 0, fmt.Errorf("replay deliveries: %w", err)
	}
	return queued, nil
}

// commitDurable commits tx and syncs the WAL: the admin API answers for
// these writes.
func (s *Store) commitDurable(tx *sql.Tx) error {
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("commit: %w", mapErr(err))
	}
	if err := s.syncDB(); err != nil {
		return &hookd.Error{Code: hookd.EUnavailable, Message: "storage unavailable", Err: err}
	}
	return nil
}

// DeliveryReleaseAll returns every delivering delivery to retrying, due now.
func (s *Store) DeliveryReleaseAll(ctx context.Context, now time.Time) (int, error) {
	if err := s.writable(); err != nil {
		return 0, err
	}
	at := now.UnixMicro()
	r, err := s.w.ExecContext(ctx, `UPDATE deliveries SET status = 'retrying', next_attempt_at = ?1,
		lease_until = NULL, updated_at = ?1 WHERE status = 'delivering'`, at)
	if err != nil {
		return 0, fmt.Errorf("release deliveries: %w", mapErr(err))
	}
	n, err := r.RowsAffected()
	if err != nil {
		return 0, fmt.Errorf("release deliveries: %w", mapErr(err))
	}
	return int(n), nil
}

// DeliveryCountByStatus counts deliveries per status.
func (s *Store) DeliveryCountByStatus(ctx context.Context, destination string) (map[string]int64, error) {
	q, args := `SELECT status, count(*) FROM deliveries GROUP BY status`, []any(nil)
	if destination != "" {
		q, args = `SELECT status, count(*) FROM deliveries WHERE destination = ? GROUP BY status`, []any{destination}
	}
	rows, err := s.r.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("count deliveries: %w", mapErr(err))
	}
	return scanCounts(rows)
}

// WatermarkGet returns the fan-out watermark, 0 when never set.
func (s *Store) WatermarkGet(ctx context.Context) (int64, error) {
	var v string
	err := s.r.QueryRowContext(ctx, `SELECT value FROM settings WHERE name = ?`, watermarkSetting).Scan(&v)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("get watermark: %w", mapErr(err))
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("get watermark: stored value %q: %w", v, err)
	}
	return n, nil
}

// EventMaxSeq returns the highest stored event seq, 0 when none.
func (s *Store) EventMaxSeq(ctx context.Context) (int64, error) {
	if err := s.caughtUp(ctx); err != nil {
		return 0, err
	}
	var seq int64
	if err := s.r.QueryRowContext(ctx, `SELECT coalesce(max(seq), 0) FROM events`).Scan(&seq); err != nil {
		return 0, fmt.Errorf("max event seq: %w", mapErr(err))
	}
	return seq, nil
}

// EventCount counts the events matching p's filters.
func (s *Store) EventCount(ctx context.Context, p *store.EventListParams) (int64, error) {
	if err := s.caughtUp(ctx); err != nil {
		return 0, err
	}
	where, args, err := eventFilters(p, nil, nil)
	if err != nil {
		return 0, err
	}
	q := "SELECT count(*) FROM events"
	if len(where) > 0 {
		q += " WHERE " + strings.Join(where, " AND ")
	}
	var n int64
	if err := s.r.QueryRowContext(ctx, q, args...).Scan(&n); err != nil {
		return 0, fmt.Errorf("count events: %w", mapErr(err))
	}
	return n, nil
}

func orNow(t, now time.Time) int64 {
	if t.IsZero() {
		return now.UnixMicro()
	}
	return t.UnixMicro()
}

// DestinationPut creates or replaces an API-managed destination, keeping
// the stored disabled state unless d carries one.
func (s *Store) DestinationPut(ctx context.Context, d *store.DestinationRecord) error {
	if len(d.Spec) == 0 {
		// A row without a spec is a configured destination's state.
		return hookd.Errorf(hookd.EInvalid, "destination %q: empty spec", d.Name)
	}
	if err := s.writable(); err != nil {
		return err
	}
	now := time.Now()
	var reason any
	if !d.DisabledAt.IsZero() {
		reason = nullStr(d.DisabledReason)
	}
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("put destination %s: %w", d.Name, mapErr(err))
	}
	defer tx.Rollback()
	if _, err := tx.ExecContext(ctx, `INSERT INTO destinations (name, spec, disabled_at, disabled_reason, created_at, updated_at)
		VALUES (?1, ?2, ?3, ?4, ?5, ?6)
		ON CONFLICT (name) DO UPDATE SET
			spec = excluded.spec,
			disabled_at = CASE WHEN excluded.disabled_at IS NULL THEN destinations.disabled_at ELSE excluded.disabled_at END,
			disabled_reason = CASE WHEN excluded.disabled_at IS NULL THEN destinations.disabled_reason ELSE excluded.disabled_reason END,
			updated_at = excluded.updated_at`,
		d.Name, nullStr(string(d.Spec)), micro(d.DisabledAt), reason, orNow(d.CreatedAt, now), orNow(d.UpdatedAt, now)); err != nil {
		return fmt.Errorf("put destination %s: %w", d.Name, mapErr(err))
	}
	if err := s.commitDurable(tx); err != nil {
		return fmt.Errorf("put destination %s: %w", d.Name, err)
	}
	return nil
}

// DestinationDelete deletes a stored destination (or its state).
func (s *Store) DestinationDelete(ctx context.Context, name string) error {
	return s.deleteOne(ctx, `DELETE FROM destinations WHERE name = ?`, name, "destination")
}

// deleteOne runs a DELETE of one row by key; ErrNotFound when it deleted
// nothing.
func (s *Store) deleteOne(ctx context.Context, q, key, what string) error {
	if err := s.writable(); err != nil {
		return err
	}
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("delete %s %s: %w", what, key, mapErr(err))
	}
	defer tx.Rollback()
	r, err := tx.ExecContext(ctx, q, key)
	if err != nil {
		return fmt.Errorf("delete %s %s: %w", what, key, mapErr(err))
	}
	n, err := r.RowsAffected()
	if err != nil {
		return fmt.Errorf("delete %s %s: %w", what, key, mapErr(err))
	}
	if n == 0 {
		return fmt.Errorf("delete %s %s: %w", what, key, store.ErrNotFound)
	}
	if err := s.commitDurable(tx); err != nil {
		return fmt.Errorf("delete %s %s: %w", what, key, err)
	}
	return nil
}

// DestinationList returns every stored destination by name.
func (s *Store) DestinationList(ctx context.Context) ([]*store.DestinationRecord, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT name, spec, disabled_at, disabled_reason, failing_since, created_at, updated_at
		FROM destinations ORDER BY name`)
	if err != nil {
		return nil, fmt.Errorf("list destinations: %w", mapErr(err))
	}
	defer rows.Close()
	var out []*store.DestinationRecord
	for rows.Next() {
		var (
			d                store.DestinationRecord
			spec, reason     sql.NullString
			disabled, since  sql.NullInt64
			created, updated int64
		)
		if err := rows.Scan(&d.Name, &spec, &disabled, &reason, &since, &created, &updated); err != nil {
			return nil, fmt.Errorf("list destinations: %w", mapErr(err))
		}
		if spec.Valid && spec.String != "" {
			d.Spec = []byte(spec.String)
		}
		d.DisabledAt, d.DisabledReason = fromMicro(disabled), reason.String
		d.FailingSince = fromMicro(since)
		d.CreatedAt, d.UpdatedAt = time.UnixMicro(created).UTC(), time.UnixMicro(updated).UTC()
		out = append(out, &d)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list destinations: %w", mapErr(err))
	}
	return out, nil
}

// DestinationSetFailingSince records or clears when a destination's run
// of failures began.
func (s *Store) DestinationSetFailingSince(ctx context.Context, name string, since time.Time) error {
	if err := s.writable(); err != nil {
		return err
	}
	now := time.Now().UnixMicro()
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("set destination %s failing: %w", name, mapErr(err))
	}
	defer tx.Rollback()
	if since.IsZero() {
		if _, err := tx.ExecContext(ctx, `UPDATE destinations SET failing_since = NULL WHERE name = ?`, name); err != nil {
			return fmt.Errorf("clear destination %s failing: %w", name, mapErr(err))
		}
		if _, err := tx.ExecContext(ctx, `DELETE FROM destinations WHERE name = ? AND spec IS NULL AND disabled_at IS NULL`, name); err != nil {
			return fmt.Errorf("clear destination %s failing: %w", name, mapErr(err))
		}
	} else if _, err := tx.ExecContext(ctx, `INSERT INTO destinations (name, spec, failing_since, created_at, updated_at)
		VALUES (?1, NULL, ?2, ?3, ?3)
		ON CONFLICT (name) DO UPDATE SET failing_since = excluded.failing_since`,
		name, since.UnixMicro(), now); err != nil {
		return fmt.Errorf("set destination %s failing: %w", name, mapErr(err))
	}
	// Not synced: lost in a crash, the clock restarts with the next
	// failure, as it did before it was kept.
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("set destination %s failing: %w", name, mapErr(err))
	}
	return nil
}

// DestinationSetDisabled records or clears a destination's disabled state.
func (s *Store) DestinationSetDisabled(ctx context.Context, name string, at time.Time, reason string) error {
	if err := s.writable(); err != nil {
		return err
	}
	now := time.Now().UnixMicro()
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("set destination %s disabled: %w", name, mapErr(err))
	}
	defer tx.Rollback()
	if at.IsZero() {
		if _, err := tx.ExecContext(ctx, `DELETE FROM destinations WHERE name = ? AND spec IS NULL`, name); err != nil {
			return fmt.Errorf("enable destination %s: %w", name, mapErr(err))
		}
		if _, err := tx.ExecContext(ctx, `UPDATE destinations SET disabled_at = NULL, disabled_reason = NULL, updated_at = ?
			WHERE name = ? AND disabled_at IS NOT NULL`, now, name); err != nil {
			return fmt.Errorf("enable destination %s: %w", name, mapErr(err))
		}
	} else if _, err := tx.ExecContext(ctx, `INSERT INTO destinations (name, spec, disabled_at, disabled_reason, created_at, updated_at)
		VALUES (?1, NULL, ?2, ?3, ?4, ?4)
		ON CONFLICT (name) DO UPDATE SET disabled_at = excluded.disabled_at,
			disabled_reason = excluded.disabled_reason, updated_at = excluded.updated_at`,
		name, at.UnixMicro(), nullStr(reason), now); err != nil {
		return fmt.Errorf("disable destination %s: %w", name, mapErr(err))
	}
	if err := s.commitDurable(tx); err != nil {
		return fmt.Errorf("set destination %s disabled: %w", name, err)
	}
	return nil
}

// DestinationSwitch disables or enables a destination and reports
// whether its state changed.
func (s *Store) DestinationSwitch(ctx context.Context, name string, at time.Time, reason string) (bool, error) {
	if err := s.writable(); err != nil {
		return false, err
	}
	now := time.Now().UnixMicro()
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return false, fmt.Errorf("switch destination %s: %w", name, mapErr(err))
	}
	defer tx.Rollback()
	var res sql.Result
	if at.IsZero() {
		if res, err = tx.ExecContext(ctx, `UPDATE destinations SET disabled_at = NULL, disabled_reason = NULL, updated_at = ?
			WHERE name = ? AND disabled_at IS NOT NULL`, now, name); err == nil {
			_, err = tx.ExecContext(ctx, `DELETE FROM destinations WHERE name = ? AND spec IS NULL AND failing_since IS NULL`, name)
		}
	} else {
		res, err = tx.ExecContext(ctx, `INSERT INTO destinations (name, spec, disabled_at, disabled_reason, created_at, updated_at)
			VALUES (?1, NULL, ?2, ?3, ?4, ?4)
			ON CONFLICT (name) DO UPDATE SET disabled_at = excluded.disabled_at,
				disabled_reason = excluded.disabled_reason, updated_at = excluded.updated_at
			WHERE destinations.disabled_at IS NULL`,
			name, at.UnixMicro(), nullStr(reason), now)
	}
	if err != nil {
		return false, fmt.Errorf("switch destination %s: %w", name, mapErr(err))
	}
	n, err := res.RowsAffected()
	if err != nil {
		return false, fmt.Errorf("switch destination %s: %w", name, mapErr(err))
	}
	if n == 0 {
		return false, nil // nothing changed: no commit to make durable
	}
	if err := s.commitDurable(tx); err != nil {
		return false, fmt.Errorf("switch destination %s: %w", name, err)
	}
	return true, nil
}

// DeliveryCountByDestination counts the deliveries in status per
// destination (the status index holds them together).
func (s *Store) DeliveryCountByDestination(ctx context.Context, status string) (map[string]int64, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT destination, count(*) FROM deliveries WHERE status = ? GROUP BY destination`, status)
	if err != nil {
		return nil, fmt.Errorf("count deliveries: %w", mapErr(err))
	}
	return scanCounts(rows)
}

// scanCounts reads rows of (key, count) into a map.
func scanCounts(rows *sql.Rows) (map[string]int64, error) {
	defer rows.Close()
	out := make(map[string]int64)
	for rows.Next() {
		var (
			k string
			n int64
		)
		if err := rows.Scan(&k, &n); err != nil {
			return nil, fmt.Errorf("count deliveries: %w", mapErr(err))
		}
		out[k] = n
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("count deliveries: %w", mapErr(err))
	}
	return out, nil
}

// SubscriptionPut creates or replaces an API-managed subscription.
func (s *Store) SubscriptionPut(ctx context.Context, sub *store.SubscriptionRecord) error {
	if err := s.writable(); err != nil {
		return err
	}
	now := time.Now()
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("put subscription %s: %w", sub.ID, mapErr(err))
	}
	defer tx.Rollback()
	if _, err := tx.ExecContext(ctx, `INSERT INTO subscriptions (id, spec, created_at, updated_at) VALUES (?, ?, ?, ?)
		ON CONFLICT (id) DO UPDATE SET spec = excluded.spec, updated_at = excluded.updated_at`,
		sub.ID, string(sub.Spec), orNow(sub.CreatedAt, now), orNow(sub.UpdatedAt, now)); err != nil {
		return fmt.Errorf("put subscription %s: %w", sub.ID, mapErr(err))
	}
	if err := s.commitDurable(tx); err != nil {
		return fmt.Errorf("put subscription %s: %w", sub.ID, err)
	}
	return nil
}

// SubscriptionDelete deletes a stored subscription.
func (s *Store) SubscriptionDelete(ctx context.Context, id string) error {
	return s.deleteOne(ctx, `DELETE FROM subscriptions WHERE id = ?`, id, "subscription")
}

// SubscriptionList returns every stored subscription, oldest first.
func (s *Store) SubscriptionList(ctx context.Context) ([]*store.SubscriptionRecord, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT id, spec, created_at, updated_at FROM subscriptions ORDER BY created_at, id`)
	if err != nil {
		return nil, fmt.Errorf("list subscriptions: %w", mapErr(err))
	}
	defer rows.Close()
	var out []*store.SubscriptionRecord
	for rows.Next() {
		var (
			sub              store.SubscriptionRecord
			spec             string
			created, updated int64
		)
		if err := rows.Scan(&sub.ID, &spec, &created, &updated); err != nil {
			return nil, fmt.Errorf("list subscriptions: %w", mapErr(err))
		}
		sub.Spec = []byte(spec)
		sub.CreatedAt, sub.UpdatedAt = time.UnixMicro(created).UTC(), time.UnixMicro(updated).UTC()
		out = append(out, &sub)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list subscriptions: %w", mapErr(err))
	}
	return out, nil
}
