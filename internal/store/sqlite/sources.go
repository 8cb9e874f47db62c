package sqlite

import (
	"context"
	"fmt"
	"time"

	"hookd"
	"hookd/internal/store"
)

// SourcePut implements store.DeliveryStore.
func (s *Store) SourcePut(ctx context.Context, src *store.SourceRecord) error {
	if len(src.Spec) == 0 {
		return hookd.Errorf(hookd.EInvalid, "source %q: empty spec", src.Name)
	}
	if err := s.writable(); err != nil {
		return err
	}
	now := time.Now()
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("put source %s: %w", src.Name, mapErr(err))
	}
	defer tx.Rollback()
	if _, err := tx.ExecContext(ctx, `INSERT INTO sources (name, spec, created_at, updated_at) VALUES (?1, ?2, ?3, ?4)
		ON CONFLICT (name) DO UPDATE SET spec = excluded.spec, updated_at = excluded.updated_at`,
		src.Name, src.Spec, orNow(src.CreatedAt, now), orNow(src.UpdatedAt, now)); err != nil {
		return fmt.Errorf("put source %s: %w", src.Name, mapErr(err))
	}
	if err := s.commitDurable(tx); err != nil {
		return fmt.Errorf("put source %s: %w", src.Name, err)
	}
	return nil
}

// SourceDelete implements store.DeliveryStore.
func (s *Store) SourceDelete(ctx context.Context, name string) error {
	return s.deleteOne(ctx, `DELETE FROM sources WHERE name = ?`, name, "source")
}

// SourceList implements store.DeliveryStore.
func (s *Store) SourceList(ctx context.Context) ([]*store.SourceRecord, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT name, spec, created_at, updated_at FROM sources ORDER BY name`)
	if err != nil {
		return nil, fmt.Errorf("list sources: %w", mapErr(err))
	}
	defer rows.Close()
	var out []*store.SourceRecord
	for rows.Next() {
		var (
			r                store.SourceRecord
			created, updated int64
		)
		if err := rows.Scan(&r.Name, &r.Spec, &created, &updated); err != nil {
			return nil, fmt.Errorf("list sources: %w", mapErr(err))
		}
		r.CreatedAt, r.UpdatedAt = time.UnixMicro(created).UTC(), time.UnixMicro(updated).UTC()
		out = append(out, &r)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list sources: %w", mapErr(err))
	}
	return out, nil
}
