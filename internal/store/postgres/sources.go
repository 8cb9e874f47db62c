package postgres

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"hookd"
	"hookd/internal/store"
)

// SourcePut implements store.DeliveryStore.
func (s *Store) SourcePut(ctx context.Context, src *store.SourceRecord) error {
	if len(src.Spec) == 0 {
		return hookd.Errorf(hookd.EInvalid, "source %q: empty spec", src.Name)
	}
	now := time.Now()
	err := s.with(ctx, func(c *pgx.Conn) error {
		_, err := c.Exec(ctx, `INSERT INTO sources (name, spec, created_at, updated_at) VALUES ($1, $2, $3, $4)
			ON CONFLICT (name) DO UPDATE SET spec = excluded.spec, updated_at = excluded.updated_at`,
			src.Name, src.Spec, orNow(src.CreatedAt, now), orNow(src.UpdatedAt, now))
		return err
	})
	if err != nil {
		return fmt.Errorf("put source %s: %w", src.Name, mapErr(err))
	}
	return nil
}

// SourceDelete implements store.DeliveryStore.
func (s *Store) SourceDelete(ctx context.Context, name string) error {
	return s.deleteOne(ctx, `DELETE FROM sources WHERE name = $1`, name, "source")
}

// SourceList implements store.DeliveryStore.
func (s *Store) SourceList(ctx context.Context) ([]*store.SourceRecord, error) {
	var out []*store.SourceRecord
	err := s.with(ctx, func(c *pgx.Conn) error {
		rows, err := c.Query(ctx, `SELECT name, spec, created_at, updated_at FROM sources ORDER BY name`)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var (
				r                store.SourceRecord
				created, updated int64
			)
			if err := rows.Scan(&r.Name, &r.Spec, &created, &updated); err != nil {
				return err
			}
			r.CreatedAt, r.UpdatedAt = time.UnixMicro(created).UTC(), time.UnixMicro(updated).UTC()
			out = append(out, &r)
		}
		return rows.Err()
	})
	if err != nil {
		return nil, fmt.Errorf("list sources: %w", mapErr(err))
	}
	return out, nil
}
