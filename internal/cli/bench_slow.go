package cli

import (
	"errors"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"hookd/internal/loadgen"
)

type benchSlowFlags struct {
	slow, rate, clients int
	interval, duration  time.Duration
	dir                 string
	keep                bool
}

func newBenchSlowCmd() *cobra.Command {
	var f benchSlowFlags
	cmd := &cobra.Command{
		Use:   "slowloris",
		Short: "Measure what slow uploads leave to everyone else",
		Long: `Measure how hookd serves others while many senders upload slowly.

slowloris starts a real 'hookd serve' (a child process, default settings, a
fresh SQLite data directory, one source 'bench') on loopback, and opens
--slow connections that each send the headers of a POST to the source and
then one body byte every --interval, never finishing. When hookd ends one
(server.body_timeout answers 408 and closes), another is opened in its
place, so --slow stay open. Once every slow connection has been opened, it
measures for --duration: a legitimate client sends whole 1 KiB POSTs at
--rate per second over --clients keep-alive connections, and an admin
client reads GET /api/v1/sources ten times a second.

It prints the legitimate client's 200 ratio and latency (p50, p99, max),
the admin API's answers, and what became of the slow connections. Nothing
here asserts a figure: bench reports.`,
		Example: `  hookd bench slowloris --slow 5000 --duration 10s`,
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return runBenchSlow(cmd, f)
		},
	}
	fl := cmd.Flags()
	fl.IntVar(&f.slow, "slow", 5000, "slow-body connections kept open")
	fl.DurationVar(&f.interval, "interval", 2*time.Second, "pause between two bytes of a slow body")
	fl.DurationVar(&f.duration, "duration", 10*time.Second, "measured time")
	fl.IntVar(&f.rate, "rate", 200, "legitimate POSTs per second")
	fl.IntVar(&f.clients, "clients", 8, "keep-alive connections of the legitimate client")
	fl.StringVar(&f.dir, "dir", "", "where to create the temporary directory for hookd's config and data (default the system temp dir)")
	fl.BoolVar(&f.keep, "keep", false, "keep the temporary directory instead of removing it")
	cmd.MarkFlagDirname("dir")
	return cmd
}

func runBenchSlow(cmd *cobra.Command, f benchSlowFlags) error {
	stdout, stderr := cmd.OutOrStdout(), cmd.ErrOrStderr()
	switch {
	case f.slow < 0 || f.slow > 50000:
		return fmt.Errorf("--slow: %d is not between 0 and 50000", f.slow)
	case f.rate < 1 || f.rate > 10000:
		return fmt.Errorf("--rate: %d is not between 1 and 10000", f.rate)
	case f.clients < 1 || f.clients > 1000:
		return fmt.Errorf("--clients: %d is not between 1 and 1000", f.clients)
	case f.duration <= 0 || f.duration > time.Hour:
		return errors.New("--duration must be positive and at most 1h")
	case f.interval <= 0:
		return errors.New("--interval must be positive")
	}
	// This process and hookd (which inherits the limit) each hold one
	// descriptor per slow connection.
	if err := raiseFileLimit(uint64(f.slow + f.clients + 256)); err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(cmdContext(cmd), os.Interrupt, syscall.SIGTERM)
	defer stop()
	exe, err := os.Executable()
	if err != nil {
		return fmt.Errorf("find the hookd binary to re-execute: %w", err)
	}
	tmp, err := os.MkdirTemp(f.dir, "hookd-bench-slow-")
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
	token := randomHex(16)
	cfgPath := filepath.Join(tmp, "hookd.yaml")
	if err := os.WriteFile(cfgPath, benchConfig(filepath.Join(tmp, "data"), token), 0o600); err != nil {
		return fmt.Errorf("write the config: %w", err)
	}
	// The child runs on the generated config alone.
	env := loadgen.ChildEnv(os.Environ(), func(name string) bool { return strings.HasPrefix(name, "HOOKD_") })
	srv, err := loadgen.StartChild(ctx, loadgen.ChildSpec{
		Name: "hookd", Path: exe, Env: env,
		Args:   []string{"serve", "--config", cfgPath, "--listen", "127.0.0.1:0"},
		Addr:   serveAddr,
		Stderr: stderr, StderrLines: 20,
	})
	if err != nil {
		return err
	}
	defer srv.Stop(childStopGrace)
	rssBefore := processRSS(srv.PID())
	fmt.Fprintf(stdout, "# hookd serve on %s (default server settings), %d slow connections, one byte every %s\n", srv.Addr, f.slow, f.interval)
	fmt.Fprintf(stderr, "bench: opening %d slow connections, then measuring for %s\n", f.slow, f.duration)
	res, err := loadgen.RunSlow(ctx, loadgen.SlowConfig{
		Addr: srv.Addr, Path: "/in/bench", Slow: f.slow, Interval: f.interval, Duration: f.duration,
		Rate: f.rate, Clients: f.clients,
		AdminPath: "/api/v1/sources", AdminToken: token, AdminEvery: 100 * time.Millisecond,
		RunID: "s" + randomHex(4),
	})
	if err != nil {
		return err
	}
	rssDuring := processRSS(srv.PID())
	stopErr := srv.Stop(childStopGrace)

	class := func(name string, c *loadgen.SlowClass) {
		fmt.Fprintf(stdout, "%-6s sent %d, 200 %d (%.2f%%), errors %d; latency p50 %s p99 %s max %s",
			name, c.Sent, c.OK, 100*c.OKRatio(), c.Errors,
			loadgen.FormatLatency(c.Latency.P50), loadgen.FormatLatency(c.Latency.P99), loadgen.FormatLatency(c.Latency.Max))
		if other := c.Statuses; len(other) > 0 && (len(other) > 1 || c.OK == 0) {
			fmt.Fprintf(stdout, "; statuses %s", statuses(other))
		}
		fmt.Fprintln(stdout)
	}
	fmt.Fprintf(stdout, "window %s, slow connections open at its end: %d of %d\n", res.Elapsed.Round(time.Millisecond), res.OpenAtEnd, f.slow)
	class("legit", &res.Legit)
	class("admin", &res.Admin)
	fmt.Fprintf(stdout, "slow   opened %d, refused %d, ended by hookd %d", res.Opened, res.Refused, res.Cut)
	if len(res.SlowStatuses) > 0 {
		fmt.Fprintf(stdout, " (answers: %s)", statuses(res.SlowStatuses))
	}
	fmt.Fprintln(stdout)
	if rssBefore != "" && rssDuring != "" {
		fmt.Fprintf(stdout, "hookd RSS %s before, %s with the slow connections open\n", rssBefore, rssDuring)
	}
	if stopErr != nil {
		return fmt.Errorf("stopping hookd: %w", stopErr)
	}
	return nil
}

// processRSS is the resident set size of process pid as /proc tells it,
// "" where unknown.
func processRSS(pid int) string {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return ""
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			return strings.TrimSpace(v)
		}
	}
	return ""
}
