//go:build linux

package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/url"
	"os"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// TestCrashSafetySIGKILLPostgres is TestCrashSafetySIGKILL with the
// events in PostgreSQL (a schema of its own): every request answered 200
// is stored exactly once, none answered 4xx is stored, and one without an
// answer at most once.
func TestCrashSafetySIGKILLPostgres(t *testing.T) {
	if testing.Short() {
		t.Skip("crash test: SIGKILLs a hookd child under load; skipped with -short")
	}
	base := os.Getenv("HOOKD_TEST_POSTGRES_DSN")
	if base == "" {
		base = "postgres://postgres@127.0.0.1:5432/test?sslmode=disable"
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	admin, err := pgx.Connect(ctx, base)
	if err != nil {
		msg := fmt.Sprintf("PostgreSQL is not reachable (%v)", err)
		if os.Getenv("HOOKD_TEST_REQUIRE_SERVICES") == "1" {
			t.Fatalf("%s; HOOKD_TEST_REQUIRE_SERVICES=1 makes this a failure", msg)
		}
		t.Skip(msg + "; set HOOKD_TEST_REQUIRE_SERVICES=1 to fail instead of skipping")
	}
	defer admin.Close(context.Background())
	schema := fmt.Sprintf("hookd_e2e_%d", rand.Uint64()>>1)
	if _, err := admin.Exec(ctx, "CREATE SCHEMA "+schema); err != nil {
		t.Fatal(err)
	}
	defer func() { // before the deferred Close of admin
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if _, err := admin.Exec(ctx, "DROP SCHEMA "+schema+" CASCADE"); err != nil {
			t.Errorf("drop schema %s: %v", schema, err)
		}
	}()
	u, err := url.Parse(base)
	if err != nil {
		t.Fatal(err)
	}
	q := u.Query()
	q.Set("search_path", schema)
	u.RawQuery = q.Encode()
	storage := fmt.Sprintf("storage:\n  driver: postgres\n  dsn: %q\n", u.String())

	read := func() map[string][]storedRow {
		rows, err := admin.Query(context.Background(), "SELECT id, source, body FROM "+schema+".events")
		if err != nil {
			t.Fatalf("read events: %v", err)
		}
		defer rows.Close()
		out := map[string][]storedRow{}
		for rows.Next() {
			var (
				r    storedRow
				body []byte
			)
			if err := rows.Scan(&r.ID, &r.Source, &body); err != nil {
				t.Fatal(err)
			}
			var m struct {
				M string `json:"m"`
			}
			json.Unmarshal(body, &m)
			out[m.M] = append(out[m.M], r)
		}
		if err := rows.Err(); err != nil {
			t.Fatal(err)
		}
		return out
	}
	crashRounds(t, t.TempDir(), loadConfigOn(storage, ""), read)
}
