package verify

import (
	"context"
	"net/http"

	"github.com/tidwall/gjson"

	"hookd/internal/config"
	"hookd/internal/jsonlimit"
)

// xero verifies x-xero-signature: base64 HMAC-SHA256 of the body with the
// webhook key. Its "intent to receive" check is a series of signed
// deliveries with an empty events list: Xero wants 200 for each one whose
// signature is right and 401 for each one whose signature is wrong, with
// no body. hookd answers such a delivery as a signed handshake (the
// signature is checked first, like an event's) with an empty 200, and
// stores nothing.
type xero struct {
	*sigVerifier
}

var _ Handshaker = (*xero)(nil)

// newXero builds the xero preset.
func newXero(env *Env, m config.Verify) (Verifier, error) {
	var p bodyMACOptions
	if err := m.Decode(&p); err != nil {
		return nil, err
	}
	v, err := sigBuildMAC(env, "xero", &sigOptions{
		Algorithm: "sha256", Secrets: p.Secrets,
		Signature: "header:x-xero-signature", Encoding: sigEncBase64,
	})
	if err != nil {
		return nil, err
	}
	return &xero{v}, nil
}

// DetectHandshake recognises an intent-to-receive delivery: a POST whose
// JSON body has an empty events array.
func (x *xero) DetectHandshake(r *Request) (HandshakeKind, bool) {
	if r.Method != http.MethodPost {
		return HandshakeKind{}, false
	}
	// The depth is checked first: gjson's validator recurses once per
	// level of nesting.
	if jsonlimit.Check(r.Body, r.MaxJSONDepth) != nil || !gjson.ValidBytes(r.Body) {
		return HandshakeKind{}, false
	}
	if !gjson.GetBytes(r.Body, "events").IsArray() || gjson.GetBytes(r.Body, "events.0").Exists() {
		return HandshakeKind{}, false
	}
	return HandshakeKind{Name: "xero.intent_to_receive", Signed: true}, true
}

// AnswerHandshake answers 200 with no body, as Xero requires.
func (x *xero) AnswerHandshake(context.Context, *Request) (*HandshakeAnswer, error) {
	return &HandshakeAnswer{Status: http.StatusOK}, nil
}

// HandshakeMethods: Xero's handshake is a POST.
func (x *xero) HandshakeMethods() []string { return nil }
