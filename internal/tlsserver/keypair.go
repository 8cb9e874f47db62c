package tlsserver

import (
	"crypto/sha256"
	"crypto/tls"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"
)

// keyPair is a certificate and key read from files, read again when
// they change. A handshake takes the pair in service; at most every
// `every`, one handshake first reads the files and, when their content
// changed and loads as a valid pair, puts the new pair in service. A
// connection keeps the certificate it was handshaken with: nothing is
// closed. A replacement that does not load (a key that does not match,
// a half-written file, an expired certificate) leaves the current pair in
// service, and the reason is logged once for each such content.
type keyPair struct {
	certFile, keyFile string
	every             time.Duration
	log               *slog.Logger
	now               func() time.Time

	cur  atomic.Pointer[tls.Certificate]
	next atomic.Int64 // when the files are read again, UnixNano

	mu      sync.Mutex // held by the handshake that reads the files
	sum     [32]byte   // of the files of cur
	refused [32]byte   // of the files last refused (and logged)
	failed  string     // the last read error logged
}

func newKeyPair(certFile, keyFile string, every time.Duration, log *slog.Logger) (*keyPair, error) {
	if every <= 0 {
		every = DefaultReloadEvery
	}
	k := &keyPair{certFile: certFile, keyFile: keyFile, every: every, log: log, now: time.Now}
	certPEM, err := readFile(certFile)
	if err != nil {
		return nil, fmt.Errorf("server.tls.cert_file: %w", err)
	}
	keyPEM, err := readFile(keyFile)
	if err != nil {
		return nil, fmt.Errorf("server.tls.key_file: %w", err)
	}
	c, err := k.load(certPEM, keyPEM)
	if err != nil {
		return nil, fmt.Errorf("server.tls: %s and %s: %w", certFile, keyFile, err)
	}
	k.cur.Store(c)
	k.sum = digest(certPEM, keyPEM)
	k.next.Store(k.now().Add(every).UnixNano())
	return k, nil
}

// getCertificate is the tls.Config's GetCertificate.
func (k *keyPair) getCertificate(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	if k.now().UnixNano() >= k.next.Load() && k.mu.TryLock() {
		// The other handshakes meanwhile take the pair in service.
		k.check()
		k.next.Store(k.now().Add(k.every).UnixNano())
		k.mu.Unlock()
	}
	return k.cur.Load(), nil
}

// check reads the files and puts a changed, valid pair in service.
func (k *keyPair) check() {
	certPEM, err := readFile(k.certFile)
	if err == nil {
		var keyPEM []byte
		if keyPEM, err = readFile(k.keyFile); err == nil {
			k.failed = ""
			k.consider(certPEM, keyPEM)
			return
		}
	}
	if msg := err.Error(); msg != k.failed {
		k.failed = msg
		k.log.Error("tls: could not read the certificate files; the current certificate stays in service", "err", err)
	}
}

func (k *keyPair) consider(certPEM, keyPEM []byte) {
	sum := digest(certPEM, keyPEM)
	if sum == k.sum || sum == k.refused {
		return
	}
	c, err := k.load(certPEM, keyPEM)
	if err != nil {
		k.refused = sum
		k.log.Error("tls: the certificate files changed but do not load; the current certificate stays in service",
			"cert_file", k.certFile, "key_file", k.keyFile, "err", err)
		return
	}
	k.cur.Store(c)
	k.sum = sum
	k.log.Info("tls: certificate reloaded", "cert_file", k.certFile, "subject", c.Leaf.Subject.String(), "not_after", c.Leaf.NotAfter.UTC().Format(time.RFC3339))
}

// load parses a pair and refuses a certificate that is not valid now.
func (k *keyPair) load(certPEM, keyPEM []byte) (*tls.Certificate, error) {
	c, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return nil, err
	}
	now := k.now()
	if now.After(c.Leaf.NotAfter) {
		return nil, fmt.Errorf("the certificate expired at %s", c.Leaf.NotAfter.UTC().Format(time.RFC3339))
	}
	if now.Before(c.Leaf.NotBefore) {
		return nil, fmt.Errorf("the certificate is not valid before %s", c.Leaf.NotBefore.UTC().Format(time.RFC3339))
	}
	return &c, nil
}

// digest identifies the content of both files.
func digest(certPEM, keyPEM []byte) [32]byte {
	h := sha256.New()
	fmt.Fprintf(h, "%d:", len(certPEM))
	h.Write(certPEM)
	h.Write(keyPEM)
	var s [32]byte
	copy(s[:], h.Sum(nil))
	return s
}
