package exec

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"time"

	"hookd/internal/config"
)

// Defaults.
const (
	// DefaultTimeout bounds one run of the command.
	DefaultTimeout = 30 * time.Second
	// DefaultPath is the PATH a command gets when inherit_env is false.
	DefaultPath = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
)

// Options are an exec destination's own keys. Keys the engine reads (name,
// type, retry, ordering, head_timeout, concurrency, rate) are not part of them.
type Options struct {
	// Command is the argv to run: Command[0] is the absolute path of an
	// executable file (no PATH lookup, no shell), the rest its arguments.
	// Required.
	Command []string `yaml:"command"`
	// Timeout bounds one run; past it the command's whole process group is
	// killed and the attempt is a retriable failure. Default 30s.
	Timeout *config.Duration `yaml:"timeout"`
	// Env are extra environment variables. Names match
	// [A-Za-z_][A-Za-z0-9_]*; HOOKD_* names are reserved for the variables
	// hookd sets. They may replace PATH and HOME.
	Env map[string]string `yaml:"env"`
	// InheritEnv passes hookd's own environment to the command (without
	// its HOOKD_* variables, which may hold secrets such as
	// HOOKD_MASTER_KEY). Default false: the command gets only PATH
	// (DefaultPath), HOME (when hookd has one), the HOOKD_* variables of
	// the event and Env.
	InheritEnv bool `yaml:"inherit_env"`
	// Dir is the working directory of the command: an existing directory.
	// A relative path is resolved against hookd's working directory when
	// the destination is opened. Default: hookd's working directory.
	Dir string `yaml:"dir"`
	// FinalExitCodes are exit codes (1 to 255) that mean a final failure:
	// the delivery fails at once, with no retry. Every other non-zero exit
	// is retried.
	FinalExitCodes []int `yaml:"final_exit_codes"`
}

// settings are validated Options with defaults applied.
type settings struct {
	path    string
	args    []string // argv, args[0] == path
	timeout time.Duration
	// env is the environment before the per-event HOOKD_* variables,
	// deduplicated, with no HOOKD_* entry.
	env   []string
	dir   string
	final map[int]bool
}

// envName is what a variable name in env must look like.
var envName = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

// reservedPrefix is the namespace of the variables hookd sets.
const reservedPrefix = "HOOKD_"

// validate checks o and applies defaults. Errors name the option. Values
// of env are never printed: they may be secrets.
func (o *Options) validate() (*settings, error) {
	s := &settings{timeout: DefaultTimeout, final: map[int]bool{}}

	if len(o.Command) == 0 {
		return nil, fmt.Errorf("command: required (a list: the absolute path of an executable, then its arguments)")
	}
	for i, a := range o.Command {
		if strings.IndexByte(a, 0) >= 0 {
			return nil, fmt.Errorf("command[%d]: contains a NUL byte", i)
		}
	}
	path := o.Command[0]
	switch {
	case path == "":
		return nil, fmt.Errorf("command[0]: empty (want the absolute path of an executable)")
	case !filepath.IsAbs(path):
		return nil, fmt.Errorf("command[0]: %q is not an absolute path (no PATH lookup is done: write the full path, such as /usr/local/bin/deploy)", path)
	}
	fi, err := os.Stat(path)
	switch {
	case err != nil:
		return nil, fmt.Errorf("command[0]: %w", err)
	case fi.IsDir():
		return nil, fmt.Errorf("command[0]: %s is a directory, not an executable file", path)
	case !fi.Mode().IsRegular():
		return nil, fmt.Errorf("command[0]: %s is not a regular file", path)
	case fi.Mode().Perm()&0o111 == 0:
		return nil, fmt.Errorf("command[0]: %s is not executable (mode %s)", path, fi.Mode().Perm())
	}
	if err := checkAccess(path); err != nil {
		return nil, fmt.Errorf("command[0]: %s is not executable by hookd's user: %v", path, err)
	}
	s.path = path
	s.args = append([]string(nil), o.Command...)

	if o.Timeout != nil {
		if s.timeout = o.Timeout.D(); s.timeout <= 0 {
			return nil, fmt.Errorf("timeout: must be positive, got %s", s.timeout)
		}
	}

	names := make([]string, 0, len(o.Env))
	for name := range o.Env {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		switch {
		case !envName.MatchString(name):
			return nil, fmt.Errorf("env: %q is not a valid variable name (want letters, digits and '_', not starting with a digit)", name)
		case strings.HasPrefix(strings.ToUpper(name), reservedPrefix):
			return nil, fmt.Errorf("env: %s cannot be set (HOOKD_* variables are set by hookd)", name)
		case strings.IndexByte(o.Env[name], 0) >= 0:
			return nil, fmt.Errorf("env: %s: value contains a NUL byte", name)
		}
	}
	s.env = baseEnv(o.InheritEnv, o.Env, names)

	if o.Dir != "" {
		dir, err := filepath.Abs(o.Dir)
		if err != nil {
			return nil, fmt.Errorf("dir: %w", err)
		}
		fi, err := os.Stat(dir)
		switch {
		case err != nil:
			return nil, fmt.Errorf("dir: %w", err)
		case !fi.IsDir():
			return nil, fmt.Errorf("dir: %s is not a directory", dir)
		}
		s.dir = dir
	}

	for _, c := range o.FinalExitCodes {
		if c < 1 || c > 255 {
			return nil, fmt.Errorf("final_exit_codes: %d is not a failure exit code (want 1 to 255)", c)
		}
		s.final[c] = true
	}
	return s, nil
}

// baseEnv is the command's environment before the per-event variables:
// hookd's own (without HOOKD_*) when inherit, else PATH and HOME; then
// extra, in the order of names. A later entry replaces an earlier one.
func baseEnv(inherit bool, extra map[string]string, names []string) []string {
	var e envList
	if inherit {
		for _, kv := range os.Environ() {
			k, v, ok := strings.Cut(kv, "=")
			if !ok || k == "" || strings.HasPrefix(strings.ToUpper(k), reservedPrefix) {
				continue
			}
			e.set(k, v)
		}
	} else {
		e.set("PATH", DefaultPath)
		if home, ok := os.LookupEnv("HOME"); ok {
			e.set("HOME", home)
		}
	}
	for _, name := range names {
		e.set(name, extra[name])
	}
	return e.list()
}

// envList is an environment being built: set replaces a variable in place
// or appends it.
type envList struct {
	kv  []string
	idx map[string]int
}

func (e *envList) set(k, v string) {
	if e.idx == nil {
		e.idx = map[string]int{}
	}
	if i, ok := e.idx[k]; ok {
		e.kv[i] = k + "=" + v
		return
	}
	e.idx[k] = len(e.kv)
	e.kv = append(e.kv, k+"="+v)
}

func (e *envList) list() []string { return e.kv }
