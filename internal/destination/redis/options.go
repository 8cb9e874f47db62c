package redis

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"hookd/internal/config"
)

// DefaultTimeout bounds one XADD (connecting included) when the timeout
// option is not set.
const DefaultTimeout = 5 * time.Second

// Placeholders the stream option may contain.
const (
	// PlaceholderType is replaced by the event's type.
	PlaceholderType = "{type}"
	// PlaceholderSource is replaced by the name of the event's source.
	PlaceholderSource = "{source}"
)

// Options are a redis destination's own keys. Keys the engine reads (name,
// type, retry, ordering, head_timeout, concurrency, rate) are not part of them.
type Options struct {
	// URL locates the Redis server:
	// redis://[user:password@]host:port/db, or rediss://… for TLS. The
	// query parameters go-redis documents for ParseURL are accepted
	// (dial_timeout, read_timeout, max_retries, skip_verify…). Required.
	// It is never printed: it may hold a password.
	URL string `yaml:"url"`
	// Stream is the key of the stream entries are appended to. It may
	// contain {type} and {source}, replaced by the event's type and
	// source. Required.
	Stream string `yaml:"stream"`
	// MaxLen, when positive, trims the stream on every XADD to about
	// MaxLen entries (MAXLEN ~ MaxLen: Redis trims whole internal nodes
	// only, so the stream may hold up to one node, stream-node-max-entries
	// (default 100), more). 0 (the default) never trims.
	MaxLen int64 `yaml:"maxlen"`
	// MaxLenExact trims to exactly MaxLen entries (MAXLEN = MaxLen)
	// instead: precise, but more work for Redis on every XADD. It needs
	// MaxLen.
	MaxLenExact bool `yaml:"maxlen_exact"`
	// Timeout bounds one XADD, connecting included. Default 5s.
	Timeout *config.Duration `yaml:"timeout"`
}

// settings are validated Options with defaults applied.
type settings struct {
	// client is the go-redis configuration parsed from the URL, with
	// hookd's defaults; New adds the dialer.
	client *goredis.Options
	// addr is host:port, for messages (never the URL).
	addr string
	// stream is the stream option as written; templated says it holds
	// placeholders to substitute.
	stream    string
	templated bool
	maxLen    int64
	exact     bool
	timeout   time.Duration
}

// placeholderRE finds {…} in the stream option.
var placeholderRE = regexp.MustCompile(`\{[^{}]*\}`)

// validate checks o and applies defaults. Errors name the option and never
// contain the URL's password.
func (o *Options) validate() (*settings, error) {
	s := &settings{timeout: DefaultTimeout}

	if o.Timeout != nil {
		if s.timeout = o.Timeout.D(); s.timeout <= 0 {
			return nil, fmt.Errorf("timeout: must be positive, got %s", s.timeout)
		}
	}

	opts, addr, err := parseURL(o.URL, s.timeout)
	if err != nil {
		return nil, err
	}
	s.client, s.addr = opts, addr

	if strings.TrimSpace(o.Stream) == "" {
		return nil, errors.New("stream: required (the key of the Redis stream, such as hookd:events or hookd:{type})")
	}
	for _, p := range placeholderRE.FindAllString(o.Stream, -1) {
		switch p {
		case PlaceholderType, PlaceholderSource:
			s.templated = true
		default:
			return nil, fmt.Errorf("stream: unknown placeholder %s (want %s or %s)", p, PlaceholderType, PlaceholderSource)
		}
	}
	s.stream = o.Stream

	switch {
	case o.MaxLen < 0:
		return nil, fmt.Errorf("maxlen: must be 0 (no trimming) or positive, got %d", o.MaxLen)
	case o.MaxLenExact && o.MaxLen == 0:
		return nil, errors.New("maxlen_exact: needs maxlen (the length to trim the stream to)")
	}
	s.maxLen, s.exact = o.MaxLen, o.MaxLenExact
	return s, nil
}

// urlForm is how the url option is written, for error messages.
const urlForm = "redis://[user:password@]host:port/db or rediss://…"

// parseURL parses the url option with go-redis's ParseURL, accepting only
// the redis and rediss schemes with an explicit host, and fills in hookd's
// defaults for what the URL's query leaves unset: socket read and write
// timeouts of timeout, and no re-sending of a command within one attempt.
// It returns the options and host:port. Errors never contain the password.
func parseURL(raw string, timeout time.Duration) (*goredis.Options, string, error) {
	if strings.TrimSpace(raw) == "" {
		return nil, "", fmt.Errorf("url: required (%s)", urlForm)
	}
	if !strings.Contains(raw, "://") {
		// Whatever precedes a colon may be a user name or a host, not a
		// scheme: do not repeat it.
		return nil, "", fmt.Errorf("url: no scheme (want %s)", urlForm)
	}
	redact := secrets(raw)
	u, err := url.Parse(raw)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err // the url.Error repeats the whole URL
		}
		return nil, "", fmt.Errorf("url: invalid (want %s): %s", urlForm, redact(err.Error()))
	}
	switch {
	case u.Scheme == "redis", u.Scheme == "rediss":
	case u.Scheme == "":
		return nil, "", fmt.Errorf("url: no scheme (want %s)", urlForm)
	default:
		return nil, "", fmt.Errorf("url: scheme %q is not supported (want redis or rediss)", u.Scheme)
	}
	if u.Hostname() == "" {
		return nil, "", fmt.Errorf("url: no host (want %s)", urlForm)
	}
	if p := u.Port(); p != "" {
		if n, err := strconv.Atoi(p); err != nil || n < 1 || n > 65535 {
			return nil, "", fmt.Errorf("url: port %s is out of range", p)
		}
	}
	if u.Fragment != "" {
		return nil, "", errors.New("url: has a #fragment, which means nothing here")
	}
	opts, err := goredis.ParseURL(raw)
	if err != nil {
		return nil, "", fmt.Errorf("url: %s", redact(strings.TrimPrefix(err.Error(), "redis: ")))
	}
	if opts.DB < 0 {
		return nil, "", fmt.Errorf("url: database number %d is negative", opts.DB)
	}
	q := u.Query()
	if !q.Has("read_timeout") {
		opts.ReadTimeout = timeout
	}
	if !q.Has("write_timeout") {
		opts.WriteTimeout = timeout
	}
	if !q.Has("max_retries") {
		// One attempt sends XADD at most once: re-sending after a lost
		// reply would add a second entry at once. hookd's retry policy
		// retries the attempt.
		opts.MaxRetries = -1
	}
	// One dial per connection: a refused connection fails the attempt at
	// once, and the retry policy spaces out the next.
	opts.DialerRetries = 1
	// Socket deadlines follow the context, so timeout (and the caller's
	// deadline) bounds the whole XADD.
	opts.ContextTimeoutEnabled = true
	return opts, net.JoinHostPort(u.Hostname(), portOf(u)), nil
}

// portOf is u's port, or Redis's default.
func portOf(u *url.URL) string {
	if p := u.Port(); p != "" {
		return p
	}
	return "6379"
}

// secrets returns a function that blanks out the userinfo of raw (as
// written and unescaped, whole and each part) in a message.
func secrets(raw string) func(string) string {
	var hide []string
	if _, rest, ok := strings.Cut(raw, "://"); ok {
		authority := rest
		if i := strings.IndexAny(authority, "/?#"); i >= 0 {
			authority = authority[:i]
		}
		if i := strings.LastIndex(authority, "@"); i >= 0 {
			userinfo := authority[:i]
			hide = append(hide, userinfo)
			user, pass, _ := strings.Cut(userinfo, ":")
			hide = append(hide, user, pass)
			for _, p := range []string{userinfo, user, pass} {
				if un, err := url.PathUnescape(p); err == nil {
					hide = append(hide, un)
				}
			}
		}
	}
	// Longest first, so that a part never leaves the rest of a whole
	// visible.
	sort.Slice(hide, func(i, j int) bool { return len(hide[i]) > len(hide[j]) })
	return func(msg string) string {
		for _, h := range hide {
			if h != "" {
				msg = strings.ReplaceAll(msg, h, "***")
			}
		}
		return msg
	}
}
