package cli

import (
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"hookd/internal/config"
)

// The SSRF guard covers the URLs verification methods call out to
// (jwks_url, introspection url) as it covers destinations: at creation,
// from the API and from the file, and at every dial.

// countingServer is an HTTP server on 127.0.0.1 that counts the requests
// it gets and answers each with answer.
func countingServer(t *testing.T, answer string) (*httptest.Server, *atomic.Int64) {
	t.Helper()
	var n atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		n.Add(1)
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, answer)
	}))
	t.Cleanup(srv.Close)
	return srv, &n
}

// countingListener accepts TCP connections on 127.0.0.1, counts them and
// closes them at once.
func countingListener(t *testing.T) (string, *atomic.Int64) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	var n atomic.Int64
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			n.Add(1)
			c.Close()
		}
	}()
	return ln.Addr().String(), &n
}

// fakeDNS makes every name looked up through net.DefaultResolver (which
// hookd's guard and the standard dialer use) resolve to 127.0.0.1, with no
// IPv6 address, until the test ends. Tests using it must not be parallel.
func fakeDNS(t *testing.T) {
	t.Helper()
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() {
		buf := make([]byte, 1500)
		for {
			n, from, err := pc.ReadFrom(buf)
			if err != nil {
				return
			}
			if ans := dnsAnswer(buf[:n]); ans != nil {
				pc.WriteTo(ans, from)
			}
		}
	}()
	r := net.DefaultResolver
	preferGo, dial := r.PreferGo, r.Dial
	r.PreferGo = true
	r.Dial = func(ctx context.Context, network, address string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, "udp", pc.LocalAddr().String())
	}
	t.Cleanup(func() {
		r.PreferGo, r.Dial = preferGo, dial
		pc.Close()
	})
}

// dnsAnswer answers a DNS query: A records get 127.0.0.1, other types no
// record. Malformed queries get no answer.
func dnsAnswer(q []byte) []byte {
	if len(q) < 12 || binary.BigEndian.Uint16(q[4:6]) != 1 {
		return nil
	}
	i := 12
	for i < len(q) && q[i] != 0 {
		i += int(q[i]) + 1
	}
	if i+5 > len(q) {
		return nil
	}
	question := q[12 : i+5]
	qtype := binary.BigEndian.Uint16(q[i+1 : i+3])
	out := make([]byte, 12, 64)
	copy(out, q[:2])                            // id
	binary.BigEndian.PutUint16(out[2:], 0x8580) // response, authoritative, RD, RA
	binary.BigEndian.PutUint16(out[4:], 1)      // one question
	out = append(out, question...)
	if qtype == 1 {
		binary.BigEndian.PutUint16(out[6:], 1) // one answer
		out = append(out, 0xc0, 12, 0, 1, 0, 1, 0, 0, 0, 0, 0, 4, 127, 0, 0, 1)
	}
	return out
}

// A source created through the API whose introspection url or jwks_url
// is a loopback address is refused with a 400 naming the field, and no
// request reaches that address.
func TestAPISourceRefusesLoopbackVerificationURL(t *testing.T) {
	idp, calls := countingServer(t, `{"active": true}`)
	cfg, err := config.Parse([]byte("admin: {tokens: [tok]}\n"))
	if err != nil {
		t.Fatal(err)
	}
	cfg.Storage.Path = t.TempDir()
	_, base := startApp(t, cfg, nil)

	for _, tt := range []struct{ name, verify, field string }{
		{"intro", fmt.Sprintf(`{"type": "oauth_introspection", "url": %q, "client_id": "hookd", "client_secret": "introspection-secret-0123"}`, idp.URL+"/introspect"), "url"},
		{"jwks", fmt.Sprintf(`{"type": "oauth_jwt", "algorithms": ["RS256"], "jwks_url": %q}`, idp.URL+"/jwks"), "jwks_url"},
	} {
		code, v := apiDo(t, "POST", base+"/api/v1/sources", "tok", fmt.Sprintf(`{"name": %q, "verify": [%s]}`, tt.name, tt.verify))
		msg := fmt.Sprint(v["error"])
		if code != 400 || !strings.Contains(msg, tt.field+": ") || !strings.Contains(msg, "loopback") {
			t.Fatalf("POST /api/v1/sources (%s): %d %v, want 400 naming %s as loopback", tt.name, code, v, tt.field)
		}
		t.Logf("refused: %s", msg)
		if c := postWithKey(t, base, tt.name, "some-token", `{}`); c != 404 {
			t.Errorf("POST /in/%s: %d, want 404 (the source must not exist)", tt.name, c)
		}
	}
	if n := calls.Load(); n != 0 {
		t.Fatalf("the loopback server got %d requests, want 0", n)
	}
}

// A configuration file whose jwks_url is a loopback address is refused at
// start, naming the source and the field.
func TestOpenRefusesLoopbackJWKSURL(t *testing.T) {
	idp, calls := countingServer(t, `{"keys": []}`)
	cfg, err := config.Parse([]byte(fmt.Sprintf(`
sources:
  - name: secure
    verify: [{type: oauth_jwt, algorithms: [RS256], jwks_url: %q}]
`, idp.URL+"/jwks")))
	if err != nil {
		t.Fatal(err)
	}
	cfg.Storage.Path = t.TempDir()
	cfg.Listen = "127.0.0.1:0"
	app := NewApp(cfg, slog.New(slog.NewTextHandler(io.Discard, nil)))
	err = app.Open(context.Background())
	if err == nil {
		app.Shutdown(context.Background())
		t.Fatal("Open: got nil, want the loopback jwks_url refused")
	}
	if msg := err.Error(); !strings.Contains(msg, "source secure") || !strings.Contains(msg, "jwks_url: ") || !strings.Contains(msg, "loopback") {
		t.Fatalf("Open: got %v, want it to name the source and jwks_url", err)
	}
	t.Logf("refused: %v", err)
	if n := calls.Load(); n != 0 {
		t.Fatalf("the loopback server got %d requests, want 0", n)
	}
}

// A verification URL whose name resolves to a loopback address passes the
// check at creation (names are not resolved then) but is refused at every
// dial: an unauthenticated request to the source makes no connection to
// loopback and is answered 503 (the method could not decide).
func TestVerificationURLResolvingToLoopbackIsNeverDialed(t *testing.T) {
	fakeDNS(t)
	addr, conns := countingListener(t)
	_, port, _ := net.SplitHostPort(addr)
	cfg, err := config.Parse([]byte("admin: {tokens: [tok]}\n"))
	if err != nil {
		t.Fatal(err)
	}
	cfg.Storage.Path = t.TempDir()
	_, base := startApp(t, cfg, nil)

	for _, tt := range []struct{ name, verify, token string }{
		{"intro", fmt.Sprintf(`{"type": "oauth_introspection", "url": "https://idp.example.com:%s/introspect", "client_id": "hookd", "client_secret": "introspection-secret-0123"}`, port), "opaque-token"},
		// A well-formed RS256 token with a kid: the keys are fetched to check it.
		{"jwks", fmt.Sprintf(`{"type": "oauth_jwt", "algorithms": ["RS256"], "jwks_url": "https://idp.example.com:%s/jwks"}`, port),
			"eyJhbGciOiJSUzI1NiIsImtpZCI6ImsxIiwidHlwIjoiSldUIn0.eyJzdWIiOiJ4In0.c2lnbmF0dXJl"},
	} {
		code, v := apiDo(t, "POST", base+"/api/v1/sources", "tok", fmt.Sprintf(`{"name": %q, "verify": [%s]}`, tt.name, tt.verify))
		if code != 201 {
			t.Fatalf("POST /api/v1/sources (%s): %d %v, want 201", tt.name, code, v)
		}
		if c := postWithKey(t, base, tt.name, tt.token, `{}`); c != 503 && c != 401 {
			t.Errorf("POST /in/%s: %d, want 503 or 401", tt.name, c)
		}
	}
	if n := conns.Load(); n != 0 {
		t.Fatalf("hookd made %d connections to the loopback address idp.example.com resolved to, want 0", n)
	}
}

// testProxy is an HTTP proxy on 127.0.0.1 that tunnels CONNECT requests
// and refuses (502) requests in absolute form; it records what it was
// asked for.
type testProxy struct {
	*httptest.Server
	mu   sync.Mutex
	seen []string
}

func newTestProxy(t *testing.T) *testProxy {
	p := &testProxy{}
	p.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p.mu.Lock()
		p.seen = append(p.seen, r.Method+" "+r.Host)
		p.mu.Unlock()
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
		go func() {
			io.Copy(up, brw)
			up.Close()
		}()
		go func() {
			io.Copy(c, up)
			c.Close()
		}()
	}))
	t.Cleanup(p.Server.Close)
	return p
}

func (p *testProxy) requests() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]string(nil), p.seen...)
}

// Proxy variables of the environment are ignored; egress.proxy sends
// verification calls and deliveries through the configured proxy, which
// is asked to tunnel to the address hookd resolved and checked.
func TestEnvironmentProxyIgnoredAndEgressProxyUsed(t *testing.T) {
	proxy := newTestProxy(t)
	for _, k := range []string{"HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy"} {
		t.Setenv(k, proxy.URL)
	}
	t.Setenv("NO_PROXY", "")
	t.Setenv("no_proxy", "")
	fakeDNS(t)
	idp, introspections := countingServer(t, `{"active": true}`)
	sink, deliveries := countingServer(t, `{}`)
	_, idpPort, _ := net.SplitHostPort(strings.TrimPrefix(idp.URL, "http://"))
	_, sinkPort, _ := net.SplitHostPort(strings.TrimPrefix(sink.URL, "http://"))

	run := func(egress string, wantIntro, wantDeliveries int64) {
		t.Helper()
		cfg, err := config.Parse([]byte(fmt.Sprintf(`
egress: %s
sources:
  - name: secure
    verify: [{type: oauth_introspection, url: "http://idp.example.com:%s/introspect", client_id: hookd, client_secret: introspection-secret-0123, allow_http: true, cache_ttl: 0s}]
destinations:
  - {name: sink, type: http, url: "http://hooks.example.com:%s/in"}
subscriptions:
  - {source: secure, destination: sink}
`, egress, idpPort, sinkPort)))
		if err != nil {
			t.Fatal(err)
		}
		cfg.Storage.Path = t.TempDir()
		app, base := startApp(t, cfg, nil)
		if c := postWithKey(t, base, "secure", "opaque-token", `{"id": "1"}`); c != 200 {
			t.Fatalf("POST /in/secure: %d, want 200 (proxy saw %q)", c, proxy.requests())
		}
		deadline := time.Now().Add(20 * time.Second)
		for deliveries.Load() < wantDeliveries && time.Now().Before(deadline) {
			time.Sleep(10 * time.Millisecond)
		}
		if n := introspections.Load(); n != wantIntro {
			t.Fatalf("introspection server got %d requests, want %d", n, wantIntro)
		}
		if n := deliveries.Load(); n != wantDeliveries {
			t.Fatalf("sink got %d deliveries, want %d", n, wantDeliveries)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		app.Shutdown(ctx)
	}

	// No egress.proxy: HTTP_PROXY is ignored.
	run(`{allow_private: ["127.0.0.0/8"], allow_http_hosts: ["*.example.com"]}`, 1, 1)
	if seen := proxy.requests(); len(seen) != 0 {
		t.Fatalf("with no egress.proxy, the environment's proxy got %q, want nothing", seen)
	}

	// egress.proxy: both go through it, tunnelled to the checked address.
	run(fmt.Sprintf(`{allow_private: ["127.0.0.0/8"], allow_http_hosts: ["*.example.com"], proxy: %q}`, proxy.URL), 2, 2)
	want := map[string]bool{"CONNECT 127.0.0.1:" + idpPort: true, "CONNECT 127.0.0.1:" + sinkPort: true}
	seen := proxy.requests()
	for _, s := range seen {
		if !want[s] {
			t.Fatalf("proxy got %q, want only CONNECTs to the resolved addresses %v", seen, want)
		}
	}
	for w := range want {
		if !strings.Contains(strings.Join(seen, "\n"), w) {
			t.Fatalf("proxy got %q, want %q among them", seen, w)
		}
	}
}
