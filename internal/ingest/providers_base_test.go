package ingest_test

import (
	"testing"
	"time"
)

// The first presets' requests: Standard Webhooks, Stripe and Shopify.
// (GitHub's is TestProviderHarnessCatchesAWrongPreset; Slack's is with its
// handshake.)
func TestProviderBasePresets(t *testing.T) {
	const swBody = `{"test": 2432232314}`
	const swTyped = `{"type":"invoice.paid","timestamp":"2022-11-03T20:26:10.344522Z","data":{}}`
	const stripeBody = `{"id": "evt_1NG8Du2eZvKYlo2CUI79vXWy", "object": "event", "created": 1686089970, "type": "invoice.paid"}`
	const shopifyBody = `{"id":1082857859,"name":"Example Order"}`
	for _, c := range []providerCase{
		{
			preset: "standard_webhooks",
			vector: "documentation: Standard Webhooks specification, Verifying webhook signatures (the example secret, id, timestamp and signature)",
			verify: "- {type: standard_webhooks, secrets: [whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw]}",
			now:    time.Unix(1614265330, 0),
			header: map[string]string{
				"webhook-id":        "msg_p5jXN8AQM9LWM0D4loKWxJek",
				"webhook-timestamp": "1614265330",
				"webhook-signature": "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=",
			},
			body:     swBody,
			wantID:   "msg_p5jXN8AQM9LWM0D4loKWxJek",
			wantTime: time.Unix(1614265330, 0),
			bad: []providerVariant{
				changedBody(swBody),
				{name: "id changed", header: map[string]string{"webhook-id": "msg_p5jXN8AQM9LWM0D4loKWxJeK"}},
				wrongSecret("- {type: standard_webhooks, secrets: [whsec_NfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw]}"),
			},
		},
		{
			preset: "standard_webhooks",
			vector: "computed per the Standard Webhooks specification (HMAC-SHA256 of id.timestamp.body, Python's hmac) with its example secret, for a payload carrying a type",
			verify: "- {type: standard_webhooks, secrets: [whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw]}",
			now:    time.Unix(1614265330, 0),
			header: map[string]string{
				"webhook-id":        "msg_p5jXN8AQM9LWM0D4loKWxJek",
				"webhook-timestamp": "1614265330",
				"webhook-signature": "v1,x5ZvbDzNo4gr6SBe18CuYh9/sxUcTVC4l24gTSuHBsc=",
			},
			body:     swTyped,
			wantID:   "msg_p5jXN8AQM9LWM0D4loKWxJek",
			wantType: "invoice.paid",
			wantTime: time.Unix(1614265330, 0),
			bad:      []providerVariant{changedBody(swTyped)},
		},
		{
			preset:   "stripe",
			vector:   "computed per Stripe's docs, Check the webhook signatures (HMAC-SHA256 of t.body, Python's hmac); Stripe publishes no vector for a known secret",
			verify:   "- {type: stripe, secrets: [whsec_test_secret]}",
			now:      time.Unix(1686089970, 0),
			header:   map[string]string{"Stripe-Signature": "t=1686089970,v1=f2091108780efdd9357d4cae12ec96a5509d077cc7df1df12cd2253e80357918"},
			body:     stripeBody,
			wantID:   "evt_1NG8Du2eZvKYlo2CUI79vXWy",
			wantType: "invoice.paid",
			wantTime: time.Unix(1686089970, 0),
			bad: []providerVariant{
				changedBody(stripeBody),
				{name: "timestamp changed", header: map[string]string{"Stripe-Signature": "t=1686089971,v1=f2091108780efdd9357d4cae12ec96a5509d077cc7df1df12cd2253e80357918"}},
				wrongSecret("- {type: stripe, secrets: [whsec_test_secreT]}"),
			},
		},
		{
			preset: "shopify",
			vector: "computed per Shopify's docs, Verify a webhook (base64 HMAC-SHA256 of the body with the client secret, Python's hmac)",
			verify: "- {type: shopify, secrets: [hush]}",
			header: map[string]string{
				"X-Shopify-Hmac-Sha256":  "nWkyuUdu7aWglEGBpFafm2cleBFcqVPDfLCbzygHHFo=",
				"X-Shopify-Topic":        "orders/create",
				"X-Shopify-Event-Id":     "98880550-7158-44d4-b7cd-2c97c8a091b5",
				"X-Shopify-Triggered-At": "2023-03-29T18:00:27.877041743Z",
				"X-Shopify-Webhook-Id":   "b54557e4-bdd9-4b37-8a5f-bf7d70bcd043",
				"X-Shopify-Shop-Domain":  "example.myshopify.com",
				"X-Shopify-Api-Version":  "2024-01",
			},
			body:     shopifyBody,
			wantID:   "98880550-7158-44d4-b7cd-2c97c8a091b5",
			wantType: "orders/create",
			wantTime: time.Date(2023, 3, 29, 18, 0, 27, 877041743, time.UTC),
			bad: []providerVariant{
				changedBody(shopifyBody),
				wrongSecret("- {type: shopify, secrets: [husH]}"),
			},
		},
	} {
		t.Run(c.preset, func(t *testing.T) { runProviderCase(t, c) })
	}
}
