package store

import (
	"strconv"

	"hookd"
)

// EncodeCursor turns a log position into an opaque cursor.
func EncodeCursor(seq int64) string { return strconv.FormatInt(seq, 10) }

// DecodeCursor parses a cursor made by EncodeCursor; "" is position 0.
func DecodeCursor(c string) (int64, error) {
	if c == "" {
		return 0, nil
	}
	n, err := strconv.ParseInt(c, 10, 64)
	if err != nil || n < 0 {
		return 0, hookd.Errorf(hookd.EInvalid, "invalid cursor %q", c)
	}
	return n, nil
}
