package engine

import (
	"context"
	"encoding/json"
	"errors"
	"sync"
	"time"

	"hookd"
	"hookd/internal/store"
)

// ReplayFilter selects what a bulk replay sends again. With Status set,
// it replays the deliveries in that status (the failed queue: "failed");
// without, it replays the events matching the filter to the destinations
// of the subscriptions they match now. Destination narrows either to one
// destination. Type is an exact event type or a pattern with routing's
// semantics ("order.*").
type ReplayFilter struct {
	Source      string    `json:"source,omitempty"`
	Type        string    `json:"type,omitempty"`
	Since       time.Time `json:"since,omitzero"`
	Until       time.Time `json:"until,omitzero"`
	Status      string    `json:"status,omitempty"`
	Destination string    `json:"destination,omitempty"`
}

// Replay states.
const (
	ReplayRunning = "running"
	ReplayDone    = "done"
	ReplayFailed  = "failed"
)

// ReplayJob is a bulk replay and its progress.
type ReplayJob struct {
	ID     string       `json:"id"`
	Filter ReplayFilter `json:"filter"`
	State  string       `json:"state"`
	// Total is how many events (or deliveries, with a status filter)
	// match; Done how many of them are processed; Queued how many
	// deliveries were queued again.
	Total      int64      `json:"total"`
	Done       int64      `json:"done"`
	Queued     int64      `json:"queued"`
	Error      string     `json:"error,omitempty"`
	StartedAt  time.Time  `json:"started_at"`
	FinishedAt *time.Time `json:"finished_at,omitempty"`

	// pass and cursor are where the replay has got to (kept with the
	// record in a cluster, so that the leader resumes a replay whose
	// replica died from there).
	pass   int
	cursor string
	mu     *sync.Mutex // nil in snapshots
}

// replayRecord is a replay as a cluster stores it.
type replayRecord struct {
	Job    ReplayJob `json:"job"`
	Pass   int       `json:"pass"`
	Cursor string    `json:"cursor"`
}

// persist stores the replay's record (in a cluster; nothing otherwise).
// A failure is logged: the progress shown elsewhere lags, the replay goes
// on.
func (e *Engine) persist(ctx context.Context, j *ReplayJob) {
	if e.cl == nil {
		return
	}
	j.mu.Lock()
	rec := replayRecord{Job: ReplayJob{ID: j.ID, Filter: j.Filter, State: j.State, Total: j.Total, Done: j.Done, Queued: j.Queued,
		Error: j.Error, StartedAt: j.StartedAt, FinishedAt: j.FinishedAt}, Pass: j.pass, Cursor: j.cursor}
	j.mu.Unlock()
	b, _ := json.Marshal(rec)
	if err := e.cl.st.ReplayJobPut(ctx, j.ID, e.cl.id, rec.Job.State == ReplayRunning, b); err != nil {
		e.log.Warn("record a replay's progress", "replay", j.ID, "err", err)
	}
}

// resumeReplays takes over the replays whose replica died before
// finishing them (the leader does, on every heartbeat).
func (e *Engine) resumeReplays(ctx context.Context) {
	orphans, err := e.cl.st.ReplayJobOrphans(ctx, e.cl.id)
	if err != nil {
		e.log.Warn("look for replays left by a replica that died", "err", err)
		return
	}
	for id, b := range orphans {
		var rec replayRecord
		if err := json.Unmarshal(b, &rec); err != nil {
			e.log.Error("a stored replay cannot be read; it is not resumed", "replay", id, "err", err)
			continue
		}
		j := rec.Job
		j.pass, j.cursor, j.mu = rec.Pass, rec.Cursor, new(sync.Mutex)
		e.mu.Lock()
		if e.stopped || e.jobs[id] != nil {
			e.mu.Unlock()
			continue
		}
		e.jobs[id] = &j
		e.replays.Add(1)
		e.mu.Unlock()
		e.persist(ctx, &j) // owned by this replica from now on
		e.log.Info("resuming a replay whose replica died", "replay", id, "processed", j.Done)
		go e.runReplay(&j)
	}
}

func (j *ReplayJob) snapshot() ReplayJob {
	j.mu.Lock()
	defer j.mu.Unlock()
	return ReplayJob{ID: j.ID, Filter: j.Filter, State: j.State, Total: j.Total, Done: j.Done, Queued: j.Queued,
		Error: j.Error, StartedAt: j.StartedAt, FinishedAt: j.FinishedAt}
}

// maxReplayJobs bounds the finished jobs kept for their progress.
const maxReplayJobs = 100

// ReplayStart starts a bulk replay in the background and returns it.
// Replays keep each event's id: receivers dedupe by webhook-id.
func (e *Engine) ReplayStart(f ReplayFilter) (ReplayJob, error) {
	switch f.Status {
	case "", store.StatusFailed, store.StatusSucceeded, store.StatusCancelled, store.StatusRetrying, store.StatusPending:
	default:
		return ReplayJob{}, hookd.Errorf(hookd.EInvalid, "status: cannot replay deliveries in status %q", f.Status)
	}
	if f.Destination != "" {
		if _, err := e.Destination(f.Destination); err != nil {
			return ReplayJob{}, err
		}
	}
	if f.Type != "" {
		// An exact type, or a pattern such as "order.*".
		if _, err := store.ParseTypeMatch(f.Type, store.DialectLike); err != nil {
			return ReplayJob{}, err
		}
	}
	now := e.clock.Now()
	j := &ReplayJob{ID: "rpl_" + hookd.NewULID(now), Filter: f, State: ReplayRunning, StartedAt: now, mu: new(sync.Mutex)}
	e.mu.Lock()
	if e.stopped {
		e.mu.Unlock()
		return ReplayJob{}, hookd.Errorf(hookd.EUnavailable, "shutting down")
	}
	e.jobs[j.ID] = j
	e.pruneJobs()
	e.replays.Add(1) // under e.mu, with stopped checked: Stop waits for it
	e.mu.Unlock()
	e.persist(context.Background(), j)
	go e.runReplay(j)
	return j.snapshot(), nil
}

// pruneJobs drops the oldest finished jobs; e.mu is held.
func (e *Engine) pruneJobs() {
	for len(e.jobs) > maxReplayJobs {
		var oldest *ReplayJob
		for _, j := range e.jobs {
			if s := j.snapshot(); s.State != ReplayRunning && (oldest == nil || s.StartedAt.Before(oldest.StartedAt)) {
				oldest = j
			}
		}
		if oldest == nil {
			return
		}
		delete(e.jobs, oldest.ID)
	}
}

// Replay returns a replay job's progress.
func (e *Engine) Replay(id string) (ReplayJob, error) {
	e.mu.Lock()
	j := e.jobs[id]
	e.mu.Unlock()
	if j != nil {
		return j.snapshot(), nil
	}
	if e.cl != nil {
		// Run by another replica: its record shows the progress.
		b, err := e.cl.st.ReplayJobGet(context.Background(), id)
		if err == nil {
			var rec replayRecord
			if err := json.Unmarshal(b, &rec); err != nil {
				return ReplayJob{}, err
			}
			return rec.Job, nil
		}
		if !errors.Is(err, store.ErrNotFound) {
			return ReplayJob{}, err
		}
		return ReplayJob{}, hookd.Errorf(hookd.ENotFound, "no replay %q", id)
	}
	return ReplayJob{}, hookd.Errorf(hookd.ENotFound, "no replay %q (replays are kept in memory until a restart)", id)
}

func (e *Engine) runReplay(j *ReplayJob) {
	defer e.replays.Done()
	err := e.replay(e.replayCtx, j)
	if e.replayCtx.Err() != nil && e.cl != nil {
		// Stopped with the process: the record stays running, and the
		// leader resumes it from where it got once this replica has left.
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		e.persist(ctx, j)
		e.log.Info("replay interrupted by the stop; the leader resumes it", "replay", j.ID)
		return
	}
	ctx := context.Background()
	now := e.clock.Now()
	j.mu.Lock()
	j.FinishedAt = &now
	j.State = ReplayDone
	if err != nil {
		j.State = ReplayFailed
		j.Error = hookd.ErrorMessage(err)
		e.log.Error("replay failed", "replay", j.ID, "err", err)
	}
	j.mu.Unlock()
	e.persist(ctx, j)
	s := j.snapshot()
	e.log.Info("replay finished", "replay", j.ID, "state", s.State, "processed", s.Done, "queued", s.Queued)
}

const replayPage = 500

func (e *Engine) replay(ctx context.Context, j *ReplayJob) error {
	f := j.Filter
	queue := func(ds []*store.Delivery, processed int, pass int, next string) error {
		n := 0
		if len(ds) > 0 {
			var err error
			if n, err = e.st.DeliveryReplayMany(ctx, ds, e.clock.Now()); err != nil {
				return err
			}
			names := map[string]bool{}
			for _, d := range ds {
				names[d.Destination] = true
			}
			e.wakeReplayed(names)
		}
		j.mu.Lock()
		j.Done += int64(processed)
		j.Queued += int64(n)
		j.pass, j.cursor = pass, next
		j.mu.Unlock()
		e.persist(ctx, j)
		return nil
	}
	j.mu.Lock()
	startPass, cursor := j.pass, j.cursor
	j.mu.Unlock()
	if f.Status != "" {
		// Two passes over the listing: one counts (for the progress), one
		// queues. The listing's cursor is a position (event seq,
		// destination), so queuing a page, which takes its deliveries out
		// of the status, moves nothing that is still ahead.
		p := &store.DeliveryListParams{Status: f.Status, Destination: f.Destination, Source: f.Source, EventType: f.Type,
			Since: f.Since, Until: f.Until, Limit: replayPage}
		for pass := startPass; pass < 2; pass++ {
			p.After = ""
			if pass == startPass {
				p.After = cursor
			}
			for {
				page, next, err := e.st.DeliveryList(ctx, p)
				if err != nil {
					return err
				}
				if pass == 0 {
					j.mu.Lock()
					j.Total += int64(len(page))
					j.pass, j.cursor = 0, next
					if next == "" {
						j.pass = 1
					}
					j.mu.Unlock()
				} else if err := queue(page, len(page), 1, next); err != nil {
					return err
				}
				if next == "" {
					break
				}
				p.After = next
			}
		}
		return nil
	}
	withBody, limit := e.routingPage()
	p := &store.EventListParams{Source: f.Source, Type: f.Type, Since: f.Since, Until: f.Until, Order: store.OrderAsc, Limit: limit, WithBody: withBody,
		After: cursor}
	if cursor == "" {
		total, err := e.st.EventCount(ctx, p)
		if err != nil {
			return err
		}
		j.mu.Lock()
		j.Total = total
		j.mu.Unlock()
	}
	for {
		evs, next, err := e.st.EventList(ctx, p)
		if err != nil {
			return err
		}
		var ds []*store.Delivery
		for _, ev := range evs {
			for _, d := range e.fanOut(ev) {
				if f.Destination == "" || d.Destination == f.Destination {
					ds = append(ds, d)
				}
			}
		}
		if err := queue(ds, len(evs), 0, next); err != nil {
			return err
		}
		if next == "" {
			return nil
		}
		p.After = next
	}
}
