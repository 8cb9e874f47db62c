package ingest

import (
	"bytes"
	"encoding/json"
	"errors"
	"math"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"hookd/internal/config"
	"hookd/internal/jsonlimit"
	"hookd/internal/jsonlimit/jsonlimittest"
)

func newMessage(header http.Header, rawQuery string, body string) *message {
	q, _ := url.ParseQuery(rawQuery)
	return &message{header: header, body: []byte(body), query: func() url.Values { return q }}
}

func TestParseSelector(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in       string
		want     Selector
		ok       bool
		zero     bool
		needJSON bool
	}{
		{in: "", want: Selector{}, ok: true, zero: true},
		{in: "header:x-request-id", want: Selector{kind: "header", name: "X-Request-Id"}, ok: true},
		{in: "query:id", want: Selector{kind: "query", name: "id"}, ok: true},
		{in: "query:Id", want: Selector{kind: "query", name: "Id"}, ok: true},
		{in: "json:id", want: Selector{kind: "json", path: []string{"id"}}, ok: true, needJSON: true},
		{in: "json:payload.details.0.x", want: Selector{kind: "json", path: []string{"payload", "details", "0", "x"}}, ok: true, needJSON: true},
		{in: "json:", ok: false},
		{in: "json:a..b", ok: false},
		{in: "json:.a", ok: false},
		{in: "header:", ok: false},
		{in: "xml:a", ok: false},
		{in: "id", ok: false},
	}
	for _, tt := range tests {
		got, err := ParseSelector(tt.in)
		if !tt.ok {
			if err == nil {
				t.Errorf("ParseSelector(%q): got %+v, nil; want an error", tt.in, got)
			}
			continue
		}
		if err != nil {
			t.Errorf("ParseSelector(%q): got error %v, want nil", tt.in, err)
			continue
		}
		if got.kind != tt.want.kind || got.name != tt.want.name || strings.Join(got.path, "\x00") != strings.Join(tt.want.path, "\x00") {
			t.Errorf("ParseSelector(%q): got %+v, want %+v", tt.in, got, tt.want)
		}
		if got.IsZero() != tt.zero {
			t.Errorf("ParseSelector(%q).IsZero(): got %v, want %v", tt.in, got.IsZero(), tt.zero)
		}
		if got.NeedsJSON() != tt.needJSON {
			t.Errorf("ParseSelector(%q).NeedsJSON(): got %v, want %v", tt.in, got.NeedsJSON(), tt.needJSON)
		}
	}
}

const selectBody = `{
  "id": "evt-1",
  "payload": {
    "messageId": "m-42",
    "details": {"messageType": "event.claim.created.v1", "claimRef": "CLM-7"},
    "items": [{"sku": "a"}, {"sku": "b", "qty": 3}],
    "matrix": [[1, 2], [3, 4]]
  },
  "big": 156474848484,
  "price": 1.50,
  "exp": 1e3,
  "neg": -0.0,
  "huge": 123456789012345678901234567890,
  "yes": true,
  "no": false,
  "nothing": null,
  "obj": {"a": 1},
  "arr": [1, 2],
  "empty": "",
  "unicode": "caf\u00e9 \ud83d\ude00",
  "escaped": "a\"b\\c\n",
  "0": "zero-key",
  "dup": 1, "dup": 2
}`

func TestSelectJSON(t *testing.T) {
	t.Parallel()
	tests := []struct {
		path string
		want string
	}{
		{"id", "evt-1"},
		{"payload.messageId", "m-42"},
		{"payload.details.messageType", "event.claim.created.v1"},
		{"payload.details.claimRef", "CLM-7"},
		{"payload.items.0.sku", "a"},
		{"payload.items.1.sku", "b"},
		{"payload.items.1.qty", "3"},
		{"payload.matrix.1.0", "3"},
		{"payload.items.2.sku", ""},
		{"payload.items.-1.sku", ""},
		{"payload.items.x", ""},
		{"big", "156474848484"},
		{"price", "1.50"},
		{"exp", "1e3"},
		{"neg", "-0.0"},
		{"huge", "123456789012345678901234567890"},
		{"yes", "true"},
		{"no", "false"},
		{"nothing", ""},
		{"obj", ""},
		{"arr", ""},
		{"payload", ""},
		{"empty", ""},
		{"unicode", "café 😀"},
		{"escaped", "a\"b\\c\n"},
		{"0", "zero-key"},
		{"dup", "1"}, // a repeated key: the first occurrence counts
		{"missing", ""},
		{"id.deeper", ""},
		{"yes.x", ""},
		{"Id", ""}, // keys are case-sensitive
	}
	for _, tt := range tests {
		t.Run(strings.ReplaceAll(tt.path, ".", "_"), func(t *testing.T) {
			t.Parallel()
			sel, err := ParseSelector("json:" + tt.path)
			if err != nil {
				t.Fatal(err)
			}
			got, err := sel.Select(newMessage(nil, "", selectBody))
			if err != nil || got != tt.want {
				t.Errorf("Select(json:%s): got %q, %v; want %q, nil", tt.path, got, err, tt.want)
			}
		})
	}
}

func TestSelectJSONTopLevel(t *testing.T) {
	t.Parallel()
	tests := []struct {
		body, path, want string
	}{
		{`["a","b"]`, "1", "b"},
		{`[{"id":"x"}]`, "0.id", "x"},
		{`"just a string"`, "id", ""},
		{`42`, "id", ""},
		{`null`, "id", ""},
		{"  {\"id\": \"ws\"}  \n", "id", "ws"},
	}
	for _, tt := range tests {
		sel, _ := ParseSelector("json:" + tt.path)
		got, err := sel.Select(newMessage(nil, "", tt.body))
		if err != nil || got != tt.want {
			t.Errorf("Select(json:%s) on %q: got %q, %v; want %q, nil", tt.path, tt.body, got, err, tt.want)
		}
	}
}

// A body that is not exactly one JSON value is "not JSON" for json
// selectors, and only for them.
func TestSelectNotJSON(t *testing.T) {
	t.Parallel()
	bodies := []struct{ name, body string }{
		{"Empty", ""},
		{"Text", "hello"},
		{"Form", "id=1&type=x"},
		{"Truncated", `{"id": "x"`},
		{"SingleQuotes", `{'id': 'x'}`},
		{"TwoValues", `{"id":"x"} {"id":"y"}`},
		{"TrailingNumber", `{"id":"x"} 2`},
		{"TrailingGarbage", `{"id":"x"}garbage`},
		{"TrailingBrace", `{"id":"x"}}`},
		{"TrailingBracket", `{"id":"x"}]`},
		{"TrailingComma", `{"id":"x"},`},
		{"TrailingSpaceGarbage", "{\"id\":\"x\"}\n#"},
		{"BOM", "\xef\xbb\xbf{\"id\":\"x\"}"},
	}
	for _, tt := range bodies {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			h := http.Header{"X-Id": {"h1"}}
			m := newMessage(h, "id=q1", tt.body)
			js, _ := ParseSelector("json:id")
			if got, err := js.Select(m); !errors.Is(err, errNotJSON) {
				t.Errorf("Select(json:id) on %q: got %q, %v; want \"\", errNotJSON", tt.body, got, err)
			}
			hs, _ := ParseSelector("header:X-Id")
			if got, err := hs.Select(m); err != nil || got != "h1" {
				t.Errorf("Select(header:X-Id) with body %q: got %q, %v; want h1, nil", tt.body, got, err)
			}
			qs, _ := ParseSelector("query:id")
			if got, err := qs.Select(m); err != nil || got != "q1" {
				t.Errorf("Select(query:id) with body %q: got %q, %v; want q1, nil", tt.body, got, err)
			}
		})
	}
}

func TestSelectForm(t *testing.T) {
	t.Parallel()
	tests := []struct {
		sel, body, want string
	}{
		{"form:MessageStatus", "MessageSid=SM1&MessageStatus=delivered", "delivered"},
		{"form:To", "To=%2B18005551212", "+18005551212"},
		{"form:Body", "Body=a+b", "a b"},
		{"form:multi", "multi=one&multi=two", "one"},
		{"form:messagestatus", "MessageStatus=delivered", ""}, // names are case-sensitive
		{"form:missing", "a=1", ""},
		{"form:a", "a=%zz&b=1", ""}, // not form-encoded: nothing
		{"form:a", `{"a":"1"}`, ""},
	}
	for _, tt := range tests {
		sel, err := ParseSelector(tt.sel)
		if err != nil {
			t.Fatal(err)
		}
		got, err := sel.Select(newMessage(http.Header{}, "", tt.body))
		if err != nil || got != tt.want {
			t.Errorf("Select(%s) of %q: got %q, %v; want %q, nil", tt.sel, tt.body, got, err, tt.want)
		}
	}
}

func TestSelectHeaderAndQuery(t *testing.T) {
	t.Parallel()
	h := http.Header{}
	h.Add("X-Event-Id", "first")
	h.Add("X-Event-Id", "second")
	h.Set("Idempotency-Key", "idem-1")
	tests := []struct {
		sel, want string
	}{
		{"header:X-Event-Id", "first"},
		{"header:x-event-id", "first"},
		{"header:X-EVENT-ID", "first"},
		{"header:idempotency-key", "idem-1"},
		{"header:X-Missing", ""},
		{"query:id", "q-1"},
		{"query:type", "a b"},
		{"query:ID", ""}, // query names are case-sensitive
		{"query:empty", ""},
		{"query:multi", "one"},
		{"query:missing", ""},
	}
	for _, tt := range tests {
		sel, err := ParseSelector(tt.sel)
		if err != nil {
			t.Fatal(err)
		}
		got, err := sel.Select(newMessage(h, "id=q-1&type=a+b&empty=&multi=one&multi=two", "not json"))
		if err != nil || got != tt.want {
			t.Errorf("Select(%s): got %q, %v; want %q, nil", tt.sel, got, err, tt.want)
		}
	}
}

func TestSelectZero(t *testing.T) {
	t.Parallel()
	got, err := Selector{}.Select(newMessage(nil, "", "not json"))
	if got != "" || err != nil {
		t.Errorf("Selector{}.Select: got %q, %v; want \"\", nil", got, err)
	}
}

// The body is validated once, however many json selectors read it.
func TestMessageValidatesOnce(t *testing.T) {
	t.Parallel()
	m := newMessage(nil, "", `not json`)
	a, _ := ParseSelector("json:a")
	if _, err := a.Select(m); !errors.Is(err, errNotJSON) {
		t.Fatalf("json:a on a non-JSON body: got %v, want errNotJSON", err)
	}
	m.body = []byte(`{"a":"1"}`)
	if _, err := a.Select(m); !errors.Is(err, errNotJSON) {
		t.Errorf("json:a after the first check: got %v, want the first verdict (errNotJSON)", err)
	}
}

func TestParseTimestamp(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		in   string
		want time.Time
		ok   bool
	}{
		{"RFC3339Z", "2024-03-01T12:34:56Z", time.Date(2024, 3, 1, 12, 34, 56, 0, time.UTC), true},
		{"RFC3339Offset", "2024-03-01T14:34:56+02:00", time.Date(2024, 3, 1, 12, 34, 56, 0, time.UTC), true},
		{"RFC3339NegativeOffset", "2024-03-01T07:34:56-05:00", time.Date(2024, 3, 1, 12, 34, 56, 0, time.UTC), true},
		{"RFC3339Fraction", "2024-03-01T12:34:56.123456789Z", time.Date(2024, 3, 1, 12, 34, 56, 123456789, time.UTC), true},
		{"RFC3339Millis", "2024-03-01T12:34:56.5+01:00", time.Date(2024, 3, 1, 11, 34, 56, 500_000_000, time.UTC), true},
		{"Spaces", "  2024-03-01T12:34:56Z\n", time.Date(2024, 3, 1, 12, 34, 56, 0, time.UTC), true},
		{"EpochSeconds", "1709296496", time.Unix(1709296496, 0).UTC(), true},
		{"EpochZero", "0", time.Unix(0, 0).UTC(), true},
		{"EpochFractionalSeconds", "1709296496.25", time.Unix(1709296496, 250_000_000).UTC(), true},
		{"EpochMicroFraction", "1709296496.000001", time.Unix(1709296496, 1000).UTC(), true},
		{"EpochMillis", "1709296496123", time.Unix(1709296496, 123_000_000).UTC(), true},
		{"EpochMillisBoundary", "100000000000", time.Unix(100000000, 0).UTC(), true},
		{"EpochSecondsBelowBoundary", "99999999", time.Unix(99999999, 0).UTC(), true},
		{"EpochExponent", "1.7e9", time.Unix(1_700_000_000, 0).UTC(), true},
		{"Negative", "-1", time.Time{}, false},
		{"NegativeMillis", "-1709296496123", time.Time{}, false},
		{"NaN", "NaN", time.Time{}, false},
		{"Inf", "Inf", time.Time{}, false},
		{"NegInf", "-Inf", time.Time{}, false},
		{"Huge", "1e300", time.Time{}, false},
		{"HugeMillis", "100000000000000000", time.Time{}, false},
		{"Garbage", "yesterday", time.Time{}, false},
		{"DateOnly", "2024-03-01", time.Time{}, false},
		{"NoZone", "2024-03-01T12:34:56", time.Time{}, false},
		{"Hex", "0x10", time.Time{}, false},
		{"Empty", "", time.Time{}, false},
		{"Blank", "   ", time.Time{}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, ok := ParseTimestamp(tt.in)
			if ok != tt.ok || !got.Equal(tt.want) {
				t.Errorf("ParseTimestamp(%q): got %s, %v; want %s, %v", tt.in, got, ok, tt.want, tt.ok)
			}
			if ok && got.Location() != time.UTC {
				t.Errorf("ParseTimestamp(%q): got location %s, want UTC", tt.in, got.Location())
			}
		})
	}
}

// ParseTimestamp's own comment says "beyond year 5000: not a timestamp";
// and negative epoch values are refused, so nothing before 1970 either.
func TestParseTimestampRange(t *testing.T) {
	t.Parallel()
	for _, in := range []string{
		"99999999999",          // epoch seconds just below the ms threshold: year 5138
		"99999999999999",       // epoch ms: year 5138
		"9999-12-31T23:59:59Z", // RFC 3339, year 9999
		"0001-01-01T00:00:00Z", // RFC 3339, year 1
		"1969-12-31T23:59:59Z", // RFC 3339, before the epoch
	} {
		if got, ok := ParseTimestamp(in); ok && (got.Year() < 1970 || got.Year() > 5000) {
			t.Errorf("ParseTimestamp(%q): got %s, true; want false (outside 1970..5000)", in, got)
		}
	}
}

// refSelect reads one JSON path from a document decoded by encoding/json
// with UseNumber: found is false when the path leads nowhere or to an
// object, an array or null.
func refSelect(v any, path []string) (val any, found bool) {
	for _, seg := range path {
		switch x := v.(type) {
		case map[string]any:
			var ok bool
			if v, ok = x[seg]; !ok {
				return nil, false
			}
		case []any:
			i, err := strconv.Atoi(seg)
			if err != nil || i < 0 || i >= len(x) {
				return nil, false
			}
			v = x[i]
		default:
			return nil, false
		}
	}
	switch v.(type) {
	case string, json.Number, bool:
		return v, true
	}
	return nil, false
}

// refSelectFirst is the reference for FuzzSelectJSON: it walks the tokens
// of the value dec is at and returns the scalar at path, the first
// occurrence of a repeated object key winning (as hookd documents).
func refSelectFirst(dec *json.Decoder, path []string) (val any, found bool, err error) {
	if len(path) == 0 {
		var v any
		if err := dec.Decode(&v); err != nil {
			return nil, false, err
		}
		switch v.(type) {
		case string, json.Number, bool:
			return v, true, nil
		}
		return nil, false, nil
	}
	tok, err := dec.Token()
	if err != nil {
		return nil, false, err
	}
	skip := func() error { var raw json.RawMessage; return dec.Decode(&raw) }
	switch tok {
	case json.Delim('{'):
		seen := false
		for dec.More() {
			k, err := dec.Token()
			if err != nil {
				return nil, false, err
			}
			if k == path[0] && !seen {
				seen = true
				if val, found, err = refSelectFirst(dec, path[1:]); err != nil {
					return nil, false, err
				}
			} else if err := skip(); err != nil {
				return nil, false, err
			}
		}
		_, err = dec.Token()
		return val, found, err
	case json.Delim('['):
		// An all-digit segment is an index into an array ("00" is 0).
		idx, aerr := strconv.Atoi(path[0])
		if strings.Trim(path[0], "0123456789") != "" {
			aerr = strconv.ErrSyntax
		}
		for i := 0; dec.More(); i++ {
			if aerr == nil && i == idx {
				if val, found, err = refSelectFirst(dec, path[1:]); err != nil {
					return nil, false, err
				}
			} else if err := skip(); err != nil {
				return nil, false, err
			}
		}
		_, err = dec.Token()
		return val, found, err
	}
	return nil, false, nil
}

func FuzzSelectJSON(f *testing.F) {
	f.Add([]byte(selectBody), "payload.items.1.qty")
	f.Add([]byte(`{"a":{"b":[1,"x",true,null]}}`), "a.b.1")
	f.Add([]byte(`[0.10, 1e400]`), "1")
	f.Add([]byte(`{"a":"\ud800"}`), "a")
	f.Add([]byte(``), "a")
	f.Add([]byte(`{"":{"":""}}`), "a")
	for _, s := range jsonlimittest.DeepSeeds() {
		f.Add([]byte(s), "a")
	}
	f.Fuzz(func(t *testing.T, data []byte, path string) {
		sel, err := ParseSelector("json:" + path)
		if err != nil {
			return
		}
		got, err := sel.Select(&message{body: data})
		var de *jsonlimit.DepthError
		if jsonlimit.Depth(data) > jsonlimit.DefaultDepth {
			if !errors.As(err, &de) || got != "" {
				t.Fatalf("Select(json:%s) on a body nested %d deep: got %q, %v; want a *jsonlimit.DepthError", path, jsonlimit.Depth(data), got, err)
			}
			return
		}
		if !json.Valid(data) {
			if !errors.Is(err, errNotJSON) {
				t.Fatalf("Select(json:%s) on invalid JSON %q: got %q, %v; want errNotJSON", path, data, got, err)
			}
			return
		}
		if err != nil {
			t.Fatalf("Select(json:%s) on valid JSON %q: got error %v, want nil", path, data, err)
		}
		dec := json.NewDecoder(bytes.NewReader(data))
		dec.UseNumber()
		want, found, err := refSelectFirst(dec, sel.path)
		if err != nil {
			t.Fatalf("json.Valid(%q) but the reference walk failed: %v", data, err)
		}
		if !found {
			if got != "" {
				t.Fatalf("Select(json:%s) on %q: got %q, want \"\" (absent, object, array or null)", path, data, got)
			}
			return
		}
		switch w := want.(type) {
		case string:
			if got != w {
				t.Fatalf("Select(json:%s) on %q: got %q, want %q", path, data, got, w)
			}
		case bool:
			if got != strconv.FormatBool(w) {
				t.Fatalf("Select(json:%s) on %q: got %q, want %v", path, data, got, w)
			}
		case json.Number:
			// A number is kept as written: the same text as in the body,
			// itself a JSON number.
			var n json.Number
			if got != w.String() || json.Unmarshal([]byte(got), &n) != nil || !bytes.Contains(data, []byte(got)) {
				t.Fatalf("Select(json:%s) on %q: got %q, want the number %s as written", path, data, got, w)
			}
			if f, err := strconv.ParseFloat(got, 64); err != nil && !errors.Is(err, strconv.ErrRange) {
				t.Fatalf("Select(json:%s) on %q: got %q, not a number (%v)", path, data, got, err)
			} else if wf, _ := strconv.ParseFloat(w.String(), 64); f != wf && !math.IsNaN(f) {
				t.Fatalf("Select(json:%s) on %q: got %q = %v, want %v", path, data, got, f, wf)
			}
		}
	})
}

func FuzzParseTimestamp(f *testing.F) {
	for _, s := range []string{
		"2024-03-01T12:34:56Z", "2024-03-01T14:34:56.123+02:00", "1709296496",
		"1709296496123", "1709296496.5", "-1", "NaN", "1e300", "", "abc",
	} {
		f.Add(s)
	}
	min := time.Date(1970, 1, 1, 0, 0, 0, 0, time.UTC)
	max := time.Date(5001, 1, 1, 0, 0, 0, 0, time.UTC)
	f.Fuzz(func(t *testing.T, s string) {
		got, ok := ParseTimestamp(s)
		if !ok {
			if !got.IsZero() {
				t.Fatalf("ParseTimestamp(%q): got %s, false; want the zero time with false", s, got)
			}
			return
		}
		if got.Before(min) || !got.Before(max) {
			t.Fatalf("ParseTimestamp(%q): got %s, true; want a time within years 1970..5000", s, got)
		}
		if got.Location() != time.UTC {
			t.Fatalf("ParseTimestamp(%q): got location %s, want UTC", s, got.Location())
		}
	})
}

func FuzzParseSelector(f *testing.F) {
	for _, s := range []string{
		"", "header:X-Id", "query:id", "json:a.b.0", "json:", "json:a..b", "xml:a", ":", "header:",
		"json:.", "header:bad name", "json:a.b.c.d.e.f.g.h",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		sel, err := ParseSelector(s)
		if s == "" {
			if err != nil || !sel.IsZero() {
				t.Fatalf("ParseSelector(\"\"): got %+v, %v; want the zero selector, nil", sel, err)
			}
			return
		}
		if cerr := config.ValidSelector(s); (err == nil) != (cerr == nil) {
			t.Fatalf("ParseSelector(%q) error %v, but config.ValidSelector error %v: they must agree", s, err, cerr)
		}
		if err != nil {
			if !sel.IsZero() {
				t.Fatalf("ParseSelector(%q): got %+v with error %v; want the zero selector", s, sel, err)
			}
			return
		}
		kind, arg, _ := strings.Cut(s, ":")
		if sel.kind != kind || sel.IsZero() {
			t.Fatalf("ParseSelector(%q): got kind %q, want %q", s, sel.kind, kind)
		}
		switch kind {
		case "json":
			if !sel.NeedsJSON() || strings.Join(sel.path, ".") != arg {
				t.Fatalf("ParseSelector(%q): got path %q, want %q", s, sel.path, arg)
			}
			for _, seg := range sel.path {
				if seg == "" {
					t.Fatalf("ParseSelector(%q): got an empty path segment in %q", s, sel.path)
				}
			}
		case "header", "query":
			if sel.NeedsJSON() || sel.name == "" {
				t.Fatalf("ParseSelector(%q): got %+v, want a named %s selector", s, sel, kind)
			}
			// Selecting never panics and never fails for header/query
			// selectors, whatever the body.
			h := http.Header{}
			h.Set(arg, "v")
			q := url.Values{arg: {"v"}}
			got, err := sel.Select(&message{header: h, query: func() url.Values { return q }, body: []byte("not json")})
			if err != nil || got != "v" {
				t.Fatalf("ParseSelector(%q).Select: got %q, %v; want v, nil", s, got, err)
			}
		}
	})
}
