// Package destinationtest is the conformance suite every destination kind
// passes (STYLE rule 5): a kind's test supplies a way to open a destination
// on a fresh, isolated sink (an httptest server, a topic, a stream) and to
// read what arrived there; Run checks the behaviours the engine relies on.
//
//	func TestConformance(t *testing.T) {
//		destinationtest.Run(t, func(t *testing.T) (destination.Destination, destinationtest.Sink) {
//			sink := newSink(t) // isolated per call
//			return openOn(t, sink), sink
//		})
//	}
//
// A new behaviour every kind must have gets its case here, not in one
// kind's tests.
package destinationtest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"sync"
	"testing"
	"time"

	"gopkg.in/yaml.v3"

	"hookd"
	"hookd/internal/destination"
)

// Received is one message as it arrived at a sink.
type Received struct {
	// EventID is the event id the message carried (for http: webhook-id).
	EventID string
	// Body is the payload exactly as it arrived.
	Body []byte
}

// Sink reads what arrived at the place a destination delivers to.
type Sink interface {
	// Received returns every message that has arrived so far, in arrival
	// order. A confirmed Deliver must be visible here when it returns.
	Received(t *testing.T) []Received
}

// OpenFunc opens a destination of the kind under test that delivers to a
// fresh sink of its own, and returns both. It registers its own cleanup
// for the sink; Run closes the destination.
type OpenFunc func(t *testing.T) (destination.Destination, Sink)

// quick bounds how long a Deliver on a cancelled context may take.
const quick = 2 * time.Second

// Run runs the conformance suite. Cases run in parallel, each on its own
// sink; run the test with -race.
func Run(t *testing.T, open OpenFunc) {
	t.Helper()
	cases := []struct {
		name string
		f    func(*testing.T, OpenFunc)
	}{
		{"DeliverSucceeds", testDeliverSucceeds},
		{"BodyBytesExact", testBodyBytesExact},
		{"SameEventIDEveryAttempt", testSameEventIDEveryAttempt},
		{"ConcurrentDeliver", testConcurrentDeliver},
		{"CancelledContext", testCancelledContext},
		{"ExpiredDeadline", testExpiredDeadline},
		{"CloseTwice", testCloseTwice},
		{"CloseUnused", testCloseUnused},
		{"DeliverAfterClose", testDeliverAfterClose},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			c.f(t, open)
		})
	}
}

// NewMessage returns attempt 1 of a fresh event carrying body.
func NewMessage(body []byte, contentType string) *destination.Message {
	now := time.Now()
	id := hookd.NewULID(now)
	return &destination.Message{
		Event: &hookd.Event{
			ID:          hookd.EventIDPrefix + id,
			Source:      "conformance",
			Type:        "conformance.test.v1",
			ReceivedAt:  now,
			RequestID:   hookd.RequestIDPrefix + id,
			ContentType: contentType,
			Body:        body,
		},
		DeliveryID: "dlv_" + id,
		Attempt:    1,
	}
}

// Options returns destination.Options that decode opts the way a
// configuration file would: through YAML, strictly (an unknown key is an
// error).
func Options(opts map[string]any) destination.Options { return yamlOptions{opts} }

type yamlOptions struct{ m map[string]any }

func (o yamlOptions) Decode(dst any) error {
	raw, err := yaml.Marshal(o.m)
	if err != nil {
		return err
	}
	dec := yaml.NewDecoder(bytes.NewReader(raw))
	dec.KnownFields(true)
	if err := dec.Decode(dst); err != nil && !errors.Is(err, io.EOF) {
		return err
	}
	return nil
}

func openClosed(t *testing.T, open OpenFunc) (destination.Destination, Sink) {
	t.Helper()
	d, sink := open(t)
	t.Cleanup(func() {
		if err := d.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return d, sink
}

// Deliver delivers m with d within 30 s and fails t unless it succeeds;
// it returns the result for the kind's own checks.
func Deliver(t *testing.T, d destination.Destination, m *destination.Message) destination.Result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	res, err := d.Deliver(ctx, m)
	if err != nil {
		t.Fatalf("Deliver(%s, attempt %d): got error %v, want nil", m.Event.ID, m.Attempt, err)
	}
	return res
}

// byID indexes what arrived; it fails on an arrival nobody sent.
func byID(t *testing.T, got []Received, sent map[string][]byte) map[string][]Received {
	t.Helper()
	out := map[string][]Received{}
	for _, r := range got {
		if _, ok := sent[r.EventID]; !ok {
			t.Errorf("sink received event id %q that was never sent", r.EventID)
		}
		out[r.EventID] = append(out[r.EventID], r)
	}
	return out
}

func testDeliverSucceeds(t *testing.T, open OpenFunc) {
	d, sink := openClosed(t, open)
	m := NewMessage([]byte(`{"hello":"world"}`), "application/json")
	Deliver(t, d, m)
	got := sink.Received(t)
	if len(got) != 1 {
		t.Fatalf("sink received %d messages, want 1", len(got))
	}
	if got[0].EventID != m.Event.ID {
		t.Errorf("event id: got %q, want %q", got[0].EventID, m.Event.ID)
	}
	if !bytes.Equal(got[0].Body, m.Event.Body) {
		t.Errorf("body: got %q, want %q", got[0].Body, m.Event.Body)
	}
}

func testBodyBytesExact(t *testing.T, open OpenFunc) {
	d, sink := openClosed(t, open)
	allBytes := make([]byte, 256)
	for i := range allBytes {
		allBytes[i] = byte(i)
	}
	big := make([]byte, 256<<10)
	rng := rand.New(rand.NewPCG(1, 2))
	for i := range big {
		big[i] = byte(rng.Uint32())
	}
	bodies := []struct {
		name, contentType string
		body              []byte
	}{
		{"Empty", "", []byte{}},
		{"JSON", "application/json", []byte(`{"a":"\u00e9\u65e5\ud83d\ude00","n":1e400,"dup":1,"dup":2}` + "\n")},
		{"AllByteValues", "application/octet-stream", allBytes},
		{"InvalidUTF8", "text/plain", []byte("\xff\xfe\x00bad\x80")},
		{"CRLFAndSpaces", "text/plain", []byte("  line1\r\nline2\n\n  ")},
		{"Random256KiB", "application/octet-stream", big},
	}
	sent := map[string][]byte{}
	for _, b := range bodies {
		m := NewMessage(b.body, b.contentType)
		sent[m.Event.ID] = b.body
		Deliver(t, d, m)
	}
	got := byID(t, sink.Received(t), sent)
	for id, want := range sent {
		rs := got[id]
		if len(rs) == 0 {
			t.Errorf("event %s (%d bytes) never arrived", id, len(want))
			continue
		}
		for _, r := range rs {
			if !bytes.Equal(r.Body, want) {
				t.Errorf("event %s: body of %d bytes arrived as %d bytes, not byte-for-byte equal (first difference at %d)",
					id, len(want), len(r.Body), firstDiff(r.Body, want))
			}
		}
	}
}

func firstDiff(a, b []byte) int {
	for i := 0; i < len(a) && i < len(b); i++ {
		if a[i] != b[i] {
			return i
		}
	}
	return min(len(a), len(b))
}

func testSameEventIDEveryAttempt(t *testing.T, open OpenFunc) {
	d, sink := openClosed(t, open)
	m := NewMessage([]byte("retry me"), "text/plain")
	for attempt := 1; attempt <= 3; attempt++ {
		again := *m
		again.Attempt = attempt
		Deliver(t, d, &again)
	}
	got := sink.Received(t)
	if len(got) != 3 {
		t.Fatalf("sink received %d messages, want 3", len(got))
	}
	for i, r := range got {
		if r.EventID != m.Event.ID {
			t.Errorf("attempt %d: event id %q, want %q (the same on every attempt)", i+1, r.EventID, m.Event.ID)
		}
	}
}

func testConcurrentDeliver(t *testing.T, open OpenFunc) {
	d, sink := openClosed(t, open)
	const workers, each = 16, 8
	var (
		mu   sync.Mutex
		sent = map[string][]byte{}
		wg   sync.WaitGroup
		errs = make(chan error, workers*each)
	)
	for w := range workers {
		wg.Go(func() {
			for i := range each {
				body := fmt.Appendf(nil, `{"worker":%d,"n":%d}`, w, i)
				m := NewMessage(body, "application/json")
				mu.Lock()
				sent[m.Event.ID] = body
				mu.Unlock()
				ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
				_, err := d.Deliver(ctx, m)
				cancel()
				if err != nil {
					errs <- fmt.Errorf("Deliver(%s): %w", m.Event.ID, err)
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	got := byID(t, sink.Received(t), sent)
	if len(got) != len(sent) {
		t.Errorf("sink received %d distinct events, want %d", len(got), len(sent))
	}
	for id, want := range sent {
		for _, r := range got[id] {
			if !bytes.Equal(r.Body, want) {
				t.Errorf("event %s: body %q, want %q", id, r.Body, want)
			}
		}
	}
}

// checkNotFinal: an attempt cut short by the caller must stay retriable,
// so that shutdown re-queues it rather than failing it.
func checkNotFinal(t *testing.T, err error) {
	t.Helper()
	if err == nil {
		t.Fatal("Deliver: got nil error, want an error")
	}
	if destination.IsPermanent(err) || destination.IsGone(err) {
		t.Errorf("Deliver: got final error %v, want a retriable one", err)
	}
}

func testCancelledContext(t *testing.T, open OpenFunc) {
	d, _ := openClosed(t, open)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	start := time.Now()
	_, err := d.Deliver(ctx, NewMessage([]byte("x"), "text/plain"))
	if el := time.Since(start); el > quick {
		t.Errorf("Deliver on a cancelled context took %s, want < %s", el, quick)
	}
	checkNotFinal(t, err)
	if !errors.Is(err, context.Canceled) {
		t.Errorf("Deliver on a cancelled context: got %v, want an error wrapping context.Canceled", err)
	}
}

func testExpiredDeadline(t *testing.T, open OpenFunc) {
	d, _ := openClosed(t, open)
	ctx, cancel := context.WithDeadline(context.Background(), time.Now().Add(-time.Second))
	defer cancel()
	start := time.Now()
	_, err := d.Deliver(ctx, NewMessage([]byte("x"), "text/plain"))
	if el := time.Since(start); el > quick {
		t.Errorf("Deliver past its deadline took %s, want < %s", el, quick)
	}
	checkNotFinal(t, err)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Deliver past its deadline: got %v, want an error wrapping context.DeadlineExceeded", err)
	}
}

func testCloseTwice(t *testing.T, open OpenFunc) {
	d, _ := open(t)
	Deliver(t, d, NewMessage([]byte("x"), "text/plain"))
	if err := d.Close(); err != nil {
		t.Errorf("first Close: %v", err)
	}
	if err := d.Close(); err != nil {
		t.Errorf("second Close: got %v, want nil", err)
	}
}

func testCloseUnused(t *testing.T, open OpenFunc) {
	d, _ := open(t)
	if err := d.Close(); err != nil {
		t.Errorf("Close of an unused destination: %v", err)
	}
}

func testDeliverAfterClose(t *testing.T, open OpenFunc) {
	d, _ := open(t)
	if err := d.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	_, err := d.Deliver(ctx, NewMessage([]byte("x"), "text/plain"))
	checkNotFinal(t, err)
}

// SilentServer listens on 127.0.0.1, accepts connections and never
// answers (a hung broker or server); it returns its address and closes
// everything at cleanup.
func SilentServer(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var (
		mu    sync.Mutex
		conns []net.Conn
	)
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		l.Close()
		mu.Lock()
		defer mu.Unlock()
		for _, c := range conns {
			c.Close()
		}
	})
	return l.Addr().String()
}
