package verify

import (
	"cmp"
	"crypto"
	"crypto/sha256"
	"fmt"

	"hookd/internal/config"
)

// Presets: the signature schemes of well-known senders, as their
// documentation describes them, built on the same machinery as hmac and
// public_key. Each takes its secrets (a list, for rotation) and, when the
// scheme is timestamped, a tolerance (default 5m, both directions).

func init() {
	// Standard Webhooks: the id and timestamp headers; the payload's type.
	RegisterPreset("standard_webhooks", newStandardWebhooks, config.EventRules{
		ID: "header:webhook-id", Type: "json:type", Timestamp: "header:webhook-timestamp"})
	RegisterPreset("github", newGitHub, config.EventRules{
		ID: "header:X-GitHub-Delivery", Type: "header:X-GitHub-Event"})
	RegisterPreset("stripe", newStripe, config.EventRules{
		ID: "json:id", Type: "json:type", Timestamp: "json:created"})
	RegisterPreset("shopify", newShopify, config.EventRules{
		ID: "header:X-Shopify-Event-Id", Type: "header:X-Shopify-Topic", Timestamp: "header:X-Shopify-Triggered-At"})
	RegisterPreset("slack", newSlack, config.EventRules{
		ID: "json:event_id", Type: "json:event.type", Timestamp: "json:event_time"})
}

// standardWebhooksOptions configures the standard_webhooks preset.
type standardWebhooksOptions struct {
	// Secrets are "whsec_" + base64 secrets for v1 (HMAC-SHA256) signatures.
	Secrets []string `yaml:"secrets"`
	// PublicKeys are "whpk_" + base64 (or PEM) ed25519 keys for v1a signatures.
	PublicKeys []string `yaml:"public_keys"`
	// Tolerance is how far webhook-timestamp may be from the clock. Default 5m.
	Tolerance *config.Duration `yaml:"tolerance"`
	// HeaderPrefix is the prefix of the three headers. Default "webhook-"
	// (Svix sends "svix-").
	HeaderPrefix string `yaml:"header_prefix"`
}

// newStandardWebhooks verifies the Standard Webhooks scheme: headers
// webhook-id, webhook-timestamp and webhook-signature, the latter a
// space-separated list of "v1,<base64 HMAC-SHA256>" and "v1a,<base64
// ed25519>" over "{id}.{timestamp}.{body}".
func newStandardWebhooks(env *Env, m config.Verify) (Verifier, error) {
	var p standardWebhooksOptions
	if err := m.Decode(&p); err != nil {
		return nil, err
	}
	if len(p.Secrets) == 0 && len(p.PublicKeys) == 0 {
		return nil, fmt.Errorf("secrets or public_keys: at least one is required")
	}
	prefix := cmp.Or(p.HeaderPrefix, "webhook-")
	if !sigHeaderName(prefix + "signature") {
		return nil, fmt.Errorf("header_prefix: invalid (want the start of a header name, such as svix-)")
	}
	v, _, err := sigBuild(env, "standard_webhooks", &sigOptions{
		Signature: "header:" + prefix + "signature",
		Scheme:    sigSchemeVersioned,
		Timestamp: "header:" + prefix + "timestamp",
		Tolerance: p.Tolerance,
		ID:        "header:" + prefix + "id",
		Signed:    "{id}.{timestamp}.{body}",
		Encoding:  sigEncBase64,
	})
	if err != nil {
		return nil, err
	}
	if len(p.Secrets) > 0 {
		secrets, err := sigDecodeSecrets(p.Secrets, "whsec")
		if err != nil {
			return nil, err
		}
		warnShortSecrets(env, "standard_webhooks", secrets)
		v.checks = append(v.checks, &sigMACCheck{tagName: "v1", hash: sha256.New, keyed: true, secrets: secrets})
	}
	if len(p.PublicKeys) > 0 {
		keys, err := sigParsePublicKeys("public_keys", p.PublicKeys, sigAlgEd25519)
		if err != nil {
			return nil, err
		}
		v.checks = append(v.checks, &sigKeyCheck{tagName: "v1a", alg: sigAlgEd25519, hash: crypto.SHA256, keys: keys})
	}
	return v, nil
}

// githubOptions configures the github preset.
type githubOptions struct {
	// Secrets are the webhook secrets.
	Secrets []string `yaml:"secrets"`
	// LegacySHA1 also accepts X-Hub-Signature (HMAC-SHA1) when
	// X-Hub-Signature-256 is absent. Default false.
	LegacySHA1 bool `yaml:"legacy_sha1"`
}

// newGitHub verifies X-Hub-Signature-256: "sha256=" + hex HMAC-SHA256 of
// the body; with legacy_sha1, X-Hub-Signature "sha1=" + hex HMAC-SHA1 when
// the former is absent.
func newGitHub(env *Env, m config.Verify) (Verifier, error) {
	var p githubOptions
	if err := m.Decode(&p); err != nil {
		return nil, err
	}
	v, err := sigBuildMAC(env, "github", &sigOptions{
		Algorithm: "sha256", Secrets: p.Secrets,
		Signature: "header:X-Hub-Signature-256", Prefix: "sha256=", Encoding: sigEncHex,
	})
	if err != nil {
		return nil, err
	}
	f := sigFirstPresent{v}
	if p.LegacySHA1 {
		// The same secrets: warned about once, above.
		quiet := &Env{}
		if env != nil {
			q := *env
			q.Log = nil
			quiet = &q
		}
		legacy, err := sigBuildMAC(quiet, "github", &sigOptions{
			Algorithm: "sha1", Secrets: p.Secrets,
			Signature: "header:X-Hub-Signature", Prefix: "sha1=", Encoding: sigEncHex,
		})
		if err != nil {
			return nil, err
		}
		f = append(f, legacy)
	}
	return f, nil
}

// presetTimestampedOptions configures the stripe and slack presets.
type presetTimestampedOptions struct {
	// Secrets are the signing secrets, used as written.
	Secrets []string `yaml:"secrets"`
	// Tolerance is how far the timestamp may be from the clock. Default 5m.
	Tolerance *config.Duration `yaml:"tolerance"`
}

// newStripe verifies Stripe-Signature: "t=<unix>,v1=<hex>,v1=<hex>…", each
// v1 an HMAC-SHA256 of "{t}.{body}" with the endpoint's signing secret
// ("whsec_…", used as written); other schemes (v0) are ignored.
func newStripe(env *Env, m config.Verify) (Verifier, error) {
	var p presetTimestampedOptions
	if err := m.Decode(&p); err != nil {
		return nil, err
	}
	return sigBuildMAC(env, "stripe", &sigOptions{
		Algorithm: "sha256", Secrets: p.Secrets,
		Signature: "header:Stripe-Signature", Scheme: sigSchemeKV, SignatureKey: "v1", TimestampKey: "t",
		Tolerance: p.Tolerance, Signed: "{timestamp}.{body}", Encoding: sigEncHex,
	})
}

// shopifyOptions configures the shopify preset.
type shopifyOptions struct {
	// Secrets are the app's client secrets.
	Secrets []string `yaml:"secrets"`
}

// newShopify verifies X-Shopify-Hmac-Sha256: base64 HMAC-SHA256 of the body.
func newShopify(env *Env, m config.Verify) (Verifier, error) {
	var p shopifyOptions
	if err := m.Decode(&p); err != nil {
		return nil, err
	}
	return sigBuildMAC(env, "shopify", &sigOptions{
		Algorithm: "sha256", Secrets: p.Secrets,
		Signature: "header:X-Shopify-Hmac-Sha256", Encoding: sigEncBase64,
	})
}
