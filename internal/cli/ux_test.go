package cli

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"hookd/internal/config"
)

// -f takes YAML as well as JSON: by the file's extension, or by its
// content on stdin; YAML's mistakes are named by the server in the file's
// words.
func TestSpecFileYAML(t *testing.T) {
	sink := newManageSink(t)
	base := startManageApp(t)
	conn := []string{"--server", base, "--token", verbsToken}
	run := func(stdin string, args ...string) (string, string, int) {
		t.Helper()
		return manageRun(t, stdin, append(args, conn...)...)
	}
	dir := t.TempDir()
	file := filepath.Join(dir, "orders.yaml")
	yaml := "# the orders endpoint\nname: orders\ntype: http\nurl: " + sink.srv.URL + "\nheaders: {X-Team: \"42\"}\nretry:\n  policy: schedule\n  schedule: [1h]\n"
	if err := os.WriteFile(file, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	out, errOut, code := run("", "destinations", "create", "-f", file)
	if code != 0 || out != "created orders\n" {
		t.Fatalf("destinations create -f orders.yaml: exit %d, stdout %q, stderr %q", code, out, errOut)
	}
	out, _, _ = run("", "destinations", "get", "orders", "-o", "json")
	if !strings.Contains(out, `"X-Team": "42"`) {
		t.Errorf("the quoted \"42\" of the YAML file must stay a string:\n%s", out)
	}
	// stdin, YAML by its content.
	out, errOut, code = run("source: app\ndestination: orders\nevents: [order.*]\n", "subscriptions", "create", "-f", "-")
	if code != 0 || !regexp.MustCompile(`^sub_\S+\n$`).MatchString(out) {
		t.Fatalf("subscriptions create of YAML on stdin: exit %d, stdout %q, stderr %q", code, out, errOut)
	}
	// A misspelt key in a YAML file: the server names it and the nearest key.
	_, errOut, code = run("name: shop\ndedup_window: 1h\n", "sources", "create", "-f", "-")
	if want := "error: invalid source: unknown key \"dedup_window\" (did you mean \"dedupe_window\"?) (invalid, HTTP 400)\n"; code != 1 || errOut != want {
		t.Errorf("sources create with dedup_window: exit %d, stderr %q, want %q", code, errOut, want)
	}
	_, errOut, code = run("name: shop\nverify:\n  type: api_key\n", "sources", "create", "-f", "-")
	if want := "error: invalid source: verify: want a list of methods (- type: …), got a mapping (key: value) (invalid, HTTP 400)\n"; code != 1 || errOut != want {
		t.Errorf("sources create with verify as a mapping: exit %d, stderr %q, want %q", code, errOut, want)
	}
	// JSON still by its content, and by its extension.
	_, errOut, code = run("{name:", "destinations", "create", "-f", "-")
	if code != 1 || !strings.HasPrefix(errOut, "error: stdin is not valid JSON: ") {
		t.Errorf("bad JSON on stdin: exit %d, stderr %q", code, errOut)
	}
	bad := filepath.Join(dir, "bad.yml")
	if err := os.WriteFile(bad, []byte("name: [unclosed\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, errOut, code = run("", "destinations", "create", "-f", bad)
	if code != 1 || !strings.HasPrefix(errOut, "error: "+bad+" is not a valid YAML definition: ") {
		t.Errorf("bad YAML file: exit %d, stderr %q", code, errOut)
	}
}

func TestYAMLToJSON(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, in, want, err string
	}{
		{"Types", "a: 1\nb: \"1\"\nc: true\nd: null\ne: 1.5\nf: [x, 2]\ng: {h: 2026-01-02}\n",
			`{"a":1,"b":"1","c":true,"d":null,"e":1.5,"f":["x",2],"g":{"h":"2026-01-02"}}`, ""},
		{"Alias", "a: &x {b: 1}\nc: *x\n", `{"a":{"b":1},"c":{"b":1}}`, ""},
		{"NotAMapping", "- a\n", "", "is not a mapping"},
		{"TwoDocuments", "a: 1\n---\nb: 2\n", "", "more than one document"},
		{"Infinity", "a: .inf\n", "", "a number JSON cannot hold"},
		{"KeyNotString", "? [a]\n: 1\n", "", "a key is not a string"},
		{"Bomb", "a: &a [x, x, x, x, x, x, x, x, x, x]\nb: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a, *a]\nc: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b, *b]\nd: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c, *c]\ne: &e [*d, *d, *d, *d, *d, *d, *d, *d, *d, *d]\nf: &f [*e, *e, *e, *e, *e, *e, *e, *e, *e, *e]\ng: [*f, *f, *f, *f, *f, *f, *f, *f, *f, *f]\n", "", "too large"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := yamlToJSON([]byte(tt.in))
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("got %s, %v; want an error containing %q", got, err, tt.err)
				}
				return
			}
			if err != nil || string(got) != tt.want {
				t.Errorf("got %s, %v; want %s", got, err, tt.want)
			}
		})
	}
	for _, c := range []struct {
		name, body string
		yaml       bool
	}{{"a.yaml", "{}", true}, {"a.YML", "{}", true}, {"a.json", "name: x", false}, {"stdin", "{\"a\":1}", false}, {"stdin", "name: x", true}, {"def", "[1]", false}} {
		if got := specIsYAML(c.name, []byte(c.body)); got != c.yaml {
			t.Errorf("specIsYAML(%q, %q): got %v, want %v", c.name, c.body, got, c.yaml)
		}
	}
}

// hookd replay get ID shows a replay's progress; --watch follows it.
func TestReplayGet(t *testing.T) {
	sink := newVerbsSink(t, http.StatusOK)
	base := startVerbsApp(t, sink.srv.URL)
	conn := []string{"--server", base, "--token", verbsToken}
	client := &http.Client{}
	for _, id := range []string{"a", "b", "c"} {
		if _, err := verbsPost(client, base, id, "order.created"); err != nil {
			t.Fatal(err)
		}
	}
	out, errOut, code := runCLI(t, nil, append([]string{"replay", "--source", "app", "--no-wait"}, conn...)...)
	m := regexp.MustCompile(`^replay (rpl_\S+): running\n$`).FindStringSubmatch(out)
	if code != 0 || m == nil {
		t.Fatalf("replay --no-wait: exit %d, stdout %q, stderr %q", code, out, errOut)
	}
	id := m[1]
	out, errOut, code = runCLI(t, nil, append([]string{"replay", "get", id, "--watch"}, conn...)...)
	if want := "replay " + id + ": done, 3/3 processed, 3 deliveries queued\n"; code != 0 || out != want {
		t.Errorf("replay get --watch: exit %d, stdout %q, want %q; stderr %q", code, out, want, errOut)
	}
	out, errOut, code = runCLI(t, nil, append([]string{"replay", "get", id}, conn...)...)
	want := regexp.MustCompile(`^id:\s+` + id + `\nstate:\s+done\nprogress:\s+3/3 processed \(100%\)\nqueued:\s+3 deliveries\nstarted_at:\s+\S+\nfinished_at:\s+\S+\n\nfilter:\n  \{"source":"app"\}\n$`)
	if code != 0 || !want.MatchString(out) {
		t.Errorf("replay get: exit %d, stdout %q, stderr %q", code, out, errOut)
	}
	out, _, code = runCLI(t, nil, append([]string{"replay", "get", id, "-o", "json"}, conn...)...)
	var job replayJobView
	if err := json.Unmarshal([]byte(out), &job); code != 0 || err != nil || job.ID != id || job.Done != 3 || job.Total != 3 {
		t.Errorf("replay get -o json: exit %d, %v, %s", code, err, out)
	}
	_, errOut, code = runCLI(t, nil, append([]string{"replay", "get", "rpl_nope"}, conn...)...)
	if code != 1 || !strings.HasPrefix(errOut, `error: no replay "rpl_nope"`) || !strings.HasSuffix(errOut, "(not_found, HTTP 404)\n") {
		t.Errorf("replay get of an unknown id: exit %d, stderr %q", code, errOut)
	}
}

// hookd send posts a test event to a source and prints the answer.
func TestSend(t *testing.T) {
	sink := newVerbsSink(t, http.StatusOK)
	base := startVerbsApp(t, sink.srv.URL)
	t.Setenv(envServer, base) // send reads the server from the environment too
	run := func(stdin string, args ...string) (string, string, int) {
		t.Helper()
		return manageRun(t, stdin, args...)
	}
	answer := regexp.MustCompile(`^HTTP 200 OK\n\{"id":"(evt_\S+)","request_id":"req_\S+"\}\n$`)
	var ids []string
	out, errOut, code := run("", "send", "app", "-d", `{"id":"s-1","type":"order.created"}`)
	if m := answer.FindStringSubmatch(out); code != 0 || m == nil {
		t.Fatalf("send -d: exit %d, stdout %q, stderr %q", code, out, errOut)
	} else {
		ids = append(ids, m[1])
	}
	file := filepath.Join(t.TempDir(), "event.json")
	if err := os.WriteFile(file, []byte(`{"id":"s-2","type":"order.paid"}`), 0o600); err != nil {
		t.Fatal(err)
	}
	out, errOut, code = run("", "send", "app", "--file", file, "-H", "X-Trace: t-1")
	if m := answer.FindStringSubmatch(out); code != 0 || m == nil {
		t.Fatalf("send --file: exit %d, stdout %q, stderr %q", code, out, errOut)
	} else {
		ids = append(ids, m[1])
	}
	out, errOut, code = run(`{"id":"s-3","type":"order.shipped"}`, "send", "app")
	if m := answer.FindStringSubmatch(out); code != 0 || m == nil {
		t.Fatalf("send from stdin: exit %d, stdout %q, stderr %q", code, out, errOut)
	} else {
		ids = append(ids, m[1])
	}
	// Each was stored as sent, with its type read from the JSON body (the
	// Content-Type was set) and the -H header.
	for i, want := range []string{"order.created", "order.paid", "order.shipped"} {
		var ev struct {
			Type    string              `json:"type"`
			Headers map[string][]string `json:"headers"`
		}
		verbsAPI(t, base, "/api/v1/events/"+ids[i], &ev)
		if ev.Type != want {
			t.Errorf("event %d: type %q, want %q", i, ev.Type, want)
		}
		if i == 1 && (len(ev.Headers["X-Trace"]) != 1 || ev.Headers["X-Trace"][0] != "t-1") {
			t.Errorf("event 1: headers %v, want X-Trace: t-1", ev.Headers)
		}
	}
	// A refusal is printed, and the exit status is 1.
	out, _, code = run("", "send", "nope", "-d", "{}")
	if code != 1 || !strings.HasPrefix(out, "HTTP 404 Not Found\n{\"error\":{\"code\":\"not_found\"") {
		t.Errorf("send to an unknown source: exit %d, stdout %q", code, out)
	}
	_, errOut, code = run("", "send", "app", "-d", "{}", "-H", "no colon")
	if code != 1 || errOut != "error: invalid -H \"no colon\" (want 'Name: value')\n" {
		t.Errorf("send -H without a colon: exit %d, stderr %q", code, errOut)
	}
	_, errOut, code = run("", "send", "app", "-d", "{}", "--server", "ftp://x")
	if code != 1 || !strings.HasPrefix(errOut, "error: invalid --server") {
		t.Errorf("send --server ftp://x: exit %d, stderr %q", code, errOut)
	}
}

// Completion offers the names from the server, and nothing (quietly, in
// bounded time) when the server cannot be asked.
func TestCompletionFromServer(t *testing.T) {
	sink := newVerbsSink(t, http.StatusOK)
	base := startVerbsApp(t, sink.srv.URL)
	conn := []string{"--server", base, "--token", verbsToken}
	var subID string
	{
		var page struct {
			Data []struct {
				ID string `json:"id"`
			} `json:"data"`
		}
		verbsAPI(t, base, "/api/v1/subscriptions", &page)
		if len(page.Data) != 1 {
			t.Fatalf("subscriptions: %+v", page)
		}
		subID = page.Data[0].ID
	}
	tests := []struct {
		verb []string // then the connection flags
		tail []string
		want string
	}{
		{[]string{"sources", "get"}, []string{""}, "app\n:4\n"},
		{[]string{"sources", "delete"}, []string{"a"}, "app\n:4\n"},
		{[]string{"sources", "delete"}, []string{"x"}, ":4\n"},
		{[]string{"destinations", "update"}, []string{""}, "sink\thttp\n:4\n"},
		{[]string{"destinations", "enable"}, []string{""}, "sink\thttp\n:4\n"},
		{[]string{"destinations", "test"}, []string{""}, "sink\thttp\n:4\n"},
		{[]string{"events", "replay"}, []string{"evt_x", "--to", ""}, "sink\thttp\n:4\n"},
		{[]string{"subscriptions", "get"}, []string{""}, subID + "\tapp → sink\n:4\n"},
		{[]string{"sources", "get"}, []string{"app", ""}, ":4\n"}, // one name only
		{[]string{"events", "list"}, []string{"--source", ""}, "app\n:4\n"},
		{[]string{"deliveries", "list"}, []string{"--destination", ""}, "sink\thttp\n:4\n"},
		{[]string{"replay"}, []string{"--destination", "s"}, "sink\thttp\n:4\n"},
	}
	for _, tt := range tests {
		args := append(append(append([]string{"__complete"}, tt.verb...), conn...), tt.tail...)
		out, errOut, code := runCLI(t, nil, args...)
		if code != 0 || out != tt.want {
			t.Errorf("hookd %s: exit %d, stdout %q, want %q; stderr %q", strings.Join(args[1:], " "), code, out, tt.want, errOut)
		}
	}
	// The environment's server and token serve as well.
	t.Setenv(envServer, base)
	t.Setenv(envToken, verbsToken)
	if out, _, _ := runCLI(t, nil, "__complete", "sources", "get", ""); out != "app\n:4\n" {
		t.Errorf("completion with the environment's server and token: got %q", out)
	}
	if out, _, _ := runCLI(t, nil, "__complete", "send", ""); out != "app\n:4\n" {
		t.Errorf("completion of send: got %q", out)
	}

	// Quiet failures: a wrong token, no server, a server that never answers.
	hang := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { <-r.Context().Done() }))
	defer hang.Close()
	old := completionTimeout
	completionTimeout = 300 * time.Millisecond
	defer func() { completionTimeout = old }()
	for _, c := range [][]string{
		{"--server", base, "--token", "wrong-token-wrong-token"},
		{"--server", "http://127.0.0.1:1", "--token", verbsToken},
		{"--server", hang.URL, "--token", verbsToken},
	} {
		start := time.Now()
		out, errOut, code := runCLI(t, nil, append(append([]string{"__complete", "sources", "get"}, c...), "")...)
		if code != 0 || out != ":4\n" {
			t.Errorf("completion with %v: exit %d, stdout %q, want only the directive", c, code, out)
		}
		if strings.Contains(errOut, "error") {
			t.Errorf("completion with %v printed %q, want nothing but the directive note", c, errOut)
		}
		if d := time.Since(start); d > 5*time.Second {
			t.Errorf("completion with %v took %v, want it bounded by %v", c, d, completionTimeout)
		}
	}
}

// The tour's steps keep their data apart: the signed step and the
// delivery step start empty whatever the zero-config start left in
// ./hookd-data (its demo event, its generated token).
func TestTourDataDirectories(t *testing.T) {
	seen := map[string]string{config.DefaultDataDir: "the zero-config start"}
	for _, f := range []string{"tour.yaml", "deliver.yaml"} {
		cfg, err := config.Load("../../examples/" + f)
		if err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		p := filepath.Clean(cfg.Storage.Path)
		for dir, who := range seen {
			if p == filepath.Clean(dir) {
				t.Errorf("examples/%s keeps its data in %s, as %s does", f, p, who)
			}
		}
		seen[p] = f
	}
}
