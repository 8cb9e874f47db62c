package cli

import (
	"bufio"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"io"
	"log"
	"log/slog"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/letsencrypt/pebble/v2/ca"
	"github.com/letsencrypt/pebble/v2/db"
	"github.com/letsencrypt/pebble/v2/va"
	"github.com/letsencrypt/pebble/v2/wfe"
	"golang.org/x/crypto/acme"

	"hookd/internal/config"
)

// pebble is a local ACME server (Let's Encrypt's test server, run from
// its packages) that validates every challenge without a request
// (PEBBLE_VA_ALWAYS_VALID).
type pebble struct {
	directory string
	// tlsRoot is the PEM certificate of the server's own HTTPS.
	tlsRoot []byte
	// issuer is the root the certificates it issues chain to.
	issuer *x509.CertPool
	// stop stops the server.
	stop func()
}

// startPebble runs the ACME server on 127.0.0.1 until the test ends.
// It sets environment variables: the test cannot be parallel.
func startPebble(t *testing.T) *pebble {
	t.Helper()
	t.Setenv("PEBBLE_VA_ALWAYS_VALID", "1")
	t.Setenv("PEBBLE_VA_NOSLEEP", "1")
	t.Setenv("PEBBLE_WFE_NONCEREJECT", "0")
	logger := log.New(io.Discard, "", 0)
	if testing.Verbose() {
		logger = log.New(os.Stderr, "pebble ", log.Lmicroseconds)
	}
	store := db.NewMemoryStore()
	authority := ca.New(logger, store, "", "ecdsa", 0, 1, map[string]ca.Profile{"default": {Description: "default"}})
	validation := va.New(logger, 0, 0, false, "", store)
	front := wfe.New(logger, store, validation, authority, []string{"pebble.letsencrypt.org"}, false, false, 0, 0)
	srv := httptest.NewTLSServer(front.Handler())
	t.Cleanup(srv.Close)
	p := &pebble{
		directory: srv.URL + wfe.DirectoryPath,
		tlsRoot:   pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw}),
		issuer:    x509.NewCertPool(),
		stop:      srv.Close,
	}
	p.issuer.AddCert(authority.GetRootCert(0).Cert)
	return p
}

// acmeConfig is hookd's configuration for the ACME server p: its address
// allowed to the egress guard, its HTTPS root trusted.
func acmeConfig(t *testing.T, p *pebble, allowLoopback bool) *config.Config {
	t.Helper()
	raw := "admin: {tokens: [tok-0123456789abcdef]}\nsources: [{name: s}]\n"
	if allowLoopback {
		raw += "egress: {allow_private: [127.0.0.1/32]}\n"
	}
	cfg, err := config.Parse([]byte(raw))
	if err != nil {
		t.Fatal(err)
	}
	cfg.Storage.Path = t.TempDir()
	root := filepath.Join(t.TempDir(), "acme-root.pem")
	if err := os.WriteFile(root, p.tlsRoot, 0o600); err != nil {
		t.Fatal(err)
	}
	cfg.Server.TLS = &config.TLS{ACME: &config.ACME{
		Domains:    []string{"hooks.example.com"},
		Email:      "ops@example.com",
		Directory:  p.directory,
		CARootFile: root,
	}}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	return cfg
}

// hookd obtains a certificate from the local ACME server and serves
// with it: a client that trusts that server's root and asks for the
// domain is served, over HTTPS, by hookd. The account and the
// certificate are kept in <storage.path>/acme.
func TestACMECertificateFromLocalServer(t *testing.T) {
	p := startPebble(t)
	cfg := acmeConfig(t, p, true)
	app, _ := startAppWith(t, cfg, func(a *App) {
		if testing.Verbose() {
			a.log = slog.New(slog.NewTextHandler(os.Stderr, nil))
		}
	})
	addr := app.Addr()
	client := &tls.Config{ServerName: "hooks.example.com", RootCAs: p.issuer}

	// Issuance takes a few round trips to the ACME server: until it is
	// done, handshakes fail.
	var conn *tls.Conn
	deadline := time.Now().Add(60 * time.Second)
	for {
		var err error
		conn, err = tls.DialWithDialer(&net.Dialer{Timeout: 10 * time.Second}, "tcp", addr, client)
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no certificate served after 60s: %v", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	leaf := conn.ConnectionState().PeerCertificates[0]
	conn.Close()
	if err := leaf.VerifyHostname("hooks.example.com"); err != nil {
		t.Errorf("served certificate: %v", err)
	}

	// Over HTTPS, with the name: hookd answers.
	hc := &http.Client{Timeout: 20 * time.Second, Transport: &http.Transport{
		TLSClientConfig: client,
		DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, network, addr)
		},
	}}
	defer hc.CloseIdleConnections()
	resp, err := hc.Post("https://hooks.example.com/in/s", "application/json", strings.NewReader(`{"acme": true}`))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Errorf("POST over HTTPS with the ACME certificate: got %d, want 200", resp.StatusCode)
	}

	// A name outside server.tls.acme.domains gets no certificate.
	if c, err := tls.Dial("tcp", addr, &tls.Config{ServerName: "other.example.com", RootCAs: p.issuer}); err == nil {
		c.Close()
		t.Errorf("handshake for other.example.com: succeeded, want it refused")
	}

	// Another start with the same ACME storage serves the stored
	// certificate at once, with the ACME server gone.
	p.stop()
	cfg2 := *cfg
	cfg2.Storage.Path = t.TempDir()
	acme2 := *cfg.Server.TLS.ACME
	acme2.Storage = acme2.StorageDir(cfg.Storage.Path)
	cfg2.Server.TLS = &config.TLS{ACME: &acme2}
	app2, _ := startAppWith(t, &cfg2, func(*App) {})
	c2, err := tls.DialWithDialer(&net.Dialer{Timeout: 10 * time.Second}, "tcp", app2.Addr(), client)
	if err != nil {
		t.Fatalf("restart without the ACME server: %v", err)
	}
	if got := c2.ConnectionState().PeerCertificates[0]; !got.Equal(leaf) {
		t.Errorf("restart: served serial %s, want the stored certificate's %s", got.SerialNumber, leaf.SerialNumber)
	}
	c2.Close()

	entries, err := os.ReadDir(filepath.Join(cfg.Storage.Path, "acme"))
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	if !strings.Contains(strings.Join(names, " "), "hooks.example.com") {
		t.Errorf("storage %s/acme holds %v, want the certificate of hooks.example.com", cfg.Storage.Path, names)
	}
}

// The ACME server is called through the egress guard: on a loopback
// address, it is refused unless egress.allow_private names it.
func TestACMEDirectoryGoesThroughEgressGuard(t *testing.T) {
	p := startPebble(t)
	cfg := acmeConfig(t, p, false)
	cfg.Listen = "127.0.0.1:0"
	app := NewApp(cfg, slog.New(slog.DiscardHandler))
	err := app.Open(t.Context())
	if err == nil {
		app.Shutdown(t.Context())
		t.Fatal("Open: got nil, want the loopback ACME directory refused")
	}
	if !strings.Contains(err.Error(), "server.tls.acme.directory") || !strings.Contains(err.Error(), "egress.allow_private") {
		t.Errorf("Open: got %v, want it to name server.tls.acme.directory and egress.allow_private", err)
	}
}

// With ACME and server.tls.client_ca_file, a client offering only
// acme-tls/1 gets the challenge's configuration, which asks for no client
// certificate, and, while a token certificate is held (a challenge in
// progress, or one a crash left in the ACME storage), its handshake
// completes. That connection is closed after the handshake: no request on
// it is served. A client with a certificate from the client CA is served.
func TestACMEChallengeConnectionServesNoRequest(t *testing.T) {
	p := startPebble(t)
	cfg := acmeConfig(t, p, true)
	clients := newTestCA(t, "clients CA")
	caFile := filepath.Join(t.TempDir(), "clients.pem")
	if err := os.WriteFile(caFile, clients.pem, 0o600); err != nil {
		t.Fatal(err)
	}
	cfg.Server.TLS.ClientCAFile = caFile
	app, _ := startAppWith(t, cfg, func(*App) {})
	certPEM, keyPEM := clients.issue(t, "sender", false)
	clientCert, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		t.Fatal(err)
	}

	// Wait for the startup issuance to end: the certificate stored, and
	// the challenge's token certificate removed.
	dir := cfg.Server.TLS.ACME.StorageDir(cfg.Storage.Path)
	tokenFile := filepath.Join(dir, "hooks.example.com+token")
	deadline := time.Now().Add(60 * time.Second)
	for {
		_, errCert := os.Stat(filepath.Join(dir, "hooks.example.com"))
		_, errToken := os.Stat(tokenFile)
		if errCert == nil && os.IsNotExist(errToken) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("issuance not done after 60s: certificate %v, token %v", errCert, errToken)
		}
		time.Sleep(20 * time.Millisecond)
	}
	// A token certificate in the storage, as the ACME client writes one
	// for a tls-alpn-01 challenge.
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(7), DNSNames: []string{"hooks.example.com"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	token := pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder})
	token = append(token, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})...)
	if err := os.WriteFile(tokenFile, token, 0o600); err != nil {
		t.Fatal(err)
	}

	post := func(c *tls.Conn) (*http.Response, error) {
		c.SetDeadline(time.Now().Add(20 * time.Second))
		body := `{"acme": true}`
		if _, err := fmt.Fprintf(c, "POST /in/s HTTP/1.1\r\nHost: hooks.example.com\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s", len(body), body); err != nil {
			return nil, err
		}
		return http.ReadResponse(bufio.NewReader(c), nil)
	}

	c, err := tls.Dial("tcp", app.Addr(), &tls.Config{ServerName: "hooks.example.com", InsecureSkipVerify: true, NextProtos: []string{acme.ALPNProto}})
	if err != nil {
		t.Fatalf("acme-tls/1 handshake: got %v, want it completed (the ACME server's validation needs it)", err)
	}
	defer c.Close()
	if resp, err := post(c); err == nil {
		resp.Body.Close()
		t.Errorf("POST /in/s over acme-tls/1 without a client certificate: got %d, want the connection closed unanswered", resp.StatusCode)
	}

	c2, err := tls.Dial("tcp", app.Addr(), &tls.Config{ServerName: "hooks.example.com", RootCAs: p.issuer, Certificates: []tls.Certificate{clientCert}})
	if err != nil {
		t.Fatalf("handshake with a client certificate: %v", err)
	}
	defer c2.Close()
	resp, err := post(c2)
	if err != nil {
		t.Fatalf("POST with a client certificate: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Errorf("POST with a client certificate: got %d, want 200", resp.StatusCode)
	}
}
