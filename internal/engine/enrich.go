package engine

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"time"

	"hookd"
	"hookd/internal/config"
	"hookd/internal/destination"
	"hookd/internal/route"
	"hookd/internal/store"
	"hookd/internal/transform"
)

// enrichState holds the subscriptions' enrichers and the cache of
// entities they share.
type enrichState struct {
	once  sync.Once
	cache *transform.Cache
	mu    sync.Mutex
	bySub map[string]enricherEntry
}

type enricherEntry struct {
	spec string // the enrich section as JSON: a change builds it again
	en   *transform.Enricher
}

// rule is the routing rule of subscription id: ruleOf with its
// filter_expr.
func (e *Engine) rule(id string, s config.Subscription) route.Rule {
	r := ruleOf(s)
	if s.FilterExpr != "" {
		f, err := transform.CachedFilter(s.FilterExpr)
		if err != nil {
			// Validated when defined; should it fail now, nothing matches.
			r.Expr = matchNone{}
		} else {
			r.Expr = transform.NewRouteFilter(f, id, e.log)
		}
	}
	return r
}

type matchNone struct{}

func (matchNone) Match(*hookd.Event) bool { return false }

// enricher returns the enricher of subscription id, built on first use
// (and again when its enrich section changed).
func (e *Engine) enricher(id string, s *config.Enrich) (*transform.Enricher, error) {
	spec, _ := json.Marshal(s)
	e.enr.once.Do(func() {
		e.enr.cache = transform.NewCache(e.clock.Now)
		e.enr.bySub = map[string]enricherEntry{}
	})
	e.enr.mu.Lock()
	defer e.enr.mu.Unlock()
	if ent, ok := e.enr.bySub[id]; ok && ent.spec == string(spec) {
		return ent.en, nil
	}
	en, err := e.newEnricher(s)
	if err != nil {
		return nil, err
	}
	if len(e.enr.bySub) >= 2*max(e.maxSubs, 1000) {
		clear(e.enr.bySub) // subscriptions come and go: start afresh
	}
	e.enr.bySub[id] = enricherEntry{spec: string(spec), en: en}
	return en, nil
}

// newEnricher builds an enricher of s (its URL checked by the guard, its
// auth built), with the engine's cache.
func (e *Engine) newEnricher(s *config.Enrich) (*transform.Enricher, error) {
	return transform.NewEnricher(s.Spec(), transform.EnrichOptions{
		Guard: e.egress, Cache: e.enr.cache, NewAuth: e.enrichAuth, Now: e.clock.Now,
	})
}

// checkEnrich builds s's enricher once to check what Validate cannot:
// the URL by the egress guard and the auth.
func (e *Engine) checkEnrich(s config.Subscription) error {
	if s.Enrich == nil {
		return nil
	}
	if _, err := transform.NewEnricher(s.Enrich.Spec(), transform.EnrichOptions{Guard: e.egress, NewAuth: e.enrichAuth}); err != nil {
		return fmt.Errorf("enrich: %w", err)
	}
	return nil
}

// enrichEvent returns ev as it goes to destination dest for subscription
// subID (the delivery's): with the entity of that subscription's enrich
// section, or ev itself when it has none. When subID is unknown (a
// delivery made before subscription ids were recorded, or whose
// subscription was deleted since), the enrich section is that of the
// first subscription (by id) to dest that routes ev and has one. Its error
// is the attempt's: retriable, or destination.Permanent.
func (e *Engine) enrichEvent(ctx context.Context, subID, dest string, ev *hookd.Event) (*hookd.Event, error) {
	if e.enrichCount.Load() == 0 {
		return ev, nil
	}
	id, def, known := e.enrichOf(subID)
	if !known {
		for _, sid := range e.table.Match(ev) {
			e.mu.Lock()
			s := e.subs[sid]
			e.mu.Unlock()
			if s != nil && s.def.Destination == dest && s.def.Enrich != nil {
				id, def = sid, s.def.Enrich
				break
			}
		}
	}
	if def == nil {
		return ev, nil
	}
	en, err := e.enricher(id, def)
	if err != nil {
		return nil, destination.Permanent(fmt.Errorf("enrich: %w", err))
	}
	body, err := en.Enrich(ctx, transform.EventOf(ev))
	if err != nil {
		return nil, err
	}
	out := *ev
	out.Body = body
	out.ContentType = "application/json"
	return &out, nil
}

// enrichOf returns subscription subID's enrich section (nil for none);
// known is false when there is no such subscription.
func (e *Engine) enrichOf(subID string) (id string, def *config.Enrich, known bool) {
	if subID == "" {
		return "", nil, false
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	s := e.subs[subID]
	if s == nil {
		return "", nil, false
	}
	return subID, s.def.Enrich, true
}

// kindSubscription is the kind of sealed subscription definitions.
const kindSubscription = "subscription"

// sealSubscription returns what is stored of subscription id's spec:
// encrypted when it carries credentials (an enrich auth), as destinations'
// definitions are; as it is otherwise.
func (e *Engine) sealSubscription(id string, def config.Subscription, spec []byte) ([]byte, error) {
	if def.Enrich == nil || len(def.Enrich.Auth) == 0 {
		return spec, nil
	}
	return e.sealSpec(kindSubscription, id, spec)
}

// parseStoredSubscription decrypts (when sealed) and parses a stored
// subscription.
func (e *Engine) parseStoredSubscription(r *store.SubscriptionRecord) (config.Subscription, error) {
	spec := r.Spec
	if strings.HasPrefix(string(spec), sealedPrefix) {
		var err error
		// One sealed under an old master key is stored again under the
		// active one.
		rewrite := func(b []byte) error {
			cp := *r
			cp.Spec = b
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			return e.st.SubscriptionPut(ctx, &cp)
		}
		if spec, err = e.openSpec(kindSubscription, r.ID, spec, rewrite); err != nil {
			return config.Subscription{}, err
		}
	}
	return parseSubscriptionSpec(spec)
}

// enrichView is an enrich section as the API shows it: auth secrets
// redacted, durations as strings.
func enrichView(s *config.Enrich) map[string]any {
	// The URL as a destination's is shown: credential-named query values
	// (?key=, ?token=) as xxxxx; sent back so, the stored one is kept.
	v := map[string]any{"url": redactedURL(s.URL), "into": s.Into}
	if s.Cache > 0 {
		v["cache"] = s.Cache.D().String()
	}
	if s.Timeout > 0 {
		v["timeout"] = s.Timeout.D().String()
	}
	if s.Auth != nil {
		var auth map[string]any
		if b, err := json.Marshal(s.Auth); err == nil && json.Unmarshal(b, &auth) == nil {
			v["auth"] = redactSpec(auth)
		}
	}
	return v
}

// routingHeaders returns the headers routing needs of a committed event:
// none while no subscription has filter_expr; else its headers, decoded
// from their stored encoding when the event does not carry them (ingest
// hands over that encoding, with credentials redacted).
func (e *Engine) routingHeaders(in *store.EventInsert) map[string][]string {
	if e.exprCount.Load() == 0 && e.srcTransforms.Load() == 0 && e.subTransforms.Load() == 0 {
		return nil
	}
	if in.Event.Headers != nil || in.HeadersJSON == "" {
		return in.Event.Headers
	}
	var h map[string][]string
	if json.Unmarshal([]byte(in.HeadersJSON), &h) != nil {
		return nil
	}
	return h
}
