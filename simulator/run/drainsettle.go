package run

import (
	"context"
	"time"
)

// drainFloor is the least a drain that ends once settled waits: the events of the users' last
// actions reach the outbox within it (a session's queue hands them on in milliseconds).
const drainFloor = time.Second

// waitDrain waits for the drain period d, or, with Options.DrainUntilSettled, until the run has
// settled, whichever comes first: after drainFloor, every fault's recovery watch has finished
// (each started at its fault's heal, so all are known once the users and faults are done) and
// the gateway's outbox is empty. The ground truth then still waits for Laravel to converge.
func (r *runner) waitDrain(ctx context.Context, d time.Duration) {
	start := time.Now()
	deadline := time.NewTimer(d)
	defer deadline.Stop()
	var recovered chan struct{}
	if r.o.DrainUntilSettled {
		r.rec.init()
		recovered = make(chan struct{})
		go func() { r.rec.wg.Wait(); close(recovered) }()
	}
	tick := time.NewTicker(250 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-deadline.C:
			return
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		if recovered == nil || time.Since(start) < drainFloor {
			continue
		}
		select {
		case <-recovered:
		default:
			continue
		}
		if _, ob := r.scrapeGateway(ctx); ob == 0 {
			r.log.Info("drain ended once settled: every fault recovered, the outbox empty", "after", time.Since(start).Round(time.Millisecond), "drain", d)
			return
		}
	}
}
