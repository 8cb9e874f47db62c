package sqlite

import (
	"testing"

	"hookd/internal/store"
)

// eventsCounted sums st's per-minute event counts of source s.
func eventsCounted(t *testing.T, st *Store, s string) int64 {
	t.Helper()
	ms, err := st.EventCountList(t.Context(), &store.EventCountListParams{Source: s})
	if err != nil {
		t.Fatalf("EventCountList: %v", err)
	}
	var n int64
	for _, m := range ms {
		n += m.Events
	}
	return n
}

// The per-minute event counts are written where the indexer writes the
// events: acknowledged events still in the log at a crash are counted
// when the next start replays them, and those indexed before it are not
// counted again.
func TestEventCountsAfterACrashReplay(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	st := held(t, dir)
	defer st.Close()
	logInsert(t, st, logEvent("s", "a", `{}`), logEvent("s", "b", `{}`), logEvent("s", "c", `{}`))
	logInsert(t, st, logEvent("s", "a", `{}`)) // a duplicate
	if err := st.Sync(); err != nil {
		t.Fatal(err)
	}
	none := crashCopy(t, dir) // nothing indexed yet
	if n := eventsCounted(t, st, "s"); n != 3 {
		t.Fatalf("before the crash: got %d events counted, want 3", n)
	}
	logInsert(t, st, logEvent("s", "d", `{}`), logEvent("s", "e", `{}`))
	if err := st.Sync(); err != nil {
		t.Fatal(err)
	}
	some := crashCopy(t, dir) // three indexed, two in the log only

	for _, c := range []struct {
		name, dir string
		want      int64
	}{{"NothingIndexed", none, 3}, {"SomeIndexed", some, 5}} {
		st2 := openTest(t, c.dir, testLogger(t))
		if n := eventsCounted(t, st2, "s"); n != c.want {
			t.Errorf("%s: after the replay, got %d events counted, want %d", c.name, n, c.want)
		}
	}
}
