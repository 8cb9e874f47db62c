package kafka

import (
	"fmt"
	"net"
	"strconv"
	"strings"
	"time"
	"unicode"

	"gopkg.in/yaml.v3"

	"hookd/internal/config"
)

// Defaults and limits of the options.
const (
	// DefaultClientID is the client.id the producer sends to the brokers.
	DefaultClientID = "hookd"
	// DefaultTimeout bounds one produce, from Deliver to the broker's ack.
	DefaultTimeout = 30 * time.Second
	// DefaultMaxMessageBytes is the largest body sent.
	DefaultMaxMessageBytes = config.Size(1_000_000)
	// MaxMaxMessageBytes is the largest max_message_bytes accepted: a
	// produce request carries at least one whole record and brokers refuse
	// requests above socket.request.max.bytes (100 MiB by default).
	MaxMaxMessageBytes = config.Size(64 << 20)
	// maxTopicLen is Kafka's limit on a topic name.
	maxTopicLen = 249
	// maxClientIDLen keeps client_id within what brokers log sensibly.
	maxClientIDLen = 255
)

// Options are a kafka destination's own keys. Keys the engine reads (name,
// type, retry, ordering, head_timeout, concurrency, rate) are not part of them.
type Options struct {
	// Brokers are the seed brokers, "host:port" each. Required. The
	// client learns the rest of the cluster from them; every broker it
	// connects to is dialed through the egress guard.
	Brokers BrokerList `yaml:"brokers"`
	// Topic is the topic every record is produced to. Required; it must
	// exist (the producer does not create it).
	Topic string `yaml:"topic"`
	// ClientID is the client.id sent to the brokers. Default "hookd".
	ClientID string `yaml:"client_id"`
	// Timeout bounds one produce: from the call to the broker's ack
	// (acks=all). Default 30s.
	Timeout *config.Duration `yaml:"timeout"`
	// MaxMessageBytes is the largest body produced. A larger body fails
	// at once, permanently, without being sent. Default 1MB (1,000,000
	// bytes: with the 16KiB left for a batch's key, headers and framing it
	// stays under Kafka's default message.max.bytes of 1,048,588), at most
	// 64MiB. A larger value needs the topic's max.message.bytes raised to
	// match.
	MaxMessageBytes *config.Size `yaml:"max_message_bytes"`
}

// BrokerList is a YAML sequence of host:port strings.
type BrokerList []string

// UnmarshalYAML decodes a sequence of strings, with an error that names
// the option when the value is something else (a single string, say).
func (l *BrokerList) UnmarshalYAML(n *yaml.Node) error {
	var out []string
	if n.Kind != yaml.SequenceNode || n.Decode(&out) != nil {
		return fmt.Errorf("line %d: brokers: want a list of host:port strings, such as [\"kafka1:9092\", \"kafka2:9092\"]", n.Line)
	}
	*l = out
	return nil
}

// settings are validated Options with defaults applied.
type settings struct {
	brokers         []string
	topic           string
	clientID        string
	timeout         time.Duration
	maxMessageBytes int64
}

// validate checks o and applies defaults. Errors name the option.
func (o *Options) validate() (*settings, error) {
	s := &settings{
		clientID:        DefaultClientID,
		timeout:         DefaultTimeout,
		maxMessageBytes: int64(DefaultMaxMessageBytes),
	}

	if len(o.Brokers) == 0 {
		return nil, fmt.Errorf("brokers: required (a list of host:port)")
	}
	for i, b := range o.Brokers {
		addr, err := checkBroker(b)
		if err != nil {
			return nil, fmt.Errorf("brokers[%d]: %v", i, err)
		}
		s.brokers = append(s.brokers, addr)
	}

	if strings.TrimSpace(o.Topic) == "" {
		return nil, fmt.Errorf("topic: required")
	}
	if err := checkTopic(o.Topic); err != nil {
		return nil, fmt.Errorf("topic: %v", err)
	}
	s.topic = o.Topic

	if id := strings.TrimSpace(o.ClientID); id != "" {
		if len(id) > maxClientIDLen {
			return nil, fmt.Errorf("client_id: longer than %d bytes", maxClientIDLen)
		}
		if strings.IndexFunc(id, func(r rune) bool { return !unicode.IsPrint(r) }) >= 0 {
			return nil, fmt.Errorf("client_id: %q contains a control character", o.ClientID)
		}
		s.clientID = id
	}

	if o.Timeout != nil {
		if o.Timeout.D() <= 0 {
			return nil, fmt.Errorf("timeout: must be positive, got %s", o.Timeout.D())
		}
		s.timeout = o.Timeout.D()
	}

	if o.MaxMessageBytes != nil {
		n := *o.MaxMessageBytes
		if n <= 0 {
			return nil, fmt.Errorf("max_message_bytes: must be positive")
		}
		if n > MaxMaxMessageBytes {
			return nil, fmt.Errorf("max_message_bytes: %d is more than the limit of %d (64MiB)", n, MaxMaxMessageBytes)
		}
		s.maxMessageBytes = int64(n)
	}
	return s, nil
}

// checkBroker checks one seed broker address and returns it trimmed.
func checkBroker(b string) (string, error) {
	addr := strings.TrimSpace(b)
	if addr == "" {
		return "", fmt.Errorf("empty address (want host:port)")
	}
	if strings.Contains(addr, "://") {
		return "", fmt.Errorf("%q: want host:port, without a scheme", b)
	}
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return "", fmt.Errorf("%q: want host:port (%v)", b, err)
	}
	if host == "" {
		return "", fmt.Errorf("%q: no host (want host:port)", b)
	}
	if strings.ContainsAny(host, " /?#@") {
		return "", fmt.Errorf("%q: invalid host %q", b, host)
	}
	if n, err := strconv.ParseUint(port, 10, 16); err != nil || n == 0 {
		return "", fmt.Errorf("%q: port %q is not in 1-65535", b, port)
	}
	return addr, nil
}

// checkTopic applies Kafka's rules for topic names.
func checkTopic(t string) error {
	switch {
	case t == "." || t == "..":
		return fmt.Errorf("%q is not a valid topic name", t)
	case len(t) > maxTopicLen:
		return fmt.Errorf("longer than %d characters", maxTopicLen)
	}
	for _, r := range t {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '.', r == '_', r == '-':
		default:
			return fmt.Errorf("%q: a topic name may contain only ASCII letters, digits, '.', '_' and '-'", t)
		}
	}
	return nil
}
