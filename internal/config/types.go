package config

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// Duration is a time.Duration written as a Go duration string ("30s",
// "72h"). A bare number is refused: say what unit you mean.
type Duration time.Duration

// UnmarshalYAML parses a duration string.
func (d *Duration) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind != yaml.ScalarNode {
		return fmt.Errorf("line %d: want a duration such as \"30s\"", n.Line)
	}
	v, err := time.ParseDuration(strings.TrimSpace(n.Value))
	if err != nil {
		return fmt.Errorf("line %d: invalid duration %q (want a value such as \"30s\", \"5m\" or \"72h\")", n.Line, n.Value)
	}
	*d = Duration(v)
	return nil
}

// MarshalYAML writes the duration as a string.
func (d Duration) MarshalYAML() (any, error) { return time.Duration(d).String(), nil }

// D returns the time.Duration.
func (d Duration) D() time.Duration { return time.Duration(d) }

// Size is a number of bytes, written as a number or with a unit: "512KiB",
// "1MiB", "10MB", "1GiB".
type Size int64

var sizeUnits = []struct {
	suffix string
	mult   int64
}{
	{"KiB", 1 << 10}, {"MiB", 1 << 20}, {"GiB", 1 << 30},
	{"KB", 1000}, {"MB", 1000 * 1000}, {"GB", 1000 * 1000 * 1000},
	{"B", 1},
}

// ParseSize parses a size such as "1MiB" or "1048576".
func ParseSize(in string) (Size, error) {
	s := strings.TrimSpace(in)
	mult := int64(1)
	for _, u := range sizeUnits {
		if strings.HasSuffix(s, u.suffix) {
			s, mult = strings.TrimSpace(strings.TrimSuffix(s, u.suffix)), u.mult
			break
		}
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n < 0 || n > (1<<62)/mult {
		return 0, fmt.Errorf("invalid size %q (want bytes, or a number with KiB, MiB, GiB, KB, MB or GB)", in)
	}
	return Size(n * mult), nil
}

// text writes the size in the largest binary unit that divides it
// ("64MiB"), or in bytes.
func (z Size) text() string {
	for _, u := range []struct {
		suffix string
		mult   int64
	}{{"GiB", 1 << 30}, {"MiB", 1 << 20}, {"KiB", 1 << 10}} {
		if z != 0 && int64(z)%u.mult == 0 {
			return strconv.FormatInt(int64(z)/u.mult, 10) + u.suffix
		}
	}
	return strconv.FormatInt(int64(z), 10) + " bytes"
}

// UnmarshalYAML parses a size.
func (z *Size) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind != yaml.ScalarNode {
		return fmt.Errorf("line %d: want a size such as \"1MiB\"", n.Line)
	}
	v, err := ParseSize(n.Value)
	if err != nil {
		return fmt.Errorf("line %d: %w", n.Line, err)
	}
	*z = v
	return nil
}

// Rate is a number of events per interval, written "100/s", "6000/m" or
// "100000/h".
type Rate struct {
	N   int
	Per time.Duration
}

// UnmarshalYAML parses a rate.
func (r *Rate) UnmarshalYAML(n *yaml.Node) error {
	v, err := ParseRate(n.Value)
	if err != nil {
		return fmt.Errorf("line %d: %w", n.Line, err)
	}
	*r = v
	return nil
}

// ParseRate parses "N/s", "N/m" or "N/h".
func ParseRate(s string) (Rate, error) {
	num, unit, ok := strings.Cut(strings.TrimSpace(s), "/")
	n, err := strconv.Atoi(strings.TrimSpace(num))
	if !ok || err != nil || n <= 0 {
		return Rate{}, fmt.Errorf("invalid rate %q (want N/s, N/m or N/h)", s)
	}
	per := map[string]time.Duration{"s": time.Second, "m": time.Minute, "h": time.Hour}[strings.TrimSpace(unit)]
	if per == 0 {
		return Rate{}, fmt.Errorf("invalid rate %q (want N/s, N/m or N/h)", s)
	}
	return Rate{N: n, Per: per}, nil
}

// PerSecond returns the rate in events per second.
func (r Rate) PerSecond() float64 {
	if r.Per == 0 {
		return 0
	}
	return float64(r.N) / r.Per.Seconds()
}

// MaxValidity bounds a Validity.
const MaxValidity = 8760 * time.Hour

// Validity is a token lifetime written as a Go duration ("1h", "90m",
// "3s") or as a bare number of hours (seed 000: "the token validity in
// number of hours"), as both hookd's own token issuer and its OAuth2
// client take it.
type Validity struct {
	d   time.Duration
	set bool
}

// ValidityHours returns a Validity of h hours.
func ValidityHours(h float64) Validity {
	return Validity{d: time.Duration(h * float64(time.Hour)), set: true}
}

// D returns the duration, or 0 when unset.
func (v Validity) D() time.Duration { return v.d }

// IsSet reports whether a validity was given.
func (v Validity) IsSet() bool { return v.set }

// UnmarshalYAML parses "90m", "1h", or a number of hours such as 1 or 1.5.
func (v *Validity) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind != yaml.ScalarNode {
		return fmt.Errorf("line %d: validity: want a duration such as \"1h\" or a number of hours", n.Line)
	}
	s := strings.TrimSpace(n.Value)
	if h, err := strconv.ParseFloat(s, 64); err == nil {
		if math.IsNaN(h) || h <= 0 || h > MaxValidity.Hours() {
			return fmt.Errorf("line %d: validity: %s hours is out of range (more than 0, at most %.0f)", n.Line, s, MaxValidity.Hours())
		}
		*v = ValidityHours(h)
		return nil
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		return fmt.Errorf("line %d: validity: invalid value %q (want a duration such as \"1h\" or \"90m\", or a number of hours)", n.Line, n.Value)
	}
	*v = Validity{d: d, set: true}
	return nil
}

// MarshalYAML writes the validity as a duration string.
func (v Validity) MarshalYAML() (any, error) {
	if !v.set {
		return nil, nil
	}
	return v.d.String(), nil
}
