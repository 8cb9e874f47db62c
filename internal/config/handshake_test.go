package config

import (
	"strings"
	"testing"
)

func TestValidateHandshake(t *testing.T) {
	t.Parallel()
	meta := func() *Handshake {
		return &Handshake{When: "query:hub.mode=subscribe", Challenge: "query:hub.challenge",
			Token: &HandshakeToken{From: "query:hub.verify_token", Values: []string{"a-verify-token-of-ours"}}}
	}
	tests := []struct {
		name   string
		mutate func(h *Handshake)
		field  string // "" accepts
	}{
		{"Meta", func(h *Handshake) {}, ""},
		{"PostJSON", func(h *Handshake) {
			*h = Handshake{When: "json:type=url_verification", Challenge: "json:challenge", Answer: "json:challenge", Signed: true, Status: 201}
		}, ""},
		{"PresenceOfHeader", func(h *Handshake) {
			*h = Handshake{Method: "post", When: "header:X-Hook-Secret", Challenge: "header:X-Hook-Secret"}
		}, ""},
		{"ChallengeMissing", func(h *Handshake) { h.Challenge = "" }, "handshake.challenge"},
		{"ChallengeBadSelector", func(h *Handshake) { h.Challenge = "body:x" }, "handshake.challenge"},
		{"ChallengeJSONOnGET", func(h *Handshake) { h.Method, h.Challenge = "GET", "json:challenge" }, "handshake.challenge"},
		{"Method", func(h *Handshake) { h.Method = "PUT" }, "handshake.method"},
		{"WhenBadSelector", func(h *Handshake) { h.When = "query:=x" }, "handshake.when"},
		{"WhenEmptyValue", func(h *Handshake) { h.When = "query:hub.mode=" }, "handshake.when"},
		{"WhenJSONOnGET", func(h *Handshake) { h.When = "json:type=x" }, "handshake.when"},
		{"TokenFromMissing", func(h *Handshake) { h.Token.From = "" }, "handshake.token.from"},
		{"TokenNoValues", func(h *Handshake) { h.Token.Values = nil }, "handshake.token.values"},
		{"TokenEmptyValue", func(h *Handshake) { h.Token.Values = append(h.Token.Values, "") }, "handshake.token.values[1]"},
		{"TokenTooMany", func(h *Handshake) {
			for len(h.Token.Values) <= MaxHandshakeTokens {
				h.Token.Values = append(h.Token.Values, "another-verify-token")
			}
		}, "handshake.token.values"},
		{"SignedWithoutVerify", func(h *Handshake) { h.Signed = true }, "handshake.signed"},
		{"Answer", func(h *Handshake) { h.Answer = "xml" }, "handshake.answer"},
		{"AnswerJSONNoField", func(h *Handshake) { h.Answer = "json:" }, "handshake.answer"},
		{"Status204", func(h *Handshake) { h.Status = 204 }, "handshake.status"},
		{"Status302", func(h *Handshake) { h.Status = 302 }, "handshake.status"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c := validConfig(t)
			// sources[1] has no verify method.
			h := meta()
			tt.mutate(h)
			c.Sources[1].Handshake = h
			if tt.name == "PostJSON" {
				// A signed handshake on sources[0], which has a verify method.
				c.Sources[0].Handshake, c.Sources[1].Handshake = h, nil
			}
			err := c.Validate()
			if tt.field == "" {
				if err != nil {
					t.Fatalf("Validate: got %v, want nil", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("Validate: got nil, want an error naming %s", tt.field)
			}
			if !strings.Contains(err.Error(), "("+c.Sources[1].Name+")."+tt.field+":") {
				t.Errorf("Validate: got %q, want it to name sources[1] (%s).%s", err, c.Sources[1].Name, tt.field)
			}
		})
	}
}

func TestParseHandshakeUnknownKey(t *testing.T) {
	t.Parallel()
	_, err := Parse([]byte("sources:\n  - name: a\n    handshake: {challenge: query:c, answr: text}\n"))
	if err == nil || !strings.Contains(err.Error(), "answr") {
		t.Fatalf("Parse: got %v, want an error naming the unknown key answr", err)
	}
}
