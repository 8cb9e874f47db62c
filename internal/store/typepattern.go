package store

import (
	"strings"

	"hookd"
)

// TypeMatch is an event-type pattern (SPEC §3, the routing patterns'
// semantics) in the shape a driver turns into SQL:
//
//   - All: "*", every type (the empty type too): no condition;
//   - Exact, when the pattern has no wildcard: type = Exact;
//   - otherwise the type matches Like (the dialect's LIKE or GLOB pattern:
//     each "*" segment a run of characters), holds Dots dots (at least
//     Dots with MoreDots: a trailing ".*"), and has no empty segment (no
//     "..", no leading or trailing "."). With the dot count fixed, each
//     wildcard matches exactly one non-empty segment, as in routing.
type TypeMatch struct {
	All      bool
	Exact    string
	Like     string
	Dots     int
	MoreDots bool
}

// Dialects of TypeMatch's Like.
const (
	DialectGlob = "glob" // SQLite GLOB: "*" any run, case-sensitive
	DialectLike = "like" // PostgreSQL LIKE: "%" any run, "\" escapes
)

// MaxTypePatternLen bounds a type pattern in a filter.
const MaxTypePatternLen = 1024

// ParseTypeMatch parses an event-type pattern for a listing filter. It
// refuses what routing refuses: an empty segment, "**", and a "*" mixed with
// other characters in one segment.
func ParseTypeMatch(s, dialect string) (TypeMatch, error) {
	if s == "" {
		return TypeMatch{}, hookd.Errorf(hookd.EInvalid, "empty event-type pattern")
	}
	if len(s) > MaxTypePatternLen {
		return TypeMatch{}, hookd.Errorf(hookd.EInvalid, "event-type pattern longer than %d bytes", MaxTypePatternLen)
	}
	if s == "*" {
		return TypeMatch{All: true}, nil
	}
	if !strings.Contains(s, "*") {
		return TypeMatch{Exact: s}, nil
	}
	segs := strings.Split(s, ".")
	var b strings.Builder
	for i, seg := range segs {
		switch {
		case seg == "":
			return TypeMatch{}, hookd.Errorf(hookd.EInvalid, "invalid event-type pattern %q: empty segment %d", s, i+1)
		case seg != "*" && strings.Contains(seg, "*"):
			return TypeMatch{}, hookd.Errorf(hookd.EInvalid, "invalid event-type pattern %q: \"*\" must be a whole segment, got %q", s, seg)
		}
		if i > 0 {
			b.WriteByte('.')
		}
		if seg == "*" {
			if dialect == DialectGlob {
				b.WriteByte('*')
			} else {
				b.WriteByte('%')
			}
			continue
		}
		for _, r := range seg {
			switch {
			case dialect == DialectGlob && (r == '?' || r == '['):
				b.WriteString("[" + string(r) + "]")
			case dialect == DialectLike && (r == '%' || r == '_' || r == '\\'):
				b.WriteString(`\` + string(r))
			default:
				b.WriteRune(r)
			}
		}
	}
	m := TypeMatch{Like: b.String(), Dots: len(segs) - 1}
	if segs[len(segs)-1] == "*" {
		// A trailing ".*" is one or more further segments.
		m.MoreDots = true
	}
	return m, nil
}
