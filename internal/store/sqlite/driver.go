package sqlite

import (
	"database/sql"
	"database/sql/driver"
	"net/url"
)

// The SQLite library behind database/sql is chosen at build time (see
// docs/PACKAGING.md): github.com/mattn/go-sqlite3, SQLite's C source
// through cgo, or modernc.org/sqlite, the same C source translated to
// Go, for builds without a C compiler (CGO_ENABLED=0). Everything that
// differs between the two is in driver_mattn.go and driver_modernc.go:
// the name the library registers, its description, and how its errors
// carry SQLite's result code. Both accept the same DSN keys
// (_journal_mode, _synchronous, _busy_timeout, _txlock, _query_only,
// _foreign_keys; mode=ro|rw as a URI parameter), so DSNs are written
// once, here and at their callers.

// Driver describes the SQLite library this binary was built with, for
// hookd version.
func Driver() string { return driverDesc }

// OpenFile opens the SQLite file at path with the URI parameters params
// (without the leading "?"; "mode=ro" for example) through the driver
// this binary was built with. For tools and tests that look into a data
// directory from outside the store.
func OpenFile(path, params string) (*sql.DB, error) {
	return sql.Open(driverName, fileURI(path, params))
}

// fileURI is a file: URI for path, with params.
func fileURI(path, params string) string {
	u := "file:" + (&url.URL{Path: path}).EscapedPath()
	if params != "" {
		u += "?" + params
	}
	return u
}

// rawConn is what the indexer needs of the driver's own connection
// (indexBatch): both libraries' connections have it.
type rawConn interface {
	driver.ConnBeginTx
	driver.ConnPrepareContext
}

// SQLite's primary result codes that mapErr reads
// (https://www.sqlite.org/rescode.html); each driver reports the code of
// its errors through sqliteCode.
const (
	codeBusy     = 5
	codeLocked   = 6
	codeReadonly = 8
	codeIOErr    = 10
	codeFull     = 13
	codeCantOpen = 14
)
