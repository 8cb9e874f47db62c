package secret

import (
	"fmt"
	"io"
	"log/slog"
)

// Redacted is what Mask and Value show in place of a secret.
const Redacted = "[redacted]"

// Mask returns Redacted for a non-empty secret and "" for an empty one, so
// an API answer shows whether a secret is set but never its content.
func Mask(s string) string {
	if s == "" {
		return ""
	}
	return Redacted
}

// Value holds a secret string that renders as Redacted through fmt (every
// verb, including %#v), encoding/json, encoding.TextMarshaler users and
// log/slog. Only Reveal returns the content. The content sits behind a
// pointer so that even a Value inside a struct printed by reflection (an
// unexported field, which fmt cannot call methods on) shows an address,
// not the secret. The zero Value is empty.
type Value struct {
	s *string
}

// NewValue wraps s.
func NewValue(s string) Value { return Value{s: &s} }

// Reveal returns the secret. Call it only where the secret is used.
func (v Value) Reveal() string {
	if v.s == nil {
		return ""
	}
	return *v.s
}

// IsZero reports whether the secret is empty.
func (v Value) IsZero() bool { return v.Reveal() == "" }

// String returns Redacted.
func (v Value) String() string { return Redacted }

// GoString returns Redacted.
func (v Value) GoString() string { return Redacted }

// Format writes Redacted for every verb, so %x, %q and width flags cannot
// reach the content either.
func (v Value) Format(f fmt.State, _ rune) { _, _ = io.WriteString(f, Redacted) }

// MarshalJSON returns the JSON string "[redacted]".
func (v Value) MarshalJSON() ([]byte, error) { return []byte(`"` + Redacted + `"`), nil }

// MarshalText returns Redacted (used by YAML, TOML and similar encoders).
func (v Value) MarshalText() ([]byte, error) { return []byte(Redacted), nil }

// LogValue returns Redacted for log/slog.
func (v Value) LogValue() slog.Value { return slog.StringValue(Redacted) }
