package verify

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"unicode/utf8"

	"hookd/internal/config"
	"hookd/internal/jsonlimit"
)

// The msgraph preset (Microsoft Graph, "Receive change notifications
// through webhooks"): Graph signs nothing; each notification of a POST's
// value[] carries the clientState given when the subscription was made.
// hookd accepts a POST only when every notification carries one of the
// configured client states. A subscription (or its lifecycle URL) is
// validated with POST ?validationToken=…, answered by the token as
// text/plain.
//
// Selectors: a POST batches notifications and has no id or time of its
// own (subscriptionExpirationDateTime is not when the change happened),
// so the preset sets only the type, the first notification's changeType
// (created, updated, deleted; lifecycle notifications have none).

func init() {
	RegisterPreset("msgraph", newMSGraph, config.EventRules{Type: "json:value.0.changeType"})
}

// msgraphMaxClientState is the longest clientState Graph accepts.
const msgraphMaxClientState = 255

// msgraphOptions configures the msgraph preset.
type msgraphOptions struct {
	// ClientStates are the clientState values of the subscriptions that
	// notify this source (several during a rotation); at least 16
	// characters, at most 255.
	ClientStates stringList `yaml:"client_states"`
}

// msgraphVerifier checks the notifications' clientState and answers the
// validation request.
type msgraphVerifier struct {
	states [][]byte
}

func newMSGraph(_ *Env, m config.Verify) (Verifier, error) {
	var o msgraphOptions
	if err := m.Decode(&o); err != nil {
		return nil, err
	}
	states, err := secretBytes("client_states", o.ClientStates, false, MinSecretLen)
	if err != nil {
		return nil, err
	}
	for i, s := range states {
		if utf8.RuneCount(s) > msgraphMaxClientState {
			return nil, fmt.Errorf("client_states[%d]: longer than the %d characters Graph accepts", i, msgraphMaxClientState)
		}
	}
	return &msgraphVerifier{states: states}, nil
}

// ReadsJSONBody: the client states are fields of the body.
func (v *msgraphVerifier) ReadsJSONBody() bool { return true }

// Verify accepts a body whose value[] holds at least one notification and
// only notifications carrying one of the client states.
func (v *msgraphVerifier) Verify(_ context.Context, r *Request) error {
	fields, err := jsonTopFields(r.Body, r.MaxJSONDepth)
	if err != nil {
		return Unauthorized("body is not a Graph notification: %v", err)
	}
	var items []struct {
		ClientState *string `json:"clientState"`
	}
	if raw, ok := fields["value"]; !ok || json.Unmarshal(raw, &items) != nil || len(items) == 0 {
		return Unauthorized("body is not a Graph notification: want a non-empty value array of objects")
	}
	for _, it := range items {
		if it.ClientState == nil || *it.ClientState == "" {
			return Unauthorized("a notification has no clientState")
		}
		if !MatchAny([]byte(*it.ClientState), v.states) {
			return Unauthorized("a notification has an invalid clientState")
		}
	}
	return nil
}

// DetectHandshake recognises Graph's validation request: a POST with a
// validationToken query parameter. It carries no signature.
func (v *msgraphVerifier) DetectHandshake(r *Request) (HandshakeKind, bool) {
	if r.Method != http.MethodPost || r.URL == nil || !r.URL.Query().Has("validationToken") {
		return HandshakeKind{}, false
	}
	return HandshakeKind{Name: "msgraph.validation"}, true
}

// AnswerHandshake answers the token, URL-decoded, as text/plain.
func (v *msgraphVerifier) AnswerHandshake(_ context.Context, r *Request) (*HandshakeAnswer, error) {
	tok, err := echoValue(r.URL.Query().Get("validationToken"), "validationToken")
	if err != nil {
		return nil, err
	}
	return plainEcho(tok), nil
}

// HandshakeMethods: Graph's validation is a POST.
func (v *msgraphVerifier) HandshakeMethods() []string { return nil }

// jsonTopFields returns the fields of a JSON object body, each value as
// written. A repeated field is refused: the verifier and the selectors
// (which read a field's first occurrence) must not see different values.
func jsonTopFields(body []byte, maxDepth int) (map[string]json.RawMessage, error) {
	if err := jsonlimit.Check(body, maxDepth); err != nil {
		return nil, err
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		return nil, errors.New("not a JSON object")
	}
	out := map[string]json.RawMessage{}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil, errors.New("not valid JSON")
		}
		key, _ := tok.(string)
		if _, dup := out[key]; dup {
			return nil, fmt.Errorf("field %q repeated", clipName(key))
		}
		var raw json.RawMessage
		if err := dec.Decode(&raw); err != nil {
			return nil, errors.New("not valid JSON")
		}
		out[key] = raw
	}
	if tok, err := dec.Token(); err != nil || tok != json.Delim('}') {
		return nil, errors.New("not valid JSON")
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, errors.New("data after the JSON object")
	}
	return out, nil
}

// clipName shortens a field name quoted in an error.
func clipName(s string) string {
	if len(s) > 64 {
		return s[:64] + "…"
	}
	return s
}
