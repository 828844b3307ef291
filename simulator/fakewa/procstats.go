package fakewa

import (
	"bufio"
	"os"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"
)

func itoa(n int) string { return strconv.Itoa(n) }

func goroutines() int { return runtime.NumGoroutine() }

// processRSS returns the process's resident set size in bytes (VmRSS from /proc/self/status), or 0
// where that file does not exist.
func processRSS() uint64 {
	return ProcStatusBytes("VmRSS")
}

// ProcStatusBytes reads a "kB" field (VmRSS, VmHWM, ...) of /proc/self/status in bytes; 0 when
// unavailable.
func ProcStatusBytes(field string) uint64 {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		return 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		name, rest, ok := strings.Cut(sc.Text(), ":")
		if !ok || name != field {
			continue
		}
		kb, err := strconv.ParseUint(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
		if err != nil {
			return 0
		}
		return kb * 1024
	}
	return 0
}

// ProcessCPUSeconds returns the user+system CPU time this process has used, in seconds.
func ProcessCPUSeconds() float64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return (time.Duration(ru.Utime.Nano()) + time.Duration(ru.Stime.Nano())).Seconds()
}
