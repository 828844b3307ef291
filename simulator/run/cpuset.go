package run

import (
	"log/slog"
	"os"
	"runtime"
	"slices"
	"strings"
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
	before    []int
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
}

// pinnedChild is a child the simulator pinned to a CPU set.
type pinnedChild struct {
	pid   int
	cpus  []int
	start cpuset.Sched
}

// activeCPUs is the run in progress (nil outside a run). Children started by startChild and
// restartChild are pinned through it.
var activeCPUs atomic.Pointer[cpuRun]

// useCPUSets starts the run's CPU accounting and, when the scenario asks for CPU sets, pins the
// simulator's own threads (users, in-process fakewa) to the world's set; children are pinned as
// they start (pinChild). The returned function restores the simulator's CPUs.
func useCPUSets(f *scenario.File, log *slog.Logger) (end func()) {
	c := &cpuRun{assignment: f.CPUs.Assignment, log: log, wallStart: time.Now(), processes: map[string]string{}, delaysStart: cpuset.ReadGoDelays(), pinned: map[string]pinnedChild{}}
	c.schedStart, _ = cpuset.ReadSched(os.Getpid())
	c.statStart, _ = cpuset.ReadCPUTimes()
	c.loadStart, _ = procstat.FS{}.LoadAverage()
	if p, err := (procstat.FS{}).Process("self"); err == nil {
		c.cpuStart = p.CPU
	}
	if c.assignment.Pinned {
		c.before, _ = cpuset.Online()
		if err := cpuset.Pin(0, c.assignment.World); err != nil {
			log.Warn("could not pin the simulator to the world's CPUs", "cpus", cpuset.Format(c.assignment.World), "err", err)
		}
	}
	activeCPUs.Store(c)
	return func() {
		activeCPUs.CompareAndSwap(c, nil)
		if c.assignment.Pinned && len(c.before) > 0 {
			_ = cpuset.Pin(0, c.before)
		}
	}
}

// pinChild puts a child the simulator just started on its CPU set (the gateway's for the
// gateway, the world's for the others) and records the set the kernel says it has.
func pinChild(name string, pid int) {
	c := activeCPUs.Load()
	if c == nil || !c.assignment.Pinned {
		return
	}
	role := name
	if strings.HasPrefix(name, "gateway-") {
		role = "gateway" // a replica of a cluster run (replicas.go): on the gateway's CPU set
	}
	ids := c.assignment.ForProcess(role)
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
	env.CPUSets = sets
	c.mu.Lock()
	core, pid, start := c.core, c.corePID, c.coreStart
	c.mu.Unlock()
	gatewaySet, worldSet := c.setUse(c.assignment.Gateway), c.setUse(c.assignment.World)
	if pid > 0 {
		if now, err := cpuset.ReadSched(pid); err == nil {
			d := now.Sub(start)
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
	env.Generator = &reports.Generator{CPUPercent: g.CPUPercent, Cores: g.Cores, GOMAXPROCS: runtime.GOMAXPROCS(0),
		SchedP99Ms: ms(g.SchedP99), SchedMaxMs: ms(g.SchedMax), PauseMaxMs: ms(delays.Pauses.Max()),
		RunSeconds: g.Threads.Run.Seconds(), WaitSeconds: g.Threads.Wait.Seconds(), Set: reportSetUse(worldSet),
		LatencyValid: valid, Reason: reason}
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
	var own time.Duration
	if slices.Equal(ids, c.assignment.World) {
		if s, err := cpuset.ReadSched(os.Getpid()); err == nil {
			own += s.Sub(c.schedStart).Run
		}
	}
	c.mu.Lock()
	for _, p := range c.pinned {
		if !slices.Equal(p.cpus, ids) {
			continue
		}
		if s, err := cpuset.ReadSched(p.pid); err == nil {
			own += s.Sub(p.start).Run
		}
	}
	c.mu.Unlock()
	return cpuset.Use(ids, now.Sub(c.statStart, ids), own, time.Since(c.wallStart))
}

// reportSetUse is u for report.json (nil when not measured).
func reportSetUse(u cpuset.SetUse) *reports.SetUse {
	if u.Capacity <= 0 {
		return nil
	}
	return &reports.SetUse{CPUs: cpuset.Format(u.CPUs), CapacitySeconds: u.Capacity.Seconds(), HarnessSeconds: u.Own.Seconds(),
		OthersSeconds: u.Others.Seconds(), InterruptSeconds: u.Interrupts.Seconds(), StealSeconds: u.Steal.Seconds()}
}
