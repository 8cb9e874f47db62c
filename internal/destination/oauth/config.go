// Package oauth gets OAuth 2.0 access tokens by the client credentials
// grant (RFC 6749 §4.4) for destinations that send them as bearer tokens
// (seed 000, as the sender): a Source caches one token, refreshes it ahead
// of its expiry, lets one refresh run at a time, backs off after a failed
// one, and forgets a token a receiver rejected (Invalidate).
//
// Tokens and client secrets are never logged nor put in an error.
package oauth

import (
	"fmt"
	"net/url"
	"strings"
	"time"

	"hookd/internal/config"
)

const (
	// DefaultRefreshBefore is how long before its expiry a token is
	// replaced (seed 000: "approximately 30 minutes prior to expiration").
	DefaultRefreshBefore = 30 * time.Minute
	// DefaultValidity is a token's lifetime when the token endpoint does
	// not give expires_in and no validity is configured.
	DefaultValidity = time.Hour
	// MaxValidity bounds validity and expires_in.
	MaxValidity = config.MaxValidity
)

// Config is an oauth2 destination auth's options.
type Config struct {
	// TokenURL is the token endpoint: an absolute http:// or https:// URL
	// without credentials. Required. With an SSRF guard it is checked like
	// a destination URL, and every connection is dialed through the guard.
	TokenURL string `yaml:"token_url"`
	// ClientID is the client id, sent with the secret by HTTP Basic.
	// Required; must not contain ':'.
	ClientID string `yaml:"client_id"`
	// ClientSecret is the client secret. Required. Never logged.
	ClientSecret string `yaml:"client_secret"`
	// Scope is sent as the scope parameter when not empty.
	Scope string `yaml:"scope"`
	// RefreshBefore is how long before its expiry a token is replaced.
	// Default 30m. When it is not shorter than a token's lifetime, the
	// token is replaced halfway through its lifetime instead.
	RefreshBefore *config.Duration `yaml:"refresh_before"`
	// Validity is a token's lifetime when the token endpoint gives no
	// expires_in: a duration ("1h", "90m") or a bare number of hours (seed
	// 000). Default 1h.
	Validity Validity `yaml:"validity"`
}

// Validity is config.Validity: a duration or a bare number of hours.
type Validity = config.Validity

// Hours returns a Validity of h hours.
func Hours(h float64) Validity { return config.ValidityHours(h) }

// Validate checks c. Errors name the field and never print the secret.
func (c *Config) Validate() error {
	_, err := c.settings()
	return err
}

// settings are a validated Config with defaults applied.
type settings struct {
	tokenURL      string
	clientID      string
	clientSecret  string
	scope         string
	refreshBefore time.Duration
	validity      time.Duration
}

func (c *Config) settings() (*settings, error) {
	s := &settings{
		clientID:      c.ClientID,
		clientSecret:  c.ClientSecret,
		scope:         strings.TrimSpace(c.Scope),
		refreshBefore: DefaultRefreshBefore,
		validity:      DefaultValidity,
	}
	if strings.TrimSpace(c.TokenURL) == "" {
		return nil, fmt.Errorf("token_url: required")
	}
	u, err := url.Parse(c.TokenURL)
	if err != nil {
		if ue, ok := err.(*url.Error); ok {
			err = ue.Err
		}
		return nil, fmt.Errorf("token_url: invalid: %v", err)
	}
	switch {
	case u.Scheme != "http" && u.Scheme != "https":
		return nil, fmt.Errorf("token_url: scheme %q is not supported (want an absolute http:// or https:// URL)", u.Scheme)
	case u.Host == "" || u.Hostname() == "":
		return nil, fmt.Errorf("token_url: no host (want an absolute http:// or https:// URL)")
	case u.User != nil:
		return nil, fmt.Errorf("token_url: credentials in the URL are not allowed (use client_id and client_secret)")
	}
	u.Fragment, u.RawFragment = "", ""
	s.tokenURL = u.String()

	switch {
	case c.ClientID == "":
		return nil, fmt.Errorf("client_id: required (is its environment variable set?)")
	case strings.Contains(c.ClientID, ":"):
		return nil, fmt.Errorf("client_id: must not contain ':' (HTTP Basic client authentication separates the id from the secret with it)")
	case !printable(c.ClientID):
		return nil, fmt.Errorf("client_id: contains a control character")
	case c.ClientSecret == "":
		return nil, fmt.Errorf("client_secret: required (is its environment variable set?)")
	case !printable(c.ClientSecret):
		return nil, fmt.Errorf("client_secret: contains a control character")
	case !printable(s.scope):
		return nil, fmt.Errorf("scope: contains a control character")
	}
	if c.RefreshBefore != nil {
		if s.refreshBefore = c.RefreshBefore.D(); s.refreshBefore < 0 {
			return nil, fmt.Errorf("refresh_before: must not be negative, got %s", s.refreshBefore)
		}
	}
	if c.Validity.IsSet() {
		s.validity = c.Validity.D().Truncate(time.Second)
		if s.validity < time.Second || s.validity > MaxValidity {
			return nil, fmt.Errorf("validity: must be between 1s and %s, got %s", MaxValidity, c.Validity.D())
		}
	}
	return s, nil
}

// printable reports whether s has no control characters.
func printable(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < ' ' || c == 0x7f {
			return false
		}
	}
	return true
}
