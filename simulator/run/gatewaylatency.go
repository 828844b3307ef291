package run

import (
	"bufio"
	"context"
	"io"
	"math"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"wagate/gateway/api"
	"wagate/reports"
	"wagate/simulator/metrics"
	"wagate/simulator/user"
)

// apiDurationMetric is the gateway's server-side latency histogram of its REST API.
const apiDurationMetric = "wagate_api_request_duration_seconds"

// MetricGatewayAPIDuration is the gateway's own time for the polled reads, by endpoint (status,
// qr), beside the client's http_req_duration: the difference is the client's queueing (the load
// generator's scheduling, the connection pool) and the network.
const MetricGatewayAPIDuration = "gateway_api_duration"

// gatewayRoutes maps the gateway's route labels of the polled reads to the users' endpoint tags.
var gatewayRoutes = map[string]string{api.StatusRoute: user.EndpointStatus, api.QRRoute: user.EndpointQR}

// gatewayLatencyProbe reads the gateway's wagate_api_request_duration_seconds buckets at the end
// of every series interval and records what the interval added as gateway_api_duration{endpoint}
// samples, each at its bucket's upper bound (so a percentile is never below the gateway's: the
// resolution is the histogram's buckets, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 25 ms ...). A restarted
// gateway's counters start again from zero.
type gatewayLatencyProbe struct {
	reg        *metrics.Registry
	hc         *http.Client
	url, token string

	mu   sync.Mutex
	last bucketCounts
}

// bucketCounts are cumulative bucket counts by endpoint and upper bound (seconds).
type bucketCounts map[string]map[float64]float64

func (g *gatewayLatencyProbe) sample(context.Context) {}

func (g *gatewayLatencyProbe) closeInterval(ctx context.Context, _ *reports.SeriesPoint) {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, g.url+"/metrics", nil)
	if err != nil {
		return
	}
	if g.token != "" {
		req.Header.Set("Authorization", "Bearer "+g.token)
	}
	resp, err := g.hc.Do(req)
	if err != nil {
		return
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return
	}
	now := parseAPIBuckets(resp.Body)
	g.mu.Lock()
	prev := g.last
	g.last = now
	g.mu.Unlock()
	for endpoint, bounds := range bucketDeltas(prev, now) {
		for _, b := range bounds {
			g.reg.ObserveN(MetricGatewayAPIDuration, b.ms, b.n, metrics.ContainsTime, metrics.Tags{"endpoint": endpoint})
		}
	}
}

// bucketSamples are n samples at ms.
type bucketSamples struct {
	ms float64
	n  int64
}

// bucketDeltas turns two readings of cumulative buckets into the samples added between them, per
// endpoint: each bucket's own count at its upper bound in milliseconds (the +Inf bucket's at twice
// the largest finite bound). A count that went down (the gateway restarted) counts from zero.
func bucketDeltas(prev, now bucketCounts) map[string][]bucketSamples {
	out := map[string][]bucketSamples{}
	for endpoint, cum := range now {
		old := prev[endpoint]
		for le := range cum {
			if cum[le] < old[le] {
				old = nil // restarted
				break
			}
		}
		bounds := make([]float64, 0, len(cum))
		for le := range cum {
			bounds = append(bounds, le)
		}
		sort.Float64s(bounds)
		var below float64 // cumulative delta of the previous bound
		for i, le := range bounds {
			d := cum[le] - old[le]
			n := int64(math.Round(d - below))
			below = d
			if n <= 0 {
				continue
			}
			ms := le * 1000
			if math.IsInf(le, 1) {
				ms = 2000
				if i > 0 {
					ms = bounds[i-1] * 2000
				}
			}
			out[endpoint] = append(out[endpoint], bucketSamples{ms: ms, n: n})
		}
	}
	return out
}

// parseAPIBuckets reads the polled reads' buckets of wagate_api_request_duration_seconds from
// the Prometheus text format, summed over methods and codes, by endpoint.
func parseAPIBuckets(r io.Reader) bucketCounts {
	out := bucketCounts{}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 4<<20)
	prefix := apiDurationMetric + "_bucket{"
	for sc.Scan() {
		line, ok := strings.CutPrefix(sc.Text(), prefix)
		if !ok {
			continue
		}
		labels, value, ok := strings.Cut(line, "} ")
		if !ok {
			continue
		}
		var endpoint string
		le := math.NaN()
		for kv := range strings.SplitSeq(labels, ",") {
			k, v, _ := strings.Cut(kv, "=")
			v = strings.Trim(v, `"`)
			switch k {
			case "route":
				endpoint = gatewayRoutes[v]
			case "le":
				if f, err := strconv.ParseFloat(v, 64); err == nil {
					le = f
				}
			}
		}
		fields := strings.Fields(value)
		if endpoint == "" || math.IsNaN(le) || len(fields) == 0 {
			continue
		}
		n, err := strconv.ParseFloat(fields[0], 64)
		if err != nil {
			continue
		}
		if out[endpoint] == nil {
			out[endpoint] = map[float64]float64{}
		}
		out[endpoint][le] += n
	}
	return out
}
