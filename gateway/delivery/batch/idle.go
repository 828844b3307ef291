package batch

import "time"

// Idle polling. The flusher reads the outbox every PollInterval while anything is waiting, in
// flight, or appended here since its last read. With nothing to do it looks less and less often,
// its wait doubling from PollInterval up to idlePollFactor poll intervals (1 s by default), and
// the first append here after such a wait wakes it at once (Deliver): an idle gateway no longer
// asks Redis ten times a second, and its own events are read sooner than before. What the longer
// wait can delay are entries appended by other gateways sharing the stream, which their own
// flushers read at once (each is woken by its own appends), and the claims of dead consumers'
// entries (ClaimInterval, 30 s): both within idlePollFactor poll intervals. A sharded outbox
// (cluster mode) keeps PollInterval: each step also notices the shards the replica just took
// (outbox.Adopt), and a takeover must not wait for an idle flusher.

// idlePollFactor bounds the idle flusher's wait, in poll intervals.
const idlePollFactor = 10

// idlePollWait is how long the flusher waits after its idle step number streak (0 for the first
// step that found nothing to do): PollInterval doubled at each idle step, at most idlePollFactor
// poll intervals.
func idlePollWait(poll time.Duration, streak int) time.Duration {
	limit := poll * idlePollFactor
	wait := poll
	for range streak {
		if wait >= limit {
			break
		}
		wait *= 2
	}
	return min(wait, limit)
}

// idleWait returns how long the flusher may wait after a step that left nothing waiting or in
// flight, and marks it idle so that the next append here wakes it (Deliver). Only the flusher's
// goroutine (run) calls it.
func (d *Delivery) idleWait() time.Duration {
	if d.ob.Sharded() {
		return d.cfg.PollInterval
	}
	d.idling.Store(true)
	if d.sinceLastPoll.Load() > 0 {
		// Appended while the step ran, before the append could see the flusher idle: read it at
		// the usual pace.
		d.idling.Store(false)
		d.idleSteps = 0
		return d.cfg.PollInterval
	}
	wait := idlePollWait(d.cfg.PollInterval, d.idleSteps)
	d.idleSteps = min(d.idleSteps+1, idlePollFactor)
	return wait
}
