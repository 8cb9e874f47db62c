package cli

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"hookd/internal/config"
	"hookd/internal/secret"
)

// hookd backup through a running server and offline, and hookd restore:
// the refusals a user meets (a wrong token, a served data directory, a
// non-empty target), the master key in or out, and a server started on
// the restored directory with the events and the key.
func TestBackupAndRestoreVerbs(t *testing.T) {
	dir := t.TempDir()
	data := filepath.Join(dir, "data")
	if err := os.MkdirAll(data, 0o700); err != nil {
		t.Fatal(err)
	}
	key := secret.GenerateMasterKey("k1") + "\n"
	if err := os.WriteFile(filepath.Join(data, MasterKeyFile), []byte(key), 0o600); err != nil {
		t.Fatal(err)
	}
	yml := func(path string) *config.Config {
		cfg, err := config.Parse([]byte(fmt.Sprintf("admin: {tokens: [tok]}\nstorage: {path: %q}\nsources:\n  - {name: s, event: {id: \"json:id\"}}\n", path)))
		if err != nil {
			t.Fatal(err)
		}
		return cfg
	}
	app, base := startApp(t, yml(data), nil)
	ids := map[string]string{}
	for _, m := range []string{"a", "b", "c"} {
		ids[m] = postEvent(t, base, "s", fmt.Sprintf(`{"id":%q}`, m))
	}

	_, stderr, code := runCLI(t, nil, "backup", filepath.Join(dir, "x"), "--server", base, "--token", "wrong")
	if code != 1 || !strings.Contains(stderr, "invalid admin token") {
		t.Errorf("backup with a wrong token: exit %d, stderr %q; want 1 and the API's refusal", code, stderr)
	}
	if _, err := os.Stat(filepath.Join(dir, "x")); !os.IsNotExist(err) {
		t.Errorf("a refused backup left its directory behind (%v)", err)
	}
	_, stderr, code = runCLI(t, nil, "backup", filepath.Join(dir, "x"), "--data", data)
	if code != 1 || !strings.Contains(stderr, "another hookd serve") || !strings.Contains(stderr, "--server") {
		t.Errorf("offline backup of a served data directory: exit %d, stderr %q; want 1, pointing to --server", code, stderr)
	}
	if code, m := apiDo(t, "POST", base+"/api/v1/backup?master_key=maybe", "tok", ""); code != 400 {
		t.Errorf("POST /api/v1/backup?master_key=maybe: got %d %v, want 400", code, m)
	}

	withKey, noKey := filepath.Join(dir, "with-key"), filepath.Join(dir, "no-key")
	out, stderr, code := runCLI(t, nil, "backup", withKey, "--server", base, "--token", "tok")
	if code != 0 || !strings.Contains(out, "master key: yes") {
		t.Fatalf("backup: exit %d, stdout %q, stderr %q; want 0 and the master key in", code, out, stderr)
	}
	if _, stderr, code = runCLI(t, nil, "backup", noKey, "--server", base, "--token", "tok", "--without-master-key"); code != 0 {
		t.Fatalf("backup --without-master-key: exit %d, stderr %q", code, stderr)
	}
	if _, err := os.Stat(filepath.Join(noKey, MasterKeyFile)); !os.IsNotExist(err) {
		t.Errorf("backup --without-master-key holds %s (%v)", MasterKeyFile, err)
	}
	if _, stderr, code = runCLI(t, nil, "backup", withKey, "--server", base, "--token", "tok"); code != 1 || !strings.Contains(stderr, "not empty") {
		t.Errorf("backup into a non-empty directory: exit %d, stderr %q; want refused", code, stderr)
	}

	// Offline, once the server is gone.
	if err := app.Shutdown(t.Context()); err != nil {
		t.Fatal(err)
	}
	offline := filepath.Join(dir, "offline")
	if out, stderr, code = runCLI(t, nil, "backup", offline, "--data", data); code != 0 {
		t.Fatalf("offline backup: exit %d, stdout %q, stderr %q", code, out, stderr)
	}

	if _, stderr, code = runCLI(t, nil, "restore", withKey); code != 1 || !strings.Contains(stderr, "--data") {
		t.Errorf("restore without a target: exit %d, stderr %q; want 1 asking for --data", code, stderr)
	}
	for _, b := range []string{withKey, offline} {
		restored := filepath.Join(dir, "restored-"+filepath.Base(b))
		if out, stderr, code = runCLI(t, nil, "restore", b, "--data", restored); code != 0 {
			t.Fatalf("restore %s: exit %d, stdout %q, stderr %q", b, code, out, stderr)
		}
		if _, stderr, code = runCLI(t, nil, "restore", b, "--data", restored); code != 1 || !strings.Contains(stderr, "not empty") {
			t.Errorf("restore into a non-empty directory: exit %d, stderr %q; want refused", code, stderr)
		}
		if got, err := os.ReadFile(filepath.Join(restored, MasterKeyFile)); err != nil || string(got) != key {
			t.Errorf("restored master key: got %q (%v), want the original", got, err)
		}
		app2, base2 := startApp(t, yml(restored), nil)
		for m, id := range ids {
			if code, ev := apiDo(t, "GET", base2+"/api/v1/events/"+id, "tok", ""); code != 200 || ev["external_id"] != m {
				t.Errorf("restored from %s: event %s: got %d %v", filepath.Base(b), m, code, ev)
			}
		}
		if err := app2.Shutdown(t.Context()); err != nil {
			t.Fatal(err)
		}
	}
}

// On PostgreSQL, hookd backup refuses and names pg_dump.
func TestBackupOnPostgresRefuses(t *testing.T) {
	dsn := testPostgresDSN(t)
	cfg, err := config.Parse([]byte(fmt.Sprintf("admin: {tokens: [tok]}\nstorage: {driver: postgres, dsn: %q}\n", dsn)))
	if err != nil {
		t.Fatal(err)
	}
	_, base := startApp(t, cfg, nil)
	target := filepath.Join(t.TempDir(), "b")
	_, stderr, code := runCLI(t, nil, "backup", target, "--server", base, "--token", "tok")
	if code != 1 || !strings.Contains(stderr, "pg_dump") || !strings.Contains(stderr, "HTTP 409") {
		t.Errorf("backup of a PostgreSQL hookd: exit %d, stderr %q; want 1, 409 and pg_dump named", code, stderr)
	}
	if _, err := os.Stat(target); !os.IsNotExist(err) {
		t.Errorf("a refused backup left %s behind (%v)", target, err)
	}
}
