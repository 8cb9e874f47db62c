package admin

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"hookd/internal/httpserver"
	"hookd/internal/store/sqlite"
)

// FuzzSession feeds hostile sign-in bodies and session cookies to the
// session endpoints and to a route the cookie authenticates: every answer
// is one of the documented statuses, never a panic, and only the admin
// token signs in.
func FuzzSession(f *testing.F) {
	const tok = "fuzz-admin-token-0123456789"
	for _, s := range []struct{ body, cookie string }{
		{`{"token":"` + tok + `"}`, ""},
		{`{"token":"wrong"}`, "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"},
		{``, "not base64!"},
		{`{"token":1}`, ""},
		{`[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[`, ""},
		{`{"token":"\u0000"}`, "=="},
	} {
		f.Add([]byte(s.body), s.cookie)
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	st, err := sqlite.Open(context.Background(), f.TempDir(), log, sqlite.Options{})
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { st.Close() })
	api := New(Options{Store: st, Errors: &httpserver.Errors{Log: log, RetryAfter: time.Second}, Log: log, Tokens: []string{tok}})
	ok := map[int]bool{200: true, 201: true, 204: true, 400: true, 401: true, 403: true, 413: true, 429: true}
	f.Fuzz(func(t *testing.T, body []byte, cookie string) {
		for _, m := range []struct{ method, path string }{{"POST", "/api/v1/session"}, {"GET", "/api/v1/session"}, {"DELETE", "/api/v1/session"}, {"GET", "/api/v1/events"}} {
			r := httptest.NewRequest(m.method, m.path, bytes.NewReader(body))
			r.Header.Set("Cookie", SessionCookie+"="+cookie)
			w := httptest.NewRecorder()
			api.ServeHTTP(w, r)
			if !ok[w.Code] {
				t.Fatalf("%s %s: status %d, want a documented one; %s", m.method, m.path, w.Code, w.Body)
			}
			if m.method == "POST" && w.Code == http.StatusCreated && !bytes.Contains(body, []byte(tok)) {
				t.Fatalf("signed in with body %q, which holds no admin token", body)
			}
		}
	})
}
