package js

import (
	"encoding/json"
	"fmt"
	"sort"
	"strings"

	"github.com/dop251/goja"

	"wagate/simulator/metrics"
)

// TextSummary renders a summary as the end-of-test text k6 users read: the group tree with its
// checks (✓/✗ and pass counts), then one line per metric (trends with their summaryTrendStats,
// counters with their rate, rates as a percentage, gauges with min and max) and each metric's
// thresholds. indent prefixes every line.
func TextSummary(s metrics.Summary, indent string) string {
	var b strings.Builder
	writeGroup(&b, s.RootGroup, indent+"  ", true)
	names := make([]string, 0, len(s.Metrics))
	width := 0
	for n := range s.Metrics {
		names = append(names, n)
		width = max(width, len(n))
	}
	sort.Strings(names)
	if len(names) > 0 {
		b.WriteString("\n")
	}
	for _, n := range names {
		m := s.Metrics[n]
		mark := " "
		if len(m.Thresholds) > 0 {
			mark = "✓"
			for _, t := range m.Thresholds {
				if !t.OK {
					mark = "✗"
				}
			}
		}
		fmt.Fprintf(&b, "%s%s %s%s: %s\n", indent, mark, n, strings.Repeat(".", width+3-len(n)), metricValues(m, s.Options.SummaryTrendStats))
		exprs := make([]string, 0, len(m.Thresholds))
		for e := range m.Thresholds {
			exprs = append(exprs, e)
		}
		sort.Strings(exprs)
		for _, e := range exprs {
			st := "✓"
			if !m.Thresholds[e].OK {
				st = "✗"
			}
			fmt.Fprintf(&b, "%s    %s '%s'\n", indent, st, e)
		}
	}
	return b.String()
}

func writeGroup(b *strings.Builder, g metrics.Group, indent string, root bool) {
	if !root {
		fmt.Fprintf(b, "%s█ %s\n\n", indent, g.Name)
		indent += "  "
	}
	for _, c := range g.Checks {
		mark := "✓"
		if c.Fails > 0 {
			mark = "✗"
		}
		fmt.Fprintf(b, "%s%s %s\n", indent, mark, c.Name)
		if c.Fails > 0 {
			total := c.Passes + c.Fails
			fmt.Fprintf(b, "%s ↳  %d%% — ✓ %d / ✗ %d\n", indent, c.Passes*100/total, c.Passes, c.Fails)
		}
	}
	if len(g.Checks) > 0 {
		b.WriteString("\n")
	}
	for _, sub := range g.Groups {
		writeGroup(b, sub, indent, false)
	}
}

func metricValues(m metrics.SummaryMetric, stats []string) string {
	num := func(v float64) string {
		switch m.Contains {
		case metrics.ContainsTime:
			return formatMs(v)
		case metrics.ContainsData:
			return formatBytes(v)
		}
		return fmt.Sprintf("%g", round(v))
	}
	switch m.Type {
	case "trend":
		if len(stats) == 0 {
			stats = metrics.DefaultTrendStats
		}
		parts := make([]string, 0, len(stats))
		for _, st := range stats {
			parts = append(parts, st+"="+num(m.Values[st]))
		}
		return strings.Join(parts, " ")
	case "counter":
		rate := num(m.Values["rate"]) + "/s"
		return fmt.Sprintf("%-10s %s", num(m.Values["count"]), rate)
	case "rate":
		return fmt.Sprintf("%.2f%% %d out of %d", m.Values["rate"]*100, int64(m.Values["passes"]), int64(m.Values["passes"]+m.Values["fails"]))
	case "gauge":
		return fmt.Sprintf("%-10s min=%s max=%s", num(m.Values["value"]), num(m.Values["min"]), num(m.Values["max"]))
	}
	return ""
}

func round(v float64) float64 {
	if v >= 100 || v <= -100 {
		return float64(int64(v*100)) / 100
	}
	return float64(int64(v*100000)) / 100000
}

func formatMs(ms float64) string {
	switch {
	case ms >= 60000:
		return fmt.Sprintf("%.2fm", ms/60000)
	case ms >= 1000:
		return fmt.Sprintf("%.2fs", ms/1000)
	case ms >= 1:
		return fmt.Sprintf("%.2fms", ms)
	}
	return fmt.Sprintf("%.2fµs", ms*1000)
}

func formatBytes(v float64) string {
	switch {
	case v >= 1e9:
		return fmt.Sprintf("%.1f GB", v/1e9)
	case v >= 1e6:
		return fmt.Sprintf("%.1f MB", v/1e6)
	case v >= 1e3:
		return fmt.Sprintf("%.1f kB", v/1e3)
	}
	return fmt.Sprintf("%.0f B", v)
}

// moduleJSLibSummary is the built-in equivalent of https://jslib.k6.io/k6-summary/*/index.js:
// textSummary(data, {indent, enableColors}).
func (vu *VU) moduleJSLibSummary() goja.Value {
	o := vu.RT.NewObject()
	must(o.Set("textSummary", func(call goja.FunctionCall) goja.Value {
		js, err := vu.stringify(call.Argument(0))
		if err != nil {
			panic(err)
		}
		var s metrics.Summary
		if err := json.Unmarshal([]byte(js), &s); err != nil {
			vu.Throw("textSummary: the data is not a k6 summary: %v", err)
		}
		indent := " "
		if opt, ok := call.Argument(1).(*goja.Object); ok {
			if v := opt.Get("indent"); v != nil && !goja.IsUndefined(v) {
				indent = v.String()
			}
		}
		return vu.RT.ToValue(TextSummary(s, indent))
	}))
	must(o.Set("jUnit", vu.unsupported("k6-summary jUnit")))
	return o
}
