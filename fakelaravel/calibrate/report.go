package calibrate

import (
	"fmt"
	"strconv"
	"time"

	"wagate/fakelaravel"
	"wagate/reports/document"
)

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

// Markdown renders the whole calibration report: its Outline laid out as Markdown.
func (rp Report) Markdown() string { return document.Markdown(rp.Outline()) }

// Outline is calibration.md's content: how and where the figures were measured, the fitted model
// and how it was fitted, then the real app and fakelaravel side by side.
func (rp Report) Outline() document.Document {
	ok, total := Passed(rp.Rows)
	return document.Document{
		Title: "fakelaravel calibration against the real Laravel app",
		Intro: []document.Block{
			document.Text(fmt.Sprintf("Written by `make calibrate-laravel` (wagate/fakelaravel/calibrate) on %s. Do not edit by hand.", rp.Real.Started.Format(time.RFC3339))),
			document.Text(fmt.Sprintf("Measured: %s, on loopback, with a bounded load (closed loop for saturation, Poisson open loop for the loads).", rp.Machine.Software)),
			document.Text(rp.machineText()),
		},
		Sections: []document.Section{
			{ID: "model", Heading: "Fitted model (fakelaravel/calibration.json, fakelaravel's defaults)", Blocks: []document.Block{
				rp.modelTable(),
				document.Text(rp.fitText()),
			}},
			{ID: "side-by-side", Heading: "Real Laravel and fakelaravel side by side", Blocks: []document.Block{
				document.Text(fmt.Sprintf("Same load against both: the open-loop rates derive from the real app's saturation throughput. Tolerance: %.0f%% for "+
					"throughput and latency; under overload the shares of 502 and 504 must agree within %.0f points and both be present or absent.",
					100*Tolerance, 100*OverloadTolerance)),
				document.Text("The last column is what the fitted model itself predicts (fakelaravel/calibrate.SimulatePlan: virtual time, same rates, " +
					"runs as long as the plan's from an idle server, 30 s of arrivals in all): where it is close to the real app and fakelaravel is not, " +
					"the difference comes from fakelaravel's implementation on this machine; where both are off, from the model (or from the noise " +
					"of a p99 over a few seconds of load)."),
				Table(rp.Rows),
				document.Text(fmt.Sprintf("%d of %d figures within tolerance, counting only the %d whose real runs had other processes at %.2f cores or less "+
					"(the others measured the machine's other work more than Laravel; they are shown in parentheses).", ok, total, total, BusyLimit)),
			}},
		},
	}
}

// machineText describes the host and how the tool coped with sharing it.
func (rp Report) machineText() string {
	return fmt.Sprintf("Machine: %d CPUs; load average %.2f / %.2f / %.2f before and %.2f / %.2f / %.2f after the real app's runs; "+
		"other processes used %.2f cores (median) while the app was saturated. The machine was shared, so the figures are noisy: "+
		"every run is repeated (%d times for the loads) and only the quiet runs count (other processes' CPU within %.2f cores of the quietest "+
		"run of the same phase; saturation: their median; latencies: their samples pooled), and before each run the tool waited "+
		"(at most %v in all) for other processes to use at most %.2f cores.",
		rp.Machine.CPUs, rp.Machine.LoadAverageBefore[0], rp.Machine.LoadAverageBefore[1], rp.Machine.LoadAverageBefore[2],
		rp.Machine.LoadAverageAfter[0], rp.Machine.LoadAverageAfter[1], rp.Machine.LoadAverageAfter[2], rp.Machine.OthersCores,
		rp.Real.Plan.LoadRepeats, QuietMargin, rp.Real.Plan.QuietWaitBudget, rp.Real.Plan.QuietCores)
}

// modelTable is the fitted model's one row.
func (rp Report) modelTable() document.Table {
	m := rp.Model
	lock := "none"
	switch {
	case m.LockWaitShare > 0 && m.LockHoldMS > 0:
		lock = fmt.Sprintf("%.1f%% find a %.0f ms hold", 100*m.LockWaitShare, m.LockHoldMS)
	case m.LockWaitShare > 0 && m.LockWaitMS > 0:
		lock = fmt.Sprintf("%.0f%% wait %.0f ms", 100*m.LockWaitShare, m.LockWaitMS)
	}
	return document.Table{
		Header: []string{"cores", "bootstrap (writes)", "lookup (GET)", "per row", "jitter", "write lock wait", "workers", "backlog", "proxy timeout"},
		Rows: [][]string{{
			fmt.Sprintf("%.2f", m.Cores), fmt.Sprintf("%.2f ms", m.BootstrapCPUMS), fmt.Sprintf("%.2f ms", msOf(m.CapacityModel().LookupCost())),
			fmt.Sprintf("%.3f ms", m.PerRowCPUMS), fmt.Sprintf("%.2f", m.Jitter), lock, strconv.Itoa(m.Workers), strconv.Itoa(m.Backlog),
			fmt.Sprintf("%.0f ms", m.ProxyTimeoutMS),
		}},
	}
}

// fitText says how the model was fitted: anchored on the server's measured CPU per request, or
// from effective cores and demand alone.
func (rp Report) fitText() string {
	m := rp.Model
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
	if !rp.Fit.CPUAnchored || rp.Fit.CPUBootstrapMS <= 0 {
		return fmt.Sprintf("How it was fitted: cores and demand are effective values: the demand per kind is cores / saturation throughput, and the "+
			"core count is the one whose solo latency and simulated p50/p99 at 50%% and 80%% load best match the measured ones.%s (RMS log error %.2f). "+
			"Workers, backlog and proxy timeout are the deployment's settings.", open, rp.Fit.Error)
	}
	scale := rp.Fit.CostScale
	if scale <= 0 {
		scale = m.BootstrapCPUMS / rp.Fit.CPUBootstrapMS
	}
	lookup := ""
	if rp.Fit.CPULookupMS > 0 {
		lookup = fmt.Sprintf(" for writes (from the POSTs) and %.2f ms + one row for the GET lookup", rp.Fit.CPULookupMS)
	}
	return fmt.Sprintf("How it was fitted: the server's CPU per request, read from /proc (php-fpm and nginx processes), was %.2f ms + %.3f ms per row%s. "+
		"On a shared machine a request also waits for the CPU, so the model's costs are those scaled by %.2f and its cores are the CPU share "+
		"PHP-FPM obtained at saturation (median over the kinds of throughput x CPU per request) scaled by the same factor, which keeps "+
		"throughput = cores / demand.%s The factors (and the jitter) are those whose solo latency, throughputs (closed loop and under overload) "+
		"and simulated p50/p99 at 50%% and 80%% load best match the measurement (RMS log error %.2f). Workers, backlog and proxy timeout are "+
		"the deployment's settings.",
		rp.Fit.CPUBootstrapMS, rp.Fit.CPUPerRowMS, lookup, scale, open, rp.Fit.Error)
}

// Table is the side-by-side comparison: one row per figure, its verdict marked "(yes; machine
// busy)" or "(no; machine busy)" where the real figure was not counted (see Row.Counted).
func Table(rows []Row) document.Table {
	t := document.Table{Header: []string{"request", "figure", "real Laravel", "fakelaravel", "fake vs real", "within tolerance", "model, simulated", "others' cores during the real run"}}
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
		t.Rows = append(t.Rows, []string{r.Kind.Label(), r.Metric, fmtValue(r.Real, r.Unit), fmtValue(r.Fake, r.Unit), r.Delta(), mark,
			fmtValue(r.Model, r.Unit), fmt.Sprintf("%.2f", r.BusyCores)})
	}
	return t
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
