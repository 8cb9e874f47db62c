package route

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/tidwall/gjson"
	"gopkg.in/yaml.v3"

	"hookd/internal/jsonlimit"
	"hookd/internal/jsonlimit/jsonlimittest"
)

// refPatternMatch is the pattern rules of SPEC §3 written the plain way,
// with strings.Split, for FuzzPattern to compare against.
func refPatternMatch(pattern, typ string) bool {
	if pattern == "*" {
		return true
	}
	ps, ts := strings.Split(pattern, "."), strings.Split(typ, ".")
	if !strings.Contains(pattern, "*") {
		return pattern == typ
	}
	tail := ps[len(ps)-1] == "*"
	if tail {
		ps = ps[:len(ps)-1]
		if len(ts) <= len(ps) {
			return false
		}
		for _, s := range ts[len(ps):] {
			if s == "" {
				return false
			}
		}
	} else if len(ts) != len(ps) {
		return false
	}
	for i, p := range ps {
		if p == "*" {
			if ts[i] == "" {
				return false
			}
		} else if p != ts[i] {
			return false
		}
	}
	return true
}

func FuzzPattern(f *testing.F) {
	for _, s := range [][2]string{
		{"*", ""},
		{"*", "event.claim.created"},
		{"event.claim.*", "event.claim.created.v1"},
		{"event.claim.*", "event.invoice.paid"},
		{"event.claim.*", "event.claim"},
		{"event.*.created", "event.claim.created"},
		{"*.*", "a..b"},
		{"a.*.c.*", "a.b.c.d.e"},
		{"event.claim*", "event.claims"},
		{"**", "a"},
		{"a..b", "a..b"},
		{".", "."},
		{"event.*", "event."},
	} {
		f.Add(s[0], s[1])
	}
	f.Fuzz(func(t *testing.T, pattern, typ string) {
		if !MustCompilePattern("*").Match(typ) {
			t.Fatalf(`"*".Match(%q): got false, want true`, typ)
		}
		p, err := CompilePattern(pattern)
		if err != nil {
			if !p.IsZero() || p.Match(typ) {
				t.Fatalf("CompilePattern(%q) failed but returned a pattern that matches", pattern)
			}
			return
		}
		if p.String() != pattern {
			t.Fatalf("CompilePattern(%q).String(): got %q", pattern, p.String())
		}
		got := p.Match(typ)
		if want := refPatternMatch(pattern, typ); got != want {
			t.Fatalf("%q.Match(%q): got %v, want %v", pattern, typ, got, want)
		}
		if !strings.Contains(pattern, "*") && !p.Match(pattern) {
			t.Fatalf("exact pattern %q does not match itself", pattern)
		}
		// The index agrees: a pattern with a literal first segment only
		// matches types starting with that segment.
		if first, ok := p.literalPrefix(); ok && got {
			if tf, _, _ := strings.Cut(typ, "."); tf != first {
				t.Fatalf("%q matched %q, whose first segment is not %q", pattern, typ, first)
			}
		}
		var q Pattern
		if err := q.UnmarshalText([]byte(pattern)); err != nil || q.Match(typ) != got {
			t.Fatalf("UnmarshalText(%q): got %v, match %v; want nil, %v", pattern, err, q.Match(typ), got)
		}
	})
}

// fuzzFilters are the fixed filters FuzzFilterEval runs every body
// against: every op, type mismatches, nesting, odd paths.
var fuzzFilters = []Filter{
	f("a", "eq", "x"),
	f("a", "eq", 1000),
	f("a", "eq", json.Number("1e3")),
	f("a", "eq", true),
	f("a", "ne", "x"),
	f("a", "ne", 0),
	f("a", "in", []any{"x", 1, false, "y", "z", "w", "v", "u", "t", "s"}),
	f("a", "gt", 0),
	f("a", "gte", -1.5),
	f("a", "lt", json.Number("12345678901234567890")),
	f("a", "lte", 1e-7),
	f("a", "exists", true),
	f("a", "exists", false),
	f("a", "prefix", "x"),
	f("a.b.0.c", "eq", "x"),
	f("0", "gt", 0),
	f("a.*", "exists", true),
	f("a.#", "exists", true),
	f("@this", "exists", true),
	f("a|b", "exists", true),
	f(`a\.b`, "exists", true),
	and(f("a", "exists", true), or(f("a.b", "gt", 1), not(f("a.b", "lt", 1)))),
	not(and(f("a", "eq", "x"), f("b", "eq", "y"))),
	or(f("x", "prefix", ""), not(f("y", "exists", true))),
}

func FuzzFilterEval(f *testing.F) {
	for _, s := range []string{
		claimBody,
		``,
		`not json`,
		`{"a":"x"}`,
		`{"a":1e3}`,
		`{"a":1000.0}`,
		`{"a":-0}`,
		`{"a":12345678901234567889}`,
		`{"a":1e999999999999999}`,
		`{"a":{"b":[{"c":"x"}]}}`,
		`{"a":{"b":2},"b":"y"}`,
		`{"a":null}`,
		`{"a":"x","a":"y"}`,
		`{"a":"\u0078"}`,
		`{"a":"\ud800"}`,
		`[{"a":1}]`,
		`{"a":"x"`,
		`{"a*":1,"a#":2,"@this":3,"a|b":4,"a.b":5}`,
		"\xef\xbb\xbf{\"a\":\"x\"}",
		`{"0":1}`,
	} {
		f.Add([]byte(s))
	}
	for _, s := range jsonlimittest.DeepSeeds() {
		f.Add([]byte(s))
	}
	compiled := make([]Filter, len(fuzzFilters))
	negated := make([]Filter, len(fuzzFilters))
	for i, fl := range fuzzFilters {
		compiled[i] = fl
		if err := compiled[i].Compile(); err != nil {
			f.Fatalf("fuzzFilters[%d]: Compile: %v", i, err)
		}
		negated[i] = not(fl)
		if err := negated[i].Compile(); err != nil {
			f.Fatalf("not fuzzFilters[%d]: Compile: %v", i, err)
		}
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		if jsonlimit.Check(body, 0) != nil {
			// Nested too deep to read: no filter matches, not even a
			// negated one.
			for i := range compiled {
				if compiled[i].Match(body) || negated[i].Match(body) {
					t.Fatalf("fuzzFilters[%d] matched a body nested beyond the limit", i)
				}
			}
			return
		}
		valid := gjson.ValidBytes(body)
		for i := range compiled {
			fl := &compiled[i]
			got := fl.Match(body)
			if fl.match(body, valid) != got {
				t.Fatalf("fuzzFilters[%d]: match with validity known disagrees with Match", i)
			}
			if negated[i].Match(body) == got {
				t.Fatalf("fuzzFilters[%d]: not(f) = f = %v on %q", i, got, body)
			}
			if !valid && fl.Op != "" {
				// Not JSON: every path is absent.
				want := fl.Op == "exists" && fl.Value == false
				if got != want {
					t.Fatalf("fuzzFilters[%d] on non-JSON %q: got %v, want %v", i, body, got, want)
				}
			}
		}
	})
}

// FuzzFilterDecode feeds filters as the admin API and the config file
// would: decoding and compiling never panic, and a compiled filter
// evaluates.
func FuzzFilterDecode(f *testing.F) {
	for _, s := range []string{
		`{"path":"payload.details.amount","op":"gt","value":500}`,
		`{"and":[{"path":"a","op":"in","value":["x",1,true]},{"not":{"path":"b","op":"exists","value":true}}]}`,
		`{"or":[{"path":"a","op":"prefix","value":"x"}]}`,
		`{"path":"a","op":"eq","value":12345678901234567890}`,
		`{"path":"a","op":"eq","value":null}`,
		`{"not":{"not":{"not":{"path":"a","op":"ne","value":"b"}}}}`,
		`{path: a, op: gte, value: 1e3}`,
		`and: [{path: a, op: eq, value: 2024-01-01}]`,
		`{"path":"a..b","op":"eq","value":1}`,
		`{"and":[]}`,
		`[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[1]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]`,
	} {
		f.Add([]byte(s))
	}
	for _, s := range jsonlimittest.DeepSeeds() {
		f.Add([]byte(s))
	}
	body := []byte(`{"a":"x","b":{"c":[1,2,3]},"payload":{"details":{"amount":750}}}`)
	f.Fuzz(func(t *testing.T, src []byte) {
		if len(src) > 1<<16 {
			return
		}
		var fj Filter
		if err := json.Unmarshal(src, &fj); err == nil {
			if err := fj.Compile(); err == nil {
				fj.Match(body)
				fj.Match(src)
			}
		}
		var fy Filter
		if err := yaml.Unmarshal(src, &fy); err == nil {
			if err := fy.Compile(); err == nil {
				fy.Match(body)
				fy.Match(src)
			}
		}
	})
}
