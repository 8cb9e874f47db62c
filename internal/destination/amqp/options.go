package amqp

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"strings"
	"time"

	amqp091 "github.com/rabbitmq/amqp091-go"

	"hookd/internal/config"
)

// DefaultTimeout bounds one delivery attempt when timeout is not set.
const DefaultTimeout = 10 * time.Second

// TypePlaceholder in routing_key is replaced by the event's type.
const TypePlaceholder = "{type}"

// maxShortString is the longest AMQP 0-9-1 short string (exchange names,
// routing keys) in bytes.
const maxShortString = 255

// Options are an amqp destination's own keys. Keys the engine reads (name,
// type, retry, ordering, head_timeout, concurrency, rate) are not part of them.
type Options struct {
	// URL is the broker: amqp://user:password@host:port/vhost or amqps://…
	// (TLS). Required. Its password never appears in errors. Query
	// parameters of the RabbitMQ URI spec (heartbeat, channel_max,
	// cacertfile, certfile, keyfile, server_name_indication,
	// auth_mechanism) are honoured.
	URL string `yaml:"url"`
	// Exchange is the exchange published to. Default "": the default
	// exchange, which routes to the queue named by the routing key. hookd
	// declares nothing: the exchange must exist.
	Exchange string `yaml:"exchange"`
	// RoutingKey is the routing key of every message. Required. The
	// placeholder {type} is replaced by the event's type
	// ("orders.{type}" → "orders.order.paid").
	RoutingKey string `yaml:"routing_key"`
	// Timeout bounds one delivery attempt: connecting when needed,
	// publishing and waiting for the broker's confirm. Default 10s.
	Timeout *config.Duration `yaml:"timeout"`
	// Mandatory publishes with the mandatory flag (default true): a
	// message no queue is bound for is returned by the broker and the
	// attempt fails with a retriable "unroutable" error, instead of being
	// dropped silently and counted as delivered.
	Mandatory *bool `yaml:"mandatory"`
}

// settings are validated Options with defaults applied.
type settings struct {
	url        string // as configured (with its password): only for dialing
	redacted   string // scheme://host:port/vhost, no credentials: for errors
	hostport   string // the URL's host[:port], as written: for the SSRF guard
	exchange   string
	routingKey string
	keyHasType bool // routingKey contains TypePlaceholder
	timeout    time.Duration
	mandatory  bool
}

// validate checks o and applies defaults. Errors name the option and
// never contain the URL's password.
func (o *Options) validate() (*settings, error) {
	s := &settings{timeout: DefaultTimeout, mandatory: true}

	if err := s.parseURL(o.URL); err != nil {
		return nil, err
	}

	if len(o.Exchange) > maxShortString {
		return nil, fmt.Errorf("exchange: longer than %d bytes", maxShortString)
	}
	if hasControl(o.Exchange) {
		return nil, fmt.Errorf("exchange: %q contains a control character", o.Exchange)
	}
	if strings.TrimSpace(o.Exchange) != o.Exchange {
		return nil, fmt.Errorf("exchange: %q has leading or trailing spaces", o.Exchange)
	}
	s.exchange = o.Exchange

	if strings.TrimSpace(o.RoutingKey) == "" {
		return nil, fmt.Errorf("routing_key: required")
	}
	if hasControl(o.RoutingKey) {
		return nil, fmt.Errorf("routing_key: %q contains a control character", o.RoutingKey)
	}
	if p := unknownPlaceholder(o.RoutingKey); p != "" {
		return nil, fmt.Errorf("routing_key: unknown placeholder %s (only %s is replaced)", p, TypePlaceholder)
	}
	s.routingKey = o.RoutingKey
	s.keyHasType = strings.Contains(o.RoutingKey, TypePlaceholder)
	if lit := strings.ReplaceAll(o.RoutingKey, TypePlaceholder, ""); len(lit) > maxShortString {
		return nil, fmt.Errorf("routing_key: longer than %d bytes", maxShortString)
	}

	if o.Timeout != nil {
		if o.Timeout.D() <= 0 {
			return nil, fmt.Errorf("timeout: must be positive, got %s", o.Timeout.D())
		}
		s.timeout = o.Timeout.D()
	}
	if o.Mandatory != nil {
		s.mandatory = *o.Mandatory
	}
	return s, nil
}

// parseURL checks the url option and fills in url, redacted, host and port.
func (s *settings) parseURL(raw string) error {
	if strings.TrimSpace(raw) == "" {
		return fmt.Errorf("url: required")
	}
	u, err := url.Parse(raw)
	if err != nil {
		// url.Parse's errors quote the URL, or the part of it at fault,
		// which may be the password: say what is wrong without it.
		return fmt.Errorf("url: invalid (want amqp://user:password@host:port/vhost; " +
			"reserved characters in the user name or password must be percent-encoded)")
	}
	switch u.Scheme {
	case "amqp", "amqps":
	case "":
		return fmt.Errorf("url: not absolute (want amqp://host:port/vhost or amqps://…)")
	default:
		return fmt.Errorf("url: scheme %q is not supported (want amqp or amqps)", u.Scheme)
	}
	if u.Opaque != "" || u.Hostname() == "" {
		return fmt.Errorf("url: no host (want amqp://host:port/vhost or amqps://…)")
	}
	if u.Fragment != "" {
		return fmt.Errorf("url: a fragment (#…) is not allowed; percent-encode a # in the password as %%23")
	}
	uri, err := amqp091.ParseURI(raw)
	if err != nil {
		// ParseURI's own errors name a query parameter or the scheme,
		// never the credentials; a url.Parse error was ruled out above.
		var ue *url.Error
		if errors.As(err, &ue) {
			return fmt.Errorf("url: invalid")
		}
		return fmt.Errorf("url: %v", err)
	}
	if uri.Port < 1 || uri.Port > 65535 {
		return fmt.Errorf("url: port %d is out of range", uri.Port)
	}
	s.url = raw
	s.hostport = u.Host
	vhost := ""
	if uri.Vhost != "/" {
		vhost = url.PathEscape(uri.Vhost)
	}
	s.redacted = fmt.Sprintf("%s://%s/%s", uri.Scheme, net.JoinHostPort(uri.Host, fmt.Sprint(uri.Port)), vhost)
	return nil
}

// hasControl reports whether s contains an ASCII control character.
func hasControl(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < 0x20 || s[i] == 0x7f {
			return true
		}
	}
	return false
}

// unknownPlaceholder returns the first "{…}" in key other than {type}, or "".
func unknownPlaceholder(key string) string {
	rest := strings.ReplaceAll(key, TypePlaceholder, "")
	i := strings.IndexByte(rest, '{')
	if i < 0 {
		return ""
	}
	j := strings.IndexByte(rest[i:], '}')
	if j < 0 {
		return ""
	}
	return rest[i : i+j+1]
}

// routingKeyFor returns the routing key for an event of type typ.
func (s *settings) routingKeyFor(typ string) string {
	if !s.keyHasType {
		return s.routingKey
	}
	return strings.ReplaceAll(s.routingKey, TypePlaceholder, typ)
}
