package cpuset

import (
	"fmt"
	"time"
)

// Interval is one stretch of a run (IntervalLength long) as the load generator lived it: the
// requests it made per second and how long its goroutines waited to run at the 99th percentile.
type Interval struct {
	// At is the interval's end since the run started.
	At                time.Duration
	RequestsPerSecond float64
	SchedP99          time.Duration
	// CPUPercent is the generator's CPU in the interval (% of one core); OthersPercent is the
	// share of its CPU set other processes of the machine used (0: not measured).
	CPUPercent, OthersPercent float64
	// WaitPercent is how long its threads waited for a CPU, in % of the interval (summed over
	// threads: it can pass 100); StealPercent the share of its CPU set the hypervisor took
	// (0: not measured).
	WaitPercent, StealPercent float64
}

// IntervalLength is how long each interval of a run's generator readings lasts.
const IntervalLength = 5 * time.Second

// Rates is what a run's intervals say about the load the generator can drive within DelayLimit:
// the busiest interval whose goroutines waited at most DelayLimit at p99 (ValidUpTo, its
// requests per second) and the least busy one that did not (InvalidFrom; 0 when none did), with
// how many intervals were valid out of how many that made requests. Intervals without requests
// (the world starting, the drain) say nothing about driving a load and are left out.
type Rates struct {
	ValidUpTo, InvalidFrom float64
	Valid, Busy            int
}

// RatesOf reads the intervals of a run.
func RatesOf(intervals []Interval) Rates {
	var r Rates
	for _, in := range intervals {
		if in.RequestsPerSecond <= 0 {
			continue
		}
		r.Busy++
		if in.SchedP99 <= DelayLimit {
			r.Valid++
			r.ValidUpTo = max(r.ValidUpTo, in.RequestsPerSecond)
		} else if r.InvalidFrom == 0 || in.RequestsPerSecond < r.InvalidFrom {
			r.InvalidFrom = in.RequestsPerSecond
		}
	}
	return r
}

// Says what the rates mean for a run whose latency is not valid: the load the generator did drive
// within DelayLimit, so that a report of an invalid run still says what one generator can drive.
func (r Rates) Says() string {
	switch {
	case r.Busy == 0:
		return ""
	case r.Valid == 0:
		return fmt.Sprintf("in none of its %d intervals of %s with requests did its goroutines wait at most %s at p99 (the least busy: %.0f requests/s)", r.Busy, IntervalLength, DelayLimit, r.InvalidFrom)
	case r.InvalidFrom == 0:
		return fmt.Sprintf("in every one of its %d intervals of %s with requests its goroutines waited at most %s at p99 (up to %.0f requests/s)", r.Busy, IntervalLength, DelayLimit, r.ValidUpTo)
	}
	return fmt.Sprintf("in intervals of %s its goroutines waited at most %s at p99 up to %.0f requests/s (%d of %d intervals with requests), longer from %.0f requests/s", IntervalLength, DelayLimit, r.ValidUpTo, r.Valid, r.Busy, r.InvalidFrom)
}
