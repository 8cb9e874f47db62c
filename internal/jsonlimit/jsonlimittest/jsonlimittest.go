// Package jsonlimittest holds the deep-nesting seeds that the fuzz
// targets of every parser of outside JSON carry in their seed corpus.
package jsonlimittest

import "strings"

// DeepSeeds returns documents nested far beyond any depth limit, or that
// only look so because the brackets are inside strings (which must not
// count), and unbalanced ones.
func DeepSeeds() []string {
	return []string{
		strings.Repeat("[", 100000),
		strings.Repeat("[", 5000) + strings.Repeat("]", 5000),
		strings.Repeat(`{"a":`, 5000) + "1" + strings.Repeat("}", 5000),
		strings.Repeat(`{"a":[`, 200) + `{}` + strings.Repeat(`]}`, 200),
		`{"a":"` + strings.Repeat("[", 5000) + `"}`,
		`["` + strings.Repeat(`\"[{`, 2000) + `"]`,
		strings.Repeat("]", 200) + strings.Repeat("[", 200),
		strings.Repeat("[", 128) + strings.Repeat("]", 128),
		strings.Repeat("[", 129) + strings.Repeat("]", 129),
	}
}
