package transform

import (
	"strings"
	"testing"
	"time"
)

// Code that builds megabytes of nesting at run time and hands it to a
// parser that recurses in Go (JSON.parse, eval, the Function
// constructors) used to overflow the goroutine's stack: a fatal error
// that kills hookd, which no recover catches. It now fails the call.
func TestRunDeepNestingBuiltAtRunTimeFailsTheCall(t *testing.T) {
	t.Parallel()
	// 1<<22 opening brackets, built by doubling (repeat's bound is not
	// needed for this).
	build := `let s = "%s"; for (let i = 0; i < 22; i++) s += s;`
	cases := map[string]struct{ code, want string }{
		"JSON.parse":      {strings.Replace(build, "%s", "[", 1) + ` JSON.parse(s);`, "JSON.parse: the text nests deeper than 128 levels"},
		"eval":            {strings.Replace(build, "%s", "(", 1) + ` eval(s + "1");`, "eval: source of"},
		"indirect eval":   {strings.Replace(build, "%s", "[", 1) + ` (0, globalThis.eval)(s);`, "eval: source of"},
		"new Function":    {strings.Replace(build, "%s", "(", 1) + ` new Function("return " + s);`, "Function: source of"},
		"Function call":   {strings.Replace(build, "%s", "(", 1) + ` Function("a", s);`, "Function: source of"},
		"via constructor": {strings.Replace(build, "%s", "(", 1) + ` (function(){}).constructor(s);`, "Function: source of"},
		"generator":       {strings.Replace(build, "%s", "(", 1) + ` Object.getPrototypeOf(function*(){}).constructor(s);`, "GeneratorFunction: source of"},
		"async function":  {strings.Replace(build, "%s", "(", 1) + ` (async function(){}).constructor(s);`, "AsyncFunction: source of"},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			p := compile(t, "function transform(e) { "+tc.code+" return e; }", time.Second)
			_, err := p.Run(sample())
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want one with %q", err, tc.want)
			}
		})
	}
}

// The bounded built-ins still work as JavaScript says.
func TestRunBoundedBuiltinsStillWork(t *testing.T) {
	t.Parallel()
	p := compile(t, `function transform(e) {
		const a = JSON.parse('{"x": [1, {"y": 2}]}', (k, v) => k === "y" ? v * 10 : v);
		const f = new Function("a", "b", "return a + b");
		const g = Function("return 7");
		const gen = Object.getPrototypeOf(function*(){}).constructor("yield 1; yield 2");
		e.body = {
			parsed: a.x[1].y,
			sum: f(2, 3),
			seven: g(),
			gen: [...gen()],
			evaled: eval("1 + 2"),
			isFunction: f instanceof Function && (function(){}).constructor === Function,
			ctorName: Function.name,
		};
		return e;
	}`, time.Second)
	res, err := p.Run(sample())
	if err != nil {
		t.Fatal(err)
	}
	want := `{"parsed":20,"sum":5,"seven":7,"gen":[1,2],"evaled":3,"isFunction":true,"ctorName":"Function"}`
	if string(res.Event.Body) != want {
		t.Fatalf("body = %s, want %s", res.Event.Body, want)
	}
}
