// Package ingest serves POST /in/{source}: limits, then verification on the
// raw bytes, then metadata selectors, then the durable group commit, then
// the answer. Nothing answers 200 before the event is committed, no
// request waits past the ack deadline to enter a batch, and none answered
// 503 is stored (one in a batch waits for the batch's outcome).
package ingest

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"math"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/otel/trace"
	"golang.org/x/time/rate"

	"hookd"
	"hookd/internal/config"
	"hookd/internal/egress"
	"hookd/internal/httpserver"
	"hookd/internal/jsonlimit"
	"hookd/internal/store"
	"hookd/internal/tracing"
	"hookd/internal/verify"
)

// Inserter stores an event durably; store.Batcher is one. InsertBy waits
// until the event is stored or refused, or deadline has passed; an event
// whose ctx is done before it is taken for a commit is not stored.
type Inserter interface {
	InsertBy(ctx context.Context, deadline time.Time, in *store.EventInsert) (store.EventInsertResult, error)
}

// Handler serves POST /in/{source}.
type Handler struct {
	// sources is replaced whole (copy on write) when a source is added or
	// removed at run time; requests read it without a lock.
	sources atomic.Pointer[map[string]*source]
	srcMu   sync.Mutex // serializes the writers of sources
	egress  *egress.Guard
	issuer  *verify.Issuer
	ins     Inserter
	errs    *httpserver.Errors
	ack     time.Duration
	// verifyTimeout bounds a source's verification chain.
	verifyTimeout time.Duration
	// inFlight caps the requests being verified and committed; a request
	// takes its slot once its body is read. Nil: no cap.
	inFlight *httpserver.Gate
	// maxJSONDepth bounds the nesting of a body read as JSON.
	maxJSONDepth int
	log          *slog.Logger
	now          func() time.Time
	// onHandshake is told of every handshake answered or refused.
	onHandshake func(HandshakeRecord)
	// tracer makes the spans of a request; nil: tracing off.
	tracer *tracing.Tracer
}

// HandshakeRecord is what ingest reports of a handshake it answered (or
// refused, Err set): hookd stores none as an event.
type HandshakeRecord struct {
	Source string
	// Kind names the handshake, such as "slack.url_verification".
	Kind string
	// Status is the status answered.
	Status int
	At     time.Time
	// Err is the refusal, nil when answered.
	Err error
}

type source struct {
	cfg    config.Source
	verify verify.Chain
	// methods are the methods other than POST the source's handshakes
	// use (GET for Meta's, Dropbox's and Okta's).
	methods          []string
	id, typ, ts, key Selector
	// needJSON: a selector or a verifier reads fields of the JSON body,
	// so a body nested beyond the limit is refused.
	needJSON    bool
	limiter     *rate.Limiter
	dedupe      time.Duration
	redact      map[string]bool
	status      int
	body        []byte
	contentType string
}

// Options configures a Handler.
type Options struct {
	Sources     []config.Source
	Inserter    Inserter
	Errors      *httpserver.Errors
	AckDeadline time.Duration
	// VerifyTimeout bounds verification; default 3s.
	VerifyTimeout time.Duration
	Log           *slog.Logger
	// Now is the clock; time.Now when nil.
	Now func() time.Time
	// Egress is the SSRF guard verifiers call out through (JWKS,
	// introspection): it checks their URLs and dials every connection.
	// Nil is a guard with no exceptions.
	Egress *egress.Guard
	// Issuer is hookd's own token issuer, for oauth_issuer sources.
	Issuer *verify.Issuer
	// InFlight caps the requests being verified and committed at once
	// (server.max_in_flight); beyond it the answer is 503. A request
	// enters it once its body is read, so a slow upload holds no slot.
	// Nil: no cap.
	InFlight *httpserver.Gate
	// MaxJSONDepth bounds the nesting of a body that a selector or a
	// verifier reads as JSON (server.max_json_depth); beyond it such a
	// source answers 400. Default jsonlimit.DefaultDepth.
	MaxJSONDepth int
	// OnHandshake, if set, is told of every handshake answered or
	// refused (metrics, the source's last handshake). It must not block.
	OnHandshake func(HandshakeRecord)
	// Tracer makes a span per request (with verify and commit spans) and
	// its context is stored with the event. Nil: tracing off.
	Tracer *tracing.Tracer
}

// headers whose values are credentials: they are stored as "[redacted]".
var credentialHeaders = []string{"Authorization", "Proxy-Authorization", "Cookie", "X-Api-Key"}

// New builds the handler and every source's verifiers and selectors.
func New(o Options) (*Handler, error) {
	h := &Handler{ins: o.Inserter, errs: o.Errors, ack: o.AckDeadline, log: o.Log, now: o.Now, egress: o.Egress, issuer: o.Issuer, inFlight: o.InFlight, onHandshake: o.OnHandshake, tracer: o.Tracer}
	if h.now == nil {
		h.now = time.Now
	}
	if h.verifyTimeout = o.VerifyTimeout; h.verifyTimeout <= 0 {
		h.verifyTimeout = 3 * time.Second
	}
	if h.maxJSONDepth = o.MaxJSONDepth; h.maxJSONDepth <= 0 {
		h.maxJSONDepth = jsonlimit.DefaultDepth
	}
	m := make(map[string]*source, len(o.Sources))
	for _, c := range o.Sources {
		s, err := h.build(c)
		if err != nil {
			return nil, err
		}
		m[c.Name] = s
	}
	h.sources.Store(&m)
	return h, nil
}

// Prepare builds source c (its verifiers and selectors) without serving
// it: install, called once c is stored, adds it or replaces the source of
// that name. Requests in progress finish with the definition they began
// with.
func (h *Handler) Prepare(c config.Source) (install func(), err error) {
	s, err := h.build(c)
	if err != nil {
		return nil, err
	}
	return func() {
		h.update(func(m map[string]*source) { m[c.Name] = s })
	}, nil
}

// Remove stops serving the source named name: it answers 404 from then on.
func (h *Handler) Remove(name string) {
	h.update(func(m map[string]*source) { delete(m, name) })
}

// Has reports whether the source named name is served.
func (h *Handler) Has(name string) bool {
	_, ok := (*h.sources.Load())[name]
	return ok
}

func (h *Handler) update(change func(map[string]*source)) {
	h.srcMu.Lock()
	defer h.srcMu.Unlock()
	m := maps.Clone(*h.sources.Load())
	change(m)
	h.sources.Store(&m)
}

// build makes the served form of source c.
func (h *Handler) build(c config.Source) (*source, error) {
	s := &source{cfg: c, status: c.Response.Status, redact: map[string]bool{}}
	if s.status == 0 {
		s.status = http.StatusOK
	}
	var err error
	env := &verify.Env{Source: c.Name, Now: h.now, Egress: h.egress, Issuer: h.issuer, Log: h.log}
	if s.verify, err = verify.Build(env, c.Verify); err != nil {
		return nil, fmt.Errorf("source %s: %w", c.Name, err)
	}
	if c.Handshake != nil {
		// The source's own handshake comes after its verifiers: a
		// preset's handshake is recognised first.
		g, err := verify.NewGenericHandshake(env, c.Handshake)
		if err != nil {
			return nil, fmt.Errorf("source %s: %w", c.Name, err)
		}
		s.verify = append(s.verify, g)
	}
	// A provider's preset brings the selectors of its event id, type and
	// timestamp; the source's own win.
	c.Event = verify.PresetEvent(c.Verify, c.Event)
	s.cfg.Event = c.Event
	for _, p := range []struct {
		dst *Selector
		sel string
	}{{&s.id, c.Event.ID}, {&s.typ, c.Event.Type}, {&s.ts, c.Event.Timestamp}, {&s.key, c.Event.Key}} {
		if *p.dst, err = ParseSelector(p.sel); err != nil {
			return nil, fmt.Errorf("source %s: %w", c.Name, err)
		}
		s.needJSON = s.needJSON || p.dst.NeedsJSON()
	}
	s.needJSON = s.needJSON || s.verify.ReadsJSONBody()
	s.methods = s.verify.HandshakeMethods()
	for _, v := range s.verify {
		if _, ok := v.(verify.Handshaker); ok {
			// Handshakes are recognised by fields of the JSON body
			// (Slack's type, SNS's Type): its nesting is checked first.
			s.needJSON = true
		}
	}
	if c.RateLimit != nil {
		burst := c.Burst
		if burst == 0 {
			burst = max(1, int(math.Ceil(c.RateLimit.PerSecond())))
		}
		s.limiter = rate.NewLimiter(rate.Limit(c.RateLimit.PerSecond()), burst)
	}
	if c.DedupeWindow != nil {
		s.dedupe = c.DedupeWindow.D()
	}
	for _, name := range credentialHeaders {
		s.redact[http.CanonicalHeaderKey(name)] = true
	}
	for _, name := range s.verify.CredentialHeaders() {
		s.redact[http.CanonicalHeaderKey(name)] = true
	}
	if c.Response.Body != "" {
		s.body, s.contentType = []byte(c.Response.Body), c.Response.ContentType
	} else if verify.PresetAnswersEmpty(c.Verify) {
		// The provider requires an answer with no body.
		s.body = []byte{}
	}
	return s, nil
}

// ServeHTTP handles one ingest request. It expects the path value "source".
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := h.now()
	if h.tracer != nil {
		h.serveTraced(w, r, start)
		return
	}
	if err := h.serve(w, r, start); err != nil {
		h.errs.Write(w, r, err)
	}
}

// serveTraced is ServeHTTP in the request's span (tracing on): the child
// of the request's traceparent, when it has one.
func (h *Handler) serveTraced(w http.ResponseWriter, r *http.Request, start time.Time) {
	ctx, span := h.tracer.StartIngest(r.Context(), r.Header, r.PathValue("source"))
	defer span.End()
	r = r.WithContext(ctx)
	sw := &statusWriter{ResponseWriter: w}
	err := h.serve(sw, r, start)
	if err != nil {
		h.errs.Write(sw, r, err)
		tracing.SetError(span, err)
	}
	if span.IsRecording() {
		span.SetAttributes(tracing.AttrMethod.String(r.Method), tracing.AttrStatusCode.Int(cmp.Or(sw.status, http.StatusOK)),
			tracing.AttrRequestID.String(httpserver.RequestID(r.Context())))
	}
}

// statusWriter notes the status written (for the request's span).
type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

func (h *Handler) serve(w http.ResponseWriter, r *http.Request, start time.Time) error {
	src := (*h.sources.Load())[r.PathValue("source")]
	if src == nil {
		return hookd.Errorf(hookd.ENotFound, "unknown source %q", httpserver.Clip(r.PathValue("source"), 64))
	}
	if r.Method != http.MethodPost && !slices.Contains(src.methods, r.Method) {
		return methodNotAllowed(w, src)
	}
	if src.limiter != nil {
		if res := src.limiter.ReserveN(start, 1); !res.OK() || res.DelayFrom(start) > 0 {
			delay := res.DelayFrom(start)
			res.CancelAt(start)
			w.Header().Set("Retry-After", strconv.Itoa(max(1, int(math.Ceil(delay.Seconds())))))
			return hookd.Errorf(hookd.ERateLimited, "rate limit of source %s exceeded", src.cfg.Name)
		}
	}
	body, err := readBody(w, r, int64(src.cfg.MaxBody))
	if err != nil {
		return err
	}
	if src.needJSON {
		// Checked before any parser sees the body: some recurse once per
		// level of nesting.
		if err := checkDepth(body, h.maxJSONDepth); err != nil {
			return hookd.Errorf(hookd.EInvalid, "body: %v; source %s reads fields of the JSON body", err, src.cfg.Name)
		}
	}
	// The slot is taken once the body is in: what it bounds is the work
	// of verification and commit, not a sender's upload speed.
	if !h.inFlight.Enter() {
		return httpserver.ErrInFlight
	}
	defer h.inFlight.Leave()
	vr := &verify.Request{Method: r.Method, URL: r.URL, Header: r.Header, RemoteAddr: r.RemoteAddr, Body: body, MaxJSONDepth: h.maxJSONDepth}
	if hs, kind, ok := src.verify.Handshake(vr); ok {
		return h.handshake(w, r, src, vr, hs, kind)
	}
	if r.Method != http.MethodPost {
		// A GET that is not the source's handshake.
		return methodNotAllowed(w, src)
	}
	_, vspan := h.tracer.Start(r.Context(), tracing.SpanVerify, trace.SpanKindInternal)
	err = h.verify(w, r, src, vr)
	tracing.End(vspan, err)
	if err != nil {
		return err
	}
	rid := httpserver.RequestID(r.Context())
	e := &hookd.Event{
		ID:          hookd.EventIDForRequest(rid),
		Source:      src.cfg.Name,
		ReceivedAt:  start.UTC(),
		RequestID:   rid,
		ContentType: r.Header.Get("Content-Type"),
		Body:        body,
	}
	if err := src.selectMetadata(e, r, h.maxJSONDepth); err != nil {
		return err
	}
	// The headers are stored as their JSON encoding, with credentials
	// redacted; the event carries that encoding, not a copy of the map.
	hj := src.encodeHeaders(r.Header)
	var cspan trace.Span
	if h.tracer != nil {
		// The request's span is stored with the event: its deliveries'
		// spans are its children.
		span := trace.SpanFromContext(r.Context())
		e.TraceParent = tracing.TraceParent(span)
		if span.IsRecording() {
			span.SetAttributes(tracing.AttrEventID.String(e.ID))
		}
		_, cspan = h.tracer.Start(r.Context(), tracing.SpanCommit, trace.SpanKindInternal)
	}
	// The ack deadline bounds the wait to enter a batch (then the wait
	// is for the batch's outcome), not the upload: a slow sender is
	// bounded by server.read_timeout instead.
	res, err := h.ins.InsertBy(r.Context(), time.Now().Add(h.ack), &store.EventInsert{Event: e, DedupeWindow: src.dedupe, HeadersJSON: hj})
	if cspan != nil {
		if err == nil && cspan.IsRecording() {
			cspan.SetAttributes(tracing.AttrDuplicate.Bool(res.Duplicate), tracing.AttrEventID.String(res.ID))
		}
		tracing.End(cspan, err)
	}
	if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) {
		if hookd.ErrorCode(err) == hookd.EInternal {
			err = &hookd.Error{Code: hookd.EUnavailable, Message: "storage too slow to commit", Err: err}
		}
	}
	if err != nil {
		return err
	}
	hdr := w.Header()
	if res.Duplicate {
		hdr[httpserver.HeaderDuplicate] = headerTrue
	}
	if src.body != nil {
		if src.contentType != "" {
			hdr.Set("Content-Type", src.contentType)
		}
		w.WriteHeader(src.status)
		w.Write(src.body)
		return nil
	}
	hdr["Content-Type"] = contentTypeJSON
	w.WriteHeader(src.status)
	// Ids are ULIDs with a fixed prefix: nothing to escape.
	io.WriteString(w, `{"id":"`+res.ID+`","request_id":"`+rid+`"}`+"\n")
	return nil
}

// verify runs the source's verification chain on the raw bytes, bounded by
// the verify timeout, and sets the WWW-Authenticate challenge of a failure.
func (h *Handler) verify(w http.ResponseWriter, r *http.Request, src *source, vr *verify.Request) error {
	return h.runVerify(w, r, vr, src.verify.Verify)
}

// runVerify runs check (a chain's verification) bounded by the verify
// timeout, and sets the WWW-Authenticate challenge of a failure.
func (h *Handler) runVerify(w http.ResponseWriter, r *http.Request, vr *verify.Request, check func(context.Context, *verify.Request) error) error {
	ctx, cancel := context.WithTimeout(r.Context(), h.verifyTimeout)
	defer cancel()
	err := check(ctx, vr)
	if err != nil && hookd.ErrorCode(err) == hookd.EInternal && ctx.Err() != nil {
		err = verify.Unavailable("verification took too long", err)
	}
	if err != nil {
		if c := verify.Challenge(err); c != "" {
			w.Header().Set("WWW-Authenticate", c)
		}
	}
	return err
}

// methodNotAllowed answers 405 naming the methods src accepts.
func methodNotAllowed(w http.ResponseWriter, src *source) error {
	allow := http.MethodPost
	for _, m := range src.methods {
		allow += ", " + m
	}
	w.Header().Set("Allow", allow)
	return hookd.Errorf(hookd.EMethod, "use POST to send events to a source")
}

// handshake answers a provider's handshake: a signed one after the whole
// chain passed, an unsigned one after the chain's guards (ip_allow), the
// handshaker checking its own token. Nothing is stored; the outcome is
// logged and reported to OnHandshake.
func (h *Handler) handshake(w http.ResponseWriter, r *http.Request, src *source, vr *verify.Request, hs verify.Handshaker, kind verify.HandshakeKind) error {
	check := src.verify.VerifyGuards
	if kind.Signed {
		check = src.verify.Verify
	}
	err := h.runVerify(w, r, vr, check)
	var ans *verify.HandshakeAnswer
	if err == nil {
		ctx, cancel := context.WithTimeout(r.Context(), h.verifyTimeout)
		ans, err = hs.AnswerHandshake(ctx, vr)
		cancel()
		if err != nil && hookd.ErrorCode(err) == hookd.EInternal && ctx.Err() != nil {
			err = verify.Unavailable("answering the handshake took too long", err)
		}
	}
	rec := HandshakeRecord{Source: src.cfg.Name, Kind: kind.Name, At: h.now().UTC(), Err: err}
	if err != nil {
		rec.Status = httpserver.Status(hookd.ErrorCode(err))
	} else {
		rec.Status = cmp.Or(ans.Status, http.StatusOK)
	}
	if h.log != nil {
		if err != nil {
			h.log.Warn("handshake refused", "source", src.cfg.Name, "kind", kind.Name, "status", rec.Status, "error", err)
		} else {
			h.log.Info("handshake answered", "source", src.cfg.Name, "kind", kind.Name, "status", rec.Status)
		}
	}
	if h.onHandshake != nil {
		h.onHandshake(rec)
	}
	if err != nil {
		return err
	}
	hdr := w.Header()
	for k, v := range ans.Header {
		hdr[k] = v
	}
	if ans.ContentType != "" {
		hdr.Set("Content-Type", ans.ContentType)
	}
	w.WriteHeader(rec.Status)
	w.Write(ans.Body)
	return nil
}

// readBody reads the whole body, at most limit bytes.
// innermost is the server's own ResponseWriter under wrappers (metrics):
// MaxBytesReader needs it to make the server close the connection after
// an oversized body instead of reading what is left of it.
func innermost(w http.ResponseWriter) http.ResponseWriter {
	for {
		u, ok := w.(interface{ Unwrap() http.ResponseWriter })
		if !ok {
			return w
		}
		w = u.Unwrap()
	}
}

func readBody(w http.ResponseWriter, r *http.Request, limit int64) ([]byte, error) {
	tooLarge := func() error { return hookd.Errorf(hookd.ETooLarge, "body larger than the limit of %d bytes", limit) }
	if r.ContentLength > limit {
		return nil, tooLarge()
	}
	rd := http.MaxBytesReader(innermost(w), r.Body, limit)
	var (
		body []byte
		err  error
	)
	if r.ContentLength >= 0 {
		body, err = readN(rd, r.ContentLength)
		if err == nil {
			var one [1]byte
			if n, _ := rd.Read(one[:]); n > 0 {
				err = errors.New("body longer than Content-Length")
			}
		}
	} else {
		body, err = io.ReadAll(rd)
	}
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return nil, tooLarge()
		}
		return nil, httpserver.BodyReadError(err)
	}
	return body, nil
}

// bodyChunk is the most readN allocates ahead of what has arrived: a
// sender that declares a large body and sends it slowly costs memory as it
// sends, not as it declares.
const bodyChunk = 8 << 10

// readN reads exactly n bytes from rd, growing its buffer as they arrive.
func readN(rd io.Reader, n int64) ([]byte, error) {
	b := make([]byte, 0, min(n, bodyChunk))
	for int64(len(b)) < n {
		if len(b) == cap(b) {
			// Doubling, up to what is still to come.
			b = slices.Grow(b, int(min(n-int64(len(b)), int64(len(b)))))
		}
		m, err := rd.Read(b[len(b):min(int64(cap(b)), n)])
		b = b[:len(b)+m]
		if err != nil {
			if err == io.EOF && int64(len(b)) < n {
				err = io.ErrUnexpectedEOF
			}
			if int64(len(b)) < n {
				return nil, err
			}
		}
	}
	return b, nil
}

// Header values every answer shares (net/http only reads them).
var (
	contentTypeJSON = []string{"application/json"}
	headerTrue      = []string{"true"}
)

// encodeHeaders encodes the request headers as stored (what
// store.EncodeHeaders makes of them), with credentials redacted.
func (s *source) encodeHeaders(in http.Header) string {
	keys := make([]string, 0, len(in))
	for k := range in {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	b := make([]byte, 0, 256)
	b = append(b, '{')
	for i, k := range keys {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendJSONString(b, k)
		b = append(b, ':')
		v := in[k]
		if s.redact[k] {
			v = redacted
		}
		if v == nil {
			b = append(b, "null"...)
			continue
		}
		b = append(b, '[')
		for j, x := range v {
			if j > 0 {
				b = append(b, ',')
			}
			b = appendJSONString(b, x)
		}
		b = append(b, ']')
	}
	b = append(b, '}')
	return string(b)
}

var redacted = []string{"[redacted]"}

// appendJSONString appends s as encoding/json writes it: as is when every
// byte is printable ASCII that needs no escape (header values nearly
// always are), and through encoding/json otherwise.
func appendJSONString(b []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c > 0x7e || c == '"' || c == '\\' || c == '<' || c == '>' || c == '&' {
			q, _ := json.Marshal(s)
			return append(b, q...)
		}
	}
	b = append(b, '"')
	b = append(b, s...)
	return append(b, '"')
}

// selectMetadata fills the event's id, type, timestamp and key. An absent
// value leaves its field empty; only require_id turns an absent id, or a
// body it cannot be read from, into 400. A source that reads JSON has had
// its body's nesting checked by serve already (needJSON).
func (s *source) selectMetadata(e *hookd.Event, r *http.Request, maxJSONDepth int) error {
	if s.id.IsZero() && s.typ.IsZero() && s.ts.IsZero() && s.key.IsZero() {
		return nil
	}
	var q url.Values
	m := &message{header: r.Header, body: e.Body, maxDepth: maxJSONDepth, depthChecked: s.needJSON, query: func() url.Values {
		if q == nil {
			q = r.URL.Query()
		}
		return q
	}}
	id, err := s.id.Select(m)
	if s.cfg.Event.RequireID {
		if err != nil {
			return hookd.Errorf(hookd.EInvalid, "the event id (%s) cannot be read: %v", s.cfg.Event.ID, err)
		}
		if id == "" {
			return hookd.Errorf(hookd.EInvalid, "the event id (%s) is missing", s.cfg.Event.ID)
		}
	}
	e.ExternalID = id
	e.Type, _ = s.typ.Select(m)
	e.Key, _ = s.key.Select(m)
	if ts, _ := s.ts.Select(m); ts != "" {
		e.OccurredAt, _ = ParseTimestamp(ts)
	}
	return nil
}

// ListensBeyondLoopback reports whether addr accepts connections from other
// hosts.
func ListensBeyondLoopback(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return true
	}
	if host == "localhost" {
		return false
	}
	ip := net.ParseIP(host)
	return ip == nil || !ip.IsLoopback()
}
