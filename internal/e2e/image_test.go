//go:build linux

package e2e

import (
	"bufio"
	"debug/elf"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// repoRoot is the module's root, two levels above this package.
func repoRoot(t *testing.T) string {
	t.Helper()
	root, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	return root
}

// dockerfile is the Dockerfile's instructions, continuation lines joined
// and comments dropped, each with its stage (0 the first FROM).
type instruction struct {
	stage int
	op    string // upper case: FROM, RUN, …
	args  string
}

func readDockerfile(t *testing.T, path string) []instruction {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var (
		out   []instruction
		cur   strings.Builder
		stage = -1
	)
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if cur.Len() == 0 && (line == "" || strings.HasPrefix(line, "#")) {
			continue
		}
		if strings.HasSuffix(line, "\\") {
			cur.WriteString(strings.TrimSuffix(line, "\\") + " ")
			continue
		}
		cur.WriteString(line)
		op, args, _ := strings.Cut(cur.String(), " ")
		cur.Reset()
		op = strings.ToUpper(op)
		if op == "FROM" {
			stage++
		}
		out = append(out, instruction{stage: stage, op: op, args: strings.Join(strings.Fields(args), " ")})
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// The Dockerfile cannot be built here (no container engine): this test
// checks what it says, then builds the binary its build stage builds, with
// the same script and so the same flags, without a C compiler, and runs
// it.
func TestDockerfileBuildStage(t *testing.T) {
	root := repoRoot(t)
	ins := readDockerfile(t, filepath.Join(root, "Dockerfile"))

	gomod, err := os.ReadFile(filepath.Join(root, "go.mod"))
	if err != nil {
		t.Fatal(err)
	}
	goLine := regexp.MustCompile(`(?m)^go (\S+)$`).FindSubmatch(gomod)
	if goLine == nil {
		t.Fatal("go.mod has no go line")
	}
	var (
		froms              []string
		buildRun           string
		final              = map[string][]string{}
		lastStage          = 0
		finalUser, healthc string
	)
	for _, in := range ins {
		lastStage = max(lastStage, in.stage)
	}
	for _, in := range ins {
		switch {
		case in.op == "FROM":
			froms = append(froms, in.args)
		case in.stage == 0 && in.op == "RUN" && strings.Contains(in.args, "deploy/build.sh"):
			buildRun = in.args
		case in.stage == lastStage:
			final[in.op] = append(final[in.op], in.args)
			switch in.op {
			case "USER":
				finalUser = in.args
			case "HEALTHCHECK":
				healthc = in.args
			}
		}
	}
	// The build stage: the Go image at exactly go.mod's version, building
	// with deploy/build.sh.
	if want := "golang:" + string(goLine[1]) + " AS build"; len(froms) < 2 || froms[0] != want {
		t.Errorf("first FROM: got %q, want %q (the Go image pinned to go.mod's version)", froms, want)
	}
	if !regexp.MustCompile(`(^|\s)sh deploy/build\.sh /out/hookd(\s|$)`).MatchString(buildRun) {
		t.Errorf("build stage: got RUN %q, want it to run sh deploy/build.sh /out/hookd", buildRun)
	}
	// The final stage: scratch, non-root, the data volume, the health check.
	if froms[len(froms)-1] != "scratch" {
		t.Errorf("final FROM: got %q, want scratch", froms[len(froms)-1])
	}
	if finalUser == "" || strings.HasPrefix(finalUser, "0") || strings.HasPrefix(finalUser, "root") {
		t.Errorf("final USER: got %q, want a non-root user", finalUser)
	}
	for op, want := range map[string]string{
		"VOLUME":     "/data",
		"EXPOSE":     "8080",
		"ENTRYPOINT": `["/hookd"]`,
		"ENV":        "HOOKD_DATA=/data",
		"COPY":       "/etc/ssl/certs/ca-certificates.crt",
	} {
		if !strings.Contains(strings.Join(final[op], "\n"), want) {
			t.Errorf("final stage %s: got %q, want %q", op, final[op], want)
		}
	}
	if !strings.Contains(healthc, `CMD ["/hookd", "healthcheck"`) {
		t.Errorf("HEALTHCHECK: got %q, want CMD [\"/hookd\", \"healthcheck\", …]", healthc)
	}

	// The build stage's binary, built by the same script. CC names no
	// compiler: CGO_ENABLED=0 must not need one.
	bin := filepath.Join(t.TempDir(), "hookd")
	build := exec.Command("sh", filepath.Join(root, "deploy", "build.sh"), bin)
	build.Env = append(os.Environ(), "VERSION=v9.8.7-test", "REVISION=0123456789abcdef", "BUILD_TIME=2026-12-08T12:34:56Z",
		"CC=/nonexistent/cc", "CGO_ENABLED=1")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("sh deploy/build.sh: %v\n%s", err, out)
	}
	// Static: no program interpreter, no shared libraries (it runs FROM
	// scratch).
	ef, err := elf.Open(bin)
	if err != nil {
		t.Fatal(err)
	}
	libs, _ := ef.ImportedLibraries()
	interp := ef.Section(".interp")
	ef.Close()
	if interp != nil || len(libs) > 0 {
		t.Errorf("built binary: got interpreter %v, shared libraries %q, want a static binary", interp != nil, libs)
	}
	out, err := exec.Command(bin, "--version").CombinedOutput()
	if err != nil {
		t.Fatalf("hookd --version: %v\n%s", err, out)
	}
	t.Logf("hookd --version:\n%s", out)
	for _, want := range []string{
		"hookd v9.8.7-test\n",
		"\nrevision:    0123456789abcdef\n",
		"\nbuild time:  2026-12-08T12:34:56Z\n",
		"\nsqlite:      modernc.org/sqlite (pure Go)",
	} {
		if !strings.Contains(string(out), want) {
			t.Errorf("hookd --version: got\n%s\nwant %q", out, want)
		}
	}
}
