package verify

// Outbound calls of verification methods (JWKS, introspection) go through
// hookd's egress guard, like deliveries: their URLs are checked when a
// method is built, and every connection is dialed by the guard.

import (
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"hookd/internal/egress"
)

// oauthCheckURL accepts an absolute https URL, or http to a loopback host
// (or anywhere when allowHTTP): keys or introspection answers fetched in
// clear text could be forged by anyone on the path. Then the egress guard
// checks it as it checks a destination's URL (private and loopback
// addresses only in egress.allow_private; plain http only for hosts it
// allows).
func oauthCheckURL(env *Env, raw string, allowHTTP bool) error {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" {
		return fmt.Errorf("invalid URL %q (want https://host/path)", raw)
	}
	switch u.Scheme {
	case "https":
	case "http":
		if !allowHTTP && !oauthIsLoopback(u.Hostname()) {
			return errors.New("plain http beyond loopback lets anyone on the path forge what is fetched; use https (or set allow_http: true)")
		}
	default:
		return fmt.Errorf("unsupported scheme %q (want https)", u.Scheme)
	}
	return oauthEgress(env).CheckURL(raw)
}

// oauthDefaultEgress is the guard of an Env without one: no exceptions.
var oauthDefaultEgress = sync.OnceValue(func() *egress.Guard {
	g, _ := egress.NewGuard(nil, nil)
	return g
})

// oauthEgress returns the Env's guard, or one with no exceptions.
func oauthEgress(env *Env) *egress.Guard {
	if env.Egress != nil {
		return env.Egress
	}
	return oauthDefaultEgress()
}

func oauthIsLoopback(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// oauthHTTPClient returns the client for outbound calls: on the Env's
// egress guard's shared Transport (every connection dialed by the guard,
// through egress.proxy when one is set, never through the environment's
// proxy); each call bounded by timeout. Redirects are not followed.
func oauthHTTPClient(env *Env, timeout time.Duration) *http.Client {
	return &http.Client{Transport: oauthEgress(env).SharedTransport(), Timeout: timeout, CheckRedirect: egress.NoRedirect}
}
