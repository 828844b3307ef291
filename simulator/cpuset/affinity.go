package cpuset

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"

	"golang.org/x/sys/unix"
)

// Online lists the CPUs this process may run on (its affinity mask, which a container or
// taskset may have narrowed from the machine's).
func Online() ([]int, error) {
	var set unix.CPUSet
	if err := unix.SchedGetaffinity(0, &set); err != nil {
		return nil, fmt.Errorf("sched_getaffinity: %w", err)
	}
	return members(&set), nil
}

// Of lists the CPUs the thread (or process main thread) tid may run on.
func Of(tid int) ([]int, error) {
	var set unix.CPUSet
	if err := unix.SchedGetaffinity(tid, &set); err != nil {
		return nil, fmt.Errorf("sched_getaffinity %d: %w", tid, err)
	}
	return members(&set), nil
}

func members(set *unix.CPUSet) []int {
	var ids []int
	for id := 0; id < len(set)*64; id++ {
		if set.IsSet(id) {
			ids = append(ids, id)
		}
	}
	return ids
}

// Pin restricts every thread of process pid (0: this process) to ids. sched_setaffinity acts on
// one thread, and a new thread inherits its creator's mask, so Pin sets every thread listed in
// /proc/<pid>/task, twice, to catch a thread created during the first pass.
func Pin(pid int, ids []int) error {
	var set unix.CPUSet
	for _, id := range ids {
		set.Set(id)
	}
	dir := "/proc/self/task"
	if pid != 0 {
		dir = filepath.Join("/proc", strconv.Itoa(pid), "task")
	}
	var errs []error
	for range 2 {
		entries, err := os.ReadDir(dir)
		if err != nil {
			if pid == 0 {
				return fmt.Errorf("pin: %w", err)
			}
			// No /proc: at least the main thread, whose later threads inherit its mask.
			return unix.SchedSetaffinity(pid, &set)
		}
		errs = errs[:0]
		for _, e := range entries {
			tid, err := strconv.Atoi(e.Name())
			if err != nil {
				continue
			}
			if err := unix.SchedSetaffinity(tid, &set); err != nil && !errors.Is(err, unix.ESRCH) {
				errs = append(errs, fmt.Errorf("sched_setaffinity %d: %w", tid, err))
			}
		}
	}
	return errors.Join(errs...)
}

// Contains reports whether every id of inner is in outer.
func Contains(outer, inner []int) bool {
	for _, id := range inner {
		if !slices.Contains(outer, id) {
			return false
		}
	}
	return true
}
