package reports

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"wagate/internal/goldentest"
)

// sampleBench is a bench run like `make bench`'s default matrix: legacy at 100 users, batch at 100
// users (two repeats) and batch at 1000 users, with made-up but plausible numbers.
func sampleBench(t *testing.T) *Results {
	t.Helper()
	legacy := sampleReport(t, "legacy-100", ModeLegacy, 100, 40000, 900)
	legacy.Thresholds[0].OK = false // p(99)<=10 fails in legacy mode
	cpu := NewHistogram(0.01)
	_ = cpu.RecordN(70, 60)
	legacy.Metrics[MetricGatewayCPU] = NewTrendMetric("default", cpu)
	b1 := sampleReport(t, "batch-100", ModeBatch, 100, 40, 4)
	b2 := sampleReport(t, "batch-100", ModeBatch, 100, 44, 5)
	scale := sampleReport(t, "batch-1000", ModeBatch, 1000, 300, 8)
	legacy.Environment.CPUSets = &CPUSets{Note: "one core (CPU 0), which the gateway shares with the load generator"}
	scale.Environment.CPUSets = &CPUSets{Pinned: true, Processes: map[string]string{"gateway": "1", "simulator": "0", "fakelaravel": "0"}}
	scale.Environment.LoadAverage = &LoadAverage{Start: [3]float64{0.5, 0.4, 0.3}, End: [3]float64{1.9, 1.1, 0.6}}
	scale.Environment.Generator = &Generator{CPUPercent: 62, Cores: 1, LatencyValid: true}
	scale.Environment.GatewayWait = &GatewayWait{ClientP99Ms: 7.9, HandlerP99Ms: 0.1, SchedP99Ms: 5, SchedOverLimitPercent: 0.4, Dominant: PartGatewayCPU}
	for i := range scale.Series {
		scale.Series[i].GatewayWait = &IntervalWait{HandlerP99Ms: 0.1, SchedP99Ms: float64(i + 1), SchedOverLimitPercent: 0.1 * float64(i)}
	}
	start := legacy.Environment.Start
	res := &Results{
		Dir: "testdata",
		Bench: Bench{SchemaVersion: SchemaVersion, Matrix: "benchmarks/default.yaml", Command: "make bench",
			Start: start, End: start.Add(9 * time.Minute),
			SeedTable: SeedRoles{Legacy: "legacy-100", Batch: "batch-100", Scale: "batch-1000"}},
	}
	add := func(name string, set []string, reports ...*Report) {
		be := BenchEntry{Name: name, Scenario: reports[0].Scenario.File, Set: set}
		for i := range reports {
			be.Runs = append(be.Runs, BenchRun{Dir: filepath.Join(name, "run"+string(rune('1'+i))), Elapsed: Duration(time.Minute)})
		}
		res.Bench.Entries = append(res.Bench.Entries, be)
		res.Entries = append(res.Entries, Entry{BenchEntry: be, Reports: reports})
	}
	add("legacy-100", []string{"gateway.mode=legacy"}, legacy)
	add("batch-100", []string{"gateway.mode=batch"}, b1, b2)
	add("batch-1000", []string{"gateway.mode=batch", "users=1000"}, scale)
	return res
}

func TestMarkdownReportIsPinnedByGoldenFile(t *testing.T) {
	var buf bytes.Buffer
	if err := WriteMarkdown(&buf, sampleBench(t)); err != nil {
		t.Fatal(err)
	}
	goldentest.Check(t, "report.golden.md", buf.Bytes())
}

func TestSeedTableComparesLegacyAndBatchOnTheSameWorkload(t *testing.T) {
	var buf bytes.Buffer
	if err := WriteMarkdown(&buf, sampleBench(t)); err != nil {
		t.Fatal(err)
	}
	md := buf.String()
	// legacy 40,000 req/min vs batch median(40, 44) = 42 req/min: -99.9%, 952x fewer.
	for _, want := range []string{
		"| Laravel requests/min | 40,000 | 4,000 | 40,000 req/min | 42 req/min | -99.9% (952x fewer) (seed: -90%) |",
		"| gateway CPU | 80% | 15% | 70.0% |",
		"| users supported | 100 | 1,000+ | < 100 (thresholds failed) | >= 1,000 |",
	} {
		if !strings.Contains(md, want) {
			t.Errorf("report.md lacks %q", want)
		}
	}
}

func TestTargetsPassAndFailOnMeasuredValues(t *testing.T) {
	res := sampleBench(t)
	got := map[string]Target{}
	for _, tg := range res.Targets() {
		got[tg.Name] = tg
	}
	// legacy: 400 req/min per user; batch-1000: 0.3 per user: 1333x fewer.
	if tg := got["Laravel requests/min per user, batch vs legacy on the same workload"]; tg.Status != "pass" || !strings.HasPrefix(tg.Measured, "1,333x") {
		t.Errorf("requests target = %+v", tg)
	}
	if tg := got["gateway API latency p99"]; tg.Status != "pass" || tg.Where != "batch-1000" {
		t.Errorf("p99 target = %+v", tg)
	}
	if tg := got["max users within those limits (make bench-capacity)"]; tg.Status != "not measured" {
		t.Errorf("capacity target = %+v, want not measured", tg)
	}
	res.Entries[2].Reports[0].GroundTruth.StaleOverwrites = 1
	for _, tg := range res.Targets() {
		if strings.HasPrefix(tg.Name, "lost or stale") && tg.Status != "FAIL" {
			t.Errorf("a stale overwrite must fail the ground truth target: %+v", tg)
		}
	}
	if res.TargetsOK() {
		t.Error("TargetsOK() = true with a failed target")
	}
}

func TestLoadResultsReadsABenchFolderAndASingleRun(t *testing.T) {
	dir := t.TempDir()
	res := sampleBench(t)
	for _, e := range res.Entries {
		for i, r := range e.Reports {
			d := filepath.Join(dir, e.Runs[i].Dir)
			mkdirAll(t, d)
			if err := r.Save(d); err != nil {
				t.Fatal(err)
			}
		}
	}
	// A run that failed before writing its report.
	res.Bench.Entries[0].Runs = append(res.Bench.Entries[0].Runs, BenchRun{Dir: "legacy-100/run2", ExitCode: 1, Error: "simulator crashed"})
	if err := SaveBench(dir, &res.Bench); err != nil {
		t.Fatal(err)
	}
	back, err := LoadResults(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(back.Entries) != 3 || len(back.Entries[1].Reports) != 2 || len(back.Entries[0].Reports) != 1 {
		t.Fatalf("loaded %d entries (%+v)", len(back.Entries), back.Entries)
	}
	single, err := LoadResults(filepath.Join(dir, "batch-1000", "run1"))
	if err != nil {
		t.Fatal(err)
	}
	if len(single.Entries) != 1 || single.Entries[0].Name != "batch-1000" {
		t.Errorf("single run results = %+v", single.Entries)
	}
}

func mkdirAll(t *testing.T, dir string) {
	t.Helper()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
}

func TestLaravelRequestsPerMinutePrefersTheSimulatorsSteadyStateGauge(t *testing.T) {
	r := sampleReport(t, "x", ModeBatch, 10, 600, 5) // series say 600 req/min
	if v, _ := FigLaravelRPM.Of(r); v != 600 {
		t.Errorf("from the series: %v, want 600", v)
	}
	r.Metrics[MetricLaravelRequestsPerMinute] = Metric{Type: Gauge, Values: map[string]float64{"value": 450, "min": 300, "max": 700}}
	if v, _ := FigLaravelRPM.Of(r); v != 450 {
		t.Errorf("with the gauge: %v, want 450 (the mean after warmup)", v)
	}
	r.Series = nil
	delete(r.Metrics, MetricLaravelRequestsPerMinute)
	if v, _ := FigLaravelRPM.Of(r); v != 600 {
		t.Errorf("from the counter: %v, want 600 (rate 10/s)", v)
	}
}

func TestGainsSayWhichWayTheChangeGoes(t *testing.T) {
	cases := []struct{ got, want string }{
		{reductionGain(40000, 400), "-99% (100x fewer)"},
		{reductionGain(100, 250), "+150% (2.50x more)"},
		{speedupGain(500, 50), "10x lower"},
		{speedupGain(10, 30), "3x higher"},
		{percentGain(80, 16), "-80%"},
		{percentGain(1, 1.5), "+50%"},
	}
	for _, c := range cases {
		if c.got != c.want {
			t.Errorf("got %q, want %q", c.got, c.want)
		}
	}
}

func TestUsersSupportedComesFromTheCapacitySearch(t *testing.T) {
	res := sampleBench(t)
	var buf bytes.Buffer
	_ = WriteMarkdown(&buf, res)
	if !strings.Contains(buf.String(), "| users supported | 100 | 1,000+ | < 100 (thresholds failed) | >= 1,000 | — (seed: 10x) |") {
		t.Error("without a capacity search: want lower bounds and no ratio")
	}
	res.Bench.Capacity = []CapacityResult{
		{Name: "legacy", Mode: ModeLegacy, MaxUsers: 40, Limit: 2000, Steps: []CapacityStep{{Users: 10, OK: true}, {Users: 80}, {Users: 40, OK: true}}},
		{Name: "batch", Mode: ModeBatch, MaxUsers: 1500, Limit: 20000},
	}
	buf.Reset()
	_ = WriteMarkdown(&buf, res)
	md := buf.String()
	for _, want := range []string{
		"| users supported | 100 | 1,000+ | 40 users | 1,500 users | 37.5x (seed: 10x) |",
		"| max users within those limits (make bench-capacity) | >= 1,000 | 1,500 users | pass | capacity batch |",
		"| legacy | legacy | 40 users | 10: ok, 80: fail, 40: ok |",
	} {
		if !strings.Contains(md, want) {
			t.Errorf("report.md lacks %q", want)
		}
	}
}

func TestCapacityBelowTheSmallestProbeSaysSo(t *testing.T) {
	c := CapacityResult{MaxUsers: 0, Limit: 2000, Steps: []CapacityStep{{Users: 10}, {Users: 5}}}
	if got := capacityText(c); got != "< 5 users" {
		t.Errorf("capacityText = %q, want < 5 users", got)
	}
	if got := capacityText(CapacityResult{MaxUsers: 2000, Limit: 2000}); got != ">= 2,000 users (search limit)" {
		t.Errorf("capacityText = %q", got)
	}
}

func TestByteMetricsReadAsBytesEvenWhenDeclaredDefault(t *testing.T) {
	r := sampleReport(t, "x", ModeBatch, 10, 10, 5)
	r.Metrics[MetricGatewayRSS] = Metric{Type: Gauge, Contains: "default", Values: map[string]float64{"value": 69648384, "min": 31846400, "max": 69648384}}
	tbl := metricsTable(&Entry{Reports: []*Report{r}})
	for _, row := range tbl.Rows {
		if row[0] == "`gateway_rss_bytes`" && row[2] != "value=69.6 MB min=31.8 MB max=69.6 MB" {
			t.Errorf("gateway_rss_bytes values = %q", row[2])
		}
	}
}

func TestUsersGainAgainstALegacyThatHeldNowhere(t *testing.T) {
	res := sampleBench(t)
	res.Bench.Capacity = []CapacityResult{
		{Name: "legacy", Mode: ModeLegacy, MaxUsers: 0, Limit: 2000, Steps: []CapacityStep{{Users: 10}, {Users: 5}}},
		{Name: "batch", Mode: ModeBatch, MaxUsers: 100, Limit: 20000, Steps: []CapacityStep{{Users: 100, OK: true}, {Users: 150}}},
	}
	var buf bytes.Buffer
	_ = WriteMarkdown(&buf, res)
	if want := "| users supported | 100 | 1,000+ | < 5 users | 100 users | > 20x (seed: 10x) |"; !strings.Contains(buf.String(), want) {
		t.Errorf("report.md lacks %q", want)
	}
}

func TestRealLaravelRunsGetASideBySideSection(t *testing.T) {
	var buf bytes.Buffer
	if err := WriteMarkdown(&buf, sampleBench(t)); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(buf.String(), "real Laravel app, same workload") {
		t.Fatal("a bench without a real-Laravel entry has the side-by-side section")
	}

	res := sampleBench(t)
	real := sampleReport(t, "batch-100-real", ModeBatch, 100, 46, 6)
	real.Configuration.FakeLaravel.Real = "Laravel 8.83.27, reference app laravel/ on php-fpm (8 workers) and nginx, SQLite"
	cpu := NewHistogram(0.01)
	_ = cpu.RecordN(40, 60)
	real.Metrics[MetricLaravelCPU] = NewTrendMetric("default", cpu)
	be := BenchEntry{Name: "batch-100-real", Scenario: real.Scenario.File, Runs: []BenchRun{{Dir: "batch-100-real/run1"}}}
	res.Bench.Entries = append(res.Bench.Entries, be)
	res.Entries = append(res.Entries, Entry{BenchEntry: be, Reports: []*Report{real}})
	buf.Reset()
	if err := WriteMarkdown(&buf, res); err != nil {
		t.Fatal(err)
	}
	md := buf.String()
	for _, want := range []string{
		"## fakelaravel and the real Laravel app, same workload",
		"| figure | legacy-100 | batch-100 | batch-1000 | batch-100-real |",
		"| Laravel | fakelaravel (model) | fakelaravel (model) | fakelaravel (model) | real: Laravel 8.83.27, reference app laravel/ on php-fpm (8 workers) and nginx, SQLite |",
		"| Laravel requests/min (req/min) | 40,000 req/min | 42 req/min | 300 req/min | 46 req/min |",
		"| Laravel CPU (real app) (% of a core) | — | — | — | 40.0% |",
	} {
		if !strings.Contains(md, want) {
			t.Errorf("report.md lacks %q", want)
		}
	}
	buf.Reset()
	if err := WriteHTML(&buf, res); err != nil {
		t.Fatal(err)
	}
	if html := buf.String(); !strings.Contains(html, `<h2 id="real-laravel">`) || !strings.Contains(html, "real: Laravel 8.83.27") {
		t.Error("report.html lacks the side-by-side section")
	}
}
