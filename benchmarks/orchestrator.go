package benchmarks

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"wagate/internal/logtail"
	"wagate/reports"
)

// Orchestrator runs a matrix's entries (or capacity searches) one simulator run at a time and
// writes one bench folder: bench.json, the runs' folders, report.md and report.html.
type Orchestrator struct {
	// Matrix is the validated matrix; MatrixPath is its file, recorded in the manifest.
	Matrix     *Matrix
	MatrixPath string
	// Runner starts the simulator.
	Runner *Runner
	// OutRoot is the folder receiving bench folders and the latest links (e.g. "reports/out").
	OutRoot string
	// Command is the command line recorded in the manifest, e.g. "make bench".
	Command string
	// Progress receives progress lines (entry i of n, elapsed, estimate); nil discards them.
	Progress io.Writer
	// Now is the clock (time.Now when nil).
	Now func() time.Time
	// Link names the link in OutRoot that points at the new bench folder (LatestLink, or
	// LatestCapacityLink for capacity searches, when empty). Benches that may run at the same time
	// as `make bench` (e.g. bench-faults) should use their own link name.
	Link string
}

func (o *Orchestrator) link(def string) string {
	if o.Link != "" {
		return o.Link
	}
	return def
}

// Outcome summarises a bench run.
type Outcome struct {
	// Dir is the bench folder.
	Dir string
	// Runs is the number of simulator runs started.
	Runs int
	// Failed counts runs that did not complete (crash, timeout, no report).
	Failed int
	// ThresholdsFailed counts completed runs in which a threshold failed.
	ThresholdsFailed int
	// Interrupted is true when the context was cancelled (Ctrl-C) before the end.
	Interrupted bool
}

// ExitCode is the process exit code for the outcome: 0 when everything held, 99 when a threshold
// failed (like k6), 1 when a run failed, 130 when interrupted.
func (o Outcome) ExitCode() int {
	switch {
	case o.Interrupted:
		return 130
	case o.Failed > 0:
		return 1
	case o.ThresholdsFailed > 0:
		return ExitThresholdsFailed
	}
	return 0
}

// Latest link names inside OutRoot.
const (
	LatestLink         = "latest"
	LatestCapacityLink = "latest-capacity"
)

func (o *Orchestrator) now() time.Time {
	if o.Now != nil {
		return o.Now()
	}
	return time.Now()
}

func (o *Orchestrator) printf(format string, args ...any) {
	if o.Progress != nil {
		fmt.Fprintf(o.Progress, format+"\n", args...)
	}
}

// newBenchDir creates OutRoot/<UTC timestamp>[-suffix] and points the link at it.
func (o *Orchestrator) newBenchDir(suffix, link string) (string, error) {
	if err := os.MkdirAll(o.OutRoot, 0o755); err != nil {
		return "", fmt.Errorf("bench folder: %w", err)
	}
	base := o.now().UTC().Format("20060102T150405Z") + suffix
	name := base
	for i := 2; ; i++ {
		err := os.Mkdir(filepath.Join(o.OutRoot, name), 0o755)
		if err == nil {
			break
		}
		if !errors.Is(err, os.ErrExist) {
			return "", fmt.Errorf("bench folder: %w", err)
		}
		name = fmt.Sprintf("%s-%d", base, i)
	}
	linkPath := filepath.Join(o.OutRoot, link)
	tmp := linkPath + ".tmp"
	_ = os.Remove(tmp)
	if err := os.Symlink(name, tmp); err != nil {
		return "", fmt.Errorf("bench folder link: %w", err)
	}
	if err := os.Rename(tmp, linkPath); err != nil {
		return "", fmt.Errorf("bench folder link: %w", err)
	}
	return filepath.Join(o.OutRoot, name), nil
}

// RunEntries runs every entry of the matrix Repeats times, then renders the reports. It returns
// an error only when the bench itself could not proceed (folder, manifest, rendering); failed
// runs are counted in the outcome and recorded in the manifest.
func (o *Orchestrator) RunEntries(ctx context.Context) (Outcome, error) {
	dir, err := o.newBenchDir("", o.link(LatestLink))
	out := Outcome{Dir: dir}
	if err != nil {
		return out, err
	}
	start := o.now()
	manifest := &reports.Bench{SchemaVersion: reports.SchemaVersion, Matrix: o.MatrixPath, Command: o.Command,
		Start: start, SeedTable: o.Matrix.SeedTable}
	o.attachCapacity(manifest)
	total := o.Matrix.Runs()
	o.printf("bench: %d runs of %s into %s", total, o.MatrixPath, dir)
	var finished time.Duration
	done := 0
	for _, e := range o.Matrix.Entries {
		be := reports.BenchEntry{Name: e.Name, Scenario: e.Scenario, Set: e.Set}
		if e.Kind == KindFloor {
			be.Kind = KindFloor
		}
		manifest.Entries = append(manifest.Entries, be)
		cur := &manifest.Entries[len(manifest.Entries)-1]
		for rep := 1; rep <= e.Repeats; rep++ {
			if ctx.Err() != nil {
				out.Interrupted = true
				break
			}
			runDir := filepath.Join(e.Name, fmt.Sprintf("run%d", rep))
			o.printf("[%d/%d] %s run %d/%d: %s%s · elapsed %s · %s", done+1, total, e.Name, rep, e.Repeats, e.Scenario,
				setText(e.Set), fmtElapsed(o.now().Sub(start)), estimate(finished, done, total))
			res := o.Runner.RunCommand(ctx, e.Kind, e.Scenario, e.Name, e.Set, filepath.Join(dir, runDir))
			out.Runs++
			done++
			finished += res.Elapsed
			cur.Runs = append(cur.Runs, runRecord(runDir, res))
			o.printf("[%d/%d] %s run %d/%d: %s in %s · elapsed %s · %s", done, total, e.Name, rep, e.Repeats, verdict(res),
				fmtElapsed(res.Elapsed), fmtElapsed(o.now().Sub(start)), estimate(finished, done, total))
			o.countRun(&out, res, filepath.Join(dir, runDir))
			manifest.End = o.now()
			if err := reports.SaveBench(dir, manifest); err != nil {
				return out, err
			}
		}
	}
	if ctx.Err() != nil {
		out.Interrupted = true
	}
	return out, o.finish(dir, manifest)
}

// RunCapacity runs the matrix's capacity searches and renders their results.
func (o *Orchestrator) RunCapacity(ctx context.Context) (Outcome, error) {
	dir, err := o.newBenchDir("-capacity", o.link(LatestCapacityLink))
	out := Outcome{Dir: dir}
	if err != nil {
		return out, err
	}
	start := o.now()
	manifest := &reports.Bench{SchemaVersion: reports.SchemaVersion, Matrix: o.MatrixPath, Command: o.Command, Start: start}
	o.printf("bench-capacity: %d searches of %s into %s", len(o.Matrix.Capacity), o.MatrixPath, dir)
	for _, c := range o.Matrix.Capacity {
		entry := reports.BenchEntry{Name: "capacity-" + c.Name, Scenario: c.Scenario, Set: c.Set}
		// A run that fails without a verdict (crash, no report) is retried once: one broken run must
		// not pass for the capacity limit. If the retry fails too, the count does not hold.
		probe := func(ctx context.Context, users int) (bool, []string, string, error) {
			set := append(append([]string(nil), c.Set...), fmt.Sprintf("%s=%d", c.UsersKey, users))
			var runDir string
			var res RunResult
			for attempt := 1; attempt <= 2; attempt++ {
				runDir = filepath.Join("capacity-"+c.Name, fmt.Sprintf("users-%d", users))
				if attempt > 1 {
					runDir += fmt.Sprintf("-retry%d", attempt-1)
				}
				o.printf("[%s] %d users · elapsed %s", c.Name, users, fmtElapsed(o.now().Sub(start)))
				res = o.Runner.Run(ctx, c.Scenario, fmt.Sprintf("%s-%d", c.Name, users), set, filepath.Join(dir, runDir))
				out.Runs++
				entry.Runs = append(entry.Runs, runRecord(runDir, res))
				if ctx.Err() != nil {
					return false, nil, runDir, ctx.Err()
				}
				o.printf("[%s] %d users: %s in %s", c.Name, users, verdict(res), fmtElapsed(res.Elapsed))
				if res.Err == nil {
					break
				}
				o.printf("    %v", res.Err)
			}
			failed := failedThresholds(res)
			if res.Err != nil {
				failed = append(failed, "run failed: "+res.Err.Error())
			}
			return res.OK(), failed, runDir, nil
		}
		result, err := SearchCapacity(ctx, c, probe)
		manifest.Entries = append(manifest.Entries, entry)
		if err != nil {
			out.Interrupted = ctx.Err() != nil
			if !out.Interrupted {
				out.Failed++
			}
			break
		}
		manifest.Capacity = append(manifest.Capacity, result)
		o.printf("[%s] capacity: %d users (limit %d)", c.Name, result.MaxUsers, c.Limit)
		manifest.End = o.now()
		if err := reports.SaveBench(dir, manifest); err != nil {
			return out, err
		}
	}
	return out, o.finish(dir, manifest)
}

// attachCapacity copies the latest capacity search's results into the manifest, so report.md's
// "users supported" row has a measured value when `make bench-capacity` ran before.
func (o *Orchestrator) attachCapacity(m *reports.Bench) {
	res, err := reports.LoadResults(filepath.Join(o.OutRoot, LatestCapacityLink))
	if err != nil || len(res.Bench.Capacity) == 0 {
		return
	}
	m.Capacity = res.Bench.Capacity
	m.CapacityFrom = filepath.Join("..", filepath.Base(mustReadlink(filepath.Join(o.OutRoot, LatestCapacityLink))))
}

func mustReadlink(p string) string {
	t, err := os.Readlink(p)
	if err != nil {
		return p
	}
	return t
}

func (o *Orchestrator) finish(dir string, manifest *reports.Bench) error {
	manifest.End = o.now()
	if err := reports.SaveBench(dir, manifest); err != nil {
		return err
	}
	if err := reports.RenderDir(dir); err != nil {
		if errors.Is(err, reports.ErrNoReports) {
			o.printf("bench: no run wrote a report; nothing to render (see the simulator.log files in %s)", dir)
			return nil
		}
		return err
	}
	o.printf("bench: wrote %s and %s (%s in total)", filepath.Join(dir, "report.md"), filepath.Join(dir, "report.html"),
		fmtElapsed(manifest.End.Sub(manifest.Start)))
	return nil
}

func (o *Orchestrator) countRun(out *Outcome, res RunResult, runDir string) {
	switch {
	case res.Err != nil:
		out.Failed++
		o.printf("    %v", res.Err)
		if o.Runner.Echo == nil { // else the output was already shown as it came
			for _, l := range logtail.Last(filepath.Join(runDir, LogFileName), 8) {
				if strings.TrimSpace(l) != "" {
					o.printf("    | %s", l)
				}
			}
		}
	case !res.OK():
		out.ThresholdsFailed++
		for _, f := range failedThresholds(res) {
			o.printf("    threshold failed: %s", f)
		}
	}
}

func runRecord(dir string, res RunResult) reports.BenchRun {
	r := reports.BenchRun{Dir: dir, ExitCode: res.ExitCode, Elapsed: reports.Duration(res.Elapsed), LoadAverage: loadAverage()}
	if res.Err != nil {
		r.Error = res.Err.Error()
	}
	return r
}

func failedThresholds(res RunResult) []string {
	if res.Report == nil {
		return nil
	}
	var out []string
	for _, t := range res.Report.Thresholds {
		if !t.OK {
			s := t.Metric + " " + t.Expr
			if t.Observed != nil {
				s += fmt.Sprintf(" (observed %g)", *t.Observed)
			}
			out = append(out, s)
		}
	}
	return out
}

func verdict(res RunResult) string {
	switch {
	case res.Err != nil:
		return "FAILED"
	case res.OK():
		return "thresholds held"
	default:
		return "thresholds FAILED"
	}
}

func setText(set []string) string {
	if len(set) == 0 {
		return ""
	}
	return " -set " + strings.Join(set, " -set ")
}

// estimate extrapolates the remaining time from the mean of the finished runs.
func estimate(finished time.Duration, done, total int) string {
	if done == 0 {
		return "estimate after the first run"
	}
	left := finished / time.Duration(done) * time.Duration(total-done)
	if total == done {
		return "done"
	}
	return "about " + fmtElapsed(left) + " left"
}

func fmtElapsed(d time.Duration) string {
	return d.Round(time.Second).String()
}

// loadAverage is the 1-minute load average from /proc/loadavg (0 when unavailable).
func loadAverage() float64 {
	data, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return 0
	}
	fields := strings.Fields(string(data))
	if len(fields) == 0 {
		return 0
	}
	v, err := strconv.ParseFloat(fields[0], 64)
	if err != nil {
		return 0
	}
	return v
}

// CapacitySummary describes the capacity results in a bench folder, one line per search, e.g.
// "batch: 1,500 users (probes 1000 ok, 2000 fail, 1500 ok, 1750 fail)".
func CapacitySummary(dir string) []string {
	res, err := reports.LoadResults(dir)
	if err != nil {
		return nil
	}
	var lines []string
	for _, c := range res.Bench.Capacity {
		var probes []string
		for _, s := range c.Steps {
			v := "fail"
			if s.OK {
				v = "ok"
			}
			probes = append(probes, fmt.Sprintf("%d %s", s.Users, v))
		}
		lines = append(lines, fmt.Sprintf("%s: max %d users with every threshold held (probes %s)", c.Name, c.MaxUsers, strings.Join(probes, ", ")))
	}
	return lines
}
