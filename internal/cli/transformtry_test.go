package cli

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"

	"hookd/internal/config"
)

// claimAPI is an entity API on 127.0.0.1: GET /claims/{ref} with the
// header X-Api-Key: k1 answers {"ref": ref, "status": "open"}; the ref
// FAIL answers 503. It counts its requests.
func claimAPI(t *testing.T) (*httptest.Server, *atomic.Int64) {
	var hits atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		ref := strings.TrimPrefix(r.URL.Path, "/claims/")
		switch {
		case r.Header.Get("X-Api-Key") != "k1":
			w.WriteHeader(401)
		case ref == "FAIL":
			w.WriteHeader(503)
		default:
			w.Header().Set("Content-Type", "application/json")
			fmt.Fprintf(w, `{"ref": %q, "status": "open"}`, ref)
		}
	}))
	t.Cleanup(srv.Close)
	return srv, &hits
}

// claimEnrich is the enrich section of the tests: the claim of
// body.claimRef under "claim".
func claimEnrich(entityURL string) map[string]any {
	return map[string]any{
		"url":  entityURL + "/claims/{{body.claimRef}}",
		"into": "claim",
		"auth": map[string]any{"type": "header", "header": "X-Api-Key", "value": "k1"},
	}
}

// readsClaim is a transform that reads the enriched key.
const readsClaim = `function transform(e) {
  console.log("claim", e.body.claim.ref, e.body.claim.status);
  e.body.claimStatus = e.body.claim.status;
  delete e.body.claim;
  return e;
}`

func stepNames(v map[string]any) string {
	steps, _ := v["steps"].([]any)
	var names []string
	for _, s := range steps {
		m, _ := s.(map[string]any)
		if _, ok := m["duration_ms"].(float64); !ok {
			names = append(names, "(no duration_ms)")
		}
		names = append(names, fmt.Sprint(m["name"]))
	}
	return strings.Join(names, ",")
}

// POST /api/v1/transformations/test runs a delivery's steps in its
// order: filter_expr (stopping there when it does not match), the
// enrichment (the entity really fetched), then the transforms; each step
// not given is the subscription's.
func TestTransformTestFilterAndEnrich(t *testing.T) {
	entity, hits := claimAPI(t)
	cfg, err := config.Parse([]byte(fmt.Sprintf(transformConfig, "http://127.0.0.1:1")))
	if err != nil {
		t.Fatal(err)
	}
	cfg.Storage.Path = t.TempDir()
	_, base := startApp(t, cfg, nil)
	call := func(req map[string]any) (int, map[string]any) {
		t.Helper()
		b, _ := json.Marshal(req)
		return apiDo(t, "POST", base+"/api/v1/transformations/test", "tok", string(b))
	}
	sample := func(amount int, ref string) map[string]any {
		return map[string]any{"id": "evt_c", "source": "claims", "type": "claim.updated",
			"headers": map[string]any{"X-Env": "prod"}, "body": map[string]any{"amount": amount, "claimRef": ref}}
	}
	const expr = `body.amount > 500 && headers["x-env"] == "prod"`

	// No match: nothing else runs (no fetch, no transform).
	code, v := call(map[string]any{"event": sample(100, "C-1"), "filter_expr": expr, "enrich": claimEnrich(entity.URL), "transform": readsClaim})
	if code != 200 || v["matched"] != false || v["result"] != nil || v["error"] != nil || stepNames(v) != "filter_expr" {
		t.Fatalf("no match: %d %v, want matched false, no result, only the filter_expr step", code, v)
	}
	if logs, _ := v["logs"].([]any); len(logs) != 0 || hits.Load() != 0 {
		t.Fatalf("no match: logs %v, entity requests %d; want none", v["logs"], hits.Load())
	}

	// A match: the entity is fetched and the transform reads it.
	code, v = call(map[string]any{"event": sample(900, "C-7"), "filter_expr": expr, "enrich": claimEnrich(entity.URL), "transform": readsClaim})
	res, _ := v["result"].(map[string]any)
	body, _ := res["body"].(map[string]any)
	if code != 200 || v["matched"] != true || body["claimStatus"] != "open" || body["claimRef"] != "C-7" || body["claim"] != nil {
		t.Fatalf("match: %d %v, want the transform's result with claimStatus open", code, v)
	}
	if got := stepNames(v); got != "filter_expr,enrich,transform" {
		t.Errorf("steps = %s, want filter_expr,enrich,transform", got)
	}
	if logs, _ := v["logs"].([]any); len(logs) != 1 || logs[0] != "claim C-7 open" {
		t.Errorf("logs = %v", v["logs"])
	}
	if hits.Load() != 1 {
		t.Errorf("entity requests = %d, want 1", hits.Load())
	}

	// Without a filter: matched is true; without a transform, the result
	// is the enriched event.
	code, v = call(map[string]any{"event": sample(1, "C-8"), "enrich": claimEnrich(entity.URL)})
	res, _ = v["result"].(map[string]any)
	body, _ = res["body"].(map[string]any)
	if claim, _ := body["claim"].(map[string]any); code != 200 || v["matched"] != true || claim["ref"] != "C-8" || res["content_type"] != "application/json" || stepNames(v) != "enrich" {
		t.Fatalf("enrich only: %d %v", code, v)
	}

	// A failed fetch: the error, retriable as on a delivery.
	code, v = call(map[string]any{"event": sample(900, "FAIL"), "enrich": claimEnrich(entity.URL), "transform": readsClaim})
	if code != 200 || v["result"] != nil || v["retriable"] != true || v["error"] != "enrich: GET "+entity.URL+"/claims/FAIL answered 503" {
		t.Fatalf("failed fetch: %d %v, want the 503 as a retriable error", code, v)
	}
	// A body without the placeholder's value: not retriable.
	code, v = call(map[string]any{"event": sample(900, ""), "enrich": map[string]any{"url": entity.URL + "/claims/{{body.other}}", "into": "c"}})
	if code != 200 || v["retriable"] != nil || !strings.Contains(fmt.Sprint(v["error"]), "body.other is missing") {
		t.Fatalf("missing value: %d %v, want a non-retriable error", code, v)
	}

	// An invalid expression or enrich: 400, as at creation.
	code, v = call(map[string]any{"event": sample(900, "C-7"), "filter_expr": `body.amount > 500 && hdrs["x"] == "y"`})
	if msg := fmt.Sprint(v["error"]); code != 400 || !strings.Contains(msg, "filter_expr: ERROR: <input>:1:22: undeclared reference to 'hdrs'") {
		t.Fatalf("invalid expression: %d %v, want 400 with 1:22", code, v)
	}
	code, v = call(map[string]any{"event": sample(900, "C-7"), "enrich": map[string]any{"url": entity.URL + "/c", "into": "c", "colour": 1}})
	if msg := fmt.Sprint(v["error"]); code != 400 || !strings.Contains(msg, "colour") {
		t.Fatalf("enrich with an unknown key: %d %v, want 400 naming it", code, v)
	}
	code, v = call(map[string]any{"event": sample(900, "C-7"), "enrich": "x"})
	if code != 400 {
		t.Fatalf("enrich not an object: %d %v, want 400", code, v)
	}

	// A subscription's filter_expr and enrich are used when the request
	// does not give them; one given replaces the subscription's.
	spec, _ := json.Marshal(map[string]any{"source": "shop", "destination": "sink", "filter_expr": expr, "enrich": claimEnrich(entity.URL)})
	code, sub := apiDo(t, "POST", base+"/api/v1/subscriptions", "tok", string(spec))
	if code != 201 {
		t.Fatalf("POST subscription: %d %v", code, sub)
	}
	code, v = call(map[string]any{"event": sample(100, "C-9"), "subscription": sub["id"], "transform": readsClaim})
	if code != 200 || v["matched"] != false || stepNames(v) != "filter_expr" {
		t.Fatalf("the subscription's filter: %d %v, want no match", code, v)
	}
	code, v = call(map[string]any{"event": sample(100, "C-9"), "subscription": sub["id"], "filter_expr": "body.amount < 500", "transform": readsClaim})
	res, _ = v["result"].(map[string]any)
	body, _ = res["body"].(map[string]any)
	if code != 200 || v["matched"] != true || body["claimStatus"] != "open" || stepNames(v) != "filter_expr,enrich,transform" {
		t.Fatalf("the request's filter, the subscription's enrich: %d %v", code, v)
	}
}

// An enrich URL on loopback is refused by the egress guard when the
// configuration does not allow it: a 400 naming the refusal, and no
// request is made.
func TestTransformTestEnrichGuard(t *testing.T) {
	entity, hits := claimAPI(t)
	cfg, err := config.Parse([]byte("admin: {tokens: [tok]}\n"))
	if err != nil {
		t.Fatal(err)
	}
	cfg.Storage.Path = t.TempDir()
	_, base := startApp(t, cfg, nil)
	b, _ := json.Marshal(map[string]any{"event": map[string]any{"body": map[string]any{"claimRef": "C-1"}}, "enrich": claimEnrich(entity.URL)})
	code, v := apiDo(t, "POST", base+"/api/v1/transformations/test", "tok", string(b))
	if msg := fmt.Sprint(v["error"]); code != 400 || !strings.Contains(msg, "enrich: url: ") || !strings.Contains(msg, "loopback") {
		t.Fatalf("loopback enrich: %d %v, want 400 with the guard's refusal of loopback", code, v)
	}
	if hits.Load() != 0 {
		t.Fatalf("entity requests = %d, want 0", hits.Load())
	}
}

// hookd transform test --filter-expr --enrich: the filter decides, the
// enrich file (YAML) is fetched, the script reads the entity.
func TestTransformTestVerbFilterAndEnrich(t *testing.T) {
	entity, hits := claimAPI(t)
	cfg, err := config.Parse([]byte(fmt.Sprintf(transformConfig, "http://127.0.0.1:1")))
	if err != nil {
		t.Fatal(err)
	}
	cfg.Storage.Path = t.TempDir()
	_, base := startApp(t, cfg, nil)
	dir := t.TempDir()
	low, high, enrich, script := dir+"/low.json", dir+"/high.json", dir+"/enrich.yaml", dir+"/t.js"
	writeFile(t, low, `{"id":"evt_l","type":"a","body":{"amount":1,"claimRef":"C-1"}}`)
	writeFile(t, high, `{"id":"evt_h","type":"a","body":{"amount":900,"claimRef":"C-2"}}`)
	writeFile(t, enrich, fmt.Sprintf("url: %s/claims/{{body.claimRef}}\ninto: claim\nauth: {type: header, header: X-Api-Key, value: k1}\ntimeout: 2s\n", entity.URL))
	writeFile(t, script, readsClaim)
	args := func(file string, more ...string) []string {
		return append([]string{"transform", "test", "--server", base, "--token", "tok", "--file", file, "--filter-expr", "body.amount > 500", "--enrich", enrich, "--script", script}, more...)
	}

	out, errOut, code := runCLI(t, nil, args(low)...)
	if code != 0 || !strings.Contains(out, "matched: false") || strings.Contains(out, "result:") || hits.Load() != 0 {
		t.Fatalf("no match: exit %d, %q %q, entity requests %d", code, out, errOut, hits.Load())
	}
	out, errOut, code = runCLI(t, nil, args(high, "-o", "json")...)
	if code != 0 {
		t.Fatalf("match: exit %d: %s", code, errOut)
	}
	var a map[string]any
	if err := json.Unmarshal([]byte(out), &a); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	res, _ := a["result"].(map[string]any)
	if body, _ := res["body"].(map[string]any); a["matched"] != true || body["claimStatus"] != "open" || stepNames(a) != "filter_expr,enrich,transform" {
		t.Fatalf("match: %v", a)
	}
	out, _, code = runCLI(t, nil, args(high)...)
	if code != 0 || !strings.Contains(out, "steps:\n  filter_expr") || !strings.Contains(out, `"claimStatus": "open"`) {
		t.Errorf("match, text: exit %d, %q", code, out)
	}

	// A failed fetch exits 1 and says a delivery would retry.
	writeFile(t, high, `{"id":"evt_h","type":"a","body":{"amount":900,"claimRef":"FAIL"}}`)
	out, _, code = runCLI(t, nil, args(high)...)
	if code != 1 || !strings.Contains(out, "answered 503 (a delivery would retry)") {
		t.Errorf("failed fetch: exit %d, %q", code, out)
	}
	// An invalid expression exits 1 with its position.
	_, errOut, code = runCLI(t, nil, "transform", "test", "--server", base, "--token", "tok", "--file", high, "--filter-expr", "body.amount >")
	if code != 1 || !strings.Contains(errOut, "filter_expr: ERROR: <input>:1:14:") {
		t.Errorf("invalid expression: exit %d, %q", code, errOut)
	}
}
