// Package crashfs is an in-memory file system for the write-ahead log's
// tests (wal.FS) that simulates a power loss: at a chosen operation it
// "crashes", and what is left is what a disk could hold after the power
// went out, which a new FS then opens.
//
// The model, per file and per directory:
//
//   - A file's data survives a crash as of its last completed SyncFile
//     (fdatasync), size included. Every write since then is lost, except
//     that the last write before the crash is torn: a random prefix of it
//     reached the disk, and the rest of the page it ends in holds either
//     the old bytes or garbage. Besides, at random, some other pages
//     written since the sync reached the disk whole, or the file kept its
//     new size but only zeros beyond the synced data (its size was
//     written, its data not). A disk may do any of this; a log that
//     acknowledges only what fdatasync covered must come through all of
//     it.
//   - A directory's entries (creations, renames, removals) survive as of
//     its last SyncDir. A file created or renamed since then is gone, or
//     back under its old name; a file removed since then is back. A file
//     is what its name leads to: an inode whose data follows the rule
//     above whatever its name.
//   - Directories themselves are durable once made (the parent of the
//     log's directory is not this file system's).
//
// After the crash every operation fails with ErrCrashed, as on a machine
// without power, and Image returns what the disk holds.
//
// A process can also be killed (Kill, KillAt) without a power loss: the
// next process (Restart) finds every file as the kernel holds it, synced
// or not, and a later power loss still takes what was never synced.
package crashfs

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"time"

	"hookd/internal/store/wal"
)

// PageSize is the unit a disk writes whole or not at all, except for the
// torn page.
const PageSize = 4096

// ErrCrashed is the error of every operation after the crash.
var ErrCrashed = errors.New("crashfs: the power went out")

// Image is what the disk holds: for each directory, its files' contents
// by name.
type Image map[string]map[string][]byte

// Clone returns a deep copy of img.
func (img Image) Clone() Image {
	out := make(Image, len(img))
	for d, files := range img {
		m := make(map[string][]byte, len(files))
		for n, b := range files {
			m[n] = bytes.Clone(b)
		}
		out[d] = m
	}
	return out
}

type inode struct {
	data    []byte // what reads see: the page cache
	durable []byte // as of the last completed SyncFile
	// dirty holds the pages written since the last SyncFile, and
	// lastOff, lastEnd the last write (lastEnd > lastOff when there is
	// one).
	dirty            map[int64]bool
	lastOff, lastEnd int64
}

// FS is a wal.FS in memory. Its zero value is not usable: call New.
type FS struct {
	mu      sync.Mutex
	rng     *rand.Rand
	dirs    map[string]map[string]*inode // what the directories hold now
	durable map[string]map[string]*inode // as of each one's last SyncDir
	ops     int
	crashAt int  // the operation that crashes; 0: none
	kill    bool // crashAt kills the process instead of cutting the power
	crashed bool
	image   Image
}

var _ wal.FS = (*FS)(nil)

// New returns a file system holding img, all of it durable, whose random
// choices at the crash come from seed.
func New(img Image, seed uint64) *FS {
	f := &FS{
		rng:     rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15)),
		dirs:    map[string]map[string]*inode{},
		durable: map[string]map[string]*inode{},
	}
	for d, files := range img {
		d = filepath.Clean(d)
		f.dirs[d], f.durable[d] = map[string]*inode{}, map[string]*inode{}
		for n, b := range files {
			ino := &inode{data: bytes.Clone(b), durable: bytes.Clone(b)}
			f.dirs[d][n], f.durable[d][n] = ino, ino
		}
	}
	return f
}

// CrashAt makes the n-th operation from now that changes anything (a
// write, truncate, sync, create, rename or remove) crash instead of
// running; n <= 0 disarms it.
func (f *FS) CrashAt(n int) { f.arm(n, false) }

// KillAt is CrashAt for a Kill.
func (f *FS) KillAt(n int) { f.arm(n, true) }

func (f *FS) arm(n int, kill bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.crashAt, f.kill = 0, kill
	if n > 0 {
		f.crashAt = f.ops + n
	}
}

// Ops is how many operations that change anything have run.
func (f *FS) Ops() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.ops
}

// Crash cuts the power now, unless it is already out. After a Kill, it
// is the power loss that follows.
func (f *FS) Crash() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.crash()
}

// Kill stops the process without a power loss: every operation fails
// from now on, as for a process killed with SIGKILL, but the kernel keeps
// what it was given. Restart then gives the next process the same files,
// with nothing more durable than before.
func (f *FS) Kill() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.crashed = true
}

// Restart returns the file system as the next process finds it after a
// Kill: every file and name as the killed one left them, durable or not,
// with random choices from seed.
func (f *FS) Restart(seed uint64) *FS {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.image != nil {
		panic("crashfs: Restart after a power loss: open its Image with New")
	}
	n := New(nil, seed)
	copies := map[*inode]*inode{}
	cp := func(ino *inode) *inode {
		if c, ok := copies[ino]; ok {
			return c
		}
		c := &inode{data: bytes.Clone(ino.data), durable: bytes.Clone(ino.durable), lastOff: ino.lastOff, lastEnd: ino.lastEnd}
		if ino.dirty != nil {
			c.dirty = make(map[int64]bool, len(ino.dirty))
			for p := range ino.dirty {
				c.dirty[p] = true
			}
		}
		copies[ino] = c
		return c
	}
	for _, pair := range []struct{ from, to map[string]map[string]*inode }{{f.dirs, n.dirs}, {f.durable, n.durable}} {
		for d, entries := range pair.from {
			m := make(map[string]*inode, len(entries))
			for name, ino := range entries {
				m[name] = cp(ino)
			}
			pair.to[d] = m
		}
	}
	return n
}

// Crashed reports whether the power is out (or the process killed).
func (f *FS) Crashed() bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.crashed
}

// Image is what the disk holds after the crash (nil before it).
func (f *FS) Image() Image {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.image.Clone()
}

// op counts an operation that changes something, crashing at the chosen
// one. Call with mu held.
func (f *FS) op() error {
	if f.crashed {
		return ErrCrashed
	}
	f.ops++
	if f.crashAt > 0 && f.ops >= f.crashAt {
		f.crashed = true
		if !f.kill {
			f.crash()
		}
		return ErrCrashed
	}
	return nil
}

// crash makes the image. Call with mu held.
func (f *FS) crash() {
	if f.image != nil {
		return
	}
	f.crashed = true
	f.image = Image{}
	done := map[*inode][]byte{}
	dirs := make([]string, 0, len(f.durable))
	for d := range f.durable {
		dirs = append(dirs, d)
	}
	slices.Sort(dirs) // the random choices follow the seed
	for _, d := range dirs {
		files := map[string][]byte{}
		names := make([]string, 0, len(f.durable[d]))
		for n := range f.durable[d] {
			names = append(names, n)
		}
		slices.Sort(names)
		for _, n := range names {
			ino := f.durable[d][n]
			b, ok := done[ino]
			if !ok {
				b = f.survivor(ino)
				done[ino] = b
			}
			files[n] = bytes.Clone(b)
		}
		f.image[d] = files
	}
}

// survivor is what the disk holds of a file after the crash.
func (f *FS) survivor(ino *inode) []byte {
	out := bytes.Clone(ino.durable)
	if len(ino.dirty) == 0 && ino.lastEnd <= ino.lastOff {
		return out
	}
	switch f.rng.IntN(3) {
	case 1: // some pages written since the sync reached the disk whole
		pages := make([]int64, 0, len(ino.dirty))
		for p := range ino.dirty {
			pages = append(pages, p)
		}
		slices.Sort(pages)
		for _, p := range pages {
			if f.rng.IntN(2) == 0 {
				out = put(out, p*PageSize, span(ino.data, p*PageSize, (p+1)*PageSize))
			}
		}
	case 2: // the new size reached the disk, the data not
		if len(ino.data) > len(out) {
			out = append(out, make([]byte, len(ino.data)-len(out))...)
		}
	}
	// The last write is torn: a prefix of it reached the disk, and the
	// rest of the page it ends in holds garbage or what was there.
	if ino.lastEnd > ino.lastOff {
		cut := ino.lastOff + f.rng.Int64N(ino.lastEnd-ino.lastOff+1)
		out = put(out, ino.lastOff, span(ino.data, ino.lastOff, cut))
		if f.rng.IntN(2) == 0 && cut < ino.lastEnd {
			end := min(ino.lastEnd, (cut/PageSize+1)*PageSize)
			junk := make([]byte, end-cut)
			for i := range junk {
				junk[i] = byte(f.rng.Uint32())
			}
			out = put(out, cut, junk)
		}
	}
	return out
}

// span is b[from:to], clipped to b.
func span(b []byte, from, to int64) []byte {
	to = min(to, int64(len(b)))
	if from >= to {
		return nil
	}
	return b[from:to]
}

// put writes src into b at off, growing b with zeros as needed.
func put(b []byte, off int64, src []byte) []byte {
	if len(src) == 0 {
		return b
	}
	if end := off + int64(len(src)); end > int64(len(b)) {
		b = append(b, make([]byte, end-int64(len(b)))...)
	}
	copy(b[off:], src)
	return b
}

func (f *FS) lookup(name string) (dir, base string, ino *inode, err error) {
	dir, base = filepath.Split(filepath.Clean(name))
	dir = filepath.Clean(dir)
	d, ok := f.dirs[dir]
	if !ok {
		return dir, base, nil, &fs.PathError{Op: "open", Path: name, Err: fs.ErrNotExist}
	}
	return dir, base, d[base], nil
}

// MkdirAll implements wal.FS. Directories are durable at once.
func (f *FS) MkdirAll(dir string, perm os.FileMode) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.crashed {
		return ErrCrashed
	}
	dir = filepath.Clean(dir)
	if _, ok := f.dirs[dir]; !ok {
		f.dirs[dir], f.durable[dir] = map[string]*inode{}, map[string]*inode{}
	}
	return nil
}

// ReadDir implements wal.FS.
func (f *FS) ReadDir(dir string) ([]os.DirEntry, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.crashed {
		return nil, ErrCrashed
	}
	d, ok := f.dirs[filepath.Clean(dir)]
	if !ok {
		return nil, &fs.PathError{Op: "readdir", Path: dir, Err: fs.ErrNotExist}
	}
	out := make([]os.DirEntry, 0, len(d))
	for n, ino := range d {
		out = append(out, fs.FileInfoToDirEntry(info{name: n, size: int64(len(ino.data))}))
	}
	slices.SortFunc(out, func(a, b os.DirEntry) int {
		switch {
		case a.Name() < b.Name():
			return -1
		case a.Name() > b.Name():
			return 1
		}
		return 0
	})
	return out, nil
}

// OpenFile implements wal.FS.
func (f *FS) OpenFile(name string, flag int, perm os.FileMode) (wal.File, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.crashed {
		return nil, ErrCrashed
	}
	dir, base, ino, err := f.lookup(name)
	if err != nil {
		return nil, err
	}
	switch {
	case ino != nil && flag&os.O_CREATE != 0 && flag&os.O_EXCL != 0:
		return nil, &fs.PathError{Op: "open", Path: name, Err: fs.ErrExist}
	case ino == nil && flag&os.O_CREATE == 0:
		return nil, &fs.PathError{Op: "open", Path: name, Err: fs.ErrNotExist}
	case ino == nil:
		if err := f.op(); err != nil {
			return nil, err
		}
		ino = &inode{}
		f.dirs[dir][base] = ino
	case flag&os.O_TRUNC != 0:
		if err := f.op(); err != nil {
			return nil, err
		}
		ino.truncate(0)
	}
	return &file{fs: f, ino: ino, name: name, write: flag&(os.O_RDWR|os.O_WRONLY) != 0}, nil
}

// Rename implements wal.FS.
func (f *FS) Rename(oldpath, newpath string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.crashed {
		return ErrCrashed
	}
	odir, obase, ino, err := f.lookup(oldpath)
	if err == nil && ino == nil {
		err = &fs.PathError{Op: "rename", Path: oldpath, Err: fs.ErrNotExist}
	}
	if err != nil {
		return err
	}
	ndir, nbase, _, err := f.lookup(newpath)
	if err != nil {
		return err
	}
	if err := f.op(); err != nil {
		return err
	}
	delete(f.dirs[odir], obase)
	f.dirs[ndir][nbase] = ino
	return nil
}

// Remove implements wal.FS.
func (f *FS) Remove(name string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.crashed {
		return ErrCrashed
	}
	dir, base, ino, err := f.lookup(name)
	if err == nil && ino == nil {
		err = &fs.PathError{Op: "remove", Path: name, Err: fs.ErrNotExist}
	}
	if err != nil {
		return err
	}
	if err := f.op(); err != nil {
		return err
	}
	delete(f.dirs[dir], base)
	return nil
}

// SyncFile implements wal.FS: the file's data and size become durable.
func (f *FS) SyncFile(wf wal.File) error {
	fl, ok := wf.(*file)
	if !ok || fl.fs != f {
		return fmt.Errorf("crashfs: sync %s: not a file of this file system", wf.Name())
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if fl.closed {
		return &fs.PathError{Op: "fdatasync", Path: fl.name, Err: os.ErrClosed}
	}
	if err := f.op(); err != nil {
		return err
	}
	fl.ino.durable = bytes.Clone(fl.ino.data)
	fl.ino.dirty, fl.ino.lastOff, fl.ino.lastEnd = nil, 0, 0
	return nil
}

// SyncDir implements wal.FS: the directory's entries become durable.
func (f *FS) SyncDir(dir string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.crashed {
		return ErrCrashed
	}
	dir = filepath.Clean(dir)
	d, ok := f.dirs[dir]
	if !ok {
		return &fs.PathError{Op: "open", Path: dir, Err: fs.ErrNotExist}
	}
	if err := f.op(); err != nil {
		return err
	}
	m := make(map[string]*inode, len(d))
	for n, ino := range d {
		m[n] = ino
	}
	f.durable[dir] = m
	return nil
}

func (ino *inode) touch(off, end int64) {
	if ino.dirty == nil {
		ino.dirty = map[int64]bool{}
	}
	for p := off / PageSize; p*PageSize < end; p++ {
		ino.dirty[p] = true
	}
	ino.lastOff, ino.lastEnd = off, end
}

func (ino *inode) truncate(size int64) {
	old := int64(len(ino.data))
	if size < old {
		ino.data = ino.data[:size:size]
	} else {
		ino.data = append(ino.data, make([]byte, size-old)...)
	}
	// The pages cut or grown are dirty; no write is torn by it.
	ino.touch(min(size, old), max(size, old))
	ino.lastOff, ino.lastEnd = 0, 0
}

type file struct {
	fs     *FS
	ino    *inode
	name   string
	write  bool
	closed bool
}

func (fl *file) check(op string) error {
	if fl.fs.crashed {
		return ErrCrashed
	}
	if fl.closed {
		return &fs.PathError{Op: op, Path: fl.name, Err: os.ErrClosed}
	}
	return nil
}

func (fl *file) ReadAt(p []byte, off int64) (int, error) {
	fl.fs.mu.Lock()
	defer fl.fs.mu.Unlock()
	if err := fl.check("read"); err != nil {
		return 0, err
	}
	if off < 0 {
		return 0, &fs.PathError{Op: "read", Path: fl.name, Err: fs.ErrInvalid}
	}
	n := copy(p, span(fl.ino.data, off, off+int64(len(p))))
	if n < len(p) {
		return n, io.EOF
	}
	return n, nil
}

func (fl *file) WriteAt(p []byte, off int64) (int, error) {
	fl.fs.mu.Lock()
	defer fl.fs.mu.Unlock()
	if err := fl.check("write"); err != nil {
		return 0, err
	}
	if !fl.write || off < 0 {
		return 0, &fs.PathError{Op: "write", Path: fl.name, Err: fs.ErrInvalid}
	}
	if err := fl.fs.op(); err != nil {
		return 0, err
	}
	if len(p) > 0 {
		fl.ino.data = put(fl.ino.data, off, p)
		fl.ino.touch(off, off+int64(len(p)))
	}
	return len(p), nil
}

func (fl *file) Truncate(size int64) error {
	fl.fs.mu.Lock()
	defer fl.fs.mu.Unlock()
	if err := fl.check("truncate"); err != nil {
		return err
	}
	if !fl.write || size < 0 {
		return &fs.PathError{Op: "truncate", Path: fl.name, Err: fs.ErrInvalid}
	}
	if err := fl.fs.op(); err != nil {
		return err
	}
	fl.ino.truncate(size)
	return nil
}

func (fl *file) Stat() (os.FileInfo, error) {
	fl.fs.mu.Lock()
	defer fl.fs.mu.Unlock()
	if err := fl.check("stat"); err != nil {
		return nil, err
	}
	return info{name: filepath.Base(fl.name), size: int64(len(fl.ino.data))}, nil
}

func (fl *file) Name() string { return fl.name }

func (fl *file) Close() error {
	fl.fs.mu.Lock()
	defer fl.fs.mu.Unlock()
	if fl.closed {
		return &fs.PathError{Op: "close", Path: fl.name, Err: os.ErrClosed}
	}
	fl.closed = true
	return nil
}

// info describes a file for ReadDir and Stat.
type info struct {
	name string
	size int64
}

func (i info) Name() string       { return i.name }
func (i info) Size() int64        { return i.size }
func (i info) Mode() fs.FileMode  { return 0o600 }
func (i info) ModTime() time.Time { return time.Time{} }
func (i info) IsDir() bool        { return false }
func (i info) Sys() any           { return nil }
