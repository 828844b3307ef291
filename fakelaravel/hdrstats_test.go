package fakelaravel

import (
	"math"
	"testing"
	"time"
)

// Percentiles come from the HDR histogram: exact to 0.1%, not the bound of a fixed bucket (a p99 of
// 23 ms used to read as 30 ms, the bucket's bound, or an interpolation inside 20-30 ms).
func TestHistogramPercentilesAreExact(t *testing.T) {
	cases := []struct {
		name                string
		values              func(i int) time.Duration
		n                   int
		wantP50, wantP99    float64 // ms
		wantCount, wantMaxM float64
	}{
		{"1..1000 ms", func(i int) time.Duration { return time.Duration(i+1) * time.Millisecond }, 1000, 500, 990, 1000, 1000},
		{"a 23 ms tail", func(i int) time.Duration {
			if i < 980 {
				return 4 * time.Millisecond
			}
			return 23 * time.Millisecond
		}, 1000, 4, 23, 1000, 23},
		{"sub-millisecond", func(i int) time.Duration { return 250 * time.Microsecond }, 10, 0.25, 0.25, 10, 0.25},
	}
	for _, tc := range cases {
		h := newHistogram()
		for i := range tc.n {
			h.observe(tc.values(i))
		}
		s := h.snapshot()
		near := func(got, want float64) bool { return math.Abs(got-want) <= want*0.001+0.001 }
		if !near(s.P50MS, tc.wantP50) || !near(s.P99MS, tc.wantP99) || float64(s.Count) != tc.wantCount || !near(s.MaxMS, tc.wantMaxM) {
			t.Errorf("%s: p50 %v p99 %v count %d max %v; want %v %v %v %v", tc.name, s.P50MS, s.P99MS, s.Count, s.MaxMS, tc.wantP50, tc.wantP99, tc.wantCount, tc.wantMaxM)
		}
		exact, err := s.DecodeHDR()
		if err != nil || exact == nil || exact.TotalCount() != int64(tc.n) {
			t.Errorf("%s: DecodeHDR %v, %v", tc.name, exact, err)
		}
	}
}

func TestEmptyHistogramHasNoHDR(t *testing.T) {
	h := newHistogram()
	s := h.snapshot()
	if s.HDR != "" || s.P99MS != 0 {
		t.Fatalf("%+v", s)
	}
	if exact, err := s.DecodeHDR(); exact != nil || err != nil {
		t.Fatalf("%v %v", exact, err)
	}
}
