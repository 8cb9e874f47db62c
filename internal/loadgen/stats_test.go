package loadgen

import (
	"math"
	"testing"
	"time"
)

func TestPercentile(t *testing.T) {
	t.Parallel()
	hundred := make([]time.Duration, 100)
	for i := range hundred {
		hundred[i] = time.Duration(i+1) * time.Microsecond
	}
	tests := []struct {
		name   string
		sorted []time.Duration
		p      float64
		want   time.Duration
	}{
		{"Empty", nil, 50, 0},
		{"OneValue", []time.Duration{7}, 99, 7},
		{"MedianOdd", []time.Duration{1, 2, 3}, 50, 2},
		{"MedianEven", []time.Duration{1, 2, 3, 4}, 50, 2},
		{"P50Of100", hundred, 50, 50 * time.Microsecond},
		{"P99Of100", hundred, 99, 99 * time.Microsecond},
		{"P100Of100", hundred, 100, 100 * time.Microsecond},
		{"P99OfTen", []time.Duration{1, 2, 3, 4, 5, 6, 7, 8, 9, 10}, 99, 10},
		{"P0IsMin", []time.Duration{3, 4}, 0, 3},
		{"AboveHundredIsMax", []time.Duration{3, 4}, 150, 4},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if got := Percentile(tt.sorted, tt.p); got != tt.want {
				t.Errorf("Percentile(p=%v) = %v, want %v", tt.p, got, tt.want)
			}
		})
	}
}

func TestPercentileOfTwoThousand(t *testing.T) {
	t.Parallel()
	// 1980 fast answers and 20 slow ones: the p99 is the last fast one,
	// because exactly 99% are at or below it.
	lat := make([]time.Duration, 0, 2000)
	for i := range 2000 {
		if i%100 == 0 {
			lat = append(lat, time.Second+time.Duration(i))
		} else {
			lat = append(lat, time.Millisecond)
		}
	}
	s := Summarize(lat)
	if s.P99 != time.Millisecond {
		t.Errorf("p99 = %v, want 1ms", s.P99)
	}
	if want := time.Second + 1900; s.Max != want {
		t.Errorf("max = %v, want %v", s.Max, want)
	}
	if s.Count != 2000 {
		t.Errorf("count = %d, want 2000", s.Count)
	}
}

func TestSummarize(t *testing.T) {
	t.Parallel()
	s := Summarize([]time.Duration{5, 1, 4, 2, 3})
	want := Summary{Count: 5, P50: 3, P99: 5, Max: 5, Mean: 3}
	if s != want {
		t.Errorf("Summarize = %+v, want %+v", s, want)
	}
	if got := Summarize(nil); got != (Summary{}) {
		t.Errorf("Summarize(nil) = %+v, want zero", got)
	}
}

func TestFormatLatency(t *testing.T) {
	t.Parallel()
	tests := []struct {
		d    time.Duration
		want string
	}{
		{0, "0.000ms"},
		{1499 * time.Nanosecond, "0.001ms"},
		{850 * time.Microsecond, "0.850ms"},
		{3*time.Millisecond + 217*time.Microsecond, "3.217ms"},
		{2 * time.Second, "2000.000ms"},
	}
	for _, tt := range tests {
		if got := FormatLatency(tt.d); got != tt.want {
			t.Errorf("FormatLatency(%v) = %q, want %q", tt.d, got, tt.want)
		}
	}
}

// MedianRatios pairs each hookd run with the bare run just before it and
// takes the median over rounds, level by level.
func TestMedianRatios(t *testing.T) {
	t.Parallel()
	run := func(server string, conns int, n int64) *Result {
		return &Result{Server: server, Connections: conns, OK: n, Elapsed: time.Second}
	}
	results := []*Result{
		run("bare", 64, 100), run("hookd", 64, 30),
		run("bare", 64, 200), run("hookd", 64, 80),
		run("bare", 64, 100), run("hookd", 64, 35),
		run("bare", 256, 100), run("hookd", 256, 50),
	}
	got := MedianRatios(results)
	if len(got) != 2 {
		t.Fatalf("got %d levels, want 2: %+v", len(got), got)
	}
	if got[0].Connections != 64 || len(got[0].Ratios) != 3 || math.Abs(got[0].Median-0.35) > 1e-9 {
		t.Errorf("64 connections: got %+v, want 3 ratios with median 0.35", got[0])
	}
	if got[1].Connections != 256 || math.Abs(got[1].Median-0.5) > 1e-9 {
		t.Errorf("256 connections: got %+v, want median 0.5", got[1])
	}
}
