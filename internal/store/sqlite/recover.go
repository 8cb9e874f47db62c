package sqlite

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sync/atomic"
	"time"

	"hookd"
	"hookd/internal/store"
)

// Recovery. Three faults stop ingest: a failed fdatasync of the log (the
// log refuses appends until it has recovered), a failed fdatasync of
// SQLite's WAL (writes to the database are refused until it has
// recovered), and an append that cannot write (a full disk). Each wakes
// recoverLoop, which tries again with a growing pause (up to a second)
// until none is left, without a restart:
//
//   - the log drops every record after its last successful sync, reads
//     back what it keeps from the disk and cuts it there (wal.Recover).
//     Those records were never acknowledged: their requests are answered
//     503 (Durable), and the pending maps forget them;
//   - the database copies its WAL into the database file with a TRUNCATE
//     checkpoint (SQLite's own syncs), then a sync of the WAL must pass;
//   - a full disk is over once the log's directory takes a probe write.
//
// Until then Ready fails, so that /readyz takes hookd out of a balancer,
// and brings it back once the store can commit again.

// probeSize is what a probe writes: room for a segment's header and a
// batch of small events.
const probeSize = 64 << 10

// setFault records err in f and wakes the recovery.
func (s *Store) setFault(f *atomic.Pointer[error], err error) {
	f.Store(&err)
	s.wakeRecovery()
}

// clearFault clears f.
func (s *Store) clearFault(f *atomic.Pointer[error]) { f.Store(nil) }

func (s *Store) wakeRecovery() {
	select {
	case s.faultWake <- struct{}{}:
	default:
	}
}

// recoverLoop runs the recoveries while something fails: at once, then
// after 100 ms, doubling up to a second.
func (s *Store) recoverLoop() {
	defer close(s.recoverDone)
	for {
		select {
		case <-s.faultWake:
		case <-s.stopRecover:
			return
		}
		pause := 100 * time.Millisecond
		var logged error
		for {
			err := s.recoverAll()
			if err == nil {
				if logged != nil {
					s.log.Info("storage recovered: accepting events again")
				}
				break
			}
			if logged == nil || err.Error() != logged.Error() {
				s.log.Warn("storage not yet recovered; trying again", "err", err, "in", pause)
				logged = err
			}
			t := time.NewTimer(pause)
			select {
			case <-t.C:
			case <-s.stopRecover:
				t.Stop()
				return
			}
			pause = min(2*pause, time.Second)
		}
	}
}

// recoverAll tries every recovery needed, and returns the first that
// fails (nil when the store is healthy).
func (s *Store) recoverAll() error {
	if s.wal.Err() != nil {
		if err := s.recoverLog(); err != nil {
			return fmt.Errorf("recover the write-ahead log: %w", err)
		}
	}
	if s.syncErr.Load() != nil {
		if err := s.recoverDB(); err != nil {
			return fmt.Errorf("recover the database: %w", err)
		}
	}
	if failed := s.writeErr.Load(); failed != nil {
		if err := s.wal.Probe(probeSize); err != nil {
			return err
		}
		// Only the failure the probe began after: an append that failed
		// meanwhile stands until a probe that follows it passes.
		if !s.writeErr.CompareAndSwap(failed, nil) {
			return errors.New("an append failed during the probe of the disk")
		}
	}
	return nil
}

// recoverLog recovers the log after a failed sync: the records it drops
// leave the pending maps, those it keeps (a sync covered them) go to the
// indexer, and batches logged before it that it dropped are no longer
// Durable.
func (s *Store) recoverLog() error {
	s.appendMu.Lock()
	defer s.appendMu.Unlock()
	if s.closed {
		return errors.New("store closed")
	}
	s.syncOrder.Lock()
	defer s.syncOrder.Unlock()
	s.genMu.Lock()
	defer s.genMu.Unlock()
	before := s.logged.Load()
	kept, err := s.wal.Recover()
	if err != nil {
		return err
	}
	s.unsyncedMu.Lock()
	recs, undo := s.unsynced, s.unsyncedUndo
	s.unsynced, s.unsyncedUndo = nil, nil
	s.unsyncedMu.Unlock()
	var keep []*logRecord
	for _, r := range recs {
		if r.lsn <= kept {
			keep = append(keep, r)
		}
	}
	var drop []pendUndo
	for _, u := range undo {
		if u.lsn > kept {
			drop = append(drop, u)
		}
	}
	s.undoPending(drop)
	s.enqueue(keep)
	s.cuts = append(s.cuts, kept)
	s.gen.Add(1)
	if before > kept {
		s.logged.Store(kept)
	}
	s.log.Info("write-ahead log recovered from what is on disk", "kept_through", kept, "dropped_records", before-min(before, kept))
	return nil
}

// recoverDB recovers the database after a failed sync of its WAL: a
// TRUNCATE checkpoint copies the WAL into the database file and syncs it,
// then the WAL, reopened, must sync.
func (s *Store) recoverDB() error {
	s.dbSyncMu.Lock()
	defer s.dbSyncMu.Unlock()
	if s.syncErr.Load() == nil {
		return nil
	}
	var busy, logFrames, done int
	if err := s.ckpt.QueryRow("PRAGMA wal_checkpoint(TRUNCATE)").Scan(&busy, &logFrames, &done); err != nil {
		return fmt.Errorf("checkpoint: %w", err)
	}
	if busy != 0 {
		return errors.New("checkpoint: the database is busy")
	}
	if s.dbWAL != nil {
		s.dbWAL.Close()
		s.dbWAL = nil
	}
	f, err := os.OpenFile(s.path+"-wal", os.O_RDWR, 0)
	if err != nil {
		return fmt.Errorf("open WAL for sync: %w", err)
	}
	if err := (*s.syncFile.Load())(f); err != nil {
		f.Close()
		return fmt.Errorf("sync WAL: %w", err)
	}
	s.dbWAL = f
	s.syncErr.Store(nil)
	return nil
}

// Ready reports whether an event could be committed now: nil, or why not
// (a failed sync not yet recovered, a full disk, a database that cannot
// be written). It changes back by itself once the cause is gone.
func (s *Store) Ready(ctx context.Context) error {
	if err := s.ingestable(); err != nil {
		return err
	}
	if err := s.writeErr.Load(); err != nil {
		return &hookd.Error{Code: hookd.EUnavailable, Message: "storage unavailable: cannot write", Err: *err}
	}
	return s.Ping(ctx)
}

// Mark is the position of the last batch logged, for Durable.
func (s *Store) Mark() store.SyncMark {
	if m := s.mark.Load(); m != nil {
		return *m
	}
	return store.SyncMark{}
}

// Durable reports whether the batches logged up to m are durable: a sync
// covered them. It is false for a batch that a failed sync left out,
// which a recovery drops (or has dropped) from the log.
func (s *Store) Durable(m store.SyncMark) bool {
	s.genMu.Lock()
	defer s.genMu.Unlock()
	if m.Gen == s.gen.Load() {
		return m.LSN <= s.wal.Synced()
	}
	return m.Gen < uint64(len(s.cuts)) && m.LSN <= s.cuts[m.Gen]
}
