package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"wagate/reports"
)

func TestRunRejectsAnInvalidScenarioWithItsProblems(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "bad.yaml")
	os.WriteFile(path, []byte("scenarios:\n  s: {executor: constant-vus, vus: 0, duration: 1m}\n"), 0o644)
	var out, errb bytes.Buffer
	code := runScenario(context.Background(), []string{path, "-out", filepath.Join(dir, "out")}, &out, &errb)
	if code != exitUsage {
		t.Errorf("exit code %d, want %d", code, exitUsage)
	}
	if want := path + ":2: scenarios.s.vus: the number of VUs must be more than 0"; !strings.Contains(errb.String(), want) {
		t.Errorf("stderr %q lacks %q", errb.String(), want)
	}
}

func TestRunNeedsAScenarioAndAnOutputFolder(t *testing.T) {
	var out, errb bytes.Buffer
	if code := runScenario(context.Background(), []string{"-out", "x"}, &out, &errb); code != exitUsage {
		t.Errorf("no scenario: exit %d", code)
	}
	if code := runScenario(context.Background(), []string{"s.yaml"}, &out, &errb); code != exitUsage {
		t.Errorf("no -out: exit %d", code)
	}
}

func writeReport(t *testing.T, dir string, p95ok bool, samples ...float64) {
	t.Helper()
	h := reports.NewTimeHistogram()
	for _, v := range samples {
		h.Record(v)
	}
	start := time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)
	r := &reports.Report{
		SchemaVersion: reports.SchemaVersion,
		Scenario:      reports.Scenario{Name: "s", Users: 5},
		Environment:   reports.Environment{Start: start, End: start.Add(time.Minute)},
		Metrics:       map[string]reports.Metric{"http_req_duration": reports.NewTrendMetric("time", h)},
		Thresholds:    []reports.ThresholdResult{{Metric: "http_req_duration", Expr: "p(95)<50", OK: p95ok}},
	}
	os.MkdirAll(dir, 0o755)
	if err := r.Save(dir); err != nil {
		t.Fatal(err)
	}
}

func TestMergeReevaluatesThresholdsOnMergedHistograms(t *testing.T) {
	dir := t.TempDir()
	a, b, out := filepath.Join(dir, "a"), filepath.Join(dir, "b"), filepath.Join(dir, "m")
	// a: 20 fast samples (passes); b: 6 of 20 slow (fails); merged, 6 of 40 are slow: p(95) = 100 ms.
	var fast []float64
	for i := 0; i < 20; i++ {
		fast = append(fast, 10)
	}
	slow := append([]float64{}, fast[:14]...)
	slow = append(slow, 100, 100, 100, 100, 100, 100)
	writeReport(t, a, true, fast...)
	writeReport(t, b, false, slow...)
	var stdout, stderr bytes.Buffer
	code := runMerge(context.Background(), []string{"-out", out, a, b}, &stdout, &stderr)
	if code != exitThresholdFailed {
		t.Errorf("exit %d, want 99 (merged p95 is 100 ms); stderr %s", code, stderr.String())
	}
	m, err := reports.Load(out)
	if err != nil {
		t.Fatal(err)
	}
	if m.Scenario.Users != 10 || m.Metrics["http_req_duration"].Histogram.Count() != 40 {
		t.Errorf("merged users %d, samples %d", m.Scenario.Users, m.Metrics["http_req_duration"].Histogram.Count())
	}
	if _, err := os.Stat(filepath.Join(out, "summary.json")); err != nil {
		t.Error("no summary.json")
	}
	if !strings.Contains(stdout.String(), "✗ http_req_duration p(95)<50") {
		t.Errorf("stdout: %s", stdout.String())
	}
}
