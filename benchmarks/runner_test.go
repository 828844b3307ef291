package benchmarks

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"wagate/internal/logtail"
)

func TestRunnerPassesOverridesAsSetFlagsBeforeTheScenario(t *testing.T) {
	got := strings.Join(Args("scenarios/seed.yaml", "out/x", "batch-1000", []string{"gateway.mode=batch", "users=1000"}), " ")
	want := "run -out out/x -label batch-1000 -set gateway.mode=batch -set users=1000 scenarios/seed.yaml"
	if got != want {
		t.Errorf("Args = %q, want %q", got, want)
	}
}

func TestRunnerCollectsTheReportOfACompletedRun(t *testing.T) {
	r := &Runner{Simulator: fakeCommand(t)}
	dir := t.TempDir()
	res := r.Run(context.Background(), "ok.yaml", "batch-500", []string{"users=500"}, dir)
	if res.Err != nil || res.ExitCode != 0 || !res.OK() {
		t.Fatalf("run = %+v", res)
	}
	if res.Report.Scenario.Users != 500 || res.Report.Label != "batch-500" {
		t.Errorf("report users = %d label = %q, want 500 and batch-500", res.Report.Scenario.Users, res.Report.Label)
	}
	if lines := logtail.Last(filepath.Join(dir, LogFileName), 5); len(lines) == 0 || !strings.Contains(strings.Join(lines, "\n"), "fake simulator: running") {
		t.Errorf("simulator.log = %q, want the simulator's output", lines)
	}
}

func TestRunnerTreatsExit99AsFailedThresholdsNotAsAnError(t *testing.T) {
	r := &Runner{Simulator: fakeCommand(t)}
	res := r.Run(context.Background(), "ok.yaml", "", []string{"users=5000"}, t.TempDir())
	if res.Err != nil || res.ExitCode != ExitThresholdsFailed || res.OK() || res.Report == nil {
		t.Fatalf("run = %+v, want exit 99 with a report and no error", res)
	}
}

func TestRunnerLeavesNoProcessAfterACrashingRun(t *testing.T) {
	r := &Runner{Simulator: fakeCommand(t)}
	dir := t.TempDir()
	res := r.Run(context.Background(), "crash.yaml", "", nil, dir)
	if !errors.Is(res.Err, ErrRun) || res.ExitCode != 1 {
		t.Fatalf("run = %+v, want exit code 1 and ErrRun", res)
	}
	assertAllGone(t, dir, 2) // the fake simulator and the grandchild it left behind
}

func TestRunnerStopsAGrandchildThatLeftTheProcessGroup(t *testing.T) {
	// The simulator starts the gateway and fakelaravel in their own process groups; if one of them
	// outlives the simulator it is re-parented to the orchestrator (a child subreaper) and killed.
	r := &Runner{Simulator: fakeCommand(t)}
	dir := t.TempDir()
	res := r.Run(context.Background(), "escape.yaml", "", nil, dir)
	if res.ExitCode != 1 {
		t.Fatalf("run = %+v, want exit code 1", res)
	}
	assertAllGone(t, dir, 2)
}

func TestRunnerStopsTheWholeGroupOnCancel(t *testing.T) {
	r := &Runner{Simulator: fakeCommand(t), Grace: 5 * time.Second}
	dir := t.TempDir()
	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		waitForPids(dir, 2)
		cancel() // what Ctrl-C does to the orchestrator's context
	}()
	res := r.Run(ctx, "hang.yaml", "", nil, dir)
	if !errors.Is(res.Err, context.Canceled) {
		t.Fatalf("run error = %v, want context.Canceled", res.Err)
	}
	assertAllGone(t, dir, 2)
}

func TestRunnerKillsARunThatIgnoresSIGINTAfterTheGracePeriod(t *testing.T) {
	r := &Runner{Simulator: fakeCommand(t), Grace: 100 * time.Millisecond, Timeout: time.Minute}
	dir := t.TempDir()
	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		waitForPids(dir, 2)
		cancel()
	}()
	res := r.Run(ctx, "stubborn.yaml", "", nil, dir)
	if res.ExitCode != -1 {
		t.Errorf("exit code = %d, want -1 (killed)", res.ExitCode)
	}
	assertAllGone(t, dir, 2)
}

// waitForPids waits (bounded) until the fake recorded n processes.
func waitForPids(dir string, n int) {
	for i := 0; i < 500; i++ {
		if lines := logtail.Last(filepath.Join(dir, "pids"), 10); len(lines) >= n {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// metrics.ndjson (every request a point) costs the load generator CPU and the disk hundreds of MB
// per run: a matrix's runs write it only when the matrix asks for it, and -no-ndjson goes only to
// `simulator run SCENARIO.yaml` (floor, k6-cost and k6 scripts write none and take no such flag).
func TestARunWritesMetricsNDJSONOnlyWhenItsMatrixAsksForIt(t *testing.T) {
	for _, c := range []struct {
		name       string
		noNDJSON   bool
		wantNDJSON bool
	}{
		{"a matrix that reads the points (faults)", false, true},
		{"every other matrix", true, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			r := &Runner{Simulator: fakeCommand(t), NoNDJSON: c.noNDJSON}
			dir := t.TempDir()
			if res := r.Run(context.Background(), "ok.yaml", "batch-100", []string{"users=100"}, dir); !res.OK() {
				t.Fatalf("run = %+v", res)
			}
			_, err := os.Stat(filepath.Join(dir, "metrics.ndjson"))
			if got := err == nil; got != c.wantNDJSON {
				t.Errorf("metrics.ndjson written = %v, want %v (stat: %v)", got, c.wantNDJSON, err)
			}
		})
	}
	for _, c := range []struct{ command, scenario, want string }{
		{KindRun, "s.yaml", "run -out out/x -label x -no-ndjson -set users=5 s.yaml"},
		{KindRun, "s.js", "run -out out/x -label x -set users=5 s.js"},
		{KindFloor, "s.yaml", "floor -out out/x -label x -set users=5 s.yaml"},
		{KindK6Cost, "s.js", "k6-cost -out out/x -label x -set users=5 s.js"},
	} {
		if got := strings.Join(commandArgs(c.command, c.scenario, "out/x", "x", []string{"users=5"}, true), " "); got != c.want {
			t.Errorf("%s without ndjson: args %q, want %q", c.command, got, c.want)
		}
	}
}
