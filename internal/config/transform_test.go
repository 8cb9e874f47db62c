package config

import (
	"strings"
	"testing"
	"time"
)

// filter_expr and enrich are checked when the file is loaded, and the
// error names the subscription's key and, for an expression, the
// position of the fault.
func TestValidateFilterExprAndEnrich(t *testing.T) {
	t.Parallel()
	dests := "destinations: [{name: d, type: http}]\nsubscriptions:\n  - {destination: d}\n  - {destination: d}\n"
	tests := []struct {
		name, sub, want string
	}{
		{"UndeclaredReference", `{destination: d, filter_expr: 'body.amount > 500 && headrs["x-env"] == "prod"'}`,
			`subscriptions[2].filter_expr: ERROR: <input>:1:22: undeclared reference to 'headrs'`},
		{"Syntax", `{destination: d, filter_expr: "body.amount >"}`, `subscriptions[2].filter_expr: ERROR: <input>:1:14:`},
		{"NotBool", `{destination: d, filter_expr: "body.amount"}`, `subscriptions[2].filter_expr: ERROR: <input>:1:1: the expression gives dyn, not bool`},
		{"EnrichHostPlaceholder", `{destination: d, enrich: {url: "https://{{body.h}}/x", into: c}}`, `subscriptions[2].enrich: url: placeholders are allowed only in the path and the query`},
		{"EnrichScheme", `{destination: d, enrich: {url: "file:///etc/{{id}}", into: c}}`, `subscriptions[2].enrich: url: only http and https`},
		{"EnrichInto", `{destination: d, enrich: {url: "https://api.example/{{id}}", into: "a.b"}}`, `subscriptions[2].enrich: into: "a.b" is not a key name`},
		{"EnrichUnknownKey", `{destination: d, enrich: {url: "https://api.example/{{id}}", into: c, ttl: 5m}}`, `ttl`},
		{"EnrichBadCache", `{destination: d, enrich: {url: "https://api.example/{{id}}", into: c, cache: soon}}`, `invalid duration`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c, err := Parse([]byte(dests + "  - " + tt.sub + "\n"))
			if err == nil {
				err = c.Validate()
			}
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("got %v, want an error containing %q", err, tt.want)
			}
		})
	}
}

func TestParseFilterExprAndEnrich(t *testing.T) {
	t.Parallel()
	c, err := Parse([]byte(`
destinations: [{name: d, type: http}]
subscriptions:
  - destination: d
    filter_expr: 'body.amount > 500 && headers["x-env"] == "prod"'
    enrich:
      url: "https://api.example/claims/{{body.claimRef}}"
      auth: {type: header, header: X-Api-Key, value: k1}
      into: claim
      cache: 5m
`))
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	s := c.Subscriptions[0]
	if s.FilterExpr != `body.amount > 500 && headers["x-env"] == "prod"` || s.Enrich == nil {
		t.Fatalf("got %+v", s)
	}
	spec := s.Enrich.Spec()
	if spec.URL != "https://api.example/claims/{{body.claimRef}}" || spec.Into != "claim" || spec.Cache != 5*time.Minute || spec.Auth["value"] != "k1" {
		t.Fatalf("enrich = %+v", spec)
	}
	// The API's parser and Validate refuse the same things.
	sub, err := ParseSubscription([]byte(`{"destination": "d", "filter_expr": "body.x +"}`))
	if err != nil {
		t.Fatal(err)
	}
	if err := sub.Validate(); err == nil || !strings.Contains(err.Error(), "filter_expr: ERROR: <input>:1:9:") {
		t.Fatalf("Validate = %v, want filter_expr: ERROR: <input>:1:9: …", err)
	}
}
