//go:build unix

package exec

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	osexec "os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"hookd/internal/destination"
	"hookd/internal/destination/destinationtest"
)

// Most tests run a script as ["/bin/sh", script] rather than executing the
// script itself: executing a file just written, while parallel tests fork,
// can fail with ETXTBSY (golang/go#22315). TestInheritEnv, which runs
// alone, executes one directly.

// tool returns the absolute path of a program the tests need.
func tool(t *testing.T, name string) string {
	t.Helper()
	p, err := osexec.LookPath(name)
	if err != nil {
		t.Skipf("%s not found: %v", name, err)
	}
	p, err = filepath.Abs(p)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// script writes a shell script into a fresh directory and returns the
// command that runs it, followed by args.
func script(t *testing.T, body string, args ...string) []string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "hook.sh")
	if err := os.WriteFile(path, []byte("#!/bin/sh\n"+body+"\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	return append([]string{tool(t, "sh"), path}, args...)
}

// openExec opens an exec destination with opts, closed at cleanup.
func openExec(t *testing.T, opts map[string]any) destination.Destination {
	t.Helper()
	d, err := destination.Open(context.Background(), Type, nil, destinationtest.Options(opts))
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { _ = d.Close() })
	return d
}

func deliver(t *testing.T, d destination.Destination, m *destination.Message) (destination.Result, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	return d.Deliver(ctx, m)
}

// dirSink is a directory the conformance script writes one file per run
// into, named <unix nanoseconds>.<pid>.<event id>.
type dirSink struct{ dir string }

const sinkScript = `set -eu
cat > "$SINK/$(date +%s%N).$$.$HOOKD_EVENT_ID"`

func (s dirSink) Received(t *testing.T) []destinationtest.Received {
	t.Helper()
	entries, err := os.ReadDir(s.dir)
	if err != nil {
		t.Fatalf("sink: %v", err)
	}
	type arrival struct {
		ns, pid int64
		r       destinationtest.Received
	}
	var got []arrival
	for _, e := range entries {
		parts := strings.SplitN(e.Name(), ".", 3)
		if len(parts) != 3 {
			t.Fatalf("sink: unexpected file %q", e.Name())
		}
		ns, err1 := strconv.ParseInt(parts[0], 10, 64)
		pid, err2 := strconv.ParseInt(parts[1], 10, 64)
		if err1 != nil || err2 != nil {
			t.Fatalf("sink: unexpected file %q (does date support +%%s%%N?)", e.Name())
		}
		body, err := os.ReadFile(filepath.Join(s.dir, e.Name()))
		if err != nil {
			t.Fatalf("sink: %v", err)
		}
		got = append(got, arrival{ns, pid, destinationtest.Received{EventID: parts[2], Body: body}})
	}
	sort.Slice(got, func(i, j int) bool {
		if got[i].ns != got[j].ns {
			return got[i].ns < got[j].ns
		}
		return got[i].pid < got[j].pid
	})
	out := make([]destinationtest.Received, len(got))
	for i, a := range got {
		out[i] = a.r
	}
	return out
}

func TestConformance(t *testing.T) {
	t.Parallel()
	destinationtest.Run(t, func(t *testing.T) (destination.Destination, destinationtest.Sink) {
		sink := dirSink{dir: t.TempDir()}
		d, err := destination.Open(context.Background(), Type, nil, destinationtest.Options(map[string]any{
			"command": script(t, sinkScript),
			"env":     map[string]string{"SINK": sink.dir},
		}))
		if err != nil {
			t.Fatalf("Open: %v", err)
		}
		return d, sink
	})
}

// envOf parses the output of env(1).
func envOf(out []byte) map[string]string {
	m := map[string]string{}
	for _, line := range strings.Split(strings.TrimSuffix(string(out), "\n"), "\n") {
		if k, v, ok := strings.Cut(line, "="); ok {
			m[k] = v
		}
	}
	return m
}

func TestEnvironment(t *testing.T) {
	t.Parallel()
	d := openExec(t, map[string]any{
		"command": []string{tool(t, "env")},
		"env":     map[string]string{"GREETING": "héllo = world", "_X1": ""},
	})
	m := destinationtest.NewMessage([]byte("{}"), "application/json; charset=utf-8")
	m.Event.Key = "order\x00-42"
	m.Event.ReceivedAt = time.Date(2026, 1, 2, 3, 4, 5, 6000, time.FixedZone("CET", 3600))
	m.Attempt = 3
	res, err := deliver(t, d, m)
	if err != nil {
		t.Fatalf("Deliver: %v", err)
	}
	if len(res.ResponseExcerpt) >= destination.MaxExcerpt {
		t.Fatalf("env output truncated (%d bytes): cannot check it", len(res.ResponseExcerpt))
	}
	want := map[string]string{
		"PATH":               DefaultPath,
		"GREETING":           "héllo = world",
		"_X1":                "",
		"HOOKD_EVENT_ID":     m.Event.ID,
		"HOOKD_EVENT_TYPE":   "conformance.test.v1",
		"HOOKD_EVENT_SOURCE": "conformance",
		"HOOKD_EVENT_KEY":    "order?-42",
		"HOOKD_DELIVERY_ID":  m.DeliveryID,
		"HOOKD_ATTEMPT":      "3",
		"HOOKD_CONTENT_TYPE": "application/json; charset=utf-8",
		"HOOKD_RECEIVED_AT":  "2026-01-02T02:04:05.000006Z",
	}
	if home, ok := os.LookupEnv("HOME"); ok {
		want["HOME"] = home
	}
	got := envOf(res.ResponseExcerpt)
	for k, v := range want {
		if g, ok := got[k]; !ok || g != v {
			t.Errorf("%s: got %q (set: %v), want %q", k, g, ok, v)
		}
	}
	for k := range got {
		if _, ok := want[k]; !ok {
			t.Errorf("unexpected variable %s in the child's environment", k)
		}
	}
}

// TestInheritEnv uses t.Setenv, so it cannot run in parallel.
func TestInheritEnv(t *testing.T) {
	t.Setenv("EXEC_TEST_LEAK", "leaked")
	t.Setenv("HOOKD_MASTER_KEY", "k1:secret")
	t.Setenv("HOOKD_EVENT_ID", "evt_from_parent")

	t.Run("Off", func(t *testing.T) {
		d := openExec(t, map[string]any{"command": []string{tool(t, "env")}})
		res, err := deliver(t, d, destinationtest.NewMessage(nil, ""))
		if err != nil {
			t.Fatalf("Deliver: %v", err)
		}
		got := envOf(res.ResponseExcerpt)
		for _, k := range []string{"EXEC_TEST_LEAK", "HOOKD_MASTER_KEY"} {
			if v, ok := got[k]; ok {
				t.Errorf("inherit_env false: %s=%q leaked to the child", k, v)
			}
		}
		if got["PATH"] != DefaultPath {
			t.Errorf("PATH: got %q, want %q", got["PATH"], DefaultPath)
		}
	})

	t.Run("On", func(t *testing.T) {
		// A script executed directly (shebang), which writes its whole
		// environment to a file: it does not fit in the excerpt.
		dir := t.TempDir()
		path := filepath.Join(dir, "hook")
		if err := os.WriteFile(path, []byte("#!/bin/sh\nexec env > \"$OUT\"\n"), 0o755); err != nil {
			t.Fatal(err)
		}
		out := filepath.Join(dir, "env.txt")
		d := openExec(t, map[string]any{
			"command":     []string{path},
			"inherit_env": true,
			"env":         map[string]string{"OUT": out, "PATH": "/bin:/usr/bin"},
		})
		m := destinationtest.NewMessage(nil, "")
		if _, err := deliver(t, d, m); err != nil {
			t.Fatalf("Deliver: %v", err)
		}
		raw, err := os.ReadFile(out)
		if err != nil {
			t.Fatal(err)
		}
		got := envOf(raw)
		if got["EXEC_TEST_LEAK"] != "leaked" {
			t.Errorf("inherit_env true: EXEC_TEST_LEAK = %q, want the parent's value", got["EXEC_TEST_LEAK"])
		}
		if got["PATH"] != "/bin:/usr/bin" {
			t.Errorf("PATH: got %q, want the env option's value", got["PATH"])
		}
		if v, ok := got["HOOKD_MASTER_KEY"]; ok {
			t.Errorf("inherit_env true: HOOKD_MASTER_KEY=%q reached the child", v)
		}
		if got["HOOKD_EVENT_ID"] != m.Event.ID {
			t.Errorf("HOOKD_EVENT_ID: got %q, want %q", got["HOOKD_EVENT_ID"], m.Event.ID)
		}
	})
}

func TestStdinExact(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	d := openExec(t, map[string]any{
		"command": script(t, `cat > "$OUT/$HOOKD_ATTEMPT"`),
		"env":     map[string]string{"OUT": dir},
	})
	all := make([]byte, 0, 3*256)
	for range 3 {
		for b := range 256 {
			all = append(all, byte(b))
		}
	}
	for i, body := range [][]byte{nil, all, []byte("\x00"), []byte("no newline")} {
		m := destinationtest.NewMessage(body, "application/octet-stream")
		m.Attempt = i + 1
		if _, err := deliver(t, d, m); err != nil {
			t.Fatalf("Deliver: %v", err)
		}
		got, err := os.ReadFile(filepath.Join(dir, strconv.Itoa(m.Attempt)))
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, body) {
			t.Errorf("body %d: the command read %q, want %q", i, got, body)
		}
	}
}

func TestExitCodes(t *testing.T) {
	t.Parallel()
	long := strings.Repeat("é", 150) // 300 bytes
	cmd := script(t, `echo "to stdout"
case "$1" in
0) ;;
5) ;;
6) printf '%s\n' "$2" >&2 ;;
*) printf '\n   boom on attempt %s \t \nsecond line\n' "$HOOKD_ATTEMPT" >&2 ;;
esac
exit "$1"`)
	tests := []struct {
		code      int
		arg       string
		wantErr   string // exact; "" means success
		permanent bool
	}{
		{0, "", "", false},
		{3, "", "exec: exit status 3: boom on attempt 1", false},
		{4, "", "exec: exit status 4: boom on attempt 1", true},
		{42, "", "exec: exit status 42: boom on attempt 1", true},
		{255, "", "exec: exit status 255: boom on attempt 1", false},
		{5, "", "exec: exit status 5", false},
		{6, long, "exec: exit status 6: " + strings.Repeat("é", 100), false},
		{6, "bell\a and\x1b[31m", "exec: exit status 6: bell? and?[31m", false},
	}
	for _, tt := range tests {
		t.Run(strconv.Itoa(tt.code), func(t *testing.T) {
			t.Parallel()
			d := openExec(t, map[string]any{
				"command":          append(cmd[:2:2], strconv.Itoa(tt.code), tt.arg),
				"final_exit_codes": []int{4, 42},
			})
			res, err := deliver(t, d, destinationtest.NewMessage([]byte("x"), "text/plain"))
			if res.StatusCode != tt.code {
				t.Errorf("StatusCode: got %d, want %d", res.StatusCode, tt.code)
			}
			// Two pipes: the order between stdout and stderr is not kept.
			if !bytes.Contains(res.ResponseExcerpt, []byte("to stdout\n")) ||
				(tt.code != 0 && tt.code != 5 && !bytes.Contains(res.ResponseExcerpt, []byte(tt.arg))) {
				t.Errorf("excerpt: got %q, want stdout and stderr", res.ResponseExcerpt)
			}
			if tt.wantErr == "" {
				if err != nil {
					t.Fatalf("Deliver: got %v, want nil", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("Deliver: got nil, want %q", tt.wantErr)
			}
			if err.Error() != tt.wantErr {
				t.Errorf("error: got %q, want %q", err, tt.wantErr)
			}
			if got := destination.IsPermanent(err); got != tt.permanent {
				t.Errorf("IsPermanent: got %v, want %v", got, tt.permanent)
			}
			if destination.IsGone(err) {
				t.Errorf("IsGone: got true")
			}
		})
	}
}

// readPID waits for a pid file the script writes.
func readPID(t *testing.T, path string) int {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		b, err := os.ReadFile(path)
		if s := strings.TrimSpace(string(b)); err == nil && s != "" {
			pid, err := strconv.Atoi(s)
			if err != nil {
				t.Fatalf("%s: %v", path, err)
			}
			return pid
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s was never written", path)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// gone reports whether process pid no longer runs (a zombie nobody reaped
// yet counts as gone: PID 1 in a container may never reap it).
func gone(pid int) bool {
	if err := syscall.Kill(pid, 0); errors.Is(err, syscall.ESRCH) {
		return true
	}
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return errors.Is(err, os.ErrNotExist) && syscall.Kill(pid, 0) != nil
	}
	i := bytes.LastIndexByte(b, ')')
	return i >= 0 && i+2 < len(b) && (b[i+2] == 'Z' || b[i+2] == 'X')
}

func waitGone(t *testing.T, what string, pid int) {
	t.Helper()
	deadline := time.Now().Add(3 * time.Second)
	for !gone(pid) {
		if time.Now().After(deadline) {
			_ = syscall.Kill(pid, syscall.SIGKILL)
			t.Fatalf("%s (pid %d) still runs", what, pid)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// groupScript starts a grandchild that holds stdout open, then sleeps.
const groupScript = `sleep 60 &
echo $! > "$DIR/grandchild.pid"
echo $$ > "$DIR/leader.pid"
echo started
sleep 60`

func TestTimeoutKillsProcessGroup(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	const timeout = time.Second
	d := openExec(t, map[string]any{
		"command": script(t, groupScript),
		"env":     map[string]string{"DIR": dir},
		"timeout": timeout.String(),
	})
	start := time.Now()
	res, err := deliver(t, d, destinationtest.NewMessage(nil, ""))
	if el := time.Since(start); el > timeout+time.Second {
		t.Errorf("Deliver took %s, want at most %s", el, timeout+time.Second)
	}
	if err == nil || err.Error() != "exec: timed out after 1s" {
		t.Errorf("error: got %v, want exec: timed out after 1s", err)
	}
	if destination.IsPermanent(err) {
		t.Errorf("a timeout is final: %v", err)
	}
	if res.StatusCode != 0 || string(res.ResponseExcerpt) != "started\n" {
		t.Errorf("result: got %d %q, want 0 %q", res.StatusCode, res.ResponseExcerpt, "started\n")
	}
	waitGone(t, "the command", readPID(t, filepath.Join(dir, "leader.pid")))
	waitGone(t, "the command's child", readPID(t, filepath.Join(dir, "grandchild.pid")))
}

func TestCancelKillsProcessGroup(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	d := openExec(t, map[string]any{
		"command": script(t, groupScript),
		"env":     map[string]string{"DIR": dir},
	})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	type outcome struct {
		err error
		at  time.Time
	}
	done := make(chan outcome, 1)
	go func() {
		_, err := d.Deliver(ctx, destinationtest.NewMessage(nil, ""))
		done <- outcome{err, time.Now()}
	}()
	leader := readPID(t, filepath.Join(dir, "leader.pid"))
	grandchild := readPID(t, filepath.Join(dir, "grandchild.pid"))
	cancelled := time.Now()
	cancel()
	var o outcome
	select {
	case o = <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("Deliver did not return after its context was cancelled")
	}
	if el := o.at.Sub(cancelled); el > time.Second {
		t.Errorf("Deliver returned %s after the cancellation, want < 1s", el)
	}
	if !errors.Is(o.err, context.Canceled) || destination.IsPermanent(o.err) {
		t.Errorf("error: got %v, want a retriable error wrapping context.Canceled", o.err)
	}
	waitGone(t, "the command", leader)
	waitGone(t, "the command's child", grandchild)
}

// TestLeftoverChildHoldingOutput: a command that exits 0 but leaves a child
// holding its stdout open does not hold Deliver up for long.
func TestLeftoverChildHoldingOutput(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	d := openExec(t, map[string]any{
		"command": script(t, `sleep 60 &
echo $! > "$DIR/child.pid"
echo done`),
		"env": map[string]string{"DIR": dir},
	})
	start := time.Now()
	res, err := deliver(t, d, destinationtest.NewMessage(nil, ""))
	el := time.Since(start)
	pid := readPID(t, filepath.Join(dir, "child.pid"))
	t.Cleanup(func() { _ = syscall.Kill(pid, syscall.SIGKILL) })
	if err != nil {
		t.Errorf("Deliver: %v", err)
	}
	if el > waitDelay+2*time.Second {
		t.Errorf("Deliver took %s", el)
	}
	if string(res.ResponseExcerpt) != "done\n" {
		t.Errorf("excerpt: got %q", res.ResponseExcerpt)
	}
}

func TestExcerptBounded(t *testing.T) {
	t.Parallel()
	// 100 KiB on stdout and as much on stderr.
	for _, code := range []int{0, 3} {
		d := openExec(t, map[string]any{
			"command": append(script(t, `i=0
while [ $i -lt 100 ]; do
	printf '%01024d' 1
	printf '%01024d' 2 >&2
	i=$((i+1))
done
exit "$1"`), strconv.Itoa(code)),
		})
		res, err := deliver(t, d, destinationtest.NewMessage(nil, ""))
		if (err == nil) != (code == 0) {
			t.Errorf("exit %d: error %v", code, err)
		}
		if err != nil && len(err.Error()) > 250 {
			t.Errorf("exit %d: error of %d bytes", code, len(err.Error()))
		}
		if len(res.ResponseExcerpt) != destination.MaxExcerpt {
			t.Errorf("exit %d: excerpt of %d bytes, want %d", code, len(res.ResponseExcerpt), destination.MaxExcerpt)
		}
		if s := strings.Trim(string(res.ResponseExcerpt), "012"); s != "" {
			t.Errorf("exit %d: excerpt holds %q besides the command's output", code, s)
		}
	}
}

func TestDir(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	d := openExec(t, map[string]any{"command": []string{tool(t, "pwd"), "-P"}, "dir": dir})
	res, err := deliver(t, d, destinationtest.NewMessage(nil, ""))
	if err != nil {
		t.Fatalf("Deliver: %v", err)
	}
	want, err := filepath.EvalSymlinks(dir)
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.TrimSpace(string(res.ResponseExcerpt)); got != want {
		t.Errorf("working directory: got %q, want %q", got, want)
	}
}

func TestDeliverAfterCloseStartsNothing(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	d := openExec(t, map[string]any{
		"command": script(t, `touch "$DIR/ran"`),
		"env":     map[string]string{"DIR": dir},
	})
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := deliver(t, d, destinationtest.NewMessage(nil, "")); err == nil || destination.IsPermanent(err) {
		t.Errorf("Deliver after Close: got %v, want a retriable error", err)
	}
	if _, err := os.Stat(filepath.Join(dir, "ran")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the command ran after Close (stat: %v)", err)
	}
}

func TestStartFailureRetriable(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "hook")
	if err := os.WriteFile(path, []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	d := openExec(t, map[string]any{"command": []string{path}})
	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
	res, err := deliver(t, d, destinationtest.NewMessage(nil, ""))
	if err == nil || !strings.HasPrefix(err.Error(), "exec: start "+path) {
		t.Errorf("error: got %v, want exec: start …", err)
	}
	if destination.IsPermanent(err) || destination.IsGone(err) {
		t.Errorf("a start failure is final: %v", err)
	}
	if res.StatusCode != 0 {
		t.Errorf("StatusCode: got %d, want 0", res.StatusCode)
	}
}

func TestOptions(t *testing.T) {
	t.Parallel()
	sh := tool(t, "sh")
	dir := t.TempDir()
	plain := filepath.Join(dir, "plain.txt")
	if err := os.WriteFile(plain, []byte("not a program"), 0o644); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		opts    map[string]any
		wantErr string // substring; "" means valid
	}{
		{"Minimal", map[string]any{"command": []string{sh}}, ""},
		{"Full", map[string]any{"command": []string{sh, "-c", "true"}, "timeout": "5s", "env": map[string]string{"A_1": "x", "_b": ""},
			"inherit_env": true, "dir": dir, "final_exit_codes": []int{1, 255}}, ""},
		{"RelativeDir", map[string]any{"command": []string{sh}, "dir": "."}, ""},
		{"MissingCommand", map[string]any{}, "command: required"},
		{"EmptyCommand", map[string]any{"command": []string{}}, "command: required"},
		{"CommandString", map[string]any{"command": sh}, "cannot unmarshal"},
		{"EmptyPath", map[string]any{"command": []string{""}}, "command[0]: empty"},
		{"RelativePath", map[string]any{"command": []string{"bin/deploy"}}, `command[0]: "bin/deploy" is not an absolute path`},
		{"BareName", map[string]any{"command": []string{"sh"}}, `command[0]: "sh" is not an absolute path`},
		{"MissingFile", map[string]any{"command": []string{filepath.Join(dir, "nope")}}, "command[0]: stat " + filepath.Join(dir, "nope") + ": no such file"},
		{"Directory", map[string]any{"command": []string{dir}}, "command[0]: " + dir + " is a directory"},
		{"NotExecutable", map[string]any{"command": []string{plain}}, "command[0]: " + plain + " is not executable"},
		{"NULInArgument", map[string]any{"command": []string{sh, "a\x00b"}}, "command[1]: contains a NUL byte"},
		{"TimeoutZero", map[string]any{"command": []string{sh}, "timeout": "0s"}, "timeout: must be positive"},
		{"TimeoutBareNumber", map[string]any{"command": []string{sh}, "timeout": 30}, "invalid duration"},
		{"EnvBadName", map[string]any{"command": []string{sh}, "env": map[string]string{"A-B": "x"}}, `env: "A-B" is not a valid variable name`},
		{"EnvDigitFirst", map[string]any{"command": []string{sh}, "env": map[string]string{"1A": "x"}}, `env: "1A" is not a valid variable name`},
		{"EnvEmptyName", map[string]any{"command": []string{sh}, "env": map[string]string{"": "x"}}, `env: "" is not a valid variable name`},
		{"EnvEquals", map[string]any{"command": []string{sh}, "env": map[string]string{"A=B": "x"}}, `env: "A=B" is not a valid variable name`},
		{"EnvReserved", map[string]any{"command": []string{sh}, "env": map[string]string{"HOOKD_EVENT_ID": "x"}}, "env: HOOKD_EVENT_ID cannot be set"},
		{"EnvNUL", map[string]any{"command": []string{sh}, "env": map[string]string{"TOKEN": "s3cr3t\x00"}}, "env: TOKEN: value contains a NUL byte"},
		{"DirMissing", map[string]any{"command": []string{sh}, "dir": filepath.Join(dir, "nope")}, "dir: stat " + filepath.Join(dir, "nope") + ": no such file"},
		{"DirIsFile", map[string]any{"command": []string{sh}, "dir": plain}, "dir: " + plain + " is not a directory"},
		{"FinalZero", map[string]any{"command": []string{sh}, "final_exit_codes": []int{0}}, "final_exit_codes: 0 is not a failure exit code"},
		{"Final256", map[string]any{"command": []string{sh}, "final_exit_codes": []int{256}}, "final_exit_codes: 256 is not a failure exit code"},
		{"UnknownOption", map[string]any{"command": []string{sh}, "shell": true}, "field shell not found"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			d, err := destination.Open(context.Background(), Type, nil, destinationtest.Options(tt.opts))
			if err == nil {
				defer d.Close()
			}
			switch {
			case tt.wantErr == "" && err != nil:
				t.Fatalf("Open: got %v, want nil", err)
			case tt.wantErr != "" && err == nil:
				t.Fatalf("Open: got nil, want an error containing %q", tt.wantErr)
			case tt.wantErr != "" && !strings.Contains(err.Error(), tt.wantErr):
				t.Fatalf("Open: got %q, want it to contain %q", err, tt.wantErr)
			}
			if err != nil && strings.Contains(err.Error(), "s3cr3t") {
				t.Errorf("error shows an env value: %v", err)
			}
		})
	}
}

func TestDetail(t *testing.T) {
	t.Parallel()
	tests := []struct{ in, want string }{
		{"", ""},
		{" \n\t\n", ""},
		{"oops\n", ": oops"},
		{"\n\n  first  \nsecond\n", ": first"},
		{"no newline", ": no newline"},
		{"a\rb\x00c\xffd", ": a?b?c?d"},
		{strings.Repeat("x", 300), ": " + strings.Repeat("x", 200)},
		{"x" + strings.Repeat("€", 100), ": x" + strings.Repeat("€", 66)}, // 1+66*3 = 199 bytes
	}
	for _, tt := range tests {
		if got := detail([]byte(tt.in)); got != tt.want {
			t.Errorf("detail(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}
