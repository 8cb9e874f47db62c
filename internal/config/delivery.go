package config

import (
	"errors"
	"fmt"
	"regexp"
	"strings"

	"gopkg.in/yaml.v3"

	"hookd"
	"hookd/internal/route"
	"hookd/internal/transform"
)

// Destination is where events go (SPEC §3). The keys every kind shares are
// fields; the kind's own keys (url, brokers, topic, auth, sign…) are
// decoded strictly by the kind through DecodeOptions, and the retry policy
// by the engine through DecodeRetry.
type Destination struct {
	// Name identifies the destination in subscriptions and the API.
	Name string
	// Type is the kind: http, kafka, nats, amqp, redis, file or exec.
	Type string
	// Ordering is none (default, concurrent), fifo (one in flight, in
	// received order) or key (FIFO per event key).
	Ordering string
	// HeadTimeout bounds how long a delivery may fail retriably at the head
	// of an ordered lane (ordering fifo or key), counted from its first
	// attempt: past it, the delivery goes to the failed queue (reason
	// "head timeout exceeded") and the deliveries behind it go on. 0 (the
	// default) keeps strict order: the head holds its lane for as long
	// as its retry policy lasts.
	HeadTimeout Duration
	// Concurrency bounds attempts in flight. Default 16 (1 for fifo).
	Concurrency int
	// Rate bounds attempts per interval ("100/s"). Default unlimited.
	Rate *Rate
	// Line is where the destination starts in the file.
	Line int

	retry   *yaml.Node
	options *yaml.Node
	src     origin
}

// destinationKeys are the keys of Destination itself; the rest belong to
// the kind.
var destinationKeys = map[string]bool{"name": true, "type": true, "retry": true, "ordering": true, "head_timeout": true, "concurrency": true, "rate": true}

// UnmarshalYAML reads the shared keys and keeps the kind's and the retry
// policy's for later, strict, decoding.
func (d *Destination) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind != yaml.MappingNode {
		return fmt.Errorf("line %d: a destination is a mapping", n.Line)
	}
	*d = Destination{Line: n.Line}
	opts := &yaml.Node{Kind: yaml.MappingNode, Tag: "!!map", Line: n.Line, Column: n.Column}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		if !destinationKeys[k.Value] {
			opts.Content = append(opts.Content, k, v)
			continue
		}
		var err error
		switch k.Value {
		case "name":
			err = v.Decode(&d.Name)
		case "type":
			err = v.Decode(&d.Type)
		case "ordering":
			err = v.Decode(&d.Ordering)
		case "head_timeout":
			err = v.Decode(&d.HeadTimeout)
		case "concurrency":
			err = v.Decode(&d.Concurrency)
		case "rate":
			d.Rate = &Rate{}
			err = v.Decode(d.Rate)
		case "retry":
			d.retry = v
		}
		if err != nil {
			return redactValues(err)
		}
	}
	d.options = opts
	return nil
}

// DecodeOptions decodes the kind's own keys into dst (a pointer to a
// struct with yaml tags): every key must be a field of dst.
func (d Destination) DecodeOptions(dst any) error {
	return decodeStrict(d.options, dst, d.src.lines, sharedKeys...)
}

// sharedKeys are destinationKeys as a list, for suggestions.
var sharedKeys = keysOf(destinationSharedType, nil)

// Explain names the environment variable behind an error about one of
// the destination's keys whose ${VAR} was not set ("auth: client_secret:
// environment variable CS is not set"); other errors are returned as they
// are.
func (d Destination) Explain(err error) error { return d.src.explain(err) }

// ParseDestination reads one destination's definition, in JSON or YAML
// with the keys of the configuration file (no ${ENV} expansion: it comes
// from the admin API), and checks its shared keys. Its kind checks the
// rest when it is opened.
func ParseDestination(spec []byte) (Destination, error) {
	var root yaml.Node
	if err := yaml.Unmarshal(spec, &root); err != nil {
		return Destination{}, err
	}
	if err := checkKeys(&root, destinationType, "", false); err != nil {
		return Destination{}, err
	}
	var d Destination
	if err := root.Decode(&d); err != nil {
		return Destination{}, yamlError(err)
	}
	return d, nil
}

// ParseSubscription reads one subscription's definition, in JSON or YAML
// with the keys of the configuration file.
func ParseSubscription(spec []byte) (Subscription, error) {
	var root yaml.Node
	if err := yaml.Unmarshal(spec, &root); err != nil {
		return Subscription{}, err
	}
	if err := checkKeys(&root, subscriptionType, "", false); err != nil {
		return Subscription{}, err
	}
	var s Subscription
	if err := root.Decode(&s); err != nil {
		return Subscription{}, yamlError(err)
	}
	return s, nil
}

// DecodeRetry decodes the retry policy's keys into dst; nothing is done
// when the destination has no retry section.
func (d Destination) DecodeRetry(dst any) error {
	return decodeStrict(d.retry, dst, d.src.lines)
}

// Subscription routes events of some source(s) to a destination (SPEC §3).
type Subscription struct {
	// Source is the source whose events are routed; "" or "*" is every
	// source.
	Source string `yaml:"source"`
	// Destination names the destination.
	Destination string `yaml:"destination"`
	// Events are event-type patterns: "*", "event.claim.*" (one or more
	// further segments), exact names. Default ["*"].
	Events []string `yaml:"events"`
	// Filter is an optional payload filter (docs/routing.md).
	Filter *route.Filter `yaml:"filter"`
	// FilterExpr is an optional filter in CEL over id, source, type, key,
	// headers and body, such as `body.amount > 500 && headers["x-env"] ==
	// "prod"` (docs/FILTERS_AND_ENRICHMENT.md). With Filter, both must
	// hold.
	FilterExpr string `yaml:"filter_expr" json:",omitempty"`
	// Enrich, when set, fetches an entity before each delivery and adds
	// it to the body (docs/FILTERS_AND_ENRICHMENT.md).
	Enrich *Enrich `yaml:"enrich" json:",omitempty"`
	// SkipStale skips events marked stale (older than the newest for their
	// key).
	SkipStale bool `yaml:"skip_stale"`
	// Active is true unless set to false.
	Active *bool `yaml:"active"`
	// Transform is the JavaScript source of a function transform(event)
	// run on each attempt of this subscription's deliveries, after the
	// source's (docs/TRANSFORMATIONS.md). Default none.
	Transform string `yaml:"transform"`
}

// Enrich is a subscription's enrichment: before a delivery is sent, the
// entity at URL is fetched (through the egress guard) and added to the
// event's JSON body under Into.
type Enrich struct {
	// URL is the entity's URL, http or https, with placeholders in its
	// path and query: {{id}}, {{type}}, {{source}}, {{key}} and
	// {{body.a.b}} (a field of the JSON body). Required.
	URL string `yaml:"url"`
	// Auth is how hookd authenticates to the entity's API, with the keys
	// of an http destination's auth (header, basic or oauth2). Secret
	// values are write-only in the admin API.
	Auth map[string]any `yaml:"auth" json:",omitempty"`
	// Into is the body key the entity goes under. Required: letters,
	// digits, '_' and '-'.
	Into string `yaml:"into"`
	// Cache keeps a fetched entity (2xx answers only) for this long,
	// keyed by the final URL and the auth. Default 0: no cache.
	Cache Duration `yaml:"cache"`
	// Timeout bounds one fetch. Default 5s.
	Timeout Duration `yaml:"timeout"`
}

// Spec returns e as transform takes it.
func (e *Enrich) Spec() transform.EnrichSpec {
	return transform.EnrichSpec{URL: e.URL, Into: e.Into, Cache: e.Cache.D(), Timeout: e.Timeout.D(), Auth: e.Auth}
}

var destinationName = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$`)

// Validate checks the keys every destination kind shares; the kind checks
// its own when it is opened.
func (d Destination) Validate() error {
	var errs []error
	d.check(func(field, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s: %s", field, fmt.Sprintf(format, args...)))
	})
	return errors.Join(errs...)
}

func (d Destination) check(bad func(field, format string, args ...any)) {
	if !destinationName.MatchString(d.Name) {
		bad("name", "invalid name %q (letters, digits, '-', '_' and '.', at most 64)", d.Name)
	}
	if d.Type == "" {
		bad("type", "required (http, kafka, nats, amqp, redis, file or exec)")
	}
	switch d.Ordering {
	case "", "none", "fifo", "key":
	default:
		bad("ordering", "unknown ordering %q (want none, fifo or key)", d.Ordering)
	}
	switch {
	case d.HeadTimeout < 0:
		bad("head_timeout", "must be positive, got %s", d.HeadTimeout.D())
	case d.HeadTimeout > 0 && d.Ordering != "fifo" && d.Ordering != "key":
		bad("head_timeout", "only with ordering fifo or key (a destination with ordering none has no head: its retries block nothing)")
	}
	if d.Concurrency < 0 || d.Concurrency > 10000 {
		bad("concurrency", "must be between 1 and 10000")
	}
}

// Validate checks a subscription's own keys (not that its source and
// destination exist).
func (s Subscription) Validate() error {
	var errs []error
	if len(s.Events) > MaxEventPatterns {
		errs = append(errs, fmt.Errorf("events: %d patterns, more than %d", len(s.Events), MaxEventPatterns))
	}
	for j, p := range s.Events {
		if _, err := route.CompilePattern(p); err != nil {
			errs = append(errs, fmt.Errorf("events[%d]: %v", j, err))
		}
	}
	if s.Filter != nil {
		if err := s.Filter.Compile(); err != nil {
			errs = append(errs, fmt.Errorf("filter: %v", strings.TrimPrefix(err.Error(), "filter")))
		}
	}
	s.checkTransform(func(field, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s: %s", field, fmt.Sprintf(format, args...)))
	})
	if err := ValidTransform(s.Transform); err != nil {
		errs = append(errs, fmt.Errorf("transform: %v", err))
	}
	return errors.Join(errs...)
}

// checkTransform checks filter_expr and enrich (the auth of enrich is
// checked when the engine builds it).
func (s Subscription) checkTransform(bad func(field, format string, args ...any)) {
	if s.FilterExpr != "" {
		if _, err := transform.CachedFilter(s.FilterExpr); err != nil {
			bad("filter_expr", "%v", err)
		}
	}
	if s.Enrich != nil {
		if err := s.Enrich.Spec().Check(); err != nil {
			bad("enrich", "%v", err)
		}
	}
}

// validateDelivery checks destinations and subscriptions; bad reports one
// problem with the field it is about.
func (c *Config) validateDelivery(bad func(field, format string, args ...any)) {
	names := map[string]bool{}
	for i, d := range c.Destinations {
		f := fmt.Sprintf("destinations[%d]", i)
		if d.Name != "" {
			f = fmt.Sprintf("destinations[%d] (%s)", i, d.Name)
		}
		if names[d.Name] {
			bad(f+".name", "duplicate destination name %q", d.Name)
		}
		names[d.Name] = true
		d.check(func(field, format string, args ...any) { bad(f+"."+field, format, args...) })
	}
	sources := map[string]bool{hookd.AlertSource: true}
	for _, s := range c.Sources {
		sources[s.Name] = true
	}
	for i, s := range c.Subscriptions {
		f := fmt.Sprintf("subscriptions[%d]", i)
		if s.Source != "" && s.Source != "*" && !sources[s.Source] {
			bad(f+".source", "no source named %q", s.Source)
		}
		if !names[s.Destination] {
			bad(f+".destination", "no destination named %q", s.Destination)
		}
		if len(s.Events) > MaxEventPatterns {
			bad(f+".events", "%d patterns, more than %d", len(s.Events), MaxEventPatterns)
		}
		for j, p := range s.Events {
			if _, err := route.CompilePattern(p); err != nil {
				bad(fmt.Sprintf("%s.events[%d]", f, j), "%v", err)
			}
		}
		if s.Filter != nil {
			if err := s.Filter.Compile(); err != nil {
				bad(f+".filter", "%v", strings.TrimPrefix(err.Error(), "filter"))
			}
		}
		s.checkTransform(func(field, format string, args ...any) { bad(f+"."+field, format, args...) })
		if err := ValidTransform(s.Transform); err != nil {
			bad(f+".transform", "%v", err)
		}
	}
}

// DecodeMap decodes a section kept as a map (such as enrich.auth) into dst
// (a pointer to a struct with yaml tags) as strictly as a destination's
// options: every key must be a field of dst, and errors never quote a
// value.
func DecodeMap(m map[string]any, dst any) error {
	var n yaml.Node
	if err := n.Encode(m); err != nil {
		return redactValues(err)
	}
	return decodeStrict(&n, dst, false)
}
