package cli

import (
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"hookd/internal/config"
)

// handshakeSources is a source with a generic GET handshake and a verify
// token.
const handshakeSources = `
sources:
  - name: hub
    handshake:
      when: "query:hub.mode=subscribe"
      challenge: query:hub.challenge
      token: {from: query:hub.verify_token, values: ["a-verify-token-of-ours"]}
`

// getHandshake sends a handshake GET and returns the answer's status and
// body.
func getHandshake(t *testing.T, base, source, query string) (int, string) {
	t.Helper()
	resp, err := http.Get(base + "/in/" + source + "?" + query)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// lastHandshake returns GET /api/v1/sources/{name}'s last_handshake (the
// last answered one): nil when null.
func lastHandshake(t *testing.T, base, source string) map[string]any {
	t.Helper()
	return sourceField(t, base, source, "last_handshake")
}

// lastRefusedHandshake returns GET /api/v1/sources/{name}'s
// last_refused_handshake: nil when null.
func lastRefusedHandshake(t *testing.T, base, source string) map[string]any {
	t.Helper()
	return sourceField(t, base, source, "last_refused_handshake")
}

func sourceField(t *testing.T, base, source, field string) map[string]any {
	t.Helper()
	code, m := apiDo(t, "GET", base+"/api/v1/sources/"+source, "tok", "")
	if code != 200 {
		t.Fatalf("GET source %s: %d %v", source, code, m)
	}
	v, ok := m[field]
	if !ok {
		t.Fatalf("GET source %s: no %s in %v", source, field, m)
	}
	h, _ := v.(map[string]any)
	return h
}

// A handshake is answered, not stored, counted in
// hookd_ingest_handshakes_total, and shown in the admin API, also after a
// restart: the last answered one as the source's last_handshake, the last
// refused one apart as last_refused_handshake, so that a refused request
// (which anyone can send) does not hide the last one the provider passed.
func TestHandshakeMetricsAndLastHandshake(t *testing.T) {
	cfg, err := config.Parse([]byte("admin: {tokens: [tok]}\n" + handshakeSources))
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	cfg.Storage.Path = dir
	app, base := startApp(t, cfg, nil)

	if h := lastHandshake(t, base, "hub"); h != nil {
		t.Fatalf("last_handshake before any: got %v, want null", h)
	}
	if h := lastRefusedHandshake(t, base, "hub"); h != nil {
		t.Fatalf("last_refused_handshake before any: got %v, want null", h)
	}
	code, body := getHandshake(t, base, "hub", "hub.mode=subscribe&hub.challenge=c-1&hub.verify_token=a-verify-token-of-ours")
	if code != 200 || body != "c-1" {
		t.Fatalf("handshake: got %d %q, want 200 c-1", code, body)
	}
	h := lastHandshake(t, base, "hub")
	if h["kind"] != "generic" || h["status"] != float64(200) || h["error"] != nil {
		t.Errorf("last_handshake after an answered one: got %v, want kind generic, status 200, no error", h)
	}
	at, err := time.Parse(time.RFC3339Nano, fmt.Sprint(h["at"]))
	if err != nil || time.Since(at) > time.Minute || time.Since(at) < 0 {
		t.Errorf("last_handshake.at: got %v, want about now", h["at"])
	}
	code, _ = getHandshake(t, base, "hub", "hub.mode=subscribe&hub.challenge=c-2&hub.verify_token=wrong")
	if code != 403 {
		t.Fatalf("handshake with a wrong token: got %d, want 403", code)
	}
	if h := lastRefusedHandshake(t, base, "hub"); h["status"] != float64(403) || !strings.Contains(fmt.Sprint(h["error"]), "verify token") {
		t.Errorf("last_refused_handshake: got %v, want status 403 and the refusal", h)
	}
	if h := lastHandshake(t, base, "hub"); h["status"] != float64(200) || h["error"] != nil {
		t.Errorf("last_handshake after a refused one: got %v, want still the answered one", h)
	}

	text := scrape(t, base+"/metrics")
	for labels, want := range map[string]float64{
		`kind="generic",outcome="answered",source="hub"`: 1,
		`kind="generic",outcome="refused",source="hub"`:  1,
	} {
		if got, ok := sample(text, "hookd_ingest_handshakes_total", labels); !ok || got != want {
			t.Errorf("hookd_ingest_handshakes_total{%s}: got %v (present %v), want %v", labels, got, ok, want)
		}
	}
	code, m := apiDo(t, "GET", base+"/api/v1/events?source=hub", "tok", "")
	if code != 200 || len(m["data"].([]any)) != 0 {
		t.Errorf("events of hub: got %d %v, want none stored", code, m)
	}

	// The last handshake was written to the store: a restart shows it.
	app.Shutdown(t.Context())
	cfg2, _ := config.Parse([]byte("admin: {tokens: [tok]}\n" + handshakeSources))
	cfg2.Storage.Path = dir
	_, base2 := startApp(t, cfg2, nil)
	if h := lastHandshake(t, base2, "hub"); h["status"] != float64(200) || h["kind"] != "generic" {
		t.Errorf("last_handshake after a restart: got %v, want the answered one", h)
	}
	if h := lastRefusedHandshake(t, base2, "hub"); h["status"] != float64(403) || h["kind"] != "generic" {
		t.Errorf("last_refused_handshake after a restart: got %v, want the refused one", h)
	}
}

// On PostgreSQL, a handshake answered by one replica is the source's
// last_handshake on the other.
func TestLastHandshakeAcrossReplicas(t *testing.T) {
	dsn := testPostgresDSN(t)
	yml := fmt.Sprintf("admin: {tokens: [tok]}\nstorage: {driver: postgres, dsn: %q}\n%s", dsn, handshakeSources)
	cfgA, err := config.Parse([]byte(yml))
	if err != nil {
		t.Fatal(err)
	}
	cfgB, _ := config.Parse([]byte(yml))
	_, baseA := startApp(t, cfgA, nil)
	_, baseB := startApp(t, cfgB, nil)

	code, body := getHandshake(t, baseA, "hub", "hub.mode=subscribe&hub.challenge=c-1&hub.verify_token=a-verify-token-of-ours")
	if code != 200 || body != "c-1" {
		t.Fatalf("handshake at A: got %d %q, want 200 c-1", code, body)
	}
	var h map[string]any
	waitFor(t, 10*time.Second, "A's handshake shown by B", func() bool {
		h = lastHandshake(t, baseB, "hub")
		return h != nil
	})
	if h["kind"] != "generic" || h["status"] != float64(200) {
		t.Errorf("B's last_handshake: got %v, want A's answered generic handshake", h)
	}

	// A later refusal at B is then A's last refused handshake too; A's
	// last answered one stays.
	if code, _ := getHandshake(t, baseB, "hub", "hub.mode=subscribe&hub.challenge=c-2&hub.verify_token=wrong"); code != 403 {
		t.Fatalf("handshake at B with a wrong token: got %d, want 403", code)
	}
	waitFor(t, 10*time.Second, "B's refusal shown by A", func() bool {
		h = lastRefusedHandshake(t, baseA, "hub")
		return h != nil && h["status"] == float64(403)
	})
	if h := lastHandshake(t, baseA, "hub"); h["status"] != float64(200) {
		t.Errorf("A's last_handshake after B's refusal: got %v, want the answered one", h)
	}
}

// A source created through the API takes a handshake; its verify tokens
// are never shown.
func TestAPISourceHandshakeTokenRedacted(t *testing.T) {
	cfg, err := config.Parse([]byte("admin: {tokens: [tok]}\n"))
	if err != nil {
		t.Fatal(err)
	}
	cfg.Storage.Path = t.TempDir()
	_, base := startApp(t, cfg, nil)
	const spec = `{"name": "api-hub", "handshake": {"challenge": "query:hub.challenge",
		"token": {"from": "query:hub.verify_token", "values": ["a-verify-token-of-ours"]}}}`
	if code, m := apiDo(t, "POST", base+"/api/v1/sources", "tok", spec); code != 201 {
		t.Fatalf("create: %d %v", code, m)
	}
	if code, m := apiDo(t, "POST", base+"/api/v1/sources", "tok", `{"name": "bad", "handshake": {"challenge": "query:c", "answer": "xml"}}`); code != 400 || !strings.Contains(fmt.Sprint(m), "handshake.answer") {
		t.Errorf("create with a bad answer: got %d %v, want 400 naming handshake.answer", code, m)
	}
	code, body := getHandshake(t, base, "api-hub", "hub.challenge=c-9&hub.verify_token=a-verify-token-of-ours")
	if code != 200 || body != "c-9" {
		t.Fatalf("handshake: got %d %q, want 200 c-9", code, body)
	}
	for _, path := range []string{"/api/v1/sources/api-hub", "/api/v1/sources"} {
		code, m := apiDo(t, "GET", base+path, "tok", "")
		if code != 200 || strings.Contains(fmt.Sprint(m), "a-verify-token-of-ours") || !strings.Contains(fmt.Sprint(m), "[redacted]") {
			t.Errorf("GET %s: got %d %v, want the token redacted", path, code, m)
		}
	}
}
