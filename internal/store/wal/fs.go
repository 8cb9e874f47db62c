package wal

import (
	"fmt"
	"io"
	"os"

	"hookd/internal/fsutil"
)

// FS is the file system the log works on: the operating system's by
// default (OS). Tests give it one that simulates a power loss (package
// crashfs), which must know every step that makes something durable, so
// the log reaches files and directories through nothing else.
type FS interface {
	// MkdirAll makes dir and its parents.
	MkdirAll(dir string, perm os.FileMode) error
	// ReadDir lists dir (DirEntry.Info gives a file's size).
	ReadDir(dir string) ([]os.DirEntry, error)
	// OpenFile opens a file as os.OpenFile does (O_RDONLY, O_RDWR,
	// O_CREATE, O_EXCL and O_TRUNC are the flags the log uses).
	OpenFile(name string, flag int, perm os.FileMode) (File, error)
	// Rename renames a file within a directory.
	Rename(oldpath, newpath string) error
	// Remove deletes a file.
	Remove(name string) error
	// SyncFile makes f's data, and the size needed to read it, durable
	// (fdatasync).
	SyncFile(f File) error
	// SyncDir makes dir's entries durable: a new or renamed file's name
	// survives a power loss only after it.
	SyncDir(dir string) error
}

// File is an open file of an FS; *os.File is one.
type File interface {
	io.ReaderAt
	io.WriterAt
	io.Closer
	Truncate(size int64) error
	Stat() (os.FileInfo, error)
	Name() string
}

// OS returns the operating system's file system, syncing files with
// syncFile and directories with syncDir (fsutil.Fdatasync and
// fsutil.SyncDir when nil).
func OS(syncFile func(*os.File) error, syncDir func(string) error) FS {
	if syncFile == nil {
		syncFile = fsutil.Fdatasync
	}
	if syncDir == nil {
		syncDir = fsutil.SyncDir
	}
	return osFS{syncFile: syncFile, syncDir: syncDir}
}

type osFS struct {
	syncFile func(*os.File) error
	syncDir  func(string) error
}

func (osFS) MkdirAll(dir string, perm os.FileMode) error { return os.MkdirAll(dir, perm) }
func (osFS) ReadDir(dir string) ([]os.DirEntry, error)   { return os.ReadDir(dir) }
func (osFS) Rename(oldpath, newpath string) error        { return os.Rename(oldpath, newpath) }
func (osFS) Remove(name string) error                    { return os.Remove(name) }
func (o osFS) SyncDir(dir string) error                  { return o.syncDir(dir) }

func (osFS) OpenFile(name string, flag int, perm os.FileMode) (File, error) {
	f, err := os.OpenFile(name, flag, perm)
	if err != nil {
		return nil, err
	}
	return f, nil
}

func (o osFS) SyncFile(f File) error {
	osf, ok := f.(*os.File)
	if !ok {
		return fmt.Errorf("sync %s: not a file of the operating system", f.Name())
	}
	return o.syncFile(osf)
}
