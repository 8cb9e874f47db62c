//go:build linux

package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// TestClusterPostgresRestartImmediate: three replicas take load while the
// machine's PostgreSQL is restarted with `pg_ctlcluster … restart -m
// immediate` (every session cut, crash recovery at the start). Then:
//
//   - no request answered 200 names an event that is not stored;
//   - during the outage, requests are answered 503 with Retry-After (at
//     least one), and every 5xx answer carries Retry-After;
//   - each replica's /readyz answers 503 at some point during the outage
//     and 200 again after it;
//   - every replica recovers by itself (none is restarted): new posts to
//     each answer 200 within 30 s of PostgreSQL being back, and are
//     delivered;
//   - every stored event reaches the sink.
//
// It restarts the PostgreSQL every other test uses, so it runs only with
// HOOKD_TEST_PG_RESTART=1, and alone. It needs root (pg_ctlcluster) and
// starts PostgreSQL again at the end, even when it fails.
func TestClusterPostgresRestartImmediate(t *testing.T) {
	if os.Getenv("HOOKD_TEST_PG_RESTART") != "1" {
		t.Skip("restarts the machine's PostgreSQL (pg_ctlcluster … restart -m immediate), which disturbs every other test using it: set HOOKD_TEST_PG_RESTART=1 to run it, and run it alone")
	}
	const (
		workers = 9
		pace    = 5 * time.Millisecond
		budget  = 30 * time.Second // for each replica to recover
	)
	version := pgClusterVersion(t)
	s := newSink(t)
	c := newCluster(t, 3, clusterConfig(t, fmt.Sprintf(`sources:
  - name: pg
    event: {id: "json:id"}
destinations:
  - name: sink
    type: http
    url: %s
    concurrency: 16
    headers: {%s: "${E2E_REPLICA}"}
    retry: {policy: exponential, base: 50ms, cap: 1s, jitter: 0}
subscriptions:
  - {source: pg, destination: sink}
`, s.url("sink"), replicaHeader)))
	// Registered after newCluster, so run before it drops the schema.
	t.Cleanup(func() { ensurePostgres(t, version) })
	c.startAll()

	rw := watchReadyz(c)
	l := startSeqLoad(c, "pg", workers, pace)
	loadStart := time.Now()
	awaitCond(t, 10*time.Second, "the first 100 events reach the sink", func() bool { return len(s.succeeded("sink")) >= 100 })

	restartAt := time.Now()
	probe := probePostgres(c.dsn)
	out, err := exec.Command("pg_ctlcluster", "--skip-systemctl-redirect", version, "main", "restart", "-m", "immediate").CombinedOutput()
	cmdDone := time.Now()
	if err != nil {
		t.Fatalf("pg_ctlcluster --skip-systemctl-redirect %s main restart -m immediate: %v\n%s", version, err, out)
	}
	downAt, backAt := probe()
	if downAt.IsZero() {
		t.Fatalf("the test's probe never saw PostgreSQL refuse a connection during pg_ctlcluster restart -m immediate (%v)", cmdDone.Sub(restartAt).Round(time.Millisecond))
	}
	t.Logf("%5.1fs: PostgreSQL restarted (-m immediate): down %v after the command began, taking connections again %v later; pg_ctlcluster returned after %v",
		restartAt.Sub(loadStart).Seconds(), downAt.Sub(restartAt).Round(time.Millisecond), backAt.Sub(downAt).Round(time.Millisecond), cmdDone.Sub(restartAt).Round(time.Millisecond))

	// Every replica comes back by itself: ready, and taking events.
	after := make([]string, len(c.r)) // an event each replica took after the restart
	for i := range c.r {
		name := c.r[i].name
		if took := rw.readyAgain(i, backAt, budget); took < 0 {
			t.Errorf("RECOVERY: replica %s's /readyz did not answer 200 within %v of PostgreSQL being back (last: %s)", name, budget, rw.last(i))
		} else {
			t.Logf("replica %s: /readyz 200 again %v after PostgreSQL was back", name, took.Round(time.Millisecond))
		}
		id, took, last := postUntilOK(c.base(i)+"/in/pg", "after-"+name, backAt.Add(budget))
		if id == "" {
			t.Errorf("RECOVERY: replica %s answered no post 200 within %v of PostgreSQL being back (last answer: %s)", name, budget, last)
			continue
		}
		after[i] = id
		t.Logf("replica %s: a new post answered 200 %v after PostgreSQL was back", name, took.Round(time.Millisecond))
	}
	time.Sleep(2 * time.Second) // the load goes on a little after the recovery
	posts := l.stop()
	rw.stop()

	// The test's own connections were cut too.
	c.db.Reset()
	awaitCond(t, budget, "the test's connection pool reaches PostgreSQL", func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		return c.db.Ping(ctx) == nil
	})

	// Answers: every 200 stored once, with its id; anything else stored at
	// most once; 5xx with Retry-After.
	rows := c.readEvents()
	total := 0
	for _, rs := range rows {
		total += len(rs)
	}
	var (
		ok, c503, c5xx, noRA, none, other, storedNot200 int
		lost, bad                                       []string
		first503, last503                               time.Time
	)
	for _, p := range posts {
		rs := rows[p.marker]
		if p.status != http.StatusOK && len(rs) > 0 {
			storedNot200++
		}
		if len(rs) > 1 {
			lost = append(lost, fmt.Sprintf("%s (answered %d by replica %s): stored %d times", p.marker, p.status, c.r[p.replica].name, len(rs)))
		}
		switch {
		case p.status == http.StatusOK:
			ok++
			if len(rs) == 0 || rs[0].ID != p.eventID {
				lost = append(lost, fmt.Sprintf("%s (event %s, replica %s, answered 200 at %s): stored as %v", p.marker, p.eventID, c.r[p.replica].name, p.at.Format("15:04:05.000"), rs))
			}
		case p.status == 0:
			none++
		case p.status >= 500:
			c5xx++
			if p.status == http.StatusServiceUnavailable {
				c503++
				if first503.IsZero() || p.at.Before(first503) {
					first503 = p.at
				}
				if p.at.After(last503) {
					last503 = p.at
				}
			}
			if p.retryAfter == "" {
				noRA++
				bad = append(bad, fmt.Sprintf("%s: %d from replica %s at %s", p.marker, p.status, c.r[p.replica].name, p.at.Format("15:04:05.000")))
			}
		default:
			other++
			bad = append(bad, fmt.Sprintf("%s: %d from replica %s at %s", p.marker, p.status, c.r[p.replica].name, p.at.Format("15:04:05.000")))
		}
	}
	t.Logf("load over %v: %d posts: %d answered 200, %d 5xx (%d of them 503), %d no answer, %d other; %d events stored (%d of them for posts not answered 200)",
		time.Since(loadStart).Round(time.Millisecond), len(posts), ok, c5xx, c503, none, other, total, storedNot200)
	if c503 > 0 {
		t.Logf("503 answers from %v after PostgreSQL went down to %v after it took connections again", first503.Sub(downAt).Round(time.Millisecond), last503.Sub(backAt).Round(time.Millisecond))
	}
	if len(lost) > 0 {
		t.Errorf("LOST: %d requests answered 200 whose events are not stored as answered, or stored twice, e.g.:\n  %s", len(lost), strings.Join(lost[:min(10, len(lost))], "\n  "))
	}
	if c503 == 0 {
		t.Errorf("OUTAGE: no request was answered 503 while PostgreSQL restarted (%d posts, %d without an answer)", len(posts), none)
	}
	if noRA > 0 || other > 0 {
		t.Errorf("OUTAGE: %d answers were neither 200 nor a 5xx with Retry-After, e.g.:\n  %s", noRA+other, strings.Join(bad[:min(10, len(bad))], "\n  "))
	}

	// /readyz: not ready during the outage, for every replica.
	for i := range c.r {
		by, firstAt := rw.notReady(i, restartAt)
		if len(by) == 0 || (len(by) == 1 && by[0] > 0) {
			t.Errorf("READYZ: replica %s's /readyz never answered other than 200 during the outage (%d polls got no answer)", c.r[i].name, by[0])
			continue
		}
		t.Logf("replica %s: /readyz not ready from %v after the restart began; answers other than 200 (0: none): %v", c.r[i].name, firstAt.Sub(restartAt).Round(time.Millisecond), by)
	}

	// Delivery: every stored event, the ones taken after the restart too.
	missing, took := c.drain(s, "sink", 60*time.Second, 20*time.Second, "pg")
	c.requireDrained("sink", missing, took, total)
	got := s.succeeded("sink")
	for i, id := range after {
		if id != "" && !got[id] {
			t.Errorf("RECOVERY: event %s, taken by replica %s after the restart, did not reach the sink", id, c.r[i].name)
		}
	}
	t.Logf("drained in %v: all %d stored events reached the sink; sink: %v", took.Round(time.Millisecond), total, s.stats())
}

// pgClusterVersion is the version directory of the machine's PostgreSQL
// cluster "main" (/etc/postgresql/<version>/main); the test fails without
// one, or without pg_ctlcluster.
func pgClusterVersion(t *testing.T) string {
	t.Helper()
	if _, err := exec.LookPath("pg_ctlcluster"); err != nil {
		t.Fatalf("HOOKD_TEST_PG_RESTART=1 needs pg_ctlcluster (PostgreSQL's Debian packaging): %v", err)
	}
	entries, err := os.ReadDir("/etc/postgresql")
	if err != nil {
		t.Fatalf("HOOKD_TEST_PG_RESTART=1 restarts the cluster under /etc/postgresql/<version>/main: %v", err)
	}
	var versions []string
	for _, e := range entries {
		if st, err := os.Stat(filepath.Join("/etc/postgresql", e.Name(), "main")); err == nil && st.IsDir() {
			versions = append(versions, e.Name())
		}
	}
	if len(versions) != 1 {
		t.Fatalf("HOOKD_TEST_PG_RESTART=1: want one cluster /etc/postgresql/<version>/main, found %d (%v)", len(versions), versions)
	}
	return versions[0]
}

// ensurePostgres starts the cluster version/main unless it runs, and
// waits until it takes connections.
func ensurePostgres(t *testing.T, version string) {
	if exec.Command("pg_ctlcluster", "--skip-systemctl-redirect", version, "main", "status").Run() != nil {
		out, err := exec.Command("pg_ctlcluster", "--skip-systemctl-redirect", version, "main", "start").CombinedOutput()
		if err != nil {
			t.Errorf("start PostgreSQL again (pg_ctlcluster --skip-systemctl-redirect %s main start): %v\n%s", version, err, out)
			return
		}
		t.Logf("PostgreSQL %s/main was down at the end of the test: started it again", version)
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		if exec.Command("pg_isready", "-h", "127.0.0.1", "-p", "5432", "-q").Run() == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Errorf("PostgreSQL %s/main takes no connections 30 s after the test", version)
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// probePostgres connects to dsn every 20 ms with a new connection until
// a connection has failed and one then succeeds (or 60 s passed); the
// function it returns waits for that and returns when the first failed
// and when the next succeeded (zero times when it did not see them).
func probePostgres(dsn string) func() (down, up time.Time) {
	done := make(chan struct{})
	var down, up time.Time
	go func() {
		defer close(done)
		for deadline := time.Now().Add(60 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
			ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
			conn, err := pgx.Connect(ctx, dsn)
			if err == nil {
				err = conn.Ping(ctx)
				conn.Close(context.Background())
			}
			cancel()
			switch {
			case err != nil && down.IsZero():
				down = time.Now()
			case err == nil && !down.IsZero():
				up = time.Now()
				return
			}
		}
	}()
	return func() (time.Time, time.Time) {
		<-done
		return down, up
	}
}

// postUntilOK posts new events to rawURL every 100 ms until one is
// answered 200 or until deadline; it returns the event's id ("" when
// none), how long it took and the last answer.
func postUntilOK(rawURL, prefix string, deadline time.Time) (string, time.Duration, string) {
	client := newClient(1, 3*time.Second)
	defer client.CloseIdleConnections()
	start := time.Now()
	last := "none"
	for n := 0; time.Now().Before(deadline); n++ {
		m := fmt.Sprintf("%s-%d", prefix, n)
		a := post(client, rawURL, fmt.Appendf(nil, `{"id":%q,"m":%q}`, m, m))
		if a.Status == http.StatusOK {
			var ans ingestAnswer
			if err := json.Unmarshal(a.Body, &ans); err == nil && ans.ID != "" {
				return ans.ID, time.Since(start), ""
			}
		}
		last = fmt.Sprintf("%d %v %s", a.Status, a.Err, strings.TrimSpace(string(a.Body)))
		time.Sleep(100 * time.Millisecond)
	}
	return "", time.Since(start), last
}

// readyzPoll is one answer of a replica's /readyz.
type readyzPoll struct {
	at     time.Time
	status int // 0: no answer
}

// readyzWatch polls every replica's /readyz every 10 ms and keeps the
// answers.
type readyzWatch struct {
	stopOnce sync.Once
	done     chan struct{}
	wg       sync.WaitGroup
	mu       sync.Mutex
	polls    [][]readyzPoll
}

func watchReadyz(c *cluster) *readyzWatch {
	w := &readyzWatch{done: make(chan struct{}), polls: make([][]readyzPoll, len(c.r))}
	c.t.Cleanup(w.stop)
	for i := range c.r {
		w.wg.Add(1)
		go func() {
			defer w.wg.Done()
			client := newClient(1, time.Second)
			defer client.CloseIdleConnections()
			for {
				select {
				case <-w.done:
					return
				case <-time.After(10 * time.Millisecond):
				}
				base := c.base(i)
				if base == "" {
					continue
				}
				p := readyzPoll{}
				if resp, err := client.Get(base + "/readyz"); err == nil {
					resp.Body.Close()
					p.status = resp.StatusCode
				}
				p.at = time.Now()
				w.mu.Lock()
				w.polls[i] = append(w.polls[i], p)
				w.mu.Unlock()
			}
		}()
	}
	return w
}

func (w *readyzWatch) stop() {
	w.stopOnce.Do(func() {
		close(w.done)
		w.wg.Wait()
	})
}

// readyAgain waits until replica i's /readyz answered 200 after since
// and returns how long after since (-1 when not within limit).
func (w *readyzWatch) readyAgain(i int, since time.Time, limit time.Duration) time.Duration {
	for deadline := since.Add(limit); ; time.Sleep(20 * time.Millisecond) {
		w.mu.Lock()
		var at time.Time
		for _, p := range w.polls[i] {
			if p.at.After(since) && p.status == http.StatusOK {
				at = p.at
				break
			}
		}
		w.mu.Unlock()
		if !at.IsZero() {
			return at.Sub(since)
		}
		if time.Now().After(deadline) {
			return -1
		}
	}
}

// notReady counts replica i's /readyz answers other than 200 after
// since, by status (0: no answer), with the time of the first answer
// other than 200.
func (w *readyzWatch) notReady(i int, since time.Time) (by map[int]int, first time.Time) {
	w.mu.Lock()
	defer w.mu.Unlock()
	by = map[int]int{}
	for _, p := range w.polls[i] {
		if p.at.Before(since) || p.status == http.StatusOK {
			continue
		}
		if p.status != 0 && first.IsZero() {
			first = p.at
		}
		by[p.status]++
	}
	return by, first
}

// last describes replica i's last /readyz answers.
func (w *readyzWatch) last(i int) string {
	w.mu.Lock()
	defer w.mu.Unlock()
	ps := w.polls[i]
	ps = ps[max(0, len(ps)-3):]
	var out []string
	for _, p := range ps {
		out = append(out, fmt.Sprintf("%d at %s", p.status, p.at.Format("15:04:05.000")))
	}
	sort.Strings(out)
	return strings.Join(out, ", ")
}
