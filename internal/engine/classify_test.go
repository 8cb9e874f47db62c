package engine

import (
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"hookd/internal/destination"
)

// classOf names the class ClassifyHTTP gave an answer.
func classOf(err error) string {
	switch {
	case err == nil:
		return "ok"
	case destination.IsGone(err):
		return "gone"
	case destination.IsPermanent(err):
		return "final"
	}
	if _, ok := destination.RetryAfterOf(err); ok {
		return "retry-after"
	}
	return "retry"
}

func TestClassifyHTTP(t *testing.T) {
	t.Parallel()
	tests := []struct {
		status  int
		want    string // default classes
		wantAny string // retry_on: any_non_2xx
	}{
		{200, "ok", "ok"},
		{201, "ok", "ok"},
		{204, "ok", "ok"},
		{301, "retry", "retry"},
		{302, "retry", "retry"},
		{400, "final", "retry"},
		{401, "final", "retry"},
		{403, "final", "retry"},
		{404, "final", "retry"},
		{408, "retry", "retry"},
		{410, "gone", "retry"},
		{422, "final", "retry"},
		{425, "retry", "retry"},
		{429, "retry", "retry"},
		{500, "retry", "retry"},
		{502, "retry", "retry"},
		{503, "retry", "retry"},
		{504, "retry", "retry"},
		{599, "retry", "retry"},
		{100, "retry", "retry"},
		{0, "retry", "retry"},
		{600, "retry", "retry"},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("Status%d", tt.status), func(t *testing.T) {
			t.Parallel()
			for _, anyNon2xx := range []bool{false, true} {
				want := tt.want
				if anyNon2xx {
					want = tt.wantAny
				}
				err := ClassifyHTTP(tt.status, "", retryT0, anyNon2xx)
				if got := classOf(err); got != want {
					t.Errorf("any_non_2xx=%v: got %s (%v), want %s", anyNon2xx, got, err, want)
				}
				if err == nil {
					continue
				}
				var se *destination.StatusError
				if !errors.As(err, &se) || se.Code != tt.status {
					t.Errorf("any_non_2xx=%v: got %v, want it to wrap *destination.StatusError{%d}", anyNon2xx, err, tt.status)
				}
				// A Retry-After turns a retriable answer into RetryAfter
				// and never changes a final one.
				withRA := classOf(ClassifyHTTP(tt.status, "7", retryT0, anyNon2xx))
				wantRA := want
				if want == "retry" {
					wantRA = "retry-after"
				}
				if withRA != wantRA {
					t.Errorf("any_non_2xx=%v, Retry-After 7: got %s, want %s", anyNon2xx, withRA, wantRA)
				}
			}
		})
	}
}

func TestClassifyHTTPMessages(t *testing.T) {
	t.Parallel()
	for status, want := range map[int]string{
		302: "http 302 Found (redirects are not followed)",
		400: "http 400 Bad Request",
		503: "http 503 Service Unavailable",
		599: "http 599 unknown status",
	} {
		if got := ClassifyHTTP(status, "", retryT0, false).Error(); got != want {
			t.Errorf("status %d: got %q, want %q", status, got, want)
		}
	}
}

func TestClassifyHTTPRetryAfter(t *testing.T) {
	t.Parallel()
	date := retryT0.Add(90 * time.Second).Format(http.TimeFormat)
	tests := []struct {
		name   string
		status int
		header string
		want   time.Duration
		wantOK bool
	}{
		{"Seconds", 429, "7", 7 * time.Second, true},
		{"HTTPDate", 503, date, 90 * time.Second, true},
		{"Garbage", 503, "soon", 0, false},
		{"Negative", 429, "-5", 0, false},
		{"FinalIgnoresIt", 400, "7", 0, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			d, ok := destination.RetryAfterOf(ClassifyHTTP(tt.status, tt.header, retryT0, false))
			if d != tt.want || ok != tt.wantOK {
				t.Errorf("got %s, %v; want %s, %v", d, ok, tt.want, tt.wantOK)
			}
		})
	}
}

func TestParseRetryAfter(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		in     string
		want   time.Duration
		wantOK bool
	}{
		{"Seconds", "7", 7 * time.Second, true},
		{"Zero", "0", 0, false}, // no delay asked: the policy decides,
		{"Spaces", "  120 ", 2 * time.Minute, true},
		{"LeadingZeros", "007", 7 * time.Second, true},
		{"Huge", "99999999999999999999999999", destination.MaxRetryAfter, true},
		{"JustAboveBound", fmt.Sprint(int64(destination.MaxRetryAfter/time.Second) + 1), destination.MaxRetryAfter, true},
		{"IMFDate", retryT0.Add(time.Hour).Format(http.TimeFormat), time.Hour, true},
		{"RFC850Date", retryT0.Add(time.Hour).Format(time.RFC850), time.Hour, true},
		{"ANSICDate", retryT0.Add(time.Hour).Format(time.ANSIC), time.Hour, true},
		{"PastDate", retryT0.Add(-time.Hour).Format(http.TimeFormat), 0, false},
		{"FarDate", "Fri, 31 Dec 9999 23:59:59 GMT", destination.MaxRetryAfter, true},
		{"Empty", "", 0, false},
		{"Blank", "   ", 0, false},
		{"Negative", "-5", 0, false},
		{"Plus", "+5", 0, false},
		{"Fraction", "1.5", 0, false},
		{"Unit", "5s", 0, false},
		{"Garbage", "tomorrow", 0, false},
		{"NonASCIIDigits", "٣", 0, false},
		{"TwoValues", "5, 6", 0, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, ok := destination.ParseRetryAfter(tt.in, retryT0)
			if got != tt.want || ok != tt.wantOK {
				t.Errorf("destination.ParseRetryAfter(%q): got %s, %v; want %s, %v", tt.in, got, ok, tt.want, tt.wantOK)
			}
		})
	}
}

func FuzzRetryAfter(f *testing.F) {
	for _, s := range []string{"7", "0", "120", "-1", "1.5", "", " 3 ", "99999999999999999999",
		"Wed, 21 Oct 2015 07:28:00 GMT", "Wednesday, 21-Oct-15 07:28:00 GMT", "Wed Oct 21 07:28:00 2015", "soon"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, v string) {
		d, ok := destination.ParseRetryAfter(v, retryT0)
		if !ok {
			if d != 0 {
				t.Fatalf("destination.ParseRetryAfter(%q): got %s with ok=false, want 0", v, d)
			}
			return
		}
		if d < 0 || d > destination.MaxRetryAfter {
			t.Fatalf("destination.ParseRetryAfter(%q): got %s, want within [0, %s]", v, d, destination.MaxRetryAfter)
		}
		if d%time.Second != 0 {
			t.Fatalf("destination.ParseRetryAfter(%q): got %s, want whole seconds", v, d)
		}
		// Whatever the header, a retry stays within the policy's cap.
		p := DefaultPolicy().WithJitterSource(func() float64 { return 0.5 })
		err := ClassifyHTTP(429, v, retryT0, false)
		if dd, has := destination.RetryAfterOf(err); !has || dd != d {
			t.Fatalf("ClassifyHTTP(429, %q): got Retry-After %s, %v; want %s", v, dd, has, d)
		}
		dec := Decide(p, 1, retryT0, retryT0, err)
		if dec.Outcome != OutcomeRetry || dec.At.Before(retryT0.Add(min(d, 6*time.Hour))) || dec.At.After(retryT0.Add(6*time.Hour)) {
			t.Fatalf("Retry-After %q: got %+v, want a retry within [+%s, +6h]", v, dec, min(d, 6*time.Hour))
		}
		// A positive delay-seconds never parses to 0.
		if s := strings.TrimSpace(v); strings.Trim(s, "0123456789") == "" && strings.Trim(s, "0") != "" && d == 0 {
			t.Fatalf("destination.ParseRetryAfter(%q): got 0 for a positive number of seconds", v)
		}
	})
}

func TestDecide(t *testing.T) {
	t.Parallel()
	p := DefaultPolicy().WithJitterSource(func() float64 { return 0.5 })
	three := mustPolicy(t, RetryConfig{Policy: PolicyThreeTimes})
	boom := errors.New("connection refused")
	tests := []struct {
		name       string
		policy     Policy
		attempt    int
		elapsed    time.Duration
		err        error
		want       Outcome
		wantAt     time.Duration // from now, for OutcomeRetry
		wantReason string
	}{
		{"Succeeded", p, 1, 0, nil, OutcomeSucceeded, 0, ""},
		{"PlainErrorRetries", p, 1, 0, boom, OutcomeRetry, 5 * time.Second, ""},
		{"Status503Retries", p, 2, 0, ClassifyHTTP(503, "", retryT0, false), OutcomeRetry, 10 * time.Second, ""},
		{"Status429RetryAfter7", p, 1, 0, ClassifyHTTP(429, "7", retryT0, false), OutcomeRetry, 7 * time.Second, ""},
		{"RetryAfterAboveCap", p, 1, 0, ClassifyHTTP(429, "86400", retryT0, false), OutcomeRetry, 6 * time.Hour, ""},
		{"Status400Fails", p, 1, 0, ClassifyHTTP(400, "", retryT0, false), OutcomeFailed, 0, ReasonPermanent},
		{"Status410Disables", p, 1, 0, ClassifyHTTP(410, "", retryT0, false), OutcomeDisable, 0, ReasonGone},
		{"Status410AnyNon2xxRetries", p, 1, 0, ClassifyHTTP(410, "", retryT0, true), OutcomeRetry, 5 * time.Second, ""},
		{"Status400AnyNon2xxRetries", p, 1, 0, ClassifyHTTP(400, "", retryT0, true), OutcomeRetry, 5 * time.Second, ""},
		{"PermanentBeatsRetryAfter", p, 1, 0, destination.Permanent(destination.RetryAfter(time.Second, boom)), OutcomeFailed, 0, ReasonPermanent},
		{"ThreeTimesThird", three, 3, 0, boom, OutcomeRetry, 30 * time.Minute, ""},
		{"ThreeTimesExhausted", three, 4, 0, boom, OutcomeFailed, 0, ReasonAttemptsExhausted},
		{"MaxAgeExceeded", p, 30, 73 * time.Hour, boom, OutcomeFailed, 0, ReasonMaxAgeExceeded},
		{"RetryAfterPastMaxAge", p, 30, 71 * time.Hour, ClassifyHTTP(503, "7200", retryT0, false), OutcomeFailed, 0, ReasonMaxAgeExceeded},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			now := retryT0.Add(tt.elapsed)
			got := Decide(tt.policy, tt.attempt, retryT0, now, tt.err)
			if got.Outcome != tt.want || got.Reason != tt.wantReason {
				t.Fatalf("got %s %q, want %s %q", got.Outcome, got.Reason, tt.want, tt.wantReason)
			}
			if !errors.Is(got.Err, tt.err) {
				t.Errorf("got Err %v, want %v", got.Err, tt.err)
			}
			if tt.want == OutcomeRetry {
				if d := got.At.Sub(now); d != tt.wantAt {
					t.Errorf("got next attempt at +%s, want +%s", d, tt.wantAt)
				}
			} else if !got.At.IsZero() {
				t.Errorf("got At %v, want zero", got.At)
			}
		})
	}
}

func TestOutcomeString(t *testing.T) {
	t.Parallel()
	for o, want := range map[Outcome]string{OutcomeSucceeded: "succeeded", OutcomeRetry: "retry", OutcomeFailed: "failed", OutcomeDisable: "disable", 0: "Outcome(0)"} {
		if got := o.String(); got != want {
			t.Errorf("got %q, want %q", got, want)
		}
	}
}

// With retry_on: any_non_2xx in the policy, Decide retries a final HTTP
// answer (even 410, which then disables nothing) and keeps its Retry-After;
// a Permanent error that is not an HTTP answer stays final.
func TestDecideAnyNon2xx(t *testing.T) {
	t.Parallel()
	p, err := ParsePolicy(RetryConfig{Policy: PolicyThreeTimes, RetryOn: RetryOnAnyNon2xx})
	if err != nil {
		t.Fatal(err)
	}
	now := retryT0
	for _, tt := range []struct {
		name string
		err  error
		want Outcome
		at   time.Time
	}{
		{"BadRequest", destination.ClassifyHTTP(400, "", now), OutcomeRetry, now.Add(30 * time.Second)},
		{"GoneRetryAfter", destination.ClassifyHTTP(410, "120", now), OutcomeRetry, now.Add(120 * time.Second)},
		{"NotHTTP", destination.Permanent(errors.New("bad message")), OutcomeFailed, time.Time{}},
	} {
		d := Decide(p, 1, now, now, tt.err)
		if d.Outcome != tt.want || !d.At.Equal(tt.at) {
			t.Errorf("%s: got %v at %v, want %v at %v", tt.name, d.Outcome, d.At, tt.want, tt.at)
		}
	}
}
