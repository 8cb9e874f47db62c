package webhook

import (
	"net/http"
	"testing"
	"time"

	"hookd/internal/destination"
)

// outcome names an error's class for table tests.
func outcome(err error) string {
	switch {
	case err == nil:
		return "ok"
	case destination.IsGone(err):
		return "gone"
	case destination.IsPermanent(err):
		return "permanent"
	}
	if d, ok := destination.RetryAfterOf(err); ok {
		return "retry-after " + d.String()
	}
	return "retry"
}

func TestClassify(t *testing.T) {
	t.Parallel()
	h := func(kv ...string) http.Header {
		out := http.Header{}
		for i := 0; i+1 < len(kv); i += 2 {
			out.Add(kv[i], kv[i+1])
		}
		return out
	}
	tests := []struct {
		name   string
		status int
		header http.Header
		want   string
	}{
		{"OK200", 200, nil, "ok"},
		{"Created201", 201, nil, "ok"},
		{"Accepted202", 202, nil, "ok"},
		{"NoContent204", 204, nil, "ok"},
		{"OKWithRetryAfter", 200, h("Retry-After", "7"), "ok"},
		{"Continue100", 100, nil, "retry"},
		{"MovedPermanently301", 301, nil, "retry"},
		{"Found302", 302, nil, "retry"},
		{"NotModified304", 304, nil, "retry"},
		{"TemporaryRedirect307", 307, nil, "retry"},
		{"PermanentRedirect308", 308, nil, "retry"},
		{"BadRequest400", 400, nil, "permanent"},
		{"Unauthorized401", 401, nil, "permanent"},
		{"Forbidden403", 403, nil, "permanent"},
		{"NotFound404", 404, nil, "permanent"},
		{"MethodNotAllowed405", 405, nil, "permanent"},
		{"RequestTimeout408", 408, nil, "retry"},
		{"Conflict409", 409, nil, "permanent"},
		{"Gone410", 410, nil, "gone"},
		{"GoneWithRetryAfter", 410, h("Retry-After", "7"), "gone"},
		{"PayloadTooLarge413", 413, nil, "permanent"},
		{"Unprocessable422", 422, nil, "permanent"},
		{"UnprocessableWithRetryAfter", 422, h("Retry-After", "7"), "permanent"},
		{"TooEarly425", 425, nil, "retry"},
		{"TooManyRequests429", 429, nil, "retry"},
		{"TooManyRequests429RetryAfter", 429, h("Retry-After", "7"), "retry-after 7s"},
		{"Internal500", 500, nil, "retry"},
		{"NotImplemented501", 501, nil, "retry"},
		{"BadGateway502", 502, nil, "retry"},
		{"Unavailable503", 503, nil, "retry"},
		{"Unavailable503RetryAfter", 503, h("Retry-After", "120"), "retry-after 2m0s"},
		{"Unavailable503RetryAfterDate", 503, h("Retry-After", t0.Add(90*time.Second).Format(http.TimeFormat)), "retry-after 1m30s"},
		{"GatewayTimeout504", 504, nil, "retry"},
		{"Status599", 599, nil, "retry"},
		{"Status600", 600, nil, "retry"},
		{"RedirectRetryAfter", 302, h("Retry-After", "3"), "retry-after 3s"},
		{"RetryAfterZero", 503, h("Retry-After", "0"), "retry"},
		{"RetryAfterGarbage", 503, h("Retry-After", "soon"), "retry"},
		{"RetryAfterPastDate", 503, h("Retry-After", t0.Add(-time.Hour).Format(http.TimeFormat)), "retry"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			err := Classify(tt.status, tt.header, t0)
			if got := outcome(err); got != tt.want {
				t.Errorf("Classify(%d, %v): got %s (%v), want %s", tt.status, tt.header, got, err, tt.want)
			}
		})
	}
}

func TestParseRetryAfter(t *testing.T) {
	t.Parallel()
	now := t0
	tests := []struct {
		name   string
		in     string
		want   time.Duration
		wantOK bool
	}{
		{"Empty", "", 0, false},
		{"Seconds", "7", 7 * time.Second, true},
		{"SecondsSpaces", " 7 ", 7 * time.Second, true},
		{"LeadingZeros", "007", 7 * time.Second, true},
		{"Zero", "0", 0, false},
		{"Negative", "-5", 0, false},
		{"Fraction", "1.5", 0, false},
		{"Plus", "+5", 0, false},
		{"Huge", "99999999999999999999999", maxRetryAfter, true},
		{"HugeButFitsUint", "18446744073709551615", maxRetryAfter, true},
		{"IMFDate", t0.Add(30 * time.Second).Format(http.TimeFormat), 30 * time.Second, true},
		{"RFC850Date", t0.Add(30 * time.Second).Format(time.RFC850), 30 * time.Second, true},
		{"ANSICDate", t0.Add(30 * time.Second).Format(time.ANSIC), 30 * time.Second, true},
		{"DateNow", t0.Format(http.TimeFormat), 0, false},
		{"DatePast", t0.Add(-time.Minute).Format(http.TimeFormat), 0, false},
		{"NotADate", "tomorrow", 0, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, ok := ParseRetryAfter(tt.in, now)
			if got != tt.want || ok != tt.wantOK {
				t.Errorf("ParseRetryAfter(%q): got %s, %v; want %s, %v", tt.in, got, ok, tt.want, tt.wantOK)
			}
		})
	}
}

func FuzzParseRetryAfter(f *testing.F) {
	for _, s := range []string{"", "7", "0", "-1", "1.5", "99999999999999999999", "Sun, 22 Nov 2026 06:30:30 GMT",
		"Sunday, 22-Nov-26 06:30:30 GMT", "Sun Nov 22 06:30:30 2026", "Fri, 31 Dec 9999 23:59:59 GMT", "Mon, 01 Jan 0001 00:00:00 GMT"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		d, ok := ParseRetryAfter(s, t0)
		if ok && d <= 0 {
			t.Errorf("ParseRetryAfter(%q): ok with non-positive delay %s", s, d)
		}
		if !ok && d != 0 {
			t.Errorf("ParseRetryAfter(%q): not ok but delay %s", s, d)
		}
		h := http.Header{"Retry-After": {s}}
		for _, status := range []int{200, 302, 400, 410, 429, 503} {
			err := Classify(status, h, t0)
			if (status == 200) != (err == nil) {
				t.Errorf("Classify(%d, Retry-After %q): %v", status, s, err)
			}
		}
	})
}
