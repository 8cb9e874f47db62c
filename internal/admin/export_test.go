package admin

import "testing"

// SetStatsPage makes a count listing return at most n rows until the test
// ends. The test must not be parallel.
func SetStatsPage(t *testing.T, n int) {
	old := statsPage
	statsPage = n
	t.Cleanup(func() { statsPage = old })
}
