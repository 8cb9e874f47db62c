package sqlite

import (
	"fmt"
	"testing"
	"time"

	"hookd"
)

// BenchmarkIndexBatch measures the indexer alone: SQLite rows for logged
// events (the bench's shape: a 30-byte provider id from 64 interleaved
// sequences, a type, no entity key), in transactions of each size.
func BenchmarkIndexBatch(b *testing.B) {
	for _, size := range []int{100, 300, 1000, 4000} {
		b.Run(fmt.Sprintf("Batch%d", size), func(b *testing.B) {
			st, err := Open(b.Context(), b.TempDir(), testLogger(b), Options{})
			if err != nil {
				b.Fatal(err)
			}
			defer st.Close()
			// Nothing is logged: the indexer goroutine stays idle.
			now := time.Now()
			seq := int64(0)
			b.ResetTimer()
			for n := 0; n < b.N; n += size {
				recs := make([]*logRecord, 0, size)
				for range min(size, b.N-n) {
					seq++
					ext := fmt.Sprintf("run-%05d-%012d", seq%64, seq/64)
					recs = append(recs, &logRecord{lsn: uint64(seq), kind: recEvent, seq: seq, received: now.UnixMicro(),
						id: hookd.EventIDPrefix + hookd.NewULID(now), source: "bench", externalID: ext, dedupeKey: ext,
						typ: "bench.event", contentType: "application/json", segment: 1, offset: seq * 1500})
				}
				if err := st.indexBatch(recs); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
