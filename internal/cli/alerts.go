package cli

import (
	"context"

	"hookd"
	"hookd/internal/alert"
	"hookd/internal/store"
)

// The wiring of hookd's operational events (docs/ALERTS.md): the engine
// raises them, the emitter stores them through the ingest batcher as
// events of the built-in source "hookd", and watches the batcher's
// commits for refusals.

// batcherInserter stores through the App's batcher, which is made after
// the emitter.
type batcherInserter struct{ a *App }

func (b batcherInserter) Insert(ctx context.Context, in *store.EventInsert) (store.EventInsertResult, error) {
	return b.a.batcher.Insert(ctx, in)
}

// openAlerts makes the emitter (nil when alerts are off); call it before
// the engine is made, and alertFunc gives the engine its hook.
func (a *App) openAlerts() {
	c := a.cfg.Alerts
	if !c.On() {
		return
	}
	a.alerts = alert.New(alert.Options{
		Inserter: batcherInserter{a}, Log: a.log,
		Replica:      func() string { return a.engine.ReplicaID() },
		DedupeWindow: a.cfg.AlertDedupeWindow(),
		MaxQueued:    c.MaxQueued,
		Store:        a.st, Threshold: c.Threshold(), CheckEvery: c.CheckInterval.D(),
		Leader:       func() bool { return a.engine.Leader() },
		Destinations: func() []string { return a.engine.DestinationNames() },
	})
}

// alertFunc is the engine's Options.Alert: nil when alerts are off.
func (a *App) alertFunc() func(hookd.Alert) {
	if a.alerts == nil {
		return nil
	}
	return a.alerts.Emit
}

// watchStorage lets the emitter see the batcher's refused commits; call
// it once the batcher's observer (metrics) is set.
func (a *App) watchStorage() {
	if a.alerts != nil {
		a.batcher.Observer = a.alerts.Observer(a.batcher.Observer)
	}
}

// startAlerts starts the emitter once the batcher runs.
func (a *App) startAlerts() {
	if a.alerts != nil {
		a.alerts.Start()
	}
}

// stopAlerts stores what the emitter holds while ctx lasts, before the
// batcher stops.
func (a *App) stopAlerts(ctx context.Context) {
	if a.alerts != nil {
		a.alerts.Stop(ctx)
	}
}
