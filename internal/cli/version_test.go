package cli

import (
	"bytes"
	"runtime/debug"
	"strings"
	"testing"

	"hookd/internal/store/sqlite"
)

func TestReadBuildInfo(t *testing.T) {
	t.Parallel()
	vcs := func(settings ...string) *debug.BuildInfo {
		bi := &debug.BuildInfo{GoVersion: "go1.99.1", Main: debug.Module{Path: "hookd", Version: "(devel)"}}
		for i := 0; i+1 < len(settings); i += 2 {
			bi.Settings = append(bi.Settings, debug.BuildSetting{Key: settings[i], Value: settings[i+1]})
		}
		return bi
	}
	for _, tc := range []struct {
		name string
		link linkValues
		bi   *debug.BuildInfo
		want []string // lines, in order
		not  []string
	}{
		{
			name: "CheckoutWithChanges",
			link: linkValues{Version: "dev"},
			bi:   vcs("vcs", "git", "vcs.revision", "0123abcd", "vcs.time", "2026-12-01T10:00:00Z", "vcs.modified", "true"),
			want: []string{"hookd dev\n", "revision:    0123abcd (modified: the tree had uncommitted changes)\n", "commit time: 2026-12-01T10:00:00Z\n", "build time:  not recorded", "go:          go1.99.1 "},
		},
		{
			name: "CleanCheckout",
			link: linkValues{Version: "dev"},
			bi:   vcs("vcs.revision", "0123abcd", "vcs.time", "2026-12-01T10:00:00Z", "vcs.modified", "false"),
			want: []string{"revision:    0123abcd\n", "commit time: 2026-12-01T10:00:00Z\n"},
			not:  []string{"modified"},
		},
		{
			name: "GoInstallOfARelease",
			link: linkValues{Version: "dev"},
			bi:   &debug.BuildInfo{GoVersion: "go1.99.1", Main: debug.Module{Path: "hookd", Version: "v1.4.0"}},
			want: []string{"hookd v1.4.0\n", "revision:    unknown (built without version control information)\n"},
			not:  []string{"commit time"},
		},
		{
			name: "ReleaseBuildFlagsWin",
			link: linkValues{Version: "v2.0.0", Revision: "feedbeef", BuildTime: "2026-12-08T12:00:00Z"},
			bi:   &debug.BuildInfo{GoVersion: "go1.99.1", Main: debug.Module{Path: "hookd", Version: "v1.4.0"}},
			want: []string{"hookd v2.0.0\n", "revision:    feedbeef\n", "build time:  2026-12-08T12:00:00Z\n"},
		},
		{
			name: "ReleaseRevisionOfAnotherTree",
			link: linkValues{Version: "v2.0.0", Revision: "feedbeef"},
			bi:   vcs("vcs.revision", "0123abcd", "vcs.time", "2026-12-01T10:00:00Z", "vcs.modified", "true"),
			want: []string{"revision:    feedbeef\n"},
			not:  []string{"modified", "commit time", "0123abcd"},
		},
		{
			name: "NoBuildInfo",
			link: linkValues{Version: "dev"},
			want: []string{"hookd dev\n", "revision:    unknown", "sqlite:      "},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got := readBuildInfo(tc.link, tc.bi).String()
			rest := got
			for _, w := range tc.want {
				i := strings.Index(rest, w)
				if i < 0 {
					t.Fatalf("got\n%s\nwant %q (in this order)", got, w)
				}
				rest = rest[i+len(w):]
			}
			for _, n := range tc.not {
				if strings.Contains(got, n) {
					t.Errorf("got\n%s\nwant no %q", got, n)
				}
			}
		})
	}
}

// hookd --version and hookd version print the same, and name the
// SQLite library the binary was built with.
func TestVersionFlagAndCommandAgree(t *testing.T) {
	t.Parallel()
	run := func(args ...string) string {
		var out, errOut bytes.Buffer
		if code := Main(args, &out, &errOut); code != 0 {
			t.Fatalf("hookd %s: exit %d, stderr %s", strings.Join(args, " "), code, errOut.String())
		}
		return out.String()
	}
	flag, cmd := run("--version"), run("version")
	if flag != cmd {
		t.Errorf("hookd --version:\n%s\nhookd version:\n%s\nwant the same", flag, cmd)
	}
	if !strings.HasPrefix(cmd, "hookd ") || !strings.Contains(cmd, "\nrevision:") || !strings.Contains(cmd, "\nsqlite:      "+sqlite.Driver()) {
		t.Errorf("hookd version: got\n%s\nwant the version, revision and SQLite library lines", cmd)
	}
}
