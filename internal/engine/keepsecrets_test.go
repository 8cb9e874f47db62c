package engine

import (
	"encoding/json"
	"strings"
	"testing"

	"hookd/internal/config"
)

func TestRestoreRedacted(t *testing.T) {
	obj := func(s string) map[string]any {
		var m map[string]any
		if err := json.Unmarshal([]byte(s), &m); err != nil {
			t.Fatal(err)
		}
		return m
	}
	stored := `{"name": "q", "type": "amqp", "url": "amqp://hookd:pw-0123@rabbit:5672/vh",
		"auth": {"type": "basic", "username": "u", "password": "p-0123"},
		"sign": {"type": "standard_webhooks", "secrets": ["whsec_a", "whsec_b"]},
		"verify": [{"type": "hmac", "secrets": ["s1"]}, {"type": "api_key", "keys": ["k1", "k2"]}]}`
	for _, c := range []struct {
		name, next, want, err string
	}{
		{"as shown", `{"name": "q", "type": "amqp", "url": "amqp://hookd:xxxxx@rabbit:5672/vh",
			"auth": {"type": "basic", "username": "u", "password": "[redacted]"},
			"sign": {"type": "standard_webhooks", "secrets": "[redacted]"},
			"verify": [{"type": "hmac", "secrets": "[redacted]"}, {"type": "api_key", "keys": ["[redacted]", "k3"]}]}`,
			`{"auth":{"password":"p-0123","type":"basic","username":"u"},"name":"q",` +
				`"sign":{"secrets":["whsec_a","whsec_b"],"type":"standard_webhooks"},"type":"amqp","url":"amqp://hookd:pw-0123@rabbit:5672/vh",` +
				`"verify":[{"secrets":["s1"],"type":"hmac"},{"keys":["k1","k3"],"type":"api_key"}]}`, ""},
		{"changed URL and secret", `{"url": "amqp://hookd:new@rabbit:5672/vh", "auth": {"password": "p-new"}}`,
			`{"auth":{"password":"p-new"},"url":"amqp://hookd:new@rabbit:5672/vh"}`, ""},
		{"another host keeps nothing", `{"url": "amqp://hookd:xxxxx@elsewhere:5672/vh"}`,
			`{"url":"amqp://hookd:xxxxx@elsewhere:5672/vh"}`, ""},
		{"nothing stored there", `{"auth": {"type": "header", "value": "[redacted]"}}`, "", "auth.value: [redacted] stands for a stored secret"},
		{"past the stored list", `{"verify": [{}, {}, {"secrets": ["[redacted]"]}]}`, "", "verify[2].secrets[0]:"},
	} {
		next := obj(c.next)
		err := restoreRedacted(next, obj(stored))
		if c.err != "" {
			if err == nil || !strings.Contains(err.Error(), c.err) {
				t.Errorf("%s: error %v, want %q", c.name, err, c.err)
			}
			continue
		}
		got, _ := json.Marshal(next)
		if err != nil || string(got) != c.want {
			t.Errorf("%s: got %s (%v), want %s", c.name, got, err, c.want)
		}
	}
	// A new definition has nothing stored.
	if err := restoreRedacted(obj(`{"secret": "[redacted]"}`), nil); err == nil || !strings.Contains(err.Error(), "secret: ") {
		t.Errorf("create with [redacted]: %v", err)
	}
}

func TestKeptCredentialsStay(t *testing.T) {
	obj := func(s string) map[string]any {
		var m map[string]any
		if err := json.Unmarshal([]byte(s), &m); err != nil {
			t.Fatal(err)
		}
		return m
	}
	stored := obj(`{"url": "https://a.example/in", "brokers": ["k1:9092"],
		"auth": {"type": "oauth2", "token_url": "https://idp.example/token", "client_id": "c", "client_secret": "s"},
		"headers": {"X-Api-Key": "k"}, "sign": {"secret": "whsec_x"}}`)
	for _, c := range []struct{ name, next, err string }{
		{"same place", `{"url": "HTTPS://A.example/other", "brokers": ["k1:9092"], "auth": {"token_url": "https://idp.example/t2", "client_secret": "[redacted]"}}`, ""},
		{"new url, secret given", `{"url": "https://b.example/in", "brokers": ["k1:9092"], "auth": {"token_url": "https://idp.example/token", "client_secret": "s2"}}`, ""},
		{"new url, only the signing secret kept", `{"url": "https://b.example/in", "brokers": ["k1:9092"], "auth": {"token_url": "https://idp.example/token"}, "sign": {"secret": "[redacted]"}}`, ""},
		{"new url", `{"url": "https://b.example/in", "brokers": ["k1:9092"], "auth": {"token_url": "https://idp.example/token", "client_secret": "[redacted]"}}`,
			`auth.client_secret: [redacted] keeps the stored credential only while requests go where they went, and url changed from "https://a.example" to "https://b.example"`},
		{"new token url", `{"url": "https://a.example/in", "brokers": ["k1:9092"], "auth": {"token_url": "https://evil.example/token", "client_secret": "[redacted]"}}`, "auth.token_url changed"},
		{"new broker, kept header", `{"url": "https://a.example/in", "brokers": ["k2:9092"], "auth": {"token_url": "https://idp.example/token"}, "headers": {"X-Api-Key": "[redacted]"}}`, "headers.X-Api-Key: [redacted]"},
		{"nats server moved, password kept", `{"url": "nats://n2:4222", "brokers": ["k1:9092"], "auth": {"token_url": "https://idp.example/token"}, "password": "[redacted]"}`,
			`password: [redacted] keeps the stored credential only while requests go where they went, and url changed`},
		{"url dropped", `{"brokers": ["k1:9092"], "auth": {"token_url": "https://idp.example/token", "client_secret": "[redacted]"}}`, `to none`},
	} {
		err := keptCredentialsStay(obj(c.next), stored)
		if c.err == "" && err != nil || c.err != "" && (err == nil || !strings.Contains(err.Error(), c.err)) {
			t.Errorf("%s: error %v, want %q", c.name, err, c.err)
		}
	}
	if err := keptCredentialsStay(obj(`{"url": "https://b.example", "auth": {"value": "[redacted]"}}`), nil); err != nil {
		t.Errorf("nothing stored: %v", err)
	}
}

// A URL's credentials in its query are redacted like its password, and a
// URL sent back as shown keeps the stored one.
func TestRedactedURLQuery(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{"https://chat.example/v1/spaces/A/messages?key=k-123&token=t-456&thread=x", "https://chat.example/v1/spaces/A/messages?key=xxxxx&token=xxxxx&thread=x"},
		{"https://logic.example/workflows/1/run?api-version=2016&sp=%2Frun&sv=1.0&sig=s-789", "https://logic.example/workflows/1/run?api-version=2016&sp=%2Frun&sv=1.0&sig=xxxxx"},
		{"https://fn.example/api/hook?code=c-1", "https://fn.example/api/hook?code=xxxxx"},
		{"amqp://hookd:pw@rabbit:5672/vh", "amqp://hookd:xxxxx@rabbit:5672/vh"},
		{"https://plain.example/in?x=1&id=2", "https://plain.example/in?x=1&id=2"},
		{"not a url %zz", "not a url %zz"},
		// An enrich template: the path's placeholders stay as written.
		{"https://api.example/claims/{{body.ref}}?token=t-1&v={{type}}", "https://api.example/claims/{{body.ref}}?token=xxxxx&v={{type}}"},
		{"https://api.example/c?key=k#frag", "https://api.example/c?key=xxxxx#frag"},
	} {
		if got := redactedURL(c.in); got != c.want {
			t.Errorf("redactedURL(%q) = %q, want %q", c.in, got, c.want)
		}
		shown := redactSpec(map[string]any{"url": c.in}).(map[string]any)["url"]
		if shown != c.want {
			t.Errorf("redactSpec shows %q as %v, want %q", c.in, shown, c.want)
		}
		next := map[string]any{"url": c.want}
		if err := restoreRedacted(next, map[string]any{"url": c.in}); err != nil || next["url"] != c.in {
			t.Errorf("%q sent back as shown: %v (%v), want the stored URL", c.in, next["url"], err)
		}
	}
}

// A subscription's enrich section keeps its stored auth secrets sent back
// as "[redacted]" by the rules of a destination's: only while enrich.url
// and enrich.auth.token_url keep their scheme and host.
func TestKeepEnrichSecrets(t *testing.T) {
	obj := func(s string) map[string]any {
		var m map[string]any
		if err := json.Unmarshal([]byte(s), &m); err != nil {
			t.Fatal(err)
		}
		return m
	}
	prev := &config.Enrich{URL: "https://api.example/claims/{{body.ref}}", Into: "claim",
		Auth: map[string]any{"type": "oauth2", "token_url": "https://idp.example/token", "client_id": "c", "client_secret": "cs-0123"}}
	for _, c := range []struct {
		name, next, want, err string
		prev                  *config.Enrich
	}{
		{"as shown", `{"destination": "d", "enrich": {"url": "https://api.example/claims/{{body.ref}}", "into": "claim",
			"auth": {"type": "oauth2", "token_url": "https://idp.example/token", "client_id": "c", "client_secret": "[redacted]"}}}`,
			`"client_secret":"cs-0123"`, "", prev},
		{"another path", `{"enrich": {"url": "HTTPS://API.example/v2/{{id}}", "auth": {"token_url": "https://idp.example/t2", "client_secret": "[redacted]"}}}`,
			`"client_secret":"cs-0123"`, "", prev},
		{"another host, secret given", `{"enrich": {"url": "https://b.example/{{id}}", "auth": {"token_url": "https://idp.example/token", "client_secret": "new"}}}`,
			`"client_secret":"new"`, "", prev},
		{"another host", `{"enrich": {"url": "https://b.example/{{id}}", "auth": {"token_url": "https://idp.example/token", "client_secret": "[redacted]"}}}`,
			"", `enrich.auth.client_secret: [redacted] keeps the stored credential only while requests go where they went, and enrich.url changed from "https://api.example" to "https://b.example"`, prev},
		{"another token url", `{"enrich": {"url": "https://api.example/{{id}}", "auth": {"token_url": "http://idp.example/token", "client_secret": "[redacted]"}}}`,
			"", "enrich.auth.token_url changed", prev},
		{"a key the stored auth lacks", `{"enrich": {"url": "https://api.example/{{id}}", "auth": {"type": "basic", "token_url": "https://idp.example/token", "username": "u", "password": "[redacted]"}}}`,
			"", "enrich.auth.password: [redacted] stands for a stored secret and none is stored here", prev},
		{"a new subscription", `{"enrich": {"url": "https://api.example/{{id}}", "auth": {"type": "header", "header": "X-Api-Key", "value": "[redacted]"}}}`,
			"", "enrich.auth.value: [redacted] stands for a stored secret", nil},
		{"no enrich", `{"destination": "d", "filter": {"path": "x", "op": "eq", "value": "[redacted]"}}`, `"value":"[redacted]"`, "", prev},
	} {
		next := obj(c.next)
		err := keepEnrichSecrets(next, c.prev)
		if c.err != "" {
			if err == nil || !strings.Contains(err.Error(), c.err) {
				t.Errorf("%s: error %v, want %q", c.name, err, c.err)
			}
			continue
		}
		got, _ := json.Marshal(next)
		if err != nil || !strings.Contains(string(got), c.want) {
			t.Errorf("%s: got %s (%v), want it to hold %s", c.name, got, err, c.want)
		}
	}
	if prev.Auth["client_secret"] != "cs-0123" {
		t.Errorf("the running definition changed: %v", prev.Auth)
	}
}
