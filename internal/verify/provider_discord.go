package verify

import (
	"context"
	"crypto"
	"crypto/ed25519"
	"encoding/hex"
	"fmt"
	"net/http"
	"strings"

	"github.com/tidwall/gjson"

	"hookd/internal/config"
)

// The discord preset (interactions endpoint): Discord signs every
// interaction with X-Signature-Ed25519, the hex ed25519 signature of
// X-Signature-Timestamp + body made with the application's key. To check
// the endpoint it sends a signed PING ({"type":1}), which hookd answers
// with a PONG ({"type":1}); it also sends requests with bad signatures,
// which must be refused.

func init() {
	RegisterPreset("discord", newDiscord, config.EventRules{
		ID: "json:id", Type: "json:type", Timestamp: "header:X-Signature-Timestamp"})
}

// discordOptions configures the discord preset.
type discordOptions struct {
	// PublicKeys are the application's public keys as the Developer
	// Portal shows them (64 hex digits); any one verifies.
	PublicKeys []string `yaml:"public_keys"`
	// Tolerance is how far X-Signature-Timestamp may be from the clock.
	// Default 5m.
	Tolerance *config.Duration `yaml:"tolerance"`
}

// discordVerifier is the discord preset: the signature and the PING.
type discordVerifier struct {
	*sigVerifier
}

func newDiscord(env *Env, m config.Verify) (Verifier, error) {
	var p discordOptions
	if err := m.Decode(&p); err != nil {
		return nil, err
	}
	if len(p.PublicKeys) == 0 {
		return nil, fmt.Errorf("public_keys: at least one public key is required")
	}
	keys := make([]crypto.PublicKey, 0, len(p.PublicKeys))
	for i, s := range p.PublicKeys {
		b, err := hex.DecodeString(strings.TrimSpace(s))
		if err != nil || len(b) != ed25519.PublicKeySize {
			return nil, fmt.Errorf("public_keys[%d]: want the application's public key, 64 hex digits", i)
		}
		keys = append(keys, ed25519.PublicKey(b))
	}
	v, tag, err := sigBuild(env, "discord", &sigOptions{
		Signature: "header:X-Signature-Ed25519",
		Timestamp: "header:X-Signature-Timestamp", Tolerance: p.Tolerance,
		Signed: "{timestamp}{body}", Encoding: sigEncHex,
	})
	if err != nil {
		return nil, err
	}
	v.checks = []sigCheck{&sigKeyCheck{tagName: tag, alg: sigAlgEd25519, hash: crypto.SHA256, keys: keys}}
	return &discordVerifier{v}, nil
}

// DetectHandshake recognises a PING: an interaction of type 1.
func (v *discordVerifier) DetectHandshake(r *Request) (HandshakeKind, bool) {
	if r.Method != http.MethodPost {
		return HandshakeKind{}, false
	}
	if res, ok := handshakeJSONField(r, "", "type"); !ok || res.Type != gjson.Number || res.Raw != "1" {
		return HandshakeKind{}, false
	}
	return HandshakeKind{Name: "discord.ping", Signed: true}, true
}

// discordPong is the answer to a PING.
type discordPong struct {
	Type int `json:"type"`
}

// AnswerHandshake answers a PONG.
func (v *discordVerifier) AnswerHandshake(context.Context, *Request) (*HandshakeAnswer, error) {
	return handshakeJSON(discordPong{Type: 1})
}

// HandshakeMethods: Discord's handshake is a POST.
func (v *discordVerifier) HandshakeMethods() []string { return nil }
