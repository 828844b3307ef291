package run

// The run's measurements over time: the probes sampled every second and the report's series
// point every series interval.

import (
	"context"
	"time"

	"wagate/fakelaravel"
	"wagate/gateway/laravel"
	"wagate/reports"
	"wagate/simulator/metrics"
)

// startProbes creates the run's probes and takes their first readings, the baselines of the
// first interval.
func (r *runner) startProbes(ctx context.Context) {
	gatewayProcess := &gatewayProcessProbe{reg: r.reg, gateways: r.gatewayProcesses}
	gatewayProcess.begin()
	r.probes = []probe{gatewayProcess}
	if r.w.real != nil {
		r.probes = append(r.probes, &realLaravelCPUProbe{reg: r.reg, real: r.w.real})
	}
	if r.measureGateway {
		// The gateway's own metrics: in cluster mode the first replica's (the front would answer
		// from a different replica at each scrape).
		metricsURL := r.w.gatewayURL
		if r.w.cluster != nil {
			metricsURL = r.w.cluster.replicas[0].url()
		}
		r.probes = append(r.probes,
			&gatewayMetricsProbe{reg: r.reg, hc: r.hc, url: metricsURL, token: r.w.gatewayToken,
				every: gatewayScrapeInterval(len(r.f.Faults))},
			&gatewayLatencyProbe{reg: r.reg, hc: r.hc, url: metricsURL, token: r.w.gatewayToken},
			&redisOpsProbe{reg: r.reg, redis: r.redisChild, url: r.w.redisURL})
	}
	if !r.measureLaravel {
		r.log.Info("fakelaravel is shared with other instances: instance 0 reports its request counts")
		return
	}
	r.laravelRequests = r.newLaravelRequestsProbe()
	r.laravelRequests.begin(ctx)
	// Laravel's counters are read first, at the interval's end: a probe before them waiting on a
	// paused gateway (SIGSTOP) would otherwise move their read late and shorten the next window
	// to milliseconds, whose one or two requests then read as a storm of tens per second.
	r.probes = append([]probe{r.laravelRequests}, r.probes...)
}

// newLaravelRequestsProbe measures Laravel's requests into the run's registry.
func (r *runner) newLaravelRequestsProbe() *laravelRequestsProbe {
	return &laravelRequestsProbe{reg: r.reg, admin: r.w.admin, warmup: r.f.Warmup.Std(), log: r.log}
}

// sampleEverySecond stops the users when the gateway process died, samples every probe and
// records sessions_connected.
func (r *runner) sampleEverySecond(ctx context.Context) {
	gw := r.gatewayChild() // nil during a planned restart
	if r.w.cluster != nil {
		gw = r.w.cluster.deadReplica() // a replica not stopped on purpose that exited
	}
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
