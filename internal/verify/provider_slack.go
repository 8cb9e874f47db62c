package verify

import (
	"context"
	"net/http"

	"hookd/internal/config"
)

// The slack preset: Slack signs every request (Events API, slash
// commands, interactivity) with X-Slack-Signature, "v0=" + hex
// HMAC-SHA256 of "v0:{X-Slack-Request-Timestamp}:{body}" with the app's
// signing secret. When a Request URL is set, the Events API sends a
// signed url_verification, {"type":"url_verification","challenge":…},
// which hookd answers with the challenge as text/plain.

// slackVerifier is the slack preset: the signature and the
// url_verification handshake.
type slackVerifier struct {
	*sigVerifier
}

// newSlack verifies X-Slack-Signature: "v0=" + hex HMAC-SHA256 of
// "v0:{X-Slack-Request-Timestamp}:{body}".
func newSlack(env *Env, m config.Verify) (Verifier, error) {
	var p presetTimestampedOptions
	if err := m.Decode(&p); err != nil {
		return nil, err
	}
	v, err := sigBuildMAC(env, "slack", &sigOptions{
		Algorithm: "sha256", Secrets: p.Secrets,
		Signature: "header:X-Slack-Signature", Prefix: "v0=",
		Timestamp: "header:X-Slack-Request-Timestamp", Tolerance: p.Tolerance,
		Signed: "v0:{timestamp}:{body}", Encoding: sigEncHex,
	})
	if err != nil {
		return nil, err
	}
	return &slackVerifier{v}, nil
}

// DetectHandshake recognises the Events API's url_verification.
func (v *slackVerifier) DetectHandshake(r *Request) (HandshakeKind, bool) {
	if r.Method != http.MethodPost {
		return HandshakeKind{}, false
	}
	if s, ok := handshakeJSONString(r, "url_verification", "type"); !ok || s != "url_verification" {
		return HandshakeKind{}, false
	}
	return HandshakeKind{Name: "slack.url_verification", Signed: true}, true
}

// AnswerHandshake answers the challenge as text/plain, the first of the
// forms Slack accepts.
func (v *slackVerifier) AnswerHandshake(_ context.Context, r *Request) (*HandshakeAnswer, error) {
	c, _ := handshakeJSONString(r, "", "challenge")
	return handshakeText(c)
}

// HandshakeMethods: Slack's handshake is a POST.
func (v *slackVerifier) HandshakeMethods() []string { return nil }

// sigBase returns the signature verifier a preset is built on; presets
// that embed one (and answer a handshake besides) get it by promotion.
func (v *sigVerifier) sigBase() *sigVerifier { return v }
