package engine

import (
	"fmt"
	"net/http"
	"strings"
	"time"

	"hookd/internal/destination"
)

// MaxRetryAfter bounds a parsed Retry-After, so that a huge value cannot
// overflow a time.Duration. The retry policy's cap then bounds it further.
const MaxRetryAfter = 30 * 24 * time.Hour

// StatusError is an HTTP answer that was not a success. ClassifyHTTP wraps
// it with the outcome wrappers of package destination.
type StatusError struct {
	// Code is the HTTP status code.
	Code int
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
//   - 410: destination.Gone (final, and the destination is disabled);
//   - other 4xx except 408, 425 and 429: destination.Permanent (final);
//   - everything else (408, 425, 429, 5xx, 3xx which is never followed,
//     and codes outside 200–599): retriable, wrapped in
//     destination.RetryAfter when retryAfterHeader parses (see
//     ParseRetryAfter), else a plain error.
//
// With retryOnAnyNon2xx (retry_on: any_non_2xx, seed 001) every non-2xx is
// retriable: nothing is Permanent, and 410 is retried like the rest and
// does not disable the destination, because whoever sets any_non_2xx asked
// for exactly that; a destination that stays gone is still disabled by the
// "failing continuously" rule.
//
// The returned error wraps a *StatusError.
func ClassifyHTTP(status int, retryAfterHeader string, now time.Time, retryOnAnyNon2xx bool) error {
	if status >= 200 && status <= 299 {
		return nil
	}
	err := error(&StatusError{Code: status})
	if !retryOnAnyNon2xx && status >= 400 && status <= 499 {
		switch status {
		case http.StatusGone:
			return destination.Gone(err)
		case http.StatusRequestTimeout, http.StatusTooEarly, http.StatusTooManyRequests:
		default:
			return destination.Permanent(err)
		}
	}
	if d, ok := ParseRetryAfter(retryAfterHeader, now); ok {
		return destination.RetryAfter(d, err)
	}
	return err
}

// ParseRetryAfter parses a Retry-After header value (RFC 9110 §10.2.3):
// delay-seconds (ASCII digits only, no sign) or an HTTP-date, relative to
// now. A date in the past gives 0. Anything else (empty, negative,
// fractional, garbage) gives ok=false. The result is at most MaxRetryAfter.
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
		return min(time.Duration(secs)*time.Second, MaxRetryAfter), true
	}
	t, err := http.ParseTime(v)
	if err != nil {
		return 0, false
	}
	d := t.Sub(now) // saturates at the Duration bounds
	return min(max(d, 0), MaxRetryAfter), true
}

// Outcome is what the engine does with a delivery after an attempt.
type Outcome int

const (
	// OutcomeSucceeded: the attempt delivered; the delivery is succeeded.
	OutcomeSucceeded Outcome = iota + 1
	// OutcomeRetry: the delivery is retrying, next attempt at Decision.At.
	OutcomeRetry
	// OutcomeFailed: the delivery is failed (the failed-event queue), for
	// Decision.Reason.
	OutcomeFailed
	// OutcomeDisable: the delivery is failed and its destination is
	// disabled (HTTP 410).
	OutcomeDisable
)

func (o Outcome) String() string {
	switch o {
	case OutcomeSucceeded:
		return "succeeded"
	case OutcomeRetry:
		return "retry"
	case OutcomeFailed:
		return "failed"
	case OutcomeDisable:
		return "disable"
	}
	return fmt.Sprintf("Outcome(%d)", int(o))
}

// Decision is the outcome of one attempt combined with the retry policy.
type Decision struct {
	// Outcome is what to do with the delivery.
	Outcome Outcome
	// At is when the next attempt is due (OutcomeRetry only).
	At time.Time
	// Reason says why the delivery failed (OutcomeFailed, OutcomeDisable):
	// one of the Reason constants.
	Reason string
	// Err is the attempt's error, nil when it succeeded.
	Err error
}

// Decide combines the error of failed attempt number attempt (1-based)
// with policy: nil → succeeded; destination.Gone → failed and disable;
// destination.Permanent → failed; a RetryAfter or plain error → retry at
// policy.Next, or failed with ReasonAttemptsExhausted or
// ReasonMaxAgeExceeded when the policy is exhausted. firstAt is when
// attempt 1 started and now when this attempt ended.
//
// Decide does not know about shutdown: an attempt cut by shutdown must be
// re-queued by the caller without spending a retry.
func Decide(policy Policy, attempt int, firstAt, now time.Time, err error) Decision {
	switch {
	case err == nil:
		return Decision{Outcome: OutcomeSucceeded}
	case destination.IsGone(err):
		return Decision{Outcome: OutcomeDisable, Reason: ReasonGone, Err: err}
	case destination.IsPermanent(err):
		return Decision{Outcome: OutcomeFailed, Reason: ReasonPermanent, Err: err}
	}
	ra, hasRA := destination.RetryAfterOf(err)
	at, reason := policy.next(attempt, firstAt, now, ra, hasRA)
	if reason != "" {
		return Decision{Outcome: OutcomeFailed, Reason: reason, Err: err}
	}
	return Decision{Outcome: OutcomeRetry, At: at, Err: err}
}
