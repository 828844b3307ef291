package calibrate

import (
	"strings"
	"testing"
	"time"

	"wagate/fakelaravel"
	"wagate/internal/goldentest"
)

func fixedResult(k Kind, sent int, status map[int]int, lat ...time.Duration) *Result {
	return &Result{Kind: k, Sent: sent, Status: status, Elapsed: 2 * time.Second, ok: lat}
}

func comparisonFixture() (real, fake *Measurement) {
	mk := func(name string, sat float64, p50, p99 time.Duration, over502 int) *Measurement {
		m := &Measurement{Target: name, Started: time.Date(2026, 11, 27, 13, 0, 0, 0, time.UTC), Plan: Plan{OverloadFactor: 2, LoadRepeats: 1}}
		load := fixedResult(KindGet, 3, map[int]int{200: 3}, p50, p50, p99)
		m.Kinds = append(m.Kinds, KindMeasurement{
			Kind: KindGet, SaturationRPS: sat, OfferedRPS: 300,
			Load50: []*Result{load}, Load80: []*Result{load},
			Overload: fixedResult(KindGet, 10, map[int]int{200: 6, 502: over502, 504: 4 - over502}, p50, p50, p50, p50, p50, p50),
		})
		return m
	}
	return mk("laravel", 300, 10*time.Millisecond, 40*time.Millisecond, 4),
		mk("fakelaravel", 330, 13*time.Millisecond, 44*time.Millisecond, 2)
}

func TestCompareAppliesTheTolerances(t *testing.T) {
	real, fake := comparisonFixture()
	rows := Compare(real, fake, model(1.8, 3*time.Millisecond, 0, 8, 511), 1)
	want := map[string]bool{
		"saturation throughput":       true,  // +10%
		"p50 at 50% load":             false, // +30%
		"p99 at 50% load":             true,  // within 20% (p99 interpolates near the max)
		"2x overload: 2xx throughput": true,  // same count
		"2x overload: share of 502":   false, // 40% vs 20%: 20 points apart
		"2x overload: share of 504":   false, // 0% vs 20%: present in one only
	}
	for _, r := range rows {
		if w, ok := want[r.Metric]; ok && r.OK != w {
			t.Errorf("%s: ok = %v, want %v (real %v, fake %v)", r.Metric, r.OK, w, r.Real, r.Fake)
		}
	}
	if ok, total := Passed(rows); total != 8 || ok >= total {
		t.Fatalf("passed %d of %d", ok, total)
	}
}

// The model column of the GET rows is the model serving lookups: its LookupCPU, not the bootstrap.
func TestCompareSimulatesTheGETWithTheLookupCost(t *testing.T) {
	real, fake := comparisonFixture()
	m := model(1.8, 3*time.Millisecond, 0, 8, 511)
	m.LookupCPU = time.Millisecond
	for _, r := range Compare(real, fake, m, 1) {
		if r.Metric == "saturation throughput" && r.Model != 1800 {
			t.Fatalf("GET saturation predicted at %v req/s, want 1.8 cores / 1 ms = 1800", r.Model)
		}
	}
}

func TestReportMarkdownMatchesGolden(t *testing.T) {
	real, fake := comparisonFixture()
	rp := Report{
		Real: real, Fake: fake, Rows: Compare(real, fake, model(1.8, 3*time.Millisecond, 0, 8, 511), 1),
		Model:   fakelaravel.CalibratedModel{Cores: 1.8, BootstrapCPUMS: 6.2, LookupCPUMS: 4.4, PerRowCPUMS: 0.2, Jitter: 0.15, Workers: 8, Backlog: 511, ProxyTimeoutMS: 60000},
		Fit:     FitResult{Error: 0.12, CPUBootstrapMS: 3.1, CPUPerRowMS: 0.21, CPULookupMS: 2.2, CPUAnchored: true},
		Machine: Machine{CPUs: 2, LoadAverageBefore: [3]float64{3, 2, 1}, LoadAverageAfter: [3]float64{4, 3, 2}, OthersCores: 0.8, Software: "test stack"},
	}
	goldentest.Check(t, "report.golden.md", []byte(rp.Markdown()))
}

func TestFiguresMeasuredOnABusyMachineAreNotCounted(t *testing.T) {
	real, fake := comparisonFixture()
	busy := *real.Kinds[0].Load80[0]
	busy.OthersCores = 1.2
	real.Kinds[0].Load80 = []*Result{&busy}
	rows := Compare(real, fake, model(1.8, 3*time.Millisecond, 0, 8, 511), 1)
	for _, r := range rows {
		if want := r.Metric == "p50 at 80% load" || r.Metric == "p99 at 80% load"; r.Counted() == want {
			t.Errorf("%s: counted %v", r.Metric, r.Counted())
		}
	}
	if _, total := Passed(rows); total != len(rows)-2 {
		t.Fatalf("counted %d of %d rows, want all but the two busy ones", total, len(rows))
	}
	for _, row := range Table(rows).Rows {
		if busy := row[1] == "p50 at 80% load" || row[1] == "p99 at 80% load"; busy != strings.HasSuffix(row[5], "; machine busy)") {
			t.Errorf("%s: within tolerance reads %q", row[1], row[5])
		}
	}
}
