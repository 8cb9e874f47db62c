package engine

import (
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

// SourceRegistry serves sources; package ingest's Handler is one.
type SourceRegistry interface {
	// Prepare builds a source (its verifiers and selectors) and returns
	// the function that starts serving it: definitions are checked before
	// they are stored, and served once they are.
	Prepare(def config.Source) (install func(), err error)
	// Remove stops serving a source.
	Remove(name string)
}

// sourceEntry is a source as the engine knows it.
type sourceEntry struct {
	def              config.Source
	origin           string
	spec             []byte // the API definition (origin api)
	created, updated time.Time
}

// SourceView is a source as the admin API shows it.
type SourceView struct {
	Name         string   `json:"name"`
	Origin       string   `json:"origin"`
	Path         string   `json:"path"`
	Verify       []string `json:"verify"`
	DedupeWindow string   `json:"dedupe_window"`
	MaxBody      int64    `json:"max_body"`
	// Definition is an API source's definition with its secrets redacted.
	Definition map[string]any `json:"definition,omitempty"`
	CreatedAt  *time.Time     `json:"created_at,omitempty"`
	UpdatedAt  *time.Time     `json:"updated_at,omitempty"`
}

func sourceView(s *sourceEntry) SourceView {
	v := SourceView{Name: s.def.Name, Origin: s.origin, Path: "/in/" + s.def.Name, Verify: []string{}, MaxBody: int64(s.def.MaxBody)}
	for _, m := range s.def.Verify {
		v.Verify = append(v.Verify, m.Type)
	}
	if s.def.DedupeWindow != nil {
		v.DedupeWindow = s.def.DedupeWindow.D().String()
	}
	if s.origin == OriginAPI {
		created, updated := s.created, s.updated
		v.CreatedAt, v.UpdatedAt = &created, &updated
		var m map[string]any
		if json.Unmarshal(s.spec, &m) == nil {
			v.Definition = redactSource(m)
		}
	}
	return v
}

// sourceSecretKeys are the keys of verification methods whose values are
// never shown: shared secrets, API keys, passwords, client secrets, verify
// tokens (meta's verify_token, a handshake's token) and Microsoft Graph's
// client states. Public keys are shown; URLs hold no credentials (every
// url option refuses them).
var sourceSecretKeys = map[string]bool{
	"secret": true, "secrets": true, "keys": true, "password": true, "client_secret": true,
	"token": true, "tokens": true, "verify_token": true, "client_states": true,
}

func redactSource(m map[string]any) map[string]any {
	verify, _ := m["verify"].([]any)
	for _, v := range verify {
		redactDeep(v)
	}
	// A handshake's verify tokens (handshake.token).
	redactDeep(m["handshake"])
	return m
}

func redactDeep(v any) {
	switch t := v.(type) {
	case map[string]any:
		for k, x := range t {
			if sourceSecretKeys[k] {
				t[k] = "[redacted]"
				continue
			}
			redactDeep(x)
		}
	case []any:
		for _, x := range t {
			redactDeep(x)
		}
	}
}

// SetSources gives the engine the configured sources, and the registry
// that serves sources; call it before LoadSources.
func (e *Engine) SetSources(configured []config.Source, reg SourceRegistry, parse func([]byte) (config.Source, error)) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.srcReg, e.parseSource = reg, parse
	now := e.clock.Now()
	e.srcs = map[string]*sourceEntry{}
	for _, def := range configured {
		e.srcs[def.Name] = &sourceEntry{def: def, origin: OriginConfig, created: now, updated: now}
	}
	e.refreshSourceNames()
}

// LoadSources serves the sources stored through the API. One that no
// longer decrypts or builds is logged and left out (its requests answer
// 404), so that it cannot keep hookd from starting.
func (e *Engine) LoadSources(ctx context.Context) error {
	recs, err := e.st.SourceList(ctx)
	if err != nil {
		return err
	}
	for _, r := range recs {
		e.mu.Lock()
		taken := e.srcs[r.Name] != nil
		e.mu.Unlock()
		if taken {
			e.log.Warn("a source created through the API has the name of a configured one; the configured one is used", "source", r.Name)
			continue
		}
		spec, err := e.openSpec(kindSource, r.Name, r.Spec, func(b []byte) error {
			cp := *r
			cp.Spec = b
			return e.st.SourcePut(ctx, &cp)
		})
		if err != nil {
			e.log.Error("stored source cannot be decrypted; it answers 404", "source", r.Name, "err", err)
			continue
		}
		def, err := e.parseSource(spec)
		var install func()
		if err == nil {
			install, err = e.srcReg.Prepare(def)
		}
		if err != nil {
			e.log.Error("stored source cannot be built; it answers 404", "source", r.Name, "err", err)
			continue
		}
		install()
		e.mu.Lock()
		e.srcs[r.Name] = &sourceEntry{def: def, origin: OriginAPI, spec: spec, created: r.CreatedAt, updated: r.UpdatedAt}
		e.refreshSourceNames()
		e.mu.Unlock()
	}
	return nil
}

// refreshSourceNames rebuilds the set of names subscriptions may use;
// e.mu is held.
func (e *Engine) refreshSourceNames() {
	e.sources = make(map[string]bool, len(e.srcs))
	for name := range e.srcs {
		e.sources[name] = true
	}
	e.sources[hookd.AlertSource] = true // hookd's own events (docs/ALERTS.md)
	e.countTransforms()
}

// Sources lists the sources by name.
func (e *Engine) Sources() []SourceView {
	e.mu.Lock()
	defer e.mu.Unlock()
	out := make([]SourceView, 0, len(e.srcs))
	for _, s := range e.srcs {
		out = append(out, sourceView(s))
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// Source returns one source.
func (e *Engine) Source(name string) (SourceView, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	s := e.srcs[name]
	if s == nil {
		return SourceView{}, hookd.Errorf(hookd.ENotFound, "no source named %q", name)
	}
	return sourceView(s), nil
}

// SourcePut creates (create true: 409 when it exists) or replaces the
// source named in spec, a JSON object with the keys of a source in the
// configuration file. It is built (its verification methods checked)
// before it is stored, stored sealed, and then served.
func (e *Engine) SourcePut(ctx context.Context, name string, spec []byte, create bool) (SourceView, error) {
	e.defs.mu.Lock()
	v, err := e.sourcePut(ctx, name, spec, create)
	e.defs.mu.Unlock()
	e.changedIf(err)
	return v, err
}

func (e *Engine) sourcePut(ctx context.Context, name string, spec []byte, create bool) (SourceView, error) {
	if e.srcReg == nil {
		return SourceView{}, hookd.Errorf(hookd.EUnavailable, "sources cannot be managed by this server")
	}
	var m map[string]any
	if err := json.Unmarshal(spec, &m); err != nil || m == nil {
		return SourceView{}, hookd.Errorf(hookd.EInvalid, "a source is a JSON object")
	}
	if n, ok := m["name"]; !ok && name != "" {
		m["name"] = name
	} else if name != "" && n != name {
		return SourceView{}, hookd.Errorf(hookd.EInvalid, "name %v does not match the path's %q", n, name)
	}
	// Secrets sent back redacted keep their stored values (a new source
	// has none: "[redacted]" is refused there).
	var stored map[string]any
	if n, _ := m["name"].(string); !create && n != "" {
		e.mu.Lock()
		if se := e.srcs[n]; se != nil && se.origin == OriginAPI {
			_ = json.Unmarshal(se.spec, &stored)
		}
		e.mu.Unlock()
	}
	if err := restoreRedacted(m, stored); err != nil {
		return SourceView{}, hookd.Errorf(hookd.EInvalid, "invalid source: %v", err)
	}
	spec, _ = json.Marshal(m)
	// One change of sources at a time: two creates of one name must not
	// both succeed.
	e.srcOpMu.Lock()
	defer e.srcOpMu.Unlock()
	def, err := e.parseSource(spec)
	if err != nil {
		return SourceView{}, hookd.Errorf(hookd.EInvalid, "invalid source: %s", cleanYAMLError(err))
	}
	for _, v := range def.Verify {
		if v.Type == "oauth_issuer" {
			return SourceView{}, hookd.Errorf(hookd.EInvalid, "invalid source: verify: oauth_issuer sources are defined in the configuration file (hookd's token endpoint is built from them at start)")
		}
	}
	e.mu.Lock()
	old := e.srcs[def.Name]
	e.mu.Unlock()
	switch {
	case old != nil && old.origin == OriginConfig:
		return SourceView{}, hookd.Errorf(hookd.EConflict, "source %q is defined in the configuration file; change it there", def.Name)
	case old != nil && create:
		return SourceView{}, hookd.Errorf(hookd.EConflict, "source %q exists", def.Name)
	case old == nil && !create:
		return SourceView{}, hookd.Errorf(hookd.ENotFound, "no source named %q", def.Name)
	}
	if old == nil && e.maxSources > 0 {
		e.mu.Lock()
		n := len(e.srcs)
		e.mu.Unlock()
		if n >= e.maxSources {
			return SourceView{}, limitErr("sources", "limits.max_sources", n)
		}
	}
	install, err := e.srcReg.Prepare(def)
	if err != nil {
		return SourceView{}, hookd.Errorf(hookd.EInvalid, "invalid source: %s", strings.TrimPrefix(err.Error(), "source "+def.Name+": "))
	}
	now := e.clock.Now()
	sealed, err := e.sealSpec(kindSource, def.Name, spec)
	if err != nil {
		return SourceView{}, err
	}
	se := &sourceEntry{def: def, origin: OriginAPI, spec: spec, created: now, updated: now}
	if old != nil {
		se.created = old.created
	}
	if err := e.st.SourcePut(ctx, &store.SourceRecord{Name: def.Name, Spec: sealed, CreatedAt: se.created, UpdatedAt: now}); err != nil {
		return SourceView{}, err
	}
	install()
	e.mu.Lock()
	e.srcs[def.Name] = se
	e.refreshSourceNames()
	e.mu.Unlock()
	e.log.Info("source stored", "source", def.Name, "created", old == nil)
	return sourceView(se), nil
}

// SourceDelete deletes an API-created source: it answers 404 from then
// on. Its subscriptions must be deleted first; its events stay.
func (e *Engine) SourceDelete(ctx context.Context, name string) error {
	e.defs.mu.Lock()
	err := e.sourceDelete(ctx, name)
	e.defs.mu.Unlock()
	e.changedIf(err)
	return err
}

func (e *Engine) sourceDelete(ctx context.Context, name string) error {
	e.srcOpMu.Lock()
	defer e.srcOpMu.Unlock()
	e.mu.Lock()
	s := e.srcs[name]
	if s == nil {
		e.mu.Unlock()
		return hookd.Errorf(hookd.ENotFound, "no source named %q", name)
	}
	if s.origin == OriginConfig {
		e.mu.Unlock()
		return hookd.Errorf(hookd.EConflict, "source %q is defined in the configuration file; remove it there", name)
	}
	var users []string
	for id, sub := range e.subs {
		if sub.def.Source == name {
			users = append(users, id)
		}
	}
	e.mu.Unlock()
	if len(users) > 0 {
		sort.Strings(users)
		return hookd.Errorf(hookd.EConflict, "source %q is used by subscriptions %s; delete them first", name, strings.Join(users, ", "))
	}
	if err := e.st.SourceDelete(ctx, name); err != nil {
		if errors.Is(err, store.ErrNotFound) {
			return hookd.Errorf(hookd.ENotFound, "no source named %q", name)
		}
		return err
	}
	e.srcReg.Remove(name)
	e.mu.Lock()
	delete(e.srcs, name)
	e.refreshSourceNames()
	e.mu.Unlock()
	e.log.Info("source deleted", "source", name)
	return nil
}
