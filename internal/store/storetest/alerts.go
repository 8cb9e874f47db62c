package storetest

import (
	"reflect"
	"sync"
	"testing"
	"time"

	"hookd/internal/store"
)

// testDestinationSwitch: the first disable wins and is the only one that
// reports a change, even when several race; enabling reports a change only
// when the destination was disabled.
func testDestinationSwitch(t *testing.T, st store.Store) {
	ctx := ctxFor(t)
	at := base.Add(time.Minute)
	for _, name := range []string{"configured", "api"} {
		if name == "api" {
			if err := st.DestinationPut(ctx, &store.DestinationRecord{Name: "api", Spec: []byte(`{"type":"http"}`)}); err != nil {
				t.Fatalf("DestinationPut: %v", err)
			}
		}
		if changed, err := st.DestinationSwitch(ctx, name, time.Time{}, ""); err != nil || changed {
			t.Errorf("%s: enable an enabled destination: got %v, %v, want false, nil", name, changed, err)
		}
		if changed, err := st.DestinationSwitch(ctx, name, at, "first"); err != nil || !changed {
			t.Fatalf("%s: disable: got %v, %v, want true, nil", name, changed, err)
		}
		if changed, err := st.DestinationSwitch(ctx, name, at.Add(time.Second), "second"); err != nil || changed {
			t.Errorf("%s: disable a disabled destination: got %v, %v, want false, nil", name, changed, err)
		}
		r := destinationByName(t, st, name)
		if r == nil || !sameTime(r.DisabledAt, at) || r.DisabledReason != "first" {
			t.Errorf("%s: after two disables: got %+v, want disabled at %v for \"first\"", name, r, at)
		}
		if changed, err := st.DestinationSwitch(ctx, name, time.Time{}, ""); err != nil || !changed {
			t.Errorf("%s: enable: got %v, %v, want true, nil", name, changed, err)
		}
		if r := destinationByName(t, st, name); r != nil && !r.DisabledAt.IsZero() {
			t.Errorf("%s: after enable: still disabled at %v", name, r.DisabledAt)
		}
		if changed, err := st.DestinationSwitch(ctx, name, time.Time{}, ""); err != nil || changed {
			t.Errorf("%s: enable twice: got %v, %v, want false, nil", name, changed, err)
		}
	}
	if r := destinationByName(t, st, "configured"); r != nil {
		t.Errorf("a configured destination enabled again keeps a state-only row: %+v", r)
	}
	if r := destinationByName(t, st, "api"); r == nil || len(r.Spec) == 0 {
		t.Errorf("an API destination enabled again: got %+v, want its record kept", r)
	}
	// Eight at once: exactly one sees the change.
	var (
		wg      sync.WaitGroup
		mu      sync.Mutex
		changes int
	)
	for i := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			changed, err := st.DestinationSwitch(ctx, "raced", at.Add(time.Duration(i)*time.Second), "racer")
			if err != nil {
				t.Errorf("DestinationSwitch: %v", err)
			}
			if changed {
				mu.Lock()
				changes++
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if changes != 1 {
		t.Errorf("eight disables at once: %d reported a change, want 1", changes)
	}
}

func testDeliveryCountByDestination(t *testing.T, st store.Store) {
	ctx := ctxFor(t)
	got, err := st.DeliveryCountByDestination(ctx, store.StatusFailed)
	if err != nil || len(got) != 0 {
		t.Fatalf("DeliveryCountByDestination of nothing: got %v, %v, want empty, nil", got, err)
	}
	_, all := seedDeliveries(t, st)
	want := map[string]int64{}
	for _, d := range all {
		if d.Status == store.StatusFailed {
			want[d.Destination]++
		}
	}
	if len(want) == 0 {
		t.Fatal("the seeded deliveries have none failed")
	}
	got, err = st.DeliveryCountByDestination(ctx, store.StatusFailed)
	if err != nil || !reflect.DeepEqual(got, want) {
		t.Errorf("DeliveryCountByDestination(failed): got %v, %v, want %v, nil", got, err, want)
	}
}
