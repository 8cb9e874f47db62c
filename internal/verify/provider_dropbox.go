package verify

import (
	"context"
	"net/http"

	"hookd"
	"hookd/internal/config"
)

// The dropbox preset (Dropbox, "Webhooks" reference): notifications carry
// X-Dropbox-Signature, the hex HMAC-SHA256 of the body keyed with the app
// secret; the endpoint is verified with GET ?challenge=…, answered by
// echoing the challenge as text/plain with X-Content-Type-Options:
// nosniff. A notification only says which accounts changed: it carries no
// event id, type or time, so the preset brings no selectors.

func init() {
	RegisterPreset("dropbox", newDropbox, config.EventRules{})
}

// maxEchoLen bounds a challenge or validation token that hookd echoes
// (dropbox, okta, msgraph): the providers' are far shorter.
const maxEchoLen = 2048

// dropboxOptions configures the dropbox preset.
type dropboxOptions struct {
	// Secrets are the app secrets (several during a rotation).
	Secrets []string `yaml:"secrets"`
}

// dropboxVerifier checks X-Dropbox-Signature and answers the GET
// challenge.
type dropboxVerifier struct {
	*sigVerifier
}

func newDropbox(env *Env, m config.Verify) (Verifier, error) {
	var p dropboxOptions
	if err := m.Decode(&p); err != nil {
		return nil, err
	}
	v, err := sigBuildMAC(env, "dropbox", &sigOptions{
		Algorithm: "sha256", Secrets: p.Secrets,
		Signature: "header:X-Dropbox-Signature", Encoding: sigEncHex,
	})
	if err != nil {
		return nil, err
	}
	return &dropboxVerifier{v}, nil
}

// DetectHandshake recognises Dropbox's verification request: a GET with a
// challenge query parameter. It carries no signature.
func (v *dropboxVerifier) DetectHandshake(r *Request) (HandshakeKind, bool) {
	if r.Method != http.MethodGet || r.URL == nil || !r.URL.Query().Has("challenge") {
		return HandshakeKind{}, false
	}
	return HandshakeKind{Name: "dropbox.challenge"}, true
}

// AnswerHandshake echoes the challenge as text/plain, which the browser
// must not sniff as anything else.
func (v *dropboxVerifier) AnswerHandshake(_ context.Context, r *Request) (*HandshakeAnswer, error) {
	c, err := echoValue(r.URL.Query().Get("challenge"), "challenge")
	if err != nil {
		return nil, err
	}
	return plainEcho(c), nil
}

// HandshakeMethods: Dropbox's challenge is a GET.
func (v *dropboxVerifier) HandshakeMethods() []string { return []string{http.MethodGet} }

// echoValue checks a value hookd will echo: present and not longer than
// maxEchoLen.
func echoValue(s, what string) (string, error) {
	switch {
	case s == "":
		return "", hookd.Errorf(hookd.EInvalid, "the %s is empty", what)
	case len(s) > maxEchoLen:
		return "", hookd.Errorf(hookd.EInvalid, "the %s is longer than %d bytes", what, maxEchoLen)
	}
	return s, nil
}

// plainEcho answers s as text/plain, not to be sniffed as anything else.
func plainEcho(s string) *HandshakeAnswer {
	return &HandshakeAnswer{
		ContentType: "text/plain; charset=utf-8",
		Header:      http.Header{"X-Content-Type-Options": {"nosniff"}},
		Body:        []byte(s),
	}
}
