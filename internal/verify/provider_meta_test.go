package verify

import (
	"context"
	"net/http"
	"strings"
	"testing"

	"hookd"
)

func TestMetaOptions(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		name string
		opts map[string]any
		want string // part of the error, "" for none
	}{
		{"Valid", map[string]any{"secrets": []any{"app-secret-0123456789"}, "verify_token": "tok"}, ""},
		{"NoToken", map[string]any{"secrets": []any{"app-secret-0123456789"}}, "verify_token: required"},
		{"NoSecret", map[string]any{"verify_token": "tok"}, "secrets"},
		{"Unknown", map[string]any{"secrets": []any{"s"}, "verify_token": "tok", "verifytoken": "x"}, "verifytoken"},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, err := sigTryBuild("meta", c.opts, sigClock(sigT0))
			if c.want == "" && err != nil || c.want != "" && (err == nil || !strings.Contains(err.Error(), c.want)) {
				t.Errorf("got %v, want an error containing %q", err, c.want)
			}
		})
	}
}

func TestMetaHandshake(t *testing.T) {
	t.Parallel()
	h := shakeHandshaker(t, "meta", map[string]any{"secrets": []any{"app-secret-0123456789"}, "verify_token": "meatyhamhock"})
	if m := h.HandshakeMethods(); len(m) != 1 || m[0] != http.MethodGet {
		t.Errorf("methods: got %v, want [GET]", m)
	}
	for _, c := range []struct {
		name, method, query string
		detect              bool
		want                string // error code, "" for answered
	}{
		{"Subscribe", http.MethodGet, "hub.mode=subscribe&hub.challenge=1158201444&hub.verify_token=meatyhamhock", true, ""},
		{"WrongToken", http.MethodGet, "hub.mode=subscribe&hub.challenge=1158201444&hub.verify_token=meatyhamhocks", true, hookd.EForbidden},
		{"EmptyToken", http.MethodGet, "hub.mode=subscribe&hub.challenge=1158201444&hub.verify_token=", true, hookd.EForbidden},
		{"Unsubscribe", http.MethodGet, "hub.mode=unsubscribe&hub.challenge=1158201444&hub.verify_token=meatyhamhock", true, hookd.EForbidden},
		{"NoChallenge", http.MethodGet, "hub.mode=subscribe&hub.verify_token=meatyhamhock", true, hookd.EInvalid},
		{"OnlyToken", http.MethodGet, "hub.verify_token=x", true, hookd.EForbidden},
		{"NoHub", http.MethodGet, "mode=subscribe", false, ""},
		{"Post", http.MethodPost, "hub.mode=subscribe&hub.challenge=1&hub.verify_token=meatyhamhock", false, ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			r := shakeReq(c.method, c.query, "")
			k, ok := h.DetectHandshake(r)
			if ok != c.detect {
				t.Fatalf("detect: got %v, want %v", ok, c.detect)
			}
			if !ok {
				return
			}
			if k.Name != "meta.subscribe" || k.Signed {
				t.Errorf("kind: got %+v, want meta.subscribe, unsigned", k)
			}
			a, err := h.AnswerHandshake(context.Background(), r)
			if got := shakeStatus(err); got != c.want {
				t.Fatalf("got %q (%v), want %q", got, err, c.want)
			}
			if err == nil && (string(a.Body) != "1158201444" || a.ContentType != "text/plain; charset=utf-8") {
				t.Errorf("answer: got %q %q, want 1158201444 as text/plain", a.Body, a.ContentType)
			}
		})
	}
}
