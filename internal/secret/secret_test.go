package secret_test

import (
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"hookd/internal/secret"
)

// Fixed test keys so fuzz seeds and known tokens are reproducible. Never
// use these outside tests.
const (
	testKey1 = "k1:AQIDBAUGBwgJCgsMDQ4PEBESExQVFhcYGRobHB0eHyA="
	testKey2 = "k2:ISIjJCUmJygpKissLS4vMDEyMzQ1Njc4OTo7PD0+P0A="
)

func mustKeyring(t testing.TB, specs ...string) *secret.Keyring {
	t.Helper()
	kr, err := secret.ParseKeyring(specs)
	if err != nil {
		t.Fatalf("ParseKeyring: %v", err)
	}
	return kr
}

func TestRoundTrip(t *testing.T) {
	t.Parallel()
	kr := mustKeyring(t, secret.GenerateMasterKey("primary"))
	ad := []byte("destination:claims-service:auth.client_secret")
	for _, pt := range [][]byte{nil, {}, []byte("x"), []byte("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"), bytes.Repeat([]byte{0xff}, secret.MaxPlaintextLen)} {
		tok, err := kr.Seal(pt, ad)
		if err != nil {
			t.Fatalf("Seal(%d bytes): %v", len(pt), err)
		}
		if !strings.HasPrefix(tok, "hk1.primary.") {
			t.Errorf("token prefix: got %.20q, want hk1.primary.", tok)
		}
		if len(tok) > secret.MaxTokenLen {
			t.Errorf("token length: got %d, want <= %d", len(tok), secret.MaxTokenLen)
		}
		got, err := kr.Open(tok, ad)
		if err != nil {
			t.Fatalf("Open: %v", err)
		}
		if !bytes.Equal(got, pt) {
			t.Errorf("Open: got %d bytes, want %d equal bytes", len(got), len(pt))
		}
	}
	// Two seals of one value differ (fresh data key and nonces).
	a, _ := kr.Seal([]byte("same"), ad)
	b, _ := kr.Seal([]byte("same"), ad)
	if a == b {
		t.Error("two seals of the same value are equal, want different")
	}
}

func TestTokenFormat(t *testing.T) {
	t.Parallel()
	kr := mustKeyring(t, testKey1)
	pt := []byte("hello")
	tok, err := kr.Seal(pt, nil)
	if err != nil {
		t.Fatal(err)
	}
	parts := strings.Split(tok, ".")
	if len(parts) != 4 || parts[0] != "hk1" || parts[1] != "k1" {
		t.Fatalf("got segments %q, want hk1.k1.<wrapped>.<value>", parts[:2])
	}
	wrapped, err := base64.RawURLEncoding.DecodeString(parts[2])
	if err != nil || len(wrapped) != 12+32+16 {
		t.Errorf("wrapped key: got %d bytes (err %v), want 60", len(wrapped), err)
	}
	value, err := base64.RawURLEncoding.DecodeString(parts[3])
	if err != nil || len(value) != 12+len(pt)+16 {
		t.Errorf("value: got %d bytes (err %v), want %d", len(value), err, 12+len(pt)+16)
	}
}

func TestSealTooLarge(t *testing.T) {
	t.Parallel()
	kr := mustKeyring(t, testKey1)
	_, err := kr.Seal(make([]byte, secret.MaxPlaintextLen+1), nil)
	if !errors.Is(err, secret.ErrTooLarge) {
		t.Errorf("got %v, want ErrTooLarge", err)
	}
}

func TestWrongAssociatedData(t *testing.T) {
	t.Parallel()
	kr := mustKeyring(t, testKey1)
	tok, err := kr.Seal([]byte("s3cr3t"), []byte("destination:a:auth.client_secret"))
	if err != nil {
		t.Fatal(err)
	}
	for _, ad := range []string{"", "destination:b:auth.client_secret", "destination:a:auth.client_secreT", "destination:a:auth.client_secret\x00"} {
		_, err := kr.Open(tok, []byte(ad))
		if !errors.Is(err, secret.ErrDecrypt) {
			t.Errorf("Open with ad %q: got %v, want ErrDecrypt", ad, err)
		}
	}
}

// TestTamper flips every bit of every byte of every segment and checks
// that no variant opens.
func TestTamper(t *testing.T) {
	t.Parallel()
	kr := mustKeyring(t, testKey1, testKey2)
	pt := []byte("tamper-me")
	ad := []byte("ad")
	tok, err := kr.Seal(pt, ad)
	if err != nil {
		t.Fatal(err)
	}
	segStart := 0
	for seg, part := range strings.Split(tok, ".") {
		t.Run(fmt.Sprintf("Segment%d", seg), func(t *testing.T) {
			n := 0
			for i := segStart; i < segStart+len(part); i++ {
				for bit := range 8 {
					b := []byte(tok)
					b[i] ^= 1 << bit
					got, err := kr.Open(string(b), ad)
					if err == nil {
						t.Fatalf("flip byte %d bit %d: opened to %d bytes, want error", i, bit, len(got))
					}
					if _, err := kr.Rewrap(string(b)); err == nil && seg != 3 {
						t.Fatalf("flip byte %d bit %d: Rewrap succeeded, want error", i, bit)
					}
					n++
				}
			}
			if n == 0 {
				t.Fatal("empty segment")
			}
		})
		segStart += len(part) + 1
	}
	// Swapping the key id for another known key fails too.
	swapped := strings.Replace(tok, ".k1.", ".k2.", 1)
	if _, err := kr.Open(swapped, ad); !errors.Is(err, secret.ErrDecrypt) {
		t.Errorf("swapped key id: got %v, want ErrDecrypt", err)
	}
}

func TestUnknownKeyID(t *testing.T) {
	t.Parallel()
	tok, err := mustKeyring(t, testKey1).Seal([]byte("v"), nil)
	if err != nil {
		t.Fatal(err)
	}
	_, err = mustKeyring(t, testKey2).Open(tok, nil)
	if !errors.Is(err, secret.ErrUnknownKey) {
		t.Fatalf("got %v, want ErrUnknownKey", err)
	}
	if !strings.Contains(err.Error(), `"k1"`) {
		t.Errorf("error %q does not name the key id \"k1\"", err)
	}
}

func TestRotation(t *testing.T) {
	t.Parallel()
	ad := []byte("source:orders:sign.secret")
	pt := []byte("whsec_rotate-me")

	old := mustKeyring(t, testKey1)
	tok, err := old.Seal(pt, ad)
	if err != nil {
		t.Fatal(err)
	}
	if old.NeedsRewrap(tok) {
		t.Error("NeedsRewrap under active key: got true, want false")
	}

	both := mustKeyring(t, testKey2, testKey1)
	if both.ActiveID() != "k2" {
		t.Fatalf("ActiveID: got %q, want k2", both.ActiveID())
	}
	if got, err := both.Open(tok, ad); err != nil || !bytes.Equal(got, pt) {
		t.Fatalf("Open old token with k2 active: got %q, %v; want plaintext", got, err)
	}
	if !both.NeedsRewrap(tok) {
		t.Error("NeedsRewrap of k1 token with k2 active: got false, want true")
	}
	moved, err := both.Rewrap(tok)
	if err != nil {
		t.Fatalf("Rewrap: %v", err)
	}
	if !strings.HasPrefix(moved, "hk1.k2.") {
		t.Errorf("Rewrap: got prefix %.8q, want hk1.k2.", moved)
	}
	if both.NeedsRewrap(moved) {
		t.Error("NeedsRewrap after Rewrap: got true, want false")
	}
	// The value segment is carried over unchanged: same data key.
	if a, b := tok[strings.LastIndex(tok, ".")+1:], moved[strings.LastIndex(moved, ".")+1:]; a != b {
		t.Error("Rewrap changed the value segment, want it unchanged")
	}
	again, err := both.Rewrap(moved)
	if err != nil || again != moved {
		t.Errorf("Rewrap of token under active key: got changed=%v err=%v, want unchanged", again != moved, err)
	}

	onlyNew := mustKeyring(t, testKey2)
	if got, err := onlyNew.Open(moved, ad); err != nil || !bytes.Equal(got, pt) {
		t.Errorf("Open rewrapped token with only k2: got %q, %v; want plaintext", got, err)
	}
	if _, err := onlyNew.Open(moved, []byte("other")); !errors.Is(err, secret.ErrDecrypt) {
		t.Errorf("Open rewrapped token with wrong ad: got %v, want ErrDecrypt", err)
	}
	if _, err := old.Open(moved, ad); !errors.Is(err, secret.ErrUnknownKey) {
		t.Errorf("Open rewrapped token with only k1: got %v, want ErrUnknownKey", err)
	}
	if _, err := onlyNew.Open(tok, ad); !errors.Is(err, secret.ErrUnknownKey) {
		t.Errorf("Open un-rewrapped token with only k2: got %v, want ErrUnknownKey", err)
	}
}

func TestNeedsRewrapMalformed(t *testing.T) {
	t.Parallel()
	kr := mustKeyring(t, testKey1)
	for _, tok := range []string{"", "garbage", "hk1.k1..", strings.Repeat("a", secret.MaxTokenLen+1)} {
		if !kr.NeedsRewrap(tok) {
			t.Errorf("NeedsRewrap(%.20q): got false, want true", tok)
		}
	}
}

func TestGarbage(t *testing.T) {
	t.Parallel()
	kr := mustKeyring(t, testKey1)
	valid, _ := kr.Seal([]byte("v"), nil)
	cases := map[string]string{
		"Empty":         "",
		"Dots":          "...",
		"OneSegment":    "hk1",
		"FiveSegments":  valid + ".x",
		"BadVersion":    "hk2" + valid[3:],
		"EmptyKeyID":    "hk1.." + valid[len("hk1.k1."):],
		"LongKeyID":     "hk1." + strings.Repeat("k", 65) + valid[len("hk1.k1"):],
		"Padding":       valid + "==",
		"Newline":       valid[:20] + "\n" + valid[20:],
		"Space":         " " + valid,
		"StdAlphabet":   strings.ReplaceAll(strings.ReplaceAll(valid, "-", "+"), "_", "/") + "+",
		"ShortWrapped":  "hk1.k1.AAAA." + valid[strings.LastIndex(valid, ".")+1:],
		"ShortValue":    valid[:strings.LastIndex(valid, ".")+1] + "AAAA",
		"EmptyValue":    valid[:strings.LastIndex(valid, ".")+1],
		"NonASCII":      "hk1.k1.\xff\xfe.\x00",
		"TrailingBits":  valid[:strings.LastIndex(valid, ".")+1] + "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAB",
		"NULs":          strings.Repeat("\x00", 100),
		"JustOverLimit": strings.Repeat("A", secret.MaxTokenLen+1),
	}
	for name, tok := range cases {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			if got, err := kr.Open(tok, nil); err == nil {
				t.Errorf("Open: got %d bytes, want error", len(got))
			}
			if _, err := kr.Rewrap(tok); err == nil {
				t.Error("Rewrap: got nil error, want error")
			}
		})
	}
}

func TestOversizedIsRefusedFast(t *testing.T) {
	t.Parallel()
	kr := mustKeyring(t, testKey1)
	huge := "hk1.k1." + strings.Repeat("A", 16<<20) + ".AAAA"
	start := time.Now()
	_, err := kr.Open(huge, nil)
	elapsed := time.Since(start)
	if !errors.Is(err, secret.ErrTooLarge) {
		t.Errorf("got %v, want ErrTooLarge", err)
	}
	// Generous bound so a loaded -race run cannot flake; the order of the
	// checks is pinned deterministically below.
	if elapsed > time.Second {
		t.Errorf("Open of 16 MiB took %v, want well under 1s", elapsed)
	}
	// Size is checked before the alphabet or anything else: an oversized
	// token of invalid bytes reports ErrTooLarge, not ErrMalformed.
	if _, err := kr.Open(strings.Repeat("\xff", secret.MaxTokenLen+1), nil); !errors.Is(err, secret.ErrTooLarge) || errors.Is(err, secret.ErrMalformed) {
		t.Errorf("oversized invalid bytes: got %v, want ErrTooLarge only", err)
	}
	if len(err.Error()) > 200 {
		t.Errorf("error is %d bytes long, want a short message", len(err.Error()))
	}
}

func TestParseKeyring(t *testing.T) {
	t.Parallel()
	material := base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{7}, 32))
	cases := []struct {
		name  string
		specs []string
		want  string // substring of the error; "" means success
	}{
		{"OneKey", []string{"a:" + material}, ""},
		{"Whitespace", []string{"  a:" + material + "\n"}, ""},
		{"TwoKeys", []string{testKey1, testKey2}, ""},
		{"None", nil, "no master keys"},
		{"NoColon", []string{material}, "master key 0"},
		{"EmptyID", []string{":" + material}, "master key 0: invalid key id"},
		{"DotInID", []string{"a.b:" + material}, "invalid key id"},
		{"Duplicate", []string{"a:" + material, "a:" + material}, `master key 1: duplicate key id "a"`},
		{"BadBase64", []string{testKey1, "b:" + material[:10] + "!" + material[11:]}, `master key 1 (id "b"): key is not valid`},
		{"URLBase64", []string{"b:" + strings.NewReplacer("+", "-", "/", "_").Replace(secret.GenerateMasterKey("x")[2:]) + "-_"}, "not valid"},
		{"Short", []string{"b:" + base64.StdEncoding.EncodeToString(make([]byte, 16))}, "16 bytes, want 32"},
		{"AllZero", []string{"b:" + base64.StdEncoding.EncodeToString(make([]byte, 32))}, "all zero"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			kr, err := secret.ParseKeyring(tc.specs)
			if tc.want == "" {
				if err != nil {
					t.Fatalf("got %v, want success", err)
				}
				if s := fmt.Sprintf("%v %+v %#v %s", kr, *kr, kr, kr); strings.Contains(s, material) || strings.Contains(s, testKey1[3:]) {
					t.Errorf("keyring rendering leaks key material: %s", s)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v, want error containing %q", err, tc.want)
			}
			for _, spec := range tc.specs {
				if _, m, ok := strings.Cut(spec, ":"); ok && len(m) > 8 && strings.Contains(err.Error(), m[:8]) {
					t.Errorf("error %q contains key material", err)
				}
			}
		})
	}
}

func TestGenerateMasterKey(t *testing.T) {
	t.Parallel()
	a, b := secret.GenerateMasterKey("gen"), secret.GenerateMasterKey("gen")
	if a == b {
		t.Error("two generated keys are equal")
	}
	if !strings.HasPrefix(a, "gen:") {
		t.Errorf("got prefix %.4q, want gen:", a)
	}
	mustKeyring(t, a, strings.Replace(b, "gen:", "gen2:", 1))
}

func TestErrorsCarryNoSecrets(t *testing.T) {
	t.Parallel()
	kr := mustKeyring(t, testKey1)
	pt := "PLAINTEXT-MARKER-123"
	tok, _ := kr.Seal([]byte(pt), []byte("a"))
	_, err1 := kr.Open(tok, []byte("b"))
	_, err2 := mustKeyring(t, testKey2).Open(tok, []byte("a"))
	_, err3 := kr.Open(tok[:len(tok)-1]+"!", []byte("a"))
	for _, err := range []error{err1, err2, err3} {
		if err == nil {
			t.Fatal("got nil error, want error")
		}
		msg := err.Error()
		if strings.Contains(msg, pt) || strings.Contains(msg, testKey1[3:13]) || strings.Contains(msg, testKey2[3:13]) || strings.Contains(msg, tok[8:40]) {
			t.Errorf("error %q contains secret material", msg)
		}
	}
}

// TestNoPlaintextAtRest seals 1,000 secrets of the kinds hookd stores,
// writes the tokens to a file, and greps the file's bytes for each
// plaintext (acceptance line 4 of issue 5, for this package's part).
func TestNoPlaintextAtRest(t *testing.T) {
	t.Parallel()
	kr := mustKeyring(t, testKey1)
	path := filepath.Join(t.TempDir(), "store.txt")
	var file bytes.Buffer
	plaintexts := make([]string, 0, 1000)
	for i := range 1000 {
		raw := make([]byte, 24)
		_, _ = rand.Read(raw)
		var pt string
		switch i % 3 {
		case 0:
			pt = "whsec_" + base64.StdEncoding.EncodeToString(raw)
		case 1:
			pt = fmt.Sprintf("client-secret-%x", raw)
		default:
			pt = fmt.Sprintf("Bearer %s", base64.RawURLEncoding.EncodeToString(raw))
		}
		plaintexts = append(plaintexts, pt)
		tok, err := kr.Seal([]byte(pt), []byte(fmt.Sprintf("destination:d%d:auth.client_secret", i)))
		if err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(&file, "%d\t%s\n", i, tok)
	}
	if err := os.WriteFile(path, file.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	onDisk, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	for i, pt := range plaintexts {
		// The whole value, and any 12-byte window of it, must be absent.
		if bytes.Contains(onDisk, []byte(pt)) {
			t.Fatalf("secret %d found in plain in the file", i)
		}
		if w := pt[len(pt)-12:]; bytes.Contains(onDisk, []byte(w)) {
			t.Fatalf("tail of secret %d found in the file", i)
		}
	}
	// And the file still opens back to the plaintexts.
	for i, line := range strings.Split(strings.TrimSpace(string(onDisk)), "\n") {
		_, tok, _ := strings.Cut(line, "\t")
		got, err := kr.Open(tok, []byte(fmt.Sprintf("destination:d%d:auth.client_secret", i)))
		if err != nil || string(got) != plaintexts[i] {
			t.Fatalf("line %d: Open: %v, want plaintext back", i, err)
		}
	}
}
