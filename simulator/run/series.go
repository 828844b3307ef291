package run

// The run's measurements over time: the probes sampled every second and the report's series
// point every series interval.

import (
	"context"
	"math"
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
// buckets (each sample at its bucket's upper bound). base is the series' HDR base (nil: prev's
// HDR is decoded again).
func histDelta(reg *metrics.Registry, base *hdrBase, name string, prev, cur fakelaravel.Histogram, tags metrics.Tags) {
	if samples, ok := base.delta(prev, cur); ok {
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

// hdrBase is the last reading of one of fakelaravel's cumulative HDR histograms (one endpoint's
// queue wait, say), the base the next reading is compared with: each reading is decoded once,
// and only the buckets whose count changed are turned into values. hdrhistogram-go's
// Distribution walks every bucket up to the largest value and allocates a bar for each; two of
// them per histogram, three histograms per endpoint, ran 12-14 ms at a time on the load
// generator's one processor every interval, and the pollers whose answers had arrived waited
// behind it (an execution trace of seed-batch-1000 at 98-110 s).
type hdrBase struct {
	counts []int64
}

// delta returns the samples in cur's HDR histogram that are not in the base (prev's when b is
// nil or has none yet; both from one fakelaravel process, so the base's buckets are a subset of
// cur's), each at the middle of its HDR bucket, and makes cur the base; ok is false when cur
// carries no HDR histogram or it cannot be decoded.
func (b *hdrBase) delta(prev, cur fakelaravel.Histogram) (_ []deltaSamples, ok bool) {
	c, err := cur.DecodeHDR()
	if err != nil || c == nil {
		return nil, false
	}
	snap := c.Export()
	var before []int64
	if b != nil && len(b.counts) == len(snap.Counts) {
		before = b.counts
	} else if p, err := prev.DecodeHDR(); err == nil && p != nil {
		before = p.Export().Counts
	}
	if b != nil {
		b.counts = snap.Counts
	}
	g := newHDRGeometry(snap.LowestTrackableValue, snap.SignificantFigures)
	var out []deltaSamples
	for i, n := range snap.Counts {
		if i < len(before) {
			n -= before[i]
		}
		if n > 0 {
			from, to := g.bucket(i)
			out = append(out, deltaSamples{ms: float64(from+to) / 2 / 1000, n: n})
		}
	}
	return out, true
}

// hdrGeometry is the layout of an HDR histogram's counts (the HdrHistogram format, as
// hdrhistogram-go lays it out): which values each count index stands for.
type hdrGeometry struct {
	unitMagnitude, halfCountMagnitude int64
}

// newHDRGeometry is the layout of a histogram of values from lowest with sigFigs significant
// digits.
func newHDRGeometry(lowest, sigFigs int64) hdrGeometry {
	// Unit resolution up to 2 x 10^sigFigs, in a power-of-two number of sub-buckets.
	subBucketCountMagnitude := int64(math.Ceil(math.Log2(2 * math.Pow10(int(sigFigs)))))
	g := hdrGeometry{halfCountMagnitude: max(subBucketCountMagnitude, 1) - 1}
	if lowest > 1 {
		g.unitMagnitude = int64(math.Floor(math.Log2(float64(lowest))))
	}
	return g
}

// bucket returns the lowest and highest value count index i stands for.
func (g hdrGeometry) bucket(i int) (from, to int64) {
	halfCount := int64(1) << g.halfCountMagnitude
	bucket := int64(i)>>g.halfCountMagnitude - 1
	sub := int64(i)&(halfCount-1) + halfCount
	if bucket < 0 { // the first half of the first bucket
		bucket, sub = 0, sub-halfCount
	}
	from = sub << (bucket + g.unitMagnitude)
	return from, from + int64(1)<<(bucket+g.unitMagnitude) - 1
}
