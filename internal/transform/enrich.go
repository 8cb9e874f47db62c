package transform

import (
	"bytes"
	"container/list"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/sync/singleflight"

	"hookd"
	"hookd/internal/destination"
	"hookd/internal/egress"
	"hookd/internal/jsonlimit"
)

// Enrichment limits and defaults.
const (
	// DefaultEnrichTimeout bounds one fetch when enrich.timeout is not set.
	DefaultEnrichTimeout = 5 * time.Second
	// MaxEnrichTimeout is the longest enrich.timeout.
	MaxEnrichTimeout = time.Minute
	// MaxEntitySize bounds a fetched entity.
	MaxEntitySize = 1 << 20
	// MaxCacheEntries and MaxCacheBytes bound the cache of fetched
	// entities; past either, the least recently used entries go.
	MaxCacheEntries = 10_000
	MaxCacheBytes   = 64 << 20
	// maxPlaceholders bounds the placeholders of one URL template.
	maxPlaceholders = 16
	// maxTemplateSize bounds a URL template.
	maxTemplateSize = 2048
)

// EnrichSpec is a subscription's enrich section (see config.Enrich).
type EnrichSpec struct {
	// URL is the template of the entity's URL.
	URL string
	// Into is the body key the entity goes under.
	Into string
	// Cache is how long a fetched entity is kept; 0: not at all.
	Cache time.Duration
	// Timeout bounds one fetch; 0: DefaultEnrichTimeout.
	Timeout time.Duration
	// Auth holds the keys of an http destination's auth; nil: none.
	Auth map[string]any
}

var intoName = regexp.MustCompile(`^[A-Za-z0-9_-]{1,64}$`)

// Check validates s without building anything: the URL template, into,
// cache and timeout. The auth is checked by NewEnricher.
func (s EnrichSpec) Check() error {
	if _, err := ParseTemplate(s.URL); err != nil {
		return fmt.Errorf("url: %w", err)
	}
	if !intoName.MatchString(s.Into) {
		return fmt.Errorf("into: %q is not a key name (letters, digits, '_' and '-', at most 64)", s.Into)
	}
	if s.Cache < 0 {
		return fmt.Errorf("cache: must not be negative")
	}
	if s.Timeout < 0 || s.Timeout > MaxEnrichTimeout {
		return fmt.Errorf("timeout: must be between 0 (default %s) and %s", DefaultEnrichTimeout, MaxEnrichTimeout)
	}
	return nil
}

// Template is a parsed URL template: literal text and placeholders, the
// scheme and host all literal.
type Template struct {
	raw   string
	parts []tmplPart
	// base is the URL with every placeholder replaced by "x": what the
	// guard checks when the enricher is built.
	base string
}

type tmplPart struct {
	lit   string
	name  string   // "" for a literal
	path  []string // body.a.b → ["a", "b"]
	query bool     // in the query: query-escaped, else path-escaped
}

var placeholderName = regexp.MustCompile(`^(id|type|source|key|body(\.[A-Za-z0-9_-]+)+)$`)

// ParseTemplate parses an enrich URL template: an absolute http or https
// URL whose path and query may hold {{id}}, {{type}}, {{source}},
// {{key}} and {{body.a.b}}; its scheme and host are literal.
func ParseTemplate(raw string) (*Template, error) {
	if raw == "" {
		return nil, errors.New("required")
	}
	if len(raw) > maxTemplateSize {
		return nil, fmt.Errorf("longer than %d bytes", maxTemplateSize)
	}
	t := &Template{raw: raw}
	var base strings.Builder
	rest := raw
	inQuery := false
	for rest != "" {
		i := strings.Index(rest, "{{")
		if i < 0 {
			if strings.Contains(rest, "}}") {
				return nil, errors.New("a '}}' without its '{{'")
			}
			t.parts = append(t.parts, tmplPart{lit: rest})
			base.WriteString(rest)
			break
		}
		lit := rest[:i]
		if strings.Contains(lit, "}}") {
			return nil, errors.New("a '}}' without its '{{'")
		}
		if lit != "" {
			t.parts = append(t.parts, tmplPart{lit: lit})
			base.WriteString(lit)
		}
		inQuery = inQuery || strings.Contains(lit, "?")
		j := strings.Index(rest[i:], "}}")
		if j < 0 {
			return nil, errors.New("a '{{' without its '}}'")
		}
		name := strings.TrimSpace(rest[i+2 : i+j])
		if !placeholderName.MatchString(name) {
			return nil, fmt.Errorf("unknown placeholder {{%s}} (want id, type, source, key or body.FIELD)", name)
		}
		p := tmplPart{name: name, query: inQuery}
		if after, ok := strings.CutPrefix(name, "body."); ok {
			p.path = strings.Split(after, ".")
			if len(p.path) > 16 || len(name) > 256 {
				return nil, fmt.Errorf("placeholder {{%s}} is too long", name[:min(len(name), 40)])
			}
		}
		t.parts = append(t.parts, p)
		if len(t.parts) > 2*maxPlaceholders+1 {
			return nil, fmt.Errorf("more than %d placeholders", maxPlaceholders)
		}
		base.WriteString("x")
		rest = rest[i+j+2:]
	}
	t.base = base.String()
	u, err := url.Parse(t.base)
	switch {
	case err != nil:
		return nil, errors.New("not a URL")
	case u.Scheme != "http" && u.Scheme != "https":
		return nil, errors.New("only http and https URLs")
	case u.Host == "" || u.Opaque != "":
		return nil, errors.New("an absolute URL with a host is required")
	case u.User != nil:
		return nil, errors.New("credentials in the URL are not allowed (use auth)")
	case u.Fragment != "" || strings.Contains(t.base, "#"):
		return nil, errors.New("a fragment is not allowed")
	}
	// The scheme and the authority must be literal: the first placeholder
	// comes after the path or the query has started.
	authEnd := strings.Index(raw, "://") + 3
	if k := strings.IndexAny(raw[authEnd:], "/?"); k >= 0 {
		authEnd += k
	} else {
		authEnd = len(raw)
	}
	if k := strings.Index(raw, "{{"); k >= 0 && k < authEnd {
		return nil, errors.New("placeholders are allowed only in the path and the query (the scheme and host are literal)")
	}
	return t, nil
}

// String returns the template's source.
func (t *Template) String() string { return t.raw }

// errMissing is a placeholder whose value the event does not have.
type missingError struct{ name, why string }

func (e *missingError) Error() string { return fmt.Sprintf("enrich: %s is %s", e.name, e.why) }

// Expand returns the URL for ev, values escaped. A missing value (or one
// that is not a string, a number or a bool) is an error naming it.
func (t *Template) Expand(ev Event) (string, error) {
	var body any
	var bodyParsed bool
	var b strings.Builder
	for _, p := range t.parts {
		if p.name == "" {
			b.WriteString(p.lit)
			continue
		}
		var v string
		switch p.name {
		case "id":
			v = ev.ID
		case "type":
			v = ev.Type
		case "source":
			v = ev.Source
		case "key":
			v = ev.Key
		default:
			if !bodyParsed {
				bodyParsed = true
				body = parseJSON(ev.Body)
			}
			var err error
			if v, err = lookup(body, p.path); err != nil {
				return "", &missingError{name: p.name, why: err.Error()}
			}
		}
		if v == "" {
			return "", &missingError{name: p.name, why: "missing"}
		}
		switch {
		case p.query:
			b.WriteString(url.QueryEscape(v))
		case dotSegment(v):
			return "", &missingError{name: p.name, why: `a "." or ".." path segment (refused: it would move up the path on the entity's server)`}
		default:
			b.WriteString(url.PathEscape(v))
		}
	}
	u := b.String()
	if path, _, _ := strings.Cut(u[strings.Index(u, "://")+3:], "?"); dotSegment(path) {
		return "", &missingError{name: "url", why: `holding a "." or ".." path segment (refused: it would move up the path on the entity's server)`}
	}
	return u, nil
}

// dotSegment reports whether s, decoded, holds a "." or ".." segment,
// with "/" and "\" as separators: escaped as %2E or %2F it is the same
// path to a server that decodes before resolving dot segments (RFC 3986
// makes %2E and "." equivalent; many servers and proxies decode %2F), so
// a value from the event must not hold one, escaped or not.
func dotSegment(s string) bool {
	if d, err := url.PathUnescape(s); err == nil {
		s = d
	}
	for _, seg := range strings.FieldsFunc(s, func(r rune) bool { return r == '/' || r == '\\' }) {
		if seg == "." || seg == ".." {
			return true
		}
	}
	return s == "." || s == ".."
}

// parseJSON parses body with numbers kept as written; nil when it is not
// JSON or too deep.
func parseJSON(body []byte) any {
	if jsonlimit.Check(body, maxBodyDepth) != nil {
		return nil
	}
	d := json.NewDecoder(bytes.NewReader(body))
	d.UseNumber()
	var v any
	if d.Decode(&v) != nil {
		return nil
	}
	return v
}

// lookup walks path in v (object keys, array indexes) to a scalar.
func lookup(v any, path []string) (string, error) {
	for _, k := range path {
		switch c := v.(type) {
		case map[string]any:
			v = c[k]
		case []any:
			i, err := strconv.Atoi(k)
			if err != nil || i < 0 || i >= len(c) {
				return "", errors.New("missing")
			}
			v = c[i]
		default:
			return "", errors.New("missing")
		}
	}
	switch c := v.(type) {
	case string:
		return c, nil
	case json.Number:
		return c.String(), nil
	case bool:
		return strconv.FormatBool(c), nil
	case nil:
		return "", errors.New("missing")
	}
	return "", errors.New("not a string, number or bool")
}

// Authorizer authenticates an enrichment request (the wiring builds it
// from the auth keys with the http destination's code).
type Authorizer interface {
	Authorize(ctx context.Context, req *http.Request) error
}

// Rejecter is an Authorizer told that the credentials it set on req were
// refused (a 401 answer): an oauth2 token is then dropped.
type Rejecter interface {
	Rejected(req *http.Request)
}

// AuthFunc builds the Authorizer of an enrich auth section.
type AuthFunc func(auth map[string]any) (Authorizer, error)

// EnrichOptions are what an Enricher needs besides its spec.
type EnrichOptions struct {
	// Guard is the egress guard fetches go through. Nil means none
	// (tests and the transformation test endpoint without a guard only).
	Guard *egress.Guard
	// Cache is the cache of entities, shared by the enrichers of an
	// engine; nil: the enricher has its own.
	Cache *Cache
	// NewAuth builds the auth; required when the spec has auth.
	NewAuth AuthFunc
	// Now is the clock of the cache; nil: time.Now.
	Now func() time.Time
}

// Enricher fetches an event's entity and adds it to its body. It is safe
// for concurrent use.
type Enricher struct {
	spec    EnrichSpec
	tmpl    *Template
	auth    Authorizer
	authID  string
	client  *http.Client
	cache   *Cache
	timeout time.Duration
}

// NewEnricher checks spec (the URL by the guard as well) and builds its
// auth.
func NewEnricher(spec EnrichSpec, o EnrichOptions) (*Enricher, error) {
	if err := spec.Check(); err != nil {
		return nil, err
	}
	tmpl, _ := ParseTemplate(spec.URL)
	en := &Enricher{spec: spec, tmpl: tmpl, cache: o.Cache, timeout: spec.Timeout}
	if en.timeout == 0 {
		en.timeout = DefaultEnrichTimeout
	}
	if en.cache == nil {
		en.cache = NewCache(o.Now)
	}
	if o.Guard != nil {
		if err := o.Guard.CheckURL(tmpl.base); err != nil {
			return nil, fmt.Errorf("url: %w", err)
		}
		en.client = &http.Client{Transport: o.Guard.SharedTransport(), CheckRedirect: egress.NoRedirect}
	} else {
		en.client = &http.Client{Transport: &http.Transport{Proxy: nil}, CheckRedirect: egress.NoRedirect}
	}
	if spec.Auth != nil {
		if o.NewAuth == nil {
			return nil, errors.New("auth: not available here")
		}
		a, err := o.NewAuth(spec.Auth)
		if err != nil {
			return nil, err
		}
		en.auth = a
		canon, _ := json.Marshal(spec.Auth)
		sum := sha256.Sum256(canon)
		en.authID = hex.EncodeToString(sum[:12])
	}
	return en, nil
}

// Into returns the key the entity goes under.
func (en *Enricher) Into() string { return en.spec.Into }

// Enrich fetches ev's entity (from the cache when it holds it) and returns
// ev's body with the entity under the into key. Errors are retriable
// (plain) when the fetch failed — an error, a non-2xx answer, an answer
// that is not JSON or is too large — and destination.Permanent when the
// event itself cannot be enriched (a missing placeholder value, a body
// that is not a JSON object). They never contain credentials nor the
// URL's query.
func (en *Enricher) Enrich(ctx context.Context, ev Event) ([]byte, error) {
	obj, err := bodyObject(ev.Body)
	if err != nil {
		return nil, destination.Permanent(err)
	}
	u, err := en.tmpl.Expand(ev)
	if err != nil {
		return nil, destination.Permanent(err)
	}
	entity, err := en.fetch(ctx, u)
	if err != nil {
		return nil, err
	}
	return withKey(ev.Body, obj, en.spec.Into, entity), nil
}

// bodyObject checks that body is a JSON object and returns its members.
func bodyObject(body []byte) (map[string]json.RawMessage, error) {
	var obj map[string]json.RawMessage
	if jsonlimit.Check(body, maxBodyDepth) != nil || json.Unmarshal(body, &obj) != nil || obj == nil {
		return nil, errors.New("enrich: the event body is not a JSON object")
	}
	return obj, nil
}

// withKey returns body with key set to value. The body's bytes are kept
// as they are when key is new to it (value is added before the closing
// brace); otherwise the object is written again.
func withKey(body []byte, obj map[string]json.RawMessage, key string, value []byte) []byte {
	if _, exists := obj[key]; !exists {
		trimmed := bytes.TrimRight(body, " \t\r\n")
		if n := len(trimmed); n > 0 && trimmed[n-1] == '}' {
			k, _ := json.Marshal(key)
			out := make([]byte, 0, len(trimmed)+len(k)+len(value)+2)
			out = append(out, trimmed[:n-1]...)
			if len(obj) > 0 {
				out = append(out, ',')
			}
			out = append(out, k...)
			out = append(out, ':')
			out = append(out, value...)
			return append(out, '}')
		}
	}
	obj[key] = value
	out, _ := json.Marshal(obj)
	return out
}

// redact returns u without its query, for errors and logs.
func redact(u string) string {
	if i := strings.IndexAny(u, "?#"); i >= 0 {
		return u[:i] + "?…"
	}
	return u
}

// fetch gets the entity at u: from the cache, or by one GET shared by
// every concurrent caller for the same URL and auth.
func (en *Enricher) fetch(ctx context.Context, u string) ([]byte, error) {
	// The cache is shared by the subscriptions of an engine: an entity
	// is served from it only when fetched within this subscription's
	// cache duration (none when it has none), whatever the duration of
	// the subscription that fetched it.
	key := en.authID + " " + u
	if b, ok := en.cache.get(key, en.spec.Cache); ok {
		return b, nil
	}
	ch := en.cache.group.DoChan(key, func() (any, error) {
		if b, ok := en.cache.get(key, en.spec.Cache); ok {
			return b, nil
		}
		// Not cut by one caller going away: others may wait for it. The
		// timeout bounds it.
		fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), en.timeout)
		defer cancel()
		b, err := en.get(fctx, u)
		if err == nil && en.spec.Cache > 0 {
			en.cache.put(key, b, en.spec.Cache)
		}
		return b, err
	})
	select {
	case <-ctx.Done():
		return nil, fmt.Errorf("enrich: cancelled: %w", ctx.Err())
	case r := <-ch:
		if r.Err != nil {
			return nil, r.Err
		}
		return r.Val.([]byte), nil
	}
}

// get makes one request.
func (en *Enricher) get(ctx context.Context, u string) ([]byte, error) {
	shown := redact(u)
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, destination.Permanent(fmt.Errorf("enrich: GET %s: invalid URL", shown))
	}
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", "hookd/"+hookd.Version)
	if en.auth != nil {
		if err := en.auth.Authorize(ctx, req); err != nil {
			return nil, fmt.Errorf("enrich: GET %s: no credentials: %v", shown, err)
		}
	}
	resp, err := en.client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("enrich: GET %s: %s", shown, transportReason(err, en.timeout))
	}
	defer resp.Body.Close()
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		_, _ = io.CopyN(io.Discard, resp.Body, 4<<10)
		if r, ok := en.auth.(Rejecter); ok && resp.StatusCode == http.StatusUnauthorized {
			r.Rejected(req) // the next attempt gets fresh credentials
		}
		err := fmt.Errorf("enrich: GET %s answered %d", shown, resp.StatusCode)
		if ra, ok := destination.RetryAfterOf(destination.ClassifyHTTP(resp.StatusCode, resp.Header.Get("Retry-After"), time.Now())); ok {
			return nil, destination.RetryAfter(ra, err)
		}
		return nil, err
	}
	b, err := io.ReadAll(io.LimitReader(resp.Body, MaxEntitySize+1))
	switch {
	case err != nil:
		return nil, fmt.Errorf("enrich: GET %s: reading the answer: %s", shown, transportReason(err, en.timeout))
	case len(b) > MaxEntitySize:
		return nil, fmt.Errorf("enrich: GET %s: the answer is larger than %d bytes", shown, MaxEntitySize)
	case jsonlimit.Check(b, maxBodyDepth) != nil || !json.Valid(b):
		return nil, fmt.Errorf("enrich: GET %s: the answer is not JSON", shown)
	}
	return bytes.TrimSpace(b), nil
}

// transportReason says why a request failed, without the URL (the
// caller names it redacted).
func transportReason(err error, timeout time.Duration) string {
	var ue *url.Error
	if errors.As(err, &ue) {
		err = ue.Err
	}
	var ne net.Error
	switch {
	case errors.Is(err, context.DeadlineExceeded) || (errors.As(err, &ne) && ne.Timeout()):
		return fmt.Sprintf("no answer within %s", timeout)
	case errors.Is(err, context.Canceled):
		return "cancelled"
	}
	return err.Error()
}

// Cache holds fetched entities by URL and auth, each for its
// subscription's cache duration, at most MaxCacheEntries of them and
// MaxCacheBytes in all (least recently used first out). Concurrent
// misses of one key share one fetch. It is safe for concurrent use.
type Cache struct {
	now   func() time.Time
	group singleflight.Group

	mu    sync.Mutex
	lru   *list.List // of *cacheEntry, most recent first
	byKey map[string]*list.Element
	bytes int
}

type cacheEntry struct {
	key     string
	body    []byte
	fetched time.Time
	expires time.Time
}

// NewCache returns an empty cache; now nil means time.Now.
func NewCache(now func() time.Time) *Cache {
	if now == nil {
		now = time.Now
	}
	return &Cache{now: now, lru: list.New(), byKey: map[string]*list.Element{}}
}

// Len returns the number of entries.
func (c *Cache) Len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.lru.Len()
}

// get returns the entity under key when it was fetched less than maxAge
// ago (never when maxAge is 0).
func (c *Cache) get(key string, maxAge time.Duration) ([]byte, bool) {
	if maxAge <= 0 {
		return nil, false
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	el := c.byKey[key]
	if el == nil {
		return nil, false
	}
	ce := el.Value.(*cacheEntry)
	now := c.now()
	if !now.Before(ce.expires) {
		c.remove(el)
		return nil, false
	}
	if now.Sub(ce.fetched) >= maxAge {
		return nil, false
	}
	c.lru.MoveToFront(el)
	return ce.body, true
}

func (c *Cache) put(key string, body []byte, ttl time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if el := c.byKey[key]; el != nil {
		c.remove(el)
	}
	if len(body) > MaxCacheBytes {
		return
	}
	now := c.now()
	c.byKey[key] = c.lru.PushFront(&cacheEntry{key: key, body: body, fetched: now, expires: now.Add(ttl)})
	c.bytes += len(body)
	for c.lru.Len() > MaxCacheEntries || c.bytes > MaxCacheBytes {
		c.remove(c.lru.Back())
	}
}

func (c *Cache) remove(el *list.Element) {
	ce := c.lru.Remove(el).(*cacheEntry)
	delete(c.byKey, ce.key)
	c.bytes -= len(ce.body)
}
