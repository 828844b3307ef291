package calibrate

import (
	"errors"
	"fmt"
	"math"
	"slices"
	"time"

	"wagate/fakelaravel"
)

// ErrNotEnoughData matches (errors.Is) a measurement the model cannot be fitted to.
var ErrNotEnoughData = errors.New("calibrate: not enough data to fit")

// Fixed holds the model parameters that are configured, not fitted: PHP-FPM's pm.max_children and
// listen.backlog and nginx's fastcgi_read_timeout of the measured deployment.
type Fixed struct {
	Workers      int
	Backlog      int
	ProxyTimeout time.Duration
}

// DefaultFitSamples is how many arrivals each simulation of the fit draws.
const DefaultFitSamples = 8000

// FitOptions tune the fit's simulations.
type FitOptions struct {
	// Seed fixes the simulated arrivals and jitter.
	Seed uint64
	// Samples is the number of arrivals per simulation (default DefaultFitSamples); fewer is
	// faster and noisier.
	Samples int
}

// FitResult is the fitted model and how well it reproduces the measurement.
type FitResult struct {
	// Model is the fitted capacity model.
	Model fakelaravel.CapacityModel `json:"-"`
	// ServiceMS is the effective service demand per kind (Cores / saturation throughput).
	ServiceMS map[Kind]float64 `json:"service_ms"`
	// CPUBootstrapMS and CPUPerRowMS are the same line fitted to the server's CPU per request
	// read from /proc instead (zero when not measured): the CPU alone, without waiting.
	// CPULookupMS is the lookup cost fitted the same way from the GET kind's CPU (zero when not
	// measured, or when the lookup falls back to the bootstrap).
	CPUBootstrapMS float64 `json:"cpu_bootstrap_ms"`
	CPUPerRowMS    float64 `json:"cpu_per_row_ms"`
	CPULookupMS    float64 `json:"cpu_lookup_ms,omitempty"`
	// Error is the root mean square of the log errors the chosen model makes on the fitted
	// figures (saturation throughput, p50 and p99 at 50% and 80% load, per kind).
	Error float64 `json:"rms_log_error"`
	// CPUAnchored says the demand line was anchored on the /proc CPU figures (see candidates).
	CPUAnchored bool `json:"cpu_anchored"`
	// Candidates is the number of (cores, demand, jitter) models tried.
	Candidates int `json:"candidates"`
	// CostScale is the factor the chosen model scales the CPU line by (1 without CPU figures).
	CostScale float64 `json:"cost_scale"`
	// CoresFactor scales the cores that would keep the closed-loop saturation throughput, and
	// OverheadMS is the per-request cost on top of the scaled line (writes and the lookup alike):
	// what open-loop figures show that closed-loop ones do not (see Fit).
	CoresFactor float64 `json:"cores_factor"`
	OverheadMS  float64 `json:"overhead_ms"`
}

// jitterFromSpread estimates the model's uniform jitter J from a solo run: a uniform factor in
// [1-J, 1+J] puts p10 and p90 at 1-0.8J and 1+0.8J of the median.
func jitterFromSpread(r *Result) float64 {
	p10, p50, p90 := r.Percentile(10), r.Percentile(50), r.Percentile(90)
	if p50 <= 0 {
		return 0
	}
	j := float64(p90-p10) / (1.6 * float64(p50))
	return math.Max(0.02, math.Min(0.9, j))
}

// costLine is the model's CPU costs in milliseconds: writes cost bootstrap + rows x perRow, the
// GET lookup (one row read) lookup + perRow; lookup zero means the same as bootstrap.
type costLine struct{ bootstrap, perRow, lookup float64 }

// demand is the cost of one request of kind k.
func (c costLine) demand(k Kind) float64 {
	if k == KindGet && c.lookup > 0 {
		return c.lookup + c.perRow
	}
	return c.bootstrap + float64(k.Rows())*c.perRow
}

// scaled multiplies every cost by f.
func (c costLine) scaled(f float64) costLine {
	return costLine{bootstrap: f * c.bootstrap, perRow: f * c.perRow, lookup: f * c.lookup}
}

// lineThrough fits the costs to per-kind demands (ms): the one-item POST sets the writes'
// intercept side and the 50-row POST the slope; the GET demand less one row is the lookup cost.
// Without a one-item POST the GET demand stands in for it (and the lookup is the bootstrap).
func lineThrough(demand map[Kind]float64) (costLine, bool) {
	get, post1 := demand[KindGet], demand[KindPost1]
	s1 := post1
	if s1 <= 0 {
		s1 = get
	}
	if s1 <= 0 {
		return costLine{}, false
	}
	var c costLine
	if s50 := demand[KindPost50]; s50 > 0 {
		c.perRow = math.Max(0, (s50-s1)/float64(KindPost50.Rows()-1))
	}
	c.bootstrap = math.Max(0.01, s1-c.perRow)
	if get > 0 && post1 > 0 {
		c.lookup = math.Max(0.01, get-c.perRow)
	}
	return c, true
}

// ModelFor is model as it serves requests of kind k: fakelaravel charges the GET lookup
// LookupCPU (see fakelaravel.CapacityModel.ForLookups) and the POSTs BootstrapCPU. Simulate,
// ServiceCPU and SaturationThroughput of the result, with k.Rows(), describe a load of kind k.
func ModelFor(model fakelaravel.CapacityModel, k Kind) fakelaravel.CapacityModel {
	if k == KindGet {
		return model.ForLookups()
	}
	return model
}

func msDuration(ms float64) time.Duration { return time.Duration(ms * float64(time.Millisecond)) }

// coresFactors are the fit's trial core counts relative to the one that keeps the closed-loop
// saturation throughput (see Fit).
var coresFactors = []float64{0.8, 0.825, 0.85, 0.875, 0.9, 0.925, 0.95, 0.975, 1, 1.025, 1.05}

// Fit chooses the capacity model that best reproduces m: the one whose demands best match the
// solo latencies, whose throughput best matches the closed-loop saturation throughput and, open
// loop, the 2xx throughput under overload, and whose simulated p50 and p99 (SimulatePlan: the
// plan's runs, each from an idle server) best match those measured at 50% and 80% load (weighted
// log errors, squared up to huberLogError and linear beyond: solo 2, throughputs 2, p50 2, p99 1;
// latencies whose runs all had other processes above BusyLimit cores are left out).
//
// It searches in stages: the candidates (see candidates: cost lines that keep the closed-loop
// throughput) with every jitter; then, around the best of them, fewer or more cores
// (coresFactors) and a per-request cost on top of the line (requestOverheadsMS); then the jitter
// again, and the GET lookup cost alone. The last two dimensions are there because a real server
// serves an open-loop load (Poisson bursts, idle workers woken one request at a time) less
// efficiently than a closed loop that always has the next request queued, and more so for short
// requests: its overload throughput and its latencies at 80% load both show it, while the /proc
// CPU and the closed-loop throughput do not. Workers, backlog and proxy timeout are the
// deployment's (fixed).
func Fit(m *Measurement, fixed Fixed, opts FitOptions) (FitResult, error) {
	if opts.Samples <= 0 {
		opts.Samples = DefaultFitSamples
	}
	res := FitResult{ServiceMS: map[Kind]float64{}}
	if fixed.Workers < 1 {
		return res, fmt.Errorf("%w: workers %d", ErrNotEnoughData, fixed.Workers)
	}
	var jitters []float64
	cpu := map[Kind]float64{}
	for _, km := range m.Kinds {
		if km.SaturationRPS <= 0 || km.Solo == nil || km.Solo.OK() == 0 {
			return res, fmt.Errorf("%w: %s has no successful requests", ErrNotEnoughData, km.Kind)
		}
		jitters = append(jitters, jitterFromSpread(km.Solo))
		if km.ServerCPUPerRequestMS > 0 {
			cpu[km.Kind] = km.ServerCPUPerRequestMS
		}
	}
	if len(m.Kinds) == 0 {
		return res, fmt.Errorf("%w: no kinds measured", ErrNotEnoughData)
	}
	slices.Sort(jitters)
	jitterCandidates := []float64{jitters[len(jitters)/2], 0.05, 0.2, 0.35, 0.5, 0.65, 0.8, 0.9}
	if c, ok := lineThrough(cpu); ok {
		res.CPUBootstrapMS, res.CPUPerRowMS, res.CPULookupMS = c.bootstrap, c.perRow, c.lookup
	}

	cands, err := candidates(m, fixed, cpu)
	if err != nil {
		return res, err
	}
	res.CPUAnchored = len(cpu) == len(m.Kinds)
	best := math.Inf(1)
	var bestCand candidate
	try := func(cand candidate, jitter float64) {
		model := fakelaravel.CapacityModel{
			Cores: cand.cores, BootstrapCPU: msDuration(cand.bootstrap), PerRowCPU: msDuration(cand.perRow),
			LookupCPU: msDuration(cand.lookup), Jitter: jitter,
			Workers: fixed.Workers, Backlog: fixed.Backlog, ProxyTimeout: fixed.ProxyTimeout,
			LockWaitShare: cand.lockShare, LockWait: msDuration(cand.lockWaitMS), LockHold: msDuration(cand.lockHoldMS),
		}
		res.Candidates++
		e := modelError(m, model, opts)
		// Jitter barely moves p50 and p99: prefer the solo runs' spread unless another value
		// is clearly (10%) better.
		score := e
		if jitter != jitterCandidates[0] {
			score *= 1.1
		}
		// Likewise fewer cores or a per-request overhead, and a lock-wait tail, must earn their place
		// (10% and 3% better):
		// without open-loop figures that call for them they would only chase the noise of p99.
		if cand.capacity != 1 || cand.overheadMS != 0 {
			score *= 1.1
		}
		if cand.lockShare > 0 {
			score *= 1.03 // the POSTs' p99 at 50% load call for it in every real run so far
		}
		if score < best {
			best, res.Model, res.Error, bestCand = score, model, e, cand
			res.CostScale, res.CoresFactor, res.OverheadMS = cand.scale, cand.capacity, cand.overheadMS
			res.ServiceMS = map[Kind]float64{}
			for _, km := range m.Kinds {
				res.ServiceMS[km.Kind] = round2(cand.demand(km.Kind))
			}
		}
	}
	// Costs and jitter first, at the closed-loop capacity; then the capacity and the jitter
	// around the best costs.
	for _, cand := range cands {
		for _, jitter := range jitterCandidates {
			try(cand, jitter)
		}
	}
	stage1 := bestCand
	for _, f := range coresFactors {
		for _, extra := range requestOverheadsMS {
			if f == 1 && extra == 0 {
				continue
			}
			for _, cand := range neighbours(cands, stage1) {
				cand.cores *= f
				cand.capacity = f
				cand.bootstrap += extra
				if cand.lookup > 0 {
					cand.lookup += extra
				}
				cand.overheadMS = extra
				try(cand, res.Model.Jitter)
			}
		}
	}
	final := bestCand
	for _, jitter := range jitterCandidates {
		try(final, jitter)
	}
	// The GET lookup has a cost of its own that only the GET figures see: refine it alone.
	if final = bestCand; final.lookup > 0 {
		jitter := res.Model.Jitter
		for _, f := range []float64{0.8, 0.85, 0.9, 0.95, 1.05, 1.1, 1.15, 1.2} {
			cand := final
			cand.lookup *= f
			try(cand, jitter)
		}
	}
	// Last, a tail of writes waiting for the database's write lock (see
	// fakelaravel.CapacityModel.LockWaitShare): the real app's writes show a heavier tail at
	// moderate load than processor sharing gives.
	// The jitter may have stood in for that tail: try the solo runs' spread with it too.
	final = bestCand
	for _, jitter := range slices.Compact([]float64{res.Model.Jitter, jitterCandidates[0]}) {
		for _, share := range lockWaitShares {
			for _, wait := range lockWaitsMS {
				cand := final
				cand.lockShare, cand.lockWaitMS = share, wait
				try(cand, jitter)
			}
		}
		// The same tail with waits spread as SQLite's busy handler spreads them: a write that
		// finds a long holder polls until the rest of its hold is over (LockHold).
		for _, share := range lockHoldShares {
			for _, hold := range lockHoldsMS {
				cand := final
				cand.lockShare, cand.lockHoldMS = share, hold
				try(cand, jitter)
			}
		}
	}
	return res, nil
}

// lockWaitShares and lockWaitsMS are the fit's trial write-lock tails: the waits are what SQLite's
// busy handler sleeps in all after 2 to 5 retries (1+2, +5, +10, +15 ms).
var (
	lockWaitShares = []float64{0.01, 0.02, 0.04, 0.08}
	lockWaitsMS    = []float64{3, 8, 18, 33}
)

// lockHoldShares and lockHoldsMS are the fit's trial write-lock tails with the waits spread by
// the busy handler (fakelaravel.CapacityModel.LockHold): the share of writes that find a long
// holder, and its hold.
var (
	lockHoldShares = []float64{0.005, 0.01, 0.015, 0.02, 0.03}
	lockHoldsMS    = []float64{18, 25, 33, 50}
)

// requestOverheadsMS are the fit's trial per-request costs (ms) on top of the CPU line.
var requestOverheadsMS = []float64{0, 0.1, 0.2, 0.3, 0.45, 0.6}

// neighbours returns c and the candidates next to it in cands (the adjacent cost scales).
func neighbours(cands []candidate, c candidate) []candidate {
	i := slices.IndexFunc(cands, func(x candidate) bool { return x == c })
	if i < 0 {
		return []candidate{c}
	}
	return cands[max(0, i-4):min(len(cands), i+5)]
}

// candidate is one (cores, costs) the fit tries: scale is the factor of the CPU line (1 without
// CPU figures), capacity the factor of the cores and overheadMS the cost added to every request
// (see Fit; 1 and 0 in the candidates list).
type candidate struct {
	cores      float64
	scale      float64
	capacity   float64
	overheadMS float64
	lockShare  float64
	lockWaitMS float64
	lockHoldMS float64
	costLine
}

// candidates lists the models the fit tries. With the server's CPU per request of every kind
// (read from /proc, which contention barely moves), the costs are the CPU costs (lineThrough: the
// POSTs give bootstrap and per row, the GET the lookup) scaled by a
// factor s >= 1 (the time a request waits for the CPU on a shared machine, seen in the solo
// latency) and the cores are s times the CPU share PHP-FPM got at saturation (median over kinds of
// throughput x CPU per request), which keeps the throughput. Without CPU figures, every core count
// c below the worker count is tried, each kind's demand being c / its saturation throughput.
func candidates(m *Measurement, fixed Fixed, cpu map[Kind]float64) ([]candidate, error) {
	var out []candidate
	if line, ok := lineThrough(cpu); ok && len(cpu) == len(m.Kinds) {
		shares := make([]float64, 0, len(m.Kinds))
		for _, km := range m.Kinds {
			shares = append(shares, km.SaturationRPS*line.demand(km.Kind)/1000)
		}
		slices.Sort(shares)
		share := shares[len(shares)/2]
		for sc := 1.0; sc <= 12 && sc*share < float64(fixed.Workers); sc *= 1.05 {
			out = append(out, candidate{cores: sc * share, scale: sc, capacity: 1, costLine: line.scaled(sc)})
		}
		if len(out) > 0 {
			return out, nil
		}
	}
	for c := 0.25; c < float64(fixed.Workers); c *= 1.06 {
		demand := map[Kind]float64{}
		for _, km := range m.Kinds {
			demand[km.Kind] = c / km.SaturationRPS * 1000
		}
		line, ok := lineThrough(demand)
		if !ok {
			return nil, fmt.Errorf("%w: no one-row kind measured", ErrNotEnoughData)
		}
		out = append(out, candidate{cores: c, scale: 1, capacity: 1, costLine: line})
	}
	return out, nil
}

// huberLogError is where modelError's loss turns from squared to linear (about 20%).
const huberLogError = 0.18

// modelError is the RMS log error of the model's predictions against the measured figures.
func modelError(m *Measurement, model fakelaravel.CapacityModel, opts FitOptions) float64 {
	var sum float64
	var n int
	add := func(pred, real, weight float64) {
		if pred <= 0 || real <= 0 {
			return
		}
		// Huber loss on the log error: squared up to huberLogError, linear beyond, so that one
		// figure far off (a p99 pooled over runs of which one caught a stall of the machine)
		// cannot drag the whole model towards it.
		d := math.Abs(math.Log(pred / real))
		if d > huberLogError {
			d = math.Sqrt(huberLogError * (2*d - huberLogError))
		}
		sum += weight * d * d
		n++
	}
	for _, km := range m.Kinds {
		rows, model := km.Kind.Rows(), ModelFor(model, km.Kind)
		add(model.SaturationThroughput(rows), km.SaturationRPS, 2)
		// The solo latency anchors the service demand.
		add(model.ServiceCPU(rows).Seconds(), km.Solo.Percentile(50).Seconds(), 2)
		for _, load := range []struct {
			frac float64
			runs []*Result
		}{{0.5, km.Load50}, {0.8, km.Load80}} {
			// Latencies measured while other processes held the CPU measure them, not the app.
			if len(load.runs) == 0 || leastOthers(load.runs...) > BusyLimit {
				continue
			}
			sim := SimulatePlan(model, rows, load.frac*km.OfferedRPS, m.Plan, opts.Samples, opts.Seed)
			add(sim.Percentile(50), Latency(load.runs, 50).Seconds(), 2)
			add(sim.Percentile(99), Latency(load.runs, 99).Seconds(), 1)
		}
		if o := km.Overload; o != nil && o.OK() > 0 && m.Plan.OverloadFactor > 0 && m.Plan.Overload > 0 && leastOthers(o) <= BusyLimit {
			rate := m.Plan.OverloadFactor * km.OfferedRPS
			sim := Simulate(model, rows, rate, max(500, int(rate*m.Plan.Overload.Seconds())), opts.Seed)
			if sim.Elapsed > 0 {
				add(float64(sim.Served)/sim.Elapsed, o.Throughput(), 2)
			}
		}
	}
	if n == 0 {
		return math.Inf(1)
	}
	return math.Sqrt(sum / float64(n))
}
