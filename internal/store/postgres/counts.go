package postgres

import (
	"context"
	"fmt"
	"sort"
	"time"

	"github.com/jackc/pgx/v5"

	"hookd/internal/store"
)

// countSlots is how many rows each destination's counts are spread over
// (see migration 0003): a process adds to the rows of its Store's slot.
const countSlots = 16

// queueCounts queues the upserts that add the counted outcomes of a
// DeliveryWriteMany to the rows of slot, in destination then minute order
// (processes that drew one slot take its rows in one order).
func queueCounts(b *pgx.Batch, slot int16, totals map[string]store.AttemptCounts, minutes map[string]map[int64]store.MinuteCounts) {
	dests := make([]string, 0, len(totals))
	for d := range totals {
		dests = append(dests, d)
	}
	sort.Strings(dests)
	for _, d := range dests {
		c := totals[d]
		b.Queue(`INSERT INTO attempt_totals (destination, slot, attempts, succeeded, retried, failed)
			VALUES ($1, $2, $3, $4, $5, $6)
			ON CONFLICT (destination, slot) DO UPDATE SET
				attempts = attempt_totals.attempts + excluded.attempts,
				succeeded = attempt_totals.succeeded + excluded.succeeded,
				retried = attempt_totals.retried + excluded.retried,
				failed = attempt_totals.failed + excluded.failed`,
			d, slot, c.Attempts, c.Succeeded, c.Retried, c.Failed)
		ms := make([]int64, 0, len(minutes[d]))
		for m := range minutes[d] {
			ms = append(ms, m)
		}
		sort.Slice(ms, func(i, j int) bool { return ms[i] < ms[j] })
		for _, m := range ms {
			c := minutes[d][m]
			args := []any{d, m, slot, c.Attempts, c.Succeeded, c.Retried, c.Failed}
			for _, n := range c.Latency {
				args = append(args, n)
			}
			b.Queue(addMinuteSQL, args...)
		}
	}
}

// Latency bucket columns of attempt_minutes (migration 0005).
var latencySums, addMinuteSQL string

func init() {
	var cols, vals, add string
	for i := range store.LatencyBuckets {
		cols += fmt.Sprintf(", l%d", i)
		vals += fmt.Sprintf(", $%d", 8+i)
		add += fmt.Sprintf(",\n\t\t\tl%d = attempt_minutes.l%d + excluded.l%d", i, i, i)
		latencySums += fmt.Sprintf(", sum(l%d)::bigint", i)
	}
	addMinuteSQL = `INSERT INTO attempt_minutes (destination, minute, slot, attempts, succeeded, retried, failed` + cols + `)
		VALUES ($1, $2, $3, $4, $5, $6, $7` + vals + `)
		ON CONFLICT (destination, minute, slot) DO UPDATE SET
			attempts = attempt_minutes.attempts + excluded.attempts,
			succeeded = attempt_minutes.succeeded + excluded.succeeded,
			retried = attempt_minutes.retried + excluded.retried,
			failed = attempt_minutes.failed + excluded.failed` + add
}

// AttemptCountTotals returns every destination's attempt counts, summed
// over the slots.
func (s *Store) AttemptCountTotals(ctx context.Context) (map[string]store.AttemptCounts, error) {
	out := map[string]store.AttemptCounts{}
	err := s.with(ctx, func(c *pgx.Conn) error {
		rows, err := c.Query(ctx, `SELECT destination, sum(attempts)::bigint, sum(succeeded)::bigint, sum(retried)::bigint, sum(failed)::bigint
			FROM attempt_totals GROUP BY destination`)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var (
				d string
				n store.AttemptCounts
			)
			if err := rows.Scan(&d, &n.Attempts, &n.Succeeded, &n.Retried, &n.Failed); err != nil {
				return err
			}
			out[d] = n
		}
		return rows.Err()
	})
	if err != nil {
		return nil, fmt.Errorf("read attempt counts: %w", mapErr(err))
	}
	return out, nil
}

// AttemptCountList returns per-minute attempt counts, summed over the
// slots.
func (s *Store) AttemptCountList(ctx context.Context, p *store.AttemptCountListParams) ([]*store.AttemptMinute, error) {
	q, args := countQuery("destination", "sum(attempts)::bigint, sum(succeeded)::bigint, sum(retried)::bigint, sum(failed)::bigint"+latencySums,
		"attempt_minutes", p.Destination, p.Since, p.Until, p.Step, p.Limit)
	var out []*store.AttemptMinute
	err := s.with(ctx, func(c *pgx.Conn) error {
		rows, err := c.Query(ctx, q, args...)
		if err != nil {
			return err
		}
		defer rows.Close()
		out, err = store.ScanMinutes(rows, store.AttemptMinuteFields)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("list attempt counts: %w", mapErr(err))
	}
	return out, nil
}

// AttemptCountPrune deletes the minutes that start before before.
func (s *Store) AttemptCountPrune(ctx context.Context, before time.Time) (int64, error) {
	return s.pruneMinutes(ctx, "attempt_minutes", "attempt counts", before)
}

// queueEventCounts queues the upserts that add n[source][minute] events
// to the rows of slot, in source then minute order.
func queueEventCounts(b *pgx.Batch, slot int16, n map[string]map[int64]int64) {
	srcs := make([]string, 0, len(n))
	for src := range n {
		srcs = append(srcs, src)
	}
	sort.Strings(srcs)
	for _, src := range srcs {
		ms := make([]int64, 0, len(n[src]))
		for m := range n[src] {
			ms = append(ms, m)
		}
		sort.Slice(ms, func(i, j int) bool { return ms[i] < ms[j] })
		for _, m := range ms {
			b.Queue(`INSERT INTO event_minutes (source, minute, slot, events) VALUES ($1, $2, $3, $4)
				ON CONFLICT (source, minute, slot) DO UPDATE SET events = event_minutes.events + excluded.events`,
				src, m, slot, n[src][m])
		}
	}
}

// EventCountList returns per-minute event counts, summed over the slots.
func (s *Store) EventCountList(ctx context.Context, p *store.EventCountListParams) ([]*store.EventMinute, error) {
	q, args := countQuery("source", "sum(events)::bigint", "event_minutes", p.Source, p.Since, p.Until, p.Step, p.Limit)
	var out []*store.EventMinute
	err := s.with(ctx, func(c *pgx.Conn) error {
		rows, err := c.Query(ctx, q, args...)
		if err != nil {
			return err
		}
		defer rows.Close()
		out, err = store.ScanMinutes(rows, store.EventMinuteFields)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("list event counts: %w", mapErr(err))
	}
	return out, nil
}

// EventCountPrune deletes the minutes that start before before.
func (s *Store) EventCountPrune(ctx context.Context, before time.Time) (int64, error) {
	return s.pruneMinutes(ctx, "event_minutes", "event counts", before)
}

// minuteCeil is the unix second of the first minute starting at or after t.
func minuteCeil(t time.Time) int64 {
	m := t.Truncate(time.Minute)
	if m.Before(t) {
		m = m.Add(time.Minute)
	}
	return m.Unix()
}

// writeCounted runs the batch b of DeliveryWriteMany in a transaction that
// also adds the outcomes among writes that applied to the attempt counts.
// Which applied is known only once b has run: the transaction opens in
// b's round trip and commits in a second one, with the counts.
func (s *Store) writeCounted(ctx context.Context, b *pgx.Batch, writes []*store.DeliveryWrite, applied []bool, now time.Time) error {
	return s.with(ctx, func(c *pgx.Conn) error {
		open := &pgx.Batch{}
		open.Queue("BEGIN")
		open.QueuedQueries = append(open.QueuedQueries, b.QueuedQueries...)
		if err := c.SendBatch(ctx, open).Close(); err != nil {
			// The connection is released in a transaction, and so not
			// reused, if this fails too.
			_, _ = c.Exec(context.WithoutCancel(ctx), "ROLLBACK")
			return err
		}
		totals, minutes := store.CountOutcomes(writes, func(i int) bool { return applied[i] }, now)
		end := &pgx.Batch{}
		queueCounts(end, s.countSlot, totals, minutes)
		end.Queue("COMMIT")
		if err := c.SendBatch(ctx, end).Close(); err != nil {
			_, _ = c.Exec(context.WithoutCancel(ctx), "ROLLBACK")
			return err
		}
		return nil
	})
}

// countQuery lists a per-minute count table, summed over the slots: key,
// the step's start and sums, grouped by step and key, oldest first, for
// one key value (all when name is ""), at most limit rows
// (store.MaxAttemptMinutes).
func countQuery(key, sums, table, name string, since, until time.Time, step time.Duration, limit int) (string, []any) {
	q := `SELECT ` + key + `, (minute / $1) * $1 AS m, ` + sums + ` FROM ` + table + ` WHERE true`
	args := []any{store.StepMinutes(step) * 60}
	if name != "" {
		args = append(args, name)
		q += fmt.Sprintf(` AND `+key+` = $%d`, len(args))
	}
	if !since.IsZero() {
		args = append(args, minuteCeil(since))
		q += fmt.Sprintf(` AND minute >= $%d`, len(args))
	}
	if !until.IsZero() {
		args = append(args, minuteCeil(until))
		q += fmt.Sprintf(` AND minute < $%d`, len(args))
	}
	if limit <= 0 || limit > store.MaxAttemptMinutes {
		limit = store.MaxAttemptMinutes
	}
	args = append(args, limit)
	q += fmt.Sprintf(` GROUP BY m, `+key+` ORDER BY m, `+key+` LIMIT $%d`, len(args))
	return q, args
}

// pruneMinutes deletes the minutes of table (what names them in errors)
// that start before before.
func (s *Store) pruneMinutes(ctx context.Context, table, what string, before time.Time) (int64, error) {
	var n int64
	err := s.with(ctx, func(c *pgx.Conn) error {
		ct, err := c.Exec(ctx, `DELETE FROM `+table+` WHERE minute < $1`, minuteCeil(before))
		n = ct.RowsAffected()
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("prune %s: %w", what, mapErr(err))
	}
	return n, nil
}
