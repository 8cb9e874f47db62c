package cli

import (
	"strings"
	"testing"
	"time"
)

// The bench reads each replica's group commit and deliveries from its
// /metrics, and turns two readings into rates over the window.
func TestBenchCommitCounters(t *testing.T) {
	t.Parallel()
	at := func(commits, events, secs, okA, okB string) counters {
		return parseCounters(strings.NewReader(`# HELP hookd_store_commit_events requests one commit took
# TYPE hookd_store_commit_events histogram
hookd_store_commit_events_bucket{le="+Inf"} ` + commits + `
hookd_store_commit_events_sum ` + events + `
hookd_store_commit_events_count ` + commits + `
hookd_store_commit_duration_seconds_sum ` + secs + `
hookd_store_commit_duration_seconds_count ` + commits + `
hookd_delivery_attempts_total{destination="a",outcome="succeeded"} ` + okA + `
hookd_delivery_attempts_total{destination="b",outcome="succeeded"} ` + okB + `
hookd_delivery_attempts_total{destination="a",outcome="retrying"} 999
`))
	}
	w := window{
		start:   []counters{at("100", "1000", "0.5", "10", "0")},
		end:     []counters{at("300", "5000", "1.5", "1010", "1000")},
		elapsed: 2 * time.Second,
	}
	rows := w.rows()
	if len(rows) != 1 || !rows[0].known {
		t.Fatalf("rows = %+v, want one known", rows)
	}
	r := rows[0]
	if r.commitsPerSecond != 100 || r.eventsPerCommit != 20 || r.msPerCommit != 5 || r.writerBusy != 0.5 || r.deliveredPerSec != 1000 {
		t.Errorf("row = %+v, want 100 commits/s, 20 events/commit, 5 ms/commit, writer busy 0.5, 1000 delivered/s", r)
	}
	w.end[0].ok = false
	if w.rows()[0].known {
		t.Error("a replica whose /metrics could not be read has a known row")
	}
}
