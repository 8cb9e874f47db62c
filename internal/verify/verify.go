// Package verify checks that an inbound request comes from whom it claims:
// one file per verification method, composed per source (all must pass).
// Verification runs on the raw bytes before anything else reads the body.
package verify

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"sort"

	"hookd/internal/config"
)

// Request is what a verifier sees of an inbound request.
type Request struct {
	Method     string
	URL        *url.URL
	Header     http.Header
	RemoteAddr string
	// Body is the raw body, exactly as received.
	Body []byte
}

// Verifier checks one request. A failure is a *hookd.Error with code
// EUnauthorized (401) or EForbidden (403), or EUnavailable (503) when the
// verifier could not decide (an introspection server down). Its message is
// safe to show and never reveals an expected secret.
type Verifier interface {
	Verify(ctx context.Context, r *Request) error
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

// Factory builds a verifier of one type from its options.
type Factory func(opts map[string]any) (Verifier, error)

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
func Build(list []config.Verify) (Chain, error) {
	var c Chain
	for i, v := range list {
		f, ok := factories[v.Type]
		if !ok {
			return nil, fmt.Errorf("verify[%d]: unknown or unsupported method %q (available: %v)", i, v.Type, Types())
		}
		ver, err := f(v.Options)
		if err != nil {
			return nil, fmt.Errorf("verify[%d] (%s): %w", i, v.Type, err)
		}
		c = append(c, ver)
	}
	return c, nil
}
