package backup

import (
	"archive/tar"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// files is a small backup's content.
var files = []struct{ name, content string }{
	{"hookd.db", "the database"},
	{"log/00000000000000000001.wal", "segment one"},
	{"log/00000000000000000042.wal", "segment two"},
	{"master.key", "k1:key\n"},
}

func archive(t *testing.T) []byte {
	t.Helper()
	var buf bytes.Buffer
	w := NewWriter(&buf)
	for _, f := range files {
		if err := w.Add(f.name, int64(len(f.content)), func(w io.Writer) error {
			_, err := io.WriteString(w, f.content)
			return err
		}); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(Manifest{Hookd: "test", Driver: "sqlite", LogLSN: 50}); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func TestRoundTrip(t *testing.T) {
	t.Parallel()
	dir := filepath.Join(t.TempDir(), "backup")
	m, err := Extract(bytes.NewReader(archive(t)), dir)
	if err != nil {
		t.Fatalf("Extract: %v", err)
	}
	if m.LogLSN != 50 || len(m.Files) != len(files) {
		t.Fatalf("manifest: got lsn %d, %d files; want 50, %d", m.LogLSN, len(m.Files), len(files))
	}
	if _, err := Verify(dir); err != nil {
		t.Fatalf("Verify: %v", err)
	}
	data := filepath.Join(t.TempDir(), "data")
	if _, err := Restore(dir, data); err != nil {
		t.Fatalf("Restore: %v", err)
	}
	for _, f := range files {
		b, err := os.ReadFile(filepath.Join(data, filepath.FromSlash(f.name)))
		if err != nil || string(b) != f.content {
			t.Errorf("restored %s: got %q (%v), want %q", f.name, b, err, f.content)
		}
		if fi, err := os.Stat(filepath.Join(data, filepath.FromSlash(f.name))); err == nil && fi.Mode().Perm() != 0o600 {
			t.Errorf("restored %s: mode %v, want 0600", f.name, fi.Mode().Perm())
		}
	}
	// A second restore into the same directory is refused.
	if _, err := Restore(dir, data); err == nil || !strings.Contains(err.Error(), "not empty") {
		t.Errorf("Restore into a non-empty directory: got %v, want refused as not empty", err)
	}
}

// entry is one entry of a hand-made archive.
type entry struct {
	name, content string
}

func rawArchive(t *testing.T, es ...entry) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, e := range es {
		if err := tw.WriteHeader(&tar.Header{Name: e.name, Size: int64(len(e.content)), Mode: 0o600, Typeflag: tar.TypeReg}); err != nil {
			t.Fatal(err)
		}
		io.WriteString(tw, e.content)
	}
	tw.Close()
	return buf.Bytes()
}

func manifestOf(t *testing.T, es ...entry) entry {
	t.Helper()
	m := Manifest{Format: Format, Version: Version, Driver: "sqlite"}
	for _, e := range es {
		sum := sha256.Sum256([]byte(e.content))
		m.Files = append(m.Files, File{Name: e.name, Size: int64(len(e.content)), SHA256: hex.EncodeToString(sum[:])})
	}
	b, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return entry{ManifestName, string(b)}
}

// TestExtractRefuses feeds Extract archives a backup never is: each is
// refused, and nothing is left in the target directory.
func TestExtractRefuses(t *testing.T) {
	t.Parallel()
	db := entry{"hookd.db", "db"}
	seg := entry{"log/00000000000000000001.wal", "seg"}
	whole := archive(t)
	for _, c := range []struct {
		name    string
		archive []byte
		want    string
	}{
		{"Truncated", whole[:len(whole)/2], ""},
		{"NoManifest", rawArchive(t, db, seg), "without a manifest"},
		{"PathOutside", rawArchive(t, db, entry{"../evil", "x"}, manifestOf(t, db)), "unexpected file"},
		{"AbsolutePath", rawArchive(t, db, entry{"/etc/evil", "x"}, manifestOf(t, db)), "unexpected file"},
		{"OtherName", rawArchive(t, db, entry{"log/x.wal", "x"}, manifestOf(t, db)), "unexpected file"},
		{"NotListed", rawArchive(t, db, seg, manifestOf(t, db)), "does not list"},
		{"Missing", rawArchive(t, db, manifestOf(t, db, seg)), "missing"},
		{"Damaged", rawArchive(t, db, entry{seg.name, "SEG"}, manifestOf(t, db, seg)), "does not match"},
		{"Twice", rawArchive(t, db, db, manifestOf(t, db)), "twice"},
		{"AfterManifest", rawArchive(t, db, manifestOf(t, db), seg), "after its manifest"},
		{"NoDatabase", rawArchive(t, seg, manifestOf(t, seg)), "no hookd.db"},
		{"BadManifest", rawArchive(t, db, entry{ManifestName, `{"format":"other"}`}), "not a hookd backup"},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			parent := t.TempDir()
			dir := filepath.Join(parent, "backup")
			_, err := Extract(bytes.NewReader(c.archive), dir)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("Extract: got %v, want an error saying %q", err, c.want)
			}
			if _, serr := os.Stat(dir); !os.IsNotExist(serr) {
				t.Errorf("Extract failed but left %s behind (%v)", dir, serr)
			}
			if ents, _ := os.ReadDir(parent); len(ents) != 0 {
				t.Errorf("Extract failed but left %d entries next to the target", len(ents))
			}
		})
	}
}

func TestExtractIntoNonEmptyDirectory(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "keep"), []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := Extract(bytes.NewReader(archive(t)), dir); err == nil || !strings.Contains(err.Error(), "not empty") {
		t.Fatalf("Extract into a non-empty directory: got %v, want refused", err)
	}
	if b, err := os.ReadFile(filepath.Join(dir, "keep")); err != nil || string(b) != "x" {
		t.Errorf("the directory's file was touched: %q %v", b, err)
	}
}

// TestVerifyFindsDamage changes a backup at rest: Verify, and so Restore,
// refuse it.
func TestVerifyFindsDamage(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		name   string
		change func(dir string) error
		want   string
	}{
		{"FlippedByte", func(dir string) error {
			return os.WriteFile(filepath.Join(dir, "log", "00000000000000000042.wal"), []byte("segment twO"), 0o600)
		}, "damaged"},
		{"Truncated", func(dir string) error {
			return os.Truncate(filepath.Join(dir, "hookd.db"), 3)
		}, "damaged"},
		{"Removed", func(dir string) error { return os.Remove(filepath.Join(dir, "master.key")) }, "no such file"},
		{"Extra", func(dir string) error {
			return os.WriteFile(filepath.Join(dir, "log", "00000000000000000099.wal"), nil, 0o600)
		}, "does not list"},
		{"NoManifest", func(dir string) error { return os.Remove(filepath.Join(dir, ManifestName)) }, "not a complete hookd backup"},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			dir := filepath.Join(t.TempDir(), "backup")
			if _, err := Extract(bytes.NewReader(archive(t)), dir); err != nil {
				t.Fatal(err)
			}
			if err := c.change(dir); err != nil {
				t.Fatal(err)
			}
			if _, err := Verify(dir); err == nil || !strings.Contains(err.Error(), c.want) {
				t.Errorf("Verify: got %v, want an error saying %q", err, c.want)
			}
			data := filepath.Join(t.TempDir(), "data")
			if _, err := Restore(dir, data); err == nil {
				t.Errorf("Restore of a damaged backup succeeded")
			}
			if _, err := os.Stat(data); !os.IsNotExist(err) {
				t.Errorf("a refused Restore left %s behind (%v)", data, err)
			}
		})
	}
}
