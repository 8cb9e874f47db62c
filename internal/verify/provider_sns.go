package verify

// The sns preset (Amazon SNS, "Verifying the signatures of Amazon SNS
// messages" and "Parsing message formats"): SNS signs each message it
// posts with the private key of a certificate it publishes at the
// message's SigningCertURL: SignatureVersion 1 is SHA1withRSA, 2 is
// SHA256withRSA (PKCS #1 v1.5), over "Name\nValue\n" for each of these
// fields, in this order:
//
//   - Notification: Message, MessageId, Subject (when present), Timestamp,
//     TopicArn, Type;
//   - SubscriptionConfirmation and UnsubscribeConfirmation: Message,
//     MessageId, SubscribeURL, Timestamp, Token, TopicArn, Type.
//
// hookd fetches the certificate only from https://sns.<region>.
// amazonaws.com[.cn]/….pem, through the egress guard, and keeps the
// few that verify (snsCertCache). A SubscriptionConfirmation of an accepted topic is
// confirmed by fetching its SubscribeURL (on an SNS host too) and answered
// 200; an UnsubscribeConfirmation is answered 200; neither is stored. A
// Notification is stored: its id is MessageId, its time Timestamp, and
// its type the TopicArn (what a route tells SNS messages apart by; Subject
// is optional free text).

import (
	"context"
	"crypto"
	"crypto/rsa"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"time"

	"golang.org/x/time/rate"

	"hookd/internal/config"
)

func init() {
	RegisterPreset("sns", newSNS, config.EventRules{
		ID: "json:MessageId", Type: "json:TopicArn", Timestamp: "json:Timestamp"})
}

// Limits of the sns preset.
const (
	// snsDefaultTolerance is how far a message's Timestamp may be from the
	// clock by default. SNS keeps a message's Timestamp across its retries,
	// which the default HTTP delivery policy spreads over well under an
	// hour.
	snsDefaultTolerance = time.Hour
	// snsCertMaxBytes caps a fetched certificate.
	snsCertMaxBytes = 64 << 10
	// snsConfirmMaxBytes caps what is read of the answer to SubscribeURL.
	snsConfirmMaxBytes = 64 << 10
	// snsCertCacheSize caps the certificates kept per source.
	snsCertCacheSize = 16
	// snsCertRetry is how long a failed certificate fetch is remembered.
	snsCertRetry = 10 * time.Second
	// snsFetchTimeout bounds a certificate fetch or a confirmation.
	snsFetchTimeout = 10 * time.Second
	// snsMaxSignature caps the decoded signature (an RSA-4096 one is 512
	// bytes).
	snsMaxSignature = 1024
)

// snsFetchRate and snsFetchBurst bound new certificate fetches per
// source: a message naming a certificate not held costs a fetch, and
// anyone who knows an accepted topic ARN can send such messages.
var (
	snsFetchRate  = rate.Every(6 * time.Second)
	snsFetchBurst = 10
)

// newSNSLimiter returns the bound of a source's new certificate fetches.
func newSNSLimiter() *rate.Limiter { return rate.NewLimiter(snsFetchRate, snsFetchBurst) }

// Message types.
const (
	snsNotification = "Notification"
	snsSubscribe    = "SubscriptionConfirmation"
	snsUnsubscribe  = "UnsubscribeConfirmation"
)

// snsHost reports whether h is a host SNS serves certificates and
// confirmations from: sns.<region>.amazonaws.com, and sns.cn-<…>.amazonaws.com.cn in
// China, where a region is a partition prefix (us, eu, ap, us-gov, …), a
// direction and a number. Other names of that shape under amazonaws.com
// are not SNS's: sns.s3.amazonaws.com, sns.s3-us-west-2.amazonaws.com and
// the like are the S3 bucket named sns, whose content anyone can write.
// The China regions (cn-…) are served only under amazonaws.com.cn.
func snsHost(h string) bool {
	return snsHostRE.MatchString(h) && strings.HasPrefix(h, "sns.cn-") == strings.HasSuffix(h, ".cn")
}

var snsHostRE = regexp.MustCompile(`^sns\.[a-z]{2}(?:-gov)?-` + snsDirections + `-[1-9][0-9]?\.amazonaws\.com(?:\.cn)?$`)

// snsDirections are the directions of region names.
const snsDirections = `(?:east|west|north|south|central|northeast|northwest|southeast|southwest)`

// snsOptions configures the sns preset.
type snsOptions struct {
	// Topics are the ARNs of the topics whose messages this source
	// accepts (and whose subscriptions it confirms); required.
	Topics []string `yaml:"topics"`
	// Tolerance is how far a message's Timestamp may be from the clock, in
	// either direction. Default 1h.
	Tolerance *config.Duration `yaml:"tolerance"`
}

// snsVerifier verifies SNS messages and answers the confirmations.
type snsVerifier struct {
	env       *Env
	topics    map[string]bool
	tolerance time.Duration
	now       func() time.Time
	client    *http.Client
	certs     *snsCertCache
}

func newSNS(env *Env, m config.Verify) (Verifier, error) {
	var o snsOptions
	if err := m.Decode(&o); err != nil {
		return nil, err
	}
	if env == nil {
		env = &Env{}
	}
	if len(o.Topics) == 0 {
		return nil, errors.New("topics: required (the ARNs of the topics to accept, such as arn:aws:sns:us-east-1:123456789012:orders)")
	}
	v := &snsVerifier{env: env, topics: map[string]bool{}, tolerance: snsDefaultTolerance, now: env.now}
	for i, t := range o.Topics {
		p := strings.Split(t, ":")
		if len(p) != 6 || p[0] != "arn" || p[2] != "sns" || p[3] == "" || p[4] == "" || p[5] == "" {
			return nil, fmt.Errorf("topics[%d]: %q is not a topic ARN (arn:aws:sns:<region>:<account>:<name>)", i, t)
		}
		v.topics[t] = true
	}
	if o.Tolerance != nil {
		if v.tolerance = o.Tolerance.D(); v.tolerance <= 0 {
			return nil, errors.New("tolerance: must be positive")
		}
	}
	v.client = oauthHTTPClient(env, snsFetchTimeout)
	v.certs = newSNSCertCache(v.client, env, v.now)
	return v, nil
}

// ReadsJSONBody: the message is a JSON body.
func (v *snsVerifier) ReadsJSONBody() bool { return true }

// snsMessage is the fields of an SNS message hookd reads.
type snsMessage struct {
	typ, messageID, topicARN, message, timestamp string
	subject                                      *string
	subscribeURL, token                          string
	sigVersion, signature, certURL               string
}

// snsParse reads an SNS message body. Each field it reads must be a
// string (Subject may be absent or null); none may be repeated.
func snsParse(body []byte, maxDepth int) (*snsMessage, error) {
	fields, err := jsonTopFields(body, maxDepth)
	if err != nil {
		return nil, err
	}
	str := func(name string) (*string, error) {
		raw, ok := fields[name]
		if !ok || string(raw) == "null" {
			return nil, nil
		}
		var s string
		if err := json.Unmarshal(raw, &s); err != nil {
			return nil, fmt.Errorf("%s is not a string", name)
		}
		return &s, nil
	}
	m := &snsMessage{}
	for _, f := range []struct {
		name string
		dst  *string
	}{
		{"Type", &m.typ}, {"MessageId", &m.messageID}, {"TopicArn", &m.topicARN},
		{"Message", &m.message}, {"Timestamp", &m.timestamp}, {"SubscribeURL", &m.subscribeURL},
		{"Token", &m.token}, {"SignatureVersion", &m.sigVersion}, {"Signature", &m.signature},
		{"SigningCertURL", &m.certURL},
	} {
		s, err := str(f.name)
		if err != nil {
			return nil, err
		}
		if s != nil {
			*f.dst = *s
		}
	}
	if m.subject, err = str("Subject"); err != nil {
		return nil, err
	}
	return m, nil
}

// stringToSign returns what SNS signed of m, or false when a field it
// signs is missing.
func (m *snsMessage) stringToSign() ([]byte, bool) {
	var b strings.Builder
	add := func(name, val string) {
		b.WriteString(name)
		b.WriteByte('\n')
		b.WriteString(val)
		b.WriteByte('\n')
	}
	if m.messageID == "" || m.timestamp == "" || m.topicARN == "" {
		return nil, false
	}
	switch m.typ {
	case snsNotification:
		add("Message", m.message)
		add("MessageId", m.messageID)
		if m.subject != nil {
			add("Subject", *m.subject)
		}
		add("Timestamp", m.timestamp)
		add("TopicArn", m.topicARN)
	case snsSubscribe, snsUnsubscribe:
		if m.subscribeURL == "" || m.token == "" {
			return nil, false
		}
		add("Message", m.message)
		add("MessageId", m.messageID)
		add("SubscribeURL", m.subscribeURL)
		add("Timestamp", m.timestamp)
		add("Token", m.token)
		add("TopicArn", m.topicARN)
	default:
		return nil, false
	}
	add("Type", m.typ)
	return []byte(b.String()), true
}

// snsCheckURL accepts an https URL on an SNS host (no port but 443, no
// credentials); a certificate URL must also name a .pem file, with no
// query.
func snsCheckURL(raw string, cert bool) error {
	u, err := url.Parse(raw)
	switch {
	case err != nil:
		return errors.New("not a URL")
	case u.Scheme != "https":
		return errors.New("not https")
	case u.User != nil || u.Opaque != "" || u.Fragment != "":
		return errors.New("not a plain https URL")
	case u.Port() != "" && u.Port() != "443":
		return errors.New("not on port 443")
	case !snsHost(u.Hostname()):
		return errors.New("not on an SNS host (sns.<region>.amazonaws.com)")
	case cert && (u.RawQuery != "" || u.ForceQuery || !strings.HasSuffix(u.Path, ".pem")):
		return errors.New("not a .pem file")
	}
	return nil
}

// Verify checks an SNS message: its type, its topic, its timestamp, then
// its signature with the certificate at SigningCertURL.
func (v *snsVerifier) Verify(ctx context.Context, r *Request) error {
	m, err := snsParse(r.Body, r.MaxJSONDepth)
	if err != nil {
		return Unauthorized("body is not an SNS message: %v", err)
	}
	if hs := r.Header.Values("X-Amz-Sns-Message-Type"); len(hs) > 1 || (len(hs) == 1 && hs[0] != m.typ) {
		return Unauthorized("x-amz-sns-message-type does not match the message's Type")
	}
	signed, ok := m.stringToSign()
	if !ok {
		return Unauthorized("not an SNS message: a signed field is missing or the Type is unknown")
	}
	if !v.topics[m.topicARN] {
		return Forbidden("the message's topic is not accepted by this source")
	}
	ts, err := time.Parse(time.RFC3339Nano, m.timestamp)
	if err != nil {
		return Unauthorized("invalid Timestamp")
	}
	if d := v.now().Sub(ts); d > v.tolerance || d < -v.tolerance {
		return Unauthorized("Timestamp outside the tolerance")
	}
	var h crypto.Hash
	var sum []byte
	switch m.sigVersion {
	case "1":
		s := sha1.Sum(signed)
		h, sum = crypto.SHA1, s[:]
	case "2":
		s := sha256.Sum256(signed)
		h, sum = crypto.SHA256, s[:]
	default:
		return Unauthorized("unsupported SignatureVersion (want 1 or 2)")
	}
	sig, err := base64.StdEncoding.DecodeString(m.signature)
	if err != nil || len(sig) == 0 || len(sig) > snsMaxSignature {
		return Unauthorized("signature missing or not base64")
	}
	if err := snsCheckURL(m.certURL, true); err != nil {
		return Unauthorized("SigningCertURL refused: %v", err)
	}
	cert, err := v.certs.get(ctx, m.certURL)
	if err != nil {
		return err
	}
	now := v.now()
	if now.Before(cert.NotBefore) || now.After(cert.NotAfter) {
		return Unauthorized("the signing certificate is not valid at this time")
	}
	if rsa.VerifyPKCS1v15(cert.PublicKey.(*rsa.PublicKey), h, sum, sig) != nil {
		return Unauthorized("signature mismatch")
	}
	v.certs.verifiedBy(m.certURL)
	return nil
}

// DetectHandshake recognises the confirmations by the body's Type. They
// are signed: the whole chain passes first.
func (v *snsVerifier) DetectHandshake(r *Request) (HandshakeKind, bool) {
	if r.Method != http.MethodPost {
		return HandshakeKind{}, false
	}
	m, err := snsParse(r.Body, r.MaxJSONDepth)
	if err != nil {
		return HandshakeKind{}, false
	}
	switch m.typ {
	case snsSubscribe:
		return HandshakeKind{Name: "sns.subscription_confirmation", Signed: true}, true
	case snsUnsubscribe:
		return HandshakeKind{Name: "sns.unsubscribe_confirmation", Signed: true}, true
	}
	return HandshakeKind{}, false
}

// AnswerHandshake confirms a subscription by fetching its SubscribeURL,
// and answers 200 with no body.
func (v *snsVerifier) AnswerHandshake(ctx context.Context, r *Request) (*HandshakeAnswer, error) {
	m, err := snsParse(r.Body, r.MaxJSONDepth)
	if err != nil {
		return nil, Unauthorized("body is not an SNS message: %v", err)
	}
	if m.typ != snsSubscribe {
		return &HandshakeAnswer{}, nil
	}
	if err := snsCheckURL(m.subscribeURL, false); err != nil {
		return nil, Forbidden("SubscribeURL refused: %v", err)
	}
	if err := oauthEgress(v.env).CheckURL(m.subscribeURL); err != nil {
		return nil, Forbidden("SubscribeURL refused: %v", err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, m.subscribeURL, nil)
	if err != nil {
		return nil, Forbidden("SubscribeURL refused: not a URL")
	}
	resp, err := v.client.Do(req)
	if err != nil {
		return nil, Unavailable("could not confirm the SNS subscription", err)
	}
	defer resp.Body.Close()
	io.Copy(io.Discard, io.LimitReader(resp.Body, snsConfirmMaxBytes))
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return nil, Unavailable("could not confirm the SNS subscription", fmt.Errorf("SubscribeURL answered %d", resp.StatusCode))
	}
	if v.env.Log != nil {
		v.env.Log.Info("sns subscription confirmed", "source", v.env.Source, "topic", m.topicARN)
	}
	return &HandshakeAnswer{}, nil
}

// HandshakeMethods: SNS posts its confirmations.
func (v *snsVerifier) HandshakeMethods() []string { return nil }

// snsCertCache holds the signing certificates a source fetched. Anyone
// who knows an accepted topic ARN can make it fetch (a message naming a
// made-up certificate URL costs a fetch before its signature can be
// checked), so what it keeps is arranged for such messages not to push
// out the certificate SNS signs with:
//
//   - certificates fetched, at most snsCertCacheSize: when one more is
//     fetched, the one that verified a signature least recently goes (one
//     that never verified any first, the oldest fetched of those); one that
//     verified within snsCertKeep is never dropped for one that verified
//     less recently (the new one is then used but not kept);
//   - failed fetches apart, at most snsFailCacheSize, each for
//     snsCertRetry: they never push out a certificate;
//   - new fetches bounded by a limiter; a URL whose certificate once
//     verified a signature (remembered for snsVerifiedSize URLs) is
//     fetched again on a budget of its own, which no made-up URL spends.
//
// One fetch per URL runs at a time; its waiters share its outcome.
type snsCertCache struct {
	client *http.Client
	env    *Env
	now    func() time.Time

	mu       sync.Mutex
	m        map[string]*snsCertEntry
	pending  map[string]*snsFetch
	failed   map[string]snsFailure
	verified map[string]time.Time // URL → when its certificate last verified a signature
	// limit bounds fetches of URLs never verified; limitVerified those of
	// URLs in verified.
	limit, limitVerified *rate.Limiter
}

// Bounds of the certificate cache.
const (
	// snsCertKeep is how long a certificate that verified a signature is
	// kept over certificates that did not since.
	snsCertKeep = time.Hour
	// snsFailCacheSize caps the failed fetches remembered per source.
	snsFailCacheSize = 32
	// snsVerifiedSize caps the URLs remembered as having verified.
	snsVerifiedSize = 64
)

// snsCertEntry is a certificate held.
type snsCertEntry struct {
	cert     *x509.Certificate
	fetched  time.Time
	verified time.Time // zero: it has verified no signature
}

// snsFetch is a fetch in flight.
type snsFetch struct {
	done chan struct{} // closed when the fetch ends
	cert *x509.Certificate
	err  error
}

// snsFailure is a failed fetch.
type snsFailure struct {
	at  time.Time
	err error
}

// newSNSCertCache returns an empty cache fetching with client.
func newSNSCertCache(client *http.Client, env *Env, now func() time.Time) *snsCertCache {
	return &snsCertCache{
		client: client, env: env, now: now,
		m:             map[string]*snsCertEntry{},
		pending:       map[string]*snsFetch{},
		failed:        map[string]snsFailure{},
		verified:      map[string]time.Time{},
		limit:         newSNSLimiter(),
		limitVerified: newSNSLimiter(),
	}
}

// get returns the RSA certificate at u, fetching it when not held.
func (c *snsCertCache) get(ctx context.Context, u string) (*x509.Certificate, error) {
	c.mu.Lock()
	now := c.now()
	if e := c.m[u]; e != nil {
		c.mu.Unlock()
		return e.cert, nil
	}
	f := c.pending[u]
	if f == nil {
		if fl, ok := c.failed[u]; ok {
			if now.Sub(fl.at) < snsCertRetry {
				c.mu.Unlock()
				return nil, Unavailable("could not fetch the SNS signing certificate", fl.err)
			}
			delete(c.failed, u)
		}
		limit := c.limit
		if _, ok := c.verified[u]; ok {
			limit = c.limitVerified
		}
		if !limit.AllowN(now, 1) {
			c.mu.Unlock()
			return nil, Unavailable("too many SNS signing certificates fetched; try again later", nil)
		}
		f = &snsFetch{done: make(chan struct{})}
		c.pending[u] = f
		go c.fetch(u, f)
	}
	c.mu.Unlock()
	select {
	case <-f.done:
	case <-ctx.Done():
		return nil, Unavailable("fetching the SNS signing certificate took too long", ctx.Err())
	}
	if f.err != nil {
		return nil, Unavailable("could not fetch the SNS signing certificate", f.err)
	}
	return f.cert, nil
}

// verifiedBy records that the certificate at u verified a signature.
func (c *snsCertCache) verifiedBy(u string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	now := c.now()
	if e := c.m[u]; e != nil {
		e.verified = now
	}
	if _, ok := c.verified[u]; !ok && len(c.verified) >= snsVerifiedSize {
		var oldest string
		var at time.Time
		for v, t := range c.verified {
			if oldest == "" || t.Before(at) {
				oldest, at = v, t
			}
		}
		delete(c.verified, oldest)
	}
	c.verified[u] = now
}

// fetch fetches the certificate at u into f, then keeps it or the failure.
func (c *snsCertCache) fetch(u string, f *snsFetch) {
	ctx, cancel := context.WithTimeout(context.Background(), snsFetchTimeout)
	defer cancel()
	cert, err := c.download(ctx, u)
	if err != nil && c.env.Log != nil {
		c.env.Log.Warn("sns signing certificate fetch failed", "source", c.env.Source, "error", err)
	}
	c.mu.Lock()
	now := c.now()
	delete(c.pending, u)
	if err != nil {
		c.keepFailure(u, snsFailure{at: now, err: err})
	} else {
		c.keep(u, &snsCertEntry{cert: cert, fetched: now, verified: c.verified[u]})
	}
	f.cert, f.err = cert, err
	c.mu.Unlock()
	close(f.done)
}

// keep holds e, dropping the certificate that verified least recently
// when the cache is full; e is not held when that one verified within
// snsCertKeep and more recently than e. c.mu is held.
func (c *snsCertCache) keep(u string, e *snsCertEntry) {
	if len(c.m) >= snsCertCacheSize {
		var victim string
		var ve *snsCertEntry
		for v, x := range c.m {
			if ve == nil || x.verified.Before(ve.verified) || (x.verified.Equal(ve.verified) && x.fetched.Before(ve.fetched)) {
				victim, ve = v, x
			}
		}
		if !ve.verified.IsZero() && e.fetched.Sub(ve.verified) < snsCertKeep && !ve.verified.Before(e.verified) {
			return
		}
		delete(c.m, victim)
	}
	c.m[u] = e
}

// keepFailure remembers a failed fetch, dropping the oldest one when
// snsFailCacheSize are held. c.mu is held.
func (c *snsCertCache) keepFailure(u string, f snsFailure) {
	if len(c.failed) >= snsFailCacheSize {
		var oldest string
		var at time.Time
		for v, x := range c.failed {
			if oldest == "" || x.at.Before(at) {
				oldest, at = v, x.at
			}
		}
		delete(c.failed, oldest)
	}
	c.failed[u] = f
}

// download fetches and parses the PEM certificate at u, through the
// egress guard.
func (c *snsCertCache) download(ctx context.Context, u string) (*x509.Certificate, error) {
	if err := oauthEgress(c.env).CheckURL(u); err != nil {
		return nil, err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, err
	}
	resp, err := c.client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("certificate URL answered %d", resp.StatusCode)
	}
	b, err := io.ReadAll(io.LimitReader(resp.Body, snsCertMaxBytes+1))
	if err != nil {
		return nil, fmt.Errorf("read certificate: %w", err)
	}
	if len(b) > snsCertMaxBytes {
		return nil, fmt.Errorf("certificate larger than %d bytes", snsCertMaxBytes)
	}
	block, _ := pem.Decode(b)
	if block == nil || block.Type != "CERTIFICATE" {
		return nil, errors.New("not a PEM certificate")
	}
	cert, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		return nil, fmt.Errorf("parse certificate: %w", err)
	}
	pub, ok := cert.PublicKey.(*rsa.PublicKey)
	if !ok || pub.N.BitLen() < 2048 {
		return nil, errors.New("the certificate's key is not RSA of at least 2048 bits")
	}
	return cert, nil
}
