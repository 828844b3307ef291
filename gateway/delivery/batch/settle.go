package batch

import (
	"context"
	"time"
)

// Settle waits until the flusher step in progress, if any, has finished: the batches it was
// sending are settled (delivered and removed from the outbox, or failed and waiting for a retry).
// A cluster handover calls it once the shard is no longer held here (so the flusher's later steps
// drop the shard's waiting items and skip its new entries before they send anything) and before
// it releases the shard: no batch of the shard is then being sent here when the next holder adopts
// its entries. It returns ctx's error if the step outlasts ctx.
func (d *Delivery) Settle(ctx context.Context) error {
	for !d.pollMu.TryLock() {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(5 * time.Millisecond):
		}
	}
	d.pollMu.Unlock()
	return nil
}
