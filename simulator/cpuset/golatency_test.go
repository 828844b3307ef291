package cpuset

import (
	"math"
	"runtime"
	"sync"
	"testing"
	"time"
)

func TestDelayHistogramQuantilesAreBucketUpperBounds(t *testing.T) {
	ms := func(f float64) float64 { return f / 1000 }
	h := Histogram{
		Buckets: []float64{0, ms(0.1), ms(1), ms(10), ms(100), math.Inf(1)},
		Counts:  []uint64{90, 8, 1, 0, 1},
	}
	tests := []struct {
		q    float64
		want time.Duration
	}{
		{0.5, 100 * time.Microsecond},
		{0.9, 100 * time.Microsecond},
		{0.98, time.Millisecond},
		{0.99, 10 * time.Millisecond},
		{1, 100 * time.Millisecond}, // beyond the last finite bucket: its lower bound
	}
	for _, tt := range tests {
		if got := h.Quantile(tt.q); got != tt.want {
			t.Errorf("Quantile(%v) = %v, want %v", tt.q, got, tt.want)
		}
	}
	if got := (Histogram{Buckets: h.Buckets, Counts: make([]uint64, 5)}).Quantile(0.99); got != 0 {
		t.Errorf("Quantile of an empty histogram = %v, want 0", got)
	}
}

func TestDelayHistogramSubKeepsOnlyWhatCameAfter(t *testing.T) {
	b := []float64{0, 0.001, 0.01, math.Inf(1)}
	earlier := Histogram{Buckets: b, Counts: []uint64{100, 5, 1}}
	now := Histogram{Buckets: b, Counts: []uint64{110, 5, 3}}
	d := now.Sub(earlier)
	if d.Count() != 12 || d.Counts[2] != 2 {
		t.Fatalf("Sub = %v, want [10 0 2]", d.Counts)
	}
	if got := d.Quantile(0.99); got != 10*time.Millisecond {
		t.Errorf("p99 of the difference = %v, want 10ms", got)
	}
	if got := now.Sub(Histogram{}); got.Count() != now.Count() {
		t.Errorf("Sub of an empty reading = %d values, want all %d", got.Count(), now.Count())
	}
}

func TestReadGoDelaysSeesThisProcessesGoroutinesWaitToRun(t *testing.T) {
	before := ReadGoDelays()
	// More runnable goroutines than processors, each spinning for a while and yielding often:
	// they wait to run. The runtime times only a sample of goroutine transitions (one in eight per
	// goroutine), so each makes dozens of them.
	var wg sync.WaitGroup
	for range 4 * runtime.GOMAXPROCS(0) {
		wg.Go(func() {
			end := time.Now().Add(5 * time.Millisecond)
			for time.Now().Before(end) {
				runtime.Gosched()
			}
		})
	}
	wg.Wait()
	d := ReadGoDelays().Sub(before)
	if d.Sched.Count() == 0 {
		t.Fatal("no scheduler latency recorded for the goroutines just run")
	}
	if d.Sched.Max() <= 0 {
		t.Errorf("longest wait %v, want > 0", d.Sched.Max())
	}
}
