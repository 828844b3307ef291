package metrics

import (
	"math"
	"runtime/metrics"
	"sync"

	"github.com/prometheus/client_golang/prometheus"
)

// schedLatencyName is the Go runtime's histogram of the time goroutines waited runnable before
// they ran: how long a request's goroutine, its answer read from the socket, waited for a P
// while other goroutines (pairings, encryption, GC workers) held it.
const schedLatencyName = "/sched/latencies:seconds"

// schedLatencyBounds are wagate_go_sched_latency_seconds's upper bounds: from 10 µs, below
// which waiting is noise, to 1 s, around the API's 10 ms target. The runtime's own histogram
// has ~hundreds of fine buckets; exposing them all would make every scrape larger.
var schedLatencyBounds = []float64{.00001, .00005, .0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, 1}

var schedLatencyDesc = prometheus.NewDesc("wagate_go_sched_latency_seconds",
	"Time the gateway's goroutines waited runnable before running (the Go runtime's /sched/latencies, which samples about one scheduling in eight), in coarser buckets; the sum is estimated from bucket midpoints. Beside the API's latency it says how much of a request's time was a wait for the CPU.",
	nil, nil)

// schedLatencyCollector reads the runtime's scheduling-latency histogram at each scrape.
type schedLatencyCollector struct {
	mu     sync.Mutex
	sample []metrics.Sample // reused: the runtime's histogram is read into the same value
}

func newSchedLatencyCollector() *schedLatencyCollector {
	return &schedLatencyCollector{sample: []metrics.Sample{{Name: schedLatencyName}}}
}

// Describe implements prometheus.Collector.
func (c *schedLatencyCollector) Describe(ch chan<- *prometheus.Desc) { ch <- schedLatencyDesc }

// Collect implements prometheus.Collector.
func (c *schedLatencyCollector) Collect(ch chan<- prometheus.Metric) {
	c.mu.Lock()
	metrics.Read(c.sample)
	var count uint64
	var sum float64
	var buckets map[float64]uint64
	if c.sample[0].Value.Kind() == metrics.KindFloat64Histogram {
		count, sum, buckets = rebucket(c.sample[0].Value.Float64Histogram(), schedLatencyBounds)
	}
	c.mu.Unlock()
	if buckets == nil {
		return // a runtime without the metric
	}
	ch <- prometheus.MustNewConstHistogram(schedLatencyDesc, count, sum, buckets)
}

// rebucket folds a runtime histogram into Prometheus buckets with the given upper bounds: the
// cumulative count at each bound, the total count and an estimated sum. A runtime bucket
// [lo, hi) is counted at the first bound >= hi, so a bound's count never includes a wait longer
// than the bound (it may leave out waits just below it that share a bucket reaching above).
// The sum takes each bucket's midpoint, or its finite edge when the other is infinite.
func rebucket(h *metrics.Float64Histogram, bounds []float64) (count uint64, sum float64, cumulative map[float64]uint64) {
	cumulative = make(map[float64]uint64, len(bounds))
	at := make([]uint64, len(bounds))
	for i, n := range h.Counts {
		if n == 0 {
			continue
		}
		lo, hi := h.Buckets[i], h.Buckets[i+1]
		count += n
		switch {
		case math.IsInf(lo, -1) && math.IsInf(hi, 1):
		case math.IsInf(lo, -1):
			sum += float64(n) * hi
		case math.IsInf(hi, 1):
			sum += float64(n) * lo
		default:
			sum += float64(n) * (lo + hi) / 2
		}
		for j, b := range bounds {
			if hi <= b {
				at[j] += n
				break
			}
		}
	}
	var running uint64
	for j, b := range bounds {
		running += at[j]
		cumulative[b] = running
	}
	return count, sum, cumulative
}
