package cli

import (
	"context"
	"sync"
	"time"

	"hookd/internal/store/postgres"
)

// defsPayload is the notification that definitions changed: every process
// on the schema reloads them.
const defsPayload = "defs"

// notifyTimeout bounds the notification sent after a definition write; one
// that fails is healed by the next reconciliation.
const notifyTimeout = 5 * time.Second

// defsChanged tells every process on pg's schema that definitions changed
// (the engine's Options.OnChange).
func (a *App) defsChanged(pg *postgres.Store) func() {
	return func() {
		ctx, cancel := context.WithTimeout(context.Background(), notifyTimeout)
		defer cancel()
		if err := pg.Notify(ctx, defsPayload); err != nil {
			a.log.Warn("tell the other processes that definitions changed; they see it at their next reconciliation", "err", err, "within", a.cfg.Cluster.Reconcile.D().String())
		}
	}
}

// clusterSync keeps this process's definitions in step with the other
// processes on the schema: it listens for their notifications and reloads
// the definitions on each, after every (re)connection of the listener, and
// every cluster.reconcile.
type clusterSync struct {
	cancel context.CancelFunc
	done   sync.WaitGroup
	// kick asks for a reload: one runs at a time, and at most one more
	// waits, however many notifications arrive meanwhile.
	kick chan struct{}
}

// startCluster starts the clusterSync of a on pg.
func (a *App) startCluster(pg *postgres.Store) {
	ctx, cancel := context.WithCancel(context.Background())
	cs := &clusterSync{cancel: cancel, kick: make(chan struct{}, 1)}
	a.cluster = cs
	cs.done.Add(2)
	go func() {
		defer cs.done.Done()
		pg.Listen(ctx, a.notified, cs.reload)
	}()
	go func() {
		defer cs.done.Done()
		a.reloadLoop(ctx, cs.kick, a.cfg.Cluster.Reconcile.D())
	}()
}

// reload asks for a reload of the definitions; it never blocks.
func (cs *clusterSync) reload() {
	select {
	case cs.kick <- struct{}{}:
	default: // one is pending already
	}
}

// stop stops the clusterSync and waits for a reload in progress.
func (cs *clusterSync) stop() {
	cs.cancel()
	cs.done.Wait()
}

// workPrefix starts the notification that work was stored for a
// destination ("work:<name>"): the replicas that run it look at the store.
const workPrefix = "work:"

// replayedPrefix starts the notification that rows were queued for a
// destination before what its dispatchers loaded ("replayed:<name>"): an
// ordered destination's owner looks from the start again.
const replayedPrefix = "replayed:"

// announceWork returns the engine's Options.Announce on pg: what is
// announced within a few milliseconds goes out together, one notification
// each, from a goroutine of their own.
func (a *App) announceWork(pg *postgres.Store) func(kind, name string) {
	var (
		mu      sync.Mutex
		pending = map[string]bool{}
		armed   bool
	)
	flush := func() {
		mu.Lock()
		names := pending
		pending, armed = map[string]bool{}, false
		mu.Unlock()
		ctx, cancel := context.WithTimeout(context.Background(), notifyTimeout)
		defer cancel()
		for p := range names {
			if err := pg.Notify(ctx, p); err != nil {
				// The others find the work at their next look at the store.
				a.log.Debug("announce work to the other replicas", "notification", p, "err", err)
			}
		}
	}
	return func(kind, name string) {
		mu.Lock()
		defer mu.Unlock()
		pending[kind+":"+name] = true
		if !armed {
			armed = true
			time.AfterFunc(5*time.Millisecond, flush)
		}
	}
}

// notified handles a notification of the schema: definitions changed, or
// something for onNotify.
func (a *App) notified(payload string) {
	if payload == defsPayload {
		a.cluster.reload()
		return
	}
	if a.onNotify != nil {
		a.onNotify(payload)
	}
}

// reloadLoop reloads the definitions when kicked and every interval, until
// ctx ends.
func (a *App) reloadLoop(ctx context.Context, kick <-chan struct{}, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-kick:
		case <-t.C:
		}
		if err := a.engine.Reload(ctx); err != nil && ctx.Err() == nil {
			a.log.Warn("reload the definitions from the store; retrying at the next change or reconciliation", "err", err, "within", interval.String())
		}
		a.followConfigGen(ctx) // a reload of the configuration files (reload.go)
	}
}
