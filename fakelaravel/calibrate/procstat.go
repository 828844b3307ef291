package calibrate

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// clockTicks is USER_HZ, the unit of /proc CPU times (100 on every mainstream Linux build).
const clockTicks = 100

// ErrNoProc matches (errors.Is) a failure to read CPU times from /proc.
var ErrNoProc = errors.New("calibrate: /proc CPU accounting unavailable")

// CPUSample is a snapshot of CPU time: the server's processes (the trees under the given root
// pids), this process, and the whole machine.
type CPUSample struct {
	At time.Time
	// Server is the user+system CPU of the server's process trees.
	Server time.Duration
	// Self is the user+system CPU of this process (the load generator).
	Self time.Duration
	// Busy is the non-idle CPU of the whole machine (all cores).
	Busy time.Duration
}

// Usage is the CPU spent between two samples.
type Usage struct {
	Wall   time.Duration
	Server time.Duration
	Self   time.Duration
	// Others is the CPU of every other process on the machine (other users of the cores).
	Others time.Duration
}

// Sub returns the usage from earlier to s.
func (s CPUSample) Sub(earlier CPUSample) Usage {
	u := Usage{Wall: s.At.Sub(earlier.At), Server: s.Server - earlier.Server, Self: s.Self - earlier.Self}
	u.Others = max(0, (s.Busy-earlier.Busy)-u.Server-u.Self)
	return u
}

// Cores expresses a CPU time over the usage's wall time in cores.
func (u Usage) Cores(cpu time.Duration) float64 {
	if u.Wall <= 0 {
		return 0
	}
	return cpu.Seconds() / u.Wall.Seconds()
}

// Sampler reads CPU times from a /proc file system.
type Sampler struct {
	// Proc is the /proc mount ("/proc").
	Proc string
	// Roots are the pids whose process trees make up the server (php-fpm and nginx masters); none
	// means the server's CPU is not measured (an in-process server is part of Self).
	Roots []int
}

// Sample takes a snapshot.
func (sm Sampler) Sample() (CPUSample, error) {
	s := CPUSample{At: time.Now()}
	var err error
	if s.Busy, err = sm.machineBusy(); err != nil {
		return s, err
	}
	self, _, err := sm.procCPU("self")
	if err != nil {
		return s, err
	}
	s.Self = self
	if len(sm.Roots) == 0 {
		return s, nil
	}
	s.Server, err = sm.treeCPU()
	return s, err
}

// machineBusy sums the non-idle fields of /proc/stat's "cpu" line.
func (sm Sampler) machineBusy() (time.Duration, error) {
	data, err := os.ReadFile(filepath.Join(sm.Proc, "stat"))
	if err != nil {
		return 0, fmt.Errorf("%w: %w", ErrNoProc, err)
	}
	line, _, _ := strings.Cut(string(data), "\n")
	f := strings.Fields(line)
	if len(f) < 8 || f[0] != "cpu" {
		return 0, fmt.Errorf("%w: unexpected /proc/stat line %q", ErrNoProc, line)
	}
	var busy int64
	for i, v := range f[1:] {
		if i >= 8 { // guest times are already included in user and nice
			break
		}
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			return 0, fmt.Errorf("%w: /proc/stat field %q", ErrNoProc, v)
		}
		if i == 3 || i == 4 { // idle, iowait
			continue
		}
		busy += n
	}
	return ticks(busy), nil
}

func ticks(n int64) time.Duration { return time.Duration(n) * time.Second / clockTicks }

// procCPU returns utime+stime and the parent pid of one process ("self" or a pid).
func (sm Sampler) procCPU(pid string) (time.Duration, int, error) {
	data, err := os.ReadFile(filepath.Join(sm.Proc, pid, "stat"))
	if err != nil {
		return 0, 0, fmt.Errorf("%w: %w", ErrNoProc, err)
	}
	return parseStat(string(data))
}

// parseStat reads utime+stime and ppid from a /proc/<pid>/stat line. The command name (field 2)
// is in parentheses and may contain spaces, so fields are counted after the last ')'.
func parseStat(line string) (time.Duration, int, error) {
	i := strings.LastIndexByte(line, ')')
	if i < 0 {
		return 0, 0, fmt.Errorf("%w: malformed stat line", ErrNoProc)
	}
	f := strings.Fields(line[i+1:])
	// f[0] is field 3 (state); ppid is field 4, utime 14, stime 15.
	if len(f) < 13 {
		return 0, 0, fmt.Errorf("%w: short stat line", ErrNoProc)
	}
	ppid, err1 := strconv.Atoi(f[1])
	ut, err2 := strconv.ParseUint(f[11], 10, 32)
	st, err3 := strconv.ParseUint(f[12], 10, 32)
	if err := errors.Join(err1, err2, err3); err != nil {
		return 0, 0, fmt.Errorf("%w: stat fields: %w", ErrNoProc, err)
	}
	return ticks(int64(ut + st)), ppid, nil
}

// treeCPU sums the CPU of the roots and all their descendants.
func (sm Sampler) treeCPU() (time.Duration, error) {
	entries, err := os.ReadDir(sm.Proc)
	if err != nil {
		return 0, fmt.Errorf("%w: %w", ErrNoProc, err)
	}
	type proc struct {
		cpu  time.Duration
		ppid int
	}
	procs := map[int]proc{}
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		cpu, ppid, err := sm.procCPU(e.Name())
		if err != nil {
			continue // exited while we looked
		}
		procs[pid] = proc{cpu, ppid}
	}
	inTree := func(pid int) bool {
		for range 64 {
			for _, r := range sm.Roots {
				if pid == r {
					return true
				}
			}
			p, ok := procs[pid]
			if !ok || p.ppid <= 1 {
				return false
			}
			pid = p.ppid
		}
		return false
	}
	var total time.Duration
	found := false
	for pid, p := range procs {
		if inTree(pid) {
			total += p.cpu
			found = true
		}
	}
	if !found {
		return 0, fmt.Errorf("%w: none of the server pids %v is running", ErrNoProc, sm.Roots)
	}
	return total, nil
}

// LoadAverage returns the 1, 5 and 15 minute load averages of /proc/loadavg.
func (sm Sampler) LoadAverage() ([3]float64, error) {
	var la [3]float64
	data, err := os.ReadFile(filepath.Join(sm.Proc, "loadavg"))
	if err != nil {
		return la, fmt.Errorf("%w: %w", ErrNoProc, err)
	}
	f := strings.Fields(string(data))
	if len(f) < 3 {
		return la, fmt.Errorf("%w: malformed loadavg", ErrNoProc)
	}
	for i := range 3 {
		if la[i], err = strconv.ParseFloat(f[i], 64); err != nil {
			return la, fmt.Errorf("%w: loadavg: %w", ErrNoProc, err)
		}
	}
	return la, nil
}
