// Package secret encrypts the values hookd keeps at rest (signing secrets,
// destination credentials) with envelope encryption under a master key
// from config, and provides redacting helpers so those values are never
// logged or rendered by accident.
//
// Each value gets its own random 256-bit data key. The value is encrypted
// with that data key (AES-256-GCM, random nonce, bound to caller-chosen
// associated data), and the data key is wrapped with the active master key
// (AES-256-GCM, random nonce, bound to the master key id). The result is a
// printable token:
//
//	hk1.<key-id>.<base64url(wrapped data key)>.<base64url(nonce|ciphertext|tag)>
//
// where base64url is unpadded RFC 4648 §5, the wrapped data key is
// nonce(12) | AES-GCM(master key, data key)(32) | tag(16), i.e. 60 bytes, and
// the value segment is nonce(12) | ciphertext(len(plaintext)) | tag(16).
// The wrapping's associated data is "hookd/secret/hk1/wrap\x00" + key id; the
// value's is "hookd/secret/hk1/value\x00" + the caller's associated data.
//
// Rotation: put a new key first in the keyring (it becomes active), keep the
// old one after it, Rewrap every stored token, then drop the old key.
// Rewrap changes only the wrapped-key segment; the value is never
// re-encrypted and the data key never leaves memory.
//
// See docs/secrets.md.
package secret

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"strings"
)

const (
	// Version is the first segment of every token this package produces.
	Version = "hk1"

	// MasterKeyLen is the length in bytes of a master key (AES-256).
	MasterKeyLen = 32

	// MaxKeyIDLen is the longest key id accepted.
	MaxKeyIDLen = 64

	// MaxTokenLen is the longest token Open, Rewrap and NeedsRewrap accept;
	// longer input is refused before any decoding.
	MaxTokenLen = 64 << 10

	// MaxPlaintextLen is the largest value Seal accepts, chosen so that
	// every sealed token fits in MaxTokenLen.
	MaxPlaintextLen = 32 << 10

	dataKeyLen     = 32
	gcmOverhead    = 12 + 16 // random nonce prefix + tag
	wrappedKeyLen  = dataKeyLen + gcmOverhead
	wrapADPrefix   = "hookd/secret/" + Version + "/wrap\x00"
	valueADPrefix  = "hookd/secret/" + Version + "/value\x00"
	tokenSegments  = 4
	tokenSeparator = "."
)

var b64 = base64.RawURLEncoding.Strict()

// Errors returned by this package; test with errors.Is. No error produced
// here contains plaintext, data keys or master key material.
var (
	// ErrMalformed means the token is not a well-formed hk1 token.
	ErrMalformed = errors.New("secret: malformed token")
	// ErrTooLarge means the token or plaintext exceeds the size limit.
	ErrTooLarge = errors.New("secret: too large")
	// ErrUnknownKey means the token names a master key id the keyring
	// does not hold; the error message names the id.
	ErrUnknownKey = errors.New("secret: unknown master key id")
	// ErrDecrypt means authentication failed: wrong master key, wrong
	// associated data, or a tampered token.
	ErrDecrypt = errors.New("secret: cannot decrypt (wrong key, wrong associated data, or tampered token)")
)

type masterKey struct {
	id   string
	aead cipher.AEAD
}

// Keyring holds master keys by id. The first key is active: Seal and
// Rewrap use it. The others only open and rewrap tokens made under them.
// A Keyring is safe for concurrent use. Its String, GoString and LogValue
// show key ids only, never key material.
type Keyring struct {
	keys   map[string]*masterKey
	order  []string
	active *masterKey
}

// ParseKeyring builds a keyring from specs of the form
// "<key-id>:<base64 of 32 bytes>" (standard base64, padded; as made by
// GenerateMasterKey). specs[0] is the active key. Key ids are 1 to
// MaxKeyIDLen characters of A-Z a-z 0-9 '_' '-', and must be unique.
// Surrounding whitespace is ignored. Errors name the index (and the id
// when it parsed), never the key material.
func ParseKeyring(specs []string) (*Keyring, error) {
	if len(specs) == 0 {
		return nil, errors.New("secret: no master keys given")
	}
	kr := &Keyring{keys: make(map[string]*masterKey, len(specs))}
	for i, spec := range specs {
		spec = strings.TrimSpace(spec)
		id, material, ok := strings.Cut(spec, ":")
		if !ok {
			return nil, fmt.Errorf("secret: master key %d: want \"<key-id>:<base64 key>\"", i)
		}
		if !validKeyID(id) {
			return nil, fmt.Errorf("secret: master key %d: invalid key id (want 1 to %d of A-Z a-z 0-9 _ -)", i, MaxKeyIDLen)
		}
		if _, dup := kr.keys[id]; dup {
			return nil, fmt.Errorf("secret: master key %d: duplicate key id %q", i, id)
		}
		raw, err := base64.StdEncoding.Strict().DecodeString(material)
		if err != nil {
			// err from base64 carries an offset only, but keep it out anyway.
			return nil, fmt.Errorf("secret: master key %d (id %q): key is not valid standard base64", i, id)
		}
		if len(raw) != MasterKeyLen {
			return nil, fmt.Errorf("secret: master key %d (id %q): key is %d bytes, want %d", i, id, len(raw), MasterKeyLen)
		}
		if allZero(raw) {
			return nil, fmt.Errorf("secret: master key %d (id %q): key is all zero bytes", i, id)
		}
		aead, err := newAEAD(raw)
		clear(raw)
		if err != nil {
			return nil, fmt.Errorf("secret: master key %d (id %q): %w", i, id, err)
		}
		mk := &masterKey{id: id, aead: aead}
		kr.keys[id] = mk
		kr.order = append(kr.order, id)
		if i == 0 {
			kr.active = mk
		}
	}
	return kr, nil
}

// GenerateMasterKey returns a new master key spec "<id>:<base64 of 32
// random bytes>" for ParseKeyring. id must be a valid key id (see
// ParseKeyring), or ParseKeyring will refuse the result.
func GenerateMasterKey(id string) string {
	b := make([]byte, MasterKeyLen)
	// crypto/rand.Read never returns an error (Go 1.24+); keep the check
	// so a future change cannot silently yield a zero key.
	if _, err := rand.Read(b); err != nil {
		panic("secret: crypto/rand failed: " + err.Error())
	}
	s := id + ":" + base64.StdEncoding.EncodeToString(b)
	clear(b)
	return s
}

// ActiveID returns the id of the key Seal and Rewrap use.
func (kr *Keyring) ActiveID() string { return kr.active.id }

// IDs returns the key ids in order, active first.
func (kr *Keyring) IDs() []string { return append([]string(nil), kr.order...) }

// String shows the key ids only.
func (kr *Keyring) String() string {
	return fmt.Sprintf("secret.Keyring{active: %s, ids: [%s]}", kr.active.id, strings.Join(kr.order, " "))
}

// GoString shows the key ids only.
func (kr *Keyring) GoString() string { return kr.String() }

// LogValue shows the key ids only.
func (kr *Keyring) LogValue() slog.Value {
	return slog.GroupValue(slog.String("active", kr.active.id), slog.Any("ids", kr.order))
}

// Seal encrypts plaintext under a fresh data key wrapped with the active
// master key and returns an hk1 token. associatedData names the value's
// place (for example "destination:claims-service:auth.client_secret"):
// Open must be given the same bytes. It is authenticated, not encrypted,
// and not stored in the token.
func (kr *Keyring) Seal(plaintext, associatedData []byte) (string, error) {
	if len(plaintext) > MaxPlaintextLen {
		return "", fmt.Errorf("seal: plaintext of %d bytes exceeds %d: %w", len(plaintext), MaxPlaintextLen, ErrTooLarge)
	}
	dataKey := make([]byte, dataKeyLen)
	defer clear(dataKey)
	if _, err := rand.Read(dataKey); err != nil {
		return "", fmt.Errorf("seal: data key: %w", err)
	}
	valueAEAD, err := newAEAD(dataKey)
	if err != nil {
		return "", fmt.Errorf("seal: %w", err)
	}
	value := valueAEAD.Seal(nil, nil, plaintext, valueAD(associatedData))
	wrapped := kr.active.aead.Seal(nil, nil, dataKey, wrapAD(kr.active.id))
	return formatToken(kr.active.id, wrapped, value), nil
}

// Open decrypts a token made by Seal (or Rewrap) with the same associated
// data. It fails with ErrTooLarge, ErrMalformed, ErrUnknownKey (naming the
// id) or ErrDecrypt, and never panics on arbitrary input.
func (kr *Keyring) Open(token string, associatedData []byte) ([]byte, error) {
	t, err := parseToken(token)
	if err != nil {
		return nil, fmt.Errorf("open: %w", err)
	}
	dataKey, err := kr.unwrap(t)
	if err != nil {
		return nil, fmt.Errorf("open: %w", err)
	}
	defer clear(dataKey)
	valueAEAD, err := newAEAD(dataKey)
	if err != nil {
		return nil, fmt.Errorf("open: %w", err)
	}
	plaintext, err := valueAEAD.Open(nil, nil, t.value, valueAD(associatedData))
	if err != nil {
		return nil, fmt.Errorf("open: value: %w", ErrDecrypt)
	}
	return plaintext, nil
}

// Rewrap returns token with its data key re-wrapped under the active
// master key. The value segment is carried over byte for byte: the value
// is not decrypted and its data key does not change, so Rewrap needs no
// associated data (the value's integrity is checked when it is opened). A
// token already under the active key is checked and returned unchanged.
func (kr *Keyring) Rewrap(token string) (string, error) {
	t, err := parseToken(token)
	if err != nil {
		return "", fmt.Errorf("rewrap: %w", err)
	}
	dataKey, err := kr.unwrap(t)
	if err != nil {
		return "", fmt.Errorf("rewrap: %w", err)
	}
	defer clear(dataKey)
	if t.keyID == kr.active.id {
		return token, nil
	}
	wrapped := kr.active.aead.Seal(nil, nil, dataKey, wrapAD(kr.active.id))
	return formatToken(kr.active.id, wrapped, t.value), nil
}

// NeedsRewrap reports whether token should be passed to Rewrap: it is not
// a well-formed token under the active key. A malformed token reports true
// so that a rotation job hands it to Rewrap, which reports the error,
// rather than skipping it silently. NeedsRewrap decrypts nothing.
func (kr *Keyring) NeedsRewrap(token string) bool {
	t, err := parseToken(token)
	if err != nil {
		return true
	}
	return t.keyID != kr.active.id
}

func (kr *Keyring) unwrap(t token) ([]byte, error) {
	mk, ok := kr.keys[t.keyID]
	if !ok {
		// t.keyID passed validKeyID: short, printable, not secret.
		return nil, fmt.Errorf("%w %q (keyring holds %s)", ErrUnknownKey, t.keyID, strings.Join(kr.order, ", "))
	}
	dataKey, err := mk.aead.Open(nil, nil, t.wrapped, wrapAD(t.keyID))
	if err != nil || len(dataKey) != dataKeyLen {
		return nil, fmt.Errorf("data key under %q: %w", t.keyID, ErrDecrypt)
	}
	return dataKey, nil
}

type token struct {
	keyID   string
	wrapped []byte
	value   []byte
}

func formatToken(keyID string, wrapped, value []byte) string {
	return Version + tokenSeparator + keyID + tokenSeparator +
		b64.EncodeToString(wrapped) + tokenSeparator + b64.EncodeToString(value)
}

// parseToken checks size first, then the alphabet, then the shape, and
// decodes last. Strict unpadded base64url over a checked alphabet is a
// canonical encoding: each byte string has exactly one accepted spelling
// (the decoder would otherwise skip '\r' and '\n').
func parseToken(s string) (token, error) {
	if len(s) > MaxTokenLen {
		return token{}, fmt.Errorf("token of %d bytes exceeds %d: %w", len(s), MaxTokenLen, ErrTooLarge)
	}
	for i := 0; i < len(s); i++ {
		if !isB64URL(s[i]) && s[i] != '.' {
			return token{}, fmt.Errorf("%w: unexpected byte at offset %d", ErrMalformed, i)
		}
	}
	parts := strings.Split(s, tokenSeparator)
	if len(parts) != tokenSegments {
		return token{}, fmt.Errorf("%w: want %d dot-separated segments, got %d", ErrMalformed, tokenSegments, len(parts))
	}
	if parts[0] != Version {
		return token{}, fmt.Errorf("%w: unknown version (want %s)", ErrMalformed, Version)
	}
	if !validKeyID(parts[1]) {
		return token{}, fmt.Errorf("%w: invalid key id", ErrMalformed)
	}
	wrapped, err := b64.DecodeString(parts[2])
	if err != nil || len(wrapped) != wrappedKeyLen {
		return token{}, fmt.Errorf("%w: wrapped data key segment", ErrMalformed)
	}
	value, err := b64.DecodeString(parts[3])
	if err != nil || len(value) < gcmOverhead {
		return token{}, fmt.Errorf("%w: value segment", ErrMalformed)
	}
	return token{keyID: parts[1], wrapped: wrapped, value: value}, nil
}

// newAEAD returns AES-256-GCM that draws a random 96-bit nonce per Seal
// and prefixes it to the output.
func newAEAD(key []byte) (cipher.AEAD, error) {
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, fmt.Errorf("aes: %w", err)
	}
	aead, err := cipher.NewGCMWithRandomNonce(block)
	if err != nil {
		return nil, fmt.Errorf("gcm: %w", err)
	}
	return aead, nil
}

func wrapAD(keyID string) []byte { return []byte(wrapADPrefix + keyID) }

func valueAD(ad []byte) []byte {
	out := make([]byte, 0, len(valueADPrefix)+len(ad))
	return append(append(out, valueADPrefix...), ad...)
}

func validKeyID(id string) bool {
	if id == "" || len(id) > MaxKeyIDLen {
		return false
	}
	for i := 0; i < len(id); i++ {
		if !isB64URL(id[i]) {
			return false
		}
	}
	return true
}

func isB64URL(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '_'
}

func allZero(b []byte) bool {
	for _, c := range b {
		if c != 0 {
			return false
		}
	}
	return true
}
