package redis

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"hookd"
	"hookd/internal/destination"
	"hookd/internal/destination/destinationtest"
	"hookd/internal/egress"
)

// These tests run against a real Redis at redisAddr. Without one they skip,
// unless HOOKD_TEST_REQUIRE_SERVICES=1 (CI), where they fail. Every test
// writes only to keys of its own under keyPrefix, deleted when it ends.

const (
	redisAddr = "127.0.0.1:6379"
	redisURL  = "redis://" + redisAddr + "/0"
	keyPrefix = "hookd-test:"
)

var (
	reachOnce sync.Once
	reachErr  error
)

// needRedis skips (or, with HOOKD_TEST_REQUIRE_SERVICES=1, fails) t when
// no Redis answers at redisAddr, and returns a client for checking what
// arrived, closed when t ends.
func needRedis(t *testing.T) *goredis.Client {
	t.Helper()
	reachOnce.Do(func() {
		c := goredis.NewClient(&goredis.Options{Addr: redisAddr, MaxRetries: -1, DialerRetries: 1})
		defer c.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		reachErr = c.Ping(ctx).Err()
	})
	if reachErr != nil {
		msg := fmt.Sprintf("no Redis at %s (%v): start one (redis-server --port 6379) to run the redis destination tests", redisAddr, reachErr)
		if os.Getenv("HOOKD_TEST_REQUIRE_SERVICES") == "1" {
			t.Fatalf("%s; HOOKD_TEST_REQUIRE_SERVICES=1 makes this a failure", msg)
		}
		t.Skip(msg + "; set HOOKD_TEST_REQUIRE_SERVICES=1 to fail instead of skipping")
	}
	c := goredis.NewClient(&goredis.Options{Addr: redisAddr})
	t.Cleanup(func() { c.Close() })
	return c
}

var unsafeKeyChars = regexp.MustCompile(`[^A-Za-z0-9_-]+`)

// testKey returns a key unique to this run of t, under keyPrefix. Every
// key that starts with it is deleted when t ends, so derived keys
// (key + ":…") are cleaned up too.
func testKey(t *testing.T, c *goredis.Client) string {
	t.Helper()
	var b [6]byte
	if _, err := rand.Read(b[:]); err != nil {
		t.Fatal(err)
	}
	key := keyPrefix + unsafeKeyChars.ReplaceAllString(t.Name(), "_") + ":" + hex.EncodeToString(b[:])
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		keys, err := c.Keys(ctx, key+"*").Result() // key has no glob characters
		if err != nil {
			t.Errorf("cleanup: list %s*: %v", key, err)
			return
		}
		if len(keys) > 0 {
			if err := c.Del(ctx, keys...).Err(); err != nil {
				t.Errorf("cleanup: delete %v: %v", keys, err)
			}
		}
	})
	return key
}

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// streamSink reads a stream back with XRANGE - +.
type streamSink struct {
	c   *goredis.Client
	key string
}

func (s streamSink) Received(t *testing.T) []destinationtest.Received {
	t.Helper()
	msgs, err := s.c.XRange(ctxT(t), s.key, "-", "+").Result()
	if err != nil {
		t.Fatalf("XRANGE %s: %v", s.key, err)
	}
	out := make([]destinationtest.Received, 0, len(msgs))
	for _, m := range msgs {
		id, _ := m.Values["id"].(string)
		body, ok := m.Values["body"].(string)
		if !ok {
			t.Errorf("entry %s: body is %T, want a string", m.ID, m.Values["body"])
		}
		out = append(out, destinationtest.Received{EventID: id, Body: []byte(body)})
	}
	return out
}

// openOpts opens a destination, closed when t ends.
func openOpts(t *testing.T, env *destination.Env, opts map[string]any) *Destination {
	t.Helper()
	d, err := destination.Open(context.Background(), Type, env, destinationtest.Options(opts))
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() {
		if err := d.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return d.(*Destination)
}

// checkRetriable fails t unless err is a retriable error.
func checkRetriable(t *testing.T, err error) {
	t.Helper()
	if err == nil {
		t.Fatal("Deliver: got nil error, want one")
	}
	if destination.IsPermanent(err) || destination.IsGone(err) {
		t.Errorf("Deliver: got final error %v, want a retriable one", err)
	}
}

func TestConformance(t *testing.T) {
	t.Parallel()
	c := needRedis(t)
	destinationtest.Run(t, func(t *testing.T) (destination.Destination, destinationtest.Sink) {
		key := testKey(t, c)
		d, err := destination.Open(context.Background(), Type, nil,
			destinationtest.Options(map[string]any{"url": redisURL, "stream": key}))
		if err != nil {
			t.Fatalf("Open: %v", err)
		}
		return d, streamSink{c, key}
	})
}

// TestEgressConformance runs the suite through a guard that allows
// loopback, so that every connection goes through the guard's dialer.
func TestEgressConformance(t *testing.T) {
	t.Parallel()
	c := needRedis(t)
	destinationtest.Run(t, func(t *testing.T) (destination.Destination, destinationtest.Sink) {
		key := testKey(t, c)
		env, _ := guardEnv(t, []string{"127.0.0.0/8"}, nil)
		d, err := destination.Open(context.Background(), Type, env,
			destinationtest.Options(map[string]any{"url": redisURL, "stream": key}))
		if err != nil {
			t.Fatalf("Open: %v", err)
		}
		return d, streamSink{c, key}
	})
}

func TestRegistered(t *testing.T) {
	if !slices.Contains(destination.Types(), Type) {
		t.Errorf("destination.Types() = %v, want it to contain %q", destination.Types(), Type)
	}
}

// testMessage is a message with every field set and a binary body.
func testMessage() *destination.Message {
	body := make([]byte, 0, 300)
	for i := range 256 {
		body = append(body, byte(i))
	}
	body = append(body, "\r\n\xff\xfe not UTF-8 \x00"...)
	return &destination.Message{
		Event: &hookd.Event{
			Seq:         42,
			ID:          "evt_01J0000000000000000000000A",
			Source:      "stripe",
			ExternalID:  "ext_1",
			Type:        "invoice.paid.v1",
			Key:         "cus_9",
			OccurredAt:  time.Date(2024, 5, 6, 9, 8, 7, 123456789, time.FixedZone("CEST", 2*3600)),
			ReceivedAt:  time.Date(2024, 5, 6, 7, 8, 9, 500, time.FixedZone("X", -3600)),
			RequestID:   "req_01J0000000000000000000000A",
			ContentType: "application/octet-stream",
			Headers:     map[string][]string{"X-Secret": {"not written"}},
			Body:        body,
		},
		DeliveryID: "dlv_01J0000000000000000000000B",
		Attempt:    3,
	}
}

// entry is one stream entry with its fields in order.
type entry struct {
	id     string
	fields []string // field, value, field, value…
}

// rawEntries reads key with a raw XRANGE, which keeps the fields' order.
func rawEntries(t *testing.T, c *goredis.Client, key string) []entry {
	t.Helper()
	res, err := c.Do(ctxT(t), "XRANGE", key, "-", "+").Slice()
	if err != nil {
		t.Fatalf("XRANGE %s: %v", key, err)
	}
	var out []entry
	for _, r := range res {
		pair, ok := r.([]any)
		if !ok || len(pair) != 2 {
			t.Fatalf("XRANGE entry: %#v, want [id, fields]", r)
		}
		id, _ := pair[0].(string)
		fv, ok := pair[1].([]any)
		if !ok {
			t.Fatalf("XRANGE entry %s fields: %T, want an array", id, pair[1])
		}
		e := entry{id: id}
		for _, f := range fv {
			s, ok := f.(string)
			if !ok {
				t.Fatalf("XRANGE entry %s: field %#v is %T, want a string", id, f, f)
			}
			e.fields = append(e.fields, s)
		}
		out = append(out, e)
	}
	return out
}

func TestEntryFields(t *testing.T) {
	t.Parallel()
	c := needRedis(t)
	key := testKey(t, c)
	d := openOpts(t, nil, map[string]any{"url": redisURL, "stream": key})

	m := testMessage()
	res := destinationtest.Deliver(t, d, m)
	noKey := testMessage()
	noKey.Event.Key = ""
	noKey.Event.Body = nil
	noKey.Event.ContentType = ""
	noKey.Attempt = 1
	res2 := destinationtest.Deliver(t, d, noKey)

	got := rawEntries(t, c, key)
	if len(got) != 2 {
		t.Fatalf("stream holds %d entries, want 2", len(got))
	}
	want := []string{
		"id", "evt_01J0000000000000000000000A",
		"type", "invoice.paid.v1",
		"source", "stripe",
		"key", "cus_9",
		"delivery_id", "dlv_01J0000000000000000000000B",
		"attempt", "3",
		"content_type", "application/octet-stream",
		"received_at", "2024-05-06T08:08:09.0000005Z",
		"body", string(m.Event.Body),
	}
	if !slices.Equal(got[0].fields, want) {
		t.Errorf("entry fields:\n got %q\nwant %q", got[0].fields, want)
	}
	if b := []byte(got[0].fields[len(got[0].fields)-1]); !bytes.Equal(b, m.Event.Body) {
		t.Errorf("body: %d bytes, want the %d bytes sent exactly", len(b), len(m.Event.Body))
	}
	want2 := []string{
		"id", "evt_01J0000000000000000000000A",
		"type", "invoice.paid.v1",
		"source", "stripe",
		"delivery_id", "dlv_01J0000000000000000000000B",
		"attempt", "1",
		"content_type", "",
		"received_at", "2024-05-06T08:08:09.0000005Z",
		"body", "",
	}
	if !slices.Equal(got[1].fields, want2) {
		t.Errorf("entry without key:\n got %q\nwant %q", got[1].fields, want2)
	}

	for i, r := range []destination.Result{res, res2} {
		if r.StatusCode != 0 || string(r.ResponseExcerpt) != got[i].id {
			t.Errorf("Deliver %d: result %+v (excerpt %q), want the entry id %q", i+1, r, r.ResponseExcerpt, got[i].id)
		}
	}
	if !regexp.MustCompile(`^[0-9]+-[0-9]+$`).MatchString(got[0].id) {
		t.Errorf("entry id %q is not one Redis generated", got[0].id)
	}
}

func TestStreamPlaceholders(t *testing.T) {
	t.Parallel()
	c := needRedis(t)
	base := testKey(t, c)
	d := openOpts(t, nil, map[string]any{"url": redisURL, "stream": base + ":{source}:{type}"})
	send := []struct{ source, typ, key string }{
		{"shop", "order.paid", base + ":shop:order.paid"},
		{"shop", "order.paid", base + ":shop:order.paid"},
		{"crm", "contact.created", base + ":crm:contact.created"},
		// One pass: a value that looks like a placeholder is not expanded.
		{"shop", "{source}", base + ":shop:{source}"},
	}
	want := map[string]int{}
	for _, s := range send {
		m := destinationtest.NewMessage([]byte("x"), "text/plain")
		m.Event.Source, m.Event.Type = s.source, s.typ
		destinationtest.Deliver(t, d, m)
		want[s.key]++
	}
	for key, n := range want {
		if got := c.XLen(ctxT(t), key).Val(); got != int64(n) {
			t.Errorf("XLEN %s = %d, want %d", key, got, n)
		}
	}
	keys, _ := c.Keys(ctxT(t), base+"*").Result()
	if len(keys) != len(want) {
		t.Errorf("keys written: %q, want the %d above", keys, len(want))
	}
}

func TestMaxLenExact(t *testing.T) {
	t.Parallel()
	c := needRedis(t)
	key := testKey(t, c)
	d := openOpts(t, nil, map[string]any{"url": redisURL, "stream": key, "maxlen": 10, "maxlen_exact": true})
	var ids []string
	for range 50 {
		m := destinationtest.NewMessage([]byte("x"), "text/plain")
		destinationtest.Deliver(t, d, m)
		ids = append(ids, m.Event.ID)
	}
	got := streamSink{c, key}.Received(t)
	if len(got) != 10 {
		t.Fatalf("stream holds %d entries, want exactly 10", len(got))
	}
	for i, r := range got {
		if want := ids[40+i]; r.EventID != want {
			t.Errorf("entry %d: event %s, want %s (the last 10, in order)", i, r.EventID, want)
		}
	}
}

// TestMaxLenApprox: MAXLEN ~ N trims whole nodes, so after many entries
// the stream holds between N and N + stream-node-max-entries.
func TestMaxLenApprox(t *testing.T) {
	t.Parallel()
	c := needRedis(t)
	key := testKey(t, c)
	nodeMax := int64(100) // Redis's default
	if cfg, err := c.ConfigGet(ctxT(t), "stream-node-max-entries").Result(); err == nil {
		if n, err := strconv.ParseInt(cfg["stream-node-max-entries"], 10, 64); err == nil && n > 0 {
			nodeMax = n
		}
	}
	const maxLen = 10
	sent := 2*nodeMax + 50
	d := openOpts(t, nil, map[string]any{"url": redisURL, "stream": key, "maxlen": maxLen})
	for range sent {
		destinationtest.Deliver(t, d, destinationtest.NewMessage([]byte(`{"pad":"0123456789"}`), "application/json"))
	}
	n := c.XLen(ctxT(t), key).Val()
	if n < maxLen || n > maxLen+nodeMax || n >= sent {
		t.Errorf("after %d entries with maxlen ~%d: XLEN %d, want %d to %d", sent, maxLen, n, maxLen, maxLen+nodeMax)
	}
}

func TestWrongType(t *testing.T) {
	t.Parallel()
	c := needRedis(t)
	key := testKey(t, c)
	if err := c.Set(ctxT(t), key, "not a stream", 0).Err(); err != nil {
		t.Fatal(err)
	}
	d := openOpts(t, nil, map[string]any{"url": redisURL, "stream": key})
	res, err := d.Deliver(ctxT(t), destinationtest.NewMessage([]byte("x"), "text/plain"))
	checkRetriable(t, err)
	for _, want := range []string{"redis: ", key, "WRONGTYPE", "not a stream"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("Deliver: %q, want it to contain %q", err, want)
		}
	}
	if len(res.ResponseExcerpt) != 0 {
		t.Errorf("Deliver: excerpt %q, want none", res.ResponseExcerpt)
	}
	if v := c.Get(ctxT(t), key).Val(); v != "not a stream" {
		t.Errorf("the key now holds %q, want it untouched", v)
	}
}

// TestAuthFailureHidesPassword: a wrong user and password fail with a
// clear, retriable error that does not contain the password.
func TestAuthFailureHidesPassword(t *testing.T) {
	t.Parallel()
	c := needRedis(t)
	key := testKey(t, c)
	d := openOpts(t, nil, map[string]any{
		"url":    "redis://hookd-no-such-user:s3cr3t-pw@" + redisAddr + "/0",
		"stream": key,
	})
	_, err := d.Deliver(ctxT(t), destinationtest.NewMessage([]byte("x"), "text/plain"))
	checkRetriable(t, err)
	if strings.Contains(err.Error(), "s3cr3t") {
		t.Errorf("Deliver: %q contains the password", err)
	}
	if !strings.Contains(err.Error(), "authentication failed") {
		t.Errorf("Deliver: %q, want it to say authentication failed", err)
	}
}

func TestOptionsErrors(t *testing.T) {
	t.Parallel()
	const pw = "s3cr3t-pw"
	u := "redis://user:" + pw + "@127.0.0.1:6379/0"
	cases := []struct {
		name string
		opts map[string]any
		want string // prefix of the error
		has  string // also in the error
	}{
		{"NoURL", map[string]any{"stream": "s"}, "url: required", ""},
		{"BlankURL", map[string]any{"url": " ", "stream": "s"}, "url: required", ""},
		{"HTTPScheme", map[string]any{"url": "http://user:" + pw + "@h:6379", "stream": "s"}, "url: ", "scheme \"http\""},
		{"UnixScheme", map[string]any{"url": "unix:///run/redis.sock", "stream": "s"}, "url: ", "scheme \"unix\""},
		{"NoScheme", map[string]any{"url": "127.0.0.1:6379", "stream": "s"}, "url: no scheme", ""},
		{"NoSchemeWithPassword", map[string]any{"url": "user:" + pw + "@127.0.0.1:6379", "stream": "s"}, "url: ", ""},
		{"NoHost", map[string]any{"url": "redis://:" + pw + "@:6379/0", "stream": "s"}, "url: no host", ""},
		{"BadPort", map[string]any{"url": "redis://user:" + pw + "@h:63x9/0", "stream": "s"}, "url: invalid", "port"},
		{"PortOutOfRange", map[string]any{"url": "redis://user:" + pw + "@h:70000/0", "stream": "s"}, "url: port 70000", ""},
		{"BadEscape", map[string]any{"url": "redis://user:" + pw + "%zz@h:6379/0", "stream": "s"}, "url: invalid", ""},
		{"BadDB", map[string]any{"url": "redis://user:" + pw + "@h:6379/x", "stream": "s"}, "url: ", "database"},
		{"UnknownQuery", map[string]any{"url": u + "?pw=" + pw + "&frobnicate=1", "stream": "s"}, "url: ", "frobnicate"},
		{"BadQueryValue", map[string]any{"url": u + "?dial_timeout=soon", "stream": "s"}, "url: ", "dial_timeout"},
		{"Fragment", map[string]any{"url": u + "#x", "stream": "s"}, "url: ", "fragment"},
		{"NoStream", map[string]any{"url": u}, "stream: required", ""},
		{"BlankStream", map[string]any{"url": u, "stream": "  "}, "stream: required", ""},
		{"UnknownPlaceholder", map[string]any{"url": u, "stream": "ev:{tenant}"}, "stream: ", "{tenant}"},
		{"NegativeMaxLen", map[string]any{"url": u, "stream": "s", "maxlen": -1}, "maxlen: ", "-1"},
		{"ExactWithoutMaxLen", map[string]any{"url": u, "stream": "s", "maxlen_exact": true}, "maxlen_exact: ", "maxlen"},
		{"ZeroTimeout", map[string]any{"url": u, "stream": "s", "timeout": "0s"}, "timeout: ", "positive"},
		{"NegativeTimeout", map[string]any{"url": u, "stream": "s", "timeout": "-1s"}, "timeout: ", "positive"},
		{"BadTimeout", map[string]any{"url": u, "stream": "s", "timeout": "soon"}, "", "duration"},
		{"UnknownKey", map[string]any{"url": u, "stream": "s", "password": "x"}, "", "password"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			d, err := destination.Open(context.Background(), Type, nil, destinationtest.Options(c.opts))
			if err == nil {
				d.Close()
				t.Fatalf("Open(%v): got nil error, want one starting %q", c.opts, c.want)
			}
			if !strings.HasPrefix(err.Error(), c.want) || !strings.Contains(err.Error(), c.has) {
				t.Errorf("Open: got %q, want it to start with %q and contain %q", err, c.want, c.has)
			}
			if strings.Contains(err.Error(), "s3cr3t") {
				t.Errorf("Open: %q contains the password", err)
			}
		})
	}
}

func TestOptionsDefaults(t *testing.T) {
	t.Parallel()
	d := openOpts(t, nil, map[string]any{"url": "redis://u:p@redis.example:6380/3", "stream": "events"})
	s, o := d.s, d.s.client
	if s.timeout != DefaultTimeout || s.maxLen != 0 || s.exact || s.templated || s.stream != "events" || s.addr != "redis.example:6380" {
		t.Errorf("settings: %+v", s)
	}
	if o.Addr != "redis.example:6380" || o.DB != 3 || o.Username != "u" || o.Password != "p" || o.TLSConfig != nil {
		t.Errorf("client options: addr %s db %d user %q tls %v", o.Addr, o.DB, o.Username, o.TLSConfig != nil)
	}
	if o.ReadTimeout != DefaultTimeout || o.WriteTimeout != DefaultTimeout || o.MaxRetries != -1 || !o.ContextTimeoutEnabled {
		t.Errorf("client options: read %s write %s retries %d context timeouts %v, want %s, %s, -1 (none), true",
			o.ReadTimeout, o.WriteTimeout, o.MaxRetries, o.ContextTimeoutEnabled, DefaultTimeout, DefaultTimeout)
	}

	d = openOpts(t, nil, map[string]any{
		"url":    "rediss://cache.example/0?read_timeout=2s&max_retries=2&skip_verify=true",
		"stream": "hookd:{type}", "maxlen": 1000, "maxlen_exact": true, "timeout": "750ms",
	})
	s, o = d.s, d.s.client
	if s.timeout != 750*time.Millisecond || s.maxLen != 1000 || !s.exact || !s.templated || s.addr != "cache.example:6379" {
		t.Errorf("settings: %+v", s)
	}
	if o.TLSConfig == nil || o.TLSConfig.ServerName != "cache.example" || !o.TLSConfig.InsecureSkipVerify {
		t.Errorf("TLS config: %+v, want server name cache.example and skip_verify", o.TLSConfig)
	}
	if o.ReadTimeout != 2*time.Second || o.WriteTimeout != 750*time.Millisecond || o.MaxRetries != 2 {
		t.Errorf("client options: read %s write %s retries %d, want the URL's 2s, the timeout 750ms, the URL's 2",
			o.ReadTimeout, o.WriteTimeout, o.MaxRetries)
	}
}

// guardEnv returns an Env named "cache" with an egress guard allowing
// allowPrivate, whose lookups are answered by resolve (nil: none expected),
// and the addresses its dialer let through to connect(2).
func guardEnv(t *testing.T, allowPrivate []string, resolve map[string]netip.Addr) (*destination.Env, func() []string) {
	t.Helper()
	g, err := egress.NewGuard(allowPrivate, nil)
	if err != nil {
		t.Fatalf("NewGuard: %v", err)
	}
	var (
		mu   sync.Mutex
		seen []string
	)
	g.Dialer = &net.Dialer{Timeout: 5 * time.Second, Control: func(_, address string, _ syscall.RawConn) error {
		mu.Lock()
		seen = append(seen, address)
		mu.Unlock()
		return nil
	}}
	g.Resolver = lookupFunc(func(host string) ([]netip.Addr, error) {
		if a, ok := resolve[host]; ok {
			return []netip.Addr{a}, nil
		}
		t.Errorf("unexpected lookup of %q", host)
		return nil, errors.New("test: no such host")
	})
	env := &destination.Env{Name: "cache", Now: time.Now, Egress: g}
	return env, func() []string {
		mu.Lock()
		defer mu.Unlock()
		return append([]string(nil), seen...)
	}
}

type lookupFunc func(host string) ([]netip.Addr, error)

func (f lookupFunc) LookupNetIP(_ context.Context, _, host string) ([]netip.Addr, error) {
	return f(host)
}

// TestEgressRefusedAtOpen: a loopback host written in the URL is refused
// when the destination is opened, before anything is dialed.
func TestEgressRefusedAtOpen(t *testing.T) {
	t.Parallel()
	for _, host := range []string{"127.0.0.1:6379", "localhost:6379", "[::1]:6379", "10.0.0.5:6379", "2130706433:6379"} {
		env, connects := guardEnv(t, nil, nil)
		_, err := destination.Open(context.Background(), Type, env, destinationtest.Options(map[string]any{
			"url": "redis://user:s3cr3t@" + host + "/0", "stream": "s",
		}))
		if err == nil || !errors.Is(err, egress.ErrRefused) {
			t.Errorf("Open(%s): %v, want the guard's refusal", host, err)
			continue
		}
		if !strings.HasPrefix(err.Error(), `destination "cache": url: `) || strings.Contains(err.Error(), "s3cr3t") {
			t.Errorf("Open(%s): %q, want it to name the destination and the option, without the password", host, err)
		}
		if got := connects(); len(got) != 0 {
			t.Errorf("Open(%s): connected to %v, want nothing dialed", host, got)
		}
	}
}

// TestEgressRefusedAtDial: a name that resolves to loopback passes the
// open-time check, and the guard refuses the connection: Deliver fails,
// retriably, and nothing is written.
func TestEgressRefusedAtDial(t *testing.T) {
	t.Parallel()
	c := needRedis(t)
	key := testKey(t, c)
	_, port, _ := net.SplitHostPort(redisAddr)
	env, connects := guardEnv(t, nil, map[string]netip.Addr{"redis.test": netip.MustParseAddr("127.0.0.1")})
	d := openOpts(t, env, map[string]any{"url": "redis://redis.test:" + port + "/0", "stream": key, "timeout": "2s"})
	_, err := d.Deliver(ctxT(t), destinationtest.NewMessage([]byte("x"), "text/plain"))
	checkRetriable(t, err)
	if !errors.Is(err, egress.ErrRefused) || !strings.Contains(err.Error(), "127.0.0.1 is loopback") {
		t.Errorf("Deliver: %v, want the guard's refusal of 127.0.0.1", err)
	}
	if got := connects(); len(got) != 0 {
		t.Errorf("connected to %v, want nothing", got)
	}
	if n := c.Exists(ctxT(t), key).Val(); n != 0 {
		t.Errorf("the stream exists, want nothing written")
	}
}

// TestEgressAllowPrivate: with 127.0.0.0/8 in egress.allow_private, the
// same Redis is reached, through the guard's dialer, by address and by a
// name.
func TestEgressAllowPrivate(t *testing.T) {
	t.Parallel()
	c := needRedis(t)
	_, port, _ := net.SplitHostPort(redisAddr)
	for _, u := range []string{redisURL, "redis://redis.test:" + port + "/0"} {
		key := testKey(t, c)
		env, connects := guardEnv(t, []string{"127.0.0.0/8"}, map[string]netip.Addr{"redis.test": netip.MustParseAddr("127.0.0.1")})
		d := openOpts(t, env, map[string]any{"url": u, "stream": key})
		m := destinationtest.NewMessage([]byte("through the guard"), "text/plain")
		destinationtest.Deliver(t, d, m)
		got := streamSink{c, key}.Received(t)
		if len(got) != 1 || got[0].EventID != m.Event.ID {
			t.Errorf("%s: stream holds %+v, want the event", u, got)
		}
		if seen := connects(); len(seen) == 0 || seen[0] != redisAddr {
			t.Errorf("%s: guard's dialer connected to %v, want %s", u, seen, redisAddr)
		}
	}
}

// closedPort returns a loopback address nothing listens on.
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

// TestRedisDown: the destination opens while nothing listens, Deliver
// fails quickly with a retriable error naming the address, and Close
// works.
func TestRedisDown(t *testing.T) {
	t.Parallel()
	addr := closedPort(t)
	d, err := destination.Open(context.Background(), Type, nil, destinationtest.Options(map[string]any{
		"url": "redis://" + addr + "/0", "stream": "s", "timeout": "500ms",
	}))
	if err != nil {
		t.Fatalf("Open with Redis down: %v, want success", err)
	}
	for i := range 3 {
		start := time.Now()
		_, err = d.Deliver(ctxT(t), destinationtest.NewMessage([]byte("x"), "text/plain"))
		el := time.Since(start)
		checkRetriable(t, err)
		if el > 1500*time.Millisecond {
			t.Errorf("Deliver %d took %s, want it within the 500ms timeout", i+1, el)
		}
		if !strings.HasPrefix(err.Error(), "redis: ") || !strings.Contains(err.Error(), addr) {
			t.Errorf("Deliver %d: %q, want it to start with \"redis: \" and name %s", i+1, err, addr)
		}
	}
	if err := d.Close(); err != nil {
		t.Errorf("Close: %v", err)
	}
	if _, err := d.Deliver(ctxT(t), destinationtest.NewMessage([]byte("x"), "text/plain")); !errors.Is(err, errClosed) {
		t.Errorf("Deliver after Close: %v, want %v", err, errClosed)
	}
}

// TestNoReplyTimesOut: a server that never answers costs timeout, and the
// error says so.
func TestNoReplyTimesOut(t *testing.T) {
	t.Parallel()
	addr := destinationtest.SilentServer(t)
	d := openOpts(t, nil, map[string]any{"url": "redis://" + addr + "/0", "stream": "s", "timeout": "300ms"})
	start := time.Now()
	_, err := d.Deliver(ctxT(t), destinationtest.NewMessage([]byte("x"), "text/plain"))
	el := time.Since(start)
	checkRetriable(t, err)
	if el < 250*time.Millisecond || el > 1500*time.Millisecond {
		t.Errorf("Deliver took %s, want about the 300ms timeout", el)
	}
	if !strings.Contains(err.Error(), "no reply within 300ms") {
		t.Errorf("Deliver: %q, want it to say there was no reply within the timeout", err)
	}
}

// TestCancelInFlight: cancelling the caller's context while the XADD
// waits for a reply returns at once with an error wrapping
// context.Canceled; Close then waits for the XADD to end (within timeout).
func TestCancelInFlight(t *testing.T) {
	t.Parallel()
	addr := destinationtest.SilentServer(t)
	d, err := destination.Open(context.Background(), Type, nil, destinationtest.Options(map[string]any{
		"url": "redis://" + addr + "/0", "stream": "s", "timeout": "1s",
	}))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(100*time.Millisecond, cancel)
	start := time.Now()
	_, err = d.Deliver(ctx, destinationtest.NewMessage([]byte("x"), "text/plain"))
	if el := time.Since(start); el > 500*time.Millisecond {
		t.Errorf("Deliver returned %s after the start, want soon after the cancellation at 100ms", el)
	}
	checkRetriable(t, err)
	if !errors.Is(err, context.Canceled) {
		t.Errorf("Deliver: %v, want an error wrapping context.Canceled", err)
	}
	start = time.Now()
	if err := d.Close(); err != nil {
		t.Errorf("Close: %v", err)
	}
	if el := time.Since(start); el > 2*time.Second {
		t.Errorf("Close took %s, want at most about the 1s timeout", el)
	}
}

func TestDeliverNoEvent(t *testing.T) {
	t.Parallel()
	d := openOpts(t, nil, map[string]any{"url": redisURL, "stream": "s"})
	for _, m := range []*destination.Message{nil, {}} {
		if _, err := d.Deliver(context.Background(), m); !destination.IsPermanent(err) {
			t.Errorf("Deliver(%v): %v, want a permanent error", m, err)
		}
	}
}
