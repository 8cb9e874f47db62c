package store

import (
	"encoding/base64"
	"strconv"
	"strings"

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

// EncodeDeliveryCursor makes the cursor after the delivery (seq, dest) of
// a listing newest event first.
func EncodeDeliveryCursor(seq int64, dest string) string {
	return base64.RawURLEncoding.EncodeToString([]byte(strconv.FormatInt(seq, 10) + ":" + dest))
}

// DecodeDeliveryCursor parses a cursor made by EncodeDeliveryCursor.
func DecodeDeliveryCursor(c string) (int64, string, error) {
	bad := hookd.Errorf(hookd.EInvalid, "invalid cursor %q", c)
	b, err := base64.RawURLEncoding.DecodeString(c)
	if err != nil {
		return 0, "", bad
	}
	seqText, dest, ok := strings.Cut(string(b), ":")
	if !ok {
		return 0, "", bad
	}
	seq, err := strconv.ParseInt(seqText, 10, 64)
	if err != nil || seq < 0 {
		return 0, "", bad
	}
	return seq, dest, nil
}
