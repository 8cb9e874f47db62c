package engine

import (
	"context"
	"errors"
	"slices"
	"strings"
	"sync"
	"time"

	"hookd"
	"hookd/internal/store"
)

// unrecorded is what a single process knows of the deliveries it routed
// that have no row yet: fresh work gets its row when its first attempt
// ends (docs/DELIVERY.md, row writes), which may be long after its event
// was acknowledged (an attempt that blocks). The listings merge them in
// (DeliveryList, DeliveryListByEvent, DeliveryGet), so that a delivery is
// listed, pending, from the moment its event is acknowledged. On
// PostgreSQL every delivery is stored with its event and this stays
// empty.
type unrecorded struct {
	mu   sync.Mutex
	byID map[string]*unrecordedDelivery
	// handed counts the events OnCommit handed to routing, routed those
	// routing is done with; moved is closed (and replaced) when routed
	// moves.
	handed, routed int64
	moved          chan struct{}
	// stopped: routing has stopped, nothing is waited for any more.
	stopped bool
}

// unrecordedDelivery is a routed delivery with no row, and what the
// listings filter it on.
type unrecordedDelivery struct {
	d        store.Delivery
	source   string
	typ      string
	received time.Time
}

func newUnrecorded() *unrecorded {
	return &unrecorded{byID: map[string]*unrecordedDelivery{}, moved: make(chan struct{})}
}

// handedOver counts n events handed to routing (before their ingest is
// answered).
func (u *unrecorded) handedOver(n int) {
	u.mu.Lock()
	u.handed += int64(n)
	u.mu.Unlock()
}

// add records ds, the deliveries routing made of ev, before they are
// handed to their dispatchers.
func (u *unrecorded) add(ev *hookd.Event, ds []*store.Delivery, now time.Time) {
	if len(ds) == 0 {
		return
	}
	u.mu.Lock()
	defer u.mu.Unlock()
	for _, d := range ds {
		row := *d
		row.Status, row.CreatedAt, row.UpdatedAt, row.NextAttemptAt = store.StatusPending, now, now, now
		u.byID[d.ID] = &unrecordedDelivery{d: row, source: ev.Source, typ: ev.Type, received: ev.ReceivedAt}
	}
}

// routedOne counts one event routing is done with.
func (u *unrecorded) routedOne() {
	u.mu.Lock()
	u.routed++
	close(u.moved)
	u.moved = make(chan struct{})
	u.mu.Unlock()
}

// stop tells the waiters that routing has stopped.
func (u *unrecorded) stop() {
	u.mu.Lock()
	u.stopped = true
	close(u.moved)
	u.moved = make(chan struct{})
	u.mu.Unlock()
}

// recorded forgets a delivery once a row of it is committed.
func (u *unrecorded) recorded(id string) {
	u.mu.Lock()
	delete(u.byID, id)
	u.mu.Unlock()
}

// caughtUp waits until routing is done with every event handed over
// when it was called: every delivery of an acknowledged event is then
// recorded here or in the store.
func (u *unrecorded) caughtUp(ctx context.Context) error {
	u.mu.Lock()
	target := u.handed
	for u.routed < target && !u.stopped {
		moved := u.moved
		u.mu.Unlock()
		select {
		case <-moved:
		case <-ctx.Done():
			return ctx.Err()
		}
		u.mu.Lock()
	}
	u.mu.Unlock()
	return nil
}

// matching returns copies of the deliveries p selects (its cursor
// included), in listing order.
func (u *unrecorded) matching(p *store.DeliveryListParams, afterSeq int64, afterDest string, after bool) []*store.Delivery {
	if p.Status != "" && p.Status != store.StatusPending {
		return nil
	}
	u.mu.Lock()
	var out []*store.Delivery
	for _, x := range u.byID {
		d := &x.d
		switch {
		case after && (d.EventSeq > afterSeq || d.EventSeq == afterSeq && d.Destination <= afterDest),
			p.Destination != "" && d.Destination != p.Destination,
			p.EventID != "" && d.EventID != p.EventID,
			p.Source != "" && x.source != p.Source,
			p.EventType != "" && x.typ != p.EventType,
			!p.Since.IsZero() && x.received.Before(p.Since),
			!p.Until.IsZero() && !x.received.Before(p.Until):
			continue
		}
		c := *d
		out = append(out, &c)
	}
	u.mu.Unlock()
	slices.SortFunc(out, listingOrder)
	return out
}

// listingOrder is the order of DeliveryList: newest event first, then by
// destination.
func listingOrder(a, b *store.Delivery) int {
	switch {
	case a.EventSeq > b.EventSeq:
		return -1
	case a.EventSeq < b.EventSeq:
		return 1
	}
	return strings.Compare(a.Destination, b.Destination)
}

// DeliveryList lists deliveries as the store's DeliveryList does, with the
// deliveries routed in this process that have no row yet among them
// (pending, attempt count 0).
func (e *Engine) DeliveryList(ctx context.Context, p *store.DeliveryListParams) ([]*store.Delivery, string, error) {
	if e.cl != nil {
		return e.st.DeliveryList(ctx, p)
	}
	var (
		afterSeq  int64
		afterDest string
	)
	if p.After != "" {
		var err error
		if afterSeq, afterDest, err = store.DecodeDeliveryCursor(p.After); err != nil {
			return nil, "", err
		}
	}
	if err := e.unrec.caughtUp(ctx); err != nil {
		return nil, "", err
	}
	// Memory first, the store second: a delivery leaves memory only once
	// its row is committed, so it is seen in one or the other.
	mem := e.unrec.matching(p, afterSeq, afterDest, p.After != "")
	stored, next, err := e.st.DeliveryList(ctx, p)
	if err != nil || len(mem) == 0 {
		return stored, next, err
	}
	limit := p.Limit
	if limit <= 0 {
		limit = 50
	}
	limit = min(limit, store.MaxListLimit)
	seen := make(map[string]bool, len(stored))
	for _, d := range stored {
		seen[d.ID] = true
	}
	out := stored
	// The first limit of both in order are the page: when the store cut
	// its page short, it holds limit rows up to its last one, so nothing
	// of memory after that row is among them.
	for _, d := range mem {
		if !seen[d.ID] {
			out = append(out, d)
		}
	}
	slices.SortStableFunc(out, listingOrder)
	if len(out) > limit || next != "" {
		out = out[:min(len(out), limit)]
		last := out[len(out)-1]
		next = store.EncodeDeliveryCursor(last.EventSeq, last.Destination)
	}
	return out, next, nil
}

// DeliveryListByEvent returns an event's deliveries as the store's
// DeliveryListByEvent does, with those routed in this process that have
// no row yet (pending, no attempt).
func (e *Engine) DeliveryListByEvent(ctx context.Context, eventID string) ([]*store.Delivery, error) {
	if e.cl != nil {
		return e.st.DeliveryListByEvent(ctx, eventID)
	}
	if err := e.unrec.caughtUp(ctx); err != nil {
		return nil, err
	}
	mem := e.unrec.matching(&store.DeliveryListParams{EventID: eventID}, 0, "", false)
	stored, err := e.st.DeliveryListByEvent(ctx, eventID)
	if err != nil || len(mem) == 0 {
		return stored, err
	}
	seen := make(map[string]bool, len(stored))
	for _, d := range stored {
		seen[d.ID] = true
	}
	for _, d := range mem {
		if !seen[d.ID] {
			d.AttemptLog = []*store.Attempt{}
			stored = append(stored, d)
		}
	}
	slices.SortStableFunc(stored, func(a, b *store.Delivery) int { return strings.Compare(a.Destination, b.Destination) })
	return stored, nil
}

// DeliveryGet returns one delivery as the store's DeliveryGet does, or
// the one routed in this process that has no row yet.
func (e *Engine) DeliveryGet(ctx context.Context, id string) (*store.Delivery, error) {
	if e.cl == nil {
		if err := e.unrec.caughtUp(ctx); err != nil {
			return nil, err
		}
	}
	var mem *store.Delivery
	if e.cl == nil {
		e.unrec.mu.Lock()
		if x := e.unrec.byID[id]; x != nil {
			c := x.d
			c.AttemptLog = []*store.Attempt{}
			mem = &c
		}
		e.unrec.mu.Unlock()
	}
	d, err := e.st.DeliveryGet(ctx, id)
	if errors.Is(err, store.ErrNotFound) && mem != nil {
		return mem, nil
	}
	return d, err
}
