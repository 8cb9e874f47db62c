package loadgen

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// SlowConfig describes a slow-upload run: Slow connections that each send
// the headers of a POST and then one byte of its body every Interval,
// while a legitimate client sends whole requests at Rate and an admin
// client reads the admin API.
type SlowConfig struct {
	// Addr is the server's host:port; it must be a loopback address.
	Addr string
	// Path is where the slow and the legitimate POSTs go.
	Path string
	// Slow is the number of slow connections kept open.
	Slow int
	// Interval is the pause between two bytes of a slow body.
	Interval time.Duration
	// Duration is the measured window, after every slow connection has
	// been opened.
	Duration time.Duration
	// Rate is the legitimate requests per second, spread over Clients
	// keep-alive connections.
	Rate    int
	Clients int
	// AdminPath and AdminToken, when set, are read every AdminEvery.
	AdminPath  string
	AdminToken string
	AdminEvery time.Duration
	// RunID prefixes the legitimate event ids (see ID).
	RunID string
}

// SlowResult is what a slow-upload run measured.
type SlowResult struct {
	// Opened counts slow connections opened, Refused those that could not
	// be; Cut those the server ended (closed, or answered, such as 408),
	// after which another was opened in their place.
	Opened, Refused, Cut int64
	// SlowStatuses counts the answers the slow requests got.
	SlowStatuses map[int]int64
	// OpenAtEnd is how many slow connections were open at the end of the
	// window.
	OpenAtEnd int64
	// Legit and Admin are the legitimate and admin requests of the window.
	Legit, Admin SlowClass
	// Elapsed is the real length of the window.
	Elapsed time.Duration
}

// SlowClass summarises one class of requests.
type SlowClass struct {
	// Sent counts requests; OK the 200 answers; Errors transport errors.
	Sent, OK, Errors int64
	// Statuses counts the answers by status code.
	Statuses map[int]int64
	// Latency summarises every answered request's latency.
	Latency Summary
}

// OKRatio is OK over Sent (0 when nothing was sent).
func (c *SlowClass) OKRatio() float64 {
	if c.Sent == 0 {
		return 0
	}
	return float64(c.OK) / float64(c.Sent)
}

// slowBodySize is what a slow request declares: it never gets that far.
const slowBodySize = 100000

// RunSlow runs the slow-upload scenario and reports. It stops by itself
// after the window (or when ctx ends), closing every connection it opened.
func RunSlow(ctx context.Context, c SlowConfig) (*SlowResult, error) {
	host, _, err := net.SplitHostPort(c.Addr)
	if err != nil {
		return nil, fmt.Errorf("address %q: %w", c.Addr, err)
	}
	if ip := net.ParseIP(host); ip == nil || !ip.IsLoopback() {
		return nil, fmt.Errorf("address %q: the slow-upload run only targets a loopback address", c.Addr)
	}
	if c.Slow < 0 || c.Clients < 1 || c.Rate < 1 || c.Duration <= 0 || c.Interval <= 0 {
		return nil, errors.New("slow run: bad configuration")
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	res := &SlowResult{SlowStatuses: map[int]int64{}}
	var (
		mu       sync.Mutex // guards res.SlowStatuses
		open     atomic.Int64
		opened   atomic.Int64
		refused  atomic.Int64
		cut      atomic.Int64
		wg       sync.WaitGroup
		ready    = make(chan struct{}, c.Slow)
		head     = fmt.Sprintf("POST %s HTTP/1.1\r\nHost: %s\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n", c.Path, c.Addr, slowBodySize)
		dialer   = net.Dialer{Timeout: 5 * time.Second}
		slowLoop = func() {
			defer wg.Done()
			first := true
			for ctx.Err() == nil {
				conn, err := dialer.DialContext(ctx, "tcp", c.Addr)
				if err != nil {
					if ctx.Err() != nil {
						return
					}
					refused.Add(1)
					if first {
						first = false
						ready <- struct{}{}
					}
					if sleep(ctx, c.Interval) != nil {
						return
					}
					continue
				}
				opened.Add(1)
				open.Add(1)
				status := trickle(ctx, conn, head, c.Interval, func() {
					if first {
						first = false
						ready <- struct{}{}
					}
				})
				open.Add(-1)
				conn.Close()
				if ctx.Err() != nil {
					return
				}
				cut.Add(1)
				if status > 0 {
					mu.Lock()
					res.SlowStatuses[status]++
					mu.Unlock()
				}
			}
		}
	)
	for range c.Slow {
		wg.Add(1)
		go slowLoop()
	}
	// The window starts once every slow connection has been tried.
	for range c.Slow {
		select {
		case <-ready:
		case <-ctx.Done():
			wg.Wait()
			return nil, ctx.Err()
		}
	}

	start := time.Now()
	end := start.Add(c.Duration)
	tr := &http.Transport{MaxIdleConnsPerHost: c.Clients, MaxConnsPerHost: c.Clients, DisableCompression: true}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr, Timeout: 30 * time.Second}
	legit := newClassRecorder()
	admin := newClassRecorder()
	var lw sync.WaitGroup
	every := time.Duration(int64(time.Second) * int64(c.Clients) / int64(c.Rate))
	for i := range c.Clients {
		lw.Add(1)
		go func() {
			defer lw.Done()
			var seq uint64
			tick := time.NewTicker(every)
			defer tick.Stop()
			for time.Now().Before(end) {
				select {
				case <-ctx.Done():
					return
				case <-tick.C:
				}
				body, err := Body(c.RunID, i, seq)
				if err != nil {
					legit.record(0, 0, err)
					return
				}
				seq++
				req, _ := http.NewRequestWithContext(ctx, http.MethodPost, "http://"+c.Addr+c.Path, strings.NewReader(string(body)))
				req.Header.Set("Content-Type", "application/json")
				legit.do(client, req)
			}
		}()
	}
	if c.AdminPath != "" {
		lw.Add(1)
		go func() {
			defer lw.Done()
			tick := time.NewTicker(c.AdminEvery)
			defer tick.Stop()
			for time.Now().Before(end) {
				select {
				case <-ctx.Done():
					return
				case <-tick.C:
				}
				req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+c.Addr+c.AdminPath, nil)
				req.Header.Set("Authorization", "Bearer "+c.AdminToken)
				admin.do(client, req)
			}
		}()
	}
	lw.Wait()
	res.Elapsed = time.Since(start)
	res.OpenAtEnd = open.Load()
	cancel()
	wg.Wait()
	res.Opened, res.Refused, res.Cut = opened.Load(), refused.Load(), cut.Load()
	res.Legit, res.Admin = legit.result(), admin.result()
	return res, nil
}

// trickle writes head and then one body byte every interval until the
// server answers or closes, or ctx ends; it returns the answer's status (0
// for none). started is called once the headers are written.
func trickle(ctx context.Context, conn net.Conn, head string, interval time.Duration, started func()) int {
	if _, err := io.WriteString(conn, head); err != nil {
		started()
		return 0
	}
	started()
	answered := make(chan int, 1)
	go func() {
		// Whatever the server sends ends the trickle: an answer (such as
		// 408) or the connection closed.
		resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
		if err != nil {
			answered <- 0
			return
		}
		resp.Body.Close()
		answered <- resp.StatusCode
	}()
	tick := time.NewTicker(interval)
	defer tick.Stop()
	for sent := 0; sent < slowBodySize-1; sent++ {
		select {
		case st := <-answered:
			return st
		case <-ctx.Done():
			conn.Close()
			<-answered
			return 0
		case <-tick.C:
			if _, err := conn.Write([]byte{' '}); err != nil {
				conn.Close()
				return <-answered
			}
		}
	}
	conn.Close()
	return <-answered
}

type classRecorder struct {
	mu       sync.Mutex
	sent, ok int64
	errs     int64
	statuses map[int]int64
	lat      []time.Duration
}

func newClassRecorder() *classRecorder { return &classRecorder{statuses: map[int]int64{}} }

func (r *classRecorder) do(client *http.Client, req *http.Request) {
	t0 := time.Now()
	resp, err := client.Do(req)
	if err == nil {
		_, err = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
	status := 0
	if resp != nil {
		status = resp.StatusCode
	}
	r.record(status, time.Since(t0), err)
}

func (r *classRecorder) record(status int, d time.Duration, err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.sent++
	if err != nil {
		r.errs++
		return
	}
	r.statuses[status]++
	if status == http.StatusOK {
		r.ok++
	}
	r.lat = append(r.lat, d)
}

func (r *classRecorder) result() SlowClass {
	r.mu.Lock()
	defer r.mu.Unlock()
	return SlowClass{Sent: r.sent, OK: r.ok, Errors: r.errs, Statuses: r.statuses, Latency: Summarize(r.lat)}
}
