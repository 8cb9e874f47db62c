//go:build linux

package e2e

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// TestClusterFIFOOrderThroughOwnerKill: three replicas receive events of
// one source, round robin from several concurrent clients, so that
// commits interleave across replicas; a destination with ordering: fifo
// is subscribed to it. The replica that owns the destination (holds its
// lease) is SIGKILLed mid-load, the load goes on, and it is restarted;
// before that, the sink answers 500 to a few requests, so that the head
// is retried. Then:
//
//   - every request answered 200 is stored, and every stored event
//     reaches the sink;
//   - the order in which the sink first received each event is exactly
//     the order of the source's stream (the events by seq);
//   - a redelivery only repeats what the sink had already seen, as a run
//     of consecutive stream events (see checkFIFOArrivals), and there are
//     no more such runs than owner changes;
//   - a request answered 500 is followed by a retry of the same event;
//   - the sink never had two requests open at once.
//
// It logs the owner changes and how long the takeover took.
func TestClusterFIFOOrderThroughOwnerKill(t *testing.T) {
	if testing.Short() {
		t.Skip("cluster test: SIGKILLs the owner of an ordered destination under load; skipped with -short")
	}
	const (
		workers = 6
		pace    = 40 * time.Millisecond // between one worker's posts: ~150 events/s in all
	)
	s := newSink(t)
	c := newCluster(t, 3, clusterConfig(t, fmt.Sprintf(`sources:
  - name: seq
    event: {id: "json:id"}
destinations:
  - name: fifo
    type: http
    url: %s
    ordering: fifo
    headers: {%s: "${E2E_REPLICA}"}
    retry: {policy: exponential, base: 50ms, cap: 500ms, jitter: 0}
subscriptions:
  - {source: seq, destination: fifo}
`, s.url("fifo"), replicaHeader)))
	c.startAll()
	w := watchLease(t, c, ownerLeasePrefixE2E+"fifo")

	l := startSeqLoad(c, "seq", workers, pace)
	loadStart := time.Now()
	// Traffic flows to the owner, wherever it was received.
	awaitCond(t, 10*time.Second, "the first 50 events reach the sink", func() bool { return len(s.succeeded("fifo")) >= 50 })

	// The head fails a few times: it is retried, and nothing passes it.
	s.failNextOf("fifo", 4)
	awaitCond(t, 10*time.Second, "the sink answers 500 to the next 4 requests", func() bool { return countStatus(s.arrivalsOf("fifo"), http.StatusInternalServerError) >= 4 })
	t.Logf("%5.1fs: the sink answered 500 to 4 requests to fifo", time.Since(loadStart).Seconds())

	// SIGKILL the owner 2.5 s into the load, while it has an attempt open
	// at the sink (waiting briefly for one).
	time.Sleep(time.Until(loadStart.Add(2500 * time.Millisecond))) // when to kill, not a wait for anything
	owner := w.ownerIndex(t)
	name := c.r[owner].name
	open := s.openBy("fifo", name)
	for wait := time.Now().Add(2 * time.Second); len(open) == 0 && time.Now().Before(wait); open = s.openBy("fifo", name) {
		time.Sleep(time.Millisecond)
	}
	firstOwner := w.current()
	c.kill(owner)
	killAt := time.Now()
	t.Logf("%5.1fs: SIGKILL replica %s, the owner of fifo (epoch %d), with %d attempts open at the sink", time.Since(loadStart).Seconds(), name, firstOwner.epoch, len(open))

	// Another replica takes over within the lease and a little more.
	var taken leaseState
	awaitCond(t, 3*clusterLease, "another replica takes the lease of fifo over", func() bool {
		taken = w.current()
		return taken.owner != "" && taken.owner != firstOwner.owner
	})
	leaseTakeover := taken.at.Sub(killAt)
	var firstByNew time.Time
	awaitCond(t, 3*clusterLease, "the new owner delivers", func() bool {
		for _, a := range s.arrivalsOf("fifo") {
			if a.at.After(killAt) && a.replica != name {
				firstByNew = a.at
				return true
			}
		}
		return false
	})
	t.Logf("%5.1fs: takeover: the lease of fifo moved to replica %s (epoch %d) %v after the kill; its first attempt reached the sink %v after the kill (lease %v)",
		time.Since(loadStart).Seconds(), c.replicaName(taken.owner), taken.epoch, leaseTakeover.Round(time.Millisecond), firstByNew.Sub(killAt).Round(time.Millisecond), clusterLease)

	time.Sleep(time.Second) // the load goes on without the old owner
	c.start(owner)
	t.Logf("%5.1fs: replica %s restarted", time.Since(loadStart).Seconds(), name)
	time.Sleep(2 * time.Second) // and with it again
	posts := l.stop()
	loadEnd := time.Now()

	// Every 200 stored.
	stored := map[string]bool{}
	for _, id := range c.eventIDs("seq") {
		stored[id] = true
	}
	ok, other := 0, 0
	for _, p := range posts {
		if p.status != http.StatusOK {
			other++
			continue
		}
		ok++
		if !stored[p.eventID] {
			t.Errorf("LOST: request %s answered 200 with event %s through replica %s, which is not stored", p.marker, p.eventID, c.r[p.replica].name)
		}
	}
	t.Logf("load over %v: %d requests, %d answered 200, %d not (no answer, or answered otherwise while a replica was down); %d events stored",
		loadEnd.Sub(loadStart).Round(time.Millisecond), len(posts), ok, other, len(stored))

	missing, took := c.drain(s, "fifo", 60*time.Second, 20*time.Second, "seq")
	defer c.requireDrained("fifo", missing, took, len(stored)) // after the order is checked
	if len(missing) == 0 {
		t.Logf("drained in %v", took.Round(time.Millisecond))
	}

	// The order.
	stream := c.streamOrder("seq")
	arr := s.arrivalsOf("fifo")
	replays, errs := checkFIFOArrivals(stream, arr)
	for i, e := range errs {
		if i == 10 {
			t.Errorf("… and %d more", len(errs)-10)
			break
		}
		t.Errorf("ORDER: %s", e)
	}
	changes := w.changes()
	var lines []string
	for _, ch := range changes {
		lines = append(lines, fmt.Sprintf("%5.1fs: epoch %d, replica %s", ch.at.Sub(loadStart).Seconds(), ch.epoch, c.replicaName(ch.owner)))
	}
	t.Logf("owners of fifo (from the leases table):\n  %s", strings.Join(lines, "\n  "))
	moves := int(changes[len(changes)-1].epoch - changes[0].epoch)
	if len(replays) > moves {
		t.Errorf("ORDER: %d redelivery runs but the owner of fifo changed only %d times: a redelivery without an owner change:\n  %s", len(replays), moves, strings.Join(replays, "\n  "))
	} else if len(replays) > 0 {
		t.Logf("redeliveries after owner changes:\n  %s", strings.Join(replays, "\n  "))
	}
	if m := s.maxOpenOf("fifo"); m > 1 {
		t.Errorf("ORDER: the sink had %d requests to the fifo destination open at once, want at most 1", m)
	}
	// A head answered 500 is what its replica sends next.
	for k := 0; k+1 < len(arr); k++ {
		a, next := arr[k], arr[k+1]
		if a.status == http.StatusInternalServerError && next.replica == a.replica && next.event != a.event {
			t.Errorf("ORDER: the sink answered 500 to event %s from replica %s at %s; the next request, from the same replica, was of event %s, not a retry of it",
				a.event, a.replica, a.at.Format("15:04:05.000"), next.event)
		}
	}
	retries := countStatus(arr, http.StatusInternalServerError)
	again, ok200 := 0, map[string]bool{}
	for _, a := range arr {
		if ok200[a.event] {
			again++
		}
		if a.status == http.StatusOK {
			ok200[a.event] = true
		}
	}
	t.Logf("the sink received %d requests for %d events: %d answered 500 (and retried), %d repeating an event it had answered 200 (redeliveries)", len(arr), len(stream), retries, again)
}

// ownerLeasePrefixE2E names an ordered destination's lease in the leases
// table (the engine's ownerLeasePrefix).
const ownerLeasePrefixE2E = "destination:"

// checkFIFOArrivals checks the requests a fifo destination made (arr, in
// the order the sink received them) against the stream (event ids in seq
// order). With consecutive requests of one event taken as one (a retry of
// the head), each request must be either the stream's next event after
// the previous request's, or an event at or before the previous one's: a
// redelivery, which starts a run that repeats the stream from there. So
// no event is first received before every earlier one was, and a
// redelivery repeats only a run of consecutive events the sink had seen
// already (the suffix a replica that died had sent without recording it,
// and what follows). The first requests start at the stream's first
// event, and every event of the stream is received.
//
// It returns one line per redelivery run and one per violation.
func checkFIFOArrivals(stream []string, arr []sinkArrival) (replays, errs []string) {
	pos := make(map[string]int, len(stream))
	for i, id := range stream {
		pos[id] = i
	}
	prev, seen := -1, -1 // the previous request's position; the highest received
	got := map[int]bool{}
	prevReplica := ""
	for k, a := range arr {
		p, ok := pos[a.event]
		if !ok {
			errs = append(errs, fmt.Sprintf("request %d (replica %q) delivers %s, which is not an event of the stream", k, a.replica, a.event))
			continue
		}
		switch {
		case p == prev:
			// The head again: a retry.
		case p == prev+1:
			// The next event.
		case p < prev && !got[p]:
			errs = append(errs, fmt.Sprintf("request %d at %s (replica %q): event #%d %s follows #%d (replica %q): it is received after later events",
				k, a.at.Format("15:04:05.000"), a.replica, p, a.event, prev, prevReplica))
		case p < prev:
			replays = append(replays, fmt.Sprintf("request %d at %s: replica %s sends #%d (%s) again after replica %s sent #%d; #%d was the furthest received",
				k, a.at.Format("15:04:05.000"), a.replica, p, a.event, prevReplica, prev, seen))
		default:
			what := "skips"
			if p > seen+1 {
				what = "is received before"
			}
			errs = append(errs, fmt.Sprintf("request %d at %s (replica %q): event #%d %s follows #%d (replica %q); it %s #%d..#%d (e.g. %s)",
				k, a.at.Format("15:04:05.000"), a.replica, p, a.event, prev, prevReplica, what, prev+1, p-1, stream[prev+1]))
		}
		prev, prevReplica = p, a.replica
		seen = max(seen, p)
		got[p] = true
	}
	if seen < len(stream)-1 {
		errs = append(errs, fmt.Sprintf("the sink received events up to #%d of %d", seen, len(stream)))
	}
	return replays, errs
}

// TestCheckFIFOArrivals: the order check accepts retries and redelivered
// runs, and refuses an event received before an earlier one and a
// redelivery that skips.
func TestCheckFIFOArrivals(t *testing.T) {
	stream := []string{"e0", "e1", "e2", "e3", "e4"}
	arr := func(ids ...string) []sinkArrival {
		var out []sinkArrival
		for _, id := range ids {
			out = append(out, sinkArrival{event: id})
		}
		return out
	}
	for _, tc := range []struct {
		ids           []string
		replays, errs int
	}{
		{[]string{"e0", "e1", "e2", "e3", "e4"}, 0, 0},
		{[]string{"e0", "e1", "e1", "e1", "e2", "e3", "e4"}, 0, 0}, // the head retried
		{[]string{"e0", "e1", "e2", "e1", "e2", "e3", "e4"}, 1, 0}, // e1, e2 again after a kill
		{[]string{"e0", "e1", "e2", "e2", "e3", "e1", "e2", "e3", "e4"}, 1, 0},
		{[]string{"e0", "e2", "e1", "e3", "e4"}, 0, 3},             // e2 before e1, e1 after it, then e3 skips e2
		{[]string{"e0", "e1", "e2", "e3", "e1", "e3", "e4"}, 1, 1}, // a redelivery skips e2
		{[]string{"e1", "e2", "e3", "e4"}, 0, 1},                   // e0 never
		{[]string{"e0", "e1", "e2", "e3"}, 0, 1},                   // e4 never
		{[]string{"e0", "e1", "x", "e2", "e3", "e4"}, 0, 1},        // not of the stream
		{[]string{"e0", "e1", "e2", "e0", "e1", "e2", "e3", "e4", "e4"}, 1, 0},
	} {
		replays, errs := checkFIFOArrivals(stream, arr(tc.ids...))
		if len(replays) != tc.replays || len(errs) != tc.errs {
			t.Errorf("%v: %d replays %q and %d errors %q, want %d and %d", tc.ids, len(replays), replays, len(errs), errs, tc.replays, tc.errs)
		}
	}
}

// countStatus counts the arrivals answered status.
func countStatus(arr []sinkArrival, status int) int {
	n := 0
	for _, a := range arr {
		if a.status == status {
			n++
		}
	}
	return n
}

// seqPost is one post of startSeqLoad and what it got.
type seqPost struct {
	marker     string
	replica    int // index into c.r
	status     int // 0: no answer
	retryAfter string
	eventID    string
	err        error
	at         time.Time // when the answer came
}

// seqLoad is a set of workers posting unique events to one source of a
// cluster, round robin over the replicas that are up.
type seqLoad struct {
	stopped atomic.Bool
	wg      sync.WaitGroup
	posts   [][]seqPost
	client  *http.Client
}

// startSeqLoad starts workers posting events {"id": marker, "m": marker}
// to source, each to the next replica that is up, pausing pace between
// its posts.
func startSeqLoad(c *cluster, source string, workers int, pace time.Duration) *seqLoad {
	l := &seqLoad{posts: make([][]seqPost, workers), client: newClient(workers, 3*time.Second)}
	for g := range workers {
		l.wg.Add(1)
		go func() {
			defer l.wg.Done()
			for n := 0; !l.stopped.Load(); n++ {
				i := (g + n) % len(c.r)
				base := c.base(i)
				if base == "" {
					continue // down: the next one
				}
				m := fmt.Sprintf("%s-%d-%d", source, g, n)
				a := post(l.client, base+"/in/"+source, fmt.Appendf(nil, `{"id":%q,"m":%q}`, m, m))
				p := seqPost{marker: m, replica: i, status: a.Status, err: a.Err, at: time.Now()}
				if a.Header != nil {
					p.retryAfter = a.Header.Get("Retry-After")
				}
				if a.Status == http.StatusOK {
					var ans ingestAnswer
					if err := json.Unmarshal(a.Body, &ans); err != nil || ans.ID == "" {
						p.err = fmt.Errorf("200 answer %q: %v", a.Body, err)
					}
					p.eventID = ans.ID
				}
				l.posts[g] = append(l.posts[g], p)
				time.Sleep(pace)
			}
		}()
	}
	return l
}

// stop stops the workers after their current post and returns every post.
func (l *seqLoad) stop() []seqPost {
	l.stopped.Store(true)
	l.wg.Wait()
	l.client.CloseIdleConnections()
	var all []seqPost
	for _, ps := range l.posts {
		all = append(all, ps...)
	}
	return all
}

// streamOrder returns the ids of source's events in stream order (by seq).
func (c *cluster) streamOrder(source string) []string {
	c.t.Helper()
	rows, err := c.db.Query(context.Background(), `SELECT id FROM events WHERE source = $1 ORDER BY seq`, source)
	if err != nil {
		c.t.Fatalf("read the stream of %s: %v", source, err)
	}
	ids, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		c.t.Fatalf("read the stream of %s: %v", source, err)
	}
	return ids
}

var joinedRE = regexp.MustCompile(`joined the cluster.*replica=(rep_[0-9A-Za-z]+)`)

// replicaName names the replica process whose cluster id is id: "b#2" is
// the second process of replica b. It reads the processes' "joined the
// cluster" log lines; an id it does not find is returned as it is.
func (c *cluster) replicaName(id string) string {
	if id == "" {
		return "(none)"
	}
	for _, r := range c.r {
		r.mu.Lock()
		bufs := append([]*lockedBuffer(nil), r.stderrs...)
		r.mu.Unlock()
		for n, b := range bufs {
			for _, m := range joinedRE.FindAllStringSubmatch(b.String(), -1) {
				if m[1] == id {
					return fmt.Sprintf("%s#%d", r.name, n+1)
				}
			}
		}
	}
	return id
}

// replicaIndex is the index into c.r of the replica whose current process
// has cluster id id, or -1.
func (c *cluster) replicaIndex(id string) int {
	for i, r := range c.r {
		r.mu.Lock()
		var cur string
		if n := len(r.stderrs); n > 0 && r.base != "" {
			cur = r.stderrs[n-1].String()
		}
		r.mu.Unlock()
		for _, m := range joinedRE.FindAllStringSubmatch(cur, -1) {
			if m[1] == id {
				return i
			}
		}
	}
	return -1
}

// leaseState is a lease's row as the test saw it.
type leaseState struct {
	owner string
	epoch int64
	at    time.Time // when the test first saw it
}

// leaseWatch polls a lease's row in the leases table every 20 ms and
// keeps every change of owner or epoch.
type leaseWatch struct {
	c   *cluster
	mu  sync.Mutex
	log []leaseState
}

// watchLease starts a leaseWatch of lease name, stopped at cleanup.
func watchLease(t *testing.T, c *cluster, name string) *leaseWatch {
	w := &leaseWatch{c: c}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	t.Cleanup(func() {
		cancel()
		<-done
	})
	go func() {
		defer close(done)
		for ctx.Err() == nil {
			var st leaseState
			err := c.db.QueryRow(ctx, `SELECT owner, epoch FROM leases WHERE name = $1`, name).Scan(&st.owner, &st.epoch)
			if err == nil || errors.Is(err, pgx.ErrNoRows) {
				st.at = time.Now()
				w.mu.Lock()
				if n := len(w.log); err == nil && (n == 0 || w.log[n-1].owner != st.owner || w.log[n-1].epoch != st.epoch) {
					w.log = append(w.log, st)
				}
				w.mu.Unlock()
			}
			select {
			case <-ctx.Done():
			case <-time.After(20 * time.Millisecond):
			}
		}
	}()
	return w
}

// current is the lease's last seen state (zero before the first).
func (w *leaseWatch) current() leaseState {
	w.mu.Lock()
	defer w.mu.Unlock()
	if len(w.log) == 0 {
		return leaseState{}
	}
	return w.log[len(w.log)-1]
}

// changes is every state seen, oldest first.
func (w *leaseWatch) changes() []leaseState {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]leaseState(nil), w.log...)
}

// ownerIndex waits (up to twice the lease) until the lease is held by a
// running replica of c and returns its index.
func (w *leaseWatch) ownerIndex(t *testing.T) int {
	t.Helper()
	i := -1
	awaitCond(t, 2*clusterLease, "a running replica holds the lease", func() bool {
		if cur := w.current(); cur.owner != "" {
			i = w.c.replicaIndex(cur.owner)
		}
		return i >= 0
	})
	return i
}

// TestClusterRateIsTheClusters: a destination's rate and concurrency are
// the cluster's, not each replica's. Three replicas (each seeing the
// three alive) get a backlog of 600 events, spread over them, for a
// destination with rate: 50/s, and 30 events for a destination with
// concurrency: 2 whose receiver holds each request 300 ms.
//
// The rate: each replica's limiter has its share r_i of 50/s (the shares
// add up to 50/s) and a burst b_i ≤ max(1, 50/10) = 5, and a token bucket
// lets at most r_i·w + b_i attempts start in any window of length w. So
// the sink may see at most 50 + 3·5 = 65 requests in any 1 s window (the
// shares' bursts are in fact 2 each; the rest is slack for the time from
// an attempt's start to its arrival), and the 600 deliveries take at
// least (600 − 15)/50 s. They must also not take much longer than 600/50
// s (1.5 times, plus 2 s): the rate is shared, not lost.
//
// The concurrency: the sink never has more than 2 of its requests open at
// once, across the replicas.
func TestClusterRateIsTheClusters(t *testing.T) {
	if testing.Short() {
		t.Skip("cluster test: starts three hookd replicas and measures for 15 s; skipped with -short")
	}
	const (
		rate      = 50  // per second
		burst     = 5   // max(1, rate/10), each replica's at most
		events    = 600 // to the rated destination
		slow      = 30  // to the concurrency-2 destination
		hold      = 300 * time.Millisecond
		replicas  = 3
		maxWindow = rate + burst*replicas
	)
	s := newSink(t)
	s.holdFor("conc2", hold)
	c := newCluster(t, replicas, clusterConfig(t, fmt.Sprintf(`sources:
  - name: burst
    event: {id: "json:id"}
  - name: slow
    event: {id: "json:id"}
destinations:
  - name: rated
    type: http
    url: %s
    rate: %d/s
    headers: {%s: "${E2E_REPLICA}"}
    retry: {policy: exponential, base: 50ms, cap: 1s, jitter: 0}
  - name: conc2
    type: http
    url: %s
    concurrency: 2
    headers: {%s: "${E2E_REPLICA}"}
    retry: {policy: exponential, base: 50ms, cap: 1s, jitter: 0}
subscriptions:
  - {source: burst, destination: rated}
  - {source: slow, destination: conc2}
`, s.url("rated"), rate, replicaHeader, s.url("conc2"), replicaHeader)))
	c.startAll()
	// The shares are split among the replicas each one sees alive.
	awaitCond(t, 3*clusterLease, "every replica sees 3 live replicas (hookd_cluster_live_replicas)", func() bool {
		for i := range c.r {
			if liveReplicas(t, c.base(i)) != replicas {
				return false
			}
		}
		return true
	})

	var wg sync.WaitGroup
	var okRated, okSlow int
	start := time.Now()
	wg.Add(2)
	go func() { defer wg.Done(); okRated = postEvents(t, c, "burst", events, 12) }()
	go func() { defer wg.Done(); okSlow = postEvents(t, c, "slow", slow, 3) }()
	wg.Wait()
	t.Logf("ingested %d + %d events over %d replicas in %v", okRated, okSlow, replicas, time.Since(start).Round(time.Millisecond))
	if okRated != events || okSlow != slow {
		t.Fatalf("%d of %d and %d of %d posts answered 200, want all", okRated, events, okSlow, slow)
	}

	missing, took := c.drain(s, "rated", 40*time.Second, 10*time.Second, "burst")
	c.requireDrained("rated", missing, took, events)
	missing, took = c.drain(s, "conc2", 20*time.Second, 10*time.Second, "slow")
	c.requireDrained("conc2", missing, took, slow)

	// The rate.
	arr := s.arrivalsOf("rated")
	by := map[string]int{}
	for _, a := range arr {
		by[a.replica]++
	}
	worst, at := 0, time.Time{}
	for i := range arr {
		n := 0
		for j := i; j < len(arr) && arr[j].at.Sub(arr[i].at) < time.Second; j++ {
			n++
		}
		if n > worst {
			worst, at = n, arr[i].at
		}
	}
	span := arr[len(arr)-1].at.Sub(arr[0].at)
	t.Logf("rated: %d requests in %v (%.1f/s), by replica %v; at most %d in a 1 s window (from %v after the first), bound %d",
		len(arr), span.Round(time.Millisecond), float64(len(arr)-1)/span.Seconds(), by, worst, at.Sub(arr[0].at).Round(time.Millisecond), maxWindow)
	if worst > maxWindow {
		t.Errorf("RATE: the sink received %d requests within 1 s from the three replicas, want at most %d (rate %d/s, bursts of at most %d per replica)", worst, maxWindow, rate, burst)
	}
	minSpan := time.Duration(float64(len(arr)-burst*replicas) / rate * float64(time.Second))
	maxSpan := time.Duration(1.5*float64(len(arr))/rate*float64(time.Second)) + 2*time.Second
	switch {
	case span < minSpan:
		t.Errorf("RATE: %d requests in %v (%.1f/s), want at least %v at %d/s: the replicas do not share the rate", len(arr), span.Round(time.Millisecond), float64(len(arr)-1)/span.Seconds(), minSpan.Round(time.Millisecond), rate)
	case span > maxSpan:
		t.Errorf("RATE: %d requests took %v (%.1f/s), want at most %v at %d/s: part of the rate is lost in the split", len(arr), span.Round(time.Millisecond), float64(len(arr)-1)/span.Seconds(), maxSpan.Round(time.Millisecond), rate)
	}

	// The concurrency.
	by = map[string]int{}
	arr = s.arrivalsOf("conc2")
	for _, a := range arr {
		by[a.replica]++
	}
	m := s.maxOpenOf("conc2")
	t.Logf("conc2: %d requests held %v each, from %v after the ingest began for %v, by replica %v; at most %d requests open at once",
		len(arr), hold, arr[0].at.Sub(start).Round(time.Millisecond), arr[len(arr)-1].at.Add(hold).Sub(arr[0].at).Round(time.Millisecond), by, m)
	if m > 2 {
		t.Errorf("CONCURRENCY: the sink had %d requests to conc2 (concurrency: 2) open at once across the replicas, want at most 2", m)
	}
}

// liveReplicas reads hookd_cluster_live_replicas from the /metrics of the
// replica at base (-1 when it cannot).
func liveReplicas(t *testing.T, base string) int {
	if base == "" {
		return -1
	}
	for _, l := range scrapeLinesWith(t, base+"/metrics", "hookd_cluster_live_replicas") {
		var n int
		if _, err := fmt.Sscanf(l, "hookd_cluster_live_replicas %d", &n); err == nil {
			return n
		}
	}
	return -1
}

// postEvents posts n events {"id","m"} to source, workers at a time, each
// to the next replica round robin, and returns how many were answered
// 200 (it logs the first few others).
func postEvents(t *testing.T, c *cluster, source string, n, workers int) int {
	client := newClient(workers, 5*time.Second)
	defer client.CloseIdleConnections()
	var (
		next, ok atomic.Int64
		logged   atomic.Int64
		wg       sync.WaitGroup
	)
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				k := int(next.Add(1)) - 1
				if k >= n {
					return
				}
				m := fmt.Sprintf("%s-%d", source, k)
				a := post(client, c.base(k%len(c.r))+"/in/"+source, fmt.Appendf(nil, `{"id":%q,"m":%q}`, m, m))
				if a.Status == http.StatusOK {
					ok.Add(1)
				} else if logged.Add(1) <= 5 {
					t.Logf("post %s to replica %s: %d %v %s", m, c.r[k%len(c.r)].name, a.Status, a.Err, a.Body)
				}
			}
		}()
	}
	wg.Wait()
	return int(ok.Load())
}
