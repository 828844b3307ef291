package reports

import (
	"bytes"
	"fmt"
	"image/color"
	"math"
	"regexp"
	"sort"
	"strings"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/font"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/plotutil"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"

	"wagate/reports/document"
)

// chartFont is the face used for every chart's text; the SVG names a sans-serif fallback chain.
var chartFont = font.Font{Typeface: "Liberation", Variant: "Sans"}

const (
	chartWidth  = 9 * vg.Inch
	chartHeight = 3.4 * vg.Inch
	// logFloor is the smallest value drawn on a log axis; smaller values (and zero) sit on it.
	logFloor = 0.1
)

func newPlot(title, xLabel, yLabel string, logY bool) *plot.Plot {
	p := plot.New()
	p.Title.Text = title
	p.X.Label.Text = xLabel
	p.Y.Label.Text = yLabel
	for _, s := range []*draw.TextStyle{&p.Title.TextStyle, &p.X.Label.TextStyle, &p.Y.Label.TextStyle,
		&p.X.Tick.Label, &p.Y.Tick.Label, &p.Legend.TextStyle} {
		size := s.Font.Size
		s.Font = chartFont
		s.Font.Size = size
	}
	p.Legend.Top = true
	p.Legend.Left = true
	p.Legend.YOffs = -vg.Points(6)
	p.Add(plotter.NewGrid())
	if logY {
		p.Y.Scale = plot.LogScale{}
		p.Y.Tick.Marker = logTicks{}
	}
	return p
}

// logTicks labels a log axis at 1, 2 and 5 times powers of ten (only powers of ten when the axis
// spans more than three decades), with unlabelled minor ticks in between, so that an axis within
// one decade still has labels.
type logTicks struct{}

// Ticks implements plot.Ticker.
func (logTicks) Ticks(lo, hi float64) []plot.Tick {
	if lo <= 0 || hi <= lo {
		return nil
	}
	wide := math.Log10(hi/lo) > 3
	var ticks []plot.Tick
	for e := math.Floor(math.Log10(lo)); e <= math.Ceil(math.Log10(hi)); e++ {
		pow := math.Pow(10, e)
		for m := 1.0; m < 10; m++ {
			v := m * pow
			if v < lo*(1-1e-9) || v > hi*(1+1e-9) {
				continue
			}
			label := ""
			if m == 1 || (!wide && (m == 2 || m == 5)) {
				label = strings.TrimSuffix(formatValue(v, ""), ".000")
			}
			ticks = append(ticks, plot.Tick{Value: v, Label: label})
		}
	}
	return ticks
}

// series is one named line.
type series struct {
	name string
	xys  plotter.XYs
	dash bool
	// colour indexes plotutil's palette; -1 (or unset via newSeries) means by position.
	colour int
}

func addLines(p *plot.Plot, lines []series, logY bool) error {
	// Headroom above the data keeps the legend (top left) off the lines.
	top := 0.0
	for _, l := range lines {
		for _, xy := range l.xys {
			top = math.Max(top, xy.Y)
		}
	}
	p.X.Min = 0
	switch {
	case logY:
		p.Y.Max = math.Max(top, logFloor) * math.Pow(10, 0.25*float64(len(lines)+1))
	case top > 0:
		p.Y.Min = 0
		p.Y.Max = top * (1.15 + 0.1*float64(len(lines)))
	}
	for i, l := range lines {
		xys := l.xys
		if logY {
			xys = make(plotter.XYs, len(l.xys))
			for j, xy := range l.xys {
				xys[j] = plotter.XY{X: xy.X, Y: math.Max(xy.Y, logFloor)}
			}
		}
		line, err := plotter.NewLine(xys)
		if err != nil {
			return fmt.Errorf("chart line %s: %w", l.name, err)
		}
		line.Color = plotutil.Color(i)
		if l.colour > 0 {
			line.Color = plotutil.Color(l.colour - 1)
		}
		line.Width = vg.Points(1.5)
		if l.dash {
			line.Dashes = []vg.Length{vg.Points(4), vg.Points(3)}
		}
		p.Add(line)
		p.Legend.Add(l.name, line)
	}
	return nil
}

var (
	svgHeader     = regexp.MustCompile(`(?s)^.*?<svg width="[^"]*" height="[^"]*"`)
	svgFontFamily = regexp.MustCompile(`font-family:Liberation [A-Za-z]+;`)
)

// renderSVG draws the plot and returns an inline <svg> element that scales to its container.
func renderSVG(p *plot.Plot) (string, error) {
	w, err := p.WriterTo(chartWidth, chartHeight, "svg")
	if err != nil {
		return "", fmt.Errorf("chart %q: %w", p.Title.Text, err)
	}
	var buf bytes.Buffer
	if _, err := w.WriteTo(&buf); err != nil {
		return "", fmt.Errorf("chart %q: %w", p.Title.Text, err)
	}
	s := svgHeader.ReplaceAllString(buf.String(), `<svg class="chart" role="img" aria-label="`+htmlAttr(p.Title.Text)+`"`)
	s = svgFontFamily.ReplaceAllString(s, "font-family:'Liberation Sans',Arial,Helvetica,sans-serif;")
	return strings.TrimSpace(s), nil
}

func htmlAttr(s string) string {
	r := strings.NewReplacer(`&`, "&amp;", `"`, "&quot;", `<`, "&lt;", `>`, "&gt;")
	return r.Replace(s)
}

func minutes(p SeriesPoint) float64 { return p.Elapsed.Std().Minutes() }

// seriesLines builds one line per entry from the first repeat's series.
func seriesLines(res *Results, y func(SeriesPoint) float64) []series {
	var out []series
	for _, e := range res.Entries {
		if len(e.Reports) == 0 || len(e.Reports[0].Series) == 0 {
			continue
		}
		s := series{name: e.Name}
		for _, p := range e.Reports[0].Series {
			s.xys = append(s.xys, plotter.XY{X: minutes(p), Y: y(p)})
		}
		out = append(out, s)
	}
	return out
}

func lineChart(id, title, note, yLabel string, logY bool, lines []series) (document.Chart, bool, error) {
	if len(lines) == 0 {
		return document.Chart{}, false, nil
	}
	p := newPlot(title, "time since start (min)", yLabel, logY)
	if err := addLines(p, lines, logY); err != nil {
		return document.Chart{}, false, err
	}
	svg, err := renderSVG(p)
	if err != nil {
		return document.Chart{}, false, err
	}
	return document.Chart{ID: id, Title: title, Note: note, SVG: svg}, true, nil
}

// Charts renders every chart of report.html, in order. Charts without data are left out.
func Charts(res *Results) ([]document.Chart, error) {
	var charts []document.Chart
	add := func(c document.Chart, ok bool, err error) error {
		if err != nil {
			return err
		}
		if ok {
			charts = append(charts, c)
		}
		return nil
	}
	if err := add(lineChart("laravel-rpm", "Laravel requests/min over time",
		"Total Laravel requests per minute in each series interval, one line per entry (first repeat). Log scale: legacy and batch differ by orders of magnitude; intervals without requests sit on the bottom line (0.1).",
		"requests/min (log)", true, seriesLines(res, SeriesPoint.LaravelRequestsPerMinTotal))); err != nil {
		return nil, err
	}
	for _, e := range res.Entries {
		if len(e.Reports) == 0 || len(e.Reports[0].Series) == 0 {
			continue
		}
		pts := e.Reports[0].Series
		mk := func(name string, f func(Percentiles) float64, dash bool) series {
			s := series{name: name, dash: dash}
			for _, p := range pts {
				s.xys = append(s.xys, plotter.XY{X: minutes(p), Y: f(p.APILatency)})
			}
			return s
		}
		lines := []series{
			mk("p50", func(p Percentiles) float64 { return p.P50 }, true),
			mk("p95", func(p Percentiles) float64 { return p.P95 }, false),
			mk("p99", func(p Percentiles) float64 { return p.P99 }, false),
		}
		if err := add(lineChart("api-latency-"+e.Name, "Gateway API latency percentiles: "+e.Name,
			"Percentiles of the gateway REST API latency in each series interval (log scale; intervals without requests sit on the bottom line).", "latency (ms, log)", true, lines)); err != nil {
			return nil, err
		}
	}
	for _, prio := range []string{"high", "normal"} {
		c, ok, err := delayChart(res, prio)
		if err := add(c, ok, err); err != nil {
			return nil, err
		}
	}
	if err := add(lineChart("gateway-cpu", "Gateway CPU over time",
		"CPU use of the gateway process in % of one core, per series interval.", "CPU (% of a core)", false,
		seriesLines(res, func(p SeriesPoint) float64 { return p.GatewayCPUPercent }))); err != nil {
		return nil, err
	}
	if err := add(lineChart("gateway-rss", "Gateway memory (RSS) over time",
		"Resident set size of the gateway process.", "RSS (MiB)", false,
		seriesLines(res, func(p SeriesPoint) float64 { return float64(p.GatewayRSSBytes) / (1 << 20) }))); err != nil {
		return nil, err
	}
	for _, e := range res.Entries {
		if len(e.Reports) == 0 || len(e.Reports[0].Series) == 0 {
			continue
		}
		pts := e.Reports[0].Series
		states := map[string]bool{}
		for _, p := range pts {
			for s := range p.SessionsByState {
				states[s] = true
			}
		}
		var lines []series
		for _, st := range sortedStates(states) {
			s := series{name: st, colour: stateColour(st)}
			for _, p := range pts {
				s.xys = append(s.xys, plotter.XY{X: minutes(p), Y: float64(p.SessionsByState[st])})
			}
			lines = append(lines, s)
		}
		if err := add(lineChart("sessions-"+e.Name, "Sessions by state: "+e.Name,
			"Number of sessions in each estado_qr (as Laravel has it) at the end of each series interval.", "sessions", false, lines)); err != nil {
			return nil, err
		}
	}
	return charts, nil
}

// stateOrder lists estado_qr values in lifecycle order; others follow alphabetically.
var stateOrder = []string{"pending", "connected", "disconnected", "logged_out", "expired"}

// stateColour gives each known state the same colour in every chart (1-based palette index).
func stateColour(state string) int {
	for i, s := range stateOrder {
		if s == state {
			return i + 1
		}
	}
	return 0
}

func sortedStates(states map[string]bool) []string {
	var out []string
	for _, s := range stateOrder {
		if states[s] {
			out = append(out, s)
		}
	}
	var rest []string
	for s := range states {
		if !contains(stateOrder, s) {
			rest = append(rest, s)
		}
	}
	sort.Strings(rest)
	return append(out, rest...)
}

// delayChart plots the cumulative distribution of event delivery delay for one priority, one
// line per entry (all repeats' histograms merged).
func delayChart(res *Results, priority string) (document.Chart, bool, error) {
	var lines []series
	for _, e := range res.Entries {
		var acc *Histogram
		for _, r := range e.Reports {
			m, ok := SubMetric(r, MetricEventDeliveryDelay, "priority:"+priority)
			if !ok || m.Histogram == nil {
				continue
			}
			if acc == nil {
				acc = m.Histogram.Clone()
			} else if err := acc.Merge(m.Histogram); err != nil {
				return document.Chart{}, false, err
			}
		}
		if acc == nil || acc.Count() == 0 {
			continue
		}
		s := series{name: e.Name}
		var cum int64
		total := float64(acc.Count())
		for _, b := range acc.Distribution() {
			cum += b.Count
			s.xys = append(s.xys, plotter.XY{X: math.Max(b.To, logFloor), Y: 100 * float64(cum) / total})
		}
		lines = append(lines, s)
	}
	if len(lines) == 0 {
		return document.Chart{}, false, nil
	}
	title := fmt.Sprintf("Event delivery delay, %s priority", strings.ToUpper(priority[:1])+priority[1:])
	p := newPlot(title, "delay from WhatsApp event to Laravel (ms, log)", "events delivered (%)", false)
	p.X.Scale = plot.LogScale{}
	p.Legend.Top, p.Legend.Left = false, false
	if err := addLines(p, lines, false); err != nil {
		return document.Chart{}, false, err
	}
	lowX, highX := math.Inf(1), 0.0
	for _, l := range lines {
		for _, xy := range l.xys {
			lowX, highX = math.Min(lowX, xy.X), math.Max(highX, xy.X)
		}
	}
	p.X.Min, p.X.Max = lowX/1.5, math.Max(highX, 1000)*1.5
	p.X.Tick.Marker = logTicks{}
	p.Y.Min, p.Y.Max = 0, 105
	if priority == "high" {
		// docs/design.md's target: HIGH events in Laravel within 1 s (p99).
		target, err := plotter.NewLine(plotter.XYs{{X: 1000, Y: 0}, {X: 1000, Y: 100}})
		if err != nil {
			return document.Chart{}, false, err
		}
		target.Color = color.Gray{Y: 120}
		target.Dashes = []vg.Length{vg.Points(2), vg.Points(2)}
		p.Add(target)
		p.Legend.Add("target: 1 s", target)
	}
	svg, err := renderSVG(p)
	if err != nil {
		return document.Chart{}, false, err
	}
	note := "Cumulative share of events applied by Laravel within a given delay (all repeats merged from their HDR histograms)."
	return document.Chart{ID: "delivery-delay-" + priority, Title: title, Note: note, SVG: svg}, true, nil
}
