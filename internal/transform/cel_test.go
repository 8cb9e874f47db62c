package transform

import (
	"bytes"
	"fmt"
	"log/slog"
	"regexp"
	"strings"
	"testing"
	"time"

	"hookd"
)

func TestCompileFilterErrorsGivePosition(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name, expr string
		want       string // a regexp the error matches
	}{
		{"UndeclaredReference", "body.amount > 5 && bdy.x == 1", `ERROR: <input>:1:20: undeclared reference to 'bdy'`},
		{"SyntaxError", "body.amount >", `ERROR: <input>:1:14: `},
		{"SecondLine", "body.amount > 5 &&\n  nope == 1", `ERROR: <input>:2:3: undeclared reference to 'nope'`},
		{"NotBool", "body.amount + 1", `not bool`},
		{"StringResult", `type + "x"`, `gives string, not bool`},
		{"HeadersTypeChecked", `headers["x-env"] > 1`, `ERROR: <input>:1:\d+: found no matching overload`},
		{"Empty", "  ", `empty expression`},
		{"TooLong", strings.Repeat("a", MaxExprSize+1), `more than 4096`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			_, err := CompileFilter(c.expr)
			if err == nil {
				t.Fatalf("CompileFilter(%q) = nil error, want one matching %q", c.expr, c.want)
			}
			if !regexp.MustCompile(c.want).MatchString(err.Error()) {
				t.Fatalf("CompileFilter(%q) error = %q, want it to match %q", c.expr, err, c.want)
			}
		})
	}
}

func TestFilterMatch(t *testing.T) {
	t.Parallel()
	ev := Event{
		ID: "evt_1", Source: "claims", Type: "claim.created", Key: "c-9",
		Headers: map[string]string{"x-env": "prod"},
		Body:    []byte(`{"amount": 750, "customer": {"tier": "gold"}, "items": [1, 2, 3]}`),
	}
	cases := []struct {
		expr    string
		want    bool
		wantErr bool
	}{
		{`body.amount > 500 && headers["x-env"] == "prod"`, true, false},
		{`body.amount > 1000`, false, false},
		{`body.amount > 500.5`, true, false},
		{`headers["x-env"] == "staging"`, false, false},
		{`body.customer.tier == "gold" && type.startsWith("claim.")`, true, false},
		{`id == "evt_1" && source == "claims" && key == "c-9"`, true, false},
		{`size(body.items) == 3 && body.items.all(i, i > 0)`, true, false},
		{`has(body.missing)`, false, false},
		{`body.missing == 1`, false, true},          // no such key: an error, no match
		{`headers["x-absent"] == "a"`, false, true}, // idem for a header
		{`"x-env" in headers && body.amount >= 750`, true, false},
	}
	for _, c := range cases {
		f, err := CompileFilter(c.expr)
		if err != nil {
			t.Fatalf("CompileFilter(%q): %v", c.expr, err)
		}
		got, err := f.Match(ev)
		if got != c.want || (err != nil) != c.wantErr {
			t.Errorf("Match(%q) = %v, %v; want %v, error %v", c.expr, got, err, c.want, c.wantErr)
		}
	}
}

func TestFilterBodyNotJSONIsAString(t *testing.T) {
	t.Parallel()
	f, err := CompileFilter(`body == "plain text" && type == "t"`)
	if err != nil {
		t.Fatal(err)
	}
	if ok, err := f.Match(Event{Type: "t", Body: []byte("plain text")}); !ok || err != nil {
		t.Fatalf("Match = %v, %v; want true", ok, err)
	}
	deep := []byte(strings.Repeat("[", 200) + strings.Repeat("]", 200))
	g, _ := CompileFilter(`type == "t"`)
	if ok, err := g.Match(Event{Type: "t", Body: deep}); !ok || err != nil {
		t.Fatalf("a body nested too deep: Match = %v, %v; want true (seen as a string)", ok, err)
	}
}

func TestFilterCostLimitStopsHostileExpression(t *testing.T) {
	t.Parallel()
	// Nested comprehensions over a 1000-element list: a million steps.
	f, err := CompileFilter(`body.l.all(x, body.l.all(y, x + y >= 0))`)
	if err != nil {
		t.Fatal(err)
	}
	list := "[" + strings.TrimSuffix(strings.Repeat("1,", 1000), ",") + "]"
	start := time.Now()
	ok, err := f.Match(Event{Body: []byte(`{"l": ` + list + `}`)})
	if ok || err == nil || !(strings.Contains(err.Error(), "cost") || strings.Contains(err.Error(), "interrupted")) {
		t.Fatalf("Match = %v, %v; want false and a cost or time limit error", ok, err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("evaluation took %s", d)
	}
	// Cheap steps, many of them: the cost limit stops it (the time limit
	// is raised so that it cannot be what stops it on a slow machine).
	ten := "[0,1,2,3,4,5,6,7,8,9]"
	g, err := compileFilter(ten+".all(a, "+ten+".all(b, "+ten+".all(c, "+ten+".all(d, "+ten+".all(e, a + b + c + d + e >= 0)))))", time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	if ok, err := g.Match(Event{}); ok || err == nil || !strings.Contains(err.Error(), "cost limit exceeded") {
		t.Fatalf("Match = %v, %v; want false and 'cost limit exceeded'", ok, err)
	}
}

func TestRouteFilterLogsErrorsRateLimited(t *testing.T) {
	t.Parallel()
	var buf bytes.Buffer
	log := slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug}))
	f, err := CompileFilter(`body.amount > 5`)
	if err != nil {
		t.Fatal(err)
	}
	rf := NewRouteFilter(f, "sub_1", log)
	for i := 0; i < 50; i++ {
		if rf.Match(&hookd.Event{ID: "evt_x", Body: []byte(`{"other": 1}`)}) {
			t.Fatal("an event without the key matched")
		}
	}
	if n := strings.Count(buf.String(), "filter_expr failed"); n != 1 {
		t.Fatalf("logged %d times, want once:\n%s", n, buf.String())
	}
	if !rf.Match(&hookd.Event{Body: []byte(`{"amount": 6}`), Headers: map[string][]string{"X-Env": {"prod"}}}) {
		t.Fatal("a matching event did not match")
	}
}

func TestEventOfLowerCasesHeaders(t *testing.T) {
	t.Parallel()
	ev := EventOf(&hookd.Event{Headers: map[string][]string{"X-Env": {"prod", "second"}, "Empty": nil}})
	if ev.Headers["x-env"] != "prod" || len(ev.Headers) != 1 {
		t.Fatalf("headers = %v, want x-env: prod only", ev.Headers)
	}
}

// Several subscriptions' filters read one event's body parsed once, and
// the next event is not judged by the previous one's body.
func TestRouteFiltersShareTheParsedBody(t *testing.T) {
	f, _ := CompileFilter(`body.n == 1`)
	g, _ := CompileFilter(`body.n >= 1`)
	a, b := NewRouteFilter(f, "a", nil), NewRouteFilter(g, "b", nil)
	e1 := &hookd.Event{ID: "evt_1", Body: []byte(`{"n": 1}`)}
	e2 := &hookd.Event{ID: "evt_1", Body: []byte(`{"n": 2}`)} // same id, another body
	if !a.Match(e1) || !b.Match(e1) {
		t.Fatal("evt_1 did not match")
	}
	first := lastParsed.Load()
	if !b.Match(e1) || lastParsed.Load() != first {
		t.Fatal("the body was parsed again for the same event")
	}
	if a.Match(e2) || !b.Match(e2) {
		t.Fatal("the second body was judged by the first")
	}
}

func BenchmarkRouteFilters(b *testing.B) {
	var fs []*RouteFilter
	for i := 0; i < 20; i++ {
		f, err := CompileFilter(fmt.Sprintf(`body.amount > %d && headers["x-env"] == "prod"`, i*50))
		if err != nil {
			b.Fatal(err)
		}
		fs = append(fs, NewRouteFilter(f, "s", nil))
	}
	body := []byte(`{"amount": 750, "customer": {"tier": "gold", "name": "A B"}, "items": [{"sku": "a", "n": 1}, {"sku": "b", "n": 2}]}`)
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		e := &hookd.Event{ID: fmt.Sprint(i), Body: body, Headers: map[string][]string{"X-Env": {"prod"}}}
		for _, f := range fs {
			f.Match(e)
		}
	}
}
