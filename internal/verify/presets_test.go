package verify

import (
	"context"
	"crypto/ed25519"
	"crypto/sha1"
	"crypto/sha256"
	"encoding/base64"
	"net/http"
	"strings"
	"testing"
	"time"

	"hookd"
)

// TestPublishedVectors verifies the examples the providers publish, with
// the clock set to the example's own timestamp.
func TestPublishedVectors(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		name   string
		typ    string
		opts   map[string]any
		now    time.Time
		body   string
		header map[string]string
	}{
		{
			// Standard Webhooks specification, "Verifying webhook signatures".
			name: "StandardWebhooks",
			typ:  "standard_webhooks",
			opts: map[string]any{"secrets": []any{"whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"}},
			now:  time.Unix(1614265330, 0),
			body: `{"test": 2432232314}`,
			header: map[string]string{
				"webhook-id":        "msg_p5jXN8AQM9LWM0D4loKWxJek",
				"webhook-timestamp": "1614265330",
				"webhook-signature": "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=",
			},
		},
		{
			// GitHub, "Validating webhook deliveries", testing the signature.
			name:   "GitHub",
			typ:    "github",
			opts:   map[string]any{"secrets": []any{"It's a Secret to Everybody"}},
			now:    sigT0,
			body:   "Hello, World!",
			header: map[string]string{"X-Hub-Signature-256": "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17"},
		},
		{
			// Slack, "Verifying requests from Slack", the worked example.
			name: "Slack",
			typ:  "slack",
			opts: map[string]any{"secrets": []any{"8f742231b10e8888abcd99yyyzzz85a5"}},
			now:  time.Unix(1531420618, 0),
			body: "token=xyzz0WbapA4vBCDEFasx0q6G&team_id=T1DC2JH3J&team_domain=testteamnow&channel_id=G8PSS9T3V&channel_name=foobar&user_id=U2CERLKJA&user_name=roadrunner&command=%2Fwebhook-collect&text=&response_url=https%3A%2F%2Fhooks.slack.com%2Fcommands%2FT1DC2JH3J%2F397700885554%2F96rGlfmibIGlgcZRskXaIFfN&trigger_id=398738663015.47445629121.803a0bc887a14d10d2c447fce8b6703c",
			header: map[string]string{
				"X-Slack-Request-Timestamp": "1531420618",
				"X-Slack-Signature":         "v0=a2114d57b48eac39b9ad189dd8316235a7b4a8d21a10bd27519666489c69b503",
			},
		},
		{
			// Stripe documents the scheme (HMAC-SHA256 of "{t}.{body}" with
			// the endpoint secret, hex in v1) but publishes no vector with
			// its secret. This v1 was computed independently, with Python's
			// hmac module, from that documented scheme; it is not a value
			// published by Stripe. The v0 entry is the one of Stripe's
			// example header and must be ignored.
			name: "StripeComputed",
			typ:  "stripe",
			opts: map[string]any{"secrets": []any{"whsec_test_secret"}},
			now:  time.Unix(1492774577, 0),
			body: `{"id": "evt_test_webhook", "object": "event"}`,
			header: map[string]string{"Stripe-Signature": "t=1492774577," +
				"v1=c137b1b62277d523cf8fed4dfbd0170a9a5b8a380e00cc3711d4bf0652f2ce7a," +
				"v0=6ffbb59b2300aae63f272406069a9788598b792a944a07aba816edb039989a39"},
		},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			v := sigMustBuild(t, c.typ, c.opts, sigClock(c.now))
			if err := v.Verify(context.Background(), sigHeaderRequest([]byte(c.body), c.header)); err != nil {
				t.Fatalf("published example: got %v, want accepted", err)
			}
			// The same example is refused one bit off, and an hour later.
			if err := v.Verify(context.Background(), sigHeaderRequest(sigFlip([]byte(c.body+"abc")), c.header)); err == nil {
				t.Fatalf("tampered body accepted")
			}
			late := sigMustBuild(t, c.typ, c.opts, sigClock(c.now.Add(time.Hour)))
			err := late.Verify(context.Background(), sigHeaderRequest([]byte(c.body), c.header))
			if c.typ == "github" {
				if err != nil {
					t.Fatalf("github signatures carry no timestamp: got %v, want accepted", err)
				}
				return
			}
			if hookd.ErrorMessage(err) != "timestamp outside tolerance" {
				t.Fatalf("an hour later: got %v, want timestamp outside tolerance", err)
			}
		})
	}
}

func sigWhsec(s string) string { return "whsec_" + base64.StdEncoding.EncodeToString([]byte(s)) }

func sigStandardRequest(prefix string) func(signed []byte, toks []string, ts time.Time) *Request {
	return func(signed []byte, toks []string, ts time.Time) *Request {
		return sigHeaderRequest(signed, map[string]string{
			prefix + "id": "msg_2", prefix + "timestamp": sigTS(ts), prefix + "signature": strings.Join(toks, " "),
		})
	}
}

func TestPresetMatrix(t *testing.T) {
	t.Parallel()
	k := sigTestKeys()
	whsecs := make([]any, len(sigSecrets))
	for i, s := range sigSecrets {
		whsecs[i] = sigWhsec(s)
	}
	whpks := make([]string, 3)
	for i := range whpks {
		whpks[i] = "whpk_" + base64.StdEncoding.EncodeToString(k.ed25519[i].Public().(ed25519.PublicKey))
	}
	fixtures := []sigFixture{
		{
			name: "StandardWebhooksV1",
			build: func(t *testing.T, keys []int, now func() time.Time) Verifier {
				secrets := make([]any, len(keys))
				for i, j := range keys {
					secrets[i] = whsecs[j]
				}
				return sigMustBuild(t, "standard_webhooks", map[string]any{"secrets": secrets}, now)
			},
			sign: func(t *testing.T, key int, signed []byte, ts time.Time) string {
				return "v1," + sigB64(sigMAC(sha256.New, []byte(sigSecrets[key]), []byte("msg_2."+sigTS(ts)+"."+string(signed))))
			},
			request:     sigStandardRequest("webhook-"),
			timestamped: true,
		},
		{
			name: "StandardWebhooksV1aSvixHeaders",
			build: func(t *testing.T, keys []int, now func() time.Time) Verifier {
				return sigMustBuild(t, "standard_webhooks", map[string]any{"public_keys": sigPick(whpks, keys), "header_prefix": "svix-"}, now)
			},
			sign: func(t *testing.T, key int, signed []byte, ts time.Time) string {
				return "v1a," + sigB64(ed25519.Sign(k.ed25519[key], []byte("msg_2."+sigTS(ts)+"."+string(signed))))
			},
			request:     sigStandardRequest("svix-"),
			timestamped: true,
		},
		sigMACFixture("GitHub", "github", nil,
			func(secret, signed []byte, _ time.Time) []byte { return sigMAC(sha256.New, secret, signed) },
			func(b []byte) string { return "sha256=" + sigHex(b) },
			func(signed []byte, toks []string, _ time.Time) *Request {
				return sigHeaderRequest(signed, map[string]string{"X-Hub-Signature-256": strings.Join(toks, ",")})
			}, true, false),
		sigMACFixture("GitHubLegacySHA1", "github", map[string]any{"legacy_sha1": true},
			func(secret, signed []byte, _ time.Time) []byte { return sigMAC(sha1.New, secret, signed) },
			func(b []byte) string { return "sha1=" + sigHex(b) },
			func(signed []byte, toks []string, _ time.Time) *Request {
				return sigHeaderRequest(signed, map[string]string{"X-Hub-Signature": strings.Join(toks, ",")})
			}, true, false),
		sigMACFixture("Stripe", "stripe", nil,
			func(secret, signed []byte, ts time.Time) []byte {
				return sigMAC(sha256.New, secret, []byte(sigTS(ts)+"."+string(signed)))
			},
			func(b []byte) string { return "v1=" + sigHex(b) },
			func(signed []byte, toks []string, ts time.Time) *Request {
				hv := ""
				if len(toks) > 0 {
					hv = "t=" + sigTS(ts) + "," + strings.Join(toks, ",")
				}
				return sigHeaderRequest(signed, map[string]string{"Stripe-Signature": hv})
			}, true, true),
		sigMACFixture("Shopify", "shopify", nil,
			func(secret, signed []byte, _ time.Time) []byte { return sigMAC(sha256.New, secret, signed) },
			sigB64,
			func(signed []byte, toks []string, _ time.Time) *Request {
				return sigHeaderRequest(signed, map[string]string{"X-Shopify-Hmac-Sha256": strings.Join(toks, ",")})
			}, false, false),
		sigMACFixture("Slack", "slack", nil,
			func(secret, signed []byte, ts time.Time) []byte {
				return sigMAC(sha256.New, secret, []byte("v0:"+sigTS(ts)+":"+string(signed)))
			},
			func(b []byte) string { return "v0=" + sigHex(b) },
			func(signed []byte, toks []string, ts time.Time) *Request {
				return sigHeaderRequest(signed, map[string]string{"X-Slack-Signature": strings.Join(toks, ","), "X-Slack-Request-Timestamp": sigTS(ts)})
			}, true, true),
	}
	for _, fx := range fixtures {
		t.Run(fx.name, func(t *testing.T) {
			t.Parallel()
			sigRunMatrix(t, fx)
		})
	}
}

// TestStandardWebhooksMixed checks a source that accepts both v1 (HMAC)
// and v1a (ed25519) signatures, and the headers it needs.
func TestStandardWebhooksMixed(t *testing.T) {
	t.Parallel()
	k := sigTestKeys()
	whpk := "whpk_" + base64.StdEncoding.EncodeToString(k.ed25519[0].Public().(ed25519.PublicKey))
	v := sigMustBuild(t, "standard_webhooks", map[string]any{
		"secrets": []any{sigWhsec(sigSecrets[0])}, "public_keys": []any{whpk}, "tolerance": "1m",
	}, sigClock(sigT0))
	body := []byte(sigMatrixBody)
	signed := []byte("msg_9." + sigTS(sigT0) + "." + sigMatrixBody)
	v1 := "v1," + sigB64(sigMAC(sha256.New, []byte(sigSecrets[0]), signed))
	v1Wrong := "v1," + sigB64(sigMAC(sha256.New, []byte(sigSecrets[2]), signed))
	v1a := "v1a," + sigB64(ed25519.Sign(k.ed25519[0], signed))
	v1aWrong := "v1a," + sigB64(ed25519.Sign(k.ed25519[2], signed))
	req := func(sig, id, ts string) *Request {
		return sigHeaderRequest(body, map[string]string{"webhook-id": id, "webhook-timestamp": ts, "webhook-signature": sig})
	}
	for _, c := range []struct {
		name string
		req  *Request
		want string
	}{
		{"V1", req(v1, "msg_9", sigTS(sigT0)), ""},
		{"V1a", req(v1a, "msg_9", sigTS(sigT0)), ""},
		{"WrongV1ValidV1a", req(v1Wrong+" "+v1a, "msg_9", sigTS(sigT0)), ""},
		{"WrongBoth", req(v1Wrong+" "+v1aWrong, "msg_9", sigTS(sigT0)), "signature mismatch"},
		{"V1aUnderV1Tag", req("v1,"+strings.TrimPrefix(v1a, "v1a,"), "msg_9", sigTS(sigT0)), "signature mismatch"},
		{"UnknownVersionOnly", req("v2,"+strings.TrimPrefix(v1, "v1,"), "msg_9", sigTS(sigT0)), "signature missing"},
		{"OtherID", req(v1, "msg_10", sigTS(sigT0)), "signature mismatch"},
		{"NoID", req(v1, "", sigTS(sigT0)), "signed content missing"},
		{"NoTimestamp", req(v1, "msg_9", ""), "timestamp missing"},
		{"ToleranceOneMinute", req(v1, "msg_9", sigTS(sigT0.Add(-61*time.Second))), "timestamp outside tolerance"},
	} {
		t.Run(c.name, func(t *testing.T) {
			err := v.Verify(context.Background(), c.req)
			if c.want == "" {
				if err != nil {
					t.Fatalf("got %v, want accepted", err)
				}
				return
			}
			if hookd.ErrorCode(err) != hookd.EUnauthorized || hookd.ErrorMessage(err) != c.want {
				t.Fatalf("got %v, want 401 %q", err, c.want)
			}
		})
	}
}

// TestGitHubLegacy checks that X-Hub-Signature counts only with
// legacy_sha1 and only when X-Hub-Signature-256 is absent.
func TestGitHubLegacy(t *testing.T) {
	t.Parallel()
	body := []byte(sigMatrixBody)
	secret := []byte(sigSecrets[0])
	s256 := "sha256=" + sigHex(sigMAC(sha256.New, secret, body))
	s1 := "sha1=" + sigHex(sigMAC(sha1.New, secret, body))
	modern := sigMustBuild(t, "github", map[string]any{"secrets": []any{string(secret)}}, sigClock(sigT0))
	legacy := sigMustBuild(t, "github", map[string]any{"secrets": []any{string(secret)}, "legacy_sha1": true}, sigClock(sigT0))
	for _, c := range []struct {
		name       string
		hdr        map[string]string
		wantModern string
		wantLegacy string
	}{
		{"SHA256", map[string]string{"X-Hub-Signature-256": s256}, "", ""},
		{"SHA1Only", map[string]string{"X-Hub-Signature": s1}, "signature missing", ""},
		{"Both", map[string]string{"X-Hub-Signature-256": s256, "X-Hub-Signature": s1}, "", ""},
		{"BadSHA256GoodSHA1", map[string]string{"X-Hub-Signature-256": "sha256=" + strings.Repeat("0", 64), "X-Hub-Signature": s1}, "signature mismatch", "signature mismatch"},
		{"SHA1InSHA256Header", map[string]string{"X-Hub-Signature-256": s1}, "signature missing", "signature missing"},
		{"None", nil, "signature missing", "signature missing"},
	} {
		t.Run(c.name, func(t *testing.T) {
			for _, v := range []struct {
				v    Verifier
				want string
			}{{modern, c.wantModern}, {legacy, c.wantLegacy}} {
				err := v.v.Verify(context.Background(), sigHeaderRequest(body, c.hdr))
				if v.want == "" && err != nil {
					t.Fatalf("got %v, want accepted", err)
				}
				if v.want != "" && hookd.ErrorMessage(err) != v.want {
					t.Fatalf("got %v, want %q", err, v.want)
				}
			}
		})
	}
}

// TestStripeHeader covers Stripe-Signature details beyond the matrix.
func TestStripeHeader(t *testing.T) {
	t.Parallel()
	body := []byte(sigMatrixBody)
	v := sigMustBuild(t, "stripe", map[string]any{"secrets": []any{"whsec_abc"}, "tolerance": "10m"}, sigClock(sigT0))
	sig := func(ts time.Time) string {
		return sigHex(sigMAC(sha256.New, []byte("whsec_abc"), []byte(sigTS(ts)+"."+sigMatrixBody)))
	}
	ts := sigTS(sigT0)
	for _, c := range []struct {
		name, header, want string
	}{
		{"Spaces", "t=" + ts + ", v1=" + sig(sigT0), ""},
		{"SignatureFirst", "v1=" + sig(sigT0) + ",t=" + ts, ""},
		{"V0Only", "t=" + ts + ",v0=" + sig(sigT0), "signature missing"},
		{"NoTimestamp", "v1=" + sig(sigT0), "timestamp missing"},
		{"TwoTimestamps", "t=" + ts + ",t=" + ts + ",v1=" + sig(sigT0), "timestamp invalid"},
		{"NineMinutesOld", "t=" + sigTS(sigT0.Add(-9*time.Minute)) + ",v1=" + sig(sigT0.Add(-9*time.Minute)), ""},
		{"ElevenMinutesOld", "t=" + sigTS(sigT0.Add(-11*time.Minute)) + ",v1=" + sig(sigT0.Add(-11*time.Minute)), "timestamp outside tolerance"},
		{"TimestampNotSignedOne", "t=" + sigTS(sigT0.Add(time.Second)) + ",v1=" + sig(sigT0), "signature mismatch"},
		{"Garbage", "garbage", "signature missing"},
	} {
		t.Run(c.name, func(t *testing.T) {
			err := v.Verify(context.Background(), sigHeaderRequest(body, map[string]string{"Stripe-Signature": c.header}))
			if c.want == "" && err != nil {
				t.Fatalf("got %v, want accepted", err)
			}
			if c.want != "" && hookd.ErrorMessage(err) != c.want {
				t.Fatalf("got %v, want %q", err, c.want)
			}
		})
	}
	// Several Stripe-Signature lines are read as one list.
	r := sigHeaderRequest(body, nil)
	r.Header = http.Header{"Stripe-Signature": {"t=" + ts, "v1=" + sig(sigT0)}}
	if err := v.Verify(context.Background(), r); err != nil {
		t.Fatalf("two header lines: got %v, want accepted", err)
	}
}

func TestPresetOptionsInvalid(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		typ  string
		opts map[string]any
		want string
	}{
		{"standard_webhooks", map[string]any{}, "secrets or public_keys"},
		{"standard_webhooks", map[string]any{"secrets": []any{"whsec_%%%"}}, "secrets[0]: not valid whsec"},
		{"standard_webhooks", map[string]any{"public_keys": []any{"whpk_AAAA"}}, "public_keys[0]: a whpk_ key"},
		{"standard_webhooks", map[string]any{"secrets": []any{sigWhsec("x")}, "signature": "header:X"}, "unknown key \"signature\""},
		{"github", map[string]any{}, "secrets: at least one"},
		{"github", map[string]any{"secrets": []any{"x"}, "tolerance": "5m"}, "unknown key \"tolerance\""},
		{"stripe", map[string]any{"secrets": []any{""}}, "secrets[0]: empty"},
		{"stripe", map[string]any{"secrets": []any{"x"}, "tolerance": "-1m"}, "tolerance: must be positive"},
		{"shopify", map[string]any{"secrets": []any{"x"}, "algorithm": "sha1"}, "unknown key \"algorithm\""},
		{"slack", map[string]any{}, "secrets: at least one"},
	} {
		_, err := sigTryBuild(c.typ, c.opts, sigClock(sigT0))
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s %v: got %v, want an error containing %q", c.typ, c.opts, err, c.want)
		}
	}
}
