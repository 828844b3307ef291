package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"time"

	"wagate/internal/cli"
	"wagate/simulator/chaos"
)

const chaosUsage = `usage: simulator chaos -seed S -schedules K [-duration D] SCENARIO.yaml -out DIR [flags]

The generative fault campaign: draws K random fault schedules from S (Laravel statuses, redirects,
Retry-After, undecodable or unaccounted answers, item refusals, latency, down, lost responses;
Redis restart, loss, pause, eviction, restart while the gateway is down; gateway SIGKILL, SIGTERM in
a failure window, SIGSTOP; a tiny outbox; WhatsApp drop, replace, logout and restart waves,
outages, silences and sockets closed mid-handshake), prints each, runs each on a fresh world
of SCENARIO (batch mode), heals, drains and checks the invariants: Laravel = gateway = truth for
every session, nothing stale, dead letters only for injected item refusals, recovery within the
bound, no retry storm. DIR gets schedules/ (every schedule as a replayable scenario file), runs/,
failing/ (the schedules that failed) and report.md, report.html, report.json.
Exit status: 0 when every schedule passed, 1 when one failed or the campaign could not run.

flags:
`

// runChaos implements `simulator chaos` and returns the exit code.
func runChaos(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("chaos", flag.ContinueOnError)
	usage := cli.Defaults(fs, chaosUsage)
	seed := fs.Uint64("seed", 1, "campaign seed: the same seed draws the same schedules")
	schedules := fs.Int("schedules", 10, "number of schedules to draw and run")
	duration := fs.Duration("duration", 0, "users' duration of every schedule (default: the scenario's)")
	out := fs.String("out", "", "campaign folder (required)")
	bin := fs.String("bin", "", "folder with the fakelaravel and gateway binaries (default: next to this binary, then PATH)")
	parallel := fs.Int("parallel", 1, "worlds run at once (each is a gateway, fakelaravel, Redis and the users)")
	maxFaults := fs.Int("max-faults", 4, "most faults per schedule")
	recovery := fs.Duration("recovery-bound", chaos.DefaultBounds.Recovery, "bound of every fault's recovery time")
	stormFactor := fs.Float64("storm-factor", chaos.DefaultBounds.StormFactor, "Laravel requests/s during faults at most this times the rate outside faults")
	stormFloor := fs.Float64("storm-floor", chaos.DefaultBounds.StormFloor, "... and never limited below this many requests/s")
	keepLogs := fs.Bool("keep-logs", false, "keep the process logs of passing schedules too")
	onlyFlag := fs.String("only", "", "play only these schedules of the seed (0-based numbers, comma-separated; -schedules is then ignored): a judged replay of a failing one")
	kindsFlag := fs.String("kinds", "", "draw only these kinds of the vocabulary (comma-separated, e.g. whatsapp-down,redis-restart-while-gateway-down); the schedules then differ from the seed's unrestricted ones")
	verbose := fs.Bool("v", false, "debug logging of the campaign itself")
	scenarioPath, args, rest, code, done := parseScenarioArgs(fs, args, stdout, stderr, usage)
	if done {
		return code
	}
	if scenarioPath == "" || *out == "" || len(rest) > 0 || *schedules < 1 {
		return cli.Usagef(stderr, usage, "simulator chaos: a scenario, -out and -schedules >= 1 are needed")
	}
	only, err := chaos.ParseOnly(*onlyFlag)
	if err != nil {
		return cli.Usagef(stderr, usage, "simulator chaos: -only: %v", err)
	}
	var kinds []string
	for k := range strings.SplitSeq(*kindsFlag, ",") {
		if k = strings.TrimSpace(k); k != "" {
			kinds = append(kinds, k)
		}
	}
	level := slog.LevelInfo
	if *verbose {
		level = slog.LevelDebug
	}
	c, err := chaos.Run(ctx, chaos.Options{
		Scenario: scenarioPath, Seed: *seed, Schedules: *schedules, Duration: *duration, MaxFaults: *maxFaults, Only: only, Kinds: kinds,
		Parallel: *parallel, Out: *out, BinDir: *bin, KeepLogs: *keepLogs,
		Bounds:   chaos.Bounds{Recovery: *recovery, StormFactor: *stormFactor, StormFloor: *stormFloor},
		Command:  "simulator chaos " + strings.Join(append([]string{scenarioPath}, args...), " "),
		Progress: stdout,
		Logger:   slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level})),
	})
	if err != nil {
		fmt.Fprintln(stderr, "simulator chaos:", err)
		return exitError
	}
	fmt.Fprintf(stdout, "chaos: %d passed, %d failed in %s (%s per schedule); report in %s\n", c.Passed, c.Failed,
		c.Elapsed().Round(time.Second), c.PerSchedule().Round(100*time.Millisecond), *out)
	if c.Failed > 0 || c.Cancelled {
		return exitError
	}
	return exitOK
}
