package cli

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"hookd/internal/config"
	"hookd/internal/secret"
)

// health is a destination's attempt counts as GET
// /api/v1/destinations/{name} shows them.
type health struct{ attempts, succeeded, retried, failed int }

func (h health) String() string {
	return fmt.Sprintf("attempts %d, succeeded %d, retried %d, failed %d", h.attempts, h.succeeded, h.retried, h.failed)
}

func healthOf(t *testing.T, base, name string) health {
	t.Helper()
	code, v := apiDo(t, "GET", base+"/api/v1/destinations/"+name, "tok", "")
	if code != http.StatusOK {
		t.Fatalf("GET destination %s: HTTP %d %v", name, code, v)
	}
	n := func(k string) int { f, _ := v[k].(float64); return int(f) }
	return health{n("attempts"), n("succeeded"), n("retried"), n("failed")}
}

// healthListed is name's counts as GET /api/v1/destinations lists them.
func healthListed(t *testing.T, base, name string) health {
	t.Helper()
	code, v := apiDo(t, "GET", base+"/api/v1/destinations", "tok", "")
	if code != http.StatusOK {
		t.Fatalf("GET destinations: HTTP %d %v", code, v)
	}
	data, _ := v["data"].([]any)
	for _, d := range data {
		if m, _ := d.(map[string]any); m["name"] == name {
			n := func(k string) int { f, _ := m[k].(float64); return int(f) }
			return health{n("attempts"), n("succeeded"), n("retried"), n("failed")}
		}
	}
	t.Fatalf("GET destinations: no %s in %v", name, v)
	return health{}
}

// A destination's health (its attempt counts) is kept in the store: a
// replace through the API and a restart on the same data directory keep
// it, in the destination's view and in the listing.
func TestDestinationHealthSurvivesPutAndRestart(t *testing.T) {
	sink := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		if strings.Contains(string(b), `"bad"`) {
			w.WriteHeader(http.StatusInternalServerError)
		}
	}))
	t.Cleanup(sink.Close)
	dir := t.TempDir()
	cfg := func() *config.Config {
		c, err := config.Parse([]byte(`admin: {tokens: [tok]}
egress: {allow_private: ["127.0.0.0/8"]}
sources: [{name: app, event: {id: "json:id", type: "json:type"}}]
`))
		if err != nil {
			t.Fatal(err)
		}
		c.Storage.Path = dir
		return c
	}
	base, stop := runApp(t, cfg())
	def := func(team string) string {
		return fmt.Sprintf(`{"name": "orders", "type": "http", "url": %q, "headers": {"X-Team": %q},
			"retry": {"policy": "schedule", "schedule": ["1h"]}}`, sink.URL, team)
	}
	if code, v := apiDo(t, "POST", base+"/api/v1/destinations", "tok", def("blue")); code != http.StatusCreated {
		t.Fatalf("create destination: HTTP %d %v", code, v)
	}
	if code, v := apiDo(t, "POST", base+"/api/v1/subscriptions", "tok", `{"source": "app", "destination": "orders"}`); code != http.StatusCreated {
		t.Fatalf("create subscription: HTTP %d %v", code, v)
	}
	for i, typ := range []string{"good", "good", "bad"} {
		postEvent(t, base, "app", fmt.Sprintf(`{"id": "e%d", "type": %q}`, i, typ))
	}
	want := health{attempts: 3, succeeded: 2, retried: 1}
	verbsWait(t, 10*time.Second, "three attempts counted", func() bool { return healthOf(t, base, "orders") == want })

	code, v := apiDo(t, "PUT", base+"/api/v1/destinations/orders", "tok", def("green"))
	if code != http.StatusOK {
		t.Fatalf("replace destination: HTTP %d %v", code, v)
	}
	if f, _ := v["attempts"].(float64); f != 3 {
		t.Errorf("PUT's answer: attempts %v, want 3", v["attempts"])
	}
	if got := healthOf(t, base, "orders"); got != want {
		t.Errorf("after a PUT: got %s, want %s", got, want)
	}

	stop()
	base, _ = runApp(t, cfg())
	if got := healthOf(t, base, "orders"); got != want {
		t.Errorf("after a restart: got %s, want %s", got, want)
	}
	if got := healthListed(t, base, "orders"); got != want {
		t.Errorf("listed after a restart: got %s, want %s", got, want)
	}
	// And it goes on counting from there.
	postEvent(t, base, "app", `{"id": "e3", "type": "good"}`)
	want = health{attempts: 4, succeeded: 3, retried: 1}
	verbsWait(t, 10*time.Second, "the fourth attempt counted", func() bool { return healthOf(t, base, "orders") == want })
}

// On PostgreSQL, a destination's health counts the attempts of every
// replica, whichever one is asked.
func TestDestinationHealthAcrossReplicas(t *testing.T) {
	const perReplica = 5
	bases := twoReplicasWithEvents(t, "r", perReplica)
	want := health{attempts: 2 * perReplica, succeeded: 2 * perReplica}
	for r, base := range bases {
		verbsWait(t, 10*time.Second, fmt.Sprintf("replica %d to count every attempt", r), func() bool { return healthOf(t, base, "witness") == want })
	}
}

// twoReplicasWithEvents starts two replicas on one PostgreSQL database,
// both delivering to one witness that answers 200, and posts perReplica
// events of type x to source shop through each (ids prefix+replica-n). It
// returns the replicas' base URLs.
func twoReplicasWithEvents(t *testing.T, prefix string, perReplica int) []string {
	t.Helper()
	dsn := testPostgresDSN(t)
	witness := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.Copy(io.Discard, r.Body) }))
	t.Cleanup(witness.Close)
	key := secret.GenerateMasterKey("kpg")
	bases := startReplicas(t, clusterConfig(t, dsn, key, "1s", witness.URL, witness.URL), clusterConfig(t, dsn, key, "1s", witness.URL, witness.URL))
	for i := range perReplica {
		for r, base := range bases {
			if code, _ := post(t, base, "shop", fmt.Sprintf(`{"id": "%s%d-%d", "type": "x"}`, prefix, r, i)); code != http.StatusOK {
				t.Fatalf("post to replica %d: HTTP %d", r, code)
			}
		}
	}
	return bases
}
