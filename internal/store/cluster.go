package store

import (
	"context"
	"time"
)

// Cluster is what a store shared by several hookd processes (replicas)
// offers on top of Store: liveness, leases with fencing epochs, claims
// held by a replica, and wake-ups between replicas. PostgreSQL implements
// it; the embedded SQLite store, one process, does not. Lease times are
// the database's clock, so that replicas' clocks need not agree.
type Cluster interface {
	// ReplicaBeat records that replica id is alive for ttl more (creating
	// its row the first time) and renews, to the same instant, its claims
	// on the deliveries held (status delivering, owner id, lease not
	// ended, id among held): a claim the replica no longer holds in
	// memory is left to end. It returns the live replicas' ids, sorted,
	// and the ids of the claims it renewed (a held claim not among them
	// had ended: another replica may have it).
	// Rows of replicas dead for long are removed.
	ReplicaBeat(ctx context.Context, id string, ttl time.Duration, held []string) (live, renewed []string, err error)
	// DeliveryRelease hands claims back (retrying, due at now, no owner):
	// each delivery of claims (id → lease epoch) that owner still holds
	// with that epoch. A replica releases what it claimed and will not
	// attempt, so that the others need not wait for the lease to end.
	DeliveryRelease(ctx context.Context, owner string, claims map[string]int64, now time.Time) error
	// ReplicaLeave ends replica id: its row, its named leases, and its
	// claims on deliveries (returned to retrying, due now, for the others).
	ReplicaLeave(ctx context.Context, id string, now time.Time) error
	// LeaseTry takes the named lease for owner, or renews it when owner
	// holds it, for ttl; held is false when another owner's lease has not
	// ended. epoch grows each time the lease changes hands.
	LeaseTry(ctx context.Context, name, owner string, ttl time.Duration) (held bool, epoch int64, err error)
	// LeaseRelease gives up the named lease if owner holds it.
	LeaseRelease(ctx context.Context, name, owner string) error
	// DeliveryClaim is DeliveryClaimDue for a replica: the claimed
	// deliveries get Owner owner, a lease of ttl on the database's clock,
	// and a new LeaseEpoch, which their outcome writes carry; delivering
	// rows are taken over once their lease has ended.
	DeliveryClaim(ctx context.Context, owner, destination string, now time.Time, ttl time.Duration, limit int) ([]*Delivery, error)
	// DeliveryLoadOwned is DeliveryLoadOrdered for the replica that holds
	// an ordered destination's lease (epoch): it stamps the rows it
	// returns with owner and epoch, so that a former holder's late
	// outcomes are refused, and returns only deliveries of events below
	// the stream horizon (no event that commits later can come before
	// them).
	// ReplayJobPut stores a bulk replay's record (job, the engine's JSON),
	// run by owner; running false once it has finished.
	ReplayJobPut(ctx context.Context, id, owner string, running bool, job []byte) error
	// ReplayJobGet returns a replay's record, or ErrNotFound.
	ReplayJobGet(ctx context.Context, id string) ([]byte, error)
	// ReplayJobOrphans takes over, for taker, the running replays whose
	// owner is not live (it died before finishing them) and returns their
	// records.
	ReplayJobOrphans(ctx context.Context, taker string) (map[string][]byte, error)
	// DeliveryReleaseUnowned returns deliveries left delivering with no
	// owner (claimed by a version without replica support, which is gone)
	// to retrying, due at now, and says how many.
	DeliveryReleaseUnowned(ctx context.Context, now time.Time) (int, error)
	// RoutedAfter returns the seq of the last event stored by a version
	// without replica support (0: none): events after it were stored
	// with their deliveries.
	RoutedAfter(ctx context.Context) (int64, error)
	DeliveryLoadOwned(ctx context.Context, owner string, epoch int64, destination string, afterSeq int64, limit int) ([]*Delivery, error)
}
