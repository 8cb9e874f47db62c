package verify

import (
	"cmp"
	"context"
	"crypto/hmac"
	"crypto/md5"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"hash"
	"net/http"
	"strings"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/tidwall/gjson"

	"hookd/internal/config"
	"hookd/internal/jsonlimit"
)

// This file holds the hmac method and the machinery every signature
// method shares (hmac, digest, public_key and the presets): where the
// signature is, what was signed, the timestamp window, and the checks.

func init() {
	Register("hmac", newHMAC)
}

// DefaultSignatureTolerance is how far a signature timestamp may be from the clock,
// in either direction, unless a method sets its own tolerance.
const DefaultSignatureTolerance = 5 * time.Minute

// sigOptions are the options of hmac, digest and public_key. Each method
// refuses the options that belong to another (keys on hmac, secrets on
// public_key).
type sigOptions struct {
	// Algorithm is, for hmac and digest, md5, sha1, sha256 (hmac's
	// default), sha384 or sha512; for public_key, ed25519, rsa_pkcs1v15,
	// rsa_pss or ecdsa.
	Algorithm string `yaml:"algorithm"`
	// Hash is public_key's digest for RSA and ECDSA: sha256 (default),
	// sha384 or sha512.
	Hash string `yaml:"hash"`
	// Secrets are the shared secrets (hmac, digest); any one verifies.
	Secrets []string `yaml:"secrets"`
	// SecretEncoding says how secrets are written: raw (default), base64,
	// hex, or whsec (Standard Webhooks: "whsec_" then base64).
	SecretEncoding string `yaml:"secret_encoding"`
	// Keys are PEM public keys (public_key); any one verifies.
	Keys []string `yaml:"keys"`
	// Signature says where the signature is: header:Name or json:path.
	Signature string `yaml:"signature"`
	// Scheme is the shape of the signature value: list (default), kv or
	// versioned.
	Scheme string `yaml:"scheme"`
	// Prefix precedes each signature of a list ("sha256=", "v0=").
	Prefix string `yaml:"prefix"`
	// SignatureKey is the key of the signatures in a kv scheme. Default v1.
	SignatureKey string `yaml:"signature_key"`
	// Version is the version of the signatures in a versioned scheme.
	// Default v1.
	Version string `yaml:"version"`
	// TimestampKey is the key of the timestamp in a kv scheme ("t").
	TimestampKey string `yaml:"timestamp_key"`
	// Timestamp says where the signature timestamp is: header:Name or
	// json:path.
	Timestamp string `yaml:"timestamp"`
	// Tolerance is how far the timestamp may be from the clock, in either
	// direction. Default 5m.
	Tolerance *config.Duration `yaml:"tolerance"`
	// ID says where the message id for {id} is: header:Name or json:path.
	ID string `yaml:"id"`
	// Signed is what was signed: body (default), json:path (the value of a
	// string field), or a template of {body}, {secret}, {timestamp}, {id}
	// and {header:Name}.
	Signed string `yaml:"signed"`
	// Covers, with signed: json:path, names a JSON field of the body that
	// must hold the same data as the signed string, so that the fields
	// selectors read are covered by the signature too.
	Covers string `yaml:"covers"`
	// Encoding is how signatures are written: hex (hmac and digest
	// default), base64 (public_key default) or base64url.
	Encoding string `yaml:"encoding"`
}

// What a signature was computed over.
const (
	sigSignedBody = iota
	sigSignedJSON
	sigSignedTemplate
)

// sigVerifier checks a signature carried by the request against what the
// request signed. Its checks (one per kind of key) do the cryptography.
type sigVerifier struct {
	sig       sigLocator
	scheme    string
	prefix    string
	ts        sigLocator
	tsKey     string
	tolerance time.Duration
	id        sigLocator

	signed     int
	field      sigLocator
	tmpl       []sigPart
	usesSecret bool
	covers     sigLocator

	enc    string
	checks []sigCheck
	now    func() time.Time

	// ops counts MAC computations and signature verifications; tests use
	// it to show that hostile headers are refused before any cryptography.
	ops atomic.Int64
}

// sigCheck verifies candidate signatures of one tag.
type sigCheck interface {
	tag() string
	// check reports whether any candidate is a valid signature of m.
	check(v *sigVerifier, m *sigMessage, cands [][]byte) bool
}

// sigMessage is what one request signed, resolved once per request.
type sigMessage struct {
	body      []byte
	header    http.Header
	timestamp string
	id        string
	field     []byte
}

// Verify checks the request's signature.
// ReadsJSONBody reports whether the signature, its timestamp or id, or the
// signed content is a field of the JSON body.
func (v *sigVerifier) ReadsJSONBody() bool {
	for _, l := range []sigLocator{v.sig, v.ts, v.id, v.field, v.covers} {
		if l.kind == "json" {
			return true
		}
	}
	return false
}

func (v *sigVerifier) Verify(_ context.Context, r *Request) error {
	_, err := v.verify(r)
	return err
}

// verify checks the request's signature; absent reports that the
// signature header or field is not there at all.
func (v *sigVerifier) verify(r *Request) (absent bool, err error) {
	rv := &sigRequest{r: r}
	raw, ok, err := v.rawSignature(rv)
	if err != nil {
		return false, Unauthorized("%v", err)
	}
	if !ok {
		return true, Unauthorized("signature missing")
	}
	entries, err := sigParseHeader(v.scheme, v.prefix, raw)
	if err != nil {
		return false, Unauthorized("%v", err)
	}
	found := false
	for _, c := range v.checks {
		for _, e := range entries {
			found = found || e.tag == c.tag()
		}
	}
	if !found {
		return false, Unauthorized("signature missing")
	}
	m := &sigMessage{body: r.Body, header: r.Header}
	if m.timestamp, err = v.timestamp(rv, entries); err != nil {
		return false, err
	}
	if v.id.kind != "" {
		if m.id, ok = rv.lookup(v.id, true); !ok || m.id == "" {
			return false, Unauthorized("signed content missing")
		}
	}
	if v.signed == sigSignedJSON {
		s, ok := rv.lookup(v.field, false)
		if !ok {
			return false, Unauthorized("signed content missing")
		}
		m.field = []byte(s)
	}
	for _, p := range v.tmpl {
		if p.kind == sigPartHeader && len(r.Header.Values(p.text)) == 0 {
			return false, Unauthorized("signed content missing")
		}
	}
	matched := false
	for _, c := range v.checks {
		var cands [][]byte
		for _, e := range entries {
			if e.tag != c.tag() {
				continue
			}
			if b, ok := sigDecode(v.enc, e.value); ok {
				cands = append(cands, b)
			}
		}
		if len(cands) > 0 && c.check(v, m, cands) {
			matched = true
			break
		}
	}
	if !matched {
		return false, Unauthorized("signature mismatch")
	}
	if v.covers.kind != "" {
		res := gjson.GetBytes(r.Body, v.covers.gpath)
		if !res.Exists() || !sigJSONEquivalent([]byte(res.Raw), m.field) {
			return false, Unauthorized("signed content does not match the body")
		}
	}
	return false, nil
}

// rawSignature returns the signature header's values joined, or the
// signature field of the body; ok is false when there is none.
func (v *sigVerifier) rawSignature(rv *sigRequest) (string, bool, error) {
	if v.sig.kind == "json" {
		s, ok := rv.lookup(v.sig, false)
		if !ok || strings.TrimSpace(s) == "" {
			return "", false, nil
		}
		if len(s) > sigMaxLen {
			return "", true, errSigTooLong
		}
		return s, true, nil
	}
	vals := rv.r.Header.Values(v.sig.name)
	n := 0
	for _, s := range vals {
		n += len(s) + 1
	}
	if n > sigMaxLen+1 {
		return "", true, errSigTooLong
	}
	sep := ","
	if v.scheme == sigSchemeVersioned {
		sep = " "
	}
	s := strings.Join(vals, sep)
	if strings.TrimSpace(s) == "" {
		return "", false, nil
	}
	return s, true, nil
}

// timestamp returns the signature timestamp as written, after checking it
// is within the tolerance; "" when the method has none.
func (v *sigVerifier) timestamp(rv *sigRequest, entries []sigEntry) (string, error) {
	var s string
	switch {
	case v.tsKey != "":
		n := 0
		for _, e := range entries {
			if e.tag == v.tsKey {
				s = e.value
				n++
			}
		}
		if n > 1 {
			return "", Unauthorized("timestamp invalid")
		}
	case v.ts.kind != "":
		s, _ = rv.lookup(v.ts, true)
	default:
		return "", nil
	}
	if strings.TrimSpace(s) == "" {
		return "", Unauthorized("timestamp missing")
	}
	t, ok := sigParseTimestamp(s)
	if !ok {
		return "", Unauthorized("timestamp invalid")
	}
	if d := v.now().Sub(t); d > v.tolerance || d < -v.tolerance {
		return "", Unauthorized("timestamp outside tolerance")
	}
	return s, nil
}

// render returns the signed bytes, in pieces; secret fills {secret}.
func (v *sigVerifier) render(m *sigMessage, secret []byte) [][]byte {
	switch v.signed {
	case sigSignedBody:
		return [][]byte{m.body}
	case sigSignedJSON:
		return [][]byte{m.field}
	}
	parts := make([][]byte, 0, len(v.tmpl))
	for _, p := range v.tmpl {
		switch p.kind {
		case sigPartText:
			parts = append(parts, []byte(p.text))
		case sigPartBody:
			parts = append(parts, m.body)
		case sigPartSecret:
			parts = append(parts, secret)
		case sigPartTimestamp:
			parts = append(parts, []byte(m.timestamp))
		case sigPartID:
			parts = append(parts, []byte(m.id))
		case sigPartHeader:
			parts = append(parts, []byte(m.header.Get(p.text)))
		}
	}
	return parts
}

// sigMACCheck computes a MAC (or, for digest, a plain hash of a template
// holding the secret) per secret and compares it with the candidates.
type sigMACCheck struct {
	tagName string
	hash    func() hash.Hash
	keyed   bool
	secrets [][]byte
}

func (c *sigMACCheck) tag() string { return c.tagName }

func (c *sigMACCheck) check(v *sigVerifier, m *sigMessage, cands [][]byte) bool {
	var shared [][]byte
	if !v.usesSecret {
		shared = v.render(m, nil)
	}
	sums := make([][]byte, 0, len(c.secrets))
	for _, s := range c.secrets {
		parts := shared
		if v.usesSecret {
			parts = v.render(m, s)
		}
		var h hash.Hash
		if c.keyed {
			h = hmac.New(c.hash, s)
		} else {
			h = c.hash()
		}
		for _, p := range parts {
			h.Write(p)
		}
		v.ops.Add(1)
		sums = append(sums, h.Sum(nil))
	}
	ok := false
	for _, cand := range cands {
		if MatchAny(cand, sums) {
			ok = true
		}
	}
	return ok
}

// sigFirstPresent lets the first of its verifiers whose signature is present
// decide (GitHub's X-Hub-Signature-256, then the legacy X-Hub-Signature).
type sigFirstPresent []*sigVerifier

// Verify checks the request with the first verifier whose signature is there.
func (f sigFirstPresent) Verify(_ context.Context, r *Request) error {
	for _, v := range f {
		if absent, err := v.verify(r); !absent {
			return err
		}
	}
	return Unauthorized("signature missing")
}

var sigMACHashes = map[string]func() hash.Hash{
	"md5": md5.New, "sha1": sha1.New, "sha256": sha256.New, "sha384": sha512.New384, "sha512": sha512.New,
}

func newHMAC(env *Env, m config.Verify) (Verifier, error) {
	var o sigOptions
	if err := m.Decode(&o); err != nil {
		return nil, err
	}
	return sigBuildMAC(env, "hmac", &o)
}

// sigBuildMAC builds an hmac or digest verifier.
func sigBuildMAC(env *Env, method string, o *sigOptions) (*sigVerifier, error) {
	if len(o.Keys) > 0 {
		return nil, fmt.Errorf("keys: not an option of %s (its keys are secrets; public keys belong to public_key)", method)
	}
	if o.Hash != "" {
		return nil, fmt.Errorf("hash: not an option of %s (use algorithm)", method)
	}
	alg := o.Algorithm
	if alg == "" {
		if method == "digest" {
			return nil, fmt.Errorf("algorithm: required (md5, sha1, sha256, sha384 or sha512)")
		}
		alg = "sha256"
	}
	h, ok := sigMACHashes[alg]
	if !ok {
		return nil, fmt.Errorf("algorithm: unknown (want md5, sha1, sha256, sha384 or sha512)")
	}
	secrets, err := sigDecodeSecrets(o.Secrets, o.SecretEncoding)
	if err != nil {
		return nil, err
	}
	warnShortSecrets(env, method, secrets)
	v, tag, err := sigBuild(env, method, o)
	if err != nil {
		return nil, err
	}
	if method == "digest" && !v.usesSecret {
		return nil, fmt.Errorf("signed: a digest needs {secret} in its template, such as \"{body}{secret}\"")
	}
	v.checks = []sigCheck{&sigMACCheck{tagName: tag, hash: h, keyed: method != "digest", secrets: secrets}}
	return v, nil
}

// sigDecodeSecrets decodes a secrets list. Errors name the entry, never its value.
func sigDecodeSecrets(list []string, enc string) ([][]byte, error) {
	if len(list) == 0 {
		return nil, fmt.Errorf("secrets: at least one secret is required")
	}
	out := make([][]byte, 0, len(list))
	for i, s := range list {
		if s == "" {
			return nil, fmt.Errorf("secrets[%d]: empty (is its environment variable set?)", i)
		}
		var (
			b   []byte
			err error
		)
		switch enc {
		case "", "raw":
			b = []byte(s)
		case "base64":
			b, err = sigDecodeBase64(s)
		case "hex":
			b, err = hex.DecodeString(s)
		case "whsec":
			b, err = sigDecodeBase64(strings.TrimPrefix(s, "whsec_"))
		default:
			return nil, fmt.Errorf("secret_encoding: unknown (want raw, base64, hex or whsec)")
		}
		if err != nil {
			return nil, fmt.Errorf("secrets[%d]: not valid %s", i, enc)
		}
		if len(b) == 0 {
			return nil, fmt.Errorf("secrets[%d]: empty once decoded", i)
		}
		out = append(out, b)
	}
	return out, nil
}

func sigDecodeBase64(s string) ([]byte, error) {
	b, err := base64.StdEncoding.DecodeString(s)
	if err != nil {
		b, err = base64.RawStdEncoding.DecodeString(s)
	}
	return b, err
}

// sigBuild builds what every signature method shares from o, and returns
// the tag of the entries that carry signatures.
func sigBuild(env *Env, method string, o *sigOptions) (*sigVerifier, string, error) {
	v := &sigVerifier{now: time.Now}
	if env != nil {
		v.now = env.now
	}
	if o.Signature == "" {
		return nil, "", fmt.Errorf("signature: required (header:Name or json:path)")
	}
	var err error
	if v.sig, err = sigParseLocator("signature", o.Signature); err != nil {
		return nil, "", err
	}
	v.scheme = o.Scheme
	if v.scheme == "" {
		v.scheme = sigSchemeList
	}
	tag := ""
	switch v.scheme {
	case sigSchemeList:
		for opt, val := range map[string]string{"signature_key": o.SignatureKey, "timestamp_key": o.TimestampKey, "version": o.Version} {
			if val != "" {
				return nil, "", fmt.Errorf("%s: not an option of scheme list", opt)
			}
		}
		v.prefix = o.Prefix
	case sigSchemeKV:
		if o.Prefix != "" || o.Version != "" {
			return nil, "", fmt.Errorf("prefix and version: not options of scheme kv (use signature_key)")
		}
		tag = cmp.Or(o.SignatureKey, "v1")
		v.tsKey = o.TimestampKey
		if v.tsKey == tag || strings.ContainsAny(tag+v.tsKey, "=, \t") || tag == "-" {
			return nil, "", fmt.Errorf("signature_key and timestamp_key: must differ and contain no '=', ',' or space")
		}
	case sigSchemeVersioned:
		if o.Prefix != "" || o.SignatureKey != "" || o.TimestampKey != "" {
			return nil, "", fmt.Errorf("prefix, signature_key and timestamp_key: not options of scheme versioned (use version)")
		}
		tag = cmp.Or(o.Version, "v1")
		if strings.ContainsAny(tag, ", \t") || tag == "-" {
			return nil, "", fmt.Errorf("version: must contain no ',' or space")
		}
	default:
		return nil, "", fmt.Errorf("scheme: unknown (want list, kv or versioned)")
	}
	v.enc = o.Encoding
	if v.enc == "" {
		v.enc = sigEncHex
		if method == "public_key" {
			v.enc = sigEncBase64
		}
	}
	switch v.enc {
	case sigEncHex, sigEncBase64, sigEncBase64URL:
	default:
		return nil, "", fmt.Errorf("encoding: unknown (want hex, base64 or base64url)")
	}
	if o.Timestamp != "" {
		if v.tsKey != "" {
			return nil, "", fmt.Errorf("timestamp: not with timestamp_key (the timestamp is in one place)")
		}
		if v.ts, err = sigParseLocator("timestamp", o.Timestamp); err != nil {
			return nil, "", err
		}
	}
	timestamped := v.ts.kind != "" || v.tsKey != ""
	v.tolerance = DefaultSignatureTolerance
	if o.Tolerance != nil {
		if !timestamped {
			return nil, "", fmt.Errorf("tolerance: needs timestamp (or timestamp_key) to say where the timestamp is")
		}
		if o.Tolerance.D() <= 0 {
			return nil, "", fmt.Errorf("tolerance: must be positive")
		}
		v.tolerance = o.Tolerance.D()
	}
	if v.id, err = sigParseLocator("id", o.ID); err != nil {
		return nil, "", err
	}
	switch {
	case o.Signed == "" || o.Signed == "body":
		v.signed = sigSignedBody
	case strings.HasPrefix(o.Signed, "json:") && !strings.ContainsAny(o.Signed, "{}"):
		v.signed = sigSignedJSON
		if v.field, err = sigParseLocator("signed", o.Signed); err != nil {
			return nil, "", err
		}
	default:
		v.signed = sigSignedTemplate
		if v.tmpl, err = sigParseTemplate(o.Signed); err != nil {
			return nil, "", fmt.Errorf("signed: %w", err)
		}
	}
	var hasBody, tsPart, hasTS, idPart, hasID bool
	for _, p := range v.tmpl {
		switch p.kind {
		case sigPartBody:
			hasBody = true
		case sigPartSecret:
			v.usesSecret = true
		case sigPartTimestamp:
			tsPart = true
		case sigPartID:
			idPart = true
		case sigPartHeader:
			hasTS = hasTS || (v.ts.kind == "header" && p.text == v.ts.name)
			hasID = hasID || (v.id.kind == "header" && p.text == v.id.name)
		}
	}
	hasTS = hasTS || tsPart
	hasID = hasID || idPart
	if v.signed == sigSignedTemplate && !hasBody {
		return nil, "", fmt.Errorf("signed: the template must include {body}, or the body would not be signed")
	}
	if v.usesSecret && method == "public_key" {
		return nil, "", fmt.Errorf("signed: {secret} has no meaning for public_key")
	}
	if tsPart && !timestamped {
		return nil, "", fmt.Errorf("signed: {timestamp} needs the timestamp option to say where the timestamp is")
	}
	if (v.ts.kind == "header" || v.tsKey != "") && !hasTS {
		return nil, "", fmt.Errorf("timestamp: checked but not signed; add {timestamp} to signed, or anyone could refresh an old request")
	}
	if v.id.kind != "" && !hasID {
		return nil, "", fmt.Errorf("id: set, but signed has no {id}")
	}
	if idPart && v.id.kind == "" {
		return nil, "", fmt.Errorf("signed: {id} needs the id option to say where the id is")
	}
	if o.Covers != "" {
		if v.signed != sigSignedJSON {
			return nil, "", fmt.Errorf("covers: needs signed: json:path")
		}
		if v.covers, err = sigParseLocator("covers", o.Covers); err != nil {
			return nil, "", err
		}
		if v.covers.kind != "json" {
			return nil, "", fmt.Errorf("covers: want json:path")
		}
	}
	return v, tag, nil
}

// sigLocator finds a value in a request: a header or a field of the JSON body.
type sigLocator struct {
	kind  string // "header" or "json"; "" finds nothing
	name  string // canonical header name
	gpath string // gjson path, escaped
}

// sigParseLocator parses "header:Name" or "json:path.to.field" for option opt.
func sigParseLocator(opt, s string) (sigLocator, error) {
	if s == "" {
		return sigLocator{}, nil
	}
	kind, arg, ok := strings.Cut(s, ":")
	switch {
	case ok && kind == "header" && sigHeaderName(arg):
		return sigLocator{kind: "header", name: http.CanonicalHeaderKey(arg)}, nil
	case ok && kind == "json" && arg != "":
		segs := strings.Split(arg, ".")
		for i, seg := range segs {
			if seg == "" {
				return sigLocator{}, fmt.Errorf("%s: invalid: empty path segment", opt)
			}
			segs[i] = gjson.Escape(seg)
		}
		return sigLocator{kind: "json", gpath: strings.Join(segs, ".")}, nil
	}
	return sigLocator{}, fmt.Errorf("%s: invalid (want header:Name or json:path.to.field)", opt)
}

// sigRequest reads located values from a request, checking at most once that
// the body is JSON.
type sigRequest struct {
	r              *Request
	checked, valid bool
}

// lookup returns the located value: a header's first value, or a JSON
// string (and, when numbers is set, a JSON number as written). ok is false
// when it is absent, of another type, or the body is not JSON.
func (rv *sigRequest) lookup(l sigLocator, numbers bool) (string, bool) {
	switch l.kind {
	case "header":
		vals := rv.r.Header.Values(l.name)
		if len(vals) == 0 {
			return "", false
		}
		return vals[0], true
	case "json":
		if !rv.checked {
			// The depth is checked first: gjson's validator recurses once
			// per level of nesting.
			rv.checked = true
			rv.valid = jsonlimit.Check(rv.r.Body, rv.r.MaxJSONDepth) == nil && gjson.ValidBytes(rv.r.Body)
		}
		if !rv.valid {
			return "", false
		}
		res := gjson.GetBytes(rv.r.Body, l.gpath)
		switch res.Type {
		case gjson.String:
			if strings.IndexByte(res.Raw, '\\') < 0 && utf8.ValidString(res.Str) {
				return res.Str, true
			}
			var s string
			if err := json.Unmarshal([]byte(res.Raw), &s); err != nil {
				return "", false
			}
			return s, true
		case gjson.Number:
			if numbers {
				return res.Raw, true
			}
		}
	}
	return "", false
}
