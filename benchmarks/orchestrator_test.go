package benchmarks

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"wagate/reports"
)

func testOrchestrator(t *testing.T, matrix string) (*Orchestrator, *bytes.Buffer) {
	t.Helper()
	m, err := ParseMatrix([]byte(matrix))
	if err != nil {
		t.Fatal(err)
	}
	var progress bytes.Buffer
	clock := time.Date(2026, 11, 27, 14, 0, 0, 0, time.UTC)
	return &Orchestrator{
		Matrix: m, MatrixPath: "benchmarks/test.yaml", Command: "go test",
		Runner:   &Runner{Simulator: fakeCommand(t), Grace: time.Second},
		OutRoot:  t.TempDir(),
		Progress: &progress,
		Now:      func() time.Time { clock = clock.Add(time.Second); return clock },
	}, &progress
}

func TestBenchRunsEveryEntryAndRendersTheReports(t *testing.T) {
	o, progress := testOrchestrator(t, `
name: test
repeats: 2
seedTable: {legacy: legacy-100, batch: batch-100, scale: batch-2000}
entries:
  - {name: legacy-100, scenario: ok.yaml, set: [gateway.mode=legacy, users=100], repeats: 1}
  - {name: batch-100, scenario: ok.yaml, set: [gateway.mode=batch, users=100]}
  - {name: batch-2000, scenario: ok.yaml, set: [gateway.mode=batch, users=2000], repeats: 1}
`)
	out, err := o.RunEntries(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	// batch-2000 exceeds the fake's capacity (1000 users): its thresholds fail, exit code 99.
	if out.Runs != 4 || out.Failed != 0 || out.ThresholdsFailed != 1 || out.ExitCode() != ExitThresholdsFailed {
		t.Errorf("outcome = %+v, exit %d", out, out.ExitCode())
	}
	res, err := reports.LoadResults(filepath.Join(o.OutRoot, LatestLink))
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Entries) != 3 || len(res.Entries[1].Reports) != 2 {
		t.Fatalf("bench folder holds %d entries (%d batch-100 reports)", len(res.Entries), len(res.Entries[1].Reports))
	}
	for _, f := range []string{"report.md", "report.html", "bench.json", "batch-100/run2/report.json", "batch-100/run2/simulator.log"} {
		if _, err := os.Stat(filepath.Join(out.Dir, f)); err != nil {
			t.Errorf("bench folder lacks %s: %v", f, err)
		}
	}
	p := progress.String()
	for _, want := range []string{"[1/4] legacy-100 run 1/1", "estimate after the first run", "[4/4] batch-2000 run 1/1: thresholds FAILED", "about ", "threshold failed: http_req_duration p(99)<=10"} {
		if !strings.Contains(p, want) {
			t.Errorf("progress lacks %q:\n%s", want, p)
		}
	}
}

func TestBenchRecordsAFailingEntryAndLeavesNoProcess(t *testing.T) {
	o, _ := testOrchestrator(t, `
entries:
  - {name: broken, scenario: crash.yaml}
  - {name: fine, scenario: ok.yaml}
`)
	out, err := o.RunEntries(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if out.Failed != 1 || out.ExitCode() != 1 {
		t.Errorf("outcome = %+v, want one failed run and exit code 1", out)
	}
	assertAllGone(t, filepath.Join(out.Dir, "broken", "run1"), 2)
	res, err := reports.LoadResults(out.Dir)
	if err != nil {
		t.Fatal(err)
	}
	if run := res.Entries[0].Runs[0]; run.ExitCode != 1 || run.Error == "" {
		t.Errorf("manifest run = %+v, want exit code 1 and an error", run)
	}
	if len(res.Entries[1].Reports) != 1 {
		t.Error("the entry after a failing one must still run")
	}
}

func TestBenchStopsOnCtrlCAndLeavesNoProcess(t *testing.T) {
	o, _ := testOrchestrator(t, `
entries:
  - {name: stuck, scenario: hang.yaml}
  - {name: never, scenario: ok.yaml}
`)
	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		waitForPids(filepath.Join(o.OutRoot, LatestLink, "stuck", "run1"), 2)
		cancel()
	}()
	out, err := o.RunEntries(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if !out.Interrupted || out.ExitCode() != 130 || out.Runs != 1 {
		t.Errorf("outcome = %+v, want interrupted after one run", out)
	}
	assertAllGone(t, filepath.Join(out.Dir, "stuck", "run1"), 2)
}

func TestBenchCapacityFindsTheLargestUserCountThatHolds(t *testing.T) {
	t.Setenv("FAKE_CAPACITY", "370")
	o, _ := testOrchestrator(t, `
capacity:
  - {name: batch, mode: batch, scenario: ok.yaml, set: [gateway.mode=batch], start: 100, limit: 5000, precision: 0.05}
`)
	out, err := o.RunCapacity(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	res, err := reports.LoadResults(filepath.Join(o.OutRoot, LatestCapacityLink))
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Bench.Capacity) != 1 {
		t.Fatalf("capacity results = %+v", res.Bench.Capacity)
	}
	c := res.Bench.Capacity[0]
	if c.MaxUsers > 370 || c.MaxUsers < 350 {
		t.Errorf("max users = %d, want within 5%% below 370 (steps %+v)", c.MaxUsers, c.Steps)
	}
	if out.Failed != 0 {
		t.Errorf("outcome = %+v", out)
	}
	// A later bench run picks the capacity result up for the seed table.
	o.Matrix, _ = ParseMatrix([]byte("entries: [{name: b, scenario: ok.yaml, set: [users=10]}]"))
	out, err = o.RunEntries(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	md, _ := os.ReadFile(filepath.Join(out.Dir, "report.md"))
	if !strings.Contains(string(md), "## Capacity") {
		t.Error("report.md of a bench after bench-capacity lacks the capacity section")
	}
}

func TestSearchCapacitySteppingAndBisection(t *testing.T) {
	probeUpTo := func(capacity int, seen *[]int) Probe {
		return func(_ context.Context, users int) (bool, []string, string, error) {
			*seen = append(*seen, users)
			return users <= capacity, nil, "", nil
		}
	}
	c := Capacity{Name: "x", Start: 100, Factor: 2, Limit: 100000, Precision: 0.1, Granularity: 10}
	var seen []int
	res, err := SearchCapacity(context.Background(), c, probeUpTo(3700, &seen))
	if err != nil {
		t.Fatal(err)
	}
	// Steps 100..3200 hold, 6400 fails, then bisection until the bracket is within 10%.
	if want := []int{100, 200, 400, 800, 1600, 3200, 6400}; !equalInts(seen[:7], want) {
		t.Errorf("probes = %v, want to start with %v", seen, want)
	}
	if res.MaxUsers > 3700 || float64(res.MaxUsers) < 3700*0.9 {
		t.Errorf("max users = %d, want within 10%% below 3700 (probes %v)", res.MaxUsers, seen)
	}

	seen = nil
	res, _ = SearchCapacity(context.Background(), Capacity{Start: 100, Factor: 2, Limit: 1000, Precision: 0.1, Granularity: 10}, probeUpTo(1e9, &seen))
	if res.MaxUsers != 1000 || seen[len(seen)-1] != 1000 {
		t.Errorf("limit reached: max = %d probes %v, want 1000 with the limit probed", res.MaxUsers, seen)
	}

	seen = nil
	res, _ = SearchCapacity(context.Background(), Capacity{Start: 100, Factor: 2, Limit: 1000, Precision: 0.1, Granularity: 10}, probeUpTo(35, &seen))
	if res.MaxUsers < 30 || res.MaxUsers > 35 {
		t.Errorf("below start: max = %d probes %v, want 30..35", res.MaxUsers, seen)
	}

	boom := errors.New("boom")
	_, err = SearchCapacity(context.Background(), c, func(context.Context, int) (bool, []string, string, error) { return false, nil, "", boom })
	if !errors.Is(err, boom) {
		t.Errorf("error = %v, want the probe's error", err)
	}
}

func equalInts(a, b []int) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func TestMatrixValidationNamesTheProblem(t *testing.T) {
	cases := map[string]string{
		"entries: [{scenario: a.yaml}]":                                             "name is required",
		"entries: [{name: a, scenario: a.yaml}, {name: a, scenario: b.yaml}]":       "name is used twice",
		"entries: [{name: 'a b', scenario: a.yaml}]":                                "may only contain",
		"entries: [{name: a}]":                                                      "scenario is required",
		"entries: [{name: a, scenario: a.yaml, set: [users]}]":                      `set "users" is not key=value`,
		"seedTable: {legacy: nope}\nentries: [{name: a, scenario: a.yaml}]":         `seedTable.legacy: no entry named "nope"`,
		"seed_table: {legacy: a}\nentries: [{name: a, scenario: a.yaml}]":           "seed_table (line 1): matrix keys are camelCase; did you mean seedTable?",
		"capacity: [{name: c, scenario: a.yaml, users_key: n, start: 1, limit: 2}]": "users_key (line 1): matrix keys are camelCase; did you mean usersKey?",
		"entries: [{name: a, scenario: a.yaml, repeat: 3}]":                         "field repeat not found",
		"capacity: [{name: c, scenario: a.yaml, start: 100, limit: 10}]":            "need 1 <= start <= limit",
		"timeout: soon\nentries: [{name: a, scenario: a.yaml}]":                     `"soon" is not a duration`,
		"{}": "no entries and no capacity searches",
	}
	for doc, want := range cases {
		_, err := ParseMatrix([]byte(doc))
		if !errors.Is(err, ErrMatrix) || !strings.Contains(err.Error(), want) {
			t.Errorf("ParseMatrix(%q) error = %v, want it to say %q", doc, err, want)
		}
	}
}

func TestCheckScenariosListsMissingFiles(t *testing.T) {
	dir := t.TempDir()
	present := filepath.Join(dir, "present.yaml")
	if err := os.WriteFile(present, []byte("name: x\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	m, err := ParseMatrix([]byte("entries: [{name: a, scenario: " + present + "}, {name: b, scenario: " + filepath.Join(dir, "missing.yaml") + "}]"))
	if err != nil {
		t.Fatal(err)
	}
	err = m.CheckScenarios(false)
	if !errors.Is(err, ErrMatrix) || !strings.Contains(err.Error(), "missing.yaml") || strings.Contains(err.Error(), "present.yaml") {
		t.Errorf("CheckScenarios = %v, want only missing.yaml named", err)
	}
}

func TestBenchCapacityRetriesARunThatFailedWithoutAVerdict(t *testing.T) {
	o, progress := testOrchestrator(t, `
capacity:
  - {name: broken, mode: batch, scenario: crash.yaml, start: 10, limit: 20, granularity: 10}
`)
	if _, err := o.RunCapacity(context.Background()); err != nil {
		t.Fatal(err)
	}
	res, err := reports.LoadResults(filepath.Join(o.OutRoot, LatestCapacityLink))
	if err != nil {
		t.Fatal(err)
	}
	c := res.Bench.Capacity[0]
	if c.MaxUsers != 0 || len(c.Steps) != 1 || !strings.Contains(strings.Join(c.Steps[0].Failed, " "), "run failed") {
		t.Errorf("capacity = %+v, want 0 users after a failed probe", c)
	}
	if n := len(res.Bench.Entries[0].Runs); n != 2 {
		t.Errorf("%d runs, want the crashed probe retried once:\n%s", n, progress)
	}
}

func TestBenchUpdatesOnlyItsOwnLink(t *testing.T) {
	o, _ := testOrchestrator(t, "entries: [{name: a, scenario: ok.yaml}]")
	o.Link = "latest-faults"
	out, err := o.RunEntries(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	target, err := os.Readlink(filepath.Join(o.OutRoot, "latest-faults"))
	if err != nil || target != filepath.Base(out.Dir) {
		t.Errorf("latest-faults -> %q (%v), want %s", target, err, filepath.Base(out.Dir))
	}
	if _, err := os.Lstat(filepath.Join(o.OutRoot, LatestLink)); !os.IsNotExist(err) {
		t.Errorf("a bench with its own link must leave %s alone (err %v)", LatestLink, err)
	}
}
