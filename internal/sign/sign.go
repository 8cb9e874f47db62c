// Package sign signs outbound webhooks the way the Standard Webhooks
// specification asks a sender to: every request carries webhook-id (the
// event id, the same on every retry and replay), webhook-timestamp (unix
// seconds, fresh per attempt) and webhook-signature, a space-separated
// list with one "v1,<base64 HMAC-SHA256>" per whsec_ secret and one
// "v1a,<base64 ed25519>" per whsk_ private key, each computed over
// "{id}.{timestamp}.{body}". During a rotation several secrets are active
// and every one of them signs, so a receiver that knows any one of them
// accepts the request.
//
// A Signer is built once from a Config (New) and is safe for concurrent
// use. Secrets never appear in errors, in String or in log values.
package sign

import (
	"bytes"
	"crypto/ed25519"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Type is the only signing scheme: Standard Webhooks.
const Type = "standard_webhooks"

// Default header names, lower case as the Standard Webhooks specification
// and SPEC §3 spell them.
const (
	DefaultIDHeader        = "webhook-id"
	DefaultTimestampHeader = "webhook-timestamp"
	DefaultSignatureHeader = "webhook-signature"
)

// Secret prefixes (Standard Webhooks).
const (
	// PrefixSecret starts an HMAC-SHA256 secret: "whsec_" + base64.
	PrefixSecret = "whsec_"
	// PrefixPrivateKey starts an ed25519 private key: "whsk_" + base64 of
	// the 64-byte private key or of its 32-byte seed.
	PrefixPrivateKey = "whsk_"
	// PrefixPublicKey starts an ed25519 public key: "whpk_" + base64 of
	// the 32-byte public key. It verifies and cannot sign.
	PrefixPublicKey = "whpk_"
)

// Limits.
const (
	// MaxSecrets caps the secrets of one Config. Receivers bound the
	// entries of a signature header (hookd's own verifier refuses more
	// than 16), and a rotation needs two or three.
	MaxSecrets = 16
	// MinSecretLen and MaxSecretLen bound a whsec_ secret once decoded,
	// as the Standard Webhooks specification recommends (192 to 512 bits).
	MinSecretLen = 24
	MaxSecretLen = 64
	// maxTimestamp is 5001-01-01T00:00:00Z, the first unix time hookd's
	// own verifier refuses (as it refuses such event timestamps); from
	// 10^11 on, Standard Webhooks verifiers would read milliseconds.
	maxTimestamp = 95_649_120_000
)

// Signature version tags.
const (
	tagHMAC    = "v1"
	tagEd25519 = "v1a"
)

// Config is a destination's sign option.
//
//	sign:
//	  type: standard_webhooks
//	  secrets: ["${HOOK_SECRET_NEW}", "${HOOK_SECRET_OLD}"]
type Config struct {
	// Type is the signing scheme: standard_webhooks (the default and the
	// only one).
	Type string `yaml:"type" json:"type"`
	// Secrets are the active signing secrets, each "whsec_" + base64 (an
	// HMAC-SHA256 key of 24 to 64 bytes, signature v1) or "whsk_" + base64
	// (an ed25519 private key of 64 bytes, or its 32-byte seed, signature
	// v1a). Every one signs every request, in this order: list the new
	// secret next to the old one during a rotation. At least one, at most
	// MaxSecrets, no two the same.
	Secrets []string `yaml:"secrets" json:"secrets"`
	// IDHeader names the header carrying the message id. Default
	// webhook-id; set it (with the two others) for a receiver that
	// expects another sender's names, such as svix-id.
	IDHeader string `yaml:"id_header,omitempty" json:"id_header,omitempty"`
	// TimestampHeader names the header carrying the timestamp. Default
	// webhook-timestamp.
	TimestampHeader string `yaml:"timestamp_header,omitempty" json:"timestamp_header,omitempty"`
	// SignatureHeader names the header carrying the signatures. Default
	// webhook-signature.
	SignatureHeader string `yaml:"signature_header,omitempty" json:"signature_header,omitempty"`
}

// Validate checks c. Errors name the field at fault (secrets[1]: …) and
// never include a secret's value.
func (c Config) Validate() error {
	_, err := New(c)
	return err
}

// Redacted returns a copy of c safe to show (API answers, logs): each
// secret is replaced by its prefix and "[redacted]".
func (c Config) Redacted() Config {
	out := c
	out.Secrets = make([]string, len(c.Secrets))
	for i, s := range c.Secrets {
		s = strings.TrimSpace(s)
		switch {
		case strings.HasPrefix(s, PrefixSecret):
			out.Secrets[i] = PrefixSecret + "[redacted]"
		case strings.HasPrefix(s, PrefixPrivateKey):
			out.Secrets[i] = PrefixPrivateKey + "[redacted]"
		default:
			out.Secrets[i] = "[redacted]"
		}
	}
	return out
}

// String describes c with its secrets redacted, so that printing a Config
// by mistake does not reveal them.
func (c Config) String() string {
	r := c.Redacted()
	return fmt.Sprintf("sign.Config{type: %s, secrets: [%s], id_header: %s, timestamp_header: %s, signature_header: %s}",
		r.Type, strings.Join(r.Secrets, " "), r.IDHeader, r.TimestampHeader, r.SignatureHeader)
}

// GoString is String, for %#v.
func (c Config) GoString() string { return c.String() }

// LogValue logs c with its secrets redacted.
func (c Config) LogValue() slog.Value {
	r := c.Redacted()
	return slog.GroupValue(
		slog.String("type", r.Type),
		slog.Any("secrets", r.Secrets),
		slog.String("id_header", r.IDHeader),
		slog.String("timestamp_header", r.TimestampHeader),
		slog.String("signature_header", r.SignatureHeader),
	)
}

// key is one active secret: an HMAC key or an ed25519 private key.
type key struct {
	mac  []byte
	priv ed25519.PrivateKey
}

// Signer signs requests with every secret of a Config. It is immutable and
// safe for concurrent use.
type Signer struct {
	idHeader, tsHeader, sigHeader string
	keys                          []key
}

// New validates c and returns its Signer. Errors name the field at fault
// and never include a secret's value.
func New(c Config) (*Signer, error) {
	switch c.Type {
	case "", Type:
	default:
		return nil, fmt.Errorf("type: unknown (want %s)", Type)
	}
	s := &Signer{
		idHeader:  orDefault(c.IDHeader, DefaultIDHeader),
		tsHeader:  orDefault(c.TimestampHeader, DefaultTimestampHeader),
		sigHeader: orDefault(c.SignatureHeader, DefaultSignatureHeader),
	}
	names := []struct{ field, name string }{
		{"id_header", s.idHeader}, {"timestamp_header", s.tsHeader}, {"signature_header", s.sigHeader},
	}
	for i, n := range names {
		if err := checkHeaderName(n.name); err != nil {
			return nil, fmt.Errorf("%s: %w", n.field, err)
		}
		for _, m := range names[:i] {
			if strings.EqualFold(n.name, m.name) {
				return nil, fmt.Errorf("%s: the same header as %s", n.field, m.field)
			}
		}
	}
	if len(c.Secrets) == 0 {
		return nil, errors.New("secrets: at least one secret is required (whsec_… or whsk_…)")
	}
	if len(c.Secrets) > MaxSecrets {
		return nil, fmt.Errorf("secrets: %d secrets, at most %d (receivers refuse longer signature headers)", len(c.Secrets), MaxSecrets)
	}
	for i, raw := range c.Secrets {
		k, err := parseSecret(raw)
		if err != nil {
			return nil, fmt.Errorf("secrets[%d]: %w", i, err)
		}
		for j, prev := range s.keys {
			if sameKey(k, prev) {
				return nil, fmt.Errorf("secrets[%d]: the same secret as secrets[%d]", i, j)
			}
		}
		s.keys = append(s.keys, k)
	}
	return s, nil
}

func orDefault(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

// reservedHeaders are headers a header override may not name: the ones
// that frame the request or that the http destination sets itself.
var reservedHeaders = map[string]bool{
	"content-type": true, "content-length": true, "content-encoding": true, "transfer-encoding": true,
	"host": true, "connection": true, "keep-alive": true, "proxy-connection": true, "upgrade": true,
	"te": true, "trailer": true, "authorization": true, "user-agent": true,
}

// checkHeaderName checks an override: an RFC 9110 token, neither a framing
// header nor one of hookd's own Hookd-* headers. The error does not quote
// the name.
func checkHeaderName(name string) error {
	if name == "" || len(name) > 256 {
		return errors.New("not a valid header name")
	}
	for i := 0; i < len(name); i++ {
		if !isTokenChar(name[i]) {
			return errors.New("not a valid header name (letters, digits and !#$%&'*+-.^_`|~ only)")
		}
	}
	lower := strings.ToLower(name)
	if reservedHeaders[lower] {
		return errors.New("a header hookd or HTTP sets itself")
	}
	if strings.HasPrefix(lower, "hookd-") {
		return errors.New("a Hookd-* header is hookd's own")
	}
	return nil
}

func isTokenChar(c byte) bool {
	switch {
	case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		return true
	}
	return strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0
}

// parseSecret decodes one whsec_ or whsk_ secret. Errors never include it.
func parseSecret(raw string) (key, error) {
	s := strings.TrimSpace(raw)
	if s == "" {
		return key{}, errors.New("empty (is its environment variable set?)")
	}
	switch {
	case strings.HasPrefix(s, PrefixSecret):
		b, ok := decodeBase64(s[len(PrefixSecret):])
		if !ok {
			return key{}, errors.New("a whsec_ secret is whsec_ followed by base64")
		}
		if len(b) < MinSecretLen || len(b) > MaxSecretLen {
			return key{}, fmt.Errorf("a whsec_ secret must decode to %d to %d bytes, not %d", MinSecretLen, MaxSecretLen, len(b))
		}
		return key{mac: b}, nil
	case strings.HasPrefix(s, PrefixPrivateKey):
		b, ok := decodeBase64(s[len(PrefixPrivateKey):])
		if !ok {
			return key{}, errors.New("a whsk_ key is whsk_ followed by base64")
		}
		switch len(b) {
		case ed25519.SeedSize:
			return key{priv: ed25519.NewKeyFromSeed(b)}, nil
		case ed25519.PrivateKeySize:
			priv := ed25519.NewKeyFromSeed(b[:ed25519.SeedSize])
			if !bytes.Equal(priv, b) {
				return key{}, errors.New("not an ed25519 private key: its public half does not match its seed")
			}
			return key{priv: priv}, nil
		}
		return key{}, fmt.Errorf("a whsk_ key must decode to an ed25519 private key (64 bytes) or seed (32 bytes), not %d bytes", len(b))
	case strings.HasPrefix(s, PrefixPublicKey):
		return key{}, errors.New("a whpk_ public key cannot sign: configure the whsk_ private key here and give the whpk_ key to receivers")
	}
	return key{}, errors.New("want whsec_<base64> (HMAC-SHA256) or whsk_<base64> (ed25519 private key)")
}

// decodeBase64 decodes standard base64, padded or not.
func decodeBase64(s string) ([]byte, bool) {
	b, err := base64.StdEncoding.DecodeString(s)
	if err != nil {
		b, err = base64.RawStdEncoding.DecodeString(s)
	}
	return b, err == nil && len(b) > 0
}

func sameKey(a, b key) bool {
	if a.mac != nil || b.mac != nil {
		return a.mac != nil && b.mac != nil && hmac.Equal(a.mac, b.mac)
	}
	return hmac.Equal(a.priv, b.priv)
}

// Headers are the headers of one signed request, by name as configured
// (lower case by default).
type Headers map[string]string

// Apply sets the headers on h under their names exactly as written (not
// canonicalised, as SPEC §3 spells them), first removing any value h holds
// under the same names in another case so that each is sent once.
func (hs Headers) Apply(h http.Header) {
	for name, v := range hs {
		for k := range h {
			if strings.EqualFold(k, name) {
				delete(h, k)
			}
		}
		h[name] = []string{v}
	}
}

// Sign returns the id, timestamp and signature headers for one attempt at
// delivering body. id is the event id (the same on every retry and
// replay); ts is the attempt's time, sent as unix seconds. Every secret
// signs, in configuration order.
//
// Sign fails only for an id or time that the headers could not carry
// faithfully: an id that is empty, not printable ASCII, or starts or ends
// with a space (a receiver would see, and verify, another id), or a time
// before 1970 or from the year 5001 on.
func (s *Signer) Sign(id string, ts time.Time, body []byte) (Headers, error) {
	if err := checkID(id); err != nil {
		return nil, err
	}
	sec := ts.Unix()
	if sec < 0 || sec >= maxTimestamp {
		return nil, errors.New("sign: timestamp out of range (1970 to 5000)")
	}
	tsStr := strconv.FormatInt(sec, 10)
	return Headers{
		s.idHeader:  id,
		s.tsHeader:  tsStr,
		s.sigHeader: s.signature(id, tsStr, body),
	}, nil
}

// signature returns the signature header's value for the signed content
// "{id}.{timestamp}.{body}".
func (s *Signer) signature(id, ts string, body []byte) string {
	msg := make([]byte, 0, len(id)+len(ts)+2+len(body))
	msg = append(msg, id...)
	msg = append(msg, '.')
	msg = append(msg, ts...)
	msg = append(msg, '.')
	msg = append(msg, body...)

	var b strings.Builder
	for i, k := range s.keys {
		if i > 0 {
			b.WriteByte(' ')
		}
		if k.mac != nil {
			m := hmac.New(sha256.New, k.mac)
			m.Write(msg)
			b.WriteString(tagHMAC + ",")
			b.WriteString(base64.StdEncoding.EncodeToString(m.Sum(nil)))
		} else {
			b.WriteString(tagEd25519 + ",")
			b.WriteString(base64.StdEncoding.EncodeToString(ed25519.Sign(k.priv, msg)))
		}
	}
	return b.String()
}

// checkID checks that id travels unchanged as a header value.
func checkID(id string) error {
	if id == "" {
		return errors.New("sign: empty message id")
	}
	for i := 0; i < len(id); i++ {
		if id[i] < 0x20 || id[i] > 0x7e {
			return errors.New("sign: message id holds a byte other than printable ASCII")
		}
	}
	if id[0] == ' ' || id[len(id)-1] == ' ' {
		return errors.New("sign: message id starts or ends with a space")
	}
	return nil
}

// HeaderNames returns the names of the id, timestamp and signature headers.
func (s *Signer) HeaderNames() (id, timestamp, signature string) {
	return s.idHeader, s.tsHeader, s.sigHeader
}

// PublicKeys returns the public keys of the ed25519 secrets, "whpk_" +
// base64, in configuration order: what an operator gives receivers so
// that they verify v1a signatures without being able to sign. It is empty
// when every secret is a whsec_ secret.
func (s *Signer) PublicKeys() []string {
	var out []string
	for _, k := range s.keys {
		if k.priv != nil {
			pub := k.priv.Public().(ed25519.PublicKey)
			out = append(out, PrefixPublicKey+base64.StdEncoding.EncodeToString(pub))
		}
	}
	return out
}

// counts returns how many HMAC and ed25519 secrets s holds.
func (s *Signer) counts() (nmac, ned int) {
	for _, k := range s.keys {
		if k.mac != nil {
			nmac++
		} else {
			ned++
		}
	}
	return nmac, ned
}

// String describes s without its secrets.
func (s *Signer) String() string {
	nmac, ned := s.counts()
	return fmt.Sprintf("sign.Signer{type: %s, v1: %d, v1a: %d, headers: %s %s %s}", Type, nmac, ned, s.idHeader, s.tsHeader, s.sigHeader)
}

// GoString is String, for %#v.
func (s *Signer) GoString() string { return s.String() }

// LogValue logs s without its secrets.
func (s *Signer) LogValue() slog.Value {
	nmac, ned := s.counts()
	return slog.GroupValue(slog.String("type", Type), slog.Int("v1", nmac), slog.Int("v1a", ned))
}
