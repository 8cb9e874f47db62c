// Package verify checks that an inbound request comes from whom it claims:
// one file per verification method, composed per source (all must pass).
// Verification runs on the raw bytes before anything else reads the body.
//
// A method registers a Factory under its type name from an init function.
// Failures are *hookd.Error values with code EUnauthorized (401),
// EForbidden (403) or EUnavailable (503, when the method could not decide,
// such as an introspection server that is down); their messages say what
// failed in general terms and never reveal an expected secret, signature
// or token detail. Secrets are compared only through Equal and MatchAny.
package verify

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"sort"
	"time"

	"hookd"
	"hookd/internal/config"
	"hookd/internal/egress"
)

// Request is what a verifier sees of an inbound request.
type Request struct {
	Method     string
	URL        *url.URL
	Header     http.Header
	RemoteAddr string
	// Body is the raw body, exactly as received. Verifiers must not modify it.
	Body []byte
	// MaxJSONDepth bounds the nesting of a body a verifier reads as JSON:
	// a deeper body has no JSON fields. 0 means jsonlimit.DefaultDepth.
	MaxJSONDepth int
}

// Verifier checks one request.
type Verifier interface {
	Verify(ctx context.Context, r *Request) error
}

// CredentialCarrier is implemented by verifiers whose credentials travel in
// request headers: those headers are stored as "[redacted]".
type CredentialCarrier interface {
	CredentialHeaders() []string
}

// Chain is a source's verifiers; all must pass.
type Chain []Verifier

// Verify runs every verifier in order and returns the first failure.
func (c Chain) Verify(ctx context.Context, r *Request) error {
	for _, v := range c {
		if err := v.Verify(ctx, r); err != nil {
			return err
		}
	}
	return nil
}

// CredentialHeaders lists the headers that carry credentials for any
// verifier of the chain.
func (c Chain) CredentialHeaders() []string {
	var out []string
	for _, v := range c {
		if cc, ok := v.(CredentialCarrier); ok {
			out = append(out, cc.CredentialHeaders()...)
		}
	}
	return out
}

// JSONBodyReader is implemented by verifiers that read fields of the JSON
// body (a signature or a signed field in the body).
type JSONBodyReader interface {
	ReadsJSONBody() bool
}

// ReadsJSONBody reports whether any verifier of the chain reads fields of
// the JSON body.
func (c Chain) ReadsJSONBody() bool {
	for _, v := range c {
		if jr, ok := v.(JSONBodyReader); ok && jr.ReadsJSONBody() {
			return true
		}
	}
	return false
}

// Env is what a factory may use besides the method's own options.
type Env struct {
	// Source is the name of the source the method belongs to.
	Source string
	// Now is the clock; tests inject one.
	Now func() time.Time
	// Egress is the SSRF guard of outbound calls (JWKS, introspection):
	// it checks their URLs when a method is built and dials every
	// connection. Nil is a guard with no exceptions (nothing private,
	// https only).
	Egress *egress.Guard
	// Issuer is hookd's own token issuer (oauth_issuer), shared by every
	// source; nil when none is configured.
	Issuer *Issuer
	// Log is the logger; never log secrets or tokens.
	Log *slog.Logger
}

func (e *Env) now() time.Time {
	if e.Now != nil {
		return e.Now()
	}
	return time.Now()
}

// Factory builds a verifier of one type; it decodes the method's options
// with m.Decode and validates them, naming the bad option.
type Factory func(env *Env, m config.Verify) (Verifier, error)

var factories = map[string]Factory{}

// Register makes a verification method available under typ. It is called
// from init functions of the method files.
func Register(typ string, f Factory) {
	if _, dup := factories[typ]; dup {
		panic("verify: duplicate method " + typ)
	}
	factories[typ] = f
}

// Types lists the registered methods.
func Types() []string {
	out := make([]string, 0, len(factories))
	for t := range factories {
		out = append(out, t)
	}
	sort.Strings(out)
	return out
}

// Build returns the chain for a source's verify list. An unknown method is
// an error: hookd never falls back to accepting what it cannot check.
func Build(env *Env, list []config.Verify) (Chain, error) {
	var c Chain
	for i, m := range list {
		f, ok := factories[m.Type]
		if !ok {
			return nil, fmt.Errorf("verify[%d]: unknown or unsupported method %q (available: %v)", i, m.Type, Types())
		}
		v, err := f(env, m)
		if err != nil {
			return nil, fmt.Errorf("verify[%d] (%s): %w", i, m.Type, m.Explain(err))
		}
		c = append(c, v)
	}
	return c, nil
}

// Challenges for WWW-Authenticate (RFC 6750).
const (
	ChallengeBearer        = `Bearer realm="hookd"`
	ChallengeInvalidBearer = `Bearer realm="hookd", error="invalid_token"`
)

// Unauthorized returns a 401 failure with a client-safe message.
func Unauthorized(format string, args ...any) error {
	return hookd.Errorf(hookd.EUnauthorized, format, args...)
}

// Forbidden returns a 403 failure with a client-safe message.
func Forbidden(format string, args ...any) error {
	return hookd.Errorf(hookd.EForbidden, format, args...)
}

// Unavailable returns a 503 failure: the method could not decide.
func Unavailable(msg string, cause error) error {
	return &hookd.Error{Code: hookd.EUnavailable, Message: msg, Err: cause}
}

// challengeError is a failure that carries a WWW-Authenticate challenge.
type challengeError struct {
	err       *hookd.Error
	challenge string
}

func (e *challengeError) Error() string { return e.err.Error() }
func (e *challengeError) Unwrap() error { return e.err }

// WithChallenge attaches a WWW-Authenticate challenge to a failure.
func WithChallenge(err error, challenge string) error {
	var he *hookd.Error
	if !errors.As(err, &he) {
		he = &hookd.Error{Code: hookd.EUnauthorized, Message: "unauthorized", Err: err}
	}
	return &challengeError{err: he, challenge: challenge}
}

// Challenge returns the WWW-Authenticate challenge attached to err, if any.
func Challenge(err error) string {
	var ce *challengeError
	if errors.As(err, &ce) {
		return ce.challenge
	}
	return ""
}
