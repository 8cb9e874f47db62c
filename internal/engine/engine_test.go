package engine_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"gopkg.in/yaml.v3"

	"hookd"
	"hookd/internal/config"
	_ "hookd/internal/destination/webhook"
	"hookd/internal/egress"
	"hookd/internal/engine"
	"hookd/internal/store"
	"hookd/internal/store/sqlite"
)

// rig is an engine on a real SQLite store in a temporary directory.
type rig struct {
	t     *testing.T
	st    *sqlite.Store
	eng   *engine.Engine
	clock engine.Clock
	seq   atomic.Int64
}

func logger(t *testing.T) *slog.Logger {
	if os.Getenv("HOOKD_TEST_LOG") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.DiscardHandler)
}

// parseDests reads destinations and subscriptions from YAML.
func parseDests(t *testing.T, src string) ([]config.Destination, []config.Subscription) {
	t.Helper()
	var doc struct {
		Destinations  []config.Destination  `yaml:"destinations"`
		Subscriptions []config.Subscription `yaml:"subscriptions"`
	}
	if err := yaml.Unmarshal([]byte(src), &doc); err != nil {
		t.Fatalf("parse: %v", err)
	}
	return doc.Destinations, doc.Subscriptions
}

func newRig(t *testing.T, dir string, clock engine.Clock, yml string, opt engine.Options) *rig {
	t.Helper()
	st, err := sqlite.Open(context.Background(), dir, logger(t), sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	guard, err := egress.NewGuard([]string{"127.0.0.0/8"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	opt.Store, opt.Log, opt.Clock, opt.Egress = st, logger(t), clock, guard
	eng := engine.New(opt)
	ds, ss := parseDests(t, yml)
	if err := eng.Open(context.Background(), ds, ss); err != nil {
		st.Close()
		t.Fatal(err)
	}
	r := &rig{t: t, st: st, eng: eng, clock: clock}
	max, _ := st.EventMaxSeq(context.Background())
	r.seq.Store(max)
	t.Cleanup(r.close)
	return r
}

func (r *rig) close() {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	r.eng.Stop(ctx)
	r.st.Close()
}

// publish stores events (as ingest does) and hands them to the engine.
func (r *rig) publish(evs ...*hookd.Event) []*hookd.Event {
	r.t.Helper()
	ins := make([]*store.EventInsert, len(evs))
	now := r.clock.Now()
	for i, e := range evs {
		u := hookd.NewULID(now)
		e.ID, e.RequestID = hookd.EventIDPrefix+u, hookd.RequestIDPrefix+u
		if e.Source == "" {
			e.Source = "app"
		}
		e.ReceivedAt = now
		if e.ContentType == "" {
			e.ContentType = "application/json"
		}
		if e.Body == nil {
			e.Body = []byte(fmt.Sprintf(`{"n":%d}`, i))
		}
		ins[i] = &store.EventInsert{Event: e}
	}
	res, err := r.st.EventInsertMany(context.Background(), ins)
	if err != nil {
		r.t.Fatal(err)
	}
	r.eng.OnCommit(ins, res)
	for i := range evs {
		evs[i].Seq = res[i].Seq
	}
	return evs
}

func events(n int, typ string) []*hookd.Event {
	out := make([]*hookd.Event, n)
	for i := range out {
		out[i] = &hookd.Event{Type: typ, Body: []byte(fmt.Sprintf(`{"i":%d}`, i))}
	}
	return out
}

// sink is a real HTTP receiver that records what it gets and answers
// with what answer decides.
type sink struct {
	srv *httptest.Server
	mu  sync.Mutex
	got []hit
	// answer returns the status (and headers) for the nth request (0-based).
	answer                func(n int, r *http.Request) (int, http.Header)
	inFlight, maxInFlight atomic.Int64
	delay                 time.Duration
}

type hit struct {
	id      string
	attempt string
	body    string
	at      time.Time // the engine's clock, from webhook-timestamp's source
	key     string
}

func newSink(t *testing.T, answer func(n int, r *http.Request) (int, http.Header)) *sink {
	s := &sink{answer: answer}
	s.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		cur := s.inFlight.Add(1)
		defer s.inFlight.Add(-1)
		for {
			m := s.maxInFlight.Load()
			if cur <= m || s.maxInFlight.CompareAndSwap(m, cur) {
				break
			}
		}
		body, _ := io.ReadAll(r.Body)
		if s.delay > 0 {
			time.Sleep(s.delay)
		}
		s.mu.Lock()
		n := len(s.got)
		s.got = append(s.got, hit{id: r.Header.Get("webhook-id"), attempt: r.Header.Get("Hookd-Attempt"), body: string(body), key: r.Header.Get("X-Key")})
		s.mu.Unlock()
		code, h := 200, http.Header(nil)
		if s.answer != nil {
			code, h = s.answer(n, r)
		}
		for k, v := range h {
			w.Header()[k] = v
		}
		w.WriteHeader(code)
	}))
	t.Cleanup(s.srv.Close)
	return s
}

func (s *sink) hits() []hit {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]hit(nil), s.got...)
}

func (s *sink) ids() map[string]int {
	m := map[string]int{}
	for _, h := range s.hits() {
		m[h.id]++
	}
	return m
}

// eventually polls cond (real time) until it holds or d passes.
func eventually(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func deliveryOf(t *testing.T, r *rig, ev *hookd.Event, dest string) *store.Delivery {
	t.Helper()
	d, err := r.st.DeliveryGet(context.Background(), store.DeliveryID(ev.ID, dest))
	if err != nil {
		return nil
	}
	return d
}

func statusOf(t *testing.T, r *rig, ev *hookd.Event, dest string) string {
	if d := deliveryOf(t, r, ev, dest); d != nil {
		return d.Status
	}
	return ""
}

func destYAML(name, url, extra string) string {
	return fmt.Sprintf(`
destinations:
  - name: %s
    type: http
    url: %s
%s
subscriptions:
  - {destination: %s, events: ["*"]}
`, name, url, extra, name)
}

func TestFlakySinkGetsEveryEvent(t *testing.T) {
	var n atomic.Int64
	s := newSink(t, func(int, *http.Request) (int, http.Header) {
		if n.Add(1)%2 == 0 {
			return 503, nil
		}
		return 200, nil
	})
	// Retries without a bound on attempts: an event may meet several 503s
	// in a row.
	r := newRig(t, t.TempDir(), engine.RealClock{}, destYAML("flaky", s.srv.URL, `    retry: {policy: exponential, base: 10ms, cap: 40ms, jitter: 0}`), engine.Options{})
	evs := r.publish(events(200, "order.created")...)
	var counts map[string]int
	deadline := time.Now().Add(30 * time.Second)
	for {
		counts = map[string]int{}
		for _, ev := range evs {
			counts[statusOf(t, r, ev, "flaky")]++
		}
		if counts[store.StatusSucceeded] == len(evs) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("not every delivery succeeded: %v", counts)
		}
		time.Sleep(10 * time.Millisecond)
	}
	got := s.ids()
	dups := 0
	for _, ev := range evs {
		if got[ev.ID] == 0 {
			t.Fatalf("event %s never arrived", ev.ID)
		}
	}
	for _, c := range got {
		if c > 1 {
			dups++
		}
	}
	t.Logf("200 events, %d requests (half answered 503), %d events arrived more than once (each one after a 503)", len(s.hits()), dups)
}

// stepToNextAttempt moves a fake clock to just before the delivery's next
// attempt is due, checks that nothing is attempted early, then to the due
// time, and waits for the attempt to be recorded.
func stepToNextAttempt(t *testing.T, clk *engine.FakeClock, r *rig, ev *hookd.Event, dest string) {
	t.Helper()
	d := deliveryOf(t, r, ev, dest)
	if d == nil || d.Status != store.StatusRetrying {
		t.Fatalf("delivery not retrying: %+v", d)
	}
	if early := d.NextAttemptAt.Sub(clk.Now()) - time.Millisecond; early > 0 {
		clk.Advance(early)
	}
	time.Sleep(50 * time.Millisecond)
	if got := deliveryOf(t, r, ev, dest); got.Attempts != d.Attempts {
		t.Fatalf("attempt %d made before it was due (%s)", got.Attempts, d.NextAttemptAt)
	}
	clk.Advance(d.NextAttemptAt.Sub(clk.Now()))
	eventually(t, 10*time.Second, "the next attempt", func() bool {
		got := deliveryOf(t, r, ev, dest)
		return got.Attempts > d.Attempts && got.Status != store.StatusDelivering
	})
}

func TestAttemptTimesFollowThePolicy(t *testing.T) {
	s := newSink(t, func(int, *http.Request) (int, http.Header) { return 503, nil })
	clk := engine.NewFakeClock(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	r := newRig(t, t.TempDir(), clk, destYAML("down", s.srv.URL, `    retry: {policy: three_times}`), engine.Options{})
	ev := r.publish(&hookd.Event{Type: "a"})[0]
	eventually(t, 5*time.Second, "first attempt", func() bool { return statusOf(t, r, ev, "down") == store.StatusRetrying })
	for range 3 {
		stepToNextAttempt(t, clk, r, ev, "down")
	}
	if st := statusOf(t, r, ev, "down"); st != store.StatusFailed {
		t.Fatalf("after 4 attempts: %s, want failed", st)
	}
	d := deliveryOf(t, r, ev, "down")
	if len(d.AttemptLog) != 4 {
		t.Fatalf("attempts = %d, want 4 (three_times: the first and 3 retries)", len(d.AttemptLog))
	}
	want := []time.Duration{30 * time.Second, 5 * time.Minute, 30 * time.Minute}
	for i, w := range want {
		gap := d.AttemptLog[i+1].StartedAt.Sub(d.AttemptLog[i].StartedAt)
		if gap != w {
			t.Errorf("gap %d = %s, want %s", i+1, gap, w)
		}
		t.Logf("attempt %d → %d: %s (policy %s)", i+1, i+2, gap, w)
	}
	if d.Reason != engine.ReasonAttemptsExhausted {
		t.Errorf("reason = %q", d.Reason)
	}
}

func TestFinalAnswersAndRetryAfter(t *testing.T) {
	t.Run("400 fails after one attempt", func(t *testing.T) {
		s := newSink(t, func(int, *http.Request) (int, http.Header) { return 400, nil })
		r := newRig(t, t.TempDir(), engine.RealClock{}, destYAML("bad", s.srv.URL, ""), engine.Options{})
		ev := r.publish(&hookd.Event{Type: "a"})[0]
		eventually(t, 5*time.Second, "failed", func() bool { return statusOf(t, r, ev, "bad") == store.StatusFailed })
		time.Sleep(50 * time.Millisecond)
		d := deliveryOf(t, r, ev, "bad")
		if len(s.hits()) != 1 || d.Attempts != 1 || d.Reason != engine.ReasonPermanent || d.LastStatusCode != 400 {
			t.Fatalf("hits=%d attempts=%d reason=%q status=%d", len(s.hits()), d.Attempts, d.Reason, d.LastStatusCode)
		}
	})
	t.Run("429 Retry-After 7", func(t *testing.T) {
		s := newSink(t, func(n int, _ *http.Request) (int, http.Header) {
			if n == 0 {
				return 429, http.Header{"Retry-After": {"7"}}
			}
			return 200, nil
		})
		clk := engine.NewFakeClock(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
		r := newRig(t, t.TempDir(), clk, destYAML("busy", s.srv.URL, ""), engine.Options{})
		ev := r.publish(&hookd.Event{Type: "a"})[0]
		eventually(t, 5*time.Second, "first attempt", func() bool { return statusOf(t, r, ev, "busy") == store.StatusRetrying })
		stepToNextAttempt(t, clk, r, ev, "busy")
		d := deliveryOf(t, r, ev, "busy")
		if d.Status != store.StatusSucceeded {
			t.Fatalf("status %s", d.Status)
		}
		gap := d.AttemptLog[1].StartedAt.Sub(d.AttemptLog[0].StartedAt)
		t.Logf("429 with Retry-After: 7 → next attempt %s later", gap)
		if gap != 7*time.Second {
			t.Fatalf("gap = %s, want 7s", gap)
		}
	})
	t.Run("410 disables the destination", func(t *testing.T) {
		s := newSink(t, func(int, *http.Request) (int, http.Header) { return 410, nil })
		r := newRig(t, t.TempDir(), engine.RealClock{}, destYAML("gone", s.srv.URL, ""), engine.Options{})
		ev := r.publish(&hookd.Event{Type: "a"})[0]
		eventually(t, 5*time.Second, "failed", func() bool { return statusOf(t, r, ev, "gone") == store.StatusFailed })
		eventually(t, 5*time.Second, "disabled", func() bool { v, _ := r.eng.Destination("gone"); return v.Disabled })
		more := r.publish(events(5, "a")...)
		time.Sleep(200 * time.Millisecond)
		if n := len(s.hits()); n != 1 {
			t.Fatalf("a disabled destination got %d requests, want 1", n)
		}
		for _, ev := range more {
			if st := statusOf(t, r, ev, "gone"); st != store.StatusPending {
				t.Fatalf("event after disable: status %q, want pending (kept)", st)
			}
		}
		v, _ := r.eng.Destination("gone")
		t.Logf("disabled: %v, reason %q", v.Disabled, v.DisabledReason)
	})
	t.Run("3xx is not followed", func(t *testing.T) {
		var followed atomic.Int64
		target := newSink(t, func(int, *http.Request) (int, http.Header) { followed.Add(1); return 200, nil })
		s := newSink(t, func(int, *http.Request) (int, http.Header) {
			return 307, http.Header{"Location": {target.srv.URL}}
		})
		r := newRig(t, t.TempDir(), engine.RealClock{}, destYAML("moved", s.srv.URL, ""), engine.Options{})
		ev := r.publish(&hookd.Event{Type: "a"})[0]
		eventually(t, 5*time.Second, "retrying", func() bool { return statusOf(t, r, ev, "moved") == store.StatusRetrying })
		d := deliveryOf(t, r, ev, "moved")
		if followed.Load() != 0 || d.LastStatusCode != 307 {
			t.Fatalf("redirect followed %d times; last status %d", followed.Load(), d.LastStatusCode)
		}
	})
}

// keyed builds events with keys and a sequence number per key in the body.
func keyed(keys []string, perKey int) []*hookd.Event {
	var out []*hookd.Event
	for i := 0; i < perKey; i++ {
		for _, k := range keys {
			out = append(out, &hookd.Event{Type: "a", Key: k, Body: []byte(fmt.Sprintf(`{"key":%q,"n":%d}`, k, i))})
		}
	}
	return out
}

// checkOrdered checks that the events answered 200 arrived in order per
// key: n = 0, 1, 2… with no gap and no repeat.
func checkOrdered(t *testing.T, hits []hit, ok func(i int) bool) {
	t.Helper()
	next := map[string]int{}
	for i, h := range hits {
		if !ok(i) {
			continue
		}
		var b struct {
			Key string `json:"key"`
			N   int    `json:"n"`
		}
		if err := json.Unmarshal([]byte(h.body), &b); err != nil {
			t.Fatal(err)
		}
		if b.N != next[b.Key] {
			t.Fatalf("key %s: delivered n=%d, want n=%d", b.Key, b.N, next[b.Key])
		}
		next[b.Key]++
	}
}

func TestOrderingWhileSinkFlaps(t *testing.T) {
	for _, ordering := range []string{"fifo", "key"} {
		t.Run(ordering, func(t *testing.T) {
			var calls atomic.Int64
			var mu sync.Mutex
			okAt := map[int]bool{}
			s := newSink(t, func(n int, _ *http.Request) (int, http.Header) {
				c := calls.Add(1)
				code := 200
				if c%3 == 0 { // flaps: every third request fails
					code = 503
				}
				mu.Lock()
				okAt[n] = code == 200
				mu.Unlock()
				return code, nil
			})
			s.delay = time.Millisecond
			extra := fmt.Sprintf("    ordering: %s\n    concurrency: 4\n    retry: {policy: schedule, schedule: [\"5ms\", \"5ms\", \"5ms\", \"5ms\", \"5ms\", \"5ms\", \"5ms\", \"5ms\"]}", ordering)
			r := newRig(t, t.TempDir(), engine.RealClock{}, destYAML("ord", s.srv.URL, extra), engine.Options{})
			evs := keyed([]string{"k1", "k2", "k3", "k4"}, 25)
			for i := 0; i < len(evs); i += 10 {
				r.publish(evs[i:min(i+10, len(evs))]...)
			}
			eventually(t, 30*time.Second, "all delivered", func() bool {
				for _, ev := range evs {
					if statusOf(t, r, ev, "ord") != store.StatusSucceeded {
						return false
					}
				}
				return true
			})
			mu.Lock()
			defer mu.Unlock()
			hits := s.hits()
			checkOrdered(t, hits, func(i int) bool { return okAt[i] })
			if ordering == "fifo" {
				// Overall order: the n of each key's successful arrivals
				// interleave exactly in published order.
				var seqs []int
				idx := map[string]int{}
				for i, ev := range evs {
					idx[ev.ID] = i
				}
				for i, h := range hits {
					if okAt[i] {
						seqs = append(seqs, idx[h.id])
					}
				}
				if !sort.IntsAreSorted(seqs) {
					t.Fatalf("fifo: delivered out of published order")
				}
				if m := s.maxInFlight.Load(); m != 1 {
					t.Fatalf("fifo: %d requests in flight at once", m)
				}
			} else if m := s.maxInFlight.Load(); m < 2 || m > 4 {
				t.Fatalf("key: max in flight %d, want 2..4 (keys run concurrently, up to the limit)", m)
			}
			t.Logf("%s: %d events, %d requests, max in flight %d", ordering, len(evs), len(hits), s.maxInFlight.Load())
		})
	}
}

func TestNoneRunsConcurrentlyUpToTheLimit(t *testing.T) {
	s := newSink(t, nil)
	s.delay = 20 * time.Millisecond
	r := newRig(t, t.TempDir(), engine.RealClock{}, destYAML("wide", s.srv.URL, "    concurrency: 8"), engine.Options{})
	evs := r.publish(events(100, "a")...)
	eventually(t, 20*time.Second, "all delivered", func() bool {
		return len(s.ids()) == len(evs)
	})
	if m := s.maxInFlight.Load(); m != 8 {
		t.Fatalf("max in flight %d, want 8", m)
	}
}

// A delivery that succeeds at its first attempt costs one row, and no
// attempt-log row; a failed attempt costs one attempt row more.
func TestRowWritesPerDelivery(t *testing.T) {
	var fail atomic.Bool
	s := newSink(t, func(int, *http.Request) (int, http.Header) {
		if fail.Load() {
			return 500, nil
		}
		return 200, nil
	})
	r := newRig(t, t.TempDir(), engine.RealClock{}, destYAML("rows", s.srv.URL, `    retry: {policy: schedule, schedule: ["1h"]}`), engine.Options{})
	evs := r.publish(events(1000, "a")...)
	eventually(t, 20*time.Second, "all delivered", func() bool { return len(s.ids()) == len(evs) })
	// The sink has them all; each attempt's outcome follows its answer.
	eventually(t, 10*time.Second, "all outcomes written", func() bool {
		r.eng.Flush(context.Background())
		return r.eng.Stats().Rows >= 1000
	})
	st := r.eng.Stats()
	t.Logf("1000 first-time successes: %d delivery rows, %d attempt rows, in %d batches", st.Rows, st.AttemptRows, st.Batches)
	if st.Rows != 1000 || st.AttemptRows != 0 {
		t.Fatalf("rows = %d, attempt rows = %d; want 1000 and 0", st.Rows, st.AttemptRows)
	}
	if st.Watermark != evs[len(evs)-1].Seq {
		t.Fatalf("watermark %d, want %d", st.Watermark, evs[len(evs)-1].Seq)
	}
	fail.Store(true)
	more := r.publish(events(10, "a")...)
	eventually(t, 10*time.Second, "attempted", func() bool {
		for _, ev := range more {
			if statusOf(t, r, ev, "rows") != store.StatusRetrying {
				return false
			}
		}
		return true
	})
	eventually(t, 10*time.Second, "the 10 outcomes written", func() bool {
		r.eng.Flush(context.Background())
		return r.eng.Stats().Rows >= st.Rows+10
	})
	st2 := r.eng.Stats()
	if st2.Rows-st.Rows != 10 || st2.AttemptRows-st.AttemptRows != 10 {
		t.Fatalf("10 failed first attempts: %d rows, %d attempt rows; want 10 and 10", st2.Rows-st.Rows, st2.AttemptRows-st.AttemptRows)
	}
}

// Events committed while hookd was down (or routed but not delivered when
// it stopped) are delivered after the next Open: the fan-out watermark.
func TestRecoveryAfterStop(t *testing.T) {
	var up atomic.Bool
	s := newSink(t, func(int, *http.Request) (int, http.Header) {
		if !up.Load() {
			return 503, nil
		}
		return 200, nil
	})
	dir := t.TempDir()
	y := destYAML("later", s.srv.URL, `    retry: {policy: schedule, schedule: ["1h"]}`)
	r := newRig(t, dir, engine.RealClock{}, y, engine.Options{})
	evs := r.publish(events(50, "a")...)
	// Stored but never handed to the engine: as if hookd died between the
	// commit and the hand-over.
	lost := events(20, "a")
	ins := make([]*store.EventInsert, len(lost))
	for i, e := range lost {
		u := hookd.NewULID(time.Now())
		e.ID, e.RequestID, e.Source, e.ReceivedAt, e.Body = hookd.EventIDPrefix+u, hookd.RequestIDPrefix+u, "app", time.Now(), []byte(`{}`)
		ins[i] = &store.EventInsert{Event: e}
	}
	if _, err := r.st.EventInsertMany(context.Background(), ins); err != nil {
		t.Fatal(err)
	}
	eventually(t, 10*time.Second, "first attempts", func() bool { return statusOf(t, r, evs[49], "later") == store.StatusRetrying })
	r.close()
	up.Store(true)
	r2 := newRig(t, dir, engine.RealClock{}, strings.Replace(y, `["1h"]`, `["10ms"]`, 1), engine.Options{})
	got := func() bool {
		ids := s.ids()
		for _, ev := range append(evs, lost...) {
			if ids[ev.ID] == 0 {
				return false
			}
		}
		return true
	}
	// The retrying ones are due in an hour: an operator retries them; the
	// lost ones are recovered and delivered at once.
	eventually(t, 10*time.Second, "lost events delivered", func() bool {
		ids := s.ids()
		for _, ev := range lost {
			if ids[ev.ID] == 0 {
				return false
			}
		}
		return true
	})
	j, err := r2.eng.ReplayStart(engine.ReplayFilter{Status: store.StatusRetrying})
	if err != nil {
		t.Fatal(err)
	}
	eventually(t, 10*time.Second, "retrying ones delivered after a replay", got)
	eventually(t, 5*time.Second, "replay done", func() bool { j, _ = r2.eng.Replay(j.ID); return j.State == engine.ReplayDone })
	if j.Total != 50 || j.Queued != 50 {
		t.Fatalf("replay %+v, want 50 total and queued", j)
	}
}

// tokenServer is an OAuth2 token endpoint that counts its requests.
type tokenServer struct {
	srv   *httptest.Server
	count atomic.Int64
}

func newTokenServer(t *testing.T, expiresIn int) *tokenServer {
	ts := &tokenServer{}
	ts.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n := ts.count.Add(1)
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprintf(w, `{"access_token":"token-%d","token_type":"Bearer","expires_in":%d}`, n, expiresIn)
	}))
	t.Cleanup(ts.srv.Close)
	return ts
}

func oauthYAML(name, url, tokenURL, retry string) string {
	return fmt.Sprintf(`
destinations:
  - name: %s
    type: http
    url: %s
    concurrency: 32
    auth: {type: oauth2, token_url: %s, client_id: hookd, client_secret: s3cr3t}
%s
subscriptions:
  - {destination: %s}
`, name, url, tokenURL, retry, name)
}

// Seed 000 as the sender: one token for many deliveries, refreshed 30
// minutes before it expires, a 401 answered with one fresh token and one
// re-send, and a dead token server failing the delivery with the reason
// in the attempt log.
func TestOAuthClientCredentials(t *testing.T) {
	t.Run("500 deliveries cost one token", func(t *testing.T) {
		ts := newTokenServer(t, 3600)
		var auth sync.Map
		s := newSink(t, func(_ int, r *http.Request) (int, http.Header) {
			auth.Store(r.Header.Get("Authorization"), true)
			return 200, nil
		})
		r := newRig(t, t.TempDir(), engine.RealClock{}, oauthYAML("api", s.srv.URL, ts.srv.URL, ""), engine.Options{})
		r.publish(events(500, "a")...)
		eventually(t, 20*time.Second, "500 deliveries", func() bool { return len(s.ids()) == 500 })
		if n := ts.count.Load(); n != 1 {
			t.Fatalf("token requests: %d, want 1", n)
		}
		if _, ok := auth.Load("Bearer token-1"); !ok {
			t.Fatal("the sink did not get the bearer token")
		}
		t.Logf("500 deliveries, %d token request", ts.count.Load())
	})
	t.Run("refreshed 30 minutes before expiry", func(t *testing.T) {
		ts := newTokenServer(t, 3600)
		var last atomic.Value
		s := newSink(t, func(_ int, r *http.Request) (int, http.Header) {
			last.Store(r.Header.Get("Authorization"))
			return 200, nil
		})
		clk := engine.NewFakeClock(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
		r := newRig(t, t.TempDir(), clk, oauthYAML("api", s.srv.URL, ts.srv.URL, ""), engine.Options{})
		deliver := func() string {
			n := len(s.hits())
			r.publish(&hookd.Event{Type: "a"})
			eventually(t, 5*time.Second, "a delivery", func() bool { return len(s.hits()) == n+1 })
			return last.Load().(string)
		}
		if got := deliver(); got != "Bearer token-1" {
			t.Fatalf("first: %s", got)
		}
		clk.Advance(30*time.Minute - time.Second) // 30 min + 1 s before expiry
		if got := deliver(); got != "Bearer token-1" || ts.count.Load() != 1 {
			t.Fatalf("before the refresh point: %s, %d token requests", got, ts.count.Load())
		}
		clk.Advance(2 * time.Second) // 29 min 59 s before expiry
		if got := deliver(); got != "Bearer token-2" || ts.count.Load() != 2 {
			t.Fatalf("after the refresh point: %s, %d token requests", got, ts.count.Load())
		}
		t.Logf("token-1 used until 30m01s before expiry; token-2 from 29m59s before; %d token requests", ts.count.Load())
	})
	t.Run("401 gets one fresh token and one re-send", func(t *testing.T) {
		ts := newTokenServer(t, 3600)
		s := newSink(t, func(n int, r *http.Request) (int, http.Header) {
			if r.Header.Get("Authorization") == "Bearer token-1" {
				return 401, nil // revoked
			}
			return 200, nil
		})
		r := newRig(t, t.TempDir(), engine.RealClock{}, oauthYAML("api", s.srv.URL, ts.srv.URL, ""), engine.Options{})
		ev := r.publish(&hookd.Event{Type: "a"})[0]
		eventually(t, 5*time.Second, "succeeded", func() bool { return statusOf(t, r, ev, "api") == store.StatusSucceeded })
		d := deliveryOf(t, r, ev, "api")
		if ts.count.Load() != 2 || len(s.hits()) != 2 || d.Attempts != 1 {
			t.Fatalf("token requests %d, sink requests %d, attempts %d; want 2, 2, 1", ts.count.Load(), len(s.hits()), d.Attempts)
		}
	})
	t.Run("dead token server fails the delivery", func(t *testing.T) {
		dead := httptest.NewServer(http.NotFoundHandler())
		deadURL := dead.URL
		dead.Close()
		s := newSink(t, nil)
		clk := engine.NewFakeClock(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
		r := newRig(t, t.TempDir(), clk, oauthYAML("api", s.srv.URL, deadURL, "    retry: {policy: three_times}"), engine.Options{})
		ev := r.publish(&hookd.Event{Type: "a"})[0]
		eventually(t, 5*time.Second, "first attempt", func() bool { return statusOf(t, r, ev, "api") == store.StatusRetrying })
		for range 3 {
			stepToNextAttempt(t, clk, r, ev, "api")
		}
		d := deliveryOf(t, r, ev, "api")
		if d.Status != store.StatusFailed || len(s.hits()) != 0 {
			t.Fatalf("status %s, sink requests %d", d.Status, len(s.hits()))
		}
		for _, a := range d.AttemptLog {
			if !strings.Contains(a.Error, "token_unavailable") {
				t.Fatalf("attempt %d: error %q does not give the reason", a.Number, a.Error)
			}
		}
		t.Logf("failed after %d attempts (%s); attempt 1: %s", d.Attempts, d.Reason, d.AttemptLog[0].Error)
	})
}

// Work waiting behind a retrying head of an ordered destination gets rows,
// so that the fan-out watermark moves on: a restart need not route those
// events again.
func TestWatermarkMovesPastABlockedLane(t *testing.T) {
	s := newSink(t, func(int, *http.Request) (int, http.Header) { return 503, nil })
	r := newRig(t, t.TempDir(), engine.RealClock{}, destYAML("blocked", s.srv.URL, "    ordering: fifo\n    retry: {policy: schedule, schedule: [\"1h\"]}"), engine.Options{})
	first := r.publish(&hookd.Event{Type: "a"})[0]
	eventually(t, 5*time.Second, "head retrying", func() bool { return statusOf(t, r, first, "blocked") == store.StatusRetrying })
	rest := r.publish(events(20, "a")...)
	last := rest[len(rest)-1]
	eventually(t, 5*time.Second, "watermark past the blocked lane", func() bool {
		r.eng.Flush(context.Background())
		return r.eng.Stats().Watermark >= last.Seq
	})
	for _, ev := range rest {
		if st := statusOf(t, r, ev, "blocked"); st != store.StatusPending {
			t.Fatalf("waiting event: %q, want pending", st)
		}
	}
	if n := len(s.hits()); n != 1 {
		t.Fatalf("fifo sent %d requests past a retrying head, want 1", n)
	}
}

func TestRateLimitPerDestination(t *testing.T) {
	s := newSink(t, nil)
	r := newRig(t, t.TempDir(), engine.RealClock{}, destYAML("slow", s.srv.URL, "    rate: 50/s\n    concurrency: 32"), engine.Options{})
	start := time.Now()
	r.publish(events(100, "a")...)
	eventually(t, 20*time.Second, "100 deliveries", func() bool { return len(s.ids()) == 100 })
	took := time.Since(start)
	// 50/s with a burst of 5: the last of 100 goes out after ≥ 1.9 s.
	if took < 1800*time.Millisecond {
		t.Fatalf("100 deliveries at 50/s took %s", took)
	}
	t.Logf("100 deliveries at rate 50/s took %s", took.Round(time.Millisecond))
}

func TestDisabledAfterFailingContinuously(t *testing.T) {
	s := newSink(t, func(int, *http.Request) (int, http.Header) { return 503, nil })
	clk := engine.NewFakeClock(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	r := newRig(t, t.TempDir(), clk, destYAML("down", s.srv.URL, `    retry: {policy: schedule, schedule: ["1m", "1m", "1m", "1m", "1m"]}`), engine.Options{DisableAfter: 3 * time.Minute})
	ev := r.publish(&hookd.Event{Type: "a"})[0]
	eventually(t, 5*time.Second, "first attempt", func() bool { return statusOf(t, r, ev, "down") == store.StatusRetrying })
	for i := 0; ; i++ {
		if v, _ := r.eng.Destination("down"); v.Disabled {
			t.Logf("disabled after %d attempts: %s (at %s)", i+1, v.DisabledReason, v.DisabledAt)
			if !strings.Contains(v.DisabledReason, "failing continuously since") || v.DisabledAt == nil {
				t.Fatalf("reason %q", v.DisabledReason)
			}
			if i+1 != 4 {
				t.Fatalf("disabled after %d attempts, want 4 (3 minutes of failures)", i+1)
			}
			break
		}
		if i > 5 {
			t.Fatal("never disabled")
		}
		stepToNextAttempt(t, clk, r, ev, "down")
	}
	// Enabled again, it resumes.
	if _, err := r.eng.DestinationEnable(context.Background(), "down"); err != nil {
		t.Fatal(err)
	}
	if v, _ := r.eng.Destination("down"); v.Disabled {
		t.Fatal("still disabled")
	}
}

// Deliveries to a destination that no subscription names any more are
// cancelled, not sent.
func TestDeletingTheLastSubscriptionCancels(t *testing.T) {
	s := newSink(t, nil)
	s.delay = 100 * time.Millisecond
	r := newRig(t, t.TempDir(), engine.RealClock{}, fmt.Sprintf("destinations: [{name: d, type: http, url: %q, concurrency: 1}]\n", s.srv.URL), engine.Options{})
	sub, err := r.eng.SubscriptionPut(context.Background(), "", []byte(`{"destination":"d"}`))
	if err != nil {
		t.Fatal(err)
	}
	evs := r.publish(events(5, "a")...)
	eventually(t, 5*time.Second, "the first attempt under way", func() bool { return s.inFlight.Load() == 1 })
	if err := r.eng.SubscriptionDelete(context.Background(), sub.ID); err != nil {
		t.Fatal(err)
	}
	eventually(t, 5*time.Second, "settled", func() bool {
		for _, ev := range evs {
			if st := statusOf(t, r, ev, "d"); st != store.StatusSucceeded && st != store.StatusCancelled {
				return false
			}
		}
		return true
	})
	cancelled := 0
	for _, ev := range evs {
		if d := deliveryOf(t, r, ev, "d"); d.Status == store.StatusCancelled {
			cancelled++
			if d.Reason != engine.ReasonUnsubscribed || d.Attempts != 0 {
				t.Fatalf("cancelled delivery: reason %q, %d attempts", d.Reason, d.Attempts)
			}
		}
	}
	if cancelled != 4 || len(s.hits()) != 1 {
		t.Fatalf("%d cancelled, %d sent; want 4 and 1 (the one in flight)", cancelled, len(s.hits()))
	}
}

// A destination holds at most MemBytes of bodies in memory; the rest waits
// in the store (pending) and is delivered all the same.
func TestMemoryBoundInBytes(t *testing.T) {
	release := make(chan struct{})
	s := newSink(t, func(int, *http.Request) (int, http.Header) { <-release; return 200, nil })
	r := newRig(t, t.TempDir(), engine.RealClock{}, destYAML("big", s.srv.URL, "    concurrency: 1"), engine.Options{MemBytes: 10 << 10})
	body := bytes.Repeat([]byte("x"), 4<<10)
	evs := make([]*hookd.Event, 10)
	for i := range evs {
		evs[i] = &hookd.Event{Type: "a", Body: body}
	}
	r.publish(evs...)
	eventually(t, 5*time.Second, "spilled deliveries stored", func() bool {
		n := 0
		for _, ev := range evs {
			// Spilled rows are pending, or delivering once claimed back
			// (without their bodies, which are read at the attempt).
			if st := statusOf(t, r, ev, "big"); st == store.StatusPending || st == store.StatusDelivering {
				n++
			}
		}
		return n >= 7 // 10 × 4 KiB against a 10 KiB bound: at most 3 held
	})
	close(release)
	eventually(t, 10*time.Second, "all delivered", func() bool { return len(s.ids()) == len(evs) })
}

// A replay of the failed queue spans many pages of the listing while it
// takes deliveries out of the status it lists: none is missed.
func TestReplayFailedQueueAcrossPages(t *testing.T) {
	var ok atomic.Bool
	s := newSink(t, func(int, *http.Request) (int, http.Header) {
		if ok.Load() {
			return 200, nil
		}
		return 400, nil
	})
	r := newRig(t, t.TempDir(), engine.RealClock{}, destYAML("q", s.srv.URL, "    concurrency: 32"), engine.Options{})
	const n = 1200
	r.publish(events(n, "a")...)
	eventually(t, 30*time.Second, "all failed", func() bool {
		c, _ := r.st.DeliveryCountByStatus(context.Background(), "q")
		return c[store.StatusFailed] == n
	})
	ok.Store(true)
	j, err := r.eng.ReplayStart(engine.ReplayFilter{Status: store.StatusFailed})
	if err != nil {
		t.Fatal(err)
	}
	eventually(t, 30*time.Second, "replay done", func() bool { j, _ = r.eng.Replay(j.ID); return j.State != engine.ReplayRunning })
	if j.State != engine.ReplayDone || j.Total != n || j.Queued != n || j.Done != n {
		t.Fatalf("replay %+v, want done with %d total, processed and queued", j, n)
	}
	eventually(t, 30*time.Second, "all succeeded", func() bool {
		c, _ := r.st.DeliveryCountByStatus(context.Background(), "q")
		return c[store.StatusSucceeded] == n
	})
}

// A replay asked for while an event's first attempt is still under way
// (its delivery has no row yet) is not undone by that attempt's outcome:
// the event is sent again.
func TestReplayDuringTheFirstAttemptWins(t *testing.T) {
	for _, ordering := range []string{"none", "fifo", "key"} {
		t.Run(ordering, func(t *testing.T) { replayDuringFirstAttempt(t, ordering) })
	}
}

func replayDuringFirstAttempt(t *testing.T, ordering string) {
	release := make(chan struct{})
	var calls atomic.Int64
	s := newSink(t, func(int, *http.Request) (int, http.Header) {
		if calls.Add(1) == 1 {
			<-release
		}
		return 200, nil
	})
	r := newRig(t, t.TempDir(), engine.RealClock{}, destYAML("d", s.srv.URL, "    ordering: "+ordering), engine.Options{})
	ev := r.publish(&hookd.Event{Type: "a", Key: "k"})[0]
	eventually(t, 5*time.Second, "the first attempt under way", func() bool { return s.inFlight.Load() == 1 })
	j, err := r.eng.ReplayStart(engine.ReplayFilter{Source: "app"})
	if err != nil {
		t.Fatal(err)
	}
	eventually(t, 5*time.Second, "replay queued", func() bool { j, _ = r.eng.Replay(j.ID); return j.State == engine.ReplayDone })
	if j.Queued != 1 {
		t.Fatalf("replay queued %d, want 1", j.Queued)
	}
	close(release)
	deadline := time.Now().Add(10 * time.Second)
	for len(s.hits()) != 2 {
		if time.Now().After(deadline) {
			d := deliveryOf(t, r, ev, "d")
			t.Fatalf("the event was not sent again: %d requests %+v; delivery %+v; replay %+v", len(s.hits()), s.hits(), d, j)
		}
		time.Sleep(5 * time.Millisecond)
	}
	eventually(t, 5*time.Second, "succeeded", func() bool { return statusOf(t, r, ev, "d") == store.StatusSucceeded })
}

// okSink counts the event ids it answered 200; every nth request gets 503.
type okSink struct {
	*sink
	calls atomic.Int64
	mu    sync.Mutex
	ok    map[string]bool
}

func newOKSink(t *testing.T, failEvery int64) *okSink {
	o := &okSink{ok: map[string]bool{}}
	o.sink = newSink(t, func(_ int, r *http.Request) (int, http.Header) {
		if o.calls.Add(1)%failEvery == 0 {
			return 503, nil
		}
		o.mu.Lock()
		o.ok[r.Header.Get("webhook-id")] = true
		o.mu.Unlock()
		return 200, nil
	})
	return o
}

// waitSettled waits until every event of all was answered 200 and dest
// has nothing pending, retrying or delivering.
func (o *okSink) waitSettled(t *testing.T, r *rig, dest string, all []*hookd.Event) {
	t.Helper()
	eventually(t, 60*time.Second, "every event answered 200 and nothing left to do", func() bool {
		o.mu.Lock()
		n := 0
		for _, ev := range all {
			if o.ok[ev.ID] {
				n++
			}
		}
		o.mu.Unlock()
		if n != len(all) {
			return false
		}
		c, err := r.st.DeliveryCountByStatus(context.Background(), dest)
		return err == nil && c[store.StatusPending]+c[store.StatusRetrying]+c[store.StatusDelivering] == 0
	})
}

// A randomized run: a sink that fails one request in five, publishing in
// bursts, replays of events and of the failed queue at random moments.
// At the end every event was answered 200 at least once and nothing is
// left pending, retrying or delivering.
func TestRandomizedReplaysSettle(t *testing.T) {
	for _, ordering := range []string{"none", "fifo", "key"} {
		t.Run(ordering, func(t *testing.T) {
			s := newOKSink(t, 5)
			extra := fmt.Sprintf("    ordering: %s\n    concurrency: 8\n    retry: {policy: exponential, base: 5ms, cap: 20ms, jitter: 0}", ordering)
			r := newRig(t, t.TempDir(), engine.RealClock{}, destYAML("x", s.srv.URL, extra), engine.Options{MemCap: 64})
			var all []*hookd.Event
			for i := 0; i < 30; i++ {
				evs := make([]*hookd.Event, 10)
				for j := range evs {
					evs[j] = &hookd.Event{Type: "a", Key: fmt.Sprintf("k%d", j%3)}
				}
				all = append(all, r.publish(evs...)...)
				switch i % 7 {
				case 3:
					if _, err := r.eng.ReplayStart(engine.ReplayFilter{Source: "app"}); err != nil {
						t.Fatal(err)
					}
				case 5:
					if _, err := r.eng.ReplayStart(engine.ReplayFilter{Status: store.StatusSucceeded}); err != nil {
						t.Fatal(err)
					}
				}
				time.Sleep(time.Duration(i%4) * time.Millisecond)
			}
			s.waitSettled(t, r, "x", all)
			t.Logf("%s: %d events, %d requests", ordering, len(all), s.calls.Load())
		})
	}
}

// Restarts in the middle of deliveries and replays lose nothing: after
// the last start, every event is answered 200 and nothing is left to do.
func TestRestartsDuringReplaysSettle(t *testing.T) {
	for _, ordering := range []string{"none", "key"} {
		t.Run(ordering, func(t *testing.T) {
			s := newOKSink(t, 4)
			s.delay = time.Millisecond
			dir := t.TempDir()
			y := destYAML("x", s.srv.URL, fmt.Sprintf("    ordering: %s\n    concurrency: 8\n    retry: {policy: exponential, base: 5ms, cap: 20ms, jitter: 0}", ordering))
			var all []*hookd.Event
			var r *rig
			for round := 0; round < 4; round++ {
				r = newRig(t, dir, engine.RealClock{}, y, engine.Options{MemCap: 32})
				for i := 0; i < 8; i++ {
					evs := make([]*hookd.Event, 10)
					for j := range evs {
						evs[j] = &hookd.Event{Type: "a", Key: fmt.Sprintf("k%d", j%4)}
					}
					all = append(all, r.publish(evs...)...)
					if i == 4 {
						if _, err := r.eng.ReplayStart(engine.ReplayFilter{Source: "app"}); err != nil {
							t.Fatal(err)
						}
					}
				}
				if round < 3 {
					r.close() // mid-flight: attempts cut, work left in memory
				}
			}
			s.waitSettled(t, r, "x", all)
			t.Logf("%s: %d events over 4 starts, %d requests", ordering, len(all), s.calls.Load())
		})
	}
}

// delivery.disable_after counts across a restart: a destination that has
// been failing for a while is disabled on time by the next process, not
// given a fresh clock.
func TestDisableAfterClockSurvivesARestart(t *testing.T) {
	s := newSink(t, func(int, *http.Request) (int, http.Header) { return 503, nil })
	clk := engine.NewFakeClock(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	dir := t.TempDir()
	yml := destYAML("down", s.srv.URL, `    retry: {policy: schedule, schedule: ["1m", "1m", "1m", "1m", "1m"]}`)
	opt := engine.Options{DisableAfter: 3 * time.Minute}
	r := newRig(t, dir, clk, yml, opt)
	ev := r.publish(&hookd.Event{Type: "a"})[0]
	eventually(t, 5*time.Second, "first attempt", func() bool { return statusOf(t, r, ev, "down") == store.StatusRetrying })
	stepToNextAttempt(t, clk, r, ev, "down") // failing for 1m: recorded
	eventually(t, 5*time.Second, "the run of failures recorded", func() bool {
		ds, _ := r.st.DestinationList(context.Background())
		return len(ds) == 1 && ds[0].Name == "down" && ds[0].FailingSince.Equal(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	})
	r.close()

	r = newRig(t, dir, clk, yml, opt)
	for i := 0; ; i++ {
		if v, _ := r.eng.Destination("down"); v.Disabled {
			if !strings.Contains(v.DisabledReason, "since 2026-01-01T00:00:00Z") {
				t.Fatalf("reason %q, want the first failure's time", v.DisabledReason)
			}
			if i != 2 {
				t.Fatalf("disabled after %d more attempts, want 2 (3 minutes since the first failure)", i)
			}
			t.Logf("disabled after the restart, %d attempts later: %s", i, v.DisabledReason)
			break
		}
		if i > 5 {
			t.Fatal("never disabled")
		}
		stepToNextAttempt(t, clk, r, ev, "down")
	}
	// Enabled, the clock starts again: nothing is left recorded.
	if _, err := r.eng.DestinationEnable(context.Background(), "down"); err != nil {
		t.Fatal(err)
	}
	eventually(t, 5*time.Second, "no record left", func() bool {
		ds, _ := r.st.DestinationList(context.Background())
		return len(ds) == 0
	})
}

// When the bodies waiting for routing pass InboxBytes, events wait without
// theirs: body filters still see it (read back from the store) and every
// destination still receives the exact body.
func TestInboxBoundKeepsBodies(t *testing.T) {
	all, big := newSink(t, nil), newSink(t, nil)
	yml := fmt.Sprintf(`
destinations:
  - {name: all, type: http, url: %s}
  - {name: big, type: http, url: %s}
subscriptions:
  - {destination: all}
  - {destination: big, filter: {path: amount, op: gt, value: 100}}
`, all.srv.URL, big.srv.URL)
	r := newRig(t, t.TempDir(), engine.RealClock{}, yml, engine.Options{InboxBytes: 1})
	var evs []*hookd.Event
	for i := range 20 {
		evs = append(evs, &hookd.Event{Type: "a", Body: []byte(fmt.Sprintf(`{"amount":%d,"n":%d}`, i*10, i))})
	}
	r.publish(evs...)
	eventually(t, 10*time.Second, "every event at all, the big ones at big", func() bool {
		return len(all.ids()) == 20 && len(big.ids()) == 9 // amounts 110 … 190
	})
	want := map[string]string{}
	for _, ev := range evs {
		want[ev.ID] = string(ev.Body)
	}
	for _, s := range []*sink{all, big} {
		for _, h := range s.hits() {
			if h.body != want[h.id] {
				t.Fatalf("%s got body %q, want %q", h.id, h.body, want[h.id])
			}
		}
	}
}
