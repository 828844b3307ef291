package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"wagate/internal/cli"
	"wagate/reports"
	simrun "wagate/simulator/run"
)

const mergeUsage = `usage: simulator merge -out DIR RUN_DIR...

Merges the report.json files of simulator instances that each ran one execution segment of the
same scenario: trend histograms are merged (never averaged), counters and rates summed, thresholds
re-evaluated on the merged metrics. Writes DIR/report.json and DIR/summary.json. Exit status: 0, or
99 when a merged threshold failed.

flags:
`

// runMerge implements `simulator merge` and returns the exit code.
func runMerge(_ context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("merge", flag.ContinueOnError)
	usage := cli.Defaults(fs, mergeUsage)
	out := fs.String("out", "", "output folder (required)")
	if code, done := cli.Parse(fs, args, stdout, stderr, usage); done {
		return code
	}
	if *out == "" || fs.NArg() == 0 {
		return cli.Usagef(stderr, usage, "simulator merge: -out and at least one run folder are needed")
	}
	var parts []*reports.Report
	for _, dir := range fs.Args() {
		r, err := reports.Load(dir)
		if err != nil {
			fmt.Fprintln(stderr, "simulator merge:", err)
			return exitError
		}
		parts = append(parts, r)
	}
	merged, err := reports.Merge(parts...)
	if err != nil {
		fmt.Fprintln(stderr, "simulator merge:", err)
		return exitError
	}
	if err := os.MkdirAll(*out, 0o755); err != nil {
		fmt.Fprintln(stderr, "simulator merge:", err)
		return exitError
	}
	if err := merged.Save(filepath.Join(*out, reports.FileName)); err != nil {
		fmt.Fprintln(stderr, "simulator merge:", err)
		return exitError
	}
	if err := simrun.WriteSummary(*out, merged, nil, nil, false); err != nil {
		fmt.Fprintln(stderr, "simulator merge:", err)
		return exitError
	}
	fmt.Fprintf(stdout, "merged %d reports (%d users)\n", len(parts), merged.Scenario.Users)
	printResult(stdout, merged.Scenario.Name, *out, merged.Thresholds, merged.GroundTruth.LostUpdates, merged.GroundTruth.StaleOverwrites)
	if !merged.ThresholdsOK() {
		return exitThresholdFailed
	}
	return exitOK
}

// printResult prints the thresholds k6-style (✓ / ✗) and where the output went.
func printResult(w io.Writer, name, dir string, th []reports.ThresholdResult, lost, stale int64) {
	fmt.Fprintf(w, "\n%s: ground truth: %d lost updates, %d stale overwrites\n", name, lost, stale)
	for _, t := range th {
		mark := "✓"
		if !t.OK {
			mark = "✗"
		}
		obs := "no value"
		if t.Observed != nil {
			obs = fmt.Sprintf("%.4g", *t.Observed)
		}
		fmt.Fprintf(w, "  %s %s %s (observed %s)\n", mark, t.Metric, t.Expr, obs)
	}
	fmt.Fprintf(w, "output: %s\n", dir)
}
