package webhook

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"hookd"
	"hookd/internal/destination"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata")

// rawSink accepts one connection on 127.0.0.1, reads one HTTP/1.1 request
// as bytes (head and Content-Length body), answers 204 and returns what it
// read, so the golden file shows the request exactly as it went on the wire.
func rawSink(t *testing.T) (addr string, got <-chan []byte) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	ch := make(chan []byte, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		_ = c.SetDeadline(time.Now().Add(30 * time.Second))
		br := bufio.NewReader(c)
		var raw bytes.Buffer
		length := 0
		for {
			line, err := br.ReadString('\n')
			raw.WriteString(line)
			if err != nil {
				ch <- raw.Bytes()
				return
			}
			if name, value, ok := strings.Cut(line, ":"); ok && strings.EqualFold(name, "Content-Length") {
				length, _ = strconv.Atoi(strings.TrimSpace(value))
			}
			if line == "\r\n" {
				break
			}
		}
		body := make([]byte, length)
		if _, err := io.ReadFull(br, body); err == nil {
			raw.Write(body)
		}
		_, _ = io.WriteString(c, "HTTP/1.1 204 No Content\r\nConnection: close\r\n\r\n")
		ch <- raw.Bytes()
	}()
	return ln.Addr().String(), ch
}

func TestRequestGolden(t *testing.T) {
	t.Parallel()
	minimal := message(1)
	minimal.Event.Source, minimal.Event.Type, minimal.Event.ContentType, minimal.Event.Body = "", "", "", nil
	injected := message(1)
	injected.Event.Type = "evil\r\nX-Injected: 1"
	tests := []struct {
		name string
		opts map[string]any
		msg  *destination.Message
	}{
		{"Full", map[string]any{"headers": map[string]string{"X-Api-Key": "k-123", "x-tenant": "acme"}}, message(3)},
		{"MinimalEventPUT", map[string]any{"method": "PUT"}, minimal},
		{"UserAgentOverride", map[string]any{"headers": map[string]string{"User-Agent": "acme-relay/1"}}, message(1)},
		{"HeaderInjection", map[string]any{}, injected},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			addr, got := rawSink(t)
			tt.opts["url"] = "http://" + addr + "/hooks/claims?tenant=a%20b"
			d := openOpts(t, nil, tt.opts)
			res, err := d.Deliver(deliverCtx(t), tt.msg)
			if err != nil || res.StatusCode != 204 {
				t.Fatalf("Deliver: got %d, %v; want 204, nil", res.StatusCode, err)
			}
			wire := <-got
			// Volatile values: the sink's port and the build version.
			wire = bytes.ReplaceAll(wire, []byte(addr), []byte("SINK"))
			wire = bytes.ReplaceAll(wire, []byte("hookd/"+hookd.Version+"\r\n"), []byte("hookd/VERSION\r\n"))
			golden := filepath.Join("testdata", "request-"+tt.name+".golden")
			if *update {
				if err := os.WriteFile(golden, wire, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (run go test -update to create it)", err)
			}
			if !bytes.Equal(wire, want) {
				t.Errorf("request on the wire differs from %s:\ngot:\n%s\nwant:\n%s", golden, wire, want)
			}
		})
	}
}

func TestHeaders(t *testing.T) {
	t.Parallel()
	sink := newSink(t, nil)
	clk := newClock(t0)
	d := openOpts(t, clk.env(), map[string]any{"url": sink.URL, "headers": map[string]string{"X-Api-Key": "k-123"}})
	for attempt := 1; attempt <= 3; attempt++ {
		clk.set(t0.Add(time.Duration(attempt) * time.Minute))
		if _, err := d.Deliver(deliverCtx(t), message(attempt)); err != nil {
			t.Fatalf("attempt %d: %v", attempt, err)
		}
	}
	reqs := sink.requests()
	if len(reqs) != 3 {
		t.Fatalf("sink got %d requests, want 3", len(reqs))
	}
	m := message(1)
	for i, r := range reqs {
		attempt := i + 1
		want := map[string]string{
			"Webhook-Id":        m.Event.ID,
			"Webhook-Timestamp": strconv.FormatInt(t0.Add(time.Duration(attempt)*time.Minute).Unix(), 10),
			"Hookd-Event-Type":  m.Event.Type,
			"Hookd-Source":      m.Event.Source,
			"Hookd-Attempt":     strconv.Itoa(attempt),
			"Content-Type":      m.Event.ContentType,
			"User-Agent":        "hookd/" + hookd.Version,
			"X-Api-Key":         "k-123",
		}
		for k, v := range want {
			if got := r.Header.Values(k); len(got) != 1 || got[0] != v {
				t.Errorf("attempt %d: %s: got %q, want [%q]", attempt, k, got, v)
			}
		}
		if r.Method != "POST" || !bytes.Equal(r.Body, m.Event.Body) {
			t.Errorf("attempt %d: got %s %q, want POST %q", attempt, r.Method, r.Body, m.Event.Body)
		}
	}
}

func TestDefaultContentType(t *testing.T) {
	t.Parallel()
	sink := newSink(t, nil)
	d := openOpts(t, nil, map[string]any{"url": sink.URL})
	m := message(1)
	m.Event.ContentType = ""
	if _, err := d.Deliver(deliverCtx(t), m); err != nil {
		t.Fatal(err)
	}
	if got := sink.requests()[0].Header.Get("Content-Type"); got != "application/octet-stream" {
		t.Errorf("Content-Type: got %q, want application/octet-stream", got)
	}
}

func TestStatusOutcomes(t *testing.T) {
	t.Parallel()
	tests := []struct {
		status int
		want   string
	}{
		{200, "ok"}, {201, "ok"}, {202, "ok"}, {204, "ok"},
		{400, "permanent"}, {401, "permanent"}, {403, "permanent"}, {404, "permanent"}, {422, "permanent"},
		{410, "gone"},
		{408, "retry"}, {425, "retry"}, {429, "retry"}, {500, "retry"}, {502, "retry"}, {503, "retry"}, {504, "retry"},
		{304, "retry"},
	}
	for _, tt := range tests {
		t.Run(strconv.Itoa(tt.status), func(t *testing.T) {
			t.Parallel()
			sink := newSink(t, func(w http.ResponseWriter, _ *http.Request) {
				w.WriteHeader(tt.status)
				if tt.status != 204 && tt.status != 304 {
					fmt.Fprintf(w, "answer %d", tt.status)
				}
			})
			d := openOpts(t, nil, map[string]any{"url": sink.URL})
			res, err := d.Deliver(deliverCtx(t), message(1))
			if got := outcome(err); got != tt.want {
				t.Errorf("outcome: got %s (%v), want %s", got, err, tt.want)
			}
			if res.StatusCode != tt.status {
				t.Errorf("StatusCode: got %d, want %d", res.StatusCode, tt.status)
			}
			wantExcerpt := fmt.Sprintf("answer %d", tt.status)
			if tt.status == 204 || tt.status == 304 {
				wantExcerpt = ""
			}
			if string(res.ResponseExcerpt) != wantExcerpt {
				t.Errorf("ResponseExcerpt: got %q, want %q", res.ResponseExcerpt, wantExcerpt)
			}
			if err != nil && !strings.Contains(err.Error(), strconv.Itoa(tt.status)) {
				t.Errorf("error %q does not name the status", err)
			}
		})
	}
}

func TestRedirectNotFollowed(t *testing.T) {
	t.Parallel()
	for _, status := range []int{301, 302, 303, 307, 308} {
		t.Run(strconv.Itoa(status), func(t *testing.T) {
			t.Parallel()
			var hits atomic.Int32
			target := newSink(t, func(http.ResponseWriter, *http.Request) { hits.Add(1) })
			sink := newSink(t, func(w http.ResponseWriter, r *http.Request) {
				http.Redirect(w, r, target.URL+"/elsewhere", status)
			})
			d := openOpts(t, nil, map[string]any{"url": sink.URL})
			res, err := d.Deliver(deliverCtx(t), message(1))
			if got := outcome(err); got != "retry" {
				t.Errorf("outcome: got %s (%v), want retry", got, err)
			}
			if res.StatusCode != status {
				t.Errorf("StatusCode: got %d, want %d", res.StatusCode, status)
			}
			if n := hits.Load(); n != 0 || len(target.requests()) != 0 {
				t.Errorf("redirect target was hit %d times, want 0", n)
			}
		})
	}
}

func TestRetryAfter(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name       string
		status     int
		retryAfter string
		want       time.Duration
	}{
		{"Seconds429", 429, "7", 7 * time.Second},
		{"Date503", 503, t0.Add(2 * time.Minute).Format(http.TimeFormat), 2 * time.Minute},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			sink := newSink(t, func(w http.ResponseWriter, _ *http.Request) {
				w.Header().Set("Retry-After", tt.retryAfter)
				w.WriteHeader(tt.status)
			})
			d := openOpts(t, newClock(t0).env(), map[string]any{"url": sink.URL})
			_, err := d.Deliver(deliverCtx(t), message(1))
			got, ok := destination.RetryAfterOf(err)
			if !ok || got != tt.want {
				t.Errorf("RetryAfterOf(%v): got %s, %v; want %s, true", err, got, ok, tt.want)
			}
			if destination.IsPermanent(err) || destination.IsGone(err) {
				t.Errorf("got a final error %v, want retriable", err)
			}
		})
	}
}

// hangingSink accepts requests and never answers until the test ends.
func hangingSink(t *testing.T) *testSink {
	release := make(chan struct{})
	sink := newSink(t, func(_ http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-release:
		}
	})
	t.Cleanup(func() { close(release) }) // runs before sink.Close
	return sink
}

func TestTimeout(t *testing.T) {
	t.Parallel()
	sink := hangingSink(t)
	d := openOpts(t, nil, map[string]any{"url": sink.URL, "timeout": "200ms"})
	start := time.Now()
	_, err := d.Deliver(deliverCtx(t), message(1))
	el := time.Since(start)
	if el > 5*time.Second {
		t.Errorf("Deliver took %s with timeout 200ms, want < 5s", el)
	}
	if el < 200*time.Millisecond {
		t.Errorf("Deliver returned after %s, before the 200ms timeout", el)
	}
	if got := outcome(err); got != "retry" {
		t.Fatalf("outcome: got %s (%v), want retry", got, err)
	}
	if !errors.Is(err, context.DeadlineExceeded) || !strings.Contains(err.Error(), "timeout 200ms") {
		t.Errorf("error %q: want one that says the 200ms timeout passed and wraps context.DeadlineExceeded", err)
	}
}

func TestCancelInFlight(t *testing.T) {
	t.Parallel()
	sink := hangingSink(t)
	d := openOpts(t, nil, map[string]any{"url": sink.URL})
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(100*time.Millisecond, cancel)
	start := time.Now()
	_, err := d.Deliver(ctx, message(1))
	if el := time.Since(start); el > 5*time.Second {
		t.Errorf("Deliver took %s after its context was cancelled, want < 5s", el)
	}
	if !errors.Is(err, context.Canceled) || outcome(err) != "retry" {
		t.Errorf("got %v, want a retriable error wrapping context.Canceled", err)
	}
}

func TestLargeAnswer(t *testing.T) {
	t.Parallel()
	chunk := bytes.Repeat([]byte("0123456789abcdef"), 2048) // 32 KiB
	tests := []struct {
		name   string
		status int
		answer http.HandlerFunc
	}{
		{"TenMegabytes", 200, func(w http.ResponseWriter, _ *http.Request) {
			w.Header().Set("Content-Length", strconv.Itoa(10<<20))
			for n := 0; n < 10<<20; n += len(chunk) {
				if _, err := w.Write(chunk); err != nil {
					return
				}
			}
		}},
		{"EndlessChunked", 500, func(w http.ResponseWriter, r *http.Request) {
			w.WriteHeader(500)
			for r.Context().Err() == nil {
				if _, err := w.Write(chunk); err != nil {
					return
				}
				w.(http.Flusher).Flush()
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			sink := newSink(t, tt.answer)
			d := openOpts(t, nil, map[string]any{"url": sink.URL})
			start := time.Now()
			res, err := d.Deliver(deliverCtx(t), message(1))
			if el := time.Since(start); el > 5*time.Second {
				t.Errorf("Deliver took %s, want < 5s", el)
			}
			if res.StatusCode != tt.status || (tt.status == 200) != (err == nil) {
				t.Errorf("got %d, %v; want %d", res.StatusCode, err, tt.status)
			}
			if len(res.ResponseExcerpt) != destination.MaxExcerpt || !bytes.Equal(res.ResponseExcerpt, chunk[:destination.MaxExcerpt]) {
				t.Errorf("ResponseExcerpt: got %d bytes, want the first %d of the answer", len(res.ResponseExcerpt), destination.MaxExcerpt)
			}
		})
	}
}

func TestMaxResponse(t *testing.T) {
	t.Parallel()
	sink := newSink(t, func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, "0123456789") })
	d := openOpts(t, nil, map[string]any{"url": sink.URL, "max_response": 4})
	res, err := d.Deliver(deliverCtx(t), message(1))
	if err != nil || string(res.ResponseExcerpt) != "0123" {
		t.Errorf("got %q, %v; want \"0123\", nil", res.ResponseExcerpt, err)
	}
}

func TestConnectionRefused(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	d := openOpts(t, nil, map[string]any{"url": "http://" + addr + "/hook?token=s3cr3t"})
	start := time.Now()
	res, err := d.Deliver(deliverCtx(t), message(1))
	if el := time.Since(start); el > 5*time.Second {
		t.Errorf("Deliver took %s, want < 5s", el)
	}
	if got := outcome(err); got != "retry" {
		t.Fatalf("outcome: got %s (%v), want retry", got, err)
	}
	if res.StatusCode != 0 {
		t.Errorf("StatusCode: got %d, want 0", res.StatusCode)
	}
	if !strings.Contains(err.Error(), "connection refused") || strings.Contains(err.Error(), "s3cr3t") {
		t.Errorf("error %q: want one saying the connection was refused, without the URL's query", err)
	}
}

func TestTLSVerified(t *testing.T) {
	t.Parallel()
	var hits atomic.Int32
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { hits.Add(1) }))
	srv.Config.ErrorLog = log.New(io.Discard, "", 0) // the failed handshake is expected
	srv.StartTLS()
	t.Cleanup(srv.Close)
	d := openOpts(t, nil, map[string]any{"url": srv.URL})
	_, err := d.Deliver(deliverCtx(t), message(1))
	if got := outcome(err); got != "retry" {
		t.Fatalf("outcome: got %s (%v), want retry", got, err)
	}
	if !strings.Contains(err.Error(), "certificate") {
		t.Errorf("error %q does not mention the certificate", err)
	}
	if hits.Load() != 0 {
		t.Error("the request reached a server whose certificate is not trusted")
	}
}

func TestKeepAlive(t *testing.T) {
	t.Parallel()
	var closed atomic.Int32
	sink := newSinkWith(t, func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, "ok, thanks") },
		func(srv *http.Server) {
			srv.ConnState = func(_ net.Conn, s http.ConnState) {
				if s == http.StateClosed {
					closed.Add(1)
				}
			}
		})
	d := openOpts(t, nil, map[string]any{"url": sink.URL})
	for i := 1; i <= 10; i++ {
		if _, err := d.Deliver(deliverCtx(t), message(i)); err != nil {
			t.Fatal(err)
		}
	}
	conns := map[string]bool{}
	for _, r := range sink.requests() {
		conns[r.RemoteAddr] = true
	}
	if len(conns) != 1 {
		t.Errorf("10 sequential deliveries used %d connections, want 1", len(conns))
	}
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for closed.Load() == 0 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if closed.Load() == 0 {
		t.Error("Close left the idle connection open")
	}
	if err := d.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
}
