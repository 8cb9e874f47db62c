package sqlite

import (
	"bytes"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"hookd"
)

// Whichever library the build links, its errors reach mapErr with
// SQLite's result code: a write refused by a read-only database is the
// store's "unavailable", not an internal error.
func TestDriverErrorsMapToUnavailable(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "x.db")
	rw, err := OpenFile(path, "_journal_mode=WAL")
	if err != nil {
		t.Fatal(err)
	}
	defer rw.Close()
	if _, err := rw.Exec(`CREATE TABLE t (v INTEGER)`); err != nil {
		t.Fatal(err)
	}
	ro, err := OpenFile(path, "mode=ro")
	if err != nil {
		t.Fatal(err)
	}
	defer ro.Close()
	_, err = ro.Exec(`INSERT INTO t VALUES (1)`)
	if err == nil {
		t.Fatal("insert through mode=ro: got no error, want SQLITE_READONLY")
	}
	var he *hookd.Error
	if got := mapErr(err); !errors.As(got, &he) || he.Code != hookd.EUnavailable {
		t.Errorf("mapErr(%v) with %s: got %v, want a %s error", err, Driver(), got, hookd.EUnavailable)
	}
	// Other errors pass through.
	_, err = rw.Exec(`INSERT INTO nosuchtable VALUES (1)`)
	if got := mapErr(err); err == nil || errors.As(got, &he) {
		t.Errorf("mapErr(%v): got %v, want the error unmapped", err, got)
	}
}

// Driver names the library the build selected; the tag sqlite_modernc
// or a build without cgo selects the pure-Go one.
func TestDriverNamesTheLibrary(t *testing.T) {
	t.Parallel()
	if d := Driver(); !strings.Contains(d, "SQLite 3.") || !(strings.HasPrefix(d, "github.com/mattn/go-sqlite3 (cgo)") || strings.HasPrefix(d, "modernc.org/sqlite (pure Go)")) {
		t.Errorf("Driver(): got %q, want a library and its SQLite version", d)
	}
	t.Logf("driver: %s", Driver())
}

// Every SQLite connection of hookd goes through OpenFile, and only the
// driver files import a library: a sql.Open("sqlite3", …) elsewhere would
// find no driver in a build without cgo, and an import of mattn's
// package would register a second one.
func TestOnlyTheDriverFilesNameALibrary(t *testing.T) {
	t.Parallel()
	root, err := filepath.Abs(filepath.Join("..", "..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	allowed := map[string]bool{
		filepath.Join("internal", "store", "sqlite", "driver_mattn.go"):   true,
		filepath.Join("internal", "store", "sqlite", "driver_modernc.go"): true,
		filepath.Join("internal", "store", "sqlite", "driver_test.go"):    true, // this test's strings
	}
	var bad []string
	err = filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && strings.HasPrefix(d.Name(), ".") && path != root {
			return filepath.SkipDir
		}
		if d.IsDir() || !strings.HasSuffix(path, ".go") {
			return nil
		}
		rel, _ := filepath.Rel(root, path)
		if allowed[rel] {
			return nil
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		for _, s := range []string{`"github.com/mattn/go-sqlite3"`, `"modernc.org/sqlite"`, `sql.Open("sqlite3"`, `sql.Open("sqlite"`} {
			if bytes.Contains(b, []byte(s)) {
				bad = append(bad, rel+": "+s)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(bad) > 0 {
		t.Errorf("got %q, want SQLite opened through sqlite.OpenFile and the libraries imported by driver_mattn.go and driver_modernc.go only", bad)
	}
}
