// Package backup is the format of hookd's backups of its embedded store:
// the files of a data directory (the SQLite database, the write-ahead
// log's segments, the generated master key) and a manifest that names
// each with its size and SHA-256. A backup travels as a tar stream whose
// last entry is the manifest (Writer, Extract) and rests as a directory
// (Verify, Restore). Archives come from a server over the network:
// Extract takes nothing on trust (names, sizes, checksums).
package backup

import (
	"archive/tar"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"time"

	"hookd/internal/fsutil"
)

const (
	// ManifestName is the manifest's name, in an archive and in a
	// backup directory.
	ManifestName = "manifest.json"
	// Format names the manifest's format.
	Format = "hookd-backup"
	// Version is the manifest's format version.
	Version = 1
	// MasterKeyName is the generated master key's file.
	MasterKeyName = "master.key"
	// ContentType is the media type of an archive.
	ContentType = "application/x-tar"

	// maxManifest bounds the manifest read into memory.
	maxManifest = 16 << 20
	// maxFiles bounds the files of one backup.
	maxFiles = 100_000
)

// fileName is every name a backup may hold besides the manifest: the
// database, the log's segments (named by their first LSN) and the master
// key. Nothing else is ever written, so a name cannot leave the
// directory.
var fileName = regexp.MustCompile(`^(hookd\.db|master\.key|log/[0-9]{1,20}\.wal)$`)

// Manifest describes a backup.
type Manifest struct {
	Format string `json:"format"`
	// Version is the manifest's format version.
	Version int `json:"version"`
	// Hookd is the version of the hookd that made it.
	Hookd string `json:"hookd_version"`
	// CreatedAt is when the backup began.
	CreatedAt time.Time `json:"created_at"`
	// Driver is the store it was taken of: "sqlite".
	Driver string `json:"driver"`
	// LogLSN is the last write-ahead log record the backup holds.
	LogLSN uint64 `json:"log_lsn"`
	// Files are the backup's files, the manifest aside.
	Files []File `json:"files"`
}

// File is one file of a backup.
type File struct {
	// Name is its path in the data directory, with slashes.
	Name string `json:"name"`
	// Size is its length in bytes.
	Size int64 `json:"size"`
	// SHA256 is the hex SHA-256 of its content.
	SHA256 string `json:"sha256"`
}

// check validates a manifest read from outside.
func (m *Manifest) check() error {
	if m.Format != Format || m.Version != Version {
		return fmt.Errorf("not a hookd backup manifest of version %d (format %q, version %d)", Version, m.Format, m.Version)
	}
	if len(m.Files) > maxFiles {
		return fmt.Errorf("manifest lists %d files, more than %d", len(m.Files), maxFiles)
	}
	seen := map[string]bool{}
	db := false
	for _, f := range m.Files {
		if !fileName.MatchString(f.Name) {
			return fmt.Errorf("manifest names an unexpected file %q", f.Name)
		}
		if seen[f.Name] {
			return fmt.Errorf("manifest names %s twice", f.Name)
		}
		seen[f.Name] = true
		if f.Size < 0 {
			return fmt.Errorf("manifest gives %s a negative size", f.Name)
		}
		if b, err := hex.DecodeString(f.SHA256); err != nil || len(b) != sha256.Size {
			return fmt.Errorf("manifest gives %s an invalid sha256", f.Name)
		}
		db = db || f.Name == "hookd.db"
	}
	if !db {
		return errors.New("manifest lists no hookd.db")
	}
	return nil
}

// Writer writes an archive: each file as it is added, the manifest last.
type Writer struct {
	tw    *tar.Writer
	files []File
	names map[string]bool
	now   time.Time
}

// NewWriter returns a Writer onto w.
func NewWriter(w io.Writer) *Writer {
	return &Writer{tw: tar.NewWriter(w), names: map[string]bool{}, now: time.Now().UTC()}
}

// Add writes one file of size bytes, which copy writes.
func (w *Writer) Add(name string, size int64, copy func(io.Writer) error) error {
	if !fileName.MatchString(name) || w.names[name] {
		return fmt.Errorf("backup: unexpected file %q", name)
	}
	w.names[name] = true
	if err := w.tw.WriteHeader(&tar.Header{Name: name, Size: size, Mode: 0o600, ModTime: w.now, Typeflag: tar.TypeReg}); err != nil {
		return fmt.Errorf("backup: %w", err)
	}
	h := sha256.New()
	cw := &countWriter{w: io.MultiWriter(w.tw, h)}
	if err := copy(cw); err != nil {
		return fmt.Errorf("backup: %s: %w", name, err)
	}
	if cw.n != size {
		return fmt.Errorf("backup: %s: wrote %d bytes of %d", name, cw.n, size)
	}
	w.files = append(w.files, File{Name: name, Size: size, SHA256: hex.EncodeToString(h.Sum(nil))})
	return nil
}

// Close writes the manifest m, with the files added, and ends the
// archive.
func (w *Writer) Close(m Manifest) error {
	m.Format, m.Version, m.Files = Format, Version, w.files
	b, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return err
	}
	b = append(b, '\n')
	if err := w.tw.WriteHeader(&tar.Header{Name: ManifestName, Size: int64(len(b)), Mode: 0o600, ModTime: w.now, Typeflag: tar.TypeReg}); err != nil {
		return fmt.Errorf("backup: %w", err)
	}
	if _, err := w.tw.Write(b); err != nil {
		return fmt.Errorf("backup: %w", err)
	}
	return w.tw.Close()
}

type countWriter struct {
	w io.Writer
	n int64
}

func (c *countWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}

// Extract reads an archive from r into dir, which must be empty or not
// exist: it writes each file, checks them all against the manifest (the
// archive's last entry) and then writes the manifest, so that a directory
// without one is not a backup. On error it removes what it wrote.
func Extract(r io.Reader, dir string) (m *Manifest, err error) {
	made, err := prepareDir(dir)
	if err != nil {
		return nil, err
	}
	var written []string
	defer func() {
		if err != nil {
			cleanup(dir, made, written)
		}
	}()
	tr := tar.NewReader(r)
	got := map[string]File{}
	for {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return nil, errors.New("the archive ended without a manifest: the backup is incomplete")
		}
		if err != nil {
			return nil, fmt.Errorf("read the archive: %w", err)
		}
		if hdr.Typeflag != tar.TypeReg {
			return nil, fmt.Errorf("the archive holds %q, not a regular file", hdr.Name)
		}
		if hdr.Name == ManifestName {
			b, err := io.ReadAll(io.LimitReader(tr, maxManifest+1))
			if err != nil {
				return nil, fmt.Errorf("read the manifest: %w", err)
			}
			if len(b) > maxManifest {
				return nil, fmt.Errorf("the manifest exceeds %d bytes", maxManifest)
			}
			if _, err := tr.Next(); !errors.Is(err, io.EOF) {
				return nil, errors.New("the archive goes on after its manifest")
			}
			m, err := parseManifest(b)
			if err != nil {
				return nil, err
			}
			if err := matches(m, got); err != nil {
				return nil, err
			}
			written = append(written, ManifestName)
			if err := writeFile(filepath.Join(dir, ManifestName), bytes.NewReader(b), int64(len(b))); err != nil {
				return nil, err
			}
			if err := syncDirs(dir, m); err != nil {
				return nil, err
			}
			return m, nil
		}
		if !fileName.MatchString(hdr.Name) {
			return nil, fmt.Errorf("the archive holds an unexpected file %q", hdr.Name)
		}
		if _, dup := got[hdr.Name]; dup {
			return nil, fmt.Errorf("the archive holds %s twice", hdr.Name)
		}
		if len(got) >= maxFiles {
			return nil, fmt.Errorf("the archive holds more than %d files", maxFiles)
		}
		path := filepath.Join(dir, filepath.FromSlash(hdr.Name))
		if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
			return nil, err
		}
		written = append(written, hdr.Name)
		sum, err := writeHashed(path, tr, hdr.Size)
		if err != nil {
			return nil, fmt.Errorf("write %s: %w", hdr.Name, err)
		}
		got[hdr.Name] = File{Name: hdr.Name, Size: hdr.Size, SHA256: sum}
	}
}

// matches checks that the files received are exactly the manifest's.
func matches(m *Manifest, got map[string]File) error {
	for _, f := range m.Files {
		g, ok := got[f.Name]
		if !ok {
			return fmt.Errorf("%s is missing from the archive", f.Name)
		}
		if g.Size != f.Size || g.SHA256 != f.SHA256 {
			return fmt.Errorf("%s does not match its manifest entry (size %d, want %d; checksum differs: %v)", f.Name, g.Size, f.Size, g.SHA256 != f.SHA256)
		}
		delete(got, f.Name)
	}
	for name := range got {
		return fmt.Errorf("the archive holds %s, which its manifest does not list", name)
	}
	return nil
}

func parseManifest(b []byte) (*Manifest, error) {
	var m Manifest
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, fmt.Errorf("read the manifest: %w", err)
	}
	if err := m.check(); err != nil {
		return nil, fmt.Errorf("the manifest: %w", err)
	}
	return &m, nil
}

// Verify checks the backup in dir: its manifest, and every file it lists
// by size and checksum; a file it does not list is an error too.
func Verify(dir string) (*Manifest, error) {
	f, err := os.Open(filepath.Join(dir, ManifestName))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("%s holds no %s: not a complete hookd backup", dir, ManifestName)
	}
	if err != nil {
		return nil, err
	}
	b, err := io.ReadAll(io.LimitReader(f, maxManifest+1))
	f.Close()
	if err != nil {
		return nil, fmt.Errorf("read the manifest: %w", err)
	}
	if len(b) > maxManifest {
		return nil, fmt.Errorf("the manifest exceeds %d bytes", maxManifest)
	}
	m, err := parseManifest(b)
	if err != nil {
		return nil, err
	}
	listed := map[string]bool{ManifestName: true}
	for _, f := range m.Files {
		listed[f.Name] = true
		sum, size, err := hashFile(filepath.Join(dir, filepath.FromSlash(f.Name)))
		if err != nil {
			return nil, err
		}
		if size != f.Size || sum != f.SHA256 {
			return nil, fmt.Errorf("%s is damaged: it does not match the manifest (size %d, want %d)", f.Name, size, f.Size)
		}
	}
	err = filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			return nil
		}
		rel, err := filepath.Rel(dir, path)
		if err != nil {
			return err
		}
		if !listed[filepath.ToSlash(rel)] {
			return fmt.Errorf("%s holds %s, which the manifest does not list", dir, rel)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return m, nil
}

// Restore verifies the backup in dir and copies its files into dataDir,
// which must be empty or not exist, making them durable: hookd serve
// starts on dataDir as it would have on the data directory backed up.
func Restore(dir, dataDir string) (m *Manifest, err error) {
	if m, err = Verify(dir); err != nil {
		return nil, err
	}
	made, err := prepareDir(dataDir)
	if err != nil {
		return nil, err
	}
	var written []string
	defer func() {
		if err != nil {
			cleanup(dataDir, made, written)
		}
	}()
	for _, f := range m.Files {
		src, err := os.Open(filepath.Join(dir, filepath.FromSlash(f.Name)))
		if err != nil {
			return nil, err
		}
		dst := filepath.Join(dataDir, filepath.FromSlash(f.Name))
		if err := os.MkdirAll(filepath.Dir(dst), 0o700); err != nil {
			src.Close()
			return nil, err
		}
		written = append(written, f.Name)
		sum, err := writeHashed(dst, src, f.Size)
		src.Close()
		if err != nil {
			return nil, fmt.Errorf("restore %s: %w", f.Name, err)
		}
		if sum != f.SHA256 {
			return nil, fmt.Errorf("restore %s: it changed while it was copied", f.Name)
		}
	}
	if err := syncDirs(dataDir, m); err != nil {
		return nil, err
	}
	return m, nil
}

// prepareDir makes dir if it does not exist and refuses one that holds
// anything. made says whether it made it.
func prepareDir(dir string) (made bool, err error) {
	ents, err := os.ReadDir(dir)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return false, err
		}
		return true, nil
	case err != nil:
		return false, err
	case len(ents) > 0:
		return false, fmt.Errorf("%s is not empty: give a new or empty directory", dir)
	}
	return false, nil
}

// cleanup removes what an Extract or Restore that failed wrote.
func cleanup(dir string, made bool, written []string) {
	if made {
		os.RemoveAll(dir)
		return
	}
	for _, name := range written {
		os.Remove(filepath.Join(dir, filepath.FromSlash(name)))
	}
	os.Remove(filepath.Join(dir, "log"))
}

// writeHashed writes exactly size bytes of r to a new file at path,
// synced, and returns their SHA-256.
func writeHashed(path string, r io.Reader, size int64) (string, error) {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return "", err
	}
	h := sha256.New()
	n, err := io.Copy(io.MultiWriter(f, h), io.LimitReader(r, size))
	if err == nil && n != size {
		err = fmt.Errorf("got %d bytes of %d", n, size)
	}
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

func writeFile(path string, r io.Reader, size int64) error {
	_, err := writeHashed(path, r, size)
	return err
}

func hashFile(path string) (string, int64, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", 0, err
	}
	defer f.Close()
	h := sha256.New()
	n, err := io.Copy(h, f)
	if err != nil {
		return "", 0, fmt.Errorf("read %s: %w", path, err)
	}
	return hex.EncodeToString(h.Sum(nil)), n, nil
}

// syncDirs makes the entries of dir and of its log directory durable.
func syncDirs(dir string, m *Manifest) error {
	for _, f := range m.Files {
		if strings.HasPrefix(f.Name, "log/") {
			if err := fsutil.SyncDir(filepath.Join(dir, "log")); err != nil {
				return err
			}
			break
		}
	}
	return fsutil.SyncDir(dir)
}
