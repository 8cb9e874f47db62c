package httpserver

import (
	"strconv"
	"strings"
	"testing"
)

// The framing follower finds the header blocks of pipelined requests
// whatever their bodies hold, and flags only a header block with both
// Content-Length and Transfer-Encoding, however the bytes are split.
func TestFramingFlagsLengthDeclaredTwice(t *testing.T) {
	t.Parallel()
	const smuggle = "POST /in/s HTTP/1.1\r\nHost: h\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"
	// Bodies that look like header blocks of their own.
	lookalike := "Content-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n"
	plain := "POST /in/s HTTP/1.1\r\nHost: h\r\nContent-Length: " + strconv.Itoa(len(lookalike)) + "\r\n\r\n" + lookalike
	chunked := "POST /in/s HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n" +
		"5;ext=1\r\nab\r\nc\r\n" + strconv.FormatInt(int64(len(lookalike)), 16) + "\r\n" + lookalike + "\r\n0\r\nTrailer-Field: x\r\n\r\n"
	get := "\r\nGET /healthz HTTP/1.1\r\nHost: h\r\nX-Folded: a\r\n Content-Length: 3\r\n\r\n"
	http10 := "POST /in/s HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n"
	for _, tc := range []struct {
		name   string
		stream string
		want   bool
	}{
		{"Plain", plain + plain, false},
		{"Chunked", chunked + chunked, false},
		{"NoBodyAndFolding", get + get, false},
		{"HTTP10IgnoresEncoding", http10 + plain, false},
		{"Smuggle", smuggle, true},
		{"SmuggleAfterPlain", plain + smuggle, true},
		{"SmuggleAfterChunked", chunked + get + smuggle, true},
		{"LowerCaseNames", "POST / HTTP/1.1\r\ntransfer-encoding: chunked\r\ncontent-length: 0\r\n\r\n", true},
		{"LostOnBadLength", "POST / HTTP/1.1\r\nContent-Length: x\r\n\r\n" + smuggle, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			for _, step := range []int{1, 2, 3, 7, 64, len(tc.stream)} {
				f := framing{first: true}
				got := false
				for s := tc.stream; len(s) > 0 && !got; {
					n := min(step, len(s))
					got = f.feed([]byte(s[:n]))
					s = s[n:]
				}
				if got != tc.want {
					t.Errorf("fed %d bytes at a time: got flagged=%v, want %v", step, got, tc.want)
				}
			}
		})
	}
}

// A header line longer than what is kept does not confuse the follower.
func TestFramingLongLines(t *testing.T) {
	t.Parallel()
	long := "POST / HTTP/1.1\r\nX-Long: " + strings.Repeat("a", 5000) + "\r\nContent-Length: 3\r\n\r\nabc"
	f := framing{first: true}
	if f.feed([]byte(long + long)) {
		t.Fatal("got flagged, want not")
	}
	if f.state != stHead || !f.first {
		t.Fatalf("after two requests: state %d first %v, want a new header block", f.state, f.first)
	}
	if !f.feed([]byte("POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n")) {
		t.Fatal("third request: got not flagged, want flagged")
	}
}
