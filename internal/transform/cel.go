package transform

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/cel-go/cel"
	"github.com/google/cel-go/common/operators"
	"github.com/google/cel-go/common/overloads"
	"github.com/google/cel-go/common/types"
	"github.com/google/cel-go/common/types/ref"
	"github.com/google/cel-go/common/types/traits"
	"golang.org/x/time/rate"

	"hookd"
	"hookd/internal/jsonlimit"
)

// Limits of filter expressions. An expression is compiled once, when its
// subscription is defined, and evaluated for every event routed past it,
// so both its size and its work per event are bounded.
const (
	// MaxExprSize bounds an expression's source, in code points.
	MaxExprSize = 4096
	// maxExprNesting bounds the parser's recursion.
	maxExprNesting = 64
	// CostLimit bounds the work of one evaluation, in CEL cost units
	// (roughly one per operation, and per element a macro visits). Past
	// it the evaluation stops with an error: the event does not match.
	CostLimit = 100_000
	// EvalTimeout bounds one evaluation in time; the interpreter checks
	// it every interruptEvery comprehension steps.
	EvalTimeout    = 50 * time.Millisecond
	interruptEvery = 100
	// maxBodyDepth bounds the nesting of a body a filter reads; a deeper
	// body is not parsed, and the filter sees it as a string.
	maxBodyDepth = jsonlimit.DefaultDepth
)

// Event is what a filter expression (and an enrichment URL template)
// sees of an event. Headers have lower-case names.
type Event struct {
	ID, Source, Type, Key string
	Headers               map[string]string
	Body                  []byte
}

// EventOf returns what filters see of e: header names in lower case, the
// first value of each.
func EventOf(e *hookd.Event) Event {
	ev := Event{ID: e.ID, Source: e.Source, Type: e.Type, Key: e.Key, Body: e.Body}
	if len(e.Headers) > 0 {
		ev.Headers = make(map[string]string, len(e.Headers))
		for k, v := range e.Headers {
			lk := strings.ToLower(k)
			if _, dup := ev.Headers[lk]; dup || len(v) == 0 {
				continue
			}
			ev.Headers[lk] = v[0]
		}
	}
	return ev
}

// Filter is a compiled filter expression. It is safe for concurrent use.
type Filter struct {
	src     string
	prg     cel.Program
	timeout time.Duration
}

var (
	envOnce sync.Once
	celEnv  *cel.Env
	envErr  error
)

// filterEnv is the environment every filter expression is checked in:
// the variables id, source, type, key (strings), headers
// (map(string, string)) and body (dyn).
func filterEnv() (*cel.Env, error) {
	envOnce.Do(func() {
		celEnv, envErr = cel.NewEnv(
			cel.Variable("id", cel.StringType),
			cel.Variable("source", cel.StringType),
			cel.Variable("type", cel.StringType),
			cel.Variable("key", cel.StringType),
			cel.Variable("headers", cel.MapType(cel.StringType, cel.StringType)),
			cel.Variable("body", cel.DynType),
			cel.CrossTypeNumericComparisons(true),
			cel.ParserExpressionSizeLimit(MaxExprSize),
			cel.ParserRecursionLimit(maxExprNesting),
		)
	})
	return celEnv, envErr
}

// CompileFilter parses and type-checks a filter expression. Errors give
// the position of the fault as line:column ("ERROR: <input>:1:8:
// undeclared reference to 'bdy'"), and an expression whose result is not
// a bool is refused.
func CompileFilter(expr string) (*Filter, error) { return compileFilter(expr, EvalTimeout) }

func compileFilter(expr string, timeout time.Duration) (*Filter, error) {
	if strings.TrimSpace(expr) == "" {
		return nil, errors.New("empty expression")
	}
	if n := len([]rune(expr)); n > MaxExprSize {
		return nil, fmt.Errorf("expression of %d characters, more than %d", n, MaxExprSize)
	}
	env, err := filterEnv()
	if err != nil {
		return nil, fmt.Errorf("filter environment: %w", err)
	}
	ast, iss := env.Compile(expr)
	if iss != nil && iss.Err() != nil {
		return nil, errors.New(strings.TrimSpace(iss.Err().Error()))
	}
	if t := ast.OutputType(); !t.IsExactType(types.BoolType) {
		return nil, fmt.Errorf("ERROR: <input>:1:1: the expression gives %s, not bool", t)
	}
	prg, err := env.Program(ast,
		cel.CostLimit(CostLimit),
		cel.CostTracking(dynCost{}),
		cel.InterruptCheckFrequency(interruptEvery),
	)
	if err != nil {
		return nil, err
	}
	return &Filter{src: expr, prg: prg, timeout: timeout}, nil
}

// dynCost prices the calls whose overload is chosen at run time. body is
// dyn, so the checker cannot choose the overload of body.s + body.s, and
// CEL's runtime then charges any such call 1, whatever the size of its
// operands: a chain of concatenations of a large body string built
// gigabytes in one evaluation, under the cost limit and out of the
// interrupt's reach. Such calls are charged here as CEL charges the same
// call on typed operands: by the bytes a string or bytes operation
// traverses, and by the elements "in" visits.
type dynCost struct{}

// stringTraversal is CEL's cost of one code point traversed.
const stringTraversal = 0.1

func (dynCost) CallCost(function, overloadID string, args []ref.Val, _ ref.Val) *uint64 {
	if overloadID != "" {
		return nil // chosen when checked: CEL prices it
	}
	size := func(v ref.Val) (uint64, bool) {
		switch x := v.(type) {
		case types.String:
			return uint64(len(x)), true
		case types.Bytes:
			return uint64(len(x)), true
		}
		return 0, false
	}
	var cost uint64
	switch function {
	case operators.Add:
		if len(args) == 2 {
			a, okA := size(args[0])
			b, okB := size(args[1])
			if okA && okB {
				cost = uint64(math.Ceil(float64(a+b) * stringTraversal))
			}
		}
	case operators.Less, operators.LessEquals, operators.Greater, operators.GreaterEquals:
		if len(args) == 2 {
			a, okA := size(args[0])
			b, okB := size(args[1])
			if okA && okB {
				cost = uint64(math.Ceil(float64(min(a, b)) * stringTraversal))
			}
		}
	case operators.In:
		if len(args) == 2 {
			if l, ok := args[1].(traits.Lister); ok {
				if n, ok := l.Size().(types.Int); ok && n > 0 {
					cost = uint64(n)
				}
			}
		}
	case overloads.TypeConvertString, overloads.TypeConvertBytes:
		if len(args) == 1 {
			if n, ok := size(args[0]); ok {
				cost = uint64(math.Ceil(float64(n) * stringTraversal))
			}
		}
	default:
		return nil
	}
	cost = max(cost, 1)
	return &cost
}

// String returns the expression's source.
func (f *Filter) String() string { return f.src }

// Match evaluates the expression for ev. An error (a missing key, a type
// mismatch at run time, the cost limit or the time limit reached) comes
// with false: callers treat it as no match.
func (f *Filter) Match(ev Event) (bool, error) { return f.match(ev, bodyValue(ev.Body)) }

// match is Match with the body already parsed (bodyValue).
func (f *Filter) match(ev Event, body any) (bool, error) {
	ctx, cancel := context.WithTimeout(context.Background(), f.timeout)
	defer cancel()
	headers := ev.Headers
	if headers == nil {
		headers = map[string]string{}
	}
	out, _, err := f.prg.ContextEval(ctx, map[string]any{
		"id": ev.ID, "source": ev.Source, "type": ev.Type, "key": ev.Key,
		"headers": headers,
		"body":    body,
	})
	if err != nil {
		return false, err
	}
	b, ok := out.Value().(bool)
	if !ok {
		return false, fmt.Errorf("result is %s, not bool", out.Type())
	}
	return b, nil
}

// bodyValue is the body as a filter sees it: parsed JSON, or the body as
// a string when it is not JSON (or nested deeper than maxBodyDepth).
func bodyValue(body []byte) any {
	if jsonlimit.Check(body, maxBodyDepth) == nil {
		var v any
		if err := json.Unmarshal(body, &v); err == nil {
			return v
		}
	}
	return string(body)
}

// compiled caches compiled filters by source, so that rebuilding the
// routing table after a change does not compile every expression again.
var compiled struct {
	sync.Mutex
	m map[string]*Filter
}

// maxCompiled bounds the cache; past it, it starts afresh.
const maxCompiled = 20_000

// CachedFilter is CompileFilter with a cache by source.
func CachedFilter(expr string) (*Filter, error) {
	compiled.Lock()
	f := compiled.m[expr]
	compiled.Unlock()
	if f != nil {
		return f, nil
	}
	f, err := CompileFilter(expr)
	if err != nil {
		return nil, err
	}
	compiled.Lock()
	if compiled.m == nil || len(compiled.m) >= maxCompiled {
		compiled.m = map[string]*Filter{}
	}
	compiled.m[expr] = f
	compiled.Unlock()
	return f, nil
}

// RouteFilter is a Filter as the routing table uses it (route.Matcher):
// an evaluation error means no match, and is logged at debug level, at
// most once per LogEvery for the subscription, so that a filter failing
// on every event does not flood the log.
type RouteFilter struct {
	f     *Filter
	log   *slog.Logger
	sub   string
	every rate.Sometimes
}

// LogEvery is how often, at most, a subscription's failing filter
// expression is logged.
const LogEvery = 10 * time.Second

// NewRouteFilter returns the route matcher of f for subscription sub;
// log may be nil.
func NewRouteFilter(f *Filter, sub string, log *slog.Logger) *RouteFilter {
	return &RouteFilter{f: f, log: log, sub: sub, every: rate.Sometimes{Interval: LogEvery}}
}

// Match reports whether e passes the filter.
func (r *RouteFilter) Match(e *hookd.Event) bool {
	ok, err := r.f.match(EventOf(e), parsedBodyOf(e))
	if err != nil && r.log != nil && r.log.Enabled(context.Background(), slog.LevelDebug) {
		r.every.Do(func() {
			r.log.Debug("filter_expr failed on an event; it does not match", "subscription", r.sub, "event", e.ID, "err", err)
		})
	}
	return ok && err == nil
}

// lastParsed is the body the routing table's filters saw last: the
// filters of several subscriptions read one event in a row, and parse its
// body once. Parsed values are never modified, so sharing them is safe.
var lastParsed atomic.Pointer[parsedBody]

type parsedBody struct {
	id   string
	body []byte
	v    any
}

// parsedBodyOf returns bodyValue(e.Body), parsed again only when e is not
// the event parsed last.
func parsedBodyOf(e *hookd.Event) any {
	if p := lastParsed.Load(); p != nil && p.id == e.ID && bytes.Equal(p.body, e.Body) {
		return p.v
	}
	p := &parsedBody{id: e.ID, body: e.Body, v: bodyValue(e.Body)}
	lastParsed.Store(p)
	return p.v
}
