package oauth

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"hookd/internal/egress"
)

// ErrTokenUnavailable is wrapped by every error of Token: no token could
// be obtained (the token endpoint is down, refused the client, or answered
// something that is not a token). Its text is the attempt log's reason.
var ErrTokenUnavailable = errors.New("token_unavailable")

// Limits of a token request.
const (
	// ConnectTimeout bounds connecting to the token endpoint.
	ConnectTimeout = 5 * time.Second
	// RequestTimeout bounds a token request as a whole.
	RequestTimeout = 10 * time.Second
	// MaxResponse caps the token endpoint's answer.
	MaxResponse = 64 << 10
	// MinBackoff is the least wait after a failed token request before the
	// next; it doubles with every failure in a row up to MaxBackoff.
	MinBackoff = time.Second
	// MaxBackoff caps the wait between failed token requests.
	MaxBackoff = time.Minute
	// MaxDescription bounds the error_description of a refusal in the log.
	MaxDescription = 256
)

// Options are what a Source uses besides its Config.
type Options struct {
	// Now is the clock. Nil means time.Now.
	Now func() time.Time
	// Client sends token requests. Nil means Egress.Client when Egress is
	// set, else a client that connects within 5s, gives up after 10s,
	// ignores proxies from the environment and never follows redirects.
	Client *http.Client
	// Egress is the SSRF guard: when set, token_url is checked by it and,
	// unless Client is set, every connection is dialed through it.
	Egress *egress.Guard
	// Log gets a warning each time the token endpoint refuses the client
	// (an RFC 6749 §5.2 error answer). Nil means no log.
	Log *slog.Logger
}

// Source gets, caches and refreshes one client's token. It is safe for
// concurrent use.
type Source struct {
	s      *settings
	now    func() time.Time
	client *http.Client
	log    *slog.Logger

	mu        sync.Mutex
	token     string
	expiry    time.Time     // the token is not used from then on
	refreshAt time.Time     // a new one is fetched from then on
	invalid   bool          // the token was rejected (Invalidate)
	inflight  chan struct{} // closed when the running fetch ends; nil when none runs
	failures  int           // failed fetches in a row
	nextTry   time.Time     // no fetch before then (backoff)
	lastErr   error         // the last fetch's error, while backing off
}

// New validates c and returns its Source. No token is fetched yet.
func New(c Config, o Options) (*Source, error) {
	s, err := c.settings()
	if err != nil {
		return nil, err
	}
	src := &Source{s: s, now: o.Now, client: o.Client, log: o.Log}
	if src.now == nil {
		src.now = time.Now
	}
	if src.log == nil {
		src.log = slog.New(slog.DiscardHandler)
	}
	if o.Egress != nil {
		if err := o.Egress.CheckURL(s.tokenURL); err != nil {
			return nil, fmt.Errorf("token_url: %w", err)
		}
	}
	if src.client == nil {
		if o.Egress != nil {
			src.client = o.Egress.Client(RequestTimeout)
		} else {
			src.client = plainClient()
		}
	}
	return src, nil
}

// plainClient is the client used without an SSRF guard (tests, tools).
func plainClient() *http.Client {
	d := &net.Dialer{Timeout: ConnectTimeout, KeepAlive: 30 * time.Second}
	return &http.Client{
		Transport: &http.Transport{
			Proxy:                  nil,
			DialContext:            d.DialContext,
			TLSHandshakeTimeout:    ConnectTimeout,
			MaxIdleConnsPerHost:    2,
			IdleConnTimeout:        90 * time.Second,
			MaxResponseHeaderBytes: 64 << 10,
			ForceAttemptHTTP2:      true,
		},
		CheckRedirect: egress.NoRedirect,
		Timeout:       RequestTimeout,
	}
}

// Token returns a valid token: the cached one until it is due for refresh,
// else a new one. One fetch runs at a time; other callers wait for it, or
// keep using the cached token while it has not expired. After a failed
// fetch no other is tried before a backoff (1s, doubling to 1m) has
// passed; meanwhile the cached token is used while it is valid, and
// otherwise the failure is returned. Errors wrap ErrTokenUnavailable, or
// ctx's error when ctx ended while waiting.
func (src *Source) Token(ctx context.Context) (string, error) {
	for {
		src.mu.Lock()
		now := src.now()
		usable := src.token != "" && !src.invalid && now.Before(src.expiry)
		if usable && now.Before(src.refreshAt) {
			tok := src.token
			src.mu.Unlock()
			return tok, nil
		}
		if ch := src.inflight; ch != nil {
			if usable {
				tok := src.token
				src.mu.Unlock()
				return tok, nil
			}
			src.mu.Unlock()
			select {
			case <-ch:
				continue
			case <-ctx.Done():
				return "", fmt.Errorf("wait for token: %w", ctx.Err())
			}
		}
		if now.Before(src.nextTry) {
			tok, err := src.token, src.lastErr
			src.mu.Unlock()
			if usable {
				return tok, nil
			}
			return "", err
		}
		ch := make(chan struct{})
		src.inflight = ch
		src.mu.Unlock()

		tr, err := src.fetch(ctx)

		src.mu.Lock()
		src.inflight = nil
		close(ch)
		if err != nil {
			src.failures++
			src.lastErr = err
			src.nextTry = src.now().Add(backoff(src.failures))
			tok := src.token
			usable = src.token != "" && !src.invalid && src.now().Before(src.expiry)
			src.mu.Unlock()
			if usable {
				return tok, nil
			}
			return "", err
		}
		life := src.s.validity
		if tr.ExpiresIn > 0 {
			life = tr.ExpiresIn
		}
		before := src.s.refreshBefore
		if before >= life {
			before = life / 2
		}
		src.token, src.invalid = tr.AccessToken, false
		src.expiry = now.Add(life)
		src.refreshAt = src.expiry.Add(-before)
		src.failures, src.nextTry, src.lastErr = 0, time.Time{}, nil
		tok := src.token
		src.mu.Unlock()
		return tok, nil
	}
}

// backoff is the wait after n failed fetches in a row.
func backoff(n int) time.Duration {
	d := MinBackoff
	for i := 1; i < n && d < MaxBackoff; i++ {
		d *= 2
	}
	return min(d, MaxBackoff)
}

// Invalidate forgets token after a receiver rejected it (a 401): the next
// Token call fetches a new one, unless token was already replaced.
func (src *Source) Invalidate(token string) {
	src.mu.Lock()
	defer src.mu.Unlock()
	if token != "" && token == src.token && !src.invalid {
		src.invalid = true
		// A rejected token is a reason to ask at once, not to wait out a
		// backoff that began while it was still accepted.
		src.nextTry = time.Time{}
	}
}

// fetch asks the token endpoint for a token. It is not cancelled with ctx
// (others may be waiting for it) but bounded by RequestTimeout.
func (src *Source) fetch(ctx context.Context) (tokenResponse, error) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), RequestTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, src.s.tokenURL, strings.NewReader(src.s.body))
	if err != nil {
		return tokenResponse{}, fmt.Errorf("%w: build token request", ErrTokenUnavailable)
	}
	if src.s.basicUser != "" {
		req.SetBasicAuth(src.s.basicUser, src.s.basicPass)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Accept", "application/json")
	resp, err := src.client.Do(req)
	if err != nil {
		return tokenResponse{}, fmt.Errorf("%w: token endpoint: %v", ErrTokenUnavailable, transportReason(err))
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, MaxResponse+1))
	if err != nil {
		return tokenResponse{}, fmt.Errorf("%w: token endpoint: read answer: %v", ErrTokenUnavailable, transportReason(err))
	}
	if len(body) > MaxResponse {
		return tokenResponse{}, fmt.Errorf("%w: token endpoint: answer larger than %d bytes", ErrTokenUnavailable, MaxResponse)
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		e, ok := parseOAuthError(body)
		switch {
		case ok && refusal(resp.StatusCode):
			src.log.Warn("oauth2 token endpoint refused the client",
				"token_url", logURL(src.s.tokenURL), "status", resp.StatusCode,
				"error", e.Error, "error_description", src.description(e.Description))
			return tokenResponse{}, fmt.Errorf("%w: token endpoint refused: %s (answered %d)", ErrTokenUnavailable, e.Error, resp.StatusCode)
		case ok:
			return tokenResponse{}, fmt.Errorf("%w: token endpoint answered %d (error: %s)", ErrTokenUnavailable, resp.StatusCode, e.Error)
		}
		return tokenResponse{}, fmt.Errorf("%w: token endpoint answered %d", ErrTokenUnavailable, resp.StatusCode)
	}
	tr, err := parseTokenResponse(body)
	if err != nil {
		return tokenResponse{}, fmt.Errorf("%w: token endpoint: %v", ErrTokenUnavailable, err)
	}
	return tr, nil
}

// transportReason is err without the URL (its query may hold a secret).
func transportReason(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err
	}
	return err
}

// oauthError is an RFC 6749 §5.2 error answer.
type oauthError struct {
	Error       string `json:"error"`
	Description string `json:"error_description"`
}

// parseOAuthError reads body as an RFC 6749 §5.2 error answer; ok is
// false unless it is one with a well-formed error code (at most 64 bytes
// of letters, digits, '_', '-' and '.'). The description is returned as
// sent: see Source.description before showing it.
func parseOAuthError(body []byte) (e oauthError, ok bool) {
	if answerDepth(body) != nil || json.Unmarshal(body, &e) != nil || e.Error == "" || len(e.Error) > 64 {
		return oauthError{}, false
	}
	for i := 0; i < len(e.Error); i++ {
		if c := e.Error[i]; !(c == '_' || c == '-' || c == '.' || 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9') {
			return oauthError{}, false
		}
	}
	return e, true
}

// refusal reports whether a token endpoint's status, with an RFC 6749
// §5.2 error answer, is a refusal of the request or of the client (400 and
// 401 by §5.2; 403 as some servers answer unauthorized_client) rather than
// a failure of the server.
func refusal(status int) bool {
	return status == http.StatusBadRequest || status == http.StatusUnauthorized || status == http.StatusForbidden
}

// description is a refusal's error_description made fit for a log: the
// client secret (as configured and form-encoded) replaced by [redacted],
// bytes outside printable ASCII by '?', at most MaxDescription bytes.
func (src *Source) description(d string) string {
	if sec := src.s.clientSecret; sec != "" {
		d = strings.ReplaceAll(d, sec, "[redacted]")
		if enc := url.QueryEscape(sec); enc != sec {
			d = strings.ReplaceAll(d, enc, "[redacted]")
		}
	}
	b := make([]byte, 0, min(len(d), MaxDescription))
	for i := 0; i < len(d) && len(b) < MaxDescription; i++ {
		c := d[i]
		if c < 0x20 || c > 0x7e {
			c = '?'
		}
		b = append(b, c)
	}
	return string(b)
}

// logURL is u without its query (which may hold a secret).
func logURL(u string) string {
	p, err := url.Parse(u)
	if err != nil {
		return ""
	}
	p.RawQuery, p.ForceQuery = "", false
	return p.String()
}

// tokenResponse is a parsed successful token answer (RFC 6749 §5.1).
type tokenResponse struct {
	AccessToken string
	TokenType   string
	// ExpiresIn is the lifetime the server gave, 0 when it gave none.
	ExpiresIn time.Duration
}

// maxToken bounds an access token's length.
const maxToken = 16 << 10

// parseTokenResponse parses a token endpoint's JSON answer. access_token
// is required and must be usable in an Authorization header (visible
// ASCII); token_type, when given, must be bearer; expires_in may be a
// number or a numeric string of seconds, and is ignored when not positive.
// Errors never contain the token.
func parseTokenResponse(body []byte) (tokenResponse, error) {
	var raw struct {
		AccessToken *string         `json:"access_token"`
		TokenType   string          `json:"token_type"`
		ExpiresIn   json.RawMessage `json:"expires_in"`
	}
	if err := answerDepth(body); err != nil {
		return tokenResponse{}, fmt.Errorf("answer: %w", err)
	}
	if err := json.Unmarshal(body, &raw); err != nil {
		return tokenResponse{}, errors.New("answer is not a JSON token response")
	}
	var tr tokenResponse
	switch {
	case raw.AccessToken == nil || *raw.AccessToken == "":
		return tr, errors.New("answer has no access_token")
	case len(*raw.AccessToken) > maxToken:
		return tr, fmt.Errorf("access_token longer than %d bytes", maxToken)
	case !visibleASCII(*raw.AccessToken):
		return tr, errors.New("access_token has characters not allowed in a bearer token")
	case raw.TokenType != "" && !strings.EqualFold(raw.TokenType, "bearer"):
		// Not printed: a server may put anything there.
		return tr, errors.New("token_type is not bearer")
	}
	tr.AccessToken, tr.TokenType = *raw.AccessToken, raw.TokenType
	if len(raw.ExpiresIn) > 0 && string(raw.ExpiresIn) != "null" {
		s := string(raw.ExpiresIn)
		if uq, err := strconv.Unquote(s); err == nil {
			s = strings.TrimSpace(uq)
		}
		secs, err := strconv.ParseFloat(s, 64)
		if err != nil || secs != secs {
			return tokenResponse{}, errors.New("expires_in is not a number of seconds")
		}
		if secs > 0 {
			tr.ExpiresIn = time.Duration(min(secs, MaxValidity.Seconds()) * float64(time.Second)).Truncate(time.Second)
		}
	}
	return tr, nil
}

// visibleASCII reports whether s is non-empty visible ASCII (0x21-0x7e).
func visibleASCII(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x21 || c > 0x7e {
			return false
		}
	}
	return true
}
