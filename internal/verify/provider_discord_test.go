package verify

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/hex"
	"net/http"
	"strconv"
	"strings"
	"testing"
)

var discordTestKey = ed25519.NewKeyFromSeed(bytes.Repeat([]byte{0x5d}, ed25519.SeedSize))

func discordReq(key ed25519.PrivateKey, body string) *Request {
	ts := strconv.FormatInt(sigT0.Unix(), 10)
	return shakeReq(http.MethodPost, "", body,
		"X-Signature-Timestamp", ts, "X-Signature-Ed25519", hex.EncodeToString(ed25519.Sign(key, []byte(ts+body))))
}

func TestDiscordOptions(t *testing.T) {
	t.Parallel()
	pub := hex.EncodeToString(discordTestKey.Public().(ed25519.PublicKey))
	for _, c := range []struct {
		name string
		opts map[string]any
		want string
	}{
		{"Valid", map[string]any{"public_keys": []any{pub}}, ""},
		{"Upper", map[string]any{"public_keys": []any{strings.ToUpper(pub)}}, ""},
		{"None", map[string]any{}, "public_keys: at least one"},
		{"Short", map[string]any{"public_keys": []any{pub[:62]}}, "public_keys[0]"},
		{"NotHex", map[string]any{"public_keys": []any{"z" + pub[1:]}}, "public_keys[0]"},
		{"Secrets", map[string]any{"public_keys": []any{pub}, "secrets": []any{"s"}}, "secrets"},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, err := sigTryBuild("discord", c.opts, sigClock(sigT0))
			if c.want == "" && err != nil || c.want != "" && (err == nil || !strings.Contains(err.Error(), c.want)) {
				t.Errorf("got %v, want an error containing %q", err, c.want)
			}
		})
	}
}

func TestDiscordHandshake(t *testing.T) {
	t.Parallel()
	pub := hex.EncodeToString(discordTestKey.Public().(ed25519.PublicKey))
	v := sigMustBuild(t, "discord", map[string]any{"public_keys": []any{"ab" + pub[2:], pub}}, sigClock(sigT0))
	h := v.(Handshaker)
	r := discordReq(discordTestKey, `{"id":"1","type":1,"version":1}`)
	if k, ok := h.DetectHandshake(r); !ok || k.Name != "discord.ping" || !k.Signed {
		t.Fatalf("detect: got %+v %v", k, ok)
	}
	if err := v.Verify(context.Background(), r); err != nil {
		t.Errorf("verify with the second key: %v", err)
	}
	a, err := h.AnswerHandshake(context.Background(), r)
	if err != nil || string(a.Body) != `{"type":1}` || a.ContentType != "application/json" {
		t.Errorf("answer: got %+v, %v", a, err)
	}
	for name, body := range map[string]string{
		"Command":    `{"id":"1","type":2,"data":{"type":1}}`,
		"TypeString": `{"id":"1","type":"1"}`,
		"TypeFloat":  `{"id":"1","type":1.0}`,
		"NotJSON":    `type=1`,
		"Array":      `[{"type":1}]`,
	} {
		if _, ok := h.DetectHandshake(shakeReq(http.MethodPost, "", body)); ok {
			t.Errorf("%s: detected, want not a handshake", name)
		}
	}
	other := ed25519.NewKeyFromSeed(bytes.Repeat([]byte{0x5e}, ed25519.SeedSize))
	if err := v.Verify(context.Background(), discordReq(other, `{"type":1}`)); shakeStatus(err) != "unauthorized" {
		t.Errorf("other key: got %v, want unauthorized", err)
	}
}

// FuzzHandshakeDetect runs the five presets' handshake detection and
// answers on hostile requests: never a panic, and an answer is either an
// error or a bounded body.
func FuzzHandshakeDetect(f *testing.F) {
	for _, s := range []string{
		`{"type":"url_verification","challenge":"c"}`,
		`{"event":"endpoint.url_validation","payload":{"plainToken":"p"}}`,
		`{"challenge":"pogchamp"}`,
		`{"type":1}`,
		`{"type":"url_verification","challenge":"\ud800"}`,
		`{"type":` + strings.Repeat("[", 300),
		"",
	} {
		f.Add(s, "hub.mode=subscribe&hub.verify_token=t&hub.challenge=1")
	}
	pub := hex.EncodeToString(discordTestKey.Public().(ed25519.PublicKey))
	var hs []Handshaker
	for typ, opts := range map[string]map[string]any{
		"slack":   {"secrets": []any{"s-0123456789abcdef"}},
		"meta":    {"secrets": []any{"s-0123456789abcdef"}, "verify_token": "t"},
		"zoom":    {"secrets": []any{"s-0123456789abcdef", "t-0123456789abcdef"}},
		"twitch":  {"secrets": []any{"s-0123456789abcdef"}},
		"discord": {"public_keys": []any{pub}},
	} {
		v, err := sigTryBuild(typ, opts, sigClock(sigT0))
		if err != nil {
			f.Fatal(err)
		}
		hs = append(hs, v.(Handshaker))
	}
	f.Fuzz(func(t *testing.T, body, query string) {
		for _, m := range []string{http.MethodPost, http.MethodGet} {
			r := shakeReq(m, query, body, "Twitch-Eventsub-Message-Type", "webhook_callback_verification", "x-zm-signature", "v0=00")
			for _, h := range hs {
				if _, ok := h.DetectHandshake(r); !ok {
					continue
				}
				a, err := h.AnswerHandshake(context.Background(), r)
				if err == nil && len(a.Body) > 2*handshakeMaxChallenge+200 {
					t.Fatalf("answer of %d bytes", len(a.Body))
				}
			}
		}
	})
}
