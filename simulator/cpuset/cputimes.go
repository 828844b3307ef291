package cpuset

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"

	"wagate/internal/procstat"
)

// CPUTime is what the kernel accounted to one CPU (/proc/stat's cpuN line): the time it ran
// processes (user, nice, system), handled interrupts (irq, softirq: on loopback the network's
// receive work of whichever process sent), sat idle (idle, iowait), and the time the hypervisor
// ran something else while this VM wanted it (steal).
type CPUTime struct {
	Tasks, Interrupts, Idle, Steal time.Duration
}

// CPUTimes is the kernel's accounting per CPU id.
type CPUTimes map[int]CPUTime

// ReadCPUTimes reads /proc/stat.
func ReadCPUTimes() (CPUTimes, error) {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return nil, fmt.Errorf("per-CPU accounting: %w", err)
	}
	return ParseCPUTimes(string(b))
}

// ParseCPUTimes reads the cpuN lines of a /proc/stat text (fields user nice system idle iowait irq
// softirq steal, in USER_HZ ticks; guest time is already inside user and nice).
func ParseCPUTimes(stat string) (CPUTimes, error) {
	out := CPUTimes{}
	for line := range strings.SplitSeq(stat, "\n") {
		f := strings.Fields(line)
		if len(f) == 0 || !strings.HasPrefix(f[0], "cpu") || f[0] == "cpu" {
			continue
		}
		id, err := strconv.Atoi(strings.TrimPrefix(f[0], "cpu"))
		if err != nil || id < 0 {
			return nil, fmt.Errorf("/proc/stat line %q: not a CPU id", line)
		}
		if len(f) < 9 {
			return nil, fmt.Errorf("/proc/stat line %q: want 8 counters, up to steal", line)
		}
		var n [8]int64
		for i := range n {
			if n[i], err = strconv.ParseInt(f[i+1], 10, 64); err != nil || n[i] < 0 {
				return nil, fmt.Errorf("/proc/stat line %q: counter %q is not a count of ticks", line, f[i+1])
			}
		}
		out[id] = CPUTime{
			Tasks:      procstat.Ticks(n[0] + n[1] + n[2]),
			Idle:       procstat.Ticks(n[3] + n[4]),
			Interrupts: procstat.Ticks(n[5] + n[6]),
			Steal:      procstat.Ticks(n[7]),
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("/proc/stat: no cpuN line")
	}
	return out, nil
}

// Sub is the accounting of set's CPUs between earlier and t, summed.
func (t CPUTimes) Sub(earlier CPUTimes, set []int) CPUTime {
	var s CPUTime
	for _, id := range set {
		now, then := t[id], earlier[id]
		s.Tasks += now.Tasks - then.Tasks
		s.Interrupts += now.Interrupts - then.Interrupts
		s.Idle += now.Idle - then.Idle
		s.Steal += now.Steal - then.Steal
	}
	return s
}

// SetUse is who used a CPU set over a run: the harness's own processes pinned to it (Own: the
// kernel's run time of their threads; Self of them the process judged, the generator or the
// gateway), every other process of the machine (Others: the set's task time less Own), the
// kernel's interrupt work and the hypervisor's steal, out of Capacity (the run's wall time times
// the set's CPUs).
type SetUse struct {
	CPUs                                           []int
	Capacity, Own, Self, Others, Interrupts, Steal time.Duration
}

// Use is who used set over wall, given what the kernel accounted to its CPUs (cpu) and the run
// time of the harness's processes pinned there (own). Tick rounding can make own exceed the task
// time by a tick or two: others is then 0.
func Use(set []int, cpu CPUTime, own, wall time.Duration) SetUse {
	return SetUse{CPUs: set, Capacity: wall * time.Duration(len(set)), Own: own, Others: max(cpu.Tasks-own, 0),
		Interrupts: cpu.Interrupts, Steal: cpu.Steal}
}

// Share is d in % of the set's capacity (0 when the capacity is not known).
func (u SetUse) Share(d time.Duration) float64 {
	if u.Capacity <= 0 {
		return 0
	}
	return 100 * float64(d) / float64(u.Capacity)
}

// OthersLimit is the share of a CPU set's capacity other processes (not the harness's) may use
// before a wait for a CPU is put down to them rather than to the process's own threads.
const OthersLimit = 5.0

// Neighbours says who a process that waited for a CPU waited for: other processes of the machine
// that ran on its set, the hypervisor's steal, or, when neither took a noticeable share, its own
// threads (more runnable threads than CPUs) and the harness's other processes on the set.
func (u SetUse) Neighbours() string {
	if u.Capacity <= 0 {
		return "who else ran on its CPUs was not measured"
	}
	var parts []string
	if u.Share(u.Others) >= OthersLimit {
		parts = append(parts, fmt.Sprintf("other processes of the machine ran %.1f s on CPU %s (%.0f%% of it)", u.Others.Seconds(), Format(u.CPUs), u.Share(u.Others)))
	}
	if u.Share(u.Steal) >= OthersLimit {
		parts = append(parts, fmt.Sprintf("the hypervisor took %.1f s of CPU %s (steal, %.0f%%)", u.Steal.Seconds(), Format(u.CPUs), u.Share(u.Steal)))
	}
	if harness := max(u.Own-u.Self, 0); u.Self > 0 && u.Share(harness) >= OthersLimit {
		parts = append(parts, fmt.Sprintf("the harness's other processes on CPU %s ran %.1f s (%.0f%%)", Format(u.CPUs), harness.Seconds(), u.Share(harness)))
	}
	if len(parts) == 0 {
		return fmt.Sprintf("other processes of the machine ran only %.1f s on CPU %s (%.1f%%) and steal was %.1f s: it waited for its own threads and the harness's processes there", u.Others.Seconds(), Format(u.CPUs), u.Share(u.Others), u.Steal.Seconds())
	}
	return strings.Join(parts, "; ")
}

// Shared says whether anyone else took OthersLimit of the set or more: other processes of the
// machine, the hypervisor, or the harness's processes besides Self.
func (u SetUse) Shared() bool {
	return u.Share(u.Others) >= OthersLimit || u.Share(u.Steal) >= OthersLimit || (u.Self > 0 && u.Share(max(u.Own-u.Self, 0)) >= OthersLimit)
}
