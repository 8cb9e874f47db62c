package verify

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"strings"

	"hookd"
	"hookd/internal/config"
)

// The zoom preset: Zoom signs events with x-zm-signature, "v0=" + hex
// HMAC-SHA256 of "v0:{x-zm-request-timestamp}:{body}" with the app's
// secret token. To validate the endpoint it sends the signed event
// endpoint.url_validation carrying payload.plainToken; hookd answers
// {"plainToken": …, "encryptedToken": hex HMAC-SHA256(secret token,
// plainToken)}.

func init() {
	// Zoom sends no event id; the event name and its time (epoch ms).
	RegisterPreset("zoom", newZoom, config.EventRules{
		Type: "json:event", Timestamp: "json:event_ts"})
}

// zoomVerifier is the zoom preset: the signature and the URL validation.
type zoomVerifier struct {
	*sigVerifier
	secrets [][]byte
}

func newZoom(env *Env, m config.Verify) (Verifier, error) {
	var p presetTimestampedOptions
	if err := m.Decode(&p); err != nil {
		return nil, err
	}
	v, err := sigBuildMAC(env, "zoom", &sigOptions{
		Algorithm: "sha256", Secrets: p.Secrets,
		Signature: "header:x-zm-signature", Prefix: "v0=",
		Timestamp: "header:x-zm-request-timestamp", Tolerance: p.Tolerance,
		Signed: "v0:{timestamp}:{body}", Encoding: sigEncHex,
	})
	if err != nil {
		return nil, err
	}
	secrets, err := sigDecodeSecrets(p.Secrets, "")
	if err != nil {
		return nil, err
	}
	return &zoomVerifier{sigVerifier: v, secrets: secrets}, nil
}

// DetectHandshake recognises the endpoint.url_validation event.
func (v *zoomVerifier) DetectHandshake(r *Request) (HandshakeKind, bool) {
	if r.Method != http.MethodPost {
		return HandshakeKind{}, false
	}
	if s, ok := handshakeJSONString(r, "endpoint.url_validation", "event"); !ok || s != "endpoint.url_validation" {
		return HandshakeKind{}, false
	}
	return HandshakeKind{Name: "zoom.url_validation", Signed: true}, true
}

// zoomValidation is the answer to endpoint.url_validation.
type zoomValidation struct {
	PlainToken     string `json:"plainToken"`
	EncryptedToken string `json:"encryptedToken"`
}

// AnswerHandshake hashes the plain token with the secret token that
// signed the request (the chain has verified it).
func (v *zoomVerifier) AnswerHandshake(_ context.Context, r *Request) (*HandshakeAnswer, error) {
	p, _ := handshakeJSONString(r, "", "payload.plainToken")
	if !handshakeChallengeOK(p) {
		return nil, hookd.Errorf(hookd.EInvalid, "the handshake's challenge is missing or invalid")
	}
	secret := v.signer(r)
	if secret == nil {
		return nil, Unauthorized("signature mismatch")
	}
	mac := hmac.New(sha256.New, secret)
	mac.Write([]byte(p))
	return handshakeJSON(zoomValidation{PlainToken: p, EncryptedToken: hex.EncodeToString(mac.Sum(nil))})
}

// signer returns the secret token whose signature r carries, nil when
// none: with several secrets (a rotation), the answer must use the one
// Zoom holds.
func (v *zoomVerifier) signer(r *Request) []byte {
	sig, ok := strings.CutPrefix(strings.TrimSpace(r.Header.Get("x-zm-signature")), "v0=")
	if !ok {
		return nil
	}
	got, err := hex.DecodeString(sig)
	if err != nil {
		return nil
	}
	ts := r.Header.Get("x-zm-request-timestamp")
	sums := make([][]byte, len(v.secrets))
	for i, s := range v.secrets {
		mac := hmac.New(sha256.New, s)
		mac.Write([]byte("v0:" + ts + ":"))
		mac.Write(r.Body)
		sums[i] = mac.Sum(nil)
	}
	if i := matchIndex(got, sums); i >= 0 {
		return v.secrets[i]
	}
	return nil
}

// HandshakeMethods: Zoom's handshake is a POST.
func (v *zoomVerifier) HandshakeMethods() []string { return nil }
