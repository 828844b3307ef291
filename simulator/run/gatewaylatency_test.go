package run

import (
	"context"
	"math"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"testing"
	"time"

	"wagate/gateway/api"
	gatewaymetrics "wagate/gateway/metrics"
	"wagate/reports"
	"wagate/simulator/metrics"
	"wagate/simulator/user"
)

// The gateway's /metrics as Prometheus writes it: the polled reads' buckets by route, method and
// code, and other routes and metrics that are not the polled reads.
const gatewayMetricsText = `# HELP wagate_api_request_duration_seconds Latency of the gateway's REST API by route, method and status code.
# TYPE wagate_api_request_duration_seconds histogram
wagate_api_request_duration_seconds_bucket{code="200",method="GET",route="/sessions/{id}",le="0.0001"} 10
wagate_api_request_duration_seconds_bucket{code="200",method="GET",route="/sessions/{id}",le="0.001"} 90
wagate_api_request_duration_seconds_bucket{code="200",method="GET",route="/sessions/{id}",le="0.01"} 99
wagate_api_request_duration_seconds_bucket{code="200",method="GET",route="/sessions/{id}",le="+Inf"} 100
wagate_api_request_duration_seconds_bucket{code="404",method="GET",route="/sessions/{id}",le="0.0001"} 0
wagate_api_request_duration_seconds_bucket{code="404",method="GET",route="/sessions/{id}",le="0.001"} 5
wagate_api_request_duration_seconds_bucket{code="404",method="GET",route="/sessions/{id}",le="0.01"} 5
wagate_api_request_duration_seconds_bucket{code="404",method="GET",route="/sessions/{id}",le="+Inf"} 5
wagate_api_request_duration_seconds_bucket{code="200",method="GET",route="/sessions/{id}/qr",le="0.001"} 3
wagate_api_request_duration_seconds_bucket{code="200",method="GET",route="/sessions/{id}/qr",le="+Inf"} 3
wagate_api_request_duration_seconds_bucket{code="200",method="POST",route="POST /sessions",le="0.001"} 7
wagate_api_request_duration_seconds_sum{code="200",method="GET",route="/sessions/{id}"} 0.05
wagate_api_request_duration_seconds_count{code="200",method="GET",route="/sessions/{id}"} 100
# HELP wagate_go_sched_latency_seconds Time the gateway's goroutines waited runnable before running.
# TYPE wagate_go_sched_latency_seconds histogram
wagate_go_sched_latency_seconds_bucket{le="1e-05"} 900
wagate_go_sched_latency_seconds_bucket{le="0.01"} 980
wagate_go_sched_latency_seconds_bucket{le="0.025"} 995
wagate_go_sched_latency_seconds_bucket{le="1"} 1000
wagate_go_sched_latency_seconds_bucket{le="+Inf"} 1000
wagate_go_sched_latency_seconds_sum 0.5
wagate_go_sched_latency_seconds_count 1000
go_goroutines 42
`

func TestTheGatewaysReadBucketsAreReadByEndpoint(t *testing.T) {
	got := parseAPIBuckets(strings.NewReader(gatewayMetricsText))
	want := bucketCounts{
		"status": {0.0001: 10, 0.001: 95, 0.01: 104, math.Inf(1): 105}, // codes summed
		"qr":     {0.001: 3, math.Inf(1): 3},
		// the gateway's goroutines' waits for a CPU, beside the endpoints
		schedEndpoint: {0.00001: 900, 0.01: 980, 0.025: 995, 1: 1000, math.Inf(1): 1000},
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("got %v, want %v", got, want)
	}
}

// What an interval added, as samples at each bucket's upper bound (ms): from nothing, between two
// readings, after the gateway restarted (counts went down: from zero again), nothing new.
func TestAnIntervalsGatewayLatencySamples(t *testing.T) {
	inf := math.Inf(1)
	first := bucketCounts{"status": {0.001: 10, 0.01: 12, inf: 13}}
	later := bucketCounts{"status": {0.001: 30, 0.01: 32, inf: 33}}
	restarted := bucketCounts{"status": {0.001: 4, 0.01: 4, inf: 5}}
	for _, tc := range []struct {
		name      string
		prev, now bucketCounts
		want      map[string][]bucketSamples
	}{
		{"the first reading", nil, first, map[string][]bucketSamples{"status": {{1, 10}, {10, 2}, {20, 1}}}},
		{"between two readings", first, later, map[string][]bucketSamples{"status": {{1, 20}}}},
		{"after a restart", later, restarted, map[string][]bucketSamples{"status": {{1, 4}, {20, 1}}}},
		{"nothing new", later, later, map[string][]bucketSamples{}},
	} {
		if got := bucketDeltas(tc.prev, tc.now); !reflect.DeepEqual(got, tc.want) {
			t.Errorf("%s: %v, want %v", tc.name, got, tc.want)
		}
	}
}

// An interval's p99 and share of waits over the 10 ms limit, from samples at their bucket's upper
// bound (ms): the p99 is the first bound at or below which 99% of the samples lie, and a sample
// counts as over the limit only when its bound is above it (a wait in the 10 ms bucket did not
// exceed 10 ms).
func TestAnIntervalsQuantileAndShareOverTheLimitAreReadFromItsBuckets(t *testing.T) {
	for _, tc := range []struct {
		name          string
		samples       []bucketSamples
		wantP99       float64
		wantOver, all int64
	}{
		{"no samples", nil, 0, 0, 0},
		{"all in one bucket", []bucketSamples{{0.01, 500}}, 0.01, 0, 500},
		{"1% beyond 10 ms: the p99 is still within", []bucketSamples{{0.05, 990}, {25, 10}}, 0.05, 10, 1000},
		{"2% beyond 10 ms: the p99 is the bucket above", []bucketSamples{{0.05, 980}, {25, 20}}, 25, 20, 1000},
		{"the 10 ms bucket is not over the limit", []bucketSamples{{10, 100}}, 10, 0, 100},
		{"out of order (map iteration)", []bucketSamples{{250, 5}, {0.01, 95}, {50, 5}}, 250, 10, 105},
	} {
		if got := bucketQuantile(tc.samples, 0.99); got != tc.wantP99 {
			t.Errorf("%s: p99 %v, want %v", tc.name, got, tc.wantP99)
		}
		if over, all := overLimit(tc.samples, reports.SchedWaitLimitMs); over != tc.wantOver || all != tc.all {
			t.Errorf("%s: over %d of %d, want %d of %d", tc.name, over, all, tc.wantOver, tc.all)
		}
	}
}

// The probe scrapes a real gateway metrics registry (gateway/metrics over loopback HTTP): each
// interval's series point gets the handler's p99 of that interval and the goroutines' wait, the
// run's metrics gain gateway_sched_wait and its share over 10 ms, and the report's GatewayWait
// sets the client's p99 beside them and names the part that dominates.
func TestTheGatewaysGoroutineWaitIsReadBesideItsHandlerAndTheClient(t *testing.T) {
	gm := gatewaymetrics.New()
	srv := httptest.NewServer(gm.Handler())
	defer srv.Close()
	reg := metrics.NewRegistry(nil)
	probe := &gatewayLatencyProbe{reg: reg, hc: srv.Client(), url: srv.URL}
	ctx := context.Background()

	for range 100 {
		gm.ObserveAPI(api.StatusRoute, http.MethodGet, http.StatusOK, 300*time.Microsecond) // the 0.5 ms bucket
	}
	var first reports.SeriesPoint
	probe.closeInterval(ctx, &first)
	if first.GatewayWait == nil {
		t.Fatal("the first interval has no gateway wait: the gateway's wagate_go_sched_latency_seconds was not read")
	}
	if got := first.GatewayWait.HandlerP99Ms; got != 0.5 {
		t.Errorf("first interval's handler p99 %v ms, want 0.5 (300 µs reads, bucket 0.5 ms)", got)
	}
	if first.GatewayWait.SchedP99Ms <= 0 {
		t.Errorf("first interval's goroutine wait p99 %v ms, want > 0 (a runtime always schedules goroutines)", first.GatewayWait.SchedP99Ms)
	}

	for range 100 {
		gm.ObserveAPI(api.StatusRoute, http.MethodGet, http.StatusOK, 20*time.Millisecond) // the 25 ms bucket
	}
	var second reports.SeriesPoint
	probe.closeInterval(ctx, &second)
	if second.GatewayWait == nil || second.GatewayWait.HandlerP99Ms != 25 {
		t.Fatalf("second interval's wait %+v, want the handler's p99 of that interval only (25 ms)", second.GatewayWait)
	}

	// The client saw 40 ms at p99 for the status reads.
	reg.ObserveN("http_req_duration", 40, 200, metrics.ContainsTime, metrics.Tags{"endpoint": user.EndpointStatus})
	snap := reg.Snapshot(time.Minute, nil, ReportTags)
	w := gatewayWaitOf(snap)
	if w == nil {
		t.Fatal("no gateway wait in the report")
	}
	if w.ClientP99Ms < 39 || w.ClientP99Ms > 41 || w.HandlerP99Ms < 24 || w.HandlerP99Ms > 26 || w.SchedP99Ms <= 0 {
		t.Errorf("report's gateway wait %+v, want client ~40 ms, handler ~25 ms, a goroutine wait", w)
	}
	if _, ok := snap[MetricGatewaySchedWaitOverLimit]; !ok {
		t.Errorf("no %s in the run's metrics", MetricGatewaySchedWaitOverLimit)
	}
	if want, _ := reports.DominantPart(w.ClientP99Ms, w.HandlerP99Ms, w.SchedP99Ms); w.Dominant != want || want == "" {
		t.Errorf("dominant %q, want %q", w.Dominant, want)
	}

	if gatewayWaitOf(map[string]reports.Metric{}) != nil {
		t.Error("a run whose gateway's scheduling latency was not read has a gateway wait")
	}
}
