//go:build linux

package e2e

import (
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"syscall"
	"testing"
	"time"
)

// TestCrashSafetySIGKILL kills hookd with SIGKILL under concurrent load,
// round after round on the same data directory, then checks the database:
// every request answered 200 is stored exactly once, no request answered
// 4xx is stored, and a request without an answer is stored at most once.
func TestCrashSafetySIGKILL(t *testing.T) {
	if testing.Short() {
		t.Skip("crash test: SIGKILLs a hookd child under load; skipped with -short")
	}
	dir := t.TempDir()
	data := filepath.Join(dir, "data")
	crashRounds(t, dir, loadConfig(data, ""), func() map[string][]storedRow { return loadStored(t, data) })
}

// crashRounds kills hookd (configured by yml) with SIGKILL under load,
// round after round, then checks what read returns of the store.
func crashRounds(t *testing.T, dir, yml string, read func() map[string][]storedRow) {
	const (
		rounds  = 7
		minHits = 5 // SIGKILLs that must catch requests in flight
		workers = 32
	)
	cfg := writeConfig(t, dir, yml)
	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d", seed)
	rng := rand.New(rand.NewPCG(seed, 0))

	var (
		all []record
		hit int // rounds whose kill caught requests in flight
	)
	for round := range rounds {
		p := startHookd(t, dir, "--config", cfg, "--listen", "127.0.0.1:0")
		l := startLoad(p.Base, fmt.Sprintf("c%d", round), workers, seed+uint64(round))
		runFor := time.Duration(300+rng.IntN(501)) * time.Millisecond
		time.Sleep(runFor) // how long the load runs, not a wait for anything
		p.signal(syscall.SIGKILL)
		recs := l.stop()
		if !p.wait(10 * time.Second) {
			t.Fatalf("round %d: hookd still runs 10s after SIGKILL", round)
		}
		var inFlight int
		for _, r := range recs {
			if r.outcome == gotNoAnswer && !r.refused {
				inFlight++
			}
		}
		t.Logf("round %d: load ran %v, %d requests, %d without an answer that were not refused at connect (in flight at the kill)", round, runFor, len(recs), inFlight)
		if inFlight > 0 {
			hit++
		}
		all = append(all, recs...)
	}

	// Restart once more (recovery runs), then stop cleanly and read the
	// database directly.
	p := startHookd(t, dir, "--config", cfg, "--listen", "127.0.0.1:0")
	if code, took := p.terminate(15 * time.Second); code != 0 {
		t.Fatalf("hookd exited with %d after SIGTERM (%v), want 0\nstderr:\n%s", code, took, tail(p.Stderr.String(), 4000))
	}
	// A kill can land in the instant between a batch's answers and the
	// clients' next requests; what matters is that enough kills did not.
	if hit < minHits {
		t.Errorf("only %d of %d kills caught requests in flight, want at least %d", hit, rounds, minHits)
	}
	stored := read()
	s := checkStored(t, all, stored)
	t.Logf("crash totals over %d SIGKILL rounds (%d with requests in flight): %v", rounds, hit, s)
	if s.ok == 0 || s.c4xx == 0 || s.noAnswer-s.refused == 0 {
		t.Errorf("the load did not cover every case: %v", s)
	}
}
