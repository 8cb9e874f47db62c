package loadgen

import (
	"context"
	"errors"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"time"
)

// DelayProxy relays TCP connections to an upstream address and holds what
// it relays for Delay in each direction: a stand-in for network latency
// (tc netem) on a machine whose kernel has none. A round trip through it
// takes 2×Delay more than without it, and a connection's set-up one round
// trip more. Data is held, not throttled: a direction keeps a queue of
// what it read, each chunk written Delay after it arrived, so that a
// stream of chunks flows at the rate it came in.
//
// With Delay 0 it is a plain relay.
type DelayProxy struct {
	// Upstream is the host:port every connection is relayed to.
	Upstream string
	// Delay is the one-way latency added.
	Delay time.Duration

	conns atomic.Int64
	bytes atomic.Int64
}

// Stats are the totals of a DelayProxy so far.
type Stats struct {
	// Connections is the number of connections relayed.
	Connections int64
	// Bytes is the number of bytes relayed, both directions.
	Bytes int64
}

// Stats returns the proxy's totals so far.
func (p *DelayProxy) Stats() Stats {
	return Stats{Connections: p.conns.Load(), Bytes: p.bytes.Load()}
}

// delayQueue bounds the chunks one direction holds (each up to 64 KiB).
const delayQueue = 1024

// Serve accepts connections on ln until ctx ends, then closes ln and every
// connection it relays, and returns nil.
func (p *DelayProxy) Serve(ctx context.Context, ln net.Listener) error {
	var (
		mu    sync.Mutex
		open  = map[net.Conn]bool{}
		wg    sync.WaitGroup
		ended = make(chan struct{})
	)
	track := func(c net.Conn, add bool) bool {
		mu.Lock()
		defer mu.Unlock()
		if add {
			select {
			case <-ended:
				return false
			default:
			}
			open[c] = true
		} else {
			delete(open, c)
		}
		return true
	}
	go func() {
		<-ctx.Done()
		mu.Lock()
		close(ended)
		for c := range open {
			c.Close()
		}
		mu.Unlock()
		ln.Close()
	}()
	defer wg.Wait()
	for {
		down, err := ln.Accept()
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				continue
			}
			return err
		}
		if !track(down, true) {
			down.Close()
			return nil
		}
		p.conns.Add(1)
		wg.Go(func() {
			defer track(down, false)
			defer down.Close()
			// The set-up's round trip: SYN, SYN-ACK.
			if err := sleep(ctx, 2*p.Delay); err != nil {
				return
			}
			var d net.Dialer
			up, err := d.DialContext(ctx, "tcp", p.Upstream)
			if err != nil {
				return
			}
			if !track(up, true) {
				up.Close()
				return
			}
			defer track(up, false)
			defer up.Close()
			var both sync.WaitGroup
			both.Go(func() { p.relay(up, down) })
			both.Go(func() { p.relay(down, up) })
			both.Wait()
		})
	}
}

// chunk is data read at one moment, to be written at due.
type chunk struct {
	b   []byte
	due time.Time
}

// relay copies src to dst, each chunk Delay after it was read, then
// closes dst for writing (or both when that is not possible).
func (p *DelayProxy) relay(dst, src net.Conn) {
	defer func() {
		if tc, ok := dst.(*net.TCPConn); ok {
			tc.CloseWrite()
		} else {
			dst.Close()
		}
	}()
	if p.Delay <= 0 {
		n, _ := io.Copy(dst, src)
		p.bytes.Add(n)
		return
	}
	q := make(chan chunk, delayQueue)
	go func() {
		defer close(q)
		buf := make([]byte, 64<<10)
		for {
			n, err := src.Read(buf)
			if n > 0 {
				q <- chunk{b: append([]byte(nil), buf[:n]...), due: time.Now().Add(p.Delay)}
			}
			if err != nil {
				return
			}
		}
	}()
	failed := false
	for c := range q {
		if failed {
			continue // drain, so that the reader ends
		}
		if d := time.Until(c.due); d > 0 {
			time.Sleep(d)
		}
		if _, err := dst.Write(c.b); err != nil {
			failed = true
			src.Close()
			continue
		}
		p.bytes.Add(int64(len(c.b)))
	}
}
