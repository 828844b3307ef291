package batch

import (
	"context"
	"slices"
	"time"

	"wagate/gateway/event"
	"wagate/gateway/outbox"
)

// Taking in messages and receipts Redis brought back.
//
// A Redis restarted from an AOF that misses its last second (appendfsync everysec) brings back
// what it had before that second and loses what came in it: the outbox entries of items settled
// in that second come back without their acknowledgement and without their batch's record, and
// entries first read in it come back unread. Without more, the flusher takes such an entry in
// (its own pending entries at a start, a claim, an adoption, a read) as an item to send, batches
// it under a new key, and Laravel, which applied it under the old one, applies it a second time
// (chaos fault kind redis-restart-while-gateway-down).
//
// The message journal outside Redis (gateway/storage) knows better: it keeps an applied item's
// row settled for a while after its settlement (storage.Journal.Settle, PruneSettled), and the
// batch an unsettled item was last about to be sent in (Noting). So every message and receipt
// taken in is first looked up there (Options.Journaled, one query per page) and decided by
// intakeDecision: an applied item's entry is acknowledged and deleted, never sent again (counted:
// applied_entries_dropped); an entry of an item a batch in flight here carries under its noted
// key is a duplicate and goes the same way; an item noted in a batch nothing here sends and Redis
// holds no record of goes out only in that batch, re-formed as it was sent, under its key
// (reform); anything else is batched as before.

// JournalState is what the message journal knows of one item taken in: whether Laravel applied it
// (its row settled), and the batch it was last noted in before a send (its key, "" when none, and
// the id of the event it was sent as).
type JournalState struct {
	Applied bool
	Batch   string
	SentAs  string
}

// intakeAction is what the flusher does with an entry it takes in.
type intakeAction int

const (
	// intakeBatch: held and batched as usual; an entry taken over from elsewhere first goes
	// through resume, which re-forms the batch Redis holds a record of.
	intakeBatch intakeAction = iota
	// intakeDrop: acknowledged and deleted from the stream, never sent again: Laravel applied
	// the item, or a batch in flight here carries it in another entry.
	intakeDrop
	// intakeNotedBatch: sent only in the batch the journal noted it in, re-formed as it was sent,
	// under its key (reform).
	intakeNotedBatch
)

func (a intakeAction) String() string {
	switch a {
	case intakeDrop:
		return "drop"
	case intakeNotedBatch:
		return "noted-batch"
	}
	return "batch"
}

// intakeDecision decides what becomes of an entry of kind taken in, given what the journal knows
// of its item (st), whether a batch in flight here carries the key the journal noted for it, and
// whether Redis holds a record of that key.
func intakeDecision(kind event.Kind, st JournalState, keyInFlight, keyRecorded bool) intakeAction {
	switch {
	case !kind.IsMessaging():
		return intakeBatch // QR codes and statuses are not journalled: versions make a repeat harmless
	case st.Applied:
		return intakeDrop
	case st.Batch == "":
		return intakeBatch // never about to be sent: nothing Laravel could have applied
	case keyInFlight:
		return intakeDrop
	case keyRecorded:
		return intakeBatch
	}
	return intakeNotedBatch
}

// takeIn decides every entry taken in with the journal (see above), drops and re-forms what the
// decisions say, and returns the entries to hold. taken is true for entries taken over from
// elsewhere (own pending ones at a start, claimed, adopted, taken back), which then go through
// resume (their batch records in Redis); false for a fresh read. Without Options.Journaled, or
// when the journal cannot be read, the entries go on as before (resumeNoted for those taken over).
func (d *Delivery) takeIn(ctx context.Context, entries []outbox.Entry, now time.Time, taken bool) []outbox.Entry {
	rest := d.decideWithJournal(ctx, entries, now)
	if !taken {
		return rest
	}
	if d.onJournaled == nil {
		rest = d.resumeNoted(ctx, rest, now)
	}
	return d.resume(ctx, rest, now)
}

// decideWithJournal applies intakeDecision to the messaging entries among entries and returns the
// entries left to hold (all of them when the journal is not asked or does not answer).
func (d *Delivery) decideWithJournal(ctx context.Context, entries []outbox.Entry, now time.Time) []outbox.Entry {
	if d.onJournaled == nil {
		return entries
	}
	var asked []int
	var evs []event.Event
	for i, e := range entries {
		if e.Event.Kind.IsMessaging() {
			asked = append(asked, i)
			evs = append(evs, e.Event)
		}
	}
	if len(evs) == 0 {
		return entries
	}
	states, err := d.onJournaled(ctx, evs)
	if err != nil || len(states) != len(evs) {
		d.log.Warn("batch: cannot ask the message journal about the messages taken in; they are batched as they are", "entries", len(evs), "err", err)
		return entries
	}
	d.mu.Lock()
	inFlight := map[string]bool{}
	for _, b := range d.inflight {
		inFlight[b.Key] = true
	}
	d.mu.Unlock()
	var recorded map[string]bool // read from Redis only when some entry needs it
	stateOf := map[string]JournalState{}
	var drop []string
	dropped := map[string]bool{}
	reforming := map[string]bool{}
	for k, i := range asked {
		e, st := entries[i], states[k]
		stateOf[e.ID] = st
		if st.Batch != "" && !st.Applied && !inFlight[st.Batch] && recorded == nil {
			recorded = d.recordedKeys(ctx)
		}
		switch intakeDecision(e.Event.Kind, st, inFlight[st.Batch], recorded[st.Batch]) {
		case intakeDrop:
			drop = append(drop, e.ID)
			dropped[e.ID] = true
		case intakeNotedBatch:
			reforming[st.Batch] = true
		}
	}
	rest := entries
	if len(drop) > 0 {
		rest = slices.DeleteFunc(slices.Clone(rest), func(e outbox.Entry) bool { return dropped[e.ID] })
		d.ack(ctx, drop) // XACK and XDEL: out of the stream, so a drain sees the outbox empty
		d.appliedDropped.Add(int64(len(drop)))
		d.log.Info("batch: entries of items Laravel applied (or a batch in flight here carries) were taken in again; acknowledged, not sent again",
			"entries", len(drop))
	}
	if len(reforming) > 0 {
		rest = d.reform(ctx, rest, stateOf, reforming, now)
	}
	return rest
}

// recordedKeys returns the keys of the batches Redis holds records of (none when it cannot say:
// then an entry whose noted batch is recorded is re-formed from the journal instead, under the
// same key, and resume leaves that key to the batch in flight).
func (d *Delivery) recordedKeys(ctx context.Context) map[string]bool {
	recs, err := d.ob.RecordedBatches(ctx)
	out := map[string]bool{}
	if err != nil {
		return out
	}
	for _, r := range recs {
		out[r.Key] = true
	}
	return out
}

// reform puts in flight, under its key, every batch the journal noted (Options.Noted: those whose
// items it all still holds unsettled) whose key is among keys: its items as they were sent, in
// that order, each carried by the entry taken in that the journal says it was sent as (or that is
// that event), and, for an item none of entries carries, outside cluster mode, by the entry the
// once-only append finds in the stream or adds (a replay of the journal would append it anyway).
// The batch is noted and recorded again before its send, like a new one. A batch one of whose
// items the flusher holds already, or (sharded: another replica may read what is appended) has no
// entry here, is not re-formed: its entries are returned with the others, batched anew. It returns
// the entries not used.
func (d *Delivery) reform(ctx context.Context, entries []outbox.Entry, stateOf map[string]JournalState, keys map[string]bool, now time.Time) []outbox.Entry {
	if d.onNoted == nil {
		return entries
	}
	comps, err := d.onNoted(ctx)
	if err != nil {
		d.log.Warn("batch: cannot read the batches the message journal noted; their entries are batched anew", "err", err)
		return entries
	}
	// The entries taken in by the event they stand for.
	bySent := map[string]outbox.Entry{}
	for _, e := range entries {
		if st, ok := stateOf[e.ID]; ok && keys[st.Batch] {
			bySent[e.Event.ID] = e
			if st.SentAs != "" {
				bySent[st.SentAs] = e
			}
		}
	}
	d.mu.Lock()
	held := map[string]bool{}
	for _, id := range d.heldIDs() {
		held[id] = true
	}
	d.mu.Unlock()
	used := map[string]bool{}
	var formed []*Batch
	var appended []string
	abandoned := 0
	for _, c := range comps {
		if !keys[c.Key] {
			continue
		}
		items := make([]*Item, 0, len(c.Events))
		for _, ev := range c.Events {
			e, ok := bySent[ev.ID]
			if ok && used[e.ID] {
				break
			}
			if !ok {
				if d.ob.Sharded() {
					break
				}
				id, err := d.ob.Append(ctx, ev)
				if err != nil {
					d.enqueueFailed.Add(1)
					d.log.Warn("batch: cannot append an item of a noted batch again; its entries are batched anew", "key", c.Key, "err", err)
					break
				}
				if held[id] || used[id] {
					break
				}
				appended = append(appended, id)
				e = outbox.Entry{ID: id}
			}
			items = append(items, &Item{Winner: outbox.Entry{ID: e.ID, Event: ev}, Since: now})
		}
		if len(items) < len(c.Events) {
			abandoned++
			continue
		}
		for _, it := range items {
			used[it.Winner.ID] = true
		}
		formed = append(formed, &Batch{Kind: c.Kind, Key: c.Key, Items: items, first: now, next: now})
	}
	if d.resent == nil {
		d.resent = map[string]bool{}
	}
	for _, id := range appended {
		if used[id] {
			d.resent[id] = true // a read that meets it leaves it to its batch (skipResent)
		}
	}
	if abandoned > 0 {
		d.log.Warn("batch: batches the message journal noted could not be re-formed (an item held here already, or not here in cluster mode); their entries are batched anew",
			"batches", abandoned)
	}
	return d.sendFirst(formed, used, entries, "batch: entries of batches Redis lost the records of are sent again first, in those batches, under the keys the message journal noted")
}
