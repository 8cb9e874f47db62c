package verify

import (
	"context"
	"fmt"
	"net/netip"
	"strings"

	"hookd/internal/config"
)

func init() { Register("ip_allow", newIPAllow) }

// Forwarding headers ip_allow can read behind trusted proxies.
const (
	ipAllowXFF       = "X-Forwarded-For"
	ipAllowForwarded = "Forwarded"
)

// ipAllowMaxHops bounds how many forwarding entries are read: a request
// does not cross more proxies than that.
const ipAllowMaxHops = 64

// ipAllowOptions are the options of the ip_allow method.
type ipAllowOptions struct {
	// CIDRs are the networks allowed to send, such as 192.0.2.0/24; a bare
	// address allows that one address.
	CIDRs []string `yaml:"cidrs"`
	// TrustedProxies are the networks of the reverse proxies in front of
	// hookd. Only when the connection comes from one of them is the
	// forwarding header read; default none, so the client is the peer.
	TrustedProxies []string `yaml:"trusted_proxies"`
	// ForwardedHeader is the header the trusted proxies set:
	// X-Forwarded-For (default) or Forwarded (RFC 7239). Only that one is
	// read, so a client cannot slip an address past the proxy in the other.
	ForwardedHeader string `yaml:"forwarded_header"`
}

// ipAllowVerifier accepts requests from allowed networks.
type ipAllowVerifier struct {
	allow     []netip.Prefix
	trusted   []netip.Prefix
	forwarded bool // read Forwarded rather than X-Forwarded-For
}

func newIPAllow(env *Env, m config.Verify) (Verifier, error) {
	var o ipAllowOptions
	if err := m.Decode(&o); err != nil {
		return nil, err
	}
	if len(o.CIDRs) == 0 {
		return nil, fmt.Errorf("cidrs: required (the networks allowed to send, such as 192.0.2.0/24)")
	}
	v := &ipAllowVerifier{}
	var err error
	if v.allow, err = ipAllowPrefixes("cidrs", o.CIDRs); err != nil {
		return nil, err
	}
	if v.trusted, err = ipAllowPrefixes("trusted_proxies", o.TrustedProxies); err != nil {
		return nil, err
	}
	switch {
	case o.ForwardedHeader == "" || strings.EqualFold(o.ForwardedHeader, ipAllowXFF):
	case strings.EqualFold(o.ForwardedHeader, ipAllowForwarded):
		v.forwarded = true
	default:
		return nil, fmt.Errorf("forwarded_header: unknown header %q (want X-Forwarded-For or Forwarded)", o.ForwardedHeader)
	}
	return v, nil
}

func ipAllowPrefixes(field string, in []string) ([]netip.Prefix, error) {
	out := make([]netip.Prefix, 0, len(in))
	for i, s := range in {
		p, err := ipAllowParsePrefix(strings.TrimSpace(s))
		if err != nil {
			return nil, fmt.Errorf("%s[%d]: invalid CIDR or address %q", field, i, s)
		}
		out = append(out, p)
	}
	return out, nil
}

// ipAllowParsePrefix parses a CIDR or a single address.
func ipAllowParsePrefix(s string) (netip.Prefix, error) {
	if strings.Contains(s, "/") {
		p, err := netip.ParsePrefix(s)
		if err != nil {
			return netip.Prefix{}, err
		}
		if p.Addr().Is4In6() && p.Bits() >= 96 {
			p = netip.PrefixFrom(p.Addr().Unmap(), p.Bits()-96)
		}
		return p.Masked(), nil
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Prefix{}, err
	}
	a = a.Unmap().WithZone("")
	return netip.PrefixFrom(a, a.BitLen()), nil
}

// Verify accepts a request whose client address is in an allowed network;
// anything else, including an address it cannot determine, is 403.
func (v *ipAllowVerifier) Verify(_ context.Context, r *Request) error {
	client, ok := v.clientAddr(r)
	if !ok {
		return Forbidden("the client address cannot be determined")
	}
	if !ipAllowContains(v.allow, client) {
		return Forbidden("client address %s is not allowed", client)
	}
	return nil
}

// clientAddr is the peer address, unless the peer is a trusted proxy: then
// it is the right-most address of the forwarding header that is not itself
// a trusted proxy (every address left of it could have been written by the
// client). When every address is a trusted proxy, it is the left-most one.
func (v *ipAllowVerifier) clientAddr(r *Request) (netip.Addr, bool) {
	peer, ok := ipAllowParseNode(r.RemoteAddr)
	if !ok {
		return netip.Addr{}, false
	}
	if len(v.trusted) == 0 || !ipAllowContains(v.trusted, peer) {
		return peer, true
	}
	var hops []string
	if v.forwarded {
		hops, ok = fwdParseForwarded(r.Header.Values(ipAllowForwarded))
	} else {
		hops, ok = fwdParseXFF(r.Header.Values(ipAllowXFF))
	}
	if !ok {
		return netip.Addr{}, false
	}
	client := peer
	for i := len(hops) - 1; i >= 0; i-- {
		a, ok := ipAllowParseNode(hops[i])
		if !ok {
			return netip.Addr{}, false
		}
		client = a
		if !ipAllowContains(v.trusted, a) {
			break
		}
	}
	return client, true
}

func ipAllowContains(ps []netip.Prefix, a netip.Addr) bool {
	for _, p := range ps {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// ipAllowParseNode parses an address as a peer or a forwarding header
// gives it: "192.0.2.1", "192.0.2.1:443", "2001:db8::1", "[2001:db8::1]"
// or "[2001:db8::1]:443". Zones are dropped, IPv4-mapped IPv6 addresses
// unmapped.
func ipAllowParseNode(s string) (netip.Addr, bool) {
	s = strings.TrimSpace(s)
	if strings.HasPrefix(s, "[") {
		end := strings.IndexByte(s, ']')
		if end < 0 {
			return netip.Addr{}, false
		}
		rest := s[end+1:]
		if rest != "" && !ipAllowPort(rest) {
			return netip.Addr{}, false
		}
		s = s[1:end]
		a, err := netip.ParseAddr(s)
		if err != nil || !a.Is6() {
			return netip.Addr{}, false
		}
		return a.Unmap().WithZone(""), true
	}
	if a, err := netip.ParseAddr(s); err == nil {
		return a.Unmap().WithZone(""), true
	}
	host, port, found := strings.Cut(s, ":")
	if !found || !ipAllowPort(":"+port) {
		return netip.Addr{}, false
	}
	a, err := netip.ParseAddr(host)
	if err != nil || !a.Is4() {
		return netip.Addr{}, false
	}
	return a, true
}

// ipAllowPort reports whether s is ":" followed by 1 to 5 digits, or an
// obfuscated port ("_abc", RFC 7239 §6.3), which carries no address.
func ipAllowPort(s string) bool {
	if len(s) < 2 || s[0] != ':' {
		return false
	}
	p := s[1:]
	if p[0] == '_' {
		for i := 1; i < len(p); i++ {
			if !fwdIsTokenChar(p[i]) {
				return false
			}
		}
		return true
	}
	if len(p) > 5 {
		return false
	}
	for i := 0; i < len(p); i++ {
		if p[i] < '0' || p[i] > '9' {
			return false
		}
	}
	return true
}

// fwdParseXFF splits X-Forwarded-For values (one or several header lines,
// each a comma-separated list) into entries, in order. Empty entries are
// skipped; more than ipAllowMaxHops entries is refused.
func fwdParseXFF(vals []string) ([]string, bool) {
	var out []string
	for _, v := range vals {
		for _, e := range strings.Split(v, ",") {
			e = strings.Trim(e, " \t")
			if e == "" {
				continue
			}
			if len(out) == ipAllowMaxHops {
				return nil, false
			}
			out = append(out, e)
		}
	}
	return out, true
}

// fwdParseForwarded parses Forwarded values (RFC 7239 §4) and returns the
// for= node of each element, in order ("" for an element without one, which
// the caller cannot use as an address). It refuses a malformed value, an
// element with for= twice, and more than ipAllowMaxHops elements.
func fwdParseForwarded(vals []string) ([]string, bool) {
	var out []string
	for _, v := range vals {
		p := fwdParser{s: v}
		for {
			p.skipOWS()
			if p.done() {
				break
			}
			if p.peek() == ',' {
				p.i++
				continue
			}
			node, pairs, ok := p.element()
			if !ok {
				return nil, false
			}
			if pairs > 0 {
				if len(out) == ipAllowMaxHops {
					return nil, false
				}
				out = append(out, node)
			}
			p.skipOWS()
			if p.done() {
				break
			}
			if p.peek() != ',' {
				return nil, false
			}
			p.i++
		}
	}
	return out, true
}

// fwdParser reads one Forwarded header value.
type fwdParser struct {
	s string
	i int
}

func (p *fwdParser) done() bool { return p.i >= len(p.s) }
func (p *fwdParser) peek() byte { return p.s[p.i] }

func (p *fwdParser) skipOWS() {
	for !p.done() && (p.peek() == ' ' || p.peek() == '\t') {
		p.i++
	}
}

// element reads forwarded-pair *( ";" forwarded-pair ), stopping before a
// ',' or the end. It returns the for= value and how many pairs it read.
func (p *fwdParser) element() (node string, pairs int, ok bool) {
	seenFor := false
	for {
		p.skipOWS()
		if !p.done() && p.peek() != ';' && p.peek() != ',' {
			key := p.token()
			if key == "" || p.done() || p.peek() != '=' {
				return "", 0, false
			}
			p.i++
			val, ok := p.value()
			if !ok {
				return "", 0, false
			}
			if strings.EqualFold(key, "for") {
				if seenFor {
					return "", 0, false
				}
				seenFor, node = true, val
			}
			pairs++
			p.skipOWS()
		}
		if p.done() || p.peek() == ',' {
			return node, pairs, true
		}
		if p.peek() != ';' {
			return "", 0, false
		}
		p.i++
	}
}

func (p *fwdParser) token() string {
	start := p.i
	for !p.done() && fwdIsTokenChar(p.peek()) {
		p.i++
	}
	return p.s[start:p.i]
}

// value reads a token or a quoted-string. Proxies that send
// "192.0.2.1:80" or "[2001:db8::1]" unquoted are tolerated: an unquoted
// value runs up to the next delimiter of the header's structure.
func (p *fwdParser) value() (string, bool) {
	if p.done() {
		return "", false
	}
	if p.peek() != '"' {
		start := p.i
		for !p.done() {
			c := p.peek()
			if c == ',' || c == ';' || c == ' ' || c == '\t' || c == '"' || c < 0x20 || c == 0x7f {
				break
			}
			p.i++
		}
		return p.s[start:p.i], p.i > start
	}
	p.i++
	var b strings.Builder
	for !p.done() {
		c := p.peek()
		switch {
		case c == '"':
			p.i++
			return b.String(), true
		case c == '\\':
			p.i++
			if p.done() {
				return "", false
			}
			b.WriteByte(p.peek())
		case c < 0x20 && c != '\t', c == 0x7f:
			return "", false
		default:
			b.WriteByte(c)
		}
		p.i++
	}
	return "", false
}

// fwdIsTokenChar reports whether c is an RFC 9110 tchar.
func fwdIsTokenChar(c byte) bool {
	switch {
	case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		return true
	}
	return strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0
}

// GuardsHandshakes: the allowed networks apply to a provider's unsigned
// handshakes too.
func (v *ipAllowVerifier) GuardsHandshakes() bool { return true }
