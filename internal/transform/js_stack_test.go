package transform

import (
	"strings"
	"sync/atomic"
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

// The natives that work through a whole array in one Go call, out of the
// interrupt's and the memory guard's reach, refuse arrays (and results)
// that would take gigabytes: code such as new Array(e.body.count).fill(0)
// on a hostile event used to run the process out of memory.
func TestRunWholeArrayNativesAreBounded(t *testing.T) {
	t.Parallel()
	cases := map[string]struct{ code, want string }{
		"fill":            {`new Array(1e8).fill(0)`, "RangeError: Array.prototype.fill: 100000000 elements, more than 4194304"},
		"fill from body":  {`new Array(e.body.total * 1e7).fill(0)`, "RangeError: Array.prototype.fill: 100000000 elements"},
		"length set":      {`const a = []; a.length = 1e9; a.sort()`, "RangeError: Array.prototype.sort: 1000000000 elements"},
		"array-like":      {`Array.prototype.indexOf.call({length: 2 ** 40}, 1)`, "RangeError: Array.prototype.indexOf"},
		"from":            {`Array.from({length: 1e8})`, "RangeError: Array.from: 100000000 elements"},
		"join separator":  {`new Array(1e6).join("x".repeat(1e4))`, "RangeError: Array.prototype.join: the result would be over 16777216 bytes"},
		"join elements":   {`new Array(4096).fill("x".repeat(1 << 13)).join("")`, "RangeError: Array.prototype.join: the result would be over"},
		"toString":        {`String(new Array(4096).fill("x".repeat(1 << 13)))`, "RangeError: Array.prototype.toString: the result would be over"},
		"concat argument": {`const a = []; a.length = 1e9; [].concat(a)`, "RangeError: Array.prototype.concat: 1000000000 elements"},
		"apply":           {`const a = []; a.length = 1e9; Math.max.apply(null, a)`, "RangeError: Function.prototype.apply: 1000000000 elements"},
		"Reflect.apply":   {`Reflect.apply(Math.max, null, {length: 1e9})`, "RangeError: Reflect.apply: 1000000000 elements"},
		"split":           {`"x".repeat(1 << 23).split("")`, "RangeError: String.prototype.split: 8388608 elements"},
		"catchable":       {`try { [].fill.call({length: 1e9}) } catch (x) { if (x instanceof RangeError) throw new Error("caught") }`, "Error: caught"},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			p := compile(t, "function transform(e) { "+tc.code+"; return e; }", time.Second)
			_, err := p.Run(sample())
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want one with %q", err, tc.want)
			}
		})
	}
	p := compile(t, `function transform(e) {
		const a = [3, 1, 2];
		e.body = [a.join("-"), String([1, [2, 3]]), "a,b,c".split(",").length, a.slice().sort().join(""),
			Array.from({length: 3}, (_, i) => i).join(""), new Array(3).fill(7).join(""), a.includes(2),
			Array.prototype.join.call("abc", "+"), Math.max.apply(null, a), Reflect.apply(Math.min, null, a),
			[1].concat([2], 3).join("")];
		return e;
	}`, time.Second)
	res, err := p.Run(sample())
	if err != nil {
		t.Fatal(err)
	}
	if want := `["3-1-2","1,2,3",3,"123","012","777",true,"a+b+c",3,1,"123"]`; string(res.Event.Body) != want {
		t.Fatalf("body = %s, want %s", res.Event.Body, want)
	}
}

// A call held past the wall limit by one step out of the interrupt's
// reach (a backtracking regular expression runs until its own 5 s
// timeout) is not run a second time: it would be held as long again, and
// a delivery took 10 s of CPU instead of 5.
//
// Not parallel: it sets the package's retried hook, and parallel tests
// wait while it runs.
func TestRunNotRetriedAfterAStepPastTheWallLimit(t *testing.T) {
	var tries atomic.Int32
	retried = func() { tries.Add(1) }
	t.Cleanup(func() { retried = nil })
	p := compile(t, `function transform(e) { /^(a+)+\1b$/.test("a".repeat(40)); return e; }`, 50*time.Millisecond)
	_, err := p.Run(sample())
	if err == nil || !strings.Contains(err.Error(), "timed out") {
		t.Fatalf("err = %v, want a timeout", err)
	}
	if n := tries.Load(); n != 0 {
		t.Fatalf("the call was tried again %d time(s) after the regular expression's 5 s", n)
	}
	// A call cut by the wall clock in time is tried again (counting its
	// CPU time): the hook sees it.
	// (Its limit is 1 s, so that the first try ends well inside the 10 s
	// wall limit after which no second try is made, however slow the
	// machine.)
	loop := compile(t, `function transform(e) { while (true) {} }`, time.Second)
	if _, err := loop.Run(sample()); err == nil || !strings.Contains(err.Error(), "timed out") {
		t.Fatalf("while(true): err = %v, want a timeout", err)
	}
	if n := tries.Load(); n != 1 {
		t.Fatalf("while(true) was tried again %d time(s), want 1", n)
	}
}

// An async transform returns a Promise; read as an object it has no
// field, so the event used to go out unchanged even when the function
// threw or returned null. What the Promise settled with is the result.
func TestRunAsyncFunctionResultIsWhatItsPromiseSettledWith(t *testing.T) {
	t.Parallel()
	run := func(src string) (Result, error) {
		t.Helper()
		return compile(t, src, time.Second).Run(sample())
	}
	res, err := run(`async function transform(e) { await null; e.type = "changed"; return e }`)
	if err != nil || res.Skip || res.Event.Type != "changed" {
		t.Fatalf("fulfilled: %+v, %v; want type changed", res.Event, err)
	}
	if res, err := run(`async function transform(e) { return null }`); err != nil || !res.Skip {
		t.Fatalf("null: skip %v, %v; want skipped", res.Skip, err)
	}
	if _, err := run(`const transform = async e => { throw new TypeError("boom") }`); err == nil || !strings.Contains(err.Error(), "TypeError: boom") {
		t.Fatalf("rejected: %v, want the TypeError", err)
	}
	if _, err := run(`function transform(e) { return new Promise(() => {}) }`); err == nil || !strings.Contains(err.Error(), "still pending") {
		t.Fatalf("pending: %v, want an error", err)
	}
}

// JSON.stringify works through plain data in one Go call: an array of
// references to one large string (a few MiB of heap) would encode to
// terabytes. The body returned, JSON.stringify and console.log are
// bounded by the size the JSON would have.
func TestRunStringifyOfLargeDataIsBounded(t *testing.T) {
	t.Parallel()
	big := `const big = new Array(1e5).fill("x".repeat(1 << 20));`
	for name, tc := range map[string]struct{ code, want string }{
		"stringify": {big + ` JSON.stringify(big);`, "RangeError: JSON.stringify: the value nests deeper than 128 levels, holds a cycle, more than 1000000 objects, or would be over 16777216 bytes"},
		"body":      {big + ` e.body = {big};`, "body nests deeper than 128 levels, or holds a cycle, too many objects or more than 4194304 bytes"},
	} {
		t.Run(name, func(t *testing.T) {
			p := compile(t, "function transform(e) { "+tc.code+" return e; }", time.Second)
			_, err := p.Run(sample())
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want one with %q", err, tc.want)
			}
		})
	}
	p := compile(t, `function transform(e) {
		const big = new Array(1e5).fill("x".repeat(1 << 20));
		console.log(big);
		e.body = JSON.stringify({a: [1, "two", {b: null}]}, null, 2) === '{\n  "a": [\n    1,\n    "two",\n    {\n      "b": null\n    }\n  ]\n}';
		return e;
	}`, time.Second)
	res, err := p.Run(sample())
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Logs) != 1 || res.Logs[0] != "[array too large to show]" || string(res.Event.Body) != "true" {
		t.Fatalf("logs %q, body %s; want the array not shown, and stringify as usual", res.Logs, res.Event.Body)
	}
}
