package browsertest

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"
)

// Findings of the console's review (issue 15): sign-out after another tab
// signed in again, a replay whose job the server no longer knows, and a
// destination URL edited around its masked secret.

// Tab 2 signing in again gives the browser a new session (and CSRF
// token) that tab 1 does not know; Sign out in tab 1 must still end the
// browser's session on the server, not only say "Signed out".
func TestSignOutAfterAnotherTabSignedIn(t *testing.T) {
	b := newBrowser(t)
	s := startHookd(t)

	one := b.newTab("tab1")
	one.open(s.Base, "#/events")
	one.signIn(adminToken)

	two := b.newTab("tab2")
	two.open(s.Base, "#/events")
	two.waitText("#auth-label", "Signed in")
	two.click("#auth-change")
	two.signIn(adminToken)
	c := cookie(two, s.Base, "hookd_session")
	if c == nil {
		t.Fatal("after tab 2's sign-in the browser holds no hookd_session cookie")
	}

	// Tab 1's first DELETE carries the old session's CSRF token: 403.
	one.expect("tab 1 signs out with the CSRF token of the session before tab 2's sign-in", func(p problem) bool {
		return p.source == "network" && strings.Contains(p.url, "/api/v1/session") && strings.Contains(p.text, "status of 403")
	})
	one.click("#auth-forget")
	one.waitText("#auth-label", "Signed out")
	if code := s.sessionStatus(t, c.Name, c.Value); code != http.StatusUnauthorized {
		t.Errorf("tab 1 says signed out, but the browser's session cookie replayed by a Go client answers %d, want 401", code)
	}
	inBrowser := eval[int](one, "GET /api/v1/session from tab 1", `fetch('/api/v1/session', {credentials: 'same-origin', cache: 'no-store'}).then((r) => r.status)`)
	if inBrowser != http.StatusUnauthorized {
		t.Errorf("GET /api/v1/session from tab 1 after its sign-out: %d, want 401", inBrowser)
	}
	one.checkConsole()
}

// "Sign in again" ends the previous session on the server before the new
// one replaces its cookie: replayed from Go, the old cookie gets 401 and
// the new one 200. When the previous session cannot be ended, the sign-in
// still happens and the console says so.
func TestSignInAgainEndsThePreviousSession(t *testing.T) {
	b := newBrowser(t)
	s := startHookd(t)

	tb := b.newTab("operator")
	tb.open(s.Base, "#/events")
	tb.signIn(adminToken)
	first := cookie(tb, s.Base, "hookd_session")
	if first == nil {
		t.Fatal("after signing in the browser holds no hookd_session cookie")
	}
	tb.click("#auth-change")
	tb.signIn(adminToken)
	second := cookie(tb, s.Base, "hookd_session")
	if second == nil || second.Value == first.Value {
		t.Fatalf("after signing in again the session cookie is %v, want a new one", second)
	}
	if code := s.sessionStatus(t, first.Name, first.Value); code != http.StatusUnauthorized {
		t.Errorf("the previous session's cookie replayed by a Go client answers %d after signing in again, want 401", code)
	}
	if code := s.sessionStatus(t, second.Name, second.Value); code != http.StatusOK {
		t.Errorf("the new session's cookie replayed by a Go client answers %d, want 200", code)
	}

	// The end of the previous session fails (503): the sign-in goes on,
	// and the console says the previous session stays valid.
	eval[bool](tb, "fail the session's DELETE", `(() => {
		const real = window.fetch;
		window.fetch = (input, init) => {
			if (String(input) === '/api/v1/session' && init && init.method === 'DELETE') {
				return Promise.resolve(new Response(JSON.stringify({error: {code: 'unavailable', message: 'fake outage'}}),
					{status: 503, headers: {'Content-Type': 'application/json'}}));
			}
			return real(input, init);
		};
		return true;
	})()`)
	tb.click("#auth-change")
	tb.signIn(adminToken)
	third := cookie(tb, s.Base, "hookd_session")
	if third == nil || third.Value == second.Value {
		t.Fatalf("after signing in again with the end refused the session cookie is %v, want a new one", third)
	}
	tb.waitVisible("#error-bar")
	if msg := tb.text("#error-text"); !strings.Contains(msg, "previous session could not be ended (fake outage)") || !strings.Contains(msg, "stays valid") {
		t.Errorf("the error bar says %q, want it to say the previous session could not be ended and stays valid", msg)
	}
	if code := s.sessionStatus(t, third.Name, third.Value); code != http.StatusOK {
		t.Errorf("the newest session's cookie answers %d, want 200", code)
	}
	tb.checkConsole()
}

// A replay being followed whose job the server no longer knows (404, as
// after a restart) says so instead of showing "running" for ever; a
// failed poll before it (503) does not stop the following.
func TestReplayProgressWhenTheJobIsGone(t *testing.T) {
	b := newBrowser(t)
	s := startHookd(t)
	orders := newRecorder(t)
	addOrdersDestination(t, s, orders)
	id := s.ingest(t, `{"id":"gone-1","type":"order.created"}`)
	s.waitDelivery(t, id, "orders", "succeeded")

	tb := b.newTab("operator")
	tb.open(s.Base, "#/events?type=order.*")
	tb.signIn(adminToken)
	waitEventsListed(tb)
	// The page's polls of the job get a 503, then 404s; everything else
	// goes to hookd.
	eval[bool](tb, "fake the job's polls", `(() => {
		const real = window.fetch;
		window.__polls = 0;
		window.fetch = (input, init) => {
			const u = String(input);
			if (/\/api\/v1\/replays\/[^/?]+$/.test(u) && (!init || !init.method || init.method === 'GET')) {
				window.__polls++;
				const [status, code] = window.__polls === 1 ? [503, 'unavailable'] : [404, 'not_found'];
				return Promise.resolve(new Response(JSON.stringify({error: {code, message: 'fake ' + status}}),
					{status, headers: {'Content-Type': 'application/json'}}));
			}
			return real(input, init);
		};
		return true;
	})()`)
	tb.click("#bulk-replay")
	tb.click("#bulk-replay-confirm")
	tb.waitJS("the progress to say the job is gone", `(() => { const p = document.getElementById('replay-progress');
		return !!p && p.getAttribute('data-state') === 'gone'; })()`)
	if msg := tb.text("#replay-progress"); !strings.Contains(msg, "no longer knows this replay") {
		t.Errorf("#replay-progress says %q, want it to say hookd no longer knows the replay", msg)
	}
	if polls := eval[int](tb, "count the polls", `window.__polls`); polls < 2 {
		t.Errorf("the job was polled %d times, want the 503 followed by another poll", polls)
	}
	if disabled := eval[bool](tb, "read the replay button", `document.getElementById('bulk-replay').disabled`); disabled {
		t.Error("the replay button stays disabled after the job is gone")
	}
	tb.checkConsole()
}

// A destination URL with a secret in its query shows the secret as ***;
// the URL edited with *** left in it is refused at its field (it would
// be saved with *** for the secret), and the stored URL stays.
func TestDestinationURLEditedAroundItsMask(t *testing.T) {
	b := newBrowser(t)
	s := startHookd(t)
	orders := newRecorder(t)
	stored := orders.srv.URL + "/in?token=tok-secret-0123"
	spec, _ := json.Marshal(map[string]any{"name": "tokened", "type": "http", "url": stored})
	if code, body := s.call(t, http.MethodPost, "/api/v1/destinations", string(spec)); code != http.StatusCreated {
		t.Fatalf("POST /api/v1/destinations: %d %s", code, body)
	}

	tb := b.newTab("operator")
	tb.open(s.Base, "#/destinations/tokened/edit")
	tb.signIn(adminToken)
	tb.waitVisible(`#destination-form input[name="url"]`)
	shown := eval[string](tb, "read the URL field", `document.querySelector('#destination-form input[name="url"]').value`)
	if strings.Contains(shown, "tok-secret-0123") || !strings.HasSuffix(shown, "/in?token=***") {
		t.Fatalf("the URL field shows %q, want the token masked as ***", shown)
	}
	tb.fill(`#destination-form input[name="url"]`, strings.Replace(shown, "/in?", "/other?", 1))
	tb.click(`#destination-form button[type="submit"]`)
	tb.waitVisible(`[data-error-for="url"]`)
	if msg := tb.text(`[data-error-for="url"]`); !strings.Contains(msg, "still holds ***") {
		t.Errorf("the URL's error says %q, want it to say the URL still holds ***", msg)
	}
	if focused := eval[string](tb, "read the focus", `document.activeElement ? document.activeElement.name : ''`); focused != "url" {
		t.Errorf("after the error the focus is on %q, want the URL field", focused)
	}
	code, body := s.call(t, http.MethodGet, "/api/v1/destinations/tokened", "")
	var d struct {
		Definition map[string]any `json:"definition"`
	}
	if code != http.StatusOK || json.Unmarshal(body, &d) != nil {
		t.Fatalf("GET /api/v1/destinations/tokened: %d %s", code, body)
	}
	// The API shows the token redacted (never in clear), the path unchanged.
	if want := orders.srv.URL + "/in?token=xxxxx"; d.Definition["url"] != want {
		t.Errorf("the API shows the URL as %v after the refused edit, want %s (unchanged, its token redacted)", d.Definition["url"], want)
	}
	tb.checkConsole()
}

// A delete's confirmation is safe from the keyboard: Cancel has the
// focus, so Enter pressed twice on Delete does not delete; Escape closes
// the question and gives the focus back to Delete.
func TestDeleteConfirmationFromTheKeyboard(t *testing.T) {
	b := newBrowser(t)
	s := startHookd(t)
	orders := newRecorder(t)
	spec, _ := json.Marshal(map[string]any{"name": "orders", "type": "http", "url": orders.srv.URL + "/orders"})
	if code, body := s.call(t, http.MethodPost, "/api/v1/destinations", string(spec)); code != http.StatusCreated {
		t.Fatalf("POST /api/v1/destinations: %d %s", code, body)
	}
	active := func(tb *tab) string {
		return eval[string](tb, "read the focus", `document.activeElement ? document.activeElement.id : ''`)
	}

	tb := b.newTab("operator")
	tb.open(s.Base, "#/destinations/orders")
	tb.signIn(adminToken)
	tb.waitVisible("#delete-destination")
	eval[chromedp.Void](tb, "focus Delete", `(() => { document.getElementById('delete-destination').focus(); return null; })()`)
	tb.do("press Enter on Delete", chromedp.KeyEvent(kb.Enter))
	tb.waitVisible("#confirm-delete")
	if id := active(tb); id != "cancel-delete" {
		t.Errorf("the confirmation opened with the focus on %q, want cancel-delete", id)
	}
	tb.do("press Enter again", chromedp.KeyEvent(kb.Enter))
	tb.waitJS("the confirmation gone", `!document.getElementById('confirm-delete')`)
	if code, _ := s.call(t, http.MethodGet, "/api/v1/destinations/orders", ""); code != http.StatusOK {
		t.Fatalf("Enter pressed twice on Delete: GET the destination answers %d, want 200 (not deleted)", code)
	}
	if id := active(tb); id != "delete-destination" {
		t.Errorf("after Cancel the focus is on %q, want delete-destination", id)
	}

	tb.do("press Enter on Delete", chromedp.KeyEvent(kb.Enter))
	tb.waitVisible("#confirm-delete")
	tb.do("press Escape", chromedp.KeyEvent(kb.Escape))
	tb.waitJS("the confirmation gone", `!document.getElementById('confirm-delete')`)
	if id := active(tb); id != "delete-destination" {
		t.Errorf("after Escape the focus is on %q, want delete-destination", id)
	}
	if code, _ := s.call(t, http.MethodGet, "/api/v1/destinations/orders", ""); code != http.StatusOK {
		t.Fatalf("after Escape: GET the destination answers %d, want 200", code)
	}
	tb.checkConsole()
}

// Saving a subscription with the form keeps its filter expression and
// enrichment: a PUT replaces the whole subscription, and the form used to
// send only the keys it had fields for. The enrichment's secret, shown
// [redacted], is sent back so and the stored one is kept (the entity API
// still gets it); moved to another host with [redacted] left in, the
// API's refusal is shown at the enrichment field.
func TestSubscriptionFormKeepsExpressionAndEnrichment(t *testing.T) {
	b := newBrowser(t)
	s := startHookd(t)
	orders := newRecorder(t)
	const enrichKey = "enrich-key-0123456789"
	var (
		mu      sync.Mutex
		gotKeys []string
	)
	entity := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		gotKeys = append(gotKeys, r.Header.Get("X-Api-Key"))
		mu.Unlock()
		if r.Header.Get("X-Api-Key") != enrichKey {
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprintf(w, `{"ref": %q}`, strings.TrimPrefix(r.URL.Path, "/claims/"))
	}))
	t.Cleanup(entity.Close)
	enrichURL := entity.URL + "/claims/{{body.ref}}"
	spec, _ := json.Marshal(map[string]any{"name": "orders", "type": "http", "url": orders.srv.URL + "/orders"})
	if code, body := s.call(t, http.MethodPost, "/api/v1/destinations", string(spec)); code != http.StatusCreated {
		t.Fatalf("POST /api/v1/destinations: %d %s", code, body)
	}
	const expr = `type == "order.created" && body.amount > 500`
	subSpec, _ := json.Marshal(map[string]any{"source": "shop", "destination": "orders", "filter_expr": expr,
		"enrich": map[string]any{"url": enrichURL, "into": "c",
			"auth": map[string]any{"type": "header", "header": "X-Api-Key", "value": enrichKey}}})
	code, body := s.call(t, http.MethodPost, "/api/v1/subscriptions", string(subSpec))
	var sub struct {
		ID         string         `json:"id"`
		Active     bool           `json:"active"`
		FilterExpr string         `json:"filter_expr"`
		Enrich     map[string]any `json:"enrich"`
	}
	if code != http.StatusCreated || json.Unmarshal(body, &sub) != nil || sub.ID == "" {
		t.Fatalf("POST /api/v1/subscriptions: %d %s", code, body)
	}

	tb := b.newTab("operator")
	tb.open(s.Base, "#/subscriptions/"+sub.ID+"/edit")
	tb.signIn(adminToken)
	const enrichField = `#subscription-form textarea[name="enrich"]`
	tb.waitVisible(enrichField)
	shown := eval[string](tb, "read the enrichment field", `document.querySelector(`+jsString(enrichField)+`).value`)
	if strings.Contains(shown, enrichKey) || !strings.Contains(shown, `"value": "[redacted]"`) {
		t.Fatalf("the enrichment field shows %s, want the key [redacted]", shown)
	}
	tb.click(`#subscription-form input[name="active"]`)
	tb.click(`#subscription-form button[type="submit"]`)
	tb.waitHash("#/destinations")
	tb.waitText("#flash", "saved")

	code, body = s.call(t, http.MethodGet, "/api/v1/subscriptions/"+sub.ID, "")
	sub.FilterExpr, sub.Enrich, sub.Active = "", nil, true
	if code != http.StatusOK || json.Unmarshal(body, &sub) != nil {
		t.Fatalf("GET the subscription: %d %s", code, body)
	}
	if sub.Active {
		t.Error("the subscription is still active after unticking Active and saving")
	}
	if sub.FilterExpr != expr {
		t.Errorf("after the save filter_expr is %q, want %q kept", sub.FilterExpr, expr)
	}
	if auth, _ := sub.Enrich["auth"].(map[string]any); sub.Enrich == nil || sub.Enrich["url"] != enrichURL || auth["value"] != "[redacted]" {
		t.Errorf("after the save enrich is %v, want it kept", sub.Enrich)
	}

	// Moved to another host with the key left [redacted]: refused, at the
	// enrichment field.
	tb.goHash("#/subscriptions/" + sub.ID + "/edit")
	tb.waitVisible(enrichField)
	tb.click(`#subscription-form input[name="active"]`)
	moved := strings.Replace(shown, entity.URL, "http://127.0.0.2:9", 1)
	moved = strings.Join(strings.Fields(moved), " ") // one line to type
	tb.fill(enrichField, moved)
	tb.expect("the API refuses the kept enrich key for another host", func(p problem) bool {
		return p.source == "network" && strings.Contains(p.url, "/api/v1/subscriptions/") && strings.Contains(p.text, "status of 400")
	})
	tb.click(`#subscription-form button[type="submit"]`)
	tb.waitVisible(`[data-error-for="enrich"]`)
	if msg := tb.text(`[data-error-for="enrich"]`); !strings.Contains(msg, "enrich.auth.value: [redacted] keeps the stored credential only while requests go where they went") {
		t.Errorf("the enrichment's error says %q, want it to name enrich.auth.value and why", msg)
	}
	// Back as shown: saved, active again, and the stored key is used.
	tb.fill(enrichField, strings.Join(strings.Fields(shown), " "))
	tb.click(`#subscription-form button[type="submit"]`)
	tb.waitHash("#/destinations")
	tb.waitText("#flash", "saved")
	id := s.ingest(t, `{"id":"big-1","type":"order.created","amount":900,"ref":"C-1"}`)
	s.waitDelivery(t, id, "orders", "succeeded")
	got := orders.waitLen(t, 1)
	if !strings.Contains(got[0].Body, `"c":{"ref": "C-1"}`) {
		t.Errorf("orders got %s, want the event with its claim under c", got[0].Body)
	}
	mu.Lock()
	keys := slices.Clone(gotKeys)
	mu.Unlock()
	if len(keys) != 1 || keys[0] != enrichKey {
		t.Errorf("the entity API got the keys %q, want the stored key once", keys)
	}
	tb.checkConsole()
}

// The source form: a key the API refuses (too short) is shown at the
// secret's field (the API names verify[0].keys, the form's field is
// verify[0].secrets); with a good key the source is created, and it takes
// a request carrying that key.
func TestSourceFormCreatesASourceWithAKey(t *testing.T) {
	b := newBrowser(t)
	s := startHookd(t)

	tb := b.newTab("operator")
	tb.open(s.Base, "#/sources/new")
	tb.signIn(adminToken)
	tb.waitVisible(`#source-form input[name="name"]`)
	tb.fill(`#source-form input[name="name"]`, "crm")
	tb.fill(`#source-form input[name="verify[0].type"]`, "api_key")
	tb.fill(`#source-form [name="verify[0].secrets"]`, "short")
	tb.expect("a source with a short key: POST /api/v1/sources answers 400", func(p problem) bool {
		return p.source == "network" && strings.HasSuffix(p.url, "/api/v1/sources") && strings.Contains(p.text, "status of 400")
	})
	tb.click(`#source-form button[type="submit"]`)
	tb.waitVisible(`[data-error-for="verify[0].secrets"]`)
	if msg := tb.text(`[data-error-for="verify[0].secrets"]`); !strings.Contains(msg, "shorter than 16") {
		t.Errorf("the key's error says %q, want the API's length rule", msg)
	}
	if code, _ := s.call(t, http.MethodGet, "/api/v1/sources/crm", ""); code != http.StatusNotFound {
		t.Fatalf("after the refused form, GET /api/v1/sources/crm: %d, want 404", code)
	}

	const key = "crm-key-0123456789abcdef"
	tb.fill(`#source-form [name="verify[0].secrets"]`, key)
	tb.click(`#source-form button[type="submit"]`)
	tb.waitHash("#/sources/crm")
	for _, c := range []struct {
		key  string
		want int
	}{{"wrong-key-0123456789abcdef", http.StatusUnauthorized}, {key, http.StatusOK}} {
		req, err := http.NewRequest(http.MethodPost, s.Base+"/in/crm", strings.NewReader(`{"id":"c-1","type":"contact.created"}`))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("X-Api-Key", c.key)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != c.want {
			t.Errorf("POST /in/crm with X-Api-Key %q: %d, want %d", c.key, resp.StatusCode, c.want)
		}
	}
	tb.checkConsole()
}
