// Command bench is the orchestrator behind `make bench`, `make bench-quick` and
// `make bench-capacity`: it runs a bench matrix through bin/simulator and writes one folder per
// bench run under reports/out/ (with a `latest` link) holding every run's report and the
// rendered report.md and report.html.
//
//	bench [-matrix benchmarks/default.yaml] [-simulator bin/simulator] [-out reports/out] [-capacity]
//
// Exit code: 0 when every run completed and every threshold held, 99 when a threshold failed,
// 1 when a run failed, 130 when interrupted (Ctrl-C), 2 on a usage or matrix error.
package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"wagate/benchmarks"
	"wagate/internal/buildinfo"
	"wagate/internal/cli"
)

func main() {
	os.Exit(run())
}

func run() int {
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	matrixPath := fs.String("matrix", "benchmarks/default.yaml", "bench matrix file")
	simulator := fs.String("simulator", "bin/simulator", "simulator command (extra words are passed before `run`)")
	outRoot := fs.String("out", "reports/out", "folder receiving one folder per bench run and the latest links")
	capacity := fs.Bool("capacity", false, "run the matrix's capacity searches instead of its entries")
	grace := fs.Duration("grace", 15*time.Second, "time a stopped run gets between SIGINT and SIGKILL")
	quiet := fs.Bool("quiet", false, "do not echo the simulator's output")
	command := fs.String("command", "", "command line recorded in the report (default: this command)")
	link := fs.String("link", "", "name of the link in -out that points at the new bench folder (default latest, or latest-capacity with -capacity)")
	version := fs.Bool("version", false, "print the version and exit")
	usage := cli.Defaults(fs, "usage: bench [flags]\n\nRuns a bench matrix through the simulator and renders report.md and report.html.\n"+
		"Exit codes: 0 every run completed and every threshold held (or -help, -version), 99 a threshold\n"+
		"failed, 1 a run failed, 130 interrupted, 2 a bad command line or matrix.\n\n")
	if code, done := cli.Parse(fs, os.Args[1:], os.Stdout, os.Stderr, usage); done {
		return code
	}
	if *version {
		fmt.Println(buildinfo.String("bench"))
		return 0
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, nil))
	// Orphans of a simulator run (e.g. a gateway that outlived it) are re-parented here and stopped.
	if err := benchmarks.BecomeSubreaper(); err != nil {
		log.Warn("stray processes of a crashed simulator may survive", "err", err)
	}
	m, err := benchmarks.LoadMatrix(*matrixPath)
	if err != nil {
		log.Error("bench matrix", "err", err)
		return 2
	}
	if err := m.CheckScenarios(*capacity); err != nil {
		log.Error("bench matrix", "matrix", *matrixPath, "err", err)
		return 2
	}
	if *command == "" {
		*command = strings.Join(os.Args, " ")
	}
	runner := &benchmarks.Runner{Simulator: strings.Fields(*simulator), Grace: *grace, Timeout: time.Duration(m.Timeout),
		NoNDJSON: !m.NDJSON}
	if !*quiet {
		runner.Echo = os.Stdout
	}
	o := &benchmarks.Orchestrator{Matrix: m, MatrixPath: *matrixPath, Runner: runner, OutRoot: *outRoot,
		Command: *command, Progress: os.Stdout, Link: *link}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	var out benchmarks.Outcome
	if *capacity {
		if len(m.Capacity) == 0 {
			log.Error("the matrix has no capacity searches", "matrix", *matrixPath)
			return 2
		}
		out, err = o.RunCapacity(ctx)
	} else {
		if len(m.Entries) == 0 {
			log.Error("the matrix has no entries", "matrix", *matrixPath)
			return 2
		}
		out, err = o.RunEntries(ctx)
	}
	if err != nil {
		log.Error("bench", "err", err, "dir", out.Dir)
		return 1
	}
	if *capacity {
		for _, line := range benchmarks.CapacitySummary(out.Dir) {
			fmt.Println("bench-capacity:", line)
		}
		if code := out.ExitCode(); code != 0 {
			fmt.Printf("bench-capacity: %d runs, %d searches failed%s (%s)\n", out.Runs, out.Failed,
				map[bool]string{true: ", interrupted", false: ""}[out.Interrupted], out.Dir)
			return code
		}
		return 0
	}
	switch code := out.ExitCode(); code {
	case 0:
		fmt.Printf("bench: every run completed and every threshold held (%s)\n", out.Dir)
		return 0
	default:
		fmt.Printf("bench: %d runs, %d failed, %d with failed thresholds%s (%s)\n", out.Runs, out.Failed, out.ThresholdsFailed,
			map[bool]string{true: ", interrupted", false: ""}[out.Interrupted], out.Dir)
		return code
	}
}
