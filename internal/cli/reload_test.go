package cli

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"hookd/internal/config"
	"hookd/internal/secret"
)

// idSink is an HTTP destination that records the event id (webhook-id) of
// every delivery.
type idSink struct {
	srv *httptest.Server
	mu  sync.Mutex
	got map[string]int
}

func newIDSink(t *testing.T) *idSink {
	s := &idSink{got: map[string]int{}}
	s.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		s.mu.Lock()
		s.got[r.Header.Get("webhook-id")]++
		s.mu.Unlock()
	}))
	t.Cleanup(s.srv.Close)
	return s
}

func (s *idSink) has(id string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.got[id] > 0
}

func (s *idSink) count() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.got)
}

// logCount counts the occurrences of s in a log (logBuffer, tls_test.go).
func logCount(l *logBuffer, s string) int { return strings.Count(l.String(), s) }

// reloadLoad posts events to some sources without pause until stopped,
// counting the answers that are not 2xx.
type reloadLoad struct {
	base    string
	sources atomic.Pointer[[]string]
	sent    atomic.Int64
	refused atomic.Int64
	mu      sync.Mutex
	acked   []ackedEvent
	errs    []string
	stop    chan struct{}
	done    sync.WaitGroup
}

type ackedEvent struct {
	id, source string
	at         time.Time
}

func startReloadLoad(base string, workers int, sources ...string) *reloadLoad {
	l := &reloadLoad{base: base, stop: make(chan struct{})}
	l.sources.Store(&sources)
	for w := range workers {
		l.done.Add(1)
		go func() {
			defer l.done.Done()
			for i := 0; ; i++ {
				select {
				case <-l.stop:
					return
				default:
				}
				srcs := *l.sources.Load()
				src := srcs[i%len(srcs)]
				body := fmt.Sprintf(`{"id":"w%d-%d","type":"t"}`, w, i)
				resp, err := http.Post(l.base+"/in/"+src, "application/json", strings.NewReader(body))
				l.sent.Add(1)
				if err != nil {
					l.refused.Add(1)
					l.mu.Lock()
					l.errs = append(l.errs, err.Error())
					l.mu.Unlock()
					continue
				}
				var m struct {
					ID string `json:"id"`
				}
				json.NewDecoder(resp.Body).Decode(&m)
				resp.Body.Close()
				if resp.StatusCode < 200 || resp.StatusCode > 299 {
					l.refused.Add(1)
					l.mu.Lock()
					l.errs = append(l.errs, fmt.Sprintf("POST /in/%s: %d", src, resp.StatusCode))
					l.mu.Unlock()
					continue
				}
				l.mu.Lock()
				l.acked = append(l.acked, ackedEvent{id: m.ID, source: src, at: time.Now()})
				l.mu.Unlock()
			}
		}()
	}
	return l
}

func (l *reloadLoad) end() {
	close(l.stop)
	l.done.Wait()
}

func (l *reloadLoad) events() []ackedEvent {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]ackedEvent(nil), l.acked...)
}

// acks counts the events of source acknowledged so far.
func (l *reloadLoad) acks(source string) int {
	n := 0
	for _, e := range l.events() {
		if e.source == source {
			n++
		}
	}
	return n
}

const reloadToken = "reload-test-admin-token-0123"

const reloadConfigV1 = `admin: {tokens: [reload-test-admin-token-0123]}
egress: {allow_private: ["127.0.0.0/8"]}
sources:
  - {name: orders, event: {id: "json:id", type: "json:type"}}
destinations:
  - {name: out, type: http, url: "%s", retry: {max_attempts: 20, base: 10ms, cap: 100ms}}
subscriptions:
  - {source: orders, destination: out}
`

// The file as reloaded: a new source, its subscription, and the
// destination's URL changed.
const reloadConfigV2 = `admin: {tokens: [reload-test-admin-token-0123]}
egress: {allow_private: ["127.0.0.0/8"]}
sources:
  - {name: orders, event: {id: "json:id", type: "json:type"}, max_body: 512KiB}
  - {name: invoices, event: {id: "json:id", type: "json:type"}}
destinations:
  - {name: out, type: http, url: "%s", retry: {max_attempts: 20, base: 10ms, cap: 100ms}}
subscriptions:
  - {source: orders, destination: out}
  - {source: invoices, destination: out}
`

// startReloadApp runs the file at path in-process, as hookd serve
// --config path does, its log in the returned buffer.
func startReloadApp(t *testing.T, path string) (*App, string, *logBuffer) {
	t.Helper()
	dir := t.TempDir()
	load := func() (*config.Config, error) {
		cfg, err := config.Load(path)
		if err != nil {
			return nil, err
		}
		cfg.Storage.Path, cfg.Listen = dir, "127.0.0.1:0"
		return cfg, nil
	}
	cfg, err := load()
	if err != nil {
		t.Fatal(err)
	}
	logs := &logBuffer{}
	app, base := startAppWith(t, cfg, func(a *App) {
		a.log = slog.New(slog.NewTextHandler(logs, nil))
		a.SetConfigFile(path, load)
	})
	return app, base, logs
}

func writeFile(t *testing.T, path, s string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(s), 0o600); err != nil {
		t.Fatal(err)
	}
}

// runReload runs hookd reload against base and returns its exit code and
// output.
func runReload(base string) (int, string, string) {
	var out, errOut bytes.Buffer
	code := Main([]string{"reload", "--server", base, "--token", reloadToken}, &out, &errOut)
	return code, out.String(), errOut.String()
}

// While a client sends events without pause, SIGHUP after an edit of the
// file adds a source (which then takes events, delivered) and moves a
// destination to a new URL (what is acknowledged from then on is delivered
// there), with no request refused; then a file with a YAML error, and one
// with an unknown verify type, are refused with the reason (log, hookd
// reload) and the running configuration keeps serving, unchanged.
func TestReloadOnSIGHUPWhileServing(t *testing.T) {
	// Not parallel: the test signals its own process.
	oldSink, newSink := newIDSink(t), newIDSink(t)
	path := filepath.Join(t.TempDir(), "hookd.yaml")
	writeFile(t, path, fmt.Sprintf(reloadConfigV1, oldSink.srv.URL))
	app, base, logs := startReloadApp(t, path)
	stop := make(chan struct{})
	defer close(stop)
	app.watchHangup(stop)
	hup := func() {
		t.Helper()
		if err := syscall.Kill(os.Getpid(), syscall.SIGHUP); err != nil {
			t.Fatal(err)
		}
	}

	load := startReloadLoad(base, 4, "orders")
	defer load.end()
	waitFor(t, 10*time.Second, "events delivered to the first URL", func() bool { return oldSink.count() >= 200 })

	// The edit: a source added, the destination moved.
	writeFile(t, path, fmt.Sprintf(reloadConfigV2, newSink.srv.URL))
	hup()
	waitFor(t, 20*time.Second, "the reload's log line", func() bool { return logCount(logs, "msg=\"configuration reloaded\"") == 1 })
	reloadedAt := time.Now()
	for _, want := range []string{"source invoices added", "source orders changed", "destination out changed"} {
		if !strings.Contains(logs.String(), want) {
			t.Errorf("reload log: want %q; got\n%s", want, logs)
		}
	}
	load.sources.Store(&[]string{"orders", "invoices"})
	waitFor(t, 10*time.Second, "events acknowledged by the new source", func() bool { return load.acks("invoices") >= 100 })

	// A YAML error, then an unknown verify type: refused, with the reason.
	writeFile(t, path, "sources:\n  - name: orders\n   verify: [\n")
	hup()
	waitFor(t, 10*time.Second, "the refusal of the YAML error", func() bool { return logCount(logs, "configuration reload refused") == 1 })
	if !strings.Contains(logs.String(), "yaml") {
		t.Errorf("refusal log: want the YAML error; got\n%s", logs)
	}
	code, _, stderr := runReload(base)
	t.Logf("refused: %s", strings.TrimSpace(stderr))
	if code != 1 || !strings.Contains(stderr, "yaml: line") || !strings.Contains(stderr, "invalid") {
		t.Errorf("hookd reload of a YAML error: exit %d, stderr %q; want 1 and the YAML error", code, stderr)
	}
	bad := strings.Replace(fmt.Sprintf(reloadConfigV2, newSink.srv.URL), "{name: invoices,", "{name: invoices, verify: [{type: no_such_method}],", 1)
	writeFile(t, path, bad)
	code, _, stderr = runReload(base)
	if code != 1 || !strings.Contains(stderr, "no_such_method") {
		t.Errorf("hookd reload of an unknown verify type: exit %d, stderr %q; want 1 and the type named", code, stderr)
	}
	t.Logf("refused: %s", strings.TrimSpace(stderr))
	hup()
	waitFor(t, 10*time.Second, "the refusal of the unknown verify type", func() bool { return logCount(logs, "configuration reload refused") == 4 })

	// The running configuration still serves: both sources take events
	// (invoices still without verification), delivered to the new URL.
	before := load.acks("invoices")
	waitFor(t, 10*time.Second, "more events at the new source", func() bool { return load.acks("invoices") >= before+100 })
	load.end()
	load.stop = make(chan struct{}) // end is deferred too
	acked := load.events()
	var after []string
	for _, e := range acked {
		if e.at.After(reloadedAt) {
			after = append(after, e.id)
		}
	}
	missing := func() []string {
		var out []string
		for _, id := range after {
			if !newSink.has(id) {
				out = append(out, id)
			}
		}
		return out
	}
	deadline := time.Now().Add(30 * time.Second)
	for len(missing()) > 0 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if m := missing(); len(m) > 0 {
		_, ev := apiDo(t, "GET", base+"/api/v1/events/"+m[0], reloadToken, "")
		_, dest := apiDo(t, "GET", base+"/api/v1/destinations/out", reloadToken, "")
		t.Fatalf("%d of %d events acknowledged after the reload not at the new URL; the first: %v\ndestination: %v\nlog:\n%s", len(m), len(after), ev["deliveries"], dest, logs)
	}
	for _, id := range after {
		if oldSink.has(id) {
			t.Errorf("event %s, acknowledged after the reload, was delivered to the old URL", id)
		}
	}
	undelivered := func() []string {
		var out []string
		for _, e := range acked {
			if !newSink.has(e.id) && !oldSink.has(e.id) {
				out = append(out, e.id)
			}
		}
		return out
	}
	deadline = time.Now().Add(30 * time.Second)
	for len(undelivered()) > 0 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if m := undelivered(); len(m) > 0 {
		_, ev := apiDo(t, "GET", base+"/api/v1/events/"+m[0], reloadToken, "")
		t.Fatalf("%d of %d acknowledged events delivered nowhere; the first: %v\nlog:\n%s", len(m), len(acked), ev["deliveries"], logs)
	}
	if n := load.refused.Load(); n != 0 {
		load.mu.Lock()
		t.Errorf("requests refused during the reloads: %d of %d (%v)", n, load.sent.Load(), load.errs[:min(5, len(load.errs))])
		load.mu.Unlock()
	}
	t.Logf("sent %d requests, non-2xx %d; %d after the reload, all at the new URL", load.sent.Load(), load.refused.Load(), len(after))
}

// hookd reload reports what changed and the keys that need a restart,
// which keep their running values; without a file there is nothing to
// reload.
func TestReloadVerbReportsRestartKeys(t *testing.T) {
	t.Parallel()
	sink := newIDSink(t)
	path := filepath.Join(t.TempDir(), "hookd.yaml")
	v1 := fmt.Sprintf(reloadConfigV1, sink.srv.URL)
	writeFile(t, path, v1)
	_, base, _ := startReloadApp(t, path)

	code, out, stderr := runReload(base)
	if code != 0 || !strings.Contains(out, "no definition or limit changed") {
		t.Fatalf("hookd reload of the same file: exit %d, out %q, stderr %q", code, out, stderr)
	}
	writeFile(t, path, v1+"server: {max_in_flight: 7}\nlimits: {max_sources: 1}\nretention: {events: 2000h}\n")
	code, out, stderr = runReload(base)
	for _, want := range []string{"limits changed", "server.max_in_flight: needs a restart", "retention.events: needs a restart"} {
		if code != 0 || !strings.Contains(out, want) {
			t.Errorf("hookd reload: exit %d, out %q, stderr %q; want %q", code, out, stderr, want)
		}
	}
	// The new limit is in force: the file's source is the one allowed.
	if st, body := apiDo(t, "POST", base+"/api/v1/sources", reloadToken, `{"name":"extra"}`); st != http.StatusConflict || !strings.Contains(fmt.Sprint(body), "limits.max_sources") {
		t.Errorf("create a source beyond the reloaded limit: %d %v; want 409 naming limits.max_sources", st, body)
	}

	// The embedded default has no file.
	cfg := config.Default()
	cfg.Admin.Tokens = []string{reloadToken}
	cfg.Storage.Path = t.TempDir()
	_, plain := startApp(t, cfg, nil)
	if st, body := apiDo(t, "POST", plain+"/api/v1/reload", reloadToken, ""); st != http.StatusConflict || !strings.Contains(fmt.Sprint(body), "--config") {
		t.Errorf("POST /api/v1/reload without a file: %d %v, want 409 saying there is no --config", st, body)
	}
}

// replicaConfig is a replica's file on the schema of dsn; extra adds
// sources.
const replicaConfig = `admin: {tokens: [reload-test-admin-token-0123]}
egress: {allow_private: ["127.0.0.0/8"]}
storage: {driver: postgres, dsn: %q}
secrets: {master_keys: [%q]}
cluster: {reconcile: 1h}
sources:
  - {name: shop, event: {id: "json:id", type: "json:type"}}
%s`

// On PostgreSQL, a reload asked of one replica makes every other replica
// read its own file: a source added to both files is served by the second
// within a second of the first's reload, without a reconciliation (an hour
// away) or a signal to it.
func TestReloadReachesTheOtherReplicas(t *testing.T) {
	dsn := testPostgresDSN(t)
	key := secret.GenerateMasterKey("kpg")
	var apps []*App
	var bases []string
	var paths []string
	var logs []*logBuffer
	for range 2 {
		path := filepath.Join(t.TempDir(), "hookd.yaml")
		writeFile(t, path, fmt.Sprintf(replicaConfig, dsn, key, ""))
		app, base, l := startReloadApp(t, path)
		apps, bases, paths, logs = append(apps, app), append(bases, base), append(paths, path), append(logs, l)
	}
	defer func() {
		if t.Failed() {
			t.Logf("logs:\n%s\n%s", logs[0], logs[1])
		}
	}()
	if code, _ := post(t, bases[1], "added", `{"id":"a0","type":"t"}`); code != http.StatusNotFound {
		t.Fatalf("post to a source not yet defined: %d, want 404", code)
	}
	for _, p := range paths {
		writeFile(t, p, fmt.Sprintf(replicaConfig, dsn, key, "  - {name: added, event: {id: \"json:id\", type: \"json:type\"}}\n"))
	}
	code, out, stderr := runReload(bases[0])
	if code != 0 || !strings.Contains(out, "source added added") {
		t.Fatalf("hookd reload at the first replica: exit %d, out %q, stderr %q", code, out, stderr)
	}
	reloaded := time.Now()
	within(t, reloaded, propagation, "the source added at the second replica", func() bool {
		code, _ := post(t, bases[1], "added", `{"id":"a1","type":"t"}`)
		return code == http.StatusOK
	})
}

// A reload keeps the contract between the file and the API: a definition
// of the file wins over an API one of the same name, which is served again
// once the file drops the name; and a file that removes a destination a
// subscription created through the API uses is refused, changing nothing.
func TestReloadKeepsTheAPIsDefinitions(t *testing.T) {
	t.Parallel()
	sink, other := newIDSink(t), newIDSink(t)
	path := filepath.Join(t.TempDir(), "hookd.yaml")
	v1 := fmt.Sprintf(reloadConfigV1, sink.srv.URL)
	writeFile(t, path, v1)
	_, base, _ := startReloadApp(t, path)
	origin := func(name string) string {
		_, m := apiDo(t, "GET", base+"/api/v1/destinations/"+name, reloadToken, "")
		o, _ := m["origin"].(string)
		return o
	}
	if st, m := apiDo(t, "POST", base+"/api/v1/destinations", reloadToken, fmt.Sprintf(`{"name":"shared","type":"http","url":%q}`, other.srv.URL)); st != 201 {
		t.Fatalf("create destination shared: %d %v", st, m)
	}
	st, m := apiDo(t, "POST", base+"/api/v1/subscriptions", reloadToken, `{"source":"orders","destination":"out"}`)
	if st != 201 {
		t.Fatalf("create a subscription to the file's destination: %d %v", st, m)
	}
	sub := m["id"].(string)

	// The file defines shared too: its definition is used.
	withShared := v1 + fmt.Sprintf("  - {name: shared, type: http, url: %q}\n", sink.srv.URL)
	withShared = strings.Replace(withShared, "subscriptions:\n", "", 1)
	withShared = strings.Replace(withShared, "  - {source: orders, destination: out}\n", "", 1) + "subscriptions:\n  - {source: orders, destination: out}\n"
	writeFile(t, path, withShared)
	if code, out, stderr := runReload(base); code != 0 || !strings.Contains(out, "destination shared added") || origin("shared") != "config" {
		t.Fatalf("reload defining shared: exit %d, out %q, stderr %q, origin %q; want it added from the file", code, out, stderr, origin("shared"))
	}
	// Dropped from the file: the API's definition is served again.
	writeFile(t, path, v1)
	if code, out, stderr := runReload(base); code != 0 || !strings.Contains(out, "destination shared removed") || origin("shared") != "api" {
		t.Fatalf("reload dropping shared: exit %d, out %q, stderr %q, origin %q; want the API's definition back", code, out, stderr, origin("shared"))
	}

	// The file drops out, which the API's subscription uses: refused.
	noOut := strings.Replace(strings.Replace(v1, fmt.Sprintf("  - {name: out, type: http, url: \"%s\", retry: {max_attempts: 20, base: 10ms, cap: 100ms}}\n", sink.srv.URL), "", 1),
		"  - {source: orders, destination: out}\n", "", 1)
	noOut = strings.Replace(strings.Replace(noOut, "destinations:\n", "", 1), "subscriptions:\n", "", 1)
	writeFile(t, path, noOut)
	code, out, stderr := runReload(base)
	if code != 1 || !strings.Contains(stderr, "destination out is used by subscription "+sub) || origin("out") != "config" {
		t.Fatalf("reload dropping a destination an API subscription uses: exit %d, out %q, stderr %q, origin %q; want refused, out kept", code, out, stderr, origin("out"))
	}
	// Still delivered by the running configuration.
	id := postEvent(t, base, "orders", `{"id":"after-refusal","type":"t"}`)
	waitFor(t, 10*time.Second, "the event delivered through out", func() bool { return sink.has(id) })
}
