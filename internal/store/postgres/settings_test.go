package postgres

import (
	"fmt"
	"sync"
	"testing"
)

// Replicas starting at once each offer a value for a setting (hookd's
// token issuer offers a fresh signing key): every one of them gets the
// same stored value.
func TestSettingGetOrCreateConcurrent(t *testing.T) {
	t.Parallel()
	schema := newSchema(t)
	log := testLogger(t)
	replicas := []*Store{openTest(t, schema, log), openTest(t, schema, log)}
	const n = 16
	got := make([]string, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			got[i], errs[i] = replicas[i%2].SettingGetOrCreate(t.Context(), "shared", fmt.Sprintf("value-%d", i))
		}()
	}
	close(start)
	wg.Wait()
	for i := range n {
		if errs[i] != nil {
			t.Fatalf("SettingGetOrCreate %d: %v", i, errs[i])
		}
		if got[i] != got[0] {
			t.Fatalf("SettingGetOrCreate %d got %q, another got %q: want one value for every caller", i, got[i], got[0])
		}
	}
}
