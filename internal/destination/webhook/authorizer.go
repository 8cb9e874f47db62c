package webhook

import (
	"context"
	"fmt"
	"net/http"
	"strings"

	"hookd/internal/config"
	"hookd/internal/destination"
	"hookd/internal/destination/oauth"
)

// Authorizer authenticates requests that are not deliveries (a
// subscription's enrich fetches) with the auth options of an http
// destination: header, basic or oauth2. It is safe for concurrent use.
type Authorizer struct {
	s      *authSettings
	tokens *oauth.Source
}

// NewAuthorizer decodes and validates the auth keys of m (as an http
// destination's auth section) and, for oauth2, prepares its token source
// (through env's egress guard). Errors start with "auth." and never
// print a secret.
func NewAuthorizer(env *destination.Env, m map[string]any) (*Authorizer, error) {
	var o AuthOptions
	if err := config.DecodeMap(m, &o); err != nil {
		return nil, fmt.Errorf("auth: %w", err)
	}
	s, err := o.validate(nil)
	if err != nil {
		return nil, err
	}
	a := &Authorizer{s: s}
	if s.typ == AuthOAuth2 {
		var oo oauth.Options
		if env != nil {
			oo.Now, oo.Egress, oo.Log = env.Now, env.Egress, env.Log
		}
		if a.tokens, err = oauth.New(s.oauth, oo); err != nil {
			return nil, fmt.Errorf("auth.%w", err)
		}
	}
	return a, nil
}

// Authorize sets req's credentials: the header of type header or basic,
// or a bearer token of type oauth2 (an error when none can be obtained).
func (a *Authorizer) Authorize(ctx context.Context, req *http.Request) error {
	if a.tokens != nil {
		token, err := a.tokens.Token(ctx)
		if err != nil {
			return err
		}
		req.Header.Set("Authorization", "Bearer "+token)
		return nil
	}
	if a.s.value != "" {
		req.Header.Set(a.s.header, a.s.value)
	}
	return nil
}

// Rejected drops the oauth2 token req carried, after a 401 answer, so
// that the next request gets a fresh one.
func (a *Authorizer) Rejected(req *http.Request) {
	if a.tokens == nil {
		return
	}
	if token, ok := strings.CutPrefix(req.Header.Get("Authorization"), "Bearer "); ok {
		a.tokens.Invalidate(token)
	}
}
