package cli

import (
	"bufio"
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"log/slog"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"hookd/internal/config"
)

// testCA issues certificates for the TLS tests.
type testCA struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
	pem  []byte
}

func newTestCA(t *testing.T, name string) *testCA {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: name},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		KeyUsage:              x509.KeyUsageCertSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	return &testCA{cert: cert, key: key, pem: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})}
}

func (ca *testCA) pool() *x509.CertPool {
	p := x509.NewCertPool()
	p.AddCert(ca.cert)
	return p
}

// issue returns a certificate named cn (valid for 127.0.0.1 when server)
// and its key, in PEM.
func (ca *testCA) issue(t *testing.T, cn string, server bool) (certPEM, keyPEM []byte) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	serial, _ := rand.Int(rand.Reader, big.NewInt(1<<62))
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{CommonName: cn},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}
	if server {
		tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}
		tmpl.IPAddresses = []net.IP{net.IPv4(127, 0, 0, 1)}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder})
}

// writeAtomic replaces path with b as a rotation tool does: a new file
// renamed over the old one.
func writeAtomic(t *testing.T, path string, b []byte) {
	t.Helper()
	tmp := path + ".new"
	if err := os.WriteFile(tmp, b, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}

// logBuffer is a log sink the test reads while the app writes.
type logBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// startTLSApp serves the hostile test configuration over TLS with the
// certificate and key in dir/cert.pem and dir/key.pem, checked for a
// change every 20ms; it returns the app and its log.
func startTLSApp(t *testing.T, tc *config.TLS) (*App, *logBuffer) {
	t.Helper()
	cfg, err := config.Parse([]byte(hostileConfig))
	if err != nil {
		t.Fatal(err)
	}
	cfg.Storage.Path = t.TempDir()
	cfg.Server.TLS = tc
	logs := &logBuffer{}
	app, _ := startAppWith(t, cfg, func(a *App) {
		a.log = slog.New(slog.NewTextHandler(logs, nil))
		a.tlsReloadEvery = 20 * time.Millisecond
	})
	return app, logs
}

// tlsFiles writes a server certificate named cn and its key into dir.
func tlsFiles(t *testing.T, ca *testCA, dir, cn string) *config.TLS {
	t.Helper()
	c, k := ca.issue(t, cn, true)
	tc := &config.TLS{CertFile: filepath.Join(dir, "cert.pem"), KeyFile: filepath.Join(dir, "key.pem")}
	writeAtomic(t, tc.CertFile, c)
	writeAtomic(t, tc.KeyFile, k)
	return tc
}

// served dials addr and returns the name of the certificate it is
// served (the connection is closed).
func served(t *testing.T, addr string, roots *x509.CertPool) string {
	t.Helper()
	c, err := tls.Dial("tcp", addr, &tls.Config{RootCAs: roots})
	if err != nil {
		t.Fatalf("handshake: %v", err)
	}
	defer c.Close()
	return c.ConnectionState().PeerCertificates[0].Subject.CommonName
}

// waitServed waits until a new handshake is served the certificate cn.
func waitServed(t *testing.T, addr string, roots *x509.CertPool, cn string) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		got := served(t, addr, roots)
		if got == cn {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("new handshakes: still served %q after 20s, want %q", got, cn)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// postOn sends one event on the keep-alive connection c and reads the
// answer.
func postOn(t *testing.T, c net.Conn, br *bufio.Reader, body string) *http.Response {
	t.Helper()
	c.SetDeadline(time.Now().Add(20 * time.Second))
	if _, err := fmt.Fprintf(c, "POST /in/s HTTP/1.1\r\nHost: hookd\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s", len(body), body); err != nil {
		t.Fatalf("write on the open connection: %v", err)
	}
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatalf("answer on the open connection: %v", err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp
}

// hookd serves HTTPS from certificate files, TLS 1.2 at least, and a
// rotation of the files is served to new handshakes without a restart,
// while a keep-alive connection opened before goes on with its own.
func TestTLSServesFromFilesAndRotates(t *testing.T) {
	ca := newTestCA(t, "test CA")
	tc := tlsFiles(t, ca, t.TempDir(), "hookd-one")
	app, logs := startTLSApp(t, tc)
	addr := app.Addr()

	old, err := tls.Dial("tcp", addr, &tls.Config{RootCAs: ca.pool()})
	if err != nil {
		t.Fatal(err)
	}
	defer old.Close()
	br := bufio.NewReader(old)
	if resp := postOn(t, old, br, `{"n": 1}`); resp.StatusCode != 200 || resp.Close {
		t.Fatalf("POST over TLS: got %d close=%v, want 200, connection kept", resp.StatusCode, resp.Close)
	}
	if got := old.ConnectionState().PeerCertificates[0].Subject.CommonName; got != "hookd-one" {
		t.Fatalf("served %q, want hookd-one", got)
	}
	if v := old.ConnectionState().Version; v != tls.VersionTLS13 {
		t.Errorf("negotiated version %x, want TLS 1.3", v)
	}
	if p := old.ConnectionState().NegotiatedProtocol; p != "" && p != "http/1.1" {
		t.Errorf("negotiated %q, want http/1.1", p)
	}
	if _, err := tls.Dial("tcp", addr, &tls.Config{RootCAs: ca.pool(), MinVersion: tls.VersionTLS10, MaxVersion: tls.VersionTLS11}); err == nil {
		t.Errorf("a TLS 1.1 client: handshake succeeded, want it refused")
	}
	// Plain HTTP on the TLS port gets no answer as HTTP.
	if resp, err := http.Get("http://" + addr + "/healthz"); err == nil {
		resp.Body.Close()
		if resp.StatusCode == 200 {
			t.Errorf("plain HTTP on the TLS listener: got 200")
		}
	}

	// Rotation: the key first, then the certificate, as a tool that
	// replaces them one after the other; in between, the pair does not
	// match and the first one stays in service.
	c2, k2 := ca.issue(t, "hookd-two", true)
	writeAtomic(t, tc.KeyFile, k2)
	writeAtomic(t, tc.CertFile, c2)
	waitServed(t, addr, ca.pool(), "hookd-two")
	if !strings.Contains(logs.String(), "certificate reloaded") {
		t.Errorf("log: got %q, want the reload logged", logs.String())
	}

	// The connection opened before the rotation is still served, with its
	// own certificate.
	for i := range 3 {
		if resp := postOn(t, old, br, fmt.Sprintf(`{"after": %d}`, i)); resp.StatusCode != 200 || resp.Close {
			t.Fatalf("POST on the connection opened before the rotation: got %d close=%v, want 200, connection kept", resp.StatusCode, resp.Close)
		}
	}
	if got := old.ConnectionState().PeerCertificates[0].Subject.CommonName; got != "hookd-one" {
		t.Errorf("the open connection's certificate: got %q, want hookd-one", got)
	}
}

// A replacement that does not load — a key of another certificate, then
// a file that is not PEM — keeps the certificate in service, and says why
// in the log; a valid one after it is taken.
func TestTLSInvalidReplacementKeepsCertificate(t *testing.T) {
	ca := newTestCA(t, "test CA")
	tc := tlsFiles(t, ca, t.TempDir(), "hookd-one")
	app, logs := startTLSApp(t, tc)
	addr := app.Addr()

	waitLog := func(want string, n int) {
		t.Helper()
		deadline := time.Now().Add(20 * time.Second)
		for strings.Count(logs.String(), want) < n {
			if time.Now().After(deadline) {
				t.Fatalf("log: got %q, want %d× %q", logs.String(), n, want)
			}
			served(t, addr, ca.pool()) // a handshake checks the files
			time.Sleep(10 * time.Millisecond)
		}
	}
	_, otherKey := ca.issue(t, "other", true)
	writeAtomic(t, tc.KeyFile, otherKey)
	waitLog("do not load", 1)
	if got := served(t, addr, ca.pool()); got != "hookd-one" {
		t.Fatalf("after a key of another certificate: served %q, want hookd-one", got)
	}
	writeAtomic(t, tc.CertFile, []byte("not a certificate\n"))
	waitLog("do not load", 2)
	if got := served(t, addr, ca.pool()); got != "hookd-one" {
		t.Fatalf("after a file that is not PEM: served %q, want hookd-one", got)
	}
	// Handshakes over ten more checks of the files: the content refused
	// is not logged again.
	for start := time.Now(); time.Since(start) < 10*app.tlsReloadEvery; {
		served(t, addr, ca.pool())
		time.Sleep(5 * time.Millisecond)
	}
	if n := strings.Count(logs.String(), "do not load"); n != 2 {
		t.Errorf("each refused content logged %d times in all, want once each (2)", n)
	}
	c3, k3 := ca.issue(t, "hookd-three", true)
	writeAtomic(t, tc.CertFile, c3)
	writeAtomic(t, tc.KeyFile, k3)
	waitServed(t, addr, ca.pool(), "hookd-three")
}

// With server.tls.client_ca_file, a client must present a certificate
// from that CA: without one, or with one from another CA, it is not
// served.
func TestTLSClientCertificateRequired(t *testing.T) {
	ca := newTestCA(t, "test CA")
	clients := newTestCA(t, "clients CA")
	other := newTestCA(t, "other CA")
	dir := t.TempDir()
	tc := tlsFiles(t, ca, dir, "hookd")
	tc.ClientCAFile = filepath.Join(dir, "clients.pem")
	writeAtomic(t, tc.ClientCAFile, clients.pem)
	app, _ := startTLSApp(t, tc)
	base := "https://" + app.Addr()

	get := func(cert *tls.Certificate) (int, error) {
		cfg := &tls.Config{RootCAs: ca.pool()}
		if cert != nil {
			cfg.Certificates = []tls.Certificate{*cert}
		}
		client := &http.Client{Transport: &http.Transport{TLSClientConfig: cfg}, Timeout: 20 * time.Second}
		defer client.CloseIdleConnections()
		resp, err := client.Get(base + "/healthz")
		if err != nil {
			return 0, err
		}
		resp.Body.Close()
		return resp.StatusCode, nil
	}
	pair := func(ca *testCA) *tls.Certificate {
		c, k := ca.issue(t, "sender", false)
		p, err := tls.X509KeyPair(c, k)
		if err != nil {
			t.Fatal(err)
		}
		return &p
	}
	if code, err := get(pair(clients)); err != nil || code != 200 {
		t.Errorf("with a certificate of the client CA: got %d %v, want 200", code, err)
	}
	if code, err := get(nil); err == nil {
		t.Errorf("without a client certificate: got %d, want the connection refused", code)
	}
	if code, err := get(pair(other)); err == nil {
		t.Errorf("with a certificate of another CA: got %d, want the connection refused", code)
	}
}

// Bad TLS files are refused at start with the key at fault.
func TestTLSBadFilesRefusedAtOpen(t *testing.T) {
	ca := newTestCA(t, "test CA")
	dir := t.TempDir()
	good := tlsFiles(t, ca, dir, "hookd")
	missing := filepath.Join(dir, "missing.pem")
	for name, tt := range map[string]struct {
		tc   config.TLS
		want string
	}{
		"MissingCert":   {config.TLS{CertFile: missing, KeyFile: good.KeyFile}, "server.tls.cert_file"},
		"MissingKey":    {config.TLS{CertFile: good.CertFile, KeyFile: missing}, "server.tls.key_file"},
		"KeyIsCert":     {config.TLS{CertFile: good.CertFile, KeyFile: good.CertFile}, "server.tls:"},
		"ClientCANoPEM": {config.TLS{CertFile: good.CertFile, KeyFile: good.KeyFile, ClientCAFile: good.KeyFile}, "server.tls.client_ca_file"},
	} {
		t.Run(name, func(t *testing.T) {
			cfg, err := config.Parse([]byte(hostileConfig))
			if err != nil {
				t.Fatal(err)
			}
			cfg.Storage.Path = t.TempDir()
			cfg.Listen = "127.0.0.1:0"
			tc := tt.tc
			cfg.Server.TLS = &tc
			app := NewApp(cfg, slog.New(slog.DiscardHandler))
			err = app.Open(t.Context())
			if err == nil {
				app.Shutdown(t.Context())
				t.Fatalf("Open: got nil, want an error naming %s", tt.want)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("Open: got %v, want it to name %s", err, tt.want)
			}
		})
	}
}

// Over TLS, a request that declares its length twice is refused and its
// connection closed, as in plain HTTP: the framing is followed on the
// plaintext beneath TLS.
func TestRequestSmugglingIsRefusedOverTLS(t *testing.T) {
	ca := newTestCA(t, "test CA")
	app, _ := startTLSApp(t, tlsFiles(t, ca, t.TempDir(), "hookd"))
	addr := app.Addr()
	client := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: ca.pool()}}, Timeout: 20 * time.Second}
	defer client.CloseIdleConnections()
	testRequestSmuggling(t, func() (net.Conn, error) {
		return tls.Dial("tcp", addr, &tls.Config{RootCAs: ca.pool()})
	}, func() int {
		req, _ := http.NewRequest("GET", "https://"+addr+"/api/v1/events", nil)
		req.Header.Set("Authorization", "Bearer tok")
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var v struct{ Data []json.RawMessage }
		if err := json.NewDecoder(resp.Body).Decode(&v); err != nil || resp.StatusCode != 200 {
			t.Fatalf("GET /api/v1/events: %d %v", resp.StatusCode, err)
		}
		return len(v.Data)
	})
}
