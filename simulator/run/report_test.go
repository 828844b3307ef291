package run

import (
	"testing"
	"time"

	"wagate/internal/goldentest"
	"wagate/reports"
	"wagate/simulator/metrics"
	"wagate/simulator/scenario"
	"wagate/simulator/threshold"
	"wagate/simulator/truth"
)

// fixedRunFacts are the facts of a small run that never happened: a fixed scenario, host, clock,
// series, metrics and ground truth.
func fixedRunFacts(t *testing.T) runFacts {
	t.Helper()
	f, err := scenario.Load("testdata/report-scenario.yaml", []string{"gateway.batchSize=20"})
	if err != nil {
		t.Fatal(err)
	}
	start := time.Date(2026, 12, 6, 15, 0, 0, 0, time.UTC)
	end := start.Add(38 * time.Second)

	reg := metrics.NewRegistry(nil)
	reg.DefineAll()
	reg.Add("laravel_reqs", 40, metrics.Tags{"endpoint": "POST /api/whatsapp/status/batch"})
	reg.Add("laravel_reqs", 12, metrics.Tags{"endpoint": "POST /api/qr/batch"})
	reg.RateN("http_req_failed", 1, 99, nil)
	for ms := 1; ms <= 10; ms++ {
		reg.ObserveDuration("http_req_duration", time.Duration(ms)*time.Millisecond, metrics.Tags{"endpoint": "status"})
	}
	reg.ObserveDuration("event_delivery_delay", 700*time.Millisecond, metrics.Tags{"priority": "high"})
	// the gateway's own side, as gatewayLatencyProbe reads it: its handler and its goroutines' waits
	reg.ObserveN(MetricGatewayAPIDuration, 0.1, 10, metrics.ContainsTime, metrics.Tags{"endpoint": "status"})
	reg.ObserveN(MetricGatewaySchedWait, 0.05, 95, metrics.ContainsTime, nil)
	reg.ObserveN(MetricGatewaySchedWait, 25, 5, metrics.ContainsTime, nil)
	reg.RateN(MetricGatewaySchedWaitOverLimit, 5, 95, nil)
	reg.Set("laravel_requests_per_minute", 82, nil)
	var subs []threshold.Key
	for _, s := range f.ThresholdSets {
		subs = append(subs, s.Key)
	}

	// The gateway's file as a run of this scenario reads it back (fixed here, so that a new
	// gateway setting does not change these facts; TestScenarioGatewayBlockRoundTripsThroughGatewayYAML
	// covers the file itself).
	settings := map[string]string{"mode": "batch", "batchSize": "20", "batchInterval": "1s", "priorityInterval": "500ms",
		"qrFirstTimeout": "1m0s", "qrTimeout": "20s", "qrCodes": "6", "logLevel": "info"}
	return runFacts{
		Scenario:        f,
		GatewaySettings: settings,
		Label:           "golden",
		Users:           5,
		Host: reports.Environment{
			Hostname: "host-1", CPUModel: "Test CPU", Cores: 2, GoVersion: "go1.26", OS: "linux", Arch: "amd64",
			Redis: "miniredis", GatewayVersion: "gateway test", SimulatorVersion: "simulator test",
		},
		Start: start,
		End:   end,
		Series: []reports.SeriesPoint{{
			Time: start.Add(5 * time.Second), Elapsed: reports.Duration(5 * time.Second), ActiveUsers: 5,
			LaravelRequestsPerMin: map[string]float64{"POST /api/qr/batch": 60},
			SessionsByState:       map[string]int{"pending": 2, "connected": 3},
			GatewayCPUPercent:     3.5, GatewayRSSBytes: 40 << 20, Goroutines: 120, OutboxDepth: 1,
			GatewayWait: &reports.IntervalWait{HandlerP99Ms: 0.1, SchedP99Ms: 25, SchedOverLimitPercent: 5},
		}},
		Metrics:    reg.Snapshot(end.Sub(start), subs, []string{"endpoint", "priority", "event", "state", "scenario"}),
		Truth:      truth.Truth{Sessions: 7, Lost: 0, Stale: 1},
		Duplicates: -1,
	}
}

func TestReportJSONOfFixedRunFactsIsPinnedByGoldenFile(t *testing.T) {
	rep := buildReport(fixedRunFacts(t))
	data, err := rep.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	goldentest.Check(t, "report.golden.json", data)
}

func TestReportEvaluatesEveryThresholdOrderedByMetricKey(t *testing.T) {
	rep := buildReport(fixedRunFacts(t))
	var got []string
	for _, th := range rep.Thresholds {
		verdict := "fails"
		if th.OK {
			verdict = "holds"
		}
		got = append(got, th.Metric+" "+th.Expr+" "+verdict)
	}
	want := []string{
		"event_delivery_delay{priority:high} p(95)<3000 holds",
		"http_req_duration{endpoint:status} p(95)<5 fails",
		"http_req_failed rate<0.05 holds",
		"laravel_reqs count>0 holds",
		"lost_updates count==0 holds",
	}
	if len(got) != len(want) {
		t.Fatalf("thresholds = %q, want %q", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("threshold %d = %q, want %q", i, got[i], want[i])
		}
	}
}

func TestReportOfARealLaravelRunNamesItsAppAndWorkers(t *testing.T) {
	in := fixedRunFacts(t)
	in.RealLaravel = &realLaravelFacts{Description: "Laravel 8, reference app", Workers: 4}
	got := buildReport(in).Configuration.FakeLaravel
	if got.Real != "Laravel 8, reference app" || got.Capacity["workers"] != "4" {
		t.Errorf("fakelaravel configuration = real %q, capacity %v; want the real app's description and its 4 workers", got.Real, got.Capacity)
	}
}

func TestReportNeverCountsUnknownDuplicatesAsNegative(t *testing.T) {
	in := fixedRunFacts(t)
	in.Duplicates = -1
	if got := buildReport(in).GroundTruth.DuplicateApplications; got != 0 {
		t.Errorf("duplicate applications = %d with an unknown count, want 0", got)
	}
}
