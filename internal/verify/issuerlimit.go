package verify

import (
	"container/list"
	"math"
	"sync"
	"time"

	"hookd/internal/config"
	"hookd/internal/httpserver"
)

// The token endpoint limits failed client authentications, so that a
// client secret cannot be found by trying: per client id (every address
// together) and per remote address (whatever the id). Each limit is a token
// bucket that a failure empties by one; while a bucket is empty the
// endpoint answers 429 with Retry-After without checking any secret.
//
// An attack on one client id empties that id's bucket for everyone, the
// real client too, except at the addresses where the client authenticated
// before (at most issuerGoodAddrs of them, for issuerGoodAddrTTL): those
// keep getting tokens while the id is under attack from elsewhere. An
// attacker at another address cannot use them.
const (
	// issuerGoodAddrs bounds the addresses remembered per client.
	issuerGoodAddrs = 16
	// issuerGoodAddrTTL is how long a successful authentication exempts
	// its address from the client id's limit.
	issuerGoodAddrTTL = 24 * time.Hour
)

// bucket is a token bucket: burst tokens, refilled at rate per second.
type bucket struct {
	tokens float64
	last   time.Time
}

func (b *bucket) refill(now time.Time, rate float64, burst int) {
	if b.last.IsZero() {
		b.tokens, b.last = float64(burst), now
		return
	}
	if el := now.Sub(b.last).Seconds(); el > 0 {
		b.tokens = math.Min(float64(burst), b.tokens+el*rate)
		b.last = now
	}
}

// take takes one token; when there is none, it says how long until one.
func (b *bucket) take(now time.Time, rate float64, burst int) (time.Duration, bool) {
	b.refill(now, rate, burst)
	if b.tokens >= 1 {
		b.tokens--
		return 0, true
	}
	return time.Duration((1 - b.tokens) / rate * float64(time.Second)), false
}

// give returns a token taken for an attempt that did not fail.
func (b *bucket) give(burst int) { b.tokens = math.Min(float64(burst), b.tokens+1) }

type issuerAddrEntry struct {
	key string
	b   bucket
}

type issuerGoodAddr struct {
	key string
	at  time.Time
}

// issuerClientState is what the limiter keeps of one configured client.
type issuerClientState struct {
	b    bucket
	good []issuerGoodAddr
}

// issuerLimiter holds the buckets. The client table holds configured ids
// only; the address table at most maxAddrs entries, the least recently
// used forgotten first, so that a flood of addresses costs bounded memory.
type issuerLimiter struct {
	clientRate, addrRate float64
	burst, maxAddrs      int

	mu      sync.Mutex
	clients map[string]*issuerClientState
	addrs   map[string]*list.Element
	lru     *list.List // of *issuerAddrEntry, most recent first
}

func newIssuerLimiter(c config.OAuthIssuer) *issuerLimiter {
	def := func(r config.Rate) float64 {
		if r.N == 0 {
			r = config.DefaultIssuerFailures
		}
		return r.PerSecond()
	}
	l := &issuerLimiter{
		clientRate: def(c.ClientFailures), addrRate: def(c.AddressFailures),
		burst: c.FailureBurst, maxAddrs: c.MaxAddresses,
		clients: map[string]*issuerClientState{}, addrs: map[string]*list.Element{}, lru: list.New(),
	}
	if l.burst <= 0 {
		l.burst = config.DefaultIssuerFailureBurst
	}
	if l.maxAddrs <= 0 {
		l.maxAddrs = config.DefaultIssuerMaxAddresses
	}
	return l
}

// attempt is one admitted authentication attempt: the tokens it took.
type attempt struct {
	addr   *issuerAddrEntry
	client *issuerClientState
}

// admit takes a token from the address's bucket and, unless the address
// is one where the client authenticated before, from the client id's
// (client nil: an unknown id, which has no bucket). When one is empty it
// takes nothing and returns how long to wait.
func (l *issuerLimiter) admit(now time.Time, client *issuerClient, remote string) (attempt, time.Duration, bool) {
	key := httpserver.AddressKey(remote)
	l.mu.Lock()
	defer l.mu.Unlock()
	e := l.addrEntry(key)
	wait, ok := e.b.take(now, l.addrRate, l.burst)
	if !ok {
		return attempt{}, wait, false
	}
	a := attempt{addr: e}
	if client == nil {
		return a, 0, true
	}
	cs := l.clients[client.id]
	if cs == nil {
		cs = &issuerClientState{}
		l.clients[client.id] = cs
	}
	if cs.isGood(key, now) {
		return a, 0, true
	}
	if wait, ok := cs.b.take(now, l.clientRate, l.burst); !ok {
		e.b.give(l.burst)
		return attempt{}, wait, false
	}
	a.client = cs
	return a, 0, true
}

// done ends an admitted attempt. A failure keeps its tokens, and reports
// whether it emptied the client id's bucket; any other outcome gives them
// back, and a success remembers the address as one of the client's.
func (l *issuerLimiter) done(a attempt, client *issuerClient, remote string, now time.Time, failed, succeeded bool) (clientEmptied bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if failed {
		return a.client != nil && a.client.b.tokens < 1
	}
	if a.addr != nil {
		a.addr.b.give(l.burst)
	}
	if a.client != nil {
		a.client.b.give(l.burst)
	}
	if succeeded && client != nil {
		if cs := l.clients[client.id]; cs != nil {
			cs.remember(httpserver.AddressKey(remote), now)
		}
	}
	return false
}

// addrEntry returns the entry of key, made and marked most recent; the
// least recent is dropped beyond maxAddrs.
func (l *issuerLimiter) addrEntry(key string) *issuerAddrEntry {
	if el, ok := l.addrs[key]; ok {
		l.lru.MoveToFront(el)
		return el.Value.(*issuerAddrEntry)
	}
	for l.lru.Len() >= l.maxAddrs {
		old := l.lru.Back()
		l.lru.Remove(old)
		delete(l.addrs, old.Value.(*issuerAddrEntry).key)
	}
	e := &issuerAddrEntry{key: key}
	l.addrs[key] = l.lru.PushFront(e)
	return e
}

// addrCount is the number of addresses tracked (tests).
func (l *issuerLimiter) addrCount() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.addrs)
}

func (cs *issuerClientState) isGood(key string, now time.Time) bool {
	for _, g := range cs.good {
		if g.key == key && now.Sub(g.at) < issuerGoodAddrTTL {
			return true
		}
	}
	return false
}

func (cs *issuerClientState) remember(key string, now time.Time) {
	for i := range cs.good {
		if cs.good[i].key == key {
			cs.good[i].at = now
			return
		}
	}
	if len(cs.good) < issuerGoodAddrs {
		cs.good = append(cs.good, issuerGoodAddr{key: key, at: now})
		return
	}
	oldest := 0
	for i := range cs.good {
		if cs.good[i].at.Before(cs.good[oldest].at) {
			oldest = i
		}
	}
	cs.good[oldest] = issuerGoodAddr{key: key, at: now}
}
