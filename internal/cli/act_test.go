package cli

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"hookd/internal/config"
)

// pathSink records what each path of it received; /fail503 and /fail400
// answer with that status.
type pathSink struct {
	srv  *httptest.Server
	mu   sync.Mutex
	got  map[string][]string // path → webhook-id of each request
	body map[string][]string // path → body of each request
}

func newPathSink(t *testing.T) *pathSink {
	s := &pathSink{got: map[string][]string{}, body: map[string][]string{}}
	s.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(io.LimitReader(r.Body, 1<<20))
		s.mu.Lock()
		s.got[r.URL.Path] = append(s.got[r.URL.Path], r.Header.Get("webhook-id"))
		s.body[r.URL.Path] = append(s.body[r.URL.Path], string(b))
		s.mu.Unlock()
		switch r.URL.Path {
		case "/fail503":
			w.WriteHeader(http.StatusServiceUnavailable)
			io.WriteString(w, "try later")
		case "/fail400":
			w.WriteHeader(http.StatusBadRequest)
		}
	}))
	t.Cleanup(s.srv.Close)
	return s
}

func (s *pathSink) count(path, id string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, g := range s.got[path] {
		if g == id {
			n++
		}
	}
	return n
}

func actApp(t *testing.T, sink *pathSink) string {
	cfg, err := config.Parse([]byte(fmt.Sprintf(`
admin: {tokens: [tok]}
egress: {allow_private: ["127.0.0.0/8"]}
sources: [{name: shop, event: {type: "json:type"}}, {name: other}]
destinations:
  - {name: a, type: http, url: %[1]q}
  - {name: b, type: http, url: %[2]q}
  - {name: c, type: http, url: %[3]q}
  - {name: busy, type: http, url: %[4]q}
  - {name: refuses, type: http, url: %[5]q}
subscriptions:
  - {source: shop, destination: a}
  - {source: other, destination: b}
`, sink.srv.URL+"/a", sink.srv.URL+"/b", sink.srv.URL+"/c", sink.srv.URL+"/fail503", sink.srv.URL+"/fail400")))
	if err != nil {
		t.Fatal(err)
	}
	cfg.Storage.Path = t.TempDir()
	base, _ := runApp(t, cfg)
	return base
}

// Replaying one event sends it again to the destinations named, the one it
// went to and one whose subscriptions it does not match; a destination
// without any subscription is refused.
func TestReplayOneEventToChosenDestinations(t *testing.T) {
	t.Parallel()
	sink := newPathSink(t)
	base := actApp(t, sink)
	id := postEvent(t, base, "shop", `{"n":1}`)
	// Delivered and recorded as such (a delivery being attempted is not
	// replayed).
	waitFor(t, 30*time.Second, "the first delivery to a recorded", func() bool {
		_, m := apiDo(t, "GET", base+"/api/v1/events?destination=a&status=succeeded&body=false", "tok", "")
		data, _ := m["data"].([]any)
		return len(data) == 1
	})

	code, m := apiDo(t, "POST", base+"/api/v1/events/"+id+"/replay", "tok", `{"destinations":["a","b"]}`)
	if code != http.StatusAccepted {
		t.Fatalf("replay: got %d %v, want 202", code, m)
	}
	data, _ := m["data"].([]any)
	if len(data) != 2 {
		t.Fatalf("replay: got %v, want the two deliveries", m)
	}
	for i, want := range []string{"a", "b"} {
		d, _ := data[i].(map[string]any)
		if d["destination"] != want {
			t.Errorf("delivery %d: got destination %v, want %s", i, d["destination"], want)
		}
	}
	waitFor(t, 30*time.Second, "the replay to a and b", func() bool { return sink.count("/a", id) == 2 && sink.count("/b", id) == 1 })

	for _, c := range []struct {
		body string
		code int
		msg  string
	}{
		{`{"destinations":["c"]}`, http.StatusConflict, "no subscription"},
		{`{"destinations":["nope"]}`, http.StatusNotFound, "nope"},
		{`{"destinations":[]}`, http.StatusBadRequest, "at least one"},
		{`{"destinations":["a","a"]}`, http.StatusBadRequest, "twice"},
		{`{"to":["a"]}`, http.StatusBadRequest, "destinations"},
	} {
		code, m := apiDo(t, "POST", base+"/api/v1/events/"+id+"/replay", "tok", c.body)
		if e, _ := m["error"].(map[string]any); code != c.code || !strings.Contains(fmt.Sprint(e["message"]), c.msg) {
			t.Errorf("replay %s: got %d %v, want %d naming %q", c.body, code, m, c.code, c.msg)
		}
	}
	if code, m := apiDo(t, "POST", base+"/api/v1/events/evt_01JPAK7YM7KFGF12XMHHPCC0SG/replay", "tok", `{"destinations":["a"]}`); code != http.StatusNotFound {
		t.Errorf("replay of an unknown event: got %d %v, want 404", code, m)
	}
	if sink.count("/c", id) != 0 {
		t.Errorf("c received the event")
	}
}

// A test event is one attempt whose outcome is the answer; it is not
// stored and not retried.
func TestDestinationTestEvent(t *testing.T) {
	t.Parallel()
	sink := newPathSink(t)
	base := actApp(t, sink)
	for _, c := range []struct {
		dest, body, outcome, path, received string
		status                              float64
	}{
		{"a", `{"payload":{"hello":"world"}}`, "succeeded", "/a", `{"hello":"world"}`, 200},
		{"c", ``, "succeeded", "/c", `{"type":"hookd.test","data":{"message":"a test event sent by hookd"}}`, 200},
		{"a", `{"body":"plain words","content_type":"text/plain"}`, "succeeded", "/a", "plain words", 200},
		{"busy", `{}`, "retry", "/fail503", "", 503},
		{"refuses", `{}`, "failed", "/fail400", "", 400},
	} {
		before := len(sink.body[c.path])
		code, m := apiDo(t, "POST", base+"/api/v1/destinations/"+c.dest+"/test", "tok", c.body)
		if code != http.StatusOK || m["outcome"] != c.outcome || m["status_code"] != c.status {
			t.Errorf("test %s %s: got %d %v, want 200, outcome %s, status %v", c.dest, c.body, code, m, c.outcome, c.status)
			continue
		}
		sink.mu.Lock()
		bodies := sink.body[c.path]
		sink.mu.Unlock()
		if len(bodies) != before+1 {
			t.Errorf("test %s: %s received %d requests, want 1 (no retry)", c.dest, c.path, len(bodies)-before)
		} else if c.received != "" && bodies[before] != c.received {
			t.Errorf("test %s: received %q, want %q", c.dest, bodies[before], c.received)
		}
	}
	if code, m := apiDo(t, "POST", base+"/api/v1/destinations/nope/test", "tok", `{}`); code != http.StatusNotFound {
		t.Errorf("test of an unknown destination: got %d %v, want 404", code, m)
	}
	for _, bad := range []string{`{"payload":{},"body":"x"}`, `{"body":"x","content_type":"text/plain\r\nX-Evil: 1"}`, `{"content_type":"text/plain"}`, `{"type":1}`} {
		if code, m := apiDo(t, "POST", base+"/api/v1/destinations/a/test", "tok", bad); code != http.StatusBadRequest {
			t.Errorf("test %s: got %d %v, want 400", bad, code, m)
		}
	}
	if n := eventCount(t, base, "hookd-test"); n != 0 {
		t.Errorf("stored test events: got %d, want none", n)
	}
	if code, m := apiDo(t, "GET", base+"/api/v1/deliveries?destination=busy", "tok", ""); code != 200 || len(m["data"].([]any)) != 0 {
		t.Errorf("deliveries to busy: got %d %v, want none", code, m)
	}
}

// The CLI's finding flags, its one-event replay, its test event, and a bulk
// replay by type pattern.
func TestCLIFindAndAct(t *testing.T) {
	t.Parallel()
	sink := newPathSink(t)
	base := actApp(t, sink)
	conn := []string{"--server", base, "--token", "tok"}
	var ids []string
	for _, b := range []string{
		`{"type":"order.created","who":"Ada"}`, `{"type":"order.paid.v2","who":"Grace"}`, `{"type":"invoice.created","who":"ada"}`,
	} {
		ids = append(ids, postEvent(t, base, "shop", b))
	}
	// Delivered and recorded as such.
	waitFor(t, 30*time.Second, "the first deliveries recorded", func() bool {
		_, m := apiDo(t, "GET", base+"/api/v1/events?destination=a&status=succeeded&body=false", "tok", "")
		data, _ := m["data"].([]any)
		return len(data) == len(ids)
	})
	list := func(args ...string) string {
		t.Helper()
		out, errOut, code := runCLI(t, nil, append(append([]string{"events", "list"}, args...), conn...)...)
		if code != 0 {
			t.Fatalf("events list %v: exit %d: %s", args, code, errOut)
		}
		return out
	}
	rows := func(out string) []string {
		var got []string
		for _, l := range strings.Split(strings.TrimSpace(out), "\n")[1:] {
			got = append(got, strings.Fields(l)[0])
		}
		return got
	}
	for _, c := range []struct {
		args []string
		want []string
	}{
		{[]string{"--type", "order.*", "--since", "1h"}, []string{ids[1], ids[0]}},
		{[]string{"--type", "*.created", "--q", "ADA"}, []string{ids[2], ids[0]}},
		{[]string{"--destination", "a", "--status", "succeeded", "--q", "grace"}, []string{ids[1]}},
		{[]string{"--until", "1h"}, nil},
	} {
		if got := rows(list(c.args...)); strings.Join(got, " ") != strings.Join(c.want, " ") {
			t.Errorf("events list %v: got %v, want %v", c.args, got, c.want)
		}
	}

	out, errOut, code := runCLI(t, nil, append([]string{"events", "replay", ids[2], "--to", "b"}, conn...)...)
	if code != 0 || !strings.Contains(out, ids[2][len("evt_"):]) || !strings.Contains(out, " b ") {
		t.Fatalf("events replay: exit %d: %s%s", code, out, errOut)
	}
	waitFor(t, 30*time.Second, "the replay to b", func() bool { return sink.count("/b", ids[2]) == 1 })

	out, _, code = runCLI(t, nil, append([]string{"destinations", "test", "c", "--payload", `{"ping":1}`}, conn...)...)
	if code != 0 || !strings.HasPrefix(out, "succeeded in ") || !strings.Contains(out, "status 200") {
		t.Errorf("destinations test c: exit %d: %s", code, out)
	}
	out, _, code = runCLI(t, nil, append([]string{"destinations", "test", "busy"}, conn...)...)
	if code != 1 || !strings.HasPrefix(out, "retry in ") || !strings.Contains(out, "status 503") {
		t.Errorf("destinations test busy: exit %d: %s, want exit 1 and the retry outcome", code, out)
	}

	// A bulk replay by pattern sends the order events again, not the invoice.
	out, errOut, code = runCLI(t, nil, append([]string{"replay", "--source", "shop", "--type", "order.*", "--since", "1h"}, conn...)...)
	if code != 0 || !strings.Contains(out, "done, 2/2 processed, 2 deliveries queued") {
		t.Fatalf("replay --type order.*: exit %d: %s%s", code, out, errOut)
	}
	waitFor(t, 30*time.Second, "the bulk replay", func() bool { return sink.count("/a", ids[0]) == 2 && sink.count("/a", ids[1]) == 2 })
	if n := sink.count("/a", ids[2]); n != 1 {
		t.Errorf("the invoice event went %d times to a, want once", n)
	}
	_, errOut, code = runCLI(t, nil, append([]string{"replay", "--type", "order.**"}, conn...)...)
	if code == 0 || !strings.Contains(errOut, "**") {
		t.Errorf("replay --type order.**: exit %d: %s, want refused", code, errOut)
	}
}
