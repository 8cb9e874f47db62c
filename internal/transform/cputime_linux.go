package transform

import (
	"time"

	"golang.org/x/sys/unix"
)

// threadClock is the CPU clock of the calling OS thread, which the caller
// has locked (runtime.LockOSThread): any goroutine can read it, so the
// timer can tell the CPU time a call used from the time it waited for a
// CPU on a busy machine.
type threadClock struct {
	id    int32
	start time.Duration
}

func newThreadClock() (threadClock, bool) {
	// Linux's clock id of a thread's CPU time: MAKE_THREAD_CPUCLOCK(tid,
	// CPUCLOCK_SCHED), that is (^tid << 3) | 6.
	c := threadClock{id: int32(^unix.Gettid()<<3 | 6)}
	var ok bool
	c.start, ok = c.read()
	return c, ok
}

func (c threadClock) read() (time.Duration, bool) {
	var ts unix.Timespec
	if err := unix.ClockGettime(c.id, &ts); err != nil {
		return 0, false
	}
	return time.Duration(ts.Nano()), true
}

// used is the CPU time the thread used since newThreadClock.
func (c threadClock) used() (time.Duration, bool) {
	t, ok := c.read()
	return t - c.start, ok
}
