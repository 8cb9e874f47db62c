package cli

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"hookd"
	"hookd/internal/admin"
	"hookd/internal/config"
	"hookd/internal/console"
	"hookd/internal/fsutil"
	// Destination kinds register themselves.
	_ "hookd/internal/destination/amqp"
	_ "hookd/internal/destination/exec"
	_ "hookd/internal/destination/file"
	_ "hookd/internal/destination/kafka"
	_ "hookd/internal/destination/nats"
	_ "hookd/internal/destination/redis"
	_ "hookd/internal/destination/webhook"
	"hookd/internal/egress"
	"hookd/internal/engine"
	"hookd/internal/httpserver"
	"hookd/internal/ingest"
	"hookd/internal/metrics"
	"hookd/internal/secret"
	"hookd/internal/store"
	"hookd/internal/store/postgres"
	"hookd/internal/store/sqlite"
	"hookd/internal/verify"
)

// App is one hookd server process as an object: Open, Serve, Shutdown. A
// test runs it whole on 127.0.0.1:0 with a temporary data directory.
type App struct {
	cfg *config.Config
	log *slog.Logger

	st      store.Store
	batcher *store.Batcher
	engine  *engine.Engine
	// clock is the delivery engine's clock; nil is the wall clock. Tests
	// set it before Open.
	clock engine.Clock
	// idleAfter is how long an idle destination keeps its goroutine; 0
	// is the engine's default. Tests set it before Open.
	idleAfter time.Duration
	srv       *http.Server
	ln        net.Listener
	// metrics is nil when metrics.enabled is false; metricsSrv and
	// metricsLn serve it when metrics.listen is set.
	metrics    *metrics.Metrics
	metricsSrv *http.Server
	metricsLn  net.Listener
	// guard is the SSRF guard of every outbound connection.
	guard *egress.Guard

	// now is the clock of verification and ingest; nil is time.Now.
	// Tests set it before Open to expire tokens without sleeping.
	now func() time.Time

	// AdminToken is the generated admin token, when none was configured.
	generatedToken string

	// fresh holds connections that have not sent a request yet: Shutdown
	// closes them rather than wait for them.
	fresh   map[net.Conn]bool
	freshMu sync.Mutex

	shutdownOnce sync.Once
	shutdownErr  error
	ready        bool
	mu           sync.Mutex
}

// NewApp returns an App for cfg; nothing is opened yet.
func NewApp(cfg *config.Config, log *slog.Logger) *App {
	return &App{cfg: cfg, log: log}
}

// Open opens the store, builds the handlers and listens. On error,
// everything opened so far is closed.
func (a *App) Open(ctx context.Context) (err error) {
	defer func() {
		if err != nil {
			a.closeAll()
		}
	}()
	switch a.cfg.Storage.Driver {
	case "sqlite":
		if a.st, err = sqlite.Open(ctx, a.cfg.Storage.Path, a.log, sqlite.Options{}); err != nil {
			return fmt.Errorf("open storage: %w", err)
		}
	case "postgres":
		pg, err := postgres.Open(ctx, a.cfg.Storage.DSN, a.log, postgres.Options{})
		if err != nil {
			return fmt.Errorf("open storage: %w", err)
		}
		a.st = pg
		if err := pg.LockServing(ctx); err != nil {
			return fmt.Errorf("open storage: %w", err)
		}
	default:
		return fmt.Errorf("storage.driver %q is not available in this build (use sqlite or postgres)", a.cfg.Storage.Driver)
	}
	tokens := a.cfg.Admin.Tokens
	if len(tokens) == 0 {
		tok, err := a.st.SettingGetOrCreate(ctx, "admin_token", "hk_admin_"+randomToken())
		if err != nil {
			return err
		}
		a.generatedToken = tok
		tokens = []string{tok}
	}
	// The one SSRF guard: every outbound connection (deliveries, token
	// endpoints, JWKS, introspection) is checked and dialed by it.
	guard, err := egress.NewGuard(a.cfg.Egress.AllowPrivate, a.cfg.Egress.AllowHTTPHosts)
	if err != nil {
		return fmt.Errorf("egress: %w", err)
	}
	if err := guard.SetProxy(a.cfg.Egress.Proxy); err != nil {
		return err
	}
	a.guard = guard
	// The engine recovers what the last process left unfinished before
	// the first event is committed, then takes every committed batch.
	keys, newKeys, err := a.keyring()
	if err != nil {
		return err
	}
	var onAttempt func(string, string, time.Duration)
	if a.cfg.Metrics.On() {
		a.metrics = metrics.New(hookd.Version)
		onAttempt = a.metrics.Attempt
	}
	a.engine = engine.New(engine.Options{
		Store: a.st, Log: a.log, Clock: a.clock, Egress: guard, Keyring: keys, NewKeyring: newKeys,
		DisableAfter: a.cfg.Delivery.DisableAfter.D(), MemCap: a.cfg.Delivery.MemoryQueue,
		MemBytes:  int(a.cfg.Delivery.MemoryQueueBytes),
		OnAttempt: onAttempt,
		Retention: a.cfg.Retention.Events.D(), RetentionInterval: a.cfg.Retention.Interval.D(),
		IdleAfter:  a.idleAfter,
		MaxSources: a.cfg.Limits.MaxSources, MaxDestinations: a.cfg.Limits.MaxDestinations, MaxSubscriptions: a.cfg.Limits.MaxSubscriptions,
	})
	if err := a.engine.Open(ctx, a.cfg.Destinations, a.cfg.Subscriptions); err != nil {
		return fmt.Errorf("delivery: %w", err)
	}
	a.batcher = store.NewBatcher(a.st, a.log, store.BatcherOptions{})
	a.batcher.OnCommit = a.engine.OnCommit
	if a.metrics != nil {
		a.batcher.Observer = a.metrics
		a.metrics.QueueDepth(a.batcher.QueueLen)
		if sq, ok := a.st.(*sqlite.Store); ok {
			a.metrics.IndexBacklog(sq.IndexBacklog)
		}
		a.metrics.Destinations(a.destinationGauges)
	}
	errs := &httpserver.Errors{Log: a.log, RetryAfter: a.cfg.Server.RetryAfter.D()}
	// The issuer serves every oauth_issuer source: it is built from all of
	// them before any source's verifiers are. Nil when none uses it.
	issuer, err := verify.NewIssuer(ctx, verify.IssuerOptions{Store: a.st, Sources: a.cfg.Sources, Now: a.now, Log: a.log})
	if err != nil {
		return err
	}
	// Ingest and the token endpoint share one in-flight cap, the admin API
	// and console have their own: no flood of one starves the other. A
	// request to either takes its slot only once its body is in.
	public := httpserver.NewGate(a.cfg.Server.MaxInFlight)
	adminGate := httpserver.NewGate(a.cfg.Server.AdminMaxInFlight)
	in, err := ingest.New(ingest.Options{
		Sources: a.cfg.Sources, Inserter: a.batcher, Errors: errs,
		AckDeadline: a.cfg.Server.AckDeadline.D(), VerifyTimeout: a.cfg.Server.VerifyTimeout.D(), Log: a.log,
		Now: a.now, Egress: guard, Issuer: issuer, InFlight: public,
	})
	if err != nil {
		return err
	}
	// Sources created through the API are served by the ingest handler
	// and managed by the engine (it knows which subscriptions use them).
	a.engine.SetSources(a.cfg.Sources, in, a.cfg.ParseSource)
	if err := a.engine.LoadSources(ctx); err != nil {
		return fmt.Errorf("load sources: %w", err)
	}
	api := admin.New(admin.Options{Store: a.st, Errors: errs, Log: a.log, Tokens: tokens, Sources: a.cfg.Sources, Engine: a.engine})
	mux := http.NewServeMux()
	if a.metrics != nil {
		mux.Handle("/in/{source}", a.metrics.Ingest(in.Has, in))
	} else {
		mux.Handle("/in/{source}", in)
	}
	if a.metrics != nil && a.cfg.Metrics.Listen == "" {
		mux.Handle("GET /metrics", a.metrics.Handler())
	}
	if issuer != nil {
		mux.Handle(verify.IssuerTokenPath, httpserver.Limit(issuer, errs, public, verify.IssuerMaxForm))
	}
	// The admin API authorizes before it reads a body: a stranger's slow
	// upload is refused at once, and an admin's is the admin's.
	mux.Handle("/api/v1/", httpserver.Limit(api, errs, adminGate, 0))
	con := httpserver.Limit(console.Handler(), errs, adminGate, 0)
	mux.Handle("/console/", con)
	mux.Handle("/console", con)
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		httpserver.WriteJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, r *http.Request) {
		if err := a.readiness(r.Context()); err != nil {
			errs.Write(w, r, &hookd.Error{Code: hookd.EUnavailable, Message: "not ready: " + hookd.ErrorMessage(err), Err: err})
			return
		}
		// The last commit's outcome is information, not readiness (see
		// readiness): an operator sees a failing disk here.
		body := map[string]string{"status": "ready", "last_commit": "ok"}
		if err := a.batcher.Healthy(); err != nil {
			body["last_commit"] = "failed: " + hookd.ErrorMessage(err)
		}
		httpserver.WriteJSON(w, http.StatusOK, body)
	})
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		errs.Write(w, r, hookd.Errorf(hookd.ENotFound, "no route %s %s", r.Method, r.URL.Path))
	})
	// No overall cap: each group of paths has its gate above; health,
	// metrics and 404 answers are cheap and never queued.
	a.srv = httpserver.New(httpserver.Handler(mux, errs, 0), a.cfg.Server, a.log)
	a.fresh = map[net.Conn]bool{}
	a.srv.ConnState = a.trackFresh
	if err := a.batcher.Start(ctx); err != nil {
		return err
	}
	if a.ln, err = net.Listen("tcp", a.cfg.Listen); err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	// The listener lets the handler see a request that declares its
	// length twice, which net/http would otherwise accept.
	a.ln = httpserver.NewListener(a.ln)
	if a.metrics != nil && a.cfg.Metrics.Listen != "" {
		if a.metricsLn, err = net.Listen("tcp", a.cfg.Metrics.Listen); err != nil {
			return fmt.Errorf("metrics.listen: %w", err)
		}
		m := http.NewServeMux()
		m.Handle("GET /metrics", a.metrics.Handler())
		a.metricsSrv = &http.Server{Handler: m, ReadHeaderTimeout: 5 * time.Second, ReadTimeout: 30 * time.Second, WriteTimeout: 30 * time.Second, IdleTimeout: 120 * time.Second}
	}
	a.mu.Lock()
	a.ready = true
	a.mu.Unlock()
	return nil
}

// MasterKeyFile is where hookd keeps the master key it generated, in the
// data directory, when none is configured.
const MasterKeyFile = "master.key"

// keyring returns the master keys that encrypt stored secrets: the
// configured ones, or the one in the data directory. When there is none
// yet, it returns a function that generates that file, which the engine
// calls the first time it has a secret to keep. A generated key protects
// a copy of the database file but not a copy of the whole data
// directory: production sets HOOKD_MASTER_KEY.
func (a *App) keyring() (*secret.Keyring, func() (*secret.Keyring, error), error) {
	if len(a.cfg.Secrets.MasterKeys) > 0 {
		kr, err := secret.ParseKeyring(a.cfg.Secrets.MasterKeys)
		if err != nil {
			return nil, nil, fmt.Errorf("secrets.master_keys: %w", err)
		}
		return kr, nil, nil
	}
	if a.cfg.Storage.Driver != "sqlite" {
		// A key file next to a remote database would protect nothing and
		// differ from one machine to the next: the operator gives the key.
		return nil, func() (*secret.Keyring, error) {
			return nil, hookd.Errorf(hookd.EUnavailable, "storing a secret needs a master key: set HOOKD_MASTER_KEY or secrets.master_keys (with %s storage hookd keeps no key file of its own)", a.cfg.Storage.Driver)
		}, nil
	}
	path := filepath.Join(a.cfg.Storage.Path, MasterKeyFile)
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, func() (*secret.Keyring, error) { return a.generateKey(path) }, nil
	}
	if err != nil {
		return nil, nil, fmt.Errorf("read the master key: %w", err)
	}
	kr, err := secret.ParseKeyring([]string{strings.TrimSpace(string(b))})
	if err != nil {
		return nil, nil, fmt.Errorf("%s: %w", path, err)
	}
	return kr, nil, nil
}

// generateKey writes a new master key to path (0600, synced) and returns
// it.
func (a *App) generateKey(path string) (*secret.Keyring, error) {
	spec := secret.GenerateMasterKey("k" + time.Now().UTC().Format("20060102"))
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return nil, fmt.Errorf("create %s: %w", path, err)
	}
	_, werr := f.WriteString(spec + "\n")
	serr := f.Sync()
	cerr := f.Close()
	if err := errors.Join(werr, serr, cerr); err != nil {
		os.Remove(path)
		return nil, fmt.Errorf("write %s: %w", path, err)
	}
	if err := fsutil.SyncDir(filepath.Dir(path)); err != nil {
		return nil, fmt.Errorf("sync %s: %w", filepath.Dir(path), err)
	}
	a.log.Warn("generated a master key for secrets stored in the database, next to it; set HOOKD_MASTER_KEY to keep it elsewhere", "file", path)
	return secret.ParseKeyring([]string{spec})
}

func (a *App) readiness(ctx context.Context) error {
	a.mu.Lock()
	ready := a.ready
	a.mu.Unlock()
	if !ready {
		return hookd.Errorf(hookd.EUnavailable, "shutting down")
	}
	// The last commit's outcome is deliberately not part of readiness: a
	// balancer would take hookd out of rotation, no commit would ever be
	// tried again, and it would stay out for good.
	return a.st.Ping(ctx)
}

// destinationGauges is what the metrics report of each destination.
func (a *App) destinationGauges() []metrics.Destination {
	views := a.engine.Destinations()
	out := make([]metrics.Destination, len(views))
	for i, v := range views {
		out[i] = metrics.Destination{Name: v.Name, Disabled: v.Disabled, InMemory: v.InMemory, InFlight: v.InFlight}
	}
	return out
}

// MetricsAddr is the address of the metrics listener, "" when /metrics is
// served on the main one (or not at all).
func (a *App) MetricsAddr() string {
	if a.metricsLn == nil {
		return ""
	}
	return a.metricsLn.Addr().String()
}

// Addr is the address the server listens on.
func (a *App) Addr() string { return a.ln.Addr().String() }

// Serve serves until Shutdown or Close; it returns nil after a shutdown.
func (a *App) Serve() error {
	if a.metricsSrv != nil {
		go func() {
			if err := a.metricsSrv.Serve(a.metricsLn); err != nil && !errors.Is(err, http.ErrServerClosed) {
				a.log.Error("metrics listener stopped", "err", err)
			}
		}()
	}
	err := a.srv.Serve(a.ln)
	if errors.Is(err, http.ErrServerClosed) {
		return nil
	}
	return err
}

// Shutdown stops accepting, lets in-flight requests finish and their
// commits land, then closes the store. When ctx ends first (the second
// signal, or the grace period), it closes everything at once: requests
// still waiting get no answer, and nothing was answered 200 that is not
// committed.
func (a *App) Shutdown(ctx context.Context) error {
	a.shutdownOnce.Do(func() {
		a.mu.Lock()
		a.ready = false
		a.mu.Unlock()
		var errs []error
		drained := make(chan error, 1)
		go func() { drained <- a.srv.Shutdown(ctx) }()
		// http.Server.Shutdown waits for a connection that never sent a
		// request (a pool's spare, a balancer's probe) as if it were busy.
		// Once a request already on its way has had time to be read, close
		// the ones still fresh.
		select {
		case err := <-drained:
			drained <- err
		case <-time.After(250 * time.Millisecond):
			a.closeFresh()
		}
		if err := <-drained; err != nil {
			errs = append(errs, fmt.Errorf("drain requests: %w", err))
			a.srv.Close()
		}
		// The batcher gets its own bound: even when the grace period is
		// over, the store must not close under a commit in progress.
		stopCtx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := a.batcher.Stop(stopCtx); err != nil {
			errs = append(errs, fmt.Errorf("drain commits: %w", err))
		}
		// Attempts in flight get what is left of the grace period (at
		// least a moment); one cut short is made again after the restart.
		engCtx, cancelEng := context.WithTimeout(context.Background(), 5*time.Second)
		if dl, ok := ctx.Deadline(); ok && time.Until(dl) < 5*time.Second {
			cancelEng()
			engCtx, cancelEng = context.WithTimeout(context.Background(), max(time.Until(dl), 100*time.Millisecond))
		}
		if a.engine != nil {
			if err := a.engine.Stop(engCtx); err != nil {
				errs = append(errs, fmt.Errorf("stop delivery: %w", err))
			}
		}
		cancelEng()
		if a.metricsSrv != nil {
			a.metricsSrv.Close()
			a.metricsLn.Close() // when Serve never ran
		}
		if err := a.st.Close(); err != nil {
			errs = append(errs, fmt.Errorf("close storage: %w", err))
		}
		if a.guard != nil {
			a.guard.CloseIdleConnections()
		}
		a.shutdownErr = errors.Join(errs...)
	})
	return a.shutdownErr
}

func (a *App) trackFresh(c net.Conn, st http.ConnState) {
	if st == http.StateIdle {
		return // only ever follows StateActive, which removed it
	}
	a.freshMu.Lock()
	defer a.freshMu.Unlock()
	if st == http.StateNew {
		a.fresh[c] = true
	} else {
		delete(a.fresh, c)
	}
}

func (a *App) closeFresh() {
	a.freshMu.Lock()
	defer a.freshMu.Unlock()
	for c := range a.fresh {
		c.Close()
		delete(a.fresh, c)
	}
}

func (a *App) closeAll() {
	if a.engine != nil {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		a.engine.Stop(ctx)
		cancel()
	}
	if a.ln != nil {
		a.ln.Close()
	}
	if a.metricsLn != nil {
		a.metricsLn.Close()
	}
	if a.st != nil {
		a.st.Close()
	}
}

// PrintBanner tells the user where things are and how to try them.
func (a *App) PrintBanner(w io.Writer) {
	addr := a.Addr()
	host, port, _ := net.SplitHostPort(addr)
	if ip := net.ParseIP(host); ip == nil || ip.IsUnspecified() {
		host = "localhost"
	}
	base := "http://" + net.JoinHostPort(host, port)
	fmt.Fprintf(w, "hookd %s listening on %s\n", hookd.Version, addr)
	if a.cfg.Storage.Driver == "sqlite" {
		abs, err := filepath.Abs(a.cfg.Storage.Path)
		if err != nil {
			abs = a.cfg.Storage.Path
		}
		fmt.Fprintf(w, "  data:        %s (sqlite)\n", abs)
	} else {
		fmt.Fprintf(w, "  data:        %s (%s)\n", redactDSN(a.cfg.Storage.DSN), a.cfg.Storage.Driver)
	}
	token := "<one of admin.tokens>"
	if a.generatedToken != "" {
		token = a.generatedToken
		fmt.Fprintf(w, "  admin token: %s (generated and kept in the database; set HOOKD_ADMIN_TOKEN to choose your own)\n", token)
	} else {
		fmt.Fprintf(w, "  admin token: from the configuration (%d)\n", len(a.cfg.Admin.Tokens))
	}
	for _, s := range a.cfg.Sources {
		fmt.Fprintf(w, "  source:      %s/in/%s\n", base, s.Name)
	}
	fmt.Fprintf(w, "  console:     %s/console/\n", base)
	switch {
	case a.metricsLn != nil:
		fmt.Fprintf(w, "  metrics:     http://%s/metrics\n", a.metricsLn.Addr())
	case a.metrics != nil:
		fmt.Fprintf(w, "  metrics:     %s/metrics\n", base)
	}
	if a.cfg.Demo {
		fmt.Fprintf(w, "Try it:\n  curl -sS -X POST %s/in/%s -H 'Content-Type: application/json' -d '{\"id\":\"order-1001\",\"type\":\"order.created\",\"total\":42}'\n", base, config.DemoSource)
		fmt.Fprintf(w, "  curl -sS -H 'Authorization: Bearer %s' %s/api/v1/events\n", token, base)
	}
}

// Warnings logs what a user should know about the configuration.
func (a *App) Warnings() {
	for _, name := range a.cfg.UnsetEnv {
		a.log.Warn("configuration refers to an unset environment variable; it expanded to an empty string", "var", name)
	}
	if ingest.ListensBeyondLoopback(a.cfg.Listen) {
		var open []string
		for _, s := range a.cfg.Sources {
			if len(s.Verify) == 0 {
				open = append(open, s.Name)
			}
		}
		if len(open) > 0 {
			a.log.Warn("sources without verification accept every request, and hookd listens beyond loopback", "sources", strings.Join(open, ","), "listen", a.cfg.Listen)
		}
	}
	if len(a.cfg.Sources) == 0 {
		a.log.Warn("no sources configured: POST /in/{source} answers 404 to everything")
	}
	if a.cfg.Storage.Driver == "sqlite" && a.cfg.Storage.DSN != "" {
		a.log.Warn("storage.dsn (or HOOKD_STORAGE_DSN) is set but storage.driver is sqlite: the DSN is not used; set storage.driver: postgres to store in PostgreSQL")
	}
}

func randomToken() string {
	b := make([]byte, 24)
	rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

// redactDSN is a connection string fit to print: a URL without its
// password, or only "(key=value DSN)" for the other form, which may hold
// one anywhere.
func redactDSN(dsn string) string {
	if u, err := url.Parse(dsn); err == nil && u.Scheme != "" && u.Host != "" {
		return u.Redacted()
	}
	return "(key=value DSN)"
}
