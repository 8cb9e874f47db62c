package sqlite

import (
	"path/filepath"
	"testing"
)

// A database made before delivery existed (migration 1 only) keeps its
// events undelivered: after the upgrade the fan-out watermark is at the
// newest of them, so that no subscription sends the history.
func TestUpgradeStartsTheWatermarkAtTheNewestEvent(t *testing.T) {
	dir := t.TempDir()
	db, err := OpenFile(filepath.Join(dir, FileName), "")
	if err != nil {
		t.Fatal(err)
	}
	one, err := migrations.ReadFile("migrations/0001_events.sql")
	if err != nil {
		t.Fatal(err)
	}
	for _, q := range []string{
		string(one),
		`CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, applied_at INTEGER NOT NULL)`,
		`INSERT INTO schema_migrations VALUES (1, 0)`,
		`INSERT INTO events (id, source, received_at, body) VALUES ('evt_a', 's', 1, x''), ('evt_b', 's', 2, x''), ('evt_c', 's', 3, x'')`,
	} {
		if _, err := db.Exec(q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	db.Close()
	st := openTest(t, dir, testLogger(t))
	wm, err := st.WatermarkGet(t.Context())
	if err != nil || wm != 3 {
		t.Fatalf("watermark after the upgrade = %d, %v; want 3", wm, err)
	}
	// A fresh database starts at 0.
	st2 := openTest(t, t.TempDir(), testLogger(t))
	if wm, err := st2.WatermarkGet(t.Context()); err != nil || wm != 0 {
		t.Fatalf("fresh watermark = %d, %v; want 0", wm, err)
	}
}
