package engine

import (
	"context"
	"math"
	"time"

	"hookd/internal/store"
)

// pruneLimit bounds the events one prune transaction looks at: the
// transaction holds the single writer, so ingest's commits wait for it.
const pruneLimit = 200

// Prune runs one retention pass: it deletes the events received more than
// the retention ago whose deliveries are all finished, with their
// deliveries and attempt logs, in small transactions. Events after the
// fan-out watermark are never deleted: their deliveries may not have rows
// yet. It returns what it deleted; with no retention it does nothing.
func (e *Engine) Prune(ctx context.Context) (store.PruneResult, error) {
	var total store.PruneResult
	if e.retention <= 0 {
		return total, nil
	}
	wm, err := e.st.WatermarkGet(ctx)
	if err != nil {
		return total, err
	}
	if e.cl != nil {
		// In a cluster, retention is the leader's, and every event has
		// its deliveries' rows from its commit on.
		if !e.cl.isLeader() {
			return total, nil
		}
		if e.cl.isRouted() {
			// Until then the watermark holds back the events stored
			// before replica support that may lack their rows.
			wm = math.MaxInt64
		}
	}
	p := store.PruneParams{Before: e.clock.Now().Add(-e.retention), MaxSeq: wm, Limit: pruneLimit}
	for {
		r, err := e.st.Prune(ctx, p)
		total.Events += r.Events
		total.Deliveries += r.Deliveries
		total.Attempts += r.Attempts
		total.Duplicates += r.Duplicates
		total.Kept += r.Kept
		if err != nil {
			return total, err
		}
		if r.Done {
			// The per-minute attempt and event counts go with the
			// events of their time (the totals stay).
			if _, err := e.st.AttemptCountPrune(ctx, p.Before); err != nil {
				return total, err
			}
			if ec, ok := e.st.(store.EventCounter); ok {
				if _, err := ec.EventCountPrune(ctx, p.Before); err != nil {
					return total, err
				}
			}
			return total, nil
		}
		p.After = r.Next
		// Let the commits waiting for the writer through.
		select {
		case <-ctx.Done():
			return total, ctx.Err()
		case <-time.After(5 * time.Millisecond):
		}
	}
}

// pruneLoop runs Prune a minute after the start, then every interval,
// until stop is closed.
func (e *Engine) pruneLoop(stop <-chan struct{}, done chan<- struct{}) {
	defer close(done)
	t := time.NewTimer(time.Minute)
	defer t.Stop()
	for {
		select {
		case <-stop:
			return
		case <-t.C:
		}
		ctx, cancel := context.WithCancel(context.Background())
		go func() {
			select {
			case <-stop:
			case <-ctx.Done():
			}
			cancel()
		}()
		start := time.Now()
		r, err := e.Prune(ctx)
		cancel()
		switch {
		case err != nil && ctx.Err() == nil:
			e.log.Error("retention pass failed; the next one tries again", "err", err, "events_deleted", r.Events)
		case r.Events > 0 || r.Duplicates > 0:
			e.log.Info("retention pass", "retention", e.retention, "events_deleted", r.Events, "deliveries_deleted", r.Deliveries,
				"attempts_deleted", r.Attempts, "duplicate_requests_deleted", r.Duplicates, "kept_unfinished", r.Kept, "took", time.Since(start).Round(time.Millisecond))
		case r.Kept > 0:
			e.log.Debug("retention pass: old events kept while their deliveries are unfinished", "kept_unfinished", r.Kept)
		}
		t.Reset(e.retentionEvery)
	}
}
