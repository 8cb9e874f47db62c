package webhook

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"hookd/internal/destination"
	"hookd/internal/destination/destinationtest"
	"hookd/internal/egress"
)

// These tests connect only to 127.0.0.1 (and listen on 127.0.0.2). The
// guard's Dialer has a Control hook that aborts any other address before
// connect(2), so a public answer from a fake resolver sends nothing.

var errAborted = errors.New("test: connect aborted before any packet was sent")

// guardEnv returns an Env named "orders" with a guard allowing
// allowPrivate and plain http to allowHTTP, whose lookups are answered by
// resolve (nil: a lookup fails the test), and the addresses it let through
// to connect(2).
func guardEnv(t *testing.T, allowPrivate, allowHTTP []string, resolve func(host string) []netip.Addr) (*destination.Env, func() []string) {
	t.Helper()
	g, err := egress.NewGuard(allowPrivate, allowHTTP)
	if err != nil {
		t.Fatalf("NewGuard: %v", err)
	}
	var (
		mu   sync.Mutex
		seen []string
	)
	g.Dialer = &net.Dialer{Control: func(_, address string, _ syscall.RawConn) error {
		mu.Lock()
		seen = append(seen, address)
		mu.Unlock()
		if !strings.HasPrefix(address, "127.0.0.1:") {
			return errAborted
		}
		return nil
	}}
	g.Resolver = lookupFunc(func(host string) ([]netip.Addr, error) {
		if resolve == nil {
			t.Errorf("unexpected lookup of %q", host)
			return nil, errors.New("test: no lookups")
		}
		return resolve(host), nil
	})
	env := newClock(t0).env()
	env.Name = "orders"
	env.Egress = g
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

// TestEgressRefusedAtOpen is issue 5, acceptance 3, at creation.
func TestEgressRefusedAtOpen(t *testing.T) {
	t.Parallel()
	tests := []struct{ name, url, want string }{
		{"Loopback", "https://127.0.0.1/hook", "address 127.0.0.1 is loopback"},
		{"Localhost", "https://localhost/hook", "host localhost is loopback"},
		{"LoopbackV6", "https://[::1]/hook", "address ::1 is loopback"},
		{"Unspecified", "https://0.0.0.0/hook", "address 0.0.0.0 is unspecified"},
		{"Metadata", "http://169.254.169.254/latest/meta-data/", "cloud metadata"},
		{"MappedMetadata", "https://[::ffff:169.254.169.254]/", "embeds 169.254.169.254"},
		{"Private10", "https://10.0.0.5/", "private"},
		{"Private172", "https://172.16.0.1/", "private"},
		{"Private192", "https://192.168.1.1/", "private"},
		{"CGNAT", "https://100.64.0.1/", "CGNAT"},
		{"UniqueLocal", "https://[fd00::5]/", "unique local"},
		{"Decimal", "https://2130706433/", "host 2130706433 (127.0.0.1) is loopback"},
		{"Hex", "https://0x7f000001/", "host 0x7f000001 (127.0.0.1) is loopback"},
		{"Short", "https://127.1/", "host 127.1 (127.0.0.1) is loopback"},
		{"PlainHTTP", "http://hooks.example.com/", "must use https"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			env, connects := guardEnv(t, nil, nil, nil)
			_, err := destination.Open(context.Background(), Type, env, destinationtest.Options(map[string]any{"url": tt.url}))
			if err == nil {
				t.Fatalf("Open(%s) = nil error, want refused", tt.url)
			}
			if !errors.Is(err, egress.ErrRefused) {
				t.Errorf("Open(%s) = %v, want the guard's refusal", tt.url, err)
			}
			if !strings.Contains(err.Error(), `destination "orders": url: `) || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("Open(%s) = %q, want it to name the destination, the option and %q", tt.url, err, tt.want)
			}
			if got := connects(); len(got) != 0 {
				t.Errorf("connect attempted to %v, want none", got)
			}
		})
	}
	// Other schemes are refused by the options already.
	for _, raw := range []string{"file:///etc/passwd", "gopher://127.0.0.1:25/_HELO", "ftp://example.com/"} {
		env, _ := guardEnv(t, nil, nil, nil)
		if _, err := destination.Open(context.Background(), Type, env, destinationtest.Options(map[string]any{"url": raw})); err == nil || !strings.Contains(err.Error(), "scheme") {
			t.Errorf("Open(%s) = %v, want the scheme refused", raw, err)
		}
	}
}

func TestEgressAllowPrivate(t *testing.T) {
	t.Parallel()
	sink := newSink(t, nil)
	env, connects := guardEnv(t, []string{"127.0.0.0/8"}, nil, nil)
	d := openOpts(t, env, map[string]any{"url": sink.URL + "/hook"})
	if _, err := d.Deliver(deliverCtx(t), message(1)); err != nil {
		t.Fatalf("Deliver: %v", err)
	}
	if n := len(sink.requests()); n != 1 {
		t.Errorf("sink got %d requests, want 1", n)
	}
	if got := connects(); len(got) != 1 || !strings.HasPrefix(got[0], "127.0.0.1:") {
		t.Errorf("connects: got %v, want one to 127.0.0.1", got)
	}
}

// TestEgressConformance runs the destination suite with a guard that
// allows the sinks.
func TestEgressConformance(t *testing.T) {
	t.Parallel()
	destinationtest.Run(t, func(t *testing.T) (destination.Destination, destinationtest.Sink) {
		sink := newSink(t, nil)
		env, _ := guardEnv(t, []string{"127.0.0.0/8"}, nil, nil)
		d, err := destination.Open(context.Background(), Type, env,
			destinationtest.Options(map[string]any{"url": sink.URL + "/hook"}))
		if err != nil {
			t.Fatalf("Open: %v", err)
		}
		return d, sink
	})
}

// TestEgressRefusedAtDial: a name that resolves to a blocked address (and,
// alternately, to a public one: DNS rebinding) never gets a connection to
// it. Nothing reaches the sink.
func TestEgressRefusedAtDial(t *testing.T) {
	t.Parallel()
	sink := newSink(t, nil)
	_, port, _ := net.SplitHostPort(sink.Listener.Addr().String())
	var lookups atomic.Int64
	answers := []netip.Addr{netip.MustParseAddr("93.184.216.34"), netip.MustParseAddr("127.0.0.1")}
	env, connects := guardEnv(t, nil, []string{"rebind.test"}, func(string) []netip.Addr {
		return []netip.Addr{answers[int(lookups.Add(1)-1)%len(answers)]}
	})
	d := openOpts(t, env, map[string]any{"url": "http://rebind.test:" + port + "/hook"})
	const attempts = 10
	var refused int
	for i := range attempts {
		res, err := d.Deliver(deliverCtx(t), message(i+1))
		switch {
		case errors.Is(err, egress.ErrRefused):
			refused++
			if !strings.Contains(err.Error(), "127.0.0.1 is loopback") {
				t.Errorf("attempt %d: %q, want the reason", i+1, err)
			}
		case errors.Is(err, errAborted):
		default:
			t.Fatalf("attempt %d: %v (status %d), want refused or aborted", i+1, err, res.StatusCode)
		}
		if got := outcome(err); got != "retry" {
			t.Errorf("attempt %d: outcome %s, want retry", i+1, got)
		}
	}
	if refused != attempts/2 || lookups.Load() != attempts {
		t.Errorf("%d of %d attempts refused after %d lookups, want %d after %d", refused, attempts, lookups.Load(), attempts/2, attempts)
	}
	if n := len(sink.requests()); n != 0 {
		t.Errorf("sink got %d requests, want 0", n)
	}
	for _, a := range connects() {
		if !strings.HasPrefix(a, "93.184.216.34:") {
			t.Errorf("connect attempted to %s, want only the (aborted) public answer", a)
		}
	}
}

// TestEgressRedirectNotFollowed: an allowed sink redirects to a 127.0.0.2
// server that is not allowed; the 3xx is the answer and nothing reaches
// 127.0.0.2.
func TestEgressRedirectNotFollowed(t *testing.T) {
	t.Parallel()
	other, err := net.Listen("tcp", "127.0.0.2:0")
	if err != nil {
		t.Skipf("cannot listen on 127.0.0.2: %v", err)
	}
	t.Cleanup(func() { other.Close() })
	sink := newSink(t, func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "http://"+other.Addr().String()+"/internal", http.StatusTemporaryRedirect)
	})
	env, connects := guardEnv(t, []string{"127.0.0.1/32"}, nil, nil)
	d := openOpts(t, env, map[string]any{"url": sink.URL + "/hook"})
	res, err := d.Deliver(deliverCtx(t), message(1))
	if got := outcome(err); got != "retry" {
		t.Errorf("outcome: got %s (%v), want retry", got, err)
	}
	if res.StatusCode != http.StatusTemporaryRedirect {
		t.Errorf("StatusCode: got %d, want 307", res.StatusCode)
	}
	for _, a := range connects() {
		if !strings.HasPrefix(a, "127.0.0.1:") {
			t.Errorf("connect attempted to %s, want only 127.0.0.1", a)
		}
	}
	_ = other.(*net.TCPListener).SetDeadline(time.Now().Add(100 * time.Millisecond))
	if c, err := other.Accept(); err == nil {
		c.Close()
		t.Errorf("127.0.0.2 accepted a connection, want none")
	}
}
