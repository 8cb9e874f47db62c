// Package loadgen is the engine of 'hookd bench': a lean HTTP/1.1 load
// generator and what it needs to compare hookd's ingest with a bare
// net/http server on the same machine.
//
// Run drives one server at one concurrency level: that many keep-alive TCP
// connections, each driven by one goroutine in a closed loop (write one
// pre-built POST, read the answer, repeat), on raw net.Conn rather than
// net/http.Client so that the client takes as little CPU as possible from
// the servers it measures. Every body is exactly BodySize bytes of JSON
// with a unique event id, so no request is a duplicate. Every latency is
// kept, and the percentiles are exact.
//
// Compare runs several targets at several concurrency levels; Child runs a
// server as a child process; ServeBare is the bare net/http ceiling;
// WriteTable and WriteJSON report. Nothing here asserts speed: it measures
// and reports.
package loadgen

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"
)

// Config describes one load run: one server, one concurrency level.
type Config struct {
	// Addr is the server's host:port.
	Addr string
	// Addrs, when set, replaces Addr: several servers (replicas of one
	// service) share the connections round-robin, connection i going to
	// Addrs[i%len(Addrs)]. With more than one, Result.Shares has each
	// server's part.
	Addrs []string
	// Path is the request path, such as "/in/bench". Default "/".
	Path string
	// Connections is the number of keep-alive connections, each driven by
	// one goroutine in a closed loop.
	Connections int
	// Warmup runs before the measured window and is not counted.
	Warmup time.Duration
	// Duration is the length of the measured window.
	Duration time.Duration
	// RunID prefixes every event id (see ID). It must differ between runs
	// against one server, so that no request is a duplicate. Letters,
	// digits, '-', '_' and '.', at most 64.
	RunID string
	// Drain is how long requests in flight at the end of the window may
	// take to be answered before their connections are closed. Default 10s.
	Drain time.Duration
	// DialTimeout bounds each connection attempt. Default 5s.
	DialTimeout time.Duration
	// DuplicateHeader, when set, names a response header whose presence
	// marks an answer as a duplicate (hookd's "Hookd-Duplicate").
	DuplicateHeader string
	// ServerPID, when set, is the server's process id, for its CPU use
	// during the window (Linux only).
	ServerPID int
	// ServerPIDs, when set, replaces ServerPID: the process ids of the
	// servers at Addrs, in the same order. Their CPU use is summed in
	// Result.CPU and shown apart in Result.Shares.
	ServerPIDs []int
	// OnWindow, when set, is called as the measured window starts (true)
	// and as it ends (false), from Run's goroutine, such as to read the
	// servers' own counters. It should be quick: the window waits for it
	// at its start, and the connections go on during it at its end.
	OnWindow func(start bool)
}

// Result is what one run measured. The fields before Sent cover the
// measured window only; Sent and the fields after it cover the whole run:
// warmup, window and drain.
type Result struct {
	// Server names the target (set by Compare).
	Server string
	// Connections is the concurrency level.
	Connections int
	// Elapsed is the real length of the measured window.
	Elapsed time.Duration
	// OK counts 2xx answers completed in the window.
	OK int64
	// Non2xx counts other answers completed in the window.
	Non2xx int64
	// Errors counts transport errors in the window: failed dials, writes
	// and reads, and malformed answers. The connection is dialled again.
	Errors int64
	// Latency summarises the 2xx answers completed in the window, from
	// the first byte written to the last byte of the answer read.
	Latency Summary
	// CPU is the machine's CPU use during the window; nil where unknown.
	CPU *CPU

	// Sent counts requests written (or attempted).
	Sent int64
	// Acked counts 2xx answers read.
	Acked int64
	// Unanswered counts requests written whose answer was never read: a
	// transport error, or a connection closed at the end of the drain.
	// The server may have processed them.
	Unanswered int64
	// Duplicates counts answers carrying Config.DuplicateHeader.
	Duplicates int64
	// Statuses counts the non-2xx answers by status code.
	Statuses map[int]int64
	// Shares is each server's part of the measured window, in the order
	// of Config.Addrs, when there were several.
	Shares []Share
}

// Share is one server's part of a run over several servers: the
// connections it was given and what they measured in the window.
type Share struct {
	// Addr is the server's address.
	Addr string
	// Connections is the number of connections it was given.
	Connections int
	// Elapsed is the window (the run's).
	Elapsed time.Duration
	// OK, Non2xx and Errors count as Result's do, for this server's
	// connections.
	OK, Non2xx, Errors int64
	// Latency summarises its 2xx answers in the window.
	Latency Summary
	// CPU is the cores its process used in the window; negative where
	// unknown.
	CPU float64
}

// RPS is the server's rate of 2xx answers in the window, per second.
func (s *Share) RPS() float64 {
	if s.Elapsed <= 0 {
		return 0
	}
	return float64(s.OK) / s.Elapsed.Seconds()
}

// RPS is the rate of 2xx answers in the measured window, per second.
func (r *Result) RPS() float64 {
	if r.Elapsed <= 0 {
		return 0
	}
	return float64(r.OK) / r.Elapsed.Seconds()
}

const (
	phaseWarmup int32 = iota
	phaseMeasure
	phaseStop
)

// run is the state the workers of one Run share.
type run struct {
	cfg    Config
	dialer net.Dialer
	phase  atomic.Int32
	stop   chan struct{} // closed when the phase becomes phaseStop
}

// worker drives one connection. Its counters are its own until Run has
// waited for it.
type worker struct {
	n int
	// target is the index of its server in Config.Addrs.
	target int
	addr   string
	req    *request
	seq    uint64
	br     *bufio.Reader
	lat    []time.Duration
	dupH   string

	mu     sync.Mutex // guards conn and closed against closeConn
	conn   net.Conn
	closed bool

	ok, non2xx, errs             int64
	sent, acked, unanswered, dup int64
	statuses                     map[int]int64
}

var errClosed = errors.New("connection closed by the generator")

// Run drives the server at c.Addr with c.Connections connections for
// c.Warmup, then measures for c.Duration. Every connection is dialled
// before the warmup starts; a server that cannot be reached fails the run.
// When ctx ends, Run closes every connection and returns ctx's error.
func Run(ctx context.Context, c Config) (*Result, error) {
	if c.Path == "" {
		c.Path = "/"
	}
	if c.Drain <= 0 {
		c.Drain = 10 * time.Second
	}
	if c.DialTimeout <= 0 {
		c.DialTimeout = 5 * time.Second
	}
	if c.Connections < 1 {
		return nil, fmt.Errorf("connections must be at least 1, got %d", c.Connections)
	}
	if len(c.Addrs) == 0 {
		c.Addrs = []string{c.Addr}
	}
	if len(c.ServerPIDs) == 0 && c.ServerPID > 0 {
		c.ServerPIDs = []int{c.ServerPID}
	}
	if len(c.ServerPIDs) > 0 && len(c.ServerPIDs) != len(c.Addrs) {
		return nil, fmt.Errorf("%d server process ids for %d addresses", len(c.ServerPIDs), len(c.Addrs))
	}
	if c.Duration <= 0 {
		return nil, fmt.Errorf("duration must be positive, got %s", c.Duration)
	}
	r := &run{cfg: c, dialer: net.Dialer{Timeout: c.DialTimeout}, stop: make(chan struct{})}
	workers := make([]*worker, c.Connections)
	for i := range workers {
		t := i % len(c.Addrs)
		req, err := newRequest(c.Addrs[t], c.Path, c.RunID, i)
		if err != nil {
			return nil, err
		}
		workers[i] = &worker{n: i, target: t, addr: c.Addrs[t], req: req, dupH: c.DuplicateHeader, statuses: map[int]int64{},
			lat: make([]time.Duration, 0, 4096)}
	}
	closeAll := func() {
		for _, w := range workers {
			w.closeConn()
		}
	}
	for _, w := range workers {
		if err := w.dial(r); err != nil {
			closeAll()
			return nil, fmt.Errorf("connect to %s: %w", w.addr, err)
		}
	}

	var wg sync.WaitGroup
	for _, w := range workers {
		wg.Go(func() { w.loop(r) })
	}
	finished := make(chan struct{})
	go func() {
		wg.Wait()
		close(finished)
	}()
	stopNow := func() {
		r.phase.Store(phaseStop)
		close(r.stop)
	}

	if err := sleep(ctx, c.Warmup); err != nil {
		stopNow()
		closeAll()
		<-finished
		return nil, err
	}
	if c.OnWindow != nil {
		c.OnWindow(true)
	}
	cpu0 := sampleCPU(c.ServerPIDs)
	start := time.Now()
	r.phase.Store(phaseMeasure)
	err := sleep(ctx, c.Duration)
	stopNow()
	elapsed := time.Since(start)
	cpu1 := sampleCPU(c.ServerPIDs)
	if c.OnWindow != nil && err == nil {
		c.OnWindow(false)
	}
	cpu := cpuBetween(cpu0, cpu1, elapsed)
	if err != nil {
		closeAll()
		<-finished
		return nil, err
	}
	// Let the requests in flight be answered, then cut what still waits.
	drain := time.NewTimer(c.Drain)
	defer drain.Stop()
	select {
	case <-finished:
	case <-drain.C:
		closeAll()
		<-finished
	case <-ctx.Done():
		closeAll()
		<-finished
		return nil, ctx.Err()
	}
	closeAll()

	res := &Result{Connections: c.Connections, Elapsed: elapsed, CPU: cpu, Statuses: map[int]int64{}}
	n := 0
	for _, w := range workers {
		n += len(w.lat)
	}
	lat := make([]time.Duration, 0, n)
	for _, w := range workers {
		lat = append(lat, w.lat...)
		res.OK += w.ok
		res.Non2xx += w.non2xx
		res.Errors += w.errs
		res.Sent += w.sent
		res.Acked += w.acked
		res.Unanswered += w.unanswered
		res.Duplicates += w.dup
		for s, k := range w.statuses {
			res.Statuses[s] += k
		}
	}
	res.Latency = Summarize(lat)
	if len(c.Addrs) > 1 {
		res.Shares = shares(c.Addrs, workers, elapsed, cpu0, cpu1)
	}
	return res, nil
}

// shares is each server's part of a run over several servers.
func shares(addrs []string, workers []*worker, elapsed time.Duration, cpu0, cpu1 cpuSample) []Share {
	out := make([]Share, len(addrs))
	lats := make([][]time.Duration, len(addrs))
	for i, a := range addrs {
		out[i] = Share{Addr: a, Elapsed: elapsed, CPU: serverCores(cpu0, cpu1, i, elapsed)}
	}
	for _, w := range workers {
		s := &out[w.target]
		s.Connections++
		s.OK += w.ok
		s.Non2xx += w.non2xx
		s.Errors += w.errs
		lats[w.target] = append(lats[w.target], w.lat...)
	}
	for i := range out {
		out[i].Latency = Summarize(lats[i])
	}
	return out
}

// loop is one connection's closed loop: one request, its answer, the next.
func (w *worker) loop(r *run) {
	for r.phase.Load() != phaseStop {
		if w.conn == nil {
			if err := w.dial(r); err != nil {
				if errors.Is(err, errClosed) {
					return
				}
				if r.phase.Load() == phaseMeasure {
					w.errs++
				}
				// A server that refuses connections must not make this
				// loop spin.
				select {
				case <-r.stop:
					return
				case <-time.After(50 * time.Millisecond):
				}
				continue
			}
		}
		w.req.set(w.seq)
		w.seq++
		w.sent++
		start := time.Now()
		status, dup, keep, err := w.roundTrip()
		lat := time.Since(start)
		measuring := r.phase.Load() == phaseMeasure
		if err != nil {
			w.unanswered++
			if measuring {
				w.errs++
			}
			w.drop()
			continue
		}
		if dup {
			w.dup++
		}
		if status >= 200 && status <= 299 {
			w.acked++
			if measuring {
				w.ok++
				w.lat = append(w.lat, lat)
			}
		} else {
			w.statuses[status]++
			if measuring {
				w.non2xx++
			}
		}
		if !keep {
			w.drop()
		}
	}
}

// roundTrip writes the request and reads the whole answer. keep is false
// when the server asked to close the connection.
func (w *worker) roundTrip() (status int, dup, keep bool, err error) {
	if _, err = w.conn.Write(w.req.buf); err != nil {
		return 0, false, false, err
	}
	resp, err := http.ReadResponse(w.br, nil)
	if err != nil {
		return 0, false, false, err
	}
	_, err = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if err != nil {
		return 0, false, false, err
	}
	if w.dupH != "" {
		dup = resp.Header.Get(w.dupH) != ""
	}
	return resp.StatusCode, dup, !resp.Close, nil
}

func (w *worker) dial(r *run) error {
	conn, err := r.dialer.Dial("tcp", w.addr)
	if err != nil {
		return err
	}
	w.mu.Lock()
	if w.closed {
		w.mu.Unlock()
		conn.Close()
		return errClosed
	}
	w.conn = conn
	w.mu.Unlock()
	if w.br == nil {
		w.br = bufio.NewReaderSize(conn, 4096)
	} else {
		w.br.Reset(conn)
	}
	return nil
}

// drop closes the worker's connection; the loop dials a new one.
func (w *worker) drop() {
	w.mu.Lock()
	if w.conn != nil {
		w.conn.Close()
		w.conn = nil
	}
	w.mu.Unlock()
}

// closeConn closes the connection for good, unblocking a worker waiting
// for an answer; the worker will not dial again.
func (w *worker) closeConn() {
	w.mu.Lock()
	w.closed = true
	if w.conn != nil {
		w.conn.Close()
	}
	w.mu.Unlock()
}

// sleep waits for d or for ctx to end.
func sleep(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
