//go:build !unix

package cli

import (
	"errors"
	"time"
)

// raiseFileLimit: only Unix systems have an open-file limit to raise.
func raiseFileLimit(need uint64) error {
	return errors.New("bench slow needs a Unix system (it raises the open-file limit)")
}

// processCPU: the CPU time is read on Unix systems only.
func processCPU() (time.Duration, bool) { return 0, false }
