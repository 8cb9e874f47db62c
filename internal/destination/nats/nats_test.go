package nats

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"os"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"hookd"
	"hookd/internal/destination"
	"hookd/internal/destination/destinationtest"
	"hookd/internal/egress"
)

// testServer is the NATS server (with JetStream) the tests publish to.
const testServer = "nats://127.0.0.1:4222"

var (
	serverOnce sync.Once
	serverErr  error
)

// natsURL returns the test server's URL once it has checked that the
// server answers and has JetStream. When it does not, the test skips, or
// fails with HOOKD_TEST_REQUIRE_SERVICES=1.
func natsURL(t *testing.T) string {
	t.Helper()
	serverOnce.Do(func() {
		nc, err := nats.Connect(testServer, nats.Timeout(2*time.Second))
		if err != nil {
			serverErr = fmt.Errorf("no NATS server at %s: %w", testServer, err)
			return
		}
		defer nc.Close()
		js, err := jetstream.New(nc)
		if err == nil {
			ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
			_, err = js.AccountInfo(ctx)
			cancel()
		}
		if err != nil {
			serverErr = fmt.Errorf("the NATS server at %s has no JetStream: %w", testServer, err)
		}
	})
	if serverErr != nil {
		msg := serverErr.Error() + " (start nats-server -js)"
		if os.Getenv("HOOKD_TEST_REQUIRE_SERVICES") == "1" {
			t.Fatal(msg)
		}
		t.Skip(msg + "; set HOOKD_TEST_REQUIRE_SERVICES=1 to fail instead")
	}
	return testServer
}

// testJS returns a JetStream client of the test's own, closed at cleanup.
func testJS(t *testing.T) jetstream.JetStream {
	t.Helper()
	nc, err := nats.Connect(natsURL(t))
	if err != nil {
		t.Fatalf("connect: %v", err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	return js
}

var nonName = regexp.MustCompile(`[^A-Za-z0-9]+`)

// uniqueName is the test's name made safe for stream names and subject
// tokens, with a random suffix, so that runs never collide.
func uniqueName(t *testing.T) string {
	name := nonName.ReplaceAllString(t.Name(), "_")
	if len(name) > 40 {
		name = name[len(name)-40:]
	}
	var b [6]byte
	if _, err := rand.Read(b[:]); err != nil {
		t.Fatal(err)
	}
	return strings.Trim(name, "_") + "_" + hex.EncodeToString(b[:])
}

// testStream is a stream of the test's own, capturing prefix+".>"; it is
// deleted at cleanup.
type testStream struct {
	js     jetstream.JetStream
	stream jetstream.Stream
	name   string
	prefix string
}

func newStream(t *testing.T, cfg jetstream.StreamConfig) *testStream {
	t.Helper()
	js := testJS(t)
	name := uniqueName(t)
	prefix := "hookdtest." + name
	cfg.Name = name
	cfg.Subjects = []string{prefix + ".>"}
	cfg.Storage = jetstream.MemoryStorage
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	st, err := js.CreateStream(ctx, cfg)
	if err != nil {
		t.Fatalf("create stream %s: %v", name, err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := js.DeleteStream(ctx, name); err != nil {
			t.Errorf("delete stream %s: %v", name, err)
		}
	})
	return &testStream{js: js, stream: st, name: name, prefix: prefix}
}

// messages returns every message in the stream, in order.
func (s *testStream) messages(t *testing.T) []*jetstream.RawStreamMsg {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	info, err := s.stream.Info(ctx)
	if err != nil {
		t.Fatalf("stream %s info: %v", s.name, err)
	}
	var out []*jetstream.RawStreamMsg
	if info.State.Msgs == 0 {
		return nil
	}
	for seq := info.State.FirstSeq; seq <= info.State.LastSeq; seq++ {
		m, err := s.stream.GetMsg(ctx, seq)
		if err != nil {
			t.Fatalf("stream %s: get message %d: %v", s.name, seq, err)
		}
		out = append(out, m)
	}
	return out
}

// Received implements destinationtest.Sink.
func (s *testStream) Received(t *testing.T) []destinationtest.Received {
	t.Helper()
	var out []destinationtest.Received
	for _, m := range s.messages(t) {
		out = append(out, destinationtest.Received{EventID: m.Header.Get(HeaderEventID), Body: m.Data})
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

func TestConformance(t *testing.T) {
	t.Parallel()
	url := natsURL(t)
	destinationtest.Run(t, func(t *testing.T) (destination.Destination, destinationtest.Sink) {
		s := newStream(t, jetstream.StreamConfig{})
		d, err := destination.Open(context.Background(), Type, &destination.Env{Name: t.Name()},
			destinationtest.Options(map[string]any{"url": url, "subject": s.prefix + ".events"}))
		if err != nil {
			t.Fatalf("Open: %v", err)
		}
		return d, s
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
			ID:          "evt_01J0000000000000000000000A",
			Source:      "stripe",
			Type:        "invoice.paid.v1",
			Key:         "cus_9",
			ReceivedAt:  time.Now(),
			ContentType: "application/json; charset=utf-8",
			Headers:     map[string][]string{"X-Secret": {"not sent"}},
			Body:        []byte("{\"a\":\"é\"}\n"),
		},
		DeliveryID: "dlv_01J0000000000000000000000B",
		Attempt:    3,
	}
}

func TestHeadersAndAck(t *testing.T) {
	t.Parallel()
	s := newStream(t, jetstream.StreamConfig{})
	d := openOpts(t, &destination.Env{Name: "orders"}, map[string]any{"url": natsURL(t), "subject": s.prefix + ".events"})
	m := testMessage()
	res := destinationtest.Deliver(t, d, m)
	if want := "stream " + s.name + " seq 1"; string(res.ResponseExcerpt) != want || res.StatusCode != 0 {
		t.Errorf("result: status %d, excerpt %q; want 0 and %q", res.StatusCode, res.ResponseExcerpt, want)
	}
	msgs := s.messages(t)
	if len(msgs) != 1 {
		t.Fatalf("stream holds %d messages, want 1", len(msgs))
	}
	got := msgs[0]
	if got.Subject != s.prefix+".events" {
		t.Errorf("subject %q, want %q", got.Subject, s.prefix+".events")
	}
	if !bytes.Equal(got.Data, m.Event.Body) {
		t.Errorf("data %q, want %q", got.Data, m.Event.Body)
	}
	want := map[string]string{
		HeaderEventID:     m.Event.ID,
		HeaderEventType:   m.Event.Type,
		HeaderSource:      m.Event.Source,
		HeaderDeliveryID:  m.DeliveryID,
		HeaderAttempt:     "3",
		HeaderContentType: m.Event.ContentType,
	}
	for k, v := range want {
		if vs := got.Header.Values(k); len(vs) != 1 || vs[0] != v {
			t.Errorf("header %s: %q, want [%q]", k, vs, v)
		}
	}
	for k := range got.Header {
		if _, ok := want[k]; !ok {
			t.Errorf("unexpected header %s: %q", k, got.Header[k])
		}
	}

	// Empty values are left out; the headers that are always there stay.
	m2 := destinationtest.NewMessage(nil, "")
	m2.Event.Type, m2.Event.Source = "", ""
	destinationtest.Deliver(t, d, m2)
	h := s.messages(t)[1].Header
	for _, k := range []string{HeaderEventType, HeaderSource, HeaderContentType} {
		if _, ok := h[k]; ok {
			t.Errorf("empty %s: header present (%q), want it left out", k, h[k])
		}
	}
	if h.Get(HeaderEventID) != m2.Event.ID || h.Get(HeaderAttempt) != "1" || h.Get(nats.MsgIdHdr) != "" {
		t.Errorf("headers %v: want event id %s, attempt 1, no Nats-Msg-Id", h, m2.Event.ID)
	}
}

func TestConnectionName(t *testing.T) {
	t.Parallel()
	s := newStream(t, jetstream.StreamConfig{})
	d := openOpts(t, &destination.Env{Name: "orders"}, map[string]any{"url": natsURL(t), "subject": s.prefix + ".x"})
	if got := d.nc.Opts.Name; got != "hookd/orders" {
		t.Errorf("connection name %q, want %q", got, "hookd/orders")
	}
}

func TestSubjectTypePlaceholder(t *testing.T) {
	t.Parallel()
	s := newStream(t, jetstream.StreamConfig{})
	d := openOpts(t, nil, map[string]any{"url": natsURL(t), "subject": s.prefix + ".ev.{type}"})
	types := []struct{ typ, token string }{
		{"invoice.paid.v1", "invoice.paid.v1"},
		{"", "untyped"},
		{"a b/c*>é", "a_b_c___"},
		{"x-y_Z.9", "x-y_Z.9"},
	}
	for _, c := range types {
		m := destinationtest.NewMessage([]byte(c.typ), "text/plain")
		m.Event.Type = c.typ
		destinationtest.Deliver(t, d, m)
	}
	msgs := s.messages(t)
	if len(msgs) != len(types) {
		t.Fatalf("stream holds %d messages, want %d", len(msgs), len(types))
	}
	for i, c := range types {
		if want := s.prefix + ".ev." + c.token; msgs[i].Subject != want {
			t.Errorf("type %q: subject %q, want %q", c.typ, msgs[i].Subject, want)
		}
	}
}

func TestSubjectToken(t *testing.T) {
	cases := map[string]string{
		"":                "untyped",
		"invoice.paid.v1": "invoice.paid.v1",
		"a b":             "a_b",
		"é":               "_",
		"\xff\xfe":        "__",
		"*":               "_",
		">":               "_",
		"a.>":             "a._",
		".x.":             "_.x._",
		"a..b":            "a._.b",
		".":               "_._",
		"a\r\nb":          "a__b",
		"UP_down-9":       "UP_down-9",
	}
	for typ, want := range cases {
		if got := SubjectToken(typ); got != want {
			t.Errorf("SubjectToken(%q) = %q, want %q", typ, got, want)
		}
		if err := checkSubject("p." + SubjectToken(typ)); err != nil {
			t.Errorf("type %q gives an invalid subject: %v", typ, err)
		}
	}
}

func TestNoStreamIsRetriable(t *testing.T) {
	t.Parallel()
	subject := "hookdtest.nostream." + uniqueName(t)
	d := openOpts(t, nil, map[string]any{"url": natsURL(t), "subject": subject, "timeout": "5s"})
	start := time.Now()
	_, err := d.Deliver(context.Background(), testMessage())
	if err == nil {
		t.Fatal("Deliver with no stream: got nil error")
	}
	t.Logf("Deliver with no stream: %v", err)
	if destination.IsPermanent(err) || destination.IsGone(err) {
		t.Errorf("Deliver with no stream: final error %v, want a retriable one", err)
	}
	if want := "nats: no JetStream stream captures subject " + subject; !strings.Contains(err.Error(), want) {
		t.Errorf("error %q, want it to contain %q", err, want)
	}
	if el := time.Since(start); el > 4*time.Second {
		t.Errorf("Deliver took %s, want it to fail well within the timeout", el)
	}
}

func TestDedupe(t *testing.T) {
	t.Parallel()
	for _, dedupe := range []bool{true, false} {
		t.Run(fmt.Sprint("dedupe=", dedupe), func(t *testing.T) {
			t.Parallel()
			s := newStream(t, jetstream.StreamConfig{Duplicates: time.Minute})
			d := openOpts(t, nil, map[string]any{"url": natsURL(t), "subject": s.prefix + ".e", "dedupe": dedupe})
			m := destinationtest.NewMessage([]byte("once"), "text/plain")
			first := destinationtest.Deliver(t, d, m)
			again := *m
			again.Attempt = 2
			second := destinationtest.Deliver(t, d, &again)
			other := destinationtest.NewMessage([]byte("other"), "text/plain")
			destinationtest.Deliver(t, d, other)

			msgs := s.messages(t)
			wantN := 3
			if dedupe {
				wantN = 2
			}
			if len(msgs) != wantN {
				t.Fatalf("stream holds %d messages, want %d", len(msgs), wantN)
			}
			if got := msgs[0].Header.Get(nats.MsgIdHdr); (got == m.Event.ID) != dedupe {
				t.Errorf("Nats-Msg-Id %q with dedupe %v", got, dedupe)
			}
			if dedupe {
				if want := "stream " + s.name + " seq 1 duplicate"; string(second.ResponseExcerpt) != want {
					t.Errorf("second publish: excerpt %q, want %q", second.ResponseExcerpt, want)
				}
				if msgs[1].Header.Get(HeaderEventID) != other.Event.ID {
					t.Errorf("second stored message is %s, want %s", msgs[1].Header.Get(HeaderEventID), other.Event.ID)
				}
			} else {
				if want := "stream " + s.name + " seq 2"; string(second.ResponseExcerpt) != want {
					t.Errorf("second publish: excerpt %q, want %q", second.ResponseExcerpt, want)
				}
				if msgs[1].Header.Get(HeaderEventID) != m.Event.ID || msgs[1].Header.Get(HeaderAttempt) != "2" {
					t.Errorf("second stored message: headers %v, want event %s attempt 2", msgs[1].Header, m.Event.ID)
				}
			}
			if want := "stream " + s.name + " seq 1"; string(first.ResponseExcerpt) != want {
				t.Errorf("first publish: excerpt %q, want %q", first.ResponseExcerpt, want)
			}
		})
	}
}

func TestTooLargeIsPermanent(t *testing.T) {
	t.Parallel()
	s := newStream(t, jetstream.StreamConfig{MaxMsgSize: 1000})
	d := openOpts(t, nil, map[string]any{"url": natsURL(t), "subject": s.prefix + ".e"})

	// Larger than the server's max_payload: refused by the client.
	big := destinationtest.NewMessage(make([]byte, d.nc.MaxPayload()+1), "application/octet-stream")
	_, err := d.Deliver(context.Background(), big)
	if !destination.IsPermanent(err) || !errors.Is(err, nats.ErrMaxPayload) {
		t.Errorf("Deliver over max_payload: got %v, want a Permanent error wrapping ErrMaxPayload", err)
	}
	t.Logf("Deliver over max_payload: %v", err)
	// Larger than the stream's max_msg_size: refused by JetStream.
	over := destinationtest.NewMessage(make([]byte, 2000), "application/octet-stream")
	_, err = d.Deliver(context.Background(), over)
	if !destination.IsPermanent(err) || !errors.Is(err, jetstream.ErrStreamMessageExceedsMaximum) {
		t.Errorf("Deliver over max_msg_size: got %v, want a Permanent error", err)
	}
	t.Logf("Deliver over max_msg_size: %v", err)
	if n := len(s.messages(t)); n != 0 {
		t.Errorf("stream holds %d messages, want 0", n)
	}
	// The connection is still usable.
	destinationtest.Deliver(t, d, destinationtest.NewMessage([]byte("small"), "text/plain"))
}

func TestOptionsErrors(t *testing.T) {
	t.Parallel()
	const u, subj = "nats://127.0.0.1:4222", "a.b"
	cases := []struct {
		name string
		opts map[string]any
		want string // prefix of the error
		has  string // also in the error
	}{
		{"NoURL", map[string]any{"subject": subj}, "url: required", ""},
		{"BlankURL", map[string]any{"url": " ", "subject": subj}, "url: required", ""},
		{"EmptyServerInList", map[string]any{"url": u + ",,", "subject": subj}, "url: ", "empty"},
		{"HTTPScheme", map[string]any{"url": "http://127.0.0.1:4222", "subject": subj}, "url: ", "scheme"},
		{"Credentials", map[string]any{"url": "nats://me:secret@127.0.0.1:4222", "subject": subj}, "url: ", "username and password"},
		{"NoHost", map[string]any{"url": "nats://:4222", "subject": subj}, "url: ", "no host"},
		{"BadPort", map[string]any{"url": "nats://127.0.0.1:99999", "subject": subj}, "url: ", "port"},
		{"NoSubject", map[string]any{"url": u}, "subject: required", ""},
		{"Wildcard", map[string]any{"url": u, "subject": "a.*"}, "subject: ", "wildcard"},
		{"FullWildcard", map[string]any{"url": u, "subject": "a.>"}, "subject: ", "wildcard"},
		{"EmptyToken", map[string]any{"url": u, "subject": "a..b"}, "subject: ", "empty token"},
		{"LeadingDot", map[string]any{"url": u, "subject": ".a"}, "subject: ", "empty token"},
		{"TrailingDot", map[string]any{"url": u, "subject": "a.{type}."}, "subject: ", "empty token"},
		{"Space", map[string]any{"url": u, "subject": "a b"}, "subject: ", "white space"},
		{"UnknownPlaceholder", map[string]any{"url": u, "subject": "a.{event_type}"}, "subject: ", "placeholder"},
		{"ZeroTimeout", map[string]any{"url": u, "subject": subj, "timeout": "0s"}, "timeout: ", "positive"},
		{"NegativeTimeout", map[string]any{"url": u, "subject": subj, "timeout": "-1s"}, "timeout: ", "positive"},
		{"BadTimeout", map[string]any{"url": u, "subject": subj, "timeout": "soon"}, "", "invalid duration"},
		{"UsernameOnly", map[string]any{"url": u, "subject": subj, "username": "me"}, "password: required", ""},
		{"PasswordOnly", map[string]any{"url": u, "subject": subj, "password": "pw"}, "username: required", ""},
		{"TokenAndUser", map[string]any{"url": u, "subject": subj, "token": "t", "username": "me", "password": "pw"}, "token: ", "cannot be combined"},
		{"UnknownKey", map[string]any{"url": u, "subject": subj, "stream": "S"}, "", "stream"},
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
			if strings.Contains(err.Error(), "secret") {
				t.Errorf("Open: error %q shows the password", err)
			}
		})
	}
}

func TestOptionsDefaults(t *testing.T) {
	t.Parallel()
	o := Options{URL: "127.0.0.1:4222, tls://nats.example.com", Subject: "a.{type}"}
	s, err := o.validate()
	if err != nil {
		t.Fatal(err)
	}
	if s.timeout != DefaultTimeout || s.connectTimeout != maxConnectTimeout || s.dedupe {
		t.Errorf("settings %+v: want timeout %s, connect timeout %s, dedupe off", s, DefaultTimeout, maxConnectTimeout)
	}
	if want := []string{"nats://127.0.0.1:4222", "tls://nats.example.com"}; !slices.Equal(s.servers, want) {
		t.Errorf("servers %q, want %q", s.servers, want)
	}
	if got := s.subjectFor("x y"); got != "a.x_y" {
		t.Errorf("subjectFor: %q, want a.x_y", got)
	}
}

func TestEgress(t *testing.T) {
	t.Parallel()
	url := natsURL(t)
	t.Run("Refused", func(t *testing.T) {
		t.Parallel()
		s := newStream(t, jetstream.StreamConfig{})
		g, err := egress.NewGuard(nil, nil)
		if err != nil {
			t.Fatal(err)
		}
		d := openOpts(t, &destination.Env{Name: "refused", Egress: g}, map[string]any{"url": url, "subject": s.prefix + ".e", "timeout": "2s"})
		_, err = d.Deliver(context.Background(), testMessage())
		if err == nil {
			t.Fatal("Deliver to a loopback server the guard refuses: got nil error")
		}
		t.Logf("Deliver refused by the guard: %v", err)
		if destination.IsPermanent(err) {
			t.Errorf("Deliver: final error %v, want a retriable one", err)
		}
		if !errors.Is(err, egress.ErrRefused) {
			t.Errorf("Deliver: got %v, want an error wrapping egress.ErrRefused", err)
		}
		if n := len(s.messages(t)); n != 0 {
			t.Errorf("stream holds %d messages, want 0", n)
		}
	})
	t.Run("AllowPrivate", func(t *testing.T) {
		t.Parallel()
		s := newStream(t, jetstream.StreamConfig{})
		g, err := egress.NewGuard([]string{"127.0.0.0/8"}, nil)
		if err != nil {
			t.Fatal(err)
		}
		d := openOpts(t, &destination.Env{Name: "allowed", Egress: g}, map[string]any{"url": url, "subject": s.prefix + ".e"})
		destinationtest.Deliver(t, d, testMessage())
		if n := len(s.messages(t)); n != 1 {
			t.Errorf("stream holds %d messages, want 1", n)
		}
	})
}

// closedPortURL returns a nats URL on which nothing listens.
func closedPortURL(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return "nats://" + addr
}

func TestServerDown(t *testing.T) {
	t.Parallel()
	start := time.Now()
	d := openOpts(t, &destination.Env{Name: "down"}, map[string]any{"url": closedPortURL(t), "subject": "a.b", "timeout": "500ms"})
	if el := time.Since(start); el > 3*time.Second {
		t.Errorf("Open with the server down took %s", el)
	}
	for range 2 {
		start = time.Now()
		_, err := d.Deliver(context.Background(), testMessage())
		if el := time.Since(start); el > time.Second {
			t.Errorf("Deliver with the server down took %s, want less than the 500ms timeout and a margin", el)
		}
		if err == nil {
			t.Fatal("Deliver with the server down: got nil error")
		}
		t.Logf("Deliver with the server down: %v", err)
		if destination.IsPermanent(err) || destination.IsGone(err) {
			t.Errorf("Deliver: final error %v, want a retriable one", err)
		}
		if !strings.Contains(err.Error(), "not connected") {
			t.Errorf("Deliver: error %q, want it to say not connected", err)
		}
	}
	start = time.Now()
	if err := d.Close(); err != nil {
		t.Errorf("Close: %v", err)
	}
	if el := time.Since(start); el > time.Second {
		t.Errorf("Close while reconnecting took %s", el)
	}
}

func TestCloseWaitsForPublishInProgress(t *testing.T) {
	t.Parallel()
	s := newStream(t, jetstream.StreamConfig{})
	d, err := destination.Open(context.Background(), Type, nil,
		destinationtest.Options(map[string]any{"url": natsURL(t), "subject": s.prefix + ".e"}))
	if err != nil {
		t.Fatal(err)
	}
	const n = 20
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for range n {
		wg.Go(func() {
			_, err := d.Deliver(context.Background(), destinationtest.NewMessage([]byte("x"), "text/plain"))
			errs <- err
		})
	}
	time.Sleep(5 * time.Millisecond)
	if err := d.Close(); err != nil {
		t.Errorf("Close: %v", err)
	}
	wg.Wait()
	close(errs)
	ok := 0
	for err := range errs {
		switch {
		case err == nil:
			ok++
		case !errors.Is(err, errClosed):
			t.Errorf("Deliver racing Close: %v, want nil or the closed error", err)
		}
	}
	if got := len(s.messages(t)); got != ok {
		t.Errorf("stream holds %d messages, %d Delivers succeeded", got, ok)
	}
}
