package config

import (
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"
)

// EnvRef is a ${VAR} of the file whose variable was not set: it expanded
// to "".
type EnvRef struct {
	// Key is the key path of the value, such as
	// "sources[1].verify[0].secrets[0]".
	Key string
	// Var is the variable's name.
	Var string
}

// origin is where a verify method or destination was read from, for its
// errors: the file (lines are named, unset variables are known) or the
// admin API.
type origin struct {
	lines bool
	// unset maps the key paths under the definition whose values referred
	// to unset variables to those variables.
	unset map[string][]string
}

// setUnset records the unset references, and hands each verify method
// and destination the ones under it.
func (c *Config) setUnset(refs []EnvRef) {
	c.UnsetRefs = refs
	for _, r := range refs {
		if !slices.Contains(c.UnsetEnv, r.Var) {
			c.UnsetEnv = append(c.UnsetEnv, r.Var)
		}
	}
	under := func(prefix string) origin {
		o := origin{lines: true}
		for _, r := range refs {
			if rel, ok := strings.CutPrefix(r.Key, prefix); ok {
				if o.unset == nil {
					o.unset = map[string][]string{}
				}
				o.unset[rel] = append(o.unset[rel], r.Var)
			}
		}
		return o
	}
	for i := range c.Sources {
		for j := range c.Sources[i].Verify {
			c.Sources[i].Verify[j].src = under(fmt.Sprintf("sources[%d].verify[%d].", i, j))
		}
	}
	for i := range c.Destinations {
		c.Destinations[i].src = under(fmt.Sprintf("destinations[%d].", i))
	}
}

// keySegment is one step of a key path in an error ("secrets[0]",
// "users[1].password", "sources[0] (claims).event"); the name in
// parentheses is dropped to match.
var (
	keySegment = regexp.MustCompile(`^[a-z_][a-z0-9_]*(\[\d+\])*( \([^()]*\))?(\.[a-z_][a-z0-9_]*(\[\d+\])*)*$`)
	nameInKey  = regexp.MustCompile(` \([^()]*\)`)
)

// explainUnset rewrites an error whose leading key path ("a: b[0]: …")
// names a value that referred to an unset variable into one that names
// the variable. Several errors joined by newlines are rewritten each.
func explainUnset(unset map[string][]string, err error) error {
	if err == nil || len(unset) == 0 {
		return err
	}
	lines := strings.Split(err.Error(), "\n")
	changed := false
	for i, line := range lines {
		parts := strings.Split(line, ": ")
		key := ""
		for j, p := range parts[:len(parts)-1] {
			if !keySegment.MatchString(p) {
				break
			}
			key = joinKey(key, nameInKey.ReplaceAllString(p, ""))
			if vars, ok := unset[key]; ok {
				what := "environment variable " + vars[0] + " is"
				if len(vars) > 1 {
					what = "environment variables " + strings.Join(vars, ", ") + " are"
				}
				lines[i] = strings.Join(parts[:j+1], ": ") + ": " + what + " not set"
				changed = true
				break
			}
		}
	}
	if !changed {
		return err
	}
	return errors.New(strings.Join(lines, "\n"))
}

func (o origin) explain(err error) error { return explainUnset(o.unset, err) }

// explainUnset names the unset variables behind Validate's errors.
func (c *Config) explainUnset(err error) error {
	if len(c.UnsetRefs) == 0 {
		return err
	}
	m := map[string][]string{}
	for _, r := range c.UnsetRefs {
		m[r.Key] = append(m[r.Key], r.Var)
	}
	return explainUnset(m, err)
}
