package loadgen

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// checker is a test server that validates every body, remembers every id,
// and answers 503 to every fifth request.
type checker struct {
	mu       sync.Mutex
	ids      map[string]bool
	problems []string
	n        atomic.Int64
}

func (c *checker) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	n := c.n.Add(1)
	b, err := io.ReadAll(r.Body)
	var v struct{ ID, Type string }
	problem := ""
	switch {
	case err != nil:
		problem = "read: " + err.Error()
	case len(b) != BodySize:
		problem = "body size"
	case r.Header.Get("Content-Type") != "application/json":
		problem = "content type " + r.Header.Get("Content-Type")
	case json.Unmarshal(b, &v) != nil:
		problem = "invalid JSON"
	case v.Type != EventType:
		problem = "type " + v.Type
	}
	c.mu.Lock()
	if problem == "" && c.ids[v.ID] {
		problem = "duplicate id " + v.ID
	}
	c.ids[v.ID] = true
	if problem != "" {
		c.problems = append(c.problems, problem)
	}
	c.mu.Unlock()
	if n%5 == 0 {
		http.Error(w, "busy", http.StatusServiceUnavailable)
		return
	}
	w.Write([]byte(`{"ok":true}`))
}

// TestCompare runs the whole comparison against two in-process servers
// for about 300ms and checks that every request is counted once.
func TestCompare(t *testing.T) {
	t.Parallel()
	var bareN atomic.Int64
	bare := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		bareN.Add(1)
		BareHandler().ServeHTTP(w, r)
	}))
	defer bare.Close()
	chk := &checker{ids: map[string]bool{}}
	other := httptest.NewServer(chk)
	defer other.Close()

	const conns = 4
	results, err := Compare(context.Background(), []Target{
		{Name: "bare", Addr: strings.TrimPrefix(bare.URL, "http://"), Path: "/in/bench"},
		{Name: "checker", Addr: strings.TrimPrefix(other.URL, "http://"), Path: "/in/bench"},
	}, Options{Connections: []int{conns}, Warmup: 50 * time.Millisecond, Duration: 100 * time.Millisecond, RunID: "test"})
	if err != nil {
		t.Fatal(err)
	}
	if len(results) != 2 {
		t.Fatalf("got %d results, want 2", len(results))
	}
	for i, want := range []string{"bare", "checker"} {
		r := results[i]
		if r.Server != want || r.Connections != conns {
			t.Errorf("result %d is %s at %d connections, want %s at %d", i, r.Server, r.Connections, want, conns)
		}
		if r.OK == 0 {
			t.Errorf("%s: no 2xx answers counted", r.Server)
		}
		if r.Errors != 0 || r.Unanswered != 0 {
			t.Errorf("%s: errors = %d, unanswered = %d, want 0", r.Server, r.Errors, r.Unanswered)
		}
		if r.Latency.Count != int(r.OK) {
			t.Errorf("%s: %d latencies for %d 2xx answers", r.Server, r.Latency.Count, r.OK)
		}
		if !(0 < r.Latency.P50 && r.Latency.P50 <= r.Latency.P99 && r.Latency.P99 <= r.Latency.Max) {
			t.Errorf("%s: latencies not ordered: %+v", r.Server, r.Latency)
		}
		if r.Elapsed < 100*time.Millisecond {
			t.Errorf("%s: elapsed %s, want at least 100ms", r.Server, r.Elapsed)
		}
		if r.OK > r.Acked {
			t.Errorf("%s: %d 2xx in the window but %d in all", r.Server, r.OK, r.Acked)
		}
	}

	// The servers saw exactly the requests the generator sent.
	b := results[0]
	if got := bareN.Load(); got != b.Sent || b.Acked != b.Sent {
		t.Errorf("bare: server saw %d requests; sent %d, acked %d", got, b.Sent, b.Acked)
	}
	c := results[1]
	if got := chk.n.Load(); got != c.Sent {
		t.Errorf("checker: server saw %d requests, sent %d", got, c.Sent)
	}
	if c.Acked+c.Statuses[503] != c.Sent {
		t.Errorf("checker: %d acked + %d 503s != %d sent", c.Acked, c.Statuses[503], c.Sent)
	}
	if c.Non2xx == 0 {
		t.Errorf("checker: no non-2xx counted in the window, want some 503s")
	}
	chk.mu.Lock()
	if len(chk.problems) > 0 {
		t.Errorf("checker saw bad requests: %q", chk.problems[:min(5, len(chk.problems))])
	}
	chk.mu.Unlock()

	var buf bytes.Buffer
	if err := WriteTable(&buf, results); err != nil {
		t.Fatal(err)
	}
	if lines := strings.Split(strings.TrimSpace(buf.String()), "\n"); len(lines) != 3 || !strings.Contains(lines[2], "ratio ") {
		t.Errorf("table:\n%s\nwant a header, two rows, and a ratio on the second", buf.String())
	}
	buf.Reset()
	rep := &Report{Results: results}
	if err := rep.WriteJSON(&buf); err != nil {
		t.Fatal(err)
	}
	var decoded struct{ Results []map[string]any }
	if err := json.Unmarshal(buf.Bytes(), &decoded); err != nil || len(decoded.Results) != 2 {
		t.Errorf("JSON report does not decode to two results (%v):\n%s", err, buf.String())
	}
}

// TestRunReconnects checks that a server closing connections is survived:
// every answer asks to close, and the generator dials again each time.
func TestRunReconnects(t *testing.T) {
	t.Parallel()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		w.Header().Set("Connection", "close")
	}))
	defer srv.Close()
	r, err := Run(context.Background(), Config{Addr: strings.TrimPrefix(srv.URL, "http://"), Connections: 2, Duration: 50 * time.Millisecond, RunID: "close"})
	if err != nil {
		t.Fatal(err)
	}
	if r.OK < 2 || r.Errors != 0 {
		t.Errorf("ok = %d, errors = %d; want several answers and no errors", r.OK, r.Errors)
	}
}

func TestRunUnreachable(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	if _, err := Run(context.Background(), Config{Addr: addr, Connections: 1, Duration: time.Second, RunID: "x"}); err == nil {
		t.Error("Run against a closed port: got no error, want one")
	}
}

func TestChildEnv(t *testing.T) {
	t.Parallel()
	got := ChildEnv([]string{"PATH=/bin", "HOOKD_DATA=/x", "GOMAXPROCS=8"}, func(name string) bool {
		return strings.HasPrefix(name, "HOOKD_") || name == "GOMAXPROCS"
	}, "GOMAXPROCS=1")
	if want := "PATH=/bin GOMAXPROCS=1"; strings.Join(got, " ") != want {
		t.Errorf("ChildEnv = %q, want %q", strings.Join(got, " "), want)
	}
}

// TestRunSpreadsOverServers drives three servers with seven connections:
// connection i goes to server i%3 (3, 2 and 2 connections), each server
// sees its own Host, and the shares add up to the whole.
func TestRunSpreadsOverServers(t *testing.T) {
	t.Parallel()
	type seen struct {
		n     atomic.Int64
		hosts sync.Map
	}
	var srvs [3]*httptest.Server
	var counts [3]seen
	addrs := make([]string, 3)
	for i := range srvs {
		srvs[i] = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			io.Copy(io.Discard, r.Body)
			counts[i].n.Add(1)
			counts[i].hosts.Store(r.Host, true)
		}))
		defer srvs[i].Close()
		addrs[i] = strings.TrimPrefix(srvs[i].URL, "http://")
	}
	r, err := Run(context.Background(), Config{Addrs: addrs, Connections: 7, Warmup: 20 * time.Millisecond,
		Duration: 100 * time.Millisecond, RunID: "spread", ServerPIDs: []int{os.Getpid(), os.Getpid(), os.Getpid()}})
	if err != nil {
		t.Fatal(err)
	}
	if len(r.Shares) != 3 {
		t.Fatalf("got %d shares, want 3", len(r.Shares))
	}
	var ok int64
	for i, s := range r.Shares {
		if want := []int{3, 2, 2}[i]; s.Addr != addrs[i] || s.Connections != want {
			t.Errorf("share %d: %s with %d connections, want %s with %d", i, s.Addr, s.Connections, addrs[i], want)
		}
		if s.OK == 0 || s.Latency.Count != int(s.OK) {
			t.Errorf("share %d: ok %d, %d latencies; want some, one per answer", i, s.OK, s.Latency.Count)
		}
		ok += s.OK
		if got := counts[i].n.Load(); got < s.OK {
			t.Errorf("server %d saw %d requests, fewer than the %d its share counted", i, got, s.OK)
		}
		counts[i].hosts.Range(func(h, _ any) bool {
			if h != addrs[i] {
				t.Errorf("server %d got a request for host %v", i, h)
			}
			return true
		})
		if _, err := os.Stat("/proc/self/stat"); err == nil && s.CPU < 0 {
			t.Errorf("share %d: CPU unknown", i)
		}
	}
	if ok != r.OK {
		t.Errorf("shares add up to %d answers, the run counted %d", ok, r.OK)
	}
	var total int64
	for i := range counts {
		total += counts[i].n.Load()
	}
	if total != r.Sent {
		t.Errorf("the servers saw %d requests, the generator sent %d", total, r.Sent)
	}

	var buf bytes.Buffer
	if err := WriteShares(&buf, []*Result{r}); err != nil {
		t.Fatal(err)
	}
	if lines := strings.Split(strings.TrimSpace(buf.String()), "\n"); len(lines) != 4 || !strings.Contains(lines[1], addrs[0]) {
		t.Errorf("shares table:\n%s\nwant a header and a row per server", buf.String())
	}
}
