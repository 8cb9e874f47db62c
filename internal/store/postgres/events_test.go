package postgres

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"hookd"
	"hookd/internal/store"
)

// rawConn is a connection of its own to schema, outside any Store.
func rawConn(t *testing.T, schema string) *pgx.Conn {
	t.Helper()
	cfg, err := pgx.ParseConfig(needPostgres(t))
	if err != nil {
		t.Fatal(err)
	}
	cfg.RuntimeParams["search_path"] = quoteIdent(schema)
	c, err := pgx.ConnectConfig(t.Context(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close(context.Background()) })
	return c
}

// beginInsert begins a transaction on c that inserts e exactly as
// EventInsertMany does, and returns it uncommitted with the event's seq:
// a replica held between its insert and its commit.
func beginInsert(t *testing.T, c *pgx.Conn, e *hookd.Event) (pgx.Tx, int64) {
	t.Helper()
	ctx := t.Context()
	rows, err := encodeRows([]*store.EventInsert{{Event: e}})
	if err != nil {
		t.Fatal(err)
	}
	tx, err := c.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { tx.Rollback(context.Background()) })
	if _, err := tx.Exec(ctx, insertLockSQL); err != nil {
		t.Fatalf("insert lock in a held transaction: %v", err)
	}
	var (
		id  string
		seq int64
	)
	args := insertArgs(rows, []int{0}, []bool{false}, []*string{nil}, time.Now())
	if err := tx.QueryRow(ctx, insertEventsQuery, args...).Scan(&id, &seq); err != nil {
		t.Fatalf("insert in a held transaction: %v", err)
	}
	return tx, seq
}

// readStream reads source's stream from cursor as a consumer of
// GET /api/v1/sources/{name}/events?after= does, page after page (one
// event a page), and returns the events and the cursor to read on from.
func readStream(t *testing.T, st *Store, source, cursor string) ([]*hookd.Event, string) {
	t.Helper()
	var got []*hookd.Event
	for {
		page, next, err := st.EventList(t.Context(), &store.EventListParams{Source: source, After: cursor, Order: store.OrderAsc, Limit: 1})
		if err != nil {
			t.Fatalf("EventList: %v", err)
		}
		if len(page) > 0 {
			got = append(got, page...)
			cursor = store.EncodeCursor(page[len(page)-1].Seq)
		}
		if next == "" {
			return got, cursor
		}
	}
}

func eventIDs(es []*hookd.Event) []string {
	ids := make([]string, len(es))
	for i, e := range es {
		ids[i] = e.ID
	}
	return ids
}

// setHeldBackWait sets heldBackWait until t ends. Only tests that do not
// run in parallel may call it.
func setHeldBackWait(t *testing.T, d time.Duration) {
	old := heldBackWait
	heldBackWait = d
	t.Cleanup(func() { heldBackWait = old })
}

// Replica A has inserted an event and not committed yet; replica B inserts
// and commits after it. A stream reader must not read B's events (its
// cursor would pass over A's) until A's transaction has ended; then,
// reading on from its cursor, it gets A's event and B's. Not parallel: it
// lowers heldBackWait.
func TestLateCommitNeverSkipped(t *testing.T) {
	schema := newSchema(t)
	log := testLogger(t)
	a, b := openTest(t, schema, log), openTest(t, schema, log)
	ctx := t.Context()
	now := time.Now()

	e0 := newEvent("src", "", now)
	if _, err := b.EventInsertMany(ctx, []*store.EventInsert{{Event: e0}}); err != nil {
		t.Fatalf("EventInsertMany: %v", err)
	}
	got, cursor := readStream(t, a, "src", "")
	if !slices.Equal(eventIDs(got), []string{e0.ID}) {
		t.Fatalf("stream before: got %v, want [%s]", eventIDs(got), e0.ID)
	}

	eA := newEvent("src", "", now.Add(time.Millisecond))
	txA, seqA := beginInsert(t, rawConn(t, schema), eA)
	eB1, eB2 := newEvent("src", "", now.Add(2*time.Millisecond)), newEvent("src", "", now.Add(3*time.Millisecond))
	res, err := b.EventInsertMany(ctx, []*store.EventInsert{{Event: eB1}, {Event: eB2}})
	if err != nil {
		t.Fatalf("EventInsertMany on B: %v", err)
	}
	if res[0].Seq <= seqA || res[1].Seq <= res[0].Seq {
		t.Fatalf("seqs: A %d, B %d %d; want B's above A's (B's transaction began after A's)", seqA, res[0].Seq, res[1].Seq)
	}
	if _, err := a.EventGet(ctx, eB1.ID); err != nil {
		t.Fatalf("EventGet(B's event): %v; want it committed", err)
	}

	setHeldBackWait(t, 200*time.Millisecond)
	got, cursor = readStream(t, a, "src", cursor)
	if len(got) != 0 {
		t.Errorf("stream while A's transaction runs: got %v, want nothing (B's events, committed, come after A's uncommitted one)", eventIDs(got))
	}
	// The reverse order is not a stream: it lists what is committed.
	desc, _, err := a.EventList(ctx, &store.EventListParams{Source: "src", Order: store.OrderDesc})
	if err != nil || !slices.Equal(eventIDs(desc), []string{eB2.ID, eB1.ID, e0.ID}) {
		t.Errorf("EventList desc: %v, %v; want [%s %s %s]", eventIDs(desc), err, eB2.ID, eB1.ID, e0.ID)
	}

	if err := txA.Commit(ctx); err != nil {
		t.Fatalf("commit A: %v", err)
	}
	// A read may still see A's id among those running a moment more.
	want := []string{eA.ID, eB1.ID, eB2.ID}
	var rest []*hookd.Event
	for deadline := time.Now().Add(30 * time.Second); ; {
		more, next := readStream(t, a, "src", cursor)
		rest, cursor = append(rest, more...), next
		if len(rest) >= len(want) || time.Now().After(deadline) {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	if !slices.Equal(eventIDs(rest), want) {
		t.Errorf("stream after A's commit: got %v, want %v (A's event first, nothing skipped)", eventIDs(rest), want)
	}
}

// A listing that finds committed events held back by a transaction still
// running waits for it: read right after B's insert returned, the stream
// has B's event (and A's, committed meanwhile, before it). Not parallel:
// it sets listHeldBack.
func TestListingWaitsForHeldBackEvents(t *testing.T) {
	schema := newSchema(t)
	log := testLogger(t)
	a, b := openTest(t, schema, log), openTest(t, schema, log)
	ctx := t.Context()
	now := time.Now()

	eA := newEvent("src", "", now)
	txA, _ := beginInsert(t, rawConn(t, schema), eA)
	eB := newEvent("src", "", now.Add(time.Millisecond))
	if _, err := b.EventInsertMany(ctx, []*store.EventInsert{{Event: eB}}); err != nil {
		t.Fatalf("EventInsertMany on B: %v", err)
	}
	var held atomic.Int32
	listHeldBack = func() {
		if held.Add(1) == 1 {
			if err := txA.Commit(ctx); err != nil {
				t.Errorf("commit A: %v", err)
			}
		}
	}
	t.Cleanup(func() { listHeldBack = nil })
	got, next, err := a.EventList(ctx, &store.EventListParams{Source: "src", Order: store.OrderAsc, Limit: 10})
	if err != nil {
		t.Fatalf("EventList: %v", err)
	}
	if held.Load() == 0 {
		t.Errorf("the listing was not held back: A's transaction, running, should have held back B's event")
	}
	if want := []string{eA.ID, eB.ID}; !slices.Equal(eventIDs(got), want) || next != "" {
		t.Errorf("EventList asc: got %v (next %q), want %v", eventIDs(got), next, want)
	}
}

// One provider id posted 100 times at once through three replicas is
// stored once: every answer carries that event's id, 99 as duplicates.
// Batches taking the same ids in different orders (which can deadlock)
// settle the same way.
func TestDedupeAcrossReplicas(t *testing.T) {
	t.Parallel()
	schema := newSchema(t)
	log := testLogger(t)
	replicas := []*Store{openTest(t, schema, log), openTest(t, schema, log), openTest(t, schema, log)}
	ctx := t.Context()
	base := time.Now()

	const n = 100
	var (
		wg    sync.WaitGroup
		start = make(chan struct{})
		res   = make([]store.EventInsertResult, n)
	)
	for i := range n {
		wg.Go(func() {
			<-start
			e := newEvent("src", "ext-1", base.Add(time.Duration(i)*time.Microsecond))
			r, err := replicas[i%3].EventInsertMany(ctx, []*store.EventInsert{{Event: e, DedupeWindow: time.Hour}})
			if err != nil {
				t.Errorf("EventInsertMany #%d: %v", i, err)
				return
			}
			res[i] = r[0]
		})
	}
	close(start)
	wg.Wait()
	stored, _, err := replicas[0].EventList(ctx, &store.EventListParams{Order: store.OrderDesc, Limit: 1000})
	if err != nil {
		t.Fatal(err)
	}
	if len(stored) != 1 {
		t.Fatalf("got %d events stored, want 1: %v", len(stored), eventIDs(stored))
	}
	dups := 0
	for i, r := range res {
		if r.ID != stored[0].ID || r.Seq != stored[0].Seq {
			t.Errorf("insert #%d: got %s (seq %d), want %s (seq %d)", i, r.ID, r.Seq, stored[0].ID, stored[0].Seq)
		}
		if r.Duplicate {
			dups++
		}
	}
	if dups != n-1 {
		t.Errorf("got %d duplicates, want %d", dups, n-1)
	}

	// Batches of the same ten ids, each in another order.
	const batches, ids = 30, 300
	type outcome struct {
		ext string
		res store.EventInsertResult
	}
	var (
		mu   sync.Mutex
		outs []outcome
	)
	start = make(chan struct{})
	for g := range batches {
		wg.Go(func() {
			<-start
			var (
				ins  []*store.EventInsert
				exts []string
			)
			for k := range ids {
				j := (k*7 + g*3) % ids
				if g%2 == 1 {
					j = ids - 1 - j
				}
				ext := fmt.Sprintf("multi-%d", j)
				exts = append(exts, ext)
				ins = append(ins, &store.EventInsert{Event: newEvent("multi", ext, base.Add(time.Duration(g*ids+k)*time.Microsecond)), DedupeWindow: time.Hour})
			}
			r, err := replicas[g%3].EventInsertMany(ctx, ins)
			if err != nil {
				t.Errorf("EventInsertMany batch %d: %v", g, err)
				return
			}
			mu.Lock()
			for k := range r {
				outs = append(outs, outcome{exts[k], r[k]})
			}
			mu.Unlock()
		})
	}
	close(start)
	wg.Wait()
	byExt := map[string]store.EventInsertResult{}
	news := 0
	for _, o := range outs {
		if !o.res.Duplicate {
			news++
		}
		if prev, ok := byExt[o.ext]; ok && prev.ID != o.res.ID {
			t.Errorf("%s: got events %s and %s, want one", o.ext, prev.ID, o.res.ID)
		}
		byExt[o.ext] = o.res
	}
	if news != ids {
		t.Errorf("batches: got %d new events, want %d (one per id)", news, ids)
	}
	if n, err := replicas[1].EventCount(ctx, &store.EventListParams{Source: "multi"}); err != nil || n != ids {
		t.Errorf("EventCount(multi): %d, %v, want %d", n, err, ids)
	}
}

// A batch whose transaction is chosen to end a deadlock (here with another
// writer taking its keys in the reverse order) is tried again, not failed:
// it answers duplicates of what the other writer stored.
func TestDeadlockTriedAgain(t *testing.T) {
	t.Parallel()
	schema := newSchema(t)
	st := openTest(t, schema, testLogger(t))
	other := rawConn(t, schema)
	// The server picks the transaction whose deadlock_timeout runs out
	// first with the cycle closed, normally the batch's, which waited
	// first. On a machine so busy that the other writer closes the cycle
	// only after the batch's check has run, the other writer is picked:
	// the run proves nothing, and the test runs again with new ids.
	for run := 1; ; run++ {
		if deadlockRun(t, st, other, fmt.Sprintf("run%d-", run)) {
			return
		}
		if run == 5 {
			t.Fatal("in 5 runs, the server never picked the batch to end the deadlock")
		}
	}
}

// deadlockRun runs TestDeadlockTriedAgain once, with external ids prefixed
// by p, and tells whether the server picked the batch's transaction.
func deadlockRun(t *testing.T, st *Store, other *pgx.Conn, p string) bool {
	ctx := t.Context()
	now := time.Now()
	tx, err := other.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback(context.Background())
	var pid int
	if err := tx.QueryRow(ctx, `SELECT pg_backend_pid()`).Scan(&pid); err != nil {
		t.Fatal(err)
	}
	foreign := func(ext string) (*hookd.Event, error) {
		e := newEvent("src", ext, now)
		_, err := tx.Exec(ctx, `INSERT INTO events (id, source, external_id, dedupe_key, received_at, body)
			VALUES ($1, 'src', $2, $2, $3, '')`, e.ID, ext, now.UnixMicro())
		return e, err
	}
	fb, err := foreign(p + "b")
	if err != nil {
		t.Fatalf("foreign insert of b: %v", err)
	}

	type result struct {
		res []store.EventInsertResult
		err error
	}
	done := make(chan result, 1)
	go func() {
		res, err := st.EventInsertMany(ctx, []*store.EventInsert{
			{Event: newEvent("src", p+"a", now.Add(time.Second)), DedupeWindow: time.Hour},
			{Event: newEvent("src", p+"b", now.Add(time.Second)), DedupeWindow: time.Hour},
		})
		done <- result{res, err}
	}()
	// The batch has taken a and waits for the other writer's b.
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(5 * time.Millisecond) {
		var n int
		if err := st.with(ctx, func(c *pgx.Conn) error {
			return c.QueryRow(ctx, `SELECT count(*) FROM pg_stat_activity WHERE $1::int = ANY(pg_blocking_pids(pid))`, pid).Scan(&n)
		}); err != nil {
			t.Fatal(err)
		}
		if n > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the batch never waited for the other writer")
		}
	}
	// The other writer now waits for the batch's a: a deadlock, which
	// the server ends after deadlock_timeout by failing the transaction
	// that waited first, the batch's.
	fa, err := foreign(p + "a")
	if pe := (*pgconn.PgError)(nil); errors.As(err, &pe) && pe.Code == "40P01" {
		tx.Rollback(ctx)
		if r := <-done; r.err != nil {
			t.Fatalf("EventInsertMany, the other writer picked to end the deadlock: %v", r.err)
		}
		return false
	}
	if err != nil {
		t.Fatalf("foreign insert of a: %v", err)
	}
	if err := tx.Commit(ctx); err != nil {
		t.Fatalf("commit the other writer: %v", err)
	}
	r := <-done
	if r.err != nil {
		t.Fatalf("EventInsertMany: %v; want it tried again after the deadlock", r.err)
	}
	if !r.res[0].Duplicate || r.res[0].ID != fa.ID || !r.res[1].Duplicate || r.res[1].ID != fb.ID {
		t.Errorf("got %+v, want duplicates of %s and %s", r.res, fa.ID, fb.ID)
	}
	return true
}

// Deliveries given with an insert are stored in its transaction with the
// event's seq; a stale event gets StaleDeliveries (Deliveries when nil); a
// duplicate gets none; a batch tried again stores them once.
func TestDeliveriesStoredWithEvent(t *testing.T) {
	t.Parallel()
	schema := newSchema(t)
	st := openTest(t, schema, testLogger(t))
	other := rawConn(t, schema)
	ctx := t.Context()
	now := time.Now()
	pending := func(dest string) *store.Delivery {
		return &store.Delivery{Destination: dest, EventKey: "k", Status: store.StatusPending}
	}

	fresh := newEvent("src", "ext-1", now)
	fresh.Key, fresh.OccurredAt = "k", now
	dA, dB := pending("a"), pending("b")
	dA.SubscriptionID = "sub_1"
	older := newEvent("src", "ext-2", now.Add(time.Millisecond))
	older.Key, older.OccurredAt = "k", now.Add(-time.Hour)
	olderStale := []*store.Delivery{pending("stale-dest")}
	oldest := newEvent("src", "ext-3", now.Add(2*time.Millisecond))
	oldest.Key, oldest.OccurredAt = "k", now.Add(-2*time.Hour)
	dup := newEvent("src", "ext-1", now.Add(3*time.Millisecond))
	dDup := pending("a")
	res, err := st.EventInsertMany(ctx, []*store.EventInsert{
		{Event: fresh, DedupeWindow: time.Hour, Deliveries: []*store.Delivery{dA, dB}, StaleDeliveries: []*store.Delivery{pending("unused")}},
		{Event: older, DedupeWindow: time.Hour, Deliveries: []*store.Delivery{pending("a")}, StaleDeliveries: olderStale},
		{Event: oldest, DedupeWindow: time.Hour, Deliveries: []*store.Delivery{pending("c")}},
		{Event: dup, DedupeWindow: time.Hour, Deliveries: []*store.Delivery{dDup}},
	})
	if err != nil {
		t.Fatalf("EventInsertMany: %v", err)
	}
	if res[0].Stale || !res[1].Stale || !res[2].Stale || !res[3].Duplicate {
		t.Fatalf("got %+v, want new, stale, stale, duplicate", res)
	}
	if dA.EventSeq != res[0].Seq || dA.EventID != fresh.ID || dB.EventSeq != res[0].Seq || dDup.EventSeq != 0 || dDup.EventID != "" {
		t.Errorf("deliveries given: got %+v %+v (dup %+v), want EventSeq and EventID set to the new event's (%d), the duplicate's untouched",
			dA, dB, dDup, res[0].Seq)
	}
	dests := func(e *hookd.Event, seq int64) []string {
		t.Helper()
		ds, err := st.DeliveryListByEvent(ctx, e.ID)
		if err != nil {
			t.Fatalf("DeliveryListByEvent: %v", err)
		}
		var out []string
		for _, d := range ds {
			out = append(out, d.Destination)
			if d.EventSeq != seq || d.EventID != e.ID || d.ID != store.DeliveryID(e.ID, d.Destination) || d.Status != store.StatusPending ||
				d.Attempts != 0 || d.NextAttemptAt.IsZero() || d.CreatedAt.IsZero() || d.UpdatedAt.IsZero() || !d.LeaseUntil.IsZero() || d.EventKey != "k" {
				t.Errorf("stored delivery %+v: want the event's id and seq %d, pending, due, no attempt", d, seq)
			}
		}
		return out
	}
	if got := dests(fresh, res[0].Seq); !slices.Equal(got, []string{"a", "b"}) {
		t.Errorf("new event: deliveries to %v, want [a b]", got)
	}
	if got := dests(older, res[1].Seq); !slices.Equal(got, []string{"stale-dest"}) {
		t.Errorf("stale event: deliveries to %v, want [stale-dest] (its StaleDeliveries)", got)
	}
	if olderStale[0].EventSeq != res[1].Seq {
		t.Errorf("stale delivery given: EventSeq %d, want %d", olderStale[0].EventSeq, res[1].Seq)
	}
	if got := dests(oldest, res[2].Seq); !slices.Equal(got, []string{"c"}) {
		t.Errorf("stale event without StaleDeliveries: deliveries to %v, want [c] (its Deliveries)", got)
	}
	if got := dests(dup, 0); len(got) != 0 {
		t.Errorf("duplicate: deliveries to %v, want none", got)
	}
	if d, err := st.DeliveryGet(ctx, store.DeliveryID(fresh.ID, "a")); err != nil || d.SubscriptionID != "sub_1" {
		t.Errorf("DeliveryGet: %+v, %v; want subscription sub_1", d, err)
	}
	// Due at the commit: a claim takes them.
	claimed, err := st.DeliveryClaimDue(ctx, "b", time.Now(), time.Minute, 10)
	if err != nil || len(claimed) != 1 || claimed[0].EventID != fresh.ID {
		t.Errorf("DeliveryClaimDue(b): %v, %v; want the new event's delivery", claimed, err)
	}

	// A batch that meets a key taken meanwhile is rolled back and tried
	// again: its new event's deliveries are stored once.
	calls := 0
	st.resolved = func() {
		calls++
		if calls == 1 {
			taker := newEvent("src", "ext-9", now)
			if _, err := other.Exec(ctx, `INSERT INTO events (id, source, external_id, dedupe_key, received_at, body)
				VALUES ($1, 'src', 'ext-9', 'ext-9', $2, '')`, taker.ID, now.UnixMicro()); err != nil {
				t.Errorf("foreign insert: %v", err)
			}
		}
	}
	lost, kept := newEvent("src", "ext-9", now.Add(time.Second)), newEvent("src", "ext-10", now.Add(time.Second))
	res, err = st.EventInsertMany(ctx, []*store.EventInsert{
		{Event: lost, DedupeWindow: time.Hour, Deliveries: []*store.Delivery{pending("a")}},
		{Event: kept, DedupeWindow: time.Hour, Deliveries: []*store.Delivery{pending("a")}},
	})
	st.resolved = nil
	if err != nil || calls != 2 || !res[0].Duplicate || res[1].Duplicate {
		t.Fatalf("retried batch: %+v, %v after %d tries; want a duplicate and a new event after 2", res, err, calls)
	}
	if got := dests(kept, res[1].Seq); !slices.Equal(got, []string{"a"}) {
		t.Errorf("retried batch: deliveries to %v, want [a]", got)
	}
	if got := dests(lost, 0); len(got) != 0 {
		t.Errorf("retried batch, duplicate: deliveries to %v, want none", got)
	}
}

// slogTo logs warnings to buf and to t's output.
func slogTo(t *testing.T, buf *lockedBuffer) *slog.Logger {
	return slog.New(slog.NewTextHandler(io.MultiWriter(buf, t.Output()), &slog.HandlerOptions{Level: slog.LevelWarn}))
}

// A log restored into another cluster holds seqs above what the new
// cluster's transaction ids give: checkEventSeqs raises the base, and new
// events follow the stored ones in the stream.
func TestSeqBaseAfterRestore(t *testing.T) {
	t.Parallel()
	schema := newSchema(t)
	var logs lockedBuffer
	st := openTest(t, schema, slogTo(t, &logs))
	ctx := t.Context()
	now := time.Now()
	restored := newEvent("src", "", now)
	c := rawConn(t, schema)
	var high int64
	// Numbered from a transaction id a million above this cluster's.
	if err := c.QueryRow(ctx, `INSERT INTO events (seq, id, source, received_at, body) OVERRIDING SYSTEM VALUE
		VALUES (((pg_current_xact_id()::text::bigint + 1000000) << 20) + 7, $1, 'src', $2, '') RETURNING seq`,
		restored.ID, now.UnixMicro()).Scan(&high); err != nil {
		t.Fatal(err)
	}
	if err := st.checkEventSeqs(ctx); err != nil {
		t.Fatalf("checkEventSeqs: %v", err)
	}
	if !strings.Contains(logs.String(), "new events number after them") {
		t.Errorf("checkEventSeqs logged %q, want a warning that it raised the base", logs.String())
	}
	e := newEvent("src", "", now.Add(time.Millisecond))
	res, err := st.EventInsertMany(ctx, []*store.EventInsert{{Event: e}})
	if err != nil {
		t.Fatal(err)
	}
	if res[0].Seq <= high {
		t.Errorf("new event: seq %d, want above the restored %d", res[0].Seq, high)
	}
	var got []*hookd.Event
	for deadline := time.Now().Add(30 * time.Second); len(got) < 2 && time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		got, _ = readStream(t, st, "src", "")
	}
	if want := []string{restored.ID, e.ID}; !slices.Equal(eventIDs(got), want) {
		t.Errorf("stream: got %v, want %v", eventIDs(got), want)
	}
	// Nothing more to do: a second check changes nothing.
	logs.mu.Lock()
	logs.b.Reset()
	logs.mu.Unlock()
	if err := st.checkEventSeqs(ctx); err != nil || logs.String() != "" {
		t.Errorf("second checkEventSeqs: %v, logged %q; want nothing", err, logs.String())
	}
}

// A batch too large to number is refused before anything is stored.
func TestBatchTooLarge(t *testing.T) {
	t.Parallel()
	st := openTest(t, newSchema(t), testLogger(t))
	_, err := st.EventInsertMany(t.Context(), make([]*store.EventInsert, 1<<seqShift))
	if err == nil || !strings.Contains(err.Error(), "split it") {
		t.Errorf("EventInsertMany of 2^20 events: %v, want a refusal", err)
	}
}

// otherDBConn is a connection of its own to another database of the
// server (postgres), outside any Store.
func otherDBConn(t *testing.T) *pgx.Conn {
	t.Helper()
	cfg, err := pgx.ParseConfig(needPostgres(t))
	if err != nil {
		t.Fatal(err)
	}
	cfg.Database = "postgres"
	c, err := pgx.ConnectConfig(t.Context(), cfg)
	if err != nil {
		t.Skipf("no database postgres on the test server (%v): this case needs a second database", err)
	}
	t.Cleanup(func() { c.Close(context.Background()) })
	return c
}

// A transaction that wrote elsewhere on the server (another schema of the
// database, another database) and stays open, as a batch job or a session
// idle in a transaction does, does not hold back this schema's stream:
// events stored after it began are listed at once. Not parallel: it sets
// heldBackWait.
func TestForeignTransactionDoesNotHoldBack(t *testing.T) {
	setHeldBackWait(t, 2*time.Second)
	for _, c := range []struct {
		name  string
		write func(t *testing.T) pgx.Tx // begins, writes, returns the open transaction
	}{
		{"another schema", func(t *testing.T) pgx.Tx {
			other := newSchema(t)
			c := rawConn(t, other)
			if _, err := c.Exec(t.Context(), `CREATE SCHEMA `+quoteIdent(other)+`; CREATE TABLE batch (n int)`); err != nil {
				t.Fatal(err)
			}
			tx, err := c.Begin(t.Context())
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { tx.Rollback(context.Background()) })
			if _, err := tx.Exec(t.Context(), `INSERT INTO batch VALUES (1)`); err != nil {
				t.Fatal(err)
			}
			return tx
		}},
		{"another database", func(t *testing.T) pgx.Tx {
			tx, err := otherDBConn(t).Begin(t.Context())
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { tx.Rollback(context.Background()) })
			// An id of its own, as its first write would give it.
			if _, err := tx.Exec(t.Context(), `SELECT pg_current_xact_id()`); err != nil {
				t.Fatal(err)
			}
			return tx
		}},
	} {
		t.Run(c.name, func(t *testing.T) {
			schema := newSchema(t)
			log := testLogger(t)
			a, b := openTest(t, schema, log), openTest(t, schema, log)
			ctx := t.Context()
			c.write(t)
			now := time.Now()
			var want []string
			for i := range 3 {
				e := newEvent("src", "", now.Add(time.Duration(i)*time.Millisecond))
				if _, err := b.EventInsertMany(ctx, []*store.EventInsert{{Event: e}}); err != nil {
					t.Fatalf("EventInsertMany: %v", err)
				}
				want = append(want, e.ID)
			}
			// Read at another replica, as soon as the inserts returned.
			start := time.Now()
			got, next, err := a.EventList(ctx, &store.EventListParams{Source: "src", Order: store.OrderAsc, Limit: 10})
			if err != nil {
				t.Fatalf("EventList: %v", err)
			}
			if !slices.Equal(eventIDs(got), want) || next != "" {
				t.Errorf("EventList asc while the foreign transaction is open: got %v (next %q) after %v, want %v at once",
					eventIDs(got), next, time.Since(start).Round(time.Millisecond), want)
			}
		})
	}
}

// BenchmarkPostgresListAsc measures one page of the stream: an ascending
// EventList of 50 events of a source (without bodies), read from cursors
// spread over a log of 10,000 events.
func BenchmarkPostgresListAsc(b *testing.B) {
	const total, page = 10000, 50
	st := openTest(b, newSchema(b), testLogger(b))
	ctx := b.Context()
	now := time.Now()
	for i := 0; i < total; i += 1000 {
		ins := make([]*store.EventInsert, 1000)
		for k := range ins {
			ins[k] = &store.EventInsert{Event: newEvent("bench", "", now.Add(time.Duration(i+k)*time.Microsecond))}
		}
		if _, err := st.EventInsertMany(ctx, ins); err != nil {
			b.Fatalf("EventInsertMany: %v", err)
		}
	}
	var cursors []string
	for cursor := ""; len(cursors) < total/page; {
		es, _, err := st.EventList(ctx, &store.EventListParams{Source: "bench", After: cursor, Order: store.OrderAsc, Limit: page})
		if err != nil || len(es) != page {
			b.Fatalf("EventList: %d events, %v", len(es), err)
		}
		cursors = append(cursors, cursor)
		cursor = store.EncodeCursor(es[len(es)-1].Seq)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		es, _, err := st.EventList(ctx, &store.EventListParams{Source: "bench", After: cursors[i%len(cursors)], Order: store.OrderAsc, Limit: page})
		if err != nil || len(es) != page {
			b.Fatalf("EventList: %d events, %v", len(es), err)
		}
	}
}

// The horizon is computed in the statement's snapshot and from pg_locks
// read after it. A REPEATABLE READ transaction keeps the snapshot of its
// first statement while each statement reads pg_locks anew: it stands for
// a statement whose read of pg_locks comes late. An insert that was running
// when the snapshot was taken and has committed since (its locks gone, its
// event not in the snapshot) still bounds the horizon; an insert that took
// the insert lock before the snapshot and its id after it gets a seq above
// the horizon.
func TestHorizonSnapshotThenLocks(t *testing.T) {
	t.Parallel()
	schema := newSchema(t)
	st := openTest(t, schema, testLogger(t))
	ctx := t.Context()
	now := time.Now()

	txA, seqA := beginInsert(t, rawConn(t, schema), newEvent("src", "", now))
	// A later insert that commits: the snapshots below see A running.
	if _, err := st.EventInsertMany(ctx, []*store.EventInsert{{Event: newEvent("src", "", now.Add(time.Millisecond))}}); err != nil {
		t.Fatal(err)
	}
	// C has taken the insert lock and has no id yet.
	txC, err := rawConn(t, schema).Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer txC.Rollback(context.Background())
	if _, err := txC.Exec(ctx, insertLockSQL); err != nil {
		t.Fatal(err)
	}

	reader, err := rawConn(t, schema).BeginTx(ctx, pgx.TxOptions{IsoLevel: pgx.RepeatableRead})
	if err != nil {
		t.Fatal(err)
	}
	defer reader.Rollback(context.Background())
	horizon := func() int64 {
		t.Helper()
		var h int64
		if err := reader.QueryRow(ctx, `SELECT `+horizonSQL).Scan(&h); err != nil {
			t.Fatalf("horizon: %v", err)
		}
		return h
	}
	visible := func(seq int64) bool {
		t.Helper()
		var n int
		if err := reader.QueryRow(ctx, `SELECT count(*) FROM events WHERE seq = $1`, seq).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n > 0
	}
	if h := horizon(); h > seqA { // the snapshot is taken here
		t.Fatalf("horizon %d with A running: want at most A's seq %d", h, seqA)
	}

	if err := txA.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	var seqC int64
	rows, err := encodeRows([]*store.EventInsert{{Event: newEvent("src", "", now.Add(2*time.Millisecond))}})
	if err != nil {
		t.Fatal(err)
	}
	if err := txC.QueryRow(ctx, insertEventsQuery, insertArgs(rows, []int{0}, []bool{false}, []*string{nil}, now)...).Scan(new(string), &seqC); err != nil {
		t.Fatal(err)
	}
	if visible(seqA) {
		t.Fatalf("A's event is in the reader's snapshot: the test needs it not to be")
	}
	if h := horizon(); h > seqA {
		t.Errorf("horizon %d after A committed, in a snapshot without A's event: want at most A's seq %d (the cursor would pass over it)", h, seqA)
	}
	if h := horizon(); h > seqC {
		t.Errorf("horizon %d: want at most the seq %d of C, which took its id after the snapshot", h, seqC)
	}
}
