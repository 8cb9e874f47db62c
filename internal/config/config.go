// Package config reads hookd's configuration: defaults, then a YAML file
// with ${ENV} expansion, then environment overrides and flags, then
// Validate, which names the bad field. Unknown keys are errors. The result
// is a plain struct passed down, never a global.
package config

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"gopkg.in/yaml.v3"

	"hookd/internal/egress"
	"hookd/internal/jsonlimit"
	"hookd/internal/secret"
)

// Config is the whole configuration of one hookd process.
type Config struct {
	// Listen is the address the HTTP server listens on. Default ":8080".
	// Overridden by HOOKD_LISTEN and --listen.
	Listen string `yaml:"listen"`
	// Storage selects and configures the database.
	Storage Storage `yaml:"storage"`
	// Admin configures the admin API.
	Admin Admin `yaml:"admin"`
	// Egress configures outbound connections: deliveries, token endpoints,
	// JWKS and introspection (docs/egress.md).
	Egress Egress `yaml:"egress"`
	// Server tunes the HTTP server and the ingest path.
	Server Server `yaml:"server"`
	// Log configures logging.
	Log Log `yaml:"log"`
	// Sources are the inbound endpoints, POST /in/{name}.
	Sources []Source `yaml:"sources"`
	// Delivery tunes the delivery engine.
	Delivery Delivery `yaml:"delivery"`
	// Secrets configures the encryption of secrets stored in the database.
	Secrets Secrets `yaml:"secrets"`
	// Destinations are where events go (delivery; see docs/DELIVERY.md).
	Destinations []Destination `yaml:"destinations"`
	// Subscriptions route events to destinations.
	Subscriptions []Subscription `yaml:"subscriptions"`
	// Metrics configures the Prometheus endpoint.
	Metrics Metrics `yaml:"metrics"`
	// Retention bounds how long events are kept.
	Retention Retention `yaml:"retention"`
	// Limits caps how many sources, destinations and subscriptions hookd
	// holds (the file's and the API's together).
	Limits Limits `yaml:"limits"`
	// OAuthIssuer tunes hookd's token endpoint, POST /oauth/token.
	OAuthIssuer OAuthIssuer `yaml:"oauth_issuer"`
	// Cluster tunes several hookd processes (replicas) sharing one
	// PostgreSQL schema.
	Cluster Cluster `yaml:"cluster"`
	// Tracing configures OpenTelemetry tracing; off by default
	// (docs/TRACING.md).
	Tracing Tracing `yaml:"tracing"`
	// Alerts configures hookd's operational events (the built-in source
	// "hookd", docs/ALERTS.md).
	Alerts Alerts `yaml:"alerts"`
	// TransformTimeout is the time limit of one call of a JavaScript
	// transformation (docs/TRANSFORMATIONS.md). Default 50ms, at most 5s.
	TransformTimeout Duration `yaml:"transform_timeout"`

	// Demo is true when no configuration file was given and hookd runs on
	// its embedded default with a demo source. Not a YAML key.
	Demo bool `yaml:"-"`
	// UnsetEnv names the variables the file refers to that were not set;
	// they expanded to "". Not a YAML key.
	UnsetEnv []string `yaml:"-"`
	// UnsetRefs are the keys whose values refer to them. Not a YAML key.
	UnsetRefs []EnvRef `yaml:"-"`
}

// Storage selects the database.
type Storage struct {
	// Driver is "sqlite" (default, embedded) or "postgres". Overridden by
	// HOOKD_STORAGE_DRIVER.
	Driver string `yaml:"driver"`
	// Path is the SQLite data directory. Default "./hookd-data".
	// Overridden by HOOKD_DATA and --data.
	Path string `yaml:"path"`
	// DSN is the PostgreSQL connection string. Overridden by HOOKD_STORAGE_DSN.
	DSN string `yaml:"dsn"`
}

// Admin configures the admin API.
type Admin struct {
	// Tokens are the bearer tokens the admin API accepts. HOOKD_ADMIN_TOKEN
	// is added to them. When there are none, hookd generates one, stores it
	// in the database and prints it at start.
	Tokens []string `yaml:"tokens"`
	// SessionTTL is how long a console sign-in (POST /api/v1/session)
	// lasts, counted from the sign-in; using the session does not extend
	// it. Between 1m and 720h. Default 12h.
	SessionTTL Duration `yaml:"session_ttl"`
}

// DefaultSessionTTL is admin.session_ttl's default.
const DefaultSessionTTL = 12 * time.Hour

// Egress configures outbound connections.
type Egress struct {
	// AllowPrivate lists CIDRs that hookd may connect to although they are
	// private, loopback or link-local (SSRF guard exceptions), for
	// destinations and verification URLs alike. Default none.
	AllowPrivate []string `yaml:"allow_private"`
	// AllowHTTPHosts lists hosts that hookd may reach over plain
	// http (names or IP literals, "*.example.com" for every name under
	// example.com). Default none: https is required, except for addresses
	// in AllowPrivate.
	AllowHTTPHosts []string `yaml:"allow_http_hosts"`
	// Proxy is the HTTP proxy every outbound HTTP request (deliveries,
	// token endpoints, JWKS, introspection) goes through: http://host:port
	// or https://host:port, optionally with credentials. Default none; the
	// environment's proxy variables (HTTP_PROXY…) are ignored either way.
	// Broker connections never use it.
	Proxy string `yaml:"proxy"`
}

// Secrets configures how hookd encrypts the secrets it stores (signing
// secrets and credentials of destinations created through the API).
type Secrets struct {
	// MasterKeys are "<key-id>:<base64 of 32 bytes>" specs; the first is
	// active, the others only decrypt (rotation). HOOKD_MASTER_KEY (a
	// comma-separated list) replaces them. With none, hookd generates one
	// into <storage.path>/master.key when it first stores a secret.
	MasterKeys []string `yaml:"master_keys"`
}

// OAuthIssuer tunes hookd's token endpoint, POST /oauth/token, served when
// a source uses the oauth_issuer method. Failed client authentications are
// limited so that a client secret cannot be guessed by trying: beyond a
// limit the endpoint answers 429 with Retry-After without checking the
// secret (docs/VERIFICATION.md).
type OAuthIssuer struct {
	// ClientFailures limits failed authentications per client id, from
	// every address together ("10/m"). Beyond it the client id is refused
	// for a while, also with its right secret, except from addresses where
	// it authenticated before. Default 10/m.
	ClientFailures Rate `yaml:"client_failures"`
	// AddressFailures limits failed authentications per remote address
	// (an IPv6 address counts with its /64), whatever the client id.
	// Default 10/m.
	AddressFailures Rate `yaml:"address_failures"`
	// FailureBurst is how many failures each limit lets through at once
	// before the rate applies. Default 5.
	FailureBurst int `yaml:"failure_burst"`
	// MaxAddresses bounds the remote addresses tracked; beyond it the one
	// seen least recently is forgotten. Default 10000.
	MaxAddresses int `yaml:"max_addresses"`
}

// Defaults of oauth_issuer.
var (
	DefaultIssuerFailures     = Rate{N: 10, Per: time.Minute}
	DefaultIssuerFailureBurst = 5
	DefaultIssuerMaxAddresses = 10000
)

// Retention bounds how long events are kept (docs/CONFIGURATION.md).
type Retention struct {
	// Events: an event received longer ago than this is deleted, with its
	// deliveries and their attempt logs, once every delivery of it is
	// finished (succeeded, failed or cancelled). Default 720h (30 days);
	// 0 keeps every event.
	Events *Duration `yaml:"events"`
	// Interval is the time between two passes. Default 1h.
	Interval Duration `yaml:"interval"`
}

// Cluster tunes several hookd serve processes (replicas) on one
// PostgreSQL schema (docs/POSTGRES.md). A single process uses it too: it
// cannot know that it is alone.
type Cluster struct {
	// Lease is how long a replica's claim on work lasts without renewal;
	// a replica that dies has its work taken over by the others after at
	// most this long. Default 15s, at least 1s.
	Lease Duration `yaml:"lease"`
	// Reconcile is the time between two readings of the stored sources,
	// destinations and subscriptions. A change made through one replica
	// reaches the others at once by a notification; this reading is the
	// safety net for a notification that was lost (a replica reconnecting
	// to the database). Default 10s.
	Reconcile Duration `yaml:"reconcile"`
}

// Defaults of cluster.
const (
	DefaultClusterLease     = Duration(15 * time.Second)
	DefaultClusterReconcile = Duration(10 * time.Second)
)

// Limits caps the definitions hookd holds, those of the file and those
// created through the admin API together: each costs memory, and the
// admin API's listings page through them. A file over a cap is refused at
// load; a create through the API over it answers 409.
type Limits struct {
	// MaxSources caps the sources. Default 1000.
	MaxSources int `yaml:"max_sources"`
	// MaxDestinations caps the destinations. Default 1000.
	MaxDestinations int `yaml:"max_destinations"`
	// MaxSubscriptions caps the subscriptions. Default 10000.
	MaxSubscriptions int `yaml:"max_subscriptions"`
}

// Default caps of Limits.
const (
	DefaultMaxSources       = 1000
	DefaultMaxDestinations  = 1000
	DefaultMaxSubscriptions = 10000
)

// Bounds within one definition (file or API).
const (
	// MaxEventPatterns caps a subscription's events list.
	MaxEventPatterns = 256
	// MaxVerifyMethods caps a source's verify list.
	MaxVerifyMethods = 16
)

// Metrics configures the Prometheus endpoint, GET /metrics.
type Metrics struct {
	// Enabled serves /metrics. Default true.
	Enabled *bool `yaml:"enabled"`
	// Listen, when set, serves /metrics on this address of its own (for
	// example 127.0.0.1:9090) instead of the main listener, which then
	// answers 404 for it.
	Listen string `yaml:"listen"`
}

// On reports whether /metrics is served.
func (m Metrics) On() bool { return m.Enabled == nil || *m.Enabled }

// Delivery tunes the delivery engine.
type Delivery struct {
	// DisableAfter disables a destination whose attempts have all failed
	// for this long (it is reported, and its work waits until it is
	// enabled again). Default 120h; 0 never disables.
	DisableAfter *Duration `yaml:"disable_after"`
	// MemoryQueue bounds the deliveries of one destination held in memory;
	// beyond it they wait in the store. Default 10000.
	MemoryQueue int `yaml:"memory_queue"`
	// MemoryQueueBytes bounds the event bodies one destination holds in
	// memory ("64MiB"); beyond it they wait in the database. Default 64MiB.
	MemoryQueueBytes Size `yaml:"memory_queue_bytes"`
}

// Server tunes the HTTP server and the ingest path.
type Server struct {
	// AckDeadline is the longest an ingest request waits for its event
	// to enter a batch being written before it is answered 503 with
	// Retry-After (the event is then not stored). Once in a batch, the
	// request waits for the batch's outcome. Default 2s.
	AckDeadline Duration `yaml:"ack_deadline"`
	// MaxInFlight caps the requests to sources (and to the token
	// endpoint) that are being verified and committed at once; beyond it
	// hookd answers 503 at once. A request takes its slot only once its
	// body is in: a slow upload holds none. Default 4096.
	MaxInFlight int `yaml:"max_in_flight"`
	// AdminMaxInFlight caps the admin API and console requests served at
	// once, apart from MaxInFlight, so that a flood of ingest requests
	// never starves them. Default 256.
	AdminMaxInFlight int `yaml:"admin_max_in_flight"`
	// BodyTimeout bounds the reading of a request body, from the end of
	// its headers; past it the answer is 408 and the connection is
	// closed. It applies when shorter than ReadTimeout. Default 10s.
	BodyTimeout Duration `yaml:"body_timeout"`
	// ReadHeaderTimeout bounds reading request headers. Default 5s.
	ReadHeaderTimeout Duration `yaml:"read_header_timeout"`
	// ReadTimeout bounds reading a whole request. Default 30s.
	ReadTimeout Duration `yaml:"read_timeout"`
	// WriteTimeout bounds writing a response. Default 30s.
	WriteTimeout Duration `yaml:"write_timeout"`
	// IdleTimeout closes idle keep-alive connections. Default 120s.
	IdleTimeout Duration `yaml:"idle_timeout"`
	// MaxHeaderBytes caps request headers. Default 64KiB.
	MaxHeaderBytes Size `yaml:"max_header_bytes"`
	// ShutdownGrace is how long the first SIGINT/SIGTERM waits for
	// in-flight requests and commits; a second signal stops at once.
	// Default 30s.
	ShutdownGrace Duration `yaml:"shutdown_grace"`
	// RetryAfter is the Retry-After, in seconds, sent with 503 answers.
	// Default 5s.
	RetryAfter Duration `yaml:"retry_after"`
	// VerifyTimeout bounds a source's verification (a JWKS fetch, a token
	// introspection); past it the answer is 503. Default 3s.
	VerifyTimeout Duration `yaml:"verify_timeout"`
	// MaxJSONDepth bounds the nesting of a request body that hookd reads
	// as JSON (json: selectors, JSON-field signatures, subscription
	// filters). A source that must read such a body answers 400; one that
	// only stores it stores it, and it matches no payload filter. Default
	// 128; at most 10000.
	MaxJSONDepth int `yaml:"max_json_depth"`
	// MaxBodyMemory bounds the request body bytes that ingest and the
	// token endpoint hold in memory at once, counted as they arrive; a
	// request whose bytes do not fit is answered 503 with Retry-After at
	// once and its connection closed. Default 256MiB.
	MaxBodyMemory Size `yaml:"max_body_memory"`
	// MaxBodyMemoryPerAddress bounds what one remote address (an IPv6
	// address: its /64) holds of MaxBodyMemory. Behind a reverse proxy
	// every request comes from the proxy's address: set it to
	// MaxBodyMemory there. Default a quarter of MaxBodyMemory.
	MaxBodyMemoryPerAddress Size `yaml:"max_body_memory_per_address"`
	// TLS, when set, serves the listener over TLS (docs/TLS.md): from
	// certificate files (CertFile, KeyFile) or from an ACME server (ACME).
	// Default none: plain HTTP.
	TLS *TLS `yaml:"tls"`
}

// TLS serves the main listener over TLS 1.2 or later (docs/TLS.md).
// Either CertFile and KeyFile or ACME is set, not both.
type TLS struct {
	// CertFile is the PEM certificate chain, leaf first. hookd reads it
	// again when it changes (checked every few seconds, on a handshake):
	// a rotation needs no restart, and a replacement that does not load
	// keeps the current pair in service (the reason is logged).
	CertFile string `yaml:"cert_file"`
	// KeyFile is the PEM private key of CertFile, reloaded with it.
	KeyFile string `yaml:"key_file"`
	// ClientCAFile, when set, is a PEM bundle of CA certificates: every
	// client must then present a certificate issued by one of them, or
	// its handshake fails. Default none: no client certificate is asked.
	ClientCAFile string `yaml:"client_ca_file"`
	// ACME obtains and renews the certificate from an ACME server.
	ACME *ACME `yaml:"acme"`
}

// ACME obtains certificates from an ACME server (RFC 8555) with the
// tls-alpn-01 challenge, answered on the main listener.
type ACME struct {
	// Domains are the names a certificate is obtained for; a handshake for
	// any other name fails. At least one.
	Domains []string `yaml:"domains"`
	// Email is the contact address of the ACME account. Optional.
	Email string `yaml:"email"`
	// Directory is the ACME server's directory URL (https). Default Let's
	// Encrypt's production directory, DefaultACMEDirectory.
	Directory string `yaml:"directory"`
	// CARootFile is a PEM bundle of CA certificates trusted for the HTTPS
	// connections to Directory, instead of the system's roots: for a
	// private ACME server. Default none.
	CARootFile string `yaml:"ca_root_file"`
	// Storage is the directory that keeps the account key and the
	// certificates across restarts. Default <storage.path>/acme.
	Storage string `yaml:"storage"`
}

// DefaultACMEDirectory is the default of server.tls.acme.directory.
const DefaultACMEDirectory = "https://acme-v02.api.letsencrypt.org/directory"

// Log configures logging.
type Log struct {
	// Level is debug, info (default), warn or error.
	Level string `yaml:"level"`
	// Format is text (default) or json.
	Format string `yaml:"format"`
}

// Source is one inbound endpoint.
type Source struct {
	// Name appears in the URL: POST /in/{name}. Letters, digits, '-', '_', '.'.
	Name string `yaml:"name"`
	// Verify lists verification methods; all must pass. Empty accepts every
	// request (hookd warns when such a source listens beyond loopback).
	Verify []Verify `yaml:"verify"`
	// Event selects metadata from each request.
	Event EventRules `yaml:"event"`
	// DedupeWindow is how long, counted from the first occurrence, a
	// repeated provider id is a duplicate. Default 168h; "0s" disables dedupe.
	DedupeWindow *Duration `yaml:"dedupe_window"`
	// MaxBody caps the request body. Default 1MiB.
	MaxBody Size `yaml:"max_body"`
	// Response customises the success answer.
	Response Response `yaml:"response"`
	// RateLimit caps accepted requests ("100/s"); beyond it hookd answers
	// 429 with Retry-After. Default unlimited.
	RateLimit *Rate `yaml:"rate_limit"`
	// Burst is how many requests the rate limit lets through at once.
	// Default: one second's worth of the rate.
	Burst int `yaml:"burst"`
	// Handshake answers the verification handshake of a provider that
	// has no preset (docs/PROVIDERS.md (Handshakes)). Default none.
	Handshake *Handshake `yaml:"handshake"`
	// Transform is the JavaScript source of a function transform(event)
	// run on each attempt of every delivery of this source's events,
	// before the subscription's; the stored event keeps its body
	// (docs/TRANSFORMATIONS.md). Default none.
	Transform string `yaml:"transform"`
}

// EventRules are a source's metadata selectors. Each is "header:Name",
// "json:path.to.field", "query:name" or "form:name" (a parameter of a
// form-encoded body).
type EventRules struct {
	// ID selects the provider's event id, used for dedupe.
	ID string `yaml:"id"`
	// Type selects the event type.
	Type string `yaml:"type"`
	// Timestamp selects the provider's timestamp: RFC 3339, or epoch
	// seconds (milliseconds when ≥ 10^11).
	Timestamp string `yaml:"timestamp"`
	// Key selects the entity key (ordering and out-of-order detection).
	Key string `yaml:"key"`
	// RequireID answers 400 when the id is absent or cannot be read.
	RequireID bool `yaml:"require_id"`
}

// Response customises a source's success answer.
type Response struct {
	// Status is the success status code. Default 200.
	Status int `yaml:"status"`
	// Body replaces the default JSON body {"id":…,"request_id":…}.
	Body string `yaml:"body"`
	// ContentType goes with Body. Default "application/json" for the
	// default body, "text/plain; charset=utf-8" for a custom one.
	ContentType string `yaml:"content_type"`
}

// Verify is one verification method: its type and the type's own options,
// decoded strictly by package verify (see Decode).
type Verify struct {
	// Type names the method, such as "hmac" or "oauth_jwt".
	Type string
	// Options are the method's keys other than type, for display.
	Options map[string]any
	// Line is where the method starts in the file (0 when built in code).
	Line int

	node *yaml.Node
	src  origin
}

// UnmarshalYAML keeps the method's options for package verify.
func (v *Verify) UnmarshalYAML(n *yaml.Node) error {
	var m map[string]any
	if err := n.Decode(&m); err != nil {
		return err
	}
	t, _ := m["type"].(string)
	delete(m, "type")
	*v = Verify{Type: t, Options: m, Line: n.Line, node: n}
	return nil
}

// NewVerify returns a method built in code (tests, defaults) from options
// as they would be written in YAML.
func NewVerify(typ string, opts map[string]any) (Verify, error) {
	var n yaml.Node
	if err := n.Encode(opts); err != nil {
		return Verify{}, err
	}
	return Verify{Type: typ, Options: opts, node: &n}, nil
}

// Decode decodes the method's options into dst, a pointer to a struct with
// yaml tags: every key but type must be a field of dst, and errors name
// the line of the file.
func (v Verify) Decode(dst any) error {
	if v.node == nil {
		return nil
	}
	n := *v.node
	if n.Kind == yaml.MappingNode {
		n.Content = nil
		for i := 0; i+1 < len(v.node.Content); i += 2 {
			if v.node.Content[i].Value != "type" {
				n.Content = append(n.Content, v.node.Content[i], v.node.Content[i+1])
			}
		}
	}
	return decodeStrict(&n, dst, v.src.lines, "type")
}

// Explain names the environment variable behind an error about one of the
// method's options whose ${VAR} was not set ("secrets[0]: environment
// variable GITHUB_WEBHOOK_SECRET is not set"); other errors are returned
// as they are.
func (v Verify) Explain(err error) error { return v.src.explain(err) }

// decodeStrict decodes n into dst (a pointer to a struct with yaml tags):
// every key must be a field of dst (or one of extra, keys its caller
// read), errors name the key path (and the line, for the file) and never
// quote a value. A nil node decodes nothing.
func decodeStrict(n *yaml.Node, dst any, lines bool, extra ...string) error {
	if n == nil {
		return nil
	}
	if err := checkKeys(n, reflect.TypeOf(dst).Elem(), "", lines, extra...); err != nil {
		return err
	}
	if err := n.Decode(dst); err != nil {
		return yamlError(err)
	}
	return nil
}

var quotedValue = regexp.MustCompile("`[^`]*`")

// redactValues removes the values yaml quotes in its type errors ("cannot
// unmarshal !!str `s3cr3t` into []string"): a method's options hold
// secrets, and errors end up in logs.
func redactValues(err error) error {
	return errors.New(quotedValue.ReplaceAllString(err.Error(), "a value"))
}

// Defaults.
const (
	DefaultListen  = ":8080"
	DefaultDataDir = "./hookd-data"
	DefaultMaxBody = Size(1 << 20)
	// DefaultMaxBodyMemory is server.max_body_memory's default.
	DefaultMaxBodyMemory = Size(256 << 20)
	DefaultDedupeWindow  = 168 * time.Hour
	DemoSource           = "demo"
	DefaultDisableAfter  = Duration(120 * time.Hour)
	// DefaultRetention is retention.events when unset.
	DefaultRetention = Duration(720 * time.Hour)
)

// Default returns the configuration used when no file is given: the
// embedded SQLite store and a demo source.
func Default() *Config {
	c := &Config{Demo: true}
	c.Sources = []Source{{
		Name:  DemoSource,
		Event: EventRules{ID: "json:id", Type: "json:type"},
	}}
	c.applyDefaults()
	return c
}

func (c *Config) applyDefaults() {
	c.applyTracingDefaults()
	if c.Delivery.DisableAfter == nil {
		d := DefaultDisableAfter
		c.Delivery.DisableAfter = &d
	}
	if c.Retention.Events == nil {
		d := DefaultRetention
		c.Retention.Events = &d
	}
	if c.Retention.Interval == 0 {
		c.Retention.Interval = Duration(time.Hour)
	}
	c.Alerts.applyDefaults()
	if c.Cluster.Lease == 0 {
		c.Cluster.Lease = DefaultClusterLease
	}
	if c.Cluster.Reconcile == 0 {
		c.Cluster.Reconcile = DefaultClusterReconcile
	}
	if c.Limits.MaxSources == 0 {
		c.Limits.MaxSources = DefaultMaxSources
	}
	if c.Limits.MaxDestinations == 0 {
		c.Limits.MaxDestinations = DefaultMaxDestinations
	}
	if c.Limits.MaxSubscriptions == 0 {
		c.Limits.MaxSubscriptions = DefaultMaxSubscriptions
	}
	if c.Listen == "" {
		c.Listen = DefaultListen
	}
	if c.Storage.Driver == "" {
		c.Storage.Driver = "sqlite"
	}
	if c.Storage.Path == "" {
		c.Storage.Path = DefaultDataDir
	}
	s := &c.Server
	setD := func(d *Duration, v time.Duration) {
		if *d == 0 {
			*d = Duration(v)
		}
	}
	setD(&s.AckDeadline, 2*time.Second)
	setD(&s.ReadHeaderTimeout, 5*time.Second)
	setD(&s.ReadTimeout, 30*time.Second)
	setD(&s.BodyTimeout, 10*time.Second)
	setD(&s.WriteTimeout, 30*time.Second)
	setD(&s.IdleTimeout, 120*time.Second)
	setD(&s.ShutdownGrace, 30*time.Second)
	setD(&s.RetryAfter, 5*time.Second)
	setD(&s.VerifyTimeout, 3*time.Second)
	if s.MaxInFlight == 0 {
		s.MaxInFlight = 4096
	}
	if s.AdminMaxInFlight == 0 {
		s.AdminMaxInFlight = 256
	}
	if s.MaxJSONDepth == 0 {
		s.MaxJSONDepth = jsonlimit.DefaultDepth
	}
	if s.MaxHeaderBytes == 0 {
		s.MaxHeaderBytes = 64 << 10
	}
	if s.MaxBodyMemory == 0 {
		s.MaxBodyMemory = DefaultMaxBodyMemory
	}
	if s.MaxBodyMemoryPerAddress == 0 {
		s.MaxBodyMemoryPerAddress = s.MaxBodyMemory / 4
	}
	if t := s.TLS; t != nil && t.ACME != nil {
		if t.ACME.Directory == "" {
			t.ACME.Directory = DefaultACMEDirectory
		}
	}
	if c.Log.Level == "" {
		c.Log.Level = "info"
	}
	if c.Admin.SessionTTL == 0 {
		c.Admin.SessionTTL = Duration(DefaultSessionTTL)
	}
	oi := &c.OAuthIssuer
	if oi.ClientFailures.N == 0 {
		oi.ClientFailures = DefaultIssuerFailures
	}
	if oi.AddressFailures.N == 0 {
		oi.AddressFailures = DefaultIssuerFailures
	}
	if oi.FailureBurst == 0 {
		oi.FailureBurst = DefaultIssuerFailureBurst
	}
	if oi.MaxAddresses == 0 {
		oi.MaxAddresses = DefaultIssuerMaxAddresses
	}
	if c.Log.Format == "" {
		c.Log.Format = "text"
	}
	for i := range c.Sources {
		src := &c.Sources[i]
		if src.MaxBody == 0 {
			src.MaxBody = DefaultMaxBody
		}
		if src.DedupeWindow == nil {
			d := Duration(DefaultDedupeWindow)
			src.DedupeWindow = &d
		}
		if src.Response.Status == 0 {
			src.Response.Status = 200
		}
		if src.Response.Body != "" && src.Response.ContentType == "" {
			src.Response.ContentType = "text/plain; charset=utf-8"
		}
	}
}

// Load reads the file at path (or the embedded default when path is ""),
// applies the environment overrides and defaults, and validates.
func Load(path string) (*Config, error) {
	var c *Config
	if path == "" {
		c = Default()
	} else {
		raw, err := os.ReadFile(path)
		if err != nil {
			return nil, fmt.Errorf("read config: %w", err)
		}
		if c, err = Parse(raw); err != nil {
			return nil, fmt.Errorf("config %s: %w", path, err)
		}
	}
	c.ApplyEnv(os.Getenv)
	if err := c.explainUnset(c.Validate()); err != nil {
		if path != "" {
			return nil, fmt.Errorf("config %s: %w", path, err)
		}
		return nil, fmt.Errorf("config: %w", err)
	}
	return c, nil
}

// Parse decodes YAML, expanding ${VAR} in every scalar value (never in
// keys, and never re-parsed as YAML, so a variable cannot inject structure).
// Unknown keys are errors. Defaults are applied; Validate is not called.
func Parse(raw []byte) (*Config, error) {
	var root yaml.Node
	if err := yaml.Unmarshal(raw, &root); err != nil {
		return nil, err
	}
	var unset []EnvRef
	expandNode(&root, "", os.LookupEnv, &unset)
	c := &Config{}
	if len(bytes.TrimSpace(raw)) > 0 && root.Kind != 0 {
		if err := checkKeys(&root, reflect.TypeOf(c).Elem(), "", true); err != nil {
			return nil, err
		}
		if err := root.Decode(c); err != nil {
			return nil, yamlError(err)
		}
	}
	c.applyDefaults()
	c.setUnset(unset)
	return c, nil
}

var envRef = regexp.MustCompile(`\$\$|\$\{([A-Za-z_][A-Za-z0-9_]*)\}`)

// expandNode expands the scalars under n, the node at key path path, and
// appends the references to unset variables to unset.
func expandNode(n *yaml.Node, path string, lookup func(string) (string, bool), unset *[]EnvRef) {
	switch n.Kind {
	case yaml.DocumentNode:
		for _, c := range n.Content {
			expandNode(c, path, lookup, unset)
		}
	case yaml.SequenceNode:
		for i, c := range n.Content {
			expandNode(c, fmt.Sprintf("%s[%d]", path, i), lookup, unset)
		}
	case yaml.MappingNode:
		for i := 1; i < len(n.Content); i += 2 {
			expandNode(n.Content[i], joinKey(path, n.Content[i-1].Value), lookup, unset)
		}
	case yaml.ScalarNode:
		if !strings.Contains(n.Value, "$") {
			return
		}
		var missing []string
		n.Value = ExpandEnv(n.Value, lookup, &missing)
		for _, v := range missing {
			*unset = append(*unset, EnvRef{Key: path, Var: v})
		}
		// The expanded value is re-typed from its text, as if it had been
		// written in the file: "100" for an int field, "true" for a bool.
		// Only the scalar's type can change, never the structure.
		if n.Style == 0 {
			n.Tag = "!!str"
			if _, err := strconv.ParseInt(n.Value, 10, 64); err == nil {
				n.Tag = "!!int"
			} else if n.Value == "true" || n.Value == "false" {
				n.Tag = "!!bool"
			}
		}
	}
}

// ExpandEnv replaces ${VAR} with its value and $$ with $. An unset variable
// expands to "" (Validate then names a required field left empty) and its
// name is appended to missing, for a warning at start.
func ExpandEnv(s string, lookup func(string) (string, bool), missing *[]string) string {
	return envRef.ReplaceAllStringFunc(s, func(m string) string {
		if m == "$$" {
			return "$"
		}
		name := m[2 : len(m)-1]
		v, ok := lookup(name)
		if !ok && missing != nil && !slices.Contains(*missing, name) {
			*missing = append(*missing, name)
		}
		return v
	})
}

// ApplyEnv applies the HOOKD_* environment overrides.
func (c *Config) ApplyEnv(getenv func(string) string) {
	if v := getenv("HOOKD_LISTEN"); v != "" {
		c.Listen = v
	}
	if v := getenv("HOOKD_DATA"); v != "" {
		c.Storage.Path = v
	}
	if v := getenv("HOOKD_STORAGE_DRIVER"); v != "" {
		c.Storage.Driver = v
	}
	if v := getenv("HOOKD_STORAGE_DSN"); v != "" {
		c.Storage.DSN = v
	}
	if v := getenv("HOOKD_ADMIN_TOKEN"); v != "" {
		c.Admin.Tokens = append(c.Admin.Tokens, v)
	}
	if v := getenv("HOOKD_MASTER_KEY"); v != "" {
		c.Secrets.MasterKeys = strings.Split(v, ",")
	}
}

var sourceName = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$`)

// Validate checks the configuration and names the first bad field. It
// also drops empty admin tokens (an unset ${HOOKD_ADMIN_TOKEN}).
func (c *Config) Validate() error {
	var errs []error
	bad := func(field, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s: %s", field, fmt.Sprintf(format, args...)))
	}
	if _, _, err := net.SplitHostPort(c.Listen); err != nil {
		bad("listen", "invalid address %q (want host:port or :port)", c.Listen)
	}
	switch c.Storage.Driver {
	case "sqlite":
		if c.Storage.Path == "" {
			bad("storage.path", "required for the sqlite driver")
		}
	case "postgres":
		if c.Storage.DSN == "" {
			bad("storage.dsn", "required for the postgres driver (or set HOOKD_STORAGE_DSN)")
		}
	default:
		bad("storage.driver", "unknown driver %q (want sqlite or postgres)", c.Storage.Driver)
	}
	tokens := c.Admin.Tokens[:0]
	for _, t := range c.Admin.Tokens {
		if t = strings.TrimSpace(t); t == "" {
			continue
		}
		if len(t) < 16 {
			bad("admin.tokens", "a token is shorter than 16 characters")
		}
		if !slices.Contains(tokens, t) {
			tokens = append(tokens, t)
		}
	}
	c.Admin.Tokens = tokens
	if ttl := c.Admin.SessionTTL.D(); ttl < time.Minute || ttl > 720*time.Hour {
		bad("admin.session_ttl", "must be between 1m and 720h, got %s", ttl)
	}
	keys := c.Secrets.MasterKeys[:0]
	for _, k := range c.Secrets.MasterKeys {
		if k = strings.TrimSpace(k); k != "" {
			keys = append(keys, k)
		}
	}
	c.Secrets.MasterKeys = keys
	if len(keys) > 0 {
		if _, err := secret.ParseKeyring(keys); err != nil {
			bad("secrets.master_keys", "%s", strings.TrimPrefix(err.Error(), "secret: "))
		}
	}
	if _, err := egress.NewGuard(nil, c.Egress.AllowHTTPHosts); err != nil {
		errs = append(errs, err) // it names egress.allow_http_hosts[i]
	}
	if c.Egress.Proxy != "" {
		if _, err := egress.ParseProxy(c.Egress.Proxy); err != nil {
			bad("egress.proxy", "%s", err)
		}
	}
	if c.OAuthIssuer.FailureBurst < 1 || c.OAuthIssuer.FailureBurst > 1000 {
		bad("oauth_issuer.failure_burst", "must be between 1 and 1000")
	}
	if c.OAuthIssuer.MaxAddresses < 1 || c.OAuthIssuer.MaxAddresses > 10_000_000 {
		bad("oauth_issuer.max_addresses", "must be between 1 and 10000000")
	}
	if c.Delivery.MemoryQueue < 0 {
		bad("delivery.memory_queue", "must not be negative")
	}
	if c.Delivery.MemoryQueueBytes < 0 {
		bad("delivery.memory_queue_bytes", "must not be negative")
	}
	if c.Delivery.DisableAfter != nil && *c.Delivery.DisableAfter < 0 {
		bad("delivery.disable_after", "must not be negative")
	}
	if c.Metrics.Listen != "" {
		if _, _, err := net.SplitHostPort(c.Metrics.Listen); err != nil {
			bad("metrics.listen", "invalid address %q (want host:port or :port)", c.Metrics.Listen)
		} else if c.Metrics.Listen == c.Listen {
			bad("metrics.listen", "is the main listen address; leave it empty to serve /metrics there")
		}
	}
	for i, cidr := range c.Egress.AllowPrivate {
		if _, _, err := net.ParseCIDR(cidr); err != nil {
			bad(fmt.Sprintf("egress.allow_private[%d]", i), "invalid CIDR %q", cidr)
		}
	}
	s := c.Server
	if s.AckDeadline.D() <= 0 || s.AckDeadline.D() > time.Minute {
		bad("server.ack_deadline", "must be between 0 and 1m, got %s", s.AckDeadline.D())
	}
	if s.MaxInFlight < 1 {
		bad("server.max_in_flight", "must be at least 1")
	}
	if s.AdminMaxInFlight < 1 {
		bad("server.admin_max_in_flight", "must be at least 1")
	}
	if s.BodyTimeout.D() < 0 {
		bad("server.body_timeout", "must not be negative, got %s", s.BodyTimeout.D())
	}
	if s.MaxHeaderBytes < 1024 {
		bad("server.max_header_bytes", "must be at least 1KiB")
	}
	if s.MaxJSONDepth < 1 || s.MaxJSONDepth > jsonlimit.MaxDepth {
		bad("server.max_json_depth", "must be between 1 and %d, got %d", jsonlimit.MaxDepth, s.MaxJSONDepth)
	}
	if s.MaxBodyMemory < 1<<20 {
		bad("server.max_body_memory", "must be at least 1MiB, got %s", s.MaxBodyMemory.text())
	}
	if s.MaxBodyMemoryPerAddress < 64<<10 || s.MaxBodyMemoryPerAddress > s.MaxBodyMemory {
		bad("server.max_body_memory_per_address", "must be between 64KiB and server.max_body_memory (%s), got %s", s.MaxBodyMemory.text(), s.MaxBodyMemoryPerAddress.text())
	}
	c.validateTLS(bad)
	switch c.Log.Level {
	case "debug", "info", "warn", "error":
	default:
		bad("log.level", "unknown level %q (want debug, info, warn or error)", c.Log.Level)
	}
	switch c.Log.Format {
	case "text", "json":
	default:
		bad("log.format", "unknown format %q (want text or json)", c.Log.Format)
	}
	c.validateDelivery(bad)
	c.validateLimits(bad)
	c.validateTracing(bad)
	c.validateAlerts(bad)
	c.validateTransformTimeout(bad)
	seen := map[string]bool{}
	for i, src := range c.Sources {
		f := fmt.Sprintf("sources[%d]", i)
		if src.Name != "" {
			f = fmt.Sprintf("sources[%d] (%s)", i, src.Name)
		}
		if !sourceName.MatchString(src.Name) {
			bad(f+".name", "invalid name %q (letters, digits, '-', '_' and '.', at most 64)", src.Name)
		}
		if seen[src.Name] {
			bad(f+".name", "duplicate source name %q", src.Name)
		}
		seen[src.Name] = true
		if len(src.Verify) > MaxVerifyMethods {
			bad(f+".verify", "%d methods, more than %d", len(src.Verify), MaxVerifyMethods)
		}
		for j, v := range src.Verify {
			if v.Type == "" {
				bad(fmt.Sprintf("%s.verify[%d].type", f, j), "required")
			}
		}
		for field, sel := range map[string]string{"id": src.Event.ID, "type": src.Event.Type, "timestamp": src.Event.Timestamp, "key": src.Event.Key} {
			if sel == "" {
				continue
			}
			if err := ValidSelector(sel); err != nil {
				bad(f+".event."+field, "%v", err)
			}
		}
		if src.Event.RequireID && src.Event.ID == "" {
			bad(f+".event.require_id", "needs event.id to say where the id is")
		}
		if src.MaxBody <= 0 || src.MaxBody > 256<<20 {
			bad(f+".max_body", "must be between 1 byte and 256MiB")
		} else if src.MaxBody > s.MaxBodyMemoryPerAddress && s.MaxBodyMemoryPerAddress > 0 {
			bad(f+".max_body", "%s is more than server.max_body_memory_per_address (%s): such a body could never be received; raise server.max_body_memory_per_address (and server.max_body_memory)", src.MaxBody.text(), s.MaxBodyMemoryPerAddress.text())
		}
		if src.DedupeWindow != nil && src.DedupeWindow.D() < 0 {
			bad(f+".dedupe_window", "must not be negative")
		}
		if st := src.Response.Status; st < 200 || st > 299 {
			bad(f+".response.status", "must be a 2xx status, got %d", st)
		}
		if src.RateLimit != nil && src.Burst < 0 {
			bad(f+".burst", "must not be negative")
		}
		if src.Handshake != nil {
			src.Handshake.validate(f+".handshake", len(src.Verify) > 0, bad)
		}
		if err := ValidTransform(src.Transform); err != nil {
			bad(f+".transform", "%v", err)
		}
		if r := c.Retention.Events; r != nil && *r > 0 && src.DedupeWindow != nil && src.DedupeWindow.D() > r.D() {
			bad(f+".dedupe_window", "%s is longer than retention.events (%s): a duplicate arriving after its event was deleted would be stored again; lengthen retention.events or shorten the window", src.DedupeWindow.D(), r.D())
		}
	}
	if r := c.Retention.Events; r != nil && *r < 0 {
		bad("retention.events", "must not be negative (0 keeps every event)")
	}
	if c.Retention.Interval.D() < time.Second {
		bad("retention.interval", "must be at least 1s, got %s", c.Retention.Interval.D())
	}
	if c.Cluster.Lease.D() < time.Second {
		bad("cluster.lease", "must be at least 1s, got %s", c.Cluster.Lease.D())
	}
	if c.Cluster.Reconcile.D() <= 0 {
		bad("cluster.reconcile", "must be a positive duration, got %s", c.Cluster.Reconcile.D())
	}
	return errors.Join(errs...)
}

// validateTLS checks server.tls; the files are read at Open.
func (c *Config) validateTLS(bad func(field, format string, args ...any)) {
	t := c.Server.TLS
	if t == nil {
		return
	}
	files := t.CertFile != "" || t.KeyFile != ""
	switch {
	case files && t.ACME != nil:
		bad("server.tls", "cert_file and key_file, or acme: not both")
	case t.ACME == nil && t.CertFile == "":
		bad("server.tls.cert_file", "required (or server.tls.acme)")
	case t.ACME == nil && t.KeyFile == "":
		bad("server.tls.key_file", "required with server.tls.cert_file")
	}
	a := t.ACME
	if a == nil {
		return
	}
	if len(a.Domains) == 0 {
		bad("server.tls.acme.domains", "at least one domain is required")
	}
	for i, d := range a.Domains {
		if !acmeDomain.MatchString(d) || !strings.Contains(d, ".") || net.ParseIP(d) != nil {
			bad(fmt.Sprintf("server.tls.acme.domains[%d]", i), "%q is not a DNS name (letters, digits, '-' and dots, like hooks.example.com)", d)
		}
	}
	if u, err := url.Parse(a.Directory); err != nil || u.Scheme != "https" || u.Host == "" || u.User != nil {
		bad("server.tls.acme.directory", "want an https URL without credentials, got %q", a.Directory)
	}
	if a.Email != "" && (!strings.Contains(a.Email, "@") || strings.ContainsAny(a.Email, " \t\r\n<>,")) {
		bad("server.tls.acme.email", "%q is not an email address", a.Email)
	}
}

// StorageDir is Storage, or <dataDir>/acme when it is empty.
func (a *ACME) StorageDir(dataDir string) string {
	if a.Storage != "" {
		return a.Storage
	}
	return filepath.Join(dataDir, "acme")
}

var acmeDomain = regexp.MustCompile(`^(?i)[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*$`)

// validateLimits checks the caps, and the file's definitions against them.
func (c *Config) validateLimits(bad func(field, format string, args ...any)) {
	l := c.Limits
	for _, x := range []struct {
		key       string
		cap, have int
		what      string
	}{
		{"limits.max_sources", l.MaxSources, len(c.Sources), "sources"},
		{"limits.max_destinations", l.MaxDestinations, len(c.Destinations), "destinations"},
		{"limits.max_subscriptions", l.MaxSubscriptions, len(c.Subscriptions), "subscriptions"},
	} {
		switch {
		case x.cap < 1:
			bad(x.key, "must be at least 1")
		case x.have > x.cap:
			bad(x.what, "%d defined, more than %s (%d); raise the limit or define fewer", x.have, x.key, x.cap)
		}
	}
}

// ValidSelector checks a metadata selector's syntax.
func ValidSelector(sel string) error {
	if !utf8.ValidString(sel) {
		return fmt.Errorf("invalid selector %q: not valid UTF-8", sel)
	}
	kind, arg, ok := strings.Cut(sel, ":")
	if !ok || arg == "" {
		return fmt.Errorf("invalid selector %q (want header:Name, json:path.to.field, query:name or form:name)", sel)
	}
	switch kind {
	case "header", "query", "form":
		return nil
	case "json":
		for _, seg := range strings.Split(arg, ".") {
			if seg == "" {
				return fmt.Errorf("invalid selector %q: empty path segment", sel)
			}
		}
		return nil
	}
	return fmt.Errorf("invalid selector %q: unknown kind %q (want header, json, query or form)", sel, kind)
}

var unmarshalerType = reflect.TypeOf((*yaml.Unmarshaler)(nil)).Elem()

// yamlFields adds the YAML keys of struct type t to fields, with the keys
// of its ",inline" fields.
func yamlFields(t reflect.Type, fields map[string]reflect.Type) {
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		name, opts, _ := strings.Cut(f.Tag.Get("yaml"), ",")
		if name == "" && strings.Contains(","+opts+",", ",inline,") {
			ft := f.Type
			for ft.Kind() == reflect.Pointer {
				ft = ft.Elem()
			}
			if ft.Kind() == reflect.Struct {
				yamlFields(ft, fields)
			}
			continue
		}
		if name != "" && name != "-" {
			fields[name] = f.Type
		}
	}
}

// ParseSource reads one source's definition, in JSON or YAML with the
// keys of the configuration file (no ${ENV} expansion: it comes from the
// admin API), applies the defaults and validates it against the rest of
// c (its retention). Errors name the field without the sources[i] prefix.
func (c *Config) ParseSource(spec []byte) (Source, error) {
	var root yaml.Node
	if err := yaml.Unmarshal(spec, &root); err != nil {
		return Source{}, err
	}
	if root.Kind == yaml.DocumentNode && len(root.Content) == 1 {
		root = *root.Content[0]
	}
	if root.Kind != yaml.MappingNode {
		return Source{}, fmt.Errorf("a source is an object")
	}
	var src Source
	// A definition from the API has no lines worth naming.
	if err := checkKeys(&root, reflect.TypeOf(src), "", false); err != nil {
		return Source{}, err
	}
	if err := root.Decode(&src); err != nil {
		return Source{}, yamlError(err)
	}
	tmp := &Config{Retention: c.Retention, Server: c.Server, Sources: []Source{src}}
	tmp.applyDefaults()
	if err := tmp.Validate(); err != nil {
		prefix := "sources[0]."
		if src.Name != "" {
			prefix = fmt.Sprintf("sources[0] (%s).", src.Name)
		}
		return Source{}, errors.New(strings.ReplaceAll(err.Error(), prefix, ""))
	}
	return tmp.Sources[0], nil
}
