package httpserver

import (
	"errors"
	"io"
	"net/http"
	"net/netip"
	"sync"
)

// BodyBudget bounds the request body bytes that handlers hold in memory at
// once: in all (server.max_body_memory) and per remote address
// (server.max_body_memory_per_address; an IPv6 address counts with its
// /64). Bytes are counted as they arrive, not as a Content-Length declares
// them, and given back when the request ends. A request whose next bytes
// do not fit is refused at once: 503 with Retry-After, and its connection
// is closed. A nil *BodyBudget bounds nothing.
type BodyBudget struct {
	mu      sync.Mutex
	max     int64
	perAddr int64
	used    int64
	byAddr  map[string]int64
}

// NewBodyBudget returns a budget of max bytes in all and perAddr bytes per
// address (perAddr <= 0 or above max: max); nil when max <= 0.
func NewBodyBudget(max, perAddr int64) *BodyBudget {
	if max <= 0 {
		return nil
	}
	if perAddr <= 0 || perAddr > max {
		perAddr = max
	}
	return &BodyBudget{max: max, perAddr: perAddr, byAddr: map[string]int64{}}
}

// bodyReadChunk is the most one Read of a counted body takes at once: the
// bytes a request holds beyond its reservation are at most this.
const bodyReadChunk = 64 << 10

// errBodyMemory is what a counted body's Read returns once the budget
// cannot take its bytes; BodyReadError answers it 503.
var errBodyMemory = errors.New("the memory for request bodies is in use")

// Limit serves next with the request body counted against b.
func (b *BodyBudget) Limit(next http.Handler) http.Handler {
	if b == nil {
		return next
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Body == nil || r.Body == http.NoBody {
			next.ServeHTTP(w, r)
			return
		}
		cb := &countedBody{ReadCloser: r.Body, b: b, addr: AddressKey(r.RemoteAddr), h: w.Header()}
		defer func() { b.release(cb.addr, cb.held) }()
		r.Body = cb
		next.ServeHTTP(w, r)
	})
}

// Used reports the bytes held in all and by the address of remote (for
// tests and metrics).
func (b *BodyBudget) Used(remote string) (all, address int64) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.used, b.byAddr[AddressKey(remote)]
}

func (b *BodyBudget) reserve(addr string, n int64) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.used+n > b.max || b.byAddr[addr]+n > b.perAddr {
		return false
	}
	b.used += n
	b.byAddr[addr] += n
	return true
}

func (b *BodyBudget) release(addr string, n int64) {
	if n == 0 {
		return
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	b.used -= n
	if b.byAddr[addr] -= n; b.byAddr[addr] <= 0 {
		delete(b.byAddr, addr)
	}
}

// countedBody is a request body whose bytes are reserved in a BodyBudget
// as they are read. Only the handler's goroutine reads it.
type countedBody struct {
	io.ReadCloser
	b    *BodyBudget
	addr string
	held int64
	h    http.Header // the answer's, to close the connection
	err  error
}

func (c *countedBody) Read(p []byte) (int, error) {
	if c.err != nil {
		return 0, c.err
	}
	if len(p) > bodyReadChunk {
		p = p[:bodyReadChunk]
	}
	n, err := c.ReadCloser.Read(p)
	if n > 0 {
		if !c.b.reserve(c.addr, int64(n)) {
			// What is left of the body is not read: the connection
			// cannot carry another request.
			c.err = errBodyMemory
			c.h.Set("Connection", "close")
			return 0, c.err
		}
		c.held += int64(n)
	}
	return n, err
}

// AddressKey is what a remote address (host:port, or a bare IP) counts as
// for a per-address limit: an IPv4 address, or an IPv6 address's /64 (one
// host often holds a whole /64).
func AddressKey(remote string) string {
	ap, err := netip.ParseAddrPort(remote)
	if err != nil {
		a, err := netip.ParseAddr(remote)
		if err != nil {
			return remote
		}
		ap = netip.AddrPortFrom(a, 0)
	}
	a := ap.Addr().Unmap()
	if a.Is4() {
		return a.String()
	}
	p, _ := a.Prefix(64)
	return p.String()
}
