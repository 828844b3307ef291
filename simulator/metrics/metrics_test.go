package metrics

import (
	"bytes"
	"encoding/json"
	"os"
	"sort"
	"strings"
	"testing"
	"time"

	"wagate/internal/goldentest"
	"wagate/reports"
	"wagate/simulator/threshold"
)

func TestSubmetricsMergeTheMatchingSeries(t *testing.T) {
	r := NewRegistry(nil)
	for i := 1; i <= 100; i++ {
		r.ObserveDuration("http_req_duration", time.Duration(i)*time.Millisecond, Tags{"endpoint": "status", "status": "200"})
		r.ObserveDuration("http_req_duration", time.Duration(100+i)*time.Millisecond, Tags{"endpoint": "qr", "status": "200"})
	}
	all, _ := r.Summarize(threshold.Key{Metric: "http_req_duration"}, time.Minute)
	status, _ := r.Summarize(threshold.Key{Metric: "http_req_duration", Tags: map[string]string{"endpoint": "status"}}, time.Minute)
	if all.Histogram.Count() != 200 || status.Histogram.Count() != 100 {
		t.Fatalf("counts: all %d, status %d", all.Histogram.Count(), status.Histogram.Count())
	}
	if got := status.Values["p(95)"]; got < 94.9 || got > 95.1 {
		t.Errorf("status p(95) = %v, want 95 ms", got)
	}
	if got := all.Values["max"]; got < 199.9 || got > 200.2 {
		t.Errorf("max = %v, want 200 ms", got)
	}
}

func TestCountersRatesGaugesAndChecks(t *testing.T) {
	r := NewRegistry(nil)
	r.Add("laravel_reqs", 3, Tags{"endpoint": "POST /api/qr"})
	r.Add("laravel_reqs", 2, Tags{"endpoint": "POST /api/whatsapp/status"})
	r.Rate("http_req_failed", true, nil)
	r.Rate("http_req_failed", false, nil)
	r.Rate("http_req_failed", false, nil)
	r.Rate("http_req_failed", false, nil)
	r.Set("vus", 5, nil)
	r.Set("vus", 10, nil)
	r.Set("vus", 2, nil)
	r.Check("qr shown", true, nil)
	r.Check("qr shown", false, nil)
	snap := r.Snapshot(10*time.Second, nil, []string{"endpoint"})
	if c := snap["laravel_reqs"]; c.Values["count"] != 5 || c.Values["rate"] != 0.5 {
		t.Errorf("counter = %v", c.Values)
	}
	if c := snap["laravel_reqs{endpoint:POST /api/qr}"]; c.Values["count"] != 3 {
		t.Errorf("counter by endpoint = %v", c.Values)
	}
	if f := snap["http_req_failed"]; f.Values["rate"] != 0.25 || f.Values["passes"] != 1 || f.Values["fails"] != 3 {
		t.Errorf("rate = %v", f.Values)
	}
	if g := snap["vus"]; g.Values["value"] != 2 || g.Values["min"] != 2 || g.Values["max"] != 10 {
		t.Errorf("gauge = %v", g.Values)
	}
	if c := r.Checks(); len(c) != 1 || c[0].Passes != 1 || c[0].Fails != 1 {
		t.Errorf("checks = %v", c)
	}
	if c := snap["checks"]; c.Values["rate"] != 0.5 {
		t.Errorf("checks rate = %v", c.Values)
	}
}

func TestMixingTypesIsRefused(t *testing.T) {
	r := NewRegistry(nil)
	r.Add("x_total", 1, nil)
	r.Set("x_total", 5, nil) // ignored: x_total is a counter
	if r.Type("x_total") != threshold.Counter || r.Total("x_total", nil) != 1 {
		t.Error("a gauge sample changed a counter")
	}
	if err := r.Define("x_total", threshold.Trend, ContainsTime); err == nil {
		t.Error("redefining a counter as a trend was accepted")
	}
}

// Two processes each measured half of the samples; merging their reports must give exactly
// the distribution one process would have measured: histograms merged, never averaged.
func TestHistogramsMergeAcrossProcesses(t *testing.T) {
	one, a, b := NewRegistry(nil), NewRegistry(nil), NewRegistry(nil)
	for i := 1; i <= 1000; i++ {
		d := time.Duration(i*i) * time.Microsecond // skewed: averaging percentiles would be wrong
		one.ObserveDuration("http_req_duration", d, nil)
		if i%3 == 0 {
			a.ObserveDuration("http_req_duration", d, nil)
		} else {
			b.ObserveDuration("http_req_duration", d, nil)
		}
	}
	rep := func(r *Registry) *reports.Report {
		return &reports.Report{SchemaVersion: reports.SchemaVersion, Metrics: r.Snapshot(time.Minute, nil, nil)}
	}
	merged, err := reports.Merge(rep(a), rep(b))
	if err != nil {
		t.Fatal(err)
	}
	want := rep(one).Metrics["http_req_duration"]
	got := merged.Metrics["http_req_duration"]
	for _, k := range []string{"count", "min", "med", "max", "p(90)", "p(95)", "p(99)"} {
		if got.Values[k] != want.Values[k] {
			t.Errorf("%s: merged %v, single process %v", k, got.Values[k], want.Values[k])
		}
	}
	// and the average of the parts' p(95) is not what we got
	avg := (rep(a).Metrics["http_req_duration"].Values["p(95)"] + rep(b).Metrics["http_req_duration"].Values["p(95)"]) / 2
	if avg == got.Values["p(95)"] {
		t.Log("note: the parts' p(95) average happens to equal the merged p(95)")
	}
}

func TestTakeWindowResets(t *testing.T) {
	r := NewRegistry(nil)
	r.ObserveDuration("http_req_duration", time.Millisecond, nil)
	r.Add("laravel_reqs", 7, nil)
	h, _ := r.TakeWindow("http_req_duration")
	_, n := r.TakeWindow("laravel_reqs")
	if h.Count() != 1 || n != 7 {
		t.Errorf("window: %d samples, %v count", h.Count(), n)
	}
	h, _ = r.TakeWindow("http_req_duration")
	_, n = r.TakeWindow("laravel_reqs")
	if h.Count() != 0 || n != 0 {
		t.Errorf("second window not empty: %d, %v", h.Count(), n)
	}
}

func sampleReport(t *testing.T) (*reports.Report, []CheckResult) {
	t.Helper()
	r := NewRegistry(nil)
	for i := 1; i <= 100; i++ {
		r.ObserveDuration("http_req_duration", time.Duration(i)*100*time.Microsecond, Tags{"endpoint": "status"})
		r.Rate("http_req_failed", i%50 == 0, nil)
		r.Add("iterations", 1, nil)
	}
	r.Set("vus", 10, nil)
	r.Set("vus", 0, nil)
	r.Check("qr shown", true, nil)
	r.Check("qr shown", false, nil)
	r.Define("lost_updates", threshold.Counter, ContainsDefault)
	start := time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)
	key := threshold.Key{Metric: "http_req_duration", Tags: map[string]string{"endpoint": "status"}}
	rep := &reports.Report{
		SchemaVersion: reports.SchemaVersion,
		Environment:   reports.Environment{Start: start, End: start.Add(10 * time.Second)},
		Metrics:       r.Snapshot(10*time.Second, []threshold.Key{key}, nil),
		Thresholds: []reports.ThresholdResult{
			{Metric: "http_req_duration", Expr: "p(95)<50", OK: true},
			{Metric: key.String(), Expr: "p(95)<5", OK: false},
			{Metric: "lost_updates", Expr: "count==0", OK: true},
		},
	}
	return rep, r.Checks()
}

// keysOf describes a JSON value's structure: object keys (recursively, with the value's JSON
// kind), so two documents can be compared by shape.
func shape(v any, path string, out map[string]string) {
	switch x := v.(type) {
	case map[string]any:
		out[path] = "object"
		for k, c := range x {
			shape(c, path+"."+k, out)
		}
	case []any:
		out[path] = "array"
		for _, c := range x {
			shape(c, path+"[]", out)
		}
	case float64:
		out[path] = "number"
	case string:
		out[path] = "string"
	case bool:
		out[path] = "bool"
	case nil:
		out[path] = "null"
	}
}

func TestSummaryHasTheShapeOfK6sHandleSummaryData(t *testing.T) {
	fixture, err := os.ReadFile("testdata/k6-handle-summary.json")
	if err != nil {
		t.Fatal(err)
	}
	rep, checks := sampleReport(t)
	ours, err := BuildSummary(rep, checks, nil, false, false).Marshal()
	if err != nil {
		t.Fatal(err)
	}
	var want, got any
	if err := json.Unmarshal(fixture, &want); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(ours, &got); err != nil {
		t.Fatal(err)
	}
	ws, gs := map[string]string{}, map[string]string{}
	shape(want, "", ws)
	shape(got, "", gs)
	var missing []string
	for p, kind := range ws {
		if gs[p] != kind {
			missing = append(missing, p+" ("+kind+", ours: "+gs[p]+")")
		}
	}
	sort.Strings(missing)
	if len(missing) > 0 {
		t.Errorf("summary.json lacks k6's shape at:\n%s", strings.Join(missing, "\n"))
	}
	// Every metric carries exactly the value keys k6 gives its type.
	wantValues := map[string][]string{
		"trend": DefaultTrendStats, "counter": {"count", "rate"}, "rate": {"fails", "passes", "rate"}, "gauge": {"max", "min", "value"},
	}
	s := got.(map[string]any)["metrics"].(map[string]any)
	for name, m := range s {
		mm := m.(map[string]any)
		var keys []string
		for k := range mm["values"].(map[string]any) {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		w := append([]string(nil), wantValues[mm["type"].(string)]...)
		sort.Strings(w)
		if strings.Join(keys, ",") != strings.Join(w, ",") {
			t.Errorf("%s (%s) values %v, want %v", name, mm["type"], keys, w)
		}
	}
	// The check id is md5 of its path, as k6 computes it.
	if id := got.(map[string]any)["root_group"].(map[string]any)["checks"].([]any)[0].(map[string]any)["id"]; id != md5Hex("::qr shown") {
		t.Errorf("check id = %v", id)
	}
}

func TestSummaryGolden(t *testing.T) {
	rep, checks := sampleReport(t)
	s := BuildSummary(rep, checks, nil, false, false)
	got, err := s.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	goldentest.Check(t, "summary.golden.json", got)
	// --summary-export: failed thresholds are true, a rate's value is "value".
	exp := SummaryExport(s)["metrics"].(map[string]any)
	sub := exp["http_req_duration{endpoint:status}"].(map[string]any)
	if sub["thresholds"].(map[string]bool)["p(95)<5"] != true {
		t.Errorf("summary-export thresholds = %v", sub["thresholds"])
	}
	if _, ok := exp["http_req_failed"].(map[string]any)["value"]; !ok {
		t.Error("summary-export rate lacks value")
	}
}

func TestNDJSONLooksLikeK6OutJSON(t *testing.T) {
	var buf bytes.Buffer
	nd := NewNDJSON(&buf, map[string][]string{"http_req_duration": {"p(95)<50"}})
	r := NewRegistry(nd)
	r.ObserveDuration("http_req_duration", 1500*time.Microsecond, Tags{"endpoint": "status"})
	r.Add("http_reqs", 1, Tags{"endpoint": "status"})
	if err := nd.Flush(); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	if len(lines) != 4 {
		t.Fatalf("got %d lines:\n%s", len(lines), buf.String())
	}
	var metric struct {
		Type, Metric string
		Data         struct {
			Name, Type, Contains string
			Thresholds           []string
		}
	}
	json.Unmarshal([]byte(lines[0]), &metric)
	if metric.Type != "Metric" || metric.Data.Type != "trend" || metric.Data.Contains != "time" || metric.Data.Thresholds[0] != "p(95)<50" {
		t.Errorf("metric line = %s", lines[0])
	}
	var point struct {
		Type, Metric string
		Data         struct {
			Time  time.Time
			Value float64
			Tags  map[string]string
		}
	}
	json.Unmarshal([]byte(lines[1]), &point)
	if point.Type != "Point" || point.Metric != "http_req_duration" || point.Data.Value != 1.5 || point.Data.Tags["endpoint"] != "status" || point.Data.Time.IsZero() {
		t.Errorf("point line = %s", lines[1])
	}
}

func TestRecordRequestEqualsTheFourSeparateRecords(t *testing.T) {
	one, four := NewRegistry(nil), NewRegistry(nil)
	tags := Tags{"endpoint": "status", "status": "200"}
	for i := 1; i <= 50; i++ {
		d, b, failed := time.Duration(i)*time.Millisecond, time.Duration(i)*time.Microsecond, i%10 == 0
		one.RecordRequest(tags, d, b, failed)
		four.Add("http_reqs", 1, tags)
		four.ObserveDuration("http_req_duration", d, tags)
		four.ObserveDuration("http_req_blocked", b, tags)
		four.Rate("http_req_failed", failed, tags)
	}
	a, b := one.Snapshot(time.Minute, nil, []string{"endpoint"}), four.Snapshot(time.Minute, nil, []string{"endpoint"})
	if len(a) != len(b) {
		t.Fatalf("%d vs %d metrics", len(a), len(b))
	}
	for name, m := range b {
		for k, v := range m.Values {
			if a[name].Values[k] != v {
				t.Errorf("%s %s: %v vs %v", name, k, a[name].Values[k], v)
			}
		}
	}
	if h, _ := one.TakeWindow("http_req_duration"); h.Count() != 50 {
		t.Errorf("window = %d", h.Count())
	}
}
