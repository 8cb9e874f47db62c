package verify

// The JWK Set of an oauth_jwt source: fetched on first use, refreshed
// after its TTL while the last good set keeps serving, and refetched early
// when a token names a kid the set lacks — at most one fetch attempt per
// minute per source, and never two at once (single-flight), so a burst of
// tokens with made-up kids cannot make hookd hammer the issuer.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"sync"
	"time"
)

// Limits of a JWK Set fetch.
const (
	// oauthJWKSMaxBytes caps the fetched document.
	oauthJWKSMaxBytes = 1 << 20
	// oauthJWKSMaxKeys caps the keys of one set.
	oauthJWKSMaxKeys = 100
	// oauthJWKSMinInterval is the least time between two fetch attempts
	// once a set is held: it bounds refetches for unknown kids and retries
	// after a failed refresh.
	oauthJWKSMinInterval = time.Minute
	// oauthJWKSRetryEmpty is the least time between two attempts while no
	// set has ever been fetched (requests answer 503 meanwhile).
	oauthJWKSRetryEmpty = 10 * time.Second
)

// errOAuthJWKSNone is returned while no key set has been fetched.
var errOAuthJWKSNone = errors.New("jwks: no key set fetched yet")

// oauthJWKS is one source's cached JWK Set.
type oauthJWKS struct {
	url     string
	client  *http.Client
	timeout time.Duration
	ttl     time.Duration
	now     func() time.Time
	log     *slog.Logger
	source  string

	mu          sync.Mutex
	set         []oauthJWTKey // last good set; nil until the first success
	fetchedAt   time.Time     // when set was fetched
	lastAttempt time.Time     // when the last fetch started
	call        *oauthJWKSCall
	lastErr     error
}

// oauthJWKSCall is a fetch in flight; done closes when it ends.
type oauthJWKSCall struct{ done chan struct{} }

func newOAuthJWKS(u string, client *http.Client, timeout, ttl time.Duration, now func() time.Time, log *slog.Logger, source string) *oauthJWKS {
	return &oauthJWKS{url: u, client: client, timeout: timeout, ttl: ttl, now: now, log: log, source: source}
}

// keys returns the current key set. A set past its TTL is refreshed in
// the background while it keeps serving. refresh asks for a refetch (a
// token named an unknown kid): it starts one unless one is in flight or an
// attempt started less than a minute ago, and waits for the one in flight.
// It fails only while no set has ever been fetched.
func (s *oauthJWKS) keys(ctx context.Context, refresh bool) ([]oauthJWTKey, error) {
	s.mu.Lock()
	now := s.now()
	stale := s.set == nil || now.Sub(s.fetchedAt) >= s.ttl
	if (stale || refresh) && s.call == nil && s.mayAttempt(now) {
		s.start(now)
	}
	c, set, lastErr := s.call, s.set, s.lastErr
	s.mu.Unlock()

	if c != nil && (set == nil || refresh) {
		select {
		case <-c.done:
		case <-ctx.Done():
			if set == nil {
				return nil, ctx.Err()
			}
			return set, nil
		}
		s.mu.Lock()
		set, lastErr = s.set, s.lastErr
		s.mu.Unlock()
	}
	if set == nil {
		if lastErr == nil {
			lastErr = errOAuthJWKSNone
		}
		return nil, lastErr
	}
	return set, nil
}

// mayAttempt reports whether a fetch may start at now. s.mu is held.
func (s *oauthJWKS) mayAttempt(now time.Time) bool {
	if s.lastAttempt.IsZero() {
		return true
	}
	interval := oauthJWKSMinInterval
	if s.set == nil {
		interval = oauthJWKSRetryEmpty
	}
	return now.Sub(s.lastAttempt) >= interval
}

// start begins a fetch in its own goroutine, detached from the request
// that asked for it (a client hanging up must not fail the others waiting
// on the same fetch) and bounded by the fetch timeout. s.mu is held.
func (s *oauthJWKS) start(now time.Time) {
	c := &oauthJWKSCall{done: make(chan struct{})}
	s.call, s.lastAttempt = c, now
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), s.timeout)
		set, err := s.fetch(ctx)
		cancel()
		s.mu.Lock()
		if err == nil {
			s.set, s.fetchedAt, s.lastErr = set, now, nil
		} else {
			s.lastErr = err
		}
		s.call = nil
		held := s.set != nil
		s.mu.Unlock()
		close(c.done)
		if err != nil {
			// The URL is configuration, not a secret; nothing of a token
			// is known here.
			s.log.Warn("jwks fetch failed", "source", s.source, "url", s.url, "keeping_last_good_set", held, "err", err)
		}
	}()
}

// fetch downloads and parses the key set.
func (s *oauthJWKS) fetch(ctx context.Context) ([]oauthJWTKey, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, s.url, nil)
	if err != nil {
		return nil, fmt.Errorf("jwks: %w", err)
	}
	req.Header.Set("Accept", "application/jwk-set+json, application/json")
	resp, err := s.client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("jwks: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		io.Copy(io.Discard, io.LimitReader(resp.Body, 4<<10))
		return nil, fmt.Errorf("jwks: answered %d, want 200", resp.StatusCode)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, oauthJWKSMaxBytes+1))
	if err != nil {
		return nil, fmt.Errorf("jwks: read: %w", err)
	}
	if len(body) > oauthJWKSMaxBytes {
		return nil, fmt.Errorf("jwks: document larger than %d bytes", oauthJWKSMaxBytes)
	}
	set, skipped, err := oauthParseJWKS(body)
	if err != nil {
		return nil, err
	}
	if skipped > 0 {
		s.log.Debug("jwks keys skipped", "source", s.source, "skipped", skipped, "kept", len(set))
	}
	return set, nil
}

// oauthParseJWKS parses a JWK Set document and keeps its public signing
// keys. Keys it cannot use (other types, encryption keys, symmetric or
// private keys, weak RSA) are skipped, as RFC 7517 §5 asks; a set with no
// usable key at all is an error, so the last good set keeps serving.
func oauthParseJWKS(body []byte) (keys []oauthJWTKey, skipped int, err error) {
	var doc struct {
		Keys []json.RawMessage `json:"keys"`
	}
	if err := answerDepth(body); err != nil {
		return nil, 0, fmt.Errorf("jwks: %w", err)
	}
	if err := json.Unmarshal(body, &doc); err != nil {
		return nil, 0, errors.New("jwks: invalid JSON")
	}
	if len(doc.Keys) > oauthJWKSMaxKeys {
		return nil, 0, fmt.Errorf("jwks: %d keys, more than the %d accepted", len(doc.Keys), oauthJWKSMaxKeys)
	}
	for _, raw := range doc.Keys {
		k, err := oauthParseJWK(raw)
		if err != nil {
			skipped++
			continue
		}
		keys = append(keys, k)
	}
	if len(keys) == 0 {
		return nil, skipped, errors.New("jwks: no usable signing key")
	}
	return keys, skipped, nil
}
