// Package e2e holds end-to-end tests that run a real hookd binary as a
// child process: crash safety under SIGKILL, concurrent duplicates, a full
// disk, graceful shutdown, the first-run demo, and several replicas on
// one PostgreSQL schema (cluster_test.go: SIGKILL and SIGSTOP of replicas,
// cut database sessions, definitions created at one replica and used at
// another; the long chaos run needs HOOKD_TEST_LONG=1). The package has no
// non-test code; the tests build cmd/hookd once in TestMain. They are
// Linux-only (tmpfs, signals, Pdeathsig).
package e2e
