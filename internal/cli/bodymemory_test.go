package cli

import (
	"bufio"
	"bytes"
	"io"
	"net"
	"net/http"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"hookd/internal/config"
)

// Many connections that each send almost all of a 1 MiB body and stall
// hold no more than server.max_body_memory_per_address of the memory for
// bodies: the excess ones are answered 503 with Retry-After at once and
// their connections closed, the process's heap grows by about the budget,
// not by what was sent, and another address is still served.
func TestStalledBodiesKeepMemoryBounded(t *testing.T) {
	const (
		conns   = 80
		perAddr = 8 << 20
	)
	cfg, err := config.Parse([]byte(`
admin: {tokens: [tok]}
server: {max_body_memory: 16MiB, max_body_memory_per_address: 8MiB, body_timeout: 2m, read_timeout: 3m}
sources:
  - {name: small}
`))
	if err != nil {
		t.Fatal(err)
	}
	cfg.Storage.Path = t.TempDir()
	base, _ := runApp(t, cfg)
	addr := strings.TrimPrefix(base, "http://")
	// The attacker's connections come from 127.0.0.2, the legitimate
	// client's from 127.0.0.1: two remote addresses.
	attacker := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.IPv4(127, 0, 0, 2)}}
	probe, err := attacker.Dial("tcp", addr)
	if err != nil {
		t.Skipf("cannot dial from 127.0.0.2: %v", err)
	}
	probe.Close()

	body := bytes.Repeat([]byte("x"), 1<<20-1)
	head := []byte("POST /in/small HTTP/1.1\r\nHost: hookd\r\nContent-Type: text/plain\r\nContent-Length: 1048576\r\n\r\n")
	type result struct {
		status     int
		retryAfter string
		closes     bool
		err        error
	}
	results := make(chan result, conns)
	var (
		mu   sync.Mutex
		open []net.Conn
	)
	t.Cleanup(func() {
		mu.Lock()
		defer mu.Unlock()
		for _, c := range open {
			c.Close()
		}
	})
	runtime.GC()
	var before runtime.MemStats
	runtime.ReadMemStats(&before)
	for range conns {
		c, err := attacker.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		mu.Lock()
		open = append(open, c)
		mu.Unlock()
		go func() {
			// A refused connection is closed under this write: its error
			// says nothing.
			c.Write(head)
			c.Write(body)
		}()
		go func() {
			resp, err := http.ReadResponse(bufio.NewReader(c), nil)
			if err != nil {
				results <- result{err: err}
				return
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			results <- result{status: resp.StatusCode, retryAfter: resp.Header.Get("Retry-After"), closes: resp.Close}
		}()
	}
	// At most perAddr/(1 MiB - 1) connections can hold their bodies; every
	// other one is refused.
	refused, answered := 0, 0
	deadline := time.After(60 * time.Second)
wait:
	for refused < conns-perAddr/len(body) {
		select {
		case r := <-results:
			refused++
			if r.err != nil {
				// Closed before its answer could be read.
				continue
			}
			answered++
			if r.status != http.StatusServiceUnavailable || r.retryAfter == "" || !r.closes {
				t.Errorf("a refused connection: got %d, Retry-After %q, Connection: close %v; want 503, a Retry-After and close", r.status, r.retryAfter, r.closes)
			}
		case <-deadline:
			t.Errorf("got %d connections refused, want at least %d of %d", refused, conns-perAddr/len(body), conns)
			break wait
		}
	}
	if refused > 0 && answered == 0 {
		t.Errorf("no refused connection got its 503 answer")
	}
	// Another address is served while the attacker holds its share.
	postEvent(t, base, "small", `{"ok":true}`)

	runtime.GC()
	var after runtime.MemStats
	runtime.ReadMemStats(&after)
	grew := int64(after.HeapInuse) - int64(before.HeapInuse)
	t.Logf("heap in use: %d MiB before, %d MiB after, %d of %d connections refused (%d answered 503)", before.HeapInuse>>20, after.HeapInuse>>20, refused, conns, answered)
	if grew > 4*perAddr {
		t.Errorf("heap in use grew by %d MiB, want under %d MiB (the attacker's address may hold %d MiB of bodies)", grew>>20, 4*perAddr>>20, perAddr>>20)
	}
}
