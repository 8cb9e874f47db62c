package cli

// specfile.go reads the definitions of -f: JSON, or YAML with the keys of
// the configuration file, converted to the JSON the admin API takes.

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"path/filepath"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"
)

// maxSpecNodes bounds the values of a YAML definition, aliases expanded
// (a few aliases can otherwise stand for billions of values).
const maxSpecNodes = 1 << 20

// specIsYAML says whether the definition read from name ("stdin" for -)
// is YAML: by its extension (.yaml, .yml; .json is JSON), or else by its
// content: JSON starts with '{'.
func specIsYAML(name string, b []byte) bool {
	switch strings.ToLower(filepath.Ext(name)) {
	case ".yaml", ".yml":
		return true
	case ".json":
		return false
	}
	return len(b) > 0 && b[0] != '{' && b[0] != '['
}

// yamlToJSON converts one YAML document holding a mapping into a JSON
// object. Scalars keep their YAML type (a quoted "10" stays a string, an
// unquoted 10 is a number); keys must be strings.
func yamlToJSON(b []byte) (json.RawMessage, error) {
	dec := yaml.NewDecoder(bytes.NewReader(b))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		return nil, errors.New(strings.TrimPrefix(err.Error(), "yaml: "))
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); !errors.Is(err, io.EOF) {
		return nil, errors.New("holds more than one document (---): one definition per file")
	}
	n := &doc
	if n.Kind == yaml.DocumentNode && len(n.Content) == 1 {
		n = n.Content[0]
	}
	if n.Kind != yaml.MappingNode {
		return nil, errors.New("is not a mapping (key: value)")
	}
	budget := maxSpecNodes
	v, err := yamlValue(n, &budget, 0)
	if err != nil {
		return nil, err
	}
	return json.Marshal(v)
}

// yamlValue is the JSON value of n; budget counts the values left.
func yamlValue(n *yaml.Node, budget *int, depth int) (any, error) {
	*budget--
	if *budget < 0 || depth > 200 {
		return nil, errors.New("is too large or too deeply nested")
	}
	switch n.Kind {
	case yaml.AliasNode:
		return yamlValue(n.Alias, budget, depth+1)
	case yaml.MappingNode:
		m := make(map[string]any, len(n.Content)/2)
		for i := 0; i+1 < len(n.Content); i += 2 {
			k := n.Content[i]
			if k.Kind != yaml.ScalarNode {
				return nil, fmt.Errorf("line %d: a key is not a string", k.Line)
			}
			if k.Value == "<<" {
				return nil, fmt.Errorf("line %d: merge keys (<<) are not supported", k.Line)
			}
			v, err := yamlValue(n.Content[i+1], budget, depth+1)
			if err != nil {
				return nil, err
			}
			m[k.Value] = v
		}
		return m, nil
	case yaml.SequenceNode:
		s := make([]any, 0, len(n.Content))
		for _, c := range n.Content {
			v, err := yamlValue(c, budget, depth+1)
			if err != nil {
				return nil, err
			}
			s = append(s, v)
		}
		return s, nil
	case yaml.ScalarNode:
		switch n.ShortTag() {
		case "!!null":
			return nil, nil
		case "!!bool":
			var b bool
			if err := n.Decode(&b); err != nil {
				return nil, fmt.Errorf("line %d: %v", n.Line, err)
			}
			return b, nil
		case "!!int":
			if i, err := strconv.ParseInt(strings.ReplaceAll(n.Value, "_", ""), 0, 64); err == nil {
				return i, nil
			}
			var f float64
			if err := n.Decode(&f); err != nil {
				return nil, fmt.Errorf("line %d: a number out of range", n.Line)
			}
			return f, nil
		case "!!float":
			var f float64
			if err := n.Decode(&f); err != nil || math.IsInf(f, 0) || math.IsNaN(f) {
				return nil, fmt.Errorf("line %d: a number JSON cannot hold", n.Line)
			}
			return f, nil
		}
		// Strings, and timestamps and the like as written.
		return n.Value, nil
	}
	return nil, fmt.Errorf("line %d: unexpected YAML node", n.Line)
}
