package ingest_test

import (
	"bytes"
	"crypto/ed25519"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/bwmarrin/discordgo"
	"github.com/slack-go/slack"
	"github.com/slack-go/slack/slackevents"

	"hookd/internal/ingest"
)

// The presets of Slack, Meta, Zoom, Twitch and Discord, and their
// handshakes. Each handshake test sends the handshake as the provider
// documents it (built with the provider's Go SDK where there is one),
// checks hookd's answer byte for byte, that nothing is stored, that a bad
// signature or token is refused, and that the source then accepts a
// signed event with the right id, type and time.

// shakeHMAC returns the hex HMAC-SHA256 of the concatenated parts.
func shakeHMAC(secret string, parts ...string) string {
	m := hmac.New(sha256.New, []byte(secret))
	for _, p := range parts {
		m.Write([]byte(p))
	}
	return hex.EncodeToString(m.Sum(nil))
}

// handshakeCase is a provider's handshake sent to a source using its
// preset, and the answer the provider documents.
type handshakeCase struct {
	// kind is the handshake's name in HandshakeRecord.
	kind string
	// vector says where the handshake comes from.
	vector string
	verify string
	now    time.Time
	// method defaults to POST, target to "/in/p".
	method, target string
	header         map[string]string
	body           string
	// wantContentType and wantBody are the documented answer (200).
	wantContentType, wantBody string
	// check, if set, reads the answer as the provider's SDK does.
	check func(t *testing.T, body []byte)
	// bad are handshakes that must be refused with 401 or 403, nothing
	// answered and nothing stored.
	bad []providerVariant
	// event is a signed event the source must accept after the handshake;
	// its verify and now are this case's.
	event providerCase
}

func runHandshakeCase(t *testing.T, c handshakeCase) {
	t.Helper()
	var (
		mu   sync.Mutex
		recs []ingest.HandshakeRecord
	)
	harnessFor := func(verifyYAML string) *harness {
		var b strings.Builder
		b.WriteString("- name: p\n  verify:\n")
		for _, l := range strings.Split(strings.TrimRight(verifyYAML, "\n"), "\n") {
			b.WriteString("    " + l + "\n")
		}
		return newHarnessWith(t, parseSources(t, b.String()), func(o *ingest.Options) {
			if !c.now.IsZero() {
				o.Now = func() time.Time { return c.now }
			}
			o.OnHandshake = func(r ingest.HandshakeRecord) {
				mu.Lock()
				recs = append(recs, r)
				mu.Unlock()
			}
		})
	}
	lastRecord := func() ingest.HandshakeRecord {
		mu.Lock()
		defer mu.Unlock()
		if len(recs) == 0 {
			return ingest.HandshakeRecord{}
		}
		return recs[len(recs)-1]
	}
	method := c.method
	if method == "" {
		method = http.MethodPost
	}
	target := c.target
	if target == "" {
		target = "/in/p"
	}
	h := harnessFor(c.verify)
	a := send(t, h.srv, method, target, strings.NewReader(c.body), providerHeader(c.header, nil))
	if a.status != http.StatusOK {
		t.Fatalf("%s (%s): got %d %s, want 200", c.kind, c.vector, a.status, a.body)
	}
	if ct := a.header.Get("Content-Type"); ct != c.wantContentType {
		t.Errorf("%s: Content-Type: got %q, want %q", c.kind, ct, c.wantContentType)
	}
	if strings.HasPrefix(c.wantContentType, "text/plain") && a.header.Get("X-Content-Type-Options") != "nosniff" {
		t.Errorf("%s: X-Content-Type-Options: got %q, want nosniff on an echoed challenge", c.kind, a.header.Get("X-Content-Type-Options"))
	}
	if string(a.body) != c.wantBody {
		t.Errorf("%s: answer: got %q, want %q", c.kind, a.body, c.wantBody)
	}
	if c.check != nil {
		c.check(t, a.body)
	}
	if r := lastRecord(); r.Kind != c.kind || r.Status != http.StatusOK || r.Err != nil || r.Source != "p" {
		t.Errorf("%s: handshake record: got %+v, want source p, kind %s, status 200", c.kind, r, c.kind)
	}
	h.wantCount(t, 0)

	for _, v := range c.bad {
		hv := h
		if v.verify != "" {
			hv = harnessFor(v.verify)
		}
		body := c.body
		if v.body != nil {
			body = *v.body
		}
		tg := target
		if v.target != "" {
			tg = v.target
		}
		a := send(t, hv.srv, method, tg, strings.NewReader(body), providerHeader(c.header, v.header))
		if a.status != http.StatusUnauthorized && a.status != http.StatusForbidden {
			t.Errorf("%s, %s: got %d %s, want 401 or 403", c.kind, v.name, a.status, a.body)
		}
		if c.wantBody != "" && bytes.Contains(a.body, []byte(c.wantBody)) {
			t.Errorf("%s, %s: the refusal %s carries the answer", c.kind, v.name, a.body)
		}
		hv.wantCount(t, 0)
	}
	h.wantCount(t, 0)

	// After the handshake, a signed event is stored with its metadata.
	e := c.event
	em := e.method
	if em == "" {
		em = http.MethodPost
	}
	et := e.target
	if et == "" {
		et = "/in/p"
	}
	a = send(t, h.srv, em, et, strings.NewReader(e.body), providerHeader(e.header, nil))
	ok := wantOK(t, a, http.StatusOK)
	ev := h.event(t, ok.ID)
	if ev.ExternalID != e.wantID || ev.Type != e.wantType || !ev.OccurredAt.Equal(e.wantTime) {
		t.Errorf("%s: event after the handshake: got id %q type %q time %v, want %q %q %v",
			c.kind, ev.ExternalID, ev.Type, ev.OccurredAt, e.wantID, e.wantType, e.wantTime)
	}
	h.wantCount(t, 1)
}

// Slack.

const slackTestSecret = "8f742231b10e8888abcd99yyyzzz85a5"

// slackSign returns the headers of a request Slack signs at ts
// ("Verifying requests from Slack": "v0=" + hex HMAC-SHA256 of
// "v0:{timestamp}:{body}").
func slackSign(secret, body string, ts int64) map[string]string {
	s := strconv.FormatInt(ts, 10)
	return map[string]string{
		"Content-Type":              "application/json",
		"X-Slack-Request-Timestamp": s,
		"X-Slack-Signature":         "v0=" + shakeHMAC(secret, "v0:", s, ":", body),
	}
}

// slackSigned is slackSign now, after checking with slack-go's
// SecretsVerifier that Slack's SDK accepts the signature.
func slackSigned(t *testing.T, secret, body string) map[string]string {
	t.Helper()
	hdr := slackSign(secret, body, time.Now().Unix())
	sv, err := slack.NewSecretsVerifier(providerHeader(hdr, nil), secret)
	if err != nil {
		t.Fatalf("slack.NewSecretsVerifier: %v", err)
	}
	sv.Write([]byte(body))
	if err := sv.Ensure(); err != nil {
		t.Fatalf("slack-go refuses the test's signature: %v", err)
	}
	return hdr
}

// slackEventCase is an Events API event_callback (the fields of Slack's
// "Events API" outer event example), signed now.
func slackEventCase(t *testing.T) providerCase {
	body := `{"token":"XXYYZZ","team_id":"T123ABC456","api_app_id":"A123ABC456",` +
		`"event":{"type":"app_mention","user":"U123ABC456","text":"<@U0LAN0Z89> is it everything a river should be?","ts":"1515449522.000016","channel":"C123ABC456","event_ts":"1515449522000016"},` +
		`"type":"event_callback","event_id":"Ev123ABC456","event_time":1515449522}`
	ev, err := slackevents.ParseEvent(json.RawMessage(body), slackevents.OptionNoVerifyToken())
	if err != nil || ev.Type != slackevents.CallbackEvent || ev.InnerEvent.Type != "app_mention" {
		t.Fatalf("slackevents.ParseEvent: got %+v, %v; want an app_mention callback event", ev, err)
	}
	return providerCase{
		preset: "slack",
		vector: "SDK: github.com/slack-go/slack v0.36.0, slackevents.ParseEvent reads the event_callback and slack.NewSecretsVerifier accepts its signature",
		verify: "- type: slack\n  secrets: [" + slackTestSecret + "]",
		header: slackSigned(t, slackTestSecret, body),
		body:   body, wantID: "Ev123ABC456", wantType: "app_mention", wantTime: time.Unix(1515449522, 0),
		bad: []providerVariant{
			changedBody(body),
			wrongSecret("- type: slack\n  secrets: [8f742231b10e8888abcd99yyyzzz85a6]"),
			{name: "stale", header: slackSign(slackTestSecret, body, time.Now().Add(-time.Hour).Unix())},
		},
	}
}

func TestPresetSlack(t *testing.T) {
	t.Parallel()
	runProviderCase(t, slackEventCase(t))
}

// TestHandshakeSlackURLVerification: Slack's url_verification ("Events
// API", url_verification event) is answered with the bare challenge as
// text/plain, the first answer that page lists, after the signature check.
func TestHandshakeSlackURLVerification(t *testing.T) {
	t.Parallel()
	b, err := json.Marshal(slackevents.EventsAPIURLVerificationEvent{
		Token:     "Jhj5dZrVaK7ZwHHjRyZWjbDl",
		Challenge: "3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P",
		Type:      slackevents.URLVerification,
	})
	if err != nil {
		t.Fatal(err)
	}
	body := string(b)
	ev, err := slackevents.ParseEvent(b, slackevents.OptionNoVerifyToken())
	if err != nil {
		t.Fatal(err)
	}
	uv, ok := ev.Data.(*slackevents.EventsAPIURLVerificationEvent)
	if !ok {
		t.Fatalf("slackevents.ParseEvent: got %T, want a url_verification", ev.Data)
	}
	runHandshakeCase(t, handshakeCase{
		kind:   "slack.url_verification",
		vector: "SDK: github.com/slack-go/slack v0.36.0 slackevents.EventsAPIURLVerificationEvent, with the figures of Slack's url_verification event page",
		verify: "- type: slack\n  secrets: [" + slackTestSecret + "]",
		header: slackSigned(t, slackTestSecret, body),
		body:   body, wantContentType: "text/plain; charset=utf-8", wantBody: uv.Challenge,
		bad: []providerVariant{
			changedBody(body),
			{name: "unsigned", header: map[string]string{"X-Slack-Signature": ""}},
			{name: "stale", header: slackSign(slackTestSecret, body, time.Now().Add(-time.Hour).Unix())},
			wrongSecret("- type: slack\n  secrets: [8f742231b10e8888abcd99yyyzzz85a6]"),
		},
		event: slackEventCase(t),
	})
}

// Meta.

const metaTestSecret = "a1b2c3d4e5f6a7b8c9d0e1f2a3b4c5d6"

// metaEventCase is a Page webhook in the shape of Meta's "Webhooks",
// "Getting Started", Event Notifications sample, signed as "Validating
// Payloads" documents (GitHub publishes a vector of the same scheme; Meta
// none).
func metaEventCase() providerCase {
	body := `{"object":"page","entry":[{"id":"44444444444","time":1520383571,"changes":[{"field":"feed","value":{"item":"status","verb":"add","post_id":"44444444444_1234"}}]}]}`
	return providerCase{
		preset: "meta",
		vector: "built per the documentation: Meta for Developers, Webhooks, Getting Started (an Event Notification of the documented shape, signed in the test as Validating Payloads describes)",
		verify: "- type: meta\n  secrets: [" + metaTestSecret + "]\n  verify_token: meatyhamhock",
		header: map[string]string{
			"Content-Type":        "application/json",
			"X-Hub-Signature-256": "sha256=" + shakeHMAC(metaTestSecret, body),
		},
		body: body, wantType: "page", wantTime: time.Unix(1520383571, 0),
		bad: []providerVariant{
			changedBody(body),
			wrongSecret("- type: meta\n  secrets: [a1b2c3d4e5f6a7b8c9d0e1f2a3b4c5d7]\n  verify_token: meatyhamhock"),
			{name: "sha1 only", header: map[string]string{"X-Hub-Signature-256": "", "X-Hub-Signature": "sha1=0000000000000000000000000000000000000000"}},
		},
	}
}

func TestPresetMeta(t *testing.T) {
	t.Parallel()
	runProviderCase(t, metaEventCase())
}

// TestHandshakeMetaSubscribe: Meta's verification request ("Webhooks",
// "Getting Started", Verification Requests: hub.mode=subscribe,
// hub.challenge=1158201444, hub.verify_token=meatyhamhock) is answered
// with the challenge when the token matches, 403 otherwise.
func TestHandshakeMetaSubscribe(t *testing.T) {
	t.Parallel()
	runHandshakeCase(t, handshakeCase{
		kind:   "meta.subscribe",
		vector: "built per the documentation: Meta for Developers, Webhooks, Getting Started, Verification Requests (the documented query parameters)",
		verify: metaEventCase().verify,
		method: http.MethodGet, target: "/in/p?hub.mode=subscribe&hub.challenge=1158201444&hub.verify_token=meatyhamhock",
		wantContentType: "text/plain; charset=utf-8", wantBody: "1158201444",
		bad: []providerVariant{
			{name: "wrong token", target: "/in/p?hub.mode=subscribe&hub.challenge=1158201444&hub.verify_token=meatyhamhocK"},
			{name: "token prefix", target: "/in/p?hub.mode=subscribe&hub.challenge=1158201444&hub.verify_token=meaty"},
			{name: "no token", target: "/in/p?hub.mode=subscribe&hub.challenge=1158201444"},
			{name: "not subscribe", target: "/in/p?hub.mode=unsubscribe&hub.challenge=1158201444&hub.verify_token=meatyhamhock"},
			{name: "other source's token", verify: "- type: meta\n  secrets: [" + metaTestSecret + "]\n  verify_token: another-token"},
		},
		event: metaEventCase(),
	})
}

// TestHandshakeMetaMethods: a source using meta takes GET for its
// handshake only; another method is a 405 naming both.
func TestHandshakeMetaMethods(t *testing.T) {
	t.Parallel()
	h := providerHarness(t, metaEventCase().verify, time.Time{})
	a := send(t, h.srv, http.MethodGet, "/in/p?x=1", nil, nil)
	wantError(t, a, http.StatusMethodNotAllowed, "method_not_allowed")
	a = send(t, h.srv, http.MethodPut, "/in/p?hub.mode=subscribe&hub.challenge=1&hub.verify_token=meatyhamhock", nil, nil)
	wantError(t, a, http.StatusMethodNotAllowed, "method_not_allowed")
	if got := a.header.Get("Allow"); got != "POST, GET" {
		t.Errorf("Allow: got %q, want POST, GET", got)
	}
	a = send(t, h.srv, http.MethodGet, "/in/p?hub.mode=subscribe&hub.verify_token=meatyhamhock", nil, nil)
	wantError(t, a, http.StatusBadRequest, "invalid")
	h.wantCount(t, 0)
}

// Zoom.

const zoomTestSecret = "zoom-secret-token-0123456789abcdef"

// zoomSigned returns the headers of a request Zoom signs at ts ("Using
// webhooks", Verify webhook events: x-zm-signature "v0=" + hex
// HMAC-SHA256 of "v0:{timestamp}:{body}").
func zoomSigned(secret, body string, ts int64) map[string]string {
	s := strconv.FormatInt(ts, 10)
	return map[string]string{
		"Content-Type":           "application/json",
		"x-zm-request-timestamp": s,
		"x-zm-signature":         "v0=" + shakeHMAC(secret, "v0:", s, ":", body),
	}
}

// zoomNow is the event_ts of Zoom's endpoint.url_validation example.
var zoomNow = time.UnixMilli(1654503849680)

// zoomEventCase is a meeting.started event, signed at zoomNow.
func zoomEventCase() providerCase {
	body := `{"event":"meeting.started","event_ts":1654503849680,"payload":{"account_id":"AAAAAABBBB","object":{"id":"1234567890","uuid":"4444AAAiAAAAAiAiAiiAii==","host_id":"x1yCzABCDEfg23HiJKl4mN","topic":"My Meeting","type":2,"start_time":"2022-06-06T08:24:09Z","timezone":"America/Los_Angeles","duration":60}}}`
	return providerCase{
		preset: "zoom",
		vector: "built per the documentation: Zoom, Using webhooks, Verify webhook events (a meeting.started event of the documented shape, signed in the test by that scheme)",
		verify: "- type: zoom\n  secrets: [" + zoomTestSecret + "]",
		now:    zoomNow,
		header: zoomSigned(zoomTestSecret, body, zoomNow.Unix()),
		body:   body, wantType: "meeting.started", wantTime: zoomNow,
		bad: []providerVariant{
			changedBody(body),
			wrongSecret("- type: zoom\n  secrets: [zoom-secret-token-0123456789abcdeF]"),
			{name: "stale", header: zoomSigned(zoomTestSecret, body, zoomNow.Unix()-3600)},
		},
	}
}

func TestPresetZoom(t *testing.T) {
	t.Parallel()
	runProviderCase(t, zoomEventCase())
}

// TestHandshakeZoomURLValidation: Zoom's endpoint.url_validation ("Using
// webhooks", Validate your webhook endpoint, with that section's example
// request) is answered with plainToken and encryptedToken, the hex
// HMAC-SHA256 of plainToken with the secret token, after the signature
// check.
func TestHandshakeZoomURLValidation(t *testing.T) {
	t.Parallel()
	body := `{"payload":{"plainToken":"qgg8vlvZRS6UYooatFL8Aw"},"event_ts":1654503849680,"event":"endpoint.url_validation"}`
	want := `{"plainToken":"qgg8vlvZRS6UYooatFL8Aw","encryptedToken":"` + shakeHMAC(zoomTestSecret, "qgg8vlvZRS6UYooatFL8Aw") + `"}`
	c := handshakeCase{
		kind:   "zoom.url_validation",
		vector: "built per the documentation: Zoom, Using webhooks, Validate your webhook endpoint (the documented request shape, signed in the test)",
		verify: zoomEventCase().verify,
		now:    zoomNow,
		header: zoomSigned(zoomTestSecret, body, zoomNow.Unix()),
		body:   body, wantContentType: "application/json", wantBody: want,
		bad: []providerVariant{
			changedBody(body),
			{name: "unsigned", header: map[string]string{"x-zm-signature": ""}},
			{name: "stale", header: zoomSigned(zoomTestSecret, body, zoomNow.Unix()-3600)},
			wrongSecret("- type: zoom\n  secrets: [zoom-secret-token-0123456789abcdeF]"),
		},
		event: zoomEventCase(),
	}
	runHandshakeCase(t, c)

	// With two secret tokens (a rotation), the answer uses the one that
	// signed the request.
	c.verify = "- type: zoom\n  secrets: [old-secret-token-0123456789abcdef, " + zoomTestSecret + "]"
	c.bad = c.bad[:3]
	runHandshakeCase(t, c)
}

// Twitch.

const twitchTestSecret = "s3cRe7-twitch-eventsub-secret"

// twitchSigned returns Twitch's headers for a message ("Handling Webhook
// Events", Verifying the event message: "sha256=" + hex HMAC-SHA256 of
// message id + timestamp + body).
func twitchSigned(secret, msgType, id, ts, body string) map[string]string {
	return map[string]string{
		"Content-Type":                         "application/json",
		"Twitch-Eventsub-Message-Id":           id,
		"Twitch-Eventsub-Message-Retry":        "0",
		"Twitch-Eventsub-Message-Type":         msgType,
		"Twitch-Eventsub-Message-Signature":    "sha256=" + shakeHMAC(secret, id, ts, body),
		"Twitch-Eventsub-Message-Timestamp":    ts,
		"Twitch-Eventsub-Subscription-Type":    "channel.follow",
		"Twitch-Eventsub-Subscription-Version": "1",
	}
}

// twitchNow is the time of Twitch's examples.
var twitchNow = time.Date(2019, 11, 16, 10, 11, 12, 634234626, time.UTC)

// twitchEventCase is the channel.follow notification of Twitch's
// "Handling Webhook Events", Processing an event.
func twitchEventCase() providerCase {
	body := `{"subscription":{"id":"f1c2a387-161a-49f9-a165-0f21d7a4e1c4","status":"enabled","type":"channel.follow","version":"1","cost":1,"condition":{"broadcaster_user_id":"12826"},"transport":{"method":"webhook","callback":"https://example.com/webhooks/callback"},"created_at":"2019-11-16T10:11:12.634234626Z"},"event":{"user_id":"1337","user_login":"awesome_user","user_name":"Awesome_User","broadcaster_user_id":"12826","broadcaster_user_login":"twitch","broadcaster_user_name":"Twitch","followed_at":"2020-07-15T18:16:11.17106713Z"}}`
	const id, ts = "befa7b53-d79d-478f-86b9-120f112b044e", "2019-11-16T10:11:12.464757833Z"
	return providerCase{
		preset: "twitch",
		vector: "built per the documentation: Twitch, EventSub, Handling Webhook Events (a notification of the documented shape, signed in the test as Verifying the event message describes)",
		verify: "- type: twitch\n  secrets: [" + twitchTestSecret + "]",
		now:    twitchNow,
		header: twitchSigned(twitchTestSecret, "notification", id, ts, body),
		body:   body, wantID: id, wantType: "channel.follow",
		wantTime: time.Date(2019, 11, 16, 10, 11, 12, 464757000, time.UTC),
		bad: []providerVariant{
			changedBody(body),
			wrongSecret("- type: twitch\n  secrets: [s3cRe7-twitch-eventsub-secreT]"),
			{name: "other message id", header: map[string]string{"Twitch-Eventsub-Message-Id": "befa7b53-d79d-478f-86b9-120f112b044f"}},
			{name: "stale", header: twitchSigned(twitchTestSecret, "notification", id, "2019-11-16T09:11:12Z", body)},
		},
	}
}

func TestPresetTwitch(t *testing.T) {
	t.Parallel()
	runProviderCase(t, twitchEventCase())
}

// TestHandshakeTwitchCallbackVerification: Twitch's
// webhook_callback_verification ("Handling Webhook Events", Responding to
// a challenge request, its example) is answered with the challenge as
// text/plain, after the signature check.
func TestHandshakeTwitchCallbackVerification(t *testing.T) {
	t.Parallel()
	body := `{"challenge":"pogchamp-kappa-360noscope-vohiyo","subscription":{"id":"f1c2a387-161a-49f9-a165-0f21d7a4e1c4","status":"webhook_callback_verification_pending","type":"channel.follow","version":"1","cost":1,"condition":{"broadcaster_user_id":"12826"},"transport":{"method":"webhook","callback":"https://example.com/webhooks/callback"},"created_at":"2019-11-16T10:11:12.634234626Z"}}`
	const id, ts = "e76c6bd4-55c9-4987-8304-da1588d8988b", "2019-11-16T10:11:12.634234626Z"
	runHandshakeCase(t, handshakeCase{
		kind:   "twitch.webhook_callback_verification",
		vector: "built per the documentation: Twitch, EventSub, Handling Webhook Events, Responding to a challenge request (the documented request shape, signed in the test)",
		verify: twitchEventCase().verify,
		now:    twitchNow,
		header: twitchSigned(twitchTestSecret, "webhook_callback_verification", id, ts, body),
		body:   body, wantContentType: "text/plain; charset=utf-8", wantBody: "pogchamp-kappa-360noscope-vohiyo",
		bad: []providerVariant{
			changedBody(body),
			{name: "unsigned", header: map[string]string{"Twitch-Eventsub-Message-Signature": ""}},
			{name: "other message id", header: map[string]string{"Twitch-Eventsub-Message-Id": "e76c6bd4-55c9-4987-8304-da1588d8988c"}},
			wrongSecret("- type: twitch\n  secrets: [s3cRe7-twitch-eventsub-secreT]"),
		},
		event: twitchEventCase(),
	})
}

// Discord.

// discordKey is the test application's key; Discord publishes no vector.
var discordKey = ed25519.NewKeyFromSeed(bytes.Repeat([]byte{0x5d}, ed25519.SeedSize))

// discordSigned returns the headers of an interaction Discord signs with
// key at ts, after checking that discordgo.VerifyInteraction accepts them.
func discordSigned(t *testing.T, key ed25519.PrivateKey, body string, ts int64) map[string]string {
	t.Helper()
	s := strconv.FormatInt(ts, 10)
	hdr := map[string]string{
		"Content-Type":          "application/json",
		"X-Signature-Timestamp": s,
		"X-Signature-Ed25519":   hex.EncodeToString(ed25519.Sign(key, []byte(s+body))),
	}
	r := httptest.NewRequest(http.MethodPost, "/", strings.NewReader(body))
	r.Header = providerHeader(hdr, nil)
	if !discordgo.VerifyInteraction(r, discordKey.Public().(ed25519.PublicKey)) && key.Equal(discordKey) {
		t.Fatal("discordgo.VerifyInteraction refuses the test's signature")
	}
	return hdr
}

var discordNow = time.Unix(1717171717, 0)

func discordVerify() string {
	return "- type: discord\n  public_keys: [" + hex.EncodeToString(discordKey.Public().(ed25519.PublicKey)) + "]"
}

// discordEventCase is an APPLICATION_COMMAND interaction, read by
// discordgo as such.
func discordEventCase(t *testing.T) providerCase {
	body := `{"id":"1250000000000000001","application_id":"1240000000000000000","type":2,"token":"aW50ZXJhY3Rpb24tdG9rZW4","version":1,"guild_id":"1230000000000000000","channel_id":"1230000000000000001","data":{"id":"1240000000000000009","name":"ping","type":1},"member":{"user":{"id":"80351110224678912","username":"nelly"},"roles":[]}}`
	var in discordgo.Interaction
	if err := json.Unmarshal([]byte(body), &in); err != nil || in.Type != discordgo.InteractionApplicationCommand || in.ApplicationCommandData().Name != "ping" {
		t.Fatalf("discordgo reads the interaction as %v (%v), want an application command", in.Type, err)
	}
	other := ed25519.NewKeyFromSeed(bytes.Repeat([]byte{0x5e}, ed25519.SeedSize))
	return providerCase{
		preset: "discord",
		vector: "SDK: github.com/bwmarrin/discordgo v0.28.1, VerifyInteraction accepts the signature and Interaction reads an application command",
		verify: discordVerify(),
		now:    discordNow,
		header: discordSigned(t, discordKey, body, discordNow.Unix()),
		body:   body, wantID: "1250000000000000001", wantType: "2", wantTime: discordNow,
		bad: []providerVariant{
			changedBody(body),
			{name: "other key", header: discordSigned(t, other, body, discordNow.Unix())},
			{name: "stale", header: discordSigned(t, discordKey, body, discordNow.Unix()-3600)},
			wrongSecret("- type: discord\n  public_keys: [" + hex.EncodeToString(other.Public().(ed25519.PublicKey)) + "]"),
		},
	}
}

func TestPresetDiscord(t *testing.T) {
	t.Parallel()
	runProviderCase(t, discordEventCase(t))
}

// TestHandshakeDiscordPing: Discord's PING ("Receiving and Responding to
// Interactions", Receiving an Interaction) is answered with a PONG,
// {"type":1} as application/json, after the signature check; the
// requests with bad signatures Discord sends to test an endpoint are
// refused with 401.
func TestHandshakeDiscordPing(t *testing.T) {
	t.Parallel()
	body := `{"id":"1250000000000000000","application_id":"1240000000000000000","type":1,"token":"cGluZy10b2tlbg","version":1}`
	var in discordgo.Interaction
	if err := json.Unmarshal([]byte(body), &in); err != nil || in.Type != discordgo.InteractionPing {
		t.Fatalf("discordgo reads the PING as %v (%v)", in.Type, err)
	}
	other := ed25519.NewKeyFromSeed(bytes.Repeat([]byte{0x5e}, ed25519.SeedSize))
	runHandshakeCase(t, handshakeCase{
		kind:   "discord.ping",
		vector: "SDK: github.com/bwmarrin/discordgo v0.28.1 InteractionPing and InteractionResponsePong, VerifyInteraction",
		verify: discordVerify(),
		now:    discordNow,
		header: discordSigned(t, discordKey, body, discordNow.Unix()),
		body:   body, wantContentType: "application/json", wantBody: `{"type":1}`,
		check: func(t *testing.T, b []byte) {
			var r discordgo.InteractionResponse
			if err := json.Unmarshal(b, &r); err != nil || r.Type != discordgo.InteractionResponsePong {
				t.Errorf("discordgo reads the answer as %v (%v), want a PONG", r.Type, err)
			}
		},
		bad: []providerVariant{
			changedBody(body),
			{name: "unsigned", header: map[string]string{"X-Signature-Ed25519": ""}},
			{name: "other key", header: discordSigned(t, other, body, discordNow.Unix())},
			{name: "signature not hex", header: map[string]string{"X-Signature-Ed25519": "zz"}},
		},
		event: discordEventCase(t),
	})
}

// TestDiscordDeferredResponse: Discord needs an interaction response to
// each interaction; a source answering DEFERRED_CHANNEL_MESSAGE_WITH_SOURCE
// ({"type":5}) still answers the PING with a PONG.
func TestDiscordDeferredResponse(t *testing.T) {
	t.Parallel()
	pub := hex.EncodeToString(discordKey.Public().(ed25519.PublicKey))
	cfg := parseSources(t, `
  - name: p
    verify: [{type: discord, public_keys: [`+pub+`]}]
    response: {body: '{"type":5}', content_type: application/json}
`)
	h := newHarnessWith(t, cfg, func(o *ingest.Options) { o.Now = func() time.Time { return discordNow } })
	ping := `{"id":"1250000000000000000","application_id":"1240000000000000000","type":1,"token":"cGluZy10b2tlbg","version":1}`
	a := send(t, h.srv, http.MethodPost, "/in/p", strings.NewReader(ping), providerHeader(discordSigned(t, discordKey, ping, discordNow.Unix()), nil))
	if a.status != http.StatusOK || string(a.body) != `{"type":1}` {
		t.Errorf("PING: got %d %s, want 200 {\"type\":1}", a.status, a.body)
	}
	e := discordEventCase(t)
	a = send(t, h.srv, http.MethodPost, "/in/p", strings.NewReader(e.body), providerHeader(e.header, nil))
	var r discordgo.InteractionResponse
	if err := json.Unmarshal(a.body, &r); a.status != http.StatusOK || err != nil || r.Type != discordgo.InteractionResponseDeferredChannelMessageWithSource {
		t.Errorf("command: got %d %s, want 200 and a deferred channel message response", a.status, a.body)
	}
	h.wantCount(t, 1)
}
