package cpuset

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"

	"wagate/internal/procstat"
)

// DefaultServersNice is how far below the load generator's priority (in nice steps) the world's
// servers (fakewa's child process, fakelaravel, redis-server, PostgreSQL: what the simulator
// starts besides the gateway) run when the run is pinned and the scenario does not say otherwise.
// They stand for remote systems that in production do not share the client's CPU: ten nice steps
// below it the kernel gives the load generator about ten times their share of the world's CPU
// when both are runnable (CFS weights 1024 against 110 at nice 0 and 10), so a poller whose answer
// has arrived no longer waits behind 1000 devices' handshakes for its thread to run. The gateway
// keeps the simulator's own priority.
const DefaultServersNice = 10

// MaxNice is the highest nice value Linux knows (the lowest priority).
const MaxNice = 19

// Below is the nice value n steps below a process at nice own: own+n, at most MaxNice.
func Below(own, n int) int {
	return min(own+n, MaxNice)
}

// ResolveNice is how many nice steps below the simulator's the world's servers run: the
// scenario's (set; nil: not given), or DefaultServersNice when the run is pinned, else 0 (their
// priority left as the simulator's). A negative value would put the servers ahead of the load
// generator, one above MaxNice is beyond any priority: both are errors of the scenario.
func ResolveNice(set *int, pinned bool) (int, error) {
	if set == nil {
		if pinned {
			return DefaultServersNice, nil
		}
		return 0, nil
	}
	if *set < 0 || *set > MaxNice {
		return 0, fmt.Errorf("%w: serversNice %d is not between 0 (the load generator's priority) and %d (nice steps below it)", ErrCPUs, *set, MaxNice)
	}
	return *set, nil
}

// NiceFor is how many nice steps below the simulator's priority a process the simulator starts
// runs: 0 for the gateway, its replicas ("gateway-2") and the floor, ServersNice for the world's
// servers.
func (a Assignment) NiceFor(name string) int {
	if IsGatewaySide(name) {
		return 0
	}
	return a.ServersNice
}

// IsGatewaySide reports whether the process named name runs where the gateway does: the
// gateway, a replica of a cluster run ("gateway-2") or the floor (the server it is compared with).
func IsGatewaySide(name string) bool {
	return name == "gateway" || name == "floor" || strings.HasPrefix(name, "gateway-")
}

// Renice sets the nice value of every thread of process pid. On Linux nice is a thread's
// (setpriority(PRIO_PROCESS, tid)) and a new thread inherits its creator's, so Renice sets each
// thread listed in /proc/<pid>/task, again until a pass finds every thread at nice (a thread
// created meanwhile by one not yet set is caught by the next pass), at most five passes.
func Renice(pid, nice int) error {
	dir := filepath.Join("/proc", strconv.Itoa(pid), "task")
	var errs []error
	for range 5 {
		entries, err := os.ReadDir(dir)
		if err != nil {
			return fmt.Errorf("renice %d: %w", pid, err)
		}
		errs = errs[:0]
		changed := false
		for _, e := range entries {
			tid, err := strconv.Atoi(e.Name())
			if err != nil {
				continue
			}
			if p, err := (procstat.FS{}).Process(filepath.Join(strconv.Itoa(pid), "task", e.Name())); err == nil && p.Nice == nice {
				continue
			}
			changed = true
			if err := unix.Setpriority(unix.PRIO_PROCESS, tid, nice); err != nil && !errors.Is(err, unix.ESRCH) {
				errs = append(errs, fmt.Errorf("setpriority %d to nice %d: %w", tid, nice, err))
			}
		}
		if !changed {
			return nil
		}
	}
	return errors.Join(errs...)
}

// Nice is the nice values of a process's threads, read back from the kernel.
type Nice struct {
	// Lowest and Highest are the smallest and largest nice of its threads (equal when they agree).
	Lowest, Highest int
}

// String writes a nice value ("10"), or the range of its threads' ("0 to 10") when they differ.
func (n Nice) String() string {
	if n.Lowest == n.Highest {
		return strconv.Itoa(n.Lowest)
	}
	return strconv.Itoa(n.Lowest) + " to " + strconv.Itoa(n.Highest)
}

// NiceOf reads the nice value of every thread of process pid (0: this process) from
// /proc/<pid>/task/*/stat.
func NiceOf(pid int) (Nice, error) {
	proc := "self"
	if pid != 0 {
		proc = strconv.Itoa(pid)
	}
	entries, err := os.ReadDir(filepath.Join("/proc", proc, "task"))
	if err != nil {
		return Nice{}, fmt.Errorf("nice of %s: %w", proc, err)
	}
	var n Nice
	read := 0
	for _, e := range entries {
		p, err := (procstat.FS{}).Process(filepath.Join(proc, "task", e.Name()))
		if err != nil {
			continue // the thread exited meanwhile
		}
		if read == 0 || p.Nice < n.Lowest {
			n.Lowest = p.Nice
		}
		if read == 0 || p.Nice > n.Highest {
			n.Highest = p.Nice
		}
		read++
	}
	if read == 0 {
		return Nice{}, fmt.Errorf("nice of %s: no thread could be read", proc)
	}
	return n, nil
}

// Autogroup is this process's scheduling group when the kernel groups threads by session
// (CONFIG_SCHED_AUTOGROUP with kernel.sched_autogroup_enabled=1): /proc/self/autogroup, e.g.
// "/autogroup-12 nice 0", or "" when it does not. Nice values order threads only within a
// group: the world's servers are below the load generator because the simulator starts them in
// its own session (Setpgid, never Setsid), while every other session of the machine (another
// shell's jobs) is a group of its own that shares each CPU with the harness's by the groups'
// nice (written to /proc/PID/autogroup), whatever its threads' nice. On such a kernel `nice -n
// -15 make bench` orders the bench's threads among themselves only.
func Autogroup() string {
	if b, err := os.ReadFile("/proc/sys/kernel/sched_autogroup_enabled"); err != nil || strings.TrimSpace(string(b)) != "1" {
		return ""
	}
	b, err := os.ReadFile("/proc/self/autogroup")
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(b))
}
