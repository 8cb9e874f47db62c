package webhook

import (
	"fmt"
	"math"
	"net/http"
	"strconv"
	"strings"
	"time"

	"hookd/internal/destination"
)

// Classify turns an HTTP answer into an attempt outcome, as SPEC §3 lists
// the classes:
//
//   - 2xx: nil (succeeded).
//   - 410: destination.Gone (final, and the destination is disabled).
//   - other 4xx except 408, 425 and 429: destination.Permanent (final).
//   - 408, 425, 429, 5xx, 3xx (redirects are never followed) and any other
//     status: a retriable error; wrapped in destination.RetryAfter when the
//     answer carries a usable Retry-After (seconds or an HTTP date, read
//     against now).
//
// Retry-After is ignored on final answers, and when it asks for no delay
// (0, or a date not after now): the policy's backoff applies then. The
// retry policy caps the delay; Classify does not. The engine's
// retry_on: any_non_2xx option overrides the final classes; Classify does
// not know about it.
func Classify(status int, header http.Header, now time.Time) error {
	if status >= 200 && status <= 299 {
		return nil
	}
	err := &statusError{code: status}
	switch {
	case status == http.StatusGone:
		return destination.Gone(err)
	case status >= 400 && status <= 499 &&
		status != http.StatusRequestTimeout && status != http.StatusTooEarly && status != http.StatusTooManyRequests:
		return destination.Permanent(err)
	}
	if d, ok := ParseRetryAfter(header.Get("Retry-After"), now); ok {
		err.retryAfter = d
		return destination.RetryAfter(d, err)
	}
	return err
}

// statusError is a non-2xx answer.
type statusError struct {
	code       int
	retryAfter time.Duration
}

func (e *statusError) Error() string {
	msg := "answered " + strconv.Itoa(e.code)
	if text := http.StatusText(e.code); text != "" {
		msg += " " + text
	}
	if e.code >= 300 && e.code <= 399 {
		msg += " (redirects are not followed)"
	}
	if e.retryAfter > 0 {
		msg += fmt.Sprintf(", Retry-After %s", e.retryAfter)
	}
	return msg
}

// maxRetryAfter keeps a hostile Retry-After from overflowing a
// time.Duration; the retry policy caps the delay far below it.
const maxRetryAfter = time.Duration(math.MaxInt64)

// ParseRetryAfter reads a Retry-After header value (RFC 9110 §10.2.3):
// a number of seconds, or an HTTP date taken relative to now. It reports
// false when the value is absent, malformed, or asks for no delay.
func ParseRetryAfter(v string, now time.Time) (time.Duration, bool) {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0, false
	}
	if isDigits(v) {
		n, err := strconv.ParseUint(v, 10, 64)
		if err != nil || n > uint64(maxRetryAfter/time.Second) {
			// All digits but too large for a uint64 or a Duration.
			return maxRetryAfter, true
		}
		if n == 0 {
			return 0, false
		}
		return time.Duration(n) * time.Second, true
	}
	t, err := http.ParseTime(v)
	if err != nil {
		return 0, false
	}
	d := t.Sub(now)
	if d <= 0 {
		return 0, false
	}
	// Dates have whole seconds: round up so the answer's date is honoured.
	if r := d % time.Second; r != 0 && d < maxRetryAfter-time.Second {
		d += time.Second - r
	}
	return d, true
}

func isDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return s != ""
}
