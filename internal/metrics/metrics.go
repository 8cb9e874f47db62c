// Package metrics is hookd's Prometheus instrumentation: what ingest
// answered, what the group commit wrote and how fast, what deliveries did,
// and the state of each destination. Each Metrics has its own registry, so
// that several servers can run in one process (tests) without sharing
// series.
package metrics

import (
	"net/http"
	"runtime"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"hookd/internal/httpserver"
)

// UnknownSource is the source label of requests to a source that is not
// configured: one series for all of them, whatever the path said.
const UnknownSource = "(unknown)"

// Metrics holds hookd's collectors. The zero value is not usable; call New.
type Metrics struct {
	reg *prometheus.Registry

	ingestRequests   *prometheus.CounterVec
	ingestDuplicates *prometheus.CounterVec
	ingestDuration   *prometheus.HistogramVec
	ingestHandshakes *prometheus.CounterVec

	commits        *prometheus.CounterVec
	commitEvents   prometheus.Histogram
	commitDuration prometheus.Histogram
	syncDuration   prometheus.Histogram

	attempts        *prometheus.CounterVec
	attemptDuration *prometheus.HistogramVec
}

// New returns Metrics with hookd's collectors, Go's runtime and process
// collectors, and hookd_build_info registered.
func New(version string) *Metrics {
	m := &Metrics{reg: prometheus.NewRegistry()}
	m.ingestRequests = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "hookd_ingest_requests_total",
		Help: "Requests to POST /in/{source}, by source and HTTP status code of the answer.",
	}, []string{"source", "code"})
	m.ingestDuplicates = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "hookd_ingest_duplicates_total",
		Help: "Requests answered 200 as duplicates of a stored event (Hookd-Duplicate: true), by source.",
	}, []string{"source"})
	m.ingestDuration = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "hookd_ingest_request_duration_seconds",
		Help:    "Time from the request's headers to its answer (verification, durable commit), by source.",
		Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5},
	}, []string{"source"})
	m.ingestHandshakes = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "hookd_ingest_handshakes_total",
		Help: "Providers' verification handshakes (answered, never stored as events), by source, kind and outcome: answered or refused.",
	}, []string{"source", "kind", "outcome"})
	m.commits = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "hookd_store_commits_total",
		Help: "Group commits of received events, by result: ok, error (the transaction failed), sync_error (the sync after it failed).",
	}, []string{"result"})
	m.commitEvents = prometheus.NewHistogram(prometheus.HistogramOpts{
		Name:    "hookd_store_commit_events",
		Help:    "Received requests one group commit took (new events and duplicates, which it checks in the same transaction).",
		Buckets: prometheus.ExponentialBuckets(1, 2, 12),
	})
	m.commitDuration = prometheus.NewHistogram(prometheus.HistogramOpts{
		Name:    "hookd_store_commit_duration_seconds",
		Help:    "Time of one group commit's transaction.",
		Buckets: []float64{.0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, 1},
	})
	m.syncDuration = prometheus.NewHistogram(prometheus.HistogramOpts{
		Name:    "hookd_store_sync_duration_seconds",
		Help:    "Time of one sync (fdatasync) that makes committed events durable before they are answered.",
		Buckets: []float64{.0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, 1},
	})
	m.attempts = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "hookd_delivery_attempts_total",
		Help: "Delivery attempts, by destination and the delivery's status after the attempt (succeeded, retrying, failed).",
	}, []string{"destination", "outcome"})
	m.attemptDuration = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "hookd_delivery_attempt_duration_seconds",
		Help:    "Duration of delivery attempts, by destination.",
		Buckets: []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60},
	}, []string{"destination"})
	build := prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "hookd_build_info",
		Help: "Always 1; the labels tell the version of hookd and of Go.",
	}, []string{"version", "go_version"})
	build.WithLabelValues(version, runtime.Version()).Set(1)
	m.reg.MustRegister(
		m.ingestRequests, m.ingestDuplicates, m.ingestDuration, m.ingestHandshakes,
		m.commits, m.commitEvents, m.commitDuration, m.syncDuration,
		m.attempts, m.attemptDuration, build,
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
	)
	return m
}

// Handler serves the registry in the Prometheus exposition formats.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{Registry: m.reg})
}

// Ingest wraps the POST /in/{source} handler: it counts each answer by
// source and status code, counts duplicates, and times each request.
// Sources for which known is false share the UnknownSource label, so that
// requests to made-up paths cannot create series without bound.
func (m *Metrics) Ingest(known func(source string) bool, next http.Handler) http.Handler {
	type sourceMetrics struct {
		ok  prometheus.Counter // answers 200, the common case
		dup prometheus.Counter
		dur prometheus.Observer
	}
	var cache sync.Map // source name → *sourceMetrics
	metricsOf := func(s string) *sourceMetrics {
		if v, ok := cache.Load(s); ok {
			return v.(*sourceMetrics)
		}
		v, _ := cache.LoadOrStore(s, &sourceMetrics{ok: m.ingestRequests.WithLabelValues(s, "200"),
			dup: m.ingestDuplicates.WithLabelValues(s), dur: m.ingestDuration.WithLabelValues(s)})
		return v.(*sourceMetrics)
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		source := r.PathValue("source")
		if !known(source) {
			source = UnknownSource
		}
		sm := metricsOf(source)
		rec := &statusRecorder{ResponseWriter: w}
		defer func() {
			// A panic still answers (the server's recovery writes 500
			// further out); it is counted as that.
			code := rec.code
			if code == 0 {
				code = http.StatusOK
				if v := recover(); v != nil {
					m.ingestRequests.WithLabelValues(source, "500").Inc()
					panic(v)
				}
			}
			if code == http.StatusOK {
				sm.ok.Inc()
				if w.Header().Get(httpserver.HeaderDuplicate) == "true" {
					sm.dup.Inc()
				}
			} else {
				m.ingestRequests.WithLabelValues(source, statusText(code)).Inc()
			}
			sm.dur.Observe(time.Since(start).Seconds())
		}()
		next.ServeHTTP(rec, r)
	})
}

// statusText is the code label: the common codes without an allocation.
func statusText(code int) string {
	switch code {
	case 200:
		return "200"
	case 400:
		return "400"
	case 401:
		return "401"
	case 404:
		return "404"
	case 413:
		return "413"
	case 429:
		return "429"
	case 503:
		return "503"
	}
	return strconv.Itoa(code)
}

// statusRecorder remembers the status code a handler wrote.
type statusRecorder struct {
	http.ResponseWriter
	code int
}

func (r *statusRecorder) WriteHeader(code int) {
	if r.code == 0 {
		r.code = code
	}
	r.ResponseWriter.WriteHeader(code)
}

func (r *statusRecorder) Write(b []byte) (int, error) {
	if r.code == 0 {
		r.code = http.StatusOK
	}
	return r.ResponseWriter.Write(b)
}

// Unwrap lets http.ResponseController reach the connection.
func (r *statusRecorder) Unwrap() http.ResponseWriter { return r.ResponseWriter }

// Handshake counts one handshake of source (ingest.Options.OnHandshake):
// answered, or refused. Kinds are a fixed set (the presets' handshakes and
// the generic one), and only served sources have handshakes, so the series
// are bounded.
func (m *Metrics) Handshake(source, kind string, answered bool) {
	outcome := "refused"
	if answered {
		outcome = "answered"
	}
	m.ingestHandshakes.WithLabelValues(source, kind, outcome).Inc()
}

// Committed implements store.BatchObserver.
func (m *Metrics) Committed(events int, d time.Duration, err error) {
	if err != nil {
		m.commits.WithLabelValues("error").Inc()
		return
	}
	m.commits.WithLabelValues("ok").Inc()
	m.commitEvents.Observe(float64(events))
	m.commitDuration.Observe(d.Seconds())
}

// Synced implements store.BatchObserver.
func (m *Metrics) Synced(d time.Duration, err error) {
	if err != nil {
		m.commits.WithLabelValues("sync_error").Inc()
		return
	}
	m.syncDuration.Observe(d.Seconds())
}

// Attempt counts one delivery attempt (engine.Options.OnAttempt).
func (m *Metrics) Attempt(destination, outcome string, d time.Duration) {
	m.attempts.WithLabelValues(destination, outcome).Inc()
	m.attemptDuration.WithLabelValues(destination).Observe(d.Seconds())
}

// QueueDepth registers hookd_store_queue_depth, read from f at each scrape.
func (m *Metrics) QueueDepth(f func() int) {
	m.reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "hookd_store_queue_depth",
		Help: "Received events waiting for the group commit.",
	}, func() float64 { return float64(f()) }))
}

// IndexBacklog registers hookd_store_index_backlog, read from f at each
// scrape: records (events and duplicate requests) in the embedded store's
// write-ahead log that its indexer has not yet written to the database.
func (m *Metrics) IndexBacklog(f func() int) {
	m.reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "hookd_store_index_backlog",
		Help: "Log records (events, duplicate requests) not yet indexed by the embedded store.",
	}, func() float64 { return float64(f()) }))
}

// Cluster registers the replica metrics, read at each scrape:
// hookd_cluster_fenced_total, the late outcomes the store refused because
// another replica had taken their delivery over, and
// hookd_cluster_live_replicas, the replicas this one sees alive.
func (m *Metrics) Cluster(fenced func() int64, live func() int) {
	m.reg.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{
		Name: "hookd_cluster_fenced_total",
		Help: "Late delivery outcomes refused because another replica took the delivery over (fencing).",
	}, func() float64 { return float64(fenced()) }))
	m.reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "hookd_cluster_live_replicas",
		Help: "Replicas of the cluster this replica sees alive.",
	}, func() float64 { return float64(live()) }))
}

// Destination is one destination's state at a scrape.
type Destination struct {
	Name     string
	Disabled bool
	// InMemory is the deliveries held in memory; InFlight the attempts
	// under way.
	InMemory, InFlight int
}

// Destinations registers the per-destination gauges, read from f at each
// scrape: a destination deleted since is simply no longer reported.
func (m *Metrics) Destinations(f func() []Destination) {
	m.reg.MustRegister(&destCollector{f: f})
}

var (
	descDisabled = prometheus.NewDesc("hookd_destination_disabled",
		"1 when the destination is disabled (410, or failing continuously for delivery.disable_after); its work waits.", []string{"destination"}, nil)
	descInMemory = prometheus.NewDesc("hookd_destination_queued",
		"Deliveries the destination holds in memory, waiting for an attempt (more may wait in the database).", []string{"destination"}, nil)
	descInFlight = prometheus.NewDesc("hookd_destination_in_flight",
		"Attempts under way to the destination.", []string{"destination"}, nil)
)

type destCollector struct{ f func() []Destination }

func (c *destCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- descDisabled
	ch <- descInMemory
	ch <- descInFlight
}

func (c *destCollector) Collect(ch chan<- prometheus.Metric) {
	for _, d := range c.f() {
		disabled := 0.0
		if d.Disabled {
			disabled = 1
		}
		ch <- prometheus.MustNewConstMetric(descDisabled, prometheus.GaugeValue, disabled, d.Name)
		ch <- prometheus.MustNewConstMetric(descInMemory, prometheus.GaugeValue, float64(d.InMemory), d.Name)
		ch <- prometheus.MustNewConstMetric(descInFlight, prometheus.GaugeValue, float64(d.InFlight), d.Name)
	}
}
