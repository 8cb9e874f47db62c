package httpserver

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"net"
	"net/http"
	"strconv"
	"sync/atomic"
	"time"
)

// A request with both Content-Length and Transfer-Encoding is refused and
// its connection closed (RFC 9112 §6.3): a front proxy that framed it by
// Content-Length would read what follows as a different request than hookd
// does. net/http accepts such a request and drops Content-Length from its
// header before any handler sees it, so the check reads the bytes on the
// connection: NewListener follows the framing of the requests on each
// connection, as they arrive, and flags the connection once a request's
// header holds both fields; Handler then refuses the request it is serving
// on that connection with 400 and Connection: close.

// NewListener wraps ln so that Handler can refuse a request that carries
// both Content-Length and Transfer-Encoding. Serve the server New returns
// on it.
func NewListener(ln net.Listener) net.Listener { return &framingListener{Listener: ln} }

// NewTLSListener is NewListener over TLS: each connection accepted from
// ln is served with cfg, and the framing is followed on the plaintext
// beneath it. The handshake runs on the connection's first read (in the
// connection's own goroutine, never in Accept), bounded by
// handshakeTimeout; a connection whose handshake fails is closed without
// an answer. Handler gives each request its connection's TLS state
// (r.TLS), which net/http gives only to a *tls.Conn it serves itself;
// for the same reason net/http cannot serve HTTP/2 here, and cfg should
// offer only http/1.1.
func NewTLSListener(ln net.Listener, cfg *tls.Config, handshakeTimeout time.Duration) net.Listener {
	return &framingListener{Listener: ln, tls: cfg, handshakeTimeout: handshakeTimeout}
}

type framingListener struct {
	net.Listener
	tls              *tls.Config // nil: plain
	handshakeTimeout time.Duration
}

func (l *framingListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	fc := &framedConn{Conn: c, f: framing{first: true}}
	if l.tls != nil {
		fc.tls = tls.Server(c, l.tls)
		fc.Conn = fc.tls
		fc.handshakeTimeout = l.handshakeTimeout
	}
	return fc, nil
}

// framedConn follows the framing of what is read from it. net/http never
// reads one connection from two goroutines at once, so f needs no lock;
// the flag is read by the handler's goroutine.
type framedConn struct {
	net.Conn
	f         framing
	ambiguous atomic.Bool

	tls              *tls.Conn // the Conn, over TLS; nil: plain
	handshakeTimeout time.Duration
	handshaken       bool
}

func (c *framedConn) Read(p []byte) (int, error) {
	if c.tls != nil && !c.handshaken {
		// Without a bound of its own the handshake's writes would wait
		// on a peer that never reads.
		ctx, cancel := context.Background(), context.CancelFunc(func() {})
		if c.handshakeTimeout > 0 {
			ctx, cancel = context.WithTimeout(ctx, c.handshakeTimeout)
		}
		err := c.tls.HandshakeContext(ctx)
		cancel()
		if err != nil {
			return 0, err
		}
		// Only HTTP/1.1 is served. Another protocol the configuration
		// offers (ACME's tls-alpn-01 validation, acme-tls/1, whose
		// handshake may skip the client certificate) ends with its
		// handshake: the connection is closed before a byte is read.
		if p := c.tls.ConnectionState().NegotiatedProtocol; p != "" && p != "http/1.1" {
			c.tls.Close()
			return 0, errProtocol
		}
		c.handshaken = true
	}
	n, err := c.Conn.Read(p)
	if n > 0 && !c.ambiguous.Load() && c.f.feed(p[:n]) {
		c.ambiguous.Store(true)
	}
	return n, err
}

// errProtocol is the error of a connection whose handshake negotiated
// a protocol other than HTTP/1.1.
var errProtocol = errors.New("tls: negotiated protocol is not http/1.1")

type connKey struct{}

// connContext is the http.Server's ConnContext: it gives Handler the
// connection its request came on.
func connContext(ctx context.Context, c net.Conn) context.Context {
	if fc, ok := c.(*framedConn); ok {
		return context.WithValue(ctx, connKey{}, fc)
	}
	return ctx
}

// tlsState returns the TLS state of r's connection, or nil when it is
// plain (or not from NewTLSListener).
func tlsState(r *http.Request) *tls.ConnectionState {
	fc, _ := r.Context().Value(connKey{}).(*framedConn)
	if fc == nil || fc.tls == nil {
		return nil
	}
	st := fc.tls.ConnectionState()
	return &st
}

// ambiguousFraming reports whether a request on r's connection declared
// its length twice (always false without NewListener).
func ambiguousFraming(r *http.Request) bool {
	fc, _ := r.Context().Value(connKey{}).(*framedConn)
	return fc != nil && fc.ambiguous.Load()
}

// framing follows HTTP/1.1 request framing (RFC 9112 §6) over a stream of
// bytes: header block, then a body of Content-Length bytes or of chunks,
// then the next request. It reads only what it must to find where each
// header block begins; on anything it does not follow (a line too long, a
// malformed length, which net/http refuses and closes on anyway) it stops
// looking at that connection.
type framing struct {
	state  int
	line   []byte // the line being read, at most maxFramingLine bytes kept
	long   bool   // line was longer than what is kept
	first  bool   // the next header-block line is the request line
	http10 bool   // the request line says HTTP/1.0: Transfer-Encoding is ignored
	cl, te bool   // the header block so far has Content-Length, Transfer-Encoding
	length int64  // the Content-Length value
	remain int64  // bytes left of the body or of the current chunk
}

const (
	stHead      = iota // in a header block
	stBody             // in a Content-Length body
	stChunkSize        // reading a chunk-size line
	stChunkData        // in a chunk's data
	stChunkEnd         // reading the CRLF after a chunk's data
	stTrailer          // in the trailer section after the last chunk
	stLost             // no longer following this connection
)

// maxFramingLine is how much of a line is kept: enough for any field name
// and length, never the whole of a long header value.
const maxFramingLine = 256

var (
	fieldContentLength    = []byte("content-length")
	fieldTransferEncoding = []byte("transfer-encoding")
)

// feed follows p and reports whether a header block that ended in it had
// both Content-Length and Transfer-Encoding.
func (f *framing) feed(p []byte) bool {
	for len(p) > 0 {
		switch f.state {
		case stLost:
			return false
		case stBody, stChunkData:
			n := min(int64(len(p)), f.remain)
			p = p[n:]
			if f.remain -= n; f.remain == 0 {
				if f.state == stBody {
					f.state = stHead
				} else {
					f.state = stChunkEnd
				}
			}
		default:
			i := bytes.IndexByte(p, '\n')
			if i < 0 {
				f.keep(p)
				return false
			}
			f.keep(p[:i])
			p = p[i+1:]
			line := bytes.TrimSuffix(f.line, []byte("\r"))
			long := f.long
			f.line, f.long = f.line[:0], false
			if f.endLine(line, long) {
				return true
			}
		}
	}
	return false
}

func (f *framing) keep(b []byte) {
	if room := maxFramingLine - len(f.line); len(b) > room {
		b, f.long = b[:room], true
	}
	f.line = append(f.line, b...)
}

// endLine takes one whole line (without its CRLF; long when only its
// start was kept).
func (f *framing) endLine(line []byte, long bool) bool {
	switch f.state {
	case stHead:
		switch {
		case len(line) == 0 && !long && f.first:
			// An empty line before a request line is ignored (RFC 9112 §2.2).
		case len(line) == 0 && !long:
			return f.endHeader()
		case f.first:
			f.first = false
			f.http10 = bytes.HasSuffix(line, []byte(" HTTP/1.0"))
		case line[0] == ' ' || line[0] == '\t':
			// An obsolete line folding: part of the previous value.
		default:
			name, value, ok := bytes.Cut(line, []byte(":"))
			if !ok {
				return false
			}
			switch {
			case bytes.EqualFold(name, fieldContentLength):
				n, err := strconv.ParseInt(string(bytes.Trim(value, " \t")), 10, 64)
				if long || err != nil || n < 0 {
					f.state = stLost
					return false
				}
				f.cl, f.length = true, n
			case bytes.EqualFold(name, fieldTransferEncoding):
				f.te = true
			}
		}
	case stChunkSize:
		size, _, _ := bytes.Cut(line, []byte(";"))
		n, err := strconv.ParseInt(string(bytes.Trim(size, " \t")), 16, 64)
		switch {
		case long || err != nil || n < 0:
			f.state = stLost
		case n == 0:
			f.state = stTrailer
		default:
			f.state, f.remain = stChunkData, n
		}
	case stChunkEnd:
		if len(line) != 0 || long {
			f.state = stLost
			return false
		}
		f.state = stChunkSize
	case stTrailer:
		if len(line) == 0 && !long {
			f.state = stHead
			f.first = true
		}
	}
	return false
}

// endHeader ends a header block: it reports a request that declares its
// length twice, and otherwise moves to its body.
func (f *framing) endHeader() bool {
	cl, te, length, http10 := f.cl, f.te, f.length, f.http10
	f.cl, f.te, f.length, f.http10, f.first = false, false, 0, false, true
	switch {
	case cl && te:
		f.state = stLost
		return true
	case te && !http10:
		f.state = stChunkSize
	case cl && length > 0:
		f.state, f.remain = stBody, length
	default:
		f.state = stHead
	}
	return false
}
