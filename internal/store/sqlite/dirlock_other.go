//go:build !unix

package sqlite

// dirLock is the exclusive lock of a data directory; where there is no
// flock(2), there is none, and nothing keeps a second process out.
type dirLock struct{}

// lockDir takes no lock where there is no flock(2).
func lockDir(dir string) (*dirLock, error) { return &dirLock{}, nil }

// release does nothing.
func (l *dirLock) release() {}
