package reports

import (
	"fmt"
	"slices"
	"strings"
)

// CPUSets says where a run's processes ran: the gateway on its own CPU set, the world (the
// simulator's users and in-process fakewa, fakelaravel, redis-server) on the rest.
type CPUSets struct {
	// Pinned says whether the processes were pinned.
	Pinned bool `json:"pinned"`
	// Note says why nothing was pinned ("not requested", "one core: ...").
	Note string `json:"note,omitempty"`
	// Processes maps a process ("gateway", "simulator", "fakelaravel", "redis-server", "floor") to
	// the CPU list it could run on, read back from the kernel ("1", "0-2").
	Processes map[string]string `json:"processes,omitempty"`
	// Nice maps a process to the nice value of its threads, read back from the kernel at the
	// end of the run ("10", or "0 to 10" when they differ): the world's servers (fakewa's child,
	// fakelaravel, redis-server) run below the load generator's priority (scenario
	// cpus.serversNice), the gateway and the simulator at their own.
	Nice map[string]string `json:"nice,omitempty"`
	// Autogroup is the simulator's scheduling group when the kernel groups threads by session
	// (/proc/self/autogroup, "/autogroup-12 nice 0"; empty when it does not): nice orders threads
	// only within a group, and each group (the harness's, and every other session's on the
	// machine) shares a CPU with the others by the group's own nice.
	Autogroup string `json:"autogroup,omitempty"`
}

// LoadAverage is the machine's /proc/loadavg (1, 5 and 15 minutes) at the start and end of a run:
// a run on a loaded machine measures the machine as much as the gateway.
type LoadAverage struct {
	Start [3]float64 `json:"start"`
	End   [3]float64 `json:"end"`
}

// Generator is the load generator's (the simulator process's: users and in-process fakewa) own
// CPU and scheduling delays over a run. A generator above 90% of its cores, or whose goroutines
// waited to run more than 1 ms at the 99th percentile, measured its own queueing: the run's
// latency is not valid for the latency targets.
type Generator struct {
	// CPUPercent is its mean CPU in % of one core; Cores is how many CPUs it could use.
	CPUPercent float64 `json:"cpu_percent"`
	Cores      int     `json:"cores"`
	// GOMAXPROCS is the Go processors it ran its goroutines on at the end of the run.
	GOMAXPROCS int `json:"gomaxprocs,omitempty"`
	// SchedP99Ms and SchedMaxMs are the 99th percentile and the longest of the time its goroutines
	// were runnable before they ran (Go's /sched/latencies:seconds, bucket upper bounds), and
	// PauseMaxMs its longest stopped-world pause: delays a poller's answer waits before it is timed.
	SchedP99Ms float64 `json:"sched_latency_p99_ms,omitempty"`
	SchedMaxMs float64 `json:"sched_latency_max_ms,omitempty"`
	PauseMaxMs float64 `json:"pause_max_ms,omitempty"`
	// RunSeconds and WaitSeconds are what the kernel accounted to its threads: the time they ran
	// and the time they were runnable but waited for a CPU (other processes on its CPU set).
	RunSeconds  float64 `json:"run_seconds,omitempty"`
	WaitSeconds float64 `json:"wait_seconds,omitempty"`
	// Set is who used its CPU set over the run (nil: not measured).
	Set *SetUse `json:"cpu_set_use,omitempty"`
	// Rates is what its intervals say about the load it drove within the delay limit (nil: not
	// measured).
	Rates *GeneratorRates `json:"rates,omitempty"`
	// LatencyValid is false when it saturated its cores or delayed its goroutines; Reason says so.
	LatencyValid bool   `json:"latency_valid"`
	Reason       string `json:"reason,omitempty"`
}

// GeneratorRates is the load generator's run cut into intervals: in each, the requests it made per
// second and how long its goroutines waited to run at p99. ValidUpTo is the busiest interval
// (requests/s) whose goroutines waited at most DelayLimitMs, InvalidFrom the least busy that waited
// longer (0: none did); Valid of Busy intervals (those with requests) were within the limit. On a
// run whose users arrive over a ramp it says what request rate one generator drives validly.
type GeneratorRates struct {
	IntervalSeconds float64             `json:"interval_seconds"`
	DelayLimitMs    float64             `json:"delay_limit_ms"`
	ValidUpTo       float64             `json:"valid_up_to_requests_per_second"`
	InvalidFrom     float64             `json:"invalid_from_requests_per_second,omitempty"`
	Valid           int                 `json:"valid_intervals"`
	Busy            int                 `json:"busy_intervals"`
	Intervals       []GeneratorInterval `json:"intervals,omitempty"`
}

// GeneratorInterval is one interval of GeneratorRates, ending AtSeconds after the run started;
// OthersPercent is the share of the generator's CPU set other processes of the machine used,
// StealPercent the share the hypervisor took, WaitPercent how long the generator's threads waited
// for a CPU (% of the interval, summed over threads).
type GeneratorInterval struct {
	AtSeconds         float64 `json:"at_seconds"`
	RequestsPerSecond float64 `json:"requests_per_second"`
	SchedP99Ms        float64 `json:"sched_latency_p99_ms"`
	CPUPercent        float64 `json:"cpu_percent"`
	OthersPercent     float64 `json:"others_percent,omitempty"`
	WaitPercent       float64 `json:"wait_percent,omitempty"`
	StealPercent      float64 `json:"steal_percent,omitempty"`
}

// text says what the intervals show, for report.md.
func (r *GeneratorRates) text() string {
	l := fmt.Sprintf("load generator in %s s intervals: its goroutines waited at most %s ms at p99 in %d of %d with requests",
		formatValue(r.IntervalSeconds, ""), formatValue(r.DelayLimitMs, ""), r.Valid, r.Busy)
	if r.Valid > 0 {
		l += fmt.Sprintf(", the busiest of them at %s requests/s", formatValue(r.ValidUpTo, ""))
	}
	if r.InvalidFrom > 0 {
		l += fmt.Sprintf("; longer from %s requests/s (the least busy interval beyond the limit)", formatValue(r.InvalidFrom, ""))
	}
	return l
}

// CoreWait is what the scheduler accounted to the process on the gateway's CPU set (the gateway,
// or a floor entry's server) over the run: the time its threads ran and the time they were
// runnable but waited for a CPU. A process that waited more than it ran did not have its core
// (other processes shared it): its latency and CPU figures measure the machine, not the gateway.
type CoreWait struct {
	Process     string  `json:"process"`
	RunSeconds  float64 `json:"run_seconds"`
	WaitSeconds float64 `json:"wait_seconds"`
	// Set is who used its CPU set over the run (nil: not measured).
	Set *SetUse `json:"cpu_set_use,omitempty"`
	// Valid is false when it did not have its core; Reason says so.
	Valid  bool   `json:"valid"`
	Reason string `json:"reason,omitempty"`
}

// SetUse is who used a CPU set over a run, from the kernel's per-CPU accounting (/proc/stat):
// the harness's processes pinned to it (their threads' run time), every other process of the
// machine, interrupt work (on loopback, the network receive work of whichever process sent) and
// the hypervisor's steal, out of the run's wall time times the set's CPUs.
type SetUse struct {
	CPUs             string  `json:"cpus"`
	CapacitySeconds  float64 `json:"capacity_seconds"`
	HarnessSeconds   float64 `json:"harness_seconds"`
	OthersSeconds    float64 `json:"others_seconds"`
	InterruptSeconds float64 `json:"interrupt_seconds"`
	StealSeconds     float64 `json:"steal_seconds"`
}

// text says who used the set, for report.md.
func (u *SetUse) text() string {
	pct := func(s float64) string {
		if u.CapacitySeconds <= 0 {
			return "?"
		}
		return formatValue(100*s/u.CapacitySeconds, "") + "%"
	}
	return fmt.Sprintf("CPU %s over the run (%s s): the harness's processes there %s s (%s), other processes %s s (%s), interrupts %s s, steal %s s",
		u.CPUs, formatValue(u.CapacitySeconds, ""), formatValue(u.HarnessSeconds, ""), pct(u.HarnessSeconds),
		formatValue(u.OthersSeconds, ""), pct(u.OthersSeconds), formatValue(u.InterruptSeconds, ""), formatValue(u.StealSeconds, ""))
}

// cpuLines describes a report's CPU sets, load and load generator for report.md, or nothing
// when the report predates them.
func cpuLines(env Environment) []string {
	var lines []string
	if c := env.CPUSets; c != nil {
		if c.Pinned {
			names := make([]string, 0, len(c.Processes))
			for n := range c.Processes {
				names = append(names, n)
			}
			slices.Sort(names)
			parts := make([]string, 0, len(names))
			for _, n := range names {
				part := fmt.Sprintf("%s on CPU %s", n, c.Processes[n])
				if nice, ok := c.Nice[n]; ok {
					part += " at nice " + nice
				}
				parts = append(parts, part)
			}
			l := "CPU sets: " + strings.Join(parts, ", ")
			if c.Autogroup != "" {
				l += "; scheduler group of the harness " + c.Autogroup
			}
			lines = append(lines, l)
		} else {
			l := "CPU sets: not pinned, " + c.Note
			if len(c.Nice) > 0 {
				names := make([]string, 0, len(c.Nice))
				for n := range c.Nice {
					names = append(names, n)
				}
				slices.Sort(names)
				parts := make([]string, 0, len(names))
				for _, n := range names {
					parts = append(parts, n+" at nice "+c.Nice[n])
				}
				l += "; " + strings.Join(parts, ", ")
			}
			lines = append(lines, l)
		}
	}
	if l := env.LoadAverage; l != nil {
		lines = append(lines, fmt.Sprintf("machine load average (1, 5, 15 min): %s at the start, %s at the end", loadText(l.Start), loadText(l.End)))
	}
	if g := env.Generator; g != nil {
		l := fmt.Sprintf("load generator CPU: %s%% of a core on %d core(s)", formatValue(g.CPUPercent, ""), g.Cores)
		if g.SchedP99Ms > 0 || g.SchedMaxMs > 0 {
			l += fmt.Sprintf(", GOMAXPROCS %d, its goroutines waited to run %s ms at p99 (longest %s ms, longest pause %s ms)",
				g.GOMAXPROCS, formatValue(g.SchedP99Ms, ""), formatValue(g.SchedMaxMs, ""), formatValue(g.PauseMaxMs, ""))
		}
		if g.RunSeconds > 0 {
			l += fmt.Sprintf(", its threads ran %s s and waited %s s for a CPU", formatValue(g.RunSeconds, ""), formatValue(g.WaitSeconds, ""))
		}
		if g.LatencyValid {
			l += ", not saturated: latency valid for the targets"
		} else {
			l += "; **not valid for latency targets**: " + g.Reason
		}
		lines = append(lines, l)
		if g.Set != nil {
			lines = append(lines, "load generator's "+g.Set.text())
		}
		if g.Rates != nil {
			lines = append(lines, g.Rates.text())
		}
	}
	if w := env.GatewayCore; w != nil {
		l := fmt.Sprintf("%s's threads ran %s s and waited %s s for a CPU", w.Process, formatValue(w.RunSeconds, ""), formatValue(w.WaitSeconds, ""))
		if w.Valid {
			l += ": it had its core"
		} else {
			l += "; **not valid for latency and CPU targets**: " + w.Reason
		}
		lines = append(lines, l)
		if w.Set != nil {
			lines = append(lines, w.Process+"'s "+w.Set.text())
		}
	}
	if w := env.GatewayWait; w != nil && w.Dominant != "" {
		lines = append(lines, w.text())
	}
	return lines
}

func loadText(l [3]float64) string {
	return fmt.Sprintf("%.2f %.2f %.2f", l[0], l[1], l[2])
}

// latencyInvalid returns the reason an entry's latency is not the gateway's (a report whose load
// generator saturated its cores or delayed its goroutines), or "".
func latencyInvalid(e *Entry) string {
	for _, r := range e.Reports {
		if g := r.Environment.Generator; g != nil && !g.LatencyValid {
			return "not valid: " + g.Reason
		}
		if w := r.Environment.GatewayCore; w != nil && !w.Valid {
			return "not valid: " + w.Reason
		}
	}
	return ""
}

// coreInvalid returns the reason an entry's gateway did not have its core, or "".
func coreInvalid(e *Entry) string {
	for _, r := range e.Reports {
		if w := r.Environment.GatewayCore; w != nil && !w.Valid {
			return "not valid: " + w.Reason
		}
	}
	return ""
}
