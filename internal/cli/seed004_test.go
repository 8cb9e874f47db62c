package cli

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
)

// Seed 004 plays a collections platform whose webhooks carry "signature"
// (hex HMAC-SHA256 of "payloadAsString") inside the JSON body, against
// examples/seed-004-body-signature.yaml.

const (
	s004AdminToken = "seed004-admin-token-0123456789"
	s004Secret     = "seed004-receeve-secret-9d8e7f"
)

// s004Payload is the payload of the seed's example webhook.
const s004Payload = `{"details":{"messageType":"event.claim.created.v1","accountReference":"PDN-922-Oct14-0001","claimRef":"PDN-922-claim-Oct14-00010","receeveClaimRef":"PDN-922-claim-Oct14-00010","amount":501,"currency":"EUR","dueDate":"2021-10-07"},"messageId":"09feeb6f-350a-430a-a040-cd1c558cbc91","timestamp":"2021-10-14T15:33:16.848Z","user":{"id":"USER_ID","poolId":"POOL_ID","originator":"ClientAPI"}}`

func s004Sign(payloadAsString, secret string) string {
	m := hmac.New(sha256.New, []byte(secret))
	m.Write([]byte(payloadAsString))
	return hex.EncodeToString(m.Sum(nil))
}

// s004Body builds a webhook the way the seed shows it: payload, signature,
// payloadAsString, pretty-printed as in the example.
func s004Body(t *testing.T, payload, signature, payloadAsString string) string {
	t.Helper()
	b, err := json.MarshalIndent(struct {
		Payload         json.RawMessage `json:"payload"`
		Signature       string          `json:"signature"`
		PayloadAsString string          `json:"payloadAsString"`
	}{json.RawMessage(payload), signature, payloadAsString}, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func s004Env() map[string]string {
	return map[string]string{"HOOKD_ADMIN_TOKEN": s004AdminToken, "RECEEVE_SECRET": s004Secret}
}

func TestSeed004BodySignature(t *testing.T) {
	base := s003Start(t, "seed-004-body-signature.yaml", s004Env(), nil)
	url := base + "/in/collections"
	valid := s004Body(t, s004Payload, s004Sign(s004Payload, s004Secret), s004Payload)

	a := s003Do(t, http.MethodPost, url, valid)
	if a.status != http.StatusOK {
		t.Fatalf("valid webhook: got %d %s, want 200", a.status, a.body)
	}
	var ok struct{ ID string }
	if err := json.Unmarshal([]byte(a.body), &ok); err != nil || ok.ID == "" {
		t.Fatalf("valid webhook: answer %s, want {\"id\":…}", a.body)
	}

	tamperedString := strings.Replace(s004Payload, `"amount":501`, `"amount":1`, 1)
	for _, c := range []struct {
		name string
		body string
	}{
		{"TamperedPayloadAsString", s004Body(t, s004Payload, s004Sign(s004Payload, s004Secret), tamperedString)},
		{"ReserializedPayloadAsString", s004Body(t, s004Payload, s004Sign(s004Payload, s004Secret), strings.ReplaceAll(s004Payload, ",", ", "))},
		{"WrongSecret", s004Body(t, s004Payload, s004Sign(s004Payload, "another-secret"), s004Payload)},
		{"SignatureMissing", strings.Replace(valid, `"signature"`, `"signatureX"`, 1)},
		{"PayloadAsStringMissing", strings.Replace(valid, `"payloadAsString"`, `"payload_as_string"`, 1)},
		{"NotJSON", "payload=" + s004Payload + "&signature=" + s004Sign(s004Payload, s004Secret)},
		{"TruncatedJSON", valid[:len(valid)-2]},
		{"Empty", ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			a := s003Do(t, http.MethodPost, url, c.body)
			if a.status != http.StatusUnauthorized {
				t.Fatalf("got %d %s, want 401", a.status, a.body)
			}
			if strings.Contains(a.body, s004Sign(s004Payload, s004Secret)) || strings.Contains(a.body, s004Secret) {
				t.Fatalf("the answer %s reveals the expected signature or the secret", a.body)
			}
		})
	}

	events := s003Events(t, base, s004AdminToken, "collections")
	if len(events) != 1 {
		t.Fatalf("stored %d events, want 1", len(events))
	}
	e := events[0]
	if e.ID != ok.ID || s003Str(e.Type) != "event.claim.created.v1" || s003Str(e.ExternalID) != "09feeb6f-350a-430a-a040-cd1c558cbc91" ||
		s003Str(e.Key) != "PDN-922-claim-Oct14-00010" || s003Str(e.Body) != valid {
		t.Fatalf("stored %s type %s external_id %s key %s; want %s event.claim.created.v1 09feeb6f-350a-430a-a040-cd1c558cbc91 PDN-922-claim-Oct14-00010 and the body as sent",
			e.ID, s003Str(e.Type), s003Str(e.ExternalID), s003Str(e.Key), ok.ID)
	}
}

// TestSeed004Covers: the example sets covers: json:payload, so a payload
// that differs from the signed payloadAsString is refused too.
func TestSeed004Covers(t *testing.T) {
	base := s003Start(t, "seed-004-body-signature.yaml", s004Env(), nil)
	url := base + "/in/collections"
	sig := s004Sign(s004Payload, s004Secret)
	otherID := strings.Replace(s004Payload, "09feeb6f", "ffffffff", 1)
	for _, c := range []struct {
		name   string
		body   string
		status int
	}{
		{"Valid", s004Body(t, s004Payload, sig, s004Payload), http.StatusOK},
		{"PayloadReindented", s004Body(t, strings.ReplaceAll(s004Payload, ",", ",\n  "), sig, s004Payload), http.StatusOK},
		{"PayloadOtherMessageID", s004Body(t, otherID, sig, s004Payload), http.StatusUnauthorized},
	} {
		if a := s003Do(t, http.MethodPost, url, c.body); a.status != c.status {
			t.Fatalf("%s: got %d %s, want %d", c.name, a.status, a.body, c.status)
		}
	}
	if n := len(s003Events(t, base, s004AdminToken, "collections")); n != 1 {
		t.Fatalf("stored %d events, want 1 (the re-indented payload is a duplicate)", n)
	}
}
