package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"syscall"

	"wagate/internal/cli"
	"wagate/simulator/floor"
	simrun "wagate/simulator/run"
	"wagate/simulator/scenario"
)

const floorUsage = `usage: simulator floor SCENARIO.yaml -out DIR [-set key=value]...

Runs the scenario's status poll workload (its users x pollers, at its statusPollInterval, for its
duration) against the floor, a bare net/http server answering a fixed JSON of the gateway's status
answer size, started on the gateway's CPU set (the scenario's cpus), and writes DIR/report.json
with the floor's CPU and requests. A bench matrix runs it for an entry of kind: floor.

flags:
`

// runFloor is `simulator floor`: the poll workload against the floor.
func runFloor(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("floor", flag.ContinueOnError)
	usage := cli.Defaults(fs, floorUsage)
	var sets setFlags
	out := fs.String("out", "", "output folder (required)")
	fs.Var(&sets, "set", "override a scenario field, e.g. -set users=1000 (repeatable)")
	label := fs.String("label", "", "label of the run in reports")
	var scenarioPath string
	if len(args) > 0 && len(args[0]) > 0 && args[0][0] != '-' {
		scenarioPath, args = args[0], args[1:]
	}
	if code, done := cli.Parse(fs, args, stdout, stderr, usage); done {
		return code
	}
	if scenarioPath == "" && fs.NArg() == 1 {
		scenarioPath = fs.Arg(0)
	} else if fs.NArg() > 0 {
		return cli.Usagef(stderr, usage, "simulator floor: one scenario file")
	}
	if scenarioPath == "" || *out == "" {
		return cli.Usagef(stderr, usage, "simulator floor: a scenario file and -out are needed")
	}
	log := slog.New(slog.NewTextHandler(stderr, nil))
	err := simrun.RunFloor(ctx, simrun.Options{Scenario: scenarioPath, Overrides: sets, Out: *out, Label: *label, Logger: log})
	switch {
	case errors.Is(err, scenario.ErrInvalid):
		fmt.Fprintln(stderr, err)
		return exitUsage
	case err != nil:
		fmt.Fprintln(stderr, "simulator floor:", err)
		return exitError
	}
	fmt.Fprintln(stdout, "output:", *out)
	return 0
}

// runFloorServe is the hidden `simulator floor-serve`: the floor itself, in its own process,
// until SIGTERM.
func runFloorServe(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet(simrun.FloorServeCommand, flag.ContinueOnError)
	fs.SetOutput(stderr)
	listen := fs.String("listen", "127.0.0.1:0", "address to listen on")
	size := fs.Int("size", floor.StatusSize, "size of the JSON answer in bytes")
	if err := fs.Parse(args); err != nil {
		return errUsage
	}
	ctx, stop := signal.NotifyContext(ctx, syscall.SIGTERM, os.Interrupt)
	defer stop()
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		return fmt.Errorf("floor: %w", err)
	}
	fmt.Fprintln(stdout, "floor listening on", ln.Addr())
	return floor.Serve(ctx, ln, *size)
}
