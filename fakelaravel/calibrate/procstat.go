package calibrate

import (
	"time"

	"wagate/internal/procstat"
)

// ErrNoProc matches (errors.Is) a failure to read CPU times from /proc.
var ErrNoProc = procstat.ErrNoProc

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
	fs := procstat.FS{Root: sm.Proc}
	s := CPUSample{At: time.Now()}
	var err error
	if s.Busy, err = fs.MachineBusy(); err != nil {
		return s, err
	}
	self, err := fs.Process("self")
	if err != nil {
		return s, err
	}
	s.Self = self.CPU
	if len(sm.Roots) == 0 {
		return s, nil
	}
	s.Server, err = fs.TreeCPU(sm.Roots)
	return s, err
}

// LoadAverage returns the 1, 5 and 15 minute load averages of /proc/loadavg.
func (sm Sampler) LoadAverage() ([3]float64, error) {
	return procstat.FS{Root: sm.Proc}.LoadAverage()
}
