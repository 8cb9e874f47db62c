package sqlite

import (
	"context"
	"fmt"
	"time"

	"hookd/internal/store"
)

// AdminSessionInsert stores a new console session and syncs; sessions
// expired by its creation are deleted in the same transaction.
func (s *Store) AdminSessionInsert(ctx context.Context, as *store.AdminSession) error {
	if err := s.writable(); err != nil {
		return err
	}
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("store admin session: %w", mapErr(err))
	}
	defer tx.Rollback()
	if _, err := tx.ExecContext(ctx, `DELETE FROM admin_sessions WHERE expires_at <= ?`, as.CreatedAt.UnixMicro()); err != nil {
		return fmt.Errorf("delete expired admin sessions: %w", mapErr(err))
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO admin_sessions (id_hash, token_mac, created_at, expires_at) VALUES (?, ?, ?, ?)`,
		as.IDHash, as.TokenMAC, as.CreatedAt.UnixMicro(), as.ExpiresAt.UnixMicro()); err != nil {
		return fmt.Errorf("store admin session: %w", mapErr(err))
	}
	if err := s.commitDurable(tx); err != nil {
		return fmt.Errorf("store admin session: %w", err)
	}
	return nil
}

// AdminSessionGet returns one console session, or store.ErrNotFound.
func (s *Store) AdminSessionGet(ctx context.Context, idHash string) (*store.AdminSession, error) {
	as := &store.AdminSession{IDHash: idHash}
	var created, expires int64
	err := s.r.QueryRowContext(ctx, `SELECT token_mac, created_at, expires_at FROM admin_sessions WHERE id_hash = ?`, idHash).Scan(&as.TokenMAC, &created, &expires)
	if err != nil {
		return nil, fmt.Errorf("read admin session: %w", mapErr(err))
	}
	as.CreatedAt, as.ExpiresAt = time.UnixMicro(created).UTC(), time.UnixMicro(expires).UTC()
	return as, nil
}

// AdminSessionDelete deletes one console session and syncs.
func (s *Store) AdminSessionDelete(ctx context.Context, idHash string) error {
	if err := s.writable(); err != nil {
		return err
	}
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("delete admin session: %w", mapErr(err))
	}
	defer tx.Rollback()
	if _, err := tx.ExecContext(ctx, `DELETE FROM admin_sessions WHERE id_hash = ?`, idHash); err != nil {
		return fmt.Errorf("delete admin session: %w", mapErr(err))
	}
	if err := s.commitDurable(tx); err != nil {
		return fmt.Errorf("delete admin session: %w", err)
	}
	return nil
}
