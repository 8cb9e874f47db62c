package cli

import (
	"bytes"
	"compress/gzip"
	"encoding/hex"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync"
	"testing"
	"time"

	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
	"google.golang.org/protobuf/proto"

	"hookd/internal/config"
	"hookd/internal/store"
	"hookd/internal/tracing"
)

// otlpReceiver is an OTLP/HTTP trace receiver: it decodes each export
// request (protobuf) and keeps its spans and the request's headers.
type otlpReceiver struct {
	srv     *httptest.Server
	mu      sync.Mutex
	spans   []*tracepb.Span
	service []string // service.name of each resource received
	auth    []string // the Authorization header of each request
	changed chan struct{}
}

func newOTLPReceiver(t *testing.T) *otlpReceiver {
	r := &otlpReceiver{changed: make(chan struct{}, 1)}
	r.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		if req.Method != http.MethodPost || req.URL.Path != "/v1/traces" || req.Header.Get("Content-Type") != "application/x-protobuf" {
			t.Errorf("OTLP receiver: got %s %s (%s), want POST /v1/traces (application/x-protobuf)", req.Method, req.URL.Path, req.Header.Get("Content-Type"))
			http.Error(w, "unexpected", http.StatusBadRequest)
			return
		}
		var body io.Reader = io.LimitReader(req.Body, 16<<20)
		if req.Header.Get("Content-Encoding") == "gzip" {
			zr, err := gzip.NewReader(body)
			if err != nil {
				http.Error(w, err.Error(), http.StatusBadRequest)
				return
			}
			body = zr
		}
		raw, err := io.ReadAll(body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		var ex coltracepb.ExportTraceServiceRequest
		if err := proto.Unmarshal(raw, &ex); err != nil {
			t.Errorf("OTLP receiver: decode: %v", err)
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		r.mu.Lock()
		r.auth = append(r.auth, req.Header.Get("Authorization"))
		for _, rs := range ex.ResourceSpans {
			for _, kv := range rs.GetResource().GetAttributes() {
				if kv.Key == "service.name" {
					r.service = append(r.service, kv.GetValue().GetStringValue())
				}
			}
			for _, ss := range rs.ScopeSpans {
				r.spans = append(r.spans, ss.Spans...)
			}
		}
		r.mu.Unlock()
		select {
		case r.changed <- struct{}{}:
		default:
		}
		out, _ := proto.Marshal(&coltracepb.ExportTraceServiceResponse{})
		w.Header().Set("Content-Type", "application/x-protobuf")
		w.Write(out)
	}))
	t.Cleanup(r.srv.Close)
	return r
}

// waitSpans waits until the receiver holds a span of each name (the
// last received of each), or fails at the deadline.
func (r *otlpReceiver) waitSpans(t *testing.T, names ...string) map[string]*tracepb.Span {
	t.Helper()
	deadline := time.NewTimer(20 * time.Second)
	defer deadline.Stop()
	for {
		r.mu.Lock()
		got := map[string]*tracepb.Span{}
		for _, s := range r.spans {
			got[s.Name] = s
		}
		r.mu.Unlock()
		missing := []string{}
		for _, n := range names {
			if got[n] == nil {
				missing = append(missing, n)
			}
		}
		if len(missing) == 0 {
			return got
		}
		select {
		case <-r.changed:
		case <-deadline.C:
			t.Fatalf("spans %v never reached the OTLP receiver; got %d spans", missing, len(got))
		}
	}
}

// traceSink is an http destination that keeps the traceparent header of
// each request.
type traceSink struct {
	srv  *httptest.Server
	got  chan string
	mu   sync.Mutex
	seen int
}

func newTraceSink(t *testing.T) *traceSink {
	s := &traceSink{got: make(chan string, 16)}
	s.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		select {
		case s.got <- r.Header.Get("traceparent"):
		default:
		}
	}))
	t.Cleanup(s.srv.Close)
	return s
}

func (s *traceSink) wait(t *testing.T) string {
	t.Helper()
	select {
	case tp := <-s.got:
		return tp
	case <-time.After(20 * time.Second):
		t.Fatal("the event was never delivered to the sink")
		return ""
	}
}

func tracingConfig(t *testing.T, sinkURL, tracingYAML string) *config.Config {
	t.Helper()
	y := `
egress: {allow_private: ["127.0.0.0/8"]}
sources: [{name: s}]
destinations: [{name: sink, type: http, url: "` + sinkURL + `"}]
subscriptions: [{destination: sink}]
` + tracingYAML
	cfg, err := config.Parse([]byte(y))
	if err != nil {
		t.Fatal(err)
	}
	cfg.Storage.Path = t.TempDir()
	cfg.Listen = "127.0.0.1:0"
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	return cfg
}

func postTraced(t *testing.T, url, traceparent string) {
	t.Helper()
	req, _ := http.NewRequest("POST", url, bytes.NewReader([]byte(`{"id":"e1","type":"thing.created"}`)))
	req.Header.Set("Content-Type", "application/json")
	if traceparent != "" {
		req.Header.Set("traceparent", traceparent)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("POST /in/s: got %d %s, want 200", resp.StatusCode, b)
	}
}

// One event, from an ingest request that continues a caller's trace to its
// delivery at an http sink: the spans reach an OTLP receiver with the
// expected links (ingest the child of the caller's span; verify, commit,
// route and the attempt children of ingest), the exporter sends the
// configured headers, and the sink receives a traceparent whose parent is
// the attempt's span.
//
// On PostgreSQL the delivery is claimed from the database and its event
// read back from it: the attempt's parent comes from the stored context.
func TestTracingSpansFromIngestToDelivery(t *testing.T) {
	for _, driver := range []string{"sqlite", "postgres"} {
		t.Run(driver, func(t *testing.T) { testTracingSpans(t, driver) })
	}
}

func testTracingSpans(t *testing.T, driver string) {
	recv := newOTLPReceiver(t)
	sink := newTraceSink(t)
	cfg := tracingConfig(t, sink.srv.URL, `
tracing:
  otlp_endpoint: "`+recv.srv.URL+`"
  insecure: true
  sample_ratio: 1
  batch_timeout: 20ms
  headers: {authorization: "Bearer collector-token"}
`)
	if driver == "postgres" {
		cfg.Storage.Driver, cfg.Storage.DSN = "postgres", testPostgresDSN(t)
	}
	_, base := startApp(t, cfg, nil)

	const callerTrace, callerSpan = "4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7"
	postTraced(t, base+"/in/s", "00-"+callerTrace+"-"+callerSpan+"-01")
	sent := sink.wait(t)

	spans := recv.waitSpans(t, tracing.SpanIngest, tracing.SpanVerify, tracing.SpanCommit, tracing.SpanRoute, tracing.SpanAttempt)
	id := func(b []byte) string { return hex.EncodeToString(b) }
	ingest := spans[tracing.SpanIngest]
	if id(ingest.TraceId) != callerTrace || id(ingest.ParentSpanId) != callerSpan {
		t.Errorf("ingest span: got trace %s parent %s, want trace %s parent %s (the caller's traceparent)",
			id(ingest.TraceId), id(ingest.ParentSpanId), callerTrace, callerSpan)
	}
	if ingest.Kind != tracepb.Span_SPAN_KIND_SERVER {
		t.Errorf("ingest span: got kind %v, want server", ingest.Kind)
	}
	for _, name := range []string{tracing.SpanVerify, tracing.SpanCommit, tracing.SpanRoute, tracing.SpanAttempt} {
		s := spans[name]
		if id(s.TraceId) != callerTrace || !bytes.Equal(s.ParentSpanId, ingest.SpanId) {
			t.Errorf("%s span: got trace %s parent %s, want trace %s parent %s (the ingest span)",
				name, id(s.TraceId), id(s.ParentSpanId), callerTrace, id(ingest.SpanId))
		}
	}
	attempt := spans[tracing.SpanAttempt]
	attrs := map[string]string{}
	for _, kv := range attempt.Attributes {
		v := kv.GetValue()
		attrs[kv.Key] = v.GetStringValue() + strconv.FormatInt(v.GetIntValue(), 10)
	}
	if attrs[string(tracing.AttrDestination)] != "sink0" || attrs[string(tracing.AttrOutcome)] != "succeeded0" || attrs[string(tracing.AttrStatusCode)] != "200" {
		t.Errorf("attempt span attributes: got %v, want destination sink, outcome succeeded, status 200", attrs)
	}

	// The sink's traceparent names the attempt's span as its parent.
	want := "00-" + callerTrace + "-" + id(attempt.SpanId) + "-01"
	if sent != want {
		t.Errorf("traceparent at the sink: got %q, want %q (the attempt span)", sent, want)
	}

	recv.mu.Lock()
	defer recv.mu.Unlock()
	for _, a := range recv.auth {
		if a != "Bearer collector-token" {
			t.Errorf("export request Authorization: got %q, want the configured header", a)
		}
	}
	for _, s := range recv.service {
		if s != "hookd" {
			t.Errorf("service.name: got %q, want hookd", s)
		}
	}
}

// With tracing off (the default), an incoming traceparent is neither
// stored with the event nor sent on: the sink receives none.
func TestTracingOffSendsNoTraceparent(t *testing.T) {
	sink := newTraceSink(t)
	cfg := tracingConfig(t, sink.srv.URL, "")
	app, base := startApp(t, cfg, nil)
	if app.tracer != nil {
		t.Fatal("tracer made with no tracing.otlp_endpoint")
	}
	postTraced(t, base+"/in/s", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")
	if got := sink.wait(t); got != "" {
		t.Errorf("traceparent at the sink with tracing off: got %q, want none", got)
	}
	evs, _, err := app.st.EventList(t.Context(), &store.EventListParams{Limit: 10})
	if err != nil || len(evs) != 1 {
		t.Fatalf("EventList: got %d events, %v; want 1", len(evs), err)
	}
	if evs[0].TraceParent != "" {
		t.Errorf("event stored with tracing off: got TraceParent %q, want none", evs[0].TraceParent)
	}
}
