package postgres

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"hookd"
	"hookd/internal/store"
	"hookd/internal/store/storetest"
)

// These tests run against a real PostgreSQL server at HOOKD_TEST_POSTGRES_DSN
// (default defaultDSN). Without one they skip, unless
// HOOKD_TEST_REQUIRE_SERVICES=1 (CI), where they fail. Every test works in
// schemas of its own, dropped when it ends, so parallel runs never collide.

const defaultDSN = "postgres://postgres@127.0.0.1:5432/test?sslmode=disable"

// testMaxConns bounds each test store's pool: the suite runs its cases in
// parallel, and PostgreSQL's max_connections (100 by default) is shared by
// all of them.
const testMaxConns = 4

func testDSN() string {
	if dsn := os.Getenv("HOOKD_TEST_POSTGRES_DSN"); dsn != "" {
		return dsn
	}
	return defaultDSN
}

var (
	reachOnce sync.Once
	reachErr  error
)

// needPostgres skips (or, with HOOKD_TEST_REQUIRE_SERVICES=1, fails) t when
// no PostgreSQL answers at the test DSN, and returns the DSN.
func needPostgres(t testing.TB) string {
	t.Helper()
	dsn := testDSN()
	reachOnce.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		c, err := pgx.Connect(ctx, dsn)
		if err == nil {
			err = c.Ping(ctx)
			c.Close(ctx)
		}
		reachErr = err
	})
	if reachErr != nil {
		msg := fmt.Sprintf("no PostgreSQL at %s (%v): start one, or point HOOKD_TEST_POSTGRES_DSN at one, to run the postgres driver's tests",
			redactDSN(dsn), reachErr)
		if os.Getenv("HOOKD_TEST_REQUIRE_SERVICES") == "1" {
			t.Fatalf("%s; HOOKD_TEST_REQUIRE_SERVICES=1 makes this a failure", msg)
		}
		t.Skip(msg + "; set HOOKD_TEST_REQUIRE_SERVICES=1 to fail instead of skipping")
	}
	return dsn
}

func redactDSN(dsn string) string {
	cfg, err := pgconn.ParseConfig(dsn)
	if err != nil {
		return "(unparsable DSN)"
	}
	return fmt.Sprintf("%s:%d/%s", cfg.Host, cfg.Port, cfg.Database)
}

var unsafeSchemaChars = regexp.MustCompile(`[^a-z0-9_]+`)

// newSchema returns the name of a schema unique to this run of t (it does
// not create it: Open does), dropped with everything in it when t ends.
func newSchema(t testing.TB) string {
	t.Helper()
	dsn := needPostgres(t)
	var b [4]byte
	if _, err := rand.Read(b[:]); err != nil {
		t.Fatal(err)
	}
	name := unsafeSchemaChars.ReplaceAllString(strings.ToLower(t.Name()), "_")
	const prefix = "hookd_t_"
	// Identifiers are at most 63 bytes.
	if max := 63 - len(prefix) - 1 - 2*len(b); len(name) > max {
		name = name[len(name)-max:]
	}
	schema := prefix + name + "_" + hex.EncodeToString(b[:])
	t.Cleanup(func() {
		// t.Context() is done by now.
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		c, err := pgx.Connect(ctx, dsn)
		if err != nil {
			t.Errorf("drop schema %s: %v", schema, err)
			return
		}
		defer c.Close(ctx)
		if _, err := c.Exec(ctx, `DROP SCHEMA IF EXISTS `+quoteIdent(schema)+` CASCADE`); err != nil {
			t.Errorf("drop schema %s: %v", schema, err)
		}
	})
	return schema
}

func testLogger(t testing.TB) *slog.Logger {
	return slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelWarn}))
}

// openTest opens a store on schema, closed when t ends (before the schema
// is dropped: cleanups run last registered first).
func openTest(t testing.TB, schema string, log *slog.Logger) *Store {
	t.Helper()
	st, err := Open(t.Context(), needPostgres(t), log, Options{Schema: schema, MaxConns: testMaxConns})
	if err != nil {
		t.Fatalf("Open(schema %s): %v", schema, err)
	}
	t.Cleanup(func() {
		if err := st.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return st
}

func TestConformance(t *testing.T) {
	t.Parallel()
	needPostgres(t)
	storetest.Run(t, func(t *testing.T) store.Store {
		return openTest(t, newSchema(t), testLogger(t))
	})
}

func newEvent(source, externalID string, received time.Time) *hookd.Event {
	rid := hookd.RequestIDPrefix + hookd.NewULID(received)
	return &hookd.Event{
		ID: hookd.EventIDForRequest(rid), RequestID: rid, Source: source, ExternalID: externalID,
		ReceivedAt: received, Body: []byte(`{}`),
	}
}

// Two stores on one schema are two replicas of hookd: claiming the same
// destination at once, they never get the same delivery, and together
// they get every one.
func TestConcurrentClaimsTwoReplicas(t *testing.T) {
	t.Parallel()
	schema := newSchema(t)
	log := testLogger(t)
	replicas := []*Store{openTest(t, schema, log), openTest(t, schema, log)}
	ctx := t.Context()

	const n = 200
	now := time.Now()
	es := make([]*store.EventInsert, n)
	for i := range es {
		es[i] = &store.EventInsert{Event: newEvent("src", "", now.Add(time.Duration(i)*time.Microsecond))}
	}
	res, err := replicas[0].EventInsertMany(ctx, es)
	if err != nil {
		t.Fatalf("EventInsertMany: %v", err)
	}
	ws := make([]*store.DeliveryWrite, n)
	want := make(map[string]bool, n)
	for i, e := range es {
		d := &store.Delivery{EventID: e.Event.ID, EventSeq: res[i].Seq, Destination: "d", Status: store.StatusPending,
			NextAttemptAt: now.Add(-time.Duration(n-i) * time.Millisecond)}
		if i%3 == 0 {
			d.Status = store.StatusRetrying
		}
		ws[i] = &store.DeliveryWrite{Delivery: d, Fence: store.FenceNone}
		want[store.DeliveryID(d.EventID, d.Destination)] = true
	}
	if _, err := replicas[1].DeliveryWriteMany(ctx, ws, 0); err != nil {
		t.Fatalf("DeliveryWriteMany: %v", err)
	}

	var (
		mu      sync.Mutex
		claimed = map[string]int{}
		wg      sync.WaitGroup
		start   = make(chan struct{})
	)
	for _, st := range replicas {
		for range 2 {
			wg.Go(func() {
				<-start
				for {
					ds, err := st.DeliveryClaimDue(ctx, "d", now, time.Minute, 10)
					if err != nil {
						t.Errorf("DeliveryClaimDue: %v", err)
						return
					}
					if len(ds) == 0 {
						return
					}
					mu.Lock()
					for _, d := range ds {
						claimed[d.ID]++
						if d.Status != store.StatusDelivering || !d.LeaseUntil.Equal(now.Add(time.Minute).Truncate(time.Microsecond)) {
							t.Errorf("%s claimed: got Status %s LeaseUntil %v, want delivering until %v", d.ID, d.Status, d.LeaseUntil, now.Add(time.Minute))
						}
					}
					mu.Unlock()
				}
			})
		}
	}
	close(start)
	wg.Wait()
	// What a claim left behind, locked for a moment by another, is
	// claimed now (there should be nothing).
	rest, err := replicas[0].DeliveryClaimDue(ctx, "d", now, time.Minute, n)
	if err != nil {
		t.Fatalf("DeliveryClaimDue: %v", err)
	}
	for _, d := range rest {
		claimed[d.ID]++
	}
	for id, k := range claimed {
		if k != 1 {
			t.Errorf("%s: claimed %d times, want once", id, k)
		}
		if !want[id] {
			t.Errorf("%s: claimed, but never written", id)
		}
	}
	if len(claimed) != n {
		t.Errorf("claimed %d deliveries, want every one of the %d due", len(claimed), n)
	}
	counts, err := replicas[1].DeliveryCountByStatus(ctx, "d")
	if err != nil || counts[store.StatusDelivering] != n || len(counts) != 1 {
		t.Errorf("after the claims: counts %v, %v; want %d delivering", counts, err, n)
	}
}

// Two processes starting at once on a fresh schema both migrate it: one
// applies the migrations, the other waits and finds them applied.
func TestConcurrentMigrations(t *testing.T) {
	t.Parallel()
	schema := newSchema(t)
	var logs [2]lockedBuffer
	stores := make([]*Store, 2)
	errs := make([]error, 2)
	var wg sync.WaitGroup
	for i := range stores {
		wg.Go(func() {
			log := slog.New(slog.NewTextHandler(io.MultiWriter(&logs[i], t.Output()), nil))
			stores[i], errs[i] = Open(t.Context(), needPostgres(t), log, Options{Schema: schema, MaxConns: 2})
		})
	}
	wg.Wait()
	for i, st := range stores {
		if st != nil {
			t.Cleanup(func() { st.Close() })
		}
		if errs[i] != nil {
			t.Errorf("Open #%d: %v", i+1, errs[i])
		}
	}
	if t.Failed() {
		return
	}
	list, err := migrationList()
	if err != nil {
		t.Fatal(err)
	}
	applied := strings.Count(logs[0].String(), "applied migration") + strings.Count(logs[1].String(), "applied migration")
	if applied != len(list) {
		t.Errorf("got %d migrations applied over both Opens, want each of the %d once; logs:\n%s\n%s", applied, len(list), logs[0].String(), logs[1].String())
	}
	var rows, distinct int
	if err := stores[0].with(t.Context(), func(c *pgx.Conn) error {
		return c.QueryRow(t.Context(), `SELECT count(*), count(DISTINCT version) FROM schema_migrations`).Scan(&rows, &distinct)
	}); err != nil {
		t.Fatal(err)
	}
	if rows != len(list) || distinct != len(list) {
		t.Errorf("schema_migrations: %d rows, %d versions, want %d of each", rows, distinct, len(list))
	}
	// Both work on the same tables.
	e := newEvent("src", "x", time.Now())
	if _, err := stores[0].EventInsertMany(t.Context(), []*store.EventInsert{{Event: e}}); err != nil {
		t.Fatalf("EventInsertMany: %v", err)
	}
	if _, err := stores[1].EventGet(t.Context(), e.ID); err != nil {
		t.Errorf("EventGet from the other store: %v", err)
	}
}

// Two processes ingesting the same provider ids at once store each once:
// the dedupe index arbitrates between them, within and across batches.
func TestConcurrentInsertsTwoReplicas(t *testing.T) {
	t.Parallel()
	schema := newSchema(t)
	log := testLogger(t)
	replicas := []*Store{openTest(t, schema, log), openTest(t, schema, log)}
	const (
		distinct = 40
		rounds   = 5
	)
	type outcome struct {
		ext string
		res store.EventInsertResult
	}
	var (
		mu   sync.Mutex
		outs []outcome
		wg   sync.WaitGroup
	)
	base := time.Now()
	for r, st := range replicas {
		for g := range 2 {
			wg.Go(func() {
				for round := range rounds {
					var ins []*store.EventInsert
					var exts []string
					for i := range distinct {
						ext := fmt.Sprintf("ext-%d", (i+g*7+round*3)%distinct)
						at := base.Add(time.Duration(r*1000+g*100+round) * time.Microsecond)
						ins = append(ins, &store.EventInsert{Event: newEvent("src", ext, at), DedupeWindow: time.Hour})
						exts = append(exts, ext)
					}
					res, err := st.EventInsertMany(t.Context(), ins)
					if err != nil {
						t.Errorf("EventInsertMany: %v", err)
						return
					}
					mu.Lock()
					for i := range res {
						outs = append(outs, outcome{exts[i], res[i]})
					}
					mu.Unlock()
				}
			})
		}
	}
	wg.Wait()
	byExt := map[string]store.EventInsertResult{}
	news := 0
	for _, o := range outs {
		if !o.res.Duplicate {
			news++
		}
		if prev, ok := byExt[o.ext]; ok && (prev.ID != o.res.ID || prev.Seq != o.res.Seq) {
			t.Errorf("%s: got event %s (seq %d) and %s (seq %d), want one", o.ext, prev.ID, prev.Seq, o.res.ID, o.res.Seq)
		}
		byExt[o.ext] = o.res
	}
	if news != distinct {
		t.Errorf("got %d new events, want %d (one per external id)", news, distinct)
	}
	if n, err := replicas[0].EventCount(t.Context(), &store.EventListParams{}); err != nil || n != distinct {
		t.Errorf("EventCount: %d, %v, want %d", n, err, distinct)
	}
}

// A writer that is not this driver (another version of hookd,
// an operator's INSERT) stores a provider id between the batch's read and
// its insert: ON CONFLICT keeps the id stored once, and the batch, retried,
// answers duplicate of that event.
func TestInsertRetriedAfterAForeignWriter(t *testing.T) {
	t.Parallel()
	schema := newSchema(t)
	st := openTest(t, schema, testLogger(t))
	ctx := t.Context()
	cfg, err := pgx.ParseConfig(needPostgres(t))
	if err != nil {
		t.Fatal(err)
	}
	cfg.RuntimeParams["search_path"] = quoteIdent(schema)
	other, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close(context.Background())
	now := time.Now()
	foreign := newEvent("src", "ext-1", now)
	calls := 0
	st.resolved = func() {
		calls++
		if calls > 1 {
			return
		}
		if _, err := other.Exec(ctx, `INSERT INTO events (id, source, external_id, dedupe_key, received_at, body)
			VALUES ($1, 'src', 'ext-1', 'ext-1', $2, '')`, foreign.ID, now.UnixMicro()); err != nil {
			t.Errorf("foreign insert: %v", err)
		}
	}
	e1, e2 := newEvent("src", "ext-1", now.Add(time.Second)), newEvent("src", "ext-2", now.Add(time.Second))
	res, err := st.EventInsertMany(ctx, []*store.EventInsert{{Event: e1, DedupeWindow: time.Hour}, {Event: e2, DedupeWindow: time.Hour}})
	if err != nil {
		t.Fatalf("EventInsertMany: %v", err)
	}
	if calls != 2 {
		t.Errorf("got %d tries, want 2 (the first one met the foreign row)", calls)
	}
	if !res[0].Duplicate || res[0].ID != foreign.ID || res[1].Duplicate || res[1].ID != e2.ID {
		t.Errorf("got %+v, want a duplicate of %s, then %s stored", res, foreign.ID, e2.ID)
	}
	if n, err := st.EventCount(ctx, &store.EventListParams{}); err != nil || n != 2 {
		t.Errorf("EventCount: %d, %v, want 2 (the foreign event and ext-2)", n, err)
	}
	if req, err := st.RequestGet(ctx, e1.RequestID); err != nil || !req.Duplicate || req.EventID != foreign.ID {
		t.Errorf("RequestGet(%s): %+v, %v, want a duplicate of %s", e1.RequestID, req, err, foreign.ID)
	}
}

// PostgreSQL text holds neither NUL nor invalid UTF-8: such values are
// stored with U+FFFD instead of failing the batch, and dedupe stays exact.
func TestTextThatPostgreSQLCannotHold(t *testing.T) {
	t.Parallel()
	st := openTest(t, newSchema(t), testLogger(t))
	ctx := t.Context()
	now := time.Now()
	bad := newEvent("src", "id\x00with\xffbad", now)
	bad.Type, bad.Key, bad.ContentType, bad.OccurredAt = "t\x00", "k\xfe", "text/\xff", now
	bad.Headers = map[string][]string{"X-Bad": {"\x00\xff"}}
	good := newEvent("src", "fine", now)
	other := newEvent("src", "id\x00with\xfebad", now) // another id, the same once replaced
	again := newEvent("src", "id\x00with\xffbad", now.Add(time.Second))
	res, err := st.EventInsertMany(ctx, []*store.EventInsert{
		{Event: bad, DedupeWindow: time.Hour}, {Event: good, DedupeWindow: time.Hour},
		{Event: other, DedupeWindow: time.Hour}, {Event: again, DedupeWindow: time.Hour},
	})
	if err != nil {
		t.Fatalf("EventInsertMany: %v", err)
	}
	if res[0].Duplicate || res[1].Duplicate || res[2].Duplicate {
		t.Errorf("distinct ids: got Duplicate %v %v %v, want false", res[0].Duplicate, res[1].Duplicate, res[2].Duplicate)
	}
	if !res[3].Duplicate || res[3].ID != bad.ID {
		t.Errorf("the same id again: got %+v, want a duplicate of %s", res[3], bad.ID)
	}
	got, err := st.EventGet(ctx, bad.ID)
	if err != nil {
		t.Fatalf("EventGet: %v", err)
	}
	if got.ExternalID != "id\uFFFDwith\uFFFDbad" || got.Type != "t\uFFFD" || got.Key != "k\uFFFD" || got.ContentType != "text/\uFFFD" {
		t.Errorf("got %q %q %q %q", got.ExternalID, got.Type, got.Key, got.ContentType)
	}
	n, err := st.EventCount(ctx, &store.EventListParams{Type: "t\x00"})
	if err != nil || n != 1 {
		t.Errorf("EventCount(type with NUL): %d, %v, want 1", n, err)
	}
}

// lockedBuffer collects log output written from several goroutines.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func TestReopenKeepsEventsAndSkipsMigrations(t *testing.T) {
	t.Parallel()
	schema := newSchema(t)
	ctx := t.Context()
	var log1 lockedBuffer
	st, err := Open(ctx, needPostgres(t), slog.New(slog.NewTextHandler(io.MultiWriter(&log1, t.Output()), nil)), Options{Schema: schema, MaxConns: 2})
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	if n := strings.Count(log1.String(), "applied migration"); n == 0 {
		t.Fatalf("first Open: got no \"applied migration\" log; log:\n%s", log1.String())
	}
	e := newEvent("src", "ext-1", time.Now())
	res, err := st.EventInsertMany(ctx, []*store.EventInsert{{Event: e, DedupeWindow: time.Hour}})
	if err != nil {
		t.Fatalf("EventInsertMany: %v", err)
	}
	st.Close()

	var log2 lockedBuffer
	st2 := openTest(t, schema, slog.New(slog.NewTextHandler(io.MultiWriter(&log2, t.Output()), nil)))
	if strings.Contains(log2.String(), "applied migration") {
		t.Errorf("second Open: got migrations applied again; log:\n%s", log2.String())
	}
	got, err := st2.EventGet(ctx, e.ID)
	if err != nil || got.Seq != res[0].Seq {
		t.Fatalf("EventGet after reopening: %v, %v; want seq %d", got, err, res[0].Seq)
	}
	dup := newEvent("src", "ext-1", time.Now())
	next := newEvent("src", "ext-2", time.Now())
	res2, err := st2.EventInsertMany(ctx, []*store.EventInsert{{Event: dup, DedupeWindow: time.Hour}, {Event: next, DedupeWindow: time.Hour}})
	if err != nil {
		t.Fatalf("EventInsertMany after reopening: %v", err)
	}
	if !res2[0].Duplicate || res2[0].ID != e.ID || res2[1].Seq <= res[0].Seq {
		t.Errorf("after reopening: got %+v, want a duplicate of %s, then a seq above %d", res2, e.ID, res[0].Seq)
	}
}

// A commit is durable when it returns: the store is no store.Syncer (the
// batcher answers once EventInsertMany has returned), and its connections
// run with synchronous_commit on even when the server's default is off.
func TestDurability(t *testing.T) {
	t.Parallel()
	st := openTest(t, newSchema(t), testLogger(t))
	if _, ok := any(st).(store.Syncer); ok {
		t.Errorf("the postgres store implements store.Syncer; its commits are durable at COMMIT and need no sync")
	}
	check := func(st *Store, want string) {
		t.Helper()
		var got string
		if err := st.with(t.Context(), func(c *pgx.Conn) error {
			return c.QueryRow(t.Context(), `SHOW synchronous_commit`).Scan(&got)
		}); err != nil {
			t.Fatal(err)
		}
		if got != want {
			t.Errorf("synchronous_commit = %q, want %q", got, want)
		}
	}
	check(st, "on")
	// A session default of off (here from the DSN's options) is
	// overridden.
	schema := newSchema(t)
	var buf lockedBuffer
	log := slog.New(slog.NewTextHandler(io.MultiWriter(&buf, t.Output()), nil))
	off, err := Open(t.Context(), withSyncCommitOff(needPostgres(t)), log, Options{Schema: schema, MaxConns: 2})
	if err != nil {
		// The DSN's own options may win over the driver's setting: then
		// Open must refuse, never run without durable commits.
		if !strings.Contains(err.Error(), "synchronous_commit") {
			t.Fatalf("Open with synchronous_commit off: %v", err)
		}
		return
	}
	t.Cleanup(func() { off.Close() })
	check(off, "on")
}

// withSyncCommitOff adds options=-c synchronous_commit=off to a DSN of
// either form.
func withSyncCommitOff(dsn string) string {
	if !strings.Contains(dsn, "://") {
		return dsn + " options='-c synchronous_commit=off'"
	}
	sep := "?"
	if strings.Contains(dsn, "?") {
		sep = "&"
	}
	return dsn + sep + "options=-c%20synchronous_commit%3Doff"
}

// A database that cannot be reached is unavailable (503), not an
// internal error.
func TestUnreachableIsUnavailable(t *testing.T) {
	t.Parallel()
	_, err := Open(t.Context(), "postgres://postgres@127.0.0.1:1/test?sslmode=disable&connect_timeout=5", testLogger(t), Options{})
	if code := hookd.ErrorCode(err); code != hookd.EUnavailable {
		t.Errorf("Open of a closed port: got %v (code %q), want code %q", err, code, hookd.EUnavailable)
	}
}

// A connection the server ends under a query: the error is EUnavailable,
// and the next call gets a fresh connection.
func TestTerminatedConnection(t *testing.T) {
	t.Parallel()
	st := openTest(t, newSchema(t), testLogger(t))
	ctx := t.Context()
	err := st.with(ctx, func(c *pgx.Conn) error {
		_, err := c.Exec(ctx, `SELECT pg_terminate_backend(pg_backend_pid())`)
		return err
	})
	if code := hookd.ErrorCode(mapErr(err)); code != hookd.EUnavailable {
		t.Errorf("terminated connection: got %v (code %q), want code %q", err, code, hookd.EUnavailable)
	}
	if err := st.Ping(ctx); err != nil {
		t.Errorf("Ping after a terminated connection: %v", err)
	}
}

func TestMapErr(t *testing.T) {
	for _, c := range []struct {
		err  error
		code string
	}{
		{&pgconn.PgError{Code: "53100"}, hookd.EUnavailable}, // disk_full
		{&pgconn.PgError{Code: "57P01"}, hookd.EUnavailable}, // admin_shutdown
		{&pgconn.PgError{Code: "08006"}, hookd.EUnavailable}, // connection_failure
		{&pgconn.PgError{Code: "53300"}, hookd.EUnavailable}, // too_many_connections
		{&pgconn.PgError{Code: "23505"}, hookd.EInternal},    // unique_violation
		{fmt.Errorf("read: %w", io.ErrUnexpectedEOF), hookd.EUnavailable},
		{errors.New("boom"), hookd.EInternal},
		{hookd.Errorf(hookd.EInvalid, "bad cursor"), hookd.EInvalid},
	} {
		if got := hookd.ErrorCode(mapErr(c.err)); got != c.code {
			t.Errorf("mapErr(%v): code %q, want %q", c.err, got, c.code)
		}
	}
	if err := mapErr(fmt.Errorf("get: %w", pgx.ErrNoRows)); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("mapErr(ErrNoRows) = %v, want ErrNotFound", err)
	}
}

// BenchmarkPostgresInsert measures durable ingest through the group-commit
// batcher: 64 concurrent callers, 1 KiB bodies, unique external ids with the
// default dedupe window.
func BenchmarkPostgresInsert(b *testing.B) {
	const callers = 64
	st := openTest(b, newSchema(b), testLogger(b))
	bt := store.NewBatcher(st, testLogger(b), store.BatcherOptions{})
	if err := bt.Start(b.Context()); err != nil {
		b.Fatalf("Start: %v", err)
	}
	defer bt.Stop(context.Background())
	body := bytes.Repeat([]byte("x"), 1024)
	headers := map[string][]string{"Content-Type": {"application/json"}, "User-Agent": {"bench/1"}}
	var (
		next   atomic.Int64
		failed atomic.Int64
		wg     sync.WaitGroup
	)
	b.ReportAllocs()
	b.ResetTimer()
	for range callers {
		wg.Go(func() {
			for {
				n := next.Add(1)
				if n > int64(b.N) {
					return
				}
				e := newEvent("bench", fmt.Sprintf("bench-%d", n), time.Now())
				e.Type, e.ContentType, e.Headers, e.Body = "bench.event", "application/json", headers, body
				ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
				if _, err := bt.Insert(ctx, &store.EventInsert{Event: e, DedupeWindow: 168 * time.Hour}); err != nil {
					failed.Add(1)
				}
				cancel()
			}
		})
	}
	wg.Wait()
	b.StopTimer()
	if n := failed.Load(); n > 0 {
		b.Fatalf("%d of %d inserts failed", n, b.N)
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
}

// TestSearchBench measures the bounded search on HOOKD_SEARCH_BENCH events
// (docs/BENCHMARKS.md); skipped unless it is set.
func TestSearchBench(t *testing.T) {
	n, _ := strconv.Atoi(os.Getenv("HOOKD_SEARCH_BENCH"))
	if n <= 0 {
		t.Skip("set HOOKD_SEARCH_BENCH=100000 to run")
	}
	schema := newSchema(t)
	storetest.SearchBench(t, openTest(t, schema, testLogger(t)), n)

	// The index alternatives, on the same events: a tsvector column with a
	// GIN index, and a trigram GIN index (substring search, as the scan).
	ctx := t.Context()
	c, err := pgx.Connect(ctx, needPostgres(t))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close(ctx)
	exec := func(what, q string) time.Duration {
		s := time.Now()
		if _, err := c.Exec(ctx, q); err != nil {
			t.Logf("%s: %v", what, err)
		}
		return time.Since(s)
	}
	size := func() int64 {
		var n int64
		c.QueryRow(ctx, `SELECT pg_total_relation_size('`+quoteIdent(schema)+`.events')`).Scan(&n)
		return n
	}
	exec("search_path", `SET search_path TO `+quoteIdent(schema)+`, public`)
	before := size()
	d1 := exec("tsvector column", `ALTER TABLE events ADD COLUMN body_tsv tsvector`)
	d2 := exec("fill tsvector", `UPDATE events SET body_tsv = to_tsvector('simple', convert_from(body, 'UTF8'))`)
	d3 := exec("gin index", `CREATE INDEX events_body_tsv ON events USING gin (body_tsv)`)
	var idx int64
	c.QueryRow(ctx, `SELECT pg_relation_size('`+quoteIdent(schema)+`.events_body_tsv')`).Scan(&idx)
	t.Logf("tsvector: fill %v, index %v, table+indexes %d MB -> %d MB (the index %d MB)", (d1 + d2).Round(time.Millisecond), d3.Round(time.Millisecond), before>>20, size()>>20, idx>>20)
	for _, w := range []string{"zebraquux", "needle"} {
		s := time.Now()
		rows, err := c.Query(ctx, `SELECT seq FROM events WHERE body_tsv @@ plainto_tsquery('simple', $1) ORDER BY seq DESC LIMIT 50`, w)
		k := 0
		for err == nil && rows.Next() {
			k++
		}
		if rows != nil {
			rows.Close()
		}
		t.Logf("tsvector query %q: %d rows in %v (%v)", w, k, time.Since(s).Round(time.Microsecond), err)
	}
	exec("drop", `ALTER TABLE events DROP COLUMN body_tsv`)
	if d := exec("pg_trgm", `CREATE EXTENSION IF NOT EXISTS pg_trgm`); d > 0 {
		d1 := exec("text column", `ALTER TABLE events ADD COLUMN body_text text`)
		d2 := exec("fill text", `UPDATE events SET body_text = convert_from(body, 'UTF8')`)
		d3 := exec("trigram index", `CREATE INDEX events_body_trgm ON events USING gin (body_text gin_trgm_ops)`)
		var idx int64
		c.QueryRow(ctx, `SELECT pg_relation_size('`+quoteIdent(schema)+`.events_body_trgm')`).Scan(&idx)
		t.Logf("trigram: fill %v, index %v, index %d MB", (d1 + d2).Round(time.Millisecond), d3.Round(time.Millisecond), idx>>20)
		for _, w := range []string{"zebraquux", "needle"} {
			s := time.Now()
			rows, err := c.Query(ctx, `SELECT seq FROM events WHERE body_text ILIKE '%' || $1 || '%' ORDER BY seq DESC LIMIT 50`, w)
			k := 0
			for err == nil && rows.Next() {
				k++
			}
			if rows != nil {
				rows.Close()
			}
			t.Logf("trigram query %q: %d rows in %v (%v)", w, k, time.Since(s).Round(time.Microsecond), err)
		}
	}
}
