package file

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// Formats of the records written to the file.
const (
	// FormatJSONL writes one JSON object per delivery, on one line (see
	// the package documentation for its keys). The default.
	FormatJSONL = "jsonl"
	// FormatRaw writes the event's raw body followed by "\n". Bodies are
	// not escaped: it is meant for line-oriented payloads, and a consumer
	// must cope with a body that itself contains newlines.
	FormatRaw = "raw"
)

// Options are a file destination's own keys. Keys the engine reads (name,
// type, retry, ordering, head_timeout, concurrency, rate) are not part of them.
type Options struct {
	// Path is the absolute path of the file records are appended to.
	// Required. Its directory must exist; the file is created with mode
	// 0600 when missing.
	Path string `yaml:"path"`
	// Format is jsonl (default) or raw.
	Format string `yaml:"format"`
}

// settings are validated Options with defaults applied.
type settings struct {
	path   string
	format string
}

// validate checks o and applies defaults. Errors name the option. It
// checks that the directory exists, not that the file can be opened: New
// does that.
func (o *Options) validate() (*settings, error) {
	s := &settings{format: FormatJSONL}

	if strings.TrimSpace(o.Path) == "" {
		return nil, fmt.Errorf("path: required")
	}
	if !filepath.IsAbs(o.Path) {
		return nil, fmt.Errorf("path: %q is not absolute", o.Path)
	}
	s.path = filepath.Clean(o.Path)
	if strings.HasSuffix(o.Path, string(filepath.Separator)) {
		return nil, fmt.Errorf("path: %q names a directory, want a file", o.Path)
	}
	dir := filepath.Dir(s.path)
	fi, err := os.Stat(dir)
	switch {
	case err != nil && os.IsNotExist(err):
		return nil, fmt.Errorf("path: directory %s does not exist", dir)
	case err != nil:
		return nil, fmt.Errorf("path: directory %s: %v", dir, err)
	case !fi.IsDir():
		return nil, fmt.Errorf("path: %s is not a directory", dir)
	}
	if fi, err := os.Stat(s.path); err == nil && !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("path: %s is not a regular file", s.path)
	}

	switch f := strings.TrimSpace(o.Format); f {
	case "":
	case FormatJSONL, FormatRaw:
		s.format = f
	default:
		return nil, fmt.Errorf("format: %q is not supported (want %s or %s)", o.Format, FormatJSONL, FormatRaw)
	}
	return s, nil
}
