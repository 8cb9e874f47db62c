package cli

// version.go is hookd version and --version: the version, the source
// revision and whether the tree had changes, the commit and build times,
// the Go toolchain and the SQLite library of this binary.

import (
	"fmt"
	"runtime"
	"runtime/debug"
	"strings"

	"github.com/spf13/cobra"

	"hookd"
	"hookd/internal/store/sqlite"
)

// buildInfo is what hookd version prints.
type buildInfo struct {
	Version    string
	Revision   string // "" when unknown
	Modified   bool   // the VCS tree had uncommitted changes
	CommitTime string // the revision's commit time, "" when unknown
	BuildTime  string // "" unless set at link time
	Go         string
	SQLite     string
}

// linkValues are the values a build may set with -ldflags -X.
type linkValues struct{ Version, Revision, BuildTime string }

// readBuildInfo combines the link-time values (hookd.Version,
// hookd.Revision, hookd.BuildTime), which win, with what the Go toolchain
// recorded in the binary (bi, nil when there is none): the module version
// of a go install and the VCS settings of a build in a checkout.
func readBuildInfo(link linkValues, bi *debug.BuildInfo) buildInfo {
	v := buildInfo{
		Version:   link.Version,
		Revision:  link.Revision,
		BuildTime: link.BuildTime,
		Go:        runtime.Version() + " " + runtime.GOOS + "/" + runtime.GOARCH,
		SQLite:    sqlite.Driver(),
	}
	if bi == nil {
		return v
	}
	if bi.GoVersion != "" {
		v.Go = bi.GoVersion + " " + runtime.GOOS + "/" + runtime.GOARCH
	}
	// go install hookd/cmd/hookd@v1.2.0 records the module's version; a
	// build in a checkout records "(devel)" or a pseudo-version.
	if (v.Version == "" || v.Version == "dev") && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
		v.Version = bi.Main.Version
	}
	var vcsRev string
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			vcsRev = s.Value
		case "vcs.time":
			v.CommitTime = s.Value
		case "vcs.modified":
			v.Modified = s.Value == "true"
		}
	}
	if v.Revision == "" {
		v.Revision = vcsRev
	} else if vcsRev != "" && vcsRev != v.Revision {
		// The link-time revision names another tree than the one built:
		// what the toolchain saw of it does not apply.
		v.CommitTime, v.Modified = "", false
	}
	return v
}

// String renders the information one item a line, the version first.
func (v buildInfo) String() string {
	var b strings.Builder
	version := v.Version
	if version == "" {
		version = "dev"
	}
	fmt.Fprintf(&b, "hookd %s\n", version)
	switch {
	case v.Revision == "":
		b.WriteString("revision:    unknown (built without version control information)\n")
	case v.Modified:
		fmt.Fprintf(&b, "revision:    %s (modified: the tree had uncommitted changes)\n", v.Revision)
	default:
		fmt.Fprintf(&b, "revision:    %s\n", v.Revision)
	}
	if v.CommitTime != "" {
		fmt.Fprintf(&b, "commit time: %s\n", v.CommitTime)
	}
	if v.BuildTime != "" {
		fmt.Fprintf(&b, "build time:  %s\n", v.BuildTime)
	} else {
		b.WriteString("build time:  not recorded (release builds set it; see docs/PACKAGING.md)\n")
	}
	fmt.Fprintf(&b, "go:          %s\n", v.Go)
	fmt.Fprintf(&b, "sqlite:      %s\n", v.SQLite)
	return b.String()
}

// versionText is this binary's hookd version output.
func versionText() string {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		bi = nil
	}
	return readBuildInfo(linkValues{hookd.Version, hookd.Revision, hookd.BuildTime}, bi).String()
}

func newVersionCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print hookd's version, source revision, build time, Go and SQLite library",
		Long: `Print hookd's version, the source revision it was built from (and whether
that tree had uncommitted changes), the revision's commit time, the build time
when the build recorded one, the Go toolchain and platform, and the SQLite
library linked in. 'hookd --version' prints the same.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			_, err := fmt.Fprint(cmd.OutOrStdout(), versionText())
			return err
		},
	}
}

// setVersionFlag makes root answer --version with versionText.
func setVersionFlag(root *cobra.Command) {
	text := versionText()
	root.Version = strings.TrimPrefix(strings.SplitN(text, "\n", 2)[0], "hookd ")
	// The template is text/template: the braces are quoted.
	root.SetVersionTemplate(strings.NewReplacer("{{", `{{"{{"}}`).Replace(text))
}
