package transform

import (
	"strings"
	"testing"
)

// body is dyn, so CEL cannot choose the overload of body.s + body.s when
// the expression is checked, and charged such calls 1 whatever the size
// of their operands: a chain of concatenations of a large body string
// built hundreds of megabytes per event under the cost limit. They are
// now charged by size, and the cost limit stops them.
func TestFilterCostLimitCountsDynOperandsBySize(t *testing.T) {
	t.Parallel()
	body := []byte(`{"s":"` + strings.Repeat("x", 1<<20) + `","l":[` + strings.Repeat(`"item",`, 20000) + `"last"]}`)
	for name, expr := range map[string]string{
		"concatenation": "(" + strings.TrimSuffix(strings.Repeat("body.s + ", 40), " + ") + ").size() > 0",
		"comparison":    strings.TrimSuffix(strings.Repeat("body.s < body.s || ", 30), " || "),
		"conversion":    strings.TrimSuffix(strings.Repeat(`bytes(body.s) == b"x" || `, 30), " || "),
		"in":            `body.l.all(x, x in body.l)`,
	} {
		t.Run(name, func(t *testing.T) {
			f, err := CompileFilter(expr)
			if err != nil {
				t.Fatal(err)
			}
			ok, err := f.Match(Event{Body: body})
			if ok || err == nil || !strings.Contains(err.Error(), "cost limit") {
				t.Fatalf("Match = %v, %v; want the cost limit's error", ok, err)
			}
		})
	}
}

// Cheap expressions on the same operands still evaluate.
func TestFilterDynOperandsStillEvaluate(t *testing.T) {
	t.Parallel()
	body := []byte(`{"s":"ab","l":["a","b"],"n":2}`)
	for expr, want := range map[string]bool{
		`body.s + "c" == "abc"`:             true,
		`body.s < "b"`:                      true,
		`"b" in body.l`:                     true,
		`"z" in body.l`:                     false,
		`string(body.n) == "2"`:             true,
		`bytes(body.s) == b"ab"`:            true,
		`body.l + ["c"] == ["a", "b", "c"]`: true,
		`body.n + 1.0 == 3.0`:               true,
	} {
		f, err := CompileFilter(expr)
		if err != nil {
			t.Fatalf("%s: %v", expr, err)
		}
		if ok, err := f.Match(Event{Body: body}); ok != want || err != nil {
			t.Errorf("%s: Match = %v, %v; want %v", expr, ok, err, want)
		}
	}
}
