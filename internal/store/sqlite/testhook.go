package sqlite

import "sync/atomic"

// ackBeforeSync, when set, makes Sync answer, and hand the records to the
// indexer, without syncing the log: events are acknowledged before they
// are durable. It is the negative control of the power-loss test, which
// must then find acknowledged events missing; only this package's tests
// can set it.
var ackBeforeSync atomic.Bool
