package verify

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"hookd"
	"hookd/internal/config"
)

func TestSNSCheckURL(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		url  string
		cert bool
		ok   bool
	}{
		{"https://sns.us-east-1.amazonaws.com/SimpleNotificationService-0123456789abcdef.pem", true, true},
		{"https://sns.us-gov-west-1.amazonaws.com/SimpleNotificationService-0123456789abcdef.pem", true, true},
		{"https://sns.cn-north-1.amazonaws.com.cn/SimpleNotificationService-0123456789abcdef.pem", true, true},
		{"https://sns.eu-west-3.amazonaws.com:443/cert.pem", true, true},
		{"https://sns.eu-central-2.amazonaws.com/cert.pem", true, true},
		{"https://sns.ap-southeast-3.amazonaws.com/cert.pem", true, true},
		{"https://sns.ap-northeast-1.amazonaws.com/cert.pem", true, true},
		{"https://sns.il-central-1.amazonaws.com/cert.pem", true, true},
		{"https://sns.mx-central-1.amazonaws.com/cert.pem", true, true},
		{"https://sns.me-south-1.amazonaws.com/cert.pem", true, true},
		{"https://sns.cn-northwest-1.amazonaws.com.cn/cert.pem", true, true},
		{"https://sns.us-gov-east-1.amazonaws.com/cert.pem", true, true},
		// The S3 bucket named sns: anyone can own it and write to it.
		{"https://sns.s3.amazonaws.com/SimpleNotificationService-0123456789abcdef.pem", true, false},
		{"https://sns.s3-accelerate.amazonaws.com/cert.pem", true, false},
		{"https://sns.s3-us-west-2.amazonaws.com/cert.pem", true, false},
		{"https://sns.s3-external-1.amazonaws.com/cert.pem", true, false},
		{"https://sns.s3-website-us-east-1.amazonaws.com/cert.pem", true, false},
		{"https://sns.s3.us-east-1.amazonaws.com/cert.pem", true, false},
		{"https://sns.compute-1.amazonaws.com/cert.pem", true, false},
		{"https://sns.us-east-1.amazonaws.com.cn/cert.pem", true, false},
		{"https://sns.cn-north-1.amazonaws.com/cert.pem", true, false},
		{"https://sns.us-east.amazonaws.com/cert.pem", true, false},
		{"https://sns.us-up-1.amazonaws.com/cert.pem", true, false},
		{"https://sns.us-east-1.amazonaws.com/?Action=ConfirmSubscription&TopicArn=arn:aws:sns:us-east-1:1:t&Token=x", false, true},
		{"https://sns.us-east-1.amazonaws.com/?Action=ConfirmSubscription", true, false}, // a cert URL names a .pem
		{"https://sns.us-east-1.amazonaws.com/cert.pem?x=1", true, false},
		{"https://sns.us-east-1.amazonaws.com/cert.pem?", true, false},
		{"http://sns.us-east-1.amazonaws.com/cert.pem", true, false},
		{"http://sns.us-east-1.amazonaws.com/?Action=ConfirmSubscription", false, false},
		{"https://sns.us-east-1.amazonaws.com:8443/cert.pem", true, false},
		{"https://user:pw@sns.us-east-1.amazonaws.com/cert.pem", true, false},
		{"https://sns.us-east-1.amazonaws.com.evil.example/cert.pem", true, false},
		{"https://evil.example/sns.us-east-1.amazonaws.com/cert.pem", true, false},
		{"https://sqs.us-east-1.amazonaws.com/cert.pem", true, false},
		{"https://sns.amazonaws.com/cert.pem", true, false},
		{"https://sns..amazonaws.com/cert.pem", true, false},
		{"https://sns.us-east-1.amazonaws.com./cert.pem", true, false},
		{"https://SNS.us-east-1.amazonaws.com/cert.pem", true, false},
		{"https://sns.us_east-1.amazonaws.com/cert.pem", true, false},
		{"https://127.0.0.1/cert.pem", true, false},
		{"https://sns.us-east-1.amazonaws.com/cert.pem#x", true, false},
		{"//sns.us-east-1.amazonaws.com/cert.pem", true, false},
		{"", true, false},
	} {
		err := snsCheckURL(c.url, c.cert)
		if (err == nil) != c.ok {
			t.Errorf("snsCheckURL(%q, cert=%v): got %v, want accepted=%v", c.url, c.cert, err, c.ok)
		}
	}
}

func TestSNSOptions(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		name string
		opts map[string]any
		want string
	}{
		{"NoTopics", map[string]any{}, "topics: required"},
		{"NotAnARN", map[string]any{"topics": []any{"MyTopic"}}, "topics[0]: \"MyTopic\" is not a topic ARN"},
		{"SQSARN", map[string]any{"topics": []any{"arn:aws:sqs:us-east-1:123456789012:q"}}, "is not a topic ARN"},
		{"Tolerance", map[string]any{"topics": []any{"arn:aws:sns:us-east-1:123456789012:t"}, "tolerance": "-1m"}, "tolerance: must be positive"},
		{"Unknown", map[string]any{"topics": []any{"arn:aws:sns:us-east-1:123456789012:t"}, "secrets": []any{"x"}}, "secrets"},
		{"OK", map[string]any{"topics": []any{"arn:aws:sns:us-east-1:123456789012:t", "arn:aws-cn:sns:cn-north-1:123456789012:t"}, "tolerance": "15m"}, ""},
	} {
		m, err := config.NewVerify("sns", c.opts)
		if err != nil {
			t.Fatal(err)
		}
		_, err = Build(&Env{}, []config.Verify{m})
		switch {
		case c.want == "" && err != nil:
			t.Errorf("%s: got %v, want accepted", c.name, err)
		case c.want != "" && (err == nil || !strings.Contains(err.Error(), c.want)):
			t.Errorf("%s: got %v, want an error containing %q", c.name, err, c.want)
		}
	}
}

// snsTestCert returns a self-signed certificate for key, PEM-encoded.
func snsTestCert(t *testing.T, pub, priv any) []byte {
	t.Helper()
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "sns.amazonaws.com"},
		NotBefore: time.Date(2010, 1, 1, 0, 0, 0, 0, time.UTC), NotAfter: time.Date(2045, 1, 1, 0, 0, 0, 0, time.UTC),
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, pub, priv)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
}

// snsTestCache is a certificate cache fetching from a TLS server on
// 127.0.0.1 that serves /rsa.pem, /ecdsa.pem, /big.pem (too large) and
// /fail.pem (500), counting requests per path; its clock is *now.
func snsTestCache(t *testing.T, now *time.Time) (*snsCertCache, string, map[string]*atomic.Int64) {
	t.Helper()
	rsaKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	ecKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	rsaPEM := snsTestCert(t, &rsaKey.PublicKey, rsaKey)
	bodies := map[string][]byte{
		"/rsa.pem":   rsaPEM,
		"/ecdsa.pem": snsTestCert(t, &ecKey.PublicKey, ecKey),
		// A good certificate, then more than the limit.
		"/big.pem": append(rsaPEM, strings.Repeat("\n", snsCertMaxBytes)...),
	}
	hits := map[string]*atomic.Int64{}
	for _, p := range []string{"/rsa.pem", "/ecdsa.pem", "/big.pem", "/fail.pem"} {
		hits[p] = &atomic.Int64{}
	}
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if h := hits[r.URL.Path]; h != nil {
			h.Add(1)
		}
		if b, ok := bodies[r.URL.Path]; ok {
			w.Write(b)
			return
		}
		http.Error(w, "no", http.StatusInternalServerError)
	}))
	t.Cleanup(srv.Close)
	client := srv.Client()
	client.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	env := &Env{Egress: oauthTestEgress(t)}
	c := &snsCertCache{client: client, env: env, now: func() time.Time { return *now }, m: map[string]*snsCertEntry{}}
	c.limit = newSNSLimiter()
	return c, srv.URL, hits
}

func TestSNSCertCache(t *testing.T) {
	t.Parallel()
	now := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)
	c, base, hits := snsTestCache(t, &now)
	ctx := context.Background()

	for i := 0; i < 3; i++ {
		if _, err := c.get(ctx, base+"/rsa.pem"); err != nil {
			t.Fatalf("rsa certificate: %v", err)
		}
	}
	if n := hits["/rsa.pem"].Load(); n != 1 {
		t.Errorf("rsa certificate fetched %d times, want once", n)
	}
	for _, p := range []string{"/ecdsa.pem", "/big.pem", "/fail.pem"} {
		_, err := c.get(ctx, base+p)
		if hookd.ErrorCode(err) != hookd.EUnavailable {
			t.Errorf("%s: got %v, want unavailable", p, err)
		}
	}
	// A failure is remembered for snsCertRetry, then retried.
	c.get(ctx, base+"/fail.pem")
	if n := hits["/fail.pem"].Load(); n != 1 {
		t.Errorf("failed fetch retried at once: %d fetches", n)
	}
	now = now.Add(snsCertRetry)
	c.get(ctx, base+"/fail.pem")
	if n := hits["/fail.pem"].Load(); n != 2 {
		t.Errorf("failed fetch not retried after %v: %d fetches", snsCertRetry, n)
	}
}

// The cache holds at most snsCertCacheSize certificates, and new fetches
// are rate limited: a flood of made-up certificate URLs costs at most the
// burst, then one fetch per interval.
func TestSNSCertCacheBounds(t *testing.T) {
	t.Parallel()
	now := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)
	c, base, _ := snsTestCache(t, &now)
	ctx := context.Background()
	fetched, limited := 0, 0
	for i := 0; i < snsCertCacheSize+snsFetchBurst; i++ {
		_, err := c.get(ctx, base+"/rsa.pem?"+strings.Repeat("n", i+1))
		switch {
		case err == nil:
			fetched++
		case strings.Contains(err.Error(), "too many"):
			limited++
		default:
			t.Fatalf("get: %v", err)
		}
		now = now.Add(time.Second)
	}
	if fetched >= snsCertCacheSize+snsFetchBurst || limited == 0 {
		t.Errorf("got %d fetched and %d refused, want the rate limit to refuse some", fetched, limited)
	}
	c.mu.Lock()
	n := len(c.m)
	c.mu.Unlock()
	if n > snsCertCacheSize {
		t.Errorf("cache holds %d certificates, want at most %d", n, snsCertCacheSize)
	}
	// Over a long time, every URL is fetched and the cache stays bounded.
	for i := 0; i < 3*snsCertCacheSize; i++ {
		now = now.Add(time.Minute)
		if _, err := c.get(ctx, base+"/rsa.pem?"+strings.Repeat("m", i+1)); err != nil {
			t.Fatalf("get %d: %v", i, err)
		}
	}
	c.mu.Lock()
	n = len(c.m)
	c.mu.Unlock()
	if n != snsCertCacheSize {
		t.Errorf("cache holds %d certificates, want %d", n, snsCertCacheSize)
	}
}

func TestSNSStringToSign(t *testing.T) {
	t.Parallel()
	subject := "Hi"
	for _, c := range []struct {
		name string
		m    snsMessage
		want string
	}{
		{"Notification", snsMessage{typ: "Notification", messageID: "id", topicARN: "arn", message: "a\nb", timestamp: "ts", subject: &subject},
			"Message\na\nb\nMessageId\nid\nSubject\nHi\nTimestamp\nts\nTopicArn\narn\nType\nNotification\n"},
		{"NotificationNoSubject", snsMessage{typ: "Notification", messageID: "id", topicARN: "arn", message: "m", timestamp: "ts"},
			"Message\nm\nMessageId\nid\nTimestamp\nts\nTopicArn\narn\nType\nNotification\n"},
		{"Subscription", snsMessage{typ: "SubscriptionConfirmation", messageID: "id", topicARN: "arn", message: "m", timestamp: "ts", subscribeURL: "u", token: "k", subject: &subject},
			"Message\nm\nMessageId\nid\nSubscribeURL\nu\nTimestamp\nts\nToken\nk\nTopicArn\narn\nType\nSubscriptionConfirmation\n"},
		{"Unsubscribe", snsMessage{typ: "UnsubscribeConfirmation", messageID: "id", topicARN: "arn", message: "m", timestamp: "ts", subscribeURL: "u", token: "k"},
			"Message\nm\nMessageId\nid\nSubscribeURL\nu\nTimestamp\nts\nToken\nk\nTopicArn\narn\nType\nUnsubscribeConfirmation\n"},
		{"UnknownType", snsMessage{typ: "Other", messageID: "id", topicARN: "arn", timestamp: "ts"}, ""},
		{"NoToken", snsMessage{typ: "SubscriptionConfirmation", messageID: "id", topicARN: "arn", timestamp: "ts", subscribeURL: "u"}, ""},
		{"NoMessageId", snsMessage{typ: "Notification", topicARN: "arn", timestamp: "ts"}, ""},
	} {
		got, ok := c.m.stringToSign()
		if string(got) != c.want || ok != (c.want != "") {
			t.Errorf("%s: got %q %v, want %q", c.name, got, ok, c.want)
		}
	}
}

// FuzzSNSParse: no body makes the parser or the canonical string panic,
// and a message that parses has a string to sign only for the three types.
func FuzzSNSParse(f *testing.F) {
	for _, s := range []string{
		`{"Type":"Notification","MessageId":"a","TopicArn":"arn:aws:sns:us-east-1:1:t","Message":"m","Timestamp":"2012-05-02T00:54:06.655Z","Subject":null}`,
		`{"Type":"SubscriptionConfirmation","Token":"t","SubscribeURL":"https://x","MessageId":"a","TopicArn":"b","Timestamp":"c","Message":""}`,
		`{"Type":1}`, `{"Type":"a","Type":"b"}`, `[]`, `{} {}`, `{"a":[[[[[]]]]]}`, `"x"`, ``,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		m, err := snsParse(body, 0)
		if err != nil {
			return
		}
		if _, ok := m.stringToSign(); ok && m.typ != snsNotification && m.typ != snsSubscribe && m.typ != snsUnsubscribe {
			t.Fatalf("type %q has a string to sign", m.typ)
		}
	})
}
