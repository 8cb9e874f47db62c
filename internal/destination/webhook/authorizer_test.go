package webhook

import (
	"context"
	"encoding/base64"
	"net/http"
	"strings"
	"testing"
)

// The Authorizer (a subscription's enrich fetches) sets what a
// destination's auth sets, and refuses what it refuses.
func TestAuthorizer(t *testing.T) {
	t.Parallel()
	get := func(t *testing.T, m map[string]any) (*Authorizer, *http.Request) {
		t.Helper()
		a, err := NewAuthorizer(nil, m)
		if err != nil {
			t.Fatalf("NewAuthorizer(%v): %v", m["type"], err)
		}
		req, _ := http.NewRequest(http.MethodGet, "https://api.example/x", nil)
		if err := a.Authorize(context.Background(), req); err != nil {
			t.Fatal(err)
		}
		return a, req
	}
	if _, req := get(t, map[string]any{"type": "header", "header": "x-api-key", "value": "k1"}); req.Header.Get("X-Api-Key") != "k1" {
		t.Errorf("header: got %v", req.Header)
	}
	if _, req := get(t, map[string]any{"type": "basic", "username": "u", "password": "p"}); req.Header.Get("Authorization") != "Basic "+base64.StdEncoding.EncodeToString([]byte("u:p")) {
		t.Errorf("basic: got %v", req.Header)
	}
	te := newTokenEndpoint(t, 3600)
	a, req := get(t, map[string]any{"type": "oauth2", "token_url": te.URL, "client_id": authClientID, "client_secret": authSecret})
	if req.Header.Get("Authorization") != "Bearer tok-1" {
		t.Fatalf("oauth2: got %v", req.Header)
	}
	_ = a.Authorize(context.Background(), req)
	if req.Header.Get("Authorization") != "Bearer tok-1" || te.requests.Load() != 1 {
		t.Fatalf("oauth2: the token is not reused (%d token requests)", te.requests.Load())
	}
	a.Rejected(req) // a 401: the next request gets a fresh token
	_ = a.Authorize(context.Background(), req)
	if req.Header.Get("Authorization") != "Bearer tok-2" {
		t.Fatalf("oauth2 after a 401: got %v, want tok-2", req.Header.Get("Authorization"))
	}

	for _, c := range []struct {
		m    map[string]any
		want string
	}{
		{map[string]any{"type": "basic"}, "auth.username: required"},
		{map[string]any{"type": "header", "header": "X-Key"}, "auth.value: required"},
		{map[string]any{"type": "bearer", "token": "s3cr3t"}, "token"},
		{map[string]any{"type": "header", "header": "X-Key", "value": "s3cr3t", "username": "u"}, "auth.username: not an option of type header"},
		{map[string]any{"type": "oauth2", "client_id": "c", "client_secret": "s3cr3t"}, "auth.token_url: required"},
	} {
		_, err := NewAuthorizer(nil, c.m)
		if err == nil || !strings.Contains(err.Error(), c.want) || strings.Contains(err.Error(), "s3cr3t") {
			t.Errorf("NewAuthorizer(%v) = %v, want an error with %q and no secret", c.m["type"], err, c.want)
		}
	}
}
