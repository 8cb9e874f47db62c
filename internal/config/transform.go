package config

import (
	"errors"
	"strings"
	"time"

	"hookd/internal/transform"
)

// ValidTransform checks a transform: key: "" (none) or JavaScript that
// compiles and declares a function transform(event). A syntax error names
// its line:column.
func ValidTransform(src string) error {
	if strings.TrimSpace(src) == "" {
		return nil
	}
	_, err := transform.Compile(src, transform.DefaultTimeout)
	if err != nil {
		return errors.New(strings.TrimPrefix(err.Error(), "transform: "))
	}
	return nil
}

// TransformTimeoutOr is transform_timeout, or its default when unset.
func (c *Config) TransformTimeoutOr() time.Duration {
	if d := c.TransformTimeout.D(); d > 0 {
		return d
	}
	return transform.DefaultTimeout
}

func (c *Config) validateTransformTimeout(bad func(field, format string, args ...any)) {
	if d := c.TransformTimeout.D(); d < 0 || d > transform.MaxTimeout {
		bad("transform_timeout", "must be between 1ms and %s, got %s", transform.MaxTimeout, d)
	}
}
