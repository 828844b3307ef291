package batch

import (
	"context"
	"fmt"
	"slices"
	"time"

	"wagate/gateway/outbox"
)

// Taking over entries without sending anything twice.
//
// A batch is recorded in Redis before it is first sent (record) and its record leaves with it
// (outbox.AckBatch; forget when it is split, dead-lettered or re-batched). Entries this flusher
// takes over from elsewhere (its own pending entries at a start, a dead gateway's claimed
// entries, an adopted shard's, entries Redis moved to it for a read whose answer never arrived)
// first re-form every recorded batch they belong to (completed from the stream when they are
// only part of it), which is sent first under its recorded key, before the rest wait to be
// batched (resume). Laravel, which may have applied that batch
// already (the gateway was killed before the acknowledgement, or its answer was lost), answers
// the key from its stored answer instead of applying the batch a second time.
//
// Lost reads. A read of the outbox moves entries to this consumer in Redis; when its answer is
// lost (the call timed out while Redis was paused, and go-redis's retry read what came after),
// those entries are pending for this consumer and nobody sends them: nothing claims an entry
// before it has been idle ClaimMinIdle (2 min 20 s). So after a step that failed or a read
// that took longer than slowRedisCall, and every ClaimInterval, the flusher compares the number
// of entries Redis counts as pending for it with the number it holds, and when Redis counts
// more it reads its own pending entries again and takes back those it does not hold
// (takeBackLostReads).

// slowRedisCall is how long a read of the outbox may take before its answer is suspected to be
// a retry's, the first attempt's entries having been moved to this consumer unseen.
const slowRedisCall = time.Second

// record records, in one round trip, the composition of the batches about to be sent for the
// first time, and returns the batches that may be sent: all of them, or when Redis did not take
// the records, only those recorded before (the others wait for the next step). In cluster mode a
// batch just recorded is sent only if this replica still holds its shards (stillHeld, fence.go).
func (d *Delivery) record(ctx context.Context, due []*Batch) ([]*Batch, error) {
	var recs []outbox.BatchRecord
	for _, b := range due {
		if b.recorded {
			continue
		}
		ids := make([]string, len(b.Items))
		for i, it := range b.Items {
			ids[i] = it.Winner.ID
		}
		recs = append(recs, outbox.BatchRecord{Key: b.Key, Kind: b.Kind, IDs: ids})
	}
	if len(recs) == 0 {
		return due, nil
	}
	if err := d.ob.RecordBatches(ctx, recs...); err != nil {
		sendable := slices.DeleteFunc(slices.Clone(due), func(b *Batch) bool { return !b.recorded })
		return sendable, err
	}
	fresh := make(map[*Batch]bool, len(recs))
	for _, b := range due {
		fresh[b] = !b.recorded
		b.recorded = true
	}
	return d.stillHeld(ctx, due, fresh), nil
}

// forget removes the record of a batch settled otherwise than by its acknowledgement; when Redis
// refuses, the removal is owed and retried with the owed acknowledgements.
func (d *Delivery) forget(ctx context.Context, key string) {
	if err := d.ob.ForgetBatches(ctx, key); err != nil {
		d.mu.Lock()
		d.unackedBatches = append(d.unackedBatches, key)
		d.mu.Unlock()
		d.log.Warn("batch: could not remove a settled batch's record; retried next step", "key", key, "err", err)
	}
}

// resume re-forms every recorded batch that entries taken over belong to, and puts it in flight
// (recorded, due now) so it is sent first under its recorded key; it returns the other entries,
// to be held as usual.
//
// A batch a killed replica had in flight carries items of several of its sessions, and the
// survivors claim their shards one by one, some one survivor, some another: the entries taken
// over are often only part of a record. Such a record is completed from the stream (its other
// entries, whatever shard they are of, are still there until the batch is acknowledged: AckBatch
// deletes them with the record) and sent whole under its key by whoever takes part of it over.
// Two survivors may both send it: Laravel applies it once and answers the other from its stored
// answer; the first acknowledgement deletes its entries, so a later adoption finds neither them
// nor the record. Only a record whose entries are no longer all in the stream (or already held
// here outside it) cannot be sent again as it was: it is removed, and its entries are batched
// anew. Entries that belong to no record and are no longer in the stream were delivered by
// someone else meanwhile (the record and its entries leave together, so one that was read
// before its record left is gone too): they are acknowledged away, not sent again.
func (d *Delivery) resume(ctx context.Context, entries []outbox.Entry, now time.Time) []outbox.Entry {
	if len(entries) == 0 {
		return entries
	}
	recs, err := d.ob.RecordedBatches(ctx)
	if err != nil {
		d.log.Warn("batch: cannot read the records of batches in flight; the entries taken over are batched anew", "entries", len(entries), "err", err)
		return entries
	}
	slices.SortFunc(recs, func(a, b outbox.BatchRecord) int { return a.At.Compare(b.At) })
	byID := make(map[string]outbox.Entry, len(entries))
	for _, e := range entries {
		byID[e.ID] = e
	}
	d.mu.Lock()
	held := map[string]bool{}
	for _, id := range d.heldIDs() {
		held[id] = true
	}
	sending := map[string]bool{}
	for _, b := range d.inflight {
		sending[b.Key] = true
	}
	d.mu.Unlock()

	// The records these entries belong to, and the entries to look up in the stream: the
	// records' other entries, and the entries of no record.
	var touched []outbox.BatchRecord
	inRecord := map[string]bool{}
	var lookup []string
	for _, r := range recs {
		if sending[r.Key] || !slices.ContainsFunc(r.IDs, func(id string) bool { _, ok := byID[id]; return ok }) {
			continue // not among these entries (another gateway's batch), or sent from here already
		}
		touched = append(touched, r)
		for _, id := range r.IDs {
			inRecord[id] = true
			if _, ok := byID[id]; !ok {
				lookup = append(lookup, id)
			}
		}
	}
	for _, e := range entries {
		if !inRecord[e.ID] {
			lookup = append(lookup, e.ID)
		}
	}
	present, err := d.ob.Present(ctx, lookup...)
	if err != nil {
		// Unknown: records only partly among the entries are left for whoever holds the rest,
		// and every entry of no record is kept.
		d.log.Warn("batch: cannot look up the entries of recorded batches; only the batches complete among the entries taken over are sent again", "err", err)
		present = nil
	}

	used := map[string]bool{}
	var resumed []*Batch
	var broken []string
	for _, r := range touched {
		items := make([]*Item, 0, len(r.IDs))
		for _, id := range r.IDs {
			e, ok := byID[id]
			if !ok {
				e, ok = present[id]
				ok = ok && !held[id]
			}
			if !ok || used[id] {
				break
			}
			items = append(items, &Item{Winner: e, Since: now})
		}
		if len(items) < len(r.IDs) {
			if present != nil {
				broken = append(broken, r.Key)
			}
			continue
		}
		for _, it := range items {
			used[it.Winner.ID] = true
		}
		resumed = append(resumed, &Batch{Kind: r.Kind, Key: r.Key, Items: items, recorded: true, first: now, next: now})
	}
	for _, key := range broken {
		d.forget(ctx, key)
	}
	if len(broken) > 0 {
		d.log.Warn("batch: recorded batches whose entries are no longer all in the outbox are batched anew", "batches", len(broken))
	}
	var gone []string
	rest := slices.DeleteFunc(slices.Clone(entries), func(e outbox.Entry) bool {
		if used[e.ID] {
			return true
		}
		if _, ok := present[e.ID]; present != nil && !inRecord[e.ID] && !ok {
			gone = append(gone, e.ID)
			return true
		}
		return false
	})
	if len(gone) > 0 {
		if err := d.ob.AckGone(ctx, gone...); err != nil {
			// Left pending here: a later read of own pending entries meets them deleted and
			// acknowledges them then (outbox.decodeAll).
			d.log.Warn("batch: could not acknowledge entries delivered elsewhere", "entries", len(gone), "err", err)
		}
		d.log.Info("batch: entries taken over were delivered meanwhile by another gateway; not sent again", "entries", len(gone))
	}
	if len(resumed) > 0 {
		d.mu.Lock()
		d.inflight = append(d.inflight, resumed...)
		d.mu.Unlock()
		d.log.Info("batch: batches taken over are sent again first, under their recorded keys", "batches", len(resumed), "entries", len(used))
	}
	return rest
}

// takeBackLostReads compares, when a check is due (checkPending), the entries Redis counts as
// pending for this consumer with those the flusher holds; when Redis counts more (or the outbox
// is sharded), it reads its own pending entries again and takes back the ones it does not hold
// (recorded batches first).
func (d *Delivery) takeBackLostReads(ctx context.Context, now time.Time) error {
	if !d.checkPending {
		return nil
	}
	n, err := d.ob.OwnPending(ctx)
	if err != nil {
		return err
	}
	d.mu.Lock()
	have := make(map[string]bool, len(d.unacked))
	for _, id := range d.heldIDs() {
		have[id] = true
	}
	for _, id := range d.unacked {
		have[id] = true
	}
	d.mu.Unlock()
	// Sharded, the flusher also holds adopted entries it never read through its group, so the
	// count proves nothing: it reads its pending entries every time.
	if n <= int64(len(have)) && !d.ob.Sharded() {
		d.checkPending = false
		return nil
	}
	var lost []outbox.Entry
	after := "0"
	for {
		page, err := d.ob.ReadOwnPending(ctx, after, 500)
		if err != nil {
			return fmt.Errorf("batch: read own pending entries again: %w", err)
		}
		if len(page) == 0 {
			break
		}
		for _, e := range page {
			if !have[e.ID] {
				lost = append(lost, e)
			}
		}
		after = page[len(page)-1].ID
	}
	d.checkPending = false
	if len(lost) == 0 {
		return nil
	}
	d.log.Warn("batch: took back outbox entries Redis moved to this gateway for a read whose answer never arrived",
		"entries", len(lost), "pending", n, "held", len(have))
	d.hold(ctx, d.takeIn(ctx, lost, now, true), now)
	return nil
}

// timedRead runs one read of the outbox and asks for a check of this consumer's pending entries
// when it failed or was slow (its answer may have been a retry's, the first attempt's lost).
func (d *Delivery) timedRead(read func() ([]outbox.Entry, error)) ([]outbox.Entry, error) {
	start := time.Now()
	entries, err := read()
	if err != nil || time.Since(start) > slowRedisCall {
		d.checkPending = true
	}
	return entries, err
}
