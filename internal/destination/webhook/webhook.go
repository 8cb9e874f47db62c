// Package webhook is the http destination: it POSTs each event's raw body,
// with its original Content-Type and the webhook-id, webhook-timestamp and
// Hookd-* headers, to a configured URL, and classifies the answer (see
// Classify).
//
// Connections: a keep-alive pool per destination; redirects are never
// followed (a 3xx is a retriable failure); TLS certificates are always
// verified; proxies from the environment are ignored; at most 1 KiB of an
// answer is read and the rest is discarded unread. With an SSRF guard in
// the Env (hookd serve must pass one), the URL is checked when the
// destination is opened and every connection is dialed through the guard,
// which checks the address actually connected to (see package egress).
package webhook

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"

	"hookd"
	"hookd/internal/destination"
	"hookd/internal/destination/oauth"
)

// Type is the destination type key.
const Type = "http"

func init() {
	destination.Register(Type, destination.Decoded(New))
}

// Headers hookd sets on every request. The Standard Webhooks names are
// sent in lower case, as that specification and SPEC §3 spell them.
const (
	HeaderID        = "webhook-id"
	HeaderTimestamp = "webhook-timestamp"
	HeaderEventType = "Hookd-Event-Type"
	HeaderSource    = "Hookd-Source"
	HeaderAttempt   = "Hookd-Attempt"
)

// Pool limits. The engine bounds concurrency per destination; the pool
// only needs to keep that many connections warm.
const (
	maxIdleConns      = 64
	idleConnTimeout   = 90 * time.Second
	tcpKeepAlive      = 30 * time.Second
	maxResponseHeader = 64 << 10
	// drainLimit is how much of an answer beyond the excerpt is read so
	// that a small answer leaves its connection reusable; past it the
	// connection is closed instead.
	drainLimit = 4 << 10
)

// Destination delivers events to one URL. It is safe for concurrent use.
type Destination struct {
	s         *settings
	now       func() time.Time
	transport *http.Transport
	client    *http.Client
	userAgent string
	// tokens gets the bearer tokens of auth type oauth2; nil otherwise.
	tokens *oauth.Source
	closed atomic.Bool
}

var _ destination.Destination = (*Destination)(nil)

// New validates o and returns a destination. Errors name the option at
// fault. env may be nil (the real clock is used, and no SSRF guard).
func New(env *destination.Env, o Options) (*Destination, error) {
	s, err := o.validate()
	if err != nil {
		return nil, err
	}
	now := time.Now
	if env != nil && env.Now != nil {
		now = env.Now
	}
	dialer := &net.Dialer{Timeout: s.connectTimeout, KeepAlive: tcpKeepAlive}
	dial := dialer.DialContext
	if env != nil && env.Egress != nil {
		if dial, err = guardedDial(env, s); err != nil {
			return nil, err
		}
	}
	var tokens *oauth.Source
	if s.auth != nil && s.auth.typ == AuthOAuth2 {
		oo := oauth.Options{Now: now}
		if env != nil {
			oo.Egress, oo.Log = env.Egress, env.Log
		}
		if tokens, err = oauth.New(s.auth.oauth, oo); err != nil {
			return nil, fmt.Errorf("auth.%w", err)
		}
	}
	tr := &http.Transport{
		Proxy:                  nil, // never from the environment
		DialContext:            dial,
		TLSClientConfig:        &tls.Config{MinVersion: tls.VersionTLS12},
		TLSHandshakeTimeout:    s.connectTimeout,
		ForceAttemptHTTP2:      true,
		MaxIdleConns:           maxIdleConns,
		MaxIdleConnsPerHost:    maxIdleConns,
		IdleConnTimeout:        idleConnTimeout,
		MaxResponseHeaderBytes: maxResponseHeader,
		// No Accept-Encoding: the excerpt is what the receiver sent, and
		// nothing is decompressed.
		DisableCompression: true,
	}
	return &Destination{
		s:         s,
		now:       now,
		transport: tr,
		client: &http.Client{
			Transport: tr,
			CheckRedirect: func(*http.Request, []*http.Request) error {
				return http.ErrUseLastResponse
			},
		},
		userAgent: "hookd/" + hookd.Version,
		tokens:    tokens,
	}, nil
}

// guardedDial checks the destination's URL with env's SSRF guard and
// returns a dial function that connects only to addresses the guard
// allows (through egress.proxy when one is set), within the connect
// timeout.
func guardedDial(env *destination.Env, s *settings) (func(ctx context.Context, network, addr string) (net.Conn, error), error) {
	g := env.Egress
	if err := g.CheckURL(s.url); err != nil {
		return nil, fmt.Errorf("destination %q: url: %w", env.Name, err)
	}
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		ctx, cancel := context.WithTimeout(ctx, s.connectTimeout)
		defer cancel() // only bounds the dial: the connection outlives it
		return g.DialHTTP(ctx, network, addr)
	}, nil
}

// errClosed is returned by Deliver after Close.
var errClosed = errors.New("destination closed")

// Deliver sends one attempt and classifies the answer (see Classify).
// Connection errors and timeouts are plain (retriable) errors; a
// cancelled ctx gives an error that wraps ctx's error. With oauth2 auth, no
// token for the first send is a retriable error wrapping
// oauth.ErrTokenUnavailable; a 401 answer gets one fresh token and one
// re-send, and a second 401 (or no fresh token) is Permanent. The Result
// is the last answer's.
func (d *Destination) Deliver(ctx context.Context, m *destination.Message) (destination.Result, error) {
	if d.closed.Load() {
		return destination.Result{}, errClosed
	}
	if m == nil || m.Event == nil {
		return destination.Result{}, destination.Permanent(errors.New("no event to deliver"))
	}
	if err := ctx.Err(); err != nil {
		return destination.Result{}, fmt.Errorf("not sent: %w", err)
	}
	actx, cancel := context.WithTimeout(ctx, d.s.timeout)
	defer cancel()

	if d.tokens == nil {
		return d.send(ctx, actx, m, "")
	}
	// oauth2 (seed 000): a bearer token per attempt; a 401 answer gets one
	// fresh token and one immediate re-send within the same attempt.
	token, err := d.tokens.Token(actx)
	if err != nil {
		return destination.Result{}, d.tokenError(ctx, err)
	}
	res, err := d.send(ctx, actx, m, token)
	if res.StatusCode != http.StatusUnauthorized {
		return res, err
	}
	d.tokens.Invalidate(token)
	fresh, terr := d.tokens.Token(actx)
	if terr != nil {
		if cerr := ctx.Err(); cerr != nil {
			return res, fmt.Errorf("cancelled: %w", cerr)
		}
		return res, destination.Permanent(fmt.Errorf("401 answer and no fresh token: %w", terr))
	}
	res, err = d.send(ctx, actx, m, fresh)
	if res.StatusCode == http.StatusUnauthorized {
		return res, destination.Permanent(errors.New("401 answer again after a fresh token"))
	}
	return res, err
}

// tokenError is the outcome of an attempt for which no token could be
// obtained: retriable, with the reason token_unavailable, unless ctx ended.
func (d *Destination) tokenError(ctx context.Context, err error) error {
	if cerr := ctx.Err(); cerr != nil {
		return fmt.Errorf("cancelled: %w", cerr)
	}
	if !errors.Is(err, oauth.ErrTokenUnavailable) {
		err = fmt.Errorf("%w: %v", oauth.ErrTokenUnavailable, err)
	}
	return fmt.Errorf("not sent: %w", err)
}

// send sends one request of an attempt (with token as a bearer token when
// not empty) and classifies its answer. ctx is the caller's context, actx
// the attempt's.
func (d *Destination) send(ctx, actx context.Context, m *destination.Message, token string) (destination.Result, error) {
	req, err := d.newRequest(actx, m)
	if err != nil {
		return destination.Result{}, destination.Permanent(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := d.client.Do(req)
	if err != nil {
		return destination.Result{}, d.transportError(ctx, err)
	}
	res := destination.Result{StatusCode: resp.StatusCode}
	// The status decides the outcome; an excerpt cut short (a timeout or a
	// reset while reading it) changes nothing, so its error is dropped.
	res.ResponseExcerpt, _ = readExcerpt(resp.Body, d.s.maxResponse)
	_ = resp.Body.Close()
	return res, Classify(resp.StatusCode, resp.Header, d.now())
}

// newRequest builds one attempt's request.
func (d *Destination) newRequest(ctx context.Context, m *destination.Message) (*http.Request, error) {
	ev := m.Event
	target := d.s.url
	if m.Path != nil || m.Query != nil {
		// A transformation's path and query; the scheme and the host stay
		// the destination's, so the egress guard's decision holds.
		u, err := url.Parse(d.s.url)
		if err != nil {
			return nil, fmt.Errorf("build request: %v", redactURLError(err))
		}
		if m.Path != nil {
			u.Path, u.RawPath = *m.Path, ""
			// Parsed after a host of its own, so that a path starting
			// with "//" stays a path (alone it would parse as an
			// authority, and its first segment would be dropped).
			if pu, err := url.Parse("http://x" + *m.Path); err == nil && pu.Host == "x" {
				u.Path, u.RawPath = pu.Path, pu.RawPath
			}
		}
		if m.Query != nil {
			u.RawQuery = *m.Query
		}
		target = u.String()
	}
	req, err := http.NewRequestWithContext(ctx, d.s.method, target, bytes.NewReader(ev.Body))
	if err != nil {
		return nil, fmt.Errorf("build request: %v", redactURLError(err))
	}
	h := req.Header
	h.Set("User-Agent", d.userAgent)
	for k, v := range d.s.headers {
		h[k] = v
	}
	// A transformation's headers come after the configured ones, but
	// before the destination's credentials: the auth configured (header,
	// basic, and oauth2 below) is always the one sent.
	for k, v := range m.Headers {
		h.Set(k, headerSafe(v))
	}
	if a := d.s.auth; a != nil && a.value != "" {
		h.Set(a.header, a.value)
	}
	// hookd's lower-case protocol headers are set below exactly as named;
	// a transformation's (or a configured) header of the same name in
	// another case would otherwise be sent beside them, and read first.
	for k := range h {
		if strings.EqualFold(k, HeaderID) || strings.EqualFold(k, HeaderTimestamp) {
			delete(h, k)
		}
	}
	ct := ev.ContentType
	if ct == "" {
		ct = "application/octet-stream"
	}
	h.Set("Content-Type", headerSafe(ct))
	// Not canonicalised: sent exactly as named.
	now := d.now()
	h[HeaderID] = []string{headerSafe(ev.ID)}
	h[HeaderTimestamp] = []string{strconv.FormatInt(now.Unix(), 10)}
	if d.s.signer != nil {
		// The id, the timestamp and the body signed are the ones sent.
		sig, err := d.s.signer.Sign(ev.ID, now, ev.Body)
		if err != nil {
			return nil, destination.Permanent(fmt.Errorf("sign: %w", err))
		}
		sig.Apply(h)
	}
	if ev.Type != "" {
		h.Set(HeaderEventType, headerSafe(ev.Type))
	}
	if ev.Source != "" {
		h.Set(HeaderSource, headerSafe(ev.Source))
	}
	h.Set(HeaderAttempt, strconv.Itoa(m.Attempt))
	// With tracing on, ctx holds the attempt's span: the receiver gets
	// its W3C traceparent, replacing any configured. Nothing is set when
	// tracing is off.
	if sc := trace.SpanContextFromContext(ctx); sc.IsValid() {
		traceContext.Inject(ctx, propagation.HeaderCarrier(h))
	}
	return req, nil
}

var traceContext propagation.TraceContext

// transportError describes a failure to get an answer, without the URL
// (its query may hold a token). ctx is the caller's context: when it is
// done, the error wraps its error.
func (d *Destination) transportError(ctx context.Context, err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		err = ue.Err
	}
	if cerr := ctx.Err(); cerr != nil {
		return fmt.Errorf("cancelled: %w", cerr)
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return fmt.Errorf("no answer within timeout %s: %w", d.s.timeout, err)
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return fmt.Errorf("timeout: %w", err)
	}
	return fmt.Errorf("send: %w", err)
}

// readExcerpt reads at most n bytes of body, then up to drainLimit more
// (discarded) so that a short answer leaves its connection reusable.
func readExcerpt(body io.Reader, n int64) ([]byte, error) {
	buf, err := io.ReadAll(io.LimitReader(body, n))
	if err != nil {
		return buf, err
	}
	_, err = io.CopyN(io.Discard, body, drainLimit)
	if errors.Is(err, io.EOF) {
		err = nil
	}
	return buf, err
}

// Close closes idle connections. Deliver calls in flight finish; later
// ones fail. Safe to call more than once.
func (d *Destination) Close() error {
	d.closed.Store(true)
	d.transport.CloseIdleConnections()
	return nil
}
