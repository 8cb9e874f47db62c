package config

import (
	"fmt"
	"strings"
	"unicode/utf8"
)

// Handshake is a source's own verification handshake, for a provider that
// has no preset in hookd: how hookd recognises the request, where it reads
// the challenge, what it checks, and how it answers. hookd answers it and
// never stores it as an event. See docs/PROVIDERS.md (Handshakes).
type Handshake struct {
	// Method is the handshake's method, GET or POST. Default POST when
	// the challenge is read from the JSON body, GET otherwise.
	Method string `yaml:"method"`
	// When recognises the handshake among the source's requests: a
	// selector ("query:hub.mode", "header:X-Hook-Secret", "json:type"),
	// optionally followed by "=value" ("json:type=url_verification").
	// Without a value, the selected field must be present and not empty.
	// Default: the challenge is present.
	When string `yaml:"when"`
	// Challenge selects the value echoed back: "query:name",
	// "header:Name" or "json:path.to.field". Required.
	Challenge string `yaml:"challenge"`
	// Token, when set, is checked before hookd answers: a request
	// without one of its values is refused with 403.
	Token *HandshakeToken `yaml:"token"`
	// Signed: the handshake carries the provider's signature, so the
	// source's whole verify chain must pass before it is answered.
	// Unsigned handshakes pass only the chain's ip_allow.
	Signed bool `yaml:"signed"`
	// Answer is how the challenge is returned: "text" (the challenge
	// alone, text/plain) or "json:field" ({"field": challenge}).
	// Default "text".
	Answer string `yaml:"answer"`
	// Status is the answer's status, 200 to 299 (not 204 or 205, which
	// carry no body). Default 200.
	Status int `yaml:"status"`
}

// HandshakeToken is the verify token a provider sends with its handshake,
// which the operator chose when registering the endpoint.
type HandshakeToken struct {
	// From selects the presented token: "query:name", "header:Name" or
	// "json:path.to.field".
	From string `yaml:"from"`
	// Values are the accepted tokens (several during a rotation),
	// compared in constant time.
	Values []string `yaml:"values"`
}

// Limits of a handshake's configuration.
const (
	// MaxHandshakeTokens caps handshake.token.values.
	MaxHandshakeTokens = 16
	// MaxHandshakeTokenLen caps each of handshake.token.values, in bytes.
	MaxHandshakeTokenLen = 1024
	// maxHandshakeField caps the field name of answer: json:field and
	// the value of when.
	maxHandshakeField = 256
)

// HTTPMethod is the handshake's method with its default applied.
func (h *Handshake) HTTPMethod() string {
	if h.Method != "" {
		return strings.ToUpper(h.Method)
	}
	if strings.HasPrefix(h.Challenge, "json:") {
		return "POST"
	}
	return "GET"
}

// SplitWhen returns the selector of when and the value it must have; has
// is false when any non-empty value will do.
func (h *Handshake) SplitWhen() (sel, value string, has bool) {
	return strings.Cut(h.When, "=")
}

// AnswerField returns the field of answer: json:field; "" for text.
func (h *Handshake) AnswerField() string {
	f, _ := strings.CutPrefix(h.Answer, "json:")
	if f == h.Answer {
		return ""
	}
	return f
}

// validate checks a source's handshake; field prefixes the keys named
// ("sources[0] (x).handshake").
func (h *Handshake) validate(field string, hasVerify bool, bad func(field, format string, args ...any)) {
	method := h.HTTPMethod()
	if method != "GET" && method != "POST" {
		bad(field+".method", "unknown method %q (want GET or POST)", h.Method)
	}
	// A GET has no body worth reading.
	noJSON := func(key, sel string) {
		if method == "GET" && strings.HasPrefix(sel, "json:") {
			bad(field+"."+key, "reads the JSON body, but a GET handshake has no body (use query: or header:, or method: POST)")
		}
	}
	if h.Challenge == "" {
		bad(field+".challenge", "required (query:name, header:Name or json:path.to.field)")
	} else if err := ValidSelector(h.Challenge); err != nil {
		bad(field+".challenge", "%v", err)
	} else {
		noJSON("challenge", h.Challenge)
	}
	if h.When != "" {
		sel, value, has := h.SplitWhen()
		if err := ValidSelector(sel); err != nil {
			bad(field+".when", "%v (want a selector, optionally followed by =value)", err)
		} else {
			noJSON("when", sel)
		}
		if has && (value == "" || len(value) > maxHandshakeField || !utf8.ValidString(value)) {
			bad(field+".when", "the value after = must be 1 to %d bytes of UTF-8", maxHandshakeField)
		}
	}
	if t := h.Token; t != nil {
		if t.From == "" {
			bad(field+".token.from", "required (query:name, header:Name or json:path.to.field)")
		} else if err := ValidSelector(t.From); err != nil {
			bad(field+".token.from", "%v", err)
		} else {
			noJSON("token.from", t.From)
		}
		if len(t.Values) == 0 || len(t.Values) > MaxHandshakeTokens {
			bad(field+".token.values", "needs 1 to %d tokens, got %d", MaxHandshakeTokens, len(t.Values))
		}
		for i, v := range t.Values {
			if v == "" || len(v) > MaxHandshakeTokenLen {
				bad(fmt.Sprintf("%s.token.values[%d]", field, i), "must be 1 to %d bytes", MaxHandshakeTokenLen)
			}
		}
	}
	if h.Signed && !hasVerify {
		bad(field+".signed", "true, but the source has no verify method to check the signature")
	}
	switch f := h.AnswerField(); {
	case h.Answer == "" || h.Answer == "text":
	case f != "" && len(f) <= maxHandshakeField && utf8.ValidString(f):
	default:
		bad(field+".answer", "unknown answer %q (want text or json:field)", h.Answer)
	}
	if st := h.Status; st != 0 && (st < 200 || st > 299 || st == 204 || st == 205) {
		bad(field+".status", "must be a 2xx status that carries a body (not 204 or 205), got %d", st)
	}
}
