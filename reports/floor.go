package reports

import (
	"fmt"
	"strconv"
)

// FloorRatioLimit is the most CPU per API request the gateway may spend, in times the floor's
// (a bare net/http server answering the same JSON, same poll workload, same CPU set, same bench).
const FloorRatioLimit = 1.3

// FigCPUPerRequest is the CPU the process under test (the gateway, or the floor in a floor entry)
// spent per API request, all its work included: its mean CPU over the run divided by the API
// requests per second over the run, in microseconds.
var FigCPUPerRequest = Figure{Name: "CPU per API request", Unit: "µs", Of: cpuPerRequest}

func cpuPerRequest(r *Report) (float64, bool) {
	cpu, ok := gatewayCPU(r)
	m, found := r.Metrics[MetricHTTPReqs]
	if !ok || !found {
		return 0, false
	}
	rate, ok := m.Value("rate")
	if !ok || rate <= 0 {
		return 0, false
	}
	return cpu / 100 / rate * 1e6, true
}

// floorEntry is the bench's floor entry (kind: floor) with a report for users users, or, when
// none has that many, its first floor entry with a report (nil without one). A bench may hold a
// floor for each workload it compares (make bench: floor-100 beside batch-100, floor-1000 beside
// batch-1000).
func (res *Results) floorEntry(users int) *Entry {
	var first *Entry
	for i := range res.Entries {
		e := &res.Entries[i]
		if e.Kind != "floor" || len(e.Reports) == 0 {
			continue
		}
		if e.Users() == users {
			return e
		}
		if first == nil {
			first = e
		}
	}
	return first
}

// floorBeside is what the floor entry of users users measured of fig, as a row shows it after its
// own value ("" without such an entry).
func (res *Results) floorBeside(fig Figure, users int) string {
	fl := res.floorEntry(users)
	if fl == nil || fl.Users() != users {
		return ""
	}
	v, ok := fl.Median(fig)
	if !ok {
		return ""
	}
	return fmt.Sprintf("; the floor under the same polls (%s): %s", fl.Name, fig.Format(v))
}

// checkVsFloor measures a VsFloor target: the scale entry's figure in times the floor entry's.
func (res *Results) checkVsFloor(spec TargetSpec, t Target, scale *Entry) Target {
	if scale == nil {
		if res.floorEntry(0) == nil {
			t.Measured = "add an entry of kind: floor"
		}
		return t
	}
	fl := res.floorEntry(scale.Users())
	if fl == nil {
		t.Measured = "add an entry of kind: floor"
		return t
	}
	t.Where = scale.Name + " vs " + fl.Name
	g, gok := scale.Median(spec.Figure)
	f, fok := fl.Median(spec.Figure)
	if !gok || !fok || f <= 0 {
		return t
	}
	ratio := g / f
	holds := spec.Bound.Holds(ratio)
	t.Measured = fmt.Sprintf("%sx (%s vs %s)", formatFailing(ratio, spec.Bound.Limit, holds), spec.Figure.Format(g), spec.Figure.Format(f))
	t.Status = passFail(holds)
	return t
}

// formatFailing writes v as formatValue does, with more decimals (up to 6) when v fails its
// bound yet would print as the bound itself: 1.3012 against <= 1.3 reads "1.301x FAIL", not
// "1.30x FAIL".
func formatFailing(v, bound float64, holds bool) string {
	s := formatValue(v, "")
	for prec := 3; !holds && prec <= 6 && s == formatValue(bound, ""); prec++ {
		s = strconv.FormatFloat(v, 'f', prec, 64)
	}
	return s
}
