package sign

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"fmt"
)

// GeneratedSecretLen is the length of a secret made by GenerateSecret:
// 32 bytes (256 bits), within the Standard Webhooks range of 24 to 64.
const GeneratedSecretLen = 32

// GenerateSecret returns a new random HMAC-SHA256 secret, "whsec_" +
// base64 of GeneratedSecretLen bytes. The same value goes in the sign
// option and to the receiver.
func GenerateSecret() (string, error) {
	b := make([]byte, GeneratedSecretLen)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("generate secret: %w", err)
	}
	return PrefixSecret + base64.StdEncoding.EncodeToString(b), nil
}

// GenerateKey returns a new ed25519 key pair: secret ("whsk_" + base64 of
// the 64-byte private key) goes in the sign option, public ("whpk_" +
// base64 of the 32-byte public key) goes to receivers.
func GenerateKey() (secret, public string, err error) {
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return "", "", fmt.Errorf("generate key: %w", err)
	}
	return PrefixPrivateKey + base64.StdEncoding.EncodeToString(priv),
		PrefixPublicKey + base64.StdEncoding.EncodeToString(pub), nil
}
