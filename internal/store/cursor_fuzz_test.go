package store

import (
	"strings"
	"testing"
)

// FuzzDeliveryCursor: any string decodes to a cursor or an error (never a
// panic), and every cursor encoded decodes back to itself.
func FuzzDeliveryCursor(f *testing.F) {
	f.Add("", int64(0), "")
	f.Add(EncodeDeliveryCursor(42, "orders"), int64(42), "orders")
	f.Add("MTI6YQ", int64(-1), "a:b")
	f.Add("!!!", int64(1<<62), "dest_01M8")
	f.Fuzz(func(t *testing.T, raw string, seq int64, dest string) {
		if s, d, err := DecodeDeliveryCursor(raw); err == nil && s < 0 {
			t.Fatalf("decoded a negative seq %d (%q)", s, d)
		}
		if seq < 0 {
			return
		}
		s, d, err := DecodeDeliveryCursor(EncodeDeliveryCursor(seq, dest))
		if err != nil || s != seq || d != dest {
			if strings.ContainsRune(dest, 0) {
				return
			}
			t.Fatalf("round trip (%d, %q) → (%d, %q, %v)", seq, dest, s, d, err)
		}
	})
}
