package cli

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"hookd/internal/config"
)

// manageSink is an HTTP destination that records the webhook-id and the
// X-Team header of every request.
type manageSink struct {
	srv  *httptest.Server
	mu   sync.Mutex
	team map[string]string // webhook-id → X-Team
}

func newManageSink(t *testing.T) *manageSink {
	t.Helper()
	s := &manageSink{team: map[string]string{}}
	s.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		s.mu.Lock()
		s.team[r.Header.Get("webhook-id")] = r.Header.Get("X-Team")
		s.mu.Unlock()
	}))
	t.Cleanup(s.srv.Close)
	return s
}

// got returns the X-Team header the request with webhook-id id carried,
// and whether it arrived.
func (s *manageSink) got(id string) (string, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	v, ok := s.team[id]
	return v, ok
}

// startManageApp runs hookd with source app and neither destinations nor
// subscriptions, and returns its base URL.
func startManageApp(t *testing.T) string {
	t.Helper()
	t.Setenv(envServer, "")
	t.Setenv(envToken, "")
	yaml := fmt.Sprintf(`admin: {tokens: [%s]}
egress: {allow_private: ["127.0.0.0/8"]}
sources: [{name: app, event: {id: "json:id", type: "json:type"}}]
`, verbsToken)
	cfg, err := config.Parse([]byte(yaml))
	if err != nil {
		t.Fatalf("config: %v", err)
	}
	cfg.Storage.Path = t.TempDir()
	_, base := startApp(t, cfg, nil)
	return base
}

// manageRun runs hookd with args and stdin and returns its stdout, stderr
// and exit code.
func manageRun(t *testing.T, stdin string, args ...string) (string, string, int) {
	t.Helper()
	var out, errb bytes.Buffer
	root := NewRoot(&out, &errb)
	root.SetIn(strings.NewReader(stdin))
	root.SetArgs(args)
	code := 0
	if err := root.Execute(); err != nil {
		var ee exitError
		if errors.As(err, &ee) {
			code = ee.code
		} else {
			fmt.Fprintln(&errb, "hookd:", err)
			code = 1
		}
	}
	return out.String(), errb.String(), code
}

// manageFile writes a JSON definition into a temporary file.
func manageFile(t *testing.T, name string, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, b, 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func manageDest(url, team string) map[string]any {
	return map[string]any{"name": "orders", "type": "http", "url": url, "headers": map[string]string{"X-Team": team},
		"retry": map[string]any{"policy": "schedule", "schedule": []string{"1h"}}}
}

func TestManageDestinationsAndSubscriptions(t *testing.T) {
	sink := newManageSink(t)
	base := startManageApp(t)
	conn := []string{"--server", base, "--token", verbsToken}
	run := func(stdin string, args ...string) (string, string, int) {
		t.Helper()
		return manageRun(t, stdin, append(args, conn...)...)
	}

	// Create a destination from a file and a subscription from stdin.
	out, errOut, code := run("", "destinations", "create", "-f", manageFile(t, "orders.json", manageDest(sink.srv.URL, "blue")))
	if code != 0 || out != "created orders\n" {
		t.Fatalf("destinations create: exit %d, stdout %q, stderr %q", code, out, errOut)
	}
	out, errOut, code = run(`{"source": "app", "destination": "orders", "events": ["order.*"]}`, "subscriptions", "create", "-f", "-")
	if code != 0 || !regexp.MustCompile(`^sub_\S+\n$`).MatchString(out) {
		t.Fatalf("subscriptions create: exit %d, stdout %q, stderr %q", code, out, errOut)
	}
	subID := strings.TrimSpace(out)

	// List both, as tables and as JSON.
	out, errOut, code = run("", "destinations", "list")
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if code != 0 || len(lines) != 2 ||
		!regexp.MustCompile(`^NAME\s+TYPE\s+ORIGIN\s+ORDERING\s+CONCURRENCY\s+DISABLED\s+ATTEMPTS\s+SUCCEEDED\s+FAILED$`).MatchString(lines[0]) {
		t.Fatalf("destinations list: exit %d, stderr %q:\n%s", code, errOut, out)
	}
	if f := strings.Fields(lines[1]); len(f) != 9 || f[0] != "orders" || f[1] != "http" || f[2] != "api" || f[3] != "none" || f[5] != "no" || f[6] != "0" {
		t.Errorf("destinations list row: %q", lines[1])
	}
	t.Logf("destinations list:\n%s", out)
	out, _, code = run("", "destinations", "list", "-o", "json")
	var dests struct {
		Data []struct {
			Name       string         `json:"name"`
			Origin     string         `json:"origin"`
			Definition map[string]any `json:"definition"`
			Disabled   bool           `json:"disabled"`
		} `json:"data"`
	}
	if err := json.Unmarshal([]byte(out), &dests); code != 0 || err != nil || len(dests.Data) != 1 {
		t.Fatalf("destinations list -o json: exit %d, %v:\n%s", code, err, out)
	}
	if d := dests.Data[0]; d.Name != "orders" || d.Origin != "api" || d.Definition["url"] != sink.srv.URL || d.Disabled {
		t.Errorf("destinations list -o json: %+v", d)
	}

	out, errOut, code = run("", "subscriptions", "list")
	lines = strings.Split(strings.TrimSpace(out), "\n")
	if code != 0 || len(lines) != 2 || !regexp.MustCompile(`^ID\s+SOURCE\s+DESTINATION\s+EVENTS\s+ACTIVE\s+ORIGIN$`).MatchString(lines[0]) {
		t.Fatalf("subscriptions list: exit %d, stderr %q:\n%s", code, errOut, out)
	}
	if f := strings.Fields(lines[1]); len(f) != 6 || f[0] != subID || f[1] != "app" || f[2] != "orders" || f[3] != "order.*" || f[4] != "yes" || f[5] != "api" {
		t.Errorf("subscriptions list row: %q", lines[1])
	}
	t.Logf("subscriptions list:\n%s", out)
	out, _, code = run("", "subscriptions", "list", "-o", "json")
	var subs struct {
		Data []struct {
			ID          string   `json:"id"`
			Destination string   `json:"destination"`
			Events      []string `json:"events"`
			Active      bool     `json:"active"`
		} `json:"data"`
	}
	if err := json.Unmarshal([]byte(out), &subs); code != 0 || err != nil || len(subs.Data) != 1 {
		t.Fatalf("subscriptions list -o json: exit %d, %v:\n%s", code, err, out)
	}
	if s := subs.Data[0]; s.ID != subID || s.Destination != "orders" || len(s.Events) != 1 || s.Events[0] != "order.*" || !s.Active {
		t.Errorf("subscriptions list -o json: %+v", s)
	}

	// An event is delivered to the sink with the destination's header.
	evt1, err := verbsPost(http.DefaultClient, base, "e1", "order.created")
	if err != nil {
		t.Fatal(err)
	}
	verbsWait(t, 10*time.Second, "the first event at the sink", func() bool { _, ok := sink.got(evt1); return ok })
	if team, _ := sink.got(evt1); team != "blue" {
		t.Errorf("X-Team of the first event: %q, want blue", team)
	}

	// get.
	verbsWait(t, 10*time.Second, "the destination to count the success", func() bool {
		out, _, code := run("", "destinations", "get", "orders", "-o", "json")
		var d struct{ Succeeded int }
		return code == 0 && json.Unmarshal([]byte(out), &d) == nil && d.Succeeded == 1
	})
	out, errOut, code = run("", "destinations", "get", "orders")
	if code != 0 {
		t.Fatalf("destinations get: exit %d: %s", code, errOut)
	}
	for _, want := range []string{"name:", "orders", "origin:", "api", "retry_policy:", "disabled:", "false",
		"definition:\n  {", `"url": "` + sink.srv.URL + `"`, `"X-Team": "blue"`} {
		if !strings.Contains(out, want) {
			t.Errorf("destinations get: no %q in\n%s", want, out)
		}
	}
	if !regexp.MustCompile(`(?m)^succeeded:\s+1$`).MatchString(out) {
		t.Errorf("destinations get: no succeeded: 1 in\n%s", out)
	}
	t.Logf("destinations get:\n%s", out)
	out, errOut, code = run("", "subscriptions", "get", subID)
	if code != 0 {
		t.Fatalf("subscriptions get: exit %d: %s", code, errOut)
	}
	for _, want := range []string{"id:", subID, "source:", "app", "destination:", "orders", "events:", "order.*", "active:", "true"} {
		if !strings.Contains(out, want) {
			t.Errorf("subscriptions get: no %q in\n%s", want, out)
		}
	}
	out, _, code = run("", "subscriptions", "get", subID, "-o", "json")
	var sub struct{ ID, Destination string }
	if err := json.Unmarshal([]byte(out), &sub); code != 0 || err != nil || sub.ID != subID || sub.Destination != "orders" {
		t.Errorf("subscriptions get -o json: exit %d, %v:\n%s", code, err, out)
	}

	// Update: the header changes for the next event.
	green := manageDest(sink.srv.URL, "green")
	delete(green, "name") // the path names it
	out, errOut, code = run("", "destinations", "update", "orders", "-f", manageFile(t, "green.json", green))
	if code != 0 || out != "updated orders\n" {
		t.Fatalf("destinations update: exit %d, stdout %q, stderr %q", code, out, errOut)
	}
	evt2, err := verbsPost(http.DefaultClient, base, "e2", "order.paid")
	if err != nil {
		t.Fatal(err)
	}
	verbsWait(t, 10*time.Second, "the second event at the sink", func() bool { _, ok := sink.got(evt2); return ok })
	if team, _ := sink.got(evt2); team != "green" {
		t.Errorf("X-Team of the second event: %q, want green", team)
	}
	out, _, _ = run("", "destinations", "get", "orders")
	if !strings.Contains(out, `"X-Team": "green"`) {
		t.Errorf("destinations get after update:\n%s", out)
	}
	// The subscription's update.
	out, errOut, code = run(`{"source": "app", "destination": "orders", "events": ["order.created", "order.paid"], "active": false}`,
		"subscriptions", "update", subID, "-f", "-")
	if code != 0 || out != "updated "+subID+"\n" {
		t.Fatalf("subscriptions update: exit %d, stdout %q, stderr %q", code, out, errOut)
	}
	out, _, _ = run("", "subscriptions", "list")
	if !regexp.MustCompile(`(?m)^` + subID + `\s+app\s+orders\s+order\.created,order\.paid\s+no\s+api$`).MatchString(out) {
		t.Errorf("subscriptions list after update:\n%s", out)
	}

	// enable on a destination that is not disabled.
	out, errOut, code = run("", "destinations", "enable", "orders")
	if code != 0 || out != "enabled orders\n" {
		t.Errorf("destinations enable: exit %d, stdout %q, stderr %q", code, out, errOut)
	}

	// 409: the destination is still used.
	out, errOut, code = run("", "destinations", "delete", "orders")
	want := fmt.Sprintf("error: destination \"orders\" is used by subscriptions %s; delete them first (conflict, HTTP 409)\n", subID)
	if code != 1 || out != "" || errOut != want {
		t.Errorf("destinations delete of a used destination: exit %d, stdout %q, stderr %q, want %q", code, out, errOut, want)
	}

	// Delete the subscription, then the destination.
	out, errOut, code = run("", "subscriptions", "delete", subID)
	if code != 0 || out != "deleted "+subID+"\n" {
		t.Fatalf("subscriptions delete: exit %d, stdout %q, stderr %q", code, out, errOut)
	}
	out, errOut, code = run("", "destinations", "delete", "orders")
	if code != 0 || out != "deleted orders\n" {
		t.Fatalf("destinations delete: exit %d, stdout %q, stderr %q", code, out, errOut)
	}
	out, _, code = run("", "destinations", "list")
	if code != 0 || strings.TrimSpace(out) != "NAME  TYPE  ORIGIN  ORDERING  CONCURRENCY  DISABLED  ATTEMPTS  SUCCEEDED  FAILED" {
		t.Errorf("destinations list after delete: exit %d:\n%s", code, out)
	}
	out, _, code = run("", "subscriptions", "list", "-o", "json")
	if err := json.Unmarshal([]byte(out), &subs); code != 0 || err != nil || len(subs.Data) != 0 {
		t.Errorf("subscriptions list -o json after delete: exit %d, %v:\n%s", code, err, out)
	}
	_, errOut, code = run("", "destinations", "get", "orders")
	if code != 1 || errOut != "error: no destination named \"orders\" (not_found, HTTP 404)\n" {
		t.Errorf("destinations get after delete: exit %d, stderr %q", code, errOut)
	}
	_, errOut, code = run("", "subscriptions", "delete", subID)
	if code != 1 || !strings.HasSuffix(errOut, "(not_found, HTTP 404)\n") {
		t.Errorf("subscriptions delete again: exit %d, stderr %q", code, errOut)
	}
}

func TestManageDestinationsErrors(t *testing.T) {
	base := startManageApp(t)
	conn := []string{"--server", base, "--token", verbsToken}
	run := func(stdin string, args ...string) (string, string, int) {
		t.Helper()
		return manageRun(t, stdin, append(args, conn...)...)
	}

	// 400: a URL the egress guard refuses.
	out, errOut, code := run(`{"name": "internal", "type": "http", "url": "https://10.0.0.5/"}`, "destinations", "create", "-f", "-")
	if code != 1 || out != "" || !strings.HasPrefix(errOut, "error: invalid destination internal: ") ||
		!strings.HasSuffix(errOut, " (invalid, HTTP 400)\n") || strings.Count(errOut, "\n") != 1 {
		t.Errorf("destinations create of a private URL: exit %d, stdout %q, stderr %q", code, out, errOut)
	}
	t.Logf("private URL: %s", errOut)
	out, _, _ = run("", "destinations", "list", "-o", "json")
	if !strings.Contains(out, `"data": []`) {
		t.Errorf("a refused destination was kept:\n%s", out)
	}

	// The file is checked before anything is sent.
	_, errOut, code = run("", "destinations", "create")
	if code != 1 || !strings.Contains(errOut, "error: -f FILE is required") {
		t.Errorf("destinations create without -f: exit %d, stderr %q", code, errOut)
	}
	_, errOut, code = run("{name:", "destinations", "create", "-f", "-")
	if code != 1 || !strings.HasPrefix(errOut, "error: stdin is not valid JSON: ") {
		t.Errorf("destinations create of bad JSON: exit %d, stderr %q", code, errOut)
	}
	_, errOut, code = run("", "subscriptions", "create", "-f", filepath.Join(t.TempDir(), "nope.json"))
	if code != 1 || !strings.HasPrefix(errOut, "error: open ") {
		t.Errorf("subscriptions create of a missing file: exit %d, stderr %q", code, errOut)
	}

	// The API's refusals.
	_, errOut, code = run(`{"destination": "nowhere"}`, "subscriptions", "create", "-f", "-")
	if code != 1 || errOut != "error: destination: no destination named \"nowhere\" (invalid, HTTP 400)\n" {
		t.Errorf("subscriptions create to nowhere: exit %d, stderr %q", code, errOut)
	}
	_, errOut, code = run(`{"type": "http", "url": "https://example.com/"}`, "destinations", "update", "nowhere", "-f", "-")
	if code != 1 || errOut != "error: no destination named \"nowhere\" (not_found, HTTP 404)\n" {
		t.Errorf("destinations update of nowhere: exit %d, stderr %q", code, errOut)
	}
	_, errOut, code = run("", "destinations", "enable", "nowhere")
	if code != 1 || errOut != "error: no destination named \"nowhere\" (not_found, HTTP 404)\n" {
		t.Errorf("destinations enable nowhere: exit %d, stderr %q", code, errOut)
	}
	_, errOut, code = manageRun(t, "", "destinations", "delete", "nowhere", "--server", base, "--token", "wrong")
	if code != 1 || errOut != "error: invalid admin token (unauthorized, HTTP 401)\n" {
		t.Errorf("destinations delete with a wrong token: exit %d, stderr %q", code, errOut)
	}
}

// The providers' shape creates the subscription and its http destination.
func TestManageSubscriptionsProvidersShape(t *testing.T) {
	sink := newManageSink(t)
	base := startManageApp(t)
	conn := []string{"--server", base, "--token", verbsToken}
	body := fmt.Sprintf(`{"active": true, "events": ["*"], "url": %q}`, sink.srv.URL)
	out, errOut, code := manageRun(t, body, append([]string{"subscriptions", "create", "-f", "-"}, conn...)...)
	if code != 0 || !regexp.MustCompile(`^sub_\S+\n$`).MatchString(out) {
		t.Fatalf("subscriptions create: exit %d, stdout %q, stderr %q", code, out, errOut)
	}
	subID := strings.TrimSpace(out)
	dest := "dest_" + strings.TrimPrefix(subID, "sub_")
	out, _, code = manageRun(t, "", append([]string{"destinations", "list"}, conn...)...)
	if code != 0 || !regexp.MustCompile(`(?m)^`+dest+`\s+http\s+api\s`).MatchString(out) {
		t.Errorf("destinations list: exit %d, want %s:\n%s", code, dest, out)
	}
	out, _, code = manageRun(t, "", append([]string{"subscriptions", "list"}, conn...)...)
	if code != 0 || !regexp.MustCompile(`(?m)^`+subID+`\s+\*\s+`+dest+`\s+\*\s+yes\s+api$`).MatchString(out) {
		t.Errorf("subscriptions list:\n%s", out)
	}
	evt, err := verbsPost(http.DefaultClient, base, "e1", "user.created")
	if err != nil {
		t.Fatal(err)
	}
	verbsWait(t, 10*time.Second, "the event at the sink", func() bool { _, ok := sink.got(evt); return ok })
}
