package ingest_test

import (
	"context"
	"crypto"
	"crypto/hmac"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"hookd/internal/egress"
	"hookd/internal/ingest"
)

// Presets and handshakes of Dropbox, Okta, Microsoft Graph and Amazon SNS.

func hmacSHA256Hex(secret, body string) string {
	m := hmac.New(sha256.New, []byte(secret))
	m.Write([]byte(body))
	return hex.EncodeToString(m.Sum(nil))
}

// handshakeLog records the handshakes ingest reports.
type handshakeLog struct {
	mu   sync.Mutex
	recs []ingest.HandshakeRecord
}

func (l *handshakeLog) observe(o *ingest.Options) {
	o.OnHandshake = func(r ingest.HandshakeRecord) {
		l.mu.Lock()
		defer l.mu.Unlock()
		l.recs = append(l.recs, r)
	}
}

// last returns the kind and status of the last handshake reported.
func (l *handshakeLog) last(t *testing.T) (string, int) {
	t.Helper()
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.recs) == 0 {
		t.Fatal("no handshake reported")
	}
	r := l.recs[len(l.recs)-1]
	return r.Kind, r.Status
}

// wantPlain checks a text/plain answer that must not be sniffed.
func wantPlain(t *testing.T, a answer, body string) {
	t.Helper()
	if a.status != http.StatusOK || string(a.body) != body {
		t.Fatalf("got %d %q, want 200 %q", a.status, a.body, body)
	}
	if ct := a.header.Get("Content-Type"); !strings.HasPrefix(ct, "text/plain") {
		t.Errorf("Content-Type: got %q, want text/plain", ct)
	}
	if n := a.header.Get("X-Content-Type-Options"); n != "nosniff" {
		t.Errorf("X-Content-Type-Options: got %q, want nosniff", n)
	}
}

// Dropbox, "Webhooks" reference (dropbox.com/developers/reference/webhooks),
// "Receiving notifications": the body's shape is the documented example;
// X-Dropbox-Signature is the hex HMAC-SHA256 of the body keyed with the
// app secret, computed here with a test secret.
const (
	dropboxSecret = "dropbox-app-secret-0123456789"
	dropboxBody   = `{"list_folder": {"accounts": ["dbid:AAH4f99T0taONIb-OurWxbNQ6ywGRopQngc"]}, "delta": {"users": [12345]}}`
)

func TestProviderDropbox(t *testing.T) {
	runProviderCase(t, providerCase{
		preset: "dropbox",
		vector: "built per the documentation: Dropbox, Webhooks reference, Receiving notifications (the documented body, X-Dropbox-Signature computed in the test)",
		verify: "- type: dropbox\n  secrets: [" + dropboxSecret + "]",
		header: map[string]string{"X-Dropbox-Signature": hmacSHA256Hex(dropboxSecret, dropboxBody), "Content-Type": "application/json"},
		body:   dropboxBody,
		bad: []providerVariant{
			changedBody(dropboxBody),
			{name: "signature changed", header: map[string]string{"X-Dropbox-Signature": hmacSHA256Hex(dropboxSecret, dropboxBody+" ")}},
			{name: "signature missing", header: map[string]string{"X-Dropbox-Signature": ""}},
			wrongSecret("- type: dropbox\n  secrets: [another-app-secret-0123456789]"),
		},
	})
}

// Dropbox, Webhooks reference, "Verification request": GET ?challenge=…
// answered by the challenge, text/plain, X-Content-Type-Options: nosniff.
func TestHandshakeDropbox(t *testing.T) {
	var hl handshakeLog
	h := providerHarnessWith(t, "- type: dropbox\n  secrets: ["+dropboxSecret+"]", time.Time{}, hl.observe)
	a := send(t, h.srv, http.MethodGet, "/in/p?challenge=Pk3oBgo7Qe-Tq2d3J5zvWQ", nil, nil)
	wantPlain(t, a, "Pk3oBgo7Qe-Tq2d3J5zvWQ")
	if k, s := hl.last(t); k != "dropbox.challenge" || s != http.StatusOK {
		t.Errorf("handshake reported: got %s %d, want dropbox.challenge 200", k, s)
	}
	// An HTML challenge is echoed as plain text, never sniffed.
	a = send(t, h.srv, http.MethodGet, "/in/p?challenge="+url.QueryEscape("<script>x</script>"), nil, nil)
	wantPlain(t, a, "<script>x</script>")
	a = send(t, h.srv, http.MethodGet, "/in/p?challenge="+strings.Repeat("a", 2049), nil, nil)
	wantError(t, a, http.StatusBadRequest, "invalid")
	a = send(t, h.srv, http.MethodGet, "/in/p", nil, nil)
	if a.status != http.StatusMethodNotAllowed || a.header.Get("Allow") != "POST, GET" {
		t.Errorf("GET without challenge: got %d Allow %q, want 405 Allow \"POST, GET\"", a.status, a.header.Get("Allow"))
	}
	h.wantCount(t, 0)
	// Then a notification: refused with a wrong signature, stored with the right one.
	a = post(t, h.srv, "/in/p", dropboxBody, http.Header{"X-Dropbox-Signature": {hmacSHA256Hex("wrong-app-secret-0123456789", dropboxBody)}})
	wantError(t, a, http.StatusUnauthorized, "unauthorized")
	a = post(t, h.srv, "/in/p", dropboxBody, http.Header{"X-Dropbox-Signature": {hmacSHA256Hex(dropboxSecret, dropboxBody)}})
	wantOK(t, a, http.StatusOK)
	h.wantCount(t, 1)
}

// Okta, "Event hooks" (developer.okta.com), "Event hook request" sample:
// the envelope and the Authorization header configured on the hook.
const (
	oktaSecret = "okta-event-hook-secret-0123"
	oktaBody   = `{
  "eventType": "com.okta.event_hook",
  "eventTypeVersion": "1.0",
  "cloudEventsVersion": "0.1",
  "source": "https://example.okta.com/api/v1/eventHooks/whoql0HfiLGPWc8Jx0g3",
  "eventId": "b5a188b9-5ece-4636-b041-482ffda96311",
  "data": {"events": [{"uuid": "4421c5d6-df1d-11e8-9c8a-5d2d7b5a9d4a", "eventType": "user.session.start", "published": "2019-03-27T16:59:52.880Z"}]},
  "eventTime": "2019-03-27T16:59:53.032Z",
  "contentType": "application/json"
}`
	oktaVerify = "- type: okta\n  secrets: [" + oktaSecret + "]"
)

func TestProviderOkta(t *testing.T) {
	runProviderCase(t, providerCase{
		preset:   "okta",
		vector:   "documentation: Okta, Event hooks, event hook request sample (envelope) and authentication header",
		verify:   oktaVerify,
		header:   map[string]string{"Authorization": oktaSecret, "Content-Type": "application/json"},
		body:     oktaBody,
		wantID:   "b5a188b9-5ece-4636-b041-482ffda96311",
		wantType: "com.okta.event_hook",
		wantTime: time.Date(2019, 3, 27, 16, 59, 53, 32e6, time.UTC),
		bad: []providerVariant{
			{name: "header missing", header: map[string]string{"Authorization": ""}},
			{name: "header wrong", header: map[string]string{"Authorization": oktaSecret + "x"}},
			wrongSecret("- type: okta\n  secrets: [another-okta-secret-0123]"),
		},
	})
}

// A custom header name and a rotation list.
func TestProviderOktaCustomHeader(t *testing.T) {
	runProviderCase(t, providerCase{
		preset:   "okta",
		vector:   "documentation: Okta, Event hooks, authentication header with a custom field name",
		verify:   "- type: okta\n  header: X-Hook-Auth\n  secrets: [old-okta-secret-012345, " + oktaSecret + "]",
		header:   map[string]string{"X-Hook-Auth": oktaSecret},
		body:     oktaBody,
		wantID:   "b5a188b9-5ece-4636-b041-482ffda96311",
		wantType: "com.okta.event_hook",
		wantTime: time.Date(2019, 3, 27, 16, 59, 53, 32e6, time.UTC),
		bad: []providerVariant{
			{name: "secret in Authorization instead", header: map[string]string{"X-Hook-Auth": "", "Authorization": oktaSecret}},
		},
	})
}

// Okta, Event hooks, "One-time verification request": a GET with
// X-Okta-Verification-Challenge (and the authentication header), answered
// {"verification": "<challenge>"} as JSON.
func TestHandshakeOkta(t *testing.T) {
	var hl handshakeLog
	h := providerHarnessWith(t, oktaVerify, time.Time{}, hl.observe)
	const challenge = "X9zKZ6p2l1HnVYhcCk5kAGmB9MFeW7dG2JqRu0S"
	a := send(t, h.srv, http.MethodGet, "/in/p", nil, http.Header{"Authorization": {oktaSecret}, "X-Okta-Verification-Challenge": {challenge}})
	if a.status != http.StatusOK || a.header.Get("Content-Type") != "application/json" {
		t.Fatalf("got %d %s %s, want 200 application/json", a.status, a.header.Get("Content-Type"), a.body)
	}
	var got map[string]any
	if err := json.Unmarshal(a.body, &got); err != nil || len(got) != 1 || got["verification"] != challenge {
		t.Fatalf("got %s, want {\"verification\": %q}", a.body, challenge)
	}
	if k, s := hl.last(t); k != "okta.verification" || s != http.StatusOK {
		t.Errorf("handshake reported: got %s %d, want okta.verification 200", k, s)
	}
	for _, auth := range []string{"", "another-okta-secret-0123"} {
		hdr := http.Header{"X-Okta-Verification-Challenge": {challenge}}
		if auth != "" {
			hdr.Set("Authorization", auth)
		}
		a = send(t, h.srv, http.MethodGet, "/in/p", nil, hdr)
		wantError(t, a, http.StatusUnauthorized, "unauthorized")
		if strings.Contains(string(a.body), challenge) {
			t.Errorf("refused verification echoes the challenge: %s", a.body)
		}
	}
	if _, s := hl.last(t); s != http.StatusUnauthorized {
		t.Errorf("refused handshake reported with %d, want 401", s)
	}
	h.wantCount(t, 0)
	a = post(t, h.srv, "/in/p", oktaBody, http.Header{"Authorization": {oktaSecret}})
	e := h.event(t, wantOK(t, a, http.StatusOK).ID)
	if e.ExternalID != "b5a188b9-5ece-4636-b041-482ffda96311" || e.Type != "com.okta.event_hook" {
		t.Errorf("event: got id %q type %q", e.ExternalID, e.Type)
	}
	h.wantCount(t, 1)
}

// Microsoft Graph, "Receive change notifications through webhooks",
// "Change notification example": clientState as set on the subscription.
const (
	graphState = "secretClientValue"
	graphBody  = `{
  "value": [
    {
      "id": "lsgTZMr9KwAAA",
      "subscriptionId": "7f105c7d-2dc5-4530-97cd-4e7ae6534c07",
      "subscriptionExpirationDateTime": "2016-03-19T22:11:09.952Z",
      "clientState": "secretClientValue",
      "changeType": "created",
      "resource": "users/4a4a1d2b-0b9c-4d1c-a3a5-1c26f7a3e4b2/messages/AAMkADM2",
      "tenantId": "84bd8158-6d4d-4958-8b9f-9d6445542f95",
      "resourceData": {
        "@odata.type": "#Microsoft.Graph.Message",
        "@odata.id": "Users/4a4a1d2b-0b9c-4d1c-a3a5-1c26f7a3e4b2/Messages/AAMkADM2",
        "id": "AAMkADM2"
      }
    }
  ]
}`
	graphVerify = "- type: msgraph\n  client_states: [" + graphState + "]"
)

func TestProviderMSGraph(t *testing.T) {
	second := strings.Replace(graphBody, "\n  ]", `, {"clientState": "notTheClientValue", "changeType": "deleted"}`+"\n  ]", 1)
	nostate := strings.Replace(graphBody, `"clientState": "secretClientValue",`, "", 1)
	twice := strings.Replace(graphBody, "{\n  \"value\"", `{"value": [{"clientState": "x"}], "value"`, 1)
	empty := `{"value": []}`
	runProviderCase(t, providerCase{
		preset:   "msgraph",
		vector:   "documentation: Microsoft Graph, Receive change notifications through webhooks, change notification example",
		verify:   graphVerify,
		header:   map[string]string{"Content-Type": "application/json"},
		body:     graphBody,
		wantType: "created",
		bad: []providerVariant{
			{name: "one notification with a wrong clientState", body: &second},
			{name: "clientState missing", body: &nostate},
			{name: "value repeated", body: &twice},
			{name: "no notification", body: &empty},
			wrongSecret("- type: msgraph\n  client_states: [anotherClientValue]"),
		},
	})
}

// Microsoft Graph, "Receive change notifications through webhooks",
// "Notification endpoint validation": POST ?validationToken=… answered by
// the URL-decoded token, text/plain, within 10 seconds.
func TestHandshakeMSGraph(t *testing.T) {
	var hl handshakeLog
	h := providerHarnessWith(t, graphVerify, time.Time{}, hl.observe)
	const token = "Validation: Testing client application reachability for subscription Request-Id: 3a4ee9b2-4a1b-4b5c-8e4c-1f7f1a3c6d9e"
	a := send(t, h.srv, http.MethodPost, "/in/p?validationToken="+url.QueryEscape(token), strings.NewReader(""), http.Header{"Content-Type": {"text/plain; charset=utf-8"}})
	wantPlain(t, a, token)
	if k, s := hl.last(t); k != "msgraph.validation" || s != http.StatusOK {
		t.Errorf("handshake reported: got %s %d, want msgraph.validation 200", k, s)
	}
	a = send(t, h.srv, http.MethodPost, "/in/p?validationToken=", strings.NewReader(""), nil)
	wantError(t, a, http.StatusBadRequest, "invalid")
	a = send(t, h.srv, http.MethodPost, "/in/p?validationToken="+strings.Repeat("t", 2049), strings.NewReader(""), nil)
	wantError(t, a, http.StatusBadRequest, "invalid")
	h.wantCount(t, 0)
	bad := strings.Replace(graphBody, graphState, "wrongClientValue", 1)
	wantError(t, post(t, h.srv, "/in/p", bad, nil), http.StatusUnauthorized, "unauthorized")
	h.wantCount(t, 0)
	e := h.event(t, wantOK(t, post(t, h.srv, "/in/p", graphBody, nil), http.StatusOK).ID)
	if e.Type != "created" {
		t.Errorf("event type: got %q, want created", e.Type)
	}
	h.wantCount(t, 1)
}

// snsKey is the test's stand-in for SNS's signing key and certificate,
// made once: an RSA key takes a while to generate.
var snsKey = sync.OnceValues(func() (*rsa.PrivateKey, []byte) {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		panic(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "sns.amazonaws.com"},
		DNSNames:              []string{snsTestHost},
		NotBefore:             time.Date(2010, 1, 1, 0, 0, 0, 0, time.UTC),
		NotAfter:              time.Date(2045, 1, 1, 0, 0, 0, 0, time.UTC),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		panic(err)
	}
	return key, der
})

const (
	snsTestHost  = "sns.us-west-2.amazonaws.com"
	snsCertPath  = "/SimpleNotificationService-f3ecfb7224c7233fe7bb5f59f96de52f.pem"
	snsCertURL   = "https://" + snsTestHost + snsCertPath
	snsTopic     = "arn:aws:sns:us-west-2:123456789012:MyTopic"
	snsVerify    = "- type: sns\n  topics: [" + snsTopic + "]"
	snsConfirmQ  = "Action=ConfirmSubscription&TopicArn=" + snsTopic + "&Token=2336412f37fb687f5d51e6e241d09c805a5a57b30d712f7"
	snsSubscribe = "https://" + snsTestHost + "/?" + snsConfirmQ
)

// snsFixture serves SNS's certificate and confirmation URLs from a TLS
// server on 127.0.0.1, named sns.us-west-2.amazonaws.com, and gives
// ingest an egress guard that reaches it: 127.0.0.0/8 allowed, every
// connection dialed by the guard to the server, the server's certificate
// trusted. It counts what reaches it.
type snsFixture struct {
	guard   *egress.Guard
	dials   atomic.Int64
	certs   atomic.Int64 // GETs of the certificate
	confirm atomic.Int64 // GETs of the SubscribeURL
	other   atomic.Int64 // any other request
	addr    string
}

func newSNSFixture(t *testing.T) *snsFixture {
	t.Helper()
	key, der := snsKey()
	f := &snsFixture{}
	pemCert := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch {
		case r.URL.Path == snsCertPath && r.URL.RawQuery == "":
			f.certs.Add(1)
			w.Write(pemCert)
		case r.URL.Path == "/" && r.URL.RawQuery == snsConfirmQ:
			f.confirm.Add(1)
			w.Header().Set("Content-Type", "text/xml")
			w.Write([]byte("<ConfirmSubscriptionResponse><ConfirmSubscriptionResult><SubscriptionArn>" + snsTopic + ":2bcfbf39</SubscriptionArn></ConfirmSubscriptionResult></ConfirmSubscriptionResponse>"))
		default:
			f.other.Add(1)
			http.NotFound(w, r)
		}
	}))
	srv.TLS = &tls.Config{Certificates: []tls.Certificate{{Certificate: [][]byte{der}, PrivateKey: key}}}
	srv.StartTLS()
	t.Cleanup(srv.Close)
	f.addr = srv.Listener.Addr().String()
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	g, err := egress.NewGuard([]string{"127.0.0.0/8"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	tr := g.SharedTransport()
	tr.TLSClientConfig.RootCAs = pool
	tr.DialContext = func(ctx context.Context, network, _ string) (net.Conn, error) {
		f.dials.Add(1)
		return g.DialHTTP(ctx, network, f.addr)
	}
	t.Cleanup(g.CloseIdleConnections)
	f.guard = g
	return f
}

func (f *snsFixture) options(o *ingest.Options) { o.Egress = f.guard }

// snsField is one name/value pair of an SNS message, in body order.
type snsField struct{ name, value string }

// snsMessage builds the JSON body SNS posts: the fields, then
// SignatureVersion, Signature (over the fields SNS signs for the message's
// Type, as "Verifying the signatures of Amazon SNS messages" lists them)
// and SigningCertURL (certURL).
func snsMessage(t *testing.T, version, certURL string, fields ...snsField) string {
	t.Helper()
	get := map[string]string{}
	for _, f := range fields {
		get[f.name] = f.value
	}
	var names []string
	if get["Type"] == "Notification" {
		names = []string{"Message", "MessageId", "Subject", "Timestamp", "TopicArn", "Type"}
	} else {
		names = []string{"Message", "MessageId", "SubscribeURL", "Timestamp", "Token", "TopicArn", "Type"}
	}
	var signed strings.Builder
	for _, n := range names {
		if v, ok := get[n]; ok {
			signed.WriteString(n + "\n" + v + "\n")
		}
	}
	key, _ := snsKey()
	var (
		sig []byte
		err error
	)
	if version == "1" {
		sum := sha1.Sum([]byte(signed.String()))
		sig, err = rsa.SignPKCS1v15(rand.Reader, key, crypto.SHA1, sum[:])
	} else {
		sum := sha256.Sum256([]byte(signed.String()))
		sig, err = rsa.SignPKCS1v15(rand.Reader, key, crypto.SHA256, sum[:])
	}
	if err != nil {
		t.Fatal(err)
	}
	fields = append(fields, snsField{"SignatureVersion", version}, snsField{"Signature", base64.StdEncoding.EncodeToString(sig)}, snsField{"SigningCertURL", certURL})
	var b strings.Builder
	b.WriteString("{\n")
	for i, f := range fields {
		k, _ := json.Marshal(f.name)
		v, _ := json.Marshal(f.value)
		b.WriteString("  " + string(k) + " : " + string(v))
		if i < len(fields)-1 {
			b.WriteString(",")
		}
		b.WriteString("\n")
	}
	b.WriteString("}")
	return b.String()
}

// The documented examples of Amazon SNS Developer Guide, "HTTP/HTTPS
// notification JSON format" and "HTTP/HTTPS subscription confirmation
// JSON format" (their signatures are placeholders: the test key signs).
var (
	snsNotificationFields = []snsField{
		{"Type", "Notification"},
		{"MessageId", "22b80b92-fdea-4c2c-8f9d-bdfb0c7bf324"},
		{"TopicArn", snsTopic},
		{"Subject", "My First Message"},
		{"Message", "Hello world!"},
		{"Timestamp", "2012-05-02T00:54:06.655Z"},
	}
	snsNotificationTime = time.Date(2012, 5, 2, 0, 54, 6, 655e6, time.UTC)
	snsConfirmFields    = []snsField{
		{"Type", "SubscriptionConfirmation"},
		{"MessageId", "165545c9-2a5c-472c-8df2-7ff2be2b3b1b"},
		{"Token", "2336412f37fb687f5d51e6e241d09c805a5a57b30d712f7"},
		{"TopicArn", snsTopic},
		{"Message", "You have chosen to subscribe to the topic " + snsTopic + ".\nTo confirm the subscription, visit the SubscribeURL included in this message."},
		{"SubscribeURL", snsSubscribe},
		{"Timestamp", "2012-04-26T20:45:04.751Z"},
	}
	snsUnsubscribeFields = []snsField{
		{"Type", "UnsubscribeConfirmation"},
		{"MessageId", "47138184-6831-46b8-8f7c-afc488602d7d"},
		{"Token", "2336412f37fb687f5d51e6e241d09c805a5a57b30d712f7"},
		{"TopicArn", snsTopic},
		{"Message", "You have chosen to deactivate subscription " + snsTopic + ":2bcfbf39-05c3-41de-beaa-fcfcc21c8f55.\nTo cancel this operation and restore the subscription, visit the SubscribeURL included in this message."},
		{"SubscribeURL", snsSubscribe},
		{"Timestamp", "2012-04-26T20:06:41.581Z"},
	}
)

// withField returns fields with name's value replaced (or added).
func withField(fields []snsField, name, value string) []snsField {
	out := make([]snsField, 0, len(fields)+1)
	found := false
	for _, f := range fields {
		if f.name == name {
			f.value, found = value, true
		}
		out = append(out, f)
	}
	if !found {
		out = append(out, snsField{name, value})
	}
	return out
}

// withoutField returns fields without name.
func withoutField(fields []snsField, name string) []snsField {
	var out []snsField
	for _, f := range fields {
		if f.name != name {
			out = append(out, f)
		}
	}
	return out
}

func snsHeader(typ, id string) map[string]string {
	return map[string]string{
		"Content-Type":           "text/plain; charset=UTF-8",
		"X-Amz-Sns-Message-Type": typ,
		"X-Amz-Sns-Message-Id":   id,
		"X-Amz-Sns-Topic-Arn":    snsTopic,
	}
}

func TestProviderSNS(t *testing.T) {
	f := newSNSFixture(t)
	body := snsMessage(t, "1", snsCertURL, snsNotificationFields...)
	// The same signature over another message: the signed fields must count.
	forged := strings.Replace(body, "Hello world!", "Hello world?", 1)
	otherID := strings.Replace(body, "22b80b92-fdea", "22b80b92-fdeb", 1)
	noSubject := strings.Replace(body, `"Subject" : "My First Message",`, "", 1)
	sha256Claimed := strings.Replace(body, `"SignatureVersion" : "1"`, `"SignatureVersion" : "2"`, 1)
	repeated := strings.Replace(body, "{\n", "{\n  \"MessageId\" : \"00000000-0000-0000-0000-000000000000\",\n", 1)
	runProviderCase(t, providerCase{
		preset:   "sns",
		vector:   "documentation: Amazon SNS Developer Guide, HTTP/HTTPS notification JSON format (example message) and Verifying the signatures of Amazon SNS messages (SignatureVersion 1, SHA1withRSA)",
		verify:   snsVerify,
		now:      snsNotificationTime.Add(time.Minute),
		header:   snsHeader("Notification", "22b80b92-fdea-4c2c-8f9d-bdfb0c7bf324"),
		body:     body,
		wantID:   "22b80b92-fdea-4c2c-8f9d-bdfb0c7bf324",
		wantType: snsTopic,
		wantTime: snsNotificationTime,
		options:  f.options,
		bad: []providerVariant{
			changedBody(body),
			{name: "Message changed", body: &forged},
			{name: "MessageId changed", body: &otherID},
			{name: "Subject removed", body: &noSubject},
			{name: "SignatureVersion changed", body: &sha256Claimed},
			{name: "MessageId repeated", body: &repeated},
			{name: "message type header differs", header: map[string]string{"X-Amz-Sns-Message-Type": "SubscriptionConfirmation"}},
			wrongSecret("- type: sns\n  topics: [arn:aws:sns:us-west-2:123456789012:OtherTopic]"),
		},
	})
	// Every request above named the same certificate: fetched once.
	if n := f.certs.Load(); n != 1 {
		t.Errorf("certificate fetched %d times, want once", n)
	}
}

// SignatureVersion 2 (SHA256withRSA), a notification without Subject, and
// the tolerance.
func TestProviderSNSVersion2(t *testing.T) {
	f := newSNSFixture(t)
	fields := withoutField(snsNotificationFields, "Subject")
	body := snsMessage(t, "2", snsCertURL, fields...)
	withSubject := strings.Replace(body, `"Message" :`, `"Subject" : "",`+"\n  \"Message\" :", 1)
	runProviderCase(t, providerCase{
		preset:   "sns",
		vector:   "documentation: Amazon SNS Developer Guide, Verifying the signatures of Amazon SNS messages (SignatureVersion 2, SHA256withRSA; Subject only when present)",
		verify:   snsVerify + "\n  tolerance: 10m",
		now:      snsNotificationTime.Add(-9 * time.Minute),
		header:   snsHeader("Notification", "22b80b92-fdea-4c2c-8f9d-bdfb0c7bf324"),
		body:     body,
		wantID:   "22b80b92-fdea-4c2c-8f9d-bdfb0c7bf324",
		wantType: snsTopic,
		wantTime: snsNotificationTime,
		options:  f.options,
		bad: []providerVariant{
			changedBody(body),
			{name: "empty Subject added", body: &withSubject},
		},
	})
	h := providerHarnessWith(t, snsVerify+"\n  tolerance: 10m", snsNotificationTime.Add(11*time.Minute), f.options)
	a := send(t, h.srv, http.MethodPost, "/in/p", strings.NewReader(body), providerHeader(snsHeader("Notification", ""), nil))
	wantError(t, a, http.StatusUnauthorized, "unauthorized")
	h.wantCount(t, 0)
}

// SNS, "Confirm the subscription": a SubscriptionConfirmation of an
// accepted topic is verified, confirmed by fetching its SubscribeURL, and
// answered 200; an UnsubscribeConfirmation is answered 200; neither is
// stored. A Notification is stored after them.
func TestHandshakeSNS(t *testing.T) {
	f := newSNSFixture(t)
	var hl handshakeLog
	now := time.Date(2012, 4, 26, 20, 45, 30, 0, time.UTC)
	h := providerHarnessWith(t, snsVerify, now, func(o *ingest.Options) { f.options(o); hl.observe(o) })
	confirm := snsMessage(t, "1", snsCertURL, snsConfirmFields...)
	hdr := providerHeader(snsHeader("SubscriptionConfirmation", "165545c9-2a5c-472c-8df2-7ff2be2b3b1b"), nil)

	// A forged confirmation (the Token changed) is refused and not confirmed.
	forged := strings.Replace(confirm, `"Token" : "2336`, `"Token" : "3336`, 1)
	wantError(t, send(t, h.srv, http.MethodPost, "/in/p", strings.NewReader(forged), hdr), http.StatusUnauthorized, "unauthorized")
	if n := f.confirm.Load(); n != 0 {
		t.Fatalf("a forged confirmation fetched SubscribeURL %d times", n)
	}
	if k, s := hl.last(t); k != "sns.subscription_confirmation" || s != http.StatusUnauthorized {
		t.Errorf("handshake reported: got %s %d, want sns.subscription_confirmation 401", k, s)
	}
	// Another topic's confirmation is refused and not confirmed.
	other := snsMessage(t, "1", snsCertURL, withField(snsConfirmFields, "TopicArn", "arn:aws:sns:us-west-2:123456789012:OtherTopic")...)
	wantError(t, send(t, h.srv, http.MethodPost, "/in/p", strings.NewReader(other), hdr), http.StatusForbidden, "forbidden")
	if n := f.confirm.Load(); n != 0 {
		t.Fatalf("another topic's confirmation fetched SubscribeURL %d times", n)
	}

	a := send(t, h.srv, http.MethodPost, "/in/p", strings.NewReader(confirm), hdr)
	if a.status != http.StatusOK || len(a.body) != 0 {
		t.Fatalf("confirmation: got %d %q, want 200 and no body", a.status, a.body)
	}
	if n := f.confirm.Load(); n != 1 {
		t.Errorf("SubscribeURL fetched %d times, want once", n)
	}
	if k, s := hl.last(t); k != "sns.subscription_confirmation" || s != http.StatusOK {
		t.Errorf("handshake reported: got %s %d, want sns.subscription_confirmation 200", k, s)
	}

	unsub := snsMessage(t, "2", snsCertURL, snsUnsubscribeFields...)
	a = send(t, h.srv, http.MethodPost, "/in/p", strings.NewReader(unsub), providerHeader(snsHeader("UnsubscribeConfirmation", "47138184-6831-46b8-8f7c-afc488602d7d"), nil))
	if a.status != http.StatusOK || len(a.body) != 0 {
		t.Fatalf("unsubscribe confirmation: got %d %q, want 200 and no body", a.status, a.body)
	}
	if k, _ := hl.last(t); k != "sns.unsubscribe_confirmation" {
		t.Errorf("handshake reported: got %s, want sns.unsubscribe_confirmation", k)
	}
	if n := f.confirm.Load(); n != 1 {
		t.Errorf("an unsubscribe confirmation fetched SubscribeURL: %d fetches, want 1", n)
	}
	h.wantCount(t, 0)

	note := snsMessage(t, "1", snsCertURL, withField(snsNotificationFields, "Timestamp", "2012-04-26T20:45:10.000Z")...)
	a = send(t, h.srv, http.MethodPost, "/in/p", strings.NewReader(note), providerHeader(snsHeader("Notification", "22b80b92-fdea-4c2c-8f9d-bdfb0c7bf324"), nil))
	e := h.event(t, wantOK(t, a, http.StatusOK).ID)
	if e.ExternalID != "22b80b92-fdea-4c2c-8f9d-bdfb0c7bf324" || e.Type != snsTopic || !e.OccurredAt.Equal(time.Date(2012, 4, 26, 20, 45, 10, 0, time.UTC)) {
		t.Errorf("event: got id %q type %q time %v", e.ExternalID, e.Type, e.OccurredAt)
	}
	h.wantCount(t, 1)
	if n := f.other.Load(); n != 0 {
		t.Errorf("%d unexpected requests reached the SNS stand-in", n)
	}
}

// A certificate URL that is not https on an SNS host, and a SubscribeURL
// elsewhere, are refused and never fetched — even where the egress guard
// would let the request through.
func TestSNSRefusesForeignURLs(t *testing.T) {
	now := time.Date(2012, 4, 26, 20, 45, 30, 0, time.UTC)
	for _, c := range []struct{ name, cert string }{
		{"LoopbackHost", "https://127.0.0.1" + snsCertPath},
		{"PlainHTTP", "http://" + snsTestHost + snsCertPath},
		{"LookAlikeHost", "https://" + snsTestHost + ".example.com" + snsCertPath},
		{"OtherAWSHost", "https://s3.us-west-2.amazonaws.com" + snsCertPath},
		{"Credentials", "https://user@" + snsTestHost + snsCertPath},
		{"OtherPort", "https://" + snsTestHost + ":8443" + snsCertPath},
		{"NotPEM", "https://" + snsTestHost + "/?Action=GetCert"},
	} {
		t.Run("Cert"+c.name, func(t *testing.T) {
			f := newSNSFixture(t)
			h := providerHarnessWith(t, snsVerify, snsNotificationTime, f.options)
			body := snsMessage(t, "1", c.cert, snsNotificationFields...)
			a := send(t, h.srv, http.MethodPost, "/in/p", strings.NewReader(body), providerHeader(snsHeader("Notification", ""), nil))
			wantError(t, a, http.StatusUnauthorized, "unauthorized")
			if d, n := f.dials.Load(), f.certs.Load()+f.confirm.Load()+f.other.Load(); d != 0 || n != 0 {
				t.Errorf("got %d dials and %d requests, want none", d, n)
			}
			h.wantCount(t, 0)
		})
	}
	for _, c := range []struct{ name, subscribe string }{
		{"OtherHost", "https://example.com/?" + snsConfirmQ},
		{"LoopbackHost", "https://127.0.0.1/?" + snsConfirmQ},
		{"PlainHTTP", "http://" + snsTestHost + "/?" + snsConfirmQ},
		{"LookAlikeHost", "https://" + snsTestHost + ".evil.example/?" + snsConfirmQ},
	} {
		t.Run("Subscribe"+c.name, func(t *testing.T) {
			f := newSNSFixture(t)
			h := providerHarnessWith(t, snsVerify, now, f.options)
			body := snsMessage(t, "1", snsCertURL, withField(snsConfirmFields, "SubscribeURL", c.subscribe)...)
			a := send(t, h.srv, http.MethodPost, "/in/p", strings.NewReader(body), providerHeader(snsHeader("SubscriptionConfirmation", ""), nil))
			wantError(t, a, http.StatusForbidden, "forbidden")
			// The certificate was fetched to check the signature; nothing else.
			if n := f.confirm.Load() + f.other.Load(); n != 0 {
				t.Errorf("got %d requests beyond the certificate, want none", n)
			}
			if d := f.dials.Load(); d != 1 {
				t.Errorf("got %d dials, want 1 (the certificate)", d)
			}
			h.wantCount(t, 0)
		})
	}
}
