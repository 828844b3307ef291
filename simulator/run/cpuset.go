package run

import (
	"log/slog"
	"os"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"wagate/internal/procstat"
	"wagate/reports"
	"wagate/simulator/cpuset"
	"wagate/simulator/scenario"
)

// cpuRun is the CPU sets of the run in progress and what was read at its start, so that the
// report can say where each process ran, the machine's load, and the load generator's own CPU.
type cpuRun struct {
	assignment cpuset.Assignment
	log        *slog.Logger
	// before is the simulator's own CPU list before it pinned itself, restored at the end.
	before []int
	// ownNice is the simulator's nice value: the world's servers run ServersNice steps below it.
	ownNice   int
	loadStart [3]float64
	cpuStart  time.Duration
	wallStart time.Time
	// delaysStart is the simulator's Go scheduling delays at the start, and schedStart the
	// kernel's accounting of its threads.
	delaysStart cpuset.GoDelays
	schedStart  cpuset.Sched
	// statStart is the kernel's per-CPU accounting at the start: with the pinned processes' run
	// time it says who else used each CPU set during the run.
	statStart cpuset.CPUTimes

	mu        sync.Mutex
	processes map[string]string // process -> CPU list read back from the kernel
	// core is the process on the gateway's CPU set (the gateway, or the floor), its pid and its
	// scheduler accounting when it was pinned: a restarted one starts again.
	core      string
	corePID   int
	coreStart cpuset.Sched
	// pinned is every child pinned, by name: its pid, CPU set and accounting when pinned (a
	// restarted child replaces its predecessor, whose run time is then no longer counted).
	pinned map[string]pinnedChild
	// niced is every child started, by name: its pid and its threads' nice read back right after
	// it was set (what the report says when the child has exited by then).
	niced map[string]nicedChild
	// requests counts the requests the generator made so far (nil: not counted, no intervals);
	// intervals are the generator's readings every cpuset.IntervalLength.
	requests  func() float64
	intervals []cpuset.Interval
	stopEvery chan struct{}
	everyDone sync.WaitGroup
}

// pinnedChild is a child the simulator pinned to a CPU set.
type pinnedChild struct {
	pid   int
	cpus  []int
	start cpuset.Sched
}

// nicedChild is a child whose priority the simulator set (or left as its own).
type nicedChild struct {
	pid  int
	nice string
}

// activeCPUs is the run in progress (nil outside a run). Children started by startChild and
// restartChild are pinned through it.
var activeCPUs atomic.Pointer[cpuRun]

// useCPUSets starts the run's CPU accounting and, when the scenario asks for CPU sets, pins the
// simulator's own threads (users, in-process fakewa) to the world's set; children are pinned as
// they start (pinChild). The returned function restores the simulator's CPUs.
func useCPUSets(f *scenario.File, log *slog.Logger) (end func()) {
	c := &cpuRun{assignment: f.CPUs.Assignment, log: log, wallStart: time.Now(), processes: map[string]string{}, delaysStart: cpuset.ReadGoDelays(), pinned: map[string]pinnedChild{}, niced: map[string]nicedChild{}}
	c.schedStart, _ = cpuset.ReadSched(os.Getpid())
	c.statStart, _ = cpuset.ReadCPUTimes()
	c.loadStart, _ = procstat.FS{}.LoadAverage()
	if p, err := (procstat.FS{}).Process("self"); err == nil {
		c.cpuStart, c.ownNice = p.CPU, p.Nice
	}
	if c.assignment.Pinned {
		c.before, _ = cpuset.Online()
		if err := cpuset.Pin(0, c.assignment.World); err != nil {
			log.Warn("could not pin the simulator to the world's CPUs", "cpus", cpuset.Format(c.assignment.World), "err", err)
		}
	}
	activeCPUs.Store(c)
	c.stopEvery = make(chan struct{})
	c.everyDone.Go(c.sampleIntervals)
	var once sync.Once
	return func() {
		once.Do(func() {
			close(c.stopEvery)
			c.everyDone.Wait()
			activeCPUs.CompareAndSwap(c, nil)
			if c.assignment.Pinned && len(c.before) > 0 {
				_ = cpuset.Pin(0, c.before)
			}
		})
	}
}

// intervalLength is how often the generator's intervals are read (a variable for tests).
var intervalLength = cpuset.IntervalLength

// countRequests tells the run in progress how to count the requests its generator made, so
// that its intervals say the load they drove.
func countRequests(total func() float64) {
	if c := activeCPUs.Load(); c != nil {
		c.mu.Lock()
		c.requests = total
		c.mu.Unlock()
	}
}

// generatorReading is what sampleIntervals reads of the generator and its CPU set at one time.
type generatorReading struct {
	at       time.Time
	requests float64
	delays   cpuset.GoDelays
	cpu      time.Duration
	// threads is the kernel's accounting of the generator's threads (time run, time waiting for
	// a CPU); own is the run time of the harness's processes on the world's set.
	threads cpuset.Sched
	own     time.Duration
	stat    cpuset.CPUTimes // nil: not pinned, the set's use is not read
}

// sampleIntervals reads the generator's requests, goroutine delays, CPU and its CPU set's use
// every cpuset.IntervalLength until the run ends.
func (c *cpuRun) sampleIntervals() {
	read := func() generatorReading {
		c.mu.Lock()
		count := c.requests
		c.mu.Unlock()
		r := generatorReading{at: time.Now(), delays: cpuset.ReadGoDelays(), own: c.ownRun(c.assignment.World)}
		if count != nil {
			r.requests = count()
		}
		if p, err := (procstat.FS{}).Process("self"); err == nil {
			r.cpu = p.CPU
		}
		r.threads, _ = cpuset.ReadSched(os.Getpid())
		if c.assignment.Pinned {
			r.stat, _ = cpuset.ReadCPUTimes()
		}
		return r
	}
	t := time.NewTicker(intervalLength)
	defer t.Stop()
	last := read()
	for {
		select {
		case <-c.stopEvery:
			return
		case <-t.C:
		}
		now := read()
		in := intervalBetween(last, now, c.wallStart, c.assignment.World)
		c.mu.Lock()
		if c.requests != nil {
			c.intervals = append(c.intervals, in)
		}
		c.mu.Unlock()
		last = now
	}
}

// intervalBetween is the generator's interval from reading last to reading now, in a run that
// started at start with the world's CPU set world: its request rate, goroutine delays and CPU,
// how long its threads waited for a CPU, and (when the set's use was read) what other processes
// and the hypervisor (steal) took of the set. A stalled interval then says whether the
// generator's own goroutines held its processor (its threads ran), its threads queued for the
// CPU (wait), or the VM lost it (steal).
func intervalBetween(last, now generatorReading, start time.Time, world []int) cpuset.Interval {
	wall := now.at.Sub(last.at)
	secs := wall.Seconds()
	if secs <= 0 {
		return cpuset.Interval{At: now.at.Sub(start)}
	}
	threads := now.threads.Sub(last.threads)
	in := cpuset.Interval{At: now.at.Sub(start), RequestsPerSecond: (now.requests - last.requests) / secs,
		SchedP99: now.delays.Sub(last.delays).Sched.Quantile(0.99), CPUPercent: 100 * (now.cpu - last.cpu).Seconds() / secs,
		WaitPercent: 100 * max(threads.Wait, 0).Seconds() / secs}
	if now.stat != nil && last.stat != nil {
		u := cpuset.Use(world, now.stat.Sub(last.stat, world), now.own-last.own, wall)
		in.OthersPercent, in.StealPercent = u.Share(u.Others), u.Share(max(u.Steal, 0))
	}
	return in
}

// pinChild puts a child the simulator just started on its CPU set (the gateway's for the
// gateway and its replicas, the world's for the others) and at its priority (the world's servers
// cpuset.DefaultServersNice nice steps below the simulator's unless the scenario says otherwise),
// and records the set and nice the kernel says it has.
func pinChild(name string, pid int) {
	c := activeCPUs.Load()
	if c == nil {
		return
	}
	if steps := c.assignment.NiceFor(name); steps != 0 {
		nice := cpuset.Below(c.ownNice, steps)
		if err := cpuset.Renice(pid, nice); err != nil {
			c.log.Warn("could not lower a child's priority", "process", name, "pid", pid, "nice", nice, "err", err)
		}
	}
	if n, err := cpuset.NiceOf(pid); err == nil {
		c.mu.Lock()
		c.niced[name] = nicedChild{pid: pid, nice: n.String()}
		c.mu.Unlock()
	}
	if !c.assignment.Pinned {
		return
	}
	ids := c.assignment.ForProcess(name)
	if err := cpuset.Pin(pid, ids); err != nil {
		c.log.Warn("could not pin a child to its CPUs", "process", name, "pid", pid, "cpus", cpuset.Format(ids), "err", err)
	}
	had, err := cpuset.Of(pid)
	if err != nil {
		return
	}
	start, _ := cpuset.ReadSched(pid)
	c.mu.Lock()
	c.processes[name] = cpuset.Format(had)
	c.pinned[name] = pinnedChild{pid: pid, cpus: ids, start: start}
	if slices.Equal(ids, c.assignment.Gateway) {
		c.core, c.corePID = name, pid
		c.coreStart = start
	}
	c.mu.Unlock()
}

// describeCPUs writes the run's CPU sets, the machine's load average at the start and now, and
// the load generator's CPU since the start with whether its latency is valid into env.
func describeCPUs(env *reports.Environment) {
	c := activeCPUs.Load()
	if c == nil {
		return
	}
	sets := &reports.CPUSets{Pinned: c.assignment.Pinned, Note: c.assignment.Note}
	cores := runtime.NumCPU()
	if online, err := cpuset.Online(); err == nil {
		cores = len(online)
		if sets.Pinned {
			c.mu.Lock()
			sets.Processes = map[string]string{"simulator": cpuset.Format(online)}
			for name, cpus := range c.processes {
				sets.Processes[name] = cpus
			}
			c.mu.Unlock()
		}
	}
	sets.Nice = c.nices()
	if sets.Nice != nil {
		sets.Autogroup = cpuset.Autogroup()
	}
	env.CPUSets = sets
	c.mu.Lock()
	core, pid, start := c.core, c.corePID, c.coreStart
	c.mu.Unlock()
	gatewaySet, worldSet := c.setUse(c.assignment.Gateway), c.setUse(c.assignment.World)
	if s, err := cpuset.ReadSched(os.Getpid()); err == nil {
		worldSet.Self = s.Sub(c.schedStart).Run
	}
	if pid > 0 {
		if now, err := cpuset.ReadSched(pid); err == nil {
			d := now.Sub(start)
			gatewaySet.Self = d.Run
			valid, reason := cpuset.CoreValidity(core, d, gatewaySet)
			env.GatewayCore = &reports.CoreWait{Process: core, RunSeconds: d.Run.Seconds(), WaitSeconds: d.Wait.Seconds(), Set: reportSetUse(gatewaySet), Valid: valid, Reason: reason}
		}
	}
	if end, err := (procstat.FS{}).LoadAverage(); err == nil {
		env.LoadAverage = &reports.LoadAverage{Start: c.loadStart, End: end}
	}
	p, err := procstat.FS{}.Process("self")
	wall := time.Since(c.wallStart)
	if err != nil || wall <= 0 {
		return
	}
	delays := cpuset.ReadGoDelays().Sub(c.delaysStart)
	g := cpuset.Generator{CPUPercent: 100 * (p.CPU - c.cpuStart).Seconds() / wall.Seconds(), Cores: cores,
		SchedP99: delays.Sched.Quantile(0.99), SchedMax: delays.Sched.Max()}
	if now, err := cpuset.ReadSched(os.Getpid()); err == nil {
		g.Threads = now.Sub(c.schedStart)
	}
	g.Set = worldSet
	valid, reason := cpuset.LatencyValidity(g)
	ms := func(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
	c.mu.Lock()
	intervals := slices.Clone(c.intervals)
	c.mu.Unlock()
	env.Generator = &reports.Generator{CPUPercent: g.CPUPercent, Cores: g.Cores, GOMAXPROCS: runtime.GOMAXPROCS(0),
		SchedP99Ms: ms(g.SchedP99), SchedMaxMs: ms(g.SchedMax), PauseMaxMs: ms(delays.Pauses.Max()),
		RunSeconds: g.Threads.Run.Seconds(), WaitSeconds: g.Threads.Wait.Seconds(), Set: reportSetUse(worldSet),
		LatencyValid: valid, Reason: reason}
	if len(intervals) > 0 {
		rates := cpuset.RatesOf(intervals)
		if says := rates.Says(); !valid && says != "" {
			env.Generator.Reason += "; " + says // the targets' rows then say what it could drive
		}
		env.Generator.Rates = &reports.GeneratorRates{IntervalSeconds: intervalLength.Seconds(), DelayLimitMs: ms(cpuset.DelayLimit),
			ValidUpTo: rates.ValidUpTo, InvalidFrom: rates.InvalidFrom, Valid: rates.Valid, Busy: rates.Busy}
		for _, in := range intervals {
			env.Generator.Rates.Intervals = append(env.Generator.Rates.Intervals, reports.GeneratorInterval{AtSeconds: in.At.Seconds(),
				RequestsPerSecond: in.RequestsPerSecond, SchedP99Ms: ms(in.SchedP99), CPUPercent: in.CPUPercent, OthersPercent: in.OthersPercent,
				WaitPercent: in.WaitPercent, StealPercent: in.StealPercent})
		}
	}
}

// nices is the nice value of the simulator's threads and of each child's, read back from the
// kernel now (as of its start when it has exited), or nil when the run neither pinned nor set
// a priority.
func (c *cpuRun) nices() map[string]string {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.assignment.Pinned && c.assignment.ServersNice == 0 {
		return nil
	}
	out := make(map[string]string, len(c.niced)+1)
	if n, err := cpuset.NiceOf(0); err == nil {
		out["simulator"] = n.String()
	}
	for name, ch := range c.niced {
		out[name] = ch.nice
		if n, err := cpuset.NiceOf(ch.pid); err == nil {
			out[name] = n.String()
		}
	}
	return out
}

// setUse is who used the CPU set ids since the run started: the kernel's accounting of its CPUs
// less the run time of the harness's processes pinned there (the simulator itself on the
// world's set). Zero when nothing is pinned or /proc/stat cannot be read.
func (c *cpuRun) setUse(ids []int) cpuset.SetUse {
	if !c.assignment.Pinned || len(ids) == 0 || c.statStart == nil {
		return cpuset.SetUse{}
	}
	now, err := cpuset.ReadCPUTimes()
	if err != nil {
		return cpuset.SetUse{}
	}
	return cpuset.Use(ids, now.Sub(c.statStart, ids), c.ownRun(ids), time.Since(c.wallStart))
}

// ownRun is the run time, since each was pinned, of the harness's processes on the CPU set ids:
// the children pinned there and, on the world's set, the simulator itself.
func (c *cpuRun) ownRun(ids []int) time.Duration {
	var own time.Duration
	if c.assignment.Pinned && slices.Equal(ids, c.assignment.World) {
		if s, err := cpuset.ReadSched(os.Getpid()); err == nil {
			own += s.Sub(c.schedStart).Run
		}
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, p := range c.pinned {
		if !slices.Equal(p.cpus, ids) {
			continue
		}
		if s, err := cpuset.ReadSched(p.pid); err == nil {
			own += s.Sub(p.start).Run
		}
	}
	return own
}

// reportSetUse is u for report.json (nil when not measured).
func reportSetUse(u cpuset.SetUse) *reports.SetUse {
	if u.Capacity <= 0 {
		return nil
	}
	return &reports.SetUse{CPUs: cpuset.Format(u.CPUs), CapacitySeconds: u.Capacity.Seconds(), HarnessSeconds: u.Own.Seconds(),
		OthersSeconds: u.Others.Seconds(), InterruptSeconds: u.Interrupts.Seconds(), StealSeconds: u.Steal.Seconds()}
}
