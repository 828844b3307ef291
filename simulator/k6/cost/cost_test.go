package cost

import (
	"bytes"
	"context"
	"math"
	"runtime/pprof"
	"testing"
	"time"

	"github.com/google/pprof/profile"

	simmetrics "wagate/simulator/metrics"
)

func TestFiguresCompareTheScriptWithTheNativeUsers(t *testing.T) {
	native := Phase{VUs: 1000, Requests: 50_000, VUCPU: 5 * time.Second, GCCPU: 5 * time.Second, ProcessCPU: 20 * time.Second,
		MemoryBefore: 100 << 20, MemoryPeak: 150 << 20}
	cases := []struct {
		name string
		r    Result
		want map[string]float64
	}{
		{
			name: "the script spends 1.2x the users' CPU per request and 100 KiB more per VU",
			r: Result{Native: native, JS: Phase{VUs: 1000, Requests: 40_000, VUCPU: 4800 * time.Millisecond, GCCPU: 7200 * time.Millisecond, ProcessCPU: 18 * time.Second,
				MemoryBefore: 110 << 20, MemoryAfterInit: 110<<20 + 1000*80<<10, MemoryPeak: 160<<20 + 1000*100<<10}},
			want: map[string]float64{
				FigNativeCPUPerRequest: 100, FigJSCPUPerRequest: 120, FigCPURatio: 1.2, FigCPUWithGCRatio: 300.0 / 200,
				FigProcessCPURatio: 450.0 / 400, FigVUMemory: 100 << 10, FigVUInitMemory: 80 << 10, FigRequestRatio: 0.8,
			},
		},
		{
			name: "a script that made no requests has no CPU figures",
			r:    Result{Native: native, JS: Phase{VUs: 1000, VUCPU: time.Second, MemoryBefore: 1, MemoryPeak: 2}},
			want: map[string]float64{FigNativeCPUPerRequest: 100, FigVUMemory: (1.0 - (50 << 20)) / 1000},
		},
		{
			name: "nothing measured, no figures",
			r:    Result{},
			want: map[string]float64{},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got := tc.r.Figures()
			if len(got) != len(tc.want) {
				t.Errorf("figures %v, want %v", got, tc.want)
			}
			for k, w := range tc.want {
				if g, ok := got[k]; !ok || math.Abs(g-w) > 1e-9*math.Max(1, math.Abs(w)) {
					t.Errorf("%s = %v (present %v), want %v", k, g, ok, w)
				}
			}
		})
	}
}

func TestTargetsAreTheIssuesBounds(t *testing.T) {
	want := map[string]string{FigCPURatio: "value<=1.5", FigCPUWithGCRatio: "value<=1.5", FigVUMemory: "value<=204800", FigVUInitMemory: "value<=204800"}
	for fig, expr := range want {
		if got := Targets[fig]; len(got) != 1 || got[0] != expr {
			t.Errorf("target on %s = %v, want %s", fig, got, expr)
		}
	}
}

func TestOnlySamplesLabelledVUCountAsTheVUsCPU(t *testing.T) {
	samples := []*profile.Sample{
		{Value: []int64{1, 10}, Label: map[string][]string{LoadLabel: {VULoad}}},
		{Value: []int64{1, 20}, Label: map[string][]string{LoadLabel: {WorldLoad}}},
		{Value: []int64{1, 40}},
		{Value: []int64{1, 80}, Label: map[string][]string{"other": {"x"}, LoadLabel: {VULoad}}},
	}
	if got := VUCPU(samples, 1); got != 90 {
		t.Errorf("VU CPU = %v, want 90ns (the two load=vu samples)", got)
	}
}

// TestAProfileOfLabelledWorkAttributesItsCPU burns CPU in a goroutine labelled load=vu and in an
// unlabelled one under a real CPU profile: the labelled share is found, the rest is not counted.
func TestAProfileOfLabelledWorkAttributesItsCPU(t *testing.T) {
	var prof bytes.Buffer
	if err := pprof.StartCPUProfile(&prof); err != nil {
		t.Skipf("a CPU profile is already running: %v", err)
	}
	burn := func(d time.Duration) {
		x := 0
		for end := time.Now().Add(d); time.Now().Before(end); {
			x++
		}
		_ = x
	}
	done := make(chan struct{})
	go func() {
		pprof.Do(context.Background(), pprof.Labels(LoadLabel, VULoad), func(context.Context) { burn(300 * time.Millisecond) })
		close(done)
	}()
	burn(300 * time.Millisecond)
	<-done
	pprof.StopCPUProfile()
	var vu time.Duration
	if err := labelledCPU(&prof, &vu); err != nil {
		t.Fatal(err)
	}
	// 300 ms of work on a shared machine is sampled at 100 Hz: some of it, never more than it.
	if vu <= 0 || vu > 400*time.Millisecond {
		t.Errorf("labelled CPU %v, want some of the 300 ms burned under load=vu and none of the unlabelled", vu)
	}
}

func TestTheReportJudgesEveryTargetAndFailsAnUnmeasuredOne(t *testing.T) {
	measured := Result{
		Native: Phase{VUs: 10, Requests: 100, VUCPU: 10 * time.Millisecond, MemoryBefore: 1 << 20, MemoryPeak: 2 << 20},
		JS: Phase{VUs: 10, Requests: 100, VUCPU: 20 * time.Millisecond, MemoryBefore: 1 << 20, MemoryAfterInit: 1<<20 + 10*(50<<10),
			MemoryPeak: 2<<20 + 10*(300<<10)},
	}
	cases := []struct {
		name string
		r    Result
		want map[string]bool // metric -> threshold ok
	}{
		{"CPU 2x and 300 KiB per VU fail; init memory and ground truth hold", measured,
			map[string]bool{FigCPURatio: false, FigCPUWithGCRatio: false, FigVUMemory: false, FigVUInitMemory: true, "lost_updates": true, "stale_overwrites": true}},
		{"nothing measured fails every figure", Result{},
			map[string]bool{FigCPURatio: false, FigCPUWithGCRatio: false, FigVUMemory: false, FigVUInitMemory: false, "lost_updates": true, "stale_overwrites": true}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			now := time.Now()
			rep, err := Report(tc.r, simmetrics.NewRegistry(nil), "scenarios/k6/x.js", "x", now.Add(-time.Minute), now)
			if err != nil {
				t.Fatal(err)
			}
			got := map[string]bool{}
			for _, th := range rep.Thresholds {
				got[th.Metric] = th.OK
			}
			if len(got) != len(tc.want) {
				t.Errorf("thresholds %v, want %v", got, tc.want)
			}
			for m, ok := range tc.want {
				if g, present := got[m]; !present || g != ok {
					t.Errorf("threshold on %s ok=%v (present %v), want %v", m, g, present, ok)
				}
			}
		})
	}
}
