package metrics

import (
	"bytes"
	"crypto/md5"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"sort"

	"wagate/reports"
)

// DefaultTrendStats is k6's default summaryTrendStats.
var DefaultTrendStats = []string{"avg", "min", "med", "max", "p(90)", "p(95)"}

// Summary is k6's handleSummary data: the document k6-html-reporter, k6-reporter and k6-junit
// read. Field names and nesting follow k6 exactly.
type Summary struct {
	RootGroup Group                    `json:"root_group"`
	Options   SummaryOptions           `json:"options"`
	State     SummaryState             `json:"state"`
	Metrics   map[string]SummaryMetric `json:"metrics"`
}

// Group is a k6 group; the simulator has only the root group.
type Group struct {
	Name   string  `json:"name"`
	Path   string  `json:"path"`
	ID     string  `json:"id"`
	Groups []Group `json:"groups"`
	Checks []Check `json:"checks"`
}

// Check is one k6 check's outcome.
type Check struct {
	Name   string `json:"name"`
	Path   string `json:"path"`
	ID     string `json:"id"`
	Passes int64  `json:"passes"`
	Fails  int64  `json:"fails"`
}

// SummaryOptions are the summary options k6 reports.
type SummaryOptions struct {
	SummaryTrendStats []string `json:"summaryTrendStats"`
	SummaryTimeUnit   string   `json:"summaryTimeUnit"`
	NoColor           bool     `json:"noColor"`
}

// SummaryState is the run state k6 reports.
type SummaryState struct {
	IsStdOutTTY       bool    `json:"isStdOutTTY"`
	IsStdErrTTY       bool    `json:"isStdErrTTY"`
	TestRunDurationMs float64 `json:"testRunDurationMs"`
}

// SummaryMetric is one metric in k6's summary: type, contains, values and thresholds by
// expression ({"ok": bool}, true when the threshold held).
type SummaryMetric struct {
	Type       string                     `json:"type"`
	Contains   string                     `json:"contains"`
	Values     map[string]float64         `json:"values"`
	Thresholds map[string]ThresholdStatus `json:"thresholds,omitempty"`
}

// ThresholdStatus is one threshold's outcome in the summary.
type ThresholdStatus struct {
	OK bool `json:"ok"`
}

func md5Hex(s string) string {
	sum := md5.Sum([]byte(s))
	return hex.EncodeToString(sum[:])
}

// BuildSummary renders a report's metrics, thresholds and the run's checks in k6's handleSummary
// shape. trendStats nil means DefaultTrendStats. Trends carry exactly the trend stats asked for
// (computed from the HDR histogram); counters count and rate; rates rate, passes, fails; gauges
// value, min, max.
func BuildSummary(r *reports.Report, checks []CheckResult, trendStats []string, stdoutTTY, stderrTTY bool) Summary {
	if trendStats == nil {
		trendStats = DefaultTrendStats
	}
	s := Summary{
		RootGroup: Group{Name: "", Path: "", ID: md5Hex(""), Groups: []Group{}, Checks: []Check{}},
		Options:   SummaryOptions{SummaryTrendStats: trendStats, SummaryTimeUnit: "", NoColor: false},
		State:     SummaryState{IsStdOutTTY: stdoutTTY, IsStdErrTTY: stderrTTY, TestRunDurationMs: float64(r.Duration().Microseconds()) / 1000},
		Metrics:   map[string]SummaryMetric{},
	}
	for _, c := range checks {
		path := "::" + c.Name
		s.RootGroup.Checks = append(s.RootGroup.Checks, Check{Name: c.Name, Path: path, ID: md5Hex(path), Passes: c.Passes, Fails: c.Fails})
	}
	for name, m := range r.Metrics {
		sm := SummaryMetric{Type: string(m.Type), Contains: m.Contains, Values: map[string]float64{}}
		if sm.Contains == "" {
			sm.Contains = ContainsDefault
		}
		switch m.Type {
		case reports.Trend:
			for _, stat := range trendStats {
				v, _ := m.Value(stat)
				sm.Values[stat] = v
			}
		case reports.Counter:
			sm.Values["count"], sm.Values["rate"] = m.Values["count"], m.Values["rate"]
		case reports.Rate:
			sm.Values["rate"], sm.Values["passes"], sm.Values["fails"] = m.Values["rate"], m.Values["passes"], m.Values["fails"]
		case reports.Gauge:
			sm.Values["value"], sm.Values["min"], sm.Values["max"] = m.Values["value"], m.Values["min"], m.Values["max"]
		}
		s.Metrics[name] = sm
	}
	for _, t := range r.Thresholds {
		sm, ok := s.Metrics[t.Metric]
		if !ok {
			// A threshold on a metric never recorded still appears, as in k6.
			sm = SummaryMetric{Type: "counter", Contains: ContainsDefault, Values: map[string]float64{"count": 0, "rate": 0}}
		}
		if sm.Thresholds == nil {
			sm.Thresholds = map[string]ThresholdStatus{}
		}
		sm.Thresholds[t.Expr] = ThresholdStatus{OK: t.OK}
		s.Metrics[t.Metric] = sm
	}
	return s
}

// Marshal encodes the summary as indented JSON with sorted metric names (deterministic).
func (s Summary) Marshal() ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	if err := enc.Encode(s); err != nil {
		return nil, fmt.Errorf("encode summary: %w", err)
	}
	return buf.Bytes(), nil
}

// SummaryExport renders k6's legacy --summary-export form: values flattened into the metric,
// a rate's "rate" renamed "value", and thresholds mapping expression -> true when FAILED (k6
// #1498, kept for compatibility).
func SummaryExport(s Summary) map[string]any {
	metrics := map[string]any{}
	names := make([]string, 0, len(s.Metrics))
	for n := range s.Metrics {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		m := s.Metrics[n]
		flat := map[string]any{}
		for k, v := range m.Values {
			if m.Type == "rate" && k == "rate" {
				k = "value"
			}
			flat[k] = v
		}
		if len(m.Thresholds) > 0 {
			th := map[string]bool{}
			for expr, st := range m.Thresholds {
				th[expr] = !st.OK
			}
			flat["thresholds"] = th
		}
		metrics[n] = flat
	}
	return map[string]any{"root_group": s.RootGroup, "metrics": metrics}
}
