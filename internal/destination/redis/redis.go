// Package redis is the redis destination: it appends each event to a Redis
// stream with XADD, and the delivery counts as done when Redis replies with
// the new entry's id.
//
// Options: url, redis://[user:password@]host:port/db or rediss://… for
// TLS (required; never printed, it may hold a password); stream, the key
// of the stream (required; {type} and {source} are replaced by the event's
// type and source, so "hookd:{type}" gives one stream per event type);
// maxlen and maxlen_exact, trimming (below); timeout, the bound of one
// XADD, connecting included (default 5s).
//
// # Entries
//
// Each delivery adds one entry with an id Redis generates ("*", so
// entries are in the order Redis received them) and these fields, in this
// order:
//
//	id            the event id (evt_…), the same on every attempt
//	type          the event type
//	source        the source the event came in on
//	key           the entity key; absent when the event has none
//	delivery_id   the delivery (this event to this destination)
//	attempt       the attempt number, 1 for the first
//	content_type  the request's Content-Type (empty when none)
//	received_at   when hookd received the event (RFC 3339, nanoseconds, UTC)
//	body          the raw body, byte for byte
//
// Field values are Redis bulk strings, which are binary safe: body holds
// the exact bytes received, whatever they are, with no encoding. An empty
// type or source gives an empty field (and an empty substitution in
// stream).
//
// # Confirmation and durability
//
// Deliver returns nil only once Redis has replied to the XADD with the
// entry's id, which goes to the attempt log as the response (such as
// 1700000000000-0). That reply means Redis accepted the write into memory,
// nothing more: whether the entry survives a Redis restart or crash
// depends on Redis's own persistence (appendonly yes with appendfsync
// always or everysec, RDB snapshots, replicas), which hookd neither sees
// nor checks. With persistence off, a restart of Redis loses every entry
// that was confirmed.
//
// # Trimming
//
// maxlen 0 (the default) never trims: the stream grows until consumers
// delete entries (XDEL, XTRIM) or memory runs out. maxlen N > 0 adds
// MAXLEN ~ N to every XADD: Redis drops the oldest entries, but only in
// whole internal nodes, so the stream keeps at least N entries and up to
// about N plus stream-node-max-entries (default 100) — with a small N it
// may not trim at all until that many entries have accumulated. With
// maxlen_exact: true it adds MAXLEN = N instead, and the stream holds
// exactly N entries at most, for a little more work per XADD. Trimmed
// entries are gone whether or not a consumer read them.
//
// # Failures
//
// The client is created when the destination is opened, without
// connecting, so hookd starts while Redis is down; connections are made
// (and kept, in a pool) by the first deliveries. Every failure is
// retriable, as none depends on the event itself: Redis unreachable, no
// reply within timeout (the entry may nevertheless have been added), and
// error replies, which the message explains — WRONGTYPE (the key holds a
// value that is not a stream: rename or delete it, or change stream), OOM
// (maxmemory reached), authentication and permission errors, MISCONF,
// READONLY (a replica). A cancelled context returns at once with an error
// wrapping the context's; an XADD already sent may still complete.
//
// Within one attempt the client sends XADD once (unless the URL's
// max_retries says otherwise) and dials once per connection; read and
// write deadlines follow timeout unless the URL's read_timeout and
// write_timeout set them.
//
// # Egress
//
// When hookd's SSRF guard is set (always, in hookd serve), the URL's host
// is checked when the destination is opened — an IP literal or localhost
// in a blocked range is refused at once — and every connection is dialed
// through the guard, which checks what names resolve to: a Redis on a
// private or loopback address needs egress.allow_private. With rediss://,
// TLS (1.2 or later, verifying the server's name) runs over the guarded
// connection.
//
// # At least once
//
// Delivery is at least once: an entry may be added twice, when hookd
// stops between the reply and recording it, or when a reply is lost (a
// timeout) and the attempt is retried. Consumers deduplicate by the id
// field; attempt and delivery_id tell the copies apart.
package redis

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"strings"
	"sync"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"hookd/internal/destination"
	"hookd/internal/egress"
)

// Type is the destination type key.
const Type = "redis"

func init() {
	destination.Register(Type, destination.Decoded(New))
	// go-redis logs every failed dial on stderr through its own logger;
	// hookd's log is structured: route it there, at debug level (Deliver
	// already reports each failure in the attempt log).
	goredis.SetLogger(slogLogger{})
}

// Destination appends entries to a Redis stream through one client (a
// connection pool). It is safe for concurrent use.
type Destination struct {
	s      *settings
	client *goredis.Client

	mu     sync.RWMutex // guards closed, and inflight.Add against Close
	closed bool
	// inflight counts the XADDs running, which Close waits for.
	inflight sync.WaitGroup
}

var _ destination.Destination = (*Destination)(nil)

// keepAlive is the TCP keep-alive period of connections dialed without the
// guard.
const keepAlive = 30 * time.Second

// New validates o and returns a destination with a client that has not
// connected yet. Errors name the option at fault. env may be nil (no
// egress guard: tests only).
func New(env *destination.Env, o Options) (*Destination, error) {
	s, err := o.validate()
	if err != nil {
		return nil, err
	}
	var g *egress.Guard
	name := ""
	if env != nil {
		g, name = env.Egress, env.Name
	}
	if g != nil {
		// The guard's URL check covers the host: blocked IP literals in
		// every form, localhost names, the port. Names are resolved and
		// checked at each dial.
		if err := g.CheckURL("https://" + s.addr + "/"); err != nil {
			return nil, fmt.Errorf("destination %q: url: %w", name, err)
		}
	}
	opts := s.client
	opts.Dialer = dialer(g, opts.TLSConfig)
	return &Destination{s: s, client: goredis.NewClient(opts)}, nil
}

// dialer returns the client's dial function: through g when set, then TLS
// when cfg is set. (go-redis does TLS in its own dialer only, which this
// one replaces.)
func dialer(g *egress.Guard, cfg *tls.Config) func(ctx context.Context, network, addr string) (net.Conn, error) {
	dial := (&net.Dialer{KeepAlive: keepAlive}).DialContext
	if g != nil {
		dial = g.DialContext
	}
	if cfg == nil {
		return dial
	}
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		c, err := dial(ctx, network, addr)
		if err != nil {
			return nil, err
		}
		tc := tls.Client(c, cfg)
		if err := tc.HandshakeContext(ctx); err != nil {
			c.Close()
			return nil, fmt.Errorf("TLS handshake with %s: %w", addr, err)
		}
		return tc, nil
	}
}

// errClosed is returned by Deliver after Close.
var errClosed = errors.New("redis: destination closed")

// errTimedOut is the cause of an XADD's context when timeout passed.
var errTimedOut = errors.New("timed out")

// reply is the outcome of one XADD.
type reply struct {
	id  string
	err error
}

// Deliver appends one entry to the stream. A nil error means Redis replied
// with the entry's id, which is the Result's ResponseExcerpt. Every error
// is retriable (see the package documentation); one from a done ctx wraps
// ctx's error.
func (d *Destination) Deliver(ctx context.Context, m *destination.Message) (destination.Result, error) {
	if m == nil || m.Event == nil {
		return destination.Result{}, destination.Permanent(errors.New("redis: no event to deliver"))
	}
	stream := d.streamFor(m)
	if err := ctx.Err(); err != nil {
		return destination.Result{}, fmt.Errorf("redis: not added to stream %q: %w", stream, err)
	}
	args := &goredis.XAddArgs{Stream: stream, ID: "*", Values: values(m)}
	if d.s.maxLen > 0 {
		args.MaxLen, args.Approx = d.s.maxLen, !d.s.exact
	}

	d.mu.RLock()
	if d.closed {
		d.mu.RUnlock()
		return destination.Result{}, errClosed
	}
	d.inflight.Add(1)
	d.mu.RUnlock()

	xctx, cancel := context.WithTimeoutCause(ctx, d.s.timeout, errTimedOut)
	done := make(chan reply, 1)
	// The XADD runs on its own so that a cancelled ctx is answered at
	// once: go-redis bounds a socket read by the deadline, not by
	// cancellation. It ends by timeout at the latest.
	go func() {
		defer d.inflight.Done()
		defer cancel()
		id, err := d.client.XAdd(xctx, args).Result()
		done <- reply{id, err}
	}()
	var r reply
	select {
	case r = <-done:
	case <-xctx.Done():
		select {
		case r = <-done: // the reply came at the same time
		default:
			r.err = context.Cause(xctx)
		}
	}
	if r.err == nil && r.id != "" {
		return destination.Result{ResponseExcerpt: []byte(r.id)}, nil
	}
	return destination.Result{}, d.failure(ctx, xctx, stream, r)
}

// failure describes a failed XADD; ctx is the caller's, xctx the one
// bounded by timeout.
func (d *Destination) failure(ctx, xctx context.Context, stream string, r reply) error {
	at := fmt.Sprintf("redis: XADD to stream %q on %s", stream, d.s.addr)
	err := r.err
	// A socket deadline set from a context's may expire a moment before
	// the context reports it: a deadline that has passed counts as done.
	now := time.Now()
	passed := func(c context.Context) bool {
		dl, ok := c.Deadline()
		return ok && !now.Before(dl)
	}
	callerErr := ctx.Err()
	if callerErr == nil && passed(ctx) {
		callerErr = context.DeadlineExceeded
	}
	var rerr goredis.Error
	switch {
	case err == nil:
		return fmt.Errorf("%s: empty reply, want the entry id", at)
	case callerErr != nil:
		return fmt.Errorf("%s: outcome unknown, the entry may have been added: %w", at, callerErr)
	case errors.Is(context.Cause(xctx), errTimedOut) || passed(xctx):
		return fmt.Errorf("%s: no reply within %s (timeout), the entry may have been added: %w", at, d.s.timeout, err)
	case errors.Is(err, goredis.ErrClosed):
		return errClosed
	case errors.As(err, &rerr):
		return fmt.Errorf("%s: %s: %w", at, explain(rerr), err)
	case errors.Is(err, egress.ErrRefused):
		return fmt.Errorf("%s: connection refused by hookd's egress guard: %w", at, err)
	}
	return fmt.Errorf("%s: %w", at, err)
}

// explain says what a Redis error reply means for the operator.
func explain(err goredis.Error) string {
	switch msg := strings.TrimPrefix(err.Error(), "ERR "); {
	case strings.HasPrefix(msg, "WRONGTYPE"):
		return "the key holds a value that is not a stream (rename or delete the key, or change the stream option)"
	case goredis.IsOOMError(err):
		return "Redis is out of memory (maxmemory reached: free memory, raise maxmemory or trim the stream with maxlen)"
	case goredis.IsAuthError(err):
		return "authentication failed (check the user and password in url)"
	case goredis.IsPermissionError(err):
		return "the user is not allowed to XADD to this key (check its ACL)"
	case goredis.IsReadOnlyError(err):
		return "the server is a read-only replica (point url at the primary)"
	case goredis.IsLoadingError(err):
		return "Redis is loading its dataset"
	case strings.HasPrefix(msg, "MISCONF"):
		return "Redis refuses writes because it cannot persist (see its log)"
	case strings.HasPrefix(msg, "MOVED"), strings.HasPrefix(msg, "ASK"), strings.HasPrefix(msg, "CLUSTERDOWN"):
		return "the server is a Redis Cluster node, which this destination does not support"
	}
	return "Redis replied with an error"
}

// streamFor is the stream key for m's event.
func (d *Destination) streamFor(m *destination.Message) string {
	if !d.s.templated {
		return d.s.stream
	}
	return strings.NewReplacer(PlaceholderType, m.Event.Type, PlaceholderSource, m.Event.Source).Replace(d.s.stream)
}

// values are the entry's fields and values, in order.
func values(m *destination.Message) []any {
	e := m.Event
	body := e.Body
	if body == nil {
		body = []byte{}
	}
	v := make([]any, 0, 18)
	v = append(v, "id", e.ID, "type", e.Type, "source", e.Source)
	if e.Key != "" {
		v = append(v, "key", e.Key)
	}
	return append(v,
		"delivery_id", m.DeliveryID,
		"attempt", strconv.Itoa(m.Attempt),
		"content_type", e.ContentType,
		"received_at", e.ReceivedAt.UTC().Format(time.RFC3339Nano),
		"body", body,
	)
}

// Close waits for the XADDs in flight (each ends within timeout), then
// closes the client's connections. Later Delivers fail; a second Close
// returns nil.
func (d *Destination) Close() error {
	d.mu.Lock()
	if d.closed {
		d.mu.Unlock()
		return nil
	}
	d.closed = true
	d.mu.Unlock()
	d.inflight.Wait()
	if err := d.client.Close(); err != nil && !errors.Is(err, goredis.ErrClosed) {
		return fmt.Errorf("redis: close: %w", err)
	}
	return nil
}

// slogLogger hands go-redis's log lines to log/slog's default logger.
type slogLogger struct{}

func (slogLogger) Printf(ctx context.Context, format string, v ...any) {
	slog.Default().DebugContext(ctx, "redis client: "+fmt.Sprintf(format, v...))
}
