package run

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"wagate/reports"
	"wagate/simulator/metrics"
	"wagate/simulator/user"
)

// DriverWorld is a scenario's world (fakewa, fakelaravel, Redis, the gateway, or the external
// parts Options name) started for a driver other than the scenario's own users — k6 scripts
// through k6/x/wagate — with the users' environment ready: the measured gateway API client, the
// phones, Laravel's view and the ground-truth ledger, all recording into the driver's registry.
type DriverWorld struct {
	r      *runner
	env    *user.Env
	bg     context.Context
	stopBG context.CancelFunc
	// beginOnce starts the load's measurements and faults once (Begin).
	beginOnce sync.Once
	endOnce   sync.Once
	// stopFaults ends the fault schedule's players not begun yet; faultWG waits for them.
	stopFaults context.CancelFunc
	faultWG    sync.WaitGroup
	bgWG       sync.WaitGroup
	once       sync.Once
	// sampleMu orders Laravel samples and the final rate; sampled is set once the rate is final.
	sampleMu sync.Mutex
	sampled  bool
}

// StartDriverWorld starts the world of o.Scenario (o.Overrides and the external parts applied as
// Run does; o.Out receives the children's logs) recording into reg.
func StartDriverWorld(ctx context.Context, o Options, reg *metrics.Registry) (*DriverWorld, error) {
	log := o.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	r, err := newRunner(o, log)
	if err != nil {
		return nil, err
	}
	f := r.f
	r.reg = reg
	r.w = &world{log: log}
	if err := r.w.start(ctx, f, o.BinDir, o.Out); err != nil {
		return nil, fmt.Errorf("start the world: %w", err)
	}
	r.watchWorld()
	r.laravelRequests = r.newLaravelRequestsProbe()
	apiClient := &http.Client{Timeout: 60 * time.Second, Transport: &http.Transport{
		MaxConnsPerHost: maxGatewayConns, MaxIdleConns: 256, MaxIdleConnsPerHost: 256, IdleConnTimeout: 90 * time.Second,
	}}
	d := &DriverWorld{r: r, env: &user.Env{
		API:       user.NewAPI(r.w.gatewayURL, r.w.gatewayToken, apiClient, reg),
		Phone:     r.phones,
		Laravel:   r.laravel,
		Ledger:    r.ledger,
		Reg:       reg,
		Seed:      f.Seed,
		MessageTo: "15550100000",
		Messages:  r.phones.messages, // the customers' messages k6/x/wagate's receive writes
	}}
	bg, stop := context.WithCancel(context.WithoutCancel(ctx))
	d.bg, d.stopBG = bg, stop
	d.stopFaults = func() {}
	d.bgWG.Go(func() { r.every(bg, 100*time.Millisecond, func() { _ = r.phones.poll(bg) }) })
	d.bgWG.Go(func() { r.every(bg, 250*time.Millisecond, func() { _ = r.laravel.poll(bg) }) })
	return d, nil
}

// finalLaravelRate stops the Laravel sampling and sets laravel_requests_per_minute's value to the
// mean rate while the script ran (min/max over intervals), as Run's report does.
func (d *DriverWorld) finalLaravelRate() {
	d.sampleMu.Lock()
	defer d.sampleMu.Unlock()
	d.sampled = true
	if mean, ok := d.r.laravelRequests.meanRate(); ok {
		d.r.reg.Set("laravel_requests_per_minute", mean, nil)
	}
}

// sampleLaravel records the change of fakelaravel's counters since the previous sample.
func (d *DriverWorld) sampleLaravel(ctx context.Context) {
	d.sampleMu.Lock()
	defer d.sampleMu.Unlock()
	if d.sampled {
		return
	}
	_ = d.r.laravelRequests.readInterval(ctx, &reports.SeriesPoint{LaravelRequestsPerMin: map[string]float64{}})
}

// Begin marks the start of the load (the script's scenarios): the scenario's warmup, the Laravel
// request rates and the fault schedule are timed from it, as Run times them from its users' start.
func (d *DriverWorld) Begin(ctx context.Context) {
	r := d.r
	d.beginOnce.Do(func() {
		r.laravelRequests.begin(ctx)
		r.mu.Lock()
		r.start = time.Now()
		r.mu.Unlock()
		// Laravel's request counts, per series interval, as Run measures them (laravel_reqs,
		// laravel_requests_per_minute after the warmup, Laravel's latencies).
		d.bgWG.Go(func() { r.every(d.bg, r.f.SeriesInterval.Std(), func() { d.sampleLaravel(d.bg) }) })
		faults, stopFaults := context.WithCancel(d.bg)
		d.stopFaults = stopFaults
		for _, flt := range r.f.Faults {
			d.faultWG.Go(func() { r.playFault(faults, flt) })
		}
	})
}

// End marks the end of the load (the script's scenarios ended): later Laravel samples no longer
// count towards laravel_requests_per_minute's value, and faults not begun yet are cancelled. As
// Run does at its users' end, the interval under way is not read here: a reading now closes a
// short interval whose rate counts in the mean as much as a whole interval's (seed-batch-100.js:
// 2 requests in the last second, 120/min, made the mean 165.4 instead of 171; the YAML run's 173.1).
func (d *DriverWorld) End(_ context.Context) {
	d.endOnce.Do(func() {
		d.r.laravelRequests.endOfUsers()
		d.stopFaults()
		d.faultWG.Wait()
	})
}

// Env is the users' environment of this world.
func (d *DriverWorld) Env() *user.Env { return d.env }

// GroundTruth waits for the scenario's drain and the gateway's outbox, then compares Laravel's
// final state with what the driver caused (Converge, Finish: lost_updates, stale_overwrites, ...
// recorded into the registry) and counts duplicate applications (-1 when not measurable).
func (d *DriverWorld) GroundTruth(ctx context.Context) (reports.GroundTruth, error) {
	r := d.r
	d.Begin(ctx) // a script that never started its scenarios
	d.End(ctx)
	defer d.finalLaravelRate()
	select {
	case <-time.After(r.f.Drain.Std()):
	case <-ctx.Done():
		return reports.GroundTruth{}, ctx.Err()
	}
	r.settleOutbox(ctx)
	fctx, cancel := context.WithTimeout(ctx, convergeLimit+30*time.Second)
	defer cancel()
	_ = r.phones.poll(fctx)
	gatewayStates, err := r.ledger.Converge(fctx, r.gatewayStates, r.laravel.poll, convergeLimit)
	if err != nil {
		r.log.Warn("final Laravel state", "err", err)
	}
	t := r.ledger.Finish(gatewayStates, time.Now())
	for _, m := range t.Mismatches {
		r.log.Warn("ground truth", "mismatch", m)
	}
	r.judgeMessages(fctx) // messages_lost, _duplicated, _out_of_order when customers wrote
	dup := r.duplicates(fctx)
	if dup >= 0 {
		r.reg.Add("duplicate_applications", float64(dup), nil)
	}
	return reports.GroundTruth{Sessions: t.Sessions, LostUpdates: t.Lost, StaleOverwrites: t.Stale, DuplicateApplications: max(dup, 0)}, nil
}

// Stop ends the background loops and the world. It is safe to call more than once.
func (d *DriverWorld) Stop() {
	d.once.Do(func() {
		d.stopFaults()
		d.faultWG.Wait()
		d.stopBG()
		d.bgWG.Wait()
		d.r.w.stop()
	})
}
