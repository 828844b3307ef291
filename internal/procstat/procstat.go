// Package procstat reads the CPU and memory accounting of Linux processes and of the machine from
// a /proc file system: one process's CPU time and resident memory, the CPU of whole process trees
// (a php-fpm or nginx master with its workers), the machine's busy CPU time and load average. The
// simulator samples the gateway and the real Laravel app with it; the Laravel calibration splits
// the machine's CPU between the server, the load generator and everyone else.
package procstat

import (
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// ClockTicks is USER_HZ, the unit of /proc CPU times (100 on every mainstream Linux build).
const ClockTicks = 100

// ErrNoProc matches (errors.Is) every failure to read accounting from /proc.
var ErrNoProc = errors.New("procstat: /proc accounting unavailable")

// FS is a /proc file system; the zero value reads "/proc".
type FS struct {
	// Root is the mount point ("" means "/proc"); tests point it at a fake tree.
	Root string
}

func (fs FS) path(elem ...string) string {
	root := fs.Root
	if root == "" {
		root = "/proc"
	}
	return filepath.Join(append([]string{root}, elem...)...)
}

// Ticks converts /proc clock ticks to a duration.
func Ticks(n int64) time.Duration { return time.Duration(n) * (time.Second / ClockTicks) }

// maxTicks is the most clock ticks a time.Duration holds (292 years of CPU); ParseStat refuses
// more for utime or stime, so that their sum converts without overflow.
const maxTicks = math.MaxInt64 / (1_000_000_000 / ClockTicks) / 2

// Process is one reading of /proc/<pid>/stat.
type Process struct {
	// CPU is user + system time so far.
	CPU time.Duration
	// PPID is the parent's pid.
	PPID int
	// Nice is its nice value (field 19; on Linux the thread's whose stat was read: nice is per
	// thread). 0 when the line ends before it.
	Nice int
}

// Process reads one process ("self" or a pid).
func (fs FS) Process(pid string) (Process, error) {
	data, err := os.ReadFile(fs.path(pid, "stat"))
	if err != nil {
		return Process{}, fmt.Errorf("%w: %w", ErrNoProc, err)
	}
	return ParseStat(string(data))
}

// ParseStat reads utime+stime, ppid and nice from a /proc/<pid>/stat line. The command name (field 2)
// is in parentheses and may contain spaces and parentheses, so fields are counted after the last ')'.
func ParseStat(line string) (Process, error) {
	i := strings.LastIndexByte(line, ')')
	if i < 0 {
		return Process{}, fmt.Errorf("%w: malformed stat line", ErrNoProc)
	}
	f := strings.Fields(line[i+1:])
	// f[0] is field 3 (state); ppid is field 4, utime 14, stime 15.
	if len(f) < 13 {
		return Process{}, fmt.Errorf("%w: short stat line", ErrNoProc)
	}
	ppid, err1 := strconv.Atoi(f[1])
	ut, err2 := strconv.ParseUint(f[11], 10, 63)
	st, err3 := strconv.ParseUint(f[12], 10, 63)
	if err := errors.Join(err1, err2, err3); err != nil {
		return Process{}, fmt.Errorf("%w: stat fields: %w", ErrNoProc, err)
	}
	if ut > maxTicks || st > maxTicks {
		return Process{}, fmt.Errorf("%w: CPU ticks %d + %d out of range", ErrNoProc, ut, st)
	}
	p := Process{CPU: Ticks(int64(ut + st)), PPID: ppid}
	if len(f) > 16 { // nice is field 19
		n, err := strconv.Atoi(f[16])
		if err != nil {
			return Process{}, fmt.Errorf("%w: stat nice field: %w", ErrNoProc, err)
		}
		p.Nice = n
	}
	return p, nil
}

// RSS returns the resident set size of one process in bytes (VmRSS of /proc/<pid>/status).
func (fs FS) RSS(pid string) (int64, error) {
	data, err := os.ReadFile(fs.path(pid, "status"))
	if err != nil {
		return 0, fmt.Errorf("%w: %w", ErrNoProc, err)
	}
	for _, line := range strings.Split(string(data), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			f := strings.Fields(rest)
			if len(f) == 0 {
				break
			}
			kb, err := strconv.ParseInt(f[0], 10, 64)
			if err != nil {
				return 0, fmt.Errorf("%w: VmRSS %q", ErrNoProc, rest)
			}
			return kb * 1024, nil
		}
	}
	return 0, fmt.Errorf("%w: no VmRSS for %s (a kernel thread or a zombie)", ErrNoProc, pid)
}

// TreeCPU sums the CPU of the roots and all their descendants (processes that exit between the
// listing and the reading are skipped). It fails when none of the roots is running.
func (fs FS) TreeCPU(roots []int) (time.Duration, error) {
	entries, err := os.ReadDir(fs.path())
	if err != nil {
		return 0, fmt.Errorf("%w: %w", ErrNoProc, err)
	}
	procs := map[int]Process{}
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		p, err := fs.Process(e.Name())
		if err != nil {
			continue // exited while we looked
		}
		procs[pid] = p
	}
	isRoot := make(map[int]bool, len(roots))
	for _, r := range roots {
		isRoot[r] = true
	}
	inTree := func(pid int) bool {
		for range 64 { // deeper than any real tree; a loop in corrupt data ends here
			if isRoot[pid] {
				return true
			}
			p, ok := procs[pid]
			if !ok || p.PPID <= 1 {
				return false
			}
			pid = p.PPID
		}
		return false
	}
	var total time.Duration
	found := false
	for pid, p := range procs {
		if inTree(pid) {
			total += p.CPU
			found = true
		}
	}
	if !found {
		return 0, fmt.Errorf("%w: none of the pids %v is running", ErrNoProc, roots)
	}
	return total, nil
}

// MachineBusy sums the non-idle fields of /proc/stat's "cpu" line: the CPU time all cores spent
// on anything but idle and iowait.
func (fs FS) MachineBusy() (time.Duration, error) {
	data, err := os.ReadFile(fs.path("stat"))
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
	return Ticks(busy), nil
}

// LoadAverage returns the 1, 5 and 15 minute load averages of /proc/loadavg.
func (fs FS) LoadAverage() ([3]float64, error) {
	var la [3]float64
	data, err := os.ReadFile(fs.path("loadavg"))
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
