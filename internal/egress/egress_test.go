package egress

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// Tests only ever connect to 127.0.0.1 (and listen on 127.0.0.2). Guards
// used for dialing get a Dialer whose Control aborts every other address
// with errAborted before connect(2), so no packet leaves the machine.

var errAborted = errors.New("test: connect aborted before any packet was sent")

// connectRecorder is a Control hook: it records each address the guard let
// through to connect(2) and aborts those not in allow.
type connectRecorder struct {
	allow map[string]bool // "127.0.0.1"
	mu    sync.Mutex
	seen  []string
}

func (r *connectRecorder) control(_, address string, _ syscall.RawConn) error {
	r.mu.Lock()
	r.seen = append(r.seen, address)
	r.mu.Unlock()
	host, _, err := net.SplitHostPort(address)
	if err != nil || !r.allow[host] {
		return errAborted
	}
	return nil
}

func (r *connectRecorder) addresses() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.seen...)
}

// newGuard returns a guard whose resolver fails the test and whose dialer
// records and aborts every connect except to the allowed hosts.
func newGuard(t *testing.T, allowPrivate, allowHTTP []string, connectTo ...string) (*Guard, *connectRecorder) {
	t.Helper()
	g, err := NewGuard(allowPrivate, allowHTTP)
	if err != nil {
		t.Fatalf("NewGuard: %v", err)
	}
	rec := &connectRecorder{allow: map[string]bool{}}
	for _, h := range connectTo {
		rec.allow[h] = true
	}
	g.Dialer = &net.Dialer{Timeout: 5 * time.Second, Control: rec.control}
	g.Resolver = resolverFunc(func(_ context.Context, _, host string) ([]netip.Addr, error) {
		t.Errorf("unexpected lookup of %q", host)
		return nil, errors.New("test: no lookups")
	})
	return g, rec
}

type resolverFunc func(ctx context.Context, network, host string) ([]netip.Addr, error)

func (f resolverFunc) LookupNetIP(ctx context.Context, network, host string) ([]netip.Addr, error) {
	return f(ctx, network, host)
}

// listen returns a listener on ip:0 that is closed at the end of the test.
func listen(t *testing.T, ip string) net.Listener {
	t.Helper()
	ln, err := net.Listen("tcp", net.JoinHostPort(ip, "0"))
	if err != nil {
		t.Fatalf("listen on %s: %v", ip, err)
	}
	t.Cleanup(func() { ln.Close() })
	return ln
}

// assertNoAccept fails if ln has a connection waiting. Every dial in the
// tests has returned by then, so a connection made would be queued.
func assertNoAccept(t *testing.T, ln net.Listener) {
	t.Helper()
	_ = ln.(*net.TCPListener).SetDeadline(time.Now().Add(100 * time.Millisecond))
	c, err := ln.Accept()
	if err == nil {
		c.Close()
		t.Fatalf("listener %s accepted a connection from %s, want none", ln.Addr(), c.RemoteAddr())
	}
	if !errors.Is(err, context.DeadlineExceeded) && !errors.Is(err, net.ErrClosed) {
		var ne net.Error
		if !errors.As(err, &ne) || !ne.Timeout() {
			t.Fatalf("accept: %v", err)
		}
	}
}

func portOf(ln net.Listener) string {
	_, port, _ := net.SplitHostPort(ln.Addr().String())
	return port
}

// issueTable is issue 5, acceptance 3, as URLs.
var issueTable = []struct {
	name, url, want string
}{
	{"Loopback", "https://127.0.0.1/", "address 127.0.0.1 is loopback and not in egress.allow_private"},
	{"Localhost", "https://localhost/", "host localhost is loopback and not in egress.allow_private"},
	{"LoopbackV6", "https://[::1]/", "address ::1 is loopback"},
	{"Unspecified", "https://0.0.0.0/", "address 0.0.0.0 is unspecified"},
	{"Metadata", "http://169.254.169.254/latest/meta-data/", "address 169.254.169.254 is link-local (cloud metadata)"},
	{"MappedMetadata", "https://[::ffff:169.254.169.254]/", "address ::ffff:169.254.169.254 embeds 169.254.169.254, which is link-local (cloud metadata)"},
	{"Private10", "https://10.0.0.5/", "address 10.0.0.5 is private"},
	{"Private172", "https://172.16.0.1/", "address 172.16.0.1 is private"},
	{"Private192", "https://192.168.1.1/", "address 192.168.1.1 is private"},
	{"CGNAT", "https://100.64.0.1/", "address 100.64.0.1 is shared address space (CGNAT)"},
	{"UniqueLocal", "https://[fd00::5]/", "address fd00::5 is unique local (private)"},
	{"Decimal", "https://2130706433/", "host 2130706433 (127.0.0.1) is loopback"},
	{"Hex", "https://0x7f000001/", "host 0x7f000001 (127.0.0.1) is loopback"},
	{"Short", "https://127.1/", "host 127.1 (127.0.0.1) is loopback"},
	{"File", "file:///etc/passwd", `scheme "file" is not allowed`},
	{"Gopher", "gopher://127.0.0.1:25/_HELO", `scheme "gopher" is not allowed`},
}

func TestCheckURLRefused(t *testing.T) {
	t.Parallel()
	tests := append(issueTable[:len(issueTable):len(issueTable)], []struct{ name, url, want string }{
		{"Octal", "https://0177.0.0.1/", "host 0177.0.0.1 (127.0.0.1) is loopback"},
		{"HexDotted", "https://0x7f.0x0.0x0.0x1/", "(127.0.0.1) is loopback"},
		{"TwoParts", "https://10.1/", "host 10.1 (10.0.0.1) is private"},
		{"ThreeParts", "https://192.168.257/", "host 192.168.257 (192.168.1.1) is private"},
		{"TrailingDot", "https://127.0.0.1./", "host 127.0.0.1. (127.0.0.1) is loopback"},
		{"DecimalMetadata", "https://2852039166/", "(169.254.169.254) is link-local (cloud metadata)"},
		{"Zero", "https://0/", "host 0 (0.0.0.0) is unspecified"},
		{"LocalhostDot", "https://localhost./", "host localhost is loopback"},
		{"LocalhostUpper", "https://LOCALHOST:8080/", "host localhost is loopback"},
		{"SubLocalhost", "https://api.localhost/", "host api.localhost is loopback"},
		{"MappedHex", "https://[::ffff:7f00:1]/", "embeds 127.0.0.1, which is loopback"},
		{"Compatible", "https://[::127.0.0.1]/", "IPv4-compatible (deprecated)"},
		{"CompatiblePublic", "https://[::93.184.216.34]/", "IPv4-compatible (deprecated)"},
		{"Translated", "https://[::ffff:0:7f00:1]/", "embeds 127.0.0.1"},
		{"NAT64", "https://[64:ff9b::a9fe:a9fe]/", "embeds 169.254.169.254"},
		{"SixToFour", "https://[2002:a00:1::1]/", "embeds 10.0.0.1, which is private"},
		{"TeredoClient", "https://[2001:0:5db8:d822::80ff:fffe]/", "embeds 127.0.0.1, which is loopback"},
		{"TeredoServer", "https://[2001:0:a00:1::5db8:d822]/", "embeds 10.0.0.1"},
		{"LinkLocalZone", "https://[fe80::1%25eth0]/", "address fe80::1 is link-local"},
		{"MetadataV6", "https://[fd00:ec2::254]/", "unique local (cloud metadata)"},
		{"Multicast", "https://224.0.0.1/", "multicast"},
		{"MulticastV6", "https://[ff02::1]/", "multicast"},
		{"Broadcast", "https://255.255.255.255/", "broadcast"},
		{"Reserved", "https://240.0.0.1/", "reserved"},
		{"ThisNetwork", "https://0.1.2.3/", `"this network"`},
		{"Benchmarking", "https://198.18.0.1/", "benchmarking"},
		{"Documentation", "https://192.0.2.1/", "documentation"},
		{"DocumentationV6", "https://[2001:db8::1]/", "documentation"},
		{"UnspecifiedV6", "https://[::]/", "address :: is unspecified"},
		{"FTP", "ftp://example.com/", `scheme "ftp" is not allowed`},
		{"JavaScript", "javascript:alert(1)", `scheme "javascript" is not allowed`},
		{"Relative", "/hook", "must be absolute"},
		{"Opaque", "https:example.com", "no host"},
		{"NoHost", "https:///hook", "no host"},
		{"Userinfo", "https://user:pass@example.com/", "must not contain credentials"},
		{"UserinfoTrick", "https://example.com@127.0.0.1/", "must not contain credentials"},
		{"PlainHTTP", "http://example.com/", "must use https"},
		{"PublicNonStandard", "https://1572395042/", "non-standard form of 93.184.216.34"},
		{"BadNumeric", "https://1.2.3.4.5/", "looks like an IPv4 address"},
		{"Overflow", "https://4294967296/", "looks like an IPv4 address"},
		{"BadOctal", "https://08.0.0.1/", "looks like an IPv4 address"},
		{"NumericTLD", "https://example.123/", "looks like an IPv4 address"},
		{"NonASCII", "https://１２７.０.０.１/", "not ASCII"},
		{"BadName", "https://exa$mple.com/", "not a valid DNS name"},
		{"EmptyLabel", "https://a..b/", "not a valid DNS name"},
		{"PortZero", "https://example.com:0/", "out of range"},
		{"PortHigh", "https://example.com:65536/", "out of range"},
	}...)
	g, _ := newGuard(t, nil, nil)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			err := g.CheckURL(tt.url)
			if err == nil {
				t.Fatalf("CheckURL(%q) = nil, want an error containing %q", tt.url, tt.want)
			}
			if !errors.Is(err, ErrRefused) {
				t.Errorf("CheckURL(%q) = %v, want an error matching ErrRefused", tt.url, err)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("CheckURL(%q) = %q, want it to contain %q", tt.url, err, tt.want)
			}
		})
	}
}

func TestCheckURLErrorHasNoURL(t *testing.T) {
	t.Parallel()
	g, _ := newGuard(t, nil, nil)
	for _, raw := range []string{"https://127.0.0.1/?token=s3cret", "https://exa mple.com/?token=s3cret", "http://example.com/?token=s3cret"} {
		err := g.CheckURL(raw)
		if err == nil || strings.Contains(err.Error(), "s3cret") {
			t.Errorf("CheckURL(%q) = %v, want a refusal without the query", raw, err)
		}
	}
}

func TestCheckURLAllowed(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name         string
		allowPrivate []string
		allowHTTP    []string
		url          string
	}{
		{"PublicName", nil, nil, "https://hooks.example.com/in?x=1"},
		{"PublicNamePort", nil, nil, "https://hooks.example.com:8443/in"},
		{"PublicV4", nil, nil, "https://93.184.216.34/"},
		{"PublicV6", nil, nil, "https://[2606:2800:220:1:248:1893:25c8:1946]/"},
		{"MappedPublic", nil, nil, "https://[::ffff:93.184.216.34]/"},
		{"NAT64Public", nil, nil, "https://[64:ff9b::5db8:d822]/"},
		{"SixToFourPublic", nil, nil, "https://[2002:5db8:d822::1]/"},
		{"UppercaseScheme", nil, nil, "HTTPS://hooks.example.com/"},
		{"TrailingDotName", nil, nil, "https://hooks.example.com./"},
		{"Underscore", nil, nil, "https://_hooks.example.com/"},
		{"NameStartingWithDigits", nil, nil, "https://1password.example/"},
		{"HexLookingLabel", nil, nil, "https://0x7f000001.example.com/"},
		{"HTTPAllowListed", nil, []string{"hooks.example.com"}, "http://hooks.example.com/"},
		{"HTTPAllowListedCase", nil, []string{"Hooks.Example.COM."}, "http://HOOKS.example.com/"},
		{"HTTPWildcard", nil, []string{"*.example.com"}, "http://a.b.example.com/"},
		{"HTTPAllowListedIP", nil, []string{"93.184.216.34"}, "http://93.184.216.34:8080/"},
		{"AllowPrivateLoopback", []string{"127.0.0.0/8"}, nil, "http://127.0.0.1:8080/"},
		{"AllowPrivateLocalhost", []string{"127.0.0.0/8"}, nil, "http://localhost:8080/"},
		{"AllowPrivateMapped", []string{"127.0.0.0/8"}, nil, "http://[::ffff:127.0.0.1]:8080/"},
		{"AllowPrivateMappedCIDR", []string{"::ffff:10.0.0.0/104"}, nil, "https://10.1.2.3/"},
		{"AllowPrivateUnmasked", []string{"10.1.2.3/8"}, nil, "https://10.200.0.1/"},
		{"AllowPrivateV6", []string{"fd00::/8"}, nil, "https://[fd00::5]/"},
		{"AllowMetadataExplicitly", []string{"169.254.169.254/32"}, nil, "http://169.254.169.254/"},
		{"AllowLinkLocalZone", []string{"fe80::/10"}, nil, "https://[fe80::1%25eth0]/"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			g, _ := newGuard(t, tt.allowPrivate, tt.allowHTTP)
			if err := g.CheckURL(tt.url); err != nil {
				t.Errorf("CheckURL(%q) = %v, want nil", tt.url, err)
			}
		})
	}
}

func TestCheckURLPlainHTTP(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name      string
		allowHTTP []string
		url       string
		ok        bool
	}{
		{"PublicNameRefused", nil, "http://hooks.example.com/", false},
		{"OtherHostRefused", []string{"hooks.example.com"}, "http://evil.example.com/", false},
		{"SubdomainOfExactRefused", []string{"example.com"}, "http://a.example.com/", false},
		{"WildcardNotApex", []string{"*.example.com"}, "http://example.com/", false},
		{"WildcardNotSuffixTrick", []string{"*.example.com"}, "http://evilexample.com/", false},
		{"PublicIPRefused", nil, "http://93.184.216.34/", false},
		{"Listed", []string{"hooks.example.com"}, "http://hooks.example.com/", true},
		{"ListedHTTPS", []string{"hooks.example.com"}, "https://hooks.example.com/", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			g, _ := newGuard(t, nil, tt.allowHTTP)
			err := g.CheckURL(tt.url)
			if got := err == nil; got != tt.ok {
				t.Fatalf("CheckURL(%q) = %v, want ok=%v", tt.url, err, tt.ok)
			}
			if err != nil && !strings.Contains(err.Error(), "must use https") {
				t.Errorf("CheckURL(%q) = %q, want it to say https is required", tt.url, err)
			}
		})
	}
	// An allow-listed http host is still subject to the address checks.
	g, _ := newGuard(t, nil, []string{"10.0.0.5"})
	if err := g.CheckURL("http://10.0.0.5/"); err == nil {
		t.Errorf("CheckURL(http://10.0.0.5/) with 10.0.0.5 allow-listed for http = nil, want refused as private")
	}
}

func TestNewGuardErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name         string
		allowPrivate []string
		allowHTTP    []string
		want         string
	}{
		{"BadCIDR", []string{"127.0.0.0/8", "10.0.0.0/33"}, nil, "egress.allow_private[1]"},
		{"NoMask", []string{"127.0.0.1"}, nil, "egress.allow_private[0]"},
		{"HostWithScheme", nil, []string{"http://a.example"}, "allow_http_hosts[0]"},
		{"HostWithPort", nil, []string{"a.example:80"}, "allow_http_hosts[0]"},
		{"Empty", nil, []string{""}, "allow_http_hosts[0]"},
		{"LegacyIP", nil, []string{"2130706433"}, "allow_http_hosts[0]"},
		{"WildcardIP", nil, []string{"*.127.0.0.1"}, "allow_http_hosts[0]"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := NewGuard(tt.allowPrivate, tt.allowHTTP)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("NewGuard = %v, want an error naming %q", err, tt.want)
			}
		})
	}
}

func TestParseLegacyIPv4(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in   string
		want string // "" for invalid
	}{
		{"2130706433", "127.0.0.1"},
		{"0x7f000001", "127.0.0.1"},
		{"0x7F000001", ""}, // callers lower-case first
		{"017700000001", "127.0.0.1"},
		{"0177.0.0.1", "127.0.0.1"},
		{"0x7f.1", "127.0.0.1"},
		{"127.1", "127.0.0.1"},
		{"127.0.1", "127.0.0.1"},
		{"127.0.0.1", "127.0.0.1"},
		{"0", "0.0.0.0"},
		{"0x", "0.0.0.0"},
		{"4294967295", "255.255.255.255"},
		{"4294967296", ""},
		{"256.0.0.1", ""},
		{"1.16777216", ""},
		{"1.16777215", "1.255.255.255"},
		{"1.2.65536", ""},
		{"1.2.3.256", ""},
		{"1.2.3.4.5", ""},
		{"08", ""},
		{"0x1g", ""},
		{"1..1", ""},
		{"", ""},
		{"99999999999999999999999", ""},
	}
	for _, tt := range tests {
		got, ok := parseLegacyIPv4(tt.in)
		switch {
		case tt.want == "" && ok:
			t.Errorf("parseLegacyIPv4(%q) = %v, want invalid", tt.in, got)
		case tt.want != "" && (!ok || got.String() != tt.want):
			t.Errorf("parseLegacyIPv4(%q) = %v, %v, want %s", tt.in, got, ok, tt.want)
		}
	}
}

func TestCheckAddrAllowPrivateIsExact(t *testing.T) {
	t.Parallel()
	g, _ := newGuard(t, []string{"127.0.0.2/32", "fd00::/16"}, nil)
	for addr, ok := range map[string]bool{
		"127.0.0.2":        true,
		"::ffff:127.0.0.2": true,
		"127.0.0.1":        false,
		"fd00::1":          true,
		"fd01::1":          false,
		"10.0.0.1":         false,
		"93.184.216.34":    true,
	} {
		err := g.CheckAddr(netip.MustParseAddr(addr))
		if got := err == nil; got != ok {
			t.Errorf("CheckAddr(%s) = %v, want ok=%v", addr, err, ok)
		}
	}
}

// TestDialRefused dials the issue's table (the hosts, on the port of a
// live 127.0.0.1 listener) and checks each is refused by the guard before
// any socket is connected and without any lookup.
func TestDialRefused(t *testing.T) {
	t.Parallel()
	ln := listen(t, "127.0.0.1")
	port := portOf(ln)
	g, rec := newGuard(t, nil, nil, "127.0.0.1")
	hosts := []string{
		"127.0.0.1", "localhost", "::1", "0.0.0.0", "169.254.169.254", "::ffff:169.254.169.254",
		"10.0.0.5", "172.16.0.1", "192.168.1.1", "100.64.0.1", "fd00::5", "2130706433", "0x7f000001",
		"127.1", "0177.0.0.1", "127.0.0.1.", "LOCALHOST", "a.localhost", "::ffff:127.0.0.1",
		"::ffff:7f00:1", "fe80::1%lo", "64:ff9b::7f00:1", "2002:7f00:1::1", "fd00:ec2::254",
	}
	for _, h := range hosts {
		for _, network := range []string{"tcp", "tcp4", "tcp6"} {
			addr := net.JoinHostPort(h, port)
			c, err := g.DialContext(context.Background(), network, addr)
			if err == nil {
				c.Close()
				t.Errorf("DialContext(%s, %s) connected, want refused", network, addr)
				continue
			}
			if !errors.Is(err, ErrRefused) && !strings.Contains(err.Error(), "no suitable address") {
				t.Errorf("DialContext(%s, %s) = %v, want the guard's refusal", network, addr, err)
			}
			if network == "tcp" && !errors.Is(err, ErrRefused) {
				t.Errorf("DialContext(%s, %s) = %v, want the guard's refusal", network, addr, err)
			}
		}
	}
	if got := rec.addresses(); len(got) != 0 {
		t.Errorf("connect was attempted to %v, want no connect attempt", got)
	}
	assertNoAccept(t, ln)
}

func TestDialOtherNetworksRefused(t *testing.T) {
	t.Parallel()
	g, _ := newGuard(t, []string{"0.0.0.0/0"}, nil)
	for _, network := range []string{"udp", "unix", "ip4:icmp"} {
		if _, err := g.DialContext(context.Background(), network, "127.0.0.1:53"); !errors.Is(err, ErrRefused) {
			t.Errorf("DialContext(%s) = %v, want refused", network, err)
		}
	}
}

// TestControlChecksConnectAddress calls the socket hook directly: it is
// the last check, on the numeric address connect(2) is about to use.
func TestControlChecksConnectAddress(t *testing.T) {
	t.Parallel()
	g, _ := newGuard(t, nil, nil)
	var reached []string
	next := func(_, address string, _ syscall.RawConn) error {
		reached = append(reached, address)
		return nil
	}
	g.Dialer = &net.Dialer{Control: next}
	d := g.dialer()
	if d.Control != nil || d.ControlContext == nil {
		t.Fatal("dialer() must set ControlContext and clear Control (which it would ignore)")
	}
	ctl := d.ControlContext
	for _, address := range []string{"127.0.0.1:80", "[::1]:80", "[::ffff:127.0.0.1]:80", "169.254.169.254:80", "[fe80::1%lo]:80", "localhost:80", "garbage"} {
		if err := ctl(context.Background(), "tcp", address, nil); !errors.Is(err, ErrRefused) {
			t.Errorf("control(%s) = %v, want refused", address, err)
		}
	}
	if err := ctl(context.Background(), "tcp4", "93.184.216.34:443", nil); err != nil {
		t.Errorf("control(93.184.216.34:443) = %v, want nil", err)
	}
	if len(reached) != 1 || reached[0] != "93.184.216.34:443" {
		t.Errorf("the next hook saw %v, want only [93.184.216.34:443]", reached)
	}
}

// TestAllowPrivateLetsLoopbackThrough makes real requests to a 127.0.0.1
// server allowed by egress.allow_private.
func TestAllowPrivateLetsLoopbackThrough(t *testing.T) {
	t.Parallel()
	var hits atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		io.WriteString(w, "ok")
	}))
	t.Cleanup(srv.Close)
	_, port, _ := net.SplitHostPort(srv.Listener.Addr().String())

	g, rec := newGuard(t, []string{"127.0.0.0/8"}, nil, "127.0.0.1")
	client := g.Client(10 * time.Second)
	t.Cleanup(client.CloseIdleConnections)
	for _, u := range []string{srv.URL + "/hook", "http://localhost:" + port + "/hook"} {
		if err := g.CheckURL(u); err != nil {
			t.Fatalf("CheckURL(%s) = %v, want nil", u, err)
		}
		resp, err := client.Get(u)
		if err != nil {
			t.Fatalf("GET %s: %v", u, err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK || string(body) != "ok" {
			t.Errorf("GET %s = %d %q, want 200 \"ok\"", u, resp.StatusCode, body)
		}
	}
	if hits.Load() != 2 {
		t.Errorf("server got %d requests, want 2", hits.Load())
	}
	for _, a := range rec.addresses() {
		if !strings.HasPrefix(a, "127.0.0.1:") {
			t.Errorf("connect attempted to %s, want only 127.0.0.1", a)
		}
	}

	// The same server is refused by a guard that does not allow it.
	strict, _ := newGuard(t, []string{"127.0.0.2/32"}, nil, "127.0.0.1")
	if err := strict.CheckURL(srv.URL); !errors.Is(err, ErrRefused) {
		t.Errorf("strict CheckURL(%s) = %v, want refused", srv.URL, err)
	}
	resp, err := strict.Client(10 * time.Second).Get(srv.URL)
	if err == nil {
		resp.Body.Close()
		t.Fatalf("strict GET %s succeeded, want refused", srv.URL)
	}
	var be *BlockedError
	if !errors.As(err, &be) || be.Addr != netip.MustParseAddr("127.0.0.1") {
		t.Errorf("strict GET %s = %v, want a BlockedError for 127.0.0.1", srv.URL, err)
	}
	if hits.Load() != 2 {
		t.Errorf("server got %d requests, want still 2", hits.Load())
	}
}

// alternating answers each lookup with the next of its answers in turn.
type alternating struct {
	answers []netip.Addr
	calls   atomic.Int64
}

func (r *alternating) LookupNetIP(_ context.Context, _, _ string) ([]netip.Addr, error) {
	n := r.calls.Add(1) - 1
	return []netip.Addr{r.answers[int(n)%len(r.answers)]}, nil
}

// TestDNSRebinding: a name that resolves alternately to a public address
// and to 127.0.0.1 never gets a connection to 127.0.0.1. The public
// address is not connected to either: the test's Control hook aborts it.
func TestDNSRebinding(t *testing.T) {
	t.Parallel()
	ln := listen(t, "127.0.0.1")
	port := portOf(ln)
	g, rec := newGuard(t, nil, []string{"rebind.test"})
	r := &alternating{answers: []netip.Addr{netip.MustParseAddr("93.184.216.34"), netip.MustParseAddr("127.0.0.1")}}
	g.Resolver = r

	target := "rebind.test:" + port
	if err := g.CheckURL("https://" + target + "/"); err != nil {
		t.Fatalf("CheckURL = %v, want nil (names are checked at dial time)", err)
	}

	const dials = 20
	var public, private int
	for i := range dials {
		c, err := g.DialContext(context.Background(), "tcp", target)
		if err == nil {
			c.Close()
			t.Fatalf("dial %d connected, want every dial to fail", i)
		}
		var be *BlockedError
		switch {
		case errors.Is(err, errAborted):
			public++
		case errors.As(err, &be) && be.Addr == netip.MustParseAddr("127.0.0.1"):
			private++
		default:
			t.Fatalf("dial %d = %v, want the test's abort or a BlockedError for 127.0.0.1", i, err)
		}
	}
	// The same through HTTP, with a fresh lookup per connection.
	client := g.Client(10 * time.Second)
	for _, scheme := range []string{"https", "http"} {
		for range 10 {
			resp, err := client.Get(scheme + "://" + target + "/")
			if err == nil {
				resp.Body.Close()
				t.Fatalf("GET through the guard succeeded, want refused or aborted")
			}
			if !errors.Is(err, errAborted) && !errors.Is(err, ErrRefused) {
				t.Fatalf("GET = %v, want the test's abort or the guard's refusal", err)
			}
		}
	}

	if public != dials/2 || private != dials/2 {
		t.Errorf("dials: %d public (aborted) and %d private (refused), want %d of each", public, private, dials/2)
	}
	if got, want := r.calls.Load(), int64(dials+20); got != want {
		t.Errorf("resolver called %d times, want %d (one lookup per connection, nothing cached)", got, want)
	}
	for _, a := range rec.addresses() {
		if !strings.HasPrefix(a, "93.184.216.34:") {
			t.Errorf("connect attempted to %s, want only the public answer (and that aborted)", a)
		}
	}
	assertNoAccept(t, ln)
}

// TestMixedAnswers: refused answers are skipped, allowed ones dialed.
func TestMixedAnswers(t *testing.T) {
	t.Parallel()
	ln := listen(t, "127.0.0.1")
	g, rec := newGuard(t, nil, nil)
	g.Resolver = resolverFunc(func(context.Context, string, string) ([]netip.Addr, error) {
		return []netip.Addr{
			netip.MustParseAddr("127.0.0.1"),
			netip.MustParseAddr("::ffff:10.0.0.1"),
			netip.MustParseAddr("::ffff:93.184.216.34"),
			netip.MustParseAddr("fd00::1"),
		}, nil
	})
	_, err := g.DialContext(context.Background(), "tcp", "mixed.test:"+portOf(ln))
	if !errors.Is(err, errAborted) {
		t.Fatalf("DialContext = %v, want the test's abort of the public answer", err)
	}
	if got := rec.addresses(); len(got) != 1 || !strings.HasPrefix(got[0], "93.184.216.34:") {
		t.Errorf("connect attempted to %v, want only 93.184.216.34", got)
	}
	assertNoAccept(t, ln)

	g.Resolver = resolverFunc(func(context.Context, string, string) ([]netip.Addr, error) {
		return []netip.Addr{netip.MustParseAddr("10.0.0.1"), netip.MustParseAddr("127.0.0.1")}, nil
	})
	var be *BlockedError
	if _, err := g.DialContext(context.Background(), "tcp", "private.test:443"); !errors.As(err, &be) || be.Addr.String() != "10.0.0.1" {
		t.Errorf("DialContext(all private) = %v, want a BlockedError for the first answer", err)
	}
}

// TestRedirectNotFollowed: a 127.0.0.1 server (allowed) redirects to a
// 127.0.0.2 server (not allowed). Client does not follow; and a client
// that would follow is stopped by the dialer.
func TestRedirectNotFollowed(t *testing.T) {
	t.Parallel()
	other, err := net.Listen("tcp", "127.0.0.2:0")
	if err != nil {
		t.Skipf("cannot listen on 127.0.0.2: %v", err)
	}
	t.Cleanup(func() { other.Close() })
	var hits atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		http.Redirect(w, r, "http://"+other.Addr().String()+"/internal", http.StatusFound)
	}))
	t.Cleanup(srv.Close)

	g, rec := newGuard(t, []string{"127.0.0.1/32"}, nil, "127.0.0.1", "127.0.0.2")
	resp, err := g.Client(10 * time.Second).Get(srv.URL)
	if err != nil {
		t.Fatalf("GET %s: %v", srv.URL, err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusFound {
		t.Errorf("GET %s = %d, want the 302 itself", srv.URL, resp.StatusCode)
	}

	following := &http.Client{Transport: g.Transport(), Timeout: 10 * time.Second}
	resp, err = following.Get(srv.URL)
	if err == nil {
		resp.Body.Close()
		t.Fatalf("a following client reached %s, want the dial refused", other.Addr())
	}
	var be *BlockedError
	if !errors.As(err, &be) || be.Addr.String() != "127.0.0.2" {
		t.Errorf("following GET = %v, want a BlockedError for 127.0.0.2", err)
	}
	if hits.Load() != 2 {
		t.Errorf("redirecting server got %d requests, want 2", hits.Load())
	}
	for _, a := range rec.addresses() {
		if !strings.HasPrefix(a, "127.0.0.1:") {
			t.Errorf("connect attempted to %s, want only 127.0.0.1", a)
		}
	}
	assertNoAccept(t, other)
}

func TestTransport(t *testing.T) {
	t.Parallel()
	g, _ := newGuard(t, nil, nil)
	tr := g.Transport()
	if tr.Proxy != nil {
		t.Error("Transport().Proxy is set, want nil (environment proxies ignored)")
	}
	if tr.DialContext == nil || tr.DialTLSContext != nil || tr.Dial != nil || tr.DialTLS != nil {
		t.Error("Transport() must dial only through DialContext")
	}
	if tr.TLSClientConfig == nil || tr.TLSClientConfig.InsecureSkipVerify {
		t.Error("Transport() must verify certificates")
	}
	if tr.TLSHandshakeTimeout <= 0 || tr.ResponseHeaderTimeout <= 0 || tr.IdleConnTimeout <= 0 {
		t.Errorf("Transport() timeouts = %v, %v, %v, want all set", tr.TLSHandshakeTimeout, tr.ResponseHeaderTimeout, tr.IdleConnTimeout)
	}
}

func TestBlockedErrorMessage(t *testing.T) {
	t.Parallel()
	g, _ := newGuard(t, nil, nil)
	err := g.CheckAddr(netip.MustParseAddr("127.0.0.1"))
	if got, want := fmt.Sprint(err), "address 127.0.0.1 is loopback and not in egress.allow_private"; got != want {
		t.Errorf("CheckAddr(127.0.0.1) = %q, want %q", got, want)
	}
	if len(BlockedRanges()) != len(blocked) {
		t.Errorf("BlockedRanges() has %d ranges, want %d", len(BlockedRanges()), len(blocked))
	}
}
