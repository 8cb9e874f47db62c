package config

import (
	"strings"
	"testing"
)

// The tracing keys: off by default, their defaults, and each refusal
// naming its key.
func TestTracingConfig(t *testing.T) {
	t.Parallel()
	parse := func(t *testing.T, y string) (*Config, error) {
		t.Helper()
		c, err := Parse([]byte(y))
		if err != nil {
			return nil, err
		}
		return c, c.Validate()
	}
	t.Run("OffByDefault", func(t *testing.T) {
		c, err := parse(t, "sources: [{name: s}]\n")
		if err != nil {
			t.Fatal(err)
		}
		if c.Tracing.On() {
			t.Errorf("tracing on with no tracing key: %+v", c.Tracing)
		}
	})
	t.Run("Defaults", func(t *testing.T) {
		c, err := parse(t, "tracing: {otlp_endpoint: \"https://otel.internal:4318\"}\n")
		if err != nil {
			t.Fatal(err)
		}
		tr := c.Tracing
		if !tr.On() || tr.Protocol != "http/protobuf" || tr.Ratio() != 1 || tr.ServiceName != "hookd" ||
			tr.BatchTimeout.D().String() != "5s" || tr.ExportTimeout.D().String() != "10s" {
			t.Errorf("defaults: got %+v (ratio %v)", tr, tr.Ratio())
		}
		if got, want := tr.EndpointURL(), "https://otel.internal:4318/v1/traces"; got != want {
			t.Errorf("EndpointURL: got %q, want %q", got, want)
		}
	})
	t.Run("PathKept", func(t *testing.T) {
		c, err := parse(t, "tracing: {otlp_endpoint: \"http://127.0.0.1:4318/otlp/v1/traces\", insecure: true, sample_ratio: 0.25}\n")
		if err != nil {
			t.Fatal(err)
		}
		if got, want := c.Tracing.EndpointURL(), "http://127.0.0.1:4318/otlp/v1/traces"; got != want || c.Tracing.Ratio() != 0.25 {
			t.Errorf("got %q ratio %v, want %q ratio 0.25", got, c.Tracing.Ratio(), want)
		}
	})
	for _, c := range []struct{ name, yaml, want string }{
		{"PlainHTTPNeedsInsecure", `tracing: {otlp_endpoint: "http://127.0.0.1:4318"}`, "tracing.otlp_endpoint: is plain http"},
		{"NotHTTP", `tracing: {otlp_endpoint: "grpc://127.0.0.1:4317"}`, "tracing.otlp_endpoint: want an http:// or https:// URL"},
		{"NoHost", `tracing: {otlp_endpoint: "https:///v1/traces"}`, "tracing.otlp_endpoint: the URL has no host"},
		{"Credentials", `tracing: {otlp_endpoint: "https://u:secret@otel.internal"}`, "put them in tracing.headers"},
		{"Query", `tracing: {otlp_endpoint: "https://otel.internal/v1/traces?x=1"}`, "query or a fragment"},
		{"RatioAbove1", `tracing: {otlp_endpoint: "https://otel.internal", sample_ratio: 1.5}`, "tracing.sample_ratio: must be between 0 and 1"},
		{"RatioNegative", `tracing: {otlp_endpoint: "https://otel.internal", sample_ratio: -0.1}`, "tracing.sample_ratio"},
		{"Protocol", `tracing: {otlp_endpoint: "https://otel.internal", protocol: grpc}`, `tracing.protocol: unknown protocol "grpc"`},
		{"HeaderName", `tracing: {otlp_endpoint: "https://otel.internal", headers: {"bad name": x}}`, `tracing.headers: invalid header name "bad name"`},
		{"HeaderValue", "tracing: {otlp_endpoint: \"https://otel.internal\", headers: {authorization: \"a\\nb\"}}", "tracing.headers: the value of Authorization"},
		{"BatchTimeout", `tracing: {otlp_endpoint: "https://otel.internal", batch_timeout: 2m}`, "tracing.batch_timeout"},
		{"UnknownKey", `tracing: {otlp_endpiont: "https://otel.internal"}`, "otlp_endpiont"},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, err := parse(t, c.yaml+"\n")
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Errorf("got %v, want an error containing %q", err, c.want)
			}
			if err != nil && strings.Contains(err.Error(), "secret") {
				t.Errorf("the error quotes the endpoint's credentials: %v", err)
			}
		})
	}
}
