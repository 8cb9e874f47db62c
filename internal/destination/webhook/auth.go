package webhook

import (
	"encoding/base64"
	"fmt"
	"net/http"
	"strings"

	"hookd/internal/destination/oauth"
)

// Auth types.
const (
	AuthHeader = "header"
	AuthBasic  = "basic"
	AuthOAuth2 = "oauth2"
)

// AuthOptions is the auth option: one of
//
//	{type: header, header: X-Api-Key, value: …}
//	{type: basic, username: …, password: …}
//	{type: oauth2, token_url: …, client_id: …, client_secret: …, auth_style: basic, scope: …, audience: …, params: {…}, refresh_before: 30m, validity: 1}
//
// Keys of another type are errors. Secret values are never printed.
type AuthOptions struct {
	// Type is header, basic or oauth2. Required.
	Type string `yaml:"type"`
	// Header is the header's name (type header), such as X-Api-Key.
	Header string `yaml:"header"`
	// Value is the header's value (type header). Secret.
	Value string `yaml:"value"`
	// Username is the user name (type basic); must not contain ':'.
	Username string `yaml:"username"`
	// Password is the password (type basic). Secret.
	Password string `yaml:"password"`
	// Config holds the oauth2 keys (token_url, client_id, client_secret,
	// auth_style, scope, audience, params, refresh_before, validity): see
	// oauth.Config.
	oauth.Config `yaml:",inline"`
}

// authSettings is validated AuthOptions.
type authSettings struct {
	typ string
	// header and value are added to every request (header and basic).
	header, value string
	// oauth is the oauth2 configuration.
	oauth oauth.Config
}

// validate checks a; static are the static headers already configured.
// Errors start with "auth." and never print a secret.
func (a *AuthOptions) validate(static http.Header) (*authSettings, error) {
	s := &authSettings{typ: a.Type}
	used := map[string]bool{
		"header": a.Header != "", "value": a.Value != "",
		"username": a.Username != "", "password": a.Password != "",
		"token_url": a.TokenURL != "", "client_id": a.ClientID != "", "client_secret": a.ClientSecret != "",
		"auth_style": a.AuthStyle != "", "scope": len(a.Scope) > 0, "audience": a.Audience != "", "params": len(a.Params) > 0,
		"refresh_before": a.RefreshBefore != nil, "validity": a.Validity.IsSet(),
	}
	var allowed []string
	switch a.Type {
	case AuthHeader:
		allowed = []string{"header", "value"}
		lower := strings.ToLower(a.Header)
		switch {
		case a.Header == "":
			return nil, fmt.Errorf("auth.header: required for type header")
		case !validHeaderName(a.Header):
			return nil, fmt.Errorf("auth.header: %q is not a valid header name", a.Header)
		case reserved[lower] != "":
			return nil, fmt.Errorf("auth.header: %s cannot be set (%s)", a.Header, reserved[lower])
		case strings.HasPrefix(lower, "hookd-"):
			return nil, fmt.Errorf("auth.header: %s cannot be set (Hookd-* headers are set by hookd)", a.Header)
		case a.Value == "":
			return nil, fmt.Errorf("auth.value: required for type header (is its environment variable set?)")
		case !validHeaderValue(a.Value):
			return nil, fmt.Errorf("auth.value: contains a control character")
		}
		s.header, s.value = http.CanonicalHeaderKey(a.Header), a.Value
	case AuthBasic:
		allowed = []string{"username", "password"}
		switch {
		case a.Username == "":
			return nil, fmt.Errorf("auth.username: required for type basic")
		case strings.Contains(a.Username, ":"):
			return nil, fmt.Errorf("auth.username: must not contain ':'")
		case !validHeaderValue(a.Username):
			return nil, fmt.Errorf("auth.username: contains a control character")
		case !validHeaderValue(a.Password):
			return nil, fmt.Errorf("auth.password: contains a control character")
		}
		s.header = "Authorization"
		s.value = "Basic " + base64.StdEncoding.EncodeToString([]byte(a.Username+":"+a.Password))
	case AuthOAuth2:
		allowed = []string{"token_url", "client_id", "client_secret", "auth_style", "scope", "audience", "params", "refresh_before", "validity"}
		if err := a.Config.Validate(); err != nil {
			return nil, fmt.Errorf("auth.%w", err)
		}
		s.header, s.oauth = "Authorization", a.Config
	case "":
		return nil, fmt.Errorf("auth.type: required (header, basic or oauth2)")
	default:
		return nil, fmt.Errorf("auth.type: %q is not supported (want header, basic or oauth2)", a.Type)
	}
	for _, k := range []string{"header", "value", "username", "password", "token_url", "client_id", "client_secret", "auth_style", "scope", "audience", "params", "refresh_before", "validity"} {
		if used[k] && !contains(allowed, k) {
			return nil, fmt.Errorf("auth.%s: not an option of type %s", k, a.Type)
		}
	}
	for k := range static {
		if strings.EqualFold(k, s.header) {
			return nil, fmt.Errorf("headers: %s is set by auth", k)
		}
	}
	return s, nil
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}
