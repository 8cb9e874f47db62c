package verify

import (
	"context"
	"net/http"
	"time"

	"hookd/internal/config"
)

// The twitch preset (EventSub over webhooks): Twitch signs every message
// with Twitch-Eventsub-Message-Signature, "sha256=" + hex HMAC-SHA256 of
// Twitch-Eventsub-Message-Id + Twitch-Eventsub-Message-Timestamp + body
// with the subscription's secret. A new subscription first sends a signed
// message of type webhook_callback_verification carrying a challenge,
// which hookd answers as text/plain.

func init() {
	RegisterPreset("twitch", newTwitch, config.EventRules{
		ID:        "header:Twitch-Eventsub-Message-Id",
		Type:      "header:Twitch-Eventsub-Subscription-Type",
		Timestamp: "header:Twitch-Eventsub-Message-Timestamp"})
}

// twitchTolerance is the twitch preset's default tolerance: Twitch asks
// receivers to refuse messages older than 10 minutes.
const twitchTolerance = 10 * time.Minute

// twitchVerifier is the twitch preset: the signature and the callback
// verification.
type twitchVerifier struct {
	*sigVerifier
}

func newTwitch(env *Env, m config.Verify) (Verifier, error) {
	var p presetTimestampedOptions
	if err := m.Decode(&p); err != nil {
		return nil, err
	}
	if p.Tolerance == nil {
		d := config.Duration(twitchTolerance)
		p.Tolerance = &d
	}
	v, err := sigBuildMAC(env, "twitch", &sigOptions{
		Algorithm: "sha256", Secrets: p.Secrets,
		Signature: "header:Twitch-Eventsub-Message-Signature", Prefix: "sha256=",
		Timestamp: "header:Twitch-Eventsub-Message-Timestamp", Tolerance: p.Tolerance,
		ID:     "header:Twitch-Eventsub-Message-Id",
		Signed: "{id}{timestamp}{body}", Encoding: sigEncHex,
	})
	if err != nil {
		return nil, err
	}
	return &twitchVerifier{v}, nil
}

// DetectHandshake recognises a webhook_callback_verification message.
func (v *twitchVerifier) DetectHandshake(r *Request) (HandshakeKind, bool) {
	if r.Method != http.MethodPost || r.Header.Get("Twitch-Eventsub-Message-Type") != "webhook_callback_verification" {
		return HandshakeKind{}, false
	}
	return HandshakeKind{Name: "twitch.webhook_callback_verification", Signed: true}, true
}

// AnswerHandshake answers the challenge as text/plain.
func (v *twitchVerifier) AnswerHandshake(_ context.Context, r *Request) (*HandshakeAnswer, error) {
	c, _ := handshakeJSONString(r, "", "challenge")
	return handshakeText(c)
}

// HandshakeMethods: Twitch's handshake is a POST.
func (v *twitchVerifier) HandshakeMethods() []string { return nil }
