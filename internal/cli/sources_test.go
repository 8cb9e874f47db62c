package cli

import (
	"bytes"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"hookd/internal/config"
)

const sourcesConfig = `
admin: {tokens: [tok]}
egress: {allow_private: ["127.0.0.0/8"]}
sources:
  - {name: claims, event: {id: "json:id", type: "json:type"}}
`

// postWithKey POSTs body to a source with an API key (empty: none) and
// returns the status code.
func postWithKey(t *testing.T, base, source, key, body string) int {
	t.Helper()
	req, _ := http.NewRequest("POST", base+"/in/"+source, strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// A source created through the admin API receives at once, verifies as
// defined, can be subscribed to, replaced and deleted, survives a
// restart, and its secrets are neither shown nor stored in plain text.
func TestSourcesThroughTheAPI(t *testing.T) {
	sink := newHookSink(t)
	dir := t.TempDir()
	cfg, err := config.Parse([]byte(sourcesConfig))
	if err != nil {
		t.Fatal(err)
	}
	cfg.Storage.Path = dir
	app, base := startApp(t, cfg, nil)

	const key1, key2 = "shop-key-0123456789", "shop-key-rotated-9876"
	code, v := apiDo(t, "POST", base+"/api/v1/sources", "tok", fmt.Sprintf(
		`{"name": "shop", "verify": [{"type": "api_key", "keys": [%q]}], "event": {"id": "json:id", "type": "json:type"}}`, key1))
	if code != 201 || v["origin"] != "api" || v["path"] != "/in/shop" {
		t.Fatalf("POST /api/v1/sources: %d %v", code, v)
	}
	if def := fmt.Sprint(v["definition"]); strings.Contains(def, key1) || !strings.Contains(def, "[redacted]") {
		t.Fatalf("definition shown with its key: %s", def)
	}
	if c := postWithKey(t, base, "shop", "", `{"id":"o-1","type":"order.created"}`); c != 401 {
		t.Fatalf("no key: %d, want 401", c)
	}
	if c := postWithKey(t, base, "shop", key1, `{"id":"o-1","type":"order.created"}`); c != 200 {
		t.Fatalf("with key: %d, want 200", c)
	}
	code, list := apiDo(t, "GET", base+"/api/v1/sources", "tok", "")
	var names []string
	for _, s := range list["data"].([]any) {
		m := s.(map[string]any)
		names = append(names, fmt.Sprint(m["name"], ":", m["origin"]))
	}
	if code != 200 || strings.Join(names, " ") != "claims:config shop:api" {
		t.Fatalf("GET /api/v1/sources: %d %v", code, names)
	}

	// It can be subscribed to.
	code, sub := apiDo(t, "POST", base+"/api/v1/subscriptions", "tok", fmt.Sprintf(`{"source": "shop", "url": %q}`, sink.srv.URL))
	if code != 201 {
		t.Fatalf("subscribe to shop: %d %v", code, sub)
	}
	if c := postWithKey(t, base, "shop", key1, `{"id":"o-2","type":"order.paid"}`); c != 200 {
		t.Fatalf("with key: %d", c)
	}
	waitFor(t, 10*time.Second, "the shop event at the sink", func() bool {
		for _, typ := range sink.types() {
			if typ == "order.paid" {
				return true
			}
		}
		return false
	})

	// Replaced: the rotated key works, the old one no longer does.
	code, v = apiDo(t, "PUT", base+"/api/v1/sources/shop", "tok", fmt.Sprintf(
		`{"verify": [{"type": "api_key", "keys": [%q]}], "event": {"id": "json:id", "type": "json:type"}}`, key2))
	if code != 200 {
		t.Fatalf("PUT /api/v1/sources/shop: %d %v", code, v)
	}
	if c := postWithKey(t, base, "shop", key1, `{"id":"o-3"}`); c != 401 {
		t.Fatalf("old key after the update: %d, want 401", c)
	}
	if c := postWithKey(t, base, "shop", key2, `{"id":"o-3"}`); c != 200 {
		t.Fatalf("new key after the update: %d, want 200", c)
	}

	// Refused, with reasons.
	for _, c := range []struct {
		method, path, body string
		code               int
	}{
		{"POST", "/api/v1/sources", `{"name": "shop"}`, 409},
		{"POST", "/api/v1/sources", `{"name": "claims"}`, 409},
		{"PUT", "/api/v1/sources/claims", `{}`, 409},
		{"PUT", "/api/v1/sources/nope", `{}`, 404},
		{"POST", "/api/v1/sources", `{"name": "bad name!"}`, 400},
		{"POST", "/api/v1/sources", `{"name": "x", "verify": [{"type": "telepathy"}]}`, 400},
		{"POST", "/api/v1/sources", `{"name": "x", "verify": [{"type": "hmac"}]}`, 400},
		{"POST", "/api/v1/sources", `{"name": "x", "verify": [{"type": "oauth_issuer", "clients": [{"id": "a", "secret": "b"}]}]}`, 400},
		{"POST", "/api/v1/sources", `{"name": "x", "colour": "blue"}`, 400},
		{"POST", "/api/v1/sources", `[1]`, 400},
		{"DELETE", "/api/v1/sources/shop", ``, 409}, // subscribed
		{"DELETE", "/api/v1/sources/claims", ``, 409},
	} {
		code, m := apiDo(t, c.method, base+c.path, "tok", c.body)
		if code != c.code {
			t.Errorf("%s %s %s: %d %v, want %d", c.method, c.path, c.body, code, m, c.code)
		} else {
			t.Logf("%s %s %s: %d %v", c.method, c.path, c.body, code, m["error"])
		}
	}
	if c := postWithKey(t, base, "x", "", `{}`); c != 404 {
		t.Fatalf("a refused source receives: %d", c)
	}

	// Survives a restart, and its key is not in the database in plain text.
	app.Shutdown(t.Context())
	for _, f := range []string{"hookd.db", "hookd.db-wal"} {
		b, err := os.ReadFile(filepath.Join(dir, f))
		if err != nil {
			continue
		}
		if bytes.Contains(b, []byte(key1)) || bytes.Contains(b, []byte(key2)) {
			t.Fatalf("%s holds a source key in plain text", f)
		}
	}
	cfg2, _ := config.Parse([]byte(sourcesConfig))
	cfg2.Storage.Path = dir
	_, base2 := startApp(t, cfg2, nil)
	if c := postWithKey(t, base2, "shop", key2, `{"id":"o-4"}`); c != 200 {
		t.Fatalf("after a restart: %d, want 200", c)
	}

	// Deleted once its subscription is: it answers 404.
	if code, m := apiDo(t, "DELETE", base2+"/api/v1/subscriptions/"+fmt.Sprint(sub["id"]), "tok", ""); code != 204 {
		t.Fatalf("delete subscription: %d %v", code, m)
	}
	if code, m := apiDo(t, "DELETE", base2+"/api/v1/sources/shop", "tok", ""); code != 204 {
		t.Fatalf("delete source: %d %v", code, m)
	}
	if c := postWithKey(t, base2, "shop", key2, `{"id":"o-5"}`); c != 404 {
		t.Fatalf("a deleted source: %d, want 404", c)
	}
	// Its events stay.
	if code, m := apiDo(t, "GET", base2+"/api/v1/events?source=shop", "tok", ""); code != 200 || len(m["data"].([]any)) != 4 {
		t.Fatalf("events of the deleted source: %d %v", code, m)
	}
}

// hookd sources create|list|get|update|delete drive the same API.
func TestManageSources(t *testing.T) {
	base := startManageApp(t)
	conn := []string{"--server", base, "--token", verbsToken}
	run := func(stdin string, args ...string) string {
		t.Helper()
		out, errOut, code := manageRun(t, stdin, append(args, conn...)...)
		if code != 0 {
			t.Fatalf("hookd %s: exit %d: %s", strings.Join(args, " "), code, errOut)
		}
		return out
	}
	out := run(`{"name": "shop", "verify": [{"type": "api_key", "keys": ["cli-key-0123456789"]}], "event": {"id": "json:id"}}`,
		"sources", "create", "-f", "-")
	if !strings.Contains(out, "created shop, receiving at /in/shop") {
		t.Fatalf("create: %q", out)
	}
	if c := postWithKey(t, base, "shop", "cli-key-0123456789", `{"id":"1"}`); c != 200 {
		t.Fatalf("POST /in/shop: %d", c)
	}
	out = run("", "sources", "list")
	if !regexp.MustCompile(`(?m)^app\s+config\s+/in/app\s+none`).MatchString(out) || !regexp.MustCompile(`(?m)^shop\s+api\s+/in/shop\s+api_key\s+168h0m0s`).MatchString(out) {
		t.Fatalf("list:\n%s", out)
	}
	out = run("", "sources", "get", "shop")
	if !strings.Contains(out, "origin:") || !strings.Contains(out, "[redacted]") || strings.Contains(out, "cli-key-0123456789") {
		t.Fatalf("get:\n%s", out)
	}
	run(`{"event": {"id": "json:id"}}`, "sources", "update", "shop", "-f", "-")
	if c := postWithKey(t, base, "shop", "", `{"id":"2"}`); c != 200 {
		t.Fatalf("POST /in/shop after the update removed verification: %d", c)
	}
	if out := run("", "sources", "delete", "shop"); !strings.Contains(out, "deleted") {
		t.Fatalf("delete: %q", out)
	}
	if _, errOut, code := manageRun(t, "", append([]string{"sources", "delete", "app"}, conn...)...); code == 0 || !strings.Contains(errOut, "configuration file") {
		t.Fatalf("delete of a configured source: exit %d, %q", code, errOut)
	}
}

// Destinations that act on the hookd host (exec runs a command, file
// writes a file) cannot be created through the API, directly or inside a
// subscription: an admin token must not become a shell on the host.
func TestHostDestinationsRefusedThroughTheAPI(t *testing.T) {
	cfg, err := config.Parse([]byte(sourcesConfig))
	if err != nil {
		t.Fatal(err)
	}
	cfg.Storage.Path = t.TempDir()
	_, base := startApp(t, cfg, nil)
	for _, body := range []string{
		`{"name": "sh", "type": "exec", "command": ["/bin/sh", "-c", "id"]}`,
		`{"name": "out", "type": "file", "path": "/tmp/out.jsonl"}`,
	} {
		code, m := apiDo(t, "POST", base+"/api/v1/destinations", "tok", body)
		msg := fmt.Sprint(m["error"])
		if code != 400 || !strings.Contains(msg, "configuration file") {
			t.Errorf("POST %s: %d %s, want 400 naming the configuration file", body, code, msg)
		}
	}
	// The providers' subscription shape carries its destination's keys:
	// a type given there meets the same refusal.
	code, m := apiDo(t, "POST", base+"/api/v1/subscriptions", "tok", `{"url": "https://example.com/", "type": "exec", "command": ["/bin/true"]}`)
	if msg := fmt.Sprint(m["error"]); code != 400 || !strings.Contains(msg, "configuration file") {
		t.Errorf("subscription with an exec destination: %d %s, want 400 naming the configuration file", code, msg)
	}
}

// No credential of a source created through the API is shown: not by
// GET /api/v1/sources/{name}, not in the list. One source per kind of
// credential the verification methods and presets take.
func TestSourceCredentialsNotShown(t *testing.T) {
	cfg, err := config.Parse([]byte(sourcesConfig))
	if err != nil {
		t.Fatal(err)
	}
	cfg.Storage.Path = t.TempDir()
	_, base := startApp(t, cfg, nil)

	cases := []struct {
		name, verify string
		secrets      []string
	}{
		{"github", `{"type": "github", "secrets": ["gh-secret-0123456789abcdef"]}`, []string{"gh-secret-0123456789abcdef"}},
		{"meta", `{"type": "meta", "secrets": ["meta-app-secret-0123456789"], "verify_token": "meta-verify-token-0123456789"}`,
			[]string{"meta-app-secret-0123456789", "meta-verify-token-0123456789"}},
		{"msgraph", `{"type": "msgraph", "client_states": ["graph-client-state-0123456789", "graph-client-state-9876543210"]}`,
			[]string{"graph-client-state-0123456789", "graph-client-state-9876543210"}},
		{"postmark", `{"type": "postmark", "users": [{"username": "postmark", "password": "pm-password-0123456789"}]}`, []string{"pm-password-0123456789"}},
		{"okta", `{"type": "okta", "secrets": ["okta-hook-secret-0123456789"]}`, []string{"okta-hook-secret-0123456789"}},
		{"twilio", `{"type": "twilio", "secrets": ["twilio-auth-token-0123456789"], "url": "https://hooks.example.com/in/twilio"}`, []string{"twilio-auth-token-0123456789"}},
		{"basic", `{"type": "basic", "users": [{"username": "u", "password": ["basic-password-0123456789", "basic-password-rotated-01"]}]}`,
			[]string{"basic-password-0123456789", "basic-password-rotated-01"}},
		{"apikey", `{"type": "api_key", "keys": ["api-key-0123456789abcdef"]}`, []string{"api-key-0123456789abcdef"}},
		{"introspection", `{"type": "oauth_introspection", "url": "https://127.0.0.1:9/introspect", "client_id": "hookd", "client_secret": "introspection-secret-0123456789"}`,
			[]string{"introspection-secret-0123456789"}},
		{"hmac", `{"type": "hmac", "signature": "header:X-Sig", "secrets": ["hmac-secret-0123456789ab"]}`, []string{"hmac-secret-0123456789ab"}},
	}
	for _, c := range cases {
		code, v := apiDo(t, "POST", base+"/api/v1/sources", "tok", fmt.Sprintf(`{"name": %q, "verify": [%s]}`, c.name, c.verify))
		if code != 201 {
			t.Fatalf("create %s: %d %v", c.name, code, v)
		}
		for _, s := range c.secrets {
			if strings.Contains(fmt.Sprint(v), s) {
				t.Errorf("POST /api/v1/sources (%s): the answer shows %q", c.name, s)
			}
		}
	}
	_, list := apiDo(t, "GET", base+"/api/v1/sources", "tok", "")
	for _, c := range cases {
		code, v := apiDo(t, "GET", base+"/api/v1/sources/"+c.name, "tok", "")
		if code != 200 || !strings.Contains(fmt.Sprint(v["definition"]), "[redacted]") {
			t.Fatalf("GET /api/v1/sources/%s: got %d %v, want its definition with [redacted]", c.name, code, v)
		}
		for _, s := range c.secrets {
			if strings.Contains(fmt.Sprint(v), s) {
				t.Errorf("GET /api/v1/sources/%s shows %q", c.name, s)
			}
			if strings.Contains(fmt.Sprint(list), s) {
				t.Errorf("GET /api/v1/sources shows %q (%s)", s, c.name)
			}
		}
	}
}
