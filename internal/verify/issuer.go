package verify

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"mime"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"hookd/internal/config"
	"hookd/internal/secret"
)

// Issuer is hookd's own OAuth 2.0 authorization server for sources of
// type oauth_issuer: it serves the client-credentials grant (RFC 6749
// §4.4) at POST /oauth/token and checks the tokens it issued.
//
// Tokens are self-contained and signed, so that they stay valid across
// restarts and replicas without a token table:
//
//	hk_at_ base64url(payload) "." base64url(HMAC-SHA256(key, "hk_at_" base64url(payload)))
//
// where the payload is JSON with the client id, the source, issue and
// expiry times in Unix milliseconds, a random token id and the fingerprint
// of the client secret that got the token (a keyed hash, see
// secretFingerprint): a token is valid only while its client still has
// that secret, so rotating a secret out revokes its tokens. The key is
// generated once and kept in the store (setting "oauth_issuer_key"),
// sealed under the master key (package secret), never in plain text.
type Issuer struct {
	key     []byte
	clients map[string]*issuerClient
	sources map[string]bool
	now     func() time.Time
	log     *slog.Logger
	rand    io.Reader
	limit   *issuerLimiter
}

// IssuerStore keeps the issuer's signing key; store.Store is one.
type IssuerStore interface {
	SettingGetOrCreate(ctx context.Context, name, value string) (string, error)
	SettingPut(ctx context.Context, name, value string) error
}

// IssuerOptions configures NewIssuer.
type IssuerOptions struct {
	// Store keeps the signing key. Required when a source uses oauth_issuer.
	Store IssuerStore
	// Keys returns the master keys that seal the signing key in the store
	// (it may make them on first use). Required when a source uses
	// oauth_issuer.
	Keys func() (*secret.Keyring, error)
	// Sources are scanned for oauth_issuer methods.
	Sources []config.Source
	// Now is the clock; time.Now when nil. Tests inject one.
	Now func() time.Time
	// Log receives warnings and token events (never secrets or tokens).
	Log *slog.Logger
	// Random is the source of the key and token ids; crypto/rand when nil.
	Random io.Reader
	// Limits bound failed client authentications at the token endpoint;
	// zero fields take their defaults.
	Limits config.OAuthIssuer
}

// IssuerMaxForm bounds the body of a token request: the server reads that
// much before the request takes an in-flight slot.
const IssuerMaxForm = issuerMaxForm

// Defaults and bounds of oauth_issuer.
const (
	// IssuerTokenPath is where the token endpoint is mounted.
	IssuerTokenPath = "/oauth/token"
	// IssuerKeySetting is the store setting that keeps the signing key.
	IssuerKeySetting = "oauth_issuer_key"
	// IssuerKeyAD is the associated data the signing key is sealed with.
	IssuerKeyAD = "setting:" + IssuerKeySetting
	// IssuerDefaultValidity is a token's validity when none is set.
	IssuerDefaultValidity = time.Hour
	// issuerMinRecommended is the validity below which hookd warns: seed
	// 000 recommends tokens that last at least an hour.
	issuerMinRecommended = time.Hour
	// issuerMaxValidity bounds validity.
	issuerMaxValidity = config.MaxValidity
	// issuerMaxToken bounds a presented token before it is parsed.
	issuerMaxToken = 4 << 10
	// issuerMaxForm bounds a token request's body.
	issuerMaxForm     = 16 << 10
	issuerTokenPrefix = "hk_at_"
	// issuerTokenVersion is the payload's "v". Version 1 tokens carried
	// no secret fingerprint and are no longer accepted.
	issuerTokenVersion = 2
	// issuerFingerprintBytes is the length of a secret's fingerprint.
	issuerFingerprintBytes = 12
	issuerKeyBytes         = 32
)

// issuerB64 refuses non-canonical encodings, so that a token has exactly one
// spelling.
var issuerB64 = base64.RawURLEncoding.Strict()

type issuerClient struct {
	id      string
	secrets [][]byte
	// fingerprints[i] is secretFingerprint of secrets[i].
	fingerprints [][]byte
	source       string
	validity     time.Duration
}

// issuerOptions are the options of the oauth_issuer method.
type issuerOptions struct {
	// Clients may ask POST /oauth/token for tokens valid on this source.
	Clients []issuerClientOptions `yaml:"clients"`
	// Validity is how long a token is valid: a duration ("1h", "90m") or
	// a bare number of hours (seed 000). Default 1h.
	Validity config.Validity `yaml:"validity"`
}

// issuerClientOptions is one OAuth client.
type issuerClientOptions struct {
	// ID is the client id, unique across every source.
	ID string `yaml:"id"`
	// Secret is the client secret, or a list of them (rotation).
	Secret stringList `yaml:"secret"`
}

// issuerDecode decodes and validates one oauth_issuer method's options
// and returns the validity to use, rounded down to whole seconds.
func issuerDecode(m config.Verify) (issuerOptions, time.Duration, error) {
	var o issuerOptions
	if err := m.Decode(&o); err != nil {
		return o, 0, err
	}
	if len(o.Clients) == 0 {
		return o, 0, fmt.Errorf("clients: required (a list of {id, secret})")
	}
	seen := map[string]bool{}
	for i, c := range o.Clients {
		f := fmt.Sprintf("clients[%d]", i)
		switch {
		case c.ID == "":
			return o, 0, fmt.Errorf("%s.id: required (is its environment variable set?)", f)
		case strings.Contains(c.ID, ":"):
			return o, 0, fmt.Errorf("%s.id: must not contain ':' (HTTP Basic client authentication separates the id from the secret with it)", f)
		case seen[c.ID]:
			return o, 0, fmt.Errorf("%s.id: client %q is listed twice; list its secrets under one entry", f, c.ID)
		}
		seen[c.ID] = true
		if _, err := secretBytes(f+".secret", c.Secret, false, MinSecretLen); err != nil {
			return o, 0, err
		}
	}
	validity := IssuerDefaultValidity
	if o.Validity.IsSet() {
		validity = o.Validity.D().Truncate(time.Second)
	}
	if validity < time.Second || validity > issuerMaxValidity {
		return o, 0, fmt.Errorf("validity: must be between 1s and %s, got %s", issuerMaxValidity, o.Validity.D())
	}
	return o, validity, nil
}

// NewIssuer builds the issuer from every oauth_issuer method of sources and
// loads (or creates, on first start) its signing key from the store. It
// returns nil and no error when no source uses oauth_issuer. A client id
// listed by two sources is an error: its tokens would not say which one
// they are for.
func NewIssuer(ctx context.Context, o IssuerOptions) (*Issuer, error) {
	i := &Issuer{clients: map[string]*issuerClient{}, sources: map[string]bool{}, now: o.Now, log: o.Log, rand: o.Random, limit: newIssuerLimiter(o.Limits)}
	if i.now == nil {
		i.now = time.Now
	}
	if i.log == nil {
		i.log = slog.New(slog.DiscardHandler)
	}
	if i.rand == nil {
		i.rand = rand.Reader
	}
	for _, src := range o.Sources {
		for j, m := range src.Verify {
			if m.Type != "oauth_issuer" {
				continue
			}
			where := fmt.Sprintf("source %s: verify[%d] (oauth_issuer)", src.Name, j)
			opts, validity, err := issuerDecode(m)
			if err != nil {
				return nil, fmt.Errorf("%s: %w", where, err)
			}
			for k, c := range opts.Clients {
				if prev := i.clients[c.ID]; prev != nil {
					return nil, fmt.Errorf("%s: clients[%d].id: client %q is already listed by source %s; a client id must be unique across sources", where, k, c.ID, prev.source)
				}
				secrets, _ := secretBytes("secret", c.Secret, false, MinSecretLen)
				i.clients[c.ID] = &issuerClient{id: c.ID, secrets: secrets, source: src.Name, validity: validity}
			}
			i.sources[src.Name] = true
			if validity < issuerMinRecommended {
				i.log.Warn("oauth_issuer tokens are valid for less than the recommended hour; senders will ask for tokens often",
					"source", src.Name, "validity", validity.String())
			}
		}
	}
	if len(i.clients) == 0 {
		return nil, nil
	}
	if o.Store == nil || o.Keys == nil {
		return nil, errors.New("oauth_issuer: no store and master key to keep the signing key with")
	}
	key, err := i.loadKey(ctx, o.Store, o.Keys)
	if err != nil {
		return nil, fmt.Errorf("oauth_issuer: %w", err)
	}
	i.key = key
	for _, c := range i.clients {
		for _, sec := range c.secrets {
			c.fingerprints = append(c.fingerprints, i.secretFingerprint(c.id, sec))
		}
	}
	return i, nil
}

// secretFingerprint identifies one client secret in the tokens it got: an
// HMAC under the signing key, so that a token, which anyone holding it can
// read, gives no way to test guesses of the secret offline.
func (i *Issuer) secretFingerprint(client string, secret []byte) []byte {
	m := hmac.New(sha256.New, i.key)
	m.Write([]byte("hookd/oauth_issuer/secret\x00" + client + "\x00"))
	m.Write(secret)
	return m.Sum(nil)[:issuerFingerprintBytes]
}

// loadKey returns the signing key kept in the store, generating it on first
// start. It is stored sealed under the master key: a copy of the database
// alone does not let anyone forge a token. A key an earlier version stored
// in plain text is sealed in place; one sealed under an older master key
// is rewrapped under the active one.
func (i *Issuer) loadKey(ctx context.Context, st IssuerStore, keysFn func() (*secret.Keyring, error)) ([]byte, error) {
	keys, err := keysFn()
	if err != nil {
		return nil, fmt.Errorf("keep the signing key: %w", err)
	}
	if keys == nil {
		return nil, errors.New("keep the signing key: no master key")
	}
	ad := []byte(IssuerKeyAD)
	fresh := make([]byte, issuerKeyBytes)
	if _, err := io.ReadFull(i.rand, fresh); err != nil {
		return nil, fmt.Errorf("generate signing key: %w", err)
	}
	sealed, err := keys.Seal([]byte(issuerB64.EncodeToString(fresh)), ad)
	if err != nil {
		return nil, fmt.Errorf("seal signing key: %w", err)
	}
	stored, err := st.SettingGetOrCreate(ctx, IssuerKeySetting, sealed)
	if err != nil {
		return nil, fmt.Errorf("load signing key: %w", err)
	}
	var encoded string
	if strings.HasPrefix(stored, secret.Version+".") {
		plain, err := keys.Open(stored, ad)
		if err != nil {
			return nil, fmt.Errorf("the stored signing key (setting %s) does not open with the master key (is it the key it was sealed under?): %w", IssuerKeySetting, err)
		}
		encoded = string(plain)
		if keys.NeedsRewrap(stored) {
			if tok, err := keys.Rewrap(stored); err == nil {
				if err := st.SettingPut(ctx, IssuerKeySetting, tok); err != nil {
					i.log.Warn("rewrap the oauth_issuer signing key under the active master key", "err", err)
				}
			}
		}
	} else {
		// Stored in plain text by an earlier version: seal it in place.
		encoded = stored
		if _, err := issuerB64.DecodeString(stored); err == nil {
			tok, err := keys.Seal([]byte(stored), ad)
			if err != nil {
				return nil, fmt.Errorf("seal signing key: %w", err)
			}
			if err := st.SettingPut(ctx, IssuerKeySetting, tok); err != nil {
				return nil, fmt.Errorf("seal the stored signing key: %w", err)
			}
			i.log.Warn("the oauth_issuer signing key was stored in plain text by an earlier version; it is now sealed under the master key, but copies of the database made before hold it (see docs/VERIFICATION.md, oauth_issuer)")
		}
	}
	key, err := issuerB64.DecodeString(encoded)
	if err != nil || len(key) < issuerKeyBytes {
		return nil, fmt.Errorf("the stored signing key (setting %s) is malformed", IssuerKeySetting)
	}
	return key, nil
}

// HasSource reports whether source lists an oauth_issuer method.
func (i *Issuer) HasSource(source string) bool { return i != nil && i.sources[source] }

// issuerClaims is a token's payload.
type issuerClaims struct {
	V        int    `json:"v"`
	Client   string `json:"cid"`
	Source   string `json:"src"`
	IssuedAt int64  `json:"iat"`
	Expiry   int64  `json:"exp"`
	ID       string `json:"jti"`
	// SecretFP is the fingerprint of the secret the client authenticated
	// with (base64url).
	SecretFP string `json:"sfp"`
}

// IssuedToken is what the token endpoint answers.
type IssuedToken struct {
	AccessToken string `json:"access_token"`
	TokenType   string `json:"token_type"`
	ExpiresIn   int64  `json:"expires_in"`
}

// issue makes a token for c, which authenticated with its secret number
// secretIdx, valid for c.validity from now.
func (i *Issuer) issue(c *issuerClient, secretIdx int) (IssuedToken, error) {
	now := i.now()
	jti := make([]byte, 12)
	if _, err := io.ReadFull(i.rand, jti); err != nil {
		return IssuedToken{}, fmt.Errorf("generate token id: %w", err)
	}
	payload, err := json.Marshal(issuerClaims{
		V: issuerTokenVersion, Client: c.id, Source: c.source,
		IssuedAt: now.UnixMilli(), Expiry: now.Add(c.validity).UnixMilli(),
		ID: issuerB64.EncodeToString(jti), SecretFP: issuerB64.EncodeToString(c.fingerprints[secretIdx]),
	})
	if err != nil {
		return IssuedToken{}, err
	}
	body := issuerTokenPrefix + issuerB64.EncodeToString(payload)
	tok := body + "." + issuerB64.EncodeToString(i.mac(body))
	return IssuedToken{AccessToken: tok, TokenType: "Bearer", ExpiresIn: int64(c.validity / time.Second)}, nil
}

func (i *Issuer) mac(body string) []byte {
	m := hmac.New(sha256.New, i.key)
	m.Write([]byte(body))
	return m.Sum(nil)
}

// Token failures. Their messages are general on purpose.
var (
	errIssuerInvalid = Unauthorized("invalid access token")
	errIssuerExpired = Unauthorized("the access token has expired; get a new one from POST /oauth/token")
	errIssuerSource  = Unauthorized("the access token was not issued for this source")
)

// parseToken checks a token's size, format and signature and returns its
// claims; it does not look at times or sources.
func (i *Issuer) parseToken(tok string) (*issuerClaims, error) {
	if len(tok) > issuerMaxToken || !strings.HasPrefix(tok, issuerTokenPrefix) {
		return nil, errIssuerInvalid
	}
	body, sig, ok := strings.Cut(tok, ".")
	if !ok {
		return nil, errIssuerInvalid
	}
	mac, err := issuerB64.DecodeString(sig)
	if err != nil {
		return nil, errIssuerInvalid
	}
	if !Equal(mac, i.mac(body)) {
		return nil, errIssuerInvalid
	}
	// Only a payload hookd signed is decoded.
	payload, err := issuerB64.DecodeString(body[len(issuerTokenPrefix):])
	if err != nil {
		return nil, errIssuerInvalid
	}
	var c issuerClaims
	if err := json.Unmarshal(payload, &c); err != nil || c.V != issuerTokenVersion {
		return nil, errIssuerInvalid
	}
	return &c, nil
}

// check reports whether tok is a valid token for source at now. There is
// no leeway: the token is expired from its expiry time on.
func (i *Issuer) check(tok, source string, now time.Time) error {
	c, err := i.parseToken(tok)
	if err != nil {
		return err
	}
	if !now.Before(time.UnixMilli(c.Expiry)) {
		return errIssuerExpired
	}
	cl := i.clients[c.Client]
	if cl == nil {
		// The client was removed from the configuration.
		return errIssuerInvalid
	}
	if c.Source != source || cl.source != source {
		return errIssuerSource
	}
	fp, err := issuerB64.DecodeString(c.SecretFP)
	if err != nil || !cl.hasFingerprint(fp) {
		// The secret that got the token was rotated out.
		return errIssuerInvalid
	}
	return nil
}

// hasFingerprint reports whether fp is the fingerprint of one of the
// client's secrets.
func (c *issuerClient) hasFingerprint(fp []byte) bool {
	found := false
	for _, f := range c.fingerprints {
		if hmac.Equal(fp, f) {
			found = true
		}
	}
	return found
}

// ServeHTTP is the token endpoint, POST /oauth/token: the client
// credentials grant with client authentication by HTTP Basic or by the
// form fields client_id and client_secret. Errors follow RFC 6749 §5.2.
func (i *Issuer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h.Set("Cache-Control", "no-store")
	h.Set("Pragma", "no-cache")
	if r.Method != http.MethodPost {
		h.Set("Allow", http.MethodPost)
		issuerWriteError(w, http.StatusMethodNotAllowed, "invalid_request", "use POST")
		return
	}
	if mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type")); err != nil || mt != "application/x-www-form-urlencoded" {
		issuerWriteError(w, http.StatusBadRequest, "invalid_request", "the body must be application/x-www-form-urlencoded")
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, issuerMaxForm)
	if err := r.ParseForm(); err != nil {
		issuerWriteError(w, http.StatusBadRequest, "invalid_request", "the form cannot be read")
		return
	}
	form := r.PostForm
	for _, k := range []string{"grant_type", "client_id", "client_secret", "scope"} {
		if len(form[k]) > 1 {
			issuerWriteError(w, http.StatusBadRequest, "invalid_request", "parameter "+k+" is repeated")
			return
		}
	}
	switch grant := form.Get("grant_type"); grant {
	case "client_credentials":
	case "":
		issuerWriteError(w, http.StatusBadRequest, "invalid_request", "grant_type is required")
		return
	default:
		issuerWriteError(w, http.StatusBadRequest, "unsupported_grant_type", "only the client_credentials grant is supported")
		return
	}
	c, secretIdx, viaBasic, status, code, desc, wait := i.authenticate(r, form)
	if c == nil {
		if status == http.StatusUnauthorized && viaBasic {
			h.Set("WWW-Authenticate", ChallengeBasic)
		}
		if status == http.StatusTooManyRequests {
			h.Set("Retry-After", strconv.FormatInt(int64(max(1, math.Ceil(wait.Seconds()))), 10))
		}
		i.log.Debug("oauth token request refused", "error", code, "remote", r.RemoteAddr)
		issuerWriteError(w, status, code, desc)
		return
	}
	tok, err := i.issue(c, secretIdx)
	if err != nil {
		i.log.Error("oauth token not issued", "client_id", c.id, "err", err)
		issuerWriteError(w, http.StatusInternalServerError, "server_error", "internal error")
		return
	}
	i.log.Info("oauth token issued", "client_id", c.id, "source", c.source, "expires_in", tok.ExpiresIn)
	b, _ := json.Marshal(tok)
	h.Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusOK)
	w.Write(append(b, '\n'))
}

// authenticate finds the client of a token request and the number of the
// secret it authenticated with. On failure it returns a nil client and the
// status, OAuth error code and description to answer, and, when the
// failure limits refused the attempt, how long to wait. Only an attempt
// the limits admit has its secret checked.
func (i *Issuer) authenticate(r *http.Request, form url.Values) (c *issuerClient, secretIdx int, viaBasic bool, status int, code, desc string, wait time.Duration) {
	invalidClient := func() (*issuerClient, int, bool, int, string, string, time.Duration) {
		return nil, 0, viaBasic, http.StatusUnauthorized, "invalid_client", "client authentication failed", 0
	}
	var ids, secrets []string
	if auth := r.Header.Values("Authorization"); len(auth) > 0 {
		viaBasic = true
		if len(auth) > 1 {
			return nil, 0, true, http.StatusBadRequest, "invalid_request", "the Authorization header is repeated", 0
		}
		user, pass, ok := credParseBasic(auth[0])
		if !ok {
			return invalidClient()
		}
		if form.Has("client_secret") {
			return nil, 0, true, http.StatusBadRequest, "invalid_request", "use one client authentication method: HTTP Basic or the client_secret field, not both", 0
		}
		// RFC 6749 §2.3.1 form-encodes the id and secret before Basic;
		// many clients do not. Both readings are tried.
		ids, secrets = issuerBasicReadings(user), issuerBasicReadings(pass)
		if fid := form.Get("client_id"); fid != "" {
			match := false
			for _, id := range ids {
				match = match || id == fid
			}
			if !match {
				return nil, 0, true, http.StatusBadRequest, "invalid_request", "client_id differs from the HTTP Basic user", 0
			}
		}
	} else {
		id, secret := form.Get("client_id"), form.Get("client_secret")
		if id == "" || secret == "" {
			return invalidClient()
		}
		ids, secrets = []string{id}, []string{secret}
	}
	var found *issuerClient
	for _, id := range ids {
		if cl := i.clients[id]; cl != nil && found == nil {
			found = cl
		}
	}
	now := i.now()
	att, wait, ok := i.limit.admit(now, found, r.RemoteAddr)
	if !ok {
		return nil, 0, viaBasic, http.StatusTooManyRequests, "temporarily_unavailable", "too many failed client authentications; retry later", wait
	}
	// An unknown client costs the same comparison as a known one.
	want := issuerDummySecrets
	if found != nil {
		want = found.secrets
	}
	matched := -1
	for _, s := range secrets {
		if k := matchIndex([]byte(s), want); k >= 0 {
			matched = k
		}
	}
	if found == nil || matched < 0 {
		if i.limit.done(att, found, r.RemoteAddr, now, true, false) {
			i.log.Warn("oauth_issuer: too many failed authentications for a client id; it is refused (429) until its limit refills, except from addresses where it authenticated before",
				"client_id", found.id, "remote", r.RemoteAddr)
		}
		return invalidClient()
	}
	i.limit.done(att, found, r.RemoteAddr, now, false, true)
	return found, matched, viaBasic, 0, "", "", 0
}

var issuerDummySecrets = [][]byte{nil}

// issuerBasicReadings returns s and, when it differs and is valid, its
// form-decoded reading.
func issuerBasicReadings(s string) []string {
	out := []string{s}
	if u, err := url.QueryUnescape(s); err == nil && u != s {
		out = append(out, u)
	}
	return out
}

func issuerWriteError(w http.ResponseWriter, status int, code, desc string) {
	b, _ := json.Marshal(map[string]string{"error": code, "error_description": desc})
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	w.Write(append(b, '\n'))
}

func init() { Register("oauth_issuer", newIssuerVerifier) }

// issuerVerifier accepts requests with a token hookd issued for the source.
type issuerVerifier struct {
	iss    *Issuer
	source string
	env    *Env
}

func newIssuerVerifier(env *Env, m config.Verify) (Verifier, error) {
	if _, _, err := issuerDecode(m); err != nil {
		return nil, err
	}
	if env.Issuer == nil || !env.Issuer.HasSource(env.Source) {
		return nil, errors.New("hookd's token issuer was not set up for this source (build it with verify.NewIssuer from the same sources)")
	}
	return &issuerVerifier{iss: env.Issuer, source: env.Source, env: env}, nil
}

// Verify checks the bearer token. No token: 401 with the plain Bearer
// challenge; an invalid, expired or other source's token: 401 with
// error="invalid_token", so that the sender gets a new one (seed 000).
func (v *issuerVerifier) Verify(_ context.Context, r *Request) error {
	auth := r.Header.Values("Authorization")
	tok, isBearer := "", false
	if len(auth) == 1 {
		tok, isBearer = credParseBearer(auth[0])
	} else if len(auth) > 1 {
		isBearer = true
	}
	if !isBearer {
		return WithChallenge(Unauthorized("an access token is required: Authorization: Bearer TOKEN, from POST /oauth/token"), ChallengeBearer)
	}
	if tok == "" {
		return WithChallenge(errIssuerInvalid, ChallengeInvalidBearer)
	}
	if err := v.iss.check(tok, v.source, v.env.now()); err != nil {
		return WithChallenge(err, ChallengeInvalidBearer)
	}
	return nil
}

// CredentialHeaders names the header that carries the token.
func (v *issuerVerifier) CredentialHeaders() []string { return []string{"Authorization"} }
