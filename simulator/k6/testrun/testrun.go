// Package testrun runs one k6 test script end to end, as `k6 run` does: it bundles the script,
// evaluates the init context once for the options, consolidates them with the --config file, the
// K6_* environment and the CLI flags, initializes the VUs, runs setup(), every scenario on
// simulator/executor's executors, teardown(), evaluates the thresholds (abortOnFail on a 2 s
// tick, all of them at the end), and writes the end-of-test summary (handleSummary or text,
// --summary-export, report.json for `simulator merge`). Its Result carries k6's exit code.
package testrun

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/dop251/goja"

	"wagate/reports"
	"wagate/simulator/executor"
	"wagate/simulator/k6/bundle"
	"wagate/simulator/k6/js"
	"wagate/simulator/k6/options"
	"wagate/simulator/metrics"
	"wagate/simulator/threshold"
)

// Exit codes, as k6 uses them.
const (
	ExitOK              = 0
	ExitError           = 1 // the run could not start (e.g. its world failed to start)
	ExitThresholdFailed = 99
	ExitSetupTimeout    = 100
	ExitTeardownTimeout = 101
	ExitInvalidConfig   = 104
	ExitExternalAbort   = 105
	ExitScriptException = 107
	ExitScriptAborted   = 108
	ExitTestFailed      = 110
)

// Config is one `run` invocation.
type Config struct {
	// Script is the path of the .js or .ts file.
	Script string
	// Env are the script's __ENV variables (system environment and -e KEY=VALUE).
	Env map[string]string
	// ConfigFile is --config (optional).
	ConfigFile string
	// EnvOptions are the K6_* options from the environment; CLI the options given as flags.
	EnvOptions, CLI options.Options
	// SummaryExport is --summary-export (optional).
	SummaryExport string
	// OutJSON is --out json=FILE (optional).
	OutJSON string
	// OutDir, when set, receives summary.json and report.json (for `simulator merge`).
	OutDir string
	// Label names the run in report.json.
	Label string
	// NoThresholds skips threshold evaluation; NoSummary the end-of-test summary.
	NoThresholds, NoSummary bool
	// Stdout receives the summary, Stderr console output and errors.
	Stdout, Stderr io.Writer
	// Extensions are modules such as k6/x/wagate.
	Extensions map[string]js.ModuleFactory
	// ExtensionMetrics are the metrics extensions emit (name -> type), valid in thresholds.
	ExtensionMetrics map[string]string
	// BeforeSetup, when set, runs once the options are consolidated and the run's registry exists,
	// before setup(): extensions start what they drive (k6/x/wagate's world) there.
	BeforeSetup func(ctx context.Context, r *metrics.Registry, o options.Options) error
	// OnLoadStart, when set, runs after setup() right before the scenarios start (extensions time
	// their measurements and fault schedules from it).
	OnLoadStart func(ctx context.Context)
	// OnLoadEnd, when set, runs when every scenario has ended, before teardown().
	OnLoadEnd func(ctx context.Context)
	// AfterTeardown, when set, runs after teardown with the registry, e.g. to record ground truth.
	AfterTeardown func(ctx context.Context, r *metrics.Registry) error
	// IterationLabels, when set, are runtime/pprof label pairs (key, value, ...) that every
	// iteration's goroutine carries, and with it the goroutines it starts (HTTP connections): a CPU
	// profile then tells the VUs' own CPU from the rest of the process (simulator k6-cost).
	IterationLabels []string
	// ReportTags are the tags report.json breaks every metric down by (none: only the thresholds'
	// submetrics), e.g. a world's endpoint and scenario, as the YAML runs' reports.
	ReportTags []string
	Logger     *slog.Logger
}

// Result is a finished run.
type Result struct {
	ExitCode int
	Summary  metrics.Summary
	// Options are the consolidated options.
	Options options.Options
}

// builtinMetrics are k6's built-in metrics with their types, for threshold validation.
var builtinMetrics = map[string]string{
	"vus": threshold.Gauge, "vus_max": threshold.Gauge,
	"iterations": threshold.Counter, "dropped_iterations": threshold.Counter, "data_sent": threshold.Counter,
	"data_received": threshold.Counter, "http_reqs": threshold.Counter,
	"checks": threshold.Rate, "http_req_failed": threshold.Rate,
	"iteration_duration": threshold.Trend, "group_duration": threshold.Trend, "http_req_duration": threshold.Trend,
	"http_req_blocked": threshold.Trend, "http_req_connecting": threshold.Trend, "http_req_tls_handshaking": threshold.Trend,
	"http_req_sending": threshold.Trend, "http_req_waiting": threshold.Trend, "http_req_receiving": threshold.Trend,
}

// BuiltinMetricType returns the type of a k6 built-in metric ("" when not built in).
func BuiltinMetricType(name string) string { return builtinMetrics[name] }

// Run runs the test and returns k6's exit code with the summary; every script, option or world
// problem is reported on Stderr and reflected in the exit code.
func Run(ctx context.Context, cfg Config) Result {
	if cfg.Stdout == nil {
		cfg.Stdout = io.Discard
	}
	if cfg.Stderr == nil {
		cfg.Stderr = io.Discard
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.NewTextHandler(cfg.Stderr, nil))
	}
	r := &run{cfg: cfg}
	code := r.run(ctx)
	return Result{ExitCode: code, Summary: r.summary, Options: r.opts}
}

type run struct {
	cfg      Config
	opts     options.Options
	shared   *js.Shared
	summary  metrics.Summary
	abortMu  sync.Mutex
	abortMsg string
	abortCod int
	cancel   context.CancelFunc
	failed   atomic.Bool
}

func (r *run) errorf(format string, args ...any) {
	fmt.Fprintf(r.cfg.Stderr, "ERRO[0000] "+format+"\n", args...)
}

func (r *run) abort(reason string, code int) {
	r.abortMu.Lock()
	if r.abortCod == 0 {
		r.abortCod, r.abortMsg = code, reason
	}
	r.abortMu.Unlock()
	if r.cancel != nil {
		r.cancel()
	}
}

func (r *run) abortCode() (int, string) {
	r.abortMu.Lock()
	defer r.abortMu.Unlock()
	return r.abortCod, r.abortMsg
}

func scriptErrorText(err error) string {
	var se *js.ScriptError
	if errors.As(err, &se) {
		if se.Stack != "" && !strings.Contains(se.Stack, se.Message) {
			return se.Message + "\n" + se.Stack
		}
		if se.Stack != "" {
			return se.Stack
		}
		return se.Message
	}
	return err.Error()
}

// loaded is a script bundled, its init context evaluated and its options consolidated.
type loaded struct {
	code      int
	initVU    *js.VU
	scenarios []options.Scenario
	sets      []threshold.Set
	tuple     *executor.Tuple
}

// load bundles the script, evaluates its init context once for the options, consolidates them
// and validates scenarios and thresholds; code is non-zero (k6's exit code) on a problem.
func (r *run) load(ctx context.Context) loaded {
	b, err := bundle.Load(r.cfg.Script)
	if err != nil {
		r.errorf("%v", err)
		return loaded{code: ExitScriptException}
	}
	counters := &js.Counters{}
	r.shared = &js.Shared{
		Bundle: b, Env: r.cfg.Env, Registry: metrics.NewRegistry(nil), Groups: js.NewGroupTree(),
		Console: r.cfg.Stderr, Extensions: r.cfg.Extensions, Counters: counters,
		Abort: r.abort, Fail: func(reason string) { r.failed.Store(true); r.shared.Log("ERRO", reason, "source=test.fail") },
		Scenarios: map[string]js.ScenarioInfo{},
	}
	// The init VU reads the options (its metrics go to a scratch registry).
	initVU, err := js.NewVU(ctx, r.shared, 0)
	if err != nil {
		r.errorf("%s", scriptErrorText(err))
		return loaded{code: ExitScriptException}
	}
	scriptOpts, err := initVU.OptionsJSON()
	if err != nil {
		r.errorf("options: %v", err)
		return loaded{code: ExitInvalidConfig}
	}
	if code := r.consolidate(scriptOpts); code != ExitOK {
		return loaded{code: code}
	}
	scenarios, err := r.opts.Consolidate()
	if err != nil {
		r.errorf("%v", err)
		return loaded{code: ExitInvalidConfig}
	}
	sets, err := r.thresholds()
	if err != nil {
		r.errorf("%v", err)
		return loaded{code: ExitInvalidConfig}
	}
	tuple, err := r.tuple()
	if err != nil {
		r.errorf("%v", err)
		return loaded{code: ExitInvalidConfig}
	}
	for _, sc := range scenarios {
		if !initVU.HasFunction(sc.Exec) {
			if sc.Exec == "default" {
				r.errorf("function 'default' not found in exports")
			} else {
				r.errorf("scenario %s: executor's exec function %q is not exported by the script", sc.Name, sc.Exec)
			}
			return loaded{code: ExitInvalidConfig}
		}
	}
	return loaded{initVU: initVU, scenarios: scenarios, sets: sets, tuple: tuple}
}

// Check loads the script as Run would (bundle, init context, options, thresholds) without running
// it; the result's ExitCode is 0 when it would start, k6's exit code otherwise (details on Stderr).
func Check(ctx context.Context, cfg Config) Result {
	if cfg.Stderr == nil {
		cfg.Stderr = io.Discard
	}
	r := &run{cfg: cfg}
	l := r.load(ctx)
	return Result{ExitCode: l.code, Options: r.opts}
}

func (r *run) run(ctx context.Context) int {
	l := r.load(ctx)
	if l.code != ExitOK {
		return l.code
	}
	scenarios, sets, tuple := l.scenarios, l.sets, l.tuple
	counters := r.shared.Counters
	// The real registry, with the NDJSON stream when asked.
	var nd *metrics.NDJSON
	if r.cfg.OutJSON != "" {
		f, err := os.Create(r.cfg.OutJSON)
		if err != nil {
			r.errorf("--out json: %v", err)
			return ExitInvalidConfig
		}
		defer f.Close()
		th := map[string][]string{}
		for _, s := range sets {
			for _, t := range s.Thresholds {
				th[s.Key.String()] = append(th[s.Key.String()], t.Source)
			}
		}
		nd = metrics.NewNDJSON(f, th)
		defer func() {
			if err := nd.Flush(); err != nil {
				r.errorf("--out json: %v", err)
			}
		}()
	}
	if nd != nil {
		r.shared.Registry = metrics.NewRegistry(nd)
	} else {
		r.shared.Registry = metrics.NewRegistry(nil)
	}
	for _, n := range []string{"data_sent", "data_received"} {
		_ = r.shared.Registry.Define(n, threshold.Counter, metrics.ContainsData)
	}
	optJSON, _ := json.Marshal(r.opts)
	r.shared.Options = optJSON
	r.applyHTTPOptions()
	if r.cfg.BeforeSetup != nil {
		if err := r.cfg.BeforeSetup(ctx, r.shared.Registry, r.opts); err != nil {
			r.errorf("%v", err)
			return ExitError
		}
	}

	runCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	r.cancel = cancel

	pools, total, err := r.initVUs(runCtx, scenarios, tuple)
	if err != nil {
		r.errorf("%s", scriptErrorText(err))
		return ExitScriptException
	}
	r.shared.Registry.Set("vus_max", float64(total), nil)

	counters.Start = time.Now()
	start := counters.Start
	// setup() and teardown() run on their own VU.
	setupVU, err := js.NewVU(runCtx, r.shared, 0)
	if err != nil {
		r.errorf("%s", scriptErrorText(err))
		return ExitScriptException
	}
	dataJSON := ""
	if setupVU.HasFunction("setup") {
		d, code := r.callLifecycle(runCtx, setupVU, "setup", r.opts.SetupTimeout, ExitSetupTimeout, goja.Undefined())
		if code != ExitOK {
			return code
		}
		if d != nil {
			dataJSON, err = stringify(setupVU, d)
			if err != nil {
				r.errorf("setup data: %v", err)
				return ExitScriptException
			}
		}
	}

	if r.cfg.OnLoadStart != nil {
		r.cfg.OnLoadStart(runCtx)
	}
	stopTicker := r.watchThresholds(runCtx, sets, start)
	r.runScenarios(runCtx, scenarios, tuple, pools, dataJSON)
	stopTicker()
	if r.cfg.OnLoadEnd != nil {
		r.cfg.OnLoadEnd(context.WithoutCancel(runCtx))
	}

	if setupVU.HasFunction("teardown") && ctx.Err() == nil {
		if err := setupVU.SetSetupData(dataJSON); err != nil {
			r.errorf("%v", err)
		}
		data := goja.Undefined()
		if dataJSON != "" {
			v, _ := parse(setupVU, dataJSON)
			data = v
		}
		if _, code := r.callLifecycle(ctx, setupVU, "teardown", r.opts.TeardownTimeout, ExitTeardownTimeout, data); code != ExitOK {
			if c, _ := r.abortCode(); c == 0 {
				r.abort("teardown failed", code)
			}
		}
	}
	if r.cfg.AfterTeardown != nil && ctx.Err() == nil {
		if err := r.cfg.AfterTeardown(ctx, r.shared.Registry); err != nil {
			r.errorf("after teardown: %v", err)
		}
	}
	end := time.Now()
	thresholdsOK := r.finish(ctx, setupVU, sets, start, end, len(scenarios), total)

	if ctx.Err() != nil {
		return ExitExternalAbort
	}
	if code, msg := r.abortCode(); code != 0 {
		if msg != "" {
			r.errorf("%s", msg)
		}
		return code
	}
	if !thresholdsOK {
		r.errorf("thresholds on metrics '%s' have been crossed", strings.Join(failedKeys(r.summary), "', '"))
		return ExitThresholdFailed
	}
	if r.failed.Load() {
		return ExitTestFailed
	}
	return ExitOK
}

func failedKeys(s metrics.Summary) []string {
	var out []string
	for name, m := range s.Metrics {
		for _, t := range m.Thresholds {
			if !t.OK {
				out = append(out, name)
				break
			}
		}
	}
	return out
}

func stringify(vu *js.VU, v goja.Value) (string, error) {
	rt := vu.RT
	f, _ := goja.AssertFunction(rt.Get("JSON").ToObject(rt).Get("stringify"))
	s, err := f(goja.Undefined(), v)
	if err != nil {
		return "", err
	}
	if goja.IsUndefined(s) {
		return "", nil
	}
	return s.String(), nil
}

func parse(vu *js.VU, s string) (goja.Value, error) {
	rt := vu.RT
	f, _ := goja.AssertFunction(rt.Get("JSON").ToObject(rt).Get("parse"))
	return f(goja.Undefined(), rt.ToValue(s))
}

// consolidate applies k6's precedence: defaults < config file < script < environment < CLI.
func (r *run) consolidate(scriptOpts string) int {
	var base options.Options
	if r.cfg.ConfigFile != "" {
		o, err := options.LoadFile(r.cfg.ConfigFile)
		if err != nil {
			r.errorf("%v", err)
			return ExitInvalidConfig
		}
		base = o
	}
	so, err := options.Parse([]byte(scriptOpts))
	if err != nil {
		r.errorf("script options: %v", err)
		return ExitInvalidConfig
	}
	if ignored := options.Ignored([]byte(scriptOpts)); len(ignored) > 0 {
		fmt.Fprintf(r.cfg.Stderr, "WARN[0000] options %s are not supported by wagate's k6 runtime and have no effect\n", strings.Join(ignored, ", "))
	}
	r.opts = base.Apply(so).Apply(r.cfg.EnvOptions).Apply(r.cfg.CLI)
	return ExitOK
}

func (r *run) thresholds() ([]threshold.Set, error) {
	if r.cfg.NoThresholds {
		return nil, nil
	}
	sets, err := r.opts.ParsedThresholds()
	if err != nil {
		return nil, err
	}
	for _, s := range sets {
		typ := builtinMetrics[s.Key.Metric]
		if typ == "" {
			typ = r.shared.CustomMetricType(s.Key.Metric)
		}
		if typ == "" {
			typ = r.cfg.ExtensionMetrics[s.Key.Metric]
		}
		if typ == "" {
			return nil, fmt.Errorf("invalid threshold defined on %s; reason: no metric name %q found", s.Key, s.Key.Metric)
		}
		if err := s.CheckType(typ); err != nil {
			return nil, err
		}
	}
	return sets, nil
}

func (r *run) tuple() (*executor.Tuple, error) {
	var segS, seqS string
	if r.opts.ExecutionSegment != nil {
		segS = *r.opts.ExecutionSegment
	}
	if r.opts.ExecutionSegmentSequence != nil {
		seqS = *r.opts.ExecutionSegmentSequence
	}
	if segS == "" && seqS == "" {
		return nil, nil
	}
	seg, err := executor.ParseSegment(segS)
	if err != nil {
		return nil, fmt.Errorf("%w: execution segment: %w", options.ErrInvalid, err)
	}
	seq, err := executor.ParseSequence(seqS)
	if err != nil {
		return nil, fmt.Errorf("%w: execution segment sequence: %w", options.ErrInvalid, err)
	}
	return executor.NewTuple(seg, seq)
}

func (r *run) applyHTTPOptions() {
	o := r.opts
	h := js.HTTPConfig{Hosts: o.Hosts, MaxRedirects: 10}
	if o.InsecureSkipTLSVerify != nil {
		h.InsecureSkipTLSVerify = *o.InsecureSkipTLSVerify
	}
	if o.MaxRedirects != nil {
		h.MaxRedirects = *o.MaxRedirects
	}
	if o.DiscardResponseBodies != nil {
		h.DiscardResponseBodies = *o.DiscardResponseBodies
	}
	if o.NoCookiesReset != nil {
		h.NoCookiesReset = *o.NoCookiesReset
	}
	if o.UserAgent != nil {
		h.UserAgent = *o.UserAgent
	}
	r.shared.HTTP = h
	r.shared.Tags = o.Tags
	if o.Throw != nil {
		r.shared.Throw = *o.Throw
	}
}

// pool holds one scenario's VUs; VUs beyond the pre-initialized ones are created on first use.
type pool struct {
	mu     sync.Mutex
	vus    []*js.VU
	nextID func() int64
	newVU  func(id int64) (*js.VU, error)
}

func (p *pool) get(i int64) (*js.VU, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for int64(len(p.vus)) < i {
		p.vus = append(p.vus, nil)
	}
	if p.vus[i-1] == nil {
		vu, err := p.newVU(p.nextID())
		if err != nil {
			return nil, err
		}
		p.vus[i-1] = vu
	}
	return p.vus[i-1], nil
}

// initVUs creates each scenario's VUs (arrival-rate executors: the pre-allocated ones) in
// parallel, before setup, as k6 does.
func (r *run) initVUs(ctx context.Context, scenarios []options.Scenario, t *executor.Tuple) (map[string]*pool, int64, error) {
	var ids atomic.Int64
	nextID := func() int64 { return ids.Add(1) }
	pools := map[string]*pool{}
	type job struct {
		p *pool
		i int64
	}
	var jobs []job
	var total int64
	for _, sc := range scenarios {
		p := &pool{nextID: nextID, newVU: func(id int64) (*js.VU, error) { return js.NewVU(ctx, r.shared, id) }}
		pools[sc.Name] = p
		n := sc.Config.MaxVUsOf(t)
		total += n
		pre := n
		if sc.Config.Executor == executor.ConstantArrivalRate || sc.Config.Executor == executor.RampingArrivalRate {
			pre = t.Scale(sc.Config.PreAllocatedVUs)
		}
		p.vus = make([]*js.VU, n)
		for i := int64(1); i <= pre; i++ {
			jobs = append(jobs, job{p, i})
		}
		r.shared.Scenarios[sc.Name] = js.ScenarioInfo{Executor: sc.Config.Executor}
	}
	work := make(chan job)
	var firstErr error
	var mu sync.Mutex
	var wg sync.WaitGroup
	for range max(1, runtime.GOMAXPROCS(0)) {
		wg.Go(func() {
			for j := range work {
				if _, err := j.p.get(j.i); err != nil {
					mu.Lock()
					if firstErr == nil {
						firstErr = err
					}
					mu.Unlock()
				}
			}
		})
	}
	for _, j := range jobs {
		work <- j
	}
	close(work)
	wg.Wait()
	return pools, total, firstErr
}

// callLifecycle calls setup or teardown with its timeout; a throw is exit 107, a timeout 100/101.
func (r *run) callLifecycle(ctx context.Context, vu *js.VU, name string, timeout *options.Duration, timeoutCode int, arg goja.Value) (goja.Value, int) {
	d := 60 * time.Second
	if timeout != nil {
		d = time.Duration(*timeout)
	}
	cctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	v, err := vu.Call(cctx, name, arg)
	if err != nil {
		var ab *js.AbortError
		switch {
		case errors.As(err, &ab):
			r.abort(ab.Reason, ab.Code)
			return nil, ab.Code
		case errors.Is(cctx.Err(), context.DeadlineExceeded) && ctx.Err() == nil:
			r.errorf("%s() execution timed out after %s", name, d)
			return nil, timeoutCode
		case ctx.Err() != nil:
			return nil, ExitExternalAbort
		}
		r.errorf("%s  source=stacktrace (in %s)", scriptErrorText(err), name)
		return nil, ExitScriptException
	}
	return v, ExitOK
}

// runScenarios runs every scenario concurrently until all end or the run is aborted.
func (r *run) runScenarios(ctx context.Context, scenarios []options.Scenario, t *executor.Tuple, pools map[string]*pool, dataJSON string) {
	reg := r.shared.Registry
	var activeMu sync.Mutex
	active := map[string]int64{}
	setActive := func(name string, n int64) {
		activeMu.Lock()
		active[name] = n
		var sum int64
		for _, v := range active {
			sum += v
		}
		activeMu.Unlock()
		r.shared.Counters.VUsActive.Store(sum)
		reg.Set("vus", float64(sum), nil)
	}
	// Every scenario's start is known before any runs: VUs read the map concurrently.
	now := time.Now()
	for _, sc := range scenarios {
		info := r.shared.Scenarios[sc.Name]
		info.Start = now.Add(sc.Config.StartTime)
		info.Duration = sc.Config.ScheduledDuration()
		r.shared.Scenarios[sc.Name] = info
	}
	var wg sync.WaitGroup
	for _, sc := range scenarios {
		p := pools[sc.Name]
		iterTags := metrics.Tags{"scenario": sc.Name, "group": ""}
		for k, v := range r.opts.Tags {
			iterTags[k] = v
		}
		for k, v := range sc.Tags {
			iterTags[k] = v
		}
		var inScenario atomic.Int64
		hooks := executor.Hooks{
			ActiveVUs: func(n int64) { setActive(sc.Name, n) },
			IterationDone: func(_ executor.VU, d time.Duration, err error, interrupted bool) {
				if interrupted {
					r.shared.Counters.IterationsInterrupted.Add(1)
					return
				}
				r.shared.Counters.IterationsCompleted.Add(1)
				reg.Add("iterations", 1, iterTags)
				reg.ObserveDuration("iteration_duration", d, iterTags)
			},
			Dropped: func() { reg.Add("dropped_iterations", 1, iterTags) },
		}
		fn := func(ictx context.Context, ev executor.VU) error {
			vu, err := p.get(ev.ID)
			if err != nil {
				r.errorf("%s", scriptErrorText(err))
				r.abort("", ExitScriptException)
				return err
			}
			if err := vu.SetSetupData(dataJSON); err != nil {
				return err
			}
			it := js.Iteration{
				Scenario: sc.Name, Exec: sc.Exec, Iter: ev.Iteration, IterInScenario: inScenario.Add(1) - 1,
				Tags: sc.Tags, Env: sc.Env,
			}
			if len(r.cfg.IterationLabels) > 0 {
				pprof.Do(ictx, pprof.Labels(r.cfg.IterationLabels...), func(lctx context.Context) { err = vu.RunIteration(lctx, it) })
			} else {
				err = vu.RunIteration(ictx, it)
			}
			var ab *js.AbortError
			switch {
			case err == nil:
				return nil
			case errors.As(err, &ab):
				r.abort(ab.Reason, ab.Code)
				return context.Canceled
			case js.IsInterrupted(err):
				return context.Canceled
			}
			r.shared.Log("ERRO", scriptErrorText(err), "executor="+sc.Config.Executor, "scenario="+sc.Name, "source=stacktrace")
			return err
		}
		cfg := sc.Config
		wg.Go(func() {
			if err := executor.Run(ctx, cfg, t, fn, hooks); err != nil && ctx.Err() == nil {
				r.errorf("scenario %s: %v", sc.Name, err)
			}
		})
	}
	wg.Wait()
	reg.Set("vus", 0, nil)
}

// watchThresholds evaluates abortOnFail thresholds every 2 s and aborts the run (exit 99) when
// one fails after its delayAbortEval.
func (r *run) watchThresholds(ctx context.Context, sets []threshold.Set, start time.Time) (stop func()) {
	var watched []threshold.Set
	for _, s := range sets {
		var ts []threshold.Threshold
		for _, t := range s.Thresholds {
			if t.AbortOnFail {
				ts = append(ts, t)
			}
		}
		if len(ts) > 0 {
			watched = append(watched, threshold.Set{Key: s.Key, Thresholds: ts})
		}
	}
	if len(watched) == 0 {
		return func() {}
	}
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		tick := time.NewTicker(2 * time.Second)
		defer tick.Stop()
		for {
			select {
			case <-done:
				return
			case <-ctx.Done():
				return
			case <-tick.C:
			}
			elapsed := time.Since(start)
			for _, s := range watched {
				m, ok := r.shared.Registry.Summarize(s.Key, elapsed)
				var v threshold.Values
				if ok {
					v = metrics.Values{M: m}
				}
				for _, res := range s.Evaluate(v) {
					if res.Abort && elapsed >= res.Threshold.DelayAbortEval {
						r.abort(fmt.Sprintf("thresholds on metrics '%s' were crossed; at least one has abortOnFail enabled, stopping test prematurely", s.Key), ExitThresholdFailed)
						return
					}
				}
			}
		}
	})
	return func() { close(done); wg.Wait() }
}

// finish evaluates the thresholds, builds the summary and writes the outputs; it reports
// whether every threshold held.
func (r *run) finish(ctx context.Context, vu *js.VU, sets []threshold.Set, start, end time.Time, nScenarios int, users int64) bool {
	elapsed := end.Sub(start)
	reg := r.shared.Registry
	subs := make([]threshold.Key, 0, len(sets))
	for _, s := range sets {
		if len(s.Key.Tags) > 0 {
			subs = append(subs, s.Key)
		}
	}
	rep := &reports.Report{
		SchemaVersion:  reports.SchemaVersion,
		Scenario:       reports.Scenario{Name: strings.TrimSuffix(filepath.Base(r.cfg.Script), filepath.Ext(r.cfg.Script)), File: r.cfg.Script, Users: int(users)},
		Environment:    reports.Environment{Start: start, End: end, Cores: runtime.NumCPU(), GoVersion: runtime.Version(), OS: runtime.GOOS, Arch: runtime.GOARCH},
		SeriesInterval: reports.Duration(10 * time.Second),
		Metrics:        reg.Snapshot(elapsed, subs, r.cfg.ReportTags),
		Label:          r.cfg.Label,
	}
	// The ground truth an extension recorded (k6/x/wagate) is also the report's.
	if m, ok := rep.Metrics["ground_truth_sessions"]; ok {
		count := func(name string) int64 { return int64(rep.Metrics[name].Values["count"]) }
		rep.GroundTruth = reports.GroundTruth{Sessions: int64(m.Values["count"]), LostUpdates: count("lost_updates"),
			StaleOverwrites: count("stale_overwrites"), DuplicateApplications: count("duplicate_applications")}
	}
	if r.opts.ExecutionSegment != nil {
		rep.Scenario.ExecutionSegment = *r.opts.ExecutionSegment
	}
	ok := true
	for _, s := range sets {
		m, has := rep.Metrics[s.Key.String()]
		var v threshold.Values
		if has {
			v = metrics.Values{M: m}
		}
		for _, res := range s.Evaluate(v) {
			tr := reports.ThresholdResult{Metric: s.Key.String(), Expr: res.Source, OK: res.OK, AbortOnFail: res.Threshold.AbortOnFail}
			if res.HasValue {
				val := res.Value
				tr.Observed = &val
			}
			rep.Thresholds = append(rep.Thresholds, tr)
			ok = ok && res.OK
		}
	}
	stats := r.opts.SummaryTrendStats
	r.summary = metrics.BuildSummary(rep, nil, stats, false, false)
	r.summary.RootGroup = r.shared.Groups.Root()
	for _, n := range []string{"data_sent", "data_received"} {
		if m, ok := r.summary.Metrics[n]; ok {
			m.Contains = metrics.ContainsData
			r.summary.Metrics[n] = m
		}
	}

	if r.cfg.OutDir != "" {
		if err := r.writeOutDir(rep); err != nil {
			r.errorf("%v", err)
		}
	}
	if r.cfg.SummaryExport != "" {
		b, err := json.MarshalIndent(metrics.SummaryExport(r.summary), "", "  ")
		if err == nil {
			err = os.WriteFile(r.cfg.SummaryExport, b, 0o644)
		}
		if err != nil {
			r.errorf("--summary-export: %v", err)
		}
	}
	if r.cfg.NoSummary {
		return ok
	}
	if vu.HasFunction("handleSummary") {
		if err := r.handleSummary(ctx, vu); err != nil {
			r.errorf("handleSummary: %s; falling back to the default summary", scriptErrorText(err))
		} else {
			return ok
		}
	}
	fmt.Fprintln(r.cfg.Stdout)
	fmt.Fprint(r.cfg.Stdout, js.TextSummary(r.summary, " "))
	return ok
}

func (r *run) writeOutDir(rep *reports.Report) error {
	if err := os.MkdirAll(r.cfg.OutDir, 0o755); err != nil {
		return fmt.Errorf("output folder: %w", err)
	}
	if err := rep.Save(filepath.Join(r.cfg.OutDir, reports.FileName)); err != nil {
		return fmt.Errorf("report.json: %w", err)
	}
	b, err := r.summary.Marshal()
	if err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(r.cfg.OutDir, "summary.json"), b, 0o644)
}

// handleSummary calls the script's handleSummary(data) and writes what it returns: stdout,
// stderr or a file path -> string or ArrayBuffer.
func (r *run) handleSummary(ctx context.Context, vu *js.VU) error {
	b, err := r.summary.Marshal()
	if err != nil {
		return err
	}
	data, err := parse(vu, string(b))
	if err != nil {
		return err
	}
	cctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	v, err := vu.Call(cctx, "handleSummary", data)
	if err != nil {
		return err
	}
	o, ok := v.(*goja.Object)
	if !ok {
		return fmt.Errorf("handleSummary must return an object")
	}
	for _, k := range o.Keys() {
		val := o.Get(k)
		var content []byte
		if ab, ok := val.Export().(goja.ArrayBuffer); ok {
			content = ab.Bytes()
		} else {
			content = []byte(val.String())
		}
		switch k {
		case "stdout":
			_, err = r.cfg.Stdout.Write(content)
		case "stderr":
			_, err = r.cfg.Stderr.Write(content)
		default:
			p := k
			if !filepath.IsAbs(p) {
				p = filepath.Clean(p)
			}
			err = os.WriteFile(p, content, 0o644)
		}
		if err != nil {
			return fmt.Errorf("write %s: %w", k, err)
		}
	}
	return nil
}
