//go:build unix

package cli

import (
	"fmt"
	"syscall"
	"time"
)

// raiseFileLimit raises this process's open-file limit to at least need,
// within its hard limit.
func raiseFileLimit(need uint64) error {
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		return fmt.Errorf("read the open-file limit: %w", err)
	}
	if uint64(lim.Cur) >= need {
		return nil
	}
	if uint64(lim.Max) < need {
		return fmt.Errorf("the open-file limit is %d (hard), this run needs %d: lower --slow or raise the limit (ulimit -n)", lim.Max, need)
	}
	setLimit(&lim.Cur, need)
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		return fmt.Errorf("raise the open-file limit to %d: %w", need, err)
	}
	return nil
}

// setLimit stores v in a limit field, whose type is uint64 on Linux and
// int64 on the BSDs.
func setLimit[T int64 | uint64](field *T, v uint64) { *field = T(v) }

// processCPU is the CPU time (user and system) this process has used.
func processCPU() (time.Duration, bool) {
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) != nil {
		return 0, false
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano()), true
}
