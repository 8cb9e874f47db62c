package verify

import (
	"context"
	"crypto/hmac"
	"crypto/sha1"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"hookd"
)

func TestPresetsAOptions(t *testing.T) {
	t.Parallel()
	rsaPEM := "-----BEGIN PUBLIC KEY-----\nMFwwDQYJKoZIhvcNAQEBBQADSwAwSAJBAMtHgG6CEyUpD3Kp5TIMPUe3qEEqmTCcNHSJFHiOjbvgFDkKMuYbYRfPXMHj5eqdYuNzmiMFk/pAyg0h5f0V8M8CAwEAAQ==\n-----END PUBLIC KEY-----"
	for _, c := range []struct {
		name, typ string
		opts      map[string]any
		want      string
	}{
		{"GitLabShortToken", "gitlab", map[string]any{"secrets": "short"}, "shorter than 16"},
		{"GitLabNoToken", "gitlab", map[string]any{}, "secrets: required"},
		{"TwilioNoURL", "twilio", map[string]any{"secrets": []any{"t"}}, "url: required"},
		{"TwilioURLQuery", "twilio", map[string]any{"secrets": []any{"t"}, "url": "https://a.example/x?y=1"}, "leave the query out"},
		{"TwilioRelativeURL", "twilio", map[string]any{"secrets": []any{"t"}, "url": "/in/twilio"}, "absolute http or https"},
		{"TwilioNoSecret", "twilio", map[string]any{"url": "https://a.example/x"}, "secrets"},
		{"SquareNoURL", "square", map[string]any{"secrets": []any{"k"}}, "url: required"},
		{"SquareFragment", "square", map[string]any{"secrets": []any{"k"}, "url": "https://a.example/x#f"}, "fragment"},
		{"SendGridNoKey", "sendgrid", map[string]any{}, "public_keys"},
		{"SendGridNotBase64", "sendgrid", map[string]any{"public_keys": []any{"not base64!"}}, "public_keys[0]"},
		{"SendGridRSA", "sendgrid", map[string]any{"public_keys": []any{rsaPEM}}, "public_keys[0]"},
		{"AdyenNotHex", "adyen", map[string]any{"secrets": []any{"zz"}}, "not valid hex"},
		{"MailgunTolerance", "mailgun", map[string]any{"secrets": []any{"k"}, "tolerance": "-1s"}, "tolerance"},
		{"PaddleUnknownOption", "paddle", map[string]any{"secrets": []any{"k"}, "url": "https://a.example"}, "url"},
		{"PostmarkNoUsers", "postmark", map[string]any{}, "users"},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			_, err := sigTryBuild(c.typ, c.opts, nil)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("got %v, want an error containing %q", err, c.want)
			}
		})
	}
}

// twilioDocRequest is twilio-go's test vector (client/request_validator_test.go).
func twilioDocRequest(target string) *Request {
	form := url.Values{}
	for k, v := range map[string]string{"Digits": "1234", "CallSid": "CA1234567890ABCDE", "To": "+18005551212",
		"Caller": "+14158675309", "From": "+14158675309", "ReasonConferenceEnded": "test", "Reason": "Participant"} {
		form.Set(k, v)
	}
	u, _ := url.Parse(target)
	return &Request{Method: http.MethodPost, URL: u, Body: []byte(form.Encode()),
		Header: http.Header{"X-Twilio-Signature": {"vOEb5UThFn24KEfnOFLQY2AE5FY="}}}
}

func TestTwilioPorts(t *testing.T) {
	t.Parallel()
	// Twilio signs the URL with or without the scheme's default port;
	// either configured form verifies. Another port does not.
	for _, c := range []struct {
		url string
		ok  bool
	}{
		{"https://mycompany.com/myapp.php", true},
		{"https://mycompany.com:443/myapp.php", true},
		{"https://mycompany.com:8443/myapp.php", false},
		{"http://mycompany.com/myapp.php", false},
	} {
		v := sigMustBuild(t, "twilio", map[string]any{"secrets": []any{"12345"}, "url": c.url}, nil)
		err := v.Verify(context.Background(), twilioDocRequest("/in/p?foo=1&bar=2"))
		if (err == nil) != c.ok {
			t.Errorf("url %s: got %v, want accepted %v", c.url, err, c.ok)
		}
	}
}

func TestTwilioRefuses(t *testing.T) {
	t.Parallel()
	v := sigMustBuild(t, "twilio", map[string]any{"secrets": []any{"12345"}, "url": "https://mycompany.com/myapp.php"}, nil)
	for _, c := range []struct {
		name   string
		change func(r *Request)
		want   string
	}{
		{"NoSignature", func(r *Request) { r.Header.Del("X-Twilio-Signature") }, "signature missing"},
		{"TwoSignatures", func(r *Request) { r.Header.Add("X-Twilio-Signature", "vOEb5UThFn24KEfnOFLQY2AE5FY=") }, "signature invalid"},
		{"NotBase64", func(r *Request) { r.Header.Set("X-Twilio-Signature", "not base64!") }, "signature invalid"},
		{"BodyNotForm", func(r *Request) { r.Body = []byte("a=%zz") }, "not form-encoded"},
		{"RepeatedParameterAdded", func(r *Request) { r.Body = append(r.Body, "&Digits=9"...) }, "signature mismatch"},
		{"BodyHashTwice", func(r *Request) { r.URL.RawQuery += "&bodySHA256=00&bodySHA256=00" }, "does not match the body"},
		{"BodyHashNotHex", func(r *Request) { r.URL.RawQuery += "&bodySHA256=zz" }, "does not match the body"},
		{"QueryInvalid", func(r *Request) { r.URL.RawQuery = "a=%zz" }, "query invalid"},
	} {
		t.Run(c.name, func(t *testing.T) {
			r := twilioDocRequest("/in/p?foo=1&bar=2")
			c.change(r)
			err := v.Verify(context.Background(), r)
			if hookd.ErrorCode(err) != hookd.EUnauthorized || !strings.Contains(hookd.ErrorMessage(err), c.want) {
				t.Fatalf("got %v, want 401 %q", err, c.want)
			}
		})
	}
}

func TestTwilioRepeatedParameters(t *testing.T) {
	t.Parallel()
	// Each value of a repeated parameter is signed, values in order.
	signed := "https://a.example/t" + "Aa" + "Mx" + "My"
	h := hmac.New(sha1.New, []byte("tok"))
	h.Write([]byte(signed))
	sig := base64.StdEncoding.EncodeToString(h.Sum(nil))
	v := sigMustBuild(t, "twilio", map[string]any{"secrets": []any{"tok"}, "url": "https://a.example/t"}, nil)
	u, _ := url.Parse("/in/p")
	r := &Request{URL: u, Body: []byte("M=y&A=a&M=x"), Header: http.Header{"X-Twilio-Signature": {sig}}}
	if err := v.Verify(context.Background(), r); err != nil {
		t.Fatalf("got %v, want accepted", err)
	}
	r.Body = []byte("M=y&A=a")
	if err := v.Verify(context.Background(), r); err == nil {
		t.Fatal("a dropped value was accepted")
	}
}

func TestAdyenRefuses(t *testing.T) {
	t.Parallel()
	v := sigMustBuild(t, "adyen", map[string]any{"secrets": []any{"44782DEF547AAA06C910C43932B1EB0C71FC68D9D0C057550C48EC2ACF6BA056"}}, nil)
	item := `{"NotificationRequestItem":{"additionalData":{"hmacSignature":"coqCmt/IZ4E3CzPvMY8zTjQVL5hYJUiBRg8UU+iCWo0="},"amount":{"value":1130,"currency":"EUR"},"pspReference":"7914073381342284","eventCode":"AUTHORISATION","merchantAccountCode":"TestMerchant","merchantReference":"TestPayment-1407325143704","success":"true"}}`
	many := `{"notificationItems":[` + strings.Repeat(item+",", adyenMaxItems) + item + `]}`
	for _, c := range []struct{ name, body, want string }{
		{"Published", `{"notificationItems":[` + item + `]}`, ""},
		{"NotJSON", `notificationItems`, "signature missing"},
		{"NoItems", `{"notificationItems":{}}`, "signature missing"},
		{"ItemNotObject", `{"notificationItems":[1]}`, "signature missing"},
		{"TooMany", many, "too many notification items"},
		{"Deep", strings.Repeat(`{"a":`, 200) + "1" + strings.Repeat("}", 200), "signature missing"},
		{"SuccessAsBoolean", strings.Replace(`{"notificationItems":[`+item+`]}`, `"success":"true"`, `"success":true`, 1), ""},
		{"SignatureNotBase64", strings.Replace(`{"notificationItems":[`+item+`]}`, `coqCmt/`, `coqCmt*`, 1), "signature invalid"},
	} {
		t.Run(c.name, func(t *testing.T) {
			err := v.Verify(context.Background(), sigHeaderRequest([]byte(c.body), nil))
			if c.want == "" {
				if err != nil {
					t.Fatalf("got %v, want accepted", err)
				}
				return
			}
			if hookd.ErrorCode(err) != hookd.EUnauthorized || hookd.ErrorMessage(err) != c.want {
				t.Fatalf("got %v, want 401 %q", err, c.want)
			}
		})
	}
}

func TestMailgunRefuses(t *testing.T) {
	t.Parallel()
	now := time.Unix(1700000000, 0)
	v := sigMustBuild(t, "mailgun", map[string]any{"secrets": []any{"mailgun-signing-key-0123456789"}}, sigClock(now))
	sign := func(ts, tok string) string {
		h := hmac.New(sha256.New, []byte("mailgun-signing-key-0123456789"))
		h.Write([]byte(ts + tok))
		return hex.EncodeToString(h.Sum(nil))
	}
	body := func(ts, tok, sig string) string {
		return `{"signature":{"timestamp":` + ts + `,"token":"` + tok + `","signature":"` + sig + `"},"event-data":{}}`
	}
	long := strings.Repeat("t", mailgunMaxToken+1)
	for _, c := range []struct{ name, body, want string }{
		{"NumericTimestamp", body("1700000000", "tok", sign("1700000000", "tok")), ""},
		{"NotJSON", "signature=1", "signature missing"},
		{"NoToken", body(`"1700000000"`, "", sign("1700000000", "")), "signed content missing"},
		{"TokenTooLong", body(`"1700000000"`, long, sign("1700000000", long)), "signature invalid"},
		{"TimestampInvalid", body(`"soon"`, "tok", sign("soon", "tok")), "timestamp invalid"},
		{"Late", body(`"1699990000"`, "tok", sign("1699990000", "tok")), "timestamp outside tolerance"},
		{"NotHex", body(`"1700000000"`, "tok", "zz"), "signature invalid"},
	} {
		t.Run(c.name, func(t *testing.T) {
			err := v.Verify(context.Background(), sigHeaderRequest([]byte(c.body), nil))
			if c.want == "" {
				if err != nil {
					t.Fatalf("got %v, want accepted", err)
				}
				return
			}
			if hookd.ErrorCode(err) != hookd.EUnauthorized || hookd.ErrorMessage(err) != c.want {
				t.Fatalf("got %v, want 401 %q", err, c.want)
			}
		})
	}
}

// FuzzPresetsABody feeds hostile bodies, queries and signature headers to
// the presets that parse the body themselves: none may panic, and none
// may accept what no secret signed.
func FuzzPresetsABody(f *testing.F) {
	f.Add([]byte(`{"notificationItems":[{"NotificationRequestItem":{"additionalData":{"hmacSignature":"AA=="}}}]}`), "a=1", "AA==")
	f.Add([]byte(`{"signature":{"timestamp":"1","token":"t","signature":"00"}}`), "bodySHA256=00", "")
	f.Add([]byte("A=b&A=c&%zz"), "x=%zz", "vOEb5UThFn24KEfnOFLQY2AE5FY=")
	var vs []Verifier
	for _, c := range []struct {
		typ  string
		opts map[string]any
	}{
		{"twilio", map[string]any{"secrets": []any{"12345"}, "url": "https://a.example/t"}},
		{"adyen", map[string]any{"secrets": []any{"44782DEF547AAA06C910C43932B1EB0C71FC68D9D0C057550C48EC2ACF6BA056"}}},
		{"mailgun", map[string]any{"secrets": []any{"k"}}},
	} {
		v, err := sigTryBuild(c.typ, c.opts, sigClock(time.Unix(1, 0)))
		if err != nil {
			f.Fatal(err)
		}
		vs = append(vs, v)
	}
	f.Fuzz(func(t *testing.T, body []byte, query, sig string) {
		u := &url.URL{Path: "/in/p", RawQuery: query}
		r := &Request{URL: u, Body: body, Header: http.Header{"X-Twilio-Signature": {sig}}}
		for _, v := range vs {
			if err := v.Verify(context.Background(), r); err == nil {
				t.Fatalf("%T accepted body %q query %q signature %q", v, body, query, sig)
			}
		}
	})
}
