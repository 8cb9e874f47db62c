package webhook

import (
	"fmt"
	"net/http"
	"net/url"
	"sort"
	"strings"
	"time"

	"hookd/internal/config"
	"hookd/internal/destination"
	"hookd/internal/sign"
)

// Defaults (SPEC §3, seeds 001 and 003: a connection within ~5 s, an
// answer within 60 s).
const (
	// DefaultMethod is the request method when none is configured.
	DefaultMethod = http.MethodPost
	// DefaultTimeout bounds one attempt as a whole: connecting, sending,
	// waiting for the answer and reading its excerpt.
	DefaultTimeout = 60 * time.Second
	// DefaultConnectTimeout bounds opening a connection (TCP and TLS).
	DefaultConnectTimeout = 5 * time.Second
)

// Options are an http destination's own keys. Keys the engine reads
// (name, type, retry, ordering, head_timeout, concurrency, rate) are not part of them.
type Options struct {
	// URL is where events are sent: an absolute http:// or https:// URL,
	// without credentials. Required. The SSRF guard (docs/egress.md)
	// requires https unless the host is allow-listed for http or is an
	// address in egress.allow_private, and refuses private, loopback and
	// link-local addresses unless they are in egress.allow_private.
	URL string `yaml:"url"`
	// Method is POST (default), PUT or PATCH.
	Method string `yaml:"method"`
	// Headers are static headers added to every request. They cannot
	// replace the headers hookd sets itself (webhook-id, webhook-timestamp,
	// webhook-signature, Hookd-*, Content-Type) nor framing headers (Host,
	// Content-Length, Transfer-Encoding, Connection…). User-Agent may be
	// replaced.
	Headers map[string]string `yaml:"headers"`
	// Timeout bounds one attempt as a whole. Default 60s.
	Timeout *config.Duration `yaml:"timeout"`
	// ConnectTimeout bounds opening a connection, TLS handshake included.
	// Default 5s (or Timeout, when that is shorter).
	ConnectTimeout *config.Duration `yaml:"connect_timeout"`
	// MaxResponse is how many bytes of the answer are read and kept in the
	// attempt log; the rest is discarded unread. Default and maximum 1KiB.
	MaxResponse *config.Size `yaml:"max_response"`
	// Sign signs every attempt (Standard Webhooks: one v1 HMAC-SHA256
	// signature per whsec_ secret, one v1a ed25519 signature per whsk_ key,
	// so that receivers verify during a rotation). See docs/signing.md.
	Sign *sign.Config `yaml:"sign"`
	// Auth authenticates every request: a static header, HTTP Basic, or an
	// OAuth2 client-credentials bearer token (see AuthOptions and
	// docs/destination-http.md).
	Auth *AuthOptions `yaml:"auth"`
}

// settings are validated Options with defaults applied.
type settings struct {
	url            string
	method         string
	headers        http.Header
	timeout        time.Duration
	connectTimeout time.Duration
	maxResponse    int64
	signer         *sign.Signer
	auth           *authSettings
}

// reserved are headers a static header may not set: hookd's own, and the
// ones that frame the message. Lower case.
var reserved = map[string]string{
	"webhook-id":        "set by hookd",
	"webhook-timestamp": "set by hookd",
	"webhook-signature": "set by hookd",
	"content-type":      "the event's own Content-Type is sent",
	"content-length":    "framing header",
	"transfer-encoding": "framing header",
	"host":              "taken from url",
	"connection":        "hop-by-hop header",
	"keep-alive":        "hop-by-hop header",
	"proxy-connection":  "hop-by-hop header",
	"upgrade":           "hop-by-hop header",
	"te":                "hop-by-hop header",
	"trailer":           "hop-by-hop header",
}

// MaxHeaders bounds a destination's static headers.
const MaxHeaders = 64

// validate checks o and applies defaults. Errors name the option.
func (o *Options) validate() (*settings, error) {
	s := &settings{
		method:         DefaultMethod,
		timeout:        DefaultTimeout,
		connectTimeout: DefaultConnectTimeout,
		maxResponse:    destination.MaxExcerpt,
	}

	if strings.TrimSpace(o.URL) == "" {
		return nil, fmt.Errorf("url: required")
	}
	u, err := url.Parse(o.URL)
	if err != nil {
		return nil, fmt.Errorf("url: invalid: %v", redactURLError(err))
	}
	switch {
	case u.Scheme != "http" && u.Scheme != "https":
		return nil, fmt.Errorf("url: scheme %q is not supported (want an absolute http:// or https:// URL)", u.Scheme)
	case u.Host == "" || u.Hostname() == "":
		return nil, fmt.Errorf("url: no host (want an absolute http:// or https:// URL)")
	case u.User != nil:
		return nil, fmt.Errorf("url: credentials in the URL are not allowed (use headers)")
	}
	u.Fragment, u.RawFragment = "", ""
	s.url = u.String()

	if o.Method != "" {
		m := strings.ToUpper(strings.TrimSpace(o.Method))
		switch m {
		case http.MethodPost, http.MethodPut, http.MethodPatch:
			s.method = m
		default:
			return nil, fmt.Errorf("method: %q is not supported (want POST, PUT or PATCH)", o.Method)
		}
	}

	if len(o.Headers) > MaxHeaders {
		return nil, fmt.Errorf("headers: %d headers, more than %d", len(o.Headers), MaxHeaders)
	}
	s.headers = make(http.Header, len(o.Headers))
	names := make([]string, 0, len(o.Headers))
	for name := range o.Headers {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		value := o.Headers[name]
		lower := strings.ToLower(name)
		switch {
		case !validHeaderName(name):
			return nil, fmt.Errorf("headers: %q is not a valid header name", name)
		case reserved[lower] != "":
			return nil, fmt.Errorf("headers: %s cannot be set (%s)", name, reserved[lower])
		case strings.HasPrefix(lower, "hookd-"):
			return nil, fmt.Errorf("headers: %s cannot be set (Hookd-* headers are set by hookd)", name)
		case !validHeaderValue(value):
			// The value may be a secret: never print it.
			return nil, fmt.Errorf("headers: %s: value contains a control character", name)
		}
		canon := http.CanonicalHeaderKey(name)
		if _, dup := s.headers[canon]; dup {
			return nil, fmt.Errorf("headers: %s is given twice", name)
		}
		s.headers[canon] = []string{value}
	}

	if o.Timeout != nil {
		if s.timeout = o.Timeout.D(); s.timeout <= 0 {
			return nil, fmt.Errorf("timeout: must be positive, got %s", s.timeout)
		}
	}
	if o.ConnectTimeout != nil {
		if s.connectTimeout = o.ConnectTimeout.D(); s.connectTimeout <= 0 {
			return nil, fmt.Errorf("connect_timeout: must be positive, got %s", s.connectTimeout)
		}
		if s.connectTimeout > s.timeout {
			return nil, fmt.Errorf("connect_timeout: %s is longer than timeout %s", s.connectTimeout, s.timeout)
		}
	} else {
		s.connectTimeout = min(s.connectTimeout, s.timeout)
	}
	if o.MaxResponse != nil {
		n := int64(*o.MaxResponse)
		if n > destination.MaxExcerpt {
			return nil, fmt.Errorf("max_response: at most %d bytes, got %d", destination.MaxExcerpt, n)
		}
		s.maxResponse = n
	}
	if o.Sign != nil {
		var err error
		if s.signer, err = sign.New(*o.Sign); err != nil {
			return nil, fmt.Errorf("sign: %w", err)
		}
		idH, tsH, sigH := s.signer.HeaderNames()
		for _, name := range []string{idH, tsH, sigH} {
			for k := range s.headers {
				if strings.EqualFold(k, name) {
					return nil, fmt.Errorf("headers: %s is set by sign", name)
				}
			}
		}
	}
	if o.Auth != nil {
		var err error
		if s.auth, err = o.Auth.validate(s.headers); err != nil {
			return nil, err
		}
		if s.signer != nil {
			idH, tsH, sigH := s.signer.HeaderNames()
			for _, name := range []string{idH, tsH, sigH} {
				if strings.EqualFold(s.auth.header, name) {
					return nil, fmt.Errorf("auth.header: %s is set by sign", name)
				}
			}
		}
	}
	return s, nil
}

// redactURLError keeps url.Parse's reason but not the URL, which may hold
// a token in its query.
func redactURLError(err error) error {
	if ue, ok := err.(*url.Error); ok {
		return ue.Err
	}
	return err
}

// validHeaderName reports whether s is an RFC 9110 token.
func validHeaderName(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		case strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0:
		default:
			return false
		}
	}
	return true
}

// validHeaderValue reports whether s has no control characters other than
// horizontal tab.
func validHeaderValue(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; (c < ' ' && c != '\t') || c == 0x7f {
			return false
		}
	}
	return true
}

// headerSafe returns s with control characters (a CR or LF from an
// untrusted event type, say) replaced, so a value taken from an event can
// never break the request or inject a header.
func headerSafe(s string) string {
	if validHeaderValue(s) {
		return s
	}
	return strings.Map(func(r rune) rune {
		if (r < ' ' && r != '\t') || r == 0x7f {
			return '?'
		}
		return r
	}, s)
}
