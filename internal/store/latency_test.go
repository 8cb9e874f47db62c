package store_test

import (
	"testing"
	"time"

	"hookd/internal/store"
)

func TestLatencyBucket(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		d    time.Duration
		want int
	}{
		{0, 0}, {5 * time.Millisecond, 0}, {5*time.Millisecond + 1, 1}, {10 * time.Millisecond, 1},
		{99 * time.Millisecond, 4}, {time.Second, 7}, {10 * time.Second, 10}, {10*time.Second + 1, 11}, {time.Hour, 11},
	} {
		if got := store.LatencyBucket(c.d); got != c.want {
			t.Errorf("LatencyBucket(%v): got %d, want %d", c.d, got, c.want)
		}
	}
}

func TestLatencyQuantile(t *testing.T) {
	t.Parallel()
	hist := func(ds ...time.Duration) store.LatencyHistogram {
		var h store.LatencyHistogram
		for _, d := range ds {
			h[store.LatencyBucket(d)]++
		}
		return h
	}
	// 100 attempts: 98 of 3 ms, one of 200 ms, one of 2 s.
	var many []time.Duration
	for range 98 {
		many = append(many, 3*time.Millisecond)
	}
	many = append(many, 200*time.Millisecond, 2*time.Second)
	for _, c := range []struct {
		name   string
		h      store.LatencyHistogram
		q      float64
		want   time.Duration
		wantOK bool
	}{
		{"Empty", store.LatencyHistogram{}, 0.5, 0, false},
		{"One", hist(30 * time.Millisecond), 0.5, 50 * time.Millisecond, true},
		{"MedianOfThree", hist(time.Millisecond, 70*time.Millisecond, 3*time.Second), 0.5, 100 * time.Millisecond, true},
		{"P99OfThree", hist(time.Millisecond, 70*time.Millisecond, 3*time.Second), 0.99, 5 * time.Second, true},
		{"MedianOfMany", hist(many...), 0.5, 5 * time.Millisecond, true},
		{"P99OfMany", hist(many...), 0.99, 250 * time.Millisecond, true},
		{"LongerThanTheLastBound", hist(time.Minute), 0.99, 10 * time.Second, true},
	} {
		t.Run(c.name, func(t *testing.T) {
			got, ok := c.h.Quantile(c.q)
			if got != c.want || ok != c.wantOK {
				t.Errorf("Quantile(%v) of %v: got %v, %v; want %v, %v", c.q, c.h, got, ok, c.want, c.wantOK)
			}
		})
	}
}
