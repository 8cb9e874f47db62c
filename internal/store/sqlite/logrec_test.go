package sqlite

import (
	"bytes"
	"testing"
)

func TestLogRecordRoundTrip(t *testing.T) {
	t.Parallel()
	for _, r := range []*logRecord{
		{kind: recEvent, seq: 7, stale: true, hasOccurred: true, occurred: -5, received: 1700000000000000,
			id: "evt_x", source: "s", externalID: "e", dedupeKey: "e", typ: "t", key: "k", contentType: "application/json",
			headers: `{"A":["b"]}`, body: []byte{0, 1, 2, 255}},
		{kind: recEvent, seq: 1, received: 1, id: "evt_y", source: "s", body: []byte{}},
		{kind: recEvent, seq: 2, received: 2, id: "evt_t", source: "s", body: []byte("{}"),
			traceParent: "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"},
		{kind: recDuplicate, received: 42, requestID: "req_z", eventID: "evt_x"},
	} {
		p := r.appendTo(nil)
		got, err := decodeLogRecord(9, p)
		if err != nil {
			t.Fatalf("decode %+v: %v", r, err)
		}
		got.lsn = r.lsn
		if !bytes.Equal(got.appendTo(nil), p) || got.traceParent != r.traceParent {
			t.Errorf("round trip of %+v: got %+v", r, got)
		}
	}
}

// FuzzLogRecord decodes arbitrary payloads: never a panic, and whatever
// decodes encodes to a payload that decodes to the same record (varints
// may have been written longer than needed; they mean the same).
func FuzzLogRecord(f *testing.F) {
	f.Add((&logRecord{kind: recEvent, seq: 3, hasOccurred: true, occurred: 99, received: 100, id: "evt_a", source: "s",
		externalID: "x", dedupeKey: "x", typ: "t", headers: "{}", body: []byte("{}")}).appendTo(nil))
	f.Add((&logRecord{kind: recEvent, seq: 4, received: 100, id: "evt_b", source: "s", body: []byte("{}"),
		traceParent: "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"}).appendTo(nil))
	f.Add((&logRecord{kind: recDuplicate, received: 5, requestID: "req_b", eventID: "evt_a"}).appendTo(nil))
	f.Add([]byte{recEvent, 0xff})
	f.Add([]byte{recDuplicate, 0x80, 0x00, 0x00, 0x00}) // a varint written longer than needed
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, p []byte) {
		r, err := decodeLogRecord(1, p)
		if err != nil {
			return
		}
		again := r.appendTo(nil)
		r2, err := decodeLogRecord(1, again)
		if err != nil {
			t.Fatalf("decoded %+v from %x, whose encoding %x does not decode: %v", r, p, again, err)
		}
		if !bytes.Equal(r2.appendTo(nil), again) || r2.seq != r.seq || r2.id != r.id || !bytes.Equal(r2.body, r.body) {
			t.Fatalf("decoded %+v from %x, and %+v from its encoding", r, p, r2)
		}
	})
}
