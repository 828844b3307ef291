package fakelaravel

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// CapacityModel describes PHP-FPM behind nginx: how many requests Laravel serves at once, what
// each costs, and what happens to the excess. A request that arrives is put in the listen backlog
// (nginx's connect to FPM succeeds); if the backlog is full it gets a 502 at once. One of Workers
// FPM workers takes it and serves it: BootstrapCPU for the framework (LookupCPU instead for a read,
// the GET session lookup), then PerRowCPU for every row it reads or writes, each scaled by a random factor in [1-Jitter, 1+Jitter]. The requests in service share
// Cores CPU cores processor-sharing style. nginx answers 504 when a request has waited and been
// served for longer than ProxyTimeout; FPM still finishes an abandoned request (it is applied).
//
// CPU is simulated with timers: the model bounds concurrency with a real worker pool and delays
// completions, it does not burn the host's CPU. A request's CPU demand is served from the moment
// a worker takes it, while fakelaravel does its own work on it (SQLite, JSON), so a request is
// served in the time its model says and not that plus fakelaravel's overhead; completions follow
// the model to about a tenth of a millisecond (see cpuShare).
type CapacityModel struct {
	// Cores is the number of CPU cores available to FPM. Requests in service share them: with n
	// requests in service each progresses at min(1, Cores/n), so throughput saturates near
	// Cores / (CPU per request) when Workers > Cores. Zero means every worker has a core of its own
	// (throughput saturates at Workers / service time).
	Cores float64
	// BootstrapCPU is the CPU one request costs before touching any row (framework bootstrap).
	BootstrapCPU time.Duration
	// PerRowCPU is the CPU each written row (batch item) adds; the session lookup reads one row.
	PerRowCPU time.Duration
	// LookupCPU replaces BootstrapCPU for reads (GET /api/whatsapp/sessions/{id}): the real app
	// spends less on a lookup than on a write's validation, transaction and idempotency record.
	// Zero means the same as BootstrapCPU (the model before reads and writes were told apart).
	LookupCPU time.Duration
	// Jitter scales every CPU demand by a uniform factor in [1-Jitter, 1+Jitter]; 0 <= Jitter < 1.
	Jitter float64
	// Workers is pm.max_children: at most this many requests are served at once.
	Workers int
	// Backlog is listen.backlog: requests waiting for a worker beyond it get a 502 at once.
	Backlog int
	// ProxyTimeout is nginx's fastcgi_read_timeout: a request not answered within it (queue wait
	// plus service) gets a 504. Zero means no timeout.
	ProxyTimeout time.Duration
	// LockWaitShare is the share of writes (not lookups) that find the database's write lock
	// taken and wait for it on their worker without using CPU, as SQLite's busy handler sleeps:
	// LockWait, or per LockHold. A tail of slow writes that processor sharing alone does not
	// have. Zero means none.
	LockWaitShare float64
	LockWait      time.Duration
	// LockHold, when set, replaces the constant LockWait: such a write finds the lock held by a
	// holder of LockHold (a long transaction or a checkpoint), at a uniformly drawn point of its
	// hold, and polls for it as SQLite's busy handler does, sleeping BusyHandlerDelay after each
	// try; it waits the first sum of those sleeps that outlasts the rest of the hold (BusyWait).
	// Zero means the constant LockWait.
	LockHold time.Duration
}

// busyDelays are the sleeps of SQLite's default busy handler (sqliteDefaultBusyCallback, built
// with usleep) after each failed try to take a lock; after the last it keeps sleeping the last.
var busyDelays = [...]time.Duration{1, 2, 5, 10, 15, 20, 25, 25, 25, 50, 50, 100}

// BusyHandlerDelay is how long SQLite's default busy handler sleeps after failed try retry+1
// (retry counted from 0): 1, 2, 5, 10, 15, 20, 25, 25, 25, 50, 50, then 100 ms.
func BusyHandlerDelay(retry int) time.Duration {
	return busyDelays[min(max(retry, 0), len(busyDelays)-1)] * time.Millisecond
}

// BusyWait is how long a writer waits under SQLite's busy handler for a lock that stays held for
// rest more: the first sum of the handler's sleeps (1, 3, 8, 18, 33, 53, 78 ms ...) that is at
// least rest; zero when rest <= 0.
func BusyWait(rest time.Duration) time.Duration {
	var sum time.Duration
	for i := 0; sum < rest; i++ {
		sum += BusyHandlerDelay(i)
	}
	return sum
}

// LockTail is the wait of a write that found the write lock taken, given a uniform draw u in
// [0, 1) (the point of the holder's hold it arrived at): LockWait, or with LockHold the busy
// handler's wait for the rest of the hold, BusyWait((1-u) x LockHold).
func (m CapacityModel) LockTail(u float64) time.Duration {
	if m.LockHold > 0 {
		return BusyWait(time.Duration((1 - u) * float64(m.LockHold)))
	}
	return m.LockWait
}

// HasLockTail reports whether a share of the writes waits for the write lock.
func (m CapacityModel) HasLockTail() bool {
	return m.LockWaitShare > 0 && (m.LockWait > 0 || m.LockHold > 0)
}

// Validate reports the first parameter that is out of range.
func (m CapacityModel) Validate() error {
	switch {
	case m.Cores < 0:
		return fmt.Errorf("capacity: cores %v < 0", m.Cores)
	case m.BootstrapCPU < 0 || m.PerRowCPU < 0 || m.LookupCPU < 0:
		return fmt.Errorf("capacity: negative CPU cost (bootstrap %v, per row %v, lookup %v)", m.BootstrapCPU, m.PerRowCPU, m.LookupCPU)
	case m.Jitter < 0 || m.Jitter >= 1:
		return fmt.Errorf("capacity: jitter %v outside [0, 1)", m.Jitter)
	case m.Workers < 1:
		return fmt.Errorf("capacity: workers %d < 1", m.Workers)
	case m.Backlog < 0:
		return fmt.Errorf("capacity: backlog %d < 0", m.Backlog)
	case m.ProxyTimeout < 0:
		return fmt.Errorf("capacity: proxy timeout %v < 0", m.ProxyTimeout)
	case m.LockWaitShare < 0 || m.LockWaitShare > 1 || m.LockWait < 0 || m.LockHold < 0:
		return fmt.Errorf("capacity: lock wait share %v outside [0, 1], or lock wait %v or lock hold %v < 0", m.LockWaitShare, m.LockWait, m.LockHold)
	}
	return nil
}

// ServiceCPU is the mean CPU demand of one request that writes rows rows.
func (m CapacityModel) ServiceCPU(rows int) time.Duration {
	return m.BootstrapCPU + time.Duration(rows)*m.PerRowCPU
}

// LookupCost is the CPU a read costs before its row: LookupCPU, or BootstrapCPU when LookupCPU is
// zero.
func (m CapacityModel) LookupCost() time.Duration {
	if m.LookupCPU > 0 {
		return m.LookupCPU
	}
	return m.BootstrapCPU
}

// ForLookups returns the model in which every request costs what a read costs: BootstrapCPU set
// to LookupCost, and no lock wait. ServiceCPU(1) and SaturationThroughput(1) of the result describe a workload of
// session lookups (each reads one row).
func (m CapacityModel) ForLookups() CapacityModel {
	m.BootstrapCPU = m.LookupCost()
	m.LookupCPU = 0
	m.LockWaitShare, m.LockWait, m.LockHold = 0, 0, 0 // a lookup takes no write lock
	return m
}

// SaturationThroughput is the requests per second the model serves at most when every request
// writes rows rows: Workers / ServiceCPU when each worker has its own core (Cores = 0 or
// Cores >= Workers), Cores / ServiceCPU otherwise. It is +Inf for a zero service time.
func (m CapacityModel) SaturationThroughput(rows int) float64 {
	s := m.ServiceCPU(rows).Seconds()
	par := float64(m.Workers)
	if m.Cores > 0 && m.Cores < par {
		par = m.Cores
	}
	return par / s
}

// outcome is what became of a request handed to the pool.
type outcome int

const (
	outcomeServed   outcome = iota // a worker served it and the response arrived in time
	outcomeRejected                // backlog full: 502 at once
	outcomeTimedOut                // not answered within the proxy timeout: 504
	outcomeCanceled                // the client went away before the answer
	outcomeStopped                 // the pool stopped before serving it
)

// jobFunc is the PHP part of a request. It runs on a worker; it must call burn with the number of
// rows it reads or writes (burn only counts them: the bootstrap or lookup CPU is served while the
// job runs, PerRowCPU per row is added when it returns, and the pool answers once both are
// served).
type jobFunc func(ctx context.Context, burn func(rows int)) *response

// poolResult is the pool's answer to one request.
type poolResult struct {
	outcome   outcome
	resp      *response     // set when outcomeServed
	queueWait time.Duration // time in the backlog (also set for timed-out requests once served)
	service   time.Duration // time on a worker
}

type fpmJob struct {
	fn       jobFunc
	read     bool // a lookup: charged LookupCost instead of BootstrapCPU
	enqueued time.Time
	result   chan poolResult // buffered 1: the worker never blocks on an abandoned job
}

// fpmPool is the worker pool of the capacity model: Workers goroutines take jobs from a queue of
// Backlog places, and charge CPU through a processor-sharing CPU.
type fpmPool struct {
	model CapacityModel
	queue chan *fpmJob
	cpu   *cpuShare

	rngMu sync.Mutex
	rng   *rand.Rand

	busy       atomic.Int64 // workers serving a job now
	busyNanos  atomic.Int64 // total worker busy time of finished jobs
	abandoned  atomic.Int64 // jobs served after their request had timed out or gone away
	stop       chan struct{}
	stopOnce   sync.Once
	wg         sync.WaitGroup
	ctx        context.Context
	cancelWork context.CancelFunc
}

// errPoolConfig wraps invalid capacity parameters.
var errPoolConfig = errors.New("invalid capacity model")

func newPool(m CapacityModel, seed uint64) (*fpmPool, error) {
	if err := m.Validate(); err != nil {
		return nil, fmt.Errorf("%w: %w", errPoolConfig, err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	p := &fpmPool{
		model:      m,
		queue:      make(chan *fpmJob, m.Backlog),
		rng:        rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15)),
		stop:       make(chan struct{}),
		ctx:        ctx,
		cancelWork: cancel,
	}
	// Without a core limit (or with a core per worker) every request in service runs at full
	// speed: the same CPU with one core per worker.
	cores := float64(m.Workers)
	if m.Cores > 0 && m.Cores < cores {
		cores = m.Cores
	}
	p.cpu = newCPUShare(cores)
	p.wg.Add(m.Workers)
	for range m.Workers {
		go p.work()
	}
	return p, nil
}

// close stops the workers after their current job; queued jobs get outcomeStopped.
func (p *fpmPool) close() {
	p.stopOnce.Do(func() {
		close(p.stop)
		p.cancelWork()
		p.wg.Wait()
		for {
			select {
			case j := <-p.queue:
				j.result <- poolResult{outcome: outcomeStopped}
			default:
				return
			}
		}
	})
}

// do hands fn to the pool the way nginx hands a request to FPM and waits for the answer, the
// proxy timeout or ctx, whichever comes first. read marks a lookup (charged LookupCost instead of
// BootstrapCPU).
func (p *fpmPool) do(ctx context.Context, read bool, fn jobFunc) poolResult {
	j := &fpmJob{fn: fn, read: read, enqueued: time.Now(), result: make(chan poolResult, 1)}
	select {
	case <-p.stop:
		return poolResult{outcome: outcomeStopped}
	default:
	}
	select {
	case p.queue <- j:
	default:
		return poolResult{outcome: outcomeRejected}
	}
	var timeout <-chan time.Time
	if p.model.ProxyTimeout > 0 {
		t := time.NewTimer(p.model.ProxyTimeout)
		defer t.Stop()
		timeout = t.C
	}
	select {
	case r := <-j.result:
		return r
	case <-timeout:
		return poolResult{outcome: outcomeTimedOut, queueWait: time.Since(j.enqueued)}
	case <-ctx.Done():
		return poolResult{outcome: outcomeCanceled, queueWait: time.Since(j.enqueued)}
	}
}

func (p *fpmPool) work() {
	defer p.wg.Done()
	for {
		select {
		case <-p.stop:
			return
		case j := <-p.queue:
			p.serve(j)
		}
	}
}

func (p *fpmPool) serve(j *fpmJob) {
	start := time.Now()
	p.busy.Add(1)
	boot := p.model.BootstrapCPU
	if j.read {
		boot = p.model.LookupCost()
	}
	// The job's demand (the bootstrap or lookup, then the rows it reports, each scaled by its own
	// jitter draw, as calibrate.Simulate draws them) starts being served by the shared CPU when
	// the job starts, while fakelaravel does the job's own work (SQLite, JSON): that real work
	// stands for part of the PHP CPU it simulates, and the request is answered when both are
	// done. Charging it on top would make every request slower than its model by fakelaravel's
	// overhead. One wait per request also pays the timer's wake-up delay once (see cpuShare).
	dm := p.cpu.begin(p.jitter(boot))
	rows := 0
	resp := j.fn(p.ctx, func(n int) { rows += n })
	p.cpu.extend(dm, p.jitter(time.Duration(rows)*p.model.PerRowCPU))
	p.cpu.wait(p.ctx, dm)
	if !j.read {
		if wait, ok := p.lockWait(); ok {
			sleepCtx(p.ctx, wait)
		}
	}
	p.busy.Add(-1)
	service := time.Since(start)
	p.busyNanos.Add(int64(service))
	select {
	case j.result <- poolResult{outcome: outcomeServed, resp: resp, queueWait: start.Sub(j.enqueued), service: service}:
	default:
	}
	if p.model.ProxyTimeout > 0 && time.Since(j.enqueued) > p.model.ProxyTimeout {
		p.abandoned.Add(1)
	}
}

// lockWait draws whether a write waits for the write lock (LockWaitShare), and how long.
func (p *fpmPool) lockWait() (time.Duration, bool) {
	if !p.model.HasLockTail() {
		return 0, false
	}
	p.rngMu.Lock()
	defer p.rngMu.Unlock()
	if p.rng.Float64() >= p.model.LockWaitShare {
		return 0, false
	}
	u := 0.0
	if p.model.LockHold > 0 {
		u = p.rng.Float64()
	}
	return p.model.LockTail(u), true
}

// jitter scales d by a uniform factor in [1-Jitter, 1+Jitter].
func (p *fpmPool) jitter(d time.Duration) time.Duration {
	if d <= 0 || p.model.Jitter <= 0 {
		return d
	}
	p.rngMu.Lock()
	f := 1 + p.model.Jitter*(2*p.rng.Float64()-1)
	p.rngMu.Unlock()
	return time.Duration(float64(d) * f)
}

func sleepCtx(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
	}
}

// queued is the number of jobs waiting in the backlog.
func (p *fpmPool) queued() int { return len(p.queue) }

// cpuShare is a processor-sharing CPU of a fixed number of cores: n jobs in service each progress
// at min(1, cores/n). It tracks the virtual time V (CPU seconds delivered to each active job) and
// wakes the job with the smallest finishing V with a single timer.
//
// A Go timer fires late: an idle runtime sleeps in epoll with millisecond resolution, so a timer
// is typically 0.1-1 ms late (and under load the scheduler adds its own delay), and every late
// wake-up would add to a request's latency what the model does not have. cpuShare measures how
// late its timer fires (an exponentially weighted mean, lead), arms it guard = 3 x lead early, and
// sleeps the rest of the way with preciseSleep (nanosleep on Linux: microsecond resolution, no CPU
// burnt, no spinning). Under testing/synctest timers are exact, lead stays zero, preciseSleep is
// never called and the sharing is exact.
type cpuShare struct {
	cores float64
	// sleep waits precisely (preciseSleep; tests replace it).
	sleep func(time.Duration)

	mu       sync.Mutex
	v        float64 // virtual time: CPU seconds each active job has received
	last     time.Time
	active   []*cpuDemand
	timer    *time.Timer
	armed    time.Time     // when the timer is due (zero when stopped or fired)
	lead     time.Duration // mean lateness of the timer
	sleepers []time.Time   // when each tick sleeping in sleep wakes up
}

type cpuDemand struct {
	finishV  float64
	finished bool // done is closed
	done     chan struct{}
}

const (
	// maxGuard bounds how early the timer is armed (and so how long a precise sleep lasts).
	maxGuard = 2 * time.Millisecond
	// leadWeight is the weight of one wake-up's lateness in the mean.
	leadWeight = 0.05
)

func newCPUShare(cores float64) *cpuShare {
	c := &cpuShare{cores: cores, sleep: preciseSleep, last: time.Now()}
	c.timer = time.AfterFunc(time.Hour, c.tick)
	c.timer.Stop()
	return c
}

func (c *cpuShare) rate() float64 {
	n := float64(len(c.active))
	if n <= c.cores {
		return 1
	}
	return c.cores / n
}

// guard is how early the timer is armed before a job is due. Callers hold mu.
func (c *cpuShare) guard() time.Duration { return min(maxGuard, 3*c.lead) }

// advance moves V to now at the rate of the current set of jobs. Callers hold mu.
func (c *cpuShare) advance(now time.Time) {
	if len(c.active) > 0 {
		c.v += now.Sub(c.last).Seconds() * c.rate()
	}
	c.last = now
}

// covered reports whether a sleeping tick wakes up by t. Callers hold mu.
func (c *cpuShare) covered(t time.Time) bool {
	for _, w := range c.sleepers {
		if !w.After(t) {
			return true
		}
	}
	return false
}

// settle completes every job whose demand is met and returns the wall time until the next one is
// due (0 when none is left). A tick that will sleep precisely for a job due within sleepWithin
// passes it: settle then leaves the timer alone. Otherwise it arms the timer guard before the
// next job is due; when that job is due within guard and no sleeping tick wakes up in time for
// it, it has the timer fire at once (that tick then sleeps precisely). Callers hold mu.
func (c *cpuShare) settle(now time.Time, sleepWithin time.Duration) time.Duration {
	const eps = 1e-9
	kept := c.active[:0]
	for _, d := range c.active {
		if d.finishV <= c.v+eps {
			d.finished = true
			close(d.done)
			continue
		}
		kept = append(kept, d)
	}
	clear(c.active[len(kept):])
	c.active = kept
	if len(c.active) == 0 {
		c.timer.Stop()
		c.armed = time.Time{}
		c.v = 0 // no job to compare with: start afresh (keeps the float arithmetic exact)
		return 0
	}
	next := c.active[0].finishV
	for _, d := range c.active[1:] {
		next = min(next, d.finishV)
	}
	wait := max(time.Duration((next-c.v)/c.rate()*float64(time.Second)), time.Microsecond)
	switch g := c.guard(); {
	case wait <= sleepWithin:
	case wait > g:
		c.armed = now.Add(wait - g)
		c.timer.Reset(wait - g)
	case c.covered(now.Add(wait)):
	default:
		c.armed = time.Time{}
		c.timer.Reset(0)
	}
	return wait
}

func (c *cpuShare) tick() {
	c.mu.Lock()
	defer c.mu.Unlock()
	now := time.Now()
	// The timer was armed the guard in force then early: a job due within it is slept for, even
	// if the lateness just measured shrinks the guard.
	within := c.guard()
	if !c.armed.IsZero() && !now.Before(c.armed) {
		late := now.Sub(c.armed)
		c.lead = min(maxGuard, c.lead+time.Duration(leadWeight*float64(late-c.lead)))
		c.armed = time.Time{}
	}
	within = max(within, c.guard())
	for {
		c.advance(now)
		wait := c.settle(now, within)
		if wait <= 0 || wait > within || c.covered(now.Add(wait)) {
			// Nothing left, the timer is armed, or a sleeping tick wakes up in time.
			return
		}
		// The next job is due sooner than the timer can be trusted: sleep precisely.
		wake := now.Add(wait)
		c.sleepers = append(c.sleepers, wake)
		c.mu.Unlock()
		c.sleep(wait)
		c.mu.Lock()
		if i := slices.Index(c.sleepers, wake); i >= 0 {
			c.sleepers = slices.Delete(c.sleepers, i, i+1)
		}
		now = time.Now()
	}
}

// use blocks until the caller has received d of CPU, or ctx ends.
func (c *cpuShare) use(ctx context.Context, d time.Duration) { c.wait(ctx, c.begin(d)) }

// begin starts serving a demand of d and returns it (see wait and extend).
func (c *cpuShare) begin(d time.Duration) *cpuDemand {
	c.mu.Lock()
	defer c.mu.Unlock()
	now := time.Now()
	c.advance(now)
	dm := &cpuDemand{finishV: c.v + max(d, 0).Seconds(), done: make(chan struct{})}
	c.active = append(c.active, dm)
	c.settle(now, 0)
	return dm
}

// extend adds d to demand dm: to its remaining demand while it is served, or as a new demand
// served after it when it is complete already.
func (c *cpuShare) extend(dm *cpuDemand, d time.Duration) {
	if d <= 0 {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	now := time.Now()
	c.advance(now)
	if dm.finished {
		*dm = cpuDemand{finishV: c.v + d.Seconds(), done: make(chan struct{})}
		c.active = append(c.active, dm)
	} else {
		dm.finishV += d.Seconds()
	}
	c.settle(now, 0)
}

// wait blocks until dm was served, or ctx ends.
func (c *cpuShare) wait(ctx context.Context, dm *cpuDemand) {
	c.mu.Lock()
	done := dm.done
	c.mu.Unlock()
	select {
	case <-done:
	case <-ctx.Done():
	}
}
