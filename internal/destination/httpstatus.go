package destination

import (
	"fmt"
	"net/http"
	"strings"
	"time"
)

// MaxRetryAfter bounds a parsed Retry-After, so that a huge value cannot
// overflow a time.Duration. The retry policy's cap then bounds it further.
const MaxRetryAfter = 30 * 24 * time.Hour

// StatusError is an HTTP answer that was not a success. ClassifyHTTP wraps
// it with the outcome wrappers; the engine reads it to apply
// retry_on: any_non_2xx, which makes every non-2xx retriable.
type StatusError struct {
	// Code is the HTTP status code.
	Code int
	// RetryAfter is the answer's Retry-After, when HasRetryAfter.
	RetryAfter    time.Duration
	HasRetryAfter bool
}

func (e *StatusError) Error() string {
	text := http.StatusText(e.Code)
	if text == "" {
		text = "unknown status"
	}
	if e.Code >= 300 && e.Code < 400 {
		return fmt.Sprintf("http %d %s (redirects are not followed)", e.Code, text)
	}
	return fmt.Sprintf("http %d %s", e.Code, text)
}

// ClassifyHTTP turns an HTTP answer into an attempt outcome (SPEC §3):
//   - 2xx: nil (succeeded);
//   - 410: Gone (final, and the destination is disabled);
//   - other 4xx except 408, 425 and 429: Permanent (final);
//   - everything else (408, 425, 429, 5xx, 3xx which is never followed,
//     and codes outside 200–599): retriable, wrapped in RetryAfter when
//     retryAfterHeader asks for a delay (see ParseRetryAfter), else plain.
//
// The returned error wraps a *StatusError, which keeps the Retry-After even
// on final answers (for retry_on: any_non_2xx).
func ClassifyHTTP(status int, retryAfterHeader string, now time.Time) error {
	if status >= 200 && status <= 299 {
		return nil
	}
	se := &StatusError{Code: status}
	se.RetryAfter, se.HasRetryAfter = ParseRetryAfter(retryAfterHeader, now)
	if status >= 400 && status <= 499 {
		switch status {
		case http.StatusGone:
			return Gone(se)
		case http.StatusRequestTimeout, http.StatusTooEarly, http.StatusTooManyRequests:
		default:
			return Permanent(se)
		}
	}
	if se.HasRetryAfter {
		return RetryAfter(se.RetryAfter, se)
	}
	return se
}

// ParseRetryAfter parses a Retry-After header value (RFC 9110 §10.2.3):
// delay-seconds (ASCII digits only, no sign) or an HTTP-date, relative to
// now. Anything that asks for no delay (0, a date not after now) or that
// does not parse (empty, negative, fractional, garbage) gives ok=false:
// the retry policy's own backoff applies then. The result is at most
// MaxRetryAfter.
func ParseRetryAfter(v string, now time.Time) (time.Duration, bool) {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0, false
	}
	if v[0] >= '0' && v[0] <= '9' {
		const maxSecs = int64(MaxRetryAfter / time.Second)
		var secs int64
		for i := 0; i < len(v); i++ {
			c := v[i]
			if c < '0' || c > '9' {
				return 0, false
			}
			if secs <= maxSecs {
				secs = secs*10 + int64(c-'0')
			}
		}
		if secs == 0 {
			return 0, false
		}
		return min(time.Duration(secs)*time.Second, MaxRetryAfter), true
	}
	t, err := http.ParseTime(v)
	if err != nil {
		return 0, false
	}
	d := t.Sub(now) // saturates at the Duration bounds
	if d <= 0 {
		return 0, false
	}
	return min(d, MaxRetryAfter), true
}
