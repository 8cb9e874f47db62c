// Package egress is the SSRF guard for every connection hookd opens to
// addresses it does not control: destination URLs, token endpoints,
// brokers, and the JWKS and introspection URLs of verification methods.
//
// A Guard refuses loopback, private, link-local, CGNAT, multicast,
// unspecified, broadcast, reserved, documentation and benchmarking
// addresses — and IPv6 addresses that embed such an IPv4 address — unless
// the address is in egress.allow_private (see BlockedRanges). It does so
// twice:
//
//   - CheckURL, when a URL is defined (a destination, a token endpoint, a
//     source's jwks_url or introspection url): scheme (https, or http for
//     allow-listed hosts and allowed private addresses), no credentials,
//     and a host that is not a blocked IP literal in any form a URL or
//     resolver parser may read (2130706433, 0x7f000001, 0177.0.0.1, 127.1,
//     [::ffff:169.254.169.254], zone ids) nor a localhost name. Other names
//     are not resolved.
//   - DialContext, for every connection: the name is resolved, each answer
//     checked, and the socket's Control hook checks the address actually
//     connected to, so DNS rebinding cannot slip through. DialHTTP, the
//     dial of HTTP clients, does the same checks and then, when
//     egress.proxy is set (SetProxy), asks the proxy to CONNECT to the
//     checked address. Proxies from the environment are never used.
//
// The guard does not follow redirects because it is not a client: an
// http.Client using Transport must refuse them (Client does; so does the
// webhook destination). docs/egress.md describes the policy.
package egress

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Defaults for the dialer and Transport.
const (
	// DefaultDialTimeout bounds one Dial when its context has no deadline.
	DefaultDialTimeout = 30 * time.Second
	// DefaultKeepAlive is the TCP keep-alive period of guarded connections.
	DefaultKeepAlive = 30 * time.Second
	// minAddrTimeout is the least time one of several addresses is given
	// before the next is tried (as net.Dialer does).
	minAddrTimeout = 2 * time.Second
)

// Resolver looks names up; *net.Resolver implements it. network is "ip",
// "ip4" or "ip6".
type Resolver interface {
	LookupNetIP(ctx context.Context, network, host string) ([]netip.Addr, error)
}

// Guard checks destination URLs and dials only allowed addresses. It is
// safe for concurrent use once its exported fields are set; set them
// before first use.
type Guard struct {
	// Resolver resolves names at dial time. Nil means net.DefaultResolver.
	// Tests inject one here.
	Resolver Resolver
	// Dialer is the template for connections: Timeout (used when the
	// context has no deadline), KeepAlive, LocalAddr. Its Control or
	// ControlContext, if set, runs after the guard's own check of the
	// address, so it never sees a refused one. Nil means a dialer with
	// DefaultDialTimeout and DefaultKeepAlive.
	Dialer *net.Dialer

	allowPrivate []netip.Prefix
	allowHTTP    map[string]bool // exact hosts, lower case
	allowHTTPSub []string        // ".example.com" for "*.example.com"
	proxy        *url.URL        // egress.proxy; nil: none
	proxyRoots   *x509.CertPool  // roots for an https proxy; nil: the system's (tests set it)

	sharedMu sync.Mutex
	shared   *http.Transport
}

// NewGuard returns a guard that lets destinations reach the addresses in
// allowPrivate (CIDRs, egress.allow_private; default none) although they
// are in a blocked range, and lets the hosts in allowHTTPHosts use plain
// http (names or IP literals, "*.example.com" for every name under
// example.com; default none: https is required, except for addresses in
// allowPrivate).
func NewGuard(allowPrivate []string, allowHTTPHosts []string) (*Guard, error) {
	g := &Guard{allowHTTP: map[string]bool{}}
	for i, cidr := range allowPrivate {
		p, err := netip.ParsePrefix(strings.TrimSpace(cidr))
		if err != nil {
			return nil, fmt.Errorf("egress.allow_private[%d]: invalid CIDR %q", i, cidr)
		}
		p = p.Masked()
		if p.Addr().Is4In6() && p.Bits() >= 96 {
			// ::ffff:10.0.0.0/104 means 10.0.0.0/8.
			p = netip.PrefixFrom(p.Addr().Unmap(), p.Bits()-96)
		}
		g.allowPrivate = append(g.allowPrivate, p)
	}
	for i, h := range allowHTTPHosts {
		bad := func(why string) error {
			return fmt.Errorf("egress.allow_http_hosts[%d]: %q %s", i, h, why)
		}
		name := strings.TrimSpace(h)
		sub := strings.HasPrefix(name, "*.")
		if sub {
			name = name[2:]
		}
		ph, err := parseHost(name)
		switch {
		case err != nil:
			return nil, bad("is not a host name or IP address")
		case ph.addr.IsValid() && (sub || !ph.canonical):
			return nil, bad("is not a host name or IP address")
		case ph.addr.IsValid():
			g.allowHTTP[ph.addr.WithZone("").String()] = true
		case sub:
			g.allowHTTPSub = append(g.allowHTTPSub, "."+ph.name)
		default:
			g.allowHTTP[ph.name] = true
		}
	}
	return g, nil
}

// CheckURL checks a URL hookd will call (a destination, a token endpoint,
// a JWKS or introspection URL) before anything is dialed: it must be
// absolute https (or http for an allow-listed host or an IP literal in
// egress.allow_private), without credentials, with a host that is a DNS
// name or an allowed IP literal in its standard form. localhost and
// *.localhost are loopback. Names are not resolved: DialContext checks
// what they resolve to. Errors match ErrRefused and never contain the URL
// (its query may hold a token).
func (g *Guard) CheckURL(raw string) error {
	u, err := url.Parse(raw)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return refusef("URL is invalid: %v", err)
	}
	switch u.Scheme {
	case "https", "http":
	case "":
		return refusef("URL must be absolute (https://host/…)")
	default:
		return refusef("URL scheme %q is not allowed (want https)", u.Scheme)
	}
	switch {
	case u.Opaque != "" || u.Host == "":
		return refusef("URL has no host")
	case u.User != nil:
		return refusef("URL must not contain credentials")
	}
	if p := u.Port(); p != "" {
		if n, err := strconv.Atoi(p); err != nil || n < 1 || n > 65535 {
			return refusef("URL port %q is out of range", p)
		}
	}
	h, err := parseHost(u.Hostname())
	if err != nil {
		return err
	}
	privateOK := false // the host is allowed only because of allow_private
	switch {
	case h.addr.IsValid():
		if err := g.checkAddr(h.addr); err != nil {
			var be *BlockedError
			if !h.canonical && errors.As(err, &be) {
				be.Host = u.Hostname()
			}
			return err
		}
		if !h.canonical {
			return refusef("host %q is a non-standard form of %s: write the address as %s", u.Hostname(), h.addr, h.addr)
		}
		privateOK = g.isBlocked(h.addr)
	case isLocalhost(h.name):
		if !g.allowed(loopback[0]) && !g.allowed(loopback[1]) {
			return &BlockedError{Addr: loopback[0], Class: "loopback", Range: netip.MustParsePrefix("127.0.0.0/8"), Host: h.name}
		}
		privateOK = true
	}
	if u.Scheme == "http" && !privateOK && !g.httpAllowed(h) {
		return refusef("URL must use https (plain http is allowed only for hosts in egress.allow_http_hosts and addresses in egress.allow_private)")
	}
	return nil
}

// CheckAddr refuses a when it is in a blocked range and not in
// egress.allow_private. It is the check the dialer applies to every
// address it connects to.
func (g *Guard) CheckAddr(a netip.Addr) error { return g.checkAddr(a) }

// isBlocked reports whether a is in a blocked range, ignoring allow_private.
func (g *Guard) isBlocked(a netip.Addr) bool {
	bare := Guard{}
	return bare.checkAddr(a) != nil
}

// httpAllowed reports whether h is in the http allow-list.
func (g *Guard) httpAllowed(h host) bool {
	if h.addr.IsValid() {
		return g.allowHTTP[h.addr.WithZone("").String()]
	}
	if g.allowHTTP[h.name] {
		return true
	}
	for _, suffix := range g.allowHTTPSub {
		if strings.HasSuffix(h.name, suffix) {
			return true
		}
	}
	return false
}

// DialContext connects to addr ("host:port") on a tcp network, only to
// allowed addresses. An IP literal is checked as is; a localhost name
// stands for 127.0.0.1 and ::1 without a lookup; a name in a legacy
// numeric form is refused; any other name is resolved (Resolver) on every
// call — nothing is cached — and each answer checked. Refused answers are
// skipped; when none is left the refusal is returned. The socket's Control
// hook checks the address being connected to once more, so no connection
// to a refused address is ever made. DialContext never uses egress.proxy
// (see DialHTTP).
func (g *Guard) DialContext(ctx context.Context, network, addr string) (net.Conn, error) {
	addrs, port, err := g.resolve(ctx, network, addr)
	if err != nil {
		return nil, err
	}
	d := g.dialer()
	d.Timeout = 0 // dialSerial's context carries it
	return g.dialSerial(ctx, addrs, func(ctx context.Context, a netip.Addr) (net.Conn, error) {
		n := network
		if n == "tcp" {
			n = "tcp4"
			if a.Is6() {
				n = "tcp6"
			}
		}
		return d.DialContext(ctx, n, netip.AddrPortFrom(a, port).String())
	})
}

// DialHTTP is the dial of HTTP clients (Transport uses it). Without
// egress.proxy it is DialContext. With one, the target is resolved and
// checked exactly as DialContext does, and the proxy is asked to tunnel
// (CONNECT) to the checked address — never to the name, which the proxy
// could resolve to something else. The proxy's own address is not
// checked: the operator chose it.
func (g *Guard) DialHTTP(ctx context.Context, network, addr string) (net.Conn, error) {
	if g.proxy == nil {
		return g.DialContext(ctx, network, addr)
	}
	addrs, port, err := g.resolve(ctx, network, addr)
	if err != nil {
		return nil, err
	}
	return g.dialSerial(ctx, addrs, func(ctx context.Context, a netip.Addr) (net.Conn, error) {
		return g.tunnel(ctx, netip.AddrPortFrom(a, port))
	})
}

// resolve returns the addresses DialContext may connect to for addr, in
// order, and the port; or the refusal.
func (g *Guard) resolve(ctx context.Context, network, addr string) ([]netip.Addr, uint16, error) {
	switch network {
	case "tcp", "tcp4", "tcp6":
	default:
		return nil, 0, refusef("dial %s: network %q is not allowed", addr, network)
	}
	hs, port, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, 0, fmt.Errorf("dial %s: %w", addr, err)
	}
	pn, err := strconv.ParseUint(port, 10, 16)
	if err != nil || pn == 0 {
		return nil, 0, refusef("dial %s: port %q is not allowed", addr, port)
	}
	h, err := parseHost(hs)
	if err != nil {
		return nil, 0, fmt.Errorf("dial %s: %w", addr, err)
	}

	var addrs []netip.Addr
	switch {
	case h.addr.IsValid() && !h.canonical:
		// A resolver may read "2130706433" as 127.0.0.1 or look it up:
		// never hand it one.
		if err := g.checkAddr(h.addr); err != nil {
			var be *BlockedError
			if errors.As(err, &be) {
				be.Host = hs
			}
			return nil, 0, fmt.Errorf("dial %s: %w", addr, err)
		}
		return nil, 0, refusef("dial %s: host %q is a non-standard form of %s", addr, hs, h.addr)
	case h.addr.IsValid():
		addrs = []netip.Addr{h.addr}
	case isLocalhost(h.name):
		addrs = loopback
	default:
		r := g.Resolver
		if r == nil {
			r = net.DefaultResolver
		}
		lookup := map[string]string{"tcp": "ip", "tcp4": "ip4", "tcp6": "ip6"}[network]
		addrs, err = r.LookupNetIP(ctx, lookup, h.name)
		if err != nil {
			return nil, 0, fmt.Errorf("dial %s: %w", addr, err)
		}
	}

	var (
		allowed  []netip.Addr
		firstErr error
	)
	for _, a := range addrs {
		if a.Is4In6() {
			a = a.Unmap() // net.Resolver may answer IPv4 in this form
		}
		switch {
		case network == "tcp4" && !a.Is4(), network == "tcp6" && !a.Is6():
			continue
		}
		if err := g.checkAddr(a); err != nil {
			if firstErr == nil {
				firstErr = err
			}
			continue
		}
		allowed = append(allowed, a)
	}
	if len(allowed) == 0 {
		if firstErr == nil {
			firstErr = &net.AddrError{Err: "no suitable address found", Addr: hs}
		}
		return nil, 0, fmt.Errorf("dial %s: %w", addr, firstErr)
	}
	return allowed, uint16(pn), nil
}

// dialSerial tries addrs in order with connect, giving each a share of the
// time left (at least minAddrTimeout), and returns the first connection or
// the first error.
func (g *Guard) dialSerial(ctx context.Context, addrs []netip.Addr, connect func(context.Context, netip.Addr) (net.Conn, error)) (net.Conn, error) {
	if _, ok := ctx.Deadline(); !ok {
		if t := g.dialTimeout(); t > 0 {
			var cancel context.CancelFunc
			ctx, cancel = context.WithTimeout(ctx, t)
			defer cancel()
		}
	}
	var firstErr error
	for i, a := range addrs {
		if err := ctx.Err(); err != nil {
			if firstErr == nil {
				firstErr = err
			}
			break
		}
		actx := ctx
		if deadline, ok := ctx.Deadline(); ok && i < len(addrs)-1 {
			share := time.Until(deadline) / time.Duration(len(addrs)-i)
			var cancel context.CancelFunc
			actx, cancel = context.WithTimeout(ctx, max(share, minAddrTimeout))
			defer cancel()
		}
		c, err := connect(actx, a)
		if err == nil {
			return c, nil
		}
		if firstErr == nil {
			firstErr = err
		}
	}
	return nil, firstErr
}

// dialTimeout is the template dialer's Timeout, used when the context has
// no deadline.
func (g *Guard) dialTimeout() time.Duration {
	if g.Dialer != nil {
		return g.Dialer.Timeout
	}
	return DefaultDialTimeout
}

// dialer returns a copy of the template dialer whose ControlContext checks
// the address being connected to, then runs the template's own hook.
func (g *Guard) dialer() *net.Dialer {
	d := net.Dialer{Timeout: DefaultDialTimeout, KeepAlive: DefaultKeepAlive}
	if g.Dialer != nil {
		d = *g.Dialer
	}
	d.ControlContext = g.control(d.ControlContext, d.Control)
	d.Control = nil
	return &d
}

// control is the socket hook: it runs after the socket is created and
// before connect(2), on the numeric address connected to.
func (g *Guard) control(
	nextCtx func(ctx context.Context, network, address string, c syscall.RawConn) error,
	next func(network, address string, c syscall.RawConn) error,
) func(ctx context.Context, network, address string, c syscall.RawConn) error {
	return func(ctx context.Context, network, address string, c syscall.RawConn) error {
		ap, err := netip.ParseAddrPort(address)
		if err != nil {
			return refusef("connect %s: not a numeric address", address)
		}
		if err := g.checkAddr(ap.Addr()); err != nil {
			return err
		}
		switch {
		case nextCtx != nil:
			return nextCtx(ctx, network, address, c)
		case next != nil:
			return next(network, address, c)
		}
		return nil
	}
}

// Transport returns a new http.Transport that dials through the guard
// (DialHTTP: through egress.proxy when one is set) and ignores proxy
// settings from the environment (such a proxy would connect to the
// destination on hookd's behalf, out of the guard's sight). The client
// using it must not follow redirects: a redirect is a new URL that
// CheckURL never saw (see Client and NoRedirect).
func (g *Guard) Transport() *http.Transport {
	return &http.Transport{
		Proxy:                  nil,
		DialContext:            g.DialHTTP,
		TLSClientConfig:        &tls.Config{MinVersion: tls.VersionTLS12},
		TLSHandshakeTimeout:    10 * time.Second,
		ResponseHeaderTimeout:  60 * time.Second,
		ExpectContinueTimeout:  time.Second,
		IdleConnTimeout:        90 * time.Second,
		MaxIdleConns:           100,
		MaxIdleConnsPerHost:    16,
		MaxResponseHeaderBytes: 64 << 10,
		ForceAttemptHTTP2:      true,
	}
}

// SharedTransport returns one Transport per guard, made on first use, for
// clients that call many hosts now and then (JWKS, introspection): they
// share its idle connections. CloseIdleConnections closes them.
func (g *Guard) SharedTransport() *http.Transport {
	g.sharedMu.Lock()
	defer g.sharedMu.Unlock()
	if g.shared == nil {
		g.shared = g.Transport()
	}
	return g.shared
}

// CloseIdleConnections closes the idle connections of SharedTransport.
func (g *Guard) CloseIdleConnections() {
	g.sharedMu.Lock()
	defer g.sharedMu.Unlock()
	if g.shared != nil {
		g.shared.CloseIdleConnections()
	}
}

// Client returns an http.Client on Transport that never follows redirects
// (a 3xx answer is returned as is) and gives up after timeout (0: never).
func (g *Guard) Client(timeout time.Duration) *http.Client {
	return &http.Client{Transport: g.Transport(), CheckRedirect: NoRedirect, Timeout: timeout}
}

// NoRedirect is an http.Client CheckRedirect that returns the redirect
// answer instead of following it.
func NoRedirect(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
