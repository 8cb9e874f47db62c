// Package e2e holds end-to-end tests that run a real hookd binary as a
// child process: crash safety under SIGKILL, concurrent duplicates, a full
// disk, graceful shutdown and the first-run demo. The package has no
// non-test code; the tests build cmd/hookd once in TestMain. They are
// Linux-only (tmpfs, signals, Pdeathsig).
package e2e
