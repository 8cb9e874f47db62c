package verify

import (
	"strings"
	"testing"

	"hookd/internal/config"
	"hookd/internal/egress"
)

// oauthTestEgress is a guard that lets tests reach servers on 127.0.0.1.
func oauthTestEgress(t testing.TB) *egress.Guard {
	t.Helper()
	g, err := egress.NewGuard([]string{"127.0.0.0/8"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	return g
}

// Verification URLs are checked by the egress guard when the method is
// built, as destination URLs are: without an Env guard, by one with no
// exceptions.
func TestOAuthURLsCheckedByEgressGuard(t *testing.T) {
	t.Parallel()
	intro := func(u string) config.Verify {
		m, err := config.NewVerify("oauth_introspection", map[string]any{"url": u, "client_id": "hookd", "client_secret": "secret-value-0123456789"})
		if err != nil {
			t.Fatal(err)
		}
		return m
	}
	jwks := func(u string) config.Verify {
		m, err := config.NewVerify("oauth_jwt", map[string]any{"algorithms": []string{"RS256"}, "jwks_url": u})
		if err != nil {
			t.Fatal(err)
		}
		return m
	}
	tests := []struct {
		name string
		m    config.Verify
		env  *Env
		want string // "" for accepted
	}{
		{"IntroLoopback", intro("http://127.0.0.1:8080/introspect"), &Env{}, "url: address 127.0.0.1 is loopback"},
		{"IntroLocalhost", intro("https://localhost/introspect"), &Env{}, "url: host localhost is loopback"},
		{"IntroMetadata", intro("https://169.254.169.254/introspect"), &Env{}, "url: address 169.254.169.254 is link-local (cloud metadata)"},
		{"IntroDecimal", intro("https://2130706433/introspect"), &Env{}, "url: host 2130706433 (127.0.0.1) is loopback"},
		{"IntroMapped", intro("https://[::ffff:10.0.0.1]/introspect"), &Env{}, "url: address ::ffff:10.0.0.1 embeds 10.0.0.1, which is private"},
		{"IntroCredentials", intro("https://user:pw@as.example/introspect"), &Env{}, "url: URL must not contain credentials"},
		{"IntroPublic", intro("https://as.example/introspect"), &Env{}, ""},
		{"IntroAllowed", intro("http://127.0.0.1:8080/introspect"), &Env{Egress: oauthTestEgress(t)}, ""},
		{"JWKSLoopback", jwks("http://127.0.0.1:8080/jwks"), &Env{}, "jwks_url: address 127.0.0.1 is loopback"},
		{"JWKSPrivate", jwks("https://10.1.2.3/jwks"), &Env{}, "jwks_url: address 10.1.2.3 is private"},
		{"JWKSPublic", jwks("https://issuer.example/jwks"), &Env{}, ""},
		{"JWKSAllowed", jwks("http://127.0.0.1:8080/jwks"), &Env{Egress: oauthTestEgress(t)}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := Build(tt.env, []config.Verify{tt.m})
			switch {
			case tt.want == "" && err != nil:
				t.Fatalf("got %v, want it accepted", err)
			case tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)):
				t.Fatalf("got %v, want an error containing %q", err, tt.want)
			}
		})
	}
}
