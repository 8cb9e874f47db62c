//go:build linux

package e2e

import (
	"net"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestGracefulShutdownLosesNothing sends SIGTERM under concurrent load:
// every request answered 200 is stored, and hookd exits 0 within its grace
// period.
func TestGracefulShutdownLosesNothing(t *testing.T) {
	if testing.Short() {
		t.Skip("graceful shutdown under load; skipped with -short")
	}
	const (
		workers = 32
		grace   = 10 * time.Second // shutdown_grace in loadConfig
	)
	dir := t.TempDir()
	data := filepath.Join(dir, "data")
	cfg := writeConfig(t, dir, loadConfig(data, ""))
	p := startHookd(t, dir, "--config", cfg, "--listen", "127.0.0.1:0")

	l := startLoad(p.Base, "g", workers, uint64(time.Now().UnixNano()))
	// Poll until the load is well under way: 300 events committed.
	deadline := time.Now().Add(10 * time.Second)
	for {
		var page struct {
			Data []eventJSON `json:"data"`
		}
		adminGet(t, l.client, p.Base, adminToken, "/api/v1/events?source=crash&limit=300&body=false", &page)
		if len(page.Data) >= 300 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("fewer than 300 events committed within 10s of load (%d)", len(page.Data))
		}
		time.Sleep(20 * time.Millisecond)
	}
	sent := time.Now()
	p.signal(syscall.SIGTERM)
	exited := p.wait(grace + 2*time.Second)
	took := time.Since(sent)
	recs := l.stop()
	if !exited {
		t.Fatalf("hookd did not exit within %v of SIGTERM (grace %v)", took, grace)
	}
	if took > grace {
		t.Errorf("hookd exited %v after SIGTERM, want within the grace period %v", took, grace)
	}
	if code := p.cmd.ProcessState.ExitCode(); code != 0 {
		t.Fatalf("hookd exited with %d after SIGTERM, want 0\nstderr:\n%s", code, tail(p.Stderr.String(), 4000))
	}

	var afterSignal int
	for _, r := range recs {
		if r.outcome == gotOK && r.answered.After(sent) {
			afterSignal++
		}
	}
	s := checkStored(t, recs, loadStored(t, data))
	t.Logf("graceful shutdown: exited 0 %v after SIGTERM; %v; %d answered 200 after SIGTERM was sent", took.Round(time.Millisecond), s, afterSignal)
	if s.ok == 0 {
		t.Errorf("no request was answered 200: %v", s)
	}
}

// TestShutdownDoesNotWaitForSilentConnections opens a connection that never
// sends a request (a pool's spare, a balancer's probe) and sends SIGTERM:
// hookd exits 0 at once instead of waiting for it.
func TestShutdownDoesNotWaitForSilentConnections(t *testing.T) {
	dir := t.TempDir()
	cfg := writeConfig(t, dir, strings.Replace(loadConfig(filepath.Join(dir, "data"), ""), "shutdown_grace: 10s", "shutdown_grace: 3s", 1))
	p := startHookd(t, dir, "--config", cfg, "--listen", "127.0.0.1:0")
	c, err := net.Dial("tcp", p.Addr)
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	defer c.Close()
	code, took := p.terminate(5 * time.Second)
	if code != 0 || took > 2*time.Second {
		t.Fatalf("exit %d after %v, want 0 within 2s\nstderr:\n%s", code, took, tail(p.Stderr.String(), 4000))
	}
}
