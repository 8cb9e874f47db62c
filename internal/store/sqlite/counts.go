package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"sort"
	"time"

	"hookd/internal/store"
)

// addCounts adds the counted outcomes of a DeliveryWriteMany to the
// attempt counts, in its transaction.
func addCounts(ctx context.Context, tx *sql.Tx, totals map[string]store.AttemptCounts, minutes map[string]map[int64]store.MinuteCounts) error {
	if len(totals) == 0 {
		return nil
	}
	dests := make([]string, 0, len(totals))
	for d := range totals {
		dests = append(dests, d)
	}
	sort.Strings(dests)
	for _, d := range dests {
		c := totals[d]
		if _, err := tx.ExecContext(ctx, `INSERT INTO attempt_totals (destination, attempts, succeeded, retried, failed)
			VALUES (?, ?, ?, ?, ?)
			ON CONFLICT (destination) DO UPDATE SET
				attempts = attempts + excluded.attempts, succeeded = succeeded + excluded.succeeded,
				retried = retried + excluded.retried, failed = failed + excluded.failed`,
			d, c.Attempts, c.Succeeded, c.Retried, c.Failed); err != nil {
			return fmt.Errorf("count attempts of %s: %w", d, mapErr(err))
		}
		for m, c := range minutes[d] {
			args := []any{d, m, c.Attempts, c.Succeeded, c.Retried, c.Failed}
			for _, n := range c.Latency {
				args = append(args, n)
			}
			if _, err := tx.ExecContext(ctx, addMinuteSQL, args...); err != nil {
				return fmt.Errorf("count attempts of %s: %w", d, mapErr(err))
			}
		}
	}
	return nil
}

// Latency bucket columns of attempt_minutes (migration 0008).
var (
	latencyCols, latencyArgs, latencyAdd, latencySums string
)

func init() {
	for i := range store.LatencyBuckets {
		sep := ", "
		if i == 0 {
			sep = ""
		}
		latencyCols += fmt.Sprintf("%sl%d", sep, i)
		latencyArgs += ", ?"
		latencyAdd += fmt.Sprintf(", l%d = l%d + excluded.l%d", i, i, i)
		latencySums += fmt.Sprintf(", sum(l%d)", i)
	}
	addMinuteSQL = `INSERT INTO attempt_minutes (destination, minute, attempts, succeeded, retried, failed, ` + latencyCols + `)
		VALUES (?, ?, ?, ?, ?, ?` + latencyArgs + `)
		ON CONFLICT (destination, minute) DO UPDATE SET
			attempts = attempts + excluded.attempts, succeeded = succeeded + excluded.succeeded,
			retried = retried + excluded.retried, failed = failed + excluded.failed` + latencyAdd
}

var addMinuteSQL string

// AttemptCountTotals returns every destination's attempt counts.
func (s *Store) AttemptCountTotals(ctx context.Context) (map[string]store.AttemptCounts, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT destination, attempts, succeeded, retried, failed FROM attempt_totals`)
	if err != nil {
		return nil, fmt.Errorf("read attempt counts: %w", mapErr(err))
	}
	defer rows.Close()
	out := map[string]store.AttemptCounts{}
	for rows.Next() {
		var (
			d string
			c store.AttemptCounts
		)
		if err := rows.Scan(&d, &c.Attempts, &c.Succeeded, &c.Retried, &c.Failed); err != nil {
			return nil, fmt.Errorf("read attempt counts: %w", mapErr(err))
		}
		out[d] = c
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read attempt counts: %w", mapErr(err))
	}
	return out, nil
}

// AttemptCountList returns per-minute attempt counts.
func (s *Store) AttemptCountList(ctx context.Context, p *store.AttemptCountListParams) ([]*store.AttemptMinute, error) {
	q, args := countQuery("destination", "sum(attempts), sum(succeeded), sum(retried), sum(failed)"+latencySums, "attempt_minutes",
		p.Destination, p.Since, p.Until, p.Step, p.Limit)
	rows, err := s.r.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("list attempt counts: %w", mapErr(err))
	}
	defer rows.Close()
	out, err := store.ScanMinutes(rows, store.AttemptMinuteFields)
	if err != nil {
		return nil, fmt.Errorf("list attempt counts: %w", mapErr(err))
	}
	return out, nil
}

// AttemptCountPrune deletes the minutes that start before before.
func (s *Store) AttemptCountPrune(ctx context.Context, before time.Time) (int64, error) {
	return s.pruneMinutes(ctx, "attempt_minutes", "attempt counts", before)
}

// EventCountList returns per-minute event counts: those of every event
// acknowledged before it began (it waits for the indexer, which counts
// them).
func (s *Store) EventCountList(ctx context.Context, p *store.EventCountListParams) ([]*store.EventMinute, error) {
	if err := s.caughtUp(ctx); err != nil {
		return nil, err
	}
	q, args := countQuery("source", "sum(events)", "event_minutes", p.Source, p.Since, p.Until, p.Step, p.Limit)
	rows, err := s.r.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("list event counts: %w", mapErr(err))
	}
	defer rows.Close()
	out, err := store.ScanMinutes(rows, store.EventMinuteFields)
	if err != nil {
		return nil, fmt.Errorf("list event counts: %w", mapErr(err))
	}
	return out, nil
}

// EventCountPrune deletes the minutes that start before before.
func (s *Store) EventCountPrune(ctx context.Context, before time.Time) (int64, error) {
	return s.pruneMinutes(ctx, "event_minutes", "event counts", before)
}

// pruneMinutes deletes the minutes of table (what names them in errors)
// that start before before.
func (s *Store) pruneMinutes(ctx context.Context, table, what string, before time.Time) (int64, error) {
	if err := s.writable(); err != nil {
		return 0, err
	}
	r, err := s.w.ExecContext(ctx, `DELETE FROM `+table+` WHERE minute < ?`, minuteCeil(before))
	if err != nil {
		return 0, fmt.Errorf("prune %s: %w", what, mapErr(err))
	}
	n, err := r.RowsAffected()
	return n, mapErr(err)
}

// minuteCeil is the unix second of the first minute starting at or after t.
func minuteCeil(t time.Time) int64 {
	m := t.Truncate(time.Minute)
	if m.Before(t) {
		m = m.Add(time.Minute)
	}
	return m.Unix()
}

// countQuery lists a per-minute count table: key, the step's start and
// sums, grouped by step and key, oldest first, for one key value (all
// when name is ""), at most limit rows (store.MaxAttemptMinutes).
func countQuery(key, sums, table, name string, since, until time.Time, step time.Duration, limit int) (string, []any) {
	sec := store.StepMinutes(step) * 60
	q := `SELECT ` + key + `, (minute / ?) * ? AS m, ` + sums + ` FROM ` + table + ` WHERE 1=1`
	args := []any{sec, sec}
	if name != "" {
		q += ` AND ` + key + ` = ?`
		args = append(args, name)
	}
	if !since.IsZero() {
		q += ` AND minute >= ?`
		args = append(args, minuteCeil(since))
	}
	if !until.IsZero() {
		q += ` AND minute < ?`
		args = append(args, minuteCeil(until))
	}
	if limit <= 0 || limit > store.MaxAttemptMinutes {
		limit = store.MaxAttemptMinutes
	}
	q += ` GROUP BY m, ` + key + ` ORDER BY m, ` + key + ` LIMIT ?`
	return q, append(args, limit)
}
