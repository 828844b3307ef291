package run

import (
	"log/slog"
	"maps"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"wagate/reports"
	"wagate/simulator/cpuset"
	"wagate/simulator/scenario"
)

// The gateway runs on its own CPU set and every other process the simulator starts, and the
// simulator itself, on the world's, the world's servers below the simulator's priority; the
// report reads back what the kernel says each one had.
func TestChildrenRunOnTheirCPUSetAndTheReportSaysWhich(t *testing.T) {
	online, err := cpuset.Online()
	if err != nil || len(online) < 2 {
		t.Skipf("needs two CPUs (have %v, %v)", online, err)
	}
	own, err := cpuset.NiceOf(0)
	if err != nil || own.Lowest != own.Highest {
		t.Fatalf("this test's threads are at nice %v (%v), want one value", own, err)
	}
	gatewayCPU, worldCPU := online[len(online)-1:], online[:1]
	f := &scenario.File{CPUs: scenario.CPUs{Assignment: cpuset.Assignment{Pinned: true, Gateway: gatewayCPU, World: worldCPU, ServersNice: cpuset.DefaultServersNice}}}
	end := useCPUSets(f, slog.New(slog.DiscardHandler))
	defer end()

	dir := t.TempDir()
	var started []*child
	for _, name := range []string{"gateway", "fakelaravel"} {
		c, err := startChild(name, "/bin/sleep", []string{"30"}, nil, filepath.Join(dir, name+".log"))
		if err != nil {
			t.Fatal(err)
		}
		started = append(started, c)
	}
	defer func() {
		for _, c := range started {
			_ = c.stop(time.Second)
		}
	}()
	for i, want := range [][]int{gatewayCPU, worldCPU} {
		if had, err := cpuset.Of(started[i].Pid()); err != nil || !slices.Equal(had, want) {
			t.Errorf("%s runs on CPUs %v (%v), want %v", started[i].name, had, err, want)
		}
	}
	if own, _ := cpuset.Online(); !slices.Equal(own, worldCPU) {
		t.Errorf("the simulator runs on CPUs %v, want the world's %v", own, worldCPU)
	}

	var env reports.Environment
	describeCPUs(&env)
	want := map[string]string{"gateway": cpuset.Format(gatewayCPU), "fakelaravel": cpuset.Format(worldCPU), "simulator": cpuset.Format(worldCPU)}
	if env.CPUSets == nil || !env.CPUSets.Pinned || len(env.CPUSets.Processes) != len(want) {
		t.Fatalf("cpu sets = %+v, want pinned %v", env.CPUSets, want)
	}
	for name, cpus := range want {
		if got := env.CPUSets.Processes[name]; got != cpus {
			t.Errorf("report says %s had CPUs %q, want %q", name, got, cpus)
		}
	}
	// The world's servers 10 nice steps below the simulator (0 unless the test runs niced), the
	// gateway and the simulator at the simulator's own.
	self, below := strconv.Itoa(own.Lowest), min(own.Lowest+cpuset.DefaultServersNice, cpuset.MaxNice)
	wantNice := map[string]string{"gateway": self, "fakelaravel": strconv.Itoa(below), "simulator": self}
	if !maps.Equal(env.CPUSets.Nice, wantNice) {
		t.Errorf("report says the processes ran at nice %v, want %v", env.CPUSets.Nice, wantNice)
	}
	if ag, err := os.ReadFile("/proc/self/autogroup"); err == nil && cpuset.Autogroup() != "" && env.CPUSets.Autogroup != strings.TrimSpace(string(ag)) {
		t.Errorf("report says the harness's scheduler group is %q, want %q", env.CPUSets.Autogroup, strings.TrimSpace(string(ag)))
	}
	if n, err := cpuset.NiceOf(started[1].Pid()); err != nil || n != (cpuset.Nice{Lowest: below, Highest: below}) {
		t.Errorf("fakelaravel's threads are at nice %v (%v), want %d", n, err, below)
	}
	if env.LoadAverage == nil || env.Generator == nil || env.Generator.Cores != len(worldCPU) {
		t.Fatalf("load average %+v, generator %+v: want both, the generator on %d core(s)", env.LoadAverage, env.Generator, len(worldCPU))
	}
	// Who used each set: the world's is the generator's, the gateway's the process on it.
	if u := env.Generator.Set; u == nil || u.CPUs != cpuset.Format(worldCPU) || u.CapacitySeconds <= 0 || u.HarnessSeconds <= 0 {
		t.Errorf("generator's CPU set use = %+v, want CPU %s with this test's own run time", u, cpuset.Format(worldCPU))
	}
	if env.GatewayCore == nil || env.GatewayCore.Set == nil || env.GatewayCore.Set.CPUs != cpuset.Format(gatewayCPU) {
		t.Errorf("gateway core = %+v, want its CPU set's use on CPU %s", env.GatewayCore, cpuset.Format(gatewayCPU))
	}

	end()
	if own, _ := cpuset.Online(); !slices.Equal(own, online) {
		t.Errorf("after the run the simulator runs on %v, want its CPUs back (%v)", own, online)
	}
}

// A run's generator is read every interval: the requests it made, its goroutines' delays, its CPU.
func TestTheGeneratorsIntervalsSayTheLoadItDroveAndItsDelays(t *testing.T) {
	defer func(d time.Duration) { intervalLength = d }(intervalLength)
	intervalLength = 50 * time.Millisecond
	end := useCPUSets(&scenario.File{}, slog.New(slog.DiscardHandler))
	defer end()
	var made atomic.Int64
	countRequests(func() float64 { return float64(made.Load()) })
	deadline := time.Now().Add(5 * time.Second)
	for {
		made.Add(10) // 10 requests a millisecond: ~10,000/s
		time.Sleep(time.Millisecond)
		var env reports.Environment
		describeCPUs(&env)
		if r := env.Generator.Rates; r != nil && r.Busy >= 3 {
			if r.Valid > r.Busy || len(r.Intervals) < r.Busy || r.IntervalSeconds != 0.05 || r.DelayLimitMs != 1 {
				t.Fatalf("rates %+v", r)
			}
			for _, in := range r.Intervals {
				if in.RequestsPerSecond < 500 || in.RequestsPerSecond > 20000 || in.AtSeconds <= 0 {
					t.Errorf("interval %+v: want ~10,000 requests/s (1 ms sleeps stretch on a busy machine)", in)
				}
			}
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("no three intervals with requests after 5 s: %+v", env.Generator)
		}
	}
}

// An interval says what the generator did and who had its CPUs: its threads' wait for a CPU
// (summed over threads, so it can pass 100%), the hypervisor's steal and other processes' share of
// the world's set when the set's use was read.
func TestAnIntervalSaysWhoHadTheGeneratorsCPU(t *testing.T) {
	start := time.Unix(1000, 0)
	world := []int{0}
	delays := func(counts ...uint64) cpuset.GoDelays {
		// Buckets of 0-1 ms, 1-10 ms, 10-100 ms, 100 ms-1 s.
		return cpuset.GoDelays{Sched: cpuset.Histogram{Counts: counts, Buckets: []float64{0, 0.001, 0.01, 0.1, 1}}}
	}
	last := generatorReading{at: start.Add(5 * time.Second), requests: 1000, delays: delays(10, 0, 0, 0),
		cpu: 2 * time.Second, threads: cpuset.Sched{Run: 3 * time.Second, Wait: time.Second}, own: 4 * time.Second,
		stat: cpuset.CPUTimes{0: {Tasks: 10 * time.Second, Steal: time.Second}, 1: {Tasks: 50 * time.Second}}}
	cases := []struct {
		name string
		now  func(generatorReading) generatorReading
		want cpuset.Interval
	}{{
		name: "its threads queued behind each other: wait, no steal, nobody else",
		now: func(r generatorReading) generatorReading {
			r.at, r.requests, r.delays, r.cpu = r.at.Add(5*time.Second), 51000, delays(990, 0, 10, 0), r.cpu+2*time.Second
			r.threads = cpuset.Sched{Run: r.threads.Run + 2*time.Second, Wait: r.threads.Wait + 6*time.Second}
			r.own += 3 * time.Second
			r.stat = cpuset.CPUTimes{0: {Tasks: 13 * time.Second, Steal: time.Second}, 1: {Tasks: 99 * time.Second}}
			return r
		},
		want: cpuset.Interval{At: 10 * time.Second, RequestsPerSecond: 10000, SchedP99: 100 * time.Millisecond, CPUPercent: 40, WaitPercent: 120},
	}, {
		name: "the hypervisor took a fifth of the world's CPU, other processes a tenth",
		now: func(r generatorReading) generatorReading {
			r.at, r.requests, r.cpu = r.at.Add(5*time.Second), 6000, r.cpu+time.Second
			r.threads = cpuset.Sched{Run: r.threads.Run + time.Second, Wait: r.threads.Wait + time.Second/2}
			r.own += time.Second
			r.stat = cpuset.CPUTimes{0: {Tasks: 11500 * time.Millisecond, Steal: 2 * time.Second}, 1: {Tasks: 50 * time.Second}}
			return r
		},
		want: cpuset.Interval{At: 10 * time.Second, RequestsPerSecond: 1000, CPUPercent: 20, WaitPercent: 10, OthersPercent: 10, StealPercent: 20},
	}, {
		name: "not pinned: the set's use is not read",
		now: func(r generatorReading) generatorReading {
			r.at, r.requests = r.at.Add(5*time.Second), 1000
			r.stat = nil
			return r
		},
		want: cpuset.Interval{At: 10 * time.Second},
	}}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got := intervalBetween(last, tc.now(last), start, world)
			near := func(a, b float64) bool { return math.Abs(a-b) < 1e-6 }
			if got.At != tc.want.At || !near(got.RequestsPerSecond, tc.want.RequestsPerSecond) || got.SchedP99 != tc.want.SchedP99 ||
				!near(got.CPUPercent, tc.want.CPUPercent) || !near(got.WaitPercent, tc.want.WaitPercent) ||
				!near(got.OthersPercent, tc.want.OthersPercent) || !near(got.StealPercent, tc.want.StealPercent) {
				t.Errorf("got  %+v\nwant %+v", got, tc.want)
			}
		})
	}
}
