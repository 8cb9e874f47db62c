package cli

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"hookd/internal/config"
)

// runApp runs cfg in-process on 127.0.0.1:0 until the returned stop is
// called (at the latest at cleanup).
func runApp(t *testing.T, cfg *config.Config) (base string, stop func()) {
	t.Helper()
	cfg.Listen = "127.0.0.1:0"
	app := NewApp(cfg, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err := app.Open(context.Background()); err != nil {
		t.Fatalf("open: %v", err)
	}
	served := make(chan error, 1)
	go func() { served <- app.Serve() }()
	stopped := false
	stop = func() {
		if stopped {
			return
		}
		stopped = true
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := app.Shutdown(ctx); err != nil {
			t.Errorf("shutdown: %v", err)
		}
		if err := <-served; err != nil {
			t.Errorf("serve: %v", err)
		}
	}
	t.Cleanup(stop)
	return "http://" + app.Addr(), stop
}

// eventCount answers how many events the admin API lists for source.
func eventCount(t *testing.T, base, source string) int {
	t.Helper()
	code, m := apiDo(t, "GET", base+"/api/v1/events?source="+source+"&body=false", "tok", "")
	if code != 200 {
		t.Fatalf("list events: %d %v", code, m)
	}
	data, _ := m["data"].([]any)
	return len(data)
}

// A body nested millions of levels deep, on a source whose json selector
// must read it, is refused with 400 and a clear message, and hookd stays
// up (it used to die of a stack overflow in the JSON validator).
func TestDeepJSONBodyWithSelectorIsRefused(t *testing.T) {
	cfg, err := config.Parse([]byte(`
admin: {tokens: [tok]}
sources:
  - name: deep
    max_body: 8MiB
    event: {id: "json:id", type: "json:type"}
`))
	if err != nil {
		t.Fatal(err)
	}
	cfg.Storage.Path = t.TempDir()
	base, _ := runApp(t, cfg)

	body := bytes.Repeat([]byte("["), 6<<20)
	resp, err := http.Post(base+"/in/deep", "application/json", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	msg, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadRequest || !strings.Contains(string(msg), "nested deeper than 128 levels") {
		t.Fatalf("deep body: got %d %s, want 400 naming the depth limit", resp.StatusCode, msg)
	}
	// Still up, and still taking ordinary events.
	postEvent(t, base, "deep", `{"id":"e1","type":"ok"}`)
	if n := eventCount(t, base, "deep"); n != 1 {
		t.Errorf("events stored: got %d, want 1 (only the ordinary one)", n)
	}
}

// A source that only stores the body stores a deep one; routing treats it
// as matching no body filter (without crashing), other subscriptions still
// get it, and a restart on the same data is fine.
func TestDeepJSONBodyIsStoredAndMatchesNoFilter(t *testing.T) {
	sink := newHookSink(t)
	dir := t.TempDir()
	yml := fmt.Sprintf(`
admin: {tokens: [tok]}
egress: {allow_private: ["127.0.0.0/8"]}
sources:
  - name: plain
    max_body: 8MiB
destinations:
  - {name: all, type: http, url: %q}
  - {name: filtered, type: http, url: %q}
subscriptions:
  - {source: plain, destination: all}
  - {source: plain, destination: filtered, filter: {path: missing, op: exists, value: false}}
`, sink.srv.URL, sink.srv.URL)
	open := func() (string, func()) {
		cfg, err := config.Parse([]byte(yml))
		if err != nil {
			t.Fatal(err)
		}
		cfg.Storage.Path = dir
		return runApp(t, cfg)
	}
	base, stop := open()

	deep := strings.Repeat("[", 6<<20)
	id := postEvent(t, base, "plain", deep)
	deliveries := func(base string) map[string]string {
		code, m := apiDo(t, "GET", base+"/api/v1/deliveries?event_id="+id, "tok", "")
		if code != 200 {
			t.Fatalf("list deliveries: %d %v", code, m)
		}
		out := map[string]string{}
		data, _ := m["data"].([]any)
		for _, d := range data {
			d, _ := d.(map[string]any)
			out[fmt.Sprint(d["destination"])] = fmt.Sprint(d["status"])
		}
		return out
	}
	deadline := time.Now().Add(30 * time.Second)
	for deliveries(base)["all"] != "succeeded" {
		if time.Now().After(deadline) {
			t.Fatalf("delivery to all: got %v, want succeeded", deliveries(base))
		}
		time.Sleep(20 * time.Millisecond)
	}
	// An ordinary event after it shows that routing went past it: by the
	// time that one is delivered, the deep one was routed.
	id2 := postEvent(t, base, "plain", `{"n":1}`)
	waitDelivered := func(base, id, dest string) {
		deadline := time.Now().Add(30 * time.Second)
		for {
			code, m := apiDo(t, "GET", base+"/api/v1/deliveries?event_id="+id+"&destination="+dest, "tok", "")
			data, _ := m["data"].([]any)
			if code == 200 && len(data) == 1 && data[0].(map[string]any)["status"] == "succeeded" {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("delivery of %s to %s: got %d %v, want succeeded", id, dest, code, m)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	waitDelivered(base, id2, "filtered")
	if got := deliveries(base); len(got) != 1 {
		t.Errorf("deliveries of the deep event: got %v, want only all", got)
	}
	var ev map[string]any
	if code, m := apiDo(t, "GET", base+"/api/v1/events/"+id, "tok", ""); code != 200 {
		t.Fatalf("get event: %d %v", code, m)
	} else {
		ev = m
	}
	if b, _ := ev["body"].(string); len(b) != len(deep) {
		t.Errorf("stored body: got %d bytes, want %d", len(b), len(deep))
	}
	stop()

	// A new process on the same data opens and serves.
	base, _ = open()
	if got := deliveries(base); len(got) != 1 || got["all"] != "succeeded" {
		t.Errorf("deliveries after restart: got %v, want all succeeded only", got)
	}
	id3 := postEvent(t, base, "plain", `{"n":2}`)
	waitDelivered(base, id3, "filtered")

}

// An admin API body nested beyond 128 levels is refused with 400 and a
// message naming the limit, before it is decoded.
func TestDeepJSONAdminBodyIsRefused(t *testing.T) {
	cfg, err := config.Parse([]byte("admin: {tokens: [tok]}\n"))
	if err != nil {
		t.Fatal(err)
	}
	cfg.Storage.Path = t.TempDir()
	base, _ := runApp(t, cfg)
	deep := strings.Repeat("[", 129) + strings.Repeat("]", 129)
	for path, body := range map[string]string{
		"/api/v1/destinations":  `{"name":"d","type":"http","url":"https://hooks.example/h","x":` + deep + `}`,
		"/api/v1/subscriptions": `{"destination":"d","filter":` + deep + `}`,
		"/api/v1/replays":       `{"source":` + deep + `}`,
	} {
		code, m := apiDo(t, "POST", base+path, "tok", body)
		e, _ := m["error"].(map[string]any)
		if msg, _ := e["message"].(string); code != http.StatusBadRequest || !strings.Contains(msg, "JSON nested deeper than 128 levels") {
			t.Errorf("POST %s: got %d %v, want 400 naming the depth limit", path, code, m)
		}
	}
	if code, m := apiDo(t, "POST", base+"/api/v1/replays", "tok", strings.Repeat("[", 100000)); code != http.StatusBadRequest {
		t.Errorf("POST a body of 100000 '[': got %d %v, want 400", code, m)
	}
}

// Eight deep bodies at once, at the default 1 MiB limit, cost little
// memory: no parser recurses through them (each used to grow a goroutine
// stack by about 170 MiB). Sys, the memory the runtime took from the
// system, never shrinks, so it records the peak.
func TestDeepJSONBodiesKeepMemoryBounded(t *testing.T) {
	sink := newHookSink(t)
	cfg, err := config.Parse([]byte(fmt.Sprintf(`
admin: {tokens: [tok]}
egress: {allow_private: ["127.0.0.0/8"]}
sources:
  - {name: sel, event: {type: "json:type"}}
  - {name: plain}
destinations:
  - {name: filtered, type: http, url: %q}
subscriptions:
  - {source: plain, destination: filtered, filter: {path: a, op: exists, value: true}}
`, sink.srv.URL)))
	if err != nil {
		t.Fatal(err)
	}
	cfg.Storage.Path = t.TempDir()
	base, _ := runApp(t, cfg)
	body := bytes.Repeat([]byte("["), 1<<20-1)
	var before runtime.MemStats
	runtime.ReadMemStats(&before)
	var wg sync.WaitGroup
	codes := make([]int, 8)
	for i := range codes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			src := "sel"
			if i%2 == 1 {
				src = "plain"
			}
			resp, err := http.Post(base+"/in/"+src, "application/json", bytes.NewReader(body))
			if err != nil {
				t.Error(err)
				return
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			codes[i] = resp.StatusCode
		}()
	}
	wg.Wait()
	// The plain ones are routed too: wait until they are stored, then
	// until an ordinary event after them is delivered.
	postEvent(t, base, "plain", `{"a":1}`)
	deadline := time.Now().Add(30 * time.Second)
	for len(sink.types()) == 0 {
		if time.Now().After(deadline) {
			t.Fatal("the ordinary event was not delivered")
		}
		time.Sleep(20 * time.Millisecond)
	}
	var after runtime.MemStats
	runtime.ReadMemStats(&after)
	for i, c := range codes {
		if want := []int{400, 200}[i%2]; c != want {
			t.Errorf("request %d: got %d, want %d", i, c, want)
		}
	}
	grew := int64(after.Sys) - int64(before.Sys)
	t.Logf("memory from the system: %d MiB before, %d MiB after (stacks %d MiB)", before.Sys>>20, after.Sys>>20, after.StackSys>>20)
	if grew > 256<<20 {
		t.Errorf("memory from the system grew by %d MiB, want under 256 MiB", grew>>20)
	}
}
