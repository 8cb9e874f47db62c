package verify

import (
	"context"
	"fmt"
	"net/http"

	"hookd/internal/config"
)

func init() { Register("header", newHeader) }

// headerOptions are the options of the header method: a named header whose
// value equals one of the secrets (seed 002's "configured authentication
// header").
type headerOptions struct {
	// Header is the name of the header, such as X-Auth-Token.
	Header string `yaml:"header"`
	// Secrets are the accepted values, one or a list (several during a
	// rotation).
	Secrets stringList `yaml:"secrets"`
}

// headerVerifier checks that a named header carries one of the secrets.
type headerVerifier struct {
	name    string
	secrets [][]byte
}

func newHeader(env *Env, m config.Verify) (Verifier, error) {
	var o headerOptions
	if err := m.Decode(&o); err != nil {
		return nil, err
	}
	if o.Header == "" {
		return nil, fmt.Errorf("header: required (the name of the header that carries the secret, such as X-Auth-Token)")
	}
	if !headerValidName(o.Header) {
		return nil, fmt.Errorf("header: %q is not a valid header name", o.Header)
	}
	secrets, err := secretBytes("secrets", o.Secrets, true, MinSecretLen)
	if err != nil {
		return nil, err
	}
	return &headerVerifier{name: http.CanonicalHeaderKey(o.Header), secrets: secrets}, nil
}

// Verify accepts a request that sends the header exactly once with one of
// the secrets as its value. No WWW-Authenticate challenge goes with a
// failure: no registered scheme describes a custom header.
func (v *headerVerifier) Verify(_ context.Context, r *Request) error {
	vals := r.Header.Values(v.name)
	switch {
	case len(vals) == 0:
		return Unauthorized("the %s header is required", v.name)
	case len(vals) > 1:
		return Unauthorized("the %s header is sent more than once", v.name)
	case !MatchAny([]byte(vals[0]), v.secrets):
		return Unauthorized("invalid %s header", v.name)
	}
	return nil
}

// CredentialHeaders names the configured header.
func (v *headerVerifier) CredentialHeaders() []string { return []string{v.name} }

// headerValidName reports whether s is an RFC 9110 field name (a token).
func headerValidName(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		case c < 0x80 && c > 0x20 && c != 0x7f && !headerIsDelimiter(c):
		default:
			return false
		}
	}
	return true
}

// headerIsDelimiter reports the delimiters RFC 9110 excludes from tokens.
func headerIsDelimiter(c byte) bool {
	switch c {
	case '"', '(', ')', ',', '/', ':', ';', '<', '=', '>', '?', '@', '[', '\\', ']', '{', '}':
		return true
	}
	return false
}
