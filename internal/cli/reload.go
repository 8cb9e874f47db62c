package cli

// reload.go reads the configuration file again while hookd serves
// (SIGHUP, POST /api/v1/reload, hookd reload): the file's sources,
// destinations, subscriptions and limits change in place, the other keys
// are reported as needing a restart, and an invalid file changes nothing.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"hookd"
	"hookd/internal/admin"
	"hookd/internal/config"
	"hookd/internal/engine"
	"hookd/internal/store"
	"hookd/internal/store/postgres"
)

// reloadState is the App's part in reloads.
type reloadState struct {
	// configFile is the file hookd was started with, "" for the embedded
	// default; loadConfig reads it again as the start did (environment
	// and flags included). Set before Open.
	configFile string
	loadConfig func() (*config.Config, error)
	// reloadMu serializes reloads; running is the configuration in force
	// (the start's, with the file's definitions and limits of the last
	// reload), nil until the first reload.
	reloadMu sync.Mutex
	running  *config.Config
	// reloadTag tells this process's reloads from the others'.
	reloadTag string
	// seenGen is the last reload generation (configGenSetting) this
	// process has acted on; genMu guards it.
	genMu   sync.Mutex
	seenGen string
}

// configGenSetting is the setting where, on PostgreSQL, a reload asked of
// one process records its generation ("<tag>:<time>"): every other
// process that sees a generation it has not acted on reads its own file,
// on the notification, after its listener (re)connects, and at every
// cluster.reconcile, so that a notification missed is not a reload
// missed.
const configGenSetting = "config_reload_generation"

// configPrefix starts the notification that a process on the schema read
// its configuration file again ("config:<tag>"): every other one reads its
// own.
const configPrefix = "config:"

// SetConfigFile tells the app which file it was started with and how to
// read it again; without it a reload is refused. Call it before Open.
func (a *App) SetConfigFile(path string, load func() (*config.Config, error)) {
	a.configFile, a.loadConfig = path, load
	a.reloadTag = randomToken()
}

// Reload reads the configuration file again and applies it: see
// docs/CONFIGURATION.md, Reloading. An invalid file (or a definition that
// does not build) is refused with the reason, logged, and changes nothing.
// On PostgreSQL, a reload asked of this process (announce) tells the other
// processes on the schema to read their own files.
func (a *App) Reload(ctx context.Context, why string, announce bool) (*admin.ReloadResult, error) {
	res, err := a.reload(ctx)
	if err != nil {
		a.log.Error("configuration reload refused; the running configuration keeps serving", "why", why, "file", a.configFile, "err", err)
		return nil, err
	}
	if len(res.Changes) > 0 {
		a.log.Info("configuration reloaded", "why", why, "file", a.configFile, "changes", strings.Join(res.Changes, "; "))
	} else {
		a.log.Info("configuration reloaded: no definition or limit changed", "why", why, "file", a.configFile)
	}
	if len(res.NeedsRestart) > 0 {
		a.log.Warn("the file changes keys that need a restart; they keep their running values until then", "keys", strings.Join(res.NeedsRestart, ","))
	}
	if pg, ok := a.st.(*postgres.Store); ok && announce {
		nctx, cancel := context.WithTimeout(context.Background(), notifyTimeout)
		defer cancel()
		gen := fmt.Sprintf("%s:%d", a.reloadTag, time.Now().UnixNano())
		a.genMu.Lock()
		a.seenGen = gen
		a.genMu.Unlock()
		err := pg.SettingPut(nctx, configGenSetting, gen)
		if err == nil {
			err = pg.Notify(nctx, configPrefix+gen)
		}
		if err != nil {
			a.log.Warn("tell the other processes to read their configuration files again; reload them one by one", "err", err)
		}
	}
	return res, nil
}

// noteConfigGen records, at start on PostgreSQL, the reload generation in
// force: the file just read is this process's answer to it.
func (a *App) noteConfigGen(ctx context.Context) error {
	g, err := a.st.SettingGet(ctx, configGenSetting)
	if errors.Is(err, store.ErrNotFound) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("read the configuration reload generation: %w", err)
	}
	a.genMu.Lock()
	a.seenGen = g
	a.genMu.Unlock()
	return nil
}

// followConfigGen reads this process's file again when another process
// recorded a reload generation this one has not acted on.
func (a *App) followConfigGen(ctx context.Context) {
	if a.loadConfig == nil {
		return
	}
	g, err := a.st.SettingGet(ctx, configGenSetting)
	if err != nil {
		return // none yet, or read at the next look
	}
	a.genMu.Lock()
	seen := a.seenGen
	a.seenGen = g
	a.genMu.Unlock()
	if g == seen || strings.HasPrefix(g, a.reloadTag+":") {
		return
	}
	a.Reload(ctx, "another replica reloaded", false)
}

func (a *App) reload(ctx context.Context) (*admin.ReloadResult, error) {
	if a.loadConfig == nil {
		return nil, hookd.Errorf(hookd.EConflict, "hookd was started without --config: there is no file to read again")
	}
	a.mu.Lock()
	ready := a.ready
	a.mu.Unlock()
	if !ready {
		return nil, hookd.Errorf(hookd.EUnavailable, "hookd is starting or stopping; reload once it serves")
	}
	a.reloadMu.Lock()
	defer a.reloadMu.Unlock()
	running := a.running
	if running == nil {
		running = a.cfg
	}
	next, err := a.loadConfig()
	if err != nil {
		return nil, hookd.Errorf(hookd.EInvalid, "%s", oneLine(err.Error()))
	}
	for _, name := range next.UnsetEnv {
		a.log.Warn("configuration refers to an unset environment variable; it expanded to an empty string", "var", name)
	}
	res := &admin.ReloadResult{File: a.configFile, NeedsRestart: config.RestartKeys(running, next)}
	// Sources verified by hookd's own token issuer keep their definition:
	// the issuer is built from them at start.
	old := map[string]config.Source{}
	for _, s := range running.Sources {
		old[s.Name] = s
	}
	var sources []config.Source
	seen := map[string]bool{}
	for _, s := range next.Sources {
		seen[s.Name] = true
		o, had := old[s.Name]
		if (s.UsesIssuer() || (had && o.UsesIssuer())) && !(had && config.SameSource(o, s)) {
			res.NeedsRestart = append(res.NeedsRestart, fmt.Sprintf("sources (%s): oauth_issuer", s.Name))
			if had {
				sources = append(sources, o)
			}
			continue
		}
		sources = append(sources, s)
	}
	for _, o := range running.Sources {
		if !seen[o.Name] && o.UsesIssuer() {
			res.NeedsRestart = append(res.NeedsRestart, fmt.Sprintf("sources (%s): oauth_issuer", o.Name))
			sources = append(sources, o)
		}
	}
	ch, err := a.engine.ReloadConfig(ctx, engine.Configured{
		Sources: sources, Destinations: next.Destinations, Subscriptions: next.Subscriptions,
		MaxSources: next.Limits.MaxSources, MaxDestinations: next.Limits.MaxDestinations, MaxSubscriptions: next.Limits.MaxSubscriptions,
	})
	if err != nil {
		return nil, err
	}
	res.Changes = ch.Summary()
	applied := *running
	applied.Sources, applied.Destinations, applied.Subscriptions, applied.Limits = sources, next.Destinations, next.Subscriptions, next.Limits
	a.running = &applied
	return res, nil
}

// configNotified takes a notification of the schema that a process read
// its file again: this one reads its own if it has not yet, in the
// background. It reports whether payload was such a notification.
func (a *App) configNotified(payload string) bool {
	if !strings.HasPrefix(payload, configPrefix) {
		return false
	}
	go a.followConfigGen(context.Background())
	return true
}

// watchHangup reloads the configuration on every SIGHUP until stop is
// closed. The signal is caught from the call on: it no longer ends hookd.
func (a *App) watchHangup(stop <-chan struct{}) {
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	go func() {
		defer signal.Stop(hup)
		for {
			select {
			case <-stop:
				return
			case <-hup:
				a.Reload(context.Background(), "SIGHUP", true)
			}
		}
	}()
}

// newReloadCmd is hookd reload: the running server reads its
// configuration file again, through the admin API.
func newReloadCmd() *cobra.Command {
	var conn connFlags
	cmd := &cobra.Command{
		Use:   "reload",
		Short: "Make a running hookd read its configuration file again (as SIGHUP does)",
		Long: `Make a running hookd read its configuration file again, as SIGHUP does, and
print what changed. Sources, destinations, subscriptions and limits change in
place; keys that need a restart (listen, storage…) are listed and keep their
running values. An invalid file is refused with the reason and the running
configuration keeps serving; the command then exits 1.

It calls POST /api/v1/reload with the admin token, so it works wherever the
admin API is reachable, and answers with the outcome, which a signal cannot.
On PostgreSQL, the other replicas read their own files too.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := conn.client(cmd)
			if err != nil {
				return err
			}
			// A reload waits for replaced destinations' attempts in flight.
			c.hc.Timeout = 2 * time.Minute
			raw, err := c.do(cmd.Context(), http.MethodPost, "/api/v1/reload", nil, nil)
			if err != nil {
				return fail(cmd, err)
			}
			if c.output == "json" {
				return printJSON(cmd.OutOrStdout(), raw)
			}
			var res admin.ReloadResult
			if err := json.Unmarshal(raw, &res); err != nil {
				return fail(cmd, err)
			}
			w := cmd.OutOrStdout()
			fmt.Fprintf(w, "reloaded %s\n", res.File)
			if len(res.Changes) == 0 {
				fmt.Fprintln(w, "  no definition or limit changed")
			}
			for _, c := range res.Changes {
				fmt.Fprintf(w, "  %s\n", c)
			}
			for _, k := range res.NeedsRestart {
				fmt.Fprintf(w, "  %s: needs a restart (the running value is kept)\n", k)
			}
			return nil
		},
	}
	addConnFlags(cmd, &conn)
	return cmd
}
