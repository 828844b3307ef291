package reports

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"wagate/internal/goldentest"
)

// sampleReport builds a deterministic report of a small run: users users in the given mode, with
// API latencies spread from 1 to latencyMax ms and a Laravel request rate of laravelPerMin.
func sampleReport(t *testing.T, label, mode string, users int, laravelPerMin, latencyMax float64) *Report {
	t.Helper()
	start := time.Date(2026, 11, 27, 13, 0, 0, 0, time.UTC)
	dur := 60 * time.Second
	api := NewTimeHistogram()
	for i := 1; i <= 1000; i++ {
		if err := api.Record(latencyMax * float64(i) / 1000); err != nil {
			t.Fatal(err)
		}
	}
	high := NewTimeHistogram()
	normal := NewTimeHistogram()
	for i := 1; i <= 100; i++ {
		if err := high.Record(float64(i) * 5); err != nil {
			t.Fatal(err)
		}
		if err := normal.Record(float64(i) * 50); err != nil {
			t.Fatal(err)
		}
	}
	cpu := NewHistogram(0.01)
	for i := 0; i < 60; i++ {
		if err := cpu.Record(float64(2 + i%5)); err != nil {
			t.Fatal(err)
		}
	}
	laravelCount := laravelPerMin * dur.Minutes()
	r := &Report{
		SchemaVersion: SchemaVersion,
		Label:         label,
		Scenario:      Scenario{Name: "seed-" + mode, File: "scenarios/seed-" + mode + ".yaml", Users: users, Duration: Duration(dur)},
		Configuration: Configuration{
			Gateway: GatewayConfig{Settings: map[string]string{"mode": mode, "batchSize": "50", "batchInterval": "5s",
				"priorityInterval": "1s", "cacheTtlQr": "20s", "cacheTtlStatus": "30s", "qrCodes": "6"},
				Set: []string{"mode", "batchSize", "batchInterval", "priorityInterval", "cacheTtlQr", "cacheTtlStatus"}, Redis: "embedded"},
			FakeLaravel: FakeLaravelConfig{Capacity: map[string]string{"cores": "2", "workers": "10", "bootstrap": "12ms", "perRow": "1ms", "backlog": "511", "proxyTimeout": "1m0s"}},
			Overrides:   []string{"gateway.mode=" + mode},
		},
		Environment: Environment{CPUModel: "Test CPU", Cores: 2, GoVersion: "go1.26.8", OS: "linux", Arch: "amd64",
			Hostname: "bench-host", Redis: "embedded (miniredis)", GatewayVersion: "gateway dev", SimulatorVersion: "simulator dev",
			Start: start, End: start.Add(dur)},
		SeriesInterval: Duration(10 * time.Second),
		Metrics: map[string]Metric{
			MetricHTTPReqDuration: NewTrendMetric("time", api),
			MetricHTTPReqFailed:   NewRateMetric(0, 1000),
			MetricHTTPReqs:        NewCounterMetric(1000, dur.Seconds()),
			MetricLaravelReqs:     NewCounterMetric(laravelCount, dur.Seconds()),
			MetricEventDeliveryDelay + "{priority:high}":   NewTrendMetric("time", high),
			MetricEventDeliveryDelay + "{priority:normal}": NewTrendMetric("time", normal),
			MetricGatewayCPU:        NewTrendMetric("default", cpu),
			MetricGatewayRSS:        {Type: Gauge, Contains: "data", Values: map[string]float64{"value": 40 << 20, "min": 20 << 20, "max": 48 << 20}},
			MetricSessionsConnected: {Type: Gauge, Contains: "default", Values: map[string]float64{"value": float64(users), "min": 0, "max": float64(users)}},
			MetricLostUpdates:       NewCounterMetric(0, dur.Seconds()),
			MetricStaleOverwrites:   NewCounterMetric(0, dur.Seconds()),
		},
		GroundTruth: GroundTruth{Sessions: int64(users)},
	}
	for i := 1; i <= 6; i++ {
		connected := users * i / 6
		r.Series = append(r.Series, SeriesPoint{
			Time:                  start.Add(time.Duration(i) * 10 * time.Second),
			Elapsed:               Duration(time.Duration(i) * 10 * time.Second),
			ActiveUsers:           users,
			LaravelRequestsPerMin: map[string]float64{"POST /api/qr": laravelPerMin * 0.6, "GET /api/whatsapp/sessions/{id}": laravelPerMin * 0.4},
			APILatency:            Percentiles{P50: latencyMax / 2, P95: latencyMax * 0.95, P99: latencyMax * 0.99},
			GatewayCPUPercent:     float64(2 + i%5),
			GatewayRSSBytes:       int64(20<<20) + int64(connected)*100<<10,
			Goroutines:            100 + connected*5,
			OutboxDepth:           int64(i),
			SessionsByState:       map[string]int{"connected": connected, "pending": users - connected},
		})
	}
	for _, th := range []struct{ metric, expr string }{
		{MetricHTTPReqDuration, "p(99)<=10"},
		{MetricLostUpdates, "count==0"},
		{MetricEventDeliveryDelay + "{priority:high}", "p(99)<=1000"},
	} {
		obs, ok, _, err := EvaluateThreshold(th.expr, r.Metrics[th.metric])
		if err != nil {
			t.Fatal(err)
		}
		r.Thresholds = append(r.Thresholds, ThresholdResult{Metric: th.metric, Expr: th.expr, OK: ok, Observed: &obs})
	}
	return r
}

func TestReportJSONIsPinnedByGoldenFile(t *testing.T) {
	r := sampleReport(t, "batch-100", ModeBatch, 100, 400, 8)
	data, err := r.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	goldentest.Check(t, "report.golden.json", data)
}

func TestSaveThenLoadRoundTripsEveryField(t *testing.T) {
	r := sampleReport(t, "legacy-100", ModeLegacy, 100, 40000, 900)
	dir := t.TempDir()
	if err := r.Save(dir); err != nil {
		t.Fatal(err)
	}
	back, err := Load(dir) // a folder resolves to folder/report.json
	if err != nil {
		t.Fatal(err)
	}
	a, _ := r.Marshal()
	b, _ := back.Marshal()
	if !bytes.Equal(a, b) {
		t.Fatalf("round trip changed the report:\n%s\n---\n%s", a, b)
	}
	if got := back.Metrics[MetricHTTPReqDuration].Histogram.Count(); got != 1000 {
		t.Errorf("histogram count after round trip = %d, want 1000", got)
	}
}

// report.json is readable by everyone like the other report files (CreateTemp would leave it 0600).
func TestSavedReportIsWorldReadable(t *testing.T) {
	r := sampleReport(t, "legacy-100", ModeLegacy, 100, 40000, 900)
	dir := t.TempDir()
	if err := r.Save(dir); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(filepath.Join(dir, FileName))
	if err != nil {
		t.Fatal(err)
	}
	if perm := fi.Mode().Perm(); perm != 0o644 {
		t.Fatalf("report.json mode %v, want 0644", perm)
	}
}

func TestLoadRejectsUnknownSchemaVersions(t *testing.T) {
	for _, doc := range []string{`{"schema_version":0}`, `{}`, `{"schema_version":99}`} {
		if _, err := Parse([]byte(doc)); !errors.Is(err, ErrSchema) {
			t.Errorf("Parse(%s) error = %v, want ErrSchema", doc, err)
		}
	}
	if _, err := Parse([]byte(`{"schema_version":1,"some_future_field":{"x":1}}`)); err != nil {
		t.Errorf("a report with unknown additive fields must load: %v", err)
	}
}

func TestDurationReadsStringsAndNanoseconds(t *testing.T) {
	var d Duration
	if err := d.UnmarshalJSON([]byte(`"1.5s"`)); err != nil || d.Std() != 1500*time.Millisecond {
		t.Errorf("got %v, %v", d, err)
	}
	if err := d.UnmarshalJSON([]byte(`2000000`)); err != nil || d.Std() != 2*time.Millisecond {
		t.Errorf("got %v, %v", d, err)
	}
	if err := d.UnmarshalJSON([]byte(`"soon"`)); err == nil {
		t.Error("want an error for a malformed duration")
	}
}
