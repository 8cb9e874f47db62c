package admin

import (
	"context"
	"net/http"
	"time"

	"hookd"
	"hookd/internal/httpserver"
	"hookd/internal/store"
)

// statsWindows are the windows of GET /api/v1/stats and the step of each:
// how long one point covers.
var statsWindows = map[string]struct{ span, step time.Duration }{
	"1h": {time.Hour, time.Minute},
	"1d": {24 * time.Hour, 15 * time.Minute},
	"1w": {7 * 24 * time.Hour, time.Hour},
}

// maxStatsName bounds the source= and destination= filters.
const maxStatsName = 256

// stats is the body of GET /api/v1/stats: series of Points points, the
// first starting at Start, each covering StepSeconds; the last point is
// the step now is in (still filling). A series is listed when it has any
// count in the window.
type stats struct {
	Window       string             `json:"window"`
	Start        time.Time          `json:"start"`
	StepSeconds  int64              `json:"step_seconds"`
	Points       int                `json:"points"`
	Sources      []sourceSeries     `json:"sources"`
	Destinations []destinationStats `json:"destinations"`
	// Truncated: one step held more series than a listing returns
	// (store.MaxAttemptMinutes), so some are missing from it.
	Truncated bool `json:"truncated,omitempty"`
}

// statsPage is the rows asked of one count listing; tests lower it.
var statsPage = store.MaxAttemptMinutes

// pageCounts reads a count listing whole: the store returns at most
// statsPage rows, oldest step first, and a week of many sources or
// destinations holds more. The next page starts at the last step seen,
// whose rows are read again whole. It reports truncated when a single
// step holds more rows than a page.
func pageCounts[T any](ctx context.Context, since time.Time, list func(since time.Time) ([]T, error), minute func(T) time.Time) (out []T, truncated bool, err error) {
	for {
		rows, err := list(since)
		if err != nil {
			return nil, false, err
		}
		if len(rows) < statsPage {
			return append(out, rows...), truncated, nil
		}
		last := minute(rows[len(rows)-1])
		cut := len(rows)
		for cut > 0 && minute(rows[cut-1]).Equal(last) {
			cut--
		}
		if cut == 0 {
			return append(out, rows...), true, nil
		}
		out = append(out, rows[:cut]...)
		since = last
		if err := ctx.Err(); err != nil {
			return nil, false, err
		}
	}
}

// sourceSeries is the events a source stored per point.
type sourceSeries struct {
	Source string  `json:"source"`
	Events []int64 `json:"events"`
}

// destinationStats is the attempts of a destination per point, by outcome,
// and the estimated median and 99th percentile of their durations in
// milliseconds (null for a point with no attempt).
type destinationStats struct {
	Destination string     `json:"destination"`
	Succeeded   []int64    `json:"succeeded"`
	Retried     []int64    `json:"retried"`
	Failed      []int64    `json:"failed"`
	P50MS       []*float64 `json:"p50_ms"`
	P99MS       []*float64 `json:"p99_ms"`
}

// getStats serves GET /api/v1/stats?window=1h|1d|1w[&source=][&destination=].
func (a *API) getStats(w http.ResponseWriter, r *http.Request) error {
	q := r.URL.Query()
	name := q.Get("window")
	if name == "" {
		name = "1h"
	}
	win, ok := statsWindows[name]
	if !ok {
		return hookd.Errorf(hookd.EInvalid, "invalid window %q (want 1h, 1d or 1w)", name)
	}
	src, dst := q.Get("source"), q.Get("destination")
	if len(src) > maxStatsName || len(dst) > maxStatsName {
		return hookd.Errorf(hookd.EInvalid, "source and destination are at most %d bytes", maxStatsName)
	}
	n := int(win.span / win.step)
	start := time.Now().UTC().Truncate(win.step).Add(-time.Duration(n-1) * win.step)
	until := start.Add(time.Duration(n) * win.step)
	out := stats{Window: name, Start: start, StepSeconds: int64(win.step / time.Second), Points: n,
		Sources: []sourceSeries{}, Destinations: []destinationStats{}}
	point := func(t time.Time) (int, bool) {
		i := int(t.Sub(start) / win.step)
		return i, t.Compare(start) >= 0 && i < n
	}

	events, cutE, err := pageCounts(r.Context(), start, func(since time.Time) ([]*store.EventMinute, error) {
		return a.st.EventCountList(r.Context(), &store.EventCountListParams{Source: src, Since: since, Until: until, Step: win.step, Limit: statsPage})
	}, func(m *store.EventMinute) time.Time { return m.Minute })
	if err != nil {
		return err
	}
	bySource := map[string]int{}
	for _, m := range events {
		i, ok := point(m.Minute)
		if !ok {
			continue
		}
		k, seen := bySource[m.Source]
		if !seen {
			k = len(out.Sources)
			bySource[m.Source] = k
			out.Sources = append(out.Sources, sourceSeries{Source: m.Source, Events: make([]int64, n)})
		}
		out.Sources[k].Events[i] += m.Events
	}

	attempts, cutA, err := pageCounts(r.Context(), start, func(since time.Time) ([]*store.AttemptMinute, error) {
		return a.st.AttemptCountList(r.Context(), &store.AttemptCountListParams{Destination: dst, Since: since, Until: until, Step: win.step, Limit: statsPage})
	}, func(m *store.AttemptMinute) time.Time { return m.Minute })
	if err != nil {
		return err
	}
	out.Truncated = cutE || cutA
	byDest := map[string]int{}
	var hist [][]store.LatencyHistogram
	for _, m := range attempts {
		i, ok := point(m.Minute)
		if !ok {
			continue
		}
		k, seen := byDest[m.Destination]
		if !seen {
			k = len(out.Destinations)
			byDest[m.Destination] = k
			out.Destinations = append(out.Destinations, destinationStats{Destination: m.Destination,
				Succeeded: make([]int64, n), Retried: make([]int64, n), Failed: make([]int64, n),
				P50MS: make([]*float64, n), P99MS: make([]*float64, n)})
			hist = append(hist, make([]store.LatencyHistogram, n))
		}
		d := &out.Destinations[k]
		d.Succeeded[i] += m.Succeeded
		d.Retried[i] += m.Retried
		d.Failed[i] += m.Failed
		hist[k][i] = hist[k][i].Plus(m.Latency)
	}
	ms := func(h store.LatencyHistogram, q float64) *float64 {
		v, ok := h.Quantile(q)
		if !ok {
			return nil
		}
		f := float64(v) / float64(time.Millisecond)
		return &f
	}
	for k := range out.Destinations {
		for i, h := range hist[k] {
			out.Destinations[k].P50MS[i] = ms(h, 0.5)
			out.Destinations[k].P99MS[i] = ms(h, 0.99)
		}
	}
	httpserver.WriteJSON(w, http.StatusOK, out)
	return nil
}
