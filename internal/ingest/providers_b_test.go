package ingest_test

import (
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/razorpay/razorpay-go/utils"
	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"
)

// The vectors of these presets come from, in order of preference: the
// provider's own SDK (a Go module as a test dependency, or the provider's
// official JavaScript SDK run once to produce the values written here,
// package, version and function named); the provider's documented
// example; and, where the provider publishes neither, a request signed
// exactly as its documentation describes, the signature computed
// independently with Python's hmac module (never with hookd's code), each
// case saying so.

// svixHeaders signs a message with the Standard Webhooks reference library
// (Webhook.Sign; Svix's scheme is Standard Webhooks under svix- headers) and
// returns the three svix- headers.
func svixHeaders(t *testing.T, secret, id string, ts time.Time, body string) map[string]string {
	t.Helper()
	wh, err := standardwebhooks.NewWebhook(secret)
	if err != nil {
		t.Fatal(err)
	}
	sig, err := wh.Sign(id, ts, []byte(body))
	if err != nil {
		t.Fatal(err)
	}
	return map[string]string{"svix-id": id, "svix-timestamp": strconv.FormatInt(ts.Unix(), 10), "svix-signature": sig}
}

func TestProviderSvix(t *testing.T) {
	t.Parallel()
	// The message and secret of the Standard Webhooks library's own test
	// (TestWebhookSign, which Svix's documentation, "Verifying webhooks
	// manually", also uses), with a type added to the payload.
	const secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
	ts := time.Unix(1614265330, 0)
	body := `{"type": "invoice.paid", "test": 2432232314}`
	h := svixHeaders(t, secret, "msg_p5jXN8AQM9LWM0D4loKWxJek", ts, body)
	// The library's signature of its own vector, as its test expects it.
	wh, _ := standardwebhooks.NewWebhook(secret)
	if sig, _ := wh.Sign("msg_p5jXN8AQM9LWM0D4loKWxJek", ts, []byte(`{"test": 2432232314}`)); sig != "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=" {
		t.Fatalf("library signature: got %s", sig)
	}
	runProviderCase(t, providerCase{
		preset:   "svix",
		vector:   "SDK: github.com/standard-webhooks/standard-webhooks/libraries v1.3.0, Webhook.Sign",
		verify:   "- type: svix\n  secrets: [" + secret + "]",
		now:      ts.Add(time.Minute),
		header:   h,
		body:     body,
		wantID:   "msg_p5jXN8AQM9LWM0D4loKWxJek",
		wantType: "invoice.paid",
		wantTime: ts,
		bad: []providerVariant{
			changedBody(body),
			wrongSecret("- type: svix\n  secrets: [whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSx]"),
			{name: "id changed", header: map[string]string{"svix-id": "msg_p5jXN8AQM9LWM0D4loKWxJel"}},
			{name: "timestamp changed", header: map[string]string{"svix-timestamp": "1614265331"}},
			{name: "webhook- headers", header: map[string]string{
				"svix-id": "", "svix-timestamp": "", "svix-signature": "",
				"webhook-id": h["svix-id"], "webhook-timestamp": h["svix-timestamp"], "webhook-signature": h["svix-signature"]}},
		},
	})
}

func TestProviderClerk(t *testing.T) {
	t.Parallel()
	// A user.created event in the shape of Clerk's documentation
	// ("Webhooks overview", payload structure), signed by the Standard
	// Webhooks library as Svix signs Clerk's deliveries.
	const secret = "whsec_Y2xlcmtXZWJob29rU2lnbmluZ1NlY3JldDAx"
	ts := time.Unix(1714644060, 0)
	body := `{"data":{"id":"user_29w83sxmDNGwOuEthce5gg56FcC","object":"user","first_name":"Example"},"event_attributes":{"http_request":{"client_ip":"0.0.0.0"}},"object":"event","timestamp":1714644060123,"type":"user.created"}`
	runProviderCase(t, providerCase{
		preset:   "clerk",
		vector:   "SDK: github.com/standard-webhooks/standard-webhooks/libraries v1.3.0, Webhook.Sign (Clerk delivers through Svix)",
		verify:   "- type: clerk\n  secrets: [" + secret + "]",
		now:      ts,
		header:   svixHeaders(t, secret, "msg_2fWkz9HDmZ6D1pTN6C8PZ5bQ3xY", ts, body),
		body:     body,
		wantID:   "msg_2fWkz9HDmZ6D1pTN6C8PZ5bQ3xY",
		wantType: "user.created",
		wantTime: ts,
		bad: []providerVariant{
			changedBody(body),
			wrongSecret("- type: clerk\n  secrets: [whsec_Y2xlcmtXZWJob29rU2lnbmluZ1NlY3JldDAy]"),
			{name: "stale", header: map[string]string{"svix-timestamp": "1714643000"}},
		},
	})
}

func TestProviderResend(t *testing.T) {
	t.Parallel()
	// An email.delivered event in the shape of Resend's documentation
	// ("Webhooks", event types), signed by the Standard Webhooks library
	// as Svix signs Resend's deliveries.
	const secret = "whsec_cmVzZW5kV2ViaG9va1NpZ25pbmdTZWNyZXQ="
	ts := time.Unix(1714644060, 0)
	body := `{"type":"email.delivered","created_at":"2024-05-02T10:01:00.000Z","data":{"email_id":"56761188-7520-42d8-8898-ff6fc54ce618","from":"Acme <onboarding@resend.dev>","to":["delivered@resend.dev"],"subject":"Sending this example"}}`
	runProviderCase(t, providerCase{
		preset:   "resend",
		vector:   "SDK: github.com/standard-webhooks/standard-webhooks/libraries v1.3.0, Webhook.Sign (Resend delivers through Svix)",
		verify:   "- type: resend\n  secrets: [" + secret + "]",
		now:      ts.Add(-time.Minute),
		header:   svixHeaders(t, secret, "msg_2hT3bY1sQ9cG7aP0kL5mN8vR4wZ", ts, body),
		body:     body,
		wantID:   "msg_2hT3bY1sQ9cG7aP0kL5mN8vR4wZ",
		wantType: "email.delivered",
		wantTime: ts,
		bad: []providerVariant{
			changedBody(body),
			wrongSecret("- type: resend\n  secrets: [whsec_cmVzZW5kV2ViaG9va1NpZ25pbmdTZWNyZXQh]"),
			{name: "signature missing", header: map[string]string{"svix-signature": ""}},
		},
	})
}

func TestProviderHubSpot(t *testing.T) {
	t.Parallel()
	// The signature is HubSpot's Node SDK's: @hubspot/api-client 14.0.1,
	// Signature.getSignature("POST", "v3", {clientSecret, requestBody,
	// url, timestamp}), given the URL with %3A decoded as HubSpot's
	// "Validating requests" (v3) tells receivers to do. The client secret
	// is the placeholder of that page.
	body := `[{"eventId":1234567890,"subscriptionId":2345678,"portalId":62515,"appId":1160452,"occurredAt":1714644060123,"subscriptionType":"contact.creation","attemptNumber":0,"objectId":123456,"changeFlag":"CREATED","changeSource":"CRM"}]`
	verify := "- type: hubspot\n  secrets: [yyyyyyyy-yyyy-yyyy-yyyy-yyyyyyyyyyyy]\n  url: https://hooks.example.com/in/p"
	runProviderCase(t, providerCase{
		preset: "hubspot",
		vector: "SDK: @hubspot/api-client 14.0.1 (npm), Signature.getSignature v3",
		verify: verify,
		now:    time.UnixMilli(1714644060123).Add(2 * time.Minute),
		target: "/in/p?portal=62515&note=a%3Ab",
		header: map[string]string{
			"Content-Type":                "application/json",
			"X-HubSpot-Signature-v3":      "G28DN+ijGdc68ZHsGQjrUD8MXO2RqZp+ihu3I0ER2To=",
			"X-HubSpot-Request-Timestamp": "1714644060123",
		},
		body: body,
		// HubSpot's eventId is not guaranteed unique, and one request
		// carries up to 100 events: no id is read.
		wantID:   "",
		wantType: "contact.creation",
		wantTime: time.UnixMilli(1714644060123),
		bad: []providerVariant{
			changedBody(body),
			wrongSecret("- type: hubspot\n  secrets: [yyyyyyyy-yyyy-yyyy-yyyy-yyyyyyyyyyyz]\n  url: https://hooks.example.com/in/p"),
			wrongSecret("- type: hubspot\n  secrets: [yyyyyyyy-yyyy-yyyy-yyyy-yyyyyyyyyyyy]\n  url: https://hooks.example.org/in/p"),
			{name: "query changed", target: "/in/p?portal=62516&note=a%3Ab"},
			{name: "timestamp changed", header: map[string]string{"X-HubSpot-Request-Timestamp": "1714644060124"}},
			{name: "v1 signature only", header: map[string]string{"X-HubSpot-Signature-v3": "",
				"X-HubSpot-Signature": "232db2615f3d666fe21a8ec971ac7b5402d33b9a925784df3ca654d05f4817de"}},
		},
	})
}

func TestProviderContentful(t *testing.T) {
	t.Parallel()
	// The headers are the output of Contentful's own signer:
	// @contentful/node-apps-toolkit 3.16.1 (npm), signRequest(secret,
	// {method: "POST", path: "/in/p", headers: {X-Contentful-Topic,
	// X-Contentful-Webhook-Name, X-Contentful-Idempotency-Key,
	// Content-Type}, body}, 1714644060123), the function Contentful's
	// "Request verification" page points receivers to.
	const secret = "c0nt3ntfulS1gn1ngS3cr3tThatIsExactly64CharactersLongForTheTest_x"
	body := `{"sys":{"type":"Entry","id":"5KsDBWseXY6QegucYAoacS","space":{"sys":{"type":"Link","linkType":"Space","id":"yadj1kx9rmg0"}},"createdAt":"2024-05-02T10:00:00.000Z","updatedAt":"2024-05-02T10:01:00.000Z"},"fields":{"title":{"en-US":"Hello"}}}`
	runProviderCase(t, providerCase{
		preset: "contentful",
		vector: "SDK: @contentful/node-apps-toolkit 3.16.1 (npm), signRequest",
		verify: "- type: contentful\n  secrets: [" + secret + "]",
		now:    time.UnixMilli(1714644060123).Add(10 * time.Second),
		header: map[string]string{
			"Content-Type":                 "application/vnd.contentful.management.v1+json",
			"X-Contentful-Topic":           "ContentManagement.Entry.publish",
			"X-Contentful-Webhook-Name":    "hookd",
			"X-Contentful-Idempotency-Key": "b5e4c7f0a1d2e3f4a5b6c7d8e9f0a1b2c3d4e5f6a7b8c9d0e1f2a3b4c5d6e7f8",
			"X-Contentful-Signature":       "e5ddea8377df3732a268987d44171bb862a3af7d54348de3c3837f5b3ce5475c",
			"X-Contentful-Signed-Headers":  "content-type,x-contentful-idempotency-key,x-contentful-signed-headers,x-contentful-timestamp,x-contentful-topic,x-contentful-webhook-name",
			"X-Contentful-Timestamp":       "1714644060123",
		},
		body:     body,
		wantID:   "b5e4c7f0a1d2e3f4a5b6c7d8e9f0a1b2c3d4e5f6a7b8c9d0e1f2a3b4c5d6e7f8",
		wantType: "ContentManagement.Entry.publish",
		wantTime: time.UnixMilli(1714644060123),
		bad: []providerVariant{
			changedBody(body),
			wrongSecret("- type: contentful\n  secrets: [" + strings.Replace(secret, "c0nt", "c1nt", 1) + "]"),
			{name: "signed header changed", header: map[string]string{"X-Contentful-Topic": "ContentManagement.Entry.delete"}},
			{name: "signed header missing", header: map[string]string{"X-Contentful-Webhook-Name": ""}},
			{name: "timestamp not signed", header: map[string]string{"X-Contentful-Signed-Headers": "content-type,x-contentful-idempotency-key,x-contentful-signed-headers,x-contentful-topic,x-contentful-webhook-name"}},
			{name: "path changed", target: "/in/p?x=1"},
			{name: "older than the tolerance", verify: "- type: contentful\n  secrets: [" + secret + "]\n  tolerance: 5s"},
		},
	})
}

func TestProviderTypeform(t *testing.T) {
	t.Parallel()
	body := `{"event_id":"01HW8Z2Q4T7XK3M5N9P1R6S8V0","event_type":"form_response","form_response":{"form_id":"lT4Z3j","token":"a3a12ec67a1365927098a606107fac15","submitted_at":"2024-05-02T10:01:00Z","landed_at":"2024-05-02T10:00:00Z","answers":[{"type":"text","text":"Lorem ipsum","field":{"id":"JwWggjAKtOkA","type":"short_text"}}]}}`
	runProviderCase(t, providerCase{
		preset: "typeform",
		vector: "documented algorithm: Typeform, Webhooks, \"Secure your webhooks\" (sha256= + base64 HMAC-SHA256 of the body), computed with Python's hmac",
		verify: "- type: typeform\n  secrets: [typeformS3cr3tValue]",
		header: map[string]string{"Typeform-Signature": "sha256=xu1s/7JT4o0lKoet6lv9gbQ9WmrYGijZbXqhQoxmwZM="},
		body:   body, wantID: "01HW8Z2Q4T7XK3M5N9P1R6S8V0", wantType: "form_response",
		wantTime: time.Date(2024, 5, 2, 10, 1, 0, 0, time.UTC),
		bad: []providerVariant{
			changedBody(body),
			wrongSecret("- type: typeform\n  secrets: [typeformS3cr3tValuf]"),
			{name: "hex instead of base64", header: map[string]string{"Typeform-Signature": "sha256=c6ed6cffb253e28d252a87adea5bfd81b43d5a6ad81a28d96d7aa1428c66c193"}},
		},
	})
}

func TestProviderCalendly(t *testing.T) {
	t.Parallel()
	body := `{"created_at":"2024-05-02T10:01:00.000000Z","created_by":"https://api.calendly.com/users/AAAAAAAAAAAAAAAA","event":"invitee.created","payload":{"email":"test@example.com","name":"John Doe","status":"active"}}`
	runProviderCase(t, providerCase{
		preset: "calendly",
		vector: "documented algorithm: Calendly, \"Webhook signatures\" (t=…,v1=hex HMAC-SHA256 of \"t.body\"), computed with Python's hmac",
		verify: "- type: calendly\n  secrets: [calendlyW3bh00kSigningKey]",
		now:    time.Unix(1714644060, 0).Add(2 * time.Minute),
		header: map[string]string{"Calendly-Webhook-Signature": "t=1714644060,v1=3c2061d191b890fe062b0b8859abbd5e92ef45b3be85fea4a74cc0caf90fb22a"},
		body:   body, wantType: "invitee.created",
		wantTime: time.Date(2024, 5, 2, 10, 1, 0, 0, time.UTC),
		bad: []providerVariant{
			changedBody(body),
			wrongSecret("- type: calendly\n  secrets: [calendlyW3bh00kSigningKez]"),
			{name: "t changed", header: map[string]string{"Calendly-Webhook-Signature": "t=1714644061,v1=3c2061d191b890fe062b0b8859abbd5e92ef45b3be85fea4a74cc0caf90fb22a"}},
			{name: "older than the tolerance", verify: "- type: calendly\n  secrets: [calendlyW3bh00kSigningKey]\n  tolerance: 1m"},
		},
	})
}

// xeroIntent is the body of Xero's intent-to-receive requests, as
// Xero's "Configuring your server" page shows it.
const xeroIntent = `{"events":[],"lastEventSequence":0,"firstEventSequence":0,"entropy":"S0m3r4Nd0mt3xt"}`

func TestProviderXero(t *testing.T) {
	t.Parallel()
	body := `{"events":[{"resourceUrl":"https://api.xero.com/api.xro/2.0/Contacts/717f2bfc-c6d4-41fd-b238-3f2f0c0cf777","resourceId":"717f2bfc-c6d4-41fd-b238-3f2f0c0cf777","eventDateUtc":"2017-06-21T01:15:39.902","eventType":"Update","eventCategory":"CONTACT","tenantId":"c2cc9b6e-9458-4c7d-93cc-f02b81b0594f","tenantType":"ORGANISATION"}],"lastEventSequence":1,"firstEventSequence":1,"entropy":"S0m3r4Nd0mt3xt"}`
	runProviderCase(t, providerCase{
		preset:      "xero",
		emptyAnswer: true,
		vector:      "documented algorithm: Xero, Webhooks, \"Configuring your server\", Intent to receive (base64 HMAC-SHA256 of the body), the event of its \"Payload\" example, computed with Python's hmac",
		verify:      "- type: xero\n  secrets: [xeroWebhookKeyFromTheDeveloperPortal]",
		header:      map[string]string{"x-xero-signature": "5YTpAFUPcGVsVbxsYBFpbVareUWwIf3ADjk+qb9RxLI="},
		body:        body, wantType: "CONTACT",
		bad: []providerVariant{
			changedBody(body),
			wrongSecret("- type: xero\n  secrets: [xeroWebhookKeyFromTheDeveloperPortam]"),
		},
	})
}

// TestProviderXeroIntentToReceive plays Xero's intent-to-receive check: a
// correctly signed request gets 200 with no body, an incorrectly signed one
// 401, and neither is stored; then the source accepts an event.
func TestProviderXeroIntentToReceive(t *testing.T) {
	t.Parallel()
	h := providerHarness(t, "- type: xero\n  secrets: [xeroWebhookKeyFromTheDeveloperPortal]", time.Time{})
	good := http.Header{"X-Xero-Signature": {"2xEIy8ZNZxy8FRda2dj+RWBkUkEziXn/HpQeF+eBVXI="}}
	for range 2 {
		a := send(t, h.srv, http.MethodPost, "/in/p", strings.NewReader(xeroIntent), good)
		if a.status != http.StatusOK || len(a.body) != 0 {
			t.Fatalf("correctly signed: got %d %q, want 200 and no body", a.status, a.body)
		}
	}
	for _, sig := range []string{"5YTpAFUPcGVsVbxsYBFpbVareUWwIf3ADjk+qb9RxLI=", "", "not base64"} {
		a := send(t, h.srv, http.MethodPost, "/in/p", strings.NewReader(xeroIntent), http.Header{"X-Xero-Signature": {sig}})
		if a.status != http.StatusUnauthorized {
			t.Errorf("incorrectly signed (%q): got %d %s, want 401", sig, a.status, a.body)
		}
	}
	h.wantCount(t, 0)
	body := `{"events":[{"resourceId":"717f2bfc-c6d4-41fd-b238-3f2f0c0cf777","eventType":"Update","eventCategory":"CONTACT"}],"lastEventSequence":1,"firstEventSequence":1,"entropy":"S0m3r4Nd0mt3xt"}`
	a := send(t, h.srv, http.MethodPost, "/in/p", strings.NewReader(body), http.Header{"X-Xero-Signature": {"I7+JMdrUat6Tg4KUsamUDjmtXEM5c4+fWiHSuJT8w8c="}})
	if a.status != http.StatusOK || len(a.body) != 0 {
		t.Fatalf("event: got %d %q, want 200 and no body (Xero: no body in the response)", a.status, a.body)
	}
	h.wantCount(t, 1)
}

func TestProviderLemonSqueezy(t *testing.T) {
	t.Parallel()
	body := `{"meta":{"event_name":"order_created","custom_data":{"customer_id":25}},"data":{"type":"orders","id":"1","attributes":{"store_id":1,"identifier":"104e18a2-d755-4d4b-80c4-a6c1dcbe1c10","status":"paid","created_at":"2024-05-02T10:01:00.000000Z"}}}`
	runProviderCase(t, providerCase{
		preset: "lemonsqueezy",
		vector: "documented algorithm: Lemon Squeezy, \"Signing requests\" (X-Signature, hex HMAC-SHA256 of the body), computed with Python's hmac",
		verify: "- type: lemonsqueezy\n  secrets: [lemonSqueezySigningSecret]",
		header: map[string]string{"X-Signature": "ae5d2162818a6ba1aafa8fcd658ef0416a6e35c4764e7bb35ec850e3c011fae9", "X-Event-Name": "order_created"},
		body:   body, wantType: "order_created",
		bad: []providerVariant{
			changedBody(body),
			wrongSecret("- type: lemonsqueezy\n  secrets: [lemonSqueezySigningSecreu]"),
		},
	})
}

func TestProviderSentry(t *testing.T) {
	t.Parallel()
	body := `{"action":"created","installation":{"uuid":"a8e5d37a-696c-4c54-adb5-b3f28d64c7de"},"data":{"issue":{"id":"1170820242","title":"Error: boom"}},"actor":{"type":"application","id":"sentry","name":"Sentry"}}`
	runProviderCase(t, providerCase{
		preset: "sentry",
		vector: "documented algorithm: Sentry, Integration Platform, Webhooks, \"Verifying the signature\" (Sentry-Hook-Signature, hex HMAC-SHA256 of the body with the client secret), computed with Python's hmac",
		verify: "- type: sentry\n  secrets: [sentryClientSecretForTheIntegration]",
		header: map[string]string{
			"Sentry-Hook-Signature": "963eecc5423fc529a1dc5598384ecbcc1f31e4fb1b76cbc22395086dc622ef8d",
			"Sentry-Hook-Resource":  "issue",
			"Sentry-Hook-Timestamp": "1714644060",
			"Request-ID":            "d3e2a1b0-6c5f-4e8d-9a7b-1c2d3e4f5a6b",
		},
		body: body, wantID: "d3e2a1b0-6c5f-4e8d-9a7b-1c2d3e4f5a6b", wantType: "issue", wantTime: time.Unix(1714644060, 0),
		bad: []providerVariant{
			changedBody(body),
			wrongSecret("- type: sentry\n  secrets: [sentryClientSecretForTheIntegratioN]"),
		},
	})
}

func TestProviderPagerDuty(t *testing.T) {
	t.Parallel()
	body := `{"event":{"id":"01DEN6M3ZCQPX0ZOJHQ9QBAFPL","event_type":"incident.triggered","resource_type":"incident","occurred_at":"2024-05-02T10:01:00.123Z","agent":null,"client":null,"data":{"id":"PGR0VU2","type":"incident","title":"A little bump in the road"}}}`
	runProviderCase(t, providerCase{
		preset: "pagerduty",
		vector: "documented algorithm: PagerDuty, Webhooks v3, \"Verifying Signatures\" (X-PagerDuty-Signature, v1=hex HMAC-SHA256 of the body, one per secret), computed with Python's hmac",
		verify: "- type: pagerduty\n  secrets: [pagerdutyWebhookSubscriptionSecret]",
		header: map[string]string{"X-PagerDuty-Signature": "v1=360725602b0cec8ace6ccf9cb945e19b3b213a0214f08329155c97465be5a9c9,v1=f3f6c74a7fe4e1d644d55fa93c5bbb8c9e6b82a238057ff8a69cbbb90acb96ad"},
		body:   body, wantID: "01DEN6M3ZCQPX0ZOJHQ9QBAFPL", wantType: "incident.triggered",
		wantTime: time.Date(2024, 5, 2, 10, 1, 0, 123e6, time.UTC),
		bad: []providerVariant{
			changedBody(body),
			wrongSecret("- type: pagerduty\n  secrets: [pagerdutyWebhookSubscriptionSecreT]"),
			{name: "only the other secret's signature", header: map[string]string{"X-PagerDuty-Signature": "v1=360725602b0cec8ace6ccf9cb945e19b3b213a0214f08329155c97465be5a9c9"}},
			{name: "no v1= prefix", header: map[string]string{"X-PagerDuty-Signature": "f3f6c74a7fe4e1d644d55fa93c5bbb8c9e6b82a238057ff8a69cbbb90acb96ad"}},
		},
	})
}

func TestProviderVercel(t *testing.T) {
	t.Parallel()
	body := `{"id":"Ty8wbmXjVzUfeDXqPjP4t7m4","type":"deployment.created","createdAt":1714644060123,"payload":{"deployment":{"id":"dpl_2euZBFqxYdDMDG1jTrHFnNZ2eUVa","url":"docs-1mr6mcz9b.vercel.app"},"project":{"id":"prj_12HKQaOmR5t5Uy6vdcQsNIiZgHGB"}}}`
	runProviderCase(t, providerCase{
		preset: "vercel",
		vector: "documented algorithm: Vercel, Webhooks, \"Securing webhooks\" (x-vercel-signature, hex HMAC-SHA1 of the body), computed with Python's hmac",
		verify: "- type: vercel\n  secrets: [vercelIntegrationClientSecret]",
		header: map[string]string{"x-vercel-signature": "de705472179f8f0d1350684014a16679b68e2618"},
		body:   body, wantID: "Ty8wbmXjVzUfeDXqPjP4t7m4", wantType: "deployment.created", wantTime: time.UnixMilli(1714644060123),
		bad: []providerVariant{
			changedBody(body),
			wrongSecret("- type: vercel\n  secrets: [vercelIntegrationClientSecreT]"),
		},
	})
}

func TestProviderCoinbase(t *testing.T) {
	t.Parallel()
	body := `{"attempt_number":1,"event":{"api_version":"2018-03-22","created_at":"2024-05-02T10:01:00Z","data":{"code":"66BEOV2A","name":"The Sovereign Individual","pricing_type":"fixed_price"},"id":"24934862-d980-46cb-9402-43c81b0cdba6","resource":"event","type":"charge:created"},"id":"f6e5a3c9-8a32-4bd9-9f7e-d0b2b4a1c3e5","scheduled_for":"2024-05-02T10:01:00Z"}`
	runProviderCase(t, providerCase{
		preset: "coinbase",
		vector: "documented algorithm: Coinbase Commerce, Webhooks, \"Securing webhooks\" (X-CC-Webhook-Signature, hex HMAC-SHA256 of the body with the shared secret), computed with Python's hmac",
		verify: "- type: coinbase\n  secrets: [coinbaseCommerceSharedSecret]",
		header: map[string]string{"X-CC-Webhook-Signature": "cfe70cf1aee6745a1529fb63a994cf15fca0d33be0f4c2b6d6b663fbc5e963f5"},
		body:   body, wantID: "24934862-d980-46cb-9402-43c81b0cdba6", wantType: "charge:created",
		wantTime: time.Date(2024, 5, 2, 10, 1, 0, 0, time.UTC),
		bad: []providerVariant{
			changedBody(body),
			wrongSecret("- type: coinbase\n  secrets: [coinbaseCommerceSharedSecreT]"),
		},
	})
}

func TestProviderRazorpay(t *testing.T) {
	t.Parallel()
	body := `{"entity":"event","account_id":"acc_BFQ7uQEaa7j2z7","event":"payment.captured","contains":["payment"],"payload":{"payment":{"entity":{"id":"pay_DESlfW9H8K9uqM","amount":100,"currency":"INR","status":"captured"}}},"created_at":1714644060}`
	const sig = "1542b7fdbb4e03ade89502323a9c2741620f4ab127f046480e0d14e86eac9af9"
	// Razorpay's Go SDK accepts the signature and refuses it with another
	// secret.
	if !utils.VerifyWebhookSignature(body, sig, "razorpayWebhookSecret") || utils.VerifyWebhookSignature(body, sig, "razorpayWebhookSecreT") {
		t.Fatal("razorpay-go VerifyWebhookSignature disagrees with the vector")
	}
	runProviderCase(t, providerCase{
		preset: "razorpay",
		vector: "SDK: github.com/razorpay/razorpay-go v1.3.3, utils.VerifyWebhookSignature accepts it",
		verify: "- type: razorpay\n  secrets: [razorpayWebhookSecret]",
		header: map[string]string{"X-Razorpay-Signature": sig, "X-Razorpay-Event-Id": "Ek3WXh2M2Qj7a1"},
		body:   body, wantID: "Ek3WXh2M2Qj7a1", wantType: "payment.captured", wantTime: time.Unix(1714644060, 0),
		bad: []providerVariant{
			changedBody(body),
			wrongSecret("- type: razorpay\n  secrets: [razorpayWebhookSecreT]"),
		},
	})
}

func TestProviderDocuSign(t *testing.T) {
	t.Parallel()
	body := `{"event":"envelope-completed","apiVersion":"v2.1","uri":"/restapi/v2.1/accounts/0c2b4f2e/envelopes/0a3c7e1d","retryCount":0,"configurationId":10418276,"generatedDateTime":"2024-05-02T10:01:00.1234567Z","data":{"accountId":"0c2b4f2e","userId":"9a1b8c7d","envelopeId":"0a3c7e1d"}}`
	// Two HMAC keys on the account: X-DocuSign-Signature-1 is made with
	// the other one.
	header := map[string]string{
		"X-DocuSign-Signature-1": "gUll5LVBxmyL4EZMn/fWAFeS2b20EKYx+/sKuQXwqvU=",
		"X-DocuSign-Signature-2": "/CNy6ssnIalVeLaVXbpCd0D3cbTQY/QD0BTblh8gRgs=",
		"X-Authorization-Digest": "HMACSHA256",
	}
	runProviderCase(t, providerCase{
		preset: "docusign",
		vector: "documented algorithm: DocuSign, Connect, \"HMAC security\" (X-DocuSign-Signature-N, base64 HMAC-SHA256 of the body, one per key), computed with Python's hmac",
		verify: "- type: docusign\n  secrets: [R2VuZXJhdGVkSG1hY0tleUZyb21Eb2N1U2lnbkNvbm5lY3Q=]",
		header: header,
		body:   body, wantType: "envelope-completed",
		wantTime: time.Date(2024, 5, 2, 10, 1, 0, 123456700, time.UTC),
		bad: []providerVariant{
			changedBody(body),
			wrongSecret("- type: docusign\n  secrets: [R2VuZXJhdGVkSG1hY0tleUZyb21Eb2N1U2lnbkNvbm5lY3R=]"),
			{name: "only the other key's signature", header: map[string]string{"X-DocuSign-Signature-2": ""}},
			{name: "unnumbered header", header: map[string]string{"X-DocuSign-Signature-1": "", "X-DocuSign-Signature-2": "", "X-DocuSign-Signature": header["X-DocuSign-Signature-2"]}},
		},
	})
}

func TestProviderSegment(t *testing.T) {
	t.Parallel()
	body := `{"type":"track","event":"Order Completed","messageId":"ajs-next-1714644060123-4b2b0c5d","timestamp":"2024-05-02T10:01:00.123Z","userId":"97980cfea0067","properties":{"revenue":39.95}}`
	runProviderCase(t, providerCase{
		preset: "segment",
		vector: "documented algorithm: Segment, Webhooks destination, \"Authentication\" (X-Signature, hex HMAC-SHA1 of the body with the shared secret), computed with Python's hmac",
		verify: "- type: segment\n  secrets: [segmentSharedSecret]",
		header: map[string]string{"X-Signature": "a2ac48c655f7d773613350dda4f0863c318ee48b"},
		body:   body, wantID: "ajs-next-1714644060123-4b2b0c5d", wantType: "track",
		wantTime: time.Date(2024, 5, 2, 10, 1, 0, 123e6, time.UTC),
		bad: []providerVariant{
			changedBody(body),
			wrongSecret("- type: segment\n  secrets: [segmentSharedSecreT]"),
		},
	})
}

func TestProviderJira(t *testing.T) {
	t.Parallel()
	body := `{"timestamp":1714644060123,"webhookEvent":"jira:issue_created","issue_event_type_name":"issue_created","issue":{"id":"10002","key":"TEST-3","fields":{"summary":"A bug"}}}`
	runProviderCase(t, providerCase{
		preset: "jira",
		vector: "documented algorithm: Jira Cloud platform, Webhooks, \"Secure admin webhooks\" (X-Hub-Signature, sha256= + hex HMAC-SHA256 of the body), computed with Python's hmac",
		verify: "- type: jira\n  secrets: [jiraWebhookSecretValue]",
		header: map[string]string{
			"X-Hub-Signature":                "sha256=dc7fdef2ceb99883e66771fd06cf8ea546ed71ccc21e7b8a77fd486a8a1748c8",
			"X-Atlassian-Webhook-Identifier": "4b0d6a4f-3f7e-4c1b-9f2e-8a7c6d5e4f3a",
		},
		body: body, wantID: "4b0d6a4f-3f7e-4c1b-9f2e-8a7c6d5e4f3a", wantType: "jira:issue_created", wantTime: time.UnixMilli(1714644060123),
		bad: []providerVariant{
			changedBody(body),
			wrongSecret("- type: jira\n  secrets: [jiraWebhookSecretValuE]"),
			{name: "sha1= prefix", header: map[string]string{"X-Hub-Signature": "sha1=dc7fdef2ceb99883e66771fd06cf8ea546ed71ccc21e7b8a77fd486a8a1748c8"}},
		},
	})
}
