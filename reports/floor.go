package reports

import "fmt"

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

// floorEntry is the bench's floor entry (kind: floor) with a report, or nil.
func (res *Results) floorEntry() *Entry {
	for i := range res.Entries {
		if e := &res.Entries[i]; e.Kind == "floor" && len(e.Reports) > 0 {
			return e
		}
	}
	return nil
}

// checkVsFloor measures a VsFloor target: the scale entry's figure in times the floor entry's.
func (res *Results) checkVsFloor(spec TargetSpec, t Target, scale *Entry) Target {
	fl := res.floorEntry()
	if fl == nil {
		t.Measured = "add an entry of kind: floor"
		return t
	}
	if scale == nil {
		return t
	}
	t.Where = scale.Name + " vs " + fl.Name
	g, gok := scale.Median(spec.Figure)
	f, fok := fl.Median(spec.Figure)
	if !gok || !fok || f <= 0 {
		return t
	}
	ratio := g / f
	t.Measured = fmt.Sprintf("%sx (%s vs %s)", formatValue(ratio, ""), spec.Figure.Format(g), spec.Figure.Format(f))
	t.Status = passFail(spec.Bound.Holds(ratio))
	return t
}
