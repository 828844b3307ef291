package app

import (
	"context"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"wagate/gateway/delivery/batch"
	"wagate/gateway/event"
	"wagate/gateway/metrics"
	"wagate/gateway/storage"
)

// journalKeeper is batch mode's use of the message journal (storage.Journal) beyond the session
// layer's Record: it marks settled the rows of items Laravel applied and deletes those of
// dead-lettered ones (settled, the batch delivery's Settled hook), tells the delivery what it
// knows of the items it takes in (journaled), appends every row again after Redis lost its data
// (replay), prunes unsettled rows past the retention (prune, hourly) and settled rows past the
// settled retention (pruneSettled), and counts the rows for the metrics (every journalCountEvery).
type journalKeeper struct {
	journal   *storage.Journal
	retention time.Duration
	// settledRetention is how long a settled row is kept (pruneSettled); watchedSince is when
	// this process last began to watch Redis without a loss (its start, or the last loss it
	// noticed: Unix ms).
	settledRetention time.Duration
	watchedSince     atomic.Int64
	log              *slog.Logger
	// deliver is the normal append path (batch.Delivery.Deliver: the outbox's once-only append),
	// held the events the delivery holds in memory (batch.Delivery.HeldEvents: it sends them
	// whatever Redis lost).
	deliver func(ctx context.Context, ev event.Event) error
	held    func() []event.Event
	// resend, when set (not in cluster mode: the entries it appends may be read by the replica
	// holding their shard), sends a batch the journal noted again as it was, under its key
	// (batch.Delivery.Resend); unset, its rows are appended one by one like the others.
	resend func(ctx context.Context, c batch.Composition) (bool, error)
	// inOutbox, when set, is the customers' messages and receipts the outbox's stream holds
	// (outbox.MessagingEvents): a replay leaves their items out, the stream delivers them.
	inOutbox func(ctx context.Context) ([]event.Event, error)

	replayMu sync.Mutex // one replay at a time

	// settledDuring holds the items (storage.JournalKey) the delivery settled while a replay runs
	// (nil when none runs): the replay reads its rows first and appends them one by one, and an
	// item settled meanwhile was delivered and its entry acknowledged away, so appending it then
	// would send it again (the outbox's once-only key does not stop it when a loss came between:
	// see outbox's appendOnceScript).
	settledMu     sync.Mutex
	settledDuring map[string]bool

	// For the metrics (snapshot): the last count's rows and oldest recording time (Unix ms, 0:
	// none), rows replayed, replays that went through and replay attempts that failed.
	rows, oldestMs                    atomic.Int64
	replayed, replays, replayFailures atomic.Int64

	// lossAt is when a running gateway sharing the store (this one, or one that recorded it
	// before this one started: loadLoss) last noticed that Redis lost its data (Unix ms; 0:
	// never, or no row recorded before it is left). Cluster mode: shards this replica claims
	// after it get their rows recorded before it appended again (replayClaimed).
	lossAt atomic.Int64
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

// journalPruneEvery is how often the keeper prunes the journal's unsettled rows.
const journalPruneEvery = time.Hour

// journalSettledPruneEvery bounds how often the keeper prunes the settled rows (a quarter of the
// settled retention when that is shorter).
const journalSettledPruneEvery = time.Minute

// journalCountEvery is how often the keeper counts the journal's rows for wagate_journal_rows and
// wagate_journal_oldest_row_age_seconds (one COUNT and MIN over the unsettled rows; a scrape
// reads the last count and queries nothing).
const journalCountEvery = 15 * time.Second

// journalReplayRetry bounds the wait between two attempts of a replay that failed (Redis down
// again, the outbox full): 1 s doubling up to it.
const journalReplayRetry = 30 * time.Second

func newJournalKeeper(db *storage.DB, retention, settledRetention time.Duration, log *slog.Logger) *journalKeeper {
	ctx, cancel := context.WithCancel(context.Background())
	k := &journalKeeper{journal: storage.NewJournal(db), retention: retention, settledRetention: settledRetention, log: log, ctx: ctx, cancel: cancel}
	k.watchedSince.Store(time.Now().UnixMilli())
	return k
}

// settled is the batch delivery's Settled hook: the rows of items Laravel applied are marked
// settled (settle), those of dead-lettered items deleted (forget).
func (k *journalKeeper) settled(ctx context.Context, evs []event.Event, fate batch.Settlement) {
	if fate == batch.SettledDeadLettered {
		k.forget(ctx, evs)
		return
	}
	k.settle(ctx, evs)
}

// settle marks the rows of items Laravel applied settled: one UPDATE per batch. They are kept
// for the settled retention, so an entry of one that Redis brings back after losing its
// acknowledgement is acknowledged away, not sent again (journaled). A failure leaves the rows
// unsettled (a replay would append those items again, Laravel's upsert by message id takes them
// once; the retention removes them).
func (k *journalKeeper) settle(ctx context.Context, evs []event.Event) {
	k.settling(evs)
	if _, err := k.journal.Settle(ctx, evs); err != nil {
		k.log.Warn("message journal: marking the rows of applied items settled failed; they stay until the retention ends", "items", len(evs), "err", err)
	}
}

// forget deletes the rows of dead-lettered items: one DELETE per batch (an entry of one that
// Redis brings back is sent again and refused again, never applied).
func (k *journalKeeper) forget(ctx context.Context, evs []event.Event) {
	k.settling(evs)
	if _, err := k.journal.Forget(ctx, evs); err != nil {
		k.log.Warn("message journal: deleting the rows of dead-lettered items failed; they stay until the retention ends", "items", len(evs), "err", err)
	}
}

// settling tells a replay under way that evs were settled.
func (k *journalKeeper) settling(evs []event.Event) {
	k.settledMu.Lock()
	defer k.settledMu.Unlock()
	if k.settledDuring != nil {
		for _, ev := range evs {
			if key := storage.JournalKey(ev); key != "" {
				k.settledDuring[key] = true
			}
		}
	}
}

// journalStatesTimeout bounds the journal lookup of one page of messages taken in.
const journalStatesTimeout = 5 * time.Second

// journaled is the batch delivery's Journaled hook: what the journal knows of the items of evs
// (one SELECT per 500 items).
func (k *journalKeeper) journaled(ctx context.Context, evs []event.Event) ([]batch.JournalState, error) {
	ctx, cancel := context.WithTimeout(ctx, journalStatesTimeout)
	defer cancel()
	states, err := k.journal.States(ctx, evs)
	if err != nil {
		return nil, err
	}
	out := make([]batch.JournalState, len(states))
	for i, st := range states {
		out[i] = batch.JournalState{Applied: st.Applied, Batch: st.Batch, SentAs: st.SentAs}
	}
	return out, nil
}

// journalNoteTimeout bounds the UPDATE that notes a step's batches (the flusher waits for it
// before their first send; a failure holds them back until the next step).
const journalNoteTimeout = 5 * time.Second

// note is the batch delivery's Noting hook: the batches of messages and receipts about to be sent
// for the first time are noted on their items' rows (one UPDATE), so that after Redis lost the
// batch records a replay sends each again under its key instead of in a new batch, which Laravel
// would apply a second time.
func (k *journalKeeper) note(ctx context.Context, comps []batch.Composition) error {
	ctx, cancel := context.WithTimeout(ctx, journalNoteTimeout)
	defer cancel()
	bs := make([]storage.JournalBatch, len(comps))
	for i, c := range comps {
		bs[i] = storage.JournalBatch{Key: c.Key, Events: c.Events}
	}
	return k.journal.NoteBatches(ctx, bs...)
}

// noted is the batch delivery's Noted hook: every batch noted whose items the journal still all
// holds.
func (k *journalKeeper) noted(ctx context.Context) ([]batch.Composition, error) {
	bs, err := k.journal.Batches(ctx, time.Time{}, nil)
	if err != nil {
		return nil, err
	}
	return compositions(bs), nil
}

// compositions are the journal's noted batches as the delivery sends them.
func compositions(bs []storage.JournalBatch) []batch.Composition {
	out := make([]batch.Composition, len(bs))
	for i, b := range bs {
		out[i] = batch.Composition{Key: b.Key, Kind: b.Events[0].Kind, Events: b.Events}
	}
	return out
}

// start prunes the journal now and every journalPruneEvery, and counts its rows now and every
// journalCountEvery, until stop.
func (k *journalKeeper) start() {
	k.wg.Add(1)
	go func() {
		defer k.wg.Done()
		prune := time.NewTicker(journalPruneEvery)
		defer prune.Stop()
		count := time.NewTicker(journalCountEvery)
		defer count.Stop()
		pruneSettled := time.NewTicker(min(journalSettledPruneEvery, max(k.settledRetention/4, time.Second)))
		defer pruneSettled.Stop()
		k.prune()
		k.count()
		for {
			select {
			case <-k.ctx.Done():
				return
			case <-prune.C:
				k.prune()
			case <-count.C:
				k.count()
			case <-pruneSettled.C:
				k.pruneSettled(time.Now())
			}
		}
	}()
}

// prune deletes the rows past the retention.
func (k *journalKeeper) prune() {
	if n, err := k.journal.Prune(k.ctx, time.Now().Add(-k.retention)); err != nil && k.ctx.Err() == nil {
		k.log.Warn("message journal: pruning failed", "err", err)
	} else if n > 0 {
		k.log.Warn("message journal: pruned items nothing settled within the retention", "items", n, "retention", k.retention)
	}
}

// settledPruneBefore returns the settlement time before which settled rows may be deleted at now,
// or false when none may be: a row settled more than retention ago, once this process has watched
// Redis for retention since watchedSince (its start, or the last loss it noticed). The settlement
// of an item is durable in Redis (AOF everysec: within a second or two) long before; a start after
// an outage, or a Redis restart noticed running, takes in what Redis brought back within seconds
// (the start's own pending entries, the first reads) while every row settled before is still
// there, however long the gateway was down.
func settledPruneBefore(now, watchedSince time.Time, retention time.Duration) (time.Time, bool) {
	if now.Sub(watchedSince) < retention {
		return time.Time{}, false
	}
	return now.Add(-retention), true
}

// pruneSettled deletes the settled rows settledPruneBefore allows at now.
func (k *journalKeeper) pruneSettled(now time.Time) {
	before, ok := settledPruneBefore(now, time.UnixMilli(k.watchedSince.Load()), k.settledRetention)
	if !ok {
		return
	}
	if _, err := k.journal.PruneSettled(k.ctx, before); err != nil && k.ctx.Err() == nil {
		k.log.Warn("message journal: pruning settled rows failed; the next prune tries again", "err", err)
	}
}

// count takes the journal's row count and oldest row for the metrics; a failed count keeps the
// last one.
func (k *journalKeeper) count() {
	h, err := k.journal.Held(k.ctx)
	if err != nil {
		if k.ctx.Err() == nil {
			k.log.Warn("message journal: counting its rows failed", "err", err)
		}
		return
	}
	k.rows.Store(h.Rows)
	oldest := int64(0)
	if !h.Oldest.IsZero() {
		oldest = h.Oldest.UnixMilli()
	}
	k.oldestMs.Store(oldest)
	// No row older than the last loss is left: a claimed shard has nothing to replay, on any
	// replica (the journal is shared).
	if loss := k.lossAt.Load(); loss != 0 && (h.Rows == 0 || oldest >= loss) && k.lossAt.CompareAndSwap(loss, 0) {
		if err := k.journal.ForgetLoss(k.ctx, time.UnixMilli(loss)); err != nil && k.ctx.Err() == nil {
			k.log.Warn("message journal: forgetting a Redis data loss whose rows are settled failed; the next count tries again", "err", err)
			k.lossAt.CompareAndSwap(0, loss)
		}
	}
}

// journalLossWrite bounds noteLoss's write to the store (it runs in the outbox keeper's check).
const journalLossWrite = 2 * time.Second

// noteLoss records that this process noticed, running, at at, that Redis lost its data, and
// records it in the store too: in cluster mode a replica started after the loss takes it from
// there (loadLoss), so a shard held by nobody at the loss and claimed only by such a replica gets
// its rows appended too. A failed write is logged (that shard's rows then wait for the next loss
// or the retention, as before the loss was recorded).
func (k *journalKeeper) noteLoss(at time.Time) {
	k.lossAt.Store(at.UnixMilli())
	k.watchedSince.Store(at.UnixMilli())
	ctx, cancel := context.WithTimeout(k.ctx, journalLossWrite)
	defer cancel()
	if err := k.journal.NoteLoss(ctx, at); err != nil {
		k.log.Warn("message journal: recording the Redis data loss in the store failed; a replica started later will not replay the rows of shards it claims", "err", err)
	}
}

// loadLoss takes the last loss a running gateway sharing the store recorded (noteLoss) and no
// count forgot since, as if this process had noticed it: called at start, before any claim.
func (k *journalKeeper) loadLoss(ctx context.Context) error {
	at, err := k.journal.LastLoss(ctx)
	if err != nil {
		return err
	}
	if !at.IsZero() {
		k.lossAt.CompareAndSwap(0, at.UnixMilli())
		k.log.Info("message journal: a Redis data loss was recorded while rows older than it wait; shards claimed get those rows appended again", "loss_at", at)
	}
	return nil
}

// replayClaimed appends again, in the background, the journal rows of the sessions keep accepts
// (the shards this replica just claimed) recorded before the last loss it noticed running, if
// any. Those of a shard held by nobody (or moving) at that loss were appended by no replica;
// rows another replica appended already are in the new outbox, and the outbox's once-only key
// takes them once. It records no generation (the loss's own replay does).
func (k *journalKeeper) replayClaimed(keep func(sessionID string) bool) {
	loss := k.lossAt.Load()
	if loss == 0 || k.ctx.Err() != nil {
		return
	}
	k.replayInBackground(keep, time.UnixMilli(loss), nil)
}

// snapshot is the journal's metrics (metrics.RegisterJournal): the last count, and the counts of
// the journal and of this keeper.
func (k *journalKeeper) snapshot() metrics.JournalSnapshot {
	c := k.journal.Counts()
	s := metrics.JournalSnapshot{Rows: k.rows.Load(), Recorded: c.Recorded, Settled: c.Settled, Pruned: c.Pruned,
		Replayed: k.replayed.Load(), Replays: k.replays.Load(), ReplayFailures: k.replayFailures.Load()}
	if ms := k.oldestMs.Load(); ms != 0 {
		s.OldestRowAge = max(time.Since(time.UnixMilli(ms)), 0)
	}
	return s
}

// replayInBackground appends every journal row of the sessions keep accepts (nil: all) again,
// retrying until it went through or the keeper stops, then waits until the delivery settled the
// rows it left out (held in its memory: a crash before they reach Laravel must find them
// replayed at the next start), then calls done (recording the Redis generation: a stop or a
// crash before that replays again at the next start).
//
// before bounds the rows to those recorded before it (zero: every row).
func (k *journalKeeper) replayInBackground(keep func(sessionID string) bool, before time.Time, done func(context.Context)) {
	k.wg.Add(1)
	go func() {
		defer k.wg.Done()
		wait := time.Second
		for {
			n, left, err := k.replay(k.ctx, before, keep)
			if err == nil {
				k.replays.Add(1)
				k.log.Warn("message journal: Redis lost its data; the messages and receipts Laravel had not settled were appended again",
					"items", n, "held_by_the_delivery_or_resent", len(left))
				if !k.awaitSettled(left) {
					return
				}
				if done != nil {
					done(k.ctx)
				}
				return
			}
			if k.ctx.Err() != nil {
				return
			}
			k.replayFailures.Add(1)
			k.log.Warn("message journal: appending the journal again after a Redis data loss failed; retrying", "appended", n, "err", err, "in", wait)
			select {
			case <-k.ctx.Done():
				return
			case <-time.After(wait):
			}
			wait = min(2*wait, journalReplayRetry)
		}
	}()
}

// replay appends every journal row of the sessions keep accepts through the normal append path,
// each session's in sequence order, leaving out (and returning) the rows of the items the
// delivery holds in memory. First, the batches the journal noted whole (their items about to be
// sent, or sent, when Redis lost their records) are sent again as they were, under their keys
// (resend), and returned with the rows left out: Laravel answers a batch it applied from its
// stored answer, where a new batch under a new key would be applied again. A noted batch one of
// whose items the delivery holds, the outbox's stream holds (its once-only key may be gone with
// the loss: a second entry would be appended) or the delivery settled meanwhile is not sent again
// as a batch: its rows go the way of the others. Held is by item identity (storage.JournalKey), not event id: a row's
// item refused and redelivered by WhatsApp is held under the redelivery's new event id, and
// appending the row too would deliver the item twice. The outbox's once-only key makes a row
// appended twice (a retried replay, WhatsApp's redelivery racing it) one entry.
func (k *journalKeeper) replay(ctx context.Context, before time.Time, keep func(sessionID string) bool) (int, []event.Event, error) {
	k.replayMu.Lock()
	defer k.replayMu.Unlock()
	k.settledMu.Lock()
	k.settledDuring = make(map[string]bool)
	k.settledMu.Unlock()
	defer func() {
		k.settledMu.Lock()
		k.settledDuring = nil
		k.settledMu.Unlock()
	}()
	held := make(map[string]bool)
	for _, ev := range k.held() {
		if key := storage.JournalKey(ev); key != "" {
			held[key] = true
		}
	}
	// Items whose entries survived the loss (the marker evicted, the stream kept) are in the
	// outbox already: their once-only keys may be gone, so appending them would add a second entry.
	queued := make(map[string]bool)
	if k.inOutbox != nil {
		evs, err := k.inOutbox(ctx)
		if err != nil {
			return 0, nil, err
		}
		for _, ev := range evs {
			if key := storage.JournalKey(ev); key != "" {
				queued[key] = true
			}
		}
	}
	settledNow := func(key string) bool {
		k.settledMu.Lock()
		defer k.settledMu.Unlock()
		return k.settledDuring[key]
	}
	n := 0
	var left []event.Event
	resent := map[string]bool{}
	if k.resend != nil {
		bs, err := k.journal.Batches(ctx, before, keep)
		if err != nil {
			return 0, nil, err
		}
		batches := 0
		for _, c := range compositions(bs) {
			if slices.ContainsFunc(c.Events, func(ev event.Event) bool {
				key := storage.JournalKey(ev)
				return held[key] || queued[key] || settledNow(key)
			}) {
				continue
			}
			ok, err := k.resend(ctx, c)
			if err != nil {
				return n, left, err
			}
			if !ok {
				continue // the delivery holds one of its items: it sends them itself
			}
			for _, ev := range c.Events {
				resent[storage.JournalKey(ev)] = true
			}
			left = append(left, c.Events...)
			k.replayed.Add(int64(len(c.Events)))
			n += len(c.Events)
			batches++
		}
		if batches > 0 {
			k.log.Info("message journal: batches noted before Redis lost their records are sent again first, under their keys", "batches", batches)
		}
	}
	err := k.journal.ReplayRecordedBefore(ctx, before, keep, func(ctx context.Context, ev event.Event) error {
		key := storage.JournalKey(ev)
		if resent[key] {
			return nil
		}
		if held[key] {
			left = append(left, ev)
			return nil
		}
		if settledNow(key) || queued[key] {
			return nil
		}
		if err := k.deliver(ctx, ev); err != nil {
			return err
		}
		k.replayed.Add(1)
		n++
		return nil
	})
	return n, left, err
}

// journalSettleCheck is how often awaitSettled looks at the journal.
const journalSettleCheck = time.Second

// awaitSettled waits until the journal holds none of evs any more (the delivery settled them),
// or the keeper stops (false).
func (k *journalKeeper) awaitSettled(evs []event.Event) bool {
	for len(evs) > 0 {
		n, err := k.journal.Holding(k.ctx, evs)
		if err == nil && n == 0 {
			return true
		}
		select {
		case <-k.ctx.Done():
			return false
		case <-time.After(journalSettleCheck):
		}
	}
	return true
}

// stop ends the pruning and any replay under way, and waits for them.
func (k *journalKeeper) stop() {
	k.cancel()
	k.wg.Wait()
}

// heldSessions returns which sessions' journal rows this gateway appends again after Redis lost
// its data: in cluster mode those of the shards it holds (every replica notices the loss and
// replays its own); nil (every session) otherwise.
func (a *App) heldSessions() func(sessionID string) bool {
	if a.node == nil {
		return nil
	}
	return func(sessionID string) bool {
		_, _, held := a.node.Epoch(sessionID)
		return held
	}
}
