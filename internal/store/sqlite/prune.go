package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"

	"github.com/oklog/ulid/v2"

	"hookd"
	"hookd/internal/store"
)

// Prune implements store.DeliveryStore. It walks events in seq order from
// p.After: seq follows the order of commits, which is the order of
// reception to within the ack deadline, so the walk stops at the first
// event received at or after p.Before and never reads the young part of
// the table. An event's deliveries and their attempt logs are ranges of
// their primary keys (dlv_<event ULID>_…), so no index is needed to find
// them. Duplicate requests are removed by their request id, whose ULID
// holds the time the request arrived.
//
// The deletes are not synced: lost in a crash, they are made again by the
// next pass.
func (s *Store) Prune(ctx context.Context, p store.PruneParams) (store.PruneResult, error) {
	res := store.PruneResult{Next: p.After}
	if err := s.writable(); err != nil {
		return res, err
	}
	if err := s.caughtUp(ctx); err != nil {
		return res, err
	}
	if p.Limit <= 0 {
		p.Limit = 500
	}
	before := p.Before.UnixMicro()
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return res, fmt.Errorf("prune: %w", mapErr(err))
	}
	defer tx.Rollback()

	rows, err := tx.QueryContext(ctx, `SELECT seq, id, received_at FROM events WHERE seq > ? ORDER BY seq LIMIT ?`, p.After, p.Limit)
	if err != nil {
		return res, fmt.Errorf("prune: %w", mapErr(err))
	}
	type old struct {
		seq int64
		id  string
	}
	var olds []old
	n := 0
	res.Done = true
	for rows.Next() {
		var o old
		var received int64
		if err := rows.Scan(&o.seq, &o.id, &received); err != nil {
			rows.Close()
			return res, fmt.Errorf("prune: %w", mapErr(err))
		}
		n++
		if received >= before || o.seq > p.MaxSeq {
			break
		}
		olds = append(olds, o)
	}
	if err := rows.Err(); err != nil {
		rows.Close()
		return res, fmt.Errorf("prune: %w", mapErr(err))
	}
	rows.Close()
	if n == p.Limit && len(olds) == n {
		res.Done = false // a full page of old events: there may be more
	}

	for _, o := range olds {
		res.Next = o.seq
		lo, hi := deliveryRange(o.id)
		var unfinished int
		err := tx.QueryRowContext(ctx, `SELECT count(*) FROM (SELECT 1 FROM deliveries WHERE id >= ? AND id < ?
			AND status IN ('pending', 'retrying', 'delivering') LIMIT 1)`, lo, hi).Scan(&unfinished)
		if err != nil {
			return res, fmt.Errorf("prune: %w", mapErr(err))
		}
		if unfinished > 0 {
			res.Kept++
			continue
		}
		for _, q := range []struct {
			sql string
			n   *int64
		}{
			{`DELETE FROM delivery_attempts WHERE delivery_id >= ? AND delivery_id < ?`, &res.Attempts},
			{`DELETE FROM deliveries WHERE id >= ? AND id < ?`, &res.Deliveries},
		} {
			r, err := tx.ExecContext(ctx, q.sql, lo, hi)
			if err != nil {
				return res, fmt.Errorf("prune: %w", mapErr(err))
			}
			k, _ := r.RowsAffected()
			*q.n += k
		}
		if _, err := tx.ExecContext(ctx, `DELETE FROM events WHERE seq = ?`, o.seq); err != nil {
			return res, fmt.Errorf("prune: %w", mapErr(err))
		}
		res.Events++
	}

	// Duplicate requests older than Before, by their id's time.
	var cut ulid.ULID
	if err := cut.SetTime(ulid.Timestamp(p.Before)); err == nil {
		r, err := tx.ExecContext(ctx, `DELETE FROM duplicate_requests WHERE request_id IN
			(SELECT request_id FROM duplicate_requests WHERE request_id < ? ORDER BY request_id LIMIT ?)`,
			hookd.RequestIDPrefix+cut.String(), p.Limit)
		if err != nil {
			return res, fmt.Errorf("prune: %w", mapErr(err))
		}
		res.Duplicates, _ = r.RowsAffected()
		if res.Duplicates == int64(p.Limit) {
			res.Done = false
		}
	}
	if err := tx.Commit(); err != nil {
		return res, fmt.Errorf("prune: commit: %w", mapErr(err))
	}
	if res.Events > 0 || res.Done {
		if err := s.releaseSegments(ctx); err != nil {
			return res, fmt.Errorf("prune: %w", err)
		}
	}
	return res, nil
}

// releaseSegments gives the log back the segments that no event row
// points into any more (their events deleted, or none but duplicates),
// once everything in them is indexed. The deletes are made durable first:
// a released segment may be overwritten. It waits while a Backup copies
// the log.
func (s *Store) releaseSegments(ctx context.Context) error {
	s.releaseMu.Lock()
	defer s.releaseMu.Unlock()
	indexed := s.indexed.Load()
	var candidates []uint64
	for _, sg := range s.wal.Sealed() {
		if sg.Last <= indexed {
			candidates = append(candidates, sg.First)
		}
	}
	if len(candidates) == 0 {
		return nil
	}
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("release log segments: %w", mapErr(err))
	}
	defer tx.Rollback()
	var free []uint64
	for _, seg := range candidates {
		var lo, hi sql.NullInt64
		err := tx.QueryRowContext(ctx, `SELECT min_seq, max_seq FROM log_segments WHERE segment = ?`, int64(seg)).Scan(&lo, &hi)
		if err != nil && !errors.Is(err, sql.ErrNoRows) {
			return fmt.Errorf("release log segments: %w", mapErr(err))
		}
		if lo.Valid {
			var live bool
			if err := tx.QueryRowContext(ctx, `SELECT EXISTS (SELECT 1 FROM events WHERE seq BETWEEN ? AND ?)`, lo.Int64, hi.Int64).Scan(&live); err != nil {
				return fmt.Errorf("release log segments: %w", mapErr(err))
			}
			if live {
				continue
			}
		}
		if _, err := tx.ExecContext(ctx, `DELETE FROM log_segments WHERE segment = ?`, int64(seg)); err != nil {
			return fmt.Errorf("release log segments: %w", mapErr(err))
		}
		free = append(free, seg)
	}
	if len(free) == 0 {
		return nil
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("release log segments: %w", mapErr(err))
	}
	if err := s.syncDB(); err != nil {
		return err
	}
	for _, seg := range free {
		if err := s.wal.Release(seg); err != nil {
			return err
		}
	}
	return nil
}

// deliveryRange is the key range [lo, hi) of the deliveries of event id:
// "dlv_<ULID>_" and everything that follows it before "dlv_<ULID>`" ('`'
// comes right after '_').
func deliveryRange(eventID string) (lo, hi string) {
	p := store.DeliveryID(eventID, "")
	return p, strings.TrimSuffix(p, "_") + "`"
}
