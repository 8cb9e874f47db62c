//go:build linux

package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"strings"
	"sync"
	"testing"
	"time"
)

// TestClusterSIGKILLChaos: three replicas share a load, round robin, and
// deliver to a sink that flaps, while one replica after the other
// (chosen at random) is SIGKILLed every few seconds and restarted, for at
// least a minute. Then: every request answered 200 is stored exactly once
// (none answered 4xx is stored, none without an answer twice); every
// stored event reaches the sink; two attempts of one delivery id are never
// open at once. Duplicate deliveries are counted and logged.
//
// It is long: it runs with HOOKD_TEST_LONG=1, for 60 s or
// HOOKD_CLUSTER_CHAOS_DURATION. TestClusterSIGKILLChaosShort runs by
// default.
func TestClusterSIGKILLChaos(t *testing.T) {
	if testing.Short() {
		t.Skip("cluster chaos: SIGKILLs hookd replicas under load; skipped with -short")
	}
	if os.Getenv("HOOKD_TEST_LONG") != "1" {
		t.Skip("a run of 60 s or more: set HOOKD_TEST_LONG=1 (and HOOKD_CLUSTER_CHAOS_DURATION to change its length); TestClusterSIGKILLChaosShort runs by default")
	}
	d := 60 * time.Second
	if v := os.Getenv("HOOKD_CLUSTER_CHAOS_DURATION"); v != "" {
		var err error
		if d, err = time.ParseDuration(v); err != nil || d <= 0 {
			t.Fatalf("HOOKD_CLUSTER_CHAOS_DURATION=%q: want a positive duration such as 90s or 5m", v)
		}
	}
	clusterChaos(t, d, int(d/(3500*time.Millisecond)))
}

// TestClusterSIGKILLChaosShort is TestClusterSIGKILLChaos for 20 s with
// two kills.
func TestClusterSIGKILLChaosShort(t *testing.T) {
	if testing.Short() {
		t.Skip("cluster chaos: SIGKILLs hookd replicas under load; skipped with -short")
	}
	clusterChaos(t, 20*time.Second, 2)
}

// clusterChaos runs the load on three replicas for d while it SIGKILLs
// and restarts kills of them, then checks what was stored and delivered.
func clusterChaos(t *testing.T, d time.Duration, kills int) {
	const (
		replicas = 3
		workers  = 12
	)
	kills = max(kills, 1)
	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d, %v, %d kills", seed, d, kills)
	rng := rand.New(rand.NewPCG(seed, 1))

	s := newSink(t)
	s.flap(0.2)
	c := newCluster(t, replicas, clusterConfig(t, clusterLoadSources(s)))
	c.startAll()

	// Besides one request in five, the sink fails everything for 700 ms
	// every 7 s: retries pile up, and some are due at a kill.
	outage := make(chan struct{})
	var outages sync.WaitGroup
	outages.Add(1)
	go func() {
		defer outages.Done()
		for {
			select {
			case <-outage:
				s.setDown(false)
				return
			case <-time.After(7 * time.Second):
			}
			s.setDown(true)
			select {
			case <-outage:
				s.setDown(false)
				return
			case <-time.After(700 * time.Millisecond):
			}
			s.setDown(false)
		}
	}()

	l := startClusterLoad(c, []int{0, 1, 2}, "x", workers, seed)
	start := time.Now()
	every := d / time.Duration(kills+1)
	hits := 0
	for k := range kills {
		// The k-th kill falls in the k-th interval, ±25 % of it.
		at := start.Add(every*time.Duration(k+1) + time.Duration(rng.Int64N(int64(every/2))) - every/4)
		time.Sleep(time.Until(at)) // when to kill, not a wait for anything
		i := rng.IntN(replicas)
		name := c.r[i].name
		// Kill while the replica has an attempt open at the sink, so that
		// the kill leaves work to take over (wait briefly for one).
		open := s.openBy("sink", name)
		for wait := time.Now().Add(2 * time.Second); len(open) == 0 && time.Now().Before(wait); open = s.openBy("sink", name) {
			time.Sleep(time.Millisecond)
		}
		t.Logf("%6.1fs: SIGKILL replica %s with %d attempts open at the sink, and restart it", time.Since(start).Seconds(), name, len(open))
		c.restart(i)
		if len(open) > 0 {
			hits++
		}
	}
	time.Sleep(time.Until(start.Add(d))) // the rest of the run
	recs := l.stop()
	close(outage)
	outages.Wait()
	loadEnd := time.Now()

	stored := c.readEvents()
	tl := checkStored(t, recs, stored)
	t.Logf("load over %v: %v", loadEnd.Sub(start).Round(time.Millisecond), tl)
	if tl.ok == 0 || tl.c4xx == 0 {
		t.Errorf("the load did not cover every case: %v", tl)
	}
	if want := (kills + 1) / 2; hits < want {
		t.Errorf("only %d of %d kills caught the replica with attempts open at the sink, want at least %d", hits, kills, want)
	}

	total := len(c.eventIDs())
	missing, took := c.drain(s, "sink", 3*time.Minute, 30*time.Second)
	st := s.stats()
	t.Logf("sink: %v", st)
	checkNoOverlap(t, st)
	c.requireDrained("sink", missing, took, total)
	acked := map[string]bool{}
	for _, r := range recs {
		if r.outcome == gotOK {
			acked[r.eventID] = true
		}
	}
	t.Logf("drained in %v: all %d stored events reached the sink (%d of them acknowledged with 200; the others were stored for requests that got no answer)",
		took.Round(time.Millisecond), total, len(acked))
}

// TestClusterSessionCutThenKill: replica a works alone; its database
// sessions are cut (pg_terminate_backend, by its application_name); then
// replica b starts, both take load, and a is SIGKILLed and never comes
// back. Every request answered 200 is stored exactly once, and b delivers
// every stored event, a's unfinished work included.
func TestClusterSessionCutThenKill(t *testing.T) {
	if testing.Short() {
		t.Skip("cluster test: cuts sessions and SIGKILLs a replica under load; skipped with -short")
	}
	const workers = 8
	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d", seed)
	s := newSink(t)
	s.flap(0.2)
	c := newCluster(t, 2, clusterConfig(t, clusterLoadSources(s)))
	c.start(0)

	l1 := startClusterLoad(c, []int{0}, "a", workers, seed)
	// Work flows before the cut.
	for deadline := time.Now().Add(10 * time.Second); len(s.succeeded("sink")) < 50; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("replica a delivered %d events in 10 s, want 50 before the cut", len(s.succeeded("sink")))
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	rows, err := c.db.Query(ctx, `SELECT pg_terminate_backend(pid) FROM pg_stat_activity
		WHERE datname = current_database() AND application_name = 'hookd-a' AND pid <> pg_backend_pid()`)
	if err != nil {
		t.Fatalf("cut replica a's sessions: %v", err)
	}
	cut := 0
	for rows.Next() {
		var ok bool
		if err := rows.Scan(&ok); err != nil {
			t.Fatal(err)
		}
		if ok {
			cut++
		}
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		t.Fatalf("cut replica a's sessions: %v", err)
	}
	if cut == 0 {
		t.Fatal("no session of replica a (application_name hookd-a) to cut: does hookd keep the application_name of its DSN?")
	}
	t.Logf("cut %d sessions of replica a", cut)
	// a must come back by itself: it reconnects.
	waitReady(t, c.r[0].proc(), 15*time.Second)

	c.start(1)
	recs := l1.stop()
	l2 := startClusterLoad(c, []int{0, 1}, "ab", workers, seed+1)
	time.Sleep(3 * time.Second) // both take load for a while
	open := s.openBy("sink", "a")
	for wait := time.Now().Add(3 * time.Second); len(open) == 0 && time.Now().Before(wait); open = s.openBy("sink", "a") {
		time.Sleep(time.Millisecond)
	}
	c.kill(0)
	t.Logf("SIGKILL replica a with %d attempts open at the sink", len(open))
	time.Sleep(2 * time.Second) // b alone takes the load for a while
	recs = append(recs, l2.stop()...)

	tl := checkStored(t, recs, c.readEvents())
	t.Logf("load: %v", tl)
	total := len(c.eventIDs())
	missing, took := c.drain(s, "sink", 90*time.Second, 30*time.Second)
	st := s.stats()
	t.Logf("sink: %v", st)
	checkNoOverlap(t, st)
	c.requireDrained("sink", missing, took, total)
	t.Logf("drained in %v: all %d stored events reached the sink with replica a gone", took.Round(time.Millisecond), total)
}

// TestClusterDedupeAcrossReplicas: 100 concurrent posts of one provider
// id, spread over three replicas, get 100 answers 200 with one event id,
// 99 of them marked duplicates, and one event is stored.
func TestClusterDedupeAcrossReplicas(t *testing.T) {
	if testing.Short() {
		t.Skip("cluster test: starts three hookd replicas; skipped with -short")
	}
	const n = 100
	c := newCluster(t, 3, clusterConfig(t, `sources:
  - name: dup
    event: {id: "json:id"}
`))
	c.startAll()
	client := newClient(n, 10*time.Second)
	defer client.CloseIdleConnections()

	answers := make([]answer, n)
	var ready, done sync.WaitGroup
	start := make(chan struct{})
	for i := range n {
		ready.Add(1)
		done.Add(1)
		base := c.base(i % len(c.r))
		go func() {
			defer done.Done()
			body := fmt.Appendf(nil, `{"id":"dup-1","sender":%d}`, i)
			ready.Done()
			<-start
			answers[i] = post(client, base+"/in/dup", body)
		}()
	}
	ready.Wait()
	close(start)
	done.Wait()

	var (
		ids        = map[string]int{}
		dups, non  int
		bad        []string
		originalAt string
	)
	for i, a := range answers {
		if a.Err != nil || a.Status != http.StatusOK {
			bad = append(bad, fmt.Sprintf("request %d (replica %s): %d %v %s", i, c.r[i%len(c.r)].name, a.Status, a.Err, a.Body))
			continue
		}
		var ans ingestAnswer
		if err := json.Unmarshal(a.Body, &ans); err != nil {
			bad = append(bad, fmt.Sprintf("request %d: answer %q: %v", i, a.Body, err))
			continue
		}
		ids[ans.ID]++
		if a.Header.Get("Hookd-Duplicate") == "true" {
			dups++
		} else {
			non++
			originalAt = c.r[i%len(c.r)].name
		}
	}
	if len(bad) > 0 {
		t.Errorf("%d of %d requests were not answered 200, e.g.:\n  %s", len(bad), n, strings.Join(bad[:min(5, len(bad))], "\n  "))
	}
	if len(ids) != 1 {
		t.Errorf("the 200 answers name %d event ids, want 1: %v", len(ids), ids)
	}
	if dups != n-1-len(bad) || non != 1 {
		t.Errorf("%d answers with Hookd-Duplicate: true and %d without, want %d and 1", dups, non, n-1)
	}
	var stored int
	if err := c.db.QueryRow(context.Background(), `SELECT count(*) FROM events WHERE source = 'dup'`).Scan(&stored); err != nil {
		t.Fatal(err)
	}
	if stored != 1 {
		t.Fatalf("%d events stored for one provider id posted %d times to 3 replicas, want exactly 1", stored, n)
	}
	// Every replica lists that one event.
	for i := range c.r {
		evs := listEvents(t, client, c.base(i), adminToken, "dup")
		if len(evs) != 1 || ids[evs[0].ID] == 0 {
			t.Errorf("replica %s lists %d events of source dup (%v), want the one answered", c.r[i].name, len(evs), evs)
		}
	}
	t.Logf("100 posts over 3 replicas: 1 event stored (created through replica %s), %d answers marked duplicate", originalAt, dups)
}

// TestClusterSIGSTOPFencing: replica a is frozen (SIGSTOP) for twice the
// lease while it has attempts in flight at a sink that holds each request
// for 2 s. Meanwhile replica b must take a's deliveries over and attempt
// them. When a wakes (SIGCONT), its late outcomes must be refused: hookd
// logs a line with "fenced" for each. Every delivery ends succeeded.
func TestClusterSIGSTOPFencing(t *testing.T) {
	if testing.Short() {
		t.Skip("cluster test: freezes a hookd replica; skipped with -short")
	}
	const events = 12
	s := newSink(t)
	s.holdFor("slow", 2*time.Second)
	c := newCluster(t, 2, clusterConfig(t, fmt.Sprintf(`sources:
  - name: slow
    event: {id: "json:id"}
destinations:
  - name: slow
    type: http
    url: %s
    concurrency: 4
    headers: {%s: "${E2E_REPLICA}"}
    retry: {policy: exponential, base: 50ms, cap: 1s, jitter: 0}
subscriptions:
  - {source: slow, destination: slow}
`, s.url("slow"), replicaHeader)))
	c.startAll()
	client := newClient(1, 5*time.Second)
	defer client.CloseIdleConnections()
	for n := range events {
		if a := post(client, c.base(0)+"/in/slow", fmt.Appendf(nil, `{"id":"s-%d","m":"s-%d"}`, n, n)); a.Status != http.StatusOK {
			t.Fatalf("post event %d to replica a: %d %v %s", n, a.Status, a.Err, a.Body)
		}
	}
	var inFlight []string
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(5 * time.Millisecond) {
		if inFlight = s.openBy("slow", "a"); len(inFlight) > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("replica a had no attempt open at the sink within 10 s of receiving %d events; sink: %v", events, s.stats())
		}
	}
	c.stop(0)
	stoppedAt := time.Now()
	t.Logf("SIGSTOP replica a with %d attempts open at the sink: %v", len(inFlight), inFlight)
	// a stays frozen for twice the lease, and longer if the others have
	// not yet begun an attempt of each delivery it had in flight (a busy
	// machine can delay the takeover past its bound, lease + lease/3,
	// plus a claim): up to five times the lease.
	takenOver := func() bool {
		for _, id := range inFlight {
			ok := false
			for _, a := range s.attempts(id) {
				ok = ok || (a.replica != "a" && !a.start.Before(stoppedAt))
			}
			if !ok {
				return false
			}
		}
		return true
	}
	time.Sleep(2 * clusterLease) // the least a stays frozen, not a wait for anything
	for deadline := stoppedAt.Add(5 * clusterLease); !takenOver() && time.Now().Before(deadline); {
		time.Sleep(20 * time.Millisecond)
	}
	c.cont(0)
	contAt := time.Now()

	taken := 0
	var notTaken []string
	for _, id := range inFlight {
		ok := false
		for _, a := range s.attempts(id) {
			if a.replica != "a" && !a.start.Before(stoppedAt) && a.start.Before(contAt) {
				ok = true
			}
		}
		if ok {
			taken++
		} else {
			notTaken = append(notTaken, fmt.Sprintf("%s: %v", id, s.attempts(id)))
		}
	}
	byB, doneByB := 0, 0
	s.mu.Lock()
	for _, d := range s.d {
		for _, a := range d.attempts {
			if a.replica == "b" && !a.start.Before(stoppedAt) && a.start.Before(contAt) {
				byB++
				if a.status == http.StatusOK && a.end.Before(contAt) {
					doneByB++
				}
			}
		}
	}
	s.mu.Unlock()
	t.Logf("while a was frozen (%v, lease %v): replica b began %d attempts (%d answered 200 before a woke), %d of them of the %d deliveries a had in flight",
		contAt.Sub(stoppedAt).Round(time.Millisecond), clusterLease, byB, doneByB, taken, len(inFlight))
	if taken < len(inFlight) {
		t.Errorf("TAKEOVER: of %d deliveries replica a had in flight when it was frozen, only %d were attempted by another replica in the %v it stayed frozen (twice the lease, up to five times while waiting for the takeover):\n  %s",
			len(inFlight), taken, contAt.Sub(stoppedAt).Round(time.Millisecond), strings.Join(notTaken, "\n  "))
	}

	// a's late outcomes: refused, and logged with "fenced".
	var fenced []string
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		if fenced = linesWith(c.stderr(0), "fenced"); len(fenced) > 0 {
			break
		}
	}
	if len(fenced) == 0 {
		hint := ""
		if l := linesWith(c.stderr(0), "superseded"); len(l) > 0 {
			hint = fmt.Sprintf("; it logged %d lines with \"superseded\", e.g. %s", len(l), l[0])
		}
		t.Errorf("FENCING: replica a logged no line with \"fenced\" within 10 s of SIGCONT, although %d of its attempts were taken over while it was frozen%s", taken, hint)
	} else {
		t.Logf("replica a logged %d lines with \"fenced\", e.g. %s", len(fenced), fenced[0])
	}
	if m := scrapeLinesWith(t, c.base(0)+"/metrics", "fenc"); len(m) > 0 {
		t.Logf("replica a's metrics with \"fenc\": %s", strings.Join(m, "; "))
	} else {
		t.Logf("replica a's /metrics has no series with \"fenc\"")
	}

	// Every delivery ends succeeded: no late outcome undid b's.
	missing, took := c.drain(s, "slow", 60*time.Second, 30*time.Second, "slow")
	c.requireDrained("slow", missing, took, events)
	var notDone int
	for deadline := time.Now().Add(15 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		if err := c.db.QueryRow(context.Background(), `SELECT count(*) FROM deliveries WHERE destination = 'slow' AND status <> 'succeeded'`).Scan(&notDone); err != nil {
			t.Fatal(err)
		}
		if notDone == 0 || time.Now().After(deadline) {
			break
		}
	}
	if notDone > 0 {
		ids := c.eventIDs("slow")
		t.Errorf("%d of %d deliveries are not succeeded in the database although the sink answered 2xx to each; they are: %s", notDone, len(ids), c.deliveryStates("slow", ids))
	}
	st := s.stats()
	if len(st.overlaps) > 0 {
		// A frozen replica can wake between its claim and its request, after
		// another took the delivery over: the receiver then sees both.
		t.Logf("overlapping attempts (a woke with a request not yet sent): %s", strings.Join(st.overlaps, "\n  "))
	}
	t.Logf("sink: %v", st)
}

// TestClusterDefinitionsPropagate: a destination and a subscription
// created through replica a's admin API apply at replica b within 1 s; a
// subscription deleted through b stops applying at a within 1 s; a source
// created at a receives at b within 1 s, and once deleted at b, a refuses
// it within 1 s.
func TestClusterDefinitionsPropagate(t *testing.T) {
	if testing.Short() {
		t.Skip("cluster test: starts two hookd replicas; skipped with -short")
	}
	const budget = time.Second
	s := newSink(t)
	c := newCluster(t, 2, clusterConfig(t, `sources:
  - name: app
    event: {id: "json:id"}
`))
	c.startAll()
	a, b := c.base(0), c.base(1)
	client := newClient(2, 5*time.Second)
	defer client.CloseIdleConnections()

	if st, body := apiCall(t, client, "POST", a+"/api/v1/destinations", map[string]any{
		"name": "dyn", "type": "http", "url": s.url("dyn"),
		"retry": map[string]any{"policy": "exponential", "base": "50ms", "cap": "1s", "jitter": 0},
	}); st != http.StatusCreated {
		t.Fatalf("create destination dyn at replica a: %d %s, want 201", st, body)
	}
	st, body := apiCall(t, client, "POST", a+"/api/v1/subscriptions", map[string]any{"source": "app", "destination": "dyn"})
	if st != http.StatusCreated {
		t.Fatalf("create a subscription at replica a: %d %s, want 201", st, body)
	}
	var sub struct {
		ID string `json:"id"`
	}
	if err := json.Unmarshal(body, &sub); err != nil || sub.ID == "" {
		t.Fatalf("create a subscription: answer %s has no id (%v)", body, err)
	}
	created := time.Now()

	// Ingest at b every 50 ms; the first event b fans out to the new
	// subscription reaches the sink. Measure for up to 5 s, require 1 s.
	n := 0
	ingest := func(base, prefix string) {
		if r := post(client, base+"/in/app", fmt.Appendf(nil, `{"id":"%s-%d","m":"%s-%d"}`, prefix, n, prefix, n)); r.Status != http.StatusOK {
			t.Fatalf("post to %s/in/app: %d %v %s", base, r.Status, r.Err, r.Body)
		}
		n++
	}
	firstArrival := func() time.Time {
		s.mu.Lock()
		defer s.mu.Unlock()
		var first time.Time
		for _, d := range s.d {
			for _, at := range d.attempts {
				if first.IsZero() || at.start.Before(first) {
					first = at.start
				}
			}
		}
		return first
	}
	var arrived time.Time
	for time.Since(created) < 5*time.Second {
		ingest(b, "b")
		if arrived = firstArrival(); !arrived.IsZero() {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	switch {
	case arrived.IsZero():
		t.Errorf("PROPAGATION: a subscription created at replica a: nothing ingested at replica b reached the sink within 5 s (%d events posted to b)", n)
	case arrived.Sub(created) > budget:
		t.Errorf("PROPAGATION: a subscription created at replica a applied at replica b after %v, want within %v", arrived.Sub(created).Round(time.Millisecond), budget)
	default:
		t.Logf("subscription created at a: the sink got b's first event %v after the creation", arrived.Sub(created).Round(time.Millisecond))
	}

	// Delete the subscription at b; ingest at a for 1.5 s. Nothing a
	// received 1 s or more after the deletion may reach the sink.
	if st, body := apiCall(t, client, "DELETE", b+"/api/v1/subscriptions/"+sub.ID, nil); st != http.StatusNoContent {
		t.Errorf("PROPAGATION: delete subscription %s (created at replica a %v before) at replica b: %d %s, want 204",
			sub.ID, time.Since(created).Round(time.Millisecond), st, bytes.TrimSpace(body))
		// Go on with the sources: delete it where it is known.
		if st, body := apiCall(t, client, "DELETE", a+"/api/v1/subscriptions/"+sub.ID, nil); st != http.StatusNoContent {
			t.Fatalf("delete subscription %s at replica a: %d %s, want 204", sub.ID, st, body)
		}
	}
	deleted := time.Now()
	sent := map[string]time.Duration{} // event id → ingested how long after the deletion
	for time.Since(deleted) < budget+budget/2 {
		at := time.Now()
		r := post(client, a+"/in/app", fmt.Appendf(nil, `{"id":"a-%d","m":"a-%d"}`, n, n))
		n++
		if r.Status != http.StatusOK {
			t.Fatalf("post to replica a: %d %v %s", r.Status, r.Err, r.Body)
		}
		var ans ingestAnswer
		if err := json.Unmarshal(r.Body, &ans); err != nil {
			t.Fatal(err)
		}
		sent[ans.ID] = at.Sub(deleted)
		time.Sleep(50 * time.Millisecond)
	}
	// Whatever a still fans out reaches the sink in milliseconds; give it
	// the budget and as much again before looking.
	time.Sleep(budget + budget/2) // a wait for nothing to happen
	var late []string
	var lastDelivered time.Duration = -1
	for id := range s.succeeded("dyn") {
		after, ok := sent[id]
		if !ok {
			continue
		}
		lastDelivered = max(lastDelivered, after)
		if after >= budget {
			late = append(late, fmt.Sprintf("%s (ingested %v after the deletion)", id, after.Round(time.Millisecond)))
		}
	}
	if len(late) > 0 {
		t.Errorf("PROPAGATION: a subscription deleted at replica b still applied at replica a after %v: %d events reached the sink: %s", budget, len(late), strings.Join(late, ", "))
	}
	if lastDelivered >= 0 {
		t.Logf("subscription deleted at b: the last event a fanned out to it was ingested %v after the deletion", lastDelivered.Round(time.Millisecond))
	} else {
		t.Logf("subscription deleted at b: nothing a ingested after the deletion reached the sink (%d events)", len(sent))
	}

	// A source created at a receives at b.
	if st, body := apiCall(t, client, "POST", a+"/api/v1/sources", map[string]any{"name": "dynsrc", "event": map[string]any{"id": "json:id"}}); st != http.StatusCreated {
		t.Fatalf("create source dynsrc at replica a: %d %s, want 201", st, body)
	}
	created = time.Now()
	got := pollStatus(client, b+"/in/dynsrc", http.StatusOK, 5*time.Second)
	switch {
	case got < 0:
		t.Errorf("PROPAGATION: a source created at replica a was not received at replica b within 5 s")
	case got > budget:
		t.Errorf("PROPAGATION: a source created at replica a received at replica b after %v, want within %v", got.Round(time.Millisecond), budget)
	default:
		t.Logf("source created at a: b answered 200 %v after the creation", got.Round(time.Millisecond))
	}
	if st, body := apiCall(t, client, "DELETE", b+"/api/v1/sources/dynsrc", nil); st != http.StatusNoContent {
		t.Fatalf("PROPAGATION: delete source dynsrc (created at replica a) at replica b: %d %s, want 204", st, bytes.TrimSpace(body))
	}
	got = pollStatus(client, a+"/in/dynsrc", http.StatusNotFound, 5*time.Second)
	switch {
	case got < 0:
		t.Errorf("PROPAGATION: a source deleted at replica b was still received at replica a 5 s later")
	case got > budget:
		t.Errorf("PROPAGATION: a source deleted at replica b was refused at replica a after %v, want within %v", got.Round(time.Millisecond), budget)
	default:
		t.Logf("source deleted at b: a answered 404 %v after the deletion", got.Round(time.Millisecond))
	}
}

// pollStatus posts an event to rawURL every 20 ms until it is answered
// want, and returns how long that took; -1 when it was not within limit.
func pollStatus(c *http.Client, rawURL string, want int, limit time.Duration) time.Duration {
	start := time.Now()
	for n := 0; time.Since(start) < limit; n++ {
		if a := post(c, rawURL, fmt.Appendf(nil, `{"id":"poll-%d"}`, n)); a.Status == want {
			return time.Since(start)
		}
		time.Sleep(20 * time.Millisecond)
	}
	return -1
}

// linesWith returns the lines of s that contain word.
func linesWith(s, word string) []string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, word) {
			out = append(out, l)
		}
	}
	return out
}

// scrapeLinesWith GETs rawURL and returns the lines of its body that
// contain word and are not comments.
func scrapeLinesWith(t *testing.T, rawURL, word string) []string {
	t.Helper()
	c := newClient(1, 5*time.Second)
	defer c.CloseIdleConnections()
	resp, err := c.Get(rawURL)
	if err != nil {
		t.Logf("GET %s: %v", rawURL, err)
		return nil
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Logf("GET %s: read the body: %v", rawURL, err)
	}
	var out []string
	for _, l := range linesWith(string(b), word) {
		if !strings.HasPrefix(l, "#") {
			out = append(out, l)
		}
	}
	return out
}
