package run

import (
	"fmt"
	"os"
	"runtime"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"wagate/internal/buildinfo"
	"wagate/reports"
	"wagate/simulator/metrics"
	"wagate/simulator/scenario"
	"wagate/simulator/threshold"
	"wagate/simulator/truth"
)

// ReportTags are the tags report.json breaks every metric down by (a k6 script driving a world
// reports the same breakdown).
var ReportTags = []string{"endpoint", "priority", "event", "state", "scenario"}

// runFacts are everything report.json says about one run, gathered when the run ends.
// buildReport turns them into the report and reads nothing else, so a golden file pins it.
type runFacts struct {
	Scenario *scenario.File
	Label    string
	// ExecutionSegment is this instance's k6 execution segment ("" for a lone instance).
	ExecutionSegment string
	// Users is this instance's share of the peak users.
	Users int
	// RealLaravel is the real Laravel app that ran instead of fakelaravel's model (nil: the model).
	RealLaravel *realLaravelFacts
	// Host is the machine and the versions of the parts; buildReport sets its Start and End.
	Host       reports.Environment
	Start, End time.Time
	Series     []reports.SeriesPoint
	// Metrics are the registry's end-of-run summaries, thresholds' sub-metrics included.
	Metrics map[string]reports.Metric
	Truth   truth.Truth
	// Duplicates are Laravel's applications beyond the gateway's events; -1 when unknown.
	Duplicates int64
	// GatewaySettings are the settings of the gateway's configuration file (gateway.yaml) by key.
	GatewaySettings map[string]string
}

// realLaravelFacts describe the real Laravel app of a run with laravel.real.
type realLaravelFacts struct {
	Description string
	Workers     int
}

// buildReport assembles report.json from the facts of a run, thresholds evaluated on its metrics
// in the order of the scenario's threshold sets (sorted by metric key).
func buildReport(in runFacts) *reports.Report {
	f := in.Scenario
	env := in.Host
	env.Start, env.End = in.Start, in.End
	env.GatewayWait = gatewayWaitOf(in.Metrics)
	rep := &reports.Report{
		SchemaVersion: reports.SchemaVersion,
		Label:         in.Label,
		Scenario: reports.Scenario{
			Name:             f.Name,
			File:             f.Path,
			Users:            in.Users,
			Duration:         reports.Duration(f.ScheduledDuration()),
			ExecutionSegment: in.ExecutionSegment,
		},
		Configuration: reports.Configuration{
			Gateway:     reports.GatewayConfig{Settings: in.GatewaySettings, Set: f.Gateway.Set, Redis: f.Gateway.Redis, GoRuntime: f.Gateway.GoRuntime.Env()},
			FakeLaravel: reports.FakeLaravelConfig{Capacity: f.Laravel.Capacity.Settings()},
			Overrides:   f.Overrides,
		},
		Environment:    env,
		SeriesInterval: reports.Duration(f.SeriesInterval),
		Series:         in.Series,
		Metrics:        in.Metrics,
		GroundTruth: reports.GroundTruth{
			Sessions:              in.Truth.Sessions,
			LostUpdates:           in.Truth.Lost,
			StaleOverwrites:       in.Truth.Stale,
			DuplicateApplications: max(in.Duplicates, 0),
		},
	}
	if in.RealLaravel != nil {
		rep.Configuration.FakeLaravel.Real = in.RealLaravel.Description
		rep.Configuration.FakeLaravel.Capacity = f.Laravel.Capacity.WithWorkers(in.RealLaravel.Workers).Settings()
	}
	for _, flt := range f.Faults {
		rep.Configuration.FakeLaravel.Faults = append(rep.Configuration.FakeLaravel.Faults, flt.Name)
	}
	for _, s := range f.ThresholdSets {
		var v threshold.Values
		if m, ok := in.Metrics[s.Key.String()]; ok {
			v = metrics.Values{M: m}
		}
		for _, res := range s.Evaluate(v) {
			tr := reports.ThresholdResult{Metric: res.Key, Expr: res.Source, OK: res.OK, AbortOnFail: res.Threshold.AbortOnFail}
			if res.HasValue {
				val := res.Value
				tr.Observed = &val
			}
			rep.Thresholds = append(rep.Thresholds, tr)
		}
	}
	return rep
}

// report gathers the facts of the run that ended at end and builds its report. It records the
// end-of-run values first: laravel_requests_per_minute becomes the mean rate while users ran
// (min and max stay those of the intervals) and duplicate_applications its count when known.
func (r *runner) report(end time.Time, truth truth.Truth, dup int64) *reports.Report {
	f := r.f
	r.mu.Lock()
	series := append([]reports.SeriesPoint(nil), r.series...)
	r.mu.Unlock()
	if r.laravelRequests != nil {
		if mean, ok := r.laravelRequests.meanRate(); ok {
			r.reg.Set("laravel_requests_per_minute", mean, nil)
		}
	}
	if dup >= 0 {
		r.reg.Add("duplicate_applications", float64(dup), nil)
	}
	var subs []threshold.Key
	for _, s := range f.ThresholdSets {
		subs = append(subs, s.Key)
	}
	in := runFacts{
		Scenario:   f,
		Label:      r.o.Label,
		Users:      int(r.scaledUsers()),
		Host:       r.host(),
		Start:      r.start,
		End:        end,
		Series:     series,
		Metrics:    r.reg.Snapshot(end.Sub(r.start), subs, ReportTags),
		Truth:      truth,
		Duplicates: dup,
	}
	var err error
	if in.GatewaySettings, err = fileSettings(r.w.gatewayFile); err != nil {
		r.log.Warn("the gateway's configuration file does not read back", "err", err)
	}
	if r.o.Segment != "" {
		in.ExecutionSegment = r.tuple.Segment.String()
	}
	if r.w.real != nil {
		in.RealLaravel = &realLaravelFacts{Description: r.w.real.description(), Workers: r.w.real.workers}
	}
	return buildReport(in)
}

// fileSettings reads the gateway's configuration file back as its settings by key.
func fileSettings(file []byte) (map[string]string, error) {
	var settings map[string]string
	if err := yaml.Unmarshal(file, &settings); err != nil {
		return nil, fmt.Errorf("gateway.yaml: %w", err)
	}
	return settings, nil
}

// host describes this machine and the versions of the run's parts.
func (r *runner) host() reports.Environment {
	env := reports.Environment{
		CPUModel:         cpuModel(),
		Cores:            runtime.NumCPU(),
		GoVersion:        runtime.Version(),
		OS:               runtime.GOOS,
		Arch:             runtime.GOARCH,
		Redis:            r.w.redisVersion,
		GatewayVersion:   r.w.gatewayVersion,
		SimulatorVersion: buildinfo.String("simulator"),
	}
	if h, err := os.Hostname(); err == nil {
		env.Hostname = h
	}
	if cw := r.w.cluster; cw != nil {
		env.GatewayVersion = fmt.Sprintf("%s; %d replicas in cluster mode behind the simulator's round-robin front, store %s", env.GatewayVersion, len(cw.replicas), cw.pgVersion)
	}
	describeCPUs(&env) // cpuset.go: CPU sets, load average, the load generator's CPU
	return env
}

// scaledUsers is this instance's share of the peak users.
func (r *runner) scaledUsers() int64 {
	var n int64
	for _, s := range r.f.Scenarios {
		n += s.Config.MaxVUsOf(r.tuple)
	}
	return n
}

func cpuModel() string {
	b, err := os.ReadFile("/proc/cpuinfo")
	if err != nil {
		return runtime.GOARCH
	}
	for _, line := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(line, "model name") {
			if _, v, ok := strings.Cut(line, ":"); ok {
				return strings.TrimSpace(v)
			}
		}
	}
	return runtime.GOARCH
}
