// Package faultreport owns the per-fault figures of `make bench-faults`: for every fault of every
// run in a bench folder (the run's faults.json, metrics.ndjson and report.json) it measures the
// events the fault delayed (count, max, p99), how long recovery took after the fault ended,
// Laravel's request rate before, during and after it (a retry storm shows as "after" far above
// "before"), the gateway's memory and outbox depth peaks and the run's ground truth, and renders
// them as one Markdown table.
package faultreport

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"wagate/reports"
	"wagate/reports/document"
)

// minWindow is the shortest window the request rates and peaks are measured over: a fault that
// acts at once (a mass drop) is followed for this long.
const minWindow = 15 * time.Second

// Row is one fault of one run.
type Row struct {
	// Entry is the bench entry (folder) and Fault the fault's name (several contiguous Laravel
	// faults are one row, named first..last).
	Entry, Fault, Kind string
	// Start and End are offsets from the users' start; End-Start is the fault's duration.
	Start, End time.Duration
	// Delayed counts the events caused within the fault window; DelayMax and DelayP99 are their
	// delivery delays (cause in fakewa to applied in Laravel); NormalP99 the p99 of the events
	// caused before the fault, for comparison.
	Delayed                       int
	DelayMax, DelayP99, NormalP99 time.Duration
	// LastApplied is from the fault's end until the last event caused within the window was
	// applied in Laravel (0 when all were applied before the end).
	LastApplied time.Duration
	// Recovery is the simulator's fault_recovery_time (gateway healthy, outbox back to its depth
	// before the fault, sessions back online); -1 when not measured.
	Recovery time.Duration
	// LaravelBefore, LaravelDuring, LaravelAfter are Laravel requests per minute in a window of
	// the fault's length (at least minWindow) before, during and after the fault.
	LaravelBefore, LaravelDuring, LaravelAfter float64
	// RSSPeak is the gateway's peak RSS from the fault's start to the end of the after window;
	// OutboxPeak the peak outbox depth over the same time (-1: not measured, legacy mode).
	RSSPeak    float64
	OutboxPeak float64
	// Truth is the run's ground truth; ThresholdsOK whether every threshold of the run held.
	Truth        reports.GroundTruth
	ThresholdsOK bool
	// Detail is what the simulator recorded about the fault (process faults), Error a problem.
	Detail, Error string
}

// point is one metrics.ndjson sample.
type point struct {
	at    time.Time
	value float64
	tags  map[string]string
}

// runData is what one run left behind.
type runData struct {
	timeline reports.FaultTimeline
	report   *reports.Report
	points   map[string][]point
}

// Analyze reads every run of the bench folder dir (dir/<entry>/run<k>/ or dir itself when it
// is one run) that has a faults.json and returns its rows, entries in folder order.
func Analyze(dir string) ([]Row, error) {
	// reports/out/latest is a symbolic link, which WalkDir would not enter.
	dir, err := filepath.EvalSymlinks(dir)
	if err != nil {
		return nil, err
	}
	var runDirs []string
	err = filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.IsDir() && d.Name() == reports.FaultsFile {
			runDirs = append(runDirs, filepath.Dir(p))
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	sort.Strings(runDirs)
	var rows []Row
	for _, rd := range runDirs {
		entry, _ := filepath.Rel(dir, rd)
		if entry == "." {
			entry = filepath.Base(rd)
		}
		rs, err := analyzeRun(rd, entry)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", rd, err)
		}
		rows = append(rows, rs...)
	}
	if len(rows) == 0 {
		return nil, fmt.Errorf("no %s under %s", reports.FaultsFile, dir)
	}
	return rows, nil
}

func analyzeRun(dir, entry string) ([]Row, error) {
	var rd runData
	var err error
	if rd.timeline, err = reports.ReadFaultTimeline(dir); err != nil {
		return nil, err
	}
	rd.report, err = reports.Load(filepath.Join(dir, reports.FileName))
	if err != nil {
		return nil, err
	}
	f, err := os.Open(filepath.Join(dir, "metrics.ndjson"))
	if err != nil {
		return nil, err
	}
	defer f.Close()
	rd.points, err = readPoints(f, "event_delivery_delay", "laravel_reqs", "gateway_rss_bytes", "outbox_depth", "fault_recovery_time")
	if err != nil {
		return nil, fmt.Errorf("metrics.ndjson: %w", err)
	}
	var rows []Row
	for _, w := range mergeWindows(rd.timeline.Faults, rd.report.Environment.End) {
		rows = append(rows, rd.row(entry, w))
	}
	return rows, nil
}

// readPoints reads the samples of the named metrics from k6-style NDJSON.
func readPoints(r io.Reader, names ...string) (map[string][]point, error) {
	want := map[string]bool{}
	for _, n := range names {
		want[n] = true
	}
	out := map[string][]point{}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 4<<20)
	for sc.Scan() {
		line := sc.Bytes()
		var p struct {
			Type   string `json:"type"`
			Metric string `json:"metric"`
			Data   struct {
				Time  time.Time         `json:"time"`
				Value float64           `json:"value"`
				Tags  map[string]string `json:"tags"`
			} `json:"data"`
		}
		if err := json.Unmarshal(line, &p); err != nil {
			return nil, err
		}
		if p.Type != "Point" || !want[p.Metric] {
			continue
		}
		out[p.Metric] = append(out[p.Metric], point{at: p.Data.Time, value: p.Data.Value, tags: p.Data.Tags})
	}
	return out, sc.Err()
}

// window is one row's fault (or merged run of contiguous Laravel faults).
type window struct {
	reports.FaultWindow
	last string // name of the last merged fault
}

// mergeWindows gives Laravel faults that last "until changed" (end == start) the time until the
// next Laravel fault, and merges contiguous Laravel faults into one window.
func mergeWindows(faults []reports.FaultWindow, runEnd time.Time) []window {
	var out []window
	for i, f := range faults {
		if f.Kind == "laravel" && !f.End.After(f.Start) {
			f.End = runEnd
			for _, g := range faults[i+1:] {
				if g.Kind == "laravel" && g.Start.After(f.Start) {
					f.End = g.Start
					break
				}
			}
		}
		if n := len(out); n > 0 && f.Kind == "laravel" && out[n-1].Kind == "laravel" && !f.Start.After(out[n-1].End.Add(10*time.Millisecond)) {
			out[n-1].End = maxTime(out[n-1].End, f.End)
			out[n-1].last = f.Name
			if f.Detail != "" && !strings.Contains(out[n-1].Detail, f.Detail) {
				out[n-1].Detail += " / " + f.Detail
			}
			continue
		}
		out = append(out, window{FaultWindow: f})
	}
	return out
}

func maxTime(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

func (rd *runData) row(entry string, w window) Row {
	t0 := rd.timeline.UsersStart
	name := w.Name
	if w.last != "" {
		name += " .. " + w.last
	}
	r := Row{
		Entry: entry, Fault: name, Kind: w.Kind,
		Start: w.Start.Sub(t0), End: w.End.Sub(t0),
		Recovery: -1, OutboxPeak: -1,
		Truth: rd.report.GroundTruth, ThresholdsOK: rd.report.ThresholdsOK(),
		Detail: w.Detail, Error: w.Error,
	}
	if w.OutboxBefore > 0 {
		r.Detail += fmt.Sprintf("; outbox depth just before: %.0f", w.OutboxBefore)
	}
	if w.Action != "" {
		r.Kind += " " + w.Action
	}
	span := max(w.End.Sub(w.Start), minWindow)
	winEnd := w.Start.Add(span)
	// Delays of the events caused in the window, and of those caused before it.
	var during, before []float64
	var lastApplied time.Time
	for _, p := range rd.points["event_delivery_delay"] {
		cause := p.at.Add(-time.Duration(p.value * float64(time.Millisecond)))
		switch {
		case !cause.Before(w.Start) && !cause.After(maxTime(w.End, w.Start.Add(2*time.Second))):
			during = append(during, p.value)
			lastApplied = maxTime(lastApplied, p.at)
		case cause.Before(w.Start):
			before = append(before, p.value)
		}
	}
	r.Delayed = len(during)
	r.DelayMax, r.DelayP99 = ms(maxOf(during)), ms(percentile(during, 99))
	r.NormalP99 = ms(percentile(before, 99))
	if lastApplied.After(w.End) {
		r.LastApplied = lastApplied.Sub(w.End)
	}
	for _, p := range rd.points["fault_recovery_time"] {
		if p.tags["fault"] == w.Name || (w.last != "" && p.tags["fault"] == w.last) {
			r.Recovery = max(r.Recovery, ms(p.value))
		}
	}
	// Laravel requests per minute: laravel_reqs points carry the requests of the series interval
	// that ends at their time.
	rate := func(from, to time.Time) float64 {
		if !to.After(from) {
			return 0
		}
		var n float64
		for _, p := range rd.points["laravel_reqs"] {
			if p.at.After(from) && !p.at.After(to) {
				n += p.value
			}
		}
		return n / to.Sub(from).Minutes()
	}
	beforeFrom := w.Start.Add(-span)
	if beforeFrom.Before(t0) {
		beforeFrom = t0
	}
	r.LaravelBefore = rate(beforeFrom, w.Start)
	r.LaravelDuring = rate(w.Start, winEnd)
	r.LaravelAfter = rate(winEnd, winEnd.Add(span))
	peak := func(metric string) float64 {
		v := -1.0
		for _, p := range rd.points[metric] {
			if !p.at.Before(w.Start) && !p.at.After(winEnd.Add(span)) {
				v = math.Max(v, p.value)
			}
		}
		return v
	}
	r.RSSPeak = peak("gateway_rss_bytes")
	r.OutboxPeak = peak("outbox_depth")
	return r
}

func ms(v float64) time.Duration {
	if math.IsNaN(v) {
		return 0
	}
	return time.Duration(v * float64(time.Millisecond))
}

func maxOf(v []float64) float64 {
	m := math.NaN()
	for _, x := range v {
		if math.IsNaN(m) || x > m {
			m = x
		}
	}
	return m
}

// percentile is the nearest-rank percentile of v (NaN when empty).
func percentile(v []float64, p float64) float64 {
	if len(v) == 0 {
		return math.NaN()
	}
	s := append([]float64(nil), v...)
	sort.Float64s(s)
	k := int(math.Ceil(p/100*float64(len(s)))) - 1
	return s[min(max(k, 0), len(s)-1)]
}

// Markdown renders the rows as faults.md: their Outline laid out as Markdown.
func Markdown(w io.Writer, rows []Row, command string) error {
	return document.WriteMarkdown(w, Outline(rows, command))
}

// Outline is faults.md's content: how to read the figures, the per-fault table, then what
// happened in each fault that says more than its figures.
func Outline(rows []Row, command string) document.Document {
	d := document.Document{Title: "Faults: per-fault figures"}
	if command != "" {
		d.Intro = append(d.Intro, document.Text(fmt.Sprintf("Produced by `%s`.", command)))
	}
	t := document.Table{
		Header: []string{"entry", "fault", "kind", "window", "delayed events", "delay max", "delay p99", "normal p99", "last applied", "recovery",
			"Laravel req/min before / during / after", "RSS peak", "outbox peak", "lost", "stale", "dup", "thresholds"},
		Right: []bool{false, false, false, false, true, true, true, true, true, true, false, true, true, true, true, true, false},
	}
	for _, r := range rows {
		rec := "n/a"
		if r.Recovery >= 0 {
			rec = dur(r.Recovery)
		}
		ob := "n/a"
		if r.OutboxPeak >= 0 {
			ob = fmt.Sprintf("%.0f", r.OutboxPeak)
		}
		rss := "n/a"
		if r.RSSPeak >= 0 {
			rss = fmt.Sprintf("%.1f MiB", r.RSSPeak/(1<<20))
		}
		th := "✓"
		if !r.ThresholdsOK {
			th = "✗"
		}
		t.Rows = append(t.Rows, []string{r.Entry, r.Fault, r.Kind, dur(r.Start) + "–" + dur(r.End), strconv.Itoa(r.Delayed),
			dur(r.DelayMax), dur(r.DelayP99), dur(r.NormalP99), dur(r.LastApplied), rec,
			fmt.Sprintf("%.0f / %.0f / %.0f", r.LaravelBefore, r.LaravelDuring, r.LaravelAfter), rss, ob,
			fmt.Sprint(r.Truth.LostUpdates), fmt.Sprint(r.Truth.StaleOverwrites), fmt.Sprint(r.Truth.DuplicateApplications), th})
	}
	d.Intro = append(d.Intro, document.Note(howToRead), t)
	var notes document.List
	for _, r := range rows {
		if r.Detail == "" && r.Error == "" {
			continue
		}
		s := fmt.Sprintf("**%s / %s**: %s", r.Entry, r.Fault, r.Detail)
		if r.Error != "" {
			s += " **problem:** " + r.Error
		}
		notes = append(notes, s)
	}
	if len(notes) > 0 {
		d.Sections = append(d.Sections, document.Section{ID: "what-happened", Heading: "What happened", Blocks: []document.Block{notes}})
	}
	return d
}

// howToRead says what each column of the per-fault table measures.
const howToRead = "Delays are from the cause in fakewa to the state applied in Laravel, for the events caused during the fault " +
	"(at least its first 2 s); *normal p99* is the same for events caused before it. *Last applied* is from the fault's end " +
	"until the last of those events was in Laravel; *recovery* is the simulator's fault_recovery_time (gateway healthy, outbox back " +
	"to its depth before the fault, 90% of the sessions back online after disconnecting faults). Laravel requests/min are " +
	"measured over windows of the fault's length (at least 15 s) before, during and after it: *after* well above *before* " +
	"would be a retry storm. Peaks cover the fault and the window after it. Ground truth and thresholds are the run's."

func dur(d time.Duration) string {
	switch {
	case d <= 0:
		return "0"
	case d < time.Second:
		return fmt.Sprintf("%d ms", d.Milliseconds())
	default:
		return fmt.Sprintf("%.1f s", d.Seconds())
	}
}

// WriteFile analyzes dir and writes dir/faults.md; it returns the rows.
func WriteFile(dir, command string) ([]Row, error) {
	rows, err := Analyze(dir)
	if err != nil {
		return nil, err
	}
	f, err := os.Create(filepath.Join(dir, "faults.md"))
	if err != nil {
		return nil, err
	}
	if err := Markdown(f, rows, command); err != nil {
		f.Close()
		return nil, err
	}
	return rows, errors.Join(f.Close())
}
