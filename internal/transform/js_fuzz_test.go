package transform

import (
	"errors"
	"fmt"
	"testing"
	"time"
)

// FuzzCompileRun compiles arbitrary source and runs it on an arbitrary
// body: whatever the input, Compile and Run return (within the time
// limit) a Program, a Result or an *Error, and never panic.
func FuzzCompileRun(f *testing.F) {
	for _, seed := range []struct{ src, body string }{
		{`function transform(e) { return e }`, `{"a":1}`},
		{`function transform(e) { return null }`, `x`},
		{`function transform(e) { e.body.x.y = 1; return e }`, `{}`},
		{`function transform(e) { while(true){} }`, `{}`},
		{`function transform(e) { let a=[]; while(1) a.push('x'.repeat(1e6)) }`, `{}`},
		{`function transform(e) { e.headers.host = "h"; return e }`, `{}`},
		{`function transform(e) { e.body = {toJSON(){ throw 1 }}; return e }`, `{}`},
		{`function transform(e) { e.path = "/a/b"; e.query = "?q=1"; return e }`, `[1,2,3]`},
		{`const transform = e => ({body: e.body + "!", type: 3})`, `"s"`},
		{`function transform(e) { return {get body(){ while(1){} }} }`, `{}`},
		{`function transform(e) {`, `{}`},
		{`throw 1`, ``},
		{`function transform(e) { return e }`, `[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]`},
		{`function transform(e) { JSON.parse("[".repeat(4e6)); return e }`, `{}`},
		{`function transform(e) { eval("(".repeat(4e6)); return e }`, `{}`},
		{`function transform(e) { new Array(e.body.n).fill(0); return e }`, `{"n": 1e8}`},
		{`function transform(e) { const a = []; a.length = e.body.n; return a.join("x") }`, `{"n": 1e9}`},
		{`function transform(e) { return /(a+)+$/.test('aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa!') ? e : null }`, `{}`},
	} {
		f.Add(seed.src, seed.body)
	}
	f.Fuzz(func(t *testing.T, src, body string) {
		// A call that does not return is reported with its input (a panic
		// in another goroutine ends the worker, and the fuzzer keeps the
		// input).
		hung := time.AfterFunc(wallLimit(20*time.Millisecond)+5*time.Second, func() {
			panic(fmt.Sprintf("Compile+Run did not return: src %q body %q", src, body))
		})
		defer hung.Stop()
		p, err := Compile(src, 20*time.Millisecond)
		if err != nil {
			var te *Error
			if !errors.As(err, &te) {
				t.Fatalf("Compile: not an *Error: %T %v", err, err)
			}
			return
		}
		start := time.Now()
		ev := sample()
		ev.Body = []byte(body)
		res, err := p.Run(ev)
		if took := time.Since(start); took > wallLimit(20*time.Millisecond)+2*time.Second {
			t.Fatalf("Run took %s", took)
		}
		if err != nil {
			var te *Error
			if !errors.As(err, &te) {
				t.Fatalf("Run: not an *Error: %T %v", err, err)
			}
			return
		}
		if len(res.Event.Body) > MaxOutput || len(res.Set) > MaxHeaders {
			t.Fatalf("result over the bounds: %d bytes, %d headers", len(res.Event.Body), len(res.Set))
		}
		for k := range res.Set {
			if forbidden[k] {
				t.Fatalf("forbidden header %s set", k)
			}
		}
	})
}
