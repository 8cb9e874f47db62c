//go:build !linux

package fsutil

import "os"

// Fdatasync falls back to a full fsync where fdatasync is not available.
func Fdatasync(f *os.File) error { return f.Sync() }

// DropCache does nothing where the kernel offers no way to forget a
// file's cached pages.
func DropCache(f *os.File) error { return nil }
