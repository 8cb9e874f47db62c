// Package jsonlimit bounds the nesting of JSON that hookd reads from
// outside (request bodies, admin API bodies, the answers of token, JWKS
// and introspection endpoints) before any parser touches it. Some parsers
// recurse once per level of nesting: a body of a few megabytes of '['
// would otherwise grow a goroutine's stack to gigabytes, or overflow it,
// which no recover can catch.
//
// The scanner is iterative and allocates nothing; it does not validate
// the document, it only counts the brackets and braces outside strings.
package jsonlimit

import (
	"bytes"
	"fmt"
)

// DefaultDepth is the nesting hookd accepts when none is configured
// (server.max_json_depth). Real webhook payloads rarely nest beyond 20
// levels.
const DefaultDepth = 128

// MaxDepth is the largest depth that may be configured: encoding/json
// refuses documents nested deeper than this in any case.
const MaxDepth = 10000

// DepthError reports a document nested deeper than Limit.
type DepthError struct {
	// Limit is the deepest nesting accepted.
	Limit int
}

func (e *DepthError) Error() string {
	return fmt.Sprintf("JSON nested deeper than %d levels", e.Limit)
}

// Check returns a *DepthError when b nests objects and arrays deeper than
// limit; limit <= 0 means DefaultDepth. It stops at the first level beyond
// the limit. Brackets inside strings do not count; a backslash in a
// string escapes the next byte. Check does not otherwise validate b, and
// an unmatched closing bracket never lowers the count below zero, so the
// count is never below the nesting any parser reading b from its start
// can reach.
func Check(b []byte, limit int) error {
	if limit <= 0 {
		limit = DefaultDepth
	}
	if scan(b, limit) > limit {
		return &DepthError{Limit: limit}
	}
	return nil
}

// Depth returns the deepest nesting of objects and arrays in b, counted as
// Check counts it: 0 for a scalar, 1 for [] or {}.
func Depth(b []byte) int { return scan(b, -1) }

// scan returns the deepest nesting of b, stopping as soon as it exceeds
// stop (never when stop < 0).
func scan(b []byte, stop int) int {
	depth, deepest := 0, 0
	for i := 0; i < len(b); i++ {
		switch b[i] {
		case '"':
			// Skip the string: up to the next quote not escaped, that is
			// not preceded by an odd run of backslashes (a backslash
			// escapes the next byte, so they pair off). IndexByte finds
			// quotes many bytes at a time; the string is most of a
			// typical body.
			for {
				j := bytes.IndexByte(b[i+1:], '"')
				if j < 0 {
					return deepest // unterminated: the rest is string
				}
				i += 1 + j
				run := 0
				for k := i - 1; b[k] == '\\'; k-- {
					run++ // stops at the opening quote at the latest
				}
				if run%2 == 0 {
					break
				}
				// An escaped quote: strings full of them would cost an
				// IndexByte call each, so the rest of this one is read a
				// byte at a time.
				for i++; i < len(b); i++ {
					if c := b[i]; c == '\\' {
						i++
					} else if c == '"' {
						break
					}
				}
				if i >= len(b) {
					return deepest
				}
				break
			}
		case '[', '{':
			depth++
			if depth > deepest {
				deepest = depth
				if stop >= 0 && deepest > stop {
					return deepest
				}
			}
		case ']', '}':
			if depth > 0 {
				depth--
			}
		}
	}
	return deepest
}
