package verify

import (
	"context"
	"crypto/hmac"
	"crypto/sha1"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net"
	"net/url"
	"sort"
	"strings"
	"time"

	"github.com/tidwall/gjson"

	"hookd/internal/config"
	"hookd/internal/jsonlimit"
)

// The presets whose signed content the hmac templates cannot express:
// Twilio (the URL and the sorted form parameters), Mailgun (a timestamp
// and token in the body) and Adyen (fields of each notification item).

// twilioOptions configures the twilio preset.
type twilioOptions struct {
	// Secrets are the account's auth tokens, used as written.
	Secrets []string `yaml:"secrets"`
	// URL is the URL Twilio calls, as configured at Twilio, without its
	// query: the query of each request is signed as received.
	URL string `yaml:"url"`
}

// twilioVerifier checks X-Twilio-Signature: base64 HMAC-SHA1 of the URL
// Twilio called followed, for a form body, by each parameter's name and
// value in name order; for another body, the URL carries the body's hex
// SHA-256 in its bodySHA256 query parameter.
type twilioVerifier struct {
	secrets [][]byte
	// bases are the configured URL and the same with the default port
	// written or left out: Twilio signs either form.
	bases []string
}

func newTwilio(env *Env, m config.Verify) (Verifier, error) {
	var p twilioOptions
	if err := m.Decode(&p); err != nil {
		return nil, err
	}
	if err := presetCheckURL(p.URL, false); err != nil {
		return nil, err
	}
	secrets, err := sigDecodeSecrets(p.Secrets, "")
	if err != nil {
		return nil, err
	}
	warnShortSecrets(env, "twilio", secrets)
	return &twilioVerifier{secrets: secrets, bases: twilioBases(p.URL)}, nil
}

// twilioBases returns u and u with its scheme's default port toggled:
// written when absent, left out when written.
func twilioBases(s string) []string {
	u, _ := url.Parse(s)
	def := "443"
	if u.Scheme == "http" {
		def = "80"
	}
	other := *u
	switch u.Port() {
	case "":
		other.Host = net.JoinHostPort(u.Hostname(), def)
	case def:
		other.Host = u.Hostname()
		if strings.Contains(other.Host, ":") {
			other.Host = "[" + other.Host + "]"
		}
	default:
		return []string{s}
	}
	return []string{s, other.String()}
}

// Verify checks the signature.
func (v *twilioVerifier) Verify(_ context.Context, r *Request) error {
	vals := r.Header.Values("X-Twilio-Signature")
	if len(vals) == 0 || strings.TrimSpace(vals[0]) == "" {
		return Unauthorized("signature missing")
	}
	if len(vals) > 1 || len(vals[0]) > sigMaxLen {
		return Unauthorized("signature invalid")
	}
	sig, ok := sigDecode(sigEncBase64, strings.TrimSpace(vals[0]))
	if !ok {
		return Unauthorized("signature invalid")
	}
	rawQuery := ""
	if r.URL != nil {
		rawQuery = r.URL.RawQuery
	}
	query, err := url.ParseQuery(rawQuery)
	if err != nil {
		return Unauthorized("query invalid")
	}
	var params []byte
	if sums, ok := query["bodySHA256"]; ok {
		// The body is covered by its hash, the hash by the URL.
		want, err := hex.DecodeString(sums[0])
		got := sha256.Sum256(r.Body)
		if len(sums) != 1 || err != nil || !Equal(want, got[:]) {
			return Unauthorized("signed content does not match the body")
		}
	} else if len(r.Body) > 0 {
		form, err := url.ParseQuery(string(r.Body))
		if err != nil {
			return Unauthorized("body is not form-encoded, and the URL has no bodySHA256")
		}
		params = twilioParams(form)
	}
	if rawQuery != "" {
		rawQuery = "?" + rawQuery
	}
	var sums [][]byte
	for _, base := range v.bases {
		for _, s := range v.secrets {
			h := hmac.New(sha1.New, s)
			h.Write([]byte(base))
			h.Write([]byte(rawQuery))
			h.Write(params)
			sums = append(sums, h.Sum(nil))
		}
	}
	if !MatchAny(sig, sums) {
		return Unauthorized("signature mismatch")
	}
	return nil
}

// twilioParams renders form parameters as Twilio signs them: sorted by
// name (byte order), each name followed by its value; a repeated name
// once per value, its values sorted.
func twilioParams(form url.Values) []byte {
	names := make([]string, 0, len(form))
	for k := range form {
		names = append(names, k)
	}
	sort.Strings(names)
	var b []byte
	for _, k := range names {
		vs := append([]string(nil), form[k]...)
		sort.Strings(vs)
		for _, val := range vs {
			b = append(b, k...)
			b = append(b, val...)
		}
	}
	return b
}

// mailgunOptions configures the mailgun preset.
type mailgunOptions struct {
	// Secrets are the account's webhook signing keys, used as written.
	Secrets []string `yaml:"secrets"`
	// Tolerance is how far signature.timestamp may be from the clock.
	// Default 5m.
	Tolerance *config.Duration `yaml:"tolerance"`
}

// mailgunMaxToken bounds signature.token (Mailgun's are 50 characters).
const mailgunMaxToken = 1 << 10

// mailgunVerifier checks the signature object of a Mailgun webhook's
// JSON body: signature.signature is the hex HMAC-SHA256 of
// signature.timestamp followed by signature.token. It covers neither
// event-data nor anything else in the body.
type mailgunVerifier struct {
	secrets   [][]byte
	tolerance time.Duration
	now       func() time.Time
}

func newMailgun(env *Env, m config.Verify) (Verifier, error) {
	var p mailgunOptions
	if err := m.Decode(&p); err != nil {
		return nil, err
	}
	secrets, err := sigDecodeSecrets(p.Secrets, "")
	if err != nil {
		return nil, err
	}
	warnShortSecrets(env, "mailgun", secrets)
	v := &mailgunVerifier{secrets: secrets, tolerance: DefaultSignatureTolerance, now: time.Now}
	if env != nil {
		v.now = env.now
	}
	if p.Tolerance != nil {
		if p.Tolerance.D() <= 0 {
			return nil, fmt.Errorf("tolerance: must be positive")
		}
		v.tolerance = p.Tolerance.D()
	}
	return v, nil
}

// ReadsJSONBody reports that the signature is in the JSON body.
func (v *mailgunVerifier) ReadsJSONBody() bool { return true }

// Verify checks the signature and its timestamp.
func (v *mailgunVerifier) Verify(_ context.Context, r *Request) error {
	rv := &sigRequest{r: r}
	field := func(name string, numbers bool) (string, bool) {
		return rv.lookup(sigLocator{kind: "json", gpath: "signature." + name}, numbers)
	}
	sigHex, ok := field("signature", false)
	if !ok || sigHex == "" {
		return Unauthorized("signature missing")
	}
	ts, okTS := field("timestamp", true)
	token, okTok := field("token", false)
	if !okTS || !okTok || token == "" {
		return Unauthorized("signed content missing")
	}
	if len(sigHex) > sigMaxLen || len(token) > mailgunMaxToken {
		return Unauthorized("signature invalid")
	}
	t, ok := sigParseTimestamp(ts)
	if !ok {
		return Unauthorized("timestamp invalid")
	}
	if d := v.now().Sub(t); d > v.tolerance || d < -v.tolerance {
		return Unauthorized("timestamp outside tolerance")
	}
	sig, ok := sigDecode(sigEncHex, sigHex)
	if !ok {
		return Unauthorized("signature invalid")
	}
	sums := make([][]byte, 0, len(v.secrets))
	for _, s := range v.secrets {
		h := hmac.New(sha256.New, s)
		h.Write([]byte(ts))
		h.Write([]byte(token))
		sums = append(sums, h.Sum(nil))
	}
	if !MatchAny(sig, sums) {
		return Unauthorized("signature mismatch")
	}
	return nil
}

// adyenOptions configures the adyen preset.
type adyenOptions struct {
	// Secrets are the webhook's HMAC keys, in hex as Adyen shows them.
	Secrets []string `yaml:"secrets"`
}

// adyenMaxItems bounds the notification items of one request; Adyen
// sends one per request today.
const adyenMaxItems = 100

// adyenVerifier checks every NotificationRequestItem of an Adyen standard
// webhook: additionalData.hmacSignature is the base64 HMAC-SHA256, keyed
// with the hex-decoded HMAC key, of pspReference, originalReference,
// merchantAccountCode, merchantReference, amount.value, amount.currency,
// eventCode and success joined with ':'. The signature covers those
// fields of its item, and nothing else.
type adyenVerifier struct {
	secrets [][]byte
}

func newAdyen(env *Env, m config.Verify) (Verifier, error) {
	var p adyenOptions
	if err := m.Decode(&p); err != nil {
		return nil, err
	}
	secrets, err := sigDecodeSecrets(p.Secrets, "hex")
	if err != nil {
		return nil, err
	}
	warnShortSecrets(env, "adyen", secrets)
	return &adyenVerifier{secrets: secrets}, nil
}

// ReadsJSONBody reports that the signatures are in the JSON body.
func (v *adyenVerifier) ReadsJSONBody() bool { return true }

// adyenSigned are the fields an item's signature covers, in order.
var adyenSigned = []string{"pspReference", "originalReference", "merchantAccountCode", "merchantReference", "amount.value", "amount.currency", "eventCode", "success"}

// Verify accepts a request whose every notification item carries a valid
// signature.
func (v *adyenVerifier) Verify(_ context.Context, r *Request) error {
	if jsonlimit.Check(r.Body, r.MaxJSONDepth) != nil || !gjson.ValidBytes(r.Body) {
		return Unauthorized("signature missing")
	}
	items := gjson.GetBytes(r.Body, "notificationItems")
	if !items.IsArray() {
		return Unauthorized("signature missing")
	}
	n := 0
	var err error
	items.ForEach(func(_, it gjson.Result) bool {
		n++
		if n > adyenMaxItems {
			err = Unauthorized("too many notification items")
			return false
		}
		err = v.verifyItem(it.Get("NotificationRequestItem"))
		return err == nil
	})
	if err != nil {
		return err
	}
	if n == 0 {
		return Unauthorized("signature missing")
	}
	return nil
}

func (v *adyenVerifier) verifyItem(item gjson.Result) error {
	if !item.IsObject() {
		return Unauthorized("signature missing")
	}
	raw := jsonlimit.Scalar(item.Get("additionalData.hmacSignature"))
	if raw == "" {
		return Unauthorized("signature missing")
	}
	if len(raw) > sigMaxLen {
		return Unauthorized("signature invalid")
	}
	sig, ok := sigDecode(sigEncBase64, raw)
	if !ok {
		return Unauthorized("signature invalid")
	}
	var msg []byte
	for i, f := range adyenSigned {
		if i > 0 {
			msg = append(msg, ':')
		}
		msg = append(msg, jsonlimit.Scalar(item.Get(f))...)
	}
	sums := make([][]byte, 0, len(v.secrets))
	for _, s := range v.secrets {
		h := hmac.New(sha256.New, s)
		h.Write(msg)
		sums = append(sums, h.Sum(nil))
	}
	if !MatchAny(sig, sums) {
		return Unauthorized("signature mismatch")
	}
	return nil
}
