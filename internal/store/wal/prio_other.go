//go:build !linux

package wal

// background is a no-op where thread priorities are not set.
func background() {}
