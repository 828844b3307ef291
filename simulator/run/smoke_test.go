package run

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"wagate/reports"
)

// TestSmokeReport checks the output of `bin/simulator run scenarios/smoke.yaml -out DIR` when
// WAGATE_SMOKE_DIR names DIR (CI sets it after running the smoke scenario; see .ci/run): sessions
// connected, Laravel requests counted, nothing lost, thresholds evaluated, summary.json written.
func TestSmokeReport(t *testing.T) {
	dir := os.Getenv("WAGATE_SMOKE_DIR")
	if dir == "" {
		t.Skip("WAGATE_SMOKE_DIR not set: run bin/simulator run scenarios/smoke.yaml -out DIR first")
	}
	rep := checkSmokeReport(t, dir)
	if rep.Configuration.FakeLaravel.Real != "" {
		t.Errorf("the smoke run used the real Laravel app (%s)", rep.Configuration.FakeLaravel.Real)
	}
}

// TestRealLaravelSmokeReport checks the output of the smoke scenario run against the real Laravel
// app (`-set laravel.real=true`) when WAGATE_REAL_SMOKE_DIR names its folder (CI sets it; see
// .ci/run): everything TestSmokeReport checks, counted through fakelaravel's front, plus the real
// app named in the report and its CPU measured.
func TestRealLaravelSmokeReport(t *testing.T) {
	dir := os.Getenv("WAGATE_REAL_SMOKE_DIR")
	if dir == "" {
		t.Skip("WAGATE_REAL_SMOKE_DIR not set: run bin/simulator run scenarios/smoke.yaml -set laravel.real=true -out DIR first")
	}
	rep := checkSmokeReport(t, dir)
	if real := rep.Configuration.FakeLaravel.Real; !strings.Contains(real, "Laravel") || !strings.Contains(real, "php-fpm") {
		t.Errorf("the report does not name the real app: %q", real)
	}
	if m, ok := rep.Metrics[reports.MetricLaravelCPU]; !ok || m.Values["count"] < 1 {
		t.Errorf("the real app's CPU was not sampled: %+v", m)
	}
	if m, ok := rep.Metrics[reports.MetricLaravelResponseTime]; !ok || m.Values["count"] < 1 || m.Values["avg"] <= 0 {
		t.Errorf("the real app's answer times were not recorded: %+v", m)
	}
}

// checkSmokeReport asserts what every smoke run must show and returns its report.
func checkSmokeReport(t *testing.T, dir string) *reports.Report {
	t.Helper()
	rep, err := reports.Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	value := func(metric, key string) float64 {
		m, ok := rep.Metrics[metric]
		if !ok {
			t.Errorf("report has no metric %s", metric)
			return 0
		}
		return m.Values[key]
	}
	if n := value("pairings", "count"); n < 1 {
		t.Errorf("no session connected (pairings = %v)", n)
	}
	if n := value("laravel_reqs", "count"); n < 1 {
		t.Errorf("no Laravel request counted")
	}
	if rep.GroundTruth.Sessions < 1 || rep.GroundTruth.LostUpdates != 0 || rep.GroundTruth.StaleOverwrites != 0 {
		t.Errorf("ground truth = %+v", rep.GroundTruth)
	}
	if len(rep.Thresholds) == 0 {
		t.Error("no thresholds evaluated")
	}
	for _, th := range rep.Thresholds {
		if th.Observed == nil && th.OK {
			continue
		}
		if !th.OK {
			t.Errorf("threshold failed: %s %s (observed %v)", th.Metric, th.Expr, *th.Observed)
		}
	}
	if len(rep.Series) == 0 {
		t.Error("no series points")
	}
	for _, f := range []string{"summary.json", "metrics.ndjson"} {
		if fi, err := os.Stat(filepath.Join(dir, f)); err != nil || fi.Size() == 0 {
			t.Errorf("%s missing or empty: %v", f, err)
		}
	}
	return rep
}
