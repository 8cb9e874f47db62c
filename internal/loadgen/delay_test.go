package loadgen

import (
	"bytes"
	"context"
	"crypto/rand"
	"io"
	"net"
	"testing"
	"time"
)

// echoServer answers every connection by echoing what it reads.
func echoServer(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				io.Copy(c, c)
			}()
		}
	}()
	return ln.Addr().String()
}

// startProxy serves p on a loopback port until the test ends.
func startProxy(t *testing.T, p *DelayProxy) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- p.Serve(ctx, ln) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Serve: %v", err)
		}
	})
	return ln.Addr().String()
}

// A round trip through the proxy takes at least twice its delay, and a
// stream larger than its buffers arrives whole and in order.
func TestDelayProxy(t *testing.T) {
	t.Parallel()
	const delay = 15 * time.Millisecond
	p := &DelayProxy{Upstream: echoServer(t), Delay: delay}
	addr := startProxy(t, p)
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	buf := make([]byte, 1)
	for i := range 3 {
		start := time.Now()
		if _, err := c.Write([]byte{byte(i)}); err != nil {
			t.Fatal(err)
		}
		if _, err := io.ReadFull(c, buf); err != nil {
			t.Fatal(err)
		}
		// The first includes the relayed connection's set-up.
		if rtt := time.Since(start); rtt < 2*delay || buf[0] != byte(i) {
			t.Errorf("round trip %d: %s, got %d; want at least %s and the byte sent", i, rtt, buf[0], 2*delay)
		}
	}

	big := make([]byte, 3<<20)
	rand.Read(big)
	go func() {
		c.Write(big)
		c.(*net.TCPConn).CloseWrite()
	}()
	got, err := io.ReadAll(c)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, big) {
		t.Errorf("echoed %d bytes, not the %d sent in order", len(got), len(big))
	}
	if s := p.Stats(); s.Connections != 1 || s.Bytes != 2*(3+int64(len(big))) {
		t.Errorf("stats %+v, want 1 connection and %d bytes", s, 2*(3+len(big)))
	}
}

// With no delay the proxy is a plain relay.
func TestDelayProxyRelay(t *testing.T) {
	t.Parallel()
	addr := startProxy(t, &DelayProxy{Upstream: echoServer(t)})
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.Write([]byte("ping"))
	c.(*net.TCPConn).CloseWrite()
	if got, err := io.ReadAll(c); err != nil || string(got) != "ping" {
		t.Errorf("relayed %q (%v), want ping", got, err)
	}
}
