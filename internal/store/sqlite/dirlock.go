package sqlite

import (
	"fmt"
	"path/filepath"
)

// LockFile is the lock file inside the data directory. The process that
// has the store open holds an exclusive lock on it and has written its pid
// into it; the kernel drops the lock when that process ends, however it
// ends, so a killed hookd never keeps its successor out.
const LockFile = "hookd.lock"

// replicasDoc is where the message to a second process sends an operator
// who wants several replicas.
const replicasDoc = "docs/DEPLOYMENT.md"

// inUseError is Open's error when another process has the data directory
// open.
type inUseError struct {
	dir string
	pid int // 0 when the holder's pid could not be read
}

func (e *inUseError) Error() string {
	who := "another hookd serve"
	if e.pid > 0 {
		who = fmt.Sprintf("another hookd serve (pid %d)", e.pid)
	}
	return fmt.Sprintf("%s is using the data directory %s; hookd runs one process per SQLite data directory (for several replicas use PostgreSQL: %s)", who, e.dir, replicasDoc)
}

// absDir is dir made absolute for messages, dir itself if that fails.
func absDir(dir string) string {
	if abs, err := filepath.Abs(dir); err == nil {
		return abs
	}
	return dir
}
