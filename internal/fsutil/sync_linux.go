package fsutil

import (
	"os"
	"syscall"
)

// Fdatasync flushes the file's data and the metadata needed to read it
// back (not its times).
func Fdatasync(f *os.File) error {
	for {
		err := syscall.Fdatasync(int(f.Fd()))
		if err != syscall.EINTR {
			return err
		}
	}
}
