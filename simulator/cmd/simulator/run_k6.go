package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"

	"wagate/simulator/k6/options"
	"wagate/simulator/k6/testrun"
	simrun "wagate/simulator/run"
)

const runK6Usage = `usage: simulator run SCRIPT.js|SCRIPT.ts [flags]

Runs a k6 test script on wagate's own k6-compatible runtime (goja + esbuild): options, scenarios,
checks, groups, thresholds, custom metrics, handleSummary, k6's exit codes (99 thresholds crossed,
104 invalid options, 107 script exception, 108 test.abort, 110 test.fail). Modules: k6, k6/http,
k6/metrics, k6/execution, k6/data, k6/encoding, the k6-summary and k6-utils jslibs (offline),
k6/x/wagate. Options precedence as in k6: --config < script < K6_* environment < flags.

flags:
`

// isK6Script reports whether a `run` command line names a k6 script rather than a YAML scenario.
func isK6Script(args []string) bool {
	for _, a := range args {
		if strings.HasPrefix(a, "-") {
			continue
		}
		for _, ext := range []string{".js", ".ts", ".mjs", ".cjs"} {
			if strings.HasSuffix(a, ext) {
				return true
			}
		}
	}
	return false
}

// repeated collects a repeatable flag.
type repeated []string

func (r *repeated) String() string     { return strings.Join(*r, ",") }
func (r *repeated) Set(v string) error { *r = append(*r, v); return nil }

// optionalInt, optionalString... record whether a flag was given (k6 flags override only then).
type optionalInt struct{ v *int64 }

func (o *optionalInt) String() string {
	if o.v == nil {
		return ""
	}
	return fmt.Sprint(*o.v)
}

func (o *optionalInt) Set(s string) error {
	var n int64
	if _, err := fmt.Sscan(s, &n); err != nil {
		return fmt.Errorf("%q is not a number", s)
	}
	o.v = &n
	return nil
}

// runK6Script implements `simulator run SCRIPT.js` and returns k6's exit code.
func runK6Script(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("run", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprint(stderr, runK6Usage); fs.PrintDefaults() }
	var vus, iterations, maxRedirects optionalInt
	var duration, config, summaryExport, trendStats, segment, sequence, userAgent, reportDir, label string
	var envs, stages, outs repeated
	var quiet, noThresholds, noSummary, insecure, verbose bool
	includeSystemEnv := true
	for _, n := range []string{"u", "vus"} {
		fs.Var(&vus, n, "number of virtual users")
	}
	for _, n := range []string{"i", "iterations"} {
		fs.Var(&iterations, n, "total iterations (shared-iterations)")
	}
	for _, n := range []string{"d", "duration"} {
		fs.StringVar(&duration, n, "", "test duration, e.g. 30s (constant-vus)")
	}
	for _, n := range []string{"s", "stage"} {
		fs.Var(&stages, n, "a ramping-vus stage duration:target, e.g. 30s:10 (repeatable)")
	}
	for _, n := range []string{"e", "env"} {
		fs.Var(&envs, n, "an __ENV variable KEY=VALUE (repeatable)")
	}
	for _, n := range []string{"c", "config"} {
		fs.StringVar(&config, n, "", "JSON config file (options)")
	}
	for _, n := range []string{"o", "out"} {
		fs.Var(&outs, n, "output: json=FILE (k6's NDJSON points), or a folder for summary.json and report.json")
	}
	for _, n := range []string{"q", "quiet"} {
		fs.BoolVar(&quiet, n, false, "no progress output")
	}
	fs.BoolVar(&verbose, "v", false, "debug logging")
	fs.StringVar(&summaryExport, "summary-export", "", "write the legacy summary export JSON to this file")
	fs.StringVar(&trendStats, "summary-trend-stats", "", "trend stats in the summary, e.g. avg,p(99)")
	fs.BoolVar(&noThresholds, "no-thresholds", false, "do not evaluate thresholds")
	fs.BoolVar(&noSummary, "no-summary", false, "no end-of-test summary (handleSummary is not called)")
	fs.BoolVar(&includeSystemEnv, "include-system-env-vars", true, "pass the system environment to __ENV")
	fs.BoolVar(&insecure, "insecure-skip-tls-verify", false, "skip TLS verification")
	fs.Var(&maxRedirects, "max-redirects", "follow at most this many redirects")
	fs.StringVar(&userAgent, "user-agent", "", "User-Agent header")
	fs.StringVar(&segment, "execution-segment", "", "k6 execution segment this instance runs, e.g. 1/3:2/3")
	fs.StringVar(&sequence, "execution-segment-sequence", "", "k6 execution segment sequence, e.g. 0,1/3,2/3,1")
	fs.StringVar(&reportDir, "report-dir", "", "write summary.json and report.json (for simulator merge) to this folder")
	fs.StringVar(&label, "label", "", "label of the run in report.json")
	world := registerWorldFlags(fs)

	var script string
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		script, args = args[0], args[1:]
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return testrun.ExitOK
		}
		return exitUsage
	}
	rest := fs.Args()
	if script == "" && len(rest) > 0 {
		script, rest = rest[0], rest[1:]
		if err := fs.Parse(rest); err != nil {
			return exitUsage
		}
		rest = fs.Args()
	}
	if script == "" || len(rest) > 0 {
		fs.Usage()
		return exitUsage
	}
	level := slog.LevelInfo
	if verbose {
		level = slog.LevelDebug
	}
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level}))

	env := map[string]string{}
	if includeSystemEnv {
		for _, kv := range os.Environ() {
			if k, v, ok := strings.Cut(kv, "="); ok {
				env[k] = v
			}
		}
	}
	for _, kv := range envs {
		k, v, _ := strings.Cut(kv, "=")
		env[k] = v
	}
	var cli options.Options
	cli.VUs, cli.Iterations, cli.MaxRedirects = vus.v, iterations.v, maxRedirects.v
	if duration != "" {
		d, err := options.ParseDuration(duration)
		if err != nil {
			fmt.Fprintln(stderr, "--duration:", err)
			return testrun.ExitInvalidConfig
		}
		dd := options.Duration(d)
		cli.Duration = &dd
	}
	if len(stages) > 0 {
		st, err := options.ParseStages(strings.Join(stages, ","))
		if err != nil {
			fmt.Fprintln(stderr, "--stage:", err)
			return testrun.ExitInvalidConfig
		}
		cli.Stages = st
	}
	if trendStats != "" {
		cli.SummaryTrendStats = strings.Split(trendStats, ",")
	}
	if insecure {
		cli.InsecureSkipTLSVerify = &insecure
	}
	if userAgent != "" {
		cli.UserAgent = &userAgent
	}
	if segment != "" {
		cli.ExecutionSegment = &segment
	}
	if sequence != "" {
		cli.ExecutionSegmentSequence = &sequence
	}
	envOpts, err := options.FromEnv(os.Environ())
	if err != nil {
		fmt.Fprintln(stderr, err)
		return testrun.ExitInvalidConfig
	}
	outJSON := ""
	for _, o := range outs {
		kind, target, isOutput := strings.Cut(o, "=")
		switch {
		case !isOutput:
			// `-out DIR`, as `run SCENARIO.yaml` and bench matrices pass it: the report folder.
			reportDir = o
		case kind == "json" && target != "":
			outJSON = target
		default:
			fmt.Fprintf(stderr, "--out %s: only json=FILE (or a report folder) is supported\n", o)
			return testrun.ExitInvalidConfig
		}
	}
	ext, closeWorld, err := world.extensions(script, reportDir, log)
	if err != nil {
		fmt.Fprintln(stderr, "simulator run:", err)
		return exitError
	}
	defer closeWorld()
	_ = quiet // the runtime prints no progress bar; --quiet is accepted for k6 compatibility
	// The script's VUs are the load generator's users, as in a YAML run: its GC target too.
	defer simrun.UseGeneratorGC()()
	res := testrun.Run(ctx, testrun.Config{
		Script: script, Env: env, ConfigFile: config, EnvOptions: envOpts, CLI: cli,
		SummaryExport: summaryExport, OutJSON: outJSON, OutDir: reportDir, Label: label,
		NoThresholds: noThresholds, NoSummary: noSummary,
		Stdout: stdout, Stderr: stderr, Extensions: ext.modules, ExtensionMetrics: ext.metrics,
		BeforeSetup: ext.beforeSetup, OnLoadStart: ext.onLoadStart, OnLoadEnd: ext.onLoadEnd, AfterTeardown: ext.afterTeardown, Logger: log,
		ReportTags: simrun.ReportTags, // report.json breaks metrics down as a YAML run's does
	})
	return res.ExitCode
}
