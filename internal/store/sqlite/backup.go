package sqlite

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"

	"hookd"
)

// BackupFile is one file of a backup of the store, in the layout of the
// data directory.
type BackupFile struct {
	// Name is the file's path in the data directory, with slashes:
	// FileName, or LogDir + "/" + a segment's name.
	Name string
	// Size is the file's length: Copy writes exactly that many bytes.
	Size int64
	// Copy writes the file's content.
	Copy func(w io.Writer) error
}

// backupTemp is the pattern of the database copies a backup makes in the
// data directory while it runs; a start removes the ones a crash left.
const backupTemp = "backup-*.db.tmp"

// Backup copies the store while it serves, consistent to one point: a
// data directory made of the files it hands to fn, in order, holds every
// event acknowledged before Backup was called (and everything else the
// database held at a moment after that), and opens as this one would
// have. It returns the LSN of the last log record the copy holds.
//
// The database is copied with VACUUM INTO from one read transaction,
// after the indexer has caught up with everything logged when Backup
// began; the log is copied up to the last record that copy has indexed,
// so that a start on the copy replays nothing it does not need. Segments
// are not released while a backup runs (retention waits), and one
// backup runs at a time. The database copy is made in the data
// directory, next to the database, and removed when Backup returns.
func (s *Store) Backup(ctx context.Context, fn func(BackupFile) error) (uint64, error) {
	// One at a time, and a second is refused at once rather than queued
	// behind a first whose client may be slow.
	if !s.backupMu.TryLock() {
		return 0, hookd.Errorf(hookd.EConflict, "a backup is already running; try again when it has finished")
	}
	defer s.backupMu.Unlock()
	// From here until the log is copied, no segment is given up: the
	// database copy may point into any segment it had not released.
	s.releaseMu.Lock()
	defer s.releaseMu.Unlock()
	if err := s.caughtUp(ctx); err != nil {
		return 0, fmt.Errorf("backup: %w", err)
	}
	dir := filepath.Dir(s.path)
	removeBackupTemps(dir)
	tmp, err := os.CreateTemp(dir, backupTemp)
	if err != nil {
		return 0, fmt.Errorf("backup: %w", err)
	}
	tmpPath := tmp.Name()
	tmp.Close()
	defer os.Remove(tmpPath)
	// A connection of its own: the readers are query_only, and the
	// writer and the checkpointer must not wait for the copy. VACUUM
	// INTO reads from one transaction: a consistent snapshot, which
	// the writer does not wait for (WAL mode).
	db, err := OpenFile(s.path, "mode=ro&_busy_timeout=5000")
	if err != nil {
		return 0, fmt.Errorf("backup: open the database: %w", err)
	}
	db.SetMaxOpenConns(1)
	_, err = db.ExecContext(ctx, `VACUUM INTO ?`, tmpPath)
	db.Close()
	if err != nil {
		return 0, fmt.Errorf("backup: copy the database: %w", mapErr(err))
	}
	lsn, err := indexedIn(ctx, tmpPath)
	if err != nil {
		return 0, fmt.Errorf("backup: %w", err)
	}
	parts, err := s.wal.Parts(lsn)
	if err != nil {
		return 0, fmt.Errorf("backup: %w", err)
	}
	f, err := os.Open(tmpPath)
	if err != nil {
		return 0, fmt.Errorf("backup: %w", err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return 0, fmt.Errorf("backup: %w", err)
	}
	err = fn(BackupFile{Name: FileName, Size: fi.Size(), Copy: func(w io.Writer) error {
		n, err := io.Copy(w, io.NewSectionReader(f, 0, fi.Size()))
		if err == nil && n != fi.Size() {
			err = fmt.Errorf("copied %d bytes of %d", n, fi.Size())
		}
		return err
	}})
	if err != nil {
		return 0, err
	}
	for _, p := range parts {
		p := p
		err := fn(BackupFile{Name: LogDir + "/" + p.Name, Size: p.Size, Copy: func(w io.Writer) error { return s.wal.ReadPart(p, w) }})
		if err != nil {
			return 0, err
		}
	}
	return lsn, nil
}

// indexedIn reads the index position of the database file at path.
func indexedIn(ctx context.Context, path string) (uint64, error) {
	db, err := OpenFile(path, "mode=ro&immutable=1")
	if err != nil {
		return 0, fmt.Errorf("open the database copy: %w", err)
	}
	defer db.Close()
	var v string
	if err := db.QueryRowContext(ctx, `SELECT value FROM settings WHERE name = ?`, indexedSetting).Scan(&v); err != nil {
		return 0, fmt.Errorf("read the database copy's index position: %w", mapErr(err))
	}
	lsn, err := strconv.ParseUint(v, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("read the database copy's index position %q: %w", v, err)
	}
	return lsn, nil
}

// removeBackupTemps removes the database copies of backups that a crash
// interrupted.
func removeBackupTemps(dir string) {
	names, _ := filepath.Glob(filepath.Join(dir, backupTemp))
	for _, n := range names {
		os.Remove(n)
	}
}
