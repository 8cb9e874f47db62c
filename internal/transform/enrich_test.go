package transform

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"hookd/internal/destination"
	"hookd/internal/egress"
)

func TestParseTemplate(t *testing.T) {
	t.Parallel()
	ok := []string{
		"https://api.example/claims/{{body.claimRef}}",
		"https://api.example/claims/{{ body.claim.ref }}?src={{source}}&t={{type}}",
		"http://api.example:8080/e/{{id}}/{{key}}",
		"https://api.example/static",
	}
	for _, s := range ok {
		if _, err := ParseTemplate(s); err != nil {
			t.Errorf("ParseTemplate(%q): %v", s, err)
		}
	}
	bad := map[string]string{
		"":                                      "required",
		"ftp://api.example/{{id}}":              "only http and https",
		"https://{{body.host}}/claims":          "only in the path and the query",
		"https://api.{{body.x}}.example/claims": "only in the path and the query",
		"https://{{body.h}}":                    "only in the path and the query",
		"https://api.example/{{body}}":          "unknown placeholder",
		"https://api.example/{{env.SECRET}}":    "unknown placeholder",
		"https://api.example/{{id":              "without its '}}'",
		"https://api.example/id}}":              "without its '{{'",
		"https://user:pw@api.example/{{id}}":    "credentials",
		"/claims/{{id}}":                        "only http and https",
		"https://api.example/{{id}}#frag":       "fragment",
	}
	for s, want := range bad {
		_, err := ParseTemplate(s)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("ParseTemplate(%q) error = %v, want one containing %q", s, err, want)
		}
	}
}

func TestTemplateExpandEscapes(t *testing.T) {
	t.Parallel()
	tm, err := ParseTemplate("https://api.example/claims/{{body.ref}}/{{body.n}}?q={{body.q}}&a={{body.list.1}}&ok={{body.ok}}")
	if err != nil {
		t.Fatal(err)
	}
	got, err := tm.Expand(Event{Body: []byte(`{"ref": "a..b/a b/?x#", "n": 12.50, "q": "a&b=c d", "list": ["x", "y"], "ok": true}`)})
	if err != nil {
		t.Fatal(err)
	}
	want := "https://api.example/claims/a..b%2Fa%20b%2F%3Fx%23/12.50?q=a%26b%3Dc+d&a=y&ok=true"
	if got != want {
		t.Fatalf("Expand = %q, want %q", got, want)
	}
	if got, err := tm.Expand(Event{Body: []byte(`{"ref": "x", "n": "y", "q": "..", "list": [0, 1], "ok": false}`)}); err != nil || got != "https://api.example/claims/x/y?q=..&a=1&ok=false" {
		t.Fatalf("Expand of dots in the query = %q, %v; want them as they are", got, err)
	}
	// A value that would be a dot segment once the server decodes %2E
	// (RFC 3986 equivalence) or %2F (many servers and proxies do) would
	// move up the path on the entity's server, to where the
	// subscription's credentials go: refused, naming the placeholder.
	for _, ref := range []string{"..", ".", "../admin", `..\admin`, "a/../../admin", "%2e%2e", "%2E%2E%2Fadmin", "x/./y"} {
		b, _ := json.Marshal(map[string]any{"ref": ref, "n": 1, "q": "q", "list": []int{0, 1}, "ok": true})
		got, err := tm.Expand(Event{Body: b})
		if err == nil || !strings.HasPrefix(err.Error(), "enrich: body.ref is a \".\" or \"..\" path segment") {
			t.Errorf("Expand with ref %q = %q, %v; want it refused", ref, got, err)
		}
	}
	// Two values that make one dot segment together.
	tm2, err := ParseTemplate("https://api.example/claims/{{body.a}}{{body.b}}/x")
	if err != nil {
		t.Fatal(err)
	}
	if got, err := tm2.Expand(Event{Body: []byte(`{"a": ".", "b": "."}`)}); err == nil {
		t.Errorf("Expand of . and . = %q, want it refused", got)
	}
	for body, name := range map[string]string{`{"n": 1}`: "body.ref", `{"ref": null}`: "body.ref", `{"ref": {"a": 1}}`: "body.ref", `not json`: "body.ref", `{"ref": ""}`: "body.ref"} {
		_, err := tm.Expand(Event{Body: []byte(body)})
		if err == nil || !strings.HasPrefix(err.Error(), "enrich: "+name+" is ") {
			t.Errorf("Expand(%s) error = %v, want enrich: %s is …", body, err, name)
		}
	}
}

func TestWithKeyKeepsTheBody(t *testing.T) {
	t.Parallel()
	for body, want := range map[string]string{
		`{"b": 2, "a": 1}`:         `{"b": 2, "a": 1,"claim":{"x":1}}`,
		"{}\n":                     `{"claim":{"x":1}}`,
		`{"claim": "old", "a": 1}`: `{"a":1,"claim":{"x":1}}`,
	} {
		obj, err := bodyObject([]byte(body))
		if err != nil {
			t.Fatal(err)
		}
		if got := string(withKey([]byte(body), obj, "claim", []byte(`{"x":1}`))); got != want {
			t.Errorf("withKey(%s) = %s, want %s", body, got, want)
		}
	}
}

// entityServer answers GET /claims/{ref} with {"ref": ref, "n": count}
// or the status status() gives, counting requests.
type entityServer struct {
	*httptest.Server
	hits   atomic.Int64
	status atomic.Int64 // 0: 200
	auth   atomic.Value // last Authorization header
	gate   chan struct{}
}

func newEntityServer(t *testing.T) *entityServer {
	es := &entityServer{}
	es.auth.Store("")
	es.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n := es.hits.Add(1)
		es.auth.Store(r.Header.Get("Authorization"))
		if es.gate != nil {
			<-es.gate
		}
		if s := es.status.Load(); s != 0 {
			w.WriteHeader(int(s))
			return
		}
		ref := strings.TrimPrefix(r.URL.Path, "/claims/")
		_ = json.NewEncoder(w).Encode(map[string]any{"ref": ref, "n": n})
	}))
	t.Cleanup(es.Close)
	return es
}

// loopbackGuard is a guard that allows 127.0.0.0/8, as the destination
// tests' guards do for their httptest servers.
func loopbackGuard(t *testing.T) *egress.Guard {
	t.Helper()
	g, err := egress.NewGuard([]string{"127.0.0.0/8"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	return g
}

type staticAuth string

func (a staticAuth) Authorize(_ context.Context, r *http.Request) error {
	r.Header.Set("Authorization", string(a))
	return nil
}

func TestEnricherFetchesCachesAndClassifies(t *testing.T) {
	t.Parallel()
	es := newEntityServer(t)
	now := time.Unix(1_700_000_000, 0)
	var mu sync.Mutex
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	en, err := NewEnricher(EnrichSpec{URL: es.URL + "/claims/{{body.claimRef}}", Into: "claim", Cache: 5 * time.Minute, Auth: map[string]any{"type": "x"}},
		EnrichOptions{Guard: loopbackGuard(t), Now: clock, NewAuth: func(map[string]any) (Authorizer, error) { return staticAuth("Bearer s3cr3t"), nil }})
	if err != nil {
		t.Fatal(err)
	}
	ev := Event{ID: "evt_1", Body: []byte(`{"claimRef": "C-1", "amount": 3}`)}
	body, err := en.Enrich(context.Background(), ev)
	if err != nil {
		t.Fatal(err)
	}
	var got struct {
		Amount int
		Claim  struct {
			Ref string
			N   int
		}
	}
	if err := json.Unmarshal(body, &got); err != nil || got.Amount != 3 || got.Claim.Ref != "C-1" || got.Claim.N != 1 {
		t.Fatalf("body = %s (%v), want amount 3 and claim {ref C-1, n 1}", body, err)
	}
	if a := es.auth.Load(); a != "Bearer s3cr3t" {
		t.Fatalf("Authorization = %q, want the auth's", a)
	}
	// Cached: no second request within the TTL.
	if _, err := en.Enrich(context.Background(), ev); err != nil || es.hits.Load() != 1 {
		t.Fatalf("second Enrich: err %v, requests %d, want 1 (cached)", err, es.hits.Load())
	}
	// Past the TTL: fetched again. A failure is retriable and not cached.
	mu.Lock()
	now = now.Add(6 * time.Minute)
	mu.Unlock()
	es.status.Store(503)
	_, err = en.Enrich(context.Background(), ev)
	if err == nil || destination.IsPermanent(err) || err.Error() != "enrich: GET "+es.URL+"/claims/C-1 answered 503" {
		t.Fatalf("Enrich against a 503 = %v, want a retriable 'enrich: GET … answered 503'", err)
	}
	if strings.Contains(err.Error(), "s3cr3t") {
		t.Fatal("the error shows the credentials")
	}
	es.status.Store(404)
	if _, err = en.Enrich(context.Background(), ev); err == nil || destination.IsPermanent(err) {
		t.Fatalf("Enrich against a 404 = %v, want a retriable error", err)
	}
	es.status.Store(0)
	if _, err = en.Enrich(context.Background(), ev); err != nil || es.hits.Load() != 4 {
		t.Fatalf("after recovery: err %v, requests %d, want 4", err, es.hits.Load())
	}
	// What the event lacks is a permanent failure, without a request.
	_, err = en.Enrich(context.Background(), Event{Body: []byte(`{"other": 1}`)})
	if !destination.IsPermanent(err) || !strings.Contains(err.Error(), "enrich: body.claimRef is missing") {
		t.Fatalf("Enrich without claimRef = %v, want permanent 'enrich: body.claimRef is missing'", err)
	}
	_, err = en.Enrich(context.Background(), Event{Body: []byte(`["C-1"]`)})
	if !destination.IsPermanent(err) || !strings.Contains(err.Error(), "not a JSON object") {
		t.Fatalf("Enrich of an array body = %v, want permanent 'not a JSON object'", err)
	}
	if es.hits.Load() != 4 {
		t.Fatalf("requests = %d, want 4", es.hits.Load())
	}
}

func TestEnricherAnswerNotJSONOrTooLarge(t *testing.T) {
	t.Parallel()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/big" {
			_, _ = w.Write([]byte(`"` + strings.Repeat("a", MaxEntitySize) + `"`))
			return
		}
		_, _ = w.Write([]byte("<html>"))
	}))
	t.Cleanup(srv.Close)
	for path, want := range map[string]string{"/html": "not JSON", "/big": "larger than"} {
		en, err := NewEnricher(EnrichSpec{URL: srv.URL + path + "?token={{id}}", Into: "e"}, EnrichOptions{Guard: loopbackGuard(t)})
		if err != nil {
			t.Fatal(err)
		}
		_, err = en.Enrich(context.Background(), Event{ID: "secret-ish", Body: []byte(`{}`)})
		if err == nil || destination.IsPermanent(err) || !strings.Contains(err.Error(), want) || strings.Contains(err.Error(), "secret-ish") {
			t.Errorf("%s: Enrich = %v, want a retriable error with %q and no query", path, err, want)
		}
	}
}

func TestEnricherConcurrentMissesShareOneFetch(t *testing.T) {
	t.Parallel()
	es := newEntityServer(t)
	es.gate = make(chan struct{})
	en, err := NewEnricher(EnrichSpec{URL: es.URL + "/claims/{{body.r}}", Into: "c", Cache: time.Minute}, EnrichOptions{Guard: loopbackGuard(t)})
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	errs := make(chan error, 20)
	for i := 0; i < 20; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := en.Enrich(context.Background(), Event{Body: []byte(`{"r": "same"}`)})
			errs <- err
		}()
	}
	// Wait for the one request to be in the handler, then let it answer.
	deadline := time.Now().Add(10 * time.Second)
	for es.hits.Load() == 0 && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	close(es.gate)
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	if n := es.hits.Load(); n != 1 {
		t.Fatalf("requests = %d, want 1 shared by 20 concurrent misses", n)
	}
}

func TestEnricherGuardRefusesLoopback(t *testing.T) {
	t.Parallel()
	es := newEntityServer(t)
	g, err := egress.NewGuard(nil, nil) // the default mode: loopback refused
	if err != nil {
		t.Fatal(err)
	}
	// A literal loopback address is refused when the enricher is built.
	_, err = NewEnricher(EnrichSpec{URL: es.URL + "/claims/{{id}}", Into: "c"}, EnrichOptions{Guard: g})
	if !errors.Is(err, egress.ErrRefused) {
		t.Fatalf("NewEnricher(loopback URL) = %v, want an egress refusal", err)
	}
	// A name that resolves to loopback is refused when dialed.
	g.Resolver = resolverFunc(func(string) ([]netip.Addr, error) { return []netip.Addr{netip.MustParseAddr("127.0.0.1")}, nil })
	port := es.URL[strings.LastIndex(es.URL, ":"):]
	g2, _ := egress.NewGuard(nil, []string{"entity.test"})
	g2.Resolver = g.Resolver
	en, err := NewEnricher(EnrichSpec{URL: "http://entity.test" + port + "/claims/{{id}}", Into: "c"}, EnrichOptions{Guard: g2})
	if err != nil {
		t.Fatal(err)
	}
	_, err = en.Enrich(context.Background(), Event{ID: "evt_1", Body: []byte(`{}`)})
	if err == nil || destination.IsPermanent(err) || !strings.Contains(err.Error(), "loopback") {
		t.Fatalf("Enrich via a name resolving to loopback = %v, want a retriable guard refusal", err)
	}
	if es.hits.Load() != 0 {
		t.Fatal("the entity server was reached")
	}
}

type resolverFunc func(host string) ([]netip.Addr, error)

func (f resolverFunc) LookupNetIP(_ context.Context, _, host string) ([]netip.Addr, error) {
	return f(host)
}

func TestEnrichSpecCheck(t *testing.T) {
	t.Parallel()
	for spec, want := range map[*EnrichSpec]string{
		{URL: "https://a.example/{{id}}", Into: "a.b"}:                       "into:",
		{URL: "https://a.example/{{id}}", Into: ""}:                          "into:",
		{URL: "https://a.example/{{id}}", Into: "c", Cache: -1}:              "cache:",
		{URL: "https://a.example/{{id}}", Into: "c", Timeout: 2 * time.Hour}: "timeout:",
		{URL: "https://{{id}}.example/", Into: "c"}:                          "url:",
	} {
		if err := spec.Check(); err == nil || !strings.HasPrefix(err.Error(), want) {
			t.Errorf("Check(%+v) = %v, want %q…", *spec, err, want)
		}
	}
	if _, err := NewEnricher(EnrichSpec{URL: "https://a.example/{{id}}", Into: "c", Auth: map[string]any{"type": "basic"}}, EnrichOptions{}); err == nil {
		t.Error("auth without an AuthFunc was accepted")
	}
}

func TestCacheBounded(t *testing.T) {
	t.Parallel()
	c := NewCache(nil)
	for i := 0; i < MaxCacheEntries+50; i++ {
		c.put(strings.Repeat("k", 1+i%7)+string(rune('a'+i%26))+time.Duration(i).String(), []byte("{}"), time.Hour)
	}
	if n := c.Len(); n > MaxCacheEntries {
		t.Fatalf("cache holds %d entries, more than %d", n, MaxCacheEntries)
	}
	big := make([]byte, 1<<20)
	for i := 0; i < 100; i++ {
		c.put(time.Duration(i).String()+"big", big, time.Hour)
	}
	c.mu.Lock()
	b := c.bytes
	c.mu.Unlock()
	if b > MaxCacheBytes {
		t.Fatalf("cache holds %d bytes, more than %d", b, MaxCacheBytes)
	}
}

// The cache is shared by an engine's subscriptions: one with no cache, or
// a shorter one, is not served what another fetched for longer.
func TestEnricherSharedCacheHonoursEachSubscriptionsDuration(t *testing.T) {
	t.Parallel()
	es := newEntityServer(t)
	now := time.Unix(1_700_000_000, 0)
	var mu sync.Mutex
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	cache := NewCache(clock)
	enricher := func(d time.Duration) *Enricher {
		en, err := NewEnricher(EnrichSpec{URL: es.URL + "/claims/{{body.ref}}", Into: "claim", Cache: d},
			EnrichOptions{Guard: loopbackGuard(t), Now: clock, Cache: cache})
		if err != nil {
			t.Fatal(err)
		}
		return en
	}
	hour, none, minute := enricher(time.Hour), enricher(0), enricher(time.Minute)
	ev := Event{Body: []byte(`{"ref": "C-1"}`)}
	enrich := func(en *Enricher, wantHits int64, what string) {
		t.Helper()
		if _, err := en.Enrich(context.Background(), ev); err != nil {
			t.Fatal(err)
		}
		if got := es.hits.Load(); got != wantHits {
			t.Fatalf("%s: %d requests, want %d", what, got, wantHits)
		}
	}
	enrich(hour, 1, "first fetch, cached for an hour")
	enrich(hour, 1, "the hour's subscription again")
	enrich(none, 2, "a subscription without cache")
	enrich(none, 3, "a subscription without cache, again")
	mu.Lock()
	now = now.Add(5 * time.Minute)
	mu.Unlock()
	enrich(minute, 4, "a one-minute cache, the entry being 5 minutes old")
	enrich(minute, 4, "the one-minute subscription within its minute")
}
