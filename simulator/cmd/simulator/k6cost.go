package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	"wagate/internal/cli"
	"wagate/reports"
	"wagate/simulator/k6/cost"
	"wagate/simulator/k6/testrun"
	"wagate/simulator/scenario"
)

const k6CostUsage = `usage: simulator k6-cost SCRIPT.js -out DIR [-set key=value]... [-e KEY=VALUE]...

Runs the same workload twice on one world: the native Go users of the scenario YAML the script
names in options.ext.wagate.world (or -world), then the k6 script (k6/x/wagate; -script-first
swaps them), and compares what
the load generator spent: the VUs' CPU per gateway API request (a CPU profile, goroutines labelled
load=vu) and its JS/native ratio, and the runtime memory per VU (runtime/metrics). Writes
DIR/report.json (figures as metrics, targets as thresholds: ratio <= 1.5, <= 200 KiB per VU),
DIR/cost.json, DIR/js/ (the script's own summary) and each half's CPU profile (DIR/native.cpu.pprof,
DIR/js.cpu.pprof: go tool pprof -tagfocus load=vu). A bench matrix runs it for an entry of kind:
k6-cost (make bench-k6). Exit status: 0, 99 when a target failed, 1 when the run failed.

flags:
`

// runK6Cost is `simulator k6-cost`.
func runK6Cost(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("k6-cost", flag.ContinueOnError)
	usage := cli.Defaults(fs, k6CostUsage)
	var sets setFlags
	out := fs.String("out", "", "output folder (required)")
	fs.Var(&sets, "set", "override a field of the world's scenario, e.g. -set users=100 (the script reads __ENV.USERS)")
	label := fs.String("label", "", "label of the run in reports")
	world := fs.String("world", "", "scenario YAML of the world and the native users (default: the script's options.ext.wagate.world)")
	bin := fs.String("bin", "", "folder with the fakelaravel and gateway binaries (default: next to this binary, then PATH)")
	scriptFirst := fs.Bool("script-first", false, "run the script's half before the native users' (the world after a half differs from the world before it)")
	var envs setFlags
	fs.Var(&envs, "e", "an __ENV variable of the script, KEY=VALUE (repeatable; USERS is the world's users)")
	script, _, rest, code, done := parseScenarioArgs(fs, args, stdout, stderr, usage)
	if done {
		return code
	}
	if script == "" || len(rest) > 0 || *out == "" {
		return cli.Usagef(stderr, usage, "simulator k6-cost: one script and -out are needed")
	}
	if err := os.MkdirAll(*out, 0o755); err != nil {
		fmt.Fprintln(stderr, "simulator k6-cost:", err)
		return exitError
	}
	scriptEnv := map[string]string{}
	for _, kv := range envs {
		k, v, ok := strings.Cut(kv, "=")
		if !ok || k == "" {
			return cli.Usagef(stderr, usage, "simulator k6-cost: -e %q is not KEY=VALUE", kv)
		}
		scriptEnv[k] = v
	}
	log := slog.New(slog.NewTextHandler(stderr, nil))
	start := time.Now()
	res, reg, err := cost.Measure(ctx, cost.Config{Script: script, World: *world, Sets: sets, ScriptEnv: scriptEnv, ScriptFirst: *scriptFirst, Out: *out, BinDir: *bin,
		ScriptOutput: stderr, Logger: log})
	switch {
	case errors.Is(err, scenario.ErrInvalid):
		fmt.Fprintln(stderr, err)
		return exitUsage
	case err != nil:
		fmt.Fprintln(stderr, "simulator k6-cost:", err)
		return exitError
	}
	rep, err := cost.Report(res, reg, script, *label, start, time.Now())
	if err == nil {
		err = rep.Save(filepath.Join(*out, reports.FileName))
	}
	if err == nil {
		var b []byte
		if b, err = json.MarshalIndent(struct {
			cost.Result
			Figures map[string]float64 `json:"figures"`
		}{res, res.Figures()}, "", "  "); err == nil {
			err = os.WriteFile(filepath.Join(*out, "cost.json"), b, 0o644)
		}
	}
	if err != nil {
		fmt.Fprintln(stderr, "simulator k6-cost:", err)
		return exitError
	}
	if err := cost.WriteTable(stdout, res); err != nil {
		return exitError
	}
	if !rep.ThresholdsOK() {
		for _, th := range rep.Thresholds {
			if !th.OK {
				fmt.Fprintf(stderr, "target failed: %s %s\n", th.Metric, th.Expr)
			}
		}
		return testrun.ExitThresholdFailed
	}
	return 0
}
