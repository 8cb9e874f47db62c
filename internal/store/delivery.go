package store

import (
	"context"
	"time"
)

// Delivery statuses (SPEC §1). A delivery is one event to one destination.
const (
	StatusPending    = "pending"
	StatusDelivering = "delivering"
	StatusSucceeded  = "succeeded"
	StatusRetrying   = "retrying"
	StatusFailed     = "failed"
	StatusCancelled  = "cancelled"
)

// DeliveryStore is the part of the storage seam the delivery engine and the
// admin API use. Deliveries are written in batches by one writer (the
// engine's completer), so every write method takes many rows.
//
// Row economy (docs/DELIVERY.md): a delivery that succeeds at its first
// attempt costs one row, written after the attempt; only failed attempts
// get rows of their own in the attempt log (the last attempt of a delivery
// is also kept on the delivery row).
type DeliveryStore interface {
	// DeliveryWriteMany applies writes in one transaction, then sets the
	// engine's fan-out watermark to watermark when it is > 0 (it never
	// moves back). A write whose Fence does not match the stored attempt
	// count is skipped (a stale worker's late result) and reported in the
	// returned slice of skipped delivery ids.
	DeliveryWriteMany(ctx context.Context, writes []*DeliveryWrite, watermark int64) (skipped []string, err error)
	// DeliveryGet returns one delivery with its attempt log, or ErrNotFound.
	DeliveryGet(ctx context.Context, id string) (*Delivery, error)
	// DeliveryList lists deliveries matching p, newest event first (event
	// seq descending, then destination name), and the cursor of the next
	// page ("" when there is none). Attempts are not loaded. An invalid
	// cursor is an EInvalid error. The event filters (Source, EventType,
	// Since, Until) match on the stored event: a delivery whose event is
	// gone is listed only without them.
	DeliveryList(ctx context.Context, p *DeliveryListParams) ([]*Delivery, string, error)
	// DeliveryListByEvent returns the deliveries of one event with their
	// attempt logs, by destination name.
	DeliveryListByEvent(ctx context.Context, eventID string) ([]*Delivery, error)
	// DeliveryExisting returns which of the (event id, destination) pairs
	// already have a delivery row, as a set of delivery ids.
	DeliveryExisting(ctx context.Context, ids []string) (map[string]bool, error)
	// DeliveryClaimDue claims up to limit deliveries of destination that are
	// pending or retrying and due at now, or delivering with a lease that
	// ended before now, oldest due first: it sets them delivering with a
	// lease until now+lease and returns them (Attempts is the fence a result
	// must carry).
	DeliveryClaimDue(ctx context.Context, destination string, now time.Time, lease time.Duration, limit int) ([]*Delivery, error)
	// DeliveryLoadOrdered returns up to limit unfinished deliveries
	// (pending, retrying or delivering) of destination whose event seq is
	// greater than afterSeq, in event seq order, due or not. Ordered
	// destinations (fifo, key) load their queue with it; they are run by
	// one process at a time.
	DeliveryLoadOrdered(ctx context.Context, destination string, afterSeq int64, limit int) ([]*Delivery, error)
	// DeliveryNextDue returns the earliest next_attempt_at of destination's
	// pending or retrying deliveries; ok is false when there is none.
	DeliveryNextDue(ctx context.Context, destination string) (at time.Time, ok bool, err error)
	// DeliveryReplayMany queues deliveries again (retry one, bulk replay):
	// each one that has no row is inserted as pending, due at now; each one
	// stored is reset to pending, due at now, with a new round
	// (RoundAttempts 0, FirstAttemptAt and Reason cleared; Attempts and the
	// attempt log kept), unless it is delivering. Only the identity fields
	// of ds are read (ID, EventID, EventSeq, EventKey, Destination,
	// SubscriptionID). It returns how many were queued.
	DeliveryReplayMany(ctx context.Context, ds []*Delivery, now time.Time) (int, error)
	// DeliveryReleaseAll returns every delivering delivery to retrying, due
	// now. A single-node store calls it on start: leases of a process that
	// died are its own.
	DeliveryReleaseAll(ctx context.Context, now time.Time) (int, error)
	// DeliveryCountByStatus counts deliveries per status, optionally for
	// one destination ("" for all).
	DeliveryCountByStatus(ctx context.Context, destination string) (map[string]int64, error)
	// DeliveryCountByDestination counts the deliveries in one status
	// (the failed queue: "failed") per destination; a destination with
	// none is absent. It reads only the rows in that status.
	DeliveryCountByDestination(ctx context.Context, status string) (map[string]int64, error)

	// AttemptCountTotals returns the attempt counts of every destination
	// that has any, by name: every outcome written with
	// DeliveryWrite.Outcome since the store was created, by every process
	// on it. Deleting a destination keeps its counts (as it keeps its
	// deliveries).
	AttemptCountTotals(ctx context.Context) (map[string]AttemptCounts, error)
	// AttemptCountList returns the per-minute attempt counts p selects,
	// oldest minute first, then by destination.
	AttemptCountList(ctx context.Context, p *AttemptCountListParams) ([]*AttemptMinute, error)
	// AttemptCountPrune deletes the per-minute counts of the minutes that
	// start before before (the totals stay) and returns how many rows it
	// deleted.
	AttemptCountPrune(ctx context.Context, before time.Time) (int64, error)

	// WatermarkGet returns the fan-out watermark: every event with a seq at
	// or below it has a delivery row for every subscription that matched
	// it. 0 when never set.
	WatermarkGet(ctx context.Context) (int64, error)
	// Prune deletes old events in one transaction: from the lowest seq
	// after p.After, up to p.Limit events received before p.Before with a
	// seq at most p.MaxSeq whose deliveries are all finished (succeeded,
	// failed or cancelled), with their deliveries, attempt logs and
	// duplicate requests. Events it passes over (unfinished deliveries)
	// stay. See PruneParams and PruneResult.
	Prune(ctx context.Context, p PruneParams) (PruneResult, error)
	// EventMaxSeq returns the highest event seq stored, 0 when none.
	EventMaxSeq(ctx context.Context) (int64, error)
	// EventCount counts the events matching p's filters (After, Limit and
	// Order are ignored).
	EventCount(ctx context.Context, p *EventListParams) (int64, error)

	// DestinationPut creates or replaces an API-managed destination. The
	// disabled state is the record's when its DisabledAt is set; otherwise
	// the stored one is kept (a state-only row, or the replaced
	// destination's), so that replacing a spec does not re-enable it:
	// DestinationSetDisabled clears it. CreatedAt is kept on replace.
	DestinationPut(ctx context.Context, d *DestinationRecord) error
	// DestinationDelete deletes one; ErrNotFound when there is none.
	DestinationDelete(ctx context.Context, name string) error
	// SourcePut creates or replaces a source created through the admin
	// API. Spec is its definition, as the caller sealed it.
	SourcePut(ctx context.Context, s *SourceRecord) error
	// SourceDelete deletes one; ErrNotFound when there is none.
	SourceDelete(ctx context.Context, name string) error
	// SourceList returns every stored source, by name.
	SourceList(ctx context.Context) ([]*SourceRecord, error)
	// DestinationList returns every stored destination, by name. Records
	// that only carry state (a configured destination's disabled flag)
	// are included with Spec empty.
	DestinationList(ctx context.Context) ([]*DestinationRecord, error)
	// DestinationSetDisabled records (at non-zero) or clears (at zero)
	// that a destination, configured or stored, is disabled. Recording it
	// for a name with no row creates a state-only row (Spec empty);
	// clearing it removes a state-only row, and is a no-op for a name with
	// no row.
	DestinationSetDisabled(ctx context.Context, name string, at time.Time, reason string) error
	// DestinationSwitch disables (at non-zero) or enables (at zero) a
	// destination as DestinationSetDisabled does, and reports whether its
	// state changed: a destination disabled already keeps its record (the
	// first disable wins) and changed is false, and so is enabling one that
	// is not disabled. When several processes race, exactly one sees the
	// change (hookd emits its operational event on it, docs/ALERTS.md).
	DestinationSwitch(ctx context.Context, name string, at time.Time, reason string) (changed bool, err error)
	// DestinationSetFailingSince records (since non-zero) or clears (zero)
	// when a destination's current run of failures began, creating or
	// removing a state-only row as DestinationSetDisabled does. Replacing
	// a destination's spec keeps it.
	DestinationSetFailingSince(ctx context.Context, name string, since time.Time) error

	// SubscriptionPut creates or replaces an API-managed subscription
	// (CreatedAt is kept on replace).
	SubscriptionPut(ctx context.Context, s *SubscriptionRecord) error
	// SubscriptionDelete deletes one; ErrNotFound when there is none.
	SubscriptionDelete(ctx context.Context, id string) error
	// SubscriptionList returns every stored subscription, oldest first.
	SubscriptionList(ctx context.Context) ([]*SubscriptionRecord, error)
}

// Delivery is one event to one destination, as stored.
type Delivery struct {
	// ID is DeliveryID(EventID, Destination).
	ID             string
	EventID        string
	EventSeq       int64
	EventKey       string
	Destination    string
	SubscriptionID string
	Status         string
	// Attempts counts every attempt ever made (replays continue the
	// count); it is the fence of the next result.
	Attempts int
	// RoundAttempts counts the attempts since the delivery was created or
	// last replayed: the retry policy's attempt number.
	RoundAttempts int
	// FirstAttemptAt is the start of the round's first attempt (the retry
	// policy's max_age counts from it); zero before it.
	FirstAttemptAt time.Time
	NextAttemptAt  time.Time
	LeaseUntil     time.Time
	LastAttemptAt  time.Time
	LastStatusCode int
	LastError      string
	// LastDuration and LastExcerpt complete the last attempt (the attempt
	// log shows it from the row when it has no entry of its own).
	LastDuration time.Duration
	LastExcerpt  []byte
	// Reason says why a failed delivery failed.
	Reason string
	// Generation counts the replays of the delivery (DeliveryReplayMany):
	// a write fenced by an attempt count applies only to a row of the same
	// generation, so the outcome of an attempt begun before a replay does
	// not undo the replay.
	Generation int
	// Owner is the replica whose claim holds the delivery (several
	// replicas on one database; "" when none), and LeaseEpoch counts the
	// claims made of it: a write that carries a LeaseEpoch applies only
	// while the row still has it, so that the late outcome of a replica
	// whose claim was taken over is refused (fencing). Only claims change
	// them; a write ends the claim (Owner ""). 0 with a single process.
	Owner      string
	LeaseEpoch int64
	CreatedAt  time.Time
	UpdatedAt  time.Time
	// AttemptLog is the attempt log, oldest first (DeliveryGet and
	// DeliveryListByEvent only).
	AttemptLog []*Attempt
}

// Attempt is one entry of a delivery's attempt log.
type Attempt struct {
	Number          int
	StartedAt       time.Time
	Duration        time.Duration
	StatusCode      int
	Error           string
	ResponseExcerpt []byte
}

// DeliveryWrite is one change to a delivery, applied as an upsert keyed by
// Delivery.ID.
type DeliveryWrite struct {
	// Delivery is the row as it must be after the write (every column),
	// except that a stored row keeps its CreatedAt and the identity fixed
	// by its ID (EventID, EventSeq, Destination). A zero CreatedAt or
	// UpdatedAt is the time of the write, and so is a zero NextAttemptAt
	// of a pending or retrying delivery (due at once). ID "" is
	// DeliveryID(EventID, Destination).
	Delivery *Delivery
	// Fence is the attempt count the stored row must have for the write to
	// apply; FenceNone applies the write unconditionally; FenceInsertOnly
	// applies it only when no row is stored (the outcome of work that had
	// no row: if a replay made one meanwhile, the replay wins). A fresh
	// row (none stored) is always inserted.
	Fence int
	// Attempt, when set, is appended to the attempt log (replacing an
	// entry with the same Number; Number 0 is Delivery.Attempts). It is
	// not when the write is skipped.
	Attempt *Attempt
	// Outcome marks the write as the outcome of an attempt: when it
	// applies, the destination's attempt counts (AttemptCountTotals, and
	// AttemptCountList at the minute of Delivery.UpdatedAt) take it, by
	// Delivery.Status, in the same transaction. A skipped write is not
	// counted.
	Outcome bool
}

// Fences of DeliveryWrite besides an attempt count.
const (
	FenceNone       = -1
	FenceInsertOnly = -2
)

// DeliveryListParams filters and pages a delivery listing.
type DeliveryListParams struct {
	Status      string
	Destination string
	Source      string
	EventType   string
	EventID     string
	// Since and Until bound the event's received_at.
	Since time.Time
	Until time.Time
	// After continues a listing (an opaque cursor from DeliveryList).
	After string
	Limit int
}

// DestinationRecord is a destination stored by the admin API (Spec is its
// definition as JSON: the same keys as in the configuration file), or the
// state of a configured one (Spec empty).
type DestinationRecord struct {
	Name           string
	Spec           []byte
	DisabledAt     time.Time
	DisabledReason string
	// FailingSince is when its current run of failures began (zero: none
	// recorded); only DestinationSetFailingSince writes it.
	FailingSince time.Time
	CreatedAt    time.Time
	UpdatedAt    time.Time
}

// SourceRecord is a source stored by the admin API.
type SourceRecord struct {
	Name      string
	Spec      []byte
	CreatedAt time.Time
	UpdatedAt time.Time
}

// SubscriptionRecord is a subscription stored by the admin API. Spec is
// its definition as JSON (source, destination, events, filter,
// skip_stale, active).
type SubscriptionRecord struct {
	ID        string
	Spec      []byte
	CreatedAt time.Time
	UpdatedAt time.Time
}

// DeliveryID is the id of the delivery of event eventID to destination:
// "dlv_" + the event's ULID + "_" + the destination name. It is the same
// whenever the delivery is derived again (after a crash, on replay).
func DeliveryID(eventID, destination string) string {
	const p = "evt_"
	u := eventID
	if len(u) > len(p) && u[:len(p)] == p {
		u = u[len(p):]
	}
	return "dlv_" + u + "_" + destination
}

// PruneParams selects what one Prune call may delete.
type PruneParams struct {
	// Before: only events received before it are deleted.
	Before time.Time
	// MaxSeq: only events at or below it (the fan-out watermark: every
	// event there has a row for each of its deliveries) are deleted.
	MaxSeq int64
	// After is where the scan starts (exclusive): the Next of the last
	// call, 0 at first.
	After int64
	// Limit bounds the events one call looks at. Default 500.
	Limit int
}

// PruneResult is what one Prune call did.
type PruneResult struct {
	// Events, Deliveries, Attempts and Duplicates count the rows deleted.
	Events, Deliveries, Attempts, Duplicates int64
	// Kept counts old events passed over because a delivery of theirs is
	// unfinished.
	Kept int64
	// Next is the seq to pass as After in the next call.
	Next int64
	// Done is true when the scan reached an event received at or after
	// Before, or past MaxSeq, or the end: there is nothing more to prune
	// for now.
	Done bool
}
