package wal

// SetAckBeforeSync turns on or off the negative control of the power-loss
// tests: Sync answers without syncing (see ackBeforeSync).
func SetAckBeforeSync(on bool) { ackBeforeSync.Store(on) }
