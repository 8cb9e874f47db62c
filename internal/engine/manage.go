package engine

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"sort"
	"strings"
	"time"

	"hookd"
	"hookd/internal/config"
	"hookd/internal/store"
)

// DestinationView is a destination as the admin API shows it.
type DestinationView struct {
	Name   string `json:"name"`
	Type   string `json:"type"`
	Origin string `json:"origin"`
	// Definition is the destination's definition with its secrets
	// redacted.
	Definition     map[string]any `json:"definition,omitempty"`
	Ordering       string         `json:"ordering"`
	Concurrency    int            `json:"concurrency"`
	Retry          string         `json:"retry_policy"`
	Disabled       bool           `json:"disabled"`
	DisabledAt     *time.Time     `json:"disabled_at,omitempty"`
	DisabledReason string         `json:"disabled_reason,omitempty"`
	InMemory       int            `json:"in_memory"`
	InFlight       int            `json:"in_flight"`
	// Attempts, Succeeded, Failed and Retried count the outcomes of the
	// destination's attempts kept in the store (store.AttemptCounts): by
	// every process on it, across restarts and replaces. Only the
	// *Counted methods fill them.
	Attempts  int64     `json:"attempts"`
	Succeeded int64     `json:"succeeded"`
	Failed    int64     `json:"failed"`
	Retried   int64     `json:"retried"`
	CreatedAt time.Time `json:"created_at"`
	UpdatedAt time.Time `json:"updated_at"`
	// HeadTimeout is the destination's head_timeout ("10m0s"), empty when
	// unset (strict order).
	HeadTimeout string `json:"head_timeout,omitempty"`
}

func (e *Engine) viewOf(de *destEntry) DestinationView {
	d := de.d
	d.mu.Lock()
	v := DestinationView{
		Name: de.def.Name, Type: de.typ, Origin: de.origin, Ordering: d.ordering, Concurrency: d.concurrency,
		Retry: d.policy.Name(), Disabled: d.disabled, DisabledReason: d.disabledReason,
		InMemory: len(d.held), InFlight: d.flying, CreatedAt: de.created, UpdatedAt: de.updated,
	}
	if d.headTimeout > 0 {
		v.HeadTimeout = d.headTimeout.String()
	}
	if d.disabled && !d.disabledAt.IsZero() {
		at := d.disabledAt
		v.DisabledAt = &at
	}
	d.mu.Unlock()
	if len(de.spec) > 0 {
		var m map[string]any
		if json.Unmarshal(de.spec, &m) == nil {
			v.Definition = redactSpec(m).(map[string]any)
		}
	}
	return v
}

// secretKeys are definition keys whose values are never shown.
var secretKeys = map[string]bool{"secret": true, "secrets": true, "password": true, "client_secret": true, "value": true, "token": true}

// sensitiveHeader reports whether a static header's value is likely a
// credential (its name mentions a key, token, secret, password, auth or
// cookie).
func sensitiveHeader(name string) bool {
	n := strings.ToLower(name)
	for _, w := range []string{"key", "token", "secret", "pass", "auth", "cookie", "signature"} {
		if strings.Contains(n, w) {
			return true
		}
	}
	return false
}

func redactSpec(v any) any {
	switch t := v.(type) {
	case map[string]any:
		for k, x := range t {
			if secretKeys[k] {
				t[k] = "[redacted]"
				continue
			}
			if str, ok := x.(string); ok && k == "url" {
				// A URL may carry credentials (amqp://user:password@host,
				// https://chat.example/hook?key=…&token=…): show it
				// without them.
				t[k] = redactedURL(str)
				continue
			}
			if h, ok := x.(map[string]any); ok && k == "headers" {
				for name := range h {
					if sensitiveHeader(name) {
						h[name] = "[redacted]"
					}
				}
				continue
			}
			t[k] = redactSpec(x)
		}
	case []any:
		for i, x := range t {
			t[i] = redactSpec(x)
		}
	}
	return v
}

// DestinationsCounted lists the destinations by name with their attempt
// counts.
func (e *Engine) DestinationsCounted(ctx context.Context) ([]DestinationView, error) {
	vs := e.Destinations()
	if err := e.count(ctx, vs); err != nil {
		return nil, err
	}
	return vs, nil
}

// DestinationCounted returns one destination with its attempt counts.
func (e *Engine) DestinationCounted(ctx context.Context, name string) (DestinationView, error) {
	v, err := e.Destination(name)
	if err != nil {
		return v, err
	}
	vs := []DestinationView{v}
	if err := e.count(ctx, vs); err != nil {
		return DestinationView{}, err
	}
	return vs[0], nil
}

// count fills the attempt counts of vs from the store.
func (e *Engine) count(ctx context.Context, vs []DestinationView) error {
	if len(vs) == 0 {
		return nil
	}
	totals, err := e.st.AttemptCountTotals(ctx)
	if err != nil {
		return err
	}
	for i := range vs {
		c := totals[vs[i].Name]
		vs[i].Attempts, vs[i].Succeeded, vs[i].Failed, vs[i].Retried = c.Attempts, c.Succeeded, c.Failed, c.Retried
	}
	return nil
}

// countedView is a view that a write returns: the write is done, so a
// failure to read the counts leaves them out (logged) rather than failing
// the request.
func (e *Engine) countedView(ctx context.Context, v DestinationView) DestinationView {
	vs := []DestinationView{v}
	if err := e.count(ctx, vs); err != nil {
		e.log.Warn("read a destination's attempt counts", "destination", v.Name, "err", err)
		return v
	}
	return vs[0]
}

// Destinations lists the destinations by name, without their attempt
// counts (DestinationsCounted has them).
func (e *Engine) Destinations() []DestinationView {
	e.mu.Lock()
	defer e.mu.Unlock()
	var out []DestinationView
	for _, de := range e.sortedDests() {
		out = append(out, e.viewOf(de))
	}
	return out
}

// Destination returns one destination, without its attempt counts
// (DestinationCounted has them).
func (e *Engine) Destination(name string) (DestinationView, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	de := e.dests[name]
	if de == nil {
		return DestinationView{}, hookd.Errorf(hookd.ENotFound, "no destination named %q", name)
	}
	return e.viewOf(de), nil
}

// parseDestinationSpec reads a destination's JSON definition: the keys of
// the configuration file (JSON is YAML).
func parseDestinationSpec(spec []byte) (config.Destination, error) {
	def, err := config.ParseDestination(spec)
	if err != nil {
		return def, err
	}
	if err := def.Validate(); err != nil {
		return def, err
	}
	return def, nil
}

// hostOnly are the destination kinds that act on the machine hookd runs
// on: whoever holds an admin token must not be able to run commands or
// write files there, so they come from the configuration file only.
var (
	hostOnly    = map[string]bool{"exec": true, "file": true}
	hostOnlyWhy = map[string]string{"exec": "it runs a command", "file": "it writes a file"}
)

// DestinationPut creates (create true: 409 when it exists) or replaces the
// destination named in spec. The definition is checked by opening it (a
// URL the egress guard refuses is refused here); it is stored before it is
// used, and a replaced destination's pending work carries over.
func (e *Engine) DestinationPut(ctx context.Context, name string, spec []byte, create bool) (DestinationView, error) {
	e.defs.mu.Lock()
	v, err := e.destinationPut(ctx, name, spec, create)
	e.defs.mu.Unlock()
	e.changedIf(err)
	return v, err
}

// destinationPut is DestinationPut; e.defs.mu is held.
func (e *Engine) destinationPut(ctx context.Context, name string, spec []byte, create bool) (DestinationView, error) {
	var m map[string]any
	if err := json.Unmarshal(spec, &m); err != nil || m == nil {
		return DestinationView{}, hookd.Errorf(hookd.EInvalid, "a destination is a JSON object")
	}
	if n, ok := m["name"]; !ok && name != "" {
		m["name"] = name
	} else if name != "" && n != name {
		return DestinationView{}, hookd.Errorf(hookd.EInvalid, "name %v does not match the path's %q", n, name)
	}
	// Secrets sent back redacted keep their stored values (a new
	// destination has none: "[redacted]" is refused there).
	var stored map[string]any
	if n, _ := m["name"].(string); !create && n != "" {
		e.mu.Lock()
		if de := e.dests[n]; de != nil && de.origin == OriginAPI {
			_ = json.Unmarshal(de.spec, &stored)
		}
		e.mu.Unlock()
	}
	if err := keptCredentialsStay(m, stored); err != nil {
		return DestinationView{}, hookd.Errorf(hookd.EInvalid, "invalid destination %v: %v", m["name"], err)
	}
	if err := restoreRedacted(m, stored); err != nil {
		return DestinationView{}, hookd.Errorf(hookd.EInvalid, "invalid destination %v: %v", m["name"], err)
	}
	spec, _ = json.Marshal(m)
	def, err := parseDestinationSpec(spec)
	if err != nil {
		return DestinationView{}, hookd.Errorf(hookd.EInvalid, "invalid destination: %s", cleanYAMLError(err))
	}
	if hostOnly[def.Type] {
		return DestinationView{}, hookd.Errorf(hookd.EInvalid, "invalid destination: type %s acts on the hookd host itself (%s); it is defined in the configuration file, not through the API", def.Type, hostOnlyWhy[def.Type])
	}
	e.mu.Lock()
	old := e.dests[def.Name]
	e.mu.Unlock()
	if old != nil && old.origin == OriginConfig {
		return DestinationView{}, hookd.Errorf(hookd.EConflict, "destination %q is defined in the configuration file; change it there", def.Name)
	}
	if old != nil && create {
		return DestinationView{}, hookd.Errorf(hookd.EConflict, "destination %q exists", def.Name)
	}
	if old == nil && !create {
		return DestinationView{}, hookd.Errorf(hookd.ENotFound, "no destination named %q", def.Name)
	}
	if old == nil {
		// A slot is reserved before the destination is opened, so that
		// concurrent creates cannot pass the cap together.
		e.mu.Lock()
		if n := len(e.dests) + e.destsReserved; e.maxDests > 0 && n >= e.maxDests {
			e.mu.Unlock()
			return DestinationView{}, limitErr("destinations", "limits.max_destinations", n)
		}
		e.destsReserved++
		e.mu.Unlock()
		defer func() {
			e.mu.Lock()
			e.destsReserved--
			e.mu.Unlock()
		}()
	}
	d, err := e.openDestination(ctx, def)
	if err != nil {
		return DestinationView{}, hookd.Errorf(hookd.EInvalid, "invalid destination %s: %v", def.Name, err)
	}
	now := e.clock.Now()
	sealed, err := e.sealSpec(kindDestination, def.Name, spec)
	if err != nil {
		d.dest.Close()
		return DestinationView{}, err
	}
	rec := &store.DestinationRecord{Name: def.Name, Spec: sealed, CreatedAt: now, UpdatedAt: now}
	de := &destEntry{def: def, origin: OriginAPI, spec: spec, d: d, typ: def.Type, created: now, updated: now}
	if old != nil {
		rec.CreatedAt, de.created = old.created, old.created
		old.d.mu.Lock()
		if old.d.disabled {
			d.disabled, d.disabledReason, d.disabledAt = true, old.d.disabledReason, old.d.disabledAt
			rec.DisabledAt, rec.DisabledReason = now, old.d.disabledReason
		}
		// The run of failures carries over too (its record is kept by
		// the store across the replace).
		d.failingSince, d.failingKept = old.d.failingSince, old.d.failingKept
		old.d.mu.Unlock()
	}
	if err := e.st.DestinationPut(ctx, rec); err != nil {
		d.dest.Close()
		return DestinationView{}, err
	}
	e.mu.Lock()
	e.dests[def.Name] = de
	started := e.started && !e.stopped
	e.mu.Unlock()
	if old != nil {
		old.d.shutdown(replaceGrace(ctx), true)
	}
	if started {
		d.start()
	}
	return e.countedView(ctx, e.viewOf(de)), nil
}

// DestinationDelete deletes an API-created destination. Its subscriptions
// must be deleted first; its deliveries stay in the store.
func (e *Engine) DestinationDelete(ctx context.Context, name string) error {
	e.defs.mu.Lock()
	err := e.destinationDelete(ctx, name)
	e.defs.mu.Unlock()
	e.changedIf(err)
	return err
}

func (e *Engine) destinationDelete(ctx context.Context, name string) error {
	e.mu.Lock()
	de := e.dests[name]
	if de == nil {
		e.mu.Unlock()
		return hookd.Errorf(hookd.ENotFound, "no destination named %q", name)
	}
	if de.origin == OriginConfig {
		e.mu.Unlock()
		return hookd.Errorf(hookd.EConflict, "destination %q is defined in the configuration file; remove it there", name)
	}
	var users []string
	for id, s := range e.subs {
		if s.def.Destination == name {
			users = append(users, id)
		}
	}
	if len(users) > 0 {
		e.mu.Unlock()
		sort.Strings(users)
		return hookd.Errorf(hookd.EConflict, "destination %q is used by subscriptions %s; delete them first", name, strings.Join(users, ", "))
	}
	e.mu.Unlock()
	if err := e.st.DestinationDelete(ctx, name); err != nil {
		return err
	}
	e.mu.Lock()
	delete(e.dests, name)
	e.mu.Unlock()
	de.d.shutdown(replaceGrace(ctx), true)
	return nil
}

// DestinationEnable enables a disabled destination: its waiting work is
// attempted again.
func (e *Engine) DestinationEnable(ctx context.Context, name string) (DestinationView, error) {
	e.defs.mu.Lock()
	v, err := e.destinationEnable(ctx, name)
	e.defs.mu.Unlock()
	e.changedIf(err)
	return v, err
}

func (e *Engine) destinationEnable(ctx context.Context, name string) (DestinationView, error) {
	e.mu.Lock()
	de := e.dests[name]
	e.mu.Unlock()
	if de == nil {
		return DestinationView{}, hookd.Errorf(hookd.ENotFound, "no destination named %q", name)
	}
	changed, err := e.st.DestinationSwitch(ctx, name, time.Time{}, "")
	if err != nil {
		return DestinationView{}, err
	}
	de.d.setDisabled(false, "")
	e.log.Info("destination enabled", "destination", name)
	if changed {
		at := e.clock.Now()
		e.alert(hookd.Alert{Type: hookd.AlertDestinationEnabled, Key: switchKey(hookd.AlertDestinationEnabled, name, at), Time: at,
			Destination: name, By: hookd.ByOperator})
	}
	return e.countedView(ctx, e.viewOf(de)), nil
}

// SubscriptionView is a subscription as the admin API shows it.
type SubscriptionView struct {
	ID          string    `json:"id"`
	Origin      string    `json:"origin"`
	Source      string    `json:"source"`
	Destination string    `json:"destination"`
	Events      []string  `json:"events"`
	Filter      any       `json:"filter,omitempty"`
	FilterExpr  string    `json:"filter_expr,omitempty"`
	Enrich      any       `json:"enrich,omitempty"`
	SkipStale   bool      `json:"skip_stale"`
	Active      bool      `json:"active"`
	Transform   string    `json:"transform,omitempty"`
	CreatedAt   time.Time `json:"created_at"`
	UpdatedAt   time.Time `json:"updated_at"`
}

func subView(s *subEntry) SubscriptionView {
	v := SubscriptionView{ID: s.id, Origin: s.origin, Source: s.def.Source, Destination: s.def.Destination,
		Events: s.def.Events, SkipStale: s.def.SkipStale, Active: s.def.Active == nil || *s.def.Active,
		Transform: s.def.Transform, CreatedAt: s.created, UpdatedAt: s.updated}
	if v.Source == "" {
		v.Source = "*"
	}
	if len(v.Events) == 0 {
		v.Events = []string{"*"}
	}
	if s.def.Filter != nil {
		v.Filter = s.def.Filter
	}
	v.FilterExpr = s.def.FilterExpr
	if s.def.Enrich != nil {
		v.Enrich = enrichView(s.def.Enrich)
	}
	return v
}

// Subscriptions lists the subscriptions, oldest first.
func (e *Engine) Subscriptions() []SubscriptionView {
	e.mu.Lock()
	defer e.mu.Unlock()
	out := make([]SubscriptionView, 0, len(e.subs))
	for _, s := range e.subs {
		out = append(out, subView(s))
	}
	sort.Slice(out, func(i, j int) bool {
		if !out[i].CreatedAt.Equal(out[j].CreatedAt) {
			return out[i].CreatedAt.Before(out[j].CreatedAt)
		}
		return out[i].ID < out[j].ID
	})
	return out
}

// Subscription returns one subscription.
func (e *Engine) Subscription(id string) (SubscriptionView, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	s := e.subs[id]
	if s == nil {
		return SubscriptionView{}, hookd.Errorf(hookd.ENotFound, "no subscription %q", id)
	}
	return subView(s), nil
}

var subscriptionKeys = map[string]bool{"source": true, "destination": true, "events": true, "filter": true, "filter_expr": true, "enrich": true, "skip_stale": true, "active": true, "transform": true}

func parseSubscriptionSpec(spec []byte) (config.Subscription, error) {
	s, err := config.ParseSubscription(spec)
	if err != nil {
		return s, err
	}
	if err := s.Validate(); err != nil {
		return s, err
	}
	return s, nil
}

// SubscriptionPut creates (id "": a new id) or replaces a subscription.
// The body is {source, destination, events, filter, filter_expr, enrich, skip_stale, active};
// a body with a url and no destination is the providers' shape (seed
// 001: {"active": true, "events": ["*"], "url": "https://…"}), which
// creates an http destination for it as well.
func (e *Engine) SubscriptionPut(ctx context.Context, id string, body []byte) (SubscriptionView, error) {
	e.defs.mu.Lock()
	v, err := e.subscriptionPut(ctx, id, body)
	e.defs.mu.Unlock()
	e.changedIf(err)
	return v, err
}

func (e *Engine) subscriptionPut(ctx context.Context, id string, body []byte) (SubscriptionView, error) {
	// Not while a source is being deleted: its check for subscriptions
	// and this check for its source must not interleave.
	e.srcOpMu.Lock()
	defer e.srcOpMu.Unlock()
	var m map[string]any
	if err := json.Unmarshal(body, &m); err != nil || m == nil {
		return SubscriptionView{}, hookd.Errorf(hookd.EInvalid, "a subscription is a JSON object")
	}
	delete(m, "...") // the providers' documented example carries this placeholder
	// The replaced subscription's enrich section, whose secrets
	// "[redacted]" keeps.
	var prevEnrich *config.Enrich
	if id == "" {
		e.mu.Lock()
		n := len(e.subs)
		e.mu.Unlock()
		if e.maxSubs > 0 && n >= e.maxSubs {
			return SubscriptionView{}, limitErr("subscriptions", "limits.max_subscriptions", n)
		}
		id = "sub_" + hookd.NewULID(e.clock.Now())
	} else {
		e.mu.Lock()
		s := e.subs[id]
		e.mu.Unlock()
		if s == nil {
			return SubscriptionView{}, hookd.Errorf(hookd.ENotFound, "no subscription %q", id)
		}
		if s.origin == OriginConfig {
			return SubscriptionView{}, hookd.Errorf(hookd.EConflict, "subscription %q is defined in the configuration file; change it there", id)
		}
		prevEnrich = s.def.Enrich
	}
	var destSpec []byte
	if _, hasDest := m["destination"]; !hasDest {
		if _, hasURL := m["url"]; hasURL {
			// The providers' shape: the rest of the keys define an http
			// destination named after the subscription.
			dest := map[string]any{"type": "http", "name": "dest_" + strings.TrimPrefix(id, "sub_")}
			for k, v := range m {
				if !subscriptionKeys[k] {
					dest[k] = v
					delete(m, k)
				}
			}
			if n, ok := dest["name"].(string); ok {
				m["destination"] = n
			}
			destSpec, _ = json.Marshal(dest)
		}
	}
	var unknown []string
	for k := range m {
		if !subscriptionKeys[k] {
			unknown = append(unknown, k)
		}
	}
	if len(unknown) > 0 {
		sort.Strings(unknown)
		return SubscriptionView{}, hookd.Errorf(hookd.EInvalid, "unknown subscription keys: %s (a subscription has source, destination, events, filter, filter_expr, enrich, skip_stale, active, transform; or url and the keys of an http destination)", strings.Join(unknown, ", "))
	}
	// Enrich secrets sent back redacted keep their stored values (a new
	// subscription has none: "[redacted]" is refused there).
	if err := keepEnrichSecrets(m, prevEnrich); err != nil {
		return SubscriptionView{}, hookd.Errorf(hookd.EInvalid, "invalid subscription: %v", err)
	}
	spec, _ := json.Marshal(m)
	def, err := parseSubscriptionSpec(spec)
	if err == nil {
		err = e.checkEnrich(def)
	}
	if err != nil {
		return SubscriptionView{}, hookd.Errorf(hookd.EInvalid, "invalid subscription: %s", cleanYAMLError(err))
	}
	e.mu.Lock()
	unknownSource := e.sources != nil && def.Source != "" && def.Source != "*" && !e.sources[def.Source]
	var names []string
	if unknownSource {
		names = sortedKeys(e.sources)
	}
	e.mu.Unlock()
	if unknownSource {
		return SubscriptionView{}, hookd.Errorf(hookd.EInvalid, "source: no source named %q (the sources: %s)", def.Source, strings.Join(names, ", "))
	}
	if destSpec != nil {
		// Checked after the subscription, so that a bad subscription
		// leaves no destination behind.
		e.mu.Lock()
		existing := e.dests[def.Destination]
		e.mu.Unlock()
		if _, err := e.destinationPut(ctx, "", destSpec, existing == nil); err != nil {
			return SubscriptionView{}, err
		}
	}
	e.mu.Lock()
	if def.Destination == "" || e.dests[def.Destination] == nil {
		e.mu.Unlock()
		return SubscriptionView{}, hookd.Errorf(hookd.EInvalid, "destination: no destination named %q", def.Destination)
	}
	e.mu.Unlock()
	now := e.clock.Now()
	se := &subEntry{id: id, def: def, origin: OriginAPI, created: now, updated: now}
	e.mu.Lock()
	if old := e.subs[id]; old != nil {
		se.created = old.created
	}
	e.mu.Unlock()
	stored, err := e.sealSubscription(id, def, spec)
	if err != nil {
		return SubscriptionView{}, err
	}
	if err := e.st.SubscriptionPut(ctx, &store.SubscriptionRecord{ID: id, Spec: stored, CreatedAt: se.created, UpdatedAt: now}); err != nil {
		return SubscriptionView{}, err
	}
	e.mu.Lock()
	e.subs[id] = se
	err = e.rebuildTable()
	e.mu.Unlock()
	if err != nil {
		return SubscriptionView{}, err
	}
	return subView(se), nil
}

// SubscriptionDelete deletes an API-created subscription.
func (e *Engine) SubscriptionDelete(ctx context.Context, id string) error {
	e.defs.mu.Lock()
	err := e.subscriptionDelete(ctx, id)
	e.defs.mu.Unlock()
	e.changedIf(err)
	return err
}

func (e *Engine) subscriptionDelete(ctx context.Context, id string) error {
	e.mu.Lock()
	s := e.subs[id]
	e.mu.Unlock()
	if s == nil {
		return hookd.Errorf(hookd.ENotFound, "no subscription %q", id)
	}
	if s.origin == OriginConfig {
		return hookd.Errorf(hookd.EConflict, "subscription %q is defined in the configuration file; remove it there", id)
	}
	if err := e.st.SubscriptionDelete(ctx, id); err != nil {
		return err
	}
	e.mu.Lock()
	delete(e.subs, id)
	err := e.rebuildTable()
	e.mu.Unlock()
	return err
}

func cleanYAMLError(err error) string {
	s := err.Error()
	s = strings.TrimPrefix(s, "yaml: ")
	s = strings.ReplaceAll(s, "unmarshal errors:\n  ", "")
	return string(bytes.TrimSpace([]byte(s)))
}

// Retry queues one delivery again, now (a failed one, or any other that
// is not being attempted). It answers the delivery as queued.
func (e *Engine) Retry(ctx context.Context, id string) (*store.Delivery, error) {
	d, err := e.st.DeliveryGet(ctx, id)
	if err != nil {
		if err == store.ErrNotFound {
			return nil, hookd.Errorf(hookd.ENotFound, "no delivery %q", id)
		}
		return nil, err
	}
	if d.Status == store.StatusDelivering {
		return nil, hookd.Errorf(hookd.EConflict, "delivery %s is being attempted", id)
	}
	if _, err := e.st.DeliveryReplayMany(ctx, []*store.Delivery{d}, e.clock.Now()); err != nil {
		return nil, err
	}
	e.wakeReplayed(map[string]bool{d.Destination: true})
	return e.st.DeliveryGet(ctx, id)
}

// ReasonCancelled: an operator cancelled the failed delivery.
const ReasonCancelled = "cancelled by an operator"

// Cancel takes a failed delivery out of the failed queue: it becomes
// cancelled and is never attempted again, unless retried or replayed on
// purpose. Only failed deliveries can be cancelled (one that is still
// being retried lives partly in the dispatcher's memory; disable its
// destination to stop it). Cancelling a cancelled delivery changes
// nothing.
func (e *Engine) Cancel(ctx context.Context, id string) (*store.Delivery, error) {
	d, err := e.st.DeliveryGet(ctx, id)
	if err != nil {
		if errors.Is(err, store.ErrNotFound) {
			return nil, hookd.Errorf(hookd.ENotFound, "no delivery %q", id)
		}
		return nil, err
	}
	switch d.Status {
	case store.StatusCancelled:
		return d, nil
	case store.StatusFailed:
	default:
		return nil, hookd.Errorf(hookd.EConflict, "delivery %s is %s: only failed deliveries can be cancelled (disable the destination to stop its retries)", id, d.Status)
	}
	row := *d
	row.AttemptLog = nil
	row.Status, row.Reason = store.StatusCancelled, ReasonCancelled
	row.NextAttemptAt, row.LeaseUntil = time.Time{}, time.Time{}
	row.UpdatedAt = e.clock.Now()
	// Fenced on the attempts (and generation) read above: a retry or a
	// replay that came first wins.
	skipped, err := e.st.DeliveryWriteMany(ctx, []*store.DeliveryWrite{{Delivery: &row, Fence: d.Attempts}}, 0)
	if err != nil {
		return nil, err
	}
	if len(skipped) > 0 {
		return nil, hookd.Errorf(hookd.EConflict, "delivery %s changed meanwhile (retried or replayed); look at it again", id)
	}
	e.log.Info("delivery cancelled", "delivery", id, "destination", d.Destination)
	return e.st.DeliveryGet(ctx, id)
}

// wakeReplayed tells the dispatchers of the named destinations that rows
// were queued for them.
func (e *Engine) wakeReplayed(names map[string]bool) {
	e.mu.Lock()
	for n := range names {
		if de := e.dests[n]; de != nil {
			de.d.replayed()
		}
	}
	e.mu.Unlock()
	if e.cl != nil && e.announce != nil {
		// An ordered destination's owner may be another replica.
		for n := range names {
			e.announce(AnnounceReplayed, n)
		}
	}
}

// replaceGraceTime bounds how long a replaced or deleted destination's
// attempts in flight may take before they are cut (and sent again by its
// successor or after a restart).
const replaceGraceTime = 5 * time.Second

func replaceGrace(ctx context.Context) context.Context {
	c, cancel := context.WithTimeout(context.WithoutCancel(ctx), replaceGraceTime)
	context.AfterFunc(c, cancel)
	return c
}

func sortedKeys(m map[string]bool) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
