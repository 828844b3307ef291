package benchmarks

import (
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"wagate/reports"
)

// The test binary doubles as a fake simulator: when FAKE_SIMULATOR is set, TestMain runs
// fakeSimulator instead of the tests. The behaviour is chosen by the scenario file's base name:
//
//	ok.yaml          writes a report; thresholds hold when users <= FAKE_CAPACITY (default 1000)
//	crash.yaml       starts a grandchild, then exits 1 without a report
//	escape.yaml      starts a grandchild in its own process group (as the simulator starts the
//	                 gateway), then exits 1
//	hang.yaml        starts a grandchild, then sleeps (up to 60 s) until signalled
//	stubborn.yaml    like hang, but ignores SIGINT, so only SIGKILL stops it
//
// Every process writes its pid to OUT/pids, one per line.
func TestMain(m *testing.M) {
	switch os.Getenv("FAKE_SIMULATOR") {
	case "":
		if err := BecomeSubreaper(); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		os.Exit(m.Run())
	case "sleeper":
		signal.Ignore(syscall.SIGINT)
		time.Sleep(60 * time.Second)
		os.Exit(0)
	default:
		os.Exit(fakeSimulator(os.Args[1:]))
	}
}

func fakeCommand(t *testing.T) []string {
	t.Helper()
	t.Setenv("FAKE_SIMULATOR", "run")
	return []string{os.Args[0]}
}

func fakeSimulator(args []string) int {
	if len(args) < 4 || args[0] != "run" || args[1] != "-out" {
		fmt.Fprintln(os.Stderr, "usage: run -out DIR [-set k=v]... SCENARIO", args)
		return 2
	}
	out := args[2]
	users := 100
	var set []string
	rest := args[3:]
	label := ""
	if len(rest) >= 2 && rest[0] == "-label" {
		label, rest = rest[1], rest[2:]
	}
	ndjson := true
	if len(rest) >= 1 && rest[0] == "-no-ndjson" {
		ndjson, rest = false, rest[1:]
	}
	for len(rest) >= 2 && rest[0] == "-set" {
		set = append(set, rest[1])
		if v, ok := strings.CutPrefix(rest[1], "users="); ok {
			users, _ = strconv.Atoi(v)
		}
		rest = rest[2:]
	}
	if len(rest) != 1 {
		fmt.Fprintln(os.Stderr, "want one scenario after the flags, got", rest)
		return 2
	}
	scenario := rest[0]
	recordPid(out, os.Getpid())
	fmt.Println("fake simulator: running", scenario, set)
	if ndjson { // as simulator run writes its points
		_ = os.WriteFile(filepath.Join(out, "metrics.ndjson"), []byte("{}\n"), 0o644)
	}
	switch filepath.Base(scenario) {
	case "ok.yaml":
		capacity := 1000
		if c, err := strconv.Atoi(os.Getenv("FAKE_CAPACITY")); err == nil {
			capacity = c
		}
		return writeFakeReport(out, scenario, label, users, set, users <= capacity)
	case "crash.yaml", "escape.yaml":
		startSleeper(out, filepath.Base(scenario) == "escape.yaml")
		fmt.Fprintln(os.Stderr, "fake simulator: crashing")
		return 1
	case "hang.yaml", "stubborn.yaml":
		if filepath.Base(scenario) == "stubborn.yaml" {
			signal.Ignore(syscall.SIGINT)
		}
		startSleeper(out, false)
		time.Sleep(60 * time.Second)
		return 0
	}
	return 2
}

func recordPid(dir string, pid int) {
	f, err := os.OpenFile(filepath.Join(dir, "pids"), os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644)
	if err != nil {
		return
	}
	defer f.Close()
	fmt.Fprintln(f, pid)
}

// startSleeper starts a grandchild (like the gateway or fakelaravel) that outlives its parent
// unless someone kills it; it inherits the output pipe, as real children do.
func startSleeper(dir string, ownGroup bool) {
	cmd := exec.Command(os.Args[0])
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: ownGroup}
	cmd.Env = append(os.Environ(), "FAKE_SIMULATOR=sleeper")
	cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr
	if err := cmd.Start(); err == nil {
		recordPid(dir, cmd.Process.Pid)
	}
}

func writeFakeReport(dir, scenario, label string, users int, set []string, ok bool) int {
	start := time.Date(2026, 11, 27, 13, 0, 0, 0, time.UTC)
	h := reports.NewTimeHistogram()
	_ = h.RecordN(float64(users)/100, 100)
	observed := h.Percentile(99)
	mode := reports.ModeBatch
	for _, kv := range set {
		if kv == "gateway.mode=legacy" {
			mode = reports.ModeLegacy
		}
	}
	r := &reports.Report{
		SchemaVersion: reports.SchemaVersion,
		Label:         label,
		Scenario:      reports.Scenario{Name: strings.TrimSuffix(filepath.Base(scenario), ".yaml"), File: scenario, Users: users},
		Configuration: reports.Configuration{Gateway: reports.GatewayConfig{Settings: map[string]string{reports.GatewayModeKey: mode}}, Overrides: set},
		Environment:   reports.Environment{Start: start, End: start.Add(time.Minute), Cores: 2},
		Metrics:       map[string]reports.Metric{reports.MetricHTTPReqDuration: reports.NewTrendMetric("time", h)},
		Thresholds:    []reports.ThresholdResult{{Metric: reports.MetricHTTPReqDuration, Expr: "p(99)<=10", OK: ok, Observed: &observed}},
		Series: []reports.SeriesPoint{{Time: start.Add(10 * time.Second), Elapsed: reports.Duration(10 * time.Second), ActiveUsers: users,
			LaravelRequestsPerMin: map[string]float64{"POST /api/qr": float64(users)}, SessionsByState: map[string]int{"connected": users}}},
	}
	if err := r.Save(filepath.Join(dir, reports.FileName)); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	if !ok {
		return ExitThresholdsFailed
	}
	return 0
}

// pids reads the pids a fake run recorded.
func pids(t *testing.T, dir string) []int {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(dir, "pids"))
	if err != nil {
		t.Fatalf("the fake simulator recorded no pids: %v", err)
	}
	var out []int
	for _, l := range strings.Fields(string(data)) {
		p, _ := strconv.Atoi(l)
		out = append(out, p)
	}
	return out
}

// alive reports whether pid is a running (not zombie) process.
func alive(pid int) bool {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	s := string(data)
	i := strings.LastIndexByte(s, ')')
	return i < 0 || i+2 >= len(s) || (s[i+2] != 'Z' && s[i+2] != 'X')
}

func assertAllGone(t *testing.T, dir string, wantProcs int) {
	t.Helper()
	ps := pids(t, dir)
	if len(ps) != wantProcs {
		t.Fatalf("the fake recorded %d processes, want %d", len(ps), wantProcs)
	}
	for _, p := range ps {
		if alive(p) {
			t.Errorf("process %d is still running after the run returned", p)
			_ = syscall.Kill(p, syscall.SIGKILL)
		}
	}
}
