package egress

import (
	"bufio"
	"context"
	"crypto/tls"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strconv"
	"time"
)

// maxProxyAnswer caps the proxy's answer to CONNECT (status and headers).
const maxProxyAnswer = 64 << 10

// ParseProxy checks an egress.proxy URL: http:// or https://, a host, an
// optional port and credentials, and nothing else. The error never
// repeats the URL, which may hold a password.
func ParseProxy(raw string) (*url.URL, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return nil, errors.New("invalid URL (want http://host:port)")
	}
	switch {
	case u.Scheme != "http" && u.Scheme != "https":
		return nil, fmt.Errorf("scheme %q is not supported (want http://host:port or https://host:port)", u.Scheme)
	case u.Opaque != "" || u.Hostname() == "":
		return nil, errors.New("no host (want http://host:port)")
	case u.Path != "" && u.Path != "/", u.RawQuery != "", u.Fragment != "":
		return nil, errors.New("must not have a path, query or fragment (want http://host:port)")
	}
	if p := u.Port(); p != "" {
		if n, err := strconv.Atoi(p); err != nil || n < 1 || n > 65535 {
			return nil, fmt.Errorf("port %q is out of range", p)
		}
	}
	return u, nil
}

// SetProxy makes HTTP requests (DialHTTP, Transport, Client) go through
// the HTTP proxy at raw (egress.proxy), by CONNECT to the address the
// guard resolved and checked. "" means none. Broker connections
// (DialContext) never use it. Call it before first use.
func (g *Guard) SetProxy(raw string) error {
	if raw == "" {
		g.proxy = nil
		return nil
	}
	u, err := ParseProxy(raw)
	if err != nil {
		return fmt.Errorf("egress.proxy: %w", err)
	}
	g.proxy = u
	return nil
}

// proxyAddr is the proxy's host:port.
func (g *Guard) proxyAddr() string {
	port := g.proxy.Port()
	if port == "" {
		port = "80"
		if g.proxy.Scheme == "https" {
			port = "443"
		}
	}
	return net.JoinHostPort(g.proxy.Hostname(), port)
}

// tunnel connects to the proxy and asks it to CONNECT to target; the
// connection returned carries the tunnel. Errors name the proxy's host,
// never its credentials.
func (g *Guard) tunnel(ctx context.Context, target netip.AddrPort) (conn net.Conn, err error) {
	proxy := g.proxyAddr()
	fail := func(err error) (net.Conn, error) {
		if conn != nil {
			conn.Close()
		}
		return nil, fmt.Errorf("dial %s through egress.proxy %s: %w", target, proxy, err)
	}
	// The template dialer, without the guard's check: the proxy's address
	// is the operator's choice, and is often private.
	d := net.Dialer{KeepAlive: DefaultKeepAlive}
	if g.Dialer != nil {
		d = *g.Dialer
	}
	d.Timeout = 0 // the context carries it
	if conn, err = d.DialContext(ctx, "tcp", proxy); err != nil {
		return fail(err)
	}
	// The exchange below is bounded by ctx: its deadline, and its end.
	if dl, ok := ctx.Deadline(); ok {
		conn.SetDeadline(dl)
	}
	stop := context.AfterFunc(ctx, func() { conn.SetDeadline(time.Unix(1, 0)) })
	defer stop()
	if g.proxy.Scheme == "https" {
		tc := tls.Client(conn, &tls.Config{ServerName: g.proxy.Hostname(), MinVersion: tls.VersionTLS12, RootCAs: g.proxyRoots})
		conn = tc
		if err := tc.HandshakeContext(ctx); err != nil {
			return fail(fmt.Errorf("tls: %w", err))
		}
	}
	req := &http.Request{
		Method: http.MethodConnect,
		URL:    &url.URL{Opaque: target.String()},
		Host:   target.String(),
		Header: http.Header{"User-Agent": {"hookd"}},
	}
	if u := g.proxy.User; u != nil {
		pw, _ := u.Password()
		req.Header.Set("Proxy-Authorization", "Basic "+base64.StdEncoding.EncodeToString([]byte(u.Username()+":"+pw)))
	}
	if err := req.Write(conn); err != nil {
		return fail(err)
	}
	br := bufio.NewReader(io.LimitReader(conn, maxProxyAnswer))
	resp, err := http.ReadResponse(br, req)
	if err != nil {
		return fail(fmt.Errorf("reading the answer to CONNECT: %w", err))
	}
	// The body is not read: after a 200 it is the tunnel, and any other
	// answer ends the connection.
	if resp.StatusCode != http.StatusOK {
		return fail(fmt.Errorf("proxy answered %s to CONNECT", resp.Status))
	}
	if br.Buffered() > 0 {
		// Nothing may come from the far end before hookd speaks.
		return fail(errors.New("proxy sent data after its answer to CONNECT"))
	}
	if !stop() {
		return fail(ctx.Err())
	}
	conn.SetDeadline(time.Time{})
	return conn, nil
}
