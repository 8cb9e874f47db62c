package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"hookd/internal/config"
	"hookd/internal/loadgen"
)

type benchE2EFlags struct {
	connections      int
	concurrency      int
	warmup, duration time.Duration
	procs            int
	dir              string
	keep             bool
	// postgres, replicas and tracing are as bench's.
	postgres string
	replicas int
	tracing  bool
	// transform is a JavaScript file the subscription runs on every
	// delivery.
	transform string
}

func newBenchE2ECmd() *cobra.Command {
	var f benchE2EFlags
	cmd := &cobra.Command{
		Use:   "e2e",
		Short: "Measure end-to-end events/s, from ingest to a local sink, against a bare ceiling",
		Long: `Measure hookd end to end: events received, stored, routed and delivered.

In one run, e2e starts a bare net/http server (a child process: reads each
body, answers 200) and a real 'hookd serve' on a fresh SQLite data directory
with one source, 'bench', one http destination and a subscription of every
event to it. The destination is a sink in this process that answers 200 and
counts each webhook-id it receives.

It first drives the bare server directly with the given connections (the
client→server ceiling of this machine), then drives hookd's ingest the same
way, and counts the deliveries that reach the sink during the measured
window: events/s end to end, and its ratio to the ceiling. It then waits
until every acknowledged event has reached the sink and reports the drain
time and duplicates. Nothing here asserts speed; e2e reports.

With --postgres, hookd stores into a fresh schema of that database; with
--replicas N as well, N 'hookd serve' processes share it, the ingest
connections are spread over them round-robin, and each one's part is shown:
its ingest, its CPU, its group commit and the deliveries it made (from its
/metrics).`,
		Example: `  hookd bench e2e
  hookd bench e2e --connections 64 --duration 20s
  hookd bench e2e --transform transform.js
  hookd bench e2e --postgres postgres://postgres@127.0.0.1:5432/test --replicas 2`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error { return runBenchE2E(cmd, f) },
	}
	fl := cmd.Flags()
	fl.IntVar(&f.connections, "connections", 64, "keep-alive connections driving ingest (and the ceiling)")
	fl.IntVar(&f.concurrency, "concurrency", 64, "the destination's concurrency: attempts in flight to the sink")
	fl.DurationVar(&f.warmup, "warmup", 2*time.Second, "warmup of each run, not counted")
	fl.DurationVar(&f.duration, "duration", 10*time.Second, "measured time of each run")
	fl.IntVar(&f.procs, "procs", 0, "GOMAXPROCS of the servers (0 leaves it unset)")
	fl.StringVar(&f.dir, "dir", "", "where to create the temporary directory (default the system temp dir)")
	fl.BoolVar(&f.keep, "keep", false, "keep the temporary directory")
	fl.StringVar(&f.postgres, "postgres", "", "measure hookd on PostgreSQL: the DSN of a database where bench creates (and drops) a schema of its own")
	fl.IntVar(&f.replicas, "replicas", 1, "hookd processes on the one PostgreSQL schema (needs --postgres); the connections are spread over them round-robin")
	fl.StringVar(&f.transform, "transform", "", "a JavaScript transformation file (function transform(event)) the subscription runs on every delivery; it must return the event, not null")
	fl.BoolVar(&f.tracing, "tracing", false, "turn hookd's tracing on (sample ratio 1), exporting every span to an OTLP receiver in the bench's process")
	return cmd
}

// countingSink answers 200 to every delivery and counts them.
type countingSink struct {
	n    atomic.Int64
	mu   sync.Mutex
	seen map[string]int
}

func (s *countingSink) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	io.Copy(io.Discard, r.Body)
	id := r.Header.Get("webhook-id")
	s.mu.Lock()
	s.seen[id]++
	s.mu.Unlock()
	s.n.Add(1)
	w.WriteHeader(http.StatusOK)
}

func (s *countingSink) distinct() (distinct, dups int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, c := range s.seen {
		distinct++
		dups += int64(c - 1)
	}
	return distinct, dups
}

func runBenchE2E(cmd *cobra.Command, f benchE2EFlags) error {
	stdout, stderr := cmd.OutOrStdout(), cmd.ErrOrStderr()
	if f.connections < 1 || f.connections > 50000 || f.concurrency < 1 || f.concurrency > 10000 {
		return errors.New("--connections must be 1..50000 and --concurrency 1..10000")
	}
	if f.duration <= 0 || f.warmup < 0 {
		return errors.New("--duration must be positive and --warmup not negative")
	}
	if err := checkReplicas(f.replicas, f.postgres); err != nil {
		return err
	}
	var js string
	if f.transform != "" {
		b, err := os.ReadFile(f.transform)
		if err != nil {
			return fmt.Errorf("--transform: %w", err)
		}
		if err := config.ValidTransform(string(b)); err != nil {
			return fmt.Errorf("--transform %s: %w", f.transform, err)
		}
		js = string(b)
	}
	ctx, stop := signal.NotifyContext(cmdContext(cmd), os.Interrupt, syscall.SIGTERM)
	defer stop()
	exe, err := os.Executable()
	if err != nil {
		return fmt.Errorf("find the hookd binary to re-execute: %w", err)
	}
	tmp, err := os.MkdirTemp(f.dir, "hookd-bench-e2e-")
	if err != nil {
		return err
	}
	defer func() {
		if f.keep {
			fmt.Fprintf(stderr, "bench: kept %s\n", tmp)
			return
		}
		os.RemoveAll(tmp)
	}()

	sink := &countingSink{seen: map[string]int{}}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	sinkSrv := &http.Server{Handler: sink, ReadHeaderTimeout: 5 * time.Second}
	go sinkSrv.Serve(ln)
	defer sinkSrv.Close()

	dataDir := filepath.Join(tmp, "data")
	cfgPath := filepath.Join(tmp, "hookd.yaml")
	base := benchConfig(dataDir, randomHex(16))
	store := "SQLite in " + dataDir
	if f.postgres != "" {
		pg, err := newBenchSchema(ctx, f.postgres)
		if err != nil {
			return err
		}
		defer func() {
			if !f.keep {
				pg.drop()
			}
		}()
		base = benchConfigOn(pg.storageYAML(), randomHex(16))
		store = "PostgreSQL schema " + pg.schema
	}
	cfg := string(base) + fmt.Sprintf(`egress:
  allow_private: ["127.0.0.0/8"]
destinations:
  - name: sink
    type: http
    url: %s
    concurrency: %d
subscriptions:
  - source: bench
    destination: sink
`, yamlString("http://"+ln.Addr().String()+"/sink"), f.concurrency)
	if js != "" {
		cfg += "    transform: " + yamlString(js) + "\n"
	}
	if f.tracing {
		otlp, err := startBenchOTLP()
		if err != nil {
			return err
		}
		defer otlp.close()
		defer func() { fmt.Fprintln(cmd.OutOrStdout(), otlp.summary()) }()
		cfg += otlp.yaml()
	}
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o600); err != nil {
		return err
	}
	var add []string
	if f.procs > 0 {
		add = append(add, "GOMAXPROCS="+strconv.Itoa(f.procs))
	}
	env := loadgen.ChildEnv(os.Environ(), func(name string) bool {
		return (strings.HasPrefix(name, "HOOKD_") && name != "HOOKD_PPROF") || (f.procs > 0 && name == "GOMAXPROCS")
	}, add...)
	var children []*loadgen.Child
	stopAll := func() error {
		var errs []error
		for _, c := range children {
			if err := c.Stop(childStopGrace); err != nil {
				errs = append(errs, err)
			}
		}
		children = nil
		return errors.Join(errs...)
	}
	defer stopAll()
	bare, err := loadgen.StartChild(ctx, loadgen.ChildSpec{Name: "bare", Path: exe, Env: env,
		Args: []string{"bench", "bare-server", "--listen", "127.0.0.1:0"}, Addr: bareAddr, Stderr: stderr, StderrLines: 20})
	if err != nil {
		return err
	}
	children = append(children, bare)
	replicas, err := startBenchReplicas(ctx, f.replicas, exe, env, cfgPath, stderr)
	children = append(children, replicas...)
	if err != nil {
		return err
	}
	target := replicaTarget(replicas)
	wc := newWindowCounters(replicas)

	fmt.Fprintf(stdout, "# hookd bench e2e: %s\n", commandLine(os.Args))
	fmt.Fprintf(stdout, "# machine: %d CPUs, %s %s/%s, load %s; servers GOMAXPROCS %s\n", runtime.NumCPU(), runtime.Version(), runtime.GOOS, runtime.GOARCH, loadAverage(), childProcs(f.procs))
	fmt.Fprintf(stdout, "# %d connections, warmup %s, window %s; destination concurrency %d; 1 KiB JSON bodies\n", f.connections, f.warmup, f.duration, f.concurrency)
	if js != "" {
		fmt.Fprintf(stdout, "# the subscription runs the transformation in %s (%d bytes) on every delivery\n", f.transform, len(js))
	}
	fmt.Fprintf(stdout, "# servers: bare on %s; %s, %s; the sink in this process on %s\n", bare.Addr, describeReplicas(replicas), store, ln.Addr())
	runID := "e" + randomHex(4)
	fmt.Fprintln(stderr, "bench: ceiling: client → bare server")
	ceil, err := loadgen.Run(ctx, loadgen.Config{Addr: bare.Addr, Path: "/in/bench", Connections: f.connections,
		Warmup: f.warmup, Duration: f.duration, RunID: runID + "c", ServerPID: bare.PID()})
	if err != nil {
		return err
	}
	time.Sleep(time.Second)
	fmt.Fprintln(stderr, "bench: end to end: client → hookd → sink")
	// The sink's count at the window's edges: the window starts after the
	// warmup.
	var atStart, atEnd int64
	var edges sync.WaitGroup
	edges.Add(1)
	go func() {
		defer edges.Done()
		t0 := time.Now()
		sleepCtx(ctx, f.warmup)
		atStart = sink.n.Load()
		sleepCtx(ctx, f.duration-time.Since(t0)+f.warmup)
		atEnd = sink.n.Load()
	}()
	res, err := loadgen.Run(ctx, loadgen.Config{Addrs: target.Addrs, Path: "/in/bench", Connections: f.connections,
		Warmup: f.warmup, Duration: f.duration, RunID: runID + "h", ServerPIDs: target.PIDs, OnWindow: wc.onWindow})
	edges.Wait()
	if err != nil {
		return err
	}
	loadEnd := time.Now()
	// Drain: every acknowledged event must reach the sink.
	deadline := loadEnd.Add(5 * time.Minute)
	for {
		d, _ := sink.distinct()
		if d >= res.Acked || time.Now().After(deadline) || ctx.Err() != nil {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	drain := time.Since(loadEnd)
	distinct, dups := sink.distinct()
	stopErr := stopAll()

	window := f.duration.Seconds()
	delivered := float64(atEnd-atStart) / window
	fmt.Fprintln(stdout)
	fmt.Fprintf(stdout, "%-28s %12s %10s %10s  %s\n", "", "per second", "p50", "p99", "cpu srv/gen/other")
	fmt.Fprintf(stdout, "%-28s %12.0f %10s %10s  %s\n", "ceiling: client → bare", ceil.RPS(), ceil.Latency.P50.Round(10*time.Microsecond), ceil.Latency.P99.Round(10*time.Microsecond), e2eCPU(ceil.CPU))
	fmt.Fprintf(stdout, "%-28s %12.0f %10s %10s  %s\n", "ingest: client → hookd", res.RPS(), res.Latency.P50.Round(10*time.Microsecond), res.Latency.P99.Round(10*time.Microsecond), e2eCPU(res.CPU))
	for i, sh := range res.Shares {
		cpu := "-"
		if sh.CPU >= 0 {
			cpu = fmt.Sprintf("%.2f", sh.CPU)
		}
		fmt.Fprintf(stdout, "%-28s %12.0f %10s %10s  %s\n", fmt.Sprintf("  via %s (%d conns)", replicas[i].Name, sh.Connections), sh.RPS(),
			sh.Latency.P50.Round(10*time.Microsecond), sh.Latency.P99.Round(10*time.Microsecond), cpu)
	}
	fmt.Fprintf(stdout, "%-28s %12.0f\n", "delivered: hookd → sink", delivered)
	if ceil.RPS() > 0 {
		fmt.Fprintf(stdout, "end-to-end events/s ÷ ceiling: %.2f\n", delivered/ceil.RPS())
	}
	fmt.Fprintf(stdout, "acknowledged %d events; %d reached the sink (%d duplicate deliveries); drained %s after the load stopped\n", res.Acked, distinct, dups, drain.Round(time.Millisecond))
	fmt.Fprintln(stdout, "\n# each hookd in the window (its /metrics): its group commit (writer busy: share of the window inside a commit) and the deliveries it made")
	if err := wc.writeCommits(stdout, []*loadgen.Result{withServer(res, "hookd")}, true); err != nil {
		return err
	}
	if distinct < res.Acked {
		fmt.Fprintf(stdout, "WARNING: %d acknowledged events had not reached the sink after %s\n", res.Acked-distinct, drain.Round(time.Second))
		return exitError{code: 1}
	}
	if stopErr != nil {
		fmt.Fprintf(stdout, "WARNING: stopping the servers: %v\n", stopErr)
		return exitError{code: 1}
	}
	return nil
}

// e2eCPU renders a run's CPU as server/generator/other; the generator's
// figure includes the sink, which runs in the same process.
func e2eCPU(c *loadgen.CPU) string {
	if c == nil {
		return "-"
	}
	f := func(v float64) string {
		if v < 0 {
			return "-"
		}
		return fmt.Sprintf("%.2f", v)
	}
	return f(c.Server) + "/" + f(c.Generator) + "/" + f(c.Other)
}

// withServer returns r named server.
func withServer(r *loadgen.Result, server string) *loadgen.Result {
	r.Server = server
	return r
}

func sleepCtx(ctx context.Context, d time.Duration) {
	if d <= 0 {
		return
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
	}
}
