package verify

import (
	"context"
	"crypto/hmac"
	"crypto/md5"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"hash"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"hookd"
	"hookd/internal/config"
)

// This file holds the signature matrix every signature scheme runs
// (sigFixture, sigRunMatrix) and the tests of the generic hmac method.

// sigT0 is the injected clock of the signature tests.
var sigT0 = time.Unix(1700000000, 0).UTC()

// sigSecrets are the shared secrets of the matrix: 0 and 1 are a rotation
// pair, 2 is the wrong secret.
var sigSecrets = []string{"s3cr3t-zero-0123456789", "s3cr3t-one-0123456789", "s3cr3t-two-0123456789"}

// sigMatrixBody is the body the matrix signs.
const sigMatrixBody = `{"id":"evt_1","type":"booking.created","amount":501,"note":"hello"}`

func sigClock(t time.Time) func() time.Time { return func() time.Time { return t } }

func sigDiscardLog() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// sigMustBuild builds a method from options written as in YAML.
func sigMustBuild(t *testing.T, typ string, opts map[string]any, now func() time.Time) Verifier {
	t.Helper()
	v, err := sigTryBuild(typ, opts, now)
	if err != nil {
		t.Fatalf("build %s %v: %v", typ, opts, err)
	}
	return v
}

func sigTryBuild(typ string, opts map[string]any, now func() time.Time) (Verifier, error) {
	m, err := config.NewVerify(typ, opts)
	if err != nil {
		return nil, err
	}
	f, ok := factories[typ]
	if !ok {
		return nil, fmt.Errorf("method %s not registered", typ)
	}
	return f(&Env{Source: "test", Now: now, Log: sigDiscardLog()}, m)
}

// sigOps returns how many MACs and signature verifications v computed.
func sigOps(v Verifier) int64 {
	switch v := v.(type) {
	case *sigVerifier:
		return v.ops.Load()
	case sigFirstPresent:
		var n int64
		for _, s := range v {
			n += s.ops.Load()
		}
		return n
	case interface{ sigBase() *sigVerifier }:
		return v.sigBase().ops.Load()
	}
	panic(fmt.Sprintf("sigOps: unexpected %T", v))
}

func sigAnyList(ss []string) []any {
	out := make([]any, len(ss))
	for i, s := range ss {
		out[i] = s
	}
	return out
}

func sigPick(all []string, idx []int) []any {
	out := make([]any, len(idx))
	for i, k := range idx {
		out[i] = all[k]
	}
	return out
}

func sigMAC(h func() hash.Hash, key, msg []byte) []byte {
	m := hmac.New(h, key)
	m.Write(msg)
	return m.Sum(nil)
}

func sigHex(b []byte) string { return hex.EncodeToString(b) }
func sigB64(b []byte) string { return base64.StdEncoding.EncodeToString(b) }

// sigReserialize returns the same JSON data with other whitespace and key order.
func sigReserialize(t *testing.T, b []byte) []byte {
	t.Helper()
	var v map[string]any
	if err := json.Unmarshal(b, &v); err != nil {
		t.Fatalf("reserialize: %v", err)
	}
	out, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	if string(out) == string(b) {
		t.Fatalf("reserialize: %s came out the same", b)
	}
	return out
}

// sigFlip returns b with one bit flipped, in a letter of its middle.
func sigFlip(b []byte) []byte {
	out := append([]byte(nil), b...)
	for i := len(out) / 2; i < len(out); i++ {
		if c := out[i]; c >= 'a' && c <= 'z' {
			out[i] ^= 0x01
			return out
		}
	}
	panic("sigFlip: no letter")
}

// sigUpperHex upper-cases the hex digits of a signature token, after its
// prefix or key ("sha256=", "v1=").
func sigUpperHex(tok string) string {
	i := strings.LastIndexAny(tok, "=,")
	return tok[:i+1] + strings.ToUpper(tok[i+1:])
}

func sigTS(t time.Time) string { return strconv.FormatInt(t.Unix(), 10) }

// sigFixture describes one signature scheme to the matrix.
type sigFixture struct {
	name string
	// build returns a verifier that accepts keys[i] (indexes into the
	// fixture's keys: 0 and 1 a rotation pair, 2 the wrong key).
	build func(t *testing.T, keys []int, now func() time.Time) Verifier
	// sign returns one signature token as it appears in the request.
	sign func(t *testing.T, key int, signed []byte, ts time.Time) string
	// request carries tokens (none: no signature at all) for signed.
	request func(signed []byte, tokens []string, ts time.Time) *Request
	// hex is set when the scheme writes signatures in hex.
	hex bool
	// timestamped is set when the scheme checks a timestamp.
	timestamped bool
}

// sigRunMatrix runs the signature matrix against fx.
func sigRunMatrix(t *testing.T, fx sigFixture) {
	body := []byte(sigMatrixBody)
	type result struct {
		err error
		ops int64
	}
	run := func(t *testing.T, keys []int, now time.Time, req *Request) result {
		t.Helper()
		v := fx.build(t, keys, sigClock(now))
		err := v.Verify(context.Background(), req)
		return result{err, sigOps(v)}
	}
	accept := func(t *testing.T, r result) {
		t.Helper()
		if r.err != nil {
			t.Fatalf("got %v, want accepted", r.err)
		}
	}
	reject := func(t *testing.T, r result, want string) {
		t.Helper()
		if r.err == nil {
			t.Fatalf("got accepted, want 401 %q", want)
		}
		if c := hookd.ErrorCode(r.err); c != hookd.EUnauthorized {
			t.Fatalf("got code %s (%v), want %s", c, r.err, hookd.EUnauthorized)
		}
		if msg := hookd.ErrorMessage(r.err); want != "" && msg != want {
			t.Fatalf("got message %q, want %q", msg, want)
		}
	}
	valid := func(t *testing.T) string { return fx.sign(t, 0, body, sigT0) }

	t.Run("Valid", func(t *testing.T) {
		accept(t, run(t, []int{0}, sigT0, fx.request(body, []string{valid(t)}, sigT0)))
	})
	t.Run("Missing", func(t *testing.T) {
		reject(t, run(t, []int{0}, sigT0, fx.request(body, nil, sigT0)), "signature missing")
	})
	t.Run("FlippedBit", func(t *testing.T) {
		reject(t, run(t, []int{0}, sigT0, fx.request(sigFlip(body), []string{valid(t)}, sigT0)), "signature mismatch")
	})
	t.Run("ReserializedJSON", func(t *testing.T) {
		reject(t, run(t, []int{0}, sigT0, fx.request(sigReserialize(t, body), []string{valid(t)}, sigT0)), "signature mismatch")
	})
	t.Run("WrongSecret", func(t *testing.T) {
		tok := fx.sign(t, 2, body, sigT0)
		r := run(t, []int{0}, sigT0, fx.request(body, []string{tok}, sigT0))
		reject(t, r, "signature mismatch")
		// The answer never reveals the expected signature.
		exp := valid(t)
		if i := strings.LastIndexAny(exp, "=,"); i >= 0 && len(exp)-i > 8 {
			exp = exp[i+1:]
		}
		if strings.Contains(r.err.Error(), exp) {
			t.Fatalf("error %q reveals the expected signature", r.err)
		}
	})
	t.Run("Truncated", func(t *testing.T) {
		// Base64 padding carries nothing: cut into the signature itself.
		tok := strings.TrimRight(valid(t), "=")
		reject(t, run(t, []int{0}, sigT0, fx.request(body, []string{tok[:len(tok)-2]}, sigT0)), "signature mismatch")
	})
	if fx.hex {
		t.Run("UpperCaseHex", func(t *testing.T) {
			tok := sigUpperHex(valid(t))
			if tok == valid(t) {
				t.Fatalf("upper-casing %q changed nothing", tok)
			}
			accept(t, run(t, []int{0}, sigT0, fx.request(body, []string{tok}, sigT0)))
		})
	}
	t.Run("SeveralOneValid", func(t *testing.T) {
		toks := []string{fx.sign(t, 2, body, sigT0), valid(t), fx.sign(t, 1, body, sigT0)}
		accept(t, run(t, []int{0}, sigT0, fx.request(body, toks, sigT0)))
	})
	t.Run("SeveralNoneValid", func(t *testing.T) {
		toks := []string{fx.sign(t, 2, body, sigT0), fx.sign(t, 1, body, sigT0)}
		reject(t, run(t, []int{0}, sigT0, fx.request(body, toks, sigT0)), "signature mismatch")
	})
	for _, n := range []int{17, 1000} {
		t.Run(fmt.Sprintf("Signatures%d", n), func(t *testing.T) {
			wrong := fx.sign(t, 2, body, sigT0)
			toks := make([]string, n)
			for i := range toks {
				toks[i] = wrong
			}
			toks[n-1] = valid(t)
			req := fx.request(body, toks, sigT0)
			v := fx.build(t, []int{0}, sigClock(sigT0))
			start := time.Now()
			err := v.Verify(context.Background(), req)
			elapsed := time.Since(start)
			reject(t, result{err, sigOps(v)}, "")
			if msg := hookd.ErrorMessage(err); msg != "too many signatures" && msg != "signature header too long" {
				t.Fatalf("got message %q, want too many signatures or signature header too long", msg)
			}
			if ops := sigOps(v); ops != 0 {
				t.Fatalf("got %d MACs or verifications, want 0: the header must be refused before any cryptography", ops)
			}
			t.Logf("%d signatures refused in %s", n, elapsed)
		})
	}
	t.Run("SixteenOneValid", func(t *testing.T) {
		wrong := fx.sign(t, 2, body, sigT0)
		toks := make([]string, sigMaxEntries-1) // room for a kv timestamp entry
		for i := range toks {
			toks[i] = wrong
		}
		toks[len(toks)-1] = valid(t)
		accept(t, run(t, []int{0}, sigT0, fx.request(body, toks, sigT0)))
	})
	if fx.timestamped {
		for _, c := range []struct {
			name   string
			offset time.Duration
			ok     bool
		}{
			{"301sOld", -301 * time.Second, false},
			{"301sAhead", 301 * time.Second, false},
			{"299sOld", -299 * time.Second, true},
			{"299sAhead", 299 * time.Second, true},
			{"300sOld", -300 * time.Second, true},
		} {
			t.Run("Timestamp"+c.name, func(t *testing.T) {
				ts := sigT0.Add(c.offset)
				v := fx.build(t, []int{0}, sigClock(sigT0))
				err := v.Verify(context.Background(), fx.request(body, []string{fx.sign(t, 0, body, ts)}, ts))
				if c.ok {
					accept(t, result{err, 0})
					return
				}
				reject(t, result{err, sigOps(v)}, "timestamp outside tolerance")
				if ops := sigOps(v); ops != 0 {
					t.Fatalf("got %d MACs, want 0 for a stale timestamp", ops)
				}
			})
		}
	}
	t.Run("Rotation", func(t *testing.T) {
		for k, ok := range []bool{true, true, false} {
			r := run(t, []int{0, 1}, sigT0, fx.request(body, []string{fx.sign(t, k, body, sigT0)}, sigT0))
			if ok {
				accept(t, r)
			} else {
				reject(t, r, "signature mismatch")
			}
		}
	})
}

// sigMACFixture is a matrix fixture for a shared-secret method: opts are
// the options without secrets, mac computes one signature's bytes, token
// wraps them for the request, and request builds the request.
func sigMACFixture(name, typ string, opts map[string]any, mac func(secret, signed []byte, ts time.Time) []byte,
	token func([]byte) string, request func(signed []byte, tokens []string, ts time.Time) *Request, isHex, timestamped bool) sigFixture {
	return sigFixture{
		name: name,
		build: func(t *testing.T, keys []int, now func() time.Time) Verifier {
			o := map[string]any{"secrets": sigPick(sigSecrets, keys)}
			for k, v := range opts {
				o[k] = v
			}
			return sigMustBuild(t, typ, o, now)
		},
		sign: func(t *testing.T, key int, signed []byte, ts time.Time) string {
			return token(mac([]byte(sigSecrets[key]), signed, ts))
		},
		request:     request,
		hex:         isHex,
		timestamped: timestamped,
	}
}

// sigHeaderRequest returns a request whose body is body, with headers.
func sigHeaderRequest(body []byte, hdr map[string]string) *Request {
	h := http.Header{}
	for k, v := range hdr {
		if v != "" {
			h.Set(k, v)
		}
	}
	return &Request{Method: http.MethodPost, Header: h, Body: body}
}

// sigSeed004Body returns a body shaped like seed 004's: the payload, its
// signature, and the payload as a string (the signed content).
func sigSeed004Body(payload []byte, payloadAsString []byte, signature string) []byte {
	m := map[string]any{"payload": json.RawMessage(payload), "payloadAsString": string(payloadAsString)}
	if signature != "" {
		m["signature"] = signature
	}
	b, err := json.Marshal(m)
	if err != nil {
		panic(err)
	}
	return b
}

func TestHMACMatrix(t *testing.T) {
	t.Parallel()
	fixtures := []sigFixture{
		sigMACFixture("HeaderPrefixTimestamp", "hmac",
			map[string]any{
				"algorithm": "sha256", "signature": "header:X-Signature", "prefix": "sha256=",
				"timestamp": "header:X-Timestamp", "signed": "{timestamp}.{body}", "encoding": "hex",
			},
			func(secret, signed []byte, ts time.Time) []byte {
				return sigMAC(sha256.New, secret, []byte(sigTS(ts)+"."+string(signed)))
			},
			func(b []byte) string { return "sha256=" + sigHex(b) },
			func(signed []byte, toks []string, ts time.Time) *Request {
				return sigHeaderRequest(signed, map[string]string{"X-Signature": strings.Join(toks, ", "), "X-Timestamp": sigTS(ts)})
			}, true, true),
		sigMACFixture("KVBase64URL", "hmac",
			map[string]any{
				"algorithm": "sha512", "signature": "header:X-Sig", "scheme": "kv", "signature_key": "s",
				"timestamp_key": "ts", "signed": "{timestamp}:{header:X-Tenant}:{body}", "encoding": "base64url",
			},
			func(secret, signed []byte, ts time.Time) []byte {
				return sigMAC(sha512.New, secret, []byte(sigTS(ts)+":acme:"+string(signed)))
			},
			func(b []byte) string { return "s=" + base64.RawURLEncoding.EncodeToString(b) },
			func(signed []byte, toks []string, ts time.Time) *Request {
				hv := ""
				if len(toks) > 0 {
					hv = "ts=" + sigTS(ts) + "," + strings.Join(toks, ",")
				}
				return sigHeaderRequest(signed, map[string]string{"X-Sig": hv, "X-Tenant": "acme"})
			}, false, true),
		sigMACFixture("VersionedBase64", "hmac",
			map[string]any{
				"algorithm": "sha1", "signature": "header:X-Sig", "scheme": "versioned", "version": "v2",
				"secret_encoding": "raw", "encoding": "base64",
			},
			func(secret, signed []byte, _ time.Time) []byte { return sigMAC(sha1.New, secret, signed) },
			func(b []byte) string { return "v2," + sigB64(b) },
			func(signed []byte, toks []string, _ time.Time) *Request {
				return sigHeaderRequest(signed, map[string]string{"X-Sig": strings.Join(toks, " ")})
			}, false, false),
		// Seed 004: the signature and the signed string are fields of the
		// JSON body; the signed content is the string payloadAsString.
		sigMACFixture("Seed004JSONField", "hmac",
			map[string]any{
				"algorithm": "sha256", "signature": "json:signature", "signed": "json:payloadAsString", "encoding": "hex",
			},
			func(secret, signed []byte, _ time.Time) []byte { return sigMAC(sha256.New, secret, signed) },
			sigHex,
			func(signed []byte, toks []string, _ time.Time) *Request {
				return sigHeaderRequest(sigSeed004Body([]byte(sigMatrixBody), signed, strings.Join(toks, ",")), nil)
			}, true, false),
		sigMACFixture("JSONFieldTimestamp", "hmac",
			map[string]any{
				"algorithm": "md5", "signature": "json:meta.sig", "timestamp": "json:meta.ts", "tolerance": "5m",
				"signed": "json:data", "encoding": "hex",
			},
			func(secret, signed []byte, _ time.Time) []byte { return sigMAC(md5.New, secret, signed) },
			sigHex,
			func(signed []byte, toks []string, ts time.Time) *Request {
				meta := map[string]any{"ts": ts.Unix()}
				if len(toks) > 0 {
					meta["sig"] = strings.Join(toks, " ")
				}
				b, _ := json.Marshal(map[string]any{"meta": meta, "data": string(signed)})
				return sigHeaderRequest(b, nil)
			}, true, true),
	}
	for _, fx := range fixtures {
		t.Run(fx.name, func(t *testing.T) {
			t.Parallel()
			sigRunMatrix(t, fx)
		})
	}
}

func TestHMACAlgorithms(t *testing.T) {
	t.Parallel()
	body := []byte(sigMatrixBody)
	for _, c := range []struct {
		alg string
		h   func() hash.Hash
	}{{"md5", md5.New}, {"sha1", sha1.New}, {"sha256", sha256.New}, {"sha384", sha512.New384}, {"sha512", sha512.New}} {
		t.Run(strings.ToUpper(c.alg), func(t *testing.T) {
			t.Parallel()
			v := sigMustBuild(t, "hmac", map[string]any{
				"algorithm": c.alg, "secrets": []any{"k"}, "signature": "header:X-Sig",
			}, sigClock(sigT0))
			good := sigHex(sigMAC(c.h, []byte("k"), body))
			if err := v.Verify(context.Background(), sigHeaderRequest(body, map[string]string{"X-Sig": good})); err != nil {
				t.Fatalf("got %v, want accepted", err)
			}
			other := sigHex(sigMAC(sha256.New, []byte("k"), body))
			if c.alg == "sha256" {
				other = sigHex(sigMAC(sha512.New, []byte("k"), body))
			}
			if err := v.Verify(context.Background(), sigHeaderRequest(body, map[string]string{"X-Sig": other})); err == nil {
				t.Fatalf("a MAC of another algorithm was accepted")
			}
		})
	}
}

// TestHMACSecretEncodings checks that base64, hex and whsec secrets are
// decoded before use.
func TestHMACSecretEncodings(t *testing.T) {
	t.Parallel()
	key := []byte{0x00, 0xff, 0x10, 0x20, 'k'}
	body := []byte(sigMatrixBody)
	good := sigHex(sigMAC(sha256.New, key, body))
	for _, c := range []struct{ enc, secret string }{
		{"base64", base64.StdEncoding.EncodeToString(key)},
		{"base64", base64.RawStdEncoding.EncodeToString(key)},
		{"hex", hex.EncodeToString(key)},
		{"whsec", "whsec_" + base64.StdEncoding.EncodeToString(key)},
		{"whsec", base64.StdEncoding.EncodeToString(key)},
	} {
		v := sigMustBuild(t, "hmac", map[string]any{
			"secrets": []any{c.secret}, "secret_encoding": c.enc, "signature": "header:X-Sig",
		}, sigClock(sigT0))
		if err := v.Verify(context.Background(), sigHeaderRequest(body, map[string]string{"X-Sig": good})); err != nil {
			t.Errorf("secret_encoding %s (%s): got %v, want accepted", c.enc, c.secret, err)
		}
	}
}

// TestHMACJSONField covers seed 004's shape beyond the matrix: a body that
// is not JSON, a signature of the wrong type, escapes in the signed string,
// and the covers option.
func TestHMACJSONField(t *testing.T) {
	t.Parallel()
	secret := []byte("receeve-secret")
	payload := []byte(`{"details":{"messageType":"event.claim.created.v1","claimRef":"c-1"},"messageId":"m-1"}`)
	sig := sigHex(sigMAC(sha256.New, secret, payload))
	opts := func(extra map[string]any) map[string]any {
		o := map[string]any{"secrets": []any{string(secret)}, "signature": "json:signature", "signed": "json:payloadAsString"}
		for k, v := range extra {
			o[k] = v
		}
		return o
	}
	plain := sigMustBuild(t, "hmac", opts(nil), sigClock(sigT0))
	covered := sigMustBuild(t, "hmac", opts(map[string]any{"covers": "json:payload"}), sigClock(sigT0))
	for _, c := range []struct {
		name       string
		body       string
		want       string // "" accepted
		wantCovers string
	}{
		{"Valid", string(sigSeed004Body(payload, payload, sig)), "", ""},
		{"NotJSON", "signature=" + sig + "&payloadAsString=x", "signature missing", "signature missing"},
		{"TruncatedJSON", string(sigSeed004Body(payload, payload, sig))[:40], "signature missing", "signature missing"},
		{"SignatureNumber", `{"signature":123,"payloadAsString":"x"}`, "signature missing", "signature missing"},
		{"SignatureEmpty", `{"signature":"","payloadAsString":"x"}`, "signature missing", "signature missing"},
		{"SignedMissing", `{"signature":"` + sig + `"}`, "signed content missing", "signed content missing"},
		{"SignedNotString", `{"signature":"` + sig + `","payloadAsString":{"a":1}}`, "signed content missing", "signed content missing"},
		{"EscapedSignedString", `{"signature":"` + sigHex(sigMAC(sha256.New, secret, []byte("a\"b\u00e9\n"))) + `","payloadAsString":"a\"b\u00e9\n"}`, "", "signed content does not match the body"},
		{"PayloadReordered", string(sigSeed004Body([]byte(`{"messageId":"m-1", "details":{"claimRef":"c-1","messageType":"event.claim.created.v1"}}`), payload, sig)), "", ""},
		{"PayloadTampered", string(sigSeed004Body([]byte(`{"details":{"messageType":"event.claim.created.v1","claimRef":"c-1"},"messageId":"m-2"}`), payload, sig)), "", "signed content does not match the body"},
		{"PayloadDuplicateKey", string(sigSeed004Body([]byte(`{"details":{"messageType":"event.claim.created.v1","claimRef":"c-1"},"messageId":"m-2","messageId":"m-1"}`), payload, sig)), "", "signed content does not match the body"},
		{"PayloadMissing", `{"signature":"` + sig + `","payloadAsString":` + strconv.Quote(string(payload)) + `}`, "", "signed content does not match the body"},
	} {
		t.Run(c.name, func(t *testing.T) {
			for _, v := range []struct {
				v    Verifier
				want string
			}{{plain, c.want}, {covered, c.wantCovers}} {
				err := v.v.Verify(context.Background(), sigHeaderRequest([]byte(c.body), nil))
				if v.want == "" {
					if err != nil {
						t.Fatalf("got %v, want accepted", err)
					}
					continue
				}
				if err == nil || hookd.ErrorCode(err) != hookd.EUnauthorized || hookd.ErrorMessage(err) != v.want {
					t.Fatalf("got %v, want 401 %q", err, v.want)
				}
			}
		})
	}
}

// TestHMACTemplate checks that templates render headers, ids and literal
// braces, and that a missing signed header is refused.
func TestHMACTemplate(t *testing.T) {
	t.Parallel()
	body := []byte(sigMatrixBody)
	v := sigMustBuild(t, "hmac", map[string]any{
		"secrets": []any{"k"}, "signature": "header:X-Sig", "id": "json:id",
		"signed": "{{{id}}}|{header:X-Account}|{body}",
	}, sigClock(sigT0))
	good := sigHex(sigMAC(sha256.New, []byte("k"), []byte("{evt_1}|acct-9|"+sigMatrixBody)))
	if err := v.Verify(context.Background(), sigHeaderRequest(body, map[string]string{"X-Sig": good, "X-Account": "acct-9"})); err != nil {
		t.Fatalf("got %v, want accepted", err)
	}
	err := v.Verify(context.Background(), sigHeaderRequest(body, map[string]string{"X-Sig": good}))
	if hookd.ErrorMessage(err) != "signed content missing" {
		t.Fatalf("without X-Account: got %v, want signed content missing", err)
	}
	err = v.Verify(context.Background(), sigHeaderRequest([]byte(`{"type":"x"}`), map[string]string{"X-Sig": good, "X-Account": "acct-9"}))
	if hookd.ErrorMessage(err) != "signed content missing" {
		t.Fatalf("without an id: got %v, want signed content missing", err)
	}
}

// TestSignatureTimestampForms checks what a signature timestamp may look like.
func TestSignatureTimestampForms(t *testing.T) {
	t.Parallel()
	v := sigMustBuild(t, "hmac", map[string]any{
		"secrets": []any{"k"}, "signature": "header:X-Sig", "timestamp": "header:X-Ts", "tolerance": "1m",
		"signed": "{timestamp}{body}",
	}, sigClock(sigT0))
	for _, c := range []struct {
		ts   string
		want string
	}{
		{sigTS(sigT0), ""},
		{strconv.FormatInt(sigT0.UnixMilli(), 10), ""},
		{sigT0.Format(time.RFC3339), ""},
		{sigTS(sigT0.Add(-61 * time.Second)), "timestamp outside tolerance"},
		{sigTS(sigT0.Add(59 * time.Second)), ""},
		{"", "timestamp missing"},
		{"soon", "timestamp invalid"},
		{"-5", "timestamp invalid"},
		{"99999999999999999999999", "timestamp invalid"},
	} {
		sig := sigHex(sigMAC(sha256.New, []byte("k"), []byte(c.ts+sigMatrixBody)))
		err := v.Verify(context.Background(), sigHeaderRequest([]byte(sigMatrixBody), map[string]string{"X-Sig": sig, "X-Ts": c.ts}))
		if c.want == "" && err != nil {
			t.Errorf("timestamp %q: got %v, want accepted", c.ts, err)
		}
		if c.want != "" && hookd.ErrorMessage(err) != c.want {
			t.Errorf("timestamp %q: got %v, want %q", c.ts, err, c.want)
		}
	}
}

// TestSignatureOptionsInvalid checks that bad options are refused at start,
// naming the option and never a secret's value.
func TestSignatureOptionsInvalid(t *testing.T) {
	t.Parallel()
	base := func(typ string, kv ...any) (string, map[string]any) {
		o := map[string]any{"signature": "header:X-Sig"}
		switch typ {
		case "hmac", "digest":
			o["secrets"] = []any{"topsecret-value"}
		case "public_key":
			o["keys"] = []any{sigTestKeys().ed25519PEM[0]}
			o["algorithm"] = "ed25519"
		}
		for i := 0; i+1 < len(kv); i += 2 {
			if kv[i+1] == nil {
				delete(o, kv[i].(string))
				continue
			}
			o[kv[i].(string)] = kv[i+1]
		}
		return typ, o
	}
	for _, c := range []struct {
		name string
		typ  string
		opts map[string]any
		want string
	}{
		{"NoSignature", "", nil, "signature: required"},
		{"BadSignature", "", nil, "signature: invalid"},
		{"SecretInSignature", "", nil, "signature: invalid"},
		{"SecretInAlgorithm", "", nil, "algorithm: unknown"},
		{"EmptySecret", "", nil, "secrets[1]: empty"},
		{"NoSecrets", "", nil, "secrets: at least one"},
		{"BadSecretBase64", "", nil, "secrets[0]: not valid base64"},
		{"UnknownAlgorithm", "", nil, "algorithm: unknown"},
		{"UnknownOption", "", nil, "unknown key \"secret\""},
		{"UnknownEncoding", "", nil, "encoding: unknown"},
		{"UnknownScheme", "", nil, "scheme: unknown"},
		{"PrefixOnKV", "", nil, "not options of scheme kv"},
		{"KeyOnList", "", nil, "signature_key: not an option of scheme list"},
		{"TemplateWithoutBody", "", nil, "must include {body}"},
		{"TemplateUnknownPlaceholder", "", nil, "unknown placeholder"},
		{"TemplateUnclosed", "", nil, "unclosed '{'"},
		{"TimestampPlaceholderWithoutTimestamp", "", nil, "{timestamp} needs the timestamp option"},
		{"TimestampHeaderNotSigned", "", nil, "timestamp: checked but not signed"},
		{"ToleranceWithoutTimestamp", "", nil, "tolerance: needs timestamp"},
		{"ToleranceZero", "", nil, "tolerance: must be positive"},
		{"ToleranceNumber", "", nil, "invalid duration"},
		{"IDWithoutPlaceholder", "", nil, "id: set, but signed has no {id}"},
		{"IDPlaceholderWithoutID", "", nil, "{id} needs the id option"},
		{"CoversWithoutJSONSigned", "", nil, "covers: needs signed: json:path"},
		{"KeysOnHMAC", "", nil, "keys: not an option of hmac"},
		{"DigestWithoutAlgorithm", "", nil, "algorithm: required"},
		{"DigestWithoutSecretInTemplate", "", nil, "a digest needs {secret}"},
		{"DigestWithoutSigned", "", nil, "a digest needs {secret}"},
		{"SecretsOnPublicKey", "", nil, "secrets: not an option of public_key"},
		{"PublicKeyNoAlgorithm", "", nil, "algorithm: required"},
		{"PublicKeySecretPlaceholder", "", nil, "{secret} has no meaning for public_key"},
		{"PublicKeyWrongType", "", nil, "does not fit algorithm ecdsa"},
		{"PublicKeyPrivatePEM", "", nil, "a private key"},
		{"PublicKeyGarbage", "", nil, "keys[0]: want PEM public keys"},
		{"PublicKeyHashOnEd25519", "", nil, "hash: not an option of ed25519"},
	} {
		switch c.name {
		case "NoSignature":
			c.typ, c.opts = base("hmac", "signature", nil)
		case "BadSignature":
			c.typ, c.opts = base("hmac", "signature", "body:sig")
		case "SecretInSignature":
			c.typ, c.opts = base("hmac", "signature", "topsecret-value")
		case "SecretInAlgorithm":
			c.typ, c.opts = base("hmac", "algorithm", "topsecret-value")
		case "EmptySecret":
			c.typ, c.opts = base("hmac", "secrets", []any{"a", ""})
		case "NoSecrets":
			c.typ, c.opts = base("hmac", "secrets", []any{})
		case "BadSecretBase64":
			c.typ, c.opts = base("hmac", "secret_encoding", "base64", "secrets", []any{"topsecret-value!!"})
		case "UnknownAlgorithm":
			c.typ, c.opts = base("hmac", "algorithm", "sha3")
		case "UnknownOption":
			c.typ, c.opts = base("hmac", "secret", "x")
		case "UnknownEncoding":
			c.typ, c.opts = base("hmac", "encoding", "base32")
		case "UnknownScheme":
			c.typ, c.opts = base("hmac", "scheme", "csv")
		case "PrefixOnKV":
			c.typ, c.opts = base("hmac", "scheme", "kv", "prefix", "v1=")
		case "KeyOnList":
			c.typ, c.opts = base("hmac", "signature_key", "v1")
		case "TemplateWithoutBody":
			c.typ, c.opts = base("hmac", "signed", "{secret}")
		case "TemplateUnknownPlaceholder":
			c.typ, c.opts = base("hmac", "signed", "{nonce}{body}")
		case "TemplateUnclosed":
			c.typ, c.opts = base("hmac", "signed", "{body")
		case "TimestampPlaceholderWithoutTimestamp":
			c.typ, c.opts = base("hmac", "signed", "{timestamp}.{body}")
		case "TimestampHeaderNotSigned":
			c.typ, c.opts = base("hmac", "timestamp", "header:X-Ts")
		case "ToleranceWithoutTimestamp":
			c.typ, c.opts = base("hmac", "tolerance", "5m")
		case "ToleranceZero":
			c.typ, c.opts = base("hmac", "timestamp", "header:X-Ts", "signed", "{timestamp}{body}", "tolerance", "0s")
		case "ToleranceNumber":
			c.typ, c.opts = base("hmac", "timestamp", "header:X-Ts", "signed", "{timestamp}{body}", "tolerance", 300)
		case "IDWithoutPlaceholder":
			c.typ, c.opts = base("hmac", "id", "header:X-Id")
		case "IDPlaceholderWithoutID":
			c.typ, c.opts = base("hmac", "signed", "{id}{body}")
		case "CoversWithoutJSONSigned":
			c.typ, c.opts = base("hmac", "covers", "json:payload")
		case "KeysOnHMAC":
			c.typ, c.opts = base("hmac", "keys", []any{"x"})
		case "DigestWithoutAlgorithm":
			c.typ, c.opts = base("digest", "signed", "{body}{secret}")
		case "DigestWithoutSecretInTemplate":
			c.typ, c.opts = base("digest", "algorithm", "md5", "signed", "{body}")
		case "DigestWithoutSigned":
			c.typ, c.opts = base("digest", "algorithm", "md5")
		case "SecretsOnPublicKey":
			c.typ, c.opts = base("public_key", "secrets", []any{"x"})
		case "PublicKeyNoAlgorithm":
			c.typ, c.opts = base("public_key", "algorithm", nil)
		case "PublicKeySecretPlaceholder":
			c.typ, c.opts = base("public_key", "signed", "{body}{secret}")
		case "PublicKeyWrongType":
			c.typ, c.opts = base("public_key", "algorithm", "ecdsa")
		case "PublicKeyPrivatePEM":
			c.typ, c.opts = base("public_key", "keys", []any{sigTestKeys().ed25519PrivatePEM})
		case "PublicKeyGarbage":
			c.typ, c.opts = base("public_key", "keys", []any{"not a key"})
		case "PublicKeyHashOnEd25519":
			c.typ, c.opts = base("public_key", "hash", "sha256")
		}
		t.Run(c.name, func(t *testing.T) {
			_, err := sigTryBuild(c.typ, c.opts, sigClock(sigT0))
			if err == nil {
				t.Fatalf("%s %v: got no error, want %q", c.typ, c.opts, c.want)
			}
			if !strings.Contains(err.Error(), c.want) {
				t.Fatalf("%s %v: got %q, want it to contain %q", c.typ, c.opts, err, c.want)
			}
			if strings.Contains(err.Error(), "topsecret") {
				t.Fatalf("error %q reveals a secret", err)
			}
		})
	}
}
