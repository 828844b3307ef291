package batch

import (
	"context"
	"time"

	"wagate/gateway/outbox"
)

// A batch's first send is fenced by its record (cluster mode).
//
// Whoever takes a shard over adopts its entries from the stream and, for entries of a recorded
// batch, sends that batch under its recorded Idempotency-Key (resume), so Laravel applies it once
// whichever replica sends it. What must never go out is a batch recorded after the new holder's
// adoption: the new holder found no record and sent the entries under a key of its own. A
// replica paused past its lease (SIGSTOP, a stall) in the middle of a flusher step resumes with
// a batch it formed from the shard's waiting items before the pause, records it and sends it:
// the same customer's message under two keys (issue 16, chaos-cluster seed 1 schedule 1; the
// flusher had asked whether it held the shard before the pause).
//
// So after its record has landed, and before its first send, a batch is sent only if this
// replica still holds the shard of every item. The question is answered on this process's
// monotonic clock against the renew deadline (cluster.Member.HeldEpoch), which ends before the
// lease can end in Redis: a yes means nobody else can have claimed the shard yet, so any later
// adoption finds the record and sends the batch under the same key. A no drops the batch before
// anything was sent: its record is removed, the items of shards still held wait again, the
// others are left in the stream (unacknowledged) to the shard's holder, as the waiting items of a
// lost shard are. A pause after the check, before or during the send, is covered by the record.

// stillHeld returns the batches of due that may be sent once their records have landed: all but
// the ones just recorded (fresh) that carry an item of a shard this replica no longer holds, which
// it takes out of flight.
func (d *Delivery) stillHeld(ctx context.Context, due []*Batch, fresh map[*Batch]bool) []*Batch {
	if !d.ob.Sharded() {
		return due
	}
	sendable := make([]*Batch, 0, len(due))
	var lost []*Batch
	for _, b := range due {
		if fresh[b] && !d.holdsAll(b) {
			lost = append(lost, b)
			continue
		}
		sendable = append(sendable, b)
	}
	if len(lost) == 0 {
		return due
	}
	d.unsend(ctx, lost, d.clock.Now())
	return sendable
}

// holdsAll reports whether this replica holds the shard of every item of b.
func (d *Delivery) holdsAll(b *Batch) bool {
	for _, it := range b.Items {
		if !d.ob.HoldsSession(it.Winner.Event.SessionID) {
			return false
		}
	}
	return true
}

// unsend takes batches never sent out of flight: their records are removed, the items of shards
// still held wait again, the others are dropped unacknowledged for their shards' holders.
func (d *Delivery) unsend(ctx context.Context, lost []*Batch, now time.Time) {
	dropped := 0
	var superseded []outbox.Entry
	d.mu.Lock()
	for _, b := range lost {
		d.removeInflight(b)
		var keep []*Item
		for _, it := range b.Items {
			if d.ob.HoldsSession(it.Winner.Event.SessionID) {
				keep = append(keep, it)
			} else {
				dropped++
			}
		}
		superseded = append(superseded, d.co.readd(keep, now)...)
	}
	d.mu.Unlock()
	for _, b := range lost {
		d.forget(ctx, b.Key)
	}
	ids := make([]string, len(superseded))
	for i, e := range superseded {
		ids[i] = e.ID
	}
	d.ack(ctx, ids)
	d.log.Info("batch: batches formed before this replica lost their shards are not sent; the shards' holders send their items",
		"batches", len(lost), "items_dropped", dropped)
}
