package cli

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/pprof"
	"os"
	"os/signal"
	"runtime/debug"
	"syscall"

	"github.com/spf13/cobra"

	"hookd/internal/config"
)

func newServeCmd() *cobra.Command {
	var configPath, listen, data string
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Run the hookd server",
		Long: `Run the hookd server.

With no --config, hookd runs on its embedded default: SQLite in ./hookd-data,
listening on :8080, with a demo source at /in/demo. It prints where the data
is, a curl line to try and, when it generates the admin token (no
admin.tokens nor HOOKD_ADMIN_TOKEN, and none generated before), that token:
once, since the database keeps only its hash. 'hookd admin-token reset'
makes a new one.

The first SIGINT or SIGTERM stops accepting requests and lets in-flight ones
finish (server.shutdown_grace); a second one stops at once. SIGHUP (or
'hookd reload') reads the --config file again: sources, destinations,
subscriptions and limits change in place, and an invalid file changes nothing
(docs/CONFIGURATION.md, Reloading).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			// A reload reads the file as the start did: environment and
			// flags included.
			load := func() (*config.Config, error) {
				cfg, err := config.Load(configPath)
				if err != nil {
					return nil, err
				}
				if listen != "" {
					cfg.Listen = listen
				}
				if data != "" {
					cfg.Storage.Path = data
				}
				if err := cfg.Validate(); err != nil {
					return nil, fmt.Errorf("config: %w", err)
				}
				return cfg, nil
			}
			cfg, err := load()
			if err != nil {
				return err
			}
			if configPath == "" {
				load = nil
			}
			log := newLogger(cfg.Log, cmd.ErrOrStderr())
			return serve(cmd.Context(), cfg, log, cmd, configPath, load)
		},
	}
	f := cmd.Flags()
	f.StringVarP(&configPath, "config", "c", "", "configuration file (YAML); none runs the embedded default")
	f.StringVar(&listen, "listen", "", "listen address, such as :8080 or 127.0.0.1:0 (overrides listen and HOOKD_LISTEN)")
	f.StringVar(&data, "data", "", "SQLite data directory (overrides storage.path and HOOKD_DATA)")
	cmd.MarkFlagFilename("config", "yaml", "yml")
	cmd.MarkFlagDirname("data")
	return cmd
}

func newLogger(c config.Log, w io.Writer) *slog.Logger {
	var level slog.Level
	level.UnmarshalText([]byte(c.Level))
	opts := &slog.HandlerOptions{Level: level}
	if c.Format == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}

func serve(ctx context.Context, cfg *config.Config, log *slog.Logger, cmd *cobra.Command, configPath string, load func() (*config.Config, error)) error {
	if ctx == nil {
		ctx = context.Background()
	}
	if os.Getenv("GOGC") == "" {
		// The ingest path allocates a little per request and keeps little
		// alive: collecting at 5× the live heap instead of 2× cuts the
		// collector's share of CPU by about a fifth under load, for a few
		// tens of MiB. GOGC in the environment overrides it.
		debug.SetGCPercent(400)
	}
	if addr := os.Getenv("HOOKD_PPROF"); addr != "" {
		// Profiling for operators and benchmarks, on its own listener so it
		// is never reachable through the public one.
		go func() { log.Warn("pprof server stopped", "err", http.ListenAndServe(addr, pprofMux())) }()
	}
	// Signals are caught before anything is printed: a test or a
	// supervisor that sends SIGTERM as soon as it sees the banner must get
	// the graceful path, not the default handler's instant exit.
	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM)
	defer signal.Stop(sigs)
	app := NewApp(cfg, log)
	// SIGHUP reads the file again, from now on: by default it would end
	// the process.
	hupStop := make(chan struct{})
	defer close(hupStop)
	if load != nil {
		app.SetConfigFile(configPath, load)
	}
	app.watchHangup(hupStop)
	if err := app.Open(ctx); err != nil {
		return err
	}
	app.Warnings()
	app.PrintBanner(cmd.OutOrStdout())

	served := make(chan error, 1)
	go func() { served <- app.Serve() }()

	select {
	case err := <-served:
		grace, cancel := context.WithTimeout(context.Background(), cfg.Server.ShutdownGrace.D())
		defer cancel()
		app.Shutdown(grace)
		return err
	case sig := <-sigs:
		log.Info("shutting down: draining requests and commits (signal again to stop at once)", "signal", sig.String(), "grace", cfg.Server.ShutdownGrace.D().String())
	}
	grace, cancel := context.WithTimeout(context.Background(), cfg.Server.ShutdownGrace.D())
	defer cancel()
	go func() {
		select {
		case <-sigs:
			log.Warn("second signal: stopping now")
			cancel()
		case <-grace.Done():
		}
	}()
	if err := app.Shutdown(grace); err != nil {
		log.Error("shutdown", "err", err)
		return exitError{code: 1}
	}
	<-served
	log.Info("stopped cleanly")
	return nil
}

func pprofMux() *http.ServeMux {
	m := http.NewServeMux()
	m.HandleFunc("/debug/pprof/", pprof.Index)
	m.HandleFunc("/debug/pprof/profile", pprof.Profile)
	m.HandleFunc("/debug/pprof/trace", pprof.Trace)
	return m
}
