package run

import (
	"context"
	"time"
)

// settleLimit bounds how long the simulator waits, after the fixed drain, for a batch gateway's
// outbox to empty before it compares Laravel's state with the ground truth.
const settleLimit = 60 * time.Second

// settleOutbox waits until the gateway's outbox is empty (every accepted event delivered), the
// gateway stops answering, ctx ends or settleLimit passes, whichever comes first. A saturated
// gateway can hold events longer than the scenario's drain; comparing before they are delivered
// would count them as lost when they are only late. Legacy mode has no outbox and returns at once.
// It returns how long it waited and the depth it last saw (-1 when unknown).
func (r *runner) settleOutbox(ctx context.Context) (waited time.Duration, depth float64) {
	start := time.Now()
	deadline := start.Add(settleLimit)
	for {
		_, depth = r.scrapeGateway(ctx)
		if depth <= 0 || time.Now().After(deadline) {
			return time.Since(start), depth
		}
		select {
		case <-ctx.Done():
			return time.Since(start), depth
		case <-time.After(250 * time.Millisecond):
		}
	}
}
