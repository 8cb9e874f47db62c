package loadgen

import (
	"context"
	"fmt"
	"io"
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
}

// Order describes the order in which Compare runs, for the report.
const Order = "at each connection level, the targets in turn (bare first, then hookd), on fresh connections with the same bodies"

// Compare measures every target at every concurrency level: for each
// level, each target in turn, with the same number of connections and the
// same bodies. It returns one result per run, level by level.
func Compare(ctx context.Context, targets []Target, o Options) ([]*Result, error) {
	var out []*Result
	first := true
	for i, conns := range o.Connections {
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
				Addr: t.Addr, Path: t.Path, Connections: conns,
				Warmup: o.Warmup, Duration: o.Duration, Drain: o.Drain, DialTimeout: o.DialTimeout,
				RunID:           o.RunID + "-" + strconv.Itoa(i),
				DuplicateHeader: o.DuplicateHeader,
				ServerPID:       t.PID,
			})
			if err != nil {
				return out, fmt.Errorf("%s at %d connections: %w", t.Name, conns, err)
			}
			res.Server = t.Name
			out = append(out, res)
		}
	}
	return out, nil
}
