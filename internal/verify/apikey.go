package verify

import (
	"context"

	"hookd/internal/config"
)

func init() { Register("api_key", newAPIKey) }

// apiKeyHeader is the header that carries an API key besides
// Authorization: Bearer.
const apiKeyHeader = "X-Api-Key"

// apiKeyOptions are the options of the api_key method.
type apiKeyOptions struct {
	// Keys are the accepted API keys, one or a list (several during a
	// rotation).
	Keys stringList `yaml:"keys"`
}

// apiKeyVerifier accepts "Authorization: Bearer KEY" or "X-Api-Key: KEY".
type apiKeyVerifier struct {
	keys [][]byte
}

func newAPIKey(env *Env, m config.Verify) (Verifier, error) {
	var o apiKeyOptions
	if err := m.Decode(&o); err != nil {
		return nil, err
	}
	keys, err := secretBytes("keys", o.Keys, true, MinSecretLen)
	if err != nil {
		return nil, err
	}
	return &apiKeyVerifier{keys: keys}, nil
}

// Verify accepts a request that presents a key in Authorization: Bearer,
// in X-Api-Key, or in both; every key presented must be valid, so that two
// headers cannot disagree about who is calling.
func (v *apiKeyVerifier) Verify(_ context.Context, r *Request) error {
	var presented []string
	bad := false
	auth := r.Header.Values("Authorization")
	for _, a := range auth {
		tok, isBearer := credParseBearer(a)
		if !isBearer {
			continue
		}
		if tok == "" || len(auth) > 1 {
			bad = true
			continue
		}
		presented = append(presented, tok)
	}
	keys := r.Header.Values(apiKeyHeader)
	if len(keys) > 1 {
		bad = true
	}
	presented = append(presented, keys...)
	if len(presented) == 0 && !bad {
		return WithChallenge(Unauthorized("an API key is required: Authorization: Bearer KEY or X-Api-Key: KEY"), ChallengeBearer)
	}
	ok := !bad
	for _, p := range presented {
		if !MatchAny([]byte(p), v.keys) {
			ok = false
		}
	}
	if !ok {
		return WithChallenge(Unauthorized("invalid API key"), ChallengeInvalidBearer)
	}
	return nil
}

// CredentialHeaders names the headers that carry the key.
func (v *apiKeyVerifier) CredentialHeaders() []string {
	return []string{"Authorization", apiKeyHeader}
}
