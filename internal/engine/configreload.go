package engine

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"sync"

	"hookd"
	"hookd/internal/config"
	"hookd/internal/route"
	"hookd/internal/store"
)

// Configured is what a reread configuration file gives the engine: its
// sources, destinations and subscriptions, and the caps on definitions.
type Configured struct {
	Sources       []config.Source
	Destinations  []config.Destination
	Subscriptions []config.Subscription
	// MaxSources, MaxDestinations and MaxSubscriptions are Options'.
	MaxSources, MaxDestinations, MaxSubscriptions int
}

// ConfigChanges is what ReloadConfig changed, each list sorted.
type ConfigChanges struct {
	SourcesAdded, SourcesChanged, SourcesRemoved                []string
	DestinationsAdded, DestinationsChanged, DestinationsRemoved []string
	// Subscriptions is true when the file's subscriptions changed (they
	// are replaced together: their ids are their places in the file).
	Subscriptions bool
	// Limits is true when a cap changed.
	Limits bool
}

// Summary lists the changes in words ("source github added"), nil when
// nothing changed.
func (c ConfigChanges) Summary() []string {
	var out []string
	for _, l := range []struct {
		kind, verb string
		names      []string
	}{
		{"source", "added", c.SourcesAdded}, {"source", "changed", c.SourcesChanged}, {"source", "removed", c.SourcesRemoved},
		{"destination", "added", c.DestinationsAdded}, {"destination", "changed", c.DestinationsChanged}, {"destination", "removed", c.DestinationsRemoved},
	} {
		for _, n := range l.names {
			out = append(out, l.kind+" "+n+" "+l.verb)
		}
	}
	if c.Subscriptions {
		out = append(out, "subscriptions of the file replaced")
	}
	if c.Limits {
		out = append(out, "limits changed")
	}
	return out
}

// ReloadConfig applies a reread configuration file to the running engine:
// the file's sources, destinations and subscriptions are added, replaced
// (when their definition differs) or removed, and the caps take the new
// values. Definitions created through the API are not touched, and keep
// their rule: a configured definition wins over an API one of the same
// name (which is served again once the file no longer defines it).
//
// Every definition is built first (verifiers, destinations opened, the
// routing table compiled); when one fails, or when a subscription created
// through the API uses a source or destination the file no longer has,
// nothing is applied and the error says why. Ingest is never stopped: a
// source is swapped in one step, and a request in progress finishes with
// the definition it began with. A replaced destination's attempts in
// flight get their grace, and its work carries over to the new
// definition; a removed one's work stays in the store.
func (e *Engine) ReloadConfig(ctx context.Context, next Configured) (ConfigChanges, error) {
	e.defs.mu.Lock()
	var retired []retiring
	ch, err := e.reloadConfig(ctx, next, &retired)
	if err == nil {
		// Definitions of the API that a configured one shadowed, or that
		// changed meanwhile, are read again from the store.
		if rerr := e.reload(ctx, &retired); rerr != nil {
			e.log.Warn("read the API's definitions again after a configuration reload; retrying at the next change", "err", rerr)
		}
	}
	e.defs.mu.Unlock()
	e.retire(ctx, retired)
	return ch, err
}

// retire shuts down the dispatchers a reload took out of service, then
// starts the ones replacing them.
func (e *Engine) retire(ctx context.Context, retired []retiring) {
	var wg sync.WaitGroup
	for _, r := range retired {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r.old.shutdown(replaceGrace(ctx), true)
			if r.next != nil {
				e.mu.Lock()
				live := e.started && !e.stopped
				e.mu.Unlock()
				if live {
					r.next.start()
				}
			}
		}()
	}
	wg.Wait()
}

// preparedDest is a configured destination opened by ReloadConfig, not
// yet in service.
type preparedDest struct {
	def config.Destination
	d   *dispatcher
	old *destEntry // the one it replaces, nil when new
}

// reloadConfig is ReloadConfig with e.defs.mu held.
func (e *Engine) reloadConfig(ctx context.Context, next Configured, retired *[]retiring) (ConfigChanges, error) {
	var ch ConfigChanges
	e.mu.Lock()
	live := e.started && !e.stopped
	reg := e.srcReg
	curSrcs := map[string]*sourceEntry{}
	for n, s := range e.srcs {
		curSrcs[n] = s
	}
	curDests := map[string]*destEntry{}
	for n, d := range e.dests {
		curDests[n] = d
	}
	var apiSubs []*subEntry
	curConfigSubs := map[string]*subEntry{}
	for _, s := range e.subs {
		if s.origin == OriginAPI {
			apiSubs = append(apiSubs, s)
		} else {
			curConfigSubs[s.id] = s
		}
	}
	e.mu.Unlock()
	if !live {
		return ch, hookd.Errorf(hookd.EUnavailable, "hookd is not serving")
	}

	// What the file keeps, adds and removes.
	nextSrcs := map[string]config.Source{}
	for _, s := range next.Sources {
		nextSrcs[s.Name] = s
	}
	nextDests := map[string]config.Destination{}
	for _, d := range next.Destinations {
		nextDests[d.Name] = d
	}
	// A subscription of the API must keep its source and destination.
	var uses []string
	for _, s := range apiSubs {
		if s.def.Source != "" && s.def.Source != route.AnySource {
			if cur := curSrcs[s.def.Source]; cur != nil && cur.origin == OriginConfig {
				if _, kept := nextSrcs[s.def.Source]; !kept {
					uses = append(uses, fmt.Sprintf("source %s is used by subscription %s", s.def.Source, s.id))
				}
			}
		}
		if cur := curDests[s.def.Destination]; cur != nil && cur.origin == OriginConfig {
			if _, kept := nextDests[s.def.Destination]; !kept {
				uses = append(uses, fmt.Sprintf("destination %s is used by subscription %s", s.def.Destination, s.id))
			}
		}
	}
	if len(uses) > 0 {
		sort.Strings(uses)
		return ch, hookd.Errorf(hookd.EConflict, "the file removes definitions that subscriptions created through the API use: %s; delete those subscriptions first", strings.Join(uses, ", "))
	}

	// Everything is built before anything is applied.
	type preparedSrc struct {
		def     config.Source
		install func()
	}
	var srcs []preparedSrc
	for _, s := range next.Sources {
		if cur := curSrcs[s.Name]; cur != nil && cur.origin == OriginConfig && config.SameSource(cur.def, s) {
			continue
		}
		if reg == nil {
			return ch, hookd.Errorf(hookd.EUnavailable, "sources cannot be changed by this server")
		}
		install, err := reg.Prepare(s)
		if err != nil {
			return ch, hookd.Errorf(hookd.EInvalid, "%v", err)
		}
		srcs = append(srcs, preparedSrc{def: s, install: install})
	}
	var dests []preparedDest
	closeAll := func() {
		for _, p := range dests {
			p.d.dest.Close()
		}
	}
	var state map[string]*store.DestinationRecord
	for _, def := range next.Destinations {
		cur := curDests[def.Name]
		if cur != nil && cur.origin == OriginConfig && config.SameDestination(cur.def, def) {
			continue
		}
		if state == nil {
			recs, err := e.st.DestinationList(ctx)
			if err != nil {
				closeAll()
				return ch, fmt.Errorf("read the destinations' state: %w", err)
			}
			state = map[string]*store.DestinationRecord{}
			for _, r := range recs {
				state[r.Name] = r
			}
		}
		d, err := e.openDestination(ctx, def)
		if err != nil {
			closeAll()
			return ch, hookd.Errorf(hookd.EInvalid, "destination %s: %v", def.Name, err)
		}
		if cur != nil {
			// The disabled state and the run of failures carry over, as
			// when a destination is replaced through the API.
			cur.d.mu.Lock()
			d.disabled, d.disabledReason, d.disabledAt = cur.d.disabled, cur.d.disabledReason, cur.d.disabledAt
			d.failingSince, d.failingKept = cur.d.failingSince, cur.d.failingKept
			cur.d.mu.Unlock()
		} else if r := state[def.Name]; r != nil {
			if !r.DisabledAt.IsZero() {
				d.disabled, d.disabledReason, d.disabledAt = true, r.DisabledReason, r.DisabledAt
			}
			d.restoreFailing(r)
		}
		dests = append(dests, preparedDest{def: def, d: d, old: cur})
	}
	// The routing table the file's subscriptions and the API's make.
	now := e.clock.Now()
	subs := map[string]*subEntry{}
	for i, s := range next.Subscriptions {
		if s.Destination == "" {
			continue
		}
		if err := e.checkEnrich(s); err != nil {
			closeAll()
			return ch, hookd.Errorf(hookd.EInvalid, "subscriptions[%d].%v", i, err)
		}
		id := fmt.Sprintf("sub_config_%d", i+1)
		se := &subEntry{id: id, def: s, origin: OriginConfig, created: now, updated: now}
		if cur := curConfigSubs[id]; cur != nil && sameSubscription(cur.def, s) {
			se = cur
		}
		subs[id] = se
	}
	subsChanged := len(subs) != len(curConfigSubs)
	for id, s := range subs {
		if curConfigSubs[id] != s {
			subsChanged = true
		}
	}
	if subsChanged {
		rules := map[string]route.Rule{}
		for id, s := range subs {
			rules[id] = e.rule(id, s.def)
		}
		for _, s := range apiSubs {
			rules[s.id] = e.rule(s.id, s.def)
		}
		if _, err := route.NewTable(rules); err != nil {
			closeAll()
			return ch, hookd.Errorf(hookd.EInvalid, "subscriptions: %v", err)
		}
	}

	// Apply: nothing below fails.
	for _, p := range srcs {
		p.install()
		cur := curSrcs[p.def.Name]
		switch {
		case cur == nil:
			ch.SourcesAdded = append(ch.SourcesAdded, p.def.Name)
		case cur.origin == OriginAPI:
			e.log.Warn("a source created through the API has the name of a configured one; the configured one is used", "source", p.def.Name)
			ch.SourcesAdded = append(ch.SourcesAdded, p.def.Name)
		default:
			ch.SourcesChanged = append(ch.SourcesChanged, p.def.Name)
		}
		e.mu.Lock()
		e.srcs[p.def.Name] = &sourceEntry{def: p.def, origin: OriginConfig, created: now, updated: now}
		if cur != nil && cur.origin == OriginConfig {
			e.srcs[p.def.Name].created = cur.created
		}
		e.mu.Unlock()
	}
	for name, cur := range curSrcs {
		if _, kept := nextSrcs[name]; kept || cur.origin != OriginConfig {
			continue
		}
		reg.Remove(name)
		e.mu.Lock()
		delete(e.srcs, name)
		e.mu.Unlock()
		ch.SourcesRemoved = append(ch.SourcesRemoved, name)
	}
	e.mu.Lock()
	e.refreshSourceNames()
	e.mu.Unlock()

	for _, p := range dests {
		de := &destEntry{def: p.def, origin: OriginConfig, d: p.d, typ: p.def.Type, created: now, updated: now}
		switch {
		case p.old == nil:
			ch.DestinationsAdded = append(ch.DestinationsAdded, p.def.Name)
		case p.old.origin == OriginAPI:
			e.log.Warn("a destination created through the API has the name of a configured one; the configured one is used", "destination", p.def.Name)
			ch.DestinationsAdded = append(ch.DestinationsAdded, p.def.Name)
		default:
			de.created = p.old.created
			ch.DestinationsChanged = append(ch.DestinationsChanged, p.def.Name)
		}
		e.mu.Lock()
		e.dests[p.def.Name] = de
		e.mu.Unlock()
		if p.old != nil {
			// Started once the one it replaces has stopped: two dispatchers
			// of one destination never run at once.
			*retired = append(*retired, retiring{old: p.old.d, next: p.d})
		} else {
			p.d.start()
		}
	}
	e.mu.Lock()
	for name, cur := range curDests {
		if _, kept := nextDests[name]; kept || cur.origin != OriginConfig {
			continue
		}
		if e.dests[name] == cur {
			delete(e.dests, name)
		}
		*retired = append(*retired, retiring{old: cur.d})
		ch.DestinationsRemoved = append(ch.DestinationsRemoved, name)
	}
	if subsChanged {
		for id, s := range e.subs {
			if s.origin == OriginConfig {
				delete(e.subs, id)
			}
		}
		for id, s := range subs {
			e.subs[id] = s
		}
		if err := e.rebuildTable(); err != nil {
			// Checked above with the same rules.
			e.log.Error("rebuild the routing table after a configuration reload", "err", err)
		}
		ch.Subscriptions = true
	}
	if e.maxSources != next.MaxSources || e.maxDests != next.MaxDestinations || e.maxSubs != next.MaxSubscriptions {
		e.maxSources, e.maxDests, e.maxSubs = next.MaxSources, next.MaxDestinations, next.MaxSubscriptions
		ch.Limits = true
	}
	e.mu.Unlock()
	for _, l := range [][]string{ch.SourcesAdded, ch.SourcesChanged, ch.SourcesRemoved, ch.DestinationsAdded, ch.DestinationsChanged, ch.DestinationsRemoved} {
		sort.Strings(l)
	}
	return ch, nil
}
