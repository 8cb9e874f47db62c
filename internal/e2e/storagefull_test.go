//go:build linux

package e2e

import (
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// mountTmpfs mounts a tmpfs of size at a new directory and unmounts it at
// cleanup. Without the privilege to mount it skips, unless
// HOOKD_TEST_REQUIRE_SERVICES=1 makes that a failure.
func mountTmpfs(t *testing.T, size string) string {
	t.Helper()
	dir := t.TempDir()
	if err := syscall.Mount("tmpfs", dir, "tmpfs", 0, "size="+size); err != nil {
		msg := fmt.Sprintf("cannot mount a tmpfs at %s (needs root or CAP_SYS_ADMIN): %v", dir, err)
		if os.Getenv("HOOKD_TEST_REQUIRE_SERVICES") == "1" {
			t.Fatal(msg)
		}
		t.Skip(msg + "; set HOOKD_TEST_REQUIRE_SERVICES=1 to fail instead")
	}
	t.Cleanup(func() {
		if err := syscall.Unmount(dir, 0); err != nil {
			t.Errorf("unmount %s: %v", dir, err)
			syscall.Unmount(dir, syscall.MNT_DETACH)
		}
	})
	return dir
}

func freeBytes(t *testing.T, dir string) int64 {
	t.Helper()
	var st syscall.Statfs_t
	if err := syscall.Statfs(dir, &st); err != nil {
		t.Fatal(err)
	}
	return int64(st.Bavail) * st.Bsize
}

// fillDisk writes zeros to path until the file system is full, then gives
// back leave bytes. It returns the ballast's size.
func fillDisk(t *testing.T, path string, leave int64) int64 {
	t.Helper()
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	chunk := make([]byte, 64<<10)
	var size int64
	for {
		n, err := f.Write(chunk)
		size += int64(n)
		if errors.Is(err, syscall.ENOSPC) {
			break
		}
		if err != nil {
			t.Fatalf("write ballast: %v", err)
		}
	}
	size = max(0, size-leave)
	if err := f.Truncate(size); err != nil {
		t.Fatal(err)
	}
	return size
}

// TestStorageFullAnswers503ThenRecovers fills the file system under a
// running hookd: answers turn from 200 to 503 with Retry-After, never
// later than the ack deadline; once space is back, hookd answers 200
// again without a restart, and nothing answered 200 is missing.
func TestStorageFullAnswers503ThenRecovers(t *testing.T) {
	if testing.Short() {
		t.Skip("storage-full test: mounts a tmpfs and fills it; skipped with -short")
	}
	const (
		ackDeadline = 2 * time.Second
		slack       = time.Second
		bodySize    = 64 << 10
	)
	mnt := mountTmpfs(t, "8m")
	data := filepath.Join(mnt, "data")
	dir := t.TempDir()
	cfg := writeConfig(t, dir, fmt.Sprintf(`listen: 127.0.0.1:0
storage:
  path: %q
admin:
  tokens: [%q]
log:
  level: info
server:
  ack_deadline: 2s
  retry_after: 1s
  shutdown_grace: 10s
sources:
  - name: full
    event: {id: "json:id"}
`, data, adminToken))
	p := startHookd(t, dir, "--config", cfg, "--listen", "127.0.0.1:0")
	c := newClient(8, 10*time.Second) // longer than the deadline: a hang shows as a slow answer
	defer c.CloseIdleConnections()

	var (
		mu   sync.Mutex
		recs []record
		seq  int
	)
	// send POSTs one 64 KiB event and checks it got 200 or 503 (with
	// Retry-After) within the ack deadline plus slack.
	send := func(phase string) record {
		mu.Lock()
		seq++
		marker := fmt.Sprintf("f-%s-%d", phase, seq)
		mu.Unlock()
		head := fmt.Sprintf(`{"id":%q,"m":%q,"n":"`, marker, marker)
		body := []byte(head + strings.Repeat("z", bodySize-len(head)-2) + `"}`)
		a := post(c, p.Base+"/in/full", body)
		r := record{marker: marker, source: "full", kind: kindStore}
		r.classify(a)
		switch {
		case a.Status == http.StatusOK:
		case a.Status == http.StatusServiceUnavailable:
			if a.Header.Get("Retry-After") == "" {
				t.Errorf("%s: 503 without Retry-After", marker)
			}
		case a.Status == 0:
			t.Errorf("%s: no answer after %v: %v", marker, a.Elapsed, a.Err)
		default:
			t.Errorf("%s: got %d %s, want 200 or 503", marker, a.Status, a.Body)
		}
		if a.Elapsed > ackDeadline+slack {
			t.Errorf("%s: answered %d after %v, want within the ack deadline %v + %v", marker, a.Status, a.Elapsed, ackDeadline, slack)
		}
		mu.Lock()
		recs = append(recs, r)
		mu.Unlock()
		return r
	}

	for range 3 {
		if r := send("warm"); r.status != http.StatusOK {
			t.Fatalf("before the disk is full: got %d, want 200", r.status)
		}
	}
	ballast := filepath.Join(mnt, "ballast")
	size := fillDisk(t, ballast, 256<<10)
	t.Logf("ballast %d KiB; %d KiB left on the tmpfs", size>>10, freeBytes(t, mnt)>>10)

	// Sequential POSTs until answers turn to 503.
	var ok, unavailable int
	for i := 0; i < 200 && unavailable < 6; i++ {
		switch send("full").status {
		case http.StatusOK:
			ok++
		case http.StatusServiceUnavailable:
			unavailable++
		}
	}
	// A concurrent burst while full: several commits fail in one batch.
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if send("burst").status == http.StatusServiceUnavailable {
				mu.Lock()
				unavailable++
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	t.Logf("with the disk full: %d answered 200, then %d answered 503 (sequential and an 8-request burst)", ok, unavailable)
	if unavailable == 0 {
		t.Fatalf("no 503 after filling the disk (%d answered 200)", ok)
	}
	if t.Failed() {
		t.FailNow()
	}

	// Give the space back: hookd must recover without a restart.
	if err := os.Remove(ballast); err != nil {
		t.Fatal(err)
	}
	freed := time.Now()
	deadline := freed.Add(30 * time.Second)
	var tries int
	for {
		tries++
		if send("recover").status == http.StatusOK {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("still no 200 %v after the disk has space again (%d tries)", time.Since(freed), tries)
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Logf("first 200 %v after the space came back (%d tries)", time.Since(freed).Round(time.Millisecond), tries)
	for range 5 {
		if r := send("after"); r.status != http.StatusOK {
			t.Errorf("after recovery: got %d, want 200", r.status)
		}
	}

	// Every event answered 200 reads back through the admin API.
	var read int
	for _, r := range recs {
		if r.outcome != gotOK {
			continue
		}
		var e eventJSON
		if st := adminGet(t, c, p.Base, adminToken, "/api/v1/events/"+r.eventID, &e); st != http.StatusOK {
			t.Errorf("GET /api/v1/events/%s (%s): status %d, want 200", r.eventID, r.marker, st)
			continue
		}
		if e.Body == nil || !strings.Contains(*e.Body, `"m":"`+r.marker+`"`) {
			t.Errorf("GET /api/v1/events/%s: body does not carry marker %s", r.eventID, r.marker)
		}
		read++
	}
	t.Logf("%d events answered 200 read back through the admin API", read)

	if code, took := p.terminate(15 * time.Second); code != 0 {
		t.Fatalf("hookd exited with %d after SIGTERM (%v), want 0", code, took)
	}
	s := checkStored(t, recs, loadStored(t, data))
	t.Logf("storage full: %v", s)
}
