package config

import (
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"
)

// unsetEnv makes sure name is not set for the duration of the test (and is
// restored afterwards). It cannot be used in parallel tests.
func unsetEnv(t *testing.T, name string) {
	t.Helper()
	t.Setenv(name, "")
	os.Unsetenv(name)
}

func TestParseUnknownKeys(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		yaml string
		key  string
	}{
		{"TopLevel", "lisen: \":8080\"\n", "lisen"},
		{"Storage", "storage: {drivr: sqlite}\n", "drivr"},
		{"Server", "server:\n  ack_dedline: 1s\n", "ack_dedline"},
		{"Admin", "admin: {token: [x]}\n", "token"},
		{"SourceLevel", "sources: [{name: a, evnt: {}}]\n", "evnt"},
		{"SourceEvent", "sources: [{name: a, event: {idd: json:id}}]\n", "idd"},
		{"SourceResponse", "sources:\n  - name: a\n    response: {stauts: 201}\n", "stauts"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c, err := Parse([]byte(tt.yaml))
			if err == nil {
				t.Fatalf("Parse(%q) = %+v, nil; want an error naming %q", tt.yaml, c, tt.key)
			}
			if !strings.Contains(err.Error(), tt.key) {
				t.Errorf("Parse(%q) error = %q; want it to name the key %q", tt.yaml, err, tt.key)
			}
		})
	}
}

func TestParseEmpty(t *testing.T) {
	t.Parallel()
	for _, raw := range []string{"", "\n", "# only a comment\n"} {
		c, err := Parse([]byte(raw))
		if err != nil {
			t.Fatalf("Parse(%q) error = %v; want nil", raw, err)
		}
		if c.Listen != DefaultListen || c.Storage.Driver != "sqlite" || c.Storage.Path != DefaultDataDir {
			t.Errorf("Parse(%q) = listen %q driver %q path %q; want the defaults", raw, c.Listen, c.Storage.Driver, c.Storage.Path)
		}
		if len(c.Sources) != 0 || c.Demo {
			t.Errorf("Parse(%q): got %d sources, demo %v; want none, false", raw, len(c.Sources), c.Demo)
		}
	}
}

func TestParseExpandEnv(t *testing.T) {
	t.Setenv("HOOKD_T_LISTEN", "127.0.0.1:9000")
	t.Setenv("HOOKD_T_PW", "s3cret")
	t.Setenv("HOOKD_T_TOKEN", "0123456789abcdefXYZ")
	c, err := Parse([]byte(`
listen: ${HOOKD_T_LISTEN}
storage:
  dsn: "postgres://u:${HOOKD_T_PW}@db/hookd?x=$$1&y=$${HOOKD_T_PW}"
admin:
  tokens: ["${HOOKD_T_TOKEN}", "${HOOKD_T_TOKEN}-2"]
`))
	if err != nil {
		t.Fatal(err)
	}
	if got, want := c.Listen, "127.0.0.1:9000"; got != want {
		t.Errorf("listen: got %q, want %q", got, want)
	}
	if got, want := c.Storage.DSN, "postgres://u:s3cret@db/hookd?x=$1&y=${HOOKD_T_PW}"; got != want {
		t.Errorf("storage.dsn: got %q, want %q", got, want)
	}
	if got, want := c.Admin.Tokens, []string{"0123456789abcdefXYZ", "0123456789abcdefXYZ-2"}; !reflect.DeepEqual(got, want) {
		t.Errorf("admin.tokens: got %q, want %q", got, want)
	}
	if len(c.UnsetEnv) != 0 {
		t.Errorf("UnsetEnv: got %q, want none", c.UnsetEnv)
	}
}

// A value that comes from the environment is a plain string: it never
// becomes a number, a boolean, a list or a mapping, and it cannot add keys.
func TestParseEnvValueStaysString(t *testing.T) {
	values := []struct{ name, v string }{
		{"Mapping", "a: b"},
		{"FlowSequence", "[x]"},
		{"FlowMapping", "{event: {id: json:x}}"},
		{"Integer", "123"},
		{"Float", "1.50"},
		{"Bool", "true"},
		{"Null", "null"},
		{"Tilde", "~"},
		{"Comment", "# not a comment"},
		{"BlockSequence", "- a\n- b"},
		{"Newlines", "x\nevent:\n  id: json:injected"},
		{"Anchor", "&a x"},
		{"Alias", "*a"},
		{"Quotes", `"quoted" 'single'`},
		{"Empty", ""},
	}
	for _, tt := range values {
		t.Run(tt.name, func(t *testing.T) {
			t.Setenv("HOOKD_T_VAL", tt.v)
			// Plain, double-quoted and single-quoted scalars all expand, and
			// all stay strings.
			c, err := Parse([]byte(`
storage:
  dsn: ${HOOKD_T_VAL}
  path: "${HOOKD_T_VAL}"
sources:
  - name: ${HOOKD_T_VAL}
    event:
      type: '${HOOKD_T_VAL}'
`))
			if err != nil {
				t.Fatalf("Parse with HOOKD_T_VAL=%q: error %v; want nil", tt.v, err)
			}
			if got := c.Storage.DSN; got != tt.v {
				t.Errorf("storage.dsn (plain): got %q, want %q", got, tt.v)
			}
			if got := c.Storage.Path; got != tt.v && !(tt.v == "" && got == DefaultDataDir) {
				t.Errorf("storage.path (double-quoted): got %q, want %q", got, tt.v)
			}
			if len(c.Sources) != 1 {
				t.Fatalf("sources: got %d, want 1", len(c.Sources))
			}
			s := c.Sources[0]
			if s.Name != tt.v {
				t.Errorf("sources[0].name: got %q, want %q", s.Name, tt.v)
			}
			if s.Event.Type != tt.v {
				t.Errorf("sources[0].event.type (single-quoted): got %q, want %q", s.Event.Type, tt.v)
			}
			if s.Event.ID != "" {
				t.Errorf("sources[0].event.id: got %q, want \"\" (structure injected from the environment)", s.Event.ID)
			}
		})
	}

	t.Run("ListFieldGetsNoList", func(t *testing.T) {
		t.Setenv("HOOKD_T_VAL", "[aaaaaaaaaaaaaaaaaaaa, bbbbbbbbbbbbbbbbbbbb]")
		c, err := Parse([]byte("admin:\n  tokens: ${HOOKD_T_VAL}\n"))
		if err == nil {
			t.Fatalf("Parse: got tokens %q, nil error; want an error (a string is not a list)", c.Admin.Tokens)
		}
	})
}

// SPEC §4: "${VAR} expansion inside the file for anything else": a number
// or a boolean field can be set from the environment too.
func TestParseEnvInNonStringFields(t *testing.T) {
	t.Setenv("HOOKD_T_N", "100")
	t.Setenv("HOOKD_T_B", "true")
	t.Setenv("HOOKD_T_D", "90s")
	c, err := Parse([]byte(`
server:
  max_in_flight: ${HOOKD_T_N}
  ack_deadline: ${HOOKD_T_D}
sources:
  - name: a
    event:
      id: json:id
      require_id: ${HOOKD_T_B}
    max_body: ${HOOKD_T_N}KiB
`))
	if err != nil {
		t.Fatalf("Parse: error %v; want nil", err)
	}
	if got, want := c.Server.MaxInFlight, 100; got != want {
		t.Errorf("server.max_in_flight: got %d, want %d", got, want)
	}
	if got, want := c.Server.AckDeadline.D(), 90*time.Second; got != want {
		t.Errorf("server.ack_deadline: got %s, want %s", got, want)
	}
	if !c.Sources[0].Event.RequireID {
		t.Errorf("event.require_id: got false, want true")
	}
	if got, want := c.Sources[0].MaxBody, Size(100<<10); got != want {
		t.Errorf("max_body: got %d, want %d", got, want)
	}
}

func TestParseUnsetEnv(t *testing.T) {
	unsetEnv(t, "HOOKD_T_UNSET_A")
	unsetEnv(t, "HOOKD_T_UNSET_B")
	t.Setenv("HOOKD_T_SET", "x")
	c, err := Parse([]byte(`
storage:
  dsn: "pre-${HOOKD_T_UNSET_A}-post"
  path: ${HOOKD_T_SET}
admin:
  tokens: ["${HOOKD_T_UNSET_B}"]
`))
	if err != nil {
		t.Fatal(err)
	}
	if got, want := c.Storage.DSN, "pre--post"; got != want {
		t.Errorf("storage.dsn: got %q, want %q", got, want)
	}
	if got, want := c.Admin.Tokens, []string{""}; !reflect.DeepEqual(got, want) {
		t.Errorf("admin.tokens: got %q, want %q", got, want)
	}
	for _, name := range []string{"HOOKD_T_UNSET_A", "HOOKD_T_UNSET_B"} {
		if !slices.Contains(c.UnsetEnv, name) {
			t.Errorf("UnsetEnv: got %q, want it to contain %s", c.UnsetEnv, name)
		}
	}
	if slices.Contains(c.UnsetEnv, "HOOKD_T_SET") {
		t.Errorf("UnsetEnv: got %q, want no HOOKD_T_SET (it is set)", c.UnsetEnv)
	}
	// The empty token expanded from the unset variable is dropped by Validate.
	if err := c.Validate(); err != nil {
		t.Fatalf("Validate: %v", err)
	}
	if len(c.Admin.Tokens) != 0 {
		t.Errorf("admin.tokens after Validate: got %q, want none", c.Admin.Tokens)
	}
}

func TestExpandEnv(t *testing.T) {
	t.Parallel()
	env := map[string]string{"A": "1", "B_2": "two", "EMPTY": ""}
	lookup := func(k string) (string, bool) { v, ok := env[k]; return v, ok }
	tests := []struct {
		in, want string
		missing  []string
	}{
		{"plain", "plain", nil},
		{"${A}", "1", nil},
		{"x${A}y${B_2}z", "x1ytwoz", nil},
		{"$$", "$", nil},
		{"$${A}", "${A}", nil},
		{"$$$${A}", "$${A}", nil},
		{"$$${A}", "$1", nil},
		{"$A", "$A", nil},
		{"${EMPTY}", "", nil},
		{"${NOPE}", "", []string{"NOPE"}},
		{"${1BAD}", "${1BAD}", nil},
		{"${A", "${A", nil},
		{"$", "$", nil},
	}
	for _, tt := range tests {
		var missing []string
		if got := ExpandEnv(tt.in, lookup, &missing); got != tt.want {
			t.Errorf("ExpandEnv(%q): got %q, want %q", tt.in, got, tt.want)
		}
		if !reflect.DeepEqual(missing, tt.missing) {
			t.Errorf("ExpandEnv(%q) missing: got %q, want %q", tt.in, missing, tt.missing)
		}
	}
}

func TestApplyEnv(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		env   map[string]string
		check func(t *testing.T, c *Config)
	}{
		{"Nothing", nil, func(t *testing.T, c *Config) {
			if c.Listen != ":8080" || c.Storage.Path != "./file-data" || c.Storage.DSN != "" || !reflect.DeepEqual(c.Admin.Tokens, []string{"file-token-0123456789"}) {
				t.Errorf("got %+v; want the file's values unchanged", c)
			}
		}},
		{"Listen", map[string]string{"HOOKD_LISTEN": "127.0.0.1:1234"}, func(t *testing.T, c *Config) {
			if got, want := c.Listen, "127.0.0.1:1234"; got != want {
				t.Errorf("listen: got %q, want %q", got, want)
			}
		}},
		{"Data", map[string]string{"HOOKD_DATA": "/var/lib/hookd"}, func(t *testing.T, c *Config) {
			if got, want := c.Storage.Path, "/var/lib/hookd"; got != want {
				t.Errorf("storage.path: got %q, want %q", got, want)
			}
		}},
		{"StorageDSN", map[string]string{"HOOKD_STORAGE_DSN": "postgres://db/x"}, func(t *testing.T, c *Config) {
			if got, want := c.Storage.DSN, "postgres://db/x"; got != want {
				t.Errorf("storage.dsn: got %q, want %q", got, want)
			}
		}},
		{"StorageDriver", map[string]string{"HOOKD_STORAGE_DRIVER": "postgres"}, func(t *testing.T, c *Config) {
			if got, want := c.Storage.Driver, "postgres"; got != want {
				t.Errorf("storage.driver: got %q, want %q", got, want)
			}
		}},
		{"AdminTokenAppended", map[string]string{"HOOKD_ADMIN_TOKEN": "env-token-0123456789"}, func(t *testing.T, c *Config) {
			if got, want := c.Admin.Tokens, []string{"file-token-0123456789", "env-token-0123456789"}; !reflect.DeepEqual(got, want) {
				t.Errorf("admin.tokens: got %q, want %q", got, want)
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c, err := Parse([]byte("storage: {path: ./file-data}\nadmin: {tokens: [file-token-0123456789]}\n"))
			if err != nil {
				t.Fatal(err)
			}
			c.ApplyEnv(func(k string) string { return tt.env[k] })
			tt.check(t, c)
		})
	}
}

func TestLoad(t *testing.T) {
	t.Run("DefaultWithEnv", func(t *testing.T) {
		t.Setenv("HOOKD_LISTEN", "127.0.0.1:0")
		t.Setenv("HOOKD_DATA", "/tmp/hookd-test-data")
		t.Setenv("HOOKD_ADMIN_TOKEN", "env-token-0123456789")
		unsetEnv(t, "HOOKD_STORAGE_DSN")
		unsetEnv(t, "HOOKD_STORAGE_DRIVER")
		c, err := Load("")
		if err != nil {
			t.Fatal(err)
		}
		if !c.Demo || c.Listen != "127.0.0.1:0" || c.Storage.Path != "/tmp/hookd-test-data" {
			t.Errorf("got demo %v listen %q path %q; want true, 127.0.0.1:0, /tmp/hookd-test-data", c.Demo, c.Listen, c.Storage.Path)
		}
		if got, want := c.Admin.Tokens, []string{"env-token-0123456789"}; !reflect.DeepEqual(got, want) {
			t.Errorf("admin.tokens: got %q, want %q", got, want)
		}
	})
	t.Run("FileErrorNamesFile", func(t *testing.T) {
		for _, k := range []string{"HOOKD_LISTEN", "HOOKD_DATA", "HOOKD_ADMIN_TOKEN", "HOOKD_STORAGE_DSN", "HOOKD_STORAGE_DRIVER"} {
			unsetEnv(t, k)
		}
		path := filepath.Join(t.TempDir(), "hookd.yaml")
		if err := os.WriteFile(path, []byte("sources: [{name: a, max_body: 1TiB}]\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		_, err := Load(path)
		if err == nil || !strings.Contains(err.Error(), path) {
			t.Errorf("Load: got error %v; want one naming %s", err, path)
		}
		path2 := filepath.Join(t.TempDir(), "hookd.yaml")
		if err := os.WriteFile(path2, []byte("listen: nope\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		_, err = Load(path2)
		if err == nil || !strings.Contains(err.Error(), path2) || !strings.Contains(err.Error(), "listen") {
			t.Errorf("Load: got error %v; want one naming %s and listen", err, path2)
		}
		if _, err := Load(filepath.Join(t.TempDir(), "missing.yaml")); err == nil {
			t.Errorf("Load(missing file): got nil error, want one")
		}
	})
}

func TestDefault(t *testing.T) {
	t.Parallel()
	c := Default()
	if !c.Demo {
		t.Errorf("Demo: got false, want true")
	}
	if got, want := c.Listen, ":8080"; got != want {
		t.Errorf("listen: got %q, want %q", got, want)
	}
	if got, want := c.Admin.SessionTTL.D(), 12*time.Hour; got != want {
		t.Errorf("admin.session_ttl: got %s, want %s", got, want)
	}
	if c.Storage.Driver != "sqlite" || c.Storage.Path != "./hookd-data" {
		t.Errorf("storage: got %+v, want sqlite in ./hookd-data", c.Storage)
	}
	if len(c.Sources) != 1 {
		t.Fatalf("sources: got %d, want 1", len(c.Sources))
	}
	s := c.Sources[0]
	if s.Name != DemoSource || s.Event.ID != "json:id" || s.Event.Type != "json:type" {
		t.Errorf("demo source: got name %q id %q type %q; want demo, json:id, json:type", s.Name, s.Event.ID, s.Event.Type)
	}
	if s.MaxBody != 1<<20 || s.DedupeWindow == nil || s.DedupeWindow.D() != 168*time.Hour || s.Response.Status != 200 {
		t.Errorf("demo source defaults: got max_body %d dedupe %v status %d; want 1MiB, 168h, 200", s.MaxBody, s.DedupeWindow, s.Response.Status)
	}
	if got, want := c.Server.AckDeadline.D(), 2*time.Second; got != want {
		t.Errorf("server.ack_deadline: got %s, want %s", got, want)
	}
	if got, want := c.Server.MaxBodyMemory, Size(256<<20); got != want {
		t.Errorf("server.max_body_memory: got %d, want %d", got, want)
	}
	if got, want := c.Server.MaxBodyMemoryPerAddress, Size(64<<20); got != want {
		t.Errorf("server.max_body_memory_per_address: got %d, want %d", got, want)
	}
	if c.Cluster.Lease.D() != 15*time.Second || c.Cluster.Reconcile.D() != 10*time.Second {
		t.Errorf("cluster: got lease %s reconcile %s, want 15s and 10s", c.Cluster.Lease.D(), c.Cluster.Reconcile.D())
	}
	if err := c.Validate(); err != nil {
		t.Errorf("Validate: got %v, want nil", err)
	}
}

// validConfig parses a configuration that passes Validate.
func validConfig(t *testing.T) *Config {
	t.Helper()
	c, err := Parse([]byte(`
listen: "127.0.0.1:8080"
admin: {tokens: ["0123456789abcdef"]}
egress: {allow_private: ["127.0.0.0/8", "10.0.0.0/8"]}
sources:
  - name: a
    verify: [{type: api_key, keys: [k]}]
    event: {id: json:payload.id, type: header:X-Type, timestamp: json:ts, key: query:k, require_id: true}
    rate_limit: 10/s
  - name: b.c-d_e
`))
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Validate(); err != nil {
		t.Fatalf("Validate(valid config): %v", err)
	}
	return c
}

func TestValidate(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		mutate func(c *Config)
		field  string
	}{
		{"ListenNoPort", func(c *Config) { c.Listen = "8080" }, "listen"},
		{"ListenEmpty", func(c *Config) { c.Listen = "" }, "listen"},
		{"UnknownDriver", func(c *Config) { c.Storage.Driver = "mysql" }, "storage.driver"},
		{"SQLiteWithoutPath", func(c *Config) { c.Storage.Path = "" }, "storage.path"},
		{"PostgresWithoutDSN", func(c *Config) { c.Storage.Driver = "postgres" }, "storage.dsn"},
		{"ShortAdminToken", func(c *Config) { c.Admin.Tokens = append(c.Admin.Tokens, "short") }, "admin.tokens"},
		{"BadCIDR", func(c *Config) { c.Egress.AllowPrivate[1] = "10.0.0.0/33" }, "egress.allow_private[1]"},
		{"CIDRWithoutMask", func(c *Config) { c.Egress.AllowPrivate[0] = "127.0.0.1" }, "egress.allow_private[0]"},
		{"ProxyScheme", func(c *Config) { c.Egress.Proxy = "socks5://proxy.internal:1080" }, "egress.proxy"},
		{"ProxyNoScheme", func(c *Config) { c.Egress.Proxy = "proxy.internal:3128" }, "egress.proxy"},
		{"ProxyPath", func(c *Config) { c.Egress.Proxy = "http://proxy.internal:3128/x" }, "egress.proxy"},
		{"SessionTTLShort", func(c *Config) { c.Admin.SessionTTL = Duration(30 * time.Second) }, "admin.session_ttl"},
		{"SessionTTLLong", func(c *Config) { c.Admin.SessionTTL = Duration(721 * time.Hour) }, "admin.session_ttl"},
		{"AckDeadlineZero", func(c *Config) { c.Server.AckDeadline = 0 }, "server.ack_deadline"},
		{"AckDeadlineTooLong", func(c *Config) { c.Server.AckDeadline = Duration(2 * time.Minute) }, "server.ack_deadline"},
		{"MaxInFlightZero", func(c *Config) { c.Server.MaxInFlight = 0 }, "server.max_in_flight"},
		{"MaxHeaderBytesSmall", func(c *Config) { c.Server.MaxHeaderBytes = 100 }, "server.max_header_bytes"},
		{"MaxJSONDepthNegative", func(c *Config) { c.Server.MaxJSONDepth = -1 }, "server.max_json_depth"},
		{"MaxJSONDepthTooDeep", func(c *Config) { c.Server.MaxJSONDepth = 10001 }, "server.max_json_depth"},
		{"LogLevel", func(c *Config) { c.Log.Level = "verbose" }, "log.level"},
		{"LogFormat", func(c *Config) { c.Log.Format = "xml" }, "log.format"},
		{"SourceNameSpace", func(c *Config) { c.Sources[0].Name = "a b" }, "sources[0] (a b).name"},
		{"SourceNameSlash", func(c *Config) { c.Sources[0].Name = "a/b" }, "sources[0] (a/b).name"},
		{"SourceNameEmpty", func(c *Config) { c.Sources[0].Name = "" }, "sources[0].name"},
		{"SourceNameTooLong", func(c *Config) { c.Sources[0].Name = strings.Repeat("x", 65) }, ".name"},
		{"DuplicateSourceName", func(c *Config) { c.Sources[1].Name = "a" }, "sources[1] (a).name"},
		{"VerifyWithoutType", func(c *Config) { c.Sources[0].Verify[0].Type = "" }, "sources[0] (a).verify[0].type"},
		{"BadSelectorID", func(c *Config) { c.Sources[0].Event.ID = "json:" }, "sources[0] (a).event.id"},
		{"BadSelectorType", func(c *Config) { c.Sources[0].Event.Type = "xml:a" }, "sources[0] (a).event.type"},
		{"BadSelectorTimestamp", func(c *Config) { c.Sources[0].Event.Timestamp = "json:a..b" }, "sources[0] (a).event.timestamp"},
		{"BadSelectorKey", func(c *Config) { c.Sources[0].Event.Key = "header" }, "sources[0] (a).event.key"},
		{"RequireIDWithoutID", func(c *Config) { c.Sources[0].Event.ID = "" }, "sources[0] (a).event.require_id"},
		{"MaxBodyZero", func(c *Config) { c.Sources[0].MaxBody = 0 }, "sources[0] (a).max_body"},
		{"MaxBodyNegative", func(c *Config) { c.Sources[0].MaxBody = -1 }, "sources[0] (a).max_body"},
		{"MaxBodyTooBig", func(c *Config) { c.Sources[0].MaxBody = 256<<20 + 1 }, "sources[0] (a).max_body"},
		{"MaxBodyBeyondAddressMemory", func(c *Config) { c.Sources[0].MaxBody = 65 << 20 }, "sources[0] (a).max_body: 65MiB is more than server.max_body_memory_per_address (64MiB)"},
		{"MaxBodyMemoryTooSmall", func(c *Config) { c.Server.MaxBodyMemory = 1000 }, "server.max_body_memory"},
		{"MaxBodyMemoryPerAddressTooSmall", func(c *Config) { c.Server.MaxBodyMemoryPerAddress = 1000 }, "server.max_body_memory_per_address"},
		{"MaxBodyMemoryPerAddressAboveWhole", func(c *Config) { c.Server.MaxBodyMemoryPerAddress = c.Server.MaxBodyMemory + 1 }, "server.max_body_memory_per_address"},
		{"DedupeWindowNegative", func(c *Config) { d := Duration(-time.Second); c.Sources[1].DedupeWindow = &d }, "sources[1] (b.c-d_e).dedupe_window"},
		{"ResponseStatus302", func(c *Config) { c.Sources[0].Response.Status = 302 }, "sources[0] (a).response.status"},
		{"ResponseStatus199", func(c *Config) { c.Sources[0].Response.Status = 199 }, "sources[0] (a).response.status"},
		{"BurstNegative", func(c *Config) { c.Sources[0].Burst = -1 }, "sources[0] (a).burst"},
		{"SourcesOverCap", func(c *Config) { c.Limits.MaxSources = 1 }, "sources"},
		{"MaxSourcesNegative", func(c *Config) { c.Limits.MaxSources = -1 }, "limits.max_sources"},
		{"MaxDestinationsNegative", func(c *Config) { c.Limits.MaxDestinations = -1 }, "limits.max_destinations"},
		{"MaxSubscriptionsNegative", func(c *Config) { c.Limits.MaxSubscriptions = -1 }, "limits.max_subscriptions"},
		{"TooManyVerifyMethods", func(c *Config) {
			for len(c.Sources[0].Verify) <= MaxVerifyMethods {
				c.Sources[0].Verify = append(c.Sources[0].Verify, c.Sources[0].Verify[0])
			}
		}, "sources[0] (a).verify"},
		{"IssuerFailureBurstNegative", func(c *Config) { c.OAuthIssuer.FailureBurst = -1 }, "oauth_issuer.failure_burst"},
		{"IssuerMaxAddressesNegative", func(c *Config) { c.OAuthIssuer.MaxAddresses = -1 }, "oauth_issuer.max_addresses"},
		{"ClusterLeaseShort", func(c *Config) { c.Cluster.Lease = Duration(999 * time.Millisecond) }, "cluster.lease"},
		{"ClusterReconcileNegative", func(c *Config) { c.Cluster.Reconcile = Duration(-time.Second) }, "cluster.reconcile"},
		{"TLSEmpty", func(c *Config) { c.Server.TLS = &TLS{} }, "server.tls.cert_file"},
		{"TLSCertWithoutKey", func(c *Config) { c.Server.TLS = &TLS{CertFile: "c.pem"} }, "server.tls.key_file"},
		{"TLSKeyWithoutCert", func(c *Config) { c.Server.TLS = &TLS{KeyFile: "k.pem"} }, "server.tls.cert_file"},
		{"TLSFilesAndACME", func(c *Config) {
			c.Server.TLS = &TLS{CertFile: "c.pem", KeyFile: "k.pem", ACME: &ACME{Domains: []string{"a.example.com"}, Directory: DefaultACMEDirectory}}
		}, "server.tls"},
		{"ACMENoDomains", func(c *Config) { c.Server.TLS = &TLS{ACME: &ACME{Directory: DefaultACMEDirectory}} }, "server.tls.acme.domains"},
		{"ACMEDomainIP", func(c *Config) {
			c.Server.TLS = &TLS{ACME: &ACME{Domains: []string{"a.example.com", "10.0.0.1"}, Directory: DefaultACMEDirectory}}
		}, "server.tls.acme.domains[1]"},
		{"ACMEDomainWildcard", func(c *Config) {
			c.Server.TLS = &TLS{ACME: &ACME{Domains: []string{"*.example.com"}, Directory: DefaultACMEDirectory}}
		}, "server.tls.acme.domains[0]"},
		{"ACMEDomainOneLabel", func(c *Config) {
			c.Server.TLS = &TLS{ACME: &ACME{Domains: []string{"localhost"}, Directory: DefaultACMEDirectory}}
		}, "server.tls.acme.domains[0]"},
		{"ACMEDirectoryHTTP", func(c *Config) {
			c.Server.TLS = &TLS{ACME: &ACME{Domains: []string{"a.example.com"}, Directory: "http://acme.example.com/dir"}}
		}, "server.tls.acme.directory"},
		{"ACMEDirectoryCredentials", func(c *Config) {
			c.Server.TLS = &TLS{ACME: &ACME{Domains: []string{"a.example.com"}, Directory: "https://u:p@acme.example.com/dir"}}
		}, "server.tls.acme.directory"},
		{"ACMEEmail", func(c *Config) {
			c.Server.TLS = &TLS{ACME: &ACME{Domains: []string{"a.example.com"}, Directory: DefaultACMEDirectory, Email: "ops"}}
		}, "server.tls.acme.email"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c := validConfig(t)
			tt.mutate(c)
			err := c.Validate()
			if err == nil {
				t.Fatalf("Validate: got nil, want an error naming %q", tt.field)
			}
			if !strings.Contains(err.Error(), tt.field+":") {
				t.Errorf("Validate: got %q, want it to name %q", err, tt.field)
			}
		})
	}
}

func TestValidateAccepts(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		mutate func(c *Config)
	}{
		{"Postgres", func(c *Config) { c.Storage.Driver, c.Storage.DSN = "postgres", "postgres://db/x" }},
		{"ListenPortOnly", func(c *Config) { c.Listen = ":0" }},
		{"ListenIPv6", func(c *Config) { c.Listen = "[::1]:8080" }},
		{"BlankAdminTokensDropped", func(c *Config) { c.Admin.Tokens = []string{"", "  ", "0123456789abcdef"} }},
		{"NoAdminTokens", func(c *Config) { c.Admin.Tokens = nil }},
		{"IPv6CIDR", func(c *Config) { c.Egress.AllowPrivate = []string{"fd00::/8"} }},
		{"Status2xx", func(c *Config) { c.Sources[0].Response.Status = 204 }},
		{"MaxBodyLimit", func(c *Config) {
			c.Sources[0].MaxBody = 256 << 20
			c.Server.MaxBodyMemory, c.Server.MaxBodyMemoryPerAddress = 1<<30, 256<<20
		}},
		{"MaxBodyMemoryPerAddressWhole", func(c *Config) { c.Server.MaxBodyMemoryPerAddress = c.Server.MaxBodyMemory }},
		{"DedupeDisabled", func(c *Config) { d := Duration(0); c.Sources[0].DedupeWindow = &d }},
		{"NoSources", func(c *Config) { c.Sources = nil }},
		{"AckDeadlineOneMinute", func(c *Config) { c.Server.AckDeadline = Duration(time.Minute) }},
		{"TLSFiles", func(c *Config) { c.Server.TLS = &TLS{CertFile: "c.pem", KeyFile: "k.pem", ClientCAFile: "ca.pem"} }},
		{"TLSACME", func(c *Config) {
			c.Server.TLS = &TLS{ACME: &ACME{Domains: []string{"hooks.example.com", "Hooks-2.Example.org"}, Email: "ops@example.com", Directory: "https://acme.internal:14000/dir"}}
		}},
		{"ClusterShortest", func(c *Config) {
			c.Cluster.Lease, c.Cluster.Reconcile = Duration(time.Second), Duration(time.Millisecond)
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c := validConfig(t)
			tt.mutate(c)
			if err := c.Validate(); err != nil {
				t.Errorf("Validate: got %v, want nil", err)
			}
		})
	}
}

func TestValidateTrimsAdminTokens(t *testing.T) {
	t.Parallel()
	c := validConfig(t)
	c.Admin.Tokens = []string{"", " 0123456789abcdef ", "   "}
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	if got, want := c.Admin.Tokens, []string{"0123456789abcdef"}; !reflect.DeepEqual(got, want) {
		t.Errorf("admin.tokens: got %q, want %q", got, want)
	}
}

func TestValidSelector(t *testing.T) {
	t.Parallel()
	tests := []struct {
		sel string
		ok  bool
	}{
		{"header:X-Id", true},
		{"query:id", true},
		{"form:MessageStatus", true},
		{"form:", false},
		{"json:id", true},
		{"json:a.b.0.c", true},
		{"json:", false},
		{"json:.a", false},
		{"json:a.", false},
		{"json:a..b", false},
		{"header:", false},
		{"query:", false},
		{"header", false},
		{"", false},
		{"xml:a", false},
		{"JSON:a", false},
		{":a", false},
	}
	for _, tt := range tests {
		err := ValidSelector(tt.sel)
		if (err == nil) != tt.ok {
			t.Errorf("ValidSelector(%q): got %v, want ok=%v", tt.sel, err, tt.ok)
		}
	}
}

func TestParseSize(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in   string
		want Size
		ok   bool
	}{
		{"1MiB", 1 << 20, true},
		{"512KiB", 512 << 10, true},
		{"1048576", 1048576, true},
		{"10MB", 10_000_000, true},
		{"2KB", 2000, true},
		{"1GiB", 1 << 30, true},
		{"3GB", 3_000_000_000, true},
		{"100B", 100, true},
		{"0", 0, true},
		{" 1 MiB ", 1 << 20, true},
		{"", 0, false},
		{"-1", 0, false},
		{"-1KiB", 0, false},
		{"1TiB", 0, false},
		{"abc", 0, false},
		{"1.5MiB", 0, false},
		{"MiB", 0, false},
		{"1mib", 0, false},
		{"1 K", 0, false},
		{"9223372036854775807", 0, false},
		{"8589934592GiB", 0, false},
	}
	for _, tt := range tests {
		t.Run(strings.NewReplacer(" ", "_", "-", "Minus").Replace(tt.in)+"_", func(t *testing.T) {
			t.Parallel()
			got, err := ParseSize(tt.in)
			if tt.ok {
				if err != nil || got != tt.want {
					t.Errorf("ParseSize(%q): got %d, %v; want %d, nil", tt.in, got, err, tt.want)
				}
				return
			}
			if err == nil {
				t.Errorf("ParseSize(%q): got %d, nil; want an error", tt.in, got)
			}
		})
	}
}

// An error should quote what the user wrote, not what is left of it once a
// unit was cut off.
func TestParseSizeErrorQuotesInput(t *testing.T) {
	t.Parallel()
	for _, in := range []string{"1TiB", "1.5MiB", "-1KiB", "abc"} {
		_, err := ParseSize(in)
		if err == nil {
			t.Fatalf("ParseSize(%q): got nil error, want one", in)
		}
		if want := `"` + in + `"`; !strings.Contains(err.Error(), want) {
			t.Errorf("ParseSize(%q): got error %q, want it to quote %s", in, err, want)
		}
	}
}

func TestParseRate(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in     string
		want   Rate
		perSec float64
		ok     bool
	}{
		{"100/s", Rate{100, time.Second}, 100, true},
		{"6000/m", Rate{6000, time.Minute}, 100, true},
		{"3600/h", Rate{3600, time.Hour}, 1, true},
		{"1/m", Rate{1, time.Minute}, 1.0 / 60, true},
		{" 5 / s ", Rate{5, time.Second}, 5, true},
		{"0/s", Rate{}, 0, false},
		{"-1/s", Rate{}, 0, false},
		{"10", Rate{}, 0, false},
		{"10/", Rate{}, 0, false},
		{"10/d", Rate{}, 0, false},
		{"10/ms", Rate{}, 0, false},
		{"1.5/s", Rate{}, 0, false},
		{"/s", Rate{}, 0, false},
		{"", Rate{}, 0, false},
		{"abc/s", Rate{}, 0, false},
	}
	for _, tt := range tests {
		got, err := ParseRate(tt.in)
		if !tt.ok {
			if err == nil {
				t.Errorf("ParseRate(%q): got %+v, nil; want an error", tt.in, got)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("ParseRate(%q): got %+v, %v; want %+v, nil", tt.in, got, err, tt.want)
			continue
		}
		if ps := got.PerSecond(); ps < tt.perSec*0.999 || ps > tt.perSec*1.001 {
			t.Errorf("ParseRate(%q).PerSecond(): got %v, want %v", tt.in, ps, tt.perSec)
		}
	}
	if got := (Rate{}).PerSecond(); got != 0 {
		t.Errorf("Rate{}.PerSecond(): got %v, want 0", got)
	}
}

func TestParseTypedValues(t *testing.T) {
	t.Parallel()
	c, err := Parse([]byte(`
server: {ack_deadline: 500ms, retry_after: 3s, max_header_bytes: 32KiB, max_json_depth: 40, max_body_memory: 1GiB}
sources:
  - name: a
    dedupe_window: 72h
    max_body: 512KiB
    rate_limit: 6000/m
    burst: 7
    response: {status: 202, body: "ok"}
    verify:
      - {type: header, header: X-Token, secrets: [s1, s2]}
  - name: b
    dedupe_window: 0s
`))
	if err != nil {
		t.Fatal(err)
	}
	if got, want := c.Server.AckDeadline.D(), 500*time.Millisecond; got != want {
		t.Errorf("server.ack_deadline: got %s, want %s", got, want)
	}
	if got, want := c.Server.MaxHeaderBytes, Size(32<<10); got != want {
		t.Errorf("server.max_header_bytes: got %d, want %d", got, want)
	}
	if got, want := c.Server.MaxJSONDepth, 40; got != want {
		t.Errorf("server.max_json_depth: got %d, want %d", got, want)
	}
	// The per-address share defaults to a quarter of the budget given.
	if got, want := c.Server.MaxBodyMemoryPerAddress, Size(256<<20); got != want {
		t.Errorf("server.max_body_memory_per_address: got %d, want %d", got, want)
	}
	if got, want := Default().Server.MaxJSONDepth, 128; got != want {
		t.Errorf("default server.max_json_depth: got %d, want %d", got, want)
	}
	a, b := c.Sources[0], c.Sources[1]
	if got, want := a.DedupeWindow.D(), 72*time.Hour; got != want {
		t.Errorf("a.dedupe_window: got %s, want %s", got, want)
	}
	if got, want := b.DedupeWindow.D(), time.Duration(0); got != want {
		t.Errorf("b.dedupe_window: got %s, want %s (0s disables dedupe, it is not the default)", got, want)
	}
	if got, want := a.MaxBody, Size(512<<10); got != want {
		t.Errorf("a.max_body: got %d, want %d", got, want)
	}
	if a.RateLimit == nil || *a.RateLimit != (Rate{6000, time.Minute}) || a.Burst != 7 {
		t.Errorf("a.rate_limit: got %+v burst %d, want 6000/m burst 7", a.RateLimit, a.Burst)
	}
	if a.Response.Status != 202 || a.Response.Body != "ok" || a.Response.ContentType != "text/plain; charset=utf-8" {
		t.Errorf("a.response: got %+v, want 202, ok, text/plain; charset=utf-8", a.Response)
	}
	if len(a.Verify) != 1 || a.Verify[0].Type != "header" || a.Verify[0].Options["header"] != "X-Token" {
		t.Errorf("a.verify: got %+v, want one header method with header X-Token", a.Verify)
	}
	if _, ok := a.Verify[0].Options["type"]; ok {
		t.Errorf("a.verify[0].Options: got a type key, want it removed")
	}
	if b.Response.Status != 200 || b.MaxBody != DefaultMaxBody || b.RateLimit != nil {
		t.Errorf("b defaults: got status %d max_body %d rate %v; want 200, 1MiB, nil", b.Response.Status, b.MaxBody, b.RateLimit)
	}
}

// Errors from typed values name the line of the file where the bad value is.
func TestParseErrorLine(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		yaml string
		want []string
	}{
		{"BareNumberDuration", "listen: \":8080\"\nserver:\n  ack_deadline: 5\n", []string{"line 3", "invalid duration"}},
		{"BadDuration", "sources:\n  - name: a\n    dedupe_window: 3 days\n", []string{"line 3", "3 days"}},
		{"DurationNotScalar", "server:\n  ack_deadline: [1s]\n", []string{"line 2"}},
		{"BadSize", "sources:\n  - name: a\n    max_body: 1TiB\n", []string{"line 3", "invalid size"}},
		{"BadRate", "sources:\n  - name: a\n    rate_limit: 10/d\n", []string{"line 3", "invalid rate"}},
		// The line must be the line of the file, with its comments, blank
		// lines and flow style, not of a re-encoded copy.
		{"DurationAfterBlankLines", "# hookd\n\n\nlisten: \":8080\"\n\nserver:\n\n  ack_deadline: 5\n", []string{"line 8", "invalid duration"}},
		{"SizeInFlowStyle", "sources:\n  - {name: a,\n     max_body: 1TiB}\n", []string{"line 3", "invalid size"}},
		{"UnknownKeyAfterBlankLines", "listen: \":8080\"\n\n\n\nsources:\n  - name: a\n\n    evnt: {}\n", []string{"line 8", "evnt"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := Parse([]byte(tt.yaml))
			if err == nil {
				t.Fatalf("Parse: got nil error, want one containing %q", tt.want)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("Parse: got error %q, want it to contain %q", err, w)
				}
			}
		})
	}
}

func TestDurationMarshal(t *testing.T) {
	t.Parallel()
	v, err := Duration(90 * time.Second).MarshalYAML()
	if err != nil || v != "1m30s" {
		t.Errorf("MarshalYAML: got %v, %v; want 1m30s, nil", v, err)
	}
}

// egress.proxy is read from the file and checked; its error does not
// repeat the URL, which may hold a password.
func TestValidateEgressProxy(t *testing.T) {
	c, err := Parse([]byte("egress: {proxy: \"http://hookd:pw@proxy.internal:3128\"}\n"))
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Validate(); err != nil || c.Egress.Proxy != "http://hookd:pw@proxy.internal:3128" {
		t.Fatalf("got %v, %q; want the proxy accepted", err, c.Egress.Proxy)
	}
	c.Egress.Proxy = "ftp://hookd:secret-pw@proxy.internal"
	if err := c.Validate(); err == nil || !strings.Contains(err.Error(), "egress.proxy: ") || strings.Contains(err.Error(), "secret-pw") {
		t.Fatalf("got %v, want an error naming egress.proxy without the password", err)
	}
}

func TestValidateEgressAllowHTTPHosts(t *testing.T) {
	c, err := Parse([]byte("egress: {allow_http_hosts: [\"hooks.internal\", \"http://x.example\"]}\n"))
	if err == nil {
		err = c.Validate()
	}
	if err == nil || !strings.Contains(err.Error(), "egress.allow_http_hosts[1]") {
		t.Fatalf("got %v, want an error naming egress.allow_http_hosts[1]", err)
	}
}

// TestLimitsRefuseFile: a file defining more destinations or subscriptions
// than its limits allow is refused at load, naming the limit; the
// defaults are documented caps.
func TestLimitsRefuseFile(t *testing.T) {
	t.Parallel()
	c, err := Parse([]byte("sources: [{name: a}]\n"))
	if err != nil {
		t.Fatal(err)
	}
	if got, want := c.Limits, (Limits{MaxSources: 1000, MaxDestinations: 1000, MaxSubscriptions: 10000}); got != want {
		t.Fatalf("default limits: got %+v, want %+v", got, want)
	}
	var b strings.Builder
	b.WriteString("limits: {max_destinations: 2, max_subscriptions: 3}\nsources: [{name: a}]\ndestinations:\n")
	for i := range 3 {
		fmt.Fprintf(&b, "  - {name: d%d, type: http, url: \"https://example.com/\"}\n", i)
	}
	b.WriteString("subscriptions:\n")
	for range 4 {
		b.WriteString("  - {source: a, destination: d0}\n")
	}
	c, err = Parse([]byte(b.String()))
	if err != nil {
		t.Fatal(err)
	}
	err = c.Validate()
	for _, want := range []string{
		"destinations: 3 defined, more than limits.max_destinations (2)",
		"subscriptions: 4 defined, more than limits.max_subscriptions (3)",
	} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Validate: got %v, want an error with %q", err, want)
		}
	}
}

func TestSubscriptionEventsBounded(t *testing.T) {
	t.Parallel()
	s := Subscription{Destination: "d"}
	for range MaxEventPatterns + 1 {
		s.Events = append(s.Events, "a.b")
	}
	if err := s.Validate(); err == nil || !strings.Contains(err.Error(), "events: 257 patterns, more than 256") {
		t.Fatalf("Validate: got %v, want events: 257 patterns, more than 256", err)
	}
}

// oauth_issuer's limits have defaults and are read from the file.
func TestOAuthIssuerLimits(t *testing.T) {
	t.Parallel()
	c, err := Parse([]byte("listen: \":8080\"\n"))
	if err != nil {
		t.Fatal(err)
	}
	want := OAuthIssuer{ClientFailures: Rate{N: 10, Per: time.Minute}, AddressFailures: Rate{N: 10, Per: time.Minute}, FailureBurst: 5, MaxAddresses: 10000}
	if c.OAuthIssuer != want {
		t.Errorf("defaults: got %+v, want %+v", c.OAuthIssuer, want)
	}
	c, err = Parse([]byte("oauth_issuer: {client_failures: 30/h, address_failures: 5/m, failure_burst: 3, max_addresses: 500}\n"))
	if err != nil {
		t.Fatal(err)
	}
	want = OAuthIssuer{ClientFailures: Rate{N: 30, Per: time.Hour}, AddressFailures: Rate{N: 5, Per: time.Minute}, FailureBurst: 3, MaxAddresses: 500}
	if c.OAuthIssuer != want || c.Validate() != nil {
		t.Errorf("from the file: got %+v (%v), want %+v", c.OAuthIssuer, c.Validate(), want)
	}
	if _, err := Parse([]byte("oauth_issuer: {client_failures: 0/m}\n")); err == nil {
		t.Errorf("client_failures 0/m: got nil, want an error")
	}
}

// A source from the API whose max_body exceeds what one address may hold
// of the memory for bodies is refused, like one from the file.
func TestParseSourceMaxBodyBeyondAddressMemory(t *testing.T) {
	t.Parallel()
	c := validConfig(t)
	if _, err := c.ParseSource([]byte(`{"name": "big", "max_body": "64MiB"}`)); err != nil {
		t.Errorf("max_body 64MiB: got %v, want nil", err)
	}
	_, err := c.ParseSource([]byte(`{"name": "big", "max_body": "65MiB"}`))
	if err == nil || !strings.Contains(err.Error(), "server.max_body_memory_per_address") {
		t.Errorf("max_body 65MiB: got %v, want an error naming server.max_body_memory_per_address", err)
	}
}

// server.tls is decoded strictly, and acme's directory defaults to Let's
// Encrypt's; its storage, to <storage.path>/acme, also when the data
// directory is set after the file is read.
func TestParseTLS(t *testing.T) {
	t.Parallel()
	c, err := Parse([]byte("server:\n  tls:\n    acme: {domains: [hooks.example.com], email: ops@example.com}\n"))
	if err != nil {
		t.Fatal(err)
	}
	a := c.Server.TLS.ACME
	if a.Directory != DefaultACMEDirectory {
		t.Errorf("directory: got %q, want %q", a.Directory, DefaultACMEDirectory)
	}
	c.ApplyEnv(func(k string) string { return map[string]string{"HOOKD_DATA": "/var/lib/hookd"}[k] })
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	if got, want := a.StorageDir(c.Storage.Path), "/var/lib/hookd/acme"; got != want {
		t.Errorf("storage: got %q, want %q", got, want)
	}
	_, err = Parse([]byte("server:\n  tls: {cert_file: c.pem, key_file: k.pem, client_ca: ca.pem}\n"))
	if err == nil || !strings.Contains(err.Error(), "client_ca") {
		t.Errorf("unknown key client_ca: got %v, want an error naming it", err)
	}
}
