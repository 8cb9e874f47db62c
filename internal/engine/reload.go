package engine

import (
	"bytes"
	"context"
	"encoding/json"
	"sync"
	"sync/atomic"

	"hookd/internal/config"
	"hookd/internal/store"
)

// defSync keeps the engine's definitions in step with the store when
// several processes share it: every definition write through the engine
// and every Reload hold mu, so that a Reload reads the store either before
// a write of this process began or after it was applied, never between.
type defSync struct {
	mu sync.Mutex
	// onChange is Options.OnChange.
	onChange func()
	// disabling counts the engine's own disables of a destination in
	// progress (not taking mu: they run on the attempt's goroutine), and
	// disables counts those that ended; a Reload that read the store
	// before one of them leaves disabled destinations disabled.
	disabling atomic.Int32
	disables  atomic.Uint64
	// failed holds the stored definitions the last Reload could not use
	// ("destination:name" → the stored bytes), so that each is logged once
	// rather than at every reload; mu guards it.
	failed map[string]string
}

// changedIf calls Options.OnChange after a definition write that
// succeeded.
func (e *Engine) changedIf(err error) {
	if err == nil && e.defs.onChange != nil {
		e.defs.onChange()
	}
}

// localDisable marks the start of the engine's own disable of a
// destination; the function it returns marks its end, once the store has
// it, and tells the other processes.
func (e *Engine) localDisable() func() {
	e.defs.disabling.Add(1)
	return func() {
		e.defs.disables.Add(1)
		e.defs.disabling.Add(-1)
		e.changedIf(nil)
	}
}

// Reload reads the stored definitions again and applies what changed to
// the running engine, without writing anything back: another process on
// the same store (a replica) created, replaced or deleted a destination,
// subscription or source through its admin API, or disabled or enabled a
// destination. Destinations, subscriptions and sources created through the
// API are added, replaced (when the stored definition differs from the
// one in memory) or removed; a removed destination is shut down as
// DestinationDelete does, its work staying in the store. Every
// destination, configured ones too, takes its disabled state from the
// store. Definitions of the configuration file are never changed. A
// stored definition that cannot be opened is logged (once) and left out;
// a running one of that name keeps its former definition.
//
// Reloads and definition writes through this engine are serialized, so a
// reload never undoes a write of this process. A store that fails leaves
// the engine as it was.
func (e *Engine) Reload(ctx context.Context) error {
	e.defs.mu.Lock()
	var retired []retiring
	err := e.reload(ctx, &retired)
	e.defs.mu.Unlock()
	// Attempts in flight at a replaced or removed destination get their
	// grace outside the lock: writes and reloads need not wait for them.
	// A replacement starts once its predecessor has stopped.
	e.retire(ctx, retired)
	return err
}

// retiring is a dispatcher a reload took out of service, and the one that
// replaces it (nil: the destination was deleted).
type retiring struct{ old, next *dispatcher }

// reload is Reload with e.defs.mu held; it returns in retired the
// dispatchers it took out of service, for the caller to shut down.
func (e *Engine) reload(ctx context.Context, retired *[]retiring) error {
	e.mu.Lock()
	live := e.started && !e.stopped
	reg, parseSource := e.srcReg, e.parseSource
	e.mu.Unlock()
	if !live {
		return nil
	}
	disables := e.defs.disables.Load()
	// Everything is read before anything is applied.
	dests, err := e.st.DestinationList(ctx)
	if err != nil {
		return err
	}
	subs, err := e.st.SubscriptionList(ctx)
	if err != nil {
		return err
	}
	var srcs []*store.SourceRecord
	if reg != nil {
		if srcs, err = e.st.SourceList(ctx); err != nil {
			return err
		}
	}
	rl := &reloading{e: e, failed: map[string]string{}}
	if reg != nil {
		rl.sources(srcs, reg, parseSource)
	}
	if !rl.destinations(ctx, dests, retired) {
		return nil // the engine stopped meanwhile
	}
	// A disable of this process that the store may not have shown yet is
	// not undone; the reload its end triggers applies the store's state.
	keepDisabled := e.defs.disabling.Load() > 0 || e.defs.disables.Load() != disables
	rl.disabledStates(dests, keepDisabled)
	err = rl.subscriptions(subs)
	e.defs.failed = rl.failed
	return err
}

// reloading is one Reload's work.
type reloading struct {
	e *Engine
	// failed collects the stored definitions that could not be used.
	failed map[string]string
}

// fail logs that a stored definition cannot be used, unless the previous
// reload logged the same.
func (rl *reloading) fail(kind, name string, stored []byte, msg string, err error) {
	key := kind + ":" + name
	rl.failed[key] = string(stored)
	if prev, ok := rl.e.defs.failed[key]; ok && prev == string(stored) {
		return
	}
	rl.e.log.Error(msg, kind, name, "err", err)
}

// noRewrite leaves a stored definition as it is: a reload writes nothing.
func noRewrite([]byte) error { return nil }

// sources applies the stored sources.
func (rl *reloading) sources(recs []*store.SourceRecord, reg SourceRegistry, parse func([]byte) (config.Source, error)) {
	e := rl.e
	stored := make(map[string]bool, len(recs))
	for _, r := range recs {
		stored[r.Name] = true
		e.mu.Lock()
		cur := e.srcs[r.Name]
		e.mu.Unlock()
		if cur != nil && cur.origin == OriginConfig {
			continue
		}
		spec, err := e.openSpec(kindSource, r.Name, r.Spec, noRewrite)
		if err != nil {
			rl.fail(kindSource, r.Name, r.Spec, "stored source cannot be decrypted; it is not served as stored", err)
			continue
		}
		if cur != nil && bytes.Equal(cur.spec, spec) {
			continue
		}
		def, err := parse(spec)
		var install func()
		if err == nil {
			install, err = reg.Prepare(def)
		}
		if err != nil {
			rl.fail(kindSource, r.Name, r.Spec, "stored source cannot be built; it is not served as stored", err)
			continue
		}
		install()
		e.mu.Lock()
		e.srcs[r.Name] = &sourceEntry{def: def, origin: OriginAPI, spec: spec, created: r.CreatedAt, updated: r.UpdatedAt}
		e.refreshSourceNames()
		e.mu.Unlock()
		e.log.Info("source changed in the store; serving the stored definition", "source", r.Name, "created", cur == nil)
	}
	e.mu.Lock()
	var gone []string
	for name, s := range e.srcs {
		if s.origin == OriginAPI && !stored[name] {
			gone = append(gone, name)
			delete(e.srcs, name)
		}
	}
	e.refreshSourceNames()
	e.mu.Unlock()
	for _, name := range gone {
		reg.Remove(name)
		e.log.Info("source deleted from the store; no longer served", "source", name)
	}
}

// destinations applies the stored destinations created through the API.
// It reports false when the engine stopped meanwhile.
func (rl *reloading) destinations(ctx context.Context, recs []*store.DestinationRecord, retired *[]retiring) bool {
	e := rl.e
	stored := make(map[string]bool, len(recs))
	for _, r := range recs {
		if len(r.Spec) == 0 {
			continue // a configured destination's state
		}
		stored[r.Name] = true
		e.mu.Lock()
		cur := e.dests[r.Name]
		e.mu.Unlock()
		if cur != nil && cur.origin == OriginConfig {
			continue
		}
		spec, err := e.openSpec(kindDestination, r.Name, r.Spec, noRewrite)
		if err != nil {
			rl.fail(kindDestination, r.Name, r.Spec, "stored destination cannot be decrypted; its deliveries wait", err)
			continue
		}
		if cur != nil && bytes.Equal(cur.spec, spec) {
			continue
		}
		def, err := parseDestinationSpec(spec)
		var d *dispatcher
		if err == nil {
			d, err = e.openDestination(ctx, def)
		}
		if err != nil {
			rl.fail(kindDestination, r.Name, r.Spec, "stored destination cannot be opened; its deliveries wait", err)
			continue
		}
		if !r.DisabledAt.IsZero() {
			d.disabled, d.disabledReason, d.disabledAt = true, r.DisabledReason, r.DisabledAt
		}
		if cur != nil {
			// The run of failures carries over, as in DestinationPut.
			cur.d.mu.Lock()
			d.failingSince, d.failingKept = cur.d.failingSince, cur.d.failingKept
			cur.d.mu.Unlock()
		} else {
			d.restoreFailing(r)
		}
		de := &destEntry{def: def, origin: OriginAPI, spec: spec, d: d, typ: def.Type, created: r.CreatedAt, updated: r.UpdatedAt}
		e.mu.Lock()
		if e.stopped {
			e.mu.Unlock()
			d.dest.Close()
			return false
		}
		e.dests[r.Name] = de
		e.mu.Unlock()
		if cur != nil {
			// Started once the one it replaces has stopped (Reload): two
			// dispatchers of one destination must not run at once, or an
			// ordered destination's head would be sent by both.
			*retired = append(*retired, retiring{old: cur.d, next: d})
		} else {
			d.start()
		}
		e.log.Info("destination changed in the store; using the stored definition", "destination", r.Name, "created", cur == nil)
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.stopped {
		return false
	}
	for name, de := range e.dests {
		if de.origin == OriginAPI && !stored[name] {
			delete(e.dests, name)
			*retired = append(*retired, retiring{old: de.d})
			e.log.Info("destination deleted from the store; its deliveries stay there", "destination", name)
		}
	}
	return true
}

// disabledStates gives every destination the disabled state the store
// records; with keepDisabled, a disabled one stays so.
func (rl *reloading) disabledStates(recs []*store.DestinationRecord, keepDisabled bool) {
	e := rl.e
	state := make(map[string]*store.DestinationRecord, len(recs))
	for _, r := range recs {
		state[r.Name] = r
	}
	e.mu.Lock()
	list := e.sortedDests()
	e.mu.Unlock()
	for _, de := range list {
		d := de.d
		r := state[de.def.Name]
		want := r != nil && !r.DisabledAt.IsZero()
		d.mu.Lock()
		have, reason := d.disabled, d.disabledReason
		d.mu.Unlock()
		switch {
		case want && !have:
			d.setDisabled(true, r.DisabledReason)
			d.mu.Lock()
			d.disabledAt = r.DisabledAt
			d.mu.Unlock()
			e.log.Warn("destination disabled in the store; attempts stop here too", "destination", d.name, "reason", r.DisabledReason)
		case !want && have && !keepDisabled:
			d.setDisabled(false, "")
			e.log.Info("destination enabled in the store; attempts resume here too", "destination", d.name)
		case want && have && reason != r.DisabledReason:
			d.mu.Lock()
			d.disabledReason, d.disabledAt = r.DisabledReason, r.DisabledAt
			d.mu.Unlock()
		}
	}
}

// subscriptions applies the stored subscriptions, rebuilding the routing
// table once when any changed.
func (rl *reloading) subscriptions(recs []*store.SubscriptionRecord) error {
	e := rl.e
	want := make(map[string]*subEntry, len(recs))
	unreadable := map[string]bool{}
	for _, r := range recs {
		def, err := e.parseStoredSubscription(r)
		if err != nil {
			unreadable[r.ID] = true
			rl.fail("subscription", r.ID, r.Spec, "stored subscription cannot be read", err)
			continue
		}
		want[r.ID] = &subEntry{id: r.ID, def: def, origin: OriginAPI, created: r.CreatedAt, updated: r.UpdatedAt}
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	changed := 0
	for id, s := range e.subs {
		if s.origin == OriginAPI && want[id] == nil && !unreadable[id] {
			delete(e.subs, id)
			changed++
		}
	}
	for id, s := range want {
		cur := e.subs[id]
		if cur != nil && (cur.origin == OriginConfig || sameSubscription(cur.def, s.def)) {
			continue
		}
		e.subs[id] = s
		changed++
	}
	if changed == 0 {
		return nil
	}
	e.log.Info("subscriptions changed in the store; routing by the stored ones", "changes", changed)
	return e.rebuildTable()
}

// sameSubscription reports whether two subscriptions route alike (their
// compiled filters aside).
func sameSubscription(a, b config.Subscription) bool {
	ja, err1 := json.Marshal(a)
	jb, err2 := json.Marshal(b)
	return err1 == nil && err2 == nil && bytes.Equal(ja, jb)
}
