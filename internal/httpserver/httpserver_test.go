package httpserver_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"hookd"
	"hookd/internal/config"
	"hookd/internal/httpserver"
)

// syncBuffer is a log sink safe to read while a server writes to it.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func newErrors(retryAfter time.Duration) (*httpserver.Errors, *syncBuffer) {
	buf := &syncBuffer{}
	return &httpserver.Errors{Log: slog.New(slog.NewTextHandler(buf, &slog.HandlerOptions{Level: slog.LevelDebug})), RetryAfter: retryAfter}, buf
}

type errBody struct {
	Error struct {
		Code    string `json:"code"`
		Message string `json:"message"`
	} `json:"error"`
	RequestID string `json:"request_id"`
}

func decodeError(t *testing.T, body []byte) errBody {
	t.Helper()
	var e errBody
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&e); err != nil {
		t.Fatalf("error body %q: %v", body, err)
	}
	return e
}

// TestStatus is the one table from error code to status, as SPEC §2 and
// §4 expect it.
func TestStatus(t *testing.T) {
	t.Parallel()
	tests := []struct {
		code string
		want int
	}{
		{hookd.EInvalid, 400},
		{hookd.EUnauthorized, 401},
		{hookd.EForbidden, 403},
		{hookd.ENotFound, 404},
		{hookd.EMethod, 405},
		{hookd.EConflict, 409},
		{hookd.ETooLarge, 413},
		{hookd.ERateLimited, 429},
		{hookd.EInternal, 500},
		{hookd.EUnavailable, 503},
		{"", 500},
		{"no_such_code", 500},
	}
	for _, tt := range tests {
		if got := httpserver.Status(tt.code); got != tt.want {
			t.Errorf("Status(%q): got %d, want %d", tt.code, got, tt.want)
		}
	}
}

func TestErrorsWrite(t *testing.T) {
	t.Parallel()
	const secret = "password=hunter2 at /var/lib/hookd"
	tests := []struct {
		name       string
		err        error
		preset     string // a Retry-After the handler set itself
		status     int
		code       string
		message    string
		retryAfter string
	}{
		{"PlainError", errors.New(secret), "", 500, hookd.EInternal, "internal error", ""},
		{"InternalWithMessage", &hookd.Error{Code: hookd.EInternal, Message: secret, Err: errors.New(secret)}, "", 500, hookd.EInternal, "internal error", ""},
		{"WrappedPlain", fmt.Errorf("commit: %w", errors.New(secret)), "", 500, hookd.EInternal, "internal error", ""},
		{"Invalid", hookd.Errorf(hookd.EInvalid, "the event id is missing"), "", 400, hookd.EInvalid, "the event id is missing", ""},
		{"InvalidWithCause", &hookd.Error{Code: hookd.EInvalid, Message: "could not read the request body", Err: errors.New(secret)}, "", 400, hookd.EInvalid, "could not read the request body", ""},
		{"Wrapped", fmt.Errorf("get event: %w", &hookd.Error{Code: hookd.ENotFound, Message: "not found", Err: errors.New(secret)}), "", 404, hookd.ENotFound, "not found", ""},
		{"Unavailable", &hookd.Error{Code: hookd.EUnavailable, Message: "storage unavailable", Err: errors.New(secret)}, "", 503, hookd.EUnavailable, "storage unavailable", "7"},
		{"UnavailablePreset", hookd.Errorf(hookd.EUnavailable, "busy"), "42", 503, hookd.EUnavailable, "busy", "42"},
		{"RateLimited", hookd.Errorf(hookd.ERateLimited, "slow down"), "", 429, hookd.ERateLimited, "slow down", "7"},
		{"RateLimitedPreset", hookd.Errorf(hookd.ERateLimited, "slow down"), "3", 429, hookd.ERateLimited, "slow down", "3"},
		{"TooLarge", hookd.Errorf(hookd.ETooLarge, "too big"), "", 413, hookd.ETooLarge, "too big", ""},
		{"Unauthorized", hookd.Errorf(hookd.EUnauthorized, "no"), "", 401, hookd.EUnauthorized, "no", ""},
		{"Forbidden", hookd.Errorf(hookd.EForbidden, "no"), "", 403, hookd.EForbidden, "no", ""},
		{"Method", hookd.Errorf(hookd.EMethod, "use POST"), "", 405, hookd.EMethod, "use POST", ""},
		{"Conflict", hookd.Errorf(hookd.EConflict, "exists"), "", 409, hookd.EConflict, "exists", ""},
		{"ContextDeadline", context.DeadlineExceeded, "", 500, hookd.EInternal, "internal error", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			errs, logs := newErrors(7 * time.Second)
			r := httptest.NewRequest(http.MethodPost, "/in/a", nil)
			r = r.WithContext(httpserver.WithRequestID(r.Context(), "req_test"))
			w := httptest.NewRecorder()
			if tt.preset != "" {
				w.Header().Set("Retry-After", tt.preset)
			}
			errs.Write(w, r, tt.err)
			if w.Code != tt.status {
				t.Errorf("status: got %d, want %d", w.Code, tt.status)
			}
			if ct := w.Header().Get("Content-Type"); ct != "application/json" {
				t.Errorf("Content-Type: got %q, want application/json", ct)
			}
			body := w.Body.Bytes()
			e := decodeError(t, body)
			if e.Error.Code != tt.code || e.Error.Message != tt.message || e.RequestID != "req_test" {
				t.Errorf("body: got %+v, want code %q message %q request_id req_test", e, tt.code, tt.message)
			}
			if bytes.Contains(body, []byte("hunter2")) {
				t.Errorf("body: got %s, want no internal detail", body)
			}
			if got := w.Header().Get("Retry-After"); got != tt.retryAfter {
				t.Errorf("Retry-After: got %q, want %q", got, tt.retryAfter)
			}
			// 5xx causes are logged for the operator, with the request id.
			if l := logs.String(); tt.status >= 500 && !strings.Contains(l, "req_test") {
				t.Errorf("log: got %q, want the request id", l)
			} else if tt.status >= 500 && strings.Contains(tt.err.Error(), "hunter2") && !strings.Contains(l, "hunter2") {
				t.Errorf("log: got %q, want the cause", l)
			}
		})
	}
}

// An error whose code is not in the table answers 500: it is an internal
// error, and its message is not shown either.
func TestErrorsWriteUnknownCode(t *testing.T) {
	t.Parallel()
	for _, code := range []string{"", "bogus"} {
		errs, _ := newErrors(time.Second)
		w := httptest.NewRecorder()
		errs.Write(w, httptest.NewRequest(http.MethodGet, "/", nil), &hookd.Error{Code: code, Message: "secret detail"})
		e := decodeError(t, w.Body.Bytes())
		if w.Code != 500 || e.Error.Code != hookd.EInternal || e.Error.Message != "internal error" {
			t.Errorf("code %q: got %d %+v, want 500 internal \"internal error\"", code, w.Code, e.Error)
		}
	}
}

func TestErrorsWriteRetryAfterDefault(t *testing.T) {
	t.Parallel()
	tests := []struct {
		retryAfter time.Duration
		want       string
	}{
		{0, "1"},
		{500 * time.Millisecond, "1"},
		{time.Second, "1"},
		{5 * time.Second, "5"},
		{2 * time.Minute, "120"},
	}
	for _, tt := range tests {
		errs, _ := newErrors(tt.retryAfter)
		w := httptest.NewRecorder()
		errs.Write(w, httptest.NewRequest(http.MethodGet, "/", nil), hookd.Errorf(hookd.EUnavailable, "x"))
		if got := w.Header().Get("Retry-After"); got != tt.want {
			t.Errorf("RetryAfter %s: got Retry-After %q, want %q", tt.retryAfter, got, tt.want)
		}
	}
}

func TestErrorsWriteWithoutRequestID(t *testing.T) {
	t.Parallel()
	errs, _ := newErrors(time.Second)
	w := httptest.NewRecorder()
	errs.Write(w, httptest.NewRequest(http.MethodGet, "/", nil), hookd.Errorf(hookd.ENotFound, "nope"))
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(w.Body.Bytes(), &raw); err != nil {
		t.Fatal(err)
	}
	if _, ok := raw["request_id"]; ok {
		t.Errorf("body: got %s, want no request_id when there is none", w.Body.Bytes())
	}
}

func TestWriteJSON(t *testing.T) {
	t.Parallel()
	w := httptest.NewRecorder()
	httpserver.WriteJSON(w, http.StatusCreated, map[string]string{"a": "<b>"})
	if w.Code != 201 || w.Header().Get("Content-Type") != "application/json" {
		t.Errorf("got %d %q, want 201 application/json", w.Code, w.Header().Get("Content-Type"))
	}
	var m map[string]string
	if err := json.Unmarshal(w.Body.Bytes(), &m); err != nil || m["a"] != "<b>" || !bytes.HasSuffix(w.Body.Bytes(), []byte("\n")) {
		t.Errorf("body: got %q (%v), want {\"a\":\"<b>\"} and a newline", w.Body.Bytes(), err)
	}
	w = httptest.NewRecorder()
	httpserver.WriteJSON(w, http.StatusOK, map[string]any{"c": make(chan int)})
	e := decodeError(t, w.Body.Bytes())
	if w.Code != 500 || e.Error.Code != hookd.EInternal || e.Error.Message != "internal error" {
		t.Errorf("unencodable value: got %d %+v, want 500 internal error", w.Code, e)
	}
}

func get(t *testing.T, c *http.Client, url string) (*http.Response, []byte) {
	t.Helper()
	resp, err := c.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("GET %s: read: %v", url, err)
	}
	return resp, b
}

func TestHandlerRequestID(t *testing.T) {
	t.Parallel()
	errs, _ := newErrors(time.Second)
	inner := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, httpserver.RequestID(r.Context()))
	})
	srv := httptest.NewServer(httpserver.Handler(inner, errs))
	defer srv.Close()
	seen := map[string]bool{}
	for range 10 {
		resp, body := get(t, srv.Client(), srv.URL+"/x")
		rid := resp.Header.Get(httpserver.HeaderRequestID)
		if !hookd.ValidID(rid, hookd.RequestIDPrefix) {
			t.Errorf("%s: got %q, want req_ + ULID", httpserver.HeaderRequestID, rid)
		}
		if string(body) != rid {
			t.Errorf("RequestID(ctx): got %q, want the header's %q", body, rid)
		}
		if seen[rid] {
			t.Errorf("request id %q seen twice", rid)
		}
		seen[rid] = true
	}
	if got := httpserver.RequestID(context.Background()); got != "" {
		t.Errorf("RequestID(background): got %q, want \"\"", got)
	}
}

func TestHandlerPanic(t *testing.T) {
	t.Parallel()
	errs, logs := newErrors(time.Second)
	mux := http.NewServeMux()
	mux.HandleFunc("/panic", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Partial", "1")
		panic("boom: secret-detail")
	})
	mux.HandleFunc("/panic-error", func(w http.ResponseWriter, r *http.Request) {
		panic(errors.New("nil map: secret-detail"))
	})
	mux.HandleFunc("/abort", func(w http.ResponseWriter, r *http.Request) {
		panic(http.ErrAbortHandler)
	})
	mux.HandleFunc("/ok", func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok") })
	srv := httptest.NewServer(httpserver.Handler(mux, errs))
	defer srv.Close()
	c := srv.Client()

	for _, path := range []string{"/panic", "/panic-error"} {
		resp, body := get(t, c, srv.URL+path)
		if resp.StatusCode != 500 || resp.Header.Get("Content-Type") != "application/json" {
			t.Errorf("GET %s: got %d %q, want 500 application/json", path, resp.StatusCode, resp.Header.Get("Content-Type"))
		}
		e := decodeError(t, body)
		rid := resp.Header.Get(httpserver.HeaderRequestID)
		if e.Error.Code != hookd.EInternal || e.Error.Message != "internal error" || e.RequestID != rid || rid == "" {
			t.Errorf("GET %s: got %+v, want internal, \"internal error\", request id %q", path, e, rid)
		}
		if bytes.Contains(body, []byte("secret-detail")) {
			t.Errorf("GET %s: body %s shows the panic value", path, body)
		}
		if !strings.Contains(logs.String(), "secret-detail") {
			t.Errorf("GET %s: log %q: want the panic logged", path, logs.String())
		}
	}
	// The server lives on.
	for range 3 {
		if resp, body := get(t, c, srv.URL+"/ok"); resp.StatusCode != 200 || string(body) != "ok" {
			t.Errorf("GET /ok after a panic: got %d %q, want 200 ok", resp.StatusCode, body)
		}
	}
	// http.ErrAbortHandler still aborts the response, as net/http means it.
	if resp, err := c.Get(srv.URL + "/abort"); err == nil {
		resp.Body.Close()
		t.Errorf("GET /abort: got %d, want the connection aborted", resp.StatusCode)
	}
}

func TestLimitInFlightCap(t *testing.T) {
	t.Parallel()
	errs, _ := newErrors(3 * time.Second)
	entered := make(chan struct{}, 4)
	release := make(chan struct{})
	mux := http.NewServeMux()
	gate := httpserver.NewGate(1)
	mux.Handle("/slow", httpserver.Limit(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		entered <- struct{}{}
		<-release
		io.WriteString(w, "slow")
	}), errs, gate, 0))
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok") })
	mux.Handle("/fast", httpserver.Limit(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "fast") }), errs, gate, 0))
	srv := httptest.NewServer(httpserver.Handler(mux, errs))
	defer srv.Close()
	c := srv.Client()

	done := make(chan int, 1)
	go func() {
		resp, err := c.Get(srv.URL + "/slow")
		if err != nil {
			done <- 0
			return
		}
		resp.Body.Close()
		done <- resp.StatusCode
	}()
	select {
	case <-entered:
	case <-time.After(10 * time.Second):
		t.Fatal("the slow request never started")
	}
	start := time.Now()
	resp, body := get(t, c, srv.URL+"/fast")
	if elapsed := time.Since(start); elapsed > time.Second {
		t.Errorf("second request: answered after %s, want at once", elapsed)
	}
	if resp.StatusCode != 503 || resp.Header.Get("Retry-After") != "3" {
		t.Errorf("second request: got %d Retry-After %q, want 503 and 3", resp.StatusCode, resp.Header.Get("Retry-After"))
	}
	if e := decodeError(t, body); e.Error.Code != hookd.EUnavailable || e.RequestID == "" {
		t.Errorf("second request: got %+v, want unavailable with a request id", e)
	}
	// Paths outside the gate are not counted.
	if resp, body := get(t, c, srv.URL+"/healthz"); resp.StatusCode != 200 || string(body) != "ok" {
		t.Errorf("ungated /healthz: got %d %q, want 200 ok", resp.StatusCode, body)
	}
	close(release)
	select {
	case st := <-done:
		if st != 200 {
			t.Errorf("slow request: got %d, want 200", st)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the slow request never finished")
	}
	if resp, _ := get(t, c, srv.URL+"/fast"); resp.StatusCode != 200 {
		t.Errorf("after the slot is free: got %d, want 200", resp.StatusCode)
	}
}

func TestHandlerNoCap(t *testing.T) {
	t.Parallel()
	errs, _ := newErrors(time.Second)
	var wg sync.WaitGroup
	wg.Add(3)
	inner := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		wg.Done()
		wg.Wait() // all three must be in flight at once
	})
	srv := httptest.NewServer(httpserver.Handler(inner, errs))
	defer srv.Close()
	statuses := make(chan int, 3)
	for range 3 {
		go func() {
			resp, err := srv.Client().Get(srv.URL)
			if err != nil {
				statuses <- 0
				return
			}
			resp.Body.Close()
			statuses <- resp.StatusCode
		}()
	}
	for range 3 {
		select {
		case st := <-statuses:
			if st != 200 {
				t.Errorf("limit 0: got %d, want 200", st)
			}
		case <-time.After(10 * time.Second):
			t.Fatal("limit 0: requests did not run concurrently")
		}
	}
}

func TestNew(t *testing.T) {
	t.Parallel()
	c := config.Default().Server
	srv := httpserver.New(http.NotFoundHandler(), c, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if srv.ReadHeaderTimeout != 5*time.Second || srv.ReadTimeout != 30*time.Second || srv.WriteTimeout != 30*time.Second ||
		srv.IdleTimeout != 120*time.Second || srv.MaxHeaderBytes != 64<<10 || srv.ErrorLog == nil {
		t.Errorf("server: got read-header %s read %s write %s idle %s max-header %d; want 5s 30s 30s 2m0s 65536",
			srv.ReadHeaderTimeout, srv.ReadTimeout, srv.WriteTimeout, srv.IdleTimeout, srv.MaxHeaderBytes)
	}
}

func TestClip(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		in   string
		n    int
		want string
	}{
		{"short", 64, "short"},
		{"abcdef", 3, "abc…"},
		{"aé", 2, "a…"}, // é is two bytes: never cut inside a rune
		{"", 0, ""},
	} {
		if got := httpserver.Clip(c.in, c.n); got != c.want {
			t.Errorf("Clip(%q, %d): got %q, want %q", c.in, c.n, got, c.want)
		}
	}
}
