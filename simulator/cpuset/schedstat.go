package cpuset

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// Sched is what the kernel's scheduler accounted to a process's threads (summed): the time they
// ran on a CPU and the time they were runnable but waited for one (/proc/PID/task/*/schedstat).
// Threads that exited are no longer counted.
type Sched struct {
	Run, Wait time.Duration
}

// Sub is the accounting between an earlier reading and s.
func (s Sched) Sub(earlier Sched) Sched {
	return Sched{Run: s.Run - earlier.Run, Wait: s.Wait - earlier.Wait}
}

// ReadSched reads process pid's scheduler accounting.
func ReadSched(pid int) (Sched, error) {
	dirs, err := filepath.Glob(fmt.Sprintf("/proc/%d/task/*/schedstat", pid))
	if err != nil || len(dirs) == 0 {
		return Sched{}, fmt.Errorf("scheduler accounting of process %d: not found", pid)
	}
	var total Sched
	for _, f := range dirs {
		b, err := os.ReadFile(f)
		if err != nil {
			continue // the thread exited meanwhile
		}
		s, err := ParseSchedstat(string(b))
		if err != nil {
			return Sched{}, fmt.Errorf("%s: %w", f, err)
		}
		total.Run += s.Run
		total.Wait += s.Wait
	}
	return total, nil
}

// ParseSchedstat reads one thread's schedstat line: nanoseconds on a CPU, nanoseconds waiting on
// a run queue, time slices.
func ParseSchedstat(line string) (Sched, error) {
	f := strings.Fields(line)
	if len(f) < 2 {
		return Sched{}, fmt.Errorf("schedstat %q: want at least 2 fields", strings.TrimSpace(line))
	}
	run, err1 := strconv.ParseInt(f[0], 10, 64)
	wait, err2 := strconv.ParseInt(f[1], 10, 64)
	if err1 != nil || err2 != nil || run < 0 || wait < 0 {
		return Sched{}, fmt.Errorf("schedstat %q: not two counts of nanoseconds", strings.TrimSpace(line))
	}
	return Sched{Run: time.Duration(run), Wait: time.Duration(wait)}, nil
}

// StarvationLimit is the share of its runnable time the process measured on the gateway's CPU
// set (the gateway, or the floor) may spend waiting for a CPU: beyond it, more time waiting than
// running, other processes share its core and its latency and CPU figures measure the machine.
const StarvationLimit = 0.5

// CoreValidity says whether the process on the gateway's CPU set had its core: valid unless its
// threads waited for a CPU more than StarvationLimit of the time they could run. The reason says
// how much they waited and, from use (who used the set over the run), for whom: other processes
// of the machine, the hypervisor, or its own threads.
func CoreValidity(process string, s Sched, use SetUse) (valid bool, reason string) {
	runnable := s.Run + s.Wait
	if runnable <= 0 {
		return true, ""
	}
	share := float64(s.Wait) / float64(runnable)
	if share > StarvationLimit {
		return false, fmt.Sprintf("the %s's threads waited for a CPU %.0f%% of the time they could run (limit %.0f%%): %s", process, share*100, StarvationLimit*100, use.Neighbours())
	}
	return true, ""
}
