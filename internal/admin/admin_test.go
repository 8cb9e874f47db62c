package admin_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"reflect"
	"slices"
	"sort"
	"testing"
	"time"

	"hookd"
	"hookd/internal/admin"
	"hookd/internal/config"
	"hookd/internal/httpserver"
	"hookd/internal/store"
	"hookd/internal/store/sqlite"
)

const token = "test-admin-token-0123456789"

var base = time.Date(2026, 1, 2, 15, 4, 5, 0, time.UTC)

type harness struct {
	srv *httptest.Server
	st  *sqlite.Store
	// events are the fixture events in insertion (commit) order.
	events []*hookd.Event
}

func discardLog() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

func newHarness(t *testing.T) *harness {
	t.Helper()
	cfg, err := config.Parse([]byte(`
sources:
  - name: a
    verify: [{type: api_key, keys: [k]}]
    dedupe_window: 72h
  - name: b
    max_body: 512KiB
  - name: empty
`))
	if err != nil {
		t.Fatal(err)
	}
	log := discardLog()
	st, err := sqlite.Open(context.Background(), t.TempDir(), log, sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	errs := &httpserver.Errors{Log: log, RetryAfter: 5 * time.Second}
	api := admin.New(admin.Options{Store: st, Errors: errs, Log: log, Tokens: []string{token}, Sources: cfg.Sources})
	mux := http.NewServeMux()
	mux.Handle("/api/v1/", api)
	srv := httptest.NewServer(httpserver.Handler(mux, errs))
	t.Cleanup(srv.Close)
	return &harness{srv: srv, st: st}
}

// newEvent builds an event the way ingest does: its id shares the ULID of
// the request that created it.
func newEvent(source, typ, externalID string, received time.Time, body string) *hookd.Event {
	rid := hookd.RequestIDPrefix + hookd.NewULID(received)
	return &hookd.Event{
		ID: hookd.EventIDForRequest(rid), Source: source, ExternalID: externalID, Type: typ,
		ReceivedAt: received, RequestID: rid, ContentType: "application/json",
		Headers: map[string][]string{"Content-Type": {"application/json"}, "User-Agent": {"test"}},
		Body:    []byte(body),
	}
}

func (h *harness) insert(t *testing.T, e *hookd.Event, dedupe time.Duration) store.EventInsertResult {
	t.Helper()
	res, err := h.st.EventInsertMany(context.Background(), []*store.EventInsert{{Event: e, DedupeWindow: dedupe}})
	if err != nil {
		t.Fatal(err)
	}
	if !res[0].Duplicate {
		h.events = append(h.events, e)
	}
	return res[0]
}

// fixture inserts 7 events: sources a and b, types t1 and t2, received one
// minute apart.
func (h *harness) fixture(t *testing.T) {
	t.Helper()
	for i, s := range []struct{ source, typ string }{
		{"a", "t1"}, {"b", "t1"}, {"a", "t2"}, {"a", "t1"}, {"b", "t2"}, {"a", "t1"}, {"b", "t1"},
	} {
		h.insert(t, newEvent(s.source, s.typ, fmt.Sprintf("ext-%d", i), base.Add(time.Duration(i)*time.Minute), fmt.Sprintf(`{"n":%d}`, i)), 72*time.Hour)
	}
}

type answer struct {
	status int
	header http.Header
	body   []byte
}

func (h *harness) get(t *testing.T, path string, auth string) answer {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, h.srv.URL+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	resp, err := h.srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return answer{status: resp.StatusCode, header: resp.Header, body: b}
}

func (h *harness) getOK(t *testing.T, path string, v any) answer {
	t.Helper()
	a := h.get(t, path, "Bearer "+token)
	if a.status != http.StatusOK {
		t.Fatalf("GET %s: got %d %s, want 200", path, a.status, a.body)
	}
	if v != nil {
		if err := json.Unmarshal(a.body, v); err != nil {
			t.Fatalf("GET %s: %v in %s", path, err, a.body)
		}
	}
	return a
}

type errBody struct {
	Error struct {
		Code    string `json:"code"`
		Message string `json:"message"`
	} `json:"error"`
	RequestID string `json:"request_id"`
}

func wantError(t *testing.T, a answer, status int, code string) {
	t.Helper()
	if a.status != status {
		t.Fatalf("status: got %d, want %d (body %s)", a.status, status, a.body)
	}
	if ct := a.header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("Content-Type: got %q, want application/json", ct)
	}
	var e errBody
	if err := json.Unmarshal(a.body, &e); err != nil {
		t.Fatalf("error body %s: %v", a.body, err)
	}
	if e.Error.Code != code || e.Error.Message == "" {
		t.Errorf("error: got %+v, want code %q and a message", e.Error, code)
	}
	if rid := a.header.Get(httpserver.HeaderRequestID); rid == "" || e.RequestID != rid {
		t.Errorf("request_id: got %q, want the header's %q", e.RequestID, rid)
	}
}

type eventJSON struct {
	ID          string              `json:"id"`
	Source      string              `json:"source"`
	ExternalID  *string             `json:"external_id"`
	Type        *string             `json:"type"`
	Key         *string             `json:"key"`
	OccurredAt  *time.Time          `json:"occurred_at"`
	ReceivedAt  time.Time           `json:"received_at"`
	RequestID   string              `json:"request_id"`
	Stale       bool                `json:"stale"`
	ContentType string              `json:"content_type"`
	Headers     map[string][]string `json:"headers"`
	Body        *string             `json:"body"`
	BodyBase64  *string             `json:"body_base64"`
	Deliveries  []json.RawMessage   `json:"deliveries"`
	Cursor      string              `json:"cursor"`
}

type listJSON struct {
	Data       []eventJSON `json:"data"`
	NextCursor *string     `json:"next_cursor"`
}

func ids(l []eventJSON) []string {
	out := make([]string, len(l))
	for i, e := range l {
		out[i] = e.ID
	}
	return out
}

func eventIDs(l []*hookd.Event) []string {
	out := make([]string, len(l))
	for i, e := range l {
		out[i] = e.ID
	}
	return out
}

func reversed(s []string) []string {
	out := slices.Clone(s)
	slices.Reverse(out)
	return out
}

func TestAuth(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	h.fixture(t)
	e := h.events[0]
	paths := []string{
		"/api/v1/events", "/api/v1/events/" + e.ID, "/api/v1/events/" + e.ID + "/body",
		"/api/v1/requests/" + e.RequestID, "/api/v1/sources", "/api/v1/sources/a/events",
	}
	// RFC 6750: error="invalid_token" only when a bearer token was sent.
	const (
		noToken  = `Bearer realm="hookd-admin"`
		badToken = `Bearer realm="hookd-admin", error="invalid_token"`
	)
	refused := []struct{ name, auth, challenge string }{
		{"NoToken", "", noToken},
		{"WrongToken", "Bearer wrong-token-0123456789", badToken},
		{"TokenPrefix", "Bearer " + token[:len(token)-1], badToken},
		{"TokenSuffix", "Bearer " + token + "x", badToken},
		{"BasicScheme", "Basic " + base64.StdEncoding.EncodeToString([]byte("admin:"+token)), noToken},
		{"BareToken", token, noToken},
		{"EmptyBearer", "Bearer ", noToken},
	}
	for _, tt := range refused {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			for _, p := range paths {
				a := h.get(t, p, tt.auth)
				wantError(t, a, http.StatusUnauthorized, hookd.EUnauthorized)
				if got, want := a.header.Get("WWW-Authenticate"), tt.challenge; got != want {
					t.Errorf("GET %s: WWW-Authenticate: got %q, want %q", p, got, want)
				}
			}
		})
	}
	for _, auth := range []string{"Bearer " + token, "bearer " + token} {
		for _, p := range paths {
			if a := h.get(t, p, auth); a.status != http.StatusOK {
				t.Errorf("GET %s with %q: got %d %s, want 200", p, auth[:6], a.status, a.body)
			}
		}
	}
}

func TestEventsList(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	h.fixture(t)
	all := eventIDs(h.events)

	var l listJSON
	h.getOK(t, "/api/v1/events", &l)
	if got, want := ids(l.Data), reversed(all); !reflect.DeepEqual(got, want) {
		t.Errorf("default order: got %q, want newest first %q", got, want)
	}
	if l.NextCursor != nil {
		t.Errorf("next_cursor: got %q, want null", *l.NextCursor)
	}
	l = listJSON{}
	h.getOK(t, "/api/v1/events?order=asc", &l)
	if got := ids(l.Data); !reflect.DeepEqual(got, all) {
		t.Errorf("order=asc: got %q, want %q", got, all)
	}
	l = listJSON{}
	h.getOK(t, "/api/v1/events?order=desc", &l)
	if got := ids(l.Data); !reflect.DeepEqual(got, reversed(all)) {
		t.Errorf("order=desc: got %q, want %q", got, reversed(all))
	}
	// The raw list is {"data": [...], "next_cursor": ...} and nothing else.
	var raw map[string]json.RawMessage
	a := h.getOK(t, "/api/v1/events?limit=1", &raw)
	if len(raw) != 2 || raw["data"] == nil || raw["next_cursor"] == nil {
		t.Errorf("list shape: got %s, want keys data and next_cursor", a.body)
	}
}

func TestEventsListEmpty(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	var raw map[string]json.RawMessage
	h.getOK(t, "/api/v1/events", &raw)
	if got := string(raw["data"]); got != "[]" {
		t.Errorf("data: got %s, want []", got)
	}
	if got := string(raw["next_cursor"]); got != "null" {
		t.Errorf("next_cursor: got %s, want null", got)
	}
}

// walk follows next_cursor from query to the end and returns every id in
// the order received, and the number of pages.
func (h *harness) walk(t *testing.T, query url.Values) ([]string, int) {
	t.Helper()
	var got []string
	pages := 0
	cursor := ""
	for {
		q := url.Values{}
		for k, v := range query {
			q[k] = v
		}
		if cursor != "" {
			q.Set("cursor", cursor)
		}
		var l listJSON
		h.getOK(t, "/api/v1/events?"+q.Encode(), &l)
		pages++
		got = append(got, ids(l.Data)...)
		if l.NextCursor == nil {
			return got, pages
		}
		if *l.NextCursor == cursor || pages > 100 {
			t.Fatalf("pagination does not advance: cursor %q again", cursor)
		}
		cursor = *l.NextCursor
	}
}

func TestEventsPagination(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	h.fixture(t)
	all := eventIDs(h.events)
	for _, order := range []string{"desc", "asc"} {
		want := all
		if order == "desc" {
			want = reversed(all)
		}
		for limit := 1; limit <= len(all)+1; limit++ {
			t.Run(fmt.Sprintf("%sLimit%d", map[string]string{"asc": "Asc", "desc": "Desc"}[order], limit), func(t *testing.T) {
				got, pages := h.walk(t, url.Values{"order": {order}, "limit": {fmt.Sprint(limit)}})
				if !reflect.DeepEqual(got, want) {
					t.Errorf("got %q, want every event exactly once: %q", got, want)
				}
				if wantPages := max(1, (len(all)+limit-1)/limit); pages != wantPages {
					t.Errorf("pages: got %d, want %d", pages, wantPages)
				}
			})
		}
	}
	// Events that arrive while paging newest-first don't show up twice or
	// shift the pages.
	t.Run("InsertWhilePaging", func(t *testing.T) {
		var l listJSON
		h.getOK(t, "/api/v1/events?limit=3", &l)
		h.insert(t, newEvent("a", "t9", "late", base.Add(time.Hour), `{}`), 0)
		rest, _ := h.walk(t, url.Values{"limit": {"3"}, "cursor": {*l.NextCursor}})
		got := append(ids(l.Data), rest...)
		if want := reversed(all); !reflect.DeepEqual(got, want) {
			t.Errorf("got %q, want %q", got, want)
		}
	})
}

func TestEventsFilters(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	h.fixture(t)
	pick := func(keep func(i int, e *hookd.Event) bool) []string {
		var out []string
		for i, e := range h.events {
			if keep(i, e) {
				out = append(out, e.ID)
			}
		}
		return reversed(out)
	}
	at := func(i int) string { return base.Add(time.Duration(i) * time.Minute).Format(time.RFC3339) }
	tests := []struct {
		name  string
		query url.Values
		want  []string
	}{
		{"Source", url.Values{"source": {"a"}}, pick(func(_ int, e *hookd.Event) bool { return e.Source == "a" })},
		{"Type", url.Values{"type": {"t1"}}, pick(func(_ int, e *hookd.Event) bool { return e.Type == "t1" })},
		{"SourceAndType", url.Values{"source": {"b"}, "type": {"t1"}}, pick(func(_ int, e *hookd.Event) bool { return e.Source == "b" && e.Type == "t1" })},
		{"SinceInclusive", url.Values{"since": {at(3)}}, pick(func(i int, _ *hookd.Event) bool { return i >= 3 })},
		{"UntilExclusive", url.Values{"until": {at(3)}}, pick(func(i int, _ *hookd.Event) bool { return i < 3 })},
		{"SinceAndUntil", url.Values{"since": {at(2)}, "until": {at(5)}}, pick(func(i int, _ *hookd.Event) bool { return i >= 2 && i < 5 })},
		{"SinceOffset", url.Values{"since": {base.Add(4 * time.Minute).In(time.FixedZone("x", 3600)).Format(time.RFC3339Nano)}}, pick(func(i int, _ *hookd.Event) bool { return i >= 4 })},
		{"SinceFraction", url.Values{"since": {base.Add(4*time.Minute - time.Microsecond).Format(time.RFC3339Nano)}}, pick(func(i int, _ *hookd.Event) bool { return i >= 4 })},
		{"SourceTypeSince", url.Values{"source": {"a"}, "type": {"t1"}, "since": {at(1)}}, pick(func(i int, e *hookd.Event) bool { return e.Source == "a" && e.Type == "t1" && i >= 1 })},
		{"UnknownSource", url.Values{"source": {"nope"}}, nil},
		{"UnknownType", url.Values{"type": {"nope"}}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			// Whole, and paged one by one.
			for _, limit := range []string{"", "1"} {
				q := url.Values{}
				for k, v := range tt.query {
					q[k] = v
				}
				if limit != "" {
					q.Set("limit", limit)
				}
				got, _ := h.walk(t, q)
				if !reflect.DeepEqual(got, tt.want) {
					t.Errorf("limit %q: got %q, want %q", limit, got, tt.want)
				}
			}
		})
	}
}

func TestEventsBadParams(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	h.fixture(t)
	for _, q := range []string{
		"since=yesterday", "since=2026-01-02", "until=2026-01-02T15:04:05", "until=1700000000",
		"limit=0", "limit=-1", "limit=abc", "limit=1001", "order=sideways", "cursor=abc", "cursor=-5",
	} {
		t.Run(q, func(t *testing.T) {
			t.Parallel()
			wantError(t, h.get(t, "/api/v1/events?"+q, "Bearer "+token), http.StatusBadRequest, hookd.EInvalid)
		})
	}
}

func TestEventGet(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	e := newEvent("a", "event.claim.created.v1", "ext-1", base, `{"id":"ext-1","text":"café"}`)
	e.Key = "CLM-7"
	e.OccurredAt = base.Add(-time.Hour)
	e.Headers["X-Multi"] = []string{"1", "2"}
	h.insert(t, e, 72*time.Hour)

	var raw map[string]json.RawMessage
	a := h.getOK(t, "/api/v1/events/"+e.ID, &raw)
	for _, k := range []string{"id", "source", "external_id", "type", "key", "occurred_at", "received_at", "request_id",
		"stale", "content_type", "headers", "body", "body_base64", "deliveries"} {
		if _, ok := raw[k]; !ok {
			t.Errorf("event JSON: got no %q in %s", k, a.body)
		}
	}
	var got eventJSON
	if err := json.Unmarshal(a.body, &got); err != nil {
		t.Fatal(err)
	}
	str := func(p *string) string {
		if p == nil {
			return "<null>"
		}
		return *p
	}
	if got.ID != e.ID || got.Source != "a" || str(got.ExternalID) != "ext-1" || str(got.Type) != e.Type || str(got.Key) != "CLM-7" ||
		got.RequestID != e.RequestID || got.Stale || got.ContentType != "application/json" {
		t.Errorf("event: got %+v, want the inserted %+v", got, e)
	}
	if got.OccurredAt == nil || !got.OccurredAt.Equal(e.OccurredAt) || !got.ReceivedAt.Equal(e.ReceivedAt) {
		t.Errorf("times: got occurred_at %v received_at %s, want %s and %s", got.OccurredAt, got.ReceivedAt, e.OccurredAt, e.ReceivedAt)
	}
	if !reflect.DeepEqual(got.Headers, e.Headers) {
		t.Errorf("headers: got %q, want %q", got.Headers, e.Headers)
	}
	if str(got.Body) != string(e.Body) {
		t.Errorf("body: got %q, want %q", str(got.Body), e.Body)
	}
	if str(got.BodyBase64) != base64.StdEncoding.EncodeToString(e.Body) {
		t.Errorf("body_base64: got %q, want %q", str(got.BodyBase64), base64.StdEncoding.EncodeToString(e.Body))
	}
	if got.Deliveries == nil || len(got.Deliveries) != 0 || string(raw["deliveries"]) != "[]" {
		t.Errorf("deliveries: got %s, want []", raw["deliveries"])
	}

	t.Run("NonUTF8Body", func(t *testing.T) {
		bin := newEvent("b", "", "", base, "\xff\xfe\x00binary")
		bin.ContentType = "application/octet-stream"
		h.insert(t, bin, 0)
		var raw map[string]json.RawMessage
		a := h.getOK(t, "/api/v1/events/"+bin.ID, &raw)
		if _, ok := raw["body"]; ok {
			t.Errorf("body: got %s, want no body for a non-UTF-8 body", raw["body"])
		}
		var b64 string
		if err := json.Unmarshal(raw["body_base64"], &b64); err != nil {
			t.Fatalf("body_base64 in %s: %v", a.body, err)
		}
		if dec, err := base64.StdEncoding.DecodeString(b64); err != nil || !bytes.Equal(dec, bin.Body) {
			t.Errorf("body_base64: got %q (%v), want the raw bytes %q", dec, err, bin.Body)
		}
		// Absent metadata is null, not "".
		for _, k := range []string{"external_id", "type", "key", "occurred_at"} {
			if got := string(raw[k]); got != "null" {
				t.Errorf("%s: got %s, want null", k, got)
			}
		}
	})

	t.Run("EmptyBody", func(t *testing.T) {
		empty := newEvent("b", "", "", base, "")
		h.insert(t, empty, 0)
		var got eventJSON
		h.getOK(t, "/api/v1/events/"+empty.ID, &got)
		if got.Body == nil || *got.Body != "" || got.BodyBase64 == nil || *got.BodyBase64 != "" {
			t.Errorf("empty body: got body %v body_base64 %v, want both \"\"", got.Body, got.BodyBase64)
		}
	})

	// SPEC §4 lists "headers" among an event's keys; a request with no
	// headers worth keeping still has them, as {}.
	t.Run("NoHeaders", func(t *testing.T) {
		bare := newEvent("b", "", "", base, "{}")
		bare.Headers = nil
		h.insert(t, bare, 0)
		var raw map[string]json.RawMessage
		a := h.getOK(t, "/api/v1/events/"+bare.ID, &raw)
		if _, ok := raw["headers"]; !ok {
			t.Errorf("event JSON: got no \"headers\" in %s, want {}", a.body)
		}
	})
}

func TestEventBody(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	tests := []struct {
		name, contentType, body, want string
	}{
		{"JSON", "application/json; charset=utf-8", `{"a": 1}` + "\r\n", "application/json; charset=utf-8"},
		{"Binary", "application/octet-stream", "\x00\xff\xfe", "application/octet-stream"},
		{"HTML", "text/html", "<script>alert(1)</script>", "text/html"},
		{"NoContentType", "", "raw", "application/octet-stream"},
		{"Empty", "text/plain", "", "text/plain"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEvent("a", "", "", base, tt.body)
			e.ContentType = tt.contentType
			h.insert(t, e, 0)
			a := h.getOK(t, "/api/v1/events/"+e.ID+"/body", nil)
			if !bytes.Equal(a.body, []byte(tt.body)) {
				t.Errorf("body: got %q, want %q", a.body, tt.body)
			}
			if got := a.header.Get("Content-Type"); got != tt.want {
				t.Errorf("Content-Type: got %q, want %q", got, tt.want)
			}
			if got := a.header.Get("X-Content-Type-Options"); got != "nosniff" {
				t.Errorf("X-Content-Type-Options: got %q, want nosniff", got)
			}
		})
	}
}

func TestEventNotFound(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	h.fixture(t)
	unknown := hookd.EventIDPrefix + hookd.NewULID(base)
	for _, p := range []string{
		"/api/v1/events/" + unknown, "/api/v1/events/" + unknown + "/body",
		"/api/v1/events/garbage", "/api/v1/events/garbage/body",
		"/api/v1/events/" + h.events[0].RequestID, // a request id is not an event id
	} {
		wantError(t, h.get(t, p, "Bearer "+token), http.StatusNotFound, hookd.ENotFound)
	}
}

type requestJSON struct {
	RequestID  string     `json:"request_id"`
	EventID    string     `json:"event_id"`
	Duplicate  bool       `json:"duplicate"`
	ReceivedAt time.Time  `json:"received_at"`
	Event      *eventJSON `json:"event"`
}

func TestRequests(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	orig := newEvent("a", "t1", "same-id", base, `{"v":1}`)
	h.insert(t, orig, 72*time.Hour)
	dup := newEvent("a", "t1", "same-id", base.Add(time.Minute), `{"v":2}`)
	res := h.insert(t, dup, 72*time.Hour)
	if !res.Duplicate || res.ID != orig.ID {
		t.Fatalf("second insert: got %+v, want a duplicate of %s", res, orig.ID)
	}

	var r requestJSON
	h.getOK(t, "/api/v1/requests/"+orig.RequestID, &r)
	if r.RequestID != orig.RequestID || r.EventID != orig.ID || r.Duplicate || r.Event == nil || r.Event.ID != orig.ID || !r.ReceivedAt.Equal(orig.ReceivedAt) {
		t.Errorf("original request: got %+v, want event %s, duplicate false", r, orig.ID)
	}

	r = requestJSON{}
	h.getOK(t, "/api/v1/requests/"+dup.RequestID, &r)
	if r.RequestID != dup.RequestID || r.EventID != orig.ID || !r.Duplicate || r.Event == nil || r.Event.ID != orig.ID || !r.ReceivedAt.Equal(dup.ReceivedAt) {
		t.Errorf("duplicate request: got %+v, want event %s, duplicate true", r, orig.ID)
	}
	if r.Event != nil && (r.Event.Body == nil || *r.Event.Body != `{"v":1}`) {
		t.Errorf("duplicate request's event body: got %v, want the original's", r.Event.Body)
	}

	for _, id := range []string{
		hookd.RequestIDPrefix + hookd.NewULID(base), // well-formed, unknown
		"garbage",
		"req_",
		"req_not-a-ulid",
		orig.ID, // an event id is not a request id
		"req_" + hookd.NewULID(base) + "x",
	} {
		t.Run(url.PathEscape(id), func(t *testing.T) {
			wantError(t, h.get(t, "/api/v1/requests/"+url.PathEscape(id), "Bearer "+token), http.StatusNotFound, hookd.ENotFound)
		})
	}
}

func TestSources(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	var l struct {
		Data []struct {
			Name         string   `json:"name"`
			Path         string   `json:"path"`
			Verify       []string `json:"verify"`
			DedupeWindow string   `json:"dedupe_window"`
			MaxBody      int64    `json:"max_body"`
		} `json:"data"`
		NextCursor *string `json:"next_cursor"`
	}
	h.getOK(t, "/api/v1/sources", &l)
	var names []string
	for _, s := range l.Data {
		names = append(names, s.Name)
		if s.Path != "/in/"+s.Name || s.Verify == nil {
			t.Errorf("source %s: got path %q verify %v, want /in/%s and a list", s.Name, s.Path, s.Verify, s.Name)
		}
	}
	sort.Strings(names)
	if want := []string{"a", "b", "empty"}; !reflect.DeepEqual(names, want) {
		t.Errorf("sources: got %q, want %q", names, want)
	}
	for _, s := range l.Data {
		switch s.Name {
		case "a":
			if !reflect.DeepEqual(s.Verify, []string{"api_key"}) || s.DedupeWindow != "72h0m0s" || s.MaxBody != 1<<20 {
				t.Errorf("source a: got %+v, want verify [api_key], dedupe 72h, max_body 1MiB", s)
			}
		case "b":
			if len(s.Verify) != 0 || s.DedupeWindow != "168h0m0s" || s.MaxBody != 512<<10 {
				t.Errorf("source b: got %+v, want no verify, dedupe 168h, max_body 512KiB", s)
			}
		}
	}
	if l.NextCursor != nil {
		t.Errorf("next_cursor: got %q, want null", *l.NextCursor)
	}
}

func TestSourceStream(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	h.fixture(t)
	var wantA []string
	for _, e := range h.events {
		if e.Source == "a" {
			wantA = append(wantA, e.ID)
		}
	}
	stream := func(t *testing.T, after string, limit int) listJSON {
		t.Helper()
		q := url.Values{}
		if after != "" {
			q.Set("after", after)
		}
		if limit > 0 {
			q.Set("limit", fmt.Sprint(limit))
		}
		var l listJSON
		h.getOK(t, "/api/v1/sources/a/events?"+q.Encode(), &l)
		if l.NextCursor == nil {
			t.Fatalf("after=%q: next_cursor: got null, want a cursor", after)
		}
		return l
	}

	t.Run("All", func(t *testing.T) {
		l := stream(t, "", 0)
		if got := ids(l.Data); !reflect.DeepEqual(got, wantA) {
			t.Errorf("got %q, want source a in commit order %q", got, wantA)
		}
		if last := l.Data[len(l.Data)-1].Cursor; *l.NextCursor != last {
			t.Errorf("next_cursor: got %q, want the last event's cursor %q", *l.NextCursor, last)
		}
	})

	t.Run("Paging", func(t *testing.T) {
		for limit := 1; limit <= len(wantA); limit++ {
			var got []string
			after := ""
			for range 20 {
				l := stream(t, after, limit)
				if len(l.Data) == 0 {
					if *l.NextCursor != after && after != "" {
						t.Errorf("limit %d: empty page: next_cursor got %q, want the given %q", limit, *l.NextCursor, after)
					}
					break
				}
				got = append(got, ids(l.Data)...)
				after = *l.NextCursor
			}
			if !reflect.DeepEqual(got, wantA) {
				t.Errorf("limit %d: got %q, want %q", limit, got, wantA)
			}
		}
	})

	t.Run("NothingNew", func(t *testing.T) {
		l := stream(t, "", 0)
		end := *l.NextCursor
		for range 2 {
			l = stream(t, end, 0)
			if len(l.Data) != 0 || *l.NextCursor != end {
				t.Errorf("after the end: got %d events, next_cursor %q; want none, %q", len(l.Data), *l.NextCursor, end)
			}
		}
		// What comes later continues from there, and only the source's.
		h.insert(t, newEvent("b", "t1", "", base.Add(time.Hour), `{}`), 0)
		late := newEvent("a", "t1", "", base.Add(time.Hour), `{}`)
		h.insert(t, late, 0)
		l = stream(t, end, 0)
		if got := ids(l.Data); !reflect.DeepEqual(got, []string{late.ID}) {
			t.Errorf("after a new event: got %q, want [%s]", got, late.ID)
		}
	})

	t.Run("EmptySource", func(t *testing.T) {
		var raw map[string]json.RawMessage
		h.getOK(t, "/api/v1/sources/empty/events", &raw)
		if string(raw["data"]) != "[]" || string(raw["next_cursor"]) == "null" {
			t.Errorf("empty source: got data %s next_cursor %s, want [] and a cursor", raw["data"], raw["next_cursor"])
		}
		var l listJSON
		h.getOK(t, "/api/v1/sources/empty/events?after=12345", &l)
		if l.NextCursor == nil || *l.NextCursor != "12345" {
			t.Errorf("empty source after=12345: got next_cursor %v, want 12345", l.NextCursor)
		}
	})

	t.Run("UnknownSource", func(t *testing.T) {
		wantError(t, h.get(t, "/api/v1/sources/nope/events", "Bearer "+token), http.StatusNotFound, hookd.ENotFound)
	})

	t.Run("BadCursor", func(t *testing.T) {
		for _, c := range []string{"abc", "-1", "1.5", "9999999999999999999999"} {
			wantError(t, h.get(t, "/api/v1/sources/a/events?after="+url.QueryEscape(c), "Bearer "+token), http.StatusBadRequest, hookd.EInvalid)
		}
		wantError(t, h.get(t, "/api/v1/sources/a/events?limit=0", "Bearer "+token), http.StatusBadRequest, hookd.EInvalid)
	})
}

func TestOpenAPIAndUnknownRoute(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	a := h.getOK(t, "/api/v1/openapi.json", nil)
	if !json.Valid(a.body) || a.header.Get("Content-Type") != "application/json" {
		t.Errorf("openapi.json: got %q, valid %v; want a JSON document", a.header.Get("Content-Type"), json.Valid(a.body))
	}
	wantError(t, h.get(t, "/api/v1/nope", "Bearer "+token), http.StatusNotFound, hookd.ENotFound)
}

// Listings that carry bodies end a page once its bodies pass a byte budget,
// so an answer stays bounded whatever limit asks for; following next_cursor
// still lists every event exactly once. Bodies of '<' and '>' cost up to six
// times their size as JSON strings, plus their base64.
func TestBodyListingsPageByBytes(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	const n = 7
	chunk := bytes.Repeat([]byte("<a>"), 1<<20/3+1)[:1<<20]
	var want []string
	for i := range n {
		body := append([]byte(fmt.Sprintf("%02d", i)), chunk[2:]...)
		e := newEvent("b", "t1", fmt.Sprintf("big-%d", i), base.Add(time.Duration(i)*time.Minute), string(body))
		h.insert(t, e, 0)
		want = append(want, e.ID)
	}
	const maxAnswer = 32 << 20
	walk := func(t *testing.T, path, param string) []string {
		var got []string
		cursor := ""
		for pages := 1; ; pages++ {
			q := url.Values{"limit": {"100"}}
			if cursor != "" {
				q.Set(param, cursor)
			}
			var l listJSON
			a := h.getOK(t, path+"?"+q.Encode(), &l)
			if len(a.body) > maxAnswer {
				t.Fatalf("page %d: got an answer of %d MiB, want under %d MiB", pages, len(a.body)>>20, maxAnswer>>20)
			}
			if pages == 1 && (len(l.Data) >= n || l.NextCursor == nil) {
				t.Fatalf("first page: got %d events, next_cursor %v; want fewer than %d and a cursor", len(l.Data), l.NextCursor, n)
			}
			for _, e := range l.Data {
				if e.Body == nil || len(*e.Body) != 1<<20 {
					t.Fatalf("event %s: body missing or cut", e.ID)
				}
			}
			got = append(got, ids(l.Data)...)
			if l.NextCursor == nil || len(l.Data) == 0 {
				return got
			}
			if *l.NextCursor == cursor || pages > 2*n {
				t.Fatalf("pagination does not advance: cursor %q again", cursor)
			}
			cursor = *l.NextCursor
		}
	}
	t.Run("Events", func(t *testing.T) {
		got := walk(t, "/api/v1/events", "cursor")
		if w := reversed(want); !reflect.DeepEqual(got, w) {
			t.Errorf("got %q, want every event once, newest first: %q", got, w)
		}
	})
	t.Run("SourceStream", func(t *testing.T) {
		got := walk(t, "/api/v1/sources/b/events", "after")
		if !reflect.DeepEqual(got, want) {
			t.Errorf("got %q, want every event once, in commit order: %q", got, want)
		}
	})
}
