package config

import (
	"net/http"
	"net/url"
	"strings"
	"time"

	"golang.org/x/net/http/httpguts"
)

// Tracing configures OpenTelemetry tracing (docs/TRACING.md). It is off
// unless OTLPEndpoint is set.
type Tracing struct {
	// OTLPEndpoint is the full URL spans are posted to, such as
	// "https://otel.internal:4318/v1/traces" (an OTLP/HTTP receiver; a URL
	// with no path gets "/v1/traces"). Empty (the default): tracing is
	// off, no span is made and nothing of it is stored.
	OTLPEndpoint string `yaml:"otlp_endpoint"`
	// Protocol is the OTLP transport: "http/protobuf", the only one (and
	// the default).
	Protocol string `yaml:"protocol"`
	// SampleRatio is the share of new traces recorded, from 0 to 1.
	// Default 1 (every one). A request that continues a trace follows the
	// sampling decision of its traceparent.
	SampleRatio *float64 `yaml:"sample_ratio"`
	// Headers are sent with every export request (a collector's
	// credentials, such as {authorization: "Bearer ${OTLP_TOKEN}"}).
	Headers map[string]string `yaml:"headers"`
	// Insecure allows an http:// endpoint (plain HTTP, such as a
	// collector on the same host). Default false: an http:// endpoint is
	// refused, so spans and headers are not sent in clear by mistake.
	Insecure bool `yaml:"insecure"`
	// ServiceName is the service.name of hookd's spans. Default "hookd".
	ServiceName string `yaml:"service_name"`
	// BatchTimeout is how long spans wait, at most, before they are
	// exported. Default "5s".
	BatchTimeout Duration `yaml:"batch_timeout"`
	// ExportTimeout bounds one export request. Default "10s".
	ExportTimeout Duration `yaml:"export_timeout"`
}

// Tracing protocols.
const TracingHTTPProtobuf = "http/protobuf"

// Tracing defaults.
const (
	DefaultTracingServiceName   = "hookd"
	DefaultTracingBatchTimeout  = Duration(5 * time.Second)
	DefaultTracingExportTimeout = Duration(10 * time.Second)
)

// On reports whether tracing is configured.
func (t Tracing) On() bool { return t.OTLPEndpoint != "" }

// Ratio is the sample ratio, defaulted.
func (t Tracing) Ratio() float64 {
	if t.SampleRatio == nil {
		return 1
	}
	return *t.SampleRatio
}

// EndpointURL is OTLPEndpoint with the default path when it has none.
func (t Tracing) EndpointURL() string {
	u, err := url.Parse(t.OTLPEndpoint)
	if err != nil || (u.Path != "" && u.Path != "/") {
		return t.OTLPEndpoint
	}
	u.Path = "/v1/traces"
	return u.String()
}

// applyTracingDefaults fills the defaults of tracing's keys.
func (c *Config) applyTracingDefaults() {
	t := &c.Tracing
	if t.Protocol == "" {
		t.Protocol = TracingHTTPProtobuf
	}
	if t.ServiceName == "" {
		t.ServiceName = DefaultTracingServiceName
	}
	if t.BatchTimeout == 0 {
		t.BatchTimeout = DefaultTracingBatchTimeout
	}
	if t.ExportTimeout == 0 {
		t.ExportTimeout = DefaultTracingExportTimeout
	}
}

// validateTracing checks the tracing keys.
func (c *Config) validateTracing(bad func(field, format string, args ...any)) {
	c.applyTracingDefaults()
	t := c.Tracing
	if t.SampleRatio != nil && !(*t.SampleRatio >= 0 && *t.SampleRatio <= 1) {
		bad("tracing.sample_ratio", "must be between 0 and 1, got %v", *t.SampleRatio)
	}
	if t.Protocol != TracingHTTPProtobuf {
		bad("tracing.protocol", "unknown protocol %q (want %s)", t.Protocol, TracingHTTPProtobuf)
	}
	if t.BatchTimeout < 0 || t.BatchTimeout.D() > time.Minute {
		bad("tracing.batch_timeout", "must be between 0s and 1m, got %s", t.BatchTimeout.D())
	}
	if t.ExportTimeout < 0 || t.ExportTimeout.D() > time.Minute {
		bad("tracing.export_timeout", "must be between 0s and 1m, got %s", t.ExportTimeout.D())
	}
	for k, v := range t.Headers {
		if !httpguts.ValidHeaderFieldName(k) {
			bad("tracing.headers", "invalid header name %q", k)
		} else if !httpguts.ValidHeaderFieldValue(v) {
			bad("tracing.headers", "the value of %s is not a valid header value", http.CanonicalHeaderKey(k))
		}
	}
	if !t.On() {
		return
	}
	u, err := url.Parse(t.OTLPEndpoint)
	switch {
	case err != nil:
		// url.Parse's error quotes the URL, which may hold credentials.
		bad("tracing.otlp_endpoint", "not a URL")
	case u.Scheme != "http" && u.Scheme != "https":
		bad("tracing.otlp_endpoint", "want an http:// or https:// URL, such as https://otel.internal:4318/v1/traces")
	case u.Host == "":
		bad("tracing.otlp_endpoint", "the URL has no host")
	case u.User != nil:
		bad("tracing.otlp_endpoint", "credentials in the URL are not sent; put them in tracing.headers")
	case u.RawQuery != "" || u.Fragment != "":
		bad("tracing.otlp_endpoint", "the URL may not have a query or a fragment")
	case u.Scheme == "http" && !t.Insecure:
		bad("tracing.otlp_endpoint", "is plain http: set tracing.insecure: true to send spans without TLS (a collector on the same host), or use https")
	}
	if strings.TrimSpace(t.ServiceName) == "" {
		bad("tracing.service_name", "must not be blank")
	}
}
