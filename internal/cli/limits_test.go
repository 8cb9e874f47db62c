package cli

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"hookd/internal/config"
)

// limitsApp runs hookd with source app, the limits line given and an
// admin token, and returns its base URL.
func limitsApp(t *testing.T, limits string, set func(*App)) string {
	t.Helper()
	yaml := fmt.Sprintf(`admin: {tokens: [%s]}
egress: {allow_private: ["127.0.0.0/8"]}
sources: [{name: app, event: {id: "json:id", type: "json:type"}}]
%s
`, verbsToken, limits)
	cfg, err := config.Parse([]byte(yaml))
	if err != nil {
		t.Fatalf("config: %v", err)
	}
	cfg.Storage.Path = t.TempDir()
	_, base := startAppWith(t, cfg, set)
	return base
}

// apiCall sends one admin API request with a JSON body (nil: none) and
// returns the status and the answer.
func apiCall(t *testing.T, c *http.Client, method, url string, body any) (int, []byte) {
	t.Helper()
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			t.Fatal(err)
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, url, rd)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+verbsToken)
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b
}

// Creating a source, destination or subscription beyond its limit is
// refused with 409 naming the limit; deleting one makes room again.
func TestDefinitionCapsThroughTheAPI(t *testing.T) {
	base := limitsApp(t, "limits: {max_sources: 2, max_destinations: 2, max_subscriptions: 2}", func(*App) {})
	c := &http.Client{Timeout: 30 * time.Second}
	dest := func(name string) map[string]any {
		return map[string]any{"name": name, "type": "http", "url": "http://127.0.0.1:9/hooks"}
	}
	wantRefused := func(what string, status int, body []byte, key string) {
		t.Helper()
		var e struct {
			Error struct{ Code, Message string }
		}
		json.Unmarshal(body, &e)
		if status != http.StatusConflict || e.Error.Code != "conflict" || !strings.Contains(e.Error.Message, key) {
			t.Fatalf("%s beyond the limit: got %d %s, want 409 conflict naming %s", what, status, body, key)
		}
	}
	for _, n := range []string{"d1", "d2"} {
		if st, b := apiCall(t, c, "POST", base+"/api/v1/destinations", dest(n)); st != 201 {
			t.Fatalf("create %s: got %d %s, want 201", n, st, b)
		}
	}
	st, b := apiCall(t, c, "POST", base+"/api/v1/destinations", dest("d3"))
	wantRefused("a destination", st, b, "limits.max_destinations")
	// The providers' shape creates a destination too: refused as well.
	st, b = apiCall(t, c, "POST", base+"/api/v1/subscriptions", map[string]any{"events": []string{"*"}, "url": "http://127.0.0.1:9/x"})
	wantRefused("a subscription with its destination", st, b, "limits.max_destinations")
	if st, b := apiCall(t, c, "DELETE", base+"/api/v1/destinations/d2", nil); st != 204 {
		t.Fatalf("delete d2: got %d %s", st, b)
	}
	if st, b := apiCall(t, c, "POST", base+"/api/v1/destinations", dest("d3")); st != 201 {
		t.Fatalf("create d3 after a delete: got %d %s, want 201", st, b)
	}
	// Replacing one at the limit is not creating one.
	if st, b := apiCall(t, c, "PUT", base+"/api/v1/destinations/d3", dest("d3")); st != 200 {
		t.Fatalf("replace d3 at the limit: got %d %s, want 200", st, b)
	}

	for range 2 {
		if st, b := apiCall(t, c, "POST", base+"/api/v1/subscriptions", map[string]any{"source": "app", "destination": "d1"}); st != 201 {
			t.Fatalf("create a subscription: got %d %s, want 201", st, b)
		}
	}
	st, b = apiCall(t, c, "POST", base+"/api/v1/subscriptions", map[string]any{"source": "app", "destination": "d1"})
	wantRefused("a subscription", st, b, "limits.max_subscriptions")

	// The file's source app counts: one more fits.
	src := func(name string) map[string]any { return map[string]any{"name": name} }
	if st, b := apiCall(t, c, "POST", base+"/api/v1/sources", src("s1")); st != 201 {
		t.Fatalf("create source s1: got %d %s, want 201", st, b)
	}
	st, b = apiCall(t, c, "POST", base+"/api/v1/sources", src("s2"))
	wantRefused("a source", st, b, "limits.max_sources")
}

// An idle destination costs no goroutine: 2,000 destinations created
// through the API leave the goroutine count far below 2,000 once they
// have settled, and one of them still delivers an event sent to it.
func TestIdleDestinationsCostNoGoroutine(t *testing.T) {
	var got atomic.Int64
	sink := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		got.Add(1)
	}))
	t.Cleanup(sink.Close)
	base := limitsApp(t, "limits: {max_destinations: 2500}", func(a *App) { a.idleAfter = 50 * time.Millisecond })
	c := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 8}}
	defer c.CloseIdleConnections()
	before := runtime.NumGoroutine()

	const n = 2000
	names := make(chan int)
	var wg sync.WaitGroup
	var failed atomic.Value
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range names {
				def := map[string]any{"name": fmt.Sprintf("d%04d", i), "type": "http", "url": sink.URL}
				b, _ := json.Marshal(def)
				req, _ := http.NewRequest("POST", base+"/api/v1/destinations", bytes.NewReader(b))
				req.Header.Set("Authorization", "Bearer "+verbsToken)
				resp, err := c.Do(req)
				if err != nil {
					failed.Store(err.Error())
					continue
				}
				body, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				if resp.StatusCode != 201 {
					failed.Store(fmt.Sprintf("%d %s", resp.StatusCode, body))
				}
			}
		}()
	}
	for i := range n {
		names <- i
	}
	close(names)
	wg.Wait()
	if f := failed.Load(); f != nil {
		t.Fatalf("create a destination: %v", f)
	}

	// The count settles once the dispatchers have found nothing to do.
	const most = 200
	deadline := time.Now().Add(60 * time.Second)
	grew := runtime.NumGoroutine() - before
	for grew >= most && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
		grew = runtime.NumGoroutine() - before
	}
	if grew >= most {
		t.Fatalf("goroutines after %d idle destinations: got %d more than before, want fewer than %d", n, grew, most)
	}
	t.Logf("goroutines: %d before, %d more after %d idle destinations", before, grew, n)

	if st, b := apiCall(t, c, "POST", base+"/api/v1/subscriptions", map[string]any{"source": "app", "destination": "d1234"}); st != 201 {
		t.Fatalf("create a subscription: got %d %s", st, b)
	}
	resp, err := http.Post(base+"/in/app", "application/json", strings.NewReader(`{"id": "e1", "type": "t"}`))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("POST /in/app: got %d, want 200", resp.StatusCode)
	}
	deadline = time.Now().Add(30 * time.Second)
	for got.Load() == 0 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if got.Load() != 1 {
		t.Fatalf("deliveries to the idle destination: got %d, want 1", got.Load())
	}
}

// The listings of sources, destinations and subscriptions page: limit is
// honoured, next_cursor walks every item once, in order, and ends with
// null; the CLI's list verbs follow the cursors and show every item.
func TestDefinitionListsPage(t *testing.T) {
	t.Setenv(envServer, "")
	t.Setenv(envToken, "")
	base := limitsApp(t, "", func(*App) {})
	c := &http.Client{Timeout: 30 * time.Second}
	var dests, srcs []string
	for i := range 25 {
		n := fmt.Sprintf("d%02d", i)
		dests = append(dests, n)
		if st, b := apiCall(t, c, "POST", base+"/api/v1/destinations", map[string]any{"name": n, "type": "http", "url": "http://127.0.0.1:9/"}); st != 201 {
			t.Fatalf("create %s: %d %s", n, st, b)
		}
	}
	srcs = append(srcs, "app")
	for i := range 12 {
		n := fmt.Sprintf("s%02d", i)
		srcs = append(srcs, n)
		if st, b := apiCall(t, c, "POST", base+"/api/v1/sources", map[string]any{"name": n}); st != 201 {
			t.Fatalf("create %s: %d %s", n, st, b)
		}
	}
	var subs []string
	for i := range 20 {
		st, b := apiCall(t, c, "POST", base+"/api/v1/subscriptions", map[string]any{"source": "app", "destination": dests[i]})
		if st != 201 {
			t.Fatalf("create a subscription: %d %s", st, b)
		}
		var v struct{ ID string }
		json.Unmarshal(b, &v)
		subs = append(subs, v.ID)
	}

	walk := func(path, field string, limit int) []string {
		t.Helper()
		var got []string
		cursor := ""
		for pages := 0; ; pages++ {
			if pages > 100 {
				t.Fatalf("%s: no end after 100 pages", path)
			}
			u := fmt.Sprintf("%s%s?limit=%d", base, path, limit)
			if cursor != "" {
				u += "&cursor=" + cursor
			}
			st, b := apiCall(t, c, "GET", u, nil)
			if st != 200 {
				t.Fatalf("GET %s: got %d %s", u, st, b)
			}
			var p struct {
				Data       []map[string]any `json:"data"`
				NextCursor *string          `json:"next_cursor"`
			}
			if err := json.Unmarshal(b, &p); err != nil || p.Data == nil {
				t.Fatalf("GET %s: got %s, want {data, next_cursor}", u, b)
			}
			if len(p.Data) > limit {
				t.Fatalf("GET %s: got %d items, want at most %d", u, len(p.Data), limit)
			}
			for _, it := range p.Data {
				got = append(got, fmt.Sprint(it[field]))
			}
			if p.NextCursor == nil {
				return got
			}
			if len(p.Data) != limit {
				t.Fatalf("GET %s: got %d items and a next_cursor, want a full page of %d", u, len(p.Data), limit)
			}
			cursor = *p.NextCursor
		}
	}
	for _, tc := range []struct {
		path, field string
		want        []string
	}{
		{"/api/v1/destinations", "name", dests},
		{"/api/v1/sources", "name", srcs},
		{"/api/v1/subscriptions", "id", subs},
	} {
		for _, limit := range []int{1, 7, 1000} {
			if got := walk(tc.path, tc.field, limit); strings.Join(got, " ") != strings.Join(tc.want, " ") {
				t.Errorf("%s walked with limit %d: got %q, want %q", tc.path, limit, got, tc.want)
			}
		}
		// Without a limit: the default page of 100 holds them all here.
		if got := walk(tc.path, tc.field, 100); len(got) != len(tc.want) {
			t.Errorf("%s: got %d items, want %d", tc.path, len(got), len(tc.want))
		}
		for _, q := range []string{"limit=0", "limit=1001", "limit=x", "cursor=%25%25"} {
			if st, b := apiCall(t, c, "GET", base+tc.path+"?"+q, nil); st != 400 {
				t.Errorf("GET %s?%s: got %d %s, want 400", tc.path, q, st, b)
			}
		}
	}

	old := listPageSize
	listPageSize = 4
	t.Cleanup(func() { listPageSize = old })
	for _, tc := range []struct {
		noun string
		want []string
	}{{"destinations", dests}, {"sources", srcs}, {"subscriptions", subs}} {
		out, errOut, code := manageRun(t, "", tc.noun, "list", "--server", base, "--token", verbsToken)
		if code != 0 {
			t.Fatalf("hookd %s list: exit %d: %s", tc.noun, code, errOut)
		}
		if lines := strings.Count(out, "\n"); lines != len(tc.want)+1 {
			t.Errorf("hookd %s list: got %d lines, want a header and %d rows:\n%s", tc.noun, lines, len(tc.want), out)
		}
		for _, w := range tc.want {
			if !strings.Contains(out, w) {
				t.Errorf("hookd %s list: %s missing:\n%s", tc.noun, w, out)
			}
		}
		out, errOut, code = manageRun(t, "", tc.noun, "list", "-o", "json", "--server", base, "--token", verbsToken)
		var p struct {
			Data       []json.RawMessage `json:"data"`
			NextCursor *string           `json:"next_cursor"`
		}
		if code != 0 || json.Unmarshal([]byte(out), &p) != nil || len(p.Data) != len(tc.want) || p.NextCursor != nil {
			t.Errorf("hookd %s list -o json: exit %d, got %d items (next %v), want %d and null: %s", tc.noun, code, len(p.Data), p.NextCursor, len(tc.want), errOut)
		}
	}
}
