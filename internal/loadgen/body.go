package loadgen

import (
	"errors"
	"fmt"
	"strconv"
)

// BodySize is the size of every request body, in bytes.
const BodySize = 1024

// EventType is the "type" of every event the generator sends.
const EventType = "bench.event"

// Ids are fixed width, so that a connection's pre-built request can be
// reused with only the sequence digits rewritten in place.
const (
	connDigits = 5
	seqDigits  = 12
	maxRunID   = 64
)

// ID returns the event id of request seq on connection conn of run runID:
// "<runID>-<conn, 5 digits>-<seq, 12 digits>". Every (runID, conn, seq)
// gives a different id.
func ID(runID string, conn int, seq uint64) string {
	b := make([]byte, 0, len(runID)+2+connDigits+seqDigits)
	b = append(b, runID...)
	b = append(b, '-')
	b = appendDigits(b, uint64(conn), connDigits)
	b = append(b, '-')
	b = appendDigits(b, seq, seqDigits)
	return string(b)
}

// Body returns the body of request seq on connection conn of run runID:
// the JSON object {"id":"<ID>","type":"bench.event","pad":"xxx…"}, padded
// to exactly BodySize bytes.
func Body(runID string, conn int, seq uint64) ([]byte, error) {
	b, _, err := body(runID, conn, seq)
	return b, err
}

// body also returns the offset of the sequence digits in the body.
func body(runID string, conn int, seq uint64) ([]byte, int, error) {
	if err := checkRunID(runID); err != nil {
		return nil, 0, err
	}
	if conn < 0 || conn >= pow10(connDigits) {
		return nil, 0, fmt.Errorf("connection number %d out of range", conn)
	}
	if seq >= uint64(pow10(seqDigits)) {
		return nil, 0, fmt.Errorf("sequence number %d out of range", seq)
	}
	const open, mid, end = `{"id":"`, `","type":"` + EventType + `","pad":"`, `"}`
	id := ID(runID, conn, seq)
	pad := BodySize - len(open) - len(id) - len(mid) - len(end)
	if pad < 0 {
		return nil, 0, fmt.Errorf("run id %q is too long for a %d-byte body", runID, BodySize)
	}
	b := make([]byte, 0, BodySize)
	b = append(b, open...)
	b = append(b, id...)
	b = append(b, mid...)
	for range pad {
		b = append(b, 'x')
	}
	b = append(b, end...)
	seqAt := len(open) + len(runID) + 1 + connDigits + 1
	return b, seqAt, nil
}

// checkRunID accepts ids that need no escaping in JSON.
func checkRunID(id string) error {
	if id == "" {
		return errors.New("empty run id")
	}
	if len(id) > maxRunID {
		return fmt.Errorf("run id %q is longer than %d characters", id, maxRunID)
	}
	for _, c := range []byte(id) {
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9', c == '-', c == '_', c == '.':
		default:
			return fmt.Errorf("run id %q: only letters, digits, '-', '_' and '.' are allowed", id)
		}
	}
	return nil
}

// request is one connection's pre-built HTTP/1.1 request; set rewrites the
// sequence digits of its body's id in place.
type request struct {
	buf   []byte
	seqAt int // offset of the sequence digits in buf
}

func newRequest(host, path, runID string, conn int) (*request, error) {
	b, seqAt, err := body(runID, conn, 0)
	if err != nil {
		return nil, err
	}
	head := "POST " + path + " HTTP/1.1\r\n" +
		"Host: " + host + "\r\n" +
		"User-Agent: hookd-bench\r\n" +
		"Content-Type: application/json\r\n" +
		"Content-Length: " + strconv.Itoa(len(b)) + "\r\n" +
		"\r\n"
	buf := make([]byte, 0, len(head)+len(b))
	buf = append(buf, head...)
	buf = append(buf, b...)
	return &request{buf: buf, seqAt: len(head) + seqAt}, nil
}

// set makes the request carry sequence number seq.
func (r *request) set(seq uint64) {
	putDigits(r.buf[r.seqAt:r.seqAt+seqDigits], seq)
}

// body returns the request's body as it stands.
func (r *request) body() []byte { return r.buf[len(r.buf)-BodySize:] }

func appendDigits(b []byte, n uint64, width int) []byte {
	start := len(b)
	for range width {
		b = append(b, '0')
	}
	putDigits(b[start:], n)
	return b
}

// putDigits writes n in decimal into b, zero-padded to len(b); higher
// digits that do not fit are dropped (callers check the range).
func putDigits(b []byte, n uint64) {
	for i := len(b) - 1; i >= 0; i-- {
		b[i] = '0' + byte(n%10)
		n /= 10
	}
}

func pow10(n int) int {
	p := 1
	for range n {
		p *= 10
	}
	return p
}
