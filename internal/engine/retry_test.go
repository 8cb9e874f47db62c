package engine

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"gopkg.in/yaml.v3"

	"hookd/internal/config"
)

var retryT0 = time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)

func mustPolicy(t *testing.T, c RetryConfig) Policy {
	t.Helper()
	p, err := ParsePolicy(c)
	if err != nil {
		t.Fatalf("ParsePolicy(%+v): %v", c, err)
	}
	return p
}

// retryRun fails every attempt instantly (an attempt ends when it starts)
// and returns the delay before each retry, until the policy is exhausted.
func retryRun(t *testing.T, p Policy) (delays []time.Duration, reason string) {
	t.Helper()
	now := retryT0
	for attempt := 1; attempt < 10000; attempt++ {
		next, why := p.next(attempt, retryT0, now, 0, false)
		if why != "" {
			return delays, why
		}
		if next.Before(now) {
			t.Fatalf("attempt %d: next %v before now %v", attempt, next, now)
		}
		delays = append(delays, next.Sub(now))
		now = next
	}
	t.Fatal("policy never exhausted")
	return nil, ""
}

func mins(ms ...int) []time.Duration {
	out := make([]time.Duration, len(ms))
	for i, m := range ms {
		out[i] = time.Duration(m) * time.Minute
	}
	return out
}

func repeatDur(d time.Duration, n int) []time.Duration {
	out := make([]time.Duration, n)
	for i := range out {
		out[i] = d
	}
	return out
}

func sumDur(ds []time.Duration) time.Duration {
	var s time.Duration
	for _, d := range ds {
		s += d
	}
	return s
}

func logSchedule(t *testing.T, name string, delays []time.Duration) {
	t.Helper()
	var b strings.Builder
	fmt.Fprintf(&b, "%s: %d retries\n", name, len(delays))
	var at time.Duration
	for i, d := range delays {
		at += d
		fmt.Fprintf(&b, "  retry %2d (attempt %2d): after %-10s at +%-12s (%.2f days)\n", i+1, i+2, d, at, at.Hours()/24)
	}
	t.Log(b.String())
}

func TestPresetSchedules(t *testing.T) {
	t.Parallel()
	threeWeeks := append(mins(1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 2048), repeatDur(36*time.Hour, 13)...)
	week := append(mins(1, 2, 4, 8, 16, 32, 64, 128, 256, 512), repeatDur(12*time.Hour, 12)...)
	week = append(week, 7*24*time.Hour-sumDur(week)) // the last attempt at exactly 7 days
	tests := []struct {
		name       string
		cfg        RetryConfig
		want       []time.Duration
		wantReason string
		wantTotal  time.Duration
	}{
		{
			name:       "ThreeTimes",
			cfg:        RetryConfig{Policy: PolicyThreeTimes},
			want:       []time.Duration{30 * time.Second, 5 * time.Minute, 30 * time.Minute},
			wantReason: ReasonAttemptsExhausted,
			wantTotal:  35*time.Minute + 30*time.Second,
		},
		{
			name:       "Week",
			cfg:        RetryConfig{Policy: PolicyWeek},
			want:       week,
			wantReason: ReasonMaxAgeExceeded,
			wantTotal:  7 * 24 * time.Hour,
		},
		{
			name:       "ThreeWeeks",
			cfg:        RetryConfig{Policy: PolicyThreeWeeks},
			want:       threeWeeks,
			wantReason: ReasonAttemptsExhausted,
			// 4095 min (2d 20h 15m) + 13 × 36h (19d 12h) = 22d 8h 15m.
			wantTotal: 22*24*time.Hour + 8*time.Hour + 15*time.Minute,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, reason := retryRun(t, mustPolicy(t, tt.cfg))
			logSchedule(t, tt.cfg.Policy, got)
			if len(got) != len(tt.want) {
				t.Fatalf("got %d retries %v, want %d %v", len(got), got, len(tt.want), tt.want)
			}
			for i := range got {
				if got[i] != tt.want[i] {
					t.Errorf("retry %d: got delay %s, want %s", i+1, got[i], tt.want[i])
				}
			}
			if reason != tt.wantReason {
				t.Errorf("got reason %q, want %q", reason, tt.wantReason)
			}
			if total := sumDur(got); total != tt.wantTotal {
				t.Errorf("got total %s, want %s", total, tt.wantTotal)
			}
		})
	}
}

func TestThreeWeeksIsAbout22Days(t *testing.T) {
	t.Parallel()
	got, _ := retryRun(t, mustPolicy(t, RetryConfig{Policy: PolicyThreeWeeks}))
	if len(got) != 25 {
		t.Fatalf("got %d retries, want 25", len(got))
	}
	days := sumDur(got).Hours() / 24
	if days < 21.5 || days > 22.5 {
		t.Fatalf("got %.2f days, want about 22", days)
	}
}

func TestDefaultPolicy(t *testing.T) {
	t.Parallel()
	// Without jitter draws (r = 0.5 is the midpoint: factor exactly 1).
	p := DefaultPolicy().WithJitterSource(func() float64 { return 0.5 })
	if p.Name() != PolicyExponential {
		t.Errorf("got name %q, want %q", p.Name(), PolicyExponential)
	}
	got, reason := retryRun(t, p)
	logSchedule(t, "default", got)
	want := []time.Duration{5 * time.Second, 10 * time.Second, 20 * time.Second, 40 * time.Second, 80 * time.Second,
		160 * time.Second, 320 * time.Second, 640 * time.Second, 1280 * time.Second, 2560 * time.Second,
		5120 * time.Second, 10240 * time.Second, 20480 * time.Second}
	for len(want) < len(got)-1 {
		want = append(want, 6*time.Hour)
	}
	want = append(want, 72*time.Hour-sumDur(want))
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("got %v, want %v", got, want)
	}
	if reason != ReasonMaxAgeExceeded {
		t.Errorf("got reason %q, want %q", reason, ReasonMaxAgeExceeded)
	}
	if total := sumDur(got); total != 72*time.Hour {
		t.Errorf("got total %s, want 72h", total)
	}
}

func TestZeroPolicyIsDefault(t *testing.T) {
	t.Parallel()
	half := func() float64 { return 0.5 }
	zero := Policy{}.WithJitterSource(half)
	def := DefaultPolicy().WithJitterSource(half)
	if zero.Name() != PolicyExponential {
		t.Errorf("got name %q, want %q", zero.Name(), PolicyExponential)
	}
	for _, attempt := range []int{1, 5, 20} {
		got, gotOK := zero.Next(attempt, retryT0, retryT0, 0, false)
		want, wantOK := def.Next(attempt, retryT0, retryT0, 0, false)
		if !got.Equal(want) || gotOK != wantOK {
			t.Errorf("attempt %d: got %v %v, want %v %v", attempt, got, gotOK, want, wantOK)
		}
	}
}

func TestJitterBounds(t *testing.T) {
	t.Parallel()
	r := rand.New(rand.NewPCG(1, 2))
	p := DefaultPolicy().WithJitterSource(r.Float64)
	var lo, hi float64 = 2, 0
	for i := range 10000 {
		attempt := 1 + i%12 // below the cap: 5s × 2^11 < 6h
		nominal := float64(5*time.Second) * float64(int(1)<<(attempt-1))
		next, ok := p.Next(attempt, retryT0, retryT0, 0, false)
		if !ok {
			t.Fatalf("attempt %d: exhausted", attempt)
		}
		ratio := float64(next.Sub(retryT0)) / nominal
		lo, hi = min(lo, ratio), max(hi, ratio)
		if ratio < 0.9-1e-9 || ratio > 1.1+1e-9 {
			t.Fatalf("draw %d attempt %d: got delay %s (×%.4f), want within ±10%% of %s", i, attempt, next.Sub(retryT0), ratio, time.Duration(nominal))
		}
	}
	t.Logf("10000 draws: ratio in [%.4f, %.4f]", lo, hi)
	if lo > 0.91 || hi < 1.09 {
		t.Errorf("got ratios in [%.4f, %.4f], want them to spread over most of [0.9, 1.1]", lo, hi)
	}
}

func TestJitterNeverExceedsCap(t *testing.T) {
	t.Parallel()
	for _, r := range []float64{0, 0.5, 0.999999, 1, 7, -1} {
		p := DefaultPolicy().WithJitterSource(func() float64 { return r })
		next, ok := p.Next(30, retryT0, retryT0, 0, false)
		if !ok {
			t.Fatal("exhausted")
		}
		if d := next.Sub(retryT0); d > 6*time.Hour || d < 5*time.Hour+24*time.Minute {
			t.Errorf("r=%v: got %s, want within [5h24m, 6h]", r, d)
		}
	}
}

func TestNextRetryAfter(t *testing.T) {
	t.Parallel()
	noJitter := func(c RetryConfig) RetryConfig { c.Jitter = retryFloat(0); return c }
	tests := []struct {
		name    string
		cfg     RetryConfig
		attempt int
		elapsed time.Duration // now − first attempt
		ra      time.Duration
		hasRA   bool
		want    time.Duration // from now; -1 = exhausted
	}{
		{"Seven", noJitter(RetryConfig{}), 1, 0, 7 * time.Second, true, 7 * time.Second},
		{"ShorterThanBackoffKeepsBackoff", noJitter(RetryConfig{}), 3, 0, 7 * time.Second, true, 20 * time.Second},
		{"AboveCapIsCapped", noJitter(RetryConfig{}), 1, 0, 48 * time.Hour, true, 6 * time.Hour},
		{"NegativeIsZero", noJitter(RetryConfig{}), 1, 0, -time.Hour, true, 5 * time.Second},
		{"IgnoredWhenAbsent", noJitter(RetryConfig{}), 1, 0, time.Hour, false, 5 * time.Second},
		{"ScheduleCappedByLargestEntry", RetryConfig{Policy: PolicyThreeTimes}, 1, 0, 2 * time.Hour, true, 30 * time.Minute},
		{"ScheduleSeven", RetryConfig{Policy: PolicyThreeTimes}, 1, 0, 7 * time.Second, true, 30 * time.Second},
		{"ScheduleLong", RetryConfig{Policy: PolicyThreeTimes}, 2, 0, 10 * time.Minute, true, 10 * time.Minute},
		{"PastMaxAgeIsExhausted", noJitter(RetryConfig{}), 2, 71 * time.Hour, 2 * time.Hour, true, -1},
		{"BackoffPastMaxAgeIsPulledBack", noJitter(RetryConfig{}), 20, 71 * time.Hour, 0, false, time.Hour},
		{"WithinMaxAge", noJitter(RetryConfig{}), 20, 71 * time.Hour, 30 * time.Minute, true, time.Hour},
		{"AtMaxAgeIsExhausted", noJitter(RetryConfig{}), 20, 72 * time.Hour, 0, false, -1},
		{"MaxAttempts", RetryConfig{MaxAttempts: 3}, 3, 0, 0, false, -1},
		{"MaxAttemptsNotYet", noJitter(RetryConfig{MaxAttempts: 3}), 2, 0, 0, false, 10 * time.Second},
		{"ScheduleExhausted", RetryConfig{Policy: PolicyThreeTimes}, 4, 0, time.Second, true, -1},
		{"AttemptZeroIsFirst", noJitter(RetryConfig{}), 0, 0, 0, false, 5 * time.Second},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			p := mustPolicy(t, tt.cfg)
			now := retryT0.Add(tt.elapsed)
			next, ok := p.Next(tt.attempt, retryT0, now, tt.ra, tt.hasRA)
			if tt.want < 0 {
				if ok {
					t.Fatalf("got next at +%s, want exhausted", next.Sub(now))
				}
				return
			}
			if !ok {
				t.Fatalf("got exhausted, want next at +%s", tt.want)
			}
			if got := next.Sub(now); got != tt.want {
				t.Fatalf("got next at +%s, want +%s", got, tt.want)
			}
		})
	}
}

func TestParsePolicyOverrides(t *testing.T) {
	t.Parallel()
	// A schedule given without a policy is a schedule.
	p := mustPolicy(t, RetryConfig{Schedule: []config.Duration{config.Duration(time.Second), config.Duration(5 * time.Minute)}})
	got, reason := retryRun(t, p)
	if p.Name() != PolicySchedule || fmt.Sprint(got) != "[1s 5m0s]" || reason != ReasonAttemptsExhausted {
		t.Errorf("got %s %v %q, want schedule [1s 5m0s] %q", p.Name(), got, reason, ReasonAttemptsExhausted)
	}
	// A preset's field can be overridden: week with jitter.
	w := mustPolicy(t, RetryConfig{Policy: PolicyWeek, Jitter: retryFloat(0.1)})
	if w.jitter != 0.1 || w.base != time.Minute || w.cap != 12*time.Hour || w.maxAge != 7*24*time.Hour {
		t.Errorf("got %+v, want week with jitter 0.1", w)
	}
	// An explicit jitter 0 is kept.
	z := mustPolicy(t, RetryConfig{Policy: PolicyExponential, Jitter: retryFloat(0)})
	if z.jitter != 0 {
		t.Errorf("got jitter %v, want 0", z.jitter)
	}
	if !mustPolicy(t, RetryConfig{RetryOn: RetryOnAnyNon2xx}).RetryOnAnyNon2xx() {
		t.Error("got RetryOnAnyNon2xx false, want true")
	}
}

func TestParsePolicyErrors(t *testing.T) {
	t.Parallel()
	d := func(s string) config.Duration {
		v, err := time.ParseDuration(s)
		if err != nil {
			t.Fatal(err)
		}
		return config.Duration(v)
	}
	tests := []struct {
		name string
		cfg  RetryConfig
		want []string
	}{
		{"UnknownPolicy", RetryConfig{Policy: "fibonacci"}, []string{`retry.policy: unknown policy "fibonacci"`}},
		{"FactorBelowOne", RetryConfig{Factor: 0.5}, []string{"retry.factor: must be ≥ 1"}},
		{"FactorNegative", RetryConfig{Factor: -2}, []string{"retry.factor: must be ≥ 1"}},
		{"JitterNegative", RetryConfig{Jitter: retryFloat(-0.1)}, []string{"retry.jitter: must be in [0, 1)"}},
		{"JitterOne", RetryConfig{Jitter: retryFloat(1)}, []string{"retry.jitter: must be in [0, 1)"}},
		{"BaseNegative", RetryConfig{Base: d("-1s")}, []string{"retry.base: must be positive"}},
		{"CapNegative", RetryConfig{Cap: d("-1s")}, []string{"retry.cap: must be positive"}},
		{"CapBelowBase", RetryConfig{Base: d("1h"), Cap: d("1m")}, []string{"retry.cap: must be ≥ base (1h0m0s)"}},
		{"MaxAttemptsNegative", RetryConfig{MaxAttempts: -1}, []string{"retry.max_attempts: must be ≥ 1"}},
		{"MaxAgeNegative", RetryConfig{MaxAge: d("-1h")}, []string{"retry.max_age: must be positive"}},
		{"RetryOnUnknown", RetryConfig{RetryOn: "all"}, []string{`retry.retry_on: unknown value "all"`}},
		{"ScheduleMissing", RetryConfig{Policy: PolicySchedule}, []string{"retry.schedule: required with policy schedule"}},
		{"ScheduleEntryZero", RetryConfig{Schedule: []config.Duration{d("1s"), 0}}, []string{"retry.schedule[1]: must be positive"}},
		{"ScheduleWithExponential", RetryConfig{Policy: PolicyExponential, Schedule: []config.Duration{d("1s")}}, []string{"retry.schedule: not used by policy exponential"}},
		{"ScheduleWithThreeTimes", RetryConfig{Policy: PolicyThreeTimes, Schedule: []config.Duration{d("1s")}}, []string{"retry.schedule: not used by policy three_times"}},
		{"JitterWithSchedule", RetryConfig{Policy: PolicyThreeTimes, Jitter: retryFloat(0.1)}, []string{"retry.jitter: not used by policy three_times"}},
		{"BaseWithSchedule", RetryConfig{Schedule: []config.Duration{d("1s")}, Base: d("1s")}, []string{"retry.base: not used by policy schedule"}},
		{"MaxAttemptsWithSchedule", RetryConfig{Policy: PolicyThreeTimes, MaxAttempts: 2}, []string{"retry.max_attempts: not used by policy three_times"}},
		{"Several", RetryConfig{Factor: 0.5, Jitter: retryFloat(2), RetryOn: "x"}, []string{"retry.factor:", "retry.jitter:", "retry.retry_on:"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := ParsePolicy(tt.cfg)
			if err == nil {
				t.Fatalf("got no error, want %q", tt.want)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("got error %q, want it to contain %q", err, w)
				}
			}
			if err2 := tt.cfg.Validate(); err2 == nil || err2.Error() != err.Error() {
				t.Errorf("got Validate() = %v, want %v", err2, err)
			}
		})
	}
}

func TestRetryConfigYAML(t *testing.T) {
	t.Parallel()
	src := `
policy: schedule
schedule: ["1s", "5m"]
max_age: 1h
retry_on: any_non_2xx
`
	var c RetryConfig
	dec := yaml.NewDecoder(strings.NewReader(src))
	dec.KnownFields(true)
	if err := dec.Decode(&c); err != nil {
		t.Fatal(err)
	}
	if c.Policy != PolicySchedule || len(c.Schedule) != 2 || c.Schedule[1].D() != 5*time.Minute || c.MaxAge.D() != time.Hour || c.RetryOn != RetryOnAnyNon2xx {
		t.Fatalf("got %+v", c)
	}
	var e RetryConfig
	if err := yaml.Unmarshal([]byte("base: 30\n"), &e); err == nil {
		t.Error("got no error for a bare number, want one")
	}
	var j RetryConfig
	if err := yaml.Unmarshal([]byte("jitter: 0\nfactor: 3\n"), &j); err != nil || j.Jitter == nil || *j.Jitter != 0 || j.Factor != 3 {
		t.Errorf("got %+v, %v; want explicit jitter 0 and factor 3", j, err)
	}
}

func TestRetryConfigJSON(t *testing.T) {
	t.Parallel()
	var c RetryConfig
	in := `{"policy":"exponential","base":"2s","factor":3,"jitter":0,"cap":"1h","max_attempts":10,"max_age":"24h","retry_on":"any_non_2xx"}`
	if err := json.Unmarshal([]byte(in), &c); err != nil {
		t.Fatal(err)
	}
	if c.Base.D() != 2*time.Second || c.Factor != 3 || c.Jitter == nil || *c.Jitter != 0 || c.Cap.D() != time.Hour ||
		c.MaxAttempts != 10 || c.MaxAge.D() != 24*time.Hour || c.RetryOn != RetryOnAnyNon2xx {
		t.Fatalf("got %+v", c)
	}
	out, err := json.Marshal(c)
	if err != nil {
		t.Fatal(err)
	}
	want := `{"policy":"exponential","base":"2s","factor":3,"jitter":0,"cap":"1h0m0s","max_attempts":10,"max_age":"24h0m0s","retry_on":"any_non_2xx"}`
	if string(out) != want {
		t.Errorf("got %s, want %s", out, want)
	}
	var s RetryConfig
	if err := json.Unmarshal([]byte(`{"schedule":["1s","5m"]}`), &s); err != nil || len(s.Schedule) != 2 || s.Schedule[1].D() != 5*time.Minute {
		t.Errorf("got %+v, %v", s, err)
	}
	if out, _ := json.Marshal(s); string(out) != `{"schedule":["1s","5m0s"]}` {
		t.Errorf("got %s", out)
	}

	bad := []struct{ in, want string }{
		{`{"base":30}`, `retry.base: want a duration string`},
		{`{"cap":"soon"}`, `retry.cap: invalid duration "soon"`},
		{`{"schedule":["1s","x"]}`, `retry.schedule[1]: invalid duration "x"`},
		{`{"max_age":true}`, `retry.max_age: want a duration string`},
		{`{"retries":3}`, `unknown field "retries"`},
	}
	for _, b := range bad {
		var c RetryConfig
		err := json.Unmarshal([]byte(b.in), &c)
		if err == nil || !strings.Contains(err.Error(), b.want) {
			t.Errorf("%s: got %v, want an error containing %q", b.in, err, b.want)
		}
	}
}
