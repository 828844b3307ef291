package run

import (
	"bufio"
	"cmp"
	"context"
	"io"
	"math"
	"net/http"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"wagate/gateway/api"
	"wagate/reports"
	"wagate/simulator/metrics"
	"wagate/simulator/threshold"
	"wagate/simulator/user"
)

// apiDurationMetric is the gateway's server-side latency histogram of its REST API.
const apiDurationMetric = "wagate_api_request_duration_seconds"

// schedLatencyMetric is the gateway's goroutine scheduling latency (gateway/metrics): how long its
// goroutines waited runnable for a CPU.
const schedLatencyMetric = "wagate_go_sched_latency_seconds"

// MetricGatewaySchedWait is the gateway's goroutines' wait for a CPU (trend, ms; samples at their
// bucket's upper bound), and MetricGatewaySchedWaitOverLimit the share of those waits longer
// than reports.SchedWaitLimitMs (rate): beside the client's p99 and the handler's they say how
// much of a request's time the gateway spent waiting for its own CPU.
const (
	MetricGatewaySchedWait          = "gateway_sched_wait"
	MetricGatewaySchedWaitOverLimit = "gateway_sched_wait_over_10ms"
)

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
// gateway's counters start again from zero. It reads the gateway's wagate_go_sched_latency_seconds
// in the same scrape into gateway_sched_wait and gateway_sched_wait_over_10ms, and gives each
// series point the interval's handler p99 and goroutine wait (reports.IntervalWait).
type gatewayLatencyProbe struct {
	reg        *metrics.Registry
	hc         *http.Client
	url, token string

	mu   sync.Mutex
	last bucketCounts
}

// schedEndpoint is the key the scheduling latency's buckets are kept under in a bucketCounts.
const schedEndpoint = "sched"

// bucketCounts are cumulative bucket counts by endpoint and upper bound (seconds).
type bucketCounts map[string]map[float64]float64

func (g *gatewayLatencyProbe) sample(context.Context) {}

func (g *gatewayLatencyProbe) closeInterval(ctx context.Context, p *reports.SeriesPoint) {
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
	deltas := bucketDeltas(prev, now)
	for endpoint, bounds := range deltas {
		if endpoint == schedEndpoint {
			continue
		}
		for _, b := range bounds {
			g.reg.ObserveN(MetricGatewayAPIDuration, b.ms, b.n, metrics.ContainsTime, metrics.Tags{"endpoint": endpoint})
		}
	}
	sched := deltas[schedEndpoint]
	over, total := overLimit(sched, reports.SchedWaitLimitMs)
	for _, b := range sched {
		g.reg.ObserveN(MetricGatewaySchedWait, b.ms, b.n, metrics.ContainsTime, nil)
	}
	g.reg.RateN(MetricGatewaySchedWaitOverLimit, over, total-over, nil)
	if p != nil && total > 0 {
		p.GatewayWait = &reports.IntervalWait{HandlerP99Ms: bucketQuantile(deltas[user.EndpointStatus], 0.99),
			SchedP99Ms: bucketQuantile(sched, 0.99), SchedOverLimitPercent: 100 * float64(over) / float64(total)}
	}
}

// bucketQuantile is the q quantile (0..1) of bucket samples: the smallest upper bound (ms) at or
// below which at least q of the samples lie; 0 without samples.
func bucketQuantile(samples []bucketSamples, q float64) float64 {
	var total int64
	for _, b := range samples {
		total += b.n
	}
	if total == 0 {
		return 0
	}
	sorted := slices.SortedFunc(slices.Values(samples), func(a, b bucketSamples) int { return cmp.Compare(a.ms, b.ms) })
	var below int64
	for _, b := range sorted {
		below += b.n
		if float64(below) >= q*float64(total) {
			return b.ms
		}
	}
	return sorted[len(sorted)-1].ms
}

// overLimit counts the bucket samples above limitMs (those whose bucket's upper bound is above
// it) and all of them.
func overLimit(samples []bucketSamples, limitMs float64) (over, total int64) {
	for _, b := range samples {
		total += b.n
		if b.ms > limitMs {
			over += b.n
		}
	}
	return over, total
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
// the Prometheus text format, summed over methods and codes, by endpoint, and the buckets of
// wagate_go_sched_latency_seconds under schedEndpoint.
func parseAPIBuckets(r io.Reader) bucketCounts {
	out := bucketCounts{}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 4<<20)
	prefix := apiDurationMetric + "_bucket{"
	schedPrefix := schedLatencyMetric + "_bucket{"
	for sc.Scan() {
		line, ok := strings.CutPrefix(sc.Text(), prefix)
		sched := false
		if !ok {
			if line, ok = strings.CutPrefix(sc.Text(), schedPrefix); !ok {
				continue
			}
			sched = true
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
		if sched {
			endpoint = schedEndpoint
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

// gatewayWaitOf sets the client's status p99 beside the gateway's handler p99 and goroutine wait
// over the run, from the run's metrics, and says which dominates; nil when the gateway's
// scheduling latency was not read (its metrics not scraped, or a gateway without the metric).
func gatewayWaitOf(m map[string]reports.Metric) *reports.GatewayWait {
	sched, ok := m[MetricGatewaySchedWait]
	if !ok {
		return nil
	}
	p99 := func(mt reports.Metric) float64 {
		v, _ := mt.Value("p(99)")
		return v
	}
	status := func(name string) string {
		return threshold.Key{Metric: name, Tags: map[string]string{"endpoint": user.EndpointStatus}}.String()
	}
	w := &reports.GatewayWait{ClientP99Ms: p99(m[status("http_req_duration")]), HandlerP99Ms: p99(m[status(MetricGatewayAPIDuration)]),
		SchedP99Ms: p99(sched)}
	if over, ok := m[MetricGatewaySchedWaitOverLimit].Value("rate"); ok {
		w.SchedOverLimitPercent = 100 * over
	}
	w.Dominant, _ = reports.DominantPart(w.ClientP99Ms, w.HandlerP99Ms, w.SchedP99Ms)
	return w
}
