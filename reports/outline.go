package reports

import (
	"fmt"
	"maps"
	"math"
	"slices"
	"sort"
	"strings"
	"time"

	"wagate/reports/document"
)

// Seed claims: the redesign's table (docs/design.md), never measured by the seed.
const (
	seedRPMBefore   = 40000.0
	seedRPMAfter    = 4000.0
	seedUsersBefore = 100
	seedUsersAfter  = 1000
)

// Outline is the bench report's content, in order, for report.md and report.html alike: the
// header lines, the seed table measured, docs/design.md's targets, the entries, the real Laravel
// app beside the model (when an entry ran it), the capacity search (when one ran), the charts
// (page only; a note when there are none), then one k6-style summary per entry (thresholds first).
func Outline(res *Results, charts []document.Chart) document.Document {
	d := document.Document{Title: "wagate bench report", Meta: headerLines(res)}
	d.Sections = append(d.Sections,
		document.Section{ID: "seed", Heading: "The seed's claims, measured", Nav: "Seed table",
			Blocks: []document.Block{seedTable(res), document.Note(seedTableNote)}},
		document.Section{ID: "targets", Heading: "Targets (docs/design.md)", Nav: "Targets", Blocks: []document.Block{targetsTable(res)}},
		document.Section{ID: "entries", Heading: "Entries", Nav: "Entries", Blocks: []document.Block{entriesTable(res)}})
	if t := realLaravelTable(res); t != nil {
		d.Sections = append(d.Sections, document.Section{ID: "real-laravel", Heading: "fakelaravel and the real Laravel app, same workload",
			Blocks: []document.Block{*t, document.Note(realLaravelNote)}})
	}
	if len(res.Bench.Capacity) > 0 {
		c := document.Section{ID: "capacity", Heading: "Capacity"}
		if res.Bench.CapacityFrom != "" {
			c.Blocks = append(c.Blocks, document.Note(fmt.Sprintf("From the capacity search in `%s`.", res.Bench.CapacityFrom)))
		}
		c.Blocks = append(c.Blocks, capacityTable(res))
		d.Sections = append(d.Sections, c)
	}
	cs := document.Section{ID: "charts", Heading: "Charts", Nav: "Charts", PageOnly: true}
	for _, c := range charts {
		cs.Blocks = append(cs.Blocks, c)
	}
	if len(cs.Blocks) == 0 {
		cs.Blocks = []document.Block{document.Note("No series were recorded.")}
	}
	d.Sections = append(d.Sections, cs)
	for i := range res.Entries {
		d.Sections = append(d.Sections, entrySection(&res.Entries[i]))
	}
	return d
}

// entrySection is an entry's summary: what ran, then (when a run wrote a report) its thresholds,
// metrics and ground truth.
func entrySection(e *Entry) document.Section {
	s := document.Section{ID: "entry-" + e.Name, Heading: fmt.Sprintf("Entry `%s`", e.Name), Nav: e.Name}
	for _, line := range entryLines(e) {
		s.Blocks = append(s.Blocks, document.Note(line))
	}
	if len(e.Reports) == 0 {
		return s
	}
	var thresholds document.Block = document.Note("none")
	if t := thresholdsTable(e); t != nil {
		thresholds = *t
	}
	s.Sections = []document.Section{
		{Heading: "Thresholds", Blocks: []document.Block{thresholds}},
		{Heading: "Metrics", Blocks: []document.Block{metricsTable(e)}},
		{Heading: "Ground truth", Blocks: []document.Block{document.Text(groundTruthLine(e))}},
	}
	return s
}

func headerLines(res *Results) []string {
	env := res.Environment()
	lines := []string{fmt.Sprintf("when: %s to %s (%s)", fmtTime(res.Bench.Start), fmtTime(res.Bench.End), fmtDuration(res.Bench.End.Sub(res.Bench.Start)))}
	if res.Bench.Matrix != "" {
		l := fmt.Sprintf("matrix: `%s`", res.Bench.Matrix)
		if res.Bench.Command != "" {
			l += fmt.Sprintf(", command: `%s`", res.Bench.Command)
		}
		lines = append(lines, l)
	}
	lines = append(lines,
		fmt.Sprintf("machine: %s, %d cores, %s/%s, host %s", orDash(env.CPUModel), env.Cores, orDash(env.OS), orDash(env.Arch), orDash(env.Hostname)),
		fmt.Sprintf("software: %s; Redis: %s; gateway: %s", orDash(env.GoVersion), orDash(env.Redis), orDash(env.GatewayVersion)))
	return lines
}

const seedTableNote = "Measured values are medians over an entry's repeats. Laravel requests/min is the mean over the " +
	"series intervals while users ran, after the scenario's warmup; API latency is the gateway REST API as the Laravel app calls it; gateway CPU is " +
	"the gateway process's mean CPU in % of one core. Users supported comes from `make bench-capacity` when it ran, " +
	"else it is a lower bound: the largest entry whose thresholds all held."

func seedTable(res *Results) document.Table {
	legacy, batch, scale := res.roles()
	colName := func(label string, e *Entry) string {
		if e == nil {
			return label + " (not run)"
		}
		return fmt.Sprintf("%s (`%s`, %d users)", label, e.Name, e.Users())
	}
	t := document.Table{
		Header: []string{"metric", "seed before", "seed after", colName("measured legacy", legacy), colName("measured batch", batch), "gain (seed's claim)"},
		Right:  []bool{false, true, true, true, true, false},
	}
	row := func(name string, before, after string, fig Figure, gain func(l, bt float64) string, claim string) {
		lv, lok := medianOf(legacy, fig)
		bv, bok := medianOf(batch, fig)
		g := "—"
		if lok && bok {
			g = gain(lv, bv)
		}
		t.Rows = append(t.Rows, []string{name, before, after, cell(fig, lv, lok), cell(fig, bv, bok), fmt.Sprintf("%s (seed: %s)", g, claim)})
	}
	row("Laravel requests/min", groupThousands(seedRPMBefore), groupThousands(seedRPMAfter), FigLaravelRPM, reductionGain, "-90%")
	row("API latency, mean", "500 ms", "50 ms", FigAPIMean, speedupGain, "10x")
	row("API latency, p99", "—", "—", FigAPIP99, speedupGain, "—")
	row("gateway CPU", "80%", "15%", FigGatewayCPU, percentGain, "-83%")
	lu, bu := usersSupported(res, legacy, ModeLegacy), usersSupported(res, scale, ModeBatch)
	t.Rows = append(t.Rows, []string{"users supported", fmt.Sprint(seedUsersBefore), groupThousands(seedUsersAfter) + "+", lu.text, bu.text, usersGain(lu, bu) + " (seed: 10x)"})
	return t
}

type usersValue struct {
	n     int
	exact bool
	// below is set when even the smallest probe failed: fewer than below users are supported.
	below int
	text  string
}

func usersSupported(res *Results, e *Entry, mode string) usersValue {
	for _, c := range res.Bench.Capacity {
		if c.Mode == mode {
			v := usersValue{n: c.MaxUsers, exact: c.MaxUsers < c.Limit, text: capacityText(c)}
			if c.MaxUsers == 0 {
				for _, st := range c.Steps {
					if !st.OK && (v.below == 0 || st.Users < v.below) {
						v.below = st.Users
					}
				}
			}
			return v
		}
	}
	if e == nil {
		return usersValue{text: "—"}
	}
	best := 0
	for i := range res.Entries {
		x := &res.Entries[i]
		if x.Mode() == mode && x.ThresholdsOK() && x.Users() > best {
			best = x.Users()
		}
	}
	if best == 0 {
		return usersValue{text: fmt.Sprintf("< %d (thresholds failed)", e.Users())}
	}
	return usersValue{n: best, text: fmt.Sprintf(">= %s", groupThousands(float64(best)))}
}

func usersGain(l, b usersValue) string {
	// A ratio needs the legacy count measured exactly; a batch lower bound gives ">= ratio", a
	// legacy upper bound ("< 5 users") gives "> ratio".
	if l.n == 0 && l.below > 0 && b.n > 0 {
		return "> " + formatValue(float64(b.n)/float64(l.below), "") + "x"
	}
	if l.n == 0 || b.n == 0 || !l.exact {
		return "—"
	}
	prefix := ""
	if !b.exact {
		prefix = ">= "
	}
	return prefix + formatValue(float64(b.n)/float64(l.n), "") + "x"
}

func medianOf(e *Entry, fig Figure) (float64, bool) {
	if e == nil {
		return 0, false
	}
	return e.Median(fig)
}

func cell(fig Figure, v float64, ok bool) string {
	if !ok {
		return "—"
	}
	return fig.Format(v)
}

func reductionGain(before, after float64) string {
	if before == 0 {
		return "—"
	}
	pct := (after - before) / before * 100
	switch {
	case after == 0:
		return fmt.Sprintf("%s%%", formatValue(pct, ""))
	case after > before:
		return fmt.Sprintf("+%s%% (%sx more)", formatValue(pct, ""), formatValue(after/before, ""))
	}
	return fmt.Sprintf("%s%% (%sx fewer)", formatValue(pct, ""), formatValue(before/after, ""))
}

func speedupGain(before, after float64) string {
	switch {
	case after == 0:
		return "—"
	case after > before:
		return formatValue(after/before, "") + "x higher"
	}
	return formatValue(before/after, "") + "x lower"
}

func percentGain(before, after float64) string {
	if before == 0 {
		return "—"
	}
	pct := (after - before) / before * 100
	sign := ""
	if pct > 0 {
		sign = "+"
	}
	return sign + formatValue(pct, "") + "%"
}

func targetsTable(res *Results) document.Table {
	t := document.Table{Header: []string{"target", "limit", "measured", "result", "entry"}}
	for _, tg := range res.Targets() {
		t.Rows = append(t.Rows, []string{tg.Name, tg.Limit, orDash(tg.Measured), tg.Status, orDash(tg.Where)})
	}
	return t
}

func entriesTable(res *Results) document.Table {
	t := document.Table{
		Header: []string{"entry", "scenario", "overrides", "users", "runs", "thresholds", "Laravel req/min", "API p99", "HIGH p99", "gateway CPU"},
		Right:  []bool{false, false, false, true, true, false, true, true, true, true},
	}
	for i := range res.Entries {
		e := &res.Entries[i]
		th := "no report"
		if len(e.Reports) > 0 {
			th = "all held"
			if !e.ThresholdsOK() {
				th = "FAILED"
			}
		}
		t.Rows = append(t.Rows, []string{e.Name, "`" + e.Scenario + "`", overridesText(e.Set), fmt.Sprint(e.Users()),
			fmt.Sprintf("%d/%d", len(e.Reports), len(e.Runs)), th, medianCell(e, FigLaravelRPM), medianCell(e, FigAPIP99),
			medianCell(e, FigHighP99), medianCell(e, FigGatewayCPU)})
	}
	return t
}

// realLaravelFigures are the rows of realLaravelTable.
var realLaravelFigures = []Figure{FigLaravelRPM, FigLaravelRequests, FigLaravelResponseP99, FigLaravelCPU, FigAPIMean, FigAPIP99, FigHighP99, FigNormalP99, FigGatewayCPU, FigLost}

const realLaravelNote = "Medians over repeats. The real app ran behind fakelaravel as a measuring front (`laravel.real`), " +
	"so both columns of a pair count Laravel's requests and read its final state the same way; " +
	"the real app's CPU is php-fpm and nginx from /proc, on the same cores as the gateway and the simulated users."

// realLaravelTable sets every entry side by side, figures as rows, when at least one entry ran the
// real Laravel app (nil otherwise).
func realLaravelTable(res *Results) *document.Table {
	anyReal := false
	t := document.Table{Header: []string{"figure"}, Right: []bool{false}}
	kinds := []string{"Laravel"}
	for i := range res.Entries {
		e := &res.Entries[i]
		t.Header = append(t.Header, e.Name)
		t.Right = append(t.Right, true)
		kind := "—"
		if len(e.Reports) > 0 {
			kind = "fakelaravel (model)"
			if real := e.Reports[0].Configuration.FakeLaravel.Real; real != "" {
				kind, anyReal = "real: "+real, true
			}
		}
		kinds = append(kinds, kind)
	}
	if !anyReal {
		return nil
	}
	t.Rows = append(t.Rows, kinds)
	for _, fig := range realLaravelFigures {
		row := []string{figureTitle(fig)}
		for i := range res.Entries {
			row = append(row, medianCell(&res.Entries[i], fig))
		}
		t.Rows = append(t.Rows, row)
	}
	return &t
}

func overridesText(set []string) string {
	if len(set) == 0 {
		return "—"
	}
	return "`" + strings.Join(set, "` `") + "`"
}

func medianCell(e *Entry, fig Figure) string {
	v, ok := e.Median(fig)
	return cell(fig, v, ok)
}

func capacityTable(res *Results) document.Table {
	t := document.Table{Header: []string{"configuration", "mode", "max users with every threshold held", "probes (users: result)"}, Right: []bool{false, false, true, false}}
	for _, c := range res.Bench.Capacity {
		var probes []string
		for _, s := range c.Steps {
			mark := "ok"
			if !s.OK {
				mark = "fail"
			}
			probes = append(probes, fmt.Sprintf("%d: %s", s.Users, mark))
		}
		t.Rows = append(t.Rows, []string{c.Name, c.Mode, capacityText(c), strings.Join(probes, ", ")})
	}
	return t
}

// entryLines describe an entry: scenario, overrides, failed runs, configuration.
func entryLines(e *Entry) []string {
	l := fmt.Sprintf("scenario `%s`, overrides %s", e.Scenario, overridesText(e.Set))
	if len(e.Reports) > 1 {
		l += fmt.Sprintf("; values are medians of %d repeats", len(e.Reports))
	}
	lines := []string{l}
	var loads []string
	for _, run := range e.Runs {
		if run.Error != "" || run.ExitCode != 0 {
			lines = append(lines, fmt.Sprintf("run `%s`: exit code %d %s", run.Dir, run.ExitCode, run.Error))
		}
		if run.LoadAverage > 0 {
			loads = append(loads, formatValue(run.LoadAverage, ""))
		}
	}
	if len(loads) > 0 {
		lines = append(lines, "machine load average (1 min) at the end of each run: "+strings.Join(loads, ", "))
	}
	if len(e.Reports) == 0 {
		return append(lines, "No report: every run failed before writing report.json.")
	}
	lines = append(lines, cpuLines(e.Reports[0].Environment)...)
	if l := intervalWaitLine(e.Reports[0].Series); l != "" {
		lines = append(lines, l)
	}
	return append(lines, configText(e.Reports[0].Configuration))
}

// configText lists the configuration's settings, leaving out those the report does not give
// (zero: the component's default applied).
func configText(c Configuration) string {
	var gw, fl []string
	add := func(list *[]string, name string, set bool, value any) {
		if set {
			*list = append(*list, fmt.Sprintf("%s %v", name, value))
		}
	}
	g, f := c.Gateway, c.FakeLaravel
	add(&gw, GatewayModeKey, g.Mode() != "", g.Mode())
	for _, k := range g.Set {
		v, ok := g.Settings[k]
		add(&gw, k, ok && k != GatewayModeKey, v)
	}
	add(&gw, "redis", g.Redis != "", g.Redis)
	gw = append(gw, g.GoRuntime...)
	for _, k := range slices.Sorted(maps.Keys(f.Capacity)) {
		add(&fl, k, true, f.Capacity[k])
	}
	text := "gateway: " + orDash(strings.Join(gw, ", "))
	switch {
	case f.Real != "":
		text += "; real Laravel (" + f.Real + ")"
		if len(fl) > 0 {
			text += ": " + strings.Join(fl, ", ")
		}
	case len(fl) > 0:
		text += "; fakelaravel: " + strings.Join(fl, ", ")
	}
	return text + " (settings not listed: defaults)"
}

// thresholdsTable is the entry's thresholds, k6-style (✓/✗), with the median observed value and
// how many repeats held; nil when the scenario has none.
func thresholdsTable(e *Entry) *document.Table {
	first := e.Reports[0]
	if len(first.Thresholds) == 0 {
		return nil
	}
	t := document.Table{Header: []string{"", "metric", "threshold", "observed", "held"}, Right: []bool{false, false, false, true, true}}
	for i, th := range first.Thresholds {
		held, obs := 0, []float64{}
		for _, r := range e.Reports {
			if i < len(r.Thresholds) && r.Thresholds[i].Expr == th.Expr && r.Thresholds[i].Metric == th.Metric {
				if r.Thresholds[i].OK {
					held++
				}
				if r.Thresholds[i].Observed != nil {
					obs = append(obs, *r.Thresholds[i].Observed)
				}
			}
		}
		mark := "✓"
		if held < len(e.Reports) {
			mark = "✗"
		}
		o := "—"
		if len(obs) > 0 {
			o = formatValue(median(obs), "")
		}
		t.Rows = append(t.Rows, []string{mark, "`" + th.Metric + "`", "`" + th.Expr + "`", o, fmt.Sprintf("%d/%d", held, len(e.Reports))})
	}
	return &t
}

// metricsTable is the entry's metric summaries like k6's end-of-test summary (medians of repeats).
func metricsTable(e *Entry) document.Table {
	t := document.Table{Header: []string{"metric", "type", "values"}}
	names := map[string]bool{}
	for _, r := range e.Reports {
		for n := range r.Metrics {
			names[n] = true
		}
	}
	sorted := make([]string, 0, len(names))
	for n := range names {
		sorted = append(sorted, n)
	}
	sort.Strings(sorted)
	for _, n := range sorted {
		var typ MetricType
		var kind string
		vals := map[string][]float64{}
		for _, r := range e.Reports {
			m, ok := r.Metrics[n]
			if !ok {
				continue
			}
			typ, kind = m.Type, m.Contains
			for k, v := range m.Values {
				vals[k] = append(vals[k], v)
			}
		}
		if base, _ := splitMetricName(n); kind != "data" && strings.HasSuffix(base, "_bytes") {
			kind = "data" // a byte count, whatever the recorder declared
		}
		t.Rows = append(t.Rows, []string{"`" + n + "`", string(typ), summaryValues(typ, kind, vals)})
	}
	return t
}

func groundTruthLine(e *Entry) string {
	var gt GroundTruth
	for _, r := range e.Reports {
		gt.Sessions += r.GroundTruth.Sessions
		gt.LostUpdates += r.GroundTruth.LostUpdates
		gt.StaleOverwrites += r.GroundTruth.StaleOverwrites
		gt.DuplicateApplications += r.GroundTruth.DuplicateApplications
	}
	return fmt.Sprintf("%d sessions checked%s: %d lost updates, %d stale overwrites, %d duplicate applications.",
		gt.Sessions, repeatsNote(len(e.Reports)), gt.LostUpdates, gt.StaleOverwrites, gt.DuplicateApplications)
}

func repeatsNote(n int) string {
	if n > 1 {
		return fmt.Sprintf(" over %d repeats", n)
	}
	return ""
}

// summaryKeys orders each type's values the way k6's end-of-test summary prints them.
var summaryKeys = map[MetricType][]string{
	Trend:   {"avg", "min", "med", "max", "p(90)", "p(95)", "p(99)", "count"},
	Counter: {"count", "rate"},
	Gauge:   {"value", "min", "max"},
	Rate:    {"rate", "passes", "fails"},
}

func summaryValues(typ MetricType, kind string, vals map[string][]float64) string {
	keys := append([]string(nil), summaryKeys[typ]...)
	var extra []string
	for k := range vals {
		if !contains(keys, k) {
			extra = append(extra, k)
		}
	}
	sort.Strings(extra)
	keys = append(keys, extra...)
	var parts []string
	for _, k := range keys {
		v, ok := vals[k]
		if !ok {
			continue
		}
		parts = append(parts, k+"="+formatSummaryValue(typ, kind, k, median(v)))
	}
	return strings.Join(parts, " ")
}

func formatSummaryValue(typ MetricType, kind, key string, v float64) string {
	switch {
	case typ == Trend && key == "count", typ == Rate && key != "rate", typ == Counter && key == "count":
		return formatValue(v, "")
	case typ == Counter && key == "rate":
		return formatValue(v, "") + "/s"
	case typ == Rate:
		return formatValue(v*100, "") + "%"
	case kind == "time":
		return formatMillis(v)
	case kind == "data":
		return formatBytes(v)
	}
	return formatValue(v, "")
}

// formatMillis renders a millisecond value the way k6 does: µs, ms or s.
func formatMillis(ms float64) string {
	switch {
	case ms == 0:
		return "0s"
	case ms < 1:
		return strings.TrimSuffix(formatValue(ms*1000, "µs"), " µs") + "µs"
	case ms < 1000:
		return strings.TrimSuffix(formatValue(ms, "ms"), " ms") + "ms"
	default:
		return strings.TrimSuffix(formatValue(ms/1000, "s"), " s") + "s"
	}
}

func formatBytes(v float64) string {
	units := []string{"B", "kB", "MB", "GB", "TB"}
	i := 0
	for math.Abs(v) >= 1000 && i < len(units)-1 {
		v /= 1000
		i++
	}
	return strings.TrimSuffix(formatValue(v, units[i]), " "+units[i]) + " " + units[i]
}

func fmtTime(t time.Time) string {
	if t.IsZero() {
		return "—"
	}
	return t.UTC().Format("2006-01-02 15:04:05 UTC")
}

func fmtDuration(d time.Duration) string {
	if d <= 0 {
		return "—"
	}
	return d.Round(time.Second).String()
}

func orDash(s string) string {
	if s == "" {
		return "—"
	}
	return s
}
