package nats

import (
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"time"
	"unicode"

	"hookd/internal/config"
)

// Defaults.
const (
	// DefaultTimeout bounds one publish: sending the message and waiting
	// for JetStream's acknowledgement.
	DefaultTimeout = 10 * time.Second
	// maxConnectTimeout bounds opening one connection to a server (TCP,
	// TLS and the NATS handshake); Timeout bounds it too when shorter.
	maxConnectTimeout = 5 * time.Second
)

// TypePlaceholder in the subject is replaced by the event's type (see
// SubjectToken).
const TypePlaceholder = "{type}"

// untyped is the subject token of an event without a type.
const untyped = "untyped"

// Options are a nats destination's own keys. Keys the engine reads (name,
// type, retry, ordering, head_timeout, concurrency, rate) are not part of them.
type Options struct {
	// URL is the NATS server to connect to, such as nats://127.0.0.1:4222,
	// or several separated by commas (tried in turn, as nats.go does).
	// Schemes: nats (default when omitted), tls, ws, wss. Credentials do not
	// belong in it: use Username and Password, or Token. Required.
	URL string `yaml:"url"`
	// Subject is the subject every message is published to. "{type}" in
	// it is replaced by the event's type (see SubjectToken). A JetStream
	// stream must capture it: hookd does not create streams. Required.
	Subject string `yaml:"subject"`
	// Timeout bounds one publish, until JetStream's ack. Default 10s.
	Timeout *config.Duration `yaml:"timeout"`
	// Dedupe sets the Nats-Msg-Id header to the event id, so that
	// JetStream drops a second copy published within the stream's
	// duplicate window (duplicate_window, 2m by default). An intentional
	// replay of the event within that window is dropped too. Default
	// false.
	Dedupe bool `yaml:"dedupe"`
	// Username and Password authenticate the connection (both or
	// neither). Not with Token.
	Username string `yaml:"username"`
	Password string `yaml:"password"`
	// Token authenticates the connection with a token. Not with Username
	// and Password.
	Token string `yaml:"token"`
}

// settings are validated Options with defaults applied.
type settings struct {
	servers        []string // normalized server URLs
	subject        string   // the template, TypePlaceholder included
	templated      bool     // subject contains TypePlaceholder
	timeout        time.Duration
	connectTimeout time.Duration
	dedupe         bool
	username       string
	password       string
	token          string
}

// validate checks o and applies defaults. Errors name the option and
// never contain a credential.
func (o *Options) validate() (*settings, error) {
	s := &settings{timeout: DefaultTimeout, dedupe: o.Dedupe}

	servers, err := parseServers(o.URL)
	if err != nil {
		return nil, err
	}
	s.servers = servers

	if err := checkSubject(o.Subject); err != nil {
		return nil, err
	}
	s.subject = o.Subject
	s.templated = strings.Contains(o.Subject, TypePlaceholder)

	if o.Timeout != nil {
		if s.timeout = o.Timeout.D(); s.timeout <= 0 {
			return nil, fmt.Errorf("timeout: must be positive, got %s", s.timeout)
		}
	}
	s.connectTimeout = min(s.timeout, maxConnectTimeout)

	switch {
	case o.Token != "" && (o.Username != "" || o.Password != ""):
		return nil, fmt.Errorf("token: cannot be combined with username and password (use one or the other)")
	case o.Username != "" && o.Password == "":
		return nil, fmt.Errorf("password: required with username")
	case o.Password != "" && o.Username == "":
		return nil, fmt.Errorf("username: required with password")
	}
	s.username, s.password, s.token = o.Username, o.Password, o.Token
	return s, nil
}

// parseServers splits and checks the url option: one URL or several
// separated by commas. A URL without a scheme gets nats://, as nats.go
// gives it.
func parseServers(raw string) ([]string, error) {
	if strings.TrimSpace(raw) == "" {
		return nil, fmt.Errorf("url: required")
	}
	var out []string
	for i, part := range strings.Split(raw, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			return nil, fmt.Errorf("url: server %d of the list is empty", i+1)
		}
		if !strings.Contains(part, "://") {
			part = "nats://" + part
		}
		u, err := url.Parse(part)
		if err != nil {
			// The parse error may quote the URL; a URL with a password in
			// it must not end up in a log.
			if strings.Contains(part, "@") {
				return nil, fmt.Errorf("url: server %d is not a valid URL", i+1)
			}
			return nil, fmt.Errorf("url: server %d: %v", i+1, unwrapURLError(err))
		}
		if u.User != nil {
			return nil, fmt.Errorf("url: server %d contains credentials: use the username and password, or token, options", i+1)
		}
		switch u.Scheme {
		case "nats", "tls", "ws", "wss":
		default:
			return nil, fmt.Errorf("url: scheme %q is not supported (want nats, tls, ws or wss)", u.Scheme)
		}
		if u.Hostname() == "" || u.Opaque != "" {
			return nil, fmt.Errorf("url: %q has no host", part)
		}
		if p := u.Port(); p != "" {
			if n, err := strconv.Atoi(p); err != nil || n < 1 || n > 65535 {
				return nil, fmt.Errorf("url: %q: port %q is out of range", part, p)
			}
		}
		if u.RawQuery != "" || u.Fragment != "" {
			return nil, fmt.Errorf("url: %q: a query or fragment is not supported", part)
		}
		out = append(out, part)
	}
	return out, nil
}

func unwrapURLError(err error) error {
	if ue, ok := err.(*url.Error); ok {
		return ue.Err
	}
	return err
}

// checkSubject checks a subject template: a literal NATS subject (tokens
// separated by dots, none empty, no wildcard, no white space), in which
// "{type}" may appear.
func checkSubject(subj string) error {
	if strings.TrimSpace(subj) == "" {
		return fmt.Errorf("subject: required")
	}
	literal := strings.ReplaceAll(subj, TypePlaceholder, "x")
	for _, r := range literal {
		switch {
		case r == '{' || r == '}':
			return fmt.Errorf("subject: %q has an unknown placeholder (only %s is supported)", subj, TypePlaceholder)
		case r == '*' || r == '>':
			return fmt.Errorf("subject: %q contains a wildcard (%c): a publish subject must be literal", subj, r)
		case unicode.IsSpace(r) || unicode.IsControl(r):
			return fmt.Errorf("subject: %q contains white space or a control character", subj)
		}
	}
	for _, tok := range strings.Split(literal, ".") {
		if tok == "" {
			return fmt.Errorf("subject: %q has an empty token (a leading, trailing or doubled dot)", subj)
		}
	}
	return nil
}

// SubjectToken is what "{type}" in the subject becomes for an event of
// type typ: typ with every character outside A-Z a-z 0-9 _ - . replaced by
// "_", and each empty dot-separated part (a leading, trailing or doubled
// dot) replaced by "_", so that the subject stays valid; "untyped" when typ
// is empty. The dots of a type stay, so "invoice.paid.v1" is three subject
// tokens that a stream's wildcards can select.
func SubjectToken(typ string) string {
	if typ == "" {
		return untyped
	}
	var b strings.Builder
	b.Grow(len(typ))
	for _, r := range typ { // invalid UTF-8 comes as one RuneError per byte
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '_', r == '-', r == '.':
			b.WriteRune(r)
		default:
			b.WriteByte('_')
		}
	}
	parts := strings.Split(b.String(), ".")
	for i, p := range parts {
		if p == "" {
			parts[i] = "_"
		}
	}
	return strings.Join(parts, ".")
}

// subjectFor returns the subject an event of type typ is published to.
func (s *settings) subjectFor(typ string) string {
	if !s.templated {
		return s.subject
	}
	return strings.ReplaceAll(s.subject, TypePlaceholder, SubjectToken(typ))
}
