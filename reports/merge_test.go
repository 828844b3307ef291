package reports

import (
	"errors"
	"math"
	"testing"

	"wagate/simulator/threshold"
)

func TestMergeCombinesHistogramsInsteadOfAveragingPercentiles(t *testing.T) {
	// Part A saw 900 fast requests (1 ms), part B 100 slow ones (100 ms). The true p95 of the
	// whole is 100 ms; averaging the parts' p95 (1 and 100) would say 50.5.
	a := sampleReport(t, "seg", ModeBatch, 50, 100, 1)
	b := sampleReport(t, "seg", ModeBatch, 50, 100, 1)
	fast, slow := NewTimeHistogram(), NewTimeHistogram()
	_ = fast.RecordN(1, 900)
	_ = slow.RecordN(100, 100)
	a.Metrics[MetricHTTPReqDuration] = NewTrendMetric("time", fast)
	b.Metrics[MetricHTTPReqDuration] = NewTrendMetric("time", slow)

	m, err := Merge(a, b)
	if err != nil {
		t.Fatal(err)
	}
	got := m.Metrics[MetricHTTPReqDuration]
	if p95 := got.Values["p(95)"]; math.Abs(p95-100) > 0.1 {
		t.Errorf("merged p(95) = %v, want 100", p95)
	}
	if n := got.Values["count"]; n != 1000 {
		t.Errorf("merged count = %v, want 1000", n)
	}
	if avg := got.Values["avg"]; math.Abs(avg-10.9) > 0.01 {
		t.Errorf("merged avg = %v, want 10.9", avg)
	}
	// The inputs are untouched.
	if a.Metrics[MetricHTTPReqDuration].Histogram.Count() != 900 {
		t.Error("Merge modified its input")
	}
}

func TestMergeSumsCountersRatesGroundTruthAndUsers(t *testing.T) {
	a := sampleReport(t, "seg", ModeBatch, 30, 600, 5)
	b := sampleReport(t, "seg", ModeBatch, 70, 600, 5)
	a.GroundTruth.LostUpdates, b.GroundTruth.LostUpdates = 1, 2
	a.Metrics[MetricHTTPReqFailed] = NewRateMetric(1, 9)
	b.Metrics[MetricHTTPReqFailed] = NewRateMetric(3, 87)
	m, err := Merge(a, b)
	if err != nil {
		t.Fatal(err)
	}
	if got := m.Metrics[MetricLaravelReqs].Values["count"]; got != 1200 {
		t.Errorf("laravel_reqs count = %v, want 1200", got)
	}
	if got := m.Metrics[MetricLaravelReqs].Values["rate"]; got != 20 {
		t.Errorf("laravel_reqs rate = %v/s, want 20 (parts ran concurrently)", got)
	}
	if got := m.Metrics[MetricHTTPReqFailed].Values["rate"]; got != 0.04 {
		t.Errorf("http_req_failed rate = %v, want 4/100", got)
	}
	if m.GroundTruth.LostUpdates != 3 || m.Scenario.Users != 100 || m.Instances != 2 {
		t.Errorf("lost=%d users=%d instances=%d, want 3, 100, 2", m.GroundTruth.LostUpdates, m.Scenario.Users, m.Instances)
	}
	if len(m.Series) != len(a.Series) {
		t.Fatalf("series has %d points, want %d aligned buckets", len(m.Series), len(a.Series))
	}
	if got := m.Series[0].LaravelRequestsPerMinTotal(); got != 1200 {
		t.Errorf("first point Laravel req/min = %v, want 1200", got)
	}
	if got := m.Series[5].SessionsByState["connected"]; got != 100 {
		t.Errorf("last point connected = %v, want 100", got)
	}
}

func TestMergeReevaluatesThresholdsOnMergedMetrics(t *testing.T) {
	// Each part alone holds p(99)<=10 (all samples 1 ms in one, 9 ms in the other); merged too.
	// But a lost update in one part must fail count==0 for the whole.
	a := sampleReport(t, "seg", ModeBatch, 10, 10, 9)
	b := sampleReport(t, "seg", ModeBatch, 10, 10, 9)
	b.Metrics[MetricLostUpdates] = NewCounterMetric(2, 60)
	m, err := Merge(a, b)
	if err != nil {
		t.Fatal(err)
	}
	byExpr := map[string]ThresholdResult{}
	for _, th := range m.Thresholds {
		byExpr[th.Metric+" "+th.Expr] = th
	}
	if th := byExpr["lost_updates count==0"]; th.OK || th.Observed == nil || *th.Observed != 2 {
		t.Errorf("lost_updates count==0 = %+v, want failed with observed 2", th)
	}
	if th := byExpr["http_req_duration p(99)<=10"]; !th.OK {
		t.Errorf("http_req_duration p(99)<=10 = %+v, want ok", th)
	}
	if m.ThresholdsOK() {
		t.Error("ThresholdsOK() = true with a failed threshold")
	}
}

func TestMergeRefusesTrendsWithoutHistogram(t *testing.T) {
	a := sampleReport(t, "seg", ModeBatch, 10, 10, 9)
	b := sampleReport(t, "seg", ModeBatch, 10, 10, 9)
	m := b.Metrics[MetricHTTPReqDuration]
	m.Histogram = nil
	b.Metrics[MetricHTTPReqDuration] = m
	if _, err := Merge(a, b); !errors.Is(err, ErrMerge) {
		t.Errorf("Merge error = %v, want ErrMerge", err)
	}
}

func TestEvaluateThresholdSpeaksK6(t *testing.T) {
	h := NewTimeHistogram()
	for i := 1; i <= 100; i++ {
		_ = h.Record(float64(i))
	}
	trend := NewTrendMetric("time", h)
	counter := NewCounterMetric(0, 10)
	cases := []struct {
		expr string
		m    Metric
		ok   bool
	}{
		{"p(95)<50", trend, false},
		{"p(95) < 96", trend, true},
		{"p(99.9)<=100.1", trend, true}, // computed from the histogram (0.1% precision), not stored
		{"med>=50", trend, true},
		{"med<50.1", trend, true},
		{"avg>=50", trend, true},
		{"count==0", counter, true},
		{"count===0", counter, true},
		{"count!=0", counter, false},
		{"rate>0", counter, false},
	}
	for _, c := range cases {
		_, ok, found, err := EvaluateThreshold(c.expr, c.m)
		if err != nil || !found || ok != c.ok {
			t.Errorf("%s: ok=%v found=%v err=%v, want ok=%v", c.expr, ok, found, err, c.ok)
		}
	}
	for _, bad := range []string{"p(95)", "<5", "p(95)<fast"} {
		if _, _, _, err := EvaluateThreshold(bad, trend); !errors.Is(err, threshold.ErrExpression) {
			t.Errorf("%q: error = %v, want threshold.ErrExpression", bad, err)
		}
	}
}
