package verify

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"slices"
	"strings"
	"unicode/utf8"

	"github.com/tidwall/gjson"

	"hookd"
	"hookd/internal/jsonlimit"
)

// A handshake is a request a provider sends to prove that an endpoint is
// willing to receive its events (Slack's url_verification, Meta's GET
// hub.challenge, SNS's SubscriptionConfirmation…). hookd answers it as the
// provider documents and never stores it as an event.
//
// Ingest asks each verifier of a source's chain that implements Handshaker
// whether a request is its handshake (DetectHandshake, cheap, no I/O). For
// the first that says yes:
//
//   - a signed handshake (HandshakeKind.Signed) must pass the whole chain,
//     exactly like an event, before AnswerHandshake is called;
//   - an unsigned one (a GET carrying a verify token, a POST carrying a
//     validation token) is checked by AnswerHandshake itself, and only the
//     chain's verifiers that implement HandshakeGuard (ip_allow) run first.
//
// AnswerHandshake returns the answer; a failure is a *hookd.Error like a
// verification failure (403 for a wrong verify token).

// HandshakeKind describes a request a Handshaker recognised.
type HandshakeKind struct {
	// Name identifies the handshake in logs, metrics and the source's
	// last handshake, such as "slack.url_verification".
	Name string
	// Signed: the handshake carries the provider's signature, so the
	// whole chain must pass before it is answered.
	Signed bool
}

// HandshakeAnswer is hookd's answer to a handshake.
type HandshakeAnswer struct {
	// Status is the answer's status; 0 is 200.
	Status int
	// ContentType of Body; empty with an empty Body.
	ContentType string
	// Header holds further headers (X-Content-Type-Options…).
	Header http.Header
	// Body is written as is.
	Body []byte
}

// Handshaker is implemented by verifiers of providers that send handshakes.
type Handshaker interface {
	// DetectHandshake reports whether r is one of the provider's
	// handshakes; it does no I/O and must not trust r.
	DetectHandshake(r *Request) (HandshakeKind, bool)
	// AnswerHandshake answers a request DetectHandshake recognised (after
	// the chain passed, for a signed one).
	AnswerHandshake(ctx context.Context, r *Request) (*HandshakeAnswer, error)
	// HandshakeMethods lists the methods other than POST its handshakes
	// use (GET for Meta, Dropbox, Okta); ingest answers 405 to any other.
	HandshakeMethods() []string
}

// HandshakeGuard is implemented by verifiers that also apply to unsigned
// handshakes (ip_allow): they run before such a handshake is answered.
type HandshakeGuard interface {
	GuardsHandshakes() bool
}

// Handshake returns the first verifier of the chain that recognises r as
// its handshake, and what it recognised.
func (c Chain) Handshake(r *Request) (Handshaker, HandshakeKind, bool) {
	for _, v := range c {
		if h, ok := v.(Handshaker); ok {
			if k, ok := h.DetectHandshake(r); ok {
				return h, k, true
			}
		}
	}
	return nil, HandshakeKind{}, false
}

// VerifyGuards runs the chain's verifiers that apply to unsigned
// handshakes.
func (c Chain) VerifyGuards(ctx context.Context, r *Request) error {
	for _, v := range c {
		if g, ok := v.(HandshakeGuard); ok && g.GuardsHandshakes() {
			if err := v.Verify(ctx, r); err != nil {
				return err
			}
		}
	}
	return nil
}

// HandshakeMethods lists the methods other than POST the chain's
// handshakes use.
func (c Chain) HandshakeMethods() []string {
	var out []string
	for _, v := range c {
		if h, ok := v.(Handshaker); ok {
			for _, m := range h.HandshakeMethods() {
				if !slices.Contains(out, m) {
					out = append(out, m)
				}
			}
		}
	}
	return out
}

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
