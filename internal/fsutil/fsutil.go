// Package fsutil holds the file-system steps durability needs that the
// standard library leaves to the caller.
package fsutil

import "os"

// SyncDir fsyncs the directory dir, making the entries created or renamed
// in it durable (a new file's data can be synced and its name still lost).
func SyncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}
