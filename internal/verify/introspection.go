package verify

// oauth_introspection: opaque (or any) bearer tokens checked by asking the
// authorization server (RFC 7662). Answers are cached — active ones until
// min(exp, cache_ttl), inactive ones briefly — under a salted hash of the
// token, never the token itself. The method fails closed: when the server
// errs, answers anything but 200 with a well-formed body, or is too slow,
// the request gets 503 (EUnavailable), never 200.

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"hookd/internal/config"
)

func init() { Register("oauth_introspection", newOAuthIntrospection) }

// Limits and defaults of oauth_introspection.
const (
	oauthIntroDefaultTTL     = 5 * time.Minute
	oauthIntroDefaultTimeout = 5 * time.Second
	// oauthIntroNegativeTTL caps how long an inactive answer is cached.
	oauthIntroNegativeTTL = 30 * time.Second
	// oauthIntroMaxBytes caps an introspection answer.
	oauthIntroMaxBytes = 64 << 10
	// oauthIntroMaxEntries caps the cache; beyond it expired entries are
	// swept, then arbitrary ones dropped.
	oauthIntroMaxEntries = 10000
	// oauthIntroMaxInFlight caps concurrent calls to the server.
	oauthIntroMaxInFlight = 64
	// oauthMaxUnix clamps exp/nbf values (the year 9999).
	oauthMaxUnix = 253402300799
)

// oauthIntroOptions are the options of oauth_introspection.
type oauthIntroOptions struct {
	// URL is the introspection endpoint (RFC 7662 §2).
	URL string `yaml:"url"`
	// ClientID and ClientSecret authenticate hookd to the endpoint with
	// HTTP Basic (RFC 6749 §2.3.1). Both required.
	ClientID     string `yaml:"client_id"`
	ClientSecret string `yaml:"client_secret"`
	// CacheTTL is the longest an active answer is reused (never past the
	// token's exp). Default 5m; "0s" disables the cache.
	CacheTTL *config.Duration `yaml:"cache_ttl"`
	// Timeout bounds one introspection call. Default 5s.
	Timeout *config.Duration `yaml:"timeout"`
	// Audience, when set, must intersect the answer's aud.
	Audience stringList `yaml:"audience"`
	// Scope, when set, lists scopes that must all be in the answer's scope.
	Scope stringList `yaml:"scope"`
	// AllowHTTP allows a plain http:// url beyond loopback.
	AllowHTTP bool `yaml:"allow_http"`
}

// oauthIntroResult is what hookd keeps of an answer.
type oauthIntroResult struct {
	active   bool
	exp, nbf time.Time // zero when absent
	aud      []string
	scope    []string
}

type oauthIntroEntry struct {
	res   oauthIntroResult
	until time.Time
}

// oauthIntroCall is an introspection in flight; res and err are set
// before done closes.
type oauthIntroCall struct {
	done chan struct{}
	res  oauthIntroResult
	err  error
}

// oauthIntrospector verifies oauth_introspection tokens.
type oauthIntrospector struct {
	url          string
	clientID     string
	clientSecret string
	client       *http.Client
	timeout      time.Duration
	ttl          time.Duration
	negTTL       time.Duration
	audience     []string
	scopes       []string
	now          func() time.Time
	log          *slog.Logger
	source       string
	salt         [32]byte
	sem          chan struct{}

	mu    sync.Mutex
	cache map[[32]byte]oauthIntroEntry
	calls map[[32]byte]*oauthIntroCall

	// joined counts requests that waited on another's call (tests).
	joined atomic.Int64
}

func newOAuthIntrospection(env *Env, m config.Verify) (Verifier, error) {
	var o oauthIntroOptions
	if err := m.Decode(&o); err != nil {
		return nil, err
	}
	if o.URL == "" {
		return nil, errors.New("url: required")
	}
	if err := oauthCheckURL(env, o.URL, o.AllowHTTP); err != nil {
		return nil, fmt.Errorf("url: %w", err)
	}
	if o.ClientID == "" || o.ClientSecret == "" {
		return nil, errors.New("client_id and client_secret: required (the endpoint must authenticate hookd; is an environment variable unset?)")
	}
	v := &oauthIntrospector{
		url:          o.URL,
		clientID:     o.ClientID,
		clientSecret: o.ClientSecret,
		timeout:      oauthIntroDefaultTimeout,
		ttl:          oauthIntroDefaultTTL,
		audience:     o.Audience,
		now:          oauthClock(env),
		log:          oauthLog(env),
		source:       env.Source,
		sem:          make(chan struct{}, oauthIntroMaxInFlight),
		cache:        map[[32]byte]oauthIntroEntry{},
		calls:        map[[32]byte]*oauthIntroCall{},
	}
	if o.Timeout != nil {
		if v.timeout = o.Timeout.D(); v.timeout <= 0 || v.timeout > time.Minute {
			return nil, fmt.Errorf("timeout: must be between 0 and 1m, got %s", v.timeout)
		}
	}
	if o.CacheTTL != nil {
		if v.ttl = o.CacheTTL.D(); v.ttl < 0 {
			return nil, fmt.Errorf("cache_ttl: must not be negative, got %s", v.ttl)
		}
	}
	v.negTTL = min(oauthIntroNegativeTTL, v.ttl)
	for i, a := range v.audience {
		if a == "" {
			return nil, fmt.Errorf("audience[%d]: empty (is its environment variable set?)", i)
		}
	}
	for _, s := range o.Scope {
		v.scopes = append(v.scopes, strings.Fields(s)...)
	}
	if len(o.Scope) > 0 && len(v.scopes) == 0 {
		return nil, errors.New("scope: empty")
	}
	v.client = oauthHTTPClient(env, v.timeout)
	if _, err := rand.Read(v.salt[:]); err != nil {
		return nil, fmt.Errorf("salt: %w", err)
	}
	return v, nil
}

// CredentialHeaders names the header that carries the token.
func (v *oauthIntrospector) CredentialHeaders() []string { return []string{"Authorization"} }

// Internal causes of a refused token (logged, never shown).
var (
	errIntroInactive = errors.New("introspection: token not active")
	errIntroNotYet   = errors.New("introspection: token not valid yet")
	errIntroAudience = errors.New("introspection: audience does not match")
	errIntroScope    = errors.New("introspection: a required scope is missing")
)

// Verify checks the request's bearer token with the introspection
// endpoint, or with a cached answer.
func (v *oauthIntrospector) Verify(ctx context.Context, r *Request) error {
	tok, err := oauthBearerToken(r.Header)
	if errors.Is(err, errOAuthNoToken) {
		return oauthMissing()
	}
	if err != nil {
		return oauthInvalid("invalid token", err)
	}
	key := v.cacheKey(tok)

	v.mu.Lock()
	if e, ok := v.cache[key]; ok {
		if now := v.now(); now.Before(e.until) {
			v.mu.Unlock()
			return v.check(e.res, now)
		}
		delete(v.cache, key)
	}
	c := v.calls[key]
	if c == nil {
		c = &oauthIntroCall{done: make(chan struct{})}
		v.calls[key] = c
		go v.run(key, tok, c)
	} else {
		v.joined.Add(1)
	}
	v.mu.Unlock()

	select {
	case <-c.done:
	case <-ctx.Done():
		return Unavailable("token introspection interrupted", ctx.Err())
	}
	if c.err != nil {
		return c.err
	}
	return v.check(c.res, v.now())
}

// cacheKey is a salted hash of the token: the cache never holds a token.
func (v *oauthIntrospector) cacheKey(tok string) [32]byte {
	h := sha256.New()
	h.Write(v.salt[:])
	h.Write([]byte(tok))
	var k [32]byte
	h.Sum(k[:0])
	return k
}

// run performs one introspection for every request waiting on c. It is
// detached from the request that started it and bounded by the timeout.
func (v *oauthIntrospector) run(key [32]byte, tok string, c *oauthIntroCall) {
	ctx, cancel := context.WithTimeout(context.Background(), v.timeout)
	defer cancel()
	var res oauthIntroResult
	var err error
	select {
	case v.sem <- struct{}{}:
		res, err = v.introspect(ctx, tok)
		<-v.sem
	case <-ctx.Done():
		err = Unavailable("token introspection unavailable", errors.New("introspection: too many calls in flight"))
	}
	if err != nil {
		// The error names the endpoint and what went wrong, never the token.
		v.log.Warn("token introspection failed", "source", v.source, "url", v.url, "err", err)
	}
	v.mu.Lock()
	delete(v.calls, key)
	if err == nil {
		v.store(key, res, v.now())
	}
	c.res, c.err = res, err
	v.mu.Unlock()
	close(c.done)
}

// store caches an answer: an active one until min(exp, ttl), an inactive
// one for the shorter negative TTL. v.mu is held.
func (v *oauthIntrospector) store(key [32]byte, res oauthIntroResult, now time.Time) {
	var until time.Time
	if res.active && (res.exp.IsZero() || res.exp.After(now)) {
		until = now.Add(v.ttl)
		if !res.exp.IsZero() && res.exp.Before(until) {
			until = res.exp
		}
	} else {
		until = now.Add(v.negTTL)
	}
	if !until.After(now) {
		return
	}
	if len(v.cache) >= oauthIntroMaxEntries {
		for k, e := range v.cache {
			if !now.Before(e.until) {
				delete(v.cache, k)
			}
		}
		for k := range v.cache {
			if len(v.cache) < oauthIntroMaxEntries {
				break
			}
			delete(v.cache, k)
		}
	}
	v.cache[key] = oauthIntroEntry{res: res, until: until}
}

// check decides on an answer at now.
func (v *oauthIntrospector) check(res oauthIntroResult, now time.Time) error {
	if !res.active {
		return oauthInvalid("invalid token", errIntroInactive)
	}
	if !res.exp.IsZero() && !now.Before(res.exp) {
		return oauthInvalid("token expired", errIntroInactive)
	}
	if !res.nbf.IsZero() && now.Before(res.nbf) {
		return oauthInvalid("invalid token", errIntroNotYet)
	}
	if len(v.audience) > 0 && !oauthIntersects(v.audience, res.aud) {
		return oauthInvalid("invalid token", errIntroAudience)
	}
	for _, s := range v.scopes {
		if !oauthIntersects([]string{s}, res.scope) {
			return oauthInvalid("invalid token", errIntroScope)
		}
	}
	return nil
}

func oauthIntersects(want, have []string) bool {
	for _, w := range want {
		for _, h := range have {
			if w == h {
				return true
			}
		}
	}
	return false
}

// introspect makes one call (RFC 7662 §2.1). Every failure is 503.
func (v *oauthIntrospector) introspect(ctx context.Context, tok string) (oauthIntroResult, error) {
	unavailable := func(err error) (oauthIntroResult, error) {
		return oauthIntroResult{}, Unavailable("token introspection unavailable", err)
	}
	form := url.Values{"token": {tok}, "token_type_hint": {"access_token"}}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, v.url, strings.NewReader(form.Encode()))
	if err != nil {
		return unavailable(fmt.Errorf("introspection: %w", err))
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Accept", "application/json")
	// RFC 6749 §2.3.1: client id and secret are form-encoded, then Basic.
	req.SetBasicAuth(url.QueryEscape(v.clientID), url.QueryEscape(v.clientSecret))
	resp, err := v.client.Do(req)
	if err != nil {
		return unavailable(fmt.Errorf("introspection: %w", err))
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		io.Copy(io.Discard, io.LimitReader(resp.Body, 4<<10))
		return unavailable(fmt.Errorf("introspection: answered %d, want 200", resp.StatusCode))
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, oauthIntroMaxBytes+1))
	if err != nil {
		return unavailable(fmt.Errorf("introspection: read: %w", err))
	}
	if len(body) > oauthIntroMaxBytes {
		return unavailable(fmt.Errorf("introspection: answer larger than %d bytes", oauthIntroMaxBytes))
	}
	res, err := oauthParseIntrospection(body)
	if err != nil {
		return unavailable(err)
	}
	return res, nil
}

// oauthParseIntrospection parses an introspection answer (RFC 7662 §2.2).
// active must be a JSON boolean; exp and nbf are NumericDates; aud is a
// string or a list; scope is space-separated. Anything malformed is an
// error (and so a 503): hookd never guesses that a token is active.
func oauthParseIntrospection(body []byte) (oauthIntroResult, error) {
	var raw struct {
		Active *bool           `json:"active"`
		Exp    json.RawMessage `json:"exp"`
		Nbf    json.RawMessage `json:"nbf"`
		Aud    json.RawMessage `json:"aud"`
		Scope  *string         `json:"scope"`
	}
	var res oauthIntroResult
	if err := answerDepth(body); err != nil {
		return res, fmt.Errorf("introspection: %w", err)
	}
	if err := json.Unmarshal(body, &raw); err != nil {
		return res, errors.New("introspection: invalid JSON answer")
	}
	if raw.Active == nil {
		return res, errors.New("introspection: answer without active")
	}
	res.active = *raw.Active
	var err error
	if res.exp, err = oauthNumericDate(raw.Exp); err != nil {
		return oauthIntroResult{}, fmt.Errorf("introspection: exp: %w", err)
	}
	if res.nbf, err = oauthNumericDate(raw.Nbf); err != nil {
		return oauthIntroResult{}, fmt.Errorf("introspection: nbf: %w", err)
	}
	if len(raw.Aud) > 0 && string(raw.Aud) != "null" {
		var one string
		if json.Unmarshal(raw.Aud, &one) == nil {
			res.aud = []string{one}
		} else if err := json.Unmarshal(raw.Aud, &res.aud); err != nil {
			return oauthIntroResult{}, errors.New("introspection: aud is neither a string nor a list of strings")
		}
	}
	if raw.Scope != nil {
		res.scope = strings.Fields(*raw.Scope)
	}
	return res, nil
}

// oauthNumericDate parses a NumericDate (seconds since the epoch, maybe
// fractional); absent or null is the zero time.
func oauthNumericDate(raw json.RawMessage) (time.Time, error) {
	if len(raw) == 0 || string(raw) == "null" {
		return time.Time{}, nil
	}
	var f float64
	if err := json.Unmarshal(raw, &f); err != nil {
		return time.Time{}, errors.New("not a number")
	}
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return time.Time{}, errors.New("not a finite number")
	}
	f = math.Max(math.Min(f, oauthMaxUnix), -oauthMaxUnix)
	sec, frac := math.Modf(f)
	return time.Unix(int64(sec), int64(frac*1e9)), nil
}
