//go:build cgo && !sqlite_modernc

package sqlite

import (
	"errors"

	"github.com/mattn/go-sqlite3"
)

const driverName = "sqlite3"

var driverDesc = "github.com/mattn/go-sqlite3 (cgo), SQLite " + libVersion()

func libVersion() string {
	v, _, _ := sqlite3.Version()
	return v
}

// sqliteCode is the primary result code of a SQLite error.
func sqliteCode(err error) (int, bool) {
	var se sqlite3.Error
	if errors.As(err, &se) {
		return int(se.Code), true
	}
	return 0, false
}
