package store

import "time"

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
	// Minute is the start of the minute, UTC.
	Minute time.Time
	AttemptCounts
}

// AttemptCountListParams selects per-minute attempt counts.
type AttemptCountListParams struct {
	// Destination keeps one destination's minutes; "" keeps every one.
	Destination string
	// Since and Until bound the minutes (inclusive, exclusive): a minute
	// is listed when its start is in [Since, Until). Zero means open.
	Since, Until time.Time
	// Limit bounds the rows returned (default and cap
	// MaxAttemptMinutes).
	Limit int
}

// MaxAttemptMinutes caps an AttemptCountList: a week of minutes of one
// destination, and then some.
const MaxAttemptMinutes = 20000

// CountOutcomes sums the outcomes among writes whose applied[i] is true
// (DeliveryWrite.Outcome set), by destination and by destination and
// minute (unix seconds of the minute's start, from Delivery.UpdatedAt,
// now when zero). Drivers call it in DeliveryWriteMany.
func CountOutcomes(writes []*DeliveryWrite, applied func(i int) bool, now time.Time) (totals map[string]AttemptCounts, minutes map[string]map[int64]AttemptCounts) {
	for i, w := range writes {
		if !w.Outcome || !applied(i) {
			continue
		}
		if totals == nil {
			totals, minutes = map[string]AttemptCounts{}, map[string]map[int64]AttemptCounts{}
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
			minutes[d.Destination] = map[int64]AttemptCounts{}
		}
		mc := minutes[d.Destination][m]
		mc.Add(d.Status)
		minutes[d.Destination][m] = mc
	}
	return totals, minutes
}
