// Package run owns one simulation run: it launches the world of a scenario (fakewa in-process,
// bin/fakelaravel and bin/gateway as child processes with fresh temporary stores, Redis as the
// gateway configuration asks), drives the scenario's users with k6 executors, measures the
// gateway, Laravel and the delivery pipeline, compares Laravel's final state with the ground
// truth after a drain period, evaluates thresholds, writes report.json, summary.json and
// metrics.ndjson, and stops everything it started, also on failure and on Ctrl-C.
//
// Where things are: run.go is the orchestration (Run, the runner's phases in order); world.go
// starts the world (the gateway with its gateway.yaml, fakelaravel, Redis, fakewa), process.go
// and procfaults.go its child processes and their faults; players.go plays the fault schedule,
// recovery.go measures recoveries; probes.go, sample.go and series.go measure over time;
// groundtruth.go, outcome.go and messages.go judge the end state; report.go writes report.json;
// driver_world.go is the same world for a k6 script.
package run

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"runtime/debug"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"wagate/fakelaravel"
	"wagate/reports"
	"wagate/simulator/executor"
	"wagate/simulator/metrics"
	"wagate/simulator/scenario"
	"wagate/simulator/threshold"
	"wagate/simulator/truth"
	"wagate/simulator/user"
)

// Options configure one run.
type Options struct {
	// Scenario is the scenario file; Overrides are -set key=value pairs.
	Scenario  string
	Overrides []string
	// Out is the output folder (created).
	Out string
	// BinDir holds bin/fakelaravel and bin/gateway (default: next to the simulator binary, then PATH).
	BinDir string
	// Segment and Sequence are k6's --execution-segment and --execution-segment-sequence.
	Segment, Sequence string
	// Label names the run in reports.
	Label string
	// NoNDJSON skips metrics.ndjson.
	NoNDJSON bool
	// Progress receives the progress line (a TTY gets one rewritten line, anything else plain
	// periodic lines); TTY says which.
	Progress io.Writer
	TTY      bool
	// Logger receives the run's log (default: discard).
	Logger *slog.Logger
	// Gateway, Laravel and FakewaControl point the run at already running parts instead of
	// starting them (as the scenario's gateway.url, laravel.url and whatsapp.control do), with
	// their tokens (GatewayToken: the REST API token; LaravelToken and LaravelAdminToken:
	// fakelaravel's /api and /_fake/ tokens).
	Gateway, GatewayToken                    string
	Laravel, LaravelToken, LaravelAdminToken string
	FakewaControl                            string
	// DrainUntilSettled ends the drain before its period once every fault has recovered and the
	// outbox is empty (drainsettle.go); the chaos campaign sets it.
	DrainUntilSettled bool
}

// Result is a finished run.
type Result struct {
	Report *reports.Report
	// ThresholdsOK is false when a threshold failed (exit code 99).
	ThresholdsOK bool
	// Aborted is true when an abortOnFail threshold stopped the users early.
	Aborted bool
}

// simulatorGOGC is the simulator's GC target unless $GOGC is set (see Run).
const simulatorGOGC = 400

// maxGatewayConns caps the simulator's connections to the gateway.
const maxGatewayConns = 4000

// laravelEndpoints maps fakelaravel's endpoint names to contract paths used in reports.
var laravelEndpoints = map[string]string{
	fakelaravel.EndpointQR:          "POST /api/qr",
	fakelaravel.EndpointStatus:      "POST /api/whatsapp/status",
	fakelaravel.EndpointSession:     "GET /api/whatsapp/sessions/{id}",
	fakelaravel.EndpointQRBatch:     "POST /api/qr/batch",
	fakelaravel.EndpointStatusBatch: "POST /api/whatsapp/status/batch",
	fakelaravel.EndpointOther:       "other",
}

// UseGeneratorGC sets the load generator's GC target (simulatorGOGC) unless $GOGC is set and
// returns what restores the previous one. Run uses it; so do the k6 script runs of the same
// generator (simulator/k6), whose VUs are the same users written in JavaScript.
func UseGeneratorGC() (restore func()) {
	if _, set := os.LookupEnv("GOGC"); set {
		return func() {}
	}
	previous := debug.SetGCPercent(simulatorGOGC)
	return func() { debug.SetGCPercent(previous) }
}

// Run performs one run. It returns an error when the world could not be started or the output
// not written; a failed threshold is not an error (see Result.ThresholdsOK).
func Run(ctx context.Context, o Options) (*Result, error) {
	log := o.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	// The load generator shares the machine with the gateway, so its own CPU shows up as API
	// latency. Each poll allocates (request, connection goroutines' buffers) and every GC cycle
	// scans the stacks of all pollers and connection goroutines (~3 per poller at 1000 users):
	// GC was ~24% of the simulator's CPU at seed-batch-1000 with the default GOGC=100, and 400
	// cut its CPU per request by 12-17%. An explicit GOGC in the environment wins.
	defer UseGeneratorGC()()
	r, err := newRunner(o, log)
	if err != nil {
		return nil, err
	}
	defer useCPUSets(r.f, log)() // cpuset.go: the gateway on its own CPUs, the world on the rest
	return r.run(ctx)
}

// newRunner reads the scenario of o with its overrides, points it at the external parts o names
// (as the scenario's gateway.url, laravel.url and whatsapp.control do), takes this instance's
// execution segment and makes the output folder: what Run and StartDriverWorld set up alike.
func newRunner(o Options, log *slog.Logger) (*runner, error) {
	f, err := scenario.Load(o.Scenario, o.Overrides)
	if err != nil {
		return nil, err
	}
	if o.Gateway != "" {
		if o.GatewayToken == "" {
			return nil, fmt.Errorf("an external gateway needs its API token (WAGATE_API_TOKEN)")
		}
		f.Gateway.URL, f.Gateway.Token = o.Gateway, o.GatewayToken
	}
	if o.Laravel != "" {
		if o.LaravelToken == "" {
			return nil, fmt.Errorf("an external fakelaravel needs its token (FAKELARAVEL_TOKEN)")
		}
		f.Laravel.URL, f.Laravel.Token, f.Laravel.AdminToken = o.Laravel, o.LaravelToken, o.LaravelAdminToken
	}
	if o.FakewaControl != "" {
		f.WhatsApp.Control = o.FakewaControl
	}
	seg, err := executor.ParseSegment(o.Segment)
	if err != nil {
		return nil, err
	}
	seq, err := executor.ParseSequence(o.Sequence)
	if err != nil {
		return nil, err
	}
	tuple, err := executor.NewTuple(seg, seq)
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(filepath.Join(o.Out, "logs"), 0o755); err != nil {
		return nil, fmt.Errorf("output folder: %w", err)
	}
	return &runner{o: o, f: f, tuple: tuple, log: log}, nil
}

type runner struct {
	o     Options
	f     *scenario.File
	tuple *executor.Tuple
	log   *slog.Logger

	w       *world
	reg     *metrics.Registry
	nd      *metrics.NDJSON
	ledger  *truth.Ledger
	phones  *phones
	laravel *laravelWatch
	hc      *http.Client

	start     time.Time // users start
	activeVUs atomic.Int64
	// stopUsers ends the users early (the gateway died, or an abortOnFail threshold failed).
	stopUsers   context.CancelFunc
	gatewayDied atomic.Bool
	// measureLaravel and measureGateway say whether this instance reports the shared parts'
	// own measurements (Laravel's requests, the gateway's resources): always for parts it started,
	// and only instance 0 of an execution-segment sequence for parts shared by several
	// instances, so that merging the instances' reports does not count them twice.
	measureLaravel, measureGateway bool
	// proc is the state of process faults (gateway and redis-server restarts; procfaults.go).
	proc procControl
	// rec measures fault_recovery_time (recovery.go).
	rec recoveryWatch

	// Probes (probes.go): each measurement owns its state. laravelRequests is nil when another
	// instance reports Laravel's requests; probes lists every probe the run samples.
	laravelRequests *laravelRequestsProbe
	probes          []probe

	mu     sync.Mutex
	series []reports.SeriesPoint
}

func (r *runner) run(ctx context.Context) (res *Result, err error) {
	f := r.f
	r.w = &world{log: r.log}
	defer r.w.stop()
	if err := r.w.start(ctx, f, r.o.BinDir, r.o.Out); err != nil {
		return nil, err
	}

	closeMetrics, err := r.openMetrics()
	if err != nil {
		return nil, err
	}
	defer closeMetrics()
	r.watchWorld()

	users := f.PeakUsers()
	env := r.userEnv()

	// Background loops run until the end of the drain.
	bg, stopBG := context.WithCancel(context.WithoutCancel(ctx))
	var bgWG sync.WaitGroup
	defer func() { stopBG(); bgWG.Wait() }()
	pollEvery := 250 * time.Millisecond
	if users > 300 {
		pollEvery = 500 * time.Millisecond
	}
	if users > 3000 {
		pollEvery = time.Second
	}
	bgWG.Go(func() { r.every(bg, 100*time.Millisecond, func() { _ = r.phones.poll(bg) }) })
	bgWG.Go(func() { r.every(bg, pollEvery, func() { _ = r.laravel.poll(bg) }) })
	r.startProbes(ctx)
	r.start = time.Now()
	if q := f.Quiet; q != nil {
		// The scenario's quiet window, counted from the users' start as faults are.
		env.API.QuietPolls(r.start.Add(q.At.Std()), r.start.Add(q.At.Std()+q.Duration.Std()))
		r.log.Info("the Laravel app polls nothing in the quiet window", "at", q.At, "duration", q.Duration)
	}
	bgWG.Go(func() { r.every(bg, time.Second, func() { r.sampleEverySecond(bg) }) })
	bgWG.Go(func() { r.every(bg, f.SeriesInterval.Std(), r.seriesPoint) })
	bgWG.Go(func() { r.progress(bg) })

	// Users.
	usersCtx, stopUsers := context.WithCancel(ctx)
	defer stopUsers()
	r.mu.Lock()
	r.stopUsers = stopUsers
	r.mu.Unlock()
	var aborted atomic.Bool
	bgWG.Go(func() { r.abortWatch(bg, usersCtx, stopUsers, &aborted) })
	var faultWG sync.WaitGroup
	for _, flt := range f.Faults {
		faultWG.Go(func() { r.playFault(usersCtx, flt) }) // players.go
	}
	r.runUsers(usersCtx, env)
	stopUsers()
	faultWG.Wait()
	if r.laravelRequests != nil {
		r.laravelRequests.endOfUsers()
	}
	r.log.Info("users done; draining", "drain", f.Drain)
	r.drain(ctx)
	r.finishRecoveries()
	interrupted := ctx.Err() != nil
	// Final observations.
	fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), convergeLimit+30*time.Second)
	defer cancel()
	end, truth, gatewayAnswered := r.groundTruth(fctx)
	// The outcome's reads (dead letters, duplicates) have a budget of their own: a ground truth
	// that waited its limit must not leave them an expired one (chaos seed 1 schedule 16: the dead
	// letters went unread, so an injected refusal was judged a lost update).
	octx, ocancel := context.WithTimeout(context.WithoutCancel(ctx), outcomeLimit)
	defer ocancel()
	if err := r.writeOutcome(octx, truth, gatewayAnswered); err != nil {
		return nil, fmt.Errorf("%s: %w", OutcomeFile, err)
	}
	dup := r.duplicates(octx)
	stopBG()
	bgWG.Wait()
	r.seriesPoint()

	rep := r.report(end, truth, dup)
	ok := true
	for _, t := range rep.Thresholds {
		ok = ok && t.OK
	}
	if err := r.write(rep); err != nil {
		return nil, err
	}
	if err := r.writeFaultTimeline(); err != nil {
		return nil, err
	}
	if interrupted {
		return &Result{Report: rep, ThresholdsOK: ok, Aborted: true}, ctx.Err()
	}
	if r.gatewayDied.Load() {
		logs := filepath.Join(r.o.Out, "logs", "gateway.log")
		if r.w.cluster != nil {
			logs = filepath.Join(r.o.Out, "logs", "gateway-*.log")
		}
		return &Result{Report: rep, ThresholdsOK: ok, Aborted: true}, fmt.Errorf("the gateway exited during the run (see %s)", logs)
	}
	return &Result{Report: rep, ThresholdsOK: ok, Aborted: aborted.Load()}, nil
}

// openMetrics creates the run's registry, writing its points to metrics.ndjson unless
// Options.NoNDJSON; closeFile closes that file.
func (r *runner) openMetrics() (closeFile func(), err error) {
	closeFile = func() {}
	var sink metrics.PointSink
	if !r.o.NoNDJSON {
		nf, err := os.Create(filepath.Join(r.o.Out, "metrics.ndjson"))
		if err != nil {
			return nil, fmt.Errorf("metrics.ndjson: %w", err)
		}
		closeFile = func() { nf.Close() }
		th := map[string][]string{}
		for _, s := range r.f.ThresholdSets {
			for _, t := range s.Thresholds {
				th[s.Key.String()] = append(th[s.Key.String()], t.Source)
			}
		}
		r.nd = metrics.NewNDJSON(nf, th)
		sink = r.nd
	}
	r.reg = metrics.NewRegistry(sink)
	r.reg.DefineAll()
	reg := r.reg
	countRequests(func() float64 { return reg.Total("http_reqs", nil) }) // the generator's intervals (cpuset.go)
	return closeFile, nil
}

// watchWorld sets up what watches the world for the ground truth: the phones, the ledger,
// Laravel's view, and which shared parts this instance measures.
func (r *runner) watchWorld() {
	f := r.f
	qr := f.Gateway.QRTiming()
	r.measureLaravel = r.w.laravel != nil || r.tuple.Index() == 0
	r.measureGateway = r.w.gateway != nil || r.tuple.Index() == 0
	r.phones = newPhones(r.w.wa)
	r.ledger = truth.NewLedger(r.reg, qr, r.phones.RefIssue)
	r.laravel = newLaravelWatch(r.w.admin, r.ledger)
	r.hc = &http.Client{Timeout: 10 * time.Second}
}

// userEnv is the users' environment: the measured gateway API client, the phones, Laravel's
// view, the ground-truth ledger and the registry.
func (r *runner) userEnv() *user.Env {
	f := r.f
	// Connections to the gateway are capped (file descriptors: each side of a connection costs
	// one in the gateway and one here); a request waiting for a free connection records that wait
	// as http_req_blocked, not as API latency, as k6 does.
	var pollers int64 = 16
	for _, s := range f.Scenarios {
		pollers += s.Config.MaxVUsOf(r.tuple) * (*s.Model.Pollers + 2)
	}
	conns := int(min(pollers, maxGatewayConns))
	apiClient := &http.Client{
		Timeout: 60 * time.Second,
		Transport: &http.Transport{
			MaxConnsPerHost:     conns,
			MaxIdleConns:        conns,
			MaxIdleConnsPerHost: conns,
			IdleConnTimeout:     90 * time.Second,
		},
	}
	env := &user.Env{
		API:       user.NewAPI(r.w.gatewayURL, r.w.gatewayToken, apiClient, r.reg),
		Phone:     r.phones,
		Laravel:   r.laravel,
		Ledger:    r.ledger,
		Reg:       r.reg,
		Instance:  r.tuple.Index(),
		Seed:      f.Seed,
		MessageTo: "15550100000",
		Messages:  r.phones.messages,
	}
	return env
}

// runUsers runs every scenario's executor until its schedule ends or ctx ends.
func (r *runner) runUsers(ctx context.Context, env *user.Env) {
	f := r.f
	var maxVUs int64
	var wg sync.WaitGroup
	names := make([]string, 0, len(f.Scenarios))
	for n := range f.Scenarios {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, name := range names {
		s := f.Scenarios[name]
		maxVUs += s.Config.MaxVUsOf(r.tuple)
		tags := metrics.Tags{}
		for k, v := range s.Tags {
			tags[k] = v
		}
		sc := &user.Scenario{Env: env, Name: name, Behaviour: s.Model, Tags: tags}
		var active atomic.Int64
		var logged atomic.Int64
		wg.Go(func() {
			err := executor.Run(ctx, s.Config, r.tuple, sc.Iterate, executor.Hooks{
				ActiveVUs: func(n int64) {
					d := n - active.Swap(n)
					r.reg.Set("vus", float64(r.activeVUs.Add(d)), nil)
				},
				IterationDone: func(vu executor.VU, d time.Duration, err error, interrupted bool) {
					t := metrics.Tags{"scenario": name}
					r.reg.Add("iterations", 1, t)
					r.reg.ObserveDuration("iteration_duration", d, t)
					if err != nil && !interrupted && !errors.Is(err, context.Canceled) && !errors.Is(err, user.ErrGaveUp) && logged.Add(1) <= 5 {
						r.log.Warn("iteration failed", "scenario", name, "vu", vu.ID, "err", err)
					}
				},
				Dropped: func() { r.reg.Add("dropped_iterations", 1, metrics.Tags{"scenario": name}) },
			})
			if err != nil && !errors.Is(err, context.Canceled) {
				r.log.Error("executor", "scenario", name, "err", err)
			}
		})
	}
	r.reg.Set("vus_max", float64(maxVUs), nil)
	wg.Wait()
}

// drain waits for the scenario's drain period, then for the gateway's outbox to empty.
func (r *runner) drain(ctx context.Context) {
	f := r.f
	if ctx.Err() == nil {
		r.waitDrain(ctx, f.Drain.Std()) // drainsettle.go
		if waited, depth := r.settleOutbox(ctx); waited > time.Second || depth > 0 {
			r.log.Info("waited for the outbox after the drain", "waited", waited.Round(time.Millisecond), "depth", depth)
		}
	}
}

// every calls fn every d until ctx ends.
func (r *runner) every(ctx context.Context, d time.Duration, fn func()) {
	t := time.NewTicker(d)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			fn()
		}
	}
}

// abortWatch evaluates abortOnFail thresholds every 2 s and stops the users when one fails.
func (r *runner) abortWatch(bg, users context.Context, stop context.CancelFunc, aborted *atomic.Bool) {
	any := false
	for _, s := range r.f.ThresholdSets {
		for _, t := range s.Thresholds {
			any = any || t.AbortOnFail
		}
	}
	if !any {
		return
	}
	t := time.NewTicker(2 * time.Second)
	defer t.Stop()
	for {
		select {
		case <-bg.Done():
			return
		case <-users.Done():
			return
		case <-t.C:
		}
		elapsed := time.Since(r.start)
		for _, s := range r.f.ThresholdSets {
			m, ok := r.reg.Summarize(s.Key, elapsed)
			var v threshold.Values
			if ok {
				v = metrics.Values{M: m}
			}
			for _, res := range s.Evaluate(v) {
				if res.Abort && elapsed >= res.Threshold.DelayAbortEval {
					r.log.Warn("threshold failed with abortOnFail; stopping the users", "metric", res.Key, "threshold", res.Source, "value", res.Value)
					aborted.Store(true)
					stop()
					return
				}
			}
		}
	}
}

// ownOnline maps this instance's sessions whose device is online to their JIDs.
func (r *runner) ownOnline() map[string]string {
	online := map[string]bool{}
	for _, j := range r.phones.OnlineJIDs() {
		online[j] = true
	}
	out := map[string]string{}
	for id, jid := range r.ledger.JIDs() {
		if online[jid] {
			out[id] = jid
		}
	}
	return out
}

// progress prints a live line on a terminal (every second) or a plain line every 10 s.
func (r *runner) progress(ctx context.Context) {
	if r.o.Progress == nil {
		return
	}
	every := 10 * time.Second
	if r.o.TTY {
		every = time.Second
	}
	total := r.f.ScheduledDuration() + r.f.Drain.Std()
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			if r.o.TTY {
				fmt.Fprintln(r.o.Progress)
			}
			return
		case <-t.C:
		}
		el := time.Since(r.start).Truncate(time.Second)
		p95 := 0.0
		if m, ok := r.reg.Summarize(threshold.Key{Metric: "http_req_duration"}, el); ok {
			p95 = m.Values["p(95)"]
		}
		var perMin float64
		if r.laravelRequests != nil {
			perMin = r.laravelRequests.perMinute()
		}
		errs := r.reg.Total("http_req_failed", nil)
		line := fmt.Sprintf("%s/%s  users %d  sessions %d (connected %d)  Laravel %.0f req/min  API p95 %.1f ms  errors %.0f",
			el, total, r.activeVUs.Load(), r.ledger.Sessions(), len(r.ownOnline()), perMin, p95, errs)
		if r.o.TTY {
			fmt.Fprintf(r.o.Progress, "\r\033[K%s", line)
		} else {
			fmt.Fprintln(r.o.Progress, line)
		}
	}
}

// write saves report.json, summary.json and flushes metrics.ndjson.
func (r *runner) write(rep *reports.Report) error {
	if err := rep.Save(filepath.Join(r.o.Out, reports.FileName)); err != nil {
		return err
	}
	if err := WriteSummary(r.o.Out, rep, r.reg.Checks(), r.f.SummaryTrendStats, r.o.TTY); err != nil {
		return err
	}
	if r.nd != nil {
		if err := r.nd.Flush(); err != nil {
			return fmt.Errorf("metrics.ndjson: %w", err)
		}
	}
	return nil
}

// WriteSummary writes dir/summary.json in k6's handleSummary shape.
func WriteSummary(dir string, rep *reports.Report, checks []metrics.CheckResult, trendStats []string, tty bool) error {
	b, err := metrics.BuildSummary(rep, checks, trendStats, tty, false).Marshal()
	if err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, "summary.json"), b, 0o644)
}
