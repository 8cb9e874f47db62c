package jsonlimit

import (
	"bytes"
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"hookd/internal/jsonlimit/jsonlimittest"
)

func TestCheck(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		in    string
		limit int
		depth int
	}{
		{"Scalar", `1`, 1, 0},
		{"Empty", ``, 1, 0},
		{"Flat", `[1,2,{"a":3}]`, 2, 2},
		{"AtLimit", `[[[]]]`, 3, 3},
		{"BeyondLimit", `[[[[]]]]`, 3, 4},
		{"BracketsInString", `["[[[[[[", "{{{{"]`, 1, 1},
		{"EscapedQuote", `["\"[[[[[["]`, 1, 1},
		{"EscapedBackslash", `["\\", [[]]]`, 3, 3},
		{"UnterminatedString", `["[[[[`, 1, 1},
		{"ClosersFirst", `]]]][[[[`, 4, 4},
		{"DeepObjects", strings.Repeat(`{"a":`, 200) + `1` + strings.Repeat(`}`, 200), 128, 200},
		{"HundredThousand", strings.Repeat("[", 100000), 128, 100000},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if got := Depth([]byte(tt.in)); got != tt.depth {
				t.Errorf("Depth: got %d, want %d", got, tt.depth)
			}
			err := Check([]byte(tt.in), tt.limit)
			var de *DepthError
			switch {
			case tt.depth > tt.limit && !errors.As(err, &de):
				t.Errorf("Check(limit %d): got %v, want a *DepthError", tt.limit, err)
			case tt.depth > tt.limit && de.Limit != tt.limit:
				t.Errorf("DepthError.Limit: got %d, want %d", de.Limit, tt.limit)
			case tt.depth <= tt.limit && err != nil:
				t.Errorf("Check(limit %d): got %v, want nil", tt.limit, err)
			}
		})
	}
}

func TestCheckDefaultLimit(t *testing.T) {
	t.Parallel()
	if err := Check([]byte(strings.Repeat("[", DefaultDepth)), 0); err != nil {
		t.Errorf("depth %d: got %v, want nil", DefaultDepth, err)
	}
	err := Check([]byte(strings.Repeat("[", DefaultDepth+1)), 0)
	if err == nil || err.Error() != "JSON nested deeper than 128 levels" {
		t.Errorf("depth %d: got %v, want JSON nested deeper than 128 levels", DefaultDepth+1, err)
	}
}

func TestCheckAllocatesNothing(t *testing.T) {
	b := []byte(strings.Repeat(`{"a":["x\"]",`, 1000))
	if n := testing.AllocsPerRun(10, func() { Check(b, 100000) }); n != 0 {
		t.Errorf("allocations: got %v, want 0", n)
	}
}

func BenchmarkCheck(b *testing.B) {
	body := []byte(strings.Repeat(`{"key":"value with [brackets]","n":[1,2,3]},`, 1<<14))
	b.SetBytes(int64(len(body)))
	for b.Loop() {
		Check(body, DefaultDepth)
	}
}

// nesting is the depth of a decoded JSON value.
func nesting(v any) int {
	d := 0
	switch v := v.(type) {
	case []any:
		for _, e := range v {
			d = max(d, nesting(e))
		}
		return d + 1
	case map[string]any:
		for _, e := range v {
			d = max(d, nesting(e))
		}
		return d + 1
	}
	return 0
}

// FuzzCheck compares the scanner with encoding/json: on every document
// encoding/json accepts, Depth is the nesting of the decoded value and
// Check's verdict follows from it; on anything, Check agrees with Depth.
func FuzzCheck(f *testing.F) {
	for _, s := range append(jsonlimittest.DeepSeeds(), `[]`, `{"a":[{"b":"]"}]}`, `"\\"`, `["\u005b"]`, `[1,[2,[3]]]`, ` [ ] `) {
		f.Add([]byte(s), 3)
	}
	f.Fuzz(func(t *testing.T, b []byte, limit int) {
		limit = limit%200 + 1
		if limit <= 0 {
			limit += 200
		}
		d := Depth(b)
		if err := Check(b, limit); (err != nil) != (d > limit) {
			t.Fatalf("Check(limit %d) = %v with Depth %d", limit, err, d)
		}
		if len(b) > 4096 || !json.Valid(b) {
			return
		}
		// Numbers as json.Number: a valid document may hold a number
		// beyond float64 (1e400), which Unmarshal into any refuses.
		dec := json.NewDecoder(bytes.NewReader(b))
		dec.UseNumber()
		var v any
		if err := dec.Decode(&v); err != nil {
			t.Fatalf("json.Valid but Decode: %v", err)
		}
		if want := nesting(v); d != want {
			t.Fatalf("Depth = %d, encoding/json decodes nesting %d", d, want)
		}
	})
}

// BenchmarkCheckWebhook is a body like hookd bench's: a few fields and one
// long string, 1 KiB in all.
func BenchmarkCheckWebhook(b *testing.B) {
	body := []byte(`{"id":"evt-000000000001","type":"bench","data":{"n":1,"s":"` + strings.Repeat("x", 930) + `"}}`)
	b.SetBytes(int64(len(body)))
	for b.Loop() {
		Check(body, DefaultDepth)
	}
}

// refDepth is the scanner's rule, one byte at a time.
func refDepth(b []byte) int {
	depth, deepest := 0, 0
	for i := 0; i < len(b); i++ {
		switch b[i] {
		case '"':
			for i++; i < len(b); i++ {
				if b[i] == '\\' {
					i++
				} else if b[i] == '"' {
					break
				}
			}
		case '[', '{':
			depth++
			deepest = max(deepest, depth)
		case ']', '}':
			depth = max(0, depth-1)
		}
	}
	return deepest
}

// TestDepthEscapes checks the quick skipping of strings against the rule
// on every document of up to 8 bytes from quotes, backslashes and
// brackets.
func TestDepthEscapes(t *testing.T) {
	t.Parallel()
	alphabet := []byte{'"', '\\', '[', ']', 'x'}
	b := make([]byte, 0, 8)
	var walk func()
	walk = func() {
		if got, want := Depth(b), refDepth(b); got != want {
			t.Fatalf("Depth(%q) = %d, want %d", b, got, want)
		}
		if len(b) == cap(b) {
			return
		}
		for _, c := range alphabet {
			b = append(b, c)
			walk()
			b = b[:len(b)-1]
		}
	}
	walk()
}
