package config

import (
	"errors"
	"fmt"
	"reflect"
	"regexp"
	"slices"
	"sort"
	"strings"

	"gopkg.in/yaml.v3"
)

// This file checks a YAML document against the Go type it decodes into,
// before it is decoded, so that a mistake is reported in the words of the
// file: the key path ("sources[0].verify"), what is wanted there and what
// was written ("want a list of methods (- type: …), got a mapping"), or
// the unknown key with the nearest valid one. Go type names never reach
// the user, and no value is quoted (a method's options hold secrets).

// keyChecker walks a node with the type it decodes into.
type keyChecker struct {
	// lines prefixes errors with "line N: " (the file; a definition sent
	// to the admin API has no lines worth naming).
	lines bool
	// extra are keys valid at the top level besides the fields of the
	// type (a verify method's type, a destination's shared keys).
	extra []string
}

// checkKeys reports the first key of n that no field of t takes and the
// first value whose kind t cannot hold, naming them by their key path
// under path.
func checkKeys(n *yaml.Node, t reflect.Type, path string, lines bool, extra ...string) error {
	if n == nil {
		return nil
	}
	k := keyChecker{lines: lines, extra: extra}
	return k.check(n, t, path, true)
}

func (k keyChecker) errorf(n *yaml.Node, path, format string, args ...any) error {
	var b strings.Builder
	if k.lines && n != nil && n.Line > 0 {
		fmt.Fprintf(&b, "line %d: ", n.Line)
	}
	if path != "" {
		b.WriteString(path)
		b.WriteString(": ")
	}
	fmt.Fprintf(&b, format, args...)
	return errors.New(b.String())
}

func joinKey(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

var (
	verifyType       = reflect.TypeOf(Verify{})
	destinationType  = reflect.TypeOf(Destination{})
	sourceType       = reflect.TypeOf(Source{})
	subscriptionType = reflect.TypeOf(Subscription{})
)

// destinationShared is the shape of Destination's shared keys, for the
// check (the kind's own keys are checked when the kind decodes them).
type destinationShared struct {
	Name        string         `yaml:"name"`
	Type        string         `yaml:"type"`
	Ordering    string         `yaml:"ordering"`
	HeadTimeout Duration       `yaml:"head_timeout"`
	Concurrency int            `yaml:"concurrency"`
	Rate        *Rate          `yaml:"rate"`
	Retry       map[string]any `yaml:"retry"`
}

var destinationSharedType = reflect.TypeOf(destinationShared{})

// listOf says what a list of t holds, for "want …" sentences.
func listOf(t reflect.Type) string {
	switch t {
	case verifyType:
		return "a list of methods (- type: …)"
	case sourceType:
		return "a list of sources (- name: …)"
	case destinationType:
		return "a list of destinations (- name: …, type: …)"
	case subscriptionType:
		return "a list of subscriptions (- destination: …)"
	}
	switch t.Kind() {
	case reflect.String:
		return "a list of strings ([a, b] or - a)"
	case reflect.Struct, reflect.Map:
		return "a list of mappings (- key: value)"
	}
	return "a list ([a, b] or - a)"
}

// got names what a node is, never its value.
func got(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping (key: value)"
	case yaml.SequenceNode:
		return "a list"
	case yaml.ScalarNode:
		switch n.ShortTag() {
		case "!!int", "!!float":
			return "a number"
		case "!!bool":
			return "true or false"
		case "!!null":
			return "nothing"
		}
		return "a string"
	}
	return "an alias"
}

func (k keyChecker) check(n *yaml.Node, t reflect.Type, path string, top bool) error {
	switch n.Kind {
	case yaml.DocumentNode:
		for _, c := range n.Content {
			if err := k.check(c, t, path, top); err != nil {
				return err
			}
		}
		return nil
	case yaml.AliasNode:
		return nil // checked where it is defined
	}
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if n.Kind == yaml.ScalarNode && n.ShortTag() == "!!null" {
		return nil // yaml leaves the zero value
	}
	switch t {
	case verifyType:
		if n.Kind != yaml.MappingNode {
			return k.errorf(n, path, "want a method (type: …, and its options), got %s", got(n))
		}
		for i := 0; i+1 < len(n.Content); i += 2 {
			if key, v := n.Content[i], n.Content[i+1]; key.Value == "type" && (v.Kind != yaml.ScalarNode || v.ShortTag() != "!!str") {
				return k.errorf(v, joinKey(path, "type"), "want the method's name (such as hmac or github), got %s", got(v))
			}
		}
		return nil // the method checks its options when it is built
	case destinationType:
		if n.Kind != yaml.MappingNode {
			return k.errorf(n, path, "want a destination (name: …, type: …, and its options), got %s", got(n))
		}
		shared := &yaml.Node{Kind: yaml.MappingNode, Tag: "!!map", Line: n.Line}
		for i := 0; i+1 < len(n.Content); i += 2 {
			if destinationKeys[n.Content[i].Value] {
				shared.Content = append(shared.Content, n.Content[i], n.Content[i+1])
			}
		}
		return k.check(shared, destinationSharedType, path, false) // the kind checks its options when it is opened
	}
	if reflect.PointerTo(t).Implements(unmarshalerType) {
		// The type reads its own syntax; its error gains the key path.
		err := n.Decode(reflect.New(t).Interface())
		if err == nil {
			return nil
		}
		msg := redactValues(err).Error()
		msg = strings.TrimPrefix(msg, "yaml: unmarshal errors:\n  ")
		if m := lineNumber.FindStringSubmatch(msg); m != nil {
			msg = msg[len(m[0]):]
		}
		return k.errorf(n, path, "%s", msg)
	}
	switch t.Kind() {
	case reflect.Struct:
		if n.Kind != yaml.MappingNode {
			return k.errorf(n, path, "want a mapping (key: value) with the keys %s, got %s", strings.Join(keysOf(t, nil), ", "), got(n))
		}
		fields := map[string]reflect.Type{}
		yamlFields(t, fields)
		for i := 0; i+1 < len(n.Content); i += 2 {
			key := n.Content[i]
			ft, ok := fields[key.Value]
			if !ok && top && slices.Contains(k.extra, key.Value) {
				continue
			}
			if !ok {
				var extra []string
				if top {
					extra = k.extra
				}
				return k.errorf(key, path, "%s", unknownKey(key.Value, keysOf(t, extra)))
			}
			if err := k.check(n.Content[i+1], ft, joinKey(path, key.Value), false); err != nil {
				return err
			}
		}
	case reflect.Slice:
		if n.Kind != yaml.SequenceNode {
			if t.Elem().Kind() == reflect.Uint8 && n.Kind == yaml.ScalarNode {
				return nil // []byte takes a string
			}
			return k.errorf(n, path, "want %s, got %s", listOf(t.Elem()), got(n))
		}
		for i, c := range n.Content {
			if err := k.check(c, t.Elem(), fmt.Sprintf("%s[%d]", path, i), false); err != nil {
				return err
			}
		}
	case reflect.Map:
		if n.Kind != yaml.MappingNode {
			return k.errorf(n, path, "want a mapping (key: value), got %s", got(n))
		}
		for i := 0; i+1 < len(n.Content); i += 2 {
			if err := k.check(n.Content[i+1], t.Elem(), joinKey(path, n.Content[i].Value), false); err != nil {
				return err
			}
		}
	case reflect.String:
		if n.Kind != yaml.ScalarNode {
			return k.errorf(n, path, "want a string, got %s", got(n))
		}
	case reflect.Bool:
		if n.Kind != yaml.ScalarNode || n.Decode(new(bool)) != nil {
			return k.errorf(n, path, "want true or false, got %s", got(n))
		}
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		if n.Kind != yaml.ScalarNode || n.Decode(reflect.New(t).Interface()) != nil {
			if n.Kind == yaml.ScalarNode && n.ShortTag() == "!!int" {
				return k.errorf(n, path, "number out of range")
			}
			return k.errorf(n, path, "want a whole number, got %s", got(n))
		}
	case reflect.Float32, reflect.Float64:
		if n.Kind != yaml.ScalarNode || n.Decode(reflect.New(t).Interface()) != nil {
			return k.errorf(n, path, "want a number, got %s", got(n))
		}
	}
	return nil
}

var lineNumber = regexp.MustCompile(`^line \d+: `)

// keysOf lists the YAML keys of struct type t and extra, sorted.
func keysOf(t reflect.Type, extra []string) []string {
	fields := map[string]reflect.Type{}
	yamlFields(t, fields)
	keys := slices.Clone(extra)
	for f := range fields {
		keys = append(keys, f)
	}
	sort.Strings(keys)
	return slices.Compact(keys)
}

// unknownKey says that key is not valid among keys, with the nearest
// valid key when one is close enough to be a misspelling, or else the
// valid keys.
func unknownKey(key string, keys []string) string {
	if s := Suggest(key, keys); s != "" {
		return fmt.Sprintf("unknown key %q (did you mean %q?)", key, s)
	}
	return fmt.Sprintf("unknown key %q (valid keys here: %s)", key, strings.Join(keys, ", "))
}

// Suggest returns the candidate nearest to word by edit distance (with
// transpositions, ignoring case, '-' read as '_') when it is near enough
// to be a misspelling of it, or "".
func Suggest(word string, candidates []string) string {
	norm := func(s string) string { return strings.ReplaceAll(strings.ToLower(s), "-", "_") }
	w := norm(word)
	best, bestD := "", -1
	for _, c := range candidates {
		d := editDistance(w, norm(c))
		if bestD < 0 || d < bestD || d == bestD && c < best {
			best, bestD = c, d
		}
	}
	// A quarter of the longer word, at least 1 and at most 3: "dedup_window"
	// is "dedupe_window", "retyr" is "retry", but "url" is not "ttl".
	limit := max(1, min(3, max(len(w), len(norm(best)))/4))
	if bestD < 0 || bestD > limit {
		return ""
	}
	return best
}

// editDistance is the optimal string alignment distance of a and b:
// insertions, deletions, substitutions and transpositions of adjacent
// bytes each count 1. Keys are short (this is quadratic).
func editDistance(a, b string) int {
	if len(a) > 64 || len(b) > 64 {
		if a == b {
			return 0
		}
		return 1 << 10
	}
	d := make([][]int, len(a)+1)
	for i := range d {
		d[i] = make([]int, len(b)+1)
		d[i][0] = i
	}
	for j := range d[0] {
		d[0][j] = j
	}
	for i := 1; i <= len(a); i++ {
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			d[i][j] = min(d[i-1][j]+1, d[i][j-1]+1, d[i-1][j-1]+cost)
			if i > 1 && j > 1 && a[i-1] == b[j-2] && a[i-2] == b[j-1] {
				d[i][j] = min(d[i][j], d[i-2][j-2]+1)
			}
		}
	}
	return d[len(a)][len(b)]
}

var typeError = regexp.MustCompile("cannot unmarshal !!(\\w+)(?: [^ ]+)? into \\S+")

// yamlError rewrites an error of yaml's decoder in the file's words: no
// Go type, no value. The checks above report nearly every mistake first;
// this is the net for the rest.
func yamlError(err error) error {
	msg := redactValues(err).Error()
	msg = strings.TrimPrefix(msg, "yaml: unmarshal errors:\n  ")
	msg = strings.ReplaceAll(msg, "\n  ", "; ")
	msg = typeError.ReplaceAllStringFunc(msg, func(s string) string {
		m := typeError.FindStringSubmatch(s)
		what := map[string]string{"map": "a mapping", "seq": "a list", "str": "a string", "int": "a number", "float": "a number", "bool": "true or false"}[m[1]]
		if what == "" {
			what = "this value"
		}
		return what + " is not valid here"
	})
	return errors.New(msg)
}
