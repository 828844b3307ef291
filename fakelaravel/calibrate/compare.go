package calibrate

import (
	"fmt"
	"math"
	"slices"
	"time"

	"wagate/fakelaravel"
)

// BusyLimit is the CPU (cores) other processes may have used during a real run for its figure
// to be judged against the fake.
const BusyLimit = 0.75

// leastOthers is the smallest OthersCores of runs (0 when unknown).
func leastOthers(runs ...*Result) float64 {
	least := math.Inf(1)
	for _, r := range runs {
		if r != nil && r.OthersCores >= 0 {
			least = min(least, r.OthersCores)
		}
	}
	if math.IsInf(least, 1) {
		return 0
	}
	return least
}

// Counted reports whether the row's real figure was measured on a quiet enough machine.
func (r Row) Counted() bool { return r.BusyCores <= BusyLimit }

// Tolerance is how far the fake's saturation throughput and latencies may be from the real
// app's (relative), and how far its share of 502s under overload may be (absolute).
const (
	Tolerance         = 0.20
	OverloadTolerance = 0.15
)

// Row is one compared figure.
type Row struct {
	Kind   Kind    `json:"kind"`
	Metric string  `json:"metric"`
	Unit   string  `json:"unit"`
	Real   float64 `json:"real"`
	Fake   float64 `json:"fake"`
	// Model is what the fitted model predicts in virtual time (Simulate), without fakelaravel's
	// own overheads; it separates "the model cannot represent the app" from "the fake does not
	// follow its model on this machine".
	Model float64 `json:"model"`
	// OK says whether Fake is within tolerance of Real.
	OK bool `json:"ok"`
	// BusyCores is the CPU (cores) other processes used during the quietest real run behind the
	// figure; above BusyLimit the real figure measured them more than Laravel and the row is not
	// counted by Passed.
	BusyCores float64 `json:"busy_cores"`
}

// Delta renders the fake's deviation: relative for rates and latencies, absolute points for shares.
func (r Row) Delta() string {
	if r.Unit == "share" {
		return fmt.Sprintf("%+.0f pt", 100*(r.Fake-r.Real))
	}
	if r.Real == 0 {
		return "n/a"
	}
	return fmt.Sprintf("%+.0f%%", 100*(r.Fake/r.Real-1))
}

func msOf(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

func within(real, fake, tol float64) bool {
	if real == 0 {
		return fake == 0
	}
	return math.Abs(fake/real-1) <= tol
}

// KindFigures are the figures of one kind that the comparison judges (latencies in ms), and how
// busy the rest of the machine was while each group of them was measured (cores; see leastOthers).
type KindFigures struct {
	Kind Kind
	// OfferedRPS is the throughput the open-loop rates derive from.
	OfferedRPS                                           float64
	SaturationRPS                                        float64
	P50Load50, P99Load50, P50Load80, P99Load80           float64
	HasOverload                                          bool
	OverloadRPS, Share502, Share504                      float64
	BusySaturation, BusyLoad50, BusyLoad80, BusyOverload float64
}

// Figures extracts the judged figures of km.
func (km *KindMeasurement) Figures() KindFigures {
	f := KindFigures{
		Kind: km.Kind, OfferedRPS: km.OfferedRPS, SaturationRPS: km.SaturationRPS,
		P50Load50: msOf(Latency(km.Load50, 50)), P99Load50: msOf(Latency(km.Load50, 99)),
		P50Load80: msOf(Latency(km.Load80, 50)), P99Load80: msOf(Latency(km.Load80, 99)),
		BusySaturation: leastOthers(km.Saturation...), BusyLoad50: leastOthers(km.Load50...), BusyLoad80: leastOthers(km.Load80...),
	}
	if o := km.Overload; o != nil {
		f.HasOverload, f.OverloadRPS, f.Share502, f.Share504, f.BusyOverload = true, o.Throughput(), o.Fraction(502), o.Fraction(504), leastOthers(o)
	}
	return f
}

// Figures extracts the judged figures from a stored summary (calibration.json's raw figures).
func (ks KindSummary) Figures() KindFigures {
	least := func(v []float64) float64 {
		if len(v) == 0 {
			return 0
		}
		return slices.Min(v)
	}
	f := KindFigures{
		Kind: ks.Kind, OfferedRPS: 2 * ks.Load50.RateRPS, SaturationRPS: ks.SaturationRPS,
		P50Load50: ks.Load50.P50MS, P99Load50: ks.Load50.P99MS, P50Load80: ks.Load80.P50MS, P99Load80: ks.Load80.P99MS,
		BusySaturation: least(ks.SaturationRunsOthers), BusyLoad50: least(ks.Load50.RunsOthersCores), BusyLoad80: least(ks.Load80.RunsOthersCores),
	}
	if o := ks.Overload; o.Sent > 0 {
		f.HasOverload, f.OverloadRPS, f.BusyOverload = true, o.OKRPS, o.Others
		f.Share502, f.Share504 = float64(o.Status[502])/float64(o.Sent), float64(o.Status[504])/float64(o.Sent)
	}
	return f
}

// Compare lines up the figures of the real app, the fitted model (simulated at the same rates)
// and the fake, kind by kind.
func Compare(real, fake *Measurement, model fakelaravel.CapacityModel, seed uint64) []Row {
	var rf, ff []KindFigures
	for i := range real.Kinds {
		rf = append(rf, real.Kinds[i].Figures())
	}
	for i := range fake.Kinds {
		ff = append(ff, fake.Kinds[i].Figures())
	}
	return CompareFigures(rf, ff, real.Plan, model, seed)
}

// CompareFigures is Compare on extracted figures; plan is the real app's (overload factor and
// duration).
func CompareFigures(real, fake []KindFigures, plan Plan, model fakelaravel.CapacityModel, seed uint64) []Row {
	var rows []Row
	for _, rk := range real {
		i := slices.IndexFunc(fake, func(f KindFigures) bool { return f.Kind == rk.Kind })
		if i < 0 {
			continue
		}
		fk := fake[i]
		n, model := rk.Kind.Rows(), ModelFor(model, rk.Kind)
		sim := func(frac float64, d time.Duration) SimResult {
			rate := frac * rk.OfferedRPS
			return Simulate(model, n, rate, max(500, int(rate*d.Seconds())), seed)
		}
		// The loads as the plan measures them (see SimulatePlan), over 30 s of arrivals.
		load := func(frac float64) SimResult {
			rate := frac * rk.OfferedRPS
			return SimulatePlan(model, n, rate, plan, max(500, int(rate*30)), seed)
		}
		s50, s80 := load(0.5), load(0.8)
		busy := 0.0
		rel := func(metric, unit string, r, mdl, f float64) {
			rows = append(rows, Row{Kind: rk.Kind, Metric: metric, Unit: unit, Real: r, Model: mdl, Fake: f, OK: within(r, f, Tolerance), BusyCores: busy})
		}
		busy = rk.BusySaturation
		rel("saturation throughput", "req/s", rk.SaturationRPS, model.SaturationThroughput(n), fk.SaturationRPS)
		busy = rk.BusyLoad50
		rel("p50 at 50% load", "ms", rk.P50Load50, 1000*s50.Percentile(50), fk.P50Load50)
		rel("p99 at 50% load", "ms", rk.P99Load50, 1000*s50.Percentile(99), fk.P99Load50)
		busy = rk.BusyLoad80
		rel("p50 at 80% load", "ms", rk.P50Load80, 1000*s80.Percentile(50), fk.P50Load80)
		rel("p99 at 80% load", "ms", rk.P99Load80, 1000*s80.Percentile(99), fk.P99Load80)
		if rk.HasOverload && fk.HasOverload {
			factor := plan.OverloadFactor
			so := sim(factor, plan.Overload)
			total := float64(so.Served + so.Rejected + so.TimedOut)
			label := fmt.Sprintf("%gx overload", factor)
			var simTP float64
			if so.Elapsed > 0 {
				simTP = float64(so.Served) / so.Elapsed
			}
			busy = rk.BusyOverload
			rel(label+": 2xx throughput", "req/s", rk.OverloadRPS, simTP, fk.OverloadRPS)
			for _, st := range []int{502, 504} {
				r, f := rk.Share502, fk.Share502
				mdl := float64(so.Rejected) / total
				if st == 504 {
					r, f = rk.Share504, fk.Share504
					mdl = float64(so.TimedOut) / total
				}
				ok := math.Abs(r-f) <= OverloadTolerance && (r > 0) == (f > 0)
				rows = append(rows, Row{Kind: rk.Kind, Metric: fmt.Sprintf("%s: share of %d", label, st), Unit: "share", Real: r, Model: mdl, Fake: f, OK: ok, BusyCores: busy})
			}
		}
	}
	return rows
}

// Passed counts the rows within tolerance among those whose real figure was measured on a quiet
// enough machine (Counted), and how many those are.
func Passed(rows []Row) (ok, total int) {
	for _, r := range rows {
		if !r.Counted() {
			continue
		}
		total++
		if r.OK {
			ok++
		}
	}
	return ok, total
}
