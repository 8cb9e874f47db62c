package kafka

import (
	"bytes"
	"context"
	"errors"
	"net"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"hookd"
	"hookd/internal/destination"
	"hookd/internal/destination/destinationtest"
	"hookd/internal/egress"
)

const testTopic = "hookd-events"

// newCluster starts an in-process fake Kafka cluster of one broker holding
// testTopic with the given number of partitions.
func newCluster(t *testing.T, partitions int32) *kfake.Cluster {
	t.Helper()
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(partitions, testTopic))
	if err != nil {
		t.Fatalf("kfake.NewCluster: %v", err)
	}
	t.Cleanup(c.Close)
	return c
}

// openOn opens a kafka destination with opts, brokers and topic defaulting
// to c and testTopic.
func openOn(t *testing.T, c *kfake.Cluster, env *destination.Env, opts map[string]any) *Destination {
	t.Helper()
	all := map[string]any{"topic": testTopic}
	if c != nil {
		all["brokers"] = c.ListenAddrs()
	}
	for k, v := range opts {
		all[k] = v
	}
	d, err := destination.Open(context.Background(), Type, env, destinationtest.Options(all))
	if err != nil {
		t.Fatalf("Open(%v): %v", all, err)
	}
	t.Cleanup(func() { d.Close() })
	return d.(*Destination)
}

// sink reads back a topic of a fake cluster.
type sink struct {
	c          *kfake.Cluster
	partitions int32
}

func (s sink) Received(t *testing.T) []destinationtest.Received {
	t.Helper()
	var out []destinationtest.Received
	for _, r := range consumeAll(t, s.c, s.partitions) {
		out = append(out, destinationtest.Received{EventID: header(r, HeaderEventID), Body: r.Value})
	}
	return out
}

// consumeAll returns every record of testTopic, partition by partition, in
// offset order: it reads each partition from the start up to its end
// offset as listed when called.
func consumeAll(t *testing.T, c *kfake.Cluster, partitions int32) []*kgo.Record {
	t.Helper()
	cl, err := kgo.NewClient(
		kgo.SeedBrokers(c.ListenAddrs()...),
		kgo.ConsumeTopics(testTopic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.FetchMaxWait(100*time.Millisecond),
	)
	if err != nil {
		t.Fatalf("consumer: %v", err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	ends := endOffsets(ctx, t, cl, partitions)
	next := map[int32]int64{}
	left := func() bool {
		for p, end := range ends {
			if next[p] < end {
				return true
			}
		}
		return false
	}
	byPart := map[int32][]*kgo.Record{}
	for left() {
		fs := cl.PollFetches(ctx)
		if err := ctx.Err(); err != nil {
			t.Fatalf("consume %s: got %v of end offsets %v: %v", testTopic, next, ends, err)
		}
		for _, fe := range fs.Errors() {
			t.Fatalf("consume %s partition %d: %v", fe.Topic, fe.Partition, fe.Err)
		}
		fs.EachRecord(func(r *kgo.Record) {
			if r.Offset < ends[r.Partition] {
				byPart[r.Partition] = append(byPart[r.Partition], r)
			}
			next[r.Partition] = r.Offset + 1
		})
	}
	var out []*kgo.Record
	for p := range partitions {
		out = append(out, byPart[p]...)
	}
	return out
}

// endOffsets lists the end offset of each partition of testTopic.
func endOffsets(ctx context.Context, t *testing.T, cl *kgo.Client, partitions int32) map[int32]int64 {
	t.Helper()
	req := kmsg.NewPtrListOffsetsRequest()
	req.ReplicaID = -1
	rt := kmsg.NewListOffsetsRequestTopic()
	rt.Topic = testTopic
	for p := range partitions {
		rp := kmsg.NewListOffsetsRequestTopicPartition()
		rp.Partition = p
		rp.Timestamp = -1 // latest
		rt.Partitions = append(rt.Partitions, rp)
	}
	req.Topics = append(req.Topics, rt)
	resp, err := req.RequestWith(ctx, cl)
	if err != nil {
		t.Fatalf("list offsets: %v", err)
	}
	ends := map[int32]int64{}
	for _, rt := range resp.Topics {
		for _, rp := range rt.Partitions {
			if err := kerr.ErrorForCode(rp.ErrorCode); err != nil {
				t.Fatalf("list offsets of partition %d: %v", rp.Partition, err)
			}
			ends[rp.Partition] = rp.Offset
		}
	}
	if len(ends) != int(partitions) {
		t.Fatalf("list offsets: got %d partitions, want %d", len(ends), partitions)
	}
	return ends
}

func header(r *kgo.Record, key string) string {
	for _, h := range r.Headers {
		if h.Key == key {
			return string(h.Value)
		}
	}
	return ""
}

func TestConformance(t *testing.T) {
	t.Parallel()
	destinationtest.Run(t, func(t *testing.T) (destination.Destination, destinationtest.Sink) {
		c := newCluster(t, 1)
		d, err := destination.Open(context.Background(), Type, nil, destinationtest.Options(map[string]any{
			"brokers": c.ListenAddrs(),
			"topic":   testTopic,
			"timeout": "10s",
		}))
		if err != nil {
			t.Fatalf("Open: %v", err)
		}
		return d, sink{c: c, partitions: 1}
	})
}

func TestRegistered(t *testing.T) {
	if !slices.Contains(destination.Types(), Type) {
		t.Errorf("destination.Types() = %v, want it to contain %q", destination.Types(), Type)
	}
}

// testMessage is a message with every field set.
func testMessage() *destination.Message {
	return &destination.Message{
		Event: &hookd.Event{
			Seq:         42,
			ID:          "evt_01J0000000000000000000000A",
			Source:      "stripe",
			ExternalID:  "ext_1",
			Type:        "invoice.paid.v1",
			Key:         "cus_9",
			OccurredAt:  time.Date(2024, 5, 6, 9, 8, 7, 123456789, time.FixedZone("CEST", 2*3600)),
			ReceivedAt:  time.Date(2024, 5, 6, 7, 8, 9, 987654321, time.FixedZone("X", -3600)),
			RequestID:   "req_01J0000000000000000000000A",
			ContentType: "application/json; charset=utf-8",
			Headers:     map[string][]string{"X-Secret": {"not sent"}},
			Body:        []byte("{\"a\":\"<b>&é\",\"n\":1}\n"),
		},
		DeliveryID: "dlv_01J0000000000000000000000B",
		Attempt:    3,
	}
}

func TestRecordMapping(t *testing.T) {
	t.Parallel()
	c := newCluster(t, 1)
	d := openOn(t, c, nil, nil)
	m := testMessage()
	res := destinationtest.Deliver(t, d, m)
	if res.StatusCode != 0 {
		t.Errorf("StatusCode: got %d, want 0", res.StatusCode)
	}
	if got, want := string(res.ResponseExcerpt), "partition 0 offset 0"; got != want {
		t.Errorf("ResponseExcerpt: got %q, want %q", got, want)
	}

	recs := consumeAll(t, c, 1)
	if len(recs) != 1 {
		t.Fatalf("got %d records, want 1", len(recs))
	}
	r := recs[0]
	if r.Topic != testTopic {
		t.Errorf("topic: got %q, want %q", r.Topic, testTopic)
	}
	if string(r.Key) != "cus_9" {
		t.Errorf("key: got %q, want the event key %q", r.Key, "cus_9")
	}
	if !bytes.Equal(r.Value, m.Event.Body) {
		t.Errorf("value: got %q, want %q", r.Value, m.Event.Body)
	}
	if want := m.Event.ReceivedAt.Truncate(time.Millisecond); !r.Timestamp.Equal(want) {
		t.Errorf("timestamp: got %s, want ReceivedAt to the millisecond, %s", r.Timestamp, want)
	}
	want := []kgo.RecordHeader{
		{Key: "hookd-event-id", Value: []byte("evt_01J0000000000000000000000A")},
		{Key: "hookd-event-type", Value: []byte("invoice.paid.v1")},
		{Key: "hookd-source", Value: []byte("stripe")},
		{Key: "hookd-delivery-id", Value: []byte("dlv_01J0000000000000000000000B")},
		{Key: "hookd-attempt", Value: []byte("3")},
		{Key: "content-type", Value: []byte("application/json; charset=utf-8")},
	}
	if !slices.EqualFunc(r.Headers, want, func(a, b kgo.RecordHeader) bool {
		return a.Key == b.Key && bytes.Equal(a.Value, b.Value)
	}) {
		t.Errorf("headers:\n got %q\nwant %q", r.Headers, want)
	}

	// The next record's offset shows in the excerpt.
	res = destinationtest.Deliver(t, d, testMessage())
	if got, want := string(res.ResponseExcerpt), "partition 0 offset 1"; got != want {
		t.Errorf("second ResponseExcerpt: got %q, want %q", got, want)
	}
}

func TestKeyFallsBackToEventID(t *testing.T) {
	t.Parallel()
	c := newCluster(t, 1)
	d := openOn(t, c, nil, nil)
	m := testMessage()
	m.Event.Key = ""
	destinationtest.Deliver(t, d, m)
	recs := consumeAll(t, c, 1)
	if len(recs) != 1 {
		t.Fatalf("got %d records, want 1", len(recs))
	}
	if string(recs[0].Key) != m.Event.ID {
		t.Errorf("key: got %q, want the event id %q", recs[0].Key, m.Event.ID)
	}
}

// TestSameKeySamePartition: the records of one key land in one partition,
// in delivery order (what ordering: key relies on).
func TestSameKeySamePartition(t *testing.T) {
	t.Parallel()
	const parts = 4
	c := newCluster(t, parts)
	d := openOn(t, c, nil, nil)
	keys := []string{"alpha", "bravo", "charlie", "delta", "echo", "foxtrot"}
	var sent []string
	for i := range 5 {
		for _, k := range keys {
			m := destinationtest.NewMessage([]byte(k+"-"+string(rune('0'+i))), "text/plain")
			m.Event.Key = k
			destinationtest.Deliver(t, d, m)
			sent = append(sent, m.Event.ID)
		}
	}
	partOf := map[string]int32{}
	order := map[string][]string{}
	for _, r := range consumeAll(t, c, parts) {
		k := string(r.Key)
		if p, ok := partOf[k]; ok && p != r.Partition {
			t.Errorf("key %q: records in partitions %d and %d", k, p, r.Partition)
		}
		partOf[k] = r.Partition
		order[k] = append(order[k], string(r.Value))
	}
	for _, k := range keys {
		want := []string{k + "-0", k + "-1", k + "-2", k + "-3", k + "-4"}
		if !slices.Equal(order[k], want) {
			t.Errorf("key %q: got %q, want %q", k, order[k], want)
		}
	}
}

func TestOversizedBodyIsPermanent(t *testing.T) {
	t.Parallel()
	c := newCluster(t, 1)
	d := openOn(t, c, nil, map[string]any{"max_message_bytes": "1KiB"})

	fits := destinationtest.NewMessage(bytes.Repeat([]byte("a"), 1024), "text/plain")
	destinationtest.Deliver(t, d, fits)

	big := destinationtest.NewMessage(bytes.Repeat([]byte("b"), 1025), "text/plain")
	_, err := d.Deliver(context.Background(), big)
	if !destination.IsPermanent(err) {
		t.Fatalf("Deliver of 1025 bytes with max_message_bytes 1KiB: got %v, want a permanent error", err)
	}
	if !strings.HasPrefix(err.Error(), "kafka: ") || !strings.Contains(err.Error(), "max_message_bytes") {
		t.Errorf("error %q: want it to start with \"kafka: \" and name max_message_bytes", err)
	}
	recs := consumeAll(t, c, 1)
	if len(recs) != 1 || header(recs[0], HeaderEventID) != fits.Event.ID {
		t.Errorf("topic holds %d records, want only the one that fits", len(recs))
	}
}

// produceErr answers a produce request with errCode for every partition.
func produceErr(kreq kmsg.Request, errCode int16) (kmsg.Response, error, bool) {
	req := kreq.(*kmsg.ProduceRequest)
	resp := req.ResponseKind().(*kmsg.ProduceResponse)
	for _, rt := range req.Topics {
		st := kmsg.NewProduceResponseTopic()
		st.Topic = rt.Topic
		st.TopicID = rt.TopicID
		for _, rp := range rt.Partitions {
			sp := kmsg.NewProduceResponseTopicPartition()
			sp.Partition = rp.Partition
			sp.ErrorCode = errCode
			st.Partitions = append(st.Partitions, sp)
		}
		resp.Topics = append(resp.Topics, st)
	}
	return resp, nil, true
}

func TestBrokerErrors(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name      string
		code      int16
		permanent bool
	}{
		{"MessageTooLarge", kerr.MessageTooLarge.Code, true},
		{"TopicAuthorizationFailed", kerr.TopicAuthorizationFailed.Code, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			c := newCluster(t, 1)
			c.ControlKey(int16(kmsg.Produce), func(kreq kmsg.Request) (kmsg.Response, error, bool) {
				return produceErr(kreq, tc.code)
			})
			d := openOn(t, c, nil, map[string]any{"timeout": "5s"})
			_, err := d.Deliver(context.Background(), destinationtest.NewMessage([]byte("x"), "text/plain"))
			if err == nil {
				t.Fatal("Deliver: got nil error, want the broker's error")
			}
			if !strings.HasPrefix(err.Error(), "kafka: ") {
				t.Errorf("error %q: want it to start with \"kafka: \"", err)
			}
			if got := destination.IsPermanent(err); got != tc.permanent {
				t.Errorf("error %v: permanent %v, want %v", err, got, tc.permanent)
			}
			if tc.permanent {
				return
			}
			// The control answered once; the next attempt goes through.
			destinationtest.Deliver(t, d, destinationtest.NewMessage([]byte("y"), "text/plain"))
		})
	}
}

func TestOptionsErrors(t *testing.T) {
	t.Parallel()
	ok := []string{"127.0.0.1:9092"}
	cases := []struct {
		name string
		opts map[string]any
		want string // prefix of the error
		has  string // also in the error
	}{
		{"NoBrokers", map[string]any{"topic": "t"}, "brokers: required", ""},
		{"NullBrokers", map[string]any{"brokers": nil, "topic": "t"}, "brokers: required", ""},
		{"EmptyBrokers", map[string]any{"brokers": []string{}, "topic": "t"}, "brokers: required", ""},
		{"BlankBroker", map[string]any{"brokers": []string{"127.0.0.1:9092", " "}, "topic": "t"}, "brokers[1]: ", "host:port"},
		{"NoPort", map[string]any{"brokers": []string{"kafka1"}, "topic": "t"}, "brokers[0]: ", "host:port"},
		{"NoHost", map[string]any{"brokers": []string{":9092"}, "topic": "t"}, "brokers[0]: ", "no host"},
		{"BadPort", map[string]any{"brokers": []string{"kafka1:http"}, "topic": "t"}, "brokers[0]: ", "port"},
		{"PortZero", map[string]any{"brokers": []string{"kafka1:0"}, "topic": "t"}, "brokers[0]: ", "port"},
		{"PortTooBig", map[string]any{"brokers": []string{"kafka1:65536"}, "topic": "t"}, "brokers[0]: ", "port"},
		{"Scheme", map[string]any{"brokers": []string{"kafka://kafka1:9092"}, "topic": "t"}, "brokers[0]: ", "scheme"},
		{"BrokersNotAList", map[string]any{"brokers": "kafka1:9092", "topic": "t"}, "", "brokers"},
		{"NoTopic", map[string]any{"brokers": ok}, "topic: required", ""},
		{"BlankTopic", map[string]any{"brokers": ok, "topic": "  "}, "topic: required", ""},
		{"TopicBadChar", map[string]any{"brokers": ok, "topic": "a/b"}, "topic: ", "letters"},
		{"TopicDot", map[string]any{"brokers": ok, "topic": ".."}, "topic: ", "not a valid"},
		{"TopicTooLong", map[string]any{"brokers": ok, "topic": strings.Repeat("x", 250)}, "topic: ", "249"},
		{"ClientIDControl", map[string]any{"brokers": ok, "topic": "t", "client_id": "a\x01b"}, "client_id: ", "control"},
		{"TimeoutZero", map[string]any{"brokers": ok, "topic": "t", "timeout": "0s"}, "timeout: ", "positive"},
		{"TimeoutNegative", map[string]any{"brokers": ok, "topic": "t", "timeout": "-1s"}, "timeout: ", "positive"},
		{"TimeoutNoUnit", map[string]any{"brokers": ok, "topic": "t", "timeout": 30}, "", "duration"},
		{"MaxBytesZero", map[string]any{"brokers": ok, "topic": "t", "max_message_bytes": "0"}, "max_message_bytes: ", "positive"},
		{"MaxBytesTooBig", map[string]any{"brokers": ok, "topic": "t", "max_message_bytes": "65MiB"}, "max_message_bytes: ", "limit"},
		{"MaxBytesBad", map[string]any{"brokers": ok, "topic": "t", "max_message_bytes": "lots"}, "", "size"},
		{"UnknownKey", map[string]any{"brokers": ok, "topic": "t", "acks": "1"}, "", "acks"},
		{"TLSNotSupported", map[string]any{"brokers": ok, "topic": "t", "tls": true}, "", "tls"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			d, err := destination.Open(context.Background(), Type, nil, destinationtest.Options(c.opts))
			if err == nil {
				d.Close()
				t.Fatalf("Open(%v): got nil error, want one starting %q", c.opts, c.want)
			}
			if !strings.HasPrefix(err.Error(), c.want) || !strings.Contains(err.Error(), c.has) {
				t.Errorf("Open(%v): got %q, want it to start with %q and contain %q", c.opts, err, c.want, c.has)
			}
		})
	}
}

func TestOptionsDefaults(t *testing.T) {
	t.Parallel()
	d := openOn(t, nil, nil, map[string]any{"brokers": []string{" kafka1:9092 ", "[::1]:9093"}})
	want := settings{
		brokers:         []string{"kafka1:9092", "[::1]:9093"},
		topic:           testTopic,
		clientID:        "hookd",
		timeout:         30 * time.Second,
		maxMessageBytes: 1_000_000,
	}
	if got := *d.s; !slices.Equal(got.brokers, want.brokers) || got.topic != want.topic ||
		got.clientID != want.clientID || got.timeout != want.timeout || got.maxMessageBytes != want.maxMessageBytes {
		t.Errorf("settings: got %+v, want %+v", got, want)
	}

	d = openOn(t, nil, nil, map[string]any{
		"brokers":           []string{"kafka1:9092"},
		"client_id":         "hookd-eu",
		"timeout":           "5s",
		"max_message_bytes": "512KiB",
	})
	if d.s.clientID != "hookd-eu" || d.s.timeout != 5*time.Second || d.s.maxMessageBytes != 512<<10 {
		t.Errorf("settings: got %+v, want client_id hookd-eu, timeout 5s, max_message_bytes 524288", *d.s)
	}
}

// checkRetriable fails unless err is a retriable "kafka: " error.
func checkRetriable(t *testing.T, err error) {
	t.Helper()
	if err == nil {
		t.Fatal("Deliver: got nil error, want one")
	}
	t.Logf("Deliver: %v", err)
	if destination.IsPermanent(err) || destination.IsGone(err) {
		t.Errorf("Deliver: got final error %v, want a retriable one", err)
	}
	if !strings.HasPrefix(err.Error(), "kafka: ") {
		t.Errorf("error %q: want it to start with \"kafka: \"", err)
	}
}

// closedPort returns a loopback address nothing listens on.
func closedPort(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

func TestUnreachableBroker(t *testing.T) {
	t.Parallel()
	d := openOn(t, nil, nil, map[string]any{"brokers": []string{closedPort(t)}, "timeout": "2s"})
	start := time.Now()
	_, err := d.Deliver(context.Background(), destinationtest.NewMessage([]byte("x"), "text/plain"))
	if el := time.Since(start); el > 3500*time.Millisecond {
		t.Errorf("Deliver to an unreachable broker took %s, want about the 2s timeout", el)
	}
	checkRetriable(t, err)
	if !strings.Contains(err.Error(), "2s") {
		t.Errorf("error %q: want it to mention the timeout", err)
	}
}

// TestContextDoneWhileWaiting: a Deliver waiting for a hung broker returns
// as soon as its context ends, whatever timeout says.
func TestContextDoneWhileWaiting(t *testing.T) {
	t.Parallel()
	d := openOn(t, nil, nil, map[string]any{"brokers": []string{destinationtest.SilentServer(t)}, "timeout": "30s"})
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err := d.Deliver(ctx, destinationtest.NewMessage([]byte("x"), "text/plain"))
	if el := time.Since(start); el > 2*time.Second {
		t.Errorf("Deliver took %s after its context's 300ms deadline, want it to return at once", el)
	}
	checkRetriable(t, err)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("got %v, want an error wrapping context.DeadlineExceeded", err)
	}
}

// TestTimeoutBoundsProduce: timeout bounds a produce the broker never
// answers.
func TestTimeoutBoundsProduce(t *testing.T) {
	t.Parallel()
	d := openOn(t, nil, nil, map[string]any{"brokers": []string{destinationtest.SilentServer(t)}, "timeout": "1s"})
	start := time.Now()
	_, err := d.Deliver(context.Background(), destinationtest.NewMessage([]byte("x"), "text/plain"))
	if el := time.Since(start); el < time.Second || el > 2500*time.Millisecond {
		t.Errorf("Deliver took %s, want about the 1s timeout", el)
	}
	checkRetriable(t, err)
	if !strings.Contains(err.Error(), "not confirmed within 1s") {
		t.Errorf("error %q: want it to say the produce was not confirmed within 1s", err)
	}
}

func TestEgressGuard(t *testing.T) {
	t.Parallel()
	c := newCluster(t, 1)

	t.Run("RefusesLoopback", func(t *testing.T) {
		t.Parallel()
		g, err := egress.NewGuard(nil, nil)
		if err != nil {
			t.Fatal(err)
		}
		d := openOn(t, c, &destination.Env{Name: "bus", Now: time.Now, Egress: g}, map[string]any{"timeout": "2s"})
		start := time.Now()
		_, err = d.Deliver(context.Background(), destinationtest.NewMessage([]byte("x"), "text/plain"))
		if el := time.Since(start); el > 3500*time.Millisecond {
			t.Errorf("Deliver took %s, want about the 2s timeout", el)
		}
		checkRetriable(t, err)
		if !errors.Is(err, egress.ErrRefused) {
			t.Errorf("got %v, want an error matching egress.ErrRefused (the dial was refused)", err)
		}
	})

	t.Run("AllowPrivate", func(t *testing.T) {
		t.Parallel()
		g, err := egress.NewGuard([]string{"127.0.0.0/8"}, nil)
		if err != nil {
			t.Fatal(err)
		}
		d := openOn(t, c, &destination.Env{Name: "bus", Now: time.Now, Egress: g}, map[string]any{"timeout": "5s"})
		destinationtest.Deliver(t, d, destinationtest.NewMessage([]byte("through the guard"), "text/plain"))
	})
}

func TestNilMessageIsPermanent(t *testing.T) {
	t.Parallel()
	d := openOn(t, nil, nil, map[string]any{"brokers": []string{"127.0.0.1:9"}})
	if _, err := d.Deliver(context.Background(), &destination.Message{}); !destination.IsPermanent(err) {
		t.Errorf("Deliver of a message without an event: got %v, want a permanent error", err)
	}
}

// TestMissingTopic: a topic the cluster does not have fails the attempt
// with a retriable error (it may be created later), well within timeout.
func TestMissingTopic(t *testing.T) {
	t.Parallel()
	c := newCluster(t, 1)
	d := openOn(t, c, nil, map[string]any{"topic": "not-created", "timeout": "10s"})
	_, err := d.Deliver(context.Background(), destinationtest.NewMessage([]byte("x"), "text/plain"))
	checkRetriable(t, err)
	if !errors.Is(err, kerr.UnknownTopicOrPartition) {
		t.Errorf("got %v, want an error matching kerr.UnknownTopicOrPartition", err)
	}
}
