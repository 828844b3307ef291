package user

import (
	"math/rand/v2"
	"time"
)

// PollJitter is how far a poller's think time strays from the scenario's interval, as a share
// of it, each way: a poller waits a time drawn uniformly from interval x [1-PollJitter,
// 1+PollJitter] after each answer, so its mean think time (and the per-user rate) is exactly the
// scenario's. Real clients' polls are independent of each other; pollers that all waited exactly
// the interval kept, round after round, any bunch that formed once (a GC pause or a moment
// without the CPU makes every timer due meanwhile fire together, and each poller then waits the
// same interval after its answer): thousands of requests runnable at once on the load
// generator's one core, its own queueing measured as the gateway's latency. With the jitter a
// bunch spreads over a fifth of the interval within one round.
const PollJitter = 0.1

// Pace draws a poller's think times. It is used by one goroutine.
type Pace struct {
	interval, spread time.Duration
	rng              *rand.Rand
}

// NewPace returns the think times around interval of a poller whose draws are seeded by seed1
// and seed2 (the same seeds, the same sequence).
func NewPace(interval time.Duration, seed1, seed2 uint64) *Pace {
	return &Pace{interval: interval, spread: time.Duration(float64(interval) * PollJitter), rng: rand.New(rand.NewPCG(seed1, seed2))}
}

// Next is the time to wait before the next poll: uniform over [interval-spread,
// interval+spread], whole nanoseconds, mean interval.
func (p *Pace) Next() time.Duration {
	if p.spread <= 0 {
		return p.interval
	}
	return p.interval - p.spread + time.Duration(p.rng.Int64N(int64(2*p.spread)+1))
}
