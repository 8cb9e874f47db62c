package sqlite

import (
	"context"
	"os"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"hookd"
	"hookd/internal/fsutil"
	"hookd/internal/store"
)

// A sync that fails while a full segment is synced before the next one
// (inside an append) makes the store not ready too, and it recovers by
// itself once syncs work: batches no sync covered are not Durable and not
// stored, their provider ids are free again, and everything synced is
// kept.
func TestRecoverAfterAFailedSyncAtARoll(t *testing.T) {
	t.Parallel()
	var fail atomic.Bool
	st, err := Open(t.Context(), t.TempDir(), testLogger(t), Options{SegmentSize: 8 << 10, SyncFile: func(f *os.File) error {
		if fail.Load() {
			return syscall.EIO
		}
		return fsutil.Fdatasync(f)
	}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	ctx := t.Context()
	body := []byte(`{"pad":"` + strings.Repeat("x", 2000) + `"}`)
	ins := func(id string) error {
		_, err := st.EventInsertMany(ctx, []*store.EventInsert{{DedupeWindow: time.Hour, Event: &hookd.Event{
			ID: hookd.EventIDPrefix + hookd.NewULID(time.Now()), Source: "s", ExternalID: id,
			ReceivedAt: time.Now(), Body: body,
		}}})
		return err
	}
	if err := ins("kept"); err != nil {
		t.Fatal(err)
	}
	if err := st.Sync(); err != nil {
		t.Fatal(err)
	}
	fail.Store(true)
	var lost []store.SyncMark
	for i := 0; st.Ready(ctx) == nil; i++ {
		if i == 20 {
			t.Fatal("Ready: still nil after 20 appends with syncs failing")
		}
		// Appends without a Sync: the failure comes from the roll.
		if err := ins("lost-" + string(rune('a'+i))); err == nil {
			lost = append(lost, st.Mark())
		}
	}
	if len(lost) == 0 {
		t.Fatal("no append succeeded before the failure")
	}
	// No Sync is called: the failed roll alone must start the recovery.
	fail.Store(false)
	deadline := time.Now().Add(30 * time.Second)
	for st.Ready(ctx) != nil {
		if time.Now().After(deadline) {
			t.Fatalf("Ready: still %v 30s after syncs work again", st.Ready(ctx))
		}
		time.Sleep(20 * time.Millisecond)
	}
	for _, m := range lost {
		if st.Durable(m) {
			t.Errorf("batch at %+v: Durable after the recovery dropped it", m)
		}
	}
	// The provider's retry of a lost event is a new event.
	res, err := st.EventInsertMany(ctx, []*store.EventInsert{{DedupeWindow: time.Hour, Event: &hookd.Event{
		ID: hookd.EventIDPrefix + hookd.NewULID(time.Now()), Source: "s", ExternalID: "lost-a",
		ReceivedAt: time.Now(), Body: body,
	}}})
	if err != nil || res[0].Duplicate {
		t.Fatalf("re-sent lost-a: got %+v, %v; want a new event", res, err)
	}
	if err := st.Sync(); err != nil {
		t.Fatal(err)
	}
	evs, _, err := st.EventList(context.Background(), &store.EventListParams{Source: "s", Limit: 100})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, e := range evs {
		got = append(got, e.ExternalID)
	}
	if strings.Join(got, ",") != "kept,lost-a" {
		t.Errorf("stored: got %v, want [kept lost-a]", got)
	}
}
