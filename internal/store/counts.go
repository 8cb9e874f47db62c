package store

import (
	"context"
	"time"
)

// AttemptCounts are the recorded outcomes of a destination's attempts:
// each write marked DeliveryWrite.Outcome that applied counts once in
// Attempts and, by the delivery's status it wrote, once in Succeeded,
// Retried or Failed.
type AttemptCounts struct {
	Attempts  int64 `json:"attempts"`
	Succeeded int64 `json:"succeeded"`
	Retried   int64 `json:"retried"`
	Failed    int64 `json:"failed"`
}

// Add adds the outcome of one attempt whose delivery has status after it.
func (c *AttemptCounts) Add(status string) {
	c.Attempts++
	switch status {
	case StatusSucceeded:
		c.Succeeded++
	case StatusRetrying:
		c.Retried++
	case StatusFailed:
		c.Failed++
	}
}

// Plus returns the sum of c and o.
func (c AttemptCounts) Plus(o AttemptCounts) AttemptCounts {
	return AttemptCounts{Attempts: c.Attempts + o.Attempts, Succeeded: c.Succeeded + o.Succeeded,
		Retried: c.Retried + o.Retried, Failed: c.Failed + o.Failed}
}

// AttemptMinute is the attempt counts of one destination in one minute
// (of the outcomes' Delivery.UpdatedAt), summed over every process on the
// store.
type AttemptMinute struct {
	Destination string
	// Minute is the start of the minute, UTC (of the step, when the
	// listing has one).
	Minute time.Time
	AttemptCounts
	// Latency counts the attempts by duration.
	Latency LatencyHistogram
}

// MinuteCounts are the counts of one destination's outcomes in one minute.
type MinuteCounts struct {
	AttemptCounts
	Latency LatencyHistogram
}

// AttemptCountListParams selects per-minute attempt counts.
type AttemptCountListParams struct {
	// Destination keeps one destination's minutes; "" keeps every one.
	Destination string
	// Since and Until bound the minutes (inclusive, exclusive): a minute
	// is listed when its start is in [Since, Until). Zero means open.
	Since, Until time.Time
	// Step, a whole number of minutes (1 to 1440; 0 is one), sums the
	// minutes of each step (steps start at multiples of Step since the
	// Unix epoch): a row per destination and step.
	Step time.Duration
	// Limit bounds the rows returned (default and cap
	// MaxAttemptMinutes).
	Limit int
}

// StepMinutes is the whole number of minutes of step, clamped to 1..1440.
func StepMinutes(step time.Duration) int64 {
	m := int64(step / time.Minute)
	return min(max(m, 1), 1440)
}

// MaxAttemptMinutes caps an AttemptCountList: a week of minutes of one
// destination, and then some.
const MaxAttemptMinutes = 20000

// CountOutcomes sums the outcomes among writes whose applied[i] is true
// (DeliveryWrite.Outcome set), by destination and by destination and
// minute (unix seconds of the minute's start, from Delivery.UpdatedAt,
// now when zero). Drivers call it in DeliveryWriteMany.
//
// The duration of an attempt, counted in its minute's Latency, is that of
// the write's Attempt, else Delivery.LastDuration.
func CountOutcomes(writes []*DeliveryWrite, applied func(i int) bool, now time.Time) (totals map[string]AttemptCounts, minutes map[string]map[int64]MinuteCounts) {
	for i, w := range writes {
		if !w.Outcome || !applied(i) {
			continue
		}
		if totals == nil {
			totals, minutes = map[string]AttemptCounts{}, map[string]map[int64]MinuteCounts{}
		}
		d := w.Delivery
		at := d.UpdatedAt
		if at.IsZero() {
			at = now
		}
		m := at.Truncate(time.Minute).Unix()
		c := totals[d.Destination]
		c.Add(d.Status)
		totals[d.Destination] = c
		if minutes[d.Destination] == nil {
			minutes[d.Destination] = map[int64]MinuteCounts{}
		}
		mc := minutes[d.Destination][m]
		mc.Add(d.Status)
		dur := d.LastDuration
		if w.Attempt != nil {
			dur = w.Attempt.Duration
		}
		mc.Latency[LatencyBucket(dur)]++
		minutes[d.Destination][m] = mc
	}
	return totals, minutes
}

// LatencyBounds are the upper bounds (inclusive) of the latency buckets but
// the last, which holds every longer attempt: a log scale, 1-2.5-5 per
// decade, from 5 ms to 10 s.
var LatencyBounds = [LatencyBuckets - 1]time.Duration{
	5 * time.Millisecond, 10 * time.Millisecond, 25 * time.Millisecond, 50 * time.Millisecond,
	100 * time.Millisecond, 250 * time.Millisecond, 500 * time.Millisecond, time.Second,
	2500 * time.Millisecond, 5 * time.Second, 10 * time.Second,
}

// LatencyBuckets is how many buckets a LatencyHistogram has.
const LatencyBuckets = 12

// LatencyHistogram counts attempts by duration: bucket i holds those up to
// LatencyBounds[i] and above the bound before; the last bucket those above
// the last bound.
type LatencyHistogram [LatencyBuckets]int64

// LatencyBucket is the bucket of an attempt that took d.
func LatencyBucket(d time.Duration) int {
	for i, b := range LatencyBounds {
		if d <= b {
			return i
		}
	}
	return LatencyBuckets - 1
}

// Plus returns the sum of h and o.
func (h LatencyHistogram) Plus(o LatencyHistogram) LatencyHistogram {
	for i := range h {
		h[i] += o[i]
	}
	return h
}

// Quantile estimates the q-quantile (0 < q <= 1) of the durations counted:
// the upper bound of the bucket holding it, so that the true value is at
// most the estimate and above the bound below (the last bucket answers its
// lower bound, the last of LatencyBounds: "10 s or more"). ok is false
// when nothing was counted.
func (h LatencyHistogram) Quantile(q float64) (d time.Duration, ok bool) {
	var n int64
	for _, c := range h {
		n += c
	}
	if n == 0 {
		return 0, false
	}
	// The rank of the quantile, 1-based: the smallest r with r >= q*n.
	rank := int64(q * float64(n))
	if float64(rank) < q*float64(n) {
		rank++
	}
	rank = max(rank, 1)
	var seen int64
	for i, c := range h {
		seen += c
		if seen >= rank {
			if i == LatencyBuckets-1 {
				break
			}
			return LatencyBounds[i], true
		}
	}
	return LatencyBounds[len(LatencyBounds)-1], true
}

// EventMinute is the count of the events of one source received in one
// minute (of Event.ReceivedAt), summed over every process on the store.
type EventMinute struct {
	Source string
	// Minute is the start of the minute (of the step, when the listing
	// has one), UTC.
	Minute time.Time
	// Events counts the events stored: a duplicate (an event's id
	// received again within its dedupe window) is not counted.
	Events int64
}

// EventCountListParams selects per-minute event counts.
type EventCountListParams struct {
	// Source keeps one source's minutes; "" keeps every one.
	Source string
	// Since and Until bound the minutes as AttemptCountListParams does.
	Since, Until time.Time
	// Step sums the minutes of each step, as AttemptCountListParams.Step.
	Step time.Duration
	// Limit bounds the rows returned (default and cap
	// MaxAttemptMinutes).
	Limit int
}

// EventCounter is the per-minute event counts of a store: every event
// EventInsertMany stores is counted, once, in the transaction that
// stores it.
type EventCounter interface {
	// EventCountList returns the per-minute event counts p selects,
	// oldest minute first, then by source.
	EventCountList(ctx context.Context, p *EventCountListParams) ([]*EventMinute, error)
	// EventCountPrune deletes the per-minute event counts of the minutes
	// that start before before and returns how many rows it deleted.
	EventCountPrune(ctx context.Context, before time.Time) (int64, error)
}

// Rows is what ScanMinutes reads: *sql.Rows and pgx.Rows both are.
type Rows interface {
	Next() bool
	Scan(dest ...any) error
	Err() error
}

// ScanMinutes reads the rows of a count listing, each (key, minute as a
// unix second, counts…), into values made by fields, which returns a new
// value, where its key goes, where its counts go and where its minute
// goes. Both drivers list their event and attempt minutes with it.
func ScanMinutes[T any](rows Rows, fields func() (v *T, key any, counts []any, minute *time.Time)) ([]*T, error) {
	var out []*T
	for rows.Next() {
		v, key, counts, minute := fields()
		var sec int64
		if err := rows.Scan(append([]any{key, &sec}, counts...)...); err != nil {
			return nil, err
		}
		*minute = time.Unix(sec, 0).UTC()
		out = append(out, v)
	}
	return out, rows.Err()
}

// AttemptMinuteFields is ScanMinutes's fields for attempt minutes.
func AttemptMinuteFields() (*AttemptMinute, any, []any, *time.Time) {
	m := new(AttemptMinute)
	counts := []any{&m.Attempts, &m.Succeeded, &m.Retried, &m.Failed}
	for i := range m.Latency {
		counts = append(counts, &m.Latency[i])
	}
	return m, &m.Destination, counts, &m.Minute
}

// EventMinuteFields is ScanMinutes's fields for event minutes.
func EventMinuteFields() (*EventMinute, any, []any, *time.Time) {
	m := new(EventMinute)
	return m, &m.Source, []any{&m.Events}, &m.Minute
}
