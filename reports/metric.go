package reports

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"

	hdr "github.com/HdrHistogram/hdrhistogram-go"
)

// MetricType is a k6 metric type.
type MetricType string

// The four k6 metric types.
const (
	// Counter sums values; its summary values are "count" and "rate" (per second).
	Counter MetricType = "counter"
	// Gauge keeps the latest value; its summary values are "value", "min" and "max".
	Gauge MetricType = "gauge"
	// Rate tracks the share of non-zero values; its summary values are "rate", "passes", "fails".
	Rate MetricType = "rate"
	// Trend keeps every sample's distribution; its summary values are "avg", "min", "med", "max",
	// "p(90)", "p(95)", "p(99)" and "count", computed from its HDR histogram.
	Trend MetricType = "trend"
)

// Well-known metric names the simulator records and the renderings read. Time trends are in
// milliseconds, like k6. Sub-metrics add a tag filter: MetricHTTPReqDuration+"{endpoint:status}".
const (
	// MetricHTTPReqDuration is the gateway REST API latency as seen by users (trend, ms).
	MetricHTTPReqDuration = "http_req_duration"
	// MetricHTTPReqFailed is the share of failed gateway API requests (rate).
	MetricHTTPReqFailed = "http_req_failed"
	// MetricHTTPReqs is the number of gateway API requests (counter).
	MetricHTTPReqs = "http_reqs"
	// MetricLaravelReqs is the number of requests Laravel received (counter; tag endpoint).
	MetricLaravelReqs = "laravel_reqs"
	// MetricLaravelRequestsPerMinute is the Laravel request rate (gauge: value is the mean over the
	// series intervals after the warmup while users ran; min and max over those intervals).
	MetricLaravelRequestsPerMinute = "laravel_requests_per_minute"
	// MetricLaravelReqDuration is the time Laravel requests spent on a PHP-FPM worker (trend, ms).
	MetricLaravelReqDuration = "laravel_req_duration"
	// MetricLaravelResponseTime is the time from a request's arrival at Laravel to its answer,
	// queue wait included (trend, ms).
	MetricLaravelResponseTime = "laravel_response_time"
	// MetricLaravelCPU is the real Laravel app's CPU use sampled each second, % of one core (trend;
	// only in runs with the real app).
	MetricLaravelCPU = "laravel_cpu_percent"
	// MetricEventDeliveryDelay is the time from fakewa causing an event to fakelaravel applying it
	// (trend, ms; tags kind and priority: "high" or "normal").
	MetricEventDeliveryDelay = "event_delivery_delay"
	// MetricQRVisibilityDelay is the time from a QR code's generation to Laravel having it (trend, ms).
	MetricQRVisibilityDelay = "qr_visibility_delay"
	// MetricPairingDuration is the time from session start to connected (trend, ms).
	MetricPairingDuration = "pairing_duration"
	// MetricGatewayCPU is the gateway's CPU use sampled each second, % of one core (trend).
	MetricGatewayCPU = "gateway_cpu_percent"
	// MetricGatewayRSS is the gateway's resident set size in bytes (gauge).
	MetricGatewayRSS = "gateway_rss_bytes"
	// MetricSessionsConnected is the number of connected sessions (gauge).
	MetricSessionsConnected = "sessions_connected"
	// MetricLostUpdates, MetricStaleOverwrites and MetricDuplicateApplications mirror GroundTruth as
	// counters so thresholds can name them.
	MetricLostUpdates           = "lost_updates"
	MetricStaleOverwrites       = "stale_overwrites"
	MetricDuplicateApplications = "duplicate_applications"
)

// Metric is one metric's end-of-run summary in k6's shape, plus the HDR histogram of a trend.
type Metric struct {
	// Type is the k6 metric type.
	Type MetricType `json:"type"`
	// Contains is k6's value kind: "default", "time" (ms) or "data" (bytes).
	Contains string `json:"contains,omitempty"`
	// Values are the summary values by k6 key (see the MetricType constants).
	Values map[string]float64 `json:"values"`
	// Histogram is a trend's full distribution; nil for other types.
	Histogram *Histogram `json:"hdr,omitempty"`
}

// Value returns the summary value for a k6 aggregation key such as "count", "rate", "value", "avg",
// "med" or "p(99.9)". Trend percentiles not stored in Values are computed from the histogram.
func (m Metric) Value(key string) (float64, bool) {
	if v, ok := m.Values[key]; ok {
		return v, true
	}
	if m.Type == Trend && m.Histogram != nil {
		var p float64
		if _, err := fmt.Sscanf(key, "p(%g)", &p); err == nil && p >= 0 && p <= 100 {
			return m.Histogram.Percentile(p), true
		}
	}
	return 0, false
}

// NewTrendMetric returns a trend summary whose values are computed from h.
func NewTrendMetric(contains string, h *Histogram) Metric {
	return Metric{Type: Trend, Contains: contains, Values: h.TrendValues(), Histogram: h}
}

// NewCounterMetric returns a counter summary of count events over the given duration.
func NewCounterMetric(count float64, over float64) Metric {
	rate := 0.0
	if over > 0 {
		rate = count / over
	}
	return Metric{Type: Counter, Contains: "default", Values: map[string]float64{"count": count, "rate": rate}}
}

// NewRateMetric returns a rate summary of passes (non-zero samples) and fails.
func NewRateMetric(passes, fails float64) Metric {
	return Metric{Type: Rate, Contains: "default", Values: rateValues(passes, fails)}
}

func rateValues(passes, fails float64) map[string]float64 {
	rate := 0.0
	if passes+fails > 0 {
		rate = passes / (passes + fails)
	}
	return map[string]float64{"rate": rate, "passes": passes, "fails": fails}
}

// Default histogram ranges.
const (
	// TimeResolution records time trends (in ms) with microsecond resolution.
	TimeResolution = 0.001
	// maxRecordable is the highest recordable integer: one hour in microseconds.
	maxRecordable = 3_600_000_000
	// significantFigures gives 0.1% value precision.
	significantFigures = 3
)

// ErrHistogram reports histograms that cannot be combined or decoded.
var ErrHistogram = errors.New("histogram")

// Histogram is an HDR histogram of float samples. A sample v is recorded as the integer
// round(v/Resolution); for millisecond trends Resolution is TimeResolution (1 µs). In JSON it is
// stored in HdrHistogram's V2 compressed encoding (the format of HdrHistogram log files), so a
// report stays small and any HdrHistogram implementation can read it.
type Histogram struct {
	resolution float64
	h          *hdr.Histogram
}

// NewHistogram returns an empty histogram recording samples from resolution up to
// resolution*3.6e9 (one hour in ms at TimeResolution) with 3 significant figures.
func NewHistogram(resolution float64) *Histogram {
	if resolution <= 0 {
		resolution = 1
	}
	return &Histogram{resolution: resolution, h: hdr.New(1, maxRecordable, significantFigures)}
}

// NewTimeHistogram returns an empty histogram for millisecond samples at microsecond resolution.
func NewTimeHistogram() *Histogram { return NewHistogram(TimeResolution) }

// HistogramFromSnapshot rebuilds a histogram from an hdrhistogram-go snapshot.
func HistogramFromSnapshot(resolution float64, s *hdr.Snapshot) (*Histogram, error) {
	if err := s.Validate(); err != nil {
		return nil, fmt.Errorf("%w: snapshot: %w", ErrHistogram, err)
	}
	if resolution <= 0 {
		resolution = 1
	}
	return &Histogram{resolution: resolution, h: hdr.Import(s)}, nil
}

// Snapshot exports the histogram's counts (see hdrhistogram-go's Import).
func (h *Histogram) Snapshot() *hdr.Snapshot { return h.h.Export() }

// Resolution is the value of one recorded integer unit.
func (h *Histogram) Resolution() float64 { return h.resolution }

// Record adds one sample. Samples below the resolution are recorded as one unit; samples above the
// range are an error.
func (h *Histogram) Record(v float64) error { return h.RecordN(v, 1) }

// RecordN adds n samples of value v.
func (h *Histogram) RecordN(v float64, n int64) error {
	x := int64(math.Round(v / h.resolution))
	if x < 1 {
		x = 1
	}
	if err := h.h.RecordValues(x, n); err != nil {
		return fmt.Errorf("%w: record %g: %w", ErrHistogram, v, err)
	}
	return nil
}

// Merge adds other's counts into h. Both must have the same resolution.
func (h *Histogram) Merge(other *Histogram) error {
	if other == nil {
		return nil
	}
	if other.resolution != h.resolution {
		return fmt.Errorf("%w: merge resolution %g into %g", ErrHistogram, other.resolution, h.resolution)
	}
	if dropped := h.h.Merge(other.h); dropped > 0 {
		return fmt.Errorf("%w: merge dropped %d samples out of range", ErrHistogram, dropped)
	}
	return nil
}

// Clone returns an independent copy.
func (h *Histogram) Clone() *Histogram {
	return &Histogram{resolution: h.resolution, h: h.h.Clone()}
}

// Count is the number of samples.
func (h *Histogram) Count() int64 { return h.h.TotalCount() }

// Min is the smallest sample (0 when empty).
func (h *Histogram) Min() float64 {
	if h.Count() == 0 {
		return 0
	}
	return float64(h.h.Min()) * h.resolution
}

// Max is the largest sample (0 when empty).
func (h *Histogram) Max() float64 { return float64(h.h.Max()) * h.resolution }

// Mean is the samples' mean (0 when empty).
func (h *Histogram) Mean() float64 { return h.h.Mean() * h.resolution }

// Percentile returns the value at percentile p (0..100).
func (h *Histogram) Percentile(p float64) float64 {
	if h.Count() == 0 {
		return 0
	}
	return float64(h.h.ValueAtPercentile(p)) * h.resolution
}

// Distribution returns the histogram's non-empty buckets as (upper value, count) pairs, in order.
func (h *Histogram) Distribution() []Bucket {
	var out []Bucket
	for _, b := range h.h.Distribution() {
		if b.Count > 0 {
			out = append(out, Bucket{From: float64(b.From) * h.resolution, To: float64(b.To) * h.resolution, Count: b.Count})
		}
	}
	return out
}

// Bucket is one non-empty histogram bucket.
type Bucket struct {
	From, To float64
	Count    int64
}

// TrendValues computes k6's trend summary values (plus p(99) and count) from the histogram.
func (h *Histogram) TrendValues() map[string]float64 {
	return map[string]float64{
		"avg":   h.Mean(),
		"min":   h.Min(),
		"med":   h.Percentile(50),
		"max":   h.Max(),
		"p(90)": h.Percentile(90),
		"p(95)": h.Percentile(95),
		"p(99)": h.Percentile(99),
		"count": float64(h.Count()),
	}
}

type histogramJSON struct {
	Resolution         float64 `json:"resolution"`
	Lowest             int64   `json:"lowest"`
	Highest            int64   `json:"highest"`
	SignificantFigures int64   `json:"significant_figures"`
	Count              int64   `json:"count"`
	// V2 is the histogram in HdrHistogram's compressed V2 encoding, base64 ("HISTFAAA...").
	V2 string `json:"v2"`
}

// MarshalJSON writes the histogram as {resolution, lowest, highest, significant_figures, count, v2}.
func (h *Histogram) MarshalJSON() ([]byte, error) {
	enc, err := h.h.EncodeV2()
	if err != nil {
		return nil, fmt.Errorf("%w: encode: %w", ErrHistogram, err)
	}
	return json.Marshal(histogramJSON{
		Resolution:         h.resolution,
		Lowest:             h.h.LowestTrackableValue(),
		Highest:            h.h.HighestTrackableValue(),
		SignificantFigures: h.h.SignificantFigures(),
		Count:              h.h.TotalCount(),
		V2:                 string(enc),
	})
}

// UnmarshalJSON reads the form written by MarshalJSON.
func (h *Histogram) UnmarshalJSON(b []byte) error {
	var j histogramJSON
	if err := json.Unmarshal(b, &j); err != nil {
		return fmt.Errorf("%w: %w", ErrHistogram, err)
	}
	d, err := hdr.Decode([]byte(j.V2))
	if err != nil {
		return fmt.Errorf("%w: decode v2: %w", ErrHistogram, err)
	}
	if j.Resolution <= 0 {
		j.Resolution = 1
	}
	h.resolution, h.h = j.Resolution, d
	return nil
}
