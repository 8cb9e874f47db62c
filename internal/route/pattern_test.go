package route

import (
	"encoding/json"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"
)

func TestCompilePatternErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in   string
		want string // a substring of the error
	}{
		{"", "empty event-type pattern"},
		{".", "empty segment 1"},
		{"event..claim", "empty segment 2"},
		{".event", "empty segment 1"},
		{"event.", "empty segment 2"},
		{"event.*.", "empty segment 3"},
		{"**", `"**" is not supported`},
		{"event.**", `"**" is not supported`},
		{"event.claim*", `"*" must be a whole segment, got "claim*"`},
		{"*event", `"*" must be a whole segment`},
		{"event.c*m.created", `"*" must be a whole segment, got "c*m"`},
		{"event.***", `"**" is not supported`},
		{strings.Repeat("a", MaxPatternLen+1), "longer than"},
	}
	for _, tt := range tests {
		p, err := CompilePattern(tt.in)
		if err == nil {
			t.Errorf("CompilePattern(%q): got %v, nil; want an error containing %q", tt.in, p, tt.want)
			continue
		}
		if !strings.Contains(err.Error(), tt.want) {
			t.Errorf("CompilePattern(%q): got error %q, want one containing %q", tt.in, err, tt.want)
		}
	}
}

func TestPatternMatch(t *testing.T) {
	t.Parallel()
	tests := []struct {
		pattern string
		match   []string
		noMatch []string
	}{
		{
			pattern: "*",
			match:   []string{"", "a", "event.claim.created", "event.claim.created.v1", "a..b", ".", "*"},
		},
		{
			// The acceptance case of issue 4.
			pattern: "event.claim.*",
			match:   []string{"event.claim.created", "event.claim.created.v1", "event.claim.x.y.z.w"},
			noMatch: []string{"event.claim", "event.invoice.paid", "event.claim.", "event.claim..v1", "event.claim.created.", "event.claims.created", "xevent.claim.created", "", "event"},
		},
		{
			pattern: "event.*.created",
			match:   []string{"event.claim.created", "event.invoice.created"},
			noMatch: []string{"event.claim.created.v1", "event.created", "event..created", "event.claim.updated", "event.a.b.created"},
		},
		{
			pattern: "*.created",
			match:   []string{"claim.created", "x.created"},
			noMatch: []string{"created", ".created", "a.b.created", "claim.created.v1"},
		},
		{
			pattern: "*.*",
			match:   []string{"a.b", "a.b.c"},
			noMatch: []string{"a", "", "a.", ".b", "a..c"},
		},
		{
			pattern: "event.*",
			match:   []string{"event.a", "event.a.b"},
			noMatch: []string{"event", "events.a", "event."},
		},
		{
			pattern: "event.*.*",
			match:   []string{"event.a.b", "event.a.b.c"},
			noMatch: []string{"event.a", "event..b"},
		},
		{
			pattern: "a.*.c.*",
			match:   []string{"a.b.c.d", "a.b.c.d.e"},
			noMatch: []string{"a.b.c", "a.b.x.d", "a.b.b.c.d"},
		},
		{
			pattern: "event.claim.created",
			match:   []string{"event.claim.created"},
			noMatch: []string{"event.claim.created.v1", "Event.Claim.Created", "event.claim", ""},
		},
		{
			pattern: "CLAIM_CREATED",
			match:   []string{"CLAIM_CREATED"},
			noMatch: []string{"claim_created", "CLAIM_CREATED.x"},
		},
	}
	for _, tt := range tests {
		p, err := CompilePattern(tt.pattern)
		if err != nil {
			t.Fatalf("CompilePattern(%q): got error %v, want nil", tt.pattern, err)
		}
		if p.String() != tt.pattern {
			t.Errorf("CompilePattern(%q).String(): got %q, want %q", tt.pattern, p.String(), tt.pattern)
		}
		for _, typ := range tt.match {
			if !p.Match(typ) {
				t.Errorf("%q.Match(%q): got false, want true", tt.pattern, typ)
			}
		}
		for _, typ := range tt.noMatch {
			if p.Match(typ) {
				t.Errorf("%q.Match(%q): got true, want false", tt.pattern, typ)
			}
		}
	}
}

func TestPatternZero(t *testing.T) {
	t.Parallel()
	var p Pattern
	if !p.IsZero() {
		t.Errorf("Pattern{}.IsZero(): got false, want true")
	}
	for _, typ := range []string{"", "a"} {
		if p.Match(typ) {
			t.Errorf("Pattern{}.Match(%q): got true, want false", typ)
		}
	}
	if MustCompilePattern("*").IsZero() {
		t.Errorf(`MustCompilePattern("*").IsZero(): got true, want false`)
	}
}

func TestPatternsMatch(t *testing.T) {
	t.Parallel()
	ps, err := CompilePatterns("event.claim.*", "event.invoice.paid")
	if err != nil {
		t.Fatal(err)
	}
	for typ, want := range map[string]bool{
		"event.claim.created.v1": true,
		"event.invoice.paid":     true,
		"event.invoice.created":  false,
		"event.claim":            false,
	} {
		if got := ps.Match(typ); got != want {
			t.Errorf("%v.Match(%q): got %v, want %v", ps.Strings(), typ, got, want)
		}
	}
	if (Patterns{}).Match("a") {
		t.Errorf("empty Patterns.Match: got true, want false")
	}
	if _, err := CompilePatterns("ok", "bad*"); err == nil {
		t.Errorf(`CompilePatterns("ok", "bad*"): got nil error, want one`)
	}
}

func TestPatternsDecode(t *testing.T) {
	t.Parallel()
	var fromYAML struct {
		Events Patterns `yaml:"events"`
	}
	if err := yaml.Unmarshal([]byte(`events: ["event.claim.*", "*", exact.name]`), &fromYAML); err != nil {
		t.Fatalf("yaml: got error %v, want nil", err)
	}
	if got := strings.Join(fromYAML.Events.Strings(), " "); got != "event.claim.* * exact.name" {
		t.Errorf("yaml: got %q, want %q", got, "event.claim.* * exact.name")
	}
	if !fromYAML.Events.Match("event.claim.created.v1") {
		t.Errorf("yaml-decoded patterns do not match event.claim.created.v1")
	}

	var fromJSON struct {
		Events Patterns `json:"events"`
	}
	if err := json.Unmarshal([]byte(`{"events":["event.*.created"]}`), &fromJSON); err != nil {
		t.Fatalf("json: got error %v, want nil", err)
	}
	if !fromJSON.Events.Match("event.claim.created") {
		t.Errorf("json-decoded pattern does not match event.claim.created")
	}
	out, err := json.Marshal(fromJSON)
	if err != nil || string(out) != `{"events":["event.*.created"]}` {
		t.Errorf("json.Marshal: got %s, %v; want %s", out, err, `{"events":["event.*.created"]}`)
	}

	if err := yaml.Unmarshal([]byte(`events: ["claim*"]`), &fromYAML); err == nil {
		t.Errorf(`yaml "claim*": got nil error, want one`)
	}
	if err := json.Unmarshal([]byte(`{"events":["a..b"]}`), &fromJSON); err == nil {
		t.Errorf(`json "a..b": got nil error, want one`)
	}
}
