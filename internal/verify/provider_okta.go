package verify

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"net/http"

	"hookd/internal/config"
)

// The okta preset (Okta, "Event hooks"): Okta signs nothing; it sends the
// value configured on the event hook (authScheme) in a header, by default
// Authorization, on every request. The endpoint is verified with a GET
// carrying X-Okta-Verification-Challenge — with the same header — answered
// by {"verification": "<challenge>"} as JSON. The events' envelope carries
// eventId, eventType (com.okta.event_hook; the events' own types are in
// data.events[].eventType) and eventTime.

func init() {
	RegisterPreset("okta", newOkta, config.EventRules{
		ID: "json:eventId", Type: "json:eventType", Timestamp: "json:eventTime"})
}

// oktaChallengeHeader carries Okta's one-time verification challenge.
const oktaChallengeHeader = "X-Okta-Verification-Challenge"

// oktaOptions configures the okta preset.
type oktaOptions struct {
	// Header is the header Okta sends the secret in (the event hook's
	// authentication field). Default Authorization.
	Header string `yaml:"header"`
	// Secrets are the accepted values of that header (the event hook's
	// authentication secret), one or a list during a rotation; at least
	// 16 characters.
	Secrets stringList `yaml:"secrets"`
}

// oktaVerifier checks the header secret and answers the verification GET.
type oktaVerifier struct {
	hdr *headerVerifier
}

func newOkta(_ *Env, m config.Verify) (Verifier, error) {
	var o oktaOptions
	if err := m.Decode(&o); err != nil {
		return nil, err
	}
	name := cmp.Or(o.Header, "Authorization")
	if !headerValidName(name) {
		return nil, fmt.Errorf("header: %q is not a valid header name", name)
	}
	secrets, err := secretBytes("secrets", o.Secrets, true, MinSecretLen)
	if err != nil {
		return nil, err
	}
	return &oktaVerifier{hdr: &headerVerifier{name: http.CanonicalHeaderKey(name), secrets: secrets}}, nil
}

// Verify accepts a request that sends the header exactly once with one of
// the secrets.
func (v *oktaVerifier) Verify(ctx context.Context, r *Request) error { return v.hdr.Verify(ctx, r) }

// CredentialHeaders names the header that carries the secret.
func (v *oktaVerifier) CredentialHeaders() []string { return v.hdr.CredentialHeaders() }

// ReadsJSONBody: the preset's selectors read the JSON envelope.
func (v *oktaVerifier) ReadsJSONBody() bool { return true }

// DetectHandshake recognises Okta's one-time verification request: a GET
// with X-Okta-Verification-Challenge. It carries the header secret, so it
// passes the whole chain first, as events do.
func (v *oktaVerifier) DetectHandshake(r *Request) (HandshakeKind, bool) {
	if r.Method != http.MethodGet || len(r.Header.Values(oktaChallengeHeader)) == 0 {
		return HandshakeKind{}, false
	}
	return HandshakeKind{Name: "okta.verification", Signed: true}, true
}

// AnswerHandshake checks the header secret again and answers
// {"verification": "<challenge>"}.
func (v *oktaVerifier) AnswerHandshake(ctx context.Context, r *Request) (*HandshakeAnswer, error) {
	if err := v.hdr.Verify(ctx, r); err != nil {
		return nil, err
	}
	vals := r.Header.Values(oktaChallengeHeader)
	c := ""
	if len(vals) == 1 {
		c = vals[0]
	}
	c, err := echoValue(c, "verification challenge")
	if err != nil {
		return nil, err
	}
	body, err := json.Marshal(struct {
		Verification string `json:"verification"`
	}{c})
	if err != nil {
		return nil, err
	}
	return &HandshakeAnswer{ContentType: "application/json", Body: body}, nil
}

// HandshakeMethods: Okta's verification is a GET.
func (v *oktaVerifier) HandshakeMethods() []string { return []string{http.MethodGet} }
