package config

import (
	"slices"
	"testing"
)

// The keys a reload cannot apply are named by their YAML paths, the
// in-place sections never; definitions compare alike wherever they stand
// in the file.
func TestRestartKeysAndSameDefinitions(t *testing.T) {
	t.Parallel()
	old, err := Parse([]byte("sources: [{name: a}]\ndestinations: [{name: d, type: http, url: \"https://x.example/1\"}]\n"))
	if err != nil {
		t.Fatal(err)
	}
	next, err := Parse([]byte("listen: \":9090\"\nstorage: {path: other}\n\n\nsources: [{name: a}, {name: b}]\nlimits: {max_sources: 3}\n\ndestinations: [{name: d, type: http, url: \"https://x.example/1\"}]\n"))
	if err != nil {
		t.Fatal(err)
	}
	got := RestartKeys(old, next)
	if !slices.Equal(got, []string{"listen", "storage.path"}) {
		t.Errorf("RestartKeys: got %v, want [listen storage.path]", got)
	}
	if got := RestartKeys(old, old); len(got) != 0 {
		t.Errorf("RestartKeys of a file with itself: got %v, want none", got)
	}
	if !SameDestination(old.Destinations[0], next.Destinations[0]) || !SameSource(old.Sources[0], next.Sources[0]) {
		t.Errorf("definitions on other lines: want the same")
	}
	moved, err := Parse([]byte("destinations: [{name: d, type: http, url: \"https://x.example/2\"}]\nsources: [{name: a, verify: [{type: basic, username: u, password: p}]}]\n"))
	if err != nil {
		t.Fatal(err)
	}
	if SameDestination(old.Destinations[0], moved.Destinations[0]) {
		t.Errorf("destinations with other URLs: want different")
	}
	if SameSource(old.Sources[0], moved.Sources[0]) {
		t.Errorf("sources with other verification: want different")
	}
}
