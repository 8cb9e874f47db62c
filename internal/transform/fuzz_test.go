package transform

import (
	"net/url"
	"strings"
	"testing"
)

// FuzzFilter compiles and evaluates hostile expressions against hostile
// bodies and headers: never a panic, and an evaluation that errs is no
// match.
func FuzzFilter(f *testing.F) {
	f.Add(`body.amount > 500 && headers["x-env"] == "prod"`, []byte(`{"amount": 750}`), "prod")
	f.Add(`has(body.a.b) && body.a.b.exists(x, x == "y")`, []byte(`{"a": {"b": ["y"]}}`), "")
	f.Add(`type.matches("^claim\\.") || size(body) > 2`, []byte(`not json`), "x")
	f.Add(`body.l.all(x, body.l.all(y, x == y))`, []byte(`{"l": [1,2,3,4,5,6,7,8,9,10]}`), "")
	f.Add(`int(body.n) / 0 == 1`, []byte(`{"n": 3}`), "")
	f.Add(`((((((((((true))))))))))`, []byte(`[[[[[[[[[]]]]]]]]]`), "")
	f.Add(`body == "x" ? true : false`, []byte(`x`), "")
	f.Fuzz(func(t *testing.T, expr string, body []byte, env string) {
		flt, err := CompileFilter(expr)
		if err != nil {
			if flt != nil {
				t.Fatal("a filter with an error")
			}
			return
		}
		ok, err := flt.Match(Event{ID: "evt_1", Type: "claim.created", Headers: map[string]string{"x-env": env}, Body: body})
		if err != nil && ok {
			t.Fatalf("Match(%q) = true with error %v", expr, err)
		}
	})
}

// FuzzTemplate parses hostile templates and expands them for hostile
// bodies: never a panic; an accepted template keeps its scheme and host
// whatever the values.
func FuzzTemplate(f *testing.F) {
	f.Add("https://api.example/claims/{{body.claimRef}}", []byte(`{"claimRef": "C-1"}`))
	f.Add("https://api.example/c/{{body.a.b}}?q={{id}}&t={{type}}", []byte(`{"a": {"b": "../../x?y=#z"}}`))
	f.Add("https://api.example/{{body.l.0}}", []byte(`{"l": ["@evil.example/"]}`))
	f.Add("http://api.example:81/{{key}}", []byte(`{}`))
	f.Add("https://{{body.h}}/x", []byte(`{"h": "evil.example"}`))
	f.Add("https://api.example/{{ body.x }}}}", []byte(`{"x": 1}`))
	f.Add("https://api.example/a/{{body.x}}{{body.y}}/b", []byte(`{"x": "%2e", "y": "."}`))
	f.Add("https://api.example/a/.{{body.x}}", []byte(`{"x": "%2E/..\\x"}`))
	f.Fuzz(func(t *testing.T, tmpl string, body []byte) {
		tm, err := ParseTemplate(tmpl)
		if err != nil {
			return
		}
		base, err := url.Parse(tm.base)
		if err != nil {
			t.Fatalf("accepted %q whose base %q does not parse", tmpl, tm.base)
		}
		out, err := tm.Expand(Event{ID: "evt/../1?#", Type: "t", Source: "s", Key: "k@evil", Body: body})
		if err != nil {
			if !strings.HasPrefix(err.Error(), "enrich: ") {
				t.Fatalf("Expand error %q", err)
			}
			return
		}
		u, err := url.Parse(out)
		if err != nil {
			t.Fatalf("Expand(%q) = %q, not a URL: %v", tmpl, out, err)
		}
		if u.Scheme != base.Scheme || u.Host != base.Host || u.User != nil {
			t.Fatalf("Expand(%q) = %q: scheme or host changed from %q", tmpl, out, tm.base)
		}
		if dotSegment(u.EscapedPath()) || dotSegment(u.Path) {
			t.Fatalf("Expand(%q) = %q: a dot segment in the path", tmpl, out)
		}
	})
}
