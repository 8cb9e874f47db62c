package cli

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"testing"

	"hookd/internal/config"
)

// Seed 002 plays the loyalty platform against examples/seed-002-header.yaml
// (a configured authentication header, duplicates by eventId); seed 001
// plays a provider that authenticates with an API key against
// examples/seed-001-subscriptions.yaml.

const (
	s002AdminToken = "seed002-admin-token-0123456789"
	s002Secret     = "seed002-loyalty-token-abcdef"
	s002APIKey     = "seed001-api-key-0123456789abcdef"
)

// s002Start loads an example with its environment set and runs it
// in-process on 127.0.0.1:0; it returns the base URL.
func s002Start(t *testing.T, example string) string {
	t.Helper()
	t.Setenv("HOOKD_ADMIN_TOKEN", s002AdminToken)
	t.Setenv("LOYALTY_TOKEN", s002Secret)
	t.Setenv("PROVIDER_API_KEY", s002APIKey)
	cfg, err := config.Load("../../examples/" + example)
	if err != nil {
		t.Fatalf("load example: %v", err)
	}
	cfg.Storage.Path = t.TempDir()
	_, base := startApp(t, cfg, nil)
	return base
}

type s002Answer struct {
	status int
	header http.Header
	body   []byte
	id     string
}

// s002Post posts body to path with headers given as name, value pairs.
func s002Post(t *testing.T, url string, body string, kv ...string) s002Answer {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, url, bytes.NewReader([]byte(body)))
	req.Header.Set("Content-Type", "application/json")
	for i := 0; i+1 < len(kv); i += 2 {
		req.Header.Add(kv[i], kv[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("POST %s: %v", url, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	a := s002Answer{status: resp.StatusCode, header: resp.Header, body: b}
	if a.status == http.StatusOK {
		var ack struct {
			ID string `json:"id"`
		}
		if err := json.Unmarshal(b, &ack); err != nil || ack.ID == "" {
			t.Fatalf("answer %s: want {id, request_id}", b)
		}
		a.id = ack.ID
	}
	return a
}

// s002Event returns an event as the admin API shows it.
func s002Event(t *testing.T, base, id string) map[string]any {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, base+"/api/v1/events/"+id, nil)
	req.Header.Set("Authorization", "Bearer "+s002AdminToken)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /api/v1/events/%s: got %d %s, want 200", id, resp.StatusCode, b)
	}
	var ev map[string]any
	if err := json.Unmarshal(b, &ev); err != nil {
		t.Fatal(err)
	}
	return ev
}

const s002Payload = `{"eventName":"customerAdded","eventId":"GSjhsJ87484SdghD4747","orgId":1655,"refId":"1655_684494987","apiRequestId":"sdjsj78378d3287","createdAt":156474848484}`

func TestSeed002Header(t *testing.T) {
	base := s002Start(t, "seed-002-header.yaml")
	in := base + "/in/loyalty"

	a := s002Post(t, in, s002Payload, "X-Auth-Token", s002Secret)
	if a.status != http.StatusOK || a.header.Get("Hookd-Duplicate") != "" {
		t.Fatalf("valid header: got %d %s (Hookd-Duplicate %q), want 200, not a duplicate", a.status, a.body, a.header.Get("Hookd-Duplicate"))
	}
	ev := s002Event(t, base, a.id)
	if ev["external_id"] != "GSjhsJ87484SdghD4747" || ev["type"] != "customerAdded" || ev["body"] != s002Payload {
		t.Errorf("stored event: got %v, want the payload with eventId and eventName", ev)
	}
	hdrs, _ := ev["headers"].(map[string]any)
	if v, _ := hdrs["X-Auth-Token"].([]any); len(v) != 1 || v[0] != "[redacted]" {
		t.Errorf("stored X-Auth-Token: got %v, want [redacted]", hdrs["X-Auth-Token"])
	}

	for _, tt := range []struct {
		name    string
		headers []string
	}{
		{"Wrong", []string{"X-Auth-Token", s002Secret + "x"}},
		{"Missing", nil},
		{"InAuthorization", []string{"Authorization", s002Secret}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			a := s002Post(t, in, `{"eventName":"customerAdded","eventId":"refused-`+tt.name+`"}`, tt.headers...)
			if a.status != http.StatusUnauthorized {
				t.Errorf("got %d %s, want 401", a.status, a.body)
			}
			if bytes.Contains(a.body, []byte(s002Secret)) {
				t.Errorf("answer %s shows the secret", a.body)
			}
		})
	}

	// A timed-out event is sent again: same eventId, 200, nothing stored twice.
	dup := s002Post(t, in, s002Payload, "X-Auth-Token", s002Secret)
	if dup.status != http.StatusOK || dup.header.Get("Hookd-Duplicate") != "true" || dup.id != a.id {
		t.Errorf("duplicate: got %d %s (Hookd-Duplicate %q), want 200 with id %s and Hookd-Duplicate: true", dup.status, dup.body, dup.header.Get("Hookd-Duplicate"), a.id)
	}
}

func TestSeed001APIKey(t *testing.T) {
	base := s002Start(t, "seed-001-subscriptions.yaml")
	in := base + "/in/applications"
	for _, tt := range []struct {
		name          string
		headers       []string
		wantStatus    int
		wantChallenge string
	}{
		{"XApiKey", []string{"X-Api-Key", s002APIKey}, 200, ""},
		{"Bearer", []string{"Authorization", "Bearer " + s002APIKey}, 200, ""},
		{"WrongKey", []string{"X-Api-Key", "not-the-key"}, 401, `Bearer realm="hookd", error="invalid_token"`},
		{"WrongBearer", []string{"Authorization", "Bearer not-the-key"}, 401, `Bearer realm="hookd", error="invalid_token"`},
		{"Missing", nil, 401, `Bearer realm="hookd"`},
	} {
		t.Run(tt.name, func(t *testing.T) {
			a := s002Post(t, in, `{"id":"evt-`+tt.name+`","type":"quote.completed","record_id":"app-42"}`, tt.headers...)
			if a.status != tt.wantStatus || a.header.Get("WWW-Authenticate") != tt.wantChallenge {
				t.Fatalf("got %d %s (WWW-Authenticate %q), want %d (%q)", a.status, a.body, a.header.Get("WWW-Authenticate"), tt.wantStatus, tt.wantChallenge)
			}
			if tt.wantStatus == http.StatusOK {
				if ev := s002Event(t, base, a.id); ev["external_id"] != "evt-"+tt.name {
					t.Errorf("stored event: got %v, want external_id evt-%s", ev, tt.name)
				}
			}
		})
	}
	// Dedupe by event id; a new event about the same record is stored.
	first := s002Post(t, in, `{"id":"evt-a","type":"quote.completed","record_id":"app-42"}`, "X-Api-Key", s002APIKey)
	again := s002Post(t, in, `{"id":"evt-a","type":"quote.completed","record_id":"app-42"}`, "X-Api-Key", s002APIKey)
	later := s002Post(t, in, `{"id":"evt-b","type":"quote.completed","record_id":"app-42"}`, "X-Api-Key", s002APIKey)
	if again.id != first.id || again.header.Get("Hookd-Duplicate") != "true" {
		t.Errorf("re-send: got id %s (Hookd-Duplicate %q), want %s and true", again.id, again.header.Get("Hookd-Duplicate"), first.id)
	}
	if later.status != http.StatusOK || later.id == first.id || later.header.Get("Hookd-Duplicate") != "" {
		t.Errorf("new event about the same record: got %d id %s, want a new stored event", later.status, later.id)
	}
}
