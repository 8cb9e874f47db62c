package verify

import (
	"crypto/sha256"
	"crypto/subtle"
	"fmt"
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

// MinSecretLen is the shortest client secret, API key or header secret
// hookd accepts: secrets an operator chooses must not be guessable.
// Secrets a provider chooses (hmac, digest and the presets) are only
// warned about below it.
const MinSecretLen = 16

// warnShortSecrets logs a warning for each signing secret shorter than
// MinSecretLen bytes. Such secrets are often the provider's to choose, so
// they are accepted.
func warnShortSecrets(env *Env, method string, secrets [][]byte) {
	if env == nil || env.Log == nil {
		return
	}
	for i, s := range secrets {
		if len(s) < MinSecretLen {
			env.Log.Warn("a signing secret is shorter than 16 bytes and could be guessed; if you chose it, choose a long random one",
				"source", env.Source, "method", method, "field", fmt.Sprintf("secrets[%d]", i), "length", len(s))
		}
	}
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
