//go:build unix

package sqlite

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// lockWait is how long Open tries again for a data directory that another
// process holds: long enough for a predecessor that is just exiting, short
// enough that a second hookd serve is refused at once.
var lockWait = 1500 * time.Millisecond

// dirLock is the exclusive lock of a data directory (see LockFile).
type dirLock struct {
	f *os.File
}

// lockDir takes the data directory dir for this process, or answers an
// *inUseError naming the process that has it. The lock is an flock(2) on
// dir's LockFile: it belongs to the open file, so a second Open in the
// same process is refused too, and the kernel releases it when the
// process dies.
func lockDir(dir string) (*dirLock, error) {
	path := filepath.Join(dir, LockFile)
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("open the data directory's lock file: %w", err)
	}
	deadline := time.Now().Add(lockWait)
	for {
		err = unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB)
		if err == nil {
			break
		}
		if errors.Is(err, unix.EINTR) {
			continue
		}
		if !errors.Is(err, unix.EWOULDBLOCK) {
			f.Close()
			return nil, fmt.Errorf("lock %s: %w (hookd needs file locks in its data directory, to keep a second process out)", path, err)
		}
		if time.Now().After(deadline) {
			pid := lockHolder(f)
			f.Close()
			return nil, &inUseError{dir: absDir(dir), pid: pid}
		}
		time.Sleep(50 * time.Millisecond)
	}
	// The pid is only for the message to a second process: a write that
	// fails (a full disk; the start fails on the database next) changes
	// nothing else. Written over what was there, then cut, so that a file
	// that already has a few bytes needs no new block.
	b := []byte(strconv.Itoa(os.Getpid()) + "\n")
	if _, err := f.WriteAt(b, 0); err == nil {
		f.Truncate(int64(len(b)))
	}
	return &dirLock{f: f}, nil
}

// lockHolder reads the pid the lock's holder wrote, 0 if there is none.
func lockHolder(f *os.File) int {
	b := make([]byte, 32)
	n, _ := f.ReadAt(b, 0)
	pid, err := strconv.Atoi(strings.TrimSpace(string(b[:n])))
	if err != nil || pid <= 0 {
		return 0
	}
	return pid
}

// release gives the data directory up. Safe on nil.
func (l *dirLock) release() {
	if l == nil {
		return
	}
	// Closing the file releases the lock; the file stays, for the next
	// process to lock (removing it would let two processes lock two
	// different files of the same name).
	l.f.Close()
}
