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
	"time"

	"github.com/mattn/go-isatty"

	"wagate/internal/cli"
	simrun "wagate/simulator/run"
	"wagate/simulator/scenario"
)

// Exit codes of `simulator run` and `simulator merge`, as k6 uses them.
const (
	exitOK              = 0
	exitError           = 1
	exitUsage           = 2
	exitThresholdFailed = 99
)

const runUsage = `usage: simulator run SCENARIO.yaml -out DIR [flags]

Launches the world of one scenario (fakewa in-process; bin/fakelaravel and bin/gateway as child
processes with fresh temporary stores; Redis as the scenario's gateway.redis says), runs its users,
drains, measures, and writes DIR/report.json, DIR/summary.json (k6 handleSummary shape) and
DIR/metrics.ndjson (k6 --out json points). Exit status: 0, or 99 when a threshold failed, 1 on error.
A .js or .ts file instead of the YAML runs a k6 test script (see simulator run SCRIPT.js -h).

flags:
`

// setFlags collects repeated -set key=value flags.
type setFlags []string

func (s *setFlags) String() string     { return strings.Join(*s, ",") }
func (s *setFlags) Set(v string) error { *s = append(*s, v); return nil }

// parseScenarioArgs parses a command line that names one scenario file before or after the
// flags. flagArgs is args without a leading scenario path; rest is what is left after the
// flags and the scenario. done reports that the command must exit with code (cli.Parse).
func parseScenarioArgs(fs *flag.FlagSet, args []string, stdout, stderr io.Writer, usage func(w io.Writer)) (
	scenarioPath string, flagArgs, rest []string, code int, done bool) {
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		scenarioPath, args = args[0], args[1:]
	}
	if code, done := cli.Parse(fs, args, stdout, stderr, usage); done {
		return "", args, nil, code, true
	}
	rest = fs.Args()
	if scenarioPath == "" && len(rest) > 0 {
		scenarioPath, rest = rest[0], rest[1:]
		if code, done := cli.Parse(fs, rest, stdout, stderr, usage); done {
			return "", args, nil, code, true
		}
		rest = fs.Args()
	}
	return scenarioPath, args, rest, 0, false
}

// runScenario implements `simulator run` and returns the exit code.
func runScenario(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if isK6Script(args) { // run_k6.go: a k6 JavaScript/TypeScript test
		return runK6Script(ctx, args, stdout, stderr)
	}
	fs := flag.NewFlagSet("run", flag.ContinueOnError)
	usage := cli.Defaults(fs, runUsage)
	var sets setFlags
	out := fs.String("out", "", "output folder (required)")
	fs.Var(&sets, "set", "override a scenario field, e.g. -set gateway.mode=batch -set users=1000 (repeatable)")
	bin := fs.String("bin", "", "folder with the fakelaravel and gateway binaries (default: next to this binary, then PATH)")
	segment := fs.String("execution-segment", "", "k6 execution segment this instance runs, e.g. 1/3:2/3")
	sequence := fs.String("execution-segment-sequence", "", "k6 execution segment sequence of all instances, e.g. 0,1/3,2/3,1")
	label := fs.String("label", "", "label of the run in reports")
	noNDJSON := fs.Bool("no-ndjson", false, "do not write metrics.ndjson")
	quiet := fs.Bool("quiet", false, "no progress lines")
	verbose := fs.Bool("v", false, "debug logging")
	gatewayURL := fs.String("gateway", "", "use this running gateway (http://host:port) instead of starting bin/gateway; its token from $WAGATE_API_TOKEN")
	laravelURL := fs.String("laravel", "", "use this running fakelaravel instead of starting one; tokens from $FAKELARAVEL_TOKEN and $FAKELARAVEL_ADMIN_TOKEN")
	fakewaControl := fs.String("fakewa-control", "", "use this running fakewa (its control API, host:port) instead of one in-process")
	var prof profiling
	fs.StringVar(&prof.cpuProfile, "cpuprofile", "", "write the simulator's own CPU profile of the whole run to this file (go tool pprof)")
	fs.StringVar(&prof.trace, "trace", "", "write the simulator's own execution trace of a window of the run to this file (go tool trace)")
	fs.DurationVar(&prof.traceFrom, "trace-from", time.Minute, "start of the -trace window after the run starts")
	fs.DurationVar(&prof.traceFor, "trace-for", 5*time.Second, "length of the -trace window")
	fs.StringVar(&prof.memProfile, "memprofile", "", "write the simulator's own heap profile to this file at the end of the -trace window (go tool pprof)")
	scenarioPath, _, rest, code, done := parseScenarioArgs(fs, args, stdout, stderr, usage)
	if done {
		return code
	}
	if scenarioPath == "" || *out == "" || len(rest) > 0 {
		return cli.Usagef(stderr, usage, "simulator run: a scenario file and -out are needed")
	}
	level := slog.LevelInfo
	if *verbose {
		level = slog.LevelDebug
	}
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level}))
	tty := false
	if f, ok := stdout.(*os.File); ok {
		tty = isatty.IsTerminal(f.Fd())
	}
	var progress io.Writer = stdout
	if *quiet {
		progress = nil
	}
	stopProfiling := prof.start(ctx, stderr)
	res, err := simrun.Run(ctx, simrun.Options{
		Scenario:  scenarioPath,
		Overrides: sets,
		Out:       *out,
		BinDir:    *bin,
		Segment:   *segment,
		Sequence:  *sequence,
		Label:     *label,
		NoNDJSON:  *noNDJSON,
		Progress:  progress,
		TTY:       tty,
		Logger:    log,
		// External parts; tokens only from the environment, never from flags.
		Gateway:           *gatewayURL,
		GatewayToken:      os.Getenv("WAGATE_API_TOKEN"),
		Laravel:           *laravelURL,
		LaravelToken:      os.Getenv("FAKELARAVEL_TOKEN"),
		LaravelAdminToken: os.Getenv("FAKELARAVEL_ADMIN_TOKEN"),
		FakewaControl:     *fakewaControl,
	})
	stopProfiling()
	if err != nil && res == nil {
		if errors.Is(err, scenario.ErrInvalid) {
			fmt.Fprintln(stderr, strings.TrimPrefix(err.Error(), scenario.ErrInvalid.Error()+": "))
			return exitUsage
		}
		fmt.Fprintln(stderr, "simulator run:", err)
		return exitError
	}
	printResult(stdout, res.Report.Scenario.Name, *out, res.Report.Thresholds, res.Report.GroundTruth.LostUpdates, res.Report.GroundTruth.StaleOverwrites)
	if err != nil {
		fmt.Fprintln(stderr, "simulator run: stopped early:", err)
		return exitError
	}
	if !res.ThresholdsOK {
		return exitThresholdFailed
	}
	return exitOK
}
