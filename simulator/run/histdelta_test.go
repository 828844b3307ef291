package run

import (
	"math"
	"testing"

	hdr "github.com/HdrHistogram/hdrhistogram-go"

	"wagate/fakelaravel"
	"wagate/simulator/metrics"
)

// fakeHistogram is fakelaravel's Histogram of the given microsecond samples, with its HDR
// encoding and its coarse buckets (all samples in one 50 ms bucket).
func fakeHistogram(t *testing.T, us ...int64) fakelaravel.Histogram {
	t.Helper()
	h := hdr.New(1, 3_600_000_000, 3)
	for _, v := range us {
		if err := h.RecordValue(v); err != nil {
			t.Fatal(err)
		}
	}
	out := fakelaravel.Histogram{BoundsMS: []float64{50}, Counts: []int64{int64(len(us)), 0}, Count: int64(len(us))}
	if len(us) > 0 {
		b, err := h.Encode(hdr.V2CompressedEncodingCookieBase)
		if err != nil {
			t.Fatal(err)
		}
		out.HDR = string(b)
	}
	return out
}

// The samples that entered fakelaravel between two scrapes are recorded at their own values (to
// 0.1%), not at the bound of the bucket they fell in.
func TestHistDeltaRecordsExactValuesFromHDR(t *testing.T) {
	prevSamples := []int64{4_000, 4_000, 23_000}
	newSamples := []int64{21_000, 21_000, 21_000, 37_500}
	prev := fakeHistogram(t, prevSamples...)
	cur := fakeHistogram(t, append(append([]int64{}, prevSamples...), newSamples...)...)

	reg := metrics.NewRegistry(nil)
	histDelta(reg, "laravel_response_time", prev, cur, metrics.Tags{"endpoint": "status_batch"})
	h, _ := reg.TakeWindow("laravel_response_time")
	if h == nil || h.Count() != int64(len(newSamples)) {
		t.Fatalf("recorded %v samples, want %d", h, len(newSamples))
	}
	for _, tc := range []struct{ p, wantMS float64 }{{50, 21}, {99, 37.5}} {
		if got := h.Percentile(tc.p); math.Abs(got-tc.wantMS) > tc.wantMS*0.002 {
			t.Errorf("p%v = %v ms, want %v ms (the bucket bound would be 50)", tc.p, got, tc.wantMS)
		}
	}
}

func TestHistDeltaFallsBackToBucketsWithoutHDR(t *testing.T) {
	prev := fakelaravel.Histogram{BoundsMS: []float64{10, 20}, Counts: []int64{1, 0, 0}}
	cur := fakelaravel.Histogram{BoundsMS: []float64{10, 20}, Counts: []int64{1, 2, 0}, MaxMS: 15}
	reg := metrics.NewRegistry(nil)
	histDelta(reg, "laravel_response_time", prev, cur, metrics.Tags{})
	h, _ := reg.TakeWindow("laravel_response_time")
	if h == nil || h.Count() != 2 || math.Abs(h.Percentile(50)-20) > 0.05 {
		t.Fatalf("fallback: %v samples at p50 %v, want 2 at the 20 ms bound", h.Count(), h.Percentile(50))
	}
}
