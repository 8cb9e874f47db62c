package loadgen

import (
	"encoding/json"
	"strings"
	"testing"
)

func TestBody(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		runID string
		conn  int
		seq   uint64
	}{
		{"First", "b1a2b3c4-0", 0, 0},
		{"Large", "b1a2b3c4-1", 99999, 999999999999},
		{"LongRunID", strings.Repeat("r", maxRunID), 7, 42},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			b, err := Body(tt.runID, tt.conn, tt.seq)
			if err != nil {
				t.Fatal(err)
			}
			if len(b) != BodySize {
				t.Fatalf("len(body) = %d, want %d", len(b), BodySize)
			}
			var v struct {
				ID   string `json:"id"`
				Type string `json:"type"`
				Pad  string `json:"pad"`
			}
			if err := json.Unmarshal(b, &v); err != nil {
				t.Fatalf("body is not valid JSON: %v\n%s", err, b)
			}
			if want := ID(tt.runID, tt.conn, tt.seq); v.ID != want {
				t.Errorf("id = %q, want %q", v.ID, want)
			}
			if v.Type != EventType {
				t.Errorf("type = %q, want %q", v.Type, EventType)
			}
			if strings.Trim(v.Pad, "x") != "" || v.Pad == "" {
				t.Errorf("pad = %q, want x's", v.Pad)
			}
		})
	}
}

func TestBodyRejects(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		runID string
		conn  int
		seq   uint64
	}{
		{"EmptyRunID", "", 0, 0},
		{"QuoteInRunID", `a"b`, 0, 0},
		{"TooLongRunID", strings.Repeat("r", maxRunID+1), 0, 0},
		{"ConnOutOfRange", "r", 100000, 0},
		{"NegativeConn", "r", -1, 0},
		{"SeqOutOfRange", "r", 0, 1000000000000},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if _, err := Body(tt.runID, tt.conn, tt.seq); err == nil {
				t.Errorf("Body(%q, %d, %d): got no error, want one", tt.runID, tt.conn, tt.seq)
			}
		})
	}
}

func TestIDsAreUnique(t *testing.T) {
	t.Parallel()
	seen := map[string]bool{}
	for _, run := range []string{"r-0", "r-1"} {
		for conn := range 3 {
			for seq := range uint64(3) {
				id := ID(run, conn, seq)
				if seen[id] {
					t.Fatalf("id %q repeats", id)
				}
				seen[id] = true
			}
		}
	}
}

// TestRequestSet checks that rewriting the sequence in place gives the
// same bytes as building that body afresh, behind a correct HTTP head.
func TestRequestSet(t *testing.T) {
	t.Parallel()
	req, err := newRequest("127.0.0.1:8080", "/in/bench", "run", 12)
	if err != nil {
		t.Fatal(err)
	}
	for _, seq := range []uint64{0, 1, 9, 10, 123456789, 999999999999} {
		req.set(seq)
		want, err := Body("run", 12, seq)
		if err != nil {
			t.Fatal(err)
		}
		if got := req.body(); string(got) != string(want) {
			t.Fatalf("seq %d: body = %s, want %s", seq, got, want)
		}
	}
	head := string(req.buf[:len(req.buf)-BodySize])
	for _, line := range []string{"POST /in/bench HTTP/1.1\r\n", "Host: 127.0.0.1:8080\r\n", "Content-Type: application/json\r\n", "Content-Length: 1024\r\n"} {
		if !strings.Contains(head, line) {
			t.Errorf("request head lacks %q:\n%s", line, head)
		}
	}
	if !strings.HasSuffix(head, "\r\n\r\n") {
		t.Errorf("request head does not end with an empty line:\n%q", head)
	}
}
