package reports

import (
	"fmt"
	"math"
	"strings"
)

// Figure is one headline number extracted from a report: the rows of the seed table, the
// docs/design.md's targets and the tables of `compare`.
type Figure struct {
	// Name is the figure's label, e.g. "Laravel requests/min".
	Name string
	// Unit is the unit of the value: "req/min", "ms", "% of a core", "KiB", "".
	Unit string
	// Of extracts the value from a report; false when the report lacks the data.
	Of func(*Report) (float64, bool)
}

// Format renders v with the figure's unit at a readable precision.
func (f Figure) Format(v float64) string {
	return formatValue(v, f.Unit)
}

func formatValue(v float64, unit string) string {
	var num string
	switch a := math.Abs(v); {
	case a == 0:
		num = "0"
	case a >= 1000 || (v == math.Trunc(v) && a < 1e15):
		num = groupThousands(math.Round(v))
	case a >= 100:
		num = fmt.Sprintf("%.0f", v)
	case a >= 10:
		num = fmt.Sprintf("%.1f", v)
	case a >= 1:
		num = fmt.Sprintf("%.2f", v)
	default:
		num = fmt.Sprintf("%.3f", v)
	}
	switch unit {
	case "":
		return num
	case "%", "% of a core":
		return num + "%"
	default:
		return num + " " + unit
	}
}

func groupThousands(v float64) string {
	s := fmt.Sprintf("%.0f", math.Abs(v))
	var b strings.Builder
	if v < 0 {
		b.WriteByte('-')
	}
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	return b.String()
}

// The headline figures.
var (
	// FigLaravelRPM is the Laravel request rate while users are active: the simulator's
	// laravel_requests_per_minute gauge (mean over the intervals after the scenario's warmup), else
	// the mean of the series' per-interval totals over the intervals with active users, else the
	// laravel_reqs counter's rate.
	FigLaravelRPM = Figure{Name: "Laravel requests/min", Unit: "req/min", Of: laravelRPM}
	// FigLaravelRPMPerUser is FigLaravelRPM divided by the scenario's users.
	FigLaravelRPMPerUser = Figure{Name: "Laravel requests/min per user", Unit: "req/min", Of: func(r *Report) (float64, bool) {
		v, ok := laravelRPM(r)
		if !ok || r.Scenario.Users == 0 {
			return 0, false
		}
		return v / float64(r.Scenario.Users), true
	}}
	// FigAPIMean is the gateway API's mean latency.
	FigAPIMean = Figure{Name: "API latency mean", Unit: "ms", Of: metricValue(MetricHTTPReqDuration, "avg")}
	// FigAPIP95 is the gateway API's 95th percentile latency.
	FigAPIP95 = Figure{Name: "API latency p95", Unit: "ms", Of: metricValue(MetricHTTPReqDuration, "p(95)")}
	// FigAPIP99 is the gateway API's 99th percentile latency.
	FigAPIP99 = Figure{Name: "API latency p99", Unit: "ms", Of: metricValue(MetricHTTPReqDuration, "p(99)")}
	// FigHighP99 is the p99 delay of HIGH priority events into Laravel.
	FigHighP99 = Figure{Name: "HIGH event delay p99", Unit: "ms", Of: delayValue("high", "p(99)")}
	// FigNormalP99 is the p99 delay of normal priority events into Laravel.
	FigNormalP99 = Figure{Name: "normal event delay p99", Unit: "ms", Of: delayValue("normal", "p(99)")}
	// FigLaravelRequests is the number of requests Laravel received over the whole run (warmup
	// and drain included): in batch mode the steady-state rate can be zero while pairing and the
	// end of the run still cost requests.
	FigLaravelRequests = Figure{Name: "Laravel requests, whole run", Unit: "", Of: metricValue(MetricLaravelReqs, "count")}
	// FigLaravelResponseP99 is the p99 of Laravel's answer time, queue wait included.
	FigLaravelResponseP99 = Figure{Name: "Laravel response time p99", Unit: "ms", Of: metricValue(MetricLaravelResponseTime, "p(99)")}
	// FigLaravelCPU is the real Laravel app's mean CPU use in % of one core (runs with the real
	// app only; the model's CPU is simulated, not spent).
	FigLaravelCPU = Figure{Name: "Laravel CPU (real app)", Unit: "% of a core", Of: metricValue(MetricLaravelCPU, "avg")}
	// FigGatewayCPU is the gateway's mean CPU use in % of one core.
	FigGatewayCPU = Figure{Name: "gateway CPU", Unit: "% of a core", Of: gatewayCPU}
	// FigGatewayRSSMax is the gateway's peak resident memory in MiB.
	FigGatewayRSSMax = Figure{Name: "gateway RSS peak", Unit: "MiB", Of: func(r *Report) (float64, bool) {
		var peak int64
		for _, p := range r.Series {
			peak = max(peak, p.GatewayRSSBytes)
		}
		if m, ok := r.Metrics[MetricGatewayRSS]; ok {
			peak = max(peak, int64(m.Values["max"]))
		}
		return float64(peak) / (1 << 20), peak > 0
	}}
	// FigMemPerSession is gateway RSS per connected session at the interval with the most
	// connected sessions, in KiB (an upper bound: it includes the process's baseline).
	FigMemPerSession = Figure{Name: "gateway memory per connected session", Unit: "KiB", Of: memPerSession}
	// FigLost counts lost updates plus stale overwrites (ground truth).
	FigLost = Figure{Name: "lost + stale final states", Unit: "", Of: func(r *Report) (float64, bool) {
		return float64(r.GroundTruth.LostUpdates + r.GroundTruth.StaleOverwrites), true
	}}
	// FigDuplicates counts duplicate applications (ground truth).
	FigDuplicates = Figure{Name: "duplicate applications", Unit: "", Of: func(r *Report) (float64, bool) {
		return float64(r.GroundTruth.DuplicateApplications), true
	}}
	// FigAPIFailed is the share of failed gateway API requests in %.
	FigAPIFailed = Figure{Name: "API requests failed", Unit: "%", Of: func(r *Report) (float64, bool) {
		m, ok := r.Metrics[MetricHTTPReqFailed]
		if !ok {
			return 0, false
		}
		return m.Values["rate"] * 100, true
	}}
)

// CompareFigures are the figures `compare` tabulates, in order.
var CompareFigures = []Figure{FigLaravelRPM, FigLaravelRPMPerUser, FigLaravelResponseP99, FigLaravelCPU, FigAPIMean, FigAPIP95, FigAPIP99,
	FigHighP99, FigNormalP99, FigGatewayCPU, FigGatewayRSSMax, FigMemPerSession, FigAPIFailed, FigLost, FigDuplicates}

func laravelRPM(r *Report) (float64, bool) {
	if m, ok := r.Metrics[MetricLaravelRequestsPerMinute]; ok {
		if v, ok := m.Values["value"]; ok {
			return v, true
		}
	}
	var sum float64
	var n int
	for _, p := range r.Series {
		if p.ActiveUsers > 0 {
			sum += p.LaravelRequestsPerMinTotal()
			n++
		}
	}
	if n > 0 {
		return sum / float64(n), true
	}
	if m, ok := r.Metrics[MetricLaravelReqs]; ok {
		return m.Values["rate"] * 60, true
	}
	return 0, false
}

// metricValue reads one value of a metric's summary ("count", "avg", "p(99)", ...).
func metricValue(metric, key string) func(*Report) (float64, bool) {
	return func(r *Report) (float64, bool) {
		m, ok := r.Metrics[metric]
		if !ok {
			return 0, false
		}
		return m.Value(key)
	}
}

// delayValue reads event_delivery_delay for one priority: the sub-metric {priority:P} when the
// report has it, else the merged histograms of every sub-metric tagged priority:P.
func delayValue(priority, key string) func(*Report) (float64, bool) {
	return func(r *Report) (float64, bool) {
		m, ok := SubMetric(r, MetricEventDeliveryDelay, "priority:"+priority)
		if !ok {
			return 0, false
		}
		return m.Value(key)
	}
}

// SubMetric returns the trend base{tag}, or, when the report only has finer sub-metrics such as
// base{kind:qr,priority:high}, the merge of every sub-metric carrying tag (histograms merged).
func SubMetric(r *Report, base, tag string) (Metric, bool) {
	if m, ok := r.Metrics[base+"{"+tag+"}"]; ok {
		return m, true
	}
	var acc *Histogram
	for _, name := range r.MetricNames() {
		b, tags := splitMetricName(name)
		if b != base || !contains(tags, tag) {
			continue
		}
		m := r.Metrics[name]
		if m.Histogram == nil {
			continue
		}
		if acc == nil {
			acc = m.Histogram.Clone()
		} else if acc.Merge(m.Histogram) != nil {
			return Metric{}, false
		}
	}
	if acc == nil {
		return Metric{}, false
	}
	return NewTrendMetric("time", acc), true
}

// splitMetricName splits "name{a:b,c:d}" into "name" and ["a:b", "c:d"].
func splitMetricName(name string) (string, []string) {
	i := strings.IndexByte(name, '{')
	if i < 0 || !strings.HasSuffix(name, "}") {
		return name, nil
	}
	var tags []string
	for _, t := range strings.Split(name[i+1:len(name)-1], ",") {
		tags = append(tags, strings.TrimSpace(t))
	}
	return name[:i], tags
}

func gatewayCPU(r *Report) (float64, bool) {
	if m, ok := r.Metrics[MetricGatewayCPU]; ok {
		if v, ok := m.Value("avg"); ok {
			return v, true
		}
		if v, ok := m.Value("value"); ok {
			return v, true
		}
	}
	if len(r.Series) == 0 {
		return 0, false
	}
	var sum float64
	for _, p := range r.Series {
		sum += p.GatewayCPUPercent
	}
	return sum / float64(len(r.Series)), true
}

func memPerSession(r *Report) (float64, bool) {
	best := -1
	for i, p := range r.Series {
		if p.SessionsByState["connected"] > 0 && (best < 0 || p.SessionsByState["connected"] > r.Series[best].SessionsByState["connected"]) {
			best = i
		}
	}
	if best < 0 {
		return 0, false
	}
	p := r.Series[best]
	return float64(p.GatewayRSSBytes) / float64(p.SessionsByState["connected"]) / 1024, true
}
