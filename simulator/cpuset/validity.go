package cpuset

import "fmt"

// SaturationLimit is the share of its CPU set's capacity above which the load generator is
// saturated: beyond it the latency it measures includes its own queueing, not only the gateway's.
const SaturationLimit = 0.90

// Generator is the load generator's (the simulator process's) own CPU over a run.
type Generator struct {
	// CPUPercent is its mean CPU over the run, in % of one core.
	CPUPercent float64
	// Cores is the number of CPUs it could run on (its CPU set, or the machine when not pinned).
	Cores int
}

// LatencyValidity says whether a run's latency figures measure the gateway: a generator that used
// more than SaturationLimit of its cores measured its own queueing. The reason says why not.
func LatencyValidity(g Generator) (valid bool, reason string) {
	if g.Cores <= 0 {
		return true, ""
	}
	share := g.CPUPercent / 100 / float64(g.Cores)
	if share > SaturationLimit {
		return false, fmt.Sprintf("the load generator used %.0f%% of its %d core(s) (limit %.0f%%): its latency includes its own queueing", share*100, g.Cores, SaturationLimit*100)
	}
	return true, ""
}
