package webhook

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"hookd"
	"hookd/internal/destination"
	"hookd/internal/destination/destinationtest"
)

// t0 is the injected clock's time in tests.
var t0 = time.Date(2026, 11, 22, 6, 30, 0, 0, time.UTC)

// recorded is one request as a sink saw it.
type recorded struct {
	Method     string
	RequestURI string
	RemoteAddr string
	Header     http.Header
	Body       []byte
}

// testSink is an httptest server on 127.0.0.1 that records every request
// before answering it with answer (204 when nil).
type testSink struct {
	*httptest.Server
	mu     sync.Mutex
	reqs   []recorded
	answer http.HandlerFunc
}

func newSink(t *testing.T, answer http.HandlerFunc) *testSink {
	t.Helper()
	return newSinkWith(t, answer, nil)
}

// newSinkWith is newSink with a chance to configure the server before it
// starts.
func newSinkWith(t *testing.T, answer http.HandlerFunc, configure func(*http.Server)) *testSink {
	t.Helper()
	s := &testSink{answer: answer}
	s.Server = httptest.NewUnstartedServer(http.HandlerFunc(s.serve))
	if configure != nil {
		configure(s.Config)
	}
	s.Start()
	t.Cleanup(s.Close)
	return s
}

func (s *testSink) serve(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(r.Body)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	s.mu.Lock()
	s.reqs = append(s.reqs, recorded{r.Method, r.RequestURI, r.RemoteAddr, r.Header.Clone(), body})
	s.mu.Unlock()
	if s.answer != nil {
		s.answer(w, r)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (s *testSink) requests() []recorded {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]recorded(nil), s.reqs...)
}

// Received implements destinationtest.Sink.
func (s *testSink) Received(*testing.T) []destinationtest.Received {
	var out []destinationtest.Received
	for _, r := range s.requests() {
		out = append(out, destinationtest.Received{EventID: r.Header.Get(HeaderID), Body: r.Body})
	}
	return out
}

// clock is an injectable clock tests move by hand.
type clock struct{ unix atomic.Int64 }

func newClock(t time.Time) *clock {
	c := &clock{}
	c.set(t)
	return c
}

func (c *clock) set(t time.Time)       { c.unix.Store(t.UnixNano()) }
func (c *clock) now() time.Time        { return time.Unix(0, c.unix.Load()).UTC() }
func (c *clock) env() *destination.Env { return &destination.Env{Name: "test", Now: c.now} }

// openOpts opens an http destination through the registry, with options
// decoded strictly as from a config file, and closes it at cleanup.
func openOpts(t *testing.T, env *destination.Env, opts map[string]any) *Destination {
	t.Helper()
	if env == nil {
		env = newClock(t0).env()
	}
	d, err := destination.Open(context.Background(), Type, env, destinationtest.Options(opts))
	if err != nil {
		t.Fatalf("Open(%v): %v", opts, err)
	}
	t.Cleanup(func() { _ = d.Close() })
	return d.(*Destination)
}

// message returns attempt n of a fixed event.
func message(attempt int) *destination.Message {
	return &destination.Message{
		Event: &hookd.Event{
			ID:          "evt_01JDGZ4S1X6Q9N7W3A5B8C0D2E",
			Source:      "claims",
			Type:        "event.claim.created.v1",
			ContentType: "application/json; charset=utf-8",
			Body:        []byte(`{"id":"c-1","amount":12.50}`),
		},
		DeliveryID: "dlv_01JDGZ4S1X6Q9N7W3A5B8C0D2F",
		Attempt:    attempt,
	}
}

func deliverCtx(t *testing.T) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}
