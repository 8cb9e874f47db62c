package egress

import (
	"errors"
	"fmt"
	"net/netip"
	"strings"
)

// ErrRefused is matched (errors.Is) by every refusal of a Guard: a URL that
// CheckURL rejects and an address that the dialer will not connect to.
var ErrRefused = errors.New("refused by egress guard")

// BlockedError says an address is in a blocked range and not in
// egress.allow_private.
type BlockedError struct {
	// Addr is the refused address, as resolved or written (zone removed).
	Addr netip.Addr
	// Embedded is the IPv4 address that Addr embeds (IPv4-mapped, NAT64,
	// 6to4, Teredo…) when that is what is blocked; else the zero Addr.
	Embedded netip.Addr
	// Class names the range: "loopback", "private", "link-local"…
	Class string
	// Range is the blocked range that matched.
	Range netip.Prefix
	// Host is the host as written when it is not Addr's canonical form
	// ("2130706433", "localhost"); else "".
	Host string
}

func (e *BlockedError) Error() string {
	what := "address " + e.Addr.String()
	if e.Host != "" {
		what = "host " + e.Host
		if e.Host != "localhost" && !strings.HasSuffix(e.Host, ".localhost") {
			what += " (" + e.Addr.String() + ")"
		}
	}
	if e.Embedded.IsValid() {
		return fmt.Sprintf("%s embeds %s, which is %s and not in egress.allow_private", what, e.Embedded, e.Class)
	}
	return fmt.Sprintf("%s is %s and not in egress.allow_private", what, e.Class)
}

// Is makes errors.Is(err, ErrRefused) true.
func (e *BlockedError) Is(target error) bool { return target == ErrRefused }

// refusal is any other refusal (scheme, credentials, a malformed host).
type refusal struct{ msg string }

func (e *refusal) Error() string            { return e.msg }
func (e *refusal) Is(target error) bool     { return target == ErrRefused }
func refusef(format string, a ...any) error { return &refusal{msg: fmt.Sprintf(format, a...)} }

// blockedRange is one range refused unless in egress.allow_private.
type blockedRange struct {
	prefix netip.Prefix
	class  string
}

// blocked lists the ranges refused unless allowed, most specific first so
// that an error names the narrowest class. IPv6 ranges that embed an IPv4
// address (IPv4-mapped, SIIT, NAT64, 6to4, Teredo) are not listed: the
// embedded address is checked instead (see embedded).
var blocked = func() []blockedRange {
	table := []struct{ cidr, class string }{
		// IPv4.
		{"0.0.0.0/32", "unspecified"},
		{"0.0.0.0/8", `"this network" (0.0.0.0/8)`},
		{"10.0.0.0/8", "private"},
		{"100.64.0.0/10", "shared address space (CGNAT)"},
		{"127.0.0.0/8", "loopback"},
		{"169.254.169.254/32", "link-local (cloud metadata)"},
		{"169.254.0.0/16", "link-local"},
		{"172.16.0.0/12", "private"},
		{"192.0.0.0/24", "reserved for IETF protocol assignments"},
		{"192.0.2.0/24", "reserved for documentation"},
		{"192.88.99.0/24", "6to4 relay anycast (deprecated)"},
		{"192.168.0.0/16", "private"},
		{"198.18.0.0/15", "reserved for benchmarking"},
		{"198.51.100.0/24", "reserved for documentation"},
		{"203.0.113.0/24", "reserved for documentation"},
		{"224.0.0.0/4", "multicast"},
		{"255.255.255.255/32", "broadcast"},
		{"240.0.0.0/4", "reserved"},
		// IPv6.
		{"::/128", "unspecified"},
		{"::1/128", "loopback"},
		{"::/96", "IPv4-compatible (deprecated)"},
		{"64:ff9b:1::/48", "local-use NAT64"},
		{"100::/64", "discard-only"},
		{"2001:2::/48", "reserved for benchmarking"},
		{"2001:db8::/32", "reserved for documentation"},
		{"3fff::/20", "reserved for documentation"},
		{"fd00:ec2::254/128", "unique local (cloud metadata)"},
		{"fc00::/7", "unique local (private)"},
		{"fe80::/10", "link-local"},
		{"fec0::/10", "site-local (deprecated)"},
		{"ff00::/8", "multicast"},
	}
	out := make([]blockedRange, len(table))
	for i, r := range table {
		out[i] = blockedRange{prefix: netip.MustParsePrefix(r.cidr), class: r.class}
	}
	return out
}()

// Prefixes of IPv6 ranges whose addresses embed an IPv4 address.
var (
	prefix4in6       = netip.MustParsePrefix("::ffff:0:0/96")   // IPv4-mapped
	prefixTranslated = netip.MustParsePrefix("::ffff:0:0:0/96") // SIIT, RFC 2765
	prefixNAT64      = netip.MustParsePrefix("64:ff9b::/96")    // RFC 6052
	prefix6to4       = netip.MustParsePrefix("2002::/16")       // RFC 3056
	prefixTeredo     = netip.MustParsePrefix("2001::/32")       // RFC 4380
)

// BlockedRanges returns the ranges refused unless in egress.allow_private,
// each with its class. IPv6 addresses that embed an IPv4 address
// (::ffff:0:0/96, ::ffff:0:0:0/96, 64:ff9b::/96, 2002::/16, 2001::/32) are
// refused when the embedded address is.
func BlockedRanges() map[netip.Prefix]string {
	out := make(map[netip.Prefix]string, len(blocked))
	for _, r := range blocked {
		out[r.prefix] = r.class
	}
	return out
}

// embedded returns the IPv4 addresses a IPv6 address carries: the mapped
// or translated address, the NAT64 address, the 6to4 address, or Teredo's
// server and (de-obfuscated) client addresses.
func embedded(a netip.Addr) []netip.Addr {
	if !a.Is6() {
		return nil
	}
	b := a.As16()
	v4 := func(i int) netip.Addr { return netip.AddrFrom4([4]byte{b[i], b[i+1], b[i+2], b[i+3]}) }
	switch {
	case prefix4in6.Contains(a), prefixTranslated.Contains(a), prefixNAT64.Contains(a):
		return []netip.Addr{v4(12)}
	case prefix6to4.Contains(a):
		return []netip.Addr{v4(2)}
	case prefixTeredo.Contains(a):
		client := [4]byte{^b[12], ^b[13], ^b[14], ^b[15]}
		return []netip.Addr{v4(4), netip.AddrFrom4(client)}
	}
	return nil
}

// checkAddr refuses a unless it is allowed or outside every blocked range.
func (g *Guard) checkAddr(a netip.Addr) error {
	a = a.WithZone("")
	if !a.IsValid() {
		return refusef("no address")
	}
	if g.allowed(a) {
		return nil
	}
	if a.Is4In6() {
		// The same address on the wire: report it as IPv4.
		if err := g.checkAddr(a.Unmap()); err != nil {
			var be *BlockedError
			if errors.As(err, &be) {
				return &BlockedError{Addr: a, Embedded: be.Addr, Class: be.Class, Range: be.Range}
			}
			return err
		}
		return nil
	}
	for _, r := range blocked {
		if r.prefix.Contains(a) {
			return &BlockedError{Addr: a, Class: r.class, Range: r.prefix}
		}
	}
	for _, e := range embedded(a) {
		if g.allowed(e) {
			continue
		}
		for _, r := range blocked {
			if r.prefix.Contains(e) {
				return &BlockedError{Addr: a, Embedded: e, Class: r.class, Range: r.prefix}
			}
		}
	}
	return nil
}

// allowed reports whether a is in egress.allow_private.
func (g *Guard) allowed(a netip.Addr) bool {
	for _, p := range g.allowPrivate {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// endsInNumber reports whether host's last label is a number (decimal, or
// hex with 0x): such a host is an IPv4 address to browsers (WHATWG URL) and
// to inet_aton, never a DNS name. host is lower case without a final dot.
func endsInNumber(host string) bool {
	last := host[strings.LastIndexByte(host, '.')+1:]
	if last == "" {
		return false
	}
	if strings.HasPrefix(last, "0x") {
		return strings.Trim(last[2:], "0123456789abcdef") == ""
	}
	return strings.Trim(last, "0123456789") == ""
}

// parseLegacyIPv4 parses the IPv4 forms that inet_aton and the WHATWG URL
// parser accept besides dotted decimal: one to four parts, each decimal,
// octal (leading 0) or hex (0x); the last part fills the remaining bytes
// (127.1 is 127.0.0.1, 2130706433 is 127.0.0.1). host is lower case
// without a final dot.
func parseLegacyIPv4(host string) (netip.Addr, bool) {
	parts := strings.Split(host, ".")
	if len(parts) > 4 {
		return netip.Addr{}, false
	}
	var n [4]uint64
	for i, p := range parts {
		v, ok := parseIPv4Number(p)
		if !ok {
			return netip.Addr{}, false
		}
		n[i] = v
	}
	last := len(parts) - 1
	for _, v := range n[:last] {
		if v > 255 {
			return netip.Addr{}, false
		}
	}
	if n[last] >= 1<<(8*(4-last)) {
		return netip.Addr{}, false
	}
	v := n[last]
	for i := range last {
		v |= n[i] << (8 * (3 - i))
	}
	return netip.AddrFrom4([4]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)}), true
}

// parseIPv4Number parses one part of a legacy IPv4 address, at most
// 2^32-1.
func parseIPv4Number(s string) (uint64, bool) {
	base := uint64(10)
	switch {
	case strings.HasPrefix(s, "0x"):
		base, s = 16, s[2:]
		if s == "" {
			return 0, true // "0x" is 0 to browsers and inet_aton
		}
	case len(s) > 1 && s[0] == '0':
		base, s = 8, s[1:]
	case s == "":
		return 0, false
	}
	var v uint64
	for i := 0; i < len(s); i++ {
		var d uint64
		switch c := s[i]; {
		case '0' <= c && c <= '9':
			d = uint64(c - '0')
		case 'a' <= c && c <= 'f':
			d = uint64(c-'a') + 10
		default:
			return 0, false
		}
		if d >= base {
			return 0, false
		}
		v = v*base + d
		if v > 1<<32-1 {
			return 0, false
		}
	}
	return v, true
}

// isLocalhost reports whether name is localhost or under .localhost, which
// always mean loopback (RFC 6761) and are never looked up.
func isLocalhost(name string) bool {
	return name == "localhost" || strings.HasSuffix(name, ".localhost")
}

// loopback is what localhost names stand for.
var loopback = []netip.Addr{netip.AddrFrom4([4]byte{127, 0, 0, 1}), netip.IPv6Loopback()}

// validName reports whether name (lower case, no final dot) is a DNS name
// of letters, digits, hyphens and underscores in labels of 1 to 63 bytes.
func validName(name string) bool {
	if name == "" || len(name) > 253 {
		return false
	}
	for _, label := range strings.Split(name, ".") {
		if label == "" || len(label) > 63 {
			return false
		}
		for i := 0; i < len(label); i++ {
			c := label[i]
			if !('a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '-' || c == '_') {
				return false
			}
		}
	}
	return true
}

// host is a URL or dial host, classified.
type host struct {
	// addr is set for an IP literal (any form).
	addr netip.Addr
	// canonical is false for an IP literal in a legacy form.
	canonical bool
	// name is set for a DNS name (lower case, no final dot).
	name string
}

// parseHost classifies h, a host without brackets or port as
// url.URL.Hostname and net.SplitHostPort return it. It refuses what is
// neither an IP literal nor a DNS name.
func parseHost(h string) (host, error) {
	if h == "" {
		return host{}, refusef("no host")
	}
	if a, err := netip.ParseAddr(h); err == nil {
		return host{addr: a, canonical: true}, nil
	}
	for i := 0; i < len(h); i++ {
		if h[i] >= 0x80 {
			return host{}, refusef("host %q is not ASCII (use its punycode form)", h)
		}
	}
	name := strings.TrimSuffix(strings.ToLower(h), ".")
	if name == "" {
		return host{}, refusef("host %q is not a valid DNS name", h)
	}
	if a, err := netip.ParseAddr(name); err == nil {
		return host{addr: a, canonical: name == h}, nil // "127.0.0.1."
	}
	if endsInNumber(name) {
		a, ok := parseLegacyIPv4(name)
		if !ok {
			return host{}, refusef("host %q looks like an IPv4 address but is not a valid one", h)
		}
		return host{addr: a}, nil
	}
	if !validName(name) {
		return host{}, refusef("host %q is not a valid DNS name", h)
	}
	return host{name: name}, nil
}
