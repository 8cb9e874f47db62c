package tracing

import (
	"context"
	"net/http"
	"strings"
	"testing"

	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"hookd/internal/config"
)

const (
	sampled   = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
	unsampled = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00"
)

func newTest(t *testing.T, ratio float64) (*Tracer, *tracetest.InMemoryExporter) {
	t.Helper()
	exp := tracetest.NewInMemoryExporter()
	tr, err := New(config.Tracing{SampleRatio: &ratio}, Options{Exporter: exp})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { tr.Shutdown(context.Background()) })
	return tr, exp
}

// With no endpoint there is no tracer, and the nil tracer makes no span,
// takes nothing from an incoming traceparent and allocates nothing.
func TestOffIsNilAndFree(t *testing.T) {
	tr, err := New(config.Tracing{}, Options{})
	if err != nil || tr != nil {
		t.Fatalf("New with no endpoint: got %v, %v; want nil, nil", tr, err)
	}
	h := http.Header{"Traceparent": {sampled}}
	ctx := context.Background()
	allocs := testing.AllocsPerRun(100, func() {
		c, s := tr.StartIngest(ctx, h, "src")
		_, v := tr.Start(c, SpanVerify, trace.SpanKindInternal)
		End(v, nil)
		_, a := tr.StartFrom(ctx, sampled, SpanAttempt, trace.SpanKindClient)
		End(a, nil)
		if TraceParent(s) != "" || trace.SpanContextFromContext(c).IsValid() {
			t.Fatal("tracing off made a span context")
		}
		s.End()
	})
	if allocs != 0 {
		t.Errorf("tracing off: got %v allocations per request, want 0", allocs)
	}
	if err := tr.Shutdown(ctx); err != nil {
		t.Errorf("Shutdown of nil: %v", err)
	}
}

func TestParse(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		in    string
		valid bool
	}{
		{sampled, true},
		{unsampled, true},
		{"", false},
		{"00-00000000000000000000000000000000-00f067aa0ba902b7-01", false}, // zero trace id
		{"00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01", false}, // zero span id
		{"ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", false}, // version ff
		{"00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01", false}, // upper case
		{"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7", false},
		{"garbage", false},
		{strings.Repeat("0", 1<<16), false},
	} {
		sc := Parse(c.in)
		if sc.IsValid() != c.valid {
			t.Errorf("Parse(%.60q): got valid %v, want %v", c.in, sc.IsValid(), c.valid)
		}
	}
}

// A span's traceparent, parsed, is the same span context: what ingest
// stores is what the attempt continues.
func TestTraceParentRoundTrip(t *testing.T) {
	t.Parallel()
	tr, _ := newTest(t, 1)
	_, span := tr.Start(context.Background(), SpanIngest, trace.SpanKindServer)
	defer span.End()
	tp := TraceParent(span)
	got := Parse(tp)
	want := span.SpanContext()
	if got.TraceID() != want.TraceID() || got.SpanID() != want.SpanID() || got.TraceFlags() != want.TraceFlags() {
		t.Errorf("Parse(TraceParent(span)) = %v, want %v (traceparent %q)", got, want, tp)
	}
}

// Sampling: a new trace is recorded at the ratio; a continued one follows
// its traceparent's flag, whatever the ratio, so that the attempts of an
// event are recorded exactly when its ingest was.
func TestSamplingFollowsTheParent(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		name, parent string
		ratio        float64
		want         bool
	}{
		{"NewAtRatio0", "", 0, false},
		{"NewAtRatio1", "", 1, true},
		{"SampledParentAtRatio0", sampled, 0, true},
		{"UnsampledParentAtRatio1", unsampled, 1, false},
		{"InvalidParentAtRatio1", "00-zz", 1, true},
	} {
		t.Run(c.name, func(t *testing.T) {
			tr, exp := newTest(t, c.ratio)
			_, span := tr.StartFrom(context.Background(), c.parent, SpanAttempt, trace.SpanKindClient)
			if span.IsRecording() != c.want || span.SpanContext().IsSampled() != c.want {
				t.Errorf("got recording %v sampled %v, want %v", span.IsRecording(), span.SpanContext().IsSampled(), c.want)
			}
			span.End()
			if err := tr.tp.ForceFlush(context.Background()); err != nil {
				t.Fatal(err)
			}
			if got := len(exp.GetSpans()); got != map[bool]int{true: 1}[c.want] {
				t.Errorf("got %d spans exported, want %d", got, map[bool]int{true: 1}[c.want])
			}
			if p := Parse(c.parent); p.IsValid() && c.want {
				if got := exp.GetSpans()[0].Parent.SpanID(); got != p.SpanID() {
					t.Errorf("parent: got %s, want %s", got, p.SpanID())
				}
			}
		})
	}
}

// An incoming traceparent is continued by the ingest span; a malformed one
// is ignored (a new trace).
func TestStartIngestContinuesTheCaller(t *testing.T) {
	t.Parallel()
	tr, _ := newTest(t, 1)
	for _, c := range []struct {
		header    string
		continued bool
	}{{sampled, true}, {"00-nonsense", false}, {"", false}} {
		h := http.Header{}
		if c.header != "" {
			h.Set("traceparent", c.header)
		}
		_, span := tr.StartIngest(context.Background(), h, "src")
		got := span.SpanContext().TraceID().String() == "4bf92f3577b34da6a3ce929d0e0e4736"
		if got != c.continued || !span.SpanContext().IsValid() {
			t.Errorf("traceparent %q: continued %v (valid %v), want %v", c.header, got, span.SpanContext().IsValid(), c.continued)
		}
		span.End()
	}
}
