package cli

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"hookd/internal/config"
)

// A definition sent back as the API showed it, secrets "[redacted]", keeps
// the stored secrets (the console's edit forms rely on it); "[redacted]"
// where nothing is stored is refused, naming the key.
func TestReplaceKeepsRedactedSecrets(t *testing.T) {
	var mu sync.Mutex
	var keys []string
	sink := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		keys = append(keys, r.Header.Get("X-Api-Key"))
		mu.Unlock()
	}))
	t.Cleanup(sink.Close)
	cfg, err := config.Parse([]byte(sourcesConfig))
	if err != nil {
		t.Fatal(err)
	}
	cfg.Storage.Path = t.TempDir()
	_, base := startApp(t, cfg, nil)

	const destSecret = "dest-secret-0123456789"
	code, v := apiDo(t, "POST", base+"/api/v1/destinations", "tok", `{"name": "hooks", "type": "http", "url": "`+sink.URL+`",
		"timeout": "10s", "auth": {"type": "header", "header": "X-Api-Key", "value": "`+destSecret+`"}}`)
	if code != 201 {
		t.Fatalf("POST destination: %d %v", code, v)
	}
	def, _ := v["definition"].(map[string]any)
	if auth, _ := def["auth"].(map[string]any); auth["value"] != "[redacted]" {
		t.Fatalf("definition shown: %v", def)
	}
	def["timeout"] = "20s"
	b, _ := json.Marshal(def)
	if code, v = apiDo(t, "PUT", base+"/api/v1/destinations/hooks", "tok", string(b)); code != 200 {
		t.Fatalf("PUT the definition as shown: %d %v", code, v)
	}
	if d, _ := v["definition"].(map[string]any); d["timeout"] != "20s" || strings.Contains(string(mustJSON(d)), destSecret) {
		t.Fatalf("PUT answered %v", d)
	}
	if code, v = apiDo(t, "POST", base+"/api/v1/subscriptions", "tok", `{"source": "claims", "destination": "hooks"}`); code != 201 {
		t.Fatalf("subscribe: %d %v", code, v)
	}
	postEvent(t, base, "claims", `{"id": "c-1", "type": "claim.filed"}`)
	waitFor(t, 10*time.Second, "the event at the sink", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(keys) > 0
	})
	mu.Lock()
	got := keys[0]
	mu.Unlock()
	if got != destSecret {
		t.Fatalf("X-Api-Key after the replace = %q, want the stored secret", got)
	}

	// The kept credential does not follow the destination to another
	// host: it would go where it was never given for, and whoever may edit
	// destinations could read it there although the API never shows it.
	elsewhere := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	t.Cleanup(elsewhere.Close)
	moved := map[string]any{}
	for k, x := range def {
		moved[k] = x
	}
	moved["url"] = elsewhere.URL + "/in"
	b, _ = json.Marshal(moved)
	code, v = apiDo(t, "PUT", base+"/api/v1/destinations/hooks", "tok", string(b))
	if msg := errMessage(v); code != 400 || !strings.Contains(msg, "invalid destination hooks: auth.value: [redacted] keeps the stored credential only while requests go where they went, and url changed") {
		t.Fatalf("PUT to another host keeping the credential: %d %q", code, msg)
	}
	// Another path on the same host keeps it; a new host with the value given is taken.
	moved["url"] = sink.URL + "/other"
	b, _ = json.Marshal(moved)
	if code, v = apiDo(t, "PUT", base+"/api/v1/destinations/hooks", "tok", string(b)); code != 200 {
		t.Fatalf("PUT another path, credential kept: %d %v", code, v)
	}
	moved["url"] = elsewhere.URL + "/in"
	moved["auth"] = map[string]any{"type": "header", "header": "X-Api-Key", "value": "new-secret-0123456789"}
	b, _ = json.Marshal(moved)
	if code, v = apiDo(t, "PUT", base+"/api/v1/destinations/hooks", "tok", string(b)); code != 200 {
		t.Fatalf("PUT another host with the credential given: %d %v", code, v)
	}

	// A key the stored definition lacks cannot be "[redacted]".
	def["url"] = moved["url"]
	def["auth"] = map[string]any{"type": "basic", "username": "u", "password": "[redacted]"}
	b, _ = json.Marshal(def)
	code, v = apiDo(t, "PUT", base+"/api/v1/destinations/hooks", "tok", string(b))
	if msg := errMessage(v); code != 400 || !strings.Contains(msg, "invalid destination hooks: auth.password: [redacted] stands for a stored secret") {
		t.Fatalf("PUT with a new [redacted] password: %d %q", code, msg)
	}

	// Sources: the API key sent back redacted still verifies.
	const key1 = "shop-key-0123456789"
	code, v = apiDo(t, "POST", base+"/api/v1/sources", "tok", `{"name": "shop", "verify": [{"type": "api_key", "keys": ["`+key1+`"]}]}`)
	if code != 201 {
		t.Fatalf("POST source: %d %v", code, v)
	}
	sdef, _ := v["definition"].(map[string]any)
	sdef["dedupe_window"] = "1h"
	b, _ = json.Marshal(sdef)
	if !strings.Contains(string(b), `"keys":"[redacted]"`) {
		t.Fatalf("source definition shown: %s", b)
	}
	if code, v = apiDo(t, "PUT", base+"/api/v1/sources/shop", "tok", string(b)); code != 200 || v["dedupe_window"] != "1h0m0s" {
		t.Fatalf("PUT the source as shown: %d %v", code, v)
	}
	if c := postWithKey(t, base, "shop", key1, `{"id":"o-1"}`); c != 200 {
		t.Fatalf("the stored key after the replace: %d, want 200", c)
	}
	if c := postWithKey(t, base, "shop", "[redacted]", `{"id":"o-2"}`); c != 401 {
		t.Fatalf("the key [redacted]: %d, want 401", c)
	}

	// A new definition has nothing stored.
	code, v = apiDo(t, "POST", base+"/api/v1/sources", "tok", `{"name": "shop2", "verify": [{"type": "api_key", "keys": ["[redacted]"]}]}`)
	if msg := errMessage(v); code != 400 || !strings.Contains(msg, "invalid source: verify[0].keys[0]: [redacted] stands for a stored secret") {
		t.Fatalf("POST a source with a [redacted] key: %d %q", code, msg)
	}
}

func mustJSON(v any) []byte {
	b, _ := json.Marshal(v)
	return b
}

func errMessage(v map[string]any) string {
	e, _ := v["error"].(map[string]any)
	s, _ := e["message"].(string)
	return s
}

// A subscription sent back as the API showed it, its enrich auth value
// "[redacted]", keeps the stored credential (the console's subscription
// form relies on it), only while enrich.url keeps its scheme and host; a
// new subscription cannot hold "[redacted]".
func TestReplaceKeepsEnrichSecrets(t *testing.T) {
	const key = "enrich-key-0123456789"
	var mu sync.Mutex
	var bodies []string
	var badKeys int
	entity := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("X-Api-Key") != key {
			mu.Lock()
			badKeys++
			mu.Unlock()
			w.WriteHeader(401)
			return
		}
		fmt.Fprintf(w, `{"ref": %q}`, strings.TrimPrefix(r.URL.Path, "/claims/"))
	}))
	t.Cleanup(entity.Close)
	sink := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		mu.Lock()
		bodies = append(bodies, string(b))
		mu.Unlock()
	}))
	t.Cleanup(sink.Close)
	cfg, err := config.Parse([]byte(subscriptionConfig + fmt.Sprintf("destinations: [{name: svc, type: http, url: %q}]\n", sink.URL)))
	if err != nil {
		t.Fatal(err)
	}
	cfg.Storage.Path = t.TempDir()
	_, base := startApp(t, cfg, nil)

	code, v := apiDo(t, "POST", base+"/api/v1/subscriptions", "tok", fmt.Sprintf(`{"destination": "svc", "events": ["order.*"],
		"enrich": {"url": "%s/claims/{{body.ref}}", "into": "claim", "auth": {"type": "header", "header": "X-Api-Key", "value": %q}}}`, entity.URL, key))
	if code != 201 {
		t.Fatalf("POST subscription: %d %v", code, v)
	}
	id, _ := v["id"].(string)
	code, shown := apiDo(t, "GET", base+"/api/v1/subscriptions/"+id, "tok", "")
	if code != 200 || !strings.Contains(string(mustJSON(shown)), `"value":"[redacted]"`) || strings.Contains(string(mustJSON(shown)), key) {
		t.Fatalf("GET: %d %v", code, shown)
	}
	body := map[string]any{"source": shown["source"], "destination": shown["destination"], "events": []string{"claim.*"},
		"active": shown["active"], "skip_stale": shown["skip_stale"], "enrich": shown["enrich"]}
	if code, v = apiDo(t, "PUT", base+"/api/v1/subscriptions/"+id, "tok", string(mustJSON(body))); code != 200 {
		t.Fatalf("PUT as shown: %d %v", code, v)
	}
	postEvent(t, base, "claims", `{"id": "e1", "type": "claim.updated", "ref": "C-1"}`)
	waitFor(t, 10*time.Second, "the event, enriched", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(bodies) == 1
	})
	mu.Lock()
	got, bad := bodies[0], badKeys
	mu.Unlock()
	if !strings.Contains(got, `"claim":{"ref": "C-1"}`) || bad != 0 {
		t.Fatalf("sink got %s (the entity API refused the key %d times), want the claim fetched with the stored key", got, bad)
	}

	// The kept key does not follow the enrichment to another host.
	elsewhere := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	t.Cleanup(elsewhere.Close)
	body["enrich"].(map[string]any)["url"] = elsewhere.URL + "/claims/{{body.ref}}"
	code, v = apiDo(t, "PUT", base+"/api/v1/subscriptions/"+id, "tok", string(mustJSON(body)))
	if msg := errMessage(v); code != 400 || !strings.Contains(msg, "invalid subscription: enrich.auth.value: [redacted] keeps the stored credential only while requests go where they went, and enrich.url changed") {
		t.Fatalf("PUT to another host keeping the key: %d %q", code, msg)
	}

	// A new subscription has nothing stored.
	code, v = apiDo(t, "POST", base+"/api/v1/subscriptions", "tok", string(mustJSON(body)))
	if msg := errMessage(v); code != 400 || !strings.Contains(msg, "invalid subscription: enrich.auth.value: [redacted] stands for a stored secret") {
		t.Fatalf("POST a subscription with a [redacted] key: %d %q", code, msg)
	}
}
