package reports

import (
	"strings"
	"testing"
)

func TestEachDesignTargetIsWrittenFromItsBound(t *testing.T) {
	want := []string{">= 100x fewer", "<= 10 ms", "<= 1 s", "<= 5% of a core", "<= 1.30x the floor's", "<= 300 KiB", "0",
		">= 20x fewer", "<= 1,500 ms", "0", ">= 1,000"}
	if len(DesignTargets) != len(want) {
		t.Fatalf("%d design targets, want %d", len(DesignTargets), len(want))
	}
	for i, spec := range DesignTargets {
		if got := spec.Bound.Text(spec.Scope.unit(spec.Figure)); got != want[i] {
			t.Errorf("%s: limit written %q, want %q", spec.Name, got, want[i])
		}
	}
}

func TestABoundHoldsAtItsLimit(t *testing.T) {
	cases := []struct {
		bound Bound
		v     float64
		holds bool
	}{
		{Bound{"<=", 10}, 10, true},
		{Bound{"<=", 10}, 10.01, false},
		{Bound{">=", 100}, 100, true},
		{Bound{">=", 100}, 99.9, false},
		{Bound{"==", 0}, 0, true},
		{Bound{"==", 0}, 1, false},
	}
	for _, c := range cases {
		if got := c.bound.Holds(c.v); got != c.holds {
			t.Errorf("%s holds for %v = %v, want %v", c.bound.Text(""), c.v, got, c.holds)
		}
	}
}

func TestALatencyTargetSaysWhenTheLoadGeneratorSaturated(t *testing.T) {
	tests := []struct {
		name      string
		generator *Generator
		wantNote  bool
	}{
		{"no generator figures (an older report)", nil, false},
		{"generator under its limit", &Generator{CPUPercent: 60, Cores: 1, LatencyValid: true}, false},
		{"generator saturated", &Generator{CPUPercent: 97, Cores: 1, Reason: "the load generator used 97% of its 1 core(s)"}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res := sampleBench(t)
			scale := &res.Entries[len(res.Entries)-1]
			scale.Reports[0].Environment.Generator = tt.generator
			delay := NewHistogram(0.001)
			_ = delay.RecordN(900, 100)
			scale.Reports[0].Metrics[MetricMessageDeliveryDelay] = NewTrendMetric("time", delay)
			for _, target := range res.Targets() {
				spec := specNamed(t, target.Name)
				gotNote := strings.Contains(target.Measured, "not valid: the load generator used 97%")
				if want := tt.wantNote && spec.Latency; gotNote != want {
					t.Errorf("%s: measured %q, note of invalid latency = %v, want %v", target.Name, target.Measured, gotNote, want)
				}
				if spec.Latency && target.Status == "not measured" {
					t.Errorf("%s: not measured", target.Name)
				}
			}
		})
	}
}

func specNamed(t *testing.T, name string) TargetSpec {
	t.Helper()
	for _, s := range DesignTargets {
		if s.Name == name {
			return s
		}
	}
	t.Fatalf("no design target named %q", name)
	return TargetSpec{}
}

func TestTheGatewaysCPUPerRequestIsComparedWithTheFloorsInTheSameBench(t *testing.T) {
	const target = "gateway CPU per API request, all its work included, vs the floor's in the same bench"
	tests := []struct {
		name         string
		floorCPU     float64 // % of a core for the same requests as the scale entry (4% mean)
		wantMeasured string
		wantStatus   string
	}{
		{"no floor entry", 0, "add an entry of kind: floor", "not measured"},
		{"gateway at 1.25x the floor", 3.2, "1.25x (", "pass"},
		{"gateway at exactly the limit", 4 / FloorRatioLimit, "1.30x (", "pass"},
		{"gateway just above the limit", 4 / 1.301, "1.301x (", "FAIL"}, // not "1.30x FAIL"
		{"gateway at 2x the floor", 2, "2.00x (", "FAIL"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res := sampleBench(t)
			if tt.floorCPU > 0 {
				floor := sampleReport(t, "floor-1000", "", 1000, 0, 0)
				cpu := NewHistogram(0.0001)
				if err := cpu.RecordN(tt.floorCPU, 60); err != nil {
					t.Fatal(err)
				}
				floor.Metrics[MetricGatewayCPU] = NewTrendMetric("default", cpu)
				res.Entries = append(res.Entries, Entry{BenchEntry: BenchEntry{Name: "floor-1000", Kind: "floor"}, Reports: []*Report{floor}})
			}
			for _, got := range res.Targets() {
				if got.Name != target {
					continue
				}
				if !strings.HasPrefix(got.Measured, tt.wantMeasured) || got.Status != tt.wantStatus {
					t.Errorf("measured %q, status %q; want %q..., %q", got.Measured, got.Status, tt.wantMeasured, tt.wantStatus)
				}
				return
			}
			t.Fatalf("no target %q", target)
		})
	}
}

func TestABenchBelowTheTargetScaleShowsItsFiguresButJudgesNoScaleTarget(t *testing.T) {
	res := sampleBench(t)
	// bench-quick and bench-real-laravel: their largest batch entry has 20 users.
	res.Bench.SeedTable.Scale = ""
	for i := range res.Entries {
		for _, r := range res.Entries[i].Reports {
			r.Scenario.Users = 20
		}
	}
	for _, target := range res.Targets() {
		spec := specNamed(t, target.Name)
		atScale := spec.Scope == AtScale || spec.Scope == ScaleVsLegacy || spec.Scope == VsFloor
		if !atScale {
			continue
		}
		if target.Status != "not measured" {
			t.Errorf("%s: status %q at 20 users, want not measured (the target is set at 1000)", target.Name, target.Status)
		}
		if !strings.Contains(target.Measured, "only 20 users here") {
			t.Errorf("%s: measured %q, want it to say the bench ran 20 users", target.Name, target.Measured)
		}
	}
	// At the target scale the same figures are judged.
	judged := 0
	for _, target := range sampleBench(t).Targets() {
		if spec := specNamed(t, target.Name); spec.Scope == AtScale && target.Status != "not measured" {
			judged++
		}
	}
	if judged == 0 {
		t.Error("at 1000 users no target measured at scale was judged")
	}
}

// A bench with a floor for each workload (make bench: floor-100 beside batch-100, floor-1000
// beside batch-1000) compares each target with the floor under its own users' polls.
func TestEachTargetIsSetBesideTheFloorOfItsOwnUserCount(t *testing.T) {
	res := sampleBench(t)
	floorOf := func(name string, users int, cpuPercent float64) Entry {
		r := sampleReport(t, name, "", users, 0, 0)
		cpu := NewHistogram(0.0001)
		if err := cpu.RecordN(cpuPercent, 60); err != nil {
			t.Fatal(err)
		}
		r.Metrics[MetricGatewayCPU] = NewTrendMetric("default", cpu)
		return Entry{BenchEntry: BenchEntry{Name: name, Kind: "floor"}, Reports: []*Report{r}}
	}
	// floor-100 first: a bench that took the first floor entry compared batch-1000 with it.
	res.Entries = append(res.Entries, floorOf("floor-100", 100, 1.5), floorOf("floor-1000", 1000, 2))
	want := map[string]string{
		"gateway CPU per API request, all its work included, vs the floor's in the same bench": "2.00x (",
		"gateway CPU (mean) at the seed's 100 users, batch mode":                               "; the floor under the same polls (floor-100): 1.50%",
	}
	for _, got := range res.Targets() {
		w, ok := want[got.Name]
		if !ok {
			continue
		}
		delete(want, got.Name)
		if !strings.Contains(got.Measured, w) {
			t.Errorf("%s: measured %q, want it to say %q", got.Name, got.Measured, w)
		}
		if strings.HasPrefix(got.Name, "gateway CPU per API request") && got.Where != "batch-1000 vs floor-1000" {
			t.Errorf("the floor ratio is taken at %q, want batch-1000 vs floor-1000", got.Where)
		}
	}
	for name := range want {
		t.Errorf("no target %q", name)
	}
}
