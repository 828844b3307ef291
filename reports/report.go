// Package reports owns the report model of a wagate simulation run (report.json), its renderings
// (Markdown, self-contained HTML with charts) and the comparison of runs. What a rendering says, and
// in which order, is decided once by Outline (CompareOutline for a comparison) as a
// reports/document Document; report.md and report.html are that one document laid out twice.
//
// A Report is written by `bin/simulator run` into its output folder and read by `bin/reports` and the
// bench orchestrator. The schema is versioned (SchemaVersion) and only ever grows: fields are added,
// never renamed or removed, so an old report.json stays readable. Metric summaries follow k6's
// end-of-test summary vocabulary (counter, gauge, rate, trend with the same value keys), and every
// trend carries an HDR histogram so that reports from several processes can be merged exactly
// (Merge) instead of averaging percentiles.
package reports

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"time"

	"go.yaml.in/yaml/v3"
)

// SchemaVersion is the version of the report.json schema this package writes. Readers accept any
// version up to and including it; additive changes keep the number.
const SchemaVersion = 1

// FileName is the name of the report file inside a run's output folder.
const FileName = "report.json"

// ErrSchema reports a report.json whose schema version this package cannot read.
var ErrSchema = errors.New("unsupported report schema")

// Report is everything one simulation run measured: what ran (scenario, configuration,
// environment), how it evolved (series), how it ended (metric summaries, thresholds, ground truth).
type Report struct {
	// SchemaVersion is the report.json schema version (SchemaVersion when written by this package).
	SchemaVersion int `json:"schema_version"`
	// Label names the run for humans, e.g. the bench entry "batch-1000"; empty means Scenario.Name.
	Label string `json:"label,omitempty"`
	// Scenario identifies the scenario file that was run.
	Scenario Scenario `json:"scenario"`
	// Configuration is the system under test: gateway and fakelaravel settings after overrides.
	Configuration Configuration `json:"configuration"`
	// Environment describes the machine and the parts that ran.
	Environment Environment `json:"environment"`
	// SeriesInterval is the width of one Series bucket (10 s by default).
	SeriesInterval Duration `json:"series_interval"`
	// Series holds one point per SeriesInterval, in time order.
	Series []SeriesPoint `json:"series"`
	// Metrics are the end-of-run summaries by metric name, k6 style. Sub-metrics carry their tag
	// filter in the key: "http_req_duration{endpoint:status}".
	Metrics map[string]Metric `json:"metrics"`
	// Thresholds are the scenario's thresholds and their outcome, in scenario order.
	Thresholds []ThresholdResult `json:"thresholds"`
	// GroundTruth compares Laravel's final state with what the simulation generated.
	GroundTruth GroundTruth `json:"ground_truth"`
	// Instances is the number of simulator processes whose reports were merged into this one
	// (0 or 1 for a single process).
	Instances int `json:"instances,omitempty"`
}

// Scenario identifies the scenario a report comes from.
type Scenario struct {
	// Name is the scenario's name, e.g. "seed-batch-1000".
	Name string `json:"name"`
	// File is the scenario file as given on the command line, e.g. "scenarios/seed-batch-1000.yaml".
	File string `json:"file"`
	// Users is the peak number of simulated users (VUs) across the scenario's executors.
	Users int `json:"users"`
	// Duration is the scenario's planned duration, without the drain period.
	Duration Duration `json:"duration,omitempty"`
	// ExecutionSegment is the k6-style execution segment this process ran ("" for the whole).
	ExecutionSegment string `json:"execution_segment,omitempty"`
}

// Configuration is the system under test after overrides.
type Configuration struct {
	// Gateway is the gateway's delivery and cache configuration.
	Gateway GatewayConfig `json:"gateway"`
	// FakeLaravel is fakelaravel's capacity model.
	FakeLaravel FakeLaravelConfig `json:"fakelaravel"`
	// Overrides are the `-set key=value` pairs applied on top of the scenario file, in order.
	Overrides []string `json:"overrides,omitempty"`
}

// Delivery modes of the gateway (GatewayConfig.Mode).
const (
	ModeLegacy = "legacy"
	ModeBatch  = "batch"
)

// GatewayConfig is the gateway configuration under test: the gateway's own configuration file
// as the run wrote it (gateway.yaml in the run's folder, read by bin/gateway -config) and the
// Redis the scenario asked for.
type GatewayConfig struct {
	// Settings is every setting of the gateway's file by its key (gateway -help's settings table),
	// written as in the file ("mode": "batch", "batchSize": "50", "batchInterval": "5s"). Secrets
	// and what each run gives the gateway (addresses, tokens, its folder, Redis's URL, the
	// test-only WhatsApp dial) are not in it.
	Settings map[string]string `json:"settings,omitempty"`
	// Set are the keys of the settings the scenario gave (after its -set overrides), in its order;
	// the others are the gateway's defaults.
	Set []string `json:"set,omitempty"`
	// Redis is what the configuration asked for: "embedded", "server" or an address.
	Redis string `json:"redis,omitempty"`
	// GoRuntime is the Go runtime environment the scenario gave the gateway processes
	// ("GOGC=50", "GOMEMLIMIT=3GiB"); empty: Go's defaults.
	GoRuntime []string `json:"go_runtime,omitempty"`
}

// GatewayModeKey is the gateway's configuration key of its delivery mode.
const GatewayModeKey = "mode"

// Mode is the gateway's delivery mode: ModeLegacy or ModeBatch ("" when the report has no
// settings).
func (g GatewayConfig) Mode() string { return g.Settings[GatewayModeKey] }

// FakeLaravelConfig is fakelaravel's PHP-FPM capacity model, or the real Laravel app that ran
// in its place.
type FakeLaravelConfig struct {
	// Real describes the real Laravel app the run used instead of the model (fakelaravel then only
	// measured it as a front); empty when the model ran. Capacity's workers is then the real app's.
	Real string `json:"real,omitempty"`
	// Capacity are the capacity model's parameters the scenario gave, by fakelaravel's keys
	// (fakelaravel.CapacityFlags: "cores", "workers", "bootstrap", "perRow", "backlog",
	// "proxyTimeout", ...), written as in the scenario ("16", "5.6ms"); the others are
	// fakelaravel's calibration's.
	Capacity map[string]string `json:"capacity,omitempty"`
	// Faults names the fault schedule entries active in the run, as written in the scenario.
	Faults []string `json:"faults,omitempty"`
}

// Environment describes where and when the run happened.
type Environment struct {
	// CPUModel is the processor's model name (/proc/cpuinfo).
	CPUModel string `json:"cpu_model"`
	// Cores is the number of logical CPUs available.
	Cores int `json:"cores"`
	// GoVersion is the Go toolchain that built the binaries.
	GoVersion string `json:"go_version"`
	// OS and Arch are GOOS and GOARCH.
	OS   string `json:"os,omitempty"`
	Arch string `json:"arch,omitempty"`
	// Hostname is the machine's host name.
	Hostname string `json:"hostname,omitempty"`
	// Redis is the Redis that actually ran: "embedded (miniredis)" or "redis-server 7.0.15".
	Redis string `json:"redis"`
	// GatewayVersion and SimulatorVersion are the binaries' -version strings.
	GatewayVersion   string `json:"gateway_version,omitempty"`
	SimulatorVersion string `json:"simulator_version,omitempty"`
	// Start and End bound the run (End includes the drain period).
	Start time.Time `json:"start"`
	End   time.Time `json:"end"`
	// CPUSets, LoadAverage and Generator say how fairly the run measured (cpus.go).
	CPUSets     *CPUSets     `json:"cpu_sets,omitempty"`
	LoadAverage *LoadAverage `json:"load_average,omitempty"`
	Generator   *Generator   `json:"generator,omitempty"`
	// GatewayCore is the scheduler's accounting of the process on the gateway's CPU set (cpus.go).
	GatewayCore *CoreWait `json:"gateway_core,omitempty"`
	// GatewayWait sets the client's status p99 beside the gateway's handler and goroutine wait
	// (gatewaywait.go; nil when the gateway's metrics were not read).
	GatewayWait *GatewayWait `json:"gateway_wait,omitempty"`
}

// SeriesPoint is one SeriesInterval of the run. Rates are per minute over the interval; gauges are
// the value sampled at the end of the interval.
type SeriesPoint struct {
	// Time is the end of the interval.
	Time time.Time `json:"time"`
	// Elapsed is the time since Environment.Start at the end of the interval.
	Elapsed Duration `json:"elapsed"`
	// ActiveUsers is the number of running virtual users.
	ActiveUsers int `json:"active_users"`
	// LaravelRequestsPerMin is the Laravel request rate by endpoint (contract path, e.g.
	// "POST /api/qr/batch"); the total is their sum.
	LaravelRequestsPerMin map[string]float64 `json:"laravel_requests_per_min"`
	// APILatency holds the gateway API latency percentiles over the interval, in milliseconds.
	APILatency Percentiles `json:"api_latency_ms"`
	// APILatencyHistogram is the interval's gateway API latency histogram (ms), if recorded; it lets
	// Merge recompute APILatency exactly.
	APILatencyHistogram *Histogram `json:"api_latency_hdr,omitempty"`
	// GatewayCPUPercent is the gateway process's CPU use over the interval, in % of one core.
	GatewayCPUPercent float64 `json:"gateway_cpu_percent"`
	// LaravelCPUPercent is the real Laravel app's CPU use over the interval (php-fpm and nginx),
	// in % of one core; only when the run used the real app (FakeLaravelConfig.Real).
	LaravelCPUPercent float64 `json:"laravel_cpu_percent,omitempty"`
	// GatewayRSSBytes is the gateway process's resident set size.
	GatewayRSSBytes int64 `json:"gateway_rss_bytes"`
	// Goroutines is the gateway's goroutine count (from its metrics).
	Goroutines int `json:"goroutines"`
	// OutboxDepth is the number of events waiting in the batch outbox (0 in legacy mode).
	OutboxDepth int64 `json:"outbox_depth"`
	// SessionsByState counts sessions by estado_qr (pending, connected, disconnected, ...).
	SessionsByState map[string]int `json:"sessions_by_state"`
	// GatewayBatchSends are the gateway's batch sends to Laravel over the interval, from its own
	// counters (batch mode; nil when they were not read).
	GatewayBatchSends *BatchSends `json:"gateway_batch_sends,omitempty"`
	// GatewayWait is the gateway's handler p99 and goroutine wait over the interval, from its
	// own metrics (nil when they were not read).
	GatewayWait *IntervalWait `json:"gateway_wait,omitempty"`
}

// BatchSends are a gateway's batch sends to Laravel between two readings of its counters
// (wagate_batch_first_attempts_total, _retries_total, _retries_held_total): across a restart of
// the gateway, the new process's counts since it started.
type BatchSends struct {
	// Seconds is the time between the two readings: the series interval, longer when a reading
	// failed (a paused gateway).
	Seconds float64 `json:"seconds"`
	// First counts batches sent for the first time, Retries the sends after a batch's first,
	// Held the retries the gateway's retry budget held back.
	First   int64 `json:"first"`
	Retries int64 `json:"retries"`
	Held    int64 `json:"held"`
}

// LaravelRequestsPerMinTotal is the Laravel request rate of the interval summed over endpoints.
func (p SeriesPoint) LaravelRequestsPerMinTotal() float64 {
	var total float64
	for _, v := range p.LaravelRequestsPerMin {
		total += v
	}
	return total
}

// Percentiles are latency percentiles in milliseconds.
type Percentiles struct {
	// P50 is the median.
	P50 float64 `json:"p50"`
	// P95 is the 95th percentile.
	P95 float64 `json:"p95"`
	// P99 is the 99th percentile.
	P99 float64 `json:"p99"`
}

// ThresholdResult is one threshold expression of the scenario and its outcome.
type ThresholdResult struct {
	// Metric is the metric (or sub-metric with tag filter) the threshold applies to.
	Metric string `json:"metric"`
	// Expr is the k6 threshold expression, e.g. "p(95)<50" or "count==0".
	Expr string `json:"expr"`
	// OK is true when the threshold held.
	OK bool `json:"ok"`
	// Observed is the aggregate's measured value; nil when the metric was never recorded.
	Observed *float64 `json:"observed"`
	// AbortOnFail is true when a failure stopped the run early.
	AbortOnFail bool `json:"abort_on_fail,omitempty"`
}

// GroundTruth is the comparison of Laravel's final state with the simulation's ground truth,
// checked after the drain period.
type GroundTruth struct {
	// Sessions is the number of sessions whose final state was checked.
	Sessions int64 `json:"sessions"`
	// LostUpdates counts sessions whose latest state never reached Laravel.
	LostUpdates int64 `json:"lost_updates"`
	// StaleOverwrites counts older states that replaced newer ones in Laravel.
	StaleOverwrites int64 `json:"stale_overwrites"`
	// DuplicateApplications counts events Laravel applied more than once.
	DuplicateApplications int64 `json:"duplicate_applications"`
}

// Name returns the report's label, or the scenario name when it has none.
func (r *Report) Name() string {
	if r.Label != "" {
		return r.Label
	}
	return r.Scenario.Name
}

// Duration returns the run's wall-clock length (Environment.End - Environment.Start).
func (r *Report) Duration() time.Duration {
	return r.Environment.End.Sub(r.Environment.Start)
}

// ThresholdsOK reports whether every threshold held (true when there are none).
func (r *Report) ThresholdsOK() bool {
	for _, t := range r.Thresholds {
		if !t.OK {
			return false
		}
	}
	return true
}

// MetricNames returns the metric keys in sorted order.
func (r *Report) MetricNames() []string {
	names := make([]string, 0, len(r.Metrics))
	for n := range r.Metrics {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// Load reads a report from a report.json file or from a folder containing one.
func Load(path string) (*Report, error) {
	if fi, err := os.Stat(path); err == nil && fi.IsDir() {
		path = filepath.Join(path, FileName)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("load report: %w", err)
	}
	r, err := Parse(data)
	if err != nil {
		return nil, fmt.Errorf("load report %s: %w", path, err)
	}
	return r, nil
}

// Parse decodes a report.json document and checks its schema version.
func Parse(data []byte) (*Report, error) {
	var r Report
	if err := json.Unmarshal(data, &r); err != nil {
		return nil, fmt.Errorf("decode report: %w", err)
	}
	if r.SchemaVersion < 1 || r.SchemaVersion > SchemaVersion {
		return nil, fmt.Errorf("%w: schema_version %d (this build reads 1..%d)", ErrSchema, r.SchemaVersion, SchemaVersion)
	}
	if r.Metrics == nil {
		r.Metrics = map[string]Metric{}
	}
	return &r, nil
}

// Marshal encodes the report as indented JSON, stamping the current SchemaVersion when unset.
func (r *Report) Marshal() ([]byte, error) {
	if r.SchemaVersion == 0 {
		r.SchemaVersion = SchemaVersion
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false) // keep threshold expressions like "p(95)<50" readable
	enc.SetIndent("", "  ")
	if err := enc.Encode(r); err != nil {
		return nil, fmt.Errorf("encode report: %w", err)
	}
	return buf.Bytes(), nil
}

// Save writes the report to path (a file, or a folder that receives report.json), atomically:
// readers never see a half-written file. The file is 0644 like the other report files (it holds
// measurements, no secrets; CreateTemp's 0600 would hide it from a web server or another user).
func (r *Report) Save(path string) error {
	if fi, err := os.Stat(path); err == nil && fi.IsDir() {
		path = filepath.Join(path, FileName)
	}
	data, err := r.Marshal()
	if err != nil {
		return err
	}
	if err := writeFileAtomic(path, data); err != nil {
		return fmt.Errorf("save report: %w", err)
	}
	return nil
}

// Duration is a time.Duration that reads and writes JSON and YAML as a Go duration string ("5s",
// "500ms"). It also reads a JSON number as nanoseconds and a bare YAML 0. Reports and the files a
// person writes beside them (bench matrices) share it.
type Duration time.Duration

// Std returns the value as a time.Duration.
func (d Duration) Std() time.Duration { return time.Duration(d) }

// String formats the duration like time.Duration.
func (d Duration) String() string { return time.Duration(d).String() }

// MarshalJSON writes the duration as a string.
func (d Duration) MarshalJSON() ([]byte, error) {
	return json.Marshal(time.Duration(d).String())
}

// UnmarshalJSON reads a duration string or a number of nanoseconds.
func (d *Duration) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err == nil {
		v, err := time.ParseDuration(s)
		if err != nil {
			return fmt.Errorf("duration %q: %w", s, err)
		}
		*d = Duration(v)
		return nil
	}
	n, err := strconv.ParseFloat(string(b), 64)
	if err != nil {
		return fmt.Errorf("duration %s: want a string like \"5s\" or a number of nanoseconds", b)
	}
	*d = Duration(n)
	return nil
}

// MarshalYAML writes the duration as a string.
func (d Duration) MarshalYAML() (any, error) { return d.String(), nil }

// UnmarshalYAML reads a duration string; a bare 0 is accepted too. A malformed one is a
// *YAMLError naming its line.
func (d *Duration) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind != yaml.ScalarNode {
		return &YAMLError{Line: n.Line, Msg: fmt.Sprintf("expected a duration like \"30s\", found a %s", YAMLKind(n))}
	}
	if n.Value == "0" {
		*d = 0
		return nil
	}
	v, err := time.ParseDuration(n.Value)
	if err != nil {
		return &YAMLError{Line: n.Line, Msg: fmt.Sprintf("%q is not a duration; write it like 500ms, 30s, 5m or 1h30m", n.Value)}
	}
	*d = Duration(v)
	return nil
}

// YAMLError is a value of a YAML file that does not read, with its line.
type YAMLError struct {
	Line int
	Msg  string
}

func (e *YAMLError) Error() string { return fmt.Sprintf("line %d: %s", e.Line, e.Msg) }

// YAMLKind names a YAML node's kind the way error messages say it: mapping, list or value "x".
func YAMLKind(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "mapping"
	case yaml.SequenceNode:
		return "list"
	case yaml.ScalarNode:
		return "value " + strconv.Quote(n.Value)
	}
	return "node"
}
