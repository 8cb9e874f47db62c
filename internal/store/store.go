// Package store is the storage seam of hookd: one interface that the
// embedded SQLite driver and the PostgreSQL driver implement, the params
// structs its methods take, and the group-commit batcher both share.
package store

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"time"

	"hookd"
)

// ErrNotFound is returned when a looked-up row does not exist.
var ErrNotFound = errors.New("not found")

// Store is what hookd needs from its database. Methods are named entity
// first so that they sort together.
type Store interface {
	// EventInsertMany stores every insert in one transaction with one
	// durable commit. Results are in the order of ins. When it returns an
	// error, nothing of the batch was stored.
	EventInsertMany(ctx context.Context, ins []*EventInsert) ([]EventInsertResult, error)
	// EventGet returns one event, or ErrNotFound.
	EventGet(ctx context.Context, id string) (*hookd.Event, error)
	// EventList returns events matching p and the cursor of the next page
	// ("" when there is none).
	EventList(ctx context.Context, p *EventListParams) ([]*hookd.Event, string, error)
	// RequestGet resolves an ingest request id to its event; ErrNotFound
	// when no stored event or duplicate has that request id.
	RequestGet(ctx context.Context, requestID string) (*hookd.Request, error)
	// SettingGetOrCreate returns the value stored under name, storing value
	// first when there is none (hookd's generated admin token, for one).
	SettingGetOrCreate(ctx context.Context, name, value string) (string, error)
	// SettingGet returns the value stored under name, or ErrNotFound.
	SettingGet(ctx context.Context, name string) (string, error)
	// SettingPut stores value under name, replacing any value, durably.
	SettingPut(ctx context.Context, name, value string) error
	// Ping checks that the database answers.
	Ping(ctx context.Context) error
	// Close releases the database. It is safe to call more than once.
	Close() error

	DeliveryStore
	SessionStore
	EventCounter
}

// EventInsert is one event to store.
type EventInsert struct {
	// Event is stored as given; Seq is assigned by the store. For a
	// duplicate, nothing of it is stored but its RequestID.
	Event *hookd.Event
	// DedupeWindow is how long, from the first occurrence, an event with the
	// same (Source, ExternalID) counts as a duplicate. Zero disables dedupe.
	DedupeWindow time.Duration
	// HeadersJSON is Event.Headers already encoded with EncodeHeaders, so
	// that the encoding runs in the caller's goroutine rather than the
	// single writer's. Optional.
	HeadersJSON string
	// Deliveries, when set, are stored in the same transaction as the
	// event when it is new (not a duplicate): a process that dies after the
	// commit leaves its event's deliveries in the store for the others
	// (several replicas on PostgreSQL). StaleDeliveries replace them when the
	// store finds the event stale (nil: the same). The driver sets EventSeq
	// (and EventID when empty); every other field is stored as given
	// (Status pending, NextAttemptAt zero: due at the commit). The SQLite
	// driver, one process, ignores both: its engine derives deliveries after
	// the commit.
	Deliveries, StaleDeliveries []*Delivery
}

// DedupeKey is what a driver indexes for dedupe: the provider's id itself,
// or a digest of it when it is long, so that ids of any length dedupe
// exactly and the index stays small.
func DedupeKey(externalID string) string {
	if len(externalID) <= 128 {
		return externalID
	}
	sum := sha256.Sum256([]byte(externalID))
	return "sha256:" + hex.EncodeToString(sum[:])
}

// EncodeHeaders encodes request headers as stored: a JSON object of lists.
func EncodeHeaders(h map[string][]string) (string, error) {
	b, err := json.Marshal(h)
	return string(b), err
}

// EventInsertResult tells what happened to one EventInsert.
type EventInsertResult struct {
	// ID is the stored event's id: the new one, or the original's for a
	// duplicate.
	ID string
	// Seq is the stored event's position in the log.
	Seq int64
	// Duplicate is true when an event with the same external id was already
	// stored within the dedupe window.
	Duplicate bool
	// Stale is true when the event is older than the newest one for its key.
	Stale bool
}

// Order of a listing.
const (
	OrderAsc  = "asc"
	OrderDesc = "desc"
)

// EventListParams filters and pages an event listing.
type EventListParams struct {
	Source string
	// Type is an exact event type or, with a "*", a pattern with the
	// routing patterns' semantics (SPEC §3): "order.*", "*.created". An
	// invalid pattern is an error.
	Type string
	// Since and Until bound ReceivedAt (inclusive, exclusive); zero means open.
	Since time.Time
	Until time.Time
	// After continues a listing: only events after (asc) or before (desc)
	// this cursor. Cursors are opaque strings produced by EventList.
	After string
	// Order is OrderAsc (oldest first, the FIFO stream) or OrderDesc.
	Order string
	// Limit is the page size; the driver caps it.
	Limit int
	// WithBody loads event bodies and headers too.
	WithBody bool
	// MaxBodyBytes, with WithBody, ends a page early: it ends before the
	// event whose body would take the bodies it holds past this many
	// bytes, with the cursor to continue, however many Limit allows. A
	// page holds at least one event, whatever its size, so a listing
	// always advances. Zero: no bound.
	MaxBodyBytes int64
	// DeliveryStatus keeps only events with at least one delivery in that
	// status (the failed queue's events: "failed").
	DeliveryStatus string
	// DeliveryDestination keeps only events with at least one delivery to
	// that destination (in DeliveryStatus, when both are set: the same
	// delivery).
	DeliveryDestination string
}

// MaxListLimit caps every listing's page size.
const MaxListLimit = 1000
