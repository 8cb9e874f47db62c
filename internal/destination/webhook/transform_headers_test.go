package webhook

import (
	"testing"
)

// A transformation's headers never replace the destination's credentials
// nor hookd's own protocol headers, whatever their case: each is sent
// once, with hookd's value.
func TestTransformHeadersDoNotReplaceAuthOrProtocolHeaders(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name   string
		auth   map[string]any
		header string
		want   string
	}{
		{"Header", map[string]any{"type": "header", "header": "X-Api-Key", "value": "k_s3cr3t"}, "X-Api-Key", "k_s3cr3t"},
		{"Basic", map[string]any{"type": "basic", "username": "u", "password": "p"}, "Authorization", "Basic dTpw"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			sink := newSink(t, nil)
			d := openOpts(t, nil, map[string]any{"url": sink.URL, "auth": tc.auth})
			m := message(1)
			m.Headers = map[string]string{
				"x-api-key":         "from-transform",
				"authorization":     "Bearer from-transform",
				"webhook-id":        "evt_forged",
				"webhook-timestamp": "1",
				"x-extra":           "kept",
			}
			if _, err := d.Deliver(deliverCtx(t), m); err != nil {
				t.Fatal(err)
			}
			reqs := sink.requests()
			if len(reqs) != 1 {
				t.Fatalf("%d requests", len(reqs))
			}
			h := reqs[0].Header
			if got := h.Values(tc.header); len(got) != 1 || got[0] != tc.want {
				t.Errorf("%s = %q, want the destination's %q once", tc.header, got, tc.want)
			}
			if got := h.Values("Webhook-Id"); len(got) != 1 || got[0] != m.Event.ID {
				t.Errorf("webhook-id = %q, want hookd's %q once", got, m.Event.ID)
			}
			if got := h.Values("Webhook-Timestamp"); len(got) != 1 || got[0] == "1" {
				t.Errorf("webhook-timestamp = %q, want hookd's once", got)
			}
			if got := h.Get("X-Extra"); got != "kept" {
				t.Errorf("x-extra = %q, want the transformation's", got)
			}
		})
	}
}

// A transformation's path goes to the destination's host as written, a
// path that looks like an authority or a URL included (the query
// stays the destination's unless the transformation sets one).
func TestTransformPathStaysOnTheDestinationsHost(t *testing.T) {
	t.Parallel()
	sink := newSink(t, nil)
	d := openOpts(t, nil, map[string]any{"url": sink.URL + "/base?k=1"})
	for _, tc := range []struct{ path, query, want string }{
		{"//evil.example/x", "", "//evil.example/x?k=1"},
		{"/@evil.example/x", "", "/@evil.example/x?k=1"},
		{"/a%2Fb/c", "q=1&r=2", "/a%2Fb/c?q=1&r=2"},
		{"/http://evil.example/", "", "/http://evil.example/?k=1"},
		{`/\evil.example`, "", "/%5Cevil.example?k=1"},
	} {
		m := message(1)
		path, query := tc.path, tc.query
		m.Path = &path
		if query != "" {
			m.Query = &query
		}
		if _, err := d.Deliver(deliverCtx(t), m); err != nil {
			t.Fatalf("%s: %v", tc.path, err)
		}
		reqs := sink.requests()
		if got := reqs[len(reqs)-1].RequestURI; got != tc.want {
			t.Errorf("path %q: the destination got %q, want %q", tc.path, got, tc.want)
		}
	}
}
