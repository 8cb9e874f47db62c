//go:build linux

package e2e

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// TestKeyOrderingSurvivesSIGKILL: a destination with ordering: key gets,
// per key, the events in the order they were acknowledged, across SIGKILLs
// and restarts of hookd while it delivers to a sink that fails now and
// then. Re-sends after a crash may repeat an event; the first arrival of
// each is in order, and every acknowledged event arrives.
func TestKeyOrderingSurvivesSIGKILL(t *testing.T) {
	if testing.Short() {
		t.Skip("crash test: SIGKILLs a hookd child; skipped with -short")
	}
	const keys = 8
	var (
		mu    sync.Mutex
		first = map[string][]int{} // key → n of first arrivals, in order
		seen  = map[string]bool{}  // webhook-id already delivered
		calls atomic.Int64
	)
	sink := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		time.Sleep(time.Millisecond)
		if calls.Add(1)%7 == 0 {
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		var e struct {
			K string `json:"k"`
			N int    `json:"n"`
		}
		json.Unmarshal(b, &e)
		mu.Lock()
		if id := r.Header.Get("webhook-id"); !seen[id] {
			seen[id] = true
			first[e.K] = append(first[e.K], e.N)
		}
		mu.Unlock()
	}))
	defer sink.Close()
	dir := t.TempDir()
	cfg := writeConfig(t, dir, fmt.Sprintf(`listen: 127.0.0.1:0
storage: {path: %q}
admin: {tokens: [%q]}
log: {level: warn}
egress: {allow_private: ["127.0.0.0/8"]}
sources:
  - {name: orders, event: {id: "json:id", key: "json:k"}}
destinations:
  - name: ordered
    type: http
    url: %s
    ordering: key
    concurrency: 8
    retry: {policy: exponential, base: 20ms, cap: 200ms, jitter: 0}
subscriptions:
  - {source: orders, destination: ordered}
`, filepath.Join(dir, "data"), adminToken, sink.URL))

	next := make([]int, keys) // per key, the next n to publish
	acked := map[string]int{} // key → how many were acknowledged (0..next-1 in order)
	client := newClient(keys, 3*time.Second)
	publish := func(base string, d time.Duration) {
		var wg sync.WaitGroup
		var amu sync.Mutex
		stop := time.Now().Add(d)
		for k := range keys {
			wg.Add(1)
			go func() {
				defer wg.Done()
				key := fmt.Sprintf("k%d", k)
				for time.Now().Before(stop) {
					n := next[k]
					body := fmt.Appendf(nil, `{"id":"%s-%d","k":%q,"n":%d}`, key, n, key, n)
					a := post(client, base+"/in/orders", body)
					if a.Status != http.StatusOK {
						return // the process is gone (or going): publish n again later
					}
					next[k]++
					amu.Lock()
					acked[key] = next[k]
					amu.Unlock()
				}
			}()
		}
		wg.Wait()
	}
	for round := range 4 {
		p := startHookd(t, dir, "--config", cfg, "--listen", "127.0.0.1:0")
		go func() {
			time.Sleep(time.Duration(200+100*round) * time.Millisecond)
			p.signal(syscall.SIGKILL)
		}()
		publish(p.Base, 2*time.Second)
		p.wait(10 * time.Second)
	}
	p := startHookd(t, dir, "--config", cfg, "--listen", "127.0.0.1:0")
	publish(p.Base, 200*time.Millisecond)
	deadline := time.Now().Add(60 * time.Second)
	for {
		mu.Lock()
		done := true
		for k := range keys {
			key := fmt.Sprintf("k%d", k)
			if len(first[key]) < acked[key] {
				done = false
			}
		}
		mu.Unlock()
		if done {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("not every acknowledged event arrived within 60 s")
		}
		time.Sleep(50 * time.Millisecond)
	}
	p.terminate(15 * time.Second)
	mu.Lock()
	defer mu.Unlock()
	total := 0
	for k := range keys {
		key := fmt.Sprintf("k%d", k)
		for i, n := range first[key] {
			if n != i {
				t.Fatalf("key %s: arrival %d is n=%d, want %d (first arrivals: %v)", key, i, n, i, first[key])
			}
		}
		total += len(first[key])
	}
	t.Logf("%d keys, %d events acknowledged and delivered in order per key across 4 SIGKILLs; %d requests at the sink", keys, total, calls.Load())
}
