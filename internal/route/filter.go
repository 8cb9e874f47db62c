package route

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"unsafe"

	"github.com/tidwall/gjson"
	"gopkg.in/yaml.v3"

	"hookd/internal/jsonlimit"
)

// Filter bounds, checked by Compile.
const (
	// MaxFilterDepth is the deepest nesting of and/or/not, counting the
	// top-level filter as depth 1.
	MaxFilterDepth = 16
	// MaxFilterNodes bounds the number of nodes (conditions and
	// combinators) in one filter.
	MaxFilterNodes = 256
	// MaxFilterValues bounds the number of values in one filter, every
	// item of every "in" list counted.
	MaxFilterValues = 1024
	// MaxFilterString bounds the length in bytes of one string value.
	MaxFilterString = 4096
	// MaxFilterPath bounds the length in bytes of one path.
	MaxFilterPath = 512
	// MaxFilterPathSegments bounds the number of segments of one path.
	MaxFilterPathSegments = 32
)

// Filter is a payload filter over an event's raw JSON body. A node is
// either a condition (Path, Op and Value) or exactly one combinator (And,
// Or or Not):
//
//	filter: {path: payload.details.amount, op: gt, value: 500}
//	filter:
//	  and:
//	    - {path: payload.details.messageType, op: in, value: [CLAIM_CREATED, CLAIM_UPDATED]}
//	    - not: {path: payload.test, op: eq, value: true}
//
// The same shape decodes from the admin API's JSON. Decoding is strict:
// an unknown key is an error.
//
// Compile validates the filter and prepares it; Match then evaluates it.
// Edit a Filter only before compiling it (or compile it again).
//
// Evaluation rules (docs/routing.md has the full table):
//   - a path is dot-separated object keys or array indexes
//     ("payload.items.0.sku"), read with gjson; where an object repeats a
//     key, the first occurrence counts;
//   - a condition on a path that is absent is false, except
//     exists: false, which is true; a body that is not JSON has every path
//     absent;
//   - values compare only with values of the same JSON type: 500 never
//     equals "500". Numbers compare exactly as decimals (1e3 = 1000);
//   - ne means "present and not equal"; "absent or not equal" is
//     {not: {path: …, op: eq, value: …}}.
type Filter struct {
	// Path is the dot-separated path of the field a condition tests, such
	// as "payload.details.amount". Array elements are addressed by index.
	Path string `yaml:"path,omitempty" json:"path,omitempty"`
	// Op is the condition's operator: eq, ne, in, gt, gte, lt, lte, exists
	// or prefix.
	Op string `yaml:"op,omitempty" json:"op,omitempty"`
	// Value is the operand: a string, number or boolean for eq and ne; a
	// non-empty list of those for in; a number for gt, gte, lt and lte; a
	// boolean for exists; a string for prefix.
	Value any `yaml:"value,omitempty" json:"value,omitempty"`
	// And matches when every filter in it matches.
	And []Filter `yaml:"and,omitempty" json:"and,omitempty"`
	// Or matches when any filter in it matches.
	Or []Filter `yaml:"or,omitempty" json:"or,omitempty"`
	// Not matches when the filter in it does not.
	Not *Filter `yaml:"not,omitempty" json:"not,omitempty"`

	prog *node // set by Compile
}

// Filter operators.
const (
	OpEq     = "eq"
	OpNe     = "ne"
	OpIn     = "in"
	OpGt     = "gt"
	OpGte    = "gte"
	OpLt     = "lt"
	OpLte    = "lte"
	OpExists = "exists"
	OpPrefix = "prefix"
)

type opcode uint8

const (
	opAnd opcode = iota + 1
	opOr
	opNot
	opEq
	opNe
	opIn
	opGt
	opGte
	opLt
	opLte
	opExists
	opPrefix
)

var opcodes = map[string]opcode{
	OpEq: opEq, OpNe: opNe, OpIn: opIn, OpGt: opGt, OpGte: opGte, OpLt: opLt,
	OpLte: opLte, OpExists: opExists, OpPrefix: opPrefix,
}

type valueKind uint8

const (
	valString valueKind = iota + 1
	valNumber
	valBool
)

// scalar is one compiled operand.
type scalar struct {
	kind valueKind
	str  string
	num  decimal
	b    bool
}

// node is a compiled filter node.
type node struct {
	op   opcode
	path string // escaped for gjson
	kids []node // and, or, not
	val  scalar // eq, ne, gt…, prefix, exists (b)
	set  []scalar
	strs map[string]struct{} // the strings of set, when it is long
}

// strSetMin is the length of an "in" list from which its strings are
// looked up in a map rather than by scanning.
const strSetMin = 8

// Compile validates f and prepares it for Match. The error names the
// offending node, as in "filter.and[1].not: op gt needs a number value".
func (f *Filter) Compile() error {
	if f == nil {
		return nil // a nil filter matches everything
	}
	c := compiler{}
	n, err := c.compile(f, "filter", 1)
	if err != nil {
		return err
	}
	f.prog = &n
	return nil
}

// Compiled reports whether f was compiled.
func (f *Filter) Compiled() bool { return f != nil && f.prog != nil }

type compiler struct {
	nodes  int
	values int
}

func (c *compiler) compile(f *Filter, at string, depth int) (node, error) {
	if depth > MaxFilterDepth {
		return node{}, fmt.Errorf("%s: filter nested deeper than %d levels", at, MaxFilterDepth)
	}
	c.nodes++
	if c.nodes > MaxFilterNodes {
		return node{}, fmt.Errorf("%s: filter has more than %d nodes", at, MaxFilterNodes)
	}
	leaf := f.Path != "" || f.Op != "" || f.Value != nil
	n := 0
	for _, set := range []bool{leaf, f.And != nil, f.Or != nil, f.Not != nil} {
		if set {
			n++
		}
	}
	switch {
	case n == 0:
		return node{}, fmt.Errorf("%s: empty filter (want path/op/value, and, or, or not)", at)
	case n > 1:
		return node{}, fmt.Errorf("%s: a filter node is one of a condition (path/op/value), and, or, not; got several", at)
	}
	switch {
	case f.And != nil, f.Or != nil:
		list, op, name := f.And, opAnd, "and"
		if f.Or != nil {
			list, op, name = f.Or, opOr, "or"
		}
		if len(list) == 0 {
			return node{}, fmt.Errorf("%s.%s: empty list", at, name)
		}
		out := node{op: op, kids: make([]node, len(list))}
		for i := range list {
			k, err := c.compile(&list[i], fmt.Sprintf("%s.%s[%d]", at, name, i), depth+1)
			if err != nil {
				return node{}, err
			}
			out.kids[i] = k
		}
		return out, nil
	case f.Not != nil:
		k, err := c.compile(f.Not, at+".not", depth+1)
		if err != nil {
			return node{}, err
		}
		return node{op: opNot, kids: []node{k}}, nil
	}
	return c.condition(f, at)
}

func (c *compiler) condition(f *Filter, at string) (node, error) {
	gpath, err := compilePath(f.Path)
	if err != nil {
		return node{}, fmt.Errorf("%s.path: %w", at, err)
	}
	op, ok := opcodes[f.Op]
	if !ok {
		if f.Op == "" {
			return node{}, fmt.Errorf("%s.op: missing (want eq, ne, in, gt, gte, lt, lte, exists or prefix)", at)
		}
		return node{}, fmt.Errorf("%s.op: unknown op %q (want eq, ne, in, gt, gte, lt, lte, exists or prefix)", at, f.Op)
	}
	n := node{op: op, path: gpath}
	if f.Value == nil {
		return node{}, fmt.Errorf("%s.value: missing (op %s needs a value; null is not a value, use exists)", at, f.Op)
	}
	switch op {
	case opIn:
		list, ok := asList(f.Value)
		if !ok {
			return node{}, fmt.Errorf("%s.value: op in needs a list, got %s", at, typeName(f.Value))
		}
		if len(list) == 0 {
			return node{}, fmt.Errorf("%s.value: op in needs a non-empty list", at)
		}
		nstr := 0
		for i, v := range list {
			s, err := c.scalar(v)
			if err != nil {
				return node{}, fmt.Errorf("%s.value[%d]: %w", at, i, err)
			}
			n.set = append(n.set, s)
			if s.kind == valString {
				nstr++
			}
		}
		if nstr >= strSetMin {
			n.strs = make(map[string]struct{}, nstr)
			for _, s := range n.set {
				if s.kind == valString {
					n.strs[s.str] = struct{}{}
				}
			}
		}
		return n, nil
	case opExists:
		b, ok := f.Value.(bool)
		if !ok {
			return node{}, fmt.Errorf("%s.value: op exists needs true or false, got %s", at, typeName(f.Value))
		}
		n.val = scalar{kind: valBool, b: b}
		return n, nil
	}
	s, err := c.scalar(f.Value)
	if err != nil {
		return node{}, fmt.Errorf("%s.value: %w", at, err)
	}
	switch op {
	case opGt, opGte, opLt, opLte:
		if s.kind != valNumber {
			return node{}, fmt.Errorf("%s.value: op %s needs a number, got %s", at, f.Op, typeName(f.Value))
		}
	case opPrefix:
		if s.kind != valString {
			return node{}, fmt.Errorf("%s.value: op prefix needs a string, got %s", at, typeName(f.Value))
		}
	}
	n.val = s
	return n, nil
}

// compilePath checks a dot-separated path and escapes each segment for
// gjson, so that no character of a key ('*', '?', '#', '@', '|'…) acts as
// gjson syntax.
func compilePath(p string) (string, error) {
	if p == "" {
		return "", errors.New("missing")
	}
	if len(p) > MaxFilterPath {
		return "", fmt.Errorf("longer than %d bytes", MaxFilterPath)
	}
	segs := strings.Split(p, ".")
	if len(segs) > MaxFilterPathSegments {
		return "", fmt.Errorf("%q has more than %d segments", p, MaxFilterPathSegments)
	}
	for i, seg := range segs {
		if seg == "" {
			return "", fmt.Errorf("%q: empty segment %d", p, i+1)
		}
		segs[i] = gjson.Escape(seg)
	}
	return strings.Join(segs, "."), nil
}

func (c *compiler) scalar(v any) (scalar, error) {
	c.values++
	if c.values > MaxFilterValues {
		return scalar{}, fmt.Errorf("filter has more than %d values", MaxFilterValues)
	}
	var lit string
	switch v := v.(type) {
	case string:
		if len(v) > MaxFilterString {
			return scalar{}, fmt.Errorf("string longer than %d bytes", MaxFilterString)
		}
		return scalar{kind: valString, str: v}, nil
	case bool:
		return scalar{kind: valBool, b: v}, nil
	case json.Number:
		lit = string(v)
	case float64:
		if math.IsNaN(v) || math.IsInf(v, 0) {
			return scalar{}, fmt.Errorf("number %v is not a JSON number", v)
		}
		lit = strconv.FormatFloat(v, 'g', -1, 64)
	case float32:
		f := float64(v)
		if math.IsNaN(f) || math.IsInf(f, 0) {
			return scalar{}, fmt.Errorf("number %v is not a JSON number", v)
		}
		lit = strconv.FormatFloat(f, 'g', -1, 32)
	case int:
		lit = strconv.FormatInt(int64(v), 10)
	case int8:
		lit = strconv.FormatInt(int64(v), 10)
	case int16:
		lit = strconv.FormatInt(int64(v), 10)
	case int32:
		lit = strconv.FormatInt(int64(v), 10)
	case int64:
		lit = strconv.FormatInt(v, 10)
	case uint:
		lit = strconv.FormatUint(uint64(v), 10)
	case uint8:
		lit = strconv.FormatUint(uint64(v), 10)
	case uint16:
		lit = strconv.FormatUint(uint64(v), 10)
	case uint32:
		lit = strconv.FormatUint(uint64(v), 10)
	case uint64:
		lit = strconv.FormatUint(v, 10)
	default:
		return scalar{}, fmt.Errorf("want a string, number or boolean, got %s", typeName(v))
	}
	// FormatFloat writes "1e+21"; JSON allows it.
	d, ok := parseDecimal(lit)
	if !ok {
		return scalar{}, fmt.Errorf("invalid number %q", lit)
	}
	return scalar{kind: valNumber, num: d}, nil
}

func asList(v any) ([]any, bool) {
	switch v := v.(type) {
	case []any:
		return v, true
	case []string:
		out := make([]any, len(v))
		for i, s := range v {
			out[i] = s
		}
		return out, true
	}
	return nil, false
}

func typeName(v any) string {
	switch v.(type) {
	case nil:
		return "null"
	case string:
		return "a string"
	case bool:
		return "a boolean"
	case json.Number, float64, float32, int, int8, int16, int32, int64, uint, uint8, uint16, uint32, uint64:
		return "a number"
	case []any, []string:
		return "a list"
	case map[string]any, map[any]any:
		return "an object"
	}
	return fmt.Sprintf("%T", v)
}

// Match reports whether the raw body matches the filter. A nil Filter
// matches every body. A Filter that was not compiled is compiled for this
// call only (slowly; call Compile once instead) and matches nothing when
// it is invalid. A body nested deeper than jsonlimit.DefaultDepth matches
// no filter (see Table.MaxJSONDepth).
func (f *Filter) Match(body []byte) bool {
	if f == nil {
		return true
	}
	if jsonlimit.Check(body, 0) != nil {
		return false
	}
	return f.match(body, gjson.ValidBytes(body))
}

// match is Match with the body's validity as JSON already known, so a
// table checks it once per event rather than once per filter.
func (f *Filter) match(body []byte, valid bool) bool {
	if f == nil {
		return true
	}
	prog := f.prog
	if prog == nil {
		c := compiler{}
		n, err := c.compile(f, "filter", 1)
		if err != nil {
			return false
		}
		prog = &n
	}
	return prog.eval(body, valid)
}

func (n *node) eval(body []byte, valid bool) bool {
	switch n.op {
	case opAnd:
		for i := range n.kids {
			if !n.kids[i].eval(body, valid) {
				return false
			}
		}
		return true
	case opOr:
		for i := range n.kids {
			if n.kids[i].eval(body, valid) {
				return true
			}
		}
		return false
	case opNot:
		return !n.kids[0].eval(body, valid)
	}
	var r gjson.Result
	if valid {
		// gjson.GetBytes would copy the result's strings out of body; the
		// result lives only for this comparison, so read body in place.
		r = gjson.Get(unsafe.String(unsafe.SliceData(body), len(body)), n.path)
	}
	if n.op == opExists {
		return r.Exists() == n.val.b
	}
	if !r.Exists() {
		return false
	}
	switch n.op {
	case opEq:
		return equal(r, &n.val)
	case opNe:
		return !equal(r, &n.val)
	case opIn:
		if n.strs != nil && r.Type == gjson.String {
			_, ok := n.strs[r.Str]
			return ok
		}
		for i := range n.set {
			if equal(r, &n.set[i]) {
				return true
			}
		}
		return false
	case opPrefix:
		return r.Type == gjson.String && strings.HasPrefix(r.Str, n.val.str)
	case opGt, opGte, opLt, opLte:
		if r.Type != gjson.Number {
			return false
		}
		d, ok := parseDecimal(r.Raw)
		if !ok {
			return false
		}
		c := cmpDecimal(d, n.val.num)
		switch n.op {
		case opGt:
			return c > 0
		case opGte:
			return c >= 0
		case opLt:
			return c < 0
		}
		return c <= 0
	}
	return false
}

// equal reports whether a present JSON value equals the operand: same JSON
// type and same value.
func equal(r gjson.Result, v *scalar) bool {
	switch v.kind {
	case valString:
		return r.Type == gjson.String && r.Str == v.str
	case valBool:
		return (r.Type == gjson.True && v.b) || (r.Type == gjson.False && !v.b)
	case valNumber:
		if r.Type != gjson.Number {
			return false
		}
		d, ok := parseDecimal(r.Raw)
		return ok && cmpDecimal(d, v.num) == 0
	}
	return false
}

// filterKeys are the keys a filter node may have.
var filterKeys = map[string]bool{"path": true, "op": true, "value": true, "and": true, "or": true, "not": true}

// filterFields is Filter without its methods, for the decoders.
type filterFields Filter

// UnmarshalYAML decodes a filter node strictly: an unknown key is an
// error.
func (f *Filter) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind == yaml.AliasNode && n.Alias != nil {
		n = n.Alias
	}
	if n.Kind != yaml.MappingNode {
		return fmt.Errorf("line %d: a filter is a mapping such as {path: a.b, op: eq, value: 1}", n.Line)
	}
	var value *yaml.Node
	for i := 0; i+1 < len(n.Content); i += 2 {
		k := n.Content[i]
		if !filterKeys[k.Value] {
			return fmt.Errorf("line %d: unknown filter key %q (want path, op, value, and, or, not)", k.Line, k.Value)
		}
		if k.Value == "value" {
			value = n.Content[i+1]
		}
	}
	var v filterFields
	if err := n.Decode(&v); err != nil {
		return err
	}
	if value != nil {
		var err error
		if v.Value, err = yamlValue(value); err != nil {
			return err
		}
	}
	*f = Filter(v)
	f.prog = nil
	return nil
}

// yamlValue decodes a filter value, keeping what YAML would turn into a
// time.Time (value: 2024-03-01) as the string it was written as: JSON
// bodies carry timestamps as strings.
func yamlValue(n *yaml.Node) (any, error) {
	if n.Kind == yaml.AliasNode && n.Alias != nil {
		n = n.Alias
	}
	switch {
	case n.Kind == yaml.ScalarNode && n.ShortTag() == "!!timestamp":
		return n.Value, nil
	case n.Kind == yaml.SequenceNode:
		out := make([]any, len(n.Content))
		for i, c := range n.Content {
			v, err := yamlValue(c)
			if err != nil {
				return nil, err
			}
			out[i] = v
		}
		return out, nil
	}
	var v any
	err := n.Decode(&v)
	return v, err
}

// UnmarshalJSON decodes a filter node strictly (an unknown key is an
// error) and keeps numbers exact (json.Number), so 12345678901234567890
// does not become a float64.
func (f *Filter) UnmarshalJSON(b []byte) error {
	// Each level of nesting decodes its own bytes again: refuse deep
	// documents before that costs more than a few passes.
	if jsonlimit.Check(b, maxJSONDepth) != nil {
		return fmt.Errorf("filter nested deeper than %d levels", MaxFilterDepth)
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	dec.DisallowUnknownFields()
	var v filterFields
	if err := dec.Decode(&v); err != nil {
		return err
	}
	*f = Filter(v)
	f.prog = nil
	return nil
}

// maxJSONDepth is the deepest JSON nesting a valid filter can have: each
// filter level is an object and a list ({"and": [...]}), and an "in"
// value adds a list.
const maxJSONDepth = 2*MaxFilterDepth + 1
