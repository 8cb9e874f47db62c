// Package httpserver holds what every HTTP handler of hookd shares: the one
// table that maps error codes to statuses, the JSON error renderer, request
// ids, panic recovery, the in-flight cap, and the http.Server settings.
package httpserver

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"os"
	"strconv"
	"time"
	"unicode/utf8"

	"hookd"
	"hookd/internal/config"
)

// statusOf is the one table from error code to HTTP status.
var statusOf = map[string]int{
	hookd.EInvalid:      http.StatusBadRequest,
	hookd.EUnauthorized: http.StatusUnauthorized,
	hookd.EForbidden:    http.StatusForbidden,
	hookd.ENotFound:     http.StatusNotFound,
	hookd.EMethod:       http.StatusMethodNotAllowed,
	hookd.EConflict:     http.StatusConflict,
	hookd.ETooLarge:     http.StatusRequestEntityTooLarge,
	hookd.ETimeout:      http.StatusRequestTimeout,
	hookd.ERateLimited:  http.StatusTooManyRequests,
	hookd.EInternal:     http.StatusInternalServerError,
	hookd.EUnavailable:  http.StatusServiceUnavailable,
}

// Status returns the HTTP status for an error code.
func Status(code string) int {
	if s, ok := statusOf[code]; ok {
		return s
	}
	return http.StatusInternalServerError
}

// Header names hookd sets on answers.
const (
	HeaderRequestID = "Hookd-Request-Id"
	HeaderDuplicate = "Hookd-Duplicate"
)

type ctxKey int

const requestIDKey ctxKey = 0

// RequestID returns the request id that Handler assigned.
func RequestID(ctx context.Context) string {
	id, _ := ctx.Value(requestIDKey).(string)
	return id
}

// WithRequestID returns ctx carrying id (for tests and handlers used
// without Handler).
func WithRequestID(ctx context.Context, id string) context.Context {
	return context.WithValue(ctx, requestIDKey, id)
}

type errorBody struct {
	Error     errorDetail `json:"error"`
	RequestID string      `json:"request_id,omitempty"`
}

type errorDetail struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

// Errors is the renderer every handler uses for errors.
type Errors struct {
	Log *slog.Logger
	// RetryAfter is sent with 503 answers that don't set their own.
	RetryAfter time.Duration
}

// Write renders err as {"error": {"code", "message"}, "request_id"} with
// the status of its code. Internal details are logged, never shown.
func (e *Errors) Write(w http.ResponseWriter, r *http.Request, err error) {
	code := hookd.ErrorCode(err)
	if _, known := statusOf[code]; !known {
		// A code outside the vocabulary is a bug; its message may say
		// anything, so it is shown as what it is: an internal error.
		err = &hookd.Error{Code: hookd.EInternal, Message: "internal error", Err: err}
		code = hookd.EInternal
	}
	status := Status(code)
	rid := RequestID(r.Context())
	if status >= 500 {
		e.Log.Error("request failed", "request_id", rid, "method", r.Method, "path", r.URL.Path, "status", status, "err", err)
	} else if e.Log.Enabled(r.Context(), slog.LevelDebug) {
		e.Log.Debug("request refused", "request_id", rid, "method", r.Method, "path", r.URL.Path, "status", status, "err", err)
	}
	h := w.Header()
	if status == http.StatusRequestTimeout {
		// What is left of the request may still come: the connection
		// cannot carry another one.
		h.Set("Connection", "close")
	}
	if (status == http.StatusServiceUnavailable || status == http.StatusTooManyRequests) && h.Get("Retry-After") == "" {
		h.Set("Retry-After", strconv.Itoa(max(1, int(e.RetryAfter.Seconds()))))
	}
	WriteJSON(w, status, errorBody{Error: errorDetail{Code: code, Message: hookd.ErrorMessage(err)}, RequestID: rid})
}

// WriteJSON writes v as JSON with status. The encoding is written as it
// is, not copied to add its final newline.
func WriteJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		status = http.StatusInternalServerError
		b = []byte(`{"error":{"code":"internal","message":"internal error"}}`)
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	if _, err := w.Write(b); err == nil {
		io.WriteString(w, "\n")
	}
}

// Handler wraps next with a request id (header Hookd-Request-Id on every
// answer), panic recovery and the refusal of a request that declares its
// length twice (see NewListener). The caps on requests in flight are
// Gates, taken where the work is (ingest, Limit).
func Handler(next http.Handler, errs *Errors) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rid := hookd.RequestIDPrefix + hookd.NewULID(time.Now())
		w.Header()[HeaderRequestID] = []string{rid} // canonical already
		r = r.WithContext(WithRequestID(r.Context(), rid))
		if r.TLS == nil {
			r.TLS = tlsState(r)
		}
		defer func() {
			if v := recover(); v != nil {
				if v == http.ErrAbortHandler {
					panic(v)
				}
				errs.Log.Error("panic", "request_id", rid, "path", r.URL.Path, "panic", v)
				errs.Write(w, r, &hookd.Error{Code: hookd.EInternal, Message: "internal error"})
			}
		}()
		if ambiguousFraming(r) {
			// net/http closes the connection after this answer: nothing
			// more is read from it.
			w.Header().Set("Connection", "close")
			errs.Write(w, r, hookd.Errorf(hookd.EInvalid, "a request must not have both Content-Length and Transfer-Encoding"))
			return
		}
		next.ServeHTTP(w, r)
	})
}

// ErrInFlight answers a request beyond a Gate: 503 at once.
var ErrInFlight = &hookd.Error{Code: hookd.EUnavailable, Message: "too many requests in flight"}

// Gate caps how many requests do their work at once. A nil *Gate admits
// every request.
type Gate struct{ sem chan struct{} }

// NewGate returns a gate of n slots; nil (no cap) when n <= 0.
func NewGate(n int) *Gate {
	if n <= 0 {
		return nil
	}
	return &Gate{sem: make(chan struct{}, n)}
}

// Enter takes a slot and reports whether there was one; it never waits.
// Each successful Enter is paired with one Leave.
func (g *Gate) Enter() bool {
	if g == nil {
		return true
	}
	select {
	case g.sem <- struct{}{}:
		return true
	default:
		return false
	}
}

// Leave gives back a slot taken by Enter.
func (g *Gate) Leave() {
	if g != nil {
		<-g.sem
	}
}

// Limit serves next within a slot of gate, and answers 503 at once when
// there is none. With preread > 0, the request body, up to preread+1
// bytes, is read before the slot is taken: a sender that trickles its body
// holds no slot while it does (next reads the same bytes, and what
// follows them, from r.Body).
func Limit(next http.Handler, errs *Errors, gate *Gate, preread int64) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if preread > 0 && r.Body != nil && r.Body != http.NoBody {
			b, err := io.ReadAll(io.LimitReader(r.Body, preread+1))
			if err != nil {
				errs.Write(w, r, BodyReadError(err))
				return
			}
			r.Body = prereadBody{Reader: io.MultiReader(bytes.NewReader(b), r.Body), Closer: r.Body}
		}
		if !gate.Enter() {
			errs.Write(w, r, ErrInFlight)
			return
		}
		defer gate.Leave()
		next.ServeHTTP(w, r)
	})
}

type prereadBody struct {
	io.Reader
	io.Closer
}

// BodyReadError is the error to answer when reading a request body failed
// with err: 408 when it did not arrive within server.body_timeout (or
// read_timeout), 503 when the memory for request bodies is in use (see
// BodyBudget), 400 otherwise.
func BodyReadError(err error) error {
	if errors.Is(err, errBodyMemory) {
		return &hookd.Error{Code: hookd.EUnavailable, Message: "too many request bodies being received; try again later", Err: err}
	}
	if errors.Is(err, os.ErrDeadlineExceeded) {
		return &hookd.Error{Code: hookd.ETimeout, Message: "the request body did not arrive in time", Err: err}
	}
	return &hookd.Error{Code: hookd.EInvalid, Message: "could not read the request body", Err: err}
}

// bodyDeadline bounds the reading of each request body to d from the
// moment the handler starts, when that is sooner than the read timeout
// (which counts from the first byte of the request). Once the body is
// read, net/http lifts the deadline itself (its watch for a closed
// connection reads without one), so a request waiting for its commit is
// not cut.
func bodyDeadline(next http.Handler, d, readTimeout time.Duration) http.Handler {
	if d <= 0 || (readTimeout > 0 && d >= readTimeout) {
		return next
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Body != nil && r.Body != http.NoBody && r.ContentLength != 0 {
			http.NewResponseController(w).SetReadDeadline(time.Now().Add(d))
		}
		next.ServeHTTP(w, r)
	})
}

// New returns an http.Server with the configured timeouts and limits.
func New(h http.Handler, c config.Server, log *slog.Logger) *http.Server {
	return &http.Server{
		Handler:           bodyDeadline(h, c.BodyTimeout.D(), c.ReadTimeout.D()),
		ConnContext:       connContext,
		ReadHeaderTimeout: c.ReadHeaderTimeout.D(),
		ReadTimeout:       c.ReadTimeout.D(),
		WriteTimeout:      c.WriteTimeout.D(),
		IdleTimeout:       c.IdleTimeout.D(),
		MaxHeaderBytes:    int(c.MaxHeaderBytes),
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
}

// Clip returns s cut to at most n bytes, on a rune boundary, with "…"
// appended when it was cut: for echoing what a client sent (a path, a
// name) in an error without echoing all of it.
func Clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n] + "…"
}
