package engine_test

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"hookd"
	"hookd/internal/config"
	"hookd/internal/engine"
	"hookd/internal/store"
)

// registry is a SourceRegistry that records what it serves.
type registry struct {
	mu     sync.Mutex
	served map[string]config.Source
}

func (g *registry) Prepare(def config.Source) (func(), error) {
	return func() {
		g.mu.Lock()
		g.served[def.Name] = def
		g.mu.Unlock()
	}, nil
}

func (g *registry) Remove(name string) {
	g.mu.Lock()
	delete(g.served, name)
	g.mu.Unlock()
}

func (g *registry) get(name string) (config.Source, bool) {
	g.mu.Lock()
	defer g.mu.Unlock()
	s, ok := g.served[name]
	return s, ok
}

// withSources gives r's engine a configured source "app" and reg.
func withSources(t *testing.T, r *rig) *registry {
	t.Helper()
	reg := &registry{served: map[string]config.Source{}}
	cfg := config.Default()
	r.eng.SetSources([]config.Source{{Name: "app"}}, reg, cfg.ParseSource)
	if err := r.eng.LoadSources(context.Background()); err != nil {
		t.Fatal(err)
	}
	return reg
}

func reload(t *testing.T, r *rig) {
	t.Helper()
	if err := r.eng.Reload(context.Background()); err != nil {
		t.Fatalf("Reload: %v", err)
	}
}

// What another process stores (definitions written to the store directly,
// as its engine does) is used here after a Reload: destinations and
// subscriptions created, replaced and deleted, sources too; the
// configuration file's stay as they are.
func TestReloadAppliesStoredDefinitions(t *testing.T) {
	conf, first, second := newSink(t, nil), newSink(t, nil), newSink(t, nil)
	r := newRig(t, t.TempDir(), engine.RealClock{}, destYAML("conf", conf.srv.URL, ""), engine.Options{})
	reg := withSources(t, r)
	ctx := context.Background()
	now := time.Now()

	// Created elsewhere.
	put := func(url string) {
		t.Helper()
		spec := fmt.Sprintf(`{"name":"api","type":"http","url":%q}`, url)
		if err := r.st.DestinationPut(ctx, &store.DestinationRecord{Name: "api", Spec: []byte(spec), CreatedAt: now, UpdatedAt: time.Now()}); err != nil {
			t.Fatal(err)
		}
	}
	put(first.srv.URL)
	if err := r.st.SubscriptionPut(ctx, &store.SubscriptionRecord{ID: "sub_1", Spec: []byte(`{"destination":"api","events":["order.*"]}`), CreatedAt: now, UpdatedAt: now}); err != nil {
		t.Fatal(err)
	}
	if err := r.st.SourcePut(ctx, &store.SourceRecord{Name: "shop", Spec: []byte(`{"name":"shop","max_body":1000}`), CreatedAt: now, UpdatedAt: now}); err != nil {
		t.Fatal(err)
	}
	// A stored destination with a configured one's name changes nothing.
	if err := r.st.DestinationPut(ctx, &store.DestinationRecord{Name: "conf", Spec: []byte(fmt.Sprintf(`{"name":"conf","type":"http","url":%q}`, second.srv.URL)), CreatedAt: now, UpdatedAt: now}); err != nil {
		t.Fatal(err)
	}
	if _, err := r.eng.Destination("api"); err == nil {
		t.Fatal("destination api known before the reload")
	}
	reload(t, r)
	if v, err := r.eng.Destination("api"); err != nil || v.Origin != engine.OriginAPI {
		t.Fatalf("destination api after the reload: %+v %v", v, err)
	}
	if v, err := r.eng.Source("shop"); err != nil || v.MaxBody != 1000 {
		t.Fatalf("source shop after the reload: %+v %v", v, err)
	}
	if s, ok := reg.get("shop"); !ok || s.MaxBody != 1000 {
		t.Fatalf("source shop served: %v %+v", ok, s)
	}
	if v, _ := r.eng.Destination("conf"); v.Origin != engine.OriginConfig {
		t.Fatalf("configured destination conf: origin %s after the reload", v.Origin)
	}
	ev := r.publish(&hookd.Event{Type: "order.created"})[0]
	eventually(t, 5*time.Second, "the event at api's sink and conf's", func() bool {
		return first.ids()[ev.ID] == 1 && conf.ids()[ev.ID] == 1
	})

	// Replaced elsewhere.
	put(second.srv.URL)
	if err := r.st.SubscriptionPut(ctx, &store.SubscriptionRecord{ID: "sub_1", Spec: []byte(`{"destination":"api","events":["invoice.*"]}`), CreatedAt: now, UpdatedAt: time.Now()}); err != nil {
		t.Fatal(err)
	}
	if err := r.st.SourcePut(ctx, &store.SourceRecord{Name: "shop", Spec: []byte(`{"name":"shop","max_body":2000}`), CreatedAt: now, UpdatedAt: time.Now()}); err != nil {
		t.Fatal(err)
	}
	reload(t, r)
	if s, _ := reg.get("shop"); s.MaxBody != 2000 {
		t.Fatalf("source shop after its replacement: max_body %d, want 2000", s.MaxBody)
	}
	if v, _ := r.eng.Subscription("sub_1"); strings.Join(v.Events, ",") != "invoice.*" {
		t.Fatalf("subscription after its replacement: %v", v.Events)
	}
	ev = r.publish(&hookd.Event{Type: "invoice.paid"})[0]
	eventually(t, 5*time.Second, "the event at the replaced destination's sink", func() bool { return second.ids()[ev.ID] == 1 })
	if first.ids()[ev.ID] != 0 {
		t.Fatal("the replaced destination's former URL got the event")
	}

	// Deleted elsewhere.
	if err := r.st.SubscriptionDelete(ctx, "sub_1"); err != nil {
		t.Fatal(err)
	}
	if err := r.st.DestinationDelete(ctx, "api"); err != nil {
		t.Fatal(err)
	}
	if err := r.st.SourceDelete(ctx, "shop"); err != nil {
		t.Fatal(err)
	}
	reload(t, r)
	if _, err := r.eng.Destination("api"); err == nil {
		t.Fatal("destination api still there after its deletion")
	}
	if _, err := r.eng.Subscription("sub_1"); err == nil {
		t.Fatal("subscription sub_1 still there after its deletion")
	}
	if _, err := r.eng.Source("shop"); err == nil {
		t.Fatal("source shop still there after its deletion")
	}
	if _, ok := reg.get("shop"); ok {
		t.Fatal("source shop still served after its deletion")
	}
	if subs := r.eng.Subscriptions(); len(subs) != 1 || subs[0].Origin != engine.OriginConfig {
		t.Fatalf("subscriptions: %+v, want the configured one", subs)
	}
	if _, err := r.eng.Source("app"); err != nil {
		t.Fatalf("configured source app: %v", err)
	}
}

// A destination disabled or enabled elsewhere (the store records it) stops
// or resumes here at the reload, a configured one as well.
func TestReloadAppliesDisabledState(t *testing.T) {
	s := newSink(t, nil)
	r := newRig(t, t.TempDir(), engine.RealClock{}, destYAML("conf", s.srv.URL, ""), engine.Options{})
	ctx := context.Background()
	at := time.Date(2026, 3, 4, 5, 6, 7, 0, time.UTC)
	if err := r.st.DestinationSetDisabled(ctx, "conf", at, "destination gone: 410"); err != nil {
		t.Fatal(err)
	}
	reload(t, r)
	v, _ := r.eng.Destination("conf")
	if !v.Disabled || v.DisabledReason != "destination gone: 410" || v.DisabledAt == nil || !v.DisabledAt.Equal(at) {
		t.Fatalf("after a disable elsewhere: %+v", v)
	}
	ev := r.publish(&hookd.Event{Type: "a"})[0]
	// Disabled, fresh work waits in the store, pending.
	eventually(t, 5*time.Second, "the event's delivery waiting in the store", func() bool { return statusOf(t, r, ev, "conf") == store.StatusPending })
	if len(s.hits()) != 0 {
		t.Fatal("a disabled destination was attempted")
	}
	if err := r.st.DestinationSetDisabled(ctx, "conf", time.Time{}, ""); err != nil {
		t.Fatal(err)
	}
	reload(t, r)
	if v, _ := r.eng.Destination("conf"); v.Disabled {
		t.Fatalf("after an enable elsewhere: %+v", v)
	}
	eventually(t, 5*time.Second, "the waiting delivery made", func() bool { return s.ids()[ev.ID] == 1 })
}

// Options.OnChange is called after every definition write through the
// engine, and after the engine disables a destination itself.
func TestOnChangeAfterEveryWrite(t *testing.T) {
	gone := newSink(t, func(int, *http.Request) (int, http.Header) { return 410, nil })
	var changes atomic.Int64
	r := newRig(t, t.TempDir(), engine.RealClock{}, "", engine.Options{OnChange: func() { changes.Add(1) }})
	withSources(t, r)
	ctx := context.Background()
	want := changes.Load()
	check := func(what string, err error) {
		t.Helper()
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		want++
		if got := changes.Load(); got != want {
			t.Fatalf("after %s: OnChange called %d times in all, want %d", what, got, want)
		}
	}
	_, err := r.eng.DestinationPut(ctx, "", []byte(fmt.Sprintf(`{"name":"d","type":"http","url":%q}`, gone.srv.URL)), true)
	check("DestinationPut", err)
	sub, err := r.eng.SubscriptionPut(ctx, "", []byte(`{"destination":"d"}`))
	check("SubscriptionPut", err)
	_, err = r.eng.SourcePut(ctx, "shop", []byte(`{}`), true)
	check("SourcePut", err)
	check("SourceDelete", r.eng.SourceDelete(ctx, "shop"))
	// A refused write changes nothing.
	if _, err := r.eng.DestinationPut(ctx, "", []byte(`{"name":"d","type":"http","url":"http://127.0.0.1:1/"}`), true); err == nil {
		t.Fatal("a second create of d succeeded")
	}
	if got := changes.Load(); got != want {
		t.Fatalf("a refused write called OnChange (%d, want %d)", got, want)
	}

	// The sink answers 410: the engine disables d, and says so.
	r.publish(&hookd.Event{Type: "a"})
	eventually(t, 5*time.Second, "d disabled", func() bool { v, _ := r.eng.Destination("d"); return v.Disabled })
	want++
	eventually(t, 5*time.Second, "OnChange after the disable", func() bool { return changes.Load() == want })

	_, err = r.eng.DestinationEnable(ctx, "d")
	check("DestinationEnable", err)
	check("SubscriptionDelete", r.eng.SubscriptionDelete(ctx, sub.ID))
	check("DestinationDelete", r.eng.DestinationDelete(ctx, "d"))
}

// Reloads running while definitions are written through the engine never
// undo a write: at the end, memory is what the store holds.
func TestReloadDuringWrites(t *testing.T) {
	s := newSink(t, nil)
	r := newRig(t, t.TempDir(), engine.RealClock{}, "", engine.Options{})
	ctx := context.Background()
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			select {
			case <-stop:
				return
			default:
			}
			if err := r.eng.Reload(ctx); err != nil {
				t.Errorf("Reload: %v", err)
				return
			}
		}
	}()
	for i := range 20 {
		name := fmt.Sprintf("d%d", i)
		if _, err := r.eng.DestinationPut(ctx, "", []byte(fmt.Sprintf(`{"name":%q,"type":"http","url":%q}`, name, s.srv.URL)), true); err != nil {
			t.Fatal(err)
		}
		sub, err := r.eng.SubscriptionPut(ctx, "", []byte(fmt.Sprintf(`{"destination":%q}`, name)))
		if err != nil {
			t.Fatal(err)
		}
		// Each write is in memory right after it returns, whatever the
		// reloads do.
		if _, err := r.eng.Subscription(sub.ID); err != nil {
			t.Fatalf("subscription %s gone right after its create: %v", sub.ID, err)
		}
		if i%2 == 0 {
			if err := r.eng.SubscriptionDelete(ctx, sub.ID); err != nil {
				t.Fatal(err)
			}
			if err := r.eng.DestinationDelete(ctx, name); err != nil {
				t.Fatal(err)
			}
			if _, err := r.eng.Destination(name); err == nil {
				t.Fatalf("destination %s back right after its delete", name)
			}
		}
	}
	close(stop)
	wg.Wait()
	reload(t, r)
	if n := len(r.eng.Destinations()); n != 10 {
		t.Fatalf("%d destinations, want 10", n)
	}
	if n := len(r.eng.Subscriptions()); n != 10 {
		t.Fatalf("%d subscriptions, want 10", n)
	}
}
