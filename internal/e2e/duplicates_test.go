//go:build linux

package e2e

import (
	"encoding/json"
	"fmt"
	"net/http"
	"path/filepath"
	"sync"
	"testing"
	"time"
)

// TestConcurrentDuplicates sends one provider id 100 times at once: one
// event is stored, every answer is 200 with its id, 99 are marked
// duplicates, and each duplicate's request id resolves to the event.
func TestConcurrentDuplicates(t *testing.T) {
	t.Parallel()
	const n = 100
	dir := t.TempDir()
	cfg := writeConfig(t, dir, fmt.Sprintf(`listen: 127.0.0.1:0
storage:
  path: %q
admin:
  tokens: [%q]
log:
  level: warn
sources:
  - name: dup
    event: {id: "json:id"}
`, filepath.Join(dir, "data"), adminToken))
	p := startHookd(t, dir, "--config", cfg, "--listen", "127.0.0.1:0")
	c := newClient(n, 10*time.Second)
	defer c.CloseIdleConnections()

	answers := make([]answer, n)
	var ready, done sync.WaitGroup
	start := make(chan struct{})
	for i := range n {
		ready.Add(1)
		done.Add(1)
		go func() {
			defer done.Done()
			body := fmt.Appendf(nil, `{"id":"dup-1","sender":%d}`, i)
			ready.Done()
			<-start
			answers[i] = post(c, p.Base+"/in/dup", body)
		}()
	}
	ready.Wait()
	close(start)
	done.Wait()

	var (
		eventID   string
		dups      int
		originals []string // request ids of non-duplicate answers
		dupReqs   []string
	)
	for i, a := range answers {
		if a.Err != nil || a.Status != http.StatusOK {
			t.Fatalf("request %d: got %d (%v) %s, want 200", i, a.Status, a.Err, a.Body)
		}
		var ans ingestAnswer
		if err := json.Unmarshal(a.Body, &ans); err != nil {
			t.Fatalf("request %d: answer %q: %v", i, a.Body, err)
		}
		if eventID == "" {
			eventID = ans.ID
		}
		if ans.ID != eventID {
			t.Errorf("request %d: got id %s, want %s (the same id for every request)", i, ans.ID, eventID)
		}
		if got := a.Header.Get("Hookd-Request-Id"); got != ans.RequestID {
			t.Errorf("request %d: header Hookd-Request-Id %q, body request_id %q, want equal", i, got, ans.RequestID)
		}
		switch d := a.Header.Get("Hookd-Duplicate"); d {
		case "true":
			dups++
			dupReqs = append(dupReqs, ans.RequestID)
		case "":
			originals = append(originals, ans.RequestID)
		default:
			t.Errorf("request %d: Hookd-Duplicate %q, want \"true\" or absent", i, d)
		}
	}
	if dups != n-1 || len(originals) != 1 {
		t.Fatalf("got %d answers with Hookd-Duplicate: true and %d without, want %d and 1", dups, len(originals), n-1)
	}

	events := listEvents(t, c, p.Base, adminToken, "dup")
	if len(events) != 1 {
		t.Fatalf("GET /api/v1/events?source=dup: got %d events, want 1", len(events))
	}
	if e := events[0]; e.ID != eventID || e.ExternalID == nil || *e.ExternalID != "dup-1" {
		t.Errorf("stored event: id %s external_id %v, want id %s external_id dup-1", e.ID, e.ExternalID, eventID)
	}

	check := func(rid string, wantDup bool) {
		t.Helper()
		var r requestJSON
		if st := adminGet(t, c, p.Base, adminToken, "/api/v1/requests/"+rid, &r); st != http.StatusOK {
			t.Errorf("GET /api/v1/requests/%s: status %d, want 200", rid, st)
			return
		}
		if r.RequestID != rid || r.EventID != eventID || r.Duplicate != wantDup || r.Event.ID != eventID {
			t.Errorf("GET /api/v1/requests/%s: got request_id %s event_id %s duplicate %v event.id %s, want %s %s %v %s",
				rid, r.RequestID, r.EventID, r.Duplicate, r.Event.ID, rid, eventID, wantDup, eventID)
		}
	}
	check(originals[0], false)
	for _, rid := range dupReqs {
		check(rid, true)
	}
}
