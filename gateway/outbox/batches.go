package outbox

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"

	"wagate/gateway/event"
)

// Batch records. A batch's Idempotency-Key is derived from the entries it carries, so it is the
// same only as long as the same entries are sent together. A process that takes over entries
// another one had sent (a start after a SIGKILL, a claim of a dead gateway's entries, a shard
// adoption, a read whose answer Redis ran but the gateway never received) would otherwise batch
// them anew, with other entries, under a new key: Laravel, which applied the first request,
// applies them a second time. So before a batch is first sent its composition is recorded
// (RecordBatches: the key, the kind, the entry ids in the order sent), and the record leaves
// Redis with the batch (AckBatch, in the same transaction as the acknowledgement; ForgetBatches
// when it is split, dead-lettered or re-batched). Whoever takes the entries over re-forms each
// recorded batch whose entries it took and sends it first, under its key: Laravel answers it
// from its stored answer without applying it again.

// BatchRecord is the composition of a batch sent to Laravel and not yet settled.
type BatchRecord struct {
	// Key is the batch's Idempotency-Key.
	Key string `json:"-"`
	// Kind is the kind of every item.
	Kind event.Kind `json:"kind"`
	// IDs are the stream ids of its entries, in the order the batch carries them.
	IDs []string `json:"ids"`
	// At is when it was recorded.
	At time.Time `json:"at"`
}

// recordsKept is how long a record whose entries nobody re-formed is kept: a record is
// normally removed with its batch; one left behind (its removal failed) is dropped after this.
const recordsKept = 24 * time.Hour

// RecordBatches records the composition of batches about to be sent for the first time, in one
// round trip. A batch whose record Redis did not take must not be sent.
func (o *Outbox) RecordBatches(ctx context.Context, recs ...BatchRecord) error {
	if len(recs) == 0 {
		return nil
	}
	values := make([]any, 0, 2*len(recs))
	for _, r := range recs {
		if r.At.IsZero() {
			r.At = time.Now()
		}
		b, err := json.Marshal(r)
		if err != nil {
			return fmt.Errorf("outbox: encode the record of batch %s: %w", r.Key, err)
		}
		values = append(values, r.Key, string(b))
	}
	if err := o.rdb.HSet(ctx, o.cfg.BatchesKey, values...).Err(); err != nil {
		return fmt.Errorf("outbox: record %d batches: %w", len(recs), err)
	}
	return nil
}

// ForgetBatches removes the records of batches that were settled otherwise than by AckBatch.
func (o *Outbox) ForgetBatches(ctx context.Context, keys ...string) error {
	if len(keys) == 0 {
		return nil
	}
	if err := o.rdb.HDel(ctx, o.cfg.BatchesKey, keys...).Err(); err != nil {
		return fmt.Errorf("outbox: forget %d batch records: %w", len(keys), err)
	}
	return nil
}

// RecordedBatches returns every batch record, the ones older than a day (left behind by a
// removal that failed) excepted: those are removed.
func (o *Outbox) RecordedBatches(ctx context.Context) ([]BatchRecord, error) {
	all, err := o.rdb.HGetAll(ctx, o.cfg.BatchesKey).Result()
	if err != nil && !errors.Is(err, redis.Nil) {
		return nil, fmt.Errorf("outbox: read batch records: %w", err)
	}
	recs := make([]BatchRecord, 0, len(all))
	var old []string
	for key, raw := range all {
		var r BatchRecord
		if err := json.Unmarshal([]byte(raw), &r); err != nil || time.Since(r.At) > recordsKept {
			old = append(old, key)
			continue
		}
		r.Key = key
		recs = append(recs, r)
	}
	if len(old) > 0 {
		if err := o.ForgetBatches(ctx, old...); err != nil {
			o.log.Warn("outbox: could not remove old or malformed batch records", "records", len(old), "err", err)
		}
	}
	return recs, nil
}

// AckBatch removes delivered entries (XACK then XDEL) and the record of the batch that carried
// them, in one transaction: a record outlives its batch's acknowledgement only when both are
// lost together.
func (o *Outbox) AckBatch(ctx context.Context, key string, ids ...string) error {
	if key == "" {
		return o.Ack(ctx, ids...)
	}
	_, err := o.rdb.TxPipelined(ctx, func(p redis.Pipeliner) error {
		if len(ids) > 0 {
			p.XAck(ctx, o.cfg.Stream, o.cfg.Group, ids...)
			p.XDel(ctx, o.cfg.Stream, ids...)
		}
		p.HDel(ctx, o.cfg.BatchesKey, key)
		return nil
	})
	if err != nil {
		return fmt.Errorf("outbox: ack %d entries of batch %s: %w", len(ids), key, err)
	}
	if len(ids) > 0 {
		o.acked.Add(int64(len(ids)))
		o.noteRemoved(len(ids))
	}
	return nil
}

// OwnPending returns how many entries Redis counts as pending for this consumer: read (or
// claimed) and not yet acknowledged. The delivery compares it with what it holds to notice
// entries moved to it by a read whose answer never arrived.
func (o *Outbox) OwnPending(ctx context.Context) (int64, error) {
	p, err := o.rdb.XPending(ctx, o.cfg.Stream, o.cfg.Group).Result()
	if noGroup(err) || errors.Is(err, redis.Nil) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("outbox: count own pending entries: %w", err)
	}
	return p.Consumers[o.cfg.Consumer], nil
}

// Present returns, in one round trip, the entries among ids that are still in the stream, by id.
// An entry absent from the answer was deleted: delivered (or dead-lettered) by whoever held it.
// The delivery uses it to complete a recorded batch from entries of shards other replicas took
// over, and to leave out entries settled elsewhere while it was taking them over. A malformed
// entry is left out too (the read that meets it dead-letters it).
func (o *Outbox) Present(ctx context.Context, ids ...string) (map[string]Entry, error) {
	if len(ids) == 0 {
		return map[string]Entry{}, nil
	}
	cmds := make([]*redis.XMessageSliceCmd, len(ids))
	_, err := o.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		for i, id := range ids {
			cmds[i] = p.XRange(ctx, o.cfg.Stream, id, id)
		}
		return nil
	})
	if err != nil && !errors.Is(err, redis.Nil) {
		return nil, fmt.Errorf("outbox: look up %d entries: %w", len(ids), err)
	}
	out := make(map[string]Entry, len(ids))
	for i, c := range cmds {
		msgs, err := c.Result()
		if err != nil || len(msgs) == 0 || msgs[0].ID != ids[i] || len(msgs[0].Values) == 0 {
			continue
		}
		ev, err := decode(msgs[0].Values)
		if err != nil {
			continue
		}
		out[ids[i]] = Entry{ID: ids[i], Event: ev}
	}
	return out, nil
}

// AckGone acknowledges, in this consumer's group only, entries already deleted from the stream
// (delivered by another gateway): they leave its pending list without counting as delivered here.
func (o *Outbox) AckGone(ctx context.Context, ids ...string) error {
	if len(ids) == 0 {
		return nil
	}
	if err := o.rdb.XAck(ctx, o.cfg.Stream, o.cfg.Group, ids...).Err(); err != nil && !noGroup(err) {
		return fmt.Errorf("outbox: acknowledge %d entries deleted elsewhere: %w", len(ids), err)
	}
	return nil
}

// messagingPage is how many entries MessagingEvents reads per round trip.
const messagingPage = 500

// MessagingEvents returns the customers' messages and receipts the stream holds (pending or not
// yet read), read in pages of messagingPage (the stream holds at most Max entries). The message
// journal's replay after a Redis data loss leaves out the items it finds here: a loss noticed by
// the marker's eviction can leave the stream whole while the items' once-only keys were evicted
// (allkeys-lru evicts the cold keys first), and appending such an item again would send it twice
// (chaos seed 2 schedule 10). A malformed entry is left out (the read that meets it
// dead-letters it).
func (o *Outbox) MessagingEvents(ctx context.Context) ([]event.Event, error) {
	var out []event.Event
	start := "-"
	for {
		msgs, err := o.rdb.XRangeN(ctx, o.cfg.Stream, start, "+", messagingPage).Result()
		if err != nil && !errors.Is(err, redis.Nil) {
			return nil, fmt.Errorf("outbox: read the stream's messages: %w", err)
		}
		for _, m := range msgs {
			if k, _ := m.Values["kind"].(string); !event.Kind(k).IsMessaging() {
				continue
			}
			if ev, err := decode(m.Values); err == nil {
				out = append(out, ev)
			}
		}
		if len(msgs) < messagingPage {
			return out, nil
		}
		start = "(" + msgs[len(msgs)-1].ID
	}
}
