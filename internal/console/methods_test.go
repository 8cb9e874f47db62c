package console

import (
	"regexp"
	"slices"
	"testing"

	"hookd/internal/verify"
)

// The source form suggests every verification method hookd has, and no
// other: its list is the registry's (a method added to internal/verify
// without it here fails this test).
func TestSourceFormListsEveryVerifyMethod(t *testing.T) {
	js := embedded(t, "view-sources.js")
	decl := regexp.MustCompile(`(?s)const METHODS = \[(.*?)\];`).FindStringSubmatch(js)
	if decl == nil {
		t.Fatal("view-sources.js declares no METHODS list")
	}
	var got []string
	for _, m := range regexp.MustCompile(`'([a-z0-9_]+)'`).FindAllStringSubmatch(decl[1], -1) {
		got = append(got, m[1])
	}
	slices.Sort(got)
	if want := verify.Types(); !slices.Equal(got, want) {
		t.Errorf("the source form lists %v,\nthe verify registry has %v", got, want)
	}
}
