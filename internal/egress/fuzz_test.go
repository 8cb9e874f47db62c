package egress

import (
	"net/netip"
	"net/url"
	"strings"
	"testing"
)

// FuzzCheckURL: CheckURL never panics, and a URL it accepts (with
// egress.allow_private empty) is http(s) without credentials, and its host
// is a DNS name or an IP literal outside every blocked range — checked here
// against the range table directly, not through the guard.
func FuzzCheckURL(f *testing.F) {
	for _, tt := range issueTable {
		f.Add(tt.url)
	}
	for _, s := range []string{
		"https://hooks.example.com/in", "http://hooks.example.com/", "https://93.184.216.34/",
		"https://[::ffff:93.184.216.34]/", "https://[64:ff9b::5db8:d822]/", "https://[2002:7f00:1::]/",
		"https://[2001:0:5db8:d822::80ff:fffe]/", "https://0177.0.0.1/", "https://0x7f.1/",
		"https://127.0.0.1./", "https://[fe80::1%25eth0]/", "https://a.localhost./", "https://1572395042/",
		"https://user@host/", "https:host", "//host/path", "https://[::]:0/", "HTTPS://EXAMPLE.COM:443",
	} {
		f.Add(s)
	}
	g, err := NewGuard(nil, []string{"allowed.example"})
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		if g.CheckURL(raw) != nil {
			return
		}
		u, err := url.Parse(raw)
		if err != nil {
			t.Fatalf("CheckURL(%q) accepted a URL url.Parse rejects: %v", raw, err)
		}
		if u.Scheme != "https" && !(u.Scheme == "http" && strings.EqualFold(strings.TrimSuffix(u.Hostname(), "."), "allowed.example")) {
			t.Fatalf("CheckURL(%q) accepted scheme %q", raw, u.Scheme)
		}
		if u.User != nil || u.Hostname() == "" {
			t.Fatalf("CheckURL(%q) accepted credentials or an empty host", raw)
		}
		h := strings.ToLower(u.Hostname())
		if h == "localhost" || strings.HasSuffix(strings.TrimSuffix(h, "."), ".localhost") || strings.TrimSuffix(h, ".") == "localhost" {
			t.Fatalf("CheckURL(%q) accepted a localhost name", raw)
		}
		a, err := netip.ParseAddr(u.Hostname())
		if err != nil {
			// A name: it must not be something a resolver reads as an
			// IPv4 address.
			if _, ok := parseLegacyIPv4(strings.TrimSuffix(h, ".")); ok {
				t.Fatalf("CheckURL(%q) accepted the numeric host %q", raw, h)
			}
			return
		}
		for _, c := range candidates(a.WithZone("")) {
			for p := range BlockedRanges() {
				if p.Contains(c) {
					t.Fatalf("CheckURL(%q) accepted %s (as %s) in blocked range %s", raw, a, c, p)
				}
			}
		}
	})
}

// candidates is a and every IPv4 address it stands for on the wire:
// IPv4-mapped and SIIT (::ffff:0:0/96, ::ffff:0:0:0/96), NAT64
// (64:ff9b::/96), 6to4 (2002::/16), Teredo (2001::/32: server and client).
func candidates(a netip.Addr) []netip.Addr {
	out := []netip.Addr{a, a.Unmap()}
	if !a.Is6() {
		return out
	}
	b := a.As16()
	v4 := func(i int) netip.Addr { return netip.AddrFrom4([4]byte{b[i], b[i+1], b[i+2], b[i+3]}) }
	for _, p := range []string{"::ffff:0:0/96", "::ffff:0:0:0/96", "64:ff9b::/96"} {
		if netip.MustParsePrefix(p).Contains(a) {
			out = append(out, v4(12))
		}
	}
	if netip.MustParsePrefix("2002::/16").Contains(a) {
		out = append(out, v4(2))
	}
	if netip.MustParsePrefix("2001::/32").Contains(a) {
		out = append(out, v4(4), netip.AddrFrom4([4]byte{^b[12], ^b[13], ^b[14], ^b[15]}))
	}
	return out
}
