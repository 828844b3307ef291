package run

import (
	"context"
	"fmt"
	"log/slog"
	"math"
	"net/http"
	"runtime"
	"strings"
	"sync"
	"time"

	"wagate/fakelaravel"
	"wagate/reports"
	"wagate/simulator/metrics"
)

// A probe is one measurement of the run that owns its state. The run calls sample every second
// (a probe that reads on the series clock does nothing there) and closeInterval at the end of
// each series interval, where the probe writes its figures into the interval's point and starts
// the next interval.
type probe interface {
	sample(ctx context.Context)
	closeInterval(ctx context.Context, p *reports.SeriesPoint)
}

// gatewayProcessProbe samples the gateway processes' CPU and RSS from /proc: gateway_cpu_percent,
// gateway_rss_bytes, and the interval's mean CPU and last RSS in the series; with several
// replicas these are their sums, and each replica's are gateway_replica_cpu_percent and
// gateway_replica_rss_bytes tagged replica:<its id>. A
// restarted gateway is a new process: its first reading is the baseline of its CPU, not a sample.
type gatewayProcessProbe struct {
	reg *metrics.Registry
	// gateways are the current gateway processes (none while a planned restart is under way).
	gateways func() []*child

	mu sync.Mutex
	// last is the previous reading of each process by pid.
	last     map[int]procSample
	cpuSum   float64
	cpuN     int
	rssBytes int64
}

// begin takes the first reading of the gateway processes (when the run started any).
func (g *gatewayProcessProbe) begin() {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.last = map[int]procSample{}
	for _, gw := range g.gateways() {
		if s, err := readProc(gw.Pid()); err == nil {
			g.last[gw.Pid()] = s
		}
	}
}

func (g *gatewayProcessProbe) sample(context.Context) {
	gws := g.gateways()
	replicas := len(gws) > 1
	var cpu float64
	var rss int64
	measured := false
	seen := map[int]bool{}
	g.mu.Lock()
	if g.last == nil {
		g.last = map[int]procSample{}
	}
	for _, gw := range gws {
		if gw.exited() {
			continue
		}
		s, err := readProc(gw.Pid())
		if err != nil {
			continue
		}
		seen[gw.Pid()] = true
		prev, ok := g.last[gw.Pid()]
		g.last[gw.Pid()] = s
		rss += s.rssBytes
		if !ok {
			continue // a new process: this reading is its baseline
		}
		pct := cpuPercent(prev, s)
		cpu += pct
		measured = true
		if replicas {
			tags := metrics.Tags{"replica": gw.name}
			g.reg.Observe("gateway_replica_cpu_percent", pct, metrics.ContainsDefault, tags)
			g.reg.Set("gateway_replica_rss_bytes", float64(s.rssBytes), tags)
		}
	}
	for pid := range g.last {
		if !seen[pid] {
			delete(g.last, pid)
		}
	}
	if measured {
		g.cpuSum += cpu
		g.cpuN++
		g.rssBytes = rss
	}
	g.mu.Unlock()
	if measured {
		g.reg.Observe("gateway_cpu_percent", cpu, metrics.ContainsDefault, nil)
		g.reg.Set("gateway_rss_bytes", float64(rss), nil)
	}
}

func (g *gatewayProcessProbe) closeInterval(_ context.Context, p *reports.SeriesPoint) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.cpuN > 0 {
		p.GatewayCPUPercent = g.cpuSum / float64(g.cpuN)
	}
	g.cpuSum, g.cpuN = 0, 0
	p.GatewayRSSBytes = g.rssBytes
}

// realLaravelCPUProbe samples the CPU of the real Laravel app (laravel.real: php-fpm and nginx):
// laravel_cpu_percent and the interval's mean in the series.
type realLaravelCPUProbe struct {
	reg  *metrics.Registry
	real *realLaravel

	mu     sync.Mutex
	last   procSample
	cpuSum float64
	cpuN   int
}

func (l *realLaravelCPUProbe) sample(context.Context) {
	cpu, err := l.real.cpuTime()
	if err != nil {
		return
	}
	cur := procSample{at: time.Now(), cpu: cpu}
	l.mu.Lock()
	prev := l.last
	l.last = cur
	first := prev.at.IsZero()
	pct := cpuPercent(prev, cur)
	if !first {
		l.cpuSum += pct
		l.cpuN++
	}
	l.mu.Unlock()
	if !first {
		l.reg.Observe("laravel_cpu_percent", pct, metrics.ContainsDefault, nil)
	}
}

func (l *realLaravelCPUProbe) closeInterval(_ context.Context, p *reports.SeriesPoint) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.cpuN > 0 {
		p.LaravelCPUPercent = l.cpuSum / float64(l.cpuN)
	}
	l.cpuSum, l.cpuN = 0, 0
}

// gatewayMetricsProbe scrapes the gateway's /metrics every `every` (gatewayScrapeInterval):
// gateway_goroutines and outbox_depth, and their last values in the series; in batch mode also its
// batch send counters, whose change over each interval the series carries (GatewayBatchSends).
type gatewayMetricsProbe struct {
	reg        *metrics.Registry
	hc         *http.Client
	url, token string
	// every is the time between two scrapes (0: at every sample, each second); now is the clock
	// (time.Now when nil); scraped is when the last scrape began.
	every   time.Duration
	now     func() time.Time
	scraped time.Time

	mu                      sync.Mutex
	goroutines, outboxDepth float64
	// sends is the latest reading of the batch send counters, closed the one the last interval
	// ended on.
	sends, closed batchSendsReading
}

// batchSendsReading is one reading of a gateway's batch send counters.
type batchSendsReading struct {
	at time.Time
	// process is the gateway process's start time (process_start_time_seconds): a new one means
	// the counters restarted from zero.
	process              float64
	first, retries, held float64
}

// readBatchSends reads the batch send counters from a scrape; ok is false when the gateway
// exposes none (legacy mode).
func readBatchSends(p promSample, at time.Time) (batchSendsReading, bool) {
	first, ok := p["wagate_batch_first_attempts_total"]
	if !ok {
		return batchSendsReading{}, false
	}
	return batchSendsReading{at: at, process: p["process_start_time_seconds"], first: first,
		retries: p["wagate_batch_retries_total"], held: p["wagate_batch_retries_held_total"]}, true
}

// since returns the sends between an earlier reading and r: r's counts alone when the process
// restarted in between; nil when there is no earlier reading or no later one.
func (r batchSendsReading) since(prev batchSendsReading) *reports.BatchSends {
	if prev.at.IsZero() || !r.at.After(prev.at) {
		return nil
	}
	base := prev
	if r.process != prev.process || r.first < prev.first || r.retries < prev.retries || r.held < prev.held {
		base = batchSendsReading{} // a new process: its counts since it started
	}
	return &reports.BatchSends{Seconds: r.at.Sub(prev.at).Seconds(), First: int64(r.first - base.first),
		Retries: int64(r.retries - base.retries), Held: int64(r.held - base.held)}
}

// Scraping the gateway's /metrics costs the gateway CPU (a batch gateway's ~32 KB answer: ~1 ms
// per scrape, BenchmarkScrape), which the run measures as the gateway's own: at one scrape per
// second, ~3% of the gateway's CPU at seed-batch-100, where production's Prometheus scrapes every
// 15-30 s. So the probe scrapes every gatewayScrapeEvery, the report's figures need no more (the
// series points take the last reading; the goroutines per session are read at the plateau), and
// every second in runs with a fault schedule, whose outbox depth peaks (bin/faults-report) and
// recoveries are read at that resolution.
const (
	gatewayScrapeEvery       = 5 * time.Second
	gatewayScrapeEveryFaults = time.Second
)

// gatewayScrapeInterval is how often a run scrapes the gateway's /metrics: every second when
// it injects faults, else every gatewayScrapeEvery.
func gatewayScrapeInterval(faults int) time.Duration {
	if faults > 0 {
		return gatewayScrapeEveryFaults
	}
	return gatewayScrapeEvery
}

// due reports whether a scrape is due at now, and if so takes it: the first one always is, the
// next ones once every has passed (less a quarter second of the sampling ticker's jitter).
func (g *gatewayMetricsProbe) due(now time.Time) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	if !g.scraped.IsZero() && now.Sub(g.scraped) < g.every-250*time.Millisecond {
		return false
	}
	g.scraped = now
	return true
}

func (g *gatewayMetricsProbe) sample(ctx context.Context) {
	now := time.Now
	if g.now != nil {
		now = g.now
	}
	if !g.due(now()) {
		return
	}
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	p, err := scrape(ctx, g.hc, g.url+"/metrics", g.token)
	if err != nil {
		return
	}
	gor, ob := p.goroutines(), p.outboxDepth()
	sends, hasSends := readBatchSends(p, time.Now())
	g.mu.Lock()
	g.goroutines, g.outboxDepth = gor, ob
	if hasSends {
		g.sends = sends
	}
	g.mu.Unlock()
	if gor >= 0 {
		g.reg.Set("gateway_goroutines", gor, nil)
	}
	if ob >= 0 {
		g.reg.Set("outbox_depth", ob, nil)
	}
}

func (g *gatewayMetricsProbe) closeInterval(_ context.Context, p *reports.SeriesPoint) {
	g.mu.Lock()
	defer g.mu.Unlock()
	p.Goroutines = int(math.Max(g.goroutines, 0))
	p.OutboxDepth = int64(math.Max(g.outboxDepth, 0))
	if p.GatewayBatchSends = g.sends.since(g.closed); p.GatewayBatchSends != nil || g.closed.at.IsZero() {
		g.closed = g.sends
	}
}

// redisOpsProbe reads the operations per second of the redis-server the run started:
// redis_ops_per_sec.
type redisOpsProbe struct {
	reg *metrics.Registry
	// redis is the redis-server process (nil when the run did not start one); url reaches it.
	redis func() *child
	url   string
}

func (o *redisOpsProbe) sample(ctx context.Context) {
	if o.redis() == nil {
		return
	}
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	if ops, err := redisOpsPerSec(ctx, o.url); err == nil {
		o.reg.Set("redis_ops_per_sec", ops, nil)
	}
}

func (o *redisOpsProbe) closeInterval(context.Context, *reports.SeriesPoint) {}

// laravelRequestsProbe turns the change of fakelaravel's cumulative counters, read once per series
// interval, into Laravel's request metrics: laravel_reqs, laravel_reqs_failed, its latencies and
// laravel_requests_per_minute, whose final value (meanRate) is the mean rate over the intervals
// after the warmup while the users ran.
type laravelRequestsProbe struct {
	reg    *metrics.Registry
	admin  *fakelaravel.AdminClient
	warmup time.Duration
	// log receives failed reads of the counters (nil: none are logged).
	log *slog.Logger

	mu        sync.Mutex
	start     time.Time
	usersDone bool
	last      *fakelaravel.Stats
	lastRate  float64
	rates     []float64

	// hdrMu serializes the readings' histogram deltas, each of which replaces its series' base
	// in hdr (by metric and endpoint).
	hdrMu sync.Mutex
	hdr   map[string]*hdrBase
}

// begin reads the counters the first interval is measured from and starts the warmup clock.
func (l *laravelRequestsProbe) begin(ctx context.Context) {
	st, err := l.admin.GetStatsRecent(ctx, 0)
	l.mu.Lock()
	defer l.mu.Unlock()
	l.start = time.Now()
	if err == nil {
		l.last = &st
	}
}

// endOfUsers stops counting later intervals towards the mean rate.
func (l *laravelRequestsProbe) endOfUsers() {
	l.mu.Lock()
	l.usersDone = true
	l.mu.Unlock()
}

// perMinute is the latest interval's Laravel requests per minute.
func (l *laravelRequestsProbe) perMinute() float64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.lastRate
}

// meanRate is the mean requests per minute over the intervals counted; ok is false when none were.
func (l *laravelRequestsProbe) meanRate() (_ float64, ok bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.rates) == 0 {
		return 0, false
	}
	var sum float64
	for _, v := range l.rates {
		sum += v
	}
	return sum / float64(len(l.rates)), true
}

func (l *laravelRequestsProbe) sample(context.Context) {}

func (l *laravelRequestsProbe) closeInterval(ctx context.Context, p *reports.SeriesPoint) {
	if err := l.readInterval(ctx, p); err != nil && l.log != nil {
		l.log.Warn("fakelaravel stats", "err", err)
	}
}

// readInterval reads fakelaravel's counters and records the interval's requests by endpoint.
func (l *laravelRequestsProbe) readInterval(ctx context.Context, p *reports.SeriesPoint) error {
	st, err := l.admin.GetStatsRecent(ctx, 0)
	if err != nil {
		return fmt.Errorf("read fakelaravel's counters: %w", err)
	}
	l.advance(&st, p)
	return nil
}

// minRateWindow is the shortest window Laravel's request rate is measured over.
const minRateWindow = 500 * time.Millisecond

// advance makes cur the base of the next interval and records the change since the previous
// reading. A reading less than minRateWindow after it is left for the next interval: a read that
// came late (a stalled machine) would make its one or two requests a burst of tens per second.
func (l *laravelRequestsProbe) advance(cur *fakelaravel.Stats, p *reports.SeriesPoint) {
	l.mu.Lock()
	prev := l.last
	if prev != nil && cur.UptimeSeconds-prev.UptimeSeconds < minRateWindow.Seconds() {
		l.mu.Unlock()
		return
	}
	l.last = cur
	l.mu.Unlock()
	if prev != nil {
		l.record(prev, cur, p)
	}
}

// hdrBase is the base of metric's histogram at endpoint path; hdrMu is held.
func (l *laravelRequestsProbe) hdrBase(metric, path string) *hdrBase {
	key := metric + " " + path
	b := l.hdr[key]
	if b == nil {
		if l.hdr == nil {
			l.hdr = map[string]*hdrBase{}
		}
		b = &hdrBase{}
		l.hdr[key] = b
	}
	return b
}

// record turns the change of fakelaravel's cumulative counters into samples.
func (l *laravelRequestsProbe) record(prev, cur *fakelaravel.Stats, p *reports.SeriesPoint) {
	secs := cur.UptimeSeconds - prev.UptimeSeconds
	if secs <= 0 {
		secs = 1
	}
	var total float64
	for name, e := range cur.Endpoints {
		pe := prev.Endpoints[name]
		n := float64(e.Requests - pe.Requests)
		if n <= 0 {
			continue
		}
		path := laravelEndpoints[name]
		if path == "" {
			path = name
		}
		t := metrics.Tags{"endpoint": path}
		l.reg.Add("laravel_reqs", n, t)
		if p.LaravelRequestsPerMin == nil {
			p.LaravelRequestsPerMin = map[string]float64{}
		}
		p.LaravelRequestsPerMin[path] = n / secs * 60
		total += n
		var ok, bad int64
		for code, c := range e.StatusCodes {
			d := c - pe.StatusCodes[code]
			if strings.HasPrefix(code, "2") {
				ok += d
			} else {
				bad += d
			}
		}
		l.reg.RateN("laravel_reqs_failed", bad, ok, t)
		for _, h := range []struct {
			metric    string
			prev, cur fakelaravel.Histogram
		}{{"laravel_queue_wait", pe.QueueWait, e.QueueWait}, {"laravel_req_duration", pe.Service, e.Service}, {"laravel_response_time", pe.Response, e.Response}} {
			l.hdrMu.Lock()
			histDelta(l.reg, l.hdrBase(h.metric, path), h.metric, h.prev, h.cur, t)
			l.hdrMu.Unlock()
			// The load generator's pollers run between histograms: each takes ~0.5 ms of its
			// one processor (BenchmarkHistDelta), a reading of every endpoint's several.
			runtime.Gosched()
		}
	}
	perMin := total / secs * 60
	l.mu.Lock()
	l.lastRate = perMin
	if !l.usersDone && time.Since(l.start) >= l.warmup+time.Duration(secs*float64(time.Second)) {
		l.rates = append(l.rates, perMin)
	}
	l.mu.Unlock()
	l.reg.Set("laravel_requests_per_minute", perMin, nil)
}
