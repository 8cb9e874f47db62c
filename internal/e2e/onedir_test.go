//go:build linux

package e2e

import (
	"fmt"
	"net/http"
	"path/filepath"
	"testing"
	"time"
)

// TestSecondServeOnADataDirectoryIsRefused runs hookd on a SQLite data
// directory and starts a second hookd serve on it: the second exits
// non-zero at once with one line naming the first's pid, and the first
// keeps serving. Once the first is SIGKILLed, a new one starts on the same
// directory (the kernel released the lock) with every event there.
func TestSecondServeOnADataDirectoryIsRefused(t *testing.T) {
	dir := t.TempDir()
	data := filepath.Join(dir, "data")
	cfg := writeConfig(t, dir, startFailConfig(data, "", startFailSource))
	first := startHookd(t, dir, "--config", cfg)
	c := newClient(1, 10*time.Second)
	defer c.CloseIdleConnections()
	postOK := func(p *proc, m string) {
		t.Helper()
		if a := post(c, p.Base+"/in/s", []byte(fmt.Sprintf(`{"id":%q,"m":%q}`, m, m))); a.Status != http.StatusOK {
			t.Fatalf("POST %s: got %d %s (%v), want 200", m, a.Status, a.Body, a.Err)
		}
	}
	postOK(first, "before")

	start := time.Now()
	line := serveFails(t, nil, "--config", cfg)
	t.Logf("second hookd serve refused after %v", time.Since(start).Round(time.Millisecond))
	wantIn(t, line,
		fmt.Sprintf("hookd: open storage: another hookd serve (pid %d) is using the data directory %s;", first.cmd.Process.Pid, data),
		"one process per SQLite data directory", "PostgreSQL")
	// The same with the data directory given on the command line.
	line = serveFails(t, nil, "--data", data, "--listen", "127.0.0.1:0")
	wantIn(t, line, fmt.Sprintf("another hookd serve (pid %d) is using the data directory %s;", first.cmd.Process.Pid, data))

	// The refused starts changed nothing for the first.
	postOK(first, "during")

	first.kill()
	next := startHookd(t, dir, "--config", cfg)
	postOK(next, "after")
	got := map[string]bool{}
	for _, e := range listEvents(t, c, next.Base, adminToken, "s") {
		if e.ExternalID != nil {
			got[*e.ExternalID] = true
		}
	}
	for _, m := range []string{"before", "during", "after"} {
		if !got[m] {
			t.Errorf("event %s is not stored after the restart (got %v)", m, got)
		}
	}
	if code, _ := next.terminate(15 * time.Second); code != 0 {
		t.Errorf("exit %d after SIGTERM, want 0", code)
	}
}
