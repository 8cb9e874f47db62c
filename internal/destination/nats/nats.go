// Package nats is the nats destination: it publishes each delivery to a
// NATS JetStream stream, and a delivery counts as done only when
// JetStream has acknowledged the publish (its PubAck: the message is
// stored in a stream).
//
// Options: url (required; one server or several separated by commas),
// subject (required; "{type}" in it is replaced by the event type),
// timeout (default 10s: bounds one publish, until the ack), dedupe
// (default false), and username with password, or token, to authenticate.
// See Options.
//
// # Mapping
//
// One delivery is one message:
//
//   - subject: the subject option, with "{type}" replaced by the event
//     type, in which every character outside A-Z a-z 0-9 _ - . becomes
//     "_" ("untyped" for an event without a type; see SubjectToken);
//   - data: the event's raw body, byte for byte;
//   - headers: hookd-event-id, hookd-event-type, hookd-source,
//     hookd-delivery-id, hookd-attempt (1 for the first attempt) and
//     Content-Type (the content type the event came with). A header whose
//     value would be empty (an event without a type, a source or a content
//     type) is left out. With dedupe, Nats-Msg-Id is the event id.
//
// The attempt log records the ack as "stream S seq N" (with
// " duplicate" when JetStream recognised a duplicate, see below).
//
// # Streams
//
// hookd does not create, update or delete streams: the operator creates a
// stream whose subjects capture the subject (or every subject "{type}" can
// produce, with a wildcard such as "events.>") and chooses its storage,
// replicas, limits and retention. When no stream captures the subject,
// JetStream cannot answer and the attempt fails with a retriable error
// "nats: no JetStream stream captures subject X": deliveries wait, with
// retries, until the stream exists. A message larger than the server's
// max_payload, or than the stream's max_msg_size, fails at once
// (destination.Permanent): no retry can make it fit.
//
// # Delivery semantics
//
// Delivery is at least once. A publish whose ack is lost (a timeout, a
// dropped connection, hookd stopping between the ack and recording the
// outcome) is published again by the next attempt, and the stream then
// holds two copies with the same hookd-event-id (hookd-attempt tells them
// apart). Consumers deduplicate by hookd-event-id.
//
// With dedupe: true, every attempt carries Nats-Msg-Id set to the event
// id, and JetStream drops a copy whose id it has already seen within the
// stream's duplicate window (duplicate_window, 2 minutes by default): a
// retry after a lost ack then adds nothing, and its ack (flagged
// duplicate) counts as delivered. The trade-off: an intentional replay of
// the event (hookd's replay of a delivered event) within that window is
// dropped as well; after the window it is stored again. Dedupe does not
// remove the need for consumers to deduplicate: copies published further
// apart than the window are both stored.
//
// # Connection
//
// Each destination holds one connection, named "hookd/<destination name>",
// opened with the destination and reconnecting forever (with the client's
// default wait between rounds). Opening does not fail when no server
// answers: the connection keeps trying in the background, and meanwhile
// each Deliver fails at once with a retriable error that says why (the
// last connection error), so hookd can start while NATS is down.
// Publishes are never buffered while disconnected. Every connection,
// including to servers a cluster advertises, is dialed through hookd's
// egress guard (egress.allow_private applies to broker addresses, which
// are often private: list them there).
//
// Close waits for the publishes in progress (each bounded by timeout),
// then closes the connection.
package nats

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"hookd/internal/destination"
	"hookd/internal/egress"
)

// Type is the destination type key.
const Type = "nats"

func init() {
	destination.Register(Type, destination.Decoded(New))
}

// Headers set on every message.
const (
	HeaderEventID     = "hookd-event-id"
	HeaderEventType   = "hookd-event-type"
	HeaderSource      = "hookd-source"
	HeaderDeliveryID  = "hookd-delivery-id"
	HeaderAttempt     = "hookd-attempt"
	HeaderContentType = "Content-Type"
)

// pingInterval is how often the client checks that the server still
// answers; a dead connection is noticed after two missed pongs.
const pingInterval = 20 * time.Second

// Destination publishes to NATS JetStream. It is safe for concurrent use.
type Destination struct {
	s  *settings
	nc *nats.Conn
	js jetstream.JetStream

	// dialCtx is cancelled by Close, ending a dial in progress.
	dialCtx    context.Context
	cancelDial context.CancelFunc

	mu       sync.Mutex
	closed   bool
	inflight sync.WaitGroup // Delivers in progress; Add only under mu while !closed
	lastErr  error          // last connection error; nil once connected
}

var _ destination.Destination = (*Destination)(nil)

// New validates o and opens the connection. It does not wait for a server
// to answer: when none does, the connection keeps trying and Deliver
// fails until it succeeds. Errors name the option at fault. env may be nil
// (no egress guard: tests only).
func New(env *destination.Env, o Options) (*Destination, error) {
	s, err := o.validate()
	if err != nil {
		return nil, err
	}
	name := "hookd"
	var guard *egress.Guard
	if env != nil {
		if env.Name != "" {
			name = "hookd/" + env.Name
		}
		guard = env.Egress
	}

	d := &Destination{s: s}
	d.dialCtx, d.cancelDial = context.WithCancel(context.Background())
	dl := &dialer{d: d, guard: guard, timeout: s.connectTimeout}

	nopts := []nats.Option{
		nats.Name(name),
		nats.MaxReconnects(-1),
		nats.RetryOnFailedConnect(true),
		// A publish made while disconnected would be sent after the
		// reconnect, long after its attempt gave up: fail it instead.
		nats.ReconnectBufSize(-1),
		// Keep trying after authentication errors: the operator may fix
		// the credentials on the server side.
		nats.IgnoreAuthErrorAbort(),
		nats.Timeout(s.connectTimeout),
		nats.PingInterval(pingInterval),
		nats.SetCustomDialer(dl),
		nats.ConnectHandler(func(*nats.Conn) { d.setLastErr(nil) }),
		nats.ReconnectHandler(func(*nats.Conn) { d.setLastErr(nil) }),
		nats.DisconnectErrHandler(func(_ *nats.Conn, err error) {
			if err != nil {
				d.setLastErr(err)
			}
		}),
		nats.ReconnectErrHandler(func(_ *nats.Conn, err error) {
			// ErrNoServers stands for "connection refused" on the first
			// round; the dialer has recorded the real error already.
			if err != nil && !errors.Is(err, nats.ErrNoServers) {
				d.setLastErr(err)
			}
		}),
		nats.ErrorHandler(func(_ *nats.Conn, _ *nats.Subscription, err error) {
			// Asynchronous errors (a permissions violation, say) would
			// otherwise be printed to stderr.
			if err != nil {
				d.setLastErr(err)
			}
		}),
	}
	if guard != nil {
		// Let the guard resolve names (and check every answer).
		nopts = append(nopts, nats.SkipHostLookup())
	}
	switch {
	case s.token != "":
		nopts = append(nopts, nats.Token(s.token))
	case s.username != "":
		nopts = append(nopts, nats.UserInfo(s.username, s.password))
	}

	nc, err := nats.Connect(strings.Join(s.servers, ","), nopts...)
	if err != nil {
		d.cancelDial()
		return nil, fmt.Errorf("url: %w", err)
	}
	js, err := jetstream.New(nc)
	if err != nil {
		nc.Close()
		d.cancelDial()
		return nil, fmt.Errorf("nats: %w", err)
	}
	d.nc, d.js = nc, js
	return d, nil
}

// dialer is the connection's nats.CustomDialer: every connection goes
// through the egress guard when there is one, within the connect timeout,
// and a failed dial is recorded for Deliver's error.
type dialer struct {
	d       *Destination
	guard   *egress.Guard
	timeout time.Duration
}

func (x *dialer) Dial(network, addr string) (net.Conn, error) {
	ctx, cancel := context.WithTimeout(x.d.dialCtx, x.timeout)
	defer cancel() // only bounds the dial: the connection outlives it
	var (
		c   net.Conn
		err error
	)
	if x.guard != nil {
		c, err = x.guard.DialContext(ctx, network, addr)
	} else {
		c, err = (&net.Dialer{KeepAlive: egress.DefaultKeepAlive}).DialContext(ctx, network, addr)
	}
	if err != nil {
		x.d.setLastErr(err)
		return nil, err
	}
	return c, nil
}

func (d *Destination) setLastErr(err error) {
	d.mu.Lock()
	d.lastErr = err
	d.mu.Unlock()
}

// errClosed is returned by Deliver after Close.
var errClosed = errors.New("nats: destination closed")

// Deliver publishes one message and waits for JetStream's ack, within the
// timeout option. A nil error means JetStream stored the message (or,
// with dedupe, had stored it already). Errors are retriable except for a
// message too large for the server or the stream (Permanent); a ctx
// already done gives an error wrapping ctx's error and publishes nothing.
func (d *Destination) Deliver(ctx context.Context, m *destination.Message) (destination.Result, error) {
	if m == nil || m.Event == nil {
		return destination.Result{}, destination.Permanent(errors.New("nats: no event to deliver"))
	}
	if err := ctx.Err(); err != nil {
		return destination.Result{}, fmt.Errorf("nats: not published: %w", err)
	}
	d.mu.Lock()
	if d.closed {
		d.mu.Unlock()
		return destination.Result{}, errClosed
	}
	d.inflight.Add(1)
	d.mu.Unlock()
	defer d.inflight.Done()

	e := m.Event
	subject := d.s.subjectFor(e.Type)
	if st := d.nc.Status(); st != nats.CONNECTED {
		return destination.Result{}, d.notConnected(st, nil)
	}

	msg := &nats.Msg{Subject: subject, Data: e.Body, Header: nats.Header{}}
	setHeader(msg.Header, HeaderEventID, e.ID)
	setHeader(msg.Header, HeaderEventType, e.Type)
	setHeader(msg.Header, HeaderSource, e.Source)
	setHeader(msg.Header, HeaderDeliveryID, m.DeliveryID)
	setHeader(msg.Header, HeaderAttempt, strconv.Itoa(m.Attempt))
	setHeader(msg.Header, HeaderContentType, e.ContentType)
	var popts []jetstream.PublishOpt
	if d.s.dedupe && e.ID != "" {
		popts = append(popts, jetstream.WithMsgID(e.ID))
	}

	pctx, cancel := context.WithTimeout(ctx, d.s.timeout)
	defer cancel()
	ack, err := d.js.PublishMsg(pctx, msg, popts...)
	if err != nil {
		return destination.Result{}, d.classify(ctx, subject, msg, err)
	}
	excerpt := fmt.Sprintf("stream %s seq %d", ack.Stream, ack.Sequence)
	if ack.Duplicate {
		excerpt += " duplicate"
	}
	if len(excerpt) > destination.MaxExcerpt {
		excerpt = excerpt[:destination.MaxExcerpt]
	}
	return destination.Result{ResponseExcerpt: []byte(excerpt)}, nil
}

// setHeader sets h[key] to v (keys are case-sensitive in NATS and kept as
// written), leaving empty values out.
func setHeader(h nats.Header, key, v string) {
	if v != "" {
		h[key] = []string{v}
	}
}

// classify turns a publish error into the destination's error, naming the
// subject. ctx is the caller's context (before the timeout was added).
func (d *Destination) classify(ctx context.Context, subject string, msg *nats.Msg, err error) error {
	switch {
	case ctx.Err() != nil:
		// The caller gave up (shutdown, the attempt's own deadline).
		return fmt.Errorf("nats: publish to %s abandoned: %w", subject, err)
	case errors.Is(err, context.DeadlineExceeded):
		return fmt.Errorf("nats: no JetStream ack for subject %s within %s: %w", subject, d.s.timeout, err)
	case errors.Is(err, jetstream.ErrNoStreamResponse), errors.Is(err, nats.ErrNoResponders):
		return fmt.Errorf("nats: no JetStream stream captures subject %s: %w", subject, err)
	case errors.Is(err, nats.ErrMaxPayload):
		return destination.Permanent(fmt.Errorf("nats: message of %d bytes (body and headers) exceeds the server's max_payload of %d bytes: %w",
			msgSize(msg), d.nc.MaxPayload(), err))
	case errors.Is(err, jetstream.ErrStreamMessageExceedsMaximum):
		return destination.Permanent(fmt.Errorf("nats: message of %d bytes exceeds the max_msg_size of the stream capturing subject %s: %w",
			msgSize(msg), subject, err))
	case errors.Is(err, nats.ErrReconnectBufExceeded), errors.Is(err, nats.ErrDisconnected),
		errors.Is(err, nats.ErrConnectionReconnecting), errors.Is(err, nats.ErrConnectionClosed):
		return d.notConnected(d.nc.Status(), err)
	case errors.Is(err, jetstream.ErrJetStreamNotEnabled), errors.Is(err, jetstream.ErrJetStreamNotEnabledForAccount):
		return fmt.Errorf("nats: publish to %s: JetStream is not available: %w", subject, err)
	}
	return fmt.Errorf("nats: publish to %s: %w", subject, err)
}

// msgSize approximates the size the server checks: the body plus the
// header block.
func msgSize(m *nats.Msg) int {
	n := len(m.Data)
	if len(m.Header) > 0 {
		n += len("NATS/1.0\r\n\r\n")
		for k, vs := range m.Header {
			for _, v := range vs {
				n += len(k) + len(v) + 4
			}
		}
	}
	return n
}

// notConnected is the retriable error of a Deliver made while the
// connection is down, with the last connection error when there is one.
func (d *Destination) notConnected(st nats.Status, cause error) error {
	d.mu.Lock()
	last := d.lastErr
	d.mu.Unlock()
	what := "reconnecting"
	if st == nats.CLOSED {
		what = "connection closed"
	} else if st != nats.RECONNECTING && st != nats.CONNECTED {
		what = st.String()
	}
	switch {
	case last != nil:
		return fmt.Errorf("nats: not connected to the server (%s): last error: %w", what, last)
	case cause != nil:
		return fmt.Errorf("nats: not connected to the server (%s): %w", what, cause)
	}
	return fmt.Errorf("nats: not connected to the server (%s)", what)
}

// Close waits for the publishes in progress, then closes the connection.
// Later Delivers fail; a second Close returns nil.
func (d *Destination) Close() error {
	d.mu.Lock()
	if d.closed {
		d.mu.Unlock()
		return nil
	}
	d.closed = true
	d.mu.Unlock()
	d.inflight.Wait()
	d.cancelDial()
	d.nc.Close()
	return nil
}
