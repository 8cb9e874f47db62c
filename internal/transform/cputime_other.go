//go:build !linux

package transform

import "time"

// threadClock is the wall clock where no thread CPU clock is read: the
// time limit then counts the time a call waited for a CPU too.
type threadClock struct{ start time.Time }

func newThreadClock() (threadClock, bool) { return threadClock{start: time.Now()}, true }

func (c threadClock) used() (time.Duration, bool) { return time.Since(c.start), true }
