package verify

import (
	"context"
	"fmt"
	"net/http"

	"hookd/internal/config"
)

// The meta preset (Facebook, Instagram, WhatsApp and the other Graph API
// webhooks): events carry X-Hub-Signature-256, "sha256=" + hex
// HMAC-SHA256 of the body with the app secret. When a callback URL is
// set, Meta sends an unsigned GET with hub.mode=subscribe,
// hub.verify_token and hub.challenge; hookd answers the challenge as
// text/plain when the verify token is the configured one, 403 otherwise.

func init() {
	// Meta sends no event id; the payload's object ("page", "instagram",
	// "whatsapp_business_account"…) and the first entry's time.
	RegisterPreset("meta", newMeta, config.EventRules{
		Type: "json:object", Timestamp: "json:entry.0.time"})
}

// metaOptions configures the meta preset.
type metaOptions struct {
	// Secrets are the app secrets (App Settings › Basic); any one verifies.
	Secrets []string `yaml:"secrets"`
	// VerifyToken is the Verify Token entered with the callback URL; the
	// subscription handshake must present it.
	VerifyToken string `yaml:"verify_token"`
}

// metaVerifier is the meta preset: the signature and the GET handshake.
type metaVerifier struct {
	*sigVerifier
	token []byte
}

func newMeta(env *Env, m config.Verify) (Verifier, error) {
	var p metaOptions
	if err := m.Decode(&p); err != nil {
		return nil, err
	}
	if p.VerifyToken == "" {
		return nil, fmt.Errorf("verify_token: required (the Verify Token entered with the callback URL; is its environment variable set?)")
	}
	v, err := sigBuildMAC(env, "meta", &sigOptions{
		Algorithm: "sha256", Secrets: p.Secrets,
		Signature: "header:X-Hub-Signature-256", Prefix: "sha256=", Encoding: sigEncHex,
	})
	if err != nil {
		return nil, err
	}
	return &metaVerifier{sigVerifier: v, token: []byte(p.VerifyToken)}, nil
}

// DetectHandshake recognises the subscription handshake: a GET with
// hub.* query parameters.
func (v *metaVerifier) DetectHandshake(r *Request) (HandshakeKind, bool) {
	if r.Method != http.MethodGet || r.URL == nil {
		return HandshakeKind{}, false
	}
	q := r.URL.Query()
	if !q.Has("hub.mode") && !q.Has("hub.verify_token") && !q.Has("hub.challenge") {
		return HandshakeKind{}, false
	}
	return HandshakeKind{Name: "meta.subscribe"}, true
}

// AnswerHandshake echoes hub.challenge when hub.mode is subscribe and
// hub.verify_token is the configured token (compared in constant time).
func (v *metaVerifier) AnswerHandshake(_ context.Context, r *Request) (*HandshakeAnswer, error) {
	q := r.URL.Query()
	tokenOK := Equal([]byte(q.Get("hub.verify_token")), v.token)
	if q.Get("hub.mode") != "subscribe" || !tokenOK {
		return nil, Forbidden("verify token mismatch")
	}
	return handshakeText(q.Get("hub.challenge"))
}

// HandshakeMethods: Meta's handshake is a GET.
func (v *metaVerifier) HandshakeMethods() []string { return []string{http.MethodGet} }
