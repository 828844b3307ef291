package fakelaravel

import (
	"context"
	"encoding/json"
	"math"
	"slices"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"
)

// loadResult counts what became of an open-loop load offered to a pool.
type loadResult struct {
	served, rejected, timedOut int
	servedInWindow             int // completions inside the offered window
	maxWait                    time.Duration
	window                     time.Duration
}

func (r loadResult) throughput() float64 { return float64(r.servedInWindow) / r.window.Seconds() }

// offer sends rate requests per second for window (virtual time), each writing rows rows, and
// waits for every answer. It must run inside a synctest bubble.
func offer(t *testing.T, m CapacityModel, rate float64, window time.Duration, rows int) loadResult {
	t.Helper()
	p, err := newPool(m, 1)
	if err != nil {
		t.Fatal(err)
	}
	defer p.close()
	start := time.Now()
	interval := time.Duration(float64(time.Second) / rate)
	n := int(window / interval)
	var mu sync.Mutex
	res := loadResult{window: window}
	var wg sync.WaitGroup
	for range n {
		wg.Go(func() {
			r := p.do(context.Background(), false, func(ctx context.Context, burn func(int)) *response {
				burn(rows)
				return &response{status: 200}
			})
			mu.Lock()
			defer mu.Unlock()
			switch r.outcome {
			case outcomeServed:
				res.served++
				if time.Since(start) <= window {
					res.servedInWindow++
				}
				res.maxWait = max(res.maxWait, r.queueWait)
			case outcomeRejected:
				res.rejected++
			case outcomeTimedOut:
				res.timedOut++
			}
		})
		time.Sleep(interval)
	}
	wg.Wait()
	return res
}

func near(got, want, tolerance float64) bool { return math.Abs(got-want) <= tolerance*want }

// With W workers each on its own core and service time S, throughput follows the offered load up
// to W/S; beyond it the excess queues, and once the backlog is full it gets 502s.
func TestThroughputSaturatesNearWorkersOverServiceTime(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		m := CapacityModel{Workers: 4, BootstrapCPU: 10 * time.Millisecond, Backlog: 40, ProxyTimeout: time.Minute}
		capacity := m.SaturationThroughput(0) // 4 / 10 ms = 400/s
		if capacity != 400 {
			t.Fatalf("SaturationThroughput = %v, want 400", capacity)
		}
		half := offer(t, m, capacity/2, 2*time.Second, 0)
		if half.rejected != 0 || !near(half.throughput(), capacity/2, 0.05) || half.maxWait > 0 {
			t.Fatalf("half load: %+v (throughput %.0f/s)", half, half.throughput())
		}
		full := offer(t, m, 0.95*capacity, 2*time.Second, 0)
		if full.rejected != 0 || !near(full.throughput(), 0.95*capacity, 0.05) {
			t.Fatalf("95%% load: %+v (throughput %.0f/s)", full, full.throughput())
		}
		over := offer(t, m, 2*capacity, 2*time.Second, 0)
		if !near(over.throughput(), capacity, 0.05) {
			t.Fatalf("2x load: throughput %.0f/s, want ~%.0f/s", over.throughput(), capacity)
		}
		// Everything beyond workers + backlog + what was served is refused at once.
		offered := over.served + over.rejected
		if over.rejected == 0 || over.served > over.servedInWindow+m.Workers+m.Backlog {
			t.Fatalf("2x load: %+v", over)
		}
		if !near(float64(over.rejected)/float64(offered), 0.5, 0.1) {
			t.Fatalf("2x load rejected %d of %d, want about half", over.rejected, offered)
		}
		// The queue filled: the longest wait is about backlog / throughput.
		wantWait := time.Duration(float64(m.Backlog) / capacity * float64(time.Second))
		if !near(float64(over.maxWait), float64(wantWait), 0.15) {
			t.Fatalf("2x load max queue wait %v, want ~%v", over.maxWait, wantWait)
		}
	})
}

// With fewer cores than workers, requests share the cores and throughput follows Cores/CPU, not
// Workers/CPU; service time stretches instead.
func TestThroughputFollowsCoresOverCPUWhenCoresAreFewer(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		m := CapacityModel{Cores: 2, Workers: 8, BootstrapCPU: 5 * time.Millisecond, PerRowCPU: 100 * time.Microsecond, Backlog: 511, ProxyTimeout: time.Minute}
		capacity := m.SaturationThroughput(50) // 2 / 10 ms = 200/s
		if !near(capacity, 200, 1e-9) {
			t.Fatalf("SaturationThroughput = %v, want 200", capacity)
		}
		over := offer(t, m, 300, 2*time.Second, 50)
		if !near(over.throughput(), capacity, 0.05) {
			t.Fatalf("throughput %.0f/s, want ~%.0f/s (Workers/CPU would be %.0f/s)", over.throughput(), capacity, 8/0.010)
		}
		light := offer(t, m, 50, 2*time.Second, 50)
		if !near(light.throughput(), 50, 0.05) || light.rejected != 0 {
			t.Fatalf("light load: %+v", light)
		}
	})
}

// Processor sharing: two jobs on one core each take twice as long as alone.
func TestCPUShareSplitsACoreBetweenJobs(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := newCPUShare(1)
		start := time.Now()
		var wg sync.WaitGroup
		ends := make([]time.Duration, 2)
		for i := range ends {
			wg.Go(func() {
				c.use(context.Background(), 100*time.Millisecond)
				ends[i] = time.Since(start)
			})
		}
		wg.Wait()
		for _, e := range ends {
			if !near(float64(e), float64(200*time.Millisecond), 0.01) {
				t.Fatalf("ends %v, want both ~200ms", ends)
			}
		}
		// A short job arriving next to a long one leaves first.
		start = time.Now()
		var short, long time.Duration
		wg.Go(func() { c.use(context.Background(), 300*time.Millisecond); long = time.Since(start) })
		wg.Go(func() { c.use(context.Background(), 100*time.Millisecond); short = time.Since(start) })
		wg.Wait()
		if !near(float64(short), float64(200*time.Millisecond), 0.01) || !near(float64(long), float64(400*time.Millisecond), 0.01) {
			t.Fatalf("short %v long %v, want 200ms and 400ms", short, long)
		}
	})
}

// A request not answered within the proxy timeout gets a 504; FPM still serves it later.
func TestProxyTimeoutAnswers504AndFPMFinishesTheRequest(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		m := CapacityModel{Workers: 1, BootstrapCPU: 100 * time.Millisecond, Backlog: 100, ProxyTimeout: 250 * time.Millisecond}
		p, err := newPool(m, 1)
		if err != nil {
			t.Fatal(err)
		}
		defer p.close()
		var mu sync.Mutex
		outcomes := map[outcome]int{}
		applied := 0
		var wg sync.WaitGroup
		for range 5 {
			wg.Go(func() {
				r := p.do(context.Background(), false, func(context.Context, func(int)) *response {
					mu.Lock()
					applied++
					mu.Unlock()
					return &response{status: 200}
				})
				mu.Lock()
				outcomes[r.outcome]++
				mu.Unlock()
			})
		}
		wg.Wait()
		time.Sleep(time.Second) // let FPM finish the abandoned ones
		synctest.Wait()
		if outcomes[outcomeServed] != 2 || outcomes[outcomeTimedOut] != 3 {
			t.Fatalf("outcomes %v, want 2 served and 3 timed out", outcomes)
		}
		if applied != 5 || p.abandoned.Load() != 3 {
			t.Fatalf("applied %d abandoned %d, want 5 and 3", applied, p.abandoned.Load())
		}
	})
}

// Jitter spreads service times around the mean without moving the mean.
func TestJitterKeepsTheMeanServiceTime(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		m := CapacityModel{Workers: 1, BootstrapCPU: 10 * time.Millisecond, Jitter: 0.5, Backlog: 1000}
		p, err := newPool(m, 7)
		if err != nil {
			t.Fatal(err)
		}
		defer p.close()
		var sum, lo, hi time.Duration
		lo = time.Hour
		const n = 400
		for range n {
			r := p.do(context.Background(), false, func(context.Context, func(int)) *response { return &response{} })
			sum += r.service
			lo, hi = min(lo, r.service), max(hi, r.service)
		}
		mean := sum / n
		if !near(float64(mean), float64(10*time.Millisecond), 0.05) || lo < 5*time.Millisecond || hi > 15*time.Millisecond || hi-lo < 8*time.Millisecond {
			t.Fatalf("mean %v range [%v, %v]", mean, lo, hi)
		}
	})
}

func TestCapacityModelValidation(t *testing.T) {
	for _, m := range []CapacityModel{
		{Workers: 0},
		{Workers: 1, Cores: -1},
		{Workers: 1, Jitter: 1},
		{Workers: 1, Backlog: -1},
		{Workers: 1, BootstrapCPU: -time.Millisecond},
		{Workers: 1, LookupCPU: -time.Millisecond},
	} {
		if m.Validate() == nil {
			t.Errorf("%+v accepted", m)
		}
	}
	if err := DefaultCapacityModel().Validate(); err != nil {
		t.Fatal(err)
	}
}

func TestEmbeddedCalibrationHoldsTheIssueDefaults(t *testing.T) {
	c := DefaultCalibration()
	if c.Source == "" {
		t.Fatal("calibration has no source")
	}
	m := c.Model.CapacityModel()
	// Until `make calibrate-laravel` measures the real app, the issue's defaults apply.
	if c.MeasuredAt == "" {
		want := CapacityModel{BootstrapCPU: 25 * time.Millisecond, PerRowCPU: 200 * time.Microsecond, Jitter: 0.1, Workers: 16, Backlog: 511, ProxyTimeout: time.Minute}
		if m != want {
			t.Fatalf("defaults %+v, want %+v", m, want)
		}
	}
	if back := m.Calibrated().CapacityModel(); back != m {
		t.Fatalf("round trip %+v != %+v", back, m)
	}
	if _, err := ParseCalibration([]byte(`{"source":"x","model":{"workers":0}}`)); err == nil {
		t.Fatal("invalid calibration accepted")
	}
}

// serveOne has the pool serve one request (a read or a write of rows rows) and returns its result.
func serveOne(p *fpmPool, read bool, rows int) poolResult {
	return p.do(context.Background(), read, func(ctx context.Context, burn func(int)) *response {
		burn(rows)
		return &response{status: 200}
	})
}

// Reads (the GET session lookup) cost LookupCPU where writes cost BootstrapCPU; both pay PerRowCPU
// for the rows they touch.
func TestLookupsCostLookupCPUAndWritesBootstrapCPU(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		m := CapacityModel{Workers: 1, BootstrapCPU: 8 * time.Millisecond, LookupCPU: 2 * time.Millisecond,
			PerRowCPU: time.Millisecond, Backlog: 1000}
		p, err := newPool(m, 1)
		if err != nil {
			t.Fatal(err)
		}
		defer p.close()
		if got := serveOne(p, true, 1).service; got != 3*time.Millisecond {
			t.Fatalf("lookup of one row served in %v, want 2 ms + 1 ms", got)
		}
		if got := serveOne(p, false, 1).service; got != 9*time.Millisecond {
			t.Fatalf("write of one row served in %v, want 8 ms + 1 ms", got)
		}
		// One worker back to back for a second of virtual time: three times as many lookups as
		// one-row writes.
		count := func(read bool) int {
			n := 0
			for start := time.Now(); time.Since(start) < time.Second; n++ {
				serveOne(p, read, 1)
			}
			return n
		}
		reads, writes := count(true), count(false)
		if reads != 334 || writes != 112 {
			t.Fatalf("served %d lookups and %d writes in a second, want 334 and 112 (3 ms and 9 ms each)", reads, writes)
		}
	})
}

// Requests in service share the cores whatever they cost: on one core two lookups at once take
// twice their CPU, and a lookup beside a write finishes first.
func TestLookupsShareTheCoresWithWrites(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		m := CapacityModel{Cores: 1, Workers: 2, BootstrapCPU: 10 * time.Millisecond, LookupCPU: 4 * time.Millisecond, Backlog: 10}
		p, err := newPool(m, 1)
		if err != nil {
			t.Fatal(err)
		}
		defer p.close()
		var read, write poolResult
		var wg sync.WaitGroup
		wg.Go(func() { read = serveOne(p, true, 0) })
		wg.Go(func() { write = serveOne(p, false, 0) })
		wg.Wait()
		// Both progress at half speed until the lookup's 4 ms are done (8 ms), then the write
		// runs alone for its remaining 6 ms.
		if read.service != 8*time.Millisecond || write.service != 14*time.Millisecond {
			t.Fatalf("lookup %v, write %v; want 8 ms and 14 ms", read.service, write.service)
		}
	})
}

// A model without LookupCPU (older calibration files, every scenario that sets only the
// bootstrap) charges reads the bootstrap, as before reads had a cost of their own.
func TestZeroLookupCPUFallsBackToBootstrapCPU(t *testing.T) {
	m := CapacityModel{Workers: 1, BootstrapCPU: 8 * time.Millisecond, PerRowCPU: time.Millisecond, Backlog: 10}
	if m.LookupCost() != 8*time.Millisecond {
		t.Fatalf("LookupCost = %v, want the bootstrap", m.LookupCost())
	}
	if got := m.ForLookups(); got != m {
		t.Fatalf("ForLookups changed a model without lookup cost: %+v", got)
	}
	withLookup := m
	withLookup.LookupCPU = 3 * time.Millisecond
	if got := withLookup.ForLookups(); got.BootstrapCPU != 3*time.Millisecond || got.LookupCPU != 0 || got.ServiceCPU(1) != 4*time.Millisecond {
		t.Fatalf("ForLookups = %+v, want bootstrap 3 ms", got)
	}
	synctest.Test(t, func(t *testing.T) {
		p, err := newPool(m, 1)
		if err != nil {
			t.Fatal(err)
		}
		defer p.close()
		if read, write := serveOne(p, true, 1).service, serveOne(p, false, 1).service; read != 9*time.Millisecond || write != read {
			t.Fatalf("lookup %v, write %v; want both 9 ms", read, write)
		}
	})
}

func TestCalibrationParsesTheOptionalLookupCost(t *testing.T) {
	const without = `{"source":"old file","model":{"cores":2,"bootstrap_cpu_ms":3.8,"per_row_cpu_ms":0.25,"jitter":0.5,"workers":8,"backlog":511,"proxy_timeout_ms":60000}}`
	c, err := ParseCalibration([]byte(without))
	if err != nil {
		t.Fatal(err)
	}
	m := c.Model.CapacityModel()
	if m.LookupCPU != 0 || m.LookupCost() != 3800*time.Microsecond {
		t.Fatalf("without lookup_cpu_ms: lookup %v (cost %v), want 0 (the bootstrap, 3.8 ms)", m.LookupCPU, m.LookupCost())
	}
	if out, _ := json.Marshal(c.Model); strings.Contains(string(out), "lookup_cpu_ms") {
		t.Fatalf("a model without lookup cost writes %s", out)
	}

	const with = `{"source":"new file","model":{"cores":2,"bootstrap_cpu_ms":3.8,"lookup_cpu_ms":2.75,"per_row_cpu_ms":0.25,"jitter":0.5,"workers":8,"backlog":511,"proxy_timeout_ms":60000}}`
	c, err = ParseCalibration([]byte(with))
	if err != nil {
		t.Fatal(err)
	}
	m = c.Model.CapacityModel()
	if m.LookupCPU != 2750*time.Microsecond || m.BootstrapCPU != 3800*time.Microsecond {
		t.Fatalf("with lookup_cpu_ms: %+v", m)
	}
	if back := m.Calibrated().CapacityModel(); back != m {
		t.Fatalf("round trip %+v != %+v", back, m)
	}
	if _, err := ParseCalibration([]byte(`{"source":"x","model":{"workers":1,"lookup_cpu_ms":-1}}`)); err == nil {
		t.Fatal("negative lookup cost accepted")
	}
}

// The shared CPU serves a request's demand from the moment a worker takes it, while fakelaravel
// does the request's own work (SQLite, JSON), which stands for part of the PHP CPU it simulates:
// the request is answered when both are done, not after the sum. Rows are added to the demand
// when the job returns; if the bootstrap was served already, they are served after it.
func TestPoolServesTheDemandWhileTheJobWorks(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		m := CapacityModel{Workers: 1, BootstrapCPU: 8 * time.Millisecond, PerRowCPU: time.Millisecond, Backlog: 10}
		p, err := newPool(m, 1)
		if err != nil {
			t.Fatal(err)
		}
		defer p.close()
		work := func(own time.Duration, rows int) time.Duration {
			return p.do(context.Background(), false, func(ctx context.Context, burn func(int)) *response {
				burn(rows)
				time.Sleep(own) // the fake's own work, in virtual time
				return &response{status: 200}
			}).service
		}
		for _, c := range []struct {
			own  time.Duration
			rows int
			want time.Duration
		}{
			{0, 2, 10 * time.Millisecond},
			{3 * time.Millisecond, 2, 10 * time.Millisecond},  // 3 ms of own work within the 10
			{25 * time.Millisecond, 2, 27 * time.Millisecond}, // the bootstrap within the work, then the rows
			{time.Millisecond, 0, 8 * time.Millisecond},       // no rows: the bootstrap alone
		} {
			if got := work(c.own, c.rows); got != c.want {
				t.Errorf("own work %v, %d rows: served in %v, want %v", c.own, c.rows, got, c.want)
			}
		}
	})
}

// closeTo allows the float rounding of cpuShare's virtual time (nanoseconds).
func closeTo(got, want time.Duration) bool { return (got - want).Abs() < time.Microsecond }

// recordSleeps replaces c's precise sleep by a virtual-time sleep that records its durations.
func recordSleeps(c *cpuShare) *[]time.Duration {
	var mu sync.Mutex
	var sleeps []time.Duration
	c.sleep = func(d time.Duration) {
		mu.Lock()
		sleeps = append(sleeps, d)
		mu.Unlock()
		time.Sleep(d)
	}
	return &sleeps
}

// A timer that fires late would delay every completion: once cpuShare has seen its timer fire late
// (lead), it arms it guard = 3 x lead early and sleeps the rest precisely, so jobs still end when
// the model says. With exact timers (synctest) it never sleeps.
func TestCPUShareArmsItsTimerEarlyAndSleepsTheRestPrecisely(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := newCPUShare(1)
		sleeps := recordSleeps(c)
		start := time.Now()
		c.use(context.Background(), 10*time.Millisecond)
		if got := time.Since(start); got != 10*time.Millisecond || len(*sleeps) != 0 || c.lead != 0 {
			t.Fatalf("exact timers: done after %v with sleeps %v and lead %v; want 10ms, none, 0", got, *sleeps, c.lead)
		}

		c.mu.Lock()
		c.lead = 500 * time.Microsecond // as if the timer had fired 0.5 ms late on average
		c.mu.Unlock()
		start = time.Now()
		c.use(context.Background(), 10*time.Millisecond)
		// Armed 1.5 ms early, it fires on time: one sleep of 1.5 ms (the lateness it sees, none,
		// lowers the lead).
		if got := time.Since(start); !closeTo(got, 10*time.Millisecond) || len(*sleeps) != 1 || !closeTo((*sleeps)[0], 1500*time.Microsecond) {
			t.Fatalf("lead 0.5ms: done after %v with sleeps %v; want 10ms after one sleep of 1.5ms", got, *sleeps)
		}
		if c.lead >= 500*time.Microsecond || c.lead <= 0 {
			t.Fatalf("lead %v after a timer on time, want below 0.5ms", c.lead)
		}
		// A job due sooner than the guard is slept for at once.
		start = time.Now()
		c.use(context.Background(), time.Millisecond)
		if got := time.Since(start); !closeTo(got, time.Millisecond) || len(*sleeps) != 2 || !closeTo((*sleeps)[1], time.Millisecond) {
			t.Fatalf("short job: done after %v with sleeps %v; want 1ms after a sleep of 1ms", got, *sleeps)
		}
		// Sharing stays exact with early wake-ups: two jobs on one core.
		start = time.Now()
		var wg sync.WaitGroup
		ends := make([]time.Duration, 2)
		for i, d := range []time.Duration{4 * time.Millisecond, 8 * time.Millisecond} {
			wg.Go(func() { c.use(context.Background(), d); ends[i] = time.Since(start) })
		}
		wg.Wait()
		if !near(float64(ends[0]), float64(8*time.Millisecond), 1e-4) || !near(float64(ends[1]), float64(12*time.Millisecond), 1e-4) || len(*sleeps) != 4 {
			t.Fatalf("shared: ends %v after sleeps %v, want 8ms and 12ms after 4 sleeps", ends, *sleeps)
		}
	})
}

// On the real clock the pool answers close to the model's service time: the runtime's timers
// alone are up to a millisecond late on an idle process, twice per request before.
func TestPoolFollowsTheModelOnTheRealClock(t *testing.T) {
	if testing.Short() {
		t.Skip("real time")
	}
	m := CapacityModel{Cores: 2, Workers: 4, BootstrapCPU: 2300 * time.Microsecond, PerRowCPU: 100 * time.Microsecond, Backlog: 10}
	p, err := newPool(m, 1)
	if err != nil {
		t.Fatal(err)
	}
	defer p.close()
	want := m.ServiceCPU(1)
	var excess time.Duration
	// A busy machine can delay any wake-up: retry before calling it a failure.
	for range 3 {
		lat := make([]time.Duration, 0, 41)
		for range cap(lat) {
			start := time.Now()
			serveOne(p, false, 1)
			lat = append(lat, time.Since(start)-want)
		}
		slices.Sort(lat)
		if excess = lat[len(lat)/2]; excess < 500*time.Microsecond && excess > -200*time.Microsecond {
			return
		}
	}
	t.Fatalf("median latency %v off the model's %v", excess, want)
}

// A share of writes waits for the database's write lock on its worker, without CPU: the write is
// answered LockWait later, a lookup never waits, and the waiting worker is busy meanwhile.
func TestLockWaitDelaysWritesNotLookups(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		m := CapacityModel{Cores: 1, Workers: 2, BootstrapCPU: 2 * time.Millisecond, LookupCPU: time.Millisecond,
			Backlog: 10, LockWaitShare: 1, LockWait: 8 * time.Millisecond}
		p, err := newPool(m, 1)
		if err != nil {
			t.Fatal(err)
		}
		defer p.close()
		if got := serveOne(p, false, 0).service; got != 10*time.Millisecond {
			t.Fatalf("write served in %v, want 2 ms of CPU + 8 ms of lock wait", got)
		}
		if got := serveOne(p, true, 0).service; got != time.Millisecond {
			t.Fatalf("lookup served in %v, want its 1 ms of CPU", got)
		}
		// The wait uses no CPU: a lookup beside a waiting write runs at full speed.
		var write, read poolResult
		var wg sync.WaitGroup
		wg.Go(func() { write = serveOne(p, false, 0) })
		wg.Go(func() { time.Sleep(3 * time.Millisecond); read = serveOne(p, true, 0) })
		wg.Wait()
		if write.service != 10*time.Millisecond || read.service != time.Millisecond {
			t.Fatalf("write %v, lookup %v beside it; want 10 ms and 1 ms", write.service, read.service)
		}
	})
	if (CapacityModel{Workers: 1, LockWaitShare: 1.5}).Validate() == nil || (CapacityModel{Workers: 1, LockWait: -time.Second}).Validate() == nil {
		t.Fatal("invalid lock wait accepted")
	}
	m := CapacityModel{Workers: 1, BootstrapCPU: time.Millisecond, LockWaitShare: 0.03, LockWait: 18 * time.Millisecond}
	if l := m.ForLookups(); l.LockWaitShare != 0 || l.LockWait != 0 {
		t.Fatalf("ForLookups keeps the lock wait: %+v", l)
	}
	if back := m.Calibrated().CapacityModel(); back != m {
		t.Fatalf("round trip %+v != %+v", back, m)
	}
	if out, _ := json.Marshal(CapacityModel{Workers: 1}.Calibrated()); strings.Contains(string(out), "lock_wait") {
		t.Fatalf("a model without lock wait writes %s", out)
	}
}

// SQLite's default busy handler sleeps 1, 2, 5, 10, 15, 20, 25, 25, 25, 50, 50 and then 100 ms
// between tries: a write that finds the lock held for rest more waits the first sum of those
// sleeps that outlasts it, not just until the lock frees.
func TestBusyWaitFollowsSQLitesBusyHandler(t *testing.T) {
	ms := time.Millisecond
	for i, want := range []time.Duration{1, 2, 5, 10, 15, 20, 25, 25, 25, 50, 50, 100, 100, 100} {
		if got := BusyHandlerDelay(i); got != want*ms {
			t.Errorf("BusyHandlerDelay(%d) = %v, want %v", i, got, want*ms)
		}
	}
	for _, c := range []struct{ rest, want time.Duration }{
		{0, 0}, {-ms, 0}, {time.Microsecond, ms}, {ms, ms}, {ms + 1, 3 * ms}, {4 * ms, 8 * ms},
		{18 * ms, 18 * ms}, {19 * ms, 33 * ms}, {50 * ms, 53 * ms}, {200 * ms, 228 * ms}, {400 * ms, 428 * ms},
	} {
		if got := BusyWait(c.rest); got != c.want {
			t.Errorf("BusyWait(%v) = %v, want %v", c.rest, got, c.want)
		}
	}
	// The hold's rest is (1-u) x LockHold for a write that arrived at point u of it.
	m := CapacityModel{LockWaitShare: 0.1, LockHold: 20 * ms, LockWait: 7 * ms}
	for _, c := range []struct {
		u    float64
		want time.Duration
	}{{0, 33 * ms}, {0.1, 18 * ms}, {0.5, 18 * ms}, {0.6, 8 * ms}, {0.99, ms}} {
		if got := m.LockTail(c.u); got != c.want {
			t.Errorf("LockTail(%v) with a 20 ms hold = %v, want %v", c.u, got, c.want)
		}
	}
	m.LockHold = 0
	if got := m.LockTail(0.5); got != 7*ms {
		t.Errorf("LockTail without a hold = %v, want LockWait 7ms", got)
	}
}

// With LockHold a waiting write sleeps the busy handler's sleeps until the rest of the hold it
// found is over: its service is its CPU plus one of the handler's sums (1, 3, 8, 18, 33 ms) at
// most the first beyond LockHold, spread over them; lookups never wait.
func TestLockHoldSpreadsTheWaitOverTheBusyHandlersSleeps(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		m := CapacityModel{Cores: 1, Workers: 1, BootstrapCPU: 2 * time.Millisecond, LookupCPU: time.Millisecond,
			Backlog: 10, LockWaitShare: 1, LockHold: 20 * time.Millisecond}
		p, err := newPool(m, 1)
		if err != nil {
			t.Fatal(err)
		}
		defer p.close()
		seen := map[time.Duration]int{}
		for range 200 {
			wait := serveOne(p, false, 0).service - 2*time.Millisecond
			if !slices.Contains([]time.Duration{1, 3, 8, 18, 33}, wait/time.Millisecond) || wait%time.Millisecond != 0 {
				t.Fatalf("write waited %v, not a sum of the busy handler's sleeps up to 33 ms", wait)
			}
			seen[wait]++
		}
		// Rest uniform in (0, 20 ms]: 18 ms for a rest in (8, 18] (half the draws), 33 ms for (18, 20].
		if n := seen[18*time.Millisecond]; n < 70 || n > 130 {
			t.Errorf("waits %v: %d of 200 waited 18 ms, want about 100", seen, n)
		}
		if len(seen) < 4 {
			t.Errorf("waits %v: not spread over the handler's sleeps", seen)
		}
		if got := serveOne(p, true, 0).service; got != time.Millisecond {
			t.Fatalf("lookup served in %v, want its 1 ms of CPU", got)
		}
	})
	if (CapacityModel{Workers: 1, LockHold: -time.Second}).Validate() == nil {
		t.Fatal("negative lock hold accepted")
	}
	m := CapacityModel{Workers: 1, BootstrapCPU: time.Millisecond, LockWaitShare: 0.015, LockHold: 50 * time.Millisecond}
	if l := m.ForLookups(); l.LockWaitShare != 0 || l.LockHold != 0 {
		t.Fatalf("ForLookups keeps the lock hold: %+v", l)
	}
	if back := m.Calibrated().CapacityModel(); back != m {
		t.Fatalf("round trip %+v != %+v", back, m)
	}
	if out, _ := json.Marshal(CapacityModel{Workers: 1}.Calibrated()); strings.Contains(string(out), "lock_hold") {
		t.Fatalf("a model without lock hold writes %s", out)
	}
	c, err := ParseCalibration([]byte(`{"source":"x","model":{"workers":8,"backlog":1,"bootstrap_cpu_ms":4,"lock_wait_share":0.015,"lock_hold_ms":50}}`))
	if err != nil || c.Model.CapacityModel().LockHold != 50*time.Millisecond {
		t.Fatalf("lock_hold_ms: %+v, %v", c.Model, err)
	}
}
