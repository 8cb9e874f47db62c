package engine_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"hookd"
	"hookd/internal/engine"
	"hookd/internal/store"
)

// bodyOf returns the JSON body the sink got for event id.
func bodyOf(t *testing.T, s *sink, id string) map[string]any {
	t.Helper()
	for _, h := range s.hits() {
		if h.id == id {
			var m map[string]any
			if err := json.Unmarshal([]byte(h.body), &m); err != nil {
				t.Fatalf("sink got %s: %v", h.body, err)
			}
			return m
		}
	}
	t.Fatalf("the sink got nothing for %s", id)
	return nil
}

// Two subscriptions to one destination, from different sources, with
// different enrich sections: each delivery is enriched by its own
// subscription's.
func TestEnrichUsesTheDeliverysSubscription(t *testing.T) {
	s := newSink(t, nil)
	ent := newEntity(t)
	enrich := func(prefix, into string) string {
		return fmt.Sprintf(`{url: "%s/claims/%s-{{body.ref}}", auth: {type: header, header: X-Api-Key, value: k1}, into: %s}`, ent.srv.URL, prefix, into)
	}
	r := newRig(t, t.TempDir(), engine.RealClock{}, fmt.Sprintf(`
destinations:
  - {name: svc, type: http, url: %s, retry: {policy: exponential, base: 10ms, cap: 20ms, jitter: 0}}
subscriptions:
  - {source: a, destination: svc, events: ["*"], enrich: %s}
  - {source: b, destination: svc, events: ["*"], enrich: %s}
`, s.srv.URL, enrich("A", "fromA"), enrich("B", "fromB")), engine.Options{EnrichAuth: enrichAuth})
	evs := r.publish(
		&hookd.Event{Source: "a", Type: "claim.updated", Body: []byte(`{"ref": "1"}`)},
		&hookd.Event{Source: "b", Type: "claim.updated", Body: []byte(`{"ref": "2"}`)},
	)
	for _, ev := range evs {
		eventually(t, 10*time.Second, "delivered", func() bool { return statusOf(t, r, ev, "svc") == store.StatusSucceeded })
	}
	for i, c := range []struct{ into, other, ref string }{{"fromA", "fromB", "A-1"}, {"fromB", "fromA", "B-2"}} {
		body := bodyOf(t, s, evs[i].ID)
		got, _ := body[c.into].(map[string]any)
		if got["ref"] != c.ref || body[c.other] != nil {
			t.Errorf("event from %s: sink got %v, want %s.ref = %s and no %s", evs[i].Source, body, c.into, c.ref, c.other)
		}
	}
}

// A delivery keeps its subscription's enrichment on a retry after that
// subscription's routing changed (it no longer matches the event): the
// enrichment is the delivery's subscription's, not the first matching
// one's at attempt time.
func TestEnrichRetryAfterTheSubscriptionChanged(t *testing.T) {
	var fail atomic.Bool
	fail.Store(true)
	s := newSink(t, func(int, *http.Request) (int, http.Header) {
		if fail.Load() {
			return 503, nil
		}
		return 200, nil
	})
	ent := newEntity(t)
	r := newRig(t, t.TempDir(), engine.RealClock{}, fmt.Sprintf(`
destinations:
  - {name: svc, type: http, url: %s, retry: {policy: exponential, base: 10ms, cap: 20ms, jitter: 0}}
`, s.srv.URL), engine.Options{EnrichAuth: enrichAuth})
	spec := func(events string) []byte {
		return []byte(fmt.Sprintf(`{"destination": "svc", "events": [%q], "enrich": {"url": "%s/claims/{{body.ref}}", "into": "claim", "auth": {"type": "header", "header": "X-Api-Key", "value": "k1"}}}`, events, ent.srv.URL))
	}
	ctx := context.Background()
	sub, err := r.eng.SubscriptionPut(ctx, "", spec("claim.*"))
	if err != nil {
		t.Fatal(err)
	}
	ev := r.publish(&hookd.Event{Type: "claim.updated", Body: []byte(`{"ref": "C-3"}`)})[0]
	eventually(t, 10*time.Second, "a failed attempt", func() bool {
		d := deliveryOf(t, r, ev, "svc")
		return d != nil && d.Attempts >= 1 && d.Status == store.StatusRetrying
	})
	if _, err := r.eng.SubscriptionPut(ctx, sub.ID, spec("other.*")); err != nil {
		t.Fatal(err)
	}
	fail.Store(false)
	eventually(t, 10*time.Second, "delivered", func() bool { return statusOf(t, r, ev, "svc") == store.StatusSucceeded })
	hits := s.hits()
	var m map[string]any
	if err := json.Unmarshal([]byte(hits[len(hits)-1].body), &m); err != nil {
		t.Fatal(err)
	}
	if claim, _ := m["claim"].(map[string]any); claim["ref"] != "C-3" {
		t.Fatalf("the successful attempt sent %v, want the claim of the delivery's subscription", m)
	}
}

// End to end: a subscription with enrich and a transform; the transform
// reads the entity at event.body.<into>, and the sink receives what it
// made.
func TestEnrichThenTransform(t *testing.T) {
	s := newSink(t, nil)
	ent := newEntity(t)
	r := newRig(t, t.TempDir(), engine.RealClock{}, fmt.Sprintf(`
destinations:
  - {name: svc, type: http, url: %s, retry: {policy: exponential, base: 10ms, cap: 20ms, jitter: 0}}
subscriptions:
  - destination: svc
    events: ["*"]
    enrich: {url: "%s/claims/{{body.claimRef}}", auth: {type: header, header: X-Api-Key, value: k1}, into: claim}
    transform: |
      function transform(e) {
        e.body = {claim: e.body.claim.ref, state: e.body.claim.status.toUpperCase(), amount: e.body.amount * 10};
        e.type = "claim.enriched";
        return e;
      }
`, s.srv.URL, ent.srv.URL), engine.Options{EnrichAuth: enrichAuth})
	ev := r.publish(&hookd.Event{Type: "claim.updated", Body: []byte(`{"claimRef": "C-5", "amount": 3}`)})[0]
	eventually(t, 10*time.Second, "delivered", func() bool { return statusOf(t, r, ev, "svc") == store.StatusSucceeded })
	body := bodyOf(t, s, ev.ID)
	if body["claim"] != "C-5" || body["state"] != "OPEN" || body["amount"] != float64(30) || len(body) != 3 {
		t.Fatalf("sink got %v, want {claim: C-5, state: OPEN, amount: 30}", body)
	}
	if ent.hits.Load() != 1 {
		t.Fatalf("entity requests = %d, want 1", ent.hits.Load())
	}
}

// A subscription sent back as the API shows it, its enrich auth value
// "[redacted]", keeps the stored credential: the entity API still gets it.
// Moved to another host, the kept credential is refused, naming the key.
func TestSubscriptionPutKeepsEnrichSecret(t *testing.T) {
	s := newSink(t, nil)
	ent := newEntity(t)
	r := newRig(t, t.TempDir(), engine.RealClock{}, fmt.Sprintf(`
destinations:
  - {name: svc, type: http, url: %s, retry: {policy: exponential, base: 10ms, cap: 20ms, jitter: 0}}
`, s.srv.URL), engine.Options{EnrichAuth: enrichAuth})
	ctx := context.Background()
	sub, err := r.eng.SubscriptionPut(ctx, "", []byte(fmt.Sprintf(`{"destination": "svc", "events": ["order.*"],
		"enrich": {"url": "%s/claims/{{body.ref}}?token=q-secret", "into": "claim", "auth": {"type": "header", "header": "X-Api-Key", "value": "k1"}}}`, ent.srv.URL)))
	if err != nil {
		t.Fatal(err)
	}
	shown, err := r.eng.Subscription(sub.ID)
	if err != nil {
		t.Fatal(err)
	}
	body := map[string]any{"source": shown.Source, "destination": shown.Destination, "events": []string{"claim.*"},
		"active": shown.Active, "skip_stale": shown.SkipStale, "enrich": shown.Enrich}
	b, _ := json.Marshal(body)
	if !bytes.Contains(b, []byte(`"value":"[redacted]"`)) || bytes.Contains(b, []byte("q-secret")) || !bytes.Contains(b, []byte(`{{body.ref}}?token=xxxxx`)) {
		t.Fatalf("the subscription shown: %s (want its key and its URL's token redacted, the template as written)", b)
	}
	if _, err := r.eng.SubscriptionPut(ctx, sub.ID, b); err != nil {
		t.Fatalf("PUT as shown: %v", err)
	}
	ev := r.publish(&hookd.Event{Type: "claim.updated", Body: []byte(`{"ref": "C-9"}`)})[0]
	eventually(t, 10*time.Second, "delivered", func() bool { return statusOf(t, r, ev, "svc") == store.StatusSucceeded })
	if claim, _ := bodyOf(t, s, ev.ID)["claim"].(map[string]any); claim["ref"] != "C-9" || ent.badKey.Load() != 0 {
		t.Fatalf("sink got %v (entity refused the key %d times), want the claim fetched with the stored key", bodyOf(t, s, ev.ID), ent.badKey.Load())
	}
	if q, _ := ent.query.Load().(string); q != "token=q-secret" {
		t.Fatalf("the entity API got the query %q, want the stored URL's token=q-secret", q)
	}

	other := newEntity(t)
	body["enrich"].(map[string]any)["url"] = other.srv.URL + "/claims/{{body.ref}}"
	b, _ = json.Marshal(body)
	_, err = r.eng.SubscriptionPut(ctx, sub.ID, b)
	if want := "invalid subscription: enrich.auth.value: [redacted] keeps the stored credential only while requests go where they went, and enrich.url changed"; err == nil || !strings.Contains(err.Error(), want) {
		t.Fatalf("PUT to another host keeping the key: %v, want %q", err, want)
	}
	if other.hits.Load() != 0 {
		t.Fatalf("the other host got %d requests", other.hits.Load())
	}
}
