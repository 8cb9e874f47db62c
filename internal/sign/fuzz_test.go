package sign_test

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"strconv"
	"strings"
	"testing"
	"time"

	"hookd/internal/sign"
)

// FuzzSign signs arbitrary ids, times and bodies with a key derived from
// the input, and checks that Sign never panics, fails exactly for the ids
// and times it documents, and otherwise produces headers that verify with
// the key that made them, both with the standard library alone and with
// hookd's own verifier. raw is also tried as a configured secret: New must
// refuse or accept it without panicking.
func FuzzSign(f *testing.F) {
	f.Add(specID, int64(specTS), []byte(specBody), []byte("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"), false, specSecret)
	f.Add("evt_01HZX", int64(1_700_000_000), []byte(`{"a":1}`), []byte("seed"), true, keyOld)
	f.Add("msg with.dots", int64(0), []byte{}, []byte{}, false, "whsec_")
	f.Add("", int64(1), []byte("x"), []byte{0}, true, "whpk_AAAA")
	f.Add("evt\r\nX: 1", int64(-1), []byte("\x00\xff"), bytes.Repeat([]byte{7}, 80), false, "whsk_"+strings.Repeat("A", 86))
	f.Add(" evt", int64(95_649_120_000), []byte(nil), []byte("k"), true, "whsec_not base64")
	f.Fuzz(func(t *testing.T, id string, sec int64, body, material []byte, ed bool, raw string) {
		if s, err := sign.New(sign.Config{Secrets: []string{raw}}); err == nil {
			if _, err := s.Sign("evt_1", time.Unix(1_700_000_000, 0), body); err != nil {
				t.Fatalf("a valid secret failed to sign: %v", err)
			}
		}

		var secret string
		var mac []byte
		var pub ed25519.PublicKey
		if ed {
			seed := sha256.Sum256(material)
			priv := ed25519.NewKeyFromSeed(seed[:])
			pub = priv.Public().(ed25519.PublicKey)
			secret = "whsk_" + base64.StdEncoding.EncodeToString(priv)
			if len(material)%2 == 1 {
				secret = "whsk_" + base64.RawStdEncoding.EncodeToString(seed[:])
			}
		} else {
			mac = append(bytes.Clone(material), make([]byte, max(0, sign.MinSecretLen-len(material)))...)
			mac = mac[:min(len(mac), sign.MaxSecretLen)]
			secret = "whsec_" + base64.StdEncoding.EncodeToString(mac)
		}
		s, err := sign.New(sign.Config{Secrets: []string{secret}})
		if err != nil {
			t.Fatalf("derived secret refused: %v", err)
		}

		ts := time.Unix(sec, 0)
		h, err := s.Sign(id, ts, body)
		if want := validID(id) && sec >= 0 && sec < 95_649_120_000; (err == nil) != want {
			t.Fatalf("Sign(%q, %d): got error %v, want error: %v", id, sec, err, !want)
		}
		if err != nil {
			return
		}
		if len(h) != 3 || h["webhook-id"] != id || h["webhook-timestamp"] != strconv.FormatInt(sec, 10) {
			t.Fatalf("got headers %v", h)
		}
		tag, enc, ok := strings.Cut(h["webhook-signature"], ",")
		if !ok || strings.ContainsAny(enc, " ,") {
			t.Fatalf("want one signature, got %q", h["webhook-signature"])
		}
		got, err := base64.StdEncoding.DecodeString(enc)
		if err != nil {
			t.Fatalf("signature not base64: %v", err)
		}
		content := []byte(id + "." + h["webhook-timestamp"] + "." + string(body))
		if ed {
			if tag != "v1a" || !ed25519.Verify(pub, content, got) {
				t.Fatalf("v1a signature does not verify with its public key")
			}
		} else {
			m := hmac.New(sha256.New, mac)
			m.Write(content)
			if tag != "v1" || !hmac.Equal(m.Sum(nil), got) {
				t.Fatalf("v1 signature does not verify with its secret")
			}
		}

		opts := map[string]any{"secrets": []any{secret}}
		if ed {
			opts = map[string]any{"public_keys": s.PublicKeys()}
		}
		if err := receiver(t, opts, ts).Verify(context.Background(), request(h, body)); err != nil {
			t.Fatalf("hookd's verifier: got %v, want accepted", err)
		}
	})
}

// validID is Sign's rule for ids, written out again: printable ASCII, not
// empty, no space at either end.
func validID(id string) bool {
	if id == "" || strings.HasPrefix(id, " ") || strings.HasSuffix(id, " ") {
		return false
	}
	for _, r := range []byte(id) {
		if r < 0x20 || r > 0x7e {
			return false
		}
	}
	return true
}
