package cli

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"hookd/internal/config"
)

const verbsToken = "verbs-test-token"

// verbsSink is an HTTP destination that records the webhook-id of every
// request and answers status.
type verbsSink struct {
	srv    *httptest.Server
	status atomic.Int32
	mu     sync.Mutex
	got    map[string][]string // webhook-id → bodies, in arrival order
	total  int
}

func newVerbsSink(t *testing.T, status int) *verbsSink {
	t.Helper()
	s := &verbsSink{got: map[string][]string{}}
	s.status.Store(int32(status))
	s.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		s.mu.Lock()
		id := r.Header.Get("webhook-id")
		s.got[id] = append(s.got[id], string(b))
		s.total++
		s.mu.Unlock()
		w.WriteHeader(int(s.status.Load()))
	}))
	t.Cleanup(s.srv.Close)
	return s
}

// count returns how many requests carried webhook-id id.
func (s *verbsSink) count(id string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.got[id])
}

// atLeast returns how many of ids were received at least n times.
func (s *verbsSink) atLeast(ids []string, n int) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	k := 0
	for _, id := range ids {
		if len(s.got[id]) >= n {
			k++
		}
	}
	return k
}

// startVerbsApp runs hookd with source app routed to the sink and returns
// its base URL.
func startVerbsApp(t *testing.T, sinkURL string) string {
	t.Helper()
	// The environment must not choose the server or the token.
	t.Setenv(envServer, "")
	t.Setenv(envToken, "")
	yaml := fmt.Sprintf(`admin: {tokens: [%s]}
egress: {allow_private: ["127.0.0.0/8"]}
sources: [{name: app, event: {id: "json:id", type: "json:type"}}]
destinations: [{name: sink, type: http, url: %q, retry: {policy: schedule, schedule: ["1h"]}}]
subscriptions: [{source: app, destination: sink, events: ["*"]}]
`, verbsToken, sinkURL)
	cfg, err := config.Parse([]byte(yaml))
	if err != nil {
		t.Fatalf("config: %v", err)
	}
	cfg.Storage.Path = t.TempDir()
	_, base := startApp(t, cfg, nil)
	return base
}

// verbsPost sends one event to source app and returns hookd's event id.
func verbsPost(c *http.Client, base, extID, typ string) (string, error) {
	body := fmt.Sprintf(`{"id":%q,"type":%q}`, extID, typ)
	resp, err := c.Post(base+"/in/app", "application/json", strings.NewReader(body))
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("POST /in/app: HTTP %d: %s", resp.StatusCode, b)
	}
	var ans struct {
		ID string `json:"id"`
	}
	if err := json.Unmarshal(b, &ans); err != nil || !strings.HasPrefix(ans.ID, "evt_") {
		return "", fmt.Errorf("POST /in/app: answer %s", b)
	}
	return ans.ID, nil
}

// verbsAPI GETs an admin API path into v.
func verbsAPI(t *testing.T, base, path string, v any) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, base+path, nil)
	req.Header.Set("Authorization", "Bearer "+verbsToken)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: HTTP %d: %s", path, resp.StatusCode, b)
	}
	if err := json.Unmarshal(b, v); err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
}

// runCLI runs hookd with args and returns its stdout, stderr and exit
// code; stderr is written to errW as well when it is not nil.
func runCLI(t *testing.T, errW io.Writer, args ...string) (string, string, int) {
	t.Helper()
	var out, errb bytes.Buffer
	var stderr io.Writer = &errb
	if errW != nil {
		stderr = io.MultiWriter(&errb, errW)
	}
	root := NewRoot(&out, stderr)
	root.SetArgs(args)
	code := 0
	if err := root.Execute(); err != nil {
		var ee exitError
		if !errors.As(err, &ee) {
			fmt.Fprintln(&errb, "hookd:", err)
			code = 1
		} else {
			code = ee.code
		}
	}
	return out.String(), errb.String(), code
}

// waitFor polls cond every 20ms until it holds or timeout passes.
func verbsWait(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestEventsListAndGet(t *testing.T) {
	sink := newVerbsSink(t, http.StatusOK)
	base := startVerbsApp(t, sink.srv.URL)
	conn := []string{"--server", base, "--token", verbsToken}
	var ids []string
	for i, typ := range []string{"order.created", "order.paid", "order.shipped"} {
		id, err := verbsPost(http.DefaultClient, base, fmt.Sprintf("e%d", i+1), typ)
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, id)
	}

	out, errOut, code := runCLI(t, nil, append([]string{"events", "list"}, conn...)...)
	if code != 0 {
		t.Fatalf("events list: exit %d: %s", code, errOut)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 4 || !regexp.MustCompile(`^ID\s+SOURCE\s+TYPE\s+RECEIVED$`).MatchString(lines[0]) {
		t.Fatalf("events list: got\n%s\nwant a header and 3 rows", out)
	}
	// Newest first.
	for i, id := range []string{ids[2], ids[1], ids[0]} {
		if f := strings.Fields(lines[i+1]); len(f) != 4 || f[0] != id || f[1] != "app" {
			t.Errorf("events list row %d: %q, want %s of app", i+1, lines[i+1], id)
		}
	}
	if strings.Contains(out, "next:") {
		t.Errorf("events list: a next: line on the last page:\n%s", out)
	}

	// Paging.
	out, _, code = runCLI(t, nil, append([]string{"events", "list", "--limit", "2", "--type", "order.created", "--source", "app"}, conn...)...)
	if code != 0 || !strings.Contains(out, ids[0]) || strings.Contains(out, ids[1]) || strings.Contains(out, "next:") {
		t.Errorf("events list --type order.created: exit %d:\n%s", code, out)
	}
	out, _, code = runCLI(t, nil, append([]string{"events", "list", "--limit", "2"}, conn...)...)
	m := regexp.MustCompile(`(?m)^next: (\S+)$`).FindStringSubmatch(out)
	if code != 0 || m == nil || strings.Contains(out, ids[0]) {
		t.Fatalf("events list --limit 2: exit %d, want 2 rows and a next: line:\n%s", code, out)
	}
	out, _, code = runCLI(t, nil, append([]string{"events", "list", "--limit", "2", "--cursor", m[1]}, conn...)...)
	if code != 0 || !strings.Contains(out, ids[0]) || strings.Contains(out, ids[2]) {
		t.Errorf("events list --cursor: exit %d, want the oldest event:\n%s", code, out)
	}

	// JSON is the API's, without bodies.
	out, _, code = runCLI(t, nil, append([]string{"events", "list", "-o", "json"}, conn...)...)
	var page struct {
		Data       []map[string]any `json:"data"`
		NextCursor *string          `json:"next_cursor"`
	}
	if err := json.Unmarshal([]byte(out), &page); code != 0 || err != nil || len(page.Data) != 3 {
		t.Fatalf("events list -o json: exit %d, %v:\n%s", code, err, out)
	}
	if _, ok := page.Data[0]["body"]; ok || page.Data[0]["id"] != ids[2] || page.NextCursor != nil {
		t.Errorf("events list -o json: %v", page.Data[0])
	}
	if !strings.Contains(out, "\n  \"data\"") {
		t.Errorf("events list -o json: not indented:\n%s", out)
	}

	// get: fields, body, the delivery and its attempt.
	verbsWait(t, 10*time.Second, "the delivery to succeed", func() bool {
		var ds struct{ Data []map[string]any }
		verbsAPI(t, base, "/api/v1/deliveries?status=succeeded", &ds)
		return len(ds.Data) == 3
	})
	out, errOut, code = runCLI(t, nil, append([]string{"events", "get", ids[0]}, conn...)...)
	if code != 0 {
		t.Fatalf("events get: exit %d: %s", code, errOut)
	}
	for _, want := range []string{"id:", ids[0], "external_id:", "e1", "order.created", "body:", `{"id":"e1","type":"order.created"}`,
		"deliveries: 1", " sink ", "succeeded", "attempts: 1"} {
		if !strings.Contains(out, want) {
			t.Errorf("events get: no %q in\n%s", want, out)
		}
	}
	if !regexp.MustCompile(`(?m)^\s+1\s+\S+\s+[0-9.]+ms\s+200\s+-$`).MatchString(out) {
		t.Errorf("events get: no attempt 1 with status 200 in\n%s", out)
	}
	t.Logf("events get:\n%s", out)
	out, _, code = runCLI(t, nil, append([]string{"events", "get", ids[0], "-o", "json"}, conn...)...)
	var ev struct {
		ID         string `json:"id"`
		Body       string `json:"body"`
		Deliveries []struct {
			Status   string           `json:"status"`
			Attempts []map[string]any `json:"attempts"`
		} `json:"deliveries"`
	}
	if err := json.Unmarshal([]byte(out), &ev); code != 0 || err != nil || ev.ID != ids[0] || len(ev.Deliveries) != 1 || len(ev.Deliveries[0].Attempts) != 1 {
		t.Errorf("events get -o json: exit %d, %v:\n%s", code, err, out)
	}
}

func TestVerbsConnectionErrors(t *testing.T) {
	sink := newVerbsSink(t, http.StatusOK)
	base := startVerbsApp(t, sink.srv.URL)

	out, errOut, code := runCLI(t, nil, "events", "list", "--server", base)
	if code == 0 || out != "" || !strings.Contains(errOut, "error: an admin token is required") || !strings.Contains(errOut, envToken) {
		t.Errorf("no token: exit %d, stdout %q, stderr %q", code, out, errOut)
	}

	// The environment is read when the flags are not given.
	t.Setenv(envServer, base)
	t.Setenv(envToken, verbsToken)
	if out, errOut, code := runCLI(t, nil, "events", "list"); code != 0 || !strings.HasPrefix(out, "ID") {
		t.Errorf("token and server from the environment: exit %d: %s%s", code, out, errOut)
	}

	_, errOut, code = runCLI(t, nil, "deliveries", "list", "--token", "wrong")
	if code == 0 || errOut != "error: invalid admin token (unauthorized, HTTP 401)\n" {
		t.Errorf("wrong token: exit %d, stderr %q", code, errOut)
	}

	_, errOut, code = runCLI(t, nil, "deliveries", "get", "dlv_nope")
	if code != 1 || errOut != "error: not found (not_found, HTTP 404)\n" {
		t.Errorf("deliveries get dlv_nope: exit %d, stderr %q", code, errOut)
	}
	_, errOut, code = runCLI(t, nil, "deliveries", "list", "--status", "lost")
	if code != 1 || !strings.HasPrefix(errOut, `error: invalid status "lost"`) || !strings.HasSuffix(errOut, "(invalid, HTTP 400)\n") {
		t.Errorf("deliveries list --status lost: exit %d, stderr %q", code, errOut)
	}
	_, errOut, code = runCLI(t, nil, "events", "list", "-o", "yaml")
	if code != 1 || !strings.Contains(errOut, `invalid --output "yaml"`) {
		t.Errorf("-o yaml: exit %d, stderr %q", code, errOut)
	}

	// A server that is not there is named.
	dead := httptest.NewServer(http.NotFoundHandler())
	deadURL := dead.URL
	dead.Close()
	_, errOut, code = runCLI(t, nil, "events", "list", "--server", deadURL)
	if code != 1 || !strings.HasPrefix(errOut, "error: cannot reach hookd at "+deadURL+": ") {
		t.Errorf("dead server: exit %d, stderr %q", code, errOut)
	}
}

// The failed-event queue from the CLI: a delivery refused with 400 is
// failed, listed by deliveries list --status failed, and deliveries retry
// sends it again with the same webhook-id once the receiver is fixed.
func TestDeliveriesRetryAFailedDelivery(t *testing.T) {
	sink := newVerbsSink(t, http.StatusBadRequest)
	base := startVerbsApp(t, sink.srv.URL)
	conn := []string{"--server", base, "--token", verbsToken}
	evtID, err := verbsPost(http.DefaultClient, base, "e1", "order.created")
	if err != nil {
		t.Fatal(err)
	}

	var failed struct {
		Data []struct {
			ID      string `json:"id"`
			EventID string `json:"event_id"`
		} `json:"data"`
	}
	verbsWait(t, 10*time.Second, "the delivery to fail", func() bool {
		verbsAPI(t, base, "/api/v1/deliveries?status=failed", &failed)
		return len(failed.Data) > 0
	})
	if len(failed.Data) != 1 || failed.Data[0].EventID != evtID {
		t.Fatalf("failed deliveries: %+v, want one of %s", failed.Data, evtID)
	}
	dlvID := failed.Data[0].ID

	out, errOut, code := runCLI(t, nil, append([]string{"deliveries", "list", "--status", "failed"}, conn...)...)
	if code != 0 {
		t.Fatalf("deliveries list: exit %d: %s", code, errOut)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 2 || !regexp.MustCompile(`^ID\s+EVENT\s+DESTINATION\s+STATUS\s+ATTEMPTS\s+LAST$`).MatchString(lines[0]) {
		t.Fatalf("deliveries list --status failed:\n%s", out)
	}
	if f := strings.Fields(lines[1]); len(f) != 7 || f[0] != dlvID || f[1] != evtID || f[2] != "sink" || f[3] != "failed" || f[4] != "1" || f[5]+" "+f[6] != "HTTP 400" {
		t.Errorf("deliveries list row: %q", lines[1])
	}
	t.Logf("deliveries list --status failed:\n%s", out)
	out, _, code = runCLI(t, nil, append([]string{"deliveries", "list", "--status", "succeeded", "--event", evtID}, conn...)...)
	if code != 0 || strings.Contains(out, dlvID) {
		t.Errorf("deliveries list --status succeeded: exit %d:\n%s", code, out)
	}

	out, _, code = runCLI(t, nil, append([]string{"deliveries", "get", dlvID}, conn...)...)
	for _, want := range []string{"status:", "failed", "last_status_code:", "400", "attempts: 1"} {
		if code != 0 || !strings.Contains(out, want) {
			t.Errorf("deliveries get: exit %d, no %q in\n%s", code, want, out)
		}
	}

	// The receiver is fixed: retry.
	sink.status.Store(http.StatusOK)
	out, errOut, code = runCLI(t, nil, append([]string{"deliveries", "retry", dlvID}, conn...)...)
	if code != 0 || out != "queued "+dlvID+"\n" {
		t.Fatalf("deliveries retry: exit %d, stdout %q, stderr %q", code, out, errOut)
	}
	verbsWait(t, 10*time.Second, "the retry to reach the sink", func() bool { return sink.count(evtID) >= 2 })
	sink.mu.Lock()
	bodies, total := sink.got[evtID], sink.total
	sink.mu.Unlock()
	if total != 2 || len(bodies) != 2 || bodies[0] != bodies[1] {
		t.Errorf("sink: %d requests, %d with webhook-id %s (bodies %q), want 2 identical", total, len(bodies), evtID, bodies)
	}
	var d struct {
		Status   string           `json:"status"`
		Attempts []map[string]any `json:"attempts"`
	}
	verbsWait(t, 10*time.Second, "the delivery to succeed", func() bool {
		out, _, code := runCLI(t, nil, append([]string{"deliveries", "get", dlvID, "-o", "json"}, conn...)...)
		return code == 0 && json.Unmarshal([]byte(out), &d) == nil && d.Status == "succeeded"
	})
	if len(d.Attempts) != 2 {
		t.Errorf("attempts: %v, want 2", d.Attempts)
	}

	// Retrying what does not exist fails, after the rest is queued.
	out, errOut, code = runCLI(t, nil, append([]string{"deliveries", "retry", dlvID, "dlv_nope"}, conn...)...)
	if code != 1 || out != "queued "+dlvID+"\n" || errOut != "error: retry dlv_nope: not found (not_found, HTTP 404)\n" {
		t.Errorf("retry with an unknown id: exit %d, stdout %q, stderr %q", code, out, errOut)
	}
}

// A bulk replay of 10,000 events from the CLI, followed with the plain
// progress output of a non-terminal.
func TestReplayBulkWithProgress(t *testing.T) {
	n := 10000
	if testing.Short() {
		n = 500
	}
	sink := newVerbsSink(t, http.StatusOK)
	base := startVerbsApp(t, sink.srv.URL)
	conn := []string{"--server", base, "--token", verbsToken}

	start := time.Now()
	ids := make([]string, n)
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 16}}
	defer client.CloseIdleConnections()
	var wg sync.WaitGroup
	var next atomic.Int64
	errs := make(chan error, 16)
	for range 16 {
		wg.Go(func() {
			for {
				i := int(next.Add(1)) - 1
				if i >= n {
					return
				}
				id, err := verbsPost(client, base, fmt.Sprintf("e%d", i), "order.created")
				if err != nil {
					errs <- err
					return
				}
				ids[i] = id
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	t.Logf("published %d events in %v", n, time.Since(start))
	verbsWait(t, 120*time.Second, "the first delivery of every event", func() bool { return sink.atLeast(ids, 1) == n })
	// Deliveries being delivered are not queued again: wait until none is
	// left in flight.
	verbsWait(t, 30*time.Second, "every delivery to settle", func() bool {
		for _, s := range []string{"pending", "delivering", "retrying"} {
			var page struct{ Data []any }
			verbsAPI(t, base, "/api/v1/deliveries?limit=1&status="+s, &page)
			if len(page.Data) > 0 {
				return false
			}
		}
		return true
	})
	t.Logf("first deliveries done %v after the start", time.Since(start))

	var progress bytes.Buffer
	start = time.Now()
	out, errOut, code := runCLI(t, &progress, append([]string{"replay", "--source", "app"}, conn...)...)
	elapsed := time.Since(start)
	if code != 0 {
		t.Fatalf("replay: exit %d, stdout %q, stderr %q", code, out, errOut)
	}
	t.Logf("replay of %d events: %v", n, elapsed)
	m := regexp.MustCompile(`^replay (rpl_\S+): done, (\d+)/(\d+) processed, (\d+) deliveries queued\n$`).FindStringSubmatch(out)
	want := fmt.Sprint(n)
	if m == nil || m[2] != want || m[3] != want || m[4] != want {
		t.Fatalf("replay: stdout %q, want done with %d/%d processed and %d queued", out, n, n, n)
	}
	rid := m[1]
	text := progress.String()
	if strings.Contains(text, "\r") {
		t.Errorf("progress on a non-terminal has \\r: %q", text)
	}
	lines := strings.Split(strings.TrimSuffix(text, "\n"), "\n")
	line := regexp.MustCompile(`^replay ` + rid + `: (\d+/\d+ \(\d+%\)|counting… \d+ processed)$`)
	if len(lines) < 2 || !line.MatchString(lines[0]) {
		t.Errorf("progress: %q, want progress lines and the final line", text)
	}
	for _, l := range lines[:len(lines)-1] {
		if !line.MatchString(l) {
			t.Errorf("progress line %q", l)
		}
	}
	if final := fmt.Sprintf("replay %s: %d/%d (100%%) done", rid, n, n); lines[len(lines)-1] != final {
		t.Errorf("progress final line %q, want %q", lines[len(lines)-1], final)
	}
	t.Logf("progress:\n%s", text)

	deadline := time.Now().Add(120 * time.Second)
	for sink.atLeast(ids, 2) != n {
		if time.Now().After(deadline) {
			var dests, pending, delivering, succeeded any
			verbsAPI(t, base, "/api/v1/destinations", &dests)
			verbsAPI(t, base, "/api/v1/deliveries?limit=3&status=pending", &pending)
			verbsAPI(t, base, "/api/v1/deliveries?limit=3&status=delivering", &delivering)
			verbsAPI(t, base, "/api/v1/deliveries?limit=3&status=succeeded", &succeeded)
			t.Fatalf("not every event arrived a second time (%d of %d)\ndestinations %v\npending %v\ndelivering %v\nsucceeded %v", sink.atLeast(ids, 2), n, dests, pending, delivering, succeeded)
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Logf("every event delivered again %v after the replay started", time.Since(start))
}

func TestReplayNoWaitAndErrors(t *testing.T) {
	sink := newVerbsSink(t, http.StatusOK)
	base := startVerbsApp(t, sink.srv.URL)
	conn := []string{"--server", base, "--token", verbsToken}

	out, errOut, code := runCLI(t, nil, append([]string{"replay", "--status", "failed", "--no-wait"}, conn...)...)
	if code != 0 || !regexp.MustCompile(`^replay rpl_\S+: running\n$`).MatchString(out) {
		t.Errorf("replay --no-wait: exit %d, stdout %q, stderr %q", code, out, errOut)
	}
	out, errOut, code = runCLI(t, nil, append([]string{"replay", "--status", "failed", "-o", "json"}, conn...)...)
	var job struct {
		ID    string `json:"id"`
		State string `json:"state"`
		Total int    `json:"total"`
	}
	if err := json.Unmarshal([]byte(out), &job); code != 0 || err != nil || job.State != "done" || job.Total != 0 {
		t.Errorf("replay of nothing -o json: exit %d, %v, stdout %q, stderr %q", code, err, out, errOut)
	}
	if !strings.HasSuffix(errOut, "0/0 (100%) done\n") {
		t.Errorf("replay of nothing: progress %q", errOut)
	}
	_, errOut, code = runCLI(t, nil, append([]string{"replay", "--destination", "nowhere"}, conn...)...)
	if code != 1 || !strings.HasPrefix(errOut, "error: ") || !strings.Contains(errOut, "HTTP 404)") {
		t.Errorf("replay --destination nowhere: exit %d, stderr %q", code, errOut)
	}
	_, errOut, code = runCLI(t, nil, append([]string{"replay", "--since", "yesterday"}, conn...)...)
	if code != 1 || !strings.Contains(errOut, "(invalid, HTTP 400)") {
		t.Errorf("replay --since yesterday: exit %d, stderr %q", code, errOut)
	}
}

func TestProgress(t *testing.T) {
	clock := time.Unix(0, 0)
	var buf bytes.Buffer
	p := newProgress(&buf, "replay r")
	p.now = func() time.Time { return clock }
	if p.tty {
		t.Fatal("a buffer is a terminal")
	}
	p.update(0, 0)
	p.update(10, 100) // within the second: not shown
	clock = clock.Add(time.Second)
	p.update(52, 100)
	p.finish(100, 100, "done")
	if want := "replay r: counting… 0 processed\nreplay r: 52/100 (52%)\nreplay r: 100/100 (100%) done\n"; buf.String() != want {
		t.Errorf("plain progress:\n%q\nwant\n%q", buf.String(), want)
	}

	buf.Reset()
	p = newProgress(&buf, "r")
	p.tty, p.width = true, 10
	p.update(0, 0)
	p.update(5200, 10000)
	p.update(5200, 10000) // unchanged: not redrawn
	p.update(20000, 10000)
	p.finish(0, 0, "done")
	want := "\rr [..........]   0% 0/0" + "\rr [#####.....]  52% 5200/10000" + "\rr [##########] 100% 20000/10000" + "\rr [##########] 100% 0/0 done\n"
	if buf.String() != want {
		t.Errorf("terminal progress:\n%q\nwant\n%q", buf.String(), want)
	}
}

// hookd deliveries cancel takes a failed delivery out of the failed queue;
// it stays cancelled (not attempted again) until someone retries it, and
// only failed deliveries can be cancelled.
func TestDeliveriesCancelAFailedDelivery(t *testing.T) {
	sink := newVerbsSink(t, http.StatusBadRequest)
	base := startVerbsApp(t, sink.srv.URL)
	conn := []string{"--server", base, "--token", verbsToken}
	evtID, err := verbsPost(http.DefaultClient, base, "c1", "order.created")
	if err != nil {
		t.Fatal(err)
	}
	var list struct {
		Data []struct {
			ID     string `json:"id"`
			Status string `json:"status"`
			Reason string `json:"reason"`
		} `json:"data"`
	}
	verbsWait(t, 10*time.Second, "the delivery to fail", func() bool {
		verbsAPI(t, base, "/api/v1/deliveries?status=failed", &list)
		return len(list.Data) == 1
	})
	dlvID := list.Data[0].ID

	for range 2 { // the second time changes nothing
		out, errOut, code := runCLI(t, nil, append([]string{"deliveries", "cancel", dlvID}, conn...)...)
		if code != 0 || out != "cancelled "+dlvID+"\n" {
			t.Fatalf("deliveries cancel: exit %d, stdout %q, stderr %q", code, out, errOut)
		}
	}
	verbsAPI(t, base, "/api/v1/deliveries?status=failed", &list)
	if len(list.Data) != 0 {
		t.Fatalf("failed queue after cancel: %+v, want empty", list.Data)
	}
	verbsAPI(t, base, "/api/v1/deliveries?status=cancelled", &list)
	if len(list.Data) != 1 || list.Data[0].ID != dlvID || list.Data[0].Reason != "cancelled by an operator" {
		t.Fatalf("cancelled deliveries: %+v", list.Data)
	}
	time.Sleep(100 * time.Millisecond)
	if n := sink.count(evtID); n != 1 {
		t.Fatalf("sink got the cancelled event %d times, want 1", n)
	}

	// Retried on purpose, it is sent again; a succeeded one cannot be
	// cancelled.
	sink.status.Store(http.StatusOK)
	if _, errOut, code := runCLI(t, nil, append([]string{"deliveries", "retry", dlvID}, conn...)...); code != 0 {
		t.Fatalf("retry of a cancelled delivery: exit %d: %s", code, errOut)
	}
	verbsWait(t, 10*time.Second, "the retry to succeed", func() bool {
		verbsAPI(t, base, "/api/v1/deliveries?status=succeeded", &list)
		return len(list.Data) == 1
	})
	_, errOut, code := runCLI(t, nil, append([]string{"deliveries", "cancel", dlvID}, conn...)...)
	if code != 1 || !strings.Contains(errOut, "only failed deliveries can be cancelled") {
		t.Fatalf("cancel of a succeeded delivery: exit %d, stderr %q", code, errOut)
	}
	if _, errOut, code := runCLI(t, nil, append([]string{"deliveries", "cancel", "dlv_nope"}, conn...)...); code != 1 || !strings.Contains(errOut, "no delivery") {
		t.Fatalf("cancel of an unknown delivery: exit %d, stderr %q", code, errOut)
	}
}
