package loadgen

import (
	"context"
	"fmt"
	"io"
	"slices"
	"strconv"
	"time"
)

// Target is one server to measure.
type Target struct {
	// Name appears in the report, such as "bare" or "hookd".
	Name string
	// Addr is the server's host:port.
	Addr string
	// Path is the request path. Default "/".
	Path string
	// PID, when set, is the server's process id, for its CPU use.
	PID int
	// Addrs and PIDs, when set, replace Addr and PID: replicas of one
	// server sharing the connections round-robin (see Config.Addrs).
	Addrs []string
	PIDs  []int
	// OnWindow is passed to every run of the target (see Config).
	OnWindow func(start bool)
}

// Options configures Compare.
type Options struct {
	// Connections lists the concurrency levels, in the order to run them.
	Connections []int
	// Warmup, Duration, Drain, DialTimeout and DuplicateHeader are passed
	// to every run (see Config).
	Warmup, Duration, Drain, DialTimeout time.Duration
	DuplicateHeader                      string
	// Settle is a pause between runs, so that one server's aftermath
	// (a checkpoint, a garbage collection) does not fall into the next
	// run. Default none.
	Settle time.Duration
	// RunID prefixes the event ids; each level appends its index, so that
	// every level sends new ids and every target at one level the same.
	RunID string
	// Progress, when set, gets a line as each run starts.
	Progress io.Writer
	// Rounds repeats the targets in turn at each level (bare, hookd, bare,
	// hookd, …), so that a disturbance of the machine falls on both and
	// the median ratio of the rounds can be reported. Default 1.
	Rounds int
}

// Order describes the order in which Compare runs, for the report.
const Order = "at each connection level, the targets in turn (bare first, then hookd), repeated for each round, on fresh connections with the same bodies"

// Compare measures every target at every concurrency level: for each
// level, each target in turn, with the same number of connections and the
// same bodies. It returns one result per run, level by level.
func Compare(ctx context.Context, targets []Target, o Options) ([]*Result, error) {
	var out []*Result
	first := true
	rounds := max(o.Rounds, 1)
	for i, conns := range o.Connections {
		for round := range rounds {
			for _, t := range targets {
				if !first {
					if err := sleep(ctx, o.Settle); err != nil {
						return out, err
					}
				}
				first = false
				if o.Progress != nil {
					fmt.Fprintf(o.Progress, "bench: %s at %d connections: warmup %s, then %s measured\n", t.Name, conns, o.Warmup, o.Duration)
				}
				res, err := Run(ctx, Config{
					Addr: t.Addr, Addrs: t.Addrs, Path: t.Path, Connections: conns,
					Warmup: o.Warmup, Duration: o.Duration, Drain: o.Drain, DialTimeout: o.DialTimeout,
					RunID:           o.RunID + "-" + strconv.Itoa(i) + "r" + strconv.Itoa(round),
					DuplicateHeader: o.DuplicateHeader,
					ServerPID:       t.PID,
					ServerPIDs:      t.PIDs,
					OnWindow:        t.OnWindow,
				})
				if err != nil {
					return out, fmt.Errorf("%s at %d connections: %w", t.Name, conns, err)
				}
				res.Server = t.Name
				out = append(out, res)
			}
		}
	}
	return out, nil
}

// MedianRatios returns, for each concurrency level in the order first seen,
// the median over rounds of each non-first server's req/s relative to the
// first server's run just before it.
func MedianRatios(results []*Result) []LevelRatio {
	var (
		out  []LevelRatio
		idx  = map[[2]any]int{}
		base *Result
	)
	for _, r := range results {
		if r.Server == results[0].Server {
			base = r
			continue
		}
		if base == nil || base.RPS() <= 0 {
			continue
		}
		k := [2]any{r.Connections, r.Server}
		i, ok := idx[k]
		if !ok {
			i = len(out)
			idx[k] = i
			out = append(out, LevelRatio{Connections: r.Connections, Server: r.Server})
		}
		out[i].Ratios = append(out[i].Ratios, r.RPS()/base.RPS())
	}
	for i := range out {
		rs := slices.Clone(out[i].Ratios)
		slices.Sort(rs)
		n := len(rs)
		out[i].Median = rs[n/2]
		if n%2 == 0 {
			out[i].Median = (rs[n/2-1] + rs[n/2]) / 2
		}
	}
	return out
}

// LevelRatio is the ratios of one server at one level, round by round.
type LevelRatio struct {
	Connections int
	Server      string
	Ratios      []float64
	Median      float64
}
