// Package alert emits hookd's operational events (docs/ALERTS.md): a
// destination disabled or enabled, a delivery failed, a failed queue past
// its threshold, the store refusing writes. Each becomes an event of the
// built-in source "hookd", stored through the same group commit as every
// other event and routed like one, so that any destination can subscribe
// to them with the usual retries and failed queue.
//
// Emitting never blocks the caller: alerts wait in a bounded queue in
// memory until the store takes them. While the store refuses writes they
// stay there (and the refusal itself is remembered), and they are stored
// once it takes writes again; an alert that a stop or a crash catches in
// the queue is lost (it is also in the log).
package alert

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"hookd"
	"hookd/internal/store"
)

// Inserter stores one event (the ingest batcher).
type Inserter interface {
	Insert(ctx context.Context, in *store.EventInsert) (store.EventInsertResult, error)
}

// Store is what the failed-queue check reads and where it keeps, per
// destination, whether the threshold was crossed.
type Store interface {
	DeliveryCountByDestination(ctx context.Context, status string) (map[string]int64, error)
	SettingGet(ctx context.Context, name string) (string, error)
	SettingPut(ctx context.Context, name, value string) error
}

// Options configure an Emitter.
type Options struct {
	// Inserter stores the alerts' events.
	Inserter Inserter
	Log      *slog.Logger
	// Now is the clock; nil is time.Now.
	Now func() time.Time
	// Replica names this process in a cluster ("" with one process).
	Replica func() string
	// DedupeWindow is the hookd source's dedupe window: an alert raised
	// again with the same key within it is stored once.
	DedupeWindow time.Duration
	// MaxQueued bounds the alerts waiting in memory; beyond it new ones
	// are dropped (and counted in the log). Default 1000.
	MaxQueued int
	// RetryEvery is the first wait before storing again after the store
	// refused; it doubles up to MaxRetryEvery. Defaults 500ms and 30s.
	RetryEvery, MaxRetryEvery time.Duration

	// Store, Threshold, CheckEvery, Leader and Destinations run the
	// failed-queue check: every CheckEvery, on the leader, each
	// destination whose failed queue holds Threshold deliveries or more
	// raises failed_queue.threshold once, and again only after it fell
	// below. Threshold 0 turns the check off.
	Store        Store
	Threshold    int64
	CheckEvery   time.Duration
	Leader       func() bool
	Destinations func() []string
}

// Emitter turns alerts into events of the hookd source.
type Emitter struct {
	o   Options
	log *slog.Logger

	mu    sync.Mutex
	queue []queued
	// dropped counts the alerts refused since the queue was last full.
	dropped int64
	// refusing is the store's current run of refusals, nil when none.
	refusing *episode
	// marks caches the failed-queue state per destination (leader only).
	marks map[string]mark
	// checks counts the failed-queue checks made.
	checks atomic.Int64

	wake chan struct{}
	stop chan struct{}
	done chan struct{}
	once sync.Once
}

// queued is an alert waiting to be stored, and what to do once it is.
type queued struct {
	a      hookd.Alert
	stored func()
}

// episode is a run of refused writes.
type episode struct {
	since, last time.Time
	err         string
	refused     int64
}

// New returns an Emitter; Start starts it.
func New(o Options) *Emitter {
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Replica == nil {
		o.Replica = func() string { return "" }
	}
	if o.MaxQueued <= 0 {
		o.MaxQueued = 1000
	}
	if o.RetryEvery <= 0 {
		o.RetryEvery = 500 * time.Millisecond
	}
	if o.MaxRetryEvery <= 0 {
		o.MaxRetryEvery = 30 * time.Second
	}
	if o.CheckEvery <= 0 {
		o.CheckEvery = time.Minute
	}
	return &Emitter{o: o, log: o.Log, marks: map[string]mark{}, wake: make(chan struct{}, 1), stop: make(chan struct{}), done: make(chan struct{})}
}

// Emit queues a; it never blocks.
func (e *Emitter) Emit(a hookd.Alert) { e.emit(a, nil) }

func (e *Emitter) emit(a hookd.Alert, stored func()) {
	if a.Time.IsZero() {
		a.Time = e.o.Now()
	}
	if a.Replica == "" {
		a.Replica = e.o.Replica()
	}
	e.mu.Lock()
	if len(e.queue) >= e.o.MaxQueued {
		e.dropped++
		n := e.dropped
		e.mu.Unlock()
		if n == 1 {
			e.log.Warn("alert queue full: alerts are dropped until the store takes the waiting ones", "type", a.Type, "max", e.o.MaxQueued)
		}
		return
	}
	e.queue = append(e.queue, queued{a: a, stored: stored})
	e.mu.Unlock()
	e.poke()
}

func (e *Emitter) poke() {
	select {
	case e.wake <- struct{}{}:
	default:
	}
}

// Start starts storing alerts (and the failed-queue check).
func (e *Emitter) Start() {
	go e.run()
}

// Stop stops the emitter; alerts still queued are stored until ctx ends,
// then given up (and logged).
func (e *Emitter) Stop(ctx context.Context) {
	e.once.Do(func() { close(e.stop) })
	select {
	case <-e.done:
	case <-ctx.Done():
	}
	e.mu.Lock()
	n := len(e.queue)
	e.mu.Unlock()
	if n > 0 {
		e.log.Warn("alerts not stored at the stop", "count", n)
	}
}

func (e *Emitter) run() {
	defer close(e.done)
	backoff := e.o.RetryEvery
	var retry <-chan time.Time
	check := time.NewTicker(e.o.CheckEvery)
	defer check.Stop()
	for {
		select {
		case <-e.wake:
		case <-retry:
		case <-check.C:
			if e.o.Threshold > 0 && e.o.Store != nil {
				e.checkThresholds()
			}
		case <-e.stop:
			// What is queued gets one more try, bounded by Stop's ctx
			// (an insert waits for the batcher, which is still running).
			e.flush(true)
			return
		}
		if e.flush(false) {
			backoff, retry = e.o.RetryEvery, nil
			continue
		}
		retry = time.After(backoff)
		backoff = min(2*backoff, e.o.MaxRetryEvery)
	}
}

// flush stores what waits, oldest first, the store's refusal first of
// all; it reports false when the store refused (the rest waits).
func (e *Emitter) flush(stopping bool) bool {
	for {
		e.mu.Lock()
		var (
			q   queued
			ep  *episode
			any bool
		)
		switch {
		case e.refusing != nil:
			ep, any = e.refusing, true
			q.a = e.refusedAlert(ep)
		case len(e.queue) > 0:
			q, any = e.queue[0], true
		}
		e.mu.Unlock()
		if !any {
			return true
		}
		if err := e.insert(q.a); err != nil {
			if !stopping || !errors.Is(err, context.DeadlineExceeded) {
				e.log.Debug("store an alert; it waits", "type", q.a.Type, "err", err)
			}
			return false
		}
		e.mu.Lock()
		if ep != nil {
			if e.refusing == ep {
				e.refusing = nil
			}
		} else {
			e.queue[0] = queued{}
			e.queue = e.queue[1:]
			e.dropped = 0
		}
		e.mu.Unlock()
		if q.stored != nil {
			q.stored()
		}
	}
}

// refusedAlert is the storage.refusing alert of ep; e.mu is held.
func (e *Emitter) refusedAlert(ep *episode) hookd.Alert {
	since, last := ep.since.UTC(), ep.last.UTC()
	return hookd.Alert{
		Type: hookd.AlertStorageRefusing, Time: e.o.Now(), Replica: e.o.Replica(),
		Key:   hookd.AlertStorageRefusing + ":" + e.o.Replica() + ":" + strconv.FormatInt(since.UnixMicro(), 10),
		Since: &since, Until: &last, Refused: ep.refused, Error: ep.err,
	}
}

// insert stores a as an event of the hookd source.
func (e *Emitter) insert(a hookd.Alert) error {
	now := e.o.Now().UTC()
	rid := hookd.RequestIDPrefix + hookd.NewULID(now)
	id := hookd.EventIDForRequest(rid)
	body, err := json.Marshal(struct {
		ID   string      `json:"id"`
		Type string      `json:"type"`
		Time time.Time   `json:"time"`
		Text string      `json:"text"`
		Data hookd.Alert `json:"data"`
	}{id, a.Type, a.Time.UTC(), Text(a), a})
	if err != nil {
		return err
	}
	ev := &hookd.Event{
		ID: id, Source: hookd.AlertSource, ExternalID: a.Key, Type: a.Type, Key: a.Destination,
		OccurredAt: a.Time.UTC(), ReceivedAt: now, RequestID: rid,
		ContentType: "application/json", Body: body,
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, err = e.o.Inserter.Insert(ctx, &store.EventInsert{Event: ev, DedupeWindow: e.o.DedupeWindow, HeadersJSON: "{}"})
	return err
}

// Observer watches the ingest batcher's commits for refusals (a failed
// commit or sync) and passes every measurement on to next (nil: none).
func (e *Emitter) Observer(next store.BatchObserver) store.BatchObserver {
	return observer{e: e, next: next}
}

type observer struct {
	e    *Emitter
	next store.BatchObserver
}

func (o observer) Committed(events int, d time.Duration, err error) {
	if o.next != nil {
		o.next.Committed(events, d, err)
	}
	if err != nil {
		o.e.refused(err)
	}
}

func (o observer) Synced(d time.Duration, err error) {
	if o.next != nil {
		o.next.Synced(d, err)
	}
	if err != nil {
		o.e.refused(err)
	}
}

// refused records one refused write: the first of a run opens it, and
// the run's alert is stored once the store takes writes again.
func (e *Emitter) refused(err error) {
	now := e.o.Now()
	e.mu.Lock()
	if e.refusing == nil {
		msg := err.Error()
		if len(msg) > 512 {
			msg = strings.ToValidUTF8(msg[:512], "")
		}
		e.refusing = &episode{since: now, err: msg}
		e.log.Warn("the store refuses writes; a storage.refusing alert is stored once it takes them again", "err", err)
	}
	e.refusing.last = now
	e.refusing.refused++
	e.mu.Unlock()
	e.poke()
}

// Checks returns how many failed-queue checks this emitter made as the
// leader.
func (e *Emitter) Checks() int64 { return e.checks.Load() }

// mark is a destination's failed-queue state: above the threshold or
// not, and how many times it crossed it (the alert's key).
type mark struct {
	above   bool
	crossed int64
}

// markSetting is the setting that keeps a destination's mark, so that a
// restart or a new leader knows it.
func markSetting(dest string) string { return "alerts.failed_queue." + dest }

func parseMark(v string) (mark, bool) {
	state, n, ok := strings.Cut(v, ":")
	k, err := strconv.ParseInt(n, 10, 64)
	if !ok || err != nil || (state != "above" && state != "below") {
		return mark{}, false
	}
	return mark{above: state == "above", crossed: k}, true
}

func (m mark) String() string {
	s := "below"
	if m.above {
		s = "above"
	}
	return s + ":" + strconv.FormatInt(m.crossed, 10)
}

// checkThresholds runs one failed-queue check, on the leader only.
func (e *Emitter) checkThresholds() {
	if e.o.Leader != nil && !e.o.Leader() {
		e.mu.Lock()
		clear(e.marks) // a new term reads them from the store again
		e.mu.Unlock()
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	counts, err := e.o.Store.DeliveryCountByDestination(ctx, store.StatusFailed)
	if err != nil {
		e.log.Warn("count the failed queues", "err", err)
		return
	}
	defer e.checks.Add(1)
	for _, dest := range e.o.Destinations() {
		n := counts[dest]
		e.mu.Lock()
		m, ok := e.marks[dest]
		e.mu.Unlock()
		if !ok {
			v, err := e.o.Store.SettingGet(ctx, markSetting(dest))
			switch {
			case errors.Is(err, store.ErrNotFound):
			case err != nil:
				e.log.Warn("read a failed queue's mark", "destination", dest, "err", err)
				continue
			default:
				m, _ = parseMark(v)
			}
			e.mu.Lock()
			e.marks[dest] = m
			e.mu.Unlock()
		}
		switch {
		case n >= e.o.Threshold && !m.above:
			next := mark{above: true, crossed: m.crossed + 1}
			e.mu.Lock()
			e.marks[dest] = next // no second alert while this one waits
			e.mu.Unlock()
			// The mark is stored once the alert is: a crash between the
			// two raises it again with the same key, which dedupes.
			e.emit(hookd.Alert{
				Type: hookd.AlertFailedQueueThreshold, Key: hookd.AlertFailedQueueThreshold + ":" + dest + ":" + strconv.FormatInt(next.crossed, 10),
				Destination: dest, Failed: n, Threshold: e.o.Threshold,
			}, func() { e.putMark(dest, next) })
		case n < e.o.Threshold && m.above:
			next := mark{crossed: m.crossed}
			e.mu.Lock()
			e.marks[dest] = next
			e.mu.Unlock()
			e.putMark(dest, next)
		}
	}
}

func (e *Emitter) putMark(dest string, m mark) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := e.o.Store.SettingPut(ctx, markSetting(dest), m.String()); err != nil {
		e.log.Warn("store a failed queue's mark", "destination", dest, "err", err)
	}
}

// Text is the alert in one line, for people: the body's "text" field,
// which a Slack incoming webhook shows as the message.
func Text(a hookd.Alert) string {
	var b strings.Builder
	b.WriteString("hookd: ")
	switch a.Type {
	case hookd.AlertDestinationDisabled:
		fmt.Fprintf(&b, "destination %s disabled", a.Destination)
		if a.By == hookd.ByOperator {
			b.WriteString(" by an operator")
		}
		if a.Reason != "" {
			b.WriteString(": " + a.Reason)
		}
		if a.DeliveryID != "" {
			fmt.Fprintf(&b, " (delivery %s)", a.DeliveryID)
		}
	case hookd.AlertDestinationEnabled:
		fmt.Fprintf(&b, "destination %s enabled again", a.Destination)
	case hookd.AlertDeliveryFailed:
		fmt.Fprintf(&b, "delivery %s to %s failed after %d attempt(s)", a.DeliveryID, a.Destination, a.Attempts)
		if a.Reason != "" {
			b.WriteString(": " + a.Reason)
		}
	case hookd.AlertFailedQueueThreshold:
		fmt.Fprintf(&b, "the failed queue of %s holds %d deliveries (threshold %d)", a.Destination, a.Failed, a.Threshold)
	case hookd.AlertStorageRefusing:
		b.WriteString("the store refused writes")
		if a.Since != nil && a.Until != nil {
			fmt.Fprintf(&b, " from %s to %s", a.Since.Format(time.RFC3339), a.Until.Format(time.RFC3339))
		}
		fmt.Fprintf(&b, " (%d refused)", a.Refused)
		if a.Error != "" {
			b.WriteString(": " + a.Error)
		}
	default:
		b.WriteString(a.Type)
	}
	if a.Replica != "" {
		fmt.Fprintf(&b, " [replica %s]", a.Replica)
	}
	return b.String()
}
