package cpuset

import (
	"fmt"
	"time"
)

// SaturationLimit is the share of its CPU set's capacity above which the load generator is
// saturated: beyond it the latency it measures includes its own queueing, not only the gateway's.
const SaturationLimit = 0.90

// DelayLimit is the longest the load generator's goroutines may wait to run at its 99th
// percentile (Go's scheduler latency, stopped-world pauses included). A poller whose answer has
// arrived waits that long before it takes the time, so a generator delaying its goroutines by more
// than a tenth of the 10 ms status target measures its own scheduling, not the gateway: a
// generator can be far from saturated on average (bursts, a GC cycle, thousands of runnable
// goroutines on one processor) and still delay its answers by tens of milliseconds.
const DelayLimit = time.Millisecond

// Generator is the load generator's (the simulator process's) own CPU and scheduling delays over
// a run.
type Generator struct {
	// CPUPercent is its mean CPU over the run, in % of one core.
	CPUPercent float64
	// Cores is the number of CPUs it could run on (its CPU set, or the machine when not pinned).
	Cores int
	// SchedP99 is the 99th percentile of the time its goroutines were runnable before they ran,
	// and SchedMax the longest (0: not measured).
	SchedP99, SchedMax time.Duration
	// Threads is what the kernel accounted to its threads (time run, time waiting for a CPU),
	// which says whether its delays were other processes' on its CPU set or its own.
	Threads Sched
	// Set is who used its CPU set over the run: when its threads waited, it says for whom.
	Set SetUse
}

// LatencyValidity says whether a run's latency figures measure the gateway: a generator that used
// more than SaturationLimit of its cores measured its own queueing, and so did one whose
// goroutines waited to run more than DelayLimit at the 99th percentile. The reason says why not.
func LatencyValidity(g Generator) (valid bool, reason string) {
	if g.Cores > 0 {
		share := g.CPUPercent / 100 / float64(g.Cores)
		if share > SaturationLimit {
			return false, fmt.Sprintf("the load generator used %.0f%% of its %d core(s) (limit %.0f%%): its latency includes its own queueing", share*100, g.Cores, SaturationLimit*100)
		}
	}
	if g.SchedP99 > DelayLimit {
		reason = fmt.Sprintf("the load generator's goroutines waited up to %s to run at the 99th percentile (limit %s, longest %s): its latency includes its own queueing", roundDelay(g.SchedP99), DelayLimit, roundDelay(g.SchedMax))
		if runnable := g.Threads.Run + g.Threads.Wait; runnable > 0 {
			share := float64(g.Threads.Wait) / float64(runnable)
			if share > StarvationLimit {
				reason += fmt.Sprintf("; its threads waited for a CPU %.0f%% of the time they could run: %s", share*100, g.Set.Neighbours())
			} else if g.Set.Capacity > 0 && g.Set.Shared() {
				reason += fmt.Sprintf("; its threads waited for a CPU %.0f%% of the time they could run: %s", share*100, g.Set.Neighbours())
			} else {
				reason += fmt.Sprintf("; its threads had their CPU (waited %.0f%% of the time they could run): the delay is the generator's own work", share*100)
			}
		}
		return false, reason
	}
	return true, ""
}

// roundDelay shows a delay to the microsecond below a millisecond, else to 0.1 ms.
func roundDelay(d time.Duration) time.Duration {
	if d < time.Millisecond {
		return d.Round(time.Microsecond)
	}
	return d.Round(100 * time.Microsecond)
}
