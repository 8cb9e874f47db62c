package fsutil

import (
	"os"
	"syscall"

	"golang.org/x/sys/unix"
)

// Fdatasync flushes the file's data and the metadata needed to read it
// back (not its times). It holds the file open for the call: a Close that
// races it waits for it instead of handing the descriptor's number to
// another file.
func Fdatasync(f *os.File) error {
	rc, err := f.SyscallConn()
	if err != nil {
		return err
	}
	var serr error
	if err := rc.Control(func(fd uintptr) {
		for {
			serr = syscall.Fdatasync(int(fd))
			if serr != syscall.EINTR {
				return
			}
		}
	}); err != nil {
		return err
	}
	if serr != nil {
		return &os.PathError{Op: "fdatasync", Path: f.Name(), Err: serr}
	}
	return nil
}

// Writable reports why dir cannot be written to (a read-only file system,
// no permission), or nil. It writes nothing.
func Writable(dir string) error {
	const wOK = 0x2
	return syscall.Access(dir, wOK)
}

// DropCache asks the kernel to forget the file's cached pages that are
// not dirty, so that the next reads come from the disk. After a failed
// fdatasync the kernel may keep pages it could not write, marked clean:
// what reads back from the cache is then not what the disk holds.
func DropCache(f *os.File) error {
	rc, err := f.SyscallConn()
	if err != nil {
		return err
	}
	var aerr error
	if err := rc.Control(func(fd uintptr) {
		aerr = unix.Fadvise(int(fd), 0, 0, unix.FADV_DONTNEED)
	}); err != nil {
		return err
	}
	if aerr != nil {
		return &os.PathError{Op: "fadvise", Path: f.Name(), Err: aerr}
	}
	return nil
}
