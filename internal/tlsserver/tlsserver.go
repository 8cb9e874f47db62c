// Package tlsserver makes the TLS configuration of hookd's listener
// (server.tls, docs/TLS.md): TLS 1.2 at least, HTTP/1.1, a certificate
// read from files and read again when they change, or obtained and renewed
// from an ACME server; and, when configured, client certificates required
// and verified.
//
// ACME uses golang.org/x/crypto/acme/autocert: its client takes any
// http.Client, so every request to the ACME server goes through hookd's
// egress guard; it answers the tls-alpn-01 challenge on the listener
// itself and keeps its account and certificates in a directory.
package tlsserver

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"time"

	"golang.org/x/crypto/acme"
	"golang.org/x/crypto/acme/autocert"

	"hookd/internal/config"
	"hookd/internal/egress"
)

// Options are what New needs besides server.tls.
type Options struct {
	// DataDir is storage.path: ACME's storage defaults to DataDir/acme.
	DataDir string
	// Guard dials the ACME server.
	Guard *egress.Guard
	// Log gets certificate reloads and refusals, and ACME failures.
	Log *slog.Logger
	// ReloadEvery is how often, at most, the certificate files are
	// checked for a change; 0 is DefaultReloadEvery.
	ReloadEvery time.Duration
}

// DefaultReloadEvery is how often, at most, the certificate files are
// checked (on a handshake) for a change.
const DefaultReloadEvery = 2 * time.Second

// maxPEM bounds a certificate, key or CA file read.
const maxPEM = 1 << 20

// Server is the TLS side of the listener.
type Server struct {
	cfg  *tls.Config
	acme *autocert.Manager
	// domains are ACME's, obtained by Prefetch.
	domains []string
	log     *slog.Logger
}

// New reads the files server.tls names and returns the listener's TLS
// configuration. Errors name the key of the file or value at fault.
func New(c *config.TLS, o Options) (*Server, error) {
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	s := &Server{log: o.Log}
	cfg := &tls.Config{
		MinVersion: tls.VersionTLS12,
		// net/http serves HTTP/2 only on a *tls.Conn it handshakes itself,
		// which the listener cannot give it (see httpserver.NewTLSListener):
		// only HTTP/1.1 is offered.
		NextProtos: []string{"http/1.1"},
	}
	if c.ClientCAFile != "" {
		pool, err := readPool(c.ClientCAFile)
		if err != nil {
			return nil, fmt.Errorf("server.tls.client_ca_file: %w", err)
		}
		cfg.ClientCAs = pool
		cfg.ClientAuth = tls.RequireAndVerifyClientCert
	}
	if c.ACME == nil {
		kp, err := newKeyPair(c.CertFile, c.KeyFile, o.ReloadEvery, o.Log)
		if err != nil {
			return nil, err
		}
		cfg.GetCertificate = kp.getCertificate
		s.cfg = cfg
		return s, nil
	}
	a := c.ACME
	if err := o.Guard.CheckURL(a.Directory); err != nil {
		return nil, fmt.Errorf("server.tls.acme.directory: %w (a private ACME server needs its address in egress.allow_private)", err)
	}
	tr := o.Guard.Transport()
	if a.CARootFile != "" {
		pool, err := readPool(a.CARootFile)
		if err != nil {
			return nil, fmt.Errorf("server.tls.acme.ca_root_file: %w", err)
		}
		tr.TLSClientConfig.RootCAs = pool
	}
	s.domains = a.Domains
	s.acme = &autocert.Manager{
		Prompt:     autocert.AcceptTOS,
		Cache:      autocert.DirCache(a.StorageDir(o.DataDir)),
		HostPolicy: autocert.HostWhitelist(a.Domains...),
		Email:      a.Email,
		Client: &acme.Client{
			DirectoryURL: a.Directory,
			HTTPClient:   &http.Client{Transport: tr, CheckRedirect: egress.NoRedirect, Timeout: time.Minute},
			UserAgent:    "hookd",
		},
	}
	cfg.GetCertificate = s.acme.GetCertificate
	cfg.NextProtos = append(cfg.NextProtos, acme.ALPNProto)
	if cfg.ClientAuth != tls.NoClientCert {
		// The ACME server's tls-alpn-01 validation presents no client
		// certificate; it gets nothing but the challenge's certificate,
		// and the listener (httpserver.NewTLSListener) closes a
		// connection that negotiated acme-tls/1 after its handshake.
		challenge := cfg.Clone()
		challenge.ClientAuth, challenge.ClientCAs = tls.NoClientCert, nil
		challenge.NextProtos = []string{acme.ALPNProto}
		cfg.GetConfigForClient = func(h *tls.ClientHelloInfo) (*tls.Config, error) {
			if len(h.SupportedProtos) == 1 && h.SupportedProtos[0] == acme.ALPNProto {
				return challenge, nil
			}
			return nil, nil
		}
	}
	s.cfg = cfg
	return s, nil
}

// Config is the listener's TLS configuration.
func (s *Server) Config() *tls.Config { return s.cfg }

// Prefetch obtains the ACME certificates now (or loads them from the
// storage), so that the first client does not wait for them; failures are
// logged, and each handshake tries again. It returns when every domain has
// been tried; without ACME at once.
func (s *Server) Prefetch(ctx context.Context) {
	for _, d := range s.domains {
		if ctx.Err() != nil {
			return
		}
		// The hello of a client that takes ECDSA, as every current one
		// does: the certificate most handshakes will ask for.
		_, err := s.acme.GetCertificate(&tls.ClientHelloInfo{
			ServerName:       d,
			SignatureSchemes: []tls.SignatureScheme{tls.ECDSAWithP256AndSHA256},
			SupportedCurves:  []tls.CurveID{tls.CurveP256},
			CipherSuites:     []uint16{tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256},
		})
		if err != nil {
			s.log.Error("tls: could not obtain a certificate from the ACME server; each handshake tries again", "domain", d, "err", err)
		} else {
			s.log.Info("tls: certificate ready", "domain", d)
		}
	}
}

// readPool reads a PEM bundle of CA certificates.
func readPool(path string) (*x509.CertPool, error) {
	b, err := readFile(path)
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(b) {
		return nil, fmt.Errorf("%s holds no PEM certificate", path)
	}
	return pool, nil
}

// readFile reads at most maxPEM bytes of path.
func readFile(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxPEM+1))
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	if len(b) > maxPEM {
		return nil, fmt.Errorf("%s is larger than %d bytes", path, maxPEM)
	}
	return b, nil
}
