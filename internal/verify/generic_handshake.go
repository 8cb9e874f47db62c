package verify

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"

	"hookd"
	"hookd/internal/config"
)

// MaxChallenge is the longest challenge a generic handshake echoes, in
// bytes; a longer one is refused with 400.
const MaxChallenge = 1024

// GenericHandshakeKind names the generic handshake in logs, metrics and
// the source's last handshake.
const GenericHandshakeKind = "generic"

// genericHandshake answers a source's own handshake (the source's
// handshake: key). It is appended to the source's chain: it verifies no
// event, and only recognises and answers its handshake.
type genericHandshake struct {
	method    string
	when      hsLocator
	whenValue string
	whenHas   bool
	challenge hsLocator
	token     hsLocator
	tokens    [][]byte
	signed    bool
	field     string // answer json:field; "" answers text
	status    int
}

// NewGenericHandshake builds the handshaker of a source's handshake: key,
// validated by package config.
func NewGenericHandshake(env *Env, h *config.Handshake) (Verifier, error) {
	g := &genericHandshake{method: h.HTTPMethod(), signed: h.Signed, field: h.AnswerField(), status: h.Status}
	var err error
	if g.challenge, err = hsParseLocator("challenge", h.Challenge); err != nil {
		return nil, err
	}
	if h.When != "" {
		sel, value, has := h.SplitWhen()
		if g.when, err = hsParseLocator("when", sel); err != nil {
			return nil, err
		}
		g.whenValue, g.whenHas = value, has
	} else {
		// Recognised by its challenge.
		g.when = g.challenge
	}
	if t := h.Token; t != nil {
		if g.token, err = hsParseLocator("token.from", t.From); err != nil {
			return nil, err
		}
		if len(t.Values) == 0 {
			return nil, fmt.Errorf("handshake.token.values: required")
		}
		for i, v := range t.Values {
			g.tokens = append(g.tokens, []byte(v))
			if len(v) < MinSecretLen && env != nil && env.Log != nil {
				env.Log.Warn("a handshake token is shorter than 16 bytes and could be guessed; if you chose it, choose a long random one",
					"source", env.Source, "field", fmt.Sprintf("handshake.token.values[%d]", i), "length", len(v))
			}
		}
	}
	return g, nil
}

// hsLocator finds a value in a request: a header, a query parameter or a
// field of the JSON body.
type hsLocator struct {
	kind string // "header", "query" or "json"
	name string // header (canonical) or query parameter name
	json sigLocator
}

func hsParseLocator(opt, s string) (hsLocator, error) {
	if err := config.ValidSelector(s); err != nil {
		return hsLocator{}, fmt.Errorf("handshake.%s: %w", opt, err)
	}
	kind, arg, _ := strings.Cut(s, ":")
	switch kind {
	case "header":
		return hsLocator{kind: kind, name: http.CanonicalHeaderKey(arg)}, nil
	case "query":
		return hsLocator{kind: kind, name: arg}, nil
	}
	l, err := sigParseLocator("handshake."+opt, s)
	return hsLocator{kind: "json", json: l}, err
}

// hsRequest reads located values, parsing the query and checking the JSON
// body at most once each.
type hsRequest struct {
	sig   sigRequest
	query map[string][]string
}

// lookup returns the located value; ok is false when it is absent (or the
// body is not JSON, or the field is not a string or number).
func (hr *hsRequest) lookup(l hsLocator) (string, bool) {
	switch l.kind {
	case "header":
		vals := hr.sig.r.Header.Values(l.name)
		if len(vals) == 0 {
			return "", false
		}
		return vals[0], true
	case "query":
		if hr.query == nil {
			if hr.sig.r.URL == nil {
				return "", false
			}
			hr.query = hr.sig.r.URL.Query()
		}
		vals := hr.query[l.name]
		if len(vals) == 0 {
			return "", false
		}
		return vals[0], true
	case "json":
		return hr.sig.lookup(l.json, true)
	}
	return "", false
}

// Verify passes every request: the generic handshake verifies no event.
func (g *genericHandshake) Verify(context.Context, *Request) error { return nil }

// ReadsJSONBody: a json: selector reads the body, whose nesting ingest
// then bounds before anything parses it.
func (g *genericHandshake) ReadsJSONBody() bool {
	return g.when.kind == "json" || g.challenge.kind == "json" || g.token.kind == "json"
}

// CredentialHeaders: a token sent in a header is a credential.
func (g *genericHandshake) CredentialHeaders() []string {
	if g.token.kind == "header" {
		return []string{g.token.name}
	}
	return nil
}

// DetectHandshake recognises the handshake by its method and its when.
func (g *genericHandshake) DetectHandshake(r *Request) (HandshakeKind, bool) {
	if r.Method != g.method {
		return HandshakeKind{}, false
	}
	hr := &hsRequest{sig: sigRequest{r: r}}
	v, ok := hr.lookup(g.when)
	if !ok || v == "" || (g.whenHas && v != g.whenValue) {
		return HandshakeKind{}, false
	}
	return HandshakeKind{Name: GenericHandshakeKind, Signed: g.signed}, true
}

// AnswerHandshake checks the token (403), reads the challenge (400 when
// it is missing or longer than MaxChallenge) and returns it as text/plain
// or in a JSON object.
func (g *genericHandshake) AnswerHandshake(_ context.Context, r *Request) (*HandshakeAnswer, error) {
	hr := &hsRequest{sig: sigRequest{r: r}}
	if g.tokens != nil {
		// An absent token is compared too: its absence takes no
		// shorter path than a wrong one.
		tok, _ := hr.lookup(g.token)
		if !MatchAny([]byte(tok), g.tokens) || tok == "" {
			return nil, Forbidden("the handshake's verify token does not match")
		}
	}
	c, ok := hr.lookup(g.challenge)
	if !ok || c == "" {
		return nil, hookd.Errorf(hookd.EInvalid, "the handshake's challenge is missing")
	}
	if len(c) > MaxChallenge {
		return nil, hookd.Errorf(hookd.EInvalid, "the handshake's challenge is longer than %d bytes", MaxChallenge)
	}
	ans := &HandshakeAnswer{Status: g.status, Header: http.Header{"X-Content-Type-Options": {"nosniff"}}}
	if g.field == "" {
		ans.ContentType, ans.Body = "text/plain; charset=utf-8", []byte(c)
		return ans, nil
	}
	b, err := json.Marshal(map[string]string{g.field: c})
	if err != nil {
		return nil, fmt.Errorf("encode the handshake's answer: %w", err)
	}
	ans.ContentType, ans.Body = "application/json", b
	return ans, nil
}

// HandshakeMethods lists GET when the handshake is a GET.
func (g *genericHandshake) HandshakeMethods() []string {
	if g.method == http.MethodGet {
		return []string{http.MethodGet}
	}
	return nil
}
