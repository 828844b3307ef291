// Package cost measures what running a workload as a k6 script costs the load generator next to
// the native Go users running the same workload on the same world (`simulator k6-cost`, `make
// bench-k6`). A script names its world in options.ext.wagate.world; that scenario YAML's users are
// the native half. Measure starts the world once, runs the native users, then the script (or the
// script first: Config.ScriptFirst; both end their sessions, so the world is idle again between
// them), and records for each half:
//
//   - the gateway API requests its VUs made (http_reqs of the world's API client);
//   - the CPU of its VUs, from a CPU profile of the process over the half (the script's from the
//     end of its VUs' init, whose CPU is reported apart): samples of goroutines
//     carrying the pprof label load=vu (each iteration runs under it, and the goroutines it starts
//     inherit it: pollers, HTTP connections), without the fake phones' work (labelled
//     load=world, the same in both halves); and the whole process's CPU (/proc) for reference;
//   - the runtime memory (runtime/metrics: live heap as of the last GC plus goroutine stacks)
//     before the half and its peak during the half, sampled every second, and for the script the
//     memory right after its VUs' init contexts ran (forced GC before and after).
//
// Figures (Result.Figures) turn these into per-request CPU, its JS/native ratio, and memory per VU.
package cost

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"runtime/metrics"
	"runtime/pprof"
	"sort"
	"sync"
	"time"

	"github.com/google/pprof/profile"

	"wagate/internal/procstat"
	"wagate/reports"
	"wagate/simulator/executor"
	"wagate/simulator/k6/js"
	"wagate/simulator/k6/options"
	"wagate/simulator/k6/testrun"
	"wagate/simulator/k6/wagate"
	"wagate/simulator/k6/wagate/wagatejs"
	simmetrics "wagate/simulator/metrics"
	simrun "wagate/simulator/run"
	"wagate/simulator/scenario"
	"wagate/simulator/user"
)

// LoadLabel is the pprof label key of the measured goroutines; VULoad and WorldLoad its values.
const (
	LoadLabel = "load"
	VULoad    = "vu"
	WorldLoad = "world"
)

// Phase is what one half of the comparison cost the load generator.
type Phase struct {
	// VUs is how many VUs (accounts) the half ran.
	VUs int64 `json:"vus"`
	// Requests is the gateway API requests its VUs made.
	Requests float64 `json:"gateway_requests"`
	// Wall is the half's duration.
	Wall time.Duration `json:"wall_ns"`
	// VUCPU is the CPU of goroutines labelled load=vu; ProcessCPU the whole process's; GCCPU the
	// garbage collector's background work (gcCPU: dedicated mark workers and pauses), unlabelled
	// although the VUs' allocations cause part of it; Allocated the heap bytes allocated. For the
	// script they count from the end of its VUs' init, whose process CPU is InitCPU.
	VUCPU      time.Duration `json:"vu_cpu_ns"`
	ProcessCPU time.Duration `json:"process_cpu_ns"`
	GCCPU      time.Duration `json:"gc_cpu_ns"`
	InitCPU    time.Duration `json:"init_cpu_ns,omitempty"`
	Allocated  uint64        `json:"allocated_bytes"`
	// MemoryBefore and MemoryPeak are the runtime memory (bytes) before the half and its peak
	// during it; MemoryAfterInit right after the script's VUs were initialized (0 for the native
	// half, whose users have no init).
	MemoryBefore    uint64 `json:"memory_before_bytes"`
	MemoryPeak      uint64 `json:"memory_peak_bytes"`
	MemoryAfterInit uint64 `json:"memory_after_init_bytes,omitempty"`
}

// VUCPUPerRequest is the VUs' CPU per gateway API request (0 without requests).
func (p Phase) VUCPUPerRequest() time.Duration { return perRequest(p.VUCPU, p.Requests) }

// VUCPUWithGCPerRequest charges the half's whole GC CPU to its VUs, per request: an upper bound
// of what they cost with the collection their allocations cause.
func (p Phase) VUCPUWithGCPerRequest() time.Duration { return perRequest(p.VUCPU+p.GCCPU, p.Requests) }

// ProcessCPUPerRequest is the process's CPU per gateway API request (0 without requests).
func (p Phase) ProcessCPUPerRequest() time.Duration { return perRequest(p.ProcessCPU, p.Requests) }

func perRequest(cpu time.Duration, requests float64) time.Duration {
	if requests <= 0 {
		return 0
	}
	return time.Duration(float64(cpu) / requests)
}

// PeakGrowthPerVU is the runtime memory the half added at its peak, per VU (bytes).
func (p Phase) PeakGrowthPerVU() float64 {
	if p.VUs <= 0 {
		return 0
	}
	return (float64(p.MemoryPeak) - float64(p.MemoryBefore)) / float64(p.VUs)
}

// Result is a whole comparison.
type Result struct {
	Native Phase `json:"native"`
	JS     Phase `json:"js"`
	// GroundTruth covers both halves' sessions.
	GroundTruth reports.GroundTruth `json:"ground_truth"`
	// ScriptExit is the script half's k6 exit code (thresholds not evaluated).
	ScriptExit int `json:"script_exit"`
}

// Figure names, as report.json metrics (gauges) that thresholds can use.
const (
	// FigCPURatio is the VUs' CPU per request, JS over native.
	FigCPURatio = "k6_cost_cpu_per_request_ratio"
	// FigCPUWithGCRatio is the same with each half's GC CPU charged to its VUs.
	FigCPUWithGCRatio = "k6_cost_cpu_with_gc_per_request_ratio"
	// FigProcessCPURatio is the same for the whole process (the in-process world included).
	FigProcessCPURatio = "k6_cost_process_cpu_per_request_ratio"
	// FigJSCPUPerRequest and FigNativeCPUPerRequest are the VUs' CPU per request in µs.
	FigJSCPUPerRequest     = "k6_cost_js_cpu_per_request_us"
	FigNativeCPUPerRequest = "k6_cost_native_cpu_per_request_us"
	// FigRequestRatio is the gateway API requests the script's VUs made over the native users':
	// the CPU ratio compares what each half spent per request, which is only fair when both did
	// the same work (1: the same requests; the polls during slow pairings moved it before the
	// script could poll while its phone paired).
	FigRequestRatio = "k6_cost_request_ratio"
	// FigVUMemory is what a JS VU holds at the peak beyond a native user on the same workload:
	// (JS peak growth - native peak growth) / VUs, in bytes.
	FigVUMemory = "k6_cost_vu_memory_bytes"
	// FigVUInitMemory is the runtime memory of one initialized JS VU (init context evaluated,
	// before any iteration), in bytes.
	FigVUInitMemory = "k6_cost_vu_init_memory_bytes"
)

// Targets are the bounds the issue sets, as k6 thresholds on the figures: CPU per request within
// 1.5x of the native users', at most 200 KiB of runtime memory per VU beyond the world.
var Targets = map[string][]string{
	FigCPURatio:       {"value<=1.5"},
	FigCPUWithGCRatio: {"value<=1.5"},
	FigVUMemory:       {"value<=204800"},
	FigVUInitMemory:   {"value<=204800"},
}

// Figures are the comparison's figures by name (absent when a half measured nothing).
func (r Result) Figures() map[string]float64 {
	out := map[string]float64{}
	js, native := r.JS.VUCPUPerRequest(), r.Native.VUCPUPerRequest()
	if js > 0 {
		out[FigJSCPUPerRequest] = float64(js) / float64(time.Microsecond)
	}
	if native > 0 {
		out[FigNativeCPUPerRequest] = float64(native) / float64(time.Microsecond)
		if js > 0 {
			out[FigCPURatio] = float64(js) / float64(native)
		}
	}
	if r.JS.Requests > 0 && r.Native.Requests > 0 {
		out[FigRequestRatio] = r.JS.Requests / r.Native.Requests
	}
	if gj, gn := r.JS.VUCPUWithGCPerRequest(), r.Native.VUCPUWithGCPerRequest(); gj > 0 && gn > 0 {
		out[FigCPUWithGCRatio] = float64(gj) / float64(gn)
	}
	if pj, pn := r.JS.ProcessCPUPerRequest(), r.Native.ProcessCPUPerRequest(); pj > 0 && pn > 0 {
		out[FigProcessCPURatio] = float64(pj) / float64(pn)
	}
	if r.JS.VUs > 0 && r.Native.VUs > 0 && r.JS.MemoryPeak > 0 && r.Native.MemoryPeak > 0 {
		out[FigVUMemory] = r.JS.PeakGrowthPerVU() - r.Native.PeakGrowthPerVU()
	}
	if r.JS.VUs > 0 && r.JS.MemoryAfterInit > 0 {
		out[FigVUInitMemory] = (float64(r.JS.MemoryAfterInit) - float64(r.JS.MemoryBefore)) / float64(r.JS.VUs)
	}
	return out
}

// Config is one comparison.
type Config struct {
	// Script is the k6 script; its options.ext.wagate.world (relative to it) is the world and the
	// native workload, unless World names another scenario YAML.
	Script, World string
	// Sets override fields of the world's scenario (-set users=100 scales both halves: the script
	// reads __ENV.USERS).
	Sets []string
	// ScriptEnv are extra __ENV variables of the script (-e KEY=VALUE); USERS is the world's.
	ScriptEnv map[string]string
	// ScriptFirst runs the script's half before the native users' (-script-first): the world
	// after a half is not the world before it (the gateway's stores hold the first half's devices),
	// so a difference that follows the order is the world's, not the runtime's.
	ScriptFirst bool
	// Out receives the world's logs and the script half's report (Out/js).
	Out string
	// BinDir has the gateway and fakelaravel binaries (default: next to the simulator, then PATH).
	BinDir string
	// ScriptOutput receives the script half's console output and summary.
	ScriptOutput io.Writer
	Logger       *slog.Logger
}

// Measure runs the comparison and returns its result with the world's registry (the gateway API
// requests, wagate_* and ground-truth metrics of both halves).
func Measure(ctx context.Context, cfg Config) (Result, *simmetrics.Registry, error) {
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if cfg.ScriptOutput == nil {
		cfg.ScriptOutput = io.Discard
	}
	world, err := worldOf(ctx, cfg)
	if err != nil {
		return Result{}, nil, err
	}
	f, err := scenario.Load(world, cfg.Sets)
	if err != nil {
		return Result{}, nil, err
	}
	// Both halves run at Go's GC target (GOGC 100 unless $GOGC is set), not the generator's 400
	// (simrun.UseGeneratorGC, which `simulator run` uses for YAML and scripts): the memory figures
	// read the live heap as of the last GC, and at 400 the script's half ran none (two runs: GC
	// CPU 0 s, a peak 54 and 58 KiB per VU beyond native against 115 and 113 KiB at 100). The
	// VUs' CPU ratio does not follow it (GC assists are a small part of the VUs' samples): runs
	// alternated at 100, 400, 100, 400 (load average 2-7): 1.45x, 1.50x, 1.68x, 1.61x.
	reg := simmetrics.NewRegistry(nil)
	reg.DefineAll()
	d, err := simrun.StartDriverWorld(ctx, simrun.Options{Scenario: world, Overrides: cfg.Sets, Out: cfg.Out, BinDir: cfg.BinDir, Logger: log}, reg)
	if err != nil {
		return Result{}, nil, fmt.Errorf("world %s: %w", world, err)
	}
	defer d.Stop()
	env := labelledEnv(d.Env())
	// No d.Begin: the world's Laravel sampling (decoding fakelaravel's histograms every series
	// interval, which grow as the world runs) would allocate more in the second half than in the
	// first; GroundTruth begins and ends the world's measurements itself.

	var res Result
	native := func() (err error) {
		log.Info("k6-cost: native users", "scenario", world)
		res.Native, err = measure(ctx, reg, profilePath(cfg.Out, "native"), func(p *Phase, _ func()) error { return runNative(ctx, f, env, p) })
		return err
	}
	script := func() (err error) {
		log.Info("k6-cost: script", "script", cfg.Script)
		res.JS, err = measure(ctx, reg, profilePath(cfg.Out, "js"), func(p *Phase, loadStart func()) error {
			code, err := runScript(ctx, cfg, f.Users, env, d, p, loadStart)
			res.ScriptExit = code
			return err
		})
		return err
	}
	halves := []func() error{native, script}
	if cfg.ScriptFirst {
		halves = []func() error{script, native}
	}
	for _, half := range halves {
		if err := half(); err != nil {
			return res, reg, err
		}
	}
	if res.GroundTruth, err = d.GroundTruth(ctx); err != nil {
		return res, reg, fmt.Errorf("ground truth: %w", err)
	}
	return res, reg, nil
}

// worldOf is the scenario YAML of the comparison: cfg.World, or the script's
// options.ext.wagate.world relative to the script.
func worldOf(ctx context.Context, cfg Config) (string, error) {
	if cfg.World != "" {
		return cfg.World, nil
	}
	var stderr bytes.Buffer
	ext := &wagatejs.Extension{}
	res := testrun.Check(ctx, testrun.Config{Script: cfg.Script, Stderr: &stderr,
		Extensions: map[string]js.ModuleFactory{wagatejs.ModuleName: ext.Module}, ExtensionMetrics: ext.Metrics()})
	if res.ExitCode != testrun.ExitOK {
		return "", fmt.Errorf("script %s (exit %d): %s", cfg.Script, res.ExitCode, stderr.String())
	}
	s, err := wagatejs.Settings(res.Options)
	if err != nil {
		return "", err
	}
	if s.World == "" {
		return "", fmt.Errorf("script %s names no world in options.ext.wagate.world", cfg.Script)
	}
	if filepath.IsAbs(s.World) {
		return s.World, nil
	}
	return filepath.Join(filepath.Dir(cfg.Script), s.World), nil
}

// measure runs one half under a CPU profile and the memory sampler, and fills its figures. The
// half may call loadStart when its load begins (the script, once its VUs are initialized): CPU,
// wall time and the memory peak then count from there, the CPU before it is the half's InitCPU.
func measure(ctx context.Context, reg *simmetrics.Registry, profileFile string, half func(p *Phase, loadStart func()) error) (Phase, error) {
	var p Phase
	settle(ctx)
	p.MemoryBefore = gcMemory()
	requests := reg.Total("http_reqs", nil)
	var prof bytes.Buffer
	if err := pprof.StartCPUProfile(&prof); err != nil {
		return p, fmt.Errorf("cpu profile: %w", err)
	}
	s := startSampler()
	began := time.Now()
	cpu0, _ := processCPU()
	gc0, alloc0 := gcCPU(), allocated()
	err := half(&p, func() {
		cpu, _ := processCPU()
		p.InitCPU = cpu - cpu0
		cpu0, gc0, alloc0, began = cpu, gcCPU(), allocated(), time.Now()
		s.reset() // the peak of the load, not of the init's garbage
	})
	p.Wall = time.Since(began)
	p.MemoryPeak = s.stop()
	pprof.StopCPUProfile()
	cpu1, _ := processCPU()
	p.ProcessCPU = cpu1 - cpu0
	p.GCCPU = gcCPU() - gc0
	p.Allocated = allocated() - alloc0
	p.Requests = reg.Total("http_reqs", nil) - requests
	if profileFile != "" {
		// Kept for a look at where the VUs' CPU goes: go tool pprof -tagfocus load=vu FILE.
		if werr := os.WriteFile(profileFile, prof.Bytes(), 0o644); werr != nil && err == nil {
			err = fmt.Errorf("cpu profile: %w", werr)
		}
	}
	if perr := labelledCPU(&prof, &p.VUCPU); perr != nil && err == nil {
		err = perr
	}
	return p, err
}

// profilePath is where a half's CPU profile is kept (none without an output folder).
func profilePath(out, half string) string {
	if out == "" {
		return ""
	}
	return filepath.Join(out, half+".cpu.pprof")
}

// settle lets the previous half's last requests, logouts and connections finish before a half
// starts measuring.
func settle(ctx context.Context) {
	select {
	case <-time.After(3 * time.Second):
	case <-ctx.Done():
	}
}

// runNative runs the world scenario's own users (each iteration labelled load=vu).
func runNative(ctx context.Context, f *scenario.File, env *user.Env, p *Phase) error {
	names := make([]string, 0, len(f.Scenarios))
	for n := range f.Scenarios {
		names = append(names, n)
	}
	sort.Strings(names)
	var wg sync.WaitGroup
	errs := make([]error, len(names))
	for i, name := range names {
		s := f.Scenarios[name]
		p.VUs += s.Config.MaxVUsOf(nil)
		tags := simmetrics.Tags{}
		for k, v := range s.Tags {
			tags[k] = v
		}
		sc := &user.Scenario{Env: env, Name: name, Behaviour: s.Model, Tags: tags}
		iterate := func(ctx context.Context, vu executor.VU) (err error) {
			pprof.Do(ctx, pprof.Labels(LoadLabel, VULoad), func(ctx context.Context) { err = sc.Iterate(ctx, vu) })
			return err
		}
		wg.Go(func() { errs[i] = executor.Run(ctx, s.Config, nil, iterate, executor.Hooks{}) })
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil && ctx.Err() == nil {
			return fmt.Errorf("native scenario %s: %w", names[i], err)
		}
	}
	return ctx.Err()
}

// runScript runs the script with k6/x/wagate over the world (its iterations labelled load=vu),
// users VUs (__ENV.USERS), and records its VUs' init memory; loadStart marks the end of their init.
func runScript(ctx context.Context, cfg Config, users int64, env *user.Env, d *simrun.DriverWorld, p *Phase, loadStart func()) (int, error) {
	ext := &wagatejs.Extension{}
	ext.SetDriver(wagate.New(worldView{env: env, d: d}, 0))
	var out string
	if cfg.Out != "" {
		out = filepath.Join(cfg.Out, "js")
	}
	vars := map[string]string{}
	for k, v := range cfg.ScriptEnv {
		vars[k] = v
	}
	vars["USERS"] = fmt.Sprint(users)
	res := testrun.Run(ctx, testrun.Config{
		Script: cfg.Script, Env: vars, OutDir: out, Label: "k6-cost js",
		NoThresholds: true, Stdout: cfg.ScriptOutput, Stderr: cfg.ScriptOutput,
		Extensions:       map[string]js.ModuleFactory{wagatejs.ModuleName: ext.Module},
		ExtensionMetrics: ext.Metrics(), IterationLabels: []string{LoadLabel, VULoad},
		BeforeSetup: func(context.Context, *simmetrics.Registry, options.Options) error {
			p.MemoryBefore = gcMemory()
			return nil
		},
		OnLoadStart: func(context.Context) {
			p.MemoryAfterInit = gcMemory()
			loadStart()
		},
	})
	p.VUs = int64(res.Summary.Metrics["vus_max"].Values["value"])
	if p.VUs == 0 {
		p.VUs = users
	}
	if res.ExitCode != testrun.ExitOK {
		return res.ExitCode, fmt.Errorf("script %s exited %d", cfg.Script, res.ExitCode)
	}
	return res.ExitCode, nil
}

// worldView is the world k6/x/wagate drives: the labelled environment over the started world.
type worldView struct {
	env *user.Env
	d   *simrun.DriverWorld
}

func (w worldView) Env() *user.Env { return w.env }
func (w worldView) GroundTruth(ctx context.Context) (reports.GroundTruth, error) {
	return w.d.GroundTruth(ctx)
}

// labelledEnv is e with its phone operations labelled load=world: the fake phones' work (and the
// goroutines it starts) is the world's, not the VUs'.
func labelledEnv(e *user.Env) *user.Env {
	return &user.Env{API: e.API, Phone: worldPhone{e.Phone}, Laravel: e.Laravel, Ledger: e.Ledger, Reg: e.Reg,
		Instance: e.Instance, Seed: e.Seed, MessageTo: e.MessageTo}
}

type worldPhone struct{ p user.Phone }

func inWorld(ctx context.Context, f func(context.Context)) {
	pprof.Do(ctx, pprof.Labels(LoadLabel, WorldLoad), f)
}

func (w worldPhone) Pair(ctx context.Context, qr, phone string) (jid string, err error) {
	inWorld(ctx, func(ctx context.Context) { jid, err = w.p.Pair(ctx, qr, phone) })
	return jid, err
}

func (w worldPhone) WaitConnected(ctx context.Context, jid string, after time.Time) (at time.Time, err error) {
	inWorld(ctx, func(ctx context.Context) { at, err = w.p.WaitConnected(ctx, jid, after) })
	return at, err
}

func (w worldPhone) Drop(jid string) (err error) {
	inWorld(context.Background(), func(context.Context) { err = w.p.Drop(jid) })
	return err
}

func (w worldPhone) Replace(jid string) (err error) {
	inWorld(context.Background(), func(context.Context) { err = w.p.Replace(jid) })
	return err
}

func (w worldPhone) Logout(jid string) (err error) {
	inWorld(context.Background(), func(context.Context) { err = w.p.Logout(jid) })
	return err
}

// labelledCPU adds the CPU of the profile's samples labelled load=vu to *vu.
func labelledCPU(prof *bytes.Buffer, vu *time.Duration) error {
	p, err := profile.Parse(prof)
	if err != nil {
		return fmt.Errorf("cpu profile: %w", err)
	}
	idx := -1
	for i, st := range p.SampleType {
		if st.Type == "cpu" && st.Unit == "nanoseconds" {
			idx = i
		}
	}
	if idx < 0 {
		return fmt.Errorf("cpu profile: no cpu/nanoseconds sample type")
	}
	*vu += VUCPU(p.Sample, idx)
	return nil
}

// VUCPU sums value idx of the samples labelled load=vu.
func VUCPU(samples []*profile.Sample, idx int) time.Duration {
	var sum int64
	for _, s := range samples {
		for _, v := range s.Label[LoadLabel] {
			if v == VULoad {
				sum += s.Value[idx]
				break
			}
		}
	}
	return time.Duration(sum)
}

// Runtime memory: the live heap as of the last GC plus the goroutine stacks.
var memorySamples = []string{"/gc/heap/live:bytes", "/memory/classes/heap/stacks:bytes"}

func runtimeMemory() uint64 {
	s := make([]metrics.Sample, len(memorySamples))
	for i, n := range memorySamples {
		s[i].Name = n
	}
	metrics.Read(s)
	var sum uint64
	for _, x := range s {
		if x.Value.Kind() == metrics.KindUint64 {
			sum += x.Value.Uint64()
		}
	}
	return sum
}

// gcMemory is runtimeMemory right after a forced GC.
func gcMemory() uint64 {
	runtime.GC()
	return runtimeMemory()
}

// gcCPU is the garbage collector's dedicated mark workers' and pauses' CPU so far
// (runtime/metrics): not mark assists (the allocating goroutines', in the VUs' samples when
// theirs), nor idle mark workers (they only fill processors that had nothing else to run, for as
// long as a cycle lasts).
func gcCPU() time.Duration {
	s := []metrics.Sample{{Name: "/cpu/classes/gc/mark/dedicated:cpu-seconds"}, {Name: "/cpu/classes/gc/pause:cpu-seconds"}}
	metrics.Read(s)
	var sum float64
	for _, x := range s {
		if x.Value.Kind() == metrics.KindFloat64 {
			sum += x.Value.Float64()
		}
	}
	return time.Duration(sum * float64(time.Second))
}

// allocated is the bytes allocated on the heap so far (runtime/metrics).
func allocated() uint64 {
	s := []metrics.Sample{{Name: "/gc/heap/allocs:bytes"}}
	metrics.Read(s)
	if s[0].Value.Kind() != metrics.KindUint64 {
		return 0
	}
	return s[0].Value.Uint64()
}

func processCPU() (time.Duration, error) {
	p, err := procstat.FS{}.Process("self")
	return p.CPU, err
}

// sampler records the peak runtime memory, every second.
type sampler struct {
	mu   sync.Mutex
	peak uint64
	done chan struct{}
	wg   sync.WaitGroup
}

func startSampler() *sampler {
	s := &sampler{done: make(chan struct{})}
	s.wg.Go(func() {
		t := time.NewTicker(time.Second)
		defer t.Stop()
		for {
			select {
			case <-s.done:
				return
			case <-t.C:
				s.observe(runtimeMemory())
			}
		}
	})
	return s
}

func (s *sampler) observe(v uint64) {
	s.mu.Lock()
	s.peak = max(s.peak, v)
	s.mu.Unlock()
}

func (s *sampler) reset() {
	s.mu.Lock()
	s.peak = 0
	s.mu.Unlock()
}

// stop ends the sampling and returns the peak.
func (s *sampler) stop() uint64 {
	close(s.done)
	s.wg.Wait()
	s.observe(runtimeMemory())
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.peak
}
