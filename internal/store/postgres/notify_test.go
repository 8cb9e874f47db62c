package postgres

import (
	"context"
	"errors"
	"testing"
	"time"
)

// listener runs st.Listen until the test ends and reports what it hears.
type listener struct {
	payloads  chan string
	connected chan struct{}
	done      chan error
}

func listen(t *testing.T, st *Store) *listener {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	l := &listener{payloads: make(chan string, 100), connected: make(chan struct{}, 100), done: make(chan error, 1)}
	go func() {
		l.done <- st.Listen(ctx, func(p string) { l.payloads <- p }, func() { l.connected <- struct{}{} })
	}()
	t.Cleanup(func() {
		cancel()
		select {
		case <-l.done:
		case <-time.After(5 * time.Second):
			t.Error("Listen did not return after its context ended")
		}
	})
	return l
}

func (l *listener) waitConnected(t *testing.T, what string) {
	t.Helper()
	select {
	case <-l.connected:
	case <-time.After(10 * time.Second):
		t.Fatalf("timed out waiting for %s", what)
	}
}

// next returns the next payload heard.
func (l *listener) next(t *testing.T) string {
	t.Helper()
	select {
	case p := <-l.payloads:
		return p
	case <-time.After(5 * time.Second):
		t.Fatal("timed out waiting for a notification")
		return ""
	}
}

// A notification sent by one store reaches the listener of another store
// on the same schema, and none from another schema does. When the
// listening session is killed (as a server restart would), Listen
// connects again, says so, and hears what is sent from then on.
func TestListenNotify(t *testing.T) {
	t.Parallel()
	schema := newSchema(t)
	log := testLogger(t)
	a, b := openTest(t, schema, log), openTest(t, schema, log)
	other := openTest(t, newSchema(t), log)
	if a.channel() == other.channel() {
		t.Fatalf("two schemas share the channel %s", a.channel())
	}
	ctx := t.Context()

	l := listen(t, a)
	l.waitConnected(t, "the first connection")
	if err := b.Notify(ctx, "one"); err != nil {
		t.Fatal(err)
	}
	if got := l.next(t); got != "one" {
		t.Fatalf("heard %q, want one", got)
	}
	// Notifications are delivered in commit order: had the other
	// schema's been heard, it would come before "two".
	if err := other.Notify(ctx, "other schema"); err != nil {
		t.Fatal(err)
	}
	if err := b.Notify(ctx, "two"); err != nil {
		t.Fatal(err)
	}
	if got := l.next(t); got != "two" {
		t.Fatalf("heard %q, want two (nothing of the other schema)", got)
	}

	// Kill the listening session.
	var killed bool
	err := b.pool.QueryRow(ctx, `SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE query = $1 AND pid <> pg_backend_pid()`,
		`LISTEN `+quoteIdent(a.channel())).Scan(&killed)
	if err != nil || !killed {
		t.Fatalf("terminate the listening session: %v (terminated %v)", err, killed)
	}
	l.waitConnected(t, "the reconnection after the session was killed")
	if err := b.Notify(ctx, "three"); err != nil {
		t.Fatal(err)
	}
	if got := l.next(t); got != "three" {
		t.Fatalf("after the reconnection heard %q, want three", got)
	}
}

// Listen returns context.Canceled once its context ends.
func TestListenStops(t *testing.T) {
	t.Parallel()
	st := openTest(t, newSchema(t), testLogger(t))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	connected := make(chan struct{}, 1)
	go func() { done <- st.Listen(ctx, func(string) {}, func() { connected <- struct{}{} }) }()
	select {
	case <-connected:
	case <-time.After(10 * time.Second):
		t.Fatal("timed out waiting for Listen to connect")
	}
	cancel()
	select {
	case err := <-done:
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("Listen returned %v, want context.Canceled", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Listen did not return after its context ended")
	}
}
