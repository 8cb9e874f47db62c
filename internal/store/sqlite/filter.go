package sqlite

import (
	"context"
	"errors"
	"hash/maphash"
	"math/bits"
	"time"
)

// Most events are new: their provider id is nowhere in the database, and
// their entity key (when they have one) rarely is either. Asking SQLite
// costs a read transaction per event on the acknowledgement path, so the
// log writer first asks two Bloom filters of what the events table holds;
// only a "maybe" goes to SQLite. A filter never forgets a key (deleted and
// expired ones only cost a lookup); it grows by layers, and is made anew,
// from the table, at every start.

// keyFilter is a blocked Bloom filter of (source, key) pairs: each pair
// sets 8 bits within one 512-bit block, so a lookup touches one cache
// line. At 16 bits per expected key, about 0.1% of absent keys answer
// "maybe". One goroutine at a time uses a filter: the log writer (under
// appendMu), or the build that makes it before it is published.
type keyFilter struct {
	blocks   []block
	mask     uint64 // number of blocks - 1
	n        int64
	capacity int64
}

type block [8]uint64

const filterBitsPerKey = 16

// filterSeed is the seed of every filter's hash: the log writer hashes a
// key once, and the hash serves the filter in use and one being built.
var filterSeed = maphash.MakeSeed()

// keyHash is the hash of a (source, key) pair.
func keyHash(source, key string) uint64 {
	var h maphash.Hash
	h.SetSeed(filterSeed)
	h.WriteString(source)
	h.WriteByte(0)
	h.WriteString(key)
	return h.Sum64()
}

func newKeyFilter(capacity int64) *keyFilter {
	capacity = max(capacity, 1<<16)
	nb := uint64(1) << bits.Len64(uint64(capacity*filterBitsPerKey/512))
	return &keyFilter{blocks: make([]block, nb), mask: nb - 1, capacity: capacity}
}

// bitsOf returns the block of hash h and its 8 bits there: the block from
// the low bits, the bits from a remix of the whole hash (9 bits each).
func (f *keyFilter) bitsOf(h uint64) (*block, [8]uint16) {
	g := h ^ h>>31
	g *= 0x7FB5D329728EA185
	g ^= g >> 27
	g *= 0x81DADEF4BC2DD44D
	g ^= g >> 33
	var out [8]uint16
	for i := range 7 {
		out[i] = uint16(g >> (9 * i) & 511)
	}
	out[7] = uint16(h >> 55)
	return &f.blocks[h&f.mask], out
}

func (f *keyFilter) add(h uint64) {
	b, bs := f.bitsOf(h)
	for _, x := range bs {
		b[x>>6] |= 1 << (x & 63)
	}
	f.n++
}

// mayContain is false only when the hash was never added.
func (f *keyFilter) mayContain(h uint64) bool {
	b, bs := f.bitsOf(h)
	for _, x := range bs {
		if b[x>>6]&(1<<(x&63)) == 0 {
			return false
		}
	}
	return true
}

// full reports whether the filter holds as many keys as it was sized for.
func (f *keyFilter) full() bool { return f.n >= f.capacity }

// layered is a filter that grows: when its newest layer holds as many
// keys as it was sized for, a layer twice as large takes the adds, and a
// lookup asks every layer. Only the log writer uses it (under appendMu).
type layered struct {
	layers []*keyFilter
}

func newLayered(capacity int64) *layered {
	return &layered{layers: []*keyFilter{newKeyFilter(max(capacity, filterMinKeys))}}
}

// filterMinKeys is the smallest filter made: 2 MiB.
const filterMinKeys = 1 << 20

func (l *layered) add(h uint64) {
	last := l.layers[len(l.layers)-1]
	if last.full() {
		last = newKeyFilter(2 * last.capacity)
		l.layers = append(l.layers, last)
	}
	last.add(h)
}

func (l *layered) mayContain(h uint64) bool {
	for _, f := range l.layers {
		if f.mayContain(h) {
			return true
		}
	}
	return false
}

// filters are the log writer's two filters: provider ids (dedupe keys)
// and entity keys of events with a timestamp.
type filters struct {
	dedupe *layered
	keys   *layered
}

// filterAdd records a new event's keys (their hashes) in the filters in
// use, and for the ones being built. The log writer calls it, under
// appendMu.
func (s *Store) filterAdd(dedupeHash, keyHash uint64, hasDedupe, hasKey bool) {
	fs := s.filt.Load()
	if fs != nil {
		if hasDedupe {
			fs.dedupe.add(dedupeHash)
		}
		if hasKey {
			fs.keys.add(keyHash)
		}
	}
	if s.building {
		if hasDedupe {
			s.buildDedupe = append(s.buildDedupe, dedupeHash)
		}
		if hasKey {
			s.buildKeys = append(s.buildKeys, keyHash)
		}
	}
}

// startFilterBuild builds the filters in the background at start, sized
// for twice what the database holds. The log writer asks SQLite alone
// until they are complete. Call it with appendMu held: from then on the
// writer also keeps the hashes of the keys it logs for the new filters,
// and the build waits until everything logged before is indexed, so that
// its scan of the database misses nothing. (Open calls it once the log is
// replayed: everything logged before is synced and indexed.)
func (s *Store) startFilterBuild() {
	s.building = true
	target := s.logged.Load()
	s.filterWG.Add(1)
	go func() {
		defer s.filterWG.Done()
		fs, err := s.fillFilters(target)
		s.appendMu.Lock()
		defer s.appendMu.Unlock()
		if err == nil {
			for _, h := range s.buildDedupe {
				fs.dedupe.add(h)
			}
			for _, h := range s.buildKeys {
				fs.keys.add(h)
			}
			s.filt.Store(fs)
		} else if !errors.Is(err, context.Canceled) {
			s.log.Warn("build the dedupe filters (lookups go to the database meanwhile)", "err", err)
		}
		s.building, s.buildDedupe, s.buildKeys = false, nil, nil
	}()
}

// fillFilters makes filters of every key the events table holds, once
// the index holds everything logged up to target.
func (s *Store) fillFilters(target uint64) (*filters, error) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		select {
		case <-s.idxStop:
			cancel()
		case <-ctx.Done():
		}
	}()
	for s.indexed.Load() < target {
		s.idxMu.Lock()
		done, failing := s.idxDone, s.idxErr
		s.idxMu.Unlock()
		if failing != nil && s.indexed.Load() < target {
			select {
			case <-time.After(100 * time.Millisecond):
			case <-ctx.Done():
				return nil, ctx.Err()
			}
			continue
		}
		select {
		case <-done:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	fs := &filters{}
	for _, q := range []struct {
		f          **layered
		count, sql string
	}{
		{&fs.dedupe, `SELECT count(*) FROM events WHERE dedupe_key IS NOT NULL`,
			`SELECT source, dedupe_key FROM events WHERE dedupe_key IS NOT NULL`},
		{&fs.keys, `SELECT count(*) FROM events WHERE key IS NOT NULL AND occurred_at IS NOT NULL`,
			`SELECT source, key FROM events WHERE key IS NOT NULL AND occurred_at IS NOT NULL`},
	} {
		var n int64
		if err := s.r.QueryRowContext(ctx, q.count).Scan(&n); err != nil {
			return nil, err
		}
		f := newLayered(2 * n)
		rows, err := s.r.QueryContext(ctx, q.sql)
		if err != nil {
			return nil, err
		}
		var source, key string
		for rows.Next() {
			if err := rows.Scan(&source, &key); err != nil {
				rows.Close()
				return nil, err
			}
			f.add(keyHash(source, key))
		}
		if err := rows.Close(); err != nil {
			return nil, err
		}
		if err := rows.Err(); err != nil {
			return nil, err
		}
		*q.f = f
	}
	return fs, nil
}
