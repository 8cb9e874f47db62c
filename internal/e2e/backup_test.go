//go:build linux

package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// backupBody is the body of load event i: its id, and padding that makes
// the log worth copying.
func backupBody(i int) string {
	return fmt.Sprintf(`{"id":"b-%d","m":"b-%d","pad":%q}`, i, i, strings.Repeat(fmt.Sprintf("%08d", i), 64))
}

// TestBackupUnderLoad takes a backup through the admin API while clients
// post events without pause, restores it into a new data directory and
// starts hookd on it: every event acknowledged before the backup began is
// there, with the body it was sent with, and nothing else is but events
// that were sent. The restored hookd takes new events and still knows the
// old ids (a duplicate gets the stored event).
func TestBackupUnderLoad(t *testing.T) {
	dir := t.TempDir()
	data := filepath.Join(dir, "data")
	cfg := writeConfig(t, dir, startFailConfig(data, "", startFailSource))
	p := startHookd(t, dir, "--config", cfg)

	const workers = 4
	c := newClient(workers, 10*time.Second)
	defer c.CloseIdleConnections()
	var (
		mu    sync.Mutex
		acked []int // the numbers of the events answered 200, in order
		next  int
		stop  = make(chan struct{})
		wg    sync.WaitGroup
	)
	sent := map[int]bool{}
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				mu.Lock()
				i := next
				next++
				sent[i] = true
				mu.Unlock()
				a := post(c, p.Base+"/in/s", []byte(backupBody(i)))
				if a.Status == http.StatusOK {
					mu.Lock()
					acked = append(acked, i)
					mu.Unlock()
				}
			}
		}()
	}
	defer func() {
		select {
		case <-stop:
		default:
			close(stop)
		}
		wg.Wait()
	}()
	ackedCount := func() int {
		mu.Lock()
		defer mu.Unlock()
		return len(acked)
	}
	waitFor(t, 30*time.Second, "1,000 events acknowledged", func() bool { return ackedCount() >= 1000 })

	// Every event acknowledged so far was acknowledged before the backup
	// began.
	mu.Lock()
	before := append([]int(nil), acked...)
	mu.Unlock()
	bdir := filepath.Join(dir, "backup")
	out, err := hookdCmd(t, dir, "backup", bdir, "--server", p.Base, "--token", adminToken)
	if err != nil {
		t.Fatalf("hookd backup: %v\n%s", err, out)
	}
	t.Logf("hookd backup:\n%s", out)
	// The load went on while the backup ran: the backup was taken under
	// load, not after it.
	during := ackedCount() - len(before)
	close(stop)
	wg.Wait()
	t.Logf("acknowledged: %d before the backup, %d while it ran, %d in all", len(before), during, ackedCount())
	if during == 0 {
		t.Errorf("no event was acknowledged while the backup ran: it was not taken under load")
	}
	p.kill()

	restored := filepath.Join(dir, "restored")
	if out, err := hookdCmd(t, dir, "restore", bdir, "--data", restored); err != nil {
		t.Fatalf("hookd restore: %v\n%s", err, out)
	}
	cfg2 := writeConfig(t, dir, startFailConfig(restored, "", startFailSource))
	q := startHookd(t, dir, "--config", cfg2)
	got := map[string]string{}
	for _, e := range listEvents(t, c, q.Base, adminToken, "s") {
		if e.ExternalID == nil || e.Body == nil {
			t.Fatalf("event %s: no external id or no body", e.ID)
		}
		if _, dup := got[*e.ExternalID]; dup {
			t.Errorf("event %s is stored twice", *e.ExternalID)
		}
		got[*e.ExternalID] = *e.Body
	}
	missing := 0
	for _, i := range before {
		id := fmt.Sprintf("b-%d", i)
		body, ok := got[id]
		switch {
		case !ok:
			missing++
			if missing <= 5 {
				t.Errorf("event %s, acknowledged before the backup began, is not in the restored store", id)
			}
		case body != backupBody(i):
			t.Errorf("event %s: restored body %.80q…, want %.80q…", id, body, backupBody(i))
		}
	}
	if missing > 0 {
		t.Errorf("%d of %d events acknowledged before the backup are missing", missing, len(before))
	}
	for id, body := range got {
		var i int
		if _, err := fmt.Sscanf(id, "b-%d", &i); err != nil || !sent[i] || body != backupBody(i) {
			t.Errorf("the restored store holds %s, which was never sent with that body", id)
		}
	}
	t.Logf("restored store: %d events", len(got))

	// The restored hookd goes on: a new event is stored, and an old id is
	// a duplicate of the stored event.
	if a := post(c, q.Base+"/in/s", []byte(`{"id":"after-restore"}`)); a.Status != http.StatusOK {
		t.Errorf("POST after the restore: got %d %s (%v), want 200", a.Status, a.Body, a.Err)
	}
	first := fmt.Sprintf("b-%d", before[0])
	a := post(c, q.Base+"/in/s", []byte(backupBody(before[0])))
	var ans ingestAnswer
	if a.Status != http.StatusOK || json.Unmarshal(a.Body, &ans) != nil {
		t.Fatalf("POST %s again: got %d %s (%v), want 200", first, a.Status, a.Body, a.Err)
	}
	var req requestJSON
	if st := adminGet(t, c, q.Base, adminToken, "/api/v1/requests/"+ans.RequestID, &req); st != http.StatusOK || !req.Duplicate {
		t.Errorf("POST %s again after the restore: status %d, duplicate %v; want a duplicate of the stored event", first, st, req.Duplicate)
	}
	if code, _ := q.terminate(15 * time.Second); code != 0 {
		t.Errorf("the restored hookd exited %d after SIGTERM, want 0", code)
	}
}

// hookdCmd runs the hookd binary with args in dir and returns its
// combined output.
func hookdCmd(t *testing.T, dir string, args ...string) (string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, hookdBin, args...)
	cmd.Dir = dir
	cmd.Env = cleanEnv()
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	return out.String(), err
}

// waitFor polls cond until it holds, failing the test after limit.
func waitFor(t *testing.T, limit time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", limit, what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}
