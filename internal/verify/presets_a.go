package verify

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/x509"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	"hookd/internal/config"
)

// More presets: source forges (GitLab, Bitbucket, Gitea), messaging and
// e-mail (Twilio, SendGrid, Mailgun, Postmark), payments (Square, Paddle,
// Adyen) and support tools (Linear, Intercom, Zendesk). Those whose scheme
// the hmac machinery expresses are built on it here; Twilio, Mailgun and
// Adyen have verifiers of their own (presets_a_body.go).

func init() {
	RegisterPreset("gitlab", newGitLab, config.EventRules{
		ID: "header:X-Gitlab-Event-UUID", Type: "header:X-Gitlab-Event"})
	RegisterPreset("bitbucket", newBitbucket, config.EventRules{
		ID: "header:X-Request-UUID", Type: "header:X-Event-Key"})
	RegisterPreset("gitea", newGitea, config.EventRules{
		ID: "header:X-Gitea-Delivery", Type: "header:X-Gitea-Event"})
	RegisterPreset("twilio", newTwilio, config.EventRules{
		ID: "header:I-Twilio-Idempotency-Token"})
	RegisterPreset("sendgrid", newSendGrid, config.EventRules{
		Timestamp: "json:0.timestamp"})
	RegisterPreset("mailgun", newMailgun, config.EventRules{
		ID: "json:signature.token", Type: "json:event-data.event", Timestamp: "json:event-data.timestamp"})
	// Postmark sends no event id: MessageID names the email, shared by
	// its Delivery, Open, Click and Bounce events.
	RegisterPreset("postmark", newBasic, config.EventRules{
		Type: "json:RecordType"})
	RegisterPreset("square", newSquare, config.EventRules{
		ID: "json:event_id", Type: "json:type", Timestamp: "json:created_at"})
	RegisterPreset("paddle", newPaddle, config.EventRules{
		ID: "json:event_id", Type: "json:event_type", Timestamp: "json:occurred_at"})
	RegisterPreset("adyen", newAdyen, config.EventRules{
		Type:      "json:notificationItems.0.NotificationRequestItem.eventCode",
		Timestamp: "json:notificationItems.0.NotificationRequestItem.eventDate"})
	RegisterPreset("linear", newLinear, config.EventRules{
		ID: "header:Linear-Delivery", Type: "header:Linear-Event", Timestamp: "json:createdAt"})
	RegisterPreset("intercom", newIntercom, config.EventRules{
		ID: "json:id", Type: "json:topic", Timestamp: "json:created_at"})
	RegisterPreset("zendesk", newZendesk, config.EventRules{
		ID: "json:id", Type: "json:type", Timestamp: "json:time"})
}

// presetSecretsOptions configures the presets whose only option is the
// signing secrets: bitbucket, gitea, intercom.
type presetSecretsOptions struct {
	// Secrets are the signing secrets, used as written.
	Secrets []string `yaml:"secrets"`
}

// gitlabOptions configures the gitlab preset.
type gitlabOptions struct {
	// Secrets are the accepted secret tokens (one, or a list during a
	// rotation), at least 16 characters each.
	Secrets stringList `yaml:"secrets"`
}

// newGitLab checks X-Gitlab-Token, which carries the webhook's secret
// token as written: the same check as the header method.
func newGitLab(_ *Env, m config.Verify) (Verifier, error) {
	var p gitlabOptions
	if err := m.Decode(&p); err != nil {
		return nil, err
	}
	secrets, err := secretBytes("secrets", p.Secrets, true, MinSecretLen)
	if err != nil {
		return nil, err
	}
	return &headerVerifier{name: "X-Gitlab-Token", secrets: secrets}, nil
}

// newBitbucket verifies X-Hub-Signature: "sha256=" + hex HMAC-SHA256 of
// the body.
func newBitbucket(env *Env, m config.Verify) (Verifier, error) {
	var p presetSecretsOptions
	if err := m.Decode(&p); err != nil {
		return nil, err
	}
	return sigBuildMAC(env, "bitbucket", &sigOptions{
		Algorithm: "sha256", Secrets: p.Secrets,
		Signature: "header:X-Hub-Signature", Prefix: "sha256=", Encoding: sigEncHex,
	})
}

// newGitea verifies X-Gitea-Signature: hex HMAC-SHA256 of the body.
func newGitea(env *Env, m config.Verify) (Verifier, error) {
	var p presetSecretsOptions
	if err := m.Decode(&p); err != nil {
		return nil, err
	}
	return sigBuildMAC(env, "gitea", &sigOptions{
		Algorithm: "sha256", Secrets: p.Secrets,
		Signature: "header:X-Gitea-Signature", Encoding: sigEncHex,
	})
}

// newIntercom verifies X-Hub-Signature: "sha1=" + hex HMAC-SHA1 of the
// body with the app's client secret.
func newIntercom(env *Env, m config.Verify) (Verifier, error) {
	var p presetSecretsOptions
	if err := m.Decode(&p); err != nil {
		return nil, err
	}
	return sigBuildMAC(env, "intercom", &sigOptions{
		Algorithm: "sha1", Secrets: p.Secrets,
		Signature: "header:X-Hub-Signature", Prefix: "sha1=", Encoding: sigEncHex,
	})
}

// linearDefaultTolerance is how far Linear's webhookTimestamp may be from
// the clock unless tolerance says otherwise: Linear asks receivers to
// refuse deliveries older than a minute.
const linearDefaultTolerance = time.Minute

// newLinear verifies Linear-Signature: hex HMAC-SHA256 of the body, whose
// webhookTimestamp field (epoch milliseconds) must be within the
// tolerance (default 1m). The timestamp is part of the signed body.
func newLinear(env *Env, m config.Verify) (Verifier, error) {
	var p presetTimestampedOptions
	if err := m.Decode(&p); err != nil {
		return nil, err
	}
	tol := p.Tolerance
	if tol == nil {
		d := config.Duration(linearDefaultTolerance)
		tol = &d
	}
	return sigBuildMAC(env, "linear", &sigOptions{
		Algorithm: "sha256", Secrets: p.Secrets,
		Signature: "header:Linear-Signature", Encoding: sigEncHex,
		Timestamp: "json:webhookTimestamp", Tolerance: tol,
	})
}

// newZendesk verifies X-Zendesk-Webhook-Signature: base64 HMAC-SHA256 of
// X-Zendesk-Webhook-Signature-Timestamp followed by the body.
func newZendesk(env *Env, m config.Verify) (Verifier, error) {
	var p presetTimestampedOptions
	if err := m.Decode(&p); err != nil {
		return nil, err
	}
	return sigBuildMAC(env, "zendesk", &sigOptions{
		Algorithm: "sha256", Secrets: p.Secrets,
		Signature: "header:X-Zendesk-Webhook-Signature", Encoding: sigEncBase64,
		Timestamp: "header:X-Zendesk-Webhook-Signature-Timestamp", Tolerance: p.Tolerance,
		Signed: "{timestamp}{body}",
	})
}

// squareOptions configures the square preset.
type squareOptions struct {
	// Secrets are the subscription's signature keys, used as written.
	Secrets []string `yaml:"secrets"`
	// URL is the subscription's notification URL, exactly as configured
	// at Square: it is part of what Square signs.
	URL string `yaml:"url"`
}

// newSquare verifies X-Square-Hmacsha256-Signature: base64 HMAC-SHA256 of
// the notification URL followed by the body.
func newSquare(env *Env, m config.Verify) (Verifier, error) {
	var p squareOptions
	if err := m.Decode(&p); err != nil {
		return nil, err
	}
	if err := presetCheckURL(p.URL, true); err != nil {
		return nil, err
	}
	esc := strings.NewReplacer("{", "{{", "}", "}}").Replace(p.URL)
	return sigBuildMAC(env, "square", &sigOptions{
		Algorithm: "sha256", Secrets: p.Secrets,
		Signature: "header:X-Square-Hmacsha256-Signature", Encoding: sigEncBase64,
		Signed: esc + "{body}",
	})
}

// presetCheckURL checks a url option: an absolute http or https URL
// without a fragment (and, unless withQuery, without a query).
func presetCheckURL(s string, withQuery bool) error {
	if s == "" {
		return fmt.Errorf("url: required (the URL the provider calls, as configured there, such as https://hooks.example.com/in/name)")
	}
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || u.User != nil {
		return fmt.Errorf("url: want an absolute http or https URL without credentials")
	}
	if u.Fragment != "" || strings.Contains(s, "#") {
		return fmt.Errorf("url: leave the fragment out")
	}
	if !withQuery && (u.RawQuery != "" || strings.Contains(s, "?")) {
		return fmt.Errorf("url: leave the query out; the query of each request is signed as received")
	}
	return nil
}

// newPaddle verifies Paddle-Signature: "ts=<unix>;h1=<hex>", each h1 an
// HMAC-SHA256 of "{ts}:{body}" with the notification destination's
// secret key.
func newPaddle(env *Env, m config.Verify) (Verifier, error) {
	var p presetTimestampedOptions
	if err := m.Decode(&p); err != nil {
		return nil, err
	}
	v, err := sigBuildMAC(env, "paddle", &sigOptions{
		Algorithm: "sha256", Secrets: p.Secrets,
		Signature: "header:Paddle-Signature", Scheme: sigSchemeKV, SignatureKey: "h1", TimestampKey: "ts",
		Tolerance: p.Tolerance, Signed: "{timestamp}:{body}", Encoding: sigEncHex,
	})
	if err != nil {
		return nil, err
	}
	return paddleVerifier{v}, nil
}

// paddleVerifier reads Paddle's ';'-separated header as the kv scheme's
// ','-separated one. Its values are digits and hex, so nothing else
// changes.
type paddleVerifier struct{ v *sigVerifier }

// Verify checks the request with Paddle-Signature's separators replaced.
func (p paddleVerifier) Verify(ctx context.Context, r *Request) error {
	vals := r.Header.Values("Paddle-Signature")
	if len(vals) == 0 {
		return p.v.Verify(ctx, r)
	}
	rr := *r
	rr.Header = http.Header{}
	for _, s := range vals {
		rr.Header.Add("Paddle-Signature", strings.ReplaceAll(s, ";", ","))
	}
	return p.v.Verify(ctx, &rr)
}

// sendgridOptions configures the sendgrid preset.
type sendgridOptions struct {
	// PublicKeys are the Event Webhook's verification keys: base64 of the
	// DER public key, as SendGrid shows it, or PEM.
	PublicKeys []string `yaml:"public_keys"`
	// Tolerance is how far the signature timestamp may be from the clock.
	// Default 5m.
	Tolerance *config.Duration `yaml:"tolerance"`
}

// newSendGrid verifies the Event Webhook's signature: an ECDSA (P-256,
// SHA-256) signature, base64 DER in
// X-Twilio-Email-Event-Webhook-Signature, of
// X-Twilio-Email-Event-Webhook-Timestamp followed by the body.
func newSendGrid(env *Env, m config.Verify) (Verifier, error) {
	var p sendgridOptions
	if err := m.Decode(&p); err != nil {
		return nil, err
	}
	keys, err := sendgridKeys(p.PublicKeys)
	if err != nil {
		return nil, err
	}
	v, _, err := sigBuild(env, "sendgrid", &sigOptions{
		Signature: "header:X-Twilio-Email-Event-Webhook-Signature", Encoding: sigEncBase64,
		Timestamp: "header:X-Twilio-Email-Event-Webhook-Timestamp", Tolerance: p.Tolerance,
		Signed: "{timestamp}{body}",
	})
	if err != nil {
		return nil, err
	}
	v.checks = []sigCheck{&sigKeyCheck{alg: sigAlgECDSA, hash: crypto.SHA256, keys: keys}}
	return v, nil
}

// sendgridKeys parses the public_keys option: PEM, or base64 of a DER
// (PKIX) ECDSA public key.
func sendgridKeys(list []string) ([]crypto.PublicKey, error) {
	if len(list) == 0 {
		return nil, fmt.Errorf("public_keys: at least one public key is required")
	}
	var out []crypto.PublicKey
	for i, s := range list {
		s = strings.TrimSpace(s)
		if strings.Contains(s, "-----BEGIN") {
			keys, err := sigParsePublicKeys(fmt.Sprintf("public_keys[%d]", i), []string{s}, sigAlgECDSA)
			if err != nil {
				return nil, err
			}
			out = append(out, keys...)
			continue
		}
		if s == "" {
			return nil, fmt.Errorf("public_keys[%d]: empty (is its environment variable set?)", i)
		}
		der, err := sigDecodeBase64(s)
		if err != nil {
			return nil, fmt.Errorf("public_keys[%d]: want base64 of a DER public key, or PEM", i)
		}
		k, err := x509.ParsePKIXPublicKey(der)
		if err != nil {
			return nil, fmt.Errorf("public_keys[%d]: not a DER public key: %w", i, err)
		}
		if _, ok := k.(*ecdsa.PublicKey); !ok {
			return nil, fmt.Errorf("public_keys[%d]: a %T key; SendGrid's keys are ECDSA", i, k)
		}
		out = append(out, k)
	}
	return out, nil
}
