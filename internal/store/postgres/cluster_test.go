package postgres

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"hookd/internal/store"
)

// seedDeliveries stores n events and a pending delivery of each to dest,
// due at due, and returns the deliveries' ids.
func seedDeliveries(t *testing.T, st *Store, dest string, n int, due time.Time) []string {
	t.Helper()
	ctx := t.Context()
	now := time.Now()
	es := make([]*store.EventInsert, n)
	for i := range es {
		es[i] = &store.EventInsert{Event: newEvent("src", "", now.Add(time.Duration(i)*time.Microsecond))}
	}
	res, err := st.EventInsertMany(ctx, es)
	if err != nil {
		t.Fatalf("EventInsertMany: %v", err)
	}
	ws := make([]*store.DeliveryWrite, n)
	ids := make([]string, n)
	for i, e := range es {
		d := &store.Delivery{EventID: e.Event.ID, EventSeq: res[i].Seq, Destination: dest, Status: store.StatusPending, NextAttemptAt: due}
		ws[i] = &store.DeliveryWrite{Delivery: d, Fence: store.FenceNone}
		ids[i] = store.DeliveryID(d.EventID, dest)
	}
	if _, err := st.DeliveryWriteMany(ctx, ws, 0); err != nil {
		t.Fatalf("DeliveryWriteMany: %v", err)
	}
	return ids
}

// A replica's claim is taken over once its lease ends, with a new epoch;
// the former holder's late outcome is then refused, the new holder's is
// written.
func TestClaimTakenOverAfterLeaseFencesTheFormerHolder(t *testing.T) {
	t.Parallel()
	schema := newSchema(t)
	log := testLogger(t)
	a, b := openTest(t, schema, log), openTest(t, schema, log)
	ctx := t.Context()
	now := time.Now()
	seedDeliveries(t, a, "d", 1, now.Add(-time.Second))

	const ttl = 300 * time.Millisecond
	got, err := a.DeliveryClaim(ctx, "rep_a", "d", now, ttl, 10)
	if err != nil || len(got) != 1 {
		t.Fatalf("A's claim: %d, %v; want 1", len(got), err)
	}
	da := got[0]
	if da.Owner != "rep_a" || da.LeaseEpoch != 1 || da.Status != store.StatusDelivering {
		t.Fatalf("A's claim: owner %q epoch %d status %s; want rep_a, 1, delivering", da.Owner, da.LeaseEpoch, da.Status)
	}
	if got, err := b.DeliveryClaim(ctx, "rep_b", "d", now, ttl, 10); err != nil || len(got) != 0 {
		t.Fatalf("B's claim while A's lease runs: %d, %v; want none", len(got), err)
	}
	var db *store.Delivery
	deadline := time.Now().Add(5 * time.Second)
	for db == nil {
		if time.Now().After(deadline) {
			t.Fatal("B never took the delivery over after A's lease ended")
		}
		got, err := b.DeliveryClaim(ctx, "rep_b", "d", time.Now(), time.Minute, 10)
		if err != nil {
			t.Fatalf("B's claim: %v", err)
		}
		if len(got) == 1 {
			db = got[0]
		}
		time.Sleep(20 * time.Millisecond)
	}
	if db.Owner != "rep_b" || db.LeaseEpoch != 2 {
		t.Fatalf("B's takeover: owner %q epoch %d; want rep_b, 2", db.Owner, db.LeaseEpoch)
	}
	outcome := func(d *store.Delivery, status string) *store.DeliveryWrite {
		row := *d
		row.Status, row.Attempts, row.RoundAttempts = status, d.Attempts+1, d.RoundAttempts+1
		row.LeaseUntil, row.LastAttemptAt = time.Time{}, time.Now()
		return &store.DeliveryWrite{Delivery: &row, Fence: d.Attempts}
	}
	skipped, err := a.DeliveryWriteMany(ctx, []*store.DeliveryWrite{outcome(da, store.StatusSucceeded)}, 0)
	if err != nil || len(skipped) != 1 {
		t.Fatalf("A's late outcome: skipped %v, %v; want it refused (fenced)", skipped, err)
	}
	skipped, err = b.DeliveryWriteMany(ctx, []*store.DeliveryWrite{outcome(db, store.StatusFailed)}, 0)
	if err != nil || len(skipped) != 0 {
		t.Fatalf("B's outcome: skipped %v, %v; want it written", skipped, err)
	}
	row, err := a.DeliveryGet(ctx, db.ID)
	if err != nil || row.Status != store.StatusFailed || row.Owner != "" || row.Attempts != 1 {
		t.Fatalf("stored: %+v, %v; want B's outcome (failed, 1 attempt, no owner)", row, err)
	}
}

// A heartbeat renews the claims of its replica; a replica that leaves
// hands its claims back, due now.
func TestBeatRenewsClaimsAndLeaveReleasesThem(t *testing.T) {
	t.Parallel()
	schema := newSchema(t)
	log := testLogger(t)
	a, b := openTest(t, schema, log), openTest(t, schema, log)
	ctx := t.Context()
	now := time.Now()
	seedDeliveries(t, a, "d", 3, now.Add(-time.Second))
	const ttl = 400 * time.Millisecond
	if live, _, err := a.ReplicaBeat(ctx, "rep_a", ttl, nil); err != nil || !slices.Equal(live, []string{"rep_a"}) {
		t.Fatalf("beat: %v, %v; want [rep_a]", live, err)
	}
	if live, _, err := b.ReplicaBeat(ctx, "rep_b", ttl, nil); err != nil || !slices.Equal(live, []string{"rep_a", "rep_b"}) {
		t.Fatalf("beat: %v, %v; want [rep_a rep_b]", live, err)
	}
	claimed, err := a.DeliveryClaim(ctx, "rep_a", "d", now, ttl, 10)
	if err != nil || len(claimed) != 3 {
		t.Fatalf("claim: %d, %v", len(claimed), err)
	}
	// A beats for 3 lease times, holding two of its three claims: B can
	// take only the third over meanwhile (a claim A no longer holds in
	// memory is not renewed).
	held := []string{claimed[0].ID, claimed[1].ID}
	var taken []string
	for end := time.Now().Add(3 * ttl); time.Now().Before(end); {
		if _, _, err := a.ReplicaBeat(ctx, "rep_a", ttl, held); err != nil {
			t.Fatal(err)
		}
		got, err := b.DeliveryClaim(ctx, "rep_b", "d", time.Now(), time.Hour, 10)
		if err != nil {
			t.Fatal(err)
		}
		for _, d := range got {
			taken = append(taken, d.ID)
		}
		time.Sleep(ttl / 4)
	}
	if !slices.Equal(taken, []string{claimed[2].ID}) {
		t.Fatalf("B took over %v while A kept beating for %v; want only the claim A did not hold, %s", taken, held, claimed[2].ID)
	}
	// A beat naming all three renews only A's own two: it tells A that
	// the third is no longer its claim.
	_, renewed, err := a.ReplicaBeat(ctx, "rep_a", ttl, append(slices.Clone(held), claimed[2].ID))
	if err != nil {
		t.Fatal(err)
	}
	if want := slices.Sorted(slices.Values(held)); !slices.Equal(slices.Sorted(slices.Values(renewed)), want) {
		t.Fatalf("beat renewed %v once B had taken %s over; want only %v", renewed, claimed[2].ID, want)
	}
	// B no longer beats: after a lease it is not live.
	time.Sleep(ttl + 50*time.Millisecond)
	if live, _, err := a.ReplicaBeat(ctx, "rep_a", ttl, held); err != nil || !slices.Equal(live, []string{"rep_a"}) {
		t.Fatalf("beat after B stopped: %v, %v; want [rep_a]", live, err)
	}
	if err := a.ReplicaLeave(ctx, "rep_a", time.Now()); err != nil {
		t.Fatal(err)
	}
	got, err := b.DeliveryClaim(ctx, "rep_b", "d", time.Now().Add(time.Millisecond), ttl, 10)
	if err != nil || len(got) != 2 {
		t.Fatalf("B's claim after A left: %d, %v; want A's 2 at once", len(got), err)
	}
	for _, d := range got {
		if d.LeaseEpoch != 2 {
			t.Errorf("%s: epoch %d, want 2", d.ID, d.LeaseEpoch)
		}
	}
}

// DeliveryRelease hands back only the claims the releaser still holds
// with the epoch it names.
func TestReleaseHandsBackOnlyOwnClaims(t *testing.T) {
	t.Parallel()
	schema := newSchema(t)
	log := testLogger(t)
	a, b := openTest(t, schema, log), openTest(t, schema, log)
	ctx := t.Context()
	now := time.Now()
	seedDeliveries(t, a, "d", 2, now.Add(-time.Second))
	got, err := a.DeliveryClaim(ctx, "rep_a", "d", now, time.Hour, 10)
	if err != nil || len(got) != 2 {
		t.Fatalf("claim: %d, %v", len(got), err)
	}
	x, y := got[0], got[1]
	// B names the claims too, A names y with a stale epoch: neither applies.
	if err := b.DeliveryRelease(ctx, "rep_b", map[string]int64{x.ID: x.LeaseEpoch}, now); err != nil {
		t.Fatal(err)
	}
	if err := a.DeliveryRelease(ctx, "rep_a", map[string]int64{x.ID: x.LeaseEpoch, y.ID: y.LeaseEpoch + 1}, now); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		d      *store.Delivery
		status string
		owner  string
	}{{x, store.StatusRetrying, ""}, {y, store.StatusDelivering, "rep_a"}} {
		row, err := a.DeliveryGet(ctx, c.d.ID)
		if err != nil || row.Status != c.status || row.Owner != c.owner {
			t.Errorf("%s: %+v, %v; want %s owned by %q", c.d.ID, row, err, c.status, c.owner)
		}
	}
	if got, err := b.DeliveryClaim(ctx, "rep_b", "d", time.Now(), time.Hour, 10); err != nil || len(got) != 1 || got[0].ID != x.ID {
		t.Fatalf("B's claim after A released x: %v, %v; want x at once", got, err)
	}
}

// A named lease has one holder at a time; its epoch moves when it changes
// hands, not when its holder renews it.
func TestLeaseOneHolderAndEpochs(t *testing.T) {
	t.Parallel()
	schema := newSchema(t)
	log := testLogger(t)
	a, b := openTest(t, schema, log), openTest(t, schema, log)
	ctx := t.Context()
	const ttl = 300 * time.Millisecond
	try := func(st *Store, owner string) (bool, int64) {
		t.Helper()
		held, ep, err := st.LeaseTry(ctx, "leader", owner, ttl)
		if err != nil {
			t.Fatal(err)
		}
		return held, ep
	}
	if held, ep := try(a, "rep_a"); !held || ep != 1 {
		t.Fatalf("A: %v %d, want held at epoch 1", held, ep)
	}
	if held, _ := try(b, "rep_b"); held {
		t.Fatal("B took a lease A holds")
	}
	if held, ep := try(a, "rep_a"); !held || ep != 1 {
		t.Fatalf("A renewing: %v %d, want held at epoch 1", held, ep)
	}
	time.Sleep(ttl + 50*time.Millisecond)
	if held, ep := try(b, "rep_b"); !held || ep != 2 {
		t.Fatalf("B after A's lease ended: %v %d, want held at epoch 2", held, ep)
	}
	if held, _ := try(a, "rep_a"); held {
		t.Fatal("A took back a lease B holds")
	}
	if err := b.LeaseRelease(ctx, "leader", "rep_b"); err != nil {
		t.Fatal(err)
	}
	if held, ep := try(a, "rep_a"); !held || ep != 3 {
		t.Fatalf("A after B released: %v %d, want held at epoch 3", held, ep)
	}
}

// A schema that a hookd without replica support serves (it holds its
// session lock) is refused with the reason; once it stops, Open works.
func TestOpenRefusesASchemaServedByAnOlderVersion(t *testing.T) {
	t.Parallel()
	schema := newSchema(t)
	log := testLogger(t)
	openTest(t, schema, log).Close() // creates the schema
	ctx := t.Context()
	old, err := pgx.Connect(ctx, needPostgres(t))
	if err != nil {
		t.Fatal(err)
	}
	defer old.Close(context.Background())
	if _, err := old.Exec(ctx, `SELECT pg_advisory_lock($1, $2)`, lockLegacyServe, schemaKey(schema)); err != nil {
		t.Fatal(err)
	}
	st, err := Open(ctx, needPostgres(t), log, Options{Schema: schema, MaxConns: testMaxConns})
	if err == nil {
		st.Close()
		t.Fatal("Open beside an older hookd serving the schema: got nil, want it refused")
	}
	if !strings.Contains(err.Error(), "older version") {
		t.Fatalf("Open beside an older hookd: %v, want the reason", err)
	}
	if _, err := old.Exec(ctx, `SELECT pg_advisory_unlock($1, $2)`, lockLegacyServe, schemaKey(schema)); err != nil {
		t.Fatal(err)
	}
	openTest(t, schema, log)
}
