package secret_test

import (
	"bytes"
	"strings"
	"testing"
)

// knownTokens were sealed with testKey1 under associated data fuzzAD by
// this package (the same tokens are seeds in testdata/fuzz/FuzzOpen). They
// are the only inputs FuzzOpen may see open successfully.
var knownTokens = map[string]string{
	"hk1.k1.2mPIdzQRQ-kiWquwl7S4eopszGlML89-7nFwOledfwsRBkY7ih2YQpFaPUCECxO2HNBrzsmqf6LelYl3.qj67zJDyD5v_y4-zeR6W24X9z-QKD2Wn-qwjHdUJpHm-POyN1qRJIqpi":     "whsec_fuzzseed",
	"hk1.k1.U3wy4zKdcG75j09JCMW2V2weLvA-s4ryW2LgQKBajLsTLgqPUEPi9Kjp6SsR9vIQ_UuIIG8DO76FO5NB.RYwgeaPQFUF7D3d7HNao_kr6Xni3djnxUN8Vkg":                       "",
	"hk1.k1.-pbtlplpZL0_TYz855bfNTpAB7ydRbiL09eOthKnMYaOVhSLq2hgzlu5Y9fj87Lcz60gH2_JdPSBYmDk.q3CdhqQMH9TvCjiVVVYxpTaKrKP7m2kaSGfc3vRwWm6lLiJltGMR9vaRO1ir": "client-secret-xyz",
}

const fuzzAD = "fuzz:ad"

// FuzzOpen feeds arbitrary tokens to Open, Rewrap and NeedsRewrap: they
// must not panic, and Open must return a value only for a token this
// package sealed (the known seeds), with exactly its plaintext. A
// successful Rewrap must open to the same value as the original.
func FuzzOpen(f *testing.F) {
	kr := mustKeyring(f, testKey1)
	rot := mustKeyring(f, testKey2, testKey1)
	for tok := range knownTokens {
		f.Add(tok)
	}
	f.Add("")
	f.Add("hk1.k1..")
	f.Add("hk1.k9.AAAA.AAAA")
	f.Add(strings.Repeat(".", 10))
	f.Fuzz(func(t *testing.T, tok string) {
		got, err := kr.Open(tok, []byte(fuzzAD))
		want, known := knownTokens[tok]
		switch {
		case err == nil && !known:
			t.Fatalf("Open succeeded (%d bytes) for a token it did not seal: %q", len(got), tok)
		case err == nil && !bytes.Equal(got, []byte(want)):
			t.Fatalf("Open of a known token: got %q, want %q", got, want)
		case err != nil && known:
			t.Fatalf("Open of a known token: %v", err)
		case err != nil && strings.Contains(err.Error(), tok) && len(tok) > 8:
			t.Fatalf("error echoes the input token: %v", err)
		}
		_ = kr.NeedsRewrap(tok)
		moved, rerr := rot.Rewrap(tok)
		if known && rerr != nil {
			t.Fatalf("Rewrap of a known token: %v", rerr)
		}
		if rerr != nil {
			return
		}
		if rot.NeedsRewrap(moved) {
			t.Fatalf("Rewrap result still needs rewrap: %q", moved)
		}
		got2, err2 := rot.Open(moved, []byte(fuzzAD))
		switch {
		case err2 == nil && !known:
			t.Fatalf("rewrapped unknown token opened to %d bytes", len(got2))
		case known && (err2 != nil || !bytes.Equal(got2, []byte(want))):
			t.Fatalf("rewrapped known token: got %q, %v; want %q", got2, err2, want)
		}
	})
}
