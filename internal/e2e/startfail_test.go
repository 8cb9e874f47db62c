//go:build linux

package e2e

import (
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// serveFails runs `hookd serve args...` with env added to a clean
// environment and expects a failed start: it must exit non-zero within
// 30s, print no panic, and print exactly one error line, "hookd: …",
// which it returns.
func serveFails(t *testing.T, env []string, args ...string) string {
	t.Helper()
	cmd := exec.Command(hookdBin, append([]string{"serve"}, args...)...)
	cmd.Env = append(cleanEnv(), env...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	var stdout, stderr lockedBuffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Start(); err != nil {
		t.Fatalf("start hookd: %v", err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		cmd.Process.Kill()
		<-done
		t.Fatalf("hookd serve still runs 30s after it was started, want a failed start\nstdout:\n%s\nstderr:\n%s", stdout.String(), tail(stderr.String(), 4000))
	}
	code := cmd.ProcessState.ExitCode()
	out := stdout.String() + stderr.String()
	// Every line but the log's records at levels below ERROR: a message
	// continued on a second line counts as a second line.
	var errLines []string
	for _, l := range strings.Split(stderr.String(), "\n") {
		if l == "" || (strings.HasPrefix(l, "time=") && !strings.Contains(l, "level=ERROR")) {
			continue
		}
		errLines = append(errLines, l)
	}
	t.Logf("exit %d; stderr error lines: %q", code, errLines)
	if code == 0 {
		t.Fatalf("hookd serve exited 0, want a failed start\nstdout:\n%s\nstderr:\n%s", stdout.String(), stderr.String())
	}
	if strings.Contains(out, "panic") || strings.Contains(out, "goroutine ") {
		t.Fatalf("hookd serve panicked instead of naming the cause\nstderr:\n%s", tail(stderr.String(), 4000))
	}
	if len(errLines) != 1 || !strings.HasPrefix(errLines[0], "hookd: ") {
		t.Fatalf("got %d error lines %q, want exactly one \"hookd: …\" line\nstderr:\n%s", len(errLines), errLines, tail(stderr.String(), 4000))
	}
	return errLines[0]
}

// wantIn fails unless line holds every one of want.
func wantIn(t *testing.T, line string, want ...string) {
	t.Helper()
	for _, w := range want {
		if !strings.Contains(line, w) {
			t.Errorf("error line %q does not contain %q", line, w)
		}
	}
}

// startFailConfig is a configuration on the SQLite data directory data,
// with sources (YAML list items) and extra top-level keys.
func startFailConfig(data, extra, sources string) string {
	return fmt.Sprintf(`listen: 127.0.0.1:0
storage:
  path: %q
admin:
  tokens: [%q]
log:
  level: info
server:
  shutdown_grace: 5s
%ssources:
%s`, data, adminToken, extra, sources)
}

const startFailSource = `  - name: s
    event: {id: "json:id"}
`

// runOnce starts hookd on cfg, stores one event marked m and stops it
// cleanly, leaving a data directory that has been used.
func runOnce(t *testing.T, dir, cfg, m string) {
	t.Helper()
	p := startHookd(t, dir, "--config", cfg)
	c := newClient(1, 10*time.Second)
	defer c.CloseIdleConnections()
	if a := post(c, p.Base+"/in/s", []byte(fmt.Sprintf(`{"id":%q,"m":%q}`, m, m))); a.Status != http.StatusOK {
		t.Fatalf("POST: got %d %s (%v), want 200", a.Status, a.Body, a.Err)
	}
	if code, took := p.terminate(15 * time.Second); code != 0 {
		t.Fatalf("hookd exited %d %v after SIGTERM, want 0\nstderr:\n%s", code, took, tail(p.Stderr.String(), 3000))
	}
}

// segments returns the log's segment files in the data directory.
func segments(t *testing.T, data string) []string {
	t.Helper()
	segs, err := filepath.Glob(filepath.Join(data, "log", "*.wal"))
	if err != nil || len(segs) == 0 {
		t.Fatalf("no log segment in %s (%v)", data, err)
	}
	return segs
}

func garbage(t *testing.T, n int) []byte {
	b := make([]byte, n)
	rand.Read(b)
	return b
}

// TestStartFailuresNameTheCause starts hookd where it cannot start, one
// class of cause at a time: each start exits non-zero with one line that
// names the cause (the file, the address), and none panics.
func TestStartFailuresNameTheCause(t *testing.T) {
	t.Run("UnwritableDirectory", func(t *testing.T) {
		mnt := mountTmpfs(t, "1m")
		if err := os.Mkdir(filepath.Join(mnt, "data"), 0o700); err != nil {
			t.Fatal(err)
		}
		if err := syscall.Mount("tmpfs", mnt, "tmpfs", syscall.MS_REMOUNT|syscall.MS_RDONLY, ""); err != nil {
			t.Fatalf("remount %s read-only: %v", mnt, err)
		}
		data := filepath.Join(mnt, "data")
		line := serveFails(t, nil, "--data", data, "--listen", "127.0.0.1:0")
		wantIn(t, line, data, "read-only file system")
		// A data directory still to be made there.
		line = serveFails(t, nil, "--data", filepath.Join(mnt, "new"), "--listen", "127.0.0.1:0")
		wantIn(t, line, filepath.Join(mnt, "new"), "read-only file system")
	})
	t.Run("DatabaseIsADirectory", func(t *testing.T) {
		data := t.TempDir()
		if err := os.Mkdir(filepath.Join(data, "hookd.db"), 0o700); err != nil {
			t.Fatal(err)
		}
		line := serveFails(t, nil, "--data", data, "--listen", "127.0.0.1:0")
		wantIn(t, line, filepath.Join(data, "hookd.db"), "is a directory")
	})
	t.Run("DataDirectoryIsAFile", func(t *testing.T) {
		data := filepath.Join(t.TempDir(), "data")
		if err := os.WriteFile(data, []byte("x\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		line := serveFails(t, nil, "--data", data, "--listen", "127.0.0.1:0")
		wantIn(t, line, data, "not a directory")
	})
	t.Run("FullDisk", func(t *testing.T) {
		mnt := mountTmpfs(t, "1m")
		fillDisk(t, filepath.Join(mnt, "ballast"), 0)
		data := filepath.Join(mnt, "data")
		line := serveFails(t, nil, "--data", data, "--listen", "127.0.0.1:0")
		wantIn(t, line, filepath.Join(data, "hookd.db"))
		if !strings.Contains(line, "full") && !strings.Contains(line, "no space left on device") {
			t.Errorf("error line %q does not say the disk is full", line)
		}
	})
	t.Run("FullDiskUsedBefore", func(t *testing.T) {
		mnt := mountTmpfs(t, "8m")
		dir := t.TempDir()
		data := filepath.Join(mnt, "data")
		cfg := writeConfig(t, dir, startFailConfig(data, "", startFailSource))
		runOnce(t, dir, cfg, "before-full")
		fillDisk(t, filepath.Join(mnt, "ballast"), 0)
		line := serveFails(t, nil, "--config", cfg)
		wantIn(t, line, data)
		if !strings.Contains(line, "full") && !strings.Contains(line, "no space left on device") {
			t.Errorf("error line %q does not say the disk is full", line)
		}
	})
	t.Run("CorruptDatabase", func(t *testing.T) {
		data := t.TempDir()
		if err := os.WriteFile(filepath.Join(data, "hookd.db"), garbage(t, 8192), 0o600); err != nil {
			t.Fatal(err)
		}
		line := serveFails(t, nil, "--data", data, "--listen", "127.0.0.1:0")
		wantIn(t, line, filepath.Join(data, "hookd.db"), "not a database")
	})
	t.Run("CorruptLogSegment", func(t *testing.T) {
		dir := t.TempDir()
		data := filepath.Join(dir, "data")
		cfg := writeConfig(t, dir, startFailConfig(data, "", startFailSource))
		runOnce(t, dir, cfg, "in-the-segment")
		seg := segments(t, data)[0]
		fi, err := os.Stat(seg)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(seg, garbage(t, int(fi.Size())), 0o600); err != nil {
			t.Fatal(err)
		}
		line := serveFails(t, nil, "--config", cfg)
		wantIn(t, line, seg, "damaged")
	})
	t.Run("TornLogTailIsRecovered", func(t *testing.T) {
		// Not a failure: what a crash leaves at the end of the last
		// segment is cut off at the start, silently, as before.
		dir := t.TempDir()
		data := filepath.Join(dir, "data")
		cfg := writeConfig(t, dir, startFailConfig(data, "", startFailSource))
		runOnce(t, dir, cfg, "before-the-tail")
		segs := segments(t, data)
		f, err := os.OpenFile(segs[len(segs)-1], os.O_WRONLY|os.O_APPEND, 0)
		if err != nil {
			t.Fatal(err)
		}
		f.Write(garbage(t, 300))
		f.Close()
		p := startHookd(t, dir, "--config", cfg)
		c := newClient(1, 10*time.Second)
		defer c.CloseIdleConnections()
		evs := listEvents(t, c, p.Base, adminToken, "s")
		if len(evs) != 1 || evs[0].Body == nil || !strings.Contains(*evs[0].Body, "before-the-tail") {
			t.Errorf("after a torn tail: got events %+v, want the one stored before", evs)
		}
		if code, _ := p.terminate(15 * time.Second); code != 0 {
			t.Errorf("exit %d after SIGTERM, want 0", code)
		}
	})
	t.Run("WrongMasterKey", func(t *testing.T) {
		dir := t.TempDir()
		data := filepath.Join(dir, "data")
		key := func(id string) string { return id + ":" + base64.StdEncoding.EncodeToString(garbage(t, 32)) }
		issuer := `  - name: claims
    verify:
      - type: oauth_issuer
        clients: [{id: provider-a, secret: "start-fail-client-secret-0123456"}]
`
		cfg := writeConfig(t, dir, startFailConfig(data, fmt.Sprintf("secrets:\n  master_keys: [%q]\n", key("k1")), startFailSource+issuer))
		runOnce(t, dir, cfg, "sealed")
		// The same key id, another key.
		cfg = writeConfig(t, dir, startFailConfig(data, fmt.Sprintf("secrets:\n  master_keys: [%q]\n", key("k1")), startFailSource+issuer))
		line := serveFails(t, nil, "--config", cfg)
		wantIn(t, line, "master key")
	})
	t.Run("PostgresDown", func(t *testing.T) {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		addr := ln.Addr().String()
		ln.Close() // nothing listens there now
		line := serveFails(t, []string{"HOOKD_STORAGE_DRIVER=postgres", "HOOKD_STORAGE_DSN=postgres://hookd@" + addr + "/hookd"}, "--listen", "127.0.0.1:0")
		wantIn(t, line, addr, "connection refused")
	})
	t.Run("BadDSN", func(t *testing.T) {
		line := serveFails(t, []string{"HOOKD_STORAGE_DRIVER=postgres", "HOOKD_STORAGE_DSN=postgres://hookd@127.0.0.1:notaport/hookd"}, "--listen", "127.0.0.1:0")
		wantIn(t, line, "dsn")
	})
}
