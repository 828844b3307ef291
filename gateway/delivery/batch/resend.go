package batch

import (
	"context"
	"fmt"
	"slices"
	"time"

	"wagate/gateway/event"
	"wagate/gateway/outbox"
)

// Batches sent again under their keys after Redis lost their records.
//
// A batch's record (resume.go) lives in Redis, and a Redis that loses its data (restarted from an
// AOF that misses its last second of writes, killed without persistence, evicting) loses it with
// the outbox. The message journal (gateway/storage) keeps customers' messages and receipts outside
// Redis and has them appended again after such a loss (gateway/app); without the batch each was
// in, the messages of a batch Laravel applied just before the gateway died went out again in a new
// batch under a new key, and Laravel applied them a second time (chaos fault kind
// redis-restart-while-gateway-down). So before the first POST of a batch of messages or receipts
// the delivery tells Options.Noting its key and its items as sent (the journal notes them on the
// items' rows), and the journal's replay hands every batch whose items it still holds to Resend,
// which sends it again as it was, under its key: Laravel answers from its stored answer when it
// applied it, and applies it once otherwise.

// Redis restarted from an AOF may also have kept a batch's entries (appended more than a second
// before) and lost its record (written in its last second): the next start takes the entries over
// as its own pending ones, finds no record, and would batch them anew under a new key. So a start
// first asks Options.Noted for the batches the journal noted, and re-forms those whose entries it
// takes over and Redis holds no record of (resumeNoted; with Options.Journaled, reform in
// intake.go does it for every entry taken in, by what the journal says of its item).

// Composition is a batch of messages or receipts as it is sent: its Idempotency-Key, kind and
// the events of its items in the order sent (the request body is built from them in that order).
type Composition struct {
	Key    string
	Kind   event.Kind
	Events []event.Event
}

// note tells Options.Noting the composition of the batches of messages and receipts about to be
// sent for the first time (not yet recorded), and returns the batches that may be sent: all of
// them, or when Noting failed, all but those (they stay in flight, not recorded, and the next
// step tries again: a batch is never sent before its composition is noted).
func (d *Delivery) note(ctx context.Context, due []*Batch) ([]*Batch, error) {
	if d.onNoting == nil {
		return due, nil
	}
	var comps []Composition
	noting := map[*Batch]bool{}
	for _, b := range due {
		if b.recorded || !b.Kind.IsMessaging() {
			continue
		}
		evs := make([]event.Event, len(b.Items))
		for i, it := range b.Items {
			evs[i] = it.Winner.Event
		}
		comps = append(comps, Composition{Key: b.Key, Kind: b.Kind, Events: evs})
		noting[b] = true
	}
	if len(comps) == 0 {
		return due, nil
	}
	if err := d.onNoting(ctx, comps); err != nil {
		return slices.DeleteFunc(slices.Clone(due), func(b *Batch) bool { return noting[b] }),
			fmt.Errorf("batch: note %d batches before their first send: %w", len(comps), err)
	}
	return due, nil
}

// Resend sends a batch of messages or receipts again, first, as it was sent before (the events in
// that order) under its key, after Redis lost its record and its entries: it appends the events
// to the outbox (the once-only append: an entry the stream still holds is found, not added),
// records the batch there and puts it in flight; when the flusher then reads those entries it does
// not batch them again. It reports false, having put nothing in flight, when the flusher holds one
// of those entries already (it sends it itself; the entries appended are delivered as usual). An
// error leaves the entries appended so far in the outbox; calling Resend again finds them.
func (d *Delivery) Resend(ctx context.Context, c Composition) (bool, error) {
	if len(c.Events) == 0 || !c.Kind.IsMessaging() {
		return false, fmt.Errorf("batch: resend %s: only a batch of messages or receipts is sent again", c.Key)
	}
	d.pollMu.Lock()
	defer d.pollMu.Unlock()
	now := d.clock.Now()
	items := make([]*Item, len(c.Events))
	ids := make([]string, len(c.Events))
	for i, ev := range c.Events {
		if ev.Kind != c.Kind {
			return false, fmt.Errorf("batch: resend %s: a %s among its %s items", c.Key, ev.Kind, c.Kind)
		}
		id, err := d.ob.Append(ctx, ev)
		if err != nil {
			d.enqueueFailed.Add(1)
			return false, fmt.Errorf("batch: resend %s: %w", c.Key, err)
		}
		ids[i] = id
		items[i] = &Item{Winner: outbox.Entry{ID: id, Event: ev}, Since: now}
	}
	d.mu.Lock()
	held := slices.ContainsFunc(d.heldIDs(), func(id string) bool { return slices.Contains(ids, id) })
	d.mu.Unlock()
	if held {
		return false, nil
	}
	if err := d.ob.RecordBatches(ctx, outbox.BatchRecord{Key: c.Key, Kind: c.Kind, IDs: ids}); err != nil {
		return false, fmt.Errorf("batch: resend %s: record it: %w", c.Key, err)
	}
	d.mu.Lock()
	d.inflight = append(d.inflight, &Batch{Kind: c.Kind, Key: c.Key, Items: items, recorded: true, first: now, next: now})
	d.mu.Unlock()
	if d.resent == nil {
		d.resent = map[string]bool{}
	}
	for _, id := range ids {
		d.resent[id] = true
	}
	d.poke()
	return true, nil
}

// skipResent leaves out of entries just read those a resent batch holds in flight; once a read
// found nothing more to read (caught up), every resent entry was read or deleted with its batch,
// and the set is emptied. Callers hold pollMu.
func (d *Delivery) skipResent(entries []outbox.Entry, caughtUp bool) []outbox.Entry {
	if len(d.resent) == 0 {
		return entries
	}
	out := slices.DeleteFunc(entries, func(e outbox.Entry) bool { return d.resent[e.ID] })
	if caughtUp {
		d.resent = nil
	}
	return out
}

// resumeNoted (used without Options.Journaled) re-forms, at a start, every batch Options.Noted
// names whose entries are all among the entries taken over (by event id) and belong to no batch
// record in Redis, and puts it in flight under its key, sent first (noted and recorded again
// before it); it returns the other entries, for resume. Without Noted, or when Redis's records or the journal cannot be read, it
// returns entries as they are (resume batches what no record names anew, as before).
func (d *Delivery) resumeNoted(ctx context.Context, entries []outbox.Entry, now time.Time) []outbox.Entry {
	if d.onNoted == nil || len(entries) == 0 {
		return entries
	}
	recs, err := d.ob.RecordedBatches(ctx)
	if err != nil {
		return entries // resume reads them again and says so
	}
	inRecord := map[string]bool{}
	for _, r := range recs {
		for _, id := range r.IDs {
			inRecord[id] = true
		}
	}
	byEvent := map[string]outbox.Entry{}
	for _, e := range entries {
		if !inRecord[e.ID] && e.Event.Kind.IsMessaging() {
			byEvent[e.Event.ID] = e
		}
	}
	if len(byEvent) == 0 {
		return entries
	}
	comps, err := d.onNoted(ctx)
	if err != nil {
		d.log.Warn("batch: cannot read the batches the message journal noted; entries Redis holds no batch record of are batched anew", "err", err)
		return entries
	}
	used := map[string]bool{}
	var resumed []*Batch
	for _, c := range comps {
		items := make([]*Item, 0, len(c.Events))
		for _, ev := range c.Events {
			e, ok := byEvent[ev.ID]
			if !ok || used[e.ID] {
				break
			}
			items = append(items, &Item{Winner: e, Since: now})
		}
		if len(items) < len(c.Events) {
			continue
		}
		for _, it := range items {
			used[it.Winner.ID] = true
		}
		resumed = append(resumed, &Batch{Kind: c.Kind, Key: c.Key, Items: items, first: now, next: now})
	}
	return d.sendFirst(resumed, used, entries, "batch: batches Redis lost the records of are sent again first, under the keys the message journal noted")
}

// sendFirst puts batches re-formed under the keys the message journal noted in flight (sent
// before anything new), logs msg when there are any, and returns entries without the used ones
// (those batches carry them).
func (d *Delivery) sendFirst(batches []*Batch, used map[string]bool, entries []outbox.Entry, msg string) []outbox.Entry {
	if len(batches) == 0 {
		return entries
	}
	d.mu.Lock()
	d.inflight = append(d.inflight, batches...)
	d.mu.Unlock()
	d.log.Info(msg, "batches", len(batches), "entries", len(used))
	return slices.DeleteFunc(slices.Clone(entries), func(e outbox.Entry) bool { return used[e.ID] })
}
