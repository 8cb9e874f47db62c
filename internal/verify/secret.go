package verify

import (
	"crypto/sha256"
	"crypto/subtle"
)

// Equal compares a presented value with a secret in constant time. Both are
// hashed first, so neither the content nor the length of the secret shows
// in the timing. Every secret comparison of package verify goes through
// Equal or MatchAny.
func Equal(presented, secret []byte) bool {
	a := sha256.Sum256(presented)
	b := sha256.Sum256(secret)
	return subtle.ConstantTimeCompare(a[:], b[:]) == 1
}

// MatchAny reports whether presented equals any of secrets (a rotation
// list). It compares against every secret, whichever matches.
func MatchAny(presented []byte, secrets [][]byte) bool {
	match := 0
	for _, s := range secrets {
		if Equal(presented, s) {
			match = 1
		}
	}
	return match == 1
}

// matchIndex returns the index of the secret presented equals, -1 when
// none. Like MatchAny, it compares against every secret.
func matchIndex(presented []byte, secrets [][]byte) int {
	found := -1
	for k, s := range secrets {
		if Equal(presented, s) {
			found = k
		}
	}
	return found
}
