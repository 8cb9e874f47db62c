package verify

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"testing"
	"unicode/utf8"

	"hookd"
	"hookd/internal/config"
)

// Whatever a request holds, the generic handshake never panics, answers
// only text/plain or JSON with nosniff, echoes at most MaxChallenge bytes,
// and refuses a wrong token with 403.
func FuzzGenericHandshake(f *testing.F) {
	f.Add("GET", "hub.mode=subscribe&hub.challenge=1158201444&hub.verify_token=a-verify-token-of-ours", []byte(nil), "")
	f.Add("POST", "", []byte(`{"type":"url_verification","challenge":"abc","token":"a-verify-token-of-ours"}`), "")
	f.Add("POST", "hub.mode=subscribe", []byte(`{"type":"url_verification","challenge":"<script>"}`), "a-verify-token-of-ours")
	f.Add("GET", "hub.mode=subscribe&hub.challenge=%FF%FE&hub.verify_token=x", []byte(`[[[[`), "x")
	f.Add("POST", "", []byte(`{"type":"url_verification","challenge":1e400}`), "")
	hs := []*config.Handshake{
		{When: "query:hub.mode=subscribe", Challenge: "query:hub.challenge",
			Token: &config.HandshakeToken{From: "query:hub.verify_token", Values: []string{"a-verify-token-of-ours"}}},
		{When: "json:type=url_verification", Challenge: "json:challenge", Answer: "json:challenge",
			Token: &config.HandshakeToken{From: "json:token", Values: []string{"a-verify-token-of-ours"}}},
		{Method: "POST", When: "query:hub.mode", Challenge: "json:challenge", Status: 202,
			Token: &config.HandshakeToken{From: "header:X-Token", Values: []string{"a-verify-token-of-ours"}}},
	}
	var gs []Handshaker
	for _, h := range hs {
		g, err := NewGenericHandshake(nil, h)
		if err != nil {
			f.Fatal(err)
		}
		gs = append(gs, g.(Handshaker))
	}
	f.Fuzz(func(t *testing.T, method, query string, body []byte, token string) {
		r := &Request{Method: method, URL: &url.URL{Path: "/in/x", RawQuery: query}, Header: http.Header{"X-Token": {token}}, Body: body}
		for i, g := range gs {
			if _, ok := g.DetectHandshake(r); !ok {
				continue
			}
			ans, err := g.AnswerHandshake(context.Background(), r)
			if err != nil {
				if c := hookd.ErrorCode(err); c != hookd.EForbidden && c != hookd.EInvalid {
					t.Fatalf("handshake %d: refused with %s (%v), want forbidden or invalid", i, c, err)
				}
				continue
			}
			hr := &hsRequest{sig: sigRequest{r: r}}
			if tok, _ := hr.lookup(g.(*genericHandshake).token); tok != "a-verify-token-of-ours" {
				t.Errorf("handshake %d: answered with the token %q", i, tok)
			}
			if ans.Header.Get("X-Content-Type-Options") != "nosniff" {
				t.Errorf("handshake %d: no nosniff", i)
			}
			switch ans.ContentType {
			case "text/plain; charset=utf-8":
				if len(ans.Body) == 0 || len(ans.Body) > MaxChallenge {
					t.Errorf("handshake %d: echoed %d bytes", i, len(ans.Body))
				}
			case "application/json":
				var m map[string]string
				if err := json.Unmarshal(ans.Body, &m); err != nil || len(m) != 1 || !utf8.Valid(ans.Body) {
					t.Errorf("handshake %d: answer %q is not one JSON field", i, ans.Body)
				}
			default:
				t.Errorf("handshake %d: content type %q", i, ans.ContentType)
			}
		}
	})
}
