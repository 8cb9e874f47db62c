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
	"fmt"
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
// 127.0.0.1 that serves /rsa.pem and /signing.pem (the same
// certificate), /ecdsa.pem, /big.pem (too large) and /fail.pem (500),
// counting requests per path; its clock is *now.
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
		"/rsa.pem":     rsaPEM,
		"/signing.pem": rsaPEM,
		"/ecdsa.pem":   snsTestCert(t, &ecKey.PublicKey, ecKey),
		// A good certificate, then more than the limit.
		"/big.pem": append(rsaPEM, strings.Repeat("\n", snsCertMaxBytes)...),
	}
	hits := map[string]*atomic.Int64{}
	for _, p := range []string{"/rsa.pem", "/signing.pem", "/ecdsa.pem", "/big.pem", "/fail.pem"} {
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
	return newSNSCertCache(client, env, func() time.Time { return *now }), srv.URL, hits
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

// Anyone who knows an accepted topic ARN can send messages naming
// made-up certificate URLs on an SNS host, as fast as the fetch limit
// allows: some fail, some fetch a certificate that verifies nothing. The
// certificate SNS signs with stays held: its messages never wait for a
// fetch, and it is fetched once.
func TestSNSCertCacheFloodKeepsVerifiedCertificate(t *testing.T) {
	t.Parallel()
	now := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)
	c, base, hits := snsTestCache(t, &now)
	ctx := context.Background()
	genuine := base + "/signing.pem"
	if _, err := c.get(ctx, genuine); err != nil {
		t.Fatal(err)
	}
	c.verifiedBy(genuine)
	refused := 0
	for i := 0; i < 400; i++ {
		now = now.Add(time.Second)
		made := fmt.Sprintf("%s/fail.pem?a%d", base, i)
		if i%2 == 1 {
			made = fmt.Sprintf("%s/rsa.pem?a%d", base, i)
		}
		if _, err := c.get(ctx, made); err != nil {
			refused++
		}
		if i%10 == 5 {
			if _, err := c.get(ctx, genuine); err != nil {
				t.Fatalf("after %ds of made-up URLs, SNS's certificate: got %v, want it served from the cache", i+1, err)
			}
			c.verifiedBy(genuine)
		}
	}
	if n := hits["/signing.pem"].Load(); n != 1 {
		t.Errorf("SNS's certificate fetched %d times, want once", n)
	}
	if refused == 0 {
		t.Errorf("made-up URLs: none refused, want the fetch limit to refuse some")
	}
	c.mu.Lock()
	held, failed := len(c.m), len(c.failed)
	c.mu.Unlock()
	if held > snsCertCacheSize || failed > snsFailCacheSize {
		t.Errorf("cache holds %d certificates and %d failures, want at most %d and %d", held, failed, snsCertCacheSize, snsFailCacheSize)
	}
}

// A certificate that verified a signature, once dropped from a full
// cache, is fetched again on a budget of its own: made-up URLs that
// spent the fetch limit do not block it.
func TestSNSCertCacheVerifiedURLHasOwnBudget(t *testing.T) {
	t.Parallel()
	now := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)
	c, base, hits := snsTestCache(t, &now)
	ctx := context.Background()
	genuine := base + "/signing.pem"
	urls := []string{genuine}
	for i := 1; i < snsCertCacheSize; i++ {
		urls = append(urls, fmt.Sprintf("%s/rsa.pem?v%d", base, i))
	}
	for _, u := range urls {
		now = now.Add(time.Minute)
		if _, err := c.get(ctx, u); err != nil {
			t.Fatal(err)
		}
		c.verifiedBy(u)
	}
	// Hours later, one more certificate: the one that verified least
	// recently, genuine, is dropped for it.
	now = now.Add(2 * snsCertKeep)
	if _, err := c.get(ctx, base+"/rsa.pem?new"); err != nil {
		t.Fatal(err)
	}
	c.mu.Lock()
	_, held := c.m[genuine]
	c.mu.Unlock()
	if held {
		t.Fatalf("cache full of certificates idle for %v: the least recently verified is still held", 2*snsCertKeep)
	}
	// Made-up URLs spend the fetch limit.
	for i := 0; ; i++ {
		_, err := c.get(ctx, fmt.Sprintf("%s/fail.pem?b%d", base, i))
		if err != nil && strings.Contains(err.Error(), "too many") {
			break
		}
		if i > 10*snsFetchBurst {
			t.Fatal("the fetch limit refuses no made-up URL")
		}
	}
	if _, err := c.get(ctx, genuine); err != nil {
		t.Fatalf("a certificate that verified before, with the fetch limit spent: got %v, want it fetched", err)
	}
	if n := hits["/signing.pem"].Load(); n != 2 {
		t.Errorf("SNS's certificate fetched %d times, want twice", n)
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
