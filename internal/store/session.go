package store

import (
	"context"
	"time"
)

// AdminSession is a console sign-in: a session cookie that an admin token
// was exchanged for (docs/SECURITY.md). The store keeps no secret of it:
// IDHash is a digest of the cookie's value and TokenMAC binds the session to
// the admin token that made it without revealing that token.
type AdminSession struct {
	// IDHash identifies the session: the hex SHA-256 of the cookie value.
	IDHash string
	// TokenMAC is an HMAC of the admin token's digest keyed by the session
	// id: only the cookie's holder can tell which token made the session.
	TokenMAC string
	// CreatedAt is the sign-in; ExpiresAt the end of the session's life.
	CreatedAt time.Time
	ExpiresAt time.Time
}

// SessionStore keeps console sign-ins, so that every replica on one
// database honours them and they outlive a restart.
type SessionStore interface {
	// AdminSessionInsert stores a new session durably, and deletes the
	// sessions that expired at or before its CreatedAt.
	AdminSessionInsert(ctx context.Context, s *AdminSession) error
	// AdminSessionGet returns the session with that IDHash, or ErrNotFound.
	// It returns an expired session as well; the caller checks ExpiresAt.
	AdminSessionGet(ctx context.Context, idHash string) (*AdminSession, error)
	// AdminSessionDelete deletes the session with that IDHash; deleting
	// one that does not exist is not an error.
	AdminSessionDelete(ctx context.Context, idHash string) error
}
