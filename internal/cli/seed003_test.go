package cli

import (
	"bytes"
	"crypto/md5"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"hookd/internal/config"
)

// Seed 003 plays a booking platform that signs each notification with an
// md5 sum keyed by a SecurityKey against examples/seed-003-digest.yaml.

const (
	s003AdminToken  = "seed003-admin-token-0123456789"
	s003SecurityKey = "seed003-security-key-5f1c2a"
)

// s003Start loads an example with the environment set in env, after edit
// (when not nil) has rewritten its text, and runs it in-process on
// 127.0.0.1:0; it returns the base URL.
func s003Start(t *testing.T, example string, env map[string]string, edit func(string) string) string {
	t.Helper()
	for k, v := range env {
		t.Setenv(k, v)
	}
	path := filepath.Join("../../examples", example)
	if edit != nil {
		raw, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		edited := edit(string(raw))
		if edited == string(raw) {
			t.Fatalf("edit changed nothing in %s", example)
		}
		path = filepath.Join(t.TempDir(), example)
		if err := os.WriteFile(path, []byte(edited), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	cfg, err := config.Load(path)
	if err != nil {
		t.Fatalf("load example: %v", err)
	}
	cfg.Storage.Path = t.TempDir()
	_, base := startApp(t, cfg, nil)
	return base
}

// s003Answer is an HTTP answer, read whole.
type s003Answer struct {
	status int
	header http.Header
	body   string
}

// s003Do sends a request with headers given as name, value pairs.
func s003Do(t *testing.T, method, url, body string, kv ...string) s003Answer {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	for i := 0; i+1 < len(kv); i += 2 {
		req.Header.Add(kv[i], kv[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return s003Answer{status: resp.StatusCode, header: resp.Header, body: string(b)}
}

// s003Event is an event as the admin API shows it.
type s003Event struct {
	ID         string  `json:"id"`
	ExternalID *string `json:"external_id"`
	Type       *string `json:"type"`
	Key        *string `json:"key"`
	Body       *string `json:"body"`
}

// s003Events lists the events of a source through the admin API.
func s003Events(t *testing.T, base, token, source string) []s003Event {
	t.Helper()
	a := s003Do(t, http.MethodGet, base+"/api/v1/events?source="+source, "", "Authorization", "Bearer "+token)
	if a.status != http.StatusOK {
		t.Fatalf("list events: got %d %s, want 200", a.status, a.body)
	}
	var out struct {
		Data []s003Event `json:"data"`
	}
	if err := json.Unmarshal([]byte(a.body), &out); err != nil {
		t.Fatalf("list events: %v in %s", err, a.body)
	}
	return out.Data
}

func s003Str(p *string) string {
	if p == nil {
		return "<null>"
	}
	return *p
}

// s003Sign is the sender's signature: md5 of the body followed by the key.
func s003Sign(body, key string) string {
	sum := md5.Sum([]byte(body + key))
	return hex.EncodeToString(sum[:])
}

func TestSeed003Digest(t *testing.T) {
	base := s003Start(t, "seed-003-digest.yaml", map[string]string{
		"HOOKD_ADMIN_TOKEN": s003AdminToken, "SECURITY_KEY": s003SecurityKey,
	}, nil)
	url := base + "/in/bookings"
	body := `{"id":"ntf_1","timestamp":"2024-03-01T12:00:00Z","bookingId":"bk_42","status":"CONFIRMED"}`
	sig := s003Sign(body, s003SecurityKey)

	a := s003Do(t, http.MethodPost, url, body, "X-Signature", sig)
	if a.status != http.StatusOK {
		t.Fatalf("valid digest: got %d %s, want 200", a.status, a.body)
	}
	var ok struct{ ID string }
	if err := json.Unmarshal([]byte(a.body), &ok); err != nil || ok.ID == "" {
		t.Fatalf("valid digest: answer %s, want {\"id\":…}", a.body)
	}

	// The same notification again, signature in upper-case hex: a
	// duplicate, answered 200 with the same id.
	a = s003Do(t, http.MethodPost, url, body, "X-Signature", strings.ToUpper(sig))
	if a.status != http.StatusOK || a.header.Get("Hookd-Duplicate") != "true" || !strings.Contains(a.body, ok.ID) {
		t.Fatalf("repeated notification: got %d %s (Hookd-Duplicate %q), want 200 duplicate of %s", a.status, a.body, a.header.Get("Hookd-Duplicate"), ok.ID)
	}

	tampered := strings.Replace(body, "CONFIRMED", "CANCELLED", 1)
	for _, c := range []struct {
		name string
		body string
		kv   []string
	}{
		{"TamperedBody", tampered, []string{"X-Signature", sig}},
		{"OneByteAppended", body + " ", []string{"X-Signature", sig}},
		{"WrongKey", body, []string{"X-Signature", s003Sign(body, "another-key")}},
		{"KeyFirst", body, []string{"X-Signature", s003Sign(s003SecurityKey, body)}},
		{"Truncated", body, []string{"X-Signature", sig[:30]}},
		{"Missing", body, nil},
	} {
		t.Run(c.name, func(t *testing.T) {
			a := s003Do(t, http.MethodPost, url, c.body, c.kv...)
			if a.status != http.StatusUnauthorized {
				t.Fatalf("got %d %s, want 401", a.status, a.body)
			}
			if strings.Contains(a.body, s003Sign(c.body, s003SecurityKey)) || strings.Contains(a.body, s003SecurityKey) {
				t.Fatalf("the answer %s reveals the expected signature or the key", a.body)
			}
		})
	}

	events := s003Events(t, base, s003AdminToken, "bookings")
	if len(events) != 1 {
		t.Fatalf("stored %d events, want 1 (refused requests are stored nowhere, the duplicate once)", len(events))
	}
	e := events[0]
	if e.ID != ok.ID || s003Str(e.ExternalID) != "ntf_1" || s003Str(e.Key) != "bk_42" || s003Str(e.Body) != body {
		t.Fatalf("stored event %s external_id %s key %s body %s; want %s ntf_1 bk_42 %s",
			e.ID, s003Str(e.ExternalID), s003Str(e.Key), s003Str(e.Body), ok.ID, body)
	}
	if !bytes.Equal([]byte(s003Str(e.Body)), []byte(body)) {
		t.Fatalf("stored body differs from the bytes sent")
	}
}

// TestSeed003Rotation checks that two keys listed during a rotation both verify.
func TestSeed003Rotation(t *testing.T) {
	base := s003Start(t, "seed-003-digest.yaml", map[string]string{
		"HOOKD_ADMIN_TOKEN": s003AdminToken, "SECURITY_KEY": s003SecurityKey, "S003_NEW_KEY": "seed003-new-key-77",
	}, func(s string) string {
		return strings.Replace(s, `secrets: ["${SECURITY_KEY}"]`, `secrets: ["${S003_NEW_KEY}", "${SECURITY_KEY}"]`, 1)
	})
	for i, key := range []string{s003SecurityKey, "seed003-new-key-77"} {
		body := `{"id":"ntf_r` + string(rune('0'+i)) + `","bookingId":"bk_1"}`
		if a := s003Do(t, http.MethodPost, base+"/in/bookings", body, "X-Signature", s003Sign(body, key)); a.status != http.StatusOK {
			t.Fatalf("key %d: got %d %s, want 200", i, a.status, a.body)
		}
	}
}
