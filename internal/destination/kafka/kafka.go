// Package kafka is the kafka destination: it produces one record per
// delivery to a Kafka topic, and a delivery counts only once the partition
// leader has confirmed the record with acks=all (every in-sync replica has
// it).
//
// Options: brokers, the seed brokers (host:port, required); topic
// (required; it must exist, the producer does not create topics);
// client_id (default "hookd"); timeout, the bound of one produce from
// Deliver to the broker's ack (default 30s); max_message_bytes, the largest
// body sent (default 1MB, which fits Kafka's default message.max.bytes;
// at most 64MiB): a larger body fails
// permanently, without being sent.
//
// # Records
//
// Each delivery is one record on the configured topic:
//
//   - key: the event's key (the source's event.key) when it has one, else
//     the event id. Records are assigned to partitions by the Kafka
//     (murmur2) hash of the key, as the Java client does, so all records of
//     one key go to one partition.
//   - value: the event's raw body, byte for byte.
//   - timestamp: when hookd received the event (ReceivedAt), to the
//     millisecond.
//   - headers: hookd-event-id, hookd-event-type, hookd-source,
//     hookd-delivery-id, hookd-attempt (decimal, 1 for the first attempt)
//     and content-type (the request's Content-Type, possibly empty).
//
// The attempt log records where the record landed, as "partition P offset
// O".
//
// # Acknowledgement and errors
//
// The producer is idempotent and requires acks=all: Deliver returns nil only
// after the leader confirmed the record. A broker error, an unreachable
// cluster or a produce not confirmed within timeout is a retriable error
// ("kafka: …"). A body over max_message_bytes, or a record the client or
// broker finds too large (MESSAGE_TOO_LARGE), is a permanent failure: no
// retry can change it. Records are batched up to max_message_bytes + 16KiB,
// so the topic's max.message.bytes should be at least that much (or
// max_message_bytes lowered to fit), else a batch of several records may be
// refused as too large.
//
// # Ordering
//
// Kafka keeps the order of records within a partition. With the
// destination's ordering set to key (or fifo), hookd delivers the events of
// one key one at a time and in order, and since the record key is the event
// key they land in one partition in that order: consumers see per-key
// order. With ordering none, attempts run concurrently and a retried event
// may land after events received later.
//
// # Delivery guarantee
//
// Delivery is at least once. An attempt whose outcome is unknown — the
// timeout or the caller's context ran out while the record was in flight,
// the ack was lost, hookd stopped before recording the outcome — is retried
// and the record may then appear twice (idempotence only removes the
// producer's own resends within one client session). Consumers deduplicate
// by the hookd-event-id header; hookd-attempt and hookd-delivery-id tell the
// copies apart.
//
// # Network
//
// Every connection, to the seed brokers and to the brokers they advertise,
// is dialed through hookd's egress guard, so egress.allow_private must
// include the brokers' addresses when they are private. TLS and SASL are not
// supported yet: the connection is plaintext and unauthenticated.
package kafka

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"

	"hookd/internal/destination"
)

// Type is the destination type key.
const Type = "kafka"

func init() {
	destination.Register(Type, destination.Decoded(New))
}

// Record header names.
const (
	HeaderEventID     = "hookd-event-id"
	HeaderEventType   = "hookd-event-type"
	HeaderSource      = "hookd-source"
	HeaderDeliveryID  = "hookd-delivery-id"
	HeaderAttempt     = "hookd-attempt"
	HeaderContentType = "content-type"
)

// batchHeadroom is what a record batch may hold beyond max_message_bytes:
// the record's key, headers and framing.
const batchHeadroom = 16 << 10

// maxDialTimeout bounds one connection attempt to a broker (less when
// timeout is shorter).
const maxDialTimeout = 10 * time.Second

// Destination produces records to one topic. It is safe for concurrent use.
type Destination struct {
	s    *settings
	cl   *kgo.Client
	conn *connHook

	mu     sync.RWMutex // held (read) while handing a record to cl
	closed bool
}

var _ destination.Destination = (*Destination)(nil)

// New validates o and creates the producer; it does not connect (the
// first Deliver does). Errors name the option at fault. env may be nil; a
// nil env.Egress (tests only) dials without the egress guard.
func New(env *destination.Env, o Options) (*Destination, error) {
	s, err := o.validate()
	if err != nil {
		return nil, err
	}
	hook := &connHook{}
	dialTimeout := min(s.timeout, maxDialTimeout)
	var dial func(ctx context.Context, network, addr string) (net.Conn, error)
	if env != nil && env.Egress != nil {
		dial = env.Egress.DialContext
	} else {
		dial = (&net.Dialer{}).DialContext
	}
	kopts := []kgo.Opt{
		kgo.SeedBrokers(s.brokers...),
		kgo.ClientID(s.clientID),
		kgo.Dialer(func(ctx context.Context, network, addr string) (net.Conn, error) {
			ctx, cancel := context.WithTimeout(ctx, dialTimeout)
			defer cancel()
			return dial(ctx, network, addr)
		}),
		kgo.WithHooks(hook),
		kgo.DefaultProduceTopic(s.topic),
		kgo.DefaultProduceTopicAlways(),
		// Idempotent writes are kgo's default (DisableIdempotentWrite is
		// not used here) and require acks=all, also kgo's default; acks=all
		// is set explicitly so that no change of default can weaken it.
		kgo.RequiredAcks(kgo.AllISRAcks()),
		// timeout is enforced through each record's context, not with
		// kgo.RecordDeliveryTimeout: that counts from the record's
		// timestamp, which is the event's ReceivedAt, so it would fail
		// every retry of an event older than timeout before sending it.
		kgo.RecordPartitioner(kgo.StickyKeyPartitioner(nil)),
		kgo.ProducerBatchMaxBytes(int32(s.maxMessageBytes + batchHeadroom)),
		// Each Deliver waits for its record: lingering would only add
		// latency.
		kgo.ProducerLinger(0),
	}
	cl, err := kgo.NewClient(kopts...)
	if err != nil {
		return nil, fmt.Errorf("kafka: %w", err)
	}
	return &Destination{s: s, cl: cl, conn: hook}, nil
}

// errClosed is returned by Deliver after Close.
var errClosed = errors.New("kafka: destination closed")

// produced is the outcome of one record.
type produced struct {
	partition int32
	offset    int64
	err       error
}

// Deliver produces one record and waits for the broker's ack (acks=all),
// at most timeout. A nil error means the record is written. A ctx already
// done gives an error wrapping ctx's error and sends nothing; a ctx done
// while waiting returns at once with an error wrapping ctx's error (the
// record may still be written: the outcome is unknown and retriable).
func (d *Destination) Deliver(ctx context.Context, m *destination.Message) (destination.Result, error) {
	if m == nil || m.Event == nil {
		return destination.Result{}, destination.Permanent(errors.New("kafka: no event to deliver"))
	}
	if err := ctx.Err(); err != nil {
		return destination.Result{}, fmt.Errorf("kafka: not sent: %w", err)
	}
	e := m.Event
	if int64(len(e.Body)) > d.s.maxMessageBytes {
		return destination.Result{}, destination.Permanent(fmt.Errorf(
			"kafka: body of %d bytes is larger than max_message_bytes (%d): not sent", len(e.Body), d.s.maxMessageBytes))
	}
	rec := d.record(m)

	pctx, cancel := context.WithTimeout(ctx, d.s.timeout)
	defer cancel()
	done := make(chan produced, 1)

	d.mu.RLock()
	if d.closed {
		d.mu.RUnlock()
		return destination.Result{}, errClosed
	}
	start := time.Now()
	d.cl.Produce(pctx, rec, func(r *kgo.Record, err error) {
		done <- produced{partition: r.Partition, offset: r.Offset, err: err}
	})
	d.mu.RUnlock()

	select {
	case p := <-done:
		if p.err == nil {
			return destination.Result{ResponseExcerpt: fmt.Appendf(nil, "partition %d offset %d", p.partition, p.offset)}, nil
		}
		return destination.Result{}, d.classify(ctx, p.err, start)
	case <-pctx.Done():
		return destination.Result{}, d.classify(ctx, pctx.Err(), start)
	}
}

// record maps m to a Kafka record.
func (d *Destination) record(m *destination.Message) *kgo.Record {
	e := m.Event
	key := e.Key
	if key == "" {
		key = e.ID
	}
	return &kgo.Record{
		Topic:     d.s.topic,
		Key:       []byte(key),
		Value:     e.Body,
		Timestamp: e.ReceivedAt,
		Headers: []kgo.RecordHeader{
			{Key: HeaderEventID, Value: []byte(e.ID)},
			{Key: HeaderEventType, Value: []byte(e.Type)},
			{Key: HeaderSource, Value: []byte(e.Source)},
			{Key: HeaderDeliveryID, Value: []byte(m.DeliveryID)},
			{Key: HeaderAttempt, Value: strconv.AppendInt(nil, int64(m.Attempt), 10)},
			{Key: HeaderContentType, Value: []byte(e.ContentType)},
		},
	}
}

// classify turns a failed produce into the error Deliver returns. ctx is
// the caller's context; err is the record's error or the produce
// context's.
func (d *Destination) classify(ctx context.Context, err error, start time.Time) error {
	switch {
	case errors.Is(err, kerr.MessageTooLarge):
		return destination.Permanent(fmt.Errorf("kafka: record too large for topic %q: %w", d.s.topic, err))
	case errors.Is(err, kgo.ErrClientClosed):
		return errClosed
	case ctx.Err() != nil:
		// The caller gave up (shutdown, the engine's own deadline).
		return fmt.Errorf("kafka: produce to topic %q not confirmed: %w", d.s.topic, ctx.Err())
	case errors.Is(err, context.DeadlineExceeded) || errors.Is(err, kgo.ErrRecordTimeout):
		if cerr := d.conn.since(start.Add(-d.s.timeout)); cerr != nil {
			return fmt.Errorf("kafka: produce to topic %q not confirmed within %s: %w (last broker connection error: %w)",
				d.s.topic, d.s.timeout, err, cerr)
		}
		return fmt.Errorf("kafka: produce to topic %q not confirmed within %s: %w", d.s.topic, d.s.timeout, err)
	default:
		return fmt.Errorf("kafka: produce to topic %q: %w", d.s.topic, err)
	}
}

// Close stops the producer: records not yet confirmed fail (their
// Delivers return a retriable error), later Delivers fail, and a second
// Close returns nil.
func (d *Destination) Close() error {
	d.mu.Lock()
	if d.closed {
		d.mu.Unlock()
		return nil
	}
	d.closed = true
	d.mu.Unlock()
	d.cl.Close()
	return nil
}

// connHook remembers the last failed connection attempt to a broker, so
// that a produce that timed out can say why (a refused dial, an egress
// refusal).
type connHook struct {
	last atomic.Pointer[connFailure]
}

type connFailure struct {
	at  time.Time
	err error
}

var _ kgo.HookBrokerConnect = (*connHook)(nil)

// OnBrokerConnect implements kgo.HookBrokerConnect.
func (h *connHook) OnBrokerConnect(_ kgo.BrokerMetadata, _ time.Duration, _ net.Conn, err error) {
	if err != nil {
		h.last.Store(&connFailure{at: time.Now(), err: err})
		return
	}
	h.last.Store(nil)
}

// since returns the last connection error if it happened at or after t
// and no connection has succeeded since.
func (h *connHook) since(t time.Time) error {
	if f := h.last.Load(); f != nil && !f.at.Before(t) {
		return f.err
	}
	return nil
}
