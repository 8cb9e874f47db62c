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
	"sort"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

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

// Client authentication styles (auth_style).
const (
	// AuthStyleBasic sends client_id and client_secret by HTTP Basic, each
	// form-encoded first (RFC 6749 §2.3.1). The default.
	AuthStyleBasic = "basic"
	// AuthStylePost sends client_id and client_secret as form parameters
	// in the request body, and no Authorization header (RFC 6749 §2.3.1).
	AuthStylePost = "post"
)

// Limits of the options sent to the token endpoint.
const (
	// MaxScope bounds the space-joined scope.
	MaxScope = 4 << 10
	// MaxAudience bounds audience.
	MaxAudience = 2 << 10
	// MaxParams bounds the number of extra form parameters.
	MaxParams = 32
	// MaxParamName bounds an extra parameter's name.
	MaxParamName = 128
	// MaxParamValue bounds an extra parameter's value.
	MaxParamValue = 4 << 10
)

// reservedParams are the form parameters hookd sets itself; params may
// not name them (in any case).
var reservedParams = map[string]string{
	"grant_type":    "hookd sends grant_type=client_credentials",
	"client_id":     "use client_id",
	"client_secret": "use client_secret",
	"scope":         "use scope",
	"audience":      "use audience",
}

// Config is an oauth2 destination auth's options.
type Config struct {
	// TokenURL is the token endpoint: an absolute http:// or https:// URL
	// without credentials. Required. With an SSRF guard it is checked like
	// a destination URL, and every connection is dialed through the guard.
	TokenURL string `yaml:"token_url"`
	// ClientID is the client id. Required.
	ClientID string `yaml:"client_id"`
	// ClientSecret is the client secret. Required. Never logged.
	ClientSecret string `yaml:"client_secret"`
	// AuthStyle is how the client authenticates: "basic" (the default)
	// sends client_id and client_secret by HTTP Basic, each form-encoded
	// first as RFC 6749 §2.3.1 requires; "post" sends them as form
	// parameters in the body instead, without an Authorization header.
	AuthStyle string `yaml:"auth_style"`
	// Scope is sent as the scope parameter, space-joined, when not empty:
	// one string of space-separated scopes, or a list of scopes.
	Scope Scope `yaml:"scope"`
	// Audience is sent as the audience parameter when not empty (Auth0
	// asks for the API's identifier there).
	Audience string `yaml:"audience"`
	// Params are extra form parameters sent with every token request
	// (resource, for instance). They may not name grant_type, client_id,
	// client_secret, scope or audience.
	Params map[string]string `yaml:"params"`
	// RefreshBefore is how long before its expiry a token is replaced.
	// Default 30m. When it is not shorter than a token's lifetime, the
	// token is replaced halfway through its lifetime instead.
	RefreshBefore *config.Duration `yaml:"refresh_before"`
	// Validity is a token's lifetime when the token endpoint gives no
	// expires_in: a duration ("1h", "90m") or a bare number of hours (seed
	// 000). Default 1h.
	Validity Validity `yaml:"validity"`
}

// Scope is the scope option: a string of space-separated scopes or a
// list of scopes (RFC 6749 §3.3). It is sent space-joined.
type Scope []string

// UnmarshalYAML reads a string ("a b") or a list of strings ([a, b]).
func (s *Scope) UnmarshalYAML(n *yaml.Node) error {
	switch n.Kind {
	case yaml.ScalarNode:
		var v string
		if err := n.Decode(&v); err != nil {
			return err
		}
		*s = strings.Fields(v)
		return nil
	case yaml.SequenceNode:
		var v []string
		if err := n.Decode(&v); err != nil {
			return err
		}
		*s = v
		return nil
	}
	return fmt.Errorf("line %d: scope: want a string or a list of strings", n.Line)
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
	tokenURL     string
	clientSecret string
	// basicUser and basicPass are the form-encoded client_id and
	// client_secret for HTTP Basic; empty with auth_style post.
	basicUser, basicPass string
	// body is the token request's form, encoded (it never changes).
	body          string
	refreshBefore time.Duration
	validity      time.Duration
}

func (c *Config) settings() (*settings, error) {
	s := &settings{
		clientSecret:  c.ClientSecret,
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
	case !printable(c.ClientID):
		return nil, fmt.Errorf("client_id: contains a control character")
	case c.ClientSecret == "":
		return nil, fmt.Errorf("client_secret: required (is its environment variable set?)")
	case !printable(c.ClientSecret):
		return nil, fmt.Errorf("client_secret: contains a control character")
	}
	form := url.Values{"grant_type": {"client_credentials"}}
	switch c.AuthStyle {
	case "", AuthStyleBasic:
		// RFC 6749 §2.3.1: the id and the secret are encoded with the
		// application/x-www-form-urlencoded algorithm before they are
		// used as the Basic user name and password (so ':' in the id is
		// sent as %3A and a space as '+').
		s.basicUser, s.basicPass = url.QueryEscape(c.ClientID), url.QueryEscape(c.ClientSecret)
	case AuthStylePost:
		form.Set("client_id", c.ClientID)
		form.Set("client_secret", c.ClientSecret)
	default:
		return nil, fmt.Errorf("auth_style: %q is not supported (want basic or post)", c.AuthStyle)
	}
	if scope, err := c.Scope.joined(); err != nil {
		return nil, err
	} else if scope != "" {
		form.Set("scope", scope)
	}
	if aud := strings.TrimSpace(c.Audience); aud != "" {
		switch {
		case len(aud) > MaxAudience:
			return nil, fmt.Errorf("audience: longer than %d bytes", MaxAudience)
		case !printable(aud):
			return nil, fmt.Errorf("audience: contains a control character")
		}
		form.Set("audience", aud)
	}
	if len(c.Params) > MaxParams {
		return nil, fmt.Errorf("params: more than %d parameters", MaxParams)
	}
	names := make([]string, 0, len(c.Params))
	for k := range c.Params {
		names = append(names, k)
	}
	sort.Strings(names) // the first bad one is named, the same each time
	for _, k := range names {
		v := c.Params[k]
		switch {
		case k == "":
			return nil, fmt.Errorf("params: a parameter has no name")
		case len(k) > MaxParamName || !visibleASCII(k):
			return nil, fmt.Errorf("params: %q is not a parameter name (visible ASCII, at most %d bytes)", trimForError(k), MaxParamName)
		case reservedParams[strings.ToLower(k)] != "":
			return nil, fmt.Errorf("params.%s: cannot be set in params (%s)", k, reservedParams[strings.ToLower(k)])
		case len(v) > MaxParamValue:
			return nil, fmt.Errorf("params.%s: longer than %d bytes", k, MaxParamValue)
		case !printable(v):
			return nil, fmt.Errorf("params.%s: contains a control character", k)
		}
		form.Set(k, v)
	}
	s.body = form.Encode()
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

// joined validates the scopes (RFC 6749 §3.3 scope-token: visible ASCII
// except '"' and backslash) and returns them space-joined.
func (sc Scope) joined() (string, error) {
	for _, t := range sc {
		if t == "" {
			return "", fmt.Errorf("scope: an empty scope in the list")
		}
		for i := 0; i < len(t); i++ {
			if c := t[i]; c < 0x21 || c > 0x7e || c == '"' || c == '\\' {
				return "", fmt.Errorf("scope: %q is not a scope (visible ASCII without spaces, quotes or backslashes)", trimForError(t))
			}
		}
	}
	joined := strings.Join(sc, " ")
	if len(joined) > MaxScope {
		return "", fmt.Errorf("scope: longer than %d bytes", MaxScope)
	}
	return joined, nil
}

// trimForError bounds a configured value quoted in an error.
func trimForError(s string) string {
	if len(s) > 64 {
		return s[:64] + "…"
	}
	return s
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
