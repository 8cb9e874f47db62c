package storetest

import (
	"errors"
	"testing"
	"time"

	"hookd/internal/store"
)

// testAdminSession: a stored session reads back as stored, deleting it
// ends it (twice is fine), and a new sign-in clears sessions that expired.
func testAdminSession(t *testing.T, st store.Store) {
	ctx := ctxFor(t)
	old := &store.AdminSession{IDHash: "old", TokenMAC: "mac-old", CreatedAt: base.Add(-2 * time.Hour), ExpiresAt: base.Add(-time.Hour)}
	live := &store.AdminSession{IDHash: "live", TokenMAC: "mac-live", CreatedAt: base.Add(-90 * time.Minute), ExpiresAt: base.Add(time.Hour)}
	for _, s := range []*store.AdminSession{old, live} {
		if err := st.AdminSessionInsert(ctx, s); err != nil {
			t.Fatalf("insert %s: %v", s.IDHash, err)
		}
	}
	if _, err := st.AdminSessionGet(ctx, "old"); err != nil {
		t.Fatalf("get old before any later sign-in: %v, want it", err)
	}
	fresh := &store.AdminSession{IDHash: "fresh", TokenMAC: "mac-fresh", CreatedAt: base, ExpiresAt: base.Add(12 * time.Hour)}
	if err := st.AdminSessionInsert(ctx, fresh); err != nil {
		t.Fatalf("insert fresh: %v", err)
	}
	got, err := st.AdminSessionGet(ctx, "fresh")
	if err != nil {
		t.Fatalf("get fresh: %v", err)
	}
	if got.IDHash != "fresh" || got.TokenMAC != "mac-fresh" || !got.CreatedAt.Equal(base.Truncate(time.Microsecond)) || !got.ExpiresAt.Equal(base.Add(12*time.Hour).Truncate(time.Microsecond)) {
		t.Fatalf("got %+v, want %+v (to the microsecond)", got, fresh)
	}
	if _, err := st.AdminSessionGet(ctx, "old"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("expired session after a later sign-in: got err %v, want ErrNotFound", err)
	}
	if _, err := st.AdminSessionGet(ctx, "live"); err != nil {
		t.Fatalf("unexpired session after a later sign-in: %v, want it kept", err)
	}
	if err := st.AdminSessionInsert(ctx, &store.AdminSession{IDHash: "fresh", TokenMAC: "x", CreatedAt: base, ExpiresAt: base.Add(time.Hour)}); err == nil {
		t.Fatal("a second session with the same id was stored, want an error")
	}
	for range 2 {
		if err := st.AdminSessionDelete(ctx, "fresh"); err != nil {
			t.Fatalf("delete: %v", err)
		}
	}
	if _, err := st.AdminSessionGet(ctx, "fresh"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("deleted session: got err %v, want ErrNotFound", err)
	}
	if _, err := st.AdminSessionGet(ctx, "live"); err != nil {
		t.Fatalf("other session after a delete: %v, want it kept", err)
	}
}
