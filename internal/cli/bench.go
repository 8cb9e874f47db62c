package cli

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"os/signal"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/spf13/cobra"

	"hookd/internal/httpserver"
	"hookd/internal/loadgen"
	"hookd/internal/secret"
	"hookd/internal/store/sqlite"
)

// benchFlags are the options of 'hookd bench'.
type benchFlags struct {
	connections      []int
	rounds           int
	warmup, duration time.Duration
	procs            int
	dir              string
	keep, json       bool
	// postgres, when set, is the DSN of a PostgreSQL database: hookd
	// stores into a fresh schema there instead of SQLite.
	postgres string
	// replicas is the number of 'hookd serve' processes on that schema.
	replicas int
	// tracing turns hookd's tracing on, exporting to a receiver in the
	// bench's process (bench_tracing.go).
	tracing bool
}

// maxReplicas bounds --replicas.
const maxReplicas = 16

// childStopGrace is how long a server may take to exit after SIGTERM.
const childStopGrace = 30 * time.Second

func newBenchCmd() *cobra.Command {
	var f benchFlags
	cmd := &cobra.Command{
		Use:   "bench",
		Short: "Measure ingest (with e2e, delivery; with slowloris, service under slow uploads) against a bare net/http server",
		Long: `Measure hookd's ingest against a bare net/http server on this machine.

In one run, bench starts two servers as child processes of its own binary: a
bare net/http server that reads each body and answers 200, and a real
'hookd serve' on a fresh temporary SQLite data directory with one source,
'bench', that dedupes by the body's id. At each connection level it drives
the bare server, then hookd, with that many keep-alive connections, each in
a closed loop of POSTs of a 1 KiB JSON body with a unique id, and prints
req/s, p50, p99 and max latency, errors and non-2xx answers.

With --postgres, hookd stores into a fresh schema of that database. With
--replicas N as well, bench starts N 'hookd serve' processes on that one
schema (each on a port of its own) and spreads the connections over them
round-robin: the hookd rows show the total, and a second table each
replica's part (connections, req/s, latencies, CPU).

At the end it stops hookd and counts the events in its database: the count
must equal the number of 200 answers hookd gave. Nothing here asserts speed;
bench reports.`,
		Example: `  hookd bench
  hookd bench --duration 10s --procs 1
  hookd bench --connections 16,64,256 --json
  hookd bench --postgres postgres://postgres@127.0.0.1:5432/test --replicas 2`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return runBench(cmd, f)
		},
	}
	fl := cmd.Flags()
	fl.IntSliceVar(&f.connections, "connections", []int{64, 256}, "concurrency levels: keep-alive connections, each driven by one closed-loop goroutine")
	fl.DurationVar(&f.warmup, "warmup", 2*time.Second, "warmup of each run, not counted")
	fl.DurationVar(&f.duration, "duration", 10*time.Second, "measured time of each run")
	fl.IntVar(&f.procs, "procs", 0, "GOMAXPROCS of both servers (0 leaves it unset)")
	fl.IntVar(&f.rounds, "rounds", 1, "runs of each server at each level, alternating (bare, hookd, bare, …); with more than one, the median ratio is reported")
	fl.StringVar(&f.dir, "dir", "", "where to create the temporary directory for hookd's config and data (default the system temp dir)")
	fl.BoolVar(&f.keep, "keep", false, "keep the temporary directory instead of removing it")
	fl.BoolVar(&f.json, "json", false, "also print the results as JSON")
	fl.StringVar(&f.postgres, "postgres", "", "measure hookd on PostgreSQL: the DSN of a database where bench creates (and drops) a schema of its own")
	fl.IntVar(&f.replicas, "replicas", 1, "hookd processes on the one PostgreSQL schema (needs --postgres); the connections are spread over them round-robin")
	fl.BoolVar(&f.tracing, "tracing", false, "turn hookd's tracing on (sample ratio 1), exporting every span to an OTLP receiver in the bench's process")
	cmd.MarkFlagDirname("dir")
	cmd.AddCommand(newBareServerCmd(), newBenchE2ECmd(), newBenchSlowCmd(), newDelayProxyCmd())
	return cmd
}

func newBareServerCmd() *cobra.Command {
	var listen string
	cmd := &cobra.Command{
		Use:    "bare-server",
		Short:  "Serve the bare net/http ceiling that bench compares hookd with",
		Long:   "Serve the bare net/http ceiling: read the whole body, answer 200. Prints its listen address on stdout; stops on SIGINT or SIGTERM.",
		Hidden: true,
		Args:   cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx, stop := signal.NotifyContext(cmdContext(cmd), os.Interrupt, syscall.SIGTERM)
			defer stop()
			return loadgen.ServeBare(ctx, listen, cmd.OutOrStdout())
		},
	}
	cmd.Flags().StringVar(&listen, "listen", "127.0.0.1:0", "listen address")
	return cmd
}

func runBench(cmd *cobra.Command, f benchFlags) error {
	stdout, stderr := cmd.OutOrStdout(), cmd.ErrOrStderr()
	if f.rounds < 1 || f.rounds > 100 {
		return fmt.Errorf("--rounds: %d is not between 1 and 100", f.rounds)
	}
	if len(f.connections) == 0 {
		return errors.New("--connections: give at least one level")
	}
	for _, c := range f.connections {
		if c < 1 || c > 50000 {
			return fmt.Errorf("--connections: %d is not between 1 and 50000", c)
		}
	}
	if f.duration <= 0 || f.warmup < 0 {
		return errors.New("--duration must be positive and --warmup not negative")
	}
	if f.procs < 0 {
		return errors.New("--procs must not be negative")
	}
	if err := checkReplicas(f.replicas, f.postgres); err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(cmdContext(cmd), os.Interrupt, syscall.SIGTERM)
	defer stop()

	exe, err := os.Executable()
	if err != nil {
		return fmt.Errorf("find the hookd binary to re-execute: %w", err)
	}
	tmp, err := os.MkdirTemp(f.dir, "hookd-bench-")
	if err != nil {
		return fmt.Errorf("create the temporary directory: %w", err)
	}
	defer func() {
		if f.keep {
			fmt.Fprintf(stderr, "bench: kept %s\n", tmp)
			return
		}
		if err := os.RemoveAll(tmp); err != nil {
			fmt.Fprintf(stderr, "bench: remove %s: %v\n", tmp, err)
		}
	}()
	dataDir := filepath.Join(tmp, "data")
	cfgPath := filepath.Join(tmp, "hookd.yaml")
	conf := benchConfig(dataDir, randomHex(16))
	store := "SQLite in " + dataDir
	var pg *benchSchema
	if f.postgres != "" {
		if pg, err = newBenchSchema(ctx, f.postgres); err != nil {
			return err
		}
		defer func() {
			if !f.keep {
				pg.drop()
			}
		}()
		conf = benchConfigOn(pg.storageYAML(), randomHex(16))
		store = "PostgreSQL schema " + pg.schema
	}
	if f.tracing {
		otlp, err := startBenchOTLP()
		if err != nil {
			return err
		}
		defer otlp.close()
		defer func() { fmt.Fprintln(stdout, otlp.summary()) }()
		conf = append(conf, otlp.yaml()...)
	}
	if err := os.WriteFile(cfgPath, conf, 0o600); err != nil {
		return fmt.Errorf("write the config: %w", err)
	}

	// The servers get the bench's environment without HOOKD_* (which would
	// override the generated config), except HOOKD_PPROF for profiling
	// hookd under load, and with the chosen GOMAXPROCS.
	var add []string
	if f.procs > 0 {
		add = append(add, "GOMAXPROCS="+strconv.Itoa(f.procs))
	}
	env := loadgen.ChildEnv(os.Environ(), func(name string) bool {
		return (strings.HasPrefix(name, "HOOKD_") && name != "HOOKD_PPROF") || (f.procs > 0 && name == "GOMAXPROCS")
	}, add...)

	rep := &loadgen.Report{
		Command:    commandLine(os.Args),
		ChildProcs: childProcs(f.procs),
		NumCPU:     runtime.NumCPU(),
		GoVersion:  runtime.Version() + " " + runtime.GOOS + "/" + runtime.GOARCH,
		Date:       time.Now(),
		Load:       loadAverage(),
		Order:      loadgen.Order,
		Warmup:     f.warmup,
		Duration:   f.duration,
	}

	var children []*loadgen.Child
	stopAll := func() error {
		var errs []error
		for _, c := range children {
			if err := c.Stop(childStopGrace); err != nil {
				errs = append(errs, err)
			}
		}
		return errors.Join(errs...)
	}
	defer stopAll()
	bare, err := loadgen.StartChild(ctx, loadgen.ChildSpec{
		Name: "bare", Path: exe, Env: env,
		Args:   []string{"bench", "bare-server", "--listen", "127.0.0.1:0"},
		Addr:   bareAddr,
		Stderr: stderr, StderrLines: 20,
	})
	if err != nil {
		return err
	}
	children = append(children, bare)
	replicas, err := startBenchReplicas(ctx, f.replicas, exe, env, cfgPath, stderr)
	children = append(children, replicas...)
	if err != nil {
		return err
	}
	hookdT := replicaTarget(replicas)
	wc := newWindowCounters(replicas)
	hookdT.OnWindow = wc.onWindow

	rep.WriteHeader(stdout)
	fmt.Fprintf(stdout, "# servers:  bare on %s; %s, %s\n", bare.Addr, describeReplicas(replicas), store)
	results, runErr := loadgen.Compare(ctx, []loadgen.Target{
		{Name: "bare", Addr: bare.Addr, Path: "/in/bench", PID: bare.PID()},
		hookdT,
	}, loadgen.Options{
		Connections: f.connections, Warmup: f.warmup, Duration: f.duration,
		Settle: time.Second, RunID: "b" + randomHex(4), Rounds: f.rounds,
		DuplicateHeader: httpserver.HeaderDuplicate, Progress: stderr,
	})
	stopErr := stopAll()
	rep.Results = results

	if len(results) > 0 {
		fmt.Fprintln(stdout)
		if err := loadgen.WriteTable(stdout, results); err != nil {
			return err
		}
		if len(replicas) > 1 {
			fmt.Fprintln(stdout)
			if err := loadgen.WriteShares(stdout, results); err != nil {
				return err
			}
		}
		fmt.Fprintln(stdout, "\n# group commit of each hookd in its windows (its /metrics): writer busy is the share of the window inside a commit")
		if err := wc.writeCommits(stdout, results, false); err != nil {
			return err
		}
		if f.rounds > 1 {
			for _, lr := range loadgen.MedianRatios(results) {
				fmt.Fprintf(stdout, "median ratio %s/bare at %d connections over %d rounds: %.2f (%s)\n",
					lr.Server, lr.Connections, len(lr.Ratios), lr.Median, formatRatios(lr.Ratios))
			}
		}
	}
	failed := false
	warn := func(format string, args ...any) {
		failed = true
		msg := fmt.Sprintf(format, args...)
		fmt.Fprintln(stdout, "WARNING: "+msg)
		if stderr != stdout {
			fmt.Fprintln(stderr, "bench: WARNING: "+msg)
		}
	}
	for _, r := range results {
		rep.Acknowledged += hookdOnly(r, r.Acked)
		rep.Unanswered += hookdOnly(r, r.Unanswered)
		if len(r.Statuses) > 0 {
			fmt.Fprintf(stdout, "%s at %d connections answered non-2xx (whole run, warmup included): %s\n", r.Server, r.Connections, statuses(r.Statuses))
		}
		if r.Duplicates > 0 {
			warn("%s at %d connections flagged %d answers as duplicates, yet every request carries a new id", r.Server, r.Connections, r.Duplicates)
		}
	}
	for _, r := range replicas {
		if n := r.StderrLines(); n > 0 {
			fmt.Fprintf(stdout, "%s wrote %d lines to stderr (log level warn; the first ones are on the bench's stderr)\n", r.Name, n)
		}
	}
	if stopErr != nil {
		warn("stopping the servers: %v", stopErr)
	}

	// An interrupted run drops the figures of its last run, so the
	// acknowledged count is incomplete: no check then.
	var (
		stored   int64
		countErr error
	)
	if pg != nil {
		stored, countErr = pg.count(ctx)
	} else {
		stored, countErr = countEvents(filepath.Join(dataDir, sqlite.FileName))
	}
	switch {
	case runErr != nil:
		fmt.Fprintln(stdout, "no stored-count check: the measurement did not complete")
	case countErr != nil:
		warn("could not count hookd's stored events: %v", countErr)
	default:
		rep.Stored = &stored
		fmt.Fprintf(stdout, "stored %d of %d acknowledged", stored, rep.Acknowledged)
		if rep.Unanswered > 0 {
			fmt.Fprintf(stdout, " (and %d requests got no answer; hookd may have stored them)", rep.Unanswered)
		}
		fmt.Fprintln(stdout)
		if stored < rep.Acknowledged {
			warn("hookd acknowledged %d events that are not in its database: an answered 200 was not durable", rep.Acknowledged-stored)
		} else if stored > rep.Acknowledged+rep.Unanswered {
			warn("hookd stored %d more events than it was sent", stored-rep.Acknowledged-rep.Unanswered)
		}
	}
	if f.json {
		if err := rep.WriteJSON(stdout); err != nil {
			return err
		}
	}
	if runErr != nil {
		return runErr
	}
	if failed {
		return exitError{code: 1}
	}
	return nil
}

// checkReplicas checks --replicas: more than one needs PostgreSQL, since a
// SQLite data directory belongs to one process.
func checkReplicas(n int, postgres string) error {
	if n < 1 || n > maxReplicas {
		return fmt.Errorf("--replicas: %d is not between 1 and %d", n, maxReplicas)
	}
	if n > 1 && postgres == "" {
		return errors.New("--replicas: more than one hookd needs --postgres (a SQLite data directory belongs to one process)")
	}
	return nil
}

// startBenchReplicas starts n 'hookd serve' children with the configuration at
// cfgPath, one after the other, each on a port of its own. It returns those
// it started, also when a later one failed (the caller stops them).
func startBenchReplicas(ctx context.Context, n int, exe string, env []string, cfgPath string, stderr io.Writer) ([]*loadgen.Child, error) {
	var out []*loadgen.Child
	for i := range n {
		name := "hookd"
		if n > 1 {
			name = "hookd-" + strconv.Itoa(i+1)
		}
		c, err := loadgen.StartChild(ctx, loadgen.ChildSpec{
			Name: name, Path: exe, Env: env,
			Args:   []string{"serve", "--config", cfgPath, "--listen", "127.0.0.1:0"},
			Addr:   serveAddr,
			Stderr: stderr, StderrLines: 20,
		})
		if err != nil {
			return out, err
		}
		out = append(out, c)
	}
	return out, nil
}

// replicaTarget is the load generator's target "hookd": the replicas'
// addresses and processes.
func replicaTarget(replicas []*loadgen.Child) loadgen.Target {
	t := loadgen.Target{Name: "hookd", Path: "/in/bench"}
	for _, r := range replicas {
		t.Addrs = append(t.Addrs, r.Addr)
		t.PIDs = append(t.PIDs, r.PID())
	}
	return t
}

// describeReplicas says where hookd listens, for the header.
func describeReplicas(replicas []*loadgen.Child) string {
	if len(replicas) == 1 {
		return "hookd on " + replicas[0].Addr
	}
	addrs := make([]string, len(replicas))
	for i, r := range replicas {
		addrs[i] = r.Addr
	}
	return fmt.Sprintf("hookd ×%d on %s (connections round-robin)", len(replicas), strings.Join(addrs, ", "))
}

func formatRatios(rs []float64) string {
	parts := make([]string, len(rs))
	for i, r := range rs {
		parts[i] = fmt.Sprintf("%.2f", r)
	}
	return strings.Join(parts, " ")
}

func hookdOnly(r *loadgen.Result, n int64) int64 {
	if r.Server != "hookd" {
		return 0
	}
	return n
}

// benchConfig is hookd's configuration for the bench: SQLite in dataDir,
// quiet logs, and one source that dedupes by the body's id.
func benchConfig(dataDir, token string) []byte {
	return benchConfigOn("storage:\n  driver: sqlite\n  path: "+yamlString(dataDir)+"\n", token)
}

// benchConfigOn is benchConfig with the storage block given.
func benchConfigOn(storage, token string) []byte {
	return []byte(`# Generated by 'hookd bench'.
listen: 127.0.0.1:0
` + storage + `admin:
  tokens: [` + yamlString(token) + `]
secrets:
  master_keys: [` + yamlString(secret.GenerateMasterKey("bench")) + `]
log:
  level: warn
sources:
  - name: bench
    event:
      id: json:id
      type: json:type
`)
}

// yamlString quotes s as a YAML double-quoted scalar, with '$' doubled so
// that the config loader's ${ENV} expansion leaves it alone.
func yamlString(s string) string {
	return strconv.Quote(strings.ReplaceAll(s, "$", "$$"))
}

// bareAddr reads the bare server's one stdout line: its address.
func bareAddr(line string) (string, bool) {
	line = strings.TrimSpace(line)
	if _, _, err := net.SplitHostPort(line); err != nil {
		return "", false
	}
	return line, true
}

var listeningLine = regexp.MustCompile(`^hookd \S+ listening on (\S+)$`)

// serveAddr reads the address from 'hookd serve's banner line
// "hookd <version> listening on <addr>".
func serveAddr(line string) (string, bool) {
	m := listeningLine.FindStringSubmatch(strings.TrimSpace(line))
	if m == nil {
		return "", false
	}
	return m[1], true
}

// countEvents counts the events in the SQLite file at path, opened
// read-only (hookd has stopped).
func countEvents(path string) (int64, error) {
	if _, err := os.Stat(path); err != nil {
		return 0, err
	}
	db, err := sqlite.OpenFile(path, "mode=ro")
	if err != nil {
		return 0, err
	}
	defer db.Close()
	var n int64
	if err := db.QueryRow(`SELECT count(*) FROM events`).Scan(&n); err != nil {
		return 0, fmt.Errorf("count events: %w", err)
	}
	return n, nil
}

// childProcs describes the GOMAXPROCS the servers run with.
func childProcs(procs int) string {
	if procs > 0 {
		return strconv.Itoa(procs) + " (--procs)"
	}
	if v := os.Getenv("GOMAXPROCS"); v != "" {
		return v + " (GOMAXPROCS in the environment)"
	}
	return strconv.Itoa(runtime.GOMAXPROCS(0)) + " (unset: the Go default)"
}

// loadAverage returns the 1, 5 and 15 minute load averages where
// /proc/loadavg has them, and "" elsewhere.
func loadAverage() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return ""
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return ""
	}
	return strings.Join(f[:3], " ")
}

// commandLine renders args as a shell would accept them.
func commandLine(args []string) string {
	quoted := make([]string, len(args))
	for i, a := range args {
		if a != "" && strings.Trim(a, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_./:=,@+-") == "" {
			quoted[i] = a
			continue
		}
		quoted[i] = "'" + strings.ReplaceAll(a, "'", `'\''`) + "'"
	}
	return strings.Join(quoted, " ")
}

func statuses(m map[int]int64) string {
	codes := make([]int, 0, len(m))
	for c := range m {
		codes = append(codes, c)
	}
	slices.Sort(codes)
	parts := make([]string, len(codes))
	for i, c := range codes {
		parts[i] = fmt.Sprintf("%d ×%d", c, m[c])
	}
	return strings.Join(parts, ", ")
}

func randomHex(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)
}

func cmdContext(cmd *cobra.Command) context.Context {
	if ctx := cmd.Context(); ctx != nil {
		return ctx
	}
	return context.Background()
}

// benchSchema is a schema of its own for a bench run on PostgreSQL.
type benchSchema struct {
	dsn, schema string
}

func newBenchSchema(ctx context.Context, dsn string) (*benchSchema, error) {
	b := &benchSchema{dsn: dsn, schema: "hookd_bench_" + randomHex(6)}
	c, err := pgx.Connect(ctx, dsn)
	if err != nil {
		return nil, fmt.Errorf("--postgres: %w", err)
	}
	defer c.Close(context.Background())
	if _, err := c.Exec(ctx, "CREATE SCHEMA "+b.schema); err != nil {
		return nil, fmt.Errorf("--postgres: create schema: %w", err)
	}
	return b, nil
}

// storageYAML is the storage block of hookd's configuration: the DSN with
// search_path set to the schema.
func (b *benchSchema) storageYAML() string {
	dsn := b.dsn
	if u, err := url.Parse(dsn); err == nil && u.Scheme != "" {
		q := u.Query()
		q.Set("search_path", b.schema)
		u.RawQuery = q.Encode()
		dsn = u.String()
	} else {
		dsn += " search_path=" + b.schema
	}
	return "storage:\n  driver: postgres\n  dsn: " + yamlString(dsn) + "\n"
}

func (b *benchSchema) count(ctx context.Context) (int64, error) {
	c, err := pgx.Connect(ctx, b.dsn)
	if err != nil {
		return 0, err
	}
	defer c.Close(context.Background())
	var n int64
	err = c.QueryRow(ctx, "SELECT count(*) FROM "+b.schema+".events").Scan(&n)
	return n, err
}

func (b *benchSchema) drop() {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if c, err := pgx.Connect(ctx, b.dsn); err == nil {
		c.Exec(ctx, "DROP SCHEMA "+b.schema+" CASCADE")
		c.Close(ctx)
	}
}
