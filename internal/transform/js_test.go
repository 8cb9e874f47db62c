package transform

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"
)

func compile(t *testing.T, src string, timeout time.Duration) *Program {
	t.Helper()
	p, err := Compile(src, timeout)
	if err != nil {
		t.Fatalf("Compile: %v", err)
	}
	return p
}

func sample() JSEvent {
	return JSEvent{ID: "evt_1", Source: "app", Type: "order.created", Key: "o1",
		Headers: map[string]string{"x-team": "a", "authorization": "Bearer in"}, Body: []byte(`{"total":10,"items":[1,2]}`),
		ContentType: "application/json"}
}

func TestRunChangesEvent(t *testing.T) {
	t.Parallel()
	p := compile(t, `function transform(e) {
		e.body.total *= 2;
		e.body.seen = e.headers["x-team"] + ":" + e.id + ":" + e.source + ":" + e.key;
		e.headers["x-extra"] = "yes";
		e.type = "order.doubled";
		e.path = "/v2/orders";
		e.query = "?a=1&b=2";
		console.log("doubled", e.body.total, {k: 1});
		return e;
	}`, 0)
	res, err := p.Run(sample())
	if err != nil {
		t.Fatal(err)
	}
	var body map[string]any
	if err := json.Unmarshal(res.Event.Body, &body); err != nil {
		t.Fatalf("body %q: %v", res.Event.Body, err)
	}
	if body["total"] != float64(20) || body["seen"] != "a:evt_1:app:o1" {
		t.Errorf("body = %s", res.Event.Body)
	}
	if res.Event.Type != "order.doubled" {
		t.Errorf("type = %q", res.Event.Type)
	}
	if len(res.Set) != 1 || res.Set["x-extra"] != "yes" {
		t.Errorf("set = %v, want only x-extra (unchanged received headers are not sent on)", res.Set)
	}
	if res.Event.Path == nil || *res.Event.Path != "/v2/orders" || res.Event.Query == nil || *res.Event.Query != "a=1&b=2" {
		t.Errorf("path/query = %v %v", res.Event.Path, res.Event.Query)
	}
	if len(res.Logs) != 1 || res.Logs[0] != `doubled 20 {"k":1}` {
		t.Errorf("logs = %q", res.Logs)
	}
}

func TestRunStringBodyAndContentType(t *testing.T) {
	t.Parallel()
	p := compile(t, `function transform(e) { return {body: e.body.toUpperCase(), headers: {"Content-Type": "text/x-upper"}} }`, 0)
	ev := sample()
	ev.Body, ev.ContentType = []byte("hello <xml/>"), "application/xml"
	res, err := p.Run(ev)
	if err != nil {
		t.Fatal(err)
	}
	if string(res.Event.Body) != "HELLO <XML/>" || res.Event.ContentType != "text/x-upper" || res.Event.Type != "order.created" {
		t.Errorf("got %q %q %q", res.Event.Body, res.Event.ContentType, res.Event.Type)
	}
	// An object body sent for a non-JSON event is JSON.
	p = compile(t, `function transform(e) { return {body: {text: e.body}} }`, 0)
	res, err = p.Run(ev)
	if err != nil || string(res.Event.Body) != `{"text":"hello <xml/>"}` || res.Event.ContentType != "application/json" {
		t.Errorf("got %q %q, %v", res.Event.Body, res.Event.ContentType, err)
	}
}

func TestRunNullSkips(t *testing.T) {
	t.Parallel()
	p := compile(t, `function transform(e) { return e.body.total > 5 ? null : e }`, 0)
	res, err := p.Run(sample())
	if err != nil || !res.Skip {
		t.Fatalf("got %+v, %v; want skip", res, err)
	}
}

func TestCompileRefuses(t *testing.T) {
	t.Parallel()
	for name, tc := range map[string]struct{ src, want string }{
		"Syntax":     {"function transform(e) {\n  return e +;\n}", "Line 2:"},
		"NoFunction": {"function other(e) { return e }", "no function transform"},
		"NotFunc":    {"var transform = 3", "no function transform"},
		"TopThrows":  {"throw new Error('boom'); function transform(e){return e}", "Error: boom at line 1:"},
		"TopLoops":   {"while(true){} function transform(e){return e}", "timed out"},
		"TooLarge":   {strings.Repeat(" ", MaxSource+1), "more than"},
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			_, err := Compile(tc.src, 20*time.Millisecond)
			if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.HasPrefix(err.Error(), "transform: ") {
				t.Fatalf("got %v, want an error with %q", err, tc.want)
			}
		})
	}
	// const and let declarations count.
	if _, err := Compile("const transform = (e) => e", 0); err != nil {
		t.Errorf("const arrow: %v", err)
	}
}

func TestRunFailures(t *testing.T) {
	t.Parallel()
	for name, tc := range map[string]struct{ src, want string }{
		"Throw":        {"function transform(e) {\n  var x;\n  return x.y;\n}", "TypeError: Cannot read property 'y' of undefined at line 3:"},
		"ThrowString":  {"function transform(e) { throw 'nope' }", "nope at line 1:"},
		"Undefined":    {"function transform(e) { e.x = 1 }", "returned undefined"},
		"Number":       {"function transform(e) { return 3 }", "returned a number"},
		"Recursion":    {"function f(n){return f(n+1)+1} function transform(e) { return f(0) }", "RangeError"},
		"HostHeader":   {"function transform(e) { e.headers.host = 'evil'; return e }", "header host cannot be set"},
		"CLHeader":     {"function transform(e) { e.headers['Content-Length'] = '3'; return e }", "content-length cannot be set"},
		"BadHeader":    {"function transform(e) { e.headers['x-a'] = 'a\\r\\nb: c'; return e }", "not valid"},
		"BadPath":      {"function transform(e) { e.path = 'no-slash'; return e }", "must start with /"},
		"PathQuery":    {"function transform(e) { e.path = '/a?b'; return e }", "must not hold"},
		"Cycle":        {"function transform(e) { e.body.self = e.body; return e }", "cycle"},
		"Deep":         {"function transform(e) { var a = {}; for (var i = 0; i < 500; i++) a = {a: a}; e.body = a; return e }", "deeper"},
		"FunctionBody": {"function transform(e) { e.body = function(){}; return e }", "function"},
		"NoRequire":    {"function transform(e) { require('fs'); return e }", "ReferenceError: require is not defined"},
		"NoTimers":     {"function transform(e) { setTimeout(function(){}, 1); return e }", "ReferenceError: setTimeout is not defined"},
		"BadToString":  {"function transform(e) { throw {toString: function(){ while(true){} }} }", "uncaught object"},
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			p := compile(t, tc.src, time.Second)
			_, err := p.Run(sample())
			var te *Error
			if !errors.As(err, &te) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v, want an *Error with %q", err, tc.want)
			}
		})
	}
}

func TestRunTimeout(t *testing.T) {
	t.Parallel()
	p := compile(t, `function transform(e) { console.log("before"); while(true){} }`, 30*time.Millisecond)
	start := time.Now()
	_, err := p.Run(sample())
	took := time.Since(start)
	if err == nil || err.Error() != "transform: timed out after 30ms" {
		t.Fatalf("got %v", err)
	}
	// Cut, not hung: a second try counting CPU time may run up to the
	// wall limit on a loaded machine, so only a hang fails here.
	if took > wallLimit(30*time.Millisecond)+5*time.Second {
		t.Errorf("took %s for a limit of 30ms", took)
	}
	var te *Error
	if errors.As(err, &te); len(te.Logs) != 1 || te.Logs[0] != "before" {
		t.Errorf("logs = %q", te.Logs)
	}
}

func TestRunMemoryGuard(t *testing.T) {
	// Not parallel: the guard watches the process's heap.
	p := compile(t, `function transform(e) { let a = []; while (1) a.push('x'.repeat(1e6) + a.length); }`, 5*time.Second)
	// The time limit (5s) is far beyond what 64 MiB take: the guard, not
	// the timer, must stop it.
	_, err := p.Run(sample())
	if err == nil || !strings.Contains(err.Error(), "memory limit") {
		t.Fatalf("got %v, want the memory limit", err)
	}
	// One builtin call that would build a huge string at once is refused.
	p = compile(t, `function transform(e) { return {body: 'x'.repeat(2**30)} }`, time.Second)
	if _, err := p.Run(sample()); err == nil || !strings.Contains(err.Error(), "would be over") {
		t.Fatalf("repeat: got %v", err)
	}
	p = compile(t, `function transform(e) { return {body: ''.padEnd(2**30, 'ab')} }`, time.Second)
	if _, err := p.Run(sample()); err == nil || !strings.Contains(err.Error(), "would be over") {
		t.Fatalf("padEnd: got %v", err)
	}
	// A large output is refused.
	p = compile(t, `function transform(e) { return {body: 'x'.repeat(5 * 1024 * 1024)} }`, time.Second)
	if _, err := p.Run(sample()); err == nil || !strings.Contains(err.Error(), "more than") {
		t.Fatalf("output: got %v", err)
	}
	// A large input is refused before any code runs.
	ev := sample()
	ev.Body = make([]byte, MaxInput+1)
	if _, err := compile(t, `function transform(e) { return e }`, 0).Run(ev); err == nil || !strings.Contains(err.Error(), "event body") {
		t.Fatalf("input: got %v", err)
	}
}

func TestConsoleLogBounded(t *testing.T) {
	t.Parallel()
	p := compile(t, `function transform(e) { for (var i = 0; i < 1000; i++) console.log("line", i); console.log('y'.repeat(100000)); return e }`, time.Second)
	res, err := p.Run(sample())
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Logs) != MaxLogLines+1 || res.Logs[MaxLogLines] != "… 901 more console.log lines dropped" {
		t.Fatalf("got %d lines, last %q", len(res.Logs), res.Logs[len(res.Logs)-1])
	}
	p = compile(t, `function transform(e) { console.log('y'.repeat(100000)); console.log('z'); return e }`, time.Second)
	res, _ = p.Run(sample())
	total := 0
	for _, l := range res.Logs {
		total += len(l)
	}
	if total > MaxLogBytes+200 {
		t.Fatalf("kept %d bytes of logs", total)
	}
}

// A call never sees what another call left in the global state.
func TestRunIsolated(t *testing.T) {
	t.Parallel()
	p := compile(t, `var last = null; let seen = []; function transform(e) {
		var prev = last; last = e.id; seen.push(e.id); Array.prototype.leak = e.id;
		e.body = {prev: prev, seen: seen.length, leak: [].leak === e.id}; return e }`, 0)
	for _, id := range []string{"evt_a", "evt_b"} {
		ev := sample()
		ev.ID = id
		res, err := p.Run(ev)
		if err != nil {
			t.Fatal(err)
		}
		if string(res.Event.Body) != `{"prev":null,"seen":1,"leak":true}` {
			t.Fatalf("%s: body %s", id, res.Event.Body)
		}
	}
}

func TestRunConcurrent(t *testing.T) {
	t.Parallel()
	p := compile(t, `function transform(e) { e.body = {id: e.id}; return e }`, 0)
	errs := make(chan error, 8)
	for i := 0; i < 8; i++ {
		go func() {
			for j := 0; j < 50; j++ {
				ev := sample()
				ev.ID = "evt_" + strings.Repeat("x", j)
				res, err := p.Run(ev)
				if err == nil && string(res.Event.Body) != `{"id":"`+ev.ID+`"}` {
					err = errors.New("got " + string(res.Event.Body))
				}
				if err != nil {
					errs <- err
					return
				}
			}
			errs <- nil
		}()
	}
	for i := 0; i < 8; i++ {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
}

func BenchmarkRun(b *testing.B) {
	p, err := Compile(`function transform(e) { e.body.total *= 2; e.headers["x-extra"] = "1"; return e }`, 0)
	if err != nil {
		b.Fatal(err)
	}
	ev := sample()
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		if _, err := p.Run(ev); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkRunParallel(b *testing.B) {
	p, err := Compile(`function transform(event) {
  event.body = {id: event.body.id, kind: event.type, size: event.body.pad.length};
  event.headers["x-transformed"] = "1";
  event.type = "bench.reshaped";
  return event;
}`, 0)
	if err != nil {
		b.Fatal(err)
	}
	ev := sample()
	ev.Body = []byte(`{"id":"x-00001-000000000001","type":"bench.event","pad":"` + strings.Repeat("x", 950) + `"}`)
	b.ReportAllocs()
	b.SetParallelism(32)
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := p.Run(ev); err != nil {
				b.Fatal(err)
			}
		}
	})
}
