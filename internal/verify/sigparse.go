package verify

import (
	"bytes"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"reflect"
	"strconv"
	"strings"
	"time"
)

// This file holds the parsers of untrusted input used by the signature
// methods (hmac, digest, public_key and the presets): signature headers in
// their three shapes, signature encodings, signature timestamps and the
// JSON comparison behind the covers option; and the parser of the signed
// template, which comes from the configuration but is rendered with
// request data. Each has a FuzzXxx in sigparse_test.go.

// Bounds applied before any cryptography, so that a hostile header costs
// a few microseconds however it is built.
const (
	// sigMaxLen caps a signature header (all its values together) or
	// a signature field of the body. 16 RSA-4096 signatures in base64 fit.
	sigMaxLen = 16 << 10
	// sigMaxEntries caps the entries of a signature header: the
	// signatures, plus a timestamp entry for the kv scheme.
	sigMaxEntries = 16
	// sigMaxTimestampLen caps a signature timestamp.
	sigMaxTimestampLen = 40
)

var (
	errSigTooLong = errors.New("signature header too long")
	errSigTooMany = errors.New("too many signatures")
)

// sigEntry is one entry of a signature header. tag says what kind of entry
// it is: the key of a kv entry ("v1", "t"), the version of a versioned
// entry ("v1", "v1a"), and for a list entry "" when it carries the
// expected prefix (stripped from value) and "-" when it does not.
type sigEntry struct {
	tag   string
	value string
}

// Signature header shapes.
const (
	// sigSchemeList is values separated by commas and/or whitespace, each
	// with an optional prefix: "sha256=ab12…", "v0=ab12…,v0=cd34…".
	sigSchemeList = "list"
	// sigSchemeKV is key=value pairs separated by commas: "t=1614265330,v1=ab12…,v1=cd34…".
	sigSchemeKV = "kv"
	// sigSchemeVersioned is version,value pairs separated by spaces (Standard
	// Webhooks): "v1,K5oZ… v1a,hnO3…".
	sigSchemeVersioned = "versioned"
)

// sigParseHeader splits a signature header of the given scheme into its
// entries. It refuses a header longer than sigMaxLen or with more
// than sigMaxEntries entries before looking at any entry's content,
// and stops scanning at the first entry beyond the cap.
func sigParseHeader(scheme, prefix, s string) ([]sigEntry, error) {
	if len(s) > sigMaxLen {
		return nil, errSigTooLong
	}
	var (
		isSep func(byte) bool
		out   []sigEntry
	)
	switch scheme {
	case sigSchemeKV:
		isSep = func(c byte) bool { return c == ',' }
	case sigSchemeVersioned:
		isSep = sigIsSpace
	default:
		isSep = func(c byte) bool { return c == ',' || sigIsSpace(c) }
	}
	for i := 0; i < len(s); {
		for i < len(s) && isSep(s[i]) {
			i++
		}
		j := i
		for j < len(s) && !isSep(s[j]) {
			j++
		}
		item := strings.TrimFunc(s[i:j], func(r rune) bool { return r < 0x80 && sigIsSpace(byte(r)) })
		i = j
		if item == "" {
			continue
		}
		if len(out) == sigMaxEntries {
			return nil, errSigTooMany
		}
		out = append(out, sigSplitEntry(scheme, prefix, item))
	}
	return out, nil
}

func sigSplitEntry(scheme, prefix, item string) sigEntry {
	switch scheme {
	case sigSchemeKV:
		k, v, ok := strings.Cut(item, "=")
		if !ok {
			return sigEntry{tag: "-", value: item}
		}
		return sigEntry{tag: strings.TrimSpace(k), value: strings.TrimSpace(v)}
	case sigSchemeVersioned:
		k, v, ok := strings.Cut(item, ",")
		if !ok {
			return sigEntry{tag: "-", value: item}
		}
		return sigEntry{tag: k, value: v}
	}
	if prefix == "" {
		return sigEntry{value: item}
	}
	if len(item) >= len(prefix) && strings.EqualFold(item[:len(prefix)], prefix) {
		return sigEntry{value: item[len(prefix):]}
	}
	return sigEntry{tag: "-", value: item}
}

func sigIsSpace(c byte) bool { return c == ' ' || c == '\t' || c == '\r' || c == '\n' }

// Signature encodings.
const (
	sigEncHex       = "hex"
	sigEncBase64    = "base64"
	sigEncBase64URL = "base64url"
)

// sigDecode decodes one presented signature. Hex is
// case-insensitive; base64 and base64url take padded and unpadded forms.
func sigDecode(enc, s string) ([]byte, bool) {
	// encoding/base64 skips CR and LF: refuse them, so that a signature
	// has one spelling.
	if s == "" || strings.ContainsAny(s, "\r\n") {
		return nil, false
	}
	var (
		b   []byte
		err error
	)
	switch enc {
	case sigEncHex:
		b, err = hex.DecodeString(s)
	case sigEncBase64:
		if b, err = base64.StdEncoding.Strict().DecodeString(s); err != nil {
			b, err = base64.RawStdEncoding.Strict().DecodeString(s)
		}
	case sigEncBase64URL:
		if b, err = base64.URLEncoding.Strict().DecodeString(s); err != nil {
			b, err = base64.RawURLEncoding.Strict().DecodeString(s)
		}
	default:
		return nil, false
	}
	if err != nil || len(b) == 0 {
		return nil, false
	}
	return b, true
}

// sigParseTimestamp reads a signature timestamp: epoch seconds (the
// Standard Webhooks, Stripe and Slack form; milliseconds when ≥ 10^11, as
// for event timestamps) or RFC 3339.
func sigParseTimestamp(s string) (time.Time, bool) {
	s = strings.TrimSpace(s)
	if s == "" || len(s) > sigMaxTimestampLen {
		return time.Time{}, false
	}
	if s[0] >= '0' && s[0] <= '9' && !strings.ContainsAny(s, "-:T") {
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil || n < 0 {
			return time.Time{}, false
		}
		if n >= 1e11 {
			if n/1000 >= sigMaxEpoch {
				return time.Time{}, false
			}
			return time.UnixMilli(n).UTC(), true
		}
		if n >= sigMaxEpoch {
			return time.Time{}, false
		}
		return time.Unix(n, 0).UTC(), true
	}
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil || t.Unix() < 0 || t.Unix() >= sigMaxEpoch {
		return time.Time{}, false
	}
	return t.UTC(), true
}

// sigMaxEpoch is 5001-01-01T00:00:00Z, as for event timestamps.
const sigMaxEpoch = 95649120000

// Parts of a signed template.
const (
	sigPartText = iota
	sigPartBody
	sigPartSecret
	sigPartTimestamp
	sigPartID
	sigPartHeader
)

// sigPart is one piece of a signed template: literal text, or a
// placeholder (for sigPartHeader, text is the canonical header name).
type sigPart struct {
	kind int
	text string
}

// sigParseTemplate parses a signed template such as "{id}.{timestamp}.{body}"
// or "{body}{secret}". Placeholders are {body}, {secret}, {timestamp},
// {id} and {header:Name}; "{{" and "}}" are literal braces.
func sigParseTemplate(s string) ([]sigPart, error) {
	var (
		parts []sigPart
		lit   strings.Builder
	)
	flush := func() {
		if lit.Len() > 0 {
			parts = append(parts, sigPart{kind: sigPartText, text: lit.String()})
			lit.Reset()
		}
	}
	for i := 0; i < len(s); {
		switch c := s[i]; {
		case c == '{' && i+1 < len(s) && s[i+1] == '{':
			lit.WriteByte('{')
			i += 2
		case c == '}' && i+1 < len(s) && s[i+1] == '}':
			lit.WriteByte('}')
			i += 2
		case c == '}':
			return nil, fmt.Errorf("unmatched '}' at offset %d (write }} for a literal brace)", i)
		case c == '{':
			end := strings.IndexByte(s[i:], '}')
			if end < 0 {
				return nil, fmt.Errorf("unclosed '{' at offset %d", i)
			}
			name := s[i+1 : i+end]
			p, err := sigPlaceholder(name)
			if err != nil {
				return nil, err
			}
			flush()
			parts = append(parts, p)
			i += end + 1
		default:
			lit.WriteByte(c)
			i++
		}
	}
	flush()
	return parts, nil
}

func sigPlaceholder(name string) (sigPart, error) {
	switch name {
	case "body":
		return sigPart{kind: sigPartBody}, nil
	case "secret":
		return sigPart{kind: sigPartSecret}, nil
	case "timestamp":
		return sigPart{kind: sigPartTimestamp}, nil
	case "id":
		return sigPart{kind: sigPartID}, nil
	}
	if h, ok := strings.CutPrefix(name, "header:"); ok && sigHeaderName(h) {
		return sigPart{kind: sigPartHeader, text: http.CanonicalHeaderKey(h)}, nil
	}
	return sigPart{}, fmt.Errorf("unknown placeholder (want {body}, {secret}, {timestamp}, {id} or {header:Name})")
}

// sigHeaderName reports whether h is an HTTP header name (RFC 9110 token).
func sigHeaderName(h string) bool {
	if h == "" {
		return false
	}
	for i := 0; i < len(h); i++ {
		c := h[i]
		if c <= ' ' || c >= 0x7f || strings.IndexByte(`"(),/:;<=>?@[\]{}`, c) >= 0 {
			return false
		}
	}
	return true
}

// sigJSONEquivalent reports whether a and b are the same JSON value: the same
// data whatever the whitespace and key order (numbers compare as written:
// 1 and 1.0 differ). A document with a repeated object key is
// never equivalent to anything, because readers disagree about which
// occurrence counts.
func sigJSONEquivalent(a, b []byte) bool {
	va, err := sigCanonicalJSON(a)
	if err != nil {
		return false
	}
	vb, err := sigCanonicalJSON(b)
	if err != nil {
		return false
	}
	return reflect.DeepEqual(va, vb)
}

// sigMaxJSONDepth bounds the nesting sigCanonicalJSON accepts.
const sigMaxJSONDepth = 200

// sigCanonicalJSON decodes one JSON document (nothing may follow it), keeping
// numbers as written and refusing repeated keys.
func sigCanonicalJSON(b []byte) (any, error) {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	v, err := sigReadJSON(dec, 0)
	if err != nil {
		return nil, err
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, errors.New("trailing data after the JSON value")
	}
	return v, nil
}

func sigReadJSON(dec *json.Decoder, depth int) (any, error) {
	if depth > sigMaxJSONDepth {
		return nil, errors.New("JSON nested too deeply")
	}
	tok, err := dec.Token()
	if err != nil {
		return nil, err
	}
	switch t := tok.(type) {
	case json.Delim:
		switch t {
		case '{':
			m := map[string]any{}
			for dec.More() {
				kt, err := dec.Token()
				if err != nil {
					return nil, err
				}
				k, ok := kt.(string)
				if !ok {
					return nil, errors.New("object key is not a string")
				}
				if _, dup := m[k]; dup {
					return nil, errors.New("repeated object key")
				}
				if m[k], err = sigReadJSON(dec, depth+1); err != nil {
					return nil, err
				}
			}
			if _, err := dec.Token(); err != nil {
				return nil, err
			}
			return m, nil
		case '[':
			a := []any{}
			for dec.More() {
				v, err := sigReadJSON(dec, depth+1)
				if err != nil {
					return nil, err
				}
				a = append(a, v)
			}
			if _, err := dec.Token(); err != nil {
				return nil, err
			}
			return a, nil
		}
		return nil, errors.New("unexpected delimiter")
	}
	return tok, nil
}
