package cli

import (
	"context"
	"time"

	"hookd"
	"hookd/internal/tracing"
)

// openTracer makes the tracer of tracing.*: nil (off) when no endpoint is
// configured.
func (a *App) openTracer() error {
	t, err := tracing.New(a.cfg.Tracing, tracing.Options{Version: hookd.Version, Log: a.log})
	if err != nil {
		return err
	}
	a.tracer = t
	if t != nil {
		a.log.Info("tracing on", "endpoint", a.cfg.Tracing.EndpointURL(), "sample_ratio", a.cfg.Tracing.Ratio())
	}
	return nil
}

// tracerFlushWait bounds the export of the spans still queued at stop.
const tracerFlushWait = 5 * time.Second

// stopTracer exports the spans still queued (the last attempts') within
// tracerFlushWait or until hard ends, and stops the exporter.
func (a *App) stopTracer(hard context.Context) error {
	if a.tracer == nil {
		return nil
	}
	ctx, cancel := context.WithTimeout(hard, tracerFlushWait)
	defer cancel()
	return a.tracer.Shutdown(ctx)
}
