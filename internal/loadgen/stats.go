package loadgen

import (
	"fmt"
	"math"
	"slices"
	"time"
)

// Summary describes a set of latencies. Every latency is kept, so the
// percentiles are exact (nearest rank), not estimated from buckets.
type Summary struct {
	// Count is the number of latencies.
	Count int
	// P50 is the median, by nearest rank.
	P50 time.Duration
	// P99 is the 99th percentile, by nearest rank.
	P99 time.Duration
	// Max is the largest latency.
	Max time.Duration
	// Mean is the arithmetic mean.
	Mean time.Duration
}

// Percentile returns the p-th percentile (0 < p ≤ 100) of sorted, an
// ascending slice, by nearest rank: the smallest value that at least p
// percent of the values are less than or equal to. It returns 0 for an
// empty slice; p ≤ 0 gives the minimum and p ≥ 100 the maximum.
func Percentile(sorted []time.Duration, p float64) time.Duration {
	n := len(sorted)
	if n == 0 {
		return 0
	}
	rank := int(math.Ceil(p * float64(n) / 100))
	rank = min(max(rank, 1), n)
	return sorted[rank-1]
}

// Summarize sorts lat in place and summarises it.
func Summarize(lat []time.Duration) Summary {
	if len(lat) == 0 {
		return Summary{}
	}
	slices.Sort(lat)
	var sum time.Duration
	for _, d := range lat {
		sum += d
	}
	return Summary{
		Count: len(lat),
		P50:   Percentile(lat, 50),
		P99:   Percentile(lat, 99),
		Max:   lat[len(lat)-1],
		Mean:  sum / time.Duration(len(lat)),
	}
}

// FormatLatency formats d in milliseconds with microsecond resolution,
// such as "1.234ms".
func FormatLatency(d time.Duration) string {
	us := d.Round(time.Microsecond).Microseconds()
	return fmt.Sprintf("%d.%03dms", us/1000, us%1000)
}
