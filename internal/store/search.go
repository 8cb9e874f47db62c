package store

import (
	"bytes"
	"context"
	"unicode/utf8"

	"hookd"
)

// Search bounds: a search scans at most SearchScanEvents events, and at
// most SearchScanBytes of their bodies, per call; next continues it.
const (
	SearchScanEvents = 10000
	SearchScanBytes  = 64 << 20
	// MaxSearchLen bounds a search text.
	MaxSearchLen = 256
)

// EventLister is the part of Store a search reads through.
type EventLister interface {
	EventList(ctx context.Context, p *EventListParams) ([]*hookd.Event, string, error)
}

// EventSearch lists the events matching p whose body contains q, a bounded
// scan rather than an index: it reads the events p selects in p's order, at
// most SearchScanEvents of them and SearchScanBytes of their bodies, and
// returns those that match (at most p.Limit, their bodies at most
// p.MaxBodyBytes when set) with the cursor to continue from the last event
// it read. A page may therefore hold fewer matches than asked, none even,
// with a cursor: the scan stopped at its bound, not at the end.
//
// What is searched: bodies that are valid UTF-8, for q as a substring,
// ignoring case (both lower-cased, as bytes.ToLower does). A
// binary body never matches. Headers are not searched. The events come
// with their bodies (WithBody is implied).
func EventSearch(ctx context.Context, st EventLister, p *EventListParams, q string) ([]*hookd.Event, string, error) {
	if q == "" {
		return nil, "", hookd.Errorf(hookd.EInvalid, "empty search text")
	}
	if len(q) > MaxSearchLen || !utf8.ValidString(q) {
		return nil, "", hookd.Errorf(hookd.EInvalid, "search text must be valid UTF-8 of at most %d bytes", MaxSearchLen)
	}
	limit := p.Limit
	if limit <= 0 {
		limit = 50
	}
	limit = min(limit, MaxListLimit)
	needle := bytes.ToLower([]byte(q))
	inner := *p
	inner.WithBody = true
	inner.Limit = 500
	inner.MaxBodyBytes = 4 << 20
	var (
		out                []*hookd.Event
		scanned            int
		scannedBytes, kept int64
		last               int64 // seq of the last event read and settled
	)
	for {
		page, next, err := st.EventList(ctx, &inner)
		if err != nil {
			return nil, "", err
		}
		for _, e := range page {
			match := utf8.Valid(e.Body) && bytes.Contains(bytes.ToLower(e.Body), needle)
			if match && (len(out) == limit || (p.MaxBodyBytes > 0 && len(out) > 0 && kept+int64(len(e.Body)) > p.MaxBodyBytes)) {
				// The page is full: this match begins the next one.
				return out, EncodeCursor(last), nil
			}
			if scanned == SearchScanEvents || scannedBytes >= SearchScanBytes {
				return out, EncodeCursor(last), nil
			}
			scanned++
			scannedBytes += int64(len(e.Body))
			if match {
				out = append(out, e)
				kept += int64(len(e.Body))
			}
			last = e.Seq
		}
		if next == "" {
			return out, "", nil
		}
		inner.After = next
	}
}
