package config

import (
	"os"
	"strings"
	"testing"
	"time"

	"gopkg.in/yaml.v3"
)

// The configuration example of SPEC §5 parses and validates as written,
// destinations and subscriptions included.
func TestSpecExampleParses(t *testing.T) {
	for _, v := range []string{"HOOKD_STORAGE_DSN", "HOOKD_ADMIN_TOKEN", "CLAIMS_CLIENT_SECRET", "APP_KEY", "LOYALTY_TOKEN", "SECURITY_KEY", "RECEEVE_SECRET", "CS", "WHSEC"} {
		t.Setenv(v, "value-of-"+strings.ToLower(v)+"-0123456789")
	}
	raw, err := os.ReadFile("testdata/spec-example.yaml")
	if err != nil {
		t.Fatal(err)
	}
	c, err := Parse(raw)
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	if err := c.Validate(); err != nil {
		t.Fatalf("Validate: %v", err)
	}
	if len(c.Destinations) != 2 || len(c.Subscriptions) != 2 {
		t.Fatalf("got %d destinations and %d subscriptions, want 2 and 2", len(c.Destinations), len(c.Subscriptions))
	}
	d := c.Destinations[0]
	if d.Name != "claims-service" || d.Type != "http" || d.Ordering != "key" || d.Concurrency != 16 || d.Rate == nil || d.Rate.PerSecond() != 100 {
		t.Errorf("destinations[0]: got %+v", d)
	}
	var opts struct {
		URL     string         `yaml:"url"`
		Timeout Duration       `yaml:"timeout"`
		Auth    map[string]any `yaml:"auth"`
		Sign    map[string]any `yaml:"sign"`
	}
	if err := d.DecodeOptions(&opts); err != nil {
		t.Fatalf("DecodeOptions: %v", err)
	}
	if opts.URL != "https://claims.internal.example/hooks" || opts.Auth["client_secret"] != "value-of-cs-0123456789" {
		t.Errorf("destinations[0] options: got %+v", opts)
	}
	var retry struct {
		Policy string `yaml:"policy"`
	}
	if err := d.DecodeRetry(&retry); err != nil || retry.Policy != "three_weeks" {
		t.Errorf("destinations[0].retry: got %+v, %v; want policy three_weeks", retry, err)
	}
	s := c.Subscriptions[0]
	if s.Source != "claims" || s.Destination != "claims-service" || len(s.Events) != 1 || s.Events[0] != "event.claim.*" || !s.SkipStale {
		t.Errorf("subscriptions[0]: got %+v", s)
	}
}

// Validate names the bad field of destinations and subscriptions.
func TestValidateDelivery(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, yaml, want string
	}{
		{"NoType", "destinations: [{name: d}]", "destinations[0] (d).type: required"},
		{"BadOrdering", "destinations: [{name: d, type: http, ordering: lifo}]", `destinations[0] (d).ordering: unknown ordering "lifo"`},
		{"NegativeHeadTimeout", "destinations: [{name: d, type: http, ordering: fifo, head_timeout: -1m}]", "destinations[0] (d).head_timeout: must be positive"},
		{"HeadTimeoutWithoutOrder", "destinations: [{name: d, type: http, head_timeout: 10m}]", "destinations[0] (d).head_timeout: only with ordering fifo or key"},
		{"HeadTimeoutOrderingNone", "destinations: [{name: d, type: http, ordering: none, head_timeout: 10m}]", "destinations[0] (d).head_timeout: only with ordering fifo or key"},
		{"HeadTimeoutNoUnit", "destinations: [{name: d, type: http, ordering: fifo, head_timeout: 10}]", "invalid duration"},
		{"HeadTimeoutNotADuration", "destinations: [{name: d, type: http, ordering: key, head_timeout: soon}]", "invalid duration"},
		{"Duplicate", "destinations: [{name: d, type: http}, {name: d, type: http}]", `duplicate destination name "d"`},
		{"UnknownDestination", "subscriptions: [{destination: nope}]", `subscriptions[0].destination: no destination named "nope"`},
		{"UnknownSource", "destinations: [{name: d, type: http}]\nsubscriptions: [{source: nope, destination: d}]", `subscriptions[0].source: no source named "nope"`},
		{"BadPattern", "destinations: [{name: d, type: http}]\nsubscriptions: [{destination: d, events: [\"a.**\"]}]", "subscriptions[0].events[0]:"},
		{"BadFilter", "destinations: [{name: d, type: http}]\nsubscriptions: [{destination: d, filter: {path: a, op: gt, value: x}}]", "subscriptions[0].filter"},
		{"UnknownSubscriptionKey", "subscriptions: [{destination: d, evnts: []}]", "unknown key \"evnts\""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c, err := Parse([]byte(tt.yaml))
			if err == nil {
				err = c.Validate()
			}
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("got %v, want an error containing %q", err, tt.want)
			}
		})
	}
}

// head_timeout is read on fifo and key destinations; unset is 0 (strict
// order).
func TestHeadTimeout(t *testing.T) {
	t.Parallel()
	c, err := Parse([]byte("destinations: [{name: a, type: http, ordering: fifo, head_timeout: 10m}, {name: b, type: http, ordering: key, head_timeout: 90s}, {name: c, type: http, ordering: fifo}]"))
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	for i, want := range []time.Duration{10 * time.Minute, 90 * time.Second, 0} {
		if got := c.Destinations[i].HeadTimeout.D(); got != want {
			t.Errorf("destinations[%d].head_timeout: got %s, want %s", i, got, want)
		}
	}
	// It is one of the keys every kind shares, not the kind's own.
	var opts struct {
		URL string `yaml:"url"`
	}
	if err := c.Destinations[0].DecodeOptions(&opts); err != nil {
		t.Fatalf("DecodeOptions: %v", err)
	}
}

// A validity is a duration or a bare number of hours (seed 000).
func TestValidity(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in   string
		want time.Duration
		ok   bool
	}{
		{"1", time.Hour, true}, {"1.5", 90 * time.Minute, true}, {"90m", 90 * time.Minute, true},
		{"3s", 3 * time.Second, true}, {"0", 0, false}, {"-1", 0, false}, {"8761", 0, false},
		{"NaN", 0, false}, {"soon", 0, false},
	}
	for _, tt := range tests {
		var v struct {
			V Validity `yaml:"v"`
		}
		err := yaml.Unmarshal([]byte("v: "+tt.in), &v)
		if (err == nil) != tt.ok || (tt.ok && (v.V.D() != tt.want || !v.V.IsSet())) {
			t.Errorf("validity %q: got %s, %v; want %s, ok=%v", tt.in, v.V.D(), err, tt.want, tt.ok)
		}
	}
}
