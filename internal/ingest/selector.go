package ingest

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"math"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"hookd/internal/config"
)

// Selector reads one metadata field from a request: a header, a query
// parameter or a field of the JSON body.
type Selector struct {
	kind string   // "header", "query" or "json"
	name string   // header or query parameter name
	path []string // JSON path segments
}

// ParseSelector parses "header:Name", "query:name" or "json:a.b.c".
// An empty string is the zero Selector, which selects nothing.
func ParseSelector(s string) (Selector, error) {
	if s == "" {
		return Selector{}, nil
	}
	if err := config.ValidSelector(s); err != nil {
		return Selector{}, err
	}
	kind, arg, _ := strings.Cut(s, ":")
	sel := Selector{kind: kind}
	switch kind {
	case "header":
		sel.name = http.CanonicalHeaderKey(arg)
	case "query":
		sel.name = arg
	case "json":
		sel.path = strings.Split(arg, ".")
	}
	return sel, nil
}

// IsZero reports whether the selector selects nothing.
func (s Selector) IsZero() bool { return s.kind == "" }

// NeedsJSON reports whether the selector reads the body.
func (s Selector) NeedsJSON() bool { return s.kind == "json" }

// errNotJSON is returned by a json selector when the body is not JSON.
var errNotJSON = errors.New("body is not valid JSON")

// message is a request as selectors see it; the body is parsed at most
// once, on first use.
type message struct {
	header http.Header
	query  func() url.Values
	body   []byte

	parsed  bool
	doc     any
	jsonErr error
}

func (m *message) json() (any, error) {
	if !m.parsed {
		m.parsed = true
		dec := json.NewDecoder(bytes.NewReader(m.body))
		dec.UseNumber()
		if err := dec.Decode(&m.doc); err != nil {
			m.jsonErr = errNotJSON
		} else if _, err := dec.Token(); err != io.EOF {
			m.jsonErr = errNotJSON // trailing data, valid or not
		}
	}
	return m.doc, m.jsonErr
}

// Select returns the selected value, "" when absent. The error is set only
// when a json selector meets a body that is not JSON.
func (s Selector) Select(m *message) (string, error) {
	switch s.kind {
	case "header":
		return m.header.Get(s.name), nil
	case "query":
		return m.query().Get(s.name), nil
	case "json":
		doc, err := m.json()
		if err != nil {
			return "", err
		}
		return jsonPath(doc, s.path), nil
	}
	return "", nil
}

// jsonPath walks path through objects (by key) and arrays (by index) and
// renders a scalar at its end: strings as they are, numbers as written,
// booleans as true/false. Objects, arrays, null and a missing path are "".
func jsonPath(v any, path []string) string {
	for _, seg := range path {
		switch x := v.(type) {
		case map[string]any:
			v = x[seg]
		case []any:
			i, err := strconv.Atoi(seg)
			if err != nil || i < 0 || i >= len(x) {
				return ""
			}
			v = x[i]
		default:
			return ""
		}
	}
	switch x := v.(type) {
	case string:
		return x
	case json.Number:
		return x.String()
	case bool:
		return strconv.FormatBool(x)
	}
	return ""
}

// ParseTimestamp reads an event timestamp: RFC 3339, or a number of epoch
// seconds (milliseconds when ≥ 10^11), possibly with a fraction.
func ParseTimestamp(s string) (time.Time, bool) {
	s = strings.TrimSpace(s)
	if s == "" {
		return time.Time{}, false
	}
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return inRange(t.UTC())
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil || math.IsNaN(f) || math.IsInf(f, 0) || f < 0 {
		return time.Time{}, false
	}
	if f >= 1e11 {
		f /= 1000
	}
	if f >= maxTimestamp {
		return time.Time{}, false
	}
	sec, frac := math.Modf(f)
	return inRange(time.Unix(int64(sec), int64(math.Round(frac*1e6))*1000).UTC())
}

// maxTimestamp is 5001-01-01T00:00:00Z in epoch seconds: later values are
// not event timestamps.
const maxTimestamp = 95649120000

func inRange(t time.Time) (time.Time, bool) {
	if t.Unix() < 0 || t.Unix() >= maxTimestamp {
		return time.Time{}, false
	}
	return t, true
}
