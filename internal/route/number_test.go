package route

import (
	"math/big"
	"testing"
)

func TestParseDecimal(t *testing.T) {
	t.Parallel()
	valid := []string{"0", "-0", "1", "-1", "10", "1.5", "0.001", "1e3", "1E+3", "1e-3", "-0.0e-0", "123456789012345678901234567890", "1e999999999999999999999"}
	for _, s := range valid {
		if _, ok := parseDecimal(s); !ok {
			t.Errorf("parseDecimal(%q): got false, want true", s)
		}
	}
	invalid := []string{"", "-", "+1", "01", "1.", ".5", "1e", "1e+", "0x10", "1.5.5", "NaN", "Infinity", " 1", "1 ", "--1", "1e3.5"}
	for _, s := range invalid {
		if d, ok := parseDecimal(s); ok {
			t.Errorf("parseDecimal(%q): got %+v, true; want false", s, d)
		}
	}
}

func TestCmpDecimal(t *testing.T) {
	t.Parallel()
	tests := []struct {
		a, b string
		want int
	}{
		{"1e3", "1000", 0},
		{"1000.000", "1e3", 0},
		{"1E+3", "1000", 0},
		{"0.1", "1e-1", 0},
		{"0", "-0", 0},
		{"0.0e5", "0", 0},
		{"100", "99.999", 1},
		{"-100", "-99.999", -1},
		{"-1", "0", -1},
		{"0", "1e-300", -1},
		{"9007199254740993", "9007199254740992", 1}, // not equal as float64 would say
		{"12345678901234567890", "12345678901234567891", -1},
		{"10.5", "10.50", 0},
		{"10.5", "10.05", 1},
		{"0.00123", "1.23e-3", 0},
		{"123.456", "1.23456e2", 0},
		{"1e999999999999999999", "2e999999999999999999", -1},
	}
	for _, tt := range tests {
		a, okA := parseDecimal(tt.a)
		b, okB := parseDecimal(tt.b)
		if !okA || !okB {
			t.Fatalf("parseDecimal(%q, %q): got %v, %v; want true, true", tt.a, tt.b, okA, okB)
		}
		if got := cmpDecimal(a, b); got != tt.want {
			t.Errorf("cmpDecimal(%s, %s): got %d, want %d", tt.a, tt.b, got, tt.want)
		}
		if got := cmpDecimal(b, a); got != -tt.want {
			t.Errorf("cmpDecimal(%s, %s): got %d, want %d", tt.b, tt.a, got, -tt.want)
		}
	}
}

// FuzzDecimalCompare checks the exact comparison against math/big.
func FuzzDecimalCompare(f *testing.F) {
	for _, s := range [][2]string{
		{"1e3", "1000"}, {"0.1", "1e-1"}, {"-0", "0"}, {"9007199254740993", "9007199254740992"},
		{"-1.5e-7", "-15e-8"}, {"10.5", "10.05"}, {"0.000", "-0.0e9"},
	} {
		f.Add(s[0], s[1])
	}
	f.Fuzz(func(t *testing.T, a, b string) {
		da, okA := parseDecimal(a)
		db, okB := parseDecimal(b)
		if !okA || !okB {
			return
		}
		ra, okRA := refRat(a)
		rb, okRB := refRat(b)
		if !okRA || !okRB {
			return
		}
		if got, want := cmpDecimal(da, db), ra.Cmp(rb); got != want {
			t.Fatalf("cmpDecimal(%s, %s): got %d, want %d", a, b, got, want)
		}
	})
}

// refRat parses a JSON number with math/big, refusing exponents that would
// make it slow.
func refRat(s string) (*big.Rat, bool) {
	if len(s) > 200 {
		return nil, false
	}
	for i := 0; i < len(s); i++ {
		if s[i] == 'e' || s[i] == 'E' {
			j := i + 1
			if j < len(s) && (s[j] == '+' || s[j] == '-') {
				j++
			}
			if len(s)-j > 3 {
				return nil, false
			}
		}
	}
	r, ok := new(big.Rat).SetString(s)
	return r, ok
}
