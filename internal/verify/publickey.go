package verify

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"math/big"
	"strings"

	// Register the hashes crypto.Hash.New uses.
	_ "crypto/sha256"
	_ "crypto/sha512"

	"hookd/internal/config"
)

// public_key verifies an asymmetric signature (ed25519, RSA PKCS#1 v1.5 or
// PSS, ECDSA) over the same choices of location, signed content and
// timestamp as hmac. Keys are PEM ("PUBLIC KEY", "RSA PUBLIC KEY" or
// "CERTIFICATE") or Standard Webhooks "whpk_" keys; any one verifies.

func init() {
	Register("public_key", newPublicKey)
}

// Public-key algorithms.
const (
	sigAlgEd25519  = "ed25519"
	sigAlgRSAPKCS1 = "rsa_pkcs1v15"
	sigAlgRSAPSS   = "rsa_pss"
	sigAlgECDSA    = "ecdsa"
	sigMinRSABits  = 2048
)

var sigKeyHashes = map[string]crypto.Hash{"sha256": crypto.SHA256, "sha384": crypto.SHA384, "sha512": crypto.SHA512}

func newPublicKey(env *Env, m config.Verify) (Verifier, error) {
	var o sigOptions
	if err := m.Decode(&o); err != nil {
		return nil, err
	}
	if len(o.Secrets) > 0 || o.SecretEncoding != "" {
		return nil, fmt.Errorf("secrets: not an option of public_key (use keys)")
	}
	alg := o.Algorithm
	if alg == "rsa" {
		alg = sigAlgRSAPKCS1
	}
	h := crypto.SHA256
	switch alg {
	case sigAlgEd25519:
		if o.Hash != "" {
			return nil, fmt.Errorf("hash: not an option of ed25519, which signs the message itself")
		}
	case sigAlgRSAPKCS1, sigAlgRSAPSS, sigAlgECDSA:
		if o.Hash != "" {
			var ok bool
			if h, ok = sigKeyHashes[o.Hash]; !ok {
				return nil, fmt.Errorf("hash: unknown (want sha256, sha384 or sha512)")
			}
		}
	case "":
		return nil, fmt.Errorf("algorithm: required (ed25519, rsa_pkcs1v15, rsa_pss or ecdsa)")
	default:
		return nil, fmt.Errorf("algorithm: unknown (want ed25519, rsa_pkcs1v15, rsa_pss or ecdsa)")
	}
	keys, err := sigParsePublicKeys("keys", o.Keys, alg)
	if err != nil {
		return nil, err
	}
	v, tag, err := sigBuild(env, "public_key", &o)
	if err != nil {
		return nil, err
	}
	v.checks = []sigCheck{&sigKeyCheck{tagName: tag, alg: alg, hash: h, keys: keys}}
	return v, nil
}

// sigKeyCheck verifies candidates with public keys.
type sigKeyCheck struct {
	tagName string
	alg     string
	hash    crypto.Hash
	keys    []crypto.PublicKey
}

func (c *sigKeyCheck) tag() string { return c.tagName }

func (c *sigKeyCheck) check(v *sigVerifier, m *sigMessage, cands [][]byte) bool {
	parts := v.render(m, nil)
	var msg, digest []byte
	if c.alg == sigAlgEd25519 {
		msg = parts[0]
		if len(parts) != 1 {
			msg = bytes.Join(parts, nil)
		}
	} else {
		h := c.hash.New()
		for _, p := range parts {
			h.Write(p)
		}
		digest = h.Sum(nil)
	}
	for _, sig := range cands {
		for _, k := range c.keys {
			v.ops.Add(1)
			if c.verifyOne(k, msg, digest, sig) {
				return true
			}
		}
	}
	return false
}

func (c *sigKeyCheck) verifyOne(k crypto.PublicKey, msg, digest, sig []byte) bool {
	switch c.alg {
	case sigAlgEd25519:
		pk := k.(ed25519.PublicKey)
		return len(sig) == ed25519.SignatureSize && ed25519.Verify(pk, msg, sig)
	case sigAlgRSAPKCS1:
		return rsa.VerifyPKCS1v15(k.(*rsa.PublicKey), c.hash, digest, sig) == nil
	case sigAlgRSAPSS:
		return rsa.VerifyPSS(k.(*rsa.PublicKey), c.hash, digest, sig, &rsa.PSSOptions{SaltLength: rsa.PSSSaltLengthAuto}) == nil
	case sigAlgECDSA:
		pk := k.(*ecdsa.PublicKey)
		if ecdsa.VerifyASN1(pk, digest, sig) {
			return true
		}
		// The fixed-size r||s form (JOSE, WebCrypto).
		n := (pk.Curve.Params().BitSize + 7) / 8
		if len(sig) != 2*n {
			return false
		}
		r, s := new(big.Int).SetBytes(sig[:n]), new(big.Int).SetBytes(sig[n:])
		return ecdsa.Verify(pk, digest, r, s)
	}
	return false
}

// sigParsePublicKeys parses a list of keys for alg; each entry is one or more
// PEM blocks, or a "whpk_" key (base64 of a raw ed25519 key).
func sigParsePublicKeys(opt string, list []string, alg string) ([]crypto.PublicKey, error) {
	if len(list) == 0 {
		return nil, fmt.Errorf("%s: at least one public key is required", opt)
	}
	var out []crypto.PublicKey
	for i, s := range list {
		s = strings.TrimSpace(s)
		if s == "" {
			return nil, fmt.Errorf("%s[%d]: empty (is its environment variable set?)", opt, i)
		}
		var keys []crypto.PublicKey
		if rest, ok := strings.CutPrefix(s, "whpk_"); ok {
			b, err := sigDecodeBase64(rest)
			if err != nil || len(b) != ed25519.PublicKeySize {
				return nil, fmt.Errorf("%s[%d]: a whpk_ key is base64 of a 32-byte ed25519 public key", opt, i)
			}
			keys = append(keys, ed25519.PublicKey(b))
		} else {
			rest := []byte(s)
			for {
				var block *pem.Block
				block, rest = pem.Decode(rest)
				if block == nil {
					break
				}
				k, err := sigParsePEM(block)
				if err != nil {
					return nil, fmt.Errorf("%s[%d]: %w", opt, i, err)
				}
				keys = append(keys, k)
			}
			if len(keys) == 0 || len(bytes.TrimSpace(rest)) > 0 {
				return nil, fmt.Errorf("%s[%d]: want PEM public keys (-----BEGIN PUBLIC KEY-----) or a whpk_ key", opt, i)
			}
		}
		for _, k := range keys {
			if err := sigKeyFits(k, alg); err != nil {
				return nil, fmt.Errorf("%s[%d]: %w", opt, i, err)
			}
		}
		out = append(out, keys...)
	}
	return out, nil
}

func sigParsePEM(b *pem.Block) (crypto.PublicKey, error) {
	switch {
	case b.Type == "PUBLIC KEY":
		return x509.ParsePKIXPublicKey(b.Bytes)
	case b.Type == "RSA PUBLIC KEY":
		return x509.ParsePKCS1PublicKey(b.Bytes)
	case b.Type == "CERTIFICATE":
		c, err := x509.ParseCertificate(b.Bytes)
		if err != nil {
			return nil, err
		}
		return c.PublicKey, nil
	case strings.Contains(b.Type, "PRIVATE KEY"):
		return nil, fmt.Errorf("a private key; configure the public key only")
	}
	return nil, fmt.Errorf("unsupported PEM block %q (want PUBLIC KEY, RSA PUBLIC KEY or CERTIFICATE)", b.Type)
}

// sigKeyFits checks that k is a key of alg's type.
func sigKeyFits(k crypto.PublicKey, alg string) error {
	switch k := k.(type) {
	case ed25519.PublicKey:
		if alg == sigAlgEd25519 {
			return nil
		}
	case *rsa.PublicKey:
		if alg == sigAlgRSAPKCS1 || alg == sigAlgRSAPSS {
			if k.N.BitLen() < sigMinRSABits {
				return fmt.Errorf("RSA key of %d bits; at least %d are required", k.N.BitLen(), sigMinRSABits)
			}
			return nil
		}
	case *ecdsa.PublicKey:
		if alg == sigAlgECDSA {
			return nil
		}
	}
	return fmt.Errorf("a %T key does not fit algorithm %s", k, alg)
}
