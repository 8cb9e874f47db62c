package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"hookd/internal/config"
	"hookd/internal/secret"
	"hookd/internal/store"
	"hookd/internal/store/postgres"
)

// propagation is how soon a definition changed through one replica must
// be in force on the others.
const propagation = time.Second

// timedSink is an http destination's receiver that records when each event
// arrived; it answers 410 to events of type "kill", 200 to the others.
type timedSink struct {
	srv *httptest.Server
	mu  sync.Mutex
	at  map[string]time.Time // event id → first arrival
}

func newTimedSink(t *testing.T) *timedSink {
	s := &timedSink{at: map[string]time.Time{}}
	s.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		s.mu.Lock()
		if id := r.Header.Get("webhook-id"); s.at[id].IsZero() {
			s.at[id] = time.Now()
		}
		s.mu.Unlock()
		if r.Header.Get("Hookd-Event-Type") == "kill" {
			w.WriteHeader(http.StatusGone)
		}
	}))
	t.Cleanup(s.srv.Close)
	return s
}

// got returns when the event arrived (zero: not yet).
func (s *timedSink) got(id string) time.Time {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.at[id]
}

func (s *timedSink) count() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.at)
}

// clusterConfig is a replica's configuration on the schema of dsn: source
// shop, destination witness subscribed to all of it, destination gone
// (at goneURL) to its events kill and held.*.
func clusterConfig(t *testing.T, dsn, masterKey, reconcile, witnessURL, goneURL string) *config.Config {
	t.Helper()
	cfg, err := config.Parse([]byte(fmt.Sprintf(`
admin: {tokens: [tok]}
egress: {allow_private: ["127.0.0.0/8"]}
storage: {driver: postgres, dsn: %q}
secrets: {master_keys: [%q]}
cluster: {reconcile: %s}
sources:
  - {name: shop, event: {id: "json:id", type: "json:type"}}
destinations:
  - {name: witness, type: http, url: %q}
  - {name: gone, type: http, url: %q}
subscriptions:
  - {source: shop, destination: witness}
  - {source: shop, destination: gone, events: [kill, "held.*"]}
`, dsn, masterKey, reconcile, witnessURL, goneURL)))
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

// startReplicas opens an App for each configuration at once (replicas
// starting together) and serves them until the test ends; it returns
// their base URLs.
func startReplicas(t *testing.T, cfgs ...*config.Config) []string {
	t.Helper()
	apps := make([]*App, len(cfgs))
	errs := make([]error, len(cfgs))
	var wg sync.WaitGroup
	for i, cfg := range cfgs {
		cfg.Listen = "127.0.0.1:0"
		apps[i] = NewApp(cfg, slog.New(slog.NewTextHandler(io.Discard, nil)))
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = apps[i].Open(context.Background())
		}()
	}
	wg.Wait()
	bases := make([]string, len(apps))
	for i, app := range apps {
		if errs[i] != nil {
			t.Fatalf("open replica %d: %v", i, errs[i])
		}
		served := make(chan error, 1)
		go func() { served <- app.Serve() }()
		t.Cleanup(func() {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			if err := app.Shutdown(ctx); err != nil {
				t.Errorf("shutdown replica %d: %v", i, err)
			}
			if err := <-served; err != nil {
				t.Errorf("serve replica %d: %v", i, err)
			}
		})
		bases[i] = "http://" + app.Addr()
	}
	return bases
}

// post posts body to a source and returns the status and the event id.
func post(t *testing.T, base, source, body string) (int, string) {
	t.Helper()
	resp, err := http.Post(base+"/in/"+source, "application/json", bytes.NewReader([]byte(body)))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var m struct {
		ID string `json:"id"`
	}
	json.NewDecoder(resp.Body).Decode(&m)
	return resp.StatusCode, m.ID
}

// within fails t unless cond holds within d of since, polling.
func within(t *testing.T, since time.Time, d time.Duration, what string, cond func() bool) time.Duration {
	t.Helper()
	for !cond() {
		if time.Since(since) > d {
			t.Fatalf("%s: not within %s", what, d)
		}
		time.Sleep(5 * time.Millisecond)
	}
	took := time.Since(since)
	t.Logf("%s: %s", what, took.Round(time.Millisecond))
	return took
}

// deliveryTo returns the delivery of event id to dest as base's admin API
// shows it, nil when there is none.
func deliveryTo(t *testing.T, base, id, dest string) map[string]any {
	t.Helper()
	_, ev := apiDo(t, "GET", base+"/api/v1/events/"+id, "tok", "")
	ds, _ := ev["deliveries"].([]any)
	for _, d := range ds {
		if m := d.(map[string]any); m["destination"] == dest {
			return m
		}
	}
	return nil
}

// Two replicas on one schema share their definitions: a destination and
// subscription created through one are used by the other's ingest within
// a second; a subscription deleted through the second stops routing at the
// first within a second; a source created through the first accepts posts
// at the second within a second.
func TestReplicasShareDefinitions(t *testing.T) {
	dsn := testPostgresDSN(t)
	key := secret.GenerateMasterKey("kpg")
	witness, gone, sink := newTimedSink(t), newTimedSink(t), newTimedSink(t)
	bases := startReplicas(t,
		clusterConfig(t, dsn, key, "10s", witness.srv.URL, gone.srv.URL),
		clusterConfig(t, dsn, key, "10s", witness.srv.URL, gone.srv.URL))
	a, b := bases[0], bases[1]

	// Created at A, used by B's ingest.
	if code, m := apiDo(t, "POST", a+"/api/v1/destinations", "tok", fmt.Sprintf(`{"name":"orders","type":"http","url":%q}`, sink.srv.URL)); code != 201 {
		t.Fatalf("create destination at A: %d %v", code, m)
	}
	code, m := apiDo(t, "POST", a+"/api/v1/subscriptions", "tok", `{"source":"shop","destination":"orders","events":["order.*"]}`)
	if code != 201 {
		t.Fatalf("create subscription at A: %d %v", code, m)
	}
	sub := m["id"].(string)
	created := time.Now()
	var probes []string
	within(t, created, propagation, "destination and subscription created at A, an event ingested at B delivered by them", func() bool {
		for _, id := range probes {
			if at := sink.got(id); !at.IsZero() {
				if took := at.Sub(created); took > propagation {
					t.Fatalf("the first event delivered arrived %s after the create", took)
				}
				return true
			}
		}
		code, id := post(t, b, "shop", fmt.Sprintf(`{"id":"probe-%d","type":"order.created"}`, len(probes)))
		if code != 200 {
			t.Fatalf("post at B: %d", code)
		}
		probes = append(probes, id)
		return false
	})

	// Deleted at B, no longer routed at A.
	if code, m := apiDo(t, "DELETE", b+"/api/v1/subscriptions/"+sub, "tok", ""); code != 204 {
		t.Fatalf("delete the subscription at B: %d %v", code, m)
	}
	deleted := time.Now()
	within(t, deleted, propagation, "subscription deleted at B, gone at A", func() bool {
		code, _ := apiDo(t, "GET", a+"/api/v1/subscriptions/"+sub, "tok", "")
		return code == 404
	})
	code, id := post(t, a, "shop", `{"id":"after-delete","type":"order.created"}`)
	if code != 200 {
		t.Fatalf("post at A: %d", code)
	}
	// Routed: the witness has it, and A recorded that delivery.
	waitFor(t, 10*time.Second, "the event at the witness", func() bool {
		d := deliveryTo(t, a, id, "witness")
		return d != nil && d["status"] == "succeeded"
	})
	if d := deliveryTo(t, a, id, "orders"); d != nil || !sink.got(id).IsZero() {
		t.Fatalf("an event ingested at A after the subscription's delete went to its destination: %v", d)
	}

	// A source created at A takes posts at B.
	if code, m := apiDo(t, "POST", a+"/api/v1/sources", "tok", `{"name":"fresh","event":{"id":"json:id","type":"json:type"}}`); code != 201 {
		t.Fatalf("create source at A: %d %v", code, m)
	}
	created = time.Now()
	n := 0
	within(t, created, propagation, "source created at A, taking posts at B", func() bool {
		n++
		code, _ := post(t, b, "fresh", fmt.Sprintf(`{"id":"f-%d","type":"x"}`, n))
		if code != 200 && code != 404 {
			t.Fatalf("post to the new source at B: %d", code)
		}
		return code == 200
	})
	// Deleted at B, it answers 404 at A.
	if code, m := apiDo(t, "DELETE", b+"/api/v1/sources/fresh", "tok", ""); code != 204 {
		t.Fatalf("delete the source at B: %d %v", code, m)
	}
	within(t, time.Now(), propagation, "source deleted at B, refusing posts at A", func() bool {
		n++
		code, _ := post(t, a, "fresh", fmt.Sprintf(`{"id":"f-%d","type":"x"}`, n))
		return code == 404
	})
}

// A destination the engine of one replica disables (its endpoint answered
// 410) is disabled on the other too: the other stops attempting it, its
// work waiting in the store; enabled again through one replica, the work
// is delivered.
func TestReplicasShareDisabledState(t *testing.T) {
	dsn := testPostgresDSN(t)
	key := secret.GenerateMasterKey("kpg")
	witness, gone := newTimedSink(t), newTimedSink(t)
	bases := startReplicas(t,
		clusterConfig(t, dsn, key, "10s", witness.srv.URL, gone.srv.URL),
		clusterConfig(t, dsn, key, "10s", witness.srv.URL, gone.srv.URL))
	a, b := bases[0], bases[1]

	disabled := func(base string) bool {
		_, v := apiDo(t, "GET", base+"/api/v1/destinations/gone", "tok", "")
		return v["disabled"] == true
	}
	if code, _ := post(t, a, "shop", `{"id":"k-1","type":"kill"}`); code != 200 {
		t.Fatalf("post at A: %d", code)
	}
	waitFor(t, 10*time.Second, "gone disabled at A (its endpoint answered 410)", func() bool { return disabled(a) })
	within(t, time.Now(), propagation, "gone disabled at B", func() bool { return disabled(b) })
	if _, v := apiDo(t, "GET", b+"/api/v1/destinations/gone", "tok", ""); !strings.Contains(fmt.Sprint(v["disabled_reason"]), "410") {
		t.Errorf("reason at B: %v, want A's (410)", v["disabled_reason"])
	}

	// B does not attempt it: the delivery waits in the store.
	code, id := post(t, b, "shop", `{"id":"h-1","type":"held.one"}`)
	if code != 200 {
		t.Fatalf("post at B: %d", code)
	}
	var d map[string]any
	waitFor(t, 10*time.Second, "B's delivery of the event to gone recorded", func() bool {
		d = deliveryTo(t, b, id, "gone")
		return d != nil
	})
	if d["status"] != "pending" || d["attempt_count"] != float64(0) || !gone.got(id).IsZero() {
		t.Fatalf("delivery at B to the destination disabled at A: %v (received: %v), want pending and not attempted", d, !gone.got(id).IsZero())
	}

	// Enabled at A, the waiting delivery is made.
	if code, v := apiDo(t, "POST", a+"/api/v1/destinations/gone/enable", "tok", ""); code != 200 {
		t.Fatalf("enable at A: %d %v", code, v)
	}
	enabled := time.Now()
	within(t, enabled, propagation, "gone enabled at B", func() bool { return !disabled(b) })
	waitFor(t, 10*time.Second, "the waiting delivery made", func() bool { return !gone.got(id).IsZero() })
}

// A change whose notification is lost (made in the database directly,
// without one) reaches a replica at its next reconciliation.
func TestReplicasReconcileWithoutNotification(t *testing.T) {
	dsn := testPostgresDSN(t)
	key := secret.GenerateMasterKey("kpg")
	witness, gone := newTimedSink(t), newTimedSink(t)
	const reconcile = 300 * time.Millisecond
	bases := startReplicas(t, clusterConfig(t, dsn, key, reconcile.String(), witness.srv.URL, gone.srv.URL))
	b := bases[0]

	st, err := postgres.Open(context.Background(), dsn, slog.New(slog.DiscardHandler), postgres.Options{MaxConns: 2})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	now := time.Now()
	rec := &store.SubscriptionRecord{ID: "sub_direct", Spec: []byte(`{"source":"shop","destination":"gone","events":["direct"]}`), CreatedAt: now, UpdatedAt: now}
	if err := st.SubscriptionPut(context.Background(), rec); err != nil {
		t.Fatal(err)
	}
	within(t, now, reconcile+500*time.Millisecond, "a subscription written without a notification, in force", func() bool {
		code, _ := apiDo(t, "GET", b+"/api/v1/subscriptions/sub_direct", "tok", "")
		return code == 200
	})
	code, id := post(t, b, "shop", `{"id":"d-1","type":"direct"}`)
	if code != 200 {
		t.Fatalf("post: %d", code)
	}
	waitFor(t, 10*time.Second, "the event routed by the subscription", func() bool { return !gone.got(id).IsZero() })
}

// The oauth_issuer's signing key is the schema's: replicas starting
// together use one key, and a token one of them issued is accepted by the
// other.
func TestReplicasShareIssuerKey(t *testing.T) {
	dsn := testPostgresDSN(t)
	key := secret.GenerateMasterKey("kpg")
	cfgs := make([]*config.Config, 2)
	for i := range cfgs {
		cfgs[i] = secretsConfig(t, t.TempDir())
		cfgs[i].Storage.Driver, cfgs[i].Storage.DSN = "postgres", dsn
		cfgs[i].Secrets.MasterKeys = []string{key}
	}
	bases := startReplicas(t, cfgs...)
	for i, from := range bases {
		to := bases[1-i]
		a, tok, _ := s000Token(t, from, "provider-a", secretsClientSecret)
		if a.status != http.StatusOK {
			t.Fatalf("token at replica %d: %d %s", i, a.status, a.body)
		}
		if got := s000Send(t, to, tok, s000Claim(fmt.Sprintf("m-%d", i))); got.status != http.StatusOK {
			t.Fatalf("a token of replica %d at replica %d: %d %s, want 200", i, 1-i, got.status, got.body)
		}
	}
}
