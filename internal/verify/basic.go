package verify

import (
	"context"
	"encoding/base64"
	"fmt"
	"strings"
	"unicode/utf8"

	"gopkg.in/yaml.v3"

	"hookd/internal/config"
)

// ChallengeBasic is the WWW-Authenticate challenge of HTTP Basic (RFC 7617).
const ChallengeBasic = `Basic realm="hookd"`

// credMaxAuthorization bounds an Authorization header value before it is
// decoded: no credential hookd accepts is anywhere near as long.
const credMaxAuthorization = 4 << 10

func init() { Register("basic", newBasic) }

// basicOptions are the options of the basic method.
type basicOptions struct {
	// Users are the accepted username/password pairs.
	Users []basicUserOptions `yaml:"users"`
}

// basicUserOptions is one accepted user.
type basicUserOptions struct {
	// Username is the user name; it must not contain ':'.
	Username string `yaml:"username"`
	// Password is one password or a list of them (rotation).
	Password stringList `yaml:"password"`
}

type basicUser struct {
	name      []byte
	passwords [][]byte
}

// basicVerifier checks HTTP Basic credentials.
type basicVerifier struct {
	users []basicUser
}

func newBasic(env *Env, m config.Verify) (Verifier, error) {
	var o basicOptions
	if err := m.Decode(&o); err != nil {
		return nil, err
	}
	if len(o.Users) == 0 {
		return nil, fmt.Errorf("users: required (a list of {username, password})")
	}
	v := &basicVerifier{}
	seen := map[string]bool{}
	for i, u := range o.Users {
		f := fmt.Sprintf("users[%d]", i)
		switch {
		case u.Username == "":
			return nil, fmt.Errorf("%s.username: required (is its environment variable set?)", f)
		case strings.Contains(u.Username, ":"):
			return nil, fmt.Errorf("%s.username: must not contain ':' (HTTP Basic separates the username from the password with it)", f)
		case seen[u.Username]:
			return nil, fmt.Errorf("%s.username: %q is listed twice; list its passwords under one entry", f, u.Username)
		}
		seen[u.Username] = true
		pw, err := secretBytes(f+".password", u.Password, false, 0)
		if err != nil {
			return nil, err
		}
		v.users = append(v.users, basicUser{name: []byte(u.Username), passwords: pw})
	}
	return v, nil
}

// Verify accepts a request whose Authorization header carries the
// credentials of one of the users.
func (v *basicVerifier) Verify(_ context.Context, r *Request) error {
	vals := r.Header.Values("Authorization")
	if len(vals) == 0 {
		return WithChallenge(Unauthorized("HTTP Basic credentials are required"), ChallengeBasic)
	}
	user, pass, ok := "", "", false
	if len(vals) == 1 {
		user, pass, ok = credParseBasic(vals[0])
	}
	if !ok {
		return WithChallenge(Unauthorized("HTTP Basic credentials are required"), ChallengeBasic)
	}
	// Every user is compared, whichever matches, so that the time taken
	// says nothing about which usernames exist.
	match := false
	for _, u := range v.users {
		nameOK := Equal([]byte(user), u.name)
		passOK := MatchAny([]byte(pass), u.passwords)
		if nameOK && passOK {
			match = true
		}
	}
	if !match {
		return WithChallenge(Unauthorized("invalid HTTP Basic credentials"), ChallengeBasic)
	}
	return nil
}

// CredentialHeaders names the header that carries the credentials.
func (v *basicVerifier) CredentialHeaders() []string { return []string{"Authorization"} }

// credParseBasic parses an Authorization header value of the Basic scheme
// (RFC 7617): "Basic base64(user:password)", the scheme case-insensitive.
// It reports false for another scheme or a malformed value.
func credParseBasic(h string) (user, pass string, ok bool) {
	if len(h) > credMaxAuthorization {
		return "", "", false
	}
	scheme, rest, found := strings.Cut(h, " ")
	if !found || !strings.EqualFold(scheme, "Basic") {
		return "", "", false
	}
	rest = strings.Trim(rest, " \t")
	if rest == "" {
		return "", "", false
	}
	raw, err := base64.StdEncoding.DecodeString(rest)
	if err != nil {
		return "", "", false
	}
	user, pass, ok = strings.Cut(string(raw), ":")
	if !ok {
		return "", "", false
	}
	return user, pass, true
}

// credParseBearer parses an Authorization header value of the Bearer
// scheme (RFC 6750 §2.1). isBearer reports whether the scheme is Bearer;
// tok is empty when the value after it is empty or malformed.
func credParseBearer(h string) (tok string, isBearer bool) {
	scheme, rest, _ := strings.Cut(h, " ")
	if !strings.EqualFold(scheme, "Bearer") {
		return "", false
	}
	rest = strings.Trim(rest, " \t")
	if rest == "" || strings.ContainsAny(rest, " \t") {
		return "", true
	}
	return rest, true
}

// stringList is an option written as one string or a list of strings,
// such as a secret list (every listed value is accepted, which is how a
// secret rotates) or an audience list.
type stringList []string

// UnmarshalYAML accepts a string or a list of strings.
func (s *stringList) UnmarshalYAML(n *yaml.Node) error {
	switch n.Kind {
	case yaml.ScalarNode:
		if n.Tag == "!!null" {
			*s = nil
			return nil
		}
		*s = stringList{n.Value}
		return nil
	case yaml.SequenceNode:
		out := make(stringList, 0, len(n.Content))
		for _, c := range n.Content {
			if c.Kind != yaml.ScalarNode {
				return fmt.Errorf("line %d: want a string", c.Line)
			}
			out = append(out, c.Value)
		}
		*s = out
		return nil
	}
	return fmt.Errorf("line %d: want a string or a list of strings", n.Line)
}

// secretBytes validates a secret list named field and returns it as bytes.
// inHeader says the secret travels as an HTTP header value as is, which
// cannot start or end with whitespace nor hold control characters. Errors
// name the field and its index, never the value. A secret shorter than
// minLen characters is refused: such a secret is chosen by the operator,
// and a short one can be guessed.
func secretBytes(field string, vals []string, inHeader bool, minLen int) ([][]byte, error) {
	if len(vals) == 0 {
		return nil, fmt.Errorf("%s: required", field)
	}
	out := make([][]byte, 0, len(vals))
	for i, s := range vals {
		f := field
		if len(vals) > 1 {
			f = fmt.Sprintf("%s[%d]", field, i)
		}
		if s == "" {
			return nil, fmt.Errorf("%s: empty (is its environment variable set?)", f)
		}
		if inHeader {
			if strings.TrimSpace(s) != s {
				return nil, fmt.Errorf("%s: starts or ends with whitespace, which an HTTP header value cannot carry", f)
			}
			for j := 0; j < len(s); j++ {
				if c := s[j]; (c < 0x20 && c != '\t') || c == 0x7f {
					return nil, fmt.Errorf("%s: contains a control character, which an HTTP header value cannot carry", f)
				}
			}
		}
		if n := utf8.RuneCountInString(s); n < minLen {
			return nil, fmt.Errorf("%s: shorter than %d characters (got %d); use a long random value, such as 32 random hex characters", f, minLen, n)
		}
		out = append(out, []byte(s))
	}
	return out, nil
}
