package amqp

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	amqp091 "github.com/rabbitmq/amqp091-go"

	"hookd/internal/destination"
	"hookd/internal/destination/destinationtest"
	"hookd/internal/egress"
)

// The tests run against a real RabbitMQ on the default port with the
// default guest account. Each test publishes through the default exchange
// to a queue of its own, so runs never collide.
const (
	brokerAddr = "127.0.0.1:5672"
	brokerURL  = "amqp://guest:guest@" + brokerAddr + "/"
)

// requireBroker skips the test when RabbitMQ is not reachable, or fails it
// when HOOKD_TEST_REQUIRE_SERVICES=1 (CI).
func requireBroker(t *testing.T) {
	t.Helper()
	c, err := net.DialTimeout("tcp", brokerAddr, 2*time.Second)
	if err == nil {
		c.Close()
		return
	}
	msg := fmt.Sprintf("RabbitMQ is not reachable at %s (%v): start it (guest/guest) to run the amqp destination tests", brokerAddr, err)
	if os.Getenv("HOOKD_TEST_REQUIRE_SERVICES") == "1" {
		t.Fatal(msg)
	}
	t.Skip(msg)
}

// adminChannel opens a connection and channel of the test's own, closed
// when the test ends.
func adminChannel(t *testing.T) *amqp091.Channel {
	t.Helper()
	requireBroker(t)
	conn, err := amqp091.Dial(brokerURL)
	if err != nil {
		t.Fatalf("connect to RabbitMQ: %v", err)
	}
	t.Cleanup(func() { conn.Close() })
	ch, err := conn.Channel()
	if err != nil {
		t.Fatalf("open a channel: %v", err)
	}
	return ch
}

var unsafeName = regexp.MustCompile(`[^A-Za-z0-9_.-]+`)

// uniqueName returns a name for a queue or exchange of this test alone.
func uniqueName(t *testing.T, kind string) string {
	t.Helper()
	b := make([]byte, 6)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	name := unsafeName.ReplaceAllString(t.Name(), "-")
	if len(name) > 120 {
		name = name[:120]
	}
	return "hookd-test." + kind + "." + name + "." + hex.EncodeToString(b)
}

// declareQueue declares a non-durable queue called name, deleted when the
// test ends (and by the broker a minute after its last use, should the
// test process die first).
func declareQueue(t *testing.T, ch *amqp091.Channel, name string) {
	t.Helper()
	if _, err := ch.QueueDeclare(name, false, false, false, false, amqp091.Table{"x-expires": int32(60000)}); err != nil {
		t.Fatalf("declare queue %s: %v", name, err)
	}
	t.Cleanup(func() { _, _ = ch.QueueDelete(name, false, false, false) })
}

// queueSink reads back what arrived in one queue, with basic.get. It keeps
// what it read, so Received returns every message so far, in order.
type queueSink struct {
	ch    *amqp091.Channel
	queue string

	mu  sync.Mutex
	got []amqp091.Delivery
}

func newQueueSink(t *testing.T) *queueSink {
	t.Helper()
	ch := adminChannel(t)
	s := &queueSink{ch: ch, queue: uniqueName(t, "q")}
	declareQueue(t, ch, s.queue)
	return s
}

// deliveries drains the queue and returns every message read so far.
func (s *queueSink) deliveries(t *testing.T) []amqp091.Delivery {
	t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	for {
		m, ok, err := s.ch.Get(s.queue, true)
		if err != nil {
			t.Fatalf("basic.get from %s: %v", s.queue, err)
		}
		if !ok {
			break
		}
		s.got = append(s.got, m)
	}
	return slices.Clone(s.got)
}

func (s *queueSink) Received(t *testing.T) []destinationtest.Received {
	t.Helper()
	var out []destinationtest.Received
	for _, m := range s.deliveries(t) {
		out = append(out, destinationtest.Received{EventID: m.MessageId, Body: m.Body})
	}
	return out
}

func openOpts(t *testing.T, env *destination.Env, opts map[string]any) *Destination {
	t.Helper()
	d, err := destination.Open(context.Background(), Type, env, destinationtest.Options(opts))
	if err != nil {
		t.Fatalf("Open(%v): %v", opts, err)
	}
	t.Cleanup(func() {
		if err := d.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return d.(*Destination)
}

func deliver(t *testing.T, d destination.Destination, m *destination.Message) {
	t.Helper()
	res := destinationtest.Deliver(t, d, m)
	if string(res.ResponseExcerpt) != "confirmed" || res.StatusCode != 0 {
		t.Errorf("Deliver: result %+v, want excerpt \"confirmed\"", res)
	}
}

// deliverErr delivers m and returns the error, which must be retriable.
func deliverErr(t *testing.T, d destination.Destination, m *destination.Message) error {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, err := d.Deliver(ctx, m)
	if err == nil {
		t.Fatalf("Deliver(%s): got nil error, want one", m.Event.ID)
	}
	if destination.IsPermanent(err) || destination.IsGone(err) {
		t.Errorf("Deliver: got final error %v, want a retriable one", err)
	}
	if !strings.HasPrefix(err.Error(), "amqp: ") {
		t.Errorf("Deliver: error %q does not start with \"amqp: \"", err)
	}
	if strings.Contains(err.Error(), "s3cret") {
		t.Errorf("Deliver: error %q contains the URL's password", err)
	}
	return err
}

func TestConformance(t *testing.T) {
	requireBroker(t)
	t.Parallel()
	destinationtest.Run(t, func(t *testing.T) (destination.Destination, destinationtest.Sink) {
		sink := newQueueSink(t)
		d, err := destination.Open(context.Background(), Type, &destination.Env{Name: "conformance"},
			destinationtest.Options(map[string]any{"url": brokerURL, "routing_key": sink.queue}))
		if err != nil {
			t.Fatalf("Open: %v", err)
		}
		return d, sink
	})
}

func TestRegistered(t *testing.T) {
	if !slices.Contains(destination.Types(), Type) {
		t.Errorf("destination.Types() = %v, want it to contain %q", destination.Types(), Type)
	}
}

func TestMessageMapping(t *testing.T) {
	t.Parallel()
	sink := newQueueSink(t)
	d := openOpts(t, nil, map[string]any{"url": brokerURL, "routing_key": sink.queue, "timeout": "5s"})
	m := destinationtest.NewMessage([]byte("{\"a\":1}\n\x00\xff"), "application/json; charset=utf-8")
	m.Event.Type = "order.paid.v1"
	m.Event.Source = "shop"
	m.Event.ReceivedAt = time.Date(2024, 5, 6, 7, 8, 9, 500, time.UTC)
	m.Attempt = 3
	deliver(t, d, m)

	got := sink.deliveries(t)
	if len(got) != 1 {
		t.Fatalf("queue holds %d messages, want 1", len(got))
	}
	g := got[0]
	checks := []struct {
		what      string
		got, want any
	}{
		{"body", string(g.Body), string(m.Event.Body)},
		{"exchange", g.Exchange, ""},
		{"routing key", g.RoutingKey, sink.queue},
		{"delivery_mode", g.DeliveryMode, amqp091.Persistent},
		{"message_id", g.MessageId, m.Event.ID},
		{"type", g.Type, "order.paid.v1"},
		{"content_type", g.ContentType, "application/json; charset=utf-8"},
		{"timestamp", g.Timestamp.Unix(), m.Event.ReceivedAt.Unix()},
		{"app_id", g.AppId, "hookd"},
		{"header " + HeaderEventID, g.Headers[HeaderEventID], m.Event.ID},
		{"header " + HeaderEventType, g.Headers[HeaderEventType], "order.paid.v1"},
		{"header " + HeaderSource, g.Headers[HeaderSource], "shop"},
		{"header " + HeaderDeliveryID, g.Headers[HeaderDeliveryID], m.DeliveryID},
		{"header " + HeaderAttempt, g.Headers[HeaderAttempt], int32(3)},
		{"header count", len(g.Headers), 5},
	}
	for _, c := range checks {
		if c.got != c.want {
			t.Errorf("%s: got %#v, want %#v", c.what, c.got, c.want)
		}
	}
}

func TestLongPropertiesAreLeftOut(t *testing.T) {
	t.Parallel()
	sink := newQueueSink(t)
	d := openOpts(t, nil, map[string]any{"url": brokerURL, "routing_key": sink.queue})
	long := strings.Repeat("t", 300)
	m := destinationtest.NewMessage([]byte("x"), "text/plain; x="+long)
	m.Event.Type = long
	deliver(t, d, m)
	got := sink.deliveries(t)
	if len(got) != 1 {
		t.Fatalf("queue holds %d messages, want 1", len(got))
	}
	if got[0].Type != "" || got[0].ContentType != "" {
		t.Errorf("type %q, content_type %q: want both left out (longer than 255 bytes)", got[0].Type, got[0].ContentType)
	}
	if got[0].Headers[HeaderEventType] != long {
		t.Errorf("header %s: want the whole type", HeaderEventType)
	}
}

func TestTypePlaceholder(t *testing.T) {
	t.Parallel()
	ch := adminChannel(t)
	prefix := uniqueName(t, "q") + "."
	const typ = "order.paid.v1"
	declareQueue(t, ch, prefix+typ)
	sink := &queueSink{ch: ch, queue: prefix + typ}
	d := openOpts(t, nil, map[string]any{"url": brokerURL, "routing_key": prefix + "{type}"})
	m := destinationtest.NewMessage([]byte("x"), "text/plain")
	m.Event.Type = typ
	deliver(t, d, m)
	if got := sink.Received(t); len(got) != 1 || got[0].EventID != m.Event.ID {
		t.Errorf("queue %s holds %v, want the event %s", sink.queue, got, m.Event.ID)
	}

	// A routing key too long for AMQP can never be published.
	m = destinationtest.NewMessage([]byte("x"), "text/plain")
	m.Event.Type = strings.Repeat("t", 300)
	_, err := d.Deliver(context.Background(), m)
	if err == nil || !destination.IsPermanent(err) {
		t.Errorf("Deliver with a routing key of %d bytes: got %v, want a permanent error", len(prefix)+300, err)
	}
}

func TestUnroutable(t *testing.T) {
	t.Parallel()
	ch := adminChannel(t)
	queue := uniqueName(t, "missing")
	d := openOpts(t, nil, map[string]any{"url": brokerURL, "routing_key": queue})
	err := deliverErr(t, d, destinationtest.NewMessage([]byte("x"), "text/plain"))
	want := fmt.Sprintf("amqp: unroutable: no queue bound for exchange \"\" (the default exchange) key %q", queue)
	if !strings.HasPrefix(err.Error(), want) {
		t.Errorf("Deliver to a key no queue is bound for: got %q, want it to start with %q", err, want)
	}

	// Once the queue exists, the same destination delivers: the return was
	// consumed with its own publish.
	declareQueue(t, ch, queue)
	sink := &queueSink{ch: ch, queue: queue}
	m := destinationtest.NewMessage([]byte("y"), "text/plain")
	deliver(t, d, m)
	if got := sink.Received(t); len(got) != 1 || got[0].EventID != m.Event.ID {
		t.Errorf("queue holds %v, want only %s", got, m.Event.ID)
	}

	// Without mandatory, the broker drops the message and confirms it.
	quiet := openOpts(t, nil, map[string]any{"url": brokerURL, "routing_key": uniqueName(t, "missing"), "mandatory": false})
	deliver(t, quiet, destinationtest.NewMessage([]byte("z"), "text/plain"))
}

// TestConcurrentReturnsAndConfirms publishes in parallel, half of the
// messages to a queue and half to keys no queue is bound for: each
// Deliver must get its own outcome.
func TestConcurrentReturnsAndConfirms(t *testing.T) {
	t.Parallel()
	sink := newQueueSink(t)
	d := openOpts(t, nil, map[string]any{"url": brokerURL, "routing_key": "{type}"})
	const n = 50
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		sent = map[string]bool{}
	)
	for i := range n {
		wg.Go(func() {
			m := destinationtest.NewMessage(fmt.Appendf(nil, "n=%d", i), "text/plain")
			routable := i%2 == 0
			m.Event.Type = sink.queue
			if !routable {
				m.Event.Type = sink.queue + ".nowhere." + fmt.Sprint(i)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			_, err := d.Deliver(ctx, m)
			switch {
			case routable && err != nil:
				t.Errorf("Deliver %d (routable): %v", i, err)
			case !routable && (err == nil || !strings.Contains(err.Error(), "unroutable") || !strings.Contains(err.Error(), m.Event.Type)):
				t.Errorf("Deliver %d (unroutable, key %s): got %v, want its own unroutable error", i, m.Event.Type, err)
			case routable:
				mu.Lock()
				sent[m.Event.ID] = true
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	got := sink.Received(t)
	if len(got) != n/2 {
		t.Errorf("queue holds %d messages, want %d", len(got), n/2)
	}
	for _, r := range got {
		if !sent[r.EventID] {
			t.Errorf("queue holds %s, which was not confirmed or not routable", r.EventID)
		}
		delete(sent, r.EventID)
	}
	if len(sent) != 0 {
		t.Errorf("%d confirmed messages are missing from the queue", len(sent))
	}
}

func TestConcurrentDelivers(t *testing.T) {
	t.Parallel()
	sink := newQueueSink(t)
	d := openOpts(t, nil, map[string]any{"url": brokerURL, "routing_key": sink.queue})
	const n = 50
	ids := make([]string, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			m := destinationtest.NewMessage(fmt.Appendf(nil, "n=%d", i), "text/plain")
			ids[i] = m.Event.ID
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			if _, err := d.Deliver(ctx, m); err != nil {
				t.Errorf("Deliver %d: %v", i, err)
			}
		})
	}
	wg.Wait()
	got := map[string]int{}
	for _, r := range sink.Received(t) {
		got[r.EventID]++
	}
	for _, id := range ids {
		if got[id] != 1 {
			t.Errorf("event %s is in the queue %d times, want once", id, got[id])
		}
	}
	if len(got) != n {
		t.Errorf("queue holds %d distinct events, want %d", len(got), n)
	}
	d.mu.Lock()
	c := d.conn
	d.mu.Unlock()
	if c == nil {
		t.Fatal("no connection after the deliveries")
	}
	c.mu.Lock()
	idle := len(c.idle)
	c.mu.Unlock()
	if idle < 1 || idle > maxChannels {
		t.Errorf("%d idle channels, want 1 to %d", idle, maxChannels)
	}
}

func TestOptions(t *testing.T) {
	t.Parallel()
	const pw = "s3cret"
	cases := []struct {
		name string
		opts map[string]any
		want string // prefix of the error
		has  string // also in the error
	}{
		{"NoURL", map[string]any{"routing_key": "k"}, "url: required", ""},
		{"BlankURL", map[string]any{"url": "  ", "routing_key": "k"}, "url: required", ""},
		{"HTTPScheme", map[string]any{"url": "http://u:" + pw + "@h/", "routing_key": "k"}, "url: ", `"http" is not supported`},
		{"NotAbsolute", map[string]any{"url": "rabbit:5672", "routing_key": "k"}, "url: ", "not supported"},
		{"NoScheme", map[string]any{"url": "//u:" + pw + "@h/", "routing_key": "k"}, "url: not absolute", ""},
		{"NoHost", map[string]any{"url": "amqp:///vhost", "routing_key": "k"}, "url: no host", ""},
		{"BadEscapeInPassword", map[string]any{"url": "amqp://u:" + pw + "%zz@h/", "routing_key": "k"}, "url: invalid", ""},
		{"SlashInPassword", map[string]any{"url": "amqp://u:" + pw + "/x@h/", "routing_key": "k"}, "url: ", ""},
		{"Fragment", map[string]any{"url": "amqp://u:" + pw + "@h/#x", "routing_key": "k"}, "url: ", "fragment"},
		{"BadHeartbeat", map[string]any{"url": "amqp://u:" + pw + "@h/?heartbeat=x", "routing_key": "k"}, "url: heartbeat", ""},
		{"PortOutOfRange", map[string]any{"url": "amqp://u:" + pw + "@h:70000/", "routing_key": "k"}, "url: port 70000", ""},
		{"Whitespace", map[string]any{"url": "amqp://u:" + pw + "@h/ x", "routing_key": "k"}, "url: ", ""},
		{"NoRoutingKey", map[string]any{"url": brokerURL}, "routing_key: required", ""},
		{"BlankRoutingKey", map[string]any{"url": brokerURL, "routing_key": " "}, "routing_key: required", ""},
		{"UnknownPlaceholder", map[string]any{"url": brokerURL, "routing_key": "a.{source}"}, "routing_key: unknown placeholder {source}", ""},
		{"LongRoutingKey", map[string]any{"url": brokerURL, "routing_key": strings.Repeat("k", 256)}, "routing_key: longer than 255 bytes", ""},
		{"ControlInRoutingKey", map[string]any{"url": brokerURL, "routing_key": "a\nb"}, "routing_key: ", "control character"},
		{"LongExchange", map[string]any{"url": brokerURL, "routing_key": "k", "exchange": strings.Repeat("x", 256)}, "exchange: longer than 255 bytes", ""},
		{"SpacedExchange", map[string]any{"url": brokerURL, "routing_key": "k", "exchange": " x"}, "exchange: ", "spaces"},
		{"ZeroTimeout", map[string]any{"url": brokerURL, "routing_key": "k", "timeout": "0s"}, "timeout: must be positive", ""},
		{"NegativeTimeout", map[string]any{"url": brokerURL, "routing_key": "k", "timeout": "-1s"}, "timeout: must be positive", ""},
		{"BadTimeout", map[string]any{"url": brokerURL, "routing_key": "k", "timeout": "soon"}, "", "invalid duration"},
		{"BadMandatory", map[string]any{"url": brokerURL, "routing_key": "k", "mandatory": "maybe"}, "", "bool"},
		{"UnknownKey", map[string]any{"url": brokerURL, "routing_key": "k", "queue": "q"}, "", "queue"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			d, err := destination.Open(context.Background(), Type, nil, destinationtest.Options(c.opts))
			if err == nil {
				d.Close()
				t.Fatalf("Open(%v): got nil error, want %q…", c.opts, c.want)
			}
			if !strings.HasPrefix(err.Error(), c.want) || !strings.Contains(err.Error(), c.has) {
				t.Errorf("Open: got %q, want it to start with %q and contain %q", err, c.want, c.has)
			}
			if strings.Contains(err.Error(), pw) {
				t.Errorf("Open: error %q contains the URL's password", err)
			}
		})
	}

	valid := []struct {
		name  string
		opts  map[string]any
		check func(t *testing.T, s *settings)
	}{
		{"Defaults", map[string]any{"url": "amqp://u:" + pw + "@rabbit/", "routing_key": "k"}, func(t *testing.T, s *settings) {
			if s.timeout != DefaultTimeout || !s.mandatory || s.exchange != "" || s.routingKey != "k" {
				t.Errorf("settings %+v: want timeout 10s, mandatory, exchange \"\", routing key k", s)
			}
			if s.redacted != "amqp://rabbit:5672/" {
				t.Errorf("redacted URL %q, want amqp://rabbit:5672/", s.redacted)
			}
		}},
		{"AllSet", map[string]any{"url": "amqps://u:" + pw + "@rabbit:5999/prod?heartbeat=5", "routing_key": "ev.{type}",
			"exchange": "events", "timeout": "3s", "mandatory": false}, func(t *testing.T, s *settings) {
			if s.timeout != 3*time.Second || s.mandatory || s.exchange != "events" || !s.keyHasType {
				t.Errorf("settings %+v", s)
			}
			if got := s.routingKeyFor("a.b"); got != "ev.a.b" {
				t.Errorf("routing key for type a.b: %q, want ev.a.b", got)
			}
			if s.redacted != "amqps://rabbit:5999/prod" {
				t.Errorf("redacted URL %q, want amqps://rabbit:5999/prod", s.redacted)
			}
		}},
		{"IPv6", map[string]any{"url": "amqp://[::1]:5673/%2Fv", "routing_key": "k"}, func(t *testing.T, s *settings) {
			if s.redacted != "amqp://[::1]:5673/%2Fv" {
				t.Errorf("redacted URL %q", s.redacted)
			}
		}},
	}
	for _, c := range valid {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			d, err := destination.Open(context.Background(), Type, nil, destinationtest.Options(c.opts))
			if err != nil {
				t.Fatalf("Open(%v): %v", c.opts, err)
			}
			defer d.Close()
			c.check(t, d.(*Destination).s)
		})
	}
}

// fakeResolver answers every name with addrs.
type fakeResolver struct{ addrs []netip.Addr }

func (r fakeResolver) LookupNetIP(context.Context, string, string) ([]netip.Addr, error) {
	return r.addrs, nil
}

func TestEgress(t *testing.T) {
	t.Parallel()
	sink := newQueueSink(t)
	guard := func(t *testing.T, allow []string) *egress.Guard {
		g, err := egress.NewGuard(allow, nil)
		if err != nil {
			t.Fatal(err)
		}
		g.Resolver = fakeResolver{[]netip.Addr{netip.MustParseAddr("127.0.0.1")}}
		return g
	}
	// rabbit.test resolves (through the fake resolver) to 127.0.0.1.
	const byName = "amqp://guest:guest@rabbit.test:5672/"

	t.Run("LoopbackLiteralRefusedAtOpen", func(t *testing.T) {
		env := &destination.Env{Name: "q", Egress: guard(t, nil)}
		_, err := destination.Open(context.Background(), Type, env,
			destinationtest.Options(map[string]any{"url": "amqp://guest:s3cret@127.0.0.1:5672/", "routing_key": sink.queue}))
		if err == nil || !strings.HasPrefix(err.Error(), "url: ") || !strings.Contains(err.Error(), "loopback") ||
			!errors.Is(err, egress.ErrRefused) || strings.Contains(err.Error(), "s3cret") {
			t.Errorf("Open with a loopback broker: got %v, want a url: error saying loopback", err)
		}
	})
	t.Run("LoopbackNameRefusedAtDial", func(t *testing.T) {
		d := openOpts(t, &destination.Env{Name: "q", Egress: guard(t, nil)},
			map[string]any{"url": byName, "routing_key": sink.queue})
		err := deliverErr(t, d, destinationtest.NewMessage([]byte("x"), "text/plain"))
		if !errors.Is(err, egress.ErrRefused) || !strings.Contains(err.Error(), "loopback") {
			t.Errorf("Deliver to a broker name that resolves to loopback: got %v, want a refusal", err)
		}
	})
	t.Run("AllowedLiteral", func(t *testing.T) {
		d := openOpts(t, &destination.Env{Name: "q", Egress: guard(t, []string{"127.0.0.0/8"})},
			map[string]any{"url": brokerURL, "routing_key": sink.queue})
		deliver(t, d, destinationtest.NewMessage([]byte("x"), "text/plain"))
	})
	t.Run("AllowedName", func(t *testing.T) {
		d := openOpts(t, &destination.Env{Name: "q", Egress: guard(t, []string{"127.0.0.0/8"})},
			map[string]any{"url": byName, "routing_key": sink.queue})
		deliver(t, d, destinationtest.NewMessage([]byte("x"), "text/plain"))
	})
	if t.Failed() {
		return
	}
	if got := sink.Received(t); len(got) != 2 {
		t.Errorf("queue holds %d messages, want the 2 allowed ones", len(got))
	}
}

// closedPort returns a local address nothing listens on.
func closedPort(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return addr
}

func TestBrokerDown(t *testing.T) {
	t.Parallel()
	url := "amqp://guest:s3cret@" + closedPort(t) + "/"
	d := openOpts(t, nil, map[string]any{"url": url, "routing_key": "k", "timeout": "1s"})
	start := time.Now()
	err := deliverErr(t, d, destinationtest.NewMessage([]byte("x"), "text/plain"))
	if el := time.Since(start); el > 2*time.Second {
		t.Errorf("Deliver with the broker down took %s, want less than the 1s timeout (+1s)", el)
	}
	if !strings.HasPrefix(err.Error(), "amqp: connect to amqp://127.0.0.1:") {
		t.Errorf("Deliver with the broker down: got %q, want amqp: connect to …", err)
	}
}

// TestSilentBroker: a server that accepts connections but never speaks
// AMQP. Deliver gives up at the timeout, and Close does not wait for the
// handshake.
func TestSilentBroker(t *testing.T) {
	t.Parallel()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var conns sync.WaitGroup
	t.Cleanup(func() { l.Close(); conns.Wait() })
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			conns.Go(func() { io.Copy(io.Discard, c); c.Close() })
		}
	}()
	d := openOpts(t, nil, map[string]any{"url": "amqp://guest:s3cret@" + l.Addr().String() + "/", "routing_key": "k", "timeout": "500ms"})
	start := time.Now()
	err = deliverErr(t, d, destinationtest.NewMessage([]byte("x"), "text/plain"))
	if el := time.Since(start); el > 1500*time.Millisecond {
		t.Errorf("Deliver to a silent broker took %s, want about the 500ms timeout", el)
	}
	// The attempt's timeout and the handshake's deadline end at about the
	// same time: either may report.
	if !strings.Contains(err.Error(), "connect") {
		t.Errorf("Deliver to a silent broker: got %v, want an error while connecting", err)
	}

	// A second attempt is still in its handshake when Close is called.
	d2 := openOpts(t, nil, map[string]any{"url": "amqp://" + l.Addr().String() + "/", "routing_key": "k", "timeout": "5s"})
	errc := make(chan error, 1)
	go func() {
		_, err := d2.Deliver(context.Background(), destinationtest.NewMessage([]byte("x"), "text/plain"))
		errc <- err
	}()
	time.Sleep(100 * time.Millisecond)
	start = time.Now()
	if err := d2.Close(); err != nil {
		t.Errorf("Close: %v", err)
	}
	if el := time.Since(start); el > time.Second {
		t.Errorf("Close during a handshake took %s, want it prompt", el)
	}
	if err := <-errc; err == nil || destination.IsPermanent(err) {
		t.Errorf("Deliver cut short by Close: got %v, want a retriable error", err)
	}
}

// proxy forwards TCP connections to the broker; drop cuts them all, and
// while down it closes new ones at once.
type proxy struct {
	l net.Listener

	mu    sync.Mutex
	down  bool
	conns []net.Conn
	wg    sync.WaitGroup
}

func newProxy(t *testing.T) *proxy {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &proxy{l: l}
	t.Cleanup(func() {
		l.Close()
		p.drop()
		p.wg.Wait()
	})
	p.wg.Go(func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			p.mu.Lock()
			down := p.down
			if !down {
				p.conns = append(p.conns, c)
			}
			p.mu.Unlock()
			if down {
				c.Close()
				continue
			}
			p.wg.Go(func() { p.forward(c) })
		}
	})
	return p
}

func (p *proxy) forward(c net.Conn) {
	b, err := net.Dial("tcp", brokerAddr)
	if err != nil {
		c.Close()
		return
	}
	p.mu.Lock()
	p.conns = append(p.conns, b)
	p.mu.Unlock()
	done := make(chan struct{}, 2)
	go func() { io.Copy(b, c); done <- struct{}{} }()
	go func() { io.Copy(c, b); done <- struct{}{} }()
	<-done
	c.Close()
	b.Close()
	<-done
}

// drop closes every connection in progress.
func (p *proxy) drop() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, c := range p.conns {
		c.Close()
	}
	p.conns = nil
}

func (p *proxy) setDown(down bool) {
	p.mu.Lock()
	p.down = down
	p.mu.Unlock()
}

// waitDisconnected waits until d has noticed that its connection is gone.
func waitDisconnected(t *testing.T, d *Destination) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		d.mu.Lock()
		c := d.conn
		d.mu.Unlock()
		if c == nil {
			return
		}
	}
	t.Fatal("the destination did not notice that its connection was closed")
}

func TestReconnect(t *testing.T) {
	t.Parallel()
	sink := newQueueSink(t)
	p := newProxy(t)
	d := openOpts(t, nil, map[string]any{"url": "amqp://guest:guest@" + p.l.Addr().String() + "/", "routing_key": sink.queue, "timeout": "2s"})
	var want []string
	send := func() {
		t.Helper()
		m := destinationtest.NewMessage([]byte("x"), "text/plain")
		deliver(t, d, m)
		want = append(want, m.Event.ID)
	}
	send()

	// The connection is cut (a broker restart, a network failure): the
	// destination notices and the next Deliver reconnects.
	p.drop()
	waitDisconnected(t, d)
	send()

	// The broker is unreachable for a while: Deliver fails, then works
	// again once it is back.
	p.setDown(true)
	p.drop()
	waitDisconnected(t, d)
	err := deliverErr(t, d, destinationtest.NewMessage([]byte("lost"), "text/plain"))
	if !strings.HasPrefix(err.Error(), "amqp: connect to ") {
		t.Errorf("Deliver with the broker down: got %q, want amqp: connect to …", err)
	}
	p.setDown(false)
	send()

	// A connection cut that the destination has not noticed yet: the
	// attempt finds it closed before publishing and reconnects once by
	// itself, or fails with a retriable error.
	p.drop()
	m := destinationtest.NewMessage([]byte("x"), "text/plain")
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, err := d.Deliver(ctx, m); err == nil {
		want = append(want, m.Event.ID)
	} else if destination.IsPermanent(err) || !strings.HasPrefix(err.Error(), "amqp: ") {
		t.Errorf("Deliver right after the connection was cut: got %v, want nil or a retriable error", err)
	}
	send()

	var got []string
	for _, r := range sink.Received(t) {
		got = append(got, r.EventID)
	}
	for _, id := range want {
		if !slices.Contains(got, id) {
			t.Errorf("confirmed event %s is not in the queue (queue: %v)", id, got)
		}
	}
}

// TestChannelErrorRecovers: publishing to a missing exchange makes the
// broker close the channel; the attempt fails, and once the exchange is
// declared the next Deliver works.
func TestChannelErrorRecovers(t *testing.T) {
	t.Parallel()
	sink := newQueueSink(t)
	exchange := uniqueName(t, "x")
	d := openOpts(t, nil, map[string]any{"url": brokerURL, "exchange": exchange, "routing_key": sink.queue})
	for range 2 {
		err := deliverErr(t, d, destinationtest.NewMessage([]byte("x"), "text/plain"))
		if !strings.Contains(err.Error(), "404") || !strings.Contains(err.Error(), exchange) {
			t.Errorf("Deliver to a missing exchange: got %q, want the broker's 404 naming it", err)
		}
	}

	if err := sink.ch.ExchangeDeclare(exchange, "direct", false, true, false, false, nil); err != nil {
		t.Fatalf("declare exchange: %v", err)
	}
	t.Cleanup(func() { _ = sink.ch.ExchangeDelete(exchange, false, false) })
	if err := sink.ch.QueueBind(sink.queue, sink.queue, exchange, false, nil); err != nil {
		t.Fatalf("bind queue: %v", err)
	}
	m := destinationtest.NewMessage([]byte("y"), "text/plain")
	deliver(t, d, m)
	if got := sink.Received(t); len(got) != 1 || got[0].EventID != m.Event.ID {
		t.Errorf("queue holds %v, want only %s", got, m.Event.ID)
	}
}

func TestCloseWaitsForConfirms(t *testing.T) {
	t.Parallel()
	sink := newQueueSink(t)
	d, err := destination.Open(context.Background(), Type, nil,
		destinationtest.Options(map[string]any{"url": brokerURL, "routing_key": sink.queue}))
	if err != nil {
		t.Fatal(err)
	}
	var (
		wg sync.WaitGroup
		mu sync.Mutex
		ok []string
	)
	for range 8 {
		wg.Go(func() {
			for range 10 {
				m := destinationtest.NewMessage([]byte("x"), "text/plain")
				_, err := d.Deliver(context.Background(), m)
				if err == nil {
					mu.Lock()
					ok = append(ok, m.Event.ID)
					mu.Unlock()
				} else if destination.IsPermanent(err) {
					t.Errorf("Deliver during Close: final error %v", err)
				}
			}
		})
	}
	time.Sleep(5 * time.Millisecond)
	if err := d.Close(); err != nil {
		t.Errorf("Close: %v", err)
	}
	wg.Wait()
	in := map[string]bool{}
	for _, r := range sink.Received(t) {
		in[r.EventID] = true
	}
	for _, id := range ok {
		if !in[id] {
			t.Errorf("event %s: Deliver returned nil but it is not in the queue", id)
		}
	}
}
