package verify

import (
	"context"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"hookd"
)

const contentfulTestSecret = "c0nt3ntfulS1gn1ngS3cr3tThatIsExactly64CharactersLongForTheTest_x"

// TestContentfulQueryPaths checks the path normalization against requests
// signed by @contentful/node-apps-toolkit 3.16.1, signRequest(secret,
// {method: "POST", path, headers: {X-Contentful-Topic:
// "ContentManagement.Entry.save"}, body: `{"sys":{"id":"x"}}`},
// 1714644060123): a query, escaped twice as the toolkit does, and an
// escape in the path.
func TestContentfulQueryPaths(t *testing.T) {
	t.Parallel()
	now := time.UnixMilli(1714644060123)
	v := sigMustBuild(t, "contentful", map[string]any{"secrets": []any{contentfulTestSecret}}, func() time.Time { return now })
	for _, c := range []struct{ target, sig string }{
		{"/in/p?a=1&b=c%20d", "451e7b7b37652bd2e6c5d37d3cde98f28c525572a2bb3d5942371183e7e8d47d"},
		{"/in/p%20x?q=a:b/c", "2f09bb916193d8dd3f38372f69e16731fba4c83101a4468841b3f4f354dfd15f"},
	} {
		u, err := url.ParseRequestURI(c.target)
		if err != nil {
			t.Fatal(err)
		}
		r := &Request{Method: http.MethodPost, URL: u, Body: []byte(`{"sys":{"id":"x"}}`), Header: http.Header{
			"X-Contentful-Topic":          {"ContentManagement.Entry.save"},
			"X-Contentful-Signature":      {c.sig},
			"X-Contentful-Signed-Headers": {"x-contentful-signed-headers,x-contentful-timestamp,x-contentful-topic"},
			"X-Contentful-Timestamp":      {"1714644060123"},
		}}
		if err := v.Verify(context.Background(), r); err != nil {
			t.Errorf("%s: got %v, want accepted", c.target, err)
		}
		r.Method = http.MethodPut
		if err := v.Verify(context.Background(), r); hookd.ErrorCode(err) != hookd.EUnauthorized {
			t.Errorf("%s as PUT: got %v, want unauthorized", c.target, err)
		}
	}
}

func TestContentfulPath(t *testing.T) {
	t.Parallel()
	// Expected values: node-apps-toolkit 3.16.1's getNormalizedEncodedURI.
	for _, c := range []struct{ path, query, want string }{
		{"/in/p", "", "/in/p"},
		{"/in/p", "a=1&b=c%20d", "/in/p?a%253D1%2526b%253Dc%252520d"},
		{"/in/p%20x", "q=a:b/c", "/in/p%2520x?q%253Da%253Ab%252Fc"},
		{"/in/[x]", "z=~*'()!", "/in/%5Bx%5D?z%253D~*'()!"},
		{"/in/p", "a?b", "/in/p?a"},
	} {
		if got := contentfulPath(c.path, c.query); got != c.want {
			t.Errorf("contentfulPath(%q, %q): got %q, want %q", c.path, c.query, got, c.want)
		}
	}
}

func TestHubSpotDecodeURI(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{
		"https://h.example/in/p":                      "https://h.example/in/p",
		"https://h.example/in/p?a=%3A%2f%3F%40%21%24": "https://h.example/in/p?a=:/?@!$",
		"https://h.example/in/p?a=%27%28%29%2A%2C%3B": "https://h.example/in/p?a='()*,;",
		"https://h.example/in/p?a=%20%26%3D%25%3A%":   "https://h.example/in/p?a=%20%26%3D%25:%",
		"https://h.example/in/p?a=%3":                 "https://h.example/in/p?a=%3",
		"https://h.example/in/p?a=%253A":              "https://h.example/in/p?a=%253A",
	} {
		if got := hubspotDecodeURI(in); got != want {
			t.Errorf("hubspotDecodeURI(%q): got %q, want %q", in, got, want)
		}
	}
}

func TestPresetsBOptions(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		typ  string
		opts map[string]any
		want string
	}{
		{"hubspot", map[string]any{"secrets": []any{"s"}}, "url: required"},
		{"hubspot", map[string]any{"secrets": []any{"s"}, "url": "hooks.example.com/in/h"}, "url: invalid"},
		{"hubspot", map[string]any{"secrets": []any{"s"}, "url": "https://hooks.example.com/in/h?x=1"}, "url: invalid"},
		{"hubspot", map[string]any{"url": "https://hooks.example.com/in/h"}, "secrets: at least one"},
		{"hubspot", map[string]any{"secrets": []any{"s"}, "url": "https://h.example/", "tolerance": "-1s"}, "tolerance: must be positive"},
		{"contentful", map[string]any{"secrets": []any{"s"}, "path": "in/c"}, "path: invalid"},
		{"contentful", map[string]any{"secrets": []any{"s"}, "path": "/in/c?x=1"}, "path: invalid"},
		{"docusign", map[string]any{}, "secrets: at least one"},
		{"svix", map[string]any{"secrets": []any{"whsec_%%"}}, "secrets[0]: not valid whsec"},
		{"calendly", map[string]any{"secrets": []any{"s"}, "header_prefix": "x"}, "header_prefix"},
		{"pagerduty", map[string]any{"secrets": []any{"s"}, "tolerance": "1m"}, "tolerance"},
	} {
		_, err := sigTryBuild(c.typ, c.opts, nil)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s %v: got %v, want an error containing %q", c.typ, c.opts, err, c.want)
		}
	}
}

// TestPresetsBHostileHeaders checks that oversized, repeated or stale
// signature headers are refused with a reason.
func TestPresetsBHostileHeaders(t *testing.T) {
	t.Parallel()
	now := time.UnixMilli(1714644060123)
	clock := func() time.Time { return now }
	u, _ := url.ParseRequestURI("/in/p")
	ts := strconv.FormatInt(now.UnixMilli(), 10)

	ds := http.Header{}
	for i := 1; i <= 101; i++ {
		ds.Set("X-DocuSign-Signature-"+strconv.Itoa(i), "AAAA")
	}
	ds.Add("X-DocuSign-Signature-1", "AAAA")
	many := make([]string, 17)
	for i := range many {
		many[i] = "AAAA"
	}
	long := []string{strings.Repeat("A", sigMaxLen+4)}
	names := make([]string, 40)
	for i := range names {
		names[i] = "x-h" + strconv.Itoa(i)
	}
	for _, c := range []struct {
		name, typ string
		opts      map[string]any
		header    http.Header
		want      string
	}{
		{"DocuSignTooMany", "docusign", map[string]any{"secrets": []any{"s"}}, ds, "too many signatures"},
		{"HubSpotTooMany", "hubspot", map[string]any{"secrets": []any{"s"}, "url": "https://h.example/in/p"},
			http.Header{"X-Hubspot-Signature-V3": many, "X-Hubspot-Request-Timestamp": {ts}}, "too many signatures"},
		{"HubSpotTooLong", "hubspot", map[string]any{"secrets": []any{"s"}, "url": "https://h.example/in/p"},
			http.Header{"X-Hubspot-Signature-V3": long, "X-Hubspot-Request-Timestamp": {ts}}, "too long"},
		{"HubSpotStale", "hubspot", map[string]any{"secrets": []any{"s"}, "url": "https://h.example/in/p"},
			http.Header{"X-Hubspot-Signature-V3": {"AAAA"}, "X-Hubspot-Request-Timestamp": {strconv.FormatInt(now.Add(-6*time.Minute).UnixMilli(), 10)}}, "outside tolerance"},
		{"ContentfulTooManySigned", "contentful", map[string]any{"secrets": []any{"s"}},
			http.Header{"X-Contentful-Signature": {"aa"}, "X-Contentful-Timestamp": {ts}, "X-Contentful-Signed-Headers": {strings.Join(names, ",")}}, "signed headers missing or invalid"},
		{"ContentfulRepeated", "contentful", map[string]any{"secrets": []any{"s"}},
			http.Header{"X-Contentful-Signature": {"aa"}, "X-Contentful-Timestamp": {ts}, "X-Contentful-Signed-Headers": {"x-contentful-timestamp,x-contentful-signed-headers,X-Contentful-Timestamp"}}, "signed headers missing or invalid"},
		{"ContentfulTimestampTwice", "contentful", map[string]any{"secrets": []any{"s"}},
			http.Header{"X-Contentful-Signature": {"aa"}, "X-Contentful-Timestamp": {ts, ts}, "X-Contentful-Signed-Headers": {"x-contentful-signed-headers,x-contentful-timestamp"}}, "timestamp invalid"},
	} {
		t.Run(c.name, func(t *testing.T) {
			v := sigMustBuild(t, c.typ, c.opts, clock)
			err := v.Verify(context.Background(), &Request{Method: http.MethodPost, URL: u, Header: c.header, Body: []byte("{}")})
			if hookd.ErrorCode(err) != hookd.EUnauthorized || !strings.Contains(err.Error(), c.want) {
				t.Errorf("got %v, want unauthorized: %s", err, c.want)
			}
		})
	}
}

func TestXeroDetectHandshake(t *testing.T) {
	t.Parallel()
	v := sigMustBuild(t, "xero", map[string]any{"secrets": []any{"k"}}, nil).(Handshaker)
	for _, c := range []struct {
		method, body string
		want         bool
	}{
		{http.MethodPost, `{"events":[],"lastEventSequence":0,"firstEventSequence":0,"entropy":"S0m3r4Nd0mt3xt"}`, true},
		{http.MethodPost, `{"events":[{"eventType":"Update"}],"entropy":"x"}`, false},
		{http.MethodPost, `{"events":{}}`, false},
		{http.MethodPost, `{"entropy":"x"}`, false},
		{http.MethodPost, `{"events":[]`, false},
		{http.MethodPost, `{"events":[],"x":` + strings.Repeat("[", 5000) + strings.Repeat("]", 5000) + `}`, false},
		{http.MethodGet, `{"events":[]}`, false},
	} {
		_, got := v.DetectHandshake(&Request{Method: c.method, Body: []byte(c.body)})
		if got != c.want {
			t.Errorf("%s %.60s: got %v, want %v", c.method, c.body, got, c.want)
		}
	}
}

func FuzzContentfulCanonical(f *testing.F) {
	f.Add("x-contentful-signed-headers,x-contentful-timestamp,x-contentful-topic", "/in/p", "a=1&b=c%20d")
	f.Add(" X-Contentful-Timestamp , x-contentful-signed-headers,,", "/in/[x]", "?")
	f.Fuzz(func(t *testing.T, signed, path, query string) {
		h := http.Header{"X-Contentful-Signed-Headers": {signed}, "X-Contentful-Timestamp": {"1"}, "X-Contentful-Topic": {" t "}}
		s, err := contentfulHeaders(h)
		if err == nil && !strings.Contains(s, "x-contentful-timestamp:1") {
			t.Fatalf("contentfulHeaders(%q) = %q: the timestamp is not signed", signed, s)
		}
		p := contentfulPath(path, query)
		for i := 0; i < len(p); i++ {
			if !uriKeep(p[i]) && p[i] != '%' {
				t.Fatalf("contentfulPath(%q, %q) = %q: byte %q left unescaped", path, query, p, p[i])
			}
		}
		_ = hubspotDecodeURI(path + "?" + query)
	})
}
