package metrics

import (
	"math"
	"runtime"
	"runtime/metrics"
	"strings"
	"testing"
	"time"
)

// TestTheRuntimesSchedulingHistogramIsFoldedIntoTheExposedBuckets: a runtime bucket is counted
// at the first bound its upper edge fits under, counts are cumulative, and the sum takes each
// bucket's midpoint (its finite edge when the other is infinite).
func TestTheRuntimesSchedulingHistogramIsFoldedIntoTheExposedBuckets(t *testing.T) {
	inf := math.Inf(1)
	bounds := []float64{.001, .01}
	for _, tc := range []struct {
		name    string
		buckets []float64
		counts  []uint64
		count   uint64
		sum     float64
		at      map[float64]uint64
	}{
		{"empty", []float64{0, .0005, .002, inf}, []uint64{0, 0, 0}, 0, 0, map[float64]uint64{.001: 0, .01: 0}},
		{"a bucket under the first bound", []float64{0, .0005, .002, inf}, []uint64{4, 0, 0}, 4, 4 * .00025, map[float64]uint64{.001: 4, .01: 4}},
		{"a bucket straddling a bound counts at the next", []float64{0, .0005, .002, inf}, []uint64{0, 2, 0}, 2, 2 * .00125, map[float64]uint64{.001: 0, .01: 2}},
		{"an upper edge equal to a bound counts at it", []float64{0, .001, .02, inf}, []uint64{3, 0, 0}, 3, 3 * .0005, map[float64]uint64{.001: 3, .01: 3}},
		{"beyond the last bound only in the count", []float64{0, .0005, .02, inf}, []uint64{1, 5, 2}, 8, .00025 + 5*.01025 + 2*.02, map[float64]uint64{.001: 1, .01: 1}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			count, sum, at := rebucket(&metrics.Float64Histogram{Counts: tc.counts, Buckets: tc.buckets}, bounds)
			if count != tc.count || math.Abs(sum-tc.sum) > 1e-12 {
				t.Errorf("count, sum = %d, %g; want %d, %g", count, sum, tc.count, tc.sum)
			}
			for b, want := range tc.at {
				if at[b] != want {
					t.Errorf("bucket le=%g = %d, want %d", b, at[b], want)
				}
			}
		})
	}
}

// TestTheGatewayExposesItsGoroutinesSchedulingLatency reads the real runtime: after goroutines
// have waited for the one P behind a busy one, wagate_go_sched_latency_seconds has samples and
// some of them waited at least 1 ms.
func TestTheGatewayExposesItsGoroutinesSchedulingLatency(t *testing.T) {
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(1))
	m := New()
	// A goroutine that holds the P until preempted (~10 ms slices) while others wake every 100 µs.
	stop := make(chan struct{})
	busy := make(chan struct{})
	go func() {
		defer close(busy)
		for {
			select {
			case <-stop:
				return
			default:
			}
			deadline := time.Now().Add(20 * time.Millisecond)
			for time.Now().Before(deadline) {
			}
		}
	}()
	done := make(chan struct{})
	for range 8 {
		go func() {
			for range 50 {
				time.Sleep(100 * time.Microsecond)
			}
			done <- struct{}{}
		}()
	}
	for range 8 {
		<-done
	}
	close(stop)
	<-busy

	families, err := m.Registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range families {
		if f.GetName() != "wagate_go_sched_latency_seconds" {
			continue
		}
		h := f.GetMetric()[0].GetHistogram()
		if h.GetSampleCount() == 0 {
			t.Fatal("no scheduling latency sampled")
		}
		var atMs uint64
		for _, b := range h.GetBucket() {
			if b.GetUpperBound() == .001 {
				atMs = b.GetCumulativeCount()
			}
		}
		if atMs >= h.GetSampleCount() {
			t.Errorf("all %d sampled waits were under 1 ms behind a goroutine holding the P for 20 ms", h.GetSampleCount())
		}
		return
	}
	var names []string
	for _, f := range families {
		names = append(names, f.GetName())
	}
	t.Fatalf("wagate_go_sched_latency_seconds not gathered; have %s", strings.Join(names, ", "))
}
