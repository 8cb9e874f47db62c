package loadgen

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
)

// Report is a whole comparison: the conditions, the results and, when it
// ran, the check of what the server stored.
type Report struct {
	// Command is the command line, as typed.
	Command string
	// ChildProcs describes the GOMAXPROCS of the servers.
	ChildProcs string
	// NumCPU is the number of CPUs the machine offers this process.
	NumCPU int
	// GoVersion is the Go version and platform of the binary.
	GoVersion string
	// Date is when the comparison started.
	Date time.Time
	// Load is the load average before the comparison, when known.
	Load string
	// Order says in which order the servers were measured.
	Order string
	// Warmup and Duration are the length of each run's parts.
	Warmup, Duration time.Duration
	// Results are the runs, level by level.
	Results []*Result
	// Stored is the number of events the server stored, when counted.
	Stored *int64
	// Acknowledged is the number of 2xx answers the server gave over the
	// whole comparison (warmups included).
	Acknowledged int64
	// Unanswered is the number of requests to the server that got no
	// answer; the server may have stored them.
	Unanswered int64
}

// WriteHeader writes the conditions, as '#' comment lines.
func (r *Report) WriteHeader(w io.Writer) {
	fmt.Fprintf(w, "# command:  %s\n", r.Command)
	fmt.Fprintf(w, "# machine:  nproc %d, server GOMAXPROCS %s, %s, %s\n", r.NumCPU, r.ChildProcs, r.GoVersion, r.Date.UTC().Format(time.RFC3339))
	if r.Load != "" {
		fmt.Fprintf(w, "# load:     %s (load average before the run)\n", r.Load)
	}
	fmt.Fprintf(w, "# order:    %s\n", r.Order)
	fmt.Fprintf(w, "# runs:     warmup %s (not counted), then %s measured; POST of a %d-byte JSON body with a unique id per request; one goroutine per keep-alive connection in a closed loop\n", r.Warmup, r.Duration, BodySize)
	fmt.Fprintf(w, "# columns:  req/s and latencies count 2xx answers in the measured window; errors are transport errors (the connection is dialled again); non2xx are other answers;\n#           cpu is cores busy in the window: the server, this load generator, and other processes (a disturbance); ratio is req/s relative to the first server at the same level\n")
}

// WriteTable writes one row per result. A row whose server is not the
// first result's server ends with its req/s ratio to the latest row of
// the first server (the same level, as Compare orders them).
func WriteTable(w io.Writer, results []*Result) error {
	var buf bytes.Buffer
	tw := tabwriter.NewWriter(&buf, 0, 8, 2, ' ', 0)
	fmt.Fprintln(tw, "connections\tserver\treq/s\tp50\tp99\tmax\terrors\tnon2xx\tcpu srv/gen/other\t")
	var base *Result
	for _, r := range results {
		ratio := ""
		if r.Server == results[0].Server {
			base = r
		} else if base != nil && base.RPS() > 0 {
			ratio = fmt.Sprintf("ratio %.2f", r.RPS()/base.RPS())
		}
		fmt.Fprintf(tw, "%d\t%s\t%.0f\t%s\t%s\t%s\t%d\t%d\t%s\t%s\n", r.Connections, r.Server, r.RPS(),
			FormatLatency(r.Latency.P50), FormatLatency(r.Latency.P99), FormatLatency(r.Latency.Max),
			r.Errors, r.Non2xx, formatCPU(r.CPU), ratio)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	// The padding of the last columns would leave trailing blanks.
	for line := range strings.Lines(buf.String()) {
		if _, err := io.WriteString(w, strings.TrimRight(line, " \n")+"\n"); err != nil {
			return err
		}
	}
	return nil
}

// WriteShares writes, for every result over several servers, one row per
// server: its connections, req/s, latencies and CPU. It writes nothing when
// no result has shares.
func WriteShares(w io.Writer, results []*Result) error {
	var buf bytes.Buffer
	tw := tabwriter.NewWriter(&buf, 0, 8, 2, ' ', 0)
	header := false
	rounds := map[[2]any]int{}
	for _, r := range results {
		k := [2]any{r.Connections, r.Server}
		rounds[k]++
		if len(r.Shares) < 2 {
			continue
		}
		if !header {
			fmt.Fprintln(tw, "connections\tserver\tround\treplica\taddress\tconns\treq/s\tshare\tp50\tp99\terrors\tnon2xx\tcpu\t")
			header = true
		}
		for j := range r.Shares {
			s := &r.Shares[j]
			share := 0.0
			if r.RPS() > 0 {
				share = s.RPS() / r.RPS()
			}
			cpu := "-"
			if s.CPU >= 0 {
				cpu = fmt.Sprintf("%.2f", s.CPU)
			}
			fmt.Fprintf(tw, "%d\t%s\t%d\t%d\t%s\t%d\t%.0f\t%.2f\t%s\t%s\t%d\t%d\t%s\t\n", r.Connections, r.Server, rounds[k], j+1, s.Addr,
				s.Connections, s.RPS(), share, FormatLatency(s.Latency.P50), FormatLatency(s.Latency.P99), s.Errors, s.Non2xx, cpu)
		}
	}
	if !header {
		return nil
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	for line := range strings.Lines(buf.String()) {
		if _, err := io.WriteString(w, strings.TrimRight(line, " \n")+"\n"); err != nil {
			return err
		}
	}
	return nil
}

// formatCPU renders the cores busy in the window as server/generator/other.
func formatCPU(c *CPU) string {
	if c == nil {
		return "-"
	}
	f := func(v float64) string {
		if v < 0 {
			return "-"
		}
		return fmt.Sprintf("%.2f", v)
	}
	return f(c.Server) + "/" + f(c.Generator) + "/" + f(c.Other)
}

type jsonCPU struct {
	Server    *float64 `json:"server,omitempty"`
	Generator float64  `json:"generator"`
	Other     *float64 `json:"other,omitempty"`
	Idle      float64  `json:"idle"`
}

type jsonLatency struct {
	P50  int64 `json:"p50"`
	P99  int64 `json:"p99"`
	Max  int64 `json:"max"`
	Mean int64 `json:"mean"`
}

type jsonResult struct {
	Connections int              `json:"connections"`
	Server      string           `json:"server"`
	ElapsedS    float64          `json:"elapsed_s"`
	RPS         float64          `json:"rps"`
	OK          int64            `json:"ok"`
	Non2xx      int64            `json:"non2xx"`
	Errors      int64            `json:"errors"`
	LatencyUS   jsonLatency      `json:"latency_us"`
	CPUCores    *jsonCPU         `json:"cpu_cores,omitempty"`
	Sent        int64            `json:"sent"`
	Acked       int64            `json:"acked"`
	Unanswered  int64            `json:"unanswered"`
	Duplicates  int64            `json:"duplicates"`
	Statuses    map[string]int64 `json:"statuses,omitempty"`
	Ratio       *float64         `json:"ratio,omitempty"`
	Shares      []jsonShare      `json:"replicas,omitempty"`
}

type jsonShare struct {
	Addr        string      `json:"addr"`
	Connections int         `json:"connections"`
	RPS         float64     `json:"rps"`
	OK          int64       `json:"ok"`
	Non2xx      int64       `json:"non2xx"`
	Errors      int64       `json:"errors"`
	LatencyUS   jsonLatency `json:"latency_us"`
	CPUCores    *float64    `json:"cpu_cores,omitempty"`
}

type jsonReport struct {
	Command      string       `json:"command"`
	Date         string       `json:"date"`
	GoVersion    string       `json:"go_version"`
	NumCPU       int          `json:"nproc"`
	ChildProcs   string       `json:"server_gomaxprocs"`
	Load         string       `json:"load_before,omitempty"`
	Order        string       `json:"order"`
	Warmup       string       `json:"warmup"`
	Duration     string       `json:"duration"`
	BodyBytes    int          `json:"body_bytes"`
	Results      []jsonResult `json:"results"`
	Stored       *int64       `json:"stored,omitempty"`
	Acknowledged int64        `json:"acknowledged"`
	Unanswered   int64        `json:"unanswered"`
}

// WriteJSON writes the report as one indented JSON object; latencies are
// in microseconds.
func (r *Report) WriteJSON(w io.Writer) error {
	out := jsonReport{
		Command: r.Command, Date: r.Date.UTC().Format(time.RFC3339), GoVersion: r.GoVersion,
		NumCPU: r.NumCPU, ChildProcs: r.ChildProcs, Load: r.Load, Order: r.Order,
		Warmup: r.Warmup.String(), Duration: r.Duration.String(), BodyBytes: BodySize,
		Results: []jsonResult{}, Stored: r.Stored, Acknowledged: r.Acknowledged, Unanswered: r.Unanswered,
	}
	var base *Result
	for _, res := range r.Results {
		us := func(d time.Duration) int64 { return d.Round(time.Microsecond).Microseconds() }
		j := jsonResult{
			Connections: res.Connections, Server: res.Server, ElapsedS: res.Elapsed.Seconds(), RPS: res.RPS(),
			OK: res.OK, Non2xx: res.Non2xx, Errors: res.Errors,
			LatencyUS: jsonLatency{P50: us(res.Latency.P50), P99: us(res.Latency.P99), Max: us(res.Latency.Max), Mean: us(res.Latency.Mean)},
			Sent:      res.Sent, Acked: res.Acked, Unanswered: res.Unanswered, Duplicates: res.Duplicates,
		}
		if c := res.CPU; c != nil {
			j.CPUCores = &jsonCPU{Generator: c.Generator, Idle: c.Idle}
			if c.Server >= 0 {
				j.CPUCores.Server, j.CPUCores.Other = &c.Server, &c.Other
			}
		}
		for k := range res.Shares {
			sh := &res.Shares[k]
			js := jsonShare{Addr: sh.Addr, Connections: sh.Connections, RPS: sh.RPS(), OK: sh.OK, Non2xx: sh.Non2xx, Errors: sh.Errors,
				LatencyUS: jsonLatency{P50: us(sh.Latency.P50), P99: us(sh.Latency.P99), Max: us(sh.Latency.Max), Mean: us(sh.Latency.Mean)}}
			if sh.CPU >= 0 {
				js.CPUCores = &sh.CPU
			}
			j.Shares = append(j.Shares, js)
		}
		if len(res.Statuses) > 0 {
			j.Statuses = map[string]int64{}
			for s, n := range res.Statuses {
				j.Statuses[strconv.Itoa(s)] = n
			}
		}
		if res.Server == r.Results[0].Server {
			base = res
		} else if base != nil && base.RPS() > 0 {
			ratio := res.RPS() / base.RPS()
			j.Ratio = &ratio
		}
		out.Results = append(out.Results, j)
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(out)
}
