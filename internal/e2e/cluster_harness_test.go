//go:build linux

package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
)

// The cluster tests run several `hookd serve` replicas on one PostgreSQL
// schema, as a user runs hookd behind a load balancer: each replica on a
// port of its own on 127.0.0.1, all with the same configuration file,
// master key and admin token. Each replica connects with an
// application_name of its own (hookd-a, hookd-b, …) so that a test can cut
// one replica's database sessions, and sends a header naming itself
// (X-E2E-Replica) on the configured http destinations, so that the sink
// knows which replica made each attempt.

// clusterMasterKey is the HOOKD_MASTER_KEY every replica gets: secrets
// one replica stores, another must open.
const clusterMasterKey = "e2e:AQIDBAUGBwgJCgsMDQ4PEBESExQVFhcYGRobHB0eHyA="

// clusterLease is the lease the tests configure (cluster.lease): the time
// after which another replica takes over a dead replica's deliveries.
const clusterLease = 3 * time.Second

// replicaHeader is the static header the configured http destinations
// send, naming the replica that made the attempt.
const replicaHeader = "X-E2E-Replica"

var (
	leaseProbe     sync.Once
	leaseSupported bool
	leaseRefusal   string // hookd's answer when it refuses the key
)

// clusterLeaseBlock returns the configuration block that sets
// cluster.lease to clusterLease, or "" (with a note in the log) while the
// binary under test does not know the key yet: the tests then run with the
// built-in lease, and the takeover tests fail on their deadlines.
//
// It asks hookd itself: a configuration with the block and a listen
// address hookd refuses fails validation either way, and the error names
// the cluster key only when hookd does not accept it.
func clusterLeaseBlock(t *testing.T) string {
	t.Helper()
	leaseProbe.Do(func() {
		dir, err := os.MkdirTemp("", "hookd-e2e-probe-")
		if err != nil {
			leaseRefusal = err.Error()
			return
		}
		defer os.RemoveAll(dir)
		cfg := filepath.Join(dir, "probe.yaml")
		yml := fmt.Sprintf("listen: not-an-address\nstorage: {driver: postgres, dsn: \"postgres://127.0.0.1:1/x\"}\ncluster: {lease: %s}\n", clusterLease)
		if err := os.WriteFile(cfg, []byte(yml), 0o600); err != nil {
			leaseRefusal = err.Error()
			return
		}
		cmd := exec.Command(hookdBin, "serve", "--config", cfg)
		cmd.Env = cleanEnv()
		out, _ := cmd.CombinedOutput()
		if strings.Contains(string(out), "cluster") {
			leaseRefusal = strings.TrimSpace(string(out))
			return
		}
		leaseSupported = true
	})
	if !leaseSupported {
		t.Logf("NOTE: hookd refuses `cluster: {lease: %s}` (%s); running with its built-in lease, so takeovers wait for that", clusterLease, leaseRefusal)
		return ""
	}
	return fmt.Sprintf("cluster:\n  lease: %s\n", clusterLease)
}

// cluster is a set of hookd replicas on one PostgreSQL schema.
type cluster struct {
	t      *testing.T
	dir    string
	cfg    string        // the configuration file every replica reads
	dsn    string        // the schema's DSN, without an application_name
	schema string        // the schema's name
	db     *pgxpool.Pool // the test's own connections, search_path set
	r      []*replica
}

// replica is one hookd serve of a cluster, started and restarted under the
// same name.
type replica struct {
	c    *cluster
	name string // a, b, c…: application_name hookd-<name>

	mu      sync.Mutex
	p       *proc           // the current process; nil before the first start
	base    string          // http://addr while it runs, "" while it is down
	stderrs []*lockedBuffer // stderr of every process, oldest first
	starts  int
}

// newCluster creates a schema of its own on the test PostgreSQL (skipping
// without one, unless HOOKD_TEST_REQUIRE_SERVICES=1), writes the
// configuration yml into a temporary directory, and prepares n replicas
// named a, b, c… without starting them. yml must not set storage: the
// cluster adds it.
func newCluster(t *testing.T, n int, yml string) *cluster {
	t.Helper()
	base, schema, _ := postgresSchema(t)
	dsn := withSearchPath(t, base, "", schema)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	db, err := pgxpool.New(ctx, dsn)
	if err != nil {
		t.Fatalf("connect to %s: %v", dsn, err)
	}
	t.Cleanup(db.Close) // before the schema is dropped (cleanups run last first)
	c := &cluster{t: t, dir: t.TempDir(), dsn: dsn, schema: schema, db: db}
	storage := fmt.Sprintf("storage:\n  driver: postgres\n  dsn: %q\n", dsn)
	c.cfg = writeConfig(t, c.dir, storage+yml)
	for i := range n {
		c.r = append(c.r, &replica{c: c, name: string(rune('a' + i))})
	}
	t.Cleanup(func() {
		if !t.Failed() {
			return
		}
		for _, r := range c.r {
			r.mu.Lock()
			if len(r.stderrs) > 0 {
				last := r.stderrs[len(r.stderrs)-1].String()
				t.Logf("replica %s: %d starts; stderr of the last:\n%s", r.name, r.starts, tail(last, 4000))
			}
			r.mu.Unlock()
		}
	})
	return c
}

// clusterConfig is a configuration for newCluster: an admin token every
// replica accepts, loopback http destinations allowed, the short lease
// when hookd knows the key, then extra (sources, destinations,
// subscriptions).
func clusterConfig(t *testing.T, extra string) string {
	return fmt.Sprintf(`listen: 127.0.0.1:0
admin:
  tokens: [%q]
log:
  level: info
server:
  ack_deadline: 2s
  shutdown_grace: 10s
egress:
  allow_private: ["127.0.0.0/8"]
%s%s`, adminToken, clusterLeaseBlock(t), extra)
}

// replicaDSN is the DSN replica name connects with.
func (c *cluster) replicaDSN(name string) string {
	u, err := url.Parse(c.dsn)
	if err != nil {
		c.t.Fatal(err)
	}
	q := u.Query()
	q.Set("application_name", "hookd-"+name)
	u.RawQuery = q.Encode()
	return u.String()
}

// start starts replica i (which must be down) and waits until it answers
// /readyz with 200.
func (c *cluster) start(i int) {
	c.t.Helper()
	r := c.r[i]
	p := startHookdWith(c.t, c.dir, spawnOpts{
		quiet: true,
		env: []string{
			"HOOKD_STORAGE_DSN=" + c.replicaDSN(r.name),
			"HOOKD_MASTER_KEY=" + clusterMasterKey,
			"E2E_REPLICA=" + r.name,
		},
	}, "--config", c.cfg, "--listen", "127.0.0.1:0")
	waitReady(c.t, p, 20*time.Second)
	r.mu.Lock()
	r.p, r.base = p, p.Base
	r.stderrs = append(r.stderrs, p.Stderr)
	r.starts++
	r.mu.Unlock()
}

// startAll starts every replica, one after the other.
func (c *cluster) startAll() {
	c.t.Helper()
	for i := range c.r {
		c.start(i)
	}
}

// kill SIGKILLs replica i and waits until it is gone.
func (c *cluster) kill(i int) {
	c.t.Helper()
	r := c.r[i]
	r.mu.Lock()
	p := r.p
	r.base = ""
	r.mu.Unlock()
	if p == nil {
		return
	}
	p.signal(syscall.SIGKILL)
	if !p.wait(10 * time.Second) {
		c.t.Fatalf("replica %s (pid %d) still runs 10s after SIGKILL", r.name, p.cmd.Process.Pid)
	}
}

// restart SIGKILLs replica i and starts it again.
func (c *cluster) restart(i int) {
	c.t.Helper()
	c.kill(i)
	c.start(i)
}

// stop sends SIGSTOP to replica i; cont sends SIGCONT.
func (c *cluster) stop(i int) { c.r[i].proc().signal(syscall.SIGSTOP) }
func (c *cluster) cont(i int) { c.r[i].proc().signal(syscall.SIGCONT) }

// base is replica i's http://addr, "" while it is down.
func (c *cluster) base(i int) string {
	r := c.r[i]
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.base
}

func (r *replica) proc() *proc {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.p
}

// stderr is the stderr of every process replica i ran, oldest first.
func (c *cluster) stderr(i int) string {
	r := c.r[i]
	r.mu.Lock()
	defer r.mu.Unlock()
	var b strings.Builder
	for n, s := range r.stderrs {
		fmt.Fprintf(&b, "--- replica %s, process %d ---\n%s", r.name, n+1, s.String())
	}
	return b.String()
}

// waitReady polls p's /readyz until it answers 200, for at most d.
func waitReady(t testing.TB, p *proc, d time.Duration) {
	t.Helper()
	c := newClient(1, 2*time.Second)
	defer c.CloseIdleConnections()
	deadline := time.Now().Add(d)
	last := "no answer yet"
	for {
		resp, err := c.Get(p.Base + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
			last = resp.Status
		} else {
			last = err.Error()
		}
		select {
		case <-p.done:
			t.Fatalf("hookd (%s) exited before it was ready (%v)\nstderr:\n%s", p.Base, p.waitErr, tail(p.Stderr.String(), 4000))
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("hookd (%s) not ready within %v: last /readyz %s\nstderr:\n%s", p.Base, d, last, tail(p.Stderr.String(), 4000))
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// readEvents reads the events table directly and indexes the rows by the
// "m" marker field of their JSON bodies (bodies without one under "").
func (c *cluster) readEvents() map[string][]storedRow {
	c.t.Helper()
	// hookd's own operational events (source hookd) are not the load's.
	rows, err := c.db.Query(context.Background(), "SELECT id, source, body FROM events WHERE source <> 'hookd'")
	if err != nil {
		c.t.Fatalf("read events: %v", err)
	}
	defer rows.Close()
	out := map[string][]storedRow{}
	for rows.Next() {
		var (
			r    storedRow
			body []byte
		)
		if err := rows.Scan(&r.ID, &r.Source, &body); err != nil {
			c.t.Fatal(err)
		}
		var m struct {
			M string `json:"m"`
		}
		json.Unmarshal(body, &m)
		out[m.M] = append(out[m.M], r)
	}
	if err := rows.Err(); err != nil {
		c.t.Fatal(err)
	}
	return out
}

// eventIDs returns the ids of every stored event of the sources given
// (every source but hookd's own when none is given).
func (c *cluster) eventIDs(sources ...string) []string {
	c.t.Helper()
	q, args := "SELECT id FROM events WHERE source <> 'hookd'", []any{}
	if len(sources) > 0 {
		q, args = q+" AND source = ANY($1)", []any{sources}
	}
	rows, err := c.db.Query(context.Background(), q, args...)
	if err != nil {
		c.t.Fatalf("read event ids: %v", err)
	}
	defer rows.Close()
	var ids []string
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			c.t.Fatal(err)
		}
		ids = append(ids, id)
	}
	if err := rows.Err(); err != nil {
		c.t.Fatal(err)
	}
	return ids
}

// deliveryStates describes the deliveries to destination of the events
// ids: how many are in each status, with the leases of those delivering,
// and how many events have no delivery row. It explains a failed drain.
func (c *cluster) deliveryStates(destination string, ids []string) string {
	c.t.Helper()
	ctx := context.Background()
	rows, err := c.db.Query(ctx, `SELECT status, count(*), min(lease_until), max(lease_until), max(attempts)
		FROM deliveries WHERE destination = $1 AND event_id = ANY($2) GROUP BY status ORDER BY status`, destination, ids)
	if err != nil {
		return fmt.Sprintf("(read deliveries: %v)", err)
	}
	defer rows.Close()
	now := time.Now()
	var parts []string
	seen := 0
	for rows.Next() {
		var (
			status      string
			n           int
			lmin, lmax  *int64
			maxAttempts int
		)
		if err := rows.Scan(&status, &n, &lmin, &lmax, &maxAttempts); err != nil {
			return fmt.Sprintf("(read deliveries: %v)", err)
		}
		seen += n
		s := fmt.Sprintf("%d %s (at most %d attempts)", n, status, maxAttempts)
		if lmin != nil {
			s += fmt.Sprintf(", leases ending in %v … %v", time.UnixMicro(*lmin).Sub(now).Round(time.Millisecond), time.UnixMicro(*lmax).Sub(now).Round(time.Millisecond))
		}
		parts = append(parts, s)
	}
	if err := rows.Err(); err != nil {
		return fmt.Sprintf("(read deliveries: %v)", err)
	}
	if seen < len(ids) {
		parts = append(parts, fmt.Sprintf("%d without a delivery row", len(ids)-seen))
	}
	return strings.Join(parts, "; ")
}

// drain waits until the sink has answered 2xx to destination for every
// stored event of sources (every source when none is given), and returns
// the ids still missing when it gave up: after budget in all, or once
// stall passed without the number missing going down.
func (c *cluster) drain(s *sink, destination string, budget, stall time.Duration, sources ...string) (missing []string, took time.Duration) {
	c.t.Helper()
	start := time.Now()
	best, bestAt := -1, start
	for {
		ids := c.eventIDs(sources...)
		got := s.succeeded(destination)
		missing = missing[:0]
		for _, id := range ids {
			if !got[id] {
				missing = append(missing, id)
			}
		}
		if len(missing) == 0 {
			return nil, time.Since(start)
		}
		if best < 0 || len(missing) < best {
			best, bestAt = len(missing), time.Now()
		}
		if time.Since(start) > budget || time.Since(bestAt) > stall {
			sort.Strings(missing)
			return missing, time.Since(start)
		}
		time.Sleep(250 * time.Millisecond)
	}
}

// requireDrained fails the test when missing is not empty, with the count
// and the state of their deliveries in the database.
func (c *cluster) requireDrained(destination string, missing []string, took time.Duration, total int) {
	c.t.Helper()
	if len(missing) == 0 {
		return
	}
	c.t.Fatalf("LOST: %d of %d stored events never reached the sink (destination %s) within %v of the end of the load; their deliveries: %s; e.g. %v",
		len(missing), total, destination, took.Round(time.Millisecond), c.deliveryStates(destination, missing), missing[:min(5, len(missing))])
}

// startClusterLoad is startLoad over the replicas given (indexes into
// c.r), round robin: each worker sends its next request to the next
// replica that is up, and goes on when one is down or refuses the
// connection (it is being restarted).
func startClusterLoad(c *cluster, replicas []int, prefix string, workers int, seed uint64) *load {
	l := &load{recs: make([][]record, workers), client: newClient(workers, 3*time.Second)}
	for g := range workers {
		l.wg.Add(1)
		go func() {
			defer l.wg.Done()
			rng := rand.New(rand.NewPCG(seed, uint64(g)))
			for n := 0; !l.stopped.Load(); n++ {
				base := c.base(replicas[(g+n)%len(replicas)])
				if base == "" {
					time.Sleep(5 * time.Millisecond)
					continue
				}
				r, body := newLoadRequest(rng, fmt.Sprintf("%s-%d-%d", prefix, g, n))
				a := post(l.client, base+"/in/"+r.source, body)
				r.classify(a)
				l.recs[g] = append(l.recs[g], r)
				if r.refused {
					time.Sleep(5 * time.Millisecond)
				}
			}
		}()
	}
	return l
}

// clusterLoadSources is the load's sources (those of loadConfig) and a
// destination "sink" at s, subscribed to every source, for clusterConfig.
func clusterLoadSources(s *sink) string {
	return fmt.Sprintf(`sources:
  - name: crash
    event: {id: "json:id"}
    dedupe_window: 168h
  - name: strict
    event: {id: "json:id", require_id: true}
    max_body: 2KiB
destinations:
  - name: sink
    type: http
    url: %s
    concurrency: 32
    headers: {%s: "${E2E_REPLICA}"}
    retry: {policy: exponential, base: 50ms, cap: 1s, jitter: 0}
subscriptions:
  - {source: "*", destination: sink}
`, s.url("sink"), replicaHeader)
}

// apiCall sends body (nil for none) as JSON to the admin API with the
// admin token and returns the status and the answer's body.
func apiCall(t *testing.T, c *http.Client, method, rawURL string, body any) (int, []byte) {
	t.Helper()
	if err := checkLoopback(rawURL); err != nil {
		t.Fatal(err)
	}
	var rd io.Reader = http.NoBody
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			t.Fatal(err)
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, rawURL, rd)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+adminToken)
	req.Header.Set("Content-Type", "application/json")
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, rawURL, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s: read the answer: %v", method, rawURL, err)
	}
	return resp.StatusCode, b
}
