//go:build linux

package e2e

import (
	"bytes"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

var (
	curlPostRE   = regexp.MustCompile(`curl -sS -X POST (\S+)((?: -H '[^']*')*) -d '([^']*)'`)
	curlHeaderRE = regexp.MustCompile(`-H '([^':]+):\s*([^']*)'`)
	tokenRE      = regexp.MustCompile(`(?m)^\s*admin token: (\S+) \(generated`)
	curlListRE   = regexp.MustCompile(`(?m)^\s*curl -sS -H ['"]Authorization: Bearer \S+['"] (\S+/api/v1/events)$`)
)

// demoBanner waits until the child has printed its whole banner (the last
// line is the admin API curl line) and returns it.
func demoBanner(t *testing.T, p *proc) string {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		out := p.Stdout.String()
		if curlListRE.MatchString(out) {
			return out
		}
		if time.Now().After(deadline) {
			t.Fatalf("no complete banner within 10s; stdout:\n%s", out)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestFreshStartDemo runs hookd with no configuration, as a new user
// would, follows the printed curl line, finds the event with the printed
// admin token, and finds both again after a restart, whose banner does
// not show the token again (it is shown once, when it is made).
func TestFreshStartDemo(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	p := startHookd(t, dir, "--listen", "127.0.0.1:0")
	banner := demoBanner(t, p)

	m := curlPostRE.FindStringSubmatch(banner)
	if m == nil {
		t.Fatalf("no curl POST line in the banner:\n%s", banner)
	}
	target, body := m[1], m[3]
	if want := p.Base + "/in/demo"; target != want {
		t.Errorf("curl line posts to %s, want %s", target, want)
	}
	req, err := http.NewRequest(http.MethodPost, target, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	for _, h := range curlHeaderRE.FindAllStringSubmatch(m[2], -1) {
		req.Header.Set(h[1], h[2])
	}
	if err := checkLoopback(target); err != nil {
		t.Fatal(err)
	}
	c := newClient(2, 10*time.Second)
	defer c.CloseIdleConnections()
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var ans ingestAnswer
	err = json.NewDecoder(resp.Body).Decode(&ans)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || err != nil {
		t.Fatalf("the banner's curl request: got %d (decode: %v), want 200 with JSON", resp.StatusCode, err)
	}
	if !strings.HasPrefix(ans.ID, "evt_") {
		t.Fatalf("answer id %q, want one starting evt_", ans.ID)
	}

	tm := tokenRE.FindStringSubmatch(banner)
	if tm == nil {
		t.Fatalf("no generated admin token in the banner:\n%s", banner)
	}
	token := tm[1]
	if _, err := os.Stat(filepath.Join(dir, "hookd-data", "hookd.db")); err != nil {
		t.Errorf("the default data directory: %v", err)
	}
	hasEvent := func(p *proc) {
		t.Helper()
		for _, e := range listEvents(t, c, p.Base, token, "demo") {
			if e.ID == ans.ID {
				if e.Body == nil || !bytes.Equal([]byte(*e.Body), []byte(body)) {
					t.Errorf("event %s has body %v, want %s", e.ID, e.Body, body)
				}
				return
			}
		}
		t.Errorf("event %s is not listed by GET /api/v1/events?source=demo", ans.ID)
	}
	hasEvent(p)

	if code, took := p.terminate(15 * time.Second); code != 0 {
		t.Fatalf("hookd exited with %d after SIGTERM (%v), want 0", code, took)
	}
	p2 := startHookd(t, dir, "--listen", "127.0.0.1:0")
	banner2 := demoBanner(t, p2)
	if strings.Contains(banner2, token) || !strings.Contains(banner2, "hookd admin-token reset") {
		t.Errorf("after a restart the banner shows the admin token again, or not how to make a new one:\n%s", banner2)
	}
	hasEvent(p2)
}
