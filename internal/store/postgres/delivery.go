package postgres

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

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

// deliveryReadCols are the columns a read returns, in scanDelivery's
// order: deliveryCols, then the lease's holder and epoch (written only by
// claims, never by an upsert).
const deliveryReadCols = deliveryCols + `, owner, lease_epoch`

// attemptCols are the columns of an attempt log entry, joined to a
// delivery row (NULL when it has none).
const attemptCols = `a.number, a.started_at, a.duration_us, a.status_code, a.error, a.response_excerpt`

// upsertDelivery writes one delivery. The identity (event_id, event_seq,
// destination: fixed by the id), created_at and the generation (only a
// replay moves it) are left alone on update. $22 is the fence: -1
// (store.FenceNone) updates unconditionally, -2 (store.FenceInsertOnly)
// never updates, an attempt count updates a row with that count and the
// write's generation ($21), and, when $23 (the write's LeaseEpoch) is not
// 0, with that lease epoch: the outcome of a replica whose claim was
// taken over (its lease lapsed and another replica claimed the delivery)
// is refused. A write ends the lease: owner becomes NULL. A fresh row is
// always inserted.
const upsertDelivery = `INSERT INTO deliveries (` + deliveryCols + `)
	VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20, $21)
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
		updated_at = excluded.updated_at,
		owner = NULL
	WHERE $22::int = -1 OR (deliveries.attempts = $22::int AND deliveries.generation = $21
		AND ($23::bigint = 0 OR deliveries.lease_epoch = $23::bigint))`

// upsertDeliveryWithAttempt is upsertDelivery that also logs an attempt
// ($24…$29), only when the delivery was written. It returns 1 when the
// write applied, 0 when it was skipped.
const upsertDeliveryWithAttempt = `WITH up AS (` + upsertDelivery + ` RETURNING id),
	att AS (INSERT INTO delivery_attempts
		(delivery_id, number, started_at, duration_us, status_code, error, response_excerpt)
		SELECT id, $24, $25, $26, $27, $28, $29 FROM up
		ON CONFLICT (delivery_id, number) DO UPDATE SET
			started_at = excluded.started_at,
			duration_us = excluded.duration_us,
			status_code = excluded.status_code,
			error = excluded.error,
			response_excerpt = excluded.response_excerpt)
	SELECT count(*) FROM up`

// DeliveryWriteMany applies writes and advances the watermark in one
// transaction (one pipelined round trip), durable when it returns.
func (s *Store) DeliveryWriteMany(ctx context.Context, writes []*store.DeliveryWrite, watermark int64) ([]string, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	now := time.Now()
	applied := make([]bool, len(writes))
	ids := make([]string, len(writes))
	// Rows are written in id order (writes to one row keep theirs), the
	// order in which a replica's heartbeat locks the claims it renews: two
	// transactions taking the same rows never wait for each other in a
	// cycle.
	order := make([]int, len(writes))
	for i, w := range writes {
		order[i] = i
		if ids[i] = w.Delivery.ID; ids[i] == "" {
			ids[i] = store.DeliveryID(w.Delivery.EventID, w.Delivery.Destination)
		}
	}
	sort.SliceStable(order, func(a, b int) bool { return ids[order[a]] < ids[order[b]] })
	b := &pgx.Batch{}
	for _, i := range order {
		w := writes[i]
		d := w.Delivery
		id := d.ID
		if id == "" {
			id = store.DeliveryID(d.EventID, d.Destination)
		}
		ids[i] = id
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
		a := []any{id, d.EventID, d.EventSeq, nullText(d.EventKey), d.Destination,
			nullStr(d.SubscriptionID), d.Status, d.Attempts, d.RoundAttempts,
			micro(d.FirstAttemptAt), micro(next), micro(d.LeaseUntil), micro(d.LastAttemptAt),
			nullInt(int64(d.LastStatusCode)), nullText(d.LastError), nullInt(d.LastDuration.Microseconds()),
			nullBytes(d.LastExcerpt), nullText(d.Reason), created.UnixMicro(), updated.UnixMicro(), d.Generation, w.Fence, d.LeaseEpoch}
		if at := w.Attempt; at != nil {
			num := at.Number
			if num == 0 {
				num = d.Attempts
			}
			a = append(a, num, at.StartedAt.UnixMicro(), at.Duration.Microseconds(),
				nullInt(int64(at.StatusCode)), nullText(at.Error), nullBytes(at.ResponseExcerpt))
			b.Queue(upsertDeliveryWithAttempt, a...).QueryRow(func(row pgx.Row) error {
				var n int64
				err := row.Scan(&n)
				applied[i] = n > 0
				return err
			})
			continue
		}
		b.Queue(upsertDelivery, a...).Exec(func(ct pgconn.CommandTag) error {
			applied[i] = ct.RowsAffected() > 0
			return nil
		})
	}
	if watermark > 0 {
		b.Queue(`INSERT INTO settings (name, value) VALUES ('`+watermarkSetting+`', $1)
			ON CONFLICT (name) DO UPDATE SET value = excluded.value
			WHERE settings.value::bigint < excluded.value::bigint`, strconv.FormatInt(watermark, 10))
	}
	counted := false
	for _, w := range writes {
		counted = counted || w.Outcome
	}
	if !counted {
		if err := s.sendBatch(ctx, b); err != nil {
			return nil, fmt.Errorf("write deliveries: %w", mapErr(err))
		}
	} else if err := s.writeCounted(ctx, b, writes, applied, now); err != nil {
		return nil, fmt.Errorf("write deliveries: %w", mapErr(err))
	}
	var skipped []string
	for i, ok := range applied {
		if !ok {
			skipped = append(skipped, ids[i])
		}
	}
	return skipped, nil
}

func scanDelivery(scan func(...any) error, extra ...any) (*store.Delivery, error) {
	var (
		d                                     store.Delivery
		key, sub, lastErr, reason, owner      *string
		first, next, lease, lastAt, code, dur *int64
		created, updated                      int64
	)
	dst := append([]any{&d.ID, &d.EventID, &d.EventSeq, &key, &d.Destination, &sub, &d.Status,
		&d.Attempts, &d.RoundAttempts, &first, &next, &lease,
		&lastAt, &code, &lastErr, &dur, &d.LastExcerpt,
		&reason, &created, &updated, &d.Generation, &owner, &d.LeaseEpoch}, extra...)
	if err := scan(dst...); err != nil {
		return nil, err
	}
	d.EventKey, d.SubscriptionID, d.LastError, d.Reason, d.Owner = str(key), str(sub), str(lastErr), str(reason), str(owner)
	d.FirstAttemptAt, d.NextAttemptAt, d.LeaseUntil, d.LastAttemptAt = fromMicro(first), fromMicro(next), fromMicro(lease), fromMicro(lastAt)
	if code != nil {
		d.LastStatusCode = int(*code)
	}
	if dur != nil {
		d.LastDuration = time.Duration(*dur) * time.Microsecond
	}
	d.CreatedAt, d.UpdatedAt = time.UnixMicro(created).UTC(), time.UnixMicro(updated).UTC()
	return &d, nil
}

// queryDeliveries runs q, which selects deliveryCols.
func (s *Store) queryDeliveries(ctx context.Context, q string, a ...any) ([]*store.Delivery, error) {
	var out []*store.Delivery
	err := s.with(ctx, func(c *pgx.Conn) error {
		rows, err := c.Query(ctx, q, a...)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			d, err := scanDelivery(rows.Scan)
			if err != nil {
				return err
			}
			out = append(out, d)
		}
		return rows.Err()
	})
	return out, mapErr(err)
}

// queryWithAttempts runs q, which selects deliveryCols of d and
// attemptCols of a LEFT JOIN of their attempt logs, ordered by delivery
// then attempt number: one statement, so one snapshot of both.
func (s *Store) queryWithAttempts(ctx context.Context, q string, a ...any) ([]*store.Delivery, error) {
	var out []*store.Delivery
	err := s.with(ctx, func(c *pgx.Conn) error {
		rows, err := c.Query(ctx, q, a...)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var (
				num, code    *int
				started, dur *int64
				errText      *string
				excerpt      []byte
			)
			d, err := scanDelivery(rows.Scan, &num, &started, &dur, &code, &errText, &excerpt)
			if err != nil {
				return err
			}
			if n := len(out); n > 0 && out[n-1].ID == d.ID {
				d = out[n-1]
			} else {
				out = append(out, d)
			}
			if num != nil {
				at := &store.Attempt{Number: *num, StartedAt: fromMicro(started), Error: str(errText), ResponseExcerpt: excerpt}
				if dur != nil {
					at.Duration = time.Duration(*dur) * time.Microsecond
				}
				if code != nil {
					at.StatusCode = *code
				}
				d.AttemptLog = append(d.AttemptLog, at)
			}
		}
		return rows.Err()
	})
	if err != nil {
		return nil, mapErr(err)
	}
	for _, d := range out {
		completeLog(d)
	}
	return out, nil
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

// idRange is the range [lo, hi) of the primary key that holds every
// delivery id of event eventID: "dlv_<ULID>_" and everything after it
// before "dlv_<ULID>`" ('`' comes right after '_').
func idRange(eventID string) (lo, hi string) {
	p := store.DeliveryID(eventID, "")
	return p, strings.TrimSuffix(p, "_") + "`"
}

// DeliveryGet returns one delivery with its attempt log.
func (s *Store) DeliveryGet(ctx context.Context, id string) (*store.Delivery, error) {
	ds, err := s.queryWithAttempts(ctx, `SELECT `+prefixCols("d.", deliveryReadCols)+`, `+attemptCols+`
		FROM deliveries d LEFT JOIN delivery_attempts a ON a.delivery_id = d.id
		WHERE d.id = $1 ORDER BY a.number`, text(id))
	if err != nil {
		return nil, fmt.Errorf("get delivery: %w", err)
	}
	if len(ds) == 0 {
		return nil, fmt.Errorf("get delivery %s: %w", id, store.ErrNotFound)
	}
	return ds[0], nil
}

// DeliveryListByEvent returns an event's deliveries by destination name,
// with their attempt logs.
func (s *Store) DeliveryListByEvent(ctx context.Context, eventID string) ([]*store.Delivery, error) {
	lo, hi := idRange(text(eventID))
	ds, err := s.queryWithAttempts(ctx, `SELECT `+prefixCols("d.", deliveryReadCols)+`, `+attemptCols+`
		FROM deliveries d LEFT JOIN delivery_attempts a ON a.delivery_id = d.id
		WHERE d.id >= $1 AND d.id < $2 AND d.event_id = $3
		ORDER BY d.destination, d.id, a.number`, lo, hi, text(eventID))
	if err != nil {
		return nil, fmt.Errorf("list deliveries of %s: %w", eventID, err)
	}
	return ds, nil
}

// DeliveryList lists deliveries newest event first.
func (s *Store) DeliveryList(ctx context.Context, p *store.DeliveryListParams) ([]*store.Delivery, string, error) {
	limit := p.Limit
	if limit <= 0 {
		limit = 50
	}
	limit = min(limit, store.MaxListLimit)
	var (
		where []string
		a     args
	)
	if p.After != "" {
		seq, dest, err := store.DecodeDeliveryCursor(p.After)
		if err != nil {
			return nil, "", err
		}
		q := a.add(seq)
		where = append(where, "(d.event_seq < "+q+" OR (d.event_seq = "+q+" AND d.destination > "+a.add(text(dest))+"))")
	}
	if p.Status != "" {
		where = append(where, "d.status = "+a.add(text(p.Status)))
	}
	if p.Destination != "" {
		where = append(where, "d.destination = "+a.add(text(p.Destination)))
	}
	if p.EventID != "" {
		lo, hi := idRange(text(p.EventID))
		where = append(where, "d.id >= "+a.add(lo)+" AND d.id < "+a.add(hi)+" AND d.event_id = "+a.add(text(p.EventID)))
	}
	join := false
	if p.Source != "" {
		join = true
		where = append(where, "e.source = "+a.add(text(p.Source)))
	}
	if p.EventType != "" {
		join = true
		var err error
		if where, err = typeConds("e.type", p.EventType, where, &a); err != nil {
			return nil, "", err
		}
	}
	if !p.Since.IsZero() {
		join = true
		where = append(where, "e.received_at >= "+a.add(p.Since.UnixMicro()))
	}
	if !p.Until.IsZero() {
		join = true
		where = append(where, "e.received_at < "+a.add(p.Until.UnixMicro()))
	}
	q := "SELECT " + prefixCols("d.", deliveryReadCols) + " FROM deliveries d"
	if join {
		q += " JOIN events e ON e.seq = d.event_seq AND e.id = d.event_id"
	}
	if len(where) > 0 {
		q += " WHERE " + strings.Join(where, " AND ")
	}
	q += " ORDER BY d.event_seq DESC, d.destination ASC LIMIT " + a.add(limit+1)
	out, err := s.queryDeliveries(ctx, q, a...)
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
	const chunk = 10000
	out := make(map[string]bool)
	for len(ids) > 0 {
		n := min(len(ids), chunk)
		part := make([]string, n)
		for i, id := range ids[:n] {
			part[i] = text(id)
		}
		ids = ids[n:]
		err := s.with(ctx, func(c *pgx.Conn) error {
			rows, err := c.Query(ctx, `SELECT id FROM deliveries WHERE id = ANY($1::text[])`, part)
			if err != nil {
				return err
			}
			var id string
			_, err = pgx.ForEachRow(rows, []any{&id}, func() error {
				out[id] = true
				return nil
			})
			return err
		})
		if err != nil {
			return nil, fmt.Errorf("existing deliveries: %w", mapErr(err))
		}
	}
	return out, nil
}

// claimDue leases due deliveries of a destination. Each status is one
// range of its partial index, already in due order and cut at the limit,
// so that a claim reads at most 3×limit index entries however large the
// backlog. FOR UPDATE SKIP LOCKED locks the rows as they are read and
// passes over those another claim holds, so that concurrent claims never
// take the same row; a row that another transaction changed meanwhile is
// checked again in its new version. (Rows a branch locked beyond what is
// picked are only held until the statement ends.)
var claimDue = claimSQL("$2", "$4", "")

// claimSQL is the claim statement: $1 the destination, $2 now (due
// times), $3 the limit; a delivering row is taken over once its lease
// ended before now (an SQL expression), and a claim sets lease_until to
// until (an SQL expression) and the columns of set (", col = …" or "").
func claimSQL(now, until, set string) string {
	return `WITH p AS (
		SELECT id, next_attempt_at AS due FROM deliveries
		WHERE destination = $1 AND status = 'pending' AND next_attempt_at <= $2
		ORDER BY next_attempt_at LIMIT $3 FOR UPDATE SKIP LOCKED
	), r AS (
		SELECT id, next_attempt_at AS due FROM deliveries
		WHERE destination = $1 AND status = 'retrying' AND next_attempt_at <= $2
		ORDER BY next_attempt_at LIMIT $3 FOR UPDATE SKIP LOCKED
	), l AS (
		SELECT id, next_attempt_at AS due FROM deliveries
		WHERE destination = $1 AND status = 'delivering' AND lease_until < ` + now + `
		ORDER BY next_attempt_at NULLS FIRST LIMIT $3 FOR UPDATE SKIP LOCKED
	), pick AS (
		SELECT id FROM (SELECT * FROM p UNION ALL SELECT * FROM r UNION ALL SELECT * FROM l) due
		ORDER BY due NULLS FIRST LIMIT $3
	)
	UPDATE deliveries d SET status = 'delivering', lease_until = ` + until + `, updated_at = $2` + set + `
	FROM pick WHERE d.id = pick.id
	RETURNING ` + prefixCols("d.", deliveryReadCols)
}

// DeliveryClaimDue claims due deliveries of destination.
func (s *Store) DeliveryClaimDue(ctx context.Context, destination string, now time.Time, lease time.Duration, limit int) ([]*store.Delivery, error) {
	if limit <= 0 {
		return nil, nil
	}
	ds, err := s.queryDeliveries(ctx, claimDue, destination, now.UnixMicro(), limit, now.Add(lease).UnixMicro())
	if err != nil {
		return nil, fmt.Errorf("claim deliveries: %w", err)
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

// DeliveryLoadOrdered loads an ordered destination's unfinished work in
// event order.
func (s *Store) DeliveryLoadOrdered(ctx context.Context, destination string, afterSeq int64, limit int) ([]*store.Delivery, error) {
	if limit <= 0 {
		return nil, nil
	}
	ds, err := s.queryDeliveries(ctx, `SELECT `+deliveryReadCols+` FROM deliveries
		WHERE destination = $1 AND event_seq > $2 AND status IN ('pending', 'retrying', 'delivering')
		ORDER BY event_seq LIMIT $3`, destination, afterSeq, limit)
	if err != nil {
		return nil, fmt.Errorf("load ordered deliveries of %s: %w", destination, err)
	}
	return ds, nil
}

// DeliveryNextDue returns the earliest due time of destination's waiting
// deliveries.
func (s *Store) DeliveryNextDue(ctx context.Context, destination string) (time.Time, bool, error) {
	// One min() per status: each is one seek in a partial index.
	var at *int64
	err := s.with(ctx, func(c *pgx.Conn) error {
		return c.QueryRow(ctx, `SELECT min(m) FROM (
			SELECT min(next_attempt_at) AS m FROM deliveries WHERE destination = $1 AND status = 'pending'
			UNION ALL
			SELECT min(next_attempt_at) FROM deliveries WHERE destination = $1 AND status = 'retrying') x`, destination).Scan(&at)
	})
	if err != nil {
		return time.Time{}, false, fmt.Errorf("next due delivery of %s: %w", destination, mapErr(err))
	}
	if at == nil {
		return time.Time{}, false, nil
	}
	return fromMicro(at), true, nil
}

// DeliveryReplayMany queues ds again, in one transaction.
func (s *Store) DeliveryReplayMany(ctx context.Context, ds []*store.Delivery, now time.Time) (int, error) {
	const q = `INSERT INTO deliveries
		(id, event_id, event_seq, event_key, destination, subscription_id, status, attempts, round_attempts,
		 next_attempt_at, created_at, updated_at)
		VALUES ($1, $2, $3, $4, $5, $6, 'pending', 0, 0, $7, $7, $7)
		ON CONFLICT (id) DO UPDATE SET
			status = 'pending',
			round_attempts = 0,
			first_attempt_at = NULL,
			next_attempt_at = excluded.next_attempt_at,
			lease_until = NULL,
			reason = NULL,
			updated_at = excluded.updated_at,
			generation = deliveries.generation + 1
		WHERE deliveries.status <> 'delivering'`
	at := now.UnixMicro()
	queued := 0
	b := &pgx.Batch{}
	for _, d := range ds {
		id := d.ID
		if id == "" {
			id = store.DeliveryID(d.EventID, d.Destination)
		}
		b.Queue(q, id, d.EventID, d.EventSeq, nullText(d.EventKey), d.Destination, nullStr(d.SubscriptionID), at).
			Exec(func(ct pgconn.CommandTag) error {
				queued += int(ct.RowsAffected())
				return nil
			})
	}
	if err := s.sendBatch(ctx, b); err != nil {
		return 0, fmt.Errorf("replay deliveries: %w", mapErr(err))
	}
	return queued, nil
}

// DeliveryReleaseAll returns every delivering delivery to retrying, due now.
func (s *Store) DeliveryReleaseAll(ctx context.Context, now time.Time) (int, error) {
	var n int64
	err := s.with(ctx, func(c *pgx.Conn) error {
		ct, err := c.Exec(ctx, `UPDATE deliveries SET status = 'retrying', next_attempt_at = $1,
			lease_until = NULL, updated_at = $1 WHERE status = 'delivering'`, now.UnixMicro())
		n = ct.RowsAffected()
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("release deliveries: %w", mapErr(err))
	}
	return int(n), nil
}

// DeliveryCountByStatus counts deliveries per status.
func (s *Store) DeliveryCountByStatus(ctx context.Context, destination string) (map[string]int64, error) {
	q, a := `SELECT status, count(*) FROM deliveries GROUP BY status`, []any(nil)
	if destination != "" {
		q, a = `SELECT status, count(*) FROM deliveries WHERE destination = $1 GROUP BY status`, []any{destination}
	}
	out := make(map[string]int64)
	err := s.with(ctx, func(c *pgx.Conn) error {
		rows, err := c.Query(ctx, q, a...)
		if err != nil {
			return err
		}
		var (
			status string
			n      int64
		)
		_, err = pgx.ForEachRow(rows, []any{&status, &n}, func() error {
			out[status] = n
			return nil
		})
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("count deliveries: %w", mapErr(err))
	}
	return out, nil
}

// WatermarkGet returns the fan-out watermark, 0 when never set.
func (s *Store) WatermarkGet(ctx context.Context) (int64, error) {
	var v string
	err := s.with(ctx, func(c *pgx.Conn) error {
		return c.QueryRow(ctx, `SELECT value FROM settings WHERE name = $1`, watermarkSetting).Scan(&v)
	})
	if errors.Is(err, pgx.ErrNoRows) {
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

// DestinationPut creates or replaces an API-managed destination, keeping
// the stored disabled state unless d carries one.
func (s *Store) DestinationPut(ctx context.Context, d *store.DestinationRecord) error {
	if len(d.Spec) == 0 {
		// A row without a spec is a configured destination's state.
		return hookd.Errorf(hookd.EInvalid, "destination %q: empty spec", d.Name)
	}
	now := time.Now()
	var reason any
	if !d.DisabledAt.IsZero() {
		reason = nullText(d.DisabledReason)
	}
	err := s.with(ctx, func(c *pgx.Conn) error {
		_, err := c.Exec(ctx, `INSERT INTO destinations (name, spec, disabled_at, disabled_reason, created_at, updated_at)
			VALUES ($1, $2, $3, $4, $5, $6)
			ON CONFLICT (name) DO UPDATE SET
				spec = excluded.spec,
				disabled_at = CASE WHEN excluded.disabled_at IS NULL THEN destinations.disabled_at ELSE excluded.disabled_at END,
				disabled_reason = CASE WHEN excluded.disabled_at IS NULL THEN destinations.disabled_reason ELSE excluded.disabled_reason END,
				updated_at = excluded.updated_at`,
			d.Name, d.Spec, micro(d.DisabledAt), reason, orNow(d.CreatedAt, now), orNow(d.UpdatedAt, now))
		return err
	})
	if err != nil {
		return fmt.Errorf("put destination %s: %w", d.Name, mapErr(err))
	}
	return nil
}

// DestinationDelete deletes a stored destination (or its state).
func (s *Store) DestinationDelete(ctx context.Context, name string) error {
	return s.deleteOne(ctx, `DELETE FROM destinations WHERE name = $1`, name, "destination")
}

// deleteOne runs a DELETE of one row by key; ErrNotFound when it deleted
// nothing.
func (s *Store) deleteOne(ctx context.Context, q, key, what string) error {
	var n int64
	err := s.with(ctx, func(c *pgx.Conn) error {
		ct, err := c.Exec(ctx, q, key)
		n = ct.RowsAffected()
		return err
	})
	if err != nil {
		return fmt.Errorf("delete %s %s: %w", what, key, mapErr(err))
	}
	if n == 0 {
		return fmt.Errorf("delete %s %s: %w", what, key, store.ErrNotFound)
	}
	return nil
}

// DestinationList returns every stored destination by name.
func (s *Store) DestinationList(ctx context.Context) ([]*store.DestinationRecord, error) {
	var out []*store.DestinationRecord
	err := s.with(ctx, func(c *pgx.Conn) error {
		rows, err := c.Query(ctx, `SELECT name, spec, disabled_at, disabled_reason, failing_since, created_at, updated_at
			FROM destinations ORDER BY name`)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var (
				d                store.DestinationRecord
				spec             []byte
				reason           *string
				disabled, since  *int64
				created, updated int64
			)
			if err := rows.Scan(&d.Name, &spec, &disabled, &reason, &since, &created, &updated); err != nil {
				return err
			}
			if len(spec) > 0 {
				d.Spec = spec
			}
			d.DisabledAt, d.DisabledReason = fromMicro(disabled), str(reason)
			d.FailingSince = fromMicro(since)
			d.CreatedAt, d.UpdatedAt = time.UnixMicro(created).UTC(), time.UnixMicro(updated).UTC()
			out = append(out, &d)
		}
		return rows.Err()
	})
	if err != nil {
		return nil, fmt.Errorf("list destinations: %w", mapErr(err))
	}
	return out, nil
}

// DestinationSetFailingSince records or clears when a destination's run
// of failures began.
func (s *Store) DestinationSetFailingSince(ctx context.Context, name string, since time.Time) error {
	b := &pgx.Batch{}
	if since.IsZero() {
		b.Queue(`UPDATE destinations SET failing_since = NULL WHERE name = $1`, name)
		b.Queue(`DELETE FROM destinations WHERE name = $1 AND spec IS NULL AND disabled_at IS NULL`, name)
	} else {
		b.Queue(`INSERT INTO destinations (name, spec, failing_since, created_at, updated_at)
			VALUES ($1, NULL, $2, $3, $3)
			ON CONFLICT (name) DO UPDATE SET failing_since = excluded.failing_since`,
			name, since.UnixMicro(), time.Now().UnixMicro())
	}
	if err := s.sendBatch(ctx, b); err != nil {
		return fmt.Errorf("set destination %s failing: %w", name, mapErr(err))
	}
	return nil
}

// DestinationSetDisabled records or clears a destination's disabled state.
func (s *Store) DestinationSetDisabled(ctx context.Context, name string, at time.Time, reason string) error {
	now := time.Now().UnixMicro()
	b := &pgx.Batch{}
	if at.IsZero() {
		b.Queue(`DELETE FROM destinations WHERE name = $1 AND spec IS NULL`, name)
		b.Queue(`UPDATE destinations SET disabled_at = NULL, disabled_reason = NULL, updated_at = $1
			WHERE name = $2 AND disabled_at IS NOT NULL`, now, name)
	} else {
		b.Queue(`INSERT INTO destinations (name, spec, disabled_at, disabled_reason, created_at, updated_at)
			VALUES ($1, NULL, $2, $3, $4, $4)
			ON CONFLICT (name) DO UPDATE SET disabled_at = excluded.disabled_at,
				disabled_reason = excluded.disabled_reason, updated_at = excluded.updated_at`,
			name, at.UnixMicro(), nullText(reason), now)
	}
	if err := s.sendBatch(ctx, b); err != nil {
		return fmt.Errorf("set destination %s disabled: %w", name, mapErr(err))
	}
	return nil
}

// DestinationSwitch disables or enables a destination and reports
// whether its state changed. The conditional upsert takes the row's lock:
// of two replicas disabling at once, the second finds it disabled.
func (s *Store) DestinationSwitch(ctx context.Context, name string, at time.Time, reason string) (bool, error) {
	now := time.Now().UnixMicro()
	var changed bool
	err := s.inTx(ctx, func(tx pgx.Tx) error {
		if at.IsZero() {
			tag, err := tx.Exec(ctx, `UPDATE destinations SET disabled_at = NULL, disabled_reason = NULL, updated_at = $1
				WHERE name = $2 AND disabled_at IS NOT NULL`, now, name)
			if err != nil {
				return err
			}
			changed = tag.RowsAffected() > 0
			_, err = tx.Exec(ctx, `DELETE FROM destinations WHERE name = $1 AND spec IS NULL AND failing_since IS NULL`, name)
			return err
		}
		tag, err := tx.Exec(ctx, `INSERT INTO destinations (name, spec, disabled_at, disabled_reason, created_at, updated_at)
			VALUES ($1, NULL, $2, $3, $4, $4)
			ON CONFLICT (name) DO UPDATE SET disabled_at = excluded.disabled_at,
				disabled_reason = excluded.disabled_reason, updated_at = excluded.updated_at
			WHERE destinations.disabled_at IS NULL`,
			name, at.UnixMicro(), nullText(reason), now)
		changed = err == nil && tag.RowsAffected() > 0
		return err
	})
	if err != nil {
		return false, fmt.Errorf("switch destination %s: %w", name, mapErr(err))
	}
	return changed, nil
}

// DeliveryCountByDestination counts the deliveries in status per
// destination.
func (s *Store) DeliveryCountByDestination(ctx context.Context, status string) (map[string]int64, error) {
	out := make(map[string]int64)
	err := s.with(ctx, func(c *pgx.Conn) error {
		rows, err := c.Query(ctx, `SELECT destination, count(*) FROM deliveries WHERE status = $1 GROUP BY destination`, status)
		if err != nil {
			return err
		}
		var (
			dest string
			n    int64
		)
		_, err = pgx.ForEachRow(rows, []any{&dest, &n}, func() error {
			out[dest] = n
			return nil
		})
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("count deliveries: %w", mapErr(err))
	}
	return out, nil
}

// SubscriptionPut creates or replaces an API-managed subscription.
func (s *Store) SubscriptionPut(ctx context.Context, sub *store.SubscriptionRecord) error {
	now := time.Now()
	spec := sub.Spec
	if spec == nil {
		spec = []byte{}
	}
	err := s.with(ctx, func(c *pgx.Conn) error {
		_, err := c.Exec(ctx, `INSERT INTO subscriptions (id, spec, created_at, updated_at) VALUES ($1, $2, $3, $4)
			ON CONFLICT (id) DO UPDATE SET spec = excluded.spec, updated_at = excluded.updated_at`,
			sub.ID, spec, orNow(sub.CreatedAt, now), orNow(sub.UpdatedAt, now))
		return err
	})
	if err != nil {
		return fmt.Errorf("put subscription %s: %w", sub.ID, mapErr(err))
	}
	return nil
}

// SubscriptionDelete deletes a stored subscription.
func (s *Store) SubscriptionDelete(ctx context.Context, id string) error {
	return s.deleteOne(ctx, `DELETE FROM subscriptions WHERE id = $1`, id, "subscription")
}

// SubscriptionList returns every stored subscription, oldest first.
func (s *Store) SubscriptionList(ctx context.Context) ([]*store.SubscriptionRecord, error) {
	var out []*store.SubscriptionRecord
	err := s.with(ctx, func(c *pgx.Conn) error {
		rows, err := c.Query(ctx, `SELECT id, spec, created_at, updated_at FROM subscriptions ORDER BY created_at, id`)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var (
				sub              store.SubscriptionRecord
				created, updated int64
			)
			if err := rows.Scan(&sub.ID, &sub.Spec, &created, &updated); err != nil {
				return err
			}
			sub.CreatedAt, sub.UpdatedAt = time.UnixMicro(created).UTC(), time.UnixMicro(updated).UTC()
			out = append(out, &sub)
		}
		return rows.Err()
	})
	if err != nil {
		return nil, fmt.Errorf("list subscriptions: %w", mapErr(err))
	}
	return out, nil
}
