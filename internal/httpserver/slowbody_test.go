package httpserver_test

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"hookd/internal/config"
	"hookd/internal/httpserver"
)

// serve runs h as hookd does (New on NewListener) with cfg and returns
// its address.
func serve(t *testing.T, h http.Handler, cfg config.Server) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := httpserver.New(h, cfg, slog.New(slog.DiscardHandler))
	go srv.Serve(httpserver.NewListener(ln))
	t.Cleanup(func() { srv.Close() })
	return ln.Addr().String()
}

func slowServerConfig(bodyTimeout time.Duration) config.Server {
	return config.Server{
		ReadHeaderTimeout: config.Duration(5 * time.Second),
		ReadTimeout:       config.Duration(time.Minute),
		WriteTimeout:      config.Duration(time.Minute),
		BodyTimeout:       config.Duration(bodyTimeout),
		MaxHeaderBytes:    64 << 10,
	}
}

// A body that does not arrive within server.body_timeout is answered 408
// and its connection closed, long before server.read_timeout. A body that
// did arrive in time is not cut afterwards: the handler may take longer
// than body_timeout to answer.
func TestBodyTimeout(t *testing.T) {
	t.Parallel()
	errs, _ := newErrors(time.Second)
	const d = 200 * time.Millisecond
	mux := http.NewServeMux()
	mux.HandleFunc("/read", func(w http.ResponseWriter, r *http.Request) {
		if _, err := io.ReadAll(r.Body); err != nil {
			errs.Write(w, r, httpserver.BodyReadError(err))
			return
		}
		// Waits past the body deadline: the request must not be cut.
		select {
		case <-r.Context().Done():
			http.Error(w, "cut", http.StatusInternalServerError)
		case <-time.After(3 * d):
			io.WriteString(w, "ok")
		}
	})
	addr := serve(t, httpserver.Handler(mux, errs), slowServerConfig(d))

	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	// read_timeout is a minute: an answer within 30 s is body_timeout's.
	c.SetDeadline(time.Now().Add(30 * time.Second))
	fmt.Fprintf(c, "POST /read HTTP/1.1\r\nHost: h\r\nContent-Length: 10\r\n\r\n{")
	br := bufio.NewReader(c)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatalf("trickled body: %v, want a 408", err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusRequestTimeout || !resp.Close {
		t.Errorf("trickled body: got %d close=%v, want 408 and Connection: close", resp.StatusCode, resp.Close)
	}
	if e := decodeError(t, body); e.Error.Code != "timeout" {
		t.Errorf("trickled body: got %+v, want code timeout", e)
	}
	if _, err := http.ReadResponse(br, nil); !errors.Is(err, io.EOF) && !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Errorf("after the 408: got %v, want the connection closed", err)
	}

	resp, err = http.Post("http://"+addr+"/read", "application/json", strings.NewReader(`{"whole": 1}`))
	if err != nil {
		t.Fatal(err)
	}
	body, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || string(body) != "ok" {
		t.Errorf("body in time, slow answer: got %d %q, want 200 ok", resp.StatusCode, body)
	}
}

// Limit with preread reads the body before it takes a slot: a sender that
// trickles its body does not hold the only slot.
func TestLimitPrereadHoldsNoSlotDuringUpload(t *testing.T) {
	t.Parallel()
	errs, _ := newErrors(time.Second)
	gate := httpserver.NewGate(1)
	mux := http.NewServeMux()
	mux.Handle("/token", httpserver.Limit(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, err := io.ReadAll(http.MaxBytesReader(w, r.Body, 16))
		if err != nil {
			http.Error(w, "too large", http.StatusRequestEntityTooLarge)
			return
		}
		w.Write(b)
	}), errs, gate, 16))
	addr := serve(t, httpserver.Handler(mux, errs), slowServerConfig(time.Minute))

	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	fmt.Fprintf(c, "POST /token HTTP/1.1\r\nHost: h\r\nContent-Length: 10\r\n\r\na")
	// Whether or not the trickling request has reached the handler yet,
	// the others are answered.
	for i := range 5 {
		resp, err := http.Post("http://"+addr+"/token", "text/plain", strings.NewReader(fmt.Sprint("req", i)))
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || string(body) != fmt.Sprint("req", i) {
			t.Errorf("request %d while a body trickles: got %d %q, want 200 and the body echoed", i, resp.StatusCode, body)
		}
	}
	// A body over the preread limit reaches the handler, which refuses it.
	resp, err := http.Post("http://"+addr+"/token", "text/plain", strings.NewReader("0123456789abcdefXYZ"))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusRequestEntityTooLarge {
		t.Errorf("body over the limit: got %d, want 413", resp.StatusCode)
	}
}
