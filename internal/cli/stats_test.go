package cli

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"hookd/internal/config"
)

// statTotals is what GET /api/v1/stats shows, summed over its points:
// events per source, and attempt outcomes per destination.
type statTotals struct {
	events   map[string]int
	outcomes map[string]health // attempts = succeeded + retried + failed
	// latency tells, per destination, whether every point with an
	// attempt has a p50 and a p99, and no point without one has.
	latency map[string]bool
}

func (s statTotals) String() string {
	return fmt.Sprintf("events %v, outcomes %v, latency %v", s.events, s.outcomes, s.latency)
}

func (s statTotals) equal(o statTotals) bool { return s.String() == o.String() }

func statsOf(t *testing.T, base, query string) statTotals {
	t.Helper()
	code, v := apiDo(t, "GET", base+"/api/v1/stats?"+query, "tok", "")
	if code != http.StatusOK {
		t.Fatalf("GET stats?%s: HTTP %d %v", query, code, v)
	}
	points, _ := v["points"].(float64)
	out := statTotals{events: map[string]int{}, outcomes: map[string]health{}, latency: map[string]bool{}}
	series := func(m map[string]any, k string) []any {
		s, _ := m[k].([]any)
		if len(s) != int(points) {
			t.Fatalf("GET stats?%s: %s has %d points, want %v", query, k, len(s), points)
		}
		return s
	}
	sum := func(s []any) int {
		n := 0
		for _, x := range s {
			f, _ := x.(float64)
			n += int(f)
		}
		return n
	}
	srcs, _ := v["sources"].([]any)
	for _, x := range srcs {
		m, _ := x.(map[string]any)
		name, _ := m["source"].(string)
		out.events[name] = sum(series(m, "events"))
	}
	// hookd's own alerts (a failed delivery raises one) are events of the
	// source hookd, stored when the alert is: not part of the run counted.
	delete(out.events, "hookd")
	dsts, _ := v["destinations"].([]any)
	for _, x := range dsts {
		m, _ := x.(map[string]any)
		name, _ := m["destination"].(string)
		s, r, f := series(m, "succeeded"), series(m, "retried"), series(m, "failed")
		h := health{succeeded: sum(s), retried: sum(r), failed: sum(f)}
		h.attempts = h.succeeded + h.retried + h.failed
		out.outcomes[name] = h
		p50, p99 := series(m, "p50_ms"), series(m, "p99_ms")
		ok := true
		for i := range s {
			any := s[i].(float64)+r[i].(float64)+f[i].(float64) > 0
			ok = ok && (p50[i] != nil) == any && (p99[i] != nil) == any
		}
		out.latency[name] = ok
	}
	return out
}

// GET /api/v1/stats counts a known run exactly, in every window: the
// events each source stored (a duplicate is not one) and the outcomes of
// a destination's attempts, with their latency; a restart on the same data
// directory keeps them.
func TestStatsCountAKnownRun(t *testing.T) {
	sink := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		switch {
		case strings.Contains(string(b), `"bad"`):
			w.WriteHeader(http.StatusInternalServerError)
		case strings.Contains(string(b), `"fatal"`):
			w.WriteHeader(http.StatusBadRequest)
		}
	}))
	t.Cleanup(sink.Close)
	dir := t.TempDir()
	cfg := func() *config.Config {
		c, err := config.Parse([]byte(fmt.Sprintf(`admin: {tokens: [tok]}
egress: {allow_private: ["127.0.0.0/8"]}
sources:
  - {name: app, event: {id: "json:id", type: "json:type"}}
  - {name: quiet, event: {id: "json:id", type: "json:type"}}
destinations:
  - {name: orders, type: http, url: %q, retry: {policy: schedule, schedule: ["1h"]}}
subscriptions:
  - {source: app, destination: orders}
`, sink.URL)))
		if err != nil {
			t.Fatal(err)
		}
		c.Storage.Path = dir
		return c
	}
	base, stop := runApp(t, cfg())
	types := []string{"good", "good", "bad", "good", "fatal", "bad", "good"}
	for i, typ := range types {
		postEvent(t, base, "app", fmt.Sprintf(`{"id": "e%d", "type": %q}`, i, typ))
	}
	postEvent(t, base, "app", `{"id": "e0", "type": "good"}`) // a duplicate
	for i := range 2 {
		postEvent(t, base, "quiet", fmt.Sprintf(`{"id": "q%d", "type": "x"}`, i))
	}
	want := statTotals{
		events:   map[string]int{"app": len(types), "quiet": 2},
		outcomes: map[string]health{"orders": {attempts: 7, succeeded: 4, retried: 2, failed: 1}},
		latency:  map[string]bool{"orders": true},
	}
	verbsWait(t, 10*time.Second, "seven attempts counted", func() bool { return healthOf(t, base, "orders").attempts == 7 })
	for _, w := range []string{"window=1h", "window=1d", "window=1w", ""} {
		got := statsOf(t, base, w)
		if !got.equal(want) {
			t.Errorf("stats?%s: got %s, want %s", w, got, want)
		}
		t.Logf("stats?%s: %s (sent %d events to app, 1 duplicate, 2 to quiet)", w, got, len(types))
	}
	only := statTotals{events: map[string]int{"quiet": 2}, outcomes: map[string]health{}, latency: map[string]bool{}}
	if got := statsOf(t, base, "source=quiet&destination=none"); !got.equal(only) {
		t.Errorf("stats?source=quiet&destination=none: got %s, want %s", got, only)
	}
	if code, v := apiDo(t, "GET", base+"/api/v1/stats?window=2h", "tok", ""); code != http.StatusBadRequest {
		t.Errorf("stats?window=2h: HTTP %d %v, want 400", code, v)
	}

	stop()
	base, _ = runApp(t, cfg())
	if got := statsOf(t, base, "window=1h"); !got.equal(want) {
		t.Errorf("after a restart: got %s, want %s", got, want)
	}
}

// On PostgreSQL, GET /api/v1/stats counts the events and attempts of every
// replica, whichever one is asked.
func TestStatsAcrossReplicas(t *testing.T) {
	const perReplica = 6
	bases := twoReplicasWithEvents(t, "s", perReplica)
	want := statTotals{
		events:   map[string]int{"shop": 2 * perReplica},
		outcomes: map[string]health{"witness": {attempts: 2 * perReplica, succeeded: 2 * perReplica}},
		latency:  map[string]bool{"witness": true},
	}
	for r, base := range bases {
		verbsWait(t, 10*time.Second, fmt.Sprintf("replica %d to count every attempt", r), func() bool { return healthOf(t, base, "witness").attempts == 2*perReplica })
		if got := statsOf(t, base, "window=1d"); !got.equal(want) {
			t.Errorf("replica %d: got %s, want %s", r, got, want)
		}
	}
}
