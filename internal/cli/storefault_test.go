package cli

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"hookd/internal/config"
	"hookd/internal/fsutil"
)

const faultToken = "fault-admin-token"

// faultySync is an fdatasync whose failures and delay a test turns on
// and off.
type faultySync struct {
	fail  atomic.Bool
	delay atomic.Int64 // nanoseconds
	calls atomic.Int64
}

func (f *faultySync) sync(file *os.File) error {
	f.calls.Add(1)
	if d := f.delay.Load(); d > 0 {
		time.Sleep(time.Duration(d))
	}
	if f.fail.Load() {
		return &os.PathError{Op: "fdatasync", Path: file.Name(), Err: syscall.EIO}
	}
	return fsutil.Fdatasync(file)
}

// faultConfig is a configuration with source f (provider id "json:id"),
// the ack deadline given and an admin token, storing in dir.
func faultConfig(t *testing.T, dir, ackDeadline string) *config.Config {
	t.Helper()
	cfg, err := config.Parse([]byte(fmt.Sprintf(`admin: {tokens: [%s]}
server: {ack_deadline: %s, retry_after: 1s}
sources: [{name: f, event: {id: "json:id"}}]
`, faultToken, ackDeadline)))
	if err != nil {
		t.Fatal(err)
	}
	cfg.Storage.Path = dir
	return cfg
}

// faultPost sends event id to source f and returns the status (0 when
// there was no answer).
func faultPost(t *testing.T, c *http.Client, base, id string) int {
	t.Helper()
	resp, err := c.Post(base+"/in/f", "application/json", strings.NewReader(fmt.Sprintf(`{"id":%q}`, id)))
	if err != nil {
		t.Errorf("POST %s: %v", id, err)
		return 0
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode == http.StatusServiceUnavailable && resp.Header.Get("Retry-After") == "" {
		t.Errorf("POST %s: 503 without Retry-After", id)
	}
	return resp.StatusCode
}

func faultReady(t *testing.T, c *http.Client, base string) int {
	t.Helper()
	resp, err := c.Get(base + "/readyz")
	if err != nil {
		t.Fatalf("GET /readyz: %v", err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode
}

// faultStored returns the provider ids of every event of source f.
func faultStored(t *testing.T, c *http.Client, base string) map[string]bool {
	t.Helper()
	out := map[string]bool{}
	after := ""
	for {
		req, _ := http.NewRequest("GET", base+"/api/v1/events?source=f&body=false&limit=500&after="+url.QueryEscape(after), nil)
		req.Header.Set("Authorization", "Bearer "+faultToken)
		resp, err := c.Do(req)
		if err != nil {
			t.Fatalf("list events: %v", err)
		}
		var page struct {
			Data []struct {
				ExternalID *string `json:"external_id"`
			} `json:"data"`
			NextCursor *string `json:"next_cursor"`
		}
		err = json.NewDecoder(resp.Body).Decode(&page)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK || err != nil {
			t.Fatalf("list events: status %d, %v", resp.StatusCode, err)
		}
		for _, e := range page.Data {
			if e.ExternalID != nil {
				out[*e.ExternalID] = true
			}
		}
		if page.NextCursor == nil {
			return out
		}
		after = *page.NextCursor
	}
}

// answers records which ids were answered 200 and which 503.
type answers struct {
	mu      sync.Mutex
	ok      map[string]bool
	refused map[string]bool
}

func newAnswers() *answers {
	return &answers{ok: map[string]bool{}, refused: map[string]bool{}}
}

func (a *answers) add(id string, status int) {
	a.mu.Lock()
	defer a.mu.Unlock()
	switch status {
	case http.StatusOK:
		a.ok[id] = true
		delete(a.refused, id)
	case http.StatusServiceUnavailable:
		if !a.ok[id] {
			a.refused[id] = true
		}
	}
}

// check fails the test for an event answered 200 and not stored, or
// answered 503 (and never 200) and stored.
func (a *answers) check(t *testing.T, stored map[string]bool) {
	t.Helper()
	for id := range a.ok {
		if !stored[id] {
			t.Errorf("event %s was answered 200 but is not stored", id)
		}
	}
	for id := range a.refused {
		if stored[id] {
			t.Errorf("event %s was answered 503 but is stored", id)
		}
	}
	t.Logf("%d events answered 200, all stored; %d answered 503, none stored", len(a.ok), len(a.refused))
}

// After an fdatasync fails, hookd stops acknowledging and is not ready;
// once the disk answers again, it recovers by itself, without a restart:
// ready and 200 again. Everything acknowledged before is kept, and no
// event answered 503 is stored, not even one whose bytes were written
// before the failing sync (a re-send of one is a new event, not a
// duplicate of a dropped one).
func TestSyncFailureRecoversWithoutRestart(t *testing.T) {
	fs := &faultySync{}
	cfg := faultConfig(t, t.TempDir(), "2s")
	_, base := startAppWith(t, cfg, func(a *App) { a.syncFile = fs.sync })
	c := &http.Client{Timeout: 30 * time.Second}
	ans := newAnswers()
	send := func(id string) int {
		st := faultPost(t, c, base, id)
		ans.add(id, st)
		return st
	}
	for i := range 5 {
		if st := send(fmt.Sprintf("before-%d", i)); st != http.StatusOK {
			t.Fatalf("before the fault: got %d, want 200", st)
		}
	}

	fs.fail.Store(true)
	for i := range 5 {
		if st := send(fmt.Sprintf("failing-%d", i)); st != http.StatusServiceUnavailable {
			t.Errorf("POST while fdatasync fails: got %d, want 503", st)
		}
	}
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if st := send(fmt.Sprintf("burst-%d", i)); st != http.StatusServiceUnavailable {
				t.Errorf("POST while fdatasync fails (burst): got %d, want 503", st)
			}
		}()
	}
	wg.Wait()
	if st := faultReady(t, c, base); st != http.StatusServiceUnavailable {
		t.Errorf("GET /readyz while fdatasync fails: got %d, want 503", st)
	}

	fs.fail.Store(false)
	cleared := time.Now()
	for faultReady(t, c, base) != http.StatusOK {
		if time.Since(cleared) > 30*time.Second {
			t.Fatalf("GET /readyz: still not ready %v after fdatasync works again", time.Since(cleared))
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Logf("ready again %v after fdatasync works again, without a restart", time.Since(cleared).Round(time.Millisecond))
	for i := range 5 {
		if st := send(fmt.Sprintf("after-%d", i)); st != http.StatusOK {
			t.Errorf("POST after recovery: got %d, want 200", st)
		}
	}
	// The provider retries what was answered 503: each is a new event.
	for _, id := range []string{"failing-0", "burst-3"} {
		if st := send(id); st != http.StatusOK {
			t.Errorf("re-sent %s after recovery: got %d, want 200", id, st)
		}
	}
	ans.check(t, faultStored(t, c, base))
}

// With an fdatasync slower than the ack deadline, every answer is true:
// a request whose event is in a batch being written waits for the
// batch's outcome, so that an event answered 503 is never stored, and
// one answered 200 always is.
func TestSlowSyncAnswersAreTrue(t *testing.T) {
	fs := &faultySync{}
	cfg := faultConfig(t, t.TempDir(), "300ms")
	_, base := startAppWith(t, cfg, func(a *App) { a.syncFile = fs.sync })
	c := &http.Client{Timeout: 30 * time.Second}
	ans := newAnswers()
	if st := faultPost(t, c, base, "warm"); st != http.StatusOK {
		t.Fatalf("before the slow disk: got %d, want 200", st)
	}
	ans.add("warm", http.StatusOK)

	fs.delay.Store(int64(1200 * time.Millisecond))
	var (
		wg   sync.WaitGroup
		slow atomic.Int64
	)
	for round := range 3 {
		for i := range 16 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				id := fmt.Sprintf("slow-%d-%d", round, i)
				start := time.Now()
				st := faultPost(t, c, base, id)
				if time.Since(start) > 300*time.Millisecond {
					slow.Add(1)
				}
				ans.add(id, st)
			}()
		}
		wg.Wait()
	}
	fs.delay.Store(0)
	t.Logf("%d of 48 answers came after the ack deadline", slow.Load())
	ans.check(t, faultStored(t, c, base))
}
