package engine

import (
	"errors"
	"fmt"
	"time"

	"hookd/internal/destination"
)

// ClassifyHTTP is destination.ClassifyHTTP with the engine's one addition:
// with retryOnAnyNon2xx (retry_on: any_non_2xx, seed 001) every non-2xx is
// retriable: nothing is Permanent, and 410 is retried like the rest and
// does not disable the destination, because whoever sets any_non_2xx asked
// for exactly that; a destination that stays gone is still disabled by the
// "failing continuously" rule.
func ClassifyHTTP(status int, retryAfterHeader string, now time.Time, retryOnAnyNon2xx bool) error {
	err := destination.ClassifyHTTP(status, retryAfterHeader, now)
	if retryOnAnyNon2xx {
		return anyNon2xx(err)
	}
	return err
}

// anyNon2xx turns a final HTTP answer into a retriable one, keeping its
// Retry-After. Errors that are not HTTP answers keep their class.
func anyNon2xx(err error) error {
	var se *destination.StatusError
	if err == nil || !errors.As(err, &se) {
		return err
	}
	if se.HasRetryAfter {
		return destination.RetryAfter(se.RetryAfter, se)
	}
	return se
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
	if policy.RetryOnAnyNon2xx() {
		err = anyNon2xx(err)
	}
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
