package engine

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"strings"
	"time"

	"hookd/internal/config"
)

// Retry policy names accepted in RetryConfig.Policy.
const (
	// PolicyExponential is base × factor^(n−1), capped, with jitter.
	PolicyExponential = "exponential"
	// PolicySchedule is an explicit list of delays, one per retry.
	PolicySchedule = "schedule"
	// PolicyThreeTimes is seed 003's rule: retries after 30s, 5m and 30m.
	PolicyThreeTimes = "three_times"
	// PolicyWeek is seed 002's rule: exponential from 1m, ×2, cap 12h,
	// for 7 days.
	PolicyWeek = "week"
	// PolicyThreeWeeks is seed 001's rule: exponential from 1m, ×2, cap
	// 36h, 25 retries (about 22 days).
	PolicyThreeWeeks = "three_weeks"
)

// RetryOnAnyNon2xx is the RetryConfig.RetryOn value that makes every
// non-2xx answer retriable (seed 001's rule).
const RetryOnAnyNon2xx = "any_non_2xx"

// Reasons a delivery ends in failed, as Decision.Reason.
const (
	// ReasonAttemptsExhausted: max_attempts reached, or the schedule ran out.
	ReasonAttemptsExhausted = "attempts exhausted"
	// ReasonMaxAgeExceeded: the next attempt would fall after first
	// attempt + max_age.
	ReasonMaxAgeExceeded = "max age exceeded"
	// ReasonPermanent: the destination marked the outcome final
	// (destination.Permanent, e.g. HTTP 400).
	ReasonPermanent = "permanent error"
	// ReasonGone: the destination is gone (destination.Gone, HTTP 410);
	// it is disabled as well.
	ReasonGone = "destination gone"
	// ReasonHeadTimeout: the delivery failed retriably at the head of an
	// ordered lane (ordering fifo or key) for longer than the
	// destination's head_timeout, and was moved aside so that the rest
	// of the lane flows.
	ReasonHeadTimeout = "head timeout exceeded"
)

// RetryConfig is the `retry:` block of a destination or subscription.
// Every field is optional: the zero value is the default policy
// (exponential from 5s, ×2, cap 6h, ±10% jitter, for 72h). A field that is
// set replaces the chosen policy's (or preset's) value; a field left out,
// or zero, keeps it. Durations are strings ("30s") in YAML and JSON.
type RetryConfig struct {
	// Policy is exponential, schedule, three_times, week or three_weeks.
	// Empty means exponential, or schedule when Schedule is given.
	Policy string `yaml:"policy,omitempty" json:"policy,omitempty"`
	// Base is the delay before the first retry (exponential). Default 5s.
	Base config.Duration `yaml:"base,omitempty" json:"base,omitempty"`
	// Factor multiplies the delay after each retry (exponential); ≥ 1.
	// Default 2.
	Factor float64 `yaml:"factor,omitempty" json:"factor,omitempty"`
	// Jitter spreads each delay uniformly by ± this fraction (exponential),
	// in [0, 1). Default 0.1 for exponential, 0 for the week and
	// three_weeks presets. A pointer so that an explicit 0 is kept.
	Jitter *float64 `yaml:"jitter,omitempty" json:"jitter,omitempty"`
	// Cap is the longest delay between two attempts (exponential), and the
	// most a Retry-After can ask for. Default 6h.
	Cap config.Duration `yaml:"cap,omitempty" json:"cap,omitempty"`
	// MaxAttempts bounds the attempts, the first included (exponential);
	// 0 keeps the policy's value (unbounded for exponential).
	MaxAttempts int `yaml:"max_attempts,omitempty" json:"max_attempts,omitempty"`
	// MaxAge bounds the time from the first attempt to the last one. The
	// last attempt is made at first attempt + max_age at the latest. 0
	// keeps the policy's value (72h for exponential, 7 days for week, none
	// for three_weeks and the schedules).
	MaxAge config.Duration `yaml:"max_age,omitempty" json:"max_age,omitempty"`
	// Schedule is the delay before each retry (policy schedule): N entries
	// mean at most N+1 attempts. No jitter.
	Schedule []config.Duration `yaml:"schedule,omitempty" json:"schedule,omitempty"`
	// RetryOn is "" (SPEC §3 classes: 408, 425, 429, 3xx, 5xx retried,
	// other 4xx final, 410 disables) or any_non_2xx (every non-2xx answer is
	// retried, 410 included, and nothing is disabled).
	RetryOn string `yaml:"retry_on,omitempty" json:"retry_on,omitempty"`
}

// Validate reports the first problems of c, each naming its field.
func (c RetryConfig) Validate() error {
	_, err := ParsePolicy(c)
	return err
}

// retryConfigJSON mirrors RetryConfig with durations left raw, so that JSON
// takes duration strings and errors can name the field.
type retryConfigJSON struct {
	Policy      string            `json:"policy,omitempty"`
	Base        json.RawMessage   `json:"base,omitempty"`
	Factor      float64           `json:"factor,omitempty"`
	Jitter      *float64          `json:"jitter,omitempty"`
	Cap         json.RawMessage   `json:"cap,omitempty"`
	MaxAttempts int               `json:"max_attempts,omitempty"`
	MaxAge      json.RawMessage   `json:"max_age,omitempty"`
	Schedule    []json.RawMessage `json:"schedule,omitempty"`
	RetryOn     string            `json:"retry_on,omitempty"`
}

// UnmarshalJSON decodes a retry block strictly (unknown keys are errors),
// with durations as strings such as "30s".
func (c *RetryConfig) UnmarshalJSON(b []byte) error {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	var j retryConfigJSON
	if err := dec.Decode(&j); err != nil {
		return fmt.Errorf("retry: %w", err)
	}
	out := RetryConfig{
		Policy:      j.Policy,
		Factor:      j.Factor,
		Jitter:      j.Jitter,
		MaxAttempts: j.MaxAttempts,
		RetryOn:     j.RetryOn,
	}
	var err error
	if out.Base, err = retryJSONDuration("retry.base", j.Base); err != nil {
		return err
	}
	if out.Cap, err = retryJSONDuration("retry.cap", j.Cap); err != nil {
		return err
	}
	if out.MaxAge, err = retryJSONDuration("retry.max_age", j.MaxAge); err != nil {
		return err
	}
	for i, raw := range j.Schedule {
		d, err := retryJSONDuration(fmt.Sprintf("retry.schedule[%d]", i), raw)
		if err != nil {
			return err
		}
		out.Schedule = append(out.Schedule, d)
	}
	*c = out
	return nil
}

// MarshalJSON writes durations as strings.
func (c RetryConfig) MarshalJSON() ([]byte, error) {
	str := func(d config.Duration) json.RawMessage {
		if d == 0 {
			return nil
		}
		b, _ := json.Marshal(d.D().String())
		return b
	}
	j := retryConfigJSON{
		Policy:      c.Policy,
		Base:        str(c.Base),
		Factor:      c.Factor,
		Jitter:      c.Jitter,
		Cap:         str(c.Cap),
		MaxAttempts: c.MaxAttempts,
		MaxAge:      str(c.MaxAge),
		RetryOn:     c.RetryOn,
	}
	for _, d := range c.Schedule {
		b, _ := json.Marshal(d.D().String())
		j.Schedule = append(j.Schedule, b)
	}
	return json.Marshal(j)
}

func retryJSONDuration(field string, raw json.RawMessage) (config.Duration, error) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || string(raw) == "null" {
		return 0, nil
	}
	var s string
	if err := json.Unmarshal(raw, &s); err != nil {
		return 0, fmt.Errorf("%s: want a duration string such as \"30s\", got %s", field, raw)
	}
	d, err := time.ParseDuration(strings.TrimSpace(s))
	if err != nil {
		return 0, fmt.Errorf("%s: invalid duration %q (want a value such as \"30s\", \"5m\" or \"72h\")", field, s)
	}
	return config.Duration(d), nil
}

type policyKind int

const (
	kindExponential policyKind = iota + 1
	kindSchedule
)

// Policy says when a failed delivery is attempted again, and when it gives
// up. Build one with ParsePolicy; the zero value behaves as DefaultPolicy.
// A Policy is immutable and safe for concurrent use as long as its jitter
// source is.
type Policy struct {
	name        string
	kind        policyKind
	base        time.Duration
	factor      float64
	jitter      float64
	cap         time.Duration // also the bound on Retry-After
	maxAttempts int           // attempts in all, first included; 0 = unbounded
	maxAge      time.Duration // 0 = unbounded
	schedule    []time.Duration
	anyNon2xx   bool
	rand        func() float64 // nil = math/rand/v2
}

// retryPresets holds the presets' values, as configs, so that overrides
// go through the same code as a hand-written policy.
var retryPresets = map[string]struct {
	kind policyKind
	cfg  RetryConfig
}{
	PolicyExponential: {kindExponential, RetryConfig{
		Base: config.Duration(5 * time.Second), Factor: 2, Jitter: retryFloat(0.1),
		Cap: config.Duration(6 * time.Hour), MaxAge: config.Duration(72 * time.Hour),
	}},
	PolicyWeek: {kindExponential, RetryConfig{
		Base: config.Duration(time.Minute), Factor: 2, Jitter: retryFloat(0),
		Cap: config.Duration(12 * time.Hour), MaxAge: config.Duration(7 * 24 * time.Hour),
	}},
	PolicyThreeWeeks: {kindExponential, RetryConfig{
		Base: config.Duration(time.Minute), Factor: 2, Jitter: retryFloat(0),
		Cap: config.Duration(36 * time.Hour), MaxAttempts: 26,
	}},
	PolicyThreeTimes: {kindSchedule, RetryConfig{
		Schedule: []config.Duration{
			config.Duration(30 * time.Second), config.Duration(5 * time.Minute), config.Duration(30 * time.Minute),
		},
	}},
	PolicySchedule: {kindSchedule, RetryConfig{}},
}

func retryFloat(f float64) *float64 { return &f }

// DefaultPolicy is the policy of an empty retry block: exponential from 5s,
// ×2, cap 6h, ±10% jitter, until 72h after the first attempt.
func DefaultPolicy() Policy { return retryDefault }

var retryDefault = func() Policy {
	p, err := ParsePolicy(RetryConfig{})
	if err != nil {
		panic("engine: default retry policy: " + err.Error())
	}
	return p
}()

// ParsePolicy validates c and builds its Policy. The error names every bad
// field (`retry.factor: must be ≥ 1`), joined with errors.Join.
func ParsePolicy(c RetryConfig) (Policy, error) {
	var errs []error
	bad := func(field, format string, args ...any) {
		errs = append(errs, fmt.Errorf("retry.%s: "+format, append([]any{field}, args...)...))
	}

	name := strings.TrimSpace(c.Policy)
	if name == "" {
		name = PolicyExponential
		if len(c.Schedule) > 0 {
			name = PolicySchedule
		}
	}
	preset, ok := retryPresets[name]
	if !ok {
		bad("policy", "unknown policy %q (want exponential, schedule, three_times, week or three_weeks)", c.Policy)
		return Policy{}, errors.Join(errs...)
	}

	p := Policy{name: name, kind: preset.kind}
	switch c.RetryOn {
	case "":
	case RetryOnAnyNon2xx:
		p.anyNon2xx = true
	default:
		bad("retry_on", "unknown value %q (want %s, or nothing for the default classes)", c.RetryOn, RetryOnAnyNon2xx)
	}
	if c.MaxAge < 0 {
		bad("max_age", "must be positive, got %s", c.MaxAge.D())
	}
	p.maxAge = pick(c.MaxAge, preset.cfg.MaxAge).D()
	if p.maxAge < 0 {
		p.maxAge = 0
	}

	switch preset.kind {
	case kindSchedule:
		notUsed := func(field string, set bool) {
			if set {
				bad(field, "not used by policy %s (an explicit schedule has no backoff and no jitter)", name)
			}
		}
		notUsed("base", c.Base != 0)
		notUsed("factor", c.Factor != 0)
		notUsed("jitter", c.Jitter != nil)
		notUsed("cap", c.Cap != 0)
		if c.MaxAttempts != 0 {
			bad("max_attempts", "not used by policy %s (a schedule of N entries allows N+1 attempts)", name)
		}
		sched := preset.cfg.Schedule
		if name == PolicySchedule {
			sched = c.Schedule
			if len(sched) == 0 {
				bad("schedule", "required with policy schedule (a list of delays such as [\"1s\", \"5m\"])")
			}
		} else if len(c.Schedule) > 0 {
			bad("schedule", "not used by policy %s (a fixed schedule; use policy: schedule)", name)
		}
		for i, d := range sched {
			if d <= 0 {
				bad(fmt.Sprintf("schedule[%d]", i), "must be positive, got %s", d.D())
			}
			p.schedule = append(p.schedule, d.D())
			p.cap = max(p.cap, d.D())
		}

	case kindExponential:
		if len(c.Schedule) > 0 {
			bad("schedule", "not used by policy %s (set policy: schedule)", name)
		}
		if c.Base < 0 {
			bad("base", "must be positive, got %s", c.Base.D())
		}
		if c.Cap < 0 {
			bad("cap", "must be positive, got %s", c.Cap.D())
		}
		if c.Factor != 0 && !(c.Factor >= 1 && !math.IsInf(c.Factor, 0)) {
			bad("factor", "must be ≥ 1, got %v", c.Factor)
		}
		if c.Jitter != nil && !(*c.Jitter >= 0 && *c.Jitter < 1) {
			bad("jitter", "must be in [0, 1) (0.1 = ±10%%), got %v", *c.Jitter)
		}
		if c.MaxAttempts < 0 {
			bad("max_attempts", "must be ≥ 1, got %d", c.MaxAttempts)
		}
		p.base = pick(c.Base, preset.cfg.Base).D()
		p.cap = pick(c.Cap, preset.cfg.Cap).D()
		p.factor = pick(c.Factor, preset.cfg.Factor)
		p.jitter = *preset.cfg.Jitter
		if c.Jitter != nil {
			p.jitter = *c.Jitter
		}
		p.maxAttempts = pick(c.MaxAttempts, preset.cfg.MaxAttempts)
		if p.base > 0 && p.cap > 0 && p.cap < p.base {
			bad("cap", "must be ≥ base (%s), got %s", p.base, p.cap)
		}
	}
	if len(errs) > 0 {
		return Policy{}, errors.Join(errs...)
	}
	return p, nil
}

// pick returns v unless it is zero, else def.
func pick[T comparable](v, def T) T {
	var zero T
	if v != zero {
		return v
	}
	return def
}

// WithJitterSource returns a copy of p drawing its jitter from r, which
// returns values in [0, 1) (rand.Float64 of a seeded *rand.Rand in tests).
// r must be safe for concurrent use if the policy is shared.
func (p Policy) WithJitterSource(r func() float64) Policy {
	p.rand = r
	return p
}

// Name is the policy's name: exponential, schedule or a preset's name.
func (p Policy) Name() string {
	if p.kind == 0 {
		return retryDefault.name
	}
	return p.name
}

// RetryOnAnyNon2xx reports whether every non-2xx answer is retriable
// (retry_on: any_non_2xx); pass it to ClassifyHTTP.
func (p Policy) RetryOnAnyNon2xx() bool { return p.anyNon2xx }

// Next returns when the attempt after failed attempt number attempt
// (1-based) is due, or ok=false when the policy is exhausted and the
// delivery goes to failed. firstAttemptAt is when attempt 1 started; now is
// when the failed attempt ended: the delay counts from now. When
// hasRetryAfter, the next attempt is no earlier than now+retryAfter, with
// retryAfter bounded by the policy's cap (the largest entry for a schedule).
// With a max_age, a backoff that would land after firstAttemptAt+max_age is
// pulled back to that instant (one last attempt at the end of the window);
// a Retry-After that does is exhausted.
func (p Policy) Next(attempt int, firstAttemptAt, now time.Time, retryAfter time.Duration, hasRetryAfter bool) (next time.Time, ok bool) {
	next, reason := p.next(attempt, firstAttemptAt, now, retryAfter, hasRetryAfter)
	return next, reason == ""
}

// next is Next with the reason of an exhausted policy ("" when not).
func (p Policy) next(attempt int, first, now time.Time, retryAfter time.Duration, hasRetryAfter bool) (time.Time, string) {
	if p.kind == 0 {
		p = retryDefault.WithJitterSource(p.rand)
	}
	if attempt < 1 {
		attempt = 1
	}
	if first.IsZero() {
		first = now
	}
	var delay time.Duration
	switch p.kind {
	case kindSchedule:
		if attempt > len(p.schedule) {
			return time.Time{}, ReasonAttemptsExhausted
		}
		delay = p.schedule[attempt-1]
	case kindExponential:
		if p.maxAttempts > 0 && attempt >= p.maxAttempts {
			return time.Time{}, ReasonAttemptsExhausted
		}
		delay = p.backoff(attempt)
	}
	if hasRetryAfter {
		retryAfter = min(max(retryAfter, 0), p.cap)
		delay = max(delay, retryAfter)
	}
	next := now.Add(delay)
	if p.maxAge > 0 {
		deadline := first.Add(p.maxAge)
		if !now.Before(deadline) {
			return time.Time{}, ReasonMaxAgeExceeded
		}
		if next.After(deadline) {
			if hasRetryAfter && now.Add(retryAfter).After(deadline) {
				return time.Time{}, ReasonMaxAgeExceeded
			}
			next = deadline
		}
	}
	return next, ""
}

// backoff is the exponential delay after failed attempt n:
// min(base × factor^(n−1), cap), times a uniform factor in [1−j, 1+j],
// and never above cap.
func (p Policy) backoff(n int) time.Duration {
	d := float64(p.base) * math.Pow(p.factor, float64(n-1))
	if c := float64(p.cap); !(d < c) { // also catches +Inf and NaN
		d = c
	}
	if p.jitter > 0 {
		r := p.draw()
		d *= 1 + p.jitter*(2*r-1)
		d = min(d, float64(p.cap))
	}
	return time.Duration(math.Round(d))
}

// draw returns a jitter draw clamped to [0, 1].
func (p Policy) draw() float64 {
	var r float64
	if p.rand != nil {
		r = p.rand()
	} else {
		r = rand.Float64()
	}
	if !(r >= 0) { // NaN or negative
		return 0
	}
	return min(r, 1)
}
