package wal

import "sync/atomic"

// ackBeforeSync, when set, makes Sync return at once without syncing: the
// records are acknowledged before they are durable (they reach the disk at
// the next segment roll or never). It is the negative control of the
// power-loss tests, which must then find acknowledged records missing;
// only this package's tests can set it (export_test.go).
var ackBeforeSync atomic.Bool
