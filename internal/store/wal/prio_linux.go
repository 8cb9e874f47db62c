package wal

import (
	"runtime"
	"syscall"
)

// background lowers the calling goroutine's thread to the lowest CPU
// priority, for work that must not compete with acknowledgements. The
// goroutine keeps the thread to itself until it returns (the thread is
// then discarded).
func background() {
	runtime.LockOSThread()
	syscall.Setpriority(syscall.PRIO_PROCESS, syscall.Gettid(), 19)
}
