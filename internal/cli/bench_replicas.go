package cli

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"text/tabwriter"
	"time"

	"hookd/internal/loadgen"
)

// The replicas' own counters, read from their /metrics at the edges of
// each measured window: how each one's group commit went.
const (
	mCommitEvents   = "hookd_store_commit_events"
	mCommitDuration = "hookd_store_commit_duration_seconds"
	mAttempts       = "hookd_delivery_attempts_total"
)

// scrapeTimeout bounds one read of a replica's /metrics.
const scrapeTimeout = 5 * time.Second

// counters are the figures bench reads from one replica's /metrics.
type counters struct {
	ok bool
	// commits, events and commitSeconds are the group commits, the
	// requests they took and the time they took, since the start.
	commits, events, commitSeconds float64
	// delivered counts attempts that succeeded, to every destination.
	delivered float64
}

// scrapeCounters reads the counters of the hookd at addr.
func scrapeCounters(ctx context.Context, client *http.Client, addr string) counters {
	ctx, cancel := context.WithTimeout(ctx, scrapeTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+"/metrics", nil)
	if err != nil {
		return counters{}
	}
	req.Header.Set("Accept", "text/plain")
	resp, err := client.Do(req)
	if err != nil {
		return counters{}
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return counters{}
	}
	return parseCounters(resp.Body)
}

// parseCounters reads the counters from Prometheus' text format.
func parseCounters(r io.Reader) counters {
	c := counters{ok: true}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || line[0] == '#' {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		if i < 0 {
			continue
		}
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if err != nil {
			continue
		}
		series := line[:i]
		name, labels, _ := strings.Cut(series, "{")
		switch name {
		case mCommitEvents + "_count":
			c.commits = v
		case mCommitEvents + "_sum":
			c.events = v
		case mCommitDuration + "_sum":
			c.commitSeconds = v
		case mAttempts:
			if strings.Contains(labels, `outcome="succeeded"`) {
				c.delivered += v
			}
		}
	}
	return c
}

// windowCounters collects the counters of every replica at the edges of
// each measured window of the hookd target.
type windowCounters struct {
	addrs  []string
	client *http.Client

	mu sync.Mutex
	// windows holds, per window of hookd, each replica's counters at its
	// start and end.
	windows []window
}

type window struct {
	start, end []counters
	elapsed    time.Duration
	began      time.Time
}

func newWindowCounters(replicas []*loadgen.Child) *windowCounters {
	w := &windowCounters{client: &http.Client{Timeout: scrapeTimeout}}
	for _, r := range replicas {
		w.addrs = append(w.addrs, r.Addr)
	}
	return w
}

// scrapeAll reads every replica at once.
func (w *windowCounters) scrapeAll() []counters {
	out := make([]counters, len(w.addrs))
	var wg sync.WaitGroup
	for i, a := range w.addrs {
		wg.Go(func() { out[i] = scrapeCounters(context.Background(), w.client, a) })
	}
	wg.Wait()
	return out
}

// onWindow is the hookd target's OnWindow.
func (w *windowCounters) onWindow(start bool) {
	c := w.scrapeAll()
	w.mu.Lock()
	defer w.mu.Unlock()
	if start {
		w.windows = append(w.windows, window{start: c, began: time.Now()})
		return
	}
	if n := len(w.windows); n > 0 && w.windows[n-1].end == nil {
		w.windows[n-1].end = c
		w.windows[n-1].elapsed = time.Since(w.windows[n-1].began)
	}
}

// commitRow is one replica's group commit over one window.
type commitRow struct {
	replica          int
	commitsPerSecond float64
	eventsPerCommit  float64
	msPerCommit      float64
	writerBusy       float64 // share of the window inside a commit
	deliveredPerSec  float64
	known            bool
}

func (w window) rows() []commitRow {
	var out []commitRow
	for i := range w.start {
		a, b := w.start[i], counters{}
		if i < len(w.end) {
			b = w.end[i]
		}
		r := commitRow{replica: i + 1, known: a.ok && b.ok && w.elapsed > 0}
		if r.known {
			secs := w.elapsed.Seconds()
			commits := b.commits - a.commits
			r.commitsPerSecond = commits / secs
			if commits > 0 {
				r.eventsPerCommit = (b.events - a.events) / commits
				r.msPerCommit = 1000 * (b.commitSeconds - a.commitSeconds) / commits
			}
			r.writerBusy = (b.commitSeconds - a.commitSeconds) / secs
			r.deliveredPerSec = (b.delivered - a.delivered) / secs
		}
		out = append(out, r)
	}
	return out
}

// writeCommits writes each replica's group commit in each window of hookd,
// labelled with the connections and round of the results (the hookd runs,
// in order). deliveries adds the attempts that succeeded per second.
func (w *windowCounters) writeCommits(out io.Writer, results []*loadgen.Result, deliveries bool) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	var hookdRuns []*loadgen.Result
	for _, r := range results {
		if r.Server == "hookd" {
			hookdRuns = append(hookdRuns, r)
		}
	}
	var buf bytes.Buffer
	tw := tabwriter.NewWriter(&buf, 0, 8, 2, ' ', 0)
	head := "connections\tround\treplica\tcommits/s\tevents/commit\tms/commit\twriter busy\t"
	if deliveries {
		head += "delivered/s\t"
	}
	fmt.Fprintln(tw, head)
	rounds := map[int]int{}
	for k, win := range w.windows {
		conns, round := 0, 0
		if k < len(hookdRuns) {
			conns = hookdRuns[k].Connections
			rounds[conns]++
			round = rounds[conns]
		}
		for _, r := range win.rows() {
			if !r.known {
				fmt.Fprintf(tw, "%d\t%d\t%d\t-\t-\t-\t-\t\n", conns, round, r.replica)
				continue
			}
			fmt.Fprintf(tw, "%d\t%d\t%d\t%.0f\t%.1f\t%.2f\t%.0f%%\t", conns, round, r.replica,
				r.commitsPerSecond, r.eventsPerCommit, r.msPerCommit, 100*r.writerBusy)
			if deliveries {
				fmt.Fprintf(tw, "%.0f\t", r.deliveredPerSec)
			}
			fmt.Fprintln(tw)
		}
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	for line := range strings.Lines(buf.String()) {
		if _, err := io.WriteString(out, strings.TrimRight(line, " \n")+"\n"); err != nil {
			return err
		}
	}
	return nil
}
