package fakewa

import (
	"runtime"
	"strconv"
	"syscall"
	"time"

	"wagate/internal/procstat"
)

func itoa(n int) string { return strconv.Itoa(n) }

func goroutines() int { return runtime.NumGoroutine() }

// ProcessRSS returns this process's resident set size in bytes (read by internal/procstat), or 0
// where /proc is unavailable.
func ProcessRSS() uint64 {
	rss, err := procstat.FS{}.RSS("self")
	if err != nil {
		return 0
	}
	return uint64(rss)
}

// ProcessCPUSeconds returns the user+system CPU time this process has used, in seconds.
func ProcessCPUSeconds() float64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return (time.Duration(ru.Utime.Nano()) + time.Duration(ru.Stime.Nano())).Seconds()
}
