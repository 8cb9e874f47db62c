package ingest_test

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	paddle "github.com/PaddleHQ/paddle-go-sdk/v4"
	"github.com/mailgun/mailgun-go/v4"
	"github.com/sendgrid/sendgrid-go/helpers/eventwebhook"
	twilio "github.com/twilio/twilio-go/client"
)

// Vectors marked "computed" were computed with Python's hmac module from
// the provider's documented algorithm, independently of hookd: the
// provider publishes no example with its secret. Their bodies follow the
// provider's documented payloads.

func TestProviderGitLab(t *testing.T) {
	t.Parallel()
	body := `{"object_kind":"push","event_name":"push","ref":"refs/heads/main","project_id":15}`
	runProviderCase(t, providerCase{
		preset: "gitlab",
		vector: "documentation: GitLab, Webhooks, \"Validate requests with a secret token\" and \"Delivery headers\" (X-Gitlab-Token carries the token as written); request built per it",
		verify: "- type: gitlab\n  secrets: [gl-secret-token-0123456789]",
		header: map[string]string{
			"X-Gitlab-Token":      "gl-secret-token-0123456789",
			"X-Gitlab-Event":      "Push Hook",
			"X-Gitlab-Event-UUID": "13792a34-cac6-4fda-95a8-c58e00a3954e",
			"Content-Type":        "application/json",
		},
		body:     body,
		wantID:   "13792a34-cac6-4fda-95a8-c58e00a3954e",
		wantType: "Push Hook",
		bad: []providerVariant{
			{name: "token changed", header: map[string]string{"X-Gitlab-Token": "gl-secret-token-0123456788"}},
			{name: "token missing", header: map[string]string{"X-Gitlab-Token": ""}},
			wrongSecret("- type: gitlab\n  secrets: [another-token-0123456789]"),
		},
	})
}

func TestProviderBitbucket(t *testing.T) {
	t.Parallel()
	body := `{"push":{"changes":[]},"repository":{"full_name":"team/repo","type":"repository"}}`
	runProviderCase(t, providerCase{
		preset: "bitbucket",
		vector: "computed: Bitbucket Cloud, Manage webhooks, \"Secure webhooks\" (X-Hub-Signature: sha256= + hex HMAC-SHA256 of the body)",
		verify: "- type: bitbucket\n  secrets: [bitbucket-webhook-secret-0123]",
		header: map[string]string{
			"X-Hub-Signature": "sha256=f677fbb8604cd74486c0179ad0a22de0db7c6a8a99fa06ae0ed1e43220e21d99",
			"X-Event-Key":     "repo:push",
			"X-Request-UUID":  "afbd5b11-f3a5-4bd2-8d74-4be5e9c1b0c2",
		},
		body:     body,
		wantID:   "afbd5b11-f3a5-4bd2-8d74-4be5e9c1b0c2",
		wantType: "repo:push",
		bad: []providerVariant{
			changedBody(body),
			{name: "signature missing", header: map[string]string{"X-Hub-Signature": ""}},
			wrongSecret("- type: bitbucket\n  secrets: [bitbucket-webhook-secret-0124]"),
		},
	})
}

func TestProviderGitea(t *testing.T) {
	t.Parallel()
	body := `{"ref":"refs/heads/main","before":"28e1879d029cb852e4844d9c718537df08844e03","after":"bffeb74224043ba2feb48d137756c8a9331c449a"}`
	runProviderCase(t, providerCase{
		preset: "gitea",
		vector: "computed: Gitea documentation, Webhooks (X-Gitea-Signature: hex HMAC-SHA256 of the body)",
		verify: "- type: gitea\n  secrets: [gitea-webhook-secret-0123]",
		header: map[string]string{
			"X-Gitea-Signature": "dab1371a0e6d540e7004381b9bb893cd138d7643e96a2f5cd61391953ea883ec",
			"X-Gitea-Delivery":  "f6266f16-1bf3-46a5-9ea4-602e06ead473",
			"X-Gitea-Event":     "push",
		},
		body:     body,
		wantID:   "f6266f16-1bf3-46a5-9ea4-602e06ead473",
		wantType: "push",
		bad: []providerVariant{
			changedBody(body),
			wrongSecret("- type: gitea\n  secrets: [gitea-webhook-secret-0124]"),
		},
	})
}

// twilioParams are the form parameters of twilio-go's request validator
// tests (client/request_validator_test.go, v1.31.0).
var twilioParams = map[string]string{
	"Digits": "1234", "CallSid": "CA1234567890ABCDE", "To": "+18005551212",
	"Caller": "+14158675309", "From": "+14158675309", "ReasonConferenceEnded": "test", "Reason": "Participant",
}

func TestProviderTwilio(t *testing.T) {
	t.Parallel()
	const (
		signedURL = "https://mycompany.com/myapp.php?foo=1&bar=2"
		sig       = "vOEb5UThFn24KEfnOFLQY2AE5FY="
	)
	form := url.Values{}
	for k, v := range twilioParams {
		form.Set(k, v)
	}
	body := form.Encode()
	// The vector is Twilio's: its SDK accepts this very request.
	rv := twilio.NewRequestValidator("12345")
	if !rv.ValidateBody(signedURL, []byte(body), sig) {
		t.Fatal("twilio-go refuses the vector")
	}
	verify := "- type: twilio\n  secrets: [\"12345\"]\n  url: https://mycompany.com/myapp.php"
	changed := strings.Replace(body, "Digits=1234", "Digits=1235", 1)
	runProviderCase(t, providerCase{
		preset: "twilio",
		vector: "SDK: github.com/twilio/twilio-go v1.31.0, client.RequestValidator.ValidateBody, with the URL, form parameters and signature of its request_validator_test.go",
		verify: verify,
		target: "/in/p?foo=1&bar=2",
		header: map[string]string{
			"X-Twilio-Signature":         sig,
			"Content-Type":               "application/x-www-form-urlencoded",
			"I-Twilio-Idempotency-Token": "d3c9f6b2-5b1e-4f4a-9a57-31a1b6f0e001",
		},
		body:   body,
		wantID: "d3c9f6b2-5b1e-4f4a-9a57-31a1b6f0e001",
		bad: []providerVariant{
			{name: "parameter changed", body: &changed},
			{name: "query changed", target: "/in/p?foo=1&bar=3"},
			{name: "query dropped", target: "/in/p"},
			wrongSecret("- type: twilio\n  secrets: [\"12346\"]\n  url: https://mycompany.com/myapp.php"),
			wrongSecret("- type: twilio\n  secrets: [\"12345\"]\n  url: https://mycompany.com/other.php"),
		},
	})
}

func TestProviderTwilioJSONBody(t *testing.T) {
	t.Parallel()
	const (
		body     = `{"property": "value", "boolean": true}`
		bodyHash = "0a1ff7634d9ab3b95db5c9a2dfe9416e41502b283a80c7cf19632632f96e6620"
		sig      = "a9nBmqA0ju/hNViExpshrM61xv4="
	)
	rv := twilio.NewRequestValidator("12345")
	if !rv.ValidateBody("https://mycompany.com/myapp.php?foo=1&bar=2&bodySHA256="+bodyHash, []byte(body), sig) {
		t.Fatal("twilio-go refuses the vector")
	}
	runProviderCase(t, providerCase{
		preset: "twilio",
		vector: "SDK: github.com/twilio/twilio-go v1.31.0, client.RequestValidator.ValidateBody, the JSON body (bodySHA256) case of its request_validator_test.go",
		verify: "- type: twilio\n  secrets: [\"12345\"]\n  url: https://mycompany.com/myapp.php",
		target: "/in/p?foo=1&bar=2&bodySHA256=" + bodyHash,
		header: map[string]string{
			"X-Twilio-Signature":         sig,
			"Content-Type":               "application/json",
			"I-Twilio-Idempotency-Token": "d3c9f6b2-5b1e-4f4a-9a57-31a1b6f0e002",
		},
		body:   body,
		wantID: "d3c9f6b2-5b1e-4f4a-9a57-31a1b6f0e002",
		bad: []providerVariant{
			changedBody(body),
			{name: "hash dropped", target: "/in/p?foo=1&bar=2"},
			wrongSecret("- type: twilio\n  secrets: [\"12346\"]\n  url: https://mycompany.com/myapp.php"),
		},
	})
}

// sendgridBody is the payload of sendgrid-go's eventwebhook tests
// (helpers/eventwebhook/eventwebhook_test.go, generateTestPayload): the
// JSON encoding of one event, with a CRLF at its end.
const sendgridBody = `[{"email":"hello@world.com","event":"dropped","reason":"Bounced Address","sg_event_id":"ZHJvcC0xMDk5NDkxOS1MUnpYbF9OSFN0T0doUTRrb2ZTbV9BLTA","sg_message_id":"LRzXl_NHStOGhQ4kofSm_A.filterdrecv-p3mdw1-756b745b58-kmzbl-18-5F5FC76C-9.0","smtp-id":"<LRzXl_NHStOGhQ4kofSm_A@ismtpd0039p1iad1.sendgrid.net>","timestamp":1600112492}]` + "\r\n"

func TestProviderSendGrid(t *testing.T) {
	t.Parallel()
	const (
		key = "MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAE83T4O/n84iotIvIW4mdBgQ/7dAfSmpqIM8kF9mN1flpVKS3GRqe62gw+2fNNRaINXvVpiglSI8eNEc6wEA3F+g=="
		sig = "MEUCIGHQVtGj+Y3LkG9fLcxf3qfI10QysgDWmMOVmxG0u6ZUAiEAyBiXDWzM+uOe5W0JuG+luQAbPIqHh89M15TluLtEZtM="
		ts  = "1600112502"
	)
	pk, err := eventwebhook.ConvertPublicKeyBase64ToECDSA(key)
	if err != nil {
		t.Fatal(err)
	}
	if ok, err := eventwebhook.VerifySignature(pk, []byte(sendgridBody), sig, ts); !ok || err != nil {
		t.Fatalf("sendgrid-go refuses the vector: %v", err)
	}
	other, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.MarshalPKIXPublicKey(&other.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	runProviderCase(t, providerCase{
		preset: "sendgrid",
		vector: "SDK: github.com/sendgrid/sendgrid-go v3.16.1, helpers/eventwebhook.VerifySignature, with the key, payload, signature and timestamp of its eventwebhook_test.go",
		verify: "- type: sendgrid\n  public_keys: [\"" + key + "\"]",
		now:    time.Unix(1600112502, 0),
		header: map[string]string{
			"X-Twilio-Email-Event-Webhook-Signature": sig,
			"X-Twilio-Email-Event-Webhook-Timestamp": ts,
			"Content-Type":                           "application/json",
		},
		body:     sendgridBody,
		wantTime: time.Unix(1600112492, 0),
		bad: []providerVariant{
			changedBody(sendgridBody),
			{name: "timestamp changed", header: map[string]string{"X-Twilio-Email-Event-Webhook-Timestamp": "1600112503"}},
			wrongSecret("- type: sendgrid\n  public_keys: [\"" + base64.StdEncoding.EncodeToString(der) + "\"]"),
		},
	})
}

func TestProviderMailgun(t *testing.T) {
	t.Parallel()
	const (
		key   = "mailgun-signing-key-0123456789"
		token = "f3b1a8c6e2d94b0f8a7c5e3d1b9f7a5c3e1d9b7f5a3c1e9d7b"
		sig   = "9c2aad168433a88144ccd198825e1952b25236534b34cd7755452f6dcec8ac58"
	)
	body := `{"signature":{"timestamp":"1700000000","token":"` + token + `","signature":"` + sig + `"},` +
		`"event-data":{"event":"delivered","id":"CPgfbmQMTCKtHW6uIWtuVe","timestamp":1699999998.5,"recipient":"alice@example.com"}}`
	// mailgun-go accepts the signature of this body.
	var p mailgun.WebhookPayload
	if err := json.Unmarshal([]byte(body), &p); err != nil {
		t.Fatal(err)
	}
	mg := mailgun.NewMailgun("example.com", "api-key")
	mg.SetWebhookSigningKey(key)
	if ok, err := mg.VerifyWebhookSignature(p.Signature); !ok || err != nil {
		t.Fatalf("mailgun-go refuses the vector: %v", err)
	}
	badToken := strings.Replace(body, token, "0"+token[1:], 1)
	runProviderCase(t, providerCase{
		preset: "mailgun",
		vector: "computed: Mailgun, Securing webhooks (hex HMAC-SHA256 of timestamp + token); accepted by github.com/mailgun/mailgun-go/v4 v4.23.0 MailgunImpl.VerifyWebhookSignature",
		verify: "- type: mailgun\n  secrets: [" + key + "]",
		now:    time.Unix(1700000010, 0),
		header: map[string]string{"Content-Type": "application/json"},
		body:   body,
		wantID: token, wantType: "delivered",
		wantTime: time.Unix(1699999998, 500_000_000),
		bad: []providerVariant{
			{name: "token changed", body: &badToken},
			{name: "timestamp changed", body: ptr(strings.Replace(body, `"1700000000"`, `"1700000001"`, 1))},
			{name: "signature missing", body: ptr(strings.Replace(body, `"signature":"`+sig+`"`, `"x":""`, 1))},
			wrongSecret("- type: mailgun\n  secrets: [mailgun-signing-key-0123456788]"),
		},
	})
	// An hour later the same request is refused.
	h := providerHarness(t, "- type: mailgun\n  secrets: ["+key+"]", time.Unix(1700000000, 0).Add(time.Hour))
	if a := send(t, h.srv, http.MethodPost, "/in/p", strings.NewReader(body), nil); a.status != http.StatusUnauthorized {
		t.Fatalf("an hour later: got %d %s, want 401", a.status, a.body)
	}
}

func ptr(s string) *string { return &s }

func TestProviderPostmark(t *testing.T) {
	t.Parallel()
	body := `{"MessageID":"883953f4-6105-42a2-a16a-77a8eac79483","Recipient":"john@example.com","DeliveredAt":"2019-11-05T16:33:54.9070259Z","Details":"Test delivery webhook details","Tag":"welcome-email","ServerID":23,"Metadata":{"a_key":"a_value"},"RecordType":"Delivery","MessageStream":"outbound"}`
	basic := func(u, p string) string { return "Basic " + base64.StdEncoding.EncodeToString([]byte(u+":"+p)) }
	runProviderCase(t, providerCase{
		preset: "postmark",
		vector: "documentation: Postmark, Webhooks overview, \"Protecting your webhook\" (basic auth credentials in the webhook URL) and the Delivery webhook example payload; request built per it",
		verify: "- type: postmark\n  users: [{username: postmark, password: pm-hook-password-0123}]",
		header: map[string]string{"Authorization": basic("postmark", "pm-hook-password-0123"), "Content-Type": "application/json"},
		body:   body,
		// Postmark sends no event id: MessageID names the email, which
		// its Delivery, Open, Click and Bounce events share.
		wantID: "", wantType: "Delivery",
		bad: []providerVariant{
			{name: "password changed", header: map[string]string{"Authorization": basic("postmark", "pm-hook-password-0124")}},
			{name: "no credentials", header: map[string]string{"Authorization": ""}},
			wrongSecret("- type: postmark\n  users: [{username: postmark, password: other-password-0123}]"),
		},
	})

	// The Delivery and then the Open event of one email are two events:
	// neither is taken for a duplicate of the other.
	h := providerHarness(t, "- type: postmark\n  users: [{username: postmark, password: pm-hook-password-0123}]", time.Time{})
	hdr := providerHeader(map[string]string{"Authorization": basic("postmark", "pm-hook-password-0123"), "Content-Type": "application/json"}, nil)
	open := `{"RecordType":"Open","MessageStream":"outbound","FirstOpen":true,"MessageID":"883953f4-6105-42a2-a16a-77a8eac79483","ReceivedAt":"2019-11-05T16:35:12Z","Recipient":"john@example.com"}`
	first := wantOK(t, send(t, h.srv, http.MethodPost, "/in/p", strings.NewReader(body), hdr), http.StatusOK)
	second := wantOK(t, send(t, h.srv, http.MethodPost, "/in/p", strings.NewReader(open), hdr), http.StatusOK)
	if first.ID == second.ID {
		t.Errorf("Open after Delivery of one email: got the Delivery's event %s again, want a new event", first.ID)
	}
	if evs := h.events(t); len(evs) != 2 {
		t.Errorf("stored events: got %d, want 2 (Delivery and Open)", len(evs))
	}
}

func TestProviderSquare(t *testing.T) {
	t.Parallel()
	body := `{"merchant_id":"MLEFBHHSJGVHD","type":"webhooks.test_notification","event_id":"ac3ac95b-f97d-458c-a6e6-18981597e05f","created_at":"2022-07-13T20:30:59.037339943Z","data":{"type":"webhooks","id":"bc368e64-01aa-407e-b46e-3231809b1129"}}`
	verify := "- type: square\n  secrets: [Ibxx_5AKakO-3qeNVR61Dw]\n  url: https://webhook.site/679a4f3a-dcfa-49ee-bac5-9d0edad886b9"
	runProviderCase(t, providerCase{
		preset: "square",
		vector: "SDK tests: Square's SDKs' webhook signature tests (square-go-sdk client TestWebhookSignatureValidation, WebhooksHelper in the Node, Python, Java, PHP and Ruby SDKs): body, key, notification URL and signature",
		verify: verify,
		header: map[string]string{
			"X-Square-Hmacsha256-Signature": "GF4YkrJgGBDZ9NIYbNXBnMzqb2HoL4RW/S6vkZ9/2N4=",
			"Content-Type":                  "application/json",
		},
		body:     body,
		wantID:   "ac3ac95b-f97d-458c-a6e6-18981597e05f",
		wantType: "webhooks.test_notification",
		wantTime: time.Date(2022, 7, 13, 20, 30, 59, 37339000, time.UTC),
		bad: []providerVariant{
			changedBody(body),
			wrongSecret("- type: square\n  secrets: [Ibxx_5AKakO-3qeNVR61Dx]\n  url: https://webhook.site/679a4f3a-dcfa-49ee-bac5-9d0edad886b9"),
			wrongSecret("- type: square\n  secrets: [Ibxx_5AKakO-3qeNVR61Dw]\n  url: https://webhook.site/other"),
		},
	})
}

func TestProviderPaddle(t *testing.T) {
	t.Parallel()
	const (
		sig    = "ts=1710929255;h1=6c05ef8fa83c44d751be6d259ec955ce5638e2c54095bf128e408e2fce1589c8"
		secret = "pdl_ntfset_01hsdn8d43dt7mezr1ef2jtbaw_hKkRiCGyyRhbFwIUuqiTBgI7gnWoV0Gr"
		body   = `{"data":{"id":"pri_01hsdn96k2hxjzsq5yerecdj9j","name":null,"status":"active","quantity":{"maximum":999999,"minimum":1},"tax_mode":"account_setting","product_id":"pro_01hsdn8qp7yydry3x1yeg6a9rv","unit_price":{"amount":"1000","currency_code":"USD"},"custom_data":null,"description":"testing","import_meta":null,"trial_period":null,"billing_cycle":{"interval":"month","frequency":1},"unit_price_overrides":[]},"event_id":"evt_01hsdn97563968dy0szkmgjwh3","event_type":"price.created","occurred_at":"2024-03-20T10:07:35.590857Z","notification_id":"ntf_01hsdn977e920kbgzt6r6c9rqc"}`
	)
	req, err := http.NewRequest(http.MethodPost, "https://example.com/", bytes.NewReader([]byte(body)))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Paddle-Signature", sig)
	if ok, err := paddle.NewWebhookVerifier(secret).Verify(req); !ok || err != nil {
		t.Fatalf("paddle-go-sdk refuses the vector: %v", err)
	}
	runProviderCase(t, providerCase{
		preset: "paddle",
		vector: "SDK: github.com/PaddleHQ/paddle-go-sdk/v4 v4.1.0, WebhookVerifier.Verify, with the payload, secret and signature of its example_webhook_verifier_test.go",
		verify: "- type: paddle\n  secrets: [" + secret + "]",
		now:    time.Unix(1710929255, 0),
		header: map[string]string{"Paddle-Signature": sig, "Content-Type": "application/json"},
		body:   body,
		wantID: "evt_01hsdn97563968dy0szkmgjwh3", wantType: "price.created",
		wantTime: time.Date(2024, 3, 20, 10, 7, 35, 590857000, time.UTC),
		bad: []providerVariant{
			changedBody(body),
			{name: "ts changed", header: map[string]string{"Paddle-Signature": strings.Replace(sig, "ts=1710929255", "ts=1710929256", 1)}},
			wrongSecret("- type: paddle\n  secrets: [" + secret + "x]"),
		},
	})
}

// adyenItem is Adyen's published HMAC example: the notification item and
// key of its API libraries' HMAC validator tests (adyen-ruby-api-library
// Adyen::Utils::HmacValidator spec; the same values in the Node, Java and
// Go libraries), whose signing string is
// "7914073381342284::TestMerchant:TestPayment-1407325143704:1130:EUR:AUTHORISATION:true".
const adyenItem = `{"NotificationRequestItem":{"additionalData":{"hmacSignature":"coqCmt/IZ4E3CzPvMY8zTjQVL5hYJUiBRg8UU+iCWo0="},"amount":{"value":1130,"currency":"EUR"},"pspReference":"7914073381342284","eventCode":"AUTHORISATION","eventDate":"2019-05-06T17:15:34.121+02:00","merchantAccountCode":"TestMerchant","operations":["CANCEL","CAPTURE","REFUND"],"merchantReference":"TestPayment-1407325143704","paymentMethod":"visa","success":"true"}}`

func TestProviderAdyen(t *testing.T) {
	t.Parallel()
	body := `{"live":"false","notificationItems":[` + adyenItem + `]}`
	forged := strings.NewReplacer("7914073381342284", "7914073381342285", "1130", "113000").Replace(adyenItem)
	twoItems := `{"live":"false","notificationItems":[` + adyenItem + `,` + forged + `]}`
	amount := strings.Replace(body, `"value":1130`, `"value":1131`, 1)
	runProviderCase(t, providerCase{
		preset:   "adyen",
		vector:   "SDK tests: Adyen's API libraries' HMAC validator example (adyen-ruby-api-library HmacValidator spec; Adyen docs, Verify HMAC signatures): key 44782DEF…A056, signature coqCmt/IZ4E3…",
		verify:   "- type: adyen\n  secrets: [44782DEF547AAA06C910C43932B1EB0C71FC68D9D0C057550C48EC2ACF6BA056]",
		header:   map[string]string{"Content-Type": "application/json"},
		body:     body,
		wantType: "AUTHORISATION",
		wantTime: time.Date(2019, 5, 6, 15, 15, 34, 121000000, time.UTC),
		bad: []providerVariant{
			{name: "amount changed", body: &amount},
			{name: "a second, forged item", body: &twoItems},
			{name: "no items", body: ptr(`{"live":"false","notificationItems":[]}`)},
			wrongSecret("- type: adyen\n  secrets: [44782DEF547AAA06C910C43932B1EB0C71FC68D9D0C057550C48EC2ACF6BA057]"),
		},
	})
}

func TestProviderLinear(t *testing.T) {
	t.Parallel()
	body := `{"action":"create","type":"Issue","createdAt":"2024-05-01T10:00:00.000Z","data":{"id":"2174add1-f7c8-44e3-bbf3-2d60b5ea8bc9","title":"Hook"},"url":"https://linear.app/team/issue/ENG-1","webhookTimestamp":1714557600123,"webhookId":"000042e3-d123-4980-b49f-8e140eef9329"}`
	verify := "- type: linear\n  secrets: [lin_wh_secret_0123456789]"
	runProviderCase(t, providerCase{
		preset: "linear",
		vector: "computed: Linear developers, Webhooks, \"Securing webhooks\" (Linear-Signature: hex HMAC-SHA256 of the body; webhookTimestamp within a minute)",
		verify: verify,
		now:    time.UnixMilli(1714557600123).Add(30 * time.Second),
		header: map[string]string{
			"Linear-Signature": "d0b80d19b82e596d012a248478ad08dace4a8a8b2447084aac2a5f82bde7f2a3",
			"Linear-Delivery":  "3f2ad0c8-6a2f-4d8e-9e0b-5b0f1c2d3e4f",
			"Linear-Event":     "Issue",
			"Content-Type":     "application/json",
		},
		body:   body,
		wantID: "3f2ad0c8-6a2f-4d8e-9e0b-5b0f1c2d3e4f", wantType: "Issue",
		wantTime: time.Date(2024, 5, 1, 10, 0, 0, 0, time.UTC),
		bad: []providerVariant{
			changedBody(body),
			wrongSecret("- type: linear\n  secrets: [lin_wh_secret_0123456788]"),
		},
	})
	// Two minutes after webhookTimestamp, past the default minute.
	h := providerHarness(t, verify, time.UnixMilli(1714557600123).Add(2*time.Minute))
	a := send(t, h.srv, http.MethodPost, "/in/p", strings.NewReader(body), providerHeader(map[string]string{
		"Linear-Signature": "d0b80d19b82e596d012a248478ad08dace4a8a8b2447084aac2a5f82bde7f2a3"}, nil))
	if a.status != http.StatusUnauthorized {
		t.Fatalf("two minutes late: got %d %s, want 401", a.status, a.body)
	}
}

func TestProviderIntercom(t *testing.T) {
	t.Parallel()
	body := `{"type":"notification_event","app_id":"a86dr8yl","data":{"type":"notification_event_data","item":{"type":"ping","message":"something something interzen"}},"id":"notif_ccd8a4d0-f965-11e3-a367-c779cae3e1b3","topic":"ping","created_at":1392731331}`
	runProviderCase(t, providerCase{
		preset: "intercom",
		vector: "computed: Intercom developers, Webhooks, \"Signed notifications\" (X-Hub-Signature: sha1= + hex HMAC-SHA1 of the body with the client secret); body: the documented ping notification",
		verify: "- type: intercom\n  secrets: [intercom-client-secret-0123]",
		header: map[string]string{
			"X-Hub-Signature": "sha1=a3e0a6e099d7454a7f24432b589d6b185011adf7",
			"Content-Type":    "application/json",
		},
		body:   body,
		wantID: "notif_ccd8a4d0-f965-11e3-a367-c779cae3e1b3", wantType: "ping",
		wantTime: time.Unix(1392731331, 0),
		bad: []providerVariant{
			changedBody(body),
			wrongSecret("- type: intercom\n  secrets: [intercom-client-secret-0124]"),
		},
	})
}

func TestProviderZendesk(t *testing.T) {
	t.Parallel()
	body := `{"account_id":12514403,"detail":{"id":"7165219040"},"event":{},"id":"cbe4028c-7239-495d-b020-f22348516046","subject":"zen:user:7165219040","time":"2021-07-25T09:59:58Z","type":"zen:event-type:user.created","zendesk_event_version":"2022-06-20"}`
	runProviderCase(t, providerCase{
		preset: "zendesk",
		vector: "computed: Zendesk developer docs, Webhooks, \"Verifying webhook authenticity\" (base64 HMAC-SHA256 of timestamp + body), with that page's example secret and timestamp and an event-subscription body",
		verify: "- type: zendesk\n  secrets: [\"HRkRd4BeOAoUkfZr-mhauJT64rvBASlJRoIyPsd3zeA=\"]",
		now:    time.Date(2021, 7, 25, 10, 0, 30, 0, time.UTC),
		header: map[string]string{
			"X-Zendesk-Webhook-Signature":           "dwi+NZNXzK6l+rMNfXePETZj4JmNKbf0IHn3NhISuCI=",
			"X-Zendesk-Webhook-Signature-Timestamp": "2021-07-25T10:00:00Z",
			"Content-Type":                          "application/json",
		},
		body:   body,
		wantID: "cbe4028c-7239-495d-b020-f22348516046", wantType: "zen:event-type:user.created",
		wantTime: time.Date(2021, 7, 25, 9, 59, 58, 0, time.UTC),
		bad: []providerVariant{
			changedBody(body),
			{name: "timestamp changed", header: map[string]string{"X-Zendesk-Webhook-Signature-Timestamp": "2021-07-25T10:00:01Z"}},
			wrongSecret("- type: zendesk\n  secrets: [\"HRkRd4BeOAoUkfZr-mhauJT64rvBASlJRoIyPsd3zeB=\"]"),
		},
	})
}

// TestProviderTwilioFormSelector: a twilio source can take its event type
// from a form parameter of the signed body.
func TestProviderTwilioFormSelector(t *testing.T) {
	t.Parallel()
	form := url.Values{}
	for k, v := range twilioParams {
		form.Set(k, v)
	}
	cfg := parseSources(t, "- name: p\n  verify:\n    - {type: twilio, secrets: [\"12345\"], url: https://mycompany.com/myapp.php}\n"+
		"  event: {type: form:Reason, key: form:CallSid}\n")
	h := newHarnessConfig(t, cfg)
	a := send(t, h.srv, http.MethodPost, "/in/p?foo=1&bar=2", strings.NewReader(form.Encode()), http.Header{
		"X-Twilio-Signature": {"vOEb5UThFn24KEfnOFLQY2AE5FY="}, "Content-Type": {"application/x-www-form-urlencoded"}})
	e := h.event(t, wantOK(t, a, http.StatusOK).ID)
	if e.Type != "Participant" || e.Key != "CA1234567890ABCDE" {
		t.Fatalf("got type %q key %q, want Participant and CA1234567890ABCDE", e.Type, e.Key)
	}
}
