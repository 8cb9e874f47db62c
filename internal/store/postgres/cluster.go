package postgres

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sort"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5"

	"hookd/internal/store"
)

var _ store.Cluster = (*Store)(nil)

// dbNow is the database's clock in unix microseconds: leases are given
// and judged on it, so that replicas' clocks need not agree.
const dbNow = `(extract(epoch from clock_timestamp()) * 1000000)::bigint`

// replicaForget is how long the row of a replica that stopped beating is
// kept (it shows in listings as dead) before a beat removes it.
const replicaForget = time.Hour

// ReplicaBeat renews replica id and the claims it holds.
func (s *Store) ReplicaBeat(ctx context.Context, id string, ttl time.Duration, held []string) ([]string, []string, error) {
	host, _ := os.Hostname()
	var live, renewed []string
	b := &pgx.Batch{}
	b.Queue(`INSERT INTO replicas (id, host, started_at, beat_at, alive_until)
		VALUES ($1, $2, `+dbNow+`, `+dbNow+`, `+dbNow+` + $3)
		ON CONFLICT (id) DO UPDATE SET beat_at = excluded.beat_at, alive_until = excluded.alive_until`,
		id, nullText(host), ttl.Microseconds())
	if len(held) > 0 {
		// Locked in id order, as the outcome writer writes them (no
		// deadlock between the two).
		b.Queue(`UPDATE deliveries SET lease_until = `+dbNow+` + $2
			WHERE id IN (SELECT id FROM deliveries
				WHERE id = ANY($3::text[]) AND status = 'delivering' AND owner = $1 AND lease_until >= `+dbNow+`
				ORDER BY id FOR UPDATE)
			RETURNING id`,
			id, ttl.Microseconds(), held).Query(func(rows pgx.Rows) error {
			var r string
			_, err := pgx.ForEachRow(rows, []any{&r}, func() error {
				renewed = append(renewed, r)
				return nil
			})
			return err
		})
	}
	b.Queue(`DELETE FROM replicas WHERE alive_until < `+dbNow+` - $1`, replicaForget.Microseconds())
	b.Queue(`SELECT id FROM replicas WHERE alive_until >= ` + dbNow + ` ORDER BY id`).Query(func(rows pgx.Rows) error {
		var r string
		_, err := pgx.ForEachRow(rows, []any{&r}, func() error {
			live = append(live, r)
			return nil
		})
		return err
	})
	if err := s.sendBatch(ctx, b); err != nil {
		return nil, nil, fmt.Errorf("replica heartbeat: %w", mapErr(err))
	}
	sort.Strings(live)
	return live, renewed, nil
}

// ReplicaLeave ends replica id: its row, its leases and its claims.
func (s *Store) ReplicaLeave(ctx context.Context, id string, now time.Time) error {
	b := &pgx.Batch{}
	b.Queue(`UPDATE deliveries SET status = 'retrying', next_attempt_at = $2, lease_until = NULL, owner = NULL, updated_at = $2
		WHERE status = 'delivering' AND owner = $1`, id, now.UnixMicro())
	// Ended, not deleted: the epoch goes on from where it was.
	b.Queue(`UPDATE leases SET until = 0 WHERE owner = $1`, id)
	b.Queue(`DELETE FROM replicas WHERE id = $1`, id)
	if err := s.sendBatch(ctx, b); err != nil {
		return fmt.Errorf("replica leave: %w", mapErr(err))
	}
	return nil
}

// DeliveryRelease hands claims back, due now.
func (s *Store) DeliveryRelease(ctx context.Context, owner string, claims map[string]int64, now time.Time) error {
	if len(claims) == 0 {
		return nil
	}
	ids := make([]string, 0, len(claims))
	epochs := make([]int64, 0, len(claims))
	for id, ep := range claims {
		ids = append(ids, id)
		epochs = append(epochs, ep)
	}
	err := s.with(ctx, func(c *pgx.Conn) error {
		_, err := c.Exec(ctx, `UPDATE deliveries d SET status = 'retrying', next_attempt_at = $2, lease_until = NULL,
				owner = NULL, updated_at = $2
			FROM unnest($3::text[], $4::bigint[]) AS r(id, epoch)
			WHERE d.id = r.id AND d.lease_epoch = r.epoch AND d.owner = $1 AND d.status = 'delivering'`,
			owner, now.UnixMicro(), ids, epochs)
		return err
	})
	if err != nil {
		return fmt.Errorf("release deliveries: %w", mapErr(err))
	}
	return nil
}

// LeaseTry takes or renews a named lease.
func (s *Store) LeaseTry(ctx context.Context, name, owner string, ttl time.Duration) (bool, int64, error) {
	var (
		held  string
		epoch int64
	)
	b := &pgx.Batch{}
	// Taken when free or ended, renewed when owner holds it; the epoch
	// moves only when the holder changes.
	b.Queue(`INSERT INTO leases (name, owner, epoch, until) VALUES ($1, $2, 1, `+dbNow+` + $3)
		ON CONFLICT (name) DO UPDATE SET
			epoch = CASE WHEN leases.owner = excluded.owner THEN leases.epoch ELSE leases.epoch + 1 END,
			owner = excluded.owner, until = excluded.until
		WHERE leases.owner = excluded.owner OR leases.until < `+dbNow, name, owner, ttl.Microseconds())
	b.Queue(`SELECT owner, epoch FROM leases WHERE name = $1`, name).QueryRow(func(r pgx.Row) error {
		return r.Scan(&held, &epoch)
	})
	if err := s.sendBatch(ctx, b); err != nil {
		return false, 0, fmt.Errorf("lease %s: %w", name, mapErr(err))
	}
	return held == owner, epoch, nil
}

// LeaseRelease gives a named lease up.
func (s *Store) LeaseRelease(ctx context.Context, name, owner string) error {
	err := s.with(ctx, func(c *pgx.Conn) error {
		// Ended, not deleted: the next holder's epoch is still a new one.
		_, err := c.Exec(ctx, `UPDATE leases SET until = 0 WHERE name = $1 AND owner = $2`, name, owner)
		return err
	})
	if err != nil {
		return fmt.Errorf("release lease %s: %w", name, mapErr(err))
	}
	return nil
}

// claimBy is claimDue for a replica: leases on the database's clock, the
// claimer recorded, the epoch moved on.
var claimBy = claimSQL(dbNow, dbNow+" + $4", ", owner = $5, lease_epoch = d.lease_epoch + 1")

// DeliveryClaim claims due deliveries of destination for owner.
func (s *Store) DeliveryClaim(ctx context.Context, owner, destination string, now time.Time, ttl time.Duration, limit int) ([]*store.Delivery, error) {
	if limit <= 0 {
		return nil, nil
	}
	ds, err := s.queryDeliveries(ctx, claimBy, destination, now.UnixMicro(), limit, ttl.Microseconds(), owner)
	if err != nil {
		return nil, fmt.Errorf("claim deliveries: %w", err)
	}
	sortDue(ds)
	return ds, nil
}

// sortDue puts claimed deliveries in due order (RETURNING has none).
func sortDue(ds []*store.Delivery) {
	sort.SliceStable(ds, func(i, j int) bool {
		a, b := ds[i], ds[j]
		if !a.NextAttemptAt.Equal(b.NextAttemptAt) {
			return a.NextAttemptAt.Before(b.NextAttemptAt)
		}
		return a.EventSeq < b.EventSeq
	})
}

// DeliveryLoadOwned loads and stamps an ordered destination's unfinished
// work below the stream horizon, in event order.
func (s *Store) DeliveryLoadOwned(ctx context.Context, owner string, epoch int64, destination string, afterSeq int64, limit int) ([]*store.Delivery, error) {
	if limit <= 0 {
		return nil, nil
	}
	ds, err := s.queryDeliveries(ctx, `WITH pick AS (
			SELECT id FROM deliveries
			WHERE destination = $1 AND event_seq > $2 AND event_seq < `+horizonSQL+`
				AND status IN ('pending', 'retrying', 'delivering')
				-- Only while owner holds the destination's lease at that
				-- epoch: a former owner that stalled before this query does
				-- not take the rows back from the new one.
				AND EXISTS (SELECT 1 FROM leases WHERE name = 'destination:' || $1 AND owner = $4 AND epoch = $5
					AND until >= `+dbNow+`)
			ORDER BY event_seq LIMIT $3 FOR UPDATE)
		UPDATE deliveries d SET owner = $4, lease_epoch = $5
		FROM pick WHERE d.id = pick.id
		RETURNING `+prefixCols("d.", deliveryReadCols), destination, afterSeq, limit, owner, epoch)
	if err != nil {
		return nil, fmt.Errorf("load ordered deliveries of %s: %w", destination, err)
	}
	sort.Slice(ds, func(i, j int) bool { return ds[i].EventSeq < ds[j].EventSeq })
	return ds, nil
}

// routedAfterSetting holds the last event stored before replica support
// (migration 0002).
const routedAfterSetting = "routed_after_seq"

// RoutedAfter returns the seq of the last event stored before replica
// support.
func (s *Store) RoutedAfter(ctx context.Context) (int64, error) {
	v, err := s.SettingGet(ctx, routedAfterSetting)
	if errors.Is(err, store.ErrNotFound) {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	return strconv.ParseInt(v, 10, 64)
}

// ReplayJobPut stores a replay's record.
func (s *Store) ReplayJobPut(ctx context.Context, id, owner string, running bool, job []byte) error {
	err := s.with(ctx, func(c *pgx.Conn) error {
		_, err := c.Exec(ctx, `INSERT INTO replay_jobs (id, owner, running, job, started_at, updated_at)
			VALUES ($1, $2, $3, $4, `+dbNow+`, `+dbNow+`)
			ON CONFLICT (id) DO UPDATE SET owner = excluded.owner, running = excluded.running,
				job = excluded.job, updated_at = excluded.updated_at`, id, owner, running, job)
		return err
	})
	if err != nil {
		return fmt.Errorf("store replay %s: %w", id, mapErr(err))
	}
	return nil
}

// ReplayJobGet returns a replay's record.
func (s *Store) ReplayJobGet(ctx context.Context, id string) ([]byte, error) {
	var job []byte
	err := s.with(ctx, func(c *pgx.Conn) error {
		return c.QueryRow(ctx, `SELECT job FROM replay_jobs WHERE id = $1`, text(id)).Scan(&job)
	})
	if err != nil {
		return nil, fmt.Errorf("get replay %s: %w", id, mapErr(err))
	}
	return job, nil
}

// ReplayJobOrphans takes over the running replays whose owner is not
// live.
func (s *Store) ReplayJobOrphans(ctx context.Context, taker string) (map[string][]byte, error) {
	out := map[string][]byte{}
	err := s.with(ctx, func(c *pgx.Conn) error {
		// Taken over in the statement that finds them: the owner is not
		// live by the database's own table, so that a replica that joined
		// since the caller's heartbeat keeps its replay, and two callers
		// never take one replay both.
		rows, err := c.Query(ctx, `UPDATE replay_jobs SET owner = $1, updated_at = `+dbNow+`
			WHERE running AND owner <> $1
				AND owner NOT IN (SELECT id FROM replicas WHERE alive_until >= `+dbNow+`)
			RETURNING id, job`, taker)
		if err != nil {
			return err
		}
		var (
			id  string
			job []byte
		)
		_, err = pgx.ForEachRow(rows, []any{&id, &job}, func() error {
			out[id] = append([]byte(nil), job...)
			return nil
		})
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("orphaned replays: %w", mapErr(err))
	}
	return out, nil
}

// DeliveryReleaseUnowned releases the claims of a version without replica
// support.
func (s *Store) DeliveryReleaseUnowned(ctx context.Context, now time.Time) (int, error) {
	var n int64
	err := s.with(ctx, func(c *pgx.Conn) error {
		ct, err := c.Exec(ctx, `UPDATE deliveries SET status = 'retrying', next_attempt_at = $1, lease_until = NULL, updated_at = $1
			WHERE status = 'delivering' AND owner IS NULL`, now.UnixMicro())
		n = ct.RowsAffected()
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("release unowned deliveries: %w", mapErr(err))
	}
	return int(n), nil
}
