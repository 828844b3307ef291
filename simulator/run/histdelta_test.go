package run

import (
	"math"
	"math/rand/v2"
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
	histDelta(reg, nil, "laravel_response_time", prev, cur, metrics.Tags{"endpoint": "status_batch"})
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
	histDelta(reg, nil, "laravel_response_time", prev, cur, metrics.Tags{})
	h, _ := reg.TakeWindow("laravel_response_time")
	if h == nil || h.Count() != 2 || math.Abs(h.Percentile(50)-20) > 0.05 {
		t.Fatalf("fallback: %v samples at p50 %v, want 2 at the 20 ms bound", h.Count(), h.Percentile(50))
	}
}

// Each count index of an HDR histogram stands for the values hdrhistogram-go's Distribution says
// it does, whatever the geometry.
func TestHDRGeometryNamesTheBucketsDistributionDoes(t *testing.T) {
	for _, g := range []struct {
		lowest, highest int64
		sigFigs         int
	}{{1, 3_600_000_000, 3}, {1000, 1_000_000_000, 2}, {1, 1_000_000, 1}, {16, 100_000_000, 4}} {
		h := hdr.New(g.lowest, g.highest, g.sigFigs)
		rng := rand.New(rand.NewPCG(1, uint64(g.sigFigs)))
		for range 20_000 {
			// Log-uniform values over the whole range, and the range's edges.
			v := int64(math.Exp(rng.Float64() * math.Log(float64(g.highest))))
			if err := h.RecordValue(max(v, g.lowest)); err != nil {
				t.Fatal(err)
			}
		}
		for _, v := range []int64{g.lowest, g.highest} {
			if err := h.RecordValue(v); err != nil {
				t.Fatal(err)
			}
		}
		snap := h.Export()
		geo := newHDRGeometry(snap.LowestTrackableValue, snap.SignificantFigures)
		for i, bar := range h.Distribution() {
			if from, to := geo.bucket(i); from != bar.From || to != bar.To {
				t.Fatalf("%+v: index %d stands for %d..%d, Distribution says %d..%d", g, i, from, to, bar.From, bar.To)
			}
			if bar.Count != snap.Counts[i] {
				t.Fatalf("%+v: Distribution's bar %d is not count index %d", g, i, i)
			}
		}
	}
}

// Readings compared with the series' base count each sample once, without decoding the
// previous reading again.
func TestHistDeltaFromABaseCountsEachSampleOnce(t *testing.T) {
	var base hdrBase
	reg := metrics.NewRegistry(nil)
	samples := []int64{}
	prev := fakeHistogram(t)
	for i, added := range [][]int64{{1_000, 2_000}, {}, {40_000, 40_000, 40_000}, {900_000}} {
		samples = append(samples, added...)
		cur := fakeHistogram(t, samples...)
		if i > 0 {
			prev = fakelaravel.Histogram{HDR: "not an HDR histogram: the base is read, not this"}
		}
		histDelta(reg, &base, "laravel_queue_wait", prev, cur, metrics.Tags{})
		h, _ := reg.TakeWindow("laravel_queue_wait")
		var got int64
		if h != nil {
			got = h.Count()
		}
		if got != int64(len(added)) {
			t.Fatalf("reading %d recorded %d samples, want %d", i, got, len(added))
		}
		if len(added) > 0 && math.Abs(h.Percentile(100)-float64(added[len(added)-1])/1000) > float64(added[len(added)-1])/1000*0.002 {
			t.Errorf("reading %d: largest sample %v ms, want %v", i, h.Percentile(100), float64(added[len(added)-1])/1000)
		}
	}
}

// BenchmarkHistDelta is one endpoint's histogram read again, as the probe does every interval:
// 200,000 samples up to 2 s.
func BenchmarkHistDelta(b *testing.B) {
	t := &testing.T{}
	rng := rand.New(rand.NewPCG(1, 2))
	us := make([]int64, 200_000)
	for i := range us {
		us[i] = int64(math.Exp(rng.Float64() * math.Log(2_000_000)))
	}
	prev, cur := fakeHistogram(t, us[:199_000]...), fakeHistogram(t, us...)
	reg := metrics.NewRegistry(nil)
	var base hdrBase
	for b.Loop() {
		histDelta(reg, &base, "laravel_queue_wait", prev, cur, metrics.Tags{})
		base.counts = nil // as if each reading were the first: the previous one decoded too
	}
}
