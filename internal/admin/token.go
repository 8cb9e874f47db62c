package admin

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"strings"
	"sync"
	"time"
)

// The generated admin token is kept in the store as a hash only: a copy of
// the database does not give access to the admin API. The token is random
// and long (192 bits), so one SHA-256 is enough; no slow hash is needed.
const (
	// TokenSetting is the store setting that holds the generated admin
	// token's hash.
	TokenSetting = "admin_token"
	// tokenHashPrefix starts a stored hash; a value without it is a token
	// an earlier version stored in plain text.
	tokenHashPrefix = "sha256:"
	// storedTokenTTL is how long the API trusts the stored hash it read
	// before reading it again: hookd admin-token reset, run next to a
	// server, takes effect within it.
	storedTokenTTL = time.Second
)

// HashToken is what the store keeps of an admin token.
func HashToken(tok string) string {
	sum := sha256.Sum256([]byte(tok))
	return tokenHashPrefix + hex.EncodeToString(sum[:])
}

// IsTokenHash reports whether a stored value is a hash made by HashToken
// (and not a token stored in plain text by an earlier version).
func IsTokenHash(stored string) bool {
	_, ok := parseTokenHash(stored)
	return ok
}

func parseTokenHash(stored string) ([32]byte, bool) {
	var h [32]byte
	hexSum, ok := strings.CutPrefix(stored, tokenHashPrefix)
	if !ok || hex.DecodedLen(len(hexSum)) != len(h) {
		return h, false
	}
	if _, err := hex.Decode(h[:], []byte(hexSum)); err != nil {
		return h, false
	}
	return h, true
}

// storedToken caches the hash of the generated admin token read from the
// store, for storedTokenTTL.
type storedToken struct {
	read func(ctx context.Context) (string, error)
	now  func() time.Time

	mu     sync.Mutex
	hash   [32]byte
	ok     bool
	readAt time.Time
}

// get returns the current hash; false when there is none. When the store
// cannot be read, the last hash read stays in force.
func (s *storedToken) get(ctx context.Context) ([32]byte, bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.now()
	if age := now.Sub(s.readAt); !s.readAt.IsZero() && age >= 0 && age < storedTokenTTL {
		return s.hash, s.ok, nil
	}
	v, err := s.read(ctx)
	if err != nil {
		return s.hash, s.ok, err
	}
	s.hash, s.ok = parseTokenHash(v)
	s.readAt = now
	return s.hash, s.ok, nil
}
