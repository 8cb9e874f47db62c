//go:build unix

package exec

import (
	"errors"
	"os"
	osexec "os/exec"
	"syscall"
)

// supported reports whether this system can run an exec destination.
const supported = true

// xOK is access(2)'s X_OK.
const xOK = 0x1

// checkAccess reports whether hookd's user may execute path.
func checkAccess(path string) error { return syscall.Access(path, xOK) }

// inGroup makes cmd start as the leader of a process group of its own, and
// makes cancelling its context (a timeout, the caller's cancellation) kill
// that whole group with SIGKILL: the command, and every child it started
// that stayed in the group.
func inGroup(cmd *osexec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error {
		// The group's id is the leader's pid (Setpgid with Pgid 0).
		err := syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		if errors.Is(err, syscall.ESRCH) {
			// Nobody left in the group: the command already exited.
			return os.ErrProcessDone
		}
		return err
	}
}
