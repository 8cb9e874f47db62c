package cli

import (
	"bytes"
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

// hookSink is a real receiver that records the webhook-id and event type
// of every request.
type hookSink struct {
	srv *httptest.Server
	mu  sync.Mutex
	ids []string
	typ map[string]string
}

func newHookSink(t *testing.T) *hookSink {
	s := &hookSink{typ: map[string]string{}}
	s.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		s.mu.Lock()
		id := r.Header.Get("webhook-id")
		s.ids = append(s.ids, id)
		s.typ[id] = r.Header.Get("Hookd-Event-Type")
		s.mu.Unlock()
	}))
	t.Cleanup(s.srv.Close)
	return s
}

func (s *hookSink) types() map[string]string {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := map[string]string{}
	for k, v := range s.typ {
		out[k] = v
	}
	return out
}

func apiDo(t *testing.T, method, url, token, body string) (int, map[string]any) {
	t.Helper()
	req, _ := http.NewRequest(method, url, strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var m map[string]any
	b, _ := io.ReadAll(resp.Body)
	json.Unmarshal(b, &m)
	return resp.StatusCode, m
}

func postEvent(t *testing.T, base, source, body string) string {
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
	if resp.StatusCode != 200 || m.ID == "" {
		t.Fatalf("ingest: %d", resp.StatusCode)
	}
	return m.ID
}

func waitFor(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

const subscriptionConfig = `
admin: {tokens: [tok]}
egress: {allow_private: ["127.0.0.0/8"]}
sources:
  - {name: claims, event: {id: "json:id", type: "json:type"}}
`

// Seed 001's subscription JSON, posted as is, starts deliveries of every
// event; a subscription to event.claim.* gets event.claim.created.v1 and
// not event.invoice.paid; both survive a restart.
func TestSeed001SubscriptionShape(t *testing.T) {
	all, claims := newHookSink(t), newHookSink(t)
	dir := t.TempDir()
	cfg, err := config.Parse([]byte(subscriptionConfig))
	if err != nil {
		t.Fatal(err)
	}
	cfg.Storage.Path = dir
	app, base := startApp(t, cfg, nil)

	seed := fmt.Sprintf(`{"active": true, "events": ["*"], "url": %q, "...": "additional configuration example"}`, all.srv.URL)
	code, sub := apiDo(t, "POST", base+"/api/v1/subscriptions", "tok", seed)
	if code != 201 {
		t.Fatalf("POST seed 001 subscription: %d %v", code, sub)
	}
	t.Logf("seed 001 subscription: %d %v", code, sub)
	code, sub2 := apiDo(t, "POST", base+"/api/v1/subscriptions", "tok", fmt.Sprintf(`{"events": ["event.claim.*"], "url": %q}`, claims.srv.URL))
	if code != 201 {
		t.Fatalf("POST claim subscription: %d %v", code, sub2)
	}
	ids := map[string]string{}
	for i := 0; i < 10; i++ {
		typ := "event.claim.created.v1"
		if i%2 == 1 {
			typ = "event.invoice.paid"
		}
		ids[postEvent(t, base, "claims", fmt.Sprintf(`{"id":"m-%d","type":%q}`, i, typ))] = typ
	}
	waitFor(t, 10*time.Second, "every event at the * subscription", func() bool { return len(all.types()) == len(ids) })
	waitFor(t, 10*time.Second, "claim events at the claim subscription", func() bool { return len(claims.types()) == 5 })
	for id, typ := range claims.types() {
		if typ != "event.claim.created.v1" || ids[id] != typ {
			t.Fatalf("event.claim.* received %s (%s)", id, typ)
		}
	}
	// The event shows its deliveries and their attempts.
	var someClaim string
	for id, typ := range ids {
		if typ == "event.claim.created.v1" {
			someClaim = id
		}
	}
	// A delivery is listed (pending) from the moment it exists: wait for
	// both outcomes to be recorded.
	waitFor(t, 5*time.Second, "deliveries recorded", func() bool {
		_, ev := apiDo(t, "GET", base+"/api/v1/events/"+someClaim, "tok", "")
		ds, _ := ev["deliveries"].([]any)
		if len(ds) != 2 {
			return false
		}
		for _, d := range ds {
			if dm, _ := d.(map[string]any); dm["status"] != "succeeded" {
				return false
			}
		}
		return true
	})
	_, ev := apiDo(t, "GET", base+"/api/v1/events/"+someClaim, "tok", "")
	for _, d := range ev["deliveries"].([]any) {
		dm := d.(map[string]any)
		atts := dm["attempts"].([]any)
		if dm["status"] != "succeeded" || len(atts) != 1 || atts[0].(map[string]any)["status_code"].(float64) != 200 {
			t.Fatalf("delivery %v", dm)
		}
	}
	// Subscriptions and their destinations are stored: after a restart
	// they still deliver.
	app.Shutdown(t.Context())
	cfg2, _ := config.Parse([]byte(subscriptionConfig))
	cfg2.Storage.Path = dir
	_, base2 := startApp(t, cfg2, nil)
	code, list := apiDo(t, "GET", base2+"/api/v1/subscriptions", "tok", "")
	if code != 200 || len(list["data"].([]any)) != 2 {
		t.Fatalf("subscriptions after restart: %d %v", code, list)
	}
	id := postEvent(t, base2, "claims", `{"id":"after-restart","type":"event.claim.created.v1"}`)
	waitFor(t, 10*time.Second, "delivery after restart", func() bool {
		return all.types()[id] != "" && claims.types()[id] != ""
	})
}

func TestSubscriptionAPIRefusesBadInput(t *testing.T) {
	cfg, _ := config.Parse([]byte(subscriptionConfig))
	cfg.Storage.Path = t.TempDir()
	_, base := startApp(t, cfg, nil)
	for _, c := range []struct {
		body string
		code int
		want string
	}{
		{`{"events": ["*"], "url": "https://10.0.0.5/hook"}`, 400, "10.0.0.5"},
		{`{"events": ["*"], "url": "http://169.254.169.254/latest"}`, 400, "169.254.169.254"},
		{`{"events": ["*"], "url": "file:///etc/passwd"}`, 400, "url"},
		{`{"events": ["a.**"], "destination": "nope"}`, 400, ""},
		{`{"destination": "nope"}`, 400, "no destination named"},
		{`{"destination": "x", "colour": "red"}`, 400, "unknown subscription keys: colour"},
		{`{"source": "claimz", "events": ["*"], "url": "https://hooks.example.com/"}`, 400, "no source named \"claimz\""},
		{`[1,2]`, 400, "JSON object"},
	} {
		code, m := apiDo(t, "POST", base+"/api/v1/subscriptions", "tok", c.body)
		msg := fmt.Sprint(m["error"])
		if code != c.code || !strings.Contains(msg, c.want) {
			t.Errorf("POST %s: %d %s, want %d containing %q", c.body, code, msg, c.code, c.want)
		}
	}
}

// The API never shows a destination's credentials.
func TestDestinationAPIRedactsSecrets(t *testing.T) {
	cfg, _ := config.Parse([]byte(subscriptionConfig))
	cfg.Storage.Path = t.TempDir()
	_, base := startApp(t, cfg, nil)
	body := `{"name":"billing","type":"http","url":"https://billing.example.com/hooks",
		"headers":{"X-Api-Key":"k-SECRET-1","X-Team":"payments"},
		"auth":{"type":"basic","username":"hookd","password":"p-SECRET-2"},
		"sign":{"secrets":["whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"]}}`
	code, m := apiDo(t, "POST", base+"/api/v1/destinations", "tok", body)
	if code != 201 {
		t.Fatalf("create: %d %v", code, m)
	}
	for _, path := range []string{"/api/v1/destinations/billing", "/api/v1/destinations"} {
		req, _ := http.NewRequest("GET", base+path, nil)
		req.Header.Set("Authorization", "Bearer tok")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		for _, secret := range []string{"k-SECRET-1", "p-SECRET-2", "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"} {
			if strings.Contains(string(b), secret) {
				t.Fatalf("GET %s shows a secret: %s", path, b)
			}
		}
		if !strings.Contains(string(b), "payments") {
			t.Fatalf("GET %s hides a plain header too: %s", path, b)
		}
	}
}

// GET /api/v1/events?status=failed lists the events of the failed queue.
func TestEventsFilterByDeliveryStatus(t *testing.T) {
	bad := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		if strings.Contains(r.Header.Get("Hookd-Event-Type"), "bad") {
			w.WriteHeader(400)
		}
	}))
	defer bad.Close()
	cfg, _ := config.Parse([]byte(subscriptionConfig))
	cfg.Storage.Path = t.TempDir()
	_, base := startApp(t, cfg, nil)
	if code, m := apiDo(t, "POST", base+"/api/v1/subscriptions", "tok", fmt.Sprintf(`{"url":%q}`, bad.URL)); code != 201 {
		t.Fatalf("subscribe: %d %v", code, m)
	}
	good := postEvent(t, base, "claims", `{"id":"g","type":"ok"}`)
	failed := postEvent(t, base, "claims", `{"id":"b","type":"bad"}`)
	waitFor(t, 10*time.Second, "the failed delivery", func() bool {
		_, m := apiDo(t, "GET", base+"/api/v1/events?status=failed", "tok", "")
		d, _ := m["data"].([]any)
		return len(d) == 1
	})
	_, m := apiDo(t, "GET", base+"/api/v1/events?status=failed", "tok", "")
	if id := m["data"].([]any)[0].(map[string]any)["id"]; id != failed {
		t.Fatalf("failed queue event %v, want %s (not %s)", id, failed, good)
	}
	if code, _ := apiDo(t, "GET", base+"/api/v1/events?status=broken", "tok", ""); code != 400 {
		t.Fatalf("unknown status: %d, want 400", code)
	}
}
