package calibrate

import (
	"math"
	"slices"
	"testing"
	"time"

	"wagate/fakelaravel"
)

func model(cores float64, boot, perRow time.Duration, workers, backlog int) fakelaravel.CapacityModel {
	return fakelaravel.CapacityModel{Cores: cores, BootstrapCPU: boot, PerRowCPU: perRow, Workers: workers, Backlog: backlog}
}

func TestSimulatedThroughputSaturatesAtCoresOverDemand(t *testing.T) {
	m := model(2, 9*time.Millisecond, time.Millisecond, 8, 100_000)
	// Offer twice the capacity: the served rate is the capacity, 2 / 10 ms = 200/s.
	r := Simulate(m, 1, 400, 20_000, 1)
	got := float64(r.Served) / r.Elapsed
	if math.Abs(got/m.SaturationThroughput(1)-1) > 0.02 {
		t.Fatalf("served %.1f/s, want %.1f/s", got, m.SaturationThroughput(1))
	}
	if r.Rejected != 0 {
		t.Fatalf("rejected %d with a huge backlog", r.Rejected)
	}
}

func TestSimulatedLatencyAtLowLoadIsTheDemand(t *testing.T) {
	m := model(2, 8*time.Millisecond, 200*time.Microsecond, 8, 511)
	r := Simulate(m, 10, 5, 2000, 1)
	if p := r.Percentile(50); math.Abs(p-0.010) > 0.0005 {
		t.Fatalf("p50 at 5 req/s = %v s, want 0.010 s", p)
	}
}

func TestSimulatedBacklogOverflowIsRejected(t *testing.T) {
	m := model(1, 10*time.Millisecond, 0, 4, 50)
	r := Simulate(m, 1, 1000, 5000, 1)
	if r.Rejected == 0 {
		t.Fatal("no 502 at 10x the capacity with a backlog of 50")
	}
	if r.Served+r.Rejected+r.TimedOut != 5000 {
		t.Fatalf("served %d + rejected %d + timed out %d != 5000", r.Served, r.Rejected, r.TimedOut)
	}
	// Once the backlog is full a request waits for the 50 before it and the 4 in service, then
	// shares the core with the 3 others in service: at most (50 + 4 + 4) x 10 ms.
	if p := r.Percentile(99); p > 0.58 {
		t.Fatalf("p99 %v s exceeds the time to drain a full backlog", p)
	}
}

func TestSimulatedProxyTimeoutCountsLateAnswers(t *testing.T) {
	m := model(1, 10*time.Millisecond, 0, 4, 100_000)
	m.ProxyTimeout = 200 * time.Millisecond
	r := Simulate(m, 1, 200, 3000, 1)
	if r.TimedOut == 0 {
		t.Fatal("no 504 at twice the capacity with an unbounded backlog")
	}
	if max := r.Latencies[len(r.Latencies)-1]; max > 0.2 {
		t.Fatalf("a served latency %v s is over the proxy timeout", max)
	}
}

func TestSimulationIsDeterministicPerSeed(t *testing.T) {
	m := model(1.5, 6*time.Millisecond, 0, 8, 511)
	m.Jitter = 0.3
	a, b := Simulate(m, 1, 150, 3000, 7), Simulate(m, 1, 150, 3000, 7)
	if a.Percentile(99) != b.Percentile(99) || a.Served != b.Served {
		t.Fatal("two simulations with the same seed differ")
	}
}

// SimulatePlan draws the plan's runs (each from an idle server) until it has n arrivals, and is
// one long Simulate without a Load duration.
func TestSimulatePlanPoolsRunsFromAnIdleServer(t *testing.T) {
	m := model(2, 4*time.Millisecond, 0, 8, 511)
	plan := Plan{Load: time.Second, LoadRepeats: 3}
	r := SimulatePlan(m, 0, 400, plan, 2000, 1)
	// 400 arrivals per run, runs of 3: 2000 arrivals need two rounds, 2400 arrivals.
	if got := r.Served + r.Rejected + r.TimedOut; got != 2400 || len(r.Latencies) != r.Served {
		t.Fatalf("%d answers (%d latencies), want 2400", got, len(r.Latencies))
	}
	if !slices.IsSorted(r.Latencies) {
		t.Fatal("latencies not sorted")
	}
	long := Simulate(m, 0, 400, 2000, 1)
	if got := SimulatePlan(m, 0, 400, Plan{}, 2000, 1); !slices.Equal(got.Latencies, long.Latencies) {
		t.Fatal("without a Load duration SimulatePlan is not Simulate")
	}
	// Runs of a few seconds from an idle server see fewer long busy periods than a long steady
	// state at 90% load: a lighter tail.
	short := SimulatePlan(m, 0, 450, Plan{Load: 500 * time.Millisecond, LoadRepeats: 3}, 20000, 1)
	steady := Simulate(m, 0, 450, 20000, 1)
	if short.Percentile(99) >= steady.Percentile(99) {
		t.Fatalf("p99 of short runs %.1f ms >= steady state %.1f ms", 1000*short.Percentile(99), 1000*steady.Percentile(99))
	}
}

// Writes that wait for the write lock take LockWait longer and hold their worker meanwhile; a
// model without it draws the same numbers as before it existed.
func TestSimulatedLockWaitHoldsTheWorkerWithoutCPU(t *testing.T) {
	m := model(1, time.Millisecond, 0, 1, 100_000)
	m.LockWaitShare, m.LockWait = 1, 9*time.Millisecond
	r := Simulate(m, 0, 5, 500, 1)
	if p := r.Percentile(50); math.Abs(p-0.010) > 1e-6 {
		t.Fatalf("p50 at 5 req/s = %v s, want 1 ms of CPU + 9 ms of wait", p)
	}
	// One worker busy 10 ms per request: 100 req/s at most, although the CPU is 90% idle.
	over := Simulate(m, 0, 200, 4000, 1)
	if got := float64(over.Served) / over.Elapsed; math.Abs(got/100-1) > 0.03 {
		t.Fatalf("served %.1f/s, want 100/s", got)
	}
	m.LockWaitShare = 0
	if a, b := Simulate(m, 0, 300, 2000, 3), Simulate(model(1, time.Millisecond, 0, 1, 100_000), 0, 300, 2000, 3); !slices.Equal(a.Latencies, b.Latencies) {
		t.Fatal("a zero lock-wait share changed the simulation")
	}
}

// With LockHold the simulated waits are the busy handler's (fakelaravel.BusyWait of a uniform rest
// of the hold), as the pool draws them.
func TestSimulatedLockHoldWaitsAsTheBusyHandler(t *testing.T) {
	m := model(100, time.Millisecond, 0, 100, 100_000) // a core and a worker for every request
	m.LockWaitShare, m.LockHold = 1, 20*time.Millisecond
	r := Simulate(m, 0, 50, 2000, 1)
	counts := map[int]int{}
	for _, l := range r.Latencies {
		wait := int(math.Round((l - 0.001) * 1000))
		if !slices.Contains([]int{1, 3, 8, 18, 33}, wait) || math.Abs((l-0.001)*1000-float64(wait)) > 1e-6 {
			t.Fatalf("latency %v s is not 1 ms of CPU plus one of the busy handler's sums", l)
		}
		counts[wait]++
	}
	// A rest uniform in (0, 20 ms]: half of the waits are 18 ms, a tenth 33 ms.
	if n := float64(counts[18]) / float64(len(r.Latencies)); math.Abs(n-0.5) > 0.05 {
		t.Fatalf("waits %v: share of 18 ms %.2f, want 0.5", counts, n)
	}
	if n := float64(counts[33]) / float64(len(r.Latencies)); math.Abs(n-0.1) > 0.03 {
		t.Fatalf("waits %v: share of 33 ms %.2f, want 0.1", counts, n)
	}
}
