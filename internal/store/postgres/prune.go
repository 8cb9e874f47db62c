package postgres

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/oklog/ulid/v2"

	"hookd"
	"hookd/internal/store"
)

// Prune implements store.DeliveryStore, in one transaction. It walks events
// in seq order from p.After: seq follows the order of commits, which is the
// order of reception to within the ack deadline, so the walk stops at the
// first event received at or after p.Before and never reads the young part
// of the table. An event's deliveries and their attempt logs are ranges of
// their primary keys (dlv_<event ULID>_…), so no index is needed to find
// them. Duplicate requests are removed by their request id, whose ULID
// holds the time the request arrived.
func (s *Store) Prune(ctx context.Context, p store.PruneParams) (store.PruneResult, error) {
	res := store.PruneResult{Next: p.After}
	if p.Limit <= 0 {
		p.Limit = 500
	}
	before := p.Before.UnixMicro()
	var out store.PruneResult
	err := s.inTx(ctx, func(tx pgx.Tx) error {
		r := res
		rows, err := tx.Query(ctx, `SELECT seq, id, received_at FROM events WHERE seq > $1 AND seq < `+horizonSQL+` ORDER BY seq LIMIT $2`, p.After, p.Limit)
		if err != nil {
			return err
		}
		var (
			seqs     []int64
			ids      []string
			n        int
			seq      int64
			id       string
			received int64
		)
		r.Done = true
		for rows.Next() {
			if err := rows.Scan(&seq, &id, &received); err != nil {
				rows.Close()
				return err
			}
			n++
			if received >= before || seq > p.MaxSeq {
				break
			}
			seqs = append(seqs, seq)
			ids = append(ids, id)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return err
		}
		if n == p.Limit && len(seqs) == n {
			r.Done = false // a full page of old events: there may be more
		}

		if len(seqs) > 0 {
			r.Next = seqs[len(seqs)-1]
			los, his := make([]string, len(ids)), make([]string, len(ids))
			for i, id := range ids {
				los[i], his[i] = idRange(id)
			}
			// The events passed over: a delivery of theirs is unfinished.
			kept := map[int]bool{}
			rows, err := tx.Query(ctx, `SELECT r.i FROM unnest($1::text[], $2::text[]) WITH ORDINALITY AS r(lo, hi, i)
				WHERE EXISTS (SELECT 1 FROM deliveries d WHERE d.id >= r.lo AND d.id < r.hi
					AND d.status IN ('pending', 'retrying', 'delivering'))`, los, his)
			if err != nil {
				return err
			}
			var i int
			if _, err := pgx.ForEachRow(rows, []any{&i}, func() error {
				kept[i-1] = true
				return nil
			}); err != nil {
				return err
			}
			r.Kept = int64(len(kept))
			var dLos, dHis []string
			var dSeqs []int64
			for i := range seqs {
				if !kept[i] {
					dLos, dHis, dSeqs = append(dLos, los[i]), append(dHis, his[i]), append(dSeqs, seqs[i])
				}
			}
			if len(dSeqs) > 0 {
				b := &pgx.Batch{}
				for _, q := range []struct {
					sql  string
					args []any
					n    *int64
				}{
					{`DELETE FROM delivery_attempts a USING unnest($1::text[], $2::text[]) AS r(lo, hi)
						WHERE a.delivery_id >= r.lo AND a.delivery_id < r.hi`, []any{dLos, dHis}, &r.Attempts},
					{`DELETE FROM deliveries d USING unnest($1::text[], $2::text[]) AS r(lo, hi)
						WHERE d.id >= r.lo AND d.id < r.hi`, []any{dLos, dHis}, &r.Deliveries},
					{`DELETE FROM events WHERE seq = ANY($1::bigint[])`, []any{dSeqs}, &r.Events},
				} {
					b.Queue(q.sql, q.args...).Exec(func(ct pgconn.CommandTag) error {
						*q.n += ct.RowsAffected()
						return nil
					})
				}
				if err := tx.SendBatch(ctx, b).Close(); err != nil {
					return err
				}
			}
		}

		// Duplicate requests older than Before, by their id's time.
		var cut ulid.ULID
		if err := cut.SetTime(ulid.Timestamp(p.Before)); err == nil {
			ct, err := tx.Exec(ctx, `DELETE FROM duplicate_requests WHERE request_id IN
				(SELECT request_id FROM duplicate_requests WHERE request_id < $1 ORDER BY request_id LIMIT $2)`,
				hookd.RequestIDPrefix+cut.String(), p.Limit)
			if err != nil {
				return err
			}
			r.Duplicates = ct.RowsAffected()
			if r.Duplicates == int64(p.Limit) {
				r.Done = false
			}
		}
		out = r
		return nil
	})
	if err != nil {
		return res, fmt.Errorf("prune: %w", mapErr(err))
	}
	return out, nil
}
