package engine

import (
	"errors"
	"testing"
	"time"

	"hookd/internal/destination"
)

// limitHead bounds the retries of an ordered lane's head by head_timeout.
func TestLimitHead(t *testing.T) {
	t.Parallel()
	p := DefaultPolicy().WithJitterSource(func() float64 { return 0.5 }) // 5s, 10s, 20s… no jitter
	boom := errors.New("connection refused")
	tests := []struct {
		name        string
		headTimeout time.Duration
		attempt     int
		elapsed     time.Duration // from the first attempt to the end of this one
		err         error
		want        Outcome
		wantAt      time.Duration // from the first attempt, for OutcomeRetry
		wantReason  string
	}{
		{"UnsetKeepsThePolicy", 0, 8, 9 * time.Minute, boom, OutcomeRetry, 9*time.Minute + 640*time.Second, ""},
		{"BeforeTheDeadline", 10 * time.Minute, 1, 0, boom, OutcomeRetry, 5 * time.Second, ""},
		{"PulledBackToTheDeadline", 10 * time.Minute, 8, 9 * time.Minute, boom, OutcomeRetry, 10 * time.Minute, ""},
		{"AtTheDeadline", 10 * time.Minute, 9, 10 * time.Minute, boom, OutcomeFailed, 0, ReasonHeadTimeout},
		{"PastTheDeadline", 10 * time.Minute, 9, time.Hour, boom, OutcomeFailed, 0, ReasonHeadTimeout},
		{"RetryAfterPastTheDeadline", 10 * time.Minute, 1, time.Minute, ClassifyHTTP(503, "3600", retryT0, false), OutcomeFailed, 0, ReasonHeadTimeout},
		{"ShortRetryAfterPulledBack", 10 * time.Minute, 8, 9 * time.Minute, ClassifyHTTP(503, "5", retryT0, false), OutcomeRetry, 10 * time.Minute, ""},
		{"SucceededUnchanged", 10 * time.Minute, 9, time.Hour, nil, OutcomeSucceeded, 0, ""},
		{"PermanentUnchanged", 10 * time.Minute, 9, time.Hour, destination.Permanent(boom), OutcomeFailed, 0, ReasonPermanent},
		{"MaxAgeFirst", time.Hour, 30, 73 * time.Hour, boom, OutcomeFailed, 0, ReasonMaxAgeExceeded},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			d := &dispatcher{policy: p, headTimeout: tt.headTimeout}
			now := retryT0.Add(tt.elapsed)
			got := d.limitHead(Decide(p, tt.attempt, retryT0, now, tt.err), retryT0, now, tt.err)
			if got.Outcome != tt.want || got.Reason != tt.wantReason {
				t.Fatalf("got %s %q, want %s %q", got.Outcome, got.Reason, tt.want, tt.wantReason)
			}
			if tt.err != nil && !errors.Is(got.Err, tt.err) {
				t.Errorf("got Err %v, want %v", got.Err, tt.err)
			}
			if tt.want == OutcomeRetry {
				if at := got.At.Sub(retryT0); at != tt.wantAt {
					t.Errorf("got next attempt at first+%s, want first+%s", at, tt.wantAt)
				}
			}
		})
	}
}
