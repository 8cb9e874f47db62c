package engine_test

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"hookd/internal/egress"
	"hookd/internal/engine"
	"hookd/internal/store"
	"hookd/internal/store/sqlite"
)

// failingWrites is a SQLite store whose delivery writes fail while fail
// is set, as they do when fdatasync fails or the disk is gone.
type failingWrites struct {
	*sqlite.Store
	fail atomic.Bool
}

func (f *failingWrites) DeliveryWriteMany(ctx context.Context, ws []*store.DeliveryWrite, wm int64) ([]string, error) {
	if f.fail.Load() {
		return nil, errors.New("write deliveries: sync WAL: fdatasync: input/output error")
	}
	return f.Store.DeliveryWriteMany(ctx, ws, wm)
}

// TestStopEndsWhenOutcomesCannotBeWritten stops the engine while the store
// refuses every delivery write and attempts have succeeded: Stop returns
// soon after its context ends, with an error that counts the outcomes it
// could not record, instead of retrying them forever. Reopened on the same
// store, the engine makes those deliveries again (at least once, same
// webhook-id).
func TestStopEndsWhenOutcomesCannotBeWritten(t *testing.T) {
	const n = 5
	release := make(chan struct{})
	s := newSink(t, func(int, *http.Request) (int, http.Header) {
		<-release
		return 200, nil
	})
	defer func() {
		select {
		case <-release:
		default:
			close(release)
		}
	}()
	dir := t.TempDir()
	st, err := sqlite.Open(context.Background(), dir, logger(t), sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	fw := &failingWrites{Store: st}
	guard, err := egress.NewGuard([]string{"127.0.0.0/8"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	yml := destYAML("sink", s.srv.URL, "")
	ds, ss := parseDests(t, yml)
	eng := engine.New(engine.Options{Store: fw, Log: logger(t), Egress: guard})
	if err := eng.Open(context.Background(), ds, ss); err != nil {
		st.Close()
		t.Fatal(err)
	}
	r := &rig{t: t, st: st, eng: eng, clock: engine.RealClock{}}
	evs := r.publish(events(n, "order.created")...)
	eventually(t, 10*time.Second, "every attempt at the sink", func() bool { return len(s.hits()) == n })
	fw.fail.Store(true)
	close(release)

	ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	defer cancel()
	start := time.Now()
	stopped := make(chan error, 1)
	go func() { stopped <- eng.Stop(ctx) }()
	select {
	case err = <-stopped:
	case <-time.After(20 * time.Second):
		t.Fatalf("Stop has not returned %v after it was called (its context ended after 500ms) while the store refuses delivery writes", time.Since(start).Round(time.Millisecond))
	}
	t.Logf("Stop returned after %v: %v", time.Since(start).Round(time.Millisecond), err)
	if err == nil || !strings.Contains(err.Error(), "delivery outcomes not recorded") {
		t.Fatalf("Stop: got %v, want an error counting the delivery outcomes not recorded", err)
	}
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}

	// The store works again: the next start makes those deliveries again.
	r2 := newRig(t, dir, engine.RealClock{}, yml, engine.Options{})
	eventually(t, 10*time.Second, "every event delivered again after the restart", func() bool {
		got := s.ids()
		for _, ev := range evs {
			if got[ev.ID] < 2 {
				return false
			}
		}
		return true
	})
	eventually(t, 10*time.Second, "every delivery recorded as succeeded", func() bool {
		for _, ev := range evs {
			if statusOf(t, r2, ev, "sink") != store.StatusSucceeded {
				return false
			}
		}
		return true
	})
}
