//go:build linux

package e2e

import (
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// postgresSchema connects to the test PostgreSQL and creates a schema of
// its own, dropped at cleanup. It returns the base DSN (without a
// search_path), the schema and the admin connection. Without PostgreSQL it
// skips, unless HOOKD_TEST_REQUIRE_SERVICES=1 makes that a failure.
func postgresSchema(t *testing.T) (string, string, *pgx.Conn) {
	t.Helper()
	base := os.Getenv("HOOKD_TEST_POSTGRES_DSN")
	if base == "" {
		base = "postgres://postgres@127.0.0.1:5432/test?sslmode=disable"
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	admin, err := pgx.Connect(ctx, base)
	if err != nil {
		msg := fmt.Sprintf("PostgreSQL is not reachable (%v)", err)
		if os.Getenv("HOOKD_TEST_REQUIRE_SERVICES") == "1" {
			t.Fatalf("%s; HOOKD_TEST_REQUIRE_SERVICES=1 makes this a failure", msg)
		}
		t.Skip(msg + "; set HOOKD_TEST_REQUIRE_SERVICES=1 to fail instead of skipping")
	}
	schema := fmt.Sprintf("hookd_e2e_%d", rand.Uint64()>>1)
	if _, err := admin.Exec(ctx, "CREATE SCHEMA "+schema); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_, err := admin.Exec(ctx, "DROP SCHEMA "+schema+" CASCADE")
		admin.Close(context.Background())
		if err != nil {
			// The connection may be gone (a test restarted PostgreSQL):
			// drop the schema through a new one.
			if again, cerr := pgx.Connect(ctx, base); cerr == nil {
				_, err = again.Exec(ctx, "DROP SCHEMA "+schema+" CASCADE")
				again.Close(context.Background())
			}
		}
		if err != nil {
			t.Errorf("drop schema %s: %v", schema, err)
		}
	})
	return base, schema, admin
}

// withSearchPath returns dsn with host:port replaced by hostport (when not
// empty) and search_path set to schema.
func withSearchPath(t *testing.T, dsn, hostport, schema string) string {
	t.Helper()
	u, err := url.Parse(dsn)
	if err != nil {
		t.Fatal(err)
	}
	if hostport != "" {
		u.Host = hostport
	}
	q := u.Query()
	q.Set("search_path", schema)
	u.RawQuery = q.Encode()
	return u.String()
}

// tcpProxy forwards connections to a target; cut closes its listener and
// every connection, so that the target is unreachable through it.
type tcpProxy struct {
	ln    net.Listener
	mu    sync.Mutex
	conns map[net.Conn]bool
	cut   bool
}

func newTCPProxy(t *testing.T, target string) *tcpProxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &tcpProxy{ln: ln, conns: map[net.Conn]bool{}}
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go p.forward(c, target)
		}
	}()
	t.Cleanup(p.Cut)
	return p
}

func (p *tcpProxy) Addr() string { return p.ln.Addr().String() }

func (p *tcpProxy) track(cs ...net.Conn) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cut {
		return false
	}
	for _, c := range cs {
		p.conns[c] = true
	}
	return true
}

func (p *tcpProxy) forward(c net.Conn, target string) {
	u, err := net.DialTimeout("tcp", target, 2*time.Second)
	if err != nil {
		c.Close()
		return
	}
	if !p.track(c, u) {
		c.Close()
		u.Close()
		return
	}
	go func() { io.Copy(u, c); u.Close() }()
	io.Copy(c, u)
	c.Close()
}

// Cut makes the target unreachable: new connections are refused and the
// open ones are closed.
func (p *tcpProxy) Cut() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.cut = true
	p.ln.Close()
	for c := range p.conns {
		c.Close()
	}
	clear(p.conns)
}

// heldSink is a receiver that holds every request until release is
// called, then answers 200; it counts each webhook-id per run.
type heldSink struct {
	srv     *httptest.Server
	mu      sync.Mutex
	run     int
	got     []map[string]int // per run
	held    int
	release chan struct{}
}

func newHeldSink(t *testing.T) *heldSink {
	s := &heldSink{got: []map[string]int{{}}, release: make(chan struct{})}
	s.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		s.mu.Lock()
		s.held++
		rel := s.release
		s.mu.Unlock()
		<-rel
		s.mu.Lock()
		s.held--
		s.got[s.run][r.Header.Get("webhook-id")]++
		s.mu.Unlock()
	}))
	t.Cleanup(s.srv.Close)
	t.Cleanup(s.open)
	return s
}

// open lets every request through, now and from now on.
func (s *heldSink) open() {
	s.mu.Lock()
	defer s.mu.Unlock()
	select {
	case <-s.release:
	default:
		close(s.release)
	}
}

func (s *heldSink) heldNow() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.held
}

// nextRun starts counting a new run's deliveries.
func (s *heldSink) nextRun() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.run++
	s.got = append(s.got, map[string]int{})
}

func (s *heldSink) receivedIn(run int) map[string]int {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := map[string]int{}
	for k, v := range s.got[run] {
		out[k] = v
	}
	return out
}

// TestShutdownEndsWhileStorageUnreachable stops hookd with SIGTERM while
// its database is unreachable and attempts have succeeded whose outcomes
// it cannot record: hookd must exit within shutdown_grace plus a few
// seconds, not retry the writes forever. After a restart with the
// database back, every event whose outcome was not recorded is delivered
// again (at-least-once, with the same webhook-id), and every delivery ends
// succeeded.
func TestShutdownEndsWhileStorageUnreachable(t *testing.T) {
	if testing.Short() {
		t.Skip("stops a hookd child with its database unreachable; skipped with -short")
	}
	const (
		grace  = 3 * time.Second
		slack  = 5 * time.Second
		events = 8
	)
	base, schema, admin := postgresSchema(t)
	target, err := url.Parse(base)
	if err != nil {
		t.Fatal(err)
	}
	proxy := newTCPProxy(t, target.Host)
	sink := newHeldSink(t)
	dir := t.TempDir()
	extra := fmt.Sprintf(`egress: {allow_private: ["127.0.0.0/8"]}
destinations:
  - name: sink
    type: http
    url: %s
    concurrency: 16
    retry: {policy: exponential, base: 50ms, cap: 1s, jitter: 0}
subscriptions:
  - {source: "*", destination: sink}
`, sink.srv.URL)
	storage := func(hostport string) string {
		return fmt.Sprintf("storage:\n  driver: postgres\n  dsn: %q\n", withSearchPath(t, base, hostport, schema))
	}
	yml := strings.Replace(loadConfigOn(storage(proxy.Addr()), extra), "shutdown_grace: 10s", fmt.Sprintf("shutdown_grace: %v", grace), 1)
	yml = strings.Replace(yml, "level: warn", "level: info", 1)
	cfg := writeConfig(t, dir, yml)
	p := startHookd(t, dir, "--config", cfg, "--listen", "127.0.0.1:0")

	c := newClient(4, 10*time.Second)
	defer c.CloseIdleConnections()
	acked := map[string]bool{}
	for i := range events {
		marker := fmt.Sprintf("u-%d", i)
		a := post(c, p.Base+"/in/crash", []byte(fmt.Sprintf(`{"id":%q,"m":%q}`, marker, marker)))
		if a.Status != http.StatusOK {
			t.Fatalf("POST %s: got %d %s (%v), want 200", marker, a.Status, a.Body, a.Err)
		}
		var r record
		r.classify(a)
		acked[r.eventID] = true
	}
	// Every event's attempt is held at the sink: its outcome is not known.
	awaitCond(t, 20*time.Second, "every attempt held at the sink", func() bool { return sink.heldNow() == events })
	// The database goes away; then the attempts succeed, and hookd cannot
	// record it.
	proxy.Cut()
	sink.open()
	awaitCond(t, 20*time.Second, "hookd logs that it cannot record outcomes", func() bool {
		return strings.Contains(p.Stderr.String(), "record delivery outcomes")
	})
	if got := len(sink.receivedIn(0)); got != events {
		t.Fatalf("sink received %d events before the stop, want %d", got, events)
	}

	sent := time.Now()
	p.signal(syscall.SIGTERM)
	exited := p.wait(grace + 30*time.Second)
	took := time.Since(sent)
	if !exited {
		t.Fatalf("hookd did not exit within %v of SIGTERM (shutdown_grace %v) with its database unreachable\nstderr:\n%s", took.Round(time.Millisecond), grace, tail(p.Stderr.String(), 3000))
	}
	code := p.cmd.ProcessState.ExitCode()
	t.Logf("with the database unreachable, hookd exited %d after %v of SIGTERM (shutdown_grace %v)", code, took.Round(time.Millisecond), grace)
	if took > grace+slack {
		t.Errorf("hookd exited %v after SIGTERM, want within shutdown_grace %v + %v", took.Round(time.Millisecond), grace, slack)
	}
	if !strings.Contains(p.Stderr.String(), "delivery outcomes not recorded") {
		t.Errorf("stderr does not say which outcomes were not recorded:\n%s", tail(p.Stderr.String(), 3000))
	}

	// Restart with the database reachable: what was not recorded is
	// delivered again.
	sink.nextRun()
	cfg2 := writeConfig(t, dir, strings.Replace(yml, storage(proxy.Addr()), storage(""), 1))
	p2 := startHookd(t, dir, "--config", cfg2, "--listen", "127.0.0.1:0")
	awaitCond(t, 30*time.Second, "every acknowledged event delivered again after the restart", func() bool {
		got := sink.receivedIn(1)
		for id := range acked {
			if got[id] == 0 {
				return false
			}
		}
		return true
	})
	var undelivered int
	awaitCond(t, 30*time.Second, "every delivery recorded as succeeded", func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		var total int
		err := admin.QueryRow(ctx, "SELECT count(*), count(*) FILTER (WHERE status <> 'succeeded') FROM "+schema+".deliveries").Scan(&total, &undelivered)
		return err == nil && total == events && undelivered == 0
	})
	if code, took := p2.terminate(15 * time.Second); code != 0 {
		t.Errorf("after the restart: exit %d %v after SIGTERM, want 0\nstderr:\n%s", code, took, tail(p2.Stderr.String(), 3000))
	}
	for id := range acked {
		if n := sink.receivedIn(0)[id] + sink.receivedIn(1)[id]; n < 2 {
			t.Errorf("event %s reached the sink %d times, want once before the stop and once after", id, n)
		}
	}
	t.Logf("%d events whose delivered outcome was not recorded were delivered again after the restart, with their webhook-ids", len(acked))
}

// awaitCond polls cond every 20ms until it holds, failing the test after d.
func awaitCond(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %v", what, d)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
