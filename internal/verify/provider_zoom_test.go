package verify

import (
	"context"
	"encoding/json"
	"net/http"
	"strconv"
	"testing"
)

func zoomReq(secret, body string) *Request {
	ts := strconv.FormatInt(sigT0.Unix(), 10)
	return shakeReq(http.MethodPost, "", body,
		"x-zm-request-timestamp", ts, "x-zm-signature", "v0="+shakeMAC(secret, "v0:", ts, ":", body))
}

// TestZoomRotation: with several secret tokens, the answer is made with
// the one that signed the request; a request no secret signed gets none.
func TestZoomRotation(t *testing.T) {
	t.Parallel()
	secrets := []any{"zoom-old-token-0123456789", "zoom-new-token-0123456789"}
	v := sigMustBuild(t, "zoom", map[string]any{"secrets": secrets}, sigClock(sigT0))
	h := v.(Handshaker)
	body := `{"payload":{"plainToken":"qgg8vlvZRS6UYooatFL8Aw"},"event_ts":1700000000000,"event":"endpoint.url_validation"}`
	for _, s := range secrets {
		r := zoomReq(s.(string), body)
		if k, ok := h.DetectHandshake(r); !ok || k.Name != "zoom.url_validation" || !k.Signed {
			t.Fatalf("detect: got %+v %v, want zoom.url_validation, signed", k, ok)
		}
		if err := v.Verify(context.Background(), r); err != nil {
			t.Fatalf("verify: %v", err)
		}
		a, err := h.AnswerHandshake(context.Background(), r)
		if err != nil {
			t.Fatal(err)
		}
		var got zoomValidation
		if err := json.Unmarshal(a.Body, &got); err != nil || a.ContentType != "application/json" {
			t.Fatalf("answer %s (%s): %v", a.Body, a.ContentType, err)
		}
		if want := shakeMAC(s.(string), "qgg8vlvZRS6UYooatFL8Aw"); got.EncryptedToken != want || got.PlainToken != "qgg8vlvZRS6UYooatFL8Aw" {
			t.Errorf("signed with %s: got %+v, want encryptedToken %s", s, got, want)
		}
	}
	if _, err := h.AnswerHandshake(context.Background(), zoomReq("zoom-other-token-0123456789", body)); shakeStatus(err) != "unauthorized" {
		t.Errorf("unsigned by any secret: got %v, want unauthorized", err)
	}
	for name, b := range map[string]string{
		"OtherEvent":   `{"event":"meeting.started","payload":{"note":"endpoint.url_validation"}}`,
		"EventNotText": `{"event":["endpoint.url_validation"]}`,
		"NotJSON":      `event=endpoint.url_validation`,
	} {
		if _, ok := h.DetectHandshake(shakeReq(http.MethodPost, "", b)); ok {
			t.Errorf("%s: detected, want not a handshake", name)
		}
	}
	if _, err := h.AnswerHandshake(context.Background(), zoomReq("zoom-old-token-0123456789", `{"event":"endpoint.url_validation","payload":{}}`)); shakeStatus(err) != "invalid" {
		t.Errorf("no plainToken: got %v, want invalid", err)
	}
}
