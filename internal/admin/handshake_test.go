package admin_test

import (
	"context"
	"io"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"hookd/internal/admin"
	"hookd/internal/store/sqlite"
)

// countingStore is a real store that counts (and can hold) the writes of
// last handshakes.
type countingStore struct {
	*sqlite.Store
	puts    atomic.Int64
	entered chan string   // told of each write, when set
	release chan struct{} // each write waits for it, when set
}

func (s *countingStore) SettingPut(ctx context.Context, name, value string) error {
	if s.entered != nil {
		s.entered <- name
	}
	if s.release != nil {
		<-s.release
	}
	s.puts.Add(1)
	return s.Store.SettingPut(ctx, name, value)
}

func openCountingStore(t *testing.T) *countingStore {
	t.Helper()
	st, err := sqlite.Open(context.Background(), t.TempDir(), slog.New(slog.NewTextHandler(io.Discard, nil)), sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return &countingStore{Store: st}
}

// A source's handshakes are written at most once an interval: those in
// between are folded into the next write (the newest wins), and Stop
// writes what waits.
func TestHandshakeLogWritesAtMostOncePerInterval(t *testing.T) {
	t.Parallel()
	st := openCountingStore(t)
	var mu sync.Mutex
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	l := admin.NewHandshakeLog(st, nil, admin.HandshakeLogOptions{Interval: time.Hour, Now: clock})
	l.Start(context.Background())
	ctx := context.Background()
	at := func(s int) time.Time { return now.Add(time.Duration(s) * time.Second) }

	l.Record("a", admin.LastHandshake{Kind: "generic", Status: 200, At: at(0)})
	waitUntil(t, "the first handshake written", func() bool { return st.puts.Load() == 1 })
	l.Record("a", admin.LastHandshake{Kind: "generic", Status: 200, At: at(1)})
	l.Record("a", admin.LastHandshake{Kind: "generic", Status: 200, At: at(2)})
	// b's write comes after a's two handshakes were taken from the queue.
	l.Record("b", admin.LastHandshake{Kind: "generic", Status: 200, At: at(3)})
	waitUntil(t, "b's handshake written", func() bool { return st.puts.Load() == 2 })
	stored, err := st.SettingGet(ctx, admin.HandshakeSettingPrefix+"a")
	if err != nil || !strings.Contains(stored, `"at":"2026-01-02T03:04:05Z"`) {
		t.Fatalf("a within the interval: stored %s (%v), want still the first handshake", stored, err)
	}
	// This process shows its newest at once.
	if h, err := l.Last(ctx, "a"); err != nil || h == nil || !h.At.Equal(at(2)) {
		t.Errorf("Last(a): got %+v, %v, want the one at %s", h, err, at(2))
	}

	if err := l.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	if got := st.puts.Load(); got != 3 {
		t.Errorf("writes: got %d, want 3 (a, b, and a's newest at Stop)", got)
	}
	stored, _ = st.SettingGet(ctx, admin.HandshakeSettingPrefix+"a")
	if !strings.Contains(stored, `"at":"2026-01-02T03:04:07Z"`) || !strings.Contains(stored, `"status":200`) {
		t.Errorf("a after Stop: stored %s, want the newest handshake", stored)
	}
	// Another process (a replica on the same database) reads it.
	other := admin.NewHandshakeLog(st, nil, admin.HandshakeLogOptions{})
	if h, err := other.Last(ctx, "a"); err != nil || h == nil || !h.At.Equal(at(2)) || h.Status != 200 {
		t.Errorf("Last(a) from another log: got %+v, %v", h, err)
	}
	if h, err := other.Last(ctx, "none"); err != nil || h != nil {
		t.Errorf("Last(none): got %+v, %v, want nil, nil", h, err)
	}
}

// A refused handshake is kept apart from the answered ones: a later
// refusal (which anyone can cause) leaves the last answered handshake as
// it was, here and for another replica.
func TestHandshakeLogKeepsRefusedApart(t *testing.T) {
	t.Parallel()
	st := openCountingStore(t)
	l := admin.NewHandshakeLog(st, nil, admin.HandshakeLogOptions{})
	l.Start(context.Background())
	ctx := context.Background()
	at := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	l.Record("a", admin.LastHandshake{Kind: "generic", Status: 200, At: at})
	l.Record("a", admin.LastHandshake{Kind: "generic", Status: 403, At: at.Add(time.Second), Error: "no", Refused: true})
	for _, lg := range []*admin.HandshakeLog{l, nil} {
		if lg == nil {
			if err := l.Stop(ctx); err != nil {
				t.Fatal(err)
			}
			lg = admin.NewHandshakeLog(st, nil, admin.HandshakeLogOptions{}) // another replica
		}
		if h, err := lg.Last(ctx, "a"); err != nil || h == nil || h.Status != 200 || !h.At.Equal(at) {
			t.Errorf("Last(a) after a refusal: got %+v, %v, want the answered one at %s", h, err, at)
		}
		if h, err := lg.LastRefused(ctx, "a"); err != nil || h == nil || h.Status != 403 || h.Error != "no" {
			t.Errorf("LastRefused(a): got %+v, %v, want the 403", h, err)
		}
	}
	// A refusal stored under the answered setting (as before the two were
	// kept apart) is not shown as answered.
	if err := st.SettingPut(ctx, admin.HandshakeSettingPrefix+"old", `{"kind":"generic","status":403,"at":"2026-01-02T03:04:05Z","error":"no"}`); err != nil {
		t.Fatal(err)
	}
	if h, err := admin.NewHandshakeLog(st, nil, admin.HandshakeLogOptions{}).Last(ctx, "old"); err != nil || h != nil {
		t.Errorf("Last(old): got %+v, %v, want nil", h, err)
	}
}

// Record never waits for the store: beyond the queue, handshakes are
// dropped and counted.
func TestHandshakeLogDropsWhenFull(t *testing.T) {
	t.Parallel()
	st := openCountingStore(t)
	st.entered, st.release = make(chan string, 16), make(chan struct{})
	l := admin.NewHandshakeLog(st, nil, admin.HandshakeLogOptions{Queue: 2})
	l.Start(context.Background())
	l.Record("held", admin.LastHandshake{Kind: "generic", Status: 200, At: time.Now()})
	<-st.entered // the writer waits in the store
	for i := range 5 {
		l.Record("s"+string(rune('0'+i)), admin.LastHandshake{Kind: "generic", Status: 200, At: time.Now()})
	}
	if got := l.Dropped(); got != 3 {
		t.Errorf("dropped: got %d, want 3 (a queue of 2)", got)
	}
	close(st.release)
	if err := l.Stop(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got := st.puts.Load(); got != 3 {
		t.Errorf("writes: got %d, want 3 (the held one and the two queued)", got)
	}
}

func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}
