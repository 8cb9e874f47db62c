package ingest

import (
	"sync/atomic"
	"testing"

	"hookd/internal/jsonlimit"
)

// CountDepthChecks counts the depth checks of request bodies until the
// test ends. The test must not be parallel.
func CountDepthChecks(t *testing.T) *atomic.Int64 {
	var n atomic.Int64
	checkDepth = func(b []byte, limit int) error {
		n.Add(1)
		return jsonlimit.Check(b, limit)
	}
	t.Cleanup(func() { checkDepth = jsonlimit.Check })
	return &n
}
