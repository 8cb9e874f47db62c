package verify

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"fmt"
	"hash"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"hookd/internal/config"
)

// Presets whose signed content the hmac templates cannot express: the
// request's method and URL (hubspot), a canonical request of method, path,
// a list of headers the request names and body (contentful), or signatures
// spread over numbered headers (docusign).

func init() {
	// HubSpot sends a JSON array of events, up to 100 per request: the
	// selectors read the first. No id is read: the first event's eventId
	// would stand for the whole batch, and HubSpot does not guarantee
	// eventId unique.
	RegisterPreset("hubspot", newHubSpot, config.EventRules{
		Type: "json:0.subscriptionType", Timestamp: "json:0.occurredAt"})
	RegisterPreset("contentful", newContentful, config.EventRules{
		ID: "header:X-Contentful-Idempotency-Key", Type: "header:X-Contentful-Topic", Timestamp: "header:X-Contentful-Timestamp"})
	RegisterPreset("docusign", newDocuSign, config.EventRules{
		Type: "json:event", Timestamp: "json:generatedDateTime"})
}

// canonMAC verifies an HMAC over content built from the request by a
// preset's own function.
type canonMAC struct {
	hash    func() hash.Hash
	secrets [][]byte
	enc     string
	// sigs returns the presented signatures, still encoded.
	sigs func(h http.Header) ([]string, error)
	// tsHeader is the timestamp's header; "" when the scheme has none.
	tsHeader  string
	tolerance time.Duration
	now       func() time.Time
	// content returns the signed bytes; ts is the timestamp as written.
	content func(r *Request, ts string) ([]byte, error)
}

// Verify checks the request's signature.
func (c *canonMAC) Verify(_ context.Context, r *Request) error {
	raw, err := c.sigs(r.Header)
	if err != nil {
		return Unauthorized("%v", err)
	}
	if len(raw) == 0 {
		return Unauthorized("signature missing")
	}
	var cands [][]byte
	for _, s := range raw {
		if b, ok := sigDecode(c.enc, strings.TrimSpace(s)); ok {
			cands = append(cands, b)
		}
	}
	if len(cands) == 0 {
		return Unauthorized("signature mismatch")
	}
	var ts string
	if c.tsHeader != "" {
		vals := r.Header.Values(c.tsHeader)
		if len(vals) == 0 || strings.TrimSpace(vals[0]) == "" {
			return Unauthorized("timestamp missing")
		}
		if len(vals) > 1 {
			return Unauthorized("timestamp invalid")
		}
		ts = strings.TrimSpace(vals[0])
		t, ok := sigParseTimestamp(ts)
		if !ok {
			return Unauthorized("timestamp invalid")
		}
		if d := c.now().Sub(t); d > c.tolerance || d < -c.tolerance {
			return Unauthorized("timestamp outside tolerance")
		}
	}
	msg, err := c.content(r, ts)
	if err != nil {
		return Unauthorized("%v", err)
	}
	sums := make([][]byte, 0, len(c.secrets))
	for _, s := range c.secrets {
		h := hmac.New(c.hash, s)
		h.Write(msg)
		sums = append(sums, h.Sum(nil))
	}
	ok := false
	for _, cand := range cands {
		if MatchAny(cand, sums) {
			ok = true
		}
	}
	if !ok {
		return Unauthorized("signature mismatch")
	}
	return nil
}

// headerSigs returns the values of header name as signatures, at most
// sigMaxEntries of them and sigMaxLen bytes in all.
func headerSigs(name string) func(http.Header) ([]string, error) {
	return func(h http.Header) ([]string, error) {
		vals := h.Values(name)
		if len(vals) > sigMaxEntries {
			return nil, errSigTooMany
		}
		n := 0
		for _, v := range vals {
			if n += len(v); n > sigMaxLen {
				return nil, errSigTooLong
			}
		}
		return vals, nil
	}
}

// canonTolerance returns the tolerance option, or def when unset.
func canonTolerance(d *config.Duration, def time.Duration) (time.Duration, error) {
	if d == nil {
		return def, nil
	}
	if d.D() <= 0 {
		return 0, fmt.Errorf("tolerance: must be positive")
	}
	return d.D(), nil
}

// hubspotOptions configures the hubspot preset.
type hubspotOptions struct {
	// Secrets are the app's client secrets.
	Secrets []string `yaml:"secrets"`
	// URL is the URL HubSpot sends to, as written in the app's webhook
	// settings (scheme, host and path, no query): HubSpot signs it, and
	// hookd, behind a proxy, cannot know it. The query of each request
	// is appended as received.
	URL string `yaml:"url"`
	// Tolerance is how far X-HubSpot-Request-Timestamp may be from the
	// clock. Default 5m.
	Tolerance *config.Duration `yaml:"tolerance"`
}

// newHubSpot verifies X-HubSpot-Signature-v3: base64 HMAC-SHA256, with
// the client secret, of method + URI + body + X-HubSpot-Request-Timestamp
// (epoch milliseconds), the URI with %3A %2F %3F %40 %21 %24 %27 %28 %29
// %2A %2C %3B decoded.
func newHubSpot(env *Env, m config.Verify) (Verifier, error) {
	var p hubspotOptions
	if err := m.Decode(&p); err != nil {
		return nil, err
	}
	if p.URL == "" {
		return nil, fmt.Errorf("url: required (the URL HubSpot sends to, such as https://hooks.example.com/in/hubspot)")
	}
	u, err := url.Parse(p.URL)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || u.RawQuery != "" || u.ForceQuery || u.Fragment != "" || u.User != nil {
		return nil, fmt.Errorf("url: invalid (want http(s)://host/path, without query or fragment)")
	}
	secrets, err := sigDecodeSecrets(p.Secrets, "")
	if err != nil {
		return nil, err
	}
	warnShortSecrets(env, "hubspot", secrets)
	tol, err := canonTolerance(p.Tolerance, DefaultSignatureTolerance)
	if err != nil {
		return nil, err
	}
	base := p.URL
	return &canonMAC{
		hash: sha256.New, secrets: secrets, enc: sigEncBase64,
		sigs:     headerSigs("X-HubSpot-Signature-V3"),
		tsHeader: "X-HubSpot-Request-Timestamp", tolerance: tol, now: envNow(env),
		content: func(r *Request, ts string) ([]byte, error) {
			uri := base
			if r.URL != nil && r.URL.RawQuery != "" {
				uri += "?" + r.URL.RawQuery
			}
			var b []byte
			b = append(b, r.Method...)
			b = append(b, hubspotDecodeURI(uri)...)
			b = append(b, r.Body...)
			b = append(b, ts...)
			return b, nil
		},
	}, nil
}

// hubspotDecoded are the escapes HubSpot's v3 scheme decodes in the URI.
var hubspotDecoded = map[string]byte{
	"3A": ':', "2F": '/', "3F": '?', "40": '@', "21": '!', "24": '$',
	"27": '\'', "28": '(', "29": ')', "2A": '*', "2C": ',', "3B": ';',
}

// hubspotDecodeURI decodes the escapes of hubspotDecoded (either case of
// hex digit) and leaves every other byte as it is.
func hubspotDecodeURI(s string) string {
	if !strings.Contains(s, "%") {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '%' && i+2 < len(s) {
			if c, ok := hubspotDecoded[strings.ToUpper(s[i+1:i+3])]; ok {
				b.WriteByte(c)
				i += 2
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// contentfulOptions configures the contentful preset.
type contentfulOptions struct {
	// Secrets are the space's webhook signing secrets.
	Secrets []string `yaml:"secrets"`
	// Tolerance is how far X-Contentful-Timestamp may be from the clock.
	// Default 30s, the time to live of Contentful's own verifier.
	Tolerance *config.Duration `yaml:"tolerance"`
	// Path is the path Contentful sends to, when a proxy in front of
	// hookd changes it. Default: the path hookd receives.
	Path string `yaml:"path"`
}

// Contentful's signature headers.
const (
	contentfulSignedHeaders = "x-contentful-signed-headers"
	contentfulTimestamp     = "x-contentful-timestamp"
	// contentfulMaxSigned caps the names X-Contentful-Signed-Headers lists.
	contentfulMaxSigned = 32
)

// newContentful verifies X-Contentful-Signature: hex HMAC-SHA256, with the
// signing secret, of the canonical request "METHOD\npath\nheaders\nbody",
// where path is the request's path and query normalized as Contentful's
// node-apps-toolkit does, and headers is "name:value" for each header
// X-Contentful-Signed-Headers lists (which must include itself and
// X-Contentful-Timestamp), names in lower case and sorted, values trimmed,
// joined by ";". X-Contentful-Timestamp is epoch milliseconds.
func newContentful(env *Env, m config.Verify) (Verifier, error) {
	var p contentfulOptions
	if err := m.Decode(&p); err != nil {
		return nil, err
	}
	if p.Path != "" && (!strings.HasPrefix(p.Path, "/") || strings.ContainsAny(p.Path, "?# \t\r\n")) {
		return nil, fmt.Errorf("path: invalid (want a path such as /hooks/contentful, without query)")
	}
	secrets, err := sigDecodeSecrets(p.Secrets, "")
	if err != nil {
		return nil, err
	}
	warnShortSecrets(env, "contentful", secrets)
	tol, err := canonTolerance(p.Tolerance, 30*time.Second)
	if err != nil {
		return nil, err
	}
	path := p.Path
	return &canonMAC{
		hash: sha256.New, secrets: secrets, enc: sigEncHex,
		sigs:     headerSigs("X-Contentful-Signature"),
		tsHeader: contentfulTimestamp, tolerance: tol, now: envNow(env),
		content: func(r *Request, _ string) ([]byte, error) {
			headers, err := contentfulHeaders(r.Header)
			if err != nil {
				return nil, err
			}
			p, q := path, ""
			if r.URL != nil {
				if p == "" {
					p = r.URL.EscapedPath()
				}
				q = r.URL.RawQuery
			}
			var b []byte
			b = append(b, r.Method...)
			b = append(b, '\n')
			b = append(b, contentfulPath(p, q)...)
			b = append(b, '\n')
			b = append(b, headers...)
			b = append(b, '\n')
			b = append(b, r.Body...)
			return b, nil
		},
	}, nil
}

// contentfulHeaders renders the signed headers of a Contentful request.
func contentfulHeaders(h http.Header) (string, error) {
	vals := h.Values(contentfulSignedHeaders)
	if len(vals) != 1 || len(vals[0]) > 2048 {
		return "", fmt.Errorf("signed headers missing or invalid")
	}
	var names []string
	for n := range strings.SplitSeq(vals[0], ",") {
		n = strings.ToLower(strings.TrimSpace(n))
		if !sigHeaderName(n) || slices.Contains(names, n) || len(names) == contentfulMaxSigned {
			return "", fmt.Errorf("signed headers missing or invalid")
		}
		names = append(names, n)
	}
	if !slices.Contains(names, contentfulSignedHeaders) || !slices.Contains(names, contentfulTimestamp) {
		return "", fmt.Errorf("signed headers must include x-contentful-signed-headers and x-contentful-timestamp")
	}
	slices.Sort(names)
	parts := make([]string, 0, len(names))
	for _, n := range names {
		v := strings.Join(names, ",")
		if n != contentfulSignedHeaders {
			vs := h.Values(n)
			if len(vs) != 1 {
				return "", fmt.Errorf("signed content missing")
			}
			v = strings.TrimSpace(vs[0])
		}
		parts = append(parts, n+":"+v)
	}
	return strings.Join(parts, ";"), nil
}

// contentfulPath normalizes a path and raw query as node-apps-toolkit's
// getNormalizedEncodedURI does with the request's URL: the query (up to a
// second '?') escaped as a URI component, then the whole escaped as a URI.
func contentfulPath(path, query string) string {
	if i := strings.IndexByte(query, '?'); i >= 0 {
		query = query[:i]
	}
	var b strings.Builder
	uriEscape(&b, path, uriKeep)
	if query != "" {
		b.WriteByte('?')
		for i := 0; i < len(query); i++ {
			c := query[i]
			if uriComponentKeep(c) {
				b.WriteByte(c)
				continue
			}
			// Escaped as a component ("%XX"), then its '%' as a URI.
			b.WriteString("%25")
			b.WriteByte(upperHex[c>>4])
			b.WriteByte(upperHex[c&15])
		}
	}
	return b.String()
}

const upperHex = "0123456789ABCDEF"

// uriComponentKeep reports whether JavaScript's encodeURIComponent leaves c
// as it is.
func uriComponentKeep(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || strings.IndexByte("-_.!~*'()", c) >= 0
}

// uriKeep reports whether JavaScript's encodeURI leaves c as it is.
func uriKeep(c byte) bool {
	return uriComponentKeep(c) || strings.IndexByte(";,/?:@&=+$#", c) >= 0
}

// uriEscape writes s with each byte keep refuses as %XX.
func uriEscape(b *strings.Builder, s string, keep func(byte) bool) {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if keep(c) {
			b.WriteByte(c)
			continue
		}
		b.WriteByte('%')
		b.WriteByte(upperHex[c>>4])
		b.WriteByte(upperHex[c&15])
	}
}

// newDocuSign verifies DocuSign Connect's HMAC: X-DocuSign-Signature-1,
// -2… (one per HMAC key of the account), each a base64 HMAC-SHA256 of the
// body; one of them must be made with one of the secrets.
func newDocuSign(env *Env, m config.Verify) (Verifier, error) {
	var p bodyMACOptions
	if err := m.Decode(&p); err != nil {
		return nil, err
	}
	secrets, err := sigDecodeSecrets(p.Secrets, "")
	if err != nil {
		return nil, err
	}
	warnShortSecrets(env, "docusign", secrets)
	return &canonMAC{
		hash: sha256.New, secrets: secrets, enc: sigEncBase64,
		sigs: docusignSigs, now: envNow(env),
		content: func(r *Request, _ string) ([]byte, error) { return r.Body, nil },
	}, nil
}

// docusignMaxKeys is how many numbered signature headers are read.
const docusignMaxKeys = 100

// docusignSigs returns the values of X-DocuSign-Signature-1 to -100.
func docusignSigs(h http.Header) ([]string, error) {
	var out []string
	n := 0
	for i := 1; i <= docusignMaxKeys; i++ {
		for _, v := range h.Values("X-Docusign-Signature-" + strconv.Itoa(i)) {
			if n += len(v); n > sigMaxLen {
				return nil, errSigTooLong
			}
			if len(out) == docusignMaxKeys {
				return nil, errSigTooMany
			}
			out = append(out, v)
		}
	}
	return out, nil
}

// envNow returns env's clock.
func envNow(env *Env) func() time.Time {
	if env == nil {
		return time.Now
	}
	return env.now
}
