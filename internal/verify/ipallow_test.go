package verify

import (
	"context"
	"net/netip"
	"slices"
	"strings"
	"testing"
)

func TestIPAllowDirect(t *testing.T) {
	t.Parallel()
	v := credMustBuild(t, nil, "ip_allow", map[string]any{"cidrs": []string{"192.0.2.0/24", "2001:db8::/32", "198.51.100.7"}})
	tests := []struct {
		name       string
		remote     string
		headers    []string
		wantStatus int
	}{
		{"InCIDR", "192.0.2.10:5555", nil, 200},
		{"SingleAddress", "198.51.100.7:5555", nil, 200},
		{"NeighbourOfSingleAddress", "198.51.100.8:5555", nil, 403},
		{"IPv6", "[2001:db8::1]:443", nil, 200},
		{"IPv6Zone", "[2001:db8::1%eth0]:443", nil, 200},
		{"IPv4Mapped", "[::ffff:192.0.2.10]:443", nil, 200},
		{"NoPort", "192.0.2.10", nil, 200},
		{"Outside", "203.0.113.5:5555", nil, 403},
		{"OutsideIPv6", "[2001:db9::1]:443", nil, 403},
		// Without trusted proxies, forwarding headers are never read.
		{"SpoofedXFF", "203.0.113.5:5555", []string{"X-Forwarded-For", "192.0.2.10"}, 403},
		{"SpoofedForwarded", "203.0.113.5:5555", []string{"Forwarded", "for=192.0.2.10"}, 403},
		{"XFFIgnoredForAllowedPeer", "192.0.2.10:5555", []string{"X-Forwarded-For", "203.0.113.5"}, 200},
		{"Unparseable", "not-an-address", nil, 403},
		{"Empty", "", nil, 403},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			err := v.Verify(context.Background(), credRequest(tt.remote, tt.headers...))
			credCheck(t, err, tt.wantStatus, "")
		})
	}
}

func TestIPAllowTrustedProxies(t *testing.T) {
	t.Parallel()
	xff := credMustBuild(t, nil, "ip_allow", map[string]any{
		"cidrs":           []string{"192.0.2.0/24"},
		"trusted_proxies": []string{"10.0.0.0/8", "fd00::/8"},
	})
	fwd := credMustBuild(t, nil, "ip_allow", map[string]any{
		"cidrs":            []string{"192.0.2.0/24", "2001:db8::/32"},
		"trusted_proxies":  []string{"10.0.0.0/8"},
		"forwarded_header": "forwarded",
	})
	tests := []struct {
		name       string
		v          Verifier
		remote     string
		headers    []string
		wantStatus int
	}{
		{"XFFFromProxy", xff, "10.1.1.1:80", []string{"X-Forwarded-For", "192.0.2.10"}, 200},
		{"XFFFromProxyNotAllowed", xff, "10.1.1.1:80", []string{"X-Forwarded-For", "203.0.113.5"}, 403},
		// The client wrote the left part; the proxy appended the peer it saw.
		{"XFFSpoofedLeftPart", xff, "10.1.1.1:80", []string{"X-Forwarded-For", "192.0.2.10, 203.0.113.5"}, 403},
		{"XFFTwoProxies", xff, "10.1.1.1:80", []string{"X-Forwarded-For", "203.0.113.9, 192.0.2.10, 10.2.2.2"}, 200},
		{"XFFSeveralLines", xff, "10.1.1.1:80", []string{"X-Forwarded-For", "203.0.113.9", "X-Forwarded-For", "192.0.2.10"}, 200},
		{"XFFWithPort", xff, "10.1.1.1:80", []string{"X-Forwarded-For", "192.0.2.10:5555"}, 200},
		{"XFFIPv6Proxy", xff, "[fd00::1]:80", []string{"X-Forwarded-For", "192.0.2.10"}, 200},
		{"XFFAllTrusted", xff, "10.1.1.1:80", []string{"X-Forwarded-For", "10.9.9.9, 10.2.2.2"}, 403},
		{"XFFGarbage", xff, "10.1.1.1:80", []string{"X-Forwarded-For", "unknown"}, 403},
		{"XFFGarbageLeftOfClient", xff, "10.1.1.1:80", []string{"X-Forwarded-For", "garbage, 192.0.2.10"}, 200},
		{"XFFNoHeaderProxyItself", xff, "10.1.1.1:80", nil, 403},
		{"XFFSpoofFromUntrustedPeer", xff, "203.0.113.5:80", []string{"X-Forwarded-For", "192.0.2.10"}, 403},
		{"XFFForwardedHeaderIgnored", xff, "10.1.1.1:80", []string{"Forwarded", "for=192.0.2.10", "X-Forwarded-For", "203.0.113.5"}, 403},
		{"Forwarded", fwd, "10.1.1.1:80", []string{"Forwarded", "for=192.0.2.10;proto=https;by=10.1.1.1"}, 200},
		{"ForwardedQuotedIPv6", fwd, "10.1.1.1:80", []string{"Forwarded", `for="[2001:db8:cafe::17]:4711"`}, 200},
		{"ForwardedQuotedPort", fwd, "10.1.1.1:80", []string{"Forwarded", `For="192.0.2.10:4711"`}, 200},
		{"ForwardedSpoofedLeft", fwd, "10.1.1.1:80", []string{"Forwarded", "for=192.0.2.10, for=203.0.113.5"}, 403},
		{"ForwardedTwoProxies", fwd, "10.1.1.1:80", []string{"Forwarded", "for=203.0.113.5, for=192.0.2.10, for=10.3.3.3"}, 200},
		{"ForwardedUnknown", fwd, "10.1.1.1:80", []string{"Forwarded", "for=unknown"}, 403},
		{"ForwardedObfuscated", fwd, "10.1.1.1:80", []string{"Forwarded", "for=_hidden"}, 403},
		{"ForwardedNoFor", fwd, "10.1.1.1:80", []string{"Forwarded", "proto=https"}, 403},
		{"ForwardedMalformed", fwd, "10.1.1.1:80", []string{"Forwarded", `for="192.0.2.10`}, 403},
		{"ForwardedXFFIgnored", fwd, "10.1.1.1:80", []string{"X-Forwarded-For", "192.0.2.10", "Forwarded", "for=203.0.113.5"}, 403},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			err := tt.v.Verify(context.Background(), credRequest(tt.remote, tt.headers...))
			credCheck(t, err, tt.wantStatus, "")
		})
	}
}

func TestIPAllowOptions(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		opts    map[string]any
		wantErr string
	}{
		{"Valid", map[string]any{"cidrs": []string{"192.0.2.0/24", "2001:db8::1"}}, ""},
		{"NoCIDRs", map[string]any{}, "cidrs: required"},
		{"BadCIDR", map[string]any{"cidrs": []string{"192.0.2.0/24", "192.0.2.0/33"}}, "cidrs[1]: invalid CIDR or address"},
		{"BadProxy", map[string]any{"cidrs": []string{"192.0.2.0/24"}, "trusted_proxies": []string{"proxy.local"}}, "trusted_proxies[0]: invalid"},
		{"BadForwardedHeader", map[string]any{"cidrs": []string{"192.0.2.0/24"}, "forwarded_header": "X-Real-IP"}, "forwarded_header: unknown header"},
		{"UnknownOption", map[string]any{"cidrs": []string{"192.0.2.0/24"}, "allow": []string{"x"}}, "unknown key \"allow\""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := credBuild(t, nil, "ip_allow", tt.opts)
			credWantErr(t, err, tt.wantErr)
		})
	}
}

func TestParseForwarded(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in   []string
		want []string
		ok   bool
	}{
		{[]string{"for=192.0.2.1"}, []string{"192.0.2.1"}, true},
		{[]string{`for="[2001:db8::1]:80";proto=https, for=198.51.100.1`}, []string{"[2001:db8::1]:80", "198.51.100.1"}, true},
		{[]string{"for=a", "for=b"}, []string{"a", "b"}, true},
		{[]string{"proto=https;for=a;by=b"}, []string{"a"}, true},
		{[]string{"proto=https"}, []string{""}, true},
		{[]string{" , ,for=a,,"}, []string{"a"}, true},
		{[]string{`for="a\"b"`}, []string{`a"b`}, true},
		{[]string{""}, nil, true},
		{[]string{"for=a;for=b"}, nil, false},
		{[]string{"for"}, nil, false},
		{[]string{"for="}, nil, false},
		{[]string{`for="a`}, nil, false},
		{[]string{"for=a b"}, nil, false},
		{[]string{"=a"}, nil, false},
		{[]string{strings.Repeat("for=a,", ipAllowMaxHops+1)}, nil, false},
	}
	for _, tt := range tests {
		got, ok := fwdParseForwarded(tt.in)
		if ok != tt.ok || !slices.Equal(got, tt.want) {
			t.Errorf("fwdParseForwarded(%q): got (%q, %v), want (%q, %v)", tt.in, got, ok, tt.want, tt.ok)
		}
	}
}

func TestParseNode(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in   string
		want string // "" means not an address
	}{
		{"192.0.2.1", "192.0.2.1"},
		{" 192.0.2.1 ", "192.0.2.1"},
		{"192.0.2.1:80", "192.0.2.1"},
		{"192.0.2.1:_abc", "192.0.2.1"},
		{"2001:db8::1", "2001:db8::1"},
		{"[2001:db8::1]", "2001:db8::1"},
		{"[2001:db8::1]:443", "2001:db8::1"},
		{"[::ffff:192.0.2.1]:443", "192.0.2.1"},
		{"fe80::1%eth0", "fe80::1"},
		{"192.0.2.1:", ""},
		{"192.0.2.1:123456", ""},
		{"192.0.2.1:80:80", ""},
		{"[192.0.2.1]:80", ""},
		{"[2001:db8::1", ""},
		{"[2001:db8::1]x", ""},
		{"unknown", ""},
		{"_hidden", ""},
		{"", ""},
	}
	for _, tt := range tests {
		a, ok := ipAllowParseNode(tt.in)
		got := ""
		if ok {
			got = a.String()
		}
		if got != tt.want {
			t.Errorf("ipAllowParseNode(%q): got %q, want %q", tt.in, got, tt.want)
		}
	}
}

func FuzzForwarded(f *testing.F) {
	for _, s := range []string{
		"for=192.0.2.60;proto=http;by=203.0.113.43", `for="[2001:db8:cafe::17]:4711"`, "for=unknown, for=_hidden",
		`For="\"\\"`, ", ,;;", "for=a;for=b", `for="unterminated`, "proto=https", "for=192.0.2.1:80",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		nodes, ok := fwdParseForwarded([]string{s})
		if !ok {
			return
		}
		if len(nodes) > ipAllowMaxHops {
			t.Fatalf("%d nodes, over the bound", len(nodes))
		}
		for _, n := range nodes {
			if a, ok := ipAllowParseNode(n); ok && (!a.IsValid() || a.Zone() != "" || a.Is4In6()) {
				t.Fatalf("ipAllowParseNode(%q) = %v: not a plain address", n, a)
			}
		}
	})
}

func FuzzXForwardedFor(f *testing.F) {
	for _, s := range [][2]string{
		{"192.0.2.1", "10.0.0.1:80"}, {"192.0.2.1, 10.0.0.2", "10.0.0.1:80"}, {"garbage", "10.0.0.1:80"},
		{"192.0.2.1", "203.0.113.5:80"}, {"[2001:db8::1]:80,, ,", "[fd00::1]:443"}, {"", "10.0.0.1"},
	} {
		f.Add(s[0], s[1])
	}
	v := &ipAllowVerifier{
		allow:   []netip.Prefix{netip.MustParsePrefix("192.0.2.0/24")},
		trusted: []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("fd00::/8")},
	}
	f.Fuzz(func(t *testing.T, xff, remote string) {
		r := credRequest(remote, "X-Forwarded-For", xff)
		client, ok := v.clientAddr(r)
		peer, peerOK := ipAllowParseNode(remote)
		if !peerOK {
			if ok {
				t.Fatalf("client %v from an unparseable peer %q", client, remote)
			}
			return
		}
		if !ipAllowContains(v.trusted, peer) {
			// An untrusted peer is the client, whatever the header says.
			if !ok || client != peer {
				t.Fatalf("untrusted peer %v: got client %v, %v", peer, client, ok)
			}
			return
		}
		if ok && client != peer {
			hops, _ := fwdParseXFF([]string{xff})
			found := false
			for _, h := range hops {
				if a, ok := ipAllowParseNode(h); ok && a == client {
					found = true
				}
			}
			if !found {
				t.Fatalf("client %v appears nowhere in %q", client, xff)
			}
		}
		_ = v.Verify(context.Background(), r)
	})
}
