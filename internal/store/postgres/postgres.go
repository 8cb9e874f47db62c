// Package postgres is hookd's PostgreSQL storage driver: store.Store over
// pgx, with a small pool of connections of its own.
//
// Durability. A transaction is durable when its COMMIT returns: Open checks
// that synchronous_commit is not off for its connections (it sets it to on
// when the server's or the DSN's default is off, and refuses to open when
// that does not take) and warns when the server runs with fsync off. The driver therefore does not implement store.Syncer: the
// group-commit Batcher releases its callers as soon as EventInsertMany has
// returned. EventInsertMany stores a whole batch in one transaction: the
// stored state of its dedupe keys and entity keys is read in one round trip,
// the batch is resolved in memory exactly as the SQLite driver resolves it
// row by row (dedupe within the window counted from the first occurrence,
// duplicates within the batch, stale marking), and the new events go in
// with one INSERT … ON CONFLICT DO NOTHING on the dedupe index, so that an
// event inserted meanwhile by another process is never stored twice (the
// batch is then retried against it). Inserts wait for no one: several
// processes commit at once (each insert takes a shared advisory lock,
// which the horizon uses to find it). An event's seq comes from its
// transaction's id, and oldest-first listings end at the horizon below
// which no insert of hookd's into the schema is still running
// (events.go), so that a stream cursor never passes over an event that
// commits later with a lower seq. Deliveries
// routed before the commit are stored in the same transaction.
//
// Schema. Options.Schema, when set, is the search_path of every connection;
// Open creates the schema when it is missing. Migrations (migrations/*.sql,
// embedded) are applied in order, each in a transaction that holds an
// advisory lock of the schema, and recorded in schema_migrations, so that
// processes starting at once migrate once.
//
// Claims. DeliveryClaimDue selects due rows with FOR UPDATE SKIP LOCKED and
// leases them (status delivering, lease_until) in the same statement:
// processes claiming the same destination at once never get the same
// delivery, and a delivery whose lease has ended can be claimed by any of
// them. Every outcome is fenced by the attempt count and the generation.
//
// Several replicas. Every hookd serve on a schema is a replica
// (store.Cluster, cluster.go): a heartbeat row per replica, claims held by
// a replica with a lease on the database's clock and an epoch that fences
// late outcomes, named leases (the maintenance leader, the owner of each
// ordered destination), stored replay jobs, and NOTIFY on a channel of the
// schema (notify.go) for definitions and work (docs/DEPLOYMENT.md).
//
// Text. PostgreSQL text cannot hold NUL or invalid UTF-8, which a provider's
// id, type or key read from a query string or header may carry. Rather than
// failing a whole batch (and answering 503 to every request in it), such
// values are stored with U+FFFD in place of the bad bytes; dedupe stays
// exact, on a digest of the id as received.
package postgres

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"io/fs"
	"log/slog"
	"math/rand/v2"
	"net"
	"path"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"hookd"
	"hookd/internal/store"
)

//go:embed migrations/*.sql
var migrations embed.FS

var _ store.Store = (*Store)(nil)

// lockMigrate is the first key of the driver's migration lock; the second
// is the schema's.
const lockMigrate int32 = 0x686b6d67 // "hkmg"

// lockLegacyServe is the first key of the session lock that a hookd
// without replica support held on its schema while it served: a replica
// refuses to start beside such a process.
const lockLegacyServe int32 = 0x686b7376 // "hksv"

// Options tunes the driver; zero values take the defaults.
type Options struct {
	// Schema, when set, is the schema every connection works in (its
	// search_path is that schema alone); Open creates it when missing.
	// Empty: the search_path of the DSN or the server.
	Schema string
	// MaxConns bounds the connections the Store opens. Default: the
	// DSN's pool_max_conns, else 8.
	MaxConns int
}

// errClosed is returned by every method of a closed Store.
var errClosed = errors.New("postgres store is closed")

// Store is the PostgreSQL implementation of store.Store.
type Store struct {
	log  *slog.Logger
	pool *pgxpool.Pool
	// lockKey is the second key of the advisory locks: the schema's.
	lockKey int32
	// resolved, when set (tests only), runs in EventInsertMany between
	// reading the stored state and inserting: another writer's moment.
	resolved func()
	// countSlot is the slot of the attempt counts this process adds to
	// (see counts.go), drawn at Open.
	countSlot int16

	closeOnce sync.Once
	closed    atomic.Bool
}

// Open connects to the database at dsn (a postgres:// URL or key=value
// string, as pgx reads it), creates opt.Schema when set and missing, and
// applies the migrations.
func Open(ctx context.Context, dsn string, log *slog.Logger, opt Options) (*Store, error) {
	cfg, err := pgxpool.ParseConfig(dsn)
	if err != nil {
		return nil, fmt.Errorf("postgres dsn: %w", err)
	}
	cc := cfg.ConnConfig
	if opt.Schema != "" {
		cc.RuntimeParams["search_path"] = quoteIdent(opt.Schema)
	}
	if cc.RuntimeParams["application_name"] == "" {
		cc.RuntimeParams["application_name"] = "hookd"
	}
	// Durability: a commit must be flushed before it returns, whatever the
	// server's default.
	cc.RuntimeParams["synchronous_commit"] = "on"
	if cc.ConnectTimeout == 0 {
		cc.ConnectTimeout = 10 * time.Second
	}
	switch {
	case opt.MaxConns > 0:
		cfg.MaxConns = int32(opt.MaxConns)
	case strings.Contains(dsn, "pool_max_conns"):
		// The DSN's own pool_max_conns, as pgx read it.
	default:
		cfg.MaxConns = 8
	}
	// pgxpool pings a connection that sat idle for over a second before
	// handing it out, and drops broken ones: a server restart costs no
	// failed query.
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("postgres: %w", err)
	}
	s := &Store{log: log, pool: pool, countSlot: int16(rand.IntN(countSlots))}
	if err := s.init(ctx, opt.Schema); err != nil {
		pool.Close()
		return nil, err
	}
	return s, nil
}

func (s *Store) init(ctx context.Context, schema string) error {
	var syncCommit, fsync string
	err := s.with(ctx, func(c *pgx.Conn) error {
		return c.QueryRow(ctx, `SELECT current_setting('synchronous_commit'), current_setting('fsync')`).Scan(&syncCommit, &fsync)
	})
	if err != nil {
		return fmt.Errorf("connect to postgres: %w", mapErr(err))
	}
	if syncCommit == "off" {
		// The DSN's own options won over the driver's setting.
		return errors.New("postgres durability settings not in force: synchronous_commit is off for hookd's connections, want on (check the DSN's options)")
	}
	if fsync == "off" {
		s.log.Warn("postgres runs with fsync off: commits are not durable, a crash of the server can lose acknowledged events")
	}
	if err := s.migrate(ctx, schema); err != nil {
		return err
	}
	var current string
	err = s.with(ctx, func(c *pgx.Conn) error {
		return c.QueryRow(ctx, `SELECT current_schema()`).Scan(&current)
	})
	if err != nil {
		return fmt.Errorf("read schema: %w", mapErr(err))
	}
	s.lockKey = schemaKey(current)
	if err := s.checkLegacyServer(ctx); err != nil {
		return err
	}
	return s.checkEventSeqs(ctx)
}

// checkLegacyServer refuses to open a schema that a hookd without replica
// support is serving: it routes its events in memory and releases every
// claim at its start, so it cannot share the schema with replicas. It
// holds that session lock exclusively while it serves; this takes it
// shared for an instant, so that replicas starting at once do not see
// each other as such a process.
func (s *Store) checkLegacyServer(ctx context.Context) error {
	var free bool
	err := s.with(ctx, func(c *pgx.Conn) error {
		if err := c.QueryRow(ctx, `SELECT pg_try_advisory_lock_shared($1, $2)`, lockLegacyServe, s.lockKey).Scan(&free); err != nil {
			return err
		}
		if free {
			_, err := c.Exec(ctx, `SELECT pg_advisory_unlock_shared($1, $2)`, lockLegacyServe, s.lockKey)
			return err
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("check for an older hookd on the schema: %w", mapErr(err))
	}
	if !free {
		return errors.New("a hookd of an older version, without replica support, is serving this PostgreSQL schema; stop it before starting this one (docs/DEPLOYMENT.md, rolling upgrades)")
	}
	return nil
}

// schemaKey is the second key of the advisory locks of a schema.
func schemaKey(schema string) int32 {
	h := fnv.New32a()
	h.Write([]byte(schema))
	return int32(h.Sum32())
}

func quoteIdent(s string) string {
	return `"` + strings.ReplaceAll(s, `"`, `""`) + `"`
}

type migration struct {
	version int
	name    string
}

func migrationList() ([]migration, error) {
	names, err := fs.Glob(migrations, "migrations/*.sql")
	if err != nil {
		return nil, err
	}
	sort.Strings(names)
	var out []migration
	for _, name := range names {
		base := path.Base(name)
		v, err := strconv.Atoi(strings.SplitN(base, "_", 2)[0])
		if err != nil {
			return nil, fmt.Errorf("migration %s: bad number: %w", base, err)
		}
		if len(out) > 0 && v <= out[len(out)-1].version {
			return nil, fmt.Errorf("migration %s: number %d not above the previous one", base, v)
		}
		out = append(out, migration{v, name})
	}
	return out, nil
}

// migrate creates the schema (when one is configured) and the migrations
// table, then applies each migration not yet recorded, each in a
// transaction of its own. Every step holds the schema's migration lock:
// processes starting at once wait for each other, and the later ones find
// the work done.
func (s *Store) migrate(ctx context.Context, schema string) error {
	list, err := migrationList()
	if err != nil {
		return err
	}
	key := schemaKey(schema)
	lock := func(tx pgx.Tx) error {
		_, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1, $2)`, lockMigrate, key)
		return err
	}
	err = s.inTx(ctx, func(tx pgx.Tx) error {
		if err := lock(tx); err != nil {
			return err
		}
		if schema != "" {
			if _, err := tx.Exec(ctx, `CREATE SCHEMA IF NOT EXISTS `+quoteIdent(schema)); err != nil {
				return fmt.Errorf("create schema %s: %w", schema, err)
			}
		}
		if _, err := tx.Exec(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (
			version INTEGER PRIMARY KEY, applied_at BIGINT NOT NULL)`); err != nil {
			return fmt.Errorf("create schema_migrations: %w", err)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("migrate: %w", mapErr(err))
	}
	for _, m := range list {
		base := path.Base(m.name)
		body, err := migrations.ReadFile(m.name)
		if err != nil {
			return err
		}
		applied := false
		err = s.inTx(ctx, func(tx pgx.Tx) error {
			if err := lock(tx); err != nil {
				return err
			}
			var done bool
			if err := tx.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM schema_migrations WHERE version = $1)`, m.version).Scan(&done); err != nil {
				return fmt.Errorf("read schema_migrations: %w", err)
			}
			if done {
				return nil
			}
			// No arguments: the simple protocol, which runs every
			// statement of the file.
			if _, err := tx.Exec(ctx, string(body)); err != nil {
				return err
			}
			if _, err := tx.Exec(ctx, `INSERT INTO schema_migrations (version, applied_at) VALUES ($1, $2)`, m.version, time.Now().Unix()); err != nil {
				return err
			}
			applied = true
			return nil
		})
		if err != nil {
			return fmt.Errorf("migration %s: %w", base, mapErr(err))
		}
		if applied {
			s.log.Info("applied migration", "version", m.version, "name", base)
		}
	}
	return nil
}

// with runs fn with a connection of the pool.
func (s *Store) with(ctx context.Context, fn func(c *pgx.Conn) error) error {
	pc, err := s.pool.Acquire(ctx)
	if err != nil {
		if s.closed.Load() {
			return errClosed
		}
		return err
	}
	defer pc.Release() // a broken connection, or one left in a transaction, is not reused
	c := pc.Conn()
	err = fn(c)
	if err != nil && c.IsClosed() && ctx.Err() == nil && !isUnavailable(err) {
		// The connection broke under the query.
		err = &hookd.Error{Code: hookd.EUnavailable, Message: "storage unavailable", Err: err}
	}
	return err
}

// inTx runs fn in a transaction and commits it when fn returns nil.
func (s *Store) inTx(ctx context.Context, fn func(tx pgx.Tx) error) error {
	return s.with(ctx, func(c *pgx.Conn) error {
		tx, err := c.Begin(ctx)
		if err != nil {
			return err
		}
		// After a commit this is a no-op; a rollback that fails closes the
		// connection, which the pool then drops.
		defer tx.Rollback(ctx)
		if err := fn(tx); err != nil {
			return err
		}
		return tx.Commit(ctx)
	})
}

// sendBatch sends b on a connection of the pool and closes its results,
// which runs the callbacks queued with b's queries. Without explicit
// transaction statements, the batch runs in one implicit transaction:
// every statement or none, committed (durably) when it returns nil.
func (s *Store) sendBatch(ctx context.Context, b *pgx.Batch) error {
	if b.Len() == 0 {
		return nil
	}
	return s.with(ctx, func(c *pgx.Conn) error {
		return c.SendBatch(ctx, b).Close()
	})
}

// Ping checks that the database answers.
func (s *Store) Ping(ctx context.Context) error {
	return mapErr(s.with(ctx, func(c *pgx.Conn) error { return c.Ping(ctx) }))
}

// Close closes every connection. It is safe to call more than once.
func (s *Store) Close() error {
	s.closeOnce.Do(func() {
		s.closed.Store(true)
		s.pool.Close()
	})
	return nil
}

// mapErr maps the driver's errors to the store's vocabulary, in one place:
// no row is store.ErrNotFound, and a database that cannot be reached or
// cannot take the write now (down, restarting, out of disk, memory or
// connections, a broken connection, a timeout) is EUnavailable.
func mapErr(err error) error {
	if err == nil {
		return nil
	}
	var he *hookd.Error
	if errors.As(err, &he) {
		return err
	}
	if errors.Is(err, pgx.ErrNoRows) {
		return store.ErrNotFound
	}
	if isUnavailable(err) {
		return &hookd.Error{Code: hookd.EUnavailable, Message: "storage unavailable", Err: err}
	}
	return err
}

func isUnavailable(err error) bool {
	var he *hookd.Error
	if errors.As(err, &he) {
		return he.Code == hookd.EUnavailable
	}
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		switch pe.Code {
		case "25006", // read_only_sql_transaction: a standby after a failover
			"40001", // serialization_failure
			"40P01", // deadlock_detected
			"55P03": // lock_not_available
			return true
		}
		switch pe.Code[:min(2, len(pe.Code))] {
		case "08", // connection exception
			"53", // insufficient resources: disk full, out of memory, too many connections
			"57", // operator intervention: shutdown, cannot connect now, statement timeout
			"58": // system error: I/O error
			return true
		}
		return false
	}
	var ce *pgconn.ConnectError
	if errors.As(err, &ce) {
		return true
	}
	if pgconn.Timeout(err) {
		return true
	}
	var ne net.Error
	if errors.As(err, &ne) {
		return true
	}
	return errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF)
}

// text is s as PostgreSQL text can hold it: valid UTF-8 without NUL, with
// U+FFFD in place of anything else.
func text(s string) string {
	if utf8.ValidString(s) && strings.IndexByte(s, 0) < 0 {
		return s
	}
	return strings.ReplaceAll(strings.ToValidUTF8(s, "\uFFFD"), "\x00", "\uFFFD")
}

// nullText is text(s), or NULL for "".
func nullText(s string) any {
	if s == "" {
		return nil
	}
	return text(s)
}

func nullStr(s string) any {
	if s == "" {
		return nil
	}
	return s
}

// micro is t as stored: unix microseconds, NULL for the zero time.
func micro(t time.Time) any {
	if t.IsZero() {
		return nil
	}
	return t.UnixMicro()
}

func fromMicro(v *int64) time.Time {
	if v == nil {
		return time.Time{}
	}
	return time.UnixMicro(*v).UTC()
}

func nullInt(n int64) any {
	if n == 0 {
		return nil
	}
	return n
}

func nullBytes(b []byte) any {
	if len(b) == 0 {
		return nil
	}
	return b
}

func orNow(t, now time.Time) int64 {
	if t.IsZero() {
		return now.UnixMicro()
	}
	return t.UnixMicro()
}

func str(p *string) string {
	if p == nil {
		return ""
	}
	return *p
}

// args collects the arguments of a query built piece by piece; add returns
// the placeholder of the one it adds.
type args []any

func (a *args) add(v any) string {
	*a = append(*a, v)
	return "$" + strconv.Itoa(len(*a))
}
