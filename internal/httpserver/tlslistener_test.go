package httpserver

import (
	"bufio"
	"crypto/tls"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"
)

// Over NewTLSListener a handler sees the connection's TLS state, and a
// client that connects and never completes its handshake is closed once
// the handshake bound passes, though the server has no timeouts of its
// own.
func TestTLSListener(t *testing.T) {
	t.Parallel()
	// httptest's certificate, for 127.0.0.1.
	ts := httptest.NewTLSServer(nil)
	certs := ts.TLS.Certificates
	ts.Close()
	cfg := &tls.Config{Certificates: certs, NextProtos: []string{"http/1.1"}}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	errs := &Errors{Log: slog.New(slog.DiscardHandler)}
	srv := &http.Server{Handler: Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.TLS == nil || !r.TLS.HandshakeComplete {
			http.Error(w, "no TLS state", 500)
			return
		}
		io.WriteString(w, tls.VersionName(r.TLS.Version))
	}), errs), ConnContext: connContext}
	go srv.Serve(NewTLSListener(ln, cfg, 200*time.Millisecond))
	t.Cleanup(func() { srv.Close() })

	client := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}, Timeout: 10 * time.Second}
	defer client.CloseIdleConnections()
	resp, err := client.Get("https://" + ln.Addr().String() + "/")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || string(b) != "TLS 1.3" {
		t.Errorf("got %d %q, want 200 \"TLS 1.3\"", resp.StatusCode, b)
	}

	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, err := c.Read(make([]byte, 1)); !errors.Is(err, io.EOF) {
		t.Errorf("silent client: got %v, want the connection closed (EOF) by the handshake bound", err)
	}
}

// A handshake that negotiates a protocol other than HTTP/1.1 (ACME's
// acme-tls/1, offered for the tls-alpn-01 validation) completes, and the
// connection is then closed unanswered: a request sent on it is not
// served.
func TestTLSListenerClosesOtherProtocols(t *testing.T) {
	t.Parallel()
	ts := httptest.NewTLSServer(nil)
	certs := ts.TLS.Certificates
	ts.Close()
	cfg := &tls.Config{Certificates: certs, NextProtos: []string{"http/1.1", "acme-tls/1"}}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	errs := &Errors{Log: slog.New(slog.DiscardHandler)}
	srv := &http.Server{Handler: Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "served")
	}), errs), ConnContext: connContext}
	go srv.Serve(NewTLSListener(ln, cfg, 5*time.Second))
	t.Cleanup(func() { srv.Close() })

	for _, tc := range []struct {
		name   string
		protos []string
		served bool
	}{
		{"NoALPN", nil, true},
		{"HTTP11", []string{"http/1.1"}, true},
		{"ACMETLS", []string{"acme-tls/1"}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := tls.Dial("tcp", ln.Addr().String(), &tls.Config{InsecureSkipVerify: true, NextProtos: tc.protos})
			if err != nil {
				t.Fatalf("handshake: %v", err)
			}
			defer c.Close()
			c.SetDeadline(time.Now().Add(10 * time.Second))
			if _, err := io.WriteString(c, "GET / HTTP/1.1\r\nHost: x\r\n\r\n"); err != nil {
				if tc.served {
					t.Fatal(err)
				}
				return
			}
			resp, err := http.ReadResponse(bufio.NewReader(c), nil)
			if tc.served {
				if err != nil {
					t.Fatalf("got %v, want the request served", err)
				}
				resp.Body.Close()
				return
			}
			if err == nil {
				resp.Body.Close()
				t.Fatalf("negotiated %q: got %d, want the connection closed unanswered", c.ConnectionState().NegotiatedProtocol, resp.StatusCode)
			}
		})
	}
}
