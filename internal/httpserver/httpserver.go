// Package httpserver holds what every HTTP handler of hookd shares: the one
// table that maps error codes to statuses, the JSON error renderer, request
// ids, panic recovery, the in-flight cap, and the http.Server settings.
package httpserver

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"strconv"
	"time"

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
	if (status == http.StatusServiceUnavailable || status == http.StatusTooManyRequests) && h.Get("Retry-After") == "" {
		h.Set("Retry-After", strconv.Itoa(max(1, int(e.RetryAfter.Seconds()))))
	}
	WriteJSON(w, status, errorBody{Error: errorDetail{Code: code, Message: hookd.ErrorMessage(err)}, RequestID: rid})
}

// WriteJSON writes v as JSON with status.
func WriteJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		status = http.StatusInternalServerError
		b = []byte(`{"error":{"code":"internal","message":"internal error"}}`)
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	w.Write(append(b, '\n'))
}

// Handler wraps next with a request id (header Hookd-Request-Id on every
// answer), panic recovery and, when limit > 0, a cap on requests in flight
// beyond which it answers 503 at once. Paths in exempt skip the cap.
func Handler(next http.Handler, errs *Errors, limit int, exempt ...string) http.Handler {
	var sem chan struct{}
	if limit > 0 {
		sem = make(chan struct{}, limit)
	}
	skip := map[string]bool{}
	for _, p := range exempt {
		skip[p] = true
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rid := hookd.RequestIDPrefix + hookd.NewULID(time.Now())
		w.Header()[HeaderRequestID] = []string{rid} // canonical already
		r = r.WithContext(WithRequestID(r.Context(), rid))
		defer func() {
			if v := recover(); v != nil {
				if v == http.ErrAbortHandler {
					panic(v)
				}
				errs.Log.Error("panic", "request_id", rid, "path", r.URL.Path, "panic", v)
				errs.Write(w, r, &hookd.Error{Code: hookd.EInternal, Message: "internal error"})
			}
		}()
		if sem != nil && !skip[r.URL.Path] {
			select {
			case sem <- struct{}{}:
				defer func() { <-sem }()
			default:
				errs.Write(w, r, &hookd.Error{Code: hookd.EUnavailable, Message: "too many requests in flight"})
				return
			}
		}
		next.ServeHTTP(w, r)
	})
}

// New returns an http.Server with the configured timeouts and limits.
func New(h http.Handler, c config.Server, log *slog.Logger) *http.Server {
	return &http.Server{
		Handler:           h,
		ReadHeaderTimeout: c.ReadHeaderTimeout.D(),
		ReadTimeout:       c.ReadTimeout.D(),
		WriteTimeout:      c.WriteTimeout.D(),
		IdleTimeout:       c.IdleTimeout.D(),
		MaxHeaderBytes:    int(c.MaxHeaderBytes),
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
}
