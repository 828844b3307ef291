package executor

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"time"
)

// VU identifies the virtual user running one iteration.
type VU struct {
	// ID is the VU's number within this instance, from 1 (k6's __VU).
	ID int64
	// Iteration counts this VU's iterations, from 0 (k6's __ITER).
	Iteration int64
	// Stopping is closed when the executor stops scheduling this VU (end of duration, ramp-down):
	// the iteration should wrap up; its context is cancelled after the graceful period.
	Stopping <-chan struct{}
}

// Iteration is the caller's work for one iteration of one VU.
type Iteration func(ctx context.Context, vu VU) error

// Hooks observe a run; nil members are skipped. They may be called concurrently.
type Hooks struct {
	// ActiveVUs is called whenever the number of VUs running iterations changes.
	ActiveVUs func(n int64)
	// IterationDone is called after every iteration; interrupted is true when its context was
	// cancelled by the executor (gracefulStop or gracefulRampDown passed).
	IterationDone func(vu VU, d time.Duration, err error, interrupted bool)
	// Dropped is called for each arrival-rate iteration that could not start for lack of a VU.
	Dropped func()
}

// Run executes c for this instance (t nil: the whole test), calling fn for each iteration, and
// returns when every iteration has ended: after the scheduled duration plus at most the graceful
// stop (and ramp-down). ctx cancels everything at once.
func Run(ctx context.Context, c Config, t *Tuple, fn Iteration, h Hooks) error {
	if err := c.Validate(); err != nil {
		return err
	}
	if c.StartTime > 0 {
		select {
		case <-time.After(c.StartTime):
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	r := &runner{c: c, t: t, fn: fn, h: h, start: time.Now()}
	end := c.ScheduledDuration()
	// stopping closes at the scheduled end; hard cancels gracefulStop later.
	stopping := make(chan struct{})
	hard, cancelHard := context.WithCancel(ctx)
	defer cancelHard()
	endTimer := time.AfterFunc(end, func() { close(stopping) })
	defer endTimer.Stop()
	go func() {
		select {
		case <-stopping:
			select {
			case <-time.After(c.GracefulStop):
				cancelHard()
			case <-hard.Done():
			}
		case <-hard.Done():
		}
	}()
	switch c.Executor {
	case ConstantVUs:
		r.loopVUs(hard, stopping, t.Scale(c.VUs), nil)
	case SharedIterations:
		var left atomic.Int64
		left.Store(t.Scale(c.Iterations))
		r.loopVUs(hard, stopping, t.Scale(c.VUs), func(int64) bool { return left.Add(-1) >= 0 })
	case PerVUIterations:
		r.loopVUs(hard, stopping, t.Scale(c.VUs), func(done int64) bool { return done < c.Iterations })
	case RampingVUs:
		r.ramp(hard, stopping)
	case ConstantArrivalRate, RampingArrivalRate:
		r.arrivals(hard, stopping)
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	return nil
}

type runner struct {
	c      Config
	t      *Tuple
	fn     Iteration
	h      Hooks
	start  time.Time
	active atomic.Int64
}

func (r *runner) setActive(delta int64) {
	n := r.active.Add(delta)
	if r.h.ActiveVUs != nil {
		r.h.ActiveVUs(n)
	}
}

// iterate runs one iteration, reporting it, with ctx cancelled when hard is or, once stopping
// closes, after grace (grace < 0: only when hard is).
func (r *runner) iterate(hard context.Context, vu VU, grace time.Duration) {
	ctx, cancel := context.WithCancel(hard)
	defer cancel()
	if grace >= 0 {
		go func() {
			select {
			case <-vu.Stopping:
				select {
				case <-time.After(grace):
					cancel()
				case <-ctx.Done():
				}
			case <-ctx.Done():
			}
		}()
	}
	began := time.Now()
	err := r.fn(ctx, vu)
	interrupted := ctx.Err() != nil
	if interrupted && (err == nil || errors.Is(err, context.Canceled)) {
		err = context.Canceled
	}
	if r.h.IterationDone != nil {
		r.h.IterationDone(vu, time.Since(began), err, interrupted)
	}
}

func closed(ch <-chan struct{}) bool {
	select {
	case <-ch:
		return true
	default:
		return false
	}
}

// loopVUs runs n VUs, each running iterations back to back while more(doneByThisVU) allows and
// stopping is open.
func (r *runner) loopVUs(hard context.Context, stopping <-chan struct{}, n int64, more func(done int64) bool) {
	var wg sync.WaitGroup
	for id := int64(1); id <= n; id++ {
		wg.Go(func() {
			r.setActive(1)
			defer r.setActive(-1)
			for it := int64(0); !closed(stopping) && hard.Err() == nil && time.Since(r.start) < r.c.ScheduledDuration(); it++ {
				if more != nil && !more(it) {
					return
				}
				r.iterate(hard, VU{ID: id, Iteration: it, Stopping: stopping}, -1)
			}
		})
	}
	wg.Wait()
}

// ramp runs ramping-vus: a controller follows Steps, activating VUs in order and deactivating
// the highest-numbered ones first; a deactivated VU finishes its iteration within gracefulRampDown.
func (r *runner) ramp(hard context.Context, stopping <-chan struct{}) {
	maxVUs := r.c.MaxVUsOf(r.t)
	type slot struct {
		wake chan chan struct{} // receives the deactivation channel when activated
	}
	slots := make([]slot, maxVUs)
	deact := make([]chan struct{}, maxVUs)
	var wg sync.WaitGroup
	for i := range slots {
		slots[i].wake = make(chan chan struct{}, 1)
		id := int64(i + 1)
		wg.Go(func() {
			var it int64
			for {
				var d chan struct{}
				select {
				case d = <-slots[id-1].wake:
				case <-stopping:
					return
				case <-hard.Done():
					return
				}
				r.setActive(1)
				// merged: closed on deactivation or at the end of the schedule.
				merged := make(chan struct{})
				go func() {
					select {
					case <-d:
					case <-stopping:
					case <-hard.Done():
					}
					close(merged)
				}()
				for !closed(merged) && hard.Err() == nil {
					r.iterate(hard, VU{ID: id, Iteration: it, Stopping: merged}, r.c.GracefulRampDown)
					it++
				}
				r.setActive(-1)
			}
		})
	}
	var current int64
	setTarget := func(n int64) {
		for ; current < n; current++ {
			deact[current] = make(chan struct{})
			slots[current].wake <- deact[current]
		}
		for ; current > n; current-- {
			close(deact[current-1])
		}
	}
	for _, s := range r.c.Steps(r.t) {
		wait := s.At - time.Since(r.start)
		if wait > 0 {
			select {
			case <-time.After(wait):
			case <-hard.Done():
			}
		}
		if hard.Err() != nil {
			break
		}
		setTarget(s.VUs)
	}
	wg.Wait()
}

// arrivals runs the arrival-rate executors: iterations start on the schedule whether or not
// earlier ones finished, each on a free VU of a pool of preAllocatedVUs that grows up to maxVUs;
// an iteration with no VU to run it is dropped and counted.
func (r *runner) arrivals(hard context.Context, stopping <-chan struct{}) {
	times := r.c.ArrivalTimes(r.t, 50_000_000)
	maxVUs := r.c.MaxVUsOf(r.t)
	idle := make(chan *VU, maxVUs)
	allocated := r.t.Scale(r.c.PreAllocatedVUs)
	for id := int64(1); id <= allocated; id++ {
		idle <- &VU{ID: id, Stopping: stopping}
	}
	var wg sync.WaitGroup
	for _, at := range times {
		wait := at - time.Since(r.start)
		if wait > 0 {
			select {
			case <-time.After(wait):
			case <-stopping:
			case <-hard.Done():
			}
		}
		if closed(stopping) || hard.Err() != nil {
			break
		}
		var vu *VU
		select {
		case vu = <-idle:
		default:
			if allocated < maxVUs {
				allocated++
				vu = &VU{ID: allocated, Stopping: stopping}
			}
		}
		if vu == nil {
			if r.h.Dropped != nil {
				r.h.Dropped()
			}
			continue
		}
		wg.Go(func() {
			r.setActive(1)
			r.iterate(hard, *vu, -1)
			vu.Iteration++
			r.setActive(-1)
			idle <- vu
		})
	}
	wg.Wait()
}
