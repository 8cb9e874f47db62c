package transform

import (
	"errors"
	"fmt"
	"math"
	"net/url"
	"runtime"
	"runtime/metrics"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/dlclark/regexp2"
	"github.com/dop251/goja"
	"golang.org/x/net/http/httpguts"

	"hookd/internal/jsonlimit"
)

// Limits of a JavaScript transformation. Every one is enforced on every
// call; docs/TRANSFORMATIONS.md says what each bounds and what it cannot.
const (
	// DefaultTimeout is the time limit of one call when transform_timeout
	// is not set.
	DefaultTimeout = 50 * time.Millisecond
	// MaxTimeout is the longest transform_timeout accepted.
	MaxTimeout = 5 * time.Second
	// MaxSource caps the source code of one transformation.
	MaxSource = 64 << 10
	// MaxInput caps the event body handed to a transformation; an event
	// with a larger body fails its delivery.
	MaxInput = 4 << 20
	// MaxOutput caps the body a transformation returns.
	MaxOutput = 4 << 20
	// MaxDepth caps the nesting of the JSON body in and out.
	MaxDepth = 128
	// MaxHeapGrowth is how much the live Go heap may grow while a call
	// runs before the call is interrupted (the memory guard).
	MaxHeapGrowth = 64 << 20
	// MaxString caps the string one call of String.prototype.repeat,
	// padStart or padEnd may build (they allocate it at once, out of the
	// interrupt's reach).
	MaxString = 16 << 20
	// MaxArrayLength caps the arrays the natives that work through a
	// whole array in one Go call (fill, join, sort, Array.from, split…)
	// accept or build.
	MaxArrayLength = 1 << 22
	// MaxLogLines and MaxLogBytes cap the console.log output kept per
	// call; beyond, lines are counted but dropped.
	MaxLogLines = 100
	MaxLogBytes = 16 << 10
	// MaxHeaders caps the headers a call may set.
	MaxHeaders = 64
	// maxCallStack caps the JavaScript call depth (a deeper recursion
	// throws RangeError instead of growing the Go stack without bound).
	maxCallStack = 256
	// heapCheckEvery is how often the memory guard looks at the heap
	// while a call runs.
	heapCheckEvery = 2 * time.Millisecond
	scriptName     = "transform.js"
)

func init() {
	// goja falls back to regexp2 for the patterns Go's regexp cannot run;
	// regexp2 backtracks and runs in Go, out of the interrupt's reach: its
	// own timeout bounds a catastrophic pattern.
	regexp2.DefaultMatchTimeout = MaxTimeout
}

// JSEvent is what a transformation receives and returns: the event's
// identity, its headers (names in lower case), its body and where it goes.
type JSEvent struct {
	ID, Source, Type, Key string
	// Headers are the headers as received (lower-case names, several
	// values joined with ", "), plus those an earlier step set.
	Headers map[string]string
	// Body is the body, ContentType its media type.
	Body        []byte
	ContentType string
	// Path and Query, when set, replace the path and query of an http
	// destination's URL.
	Path, Query *string
}

// Result is the outcome of one call.
type Result struct {
	// Skip is true when the function returned null: nothing is sent.
	Skip bool
	// Event is the event as the function returned it (zero when Skip).
	Event JSEvent
	// Set are the headers the function added or changed (lower-case
	// names), to be sent with the delivery. A Content-Type set there is
	// Event.ContentType instead.
	Set map[string]string
	// Logs are the console.log lines (bounded; a last line says how many
	// were dropped).
	Logs []string
	// Duration is the time the call took.
	Duration time.Duration
}

// Error is a transformation's failure: a throw, a timeout, the memory
// guard, a bad return value. Its message starts with "transform: ".
type Error struct {
	Msg string
	// Logs are the console.log lines written before the failure.
	Logs []string
	// timeout: the time limit cut the call.
	timeout bool
}

func (e *Error) Error() string { return "transform: " + e.Msg }

func fail(format string, args ...any) *Error { return &Error{Msg: fmt.Sprintf(format, args...)} }

// Program is one compiled transformation. It is safe for concurrent use:
// every call runs in a runtime of its own, so that a call never sees
// what another event left in the global state. Setting that runtime up
// (the bounded natives, console, JSON) is most of a call's cost
// (docs/TRANSFORMATIONS.md).
type Program struct {
	prog    *goja.Program
	timeout time.Duration
}

// getter finds the function transform, declared with function, var, let
// or const: a lexical declaration is no property of the global object.
var getter = goja.MustCompile("get.js", `typeof transform === "function" ? transform : undefined`, false)

// Compile compiles src, whose top level must declare a function
// transform(event), and runs its top level once to check that (within
// timeout: 0 is DefaultTimeout). A syntax error names its line:column.
func Compile(src string, timeout time.Duration) (*Program, error) {
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	timeout = min(timeout, MaxTimeout)
	if len(src) > MaxSource {
		return nil, fail("source of %d bytes, more than %d", len(src), MaxSource)
	}
	if !utf8.ValidString(src) {
		return nil, fail("source is not UTF-8")
	}
	prog, err := compileSafe(src)
	if err != nil {
		return nil, err
	}
	p := &Program{prog: prog, timeout: timeout}
	err = p.with(true, func(c *call) error {
		_, err := c.function()
		return err
	})
	if err != nil {
		return nil, err
	}
	return p, nil
}

func compileSafe(src string) (prog *goja.Program, err error) {
	defer func() {
		if r := recover(); r != nil {
			prog, err = nil, fail("compile: internal error: %v", r)
		}
	}()
	prog, err = goja.Compile(scriptName, src, false)
	if err != nil {
		var se *goja.CompilerSyntaxError
		if errors.As(err, &se) {
			return nil, fail("SyntaxError: %s", strings.TrimPrefix(se.Message, scriptName+": "))
		}
		return nil, fail("%s", strings.TrimPrefix(err.Error(), scriptName+": "))
	}
	return prog, nil
}

// Timeout is the time limit of one call.
func (p *Program) Timeout() time.Duration { return p.timeout }

// Run calls the function with ev. A throw, a timeout, the memory guard or
// a bad return value is an *Error; a panic inside goja is recovered into
// one too.
func (p *Program) Run(ev JSEvent) (res Result, err error) {
	if len(ev.Body) > MaxInput {
		return Result{}, fail("event body of %d bytes, more than %d", len(ev.Body), MaxInput)
	}
	start := time.Now()
	res, err = p.run(ev, false)
	var te *Error
	if errors.As(err, &te) && te.timeout && time.Since(start) < wallLimit(p.timeout) {
		if retried != nil {
			retried()
		}
		// Cut by the wall clock, which counts the time the call waited
		// for a CPU on a busy machine: run once more counting its CPU
		// time (the code has no I/O, so running it again changes
		// nothing but the time). Not when the try already ran past the
		// wall limit, which would cut the second try too: one step out
		// of the interrupt's reach held it (a backtracking regular
		// expression runs up to 5 s), and would again.
		res, err = p.run(ev, true)
	}
	res.Duration = time.Since(start)
	return res, err
}

// retried, when set (by tests), is called when Run tries a call again.
var retried func()

// run is one try of Run; cpu: see with.
func (p *Program) run(ev JSEvent, cpu bool) (res Result, err error) {
	var logs []string
	err = p.with(cpu, func(c *call) error {
		fn, err := c.function()
		if err != nil {
			return err
		}
		in, err := c.input(ev)
		if err != nil {
			return err
		}
		v, err := fn(goja.Undefined(), in)
		if err != nil {
			return err
		}
		res, err = c.output(ev, v)
		return err
	}, &logs)
	res.Logs = logs
	if err != nil {
		var te *Error
		if errors.As(err, &te) {
			te.Logs = logs
		}
		return res, err
	}
	return res, nil
}

// call is one run in a fresh runtime.
type call struct {
	p         *Program
	rt        *goja.Runtime
	parse     goja.Callable
	stringify goja.Callable
	logs      *[]string
	errors    map[string]goja.Constructor
	logBytes  int
	dropped   int
}

// interrupt values: why a call was stopped.
type stopReason string

const (
	stopTimeout stopReason = "timeout"
	stopMemory  stopReason = "memory"
)

// with runs f in a fresh runtime under the time limit and the memory
// guard, and turns whatever ends it (a throw, an interrupt, a panic) into
// an *Error.
func (p *Program) with(cpu bool, f func(*call) error, logs ...*[]string) (err error) {
	c := &call{p: p, rt: goja.New()}
	if len(logs) > 0 {
		c.logs = logs[0]
	} else {
		c.logs = new([]string)
	}
	var guard *heapGuard
	defer func() {
		if r := recover(); r != nil {
			if e, ok := r.(error); ok {
				// A throw or an interrupt inside a Go call into goja
				// (a getter run while reading the result).
				var ex *goja.Exception
				if errors.As(e, &ex) {
					err = c.explain(e)
				} else {
					err = fail("internal error: %v", r)
				}
			} else {
				err = fail("internal error: %v", r)
			}
		}
		if guard != nil {
			guard.stop()
		}
	}()
	if err := c.setup(); err != nil {
		return err
	}
	// The time limit is wall time; with cpu, it counts the CPU time of
	// the call instead (the thread running it is locked to it for the
	// call, which costs thread switches: only a call the wall clock cut
	// runs so), so that a call that waits for a CPU on a busy machine is
	// not cut: the timer looks at the thread's CPU clock and waits for
	// the rest. A call is cut anyway once wallLimit has passed.
	clockOK := false
	var clock threadClock
	if cpu {
		runtime.LockOSThread()
		defer runtime.UnlockOSThread()
		clock, clockOK = newThreadClock()
	}
	start := time.Now()
	wall := wallLimit(p.timeout)
	rt := c.rt
	var tmu sync.Mutex
	var timer *time.Timer
	tmu.Lock()
	timer = time.AfterFunc(p.timeout, func() {
		if !clockOK {
			rt.Interrupt(stopTimeout)
			return
		}
		used, ok := clock.used()
		if !ok || used >= p.timeout || time.Since(start) >= wall {
			rt.Interrupt(stopTimeout)
			return
		}
		tmu.Lock()
		timer.Reset(max(p.timeout-used, time.Millisecond))
		tmu.Unlock()
	})
	tmu.Unlock()
	defer func() {
		tmu.Lock()
		timer.Stop()
		tmu.Unlock()
	}()
	guard = startHeapGuard(rt)
	return c.explain(f(c))
}

// wallLimit is the wall-clock time after which a call is cut whatever CPU
// time it used: ten times its limit, at least one second more than it.
func wallLimit(timeout time.Duration) time.Duration {
	return max(10*timeout, timeout+time.Second)
}

// setup takes JSON's functions before user code can replace them, and
// installs console.log and the bounded string builders.
func (c *call) setup() error {
	rt := c.rt
	rt.SetMaxCallStackSize(maxCallStack)
	c.errors = map[string]goja.Constructor{}
	for _, kind := range []string{"RangeError", "SyntaxError"} {
		if ctor, ok := goja.AssertConstructor(rt.Get(kind)); ok {
			c.errors[kind] = ctor
		}
	}
	js := rt.Get("JSON").ToObject(rt)
	var ok bool
	if c.parse, ok = goja.AssertFunction(js.Get("parse")); !ok {
		return fail("internal error: no JSON.parse")
	}
	if c.stringify, ok = goja.AssertFunction(js.Get("stringify")); !ok {
		return fail("internal error: no JSON.stringify")
	}
	// JSON.parse recurses in Go once per level of nesting: a few MiB of
	// '[' built at run time would overflow the goroutine's stack, a fatal
	// error no recover catches. The user's JSON.parse checks the nesting
	// first (the original stays in c.parse, out of user code's reach).
	parse := c.parse
	_ = js.Set("parse", func(fc goja.FunctionCall) goja.Value {
		text := fc.Argument(0)
		if s, ok := text.Export().(string); ok && jsonlimit.Check([]byte(s), MaxDepth) != nil {
			c.throwError("SyntaxError", "JSON.parse: the text nests deeper than %d levels", MaxDepth)
		}
		v, err := parse(fc.This, fc.Arguments...)
		if err != nil {
			panic(err)
		}
		return v
	})
	stringify := c.stringify
	_ = js.Set("stringify", func(fc goja.FunctionCall) goja.Value {
		if o, ok := fc.Argument(0).(*goja.Object); ok {
			indent := 0
			switch sp := fc.Argument(2).Export().(type) {
			case string:
				indent = min(len(sp), 10)
			case int64:
				indent = int(min(max(sp, 0), 10))
			case float64:
				indent = int(min(max(sp, 0), 10))
			}
			if !shallow(o, MaxDepth, 1_000_000, MaxString, indent) {
				c.throwError("RangeError", "JSON.stringify: the value nests deeper than %d levels, holds a cycle, more than 1000000 objects, or would be over %d bytes", MaxDepth, MaxString)
			}
		}
		v, err := stringify(fc.This, fc.Arguments...)
		if err != nil {
			panic(err)
		}
		return v
	})
	if err := c.boundDynamicCode(); err != nil {
		return err
	}
	console := rt.NewObject()
	if err := console.Set("log", c.log); err != nil {
		return err
	}
	for _, name := range []string{"info", "warn", "error", "debug"} {
		_ = console.Set(name, c.log)
	}
	if err := rt.Set("console", console); err != nil {
		return err
	}
	proto := rt.Get("String").ToObject(rt).Get("prototype").ToObject(rt)
	for _, name := range []string{"repeat", "padStart", "padEnd"} {
		orig, ok := goja.AssertFunction(proto.Get(name))
		if !ok {
			continue
		}
		name := name
		wrapped := func(fc goja.FunctionCall) goja.Value {
			n := int64(len(fc.This.String()))
			if len(fc.Arguments) > 0 {
				k := fc.Arguments[0].ToFloat()
				switch {
				case math.IsNaN(k) || k < 0:
					k = 0
				case name == "repeat":
					k *= float64(max(n, 1))
				}
				if k > MaxString {
					panic(rt.NewTypeError("String.prototype.%s: the result would be over %d bytes", name, MaxString))
				}
			}
			v, err := orig(fc.This, fc.Arguments...)
			if err != nil {
				panic(err)
			}
			return v
		}
		_ = proto.Set(name, wrapped)
	}
	c.boundArrays()
	return nil
}

// throwError throws a new error of kind (RangeError, SyntaxError…),
// built with the constructor taken at setup, before user code could
// replace it.
func (c *call) throwError(kind, format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	if ctor := c.errors[kind]; ctor != nil {
		if o, err := ctor(nil, c.rt.ToValue(msg)); err == nil {
			panic(o)
		}
	}
	panic(c.rt.NewTypeError(msg))
}

// arrayNatives are the methods of Array.prototype that loop over the
// whole length in one Go call, without running JavaScript in between
// (nothing the interrupt or the memory guard can stop): an array whose
// length was set to 1e8 would make them allocate gigabytes.
var arrayNatives = []string{"fill", "join", "toString", "toLocaleString", "reverse", "sort", "copyWithin",
	"indexOf", "lastIndexOf", "includes", "slice", "splice", "concat", "flat"}

// boundArrays makes the natives that work through a whole array at once
// refuse an array (or array-like) of more than MaxArrayLength elements,
// join (and so toString) a result of more than MaxString bytes of
// strings, and split a result of more than MaxArrayLength pieces.
func (c *call) boundArrays() {
	rt := c.rt
	lengthOf := func(v goja.Value) int64 {
		o, ok := v.(*goja.Object)
		if !ok {
			return 0
		}
		l := o.Get("length")
		if l == nil {
			return 0
		}
		f := l.ToFloat()
		if math.IsNaN(f) || f < 0 {
			return 0
		}
		return int64(min(f, 1<<53))
	}
	tooLong := func(name string, n int64) {
		c.throwError("RangeError", "%s: %d elements, more than %d", name, n, MaxArrayLength)
	}
	wrap := func(holder *goja.Object, name string, check func(fc goja.FunctionCall)) {
		orig, ok := goja.AssertFunction(holder.Get(name))
		if !ok {
			return
		}
		_ = holder.Set(name, func(fc goja.FunctionCall) goja.Value {
			check(fc)
			v, err := orig(fc.This, fc.Arguments...)
			if err != nil {
				panic(err)
			}
			return v
		})
	}
	array := rt.Get("Array").ToObject(rt)
	proto := array.Get("prototype").ToObject(rt)
	for _, name := range arrayNatives {
		name := "Array.prototype." + name
		wrap(proto, name[len("Array.prototype."):], func(fc goja.FunctionCall) {
			n := lengthOf(fc.This)
			if n > MaxArrayLength {
				tooLong(name, n)
			}
			if strings.HasSuffix(name, "concat") {
				for _, a := range fc.Arguments {
					if m := lengthOf(a); m > MaxArrayLength {
						tooLong(name, m)
					}
				}
			}
			if strings.HasSuffix(name, "join") || strings.HasSuffix(name, "String") {
				// The strings among the elements, and the separators,
				// give the least the result can weigh.
				sep := int64(1)
				if a := fc.Argument(0); strings.HasSuffix(name, "join") && !goja.IsUndefined(a) {
					sep = int64(len(a.String()))
				}
				size := sep * max(n-1, 0)
				o, _ := fc.This.(*goja.Object)
				for i := int64(0); o != nil && i < n && size <= MaxString; i++ {
					if s, ok := o.Get(strconv.FormatInt(i, 10)).Export().(string); ok {
						size += int64(len(s))
					}
				}
				if size > MaxString {
					c.throwError("RangeError", "%s: the result would be over %d bytes", name, MaxString)
				}
			}
		})
	}
	wrap(array, "from", func(fc goja.FunctionCall) {
		if n := lengthOf(fc.Argument(0)); n > MaxArrayLength {
			tooLong("Array.from", n)
		}
	})
	// apply and its kin copy the array of arguments into a Go slice
	// first.
	fproto := rt.Get("Function").ToObject(rt).Get("prototype").ToObject(rt)
	wrap(fproto, "apply", func(fc goja.FunctionCall) {
		if n := lengthOf(fc.Argument(1)); n > MaxArrayLength {
			tooLong("Function.prototype.apply", n)
		}
	})
	reflect := rt.Get("Reflect").ToObject(rt)
	for _, name := range []string{"apply", "construct"} {
		name := name
		wrap(reflect, name, func(fc goja.FunctionCall) {
			i := 1
			if name == "apply" {
				i = 2
			}
			if n := lengthOf(fc.Argument(i)); n > MaxArrayLength {
				tooLong("Reflect."+name, n)
			}
		})
	}
	sproto := rt.Get("String").ToObject(rt).Get("prototype").ToObject(rt)
	wrap(sproto, "split", func(fc goja.FunctionCall) {
		sep, ok := fc.Argument(0).Export().(string)
		if !ok {
			return
		}
		str := fc.This.String()
		var n int64
		if sep == "" {
			n = int64(len(str))
		} else {
			n = int64(strings.Count(str, sep)) + 1
		}
		if n > MaxArrayLength {
			tooLong("String.prototype.split", n)
		}
	})
}

// dynamicCode finds the constructors of functions built from source text
// at run time (Function's and those of generators and async functions).
var dynamicCode = goja.MustCompile("ctors.js", `[Function,
	Object.getPrototypeOf(function*(){}),
	Object.getPrototypeOf(async function(){})]`, false)

// boundDynamicCode bounds the source that eval and the function
// constructors compile to MaxSource, the bound of the transformation's own
// source: goja's parser recurses in Go once per level of nesting, so
// megabytes of '(' built at run time would overflow the goroutine's stack
// (a fatal error no recover catches). eval so wrapped is always an
// indirect eval (it sees the global scope only).
func (c *call) boundDynamicCode() error {
	rt := c.rt
	check := func(name string, args []goja.Value) {
		n := 0
		for _, a := range args {
			if s, ok := a.Export().(string); ok {
				n += len(s)
			}
		}
		if n > MaxSource {
			c.throwError("RangeError", "%s: source of %d bytes, more than %d", name, n, MaxSource)
		}
	}
	eval, ok := goja.AssertFunction(rt.Get("eval"))
	if !ok {
		return fail("internal error: no eval")
	}
	if err := rt.Set("eval", func(fc goja.FunctionCall) goja.Value {
		check("eval", fc.Arguments)
		v, err := eval(goja.Undefined(), fc.Arguments...)
		if err != nil {
			panic(err)
		}
		return v
	}); err != nil {
		return err
	}
	v, err := rt.RunProgram(dynamicCode)
	if err != nil {
		return err
	}
	list := v.ToObject(rt)
	for i := 0; i < 3; i++ {
		// The first is Function itself; the others are prototypes whose
		// constructor is reached only through them.
		holder := list.Get(fmt.Sprint(i)).ToObject(rt)
		ctorVal := goja.Value(holder)
		if i > 0 {
			ctorVal = holder.Get("constructor")
		}
		ctor, ok := goja.AssertFunction(ctorVal)
		if !ok {
			return fail("internal error: no function constructor %d", i)
		}
		name := "Function"
		if n, ok := exportString(ctorVal.ToObject(rt).Get("name")); ok && n != "" {
			name = n
		}
		proto := ctorVal.ToObject(rt).Get("prototype")
		wrapped := rt.ToValue(func(cc goja.ConstructorCall) *goja.Object {
			check(name, cc.Arguments)
			f, err := ctor(goja.Undefined(), cc.Arguments...)
			if err != nil {
				panic(err)
			}
			return f.ToObject(rt)
		}).ToObject(rt)
		_ = wrapped.DefineDataProperty("prototype", proto, goja.FLAG_FALSE, goja.FLAG_FALSE, goja.FLAG_FALSE)
		_ = wrapped.DefineDataProperty("name", rt.ToValue(name), goja.FLAG_FALSE, goja.FLAG_FALSE, goja.FLAG_TRUE)
		if p, ok := proto.(*goja.Object); ok {
			if err := p.DefineDataProperty("constructor", wrapped, goja.FLAG_TRUE, goja.FLAG_FALSE, goja.FLAG_TRUE); err != nil {
				return err
			}
		}
		if i == 0 {
			if err := rt.Set("Function", wrapped); err != nil {
				return err
			}
		}
	}
	return nil
}

// log is console.log: its arguments joined with spaces, kept within the
// bounds.
func (c *call) log(fc goja.FunctionCall) goja.Value {
	if len(*c.logs) >= MaxLogLines || c.logBytes >= MaxLogBytes {
		c.dropped++
		c.noteDropped()
		return goja.Undefined()
	}
	var b strings.Builder
	for i, a := range fc.Arguments {
		if i > 0 {
			b.WriteByte(' ')
		}
		b.WriteString(c.show(a))
		if b.Len() > MaxLogBytes {
			break
		}
	}
	line := b.String()
	if room := MaxLogBytes - c.logBytes; len(line) > room {
		line = truncateUTF8(line, room) + "…"
	}
	c.logBytes += len(line)
	*c.logs = append(*c.logs, line)
	return goja.Undefined()
}

// noteDropped keeps a last line that counts the dropped lines.
func (c *call) noteDropped() {
	note := fmt.Sprintf("… %d more console.log lines dropped", c.dropped)
	l := *c.logs
	if c.dropped > 1 && len(l) > 0 && strings.HasPrefix(l[len(l)-1], "… ") {
		l[len(l)-1] = note
		return
	}
	*c.logs = append(l, note)
}

// show renders one console.log argument: a string as is, an object as
// JSON when it can be, anything else as JavaScript's String() does.
func (c *call) show(v goja.Value) string {
	if v == nil || goja.IsUndefined(v) {
		return "undefined"
	}
	if goja.IsNull(v) {
		return "null"
	}
	if _, ok := v.Export().(string); ok {
		return v.String()
	}
	if o, ok := v.(*goja.Object); ok {
		if _, fn := goja.AssertFunction(o); !fn {
			if !shallow(o, MaxDepth, 100_000, 4*MaxLogBytes, 0) {
				return "[" + typeOf(v) + " too large to show]"
			}
			if s, err := c.stringify(goja.Undefined(), v); err == nil && !goja.IsUndefined(s) {
				return s.String()
			}
		}
	}
	return v.String()
}

// function runs the program's top level and returns its function
// transform.
func (c *call) function() (goja.Callable, error) {
	if _, err := c.rt.RunProgram(c.p.prog); err != nil {
		return nil, err
	}
	v, err := c.rt.RunProgram(getter)
	if err != nil {
		return nil, err
	}
	fn, ok := goja.AssertFunction(v)
	if !ok {
		return nil, fail("no function transform(event) is declared")
	}
	return fn, nil
}

// input builds the event object the function receives.
func (c *call) input(ev JSEvent) (goja.Value, error) {
	rt := c.rt
	o := rt.NewObject()
	set := func(k string, v any) { _ = o.Set(k, v) }
	set("id", ev.ID)
	set("source", ev.Source)
	set("type", ev.Type)
	set("key", ev.Key)
	h := rt.NewObject()
	names := make([]string, 0, len(ev.Headers))
	for k := range ev.Headers {
		names = append(names, k)
	}
	sort.Strings(names)
	for _, k := range names {
		_ = h.Set(k, ev.Headers[k])
	}
	set("headers", h)
	body := goja.Value(rt.ToValue(string(ev.Body)))
	if isJSON(ev.ContentType, ev.Body) && jsonlimit.Check(ev.Body, MaxDepth) == nil {
		if v, err := c.parse(goja.Undefined(), body); err == nil {
			body = v
		}
	}
	set("body", body)
	if ev.Path != nil {
		set("path", *ev.Path)
	}
	if ev.Query != nil {
		set("query", *ev.Query)
	}
	return o, nil
}

// isJSON tells whether a body is read as JSON: its media type says so, or
// it has none that says otherwise and looks like an object or array.
func isJSON(ct string, b []byte) bool {
	mt := strings.ToLower(strings.TrimSpace(strings.SplitN(ct, ";", 2)[0]))
	if mt == "application/json" || strings.HasSuffix(mt, "+json") {
		return true
	}
	if mt != "" && mt != "text/plain" && mt != "application/octet-stream" {
		return false
	}
	s := strings.TrimLeft(string(b[:min(len(b), 64)]), " \t\r\n")
	return strings.HasPrefix(s, "{") || strings.HasPrefix(s, "[")
}

// forbidden are the headers a transformation cannot set: hop-by-hop
// headers, and those the HTTP client derives itself.
var forbidden = map[string]bool{
	"host": true, "content-length": true, "connection": true, "keep-alive": true, "proxy-connection": true,
	"proxy-authenticate": true, "proxy-authorization": true, "te": true, "trailer": true,
	"transfer-encoding": true, "upgrade": true,
}

// output reads what the function returned.
func (c *call) output(in JSEvent, v goja.Value) (Result, error) {
	if o, ok := v.(*goja.Object); ok {
		// An async function returns a Promise: its jobs have run when the
		// call returned (there is no I/O to wait for), so what it settled
		// with is the result. Read as an object, a Promise has no field:
		// the event went out unchanged, even when the function threw or
		// returned null.
		if pr, ok := o.Export().(*goja.Promise); ok {
			switch pr.State() {
			case goja.PromiseStateFulfilled:
				v = pr.Result()
			case goja.PromiseStateRejected:
				return Result{}, fail("%s (the async function's Promise was rejected)", truncateUTF8(c.safeString(pr.Result()), 512))
			default:
				return Result{}, fail("the function returned a Promise that is still pending (an async function can await nothing here)")
			}
		}
	}
	if v == nil || goja.IsUndefined(v) {
		return Result{}, fail("the function returned undefined (return the event, or null to skip the delivery)")
	}
	if goja.IsNull(v) {
		return Result{Skip: true}, nil
	}
	o, ok := v.(*goja.Object)
	if !ok {
		return Result{}, fail("the function returned a %s, not an object or null", typeOf(v))
	}
	out := in
	out.Headers = make(map[string]string, len(in.Headers))
	for k, v := range in.Headers {
		out.Headers[k] = v
	}
	res := Result{}
	if t := o.Get("type"); t != nil && !goja.IsUndefined(t) {
		s, ok := t.Export().(string)
		if !ok {
			return Result{}, fail("type is a %s, not a string", typeOf(t))
		}
		if len(s) > 256 {
			return Result{}, fail("type of %d bytes, more than 256", len(s))
		}
		out.Type = s
	}
	if b := o.Get("body"); b != nil && !goja.IsUndefined(b) {
		body, json, err := c.body(b)
		if err != nil {
			return Result{}, err
		}
		out.Body = body
		if json && !isJSONType(in.ContentType) {
			out.ContentType = "application/json"
		}
	}
	if h := o.Get("headers"); h != nil && !goja.IsUndefined(h) && !goja.IsNull(h) {
		ho, ok := h.(*goja.Object)
		if !ok {
			return Result{}, fail("headers is a %s, not an object", typeOf(h))
		}
		keys := ho.Keys()
		for _, k := range keys {
			hv := ho.Get(k)
			name := strings.ToLower(k)
			if !httpguts.ValidHeaderFieldName(name) {
				return Result{}, fail("header name %q is not valid", truncateUTF8(k, 64))
			}
			var val string
			switch x := hv.Export().(type) {
			case string:
				val = x
			case int64, float64, bool:
				val = hv.String()
			default:
				return Result{}, fail("header %s is a %s, not a string", name, typeOf(hv))
			}
			if old, had := in.Headers[name]; had && old == val {
				continue
			}
			if forbidden[name] {
				return Result{}, fail("header %s cannot be set by a transformation", name)
			}
			if !httpguts.ValidHeaderFieldValue(val) || len(val) > 8<<10 {
				return Result{}, fail("header %s: value not valid in an HTTP header (or over 8 KiB)", name)
			}
			if name == "content-type" {
				out.ContentType = val
				out.Headers[name] = val
				continue
			}
			if res.Set == nil {
				res.Set = map[string]string{}
			}
			if len(res.Set) >= MaxHeaders {
				return Result{}, fail("more than %d headers set", MaxHeaders)
			}
			res.Set[name] = val
			out.Headers[name] = val
		}
	}
	if p := o.Get("path"); p != nil && !goja.IsUndefined(p) {
		s, ok := p.Export().(string)
		if !ok {
			return Result{}, fail("path is a %s, not a string", typeOf(p))
		}
		if err := checkPath(s); err != nil {
			return Result{}, err
		}
		out.Path = &s
	}
	if q := o.Get("query"); q != nil && !goja.IsUndefined(q) {
		s, ok := q.Export().(string)
		if !ok {
			return Result{}, fail("query is a %s, not a string", typeOf(q))
		}
		s = strings.TrimPrefix(s, "?")
		if err := checkQuery(s); err != nil {
			return Result{}, err
		}
		out.Query = &s
	}
	res.Event = out
	return res, nil
}

func isJSONType(ct string) bool {
	mt := strings.ToLower(strings.TrimSpace(strings.SplitN(ct, ";", 2)[0]))
	return mt == "application/json" || strings.HasSuffix(mt, "+json")
}

// body encodes a returned body: a string as is, anything else as JSON.
func (c *call) body(b goja.Value) ([]byte, bool, error) {
	if s, ok := b.Export().(string); ok {
		if len(s) > MaxOutput {
			return nil, false, fail("body of %d bytes, more than %d", len(s), MaxOutput)
		}
		return []byte(b.String()), false, nil
	}
	if o, ok := b.(*goja.Object); ok {
		if _, fn := goja.AssertFunction(o); fn {
			return nil, false, fail("body is a function")
		}
		if !shallow(o, MaxDepth, 1_000_000, 2*MaxOutput, 0) {
			return nil, false, fail("body nests deeper than %d levels, or holds a cycle, too many objects or more than %d bytes", MaxDepth, MaxOutput)
		}
	}
	s, err := c.stringify(goja.Undefined(), b)
	if err != nil {
		return nil, false, err
	}
	if s == nil || goja.IsUndefined(s) {
		return nil, false, fail("body cannot be encoded as JSON")
	}
	str := s.String()
	if len(str) > MaxOutput {
		return nil, false, fail("body of %d bytes, more than %d", len(str), MaxOutput)
	}
	return []byte(str), true, nil
}

// shallow walks v iteratively (no Go recursion, which JSON.stringify
// would do) and reports whether it nests at most max levels, holds at
// most maxNodes objects (a cycle never passes) and, as JSON indented by
// indent spaces a level, would take at most maxBytes: JSON.stringify
// works through plain data in one Go call, out of the interrupt's and the
// memory guard's reach, and an array of 4M references to one 16 MiB
// string would be a result of 64 TiB.
func shallow(v *goja.Object, max, maxNodes int, maxBytes int64, indent int) bool {
	type node struct {
		o *goja.Object
		d int
	}
	st := []node{{v, 1}}
	n := 0
	size := int64(2)
	for len(st) > 0 {
		x := st[len(st)-1]
		st = st[:len(st)-1]
		if x.d > max {
			return false
		}
		if n++; n > maxNodes {
			return false
		}
		for _, k := range x.o.Keys() {
			size += int64(len(k) + 4 + indent*x.d)
			switch e := x.o.Get(k).(type) {
			case *goja.Object:
				st = append(st, node{e, x.d + 1})
				size += 2
			case nil:
			default:
				if str, ok := e.Export().(string); ok {
					size += int64(len(str)) + 2
				} else {
					size += 24
				}
			}
			if size > maxBytes {
				return false
			}
		}
	}
	return true
}

func checkPath(s string) error {
	switch {
	case len(s) > 2048:
		return fail("path of %d bytes, more than 2048", len(s))
	case !strings.HasPrefix(s, "/"):
		return fail("path %q must start with /", truncateUTF8(s, 64))
	case strings.ContainsAny(s, "?# "):
		return fail("path %q must not hold '?', '#' or spaces (set query apart)", truncateUTF8(s, 64))
	}
	if hasCtl(s) {
		return fail("path holds control characters")
	}
	if _, err := url.Parse(s); err != nil {
		return fail("path %q is not valid", truncateUTF8(s, 64))
	}
	return nil
}

func checkQuery(s string) error {
	switch {
	case len(s) > 4096:
		return fail("query of %d bytes, more than 4096", len(s))
	case strings.ContainsAny(s, "# "):
		return fail("query must not hold '#' or spaces")
	case hasCtl(s):
		return fail("query holds control characters")
	}
	return nil
}

func hasCtl(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < 0x20 || s[i] == 0x7f {
			return true
		}
	}
	return false
}

func typeOf(v goja.Value) string {
	switch {
	case v == nil || goja.IsUndefined(v):
		return "undefined"
	case goja.IsNull(v):
		return "null"
	}
	switch v.Export().(type) {
	case string:
		return "string"
	case int64, float64:
		return "number"
	case bool:
		return "boolean"
	}
	if o, ok := v.(*goja.Object); ok {
		if _, fn := goja.AssertFunction(o); fn {
			return "function"
		}
		if o.ClassName() == "Array" {
			return "array"
		}
		return "object"
	}
	return "value"
}

// explain turns what ended a call into an *Error naming the cause.
func (c *call) explain(err error) error {
	if err == nil {
		return nil
	}
	var te *Error
	if errors.As(err, &te) {
		return te
	}
	var ie *goja.InterruptedError
	if errors.As(err, &ie) {
		switch ie.Value() {
		case stopTimeout:
			e := fail("timed out after %s", c.p.timeout)
			e.timeout = true
			return e
		case stopMemory:
			return fail("memory limit: the heap grew by more than %d MiB during the call", MaxHeapGrowth>>20)
		}
		return fail("interrupted")
	}
	var so *goja.StackOverflowError
	if errors.As(err, &so) {
		return fail("RangeError: call stack exceeded")
	}
	var ex *goja.Exception
	if errors.As(err, &ex) {
		msg := "Error"
		if v := ex.Value(); v != nil {
			msg = c.safeString(v)
		}
		msg = truncateUTF8(msg, 512)
		for _, f := range ex.Stack() {
			if f.SrcName() == scriptName {
				pos := f.Position()
				return fail("%s at line %d:%d", msg, pos.Line, pos.Column)
			}
		}
		return fail("%s", msg)
	}
	return fail("%s", truncateUTF8(err.Error(), 512))
}

// safeString is String() of a thrown value, which may itself throw (a
// toString that throws) or loop: a panic becomes a plain message.
func (c *call) safeString(v goja.Value) (s string) {
	defer func() {
		if recover() != nil {
			s = "an exception that cannot be shown"
		}
	}()
	if o, ok := v.(*goja.Object); ok {
		// An Error's name and message, without running user code.
		name, msg := o.Get("name"), o.Get("message")
		if n, ok := exportString(name); ok {
			if m, ok := exportString(msg); ok && m != "" {
				return n + ": " + m
			}
			return n
		}
		return "uncaught " + typeOf(v)
	}
	return v.String()
}

func exportString(v goja.Value) (string, bool) {
	if v == nil {
		return "", false
	}
	s, ok := v.Export().(string)
	return s, ok
}

func truncateUTF8(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}

// heapGuard watches the heap while a call runs and interrupts the call
// when the heap grew by more than MaxHeapGrowth since the guard's first
// look. The heap is the process's: growth is confirmed by a garbage
// collection (at most one every forcedGCEvery, process-wide; otherwise
// the live heap of the last collection counts) before a call is blamed,
// so that the garbage of other work does not count.
type heapGuard struct {
	rt      *goja.Runtime
	mu      sync.Mutex
	t       *time.Timer
	base    uint64
	stopped bool
}

var (
	lastForcedGC  atomic.Int64
	forcedGCEvery = 10 * time.Millisecond
	// heapLimit is MaxHeapGrowth; tests lower it.
	heapLimit uint64 = MaxHeapGrowth
)

func startHeapGuard(rt *goja.Runtime) *heapGuard {
	g := &heapGuard{rt: rt}
	g.mu.Lock()
	g.t = time.AfterFunc(heapCheckEvery, g.check)
	g.mu.Unlock()
	return g
}

func (g *heapGuard) stop() {
	g.mu.Lock()
	g.stopped = true
	g.t.Stop()
	g.mu.Unlock()
}

func (g *heapGuard) check() {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.stopped {
		return
	}
	now := heapObjects()
	if g.base == 0 {
		// The first look (the call ran heapCheckEvery already) sets the
		// base. Not the live heap: with hookd's GOGC the heap holds up to
		// several times its live size in garbage, which would look like
		// growth and force a collection on every long call.
		g.base = now
		g.t.Reset(heapCheckEvery)
		return
	}
	if now > g.base+heapLimit {
		last := lastForcedGC.Load()
		t := time.Now().UnixNano()
		if t-last >= int64(forcedGCEvery) && lastForcedGC.CompareAndSwap(last, t) {
			g.mu.Unlock()
			runtime.GC()
			g.mu.Lock()
			if g.stopped {
				return
			}
			now = heapObjects()
		} else {
			now = heapLive()
		}
		if now > g.base+heapLimit {
			g.rt.Interrupt(stopMemory)
			return
		}
	}
	g.t.Reset(heapCheckEvery)
}

func readMetric(name string) uint64 {
	s := []metrics.Sample{{Name: name}}
	metrics.Read(s)
	if s[0].Value.Kind() != metrics.KindUint64 {
		return 0
	}
	return s[0].Value.Uint64()
}

// heapObjects is the heap's objects, live or not yet swept.
func heapObjects() uint64 { return readMetric("/memory/classes/heap/objects:bytes") }

// heapLive is the live heap as of the last collection.
func heapLive() uint64 { return readMetric("/gc/heap/live:bytes") }
