package cost

import (
	"encoding/json"
	"fmt"
	"io"
	"path/filepath"
	"runtime"
	"strings"
	"text/tabwriter"
	"time"

	"wagate/reports"
	"wagate/simulator/k6/options"
	simmetrics "wagate/simulator/metrics"
	"wagate/simulator/threshold"
)

// groundTruthTargets hold for the sessions of both halves, as in every scenario.
var groundTruthTargets = map[string][]string{
	"lost_updates":     {"count==0"},
	"stale_overwrites": {"count==0"},
}

// Report is the comparison's report.json: the world's metrics over both halves, the figures as
// gauges, Targets and the ground truth as thresholds with their outcome. A target whose figure
// was not measured fails (a missing figure is a broken comparison, not a pass).
func Report(res Result, reg *simmetrics.Registry, script, label string, start, end time.Time) (*reports.Report, error) {
	figs := res.Figures()
	for name, v := range figs {
		reg.Set(name, v, nil)
	}
	all := map[string][]string{}
	for k, v := range Targets {
		all[k] = v
	}
	for k, v := range groundTruthTargets {
		all[k] = v
	}
	b, err := json.Marshal(map[string]any{"thresholds": all})
	if err != nil {
		return nil, err
	}
	o, err := options.Parse(b)
	if err != nil {
		return nil, err
	}
	sets, err := o.ParsedThresholds()
	if err != nil {
		return nil, err
	}
	rep := &reports.Report{
		SchemaVersion: reports.SchemaVersion,
		Label:         label,
		Scenario: reports.Scenario{Name: strings.TrimSuffix(filepath.Base(script), filepath.Ext(script)) + " (k6-cost)", File: script,
			Users: int(max(res.Native.VUs, res.JS.VUs))},
		Environment:    reports.Environment{Start: start, End: end, Cores: runtime.NumCPU(), GoVersion: runtime.Version(), OS: runtime.GOOS, Arch: runtime.GOARCH},
		SeriesInterval: reports.Duration(10 * time.Second),
		Metrics:        reg.Snapshot(end.Sub(start), nil, nil),
		GroundTruth:    res.GroundTruth,
	}
	for _, s := range sets {
		m, has := rep.Metrics[s.Key.String()]
		var v threshold.Values
		if has {
			v = simmetrics.Values{M: m}
		}
		_, figure := Targets[s.Key.Metric]
		for _, r := range s.Evaluate(v) {
			tr := reports.ThresholdResult{Metric: s.Key.String(), Expr: r.Source, OK: r.OK}
			if r.HasValue {
				val := r.Value
				tr.Observed = &val
			} else if figure {
				tr.OK = false
			}
			rep.Thresholds = append(rep.Thresholds, tr)
		}
	}
	return rep, nil
}

// WriteTable writes the comparison for a person: each half's VUs, requests, CPU and memory, then
// the figures against their targets.
func WriteTable(w io.Writer, res Result) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "half\tVUs\tgateway requests\tVU CPU\tper request\tGC CPU\tprocess CPU\tper request\tinit CPU\tallocated\tmemory before\tafter init\tpeak\twall")
	for _, h := range []struct {
		name string
		p    Phase
	}{{"native", res.Native}, {"js", res.JS}} {
		p := h.p
		fmt.Fprintf(tw, "%s\t%d\t%.0f\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", h.name, p.VUs, p.Requests,
			p.VUCPU.Round(time.Millisecond), p.VUCPUPerRequest().Round(time.Microsecond), p.GCCPU.Round(time.Millisecond),
			p.ProcessCPU.Round(time.Millisecond), p.ProcessCPUPerRequest().Round(time.Microsecond), p.InitCPU.Round(time.Millisecond), mib(p.Allocated),
			mib(p.MemoryBefore), mib(p.MemoryAfterInit), mib(p.MemoryPeak), p.Wall.Round(time.Second))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	figs := res.Figures()
	fmt.Fprintln(w)
	for _, f := range []struct{ name, unit, target string }{
		{FigNativeCPUPerRequest, "µs", ""}, {FigJSCPUPerRequest, "µs", ""},
		{FigRequestRatio, "x", "(gateway requests, JS over native: 1 = the same work)"},
		{FigCPURatio, "x", "<= 1.5x"}, {FigCPUWithGCRatio, "x", "<= 1.5x (each half's GC charged to its VUs)"}, {FigProcessCPURatio, "x", "(the in-process world included)"},
		{FigVUInitMemory, "KiB", "<= 200 KiB"}, {FigVUMemory, "KiB", "<= 200 KiB"},
	} {
		v, ok := figs[f.name]
		text := "not measured"
		switch {
		case !ok:
		case f.unit == "KiB":
			text = fmt.Sprintf("%.1f KiB", v/1024)
		case f.unit == "x":
			text = fmt.Sprintf("%.2fx", v)
		default:
			text = fmt.Sprintf("%.1f %s", v, f.unit)
		}
		fmt.Fprintf(w, "%-40s %-16s %s\n", f.name, text, f.target)
	}
	_, err := fmt.Fprintf(w, "ground truth: %d sessions, %d lost, %d stale\n", res.GroundTruth.Sessions, res.GroundTruth.LostUpdates, res.GroundTruth.StaleOverwrites)
	return err
}

func mib(b uint64) string {
	if b == 0 {
		return "-"
	}
	return fmt.Sprintf("%.1f MiB", float64(b)/(1<<20))
}
