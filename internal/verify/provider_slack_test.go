package verify

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"

	"hookd"
)

// shakeReq returns a request with the given method, query, header pairs
// and body.
func shakeReq(method, query, body string, kv ...string) *Request {
	h := http.Header{}
	for i := 0; i+1 < len(kv); i += 2 {
		h.Set(kv[i], kv[i+1])
	}
	return &Request{Method: method, URL: &url.URL{Path: "/in/p", RawQuery: query}, Header: h, Body: []byte(body)}
}

// shakeMAC returns the hex HMAC-SHA256 of the concatenated parts.
func shakeMAC(secret string, parts ...string) string {
	m := hmac.New(sha256.New, []byte(secret))
	for _, p := range parts {
		m.Write([]byte(p))
	}
	return hex.EncodeToString(m.Sum(nil))
}

func shakeHandshaker(t *testing.T, typ string, opts map[string]any) Handshaker {
	t.Helper()
	v := sigMustBuild(t, typ, opts, sigClock(sigT0))
	h, ok := v.(Handshaker)
	if !ok {
		t.Fatalf("%s: got %T, want a Handshaker", typ, v)
	}
	return h
}

// shakeStatus is the HTTP status of a handshake's error (0 for nil).
func shakeStatus(err error) string {
	if err == nil {
		return ""
	}
	return hookd.ErrorCode(err)
}

func TestSlackDetectHandshake(t *testing.T) {
	t.Parallel()
	h := shakeHandshaker(t, "slack", map[string]any{"secrets": []any{"8f742231b10e8888abcd99yyyzzz85a5"}})
	for _, c := range []struct {
		name, method, body string
		want               bool
	}{
		{"URLVerification", http.MethodPost, `{"token":"t","challenge":"c","type":"url_verification"}`, true},
		{"Spaces", http.MethodPost, " \n{\"type\" : \"url_verification\", \"challenge\":\"c\"}", true},
		{"EventCallback", http.MethodPost, `{"type":"event_callback","event":{"type":"url_verification"}}`, false},
		{"TypeNotString", http.MethodPost, `{"type":["url_verification"]}`, false},
		{"NotJSON", http.MethodPost, `type=url_verification&challenge=c`, false},
		{"Truncated", http.MethodPost, `{"type":"url_verification","challenge":"c"`, false},
		{"TooDeep", http.MethodPost, `{"type":"url_verification","x":` + strings.Repeat("[", 200) + strings.Repeat("]", 200) + `}`, false},
		{"Get", http.MethodGet, `{"type":"url_verification"}`, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			k, ok := h.DetectHandshake(shakeReq(c.method, "", c.body))
			if ok != c.want {
				t.Fatalf("got %v, want %v", ok, c.want)
			}
			if ok && (k.Name != "slack.url_verification" || !k.Signed) {
				t.Errorf("got %+v, want slack.url_verification, signed", k)
			}
		})
	}
	if m := h.HandshakeMethods(); len(m) != 0 {
		t.Errorf("methods: got %v, want none besides POST", m)
	}
}

// TestHandshakeChallengeBounds: a challenge hookd would echo is bounded
// and printable; anything else is a 400.
func TestHandshakeChallengeBounds(t *testing.T) {
	t.Parallel()
	h := shakeHandshaker(t, "slack", map[string]any{"secrets": []any{"8f742231b10e8888abcd99yyyzzz85a5"}})
	for _, c := range []struct {
		name, challenge string
		want            string // "" for answered
	}{
		{"Plain", `3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P`, ""},
		{"Escaped", `a\u00e9b`, ""},
		{"Longest", strings.Repeat("a", handshakeMaxChallenge), ""},
		{"TooLong", strings.Repeat("a", handshakeMaxChallenge+1), hookd.EInvalid},
		{"Empty", ``, hookd.EInvalid},
		{"Newline", `a\nb`, hookd.EInvalid},
		{"NUL", `a\u0000b`, hookd.EInvalid},
	} {
		t.Run(c.name, func(t *testing.T) {
			a, err := h.AnswerHandshake(context.Background(), shakeReq(http.MethodPost, "", `{"type":"url_verification","challenge":"`+c.challenge+`"}`))
			if got := shakeStatus(err); got != c.want {
				t.Fatalf("got %q (%v), want %q", got, err, c.want)
			}
			if err == nil && (a.ContentType != "text/plain; charset=utf-8" || a.Header.Get("X-Content-Type-Options") != "nosniff" || strings.ContainsAny(string(a.Body), "\\\n")) {
				t.Errorf("got %+v, want the bare challenge as text/plain, nosniff", a)
			}
		})
	}
	if _, err := h.AnswerHandshake(context.Background(), shakeReq(http.MethodPost, "", `{"type":"url_verification","challenge":7}`)); shakeStatus(err) != hookd.EInvalid {
		t.Errorf("a numeric challenge: got %v, want invalid", err)
	}
}

// slackSignedReq is a url_verification Slack signs at sigT0.
func slackSignedReq(secret, body string) *Request {
	ts := strconv.FormatInt(sigT0.Unix(), 10)
	return shakeReq(http.MethodPost, "", body,
		"X-Slack-Request-Timestamp", ts, "X-Slack-Signature", "v0="+shakeMAC(secret, "v0:", ts, ":", body))
}

func TestSlackVerifiesHandshake(t *testing.T) {
	t.Parallel()
	v := sigMustBuild(t, "slack", map[string]any{"secrets": []any{"8f742231b10e8888abcd99yyyzzz85a5"}}, sigClock(sigT0))
	body := `{"type":"url_verification","challenge":"c"}`
	if err := v.Verify(context.Background(), slackSignedReq("8f742231b10e8888abcd99yyyzzz85a5", body)); err != nil {
		t.Errorf("signed: got %v, want nil", err)
	}
	if err := v.Verify(context.Background(), slackSignedReq("8f742231b10e8888abcd99yyyzzz85a6", body)); shakeStatus(err) != hookd.EUnauthorized {
		t.Errorf("wrong secret: got %v, want unauthorized", err)
	}
}
