package calibrate

import (
	"fmt"
	"math"
	"slices"
	"strings"
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

// Report is what calibrate-laravel writes to calibration.md.
type Report struct {
	Real, Fake *Measurement
	Fit        FitResult
	Model      fakelaravel.CalibratedModel
	Rows       []Row
	// Machine describes the host (CPU count, what else was running).
	Machine Machine
}

// Machine describes the host of a calibration run.
type Machine struct {
	CPUs int `json:"cpus"`
	// LoadAverage is /proc/loadavg at the start and end of the real app's measurement.
	LoadAverageBefore [3]float64 `json:"load_average_before"`
	LoadAverageAfter  [3]float64 `json:"load_average_after"`
	// OthersCores is the median CPU (in cores) other processes used during the saturation runs.
	OthersCores float64 `json:"others_cores"`
	// Software names the measured stack.
	Software string `json:"software"`
}

func fmtValue(v float64, unit string) string {
	switch unit {
	case "share":
		return fmt.Sprintf("%.0f%%", 100*v)
	case "ms":
		return fmt.Sprintf("%.1f ms", v)
	default:
		return fmt.Sprintf("%.0f %s", v, unit)
	}
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

// Table renders the side-by-side comparison as a Markdown table.
func Table(rows []Row) string {
	var b strings.Builder
	b.WriteString("| request | figure | real Laravel | fakelaravel | fake vs real | within tolerance | model, simulated | others' cores during the real run |\n")
	b.WriteString("|---|---|---|---|---|---|---|---|\n")
	for _, r := range rows {
		mark := "yes"
		switch {
		case !r.Counted() && r.OK:
			mark = "(yes; machine busy)"
		case !r.Counted():
			mark = "(no; machine busy)"
		case !r.OK:
			mark = "**no**"
		}
		fmt.Fprintf(&b, "| %s | %s | %s | %s | %s | %s | %s | %.2f |\n", r.Kind.Label(), r.Metric, fmtValue(r.Real, r.Unit), fmtValue(r.Fake, r.Unit), r.Delta(), mark, fmtValue(r.Model, r.Unit), r.BusyCores)
	}
	return b.String()
}

// Markdown renders the whole calibration report.
func (rp Report) Markdown() string {
	var b strings.Builder
	m := rp.Model
	ok, total := Passed(rp.Rows)
	fmt.Fprintf(&b, "# fakelaravel calibration against the real Laravel app\n\n")
	fmt.Fprintf(&b, "Written by `make calibrate-laravel` (wagate/fakelaravel/calibrate) on %s. Do not edit by hand.\n\n", rp.Real.Started.Format(time.RFC3339))
	fmt.Fprintf(&b, "Measured: %s, on loopback, with a bounded load (closed loop for saturation, Poisson open loop for the loads).\n\n", rp.Machine.Software)
	fmt.Fprintf(&b, "Machine: %d CPUs; load average %.2f / %.2f / %.2f before and %.2f / %.2f / %.2f after the real app's runs; "+
		"other processes used %.2f cores (median) while the app was saturated. The machine was shared, so the figures are noisy: "+
		"every run is repeated (%d times for the loads) and only the quiet runs count (other processes' CPU within %.2f cores of the quietest "+
		"run of the same phase; saturation: their median; latencies: their samples pooled), and before each run the tool waited "+
		"(at most %v in all) for other processes to use at most %.2f cores.\n\n",
		rp.Machine.CPUs, rp.Machine.LoadAverageBefore[0], rp.Machine.LoadAverageBefore[1], rp.Machine.LoadAverageBefore[2],
		rp.Machine.LoadAverageAfter[0], rp.Machine.LoadAverageAfter[1], rp.Machine.LoadAverageAfter[2], rp.Machine.OthersCores, rp.Real.Plan.LoadRepeats, QuietMargin, rp.Real.Plan.QuietWaitBudget, rp.Real.Plan.QuietCores)
	b.WriteString("## Fitted model (fakelaravel/calibration.json, fakelaravel's defaults)\n\n")
	lock := "none"
	switch {
	case m.LockWaitShare > 0 && m.LockHoldMS > 0:
		lock = fmt.Sprintf("%.1f%% find a %.0f ms hold", 100*m.LockWaitShare, m.LockHoldMS)
	case m.LockWaitShare > 0 && m.LockWaitMS > 0:
		lock = fmt.Sprintf("%.0f%% wait %.0f ms", 100*m.LockWaitShare, m.LockWaitMS)
	}
	b.WriteString("| cores | bootstrap (writes) | lookup (GET) | per row | jitter | write lock wait | workers | backlog | proxy timeout |\n|---|---|---|---|---|---|---|---|---|\n")
	fmt.Fprintf(&b, "| %.2f | %.2f ms | %.2f ms | %.3f ms | %.2f | %s | %d | %d | %.0f ms |\n\n", m.Cores, m.BootstrapCPUMS,
		msOf(m.CapacityModel().LookupCost()), m.PerRowCPUMS, m.Jitter, lock, m.Workers, m.Backlog, m.ProxyTimeoutMS)
	open := ""
	switch {
	case m.LockWaitShare > 0 && m.LockHoldMS > 0:
		open = fmt.Sprintf(" A share of the writes (%.1f%%) finds the database's write lock held by a long holder (%.0f ms) and, as SQLite's "+
			"busy handler does, sleeps 1, 2, 5, 10, 15 ms ... without CPU, trying again after each sleep, until the rest of that hold is over: "+
			"the tail the POSTs show at moderate load beyond processor sharing's.", 100*m.LockWaitShare, m.LockHoldMS)
	case m.LockWaitShare > 0:
		open = fmt.Sprintf(" A share of the writes (%.0f%%) waits %.0f ms for the database's write lock without CPU, as SQLite's busy handler "+
			"sleeps: the tail the POSTs show at moderate load beyond processor sharing's.", 100*m.LockWaitShare, m.LockWaitMS)
	}
	if rp.Fit.CoresFactor > 0 && (rp.Fit.CoresFactor != 1 || rp.Fit.OverheadMS != 0) {
		open = fmt.Sprintf(" Then the cores were scaled by %.3f and %.2f ms added to every request's cost, the pair whose open-loop figures "+
			"(overload throughput, latencies at 80%% load) best match: a real server serves Poisson arrivals less efficiently than a closed loop "+
			"that always has its next request queued, and short requests suffer most.", rp.Fit.CoresFactor, rp.Fit.OverheadMS) + open
	}
	if rp.Fit.CPUAnchored && rp.Fit.CPUBootstrapMS > 0 {
		scale := rp.Fit.CostScale
		if scale <= 0 {
			scale = m.BootstrapCPUMS / rp.Fit.CPUBootstrapMS
		}
		lookup := ""
		if rp.Fit.CPULookupMS > 0 {
			lookup = fmt.Sprintf(" for writes (from the POSTs) and %.2f ms + one row for the GET lookup", rp.Fit.CPULookupMS)
		}
		fmt.Fprintf(&b, "How it was fitted: the server's CPU per request, read from /proc (php-fpm and nginx processes), was %.2f ms + %.3f ms per row%s. "+
			"On a shared machine a request also waits for the CPU, so the model's costs are those scaled by %.2f and its cores are the CPU share "+
			"PHP-FPM obtained at saturation (median over the kinds of throughput x CPU per request) scaled by the same factor, which keeps "+
			"throughput = cores / demand.%s The factors (and the jitter) are those whose solo latency, throughputs (closed loop and under overload) "+
			"and simulated p50/p99 at 50%% and 80%% load best match the measurement (RMS log error %.2f). Workers, backlog and proxy timeout are "+
			"the deployment's settings.\n\n",
			rp.Fit.CPUBootstrapMS, rp.Fit.CPUPerRowMS, lookup, scale, open, rp.Fit.Error)
	} else {
		fmt.Fprintf(&b, "How it was fitted: cores and demand are effective values: the demand per kind is cores / saturation throughput, and the "+
			"core count is the one whose solo latency and simulated p50/p99 at 50%% and 80%% load best match the measured ones.%s (RMS log error %.2f). "+
			"Workers, backlog and proxy timeout are the deployment's settings.\n\n", open, rp.Fit.Error)
	}
	b.WriteString("## Real Laravel and fakelaravel side by side\n\n")
	fmt.Fprintf(&b, "Same load against both: the open-loop rates derive from the real app's saturation throughput. Tolerance: %.0f%% for "+
		"throughput and latency; under overload the shares of 502 and 504 must agree within %.0f points and both be present or absent.\n\n",
		100*Tolerance, 100*OverloadTolerance)
	b.WriteString("The last column is what the fitted model itself predicts (fakelaravel/calibrate.SimulatePlan: virtual time, same rates, " +
		"runs as long as the plan's from an idle server, 30 s of arrivals in all): where it is close to the real app and fakelaravel is not, " +
		"the difference comes from fakelaravel's implementation on this machine; where both are off, from the model (or from the noise " +
		"of a p99 over a few seconds of load).\n\n")
	b.WriteString(Table(rp.Rows))
	fmt.Fprintf(&b, "\n%d of %d figures within tolerance, counting only the %d whose real runs had other processes at %.2f cores or less "+
		"(the others measured the machine's other work more than Laravel; they are shown in parentheses).\n", ok, total, total, BusyLimit)
	return b.String()
}
