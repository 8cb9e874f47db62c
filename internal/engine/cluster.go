package engine

import (
	"context"
	"math"
	"slices"
	"sync"
	"time"

	"golang.org/x/time/rate"

	"hookd"
	"hookd/internal/store"
)

// cluster is the engine's part in a cluster of replicas sharing one
// database (store.Cluster): its heartbeat, which keeps this replica and
// its claims alive; the leases it holds (the maintenance leader, the
// ordered destinations it owns); and the live replicas among which
// destinations' concurrency and rate are shared.
//
// Nothing here decides correctness from memory alone: a claim, a lease
// and the replica itself live in the database, with an end the others
// can see, and every write made under one carries its epoch (fencing).
// Memory only follows: a replica whose heartbeat lapsed starts no attempt
// until it has beaten again, and then forgets the claims it held.
type cluster struct {
	st  store.Cluster
	id  string
	ttl time.Duration

	mu sync.Mutex
	// aliveUntil is when this replica's last recorded heartbeat ends, on
	// the local monotonic clock, counted from before the beat was sent.
	aliveUntil time.Time
	live       []string
	// nudges counts nudgeAll's calls (the heartbeat loop's only).
	nudges int
	// leader is whether this replica was the leader at the last beat.
	leader bool
	// leaderUntil is when this replica's leader lease ends, on the local
	// monotonic clock, counted from before it was last taken or renewed
	// (zero: not the leader).
	leaderUntil time.Time
	// routed: as leader, this replica has routed the events stored before
	// replica support (retention may then pass the watermark).
	routed bool
	// owned are the ordered destinations whose lease this replica holds,
	// with the lease's epoch and when it ends (as leaderUntil).
	owned map[string]ownedLease

	stop chan struct{}
	done chan struct{}
}

// ownedLease is an ordered destination's lease held by this replica.
type ownedLease struct {
	epoch int64
	until time.Time
}

// ownerLeasePrefix names an ordered destination's lease.
const ownerLeasePrefix = "destination:"

// leaderLease names the maintenance leader's lease.
const leaderLease = "leader"

// newReplicaID is this process's name in the cluster: unique per start,
// never reused, so that it also fences a replica that comes back after
// being given up for dead.
func newReplicaID() string { return "rep_" + hookd.NewULID(time.Now()) }

// alive reports whether this replica's heartbeat is in force, with a
// margin: an attempt begun now would end well before others could take
// its claim.
func (c *cluster) alive() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return time.Now().Before(c.aliveUntil.Add(-c.ttl / 4))
}

// share is this replica's part of n among the live replicas: n split
// evenly, the remainder to the first ones by id. 0 when the replica is not
// among them (its heartbeat lapsed).
func (c *cluster) share(n int) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	rank := slices.Index(c.live, c.id)
	if rank < 0 || len(c.live) == 0 {
		return 0
	}
	k := len(c.live)
	s := n / k
	if rank < n%k {
		s++
	}
	return s
}

// ownedEpoch returns the epoch of the ordered destination's lease when
// this replica holds it.
// The lease counts as held only while it has a quarter of its length
// left (a renewal that fails does not keep it), and while this replica's
// own heartbeat is in force.
func (c *cluster) ownedEpoch(dest string) (int64, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	l, ok := c.owned[dest]
	if !ok || !time.Now().Before(l.until.Add(-c.ttl/4)) {
		return 0, false
	}
	return l.epoch, true
}

// LiveReplicas returns how many replicas this one sees alive (0 with a
// single process).
func (e *Engine) LiveReplicas() int {
	if e.cl == nil {
		return 0
	}
	e.cl.mu.Lock()
	defer e.cl.mu.Unlock()
	return len(e.cl.live)
}

// Ready is nil unless this engine is a replica whose heartbeat is not in
// force (the database has not recorded it for a lease): it then claims
// and attempts nothing until it is.
func (e *Engine) Ready() error {
	if e.cl == nil || e.cl.alive() {
		return nil
	}
	return hookd.Errorf(hookd.EUnavailable, "this replica's cluster heartbeat is not recorded in the database")
}

func (c *cluster) isLeader() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return time.Now().Before(c.leaderUntil.Add(-c.ttl / 4))
}

// beat records the heartbeat once; lapsed is true when the previous one
// had run out (this replica was given up for dead meanwhile).
func (c *cluster) beat(ctx context.Context, held []string) (lapsed, changed bool, lost []string, err error) {
	start := time.Now()
	live, renewed, err := c.st.ReplicaBeat(ctx, c.id, c.ttl, held)
	if err != nil {
		return false, false, nil, err
	}
	if len(renewed) < len(held) {
		// A held claim that was not renewed had ended (a slow beat):
		// another replica may hold it now.
		got := make(map[string]bool, len(renewed))
		for _, id := range renewed {
			got[id] = true
		}
		for _, id := range held {
			if !got[id] {
				lost = append(lost, id)
			}
		}
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	// A beat that starts once alive() has turned false counts as a lapse:
	// attempts paused, and a claim may have ended before this beat renews
	// it.
	lapsed = !c.aliveUntil.IsZero() && !start.Before(c.aliveUntil.Add(-c.ttl/4))
	c.aliveUntil = start.Add(c.ttl)
	changed = !slices.Equal(live, c.live)
	c.live = live
	return lapsed, changed, lost, nil
}

// startCluster records the first heartbeat (so that this replica is alive
// before it claims anything) and starts the heartbeat loop.
func (e *Engine) startCluster(ctx context.Context) error {
	c := e.cl
	if _, _, _, err := c.beat(ctx, nil); err != nil {
		return err
	}
	e.log.Info("joined the cluster", "replica", c.id, "live_replicas", len(c.live), "lease", c.ttl)
	e.leases(ctx)
	return nil
}

// clusterLoop beats every third of the lease until stop is closed: it
// renews this replica and its claims, takes or renews the leases, follows
// the live replicas, and nudges every dispatcher to look at the store
// (work a dead replica left, retries due, rows other replicas queued).
func (e *Engine) clusterLoop() {
	c := e.cl
	defer close(c.done)
	every := c.ttl / 3
	t := time.NewTicker(every)
	defer t.Stop()
	failing := false
	for {
		select {
		case <-c.stop:
			return
		case <-t.C:
		}
		ctx, cancel := context.WithTimeout(context.Background(), every)
		lapsed, changed, lost, err := c.beat(ctx, e.heldClaims())
		if err != nil {
			cancel()
			if !failing {
				e.log.Error("cluster heartbeat failed; attempts pause once the lease runs out, until the database answers", "err", err)
			}
			failing = true
			continue
		}
		if failing {
			e.log.Info("cluster heartbeat recorded again")
			failing = false
		}
		if len(lost) > 0 && !lapsed {
			e.forgetLost(lost)
		}
		if lapsed {
			e.log.Warn("this replica's heartbeat had lapsed (stalled or cut off from the database): its claims may have been taken over; it forgets them and claims again", "replica", c.id)
			e.forgetClaims()
		}
		if changed {
			e.log.Info("live replicas changed", "live_replicas", len(c.live))
		}
		e.leases(ctx)
		if c.isLeader() {
			e.resumeReplays(ctx)
		}
		cancel()
		e.nudgeAll(changed)
	}
}

// leases takes or renews the leader's lease and the leases of the ordered
// destinations, and hands ordered destinations to or from their
// dispatchers as their leases come and go.
func (e *Engine) leases(ctx context.Context) {
	c := e.cl
	start := time.Now()
	held, _, err := c.st.LeaseTry(ctx, leaderLease, c.id, c.ttl)
	c.mu.Lock()
	was := c.leader
	switch {
	case err == nil && held:
		c.leaderUntil = start.Add(c.ttl)
	case err == nil:
		c.leaderUntil = time.Time{}
	}
	// A renewal that failed leaves the lease to end on its own time.
	c.leader = time.Now().Before(c.leaderUntil.Add(-c.ttl / 4))
	now := c.leader
	if !now {
		c.routed = false
	}
	c.mu.Unlock()
	if now && !was {
		e.log.Info("this replica is the maintenance leader (retention, recovery of events routed by an older version)", "replica", c.id)
		go e.leaderStart()
	}
	e.mu.Lock()
	var ordered []*dispatcher
	names := map[string]bool{}
	for _, de := range e.dests {
		if de.d.ordered() {
			ordered = append(ordered, de.d)
			names[de.d.name] = true
		}
	}
	e.mu.Unlock()
	// A destination deleted or no longer ordered keeps no lease here: one
	// ordered again later starts from a lease taken then.
	c.mu.Lock()
	for n := range c.owned {
		if !names[n] {
			delete(c.owned, n)
		}
	}
	c.mu.Unlock()
	for _, d := range ordered {
		start := time.Now()
		_, had := c.ownedEpoch(d.name)
		c.mu.Lock()
		old := c.owned[d.name]
		c.mu.Unlock()
		held, epoch, err := c.st.LeaseTry(ctx, ownerLeasePrefix+d.name, c.id, c.ttl)
		if err != nil {
			// Kept until it ends on its own time (ownedEpoch stops
			// counting it a quarter before).
			continue
		}
		c.mu.Lock()
		if held {
			c.owned[d.name] = ownedLease{epoch: epoch, until: start.Add(c.ttl)}
		} else {
			delete(c.owned, d.name)
		}
		c.mu.Unlock()
		switch {
		case held && (!had || old.epoch != epoch):
			e.log.Info("this replica owns the ordered destination now", "destination", d.name, "epoch", epoch)
			d.resetOwned()
		case !held && had:
			e.log.Info("another replica owns the ordered destination now", "destination", d.name)
			d.resetOwned()
		}
	}
}

// leaderStart runs the leader's one-time work when it becomes leader:
// events stored by a version without replica support (after the fan-out
// watermark) get their deliveries.
func (e *Engine) leaderStart() {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	if n, err := e.cl.st.DeliveryReleaseUnowned(ctx, e.clock.Now()); err != nil {
		e.log.Warn("release deliveries claimed by an older version", "err", err)
	} else if n > 0 {
		e.log.Info("deliveries claimed by an older version are due again", "count", n)
	}
	upTo, err := e.cl.st.RoutedAfter(ctx)
	if err == nil && upTo > 0 {
		_, err = e.recoverRouting(ctx, upTo)
	}
	if err != nil {
		e.log.Error("route events stored before replica support; the next leader tries again", "err", err)
		return
	}
	e.cl.mu.Lock()
	e.cl.routed = e.cl.leader
	e.cl.mu.Unlock()
	// Rows inserted for old events may come before what the owners of
	// ordered destinations loaded: they look from the start again.
	e.replayedAll()
}

// isRouted reports whether this replica, as leader, has routed the events
// stored before replica support.
func (c *cluster) isRouted() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.routed
}

// dispatchers returns the running destinations' dispatchers that keep
// passes (all of them when keep is nil).
func (e *Engine) dispatchers(keep func(*dispatcher) bool) []*dispatcher {
	e.mu.Lock()
	defer e.mu.Unlock()
	ds := make([]*dispatcher, 0, len(e.dests))
	for _, de := range e.dests {
		if keep == nil || keep(de.d) {
			ds = append(ds, de.d)
		}
	}
	return ds
}

// forgetLost drops from memory the claims a heartbeat found ended (they
// were not renewed): those not in flight are not attempted here; an
// attempt in flight finishes and its outcome is fenced if another replica
// took the delivery meanwhile.
func (e *Engine) forgetLost(ids []string) {
	lost := make(map[string]bool, len(ids))
	for _, id := range ids {
		lost[id] = true
	}
	ds := e.dispatchers(func(d *dispatcher) bool { return !d.ordered() })
	for _, d := range ds {
		d.mu.Lock()
		kept := d.ready[:0]
		for _, it := range d.ready {
			if lost[it.d.ID] {
				delete(d.held, it.d.ID)
				d.inMemBytes -= it.size
				continue
			}
			kept = append(kept, it)
		}
		clear(d.ready[len(kept):])
		d.ready = kept
		d.mu.Unlock()
	}
}

// heldClaims returns the ids of the deliveries this replica holds claims
// on (claimed, queued or in flight): the heartbeat renews those, and only
// those, so that a claim dropped from memory by any path ends with its
// lease rather than being renewed forever.
func (e *Engine) heldClaims() []string {
	ds := e.dispatchers(func(d *dispatcher) bool { return !d.ordered() })
	var ids []string
	for _, d := range ds {
		d.mu.Lock()
		for id := range d.held {
			ids = append(ids, id)
		}
		d.mu.Unlock()
	}
	return ids
}

// release hands claims this replica will not attempt back to the store
// (in the background: a failure only means the others wait for the lease
// to end).
func (e *Engine) release(claims map[string]int64) {
	if e.cl == nil || len(claims) == 0 {
		return
	}
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := e.cl.st.DeliveryRelease(ctx, e.cl.id, claims, e.clock.Now()); err != nil {
			e.log.Warn("hand claims back; the others take them when their lease ends", "count", len(claims), "err", err)
		}
	}()
}

// forgetClaims drops every claim held in memory and not in flight: after
// a lapse, another replica may hold them now. Attempts in flight finish;
// their outcomes are fenced.
func (e *Engine) forgetClaims() {
	ds := e.dispatchers(nil)
	for _, d := range ds {
		d.resetOwned()
	}
}

// nudgeAll tells every dispatcher to look at the store again; when the
// live replicas changed, their shares of concurrency and rate too.
//
// Every rescanEvery-th call, the ordered destinations this replica owns
// look from the start of their queue again: rows queued before what they
// loaded (a retry or replay through another replica whose announcement
// was lost) are found within that many heartbeats.
func (e *Engine) nudgeAll(shares bool) {
	ds := e.dispatchers(nil)
	e.cl.nudges++
	rescan := e.cl.nudges%rescanEvery == 0
	for _, d := range ds {
		if shares {
			d.applyShare()
		}
		if rescan && d.ordered() {
			if _, owned := e.cl.ownedEpoch(d.name); owned {
				d.replayed()
				continue
			}
		}
		d.nudge()
	}
}

// rescanEvery is how many heartbeats pass between two rescans of the
// ordered destinations' queues.
const rescanEvery = 4

// replayedAll tells every replica's dispatchers that rows may have been
// queued before what they loaded (replays, rows of old events): each
// looks at the store from the start.
func (e *Engine) replayedAll() {
	e.mu.Lock()
	names := make(map[string]bool, len(e.dests))
	for n := range e.dests {
		names[n] = true
	}
	e.mu.Unlock()
	e.wakeReplayed(names)
}

// nudge tells the dispatcher that the store may hold work for it.
func (d *dispatcher) nudge() {
	d.mu.Lock()
	d.backlog = true
	d.storeGen++
	d.storeDue = time.Time{}
	d.pokeLocked()
	d.mu.Unlock()
}

// runsHere reports whether this replica attempts the destination's work
// now: it owns the ordered destination, or has a share of the unordered
// one's concurrency.
func (d *dispatcher) runsHere() bool {
	c := d.e.cl
	if c == nil {
		return true
	}
	if d.ordered() {
		_, owned := c.ownedEpoch(d.name)
		return owned
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.shareConc > 0
}

// stopCluster stops the heartbeat and leaves the cluster: the claims this
// replica still holds go back to the others at once, due now.
func (e *Engine) stopCluster() {
	c := e.cl
	close(c.stop)
	<-c.done
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := c.st.ReplicaLeave(ctx, c.id, e.clock.Now()); err != nil {
		e.log.Warn("leave the cluster; this replica's claims return to the others when their lease ends", "err", err)
	}
}

// resetOwned empties what the dispatcher holds of work not in flight, so
// that it is read (and claimed) from the store again: after its
// ownership of an ordered destination changed, or after a lapse of the
// heartbeat.
func (d *dispatcher) resetOwned() {
	d.mu.Lock()
	defer d.mu.Unlock()
	keep := func(it *item) bool { return it.lane != nil && it.lane.busy && it.lane.q[0] == it }
	released := map[string]int64{}
	for _, it := range d.ready {
		delete(d.held, it.d.ID)
		d.inMemBytes -= it.size
		if it.d.LeaseEpoch > 0 && it.d.Status == store.StatusDelivering {
			released[it.d.ID] = it.d.LeaseEpoch
		}
	}
	d.e.release(released)
	d.ready = nil
	for k, l := range d.lanes {
		var rest []*item
		for _, it := range l.q {
			if keep(it) {
				rest = append(rest, it)
				continue
			}
			delete(d.held, it.d.ID)
			d.inMemBytes -= it.size
		}
		l.q = rest
		if len(rest) == 0 {
			delete(d.lanes, k)
		}
	}
	d.runq = nil
	d.waiting = nil
	for _, l := range d.lanes {
		l.inRun = false
	}
	d.loadedSeq = 0
	d.backlog = true
	d.storeGen++
	d.storeDue = time.Time{}
	d.pokeLocked()
}

// applyShare sets the dispatcher's part of its destination's concurrency
// and rate among the live replicas.
func (d *dispatcher) applyShare() {
	c := d.e.cl
	if c == nil || d.ordered() {
		return
	}
	s := c.share(d.concurrency)
	d.mu.Lock()
	d.shareConc = s
	// Claims beyond what this share works on go back to the others.
	released := map[string]int64{}
	if keep := 4 * s; len(d.ready) > keep {
		for _, it := range d.ready[keep:] {
			delete(d.held, it.d.ID)
			d.inMemBytes -= it.size
			if it.d.LeaseEpoch > 0 && it.d.Status == store.StatusDelivering {
				released[it.d.ID] = it.d.LeaseEpoch
			}
		}
		clear(d.ready[keep:])
		d.ready = d.ready[:keep]
	}
	d.mu.Unlock()
	d.e.release(released)
	if d.limiter != nil && d.concurrency > 0 {
		f := float64(s) / float64(d.concurrency)
		now := d.e.clock.Now()
		d.limiter.SetLimitAt(now, rate.Limit(float64(d.baseLimit)*f))
		d.limiter.SetBurstAt(now, max(1, int(math.Round(float64(d.baseBurst)*f))))
	}
}
