package verify

// oauth_jwt: bearer tokens that are JWTs (RFC 7519) signed with a key from a
// JWKS URL (see jwks.go) or from static keys and secrets. The token is
// bounded and checked cheaply before any parsing, the algorithm must be in
// the configured allow-list (never "none"), and keys are typed: an HS*
// token is checked only against `secrets`, a public-key token only against
// public keys of the matching type, so a public key can never serve as an
// HMAC secret (the key-confusion attack).

import (
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
	"gopkg.in/yaml.v3"

	"hookd"
	"hookd/internal/config"
)

func init() { Register("oauth_jwt", newOAuthJWT) }

// Limits and defaults of oauth_jwt.
const (
	// oauthMaxToken bounds a bearer token, checked before anything parses it.
	oauthMaxToken = 8 << 10
	// oauthJWTMaxHeader bounds the encoded JOSE header segment.
	oauthJWTMaxHeader = 4 << 10
	// oauthJWTMaxCandidates bounds the keys one token is tried against
	// (tokens without a kid are tried against every key of the right type).
	oauthJWTMaxCandidates = 16
	oauthJWTDefaultLeeway = 30 * time.Second
	oauthJWTMaxLeeway     = 60 * time.Second
	oauthJWKSDefaultTTL   = time.Hour
	oauthJWKSDefaultWait  = 5 * time.Second
	oauthMinRSABits       = 2048
)

// oauthJWTOptions are the options of oauth_jwt.
type oauthJWTOptions struct {
	// JWKSURL is where the issuer publishes its keys (a JWK Set).
	JWKSURL string `yaml:"jwks_url"`
	// JWKSTTL is how long a fetched key set is used before it is
	// refreshed. Default 1h, at least 1m.
	JWKSTTL *config.Duration `yaml:"jwks_ttl"`
	// JWKSTimeout bounds one fetch of the key set. Default 5s.
	JWKSTimeout *config.Duration `yaml:"jwks_timeout"`
	// Keys are static public keys: PEM (PUBLIC KEY, RSA PUBLIC KEY,
	// CERTIFICATE), a JWK or JWK Set as JSON text, or a JWK written as a
	// YAML mapping.
	Keys []oauthJWTKeySpec `yaml:"keys"`
	// Secrets are the HMAC keys of HS256/384/512; several for rotation.
	Secrets stringList `yaml:"secrets"`
	// Algorithms is the allow-list of signature algorithms; required.
	Algorithms stringList `yaml:"algorithms"`
	// Issuer, when set, must equal the iss claim.
	Issuer string `yaml:"issuer"`
	// Audience, when set, must intersect the aud claim.
	Audience stringList `yaml:"audience"`
	// Leeway is the clock skew allowed on exp, nbf and iat. Default 30s,
	// at most 60s.
	Leeway *config.Duration `yaml:"leeway"`
	// RequiredClaims name claims that must be present (and not null).
	RequiredClaims stringList `yaml:"required_claims"`
	// AllowHTTP allows a plain http:// jwks_url beyond loopback.
	AllowHTTP bool `yaml:"allow_http"`
}

// oauthJWTAlgorithms are the signature algorithms oauth_jwt knows.
var oauthJWTAlgorithms = map[string]jose.SignatureAlgorithm{
	"HS256": jose.HS256, "HS384": jose.HS384, "HS512": jose.HS512,
	"RS256": jose.RS256, "RS384": jose.RS384, "RS512": jose.RS512,
	"PS256": jose.PS256, "PS384": jose.PS384, "PS512": jose.PS512,
	"ES256": jose.ES256, "ES384": jose.ES384, "ES512": jose.ES512,
	"EdDSA": jose.EdDSA,
}

// oauthJWTHMACMin is the shortest secret each HS algorithm accepts
// (RFC 7518 §3.2: at least the hash size).
var oauthJWTHMACMin = map[string]int{"HS256": 32, "HS384": 48, "HS512": 64}

func oauthJWTIsHMAC(alg string) bool { return strings.HasPrefix(alg, "HS") }

// oauthJWTKey is one public verification key.
type oauthJWTKey struct {
	kid string
	// alg is the JWK's "alg", when it names one: the key serves only it.
	alg string
	// key is *rsa.PublicKey, *ecdsa.PublicKey or ed25519.PublicKey.
	key any
}

// fits reports whether the key may verify a token signed with alg.
func (k oauthJWTKey) fits(alg string) bool {
	if k.alg != "" && k.alg != alg {
		return false
	}
	switch pk := k.key.(type) {
	case *rsa.PublicKey:
		return strings.HasPrefix(alg, "RS") || strings.HasPrefix(alg, "PS")
	case *ecdsa.PublicKey:
		switch alg {
		case "ES256":
			return pk.Curve == elliptic.P256()
		case "ES384":
			return pk.Curve == elliptic.P384()
		case "ES512":
			return pk.Curve == elliptic.P521()
		}
	case ed25519.PublicKey:
		return alg == "EdDSA"
	}
	return false
}

// oauthJWTVerifier verifies oauth_jwt tokens.
type oauthJWTVerifier struct {
	algs     []jose.SignatureAlgorithm
	allowed  map[string]bool
	secrets  [][]byte
	static   []oauthJWTKey
	jwks     *oauthJWKS
	issuer   string
	audience []string
	leeway   time.Duration
	required []string
	now      func() time.Time

	// parses counts tokens handed to the JOSE parser (tests assert that
	// oversized or malformed tokens never get there).
	parses atomic.Int64
}

func newOAuthJWT(env *Env, m config.Verify) (Verifier, error) {
	var o oauthJWTOptions
	if err := m.Decode(&o); err != nil {
		return nil, err
	}
	v := &oauthJWTVerifier{
		allowed:  map[string]bool{},
		issuer:   o.Issuer,
		audience: o.Audience,
		required: o.RequiredClaims,
		leeway:   oauthJWTDefaultLeeway,
		now:      oauthClock(env),
	}
	if len(o.Algorithms) == 0 {
		return nil, errors.New("algorithms: required: list the signature algorithms the issuer uses, such as [RS256]")
	}
	var hmacAlgs, publicAlgs []string
	for _, a := range o.Algorithms {
		if strings.EqualFold(a, "none") {
			return nil, errors.New(`algorithms: "none" is never accepted`)
		}
		alg, ok := oauthJWTAlgorithms[a]
		if !ok {
			return nil, fmt.Errorf("algorithms: unknown algorithm %q (want HS256/384/512, RS256/384/512, PS256/384/512, ES256/384/512 or EdDSA)", a)
		}
		if v.allowed[a] {
			continue
		}
		v.allowed[a] = true
		v.algs = append(v.algs, alg)
		if oauthJWTIsHMAC(a) {
			hmacAlgs = append(hmacAlgs, a)
		} else {
			publicAlgs = append(publicAlgs, a)
		}
	}

	// HMAC secrets. They are a separate, typed list: an HS* token is
	// checked against them only, never against a public key's bytes.
	if len(hmacAlgs) > 0 && len(o.Secrets) == 0 {
		return nil, fmt.Errorf("secrets: required for %s", strings.Join(hmacAlgs, ", "))
	}
	if len(hmacAlgs) == 0 && len(o.Secrets) > 0 {
		return nil, errors.New("secrets: only HS256/384/512 use secrets; add the algorithm or remove the secrets")
	}
	for i, s := range o.Secrets {
		for _, a := range hmacAlgs {
			if len(s) < oauthJWTHMACMin[a] {
				return nil, fmt.Errorf("secrets[%d]: shorter than %d bytes, the minimum for %s (is its environment variable set?)", i, oauthJWTHMACMin[a], a)
			}
		}
		v.secrets = append(v.secrets, []byte(s))
	}

	// Public keys: static or from a JWKS URL.
	if o.JWKSURL != "" && len(o.Keys) > 0 {
		return nil, errors.New("jwks_url and keys: give one or the other")
	}
	for i, ks := range o.Keys {
		keys, err := oauthParseStaticKey(ks.text)
		if err != nil {
			return nil, fmt.Errorf("keys[%d]: %w", i, err)
		}
		v.static = append(v.static, keys...)
	}
	if o.JWKSURL == "" && (o.JWKSTTL != nil || o.JWKSTimeout != nil) {
		return nil, errors.New("jwks_ttl and jwks_timeout: only apply with jwks_url")
	}
	if len(publicAlgs) > 0 && o.JWKSURL == "" && len(v.static) == 0 {
		return nil, fmt.Errorf("jwks_url or keys: required for %s", strings.Join(publicAlgs, ", "))
	}
	if len(publicAlgs) == 0 && (o.JWKSURL != "" || len(v.static) > 0) {
		return nil, errors.New("algorithms: jwks_url or keys are given but no public-key algorithm (RS*, PS*, ES*, EdDSA) is allowed")
	}
	for i, k := range v.static {
		if !slices.ContainsFunc(publicAlgs, k.fits) {
			return nil, fmt.Errorf("keys[%d]: no allowed algorithm can use this key (allowed: %s)", i, strings.Join(publicAlgs, ", "))
		}
	}
	if o.JWKSURL != "" {
		if err := oauthCheckURL(env, o.JWKSURL, o.AllowHTTP); err != nil {
			return nil, fmt.Errorf("jwks_url: %w", err)
		}
		ttl, wait := oauthJWKSDefaultTTL, oauthJWKSDefaultWait
		if o.JWKSTTL != nil {
			if ttl = o.JWKSTTL.D(); ttl < time.Minute {
				return nil, fmt.Errorf("jwks_ttl: must be at least 1m, got %s", ttl)
			}
		}
		if o.JWKSTimeout != nil {
			if wait = o.JWKSTimeout.D(); wait <= 0 || wait > time.Minute {
				return nil, fmt.Errorf("jwks_timeout: must be between 0 and 1m, got %s", wait)
			}
		}
		v.jwks = newOAuthJWKS(o.JWKSURL, oauthHTTPClient(env, wait), wait, ttl, v.now, oauthLog(env), env.Source)
	}

	if o.Leeway != nil {
		v.leeway = o.Leeway.D()
		if v.leeway < 0 || v.leeway > oauthJWTMaxLeeway {
			return nil, fmt.Errorf("leeway: must be between 0s and 60s, got %s", v.leeway)
		}
	}
	for i, c := range v.required {
		if c == "" {
			return nil, fmt.Errorf("required_claims[%d]: empty", i)
		}
	}
	for i, a := range v.audience {
		if a == "" {
			return nil, fmt.Errorf("audience[%d]: empty (is its environment variable set?)", i)
		}
	}
	if v.audience == nil {
		oauthLog(env).Warn("oauth_jwt without audience accepts tokens the issuer made for any audience", "source", env.Source)
	}
	return v, nil
}

// CredentialHeaders names the header that carries the token.
func (v *oauthJWTVerifier) CredentialHeaders() []string { return []string{"Authorization"} }

// Failures. Their messages are what a client sees: nothing from the token.
var (
	errOAuthNoToken = errors.New("no bearer token")
	errOAuthBadForm = errors.New("malformed bearer token")
)

// oauthInvalid is the 401 for a token that was sent and is not valid;
// cause is logged at debug level, never shown, and never holds token
// content.
func oauthInvalid(msg string, cause error) error {
	return WithChallenge(&hookd.Error{Code: hookd.EUnauthorized, Message: msg, Err: cause}, ChallengeInvalidBearer)
}

// oauthMissing is the 401 for a request that sent no bearer token.
func oauthMissing() error {
	return WithChallenge(Unauthorized("a bearer token is required"), ChallengeBearer)
}

// Internal causes of a refused token (logged, never shown).
var (
	errJWTAlg       = errors.New("jwt: algorithm not allowed")
	errJWTNoKey     = errors.New("jwt: no key matches the token")
	errJWTSignature = errors.New("jwt: signature does not verify")
	errJWTNoExp     = errors.New("jwt: exp claim missing")
	errJWTClaim     = errors.New("jwt: a required claim is missing")
)

// Verify checks the request's bearer token.
func (v *oauthJWTVerifier) Verify(ctx context.Context, r *Request) error {
	tok, err := oauthBearerToken(r.Header)
	if errors.Is(err, errOAuthNoToken) {
		return oauthMissing()
	}
	if err != nil {
		return oauthInvalid("invalid token", err)
	}
	hdr, err := oauthJWTPreParse(tok, v.allowed)
	if err != nil {
		return oauthInvalid("invalid token", err)
	}

	v.parses.Add(1)
	parsed, err := jwt.ParseSigned(tok, v.algs)
	if err != nil || len(parsed.Headers) != 1 {
		return oauthInvalid("invalid token", errOAuthBadForm)
	}
	// The JOSE parser's view of the header is what verifies; it must agree
	// with the pre-parse (duplicate member names could make them differ).
	if h := parsed.Headers[0]; h.Algorithm != hdr.Alg || h.KeyID != hdr.Kid {
		return oauthInvalid("invalid token", errOAuthBadForm)
	}

	var claims jwt.Claims
	var all map[string]any
	dest := []any{&claims}
	if len(v.required) > 0 {
		dest = append(dest, &all)
	}
	if err := v.verifySignature(ctx, parsed, hdr, dest); err != nil {
		return err
	}

	if claims.Expiry == nil {
		return oauthInvalid("invalid token", errJWTNoExp)
	}
	exp := jwt.Expected{Issuer: v.issuer, AnyAudience: v.audience, Time: v.now()}
	if err := claims.ValidateWithLeeway(exp, v.leeway); err != nil {
		if errors.Is(err, jwt.ErrExpired) {
			return oauthInvalid("token expired", err)
		}
		return oauthInvalid("invalid token", err)
	}
	for _, c := range v.required {
		if val, ok := all[c]; !ok || val == nil {
			return oauthInvalid("invalid token", errJWTClaim)
		}
	}
	return nil
}

// verifySignature finds the keys that may have signed the token, tries
// them, and decodes the verified claims into dest.
func (v *oauthJWTVerifier) verifySignature(ctx context.Context, parsed *jwt.JSONWebToken, hdr oauthJWTHeader, dest []any) error {
	if oauthJWTIsHMAC(hdr.Alg) {
		// Every secret is tried, whichever matches (rotation); the MAC
		// comparison inside is constant-time.
		ok := false
		for _, s := range v.secrets {
			if parsed.Claims(s, dest...) == nil {
				ok = true
				break
			}
		}
		if !ok {
			return oauthInvalid("invalid token", errJWTSignature)
		}
		return nil
	}

	keys := oauthJWTCandidates(v.static, hdr.Alg, hdr.Kid)
	if v.jwks != nil {
		set, err := v.jwks.keys(ctx, false)
		if err == nil && oauthJWTNeedRefetch(set, hdr.Alg, hdr.Kid) {
			// An unknown kid may be a key the issuer just rotated in. The
			// refetch is rate-limited and single-flight (see jwks.go).
			set, err = v.jwks.keys(ctx, true)
		}
		if err != nil {
			return Unavailable("token signing keys unavailable", err)
		}
		keys = append(keys, oauthJWTCandidates(set, hdr.Alg, hdr.Kid)...)
	}
	if len(keys) == 0 {
		return oauthInvalid("invalid token", errJWTNoKey)
	}
	if len(keys) > oauthJWTMaxCandidates {
		keys = keys[:oauthJWTMaxCandidates]
	}
	for _, k := range keys {
		if parsed.Claims(k.key, dest...) == nil {
			return nil
		}
	}
	return oauthInvalid("invalid token", errJWTSignature)
}

// oauthJWTCandidates returns the keys of set that may verify a token with
// alg and kid: of the right type, and with that kid when the token names
// one and some key has it (else the keys without a kid).
func oauthJWTCandidates(set []oauthJWTKey, alg, kid string) []oauthJWTKey {
	var exact, anon []oauthJWTKey
	for _, k := range set {
		if !k.fits(alg) {
			continue
		}
		switch {
		case kid == "" || k.kid == kid:
			exact = append(exact, k)
		case k.kid == "":
			anon = append(anon, k)
		}
	}
	if len(exact) > 0 {
		return exact
	}
	if kid == "" {
		return nil
	}
	return anon
}

// oauthJWTNeedRefetch reports whether a token's key is missing from a
// fetched set: its kid is unknown, or no key fits at all.
func oauthJWTNeedRefetch(set []oauthJWTKey, alg, kid string) bool {
	if kid != "" {
		return !slices.ContainsFunc(set, func(k oauthJWTKey) bool { return k.kid == kid })
	}
	return len(oauthJWTCandidates(set, alg, kid)) == 0
}

// oauthJWTHeader is what the pre-parse reads of a JOSE header.
type oauthJWTHeader struct {
	Alg string `json:"alg"`
	Kid string `json:"kid"`
}

// oauthJWTPreParse checks a token's shape cheaply before the JOSE parser
// sees it: at most oauthMaxToken bytes, exactly three non-empty segments
// of the base64url alphabet (so an unsigned "alg: none" token with its
// empty signature fails here), a header that decodes to a JSON object
// whose alg is allowed. It returns that header.
func oauthJWTPreParse(tok string, allowed map[string]bool) (oauthJWTHeader, error) {
	var h oauthJWTHeader
	if len(tok) > oauthMaxToken {
		return h, errOAuthBadForm
	}
	dot1, dot2 := -1, -1
	for i := 0; i < len(tok); i++ {
		c := tok[i]
		switch {
		case c == '.':
			switch {
			case dot1 < 0:
				dot1 = i
			case dot2 < 0:
				dot2 = i
			default:
				return h, errOAuthBadForm
			}
		case oauthIsBase64URL(c):
		default:
			return h, errOAuthBadForm
		}
	}
	if dot1 <= 0 || dot2 <= dot1+1 || dot2 == len(tok)-1 {
		return h, errOAuthBadForm
	}
	if dot1 > oauthJWTMaxHeader {
		return h, errOAuthBadForm
	}
	// One spelling per token: a segment with non-zero trailing bits would
	// decode to the same bytes as its canonical form.
	for _, seg := range []string{tok[:dot1], tok[dot1+1 : dot2], tok[dot2+1:]} {
		if !oauthCanonicalBase64URL(seg) {
			return h, errOAuthBadForm
		}
	}
	raw, err := base64.RawURLEncoding.Strict().DecodeString(tok[:dot1])
	if err != nil {
		return h, errOAuthBadForm
	}
	if len(raw) == 0 || raw[0] != '{' || answerDepth(raw) != nil {
		return h, errOAuthBadForm
	}
	if err := json.Unmarshal(raw, &h); err != nil {
		return oauthJWTHeader{}, errOAuthBadForm
	}
	if !allowed[h.Alg] {
		return oauthJWTHeader{}, errJWTAlg
	}
	return h, nil
}

// oauthCanonicalBase64URL reports whether seg, already known to be of the
// base64url alphabet, is canonical unpadded base64: a length that is not 1
// modulo 4, and zero bits in its last character beyond the encoded bytes.
// It looks at the last character only.
func oauthCanonicalBase64URL(seg string) bool {
	var unused byte
	switch len(seg) % 4 {
	case 0:
		return true
	case 1:
		return false
	case 2:
		unused = 0x0f
	case 3:
		unused = 0x03
	}
	c := seg[len(seg)-1]
	var v byte
	switch {
	case 'A' <= c && c <= 'Z':
		v = c - 'A'
	case 'a' <= c && c <= 'z':
		v = c - 'a' + 26
	case '0' <= c && c <= '9':
		v = c - '0' + 52
	case c == '-':
		v = 62
	default: // '_'
		v = 63
	}
	return v&unused == 0
}

func oauthIsBase64URL(c byte) bool {
	return 'A' <= c && c <= 'Z' || 'a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '-' || c == '_'
}

// oauthBearerToken returns the token of the request's Authorization:
// Bearer header (RFC 6750 §2.1; the scheme is case-insensitive). It
// returns errOAuthNoToken when no bearer token was sent (no Authorization
// header, another scheme, or nothing after "Bearer"), and errOAuthBadForm
// for several Authorization headers, a token over oauthMaxToken bytes or a
// token outside the b64token syntax.
func oauthBearerToken(h http.Header) (string, error) {
	vals := h.Values("Authorization")
	switch len(vals) {
	case 0:
		return "", errOAuthNoToken
	case 1:
	default:
		return "", errOAuthBadForm
	}
	v := strings.TrimLeft(vals[0], " \t")
	if len(v) < 6 || !strings.EqualFold(v[:6], "Bearer") || (len(v) > 6 && v[6] != ' ') {
		return "", errOAuthNoToken
	}
	// Bound before any scan: a huge header costs no more than a small one.
	if len(v) > oauthMaxToken+64 {
		return "", errOAuthBadForm
	}
	rest := v[6:]
	tok := strings.Trim(rest, " \t")
	if tok == "" {
		return "", errOAuthNoToken
	}
	if len(tok) > oauthMaxToken {
		return "", errOAuthBadForm
	}
	// b64token = 1*( ALPHA / DIGIT / "-" / "." / "_" / "~" / "+" / "/" ) *"="
	i := 0
	for i < len(tok) && (oauthIsBase64URL(tok[i]) || tok[i] == '.' || tok[i] == '~' || tok[i] == '+' || tok[i] == '/') {
		i++
	}
	if i == 0 {
		return "", errOAuthBadForm
	}
	for i < len(tok) && tok[i] == '=' {
		i++
	}
	if i != len(tok) {
		return "", errOAuthBadForm
	}
	return tok, nil
}

// oauthJWTKeySpec is one entry of `keys`: a string (PEM, or JSON of a JWK
// or JWK Set) or a JWK written as a YAML mapping.
type oauthJWTKeySpec struct{ text string }

// UnmarshalYAML accepts a string or a mapping.
func (k *oauthJWTKeySpec) UnmarshalYAML(n *yaml.Node) error {
	switch n.Kind {
	case yaml.ScalarNode:
		k.text = n.Value
		return nil
	case yaml.MappingNode:
		var m map[string]any
		if err := n.Decode(&m); err != nil {
			return err
		}
		b, err := json.Marshal(m)
		if err != nil {
			return fmt.Errorf("line %d: %w", n.Line, err)
		}
		k.text = string(b)
		return nil
	}
	return fmt.Errorf("line %d: want a PEM public key, a JWK or a JWK Set", n.Line)
}

// oauthParseStaticKey parses one configured key. Private keys and
// symmetric JWKs are refused: secrets go in `secrets`, and a private key
// does not belong in a verifier's configuration.
func oauthParseStaticKey(text string) ([]oauthJWTKey, error) {
	s := strings.TrimSpace(text)
	switch {
	case s == "":
		return nil, errors.New("empty (is its environment variable set?)")
	case strings.HasPrefix(s, "-----BEGIN"):
		block, rest := pem.Decode([]byte(s))
		if block == nil {
			return nil, errors.New("invalid PEM")
		}
		if len(strings.TrimSpace(string(rest))) > 0 {
			return nil, errors.New("several PEM blocks in one entry; give one key per entry")
		}
		var pub any
		var err error
		switch block.Type {
		case "PUBLIC KEY":
			pub, err = x509.ParsePKIXPublicKey(block.Bytes)
		case "RSA PUBLIC KEY":
			pub, err = x509.ParsePKCS1PublicKey(block.Bytes)
		case "CERTIFICATE":
			var cert *x509.Certificate
			if cert, err = x509.ParseCertificate(block.Bytes); err == nil {
				pub = cert.PublicKey
			}
		default:
			if strings.Contains(block.Type, "PRIVATE") {
				return nil, errors.New("a private key: give the public key only")
			}
			return nil, fmt.Errorf("unsupported PEM block %q (want PUBLIC KEY, RSA PUBLIC KEY or CERTIFICATE)", block.Type)
		}
		if err != nil {
			return nil, fmt.Errorf("invalid %s: %w", strings.ToLower(block.Type), err)
		}
		k, err := oauthJWTKeyOf(pub, "", "")
		if err != nil {
			return nil, err
		}
		return []oauthJWTKey{k}, nil
	case strings.HasPrefix(s, "{"):
		var probe struct {
			Keys []json.RawMessage `json:"keys"`
		}
		if err := json.Unmarshal([]byte(s), &probe); err != nil {
			return nil, errors.New("invalid JSON (want a JWK or a JWK Set)")
		}
		raws := probe.Keys
		if raws == nil {
			raws = []json.RawMessage{json.RawMessage(s)}
		}
		var out []oauthJWTKey
		for i, raw := range raws {
			k, err := oauthParseJWK(raw)
			if err != nil {
				if len(raws) > 1 {
					return nil, fmt.Errorf("key %d: %w", i, err)
				}
				return nil, err
			}
			out = append(out, k)
		}
		if len(out) == 0 {
			return nil, errors.New("a JWK Set without keys")
		}
		return out, nil
	}
	return nil, errors.New("want a PEM public key (-----BEGIN PUBLIC KEY-----), a JWK or a JWK Set")
}

// oauthParseJWK parses one public signing JWK. It refuses private and
// symmetric keys (a JWK Set from a URL must never supply an HMAC secret),
// keys meant for encryption, and unsupported types.
func oauthParseJWK(raw []byte) (oauthJWTKey, error) {
	var probe struct {
		Kty  string          `json:"kty"`
		Use  string          `json:"use"`
		D    json.RawMessage `json:"d"`
		K    json.RawMessage `json:"k"`
		P    json.RawMessage `json:"p"`
		Q    json.RawMessage `json:"q"`
		DP   json.RawMessage `json:"dp"`
		DQ   json.RawMessage `json:"dq"`
		QI   json.RawMessage `json:"qi"`
		Priv json.RawMessage `json:"priv"`
	}
	if err := json.Unmarshal(raw, &probe); err != nil {
		return oauthJWTKey{}, errors.New("invalid JWK JSON")
	}
	switch probe.Kty {
	case "RSA", "EC", "OKP":
	case "oct":
		return oauthJWTKey{}, errors.New("a symmetric (oct) JWK: HMAC keys go in secrets")
	default:
		return oauthJWTKey{}, errors.New("unsupported JWK type (want RSA, EC or OKP)")
	}
	if probe.D != nil || probe.K != nil || probe.P != nil || probe.Q != nil || probe.DP != nil || probe.DQ != nil || probe.QI != nil || probe.Priv != nil {
		return oauthJWTKey{}, errors.New("a private JWK: give the public key only")
	}
	if probe.Use != "" && probe.Use != "sig" {
		return oauthJWTKey{}, errors.New(`a JWK whose use is not "sig"`)
	}
	var jwk jose.JSONWebKey
	if err := jwk.UnmarshalJSON(raw); err != nil {
		return oauthJWTKey{}, errors.New("invalid JWK")
	}
	if jwk.Algorithm != "" {
		if _, ok := oauthJWTAlgorithms[jwk.Algorithm]; !ok || oauthJWTIsHMAC(jwk.Algorithm) {
			return oauthJWTKey{}, errors.New("a JWK whose alg is not a public-key signature algorithm")
		}
	}
	return oauthJWTKeyOf(jwk.Key, jwk.KeyID, jwk.Algorithm)
}

// oauthJWTKeyOf checks a public key's type and strength.
func oauthJWTKeyOf(pub any, kid, alg string) (oauthJWTKey, error) {
	switch pk := pub.(type) {
	case *rsa.PublicKey:
		if pk.N.BitLen() < oauthMinRSABits {
			return oauthJWTKey{}, fmt.Errorf("RSA key of %d bits; at least %d are required", pk.N.BitLen(), oauthMinRSABits)
		}
	case *ecdsa.PublicKey:
		switch pk.Curve {
		case elliptic.P256(), elliptic.P384(), elliptic.P521():
		default:
			return oauthJWTKey{}, errors.New("unsupported elliptic curve (want P-256, P-384 or P-521)")
		}
	case ed25519.PublicKey:
		if len(pk) != ed25519.PublicKeySize {
			return oauthJWTKey{}, errors.New("invalid Ed25519 key")
		}
	default:
		return oauthJWTKey{}, errors.New("unsupported key type (want RSA, ECDSA or Ed25519)")
	}
	return oauthJWTKey{kid: kid, alg: alg, key: pub}, nil
}

func oauthClock(env *Env) func() time.Time {
	if env.Now != nil {
		return env.Now
	}
	return time.Now
}

func oauthLog(env *Env) *slog.Logger {
	if env.Log != nil {
		return env.Log
	}
	return slog.New(slog.DiscardHandler)
}
