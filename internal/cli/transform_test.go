package cli

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"hookd/internal/config"
)

// The admin API refuses an invalid filter_expr on POST and PUT with its
// position, shows enrich's auth redacted, and a subscription created
// through it enriches with the http destination's auth (hookd serve's
// wiring) and filters by expression.
func TestSubscriptionAPIFilterExprAndEnrich(t *testing.T) {
	var entityHits atomic.Int64
	entity := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		entityHits.Add(1)
		if r.Header.Get("X-Api-Key") != "k1-secret" {
			w.WriteHeader(401)
			return
		}
		fmt.Fprintf(w, `{"ref": %q}`, strings.TrimPrefix(r.URL.Path, "/claims/"))
	}))
	t.Cleanup(entity.Close)
	var (
		mu     sync.Mutex
		bodies []string
	)
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
	dir := t.TempDir()
	cfg.Storage.Path = dir
	app, base := startApp(t, cfg, nil)

	bad := `{"destination": "svc", "filter_expr": "body.amount > 500 && hdrs[\"x\"] == \"y\""}`
	code, m := apiDo(t, "POST", base+"/api/v1/subscriptions", "tok", bad)
	if msg := fmt.Sprint(m["error"]); code != 400 || !strings.Contains(msg, "filter_expr: ERROR: <input>:1:22: undeclared reference to 'hdrs'") {
		t.Fatalf("POST with an invalid filter_expr: %d %v, want 400 naming filter_expr and 1:22", code, m)
	}
	code, m = apiDo(t, "POST", base+"/api/v1/subscriptions", "tok", `{"destination": "svc", "filter_expr": "body.amount"}`)
	if msg := fmt.Sprint(m["error"]); code != 400 || !strings.Contains(msg, "not bool") {
		t.Fatalf("POST with a non-bool filter_expr: %d %v, want 400", code, m)
	}
	good := fmt.Sprintf(`{"destination": "svc", "events": ["*"],
		"filter_expr": "body.amount > 500 && headers[\"x-env\"] == \"prod\"",
		"enrich": {"url": "%s/claims/{{body.claimRef}}", "into": "claim", "cache": "5m",
		           "auth": {"type": "header", "header": "X-Api-Key", "value": "k1-secret"}}}`, entity.URL)
	code, sub := apiDo(t, "POST", base+"/api/v1/subscriptions", "tok", good)
	if code != 201 {
		t.Fatalf("POST: %d %v", code, sub)
	}
	id, _ := sub["id"].(string)
	code, got := apiDo(t, "GET", base+"/api/v1/subscriptions/"+id, "tok", "")
	en, _ := got["enrich"].(map[string]any)
	auth, _ := en["auth"].(map[string]any)
	if code != 200 || got["filter_expr"] != `body.amount > 500 && headers["x-env"] == "prod"` || en["into"] != "claim" || en["cache"] != "5m0s" || auth["value"] != "[redacted]" || auth["header"] != "X-Api-Key" {
		t.Fatalf("GET: %d %v, want filter_expr, enrich and its auth value redacted", code, got)
	}
	code, m = apiDo(t, "PUT", base+"/api/v1/subscriptions/"+id, "tok", `{"destination": "svc", "filter_expr": "body.amount >"}`)
	if msg := fmt.Sprint(m["error"]); code != 400 || !strings.Contains(msg, "filter_expr: ERROR: <input>:1:14:") {
		t.Fatalf("PUT with an invalid filter_expr: %d %v, want 400 with 1:14", code, m)
	}
	code, m = apiDo(t, "PUT", base+"/api/v1/subscriptions/"+id, "tok", `{"destination": "svc", "enrich": {"url": "https://{{body.h}}/x", "into": "c"}}`)
	if msg := fmt.Sprint(m["error"]); code != 400 || !strings.Contains(msg, "enrich: url: placeholders are allowed only in the path") {
		t.Fatalf("PUT with a placeholder in the host: %d %v, want 400", code, m)
	}
	code, m = apiDo(t, "PUT", base+"/api/v1/subscriptions/"+id, "tok", `{"destination": "svc", "enrich": {"url": "https://api.example/{{id}}", "into": "c", "auth": {"type": "basic"}}}`)
	if msg := fmt.Sprint(m["error"]); code != 400 || !strings.Contains(msg, "auth.username") {
		t.Fatalf("PUT with an invalid enrich auth: %d %v, want 400 naming auth.username", code, m)
	}

	postEvent(t, base, "claims", `{"id": "e1", "type": "claim.updated", "amount": 100, "claimRef": "C-1"}`)
	req, _ := http.NewRequest("POST", base+"/in/claims", strings.NewReader(`{"id": "e2", "type": "claim.updated", "amount": 900, "claimRef": "C-2"}`))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-Env", "prod")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	waitFor(t, 10*time.Second, "the matching event, enriched", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(bodies) == 1
	})
	mu.Lock()
	b := bodies[0]
	mu.Unlock()
	if !strings.Contains(b, `"claimRef": "C-2"`) || !strings.Contains(b, `"claim":{"ref": "C-2"}`) {
		t.Fatalf("sink got %s, want event e2 with its claim", b)
	}
	if entityHits.Load() != 1 {
		t.Fatalf("entity API: %d requests, want 1", entityHits.Load())
	}

	// The enrich credentials are stored encrypted, and read back after a
	// restart.
	app.Shutdown(t.Context())
	files, _ := filepath.Glob(filepath.Join(dir, "*"))
	for _, f := range files {
		if b, err := os.ReadFile(f); err == nil && bytes.Contains(b, []byte("k1-secret")) {
			t.Fatalf("%s holds the enrich credentials in clear", filepath.Base(f))
		}
	}
	cfg2, _ := config.Parse([]byte(subscriptionConfig + fmt.Sprintf("destinations: [{name: svc, type: http, url: %q}]\n", sink.URL)))
	cfg2.Storage.Path = dir
	_, base2 := startApp(t, cfg2, nil)
	req, _ = http.NewRequest("POST", base2+"/in/claims", strings.NewReader(`{"id": "e3", "type": "claim.updated", "amount": 901, "claimRef": "C-3"}`))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-Env", "prod")
	resp, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	waitFor(t, 10*time.Second, "an enriched delivery after the restart", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(bodies) == 2 && strings.Contains(bodies[1], `"claim":{"ref": "C-3"}`)
	})
}
