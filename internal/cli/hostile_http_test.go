package cli

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"testing"
	"time"

	"hookd/internal/config"
)

const hostileConfig = `
admin: {tokens: [tok]}
server: {max_in_flight: 64}
sources:
  - {name: s}
`

func startHostileApp(t *testing.T) (*App, string) {
	t.Helper()
	cfg, err := config.Parse([]byte(hostileConfig))
	if err != nil {
		t.Fatal(err)
	}
	cfg.Storage.Path = t.TempDir()
	return startApp(t, cfg, nil)
}

// Connections that trickle a request body hold no slot of the in-flight
// cap: while 300 of them are open (more than four times
// server.max_in_flight), other senders and the admin API are answered.
func TestSlowBodiesDoNotStarveOthers(t *testing.T) {
	app, base := startHostileApp(t)
	addr := app.Addr()
	const slow = 300
	var conns []net.Conn
	t.Cleanup(func() {
		for _, c := range conns {
			c.Close()
		}
	})
	for i := range slow {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatalf("slow connection %d: %v", i, err)
		}
		conns = append(conns, c)
		// The headers and the first byte of a 1,000-byte body; the rest
		// never comes while the test runs.
		if _, err := fmt.Fprintf(c, "POST /in/s HTTP/1.1\r\nHost: hookd\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{"); err != nil {
			t.Fatalf("slow connection %d: %v", i, err)
		}
	}
	// Every slow request has been read up to its body (net/http takes a
	// connection out of the fresh set when its request begins).
	deadline := time.Now().Add(30 * time.Second)
	for {
		app.freshMu.Lock()
		n := len(app.fresh)
		app.freshMu.Unlock()
		if n == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d slow connections still not started after 30s", n)
		}
		time.Sleep(10 * time.Millisecond)
	}
	statuses := map[int]int{}
	for i := range 50 {
		statuses[postWithKey(t, base, "s", "", fmt.Sprintf(`{"n": %d}`, i))]++
	}
	if statuses[200] != 50 {
		t.Errorf("50 POSTs while %d bodies trickle: got statuses %v, want all 200", slow, statuses)
	}
	if code, v := apiDo(t, "GET", base+"/api/v1/sources", "tok", ""); code != 200 {
		t.Errorf("GET /api/v1/sources while %d bodies trickle: got %d %v, want 200", slow, code, v)
	}
}

// A request with both Content-Length and Transfer-Encoding is refused with
// 400 and its connection closed (RFC 9112 §6.3): whatever follows on that
// connection is never read as a request. Plain chunked and plain
// Content-Length requests keep working, connection kept.
func TestRequestSmugglingIsRefused(t *testing.T) {
	app, base := startHostileApp(t)
	addr := app.Addr()
	testRequestSmuggling(t, func() (net.Conn, error) { return net.Dial("tcp", addr) }, func() int {
		code, v := apiDo(t, "GET", base+"/api/v1/events", "tok", "")
		if code != 200 {
			t.Fatalf("GET /api/v1/events: %d %v", code, v)
		}
		items, _ := v["data"].([]any)
		return len(items)
	})
}

// testRequestSmuggling is TestRequestSmugglingIsRefused on connections
// from dial; events counts the events stored.
func testRequestSmuggling(t *testing.T, dial func() (net.Conn, error), events func() int) {
	// The second request is what a front proxy framing by Content-Length
	// would not see: hookd must never answer it.
	const next = "POST /in/s HTTP/1.1\r\nHost: hookd\r\nContent-Length: 2\r\n\r\n{}"
	for name, head := range map[string]string{
		"LengthFirst":     "Content-Length: 5\r\nTransfer-Encoding: chunked\r\n",
		"EncodingFirst":   "Transfer-Encoding: chunked\r\nContent-Length: 5\r\n",
		"LowerCase":       "transfer-encoding: chunked\r\ncontent-length: 5\r\n",
		"SecondOnTheConn": "",
	} {
		t.Run(name, func(t *testing.T) {
			c, err := dial()
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			c.SetDeadline(time.Now().Add(20 * time.Second))
			br := bufio.NewReader(c)
			if head == "" {
				// A good request first: the connection is kept, then the
				// smuggling attempt comes on it.
				fmt.Fprintf(c, "POST /in/s HTTP/1.1\r\nHost: hookd\r\nContent-Length: 2\r\n\r\n{}")
				resp, err := http.ReadResponse(br, nil)
				if err != nil {
					t.Fatalf("first request: %v", err)
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode != 200 || resp.Close {
					t.Fatalf("first request: got %d close=%v, want 200, connection kept", resp.StatusCode, resp.Close)
				}
				head = "Content-Length: 5\r\nTransfer-Encoding: chunked\r\n"
			}
			fmt.Fprintf(c, "POST /in/s HTTP/1.1\r\nHost: hookd\r\n%s\r\n0\r\n\r\n%s", head, next)
			resp, err := http.ReadResponse(br, nil)
			if err != nil {
				t.Fatalf("read the answer: %v", err)
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			var e struct {
				Error struct{ Code, Message string }
			}
			if resp.StatusCode != 400 || json.Unmarshal(b, &e) != nil || e.Error.Code != "invalid" {
				t.Errorf("got %d %s, want 400 with an invalid error", resp.StatusCode, b)
			}
			if !resp.Close {
				t.Errorf("answer without Connection: close")
			}
			if more, err := http.ReadResponse(br, nil); err == nil {
				more.Body.Close()
				t.Errorf("the request after it was answered %d, want the connection closed", more.StatusCode)
			} else if !errors.Is(err, io.EOF) && !errors.Is(err, io.ErrUnexpectedEOF) {
				t.Errorf("after the answer: got %v, want the connection closed (EOF)", err)
			}
		})
	}
	// Nothing of the refused requests was stored: only the good first
	// request of SecondOnTheConn.
	if n := events(); n != 1 {
		t.Errorf("stored events: got %d, want 1", n)
	}

	t.Run("PlainChunkedIsKept", func(t *testing.T) {
		c, err := dial()
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(20 * time.Second))
		br := bufio.NewReader(c)
		for i := range 2 {
			body := fmt.Sprintf(`{"chunk": %d}`, i)
			fmt.Fprintf(c, "POST /in/s HTTP/1.1\r\nHost: hookd\r\nTransfer-Encoding: chunked\r\n\r\n%x\r\n%s\r\n0\r\n\r\n", len(body), body)
			resp, err := http.ReadResponse(br, nil)
			if err != nil {
				t.Fatalf("request %d: %v", i, err)
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode != 200 || resp.Close {
				t.Fatalf("chunked request %d: got %d close=%v, want 200, connection kept", i, resp.StatusCode, resp.Close)
			}
		}
	})
}

// A 404 names what was asked for without echoing all of it: a 40 KB source
// name or path is answered in well under 1 KiB.
func TestNotFoundDoesNotEchoLongNames(t *testing.T) {
	_, base := startHostileApp(t)
	long := make([]byte, 40<<10)
	for i := range long {
		long[i] = 'a'
	}
	for _, path := range []string{"/in/" + string(long), "/" + string(long)} {
		resp, err := http.Post(base+path, "application/json", nil)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusNotFound || len(b) > 1024 {
			t.Errorf("POST %s…: got %d with %d bytes, want 404 with under 1024", path[:8], resp.StatusCode, len(b))
		}
	}
}
