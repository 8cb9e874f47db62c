package route

import (
	"errors"
	"fmt"
	"strings"
)

// MaxPatternLen bounds the length of an event-type pattern in bytes.
const MaxPatternLen = 1024

type patternKind uint8

const (
	kindInvalid patternKind = iota // the zero Pattern: matches nothing
	kindAll                        // "*"
	kindExact                      // no wildcard
	kindWild                       // "*" segments and/or a trailing ".*"
)

// Pattern is a compiled event-type pattern (SPEC §3):
//
//   - "*" alone matches every type, the empty type included;
//   - a trailing ".*" matches one or more further dot-separated segments:
//     "event.claim.*" matches "event.claim.created" and
//     "event.claim.created.v1", not "event.claim";
//   - "*" anywhere else matches exactly one segment: "event.*.created"
//     matches "event.claim.created";
//   - anything else matches that exact type (case-sensitive).
//
// A segment matched by a wildcard is never empty: "event.*" does not match
// "event." nor "event..x".
//
// The zero Pattern matches nothing. A Pattern decodes from and encodes to
// its text form in YAML and JSON.
type Pattern struct {
	raw  string
	kind patternKind
	segs []string // fixed segments before the tail; "*" is one wildcard segment
	tail bool     // ends in ".*": one or more further segments
}

// CompilePattern parses an event-type pattern. It refuses an empty pattern,
// an empty segment ("a..b", ".a", "a."), "**" and a "*" mixed with other
// characters in one segment ("claim*").
func CompilePattern(s string) (Pattern, error) {
	if s == "" {
		return Pattern{}, errors.New("empty event-type pattern")
	}
	if len(s) > MaxPatternLen {
		return Pattern{}, fmt.Errorf("event-type pattern longer than %d bytes", MaxPatternLen)
	}
	if s == "*" {
		return Pattern{raw: s, kind: kindAll}, nil
	}
	segs := strings.Split(s, ".")
	wild := false
	for i, seg := range segs {
		switch {
		case seg == "":
			return Pattern{}, fmt.Errorf("invalid event-type pattern %q: empty segment %d", s, i+1)
		case seg == "*":
			wild = true
		case strings.Contains(seg, "**"):
			return Pattern{}, fmt.Errorf("invalid event-type pattern %q: \"**\" is not supported (a trailing \".*\" already matches one or more segments)", s)
		case strings.Contains(seg, "*"):
			return Pattern{}, fmt.Errorf("invalid event-type pattern %q: \"*\" must be a whole segment, got %q", s, seg)
		}
	}
	if !wild {
		return Pattern{raw: s, kind: kindExact}, nil
	}
	p := Pattern{raw: s, kind: kindWild, segs: segs}
	if segs[len(segs)-1] == "*" {
		p.segs, p.tail = segs[:len(segs)-1], true
	}
	return p, nil
}

// MustCompilePattern is CompilePattern for patterns known to be valid; it
// panics on an error.
func MustCompilePattern(s string) Pattern {
	p, err := CompilePattern(s)
	if err != nil {
		panic(err)
	}
	return p
}

// String returns the pattern as written.
func (p Pattern) String() string { return p.raw }

// IsZero reports whether p is the zero Pattern, which matches nothing.
func (p Pattern) IsZero() bool { return p.kind == kindInvalid }

// Match reports whether the event type typ matches the pattern.
func (p Pattern) Match(typ string) bool {
	switch p.kind {
	case kindAll:
		return true
	case kindExact:
		return typ == p.raw
	case kindWild:
		return p.matchWild(typ)
	}
	return false
}

func (p Pattern) matchWild(typ string) bool {
	rest := typ
	for i, seg := range p.segs {
		var cur string
		j := strings.IndexByte(rest, '.')
		if j < 0 {
			cur, rest = rest, ""
			if i != len(p.segs)-1 || p.tail {
				return false // typ has too few segments
			}
		} else {
			cur, rest = rest[:j], rest[j+1:]
			if i == len(p.segs)-1 && !p.tail {
				return false // typ has too many segments
			}
		}
		if seg == "*" {
			if cur == "" {
				return false
			}
		} else if cur != seg {
			return false
		}
	}
	if !p.tail {
		return true
	}
	// The tail: one or more non-empty segments.
	if rest == "" {
		return false
	}
	for {
		j := strings.IndexByte(rest, '.')
		if j < 0 {
			return true // rest is non-empty here
		}
		if j == 0 {
			return false
		}
		rest = rest[j+1:]
		if rest == "" {
			return false
		}
	}
}

// literalPrefix returns the pattern's first segment when it is literal, for
// indexing. ok is false for "*" and for a pattern starting with a wildcard.
func (p Pattern) literalPrefix() (string, bool) {
	switch p.kind {
	case kindExact:
		first, _, _ := strings.Cut(p.raw, ".")
		return first, true
	case kindWild:
		if len(p.segs) > 0 && p.segs[0] != "*" {
			return p.segs[0], true
		}
	}
	return "", false
}

// MarshalText returns the pattern as written.
func (p Pattern) MarshalText() ([]byte, error) { return []byte(p.raw), nil }

// UnmarshalText compiles a pattern; it lets a Pattern decode from YAML and
// JSON.
func (p *Pattern) UnmarshalText(b []byte) error {
	q, err := CompilePattern(string(b))
	if err != nil {
		return err
	}
	*p = q
	return nil
}

// Patterns is a list of event-type patterns; a type matches the list when
// it matches any of them. An empty list matches nothing (but see
// Rule.Events, where an empty list means every type).
type Patterns []Pattern

// CompilePatterns compiles each pattern in ss.
func CompilePatterns(ss ...string) (Patterns, error) {
	ps := make(Patterns, 0, len(ss))
	for _, s := range ss {
		p, err := CompilePattern(s)
		if err != nil {
			return nil, err
		}
		ps = append(ps, p)
	}
	return ps, nil
}

// Match reports whether typ matches any of the patterns.
func (ps Patterns) Match(typ string) bool {
	for _, p := range ps {
		if p.Match(typ) {
			return true
		}
	}
	return false
}

// Strings returns the patterns as written.
func (ps Patterns) Strings() []string {
	out := make([]string, len(ps))
	for i, p := range ps {
		out[i] = p.raw
	}
	return out
}
