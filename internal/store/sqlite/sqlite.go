// Package sqlite is hookd's embedded storage driver. Events are
// acknowledged once they are in a write-ahead log of their own (package
// wal: one write and one fdatasync per group commit) and indexed into one
// SQLite file in WAL mode afterwards, in large transactions, by an
// indexer; reads wait for the indexer to catch up, so that they see every
// event acknowledged before they began. An event's body and headers stay
// in its log record (the row says where): SQLite holds the small part of
// an event, the part queries filter on. SQLite is written by a single
// connection, read by a small pool, and checkpointed from a connection of
// its own so that checkpoints stay out of the commit path.
package sqlite

import (
	"context"
	"database/sql"
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"hookd"
	"hookd/internal/fsutil"
	"hookd/internal/store"
	"hookd/internal/store/wal"
)

//go:embed migrations/*.sql
var migrations embed.FS

// FileName is the database file inside the data directory.
const FileName = "hookd.db"

// LogDir is the write-ahead log's directory inside the data directory.
const LogDir = "log"

var (
	_ store.Store  = (*Store)(nil)
	_ store.Syncer = (*Store)(nil)
)

// Store is the SQLite implementation of store.Store.
type Store struct {
	path string
	log  *slog.Logger
	opt  Options
	w    *sql.DB // the single writer connection
	r    *sql.DB // readers
	pr   *sql.DB // the log writer's reader (dedupe and stale lookups)
	ckpt *sql.DB // the checkpointer's connection

	findDup   *sql.Stmt // on pr
	newestKey *sql.Stmt // on pr
	dlv       deliveryStmts

	// The write-ahead log and its writer's state, under appendMu.
	wal      *wal.Log
	appendMu sync.Mutex
	batch    wal.Batch
	nextSeq  int64
	closed   bool
	// Filters of the keys in the events table (see filter.go); building
	// and the hashes it collects are under appendMu.
	filt        atomic.Pointer[filters]
	building    bool
	buildDedupe []uint64
	buildKeys   []uint64
	filterWG    sync.WaitGroup
	// What the log holds beyond the index (see ingest.go).
	pendMu     sync.Mutex
	pendDedupe map[dedupeRef]pendingEvent
	pendKeys   map[dedupeRef]pendingKey
	// pendUnpended is the LSN of the last record unpend saw: the
	// entries of records up to it are no longer pending (undoPending).
	pendUnpended uint64

	// Logged records not yet synced, for the indexer once they are. Sync
	// holds syncOrder across the sync, so that it hands them over in log
	// order; unsyncedMu is only held to add or take them, so that the log
	// writer never waits for a sync.
	syncOrder  sync.Mutex
	unsyncedMu sync.Mutex
	unsynced   []*logRecord
	// unsyncedUndo undoes the pending-map entries of unsynced records,
	// for a recovery that drops them.
	unsyncedUndo []pendUndo
	logged       atomic.Uint64 // LSN of the last record logged

	// Recovery from a failed sync (see recover.go). gen counts the
	// recoveries of the log; cuts[g] is the last LSN that the recovery
	// ending generation g kept. mark is the position of the last batch
	// logged. Recoveries and Durable hold genMu.
	genMu sync.Mutex
	gen   atomic.Uint64
	cuts  []uint64
	mark  atomic.Pointer[store.SyncMark]
	// writeErr is the last append's failure (a full disk), nil once an
	// append or a probe has written since.
	writeErr    atomic.Pointer[error]
	faultWake   chan struct{}
	stopRecover chan struct{}
	recoverDone chan struct{}

	// The indexer (see indexer.go).
	idxMu     sync.Mutex
	idxQueue  []*logRecord
	idxBytes  int
	idxErr    error         // the last transaction's failure, nil once one succeeds
	idxDone   chan struct{} // closed (and replaced) after every transaction
	idxWake   chan struct{}
	idxUrgent atomic.Bool
	idxStop   chan struct{}
	idxExited chan struct{}
	appended  atomic.Uint64 // LSN of the last record handed to the indexer (synced)
	indexed   atomic.Uint64 // LSN of the last record committed to SQLite
	durable   uint64        // LSN of the last record synced in SQLite (indexer only)

	walCatchUp atomic.Bool
	// dbSyncMu serializes syncDB (and guards dbWAL); nothing else waits
	// for it: the sticky error and the sync function are read without it.
	dbSyncMu   sync.Mutex
	dbWAL      *os.File
	syncErr    atomic.Pointer[error]
	syncFile   atomic.Pointer[func(*os.File) error] // fdatasync; tests inject failures
	stopCkpt   chan struct{}
	ckptDone   chan struct{}
	closeOnce  sync.Once
	closeError error
	// dirLock keeps other processes out of the data directory until
	// Close.
	dirLock *dirLock
	// backupMu runs one Backup at a time; releaseMu keeps log segments
	// from being released while a backup copies them (backup.go).
	backupMu  sync.Mutex
	releaseMu sync.Mutex
}

// Options tunes the driver; zero values take the defaults.
type Options struct {
	// CheckpointInterval is how often the WAL is checkpointed from the
	// checkpointer connection. Default 100ms.
	CheckpointInterval time.Duration
	// WALRestartFrames is the WAL size, in pages, beyond which the writer
	// finishes a checkpoint between two batches so that the WAL starts
	// over. Default 4096 (16 MiB with 4 KiB pages).
	WALRestartFrames int
	// IndexBatch bounds the events of one indexer transaction. Default
	// 4096.
	IndexBatch int
	// IndexLinger is how long the indexer waits for a batch to gather
	// when no reader waits: a transaction of a thousand events costs
	// SQLite about half as much per event as one of a hundred. Default
	// 100ms.
	IndexLinger time.Duration
	// IndexSync is how often the indexer syncs SQLite (the outcomes of
	// deliveries ride on it). Default 200ms.
	IndexSync time.Duration
	// Backlog bounds the memory of logged records not yet indexed (their
	// metadata waits in memory, about 300 bytes a record): beyond it,
	// appends wait for the indexer. Default 64 MiB.
	Backlog int
	// SegmentSize is the size of the log's segment files. Default 64 MiB.
	SegmentSize int64
	// SyncFile replaces fdatasync, of the log and of SQLite's WAL: tests
	// inject failures and delays. Default fsutil.Fdatasync.
	SyncFile func(*os.File) error

	// logFS is the log's file system: the operating system's when nil;
	// the power-loss tests give it one that simulates a crash.
	logFS wal.FS
}

// Open opens (creating if needed) the database in dir, applies migrations
// and asserts the durability settings. The store has dir to itself until
// Close: while another process (or another Store of this one) has it
// open, Open fails within about a second and a half with an error that
// names that process's pid.
func Open(ctx context.Context, dir string, log *slog.Logger, opt Options) (*Store, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("create data directory: %w", err)
	}
	// SQLite would report a read-only directory as a file it cannot open.
	if err := fsutil.Writable(dir); err != nil {
		return nil, fmt.Errorf("data directory %s is not writable: %w", dir, err)
	}
	// One process per data directory: the lock is taken before the
	// database or the log is touched, and kept until Close.
	dl, lerr := lockDir(dir)
	if lerr != nil {
		return nil, lerr
	}
	opened := false
	defer func() {
		if !opened {
			dl.release()
		}
	}()
	removeBackupTemps(dir)
	path := filepath.Join(dir, FileName)
	if opt.CheckpointInterval <= 0 {
		opt.CheckpointInterval = 100 * time.Millisecond
	}
	if opt.WALRestartFrames <= 0 {
		opt.WALRestartFrames = 4096
	}
	if opt.IndexBatch <= 0 {
		opt.IndexBatch = 4096
	}
	if opt.IndexLinger <= 0 {
		opt.IndexLinger = 100 * time.Millisecond
	}
	if opt.IndexSync <= 0 {
		opt.IndexSync = 200 * time.Millisecond
	}
	if opt.Backlog <= 0 {
		opt.Backlog = 64 << 20
	}
	s := &Store{
		path: path, log: log, opt: opt, stopCkpt: make(chan struct{}), ckptDone: make(chan struct{}),
		pendDedupe: map[dedupeRef]pendingEvent{}, pendKeys: map[dedupeRef]pendingKey{},
		idxDone: make(chan struct{}), idxWake: make(chan struct{}, 1), idxStop: make(chan struct{}), idxExited: make(chan struct{}),
		faultWake: make(chan struct{}, 1), stopRecover: make(chan struct{}), recoverDone: make(chan struct{}),
	}
	fdatasync := fsutil.Fdatasync
	if opt.SyncFile != nil {
		fdatasync = opt.SyncFile
	}
	s.syncFile.Store(&fdatasync)
	var err error
	// Pragmas, applied by the driver on every new connection:
	//   journal_mode=WAL     readers never block the writer, and a commit is
	//                        one sequential append to the WAL;
	//   synchronous=FULL     every commit and checkpoint is fsync'd (the
	//                        driver's WAL default, NORMAL, would not);
	//   busy_timeout=5000    readers and the checkpointer wait for locks
	//                        instead of failing at once;
	//   foreign_keys=on      nothing relies on it yet; kept on for sanity.
	base := "_journal_mode=WAL&_busy_timeout=5000&_foreign_keys=on"
	full := base + "&_synchronous=FULL"
	// The writer is the one exception to FULL, and it is not weaker: an
	// event's durability is the write-ahead log's, which the batcher syncs
	// before anyone is answered; the writer's commits are synced by the
	// indexer every Options.IndexSync and by the admin writes that answer
	// for themselves (NORMAL still syncs the WAL before every checkpoint
	// and the database after it). The writer takes the write lock when a
	// transaction begins, and never auto-checkpoints: checkpoints would
	// run inside commits and push the commit latency's tail up (see
	// docs/ARCHITECTURE.md).
	if s.w, err = OpenFile(path, base+"&_synchronous=NORMAL&_txlock=immediate"); err != nil {
		return nil, fmt.Errorf("open sqlite writer: %w", err)
	}
	s.w.SetMaxOpenConns(1)
	s.w.SetMaxIdleConns(1)
	s.w.SetConnMaxLifetime(0)
	s.w.SetConnMaxIdleTime(0)
	if s.r, err = OpenFile(path, full+"&_query_only=true"); err != nil {
		s.w.Close()
		return nil, fmt.Errorf("open sqlite readers: %w", err)
	}
	s.r.SetMaxOpenConns(4)
	s.r.SetMaxIdleConns(4)
	if s.pr, err = OpenFile(path, full+"&_query_only=true"); err != nil {
		s.w.Close()
		s.r.Close()
		return nil, fmt.Errorf("open sqlite readers: %w", err)
	}
	s.pr.SetMaxOpenConns(1)
	s.pr.SetMaxIdleConns(1)
	s.pr.SetConnMaxLifetime(0)
	s.pr.SetConnMaxIdleTime(0)
	if s.ckpt, err = OpenFile(path, full); err != nil {
		s.w.Close()
		s.r.Close()
		s.pr.Close()
		return nil, fmt.Errorf("open sqlite checkpointer: %w", err)
	}
	s.ckpt.SetMaxOpenConns(1)
	if err := s.init(ctx); err != nil {
		s.closeDBs()
		// SQLite's errors do not say which file ("is a directory", "file
		// is not a database"): this one.
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	s.wal, err = wal.Open(filepath.Join(dir, LogDir), wal.Options{
		SegmentSize: opt.SegmentSize,
		SyncFile:    func(f *os.File) error { return (*s.syncFile.Load())(f) },
		FS:          opt.logFS,
	})
	if err != nil {
		s.closeDBs()
		return nil, fmt.Errorf("open the write-ahead log: %w", err)
	}
	logSeq, err := s.replayLog(ctx)
	if err == nil {
		s.nextSeq, err = s.maxSeq(ctx)
	}
	if err != nil {
		s.wal.Close()
		s.closeDBs()
		return nil, err
	}
	s.nextSeq = max(s.nextSeq, logSeq)
	// Segments left from before (spares, and ones whose events were
	// deleted) go back to the log.
	if err := s.releaseSegments(ctx); err != nil {
		s.wal.Close()
		s.closeDBs()
		return nil, err
	}
	go s.checkpointLoop(opt.CheckpointInterval, opt.WALRestartFrames)
	go s.indexLoop()
	go s.recoverLoop()
	// A start on a full disk opens (everything acknowledged is readable)
	// but is not ready until the log's file system takes writes.
	if err := s.wal.Probe(probeSize); err != nil {
		s.setFault(&s.writeErr, err)
	}
	s.appendMu.Lock()
	s.startFilterBuild()
	s.appendMu.Unlock()
	s.dirLock, opened = dl, true
	return s, nil
}

// maxSeq is the highest seq the events table ever gave, deleted rows
// included (AUTOINCREMENT's high-water mark): seqs are never reused.
func (s *Store) maxSeq(ctx context.Context) (int64, error) {
	var hw, cur sql.NullInt64
	err := s.w.QueryRowContext(ctx, `SELECT (SELECT seq FROM sqlite_sequence WHERE name = 'events'), (SELECT max(seq) FROM events)`).Scan(&hw, &cur)
	if err != nil {
		return 0, fmt.Errorf("read the last event seq: %w", mapErr(err))
	}
	return max(hw.Int64, cur.Int64), nil
}

func (s *Store) init(ctx context.Context) error {
	// Writer-only pragmas.
	if _, err := s.w.ExecContext(ctx, "PRAGMA wal_autocheckpoint=0"); err != nil {
		return fmt.Errorf("disable auto-checkpoint: %w", err)
	}
	var mode string
	if err := s.w.QueryRowContext(ctx, "PRAGMA journal_mode").Scan(&mode); err != nil {
		return fmt.Errorf("read journal_mode: %w", err)
	}
	if !strings.EqualFold(mode, "wal") {
		return fmt.Errorf("sqlite durability settings not in force: journal_mode=%s, want wal", mode)
	}
	for _, c := range []struct {
		name string
		db   *sql.DB
		want int
	}{{"writer", s.w, 1}, {"reader", s.r, 2}, {"checkpointer", s.ckpt, 2}} {
		var got int
		if err := c.db.QueryRowContext(ctx, "PRAGMA synchronous").Scan(&got); err != nil {
			return fmt.Errorf("read synchronous: %w", err)
		}
		if got != c.want {
			return fmt.Errorf("sqlite durability settings not in force: %s synchronous=%d, want %d", c.name, got, c.want)
		}
	}
	if err := s.migrate(ctx); err != nil {
		return err
	}
	for _, p := range []struct {
		dst **sql.Stmt
		q   string
	}{
		{&s.findDup, `SELECT seq, id, received_at FROM events WHERE source = ? AND dedupe_key = ?`},
		{&s.newestKey, `SELECT max(occurred_at) FROM events WHERE source = ? AND key = ?`},
	} {
		st, err := s.pr.PrepareContext(ctx, p.q)
		if err != nil {
			return fmt.Errorf("prepare %q: %w", p.q, err)
		}
		*p.dst = st
	}
	return s.prepareDelivery(ctx)
}

func (s *Store) migrate(ctx context.Context) error {
	if _, err := s.w.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (
		version INTEGER PRIMARY KEY, applied_at INTEGER NOT NULL)`); err != nil {
		return fmt.Errorf("create schema_migrations: %w", err)
	}
	names, err := fs.Glob(migrations, "migrations/*.sql")
	if err != nil {
		return err
	}
	sort.Strings(names)
	for _, name := range names {
		base := filepath.Base(name)
		v, err := strconv.Atoi(strings.SplitN(base, "_", 2)[0])
		if err != nil {
			return fmt.Errorf("migration %s: bad number: %w", base, err)
		}
		var n int
		if err := s.w.QueryRowContext(ctx, `SELECT count(*) FROM schema_migrations WHERE version = ?`, v).Scan(&n); err != nil {
			return fmt.Errorf("read schema_migrations: %w", err)
		}
		if n > 0 {
			continue
		}
		body, err := migrations.ReadFile(name)
		if err != nil {
			return err
		}
		tx, err := s.w.BeginTx(ctx, nil)
		if err != nil {
			return fmt.Errorf("migration %s: %w", base, err)
		}
		if _, err := tx.ExecContext(ctx, string(body)); err != nil {
			tx.Rollback()
			return fmt.Errorf("migration %s: %w", base, err)
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO schema_migrations (version, applied_at) VALUES (?, ?)`, v, time.Now().Unix()); err != nil {
			tx.Rollback()
			return fmt.Errorf("migration %s: %w", base, err)
		}
		if err := tx.Commit(); err != nil {
			return fmt.Errorf("migration %s: %w", base, err)
		}
		s.log.Info("applied migration", "version", v, "name", base)
	}
	return nil
}

// checkpointLoop copies the WAL into the database file from its own
// connection. PASSIVE never waits for the writer, so commits never wait for
// it either. Under steady load it never quite catches up, though (frames
// keep arriving while it copies), and SQLite only starts the WAL over when a
// write transaction begins with every frame copied: the WAL would grow
// without bound and every read would slow down with it. So once the WAL is
// large, the checkpointer asks the writer to finish the job between two
// batches (see walCatchUp), which costs the writer only the frames of the
// last interval.
func (s *Store) checkpointLoop(every time.Duration, restartFrames int) {
	defer close(s.ckptDone)
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-s.stopCkpt:
			return
		case <-t.C:
		}
		var busy, logFrames, done int
		err := s.ckpt.QueryRow("PRAGMA wal_checkpoint(PASSIVE)").Scan(&busy, &logFrames, &done)
		if err != nil {
			s.log.Warn("checkpoint", "err", err)
			continue
		}
		if logFrames > restartFrames {
			s.walCatchUp.Store(true)
		}
	}
}

// catchUpWAL runs on the writer connection between batches, when the
// checkpointer asked for it: it copies the frames the checkpointer has not
// copied yet, so that the next write transaction starts the WAL over.
func (s *Store) catchUpWAL(ctx context.Context) {
	if !s.walCatchUp.CompareAndSwap(true, false) {
		return
	}
	var busy, logFrames, done int
	if err := s.w.QueryRowContext(ctx, "PRAGMA wal_checkpoint(PASSIVE)").Scan(&busy, &logFrames, &done); err != nil {
		s.log.Warn("checkpoint on the writer", "err", err)
	}
}

// Sync makes every event logged so far durable: one fdatasync of the
// write-ahead log's files written since the last Sync. It is safe to call
// while EventInsertMany logs the next batch. A failed sync is not
// retried: the kernel may have dropped the pages it could not write, so
// from then on every Sync and insert fails until the log has recovered
// (recover.go), which drops every record logged after the last
// successful sync. Durable tells which batches a sync made durable.
func (s *Store) Sync() error {
	s.syncOrder.Lock()
	defer s.syncOrder.Unlock()
	s.unsyncedMu.Lock()
	recs := s.unsynced
	s.unsynced = nil
	s.unsyncedMu.Unlock()
	if ackBeforeSync.Load() {
		s.enqueue(recs)
		return nil // a test's negative control (testhook.go)
	}
	healthy := s.wal.Err() == nil
	if err := s.wal.Sync(); err != nil {
		if healthy {
			s.log.Error("sync failed: refusing events until the write-ahead log has recovered from what is on disk", "err", err)
		}
		s.wakeRecovery()
		// They stay for the recovery, which indexes those a sync did
		// cover and drops the others.
		s.unsyncedMu.Lock()
		s.unsynced = append(recs, s.unsynced...)
		s.unsyncedMu.Unlock()
		return fmt.Errorf("sync the write-ahead log (nothing acknowledged was lost; recovering): %w", err)
	}
	s.enqueue(recs)
	s.unsyncedMu.Lock()
	synced := s.wal.Synced()
	i := 0
	for i < len(s.unsyncedUndo) && s.unsyncedUndo[i].lsn <= synced {
		i++
	}
	s.unsyncedUndo = s.unsyncedUndo[i:]
	s.unsyncedMu.Unlock()
	return nil
}

// syncDB makes every SQLite commit so far durable: one fdatasync of
// SQLite's WAL file. Like Sync, a failure is sticky until recoverDB.
func (s *Store) syncDB() error {
	s.dbSyncMu.Lock()
	defer s.dbSyncMu.Unlock()
	if err := s.syncErr.Load(); err != nil {
		return *err
	}
	walPath := s.path + "-wal"
	if s.dbWAL != nil {
		// The WAL is never replaced while hookd runs, but if it were, a
		// sync of the old file would prove nothing.
		st, err := os.Stat(walPath)
		fst, ferr := s.dbWAL.Stat()
		if err != nil || ferr != nil || !os.SameFile(st, fst) {
			s.dbWAL.Close()
			s.dbWAL = nil
		}
	}
	if s.dbWAL == nil {
		f, err := os.OpenFile(walPath, os.O_RDWR, 0)
		if err != nil {
			return fmt.Errorf("open WAL for sync: %w", err)
		}
		// The WAL's directory entry must be durable too.
		if err := fsutil.SyncDir(filepath.Dir(walPath)); err != nil {
			f.Close()
			return fmt.Errorf("sync data directory: %w", err)
		}
		s.dbWAL = f
	}
	if err := (*s.syncFile.Load())(s.dbWAL); err != nil {
		err = fmt.Errorf("sync WAL (nothing acknowledged was lost; recovering): %w", err)
		s.syncErr.Store(&err)
		s.log.Error("sync failed: refusing writes to the database until it has recovered", "err", err)
		s.wakeRecovery()
		return err
	}
	return nil
}

// Path returns the database file.
func (s *Store) Path() string { return s.path }

// Ping checks that the database answers.
func (s *Store) Ping(ctx context.Context) error {
	return mapErr(s.r.PingContext(ctx))
}

// Close indexes what the log holds, checkpoints what it can and closes
// every connection and file.
func (s *Store) Close() error {
	s.closeOnce.Do(func() {
		close(s.stopRecover)
		<-s.recoverDone
		// Whatever was logged (an insert never synced, in tests) is made
		// durable, then indexed.
		s.appendMu.Lock()
		s.closed = true
		var werr error
		if s.wal.Err() == nil {
			werr = s.wal.Sync()
		}
		s.appendMu.Unlock()
		close(s.idxStop)
		s.filterWG.Wait()
		<-s.idxExited
		if s.indexed.Load() > s.durable {
			s.syncIndex()
		}
		close(s.stopCkpt)
		<-s.ckptDone
		// Leave a small WAL behind for the next start.
		s.ckpt.Exec("PRAGMA wal_checkpoint(TRUNCATE)")
		s.closeError = errors.Join(werr, s.closeDBs(), s.wal.Close())
		s.dbSyncMu.Lock()
		if s.dbWAL != nil {
			s.dbWAL.Close()
		}
		s.dbSyncMu.Unlock()
		// Last: the next process may open the directory from now on.
		s.dirLock.release()
	})
	return s.closeError
}

func (s *Store) closeDBs() error {
	return errors.Join(s.ckpt.Close(), s.pr.Close(), s.r.Close(), s.w.Close())
}

const eventCols = `seq, id, source, external_id, type, key, occurred_at, received_at, stale, content_type, trace_parent`

// bodyCols are where an event's body and headers are: in the row, or in
// the log record the row locates.
const bodyCols = `headers, body, log_segment, log_offset`

// EventGet returns one event with its body and headers.
func (s *Store) EventGet(ctx context.Context, id string) (*hookd.Event, error) {
	if err := s.caughtUp(ctx); err != nil {
		return nil, err
	}
	row := s.r.QueryRowContext(ctx, `SELECT `+eventCols+`, `+bodyCols+` FROM events WHERE id = ?`, id)
	e, err := s.scanEvent(row.Scan, true)
	if err != nil {
		return nil, fmt.Errorf("get event: %w", mapErr(err))
	}
	return e, nil
}

// EventList lists events in log order (or its reverse).
func (s *Store) EventList(ctx context.Context, p *store.EventListParams) ([]*hookd.Event, string, error) {
	after, err := store.DecodeCursor(p.After)
	if err != nil {
		return nil, "", err
	}
	if err := s.caughtUp(ctx); err != nil {
		return nil, "", err
	}
	limit := p.Limit
	if limit <= 0 {
		limit = 50
	}
	limit = min(limit, store.MaxListLimit)
	var (
		where []string
		args  []any
	)
	desc := p.Order == store.OrderDesc
	if p.After != "" {
		if desc {
			where = append(where, "seq < ?")
		} else {
			where = append(where, "seq > ?")
		}
		args = append(args, after)
	}
	if where, args, err = eventFilters(p, where, args); err != nil {
		return nil, "", err
	}
	cols := eventCols
	if p.WithBody {
		cols += ", " + bodyCols
	}
	q := "SELECT " + cols + " FROM events"
	if len(where) > 0 {
		q += " WHERE " + strings.Join(where, " AND ")
	}
	if desc {
		q += " ORDER BY seq DESC"
	} else {
		q += " ORDER BY seq ASC"
	}
	q += " LIMIT ?"
	args = append(args, limit+1)
	rows, err := s.r.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, "", fmt.Errorf("list events: %w", mapErr(err))
	}
	defer rows.Close()
	var (
		out       []*hookd.Event
		bodyBytes int64
		more      bool
	)
	for rows.Next() {
		if len(out) == limit {
			// A row beyond the page: there is more, and it is not read.
			more = true
			break
		}
		e, err := s.scanEvent(rows.Scan, p.WithBody)
		if err != nil {
			return nil, "", fmt.Errorf("list events: %w", mapErr(err))
		}
		if p.MaxBodyBytes > 0 && len(out) > 0 && bodyBytes+int64(len(e.Body)) > p.MaxBodyBytes {
			// Its body would take the page past the budget: it begins the next.
			more = true
			break
		}
		out = append(out, e)
		bodyBytes += int64(len(e.Body))
	}
	if err := rows.Err(); err != nil {
		return nil, "", fmt.Errorf("list events: %w", mapErr(err))
	}
	next := ""
	if more {
		next = store.EncodeCursor(out[len(out)-1].Seq)
	}
	return out, next, nil
}

// eventFilters appends the conditions of p's filters (source, type or
// type pattern, received time, deliveries) to where and their arguments to
// args.
func eventFilters(p *store.EventListParams, where []string, args []any) ([]string, []any, error) {
	if p.Source != "" {
		where = append(where, "source = ?")
		args = append(args, p.Source)
	}
	if p.Type != "" {
		var err error
		if where, args, err = typeConds("type", p.Type, where, args); err != nil {
			return nil, nil, err
		}
	}
	if !p.Since.IsZero() {
		where = append(where, "received_at >= ?")
		args = append(args, p.Since.UnixMicro())
	}
	if !p.Until.IsZero() {
		where = append(where, "received_at < ?")
		args = append(args, p.Until.UnixMicro())
	}
	var dw []string
	if p.DeliveryStatus != "" {
		dw = append(dw, "status = ?")
		args = append(args, p.DeliveryStatus)
	}
	if p.DeliveryDestination != "" {
		dw = append(dw, "destination = ?")
		args = append(args, p.DeliveryDestination)
	}
	if len(dw) > 0 {
		where = append(where, "seq IN (SELECT event_seq FROM deliveries WHERE "+strings.Join(dw, " AND ")+")")
	}
	return where, args, nil
}

// typeConds appends the conditions on column col of the event-type filter
// typ (an exact type or a pattern) and their arguments.
func typeConds(col, typ string, where []string, args []any) ([]string, []any, error) {
	m, err := store.ParseTypeMatch(typ, store.DialectGlob)
	if err != nil {
		return nil, nil, err
	}
	switch {
	case m.All:
	case m.Like == "":
		where = append(where, col+" = ?")
		args = append(args, m.Exact)
	default:
		op := " = ?"
		if m.MoreDots {
			op = " >= ?"
		}
		where = append(where, col+" GLOB ?", "length("+col+") - length(replace("+col+", '.', ''))"+op,
			col+" NOT GLOB '*..*' AND "+col+" NOT GLOB '.*' AND "+col+" NOT GLOB '*.'")
		args = append(args, m.Like, m.Dots)
	}
	return where, args, nil
}

// scanEvent reads a row of eventCols (and bodyCols, withBody).
func (s *Store) scanEvent(scan func(...any) error, withBody bool) (*hookd.Event, error) {
	var (
		e                               hookd.Event
		extID, typ, key, ctype, headers sql.NullString
		traceParent                     sql.NullString
		occurred, segment, offset       sql.NullInt64
		received                        int64
		stale                           bool
	)
	dst := []any{&e.Seq, &e.ID, &e.Source, &extID, &typ, &key, &occurred, &received, &stale, &ctype, &traceParent}
	if withBody {
		dst = append(dst, &headers, &e.Body, &segment, &offset)
	}
	if err := scan(dst...); err != nil {
		return nil, err
	}
	e.ExternalID, e.Type, e.Key, e.ContentType = extID.String, typ.String, key.String, ctype.String
	e.TraceParent = traceParent.String
	if occurred.Valid {
		e.OccurredAt = time.UnixMicro(occurred.Int64).UTC()
	}
	e.ReceivedAt = time.UnixMicro(received).UTC()
	e.Stale = stale
	e.RequestID = hookd.RequestIDForEvent(e.ID)
	if segment.Valid {
		r, err := s.readLogged(uint64(segment.Int64), offset.Int64, e.Seq)
		if err != nil {
			return nil, err
		}
		headers = sql.NullString{String: r.headers, Valid: true}
		e.Body = r.body
	}
	if headers.Valid && headers.String != "" {
		if err := json.Unmarshal([]byte(headers.String), &e.Headers); err != nil {
			return nil, fmt.Errorf("decode headers of %s: %w", e.ID, err)
		}
	}
	if withBody && e.Body == nil {
		e.Body = []byte{}
	}
	return &e, nil
}

// readLogged reads the log record of the event with seq at offset off of
// segment.
func (s *Store) readLogged(segment uint64, off int64, seq int64) (*logRecord, error) {
	lsn, p, err := s.wal.ReadRecord(segment, off)
	if err != nil {
		return nil, fmt.Errorf("read the body of event %d from the log: %w", seq, err)
	}
	r, err := decodeLogRecord(lsn, p)
	if err != nil {
		return nil, fmt.Errorf("read the body of event %d from the log: %w", seq, err)
	}
	if r.kind != recEvent || r.seq != seq {
		return nil, fmt.Errorf("read the body of event %d from the log: %w", seq, wal.ErrGone)
	}
	return r, nil
}

// RequestGet resolves a request id.
func (s *Store) RequestGet(ctx context.Context, requestID string) (*hookd.Request, error) {
	if err := s.caughtUp(ctx); err != nil {
		return nil, err
	}
	var (
		eventID  string
		received int64
	)
	err := s.r.QueryRowContext(ctx, `SELECT event_id, received_at FROM duplicate_requests WHERE request_id = ?`, requestID).Scan(&eventID, &received)
	if err == nil {
		return &hookd.Request{ID: requestID, EventID: eventID, Duplicate: true, ReceivedAt: time.UnixMicro(received).UTC()}, nil
	}
	if !errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("get request: %w", mapErr(err))
	}
	eventID = hookd.EventIDForRequest(requestID)
	err = s.r.QueryRowContext(ctx, `SELECT received_at FROM events WHERE id = ?`, eventID).Scan(&received)
	if err != nil {
		return nil, fmt.Errorf("get request: %w", mapErr(err))
	}
	return &hookd.Request{ID: requestID, EventID: eventID, ReceivedAt: time.UnixMicro(received).UTC()}, nil
}

// SettingGetOrCreate returns the value stored under name, storing value
// first when there is none.
func (s *Store) SettingGetOrCreate(ctx context.Context, name, value string) (string, error) {
	if _, err := s.w.ExecContext(ctx, `INSERT INTO settings (name, value) VALUES (?, ?) ON CONFLICT (name) DO NOTHING`, name, value); err != nil {
		return "", fmt.Errorf("store setting %s: %w", name, mapErr(err))
	}
	var v string
	if err := s.w.QueryRowContext(ctx, `SELECT value FROM settings WHERE name = ?`, name).Scan(&v); err != nil {
		return "", fmt.Errorf("read setting %s: %w", name, mapErr(err))
	}
	return v, nil
}

// SettingGet returns the value stored under name, or store.ErrNotFound.
// Each read sees what another process (hookd admin-token reset) committed
// before it began.
func (s *Store) SettingGet(ctx context.Context, name string) (string, error) {
	var v string
	if err := s.r.QueryRowContext(ctx, `SELECT value FROM settings WHERE name = ?`, name).Scan(&v); err != nil {
		return "", fmt.Errorf("read setting %s: %w", name, mapErr(err))
	}
	return v, nil
}

// SettingPut stores value under name, replacing any value, and syncs.
func (s *Store) SettingPut(ctx context.Context, name, value string) error {
	if err := s.writable(); err != nil {
		return err
	}
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("store setting %s: %w", name, mapErr(err))
	}
	defer tx.Rollback()
	if _, err := tx.ExecContext(ctx, `INSERT INTO settings (name, value) VALUES (?, ?) ON CONFLICT (name) DO UPDATE SET value = excluded.value`, name, value); err != nil {
		return fmt.Errorf("store setting %s: %w", name, mapErr(err))
	}
	if err := s.commitDurable(tx); err != nil {
		return fmt.Errorf("store setting %s: %w", name, err)
	}
	return nil
}

func nullStr(s string) any {
	if s == "" {
		return nil
	}
	return s
}

// mapErr maps the driver's errors to the store's vocabulary, in one place.
func mapErr(err error) error {
	if err == nil {
		return nil
	}
	if errors.Is(err, sql.ErrNoRows) {
		return store.ErrNotFound
	}
	if code, ok := sqliteCode(err); ok {
		switch code {
		case codeFull, codeIOErr, codeBusy, codeLocked, codeCantOpen, codeReadonly:
			return &hookd.Error{Code: hookd.EUnavailable, Message: "storage unavailable", Err: err}
		}
	}
	return err
}
