// Package destination is the seam between the delivery engine and the
// places events go (http, kafka, nats, amqp, redis, file, exec): the
// Destination interface, a registry by type key, and the error wrappers
// that classify an attempt's outcome.
//
// A destination kind registers a Factory from an init function. Its
// lifecycle: decode its options strictly, open, validate, Deliver many
// times (concurrently), Close (which must work after a partial open).
package destination

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"time"

	"hookd"
	"hookd/internal/egress"
)

// Message is one attempt at delivering one event.
type Message struct {
	// Event is the event, with its raw body and content type.
	Event *hookd.Event
	// DeliveryID identifies the delivery (one event to one destination).
	DeliveryID string
	// Attempt is the attempt number, 1 for the first.
	Attempt int
	// Headers are headers a transformation set (lower-case names): an
	// http destination sends them after its configured headers, and its
	// credentials and own protocol headers (Content-Type, webhook-*,
	// Hookd-*) after them.
	// Nil when none.
	Headers map[string]string
	// Path and Query, when not nil, replace the path and the query of an
	// http destination's URL (a transformation's path and query); the
	// scheme and the host never change. Other kinds ignore them.
	Path, Query *string
}

// Result is what an attempt produced, for the attempt log.
type Result struct {
	// StatusCode is the answer's status for HTTP-like destinations, else 0.
	StatusCode int
	// ResponseExcerpt is at most MaxExcerpt bytes of the answer.
	ResponseExcerpt []byte
}

// MaxExcerpt caps the response kept in the attempt log.
const MaxExcerpt = 1024

// Destination delivers messages to one configured place. Deliver is called
// concurrently. A nil error means delivered (for brokers: confirmed). An
// error is classified by the wrappers below; a plain error is retriable.
type Destination interface {
	Deliver(ctx context.Context, m *Message) (Result, error)
	Close() error
}

// Options gives a factory its configuration; Decode decodes the kind's own
// options strictly into a struct with yaml tags.
type Options interface {
	Decode(dst any) error
}

// Env is what a factory may use besides its options.
type Env struct {
	// Name is the destination's configured name.
	Name string
	// Now is the clock.
	Now func() time.Time
	// Egress is the SSRF guard (egress.allow_private and the http
	// allow-list): destinations that connect to configured URLs check them
	// with it when opened and dial through it. hookd serve must always set it;
	// nil (tests only) means no guard.
	Egress *egress.Guard
	// Log is the destination's logger (for what its deliveries' outcomes
	// cannot show, such as a token endpoint's refusal). Nil means none.
	Log *slog.Logger
}

// Factory opens a destination of one kind.
type Factory func(ctx context.Context, env *Env, opts Options) (Destination, error)

var factories = map[string]Factory{}

// Register makes a destination kind available under typ.
func Register(typ string, f Factory) {
	if _, dup := factories[typ]; dup {
		panic("destination: duplicate kind " + typ)
	}
	factories[typ] = f
}

// Types lists the registered kinds.
func Types() []string {
	out := make([]string, 0, len(factories))
	for t := range factories {
		out = append(out, t)
	}
	sort.Strings(out)
	return out
}

// Decoded is the Factory of a kind whose options decode strictly into O
// and whose constructor is newFn; kinds register it:
//
//	destination.Register(Type, destination.Decoded(New))
func Decoded[O any, D Destination](newFn func(*Env, O) (D, error)) Factory {
	return func(_ context.Context, env *Env, opts Options) (Destination, error) {
		var o O
		if err := opts.Decode(&o); err != nil {
			return nil, err
		}
		d, err := newFn(env, o)
		if err != nil {
			return nil, err // a nil interface, not a typed nil inside one
		}
		return d, nil
	}
}

// Open opens a destination of kind typ.
func Open(ctx context.Context, typ string, env *Env, opts Options) (Destination, error) {
	f, ok := factories[typ]
	if !ok {
		return nil, fmt.Errorf("unknown destination type %q (available: %v)", typ, Types())
	}
	return f(ctx, env, opts)
}

// permanentError marks an outcome that no retry can change (a 4xx other
// than 408/425/429): the delivery goes to failed at once.
type permanentError struct{ err error }

func (e *permanentError) Error() string { return e.err.Error() }
func (e *permanentError) Unwrap() error { return e.err }

// Permanent marks err as final: no retry.
func Permanent(err error) error { return &permanentError{err: err} }

// IsPermanent reports whether err was marked Permanent.
func IsPermanent(err error) bool {
	var p *permanentError
	return errors.As(err, &p)
}

// retryAfterError asks for the next attempt no earlier than After.
type retryAfterError struct {
	after time.Duration
	err   error
}

func (e *retryAfterError) Error() string { return e.err.Error() }
func (e *retryAfterError) Unwrap() error { return e.err }

// RetryAfter marks err as retriable no earlier than d from now (an HTTP
// Retry-After, a broker's back-pressure). The retry policy caps d.
func RetryAfter(d time.Duration, err error) error { return &retryAfterError{after: d, err: err} }

// RetryAfterOf returns the delay asked for by RetryAfter, if any.
func RetryAfterOf(err error) (time.Duration, bool) {
	var r *retryAfterError
	if errors.As(err, &r) {
		return r.after, true
	}
	return 0, false
}

// goneError says the destination no longer exists (HTTP 410): the delivery
// fails and the destination is disabled.
type goneError struct{ err error }

func (e *goneError) Error() string { return e.err.Error() }
func (e *goneError) Unwrap() error { return e.err }

// Gone marks err as "destination gone": final, and disables the destination.
func Gone(err error) error { return &goneError{err: err} }

// IsGone reports whether err was marked Gone.
func IsGone(err error) bool {
	var g *goneError
	return errors.As(err, &g)
}
