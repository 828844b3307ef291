// Package executor owns the arithmetic and the running of k6's executors, with k6's names,
// parameters and defaults: constant-vus, ramping-vus, constant-arrival-rate,
// ramping-arrival-rate, per-vu-iterations and shared-iterations. The arithmetic (VUs at a time,
// arrival times, execution-segment shares) is pure and tested on its own; Run drives iterations
// of a caller's function over real (or synctest) time.
package executor

import (
	"fmt"
	"math"
	"time"
)

// Executor names, as k6 spells them.
const (
	ConstantVUs         = "constant-vus"
	RampingVUs          = "ramping-vus"
	ConstantArrivalRate = "constant-arrival-rate"
	RampingArrivalRate  = "ramping-arrival-rate"
	PerVUIterations     = "per-vu-iterations"
	SharedIterations    = "shared-iterations"
)

// Names lists every executor this package knows, in k6's documentation order.
var Names = []string{SharedIterations, PerVUIterations, ConstantVUs, RampingVUs, ConstantArrivalRate, RampingArrivalRate}

// Stage is one step of a ramping executor: move linearly to Target over Duration.
type Stage struct {
	Duration time.Duration
	Target   int64
}

// Config is one k6 scenario's executor configuration. Fields that an executor does not use are
// ignored by it; WithDefaults fills k6's defaults and Validate reports k6's messages.
type Config struct {
	Executor     string
	StartTime    time.Duration
	GracefulStop time.Duration

	VUs         int64         // constant-vus, per-vu-iterations, shared-iterations
	Iterations  int64         // per-vu-iterations (per VU), shared-iterations (total)
	MaxDuration time.Duration // per-vu-iterations, shared-iterations
	Duration    time.Duration // constant-vus, constant-arrival-rate

	StartVUs         int64 // ramping-vus
	GracefulRampDown time.Duration
	Stages           []Stage // ramping-vus, ramping-arrival-rate

	Rate            int64 // constant-arrival-rate: iterations per TimeUnit
	StartRate       int64 // ramping-arrival-rate
	TimeUnit        time.Duration
	PreAllocatedVUs int64
	MaxVUs          int64

	// Set records which optional fields the user gave explicitly, by their k6 name (e.g. "vus"),
	// so defaults apply only to the others.
	Set map[string]bool
}

func (c Config) has(field string) bool { return c.Set != nil && c.Set[field] }

// WithDefaults returns c with k6's defaults for every field the user did not set.
func (c Config) WithDefaults() Config {
	if !c.has("gracefulStop") {
		c.GracefulStop = 30 * time.Second
	}
	switch c.Executor {
	case SharedIterations, PerVUIterations:
		if !c.has("vus") {
			c.VUs = 1
		}
		if !c.has("iterations") {
			c.Iterations = 1
		}
		if !c.has("maxDuration") {
			c.MaxDuration = 10 * time.Minute
		}
	case ConstantVUs:
		if !c.has("vus") {
			c.VUs = 1
		}
	case RampingVUs:
		if !c.has("startVUs") {
			c.StartVUs = 1
		}
		if !c.has("gracefulRampDown") {
			c.GracefulRampDown = 30 * time.Second
		}
	case ConstantArrivalRate, RampingArrivalRate:
		if !c.has("timeUnit") {
			c.TimeUnit = time.Second
		}
		if !c.has("maxVUs") {
			c.MaxVUs = c.PreAllocatedVUs
		}
	}
	return c
}

// Validate reports the first problem with c, in k6's words where k6 has them. Field names in the
// messages are k6's option names.
func (c Config) Validate() error {
	if c.StartTime < 0 {
		return fmt.Errorf("startTime: the startTime can't be negative")
	}
	if c.GracefulStop < 0 {
		return fmt.Errorf("gracefulStop: the gracefulStop timeout can't be negative")
	}
	switch c.Executor {
	case SharedIterations:
		if c.VUs <= 0 {
			return fmt.Errorf("vus: the number of VUs must be more than 0")
		}
		if c.Iterations < c.VUs {
			return fmt.Errorf("iterations: the number of iterations (%d) can't be less than the number of VUs (%d)", c.Iterations, c.VUs)
		}
		if c.MaxDuration < time.Second {
			return fmt.Errorf("maxDuration: the maxDuration must be at least 1s")
		}
	case PerVUIterations:
		if c.VUs <= 0 {
			return fmt.Errorf("vus: the number of VUs must be more than 0")
		}
		if c.Iterations <= 0 {
			return fmt.Errorf("iterations: the number of iterations must be more than 0")
		}
		if c.MaxDuration < time.Second {
			return fmt.Errorf("maxDuration: the maxDuration must be at least 1s")
		}
	case ConstantVUs:
		if c.VUs <= 0 {
			return fmt.Errorf("vus: the number of VUs must be more than 0")
		}
		if c.Duration < time.Second {
			return fmt.Errorf("duration: the duration must be at least 1s, but was %s", c.Duration)
		}
	case RampingVUs:
		if c.StartVUs < 0 {
			return fmt.Errorf("startVUs: the number of start VUs can't be negative")
		}
		if err := validateStages(c.Stages, "VUs"); err != nil {
			return err
		}
		if c.GracefulRampDown < 0 {
			return fmt.Errorf("gracefulRampDown: the gracefulRampDown timeout can't be negative")
		}
		if c.StartVUs == 0 && maxTarget(c.Stages) == 0 {
			return fmt.Errorf("stages: either startVUs or one of the stages' target values must be greater than 0")
		}
	case ConstantArrivalRate:
		if c.Rate <= 0 {
			return fmt.Errorf("rate: the iteration rate must be more than 0")
		}
		if c.TimeUnit <= 0 {
			return fmt.Errorf("timeUnit: the timeUnit must be more than 0")
		}
		if c.Duration < time.Second {
			return fmt.Errorf("duration: the duration must be at least 1s, but was %s", c.Duration)
		}
		return validateVUPool(c)
	case RampingArrivalRate:
		if c.StartRate < 0 {
			return fmt.Errorf("startRate: the startRate value can't be negative")
		}
		if c.TimeUnit <= 0 {
			return fmt.Errorf("timeUnit: the timeUnit must be more than 0")
		}
		if err := validateStages(c.Stages, "rate"); err != nil {
			return err
		}
		return validateVUPool(c)
	case "":
		return fmt.Errorf("executor: missing; choose one of %v", Names)
	default:
		return fmt.Errorf("executor: unknown executor %q; choose one of %v", c.Executor, Names)
	}
	return nil
}

func validateVUPool(c Config) error {
	if c.PreAllocatedVUs < 0 {
		return fmt.Errorf("preAllocatedVUs: the number of preAllocatedVUs can't be negative")
	}
	if c.MaxVUs < c.PreAllocatedVUs {
		return fmt.Errorf("maxVUs: maxVUs can't be less than preAllocatedVUs")
	}
	if c.MaxVUs == 0 {
		return fmt.Errorf("maxVUs: the number of maxVUs must be more than 0")
	}
	return nil
}

func validateStages(stages []Stage, what string) error {
	if len(stages) == 0 {
		return fmt.Errorf("stages: at least one stage has to be specified")
	}
	for i, s := range stages {
		if s.Duration < 0 {
			return fmt.Errorf("stages[%d].duration: the stage's duration can't be negative", i)
		}
		if s.Target < 0 {
			return fmt.Errorf("stages[%d].target: the target %s can't be negative", i, what)
		}
	}
	return nil
}

func maxTarget(stages []Stage) int64 {
	var m int64
	for _, s := range stages {
		m = max(m, s.Target)
	}
	return m
}

func stagesDuration(stages []Stage) time.Duration {
	var d time.Duration
	for _, s := range stages {
		d += s.Duration
	}
	return d
}

// ScheduledDuration is how long the executor schedules work, not counting StartTime and GracefulStop
// (for iteration executors: MaxDuration).
func (c Config) ScheduledDuration() time.Duration {
	switch c.Executor {
	case ConstantVUs, ConstantArrivalRate:
		return c.Duration
	case RampingVUs, RampingArrivalRate:
		return stagesDuration(c.Stages)
	case SharedIterations, PerVUIterations:
		return c.MaxDuration
	}
	return 0
}

// TotalDuration is StartTime + the scheduled duration + the graceful stop (and ramp-down),
// the longest the executor can run.
func (c Config) TotalDuration() time.Duration {
	d := c.StartTime + c.ScheduledDuration() + c.GracefulStop
	if c.Executor == RampingVUs {
		d += c.GracefulRampDown
	}
	return d
}

// VUsAt is the number of VUs this instance (t may be nil for the whole test) keeps active at
// elapsed time at (since the executor's start) for the VU-based executors. For ramping-vus the
// count moves linearly between stage targets and changes by whole VUs, truncated towards the
// stage's starting value as k6 does (ramping 0->10 over 10s gives 1 VU at 1s; 10->0 gives 9).
// Each stage's target is scaled by the segment before interpolating.
func (c Config) VUsAt(t *Tuple, at time.Duration) int64 {
	if at < 0 {
		return 0
	}
	switch c.Executor {
	case ConstantVUs:
		if at >= c.Duration {
			return 0
		}
		return t.Scale(c.VUs)
	case RampingVUs:
		from := t.Scale(c.StartVUs)
		var start time.Duration
		for _, s := range c.Stages {
			to := t.Scale(s.Target)
			if at < start+s.Duration {
				elapsed := at - start
				delta := float64(to-from) * float64(elapsed) / float64(s.Duration)
				return from + int64(delta) // int64() truncates towards zero: towards from
			}
			start += s.Duration
			from = to
		}
		return from
	case SharedIterations, PerVUIterations:
		if at >= c.MaxDuration {
			return 0
		}
		return t.Scale(c.VUs)
	}
	return 0
}

// MaxVUsOf is the most VUs this instance may have at once.
func (c Config) MaxVUsOf(t *Tuple) int64 {
	switch c.Executor {
	case RampingVUs:
		m := t.Scale(c.StartVUs)
		for _, s := range c.Stages {
			m = max(m, t.Scale(s.Target))
		}
		return m
	case ConstantArrivalRate, RampingArrivalRate:
		return t.Scale(c.MaxVUs)
	}
	return t.Scale(c.VUs)
}

// RateAt is the global arrival rate (iterations per second) at elapsed time at, for the
// arrival-rate executors; stages interpolate linearly from the previous target (startRate first).
func (c Config) RateAt(at time.Duration) float64 {
	perSecond := func(r float64) float64 { return r * float64(time.Second) / float64(c.TimeUnit) }
	switch c.Executor {
	case ConstantArrivalRate:
		if at < 0 || at >= c.Duration {
			return 0
		}
		return perSecond(float64(c.Rate))
	case RampingArrivalRate:
		if at < 0 {
			return 0
		}
		from := float64(c.StartRate)
		var start time.Duration
		for _, s := range c.Stages {
			to := float64(s.Target)
			if at < start+s.Duration {
				frac := float64(at-start) / float64(s.Duration)
				return perSecond(from + (to-from)*frac)
			}
			start += s.Duration
			from = to
		}
		return 0
	}
	return 0
}

// ArrivalTimes returns the start offsets of the global arrival schedule's iterations that this
// instance owns (t nil: all), in order. Iteration j of the global schedule starts when the
// integral of the rate since the start reaches j (constant-arrival-rate: j*timeUnit/rate, the first
// at 0; ramping-arrival-rate: iteration j at integral j+1, so a ramp from 0 starts with a wait).
// limit bounds the number of global iterations considered (0: no bound).
func (c Config) ArrivalTimes(t *Tuple, limit int64) []time.Duration {
	var out []time.Duration
	switch c.Executor {
	case ConstantArrivalRate:
		interval := float64(c.TimeUnit) / float64(c.Rate)
		for j := int64(0); limit == 0 || j < limit; j++ {
			at := time.Duration(math.Round(float64(j) * interval))
			if at >= c.Duration {
				break
			}
			if t.Owns(j) {
				out = append(out, at)
			}
		}
	case RampingArrivalRate:
		perSecond := float64(time.Second) / float64(c.TimeUnit)
		from := float64(c.StartRate) * perSecond
		var start time.Duration
		var done float64 // iterations accumulated before the current stage
		j := int64(0)
		for _, s := range c.Stages {
			to := float64(s.Target) * perSecond
			d := s.Duration.Seconds()
			stageCount := (from + to) / 2 * d
			for limit == 0 || j < limit {
				need := float64(j+1) - done // iterations into this stage
				if need > stageCount+1e-9 {
					break
				}
				// Solve from*x + (to-from)*x^2/(2d) = need for x in [0, d] seconds.
				var x float64
				switch {
				case d == 0:
					x = 0
				case to == from:
					x = need / from
				default:
					a, b := (to-from)/(2*d), from
					x = (-b + math.Sqrt(math.Max(b*b+4*a*need, 0))) / (2 * a)
				}
				if t.Owns(j) {
					out = append(out, start+time.Duration(math.Round(x*float64(time.Second))))
				}
				j++
			}
			done += stageCount
			start += s.Duration
			from = to
		}
	}
	return out
}

// Step is a point in time at which a VU-based executor's active VU count becomes VUs.
type Step struct {
	At  time.Duration
	VUs int64
}

// Steps lists, in order, every change of the active VU count of ramping-vus (or the single
// step of the other VU-based executors) for this instance, starting with the count at 0 and ending
// with the count after the last stage (k6 then stops the remaining VUs at the end).
func (c Config) Steps(t *Tuple) []Step {
	switch c.Executor {
	case RampingVUs:
		from := t.Scale(c.StartVUs)
		steps := []Step{{0, from}}
		var start time.Duration
		for _, s := range c.Stages {
			to := t.Scale(s.Target)
			n := to - from
			if n < 0 {
				n = -n
			}
			for k := int64(1); k <= n; k++ {
				at := start
				if s.Duration > 0 {
					at += time.Duration(math.Ceil(float64(s.Duration) * float64(k) / float64(n)))
				}
				v := from + k
				if to < from {
					v = from - k
				}
				steps = append(steps, Step{at, v})
			}
			start += s.Duration
			from = to
		}
		return steps
	default:
		return []Step{{0, c.VUsAt(t, 0)}, {c.ScheduledDuration(), 0}}
	}
}
