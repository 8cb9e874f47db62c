package verify

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"unicode/utf8"

	"github.com/tidwall/gjson"

	"hookd"
	"hookd/internal/config"
	"hookd/internal/jsonlimit"
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

// handshakeMaxChallenge bounds a challenge hookd echoes. Providers send a
// few dozen characters.
const handshakeMaxChallenge = 1024

// handshakeJSONField returns the value at path of a JSON body; ok is
// false when the body is not a JSON object within the depth limit or the
// field is absent. When marker is set, a body that does not contain it is
// not parsed at all: detection stays cheap for ordinary events.
func handshakeJSONField(r *Request, marker, path string) (gjson.Result, bool) {
	if marker != "" && !bytes.Contains(r.Body, []byte(marker)) {
		return gjson.Result{}, false
	}
	b := bytes.TrimLeft(r.Body, " \t\r\n")
	if len(b) == 0 || b[0] != '{' {
		return gjson.Result{}, false
	}
	// The depth first: gjson's validator recurses once per level.
	if jsonlimit.Check(r.Body, r.MaxJSONDepth) != nil || !gjson.ValidBytes(r.Body) {
		return gjson.Result{}, false
	}
	res := gjson.GetBytes(r.Body, path)
	return res, res.Exists()
}

// handshakeJSONString returns the string at path of a JSON body (see
// handshakeJSONField); ok is false when it is absent or not a string.
func handshakeJSONString(r *Request, marker, path string) (string, bool) {
	res, ok := handshakeJSONField(r, marker, path)
	if !ok || res.Type != gjson.String {
		return "", false
	}
	if strings.IndexByte(res.Raw, '\\') < 0 {
		return res.Str, true
	}
	var s string
	if err := json.Unmarshal([]byte(res.Raw), &s); err != nil {
		return "", false
	}
	return s, true
}

// handshakeChallengeOK reports whether c is a challenge hookd echoes: not
// empty, at most handshakeMaxChallenge bytes of UTF-8 without control
// characters.
func handshakeChallengeOK(c string) bool {
	if c == "" || len(c) > handshakeMaxChallenge || !utf8.ValidString(c) {
		return false
	}
	for _, r := range c {
		if r < 0x20 || r == 0x7f {
			return false
		}
	}
	return true
}

// handshakeText answers challenge c as text/plain, telling browsers not
// to sniff the echoed content; a challenge hookd would not echo is a 400.
func handshakeText(c string) (*HandshakeAnswer, error) {
	if !handshakeChallengeOK(c) {
		return nil, hookd.Errorf(hookd.EInvalid, "the handshake's challenge is missing or invalid")
	}
	return &HandshakeAnswer{
		ContentType: "text/plain; charset=utf-8",
		Header:      http.Header{"X-Content-Type-Options": {"nosniff"}},
		Body:        []byte(c),
	}, nil
}

// handshakeJSON answers v encoded as JSON.
func handshakeJSON(v any) (*HandshakeAnswer, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return nil, &hookd.Error{Code: hookd.EInternal, Message: "encode the handshake's answer", Err: err}
	}
	return &HandshakeAnswer{ContentType: "application/json", Body: b}, nil
}
