package verify

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha512"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"math/big"
	"strings"
	"sync"
	"testing"
	"time"

	"hookd"
)

// sigKeys are the key pairs of the public-key tests: index 0 and 1 are a
// rotation pair, 2 is the wrong key.
type sigKeys struct {
	ed25519           [3]ed25519.PrivateKey
	ed25519PEM        [3]string
	ed25519PrivatePEM string
	rsa               [3]*rsa.PrivateKey
	rsaPEM            [3]string
	rsaPKCS1PEM       [3]string
	ecdsa             [3]*ecdsa.PrivateKey
	ecdsaPEM          [3]string
}

var sigTestKeys = sync.OnceValue(func() *sigKeys {
	k := &sigKeys{}
	pkix := func(pub crypto.PublicKey) string {
		der, err := x509.MarshalPKIXPublicKey(pub)
		if err != nil {
			panic(err)
		}
		return string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}))
	}
	for i := range 3 {
		seed := make([]byte, ed25519.SeedSize)
		seed[0] = byte(i + 1)
		k.ed25519[i] = ed25519.NewKeyFromSeed(seed)
		k.ed25519PEM[i] = pkix(k.ed25519[i].Public())
		r, err := rsa.GenerateKey(rand.Reader, 2048)
		if err != nil {
			panic(err)
		}
		k.rsa[i] = r
		k.rsaPEM[i] = pkix(&r.PublicKey)
		k.rsaPKCS1PEM[i] = string(pem.EncodeToMemory(&pem.Block{Type: "RSA PUBLIC KEY", Bytes: x509.MarshalPKCS1PublicKey(&r.PublicKey)}))
		e, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			panic(err)
		}
		k.ecdsa[i] = e
		k.ecdsaPEM[i] = pkix(&e.PublicKey)
	}
	der, err := x509.MarshalPKCS8PrivateKey(k.ed25519[0])
	if err != nil {
		panic(err)
	}
	k.ed25519PrivatePEM = string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}))
	return k
})

// sigPublicKeyFixture is a matrix fixture for public_key with algorithm
// alg: sign signs msg with key i.
func sigPublicKeyFixture(name, alg string, pems [3]string, extra map[string]any, sign func(i int, msg []byte) []byte, enc string) sigFixture {
	encode := map[string]func([]byte) string{"hex": sigHex, "base64": sigB64, "base64url": base64.RawURLEncoding.EncodeToString}[enc]
	return sigFixture{
		name: name,
		build: func(t *testing.T, keys []int, now func() time.Time) Verifier {
			o := map[string]any{
				"algorithm": alg, "keys": sigPick(pems[:], keys), "signature": "header:X-Signature",
				"timestamp": "header:X-Timestamp", "signed": "{timestamp}.{body}", "encoding": enc,
			}
			for k, v := range extra {
				o[k] = v
			}
			return sigMustBuild(t, "public_key", o, now)
		},
		sign: func(t *testing.T, key int, signed []byte, ts time.Time) string {
			return encode(sign(key, []byte(sigTS(ts)+"."+string(signed))))
		},
		request: func(signed []byte, toks []string, ts time.Time) *Request {
			return sigHeaderRequest(signed, map[string]string{"X-Signature": strings.Join(toks, ","), "X-Timestamp": sigTS(ts)})
		},
		hex:         enc == "hex",
		timestamped: true,
	}
}

func sigDigest(h crypto.Hash, msg []byte) []byte {
	d := h.New()
	d.Write(msg)
	return d.Sum(nil)
}

func TestPublicKeyMatrix(t *testing.T) {
	t.Parallel()
	k := sigTestKeys()
	must := func(b []byte, err error) []byte {
		if err != nil {
			panic(err)
		}
		return b
	}
	fixtures := []sigFixture{
		sigPublicKeyFixture("Ed25519", "ed25519", k.ed25519PEM, nil,
			func(i int, msg []byte) []byte { return ed25519.Sign(k.ed25519[i], msg) }, "base64"),
		sigPublicKeyFixture("RSAPKCS1v15", "rsa_pkcs1v15", k.rsaPEM, nil,
			func(i int, msg []byte) []byte {
				return must(rsa.SignPKCS1v15(nil, k.rsa[i], crypto.SHA256, sigDigest(crypto.SHA256, msg)))
			}, "base64"),
		sigPublicKeyFixture("RSAPKCS1v15PKCS1PEMSHA512", "rsa", k.rsaPKCS1PEM, map[string]any{"hash": "sha512"},
			func(i int, msg []byte) []byte {
				return must(rsa.SignPKCS1v15(nil, k.rsa[i], crypto.SHA512, sigDigest(crypto.SHA512, msg)))
			}, "base64url"),
		sigPublicKeyFixture("RSAPSS", "rsa_pss", k.rsaPEM, nil,
			func(i int, msg []byte) []byte {
				return must(rsa.SignPSS(rand.Reader, k.rsa[i], crypto.SHA256, sigDigest(crypto.SHA256, msg), nil))
			}, "base64"),
		sigPublicKeyFixture("ECDSAHex", "ecdsa", k.ecdsaPEM, nil,
			func(i int, msg []byte) []byte {
				return must(ecdsa.SignASN1(rand.Reader, k.ecdsa[i], sigDigest(crypto.SHA256, msg)))
			}, "hex"),
		sigPublicKeyFixture("ECDSARawRS", "ecdsa", k.ecdsaPEM, map[string]any{"hash": "sha384"},
			func(i int, msg []byte) []byte {
				d := sha512.Sum384(msg)
				r, s, err := ecdsa.Sign(rand.Reader, k.ecdsa[i], d[:])
				if err != nil {
					panic(err)
				}
				out := make([]byte, 64)
				r.FillBytes(out[:32])
				s.FillBytes(out[32:])
				return out
			}, "base64"),
	}
	for _, fx := range fixtures {
		t.Run(fx.name, func(t *testing.T) {
			t.Parallel()
			sigRunMatrix(t, fx)
		})
	}
}

// TestPublicKeyForms checks the key forms public_key takes: several PEM
// blocks in one entry, a whpk_ key, and a certificate.
func TestPublicKeyForms(t *testing.T) {
	t.Parallel()
	k := sigTestKeys()
	body := []byte(sigMatrixBody)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), NotBefore: sigT0, NotAfter: sigT0.Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, k.ed25519[1].Public(), k.ed25519[1])
	if err != nil {
		t.Fatal(err)
	}
	cert := string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}))
	whpk := "whpk_" + base64.StdEncoding.EncodeToString(k.ed25519[2].Public().(ed25519.PublicKey))
	v := sigMustBuild(t, "public_key", map[string]any{
		"algorithm": "ed25519", "keys": []any{k.ed25519PEM[0] + "\n" + cert, whpk}, "signature": "header:X-Signature",
	}, sigClock(sigT0))
	for i := range 3 {
		sig := sigB64(ed25519.Sign(k.ed25519[i], body))
		if err := v.Verify(context.Background(), sigHeaderRequest(body, map[string]string{"X-Signature": sig})); err != nil {
			t.Errorf("key %d: got %v, want accepted", i, err)
		}
	}
	other := sigB64(ed25519.Sign(ed25519.NewKeyFromSeed(make([]byte, 32)), body))
	if err := v.Verify(context.Background(), sigHeaderRequest(body, map[string]string{"X-Signature": other})); hookd.ErrorMessage(err) != "signature mismatch" {
		t.Errorf("unknown key: got %v, want signature mismatch", err)
	}
}

// TestPublicKeyRefusesSmallRSA checks that RSA keys under 2048 bits are refused.
func TestPublicKeyRefusesSmallRSA(t *testing.T) {
	t.Parallel()
	// 1024-bit keys cannot be generated any more (crypto/rsa refuses);
	// build the public half by hand.
	pub := &rsa.PublicKey{N: new(big.Int).Lsh(big.NewInt(1), 1023), E: 65537}
	pub.N.Add(pub.N, big.NewInt(1))
	p := string(pem.EncodeToMemory(&pem.Block{Type: "RSA PUBLIC KEY", Bytes: x509.MarshalPKCS1PublicKey(pub)}))
	_, err := sigTryBuild("public_key", map[string]any{"algorithm": "rsa_pss", "keys": []any{p}, "signature": "header:X-Sig"}, sigClock(sigT0))
	if err == nil || !strings.Contains(err.Error(), "at least 2048") {
		t.Fatalf("got %v, want a refusal of the 1024-bit key", err)
	}
}
