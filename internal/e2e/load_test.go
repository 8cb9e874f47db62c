//go:build linux

package e2e

import (
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// loadConfig is the configuration the load tests run: source crash stores
// everything with an id (dedupe on), source strict requires an id and
// takes at most 2 KiB.
func loadConfig(dataDir, extra string) string {
	return loadConfigOn(fmt.Sprintf("storage:\n  driver: sqlite\n  path: %q\n", dataDir), extra)
}

// loadConfigOn is loadConfig with the storage block given.
func loadConfigOn(storage, extra string) string {
	return fmt.Sprintf(`listen: 127.0.0.1:0
%sadmin:
  tokens: [%q]
log:
  level: warn
server:
  ack_deadline: 2s
  shutdown_grace: 10s
%ssources:
  - name: crash
    event: {id: "json:id"}
    dedupe_window: 168h
  - name: strict
    event: {id: "json:id", require_id: true}
    max_body: 2KiB
`, storage, adminToken, extra)
}

// kind is what a load request is meant to get.
type kind int

const (
	kindStore  kind = iota // a valid event: 200 and stored
	kindNoID               // to strict without an id: 400, never stored
	kindTooBig             // to strict, over 2 KiB: 413, never stored
)

// outcome classifies an answer.
type outcome int

const (
	gotOK       outcome = iota // 200
	got4xx                     // 4xx
	gotOther                   // anything else, 5xx in practice
	gotNoAnswer                // transport error, timeout
)

// record is one load request and what it got.
type record struct {
	marker   string // unique, also the body's "m" field (and "id" when it has one)
	source   string
	kind     kind
	outcome  outcome
	status   int
	eventID  string // from a 200 answer
	refused  bool   // no answer because the connection was refused: never sent
	err      error
	answered time.Time
}

// load is a set of client goroutines POSTing unique events in a loop, no
// retries, until stop or until a connection is refused (hookd is gone).
type load struct {
	stopped atomic.Bool
	wg      sync.WaitGroup
	recs    [][]record
	client  *http.Client
}

// startLoad starts workers goroutines sending to base; prefix makes the
// markers unique across loads.
func startLoad(base, prefix string, workers int, seed uint64) *load {
	l := &load{recs: make([][]record, workers), client: newClient(workers, 3*time.Second)}
	for g := range workers {
		l.wg.Add(1)
		go func() {
			defer l.wg.Done()
			rng := rand.New(rand.NewPCG(seed, uint64(g)))
			for n := 0; !l.stopped.Load(); n++ {
				r, body := newLoadRequest(rng, fmt.Sprintf("%s-%d-%d", prefix, g, n))
				a := post(l.client, base+"/in/"+r.source, body)
				r.classify(a)
				l.recs[g] = append(l.recs[g], r)
				if r.refused {
					return // nothing listens any more
				}
			}
		}()
	}
	return l
}

// stop stops the goroutines after their current request and returns every
// record.
func (l *load) stop() []record {
	l.stopped.Store(true)
	l.wg.Wait()
	l.client.CloseIdleConnections()
	var all []record
	for _, rs := range l.recs {
		all = append(all, rs...)
	}
	return all
}

// newLoadRequest makes a request: ~90% valid (most to crash, some to
// strict), ~5% without an id to strict, ~5% over strict's 2 KiB limit.
func newLoadRequest(rng *rand.Rand, marker string) (record, []byte) {
	pad := strings.Repeat("x", rng.IntN(200))
	switch p := rng.IntN(100); {
	case p < 5:
		r := record{marker: marker, source: "strict", kind: kindNoID}
		return r, fmt.Appendf(nil, `{"m":%q,"n":%q}`, marker, pad)
	case p < 10:
		r := record{marker: marker, source: "strict", kind: kindTooBig}
		return r, fmt.Appendf(nil, `{"id":%q,"m":%q,"n":%q}`, marker, marker, strings.Repeat("y", 2100+rng.IntN(1000)))
	case p < 20:
		r := record{marker: marker, source: "strict", kind: kindStore}
		return r, fmt.Appendf(nil, `{"id":%q,"m":%q,"n":%q}`, marker, marker, pad)
	default:
		r := record{marker: marker, source: "crash", kind: kindStore}
		return r, fmt.Appendf(nil, `{"id":%q,"m":%q,"n":%q}`, marker, marker, pad)
	}
}

func (r *record) classify(a answer) {
	r.status, r.answered = a.Status, time.Now()
	switch {
	case a.Status == 0:
		r.outcome, r.err = gotNoAnswer, a.Err
		r.refused = errors.Is(a.Err, syscall.ECONNREFUSED)
	case a.Status == http.StatusOK:
		r.outcome = gotOK
		var ans ingestAnswer
		if err := json.Unmarshal(a.Body, &ans); err == nil {
			r.eventID = ans.ID
		} else {
			r.err = fmt.Errorf("200 answer %q: %v (read: %v)", a.Body, err, a.Err)
		}
	case a.Status >= 400 && a.Status < 500:
		r.outcome = got4xx
	default:
		r.outcome = gotOther
	}
}

// tally is what a set of records got, and how many of them are stored.
type tally struct {
	requests, ok, c4xx, other, noAnswer, refused int
	noAnswerStored, otherStored                  int
}

func (s tally) String() string {
	return fmt.Sprintf("%d requests: %d answered 200, %d answered 4xx, %d answered 5xx/other, %d no answer (%d of them refused at connect); stored: %d of the no-answer ones, %d of the 5xx/other ones",
		s.requests, s.ok, s.c4xx, s.other, s.noAnswer, s.refused, s.noAnswerStored, s.otherStored)
}

// checkStored asserts the durability contract on recs against the stored
// rows: 200 → stored exactly once (with the answered id); 4xx → not
// stored; no answer or 5xx → stored at most once; a request meant to be
// refused is never stored nor answered 2xx. It also fails on stored rows
// that no request explains.
func checkStored(t *testing.T, recs []record, stored map[string][]storedRow) tally {
	t.Helper()
	var s tally
	seen := make(map[string]bool, len(recs))
	fails := 0
	fail := func(format string, args ...any) {
		t.Helper()
		if fails++; fails <= 20 {
			t.Errorf(format, args...)
		}
	}
	for _, r := range recs {
		seen[r.marker] = true
		rows := stored[r.marker]
		n := len(rows)
		s.requests++
		if r.kind != kindStore && n != 0 {
			fail("request %s (to %s, meant to be refused) answered %d: stored %d times, want 0", r.marker, r.source, r.status, n)
		}
		switch r.outcome {
		case gotOK:
			s.ok++
			if r.kind != kindStore {
				fail("request %s (to %s, meant to be refused): got 200, want 4xx", r.marker, r.source)
				continue
			}
			if n != 1 {
				fail("request %s answered 200 (id %s): stored %d times, want exactly 1", r.marker, r.eventID, n)
				continue
			}
			if rows[0].ID != r.eventID || rows[0].Source != r.source {
				fail("request %s answered 200 with id %s: stored as %s in source %s, want %s in %s", r.marker, r.eventID, rows[0].ID, rows[0].Source, r.eventID, r.source)
			}
			if r.err != nil {
				fail("request %s: %v", r.marker, r.err)
			}
		case got4xx:
			s.c4xx++
			if n != 0 {
				fail("request %s answered %d: stored %d times, want 0", r.marker, r.status, n)
			}
			want := map[kind]int{kindNoID: http.StatusBadRequest, kindTooBig: http.StatusRequestEntityTooLarge}[r.kind]
			if r.status != want {
				fail("request %s to %s: got %d, want %d", r.marker, r.source, r.status, want)
			}
		case gotOther:
			s.other++
			if n > 1 {
				fail("request %s answered %d: stored %d times, want at most 1", r.marker, r.status, n)
			}
			if n == 1 {
				s.otherStored++
			}
		case gotNoAnswer:
			s.noAnswer++
			if r.refused {
				s.refused++
			}
			if n > 1 {
				fail("request %s got no answer (%v): stored %d times, want at most 1", r.marker, r.err, n)
			}
			if n == 1 {
				s.noAnswerStored++
			}
		}
	}
	for m, rows := range stored {
		if !seen[m] {
			fail("stored rows %v have marker %q that no request sent", rows, m)
		}
	}
	if fails > 20 {
		t.Errorf("… and %d more failures", fails-20)
	}
	return s
}
