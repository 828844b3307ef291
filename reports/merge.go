package reports

import (
	"errors"
	"fmt"
	"math"
	"sort"
	"strings"
)

// ErrMerge reports reports that cannot be merged.
var ErrMerge = errors.New("merge reports")

// Merge combines the reports of simulator processes that ran parts (execution segments) of one
// scenario at the same time into one report, as if one process had run it all:
//   - trends merge their HDR histograms and recompute every value from the merged histogram;
//     percentiles are never averaged (a trend without a histogram is an error);
//   - counters sum count and rate (the parts ran concurrently); rates sum passes and fails;
//   - gauges sum value, min and max (each part measured its own share, e.g. its VUs or its gateway;
//     summed min/max are bounds of the total);
//   - series points are aligned by elapsed time bucket and summed; per-interval API latency is
//     recomputed from the interval histograms when every part has them, else the largest
//     percentile of the parts is kept (an upper bound, never an average);
//   - ground truth counts are summed; thresholds are re-evaluated on the merged metrics.
//
// Scenario, label and configuration come from the first report; Scenario.Users is summed and the
// execution segment cleared. The inputs are not modified.
func Merge(reports ...*Report) (*Report, error) {
	if len(reports) == 0 {
		return nil, fmt.Errorf("%w: no reports", ErrMerge)
	}
	first := reports[0]
	out := &Report{
		SchemaVersion:  SchemaVersion,
		Label:          first.Label,
		Scenario:       first.Scenario,
		Configuration:  first.Configuration,
		Environment:    first.Environment,
		SeriesInterval: first.SeriesInterval,
		Metrics:        map[string]Metric{},
	}
	out.Scenario.Users = 0
	out.Scenario.ExecutionSegment = ""
	hosts := []string{}
	for i, r := range reports {
		if r.SeriesInterval != first.SeriesInterval {
			return nil, fmt.Errorf("%w: report %d has series interval %s, report 0 has %s", ErrMerge, i, r.SeriesInterval, first.SeriesInterval)
		}
		out.Scenario.Users += r.Scenario.Users
		out.Instances += max(1, r.Instances)
		if r.Environment.Start.Before(out.Environment.Start) {
			out.Environment.Start = r.Environment.Start
		}
		if r.Environment.End.After(out.Environment.End) {
			out.Environment.End = r.Environment.End
		}
		if h := r.Environment.Hostname; h != "" && !contains(hosts, h) {
			hosts = append(hosts, h)
		}
		out.GroundTruth.Sessions += r.GroundTruth.Sessions
		out.GroundTruth.LostUpdates += r.GroundTruth.LostUpdates
		out.GroundTruth.StaleOverwrites += r.GroundTruth.StaleOverwrites
		out.GroundTruth.DuplicateApplications += r.GroundTruth.DuplicateApplications
	}
	out.Environment.Hostname = strings.Join(hosts, ",")

	if err := mergeMetrics(out, reports); err != nil {
		return nil, err
	}
	series, err := mergeSeries(first.SeriesInterval, reports)
	if err != nil {
		return nil, err
	}
	out.Series = series
	out.Thresholds = mergeThresholds(out.Metrics, reports)
	return out, nil
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func mergeMetrics(out *Report, reports []*Report) error {
	for i, r := range reports {
		for name, m := range r.Metrics {
			acc, seen := out.Metrics[name]
			if !seen {
				acc = Metric{Type: m.Type, Contains: m.Contains, Values: map[string]float64{}}
			} else if acc.Type != m.Type {
				return fmt.Errorf("%w: metric %s is a %s in report %d but a %s before", ErrMerge, name, m.Type, i, acc.Type)
			}
			switch m.Type {
			case Counter:
				acc.Values["count"] += m.Values["count"]
				acc.Values["rate"] += m.Values["rate"]
			case Gauge:
				for _, k := range []string{"value", "min", "max"} {
					acc.Values[k] += m.Values[k]
				}
			case Rate:
				acc.Values = rateValues(acc.Values["passes"]+m.Values["passes"], acc.Values["fails"]+m.Values["fails"])
			case Trend:
				if m.Histogram == nil {
					return fmt.Errorf("%w: trend %s in report %d has no histogram; refusing to average percentiles", ErrMerge, name, i)
				}
				if acc.Histogram == nil {
					acc.Histogram = m.Histogram.Clone()
				} else if err := acc.Histogram.Merge(m.Histogram); err != nil {
					return fmt.Errorf("%w: trend %s: %w", ErrMerge, name, err)
				}
				acc.Values = acc.Histogram.TrendValues()
			default:
				return fmt.Errorf("%w: metric %s has unknown type %q", ErrMerge, name, m.Type)
			}
			out.Metrics[name] = acc
		}
	}
	return nil
}

func mergeSeries(interval Duration, reports []*Report) ([]SeriesPoint, error) {
	type bucket struct {
		p        SeriesPoint
		parts    int
		hdrParts int
	}
	buckets := map[int64]*bucket{}
	for _, r := range reports {
		for _, p := range r.Series {
			key := int64(0)
			if interval > 0 {
				key = int64(math.Round(float64(p.Elapsed) / float64(interval)))
			}
			b := buckets[key]
			if b == nil {
				b = &bucket{p: SeriesPoint{
					Elapsed:               p.Elapsed,
					LaravelRequestsPerMin: map[string]float64{},
					SessionsByState:       map[string]int{},
				}}
				buckets[key] = b
			}
			acc := &b.p
			if p.Time.After(acc.Time) {
				acc.Time = p.Time
			}
			acc.Elapsed = max(acc.Elapsed, p.Elapsed)
			acc.ActiveUsers += p.ActiveUsers
			for k, v := range p.LaravelRequestsPerMin {
				acc.LaravelRequestsPerMin[k] += v
			}
			for k, v := range p.SessionsByState {
				acc.SessionsByState[k] += v
			}
			acc.GatewayCPUPercent += p.GatewayCPUPercent
			acc.GatewayRSSBytes += p.GatewayRSSBytes
			acc.Goroutines += p.Goroutines
			acc.OutboxDepth += p.OutboxDepth
			acc.APILatency.P50 = max(acc.APILatency.P50, p.APILatency.P50)
			acc.APILatency.P95 = max(acc.APILatency.P95, p.APILatency.P95)
			acc.APILatency.P99 = max(acc.APILatency.P99, p.APILatency.P99)
			b.parts++
			if p.APILatencyHistogram != nil {
				b.hdrParts++
				if acc.APILatencyHistogram == nil {
					acc.APILatencyHistogram = p.APILatencyHistogram.Clone()
				} else if err := acc.APILatencyHistogram.Merge(p.APILatencyHistogram); err != nil {
					return nil, fmt.Errorf("%w: series at %s: %w", ErrMerge, p.Elapsed, err)
				}
			}
		}
	}
	keys := make([]int64, 0, len(buckets))
	for k := range buckets {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool { return keys[i] < keys[j] })
	out := make([]SeriesPoint, 0, len(keys))
	for _, k := range keys {
		b := buckets[k]
		if b.hdrParts == b.parts && b.p.APILatencyHistogram != nil {
			h := b.p.APILatencyHistogram
			b.p.APILatency = Percentiles{P50: h.Percentile(50), P95: h.Percentile(95), P99: h.Percentile(99)}
		} else {
			b.p.APILatencyHistogram = nil
		}
		out = append(out, b.p)
	}
	return out, nil
}

func mergeThresholds(metrics map[string]Metric, reports []*Report) []ThresholdResult {
	var out []ThresholdResult
	index := map[string]int{}
	for _, r := range reports {
		for _, t := range r.Thresholds {
			key := t.Metric + "\x00" + t.Expr
			i, seen := index[key]
			if !seen {
				index[key] = len(out)
				out = append(out, ThresholdResult{Metric: t.Metric, Expr: t.Expr, OK: t.OK, AbortOnFail: t.AbortOnFail})
				continue
			}
			out[i].OK = out[i].OK && t.OK
			out[i].AbortOnFail = out[i].AbortOnFail || t.AbortOnFail
		}
	}
	for i := range out {
		m, ok := metrics[out[i].Metric]
		if !ok {
			continue // no part recorded the metric: keep the parts' verdict
		}
		observed, held, found, err := EvaluateThreshold(out[i].Expr, m)
		if err != nil || !found {
			continue
		}
		out[i].OK = held
		out[i].Observed = &observed
	}
	return out
}
