package run

import (
	"math"
	"reflect"
	"strings"
	"testing"
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
go_goroutines 42
`

func TestTheGatewaysReadBucketsAreReadByEndpoint(t *testing.T) {
	got := parseAPIBuckets(strings.NewReader(gatewayMetricsText))
	want := bucketCounts{
		"status": {0.0001: 10, 0.001: 95, 0.01: 104, math.Inf(1): 105}, // codes summed
		"qr":     {0.001: 3, math.Inf(1): 3},
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
