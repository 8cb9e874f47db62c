package ingest

import (
	"errors"
	"math"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/tidwall/gjson"

	"hookd/internal/config"
	"hookd/internal/jsonlimit"
)

// Selector reads one metadata field from a request: a header, a query
// parameter, a field of the JSON body or a parameter of a form-encoded body.
type Selector struct {
	kind  string   // "header", "query", "json" or "form"
	name  string   // header, query or form parameter name
	path  []string // JSON path segments
	gpath string   // the same path, escaped for gjson
}

// ParseSelector parses "header:Name", "query:name", "json:a.b.c" or
// "form:name".
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
	case "query", "form":
		sel.name = arg
	case "json":
		sel.path = strings.Split(arg, ".")
		esc := make([]string, len(sel.path))
		for i, seg := range sel.path {
			esc[i] = gjson.Escape(seg)
		}
		sel.gpath = strings.Join(esc, ".")
	}
	return sel, nil
}

// IsZero reports whether the selector selects nothing.
func (s Selector) IsZero() bool { return s.kind == "" }

// NeedsJSON reports whether the selector reads the body.
func (s Selector) NeedsJSON() bool { return s.kind == "json" }

func init() {
	// Paths come from the configuration and are escaped, but a path is
	// never meant to run gjson's @modifiers.
	gjson.DisableModifiers = true
}

// errNotJSON is returned by a json selector when the body is not JSON.
var errNotJSON = errors.New("body is not valid JSON")

// message is a request as selectors see it; the body is validated as JSON
// at most once, on first use.
type message struct {
	header http.Header
	query  func() url.Values
	body   []byte
	// maxDepth bounds the nesting of body; 0 means jsonlimit.DefaultDepth.
	maxDepth int
	// depthChecked: the body's nesting is known to be within maxDepth.
	// The scan is a few per cent of ingest's CPU on a 1 KiB body; serve
	// has done it already for a source that reads JSON.
	depthChecked bool

	checked bool
	jsonErr error

	// form is the body read as application/x-www-form-urlencoded, on
	// first use; nil when it is not.
	form       url.Values
	formParsed bool
}

// checkDepth is jsonlimit.Check; tests count its calls.
var checkDepth = jsonlimit.Check

func (m *message) validJSON() error {
	if !m.checked {
		m.checked = true
		// The depth is checked first: gjson's validator recurses once
		// per level of nesting.
		var err error
		if !m.depthChecked {
			err = checkDepth(m.body, m.maxDepth)
		}
		if err != nil {
			m.jsonErr = err
		} else if !gjson.ValidBytes(m.body) {
			m.jsonErr = errNotJSON
		}
	}
	return m.jsonErr
}

// Select returns the selected value, "" when absent. The error is set only
// when a json selector meets a body that is not JSON; a form selector
// reads "" from a body that is not form-encoded. A repeated query or form
// parameter gives its first value.
func (s Selector) Select(m *message) (string, error) {
	switch s.kind {
	case "header":
		return m.header.Get(s.name), nil
	case "query":
		return m.query().Get(s.name), nil
	case "json":
		if err := m.validJSON(); err != nil {
			return "", err
		}
		return jsonlimit.Scalar(gjson.GetBytes(m.body, s.gpath)), nil
	case "form":
		if !m.formParsed {
			m.formParsed = true
			if f, err := url.ParseQuery(string(m.body)); err == nil {
				m.form = f
			}
		}
		return m.form.Get(s.name), nil
	}
	return "", nil
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
