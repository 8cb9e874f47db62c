package admin_test

import (
	"fmt"
	"testing"
	"time"

	"hookd/internal/admin"
)

// A week of many sources holds more rows than one count listing returns:
// GET /api/v1/stats reads them all, the newest included, and says when a
// single step held more than it could read.
func TestStatsPagesThroughCounts(t *testing.T) {
	h := newHarness(t)
	now := time.Now().UTC()
	want := map[string]int64{}
	for s := range 3 {
		src := fmt.Sprintf("s%d", s)
		for m := range 4 {
			e := newEvent(src, "t", fmt.Sprintf("%s-%d", src, m), now.Add(-time.Duration(m)*time.Minute), `{}`)
			h.insert(t, e, 0)
			want[src]++
		}
	}
	admin.SetStatsPage(t, 5)
	var st struct {
		Sources []struct {
			Source string  `json:"source"`
			Events []int64 `json:"events"`
		} `json:"sources"`
		Points    int  `json:"points"`
		Truncated bool `json:"truncated"`
	}
	h.getOK(t, "/api/v1/stats?window=1h", &st)
	got := map[string]int64{}
	for _, s := range st.Sources {
		for _, n := range s.Events {
			got[s.Source] += n
		}
		if s.Events[st.Points-1] != 1 {
			t.Errorf("source %s: newest point %d, want 1", s.Source, s.Events[st.Points-1])
		}
	}
	if fmt.Sprint(got) != fmt.Sprint(want) || st.Truncated {
		t.Fatalf("events per source: got %v (truncated %v), want %v", got, st.Truncated, want)
	}
	// Three sources in one step, two rows a page: the step cannot be
	// read whole.
	admin.SetStatsPage(t, 2)
	h.getOK(t, "/api/v1/stats?window=1h", &st)
	if !st.Truncated {
		t.Fatal("a step holding more rows than a page: truncated false, want true")
	}
}
