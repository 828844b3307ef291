package chaos

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"wagate/simulator/run"
	"wagate/simulator/scenario"
)

// binDir is the repository's bin/ with the gateway and fakelaravel binaries (make build), or
// the folder $WAGATE_TEST_BIN names.
func binDir(t *testing.T) string {
	t.Helper()
	dir, err := filepath.Abs("../../bin")
	if err != nil {
		t.Fatal(err)
	}
	if d := os.Getenv("WAGATE_TEST_BIN"); d != "" {
		dir = d
	}
	for _, b := range []string{"gateway", "fakelaravel"} {
		if _, err := os.Stat(filepath.Join(dir, b)); err != nil {
			if os.Getenv("CI") != "" {
				t.Fatalf("bin/%s is missing: run make build first", b)
			}
			t.Skipf("bin/%s is missing: run make build first", b)
		}
	}
	return dir
}

// One schedule end to end on a real world (fakewa in-process, bin/fakelaravel, bin/gateway,
// redis-server when installed): it is drawn, written as a scenario file that loads back, played,
// judged from the run's outputs, and the campaign's reports name it with its verdict.
func TestACampaignOfOneSchedulePlaysJudgesAndReportsIt(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a whole world for about 30 s")
	}
	bin := binDir(t)
	out := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	var progress strings.Builder
	c, err := Run(ctx, Options{Scenario: "../../scenarios/chaos.yaml", Seed: 5, Schedules: 1, Duration: 16 * time.Second,
		Out: out, BinDir: bin, KeepLogs: true, Progress: &progress})
	if err != nil {
		t.Fatal(err)
	}
	if len(c.Entries) != 1 || c.Passed+c.Failed != 1 {
		t.Fatalf("campaign of one schedule: %d entries, %d passed, %d failed", len(c.Entries), c.Passed, c.Failed)
	}
	e := c.Entries[0]
	t.Logf("progress:\n%s", progress.String())
	if e.Observation.RunError != "" {
		t.Fatalf("the world did not run the schedule: %s (logs in %s)", e.Observation.RunError, e.Dir)
	}
	if e.Observation.Sessions == 0 || !e.Observation.GatewayAnswered {
		t.Errorf("nothing was checked: %+v", e.Observation)
	}
	if e.Observation.Recoveries == 0 {
		t.Errorf("no fault recovery was measured for %v", e.Faults)
	}
	f, err := scenario.Load(e.File, nil)
	if err != nil {
		t.Fatalf("the schedule's file does not load: %v", err)
	}
	if f.Seed != e.Schedule.Seed || len(f.Faults) != len(e.Schedule.Faults) {
		t.Errorf("the schedule's file has seed %d and %d faults, want %d and %d", f.Seed, len(f.Faults), e.Schedule.Seed, len(e.Schedule.Faults))
	}
	tl, err := run.ReadFaultTimeline(e.Dir)
	if err != nil || len(tl.Faults) != len(e.Schedule.Faults) {
		t.Errorf("faults.json has %d faults (%v), want %d", len(tl.Faults), err, len(e.Schedule.Faults))
	}
	for _, name := range []string{ReportJSON, ReportMarkdown, ReportHTML} {
		b, err := os.ReadFile(filepath.Join(out, name))
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(string(b), e.Schedule.Faults[0].Name) || !strings.Contains(string(b), "seed") {
			t.Errorf("%s does not name the schedule's fault %s", name, e.Schedule.Faults[0].Name)
		}
	}
	if !strings.Contains(progress.String(), "schedule 0 (seed") || !strings.Contains(progress.String(), "[1/1]") {
		t.Errorf("the progress did not print the schedule and its verdict:\n%s", progress.String())
	}
	if _, err := os.Stat(filepath.Join(out, "failing", filepath.Base(e.File))); (err == nil) == e.Verdict.Pass {
		t.Errorf("failing/ holds the schedule: %v, but its verdict is %s", err == nil, e.Verdict)
	}
	if !e.Verdict.Pass {
		t.Logf("the schedule failed (a finding, not a broken campaign): %v", e.Verdict.Violations)
	}
}
