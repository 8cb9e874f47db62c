package postgres

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"

	"hookd/internal/store"
)

// AdminSessionInsert stores a new console session, visible to every
// replica; sessions expired by its creation are deleted with it.
func (s *Store) AdminSessionInsert(ctx context.Context, as *store.AdminSession) error {
	b := &pgx.Batch{}
	b.Queue(`DELETE FROM admin_sessions WHERE expires_at <= $1`, as.CreatedAt)
	b.Queue(`INSERT INTO admin_sessions (id_hash, token_mac, created_at, expires_at) VALUES ($1, $2, $3, $4)`,
		as.IDHash, as.TokenMAC, as.CreatedAt, as.ExpiresAt)
	if err := s.sendBatch(ctx, b); err != nil {
		return fmt.Errorf("store admin session: %w", mapErr(err))
	}
	return nil
}

// AdminSessionGet returns one console session, or store.ErrNotFound.
func (s *Store) AdminSessionGet(ctx context.Context, idHash string) (*store.AdminSession, error) {
	as := &store.AdminSession{IDHash: idHash}
	err := s.with(ctx, func(c *pgx.Conn) error {
		return c.QueryRow(ctx, `SELECT token_mac, created_at, expires_at FROM admin_sessions WHERE id_hash = $1`, idHash).Scan(&as.TokenMAC, &as.CreatedAt, &as.ExpiresAt)
	})
	if err != nil {
		return nil, fmt.Errorf("read admin session: %w", mapErr(err))
	}
	as.CreatedAt, as.ExpiresAt = as.CreatedAt.UTC(), as.ExpiresAt.UTC()
	return as, nil
}

// AdminSessionDelete deletes one console session.
func (s *Store) AdminSessionDelete(ctx context.Context, idHash string) error {
	err := s.with(ctx, func(c *pgx.Conn) error {
		_, err := c.Exec(ctx, `DELETE FROM admin_sessions WHERE id_hash = $1`, idHash)
		return err
	})
	if err != nil {
		return fmt.Errorf("delete admin session: %w", mapErr(err))
	}
	return nil
}
