package ingest_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"

	"hookd"
	"hookd/internal/config"
	"hookd/internal/httpserver"
	"hookd/internal/ingest"
	"hookd/internal/store"
	"hookd/internal/store/sqlite"
	"hookd/internal/verify"
)

func discardLog() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// harness is an ingest handler over a real SQLite store and group-commit
// batcher, mounted as the server mounts it, behind httptest.
type harness struct {
	srv *httptest.Server
	st  *sqlite.Store
}

// parseSources reads a YAML list of sources the way hookd does (defaults
// applied, validated).
func parseSources(t *testing.T, sourcesYAML string) *config.Config {
	t.Helper()
	return parseConfig(t, "sources:\n"+sourcesYAML)
}

func parseConfig(t *testing.T, yaml string) *config.Config {
	t.Helper()
	cfg, err := config.Parse([]byte(yaml))
	if err != nil {
		t.Fatalf("parse sources: %v", err)
	}
	if err := cfg.Validate(); err != nil {
		t.Fatalf("validate sources: %v", err)
	}
	return cfg
}

func newHarness(t *testing.T, sourcesYAML string) *harness {
	t.Helper()
	return newHarnessConfig(t, parseSources(t, sourcesYAML))
}

func newHarnessConfig(t *testing.T, cfg *config.Config) *harness {
	t.Helper()
	return newHarnessWith(t, cfg, nil)
}

// newHarnessWith is newHarnessConfig with options changed by opt (a clock,
// an egress guard, a handshake observer) before the handler is built.
func newHarnessWith(t *testing.T, cfg *config.Config, opt func(*ingest.Options)) *harness {
	t.Helper()
	log := discardLog()
	ctx := context.Background()
	st, err := sqlite.Open(ctx, t.TempDir(), log, sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	b := store.NewBatcher(st, log, store.BatcherOptions{})
	if err := b.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Stop(context.Background()) })
	errs := &httpserver.Errors{Log: log, RetryAfter: cfg.Server.RetryAfter.D()}
	o := ingest.Options{
		Sources: cfg.Sources, Inserter: b, Errors: errs,
		AckDeadline: cfg.Server.AckDeadline.D(), VerifyTimeout: cfg.Server.VerifyTimeout.D(), Log: log,
		MaxJSONDepth: cfg.Server.MaxJSONDepth,
	}
	if opt != nil {
		opt(&o)
	}
	in, err := ingest.New(o)
	if err != nil {
		t.Fatal(err)
	}
	srv := newServer(t, in, errs)
	return &harness{srv: srv, st: st}
}

func newServer(t *testing.T, in http.Handler, errs *httpserver.Errors) *httptest.Server {
	t.Helper()
	mux := http.NewServeMux()
	mux.Handle("/in/{source}", in)
	srv := httptest.NewServer(httpserver.Handler(mux, errs))
	t.Cleanup(srv.Close)
	return srv
}

type answer struct {
	status int
	header http.Header
	body   []byte
}

func send(t *testing.T, srv *httptest.Server, method, path string, body io.Reader, hdr http.Header) answer {
	t.Helper()
	req, err := http.NewRequest(method, srv.URL+path, body)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range hdr {
		req.Header[k] = v
	}
	if body != nil && req.ContentLength == 0 {
		// Unknown length: sent with chunked transfer encoding.
		req.ContentLength = -1
	}
	resp, err := srv.Client().Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s: read answer: %v", method, path, err)
	}
	a := answer{status: resp.StatusCode, header: resp.Header, body: b}
	if rid := resp.Header.Get(httpserver.HeaderRequestID); !hookd.ValidID(rid, hookd.RequestIDPrefix) {
		t.Errorf("%s %s: got %s %q, want a request id on every answer", method, path, httpserver.HeaderRequestID, rid)
	}
	return a
}

func post(t *testing.T, srv *httptest.Server, path, body string, hdr http.Header) answer {
	t.Helper()
	if hdr == nil {
		hdr = http.Header{}
	}
	if hdr.Get("Content-Type") == "" {
		hdr.Set("Content-Type", "application/json")
	}
	return send(t, srv, http.MethodPost, path, strings.NewReader(body), hdr)
}

type okBody struct {
	ID        string `json:"id"`
	RequestID string `json:"request_id"`
}

// wantOK checks a default success answer and returns its body.
func wantOK(t *testing.T, a answer, status int) okBody {
	t.Helper()
	if a.status != status {
		t.Fatalf("status: got %d, want %d (body %s)", a.status, status, a.body)
	}
	if ct := a.header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("Content-Type: got %q, want application/json", ct)
	}
	var ok okBody
	dec := json.NewDecoder(bytes.NewReader(a.body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&ok); err != nil {
		t.Fatalf("answer %s: %v", a.body, err)
	}
	if !hookd.ValidID(ok.ID, hookd.EventIDPrefix) {
		t.Errorf("id: got %q, want evt_ + ULID", ok.ID)
	}
	if rid := a.header.Get(httpserver.HeaderRequestID); ok.RequestID != rid {
		t.Errorf("request_id: got %q, want the %s header %q", ok.RequestID, httpserver.HeaderRequestID, rid)
	}
	return ok
}

type errBody struct {
	Error struct {
		Code    string `json:"code"`
		Message string `json:"message"`
	} `json:"error"`
	RequestID string `json:"request_id"`
}

// wantError checks an error answer: status, JSON shape, code and request id.
func wantError(t *testing.T, a answer, status int, code string) errBody {
	t.Helper()
	if a.status != status {
		t.Fatalf("status: got %d, want %d (body %s)", a.status, status, a.body)
	}
	if ct := a.header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("Content-Type: got %q, want application/json", ct)
	}
	var e errBody
	dec := json.NewDecoder(bytes.NewReader(a.body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&e); err != nil {
		t.Fatalf("error body %s: %v", a.body, err)
	}
	if e.Error.Code != code {
		t.Errorf("error.code: got %q, want %q", e.Error.Code, code)
	}
	if e.Error.Message == "" {
		t.Errorf("error.message: got \"\", want a message")
	}
	if rid := a.header.Get(httpserver.HeaderRequestID); e.RequestID != rid || rid == "" {
		t.Errorf("request_id: got %q, want the %s header %q", e.RequestID, httpserver.HeaderRequestID, rid)
	}
	return e
}

func (h *harness) events(t *testing.T) []*hookd.Event {
	t.Helper()
	evs, _, err := h.st.EventList(context.Background(), &store.EventListParams{Order: store.OrderAsc, Limit: store.MaxListLimit, WithBody: true})
	if err != nil {
		t.Fatal(err)
	}
	return evs
}

func (h *harness) wantCount(t *testing.T, n int) {
	t.Helper()
	if got := len(h.events(t)); got != n {
		t.Errorf("stored events: got %d, want %d", got, n)
	}
}

func (h *harness) event(t *testing.T, id string) *hookd.Event {
	t.Helper()
	e, err := h.st.EventGet(context.Background(), id)
	if err != nil {
		t.Fatalf("EventGet(%s): %v", id, err)
	}
	return e
}

func TestIngestStored(t *testing.T) {
	t.Parallel()
	h := newHarness(t, `
  - name: claims
    event:
      id: json:payload.messageId
      type: header:X-Event-Type
      timestamp: json:payload.timestamp
      key: query:ref
`)
	body := `{"payload":{"messageId":"m-1","timestamp":"2024-03-01T12:34:56.5+01:00","n":156474848484}}` + "\r\n"
	hdr := http.Header{
		"Content-Type":  {"application/json; charset=utf-8"},
		"X-Event-Type":  {"event.claim.created.v1"},
		"Authorization": {"Bearer very-secret"},
		"X-Api-Key":     {"also-secret"},
		"Cookie":        {"session=secret"},
		"X-Custom":      {"one", "two"},
	}
	before := time.Now().UTC().Add(-time.Second)
	a := post(t, h.srv, "/in/claims?ref=CLM-7", body, hdr)
	ok := wantOK(t, a, http.StatusOK)
	if a.header.Get(httpserver.HeaderDuplicate) != "" {
		t.Errorf("%s: got %q, want none", httpserver.HeaderDuplicate, a.header.Get(httpserver.HeaderDuplicate))
	}
	if got, want := ok.ID, hookd.EventIDForRequest(ok.RequestID); got != want {
		t.Errorf("id: got %q, want %q (the request id's ULID)", got, want)
	}

	e := h.event(t, ok.ID)
	if !bytes.Equal(e.Body, []byte(body)) {
		t.Errorf("body: got %q, want %q", e.Body, body)
	}
	if got, want := e.ContentType, "application/json; charset=utf-8"; got != want {
		t.Errorf("content_type: got %q, want %q", got, want)
	}
	for name, want := range map[string][]string{
		"Authorization": {"[redacted]"},
		"X-Api-Key":     {"[redacted]"},
		"Cookie":        {"[redacted]"},
		"X-Custom":      {"one", "two"},
		"X-Event-Type":  {"event.claim.created.v1"},
	} {
		if got := e.Headers[name]; !reflect.DeepEqual(got, want) {
			t.Errorf("headers[%s]: got %q, want %q", name, got, want)
		}
	}
	if got := e.Headers["Authorization"]; len(got) > 0 && strings.Contains(strings.Join(got, ""), "secret") {
		t.Errorf("headers: got a credential stored, %q", got)
	}
	wantOccurred := time.Date(2024, 3, 1, 11, 34, 56, 500_000_000, time.UTC)
	if e.Source != "claims" || e.ExternalID != "m-1" || e.Type != "event.claim.created.v1" || e.Key != "CLM-7" || !e.OccurredAt.Equal(wantOccurred) {
		t.Errorf("metadata: got source %q external_id %q type %q key %q occurred_at %s; want claims, m-1, event.claim.created.v1, CLM-7, %s",
			e.Source, e.ExternalID, e.Type, e.Key, e.OccurredAt, wantOccurred)
	}
	if e.RequestID != ok.RequestID || e.Stale {
		t.Errorf("request_id %q stale %v: want %q, false", e.RequestID, e.Stale, ok.RequestID)
	}
	if e.ReceivedAt.Before(before) || e.ReceivedAt.After(time.Now().Add(time.Second)) {
		t.Errorf("received_at: got %s, want about now", e.ReceivedAt)
	}
}

func TestIngestBinaryBody(t *testing.T) {
	t.Parallel()
	h := newHarness(t, "  - name: raw\n")
	body := "\x00\xff\xfe binary \r\n\x80"
	ok := wantOK(t, post(t, h.srv, "/in/raw", body, http.Header{"Content-Type": {"application/octet-stream"}}), http.StatusOK)
	e := h.event(t, ok.ID)
	if !bytes.Equal(e.Body, []byte(body)) || e.ContentType != "application/octet-stream" {
		t.Errorf("got body %q content type %q, want %q application/octet-stream", e.Body, e.ContentType, body)
	}
	// An empty body is an event too.
	ok = wantOK(t, send(t, h.srv, http.MethodPost, "/in/raw", nil, nil), http.StatusOK)
	if e := h.event(t, ok.ID); len(e.Body) != 0 || e.ContentType != "" {
		t.Errorf("empty request: got body %q content type %q, want empty", e.Body, e.ContentType)
	}
}

func TestIngestDuplicate(t *testing.T) {
	t.Parallel()
	h := newHarness(t, "  - {name: a, event: {id: json:id}}\n  - {name: b, event: {id: json:id}}\n")
	first := wantOK(t, post(t, h.srv, "/in/a", `{"id":"dup-1","v":1}`, nil), http.StatusOK)
	a := post(t, h.srv, "/in/a", `{"id":"dup-1","v":2}`, nil)
	second := wantOK(t, a, http.StatusOK)
	if got := a.header.Get(httpserver.HeaderDuplicate); got != "true" {
		t.Errorf("%s: got %q, want true", httpserver.HeaderDuplicate, got)
	}
	if second.ID != first.ID {
		t.Errorf("duplicate id: got %q, want the original %q", second.ID, first.ID)
	}
	if second.RequestID == first.RequestID {
		t.Errorf("duplicate request_id: got the original's %q, want a new one", second.RequestID)
	}
	// The original is kept as it was.
	if e := h.event(t, first.ID); string(e.Body) != `{"id":"dup-1","v":1}` {
		t.Errorf("original body: got %s, want the first request's", e.Body)
	}
	// The duplicate's request id resolves to the original event.
	req, err := h.st.RequestGet(context.Background(), second.RequestID)
	if err != nil || req.EventID != first.ID || !req.Duplicate {
		t.Errorf("RequestGet(duplicate): got %+v, %v; want event %s, duplicate true", req, err, first.ID)
	}
	// Dedupe is per source: the same provider id on another source is new.
	other := wantOK(t, post(t, h.srv, "/in/b", `{"id":"dup-1"}`, nil), http.StatusOK)
	if other.ID == first.ID {
		t.Errorf("same id on another source: got the original %q, want a new event", other.ID)
	}
	// A new provider id is new information (seed 001).
	wantOK(t, post(t, h.srv, "/in/a", `{"id":"dup-2","v":1}`, nil), http.StatusOK)
	h.wantCount(t, 3)
}

// Two different provider ids are two events, however long they are: an id
// is never cut short into another event's id (seed 001: a new id is new
// information and is always stored).
func TestIngestLongIDsNotMerged(t *testing.T) {
	t.Parallel()
	h := newHarness(t, "  - {name: a, event: {id: json:id}}\n")
	prefix := strings.Repeat("x", 600)
	first := wantOK(t, post(t, h.srv, "/in/a", `{"id":"`+prefix+`1"}`, nil), http.StatusOK)
	a := post(t, h.srv, "/in/a", `{"id":"`+prefix+`2"}`, nil)
	second := wantOK(t, a, http.StatusOK)
	if second.ID == first.ID || a.header.Get(httpserver.HeaderDuplicate) != "" {
		t.Errorf("second long id: got id %q (first %q), %s %q; want a new event", second.ID, first.ID,
			httpserver.HeaderDuplicate, a.header.Get(httpserver.HeaderDuplicate))
	}
	h.wantCount(t, 2)
}

func TestIngestDedupeDisabled(t *testing.T) {
	t.Parallel()
	h := newHarness(t, "  - {name: a, event: {id: json:id}, dedupe_window: 0s}\n")
	first := wantOK(t, post(t, h.srv, "/in/a", `{"id":"x"}`, nil), http.StatusOK)
	a := post(t, h.srv, "/in/a", `{"id":"x"}`, nil)
	second := wantOK(t, a, http.StatusOK)
	if second.ID == first.ID || a.header.Get(httpserver.HeaderDuplicate) != "" {
		t.Errorf("dedupe_window 0s: got id %q (first %q), duplicate header %q; want a new event", second.ID, first.ID, a.header.Get(httpserver.HeaderDuplicate))
	}
	h.wantCount(t, 2)
}

func TestIngestRequireID(t *testing.T) {
	t.Parallel()
	h := newHarness(t, `
  - {name: j, event: {id: json:meta.id, type: json:type, require_id: true}}
  - {name: h, event: {id: header:Idempotency-Key, require_id: true}}
`)
	tests := []struct {
		name, path, body string
		hdr              http.Header
	}{
		{"Missing", "/in/j", `{"meta":{},"type":"x"}`, nil},
		{"Empty", "/in/j", `{"meta":{"id":""}}`, nil},
		{"Null", "/in/j", `{"meta":{"id":null}}`, nil},
		{"Object", "/in/j", `{"meta":{"id":{"v":1}}}`, nil},
		{"NotJSON", "/in/j", `id=1`, http.Header{"Content-Type": {"application/x-www-form-urlencoded"}}},
		{"EmptyBody", "/in/j", ``, nil},
		{"Truncated", "/in/j", `{"meta":{"id":"x"}`, nil},
		{"TrailingGarbage", "/in/j", `{"meta":{"id":"x"}}garbage`, nil},
		{"TrailingBrace", "/in/j", `{"meta":{"id":"x"}}}`, nil},
		{"HeaderMissing", "/in/h", `{"id":"x"}`, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := post(t, h.srv, tt.path, tt.body, tt.hdr)
			wantError(t, a, http.StatusBadRequest, hookd.EInvalid)
		})
	}
	h.wantCount(t, 0)
	// And the good cases are stored.
	ok := wantOK(t, post(t, h.srv, "/in/j", `{"meta":{"id":7}}`, nil), http.StatusOK)
	if e := h.event(t, ok.ID); e.ExternalID != "7" {
		t.Errorf("external_id: got %q, want 7", e.ExternalID)
	}
	wantOK(t, post(t, h.srv, "/in/h", `not json at all`, http.Header{"Idempotency-Key": {"k-1"}}), http.StatusOK)
	h.wantCount(t, 2)
}

func TestIngestAbsentMetadata(t *testing.T) {
	t.Parallel()
	h := newHarness(t, "  - {name: a, event: {id: json:id, type: json:type, key: json:k, timestamp: json:ts}}\n")
	for _, body := range []string{`{"other":1}`, `{"other":1}`, `plain text`, `{"id":null,"ts":"not a time"}`} {
		ok := wantOK(t, post(t, h.srv, "/in/a", body, nil), http.StatusOK)
		e := h.event(t, ok.ID)
		if e.ExternalID != "" || e.Type != "" || e.Key != "" || !e.OccurredAt.IsZero() {
			t.Errorf("body %q: got external_id %q type %q key %q occurred_at %s; want all empty", body, e.ExternalID, e.Type, e.Key, e.OccurredAt)
		}
		if string(e.Body) != body {
			t.Errorf("body: got %q, want %q", e.Body, body)
		}
	}
	// Events without an id are never duplicates of each other.
	h.wantCount(t, 4)
}

func TestIngestBodyLimit(t *testing.T) {
	t.Parallel()
	h := newHarness(t, "  - {name: small, max_body: 1KiB}\n")
	exact := strings.Repeat("a", 1024)
	over := strings.Repeat("b", 1025)
	big := strings.Repeat("c", 64<<10)
	tests := []struct {
		name    string
		body    io.Reader
		status  int
		chunked bool
	}{
		{"ExactContentLength", strings.NewReader(exact), http.StatusOK, false},
		{"ExactChunked", io.MultiReader(strings.NewReader(exact)), http.StatusOK, true},
		{"OverContentLength", strings.NewReader(over), http.StatusRequestEntityTooLarge, false},
		{"OverChunked", io.MultiReader(strings.NewReader(over)), http.StatusRequestEntityTooLarge, true},
		{"BigContentLength", strings.NewReader(big), http.StatusRequestEntityTooLarge, false},
		{"BigChunked", io.MultiReader(strings.NewReader(big)), http.StatusRequestEntityTooLarge, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := send(t, h.srv, http.MethodPost, "/in/small", tt.body, http.Header{"Content-Type": {"text/plain"}})
			if tt.status == http.StatusOK {
				ok := wantOK(t, a, http.StatusOK)
				if e := h.event(t, ok.ID); len(e.Body) != 1024 {
					t.Errorf("stored body: got %d bytes, want 1024", len(e.Body))
				}
				return
			}
			wantError(t, a, tt.status, hookd.ETooLarge)
		})
	}
	h.wantCount(t, 2)
}

func TestIngestUnknownSource(t *testing.T) {
	t.Parallel()
	h := newHarness(t, "  - name: a\n")
	for _, path := range []string{"/in/b", "/in/A", "/in/a.", "/in/%20"} {
		wantError(t, post(t, h.srv, path, `{}`, nil), http.StatusNotFound, hookd.ENotFound)
	}
	// Unknown source beats a wrong method.
	wantError(t, send(t, h.srv, http.MethodGet, "/in/b", nil, nil), http.StatusNotFound, hookd.ENotFound)
	h.wantCount(t, 0)
}

func TestIngestMethodNotAllowed(t *testing.T) {
	t.Parallel()
	h := newHarness(t, "  - name: a\n")
	for _, m := range []string{http.MethodGet, http.MethodPut, http.MethodDelete, http.MethodPatch} {
		var body io.Reader
		if m != http.MethodGet {
			body = strings.NewReader(`{}`)
		}
		a := send(t, h.srv, m, "/in/a", body, nil)
		wantError(t, a, http.StatusMethodNotAllowed, hookd.EMethod)
		if got := a.header.Get("Allow"); got != http.MethodPost {
			t.Errorf("%s: Allow: got %q, want POST", m, got)
		}
	}
	h.wantCount(t, 0)
}

func TestIngestRateLimit(t *testing.T) {
	t.Parallel()
	// One token a minute, burst 2: the third request in a row is refused
	// however slow the machine is.
	h := newHarness(t, "  - {name: limited, rate_limit: 1/m, burst: 2}\n  - {name: free}\n")
	wantOK(t, post(t, h.srv, "/in/limited", `{}`, nil), http.StatusOK)
	wantOK(t, post(t, h.srv, "/in/limited", `{}`, nil), http.StatusOK)
	a := post(t, h.srv, "/in/limited", `{}`, nil)
	wantError(t, a, http.StatusTooManyRequests, hookd.ERateLimited)
	ra, err := strconv.Atoi(a.header.Get("Retry-After"))
	if err != nil || ra < 1 || ra > 60 {
		t.Errorf("Retry-After: got %q, want 1..60 seconds", a.header.Get("Retry-After"))
	}
	// A refused request does not consume the rate of another source.
	wantOK(t, post(t, h.srv, "/in/free", `{}`, nil), http.StatusOK)
	h.wantCount(t, 3)
}

func TestIngestRateLimitPerSecond(t *testing.T) {
	t.Parallel()
	h := newHarness(t, "  - {name: limited, rate_limit: 2/s, burst: 2}\n")
	var statuses []int
	var last answer
	for range 3 {
		last = post(t, h.srv, "/in/limited", `{}`, nil)
		statuses = append(statuses, last.status)
	}
	if statuses[2] != http.StatusTooManyRequests {
		// The third is refused unless the machine took >500ms for two
		// requests; that only makes this test weaker, never wrong.
		t.Logf("statuses: got %v, want the third refused (slow machine?)", statuses)
		return
	}
	if ra, err := strconv.Atoi(last.header.Get("Retry-After")); err != nil || ra < 1 {
		t.Errorf("Retry-After: got %q, want at least 1", last.header.Get("Retry-After"))
	}
}

func TestIngestStale(t *testing.T) {
	t.Parallel()
	h := newHarness(t, "  - {name: s, event: {key: json:k, timestamp: json:ts}}\n")
	steps := []struct {
		name  string
		body  string
		stale bool
	}{
		{"First", `{"k":"A","ts":"2024-01-01T00:00:10Z"}`, false},
		{"Older", `{"k":"A","ts":"2024-01-01T00:00:05Z"}`, true},
		{"Equal", `{"k":"A","ts":"2024-01-01T00:00:10Z"}`, false},
		{"EqualOtherZone", `{"k":"A","ts":"2024-01-01T01:00:10+01:00"}`, false},
		{"OtherKey", `{"k":"B","ts":"2024-01-01T00:00:01Z"}`, false},
		{"NoTimestamp", `{"k":"A"}`, false},
		{"NoKey", `{"ts":"2000-01-01T00:00:00Z"}`, false},
		{"NewerEpochSeconds", `{"k":"A","ts":1704067300}`, false},
		{"OlderEpochMillis", `{"k":"A","ts":1704067205000}`, true},
		{"EqualEpochMillis", `{"k":"A","ts":1704067300000}`, false},
		{"OlderFraction", `{"k":"A","ts":"2024-01-01T00:01:39.999999Z"}`, true},
	}
	for _, s := range steps {
		ok := wantOK(t, post(t, h.srv, "/in/s", s.body, nil), http.StatusOK)
		if e := h.event(t, ok.ID); e.Stale != s.stale {
			t.Errorf("%s (%s): stale: got %v, want %v", s.name, s.body, e.Stale, s.stale)
		}
	}
	h.wantCount(t, len(steps))
}

func TestIngestCustomResponse(t *testing.T) {
	t.Parallel()
	h := newHarness(t, `
  - {name: accepted, response: {status: 202}}
  - {name: text, event: {id: json:id}, response: {status: 202, body: "thanks\n"}}
  - {name: xml, response: {status: 201, body: "<ok/>", content_type: application/xml}}
`)
	wantOK(t, post(t, h.srv, "/in/accepted", `{}`, nil), http.StatusAccepted)

	for i, wantDup := range []string{"", "true"} {
		a := post(t, h.srv, "/in/text", `{"id":"same"}`, nil)
		if a.status != http.StatusAccepted || string(a.body) != "thanks\n" {
			t.Errorf("request %d: got %d %q, want 202 %q", i, a.status, a.body, "thanks\n")
		}
		if got := a.header.Get("Content-Type"); got != "text/plain; charset=utf-8" {
			t.Errorf("request %d: Content-Type: got %q, want text/plain; charset=utf-8", i, got)
		}
		if got := a.header.Get(httpserver.HeaderDuplicate); got != wantDup {
			t.Errorf("request %d: %s: got %q, want %q", i, httpserver.HeaderDuplicate, got, wantDup)
		}
	}
	a := post(t, h.srv, "/in/xml", `{}`, nil)
	if a.status != http.StatusCreated || string(a.body) != "<ok/>" || a.header.Get("Content-Type") != "application/xml" {
		t.Errorf("xml: got %d %q %q, want 201 <ok/> application/xml", a.status, a.body, a.header.Get("Content-Type"))
	}
	h.wantCount(t, 3)
}

func TestIngestRequestIDs(t *testing.T) {
	t.Parallel()
	h := newHarness(t, "  - name: a\n")
	seen := map[string]bool{}
	for range 5 {
		ok := wantOK(t, post(t, h.srv, "/in/a", `{}`, nil), http.StatusOK)
		if seen[ok.RequestID] {
			t.Errorf("request_id %q seen twice", ok.RequestID)
		}
		seen[ok.RequestID] = true
	}
}

// blockingInserter stands in for the batcher's wait on a commit that does
// not come: it returns when ctx is done (with the error the batcher
// returns, or the bare context error) or when released.
type blockingInserter struct {
	entered chan struct{}
	release chan struct{}
	plain   bool
}

func newBlockingInserter(plain bool) *blockingInserter {
	return &blockingInserter{entered: make(chan struct{}, 16), release: make(chan struct{}), plain: plain}
}

func (b *blockingInserter) InsertBy(ctx context.Context, deadline time.Time, in *store.EventInsert) (store.EventInsertResult, error) {
	b.entered <- struct{}{}
	ctx, cancel := context.WithDeadline(ctx, deadline)
	defer cancel()
	select {
	case <-ctx.Done():
		if b.plain {
			return store.EventInsertResult{}, ctx.Err()
		}
		return store.EventInsertResult{}, &hookd.Error{Code: hookd.EUnavailable, Message: "storage too slow to commit", Err: ctx.Err()}
	case <-b.release:
		return store.EventInsertResult{ID: in.Event.ID}, nil
	}
}

func newBlockedServer(t *testing.T, ins ingest.Inserter, ack time.Duration, limit int) *httptest.Server {
	t.Helper()
	cfg := parseSources(t, "  - name: a\n")
	errs := &httpserver.Errors{Log: discardLog(), RetryAfter: 5 * time.Second}
	in, err := ingest.New(ingest.Options{Sources: cfg.Sources, Inserter: ins, Errors: errs, AckDeadline: ack, Log: discardLog(), InFlight: httpserver.NewGate(limit)})
	if err != nil {
		t.Fatal(err)
	}
	return newServer(t, in, errs)
}

func TestIngestAckDeadline(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		name  string
		plain bool
	}{
		{"BatcherError", false},
		// The handler set the deadline: a bare context error from its
		// Inserter is still "too slow to commit", 503, never 500.
		{"PlainContextError", true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			const ack = 200 * time.Millisecond
			srv := newBlockedServer(t, newBlockingInserter(tt.plain), ack, 0)
			start := time.Now()
			a := post(t, srv, "/in/a", `{}`, nil)
			elapsed := time.Since(start)
			if elapsed < ack-20*time.Millisecond || elapsed > ack+time.Second {
				t.Errorf("answered after %s, want about %s", elapsed, ack)
			}
			wantError(t, a, http.StatusServiceUnavailable, hookd.EUnavailable)
			if got := a.header.Get("Retry-After"); got != "5" {
				t.Errorf("Retry-After: got %q, want 5", got)
			}
		})
	}
}

// The ack deadline bounds the wait for the commit: a sender that takes
// longer than the deadline to upload its body is not answered 503 for a
// commit that storage made in time.
func TestIngestAckDeadlineExcludesUpload(t *testing.T) {
	t.Parallel()
	h := newHarnessConfig(t, parseConfig(t, "server: {ack_deadline: 200ms}\nsources:\n  - name: a\n"))
	pr, pw := io.Pipe()
	go func() {
		pw.Write([]byte(`{"part":1,`))
		// A slow sender: the rest of the body comes after the deadline.
		time.Sleep(400 * time.Millisecond)
		pw.Write([]byte(`"rest":2}`))
		pw.Close()
	}()
	a := send(t, h.srv, http.MethodPost, "/in/a", pr, http.Header{"Content-Type": {"application/json"}})
	ok := wantOK(t, a, http.StatusOK)
	if e := h.event(t, ok.ID); string(e.Body) != `{"part":1,"rest":2}` {
		t.Errorf("body: got %q, want the whole upload", e.Body)
	}
}

func TestIngestInFlightCap(t *testing.T) {
	t.Parallel()
	ins := newBlockingInserter(false)
	srv := newBlockedServer(t, ins, 30*time.Second, 1)
	first := make(chan answer, 1)
	go func() {
		req, _ := http.NewRequest(http.MethodPost, srv.URL+"/in/a", strings.NewReader(`{}`))
		resp, err := srv.Client().Do(req)
		if err != nil {
			first <- answer{}
			return
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		first <- answer{status: resp.StatusCode, header: resp.Header, body: b}
	}()
	select {
	case <-ins.entered:
	case <-time.After(10 * time.Second):
		t.Fatal("the first request never reached the inserter")
	}
	start := time.Now()
	a := post(t, srv, "/in/a", `{}`, nil)
	if elapsed := time.Since(start); elapsed > time.Second {
		t.Errorf("second request answered after %s, want at once", elapsed)
	}
	wantError(t, a, http.StatusServiceUnavailable, hookd.EUnavailable)
	if a.header.Get("Retry-After") == "" {
		t.Errorf("Retry-After: got none, want one")
	}
	close(ins.release)
	select {
	case got := <-first:
		if got.status != http.StatusOK {
			t.Errorf("first request: got %d %s, want 200", got.status, got.body)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the first request never finished")
	}
	// With the slot free again, requests get through.
	wantOK(t, post(t, srv, "/in/a", `{}`, nil), http.StatusOK)
}

func TestListensBeyondLoopback(t *testing.T) {
	t.Parallel()
	tests := []struct {
		addr string
		want bool
	}{
		{":8080", true},
		{"0.0.0.0:8080", true},
		{"[::]:8080", true},
		{"192.168.1.2:80", true},
		{"example.com:80", true},
		{"127.0.0.1:8080", false},
		{"127.1.2.3:8080", false},
		{"[::1]:8080", false},
		{"localhost:8080", false},
		{"garbage", true},
	}
	for _, tt := range tests {
		if got := ingest.ListensBeyondLoopback(tt.addr); got != tt.want {
			t.Errorf("ListensBeyondLoopback(%q): got %v, want %v", tt.addr, got, tt.want)
		}
	}
}

// stuckVerifier waits for its context, as a verifier calling an identity
// provider that never answers would.
type stuckVerifier struct{}

func (stuckVerifier) Verify(ctx context.Context, r *verify.Request) error {
	<-ctx.Done()
	return ctx.Err()
}

func init() {
	verify.Register("test_stuck", func(*verify.Env, config.Verify) (verify.Verifier, error) { return stuckVerifier{}, nil })
}

// A verification that cannot finish is answered 503 with Retry-After once
// server.verify_timeout has passed, and nothing is stored.
func TestIngestVerifyTimeout(t *testing.T) {
	t.Parallel()
	cfg := parseConfig(t, "server: {verify_timeout: 200ms}\nsources:\n  - name: a\n    verify: [{type: test_stuck}]\n")
	h := newHarnessConfig(t, cfg)
	start := time.Now()
	a := post(t, h.srv, "/in/a", `{"id":"x"}`, nil)
	took := time.Since(start)
	if a.status != http.StatusServiceUnavailable || a.header.Get("Retry-After") == "" {
		t.Fatalf("got %d (Retry-After %q), want 503 with Retry-After", a.status, a.header.Get("Retry-After"))
	}
	if took > 2*time.Second {
		t.Errorf("answered after %v, want about the 200ms verify timeout", took)
	}
	h.wantCount(t, 0)
}

// A body nested beyond server.max_json_depth is refused with 400 by a
// source that reads its JSON fields (a selector, a signature in the body)
// and nothing is stored; a source that only stores the body stores it.
func TestIngestDeepBody(t *testing.T) {
	t.Parallel()
	h := newHarnessConfig(t, parseConfig(t, `
server: {max_json_depth: 4}
sources:
  - {name: sel, event: {type: json:type}}
  - name: sig
    verify: [{type: hmac, secrets: [0123456789abcdef], signature: "json:sig", signed: "json:payload"}]
  - {name: plain}
  - {name: hdr, event: {id: header:X-Id}}
`))
	deep, atLimit := `{"a":[[[[1]]]]}`, `{"type":"t","a":[[["]]]]]]"]]]}`
	for _, src := range []string{"sel", "sig"} {
		t.Run(src, func(t *testing.T) {
			e := wantError(t, post(t, h.srv, "/in/"+src, deep, nil), http.StatusBadRequest, hookd.EInvalid)
			if !strings.Contains(e.Error.Message, "JSON nested deeper than 4 levels") {
				t.Errorf("message: got %q, want it to name the depth limit", e.Error.Message)
			}
		})
	}
	h.wantCount(t, 0)
	ok := wantOK(t, post(t, h.srv, "/in/sel", atLimit, nil), http.StatusOK)
	if e := h.event(t, ok.ID); e.Type != "t" {
		t.Errorf("type at the limit: got %q, want t", e.Type)
	}
	for _, src := range []string{"plain", "hdr"} {
		ok := wantOK(t, post(t, h.srv, "/in/"+src, deep, http.Header{"X-Id": {"x-" + src}}), http.StatusOK)
		if e := h.event(t, ok.ID); string(e.Body) != deep {
			t.Errorf("%s: body got %q, want %q", src, e.Body, deep)
		}
	}
	h.wantCount(t, 3)
}

// The depth of a body is checked once per request, however many fields
// the source reads from it: the scan is a few per cent of ingest's CPU.
// Not parallel: it counts calls through a package variable.
func TestIngestDepthCheckedOnce(t *testing.T) {
	h := newHarness(t, `
  - {name: sel, event: {id: json:id, type: json:type, key: json:k, require_id: true}}
`)
	n := ingest.CountDepthChecks(t)
	ok := wantOK(t, post(t, h.srv, "/in/sel", `{"id":"e1","type":"t","k":"a","x":[[1]]}`, nil), http.StatusOK)
	if e := h.event(t, ok.ID); e.ExternalID != "e1" || e.Type != "t" || e.Key != "a" {
		t.Errorf("event: got id %q type %q key %q, want e1, t, a", e.ExternalID, e.Type, e.Key)
	}
	if got := n.Load(); got != 1 {
		t.Errorf("depth checks per request: got %d, want 1", got)
	}
	// Checked once, the body is still validated as JSON.
	wantError(t, post(t, h.srv, "/in/sel", `{"id":`, nil), http.StatusBadRequest, hookd.EInvalid)
}
