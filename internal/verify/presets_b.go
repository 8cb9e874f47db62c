package verify

import (
	"crypto/sha256"

	"hookd/internal/config"
)

// More presets: providers whose scheme is an HMAC of the body, or of a
// template of the body and headers, that the hmac machinery expresses
// directly, and the providers that use Standard Webhooks under svix-
// headers. The presets whose signed content the templates cannot express
// (hubspot, contentful, docusign) are in presets_b_canonical.go.

func init() {
	// Svix and the providers that send through it: the svix- headers, the
	// payload's type.
	svixEvents := config.EventRules{ID: "header:svix-id", Type: "json:type", Timestamp: "header:svix-timestamp"}
	RegisterPreset("svix", newSvixPreset("svix"), svixEvents)
	RegisterPreset("clerk", newSvixPreset("clerk"), svixEvents)
	RegisterPreset("resend", newSvixPreset("resend"), svixEvents)

	RegisterPreset("typeform", newBodyMACPreset("typeform", bodyMAC{
		alg: "sha256", header: "Typeform-Signature", prefix: "sha256=", enc: sigEncBase64}),
		config.EventRules{ID: "json:event_id", Type: "json:event_type", Timestamp: "json:form_response.submitted_at"})
	RegisterPreset("calendly", newCalendly, config.EventRules{
		Type: "json:event", Timestamp: "json:created_at"})
	RegisterPreset("xero", newXero, config.EventRules{
		Type: "json:events.0.eventCategory"})
	// Xero, Configuring your server: "There is no body in the response".
	presetEmptyAnswer["xero"] = true
	RegisterPreset("lemonsqueezy", newBodyMACPreset("lemonsqueezy", bodyMAC{
		alg: "sha256", header: "X-Signature", enc: sigEncHex}),
		config.EventRules{Type: "json:meta.event_name"})
	RegisterPreset("sentry", newBodyMACPreset("sentry", bodyMAC{
		alg: "sha256", header: "Sentry-Hook-Signature", enc: sigEncHex}),
		config.EventRules{ID: "header:Request-ID", Type: "header:Sentry-Hook-Resource", Timestamp: "header:Sentry-Hook-Timestamp"})
	RegisterPreset("pagerduty", newBodyMACPreset("pagerduty", bodyMAC{
		alg: "sha256", header: "X-PagerDuty-Signature", prefix: "v1=", enc: sigEncHex}),
		config.EventRules{ID: "json:event.id", Type: "json:event.event_type", Timestamp: "json:event.occurred_at"})
	RegisterPreset("vercel", newBodyMACPreset("vercel", bodyMAC{
		alg: "sha1", header: "X-Vercel-Signature", enc: sigEncHex}),
		config.EventRules{ID: "json:id", Type: "json:type", Timestamp: "json:createdAt"})
	RegisterPreset("coinbase", newBodyMACPreset("coinbase", bodyMAC{
		alg: "sha256", header: "X-CC-Webhook-Signature", enc: sigEncHex}),
		config.EventRules{ID: "json:event.id", Type: "json:event.type", Timestamp: "json:event.created_at"})
	RegisterPreset("razorpay", newBodyMACPreset("razorpay", bodyMAC{
		alg: "sha256", header: "X-Razorpay-Signature", enc: sigEncHex}),
		config.EventRules{ID: "header:X-Razorpay-Event-Id", Type: "json:event", Timestamp: "json:created_at"})
	RegisterPreset("segment", newBodyMACPreset("segment", bodyMAC{
		alg: "sha1", header: "X-Signature", enc: sigEncHex}),
		config.EventRules{ID: "json:messageId", Type: "json:type", Timestamp: "json:timestamp"})
	RegisterPreset("jira", newBodyMACPreset("jira", bodyMAC{
		alg: "sha256", header: "X-Hub-Signature", prefix: "sha256=", enc: sigEncHex}),
		config.EventRules{ID: "header:X-Atlassian-Webhook-Identifier", Type: "json:webhookEvent", Timestamp: "json:timestamp"})
}

// svixOptions configures the svix, clerk and resend presets.
type svixOptions struct {
	// Secrets are the endpoint's signing secrets, "whsec_" then base64.
	Secrets []string `yaml:"secrets"`
	// Tolerance is how far svix-timestamp may be from the clock. Default 5m.
	Tolerance *config.Duration `yaml:"tolerance"`
}

// newSvixPreset returns the factory of a preset for Svix's scheme:
// Standard Webhooks (v1: base64 HMAC-SHA256 of "{id}.{timestamp}.{body}"
// with the decoded whsec_ secret) under the headers svix-id,
// svix-timestamp and svix-signature.
func newSvixPreset(name string) Factory {
	return func(env *Env, m config.Verify) (Verifier, error) {
		var p svixOptions
		if err := m.Decode(&p); err != nil {
			return nil, err
		}
		secrets, err := sigDecodeSecrets(p.Secrets, "whsec")
		if err != nil {
			return nil, err
		}
		warnShortSecrets(env, name, secrets)
		v, _, err := sigBuild(env, name, &sigOptions{
			Signature: "header:svix-signature",
			Scheme:    sigSchemeVersioned,
			Timestamp: "header:svix-timestamp",
			Tolerance: p.Tolerance,
			ID:        "header:svix-id",
			Signed:    "{id}.{timestamp}.{body}",
			Encoding:  sigEncBase64,
		})
		if err != nil {
			return nil, err
		}
		v.checks = []sigCheck{&sigMACCheck{tagName: "v1", hash: sha256.New, keyed: true, secrets: secrets}}
		return v, nil
	}
}

// bodyMAC describes a scheme whose signature is an HMAC of the body in
// one header.
type bodyMAC struct {
	alg    string // sha1 or sha256
	header string
	prefix string // before each signature ("sha256=", "v1=")
	enc    string
}

// bodyMACOptions configures a preset whose signature is an HMAC of the body.
type bodyMACOptions struct {
	// Secrets are the signing secrets, used as written.
	Secrets []string `yaml:"secrets"`
}

// newBodyMACPreset returns the factory of a preset whose signature is an
// HMAC of the body, carried in s.header as a list of s.prefix + signature.
func newBodyMACPreset(name string, s bodyMAC) Factory {
	return func(env *Env, m config.Verify) (Verifier, error) {
		var p bodyMACOptions
		if err := m.Decode(&p); err != nil {
			return nil, err
		}
		return sigBuildMAC(env, name, &sigOptions{
			Algorithm: s.alg, Secrets: p.Secrets,
			Signature: "header:" + s.header, Prefix: s.prefix, Encoding: s.enc,
		})
	}
}

// newCalendly verifies Calendly-Webhook-Signature: "t=<unix>,v1=<hex>",
// v1 an HMAC-SHA256 of "{t}.{body}" with the webhook signing key.
func newCalendly(env *Env, m config.Verify) (Verifier, error) {
	var p presetTimestampedOptions
	if err := m.Decode(&p); err != nil {
		return nil, err
	}
	return sigBuildMAC(env, "calendly", &sigOptions{
		Algorithm: "sha256", Secrets: p.Secrets,
		Signature: "header:Calendly-Webhook-Signature", Scheme: sigSchemeKV, SignatureKey: "v1", TimestampKey: "t",
		Tolerance: p.Tolerance, Signed: "{timestamp}.{body}", Encoding: sigEncHex,
	})
}
