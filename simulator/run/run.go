// Package run owns one simulation run: it launches the world of a scenario (fakewa in-process,
// bin/fakelaravel and bin/gateway as child processes with fresh temporary stores, Redis as the
// gateway configuration asks), drives the scenario's users with k6 executors, measures the
// gateway, Laravel and the delivery pipeline, compares Laravel's final state with the ground
// truth after a drain period, evaluates thresholds, writes report.json, summary.json and
// metrics.ndjson, and stops everything it started, also on failure and on Ctrl-C.
package run

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"runtime/debug"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"wagate/fakelaravel"
	"wagate/gateway/laravel"
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
	if _, set := os.LookupEnv("GOGC"); !set {
		defer debug.SetGCPercent(debug.SetGCPercent(simulatorGOGC))
	}
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
	if err := r.writeOutcome(fctx, truth, gatewayAnswered); err != nil {
		return nil, fmt.Errorf("%s: %w", OutcomeFile, err)
	}
	dup := r.duplicates(fctx)
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
		return &Result{Report: rep, ThresholdsOK: ok, Aborted: true}, fmt.Errorf("the gateway exited during the run (see %s)", filepath.Join(r.o.Out, "logs", "gateway.log"))
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
	return closeFile, nil
}

// groundTruth waits for Laravel to show the gateway's final states (Converge) and judges every
// session (Finish); end is when it stopped watching, gatewayAnswered whether the gateway told its
// final states.
func (r *runner) groundTruth(ctx context.Context) (end time.Time, t truth.Truth, gatewayAnswered bool) {
	_ = r.phones.poll(ctx)
	gatewayStates, err := r.ledger.Converge(ctx, r.gatewayStates, r.laravel.poll, convergeLimit)
	if err != nil {
		r.log.Warn("final Laravel state", "err", err)
	}
	end = time.Now()
	t = r.ledger.Finish(gatewayStates, end)
	r.judgeMessages(ctx)
	for _, m := range t.Mismatches {
		r.log.Warn("ground truth", "mismatch", m)
	}
	return end, t, gatewayStates != nil
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

// startProbes creates the run's probes and takes their first readings, the baselines of the
// first interval.
func (r *runner) startProbes(ctx context.Context) {
	gatewayProcess := &gatewayProcessProbe{reg: r.reg, gateway: r.gatewayChild}
	gatewayProcess.begin()
	r.probes = []probe{gatewayProcess}
	if r.w.real != nil {
		r.probes = append(r.probes, &realLaravelCPUProbe{reg: r.reg, real: r.w.real})
	}
	if r.measureGateway {
		r.probes = append(r.probes,
			&gatewayMetricsProbe{reg: r.reg, hc: r.hc, url: r.w.gatewayURL, token: r.w.gatewayToken},
			&gatewayLatencyProbe{reg: r.reg, hc: r.hc, url: r.w.gatewayURL, token: r.w.gatewayToken},
			&redisOpsProbe{reg: r.reg, redis: r.redisChild, url: r.w.redisURL})
	}
	if !r.measureLaravel {
		r.log.Info("fakelaravel is shared with other instances: instance 0 reports its request counts")
		return
	}
	r.laravelRequests = r.newLaravelRequestsProbe()
	r.laravelRequests.begin(ctx)
	r.probes = append(r.probes, r.laravelRequests)
}

// newLaravelRequestsProbe measures Laravel's requests into the run's registry.
func (r *runner) newLaravelRequestsProbe() *laravelRequestsProbe {
	return &laravelRequestsProbe{reg: r.reg, admin: r.w.admin, warmup: r.f.Warmup.Std(), log: r.log}
}

// sampleEverySecond stops the users when the gateway process died, samples every probe and
// records sessions_connected.
func (r *runner) sampleEverySecond(ctx context.Context) {
	gw := r.gatewayChild() // nil during a planned restart
	if gw != nil && gw.exited() && !r.gatewayDied.Swap(true) {
		r.log.Error("the gateway process exited during the run; stopping the users", "err", gw.err, "log_tail", gw.tail(10))
		r.mu.Lock()
		stop := r.stopUsers
		r.mu.Unlock()
		if stop != nil {
			stop()
		}
	}
	for _, p := range r.probes {
		p.sample(ctx)
	}
	r.reg.Set("sessions_connected", float64(len(r.ownOnline())), nil)
}

// seriesPoint closes one series interval: Laravel's requests by endpoint (from fakelaravel's
// counters), API latency percentiles, gateway resources, sessions by state.
func (r *runner) seriesPoint() {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	now := time.Now()
	p := reports.SeriesPoint{
		Time:                  now,
		Elapsed:               reports.Duration(now.Sub(r.start)),
		ActiveUsers:           int(r.activeVUs.Load()),
		LaravelRequestsPerMin: map[string]float64{},
		SessionsByState:       r.laravel.ByState(r.ledger.IDs()),
	}
	for _, pr := range r.probes {
		pr.closeInterval(ctx, &p)
	}
	if h, _ := r.reg.TakeWindow("http_req_duration"); h != nil && h.Count() > 0 {
		p.APILatencyHistogram = h
		p.APILatency = reports.Percentiles{P50: h.Percentile(50), P95: h.Percentile(95), P99: h.Percentile(99)}
	}
	r.mu.Lock()
	r.series = append(r.series, p)
	r.mu.Unlock()
	for _, state := range laravel.Statuses {
		r.reg.Set("sessions", float64(p.SessionsByState[string(state)]), metrics.Tags{"state": string(state)})
	}
}

// histDelta records the samples that entered fakelaravel's histogram since prev: from its HDR
// histograms when it sends them (each sample at its value, exact to 0.1%), else from its fixed
// buckets (each sample at its bucket's upper bound).
func histDelta(reg *metrics.Registry, name string, prev, cur fakelaravel.Histogram, tags metrics.Tags) {
	if samples, ok := hdrDelta(prev, cur); ok {
		for _, s := range samples {
			reg.ObserveN(name, s.ms, s.n, metrics.ContainsTime, tags)
		}
		return
	}
	for i, c := range cur.Counts {
		var p int64
		if i < len(prev.Counts) {
			p = prev.Counts[i]
		}
		n := c - p
		if n <= 0 {
			continue
		}
		v := cur.MaxMS
		if i < len(cur.BoundsMS) {
			v = cur.BoundsMS[i]
		}
		reg.ObserveN(name, v, n, metrics.ContainsTime, tags)
	}
}

// deltaSamples are n samples of ms milliseconds.
type deltaSamples struct {
	ms float64
	n  int64
}

// hdrDelta returns the samples in cur's HDR histogram that are not in prev's (both from one
// fakelaravel process, so prev's buckets are a subset of cur's), each at the middle of its HDR
// bucket; ok is false when cur carries no HDR histogram or it cannot be decoded.
func hdrDelta(prev, cur fakelaravel.Histogram) (_ []deltaSamples, ok bool) {
	c, err := cur.DecodeHDR()
	if err != nil || c == nil {
		return nil, false
	}
	var before []int64
	if p, err := prev.DecodeHDR(); err == nil && p != nil {
		for _, b := range p.Distribution() {
			before = append(before, b.Count)
		}
	}
	var out []deltaSamples
	for i, b := range c.Distribution() {
		n := b.Count
		if i < len(before) {
			n -= before[i]
		}
		if n > 0 {
			out = append(out, deltaSamples{ms: float64(b.From+b.To) / 2 / 1000, n: n})
		}
	}
	return out, true
}

// convergeLimit bounds how long the end of a run waits for Laravel to show the gateway's final
// states (and for the gateway to reach what the simulation caused) before judging them.
const convergeLimit = 30 * time.Second

// gatewayStates asks the gateway for the final status and version of sessions ids (nil when it
// cannot answer); it is the ground truth's truth.ReadGateway.
func (r *runner) gatewayStates(ctx context.Context, ids []string) map[string]truth.State {
	if r.gatewayDied.Load() {
		return nil
	}
	out := make(map[string]truth.State, len(ids))
	var mu sync.Mutex
	work := make(chan string)
	var wg sync.WaitGroup
	for range 16 {
		wg.Go(func() {
			for id := range work {
				st, err := r.gatewayStatus(ctx, id)
				if err == nil && st.Status != "" {
					mu.Lock()
					out[id] = st
					mu.Unlock()
				}
			}
		})
	}
	for _, id := range ids {
		work <- id
	}
	close(work)
	wg.Wait()
	if len(out) == 0 {
		return nil
	}
	return out
}

// gatewayStatus reads one session's status and the version of its latest event (GET /sessions/{id}).
func (r *runner) gatewayStatus(ctx context.Context, id string) (truth.State, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, r.w.gatewayURL+"/sessions/"+url.PathEscape(id), nil)
	if err != nil {
		return truth.State{}, err
	}
	req.Header.Set("Authorization", "Bearer "+r.w.gatewayToken)
	resp, err := r.hc.Do(req)
	if err != nil {
		return truth.State{}, err
	}
	defer resp.Body.Close()
	var body map[string]any
	if err := json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(&body); err != nil {
		return truth.State{}, err
	}
	st := truth.State{Status: laravel.Status(user.StatusOf(user.Response{Status: resp.StatusCode, Body: body}))}
	if v, ok := body["version"].(float64); ok {
		st.Version = int64(v)
	}
	return st, nil
}

// duplicates compares what Laravel applied with what the gateway emitted: Laravel applying more
// items than the gateway produced events means some were applied twice. -1 when the gateway
// does not expose its event count.
func (r *runner) duplicates(ctx context.Context) int64 {
	if !r.measureLaravel || !r.measureGateway {
		return -1
	}
	p, err := scrape(ctx, r.hc, r.w.gatewayURL+"/metrics", r.w.gatewayToken)
	if err != nil {
		return -1
	}
	emitted := p.eventsEmitted()
	if emitted >= 0 {
		emitted += r.emittedOffset() // gateway processes stopped by process faults
	}
	st, err := r.w.admin.GetStatsRecent(ctx, 0)
	if err != nil || emitted < 0 {
		return -1
	}
	var applied int64
	for _, e := range st.Endpoints {
		applied += e.Updated
	}
	if d := applied - int64(emitted); d > 0 {
		return d
	}
	return 0
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
