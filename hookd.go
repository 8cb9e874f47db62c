// Package hookd holds the domain vocabulary of the hookd webhook gateway:
// events, sources, requests and the error codes every adapter speaks.
// It depends on the standard library only; the adapters under internal/
// talk to each other in these types.
package hookd

import (
	"crypto/rand"
	"strings"
	"sync"
	"time"

	"github.com/oklog/ulid/v2"
)

// Version is the build version, set with -ldflags "-X hookd.Version=…".
var Version = "dev"

// Revision and BuildTime, when set with -ldflags "-X hookd.Revision=…
// -X hookd.BuildTime=…" (as deploy/build.sh does), name the source
// revision and the time of a release build. Without them, hookd version
// reports the revision the Go toolchain recorded from the VCS checkout it
// built in, if any, and no build time (Go records none).
var (
	Revision  = ""
	BuildTime = ""
)

// Event is one accepted request: the raw body exactly as received plus the
// metadata selected from it.
type Event struct {
	// Seq is the position of the event in the durable log, assigned at commit
	// in commit order. It is the cursor of the replayable stream.
	Seq int64
	// ID is hookd's own identifier, "evt_" + a ULID (time-sortable).
	ID string
	// Source is the name of the source the event came in on.
	Source string
	// ExternalID is the provider's id, used for dedupe. Empty when absent.
	ExternalID string
	// Type is the event type, such as "event.claim.created.v1".
	Type string
	// Key is the entity key, for ordering and out-of-order detection.
	Key string
	// OccurredAt is the provider's timestamp; zero when absent.
	OccurredAt time.Time
	// ReceivedAt is when hookd received the request.
	ReceivedAt time.Time
	// RequestID is the id of the request that created the event.
	RequestID string
	// Stale is true when an event with a newer OccurredAt was already
	// received for the same Source and Key.
	Stale bool
	// ContentType is the request's Content-Type header.
	ContentType string
	// Headers are the request headers as received.
	Headers map[string][]string
	// Body is the raw request body.
	Body []byte
	// TraceParent is the W3C traceparent of the span of the request that
	// created the event, when tracing is on: delivery attempts, made
	// later and maybe by another replica, continue its trace. Empty when
	// tracing is off.
	TraceParent string
}

// Request describes one ingest request as the request log resolves it:
// either the request that created an event, or a duplicate of it.
type Request struct {
	ID         string
	EventID    string
	Duplicate  bool
	ReceivedAt time.Time
}

// ID prefixes.
const (
	EventIDPrefix   = "evt_"
	RequestIDPrefix = "req_"
)

var (
	idMu      sync.Mutex
	idEntropy = ulid.Monotonic(rand.Reader, 0)
)

// NewULID returns a new, monotonically increasing ULID string for t.
func NewULID(t time.Time) string {
	idMu.Lock()
	id := ulid.MustNew(ulid.Timestamp(t), idEntropy)
	idMu.Unlock()
	return id.String()
}

// EventIDForRequest returns the id an event created by the request with id
// requestID gets: both share one ULID, so a request id resolves to its event
// without an index of its own.
func EventIDForRequest(requestID string) string {
	return EventIDPrefix + strings.TrimPrefix(requestID, RequestIDPrefix)
}

// RequestIDForEvent is the inverse of EventIDForRequest.
func RequestIDForEvent(eventID string) string {
	return RequestIDPrefix + strings.TrimPrefix(eventID, EventIDPrefix)
}

// ValidID reports whether s is prefix followed by a well-formed ULID.
func ValidID(s, prefix string) bool {
	if !strings.HasPrefix(s, prefix) {
		return false
	}
	_, err := ulid.ParseStrict(s[len(prefix):])
	return err == nil
}
