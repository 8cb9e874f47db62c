package cli

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"hookd/internal/config"
)

// scrape GETs url and returns the exposition text; it fails the test
// unless the answer is 200.
func scrape(t *testing.T, url string) string {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 {
		t.Fatalf("GET %s: %d %s", url, resp.StatusCode, b)
	}
	return string(b)
}

// sample returns the value of the series name{labels} in an exposition
// text, and whether it is there. labels are written as in the text, sorted
// by name: `code="200",source="claims"`.
func sample(text, name, labels string) (float64, bool) {
	prefix := name + " "
	if labels != "" {
		prefix = name + "{" + labels + "} "
	}
	for _, line := range strings.Split(text, "\n") {
		if v, ok := strings.CutPrefix(line, prefix); ok {
			f, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
			return f, err == nil
		}
	}
	return 0, false
}

// GET /metrics reports, in Prometheus' format, what ingest answered per
// source and code (duplicates and unknown sources included), the group
// commits, the delivery attempts per destination and outcome, and each
// destination's state.
func TestMetricsReportIngestAndDelivery(t *testing.T) {
	sink := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		if strings.Contains(r.Header.Get("Hookd-Event-Type"), "bad") {
			w.WriteHeader(http.StatusBadRequest)
		}
	}))
	defer sink.Close()
	cfg, err := config.Parse([]byte(fmt.Sprintf(`
admin: {tokens: [tok]}
egress: {allow_private: ["127.0.0.0/8"]}
# The failed delivery would raise a delivery.failed alert, one more
# event in the commit metrics: this test counts the ingested ones only.
alerts: {enabled: false}
sources:
  - {name: claims, event: {id: "json:id", type: "json:type"}}
destinations:
  - {name: sink, type: http, url: %q}
subscriptions:
  - {source: claims, destination: sink}
`, sink.URL)))
	if err != nil {
		t.Fatal(err)
	}
	cfg.Storage.Path = t.TempDir()
	_, base := startApp(t, cfg, nil)

	postEvent(t, base, "claims", `{"id":"a","type":"ok"}`)
	postEvent(t, base, "claims", `{"id":"a","type":"ok"}`) // duplicate
	postEvent(t, base, "claims", `{"id":"b","type":"bad"}`)
	resp, err := http.Post(base+"/in/nope-"+strconv.Itoa(int(time.Now().UnixNano())), "application/json", strings.NewReader(`{}`))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 404 {
		t.Fatalf("unknown source: %d, want 404", resp.StatusCode)
	}

	var text string
	waitFor(t, 10*time.Second, "two attempts in the metrics", func() bool {
		text = scrape(t, base+"/metrics")
		ok, _ := sample(text, "hookd_delivery_attempts_total", `destination="sink",outcome="succeeded"`)
		failed, _ := sample(text, "hookd_delivery_attempts_total", `destination="sink",outcome="failed"`)
		return ok == 1 && failed == 1
	})
	want := []struct {
		name, labels string
		value        float64
	}{
		{"hookd_ingest_requests_total", `code="200",source="claims"`, 3},
		{"hookd_ingest_duplicates_total", `source="claims"`, 1},
		{"hookd_ingest_requests_total", `code="404",source="(unknown)"`, 1},
		{"hookd_ingest_request_duration_seconds_count", `source="claims"`, 3},
		{"hookd_delivery_attempts_total", `destination="sink",outcome="succeeded"`, 1},
		{"hookd_delivery_attempts_total", `destination="sink",outcome="failed"`, 1},
		{"hookd_delivery_attempt_duration_seconds_count", `destination="sink"`, 2},
		{"hookd_destination_disabled", `destination="sink"`, 0},
		{"hookd_destination_in_flight", `destination="sink"`, 0},
		{"hookd_store_commit_events_sum", "", 3}, // duplicates are checked in the commit too
	}
	for _, w := range want {
		got, ok := sample(text, w.name, w.labels)
		if !ok || got != w.value {
			t.Errorf("%s{%s} = %v (present %v), want %v", w.name, w.labels, got, ok, w.value)
		}
	}
	for _, name := range []string{"hookd_store_commits_total", "hookd_store_sync_duration_seconds_count", "hookd_store_queue_depth", "hookd_store_index_backlog", "go_goroutines", "process_resident_memory_bytes"} {
		if !strings.Contains(text, "\n"+name) {
			t.Errorf("%s is missing", name)
		}
	}
	if !strings.Contains(text, `hookd_build_info{go_version="go`) {
		t.Errorf("hookd_build_info is missing")
	}
	if strings.Contains(text, "nope-") {
		t.Errorf("an unknown source's name became a label")
	}
}

// metrics.listen moves /metrics to an address of its own; metrics.enabled
// false removes it.
func TestMetricsListenAndDisable(t *testing.T) {
	cfg, err := config.Parse([]byte("admin: {tokens: [tok]}\nmetrics: {listen: \"127.0.0.1:0\"}\n"))
	if err != nil {
		t.Fatal(err)
	}
	cfg.Storage.Path = t.TempDir()
	app, base := startApp(t, cfg, nil)
	if code := getStatus(t, base+"/metrics"); code != 404 {
		t.Errorf("main listener /metrics: %d, want 404 with metrics.listen set", code)
	}
	if text := scrape(t, "http://"+app.MetricsAddr()+"/metrics"); !strings.Contains(text, "hookd_build_info") {
		t.Errorf("metrics listener: no hookd_build_info")
	}

	cfg, err = config.Parse([]byte("admin: {tokens: [tok]}\nmetrics: {enabled: false}\n"))
	if err != nil {
		t.Fatal(err)
	}
	cfg.Storage.Path = t.TempDir()
	_, base = startApp(t, cfg, nil)
	if code := getStatus(t, base+"/metrics"); code != 404 {
		t.Errorf("/metrics with metrics.enabled false: %d, want 404", code)
	}
}

func getStatus(t *testing.T, url string) int {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// The metrics wrapper does not hide an oversized body from the server: the
// 413 closes the connection rather than reading the rest of the body.
func TestOversizedBodyClosesTheConnectionUnderMetrics(t *testing.T) {
	cfg, err := config.Parse([]byte("admin: {tokens: [tok]}\nsources: [{name: small, max_body: 1KiB}]\n"))
	if err != nil {
		t.Fatal(err)
	}
	cfg.Storage.Path = t.TempDir()
	_, base := startApp(t, cfg, nil)
	// No Content-Length: the limit is hit while reading.
	body := io.MultiReader(strings.NewReader(strings.Repeat("x", 4096)))
	req, _ := http.NewRequest("POST", base+"/in/small", body)
	req.ContentLength = -1
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusRequestEntityTooLarge || !resp.Close {
		t.Fatalf("oversized chunked body: %d, Connection close %v; want 413 and close", resp.StatusCode, resp.Close)
	}
}
