package reports

import (
	"sort"
)

// MetricFaultRecoveryTime is the simulator's fault_recovery_time trend (ms, tagged fault).
const MetricFaultRecoveryTime = "fault_recovery_time"

// MetricFaultSessionsBackTime is the simulator's fault_sessions_back_time trend (ms, tagged
// fault): the part of a recovery until 90% of the sessions are online again at WhatsApp.
const MetricFaultSessionsBackTime = "fault_sessions_back_time"

// SessionScaleEntry is the entry of `make bench-scale` (benchmarks/scale.yaml) the scale targets
// are measured on: 10,000 sessions in one gateway process, light polling, a fakewa restart.
const SessionScaleEntry = "sessions-10000"

// The scale figures, read from the series of a run whose users pair once and stay connected
// (scenarios/scale-10000.yaml). The baseline is the series' first point, taken before the first
// user arrives; the peak is the point with the most sessions connected (before the restart).
var (
	// FigSessionsPeak is the most sessions connected at once (Laravel's view).
	FigSessionsPeak = Figure{Name: "sessions connected at once", Unit: "", Of: func(r *Report) (float64, bool) {
		_, peak, ok := scalePoints(r)
		if !ok {
			return 0, false
		}
		return float64(connected(peak)), true
	}}
	// FigSessionsAtEnd is the sessions connected at the series' last point.
	FigSessionsAtEnd = Figure{Name: "sessions connected at the end", Unit: "", Of: func(r *Report) (float64, bool) {
		if len(r.Series) == 0 {
			return 0, false
		}
		return float64(connected(r.Series[len(r.Series)-1])), true
	}}
	// FigRecoveryMax is the longest fault_recovery_time: from the fault until 90% of the sessions
	// online before it are online again and /healthz answers.
	FigRecoveryMax = Figure{Name: "fault recovery (90% of sessions back), max", Unit: "ms", Of: metricValue(MetricFaultRecoveryTime, "max")}
	// FigSessionsBackMax is the longest fault_sessions_back_time: the recovery's first part, until
	// 90% of the sessions are online at WhatsApp again (FigRecoveryMax also waits for the gateway's
	// outbox to be back to its depth before the fault, that is for Laravel to have been told).
	FigSessionsBackMax = Figure{Name: "online at WhatsApp again", Unit: "ms", Of: metricValue(MetricFaultSessionsBackTime, "max")}
	// FigRSSPerSessionOverBaseline is the gateway's RSS at the peak over its RSS at the baseline,
	// per session connected since.
	FigRSSPerSessionOverBaseline = Figure{Name: "gateway RSS per connected session over the baseline", Unit: "KiB", Of: func(r *Report) (float64, bool) {
		base, peak, ok := scalePoints(r)
		if !ok {
			return 0, false
		}
		return float64(peak.GatewayRSSBytes-base.GatewayRSSBytes) / float64(connected(peak)-connected(base)) / 1024, true
	}}
	// FigGoroutinesPerSession is the gateway's goroutines at the peak over the baseline's, per
	// session connected since (the pollers' connections included: one per open connection).
	FigGoroutinesPerSession = Figure{Name: "gateway goroutines per connected session over the baseline", Unit: "", Of: func(r *Report) (float64, bool) {
		base, peak, ok := scalePoints(r)
		if !ok || peak.Goroutines == 0 {
			return 0, false
		}
		return float64(peak.Goroutines-base.Goroutines) / float64(connected(peak)-connected(base)), true
	}}
	// FigPlateauCPUPer1000 is the gateway's CPU while every session is connected and the Laravel
	// app polls (the median over the series points with at least 99.9% of the peak connected and
	// API requests in their interval), in CPU seconds per 10 s per 1000 connected sessions; the
	// light polling's requests are in it.
	FigPlateauCPUPer1000 = Figure{Name: "gateway CPU with every session connected (light polling), per 1000 sessions", Unit: "s per 10 s", Of: func(r *Report) (float64, bool) {
		return plateauCPUPer1000(r, polledInterval)
	}}
	// FigIdleCPUPer1000 is the gateway's CPU while every session is connected and nothing polls:
	// the same median over the plateau's points whose interval had users but no API request (the
	// scenario's quiet window, scenarios/scale-10000.yaml), what issue 18's idle CPU target is
	// set on. The simulator's own reads of the gateway (/metrics, /proc) are in it.
	FigIdleCPUPer1000 = Figure{Name: "gateway CPU with every session connected and no polling, per 1000 sessions", Unit: "s per 10 s", Of: func(r *Report) (float64, bool) {
		return plateauCPUPer1000(r, idleInterval)
	}}
)

// idleInterval reports whether the users ran and made no API request in the point's interval
// (no latency sample: neither a histogram nor percentiles): the scenario's quiet window. After
// the users stopped (the drain, then the ground truth's own reads of every session, which the
// last point holds) nothing is recorded as a request either, but that is not the idle cost.
func idleInterval(p SeriesPoint) bool {
	return p.ActiveUsers > 0 && !polledInterval(p)
}

// polledInterval reports whether the client made API requests in the point's interval.
func polledInterval(p SeriesPoint) bool {
	return p.APILatencyHistogram != nil || p.APILatency != (Percentiles{})
}

// connected is the sessions connected at a series point.
func connected(p SeriesPoint) int { return p.SessionsByState["connected"] }

// scalePoints returns the series' first point (the baseline) and the point with the most
// sessions connected; false when no session connected after the baseline.
func scalePoints(r *Report) (base, peak SeriesPoint, ok bool) {
	if len(r.Series) < 2 {
		return base, peak, false
	}
	base, peak = r.Series[0], r.Series[0]
	for _, p := range r.Series[1:] {
		if connected(p) > connected(peak) {
			peak = p
		}
	}
	return base, peak, connected(peak) > connected(base)
}

// plateauCPUPer1000 is the gateway's median CPU over the points with at least 99.9% of the peak
// connected that keep holds, per 10 s and 1000 connected sessions; false when there are none.
func plateauCPUPer1000(r *Report, keep func(SeriesPoint) bool) (float64, bool) {
	_, peak, ok := scalePoints(r)
	if !ok {
		return 0, false
	}
	var cpu []float64
	var sessions []int
	for _, p := range r.Series {
		if float64(connected(p)) >= 0.999*float64(connected(peak)) && keep(p) {
			cpu = append(cpu, p.GatewayCPUPercent)
			sessions = append(sessions, connected(p))
		}
	}
	if len(cpu) == 0 {
		return 0, false
	}
	sort.Float64s(cpu)
	sort.Ints(sessions)
	mid := len(cpu) / 2
	// % of a core is CPU seconds per 100 s: x 10 / 100 per 10 s, then per 1000 sessions.
	return cpu[mid] / 10 * 1000 / float64(sessions[mid]), true
}
