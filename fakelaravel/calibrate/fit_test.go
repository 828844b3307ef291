package calibrate

import (
	"math"
	"testing"
	"time"
)

// syntheticMeasurement is what a server following truth would show the plan, computed with the
// simulation instead of real load.
func syntheticMeasurement(truth func(Kind) (sat float64, lat func(rate float64) SimResult, solo SimResult)) *Measurement {
	m := &Measurement{Plan: Plan{LoadRepeats: 1, OverloadFactor: 2}}
	for _, k := range Kinds {
		sat, lat, solo := truth(k)
		toResult := func(r SimResult) *Result {
			res := &Result{Kind: k, Status: map[int]int{200: r.Served}, Sent: r.Served}
			for _, s := range r.Latencies {
				res.ok = append(res.ok, time.Duration(s*float64(time.Second)))
			}
			return res
		}
		m.Kinds = append(m.Kinds, KindMeasurement{
			Kind: k, SaturationRPS: sat, OfferedRPS: sat,
			Solo:   toResult(solo),
			Load50: []*Result{toResult(lat(0.5 * sat))},
			Load80: []*Result{toResult(lat(0.8 * sat))},
		})
	}
	return m
}

func TestFitRecoversTheModelThatProducedTheFigures(t *testing.T) {
	truth := model(1.8, 6*time.Millisecond, 200*time.Microsecond, 8, 511)
	truth.Jitter = 0.2
	m := syntheticMeasurement(func(k Kind) (float64, func(float64) SimResult, SimResult) {
		rows := k.Rows()
		return truth.SaturationThroughput(rows),
			func(rate float64) SimResult { return Simulate(truth, rows, rate, 4000, 3) },
			Simulate(truth, rows, 1, 500, 4)
	})
	fit, err := Fit(m, Fixed{Workers: 8, Backlog: 511, ProxyTimeout: time.Minute}, FitOptions{Seed: 1, Samples: 1500})
	if err != nil {
		t.Fatal(err)
	}
	got := fit.Model
	for _, c := range []struct {
		name      string
		got, want float64
		tol       float64
	}{
		{"cores", got.Cores, truth.Cores, 0.08},
		{"bootstrap", got.BootstrapCPU.Seconds(), truth.BootstrapCPU.Seconds(), 0.08},
		{"per row", got.PerRowCPU.Seconds(), truth.PerRowCPU.Seconds(), 0.1},
	} {
		if math.Abs(c.got/c.want-1) > c.tol {
			t.Errorf("%s = %v, want %v within %.0f%%", c.name, c.got, c.want, 100*c.tol)
		}
	}
	// The jitter barely moves p50 and p99, so it is only weakly identified: just check its range.
	if got.Jitter < 0 || got.Jitter > 0.9 {
		t.Errorf("jitter %v outside [0, 0.9]", got.Jitter)
	}
	if got.Workers != 8 || got.Backlog != 511 || got.ProxyTimeout != time.Minute {
		t.Errorf("fixed parameters changed: %+v", got)
	}
	// Not zero: the figures and the fit's predictions are different random draws (p99 of a few
	// thousand samples moves by several percent).
	if fit.Error > 0.2 {
		t.Errorf("RMS log error %.3f on figures the model produced itself", fit.Error)
	}
}

func TestFitRefusesAKindWithoutSuccesses(t *testing.T) {
	m := &Measurement{Kinds: []KindMeasurement{{Kind: KindGet, Solo: &Result{Status: map[int]int{502: 3}}}}}
	if _, err := Fit(m, Fixed{Workers: 8}, FitOptions{Seed: 1}); err == nil {
		t.Fatal("fit succeeded without a single 2xx")
	}
}

func TestLineThroughSharesTheOneRowKinds(t *testing.T) {
	b, r, ok := lineThrough(map[Kind]float64{KindGet: 4, KindPost1: 9, KindPost50: 6 + 49*0.2})
	if !ok {
		t.Fatal("no line")
	}
	// The one-row demand is the geometric mean of 4 and 9, 6 ms.
	if math.Abs(b+r-6) > 1e-9 || math.Abs(r-0.2) > 1e-9 {
		t.Fatalf("bootstrap %v per row %v, want 5.8 and 0.2", b, r)
	}
}

func TestFitAnchoredOnCPUScalesTheCPULineToTheSoloLatency(t *testing.T) {
	// The app needs 2.4 ms + 0.1 ms/row of CPU but a request takes 2.5x that on the shared
	// machine: the model that reproduces it has 2.5x the demand and 2.5x the CPU share.
	truth := model(2.5*0.72, 6*time.Millisecond, 250*time.Microsecond, 8, 511)
	truth.Jitter = 0.2
	m := syntheticMeasurement(func(k Kind) (float64, func(float64) SimResult, SimResult) {
		rows := k.Rows()
		return truth.SaturationThroughput(rows),
			func(rate float64) SimResult { return Simulate(truth, rows, rate, 4000, 3) },
			Simulate(truth, rows, 1, 500, 4)
	})
	for i := range m.Kinds {
		m.Kinds[i].ServerCPUPerRequestMS = 2.4 + 0.1*float64(m.Kinds[i].Kind.Rows())
	}
	fit, err := Fit(m, Fixed{Workers: 8, Backlog: 511}, FitOptions{Seed: 1, Samples: 1500})
	if err != nil {
		t.Fatal(err)
	}
	if !fit.CPUAnchored || math.Abs(fit.CPUBootstrapMS-2.4) > 1e-9 || math.Abs(fit.CPUPerRowMS-0.1) > 1e-9 {
		t.Fatalf("CPU line %v + %v/row, anchored %v", fit.CPUBootstrapMS, fit.CPUPerRowMS, fit.CPUAnchored)
	}
	got := fit.Model
	if math.Abs(got.Cores/truth.Cores-1) > 0.1 || math.Abs(got.BootstrapCPU.Seconds()/truth.BootstrapCPU.Seconds()-1) > 0.1 ||
		math.Abs(got.PerRowCPU.Seconds()/truth.PerRowCPU.Seconds()-1) > 0.1 {
		t.Fatalf("fitted %+v, want about %+v", got, truth)
	}
}
