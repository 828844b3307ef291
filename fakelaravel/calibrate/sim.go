package calibrate

import (
	"math"
	"math/rand/v2"
	"slices"

	"wagate/fakelaravel"
)

// SimResult is what the capacity model predicts for Poisson arrivals at one rate.
type SimResult struct {
	// Latencies are the sorted latencies (seconds) of served requests within the proxy timeout.
	Latencies []float64
	// Rejected counts 502s (backlog full), TimedOut 504s (served after the proxy timeout).
	Rejected, TimedOut int
	// Served counts requests answered 2xx; Elapsed is the virtual time of the last event.
	Served  int
	Elapsed float64
}

// Percentile returns the p-th percentile (0..100) of the latencies in seconds.
func (r SimResult) Percentile(p float64) float64 {
	if len(r.Latencies) == 0 {
		return 0
	}
	x := p / 100 * float64(len(r.Latencies)-1)
	lo := int(math.Floor(x))
	hi := min(lo+1, len(r.Latencies)-1)
	f := x - float64(lo)
	return r.Latencies[lo]*(1-f) + r.Latencies[hi]*f
}

// Simulate runs fakelaravel's capacity model in virtual time (no sleeping, no real CPU beyond
// the event loop): n Poisson arrivals at rate per second, each needing BootstrapCPU + rows x
// PerRowCPU (each part scaled by a uniform jitter factor) from a processor-sharing CPU of Cores
// cores, then, for a share LockWaitShare of them, LockTail (LockWait, or the busy handler's wait
// for the rest of a LockHold) on the worker without CPU; at most Workers in service, at most
// Backlog waiting. It mirrors fakelaravel's pool so that the fit can search parameters in
// milliseconds instead of minutes of real load. For the GET lookup pass ModelFor(m, KindGet),
// whose BootstrapCPU is the lookup cost.
func Simulate(m fakelaravel.CapacityModel, rows int, rate float64, n int, seed uint64) SimResult {
	rng := rand.New(rand.NewPCG(seed, seed^0x2545f4914f6cdd1d))
	jit := func(d float64) float64 {
		if m.Jitter <= 0 {
			return d
		}
		return d * (1 + m.Jitter*(2*rng.Float64()-1))
	}
	boot, perRow := m.BootstrapCPU.Seconds(), m.PerRowCPU.Seconds()*float64(rows)
	timeout := m.ProxyTimeout.Seconds()
	cores := m.Cores
	if cores <= 0 || cores >= float64(m.Workers) {
		cores = float64(m.Workers)
	}
	type job struct{ arrival, remaining, wait float64 }
	var (
		res      SimResult
		t        float64
		active   []job     // on the CPU
		queue    []float64 // arrivals in the backlog
		arrivals = 0
		next     = rng.ExpFloat64() / rate
	)
	start := func(arrival float64) {
		j := job{arrival: arrival, remaining: jit(boot) + jit(perRow)}
		if m.HasLockTail() && rng.Float64() < m.LockWaitShare {
			u := 0.0
			if m.LockHold > 0 {
				u = rng.Float64()
			}
			j.wait = m.LockTail(u).Seconds()
		}
		active = append(active, j)
	}
	finish := func(j job) {
		if lat := t - j.arrival; timeout > 0 && lat > timeout {
			res.TimedOut++
		} else {
			res.Served++
			res.Latencies = append(res.Latencies, lat)
		}
		if len(queue) > 0 {
			start(queue[0])
			queue = queue[1:]
		}
	}
	type wake struct {
		j  job
		at float64
	}
	var sleepers []wake // CPU done, waiting for the write lock on their worker
	for arrivals < n || len(active) > 0 || len(queue) > 0 || len(sleepers) > 0 {
		speed := 1.0
		if k := float64(len(active)); k > cores {
			speed = cores / k
		}
		tDone, iDone := math.Inf(1), -1
		for i, j := range active {
			if d := t + j.remaining/speed; d < tDone {
				tDone, iDone = d, i
			}
		}
		tWake, iWake := math.Inf(1), -1
		for i, w := range sleepers {
			if w.at < tWake {
				tWake, iWake = w.at, i
			}
		}
		tArr := math.Inf(1)
		if arrivals < n {
			tArr = next
		}
		tNext := min(tDone, tArr, tWake)
		for i := range active {
			active[i].remaining -= (tNext - t) * speed
		}
		t = tNext
		if tWake <= tDone && tWake <= tArr && iWake >= 0 {
			w := sleepers[iWake]
			sleepers = slices.Delete(sleepers, iWake, iWake+1)
			finish(w.j)
			continue
		}
		if tDone <= tArr && iDone >= 0 {
			j := active[iDone]
			active = slices.Delete(active, iDone, iDone+1)
			if j.wait > 0 {
				sleepers = append(sleepers, wake{j: j, at: t + j.wait})
				continue
			}
			finish(j)
			continue
		}
		arrivals++
		next = t + rng.ExpFloat64()/rate
		switch {
		case len(active)+len(sleepers) < m.Workers:
			start(t)
		case len(queue) < m.Backlog:
			queue = append(queue, t)
		default:
			res.Rejected++
		}
	}
	res.Elapsed = t
	slices.Sort(res.Latencies)
	return res
}

// SimulatePlan predicts what the plan measures at one rate: LoadRepeats open-loop runs of Load
// each, every one starting from an idle server, their latencies pooled; the runs are repeated
// (with other seeds) until at least n arrivals were drawn, so that the percentiles are the
// expected ones rather than one draw's. A tail measured over a few seconds from an idle server is
// lighter than the steady state's. Without a Load duration it is one Simulate of n arrivals.
func SimulatePlan(m fakelaravel.CapacityModel, rows int, rate float64, plan Plan, n int, seed uint64) SimResult {
	perRun := int(rate * plan.Load.Seconds())
	if perRun < 1 {
		return Simulate(m, rows, rate, n, seed)
	}
	runs := max(1, plan.LoadRepeats)
	var out SimResult
	drawn := 0
	for i := uint64(0); drawn < n; i++ {
		for r := range uint64(runs) {
			s := Simulate(m, rows, rate, perRun, seed+1000*i+r)
			out.Latencies = append(out.Latencies, s.Latencies...)
			out.Rejected += s.Rejected
			out.TimedOut += s.TimedOut
			out.Served += s.Served
			out.Elapsed += s.Elapsed
			drawn += perRun
		}
	}
	slices.Sort(out.Latencies)
	return out
}
