package verify

import (
	"context"
	"net/http"
	"testing"
	"time"
)

func twitchReq(secret, msgType, ts, body string) *Request {
	const id = "e76c6bd4-55c9-4987-8304-da1588d8988b"
	return shakeReq(http.MethodPost, "", body,
		"Twitch-Eventsub-Message-Id", id, "Twitch-Eventsub-Message-Timestamp", ts,
		"Twitch-Eventsub-Message-Type", msgType,
		"Twitch-Eventsub-Message-Signature", "sha256="+shakeMAC(secret, id, ts, body))
}

// TestTwitchTolerance: Twitch asks receivers to refuse messages older
// than 10 minutes, the preset's default; tolerance changes it.
func TestTwitchTolerance(t *testing.T) {
	t.Parallel()
	const secret = "twitch-secret-0123456789"
	body := `{"challenge":"c"}`
	for _, c := range []struct {
		name      string
		tolerance string
		age       time.Duration
		ok        bool
	}{
		{"Default9m", "", 9 * time.Minute, true},
		{"Default11m", "", 11 * time.Minute, false},
		{"Future11m", "", -11 * time.Minute, false},
		{"Set1m", "1m", 2 * time.Minute, false},
		{"Set1h", "1h", 30 * time.Minute, true},
	} {
		t.Run(c.name, func(t *testing.T) {
			opts := map[string]any{"secrets": []any{secret}}
			if c.tolerance != "" {
				opts["tolerance"] = c.tolerance
			}
			v := sigMustBuild(t, "twitch", opts, sigClock(sigT0))
			err := v.Verify(context.Background(), twitchReq(secret, "notification", sigT0.Add(-c.age).Format(time.RFC3339Nano), body))
			if (err == nil) != c.ok {
				t.Errorf("got %v, want ok %v", err, c.ok)
			}
		})
	}
}

func TestTwitchHandshake(t *testing.T) {
	t.Parallel()
	h := shakeHandshaker(t, "twitch", map[string]any{"secrets": []any{"twitch-secret-0123456789"}})
	ts := sigT0.Format(time.RFC3339Nano)
	r := twitchReq("twitch-secret-0123456789", "webhook_callback_verification", ts, `{"challenge":"pogchamp-kappa-360noscope-vohiyo"}`)
	if k, ok := h.DetectHandshake(r); !ok || k.Name != "twitch.webhook_callback_verification" || !k.Signed {
		t.Fatalf("detect: got %+v %v", k, ok)
	}
	a, err := h.AnswerHandshake(context.Background(), r)
	if err != nil || string(a.Body) != "pogchamp-kappa-360noscope-vohiyo" || a.ContentType != "text/plain; charset=utf-8" {
		t.Errorf("answer: got %+v, %v", a, err)
	}
	for _, typ := range []string{"notification", "revocation", "Webhook_Callback_Verification"} {
		if _, ok := h.DetectHandshake(twitchReq("x", typ, ts, `{"challenge":"c"}`)); ok {
			t.Errorf("%s: detected, want not a handshake", typ)
		}
	}
	if _, err := h.AnswerHandshake(context.Background(), twitchReq("x", "webhook_callback_verification", ts, `{}`)); shakeStatus(err) != "invalid" {
		t.Errorf("no challenge: got %v, want invalid", err)
	}
}
