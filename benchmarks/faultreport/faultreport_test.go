package faultreport

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"wagate/internal/goldentest"
	"wagate/reports"
)

// writeRun lays out one run folder: users start at t0, Laravel is down from 10 s to 20 s, one
// event caused at 12 s is applied at 25 s, another caused at 5 s took 100 ms.
func writeRun(t *testing.T, dir string, t0 time.Time) {
	t.Helper()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	tl := reports.FaultTimeline{UsersStart: t0, Faults: []reports.FaultWindow{
		{Name: "laravel-down", Kind: "laravel", Start: t0.Add(10 * time.Second), End: t0.Add(20 * time.Second)},
		{Name: "errors-a", Kind: "laravel", Start: t0.Add(30 * time.Second), End: t0.Add(30 * time.Second)},
		{Name: "errors-b", Kind: "laravel", Start: t0.Add(35 * time.Second), End: t0.Add(40 * time.Second)},
		{Name: "kill", Kind: "process", Action: "gateway-kill", Start: t0.Add(50 * time.Second), End: t0.Add(53 * time.Second), Detail: "SIGKILL; restarted"},
	}}
	b, _ := json.Marshal(tl)
	if err := os.WriteFile(filepath.Join(dir, reports.FaultsFile), b, 0o644); err != nil {
		t.Fatal(err)
	}
	rep := &reports.Report{
		Environment: reports.Environment{Start: t0, End: t0.Add(80 * time.Second)},
		GroundTruth: reports.GroundTruth{Sessions: 20},
		Thresholds:  []reports.ThresholdResult{{Metric: "lost_updates", Expr: "count==0", OK: true}},
	}
	if err := rep.Save(filepath.Join(dir, reports.FileName)); err != nil {
		t.Fatal(err)
	}
	var nd bytes.Buffer
	point := func(metric string, at time.Duration, v float64, tags map[string]string) {
		p := map[string]any{"type": "Point", "metric": metric, "data": map[string]any{"time": t0.Add(at), "value": v, "tags": tags}}
		b, _ := json.Marshal(p)
		nd.Write(append(b, '\n'))
	}
	nd.WriteString(`{"type":"Metric","metric":"event_delivery_delay","data":{"type":"trend"}}` + "\n")
	point("event_delivery_delay", 5*time.Second+100*time.Millisecond, 100, nil)
	point("event_delivery_delay", 25*time.Second, 13000, nil)
	for s := 5; s <= 80; s += 5 {
		n := 10.0
		if s > 10 && s <= 20 {
			n = 2 // Laravel down: the breaker's probes
		}
		point("laravel_reqs", time.Duration(s)*time.Second, n, map[string]string{"endpoint": "POST /api/whatsapp/status/batch"})
		point("gateway_rss_bytes", time.Duration(s)*time.Second, float64(40<<20+s<<10), nil)
		point("outbox_depth", time.Duration(s)*time.Second, float64(map[bool]int{true: 30, false: 2}[s > 10 && s <= 20]), nil)
	}
	point("fault_recovery_time", 21*time.Second, 1500, map[string]string{"fault": "laravel-down"})
	point("fault_recovery_time", 41*time.Second, 300, map[string]string{"fault": "errors-b"})
	if err := os.WriteFile(filepath.Join(dir, "metrics.ndjson"), nd.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestPerFaultFigures(t *testing.T) {
	dir := t.TempDir()
	t0 := time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)
	writeRun(t, filepath.Join(dir, "laravel-down", "run1"), t0)
	// Through a symbolic link, as reports/out/latest is one.
	link := filepath.Join(t.TempDir(), "latest")
	if err := os.Symlink(dir, link); err != nil {
		t.Fatal(err)
	}
	rows, err := Analyze(link)
	if err != nil {
		t.Fatal(err)
	}
	if len(rows) != 3 {
		t.Fatalf("%d rows, want 3 (the two contiguous Laravel faults merge): %+v", len(rows), rows)
	}
	down := rows[0]
	want := Row{Entry: filepath.Join("laravel-down", "run1"), Fault: "laravel-down", Kind: "laravel", Start: 10 * time.Second, End: 20 * time.Second,
		Delayed: 1, DelayMax: 13 * time.Second, DelayP99: 13 * time.Second, NormalP99: 100 * time.Millisecond,
		LastApplied: 5 * time.Second, Recovery: 1500 * time.Millisecond,
		// Windows of 15 s (the minimum): before (0, 10] (clipped at the users' start) = 2 points of
		// 10; during (10, 25] = 2 + 2 + 10; after (25, 40] = 3 x 10.
		LaravelBefore: 120, LaravelDuring: 56, LaravelAfter: 120,
		RSSPeak: float64(40<<20 + 40<<10), OutboxPeak: 30,
		Truth: reports.GroundTruth{Sessions: 20}, ThresholdsOK: true}
	if fmt.Sprintf("%+v", down) != fmt.Sprintf("%+v", want) {
		t.Errorf("laravel-down row:\n got %+v\nwant %+v", down, want)
	}
	if rows[1].Fault != "errors-a .. errors-b" || rows[1].Start != 30*time.Second || rows[1].End != 40*time.Second || rows[1].Recovery != 300*time.Millisecond {
		t.Errorf("merged row: %+v", rows[1])
	}
	if rows[2].Kind != "process gateway-kill" || rows[2].Recovery != -1 || rows[2].Detail != "SIGKILL; restarted" {
		t.Errorf("process row: %+v", rows[2])
	}

	var md bytes.Buffer
	if err := Markdown(&md, rows, "make bench-faults"); err != nil {
		t.Fatal(err)
	}
	goldentest.Check(t, "faults.golden.md", md.Bytes())
}

func TestAFolderWithoutFaultRunsIsAnError(t *testing.T) {
	if _, err := Analyze(t.TempDir()); err == nil {
		t.Fatal("no error for an empty folder")
	}
}
