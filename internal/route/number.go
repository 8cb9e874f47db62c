package route

// decimal is a JSON number compared exactly, without converting it to a
// float64: 1e3 equals 1000 and 1000.0, 9007199254740993 is greater than
// 9007199254740992, 0.1 equals 1e-1.
//
// The value is 0.D × 10^exp, where D is the digits of mant with every '.'
// skipped. mant has no leading or trailing zeros (it may hold the decimal
// point of the literal it was cut from, so parsing allocates nothing); an
// empty mant is zero, whatever neg says.
type decimal struct {
	neg  bool
	mant string
	exp  int64
}

// maxExp saturates exponents: numbers beyond 10^±(10^15) compare by their
// digits only, which is as good as any answer for such literals.
const maxExp = 1_000_000_000_000_000

// parseDecimal parses a JSON number literal (RFC 8259 grammar, checked).
func parseDecimal(s string) (decimal, bool) {
	var d decimal
	i := 0
	if i < len(s) && s[i] == '-' {
		d.neg = true
		i++
	}
	// Integer part: "0" or [1-9][0-9]*.
	intStart := i
	if i < len(s) && s[i] == '0' {
		i++
	} else {
		for i < len(s) && s[i] >= '0' && s[i] <= '9' {
			i++
		}
	}
	if i == intStart {
		return decimal{}, false
	}
	intEnd := i
	// Fraction.
	fracEnd := i
	if i < len(s) && s[i] == '.' {
		i++
		start := i
		for i < len(s) && s[i] >= '0' && s[i] <= '9' {
			i++
		}
		if i == start {
			return decimal{}, false
		}
		fracEnd = i
	}
	// Exponent.
	var e int64
	if i < len(s) && (s[i] == 'e' || s[i] == 'E') {
		i++
		eneg := false
		if i < len(s) && (s[i] == '+' || s[i] == '-') {
			eneg = s[i] == '-'
			i++
		}
		start := i
		for i < len(s) && s[i] >= '0' && s[i] <= '9' {
			if e < maxExp {
				e = e*10 + int64(s[i]-'0')
			}
			i++
		}
		if i == start {
			return decimal{}, false
		}
		if e > maxExp {
			e = maxExp
		}
		if eneg {
			e = -e
		}
	}
	if i != len(s) {
		return decimal{}, false
	}
	// Significant digits of s[intStart:fracEnd] (which may hold a '.').
	first := -1
	for j := intStart; j < fracEnd; j++ {
		if c := s[j]; c != '.' && c != '0' {
			first = j
			break
		}
	}
	if first < 0 {
		return decimal{neg: d.neg}, true // zero
	}
	last := fracEnd - 1
	for s[last] == '0' || s[last] == '.' {
		last--
	}
	d.mant = s[first : last+1]
	// exp: how many digits stand before the point once leading zeros go.
	if first < intEnd {
		d.exp = int64(intEnd - first)
	} else {
		d.exp = -int64(first - intEnd - 1) // zeros after the point
	}
	d.exp += e
	return d, true
}

func (d decimal) sign() int {
	switch {
	case d.mant == "":
		return 0
	case d.neg:
		return -1
	}
	return 1
}

// cmpDecimal returns -1, 0 or +1 as a <, ==, > b.
func cmpDecimal(a, b decimal) int {
	sa, sb := a.sign(), b.sign()
	if sa != sb {
		if sa < sb {
			return -1
		}
		return 1
	}
	if sa == 0 {
		return 0
	}
	m := cmpMagnitude(a, b)
	if sa < 0 {
		return -m
	}
	return m
}

func cmpMagnitude(a, b decimal) int {
	if a.exp != b.exp {
		if a.exp < b.exp {
			return -1
		}
		return 1
	}
	i, j := 0, 0
	for {
		for i < len(a.mant) && a.mant[i] == '.' {
			i++
		}
		for j < len(b.mant) && b.mant[j] == '.' {
			j++
		}
		switch {
		case i == len(a.mant) && j == len(b.mant):
			return 0
		case i == len(a.mant):
			return -1 // b has further non-zero digits
		case j == len(b.mant):
			return 1
		}
		if a.mant[i] != b.mant[j] {
			if a.mant[i] < b.mant[j] {
				return -1
			}
			return 1
		}
		i++
		j++
	}
}
