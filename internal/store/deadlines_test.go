package store

import (
	"testing"
	"time"
)

// A deadline's channel closes once it has passed, not before, and the
// ticker stops when no deadline is left.
func TestDeadlines(t *testing.T) {
	t.Parallel()
	var d deadlines
	start := time.Now()
	ch := d.at(start.Add(20 * time.Millisecond))
	if d.at(start.Add(20*time.Millisecond)) != ch {
		t.Error("two waiters of one tick got different channels")
	}
	<-ch
	if took := time.Since(start); took < 20*time.Millisecond || took > time.Second {
		t.Errorf("closed after %v, want just after 20ms", took)
	}
	select {
	case <-d.at(start.Add(-time.Second)):
	default:
		t.Error("a deadline in the past: channel not closed at once")
	}
	for range 200 {
		d.mu.Lock()
		running := d.running
		d.mu.Unlock()
		if !running {
			return
		}
		time.Sleep(5 * time.Millisecond) // polling for the ticker to stop
	}
	t.Error("the ticker still runs with no deadline left")
}
