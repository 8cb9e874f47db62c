package cli

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"io"
	"log"
	"log/slog"
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
