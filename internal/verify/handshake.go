package verify

import (
	"context"
	"net/http"
	"slices"
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
