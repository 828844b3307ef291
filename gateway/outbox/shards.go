package outbox

import (
	"context"
	"fmt"
	"sync"

	"github.com/redis/go-redis/v9"

	"wagate/gateway/cluster"
)

// Shard ownership (cluster mode, Config.Shards > 0). A session's events must reach Laravel in
// the order they were appended, so one replica at a time sends them: the holder of the session's
// shard. Every replica therefore reads the whole stream through a consumer group of its own
// (Group + ":" + GatewayID) and keeps only the entries of the shards it holds; the others it
// acknowledges in its own group (skips) and leaves in the stream for their holder. An entry
// leaves the stream (XDEL) only when its holder delivered it.
//
// When this replica takes a shard (Adopt sees Holds turn true), it scans the stream from its
// start and adopts every entry of that shard still there: what the previous holder had not
// delivered (also a dead replica's acknowledged-to-WhatsApp messages, at once, not after an idle
// time) and what this replica skipped, in stream order, before it reads anything newer of that
// shard. Entries of the shard up to the scan's end that its group reads later are skipped (they
// were adopted). When it loses a shard, Adopt reports it so the delivery drops the shard's
// waiting entries without acknowledging them: the new holder adopts them from the stream.

// ownership is the outbox's view of the shards whose entries it keeps.
type ownership struct {
	mu    sync.Mutex
	holds func(shard int) bool
	// admitted[k] is true while this outbox keeps shard k's entries; upTo[k] is the id of the
	// last stream entry the adoption scan of k covered (entries up to it were adopted then).
	admitted []bool
	upTo     []streamID
}

// idOf parses an entry id Redis gave (zero if it were malformed).
func idOf(s string) streamID {
	id, _ := parseStreamID(s)
	return id
}

func (a streamID) after(b streamID) bool { return a.ms > b.ms || (a.ms == b.ms && a.seq > b.seq) }

// Sharded reports whether the outbox keeps only the entries of the shards this replica holds.
func (o *Outbox) Sharded() bool { return o.cfg.Shards > 0 }

// SetHolds gives a sharded outbox the question it asks about shards (the cluster member's
// current holdings). Until it is set the outbox holds no shard.
func (o *Outbox) SetHolds(holds func(shard int) bool) {
	o.own.mu.Lock()
	o.own.holds = holds
	o.own.mu.Unlock()
}

// shardOf returns the shard of a session.
func (o *Outbox) shardOf(sessionID string) int { return cluster.Shard(sessionID, o.cfg.Shards) }

// Adoption is what Adopt found: the entries of newly held shards, in stream order, and the
// shards no longer held.
type Adoption struct {
	Entries []Entry
	// Dropped says whether a session's shard is no longer held (nil when none was dropped).
	Dropped func(sessionID string) bool
}

// Adopt compares the shards this outbox keeps with the ones held now: for each newly held shard
// it scans the stream and returns its entries (oldest first); it reports the shards no longer
// held. The delivery calls it before each read, so a shard's adopted entries come before any
// newer one of that shard. Without sharding it returns nothing.
func (o *Outbox) Adopt(ctx context.Context) (Adoption, error) {
	if !o.Sharded() {
		return Adoption{}, nil
	}
	o.own.mu.Lock()
	holds := o.own.holds
	var gained []int
	var lost map[int]bool
	for k := range o.own.admitted {
		h := holds != nil && holds(k)
		switch {
		case h && !o.own.admitted[k]:
			gained = append(gained, k)
		case !h && o.own.admitted[k]:
			o.own.admitted[k] = false
			if lost == nil {
				lost = map[int]bool{}
			}
			lost[k] = true
		}
	}
	o.own.mu.Unlock()
	var ad Adoption
	if lost != nil {
		ad.Dropped = func(sid string) bool { return lost[o.shardOf(sid)] }
	}
	if len(gained) == 0 {
		return ad, nil
	}
	want := make(map[int]bool, len(gained))
	for _, k := range gained {
		want[k] = true
	}
	var msgs []redis.XMessage
	last := "-"
	for {
		page, err := o.rdb.XRangeN(ctx, o.cfg.Stream, last, "+", 1000).Result()
		if err != nil {
			return ad, fmt.Errorf("outbox: scan for the entries of %d adopted shards: %w", len(gained), err)
		}
		if last != "-" && len(page) > 0 && page[0].ID == last {
			page = page[1:]
		}
		if len(page) == 0 {
			break
		}
		for _, m := range page {
			sid, _ := m.Values["sid"].(string)
			if want[o.shardOf(sid)] {
				msgs = append(msgs, m)
			}
		}
		last = page[len(page)-1].ID
	}
	end := streamID{}
	if last != "-" {
		end = idOf(last)
	}
	o.own.mu.Lock()
	for _, k := range gained {
		o.own.admitted[k] = true
		o.own.upTo[k] = end
	}
	o.own.mu.Unlock()
	entries, err := o.decodeAll(ctx, msgs)
	o.adopted.Add(int64(len(entries)))
	ad.Entries = entries
	if len(entries) > 0 {
		o.log.Info("outbox: adopted the undelivered entries of newly held shards", "shards", len(gained), "entries", len(entries))
	}
	// Entries decoded before a failure (dead-lettering a malformed one) are returned with it:
	// the caller holds them.
	return ad, err
}

// keep splits entries read through the group into those of held shards not adopted before
// (returned) and the rest, which it acknowledges in this replica's group (the stream keeps them
// for their holder, or they were adopted already). Without sharding it keeps all.
func (o *Outbox) keepHeld(ctx context.Context, msgs []redis.XMessage) []redis.XMessage {
	if !o.Sharded() || len(msgs) == 0 {
		return msgs
	}
	kept := msgs[:0:0]
	var skip []string
	o.own.mu.Lock()
	for _, m := range msgs {
		sid, _ := m.Values["sid"].(string)
		k := o.shardOf(sid)
		if len(m.Values) == 0 || (o.own.admitted[k] && idOf(m.ID).after(o.own.upTo[k])) {
			kept = append(kept, m) // deleted entries are acknowledged away by decodeAll
			continue
		}
		skip = append(skip, m.ID)
	}
	o.own.mu.Unlock()
	if len(skip) > 0 {
		// A refused acknowledgement only leaves them pending in this replica's group: a later
		// claim of its own idle entries reads and skips them again.
		if err := o.rdb.XAck(ctx, o.cfg.Stream, o.cfg.Group, skip...).Err(); err != nil {
			o.log.Warn("outbox: could not skip entries of shards held elsewhere; retried later", "entries", len(skip), "err", err)
		} else {
			o.skipped.Add(int64(len(skip)))
		}
	}
	return kept
}

// HoldsSession reports whether this replica holds the shard of sessionID now (SetHolds' question;
// false until it is set). Without sharding every session is this gateway's.
func (o *Outbox) HoldsSession(sessionID string) bool {
	if !o.Sharded() {
		return true
	}
	o.own.mu.Lock()
	holds := o.own.holds
	o.own.mu.Unlock()
	return holds != nil && holds(o.shardOf(sessionID))
}
