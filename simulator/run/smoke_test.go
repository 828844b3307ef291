package run

import (
	"os"
	"path/filepath"
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
}
