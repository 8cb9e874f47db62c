//go:build linux

package browsertest

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

const (
	// adminToken is the admin token of every server the tests start.
	adminToken = "browsertest-admin-token-0123456789abcdef"
	// shopSecret is the HMAC secret of the source shop.
	shopSecret = "browsertest-shop-secret-0123456789"
	// stepTimeout bounds one step of a test (a start, a wait, a click):
	// generous, for a loaded two-core machine; the steps wait on
	// conditions, so a fast machine does not wait it out.
	stepTimeout = 20 * time.Second
)

var (
	binDir  string // TestMain's temporary directory for the binary
	binOnce sync.Once
	binPath string
	binErr  error
)

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "hookd-browsertest-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "browsertest: create a directory for the hookd binary:", err)
		os.Exit(2)
	}
	binDir = dir
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// hookdBinary builds hookd once per test binary, on first use, so that a
// run whose tests all skip (no browser) builds nothing.
func hookdBinary(t testing.TB) string {
	t.Helper()
	binOnce.Do(func() {
		p := filepath.Join(binDir, "hookd")
		out, err := exec.Command("go", "build", "-o", p, "hookd/cmd/hookd").CombinedOutput()
		if err != nil {
			binErr = fmt.Errorf("go build hookd/cmd/hookd: %v\n%s", err, out)
			return
		}
		binPath = p
	})
	if binErr != nil {
		t.Fatal(binErr)
	}
	return binPath
}

// sink is an http destination's receiver on 127.0.0.1: it answers
// status, which a test changes to make the destination fail or recover.
type sink struct {
	srv    *httptest.Server
	status atomic.Int64
}

func newSink(t *testing.T) *sink {
	s := &sink{}
	s.status.Store(http.StatusOK)
	s.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, io.LimitReader(r.Body, 1<<20))
		w.WriteHeader(int(s.status.Load()))
	}))
	t.Cleanup(s.srv.Close)
	return s
}

func (s *sink) setStatus(code int) { s.status.Store(int64(code)) }

// server is one running hookd child process and its two destinations:
// warehouse (always 200) and ledger (whatever its sink answers; one
// retry 100 ms after a failure, then the failed queue).
type server struct {
	Base      string // http://127.0.0.1:port
	Warehouse *sink
	Ledger    *sink

	stdout, stderr *lockedBuffer
	client         *http.Client
}

// config is the server's configuration; %s are the data directory and the
// two sinks' URLs.
const config = `listen: 127.0.0.1:0
storage: {path: %q}
admin: {tokens: [%q]}
egress: {allow_private: ["127.0.0.0/8"]}
sources:
  - name: shop
    verify: [{type: hmac, signature: "header:X-Shop-Signature", prefix: "sha256=", secrets: [%q]}]
    event: {id: "json:id", type: "json:type"}
destinations:
  - {name: warehouse, type: http, url: %q}
  - name: ledger
    type: http
    url: %q
    retry: {policy: schedule, schedule: ["100ms"]}
subscriptions:
  - {source: shop, destination: warehouse}
  - {source: shop, destination: ledger}
`

var listeningRE = regexp.MustCompile(`(?m)^hookd \S+ listening on (\S+)$`)

// startHookd runs `hookd serve` on a fresh data directory and waits until
// it listens. It is killed at cleanup; its stderr is logged when the test
// failed.
func startHookd(t *testing.T) *server {
	t.Helper()
	bin := hookdBinary(t)
	dir := t.TempDir()
	s := &server{Warehouse: newSink(t), Ledger: newSink(t), stdout: &lockedBuffer{}, stderr: &lockedBuffer{},
		client: &http.Client{Timeout: stepTimeout, Transport: &http.Transport{Proxy: nil}}}
	cfg := filepath.Join(dir, "hookd.yaml")
	yml := fmt.Sprintf(config, filepath.Join(dir, "data"), adminToken, shopSecret, s.Warehouse.srv.URL+"/warehouse", s.Ledger.srv.URL+"/ledger")
	if err := os.WriteFile(cfg, []byte(yml), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "serve", "--config", cfg)
	cmd.Dir = dir
	cmd.Env = cleanEnv()
	cmd.Stdout, cmd.Stderr = s.stdout, s.stderr
	// Should the test binary die (a timeout panic), the child dies too.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start hookd: %v", err)
	}
	done := make(chan struct{})
	go func() { cmd.Wait(); close(done) }()
	t.Cleanup(func() {
		cmd.Process.Kill()
		<-done
		s.client.CloseIdleConnections()
		if t.Failed() {
			t.Logf("hookd stderr (tail):\n%s", tail(s.stderr.String(), 6000))
		}
	})
	deadline := time.Now().Add(stepTimeout)
	for {
		if m := listeningRE.FindStringSubmatch(s.stdout.String()); m != nil {
			host, _, err := net.SplitHostPort(m[1])
			if err != nil || host != "127.0.0.1" {
				t.Fatalf("hookd listens on %q, want 127.0.0.1:port", m[1])
			}
			s.Base = "http://" + m[1]
			return s
		}
		select {
		case <-done:
			t.Fatalf("hookd exited before it listened\nstdout:\n%s\nstderr:\n%s", s.stdout, tail(s.stderr.String(), 6000))
		case <-time.After(10 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("hookd printed no 'listening on' line within %v\nstderr:\n%s", stepTimeout, tail(s.stderr.String(), 6000))
		}
	}
}

// ingest posts a webhook signed with the source's secret to /in/shop and
// returns the stored event's id.
func (s *server) ingest(t *testing.T, body string) string {
	t.Helper()
	mac := hmac.New(sha256.New, []byte(shopSecret))
	mac.Write([]byte(body))
	req, err := http.NewRequest(http.MethodPost, s.Base+"/in/shop", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-Shop-Signature", "sha256="+hex.EncodeToString(mac.Sum(nil)))
	resp, err := s.client.Do(req)
	if err != nil {
		t.Fatalf("ingest: %v", err)
	}
	defer resp.Body.Close()
	var ans struct {
		ID string `json:"id"`
	}
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<16))
	if resp.StatusCode != http.StatusOK || json.Unmarshal(b, &ans) != nil || !strings.HasPrefix(ans.ID, "evt_") {
		t.Fatalf("ingest: %d %s, want 200 with an event id", resp.StatusCode, b)
	}
	return ans.ID
}

// get calls the admin API with the admin token and decodes the answer.
func (s *server) get(t *testing.T, path string, out any) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, s.Base+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+adminToken)
	resp, err := s.client.Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 4<<20))
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %d %s", path, resp.StatusCode, b)
	}
	if err := json.Unmarshal(b, out); err != nil {
		t.Fatalf("GET %s: %v: %s", path, err, b)
	}
}

// deliveryStatus is the status of the event's delivery to destination
// ("" when it has none yet).
func (s *server) deliveryStatus(t *testing.T, eventID, destination string) string {
	t.Helper()
	var ev struct {
		Deliveries []struct {
			Destination string `json:"destination"`
			Status      string `json:"status"`
		} `json:"deliveries"`
	}
	s.get(t, "/api/v1/events/"+eventID, &ev)
	for _, d := range ev.Deliveries {
		if d.Destination == destination {
			return d.Status
		}
	}
	return ""
}

// waitDelivery waits until the event's delivery to destination has the
// status want.
func (s *server) waitDelivery(t *testing.T, eventID, destination, want string) {
	t.Helper()
	deadline := time.Now().Add(stepTimeout)
	for {
		got := s.deliveryStatus(t, eventID, destination)
		if got == want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("the delivery of %s to %s is %q after %v, want %q", eventID, destination, got, stepTimeout, want)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// sessionStatus replays a session cookie value with a plain Go request
// (no browser) to GET /api/v1/session and returns the status code.
func (s *server) sessionStatus(t *testing.T, cookieName, cookieValue string) int {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, s.Base+"/api/v1/session", nil)
	if err != nil {
		t.Fatal(err)
	}
	req.AddCookie(&http.Cookie{Name: cookieName, Value: cookieValue})
	resp, err := s.client.Do(req)
	if err != nil {
		t.Fatalf("GET /api/v1/session: %v", err)
	}
	io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<16))
	resp.Body.Close()
	return resp.StatusCode
}

// cleanEnv is the environment without HOOKD_* settings, so that a
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

func tail(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return "…" + s[len(s)-n:]
}
