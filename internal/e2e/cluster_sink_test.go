//go:build linux

package e2e

import (
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"hookd/internal/store"
)

// sink is a receiver in the test process for the cluster tests. Each
// destination posts to a path of its own, /d/<destination>; the sink keys
// what it sees by delivery id (the event id, from webhook-id, and the
// destination) and records every attempt: which replica sent it (the
// X-E2E-Replica header, when the destination sends it), when it began and
// ended, and what it was answered. An attempt holds its delivery id from
// the start of the request until the sink answers; two attempts of one
// delivery id open at once are an overlap, which a lease must prevent.
//
// Per destination, it also keeps every request in the order it arrived
// (for ordering and rate checks) and the most requests it had open at
// once (for concurrency checks).
//
// It can flap: answer 500 to a fraction of the requests, to every request
// while it is down, or to the next few requests of a destination; and it
// can hold the requests of a destination for a while before answering, so
// that attempts are in flight.
type sink struct {
	srv *httptest.Server

	mu       sync.Mutex
	d        map[string]*sinkDelivery // by delivery id
	overlaps []string                 // one line per overlap
	failFrac float64
	hold     map[string]time.Duration // by destination
	rng      *rand.Rand
	// By destination: every request in arrival order, the requests open
	// now and the most open at once, and how many of the next requests
	// are answered 500.
	arrivals map[string][]sinkArrival
	openDest map[string]int
	maxOpen  map[string]int
	failNext map[string]int

	down     atomic.Bool
	requests atomic.Int64
	open     atomic.Int64 // attempts open now
}

// sinkDelivery is what the sink saw of one delivery id.
type sinkDelivery struct {
	event, destination string
	attempts           []sinkAttempt
	open               int // attempts open now
	ok                 int // 2xx answers to attempts whose sender was still there
}

// sinkAttempt is one request the sink received.
type sinkAttempt struct {
	replica    string // X-E2E-Replica, "" when not sent
	number     string // Hookd-Attempt
	start, end time.Time
	status     int  // 0 while open
	gone       bool // the sender went away before the answer
}

// sinkArrival is one request to a destination.
type sinkArrival struct {
	event   string // webhook-id
	replica string // X-E2E-Replica, "" when not sent
	at      time.Time
	status  int // 0 while open
}

func (a sinkAttempt) String() string {
	s := fmt.Sprintf("attempt %s from replica %q at %s", a.number, a.replica, a.start.Format("15:04:05.000"))
	switch {
	case a.status == 0:
		return s + ", open"
	case a.gone:
		return s + fmt.Sprintf(", sender gone after %v", a.end.Sub(a.start).Round(time.Millisecond))
	default:
		return s + fmt.Sprintf(", answered %d after %v", a.status, a.end.Sub(a.start).Round(time.Millisecond))
	}
}

func newSink(t *testing.T) *sink {
	s := &sink{d: map[string]*sinkDelivery{}, hold: map[string]time.Duration{}, rng: rand.New(rand.NewPCG(rand.Uint64(), 0)),
		arrivals: map[string][]sinkArrival{}, openDest: map[string]int{}, maxOpen: map[string]int{}, failNext: map[string]int{}}
	s.srv = httptest.NewServer(http.HandlerFunc(s.serve))
	t.Cleanup(s.srv.Close)
	return s
}

// url is the URL destination posts to.
func (s *sink) url(destination string) string { return s.srv.URL + "/d/" + destination }

// flap makes the sink answer 500 to fraction (0 to 1) of the requests.
func (s *sink) flap(fraction float64) {
	s.mu.Lock()
	s.failFrac = fraction
	s.mu.Unlock()
}

// setDown makes the sink answer 500 to every request (true) or not.
func (s *sink) setDown(down bool) { s.down.Store(down) }

// failNextOf makes the sink answer 500 to the next n requests to
// destination.
func (s *sink) failNextOf(destination string, n int) {
	s.mu.Lock()
	s.failNext[destination] = n
	s.mu.Unlock()
}

// holdFor makes the sink hold each request to destination for d before it
// answers (unless the sender goes away first).
func (s *sink) holdFor(destination string, d time.Duration) {
	s.mu.Lock()
	s.hold[destination] = d
	s.mu.Unlock()
}

func (s *sink) serve(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	io.Copy(io.Discard, r.Body)
	s.requests.Add(1)
	dest, ok := strings.CutPrefix(r.URL.Path, "/d/")
	if !ok || dest == "" {
		http.Error(w, "the sink receives at /d/<destination>", http.StatusNotFound)
		return
	}
	ev := r.Header.Get("webhook-id")
	id := store.DeliveryID(ev, dest)
	s.open.Add(1)
	s.mu.Lock()
	d := s.d[id]
	if d == nil {
		d = &sinkDelivery{event: ev, destination: dest}
		s.d[id] = d
	}
	d.open++
	a := sinkAttempt{replica: r.Header.Get(replicaHeader), number: r.Header.Get("Hookd-Attempt"), start: start}
	if d.open > 1 {
		var others []string
		for _, o := range d.attempts {
			if o.status == 0 {
				others = append(others, fmt.Sprintf("attempt %s from replica %q since %s", o.number, o.replica, o.start.Format("15:04:05.000")))
			}
		}
		s.overlaps = append(s.overlaps, fmt.Sprintf("%s: attempt %s from replica %q began at %s while open: %s",
			id, a.number, a.replica, start.Format("15:04:05.000"), strings.Join(others, ", ")))
	}
	n := len(d.attempts)
	d.attempts = append(d.attempts, a)
	fail := s.down.Load() || s.rng.Float64() < s.failFrac
	if s.failNext[dest] > 0 {
		s.failNext[dest]--
		fail = true
	}
	hold := s.hold[dest]
	k := len(s.arrivals[dest])
	s.arrivals[dest] = append(s.arrivals[dest], sinkArrival{event: ev, replica: a.replica, at: start})
	s.openDest[dest]++
	s.maxOpen[dest] = max(s.maxOpen[dest], s.openDest[dest])
	s.mu.Unlock()

	if hold > 0 {
		select {
		case <-time.After(hold):
		case <-r.Context().Done():
		}
	} else {
		time.Sleep(time.Duration(1+rand.IntN(4)) * time.Millisecond) // in flight for a moment
	}
	status := http.StatusOK
	if fail {
		status = http.StatusInternalServerError
	}
	gone := r.Context().Err() != nil
	// The attempt ends when the sink answers: the id is released before
	// the answer is written, so that the sender's next attempt (a retry,
	// which cannot begin before it read this answer) is never an overlap.
	s.mu.Lock()
	d.open--
	d.attempts[n].end, d.attempts[n].status, d.attempts[n].gone = time.Now(), status, gone
	if status == http.StatusOK && !gone {
		d.ok++
	}
	s.arrivals[dest][k].status = status
	s.openDest[dest]--
	s.mu.Unlock()
	s.open.Add(-1)
	w.WriteHeader(status)
}

// succeeded returns the event ids the sink answered 2xx for destination.
func (s *sink) succeeded(destination string) map[string]bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := map[string]bool{}
	for _, d := range s.d {
		if d.destination == destination && d.ok > 0 {
			out[d.event] = true
		}
	}
	return out
}

// openBy returns the delivery ids of destination with an attempt from
// replica open now.
func (s *sink) openBy(destination, replica string) []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var ids []string
	for id, d := range s.d {
		if d.destination != destination {
			continue
		}
		for _, a := range d.attempts {
			if a.status == 0 && a.replica == replica {
				ids = append(ids, id)
				break
			}
		}
	}
	sort.Strings(ids)
	return ids
}

// arrivalsOf returns a copy of the requests to destination, in the order
// they arrived.
func (s *sink) arrivalsOf(destination string) []sinkArrival {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]sinkArrival(nil), s.arrivals[destination]...)
}

// maxOpenOf returns the most requests to destination the sink had open at
// once.
func (s *sink) maxOpenOf(destination string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.maxOpen[destination]
}

// attempts returns a copy of the attempts of delivery id.
func (s *sink) attempts(id string) []sinkAttempt {
	s.mu.Lock()
	defer s.mu.Unlock()
	if d := s.d[id]; d != nil {
		return append([]sinkAttempt(nil), d.attempts...)
	}
	return nil
}

// sinkStats summarises what the sink saw.
type sinkStats struct {
	requests   int64
	deliveries int // delivery ids seen
	delivered  int // delivery ids answered 2xx at least once
	duplicates int // 2xx answers beyond the first of a delivery id
	dupIDs     int // delivery ids answered 2xx more than once
	overlaps   []string
}

func (s sinkStats) String() string {
	return fmt.Sprintf("%d requests, %d delivery ids, %d delivered, %d duplicate deliveries (2xx beyond the first) over %d delivery ids, %d overlapping attempts",
		s.requests, s.deliveries, s.delivered, s.duplicates, s.dupIDs, len(s.overlaps))
}

func (s *sink) stats() sinkStats {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := sinkStats{requests: s.requests.Load(), deliveries: len(s.d), overlaps: append([]string(nil), s.overlaps...)}
	for _, d := range s.d {
		if d.ok > 0 {
			st.delivered++
		}
		if d.ok > 1 {
			st.duplicates += d.ok - 1
			st.dupIDs++
		}
	}
	return st
}

// checkNoOverlap fails the test when two attempts of one delivery id were
// open at the sink at once.
func checkNoOverlap(t *testing.T, st sinkStats) {
	t.Helper()
	if len(st.overlaps) == 0 {
		return
	}
	t.Errorf("%d times two attempts of one delivery id were open at the sink at once, e.g.:\n  %s",
		len(st.overlaps), strings.Join(st.overlaps[:min(10, len(st.overlaps))], "\n  "))
}

// TestSinkDetectsOverlap: the sink reports two attempts of one delivery id
// open at once, and not two in a row; without this, the cluster tests'
// "no overlap" could not fail.
func TestSinkDetectsOverlap(t *testing.T) {
	s := newSink(t)
	s.holdFor("d", 200*time.Millisecond)
	c := newClient(2, 5*time.Second)
	defer c.CloseIdleConnections()
	send := func(id string) {
		req, err := http.NewRequest(http.MethodPost, s.url("d"), strings.NewReader("{}"))
		if err != nil {
			t.Error(err)
			return
		}
		req.Header.Set("webhook-id", id)
		resp, err := c.Do(req)
		if err != nil {
			t.Error(err)
			return
		}
		resp.Body.Close()
	}
	send("evt_seq")
	send("evt_seq")
	if st := s.stats(); len(st.overlaps) != 0 || st.duplicates != 1 {
		t.Fatalf("two attempts in a row: %v, want no overlap and 1 duplicate", st)
	}
	var wg sync.WaitGroup
	for range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			send("evt_par")
		}()
	}
	wg.Wait()
	if st := s.stats(); len(st.overlaps) != 1 {
		t.Fatalf("two attempts at once: %v, want 1 overlap", st)
	}
}
