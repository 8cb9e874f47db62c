// Package tracing makes hookd's OpenTelemetry spans and exports them over
// OTLP/HTTP (docs/TRACING.md). A nil *Tracer is tracing turned off: every
// method is then a no-op that makes no span, stores nothing and allocates
// nothing, so that the hot paths pay one nil check.
//
// The spans: hookd.ingest (one per ingest request, continuing an incoming
// W3C traceparent) with its children hookd.verify and hookd.commit;
// hookd.route (an event routed to its destinations); hookd.attempt (one
// delivery attempt). The ingest span's context is stored with the event
// (hookd.Event.TraceParent), and the route and attempt spans, made later
// and maybe by another replica, are its children.
package tracing

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/propagation"
	sdkresource "go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"

	"hookd/internal/config"
)

// Span names.
const (
	SpanIngest  = "hookd.ingest"
	SpanVerify  = "hookd.verify"
	SpanCommit  = "hookd.commit"
	SpanRoute   = "hookd.route"
	SpanAttempt = "hookd.attempt"
)

// Attribute keys hookd sets on its spans.
const (
	AttrSource      = attribute.Key("hookd.source")
	AttrEventID     = attribute.Key("hookd.event.id")
	AttrRequestID   = attribute.Key("hookd.request.id")
	AttrDuplicate   = attribute.Key("hookd.duplicate")
	AttrDestination = attribute.Key("hookd.destination")
	AttrDeliveryID  = attribute.Key("hookd.delivery.id")
	AttrAttempt     = attribute.Key("hookd.attempt")
	AttrOutcome     = attribute.Key("hookd.outcome")
	AttrDeliveries  = attribute.Key("hookd.deliveries")
	AttrStatusCode  = attribute.Key("http.response.status_code")
	AttrMethod      = attribute.Key("http.request.method")
)

// Tracer makes hookd's spans. The nil *Tracer is tracing off.
type Tracer struct {
	tp *sdktrace.TracerProvider
	tr trace.Tracer
}

// Options are what New takes besides the configuration.
type Options struct {
	// Version is hookd's version, the spans' service.version.
	Version string
	// Log is told of export failures. Nil: they are dropped.
	Log *slog.Logger
	// Exporter replaces the OTLP exporter (tests). Nil: OTLP/HTTP to
	// c.OTLPEndpoint.
	Exporter sdktrace.SpanExporter
}

// New returns the tracer c configures: nil (tracing off) when c has no
// endpoint. The exporter connects when the first batch is sent, so an
// unreachable collector does not keep hookd from starting: its failures
// are logged.
func New(c config.Tracing, o Options) (*Tracer, error) {
	if !c.On() && o.Exporter == nil {
		return nil, nil
	}
	exp := o.Exporter
	if exp == nil {
		if c.Protocol != "" && c.Protocol != config.TracingHTTPProtobuf {
			return nil, fmt.Errorf("tracing: protocol %q is not supported", c.Protocol)
		}
		// The exporter dials directly, not through the egress guard: the
		// collector is named by the operator alone (the configuration
		// file), and is usually on a private address that deliveries
		// must not reach (docs/TRACING.md). No proxy either: neither
		// egress.proxy nor the environment's HTTPS_PROXY applies.
		opts := []otlptracehttp.Option{
			otlptracehttp.WithEndpointURL(c.EndpointURL()),
			otlptracehttp.WithProxy(func(*http.Request) (*url.URL, error) { return nil, nil }),
			otlptracehttp.WithTimeout(c.ExportTimeout.D()),
		}
		if len(c.Headers) > 0 {
			opts = append(opts, otlptracehttp.WithHeaders(c.Headers))
		}
		var err error
		// New makes no connection.
		if exp, err = otlptracehttp.New(context.Background(), opts...); err != nil {
			return nil, fmt.Errorf("tracing: %w", err)
		}
	}
	if o.Log != nil {
		exp = &loggingExporter{SpanExporter: exp, log: o.Log}
	}
	name := c.ServiceName
	if name == "" {
		name = config.DefaultTracingServiceName
	}
	res := sdkresource.NewSchemaless(attribute.String("service.name", name), attribute.String("service.version", o.Version))
	batch := c.BatchTimeout.D()
	if batch <= 0 {
		batch = config.DefaultTracingBatchTimeout.D()
	}
	tp := sdktrace.NewTracerProvider(
		sdktrace.WithResource(res),
		// A trace continued from a traceparent keeps the caller's
		// decision; a new one is recorded at the configured ratio.
		sdktrace.WithSampler(sdktrace.ParentBased(sdktrace.TraceIDRatioBased(c.Ratio()))),
		sdktrace.WithBatcher(exp, sdktrace.WithBatchTimeout(batch), sdktrace.WithExportTimeout(max(c.ExportTimeout.D(), time.Second))),
	)
	return &Tracer{tp: tp, tr: tp.Tracer("hookd", trace.WithInstrumentationVersion(o.Version))}, nil
}

// loggingExporter logs the failures of the exporter it wraps, at most
// once a minute, instead of the SDK's global error handler.
type loggingExporter struct {
	sdktrace.SpanExporter
	log  *slog.Logger
	last time.Time
}

func (l *loggingExporter) ExportSpans(ctx context.Context, spans []sdktrace.ReadOnlySpan) error {
	err := l.SpanExporter.ExportSpans(ctx, spans)
	// ExportSpans is not called concurrently (one batch processor).
	if err != nil && time.Since(l.last) > time.Minute {
		l.last = time.Now()
		l.log.Warn("tracing: spans not exported", "spans", len(spans), "err", err)
	}
	return err
}

// Shutdown exports the spans still queued, within ctx, and stops.
func (t *Tracer) Shutdown(ctx context.Context) error {
	if t == nil {
		return nil
	}
	return t.tp.Shutdown(ctx)
}

// noSpan is the span of tracing off: every method is a no-op.
var noSpan = trace.SpanFromContext(context.Background())

var traceContext propagation.TraceContext

// StartIngest starts the span of one ingest request, the child of the
// request's traceparent header when it has a valid one.
func (t *Tracer) StartIngest(ctx context.Context, h http.Header, source string) (context.Context, trace.Span) {
	if t == nil {
		return ctx, noSpan
	}
	ctx = traceContext.Extract(ctx, propagation.HeaderCarrier(h))
	return t.tr.Start(ctx, SpanIngest, trace.WithSpanKind(trace.SpanKindServer),
		trace.WithAttributes(AttrSource.String(source)))
}

// Start starts a span, the child of ctx's.
func (t *Tracer) Start(ctx context.Context, name string, kind trace.SpanKind) (context.Context, trace.Span) {
	if t == nil {
		return ctx, noSpan
	}
	return t.tr.Start(ctx, name, trace.WithSpanKind(kind))
}

// StartFrom starts a span whose parent is the span traceparent names (a
// stored hookd.Event.TraceParent), in ctx; a root span when traceparent
// is empty or invalid.
func (t *Tracer) StartFrom(ctx context.Context, traceparent, name string, kind trace.SpanKind) (context.Context, trace.Span) {
	if t == nil {
		return ctx, noSpan
	}
	if sc := Parse(traceparent); sc.IsValid() {
		ctx = trace.ContextWithRemoteSpanContext(ctx, sc)
	}
	return t.tr.Start(ctx, name, trace.WithSpanKind(kind))
}

// TraceParent is the W3C traceparent of span ("" when it has no valid
// context: tracing off).
func TraceParent(span trace.Span) string {
	sc := span.SpanContext()
	if !sc.IsValid() {
		return ""
	}
	// version 00, as traceContext.Inject writes it.
	tid, sid := sc.TraceID(), sc.SpanID()
	return "00-" + tid.String() + "-" + sid.String() + "-" + sc.TraceFlags().String()
}

// Parse reads a W3C traceparent; the zero SpanContext when it is not one.
func Parse(traceparent string) trace.SpanContext {
	if traceparent == "" {
		return trace.SpanContext{}
	}
	return trace.SpanContextFromContext(traceContext.Extract(context.Background(), propagation.MapCarrier{"traceparent": traceparent}))
}

// End ends span, with an error status when err is not nil.
func End(span trace.Span, err error) {
	if err != nil && span.IsRecording() {
		span.SetStatus(codes.Error, errorMessage(err))
	}
	span.End()
}

// SetError marks span as failed with err.
func SetError(span trace.Span, err error) {
	if err != nil && span.IsRecording() {
		span.SetStatus(codes.Error, errorMessage(err))
	}
}

// errorMessage is err's message, clipped: hookd's error messages name no
// secret, but a destination's may quote an answer.
func errorMessage(err error) string {
	const limit = 256
	s := err.Error()
	if len(s) > limit {
		s = s[:limit] + "…"
	}
	return s
}

// ErrCut is the status of an attempt cut by shutdown.
var ErrCut = errors.New("cut by shutdown; attempted again after the restart")
