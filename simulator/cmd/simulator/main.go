// Command simulator runs the harness's simulated world around the gateway. Each subcommand lives in
// its own file; main only dispatches.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"wagate/internal/buildinfo"
	"wagate/internal/fdtable"
	simrun "wagate/simulator/run"
)

const usage = `usage: simulator <command> [flags]

commands:
  run           run a scenario: the world, the users, the measurements (report.json, summary.json)
  floor         a scenario's status poll workload against a bare net/http server (the floor)
  k6-cost       a workload as native Go users and as a k6 script on one world: CPU per request, memory per VU
  chaos         the generative fault campaign: random fault schedules, each on a fresh world, judged
  merge         merge the report.json files of execution-segment instances into one
  fakewa        run a standalone fake WhatsApp server (fakewa) with a JSON control API
  fakewa-load   pair and connect N real whatsmeow clients against a fakewa; report time and resources

Run "simulator <command> -h" for the flags of a command; "simulator -version" for the version.

Exit codes: 0 done (or -help, -version); 99 a threshold failed (run, merge, like k6); 1 a failure
(a run that could not complete, a chaos schedule that broke an invariant); 2 a bad command line.
`

func main() {
	// Every subcommand's process (the load generator, fakewa, the floor) opens thousands of
	// connections: its descriptor table is made its final size now, not doubled while it measures.
	if _, err := fdtable.Reserve(fdtable.Max); err != nil {
		fmt.Fprintln(os.Stderr, "simulator: warning:", err)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// run dispatches one command line and returns the process exit code.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return 2
	}
	var err error
	switch cmd, rest := args[0], args[1:]; cmd {
	case "run": // run_scenario.go; returns 0, 99 (threshold failed), 1 or 2 like k6
		return runScenario(ctx, rest, stdout, stderr)
	case "floor": // floor.go: the poll workload against the bare net/http floor
		return runFloor(ctx, rest, stdout, stderr)
	case "k6-cost": // k6cost.go: the k6 runtime's cost next to the native users
		return runK6Cost(ctx, rest, stdout, stderr)
	case simrun.FloorServeCommand: // hidden: the floor itself, in its own process
		err = runFloorServe(ctx, rest, stdout, stderr)
	case "chaos": // chaos.go; 0 when every schedule passed, 1 otherwise
		return runChaos(ctx, rest, stdout, stderr)
	case "merge": // merge.go
		return runMerge(ctx, rest, stdout, stderr)
	case "fakewa":
		err = runFakewa(ctx, rest, stdout, stderr)
	case "fakewa-load":
		err = runFakewaLoad(ctx, rest, stdout, stderr)
	case loadClientsCommand: // hidden: the client side of fakewa-load, run in its own process
		err = runLoadClients(ctx, rest, stdout, stderr)
	case "-version", "--version", "version":
		fmt.Fprintln(stdout, buildinfo.String("simulator"))
	case "-h", "-help", "--help", "help":
		fmt.Fprint(stdout, usage)
	default:
		fmt.Fprintf(stderr, "simulator: unknown command %q\n\n%s", cmd, usage)
		return 2
	}
	if errors.Is(err, errUsage) {
		return exitUsage // the problem and the usage are on stderr already
	}
	if err != nil {
		fmt.Fprintln(stderr, "simulator:", err)
		return 1
	}
	return 0
}

// errUsage is returned by a command whose command line was wrong, after cli.Parse reported it.
var errUsage = errors.New("bad command line")
