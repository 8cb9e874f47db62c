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
func addCounts(ctx context.Context, tx *sql.Tx, totals map[string]store.AttemptCounts, minutes map[string]map[int64]store.AttemptCounts) error {
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
			if _, err := tx.ExecContext(ctx, `INSERT INTO attempt_minutes (destination, minute, attempts, succeeded, retried, failed)
				VALUES (?, ?, ?, ?, ?, ?)
				ON CONFLICT (destination, minute) DO UPDATE SET
					attempts = attempts + excluded.attempts, succeeded = succeeded + excluded.succeeded,
					retried = retried + excluded.retried, failed = failed + excluded.failed`,
				d, m, c.Attempts, c.Succeeded, c.Retried, c.Failed); err != nil {
				return fmt.Errorf("count attempts of %s: %w", d, mapErr(err))
			}
		}
	}
	return nil
}

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
	q := `SELECT destination, minute, attempts, succeeded, retried, failed FROM attempt_minutes WHERE 1=1`
	var args []any
	if p.Destination != "" {
		q += ` AND destination = ?`
		args = append(args, p.Destination)
	}
	if !p.Since.IsZero() {
		q += ` AND minute >= ?`
		args = append(args, minuteCeil(p.Since))
	}
	if !p.Until.IsZero() {
		q += ` AND minute < ?`
		args = append(args, minuteCeil(p.Until))
	}
	limit := p.Limit
	if limit <= 0 || limit > store.MaxAttemptMinutes {
		limit = store.MaxAttemptMinutes
	}
	q += ` ORDER BY minute, destination LIMIT ?`
	args = append(args, limit)
	rows, err := s.r.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("list attempt counts: %w", mapErr(err))
	}
	defer rows.Close()
	var out []*store.AttemptMinute
	for rows.Next() {
		var (
			m   store.AttemptMinute
			sec int64
		)
		if err := rows.Scan(&m.Destination, &sec, &m.Attempts, &m.Succeeded, &m.Retried, &m.Failed); err != nil {
			return nil, fmt.Errorf("list attempt counts: %w", mapErr(err))
		}
		m.Minute = time.Unix(sec, 0).UTC()
		out = append(out, &m)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list attempt counts: %w", mapErr(err))
	}
	return out, nil
}

// AttemptCountPrune deletes the minutes that start before before.
func (s *Store) AttemptCountPrune(ctx context.Context, before time.Time) (int64, error) {
	if err := s.writable(); err != nil {
		return 0, err
	}
	r, err := s.w.ExecContext(ctx, `DELETE FROM attempt_minutes WHERE minute < ?`, minuteCeil(before))
	if err != nil {
		return 0, fmt.Errorf("prune attempt counts: %w", mapErr(err))
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
