//go:build !linux

package fsutil

import "os"

// Fdatasync falls back to a full fsync where fdatasync is not available.
func Fdatasync(f *os.File) error { return f.Sync() }

// Writable reports nothing where the check is not implemented: the first
// write reports the problem instead.
func Writable(dir string) error { return nil }

// DropCache does nothing where the kernel offers no way to forget a
// file's cached pages.
func DropCache(f *os.File) error { return nil }
