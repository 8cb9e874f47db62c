//go:build linux

package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"hookd"
	"hookd/internal/store"
	"hookd/internal/store/sqlite"
)

// hookdBin is the hookd binary TestMain builds once for every test.
var hookdBin string

// adminToken is the admin token the tests' configurations set.
const adminToken = "e2e-admin-token-0123456789abcdef"

func TestMain(m *testing.M) {
	os.Exit(run(m))
}

func run(m *testing.M) int {
	dir, err := os.MkdirTemp("", "hookd-e2e-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e: create a directory for the hookd binary:", err)
		return 2
	}
	defer os.RemoveAll(dir)
	bin := filepath.Join(dir, "hookd")
	build := exec.Command("go", "build", "-o", bin, "hookd/cmd/hookd")
	if out, err := build.CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "e2e: FAIL: go build -o %s hookd/cmd/hookd: %v\n%s\n", bin, err, out)
		return 2
	}
	hookdBin = bin
	return m.Run()
}

// lockedBuffer collects a child's output; safe for concurrent use.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// proc is one running hookd child process.
type proc struct {
	t      testing.TB
	cmd    *exec.Cmd
	Addr   string // host:port, always 127.0.0.1
	Base   string // http://Addr
	Stdout *lockedBuffer
	Stderr *lockedBuffer

	done    chan struct{} // closed once the process has exited
	waitErr error         // cmd.Wait's error, set before done is closed
}

var listeningRE = regexp.MustCompile(`(?m)^hookd \S+ listening on (\S+)$`)

// startHookd runs `hookd serve args...` in dir (the working directory;
// "" for the test's own) and waits until it prints that it listens. The
// child is SIGKILLed at cleanup if it still runs, and its stderr is logged
// when the test failed.
func startHookd(t testing.TB, dir string, args ...string) *proc {
	t.Helper()
	return startHookdWith(t, dir, spawnOpts{}, args...)
}

// spawnOpts are the options of startHookdWith.
type spawnOpts struct {
	// env holds NAME=value pairs added to the child's clean environment.
	env []string
	// quiet keeps the child's stderr out of the log of a failed test: the
	// caller reports it (a cluster restarts its replicas many times).
	quiet bool
}

// startHookdWith is startHookd with options.
func startHookdWith(t testing.TB, dir string, o spawnOpts, args ...string) *proc {
	t.Helper()
	cmd := exec.Command(hookdBin, append([]string{"serve"}, args...)...)
	cmd.Dir = dir
	cmd.Env = append(cleanEnv(), o.env...)
	// Should the test binary die (a timeout panic), the child dies too.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	p := &proc{t: t, cmd: cmd, Stdout: &lockedBuffer{}, Stderr: &lockedBuffer{}, done: make(chan struct{})}
	cmd.Stdout, cmd.Stderr = p.Stdout, p.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatalf("start hookd: %v", err)
	}
	go func() {
		p.waitErr = cmd.Wait()
		close(p.done)
	}()
	t.Cleanup(func() {
		p.kill()
		if t.Failed() && !o.quiet {
			t.Logf("hookd (pid %d) stderr:\n%s", cmd.Process.Pid, tail(p.Stderr.String(), 8000))
		}
	})
	deadline := time.Now().Add(20 * time.Second)
	for {
		if m := listeningRE.FindStringSubmatch(p.Stdout.String()); m != nil {
			p.Addr = m[1]
			break
		}
		select {
		case <-p.done:
			t.Fatalf("hookd exited before it was ready (%v)\nstdout:\n%s\nstderr:\n%s", p.waitErr, p.Stdout.String(), tail(p.Stderr.String(), 8000))
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("hookd printed no 'listening on' line within 20s\nstdout:\n%s\nstderr:\n%s", p.Stdout.String(), tail(p.Stderr.String(), 8000))
		}
		time.Sleep(10 * time.Millisecond)
	}
	host, _, err := net.SplitHostPort(p.Addr)
	if err != nil || host != "127.0.0.1" {
		t.Fatalf("hookd listens on %q, want 127.0.0.1:port", p.Addr)
	}
	p.Base = "http://" + p.Addr
	return p
}

// cleanEnv is the test's environment without HOOKD_* overrides, so that a
// developer's settings cannot change what the child does.
func cleanEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "HOOKD_") {
			env = append(env, kv)
		}
	}
	return env
}

// signal sends sig unless the process has exited.
func (p *proc) signal(sig syscall.Signal) {
	select {
	case <-p.done:
		return
	default:
	}
	if err := p.cmd.Process.Signal(sig); err != nil && !errors.Is(err, os.ErrProcessDone) {
		p.t.Errorf("send %v to hookd: %v", sig, err)
	}
}

// wait waits up to d for the process to exit and reports whether it did.
func (p *proc) wait(d time.Duration) bool {
	select {
	case <-p.done:
		return true
	case <-time.After(d):
		return false
	}
}

// kill SIGKILLs the process and waits until it is gone.
func (p *proc) kill() {
	p.signal(syscall.SIGKILL)
	if !p.wait(10 * time.Second) {
		p.t.Errorf("hookd (pid %d) still runs 10s after SIGKILL", p.cmd.Process.Pid)
	}
}

// terminate sends SIGTERM and waits up to limit for the exit. It returns
// the exit code and how long the exit took; on timeout it fails the test
// and kills the process.
func (p *proc) terminate(limit time.Duration) (code int, took time.Duration) {
	p.t.Helper()
	start := time.Now()
	p.signal(syscall.SIGTERM)
	if !p.wait(limit) {
		p.t.Errorf("hookd did not exit within %v of SIGTERM; killing it", limit)
		p.kill()
	}
	took = time.Since(start)
	select {
	case <-p.done:
		return p.cmd.ProcessState.ExitCode(), took
	default:
		return -1, took
	}
}

func tail(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return "…" + s[len(s)-n:]
}

// writeConfig writes a configuration file into dir and returns its path.
func writeConfig(t testing.TB, dir, yaml string) string {
	t.Helper()
	path := filepath.Join(dir, "hookd.yaml")
	if err := os.WriteFile(path, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// newClient returns an HTTP client that keeps connections alive, never
// uses a proxy, and gives every request at most timeout.
func newClient(conns int, timeout time.Duration) *http.Client {
	return &http.Client{
		Timeout: timeout,
		Transport: &http.Transport{
			Proxy:               nil,
			DialContext:         (&net.Dialer{Timeout: 2 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
			MaxIdleConns:        2 * conns,
			MaxIdleConnsPerHost: 2 * conns,
			IdleConnTimeout:     30 * time.Second,
			DisableCompression:  true,
		},
	}
}

// answer is what one request got.
type answer struct {
	Status  int // 0 when there was no answer
	Header  http.Header
	Body    []byte
	Err     error // transport error (no answer), or an error reading the body
	Elapsed time.Duration
}

// post sends body as JSON to rawURL, which must be on 127.0.0.1.
func post(c *http.Client, rawURL string, body []byte) answer {
	start := time.Now()
	if err := checkLoopback(rawURL); err != nil {
		return answer{Err: err}
	}
	req, err := http.NewRequestWithContext(context.Background(), http.MethodPost, rawURL, bytes.NewReader(body))
	if err != nil {
		return answer{Err: err}
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := c.Do(req)
	if err != nil {
		return answer{Err: err, Elapsed: time.Since(start)}
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return answer{Status: resp.StatusCode, Header: resp.Header, Body: b, Err: err, Elapsed: time.Since(start)}
}

func checkLoopback(rawURL string) error {
	u, err := url.Parse(rawURL)
	if err != nil {
		return err
	}
	if u.Hostname() != "127.0.0.1" {
		return fmt.Errorf("refusing to send a request to %s: the tests talk to 127.0.0.1 only", u.Host)
	}
	return nil
}

// ingestAnswer is the JSON of a 200 answer.
type ingestAnswer struct {
	ID        string `json:"id"`
	RequestID string `json:"request_id"`
}

// eventJSON is the part of the admin API's event the tests read.
type eventJSON struct {
	ID         string  `json:"id"`
	Source     string  `json:"source"`
	ExternalID *string `json:"external_id"`
	RequestID  string  `json:"request_id"`
	Body       *string `json:"body"`
}

type requestJSON struct {
	RequestID string    `json:"request_id"`
	EventID   string    `json:"event_id"`
	Duplicate bool      `json:"duplicate"`
	Event     eventJSON `json:"event"`
}

// adminGet GETs path from the admin API with token and decodes a 200
// answer into v. It returns the status.
func adminGet(t testing.TB, c *http.Client, base, token, path string, v any) int {
	t.Helper()
	if err := checkLoopback(base + path); err != nil {
		t.Fatal(err)
	}
	req, err := http.NewRequest(http.MethodGet, base+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("GET %s: read body: %v", path, err)
	}
	if resp.StatusCode == http.StatusOK && v != nil {
		if err := json.Unmarshal(b, v); err != nil {
			t.Fatalf("GET %s: decode %s: %v", path, b, err)
		}
	} else if resp.StatusCode != http.StatusOK {
		t.Logf("GET %s: %d %s", path, resp.StatusCode, bytes.TrimSpace(b))
	}
	return resp.StatusCode
}

// listEvents lists every event of source through the admin API, oldest
// first, following next_cursor.
func listEvents(t testing.TB, c *http.Client, base, token, source string) []eventJSON {
	t.Helper()
	var all []eventJSON
	cursor := ""
	for {
		q := url.Values{"source": {source}, "order": {"asc"}, "limit": {"1000"}}
		if cursor != "" {
			q.Set("cursor", cursor)
		}
		var page struct {
			Data       []eventJSON `json:"data"`
			NextCursor *string     `json:"next_cursor"`
		}
		if st := adminGet(t, c, base, token, "/api/v1/events?"+q.Encode(), &page); st != http.StatusOK {
			t.Fatalf("GET /api/v1/events?%s: status %d, want 200", q.Encode(), st)
		}
		all = append(all, page.Data...)
		if page.NextCursor == nil || *page.NextCursor == "" {
			return all
		}
		cursor = *page.NextCursor
	}
}

// storedRow is one row of the events table.
type storedRow struct {
	ID, Source string
}

// loadStored opens the store in dataDir the way hookd does at start
// (hookd must be stopped) and indexes every event by the "m" marker field
// of its JSON body. Bodies without a marker are returned under "". Events
// of the source hookd (hookd's alerts) are left out.
func loadStored(t testing.TB, dataDir string) map[string][]storedRow {
	t.Helper()
	if _, err := os.Stat(filepath.Join(dataDir, sqlite.FileName)); err != nil {
		t.Fatalf("database: %v", err)
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	st, err := sqlite.Open(context.Background(), dataDir, log, sqlite.Options{})
	if err != nil {
		t.Fatalf("open the store in %s: %v", dataDir, err)
	}
	defer st.Close()
	out := map[string][]storedRow{}
	p := &store.EventListParams{Order: store.OrderAsc, Limit: store.MaxListLimit, WithBody: true}
	for {
		page, next, err := st.EventList(context.Background(), p)
		if err != nil {
			t.Fatalf("read events from %s: %v", dataDir, err)
		}
		for _, e := range page {
			if e.Source == hookd.AlertSource {
				continue // hookd's own operational events, not the load's (docs/ALERTS.md)
			}
			var m struct {
				M string `json:"m"`
			}
			json.Unmarshal(e.Body, &m)
			out[m.M] = append(out[m.M], storedRow{ID: e.ID, Source: e.Source})
		}
		if next == "" {
			return out
		}
		p.After = next
	}
}
