package cli

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"strings"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"hookd/internal/config"
)

// needService skips t when nothing listens at addr, or fails it when
// HOOKD_TEST_REQUIRE_SERVICES=1 (CI).
func needService(t *testing.T, name, addr string) {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, time.Second)
	if err == nil {
		c.Close()
		return
	}
	msg := fmt.Sprintf("%s is not reachable at %s: %v", name, addr, err)
	if os.Getenv("HOOKD_TEST_REQUIRE_SERVICES") == "1" {
		t.Fatalf("%s; HOOKD_TEST_REQUIRE_SERVICES=1 makes this a failure", msg)
	}
	t.Skip(msg + "; set HOOKD_TEST_REQUIRE_SERVICES=1 to fail instead of skipping")
}

// Broker destinations defined in the configuration file get the events of
// their subscriptions, through the SSRF guard's allow-list: a Kafka topic
// (an in-process fake cluster) and a Redis stream.
func TestBrokerDestinationsFromTheConfigFile(t *testing.T) {
	needService(t, "Redis", "127.0.0.1:6379")
	cluster, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(1, "orders"))
	if err != nil {
		t.Fatal(err)
	}
	defer cluster.Close()
	stream := fmt.Sprintf("hookd-test:cli:%d", rand.Int64())
	rdb := goredis.NewClient(&goredis.Options{Addr: "127.0.0.1:6379"})
	defer rdb.Close()
	defer rdb.Del(context.Background(), stream) // before the deferred Close

	cfg, err := config.Parse([]byte(fmt.Sprintf(`
admin: {tokens: [tok]}
egress: {allow_private: ["127.0.0.0/8"]}
sources:
  - {name: shop, event: {id: "json:id", type: "json:type", key: "json:order"}}
destinations:
  - {name: bus, type: kafka, brokers: [%q], topic: orders, timeout: 10s}
  - {name: feed, type: redis, url: "redis://127.0.0.1:6379/0", stream: %q}
subscriptions:
  - {source: shop, destination: bus}
  - {source: shop, destination: feed}
`, cluster.ListenAddrs()[0], stream)))
	if err != nil {
		t.Fatal(err)
	}
	cfg.Storage.Path = t.TempDir()
	_, base := startApp(t, cfg, nil)
	want := map[string]string{}
	for i := range 3 {
		body := fmt.Sprintf(`{"id":"o-%d","type":"order.paid","order":"77"}`, i)
		want[postEvent(t, base, "shop", body)] = body
	}

	// Redis: one entry per event, with its id and its body.
	waitFor(t, 10*time.Second, "3 entries in the Redis stream", func() bool {
		n, _ := rdb.XLen(context.Background(), stream).Result()
		return n == 3
	})
	entries, err := rdb.XRange(context.Background(), stream, "-", "+").Result()
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		id, _ := e.Values["id"].(string)
		if body, _ := e.Values["body"].(string); want[id] != body {
			t.Errorf("redis entry %v: body %q, want %q", e.Values["id"], body, want[id])
		}
	}

	// Kafka: one record per event, keyed by the event key, acknowledged.
	cl, err := kgo.NewClient(kgo.SeedBrokers(cluster.ListenAddrs()...), kgo.ConsumeTopics("orders"),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	got := map[string]string{}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for len(got) < 3 && ctx.Err() == nil {
		cl.PollFetches(ctx).EachRecord(func(r *kgo.Record) {
			for _, h := range r.Headers {
				if h.Key == "hookd-event-id" {
					got[string(h.Value)] = string(r.Value)
				}
			}
			if string(r.Key) != "77" {
				t.Errorf("record key %q, want the event key 77", r.Key)
			}
		})
	}
	for id, body := range want {
		if got[id] != body {
			t.Errorf("kafka record of %s: %q, want %q", id, got[id], body)
		}
	}
}

// A broker destination created through the API shows its URL without the
// password, and the password is not stored in plain text.
func TestBrokerURLPasswordRedacted(t *testing.T) {
	cfg, err := config.Parse([]byte("admin: {tokens: [tok]}\negress: {allow_private: [\"127.0.0.0/8\"]}\n"))
	if err != nil {
		t.Fatal(err)
	}
	cfg.Storage.Path = t.TempDir()
	_, base := startApp(t, cfg, nil)
	const pw = "s3cret-broker-pw"
	code, v := apiDo(t, "POST", base+"/api/v1/destinations", "tok",
		`{"name": "q", "type": "amqp", "url": "amqp://hookd:`+pw+`@127.0.0.1:5672/", "routing_key": "events"}`)
	if code != 201 {
		t.Fatalf("create: %d %v", code, v)
	}
	def := fmt.Sprint(v["definition"])
	if strings.Contains(def, pw) || !strings.Contains(def, "amqp://hookd:xxxxx@127.0.0.1:5672/") {
		t.Fatalf("definition shown: %s", def)
	}
}
