package config

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// noGoWords fails when a message shows Go's view of the file rather than
// the file's: a type name, a YAML tag, decoder jargon.
func noGoWords(t *testing.T, msg string) {
	t.Helper()
	for _, w := range []string{"config.", "!!", "not found in type", "unmarshal", "interface", "[]"} {
		if strings.Contains(msg, w) {
			t.Errorf("error %q shows %q; want the file's words only", msg, w)
		}
	}
}

// The mistakes new users made, each with the error they should see: the
// key path, and what is wanted there or the nearest valid key.
func TestParseMistakes(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, yaml, want string
	}{
		{"MisspeltSourceKey", "sources:\n  - name: gh\n    dedup_window: 1h\n",
			`line 3: sources[0]: unknown key "dedup_window" (did you mean "dedupe_window"?)`},
		{"VerifyAsMapping", "sources:\n  - name: gh\n    verify:\n      type: hmac\n",
			`line 4: sources[0].verify: want a list of methods (- type: …), got a mapping (key: value)`},
		{"VerifyMethodAsString", "sources:\n  - name: gh\n    verify: [github]\n",
			`line 3: sources[0].verify[0]: want a method (type: …, and its options), got a string`},
		{"VerifyTypeAsList", "sources:\n  - name: gh\n    verify:\n      - type: [github]\n",
			`line 4: sources[0].verify[0].type: want the method's name (such as hmac or github), got a list`},
		{"TopLevelSingular", "source:\n  - name: gh\n",
			`line 1: unknown key "source" (did you mean "sources"?)`},
		{"TopLevelDestination", "destination:\n  - name: d\n",
			`line 1: unknown key "destination" (did you mean "destinations"?)`},
		{"SourcesAsMapping", "sources:\n  gh:\n    verify: []\n",
			`line 2: sources: want a list of sources (- name: …), got a mapping (key: value)`},
		{"EventAsString", "sources:\n  - name: gh\n    event: json:id\n",
			`line 3: sources[0].event: want a mapping (key: value) with the keys id, key, require_id, timestamp, type, got a string`},
		{"EventKeyMisspelt", "sources:\n  - name: gh\n    event: {idd: json:id}\n",
			`line 3: sources[0].event: unknown key "idd" (did you mean "id"?)`},
		{"RequireIDYes", "sources:\n  - name: gh\n    event: {id: json:id, require_id: maybe}\n",
			`line 3: sources[0].event.require_id: want true or false, got a string`},
		{"UnknownKeyNoNeighbour", "sources:\n  - name: gh\n    colour: red\n",
			`line 3: sources[0]: unknown key "colour" (valid keys here: burst, dedupe_window, event, handshake, max_body, name, rate_limit, response, transform, verify)`},
		{"ServerKey", "server:\n  ack_deadlin: 2s\n",
			`line 2: server: unknown key "ack_deadlin" (did you mean "ack_deadline"?)`},
		{"Hyphen", "server:\n  max-in-flight: 10\n",
			`line 2: server: unknown key "max-in-flight" (did you mean "max_in_flight"?)`},
		{"Transposed", "sources:\n  - name: gh\n    verfiy: []\n",
			`line 3: sources[0]: unknown key "verfiy" (did you mean "verify"?)`},
		{"DurationAsNumber", "sources:\n  - name: gh\n    dedupe_window: 5\n",
			`line 3: sources[0].dedupe_window: invalid duration "5"`},
		{"SizeAsList", "sources:\n  - name: gh\n    max_body: [1]\n",
			`line 3: sources[0].max_body: want a size such as "1MiB"`},
		{"EventsAsString", "destinations: [{name: d, type: http, url: https://x.example}]\nsubscriptions:\n  - destination: d\n    events: order.*\n",
			`line 4: subscriptions[0].events: want a list of strings ([a, b] or - a), got a string`},
		{"ConcurrencyWord", "destinations:\n  - name: d\n    type: http\n    concurrency: many\n",
			`line 4: destinations[0].concurrency: want a whole number, got a string`},
		{"DestinationAsURL", "destinations:\n  - https://x.example/hook\n",
			`line 2: destinations[0]: want a destination (name: …, type: …, and its options), got a string`},
		{"RetryAsNumber", "destinations:\n  - name: d\n    type: http\n    retry: 5\n",
			`line 4: destinations[0].retry: want a mapping (key: value), got a number`},
		{"TokensAsString", "admin:\n  tokens: abcdefghijklmnopqrstuvwxyz\n",
			`line 2: admin.tokens: want a list of strings ([a, b] or - a), got a string`},
		{"ListenAsList", "listen: [\":8080\"]\n",
			`line 1: listen: want a string, got a list`},
		{"PortOutOfRange", "server:\n  max_in_flight: 99999999999999999999\n",
			`line 2: server.max_in_flight: want a whole number, got a number`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := Parse([]byte(tt.yaml))
			if err == nil {
				t.Fatalf("Parse: got nil error, want %q", tt.want)
			}
			if !strings.HasPrefix(err.Error(), tt.want) {
				t.Errorf("Parse:\n got %q\nwant %q", err, tt.want)
			}
			noGoWords(t, err.Error())
		})
	}
}

// A definition sent to the admin API is checked the same way, without
// lines (a JSON body has none worth naming).
func TestParseDefinitionMistakes(t *testing.T) {
	t.Parallel()
	c := Default()
	tests := []struct {
		name  string
		parse func([]byte) error
		body  string
		want  string
	}{
		{"SourceMisspelt", srcParser(c), `{"name":"gh","dedup_window":"1h"}`, `unknown key "dedup_window" (did you mean "dedupe_window"?)`},
		{"SourceVerifyObject", srcParser(c), `{"name":"gh","verify":{"type":"github"}}`, `verify: want a list of methods (- type: …), got a mapping (key: value)`},
		{"SourceEventString", srcParser(c), `{"name":"gh","event":"json:id"}`, `event: want a mapping (key: value) with the keys`},
		{"SourceMaxBodyObject", srcParser(c), `{"name":"gh","max_body":{"n":1}}`, `max_body: want a size such as "1MiB"`},
		{"SourceYAML", srcParser(c), "name: gh\nverfiy: []\n", `unknown key "verfiy" (did you mean "verify"?)`},
		{"DestinationConcurrency", destParser, `{"name":"d","type":"http","concurrency":"x"}`, `concurrency: want a whole number, got a string`},
		{"DestinationHeadTimeout", destParser, `{"name":"d","type":"http","ordering":"fifo","head_timeout":30}`, `head_timeout: invalid duration "30"`},
		{"DestinationRetry", destParser, `{"name":"d","type":"http","retry":[1]}`, `retry: want a mapping (key: value), got a list`},
		{"SubscriptionEvents", subParser, `{"destination":"d","events":"*"}`, `events: want a list of strings ([a, b] or - a), got a string`},
		{"SubscriptionActive", subParser, `{"destination":"d","active":"maybe"}`, `active: want true or false, got a string`},
		{"SubscriptionMisspelt", subParser, `{"destination":"d","skip_stal":true}`, `unknown key "skip_stal" (did you mean "skip_stale"?)`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			err := tt.parse([]byte(tt.body))
			if err == nil {
				t.Fatalf("got nil error, want %q", tt.want)
			}
			if !strings.HasPrefix(err.Error(), tt.want) {
				t.Errorf("\n got %q\nwant %q", err, tt.want)
			}
			if strings.Contains(err.Error(), "line ") {
				t.Errorf("error %q names a line; want none for a definition from the API", err)
			}
			noGoWords(t, err.Error())
		})
	}
}

func srcParser(c *Config) func([]byte) error {
	return func(b []byte) error { _, err := c.ParseSource(b); return err }
}
func destParser(b []byte) error { _, err := ParseDestination(b); return err }
func subParser(b []byte) error  { _, err := ParseSubscription(b); return err }

// A method's and a destination's own options are decoded later, by the
// method and the kind; their unknown keys are named the same way, with
// the keys read before (type, the shared keys) among the suggestions.
func TestDecodeOptionsMistakes(t *testing.T) {
	t.Parallel()
	c, err := Parse([]byte(`sources:
  - name: gh
    verify:
      - type: hmac
        secret: s3cr3t-value
destinations:
  - name: d
    type: http
    url: https://x.example
    retyr: {max_attempts: 3}
  - name: e
    type: http
    url: https://x.example
    tpye: http
  - name: f
    type: http
    retry: {max_atempts: 3}
`))
	if err != nil {
		t.Fatal(err)
	}
	var hmacOpts struct {
		Secrets []string `yaml:"secrets"`
	}
	err = c.Sources[0].Verify[0].Decode(&hmacOpts)
	if want := `line 5: unknown key "secret" (did you mean "secrets"?)`; err == nil || err.Error() != want {
		t.Errorf("verify options: got %v, want %q", err, want)
	}
	var url struct {
		URL string `yaml:"url"`
	}
	for i, want := range []string{
		`line 10: unknown key "retyr" (did you mean "retry"?)`,
		`line 14: unknown key "tpye" (did you mean "type"?)`,
	} {
		if err := c.Destinations[i].DecodeOptions(&url); err == nil || err.Error() != want {
			t.Errorf("destinations[%d] options: got %v, want %q", i, err, want)
		}
	}
	var retry struct {
		MaxAttempts int `yaml:"max_attempts"`
	}
	if err := c.Destinations[2].DecodeRetry(&retry); err == nil || err.Error() != `line 17: unknown key "max_atempts" (did you mean "max_attempts"?)` {
		t.Errorf("destinations[2] retry: got %v", err)
	}
	// A value of the wrong kind is named, never quoted (options hold
	// secrets).
	v, err := NewVerify("hmac", map[string]any{"secrets": map[string]any{"old": "s3cr3t-value"}})
	if err != nil {
		t.Fatal(err)
	}
	err = v.Decode(&hmacOpts)
	if want := `secrets: want a list of strings ([a, b] or - a), got a mapping (key: value)`; err == nil || err.Error() != want {
		t.Errorf("verify options from code: got %v, want %q", err, want)
	}
	if err != nil && strings.Contains(err.Error(), "s3cr3t") {
		t.Errorf("error %q quotes a secret", err)
	}
}

// An unset ${VAR} is named: in the warning at start (its key path), and
// in the error of the key whose value it emptied.
func TestUnsetEnvNamed(t *testing.T) {
	unsetEnv(t, "HOOKD_T_GITHUB_SECRET")
	unsetEnv(t, "HOOKD_T_CS")
	unsetEnv(t, "HOOKD_T_DSN")
	unsetEnv(t, "HOOKD_T_CERT")
	c, err := Parse([]byte(`sources:
  - name: a
  - name: gh
    verify:
      - type: github
        secrets: ["${HOOKD_T_GITHUB_SECRET}"]
destinations:
  - name: d
    type: http
    url: https://x.example
    auth: {type: oauth2, client_secret: "${HOOKD_T_CS}"}
`))
	if err != nil {
		t.Fatal(err)
	}
	if want := (EnvRef{Key: "sources[1].verify[0].secrets[0]", Var: "HOOKD_T_GITHUB_SECRET"}); !slices.Contains(c.UnsetRefs, want) {
		t.Errorf("UnsetRefs: got %+v, want it to contain %+v", c.UnsetRefs, want)
	}
	// The method's error, as the method words it, gets the variable.
	tests := []struct {
		explain func(error) error
		in      string
		want    string
	}{
		{c.Sources[1].Verify[0].Explain, "secrets[0]: empty (is its environment variable set?)", "secrets[0]: environment variable HOOKD_T_GITHUB_SECRET is not set"},
		{c.Sources[1].Verify[0].Explain, "secrets: at least one is required", "secrets: at least one is required"},
		{c.Destinations[0].Explain, "auth: client_secret: empty", "auth: client_secret: environment variable HOOKD_T_CS is not set"},
		{c.Destinations[0].Explain, "auth: token_url: required", "auth: token_url: required"},
		{c.Destinations[0].Explain, "url: must be https", "url: must be https"},
	}
	for _, tt := range tests {
		if got := tt.explain(errors.New(tt.in)); got.Error() != tt.want {
			t.Errorf("Explain(%q): got %q, want %q", tt.in, got, tt.want)
		}
	}
	// Validate's errors, through Load.
	path := filepath.Join(t.TempDir(), "hookd.yaml")
	if err := os.WriteFile(path, []byte("server: {tls: {cert_file: \"${HOOKD_T_CERT}\", key_file: k.pem}}\nstorage: {driver: postgres, dsn: \"${HOOKD_T_DSN}\"}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err = Load(path)
	for _, want := range []string{"server.tls.cert_file: environment variable HOOKD_T_CERT is not set", "storage.dsn: environment variable HOOKD_T_DSN is not set"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Load: got %v, want it to contain %q", err, want)
		}
	}
}

func TestSuggest(t *testing.T) {
	t.Parallel()
	keys := []string{"name", "verify", "event", "dedupe_window", "max_body", "response", "rate_limit", "burst", "handshake", "url", "ttl"}
	tests := []struct{ in, want string }{
		{"dedup_window", "dedupe_window"},
		{"dedupewindow", "dedupe_window"},
		{"Dedupe-Window", "dedupe_window"},
		{"verfiy", "verify"},
		{"nmae", "name"},
		{"max_bdy", "max_body"},
		{"ratelimit", "rate_limit"},
		{"uri", "url"},
		{"colour", ""},
		{"x", ""},
		{"response_status", ""},
		{strings.Repeat("a", 200), ""},
	}
	for _, tt := range tests {
		if got := Suggest(tt.in, keys); got != tt.want {
			t.Errorf("Suggest(%q): got %q, want %q", tt.in, got, tt.want)
		}
	}
}

// The admin API's bodies reach these parsers: whatever they hold, an
// error (or a definition), never a panic or a Go type name.
func FuzzParseDefinition(f *testing.F) {
	for _, s := range []string{`{"name":"gh","dedup_window":"1h"}`, `{"name":"d","type":"http","concurrency":"x"}`,
		`{"destination":"d","events":"*"}`, `{"name":"a","verify":[{"type":["x"]}]}`, "name: a\nevent: &x {id: json:id}\nresponse: *x\n",
		`{"name":"a","max_body":{"a":[1,{"b":null}]}}`, `{"retry":{"policy":[]},"rate":{}}`} {
		f.Add(s)
	}
	c := Default()
	f.Fuzz(func(t *testing.T, body string) {
		for _, parse := range []func([]byte) error{srcParser(c), destParser, subParser} {
			if err := parse([]byte(body)); err != nil && strings.Contains(err.Error(), "config.") {
				t.Errorf("error %q names a Go type", err)
			}
		}
	})
}
