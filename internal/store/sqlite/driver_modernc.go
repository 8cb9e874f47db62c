//go:build !cgo || sqlite_modernc

package sqlite

import (
	"errors"

	"modernc.org/sqlite"
	sqlitelib "modernc.org/sqlite/lib"
)

const (
	driverName = "sqlite"
	driverDesc = "modernc.org/sqlite (pure Go), SQLite " + sqlitelib.SQLITE_VERSION
)

// sqliteCode is the primary result code of a SQLite error (the library
// reports the extended one).
func sqliteCode(err error) (int, bool) {
	var se *sqlite.Error
	if errors.As(err, &se) {
		return se.Code() & 0xff, true
	}
	return 0, false
}
