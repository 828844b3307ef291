// Package metrics owns the simulator's live measurements: k6-style counters, gauges, rates and
// trends with tags, trends kept as HDR histograms (mergeable across processes, never averaged),
// their end-of-run summaries as reports.Metric, sub-metrics for tag filters, the k6 summary.json
// (handleSummary data) rendering and the k6 `--out json` NDJSON stream of points.
package metrics

import (
	"encoding/json"
	"fmt"
	"sort"
	"strings"
	"sync"
	"time"

	"wagate/reports"
	"wagate/simulator/threshold"
)

// Tags are a sample's tags (endpoint, status, kind, priority, scenario, ...).
type Tags map[string]string

func (t Tags) key() string {
	if len(t) == 0 {
		return ""
	}
	names := make([]string, 0, len(t))
	for n := range t {
		names = append(names, n)
	}
	sort.Strings(names)
	var b strings.Builder
	for _, n := range names {
		b.WriteString(n)
		b.WriteByte(0)
		b.WriteString(t[n])
		b.WriteByte(0)
	}
	return b.String()
}

func (t Tags) clone() Tags {
	c := make(Tags, len(t))
	for k, v := range t {
		c[k] = v
	}
	return c
}

// Contains values, as k6 names them.
const (
	ContainsDefault = "default"
	ContainsTime    = "time"
	ContainsData    = "data"
)

// series is one tag set of one metric.
type series struct {
	tags   Tags
	count  float64 // counter: sum; rate: passes+fails
	passes float64 // rate: non-zero samples
	value  float64 // gauge: last value
	min    float64 // gauge
	max    float64 // gauge
	set    bool    // gauge has a value
	hist   *reports.Histogram
}

type metric struct {
	name, typ, contains string
	series              map[string]*series
	window              *reports.Histogram // trend: samples since the last TakeWindow
	windowCount         float64            // counter: sum since the last TakeWindow
}

// PointSink receives every sample as it is recorded (the NDJSON writer is one).
type PointSink interface {
	Metric(name, typ, contains string)
	Point(name string, at time.Time, value float64, tags Tags)
}

// Registry records samples. Its methods are safe for concurrent use.
type Registry struct {
	mu      sync.Mutex
	metrics map[string]*metric
	checks  map[string]*[2]int64 // name -> passes, fails
	order   []string             // check names in first-seen order
	sink    PointSink
	now     func() time.Time
}

// NewRegistry returns an empty registry; sink (may be nil) receives every sample.
func NewRegistry(sink PointSink) *Registry {
	return &Registry{metrics: map[string]*metric{}, checks: map[string]*[2]int64{}, sink: sink, now: time.Now}
}

func (r *Registry) get(name, typ, contains string) (*metric, error) {
	m := r.metrics[name]
	if m == nil {
		m = &metric{name: name, typ: typ, contains: contains, series: map[string]*series{}}
		if typ == threshold.Trend {
			m.window = newHist(contains)
		}
		r.metrics[name] = m
		if r.sink != nil {
			r.sink.Metric(name, typ, contains)
		}
	}
	if m.typ != typ {
		return nil, fmt.Errorf("metrics: %s is a %s, not a %s", name, m.typ, typ)
	}
	return m, nil
}

func newHist(contains string) *reports.Histogram {
	if contains == ContainsTime {
		return reports.NewTimeHistogram()
	}
	return reports.NewHistogram(0.001)
}

func (m *metric) seriesFor(tags Tags) *series {
	k := tags.key()
	s := m.series[k]
	if s == nil {
		s = &series{tags: tags.clone()}
		if m.typ == threshold.Trend {
			s.hist = newHist(m.contains)
		}
		m.series[k] = s
	}
	return s
}

// Define declares a metric's type and contains before its first sample, so it appears in the
// summary (with zero values) even when nothing is recorded.
func (r *Registry) Define(name, typ, contains string) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	_, err := r.get(name, typ, contains)
	return err
}

// Add increments a counter.
func (r *Registry) Add(name string, v float64, tags Tags) {
	r.mu.Lock()
	defer r.mu.Unlock()
	m, err := r.get(name, threshold.Counter, ContainsDefault)
	if err != nil {
		return
	}
	m.seriesFor(tags).count += v
	m.windowCount += v
	r.emit(name, v, tags)
}

// Set sets a gauge.
func (r *Registry) Set(name string, v float64, tags Tags) {
	r.mu.Lock()
	defer r.mu.Unlock()
	m, err := r.get(name, threshold.Gauge, ContainsDefault)
	if err != nil {
		return
	}
	s := m.seriesFor(tags)
	if !s.set || v < s.min {
		s.min = v
	}
	if !s.set || v > s.max {
		s.max = v
	}
	s.value, s.set = v, true
	r.emit(name, v, tags)
}

// Rate records one sample of a rate metric (ok counts as a non-zero sample).
func (r *Registry) Rate(name string, ok bool, tags Tags) {
	r.mu.Lock()
	defer r.mu.Unlock()
	m, err := r.get(name, threshold.Rate, ContainsDefault)
	if err != nil {
		return
	}
	s := m.seriesFor(tags)
	s.count++
	v := 0.0
	if ok {
		s.passes++
		v = 1
	}
	r.emit(name, v, tags)
}

// Observe records a trend sample; durations are recorded in milliseconds with contains "time".
func (r *Registry) Observe(name string, v float64, contains string, tags Tags) {
	r.mu.Lock()
	defer r.mu.Unlock()
	m, err := r.get(name, threshold.Trend, contains)
	if err != nil {
		return
	}
	_ = m.seriesFor(tags).hist.Record(v) // out-of-range samples (> 1 h) are not recordable
	_ = m.window.Record(v)
	r.emit(name, v, tags)
}

// ObserveDuration records d in milliseconds on a time trend.
func (r *Registry) ObserveDuration(name string, d time.Duration, tags Tags) {
	r.Observe(name, float64(d)/float64(time.Millisecond), ContainsTime, tags)
}

// Check records a k6 check outcome (also into the "checks" rate metric).
func (r *Registry) Check(name string, ok bool, tags Tags) {
	r.mu.Lock()
	c := r.checks[name]
	if c == nil {
		c = &[2]int64{}
		r.checks[name] = c
		r.order = append(r.order, name)
	}
	if ok {
		c[0]++
	} else {
		c[1]++
	}
	r.mu.Unlock()
	t := tags.clone()
	t["check"] = name
	r.Rate("checks", ok, t)
}

func (r *Registry) emit(name string, v float64, tags Tags) {
	if r.sink != nil {
		r.sink.Point(name, r.now(), v, tags)
	}
}

// TakeWindow returns the samples of a trend recorded since the previous call (and resets them),
// or the count of a counter since the previous call; used for series per interval.
func (r *Registry) TakeWindow(name string) (h *reports.Histogram, count float64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	m := r.metrics[name]
	if m == nil {
		return nil, 0
	}
	if m.window != nil {
		h = m.window
		m.window = newHist(m.contains)
	}
	count, m.windowCount = m.windowCount, 0
	return h, count
}

// Total returns a counter's sum over the series matching filter (nil: all).
func (r *Registry) Total(name string, filter Tags) float64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	m := r.metrics[name]
	if m == nil {
		return 0
	}
	var sum float64
	for _, s := range m.series {
		if matches(s.tags, filter) {
			if m.typ == threshold.Rate {
				sum += s.passes
			} else {
				sum += s.count
			}
		}
	}
	return sum
}

func matches(tags, filter Tags) bool {
	for k, v := range filter {
		if tags[k] != v {
			return false
		}
	}
	return true
}

// CheckResult is one check's passes and fails.
type CheckResult struct {
	Name          string
	Passes, Fails int64
}

// Checks returns every check in first-seen order.
func (r *Registry) Checks() []CheckResult {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]CheckResult, 0, len(r.order))
	for _, n := range r.order {
		c := r.checks[n]
		out = append(out, CheckResult{Name: n, Passes: c[0], Fails: c[1]})
	}
	return out
}

// Summarize returns the end-of-run summary of one (sub)metric: the metric's series matching the
// key's tag filter combined (histograms merged). ok is false for a metric never defined.
// elapsed is the run's duration, for counters' per-second rate.
func (r *Registry) Summarize(key threshold.Key, elapsed time.Duration) (reports.Metric, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	m := r.metrics[key.Metric]
	if m == nil {
		return reports.Metric{}, false
	}
	return m.summarize(Tags(key.Tags), elapsed), true
}

func (m *metric) summarize(filter Tags, elapsed time.Duration) reports.Metric {
	var count, passes, value, minV, maxV float64
	var set bool
	var hist *reports.Histogram
	if m.typ == threshold.Trend {
		hist = newHist(m.contains)
	}
	for _, s := range m.series {
		if !matches(s.tags, filter) {
			continue
		}
		count += s.count
		passes += s.passes
		if s.set {
			// Gauges: the sub-metric's value sums the matching series' current values (e.g.
			// sessions per state), min and max are those of the series.
			value += s.value
			if !set || s.min < minV {
				minV = s.min
			}
			if !set || s.max > maxV {
				maxV = s.max
			}
			set = true
		}
		if hist != nil {
			_ = hist.Merge(s.hist)
		}
	}
	switch m.typ {
	case threshold.Counter:
		return reports.NewCounterMetric(count, elapsed.Seconds())
	case threshold.Gauge:
		return reports.Metric{Type: reports.Gauge, Contains: m.contains, Values: map[string]float64{"value": value, "min": minV, "max": maxV}}
	case threshold.Rate:
		return reports.NewRateMetric(passes, count-passes)
	default:
		return reports.NewTrendMetric(m.contains, hist)
	}
}

// Names returns the defined metric names, sorted.
func (r *Registry) Names() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]string, 0, len(r.metrics))
	for n := range r.metrics {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}

// TagValues returns the distinct values of tag across a metric's series, sorted.
func (r *Registry) TagValues(name, tag string) []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	m := r.metrics[name]
	if m == nil {
		return nil
	}
	seen := map[string]bool{}
	for _, s := range m.series {
		if v, ok := s.tags[tag]; ok {
			seen[v] = true
		}
	}
	out := make([]string, 0, len(seen))
	for v := range seen {
		out = append(out, v)
	}
	sort.Strings(out)
	return out
}

// Type returns a metric's type ("" when undefined).
func (r *Registry) Type(name string) string {
	r.mu.Lock()
	defer r.mu.Unlock()
	if m := r.metrics[name]; m != nil {
		return m.typ
	}
	return ""
}

// Snapshot summarizes every metric, plus a sub-metric for each key in subs and, for each tag in
// breakdown, one sub-metric per value of that tag (e.g. http_req_duration{endpoint:status}).
func (r *Registry) Snapshot(elapsed time.Duration, subs []threshold.Key, breakdown []string) map[string]reports.Metric {
	out := map[string]reports.Metric{}
	for _, n := range r.Names() {
		if s, ok := r.Summarize(threshold.Key{Metric: n}, elapsed); ok {
			out[n] = s
		}
		for _, tag := range breakdown {
			for _, v := range r.TagValues(n, tag) {
				k := threshold.Key{Metric: n, Tags: map[string]string{tag: v}}
				if s, ok := r.Summarize(k, elapsed); ok {
					out[k.String()] = s
				}
			}
		}
	}
	for _, k := range subs {
		if s, ok := r.Summarize(k, elapsed); ok {
			out[k.String()] = s
		}
	}
	return out
}

// Values adapts a summary to threshold evaluation.
type Values struct{ M reports.Metric }

// Type is the metric's k6 type.
func (v Values) Type() string { return string(v.M.Type) }

// Value reduces by aggregation a; a trend without samples has no value.
func (v Values) Value(a threshold.Aggregation) (float64, bool) {
	if v.M.Type == reports.Trend && (v.M.Histogram == nil || v.M.Histogram.Count() == 0) {
		return 0, false
	}
	return v.M.Value(a.String())
}

// ObserveN records n trend samples of value v at once (from another process's histogram
// buckets). They reach the point sink as one point carrying the tag "samples".
func (r *Registry) ObserveN(name string, v float64, n int64, contains string, tags Tags) {
	if n <= 0 {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	m, err := r.get(name, threshold.Trend, contains)
	if err != nil {
		return
	}
	_ = m.seriesFor(tags).hist.RecordN(v, n)
	_ = m.window.RecordN(v, n)
	if r.sink != nil {
		t := tags.clone()
		t["samples"] = fmt.Sprint(n)
		r.sink.Point(name, r.now(), v, t)
	}
}

// RateN records passes non-zero and fails zero samples of a rate metric at once.
func (r *Registry) RateN(name string, passes, fails int64, tags Tags) {
	if passes+fails <= 0 {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	m, err := r.get(name, threshold.Rate, ContainsDefault)
	if err != nil {
		return
	}
	s := m.seriesFor(tags)
	s.count += float64(passes + fails)
	s.passes += float64(passes)
	if r.sink != nil {
		r.sink.Point(name, r.now(), float64(passes)/float64(passes+fails), tags)
	}
}

// RecordRequest records one request of an HTTP API at once, with one lock and one tag key:
// http_reqs +1, http_req_duration and http_req_blocked (time trends) and http_req_failed (rate).
// It is the hot path of the simulator's users.
func (r *Registry) RecordRequest(tags Tags, duration, blocked time.Duration, failed bool) {
	r.recordRequest(tags.key(), tags, nil, duration, blocked, failed)
}

// RequestTags are one request's tags with their series key and their JSON object computed once,
// for a caller that records many requests with the same tags (a poller): RecordTagged then
// neither sorts, allocates nor encodes.
type RequestTags struct {
	tags Tags
	key  string
	// json is tags as the point sink writes them (EncodedPointSink), nil when they cannot be.
	json []byte
}

// NewRequestTags copies t and computes its key.
func NewRequestTags(t Tags) RequestTags {
	c := t.clone()
	enc, err := json.Marshal(c)
	if err != nil {
		enc = nil
	}
	return RequestTags{tags: c, key: c.key(), json: enc}
}

// EncodedPointSink is a PointSink that also takes a point's tags already encoded as a JSON object
// (RequestTags'), so that the four points of a poll cost no encoding of their tags.
type EncodedPointSink interface {
	PointEncodedTags(name string, at time.Time, value float64, tags []byte)
}

// RecordTagged is RecordRequest with tags prepared by NewRequestTags.
func (r *Registry) RecordTagged(t RequestTags, duration, blocked time.Duration, failed bool) {
	r.recordRequest(t.key, t.tags, t.json, duration, blocked, failed)
}

// requestMetrics are the metrics of one request, in the order their points are written.
var requestMetrics = [4]string{"http_reqs", "http_req_duration", "http_req_blocked", "http_req_failed"}

// recordRequest adds one request to its series under the registry's lock and then hands its
// points to the sink outside it: the sink's encoding and writing must not hold up every other
// poller recording (a lock held for four JSON encodings per request made the pollers queue on it,
// thousands of runnable goroutines on the generator's one core). encTags is tags as a JSON object,
// or nil.
func (r *Registry) recordRequest(key string, tags Tags, encTags []byte, duration, blocked time.Duration, failed bool) {
	ms := func(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
	var values [4]float64
	var recorded [4]bool
	r.mu.Lock()
	get := func(name, typ, contains string) *series {
		m, err := r.get(name, typ, contains)
		if err != nil {
			return nil
		}
		s := m.series[key]
		if s == nil {
			s = &series{tags: tags.clone()}
			if typ == threshold.Trend {
				s.hist = newHist(contains)
			}
			m.series[key] = s
		}
		return s
	}
	if s := get("http_reqs", threshold.Counter, ContainsDefault); s != nil {
		s.count++
		r.metrics["http_reqs"].windowCount++
		values[0], recorded[0] = 1, true
	}
	if s := get("http_req_duration", threshold.Trend, ContainsTime); s != nil {
		_ = s.hist.Record(ms(duration))
		_ = r.metrics["http_req_duration"].window.Record(ms(duration))
		values[1], recorded[1] = ms(duration), true
	}
	if s := get("http_req_blocked", threshold.Trend, ContainsTime); s != nil {
		_ = s.hist.Record(ms(blocked))
		_ = r.metrics["http_req_blocked"].window.Record(ms(blocked))
		values[2], recorded[2] = ms(blocked), true
	}
	if s := get("http_req_failed", threshold.Rate, ContainsDefault); s != nil {
		s.count++
		if failed {
			s.passes++
			values[3] = 1
		}
		recorded[3] = true
	}
	r.mu.Unlock()
	if r.sink == nil {
		return
	}
	// The metrics' declarations were written by r.get under the lock, before any of these points.
	at := r.now()
	enc, _ := r.sink.(EncodedPointSink)
	for i, name := range requestMetrics {
		switch {
		case !recorded[i]:
		case enc != nil && encTags != nil:
			enc.PointEncodedTags(name, at, values[i], encTags)
		default:
			r.sink.Point(name, at, values[i], tags)
		}
	}
}
