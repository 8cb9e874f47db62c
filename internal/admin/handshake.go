package admin

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"hookd/internal/engine"
	"hookd/internal/httpserver"
	"hookd/internal/store"
)

// HandshakeSettingPrefix prefixes the setting that keeps a source's last
// answered handshake: "handshake:<source>"; HandshakeRefusedSettingPrefix
// the one that keeps its last refused handshake. They are kept apart:
// anyone can send a handshake that is refused (an unsigned GET with a
// wrong token), and it must not hide the last one the provider passed.
const (
	HandshakeSettingPrefix        = "handshake:"
	HandshakeRefusedSettingPrefix = "handshake_refused:"
)

// LastHandshake is a source's last handshake (a provider's verification
// request, never stored as an event) as the API shows it.
type LastHandshake struct {
	// Kind names the handshake, such as "slack.url_verification".
	Kind string `json:"kind"`
	// Status is the status hookd answered.
	Status int       `json:"status"`
	At     time.Time `json:"at"`
	// Error is why it was refused, as the provider was told; empty when
	// it was answered.
	Error string `json:"error,omitempty"`
	// Refused: the handshake was refused (kept as the source's last
	// refused handshake, apart from the last answered one).
	Refused bool `json:"-"`
}

// HandshakeStore is the part of the store the handshake log uses.
type HandshakeStore interface {
	SettingGet(ctx context.Context, name string) (string, error)
	SettingPut(ctx context.Context, name, value string) error
}

// HandshakeLogOptions configures a HandshakeLog.
type HandshakeLogOptions struct {
	// Interval is the least time between two writes of one source's
	// last handshake; those in between are folded into the next write.
	// Default 1s.
	Interval time.Duration
	// Queue bounds the handshakes waiting to be written; beyond it they
	// are dropped (and counted). Default 256.
	Queue int
	// Now is the clock; time.Now when nil.
	Now func() time.Time
}

// HandshakeLog keeps each source's last answered and last refused
// handshake, in memory and in the store (settings "handshake:<source>"
// and "handshake_refused:<source>"), so that every replica on a shared
// database shows them. Record never blocks ingest: writes are made by one
// goroutine from a bounded queue, at most one per source per Interval,
// and dropped when the queue is full.
type HandshakeLog struct {
	st       HandshakeStore
	log      *slog.Logger
	interval time.Duration
	now      func() time.Time
	queue    chan handshakeEntry
	dropped  atomic.Int64

	mu     sync.Mutex
	latest map[string]LastHandshake // what this process saw last, per setting name

	startOnce, stopOnce sync.Once
	stop                chan struct{}
	done                chan struct{}
}

// handshakeEntry is a handshake to write under the setting key.
type handshakeEntry struct {
	key string
	h   LastHandshake
}

// handshakeKey is the setting that keeps source's last handshake like h.
func handshakeKey(source string, refused bool) string {
	if refused {
		return HandshakeRefusedSettingPrefix + source
	}
	return HandshakeSettingPrefix + source
}

// NewHandshakeLog returns a log writing to st; Start it.
func NewHandshakeLog(st HandshakeStore, log *slog.Logger, o HandshakeLogOptions) *HandshakeLog {
	l := &HandshakeLog{st: st, log: log, interval: o.Interval, now: o.Now, latest: map[string]LastHandshake{},
		stop: make(chan struct{}), done: make(chan struct{})}
	if l.interval <= 0 {
		l.interval = time.Second
	}
	if o.Queue <= 0 {
		o.Queue = 256
	}
	if l.now == nil {
		l.now = time.Now
	}
	l.queue = make(chan handshakeEntry, o.Queue)
	return l
}

// Record notes source's handshake, answered or refused (h.Refused); it
// never blocks.
func (l *HandshakeLog) Record(source string, h LastHandshake) {
	h.At = h.At.UTC()
	key := handshakeKey(source, h.Refused)
	l.mu.Lock()
	if old, ok := l.latest[key]; !ok || !h.At.Before(old.At) {
		l.latest[key] = h
	}
	l.mu.Unlock()
	select {
	case l.queue <- handshakeEntry{key, h}:
	default:
		l.dropped.Add(1)
	}
}

// Dropped counts the handshakes not written because the queue was full.
func (l *HandshakeLog) Dropped() int64 { return l.dropped.Load() }

// Last returns source's last answered handshake: the newer of what this
// process saw and what the store holds (another replica's); nil when
// none.
func (l *HandshakeLog) Last(ctx context.Context, source string) (*LastHandshake, error) {
	return l.last(ctx, handshakeKey(source, false))
}

// LastRefused returns source's last refused handshake, as Last does.
func (l *HandshakeLog) LastRefused(ctx context.Context, source string) (*LastHandshake, error) {
	return l.last(ctx, handshakeKey(source, true))
}

func (l *HandshakeLog) last(ctx context.Context, key string) (*LastHandshake, error) {
	l.mu.Lock()
	mem, inMem := l.latest[key]
	l.mu.Unlock()
	stored, err := l.read(ctx, key)
	switch {
	case err != nil && inMem:
		return &mem, err
	case err != nil:
		return nil, err
	case stored != nil && (!inMem || stored.At.After(mem.At)):
		return stored, nil
	case inMem:
		return &mem, nil
	}
	return nil, nil
}

// read reads the handshake stored under the setting key.
func (l *HandshakeLog) read(ctx context.Context, key string) (*LastHandshake, error) {
	v, err := l.st.SettingGet(ctx, key)
	if errors.Is(err, store.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read the handshake setting %s: %w", key, err)
	}
	var h LastHandshake
	if err := json.Unmarshal([]byte(v), &h); err != nil {
		return nil, fmt.Errorf("decode the handshake setting %s: %w", key, err)
	}
	h.Refused = strings.HasPrefix(key, HandshakeRefusedSettingPrefix)
	if !h.Refused && h.Error != "" {
		// Written before refused handshakes were kept apart: not an
		// answered one.
		return nil, nil
	}
	return &h, nil
}

// Start starts the writer.
func (l *HandshakeLog) Start(context.Context) error {
	l.startOnce.Do(func() { go l.run() })
	return nil
}

// Stop writes what waits, within ctx, and stops the writer. It is
// idempotent; a log never started stops at once.
func (l *HandshakeLog) Stop(ctx context.Context) error {
	started := true
	l.startOnce.Do(func() { started = false; close(l.done) })
	l.stopOnce.Do(func() { close(l.stop) })
	if !started {
		return nil
	}
	select {
	case <-l.done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// run writes the queued handshakes: each setting's newest, at most once an
// interval. The pending map holds one entry per setting.
func (l *HandshakeLog) run() {
	defer close(l.done)
	pending := map[string]LastHandshake{}
	written := map[string]time.Time{} // when each source was last written
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	add := func(e handshakeEntry) {
		if old, ok := pending[e.key]; !ok || !e.h.At.Before(old.At) {
			pending[e.key] = e.h
		}
	}
	for {
		select {
		case e := <-l.queue:
			add(e)
		case <-timer.C:
		case <-l.stop:
		drain:
			for {
				select {
				case e := <-l.queue:
					add(e)
				default:
					break drain
				}
			}
			for src, h := range pending {
				l.write(src, h)
			}
			return
		}
		now := l.now()
		var next time.Duration
		for src, h := range pending {
			if wait := written[src].Add(l.interval).Sub(now); wait > 0 {
				if next == 0 || wait < next {
					next = wait
				}
				continue
			}
			l.write(src, h)
			written[src] = l.now()
			delete(pending, src)
		}
		for src, at := range written {
			if _, ok := pending[src]; !ok && now.Sub(at) >= l.interval {
				delete(written, src)
			}
		}
		if next > 0 {
			timer.Reset(next)
		}
	}
}

// write stores h under the setting key, unless the store holds a newer
// one (another replica's).
func (l *HandshakeLog) write(key string, h LastHandshake) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	err := func() error {
		if cur, err := l.read(ctx, key); err == nil && cur != nil && cur.At.After(h.At) {
			return nil
		}
		b, err := json.Marshal(h)
		if err != nil {
			return err
		}
		return l.st.SettingPut(ctx, key, string(b))
	}()
	if err != nil && l.log != nil {
		l.log.Warn("could not store a source's last handshake", "setting", key, "err", err)
	}
}

// sourceWithHandshake is a source as GET /api/v1/sources/{name} shows it.
type sourceWithHandshake struct {
	engine.SourceView
	// LastHandshake is the last answered handshake, null until the first.
	LastHandshake *LastHandshake `json:"last_handshake"`
	// LastRefusedHandshake is the last refused handshake, null until the
	// first.
	LastRefusedHandshake *LastHandshake `json:"last_refused_handshake"`
}

// getSource answers one source with its last answered and last refused
// handshakes. A store that cannot be read leaves what this process saw.
func (a *API) getSource(w http.ResponseWriter, r *http.Request) error {
	name := r.PathValue("name")
	v, err := a.eng.Source(name)
	if err != nil {
		return err
	}
	out := sourceWithHandshake{SourceView: v}
	if a.handshakes != nil {
		out.LastHandshake, err = a.handshakes.Last(r.Context(), name)
		if err != nil && a.log != nil {
			a.log.Warn("could not read a source's last handshake", "source", name, "err", err)
		}
		out.LastRefusedHandshake, err = a.handshakes.LastRefused(r.Context(), name)
		if err != nil && a.log != nil {
			a.log.Warn("could not read a source's last refused handshake", "source", name, "err", err)
		}
	}
	httpserver.WriteJSON(w, http.StatusOK, out)
	return nil
}
