//go:build sqlite_fts5

package sqlite

import (
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"hookd/internal/store/storetest"
)

// TestFTSBench measures SQLite FTS5, the index alternative to the bounded
// scan, on the search benchmark's bodies (docs/BENCHMARKS.md). It needs the
// sqlite_fts5 build tag, which hookd's build does not set:
//
//	HOOKD_SEARCH_BENCH=100000 go test -tags sqlite_fts5 -run TestFTSBench -v ./internal/store/sqlite/
func TestFTSBench(t *testing.T) {
	n, _ := strconv.Atoi(os.Getenv("HOOKD_SEARCH_BENCH"))
	if n <= 0 {
		t.Skip("set HOOKD_SEARCH_BENCH=100000 to run")
	}
	for _, tok := range []string{"unicode61", "trigram"} {
		path := filepath.Join(t.TempDir(), "fts.db")
		db, err := OpenFile(path, "")
		if err != nil {
			t.Fatal(err)
		}
		defer db.Close()
		if _, err := db.Exec(`CREATE VIRTUAL TABLE f USING fts5(body, content='', tokenize='` + tok + `')`); err != nil {
			t.Fatal(err)
		}
		s := time.Now()
		tx, _ := db.Begin()
		st, err := tx.Prepare(`INSERT INTO f (rowid, body) VALUES (?, ?)`)
		if err != nil {
			t.Fatal(err)
		}
		for i := range n {
			if _, err := st.Exec(i+1, string(storetest.SearchBenchBody(i, n))); err != nil {
				t.Fatal(err)
			}
		}
		st.Close()
		if err := tx.Commit(); err != nil {
			t.Fatal(err)
		}
		fi, _ := os.Stat(path)
		t.Logf("fts5 %s: indexed %d bodies in %v, %d MB", tok, n, time.Since(s).Round(time.Millisecond), fi.Size()>>20)
		for _, w := range []string{"zebraquux", "needle"} {
			s := time.Now()
			rows, err := db.Query(`SELECT rowid FROM f WHERE f MATCH ? ORDER BY rowid DESC LIMIT 50`, w)
			k := 0
			for err == nil && rows.Next() {
				k++
			}
			if rows != nil {
				rows.Close()
			}
			t.Logf("fts5 %s query %q: %d rows in %v (%v)", tok, w, k, time.Since(s).Round(time.Microsecond), err)
		}
	}
}
