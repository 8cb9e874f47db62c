package sqlite

import (
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"hookd"
	"hookd/internal/store"
	"hookd/internal/store/wal"
)

// fullFS is the log's file system on a disk that is full for the log's
// segments on demand, and whose probes wait for the test.
type fullFS struct {
	wal.FS
	full    atomic.Bool
	gated   atomic.Bool // probes wait for release
	probing chan struct{}
	release chan struct{}
}

type fullFile struct {
	wal.File
	fs *fullFS
}

func (f fullFile) WriteAt(b []byte, off int64) (int, error) {
	if f.fs.full.Load() {
		return 0, syscall.ENOSPC
	}
	return f.File.WriteAt(b, off)
}

func (f *fullFS) OpenFile(name string, flag int, perm os.FileMode) (wal.File, error) {
	if f.gated.Load() && strings.HasPrefix(filepath.Base(name), ".probe") {
		f.probing <- struct{}{}
		<-f.release
	}
	x, err := f.FS.OpenFile(name, flag, perm)
	if err != nil || !strings.HasSuffix(name, ".wal") {
		return x, err
	}
	return fullFile{File: x, fs: f}, nil
}

func (f *fullFS) SyncFile(x wal.File) error {
	if ff, ok := x.(fullFile); ok {
		x = ff.File
	}
	return f.FS.SyncFile(x)
}

// An append that fails while a probe of the disk runs keeps hookd not
// ready: the probe began before that failure and says nothing about it,
// so it takes another probe to clear it.
func TestAppendFailingDuringProbeStaysNotReady(t *testing.T) {
	fs := &fullFS{FS: wal.OS(nil, nil), probing: make(chan struct{}), release: make(chan struct{})}
	st, err := Open(t.Context(), t.TempDir(), testLogger(t), Options{logFS: fs})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	defer close(fs.release) // probes from here on pass at once
	fs.gated.Store(true)
	ins := func() error {
		_, err := st.EventInsertMany(t.Context(), []*store.EventInsert{{Event: &hookd.Event{
			ID: hookd.EventIDPrefix + hookd.NewULID(time.Now()), Source: "s",
			ReceivedAt: time.Now(), Body: []byte(`{}`),
		}}})
		return err
	}
	if err := ins(); err != nil {
		t.Fatal(err)
	}
	fs.full.Store(true)
	if ins() == nil {
		t.Fatal("append passed on a full disk")
	}
	// The recovery probes the disk while another append fails.
	<-fs.probing
	if ins() == nil {
		t.Fatal("append passed on a full disk")
	}
	fs.release <- struct{}{} // the first probe passes
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(time.Millisecond) {
		select {
		case <-fs.probing:
			// A second probe, for the second failure: until it passes,
			// hookd is not ready.
			if st.Ready(t.Context()) == nil {
				t.Error("ready while an append failed after the last probe began")
			}
			fs.release <- struct{}{}
			return
		default:
		}
		if st.Ready(t.Context()) == nil {
			t.Fatal("ready after a probe that began before the last failed append, with no probe since")
		}
		if time.Now().After(deadline) {
			t.Fatal("no second probe")
		}
	}
}
