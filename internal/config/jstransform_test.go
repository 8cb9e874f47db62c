package config

import (
	"strings"
	"testing"
)

// A transform that does not compile, or declares no function transform,
// and a transform_timeout out of range are refused naming the key.
func TestTransformKeys(t *testing.T) {
	t.Parallel()
	for name, tc := range map[string]struct{ yaml, want string }{
		"SubscriptionSyntax": {`
destinations: [{name: d, type: http, url: "https://example.com"}]
subscriptions:
  - destination: d
    transform: "function transform(e) { return e + }"`, "subscriptions[0].transform: SyntaxError: Line 1:"},
		"SubscriptionNoFunction": {`
destinations: [{name: d, type: http, url: "https://example.com"}]
subscriptions: [{destination: d, transform: "var x = 1"}]`, "subscriptions[0].transform: no function transform(event) is declared"},
		"SourceThrows": {`
sources: [{name: s, transform: "throw new Error('top')"}]`, "sources[0] (s).transform: Error: top at line 1:"},
		"Timeout": {`
transform_timeout: 10s`, "transform_timeout: must be between 1ms and 5s"},
		"Valid": {`
transform_timeout: 100ms
sources: [{name: s, transform: "function transform(e) { return e }"}]
destinations: [{name: d, type: http, url: "https://example.com"}]
subscriptions: [{destination: d, transform: "const transform = e => null"}]`, ""},
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			c, err := Parse([]byte(tc.yaml))
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			c.Storage.Path = t.TempDir()
			err = c.Validate()
			switch {
			case tc.want == "" && err != nil:
				t.Fatalf("got %v, want none", err)
			case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
				t.Fatalf("got %v, want %q", err, tc.want)
			}
		})
	}
	if s := (Subscription{Transform: "function transform(e) {"}); s.Validate() == nil || !strings.HasPrefix(s.Validate().Error(), "transform: SyntaxError") {
		t.Errorf("Subscription.Validate: %v", s.Validate())
	}
}
