package egress

import (
	"context"
	"crypto/x509"
	"encoding/base64"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"sync"
	"testing"
)

// recordingProxy is an HTTP proxy on 127.0.0.1 that records each request
// (method, target, Proxy-Authorization) and tunnels CONNECTs, or answers
// every request with status when status is not 0.
type recordingProxy struct {
	*httptest.Server
	mu   sync.Mutex
	seen []string
	auth []string
}

func newRecordingProxy(t *testing.T, status int) *recordingProxy {
	t.Helper()
	p := &recordingProxy{}
	p.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p.mu.Lock()
		p.seen = append(p.seen, r.Method+" "+r.Host)
		p.auth = append(p.auth, r.Header.Get("Proxy-Authorization"))
		p.mu.Unlock()
		if status != 0 {
			http.Error(w, "no", status)
			return
		}
		if r.Method != http.MethodConnect {
			http.Error(w, "only CONNECT", http.StatusBadGateway)
			return
		}
		up, err := net.Dial("tcp", r.Host)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
			return
		}
		w.WriteHeader(http.StatusOK)
		c, brw, err := http.NewResponseController(w).Hijack()
		if err != nil {
			up.Close()
			return
		}
		go func() { io.Copy(up, brw); up.Close() }()
		go func() { io.Copy(c, up); c.Close() }()
	}))
	t.Cleanup(p.Server.Close)
	return p
}

func (p *recordingProxy) requests() ([]string, []string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]string(nil), p.seen...), append([]string(nil), p.auth...)
}

// proxyGuard is newGuard with names resolved by answers and the proxy set.
func proxyGuard(t *testing.T, allowPrivate []string, proxy string, answers map[string]string) *Guard {
	t.Helper()
	g, _ := newGuard(t, allowPrivate, nil, "127.0.0.1")
	g.Resolver = resolverFunc(func(_ context.Context, _, host string) ([]netip.Addr, error) {
		a, ok := answers[host]
		if !ok {
			return nil, errors.New("test: no such host")
		}
		return []netip.Addr{netip.MustParseAddr(a)}, nil
	})
	if err := g.SetProxy(proxy); err != nil {
		t.Fatal(err)
	}
	return g
}

// With egress.proxy, a request goes through the proxy, which is asked to
// tunnel to the address the guard resolved and checked, with the proxy
// credentials; the request itself still names the host.
func TestProxyTunnelsToTheCheckedAddress(t *testing.T) {
	t.Parallel()
	target := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "hello from "+r.Host)
	}))
	t.Cleanup(target.Close)
	_, port, _ := net.SplitHostPort(target.Listener.Addr().String())
	proxy := newRecordingProxy(t, 0)
	g := proxyGuard(t, []string{"127.0.0.0/8"}, "http://hookd:proxy-pw@"+proxy.Listener.Addr().String(), map[string]string{"hooks.example": "127.0.0.1"})

	resp, err := g.Client(0).Get("http://hooks.example:" + port + "/in")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if want := "hello from hooks.example:" + port; resp.StatusCode != 200 || string(body) != want {
		t.Fatalf("got %d %q, want 200 %q", resp.StatusCode, body, want)
	}
	seen, auth := proxy.requests()
	wantAuth := "Basic " + base64.StdEncoding.EncodeToString([]byte("hookd:proxy-pw"))
	if len(seen) != 1 || seen[0] != "CONNECT 127.0.0.1:"+port || auth[0] != wantAuth {
		t.Fatalf("proxy got %q (auth %q), want one CONNECT 127.0.0.1:%s with %q", seen, auth, port, wantAuth)
	}
}

// An https proxy is spoken to over TLS, its certificate verified.
func TestProxyOverTLS(t *testing.T) {
	t.Parallel()
	target := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "hello")
	}))
	t.Cleanup(target.Close)
	_, port, _ := net.SplitHostPort(target.Listener.Addr().String())
	proxy := &recordingProxy{}
	plain := newRecordingProxy(t, 0)
	proxy.Server = httptest.NewTLSServer(plain.Config.Handler)
	t.Cleanup(proxy.Server.Close)
	g := proxyGuard(t, []string{"127.0.0.0/8"}, "https://"+proxy.Listener.Addr().String(), map[string]string{"hooks.example": "127.0.0.1"})

	// Its certificate is not trusted: refused.
	if _, err := g.Client(0).Get("http://hooks.example:" + port + "/"); err == nil || !strings.Contains(err.Error(), "tls: ") {
		t.Fatalf("untrusted proxy certificate: got %v, want a TLS error", err)
	}
	g.proxyRoots = x509.NewCertPool()
	g.proxyRoots.AddCert(proxy.Certificate())
	resp, err := g.Client(0).Get("http://hooks.example:" + port + "/")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if string(body) != "hello" {
		t.Fatalf("got %q, want hello", body)
	}
	if seen, _ := plain.requests(); len(seen) != 1 || seen[0] != "CONNECT 127.0.0.1:"+port {
		t.Fatalf("proxy got %q, want one CONNECT 127.0.0.1:%s", seen, port)
	}
}

// A target the guard refuses is refused before the proxy is contacted,
// whether written as an address or a name that resolves to one.
func TestProxyNeverAskedForRefusedTarget(t *testing.T) {
	t.Parallel()
	proxy := newRecordingProxy(t, 0)
	g := proxyGuard(t, nil, proxy.URL, map[string]string{"rebound.example": "10.0.0.5", "local.example": "127.0.0.1"})
	for _, addr := range []string{"169.254.169.254:80", "127.0.0.1:8080", "rebound.example:443", "local.example:443", "localhost:80", "2130706433:80"} {
		_, err := g.DialHTTP(context.Background(), "tcp", addr)
		if !errors.Is(err, ErrRefused) {
			t.Errorf("DialHTTP(%s): got %v, want a refusal", addr, err)
		}
	}
	if seen, _ := proxy.requests(); len(seen) != 0 {
		t.Fatalf("proxy got %q, want nothing", seen)
	}
}

// A proxy that refuses the tunnel fails the dial with its answer; the
// error names the proxy's address but not its credentials.
func TestProxyRefusal(t *testing.T) {
	t.Parallel()
	proxy := newRecordingProxy(t, http.StatusForbidden)
	g := proxyGuard(t, nil, "http://hookd:proxy-pw@"+proxy.Listener.Addr().String(), map[string]string{"hooks.example": "93.184.216.34"})
	_, err := g.DialHTTP(context.Background(), "tcp", "hooks.example:443")
	if err == nil || !strings.Contains(err.Error(), "proxy answered 403 Forbidden to CONNECT") || !strings.Contains(err.Error(), proxy.Listener.Addr().String()) {
		t.Fatalf("got %v, want the proxy's 403", err)
	}
	if strings.Contains(err.Error(), "proxy-pw") {
		t.Fatalf("error %q reveals the proxy password", err)
	}
	if seen, _ := proxy.requests(); len(seen) != 1 || seen[0] != "CONNECT 93.184.216.34:443" {
		t.Fatalf("proxy got %q, want CONNECT 93.184.216.34:443", seen)
	}
}

// Broker connections (DialContext) never use the proxy.
func TestDialContextIgnoresProxy(t *testing.T) {
	t.Parallel()
	proxy := newRecordingProxy(t, 0)
	ln := listen(t, "127.0.0.1")
	g := proxyGuard(t, []string{"127.0.0.0/8"}, proxy.URL, nil)
	c, err := g.DialContext(context.Background(), "tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	c.Close()
	if seen, _ := proxy.requests(); len(seen) != 0 {
		t.Fatalf("proxy got %q, want nothing", seen)
	}
}

func TestParseProxy(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct{ raw, want string }{
		{"http://proxy.internal:3128", ""},
		{"https://user:pw@proxy.internal", ""},
		{"http://10.0.0.1:3128/", ""},
		{"socks5://proxy.internal:1080", `scheme "socks5" is not supported`},
		{"proxy.internal:3128", `scheme "proxy.internal" is not supported`},
		{"http://", "no host"},
		{"http://proxy.internal:3128/path", "must not have a path"},
		{"http://proxy.internal:3128?x=1", "must not have a path, query"},
		{"http://proxy.internal:99999", `port "99999" is out of range`},
		{"http://user:secret-pw@proxy.internal:0", `port "0" is out of range`},
		{"http://a b", "invalid URL"},
	} {
		_, err := ParseProxy(tt.raw)
		switch {
		case tt.want == "" && err != nil:
			t.Errorf("ParseProxy(%q): %v, want nil", tt.raw, err)
		case tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)):
			t.Errorf("ParseProxy(%q): %v, want %q", tt.raw, err, tt.want)
		case err != nil && strings.Contains(err.Error(), "secret-pw"):
			t.Errorf("ParseProxy(%q): %v reveals the password", tt.raw, err)
		}
	}
}
