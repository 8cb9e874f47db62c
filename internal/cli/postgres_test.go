package cli

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net/url"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"hookd/internal/config"
)

// testPostgresDSN returns the DSN of a fresh schema of its own on the
// machine's PostgreSQL (dropped at cleanup); it skips t when there is none,
// or fails it under HOOKD_TEST_REQUIRE_SERVICES=1.
func testPostgresDSN(t *testing.T) string {
	t.Helper()
	base := os.Getenv("HOOKD_TEST_POSTGRES_DSN")
	if base == "" {
		base = "postgres://postgres@127.0.0.1:5432/test?sslmode=disable"
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, err := pgx.Connect(ctx, base)
	if err != nil {
		msg := fmt.Sprintf("PostgreSQL is not reachable (%v)", err)
		if os.Getenv("HOOKD_TEST_REQUIRE_SERVICES") == "1" {
			t.Fatalf("%s; HOOKD_TEST_REQUIRE_SERVICES=1 makes this a failure", msg)
		}
		t.Skip(msg + "; set HOOKD_TEST_REQUIRE_SERVICES=1 to fail instead of skipping")
	}
	defer c.Close(context.Background())
	schema := fmt.Sprintf("hookd_cli_%d", rand.Uint64()>>1)
	if _, err := c.Exec(ctx, "CREATE SCHEMA "+schema); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if c, err := pgx.Connect(ctx, base); err == nil {
			c.Exec(ctx, "DROP SCHEMA "+schema+" CASCADE")
			c.Close(ctx)
		}
	})
	u, err := url.Parse(base)
	if err != nil {
		t.Fatal(err)
	}
	q := u.Query()
	q.Set("search_path", schema)
	u.RawQuery = q.Encode()
	return u.String()
}

// hookd serve on PostgreSQL: it receives, dedupes, delivers and lists
// events, keeps them across a restart, and a second process on the same
// schema serves as a replica.
func TestServeOnPostgres(t *testing.T) {
	dsn := testPostgresDSN(t)
	sink := newHookSink(t)
	yml := fmt.Sprintf(`
admin: {tokens: [tok]}
egress: {allow_private: ["127.0.0.0/8"]}
storage: {driver: postgres, dsn: %q}
sources:
  - {name: shop, event: {id: "json:id", type: "json:type"}}
destinations:
  - {name: sink, type: http, url: %q}
subscriptions:
  - {source: shop, destination: sink}
`, dsn, sink.srv.URL)
	cfg, err := config.Parse([]byte(yml))
	if err != nil {
		t.Fatal(err)
	}
	app, base := startApp(t, cfg, nil)
	first := postEvent(t, base, "shop", `{"id":"o-1","type":"order.paid"}`)
	if again := postEvent(t, base, "shop", `{"id":"o-1","type":"order.paid"}`); again != first {
		t.Fatalf("duplicate got id %s, want %s", again, first)
	}
	second := postEvent(t, base, "shop", `{"id":"o-2","type":"order.paid"}`)
	waitFor(t, 10*time.Second, "both events at the sink", func() bool {
		got := sink.types()
		return got[first] == "order.paid" && got[second] == "order.paid"
	})

	// A second process on the same schema is a replica: it dedupes
	// against the first's events and delivers what it receives.
	cfg2, _ := config.Parse([]byte(yml))
	other, base2 := startApp(t, cfg2, nil)
	if again := postEvent(t, base2, "shop", `{"id":"o-1","type":"order.paid"}`); again != first {
		t.Fatalf("duplicate at the second replica got id %s, want %s", again, first)
	}
	third := postEvent(t, base2, "shop", `{"id":"o-3","type":"order.paid"}`)
	waitFor(t, 10*time.Second, "the second replica's event at the sink", func() bool {
		return sink.types()[third] == "order.paid"
	})
	other.Shutdown(t.Context())

	// After a restart, the events and their deliveries are there.
	app.Shutdown(t.Context())
	cfg3, _ := config.Parse([]byte(yml))
	_, base3 := startApp(t, cfg3, nil)
	code, m := apiDo(t, "GET", base3+"/api/v1/events?source=shop", "tok", "")
	if code != 200 || len(m["data"].([]any)) != 3 {
		t.Fatalf("events after restart: %d %v", code, m)
	}
	_, ev := apiDo(t, "GET", base3+"/api/v1/events/"+first, "tok", "")
	ds, _ := ev["deliveries"].([]any)
	if len(ds) != 1 || ds[0].(map[string]any)["status"] != "succeeded" {
		t.Fatalf("deliveries of %s after restart: %v", first, ev["deliveries"])
	}
}

// On PostgreSQL, hookd keeps no key file of its own: a destination with a
// secret is refused until a master key is configured, and never stored in
// plain text.
func TestPostgresNeedsAMasterKeyForSecrets(t *testing.T) {
	dsn := testPostgresDSN(t)
	cfg, err := config.Parse([]byte(fmt.Sprintf("admin: {tokens: [tok]}\negress: {allow_private: [\"127.0.0.0/8\"]}\nstorage: {driver: postgres, dsn: %q}\n", dsn)))
	if err != nil {
		t.Fatal(err)
	}
	cfg.Storage.Path = t.TempDir() // must stay empty
	_, base := startApp(t, cfg, nil)
	code, m := apiDo(t, "POST", base+"/api/v1/destinations", "tok",
		`{"name": "d", "type": "http", "url": "http://127.0.0.1:9/", "sign": {"secrets": ["whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"]}}`)
	if code != 503 || !strings.Contains(fmt.Sprint(m["error"]), "HOOKD_MASTER_KEY") {
		t.Fatalf("destination with a secret and no master key: %d %v, want 503 naming HOOKD_MASTER_KEY", code, m)
	}
	if entries, _ := os.ReadDir(cfg.Storage.Path); len(entries) != 0 {
		t.Fatalf("a key file was written next to hookd: %v", entries)
	}
}
