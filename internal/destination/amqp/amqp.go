// Package amqp is the amqp destination: it publishes each delivery to an
// AMQP 0-9-1 broker (RabbitMQ) with publisher confirms, and a delivery
// counts as done only once the broker has confirmed (acked) the publish.
//
// Options: url, the broker (amqp://user:password@host:port/vhost, or
// amqps:// for TLS; required); exchange, the exchange published to
// (default "", the default exchange, which routes to the queue named by
// the routing key); routing_key (required; the placeholder {type} is
// replaced by the event's type); timeout, the bound of one attempt
// (connecting when needed, publishing, waiting for the confirm; default
// 10s); and mandatory (default true, see below).
//
// # Message
//
// The body is the event's raw body, byte for byte. Properties:
// delivery_mode 2 (persistent), message_id the event id (the same on
// every attempt: consumers deduplicate by it), type the event type,
// content_type the event's Content-Type, timestamp when hookd received
// the event (AMQP timestamps are whole seconds), app_id "hookd". Headers:
// hookd-event-id, hookd-event-type, hookd-source, hookd-delivery-id
// (strings) and hookd-attempt (a 32-bit integer, 1 for the first
// attempt). AMQP limits the type and content_type properties to 255
// bytes: a longer value is left out (the hookd-event-type header always
// has the type).
//
// # Confirms
//
// Every channel is in confirm mode and carries at most one publish at a
// time, so each Deliver waits for its own confirm. Deliver returns nil
// only after the broker acked the publish; for a persistent message to a
// durable queue the broker acks once the message is written to disk. A
// basic.nack, a channel or connection closed before the confirm (a
// missing exchange, say: the broker closes the channel with 404), a
// connection failure or the timeout are retriable errors starting with
// "amqp: ".
//
// # Mandatory and unroutable messages
//
// With mandatory (the default), a message that no queue is bound for is
// returned by the broker (basic.return, sent before its basic.ack) and
// the attempt fails with a retriable error "amqp: unroutable: no queue
// bound for exchange … key …": the message went nowhere, so it is not
// counted as delivered. Retries give the operator time to add the
// binding. With mandatory: false, the broker drops an unroutable message
// and acks it, and the delivery counts as done.
//
// # Topology
//
// hookd declares nothing: exchanges, queues and bindings belong to the
// operator and must exist (the default exchange always does). Publishing
// to a missing exchange fails each attempt until it is declared.
//
// # Connections
//
// Opening the destination only validates its options: the connection is
// made on the first Deliver, so hookd starts while the broker is down.
// The destination keeps one connection and a small pool of channels (one
// per publish in progress, at most 32); when the connection or a channel
// is closed (a broker restart, a network failure, a channel error) it is
// dropped, and the next Deliver opens a new one. When the connection
// turns out to be closed before anything was published, the attempt
// reconnects once by itself. While the broker blocks publishers (a memory
// or disk alarm), attempts time out and are retried. Connections are dialed through hookd's SSRF
// guard (docs/egress.md): a broker on a private or loopback address needs
// egress.allow_private, and a url whose host is such an IP literal (or
// localhost) is refused when the destination is opened.
//
// # Delivery guarantee
//
// Delivery is at least once. A message can reach the broker more than
// once: when the confirm is lost with the connection, when the timeout
// ends an attempt whose publish the broker then confirms, or when hookd
// stops between the confirm and recording it. Consumers deduplicate by
// message_id; hookd-attempt and hookd-delivery-id tell copies apart.
package amqp

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"time"

	amqp091 "github.com/rabbitmq/amqp091-go"

	"hookd/internal/destination"
	"hookd/internal/egress"
)

// Type is the destination type key.
const Type = "amqp"

func init() {
	destination.Register(Type, destination.Decoded(New))
}

// maxChannels bounds the channels of the connection, and so the publishes
// in progress at once; more Delivers wait for a free channel.
const maxChannels = 32

// Header names set on every message.
const (
	HeaderEventID    = "hookd-event-id"
	HeaderEventType  = "hookd-event-type"
	HeaderSource     = "hookd-source"
	HeaderDeliveryID = "hookd-delivery-id"
	HeaderAttempt    = "hookd-attempt"
)

// AppID is the app_id property of every message.
const AppID = "hookd"

// closeTimeout bounds the connection.close handshake in Close.
const closeTimeout = 5 * time.Second

// tcpKeepAlive is the keep-alive period of the broker connection.
const tcpKeepAlive = 30 * time.Second

// Destination publishes to one exchange of one broker. It is safe for
// concurrent use.
type Destination struct {
	s      *settings
	name   string
	egress *egress.Guard

	// ctx is cancelled by Close: it aborts a dial in progress.
	ctx    context.Context
	cancel context.CancelFunc
	// slots holds one token per attempt in progress (see maxChannels).
	slots chan struct{}
	// inflight counts attempts and dials in progress; Close waits for
	// them. Add is only called under mu while !closed.
	inflight sync.WaitGroup

	mu        sync.Mutex
	closed    bool
	conn      *conn     // the current connection, nil when there is none
	dialing   *dialCall // the dial in progress, if any
	handshake net.Conn  // the socket of the dial in progress, until it is open
}

// dialCall is one dial that concurrent Delivers wait for together.
type dialCall struct {
	done chan struct{} // closed once c or err is set
	c    *conn
	err  error
}

// conn is one broker connection and its idle channels.
type conn struct {
	ac   *amqp091.Connection
	done chan struct{} // closed once the connection is closed

	mu   sync.Mutex
	idle []*channel
}

// closed reports whether the connection is closed or closing.
func (c *conn) closed() bool {
	select {
	case <-c.done:
		return true
	default:
		return c.ac.IsClosed()
	}
}

// channel is one confirm-mode channel, used by one publish at a time.
type channel struct {
	c       *conn
	ch      *amqp091.Channel
	returns chan amqp091.Return
	closes  chan *amqp091.Error
	err     *amqp091.Error // why it was closed, once read from closes
}

// closeReason returns why the channel was closed, when the broker or the
// connection said so.
func (pc *channel) closeReason() string {
	if pc.err == nil {
		select {
		case e, ok := <-pc.closes:
			if ok && e != nil {
				pc.err = e
			}
		default:
		}
	}
	if pc.err != nil {
		return pc.err.Error()
	}
	return "channel closed"
}

var _ destination.Destination = (*Destination)(nil)

// New validates o and returns a destination. It does not connect: the
// first Deliver does. env may be nil (no SSRF guard). Errors name the
// option at fault and never contain the URL's password.
func New(env *destination.Env, o Options) (*Destination, error) {
	s, err := o.validate()
	if err != nil {
		return nil, err
	}
	d := &Destination{s: s, slots: make(chan struct{}, maxChannels)}
	if env != nil {
		d.name = env.Name
		d.egress = env.Egress
	}
	if d.egress != nil {
		// The same checks as an http destination's URL, on the broker's
		// host and port: an IP literal or localhost name that the guard
		// refuses fails now rather than at every attempt. Names are
		// checked when dialed.
		if err := d.egress.CheckURL("https://" + s.hostport + "/"); err != nil {
			return nil, fmt.Errorf("url: %w", err)
		}
	}
	d.ctx, d.cancel = context.WithCancel(context.Background())
	return d, nil
}

// errClosed is returned by Deliver after Close.
var errClosed = errors.New("amqp: destination closed")

// errTimeout is the cause of an attempt's context when its timeout ends it.
var errTimeout = errors.New("amqp: attempt timed out")

// Phases of an attempt, for errors.
const (
	phaseSlot    = "waiting for a free channel"
	phaseConnect = "connecting"
	phaseChannel = "opening a channel"
	phasePublish = "publishing"
	phaseConfirm = "waiting for the publisher confirm"
)

// attempt is one Deliver's publish.
type attempt struct {
	key   string
	pub   amqp091.Publishing
	phase atomic.Pointer[string]
}

func (a *attempt) setPhase(p string) { a.phase.Store(&p) }

func (a *attempt) getPhase() string {
	if p := a.phase.Load(); p != nil {
		return *p
	}
	return phaseSlot
}

// Deliver publishes m and waits for the broker's confirm. A nil error
// means the broker acked the publish (and, with mandatory, did not return
// it). Every failure is a plain (retriable) error starting with "amqp: ",
// except a message that can never be published (a routing key longer than
// AMQP allows), which is Permanent. A ctx that is done, or the timeout,
// ends the attempt at once with an error wrapping ctx's error.
func (d *Destination) Deliver(ctx context.Context, m *destination.Message) (destination.Result, error) {
	if m == nil || m.Event == nil {
		return destination.Result{}, destination.Permanent(errors.New("amqp: no event to deliver"))
	}
	a, err := d.newAttempt(m)
	if err != nil {
		return destination.Result{}, err
	}
	if err := ctx.Err(); err != nil {
		return destination.Result{}, fmt.Errorf("amqp: not published: %w", err)
	}

	d.mu.Lock()
	if d.closed {
		d.mu.Unlock()
		return destination.Result{}, errClosed
	}
	d.inflight.Add(1)
	d.mu.Unlock()

	ctx, cancel := context.WithTimeoutCause(ctx, d.s.timeout, errTimeout)
	defer cancel()
	select {
	case d.slots <- struct{}{}:
	case <-ctx.Done():
		d.inflight.Done()
		return destination.Result{}, d.gaveUp(ctx, phaseSlot)
	case <-d.ctx.Done():
		d.inflight.Done()
		return destination.Result{}, errClosed
	}

	// The attempt runs on its own goroutine because some steps (opening a
	// connection or a channel, writing a publish to a blocked connection)
	// cannot be interrupted: Deliver returns when ctx is done, and the
	// goroutine finishes (bounded by the timeout, the heartbeat or Close)
	// and gives its channel back or discards it.
	done := make(chan error, 1)
	go func() {
		defer func() {
			<-d.slots
			d.inflight.Done()
		}()
		done <- d.run(ctx, a)
	}()
	select {
	case err = <-done:
	case <-ctx.Done():
		select {
		case err = <-done:
		default:
			err = d.gaveUp(ctx, a.getPhase())
		}
	}
	if err != nil {
		return destination.Result{}, err
	}
	return destination.Result{ResponseExcerpt: []byte("confirmed")}, nil
}

// newAttempt builds the publishing for m.
func (d *Destination) newAttempt(m *destination.Message) (*attempt, error) {
	e := m.Event
	a := &attempt{key: d.s.routingKeyFor(e.Type)}
	if len(a.key) > maxShortString {
		return nil, destination.Permanent(fmt.Errorf("amqp: the routing key for event type %.64q… is longer than %d bytes", e.Type, maxShortString))
	}
	if len(e.ID) > maxShortString {
		return nil, destination.Permanent(fmt.Errorf("amqp: event id longer than %d bytes", maxShortString))
	}
	a.pub = amqp091.Publishing{
		Headers: amqp091.Table{
			HeaderEventID:    e.ID,
			HeaderEventType:  e.Type,
			HeaderSource:     e.Source,
			HeaderDeliveryID: m.DeliveryID,
			HeaderAttempt:    int32(m.Attempt),
		},
		DeliveryMode: amqp091.Persistent,
		MessageId:    e.ID,
		Timestamp:    e.ReceivedAt,
		AppId:        AppID,
		Body:         e.Body,
	}
	if len(e.Type) <= maxShortString {
		a.pub.Type = e.Type
	}
	if len(e.ContentType) <= maxShortString {
		a.pub.ContentType = e.ContentType
	}
	return a, nil
}

// gaveUp is the error of an attempt that ctx ended during phase.
func (d *Destination) gaveUp(ctx context.Context, phase string) error {
	if phase == phaseConnect {
		phase += " to " + d.s.redacted
	}
	if errors.Is(context.Cause(ctx), errTimeout) {
		return fmt.Errorf("amqp: timed out after %s %s: %w", d.s.timeout, phase, ctx.Err())
	}
	return fmt.Errorf("amqp: gave up %s: %w", phase, ctx.Err())
}

// run connects if needed, takes a channel, publishes and waits for the
// confirm. When the connection turns out to be closed before the message
// was published, it reconnects once.
func (d *Destination) run(ctx context.Context, a *attempt) error {
	for try := 0; ; try++ {
		a.setPhase(phaseConnect)
		c, err := d.connection(ctx)
		if err != nil {
			return err
		}
		a.setPhase(phaseChannel)
		pc, err := d.channel(c)
		if err != nil {
			if try == 0 && c.closed() && ctx.Err() == nil {
				d.forget(c)
				continue
			}
			if ctx.Err() != nil {
				return d.gaveUp(ctx, phaseChannel)
			}
			return err
		}
		sent, err := d.publish(ctx, pc, a)
		if err != nil && !sent && try == 0 && c.closed() && ctx.Err() == nil {
			d.forget(c)
			continue
		}
		return err
	}
}

// connection returns the open connection, dialing one when there is none.
// Concurrent callers share one dial.
func (d *Destination) connection(ctx context.Context) (*conn, error) {
	d.mu.Lock()
	if d.closed {
		d.mu.Unlock()
		return nil, errClosed
	}
	if c := d.conn; c != nil {
		if !c.closed() {
			d.mu.Unlock()
			return c, nil
		}
		d.conn = nil
	}
	call := d.dialing
	if call == nil {
		call = &dialCall{done: make(chan struct{})}
		d.dialing = call
		d.inflight.Add(1)
		go d.dial(call)
	}
	d.mu.Unlock()
	select {
	case <-call.done:
		return call.c, call.err
	case <-ctx.Done():
		return nil, d.gaveUp(ctx, phaseConnect)
	case <-d.ctx.Done():
		return nil, errClosed
	}
}

// dial opens a connection for call and makes it the current one.
func (d *Destination) dial(call *dialCall) {
	defer d.inflight.Done()
	c, err := d.connect()
	d.mu.Lock()
	d.dialing = nil
	d.handshake = nil
	closed := d.closed
	if err == nil && !closed {
		d.conn = c
	}
	d.mu.Unlock()
	if err == nil && closed {
		_ = c.ac.CloseDeadline(time.Now().Add(closeTimeout))
		c, err = nil, errClosed
	}
	call.c, call.err = c, err
	close(call.done)
}

// connect dials the broker and starts watching the connection.
func (d *Destination) connect() (*conn, error) {
	props := amqp091.NewConnectionProperties()
	name := "hookd"
	if d.name != "" {
		name += " destination " + d.name
	}
	props.SetClientConnectionName(name)
	ac, err := amqp091.DialConfig(d.s.url, amqp091.Config{
		Dial:       d.dialNet,
		Properties: props,
	})
	if err != nil {
		if d.ctx.Err() != nil {
			return nil, errClosed
		}
		return nil, fmt.Errorf("amqp: connect to %s: %w", d.s.redacted, err)
	}
	c := &conn{ac: ac, done: make(chan struct{})}
	closes := ac.NotifyClose(make(chan *amqp091.Error, 1))
	go func() {
		// Receives the error of an abnormal close, or nothing when the
		// channel is closed after a Close.
		<-closes
		close(c.done)
		d.forget(c)
	}()
	return c, nil
}

// dialNet opens the TCP connection to the broker, through the SSRF guard
// when there is one, and sets a deadline that bounds the TLS and AMQP
// handshakes (DialConfig clears it once the connection is open).
func (d *Destination) dialNet(network, addr string) (net.Conn, error) {
	ctx, cancel := context.WithTimeout(d.ctx, d.s.timeout)
	defer cancel() // bounds only the dial: the connection outlives it
	var (
		nc  net.Conn
		err error
	)
	if d.egress != nil {
		nc, err = d.egress.DialContext(ctx, network, addr)
	} else {
		nc, err = (&net.Dialer{KeepAlive: tcpKeepAlive}).DialContext(ctx, network, addr)
	}
	if err != nil {
		return nil, err
	}
	if err := nc.SetDeadline(time.Now().Add(d.s.timeout)); err != nil {
		nc.Close()
		return nil, err
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closed {
		nc.Close()
		return nil, errClosed
	}
	d.handshake = nc // Close closes it to end the handshake
	return nc, nil
}

// forget drops c as the current connection, so that the next Deliver
// dials a new one.
func (d *Destination) forget(c *conn) {
	d.mu.Lock()
	if d.conn == c {
		d.conn = nil
	}
	d.mu.Unlock()
}

// channel returns an idle channel of c, or opens one in confirm mode.
func (d *Destination) channel(c *conn) (*channel, error) {
	c.mu.Lock()
	for len(c.idle) > 0 {
		pc := c.idle[len(c.idle)-1]
		c.idle = c.idle[:len(c.idle)-1]
		if !pc.ch.IsClosed() {
			c.mu.Unlock()
			return pc, nil
		}
	}
	c.mu.Unlock()

	ch, err := c.ac.Channel()
	if err != nil {
		return nil, fmt.Errorf("amqp: open a channel on %s: %w", d.s.redacted, err)
	}
	pc := &channel{
		c:  c,
		ch: ch,
		// One publish at a time, so at most one return is pending; the
		// room to spare keeps the connection's reader from ever waiting.
		returns: ch.NotifyReturn(make(chan amqp091.Return, 4)),
		closes:  ch.NotifyClose(make(chan *amqp091.Error, 1)),
	}
	if err := ch.Confirm(false); err != nil {
		go ch.Close()
		return nil, fmt.Errorf("amqp: put a channel in confirm mode on %s: %w", d.s.redacted, err)
	}
	return pc, nil
}

// release gives pc back to its connection's pool when it can carry the
// next publish, and closes it otherwise (in the background: the close
// handshake may wait for the broker).
func (d *Destination) release(pc *channel, reusable bool) {
	if reusable && !pc.ch.IsClosed() {
		c := pc.c
		c.mu.Lock()
		if !c.closed() && len(c.idle) < maxChannels {
			c.idle = append(c.idle, pc)
			c.mu.Unlock()
			return
		}
		c.mu.Unlock()
	}
	go pc.ch.Close()
}

// publish publishes a's message on pc and waits for its confirm and, if
// the broker returned it, its return. sent reports whether the message may
// have reached the broker.
func (d *Destination) publish(ctx context.Context, pc *channel, a *attempt) (sent bool, err error) {
	a.setPhase(phasePublish)
	drainReturns(pc)
	dc, err := pc.ch.PublishWithDeferredConfirmWithContext(ctx, d.s.exchange, a.key, d.s.mandatory, false, a.pub)
	if err != nil {
		if ctx.Err() != nil && errors.Is(err, ctx.Err()) {
			// Refused before anything was sent: the channel is clean.
			d.release(pc, true)
			return false, d.gaveUp(ctx, phasePublish)
		}
		d.release(pc, false)
		if pc.ch.IsClosed() {
			return false, fmt.Errorf("amqp: publish: %s", pc.closeReason())
		}
		return true, fmt.Errorf("amqp: publish: %w", err)
	}
	if dc == nil {
		d.release(pc, false)
		return true, errors.New("amqp: publish: the channel is not in confirm mode")
	}

	a.setPhase(phaseConfirm)
	ack, err := dc.WaitContext(ctx)
	if err != nil {
		// The confirm (and maybe a return) may still come on this
		// channel, where it would be taken for the next publish's.
		d.release(pc, false)
		return true, d.gaveUp(ctx, phaseConfirm)
	}
	if !ack {
		if pc.ch.IsClosed() {
			// Pending confirms are nacked when the channel closes.
			d.release(pc, false)
			return true, fmt.Errorf("amqp: not confirmed: the channel was closed: %s", pc.closeReason())
		}
		drainReturns(pc)
		d.release(pc, true)
		return true, errors.New("amqp: not confirmed: the broker nacked the message (basic.nack)")
	}
	// The broker sends basic.return before the basic.ack of the same
	// message, and both are handled in order by the connection's reader,
	// so a return for this publish is already in pc.returns.
	select {
	case r := <-pc.returns:
		d.release(pc, true)
		return true, returnedError(r)
	default:
	}
	d.release(pc, true)
	return true, nil
}

// drainReturns discards returns left on pc (there should be none).
func drainReturns(pc *channel) {
	for {
		select {
		case <-pc.returns:
		default:
			return
		}
	}
}

// returnedError is the error for a message the broker returned.
func returnedError(r amqp091.Return) error {
	exchange := fmt.Sprintf("%q", r.Exchange)
	if r.Exchange == "" {
		exchange = `"" (the default exchange)`
	}
	if r.ReplyCode == amqp091.NoRoute {
		return fmt.Errorf("amqp: unroutable: no queue bound for exchange %s key %q (%d %s)",
			exchange, r.RoutingKey, r.ReplyCode, r.ReplyText)
	}
	return fmt.Errorf("amqp: returned by the broker for exchange %s key %q: %d %s",
		exchange, r.RoutingKey, r.ReplyCode, r.ReplyText)
}

// Close stops new deliveries, waits (at most the timeout) for those in
// progress, then closes the connection. A second Close returns nil.
func (d *Destination) Close() error {
	d.mu.Lock()
	if d.closed {
		d.mu.Unlock()
		return nil
	}
	d.closed = true
	if d.handshake != nil {
		d.handshake.Close()
	}
	d.mu.Unlock()
	d.cancel()

	waited := make(chan struct{})
	go func() {
		d.inflight.Wait()
		close(waited)
	}()
	t := time.NewTimer(d.s.timeout)
	select {
	case <-waited:
	case <-t.C:
	}
	t.Stop()

	d.mu.Lock()
	c := d.conn
	d.conn = nil
	d.mu.Unlock()
	if c == nil {
		return nil
	}
	if err := c.ac.CloseDeadline(time.Now().Add(closeTimeout)); err != nil && !errors.Is(err, amqp091.ErrClosed) {
		return fmt.Errorf("amqp: close the connection to %s: %w", d.s.redacted, err)
	}
	return nil
}
