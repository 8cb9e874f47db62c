package engine

// Replicas on PostgreSQL, at the engine's level: two engines on one
// schema, events published as ingest does. Each test states what a user
// expects; each failed before its fix (a review of the replica code).

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"gopkg.in/yaml.v3"

	"hookd"
	"hookd/internal/config"
	_ "hookd/internal/destination/webhook"
	"hookd/internal/egress"
	"hookd/internal/store"
	"hookd/internal/store/postgres"
)

// rvDSN is the PostgreSQL these tests use: HOOKD_TEST_POSTGRES_DSN, or the
// machine's own.
var rvDSN = func() string {
	if dsn := os.Getenv("HOOKD_TEST_POSTGRES_DSN"); dsn != "" {
		return dsn
	}
	return "postgres://postgres@127.0.0.1:5432/test?sslmode=disable"
}()

func rvLog() *slog.Logger {
	if os.Getenv("HOOKD_TEST_LOG") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.DiscardHandler)
}

func rvSchema(t *testing.T) string {
	t.Helper()
	ctx := context.Background()
	c, err := pgx.Connect(ctx, rvDSN)
	if err != nil {
		if os.Getenv("HOOKD_TEST_REQUIRE_SERVICES") == "1" {
			t.Fatal(err)
		}
		t.Skip("no PostgreSQL (set HOOKD_TEST_POSTGRES_DSN, or start one): ", err)
	}
	c.Close(ctx)
	var b [4]byte
	rand.Read(b[:])
	schema := "hookd_rv_" + hex.EncodeToString(b[:])
	t.Cleanup(func() {
		c, err := pgx.Connect(context.Background(), rvDSN)
		if err == nil {
			c.Exec(context.Background(), `DROP SCHEMA IF EXISTS `+schema+` CASCADE`)
			c.Close(context.Background())
		}
	})
	return schema
}

type rvSink struct {
	srv              *httptest.Server
	mu               sync.Mutex
	got              []string
	inFlight, maxFly atomic.Int64
	delay            atomic.Int64 // ns
}

func newRvSink(t *testing.T) *rvSink {
	s := &rvSink{}
	s.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		cur := s.inFlight.Add(1)
		defer s.inFlight.Add(-1)
		for m := s.maxFly.Load(); cur > m && !s.maxFly.CompareAndSwap(m, cur); m = s.maxFly.Load() {
		}
		io.ReadAll(r.Body)
		time.Sleep(time.Duration(s.delay.Load()))
		s.mu.Lock()
		s.got = append(s.got, r.Header.Get("webhook-id"))
		s.mu.Unlock()
		w.WriteHeader(200)
	}))
	t.Cleanup(s.srv.Close)
	return s
}

func (s *rvSink) hits() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.got...)
}

type replica struct {
	e  *Engine
	st *postgres.Store
}

func newReplica(t *testing.T, schema, yml string, lease time.Duration, wrap func(store.Cluster) store.Cluster) *replica {
	t.Helper()
	st, err := postgres.Open(context.Background(), rvDSN, rvLog(), postgres.Options{Schema: schema, MaxConns: 4})
	if err != nil {
		t.Fatal(err)
	}
	guard, _ := egress.NewGuard([]string{"127.0.0.0/8"}, nil)
	var cl store.Cluster = st
	if wrap != nil {
		cl = wrap(st)
	}
	e := New(Options{Store: st, Log: rvLog(), Clock: RealClock{}, Egress: guard, Cluster: cl, Lease: lease})
	var doc struct {
		Destinations  []config.Destination  `yaml:"destinations"`
		Subscriptions []config.Subscription `yaml:"subscriptions"`
	}
	if err := yaml.Unmarshal([]byte(yml), &doc); err != nil {
		t.Fatal(err)
	}
	if err := e.Open(context.Background(), doc.Destinations, doc.Subscriptions); err != nil {
		t.Fatal(err)
	}
	r := &replica{e: e, st: st}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		e.Stop(ctx)
		st.Close()
	})
	return r
}

// publish stores events as ingest does in a cluster (Route as Prepare,
// then OnCommit).
func (r *replica) publish(t *testing.T, n int) []*hookd.Event {
	t.Helper()
	ins := make([]*store.EventInsert, n)
	evs := make([]*hookd.Event, n)
	for i := range ins {
		now := time.Now()
		u := hookd.NewULID(now)
		evs[i] = &hookd.Event{ID: hookd.EventIDPrefix + u, RequestID: hookd.RequestIDPrefix + u, Source: "app", Type: "a",
			ReceivedAt: now, ContentType: "application/json", Body: []byte(fmt.Sprintf(`{"i":%d}`, i))}
		ins[i] = &store.EventInsert{Event: evs[i]}
		r.e.Route(ins[i])
	}
	res, err := r.st.EventInsertMany(context.Background(), ins)
	if err != nil {
		t.Fatal(err)
	}
	r.e.OnCommit(ins, res)
	for i := range evs {
		evs[i].Seq = res[i].Seq
	}
	return evs
}

func waitFor(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func count(hits []string, id string) int {
	n := 0
	for _, h := range hits {
		if h == id {
			n++
		}
	}
	return n
}

func fifoYAML(url, extra string) string {
	return fmt.Sprintf(`
destinations:
  - name: d
    type: http
    url: %s
    ordering: fifo
%s
subscriptions:
  - {destination: d, events: ["*"]}
`, url, extra)
}

// An operator retries a delivery of an ordered destination through a
// replica that does not own it: the owner must send it again.
func TestClusterRetryThroughANonOwnerIsSentByTheOwner(t *testing.T) {
	schema := rvSchema(t)
	s := newRvSink(t)
	a := newReplica(t, schema, fifoYAML(s.srv.URL, ""), 900*time.Millisecond, nil)
	b := newReplica(t, schema, fifoYAML(s.srv.URL, ""), 900*time.Millisecond, nil)
	if _, ok := a.e.cl.ownedEpoch("d"); !ok {
		t.Fatal("a should own d (it started first)")
	}
	evs := a.publish(t, 3)
	waitFor(t, 10*time.Second, "3 deliveries", func() bool { return len(s.hits()) == 3 })
	id := store.DeliveryID(evs[0].ID, "d")
	waitFor(t, 5*time.Second, "succeeded", func() bool {
		d, _ := a.st.DeliveryGet(context.Background(), id)
		return d != nil && d.Status == store.StatusSucceeded
	})
	if _, err := b.e.Retry(context.Background(), id); err != nil {
		t.Fatal(err)
	}
	// Several heartbeats (each nudges every dispatcher).
	waitFor(t, 6*time.Second, "the retried delivery sent again by the owner", func() bool { return count(s.hits(), evs[0].ID) == 2 })
}

// A destination replaced in the store (through another replica) while the
// owner's head attempt is in flight: the owner's Reload must not attempt
// that head a second time concurrently.
func TestClusterReloadOfAReplacedOrderedDestinationSendsItsHeadOnce(t *testing.T) {
	schema := rvSchema(t)
	s := newRvSink(t)
	s.delay.Store(int64(1500 * time.Millisecond))
	noDests := "subscriptions: []\n"
	a := newReplica(t, schema, noDests, 3*time.Second, nil)
	b := newReplica(t, schema, noDests, 3*time.Second, nil)
	spec := func(timeout string) []byte {
		return []byte(fmt.Sprintf(`{"name":"d","type":"http","url":%q,"ordering":"fifo","timeout":%q}`, s.srv.URL, timeout))
	}
	if _, err := a.e.DestinationPut(context.Background(), "d", spec("10s"), true); err != nil {
		t.Fatal(err)
	}
	if _, err := a.e.SubscriptionPut(context.Background(), "", []byte(`{"destination":"d","events":["*"]}`)); err != nil {
		t.Fatal(err)
	}
	if err := b.e.Reload(context.Background()); err != nil {
		t.Fatal(err)
	}
	// a owns d (took its lease at its next beat or leases()).
	waitFor(t, 5*time.Second, "an owner", func() bool {
		_, oa := a.e.cl.ownedEpoch("d")
		_, ob := b.e.cl.ownedEpoch("d")
		return oa || ob
	})
	owner, other := a, b
	if _, ok := a.e.cl.ownedEpoch("d"); !ok {
		owner, other = b, a
	}
	owner.publish(t, 1)
	waitFor(t, 5*time.Second, "head in flight", func() bool { return s.inFlight.Load() == 1 })
	if _, err := other.e.DestinationPut(context.Background(), "d", spec("11s"), false); err != nil {
		t.Fatal(err)
	}
	if err := owner.e.Reload(context.Background()); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 8*time.Second, "settled", func() bool { return s.inFlight.Load() == 0 && len(s.hits()) >= 1 })
	time.Sleep(500 * time.Millisecond)
	if m := s.maxFly.Load(); m > 1 || len(s.hits()) > 1 {
		t.Fatalf("the head of a fifo destination was sent %d times, %d at once, by the replica that owns it", len(s.hits()), m)
	}
}

// The heartbeat was late (alive() false for a moment) but not lapsed: an
// ordered head waiting for its rate-limit token is dropped; the
// destination must go on.
func TestClusterOrderedHeadPausedByALateHeartbeatIsSent(t *testing.T) {
	schema := rvSchema(t)
	s := newRvSink(t)
	// Long lease: the heartbeat loop does not tick during the test; the
	// test beats by hand.
	a := newReplica(t, schema, fifoYAML(s.srv.URL, "    rate: 20/m"), 40*time.Second, nil) // burst 2, then one per 3s
	a.publish(t, 2)
	waitFor(t, 10*time.Second, "first deliveries", func() bool { return len(s.hits()) == 2 })
	d := a.e.dests["d"].d
	evs := a.publish(t, 1) // waits ~3s for its token
	waitFor(t, 10*time.Second, "second head launched", func() bool {
		d.mu.Lock()
		defer d.mu.Unlock()
		return d.flying == 1
	})
	c := a.e.cl
	c.mu.Lock()
	c.aliveUntil = time.Now().Add(c.ttl / 8) // in the last quarter: alive() false, not run out
	c.mu.Unlock()
	waitFor(t, 5*time.Second, "head dropped", func() bool {
		d.mu.Lock()
		defer d.mu.Unlock()
		return d.flying == 0
	})
	// The next beat comes before aliveUntil: not lapsed.
	if _, _, _, err := c.beat(context.Background(), nil); err != nil {
		t.Fatalf("beat: %v", err)
	}
	a.e.nudgeAll(false)
	more := a.publish(t, 1)
	defer func() {
		d.mu.Lock()
		defer d.mu.Unlock()
		var ls []string
		for k, l := range d.lanes {
			ls = append(ls, fmt.Sprintf("%q: %d items busy=%v inRun=%v", k, len(l.q), l.busy, l.inRun))
		}
		t.Logf("dropped head sent %d times, the event after it %d times", count(s.hits(), evs[0].ID), count(s.hits(), more[0].ID))
		t.Logf("hits %d; dispatcher: held %d, lanes %v, runq %d, waiting %d, loadedSeq %d (dropped head seq %d), backlog %v",
			len(s.hits()), len(d.held), ls, len(d.runq), d.waiting.Len(), d.loadedSeq, evs[0].Seq, d.backlog)
	}()
	waitFor(t, 12*time.Second, "the dropped head and the next event delivered", func() bool {
		h := s.hits()
		return count(h, evs[0].ID) == 1 && count(h, more[0].ID) == 1
	})
}

// failingLease wraps a store.Cluster whose LeaseTry fails for ordered
// destinations' leases once fail is set (a pool exhausted, a timeout),
// while the heartbeat itself succeeds.
type failingLease struct {
	store.Cluster
	fail atomic.Bool
}

func (f *failingLease) LeaseTry(ctx context.Context, name, owner string, ttl time.Duration) (bool, int64, error) {
	if f.fail.Load() && name != leaderLease {
		return false, 0, fmt.Errorf("injected: context deadline exceeded")
	}
	return f.Cluster.LeaseTry(ctx, name, owner, ttl)
}

// Two healthy replicas (both beat) must never both run one ordered
// destination.
func TestClusterFailedLeaseRenewalLeavesOneOwner(t *testing.T) {
	schema := rvSchema(t)
	s := newRvSink(t)
	var fl *failingLease
	a := newReplica(t, schema, fifoYAML(s.srv.URL, ""), 900*time.Millisecond, func(c store.Cluster) store.Cluster {
		fl = &failingLease{Cluster: c}
		return fl
	})
	b := newReplica(t, schema, fifoYAML(s.srv.URL, ""), 900*time.Millisecond, nil)
	if _, ok := a.e.cl.ownedEpoch("d"); !ok {
		t.Fatal("a should own d")
	}
	fl.fail.Store(true)
	waitFor(t, 6*time.Second, "b takes d over", func() bool { _, ok := b.e.cl.ownedEpoch("d"); return ok })
	if err := a.e.Ready(); err != nil {
		t.Fatalf("a's heartbeat should be in force: %v", err)
	}
	if _, ok := a.e.cl.ownedEpoch("d"); ok {
		t.Fatalf("a (heartbeat in force) still runs d while b owns it: both attempt its deliveries")
	}
}

// A replica whose concurrency share drops to 0 (a replica whose id sorts
// first joined) must not keep claimed deliveries forever.
func TestClusterShareDroppedToZeroHandsClaimsBack(t *testing.T) {
	schema := rvSchema(t)
	s := newRvSink(t)
	s.delay.Store(int64(700 * time.Millisecond))
	yml := fmt.Sprintf(`
destinations:
  - name: d
    type: http
    url: %s
    concurrency: 1
subscriptions:
  - {destination: d, events: ["*"]}
`, s.srv.URL)
	a := newReplica(t, schema, yml, 900*time.Millisecond, nil)
	evs := a.publish(t, 5)
	waitFor(t, 5*time.Second, "first in flight", func() bool { return s.inFlight.Load() == 1 })
	// Another replica joins whose id sorts before a's (hosts' clocks
	// differ): a's share of concurrency 1 becomes 0. It is alive but has
	// not claimed anything yet.
	c, err := pgx.Connect(context.Background(), rvDSN)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close(context.Background())
	if _, err := c.Exec(context.Background(), `INSERT INTO `+schema+`.replicas (id, started_at, beat_at, alive_until)
		VALUES ('rep_0', 0, 0, 9000000000000000)`); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 3*time.Second, "a's share 0", func() bool { return a.e.dests["d"].d.runsHere() == false })
	time.Sleep(3 * time.Second)
	var stuck int
	if err := c.QueryRow(context.Background(), `SELECT count(*) FROM `+schema+`.deliveries
		WHERE status = 'delivering' AND owner = $1 AND lease_until > (extract(epoch from clock_timestamp())*1000000)::bigint`, a.e.cl.id).Scan(&stuck); err != nil {
		t.Fatal(err)
	}
	t.Logf("sent %d of %d; %d still claimed by a, lease renewed", len(s.hits()), len(evs), stuck)
	if stuck > 0 {
		t.Fatalf("%d deliveries stay claimed by a replica that will never attempt them (renewed at every beat): no other replica can take them", stuck)
	}
}

// An ordered destination made unordered and ordered again (or deleted and
// created again): the replica that owned it before must not run it on the
// epoch it remembers while another replica holds its lease now.
func TestClusterOrderingChangeForgetsTheOldLease(t *testing.T) {
	schema := rvSchema(t)
	s := newRvSink(t)
	noDests := "subscriptions: []\n"
	lease := 900 * time.Millisecond
	a := newReplica(t, schema, noDests, lease, nil)
	spec := func(ordering string) []byte {
		return []byte(fmt.Sprintf(`{"name":"d","type":"http","url":%q,"ordering":%q}`, s.srv.URL, ordering))
	}
	if _, err := a.e.DestinationPut(context.Background(), "d", spec("fifo"), true); err != nil {
		t.Fatal(err)
	}
	if _, err := a.e.SubscriptionPut(context.Background(), "", []byte(`{"destination":"d","events":["*"]}`)); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 5*time.Second, "a owns d", func() bool { _, ok := a.e.cl.ownedEpoch("d"); return ok })
	b := newReplica(t, schema, noDests, lease, nil)
	if _, err := b.e.DestinationPut(context.Background(), "d", spec("none"), false); err != nil {
		t.Fatal(err)
	}
	if err := a.e.Reload(context.Background()); err != nil {
		t.Fatal(err)
	}
	time.Sleep(2 * lease) // d's lease ends: nobody renews it
	if _, err := b.e.DestinationPut(context.Background(), "d", spec("fifo"), false); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 5*time.Second, "b owns d", func() bool { _, ok := b.e.cl.ownedEpoch("d"); return ok })
	if err := a.e.Reload(context.Background()); err != nil {
		t.Fatal(err)
	}
	if ep, ok := a.e.cl.ownedEpoch("d"); ok {
		eb, _ := b.e.cl.ownedEpoch("d")
		t.Fatalf("a runs d on epoch %d (remembered) while b holds its lease (epoch %d): both load, stamp and attempt d's deliveries until a's next beat", ep, eb)
	}
}
