package cli

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"sync/atomic"
	"time"
)

// benchOTLP is the OTLP/HTTP receiver of bench --tracing, in the bench's
// process: hookd exports every span to it (sample ratio 1). It reads each
// export request whole, counts it, and answers 200 with an empty body (the
// encoding of an empty ExportTraceServiceResponse), so that what is
// measured is hookd's cost of making and exporting spans, not a
// collector's.
type benchOTLP struct {
	ln            net.Listener
	srv           *http.Server
	requests, got atomic.Int64
}

func startBenchOTLP() (*benchOTLP, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("OTLP receiver: %w", err)
	}
	o := &benchOTLP{ln: ln}
	o.srv = &http.Server{ReadHeaderTimeout: 5 * time.Second, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n, _ := io.Copy(io.Discard, r.Body)
		o.requests.Add(1)
		o.got.Add(n)
	})}
	go o.srv.Serve(ln)
	return o, nil
}

// yaml is the tracing block of hookd's configuration.
func (o *benchOTLP) yaml() string {
	return "tracing:\n  otlp_endpoint: " + yamlString("http://"+o.ln.Addr().String()+"/v1/traces") + "\n  insecure: true\n  sample_ratio: 1\n"
}

func (o *benchOTLP) summary() string {
	return fmt.Sprintf("# tracing:  on (sample ratio 1); the OTLP receiver got %d export requests, %d bytes", o.requests.Load(), o.got.Load())
}

func (o *benchOTLP) close() { o.srv.Close() }
