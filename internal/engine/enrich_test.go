package engine_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"hookd"
	"hookd/internal/destination"
	"hookd/internal/destination/webhook"
	"hookd/internal/egress"
	"hookd/internal/engine"
	"hookd/internal/store"
	"hookd/internal/store/sqlite"
	"hookd/internal/transform"
)

// enrichAuth is the auth wiring hookd serve uses.
func enrichAuth(m map[string]any) (transform.Authorizer, error) {
	a, err := webhook.NewAuthorizer(&destination.Env{Now: time.Now}, m)
	if err != nil {
		return nil, err
	}
	return a, nil
}

func TestFilterExprDeliversExactlyTheMatchingEvents(t *testing.T) {
	big := newSink(t, nil)
	all := newSink(t, nil)
	r := newRig(t, t.TempDir(), engine.RealClock{}, fmt.Sprintf(`
destinations:
  - {name: big, type: http, url: %s}
  - {name: all, type: http, url: %s}
subscriptions:
  - destination: big
    events: ["*"]
    filter: {path: currency, op: eq, value: EUR}
    filter_expr: 'body.amount > 500 && headers["x-env"] == "prod"'
  - {destination: all, events: ["*"]}
`, big.srv.URL, all.srv.URL), engine.Options{})
	type c struct {
		amount   any
		env      string
		currency string
		match    bool
	}
	cases := []c{
		{750, "prod", "EUR", true},
		{500, "prod", "EUR", false},  // not > 500
		{501.5, "prod", "EUR", true}, // a double compares with the int literal
		{750, "staging", "EUR", false},
		{750, "", "EUR", false},     // no such header: an evaluation error, no match
		{nil, "prod", "EUR", false}, // no amount: idem
		{"900", "prod", "EUR", false},
		{750, "prod", "USD", false}, // the JSON filter must hold as well
	}
	var evs []*hookd.Event
	for _, k := range cases {
		body := map[string]any{"currency": k.currency}
		if k.amount != nil {
			body["amount"] = k.amount
		}
		b, _ := json.Marshal(body)
		ev := &hookd.Event{Type: "claim.created", Body: b, Headers: map[string][]string{}}
		if k.env != "" {
			ev.Headers["X-Env"] = []string{k.env}
		}
		evs = append(evs, ev)
	}
	// A non-JSON body: body is a string, body.amount an error.
	evs = append(evs, &hookd.Event{Type: "claim.created", Body: []byte("amount=900"), Headers: map[string][]string{"X-Env": {"prod"}}})
	cases = append(cases, c{match: false})
	r.publish(evs...)
	eventually(t, 10*time.Second, "every event at the unfiltered sink", func() bool {
		for _, ev := range evs {
			if statusOf(t, r, ev, "all") != store.StatusSucceeded {
				return false
			}
		}
		return true
	})
	eventually(t, 10*time.Second, "the matching events at the filtered sink", func() bool {
		for i, ev := range evs {
			if cases[i].match && statusOf(t, r, ev, "big") != store.StatusSucceeded {
				return false
			}
		}
		return true
	})
	got := big.ids()
	for i, ev := range evs {
		if cases[i].match != (got[ev.ID] == 1) {
			t.Errorf("case %d %+v: delivered %d times to the filtered sink, want match=%v", i, cases[i], got[ev.ID], cases[i].match)
		}
		if !cases[i].match && deliveryOf(t, r, ev, "big") != nil {
			t.Errorf("case %d: a delivery row for a non-matching event", i)
		}
	}
}

// entity is an entity API on 127.0.0.1 that answers GET /claims/{ref}
// with {"ref": ref, "status": "open"} (or the status in fail), and counts
// its requests.
type entity struct {
	srv    *httptest.Server
	hits   atomic.Int64
	fail   atomic.Int64
	badKey atomic.Int64
	query  atomic.Value // the last request's raw query
}

func newEntity(t *testing.T) *entity {
	e := &entity{}
	e.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		e.hits.Add(1)
		e.query.Store(r.URL.RawQuery)
		if r.Header.Get("X-Api-Key") != "k1" {
			e.badKey.Add(1)
			w.WriteHeader(401)
			return
		}
		if s := e.fail.Load(); s != 0 {
			w.WriteHeader(int(s))
			return
		}
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprintf(w, `{"ref": %q, "status": "open"}`, strings.TrimPrefix(r.URL.Path, "/claims/"))
	}))
	t.Cleanup(e.srv.Close)
	return e
}

func enrichYAML(sinkURL, entityURL, extra string) string {
	return fmt.Sprintf(`
destinations:
  - name: svc
    type: http
    url: %s
    retry: {policy: exponential, base: 10ms, cap: 20ms, jitter: 0}
subscriptions:
  - destination: svc
    events: ["*"]
    enrich:
      url: "%s/claims/{{body.claimRef}}"
      auth: {type: header, header: X-Api-Key, value: k1}
      into: claim
      cache: 5m
%s`, sinkURL, entityURL, extra)
}

func TestEnrichAddsTheEntityAndCachesIt(t *testing.T) {
	s := newSink(t, nil)
	ent := newEntity(t)
	r := newRig(t, t.TempDir(), engine.RealClock{}, enrichYAML(s.srv.URL, ent.srv.URL, ""), engine.Options{EnrichAuth: enrichAuth})
	evs := r.publish(
		&hookd.Event{Type: "claim.updated", Body: []byte(`{"claimRef": "C-7", "amount": 3}`)},
		&hookd.Event{Type: "claim.updated", Body: []byte(`{"claimRef": "C-7", "amount": 4}`)},
	)
	for _, ev := range evs {
		eventually(t, 10*time.Second, "delivered", func() bool { return statusOf(t, r, ev, "svc") == store.StatusSucceeded })
	}
	hits := s.hits()
	if len(hits) != 2 {
		t.Fatalf("sink got %d requests, want 2", len(hits))
	}
	for _, h := range hits {
		var body struct {
			ClaimRef string
			Amount   int
			Claim    struct{ Ref, Status string }
		}
		if err := json.Unmarshal([]byte(h.body), &body); err != nil {
			t.Fatalf("sink got %s: %v", h.body, err)
		}
		if body.ClaimRef != "C-7" || body.Claim.Ref != "C-7" || body.Claim.Status != "open" || body.Amount == 0 {
			t.Fatalf("sink got %s, want the event's body with the claim under \"claim\"", h.body)
		}
	}
	if n := ent.hits.Load(); n != 1 {
		t.Fatalf("entity API got %d requests, want 1 (the second delivery reads the cache)", n)
	}
	// The stored event is not changed: enrichment is per attempt.
	stored, err := r.st.EventGet(context.Background(), evs[0].ID)
	if err != nil || strings.Contains(string(stored.Body), "status") {
		t.Fatalf("stored body = %s (%v), want it unchanged", stored.Body, err)
	}
}

func TestEnrichFailureIsRetried(t *testing.T) {
	s := newSink(t, nil)
	ent := newEntity(t)
	ent.fail.Store(503)
	r := newRig(t, t.TempDir(), engine.RealClock{}, enrichYAML(s.srv.URL, ent.srv.URL, ""), engine.Options{EnrichAuth: enrichAuth})
	ev := r.publish(&hookd.Event{Type: "claim.updated", Body: []byte(`{"claimRef": "C-9"}`)})[0]
	eventually(t, 10*time.Second, "retrying after a failed fetch", func() bool {
		d := deliveryOf(t, r, ev, "svc")
		return d != nil && d.Attempts >= 2 && d.Status == store.StatusRetrying
	})
	d := deliveryOf(t, r, ev, "svc")
	want := "enrich: GET " + ent.srv.URL + "/claims/C-9 answered 503"
	if !strings.Contains(d.LastError, want) {
		t.Fatalf("last error = %q, want it to say %q", d.LastError, want)
	}
	if len(s.hits()) != 0 {
		t.Fatal("the destination got the event although its entity could not be fetched")
	}
	ent.fail.Store(0)
	eventually(t, 10*time.Second, "succeeded once the entity API answers", func() bool { return statusOf(t, r, ev, "svc") == store.StatusSucceeded })
	if h := s.hits(); len(h) != 1 || !strings.Contains(h[0].body, `"claim":{"ref": "C-9", "status": "open"}`) {
		t.Fatalf("sink got %+v, want one enriched request", h)
	}
}

func TestEnrichMissingValueFailsWithoutRetry(t *testing.T) {
	s := newSink(t, nil)
	ent := newEntity(t)
	r := newRig(t, t.TempDir(), engine.RealClock{}, enrichYAML(s.srv.URL, ent.srv.URL, ""), engine.Options{EnrichAuth: enrichAuth})
	evs := r.publish(
		&hookd.Event{Type: "claim.updated", Body: []byte(`{"other": 1}`)},
		&hookd.Event{Type: "claim.updated", Body: []byte(`["not", "an", "object"]`)},
	)
	for i, want := range []string{"enrich: body.claimRef is missing", "enrich: the event body is not a JSON object"} {
		eventually(t, 10*time.Second, "failed", func() bool { return statusOf(t, r, evs[i], "svc") == store.StatusFailed })
		d := deliveryOf(t, r, evs[i], "svc")
		if d.Attempts != 1 || d.Reason != engine.ReasonPermanent || !strings.Contains(d.LastError, want) {
			t.Errorf("delivery %d: attempts %d, reason %q, error %q; want 1 attempt, %q, %q", i, d.Attempts, d.Reason, d.LastError, engine.ReasonPermanent, want)
		}
	}
	if ent.hits.Load() != 0 || len(s.hits()) != 0 {
		t.Fatalf("requests: entity %d, sink %d; want none", ent.hits.Load(), len(s.hits()))
	}
}

// TestEnrichGuardRefusesLoopback runs the guard in its default mode:
// loopback refused. A literal loopback URL is refused when the
// configuration is loaded; a name that resolves to loopback is refused
// when the fetch dials, and the delivery retries with the guard's reason.
func TestEnrichGuardRefusesLoopback(t *testing.T) {
	// The sink listens on 127.0.0.2, which the guard allows; the entity
	// API on 127.0.0.1, which it does not (loopback, the default).
	var sinkHits atomic.Int64
	sinkSrv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { sinkHits.Add(1) }))
	ln, err := net.Listen("tcp", "127.0.0.2:0")
	if err != nil {
		t.Skipf("cannot listen on 127.0.0.2: %v", err)
	}
	sinkSrv.Listener.Close()
	sinkSrv.Listener = ln
	sinkSrv.Start()
	t.Cleanup(sinkSrv.Close)
	ent := newEntity(t)
	st, err := sqlite.Open(context.Background(), t.TempDir(), logger(t), sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	guard, err := egress.NewGuard([]string{"127.0.0.2/32"}, []string{"entity.test"})
	if err != nil {
		t.Fatal(err)
	}
	guard.Resolver = resolver(func(host string) ([]netip.Addr, error) {
		if host == "entity.test" {
			return []netip.Addr{netip.MustParseAddr("127.0.0.1")}, nil
		}
		return nil, fmt.Errorf("no such host %s", host)
	})
	open := func(yml string) (*engine.Engine, error) {
		eng := engine.New(engine.Options{Store: st, Log: logger(t), Egress: guard, EnrichAuth: enrichAuth})
		ds, ss := parseDests(t, yml)
		if err := eng.Open(context.Background(), ds, ss); err != nil {
			return nil, err
		}
		t.Cleanup(func() {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			eng.Stop(ctx)
		})
		return eng, nil
	}
	// A literal loopback address: refused when the configuration loads.
	if _, err := open(enrichYAML(sinkSrv.URL, ent.srv.URL, "")); err == nil || !strings.Contains(err.Error(), "subscriptions[0].enrich: url: ") || !strings.Contains(err.Error(), "loopback") {
		t.Fatalf("Open with a loopback enrich URL = %v, want subscriptions[0].enrich: url: … loopback", err)
	}
	// A name that resolves to loopback: refused when the fetch dials.
	entityURL := strings.Replace(ent.srv.URL, "127.0.0.1", "entity.test", 1)
	eng, err := open(enrichYAML(sinkSrv.URL, entityURL, ""))
	if err != nil {
		t.Fatal(err)
	}
	r := &rig{t: t, st: st, eng: eng, clock: engine.RealClock{}}
	ev := r.publish(&hookd.Event{Type: "claim.updated", Body: []byte(`{"claimRef": "C-1"}`)})[0]
	eventually(t, 10*time.Second, "a failed attempt", func() bool {
		d := deliveryOf(t, r, ev, "svc")
		return d != nil && d.Attempts >= 1 && d.Status == store.StatusRetrying
	})
	d := deliveryOf(t, r, ev, "svc")
	if !strings.Contains(d.LastError, "enrich: GET "+entityURL+"/claims/C-1: ") || !strings.Contains(d.LastError, "loopback") {
		t.Fatalf("last error = %q, want the guard's refusal of the loopback address", d.LastError)
	}
	if ent.hits.Load() != 0 || sinkHits.Load() != 0 {
		t.Fatalf("requests: entity %d, sink %d; want none", ent.hits.Load(), sinkHits.Load())
	}
}

type resolver func(host string) ([]netip.Addr, error)

func (f resolver) LookupNetIP(_ context.Context, _, host string) ([]netip.Addr, error) {
	return f(host)
}
