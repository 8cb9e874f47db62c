package route

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"
)

const claimBody = `{
  "payload": {
    "messageId": "m-1",
    "timestamp": "2024-03-01T12:00:00Z",
    "details": {
      "messageType": "CLAIM_CREATED",
      "claimRef": "CL-2024-001",
      "amount": 750.50,
      "count": 1e3,
      "big": 12345678901234567890,
      "negative": -3,
      "zero": 0,
      "test": false,
      "live": true,
      "note": null,
      "empty": "",
      "code": "500",
      "tags": ["urgent", "motor"],
      "items": [{"sku": "A-1", "qty": 2}, {"sku": "B-2", "qty": 5}],
      "caf\u00e9": "é",
      "a.b": "dotted",
      "star*": "starred",
      "#": "hash",
      "dup": 1,
      "dup": 2
    }
  }
}`

// f builds a condition.
func f(path, op string, value any) Filter { return Filter{Path: path, Op: op, Value: value} }

func and(fs ...Filter) Filter { return Filter{And: fs} }
func or(fs ...Filter) Filter  { return Filter{Or: fs} }
func not(x Filter) Filter     { return Filter{Not: &x} }

func TestFilterMatch(t *testing.T) {
	t.Parallel()
	const d = "payload.details."
	tests := []struct {
		name   string
		filter Filter
		want   bool
	}{
		// eq
		{"EqString", f(d+"messageType", "eq", "CLAIM_CREATED"), true},
		{"EqStringOther", f(d+"messageType", "eq", "CLAIM_UPDATED"), false},
		{"EqStringCase", f(d+"messageType", "eq", "claim_created"), false},
		{"EqNumber", f(d+"amount", "eq", 750.5), true},
		{"EqNumberInt", f(d+"negative", "eq", -3), true},
		{"EqNumber1e3Body", f(d+"count", "eq", 1000), true},
		{"EqNumber1e3Value", f(d+"count", "eq", 1e3), true},
		{"EqNumberJSONNumber", f(d+"count", "eq", json.Number("1000.0")), true},
		{"EqBigExact", f(d+"big", "eq", json.Number("12345678901234567890")), true},
		{"EqBigOffByOne", f(d+"big", "eq", json.Number("12345678901234567891")), false},
		{"EqBigUint64", f(d+"big", "eq", uint64(12345678901234567890)), true},
		{"EqZero", f(d+"zero", "eq", 0), true},
		{"EqBoolFalse", f(d+"test", "eq", false), true},
		{"EqBoolTrue", f(d+"live", "eq", true), true},
		{"EqBoolMismatch", f(d+"live", "eq", false), false},
		{"EqEmptyString", f(d+"empty", "eq", ""), true},
		{"EqEscapedKey", f(d+"café", "eq", "é"), true},
		{"EqArrayIndex", f(d+"items.1.sku", "eq", "B-2"), true},
		{"EqArrayIndexOut", f(d+"items.2.sku", "eq", "B-2"), false},
		{"EqTagIndex", f(d+"tags.0", "eq", "urgent"), true},
		{"EqStarKeyIsLiteral", f(d+"star*", "eq", "starred"), true},
		{"EqHashKeyIsLiteral", f(d+"#", "eq", "hash"), true},
		{"EqDuplicateFirstWins", f(d+"dup", "eq", 1), true},
		{"EqDuplicateSecondLoses", f(d+"dup", "eq", 2), false},
		// type mismatches: never equal
		{"EqNumberVsStringBody", f(d+"code", "eq", 500), false},
		{"EqStringVsNumberBody", f(d+"amount", "eq", "750.50"), false},
		{"EqBoolVsStringBody", f(d+"code", "eq", true), false},
		{"EqStringVsNull", f(d+"note", "eq", "null"), false},
		{"EqStringVsObject", f("payload.details", "eq", "x"), false},
		{"EqStringVsArray", f(d+"tags", "eq", "urgent"), false},
		// missing paths
		{"EqMissing", f(d+"nope", "eq", "x"), false},
		{"EqMissingDeep", f("a.b.c.d", "eq", 1), false},
		{"EqThroughScalar", f(d+"amount.x", "eq", 1), false},
		{"DottedKeyUnreachable", f(d+"a.b", "eq", "dotted"), false},
		// ne: present and not equal
		{"NeDifferent", f(d+"messageType", "ne", "CLAIM_UPDATED"), true},
		{"NeSame", f(d+"messageType", "ne", "CLAIM_CREATED"), false},
		{"NeTypeMismatch", f(d+"code", "ne", 500), true},
		{"NeNull", f(d+"note", "ne", 1), true},
		{"NeMissing", f(d+"nope", "ne", "x"), false},
		{"NotEqMissing", not(f(d+"nope", "eq", "x")), true},
		{"NeNumberSameValue", f(d+"count", "ne", 1000), false},
		// in
		{"InString", f(d+"messageType", "in", []any{"CLAIM_UPDATED", "CLAIM_CREATED"}), true},
		{"InStringNone", f(d+"messageType", "in", []any{"A", "B"}), false},
		{"InStringSlice", f(d+"messageType", "in", []string{"CLAIM_CREATED"}), true},
		{"InMixed", f(d+"amount", "in", []any{"750.5", 750.5}), true},
		{"InMixedNoCoercion", f(d+"code", "in", []any{500, true}), false},
		{"InBool", f(d+"test", "in", []any{false}), true},
		{"InNumber1e3", f(d+"count", "in", []any{1, 10, 100, 1000}), true},
		{"InLongList", f(d+"claimRef", "in", []any{"a", "b", "c", "d", "e", "f", "g", "h", "CL-2024-001"}), true},
		{"InLongListNone", f(d+"claimRef", "in", []any{"a", "b", "c", "d", "e", "f", "g", "h", "i"}), false},
		{"InLongListNumber", f(d+"zero", "in", []any{"a", "b", "c", "d", "e", "f", "g", "h", 0}), true},
		{"InMissing", f(d+"nope", "in", []any{"x"}), false},
		// gt gte lt lte
		{"GtTrue", f(d+"amount", "gt", 500), true},
		{"GtFalse", f(d+"amount", "gt", 750.5), false},
		{"GteEqual", f(d+"amount", "gte", 750.5), true},
		{"GteDecimalString", f(d+"amount", "gte", json.Number("750.50")), true},
		{"LtTrue", f(d+"negative", "lt", 0), true},
		{"LtFalse", f(d+"zero", "lt", 0), false},
		{"LteEqual", f(d+"zero", "lte", 0), true},
		{"LteNegative", f(d+"negative", "lte", -3.5), false},
		{"Gt1e3", f(d+"count", "gt", 999), true},
		{"Gte1e3", f(d+"count", "gte", 1000), true},
		{"Gt1e3Equal", f(d+"count", "gt", 1000), false},
		{"GtBig", f(d+"big", "gt", json.Number("12345678901234567889")), true},
		{"GtStringBody", f(d+"code", "gt", 100), false},
		{"GtBoolBody", f(d+"live", "gt", 0), false},
		{"GtNullBody", f(d+"note", "gt", -1), false},
		{"GtMissing", f(d+"nope", "gt", 0), false},
		{"LtMissing", f(d+"nope", "lt", 0), false},
		{"GtArrayElement", f(d+"items.1.qty", "gt", 4), true},
		// exists
		{"ExistsTrue", f(d+"messageType", "exists", true), true},
		{"ExistsNull", f(d+"note", "exists", true), true},
		{"ExistsFalseOnPresent", f(d+"messageType", "exists", false), false},
		{"ExistsMissing", f(d+"nope", "exists", true), false},
		{"ExistsFalseOnMissing", f(d+"nope", "exists", false), true},
		{"ExistsObject", f("payload.details", "exists", true), true},
		// prefix
		{"PrefixTrue", f(d+"claimRef", "prefix", "CL-2024-"), true},
		{"PrefixFalse", f(d+"claimRef", "prefix", "CL-2023-"), false},
		{"PrefixEmpty", f(d+"claimRef", "prefix", ""), true},
		{"PrefixWhole", f(d+"claimRef", "prefix", "CL-2024-001"), true},
		{"PrefixLonger", f(d+"claimRef", "prefix", "CL-2024-0011"), false},
		{"PrefixNumberBody", f(d+"code", "prefix", "5"), true},
		{"PrefixOnNumber", f(d+"amount", "prefix", "7"), false},
		{"PrefixMissing", f(d+"nope", "prefix", ""), false},
		// combinators
		{"AndTrue", and(f(d+"messageType", "eq", "CLAIM_CREATED"), f(d+"amount", "gt", 500)), true},
		{"AndFalse", and(f(d+"messageType", "eq", "CLAIM_CREATED"), f(d+"amount", "gt", 1000)), false},
		{"OrTrue", or(f(d+"amount", "gt", 1000), f(d+"live", "eq", true)), true},
		{"OrFalse", or(f(d+"amount", "gt", 1000), f(d+"test", "eq", true)), false},
		{"NotTrue", not(f(d+"test", "eq", true)), true},
		{"NotFalse", not(f(d+"live", "eq", true)), false},
		{"NotNot", not(not(f(d+"live", "eq", true))), true},
		{"Nested", and(
			f(d+"messageType", "in", []any{"CLAIM_CREATED", "CLAIM_UPDATED"}),
			or(f(d+"amount", "gte", 1000), and(f(d+"tags.0", "eq", "urgent"), not(f(d+"test", "eq", true)))),
			not(or(f(d+"claimRef", "prefix", "TEST-"), f(d+"nope", "exists", true))),
		), true},
		{"NestedFalse", and(
			f(d+"messageType", "in", []any{"CLAIM_CREATED"}),
			or(f(d+"amount", "gte", 1000), and(f(d+"tags.0", "eq", "urgent"), not(f(d+"live", "eq", true)))),
		), false},
	}
	body := []byte(claimBody)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			fl := tt.filter
			// Uncompiled first (compiled per call), then compiled.
			if got := fl.Match(body); got != tt.want {
				t.Errorf("uncompiled Match: got %v, want %v", got, tt.want)
			}
			if err := fl.Compile(); err != nil {
				t.Fatalf("Compile: got error %v, want nil", err)
			}
			if got := fl.Match(body); got != tt.want {
				t.Errorf("Match: got %v, want %v", got, tt.want)
			}
			if got := fl.match(body, true); got != tt.want {
				t.Errorf("match(valid): got %v, want %v", got, tt.want)
			}
		})
	}
}

func TestFilterNonJSONBody(t *testing.T) {
	t.Parallel()
	filters := map[string]struct {
		filter Filter
		want   bool
	}{
		"Eq":              {f("a", "eq", "x"), false},
		"Ne":              {f("a", "ne", "x"), false},
		"In":              {f("a", "in", []any{"x"}), false},
		"Gt":              {f("a", "gt", 0), false},
		"Lte":             {f("a", "lte", 0), false},
		"Prefix":          {f("a", "prefix", ""), false},
		"ExistsTrue":      {f("a", "exists", true), false},
		"ExistsFalse":     {f("a", "exists", false), true},
		"NotEq":           {not(f("a", "eq", "x")), true},
		"NotExists":       {not(f("a", "exists", true)), true},
		"AndWithNot":      {and(not(f("a", "eq", 1)), f("b", "exists", false)), true},
		"OrOfConditions":  {or(f("a", "eq", 1), f("a", "ne", 1)), false},
		"NotOfConditions": {not(or(f("a", "eq", 1), f("a", "ne", 1))), true},
	}
	bodies := []string{
		``,
		`not json`,
		`a=x&b=1`,
		`<a>x</a>`,
		`{"a":"x"`,       // truncated
		`{"a":"x"} junk`, // trailing data
		"\xef\xbb\xbf{\"a\":\"x\"}",
		`{'a':'x'}`,
	}
	for name, tt := range filters {
		fl := tt.filter
		if err := fl.Compile(); err != nil {
			t.Fatalf("%s: Compile: got error %v, want nil", name, err)
		}
		for _, b := range bodies {
			if got := fl.Match([]byte(b)); got != tt.want {
				t.Errorf("%s.Match(%q): got %v, want %v", name, b, got, tt.want)
			}
		}
	}

	// A JSON body that is a scalar or a list has no such path either.
	for _, b := range []string{`"x"`, `1`, `null`, `true`, `[1,2]`} {
		eq := f("a", "eq", "x")
		if eq.Match([]byte(b)) {
			t.Errorf("eq.Match(%q): got true, want false", b)
		}
	}
}

func TestFilterNil(t *testing.T) {
	t.Parallel()
	var fl *Filter
	if !fl.Match([]byte("anything")) {
		t.Errorf("nil Filter.Match: got false, want true")
	}
	if fl.Compiled() {
		t.Errorf("nil Filter.Compiled: got true, want false")
	}
}

func TestFilterCompileErrors(t *testing.T) {
	t.Parallel()
	deep := f("a", "eq", 1)
	for range MaxFilterDepth {
		deep = not(deep)
	}
	wide := make([]Filter, MaxFilterNodes)
	for i := range wide {
		wide[i] = f("a", "eq", i)
	}
	many := make([]any, MaxFilterValues+1)
	for i := range many {
		many[i] = i
	}
	tests := []struct {
		name   string
		filter Filter
		want   string
	}{
		{"Empty", Filter{}, "filter: empty filter"},
		{"MissingPath", Filter{Op: "eq", Value: 1}, "filter.path: missing"},
		{"MissingOp", Filter{Path: "a", Value: 1}, "filter.op: missing"},
		{"UnknownOp", f("a", "like", "x"), `filter.op: unknown op "like"`},
		{"MissingValue", Filter{Path: "a", Op: "eq"}, "filter.value: missing"},
		{"EmptySegment", f("a..b", "eq", 1), `filter.path: "a..b": empty segment 2`},
		{"LeadingDot", f(".a", "eq", 1), "empty segment 1"},
		{"LongPath", f(strings.Repeat("a", MaxFilterPath+1), "eq", 1), "longer than"},
		{"ManySegments", f(strings.Repeat("a.", MaxFilterPathSegments)+"a", "eq", 1), "segments"},
		{"GtString", f("a", "gt", "500"), "op gt needs a number, got a string"},
		{"LteBool", f("a", "lte", true), "op lte needs a number, got a boolean"},
		{"PrefixNumber", f("a", "prefix", 5), "op prefix needs a string, got a number"},
		{"ExistsString", f("a", "exists", "yes"), "op exists needs true or false, got a string"},
		{"InScalar", f("a", "in", "x"), "op in needs a list, got a string"},
		{"InEmpty", f("a", "in", []any{}), "op in needs a non-empty list"},
		{"InNested", f("a", "in", []any{"x", []any{"y"}}), "filter.value[1]: want a string, number or boolean, got a list"},
		{"InNull", f("a", "in", []any{nil}), "filter.value[0]: want a string, number or boolean, got null"},
		{"EqList", f("a", "eq", []any{1}), "got a list"},
		{"EqObject", f("a", "eq", map[string]any{"x": 1}), "got an object"},
		{"EqNaN", f("a", "eq", nan()), "not a JSON number"},
		{"EqBadNumber", f("a", "eq", json.Number("0x10")), `invalid number "0x10"`},
		{"LongString", f("a", "eq", strings.Repeat("x", MaxFilterString+1)), "string longer than"},
		{"TooManyValues", f("a", "in", many), "more than 1024 values"},
		{"AndEmpty", Filter{And: []Filter{}}, "filter.and: empty list"},
		{"OrEmpty", Filter{Or: []Filter{}}, "filter.or: empty list"},
		{"AndAndOr", Filter{And: []Filter{f("a", "eq", 1)}, Or: []Filter{f("a", "eq", 1)}}, "got several"},
		{"LeafAndNot", Filter{Path: "a", Op: "eq", Value: 1, Not: &Filter{}}, "got several"},
		{"ValueOnCombinator", Filter{Value: 1, And: []Filter{f("a", "eq", 1)}}, "got several"},
		{"NestedError", and(f("a", "eq", 1), or(f("b", "eq", 1), not(f("c", "gt", "x")))), "filter.and[1].or[1].not.value: op gt needs a number"},
		{"NestedEmpty", and(f("a", "eq", 1), Filter{}), "filter.and[1]: empty filter"},
		{"TooDeep", deep, "nested deeper than 16 levels"},
		{"TooManyNodes", Filter{Or: wide}, "more than 256 nodes"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			fl := tt.filter
			err := fl.Compile()
			if err == nil {
				t.Fatalf("Compile: got nil error, want one containing %q", tt.want)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("Compile: got error %q, want one containing %q", err, tt.want)
			}
			if fl.Compiled() {
				t.Errorf("Compiled after a failed Compile: got true, want false")
			}
			if fl.Match([]byte(`{"a":1,"b":1,"c":1}`)) {
				t.Errorf("an invalid filter matched")
			}
		})
	}

	// Depth MaxFilterDepth itself is fine.
	ok := f("a", "eq", 1)
	for range MaxFilterDepth - 1 {
		ok = not(ok)
	}
	if err := ok.Compile(); err != nil {
		t.Errorf("filter at depth %d: got error %v, want nil", MaxFilterDepth, err)
	}
}

func nan() float64 {
	var zero float64
	return zero / zero
}

func TestFilterDecodeYAML(t *testing.T) {
	t.Parallel()
	src := `
filter:
  and:
    - {path: payload.details.messageType, op: in, value: [CLAIM_CREATED, CLAIM_UPDATED]}
    - {path: payload.details.amount, op: gt, value: 500}
    - {path: payload.details.count, op: eq, value: 1e3}
    - {path: payload.details.claimRef, op: prefix, value: "CL-"}
    - {path: payload.details.nope, op: exists, value: false}
    - not: {path: payload.details.test, op: eq, value: true}
    - or:
        - {path: payload.details.big, op: eq, value: 12345678901234567890}
        - {path: payload.timestamp, op: eq, value: 2024-03-01T12:00:00Z}
`
	var cfg struct {
		Filter *Filter `yaml:"filter"`
	}
	if err := yaml.Unmarshal([]byte(src), &cfg); err != nil {
		t.Fatalf("yaml.Unmarshal: got error %v, want nil", err)
	}
	if err := cfg.Filter.Compile(); err != nil {
		t.Fatalf("Compile: got error %v, want nil", err)
	}
	if !cfg.Filter.Match([]byte(claimBody)) {
		t.Errorf("Match(claimBody): got false, want true")
	}

	// A YAML timestamp stays the string it was written as.
	var ts struct {
		Filter Filter `yaml:"filter"`
	}
	if err := yaml.Unmarshal([]byte(`filter: {path: payload.timestamp, op: eq, value: 2024-03-01T12:00:00Z}`), &ts); err != nil {
		t.Fatal(err)
	}
	if err := ts.Filter.Compile(); err != nil {
		t.Fatalf("timestamp value: Compile: got error %v, want nil", err)
	}
	if !ts.Filter.Match([]byte(claimBody)) {
		t.Errorf("timestamp value: got no match, want a match")
	}

	// Timestamps inside an "in" list too.
	var in struct {
		Filter Filter `yaml:"filter"`
	}
	if err := yaml.Unmarshal([]byte(`filter: {path: payload.timestamp, op: in, value: [2024-03-02, 2024-03-01T12:00:00Z]}`), &in); err != nil {
		t.Fatal(err)
	}
	if err := in.Filter.Compile(); err != nil || !in.Filter.Match([]byte(claimBody)) {
		t.Errorf("timestamps in a list: got %v, match %v; want nil, true", err, in.Filter.Match([]byte(claimBody)))
	}

	for _, bad := range []string{
		`filter: {path: a, op: eq, valu: 1}`,
		`filter: {and: [{path: a, op: eq, value: 1, extra: 2}]}`,
		`filter: {not: {pth: a}}`,
		`filter: [1, 2]`,
		`filter: x`,
	} {
		var c struct {
			Filter *Filter `yaml:"filter"`
		}
		if err := yaml.Unmarshal([]byte(bad), &c); err == nil {
			t.Errorf("yaml.Unmarshal(%s): got nil error, want one", bad)
		}
	}
}

func TestFilterDecodeJSON(t *testing.T) {
	t.Parallel()
	src := `{"and":[
		{"path":"payload.details.messageType","op":"in","value":["CLAIM_CREATED","CLAIM_UPDATED"]},
		{"path":"payload.details.amount","op":"gt","value":500},
		{"path":"payload.details.big","op":"eq","value":12345678901234567890},
		{"not":{"path":"payload.details.big","op":"eq","value":12345678901234567891}},
		{"or":[{"path":"payload.details.count","op":"gte","value":1e3},{"path":"x","op":"exists","value":true}]}
	]}`
	var fl Filter
	if err := json.Unmarshal([]byte(src), &fl); err != nil {
		t.Fatalf("json.Unmarshal: got error %v, want nil", err)
	}
	if err := fl.Compile(); err != nil {
		t.Fatalf("Compile: got error %v, want nil", err)
	}
	if !fl.Match([]byte(claimBody)) {
		t.Errorf("Match(claimBody): got false, want true")
	}

	// Round trip through the admin API's JSON.
	out, err := json.Marshal(&fl)
	if err != nil {
		t.Fatalf("json.Marshal: got error %v, want nil", err)
	}
	var back Filter
	if err := json.Unmarshal(out, &back); err != nil {
		t.Fatalf("json.Unmarshal(%s): got error %v, want nil", out, err)
	}
	if err := back.Compile(); err != nil || !back.Match([]byte(claimBody)) {
		t.Errorf("round trip %s: got %v, match %v; want nil, true", out, err, back.Match([]byte(claimBody)))
	}
	if want := `{"path":"payload.details.big","op":"eq","value":12345678901234567890}`; !strings.Contains(string(out), want) {
		t.Errorf("json.Marshal: got %s, want it to contain %s", out, want)
	}

	for _, bad := range []string{
		`{"path":"a","op":"eq","valu":1}`,
		`{"and":[{"path":"a","op":"eq","value":1,"extra":2}]}`,
		`{"not":{"pth":"a"}}`,
		`[1]`,
		`"x"`,
		strings.Repeat(`{"not":`, 5000) + strings.Repeat(`}`, 5000),
	} {
		var fl Filter
		if err := json.Unmarshal([]byte(bad), &fl); err == nil {
			t.Errorf("json.Unmarshal(%.80s): got nil error, want one", bad)
		}
	}

	// Decoding checks nesting only coarsely; Compile has the last word.
	var deep Filter
	src = strings.Repeat(`{"not":`, MaxFilterDepth) + `{"path":"a","op":"eq","value":1}` + strings.Repeat(`}`, MaxFilterDepth)
	if err := json.Unmarshal([]byte(src), &deep); err != nil {
		t.Fatalf("json.Unmarshal(depth %d): got error %v, want nil", MaxFilterDepth+1, err)
	}
	if err := deep.Compile(); err == nil || !strings.Contains(err.Error(), "nested deeper") {
		t.Errorf("Compile(depth %d): got error %v, want one saying nested deeper", MaxFilterDepth+1, err)
	}
}

// TestFilterCompiledCopy checks that a compiled Filter keeps working when
// copied, and that Compile works again after an edit.
func TestFilterCompiledCopy(t *testing.T) {
	t.Parallel()
	fl := f("a", "eq", 1)
	if err := fl.Compile(); err != nil {
		t.Fatal(err)
	}
	cp := fl
	if !cp.Match([]byte(`{"a":1}`)) {
		t.Errorf("copy of a compiled filter: got false, want true")
	}
	fl.Value = 2
	if err := fl.Compile(); err != nil {
		t.Fatal(err)
	}
	if fl.Match([]byte(`{"a":1}`)) || !fl.Match([]byte(`{"a":2}`)) {
		t.Errorf("recompiled filter does not follow the edit")
	}
}

func ExampleFilter() {
	var fl Filter
	_ = yaml.Unmarshal([]byte(`{path: payload.details.amount, op: gt, value: 500}`), &fl)
	if err := fl.Compile(); err != nil {
		panic(err)
	}
	fmt.Println(fl.Match([]byte(`{"payload":{"details":{"amount":750}}}`)))
	fmt.Println(fl.Match([]byte(`{"payload":{"details":{"amount":"750"}}}`)))
	fmt.Println(fl.Match([]byte(`not json`)))
	// Output:
	// true
	// false
	// false
}

// TestFilterYAMLRoundTrip checks that falsy values (false, 0, "") survive
// omitempty when a filter is written back as YAML.
func TestFilterYAMLRoundTrip(t *testing.T) {
	t.Parallel()
	x := and(f("a", "exists", false), f("b", "eq", 0), f("c", "eq", ""))
	out, err := yaml.Marshal(&x)
	if err != nil {
		t.Fatalf("yaml.Marshal: got error %v, want nil", err)
	}
	var back Filter
	if err := yaml.Unmarshal(out, &back); err != nil {
		t.Fatalf("yaml.Unmarshal(%s): got error %v, want nil", out, err)
	}
	if err := back.Compile(); err != nil {
		t.Fatalf("Compile(%s): got error %v, want nil", out, err)
	}
	if body := []byte(`{"b":0,"c":""}`); !back.Match(body) {
		t.Errorf("round trip %s: Match(%s) got false, want true", out, body)
	}
}
